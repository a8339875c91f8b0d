"""Advisory locks: the sentry's table, and its mirror on the host for host-shared files.

Why: a volume's file is the host's file, so a host process must be excluded by the
sandbox's locks and exclude the sandbox with its own (sqlite on a volume loses rows
otherwise), while inside the sandbox Linux's rules hold (POSIX locks per process, dropped at
any close of the file by the process; OFD and flock locks per description).  The host sees
the sandbox's locks as OFD locks on the sentry's descriptions; these tests look at them from
the host side with descriptions of the test's own (OFD locks conflict across descriptions,
whatever process holds them) and with a separate host process for POSIX holders.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from snakevisor.fsimpl.hostpathfs import HostPathFs
from snakevisor.fsimpl.overlay import OverlayFs
from snakevisor.fsimpl.sandboxroot import SandboxRoot
from snakevisor.fsimpl.tmpfs import Tmpfs
from snakevisor.kernel.errors import Block
from snakevisor.kernel.locks import F_RDLCK, F_UNLCK, F_WRLCK, INF, Lock, cover
from snakevisor.kernel.task import Task, ThreadGroup
from snakevisor.syscalls.args import AT_FDCWD
from snakevisor.syscalls.sys_lock import (F_GETLK, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW,
                                          F_SETLK, F_SETLKW, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN,
                                          host_lock_fd, on_exit, tables)
from snakevisor.vfs.fdtable import FdTable
from tests.unit.conftest import FakeProcess

FLOCK = struct.Struct("<hh4xqqi4x")
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT = os.O_RDONLY, os.O_WRONLY, os.O_RDWR, os.O_CREAT
EAGAIN, EBADF, EDEADLK = -errno.EAGAIN, -errno.EBADF, -errno.EDEADLK


# -- the sandbox ---------------------------------------------------------------------------
class Sandbox:
    """Processes of one fake sandbox: `/` a writable host directory (shared with the
    host), `/t` a tmpfs and `/o` an overlay over a host directory (the sandbox's alone)."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "vol"
        lower = tmp / "lower"
        self.dir.mkdir()
        lower.mkdir()
        (lower / "f").write_bytes(b"0123456789")
        (self.dir / "o").mkdir()
        (self.dir / "t").mkdir()
        root = SandboxRoot({b"/": HostPathFs(str(self.dir), writable=True), b"/t": Tmpfs(),
                            b"/o": OverlayFs(HostPathFs(str(lower), writable=False), Tmpfs())})
        self.p = FakeProcess(root)
        self.first = self.p.task

    def process(self, pid: int) -> Task:
        """Another process of the same sandbox (its own fd table)."""
        tg = ThreadGroup(self.p.kernel, pid, None, self.p.tg.mm, FdTable(), self.p.tg.fs.copy())  # type: ignore[arg-type]
        tg.fds.users = 1
        task = Task(self.p.kernel, pid, tg, None)  # type: ignore[arg-type]
        tg.tasks.append(task)
        return task

    def fork(self, task: Task, pid: int) -> Task:
        """A child sharing every description of `task` (fork's fd table copy)."""
        child = self.process(pid)
        child.tg.fds = task.tg.fds.fork()
        return child

    def open(self, path: str, flags: int = O_RDWR, task: Task | None = None) -> int:
        fd = self.p.raw("openat", AT_FDCWD, self.p.cstr(path), flags | O_CREAT, 0o644,
                        task=task or self.first)
        assert fd >= 0, fd
        return fd

    def close(self, fd: int, task: Task | None = None) -> None:
        assert self.p.raw("close", fd, task=task or self.first) == 0

    def lock(self, fd: int, ltype: int, start: int = 0, length: int = 0, cmd: int = F_SETLK,
             task: Task | None = None) -> int:
        """fcntl(fd, cmd, {ltype, SEEK_SET, start, length}); -errno; Block propagates."""
        arg = self.p.put(FLOCK.pack(ltype, 0, start, length, 0))
        return self.p.raw("fcntl", fd, cmd, arg, task=task or self.first)

    def getlk(self, fd: int, ltype: int, start: int = 0, length: int = 0, cmd: int = F_GETLK,
              task: Task | None = None) -> tuple | None:
        """F_GETLK's answer: None (unlocked) or (type, start, len, pid)."""
        arg = self.p.put(FLOCK.pack(ltype, 0, start, length, 0))
        assert self.p.raw("fcntl", fd, cmd, arg, task=task or self.first) == 0
        got = FLOCK.unpack(self.p.get(arg, FLOCK.size))
        return None if got[0] == F_UNLCK else (got[0], got[2], got[3], got[4])

    def flock(self, fd: int, op: int, task: Task | None = None) -> int:
        return self.p.raw("flock", fd, op, task=task or self.first)

    def file(self, fd: int, task: Task | None = None):
        return (task or self.first).tg.fds.get(fd)


@pytest.fixture
def sb(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path)


# -- the host side -------------------------------------------------------------------------
def host_try(path: Path, ltype: int, start: int = 0, length: int = 0) -> bool:
    """Could a host process take this record lock now?  (An OFD lock of a description of
    our own, given back at once.)"""
    fd = os.open(path, O_RDWR)
    try:
        fcntl.fcntl(fd, F_OFD_SETLK, FLOCK.pack(ltype, 0, start, length, 0))
        return True
    except OSError as e:
        assert e.errno == errno.EAGAIN
        return False
    finally:
        os.close(fd)


def host_sees(path: Path, ltype: int = F_WRLCK, start: int = 0, length: int = 0) -> tuple | None:
    """F_OFD_GETLK from the host: the first lock in the way (type, start, len, pid)."""
    fd = os.open(path, O_RDWR)
    try:
        got = FLOCK.unpack(fcntl.fcntl(fd, F_OFD_GETLK, FLOCK.pack(ltype, 0, start, length, 0)))
    finally:
        os.close(fd)
    return None if got[0] == F_UNLCK else (got[0], got[2], got[3], got[4])


def host_flock_free(path: Path, op: int = fcntl.LOCK_EX) -> bool:
    fd = os.open(path, O_RDWR)
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


HOLDER = r"""
import errno, fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR)
print("ready", flush=True)
for line in sys.stdin:
    try:
        exec(line)
        print("ok", flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
"""


class HostProcess:
    """A host process holding locks on a file (POSIX locks need a process of their own:
    the test's would go at the sentry's first close of the file)."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self.proc.stdout.readline() == "ready\n"

    def do(self, code: str) -> str:
        self.proc.stdin.write(code + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture
def host(sb: Sandbox):
    (sb.dir / "f").write_bytes(b"0123456789")
    holder = HostProcess(sb.dir / "f")
    yield holder
    holder.close()


# -- which files are shared ----------------------------------------------------------------
def test_only_host_files_outside_the_overlay_are_mirrored(sb: Sandbox) -> None:
    assert host_lock_fd(sb.file(sb.open("/f"))) is not None
    assert host_lock_fd(sb.file(sb.open("/t/f"))) is None
    assert host_lock_fd(sb.file(sb.open("/o/f", O_RDONLY))) is None  # the lower layer's file
    assert host_lock_fd(sb.file(sb.open("/o/f", O_RDWR))) is None  # copied up


def test_sentry_only_files_take_no_host_lock(sb: Sandbox, tmp_path: Path) -> None:
    fd = sb.open("/o/f", O_RDONLY)
    assert sb.lock(fd, F_RDLCK) == 0
    assert sb.flock(fd, LOCK_EX) == 0
    assert host_try(tmp_path / "lower" / "f", F_WRLCK)
    assert host_flock_free(tmp_path / "lower" / "f")
    other = sb.process(2)  # the sandbox's processes still exclude each other
    assert sb.flock(sb.open("/o/f", O_RDONLY, task=other), LOCK_SH | LOCK_NB, task=other) == EAGAIN


# -- the sandbox's locks seen by the host ----------------------------------------------------
def test_a_posix_lock_holds_on_the_host_until_unlocked(sb: Sandbox) -> None:
    path = sb.dir / "f"
    fd = sb.open("/f")
    assert sb.lock(fd, F_WRLCK, 2, 3) == 0
    assert host_sees(path) == (F_WRLCK, 2, 3, -1)  # an OFD lock: no pid
    assert not host_try(path, F_RDLCK, 4, 1) and host_try(path, F_WRLCK, 5, 1)
    assert sb.lock(fd, F_RDLCK, 3, 1) == 0  # downgrade the middle
    assert host_try(path, F_RDLCK, 3, 1) and not host_try(path, F_RDLCK, 2, 1)
    assert sb.lock(fd, F_UNLCK, 0, 0) == 0
    assert host_sees(path) is None


def test_a_host_refusal_leaves_the_sandbox_unchanged(sb: Sandbox, host: HostProcess) -> None:
    assert host.do("fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 5)") == "ok"
    fd = sb.open("/f")
    assert sb.lock(fd, F_RDLCK, 0, 3) == 0
    assert sb.lock(fd, F_WRLCK, 0, 10) == EAGAIN  # bytes 5.. are the host's
    # the failed upgrade changed nothing: still a read lock on 0..2 in the sandbox
    other = sb.process(2)
    ofd = sb.open("/f", task=other)
    assert sb.getlk(ofd, F_WRLCK, 0, 5, task=other) == (F_RDLCK, 0, 3, 1)
    assert sb.lock(ofd, F_RDLCK, 0, 3, task=other) == 0
    assert host.do("fcntl.lockf(fd, fcntl.LOCK_UN, 1, 5)") == "ok"
    assert sb.lock(fd, F_WRLCK, 3, 7) == 0
    assert host_sees(sb.dir / "f", F_WRLCK, 0, 0) == (F_RDLCK, 0, 3, -1)


def test_getlk_reports_a_host_holder(sb: Sandbox, host: HostProcess) -> None:
    fd = sb.open("/f")
    assert host.do("fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 2, 4)") == "ok"
    # a POSIX holder outside the sandbox's pid namespace: pid 0, as Linux reports it
    assert sb.getlk(fd, F_RDLCK) == (F_WRLCK, 4, 2, 0)
    assert sb.getlk(fd, F_RDLCK, cmd=F_OFD_GETLK) == (F_WRLCK, 4, 2, 0)
    assert sb.getlk(fd, F_RDLCK, 0, 4) is None
    ofd_holder = os.open(sb.dir / "f", O_RDWR)
    try:
        fcntl.fcntl(ofd_holder, F_OFD_SETLK, FLOCK.pack(F_RDLCK, 0, 0, 2, 0))
        assert sb.getlk(fd, F_WRLCK, 0, 3) == (F_RDLCK, 0, 2, -1)  # an OFD holder: -1
    finally:
        os.close(ofd_holder)


def test_getlk_does_not_count_the_callers_own_locks(sb: Sandbox) -> None:
    """The process's locks live on one of its descriptions; asked through another, the host
    would see them as someone else's."""
    a, b = sb.open("/f"), sb.open("/f", O_RDONLY)
    assert sb.lock(a, F_WRLCK, 0, 5) == 0
    assert sb.getlk(b, F_WRLCK) is None
    assert sb.lock(b, F_RDLCK, 7, 1) == 0  # through the other fd: onto the same description
    assert host_sees(sb.dir / "f", F_WRLCK, 0, 0) == (F_WRLCK, 0, 5, -1)
    assert not host_try(sb.dir / "f", F_WRLCK, 7, 1)
    other = sb.process(2)
    assert sb.getlk(sb.open("/f", task=other), F_RDLCK, task=other) == (F_WRLCK, 0, 5, 1)


def test_setlkw_waits_for_a_host_holder(sb: Sandbox, host: HostProcess) -> None:
    fd = sb.open("/f")
    assert host.do("fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 0, 0)") == "ok"
    task = sb.first
    with pytest.raises(Block) as first:
        sb.lock(fd, F_WRLCK, cmd=F_SETLKW)
    assert first.value.deadline is not None  # a timed retry: the host offers no wake-up
    with pytest.raises(Block) as again:  # re-dispatched by the kernel: still held
        sb.lock(fd, F_WRLCK, cmd=F_SETLKW)
    assert again.value.deadline is not None
    assert task.syscall_state is not None and task.syscall_state["host_retry"] > 0
    assert host.do("fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)") == "ok"
    assert sb.lock(fd, F_WRLCK, cmd=F_SETLKW) == 0
    assert host.do("fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 0, 0)") in ("EAGAIN", "EACCES")


def test_ofd_setlkw_waits_for_a_host_holder(sb: Sandbox, host: HostProcess) -> None:
    fd = sb.open("/f")
    assert host.do("fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)") == "ok"
    assert sb.lock(fd, F_RDLCK, 0, 2, cmd=F_OFD_SETLK) == EAGAIN
    with pytest.raises(Block):
        sb.lock(fd, F_RDLCK, 0, 2, cmd=F_OFD_SETLKW)
    assert host.do("os.close(fd)") == "ok"  # POSIX: any close drops the process's locks
    assert sb.lock(fd, F_RDLCK, 0, 2, cmd=F_OFD_SETLKW) == 0
    assert host_sees(sb.dir / "f") == (F_RDLCK, 0, 2, -1)


# -- POSIX locks through several descriptions -------------------------------------------------
def test_any_close_drops_the_process_locks_on_the_host(sb: Sandbox) -> None:
    a, b = sb.open("/f"), sb.open("/f")
    assert sb.lock(a, F_WRLCK, 0, 2) == 0
    assert sb.lock(b, F_WRLCK, 4, 2) == 0
    assert not host_try(sb.dir / "f", F_RDLCK, 0, 1) and not host_try(sb.dir / "f", F_RDLCK, 5, 1)
    sb.close(b)  # not the fd that took 0..1: POSIX drops both all the same
    assert host_sees(sb.dir / "f") is None
    assert sb.getlk(a, F_WRLCK) is None


def test_a_read_only_anchor_moves_for_a_write_lock(sb: Sandbox) -> None:
    """The first lock went through an O_RDONLY fd; a write lock cannot live there, so the
    process's locks move to the O_RDWR description (and keep excluding the host)."""
    path = sb.dir / "f"
    ro, rw = sb.open("/f", O_RDONLY), sb.open("/f", O_RDWR)
    assert sb.lock(ro, F_RDLCK, 0, 4) == 0
    assert sb.lock(rw, F_WRLCK, 2, 4) == 0
    assert host_sees(path, F_WRLCK, 0, 2) == (F_RDLCK, 0, 2, -1)
    assert host_sees(path, F_RDLCK) == (F_WRLCK, 2, 4, -1)
    sb.close(ro)  # which description held them does not matter: all go
    assert host_sees(path) is None


def test_a_write_only_then_read_only_pair_is_kept_in_the_sandbox(sb: Sandbox) -> None:
    wo, ro = sb.open("/f", O_WRONLY), sb.open("/f", O_RDONLY)
    assert sb.lock(wo, F_WRLCK, 0, 2) == 0
    assert sb.lock(ro, F_RDLCK, 4, 2) == 0
    assert "locks:anchor" in sb.p.kernel.warnings
    other = sb.process(2)
    assert sb.lock(sb.open("/f", task=other), F_WRLCK, 4, 1, task=other) == EAGAIN
    assert host_sees(sb.dir / "f") == (F_WRLCK, 0, 2, -1)


def test_processes_sharing_a_description_keep_their_own_ranges(sb: Sandbox) -> None:
    """After fork both processes reach one description: the host holds the union of their
    locks there, and one unlocking leaves the other's range held."""
    path = sb.dir / "f"
    fd = sb.open("/f")
    child = sb.fork(sb.first, 2)
    assert sb.lock(fd, F_RDLCK, 0, 6) == 0
    assert sb.lock(fd, F_RDLCK, 4, 6, task=child) == 0
    assert sb.lock(fd, F_UNLCK, 0, 0) == 0
    assert host_try(path, F_WRLCK, 0, 4) and not host_try(path, F_WRLCK, 4, 1)
    assert host_sees(path) == (F_RDLCK, 4, 6, -1)
    sb.close(fd)  # the parent's close does not drop the child's locks
    assert host_sees(path) == (F_RDLCK, 4, 6, -1)
    on_exit(child)
    assert host_sees(path) is None


def test_exit_releases_on_the_host(sb: Sandbox) -> None:
    fd = sb.open("/f")
    assert sb.lock(fd, F_WRLCK) == 0
    on_exit(sb.first)
    assert host_sees(sb.dir / "f") is None
    assert tables(sb.first)[0].host.anchors == {}


def test_edeadlk_between_sandbox_processes_on_a_shared_file(sb: Sandbox) -> None:
    other = sb.process(2)
    a, b = sb.open("/f"), sb.open("/f", task=other)
    assert sb.lock(a, F_WRLCK, 0, 1) == 0
    assert sb.lock(b, F_WRLCK, 1, 1, task=other) == 0
    with pytest.raises(Block):
        sb.lock(a, F_WRLCK, 1, 1, cmd=F_SETLKW)
    assert sb.lock(b, F_WRLCK, 0, 1, cmd=F_SETLKW, task=other) == EDEADLK


# -- OFD locks ---------------------------------------------------------------------------------
def test_ofd_lock_and_posix_lock_on_one_description(sb: Sandbox) -> None:
    """Two owners on one host description: unlocking one leaves the other's bytes."""
    path = sb.dir / "f"
    fd = sb.open("/f")
    assert sb.lock(fd, F_RDLCK, 0, 4, cmd=F_OFD_SETLK) == 0
    assert sb.lock(fd, F_RDLCK, 2, 4) == 0
    assert sb.lock(fd, F_UNLCK, 0, 0, cmd=F_OFD_SETLK) == 0
    assert host_sees(path) == (F_RDLCK, 2, 4, -1)
    assert sb.lock(fd, F_WRLCK, 0, 1, cmd=F_OFD_SETLK) == 0
    assert sb.lock(fd, F_UNLCK, 0, 0) == 0
    assert host_sees(path) == (F_WRLCK, 0, 1, -1)


def test_an_ofd_lock_goes_with_its_description_however_closed(sb: Sandbox) -> None:
    fd = sb.open("/f")
    assert sb.lock(fd, F_WRLCK, cmd=F_OFD_SETLK) == 0
    sb.first.tg.fds.close(fd)  # as close_range, dup2 and exec close: no lock hook
    assert host_sees(sb.dir / "f") is None
    other = sb.process(2)
    assert sb.lock(sb.open("/f", task=other), F_WRLCK, cmd=F_OFD_SETLK, task=other) == 0


def test_release_gives_back_locks_of_a_description_that_lives_on(sb: Sandbox) -> None:
    """A gofer keeps its own copy of the description of a file it created: the host locks
    must not outlive the sandbox's last close, whichever way it closes."""
    fd = sb.open("/f")
    assert sb.lock(fd, F_WRLCK, 0, 4, cmd=F_OFD_SETLK) == 0
    assert sb.flock(fd, LOCK_EX) == 0
    gofers_copy = os.dup(sb.file(fd).fd)
    try:
        sb.first.tg.fds.close(fd)  # exit's close_all: no lock hook on the way
        assert host_sees(sb.dir / "f") is None
        assert host_flock_free(sb.dir / "f")
    finally:
        os.close(gofers_copy)


# -- flock -----------------------------------------------------------------------------------
def test_flock_both_ways(sb: Sandbox) -> None:
    path = sb.dir / "f"
    fd = sb.open("/f")
    assert sb.flock(fd, LOCK_SH) == 0
    assert host_flock_free(path, fcntl.LOCK_SH) and not host_flock_free(path, fcntl.LOCK_EX)
    assert host_try(path, F_WRLCK)  # flock and record locks do not meet
    assert sb.flock(fd, LOCK_UN) == 0
    assert host_flock_free(path)
    holder = os.open(path, O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        assert sb.flock(fd, LOCK_SH | LOCK_NB) == EAGAIN
        with pytest.raises(Block) as waiting:
            sb.flock(fd, LOCK_SH)
        assert waiting.value.deadline is not None
        fcntl.flock(holder, fcntl.LOCK_UN)
        assert sb.flock(fd, LOCK_SH) == 0
        assert not host_flock_free(path)
    finally:
        os.close(holder)


def test_a_failed_flock_conversion_drops_the_old_lock(sb: Sandbox) -> None:
    """Linux removes the old lock before trying the new one (flock(2): not atomic)."""
    path = sb.dir / "f"
    fd = sb.open("/f")
    assert sb.flock(fd, LOCK_SH) == 0
    holder = os.open(path, O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_SH)
        assert sb.flock(fd, LOCK_EX | LOCK_NB) == EAGAIN
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nothing of the sandbox's left
    finally:
        os.close(holder)


def test_flock_goes_with_its_description(sb: Sandbox) -> None:
    fd = sb.open("/f")
    assert sb.flock(fd, LOCK_EX) == 0
    sb.close(fd)
    assert host_flock_free(sb.dir / "f")


# -- the table's own rules -------------------------------------------------------------------
def test_cover_cuts_a_range_by_the_strongest_type() -> None:
    locks = [Lock("a", F_RDLCK, 0, 9, 1), Lock("b", F_RDLCK, 5, 14, 2), Lock("c", F_WRLCK, 20, INF, 3)]
    assert cover(locks, 0, INF) == [(F_RDLCK, 0, 14), (F_UNLCK, 15, 19), (F_WRLCK, 20, INF)]
    assert cover(locks, 3, 7) == [(F_RDLCK, 3, 7)]
    assert cover([], 4, INF) == [(F_UNLCK, 4, INF)]
    assert cover([Lock("a", F_RDLCK, 0, 9, 1), Lock("b", F_WRLCK, 10, 12, 2)], 5, 30) == \
        [(F_RDLCK, 5, 9), (F_WRLCK, 10, 12), (F_UNLCK, 13, 30)]


def test_write_lock_needs_a_writable_fd(sb: Sandbox) -> None:
    fd = sb.open("/f", O_RDONLY)
    assert sb.lock(fd, F_WRLCK) == EBADF
    assert host_sees(sb.dir / "f") is None
