"""fcntl record locks (F_GETLK/F_SETLK/F_SETLKW and the F_OFD_* forms) and flock(2), served
from the sentry's lock tables (snakevisor/kernel/locks.py)."""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EBADF, EINVAL, SyscallError
from snakevisor.kernel.locks import F_RDLCK, F_UNLCK, F_WRLCK, INF, LockTable, file_key
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, u32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

F_GETLK, F_SETLK, F_SETLKW = 5, 6, 7
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
LOCK_CMDS = (F_GETLK, F_SETLK, F_SETLKW, F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW)
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8
_FLOCK = struct.Struct("<hh4xqqi4x")  # l_type, l_whence, (pad), l_start, l_len, l_pid


def tables(task: "Task") -> tuple[LockTable, LockTable]:
    """(record locks, flock locks) of the sandbox."""
    kernel = task.kernel
    if not hasattr(kernel, "locks"):
        kernel.locks, kernel.flocks = LockTable(), LockTable()
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


def fcntl_lock(task: "Task", file: "File", cmd: int, arg: int) -> int:
    """The lock commands of fcntl(2)."""
    ltype, whence, start, length, pid = _FLOCK.unpack(task.mm.read(arg, _FLOCK.size))
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
            task.mm.write(arg, struct.pack("<h", F_UNLCK))
        else:
            span = 0 if found.end >= INF else found.end - found.start + 1
            task.mm.write(arg, _FLOCK.pack(found.type, 0, found.start, span, found.pid))
        return 0
    if ltype == F_RDLCK and not file.readable or ltype == F_WRLCK and not file.writable:
        raise SyscallError(EBADF)
    file.locked = True  # type: ignore[attr-defined]  (release hooks look for it)
    records.set(key, owner, ltype, first, last, -1 if ofd else task.tg.pid,
                wait=cmd in (F_SETLKW, F_OFD_SETLKW), deadlock_check=not ofd)
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
    file.locked = True  # type: ignore[attr-defined]
    flocks.set(file_key(file), ("flock", file), ltype, 0, INF, -1, wait=not op & LOCK_NB)
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
    if hasattr(task.kernel, "locks"):
        records, _ = tables(task)
        records.release_owner(("posix", task.tg))
