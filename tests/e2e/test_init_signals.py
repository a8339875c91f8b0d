"""The init of a pid namespace and the signals sent to it from inside (tests/c/init_signals.c).

Why: a container's first process is pid 1 of the sandbox's pid namespace, and Linux drops
every signal generated for such an init from inside its namespace whose action is the
default one -- SIGKILL and SIGSTOP included -- while synchronous faults still kill it.  So
`sh -c 'kill -9 $$; echo survived'` as a container's first process survives under runc.
test_differential runs its programs natively as ordinary processes; here the native side
runs as pid 1 of a fresh pid namespace, as the sandbox's first process always is.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from harness import (LINKS, CPrograms, assert_same_output, describe, on_demand_libraries,
                     run_native, run_sandbox, shared_libraries)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0, reason="a native pid namespace needs root")]

#: Unshare a pid namespace, run argv as its pid 1 and exit with its shell status.
#: (`unshare --pid --fork` itself fails to re-raise SIGKILL: util-linux 2.38 exits 1.)
NATIVE_INIT = r"""
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).unshare(0x20000000) != 0:  # CLONE_NEWPID
    sys.exit("unshare(CLONE_NEWPID): " + os.strerror(ctypes.get_errno()))
pid = os.fork()
if pid == 0:
    try:
        os.execv(sys.argv[1], sys.argv[1:])
    finally:
        os._exit(127)
status = os.waitpid(pid, 0)[1]
sys.exit(128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
"""

#: scenario -> the shell status Linux gives it (checked on the native side too)
SCENARIOS = {
    "survive": 0,          # default-action signals from itself, a child, a thread: dropped
    "segv": 139,           # a real fault is forced: init dies
    "segv-blocked": 139,   # ... blocked: unblocked and reset to default (force_sig)
    "segv-ignored": 139,   # ... ignored: the same
    "segv-handled": 11,    # a handler takes it (and _exits with the signal number)
    "hangup": 0,           # its terminal hangs up: the kernel's SIGHUP is dropped too
    "hangup-handled": 0,   # ... and taken by a handler
    "abort": 139,          # raise(SIGABRT) is dropped twice; glibc's hlt faults
    "sigqueue-kernel": 137,  # a siginfo claiming SI_KERNEL is forced: SIGKILL kills init
    "sigqueue-user": 0,    # SI_QUEUE is not: dropped
}


@pytest.fixture(scope="module")
def init_root(tmp_path_factory: pytest.TempPathFactory, c_programs: CPrograms) -> Path:
    """A root holding only init_signals (static as /bin/init_signals, dynamic as
    /bin/init_signals-dyn) and the libraries the dynamic one loads."""
    root = tmp_path_factory.mktemp("init-root")
    (root / "bin").mkdir()
    shutil.copy2(c_programs.path("init_signals", "static"), root / "bin" / "init_signals")
    dyn = c_programs.path("init_signals", "dynamic")
    shutil.copy2(dyn, root / "bin" / "init_signals-dyn")
    libs = shared_libraries(dyn)
    for lib in [*libs, *on_demand_libraries(libs)]:
        dest = root / lib.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(lib), dest)
    return root


def _native(c_programs: CPrograms, link: str, scenario: str):
    return run_native([sys.executable, "-c", NATIVE_INIT,
                       str(c_programs.path("init_signals", link)), scenario], timeout=60)


def _sandboxed(init_root: Path, link: str, scenario: str):
    program = "/bin/init_signals" + ("" if link == "static" else "-dyn")
    return run_sandbox([program, scenario], rootfs=init_root, timeout=120)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_native_init_behaves_as_expected(c_programs: CPrograms, scenario: str) -> None:
    """The oracle itself: natively, as pid 1, each scenario ends as Linux documents."""
    native = _native(c_programs, "static", scenario)
    assert native.returncode == SCENARIOS[scenario], describe(native)
    assert native.stdout.startswith("pid is 1: 1\n"), describe(native)
    assert "FAILED" not in native.stdout, describe(native)


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_init_signals_match_linux(c_programs: CPrograms, init_root: Path, scenario: str,
                                  link: str) -> None:
    native = _native(c_programs, link, scenario)
    sandboxed = _sandboxed(init_root, link, scenario)
    assert_same_output(native, sandboxed)


#: (no SIGINT: dash catches it and, its re-raise dropped, exits 130 -- on both sides)
SHELL_SCRIPT = ("kill -9 $$; kill -TERM $$; kill -STOP $$; kill -HUP $$; "
                "echo survived; trap 'echo trapped' USR1; kill -USR1 $$; exit 3")


def test_shell_survives_kill_9_of_itself() -> None:
    """The symptom as reported: `kill -9 $$` in a first-process shell does nothing (runc:
    prints survived), a trap still runs; the host's own /bin/sh, natively as pid 1 and as
    the sandbox's first process (host root)."""
    native = run_native([sys.executable, "-c", NATIVE_INIT, "/bin/sh", "-c", SHELL_SCRIPT])
    assert native.stdout == "survived\ntrapped\n" and native.returncode == 3, describe(native)
    sandboxed = run_sandbox(["/bin/sh", "-c", SHELL_SCRIPT], timeout=120)
    assert_same_output(native, sandboxed)
