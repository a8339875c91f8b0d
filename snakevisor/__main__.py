"""`python -m snakevisor ...` is the snakevisor CLI."""
import sys

from snakevisor.runtime.cli import main

sys.exit(main())
