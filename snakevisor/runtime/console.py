"""The container's terminal (process.terminal with --console-socket).

How it fits: the engine wants the master of a host pty over its console socket, and the
application must see a real terminal of the sandbox's own devpts (its line discipline does
echo, ^C/^Z job control and window-size signals, inside the sandbox).  So `create` opens a
host pty, sends the master to the engine and hands the slave to the sentry; the sentry puts
that host slave in raw mode (the host's discipline must not cook anything twice), makes it
its controlling terminal (so the engine's resizes reach it as SIGWINCH), and relays bytes
between it and the master of a sandbox pty whose slave becomes the first process's stdio and
controlling terminal.  The relay runs in the kernel's loop (Kernel.watch_fd for input,
Terminal.master_wait callbacks for output), never inside a system call.
"""
from __future__ import annotations

import errno
import fcntl
import os
import signal
import socket
import struct
import sys
import termios
import tty
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task

RETRY = 0.01  #: seconds before retrying output the engine is not reading yet
CHUNK = 65536


def open_host_pty(console_socket: str, size: tuple[int, int] | None = None) -> int:
    """A host pty (sized rows x columns when process.consoleSize asks) whose master goes to
    the engine's console socket (SCM_RIGHTS, the slave's name as payload, as runc sends
    it); returns the slave."""
    master, slave = os.openpty()
    try:
        if size is not None:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
        name = os.ttyname(slave)
        directory, base = os.path.split(os.path.abspath(console_socket))
        dfd = os.open(directory or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            path = f"/proc/self/fd/{dfd}/{base}"
            for kind in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):  # conmon: seqpacket
                sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
                try:
                    sock.connect(path)
                except OSError as exc:
                    sock.close()
                    if exc.errno == errno.EPROTOTYPE:
                        continue
                    raise
                with sock:
                    socket.send_fds(sock, [name.encode()], [master])
                break
        finally:
            os.close(dfd)
    except BaseException:
        os.close(slave)
        raise
    finally:
        os.close(master)
    return slave


def take_host_terminal(slave: int) -> None:
    """In the sentry, before anything else: a session of its own with the host slave as its
    controlling terminal (resizes arrive as SIGWINCH, the engine's hang-up as SIGHUP)."""
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    tty.setraw(slave)
    os.set_blocking(slave, False)


class ConsoleRelay:
    """Bytes between the host slave and a sandbox pty; the application's terminal."""

    def __init__(self, kernel: "Kernel", host: int) -> None:
        self.kernel = kernel
        self.host = host
        self.terminal = None
        self.pair = None
        self.master = None
        self.inbuf = b""  #: typed by the engine, not yet taken by the sandbox's discipline
        self.outbuf = b""  #: written by the application, not yet taken by the engine
        self.scheduled = False
        self.hung_up = False
        self.closed = False

    def attach(self, task: "Task", host_signals: bool = True) -> None:
        """Give a process (stopped before its first instruction, a session leader) a new
        sandbox pty as fds 0-2 and controlling terminal, sized like the engine's.  With
        host_signals the sentry's own SIGWINCH/SIGHUP drive resizes and hang-up (the first
        process: the host slave is the sentry's controlling terminal); an exec'd process's
        stand-in reports its resizes instead."""
        from snakevisor.fsimpl.devpts import sandbox_devpts

        kernel = self.kernel
        devpts = sandbox_devpts(task)  # of its own mount namespace (a pod member has one)
        ptmx = devpts.root().lookup(task, b"ptmx")
        master = devpts.open_master(task, os.O_RDWR | os.O_NOCTTY, ptmx, "/dev/ptmx")
        master.refs += 1  # ours for the sandbox's life
        pair = master.pair
        pair.locked = False
        slave = pair.open_slave(task, os.O_RDWR, noctty=True)
        tg = task.tg
        for fd in (0, 1, 2):
            tg.fds.set(fd, slave)
        self.master, self.pair, self.terminal = master, pair, pair.terminal
        pair.terminal.acquire(tg)
        if host_signals:  # (first: a resize from now on is seen, by the read below or later)
            from snakevisor.runtime.host_signals import host_signals as sentry_signals
            events = sentry_signals(kernel)
            events.on(signal.SIGWINCH, lambda: self.sync_winsize(signal_change=True))
            events.on(signal.SIGHUP, self._hangup)
        self.sync_winsize(signal_change=False)
        kernel.watch_fd(self.host, self._input)
        self._follow_output()

    def close(self) -> None:
        """The process it served ended: stop relaying, let go of the host slave and of our
        hold on the sandbox pty's master."""
        if self.closed:
            return
        self.closed = True
        if self.outbuf or (self.terminal is not None and self.terminal.out):
            self._pump()  # its last words
        if not self.hung_up:
            self.kernel.unwatch_fd(self.host)
        os.close(self.host)
        if self.master is not None:
            from snakevisor.vfs.file import put
            put(self.master)

    # -- engine -> application ---------------------------------------------------------
    def _input(self) -> None:
        try:
            data = os.read(self.host, CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: the engine closed the master
            data = b""
        if not data:
            self._hangup()
            return
        self.inbuf += data
        self._feed()

    def _feed(self) -> None:
        term = self.terminal
        assert term is not None
        while self.inbuf:
            taken = term.receive(self.inbuf)
            if not taken:
                break  # full: _pump retries when the discipline makes room
            self.inbuf = self.inbuf[taken:]
        self._pump()

    def _hangup(self) -> None:
        if self.hung_up:
            return
        self.hung_up = True
        self.kernel.unwatch_fd(self.host)
        assert self.terminal is not None
        self.terminal.hangup()  # SIGHUP to the foreground group, as a closed master does

    # -- application -> engine ---------------------------------------------------------
    def _follow_output(self) -> None:
        from snakevisor.vfs.epoll import QueueCallback
        assert self.terminal is not None
        self.terminal.master_wait.waiters.append(QueueCallback(self._schedule))

    def _schedule(self) -> None:
        """Called while some system call changes the terminal: relay after it, not in it."""
        if not self.scheduled:
            self.scheduled = True
            self.kernel.call_at(self.kernel.now(), self._run)

    def _run(self) -> None:
        self.scheduled = False
        if self.closed:
            return
        if self.inbuf:
            self._feed()
        else:
            self._pump()

    def _pump(self) -> None:
        term = self.terminal
        assert term is not None
        while True:
            if not self.outbuf:
                self.outbuf = term.take_output(CHUNK)
                if not self.outbuf:
                    break
            try:
                written = os.write(self.host, self.outbuf)
            except BlockingIOError:
                self.scheduled = True
                self.kernel.call_at(self.kernel.now() + RETRY, self._run)
                break
            except OSError:  # the engine is gone: drop what it will never read
                self.outbuf = b""
                term.take_output(len(term.out))
                break
            self.outbuf = self.outbuf[written:]
        self._follow_output()

    # -- host signals ------------------------------------------------------------------
    def sync_winsize(self, signal_change: bool) -> None:
        term = self.terminal
        assert term is not None
        try:
            size = fcntl.ioctl(self.host, termios.TIOCGWINSZ, bytes(8))
        except OSError:
            return
        if signal_change:
            term.set_winsize(size)  # SIGWINCH to the foreground group when it changed
        else:
            term.winsize = bytes(size)


class UserTerminal:
    """`snakevisor do` typed at a terminal: the application gets a pty of the sandbox's devpts
    relayed to the user's terminal, as `docker run -it` gives one.

    Why: handing the host terminal itself to the sandbox cannot give the application job
    control -- the terminal's foreground group is a host process group (ours), so ^C would end
    the sentry, and TIOCSPGRP from inside cannot be honoured.  With the user's terminal in raw
    mode every key reaches the sandbox's line discipline, which sends ^C and ^Z to the
    application's foreground job; the terminal's settings are restored when the sandbox ends.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd  #: a description of our own of the user's terminal
        self.saved = termios.tcgetattr(fd)
        self.relay: ConsoleRelay | None = None

    @classmethod
    def open(cls) -> "UserTerminal | None":
        """The user's terminal when stdin, stdout and stderr are all it and we are its
        foreground job; None otherwise (redirected stdio stays the application's)."""
        try:
            if not all(os.isatty(fd) for fd in (0, 1, 2)) or os.tcgetpgrp(0) != os.getpgrp():
                return None
            fd = os.open(os.ttyname(0), os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            return cls(fd)
        except termios.error:
            os.close(fd)
            return None

    def attach(self, kernel: "Kernel") -> None:
        """Sandbox.run's on_ready: raw mode, and the first process on a sandbox pty."""
        assert kernel.init is not None
        tty.setraw(self.fd, termios.TCSANOW)  # (TCSANOW: keys typed ahead are kept)
        os.set_blocking(self.fd, False)
        # our own lines (--strace, warnings) on the raw terminal need their carriage returns
        sys.stderr.flush()
        sys.stderr.reconfigure(newline="\r\n")  # type: ignore[union-attr]
        self.relay = ConsoleRelay(kernel, os.dup(self.fd))
        self.relay.attach(kernel.init.tasks[0])

    def close(self) -> None:
        """The sandbox ended: its last output, then the user's settings back."""
        try:
            if self.relay is not None:
                os.set_blocking(self.fd, True)  # (the last words are written, not retried)
                self.relay.close()
        finally:
            sys.stderr.flush()
            sys.stderr.reconfigure(newline=None)  # type: ignore[union-attr]
            try:
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            except termios.error:
                pass  # the terminal is gone (hung up)
            os.close(self.fd)
