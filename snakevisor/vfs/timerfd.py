"""timerfd files (timerfd_create(2)): a timer whose expirations are read as a count.

Why this shape: the countdown is kernel/timers.py's Timer on a wall clock, run by the
event loop (kernel.call_at); each expiry adds to `ticks` and wakes the file's queue, so
read, poll and epoll see the count.  The loop may reach a due timer a little late, so
every look at the file first counts the expirations that are already due (`catch_up`):
a timer armed in the past reads as expired at once, as Linux's hrtimer fires at once.

Linux details followed (fs/timerfd.c, checked natively): read needs 8 bytes (EINVAL),
returns the expirations since the last read and clears them, waits while there are none
(EAGAIN with O_NONBLOCK); settime resets the count; gettime and settime's old value
report the interval even while the timer is disarmed; poll is bare EPOLLIN;
TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE) sets the count, EINVAL for 0.
TFD_TIMER_CANCEL_ON_SET is accepted and recorded: the sandbox cannot set the realtime
clock, so the discontinuity that would make read fail with ECANCELED never comes from
inside; a host clock change is not noticed (reads keep counting).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EAGAIN, EINVAL, Block, SyscallError, WaitQueue
from snakevisor.kernel.timers import NSEC, Timer, WallClock
from snakevisor.vfs.epoll import anon_inode_stat
from snakevisor.vfs.file import O_RDWR, POLLIN, File

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task

TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET = 1, 2
TFD_IOC_SET_TICKS = 0x40085400  # _IOW('T', 0, u64)
TICKS_SIZE = 8


class TimerFd(File):
    """One timerfd: its Timer, the expirations not yet read, and its waiters."""

    def __init__(self, kernel: "Kernel", clockid: int, nonblock: bool) -> None:
        super().__init__(O_RDWR | (os.O_NONBLOCK if nonblock else 0), "anon_inode:[timerfd]")
        self.clockid = clockid
        self.timer = Timer(kernel, WallClock(clockid), self._expired)
        self.interval = 0  #: ns; kept while disarmed too (gettime reports it)
        self.ticks = 0  #: expirations since the last read
        self.settime_flags = 0  #: the last settime's flags (fdinfo)
        self.queue = WaitQueue()  #: readers and pollers

    def __repr__(self) -> str:
        return f"TimerFd(clock={self.clockid}, ticks={self.ticks}, expires={self.timer.expires})"

    def _expired(self, count: int) -> None:
        self.ticks += count
        self.queue.notify()

    def catch_up(self) -> None:
        """Count expirations that are due but the loop has not run yet (and re-arm a
        periodic timer after them), so what the application sees never lags the clock."""
        timer = self.timer
        if not timer.armed:
            return
        now = timer.clock.now()
        if now < timer.expires:
            return
        count = 1
        if timer.interval:
            count += (now - timer.expires) // timer.interval
            timer.arm(timer.expires + count * timer.interval, timer.interval)
        else:
            timer.disarm()
        self._expired(count)

    # -- settime / gettime ---------------------------------------------------------------
    def gettime(self) -> tuple[int, int]:
        """(value, interval) in ns: the time to the next expiration, 0 when disarmed."""
        self.catch_up()
        timer = self.timer
        value = max(0, timer.expires - timer.clock.now()) if timer.armed else 0
        return value, self.interval

    def settime(self, flags: int, value: int, interval: int) -> tuple[int, int]:
        """Arm (value > 0: relative, or absolute on the file's clock with
        TFD_TIMER_ABSTIME) or disarm; the count restarts.  Returns the old setting."""
        old = self.gettime()
        self.timer.disarm()
        self.ticks = 0
        self.interval = interval
        self.settime_flags = flags
        if value:
            start = 0 if flags & TFD_TIMER_ABSTIME else self.timer.clock.now()
            self.timer.arm(start + value, interval)
            self.catch_up()  # already due: expired now, as hrtimer_start fires at once
        return old

    # -- the file ------------------------------------------------------------------------
    def read(self, task: "Task", count: int) -> bytes:
        if count < TICKS_SIZE:
            raise SyscallError(EINVAL)
        self.catch_up()
        if not self.ticks:
            if self.flags & os.O_NONBLOCK:
                raise SyscallError(EAGAIN)
            raise Block(queue=self.queue)
        ticks, self.ticks = self.ticks, 0
        return ticks.to_bytes(TICKS_SIZE, "little")

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        if request == TFD_IOC_SET_TICKS:
            ticks = task.tg.mm.read_u64(arg)
            if not ticks:
                raise SyscallError(EINVAL)
            self.ticks = ticks
            self.queue.notify()
            return 0
        return super().ioctl(task, request, arg)

    def lseek(self, offset: int, whence: int) -> int:
        return 0  # noop_llseek

    def stat(self) -> os.stat_result:
        return anon_inode_stat()

    def poll_events(self) -> int:
        self.catch_up()
        return POLLIN if self.ticks else 0

    def poll_queue(self) -> WaitQueue:
        return self.queue

    def fdinfo(self) -> str:
        """The lines Linux's timerfd_show adds to /proc/PID/fdinfo/N."""
        value, interval = self.gettime()
        return (f"clockid: {self.clockid}\nticks: {self.ticks}\n"
                f"settime flags: 0{self.settime_flags:o}\n"
                f"it_value: ({value // NSEC}, {value % NSEC})\n"
                f"it_interval: ({interval // NSEC}, {interval % NSEC})\n")

    def release(self) -> None:
        self.timer.disarm()
