"""Timers on the event loop: expiry, periodic re-arming and CPU-clock sampling.

A Timer counts down on one clock and calls its owner back on expiry with the number of
intervals that elapsed.  The loop can only wake the sentry at a monotonic deadline
(`kernel.call_at`), so every clock says how long to wait before looking again: a wall
clock waits exactly the time remaining (and looks again if the clock was set meanwhile);
a CPU clock, which the host cannot wake us for, is sampled -- no sooner than its process
could have used the remaining CPU time on all its CPUs, and at most every MIN_POLL_NS while
it advances.  CPU-clock expiry is therefore accurate to the sampling period.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Protocol

from snakevisor.kernel.errors import SyscallError

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel

NSEC = 1_000_000_000
#: the shortest wait between two samples of a CPU clock
MIN_POLL_NS = 1_000_000
#: the longest wait between two samples of a CPU clock that has stopped advancing
MAX_IDLE_POLL_NS = 50_000_000
#: the shortest wait before a periodic timer is looked at again: shorter intervals are
#: counted as overruns rather than spinning the event loop
MIN_REARM_NS = 1_000_000


def clock_ns(clockid: int) -> int:
    """A host wall or monotonic clock (a seam for tests)."""
    return time.clock_gettime_ns(clockid)


class TimerClock(Protocol):
    def now(self) -> int:
        """The clock's reading in ns; SyscallError when it no longer exists."""

    def wait_ns(self, remaining: int) -> int:
        """Wall time to wait before the clock may have advanced by `remaining` ns."""


class WallClock:
    """A clock that advances with real time (REALTIME, MONOTONIC, BOOTTIME, TAI)."""

    def __init__(self, clockid: int) -> None:
        self.clockid = clockid

    def now(self) -> int:
        return clock_ns(self.clockid)

    def wait_ns(self, remaining: int) -> int:
        return remaining


class CpuTimerClock:
    """A sampled CPU-time clock.  Readings never go back (the sampled split of user and
    system time may wobble), and an idle process is sampled less and less often."""

    def __init__(self, read: Callable[[], int], cpus: Callable[[], int]) -> None:
        self._read = read
        self._cpus = cpus
        self._last = -1
        self._idle_wait = MIN_POLL_NS

    def now(self) -> int:
        value = self._read()
        if value <= self._last:
            # no progress since the last look: back off while the process does not run
            self._idle_wait = min(self._idle_wait * 2, MAX_IDLE_POLL_NS)
            return self._last
        self._last = value
        self._idle_wait = MIN_POLL_NS
        return value

    def wait_ns(self, remaining: int) -> int:
        return max(remaining // max(1, self._cpus()), self._idle_wait)


class Timer:
    """One timer: disarmed (expires == 0) or due at `expires` on its clock, re-armed every
    `interval` ns if periodic.  `fire(n)` is called from the event loop with the number of
    expirations since the last call (more than 1 when the loop was late).  A passive
    timer (SIGEV_NONE) never calls back: its expiry is only read."""

    def __init__(self, kernel: "Kernel", clock: TimerClock, fire: Callable[[int], None],
                 passive: bool = False) -> None:
        self.kernel = kernel
        self.clock = clock
        self.fire = fire
        self.passive = passive
        self.expires = 0
        self.interval = 0
        self._handle = None

    @property
    def armed(self) -> bool:
        return self.expires != 0

    def arm(self, expires: int, interval: int) -> None:
        """Start (or restart) the timer: due at `expires`, then every `interval` ns."""
        self.disarm()
        self.expires, self.interval = max(expires, 1), interval
        if not self.passive:
            self._schedule(self.clock.wait_ns(self.expires - self.clock.now()))

    def disarm(self) -> None:
        self.expires = self.interval = 0
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def remaining(self) -> int:
        """ns until expiry (<= 0: due, the callback has not run yet); 0 when disarmed or a
        passive one-shot has passed its expiry."""
        if not self.expires:
            return 0
        now = self.clock.now()
        if self.passive and now >= self.expires:
            if not self.interval:
                self.expires = 0
                return 0
            self.expires += (1 + (now - self.expires) // self.interval) * self.interval
        return self.expires - now

    def _schedule(self, wait: int) -> None:
        self._handle = self.kernel.call_at(self.kernel.now() + max(0, wait) / NSEC, self._check)

    def _check(self) -> None:
        self._handle = None
        if not self.expires:
            return
        try:
            now = self.clock.now()
        except SyscallError:  # the measured thread or process is gone
            self.disarm()
            return
        if now < self.expires:  # early (a wall clock was set, or CPU time lagged)
            self._schedule(self.clock.wait_ns(self.expires - now))
            return
        count = 1
        if self.interval:
            count += (now - self.expires) // self.interval
            self.expires += count * self.interval
            self._schedule(max(self.clock.wait_ns(self.expires - now), MIN_REARM_NS))
        else:
            self.expires = 0
        self.fire(count)
