"""The sandbox's stdin/stdout/stderr: the `snakevisor do` command line's own descriptors.

`snakevisor do` behaves like running the command directly, so the application's fds 0-2
are the CLI's (a terminal, a pipe or a redirected file), reached through dups the sentry
holds.  Reads never block the event loop: a read that would wait parks the task on the
host fd's readiness (Block).  Writes wait for writability the same way, but once the fd
is writable a large write to a pipe may still block the loop until the reader drains it
(short, and only when the reader is slower than us).  The app's O_NONBLOCK is ours alone:
the host file description is shared with the user's terminal and must not change.
"""
from __future__ import annotations

import fcntl
import os
import select
import stat as st_
from selectors import EVENT_READ, EVENT_WRITE
from typing import TYPE_CHECKING

from snakevisor.fsimpl.hostfs import host_fstatfs
from snakevisor.kernel.errors import EAGAIN, ENODEV, ENOTTY, Block, SyscallError
from snakevisor.fsimpl.hostfd import HostFdFile
from snakevisor.vfs.file import File

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

TCGETS, TCSETS, TCSETSW, TCSETSF = 0x5401, 0x5402, 0x5403, 0x5404
TCSBRK, TCXONC, TCFLSH = 0x5409, 0x540A, 0x540B
TIOCGPGRP, TIOCOUTQ, TIOCGWINSZ, TIOCSWINSZ = 0x540F, 0x5411, 0x5413, 0x5414
FIONREAD = 0x541B
TERMIOS_SIZE, WINSIZE_SIZE = 36, 8  # the kernel's struct termios (not glibc's) and winsize
#: terminal requests passed to the host tty: request -> (bytes read from app, bytes written back)
_TTY_IN_OUT = {TCGETS: (0, TERMIOS_SIZE), TCSETS: (TERMIOS_SIZE, 0), TCSETSW: (TERMIOS_SIZE, 0),
               TCSETSF: (TERMIOS_SIZE, 0), TIOCGWINSZ: (0, WINSIZE_SIZE),
               TIOCSWINSZ: (WINSIZE_SIZE, 0), TIOCOUTQ: (0, 4)}
#: terminal requests whose argument is a plain integer
_TTY_INT_ARG = (TCSBRK, TCXONC, TCFLSH)


class StdioFile(HostFdFile):
    """One of the CLI's stdio descriptors, as an open file description of the sandbox."""

    def __init__(self, hostfd: int) -> None:
        host_flags = fcntl.fcntl(hostfd, fcntl.F_GETFL)
        super().__init__(host_flags & ~os.O_CLOEXEC)
        self.fd = hostfd
        mode = os.fstat(hostfd).st_mode
        self.regular = st_.S_ISREG(mode) or st_.S_ISBLK(mode)  # never waits
        self.tty = os.isatty(hostfd)
        try:
            self.path = os.readlink(f"/proc/self/fd/{hostfd}")
        except OSError:
            self.path = ""
        self._in = select.poll()
        self._in.register(hostfd, select.POLLIN)
        self._out = select.poll()
        self._out.register(hostfd, select.POLLOUT)

    def __repr__(self) -> str:
        return f"StdioFile(fd={self.fd}, path={self.path!r})"

    def _wait(self, events: int) -> None:
        if self.flags & os.O_NONBLOCK:
            raise SyscallError(EAGAIN)
        raise Block(fd=self.fd, events=events)

    # -- I/O ---------------------------------------------------------------------------
    def read(self, task: "Task", count: int) -> bytes:
        if not self.regular and not self._in.poll(0):
            self._wait(EVENT_READ)
        return super().read(task, count)

    def write(self, task: "Task", data: bytes) -> int:
        if not self.regular and not self._out.poll(0):
            self._wait(EVENT_WRITE)
        return super().write(task, data)

    # pread/lseek/...: a redirected regular file seeks as it would natively; pipes and
    # terminals get ESPIPE from the host, as Linux answers for them (HostFdFile).
    def statfs(self) -> bytes:
        return host_fstatfs(self.fd)

    def readiness(self) -> tuple[int, int] | None:
        return self.fd, EVENT_READ

    def poll_events(self) -> int:
        """What the host says of our fd right now (a terminal or pipe changes under us),
        POLLHUP/POLLERR included: the same answer the application would get natively."""
        probe = select.poll()
        probe.register(self.fd, select.POLLIN | select.POLLPRI | select.POLLOUT | select.POLLRDNORM
                       | select.POLLRDBAND | select.POLLWRNORM | select.POLLWRBAND | select.POLLRDHUP)
        ready = probe.poll(0)
        return ready[0][1] if ready else 0

    def poll_host(self) -> tuple[int, int] | None:
        """Our fd for the event loop, in the directions our access mode allows.  None when
        epoll refuses it (regular files, /dev/null): such files are always ready anyway."""
        pollable = getattr(self, "_epollable", None)
        if pollable is None:
            pollable = False
            if not self.regular:
                probe = select.epoll()
                try:
                    probe.register(self.fd, select.EPOLLIN)
                    pollable = True
                except OSError:
                    pass
                finally:
                    probe.close()
            self._epollable = pollable
        if not pollable:
            return None
        mask = (EVENT_READ if self.readable else 0) | (EVENT_WRITE if self.writable else 0)
        return self.fd, mask or EVENT_READ

    def mmap_fd(self) -> int:
        if not self.regular:
            raise SyscallError(ENODEV)
        return self.fd

    # -- terminal control --------------------------------------------------------------
    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        if request == FIONREAD:
            out = self._host_ioctl(request, b"\0" * 4)
            task.tg.mm.write(arg, out)
            return 0
        if not self.tty:
            raise SyscallError(ENOTTY)
        if request == TIOCGPGRP:
            task.tg.mm.write(arg, self._foreground(task).to_bytes(4, "little", signed=True))
            return 0
        if request in _TTY_INT_ARG:
            try:
                return fcntl.ioctl(self.fd, request, arg & 0xFFFFFFFF)
            except OSError as e:
                raise SyscallError(e.errno) from None
        shape = _TTY_IN_OUT.get(request)
        if shape is None:
            task.kernel.warn_once(f"ioctl:tty:{request:#x}",
                                  f"ioctl({request:#x}) on the terminal is not supported -> ENOTTY")
            raise SyscallError(ENOTTY)
        size_in, size_out = shape
        data = task.tg.mm.read(arg, size_in) if size_in else b"\0" * size_out
        out = self._host_ioctl(request, data)
        if size_out:
            task.tg.mm.write(arg, out[:size_out])
        return 0

    def _host_ioctl(self, request: int, data: bytes) -> bytes:
        try:
            return fcntl.ioctl(self.fd, request, data)
        except OSError as e:
            raise SyscallError(e.errno) from None

    def _foreground(self, task: "Task") -> int:
        """The terminal's foreground group in sandbox numbering.

        When the sandbox is the terminal's foreground job (its host pgrp is the sentry's),
        the sandbox's own process group is in front; otherwise a group of the host is,
        which no sandbox process belongs to (reported as 0x7fffffff).
        """
        try:
            host_fg = os.tcgetpgrp(self.fd)
        except OSError as e:
            raise SyscallError(e.errno) from None
        if host_fg == os.getpgrp():
            return task.tg.pgid
        return 0x7FFFFFFF

#: fds among 0-2 that the caller of the sentry had closed (found by reserve_closed_stdio)
_closed_stdio: set[int] | None = None


def reserve_closed_stdio() -> None:
    """Note which of fds 0-2 the caller closed and park /dev/null there, so the sentry's own
    descriptors (signalfd, sockets, host files) never land on 0-2 and pose as stdio.
    Call before the sentry opens anything; later calls keep the first answer."""
    global _closed_stdio
    if _closed_stdio is not None:
        return
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
    for fd in sorted(closed):
        got = os.open("/dev/null", os.O_RDWR)
        if got != fd:
            os.dup2(got, fd, inheritable=False)
            os.close(got)
    _closed_stdio = closed


def stdio_files(inherited: int = 0) -> list[File | None]:
    """Files for the sandbox's fds 0, 1, 2 (None where the caller had that fd closed) and
    then 3 .. 3+inherited-1 (the OCI runtime's --preserve-fds)."""
    reserve_closed_stdio()
    assert _closed_stdio is not None
    return [None if fd in _closed_stdio else StdioFile(os.dup(fd))
            for fd in range(3 + inherited)]
