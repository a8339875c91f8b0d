"""Interval timers (alarm, setitimer) and POSIX timers (timer_create and friends).

Timers belong to a process (``tg.timers``) and run on the sentry's event loop
(kernel/timers.py); their expiry becomes a signal through ``kernel.send_signal``.
Lifetimes follow Linux: a fork starts with no timers, execve keeps the interval timers
and deletes the POSIX ones (timers_exec), exit ends them all (timers_exit).

Overruns: a POSIX timer that expires while its previous signal is still pending sends
nothing and counts an overrun; expirations the loop was late for count too.  The count
travels in the next signal sent (si_overrun) and is what timer_getoverrun reports until
then.  Linux counts the same expirations but reports them with the pending signal, at
delivery.
"""
from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EINVAL, EOPNOTSUPP, EPERM, SyscallError
from snakevisor.kernel.sigframe import pack_siginfo
from snakevisor.kernel.task import Task
from snakevisor.kernel.timers import NSEC, CpuTimerClock, Timer, TimerClock, WallClock
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, u32
from snakevisor.syscalls.sys_info import find_task
from snakevisor.syscalls.sys_time import (ALARM_CLOCKS, CLOCK_BOOTTIME, CLOCK_MONOTONIC,
                                          CLOCK_REALTIME, CLOCK_TAI, CLOCKFD, CPUCLOCK_PROF,
                                          CPUCLOCK_VIRT, TIMER_ABSTIME, CpuClock,
                                          clock_resolution, resolve_clock, sample_cpu_clock,
                                          timespec_valid)

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import ThreadGroup

ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF = 0, 1, 2
SIGALRM, SIGVTALRM, SIGPROF = 14, 26, 27
ITIMER_SIGNALS = {ITIMER_REAL: SIGALRM, ITIMER_VIRTUAL: SIGVTALRM, ITIMER_PROF: SIGPROF}
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
SIGRTMAX = 64
SI_KERNEL, SI_TIMER = 0x80, -2
INT_MAX = 0x7FFFFFFF
#: clocks that have a kernel clock but no timers (MONOTONIC_RAW and the coarse clocks)
NO_TIMER_CLOCKS = frozenset({4, 5, 6})
WALL_TIMER_CLOCKS = frozenset({CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI})
USEC = 1000

TIMEVAL_PAIR = struct.Struct("<qqqq")  # struct itimerval / itimerspec: interval, then value
SIGEVENT = struct.Struct("<Qiii44x")  # sigev_value, sigev_signo, sigev_notify, thread id


def _tick_ns() -> int:
    """TICK_NSEC: the CPU itimers' granularity (the coarse clocks tick at it)."""
    return clock_resolution(5)


# --------------------------------------------------------------------------- per-process state

class PosixTimer:
    """A timer_create timer: its Timer, how it notifies, and its overrun counts."""

    def __init__(self, kernel: "Kernel", clock: TimerClock, timerid: int, notify: int,
                 signo: int, value: int, target: "Task | ThreadGroup") -> None:
        self.id = timerid
        self.notify = notify
        self.signo = signo
        self.value = value
        self.target = target  # a Task for SIGEV_THREAD_ID, else the process
        self.timer = Timer(kernel, clock, self.expired, passive=notify == SIGEV_NONE)
        self.overrun = 0  # expirations not yet reported by a signal
        self.overrun_last = 0  # what the last signal reported (timer_getoverrun)
        self.sent = False

    def expired(self, count: int) -> None:
        if self.notify == SIGEV_NONE or not self.target.alive:
            return
        kernel = self.target.kernel
        if self.sent and _still_pending(self.target, self.signo):
            self.overrun += count
            return
        self.overrun_last = min(self.overrun + count - 1, INT_MAX)
        self.overrun = 0
        self.sent = True
        kernel.send_signal(self.target, self.signo, pack_siginfo(
            self.signo, SI_TIMER, timerid=self.id, overrun=self.overrun_last, value=self.value))


def _still_pending(target: "Task | ThreadGroup", signo: int) -> bool:
    """Whether `signo` still waits in the target's pending set (thread or process)."""
    pending = target.sigpending if isinstance(target, Task) else target.shared_pending
    return bool(pending.mask >> (signo - 1) & 1)


class ProcessTimers:
    """A process's interval timers and POSIX timers (``tg.timers``)."""

    def __init__(self) -> None:
        self.itimers: dict[int, Timer] = {}
        self.posix: dict[int, PosixTimer] = {}
        self.next_id = 0

    def alloc_id(self) -> int:
        """The next free id; ids count up and are not reused until they wrap."""
        while True:
            timerid = self.next_id
            self.next_id = (self.next_id + 1) & INT_MAX
            if timerid not in self.posix:
                return timerid


def timers_of(tg: "ThreadGroup") -> ProcessTimers:
    timers = getattr(tg, "timers", None)
    if timers is None:
        timers = tg.timers = ProcessTimers()  # type: ignore[attr-defined]
    return timers


def timers_exec(tg: "ThreadGroup") -> None:
    """execve: POSIX timers are deleted; interval timers keep running."""
    timers = getattr(tg, "timers", None)
    if timers is not None:
        for pt in timers.posix.values():
            pt.timer.disarm()
        timers.posix.clear()


def timers_exit(tg: "ThreadGroup") -> None:
    """exit of the whole process: every timer stops."""
    timers = getattr(tg, "timers", None)
    if timers is not None:
        timers_exec(tg)
        for timer in timers.itimers.values():
            timer.disarm()
        timers.itimers.clear()


def _cpu_clock(tg: "ThreadGroup", clock: CpuClock) -> CpuTimerClock:
    """A sampled clock for a process (paced by its threads and CPUs) or one thread."""
    def cpus() -> int:
        if clock.tg is None:
            return 1
        return min(len(tg.kernel.platform.cpus), sum(1 for t in clock.tg.tasks if t.alive))
    return CpuTimerClock(lambda: sample_cpu_clock(clock), cpus)


# --------------------------------------------------------------------------- interval timers

def _itimer(tg: "ThreadGroup", which: int) -> Timer:
    timers = timers_of(tg)
    timer = timers.itimers.get(which)
    if timer is None:
        clock: TimerClock
        if which == ITIMER_REAL:
            clock = WallClock(CLOCK_MONOTONIC)
        else:
            measure = CPUCLOCK_VIRT if which == ITIMER_VIRTUAL else CPUCLOCK_PROF
            clock = _cpu_clock(tg, CpuClock(measure, None, tg))
        signo = ITIMER_SIGNALS[which]

        def expired(count: int) -> None:
            if not tg.alive:
                timers_exit(tg)
                return
            tg.kernel.send_signal(tg, signo, pack_siginfo(signo, SI_KERNEL))
        timer = timers.itimers[which] = Timer(tg.kernel, clock, expired)
    return timer


def get_itimer(tg: "ThreadGroup", which: int) -> tuple[int, int]:
    """(value, interval) in ns as getitimer reports them: a timer that is due but has not
    fired yet shows 1 µs (ITIMER_REAL) or one tick (the CPU timers)."""
    timer = timers_of(tg).itimers.get(which)
    if timer is None or not timer.armed:
        return 0, timer.interval if timer is not None else 0
    value = timer.remaining()
    if value <= 0:
        value = USEC if which == ITIMER_REAL else _tick_ns()
    return value, timer.interval


def set_itimer(tg: "ThreadGroup", which: int, value: int, interval: int) -> tuple[int, int]:
    """do_setitimer; returns the old (value, interval)."""
    old = get_itimer(tg, which)
    timer = _itimer(tg, which)
    if which == ITIMER_REAL:
        if value:
            timer.arm(timer.clock.now() + value, interval)
        else:
            timer.disarm()
        return old
    # the CPU timers keep their interval while stopped, and start a tick late (Linux)
    if value:
        timer.arm(timer.clock.now() + value + _tick_ns(), interval)
    else:
        timer.disarm()
        timer.interval = interval
    return old


def _read_timevals(task: "Task", addr: int) -> tuple[int, int]:
    """A struct itimerval as (value, interval) ns; EINVAL for a malformed timeval."""
    isec, iusec, vsec, vusec = TIMEVAL_PAIR.unpack(task.mm.read(addr, TIMEVAL_PAIR.size))
    if not all(sec >= 0 and 0 <= usec < 1_000_000 for sec, usec in ((isec, iusec), (vsec, vusec))):
        raise SyscallError(EINVAL)
    return vsec * NSEC + vusec * USEC, isec * NSEC + iusec * USEC


def _put_timevals(task: "Task", addr: int, value: int, interval: int) -> None:
    task.mm.write(addr, TIMEVAL_PAIR.pack(interval // NSEC, interval % NSEC // USEC,
                                          value // NSEC, value % NSEC // USEC))


def _check_which(which: int) -> int:
    which = s32(which)
    if which not in ITIMER_SIGNALS:
        raise SyscallError(EINVAL)
    return which


@syscall("getitimer")
def sys_getitimer(task: "Task", which: int, value: int, *_: int) -> int:
    _put_timevals(task, value, *get_itimer(task.tg, _check_which(which)))
    return 0


@syscall("setitimer", partial="ITIMER_VIRTUAL and ITIMER_PROF sample CPU time (1 ms while "
                             "the process runs)")
def sys_setitimer(task: "Task", which: int, new: int, old: int, *_: int) -> int:
    value, interval = _read_timevals(task, new) if new else (0, 0)
    prev = set_itimer(task.tg, _check_which(which), value, interval)
    if old:
        _put_timevals(task, old, *prev)
    return 0


@syscall("alarm")
def sys_alarm(task: "Task", seconds: int, *_: int) -> int:
    old, _ = set_itimer(task.tg, ITIMER_REAL, u32(seconds) * NSEC, 0)
    sec, ns = divmod(old, NSEC)
    # never report 0 for a pending alarm; round to the nearest second otherwise
    return sec + 1 if (not sec and ns) or ns >= NSEC // 2 else sec


# --------------------------------------------------------------------------- POSIX timers

def _timer_clock(task: "Task", clockid: int) -> TimerClock:
    """The clock a timer_create(clockid) timer runs on, with Linux's errors (the alarm
    clocks need CAP_WAKE_ALARM, which the sentry cannot honour, or an RTC)."""
    if clockid in WALL_TIMER_CLOCKS:
        return WallClock(clockid)
    if clockid in ALARM_CLOCKS:
        try:
            time.clock_getres(clockid)
        except OSError:
            raise SyscallError(EOPNOTSUPP) from None
        raise SyscallError(EPERM)
    clock = resolve_clock(task, clockid, False)
    assert isinstance(clock, CpuClock)
    return _cpu_clock(task.tg, clock)


def _check_timer_clock(clockid: int) -> None:
    """clockid_to_kclock, and whether that clock has timers at all."""
    if clockid >= 0:
        if clockid > 11 or clockid == 10:
            raise SyscallError(EINVAL)
        if clockid in NO_TIMER_CLOCKS:
            raise SyscallError(EOPNOTSUPP)
    elif clockid & 7 == CLOCKFD:
        raise SyscallError(EOPNOTSUPP)  # dynamic (fd) clocks have no timers


def _notify_target(task: "Task", notify: int, signo: int, tid: int) -> "Task | ThreadGroup":
    """good_sigevent: whom the timer signals; EINVAL for a bad notification."""
    target: "Task | ThreadGroup" = task.tg
    if notify == SIGEV_THREAD_ID:
        found = find_task(task.kernel, tid)
        if found is None or found.tg is not task.tg:
            raise SyscallError(EINVAL)
        target = found
    elif notify not in (SIGEV_SIGNAL, SIGEV_THREAD, SIGEV_NONE):
        raise SyscallError(EINVAL)
    if notify != SIGEV_NONE and not 1 <= signo <= SIGRTMAX:
        raise SyscallError(EINVAL)
    return target


@syscall("timer_create", partial="CPU-clock timers are sampled (1 ms while the process runs)")
def sys_timer_create(task: "Task", clockid: int, sevp: int, timerid_ptr: int, *_: int) -> int:
    event = SIGEVENT.unpack(task.mm.read(sevp, SIGEVENT.size)) if sevp else None
    clockid = s32(clockid)
    _check_timer_clock(clockid)
    timers = timers_of(task.tg)
    timerid = timers.alloc_id()  # taken even if a later check fails, as in Linux
    target: "Task | ThreadGroup"
    if event is None:  # SIGALRM to the process, with the timer id as its value
        value, signo, notify, target = timerid, SIGALRM, SIGEV_SIGNAL, task.tg
    else:
        value, signo, notify, tid = event
        target = _notify_target(task, notify, signo, tid)
    task.mm.write(timerid_ptr, struct.pack("<i", timerid))
    clock = _timer_clock(task, clockid)
    timers.posix[timerid] = PosixTimer(task.kernel, clock, timerid, notify, signo, value, target)
    return 0


def _lookup(task: "Task", timerid: int) -> PosixTimer:
    pt = timers_of(task.tg).posix.get(s32(timerid))
    if pt is None:
        raise SyscallError(EINVAL)
    return pt


def _gettime(pt: PosixTimer) -> tuple[int, int]:
    """(value, interval) in ns: a due timer whose signal has not gone out yet shows 1 ns."""
    timer = pt.timer
    if not timer.armed:
        return 0, 0
    value = timer.remaining()
    if value <= 0 and pt.notify != SIGEV_NONE:
        value = 1
    return max(value, 0), timer.interval


def put_itimerspec(task: "Task", addr: int, value: int, interval: int) -> None:
    task.mm.write(addr, TIMEVAL_PAIR.pack(*divmod(interval, NSEC), *divmod(value, NSEC)))


@syscall("timer_settime")
def sys_timer_settime(task: "Task", timerid: int, flags: int, new: int, old: int,
                      *_: int) -> int:
    if not new:
        raise SyscallError(EINVAL)
    isec, insec, vsec, vnsec = TIMEVAL_PAIR.unpack(task.mm.read(new, TIMEVAL_PAIR.size))
    if not (timespec_valid(isec, insec) and timespec_valid(vsec, vnsec)):
        raise SyscallError(EINVAL)
    pt = _lookup(task, timerid)
    timer = pt.timer
    previous = _gettime(pt)
    pt.overrun = pt.overrun_last = 0
    value, interval = vsec * NSEC + vnsec, isec * NSEC + insec
    if value:
        start = 0 if u32(flags) & TIMER_ABSTIME else timer.clock.now()
        timer.arm(start + value, interval)
    else:
        timer.disarm()
    if old:
        put_itimerspec(task, old, *previous)
    return 0


@syscall("timer_gettime")
def sys_timer_gettime(task: "Task", timerid: int, cur: int, *_: int) -> int:
    put_itimerspec(task, cur, *_gettime(_lookup(task, timerid)))
    return 0


@syscall("timer_getoverrun")
def sys_timer_getoverrun(task: "Task", timerid: int, *_: int) -> int:
    return _lookup(task, timerid).overrun_last


@syscall("timer_delete")
def sys_timer_delete(task: "Task", timerid: int, *_: int) -> int:
    pt = _lookup(task, timerid)
    pt.timer.disarm()
    del timers_of(task.tg).posix[pt.id]
    return 0
