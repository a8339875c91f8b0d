"""Interval timers and POSIX timers against a fake task, a fake event loop and fake clocks.

Time is simulated: the loop's clock, the host wall clocks the timers read and the CPU
clocks they sample are all driven by the test, so expiries, re-arming, overruns and the
signals sent are checked exactly, without waiting.  Argument errors and timer ids are
compared with the host kernel (native_calls) using timers far in the future, so nothing
fires natively.
"""
from __future__ import annotations

import errno
import heapq
import struct
import threading
from types import SimpleNamespace
from typing import Callable

import pytest

from snakevisor.kernel import timers
from snakevisor.kernel.task import Task
from snakevisor.syscalls import sys_timer
from snakevisor.syscalls.sys_timer import (SIGALRM, SIGPROF, SIGVTALRM, SI_KERNEL, SI_TIMER,
                                           timers_exec, timers_exit, timers_of)
from tests.unit.conftest import FakeProcess, In, Out, native_calls

NSEC = 1_000_000_000
MS = 1_000_000
BAD = 8
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD, SIGEV_THREAD_ID = 0, 1, 2, 4
#: fake wall clocks: monotonic is the loop's time, realtime far after it
OFFSETS = {0: 1_700_000_000 * NSEC, 1: 0, 7: 5 * NSEC, 11: 1_700_000_037 * NSEC}


class Handle:
    def __init__(self, deadline: float, seq: int, fn: Callable[[], None]) -> None:
        self.deadline, self.seq, self.fn, self.cancelled = deadline, seq, fn, False

    def __lt__(self, other: "Handle") -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)

    def cancel(self) -> None:
        self.cancelled = True


class Loop:
    """kernel.call_at / now / send_signal for a simulated event loop."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.heap: list[Handle] = []
        self.seq = 0
        self.sent: list[tuple[object, int, bytes]] = []

    def call_at(self, deadline: float, fn: Callable[[], None]) -> Handle:
        self.seq += 1
        handle = Handle(deadline, self.seq, fn)
        heapq.heappush(self.heap, handle)
        return handle

    def now(self) -> float:
        return self.t

    def send_signal(self, target: object, sig: int, info: bytes | None = None) -> None:
        assert info is not None and len(info) == 128
        self.sent.append((target, sig, info))

    def scheduled(self) -> list[Handle]:
        return [h for h in self.heap if not h.cancelled]

    def advance(self, seconds: float) -> None:
        """Run every callback due within the next `seconds`, each at its own time."""
        end = self.t + seconds
        while self.heap and self.heap[0].deadline <= end:
            handle = heapq.heappop(self.heap)
            if handle.cancelled:
                continue
            self.t = max(self.t, handle.deadline)
            handle.fn()
        self.t = end


class Cpu:
    """A fake CPU clock for the process: advanced by the test."""

    def __init__(self) -> None:
        self.ns = 10 * NSEC


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    loop, cpu = Loop(), Cpu()
    p = FakeProcess(None)
    for name in ("call_at", "now", "send_signal"):
        monkeypatch.setattr(p.kernel, name, getattr(loop, name), raising=False)
    p.kernel.thread_groups = {1: p.tg}
    p.task.thread = SimpleNamespace(tid=threading.get_native_id())
    monkeypatch.setattr(timers, "clock_ns", lambda cid: int(loop.t * NSEC) + OFFSETS[cid])
    monkeypatch.setattr(sys_timer, "sample_cpu_clock", lambda clock: cpu.ns)
    return SimpleNamespace(p=p, loop=loop, cpu=cpu)


def itimerval(value_ns: int, interval_ns: int = 0) -> In:
    return In(struct.pack("<qqqq", interval_ns // NSEC, interval_ns % NSEC // 1000,
                          value_ns // NSEC, value_ns % NSEC // 1000))


def itimerspec(value_ns: int, interval_ns: int = 0) -> In:
    return In(struct.pack("<qqqq", *divmod(interval_ns, NSEC), *divmod(value_ns, NSEC)))


def getitimer(p: FakeProcess, which: int) -> tuple[int, int]:
    ret, buf = p.run([("getitimer", which, Out(32))])[0]
    assert ret == 0
    isec, iusec, vsec, vusec = struct.unpack("<qqqq", buf)
    return vsec * NSEC + vusec * 1000, isec * NSEC + iusec * 1000


def gettime(p: FakeProcess, timerid: int) -> tuple[int, int]:
    ret, buf = p.run([("timer_gettime", timerid, Out(32))])[0]
    assert ret == 0
    isec, insec, vsec, vnsec = struct.unpack("<qqqq", buf)
    return vsec * NSEC + vnsec, isec * NSEC + insec


def sigevent(notify: int, signo: int = 0, value: int = 0, tid: int = 0) -> In:
    return In(struct.pack("<Qiii44x", value, signo, notify, tid))


def create(p: FakeProcess, clock: int = 1, event: In | None = None) -> int:
    ret, out = p.run([("timer_create", clock, event if event is not None else 0, Out(4))])[0]
    assert ret == 0, ret
    return struct.unpack("<i", out)[0]


def siginfo(info: bytes) -> tuple[int, int, int, int, int, int]:
    """(signo, errno, code, timerid, overrun, value)"""
    return struct.unpack_from("<iii4xiiQ", info)


# ------------------------------------------------------------------------------ alarm and ITIMER_REAL

def test_alarm_reports_the_rounded_remainder(env) -> None:
    p, loop = env.p, env.loop
    assert p.call("alarm", 10) == 0
    loop.advance(3.3)
    assert p.call("alarm", 5) == 7  # 6.7 s left rounds up
    loop.advance(4.4)
    assert p.call("alarm", 3) == 1  # 0.6 s left rounds up
    loop.advance(2.8)
    assert p.call("alarm", 0) == 1  # 0.2 s left: never 0 while an alarm is pending
    assert p.call("alarm", 1) == 0
    loop.advance(0.9999)
    assert p.call("alarm", 0) == 1
    assert loop.sent == [] and loop.scheduled() == []


def test_alarm_sends_sigalrm_to_the_process(env) -> None:
    p, loop = env.p, env.loop
    assert p.call("alarm", 2) == 0
    loop.advance(1.999)
    assert loop.sent == []
    loop.advance(0.001)
    assert [(target, sig) for target, sig, _ in loop.sent] == [(p.tg, SIGALRM)]
    assert siginfo(loop.sent[0][2])[:3] == (SIGALRM, 0, SI_KERNEL)
    assert p.call("alarm", 0) == 0 and getitimer(p, 0) == (0, 0)


def test_periodic_itimer_real(env) -> None:
    p, loop = env.p, env.loop
    ret, old = p.run([("setitimer", 0, itimerval(NSEC, 500 * MS), Out(32))])[0]
    assert ret == 0 and old == bytes(32)
    loop.advance(2.1)
    assert [sig for _, sig, _ in loop.sent] == [SIGALRM] * 3  # at 1.0, 1.5 and 2.0 s
    value, interval = getitimer(p, 0)
    assert (value, interval) == (400 * MS, 500 * MS)
    ret, old = p.run([("setitimer", 0, itimerval(0, 300 * MS), Out(32))])[0]
    assert ret == 0 and struct.unpack("<qqqq", old) == (0, 500_000, 0, 400_000)
    assert getitimer(p, 0) == (0, 0)  # ITIMER_REAL forgets the interval when stopped
    loop.advance(5)
    assert len(loop.sent) == 3


def test_a_late_loop_sends_one_signal_and_keeps_the_period(env) -> None:
    p, loop = env.p, env.loop
    assert p.call("setitimer", 0, itimerval(100 * MS, 100 * MS), 0) == 0
    timer = timers_of(p.tg).itimers[0]
    loop.t += 0.35  # the loop was busy: the callback runs late, once
    loop.advance(0)
    assert len(loop.sent) == 1
    assert timer.expires == int(loop.t * NSEC) + 50 * MS  # still on the 100 ms grid


def test_due_itimer_reports_one_microsecond(env) -> None:
    p, loop = env.p, env.loop
    assert p.call("setitimer", 0, itimerval(10 * MS), 0) == 0
    loop.t += 1  # due, but the callback has not run yet
    assert getitimer(p, 0) == (1000, 0)


def test_setitimer_errors_match_linux(env) -> None:
    ops = [("getitimer", 5, BAD), ("getitimer", 0, BAD), ("setitimer", 5, BAD, 0),
           ("setitimer", 5, itimerval(0), 0), ("setitimer", -1, 0, 0),
           ("setitimer", 0, In(struct.pack("<qqqq", 0, 0, 0, 1_000_000)), 0),
           ("setitimer", 0, In(struct.pack("<qqqq", 0, -1, 0, 0)), 0),
           ("setitimer", 0, In(struct.pack("<qqqq", -1, 0, 0, 0)), 0),
           ("setitimer", 0, itimerval(0, 3 * NSEC), Out(32)), ("getitimer", 0, Out(32)),
           ("setitimer", 1, itimerval(0, 3 * NSEC), Out(32)), ("getitimer", 1, Out(32)),
           ("setitimer", 2, itimerval(0, 7 * NSEC), BAD), ("getitimer", 2, Out(32)),
           ("setitimer", 0, 0, 0), ("alarm", 100), ("alarm", 0), ("alarm", 0),
           ("setitimer", 0, itimerval(100 * NSEC), BAD), ("setitimer", 0, 0, Out(32))]
    native = native_calls("/", ops, readonly=False)
    ours = env.p.run(ops)
    assert [r[0] for r in ours] == [r[0] for r in native]
    # the outputs that do not depend on elapsed time
    for i in (9, 11, 13):
        assert ours[i][1] == native[i][1]
    value = struct.unpack("<qqqq", native[19][1])
    assert value[:2] == (0, 0) and 99 <= value[2] <= 100


# ------------------------------------------------------------------------------ CPU interval timers

def test_itimer_virtual_samples_cpu_time(env) -> None:
    p, loop, cpu = env.p, env.loop, env.cpu
    tick = sys_timer._tick_ns()
    assert p.call("setitimer", 1, itimerval(50 * MS, 20 * MS), 0) == 0
    assert getitimer(p, 1) == (50 * MS + tick, 20 * MS)  # Linux starts CPU timers a tick late
    loop.advance(1.0)  # a second of wall time without CPU: nothing, and little polling
    assert loop.sent == []
    polls = loop.seq
    assert polls < 1.0 / (timers.MIN_POLL_NS / NSEC) / 4  # backed off while idle
    cpu.ns += 50 * MS + tick
    loop.advance(timers.MAX_IDLE_POLL_NS / NSEC)
    assert [(t, s) for t, s, _ in loop.sent] == [(p.tg, SIGVTALRM)]
    assert getitimer(p, 1)[1] == 20 * MS
    cpu.ns += 20 * MS
    loop.advance(timers.MAX_IDLE_POLL_NS / NSEC)
    assert len(loop.sent) == 2


def test_itimer_prof_stopped_keeps_interval(env) -> None:
    p, loop, cpu = env.p, env.loop, env.cpu
    assert p.call("setitimer", 2, itimerval(0, 5 * MS), 0) == 0
    assert getitimer(p, 2) == (0, 5 * MS)
    assert loop.scheduled() == []
    assert p.call("setitimer", 2, itimerval(1 * MS), 0) == 0
    cpu.ns += 10 * MS
    loop.advance(0.1)
    assert [s for _, s, _ in loop.sent] == [SIGPROF]
    assert getitimer(p, 2) == (0, 0)


def test_cpu_clock_never_goes_back_and_paces_by_cpus(env) -> None:
    readings = iter([100, 90, 150])
    clock = timers.CpuTimerClock(lambda: next(readings), lambda: 4)
    assert [clock.now(), clock.now(), clock.now()] == [100, 100, 150]
    assert clock.wait_ns(400 * MS) == 100 * MS  # four CPUs can use 400 ms in 100 ms
    assert clock.wait_ns(1) == timers.MIN_POLL_NS


# ------------------------------------------------------------------------------ POSIX timers

def test_timer_ids_and_errors_match_linux(env) -> None:
    ev = [sigevent(3), sigevent(SIGEV_SIGNAL, 0), sigevent(SIGEV_SIGNAL, 65),
          sigevent(SIGEV_NONE, 65), sigevent(SIGEV_THREAD_ID, 10, tid=0x7FFFFFF0),
          sigevent(SIGEV_THREAD_ID | SIGEV_NONE, 10), sigevent(SIGEV_THREAD, 10)]
    ops = [("timer_create", 1, 0, Out(4)), ("timer_create", 1, 0, Out(4)), ("timer_delete", 0),
           ("timer_create", 1, 0, Out(4)), ("timer_create", 1, ev[0], Out(4)),
           ("timer_create", 1, 0, BAD), ("timer_create", 1, 0, Out(4))]
    ops += [("timer_create", c, 0, Out(4)) for c in (0, 2, 3, 4, 5, 6, 7, 10, 11, 12, -1, -5)]
    ops += [("timer_create", 12345, BAD, Out(4)), ("timer_create", 1, BAD, Out(4))]
    ops += [("timer_create", 1, e, Out(4)) for e in ev[1:]]
    ops += [("timer_settime", 1, 0, 0, Out(32)), ("timer_settime", 999, 0, itimerspec(5 * NSEC), 0),
            ("timer_settime", 999, 0, BAD, 0),
            ("timer_settime", 1, 0, In(struct.pack("<qqqq", 0, 0, 0, -1)), 0),
            ("timer_settime", 1, 0, In(struct.pack("<qqqq", 0, NSEC, 1, 0)), 0),
            ("timer_settime", 1, 0x10, itimerspec(100 * NSEC), Out(32)),
            ("timer_settime", 1, 0, itimerspec(100 * NSEC), BAD),
            ("timer_settime", 1, 1, itimerspec(0, NSEC), Out(32)), ("timer_gettime", 1, Out(32)),
            ("timer_gettime", 999, BAD), ("timer_gettime", 1, BAD), ("timer_getoverrun", 1),
            ("timer_getoverrun", 999), ("timer_delete", 999), ("timer_delete", -1),
            ("timer_delete", 1), ("timer_delete", 1), ("timer_gettime", 1, Out(32))]
    native = native_calls("/", ops, readonly=False)
    ours = env.p.run(ops)
    assert [r[0] for r in ours] == [r[0] for r in native]
    for i, op in enumerate(ops):
        if op[0] == "timer_create":
            assert ours[i][1:] == native[i][1:], (i, op)  # the same ids, written or not
    assert ours[-10][1] == native[-10][1] == bytes(32)  # disarmed by an absolute 0


def test_timer_settime_relative_absolute_and_old_value(env) -> None:
    p, loop = env.p, env.loop
    tid = create(p, 0)  # CLOCK_REALTIME
    assert gettime(p, tid) == (0, 0)
    assert p.call("timer_settime", tid, 0, itimerspec(5 * NSEC, NSEC), 0) == 0
    loop.advance(2)
    assert gettime(p, tid) == (3 * NSEC, NSEC)
    absolute = OFFSETS[0] + int(loop.t * NSEC) + 7 * NSEC
    ret, old = p.run([("timer_settime", tid, 1, itimerspec(absolute), Out(32))])[0]
    assert ret == 0 and struct.unpack("<qqqq", old) == (1, 0, 3, 0)
    assert gettime(p, tid) == (7 * NSEC, 0)
    loop.advance(7)
    assert [(s, siginfo(i)[2:]) for _, s, i in loop.sent] == [(SIGALRM, (SI_TIMER, tid, 0, tid))]
    assert gettime(p, tid) == (0, 0)
    assert p.call("timer_delete", tid) == 0
    assert loop.scheduled() == []


def test_realtime_timer_follows_a_clock_step(env, monkeypatch: pytest.MonkeyPatch) -> None:
    p, loop = env.p, env.loop
    tid = create(p, 0)
    target = OFFSETS[0] + int(loop.t * NSEC) + 10 * NSEC
    assert p.call("timer_settime", tid, 1, itimerspec(target), 0) == 0
    monkeypatch.setitem(OFFSETS, 0, OFFSETS[0] - 5 * NSEC)  # the wall clock is set back 5 s
    loop.advance(10)
    assert loop.sent == []  # woke up on time, found the clock early, waited again
    loop.advance(5)
    assert len(loop.sent) == 1


def test_sigev_signal_value_and_periodic_overruns(env) -> None:
    p, loop = env.p, env.loop
    tid = create(p, 1, sigevent(SIGEV_SIGNAL, 40, value=0xABCDEF0123))
    assert p.call("timer_settime", tid, 0, itimerspec(10 * MS, 10 * MS), 0) == 0
    loop.advance(0.01)
    info = loop.sent[-1][2]
    assert siginfo(info) == (40, 0, SI_TIMER, tid, 0, 0xABCDEF0123) and info[32:] == bytes(96)
    p.tg.shared_pending.add(40, info)  # the signal is not taken yet: expirations pile up
    loop.advance(0.03)
    assert len(loop.sent) == 1 and p.call("timer_getoverrun", tid) == 0
    assert p.tg.shared_pending.take(0) == (40, info)  # delivered
    loop.advance(0.01)
    assert len(loop.sent) == 2
    assert siginfo(loop.sent[-1][2])[4] == 3  # three expirations went unreported
    assert p.call("timer_getoverrun", tid) == 3
    loop.t += 0.045  # a late loop: four more periods passed, one signal
    loop.advance(0)
    assert len(loop.sent) == 3 and siginfo(loop.sent[-1][2])[4] == 3
    assert p.call("timer_settime", tid, 0, itimerspec(0), 0) == 0
    assert p.call("timer_getoverrun", tid) == 0  # settime resets the count


def test_sigev_thread_id_targets_one_thread(env) -> None:
    p, loop = env.p, env.loop
    worker = Task(p.kernel, 2, p.tg, SimpleNamespace(tid=0))  # type: ignore[arg-type]
    p.tg.tasks.append(worker)
    tid = create(p, 1, sigevent(SIGEV_THREAD_ID, 35, value=7, tid=2))
    assert p.call("timer_settime", tid, 0, itimerspec(MS), 0) == 0
    loop.advance(0.001)
    assert [(t, s) for t, s, _ in loop.sent] == [(worker, 35)]
    worker.sigpending.add(35, loop.sent[0][2])  # still queued for that thread
    assert p.call("timer_settime", tid, 0, itimerspec(MS, MS), 0) == 0
    loop.advance(0.0025)
    assert len(loop.sent) == 1 and timers_of(p.tg).posix[tid].overrun == 2
    worker.alive = False
    assert p.call("timer_settime", tid, 0, itimerspec(MS), 0) == 0
    loop.advance(0.001)
    assert len(loop.sent) == 1  # a thread that is gone is not signalled


def test_sigev_thread_is_a_process_signal(env) -> None:
    p, loop = env.p, env.loop
    tid = create(p, 7, sigevent(SIGEV_THREAD, 12))  # CLOCK_BOOTTIME
    assert p.call("timer_settime", tid, 0, itimerspec(MS), 0) == 0
    loop.advance(0.001)
    assert [(t, s) for t, s, _ in loop.sent] == [(p.tg, 12)]


def test_sigev_none_is_only_read(env) -> None:
    p, loop = env.p, env.loop
    one = create(p, 1, sigevent(SIGEV_NONE))
    periodic = create(p, 1, sigevent(SIGEV_NONE))
    assert p.call("timer_settime", one, 0, itimerspec(2 * NSEC), 0) == 0
    assert p.call("timer_settime", periodic, 0, itimerspec(NSEC, 300 * MS), 0) == 0
    assert loop.scheduled() == []
    loop.advance(1.5)
    assert gettime(p, one) == (500 * MS, 0)
    assert gettime(p, periodic) == (100 * MS, 300 * MS)  # expired at 1.0, 1.3: next 1.6
    loop.advance(1)
    assert gettime(p, one) == (0, 0)
    assert loop.sent == []


def test_due_posix_timer_reports_one_nanosecond(env) -> None:
    p, loop = env.p, env.loop
    tid = create(p)
    assert p.call("timer_settime", tid, 0, itimerspec(MS), 0) == 0
    loop.t += 1
    assert gettime(p, tid) == (1, 0)


def test_process_cpu_timer(env) -> None:
    p, loop, cpu = env.p, env.loop, env.cpu
    tid = create(p, 2, sigevent(SIGEV_SIGNAL, 44))
    assert p.call("timer_settime", tid, 0, itimerspec(30 * MS), 0) == 0
    assert gettime(p, tid) == (30 * MS, 0)
    absolute = cpu.ns + 100 * MS
    loop.advance(0.5)
    assert loop.sent == []
    cpu.ns += 31 * MS
    loop.advance(0.1)
    assert [s for _, s, _ in loop.sent] == [44]
    assert p.call("timer_settime", tid, 1, itimerspec(absolute), 0) == 0
    assert gettime(p, tid) == (69 * MS, 0)


def test_thread_cpu_timer_stops_with_its_thread(env, monkeypatch: pytest.MonkeyPatch) -> None:
    p, loop, cpu = env.p, env.loop, env.cpu
    tid = create(p, 3)
    assert p.call("timer_settime", tid, 0, itimerspec(10 * MS), 0) == 0

    def gone(clock: object) -> int:
        raise sys_timer.SyscallError(errno.EINVAL)
    monkeypatch.setattr(sys_timer, "sample_cpu_clock", gone)
    cpu.ns += NSEC
    loop.advance(1)
    assert loop.sent == [] and loop.scheduled() == []


def test_timer_of_another_process_cpu_clock(env) -> None:
    p = env.p
    assert p.call("timer_create", ((~77 << 3) | 2) & 0xFFFFFFFF, 0, Out(4)) == -errno.EINVAL
    assert p.call("timer_create", ((~1 << 3) | 2) & 0xFFFFFFFF, 0, Out(4)) == 0
    assert p.call("timer_create", ((~1 << 3) | 6) & 0xFFFFFFFF, 0, Out(4)) == 0  # own thread


# ------------------------------------------------------------------------------ lifetimes

def test_exec_keeps_itimers_and_deletes_posix_timers(env) -> None:
    p, loop = env.p, env.loop
    assert p.call("alarm", 5) == 0
    tid = create(p)
    assert p.call("timer_settime", tid, 0, itimerspec(NSEC), 0) == 0
    timers_exec(p.tg)
    assert p.call("timer_gettime", tid, Out(32)) == -errno.EINVAL
    assert create(p) == tid + 1  # ids keep counting
    loop.advance(5)
    assert [s for _, s, _ in loop.sent] == [SIGALRM]


def test_exit_stops_everything(env) -> None:
    p, loop = env.p, env.loop
    assert p.call("setitimer", 0, itimerval(NSEC, NSEC), 0) == 0
    assert p.call("setitimer", 1, itimerval(NSEC), 0) == 0
    tid = create(p)
    assert p.call("timer_settime", tid, 0, itimerspec(NSEC, NSEC), 0) == 0
    timers_exit(p.tg)
    assert loop.scheduled() == []
    loop.advance(10)
    assert loop.sent == []


def test_timers_of_a_dead_process_stop_themselves(env) -> None:
    p, loop = env.p, env.loop
    assert p.call("setitimer", 0, itimerval(NSEC, NSEC), 0) == 0
    p.tg.exit_status = 0
    loop.advance(3)
    assert loop.sent == [] and loop.scheduled() == []


def test_a_forked_process_starts_without_timers(env) -> None:
    from snakevisor.kernel.task import ThreadGroup
    p = env.p
    assert p.call("alarm", 5) == 0
    child = ThreadGroup(p.kernel, 2, p.tg, p.tg.mm, None, None)  # type: ignore[arg-type]
    assert sys_timer.get_itimer(child, 0) == (0, 0)
    assert timers_of(child).posix == {}
