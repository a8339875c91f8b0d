"""AF_UNIX sockets through the real handlers on a fake task: Linux's buffer accounting,
blocking and waking, timeouts, SCM_RIGHTS reference counting, names, SIGPIPE.

The expected numbers are Linux's, measured natively (6.18, defaults): SIOCOUTQ after one
write of N bytes (the skbs' truesize), and how many bytes non-blocking writes queue
before EAGAIN.  Blocking is checked the way the kernel drives it: the handler raises
Block, the test plays the other side (often as the second thread, `peer`), then
dispatches the same call again.  tests/c/unix_stream.c, unix_dgram.c and scm.c compare
everything else with Linux end to end.
"""
from __future__ import annotations

import errno
import os
import stat
import struct

import pytest

from conftest import DispatchEnv, FakeProcess
from snakevisor.fsimpl.sandboxroot import SandboxRoot
from snakevisor.fsimpl.tmpfs import Tmpfs
from snakevisor.kernel.errors import Block
from snakevisor.net import unix
from snakevisor.vfs.file import POLLOUT
from snakevisor.vfs.pipe import PipeFile

AF_UNIX, AF_INET = 1, 2
SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5
SOCK_NONBLOCK = os.O_NONBLOCK
SOL_SOCKET, SO_SNDBUF, SO_RCVTIMEO, SCM_RIGHTS = 1, 7, 20, 1
MSG_DONTWAIT, MSG_NOSIGNAL, MSG_CTRUNC = 0x40, 0x4000, 0x8
SIOCOUTQ = 0x5411
SHUT_WR = 1
AT_FDCWD = -100
SIGPIPE = 13
_MSGHDR = struct.Struct("<QI4xQQQQi4x")


class Env(DispatchEnv):
    """DispatchEnv with socket helpers."""

    def pair(self, kind: int = SOCK_STREAM) -> tuple[int, int]:
        out = self.p.alloc(8)
        assert self.dispatch("socketpair", AF_UNIX, kind, 0, out) == 0
        a, b = struct.unpack("<ii", self.p.get(out, 8))
        return a, b

    def sock(self, fd: int) -> unix.UnixSocket:
        file = self.p.tg.fds.get(fd)
        assert isinstance(file, unix.UnixSocket)
        return file

    def write(self, fd: int, data: bytes) -> int:
        return self.dispatch("write", fd, self.p.put(data), len(data))

    def send(self, fd: int, data: bytes, flags: int = 0) -> int:
        return self.dispatch("sendto", fd, self.p.put(data), len(data), flags, 0, 0)

    def read(self, fd: int, count: int, task=None) -> bytes | int:
        buf = self.p.alloc(count)
        n = self.dispatch("read", fd, buf, count, task=task)
        return n if n < 0 else self.p.get(buf, n)

    def outq(self, fd: int) -> int:
        out = self.p.alloc(4)
        assert self.dispatch("ioctl", fd, SIOCOUTQ, out) == 0
        return struct.unpack("<i", self.p.get(out, 4))[0]

    def setint(self, fd: int, opt: int, value: int) -> int:
        return self.dispatch("setsockopt", fd, SOL_SOCKET, opt, self.p.put(struct.pack("<i", value)), 4)

    def send_fds(self, fd: int, data: bytes, fds: list[int]) -> int:
        body = struct.pack(f"<{len(fds)}i", *fds)
        cmsg = struct.pack("<Qii", 16 + len(body), SOL_SOCKET, SCM_RIGHTS) + body
        cmsg += bytes(-len(cmsg) % 8)
        iov = struct.pack("<QQ", self.p.put(data), len(data))
        msg = _MSGHDR.pack(0, 0, self.p.put(iov), 1, self.p.put(cmsg), len(cmsg), 0)
        return self.dispatch("sendmsg", fd, self.p.put(msg), 0)

    def recv_fds(self, fd: int, size: int, ctl_len: int) -> tuple[int, bytes, list[int], int]:
        """(result, data, received fds, msg_flags)."""
        buf, ctl = self.p.alloc(size), self.p.alloc(max(ctl_len, 1))
        iov = struct.pack("<QQ", buf, size)
        addr = self.p.put(_MSGHDR.pack(0, 0, self.p.put(iov), 1, ctl, ctl_len, 0))
        n = self.dispatch("recvmsg", fd, addr, 0)
        *_, used, flags = _MSGHDR.unpack(self.p.get(addr, _MSGHDR.size))
        raw = self.p.get(ctl, used)
        fds: list[int] = []
        pos = 0
        while pos + 16 <= len(raw):
            length, level, kind = struct.unpack_from("<Qii", raw, pos)
            if level == SOL_SOCKET and kind == SCM_RIGHTS:
                count = (length - 16) // 4
                fds += struct.unpack_from(f"<{count}i", raw, pos + 16)
            pos += (length + 7) & ~7
        return n, self.p.get(buf, max(n, 0)), fds, flags


@pytest.fixture
def env() -> Env:
    return Env()


# -- Linux's accounting ----------------------------------------------------------------------
#: SIOCOUTQ after one write of N bytes into a fresh socketpair (Linux 6.18, measured)
STREAM_OUTQ = {1: 768, 100: 768, 500: 1280, 1000: 2304, 2000: 4352, 3776: 4352, 3777: 4864,
               4096: 4864, 5000: 6400, 8192: 8960, 10000: 12544, 16384: 17152, 32768: 33536,
               36544: 37120, 36545: 37888, 40000: 41472, 65536: 67072, 100000: 103168,
               200000: 204288}
DGRAM_OUTQ = {0: 768, 1: 768, 500: 1280, 3777: 8448, 8192: 16640, 16384: 20736,
              32768: 37120, 36545: 41216, 65536: 69888, 100000: 102656, 106000: 135424,
              200000: 200960}


@pytest.mark.parametrize("size,outq", sorted(STREAM_OUTQ.items()))
def test_stream_write_charges_linux_truesize(env: Env, size: int, outq: int) -> None:
    a, _b = env.pair(SOCK_STREAM)
    assert env.write(a, bytes(size)) == size
    assert env.outq(a) == outq


@pytest.mark.parametrize("size,outq", sorted(DGRAM_OUTQ.items()))
def test_datagram_charges_linux_truesize(env: Env, size: int, outq: int) -> None:
    a, _b = env.pair(SOCK_DGRAM)
    assert env.write(a, bytes(size)) == size
    assert env.outq(a) == outq


@pytest.mark.parametrize("kind,chunk,fits", [
    (SOCK_STREAM, 1, 278), (SOCK_STREAM, 1000, 93000), (SOCK_STREAM, 4096, 180224),
    (SOCK_STREAM, 65536, 233152), (SOCK_STREAM, 200000, 236544),
    (SOCK_DGRAM, 4096, 106496), (SOCK_DGRAM, 16384, 180224), (SOCK_SEQPACKET, 65536, 262144)])
def test_nonblocking_writes_fit_what_linux_fits(env: Env, kind: int, chunk: int, fits: int) -> None:
    a, _b = env.pair(kind)
    total = 0
    while (n := env.send(a, bytes(chunk), MSG_DONTWAIT)) > 0:
        total += n
    assert n == -errno.EAGAIN
    assert total == fits


def test_unconnected_datagram_receiver_takes_qlen_plus_one(env: Env) -> None:
    """A receiver not connected back limits its queue to max_dgram_qlen + 1 (11)."""
    r = env.dispatch("socket", AF_UNIX, SOCK_DGRAM, 0)
    name = struct.pack("<H", AF_UNIX) + b"\0rq"
    assert env.dispatch("bind", r, env.p.put(name), len(name)) == 0
    s = env.dispatch("socket", AF_UNIX, SOCK_DGRAM, 0)
    sent = 0
    while env.dispatch("sendto", s, env.p.put(b"m"), 1, MSG_DONTWAIT, env.p.put(name), len(name)) == 1:
        sent += 1
    assert sent == unix.MAX_DGRAM_QLEN + 1


# -- waiting ---------------------------------------------------------------------------------
def test_blocking_read_waits_on_the_socket_and_is_woken_by_a_write(env: Env) -> None:
    a, b = env.pair()
    buf = env.p.alloc(16)
    block = env.blocks("read", b, buf, 16)
    assert block.queue is env.sock(b).wait and block.deadline is None
    block.queue.waiters.append(env.task)
    assert env.write(a, b"hello") == 5
    assert env.task in env.woken
    assert env.dispatch("read", b, buf, 16) == 5
    assert env.p.get(buf, 5) == b"hello"


def test_blocking_write_keeps_what_it_queued(env: Env) -> None:
    """A write larger than the send buffer queues skb by skb, waits with its progress in
    the call's state, and returns the whole count once the reader made room."""
    a, b = env.pair()
    assert env.setint(a, SO_SNDBUF, 10000) == 0  # 20000 bytes
    data = bytes(range(256)) * 200
    src = env.p.put(data)
    with pytest.raises(Block):
        env.p.raw("write", a, src, len(data))
    queued = env.task.syscall_state[unix.TRANSFERRED]
    assert 0 < queued < len(data)
    got = b""
    while True:
        chunk = env.read(b, 100000, task=env.peer)  # the reader: another thread
        assert isinstance(chunk, bytes)
        got += chunk
        try:
            result = env.p.raw("write", a, src, len(data))
        except Block:
            continue
        break
    env.task.syscall_state = None
    assert result == len(data)
    rest = env.read(b, 100000)
    assert got + rest == data


def test_rcvtimeo_bounds_the_wait_then_eagain(env: Env, monkeypatch) -> None:
    a, b = env.pair()
    tv = env.p.put(struct.pack("<qq", 0, 30000))  # 30 ms: 8 jiffies at 250 Hz = 32 ms
    assert env.dispatch("setsockopt", b, SOL_SOCKET, SO_RCVTIMEO, tv, 16) == 0
    out, outlen = env.p.alloc(16), env.p.put(struct.pack("<i", 16))
    assert env.dispatch("getsockopt", b, SOL_SOCKET, SO_RCVTIMEO, out, outlen) == 0
    assert struct.unpack("<qq", env.p.get(out, 16)) == (0, 32000)
    buf = env.p.alloc(4)
    now = env.p.kernel.now()
    monkeypatch.setattr(env.p.kernel, "now", lambda: now)
    with pytest.raises(Block) as info:
        env.p.raw("read", b, buf, 4)
    assert info.value.deadline == pytest.approx(now + 0.032)
    assert env.task.syscall_state[unix.NO_RESTART]  # EINTR even under SA_RESTART
    monkeypatch.setattr(env.p.kernel, "now", lambda: now + 0.05)
    assert env.p.raw("read", b, buf, 4) == -errno.EAGAIN


def test_wait_without_a_timeout_may_restart(env: Env) -> None:
    a, b = env.pair()
    env.blocks("read", b, env.p.alloc(4), 4)
    assert unix.NO_RESTART not in env.task.syscall_state


def test_connect_waits_for_room_in_the_backlog(env: Env) -> None:
    tmp = FakeProcess(SandboxRoot({b"/": Tmpfs(mode=0o1777)}))
    env.p = tmp
    env.task = tmp.task
    l = env.dispatch("socket", AF_UNIX, SOCK_STREAM, 0)
    name = struct.pack("<H", AF_UNIX) + b"/srv\0"
    assert env.dispatch("bind", l, env.p.put(name), len(name)) == 0
    assert env.dispatch("listen", l, 0) == 0
    c1 = env.dispatch("socket", AF_UNIX, SOCK_STREAM, 0)
    c2 = env.dispatch("socket", AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)
    c3 = env.dispatch("socket", AF_UNIX, SOCK_STREAM, 0)
    assert env.dispatch("connect", c1, env.p.put(name), len(name)) == 0
    assert env.dispatch("connect", c2, env.p.put(name), len(name)) == -errno.EAGAIN
    block = env.blocks("connect", c3, env.p.put(name), len(name))
    assert block.queue is env.sock(l).peer_wait
    block.queue.waiters.append(env.task)
    woken: list = []
    env.p.kernel.wake = woken.append  # type: ignore[attr-defined]
    assert env.dispatch("accept", l, 0, 0) >= 0
    assert woken == [env.task]
    assert env.dispatch("connect", c3, env.p.put(name), len(name)) == 0


def test_datagram_writer_polls_writable_again_when_the_full_peer_reads(env: Env) -> None:
    """unix_dgram_poll: a sender connected to a receiver that is not connected back sees no
    POLLOUT while that receiver's queue is full, and its queue is notified when it reads."""
    r = env.dispatch("socket", AF_UNIX, SOCK_DGRAM, 0)
    name = struct.pack("<H", AF_UNIX) + b"\0relay"
    assert env.dispatch("bind", r, env.p.put(name), len(name)) == 0
    s = env.dispatch("socket", AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0)
    assert env.dispatch("connect", s, env.p.put(name), len(name)) == 0
    while env.send(s, b"x") == 1:
        pass
    sender = env.sock(s)
    assert not sender.poll_events() & POLLOUT
    sender.wait.waiters.append(env.task)
    assert env.read(r, 10) == b"x"
    assert env.task in env.woken
    assert sender.poll_events() & POLLOUT


# -- SCM_RIGHTS ----------------------------------------------------------------------------------
def test_received_fd_is_the_same_open_file(env: Env) -> None:
    a, b = env.pair()
    rfd, wfd = env.pipe()
    assert env.send_fds(a, b"P", [wfd]) == 1
    n, data, fds, flags = env.recv_fds(b, 8, 24)
    assert (n, data, flags) == (1, b"P", 0)
    assert len(fds) == 1 and fds[0] not in (a, b, rfd, wfd)
    assert env.p.tg.fds.get(fds[0]) is env.p.tg.fds.get(wfd)
    writer = env.p.tg.fds.get(wfd)
    assert writer.refs == 2  # two fds, nothing in flight


def test_control_buffer_too_small_closes_the_excess(env: Env) -> None:
    a, b = env.pair()
    rfd, wfd = env.pipe()
    writer = env.p.tg.fds.get(wfd)
    assert env.send_fds(a, b"T", [wfd, wfd, wfd]) == 1
    assert writer.refs == 4  # one fd, three in flight
    n, _, fds, flags = env.recv_fds(b, 8, 16 + 4)  # room for one fd
    assert n == 1 and len(fds) == 1 and flags & MSG_CTRUNC
    assert writer.refs == 2  # the two that did not fit were closed
    env.dispatch("close", fds[0])
    env.dispatch("close", wfd)
    pipe = env.p.tg.fds.get(rfd)
    assert isinstance(pipe, PipeFile) and pipe.pipe.writers == 0  # EOF for the reader


def test_files_in_flight_go_with_the_socket(env: Env) -> None:
    a, b = env.pair(SOCK_DGRAM)
    rfd, wfd = env.pipe()
    env.send_fds(a, b"lost", [wfd])
    env.dispatch("close", wfd)
    assert env.p.tg.fds.get(rfd).pipe.writers == 1  # still held in flight
    env.dispatch("close", a)
    env.dispatch("close", b)
    assert env.p.tg.fds.get(rfd).pipe.writers == 0


def test_stream_read_stops_after_the_message_with_fds(env: Env) -> None:
    a, b = env.pair()
    rfd, _ = env.pipe()
    env.write(a, b"ab")
    env.send_fds(a, b"cd", [rfd])
    env.write(a, b"ef")
    n, data, fds, _ = env.recv_fds(b, 100, 24)
    assert (n, data, len(fds)) == (4, b"abcd", 1)
    assert env.read(b, 100) == b"ef"


def test_bad_rights_hold_nothing(env: Env) -> None:
    a, _ = env.pair()
    _, wfd = env.pipe()
    writer = env.p.tg.fds.get(wfd)
    assert env.send_fds(a, b"x", [wfd, 999]) == -errno.EBADF
    assert env.send_fds(a, b"x", [wfd] * 254) == -errno.EINVAL
    assert writer.refs == 1


# -- names ---------------------------------------------------------------------------------------
def test_abstract_names_are_per_socket_type(env: Env) -> None:
    name = struct.pack("<H", AF_UNIX) + b"\0shared"
    fds = [env.dispatch("socket", AF_UNIX, kind, 0)
           for kind in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_DGRAM)]
    results = [env.dispatch("bind", fd, env.p.put(name), len(name)) for fd in fds]
    assert results == [0, 0, 0, -errno.EADDRINUSE]


def test_autobind_name_is_five_hex_digits(env: Env) -> None:
    fd = env.dispatch("socket", AF_UNIX, SOCK_DGRAM, 0)
    assert env.dispatch("bind", fd, env.p.put(struct.pack("<H", AF_UNIX)), 2) == 0
    name = env.sock(fd).getname(False)
    assert len(name) == 8 and name[2] == 0
    int(name[3:], 16)


def test_path_names_follow_the_node(env: Env) -> None:
    """The socket file is an S_IFSOCK node (mode 0777 minus umask); connect finds the
    listener through the node: after a rename, not after unlink."""
    p = FakeProcess(SandboxRoot({b"/": Tmpfs(mode=0o1777)}))
    env.p, env.task = p, p.task

    def addr(path: bytes) -> int:
        return p.put(struct.pack("<H", AF_UNIX) + path + b"\0")

    l = env.dispatch("socket", AF_UNIX, SOCK_STREAM, 0)
    assert env.dispatch("bind", l, addr(b"/s"), 5) == 0
    st = p.tg.fs.root.stat(p.task, AT_FDCWD, b"/s", False)
    assert stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o777 == 0o755
    assert env.dispatch("listen", l, 5) == 0
    other = env.dispatch("socket", AF_UNIX, SOCK_STREAM, 0)
    assert env.dispatch("bind", other, addr(b"/s"), 5) == -errno.EADDRINUSE
    c = env.dispatch("socket", AF_UNIX, SOCK_STREAM, 0)
    assert env.dispatch("connect", c, addr(b"/none"), 8) == -errno.ENOENT
    assert env.dispatch("rename", p.cstr("/s"), p.cstr("/t")) == 0
    assert env.dispatch("connect", c, addr(b"/t"), 5) == 0
    assert env.dispatch("unlink", p.cstr("/t")) == 0
    c2 = env.dispatch("socket", AF_UNIX, SOCK_STREAM, 0)
    assert env.dispatch("connect", c2, addr(b"/t"), 5) == -errno.ENOENT
    assert env.dispatch("mknod", p.cstr("/f"), stat.S_IFSOCK | 0o777, 0) == 0
    assert env.dispatch("connect", c2, addr(b"/f"), 5) == -errno.ECONNREFUSED


# -- errors and signals ------------------------------------------------------------------------------
def test_other_families_answer_eafnosupport_with_a_log_line(env: Env) -> None:
    assert env.dispatch("socket", AF_INET, SOCK_STREAM, 0) == -errno.EAFNOSUPPORT
    assert any("AF_INET" in msg for msg in env.p.kernel.warnings.values())
    assert env.dispatch("socket", 1000, SOCK_STREAM, 0) == -errno.EAFNOSUPPORT


def test_calls_on_other_descriptors(env: Env) -> None:
    rfd, _ = env.pipe()
    assert env.dispatch("listen", rfd, 1) == -errno.ENOTSOCK
    assert env.dispatch("getsockname", 77, 0, 0) == -errno.EBADF


def test_epipe_and_sigpipe(env: Env) -> None:
    a, b = env.pair()
    assert env.dispatch("shutdown", a, SHUT_WR) == 0
    assert env.read(b, 4) == b""  # EOF for the peer
    assert env.send(a, b"x", MSG_NOSIGNAL) == -errno.EPIPE
    assert env.signals == []
    assert env.send(a, b"x") == -errno.EPIPE
    assert env.signals == [(env.task, SIGPIPE)]
    d1, _ = env.pair(SOCK_DGRAM)
    env.dispatch("shutdown", d1, SHUT_WR)
    assert env.send(d1, b"x") == -errno.EPIPE
    assert len(env.signals) == 1  # datagram sockets never raise SIGPIPE


def test_closed_listener_resets_its_pending_connections(env: Env) -> None:
    p = FakeProcess(SandboxRoot({b"/": Tmpfs(mode=0o1777)}))
    env.p, env.task = p, p.task
    name = p.put(struct.pack("<H", AF_UNIX) + b"/l\0")
    l = env.dispatch("socket", AF_UNIX, SOCK_STREAM, 0)
    assert env.dispatch("bind", l, name, 5) == 0 and env.dispatch("listen", l, 1) == 0
    c = env.dispatch("socket", AF_UNIX, SOCK_STREAM, 0)
    assert env.dispatch("connect", c, name, 5) == 0
    assert env.write(c, b"early") == 5
    env.dispatch("close", l)
    assert env.read(c, 10) == -errno.ECONNRESET
    assert env.read(c, 10) == b""


def test_read_into_an_unwritable_buffer_leaves_the_data_queued(env: Env) -> None:
    """read_into (for read(2)/readv(2)) stores through the caller's sink and consumes only
    what it could store, as Linux's copy_to_user failure does."""
    from snakevisor.syscalls.sys_socket import scatterer
    a, b = env.pair()
    env.write(a, b"data")
    sock = env.sock(b)
    assert env.p.raw("recvfrom", b, 8, 4, 0, 0, 0) == -errno.EFAULT  # address 8: unmapped
    buf = env.p.alloc(4)
    assert sock.read_into(env.task, scatterer(env.p.tg.mm, [(buf, 4)]), 4) == 4
    assert env.p.get(buf, 4) == b"data"


# -- out-of-band data (Linux >= 5.15, measured natively on 6.18) ---------------------------------
MSG_OOB, MSG_PEEK = 0x1, 0x2
SIOCINQ, SIOCATMARK, FIOSETOWN, FIOGETOWN = 0x541B, 0x8905, 0x8901, 0x8903
SO_OOBINLINE = 10
SIGURG = 23


def _ioctl_int(env: Env, fd: int, request: int) -> int:
    out = env.p.alloc(4)
    assert env.dispatch("ioctl", fd, request, out) == 0
    return struct.unpack("<i", env.p.get(out, 4))[0]


def _recv(env: Env, fd: int, size: int, flags: int) -> bytes | int:
    buf = env.p.alloc(max(size, 1))
    n = env.dispatch("recvfrom", fd, buf, size, flags | MSG_DONTWAIT, 0, 0)
    return n if n < 0 else env.p.get(buf, n)


def _recvmsg_flags(env: Env, fd: int, flags: int) -> tuple[int, int]:
    buf = env.p.alloc(1)
    iov = struct.pack("<QQ", buf, 1)
    addr = env.p.put(_MSGHDR.pack(0, 0, env.p.put(iov), 1, 0, 0, 0))
    n = env.dispatch("recvmsg", fd, addr, flags | MSG_DONTWAIT)
    return n, _MSGHDR.unpack(env.p.get(addr, _MSGHDR.size))[-1]


def test_urgent_byte_waits_behind_the_mark(env: Env) -> None:
    a, b = env.pair()
    assert env.send(a, b"abc", MSG_OOB) == 3
    assert env.sock(b).poll_events() & 0x2  # POLLPRI
    assert _ioctl_int(env, b, SIOCATMARK) == 0
    assert _recv(env, b, 10, 0) == b"ab"  # stops at the mark
    assert _ioctl_int(env, b, SIOCATMARK) == 1
    assert _recv(env, b, 10, MSG_PEEK) == -errno.EAGAIN  # the urgent byte is not data
    assert _recvmsg_flags(env, b, MSG_OOB) == (1, MSG_OOB)
    assert _ioctl_int(env, b, SIOCINQ) == 0
    assert _ioctl_int(env, b, SIOCATMARK) == 1  # its emptied skb still marks the place
    assert not env.sock(b).poll_events() & 0x2
    assert _recvmsg_flags(env, b, MSG_OOB)[0] == -errno.EINVAL
    assert _recv(env, b, 10, 0) == -errno.EAGAIN
    assert _ioctl_int(env, b, SIOCATMARK) == 0
    assert not env.sock(b).queue and env.outq(a) == 0
    assert env.send(a, b"", MSG_OOB) == -errno.EOPNOTSUPP


def test_reading_past_the_mark_drops_the_byte_but_siocinq_counts_it(env: Env) -> None:
    a, b = env.pair()
    env.send(a, b"ab", MSG_OOB)
    env.send(a, b"cd")
    assert _recv(env, b, 10, 0) == b"a"
    assert _recv(env, b, 10, MSG_PEEK) == b"cd"
    assert _recv(env, b, 10, 0) == b"cd"
    assert _recvmsg_flags(env, b, MSG_OOB)[0] == -errno.EINVAL
    assert _ioctl_int(env, b, SIOCINQ) == 1  # Linux's inq_len keeps the dropped byte
    assert env.outq(a) == 0  # but its skb was freed


def test_oobinline_reads_the_byte_as_data_after_the_mark(env: Env) -> None:
    a, b = env.pair()
    assert env.setint(b, SO_OOBINLINE, 1) == 0
    env.send(a, b"ab", MSG_OOB)
    env.send(a, b"cd")
    assert _recvmsg_flags(env, b, MSG_OOB)[0] == -errno.EINVAL
    assert _recv(env, b, 10, 0) == b"a"
    assert _recv(env, b, 10, 0) == b"bcd"
    assert _ioctl_int(env, b, SIOCINQ) == 0


def test_urgent_byte_taken_from_the_middle(env: Env) -> None:
    a, b = env.pair()
    env.send(a, b"12", MSG_OOB)
    env.send(a, b"34")
    assert _recv(env, b, 1, MSG_OOB) == b"2"
    assert _recv(env, b, 10, 0) == b"1"  # stops where the urgent byte was
    assert _ioctl_int(env, b, SIOCATMARK) == 1
    assert _recv(env, b, 10, 0) == b"34"


def test_sigurg_goes_to_the_owner_only(env: Env) -> None:
    env.p.kernel.thread_groups = {env.p.tg.pid: env.p.tg}  # type: ignore[attr-defined]
    a, b = env.pair()
    env.send(a, b"x", MSG_OOB)
    assert env.signals == []
    pid = env.p.put(struct.pack("<i", env.p.tg.pid))
    assert env.dispatch("ioctl", b, FIOSETOWN, pid) == 0
    assert _ioctl_int(env, b, FIOGETOWN) == env.p.tg.pid
    env.send(a, b"y")
    assert env.signals == []
    env.send(a, b"z", MSG_OOB)
    assert env.signals == [(env.p.tg, SIGURG)]
    missing = env.p.put(struct.pack("<i", env.p.tg.pid + 100))
    assert env.dispatch("ioctl", b, FIOSETOWN, missing) == -errno.ESRCH


def test_datagram_kinds_refuse_oob(env: Env) -> None:
    for kind in (SOCK_DGRAM, SOCK_SEQPACKET):
        a, b = env.pair(kind)
        assert env.send(a, b"x", MSG_OOB) == -errno.EOPNOTSUPP
        assert _recv(env, b, 1, MSG_OOB) == -errno.EOPNOTSUPP


def test_urgent_byte_waits_for_room_after_the_data(env: Env) -> None:
    a, b = env.pair()
    assert env.setint(a, SO_SNDBUF, 1) == 0  # SOCK_MIN_SNDBUF: two 2240-byte skbs fill it
    payload = bytes(range(256)) * 17 + b"!"
    args = (a, env.p.put(payload), len(payload), MSG_OOB, 0, 0)
    block = env.blocks("sendto", *args)
    assert block.queue is env.sock(a).wait
    assert env.sock(b).oob_skb is None and env.sock(b).inq_len == len(payload) - 1
    assert env.dispatch("read", b, env.p.alloc(8192), 8192, task=env.peer) == len(payload) - 1
    assert env.p.raw("sendto", *args) == len(payload)  # the same call again: only the byte
    assert _recv(env, b, 1, MSG_OOB) == b"!"


# -- sockets in flight: the garbage collector ------------------------------------------------------
def test_socket_queued_on_itself_is_collected_with_what_it_holds(env: Env) -> None:
    a, b = env.pair()
    rfd, wfd = env.pipe()
    sock_a, sock_b = env.sock(a), env.sock(b)
    assert env.send_fds(b, b"s", [a, wfd]) == 1  # into a's own queue
    assert sock_a.inflight == 1 and sock_a.refs == 2
    env.dispatch("close", wfd)
    env.dispatch("close", a)
    assert sock_a.dead and sock_a.refs == 0 and not sock_a.queue
    assert env.p.tg.fds.get(rfd).pipe.writers == 0  # the pipe's writer went with it
    assert env.read(b, 8) == b""  # EOF for the peer
    assert env.outq(b) == 0 and not sock_a.names.inflight
    assert sock_b.poll_events() & 0x10  # POLLHUP: its peer is gone


def test_cycle_through_two_pairs_is_collected_when_its_last_fd_closes(env: Env) -> None:
    a0, a1 = env.pair()
    b0, b1 = env.pair(SOCK_SEQPACKET)
    s_a0, s_b0 = env.sock(a0), env.sock(b0)
    env.send_fds(a1, b"1", [b0])  # b0 waits in a0's queue
    env.send_fds(b1, b"2", [a0])  # a0 waits in b0's queue
    env.dispatch("close", a0)
    assert not s_a0.dead  # b0 has an fd: what its queue holds is reachable
    env.dispatch("close", b0)
    assert s_a0.dead and s_b0.dead
    assert env.read(a1, 8) == b"" and env.outq(a1) == 0 and env.outq(b1) == 0
    assert not s_a0.names.inflight


def test_socket_held_by_a_live_queue_is_not_garbage(env: Env) -> None:
    a0, a1 = env.pair()
    b0, b1 = env.pair()
    s_a0 = env.sock(a0)
    env.send_fds(b0, b"3", [a0])
    env.dispatch("close", a0)
    assert not s_a0.dead and s_a0.refs == s_a0.inflight == 1
    n, _, fds, _ = env.recv_fds(b1, 8, 24)
    assert n == 1 and env.p.tg.fds.get(fds[0]) is s_a0 and s_a0.inflight == 0
    assert env.write(fds[0], b"hi") == 2 and env.read(a1, 8) == b"hi"


def test_collection_frees_only_messages_carrying_files(env: Env) -> None:
    a, b = env.pair()
    s_a = env.sock(a)
    env.write(b, b"plain")
    env.send_fds(b, b"f", [a])
    env.send_fds(b, b"g", [b])  # b itself is in flight too, but it has an fd
    env.dispatch("close", a)  # a is held by its own queue only: garbage
    assert s_a.dead
    s_b = env.sock(b)
    assert s_b.refs == 1 and s_b.inflight == 0  # its in-flight copy went with a's queue


def test_too_many_files_in_flight_for_one_user(env: Env, monkeypatch) -> None:
    """too_many_unix_fds: more in flight than RLIMIT_NOFILE (checked before adding) is
    ETOOMANYREFS for a user without CAP_SYS_RESOURCE/CAP_SYS_ADMIN; receiving uncharges."""
    from snakevisor.syscalls import sys_cred
    a, b = env.pair()
    d0, _d1 = env.pair(SOCK_DGRAM)
    env.p.tg.rlimits[7] = (12, 12)  # RLIMIT_NOFILE
    assert env.send_fds(a, b"x", [0, 0, 0]) == 1  # capable: never refused
    monkeypatch.setattr(sys_cred, "has_cap", lambda task, cap: False)
    sent = 1
    while (n := env.send_fds(a, b"x", [a, a, a])) == 1:
        sent += 1
    assert n == -errno.ETOOMANYREFS and sent == 5  # 12 in flight is not yet too many
    assert env.send_fds(d0, b"y", [a]) == -errno.ETOOMANYREFS  # per user, any socket
    assert env.send(d0, b"z") == 1  # a message without files is not charged
    n, _, fds, _ = env.recv_fds(b, 1, 64)
    assert n == 1 and len(fds) == 3
    assert env.send_fds(d0, b"y", [a]) == 1
