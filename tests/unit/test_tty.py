"""Pseudo-terminals and the line discipline (vfs/tty.py, fsimpl/devpts.py) through the
real handlers on fake processes.

What Linux does was checked natively: the cooked input and echo of the table below come
from a host pty (n_tty), as do the default termios (compared live with os.openpty) and
the 4096-byte line limit; tests/c/pty.c compares the rest end to end.  Blocking is checked
the way the kernel drives it: the handler raises Block, the test changes the world
(types, reads, closes), then dispatches the same call again.  Time is a fake clock, so
VMIN/VTIME deadlines are checked without waiting.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct
import termios
from typing import Any

import pytest

from snakevisor.fsimpl.devices import DeviceAttrs, TerminalAliasFile, open_device
from snakevisor.fsimpl.devpts import DevPtsFs, MasterFile, SlaveFile
from snakevisor.kernel.errors import Block, SyscallError
from snakevisor.kernel.task import Credentials, Task, ThreadGroup
from snakevisor.vfs import tty as T
from snakevisor.vfs.epoll import QueueCallback, can_poll
from snakevisor.vfs.fdtable import FdTable
from snakevisor.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM
from tests.unit.conftest import DispatchEnv

O_RDWR, O_NOCTTY, O_NONBLOCK = os.O_RDWR, os.O_NOCTTY, os.O_NONBLOCK
SIGHUP, SIGINT, SIGQUIT, SIGCONT, SIGTSTP, SIGTTIN, SIGTTOU, SIGWINCH = 1, 2, 3, 18, 20, 21, 22, 28
SIG_IGN = 1


class Env(DispatchEnv):
    """A fake sandbox with a devpts instance: pid 1 (`task`) plus processes made with
    `process()`, a recorded send_signal, call_at collecting callbacks and a fake clock."""

    def __init__(self) -> None:
        super().__init__()
        k = self.kernel = self.p.kernel
        k.thread_groups = {1: self.p.tg}  # type: ignore[attr-defined]
        self.sent: list[tuple[int, int]] = []  # (pid, signal)
        k.send_signal = lambda target, sig, info=None: self.sent.append(  # type: ignore
            (getattr(target, "pid", 0), sig))
        self.timers: list[Any] = []
        k.call_at = lambda when, fn: self.timers.append(fn)  # type: ignore[attr-defined]
        self.clock = 100.0
        k.now = lambda: self.clock  # type: ignore[method-assign]
        self.devpts = DevPtsFs()

    def process(self, pid: int, pgid: int, sid: int, parent: ThreadGroup | None = None) -> Task:
        p = self.p
        tg = ThreadGroup(self.kernel, pid, parent or p.tg,  # type: ignore[arg-type]
                         p.tg.mm, FdTable(), p.tg.fs)
        tg.pgid, tg.sid = pgid, sid
        task = Task(self.kernel, pid, tg, None)  # type: ignore[arg-type]
        tg.tasks.append(task)
        self.kernel.thread_groups[pid] = tg  # type: ignore[attr-defined]
        return task

    # -- files -----------------------------------------------------------------------------
    def ptmx(self, task: Task | None = None, unlock: bool = True) -> tuple[int, int]:
        """A new master installed in task's table: (fd, pty number)."""
        task = task or self.task
        master = self.devpts.ptmx.open(task, O_RDWR | O_NOCTTY)
        fd = task.fds.install(master)
        if unlock:
            assert self.ioctl(fd, T.TIOCSPTLCK, struct.pack("<i", 0), task=task)[0] == 0
        return fd, master.pair.index

    def open_slave(self, n: int, flags: int = O_RDWR | O_NOCTTY, task: Task | None = None) -> int:
        task = task or self.task
        node = self.devpts.root().lookup(task, str(n).encode())
        if node is None:
            return -errno.ENOENT
        try:
            return task.fds.install(node.open(task, flags))
        except SyscallError as e:
            return -e.errno

    def pair(self, task: Task | None = None) -> tuple[int, int]:
        m, n = self.ptmx(task)
        return m, self.open_slave(n, task=task)

    def write(self, fd: int, data: bytes, task: Task | None = None) -> int:
        return self.dispatch("write", fd, self.p.put(data), len(data), task=task)

    def read(self, fd: int, count: int = 4096, task: Task | None = None) -> bytes | int:
        buf = self.p.alloc(count)
        n = self.dispatch("read", fd, buf, count, task=task)
        return n if n < 0 else self.p.get(buf, n)

    def ioctl(self, fd: int, request: int, arg: bytes | int = 0, out: int = 0,
              task: Task | None = None) -> tuple[int, bytes]:
        """(result, the argument buffer afterwards) — arg bytes are copied in first."""
        if isinstance(arg, bytes):
            addr = self.p.put(arg + bytes(max(0, out - len(arg))))
            ret = self.dispatch("ioctl", fd, request, addr, task=task)
            return ret, self.p.get(addr, max(out, len(arg)))
        return self.dispatch("ioctl", fd, request, arg, task=task), b""

    def get_int(self, fd: int, request: int, task: Task | None = None) -> int:
        ret, raw = self.ioctl(fd, request, bytes(4), task=task)
        return ret if ret < 0 else struct.unpack("<i", raw)[0]

    def termios(self, fd: int) -> T.Termios:
        return self.file(fd).terminal.termios

    def set_termios(self, fd: int, iflag: int, oflag: int, lflag: int, vmin: int = 1,
                    vtime: int = 0) -> None:
        t = self.termios(fd).copy()
        t.iflag, t.oflag, t.lflag = iflag, oflag, lflag
        t.cc[T.VMIN], t.cc[T.VTIME] = vmin, vtime
        assert self.ioctl(fd, T.TCSETS, t.pack(T.TCGETS))[0] == 0

    def file(self, fd: int, task: Task | None = None) -> Any:
        return (task or self.task).fds.get(fd)

    def reblock(self, name: str, *args: int, task: Task | None = None) -> Block:
        """Dispatch a call that must park again."""
        with pytest.raises(Block) as info:
            self.dispatch(name, *args, task=task)
        return info.value


def _host_termios(request: int, size: int) -> bytes:
    m, s = os.openpty()
    try:
        return fcntl.ioctl(s, request, bytes(size))
    finally:
        os.close(m)
        os.close(s)


# -- termios -----------------------------------------------------------------------------------
def test_default_termios_is_a_host_ptys() -> None:
    env = Env()
    m, s = env.pair()
    for request, size in ((T.TCGETS2, 44), (T.TCGETS, 36), (T.TCGETA, 17)):
        ours = env.ioctl(s, request, bytes(size))
        assert ours == (0, _host_termios(request, size)[:size])
        assert env.ioctl(m, request, bytes(size)) == ours  # a master reports its slave's
    assert env.ioctl(s, T.TIOCGWINSZ, bytes(8)) == (0, bytes(8))


def test_set_termios_forms_and_speeds() -> None:
    """TCSETA replaces the low 16 bits only; speeds follow the Bnnn bits (BOTHER: the
    explicit speed); a pty stays CS8 without parity."""
    env = Env()
    m, s = env.pair()
    t = env.termios(s).copy()
    t.cflag = (t.cflag & ~(T.CBAUD | T.CSIZE)) | 0o15 | 0o20 | T.PARENB  # B9600, CS6
    assert env.ioctl(m, T.TCSETS, t.pack(T.TCGETS))[0] == 0
    got = env.termios(s)
    assert (got.ospeed, got.ispeed) == (9600, 9600)
    assert (got.cflag & T.CSIZE, got.cflag & T.PARENB) == (T.CS8, 0)
    two = env.termios(s).copy()
    two.cflag = (two.cflag & ~T.CBAUD) | T.BOTHER
    two.ospeed = two.ispeed = 12345
    assert env.ioctl(s, T.TCSETS2, two.pack(T.TCGETS2))[0] == 0
    assert (env.termios(s).ospeed, env.termios(s).ispeed) == (12345, 12345)
    before = env.termios(s).iflag
    termio = struct.pack("<4HB8B", 0, 0o5, 0o277, 0, 0, *T.INIT_C_CC[:8])
    assert env.ioctl(s, T.TCSETA, termio)[0] == 0
    assert env.termios(s).iflag == before & 0xFFFF0000 and env.termios(s).oflag == 0o5
    assert env.ioctl(s, T.TCSETS, 16)[0] == -errno.EFAULT


# -- the line discipline, against results recorded from a host pty ------------------------------
D = T.DEFAULT_LFLAG
#: (what, iflag, oflag, lflag, batches typed, the master's reads after each, the slave's
#: non-blocking reads afterwards) — as Linux's n_tty gives them (generated with os.openpty)
NATIVE = [
    ("canonical editing", 0o2400, 0o5, 0o105073,
     [b"ab\x7fc\n", b"foo bar \x17baz\n", b"xyz\x15q\n"],
     [b"ab\x08 \x08c\r\n", b"foo bar \x08 \x08\x08 \x08\x08 \x08\x08 \x08baz\r\n",
      b"xyz\x08 \x08\x08 \x08\x08 \x08q\r\n"], [b"ac\n", b"foo baz\n", b"q\n"]),
    ("tab erase after output columns", 0o400, 0o5, 0o105073, [b"ab\tc\x7f\x7fd\n"],
     [b"ab\tc\x08 \x08\x08\x08\x08\x08\x08\x08d\r\n"], [b"abd\n"]),
    ("lnext and reprint", 0o400, 0o5, 0o105073, [b"\x16\x03\x16\x7fz\x12\n"],
     [b"^\x08^C^\x08^?z^R\r\n^C^?z\r\n"], [b"\x03\x7fz\n"]),
    ("eof placement", 0o400, 0o5, 0o105073, [b"abc\x04\x04one\n"],
     [b"abcone\r\n"], [b"abc", b"", b"one\n"]),
    ("signal char discards the batch's echo", 0o400, 0o5, 0o105073, [b"abc\x03def\n"],
     [b"^Cdef\r\n"], [b"def\n"]),
    ("noflsh keeps input", 0o400, 0o5, 0o105273, [b"abc\x03def\n"],
     [b"abc^Cdef\r\n"], [b"abcdef\n"]),
    ("stop holds echoes, start releases", 0o2400, 0o5, 0o105073, [b"ab\x13cd\n", b"\x11"],
     [b"", b"abcd\r\n"], [b"abcd\n"]),
    ("ixany restarts", 0o6400, 0o5, 0o105073, [b"a\x13", b"b\n"], [b"", b"ab\r\n"], [b"ab\n"]),
    ("0xff echo is raw", 0o400, 0o3, 0o105073, [b"\xff\xe9x\n"], [b"\xff\xc9X\n"],
     [b"\xff\xe9x\n"]),
    ("echoprt", 0o400, 0o5, 0o107073, [b"abc\x7f\x7fd\n"], [b"abc\\cb/d\r\n"], [b"ad\n"]),
    ("utf8 erase", 0o40400, 0o5, 0o105073, [b"x\xc3\xa9\x7f\xc3\xa9\n"],
     [b"x\xc3\xa9\x08 \x08\xc3\xa9\r\n"], [b"x\xc3\xa9\n"]),
    ("echok without echoke", 0o400, 0o5, 0o101073, [b"xy\x15z\n"], [b"xy^U\r\nz\r\n"], [b"z\n"]),
    ("non-canonical literal newline", 0o400, 0o5, 0o1011, [b"\n\r\x01"], [b"^J\r\n^A"],
     [b"\n\n\x01"]),
    ("istrip inlcr igncr", 0o340, 0o5, 0o105073, [b"\xe9\r\n", b"\r"], [b"i^M", b""], []),
]


@pytest.mark.parametrize("what,iflag,oflag,lflag,typed,echoes,reads", NATIVE,
                         ids=[c[0] for c in NATIVE])
def test_line_discipline_as_linux(what: str, iflag: int, oflag: int, lflag: int,
                                  typed: list[bytes], echoes: list[bytes],
                                  reads: list[bytes]) -> None:
    env = Env()
    m, s = env.pair()
    env.set_termios(s, iflag, oflag, lflag)
    got = []
    for batch in typed:
        assert env.write(m, batch) == len(batch)
        got.append(env.read(m) if env.file(m).terminal.out else b"")
    assert got == echoes
    env.dispatch("fcntl", s, 4, O_NONBLOCK)  # F_SETFL
    cooked = []
    while isinstance(r := env.read(s), bytes):
        cooked.append(r)
    assert r == -errno.EAGAIN and cooked == reads


def test_a_long_line_keeps_its_last_place_for_the_newline() -> None:
    """Canonical input with no line yet is never refused: at 4095 bytes the newest byte
    takes the last place, so a line holds at most 4095 characters and its newline (a host
    pty reads back the same)."""
    env = Env()
    m, s = env.pair()
    env.set_termios(s, 0, T.OPOST, T.ICANON)
    data = b"a" * 5000 + b"b\n"
    assert env.write(m, data) == len(data)
    line = env.read(s, 8192)
    hm, hs = os.openpty()
    try:
        attrs = termios.tcgetattr(hs)
        attrs[0], attrs[3] = 0, termios.ICANON
        termios.tcsetattr(hs, termios.TCSANOW, attrs)
        os.write(hm, data)
        assert line == os.read(hs, 8192) == b"a" * 4095 + b"\n"
    finally:
        os.close(hm)
        os.close(hs)


# -- reading and writing: waiting, VMIN and VTIME ------------------------------------------------
def test_vmin_vtime() -> None:
    env = Env()
    m, s = env.pair()
    env.set_termios(s, 0, 0, 0, vmin=0, vtime=0)
    assert env.read(s) == b""  # a poll
    env.set_termios(s, 0, 0, 0, vmin=0, vtime=5)
    block = env.blocks("read", s, env.p.alloc(8), 8)
    assert block.deadline == 100.5 and block.queue is env.file(s).terminal.slave_wait
    env.clock = 100.6
    assert env.dispatch("read", s, env.p.alloc(8), 8) == 0  # timed out: 0
    env.set_termios(s, 0, 0, 0, vmin=3, vtime=0)
    peer = env.peer  # types while the main thread's read is parked
    env.write(m, b"ab", task=peer)
    buf = env.p.alloc(8)
    assert env.blocks("read", s, buf, 8).deadline is None  # fewer than VMIN
    env.write(m, b"c", task=peer)
    assert env.dispatch("read", s, buf, 8) == 3
    env.write(m, b"x")
    assert env.read(s, 1) == b"x"  # VMIN beyond the count asked for: the count
    # VMIN 5 VTIME 2: no timer before the first byte, then one restarted by each byte
    env.set_termios(s, 0, 0, 0, vmin=5, vtime=2)
    assert env.blocks("read", s, buf, 8).deadline is None
    env.write(m, b"a", task=peer)
    assert env.reblock("read", s, buf, 8).deadline == pytest.approx(100.8)
    env.clock = 100.7
    env.write(m, b"b", task=peer)
    assert env.reblock("read", s, buf, 8).deadline == pytest.approx(100.9)
    env.clock = 101.0
    assert env.dispatch("read", s, buf, 8) == 2
    env.dispatch("fcntl", s, 4, O_NONBLOCK)
    env.write(m, b"q")
    assert env.read(s) == b"q"  # O_NONBLOCK: what there is
    assert env.read(s) == -errno.EAGAIN


def test_canonical_read_waits_for_a_line_and_poll_agrees() -> None:
    env = Env()
    m, s = env.pair()
    slave, master = env.file(s), env.file(m)
    assert can_poll(slave) and can_poll(master)
    assert slave.poll_events() == POLLOUT | POLLWRNORM
    assert master.poll_events() == POLLOUT | POLLWRNORM
    buf = env.p.alloc(16)
    block = env.blocks("read", s, buf, 16)
    assert block.queue is slave.poll_queue()
    peer = env.peer
    env.write(m, b"abc", task=peer)
    assert not slave.poll_events() & POLLIN and master.poll_events() & POLLIN  # the echo
    assert env.get_int(s, T.FIONREAD, task=peer) == 0
    env.write(m, b"\n", task=peer)
    assert slave.poll_events() & (POLLIN | POLLRDNORM)
    assert env.get_int(s, T.FIONREAD, task=peer) == 4
    assert env.dispatch("read", s, buf, 16) == 4 and env.p.get(buf, 4) == b"abc\n"
    assert env.get_int(m, T.FIONREAD) == 5 and env.get_int(m, T.TIOCOUTQ) == 0
    # VMIN counts for poll in non-canonical mode without VTIME
    env.set_termios(s, 0, 0, 0, vmin=3)
    env.write(m, b"ab")
    assert not slave.poll_events() & POLLIN
    env.write(m, b"c")
    assert slave.poll_events() & POLLIN


def test_blocking_writes_resume_and_count() -> None:
    """A slave write larger than the room waits and then finishes (the bytes already
    queued kept in syscall_state, as pipes do); a non-blocking one returns what fitted;
    the master's writes wait for the line discipline to make room."""
    env = Env()
    m, s = env.pair()
    env.set_termios(s, 0, 0, 0)  # raw
    data = bytes(range(256)) * 100  # 25600 bytes
    addr = env.p.put(data)
    peer = env.peer  # the other end, while the main thread's write is parked
    env.blocks("write", s, addr, len(data))
    assert env.task.syscall_state == {"transferred": T.OUT_LIMIT}
    assert not env.file(s).poll_events() & POLLOUT
    assert env.read(m, 65536, task=peer) == data[:T.OUT_LIMIT]
    assert env.dispatch("write", s, addr, len(data)) == len(data)
    assert env.read(m, 65536) == data[T.OUT_LIMIT:]
    env.dispatch("fcntl", s, 4, O_NONBLOCK)
    assert env.dispatch("write", s, addr, len(data)) == T.OUT_LIMIT
    assert env.dispatch("write", s, addr, len(data)) == -errno.EAGAIN
    env.read(m, 65536)
    env.dispatch("fcntl", s, 4, 0)
    # typed input: the discipline's 4095 bytes and the 16 KiB flip buffer, then wait
    env.blocks("write", m, addr, len(data))
    room = T.N_TTY_BUF_SIZE - 1 + T.FLIP_LIMIT
    assert env.task.syscall_state == {"transferred": room}
    assert not env.file(m).poll_events() & POLLOUT
    received = b""
    while True:
        received += env.read(s, 65536, task=peer)  # type: ignore[operator]
        try:
            assert env.dispatch("write", m, addr, len(data)) == len(data)
            break
        except Block:
            pass
    while len(received) < len(data):
        received += env.read(s, 65536, task=peer)  # type: ignore[operator]
    assert received == data


def test_flow_control_and_flushing() -> None:
    env = Env()
    m, s = env.pair()
    env.dispatch("fcntl", s, 4, O_NONBLOCK)
    assert env.ioctl(s, T.TCXONC, T.TCOOFF)[0] == 0
    assert env.write(s, b"x") == -errno.EAGAIN and not env.file(s).poll_events() & POLLOUT
    assert env.ioctl(s, T.TCXONC, T.TCOON)[0] == 0 and env.write(s, b"x") == 1
    assert env.ioctl(s, T.TCXONC, 9)[0] == -errno.EINVAL
    env.write(m, b"\x13")  # VSTOP with IXON
    assert env.write(s, b"y") == -errno.EAGAIN
    env.write(m, b"\x11")
    assert env.write(s, b"y") == 1 and env.read(m) == b"xy"
    env.write(m, b"typed\n")
    env.read(m)
    assert env.ioctl(s, T.TCFLSH, T.TCIFLUSH)[0] == 0 and env.read(s) == -errno.EAGAIN
    env.write(s, b"out")
    assert env.ioctl(m, T.TCFLSH, T.TCIFLUSH)[0] == 0  # the master's own input
    env.dispatch("fcntl", m, 4, O_NONBLOCK)
    assert env.read(m) == -errno.EAGAIN
    assert env.ioctl(s, T.TCFLSH, 7)[0] == -errno.EINVAL
    # packet mode: a status byte for flushes, TIOCPKT_DATA before data
    assert env.ioctl(m, T.TIOCPKT, struct.pack("<i", 1))[0] == 0
    env.write(s, b"hi")
    assert env.read(m) == b"\0hi"
    env.ioctl(s, T.TCFLSH, T.TCIOFLUSH)
    assert env.read(m) == bytes((T.TIOCPKT_FLUSHREAD | T.TIOCPKT_FLUSHWRITE,))
    assert env.read(m) == -errno.EAGAIN


# -- the pair's life ---------------------------------------------------------------------------
def test_numbers_names_locking_and_peer() -> None:
    env = Env()
    m0, n0 = env.ptmx(unlock=False)
    m1, n1 = env.ptmx()
    assert (n0, n1) == (0, 1)
    assert env.get_int(m0, T.TIOCGPTN) == 0 and env.get_int(m0, T.TIOCGPTLCK) == 1
    assert env.open_slave(n0) == -errno.EIO  # locked
    assert env.ioctl(m0, T.TIOCGPTPEER, O_RDWR)[0] == -errno.EIO
    root = env.devpts.root()
    assert [e[0] for e in root.entries(env.task)] == [b"1", b"0", b"ptmx"]  # newest first
    env.ioctl(m0, T.TIOCSPTLCK, struct.pack("<i", 0))
    peer = env.ioctl(m0, T.TIOCGPTPEER, O_RDWR | O_NOCTTY | os.O_CLOEXEC)[0]
    assert peer >= 0 and isinstance(env.file(peer), SlaveFile)
    assert peer in env.task.fds.cloexec
    st = env.file(peer).stat()
    assert (st.st_mode, st.st_rdev, st.st_uid, st.st_gid, st.st_ino) == (
        0o20620, os.makedev(136, 0), 0, 5, 3)
    assert env.file(m0).stat().st_rdev == os.makedev(5, 2)
    assert env.ioctl(peer, T.TIOCGPTN, bytes(4))[0] == -errno.ENOTTY
    assert env.ioctl(peer, T.TIOCGPTPEER, 0)[0] == -errno.EIO
    assert env.get_int(peer, T.TIOCGDEV) == 136 << 8
    env.dispatch("close", m0)
    assert root.lookup(env.task, b"0") is None  # the name goes with the master
    m2, n2 = env.ptmx()
    assert n2 == 2  # 0 is kept while its slave is open
    env.dispatch("close", peer)
    assert env.ptmx()[1] == 0
    assert env.ioctl(m1, 0x54FF, 0)[0] == -errno.ENOTTY


def test_master_sees_eio_and_hup_once_the_slaves_are_gone() -> None:
    env = Env()
    m, n = env.ptmx()
    master = env.file(m)
    buf = env.p.alloc(8)
    assert master.poll_events() == POLLOUT | POLLWRNORM
    assert env.blocks("read", m, buf, 8).queue is master.poll_queue()  # no slave yet: wait
    env.task.syscall_state = None  # (that read is abandoned)
    s = env.open_slave(n)
    env.write(s, b"bye\n")
    env.dispatch("close", s)
    assert master.poll_events() & (POLLIN | POLLHUP) == POLLIN | POLLHUP
    assert env.read(m) == b"bye\r\n" and env.read(m) == -errno.EIO
    assert env.write(m, b"q") == 1  # still typed (and echoed)
    s = env.open_slave(n)
    assert not master.poll_events() & POLLHUP and env.read(m) == b"q"


def test_hangup_when_the_master_closes() -> None:
    """The reader already waiting gets EIO, later reads end of file; writes and ioctls
    EIO, TIOCSPGRP ENOTTY; poll says everything; the session leader is told (SIGHUP and
    SIGCONT) and its session loses the terminal."""
    env = Env()
    leader = env.process(7, 7, 7)
    m, n = env.ptmx()
    s = env.open_slave(n, O_RDWR, task=leader)  # acquires it
    assert T.controlling_terminal(leader.tg) is env.file(s, leader).terminal
    buf = env.p.alloc(8)
    with pytest.raises(Block):
        env.dispatch("read", s, buf, 8, task=leader)
    env.dispatch("close", m)
    assert env.sent == [(7, SIGHUP), (7, SIGCONT)]
    assert env.dispatch("read", s, buf, 8, task=leader) == -errno.EIO
    assert env.read(s, 8, task=leader) == b""
    assert env.write(s, b"x", task=leader) == -errno.EIO
    assert env.ioctl(s, T.TCGETS, bytes(36), task=leader)[0] == -errno.EIO
    assert env.ioctl(s, T.TIOCSPGRP, struct.pack("<i", 7), task=leader)[0] == -errno.ENOTTY
    assert env.file(s, leader).poll_events() == (POLLIN | POLLOUT | POLLERR | POLLHUP |
                                                 POLLRDNORM | POLLWRNORM)
    assert T.controlling_terminal(leader.tg) is None
    assert env.devpts.root().lookup(leader, str(n).encode()) is None


# -- sessions, controlling terminals, job control ---------------------------------------------
def test_acquiring_a_controlling_terminal() -> None:
    env = Env()
    leader = env.process(7, 7, 7)
    member = env.process(8, 8, 7, parent=leader.tg)
    m, n = env.ptmx()
    assert env.open_slave(n, O_RDWR, task=member) >= 0  # not a leader: nothing
    assert env.open_slave(n, O_RDWR | O_NOCTTY, task=leader) >= 0  # O_NOCTTY: nothing
    assert T.controlling_terminal(leader.tg) is None
    attrs = DeviceAttrs(mode=0o20666)
    with pytest.raises(SyscallError) as info:
        open_device(5, 0, O_RDWR, attrs, leader)
    assert info.value.errno == errno.ENXIO
    s = env.open_slave(n, os.O_WRONLY, task=leader)  # cannot read it: nothing
    assert T.controlling_terminal(leader.tg) is None
    s = env.open_slave(n, O_RDWR, task=leader)
    term = env.file(s, leader).terminal
    assert (term.session, term.pgrp) == (7, 7)
    assert T.controlling_terminal(member.tg) is term  # the whole session
    tty = open_device(5, 0, O_RDWR, attrs, member)
    assert isinstance(tty, TerminalAliasFile) and tty.stat().st_rdev == os.makedev(5, 0)
    assert tty.inner.terminal is term
    assert T.proc_stat_tty(member.tg) == (136 << 8 | n, 7)
    assert T.proc_stat_tty(env.p.tg) == (0, -1)
    sm, s1 = (env.open_slave(n, task=t) for t in (member, env.task))
    assert env.get_int(sm, T.TIOCGPGRP, task=member) == 7
    assert env.get_int(s, T.TIOCGSID, task=leader) == 7
    assert env.get_int(s1, T.TIOCGPGRP) == -errno.ENOTTY  # pid 1: not its terminal
    assert env.get_int(m, T.TIOCGPGRP) == 7 and env.get_int(m, T.TIOCGSID) == 7
    # TIOCSCTTY: again is fine; a non-leader, a leader with one, another session's: EPERM
    assert env.ioctl(s, T.TIOCSCTTY, 0, task=leader)[0] == 0
    assert env.ioctl(sm, T.TIOCSCTTY, 0, task=member)[0] == -errno.EPERM
    other = env.process(9, 9, 9)
    other.tg.creds = Credentials(1000, 1000)
    s9 = env.open_slave(n, O_RDWR | O_NOCTTY, task=other)
    assert env.ioctl(s9, T.TIOCSCTTY, 1, task=other)[0] == -errno.EPERM
    m2, n2 = env.ptmx(task=leader)
    s2 = env.open_slave(n2, O_RDWR | O_NOCTTY, task=leader)
    assert env.ioctl(s2, T.TIOCSCTTY, 0, task=leader)[0] == -errno.EPERM
    root9 = env.process(10, 10, 10)  # root may steal it with arg 1
    s10 = env.open_slave(n, O_RDWR | O_NOCTTY, task=root9)
    assert env.ioctl(s10, T.TIOCSCTTY, 0, task=root9)[0] == -errno.EPERM
    assert env.ioctl(s10, T.TIOCSCTTY, 1, task=root9)[0] == 0
    assert term.session == 10 and T.controlling_terminal(leader.tg) is None


def test_tiocspgrp_tiocnotty_and_leader_exit() -> None:
    env = Env()
    leader = env.process(7, 7, 7)
    member = env.process(8, 8, 7, parent=leader.tg)
    stranger = env.process(9, 9, 9)
    m, n = env.ptmx()
    s = env.open_slave(n, O_RDWR, task=leader)
    term = env.file(s, leader).terminal
    fds = {t: env.open_slave(n, task=t) for t in (member, stranger)}
    fds[leader] = s

    def spgrp(pgid: int, task: Task) -> int:
        return env.ioctl(fds[task], T.TIOCSPGRP, struct.pack("<i", pgid), task=task)[0]

    assert spgrp(8, leader) == 0 and term.pgrp == 8
    assert spgrp(-1, member) == -errno.EINVAL
    assert spgrp(4242, member) == -errno.ESRCH
    assert spgrp(9, member) == -errno.EPERM  # another session's group
    assert spgrp(8, stranger) == -errno.ENOTTY  # not its terminal
    assert env.ioctl(m, T.TIOCSPGRP, struct.pack("<i", 8))[0] == -errno.ENOTTY
    # TIOCNOTTY: a member drops it for itself; the leader for everyone, with SIGHUP and
    # SIGCONT to the foreground group
    assert env.ioctl(fds[member], T.TIOCNOTTY, 0, task=member)[0] == 0
    assert T.controlling_terminal(member.tg) is None and T.controlling_terminal(leader.tg)
    assert env.ioctl(fds[member], T.TIOCNOTTY, 0, task=member)[0] == -errno.ENOTTY
    assert env.ioctl(m, T.TIOCNOTTY, 0)[0] == -errno.ENOTTY
    env.sent.clear()
    assert env.ioctl(s, T.TIOCNOTTY, 0, task=leader)[0] == 0
    assert env.sent == [(8, SIGHUP), (8, SIGCONT)] and term.session is None
    # the leader's exit hangs up the foreground group
    assert env.ioctl(s, T.TIOCSCTTY, 0, task=leader)[0] == 0
    spgrp(8, leader)
    env.sent.clear()
    leader.tg.exit_status = 0
    leader.tg.exit_wait.notify()
    assert env.sent == [(8, SIGHUP)] and term.session is None


def test_background_reads_and_writes() -> None:
    """SIGTTIN/SIGTTOU for a background group of the session: the call parks and the
    signal goes out from the event loop (which then interrupts the parked call); EIO when
    SIGTTIN is ignored or blocked or the group is orphaned; an ignored SIGTTOU lets it
    through; TOSTOP decides for writes."""
    env = Env()
    leader = env.process(7, 7, 7)
    bg = env.process(8, 8, 7, parent=leader.tg)
    m, n = env.ptmx()
    ls = env.open_slave(n, O_RDWR, task=leader)
    term = env.file(ls, leader).terminal
    s = env.open_slave(n, task=bg)
    buf = env.p.alloc(8)
    with pytest.raises(Block) as info:
        env.dispatch("read", s, buf, 8, task=bg)
    assert info.value.queue is term.job_wait and len(env.timers) == 1
    env.timers.pop()()
    assert env.sent == [(8, SIGTTIN)]
    bg.tg.sigactions[SIGTTIN] = (SIG_IGN, 0, 0, 0)
    assert env.dispatch("read", s, buf, 8, task=bg) == -errno.EIO
    bg.tg.sigactions.clear()
    bg.sigmask = 1 << (SIGTTIN - 1)
    assert env.dispatch("read", s, buf, 8, task=bg) == -errno.EIO
    bg.sigmask = 0
    bg.tg.parent = env.p.tg  # pid 1 is of another session: the group is orphaned
    assert env.dispatch("read", s, buf, 8, task=bg) == -errno.EIO
    bg.tg.parent = leader.tg
    assert env.write(s, b"w", task=bg) == 1  # no TOSTOP
    t = term.termios.copy()
    t.lflag |= T.TOSTOP
    term.set_termios(t)
    env.sent.clear()
    with pytest.raises(Block):
        env.dispatch("write", s, env.p.put(b"w"), 1, task=bg)
    env.timers.pop()()
    assert env.sent == [(8, SIGTTOU)]
    with pytest.raises(Block):  # changing settings is a write too
        env.ioctl(s, T.TCSETS, t.pack(T.TCGETS), task=bg)
    bg.tg.sigactions[SIGTTOU] = (SIG_IGN, 0, 0, 0)
    assert env.write(s, b"w", task=bg) == 1
    # in front, it reads; the parked reader is woken when the foreground changes
    woken: list[int] = []
    term.job_wait.waiters.append(QueueCallback(lambda: woken.append(1)))
    assert env.ioctl(ls, T.TIOCSPGRP, struct.pack("<i", 8), task=leader)[0] == 0
    assert woken
    env.write(m, b"hi\n")
    assert env.read(s, 8, task=bg) == b"hi\n"


def test_signal_characters_window_size_and_tiocsig() -> None:
    env = Env()
    leader = env.process(7, 7, 7)
    m, n = env.ptmx()
    s = env.open_slave(n, O_RDWR, task=leader)
    env.write(m, b"abc\x03")
    env.write(m, b"\x1c\x1a")
    assert env.sent == [(7, SIGINT), (7, SIGQUIT), (7, SIGTSTP)]
    # each signal character discards the echoes its batch made before it
    assert env.read(m) == b"^C^Z"
    env.sent.clear()
    ws = struct.pack("<4H", 24, 80, 0, 0)
    assert env.ioctl(m, T.TIOCSWINSZ, ws)[0] == 0
    assert env.ioctl(s, T.TIOCSWINSZ, ws, task=leader)[0] == 0  # the same: no signal
    assert env.sent == [(7, SIGWINCH)]
    assert env.ioctl(s, T.TIOCGWINSZ, bytes(8), task=leader) == (0, ws)
    env.sent.clear()
    assert env.ioctl(m, T.TIOCSIG, SIGINT)[0] == 0 and env.sent == [(7, SIGINT)]
    assert env.ioctl(m, T.TIOCSIG, SIGHUP)[0] == -errno.EINVAL
    assert env.ioctl(s, T.TIOCSIG, SIGINT, task=leader)[0] == -errno.ENOTTY
    assert isinstance(env.file(m), MasterFile)


def test_devfs_holds_devpts_and_ptmx_opens_by_number() -> None:
    """/dev/pts is the devfs's devpts instance (not removable: EBUSY), /dev/ptmx a link to
    pts/ptmx; a 5:2 node made anywhere opens the instance next to it."""
    from snakevisor.fsimpl.devfs import DevFs, DeviceNode
    env = Env()
    dev = DevFs()
    root = dev.root()
    assert root.lookup(env.task, b"pts") is dev.pts.root()
    assert root.lookup(env.task, b"ptmx").readlink(env.task) == b"pts/ptmx"
    for call in (lambda: root.rmdir(env.task, b"pts"), lambda: root.unlink(env.task, b"pts"),
                 lambda: root.rename(env.task, b"pts", root, b"x", 0)):
        with pytest.raises(SyscallError) as info:
            call()
        assert info.value.errno == errno.EBUSY
    node = DeviceNode(dev, 0o20666, rdev=os.makedev(5, 2))
    master = open_device(5, 2, O_RDWR, node, env.task)
    assert isinstance(master, MasterFile) and list(dev.pts.pairs) == [0]
    assert master.stat().st_rdev == os.makedev(5, 2)
    assert struct.unpack("<q", dev.pts.statfs()[:8])[0] == 0x1CD1
