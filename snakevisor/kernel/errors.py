"""How system call handlers report failure and waiting."""
from __future__ import annotations

import errno as _errno


class SyscallError(Exception):
    """Raised by a handler: the system call fails with this errno (returned as -errno)."""

    __slots__ = ("errno",)

    def __init__(self, err: int) -> None:
        self.errno = err

    def __repr__(self) -> str:
        return f"SyscallError({_errno.errorcode.get(self.errno, self.errno)})"


class MissingInterpreter(SyscallError):
    """execve's ENOENT because the `#!` or PT_INTERP interpreter is absent (names it for the CLI)."""

    __slots__ = ("path",)

    def __init__(self, path: bytes) -> None:
        super().__init__(_errno.ENOENT)
        self.path = path


class Block(Exception):
    """Raised by a handler that must wait.

    The task is parked; when one of the wake conditions happens the *same* system call is
    dispatched again with the same arguments, so handlers keep whatever they need to resume
    in ``task.syscall_state`` (cleared when the call finally completes).
    """

    __slots__ = ("deadline", "fd", "events", "queue", "queues", "fds")

    def __init__(self, deadline: float | None = None, fd: int | None = None, events: int = 0,
                 queue: "WaitQueue | None" = None, queues: "list[WaitQueue] | None" = None,
                 fds: "list[tuple[int, int]] | None" = None) -> None:
        self.deadline = deadline  #: time.monotonic() value at which to retry
        self.fd = fd  #: a host fd whose readiness (selectors.EVENT_*) wakes the task
        self.events = events
        self.queue = queue  #: a sentry wait queue whose notify() wakes the task
        #: waiting on many things at once (poll, select): any of them wakes the task
        self.queues = queues or ()
        self.fds = fds or ()  #: (host fd, selectors.EVENT_* mask) pairs


class WaitQueue:
    """Tasks parked until some sentry object changes (pipe data, child exit, futex...)."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list = []

    def notify(self) -> None:
        waiters, self.waiters = self.waiters, []
        for task in waiters:
            task.kernel.wake(task)


def err(e: int) -> SyscallError:
    return SyscallError(e)


EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, ECHILD = (
    _errno.EPERM, _errno.ENOENT, _errno.ESRCH, _errno.EINTR, _errno.EIO, _errno.ENXIO,
    _errno.E2BIG, _errno.ENOEXEC, _errno.EBADF, _errno.ECHILD)
EAGAIN, ENOMEM, EACCES, EFAULT, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR = (
    _errno.EAGAIN, _errno.ENOMEM, _errno.EACCES, _errno.EFAULT, _errno.EBUSY, _errno.EEXIST,
    _errno.EXDEV, _errno.ENODEV, _errno.ENOTDIR, _errno.EISDIR)
EINVAL, ENFILE, EMFILE, ENOTTY, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, EPIPE = (
    _errno.EINVAL, _errno.ENFILE, _errno.EMFILE, _errno.ENOTTY, _errno.EFBIG, _errno.ENOSPC,
    _errno.ESPIPE, _errno.EROFS, _errno.EMLINK, _errno.EPIPE)
ERANGE, ENAMETOOLONG, ENOSYS, ENOTEMPTY, ELOOP, EOVERFLOW, ENOTSUP, EOPNOTSUPP = (
    _errno.ERANGE, _errno.ENAMETOOLONG, _errno.ENOSYS, _errno.ENOTEMPTY, _errno.ELOOP,
    _errno.EOVERFLOW, _errno.ENOTSUP, _errno.EOPNOTSUPP)
ETIMEDOUT, ERESTARTSYS = _errno.ETIMEDOUT, 512
ELIBBAD_OR_NOEXEC = _errno.ELIBBAD  # a PT_INTERP that is not a usable ELF interpreter
