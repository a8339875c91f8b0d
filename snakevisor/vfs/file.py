"""Open file descriptions: what an application file descriptor points at.

A File is shared by every fd (and every process) that dup'ed or inherited it, like
Linux's struct file: it owns the offset and the status flags.  Concrete kinds live in
snakevisor.fsimpl (host files beneath the container root, stdio, later tmpfs/proc/pipes).
Every operation a kind does not support fails with the errno Linux gives for it.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from snakevisor.kernel.errors import (EBADF, EINVAL, ENODEV, ENOTDIR, ENOTTY, EOPNOTSUPP, ESPIPE,
                                      ESRCH, SyscallError)

if TYPE_CHECKING:
    from snakevisor.kernel.errors import WaitQueue
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task

O_ACCMODE = 0o3
O_RDONLY, O_WRONLY, O_RDWR = 0, 1, 2
#: status flags F_SETFL may change (Linux: O_APPEND|O_ASYNC|O_DIRECT|O_NOATIME|O_NONBLOCK)
SETFL_MASK = os.O_APPEND | 0o20000 | os.O_DIRECT | os.O_NOATIME | os.O_NONBLOCK

POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL = 0x1, 0x2, 0x4, 0x8, 0x10, 0x20
POLLRDNORM, POLLRDBAND, POLLWRNORM, POLLWRBAND, POLLRDHUP = 0x40, 0x80, 0x100, 0x200, 0x2000


#: F_SETOWN_EX/F_GETOWN_EX owner kinds
F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP = 0, 1, 2


class File:
    """Base open file description; subclasses override what they support."""

    #: sandbox path this file was opened by (for /proc/self/fd, *at dirfds, strace)
    path: str = ""
    #: a write never looks at the bytes (/dev/null, /dev/zero): Linux does not even read the
    #: buffer, so write(null, NULL, n) returns n
    discards_writes = False

    #: f_owner as F_SETOWN/FIOSETOWN set it: a pid, -pgid, or 0 (sockets send it SIGURG);
    #: with owner_type F_OWNER_TID (F_SETOWN_EX) a thread id
    owner = 0
    owner_type = 1  # F_OWNER_PID

    def __init__(self, flags: int, path: str = "") -> None:
        self.flags = flags  # access mode and status flags, as open(2) flags
        self.path = path
        self.refs = 0  # fds pointing here (across all fd tables)

    # -- access mode -------------------------------------------------------------------
    @property
    def readable(self) -> bool:
        return (self.flags & O_ACCMODE) in (O_RDONLY, O_RDWR) and not self.is_path_only

    @property
    def writable(self) -> bool:
        return (self.flags & O_ACCMODE) in (O_WRONLY, O_RDWR) and not self.is_path_only

    @property
    def is_path_only(self) -> bool:
        return bool(self.flags & os.O_PATH)

    def set_owner(self, task: "Task", who: int, kind: int | None = None) -> None:
        """f_setown: a process (who > 0) or a process group (who < 0), or with `kind`
        (F_SETOWN_EX's F_OWNER_TID/PID/PGRP) a thread, process or group; ESRCH when there
        is none by that number."""
        if kind is not None:
            if kind not in (F_OWNER_TID, F_OWNER_PID, F_OWNER_PGRP):
                raise SyscallError(EINVAL)
            who = -who if kind == F_OWNER_PGRP else who
        else:
            kind = F_OWNER_PGRP if who < 0 else F_OWNER_PID
        if who and not self._owner_targets(task.kernel, who, kind):
            raise SyscallError(ESRCH)
        self.owner, self.owner_type = who, kind

    def owner_targets(self, kernel: "Kernel") -> list:
        """Whom a signal to the owner reaches: Tasks (a thread owner) or ThreadGroups."""
        return self._owner_targets(kernel, self.owner, self.owner_type) if self.owner else []

    @staticmethod
    def _owner_targets(kernel: "Kernel", who: int, kind: int) -> list:
        if kind == F_OWNER_TID:
            task = kernel.tasks.get(who)
            return [task] if task is not None else []
        return [g for g in kernel.thread_groups.values()
                if g.alive and (g.pid == who if who > 0 else g.pgid == -who)]

    # -- operations (defaults are Linux's answers for files that lack them) -------------
    def read(self, task: "Task", count: int) -> bytes:
        raise SyscallError(EINVAL)

    def write(self, task: "Task", data: bytes) -> int:
        raise SyscallError(EINVAL)

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        raise SyscallError(ESPIPE)

    def pwrite(self, task: "Task", data: bytes, offset: int) -> int:
        raise SyscallError(ESPIPE)

    def lseek(self, offset: int, whence: int) -> int:
        raise SyscallError(ESPIPE)

    def stat(self) -> os.stat_result:
        raise SyscallError(EBADF)

    def getdents(self, count: int) -> bytes:
        raise SyscallError(ENOTDIR)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        raise SyscallError(ENOTTY)

    def fsync(self) -> None:
        raise SyscallError(EINVAL)

    #: read(2)/readv(2) straight into user memory — `(task, sink, count) -> int` — for kinds
    #: whose bytes must stay queued when the buffer cannot take them (sockets); None: read()
    read_into: "Callable | None" = None

    def truncate(self, length: int) -> None:
        raise SyscallError(EINVAL)

    def fallocate(self, task: "Task", mode: int, offset: int, length: int) -> None:
        """fallocate(2) once the generic checks passed (a regular file open for writing)."""
        raise SyscallError(EOPNOTSUPP)

    def set_status_flags(self, flags: int) -> None:
        """F_SETFL: the new open(2) flags; files backed by a host fd mirror what matters."""
        self.flags = flags

    def fcntl_pipe_size(self, task: "Task", cmd: int, arg: int) -> int:
        """F_GETPIPE_SZ/F_SETPIPE_SZ: only pipes have a size (EBADF otherwise, as Linux)."""
        raise SyscallError(EBADF)

    def mmap_fd(self) -> int:
        """A host fd the platform can map, or ENODEV when this file cannot be mapped."""
        raise SyscallError(ENODEV)

    # -- readiness (poll, select, epoll) -----------------------------------------------
    def poll_events(self) -> int:
        """The POLL* bits that hold now.  Regular files and directories are always ready."""
        return POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM

    def poll_queue(self) -> "WaitQueue | None":
        """A sentry queue notified whenever poll_events() may have changed (pipes...)."""
        return None

    def poll_host(self) -> tuple[int, int] | None:
        """(host fd, selectors.EVENT_* mask) whose readiness changes poll_events(), for
        files whose state lives in the host (the CLI's stdio)."""
        return None

    def readiness(self) -> tuple[int, int] | None:
        """(host fd, selector events) to wait on when an operation would block, if any."""
        return None

    def release(self) -> None:
        """The last fd pointing here closed."""


#: called with a description whose last reference is going, before its release (inotify's
#: IN_CLOSE_*); None until some sandbox of this process uses inotify
on_last_put: "Callable[[File], None] | None" = None


def default_llseek(pos: int, offset: int, whence: int, size: int) -> int:
    """Linux's default_llseek for a file of `size` bytes: the new position, EINVAL for an
    unknown whence or a negative result."""
    base = {os.SEEK_SET: 0, os.SEEK_CUR: pos, os.SEEK_END: size}.get(whence)
    if base is None or base + offset < 0:
        raise SyscallError(EINVAL)
    return base + offset


def put(file: File) -> None:
    """Drop one reference (an fd, a mapping, the loader's hold); the last one releases."""
    file.refs -= 1
    if file.refs <= 0:
        if on_last_put is not None:
            on_last_put(file)
        file.release()
