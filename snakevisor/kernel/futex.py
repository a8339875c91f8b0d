"""Futexes: wait queues keyed by address, parked tasks woken through the event loop.

Private futexes are keyed by (address space, address); shared ones by the same key for now
(shared keys across processes by backing page arrive with the processes issue).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EAGAIN, EINVAL, ETIMEDOUT, Block, SyscallError, WaitQueue

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

FUTEX_WAIT, FUTEX_WAKE, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 3, 4, 5
FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 9, 10
FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME = 128, 256
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF


class FutexTable:
    """All futex queues of one kernel: key -> list of (task, bitset)."""

    def __init__(self) -> None:
        self.queues: dict[tuple[int, int], list[tuple["Task", int]]] = {}

    def key(self, task: "Task", addr: int) -> tuple[int, int]:
        return (id(task.mm), addr)

    def wait(self, task: "Task", addr: int, expected: int, deadline: float | None, bitset: int) -> int:
        """FUTEX_WAIT(_BITSET): park while *addr == expected; 0 when woken."""
        state = task.syscall_state
        if state is not None and state.get("futex") == addr:
            if state.get("woken"):
                return 0
            if deadline is not None and time.monotonic() >= deadline:
                self._forget(task, addr)
                raise SyscallError(ETIMEDOUT)
            raise Block(deadline=deadline)
        if addr % 4:
            raise SyscallError(EINVAL)
        value = int.from_bytes(task.mm.read(addr, 4), "little")
        if value != expected & 0xFFFFFFFF:
            raise SyscallError(EAGAIN)
        if deadline is not None and time.monotonic() >= deadline:
            raise SyscallError(ETIMEDOUT)
        task.syscall_state = {"futex": addr, "woken": False}
        self.queues.setdefault(self.key(task, addr), []).append((task, bitset))
        raise Block(deadline=deadline)

    def _forget(self, task: "Task", addr: int) -> None:
        key = self.key(task, addr)
        waiters = self.queues.get(key, [])
        waiters[:] = [(t, b) for t, b in waiters if t is not task]
        if not waiters:
            self.queues.pop(key, None)

    def wake(self, task: "Task", addr: int, count: int, bitset: int = FUTEX_BITSET_MATCH_ANY) -> int:
        """Wake up to `count` waiters whose bitset matches; returns how many."""
        if addr % 4:
            raise SyscallError(EINVAL)
        key = self.key(task, addr)
        waiters = self.queues.get(key)
        if not waiters:
            return 0
        woken = 0
        keep = []
        for waiter, bits in waiters:
            if woken < count and bits & bitset and waiter.alive:
                if waiter.syscall_state is not None:
                    waiter.syscall_state["woken"] = True
                waiter.kernel.wake(waiter)
                woken += 1
            elif waiter.alive:
                keep.append((waiter, bits))
        if keep:
            self.queues[key] = keep
        else:
            del self.queues[key]
        return woken


__all__ = ["FutexTable", "WaitQueue"]
