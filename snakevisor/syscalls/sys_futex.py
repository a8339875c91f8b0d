"""futex(2): the wait/wake core; requeue and PI variants arrive with the threads issue."""
from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EINVAL, ENOSYS, SyscallError
from snakevisor.kernel.futex import (
    FUTEX_BITSET_MATCH_ANY, FUTEX_CLOCK_REALTIME, FUTEX_PRIVATE_FLAG, FUTEX_WAIT,
    FUTEX_WAIT_BITSET, FUTEX_WAKE, FUTEX_WAKE_BITSET, FutexTable,
)
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task


def _table(task: "Task") -> FutexTable:
    kernel = task.kernel
    table = getattr(kernel, "futexes", None)
    if table is None:
        table = kernel.futexes = FutexTable()
    return table


def _deadline(task: "Task", timeout: int, absolute: bool, realtime: bool) -> float | None:
    """Monotonic deadline from a timespec (relative for FUTEX_WAIT, absolute for BITSET)."""
    if timeout == 0:
        return None
    sec, nsec = struct.unpack("<qq", task.mm.read(timeout, 16))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise SyscallError(EINVAL)
    value = sec + nsec / 1e9
    if not absolute:
        return time.monotonic() + value
    now = time.time() if realtime else time.monotonic()
    return time.monotonic() + (value - now)


@syscall("futex", partial="WAIT/WAKE/WAIT_BITSET/WAKE_BITSET; REQUEUE, WAKE_OP and PI ops are ENOSYS")
def sys_futex(task: "Task", uaddr: int, op: int, val: int, timeout: int, uaddr2: int, val3: int) -> int:
    op = s32(op)
    cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    realtime = bool(op & FUTEX_CLOCK_REALTIME)
    if realtime and cmd not in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        raise SyscallError(ENOSYS)
    table = _table(task)
    if cmd == FUTEX_WAIT:
        state = task.syscall_state
        deadline = state["deadline"] if state else _deadline(task, timeout, False, realtime)
        return _wait(task, table, uaddr, val, deadline, FUTEX_BITSET_MATCH_ANY)
    if cmd == FUTEX_WAIT_BITSET:
        if val3 & 0xFFFFFFFF == 0:
            raise SyscallError(EINVAL)
        state = task.syscall_state
        deadline = state["deadline"] if state else _deadline(task, timeout, True, realtime)
        return _wait(task, table, uaddr, val, deadline, val3 & 0xFFFFFFFF)
    if cmd == FUTEX_WAKE:
        return table.wake(task, uaddr, s32(val) if s32(val) > 0 else 0)
    if cmd == FUTEX_WAKE_BITSET:
        if val3 & 0xFFFFFFFF == 0:
            raise SyscallError(EINVAL)
        return table.wake(task, uaddr, max(s32(val), 0), val3 & 0xFFFFFFFF)
    task.kernel.warn_once(f"futex:{cmd}", f"futex op {cmd} (uaddr {uaddr:#x}) not implemented -> ENOSYS")
    raise SyscallError(ENOSYS)


def _wait(task: "Task", table: FutexTable, uaddr: int, val: int, deadline: float | None, bitset: int) -> int:
    try:
        return table.wait(task, uaddr, val, deadline, bitset)
    finally:
        if task.syscall_state is not None:
            task.syscall_state["deadline"] = deadline
