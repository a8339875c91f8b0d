"""POSIX message queues, driven as the kernel drives them: handlers called with raw
registers, blocking calls raising Block on the queue's WaitQueue and dispatched again
after a change (see tests/c/mqueue.c for the same behaviour compared with Linux)."""
from __future__ import annotations

import errno
import os
import struct
import time

import pytest

from snakevisor.fsimpl.mqueuefs import MqueueFile, mqueue_fs
from snakevisor.kernel.errors import SyscallError
from snakevisor.kernel.mqueue import RLIMIT_MSGQUEUE, SI_MESGQ, SYSCTL_RANGES, mqueue_namespace
from snakevisor.kernel.sigframe import unpack_siginfo
from snakevisor.kernel.task import Credentials
from snakevisor.vfs.file import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM
from tests.unit.conftest import DispatchEnv

O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL = 0, 1, 2, 0o100, 0o200
O_NONBLOCK = os.O_NONBLOCK
ATTR = struct.Struct("<qqqq32x")
SIGEV_SIGNAL, SIGEV_NONE = 0, 1
SIGUSR1 = 10


def _attr(env: DispatchEnv, maxmsg: int, msgsize: int, flags: int = 0) -> int:
    return env.p.put(ATTR.pack(flags, maxmsg, msgsize, 0))


def _open(env: DispatchEnv, name: bytes, oflag: int = O_RDWR | O_CREAT, mode: int = 0o600,
          attr: tuple[int, int] | None = None) -> int:
    ptr = _attr(env, *attr) if attr else 0
    return env.dispatch("mq_open", env.p.cstr(name), oflag, mode, ptr)


def _send(env: DispatchEnv, fd: int, text: bytes, prio: int = 0, timeout: int = 0,
          task=None) -> int:
    return env.dispatch("mq_timedsend", fd, env.p.put(text or b"\0"), len(text), prio,
                        timeout, task=task)


def _recv_call(env: DispatchEnv, fd: int, size: int = 8192, timeout: int = 0):
    buf, prio = env.p.alloc(size), env.p.alloc(4)
    return ("mq_timedreceive", fd, buf, size, prio, timeout), buf, prio


def _recv(env: DispatchEnv, fd: int, size: int = 8192, timeout: int = 0,
          task=None) -> tuple[int, bytes, int]:
    call, buf, prio = _recv_call(env, fd, size, timeout)
    n = env.dispatch(*call, task=task)
    if n < 0:
        return n, b"", -1
    return n, env.p.get(buf, n), struct.unpack("<I", env.p.get(prio, 4))[0]


def _getattr(env: DispatchEnv, fd: int) -> tuple[int, int, int, int]:
    out = env.p.alloc(ATTR.size)
    assert env.dispatch("mq_getsetattr", fd, 0, out) == 0
    return ATTR.unpack(env.p.get(out, ATTR.size))


def _abs_timeout(env: DispatchEnv, seconds_from_now: float) -> int:
    when = time.clock_gettime(time.CLOCK_REALTIME) + seconds_from_now
    sec = int(when)
    return env.p.put(struct.pack("<qq", sec, int((when - sec) * 1e9)))


def _become(env: DispatchEnv, uid: int) -> None:
    env.p.tg.creds = Credentials(uid, uid)
    if hasattr(env.p.tg, "caps"):
        del env.p.tg.caps


def _sigevent(env: DispatchEnv, notify: int, signo: int = 0, value: int = 0) -> int:
    return env.p.put(struct.pack("<Qii48x", value, signo, notify))


def test_highest_priority_first_fifo_within_a_priority() -> None:
    env = DispatchEnv()
    fd = _open(env, b"q")
    for text, prio in [(b"a", 1), (b"b", 5), (b"c", 5), (b"d", 0), (b"e", 32767)]:
        assert _send(env, fd, text, prio) == 0
    assert _getattr(env, fd) == (0, 10, 8192, 5)
    got = [_recv(env, fd)[1:] for _ in range(5)]
    assert got == [(b"e", 32767), (b"b", 5), (b"c", 5), (b"a", 1), (b"d", 0)]
    assert _send(env, fd, b"x", 32768) == -errno.EINVAL


def test_defaults_and_attribute_limits() -> None:
    env = DispatchEnv()
    fd = _open(env, b"dflt")
    assert _getattr(env, fd) == (0, 10, 8192, 0)
    _become(env, 1000)
    assert _open(env, b"big", attr=(11, 8)) == -errno.EINVAL  # over msg_max
    assert _open(env, b"big", attr=(10, 8193)) == -errno.EINVAL  # over msgsize_max
    assert _open(env, b"big", attr=(0, 8)) == -errno.EINVAL
    assert _open(env, b"big", attr=(1, -1)) == -errno.EINVAL
    _become(env, 0)  # CAP_SYS_RESOURCE: up to HARD_MSGMAX / HARD_MSGSIZEMAX
    assert _open(env, b"big", attr=(11, 8)) >= 0
    assert _open(env, b"huge", attr=(65537, 1)) == -errno.EINVAL


def test_rlimit_msgqueue_charge_is_returned_when_the_queue_is_gone() -> None:
    env = DispatchEnv()
    _become(env, 1000)
    env.p.tg.rlimits[RLIMIT_MSGQUEUE] = [100000, 100000]
    first = _open(env, b"one")  # 10 * 8192 + 20 * 48 = 82880 bytes
    assert first >= 0
    assert _open(env, b"two") == -errno.EMFILE
    assert _open(env, b"small", attr=(1, 1000)) >= 0  # 1096 more still fits
    assert env.dispatch("mq_unlink", env.p.cstr(b"one")) == 0
    assert _open(env, b"two") == -errno.EMFILE  # still open: still charged
    env.p.tg.fds.close(first)
    assert _open(env, b"two") >= 0


def test_queues_max_is_enospc_without_cap_sys_resource() -> None:
    env = DispatchEnv()
    mqueue_namespace(env.p.kernel).queues_max = 1
    _become(env, 1000)
    assert _open(env, b"a", attr=(1, 1)) >= 0
    assert _open(env, b"b", attr=(1, 1)) == -errno.ENOSPC


def test_names_and_open_errors() -> None:
    env = DispatchEnv()
    assert _open(env, b"absent", O_RDWR) == -errno.ENOENT
    assert env.dispatch("mq_open", env.p.cstr(b""), O_RDWR | O_CREAT, 0o600, 0) == -errno.ENOENT
    for bad in (b"a/b", b".", b".."):
        assert _open(env, bad) == -errno.EACCES
    assert _open(env, b"x" * 256) == -errno.ENAMETOOLONG
    fd = _open(env, b"x" * 255, O_RDWR | O_CREAT | O_EXCL)
    assert fd >= 0 and fd in env.task.fds.cloexec  # mq descriptors are close-on-exec
    assert _open(env, b"x" * 255, O_RDWR | O_CREAT | O_EXCL) == -errno.EEXIST
    assert _open(env, b"x" * 255, O_RDWR | O_WRONLY) == -errno.EINVAL
    assert env.dispatch("mq_unlink", env.p.cstr(b"a/b")) == -errno.EACCES
    assert env.dispatch("mq_unlink", env.p.cstr(b"nothing")) == -errno.ENOENT


def test_permissions_of_an_existing_queue() -> None:
    env = DispatchEnv()
    assert _open(env, b"q", mode=0o644) >= 0
    _become(env, 1000)
    assert _open(env, b"q", O_RDONLY) >= 0
    assert _open(env, b"q", O_WRONLY) == -errno.EACCES
    assert env.dispatch("mq_unlink", env.p.cstr(b"q")) == -errno.EACCES  # sticky directory


def test_sizes_access_modes_and_nonblocking() -> None:
    env = DispatchEnv()
    fd = _open(env, b"q", O_RDWR | O_CREAT | O_NONBLOCK, attr=(2, 4))
    assert _getattr(env, fd) == (O_NONBLOCK, 2, 4, 0)
    assert _send(env, fd, b"12345") == -errno.EMSGSIZE
    assert _recv(env, fd, size=3)[0] == -errno.EMSGSIZE
    assert _recv(env, fd)[0] == -errno.EAGAIN
    assert _send(env, fd, b"a") == 0 and _send(env, fd, b"b") == 0
    assert _send(env, fd, b"c") == -errno.EAGAIN
    ro = _open(env, b"q", O_RDONLY)
    wo = _open(env, b"q", O_WRONLY)
    assert _send(env, ro, b"x") == -errno.EBADF
    assert _recv(env, wo)[0] == -errno.EBADF
    assert _send(env, 999, b"x") == -errno.EBADF
    # mq_setattr changes only O_NONBLOCK of this description
    new = _attr(env, 0, 0, flags=0)
    assert env.dispatch("mq_getsetattr", fd, new, 0) == 0
    assert _getattr(env, fd)[0] == 0
    assert env.dispatch("mq_getsetattr", fd, _attr(env, 0, 0, flags=1), 0) == -errno.EINVAL


def test_blocked_receiver_wakes_on_send_and_gets_the_message() -> None:
    env = DispatchEnv()
    fd = _open(env, b"q")
    call, buf, _ = _recv_call(env, fd)
    block = env.blocks(*call)
    assert block.queue is not None and block.deadline is None
    block.queue.waiters.append(env.task)
    assert _send(env, fd, b"hello", 3, task=env.peer) == 0
    assert env.task in env.woken
    assert env.dispatch(*call) == 5
    assert env.p.get(buf, 5) == b"hello"


def test_blocked_sender_waits_for_room() -> None:
    env = DispatchEnv()
    fd = _open(env, b"q", attr=(1, 8))
    assert _send(env, fd, b"first") == 0
    text = env.p.put(b"second")
    block = env.blocks("mq_timedsend", fd, text, 6, 0, 0)
    block.queue.waiters.append(env.task)  # type: ignore[union-attr]
    assert _recv(env, fd, task=env.peer)[1] == b"first"
    assert env.task in env.woken
    assert env.dispatch("mq_timedsend", fd, text, 6, 0, 0) == 0
    assert _recv(env, fd)[1] == b"second"


def test_absolute_realtime_timeouts() -> None:
    env = DispatchEnv()
    fd = _open(env, b"q")
    assert _recv(env, fd, timeout=_abs_timeout(env, -1))[0] == -errno.ETIMEDOUT
    block = env.blocks(*_recv_call(env, fd, timeout=_abs_timeout(env, 30))[0])
    assert block.deadline is not None and block.deadline > env.p.kernel.now() + 20
    env.task.syscall_state = None
    bad = env.p.put(struct.pack("<qq", 0, 1_000_000_000))
    assert _send(env, fd, b"x") == 0
    assert _recv(env, fd, timeout=bad)[0] == -errno.EINVAL  # checked before anything else


def _recording_signals(env: DispatchEnv) -> list[tuple[object, int, bytes]]:
    sent: list[tuple[object, int, bytes]] = []
    env.p.kernel.send_signal = lambda target, sig, info=None: sent.append((target, sig, info))  # type: ignore[attr-defined]
    return sent


def test_notify_fires_once_on_empty_to_nonempty_with_si_mesgq() -> None:
    env = DispatchEnv()
    sent = _recording_signals(env)
    fd = _open(env, b"q")
    ev = _sigevent(env, SIGEV_SIGNAL, SIGUSR1, 42)
    assert env.dispatch("mq_notify", fd, ev) == 0
    assert env.dispatch("mq_notify", fd, ev) == -errno.EBUSY
    assert _send(env, fd, b"a") == 0
    assert _send(env, fd, b"b") == 0  # not empty before: no second signal
    assert len(sent) == 1
    target, sig, info = sent[0]
    assert target is env.p.tg and sig == SIGUSR1
    fields = unpack_siginfo(info)
    assert (fields["code"], fields["value"], fields["pid"], fields["uid"]) == (SI_MESGQ, 42, 1, 0)
    _recv(env, fd), _recv(env, fd)
    assert _send(env, fd, b"c") == 0  # the registration went with the first signal
    assert len(sent) == 1
    assert env.dispatch("mq_notify", fd, ev) == 0


def test_notify_skipped_when_a_receiver_is_blocked() -> None:
    env = DispatchEnv()
    sent = _recording_signals(env)
    fd = _open(env, b"q")
    call = _recv_call(env, fd)[0]
    env.blocks(*call)  # the main thread waits in mq_timedreceive
    assert env.dispatch("mq_notify", fd, _sigevent(env, SIGEV_SIGNAL, SIGUSR1),
                        task=env.peer) == 0
    assert _send(env, fd, b"direct", task=env.peer) == 0
    assert sent == []
    assert env.dispatch(*call) == 6
    status = mqueue_fs(env.p.kernel).root().children[b"q"].queue.status_line()
    assert status.startswith(b"QSIZE:0          NOTIFY:0     SIGNO:10    NOTIFY_PID:1     ")


def test_notify_registration_ends_when_the_owner_closes_a_descriptor() -> None:
    env = DispatchEnv()
    fd = _open(env, b"q")
    other = _open(env, b"q")
    env.p.kernel.current = env.task
    assert env.dispatch("mq_notify", fd, _sigevent(env, SIGEV_NONE)) == 0
    queue = env.task.fds.get(fd).queue  # type: ignore[attr-defined]
    assert queue.status_line().startswith(b"QSIZE:0          NOTIFY:1     SIGNO:0     NOTIFY_PID:1")
    env.task.fds.close(other)  # any descriptor of the queue, closed by the owner
    assert queue.registration() is None
    assert env.dispatch("mq_notify", fd, _sigevent(env, SIGEV_NONE)) == 0
    assert env.dispatch("mq_notify", fd, _sigevent(env, 99)) == -errno.EINVAL
    assert env.dispatch("mq_notify", fd, _sigevent(env, SIGEV_SIGNAL, 65)) == -errno.EINVAL
    assert env.dispatch("mq_notify", 999, _sigevent(env, SIGEV_NONE)) == -errno.EBADF


def test_notify_thread_fails_without_netlink_and_is_logged() -> None:
    env = DispatchEnv()
    fd = _open(env, b"q")
    cookie = env.p.alloc(32)
    ev = env.p.put(struct.pack("<Qii48x", cookie, fd, 2))  # sigev_signo: the "socket" fd
    assert env.dispatch("mq_notify", fd, ev) == -errno.ENOTSOCK
    assert "mq_notify:SIGEV_THREAD" in env.p.kernel.warnings


def test_queue_file_status_poll_and_unlink_while_open() -> None:
    env = DispatchEnv()
    fd = _open(env, b"q", attr=(2, 16))
    file = env.task.fds.get(fd)
    assert isinstance(file, MqueueFile)
    assert file.poll_events() == POLLOUT | POLLWRNORM
    _send(env, fd, b"12345")
    assert file.poll_events() == POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM
    _send(env, fd, b"678")
    assert file.poll_events() == POLLIN | POLLRDNORM
    assert file.read(env.task, 100) == b"QSIZE:8          NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n"
    assert file.stat().st_size == 80
    ns = mqueue_namespace(env.p.kernel)
    count = ns.queues_count
    assert env.dispatch("mq_unlink", env.p.cstr(b"q")) == 0
    assert _open(env, b"q", O_RDWR) == -errno.ENOENT
    assert _recv(env, fd)[1] == b"12345"  # the open queue still works
    assert ns.queues_count == count
    env.task.fds.close(fd)
    assert ns.queues_count == count - 1


def test_sysctl_values_and_ranges() -> None:
    env = DispatchEnv()
    ns = mqueue_namespace(env.p.kernel)
    assert {name: getattr(ns, name) for name in SYSCTL_RANGES} == {
        "msg_default": 10, "msg_max": 10, "msgsize_default": 8192, "msgsize_max": 8192,
        "queues_max": 256}
    _become(env, 1000)
    assert _open(env, b"q", attr=(20, 8)) == -errno.EINVAL
    ns.sysctl_set("msg_max", 20)
    assert _open(env, b"q", attr=(20, 8)) >= 0
    for name, value in [("msg_max", 0), ("msgsize_max", 127), ("msg_default", 65537)]:
        with pytest.raises(SyscallError):
            ns.sysctl_set(name, value)
