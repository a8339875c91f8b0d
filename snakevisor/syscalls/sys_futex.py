"""futex(2): decoding each operation's arguments, in Linux's order of checks.

The queues, keys, atomic word updates and exit-time cleanup live in kernel/futex.py; this
module turns registers into calls on them.  Order matters for errno fidelity: the timeout
is read and validated first (EFAULT/EINVAL, for every operation that takes one), then
FUTEX_CLOCK_REALTIME is refused where Linux refuses it (ENOSYS), then the operation's own
checks run (bitset, counts, keys, the word).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

from snakevisor.kernel.errors import EAGAIN, EINVAL, ENOSYS, SyscallError
from snakevisor.kernel.futex import (
    FUTEX_BITSET_MATCH_ANY, FUTEX_CLOCK_REALTIME, FUTEX_CMP_REQUEUE, FUTEX_CMP_REQUEUE_PI,
    FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_PRIVATE_FLAG, FUTEX_REQUEUE, FUTEX_TRYLOCK_PI,
    FUTEX_UNLOCK_PI, FUTEX_WAIT, FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_WAKE,
    FUTEX_WAKE_BITSET, FUTEX_WAKE_OP, HOST_CMPXCHG, SHARED_ANON_IDENTITY, atomic_update,
    futex_table, read_u32,
)
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, u32
from snakevisor.syscalls.sys_time import CLOCK_REALTIME, NSEC, read_timespec, timespec_valid

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

#: operations whose fourth argument is a timeout (for the others it is a count)
_TIMED = frozenset({FUTEX_WAIT, FUTEX_LOCK_PI, FUTEX_LOCK_PI2, FUTEX_WAIT_BITSET,
                    FUTEX_WAIT_REQUEUE_PI})
#: the only operations FUTEX_CLOCK_REALTIME may accompany
_REALTIME_OK = frozenset({FUTEX_WAIT_BITSET, FUTEX_WAIT_REQUEUE_PI, FUTEX_LOCK_PI2})
_PI_OPS = {FUTEX_LOCK_PI: "LOCK_PI", FUTEX_UNLOCK_PI: "UNLOCK_PI", FUTEX_TRYLOCK_PI: "TRYLOCK_PI",
           FUTEX_WAIT_REQUEUE_PI: "WAIT_REQUEUE_PI", FUTEX_CMP_REQUEUE_PI: "CMP_REQUEUE_PI",
           FUTEX_LOCK_PI2: "LOCK_PI2"}

# FUTEX_WAKE_OP's encoded operation: op(3 bits, +8 = oparg is a shift) cmp(4) oparg(12) cmparg(12)
FUTEX_OP_OPARG_SHIFT = 8
_WAKE_OPS: dict[int, Callable[[int, int], int]] = {
    0: lambda old, arg: arg,  # FUTEX_OP_SET
    1: lambda old, arg: old + arg,  # FUTEX_OP_ADD
    2: lambda old, arg: old | arg,  # FUTEX_OP_OR
    3: lambda old, arg: old & ~arg,  # FUTEX_OP_ANDN
    4: lambda old, arg: old ^ arg,  # FUTEX_OP_XOR
}
_WAKE_CMPS: dict[int, Callable[[int, int], bool]] = {
    0: lambda old, arg: old == arg,  # FUTEX_OP_CMP_EQ
    1: lambda old, arg: old != arg,  # FUTEX_OP_CMP_NE
    2: lambda old, arg: old < arg,  # FUTEX_OP_CMP_LT
    3: lambda old, arg: old <= arg,  # FUTEX_OP_CMP_LE
    4: lambda old, arg: old > arg,  # FUTEX_OP_CMP_GT
    5: lambda old, arg: old >= arg,  # FUTEX_OP_CMP_GE
}

_PARTIAL = "; ".join(
    ["PI operations (LOCK_PI, LOCK_PI2, UNLOCK_PI, TRYLOCK_PI, WAIT_REQUEUE_PI, CMP_REQUEUE_PI) "
     "answer ENOSYS"]
    + ([] if HOST_CMPXCHG else
       ["WAKE_OP's operation and robust-list OWNER_DIED updates are a read then a write of the "
        "word, not atomic against another thread updating it at that instant"])
    + ([] if SHARED_ANON_IDENTITY else
       ["shared futexes in MAP_SHARED|MAP_ANONYMOUS memory do not match across fork"]))


def _realtime_ns() -> int:
    return time.clock_gettime_ns(CLOCK_REALTIME)


def _timeout(task: "Task", cmd: int, op: int, utime: int) -> tuple[bool, float] | None:
    """Read the timeout once: (on the realtime clock?, absolute expiry in seconds).

    FUTEX_WAIT's is relative to now on the monotonic clock; the others are absolute, on
    CLOCK_REALTIME when asked (always for LOCK_PI), else on CLOCK_MONOTONIC.
    """
    sec, nsec = read_timespec(task, utime)
    if not timespec_valid(sec, nsec):
        raise SyscallError(EINVAL)
    if cmd == FUTEX_WAIT:
        return False, task.kernel.now() + sec + nsec / NSEC
    return bool(cmd == FUTEX_LOCK_PI or op & FUTEX_CLOCK_REALTIME), sec + nsec / NSEC


def _deadline(task: "Task", timeout: tuple[bool, float] | None) -> float | None:
    """The expiry on the kernel's monotonic clock; a realtime expiry is re-read at every
    dispatch so a step of the wall clock moves it, as Linux's realtime hrtimers do."""
    if timeout is None:
        return None
    realtime, when = timeout
    if not realtime:
        return when
    return task.kernel.now() + (when - _realtime_ns() / NSEC)


@syscall("futex", partial=_PARTIAL)
def sys_futex(task: "Task", uaddr: int, op: int, val: int, utime: int, uaddr2: int, val3: int) -> int:
    op = u32(op)
    cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
    private = bool(op & FUTEX_PRIVATE_FLAG)
    state = task.syscall_state
    if state is not None and "timeout" in state:
        timeout = state["timeout"]  # a re-dispatched wait: the expiry was fixed at the start
    else:
        timeout = _timeout(task, cmd, op, utime) if utime and cmd in _TIMED else None
    if op & FUTEX_CLOCK_REALTIME and cmd not in _REALTIME_OK:
        raise SyscallError(ENOSYS)
    table = futex_table(task.kernel)

    if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
        bitset = FUTEX_BITSET_MATCH_ANY if cmd == FUTEX_WAIT else u32(val3)
        if not bitset:
            raise SyscallError(EINVAL)
        if task.syscall_state is None:
            task.syscall_state = {}
        task.syscall_state["timeout"] = timeout
        return table.wait(task, uaddr, private, u32(val), _deadline(task, timeout), bitset)

    if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
        bitset = FUTEX_BITSET_MATCH_ANY if cmd == FUTEX_WAKE else u32(val3)
        if not bitset:
            raise SyscallError(EINVAL)
        return table.wake(table.key(task, uaddr, private), s32(val), bitset)

    if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
        nr_wake, nr_requeue = s32(val), s32(utime)
        if nr_wake < 0 or nr_requeue < 0:
            raise SyscallError(EINVAL)
        key1 = table.key(task, uaddr, private)
        key2 = table.key(task, uaddr2, private)
        if cmd == FUTEX_CMP_REQUEUE and read_u32(task.mm, uaddr) != u32(val3):
            raise SyscallError(EAGAIN)
        return table.requeue(key1, key2, nr_wake, nr_requeue)

    if cmd == FUTEX_WAKE_OP:
        key1 = table.key(task, uaddr, private)
        key2 = table.key(task, uaddr2, private, write=True)
        return _wake_op(task, key1, key2, uaddr2, s32(val), s32(utime), u32(val3))

    if cmd in _PI_OPS:
        task.kernel.warn_once(f"futex:{_PI_OPS[cmd]}",
                              f"futex({uaddr:#x}, FUTEX_{_PI_OPS[cmd]}): priority-inheritance "
                              "futexes are not implemented -> ENOSYS")
    raise SyscallError(ENOSYS)  # also FUTEX_FD (gone since 2.6.26) and unknown commands, as Linux


def _wake_op(task: "Task", key1: object, key2: object, uaddr2: int, nr_wake: int, nr_wake2: int,
             encoded: int) -> int:
    """FUTEX_WAKE_OP: update the word at uaddr2, wake on uaddr, and on uaddr2 if the old
    value passed the comparison.  An unknown operation changes nothing (ENOSYS); an unknown
    comparison is only found after the update, which stays done (ENOSYS), as in Linux."""
    op, cmp = (encoded >> 28) & 7, (encoded >> 24) & 0xF
    oparg, cmparg = _sign12(encoded >> 12), _sign12(encoded)
    if encoded & FUTEX_OP_OPARG_SHIFT << 28:  # Linux masks a bad shift to 5 bits (and logs)
        oparg = 1 << (oparg & 31)
    if op not in _WAKE_OPS:
        raise SyscallError(ENOSYS)
    update = _WAKE_OPS[op]
    old = s32(atomic_update(task.mm, uaddr2, lambda value: update(value, oparg)))
    if cmp not in _WAKE_CMPS:
        raise SyscallError(ENOSYS)
    table = futex_table(task.kernel)
    woken = table.wake(key1, nr_wake)
    if _WAKE_CMPS[cmp](old, cmparg):
        woken += table.wake(key2, nr_wake2)
    return woken


def _sign12(x: int) -> int:
    x &= 0xFFF
    return x - 0x1000 if x & 0x800 else x


def restarts_after_handler(args: tuple) -> bool:
    """May an interrupted futex call restart after an SA_RESTART handler?  Linux restarts an
    untimed wait (ERESTARTSYS) but ends a timed one with EINTR whatever SA_RESTART says
    (its ERESTART_RESTARTBLOCK becomes EINTR whenever a handler runs; checked natively)."""
    return not args[3]
