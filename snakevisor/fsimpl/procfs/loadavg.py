"""The sandbox's load average: Linux's fixed-point exponential averages of the number of
runnable threads, sampled every LOAD_FREQ seconds (kernel/sched/loadavg.c).

Why the sentry's own figure: a load average is about the sandbox's threads, which the
sentry knows exactly (running application code or waiting to be served = runnable;
parked in a system call = sleeping); the host's figure would describe every process on
the machine.  The samples are taken by a timer on the event loop (Kernel.call_at).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel

FSHIFT = 11
FIXED_1 = 1 << FSHIFT
#: 1/exp(5s/1min), 1/exp(5s/5min), 1/exp(5s/15min) in fixed point
EXP = (1884, 2014, 2037)
LOAD_FREQ = 5.0  # seconds between samples (Linux: 5 s + 1 tick)
SI_LOAD_SHIFT = 16  # sysinfo(2)'s loads are in 1/65536ths
#: the most missed periods replayed after the loop was busy (beyond, the averages are
#: all at the current count anyway: EXP_15^2000 ~ 0)
MAX_CATCH_UP = 2000


class _Handle(Protocol):
    def cancel(self) -> None: ...


def calc_load(load: int, exp: int, active: int) -> int:
    """One step of the average (`active` in fixed point too), rounding up while the load
    rises, as Linux does."""
    newload = load * exp + active * (FIXED_1 - exp)
    if active >= load:
        newload += FIXED_1 - 1
    return newload // FIXED_1


def runnable_tasks(kernel: "Kernel") -> int:
    """Live threads that are not parked in a system call nor stopped by job control."""
    count = 0
    for task in kernel.tasks.values():
        if task.alive and task.pending is None and task.frozen is None and not task.tg.stopped:
            count += 1
    return count


class LoadAverage:
    """avenrun[3] for one sandbox.  start() samples every LOAD_FREQ seconds from the loop;
    `count` says how many threads are runnable (runnable_tasks by default)."""

    def __init__(self, kernel: "Kernel", count: Callable[[], int] | None = None) -> None:
        self.kernel = kernel
        self.count = count or (lambda: runnable_tasks(kernel))
        self.avenrun = [0, 0, 0]  #: fixed point, FSHIFT fraction bits
        self._deadline = 0.0
        self._handle: _Handle | None = None

    def start(self) -> None:
        self._deadline = self.kernel.now() + LOAD_FREQ
        self._handle = self.kernel.call_at(self._deadline, self._tick)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def sample(self, active: int, periods: int = 1) -> None:
        """Fold `active` runnable threads into the averages, once per elapsed period."""
        active *= FIXED_1
        for _ in range(min(periods, MAX_CATCH_UP)):
            self.avenrun = [calc_load(load, exp, active) for load, exp in zip(self.avenrun, EXP)]

    def _tick(self) -> None:
        """The timer callback: one sample per LOAD_FREQ elapsed (several if the loop was
        late, as Linux's NO_HZ catch-up applies the same count), then the next timer."""
        now = self.kernel.now()
        periods = 1 + max(0, int((now - self._deadline) // LOAD_FREQ))
        self.sample(self.count(), periods)
        self._deadline += periods * LOAD_FREQ
        self._handle = self.kernel.call_at(self._deadline, self._tick)

    def text(self) -> str:
        """The three figures as /proc/loadavg prints them ("0.42 0.17 0.05"): rounded to
        hundredths by adding FIXED_1/200 first."""
        parts = []
        for load in self.avenrun:
            load += FIXED_1 // 200
            parts.append(f"{load >> FSHIFT}.{((load & (FIXED_1 - 1)) * 100) >> FSHIFT:02d}")
        return " ".join(parts)

    def sysinfo_loads(self) -> tuple[int, int, int]:
        """The figures in sysinfo(2)'s unit (1 << SI_LOAD_SHIFT per runnable thread)."""
        shift = SI_LOAD_SHIFT - FSHIFT
        return (self.avenrun[0] << shift, self.avenrun[1] << shift, self.avenrun[2] << shift)
