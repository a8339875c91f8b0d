"""eventfd(2) files: a 64-bit counter that write adds to and read takes from.

Why it is a sentry object: the counter is shared by every fd (and every process after a
fork) that holds the description, and its waiters are sandbox tasks, so it lives on the
event loop like a pipe.  One WaitQueue serves readers, writers and pollers, as Linux's
single wait queue head does (every change may matter to either side).

Linux details followed (fs/eventfd.c of 6.x, checked natively): a read needs at least 8
bytes and a write exactly 8 (EINVAL otherwise); writing 0xffffffffffffffff is EINVAL; a write that
would bring the counter to ULLONG_MAX or past it waits (EAGAIN with O_NONBLOCK);
EFD_SEMAPHORE reads return 1 and decrement; poll reports EPOLLIN while the counter is
nonzero and EPOLLOUT while a write of 1 would not block — bare IN/OUT, no RDNORM/WRNORM.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EAGAIN, EINVAL, Block, SyscallError, WaitQueue
from snakevisor.vfs.epoll import anon_inode_stat
from snakevisor.vfs.file import O_RDWR, POLLERR, POLLIN, POLLOUT, File

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

ULLONG_MAX = (1 << 64) - 1
COUNTER_SIZE = 8

#: eventfd-id values in use (Linux's eventfd_ida hands out the smallest free one)
_ids_in_use: set[int] = set()


def _alloc_id() -> int:
    n = 0
    while n in _ids_in_use:
        n += 1
    _ids_in_use.add(n)
    return n


class EventFd(File):
    """One eventfd: its counter, mode and waiters."""

    def __init__(self, count: int, semaphore: bool, nonblock: bool) -> None:
        super().__init__(O_RDWR | (os.O_NONBLOCK if nonblock else 0), "anon_inode:[eventfd]")
        self.count = count
        self.semaphore = semaphore
        self.queue = WaitQueue()  #: readers, writers and pollers
        self.id = _alloc_id()

    def __repr__(self) -> str:
        return f"EventFd(count={self.count}, semaphore={self.semaphore})"

    def _must_wait(self) -> Block:
        if self.flags & os.O_NONBLOCK:
            raise SyscallError(EAGAIN)
        return Block(queue=self.queue)

    def read(self, task: "Task", count: int) -> bytes:
        """The counter (then 0), or 1 in semaphore mode; waits while it is 0."""
        if count < COUNTER_SIZE:
            raise SyscallError(EINVAL)
        if not self.count:
            raise self._must_wait()
        value = 1 if self.semaphore else self.count
        self.count -= value
        self.queue.notify()  # writers may fit now
        return value.to_bytes(COUNTER_SIZE, "little")

    def write(self, task: "Task", data: bytes) -> int:
        """Add the 8 bytes (a native u64) to the counter; waits while it would reach
        ULLONG_MAX."""
        if len(data) != COUNTER_SIZE:
            raise SyscallError(EINVAL)
        value = int.from_bytes(data, "little")
        if value == ULLONG_MAX:
            raise SyscallError(EINVAL)
        if ULLONG_MAX - self.count <= value:
            raise self._must_wait()
        self.count += value
        self.queue.notify()
        return COUNTER_SIZE

    def lseek(self, offset: int, whence: int) -> int:
        return 0  # noop_llseek: the position stays 0

    def stat(self) -> os.stat_result:
        return anon_inode_stat()

    def poll_events(self) -> int:
        mask = 0
        if self.count:
            mask |= POLLIN
        if self.count == ULLONG_MAX:
            mask |= POLLERR
        if ULLONG_MAX - 1 > self.count:
            mask |= POLLOUT
        return mask

    def poll_queue(self) -> WaitQueue:
        return self.queue

    def fdinfo(self) -> str:
        """The lines Linux's eventfd_show_fdinfo adds to /proc/PID/fdinfo/N."""
        return (f"eventfd-count: {self.count:16x}\neventfd-id: {self.id}\n"
                f"eventfd-semaphore: {int(self.semaphore)}\n")

    def release(self) -> None:
        _ids_in_use.discard(self.id)
