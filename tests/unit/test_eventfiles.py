"""eventfd, timerfd, signalfd and memfd, called as handlers on a fake process.

Why here and not only in tests/c: the differential programs show the outcomes Linux
defines; these pin what only the sentry knows — who is woken (the files' queues), what a
timer does when the event loop reaches it late or early (a fake clock and a fake loop,
so nothing depends on real time), whose signals a signalfd sees (the task being served),
and that memfd seals live on the host memfd (the host refuses what the seals forbid).
"""
from __future__ import annotations

import fcntl
import mmap
import os
import struct

import pytest

from conftest import FakeProcess, In, Out
from snakevisor.kernel import signals, timers
from snakevisor.kernel.errors import Block
from snakevisor.kernel.sigframe import SI_QUEUE, SI_TKILL, pack_siginfo
from snakevisor.kernel.task import Task, ThreadGroup
from snakevisor.syscalls.sys_memfd import (F_ADD_SEALS, F_GET_SEALS, F_SEAL_EXEC, F_SEAL_GROW,
                                           F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE,
                                           MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_NOEXEC_SEAL,
                                           MemfdFile)
from snakevisor.vfs.epoll import EpollFile, QueueCallback
from snakevisor.vfs.eventfd import EventFd
from snakevisor.vfs.fdtable import FdTable
from snakevisor.vfs.file import POLLERR, POLLIN, POLLOUT
from snakevisor.vfs.signalfd import SIGNALFD_SIGINFO, SignalFd
from snakevisor.vfs.timerfd import TimerFd

EINVAL, EAGAIN, EBADF, EPERM, EBUSY, EFAULT, ENOSYS = 22, 11, 9, 1, 16, 14, 38
O_NONBLOCK, O_CLOEXEC = 0o4000, 0o2000000
U64 = (1 << 64) - 1
MS, SEC = 1_000_000, 1_000_000_000
SIGUSR1, SIGUSR2, SIGRTMIN, SIGKILL, SIGSTOP = 10, 12, 34, 9, 19
F_GETFL = 3
ITIMERSPEC = struct.Struct("<qqqq")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "little")


def watch(queue) -> list[int]:
    """A list that grows by one at every notification of `queue` (re-subscribing)."""
    seen: list[int] = []

    def hook() -> None:
        seen.append(1)
        queue.waiters.append(cb)
    cb = QueueCallback(hook)
    queue.waiters.append(cb)
    return seen


# -- eventfd ---------------------------------------------------------------------------------
def test_eventfd_counter_semaphore_and_sizes() -> None:
    p = FakeProcess(None)
    fd = p.call("eventfd2", 3, O_NONBLOCK | O_CLOEXEC)
    assert fd >= 0 and fd in p.tg.fds.cloexec
    assert p.call("fcntl", fd, F_GETFL) == 0o2 | O_NONBLOCK
    assert p.call("read", fd, Out(7), 7) == -EINVAL
    assert p.run([("read", fd, Out(16), 16)])[0] == [8, u64(3) + bytes(8)]
    assert p.call("read", fd, Out(8), 8) == -EAGAIN
    assert p.call("write", fd, In(u64(1) * 2), 16) == -EINVAL  # exactly 8 bytes (6.x)
    assert p.call("write", fd, In(u64(U64)), 8) == -EINVAL
    assert p.call("write", fd, In(u64(U64 - 1)), 8) == 8
    assert p.call("write", fd, In(u64(1)), 8) == -EAGAIN  # would reach ULLONG_MAX
    assert p.call("write", fd, In(u64(0)), 8) == 8
    assert p.call("pread64", fd, Out(8), 8, 0) == -29  # ESPIPE
    assert p.call("lseek", fd, 5, 0) == 0
    sem = p.call("eventfd2", 2, 1 | O_NONBLOCK)
    assert [p.run([("read", sem, Out(8), 8)])[0][1] for _ in range(2)] == [u64(1)] * 2
    assert p.call("read", sem, Out(8), 8) == -EAGAIN
    assert p.call("eventfd2", 0, 4) == -EINVAL
    assert p.call("eventfd2", 0, -1) == -EINVAL
    assert p.tg.fds.files[p.call("eventfd", 7)].count == 7


def test_eventfd_readiness_and_wakeups() -> None:
    efd = EventFd(0, False, nonblock=False)
    seen = watch(efd.queue)
    p = FakeProcess(None)
    assert efd.poll_events() == POLLOUT  # bare bits, no RDNORM/WRNORM
    with pytest.raises(Block) as blocked:
        efd.read(p.task, 8)
    assert blocked.value.queue is efd.queue
    efd.write(p.task, u64(U64 - 1))
    assert efd.poll_events() == POLLIN and len(seen) == 1  # a write wakes readers
    with pytest.raises(Block):
        efd.write(p.task, u64(5))  # a blocking writer waits for room
    efd.read(p.task, 8)
    assert len(seen) == 2 and efd.poll_events() == POLLOUT  # a read wakes writers
    efd.count = U64  # only the kernel's eventfd_signal can get here
    assert efd.poll_events() == POLLIN | POLLERR
    assert efd.fdinfo().startswith(f"eventfd-count: {U64:16x}\neventfd-id: ")
    assert EventFd(3, True, True).fdinfo().splitlines()[::2] == [
        "eventfd-count:                3", "eventfd-semaphore: 1"]


# -- timerfd ---------------------------------------------------------------------------------
class FakeLoop:
    """The event loop's timer service and every clock, all on one fake nanosecond count."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, kernel: object) -> None:
        self.ns = 1000 * SEC
        self.calls: list[tuple[float, object]] = []
        monkeypatch.setattr(timers, "clock_ns", lambda clockid: self.ns)
        kernel.now = lambda: self.ns / SEC  # type: ignore[attr-defined]
        kernel.call_at = self.call_at  # type: ignore[attr-defined]

    def call_at(self, deadline: float, fn) -> object:
        from snakevisor.kernel.kernel import Timer
        handle = Timer(fn)
        self.calls.append((deadline, handle))
        return handle

    def advance(self, ns: int) -> None:
        """Move time on and run what is due, as the loop does (maybe more than once)."""
        self.ns += ns
        while True:
            due = [c for c in self.calls if c[0] <= self.ns / SEC + 1e-9 and not c[1].cancelled]
            if not due:
                return
            for c in due:
                self.calls.remove(c)
                c[1].fn()

    def armed(self) -> int:
        return sum(1 for _, h in self.calls if not h.cancelled)


def _settime(p: FakeProcess, fd: int, flags: int, value: int, interval: int = 0) -> list:
    spec = ITIMERSPEC.pack(interval // SEC, interval % SEC, value // SEC, value % SEC)
    ret, old = p.run([("timerfd_settime", fd, flags, In(spec), Out(32))])[0]
    return [ret, ITIMERSPEC.unpack(old)]


def _gettime(p: FakeProcess, fd: int) -> tuple[int, int]:
    ret, cur = p.run([("timerfd_gettime", fd, Out(32))])[0]
    assert ret == 0
    isec, insec, vsec, vnsec = ITIMERSPEC.unpack(cur)
    return vsec * SEC + vnsec, isec * SEC + insec


def _read_ticks(p: FakeProcess, fd: int) -> int:
    ret, data = p.run([("read", fd, Out(8), 8)])[0]
    return ret if ret < 0 else int.from_bytes(data, "little")


def test_timerfd_one_shot_periodic_and_late_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    p = FakeProcess(None)
    loop = FakeLoop(monkeypatch, p.kernel)
    fd = p.call("timerfd_create", 1, O_NONBLOCK)
    tfd = p.tg.fds.files[fd]
    seen = watch(tfd.queue)
    assert _settime(p, fd, 0, 30 * MS)[0] == 0 and loop.armed() == 1
    assert _gettime(p, fd) == (30 * MS, 0)
    assert _read_ticks(p, fd) == -EAGAIN and tfd.poll_events() == 0
    loop.advance(30 * MS)
    assert seen == [1] and tfd.poll_events() == POLLIN  # the expiry woke the queue
    assert _read_ticks(p, fd) == 1 and _read_ticks(p, fd) == -EAGAIN
    assert _gettime(p, fd) == (0, 0) and loop.armed() == 0
    # periodic, and the loop runs 3.5 periods late: the count has them all
    assert _settime(p, fd, 0, 10 * MS, 10 * MS)[0] == 0
    loop.ns += 45 * MS
    assert _gettime(p, fd) == (5 * MS, 10 * MS)  # looking at it counts what is due
    assert _read_ticks(p, fd) == 4
    loop.advance(5 * MS)
    assert _read_ticks(p, fd) == 1 and loop.armed() == 1  # one schedule, not a chain per look
    # settime restarts the count and reports the old setting
    loop.advance(20 * MS)
    ret, old = _settime(p, fd, 0, 0, 7 * SEC)
    assert ret == 0 and old == (0, 10 * MS, 0, 10 * MS) and loop.armed() == 0
    assert _read_ticks(p, fd) == -EAGAIN
    assert _gettime(p, fd) == (0, 7 * SEC)  # disarmed, yet the interval is reported


def test_timerfd_absolute_times_and_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    p = FakeProcess(None)
    loop = FakeLoop(monkeypatch, p.kernel)
    fd = p.call("timerfd_create", 0, 0)
    tfd = p.tg.fds.files[fd]
    ep = EpollFile()
    ep.add(fd, tfd, POLLIN, 0)
    assert ep.poll_events() == 0
    assert _settime(p, fd, 1, loop.ns - SEC)[0] == 0  # ABSTIME in the past: expired at once,
    assert ep.poll_events() & POLLIN  # and an epoll instance heard of it (a wake-up)
    assert tfd.poll_events() == POLLIN and _read_ticks(p, fd) == 1
    ep.release()
    assert _settime(p, fd, 1, loop.ns - 10 * SEC - SEC // 2, SEC)[0] == 0
    assert _read_ticks(p, fd) == 11  # the missed periods, as hrtimer_forward counts them
    assert _gettime(p, fd) == (SEC // 2, SEC)
    assert _settime(p, fd, 1 | 2, loop.ns + 5 * SEC)[0] == 0  # CANCEL_ON_SET is accepted
    with pytest.raises(Block) as blocked:
        p.raw("read", fd, p.alloc(8), 8)
    assert blocked.value.queue is tfd.queue
    assert "settime flags: 03\nit_value: (5, 0)" in tfd.fdinfo()
    tfd.release()
    assert loop.armed() == 0 and not tfd.timer.armed


def test_timerfd_errors_ticks_ioctl_and_alarm_clocks(monkeypatch: pytest.MonkeyPatch) -> None:
    p = FakeProcess(None)
    FakeLoop(monkeypatch, p.kernel)
    fd = p.call("timerfd_create", 7, 0)
    assert isinstance(p.tg.fds.files[fd], TimerFd)
    assert [p.call("timerfd_create", c, 0) for c in (2, 3, 4, 5, 6, 11, -1)] == [-EINVAL] * 7
    assert p.call("timerfd_create", 1, 1) == -EINVAL
    assert p.call("timerfd_create", 8, 0) == -EPERM  # no CAP_WAKE_ALARM in the init userns
    assert p.call("timerfd_create", 9, 0) == -EPERM
    assert _settime(p, fd, 4, SEC)[0] == -EINVAL
    assert _settime(p, fd, 0, -SEC)[0] == -EINVAL
    efd = p.call("eventfd2", 0, 0)
    assert _settime(p, efd, 0, SEC)[0] == -EINVAL
    assert _settime(p, 99, 0, SEC)[0] == -EBADF
    assert p.call("timerfd_settime", 99, 0, 16, 0) == -EFAULT  # the value is copied first
    assert p.call("timerfd_gettime", efd, p.alloc(32)) == -EINVAL
    assert p.call("read", fd, Out(4), 4) == -EINVAL
    assert p.call("ioctl", fd, 0x40085400, In(u64(0))) == -EINVAL
    assert p.call("ioctl", fd, 0x40085400, In(u64(5))) == 0
    assert _read_ticks(p, fd) == 5
    assert p.call("ioctl", fd, 0x541B, Out(4)) == -25  # ENOTTY


# -- signalfd --------------------------------------------------------------------------------
def _mask(*sigs: int) -> bytes:
    return u64(sum(1 << (s - 1) for s in sigs))


def _records(data: bytes) -> list[tuple]:
    return [SIGNALFD_SIGINFO.unpack_from(data, i) for i in range(0, len(data), 128)]


def test_signalfd_reads_pending_signals_in_order() -> None:
    p = FakeProcess(None)
    p.task.sigmask = int.from_bytes(_mask(SIGUSR1, SIGUSR2, SIGRTMIN), "little")
    fd = p.call("signalfd4", -1, In(_mask(SIGUSR1, SIGRTMIN, SIGKILL, SIGSTOP)), 8, O_NONBLOCK)
    sfd = p.tg.fds.files[fd]
    assert isinstance(sfd, SignalFd) and sfd.mask == int.from_bytes(_mask(SIGUSR1, SIGRTMIN), "little")
    assert sfd.fdinfo() == "sigmask:\t0000000200000200\n"
    assert p.call("read", fd, Out(128), 128) == -EAGAIN and sfd.poll_events() == 0
    k = p.kernel
    signals.send_signal(k, p.tg, SIGRTMIN, pack_siginfo(SIGRTMIN, SI_QUEUE, pid=5, uid=7, value=-3 & U64))
    signals.send_signal(k, p.tg, SIGRTMIN, pack_siginfo(SIGRTMIN, SI_QUEUE, pid=5, uid=7, value=9))
    signals.send_signal(k, p.task, SIGUSR1, pack_siginfo(SIGUSR1, SI_TKILL, pid=5, uid=7))
    signals.send_signal(k, p.tg, SIGUSR2, pack_siginfo(SIGUSR2, SI_TKILL, pid=5, uid=7))
    assert sfd.poll_events() == POLLIN
    assert p.call("read", fd, Out(127), 127) == -EINVAL
    ret, data = p.run([("read", fd, Out(600), 600)])[0]
    assert ret == 3 * 128
    recs = _records(data[:ret])
    assert [(r[0], r[2], r[3], r[4]) for r in recs] == [
        (SIGUSR1, SI_TKILL, 5, 7), (SIGRTMIN, SI_QUEUE, 5, 7), (SIGRTMIN, SI_QUEUE, 5, 7)]
    assert [(r[11], r[12]) for r in recs[1:]] == [(-3, U64 - 2), (9, 9)]  # ssi_int, ssi_ptr
    assert p.tg.shared_pending.mask == 1 << (SIGUSR2 - 1)  # not in the mask: left pending
    # a new mask for the same file takes it, and wakes whoever waits on signals
    seen = watch(p.tg.signal_wait)
    assert p.call("signalfd", fd, In(_mask(SIGUSR2)), 8) == fd and seen == [1]
    assert _records(p.run([("read", fd, Out(128), 128)])[0][1])[0][0] == SIGUSR2
    assert p.call("signalfd4", fd, In(_mask(SIGUSR2)), 4, 0) == -EINVAL
    assert p.call("signalfd4", -1, 16, 8, 0) == -EFAULT
    assert p.call("signalfd4", -1, In(_mask(SIGUSR2)), 8, 1) == -EINVAL
    assert p.call("signalfd4", p.call("eventfd2", 0, 0), In(_mask(SIGUSR2)), 8, 0) == -EINVAL
    assert p.call("signalfd4", -2, In(_mask(SIGUSR2)), 8, 0) == -EBADF


def test_signalfd_waits_on_the_readers_process_and_follows_the_served_task() -> None:
    p = FakeProcess(None)
    fd = p.call("signalfd", -1, In(_mask(SIGUSR1)), 8)
    sfd = p.tg.fds.files[fd]
    with pytest.raises(Block) as blocked:
        p.raw("read", fd, p.alloc(128), 128)
    assert blocked.value.queue is p.tg.signal_wait  # send_signal notifies it for every signal
    # a forked child holding the same description: what it sees is its own
    child_tg = ThreadGroup(p.kernel, 2, p.tg, p.tg.mm, FdTable(), p.tg.fs)  # type: ignore[arg-type]
    child = Task(p.kernel, 2, child_tg, None)  # type: ignore[arg-type]
    child_tg.tasks.append(child)
    child.sigmask = p.task.sigmask = 1 << (SIGUSR1 - 1)
    signals.send_signal(p.kernel, p.tg, SIGUSR1)
    p.kernel.current = child  # type: ignore[attr-defined]  # the kernel serves the child
    assert sfd.poll_events() == 0 and sfd.poll_queue() is child_tg.signal_wait
    with pytest.raises(Block):
        sfd.read(child, 128)
    signals.send_signal(p.kernel, child, SIGUSR1)
    assert sfd.poll_events() == POLLIN
    assert _records(sfd.read(child, 256))[0][0] == SIGUSR1
    p.kernel.current = p.task  # type: ignore[attr-defined]
    assert sfd.poll_events() == POLLIN and sfd.poll_queue() is p.tg.signal_wait
    # with no task being served, readiness is about the last task that used the file
    p.kernel.current = None
    assert sfd.owner is child and sfd.poll_events() == 0


# -- memfd -----------------------------------------------------------------------------------
def _memfd(p: FakeProcess, name: bytes, flags: int) -> int:
    return p.call("memfd_create", name, flags)


def test_memfd_create_names_flags_and_stat() -> None:
    p = FakeProcess(None)
    fd = _memfd(p, b"hello", 1)
    file = p.tg.fds.files[fd]
    assert isinstance(file, MemfdFile) and fd in p.tg.fds.cloexec
    assert file.path == "/memfd:hello (deleted)"
    assert p.call("fcntl", fd, F_GETFL) == 0o100002
    st = file.stat()
    assert (st.st_mode, st.st_nlink, st.st_size) == (0o100777, 0, 0)
    assert p.call("write", fd, In(b"data"), 4) == 4
    assert p.run([("pread64", fd, Out(4), 4, 0)])[0] == [4, b"data"]
    assert _memfd(p, b"n" * 249, 0) >= 0
    assert _memfd(p, b"n" * 250, 0) == -EINVAL
    assert p.call("memfd_create", 16, 0) == -EFAULT
    assert _memfd(p, b"x", 0x100) == -EINVAL
    assert _memfd(p, b"x", 21 << 26) == -EINVAL  # a huge page size needs MFD_HUGETLB
    assert _memfd(p, b"x", 0x18) == -EINVAL  # MFD_EXEC with MFD_NOEXEC_SEAL
    assert _memfd(p, b"x", MFD_HUGETLB | (21 << 26)) == -ENOSYS
    assert "memfd_create:hugetlb" in p.kernel.warnings
    noexec = p.tg.fds.files[_memfd(p, b"x", MFD_NOEXEC_SEAL)]
    assert noexec.stat().st_mode == 0o100666
    assert os.fstat(noexec.inode.memfd).st_mode & 0o777 == 0o666  # the host mirrors the mode


def test_memfd_seals_are_the_host_memfds() -> None:
    p = FakeProcess(None)
    fd = _memfd(p, b"s", MFD_ALLOW_SEALING)
    inode = p.tg.fds.files[fd].inode
    assert p.call("fcntl", fd, F_GET_SEALS) == 0
    assert p.call("ftruncate", fd, 8192) == 0
    assert p.call("fcntl", fd, F_ADD_SEALS, 0x40) == -EINVAL
    # a writable shared mapping of the host memfd (a stub's, here the test's own)
    mapping = mmap.mmap(inode.memfd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    assert p.call("fcntl", fd, F_ADD_SEALS, F_SEAL_WRITE) == -EBUSY
    mapping.close()
    assert p.call("fcntl", fd, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK) == 0
    assert fcntl.fcntl(inode.memfd, F_GET_SEALS) == F_SEAL_WRITE | F_SEAL_SHRINK  # on the host
    used = inode.fs.used
    assert p.call("pwrite64", fd, In(b"x" * 100), 100, 8192) == -EPERM
    assert inode.fs.used == used  # refused before anything was charged
    assert p.call("ftruncate", fd, 4096) == -EPERM
    assert p.call("ftruncate", fd, 9000) == 0
    with pytest.raises(OSError):  # the host itself refuses a writable shared mapping now
        mmap.mmap(inode.memfd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    assert p.call("fcntl", fd, F_ADD_SEALS, F_SEAL_SEAL) == 0
    assert p.call("fcntl", fd, F_ADD_SEALS, 0) == -EPERM
    plain = _memfd(p, b"p", 0)
    assert p.call("fcntl", plain, F_GET_SEALS) == F_SEAL_SEAL
    assert p.call("fcntl", plain, F_ADD_SEALS, F_SEAL_GROW) == -EPERM
    efd = p.call("eventfd2", 0, 0)
    assert p.call("fcntl", efd, F_GET_SEALS) == -EINVAL
    assert p.call("fcntl", efd, F_ADD_SEALS, F_SEAL_GROW) == -EINVAL


def test_memfd_grow_seal_and_exec_seal() -> None:
    p = FakeProcess(None)
    fd = _memfd(p, b"g", MFD_ALLOW_SEALING)
    assert p.call("ftruncate", fd, 4096) == 0
    assert p.call("fcntl", fd, F_ADD_SEALS, F_SEAL_GROW) == 0
    assert p.call("pwrite64", fd, In(b"abc"), 3, 4094) == 2  # what fits in the last page
    assert p.call("pwrite64", fd, In(b"abc"), 3, 4096) == -EPERM
    assert p.tg.fds.files[fd].inode.charged == 4096
    x = _memfd(p, b"x", MFD_ALLOW_SEALING)
    assert p.call("fcntl", x, F_ADD_SEALS, F_SEAL_EXEC) == 0
    assert p.call("fcntl", x, F_GET_SEALS) == 0x3E  # on mode 0777 it implies the write seals
    assert p.call("fchmod", x, 0o644) == -EPERM
    y = _memfd(p, b"y", MFD_ALLOW_SEALING)
    assert p.call("fchmod", y, 0o644) == 0
    assert p.call("fcntl", y, F_ADD_SEALS, F_SEAL_EXEC) == 0
    assert p.call("fcntl", y, F_GET_SEALS) == F_SEAL_EXEC  # the host saw mode 0644 too
    assert p.call("fchmod", y, 0o600) == 0 and p.call("fchmod", y, 0o700) == -EPERM
    assert p.call("write", y, In(b"ok"), 2) == 2
