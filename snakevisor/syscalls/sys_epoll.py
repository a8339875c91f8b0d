"""epoll_create(1), epoll_ctl, epoll_wait, epoll_pwait, epoll_pwait2.

The instance and its semantics (level/edge triggering, one-shot, nesting, what closing a
watched fd does) are snakevisor.vfs.epoll; this module decodes arguments and checks them
in Linux's order, then waits the way poll does: the call parks on the instance's queue
(every watched file's wake-up reaches it) plus the host fds of host-backed items, and
scans again when woken.  What Linux fixes at entry stays in task.syscall_state: the end
time, the swapped signal mask, and the instance itself (closing epfd meanwhile does not
end the wait, as Linux holds the file).

Linux details followed (fs/eventpoll.c on 6.x, checked natively with tests/c/epoll.c):
epoll_ctl copies the event before looking at any fd (EFAULT first, and even for an
unknown op), then EBADF, EPERM for a file without poll, EINVAL; epoll_wait checks EBADF,
then maxevents, then that the buffer lies in user space, then that epfd is an epoll; a
buffer that faults fails only once an event is to be written, and the event stays
pending.  Readiness beats the timeout, which beats a pending signal (unlike poll: a zero
timeout returns 0 with a signal pending); the call is never restarted after a handler.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Callable

from snakevisor.kernel.errors import EBADF, EFAULT, EINTR, EINVAL, EPERM, SyscallError
from snakevisor.kernel.signals import has_deliverable
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32
from snakevisor.syscalls.sys_file import _nofile
from snakevisor.syscalls.sys_poll import Timeout, Watch, pollable, restore_sigmask, swap_sigmask
from snakevisor.vfs.epoll import (EPOLLEXCLUSIVE, EPOLLEXCLUSIVE_OK_BITS, EPOLLWAKEUP,
                                  EpollFile, Item, can_poll)
from snakevisor.vfs.file import File

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

EPOLL_CLOEXEC = 0o2000000
EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
#: struct epoll_event is packed on x86_64: u32 events, u64 data
EPOLL_EVENT = struct.Struct("<IQ")
EP_MAX_EVENTS = 0x7FFFFFFF // EPOLL_EVENT.size
#: the end of user space (TASK_SIZE_MAX): access_ok's limit for the events buffer
USER_END = (1 << 47) - 4096


def _fdget(task: "Task", fd: int) -> File:
    """Linux's fdget: EBADF for a closed fd and for an O_PATH one."""
    file = pollable(task, fd)
    if file is None:
        raise SyscallError(EBADF)
    return file


# -- epoll_create, epoll_create1 ------------------------------------------------------------
def _create(task: "Task", flags: int) -> int:
    if flags & ~EPOLL_CLOEXEC:
        raise SyscallError(EINVAL)
    ep = EpollFile()
    return task.fds.install(ep, bool(flags & EPOLL_CLOEXEC), 0, _nofile(task))


@syscall("epoll_create")
def sys_epoll_create(task: "Task", size: int, *_: int) -> int:
    if s32(size) <= 0:  # the size is otherwise ignored (a hint from before 2.6.8)
        raise SyscallError(EINVAL)
    return _create(task, 0)


@syscall("epoll_create1")
def sys_epoll_create1(task: "Task", flags: int, *_: int) -> int:
    return _create(task, s32(flags))


# -- epoll_ctl --------------------------------------------------------------------------------
@syscall("epoll_ctl")
def sys_epoll_ctl(task: "Task", epfd: int, op: int, fd: int, event: int, *_: int) -> int:
    op, fd = s32(op), s32(fd)
    has_event = op != EPOLL_CTL_DEL
    events = data = 0
    if has_event:
        events, data = EPOLL_EVENT.unpack(task.mm.read(event, EPOLL_EVENT.size))
        events &= ~EPOLLWAKEUP  # dropped without CAP_BLOCK_SUSPEND, which we never have
    ep = _fdget(task, s32(epfd))
    target = _fdget(task, fd)
    if not can_poll(target):
        raise SyscallError(EPERM)
    if target is ep or not isinstance(ep, EpollFile):
        raise SyscallError(EINVAL)
    if has_event and events & EPOLLEXCLUSIVE:
        if op == EPOLL_CTL_MOD:
            raise SyscallError(EINVAL)
        if op == EPOLL_CTL_ADD and (isinstance(target, EpollFile)
                                    or events & ~EPOLLEXCLUSIVE_OK_BITS):
            raise SyscallError(EINVAL)
    if op == EPOLL_CTL_ADD:
        ep.add(fd, target, events, data)
    elif op == EPOLL_CTL_MOD:
        ep.modify(fd, target, events, data)
    elif op == EPOLL_CTL_DEL:
        ep.delete(fd, target)
    else:
        raise SyscallError(EINVAL)
    return 0


# -- epoll_wait, epoll_pwait, epoll_pwait2 ----------------------------------------------------
def _instance(task: "Task", epfd: int, events: int, maxevents: int) -> EpollFile:
    """do_epoll_wait's checks, in 6.x's order."""
    ep = _fdget(task, epfd)
    if not 0 < maxevents <= EP_MAX_EVENTS:
        raise SyscallError(EINVAL)
    if events + maxevents * EPOLL_EVENT.size > USER_END:
        raise SyscallError(EFAULT)
    if not isinstance(ep, EpollFile):
        raise SyscallError(EINVAL)
    return ep


def _deliver(task: "Task", ep: EpollFile, addr: int, picked: list[tuple[Item, int]]) -> int:
    """Write the picked events (at once; event by event if that faults, to know how many
    fit) and let the instance consume those; EFAULT when not even the first fit."""
    try:
        task.mm.write(addr, b"".join(EPOLL_EVENT.pack(mask, item.data) for item, mask in picked))
        count = len(picked)
    except SyscallError:
        count = 0
        for item, mask in picked:
            try:
                task.mm.write(addr + count * EPOLL_EVENT.size, EPOLL_EVENT.pack(mask, item.data))
            except SyscallError:
                break
            count += 1
    ep.consume([item for item, _ in picked[:count]])
    if not count:
        raise SyscallError(EFAULT)
    return count


def _do_wait(task: "Task", epfd: int, events: int, maxevents: int) -> int:
    """ep_poll: events if any are ready, else 0 when the time is up, EINTR for a
    deliverable signal, or Block on the instance's queue and its host-backed files."""
    state = task.syscall_state
    ep = state.get("ep")
    if ep is None:
        ep = state["ep"] = _instance(task, epfd, events, maxevents)
    picked = ep.pick(maxevents)
    if picked:
        return _deliver(task, ep, events, picked)
    timeout: Timeout = state["timeout"]
    if timeout.expired(task):
        return 0
    if has_deliverable(task):
        return -EINTR
    watch = Watch(task)
    for file, interest in ep.host_items():
        watch.check(file, interest)
    if task not in ep.queue.waiters:
        watch.queues.append(ep.queue)
    raise watch.block(timeout.deadline)


def _wait(task: "Task", epfd: int, events: int, maxevents: int,
          timeout: Callable[[], Timeout], sigmask: int = 0, sigsetsize: int = 0) -> int:
    """The three calls: the timeout, then the temporary signal mask, fixed at the first
    dispatch; the old mask returns at the end unless a handler is to run (EINTR)."""
    if task.syscall_state is None:
        task.syscall_state = {"timeout": timeout()}
        try:
            swap_sigmask(task, sigmask, sigsetsize)
        except SyscallError:
            task.syscall_state = None
            raise
    try:
        result = _do_wait(task, s32(epfd), events, s32(maxevents))
    except SyscallError as e:
        result = -e.errno
    restore_sigmask(task, result)
    return result


@syscall("epoll_wait")
def sys_epoll_wait(task: "Task", epfd: int, events: int, maxevents: int, timeout: int,
                   *_: int) -> int:
    return _wait(task, epfd, events, maxevents, lambda: Timeout.ms(task, s32(timeout)))


@syscall("epoll_pwait")
def sys_epoll_pwait(task: "Task", epfd: int, events: int, maxevents: int, timeout: int,
                    sigmask: int, sigsetsize: int) -> int:
    return _wait(task, epfd, events, maxevents, lambda: Timeout.ms(task, s32(timeout)),
                 sigmask, sigsetsize)


@syscall("epoll_pwait2")
def sys_epoll_pwait2(task: "Task", epfd: int, events: int, maxevents: int, timeout: int,
                     sigmask: int, sigsetsize: int) -> int:
    return _wait(task, epfd, events, maxevents, lambda: Timeout.timespec(task, timeout),
                 sigmask, sigsetsize)
