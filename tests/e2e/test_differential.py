"""Differential tests: each tests/c program runs natively and in the sandbox; outputs must match.

Why: matching Linux exactly is the sentry's whole job, and the cheapest oracle for
"exactly" is Linux itself.  Each program prints one line per observation (return values,
errno names, relations), starting from an empty work directory on both sides.
"""
from __future__ import annotations

import os
import subprocess

import pytest

from harness import (LINKS, CPrograms, Scratch, assert_same_output, describe, run_native,
                     run_sandbox)

#: Programs whose whole output is compared (probe is driven by the isolation/CLI tests,
#: init_signals by test_init_signals.py as a native pid 1).
#: proc, signals, threads and pipes2 re-execute themselves (argv[0]) for their exec tests:
#: the harness runs them by absolute path on both sides (/bin/NAME in the scratch root).
DIFFERENTIAL = ["fileio", "dirs", "stat", "errnos", "mem", "misc",
                "proc", "signals", "threads", "pipes2", "pipes", "ident", "futex", "poll", "epoll",
                "pidfd", "locks", "openat2", "splice", "inotify", "paths",
                "eventfd", "timerfd", "signalfd", "memfd", "pty",
                "unix_stream", "unix_dgram", "scm", "shm", "sysv", "unix_oob", "mqueue"]


def native_run(c_programs: CPrograms, scratch: Scratch, name: str, link: str):
    return run_native([c_programs.path(name, link)], cwd=scratch.native_cwd)


def test_program_list_is_complete(c_programs: CPrograms) -> None:
    """Every tests/c program is either compared here or driven as a probe."""
    assert set(c_programs.names()) == set(DIFFERENTIAL) | {"probe", "init_signals"}


@pytest.mark.parametrize("name", DIFFERENTIAL)
def test_native_static_and_dynamic_agree(c_programs: CPrograms, tmp_path, name: str) -> None:
    """The programs themselves are sound on this host: exit 0, no FAILED relation, and the
    static and dynamic builds print the same thing (so a sandbox diff is the sandbox's)."""
    outputs = {}
    for link in LINKS:
        work = tmp_path / link
        work.mkdir()
        res = run_native([c_programs.path(name, link)], cwd=work)
        assert res.returncode == 0, describe(res)
        assert "FAILED" not in res.stdout, describe(res)
        assert res.stdout.count("\n") > 20, describe(res)
        outputs[link] = res.stdout
    assert outputs["static"] == outputs["dynamic"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_scratch_root_is_self_contained(scratch: Scratch) -> None:
    """The scratch root really holds what a dynamic program needs (checked with a native
    chroot), so a sandbox failure to load one is the loader's, not the fixture's."""
    res = subprocess.run(["chroot", str(scratch.root), "/bin/probe-dyn", "echo", "hi", "getcwd"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "hi\ngetcwd: /\n"


#: (link, root) pairs each program runs with: both builds on the default overlay root, the
#: static one on a writable host-path root (the loader's path is the same on both roots).
RUNS = [("static", "overlay"), ("dynamic", "overlay"), ("static", "rootfs")]


@pytest.mark.slow
@pytest.mark.parametrize("link,root", RUNS, ids=[f"{l}-{r}" for l, r in RUNS])
@pytest.mark.parametrize("name", DIFFERENTIAL)
def test_differential(c_programs: CPrograms, scratch: Scratch, name: str, link: str,
                      root: str) -> None:
    native = native_run(c_programs, scratch, name, link)
    assert native.returncode == 0 and "FAILED" not in native.stdout, describe(native)
    sandboxed = run_sandbox([scratch.bin(name, link)], rootfs=scratch.root,
                            extra=scratch.flags(root), timeout=120)
    assert_same_output(native, sandboxed)


@pytest.mark.slow
def test_dynamic_program_from_host_root(c_programs: CPrograms, tmp_path) -> None:
    """A dynamic program loaded from the host's own root (its real ld.so and libc), working
    in a host directory given with --cwd and a writable root."""
    native_dir, sandbox_dir = tmp_path / "native", tmp_path / "sandbox"
    native_dir.mkdir()
    sandbox_dir.mkdir()
    binary = c_programs.path("fileio", "dynamic")
    native = run_native([binary], cwd=native_dir)
    sandboxed = run_sandbox([binary], extra=["--writable-root", "--cwd", str(sandbox_dir)],
                            timeout=120)
    assert_same_output(native, sandboxed)
    assert sorted(os.listdir(sandbox_dir)) == sorted(os.listdir(native_dir))
