"""Clocks, sleeps and CPU-time accounting.

Wall and monotonic clocks are the host's own: the application also reads them through
the vDSO, and a system call must agree with the vDSO it bypasses.  CPU clocks measure
the application's host threads (its code runs natively there) through host procfs and
the host's per-process CPU clock.  Sleeps never block the event loop: the task parks
with a deadline and its call is dispatched again when the deadline passes.
"""
from __future__ import annotations

import functools
import os
import struct
import time
import weakref
from typing import TYPE_CHECKING, Callable, NamedTuple

from snakevisor.kernel.errors import EFAULT, EINVAL, EOPNOTSUPP, EPERM, Block, SyscallError
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, u32
from snakevisor.syscalls.sys_info import allowed_cpus, find_task, host_stat_fields

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task, ThreadGroup

NSEC = 1_000_000_000
CLOCK_REALTIME, CLOCK_MONOTONIC = 0, 1
CLOCK_PROCESS_CPUTIME_ID, CLOCK_THREAD_CPUTIME_ID = 2, 3
CLOCK_MONOTONIC_RAW, CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE = 4, 5, 6
CLOCK_BOOTTIME, CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM, CLOCK_TAI = 7, 8, 9, 11
#: clocks answered by the host clock of the same number
HOST_CLOCKS = frozenset({0, 1, 4, 5, 6, 7, 8, 9, 11})
#: clocks one can sleep on with a plain timer (the alarm clocks need CAP_WAKE_ALARM)
SLEEP_CLOCKS = frozenset({CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME, CLOCK_TAI})
ALARM_CLOCKS = frozenset({CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM})
#: clocks that exist but have no nanosleep in Linux (EOPNOTSUPP rather than EINVAL)
NO_SLEEP_CLOCKS = frozenset({CLOCK_THREAD_CPUTIME_ID, CLOCK_MONOTONIC_RAW,
                             CLOCK_REALTIME_COARSE, CLOCK_MONOTONIC_COARSE})
TIMER_ABSTIME = 1

# CPU clock ids (clock_getcpuclockid, pthread_getcpuclockid): ~pid << 3 | thread | which
CPUCLOCK_PROF, CPUCLOCK_VIRT, CPUCLOCK_SCHED = 0, 1, 2
CPUCLOCK_PERTHREAD = 4
CLOCKFD = 3  # id & 7 == 3: a dynamic posix clock named by an fd (PTP devices)

#: settimeofday's upper bound: KTIME_SEC_MAX less 30 years of uptime headroom
TIME_SETTOD_SEC_MAX = (((1 << 63) - 1) // NSEC) - 30 * 365 * 24 * 3600
#: longest single park (selector timeouts overflow past ~24 days); the call re-parks
MAX_PARK = 86400.0
USER_HZ = os.sysconf("SC_CLK_TCK")
TICK_NS = NSEC // USER_HZ

TIMESPEC = struct.Struct("<qq")
RUSAGE = struct.Struct("<4q14q")  # struct rusage: two timevals and 14 longs, 144 bytes
TMS = struct.Struct("<4q")
RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD = 0, -1, 1


# --------------------------------------------------------------------------- CPU accounting

class CpuTimes(NamedTuple):
    """Raw figures of a host process or thread, in nanoseconds (utime/stime tick-sampled)."""

    utime: int
    stime: int
    runtime: int  # precise CPU time (the scheduler's sum_exec_runtime)
    minflt: int
    majflt: int


def _from_stat(fields: list[bytes], runtime: int) -> CpuTimes:
    # fields[0] is /proc stat field 3; minflt 10, majflt 12, utime 14, stime 15
    return CpuTimes(int(fields[11]) * TICK_NS, int(fields[12]) * TICK_NS, runtime,
                    int(fields[7]), int(fields[9]))


def host_pid(tg: "ThreadGroup") -> int:
    """The host process running `tg` (a vfork child has its own, beside shared memory)."""
    return getattr(tg, "host_pid", 0) or tg.mm.host.pid


def process_times(tg: "ThreadGroup") -> CpuTimes:
    """Whole-process figures: the host process that runs `tg` now (its dead threads
    included) plus what earlier images of the process used (usage_exec)."""
    pid = host_pid(tg)
    try:
        runtime = time.clock_gettime_ns(((~pid) << 3) | CPUCLOCK_SCHED)
        now = _from_stat(host_stat_fields(f"/proc/{pid}/stat"), runtime)
    except (OSError, ValueError, IndexError):
        raise SyscallError(EINVAL) from None
    before = getattr(tg, "exec_usage", None)
    return now if before is None else CpuTimes(*(a + b for a, b in zip(now, before[0])))


def thread_times(task: "Task") -> CpuTimes:
    """Figures of the host thread that runs `task`."""
    tid = task.thread.tid
    try:
        with open(f"/proc/{tid}/schedstat", "rb") as f:
            runtime = int(f.read().split()[0])
        return _from_stat(host_stat_fields(f"/proc/{tid}/task/{tid}/stat"), runtime)
    except (OSError, ValueError, IndexError):
        raise SyscallError(EINVAL) from None


#: last reported (host id, utime, stime) per process or thread: reports never go back
_reported: "weakref.WeakKeyDictionary[object, list[int]]" = weakref.WeakKeyDictionary()


def split_cputime(owner: object, host_id: int, t: CpuTimes) -> tuple[int, int]:
    """(utime, stime) as Linux's cputime_adjust gives them: the precise runtime divided
    in the ratio of the tick samples, and never less than what was reported before."""
    prev = _reported.get(owner)
    if prev is None or prev[0] != host_id:  # first report, or a new host process (exec)
        prev = _reported[owner] = [host_id, 0, 0]
    rtime = t.runtime
    if prev[1] + prev[2] < rtime:
        utime, stime = t.utime, t.stime
        if stime == 0:
            utime = rtime
        elif utime == 0:
            stime = rtime
        else:
            stime = max(stime * rtime // (stime + utime), prev[2])
            utime = rtime - stime
            if utime < prev[1]:
                utime = prev[1]
                stime = rtime - utime
        prev[1], prev[2] = utime, stime
    return prev[1], prev[2]


def _max_rss_kb(tg: "ThreadGroup") -> int:
    """ru_maxrss: the high-water mark of the host process, or of an earlier image if higher."""
    before = getattr(tg, "exec_usage", None)
    peak = before[1] if before is not None else 0
    try:
        with open(f"/proc/{host_pid(tg)}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return max(peak, int(line.split()[1]))
    except (OSError, ValueError, IndexError):
        pass
    return peak


def _timeval(ns: int) -> tuple[int, int]:
    return ns // NSEC, ns % NSEC // 1000


# --------------------------------------------------------------------------- clock ids

class CpuClock(NamedTuple):
    which: int  # CPUCLOCK_PROF / VIRT / SCHED
    task: "Task | None"  # set for a thread clock
    tg: "ThreadGroup | None"  # set for a process clock


def resolve_clock(task: "Task", clockid: int, gettime: bool) -> "int | CpuClock":
    """A host clock number or the CPU clock `clockid` names; EINVAL if it names nothing."""
    if clockid in HOST_CLOCKS:
        return clockid
    if clockid == CLOCK_PROCESS_CPUTIME_ID:
        return CpuClock(CPUCLOCK_SCHED, None, task.tg)
    if clockid == CLOCK_THREAD_CPUTIME_ID:
        return CpuClock(CPUCLOCK_SCHED, task, None)
    which = clockid & 3
    if clockid >= 0 or which == 3:  # unknown id, fd clock, or no such CPU measure
        raise SyscallError(EINVAL)
    pid = ~(clockid >> 3)
    if clockid & CPUCLOCK_PERTHREAD:
        target = task if pid == 0 else find_task(task.kernel, pid)
        if target is None or target.tg is not task.tg:
            raise SyscallError(EINVAL)  # only threads of one's own process
        return CpuClock(which, target, None)
    if pid == 0 or (gettime and pid == task.tid):
        return CpuClock(which, None, task.tg)
    tg = task.kernel.thread_groups.get(pid)
    if tg is None or not tg.alive:
        raise SyscallError(EINVAL)
    return CpuClock(which, None, tg)


def sample_cpu_clock(clock: CpuClock) -> int:
    """A CPU clock's reading, from the precise runtime: PROF is all of it, VIRT what the
    tick-sampled system time leaves of it (so user time advances by the nanosecond)."""
    t = process_times(clock.tg) if clock.tg is not None else thread_times(clock.task)
    if clock.which == CPUCLOCK_VIRT:
        return max(0, t.runtime - t.stime)
    return t.runtime


def read_clock(clock: "int | CpuClock") -> int:
    if isinstance(clock, CpuClock):
        return sample_cpu_clock(clock)
    try:
        return time.clock_gettime_ns(clock)
    except OSError:  # an alarm clock on a host without an RTC
        raise SyscallError(EINVAL) from None


@functools.cache
def _host_resolution(clock: int) -> int:
    try:
        return round(time.clock_getres(clock) * NSEC)
    except OSError:
        raise SyscallError(EINVAL) from None


def clock_resolution(clock: "int | CpuClock") -> int:
    if isinstance(clock, CpuClock):
        # tick-sampled measures tick; the scheduler's runtime is precise
        return 1 if clock.which == CPUCLOCK_SCHED else _host_resolution(CLOCK_REALTIME_COARSE)
    return _host_resolution(clock)


# --------------------------------------------------------------------------- reading and setting clocks

def put_timespec(task: "Task", addr: int, ns: int) -> None:
    task.mm.write(addr, TIMESPEC.pack(*divmod(ns, NSEC)))


def read_timespec(task: "Task", addr: int) -> tuple[int, int]:
    return TIMESPEC.unpack(task.mm.read(addr, 16))


def timespec_valid(sec: int, nsec: int) -> bool:
    return sec >= 0 and 0 <= nsec < NSEC


@syscall("clock_gettime")
def sys_clock_gettime(task: "Task", clockid: int, tp: int, *_: int) -> int:
    put_timespec(task, tp, read_clock(resolve_clock(task, s32(clockid), True)))
    return 0


@syscall("clock_getres")
def sys_clock_getres(task: "Task", clockid: int, res: int, *_: int) -> int:
    resolution = clock_resolution(resolve_clock(task, s32(clockid), False))
    if res:
        put_timespec(task, res, resolution)
    return 0


@syscall("gettimeofday")
def sys_gettimeofday(task: "Task", tv: int, tz: int, *_: int) -> int:
    if tv:
        task.mm.write(tv, TIMESPEC.pack(*_timeval(time.clock_gettime_ns(CLOCK_REALTIME))))
    if tz:
        task.mm.write(tz, bytes(8))  # the kernel's sys_tz: UTC, no DST
    return 0


@syscall("time")
def sys_time(task: "Task", tloc: int, *_: int) -> int:
    now = time.clock_gettime_ns(CLOCK_REALTIME) // NSEC
    if tloc:
        task.mm.write_u64(tloc, now)
    return now


def _settod_valid(sec: int, nsec: int) -> bool:
    return timespec_valid(sec, nsec) and sec < TIME_SETTOD_SEC_MAX


@syscall("clock_settime")
def sys_clock_settime(task: "Task", clockid: int, tp: int, *_: int) -> int:
    """Validated like Linux, then refused: the sandbox never has CAP_SYS_TIME."""
    clockid = s32(clockid)
    if clockid != CLOCK_REALTIME and clockid >= 0:
        raise SyscallError(EINVAL)  # the other clocks cannot be set at all
    sec, nsec = read_timespec(task, tp)
    if clockid == CLOCK_REALTIME:
        if not _settod_valid(sec, nsec):
            raise SyscallError(EINVAL)
    else:
        resolve_clock(task, clockid, False)
    raise SyscallError(EPERM)


@syscall("settimeofday")
def sys_settimeofday(task: "Task", tv: int, tz: int, *_: int) -> int:
    """Validated like Linux, then refused: the sandbox never has CAP_SYS_TIME."""
    if tv:
        sec, usec = TIMESPEC.unpack(task.mm.read(tv, 16))
        if usec > 1_000_000 or usec < 0:
            raise SyscallError(EINVAL)
        if not _settod_valid(sec, usec * 1000):
            raise SyscallError(EINVAL)
    if tz:
        task.mm.read(tz, 8)
    raise SyscallError(EPERM)


# --------------------------------------------------------------------------- sleeping

def _request(task: "Task", req: int) -> int:
    sec, nsec = read_timespec(task, req)
    if not timespec_valid(sec, nsec):
        raise SyscallError(EINVAL)
    return sec * NSEC + nsec


def _start_sleep(task: "Task", clockid: int, absolute: bool, want: int, rem: int = 0) -> None:
    """Record what the sleep waits for: a reading function and the value to reach, and
    for a relative sleep with `rem`, what to report when a signal handler cuts it short."""
    read: Callable[[], int]
    if clockid in SLEEP_CLOCKS:
        # Relative sleeps are measured on the monotonic clock (boot time for BOOTTIME),
        # so setting the wall clock does not stretch or cut them, as in Linux.
        base = clockid if absolute else (CLOCK_BOOTTIME if clockid == CLOCK_BOOTTIME
                                         else CLOCK_MONOTONIC)
        read, cpu = functools.partial(time.clock_gettime_ns, base), False
    else:
        read, cpu = functools.partial(sample_cpu_clock, resolve_clock(task, clockid, False)), True
    target = want if absolute else read() + want
    task.syscall_state = {"sleep_read": read, "sleep_until": target, "sleep_cpu": cpu}
    if rem and not absolute:
        # the kernel calls syscall_state["on_interrupt"](task) when a handler ends the call
        task.syscall_state["on_interrupt"] = functools.partial(_report_remaining, rem=rem,
                                                               read=read, target=target)


def _report_remaining(task: "Task", *, rem: int, read: Callable[[], int],
                      target: int) -> int | None:
    """A signal handler cut the sleep short (EINTR): copy the time left to `rem`.  Returns
    -EFAULT, the call's result instead of EINTR, when `rem` cannot take it (as in Linux)."""
    try:
        left = max(0, target - read())
    except SyscallError:
        left = 0
    try:
        put_timespec(task, rem, left)
    except SyscallError:
        return -EFAULT
    return None


def _continue_sleep(task: "Task") -> int:
    state = task.syscall_state
    assert state is not None
    try:
        now = state["sleep_read"]()
    except SyscallError:
        return 0  # the measured process is gone, and its timers with it
    target = state["sleep_until"]
    if now >= target:
        return 0
    wait = (target - now) / NSEC
    if state["sleep_cpu"]:
        # CPU time advances at most one second per second per CPU: poll at that pace
        wait = max(wait / max(1, allowed_cpus(task).bit_count()), 0.001)
    raise Block(deadline=time.monotonic() + min(wait, MAX_PARK))


def _sleeping(task: "Task") -> bool:
    return task.syscall_state is not None and "sleep_until" in task.syscall_state


@syscall("nanosleep")
def sys_nanosleep(task: "Task", req: int, rem: int, *_: int) -> int:
    if not _sleeping(task):
        _start_sleep(task, CLOCK_MONOTONIC, False, _request(task, req), rem)
    return _continue_sleep(task)


@syscall("clock_nanosleep")
def sys_clock_nanosleep(task: "Task", clockid: int, flags: int, req: int, rem: int,
                        *_: int) -> int:
    if not _sleeping(task):
        clockid = s32(clockid)
        if clockid >= 0 and clockid not in SLEEP_CLOCKS | ALARM_CLOCKS and \
                clockid != CLOCK_PROCESS_CPUTIME_ID:
            raise SyscallError(EOPNOTSUPP if clockid in NO_SLEEP_CLOCKS else EINVAL)
        if clockid < 0 and clockid & 7 == CLOCKFD:
            raise SyscallError(EOPNOTSUPP)  # posix fd clocks have no nanosleep
        want = _request(task, req)
        if clockid in ALARM_CLOCKS:
            try:
                time.clock_getres(clockid)
            except OSError:
                raise SyscallError(EOPNOTSUPP) from None  # no RTC to wake the machine
            raise SyscallError(EPERM)  # the sandbox never has CAP_WAKE_ALARM
        if clockid < 0 and (clockid & CPUCLOCK_PERTHREAD or ~(clockid >> 3) == task.tid):
            raise SyscallError(EINVAL)  # one's own thread cannot advance while it sleeps
        _start_sleep(task, clockid, bool(u32(flags) & TIMER_ABSTIME), want, rem)
    return _continue_sleep(task)


# --------------------------------------------------------------------------- usage reports

class Usage(NamedTuple):
    """What getrusage reports of a process (times in ns, maxrss in KiB)."""

    utime: int = 0
    stime: int = 0
    maxrss: int = 0
    minflt: int = 0
    majflt: int = 0

    def plus(self, other: "Usage") -> "Usage":
        """Accumulated as wait accounts a child: sums, and the largest maxrss."""
        return Usage(self.utime + other.utime, self.stime + other.stime,
                     max(self.maxrss, other.maxrss), self.minflt + other.minflt,
                     self.majflt + other.majflt)

    def pack(self) -> bytes:
        """As struct rusage (what getrusage and wait4 copy out)."""
        return RUSAGE.pack(*_timeval(self.utime), *_timeval(self.stime), self.maxrss, 0, 0, 0,
                           self.minflt, self.majflt, 0, 0, 0, 0, 0, 0, 0, 0)


def own_usage(task: "Task", who: int = RUSAGE_SELF) -> Usage:
    """RUSAGE_SELF (the whole process) or RUSAGE_THREAD (the calling thread)."""
    if who == RUSAGE_THREAD:
        t = thread_times(task)
        utime, stime = split_cputime(task, task.thread.tid, t)
    else:
        t = process_times(task.tg)
        utime, stime = split_cputime(task.tg, host_pid(task.tg), t)
    return Usage(utime, stime, _max_rss_kb(task.tg), t.minflt, t.majflt)


def children_usage(tg: "ThreadGroup") -> Usage:
    """RUSAGE_CHILDREN: every child (and its descendants) that `tg` has reaped."""
    return getattr(tg, "children_usage", Usage())


def snapshot_usage(tg: "ThreadGroup") -> Usage:
    """At exit, while the host process still exists: what the parent adds when it reaps
    `tg` -- its own usage and that of the children it reaped (kept as tg.final_usage)."""
    try:
        t = process_times(tg)
        utime, stime = split_cputime(tg, host_pid(tg), t)
        own = Usage(utime, stime, _max_rss_kb(tg), t.minflt, t.majflt)
    except (SyscallError, AttributeError):  # no host process left to ask
        own = Usage()
    return own.plus(children_usage(tg))


def add_child_usage(parent: "ThreadGroup", usage: Usage) -> None:
    """At reap (wait4/waitid of a zombie): the child's usage joins RUSAGE_CHILDREN."""
    parent.children_usage = children_usage(parent).plus(usage)  # type: ignore[attr-defined]


def account_child_exit(parent: "ThreadGroup", child: "ThreadGroup") -> None:
    """add_child_usage with the snapshot taken when `child` exited."""
    usage = getattr(child, "final_usage", None)
    add_child_usage(parent, usage if isinstance(usage, Usage) else snapshot_usage(child))


def usage_exec(tg: "ThreadGroup") -> None:
    """execve replaces the host process: carry the old image's CPU time, faults and peak
    RSS over (call while tg.mm is still the old image), as Linux keeps them across exec."""
    try:
        tg.exec_usage = (process_times(tg), _max_rss_kb(tg))  # type: ignore[attr-defined]
    except SyscallError:
        pass


@syscall("getrusage", partial="context switch and block I/O counts are zero")
def sys_getrusage(task: "Task", who: int, ru: int, *_: int) -> int:
    who = s32(who)
    if who not in (RUSAGE_SELF, RUSAGE_CHILDREN, RUSAGE_THREAD):
        raise SyscallError(EINVAL)
    usage = children_usage(task.tg) if who == RUSAGE_CHILDREN else own_usage(task, who)
    task.mm.write(ru, usage.pack())
    return 0


@syscall("times")
def sys_times(task: "Task", buf: int, *_: int) -> int:
    if buf:
        mine, children = own_usage(task), children_usage(task.tg)
        task.mm.write(buf, TMS.pack(mine.utime // TICK_NS, mine.stime // TICK_NS,
                                    children.utime // TICK_NS, children.stime // TICK_NS))
    # clock ticks since the sandbox booted (Linux: since an arbitrary point in the past)
    return int((time.monotonic() - task.kernel.boot_monotonic) * USER_HZ)
