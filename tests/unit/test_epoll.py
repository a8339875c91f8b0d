"""epoll through the real handlers on a fake task, with sentry pipes.

Expected values are Linux's (checked natively with tests/c/epoll.c on 6.x): an ET item is
reported again after a write into a non-empty pipe but not after a partial read, MOD
re-arms what is ready, maxevents 1 round-robins the ready list, an item survives the close
of one of its file's fds and goes with the file, errors come in Linux's order.  Waiting is
checked as the kernel drives it: the handler raises Block (deadline, queues, host fds);
the test changes the world (or the frozen clock), then dispatches the same call again.
"""
from __future__ import annotations

import errno
import os
import struct
from selectors import EVENT_READ

import pytest

from snakevisor.kernel.errors import Block, SyscallError, WaitQueue
from snakevisor.kernel.task import Task
from snakevisor.syscalls import sys_epoll
from snakevisor.vfs.epoll import EpollFile, QueueCallback
from snakevisor.vfs.file import POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, File
from tests.unit.conftest import MEM_BASE, MEM_SIZE, DispatchEnv

EPOLLIN, EPOLLOUT, EPOLLRDHUP = 0x1, 0x4, 0x2000
EPOLLEXCLUSIVE, EPOLLONESHOT, EPOLLET = 1 << 28, 1 << 30, 1 << 31
ADD, DEL, MOD = 1, 2, 3
EVENT = struct.Struct("<IQ")
SIGUSR1, SIGUSR2 = 10, 12
assert sys_epoll.EPOLL_EVENT.size == 12  # packed, as on x86_64


def bit(sig: int) -> int:
    return 1 << (sig - 1)


class Env(DispatchEnv):
    """DispatchEnv with a frozen clock and an events buffer; `woken` records the tasks a
    WaitQueue woke."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = 1000.0
        self.p.kernel.now = lambda: self.clock
        self.buf = self.p.alloc(12 * 16)

    def abandon(self) -> None:
        """Forget a parked call (as an interruption does) so another one can be made."""
        self.task.syscall_state = None

    # -- files ------------------------------------------------------------------------------
    def file(self, fd: int) -> File:
        return self.task.fds.get(fd)

    def write(self, fd: int, data: bytes) -> int:
        return self.dispatch("write", fd, self.p.put(data), len(data), task=self.peer)

    def read(self, fd: int, n: int) -> int:
        return self.dispatch("read", fd, self.p.alloc(n), n, task=self.peer)

    def close(self, fd: int) -> None:
        assert self.dispatch("close", fd, task=self.peer) == 0

    def dup(self, fd: int) -> int:
        return self.dispatch("dup", fd)

    # -- epoll ------------------------------------------------------------------------------
    def epoll(self) -> int:
        fd = self.dispatch("epoll_create1", 0)
        assert fd >= 0
        return fd

    def ctl(self, ep: int, op: int, fd: int, events: int = EPOLLIN, data: int = 0) -> int:
        return self.dispatch("epoll_ctl", ep, op, fd, self.p.put(EVENT.pack(events, data)))

    def events(self, n: int, addr: int | None = None) -> list[tuple[int, int]]:
        raw = self.p.get(self.buf if addr is None else addr, 12 * n)
        return list(EVENT.iter_unpack(raw))

    def wait(self, ep: int, maxevents: int = 16, timeout: int = 0) -> list[tuple[int, int]]:
        """epoll_wait that must complete; its events as (events, data)."""
        n = self.dispatch("epoll_wait", ep, self.buf, maxevents, timeout)
        assert n >= 0, errno.errorcode[-n]
        return self.events(n)


@pytest.fixture
def env() -> Env:
    return Env()


# -- creation -----------------------------------------------------------------------------
def test_create_flags_and_size(env: Env) -> None:
    assert env.dispatch("epoll_create", 0) == -errno.EINVAL
    assert env.dispatch("epoll_create", -1) == -errno.EINVAL
    assert env.dispatch("epoll_create1", os.O_NONBLOCK) == -errno.EINVAL
    assert env.dispatch("epoll_create1", 1) == -errno.EINVAL
    fd = env.dispatch("epoll_create", 1)
    cfd = env.dispatch("epoll_create1", os.O_CLOEXEC)
    assert fd not in env.task.fds.cloexec and cfd in env.task.fds.cloexec
    ep = env.file(fd)
    assert isinstance(ep, EpollFile) and ep.flags == os.O_RDWR
    assert ep.path == "anon_inode:[eventpoll]"
    st, st2 = ep.stat(), env.file(cfd).stat()
    assert (st.st_mode, st.st_nlink, st.st_size, st.st_uid) == (0o600, 1, 0, 0)
    assert (st.st_ino, st.st_dev) == (st2.st_ino, st2.st_dev)  # one shared anon inode
    assert ep.lseek(5, os.SEEK_SET) == 0
    with pytest.raises(SyscallError) as e:
        ep.read(env.task, 1)
    assert e.value.errno == errno.EINVAL


def test_create_respects_rlimit_nofile(env: Env) -> None:
    env.p.tg.rlimits[7] = (3, 3)
    for _ in range(3):
        assert env.dispatch("epoll_create1", 0) >= 0
    assert env.dispatch("epoll_create1", 0) == -errno.EMFILE


# -- epoll_ctl errors ---------------------------------------------------------------------
def test_ctl_errors_in_linux_order(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    regular = env.task.fds.install(File(os.O_RDONLY))  # no poll queue: a regular file
    path_only = env.task.fds.install(File(os.O_PATH))
    ev = env.p.put(EVENT.pack(EPOLLIN, 0))
    ctl = lambda epfd, op, fd, event=ev: env.dispatch("epoll_ctl", epfd, op, fd, event)
    assert ctl(ep, ADD, r, 0) == -errno.EFAULT  # the event is read first
    assert ctl(99, 7, r, 0) == -errno.EFAULT  # even for an unknown op
    assert ctl(ep, DEL, r, 0) == -errno.ENOENT  # DEL reads no event
    assert ctl(99, ADD, regular) == -errno.EBADF
    assert ctl(ep, ADD, 99) == -errno.EBADF
    assert ctl(ep, ADD, -1) == -errno.EBADF
    assert ctl(ep, ADD, path_only) == -errno.EBADF
    assert ctl(r, ADD, regular) == -errno.EPERM  # EPERM before "epfd is no epoll"
    assert ctl(ep, 7, regular) == -errno.EPERM
    assert ctl(r, ADD, w) == -errno.EINVAL
    assert ctl(ep, ADD, ep) == -errno.EINVAL
    assert ctl(ep, 0, r) == -errno.EINVAL
    assert ctl(ep, MOD, r) == -errno.ENOENT
    assert ctl(ep, ADD, r) == 0
    assert ctl(ep, ADD, r) == -errno.EEXIST
    assert ctl(ep, MOD, r) == 0
    assert ctl(ep, DEL, r) == 0
    assert ctl(ep, DEL, r) == -errno.ENOENT


def test_exclusive_rules(env: Env) -> None:
    ep, inner = env.epoll(), env.epoll()
    r, w = env.pipe()
    assert env.ctl(ep, ADD, r, EPOLLIN | EPOLLEXCLUSIVE, 1) == 0
    assert env.ctl(ep, MOD, r, EPOLLIN, 1) == -errno.EINVAL  # an exclusive item is fixed
    assert env.ctl(ep, MOD, r, EPOLLIN | EPOLLEXCLUSIVE) == -errno.EINVAL
    assert env.ctl(ep, MOD, w, EPOLLIN | EPOLLEXCLUSIVE) == -errno.EINVAL  # before ENOENT
    for extra in (EPOLLONESHOT, EPOLLRDHUP, 0x2, POLLRDNORM):
        assert env.ctl(ep, ADD, w, EPOLLOUT | EPOLLEXCLUSIVE | extra) == -errno.EINVAL
    assert env.ctl(ep, ADD, inner, EPOLLIN | EPOLLEXCLUSIVE) == -errno.EINVAL
    assert env.ctl(ep, ADD, w, EPOLLOUT | EPOLLET | POLLERR | POLLHUP | EPOLLEXCLUSIVE, 2) == 0
    env.write(w, b"x")
    assert env.wait(ep) == [(EPOLLOUT, 2), (EPOLLIN, 1)]  # accepted, and report like any
    assert env.ctl(ep, DEL, r, EPOLLEXCLUSIVE) == 0


def test_epollwakeup_is_dropped(env: Env) -> None:
    ep = env.epoll()
    r, _ = env.pipe()
    assert env.ctl(ep, ADD, r, EPOLLIN | (1 << 29)) == 0
    assert env.file(ep).items[(r, env.file(r))].events == EPOLLIN | POLLERR | POLLHUP


# -- triggering ---------------------------------------------------------------------------
def test_level_triggered_reports_while_ready(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    assert env.ctl(ep, ADD, r, EPOLLIN, 7) == 0
    assert env.wait(ep) == []
    env.write(w, b"ab")
    for _ in range(3):
        assert env.wait(ep) == [(EPOLLIN, 7)]
    env.read(r, 1)
    assert env.wait(ep) == [(EPOLLIN, 7)]
    env.read(r, 1)
    assert env.wait(ep) == []
    assert env.file(ep).ready == {}  # the not-ready item left the ready list


def test_edge_triggered_reports_once_per_wake_up(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    assert env.ctl(ep, ADD, r, EPOLLIN | EPOLLET, 2) == 0
    assert env.wait(ep) == []
    env.write(w, b"ab")
    assert env.wait(ep) == [(EPOLLIN, 2)]
    assert env.wait(ep) == []
    env.write(w, b"c")  # a write into a non-empty pipe still wakes its readers
    assert env.wait(ep) == [(EPOLLIN, 2)]
    env.read(r, 1)  # a partial read does not
    assert env.wait(ep) == []
    assert env.ctl(ep, MOD, r, EPOLLIN | EPOLLET, 3) == 0  # MOD re-arms what is ready
    assert env.wait(ep) == [(EPOLLIN, 3)]
    assert env.wait(ep) == []
    assert env.ctl(ep, MOD, r, EPOLLIN, 4) == 0
    assert env.wait(ep) == [(EPOLLIN, 4)]
    assert env.wait(ep) == [(EPOLLIN, 4)]


def test_edge_triggered_write_end_rearms_when_a_full_pipe_drains(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    env.ctl(ep, ADD, w, EPOLLOUT | EPOLLET, 5)
    assert env.wait(ep) == [(EPOLLOUT, 5)]
    env.write(w, b"x")
    assert env.wait(ep) == []
    env.write(w, bytes(14 * 4096))  # 15 of 16 slots
    env.read(r, 1)  # not full before: no wake-up
    assert env.wait(ep) == []
    env.write(w, bytes(2 * 4096))  # full now
    assert env.wait(ep) == []
    env.read(r, 4096)
    assert env.wait(ep) == [(EPOLLOUT, 5)]


def test_oneshot_disables_until_mod(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    env.ctl(ep, ADD, r, EPOLLIN | EPOLLONESHOT, 1)
    env.write(w, b"a")
    assert env.wait(ep) == [(EPOLLIN, 1)]
    assert env.wait(ep) == []
    env.write(w, b"b")
    env.close(w)
    assert env.wait(ep) == []  # not even HUP
    assert env.ctl(ep, ADD, r) == -errno.EEXIST  # still registered
    assert env.ctl(ep, MOD, r, EPOLLIN | EPOLLONESHOT, 2) == 0
    assert env.wait(ep) == [(EPOLLIN | POLLHUP, 2)]
    assert env.wait(ep) == []


def test_err_and_hup_are_always_reported(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    env.ctl(ep, ADD, r, 0, 1)
    env.write(w, b"a")
    assert env.wait(ep) == []
    env.close(w)
    assert env.wait(ep) == [(POLLHUP, 1)]
    env.ctl(ep, MOD, r, EPOLLIN | EPOLLRDHUP, 2)
    assert env.wait(ep) == [(EPOLLIN | POLLHUP, 2)]  # pipes never say RDHUP
    r2, w2 = env.pipe()
    env.ctl(ep, DEL, r)
    env.ctl(ep, ADD, w2, EPOLLIN, 3)
    assert env.wait(ep) == []
    env.close(r2)
    assert env.wait(ep) == [(POLLERR, 3)]
    env.ctl(ep, MOD, w2, EPOLLOUT, 4)
    assert env.wait(ep) == [(EPOLLOUT | POLLERR, 4)]


def test_interest_mask_filters(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    env.write(w, b"e")
    env.ctl(ep, ADD, r, EPOLLOUT, 6)
    assert env.wait(ep) == []
    env.ctl(ep, MOD, r, 0xFFFF, 7)
    assert env.wait(ep) == [(EPOLLIN | POLLRDNORM, 7)]


def test_ready_list_round_robin_and_order(env: Env) -> None:
    ep = env.epoll()
    (r1, w1), (r2, w2) = env.pipe(), env.pipe()
    env.write(w1, b"a")
    env.write(w2, b"a")
    env.ctl(ep, ADD, r1, EPOLLIN, 1)
    env.ctl(ep, ADD, r2, EPOLLIN, 2)
    assert [env.wait(ep, 1) for _ in range(3)] == [[(1, 1)], [(1, 2)], [(1, 1)]]
    assert env.wait(ep) == [(1, 2), (1, 1)]


# -- closing ------------------------------------------------------------------------------
def test_item_follows_the_file_not_the_fd(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    pipe = env.file(w).pipe
    env.ctl(ep, ADD, w, EPOLLOUT, 7)
    d = env.dup(w)
    env.close(w)
    assert env.wait(ep) == [(EPOLLOUT, 7)]  # a dup keeps the file, so the item
    assert env.ctl(ep, DEL, w) == -errno.EBADF
    assert env.ctl(ep, ADD, d, EPOLLOUT, 8) == 0  # another key: (d, file)
    assert env.wait(ep) == [(EPOLLOUT, 7), (EPOLLOUT, 8)]
    env.ctl(ep, DEL, d)
    assert env.dispatch("dup2", d, w) == w
    assert env.ctl(ep, ADD, w, EPOLLOUT, 9) == -errno.EEXIST  # same fd, same file
    env.close(w)
    env.close(d)
    assert env.wait(ep) == []  # the file was released: its item is gone
    assert env.file(ep).items == {}
    assert not any(isinstance(x, QueueCallback) for x in pipe.wr_wait.waiters)
    r2, _ = env.pipe()  # a new file at the old number is another item
    assert r2 == w and env.ctl(ep, ADD, r2, EPOLLIN, 10) == 0


def test_closing_the_epoll_fd_unsubscribes(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    pipe = env.file(r).pipe
    env.ctl(ep, ADD, r)
    env.ctl(ep, ADD, w, EPOLLOUT)
    assert sum(isinstance(x, QueueCallback) for x in pipe.rd_wait.waiters + pipe.wr_wait.waiters) == 2
    env.close(ep)
    assert not pipe.rd_wait.waiters and not pipe.wr_wait.waiters
    env.write(w, b"x")  # nothing of the epoll runs any more


def test_del_unsubscribes_and_subscription_survives_notify(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    pipe = env.file(r).pipe
    env.ctl(ep, ADD, r, EPOLLIN | EPOLLET)
    for _ in range(3):
        env.write(w, b"x")
        assert len(pipe.rd_wait.waiters) == 1  # re-subscribed once, never twice
        assert len(env.wait(ep)) == 1
    env.ctl(ep, DEL, r)
    assert pipe.rd_wait.waiters == []


# -- nesting ------------------------------------------------------------------------------
def test_nested_epoll_readiness(env: Env) -> None:
    outer, inner = env.epoll(), env.epoll()
    r, w = env.pipe()
    assert env.ctl(outer, ADD, inner, EPOLLIN | EPOLLOUT, 1) == 0
    assert env.wait(outer) == []
    env.ctl(inner, ADD, r, EPOLLIN, 2)
    env.write(w, b"a")
    assert env.wait(outer) == [(EPOLLIN, 1)]
    assert env.file(inner).poll_events() == POLLIN | POLLRDNORM
    assert env.wait(inner) == [(EPOLLIN, 2)]
    env.read(r, 1)
    assert env.wait(outer) == []
    env.ctl(inner, MOD, r, EPOLLIN | EPOLLET, 3)
    env.write(w, b"b")
    assert env.wait(outer) == [(EPOLLIN, 1)]  # the inner ET event is pending
    assert env.wait(inner) == [(EPOLLIN, 3)]
    assert env.wait(outer) == []  # consumed inside
    assert env.ctl(inner, ADD, outer) == -errno.ELOOP
    env.ctl(outer, MOD, inner, EPOLLIN | EPOLLET, 5)
    env.write(w, b"c")
    assert env.wait(outer) == [(EPOLLIN, 5)]
    assert env.wait(outer) == []


def test_nesting_depth_and_cycles(env: Env) -> None:
    e = [env.epoll() for _ in range(7)]
    for i in range(4):
        assert env.ctl(e[i], ADD, e[i + 1], EPOLLIN, i) == 0
    assert env.ctl(e[4], ADD, e[5]) == -errno.ELOOP  # a fifth edge
    assert env.ctl(e[5], ADD, e[6], EPOLLIN, 6) == 0
    assert env.ctl(e[6], ADD, e[0]) == -errno.ELOOP  # 4 below + 1 + 1 above
    assert env.ctl(e[0], ADD, e[3], EPOLLIN, 8) == 0  # a shortcut is no deeper
    assert env.ctl(e[3], ADD, e[0]) == -errno.ELOOP  # a cycle
    assert env.ctl(e[2], ADD, e[2]) == -errno.EINVAL
    r, w = env.pipe()
    assert env.ctl(e[4], ADD, r, EPOLLIN, 11) == 0  # files may sit at any depth
    env.write(w, b"x")
    # the newest watcher of e3 (e0's item 8) hears first, as add_wait_queue is LIFO
    assert env.wait(e[0]) == [(EPOLLIN, 8), (EPOLLIN, 0)]
    env.close(e[3])  # a released instance no longer counts for depth
    assert env.ctl(e[4], ADD, e[6]) == 0


def test_poll_on_an_epoll_fd(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    env.ctl(ep, ADD, r)
    fds = env.p.put(struct.pack("<iHH", ep, POLLIN | POLLOUT, 0))
    block = env.blocks("poll", fds, 1, -1)
    assert env.file(ep).queue in block.queues
    env.write(w, b"x")
    assert env.dispatch("poll", fds, 1, -1) == 1
    assert struct.unpack("<iHH", env.p.get(fds, 8))[2] == POLLIN


# -- epoll_wait arguments -----------------------------------------------------------------
def test_wait_argument_errors_in_linux_order(env: Env) -> None:
    ep = env.epoll()
    r, _ = env.pipe()
    buf = env.buf
    w = lambda epfd, addr, n: env.dispatch("epoll_wait", epfd, addr, n, 0)
    assert w(99, buf, 0) == -errno.EBADF  # EBADF first
    assert w(ep, buf, 0) == -errno.EINVAL
    assert w(ep, buf, -1) == -errno.EINVAL
    assert w(ep, buf, 0x7FFFFFFF // 12 + 1) == -errno.EINVAL
    assert w(ep, buf, 0x7FFFFFFF // 12) == 0  # in user space: nothing checked further
    assert w(r, buf, 0) == -errno.EINVAL
    assert w(r, -4096, 1) == -errno.EFAULT  # the buffer before "not an epoll"
    assert w(ep, -4096, 1) == -errno.EFAULT
    top = (1 << 47) - 4096
    assert w(ep, top - 24, 2) == 0
    assert w(ep, top - 23, 2) == -errno.EFAULT
    assert w(ep, 0, 1) == 0  # nothing to write, nothing faults


def test_faulting_buffer_keeps_the_events(env: Env) -> None:
    ep = env.epoll()
    (_, w), (_, w2) = env.pipe(), env.pipe()
    env.ctl(ep, ADD, w, EPOLLOUT | EPOLLONESHOT, 1)
    assert env.dispatch("epoll_wait", ep, 0, 1, 0) == -errno.EFAULT
    assert env.wait(ep) == [(EPOLLOUT, 1)]  # not consumed by the failed call
    env.ctl(ep, MOD, w, EPOLLOUT, 1)
    env.ctl(ep, ADD, w2, EPOLLOUT | EPOLLONESHOT, 2)
    last = MEM_BASE + MEM_SIZE - 12  # room for one event only
    assert env.dispatch("epoll_wait", ep, last, 8, 0) == 1
    assert env.events(1, last) == [(EPOLLOUT, 1)]
    assert env.wait(ep) == [(EPOLLOUT, 2), (EPOLLOUT, 1)]  # 2 was kept, in front


# -- waiting ------------------------------------------------------------------------------
def test_wait_blocks_on_the_instance_queue_with_a_fixed_deadline(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    env.ctl(ep, ADD, r, EPOLLIN, 9)
    queue = env.file(ep).queue
    block = env.blocks("epoll_wait", ep, env.buf, 4, 250)
    assert block.deadline == 1000.25 and list(block.queues) == [queue] and not block.fds
    queue.waiters.append(env.task)  # what the kernel's park does
    env.clock = 1000.2
    block = env.blocks("epoll_wait", ep, env.buf, 4, 250)  # a spurious wake-up
    assert block.deadline == 1000.25 and not block.queues  # already queued
    env.clock = 1000.25
    assert env.dispatch("epoll_wait", ep, env.buf, 4, 250) == 0
    assert env.task.syscall_state is None


def test_wait_forever_woken_by_a_write(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    env.ctl(ep, ADD, r, EPOLLIN | EPOLLET, 9)
    block = env.blocks("epoll_wait", ep, env.buf, 4, -1)
    assert block.deadline is None
    env.file(ep).queue.waiters.append(env.task)
    env.write(w, b"x")
    assert env.woken == [env.task]  # the pipe's wake-up reached the epoll_wait caller
    assert env.dispatch("epoll_wait", ep, env.buf, 4, -1) == 1
    assert env.events(1) == [(EPOLLIN, 9)]


def test_wait_goes_on_when_epfd_is_closed(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    env.ctl(ep, ADD, r, EPOLLIN, 9)
    env.blocks("epoll_wait", ep, env.buf, 4, 100)
    env.dispatch("dup2", r, ep, task=env.peer)  # epfd now names a pipe
    env.blocks("epoll_wait", ep, env.buf, 4, 100)  # neither EBADF nor EINVAL
    env.clock += 1
    assert env.dispatch("epoll_wait", ep, env.buf, 4, 100) == 0


def test_zero_timeout_beats_a_pending_signal(env: Env) -> None:
    ep = env.epoll()
    task = env.task
    task.sigpending.add(SIGUSR1, bytes(128))
    assert env.dispatch("epoll_wait", ep, env.buf, 4, 0) == 0
    assert env.dispatch("epoll_wait", ep, env.buf, 4, 10) == -errno.EINTR
    r, w = env.pipe()
    env.ctl(ep, ADD, w, EPOLLOUT, 1)
    assert env.dispatch("epoll_wait", ep, env.buf, 4, 10) == 1  # readiness beats both


def test_epoll_pwait_sigmask(env: Env) -> None:
    ep = env.epoll()
    r, w = env.pipe()
    env.ctl(ep, ADD, r)
    task = env.task
    task.sigmask = bit(SIGUSR1)
    task.sigpending.add(SIGUSR1, bytes(128))
    only2 = env.p.put(struct.pack("<Q", bit(SIGUSR2)))
    assert env.dispatch("epoll_pwait", ep, env.buf, 4, -1, only2, 3) == -errno.EINVAL
    assert env.dispatch("epoll_pwait", ep, env.buf, 4, -1, 8, 8) == -errno.EFAULT
    assert env.dispatch("epoll_pwait", 99, env.buf, 4, -1, 8, 8) == -errno.EFAULT  # mask first
    assert env.dispatch("epoll_pwait", ep, env.buf, 4, 0, 0, 3) == 0  # no mask: size unchecked
    assert env.dispatch("epoll_pwait", ep, env.buf, 4, 0, only2, 8) == 0
    assert task.sigmask == bit(SIGUSR1) and task.saved_sigmask is None  # restored
    assert env.dispatch("epoll_pwait", ep, env.buf, 4, -1, only2, 8) == -errno.EINTR
    # the handler runs under the temporary mask; its frame restores the saved one
    assert task.sigmask == bit(SIGUSR2) and task.saved_sigmask == bit(SIGUSR1)
    task.sigmask, task.saved_sigmask = bit(SIGUSR1), None
    assert env.dispatch("epoll_pwait", ep, env.buf, 4, -1, 8, 8) == -errno.EFAULT
    assert task.sigmask == bit(SIGUSR1)
    env.blocks("epoll_pwait", ep, env.buf, 4, -1, env.p.put(struct.pack("<Q", bit(SIGUSR1))), 8)
    env.write(w, b"x")
    assert env.dispatch("epoll_pwait", ep, env.buf, 4, -1, 0, 0) == 1


def test_epoll_pwait2_timespec(env: Env) -> None:
    ep = env.epoll()
    ts = lambda sec, nsec: env.p.put(struct.pack("<qq", sec, nsec))
    assert env.dispatch("epoll_pwait2", ep, env.buf, 4, ts(0, 10**9), 0, 8) == -errno.EINVAL
    assert env.dispatch("epoll_pwait2", ep, env.buf, 4, ts(-1, 0), 0, 8) == -errno.EINVAL
    assert env.dispatch("epoll_pwait2", 99, env.buf, 0, 8, 0, 8) == -errno.EFAULT  # timespec first
    assert env.dispatch("epoll_pwait2", 99, env.buf, 0, ts(0, 0), 8, 3) == -errno.EINVAL
    assert env.dispatch("epoll_pwait2", ep, env.buf, 4, ts(0, 0), 0, 8) == 0
    addr = ts(1, 500_000_000)
    block = env.blocks("epoll_pwait2", ep, env.buf, 4, addr, 0, 8)
    assert block.deadline == 1001.5
    env.clock = 1001.5
    assert env.dispatch("epoll_pwait2", ep, env.buf, 4, addr, 0, 8) == 0
    assert env.p.get(addr, 16) == struct.pack("<qq", 1, 500_000_000)  # not written back
    assert env.blocks("epoll_pwait2", ep, env.buf, 4, 0, 0, 8).deadline is None


# -- files whose readiness lives in the host ----------------------------------------------
class HostBacked(File):
    """A file like the CLI's stdio: no sentry queue, readiness read from a host fd."""

    def __init__(self) -> None:
        super().__init__(os.O_RDONLY)
        self.events = 0

    def poll_events(self) -> int:
        return self.events

    def poll_host(self) -> tuple[int, int]:
        return 77, EVENT_READ


def test_host_backed_items(env: Env) -> None:
    ep, outer = env.epoll(), env.epoll()
    host = HostBacked()
    fd = env.task.fds.install(host)
    assert env.ctl(ep, ADD, fd, EPOLLIN | EPOLLET, 1) == 0
    block = env.blocks("epoll_wait", ep, env.buf, 4, -1)
    assert list(block.fds) == [(77, EVENT_READ)]
    host.events = POLLIN
    assert env.wait(ep) == [(EPOLLIN, 1)]  # the change stands in for a wake-up
    assert env.wait(ep) == []  # edge-triggered: once per change
    # never a level that holds now (a selector would wake us again at once)
    assert (77, EVENT_READ) not in env.blocks("epoll_wait", ep, env.buf, 4, -1).fds
    env.abandon()
    host.events = POLLIN | POLLHUP
    assert env.wait(ep) == [(EPOLLIN | POLLHUP, 1)]
    host.events = POLLHUP  # less readiness (data read at EOF) wakes nobody
    assert env.wait(ep) == []
    host.events = 0
    assert env.wait(ep) == []
    host.events = POLLIN
    env.ctl(ep, MOD, fd, EPOLLIN, 2)
    assert env.wait(ep) == [(EPOLLIN, 2)]
    assert env.wait(ep) == [(EPOLLIN, 2)]
    # inside another instance: the outer wait watches the host fd too, and sees the change
    host.events = 0
    env.wait(ep)
    env.ctl(outer, ADD, ep, EPOLLIN, 3)
    block = env.blocks("epoll_wait", outer, env.buf, 4, -1)
    assert list(block.fds) == [(77, EVENT_READ)]
    env.abandon()
    assert env.file(ep).poll_host() == (77, EVENT_READ)
    host.events = POLLIN
    assert env.wait(outer) == [(EPOLLIN, 3)]


def test_files_without_poll_are_eperm(env: Env) -> None:
    ep = env.epoll()
    fd = env.task.fds.install(File(os.O_RDWR))
    assert env.ctl(ep, ADD, fd) == -errno.EPERM
    assert env.ctl(ep, DEL, fd) == -errno.EPERM


def test_queue_callback_is_a_waiter() -> None:
    calls = []
    queue = WaitQueue()
    queue.waiters.append(QueueCallback(lambda: calls.append(1)))
    queue.notify()
    assert calls == [1] and queue.waiters == []


def test_exclusive_items_wake_at_least_one_waiter_and_every_plain_one(env: Env) -> None:
    """Several instances on one pipe, a waiter parked on each: one write reaches at least
    one exclusive waiter and every non-exclusive one (Linux's guarantees; we wake all).
    Exclusive hooks sit behind the plain ones on the file's queue, as add_wait_queue_exclusive
    puts them."""
    r, w = env.pipe()
    eps = [env.epoll() for _ in range(3)]
    env.ctl(eps[0], ADD, r, EPOLLIN | EPOLLEXCLUSIVE, 0)
    env.ctl(eps[1], ADD, r, EPOLLIN | EPOLLEXCLUSIVE, 1)
    env.ctl(eps[2], ADD, r, EPOLLIN, 2)
    hooks = env.file(r).poll_queue().waiters
    assert hooks.index(env.file(eps[2]).items[(r, env.file(r))].hook) == 0
    waiters = [Task(env.p.kernel, 10 + i, env.p.tg, None) for i in range(3)]  # type: ignore[arg-type]
    for ep, waiter in zip(eps, waiters):
        with pytest.raises(Block):
            env.dispatch("epoll_wait", ep, env.buf, 4, -1, task=waiter)
        env.file(ep).queue.waiters.append(waiter)
    env.write(w, b"x")
    assert waiters[2] in env.woken
    assert waiters[0] in env.woken or waiters[1] in env.woken
    for i, (ep, waiter) in enumerate(zip(eps, waiters)):
        if waiter in env.woken:
            assert env.dispatch("epoll_wait", ep, env.buf, 4, 0, task=waiter) == 1
            assert env.events(1) == [(EPOLLIN, i)]
