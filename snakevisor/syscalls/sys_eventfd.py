"""eventfd, eventfd2, timerfd_create/settime/gettime, signalfd, signalfd4.

The files themselves are snakevisor.vfs.eventfd / timerfd / signalfd; this module checks
arguments in Linux's order and installs or finds the files.

Linux details followed (checked natively): timerfd_create accepts only REALTIME,
MONOTONIC, BOOTTIME and the two alarm clocks, and the alarm clocks need CAP_WAKE_ALARM
in the initial user namespace — which the sandbox's root (root of its own user
namespace) never has, so they are EPERM, as for root in a user namespace on Linux.
timerfd_settime copies the new value first (EFAULT), then checks flags and the values
(EINVAL), then the fd (EBADF, or EINVAL when it is not a timerfd); the old value is
written after the timer was set.  signalfd4 checks sizemask, then copies the mask, then
the flags; an existing signalfd (ufd != -1) gets the new mask.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EBADF, EINVAL, EPERM, SyscallError
from snakevisor.kernel.timers import NSEC
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, u32
from snakevisor.syscalls.sys_file import _nofile
from snakevisor.syscalls.sys_time import (ALARM_CLOCKS, CLOCK_BOOTTIME, CLOCK_MONOTONIC,
                                          CLOCK_REALTIME, timespec_valid)
from snakevisor.syscalls.sys_timer import TIMEVAL_PAIR, put_itimerspec
from snakevisor.vfs.eventfd import EventFd
from snakevisor.vfs.file import File
from snakevisor.vfs.signalfd import SignalFd
from snakevisor.vfs.timerfd import TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET, TimerFd

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

O_NONBLOCK, O_CLOEXEC = 0o4000, 0o2000000
EFD_SEMAPHORE = 1
TIMERFD_CLOCKS = frozenset({CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME}) | ALARM_CLOCKS
SIGSET_SIZE = 8


def _install(task: "Task", file: File, flags: int) -> int:
    return task.fds.install(file, bool(flags & O_CLOEXEC), 0, _nofile(task))


def _fdget(task: "Task", fd: int) -> File:
    """Linux's fdget: EBADF for a closed fd and for an O_PATH one."""
    file = task.fds.files.get(fd)
    if file is None or file.is_path_only:
        raise SyscallError(EBADF)
    return file


# -- eventfd ---------------------------------------------------------------------------------
@syscall("eventfd2")
def sys_eventfd2(task: "Task", initval: int, flags: int, *_: int) -> int:
    flags = s32(flags)
    if flags & ~(EFD_SEMAPHORE | O_NONBLOCK | O_CLOEXEC):
        raise SyscallError(EINVAL)
    file = EventFd(u32(initval), bool(flags & EFD_SEMAPHORE), bool(flags & O_NONBLOCK))
    return _install(task, file, flags)


@syscall("eventfd")
def sys_eventfd(task: "Task", initval: int, *_: int) -> int:
    return sys_eventfd2(task, initval, 0)


# -- timerfd ---------------------------------------------------------------------------------
@syscall("timerfd_create", partial="alarm clocks are EPERM (no CAP_WAKE_ALARM); "
                                   "TFD_TIMER_CANCEL_ON_SET never cancels")
def sys_timerfd_create(task: "Task", clockid: int, flags: int, *_: int) -> int:
    clockid, flags = s32(clockid), s32(flags)
    if flags & ~(O_NONBLOCK | O_CLOEXEC) or clockid not in TIMERFD_CLOCKS:
        raise SyscallError(EINVAL)
    if clockid in ALARM_CLOCKS:
        raise SyscallError(EPERM)  # CAP_WAKE_ALARM, checked in the initial user namespace
    return _install(task, TimerFd(task.kernel, clockid, bool(flags & O_NONBLOCK)), flags)


def _timerfd(task: "Task", fd: int) -> TimerFd:
    file = _fdget(task, s32(fd))
    if not isinstance(file, TimerFd):
        raise SyscallError(EINVAL)
    return file


@syscall("timerfd_settime")
def sys_timerfd_settime(task: "Task", fd: int, flags: int, new: int, old: int, *_: int) -> int:
    isec, insec, vsec, vnsec = TIMEVAL_PAIR.unpack(task.mm.read(new, TIMEVAL_PAIR.size))
    flags = s32(flags)
    if flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET):
        raise SyscallError(EINVAL)
    if not (timespec_valid(isec, insec) and timespec_valid(vsec, vnsec)):
        raise SyscallError(EINVAL)
    previous = _timerfd(task, fd).settime(flags, vsec * NSEC + vnsec, isec * NSEC + insec)
    if old:
        put_itimerspec(task, old, *previous)
    return 0


@syscall("timerfd_gettime")
def sys_timerfd_gettime(task: "Task", fd: int, cur: int, *_: int) -> int:
    put_itimerspec(task, cur, *_timerfd(task, fd).gettime())
    return 0


# -- signalfd --------------------------------------------------------------------------------
@syscall("signalfd4")
def sys_signalfd4(task: "Task", ufd: int, mask_addr: int, sizemask: int, flags: int,
                  *_: int) -> int:
    if sizemask != SIGSET_SIZE:
        raise SyscallError(EINVAL)
    mask = task.mm.read_u64(mask_addr)
    flags = s32(flags)
    if flags & ~(O_NONBLOCK | O_CLOEXEC):
        raise SyscallError(EINVAL)
    ufd = s32(ufd)
    if ufd == -1:
        return _install(task, SignalFd(task, mask, bool(flags & O_NONBLOCK)), flags)
    file = _fdget(task, ufd)
    if not isinstance(file, SignalFd):
        raise SyscallError(EINVAL)
    file.set_mask(mask)
    file.owner = task
    task.tg.signal_wait.notify()  # readers and pollers look again with the new mask
    return ufd


@syscall("signalfd")
def sys_signalfd(task: "Task", ufd: int, mask_addr: int, sizemask: int, *_: int) -> int:
    return sys_signalfd4(task, ufd, mask_addr, sizemask, 0)
