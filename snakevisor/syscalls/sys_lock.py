"""fcntl record locks (F_GETLK/F_SETLK/F_SETLKW and the F_OFD_* forms) and flock(2), served
from the sentry's lock tables (snakevisor/kernel/locks.py), which also hold the locks of
host-shared files on the host.

Waiting for a host process: the host offers no readiness for "this lock is free" and the
sentry never makes a blocking host call, so a waiting call whose only obstacle is a host
holder retries on a timer (backing off to HOST_RETRY_MAX), and at once whenever a lock of
the sandbox on that file goes away.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EBADF, EINVAL, Block, SyscallError
from snakevisor.kernel.locks import (F_OFD_GETLK, F_OFD_SETLK, F_RDLCK, F_UNLCK, F_WRLCK, FLOCK,
                                     INF, HostBusy, LockTable, file_key, span)
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, u32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_OFD_SETLKW = 38
LOCK_CMDS = (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8
HOST_RETRY_FIRST, HOST_RETRY_MAX = 0.001, 0.025  #: seconds between tries against a host holder


def host_lock_fd(file: "File") -> int | None:
    """The host fd whose locks must mirror this description's, or None for a file the
    sandbox has to itself: only host files not reached through the overlay (whose lower
    layer the sandbox sees as a private copy) are shared with host processes."""
    from snakevisor.fsimpl.hostfs import HostFile
    if not isinstance(file, HostFile) or file.refs <= 0:
        return None
    node = getattr(file, "attr_inode", None) or getattr(file, "inode", None)
    if getattr(getattr(node, "fs", None), "fstype", "") == "overlay":
        return None
    return file.fd


def tables(task: "Task") -> tuple[LockTable, LockTable]:
    """(record locks, flock locks) of the sandbox."""
    kernel = task.kernel
    if not hasattr(kernel, "locks"):
        kernel.locks = LockTable(host_fd=host_lock_fd, warn=kernel.warn_once)
        kernel.flocks = LockTable(flock=True, host_fd=host_lock_fd, warn=kernel.warn_once)
    return kernel.locks, kernel.flocks


def _range(task: "Task", file: "File", whence: int, start: int, length: int) -> tuple[int, int]:
    if whence == 0:
        base = 0
    elif whence == 1:
        base = file.lseek(0, 1)
    elif whence == 2:
        base = file.stat().st_size
    else:
        raise SyscallError(EINVAL)
    first = base + start
    if length > 0:
        last = first + length - 1
    elif length == 0:
        last = INF
    else:
        first, last = first + length, first - 1
    if first < 0:
        raise SyscallError(EINVAL)
    return first, last


def _set(task: "Task", table: LockTable, key: tuple, owner: tuple, ltype: int, first: int,
         last: int, pid: int, wait: bool, file: "File", deadlock_check: bool = False) -> None:
    """table.set, turning a host holder into EAGAIN or, for a waiting call, a timed retry."""
    try:
        table.set(key, owner, ltype, first, last, pid, wait=wait, deadlock_check=deadlock_check,
                  via=file)
    except HostBusy:
        if not wait:
            raise
        state = task.syscall_state
        if state is None:
            state = task.syscall_state = {}
        delay = state["host_retry"] = min(state.get("host_retry", HOST_RETRY_FIRST / 2) * 2,
                                          HOST_RETRY_MAX)
        raise Block(deadline=task.kernel.now() + delay, queue=table.queue(key)) from None


def fcntl_lock(task: "Task", file: "File", cmd: int, arg: int) -> int:
    """The lock commands of fcntl(2)."""
    ltype, whence, start, length, pid = FLOCK.unpack(task.mm.read(arg, FLOCK.size))
    ofd = cmd in (F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
    if ltype not in (F_RDLCK, F_WRLCK, F_UNLCK) or (ofd and pid != 0):
        raise SyscallError(EINVAL)
    first, last = _range(task, file, whence, start, length)
    records, _ = tables(task)
    owner = ("ofd", file) if ofd else ("posix", task.tg)
    key = file_key(file)
    if cmd in (F_GETLK, F_OFD_GETLK):
        if ltype == F_UNLCK:
            raise SyscallError(EINVAL)
        found = records.test(key, owner, ltype, first, last)
        if found is None:
            found = records.host.test(key, owner, ltype, first, last, file)
        if found is None:
            task.mm.write(arg, struct.pack("<h", F_UNLCK))
        else:
            task.mm.write(arg, FLOCK.pack(found.type, 0, found.start, span(found.start, found.end),
                                          found.pid))
        return 0
    if ltype == F_RDLCK and not file.readable or ltype == F_WRLCK and not file.writable:
        raise SyscallError(EBADF)
    _set(task, records, key, owner, ltype, first, last, -1 if ofd else task.tg.pid,
         wait=cmd in (F_SETLKW, F_OFD_SETLKW), file=file, deadlock_check=not ofd)
    return 0


@syscall("flock")
def sys_flock(task: "Task", fd: int, op: int, *_: int) -> int:
    file = task.fds.get(s32(fd))
    op = u32(op)
    kind = op & ~LOCK_NB
    if kind not in (LOCK_SH, LOCK_EX, LOCK_UN) or file.is_path_only:
        raise SyscallError(EINVAL if kind not in (LOCK_SH, LOCK_EX, LOCK_UN) else EBADF)
    _, flocks = tables(task)
    ltype = {LOCK_SH: F_RDLCK, LOCK_EX: F_WRLCK, LOCK_UN: F_UNLCK}[kind]
    key, owner = file_key(file), ("flock", file)
    held = flocks.held(key, owner)
    if ltype != F_UNLCK and held and held[0].type != ltype:
        # a conversion is not atomic: Linux drops the old lock first, and a conversion that
        # fails (EWOULDBLOCK) or is interrupted leaves the file without it
        flocks.set(key, owner, F_UNLCK, 0, INF, -1, wait=False)
    _set(task, flocks, key, owner, ltype, 0, INF, -1, wait=not op & LOCK_NB, file=file)
    return 0


def on_close(task: "Task", file: "File", last: bool) -> None:
    """A descriptor of `file` is closing: the process's record locks on the inode go
    (POSIX's rule, whichever fd took them); if it is the file's last reference, its OFD and
    flock locks too."""
    records, flocks = tables(task)
    if not records.locks and not flocks.locks:
        return
    try:
        key = file_key(file)
    except (OSError, SyscallError):
        return  # a file without an inode of its own holds no locks
    records.release(key, ("posix", task.tg))
    if last:
        records.release(key, ("ofd", file))
        flocks.release(key, ("flock", file))


def on_exit(task: "Task") -> None:
    """A process is exiting: its POSIX locks go now.  Its fds close right after, and with the
    last of a description its OFD and flock locks (the tables forget them when they next
    look: locks._released), so every waiter looks again once the exit is done."""
    if hasattr(task.kernel, "locks"):
        records, flocks = tables(task)
        records.release_owner(("posix", task.tg))
        for table in (records, flocks):
            for key, queue in list(table.queues.items()):
                if queue.waiters:
                    queue.notify()
                else:
                    del table.queues[key]  # (queues are made again on demand)
