"""pyflakes finds nothing: no unused imports, undefined names or shadowed definitions."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyflakes_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "pyflakes", "snakevisor", "tests", "bench"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and not proc.stdout, proc.stdout + proc.stderr
