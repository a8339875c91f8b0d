"""The stub binary's layout matches what the platform assumes about it."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from snakevisor.platform.ptrace import CMPXCHG_OFFSET, STUB_BASE, stub_binary


@pytest.mark.skipif(shutil.which("nm") is None, reason="binutils' nm is not installed")
def test_stub_symbols_are_where_the_platform_expects() -> None:
    out = subprocess.run(["nm", str(stub_binary())], capture_output=True, text=True,
                         check=True).stdout
    symbols = {parts[2]: int(parts[0], 16) for parts in (line.split() for line in out.splitlines())
               if len(parts) == 3}
    assert symbols["stub_cmpxchg"] - symbols["stub_park"] == CMPXCHG_OFFSET
    assert STUB_BASE <= symbols["stub_park"] < STUB_BASE + 0x100000
