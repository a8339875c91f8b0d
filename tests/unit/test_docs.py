"""docs/compatibility.md must be exactly what the generator prints for the current table."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generate() -> str:
    # A fresh interpreter: other tests may register fake handlers in this one.
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "snakevisor.syscalls.compat"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_compatibility_doc_is_current() -> None:
    committed = (ROOT / "docs" / "compatibility.md").read_text()
    assert committed == _generate(), (
        "docs/compatibility.md is stale: regenerate it with `make docs` "
        "(python3 -m snakevisor.syscalls.compat > docs/compatibility.md)")


def test_every_syscall_listed_once() -> None:
    from snakevisor.syscalls.compat import entries
    from snakevisor.syscalls.numbers import SYSCALL_NAMES

    names = [e.name for e in entries()]
    assert names == [n for n in SYSCALL_NAMES if n]
    assert all(e.status in ("implemented", "partial", "ENOSYS") for e in entries())


def test_partial_calls_carry_their_reason() -> None:
    from snakevisor.syscalls.compat import PARTIAL, entries

    for e in entries():
        assert (e.status == PARTIAL) == bool(e.note), e


def test_cells_stay_on_one_row() -> None:
    from snakevisor.syscalls.compat import _cell

    assert _cell("no a|b\n  flags") == "no a\\|b flags"
