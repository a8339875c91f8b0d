"""poll, ppoll, select and pselect6 through the real handlers on a fake task.

Expected values are Linux's (checked natively with tests/c/poll.c and probes on 6.x):
e.g. revents 0x41 for a pipe read end with data asked 0xffff, an O_PATH fd is POLLNVAL
and select reports it in all three sets, select's timeval is normalised so usec may
exceed a second.  Waiting is checked as the kernel drives it: the handler raises Block
(deadline, WaitQueues, host fds); the test changes the world (or the clock, which is
frozen here so remaining times are exact), then dispatches the same call again.
"""
from __future__ import annotations

import errno
import os
import select
import struct
from selectors import EVENT_READ, EVENT_WRITE

import pytest

from snakevisor.fsimpl.stdio import StdioFile
from snakevisor.kernel.errors import SyscallError
from snakevisor.syscalls import sys_poll
from snakevisor.vfs.file import (POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI,
                                 POLLRDNORM, POLLWRNORM, File)
from tests.unit.conftest import MEM_BASE, DispatchEnv

SIGUSR1, SIGUSR2, SIGKILL = 10, 12, 9
POLLFD = struct.Struct("<iHH")
PAIR = struct.Struct("<qq")


def bit(sig: int) -> int:
    return 1 << (sig - 1)


class Env(DispatchEnv):
    """DispatchEnv with a frozen clock; `peer` writes and closes while the main thread is
    parked."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = 1000.0
        self.tick = 0.0  #: how far the clock moves after each reading (0: frozen)
        self.p.kernel.now = self.now

    def now(self) -> float:
        now = self.clock
        self.clock += self.tick
        return now

    def write(self, fd: int, data: bytes) -> int:
        return self.dispatch("write", fd, self.p.put(data), len(data), task=self.peer)

    def close(self, fd: int) -> None:
        assert self.dispatch("close", fd, task=self.peer) == 0

    # -- poll ---------------------------------------------------------------------------
    def pollfds(self, *entries: tuple[int, int]) -> int:
        return self.p.put(b"".join(POLLFD.pack(fd, ev, 0x55) for fd, ev in entries))

    def revents(self, addr: int, n: int) -> list[int]:
        return [r for _, _, r in POLLFD.iter_unpack(self.p.get(addr, 8 * n))]

    def poll(self, *entries: tuple[int, int], timeout: int = 0) -> tuple[int, list[int]]:
        addr = self.pollfds(*entries)
        return self.dispatch("poll", addr, len(entries), timeout), self.revents(addr, len(entries))

    # -- select -------------------------------------------------------------------------
    def fdset(self, *fds: int, size: int = 128) -> int:
        bits = sum(1 << fd for fd in fds)
        return self.p.put(bits.to_bytes(size, "little"))

    def bits(self, addr: int, size: int = 128) -> list[int]:
        value = int.from_bytes(self.p.get(addr, size), "little")
        return [fd for fd in range(size * 8) if value >> fd & 1]

    def pair(self, a: int, b: int) -> int:
        return self.p.put(PAIR.pack(a, b))

    def get_pair(self, addr: int) -> tuple[int, int]:
        return PAIR.unpack(self.p.get(addr, 16))


@pytest.fixture
def env() -> Env:
    return Env()


# -- poll: readiness --------------------------------------------------------------------
def test_pipe_readiness_bits(env: Env) -> None:
    r, w = env.pipe()
    assert env.poll((r, POLLIN), (w, POLLOUT)) == (1, [0, POLLOUT])
    assert env.poll((w, 0)) == (0, [0])
    assert env.poll((w, 0xFFFF)) == (1, [0x104])
    env.write(w, b"x")
    assert env.poll((r, 0xFFFF)) == (1, [0x41])
    assert env.poll((r, POLLIN), (w, POLLOUT)) == (2, [POLLIN, POLLOUT])


def test_hup_and_err_are_always_reported(env: Env) -> None:
    r, w = env.pipe()
    r2, w2 = env.pipe()
    env.write(w, b"data")
    env.close(w)
    assert env.poll((r, 0)) == (1, [POLLHUP])
    assert env.poll((r, POLLIN)) == (1, [POLLIN | POLLHUP])
    env.close(r2)
    assert env.poll((w2, POLLIN)) == (1, [POLLERR])
    assert env.poll((w2, POLLOUT)) == (1, [POLLOUT | POLLERR])


def test_negative_fd_ignored_unknown_fd_nval(env: Env) -> None:
    r, _ = env.pipe()
    path_only = env.task.fds.install(File(os.O_PATH))
    n, rev = env.poll((-5, POLLIN), (r, POLLIN), (999, 0), (path_only, POLLIN))
    assert (n, rev) == (2, [0, 0, POLLNVAL, POLLNVAL])  # revents 0x55 overwritten with 0


def test_regular_files_always_ready(env: Env) -> None:
    fd = env.task.fds.install(File(os.O_RDWR))
    assert env.poll((fd, 0xFFFF)) == (1, [POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM])


def test_same_file_twice_counts_twice(env: Env) -> None:
    r, w = env.pipe()
    env.write(w, b"x")
    assert env.poll((r, POLLIN), (r, POLLIN)) == (2, [POLLIN, POLLIN])


def test_nfds_limit_and_faults(env: Env) -> None:
    limit = env.p.tg.rlimits[7][0]
    assert env.dispatch("poll", 0, limit + 1, 0) == -errno.EINVAL
    assert env.dispatch("poll", 0, limit, 0) == -errno.EFAULT
    assert env.dispatch("poll", 0, 0, 0) == 0
    r, _ = env.pipe()
    last = MEM_BASE + (16 << 20) - 8  # the entry fits, a second one would not
    env.p.host.write(last, POLLFD.pack(r, POLLIN, 0))
    assert env.dispatch("poll", last, 1, 0) == 0
    assert env.dispatch("poll", last, 2, 0) == -errno.EFAULT


# -- poll: waiting ----------------------------------------------------------------------
def test_infinite_wait_on_the_pipe_queue_then_data(env: Env) -> None:
    r, w = env.pipe()
    pipe = env.task.fds.get(r).pipe
    addr = env.pollfds((r, POLLIN))
    block = env.blocks("poll", addr, 1, -1)
    assert block.deadline is None and list(block.queues) == [pipe.rd_wait] and not block.fds
    block = env.blocks("poll", addr, 1, -1)  # a spurious wake-up: still nothing
    env.write(w, b"x")
    assert env.dispatch("poll", addr, 1, -1) == 1
    assert env.revents(addr, 1) == [POLLIN]
    assert env.task.syscall_state is None


def test_timeout_is_a_deadline_fixed_at_entry(env: Env) -> None:
    r, w = env.pipe()
    addr = env.pollfds((r, POLLIN), (w, 0))
    block = env.blocks("poll", addr, 2, 250)
    assert block.deadline == 1000.25
    pipe = env.task.fds.get(r).pipe
    assert list(block.queues) == [pipe.rd_wait, pipe.wr_wait]
    env.clock = 1000.2
    assert env.blocks("poll", addr, 2, 250).deadline == 1000.25  # not restarted
    env.clock = 1000.25
    assert env.dispatch("poll", addr, 2, 250) == 0
    assert env.revents(addr, 2) == [0, 0]


def test_zero_timeout_and_nfds_zero_sleep(env: Env) -> None:
    r, _ = env.pipe()
    assert env.poll((r, POLLIN), timeout=0) == (0, [0])
    block = env.blocks("poll", 0, 0, 100)
    assert block.deadline == pytest.approx(1000.1) and not block.queues
    env.clock += 0.1
    assert env.dispatch("poll", 0, 0, 100) == 0


def test_waiting_twice_does_not_queue_twice(env: Env) -> None:
    r, _ = env.pipe()
    pipe = env.task.fds.get(r).pipe
    addr = env.pollfds((r, POLLIN), (r, POLLIN))
    block = env.blocks("poll", addr, 2, -1)
    assert list(block.queues) == [pipe.rd_wait]
    pipe.rd_wait.waiters.append(env.task)  # what Kernel._park does
    assert list(env.blocks("poll", addr, 2, -1).queues) == []


def test_pending_signal_interrupts_but_readiness_wins(env: Env) -> None:
    r, w = env.pipe()
    env.task.sigpending.add(SIGUSR1, bytes(128))
    assert env.poll((r, POLLIN), timeout=-1) == (-errno.EINTR, [0])
    assert env.poll((w, POLLOUT), timeout=-1) == (1, [POLLOUT])


def interrupt(env: Env) -> object:
    """What Kernel.interrupt does when a handler ends a parked call: drop the call's
    state, then run its hook (an int it returns replaces EINTR)."""
    hook = env.task.syscall_state[sys_poll.ON_INTERRUPT]
    env.task.syscall_state = None
    return hook(env.task)


def test_on_interrupt_zeroes_revents(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    r, _ = env.pipe()
    addr = env.pollfds((r, POLLIN))
    env.blocks("poll", addr, 1, -1)
    assert interrupt(env) is None
    assert env.revents(addr, 1) == [0]
    env.blocks("poll", addr, 1, -1)

    def refuse(addr: int, data: bytes) -> None:
        raise SyscallError(errno.EFAULT)

    monkeypatch.setattr(env.p.tg.mm, "write", refuse)
    assert interrupt(env) == -errno.EFAULT  # Linux: revents that cannot be stored win


# -- ppoll ------------------------------------------------------------------------------
def test_ppoll_timespec_errors(env: Env) -> None:
    r, _ = env.pipe()
    fds = env.pollfds((r, POLLIN))
    for sec, nsec in ((0, -1), (0, 10**9), (-1, 0)):
        assert env.dispatch("ppoll", fds, 1, env.pair(sec, nsec), 0, 8) == -errno.EINVAL
    assert env.dispatch("ppoll", fds, 1, 8, 8, 3) == -errno.EFAULT  # timespec read first
    # with the mask NULL, sigsetsize is not looked at; then it must be 8
    assert env.dispatch("ppoll", fds, 1, env.pair(0, 0), 0, 3) == 0
    mask = env.p.put(bytes(8))
    assert env.dispatch("ppoll", fds, 1, env.pair(0, 0), mask, 3) == -errno.EINVAL
    assert env.dispatch("ppoll", fds, 1, env.pair(0, 0), mask, 16) == -errno.EINVAL
    assert env.dispatch("ppoll", fds, 1, env.pair(0, 0), 8, 8) == -errno.EFAULT
    assert env.dispatch("ppoll", 8, 1 << 30, env.pair(0, 0), 0, 8) == -errno.EINVAL
    assert env.task.sigmask == 0 and env.task.saved_sigmask is None


def test_ppoll_writes_time_left(env: Env) -> None:
    r, w = env.pipe()
    fds = env.pollfds((r, POLLIN))
    ts = env.pair(5, 0)
    env.blocks("ppoll", fds, 1, ts, 0, 8)
    env.clock += 1.25
    env.write(w, b"x")
    assert env.dispatch("ppoll", fds, 1, ts, 0, 8) == 1
    assert env.get_pair(ts) == (3, 750_000_000)
    r2, _ = env.pipe()
    fds = env.pollfds((r2, POLLIN))
    ts = env.pair(0, 20_000_000)
    env.blocks("ppoll", fds, 1, ts, 0, 8)
    env.clock += 1
    assert env.dispatch("ppoll", fds, 1, ts, 0, 8) == 0
    assert env.get_pair(ts) == (0, 0)


def test_ppoll_time_left_even_on_error(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.tick = 0.5
    ts = env.pair(5, 0)
    limit = env.p.tg.rlimits[7][0]
    assert env.dispatch("ppoll", 0, limit + 1, ts, 0, 8) == -errno.EINVAL
    assert env.get_pair(ts) == (4, 500_000_000)
    # but not after a bad signal mask (that fails before the wait starts)
    ts = env.pair(5, 0)
    assert env.dispatch("ppoll", 0, 0, ts, env.p.put(bytes(8)), 7) == -errno.EINVAL
    assert env.get_pair(ts) == (5, 0)


def test_unwritable_timespec_is_left_alone(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    _, w = env.pipe()
    ts = env.pair(5, 0)
    mm = env.p.tg.mm
    write = mm.write

    def refuse(addr: int, data: bytes) -> None:
        if addr == ts:
            raise SyscallError(errno.EFAULT)
        write(addr, data)

    monkeypatch.setattr(mm, "write", refuse)
    env.tick = 0.5
    assert env.dispatch("ppoll", env.pollfds((w, POLLOUT)), 1, ts, 0, 8) == 1
    assert env.get_pair(ts) == (5, 0)


def test_ppoll_sigmask_swap_and_restore(env: Env) -> None:
    r, w = env.pipe()
    task = env.task
    task.sigmask = bit(SIGUSR1) | bit(SIGUSR2)
    fds = env.pollfds((r, POLLIN))
    temp = env.p.put(struct.pack("<Q", bit(SIGUSR2) | bit(SIGKILL)))
    env.blocks("ppoll", fds, 1, 0, temp, 8)
    assert task.sigmask == bit(SIGUSR2)  # SIGKILL cannot be blocked
    assert task.saved_sigmask == bit(SIGUSR1) | bit(SIGUSR2)
    env.write(w, b"x")
    assert env.dispatch("ppoll", fds, 1, 0, temp, 8) == 1
    assert task.sigmask == bit(SIGUSR1) | bit(SIGUSR2) and task.saved_sigmask is None


def test_ppoll_pending_signal_under_temporary_mask(env: Env) -> None:
    r, w = env.pipe()
    task = env.task
    task.sigmask = bit(SIGUSR1)
    task.sigpending.add(SIGUSR1, bytes(128))
    fds = env.pollfds((r, POLLIN))
    empty = env.p.put(bytes(8))
    assert env.dispatch("ppoll", fds, 1, 0, empty, 8) == -errno.EINTR
    # the handler runs with the temporary mask; its frame restores the saved one
    assert task.sigmask == 0 and task.saved_sigmask == bit(SIGUSR1)
    task.sigmask, task.saved_sigmask = bit(SIGUSR1), None
    env.write(w, b"x")  # ready: the old mask is back and the signal stays pending
    assert env.dispatch("ppoll", fds, 1, 0, empty, 8) == 1
    assert task.sigmask == bit(SIGUSR1) and task.saved_sigmask is None
    # still blocked under a temporary mask that blocks it: a plain wait
    r2, _ = env.pipe()
    env.blocks("ppoll", env.pollfds((r2, POLLIN)), 1, 0, env.p.put(struct.pack("<Q", bit(SIGUSR1))), 8)


# -- select -----------------------------------------------------------------------------
def test_select_bitmaps(env: Env) -> None:
    r, w = env.pipe()  # fds 0 and 1
    rd, wr, ex = env.fdset(r, w), env.fdset(r, w), env.fdset(r, w)
    assert env.dispatch("select", 64, rd, wr, ex, env.pair(0, 0)) == 1
    assert (env.bits(rd), env.bits(wr), env.bits(ex)) == ([], [w], [])
    env.write(w, b"x")
    rd, wr = env.fdset(r, w), env.fdset(r, w)
    assert env.dispatch("select", 64, rd, wr, 0, env.pair(0, 0)) == 2
    assert (env.bits(rd), env.bits(wr)) == ([r], [w])


def test_select_hup_err_and_nval_sets(env: Env) -> None:
    r, w = env.pipe()
    r2, w2 = env.pipe()
    path_only = env.task.fds.install(File(os.O_PATH))
    env.close(w)
    env.close(r2)
    rd, wr, ex = (env.fdset(r, w2, path_only) for _ in range(3))
    assert env.dispatch("select", 64, rd, wr, ex, env.pair(0, 0)) == 6
    assert env.bits(rd) == [r, w2, path_only]  # EOF, broken pipe (POLLERR), POLLNVAL
    assert env.bits(wr) == [w2, path_only]
    assert env.bits(ex) == [path_only]


def test_select_closed_fd_is_ebadf_and_time_is_written(env: Env) -> None:
    r, _ = env.pipe()
    rd = env.fdset(r, 40)
    tv = env.pair(5, 0)
    env.tick = 0.25
    assert env.dispatch("select", 64, rd, 0, 0, tv) == -errno.EBADF
    assert env.bits(rd) == [r, 40]  # sets are not written on error
    assert env.get_pair(tv) == (4, 750_000)
    assert env.dispatch("select", -1, 0, 0, 0, tv) == -errno.EINVAL


def test_select_clamps_to_the_fd_table(env: Env) -> None:
    r, w = env.pipe()
    env.write(w, b"x")
    rd = env.fdset(r, 63, 100, 1500, size=256)
    assert env.dispatch("select", 2000, rd, 0, 0, env.pair(0, 0)) == -errno.EBADF  # 63 < 64
    rd = env.fdset(r, 100, 1500, size=256)
    assert env.dispatch("select", 2000, rd, 0, 0, env.pair(0, 0)) == 1
    assert env.bits(rd, 256) == [r, 100, 1500]  # only the first 8 bytes were written
    env.task.fds.set(200, File(os.O_RDONLY))  # the table grows to 256 slots
    rd = env.fdset(r, 100, 1500, size=256)
    assert env.dispatch("select", 2000, rd, 0, 0, env.pair(0, 0)) == -errno.EBADF


def test_select_zeroes_bits_past_nfds_in_the_last_word(env: Env) -> None:
    r, w = env.pipe()
    env.write(w, b"x")
    rd = env.fdset(r, 63, 64)
    assert env.dispatch("select", r + 1, rd, 0, 0, env.pair(0, 0)) == 1
    assert env.bits(rd) == [r, 64]


def test_select_faults(env: Env) -> None:
    assert env.dispatch("select", 3, 8, 0, 0, env.pair(0, 0)) == -errno.EFAULT
    assert env.dispatch("select", 0, 8, 8, 8, env.pair(0, 0)) == 0  # nothing to read
    assert env.dispatch("select", 1 << 30, 0, 0, 0, env.pair(0, 0)) == 0
    assert env.dispatch("select", 3, 0, 0, 0, 8) == -errno.EFAULT


@pytest.mark.parametrize("sec, usec, expect", [
    (0, 1_500_000, 1.5), (0, -1, None), (-1, 0, None), (1, -1_000_000, 0.0), (2, 999_999, 2.999999),
])
def test_select_timeval_normalisation(env: Env, sec: int, usec: int, expect: float | None) -> None:
    r, _ = env.pipe()
    tv = env.pair(sec, usec)
    if expect is None:
        assert env.dispatch("select", 64, env.fdset(r), 0, 0, tv) == -errno.EINVAL
    elif expect == 0.0:
        assert env.dispatch("select", 64, env.fdset(r), 0, 0, tv) == 0
        assert env.get_pair(tv) == (sec, usec)  # a zero timeout is not written back
    else:
        block = env.blocks("select", 64, env.fdset(r), 0, 0, tv)
        assert block.deadline == pytest.approx(1000 + expect)


def test_select_writes_time_left_and_times_out(env: Env) -> None:
    r, w = env.pipe()
    rd = env.fdset(r)
    tv = env.pair(0, 1_500_000)
    env.blocks("select", 64, rd, 0, 0, tv)
    env.clock += 0.25
    assert interrupt(env) is None  # as a signal would end it
    assert env.get_pair(tv) == (1, 250_000)
    assert env.bits(rd) == [r]  # sets are not written on EINTR
    tv = env.pair(0, 1_500_000)
    env.blocks("select", 64, rd, 0, 0, tv)
    env.clock += 1.5
    assert env.dispatch("select", 64, rd, 0, 0, tv) == 0
    assert env.get_pair(tv) == (0, 0) and env.bits(rd) == []


def test_ppoll_and_pselect6_time_left_on_interrupt(env: Env) -> None:
    r, _ = env.pipe()
    ts = env.pair(2, 0)
    env.blocks("ppoll", env.pollfds((r, POLLIN)), 1, ts, 0, 8)
    env.clock += 0.5
    interrupt(env)
    assert env.get_pair(ts) == (1, 500_000_000)
    env.blocks("pselect6", 64, env.fdset(r), 0, 0, ts, 0)
    env.clock += 0.25
    interrupt(env)
    assert env.get_pair(ts) == (1, 250_000_000)


def test_select_null_timeout_waits_forever(env: Env) -> None:
    r, w = env.pipe()
    rd = env.fdset(r)
    block = env.blocks("select", 64, rd, 0, 0, 0)
    assert block.deadline is None and list(block.queues) == [env.task.fds.get(r).pipe.rd_wait]
    env.write(w, b"x")
    assert env.dispatch("select", 64, rd, 0, 0, 0) == 1


# -- pselect6 ---------------------------------------------------------------------------
def test_pselect6_argpack_and_mask(env: Env) -> None:
    r, w = env.pipe()
    task = env.task
    ts = env.pair(0, 0)
    assert env.dispatch("pselect6", 0, 0, 0, 0, env.pair(0, -1), 8) == -errno.EFAULT  # argpack first
    assert env.dispatch("pselect6", 0, 0, 0, 0, env.pair(0, -1), 0) == -errno.EINVAL
    assert env.dispatch("pselect6", 0, 0, 0, 0, ts, env.pair(0, 3)) == 0  # NULL mask
    mask = env.p.put(struct.pack("<Q", bit(SIGUSR2)))
    assert env.dispatch("pselect6", 0, 0, 0, 0, ts, env.pair(mask, 3)) == -errno.EINVAL
    assert env.dispatch("pselect6", 0, 0, 0, 0, ts, env.pair(8, 8)) == -errno.EFAULT
    task.sigmask = bit(SIGUSR1)
    tv = env.pair(5, 0)
    rd = env.fdset(r)
    env.blocks("pselect6", 64, rd, 0, 0, tv, env.pair(mask, 8))
    assert task.sigmask == bit(SIGUSR2) and task.saved_sigmask == bit(SIGUSR1)
    env.clock += 0.5
    env.write(w, b"x")
    assert env.dispatch("pselect6", 64, rd, 0, 0, tv, env.pair(mask, 8)) == 1
    assert env.get_pair(tv) == (4, 500_000_000)  # the raw call updates its timespec
    assert task.sigmask == bit(SIGUSR1) and task.saved_sigmask is None


def test_pselect6_pending_signal_under_temporary_mask(env: Env) -> None:
    r, _ = env.pipe()
    task = env.task
    task.sigmask = bit(SIGUSR1)
    task.sigpending.add(SIGUSR1, bytes(128))
    empty = env.p.put(bytes(8))
    assert env.dispatch("pselect6", 64, env.fdset(r), 0, 0, env.pair(0, 0), env.pair(empty, 8)) \
        == -errno.EINTR
    assert task.sigmask == 0 and task.saved_sigmask == bit(SIGUSR1)


# -- host fds (the CLI's stdio) ---------------------------------------------------------
class HostBacked(File):
    """A file whose readiness lives in a host fd, with settable current bits."""

    def __init__(self, events: int, offered: int) -> None:
        super().__init__(os.O_RDWR)
        self.events, self.offered = events, offered

    def poll_events(self) -> int:
        return self.events

    def poll_host(self) -> tuple[int, int]:
        return 77, self.offered


@pytest.mark.parametrize("events, asked, offered, want", [
    (0, POLLIN, EVENT_READ | EVENT_WRITE, EVENT_READ),
    (0, POLLIN | POLLOUT, EVENT_READ | EVENT_WRITE, EVENT_READ | EVENT_WRITE),
    (POLLOUT, POLLIN, EVENT_WRITE, EVENT_READ),  # wait for an error on a write-only fd
    (POLLIN, POLLPRI, EVENT_READ, EVENT_WRITE),  # never a level the fd already reports
    (POLLIN | POLLOUT, POLLPRI, EVENT_READ | EVENT_WRITE, None),
])
def test_host_fd_wait_events(env: Env, events: int, asked: int, offered: int, want: int | None) -> None:
    fd = env.task.fds.install(HostBacked(events, offered))
    block = env.blocks("poll", env.pollfds((fd, asked)), 1, -1)
    assert list(block.fds) == ([] if want is None else [(77, want)])


def test_stdio_pipe_readiness(env: Env) -> None:
    rfd, wfd = os.pipe()
    reader, writer = StdioFile(rfd), StdioFile(wfd)
    try:
        assert reader.poll_events() == 0
        assert writer.poll_events() == POLLOUT | POLLWRNORM
        assert reader.poll_host() == (rfd, EVENT_READ)
        assert writer.poll_host() == (wfd, EVENT_WRITE)
        os.write(wfd, b"x")
        assert reader.poll_events() == POLLIN | POLLRDNORM
        fd = env.task.fds.install(reader)
        assert env.poll((fd, POLLIN)) == (1, [POLLIN])
    finally:
        writer.release()
    assert reader.poll_events() == POLLIN | POLLRDNORM | POLLHUP
    os.read(rfd, 1)
    assert reader.poll_events() == POLLHUP
    reader.release()


def test_stdio_pipe_without_reader_is_pollerr(tmp_path) -> None:
    rfd, wfd = os.pipe()
    os.close(rfd)
    writer = StdioFile(wfd)
    try:
        assert writer.poll_events() & POLLERR
    finally:
        writer.release()


def test_stdio_unpollable_files_have_no_host_wait(tmp_path) -> None:
    path = tmp_path / "f"
    path.write_text("x")
    for fd in (os.open(path, os.O_RDWR), os.open("/dev/null", os.O_RDWR)):
        f = StdioFile(fd)
        try:
            assert f.poll_host() is None
            assert f.poll_events() & (POLLIN | POLLOUT) == POLLIN | POLLOUT
        finally:
            f.release()


def test_stdio_poll_events_match_the_host() -> None:
    """Whatever the host kernel reports for a socket's half-close (POLLRDHUP...)."""
    import socket
    a, b = socket.socketpair()
    f = StdioFile(os.dup(a.fileno()))
    try:
        b.shutdown(socket.SHUT_WR)
        native = select.poll()
        native.register(a.fileno(), 0xFFFF)
        assert f.poll_events() == native.poll(0)[0][1]
    finally:
        f.release()
        a.close()
        b.close()
