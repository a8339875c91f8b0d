"""futex(2) against fake tasks: several threads of one address space (and a second process
for shared keys), a kernel that records wakes, and a clock the test moves.

Why this shape: futex semantics are about *other* threads (who is woken, who is moved,
what a timeout does to a parked waiter), which the single-threaded differential C test
cannot see yet.  Each expectation here was checked against Linux (counts that include
requeued waiters, FUTEX_WAKE of 0 waking one, the private/shared key split, WAKE_OP's
handling of unknown operations and comparisons) — see tests/c/futex.c for the natively
observable ones.
"""
from __future__ import annotations

import errno
import struct
from types import SimpleNamespace
from typing import Any

import pytest

from snakevisor.kernel import futex as kfutex
from snakevisor.kernel.errors import Block, SyscallError
from snakevisor.kernel.futex import (
    FUTEX_OWNER_DIED, FUTEX_WAITERS, ROBUST_LIST_LIMIT, SHARED_ANON_IDENTITY, atomic_update,
    futex_exit, futex_table,
)
from snakevisor.kernel.task import Task, ThreadGroup
from snakevisor.mm.address_space import MAP_SHARED, AddressSpace, Vma
from snakevisor.syscalls import sys_futex
from tests.unit.conftest import MEM_BASE, MEM_SIZE, FakeProcess

WAIT, WAKE, FD, REQUEUE, CMP_REQUEUE, WAKE_OP = 0, 1, 2, 3, 4, 5
LOCK_PI, UNLOCK_PI, TRYLOCK_PI, WAIT_BITSET, WAKE_BITSET = 6, 7, 8, 9, 10
WAIT_REQUEUE_PI, CMP_REQUEUE_PI, LOCK_PI2 = 11, 12, 13
PRIVATE, REALTIME = 128, 256
U64 = (1 << 64) - 1
BAD = 8  # unmapped


def wake_op(op: int, oparg: int, cmp: int, cmparg: int, shift: bool = False) -> int:
    """FUTEX_OP() of linux/futex.h."""
    return ((op | (8 if shift else 0)) & 0xF) << 28 | (cmp & 0xF) << 24 | (oparg & 0xFFF) << 12 | cmparg & 0xFFF


class Sim:
    """One kernel, one address space, `n` threads; calls behave as the kernel runs them."""

    def __init__(self, threads: int = 4) -> None:
        self.p = FakeProcess(None)
        self.kernel = self.p.kernel
        self.clock = 1000.0
        self.kernel.now = lambda: self.clock  # type: ignore[method-assign]
        self.woken: list[Task] = []
        self.kernel.wake = self.woken.append  # type: ignore[attr-defined]
        self.tasks = [self.p.task]
        for tid in range(2, threads + 1):
            task = Task(self.kernel, tid, self.p.tg, None)  # type: ignore[arg-type]
            self.p.tg.tasks.append(task)
            self.tasks.append(task)
        self.mm = self.p.tg.mm
        self.mm.users = threads
        self.pending: dict[Task, tuple] = {}
        self.table = futex_table(self.kernel)

    def word(self, value: int = 0) -> int:
        return self.p.put(struct.pack("<I", value & 0xFFFFFFFF))

    def get(self, addr: int) -> int:
        return struct.unpack("<I", self.p.get(addr, 4))[0]

    def set(self, addr: int, value: int) -> None:
        self.p.host.write(addr, struct.pack("<I", value & 0xFFFFFFFF))

    def timespec(self, sec: int, nsec: int = 0) -> int:
        return self.p.put(struct.pack("<qq", sec, nsec))

    def futex(self, task: Task, uaddr: int, op: int, val: int = 0, utime: int = 0,
              uaddr2: int = 0, val3: int = 0) -> Any:
        """-errno, the result, or the Block the task is parked with."""
        args = tuple(a & U64 for a in (uaddr, op, val, utime, uaddr2, val3))
        return self._dispatch(task, args)

    def resume(self, task: Task) -> Any:
        """Dispatch a parked task's call again (woken, timer fired, or spuriously)."""
        return self._dispatch(task, self.pending.pop(task))

    def _dispatch(self, task: Task, args: tuple) -> Any:
        try:
            ret = sys_futex.sys_futex(task, *args)
        except SyscallError as e:
            task.syscall_state = None
            return -e.errno
        except Block as b:
            self.pending[task] = args
            return b
        task.syscall_state = None
        return ret

    def park(self, task: Task, uaddr: int, op: int = WAIT | PRIVATE, val: int = 0, **kw: int) -> Block:
        block = self.futex(task, uaddr, op, val, **kw)
        assert isinstance(block, Block), block
        return block


# ------------------------------------------------------------------------------ wait / wake

def test_wait_checks_the_word_then_parks_until_woken() -> None:
    s = Sim()
    t1, t2 = s.tasks[:2]
    w = s.word(5)
    assert s.futex(t1, w, WAIT | PRIVATE, 4) == -errno.EAGAIN
    assert isinstance(s.futex(t1, w, WAIT | PRIVATE, 5 | 1 << 32), Block)  # high bits ignored
    assert isinstance(s.resume(t1), Block)  # a spurious re-dispatch parks again
    assert s.futex(t2, w, WAKE | PRIVATE, 1) == 1
    assert s.woken == [t1]
    assert s.resume(t1) == 0
    assert s.futex(t2, w, WAKE | PRIVATE, 1) == 0  # nobody left
    assert s.table.queues == {} and s.table.parked == {}


def test_wake_counts_in_fifo_order_and_zero_wakes_one() -> None:
    s = Sim(6)
    w = s.word()
    waiters = s.tasks[1:]
    for t in waiters:
        s.park(t, w)
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, 2) == 2
    assert s.woken == waiters[:2]
    # Linux counts after each wake: 0 and negative counts still wake one waiter
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, 0) == 1
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, -1) == 1
    assert s.woken == waiters[:4]
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, 0x7FFFFFFF) == 1
    assert s.woken == waiters
    assert all(s.resume(t) == 0 for t in waiters)


def test_wake_skips_dead_waiters() -> None:
    s = Sim()
    w = s.word()
    s.park(s.tasks[1], w)
    s.park(s.tasks[2], w)
    s.tasks[1].alive = False
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, 1) == 1
    assert s.woken == [s.tasks[2]]
    assert s.table.queues == {} and s.tasks[1] not in s.table.parked


def test_private_and_shared_keys_do_not_meet_on_private_memory() -> None:
    """Linux marks a shared key on anonymous private memory FUT_OFF_MMSHARED."""
    s = Sim()
    w = s.word()
    s.park(s.tasks[1], w, WAIT | PRIVATE)
    s.park(s.tasks[2], w, WAIT)
    assert s.futex(s.tasks[0], w, WAKE, 10) == 1
    assert s.woken == [s.tasks[2]]
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, 10) == 1
    assert s.woken == [s.tasks[2], s.tasks[1]]


def _second_process(s: Sim, pid: int) -> Task:
    """Another process of the same kernel with its own (empty) address space."""
    mm = AddressSpace(s.p.host, [])  # type: ignore[arg-type]
    tg = ThreadGroup(s.kernel, pid, s.p.tg, mm, None, None)  # type: ignore[arg-type]
    task = Task(s.kernel, pid, tg, None)  # type: ignore[arg-type]
    tg.tasks.append(task)
    return task


def _map_shared(mm: AddressSpace, addr: int, file: object | None, offset: int) -> Vma:
    mm._carve(addr, addr + 4096)
    vma = Vma(addr, addr + 4096, 3, MAP_SHARED, file, offset)  # type: ignore[arg-type]
    mm._insert(vma)
    return vma


def test_shared_file_mappings_meet_across_processes_by_inode_and_offset() -> None:
    s = Sim()
    other = _second_process(s, 9)
    inode = SimpleNamespace(st_dev=3, st_ino=77)
    file_a = SimpleNamespace(stat=lambda: inode, refs=0, release=lambda: None)
    file_b = SimpleNamespace(stat=lambda: inode, refs=0, release=lambda: None)  # another open of the same file
    a = MEM_BASE + MEM_SIZE - 8 * 4096
    b = MEM_BASE + MEM_SIZE - 4 * 4096
    _map_shared(s.mm, a, file_a, 8192)  # file page 2 at a
    _map_shared(other.mm, b + 4096, file_b, 4096)  # file page 1 at b+4096 ...
    _map_shared(other.mm, b + 8192, file_b, 8192)  # ... and page 2 at b+8192
    s.park(s.tasks[1], a + 12)
    s.park(s.tasks[2], a + 12, WAIT)
    # the private waiter is keyed by its address space; the shared one by (inode, offset)
    assert s.futex(other, b + 8192 + 12, WAKE, 10) == 1
    assert s.woken == [s.tasks[2]]
    assert s.futex(other, b + 4096 + 12, WAKE, 10) == 0  # another page of the file
    assert s.futex(other, b + 8192 + 12, WAKE | PRIVATE, 10) == 0
    assert s.futex(s.tasks[0], a + 12, WAKE | PRIVATE, 10) == 1


def test_shared_op_on_private_memory_stays_per_address_space() -> None:
    s = Sim()
    other = _second_process(s, 9)
    other.mm._insert(Vma(MEM_BASE, MEM_BASE + MEM_SIZE, 3, 0x2))  # a "forked" private copy
    w = s.word()
    s.park(s.tasks[1], w, WAIT)
    assert s.futex(other, w, WAKE, 10) == 0
    assert s.futex(s.tasks[0], w, WAKE, 10) == 1


def test_shared_anonymous_memory_key() -> None:
    s = Sim()
    other = _second_process(s, 9)
    addr = MEM_BASE + MEM_SIZE - 4096
    vma_a = _map_shared(s.mm, addr, None, 0)
    vma_b = _map_shared(other.mm, addr, None, 0)
    s.park(s.tasks[1], addr + 4, WAIT)
    if not SHARED_ANON_IDENTITY:
        # no identity to share yet: the object is this address space (correct until fork)
        assert s.futex(other, addr + 4, WAKE, 1) == 0
        assert s.futex(s.tasks[0], addr + 4, WAKE, 1) == 1
        return
    shared = object()
    vma_a.shared_id = vma_b.shared_id = shared  # type: ignore[attr-defined]
    s.table.cancel(s.tasks[1])
    s.pending.clear()
    s.park(s.tasks[1], addr + 4, WAIT)
    assert s.futex(other, addr + 4, WAKE, 1) == 1


def test_key_errors_follow_linux() -> None:
    s = Sim()
    t = s.tasks[0]
    w = s.word()
    assert s.futex(t, w + 1, WAIT | PRIVATE, 0) == -errno.EINVAL
    assert s.futex(t, w + 2, WAKE | PRIVATE, 1) == -errno.EINVAL
    assert s.futex(t, BAD, WAIT | PRIVATE, 0) == -errno.EFAULT  # reading the word
    assert s.futex(t, BAD + 1, WAIT | PRIVATE, 0) == -errno.EINVAL  # alignment comes first
    # a private key needs no mapping (access_ok only); a shared key pins the page
    assert s.futex(t, BAD, WAKE | PRIVATE, 1) == 0
    assert s.futex(t, BAD, WAKE, 1) == -errno.EFAULT
    assert s.futex(t, 0x7FFFFFFFF000, WAKE | PRIVATE, 1) == 0
    assert s.futex(t, 0x7FFFFFFFF004, WAKE | PRIVATE, 1) == -errno.EFAULT
    assert s.futex(t, 0xFFFF800000000000, WAKE | PRIVATE, 1) == -errno.EFAULT


# ------------------------------------------------------------------------------ requeue

def test_requeue_counts_woken_plus_requeued() -> None:
    s = Sim(6)
    w1, w2 = s.word(), s.word()
    waiters = s.tasks[1:]
    for t in waiters:
        s.park(t, w1)
    assert s.futex(s.tasks[0], w1, REQUEUE | PRIVATE, 1, 2, w2) == 3
    assert s.woken == waiters[:1]
    assert s.resume(waiters[0]) == 0
    # the two moved ones now wait on w2 and are still parked
    assert isinstance(s.resume(waiters[1]), Block)
    assert s.futex(s.tasks[0], w2, WAKE | PRIVATE, 10) == 2
    assert s.woken == waiters[:3]
    assert s.resume(waiters[1]) == 0 and s.resume(waiters[2]) == 0
    assert s.futex(s.tasks[0], w1, WAKE | PRIVATE, 10) == 2  # the rest stayed
    assert s.woken == waiters


def test_requeue_limits_and_invalid_counts() -> None:
    s = Sim(4)
    w1, w2 = s.word(), s.word()
    for t in s.tasks[1:]:
        s.park(t, w1)
    t0 = s.tasks[0]
    assert s.futex(t0, w1, REQUEUE | PRIVATE, 0, 0, w2) == 0  # unlike WAKE, 0 means none
    assert s.futex(t0, w1, REQUEUE | PRIVATE, 0, 1, w2) == 1  # requeued only
    assert s.woken == []
    assert s.futex(t0, w1, REQUEUE | PRIVATE, -1, 1, w2) == -errno.EINVAL
    assert s.futex(t0, w1, REQUEUE | PRIVATE, 1, -1, w2) == -errno.EINVAL
    assert s.futex(t0, w1, REQUEUE | PRIVATE, 1, 1, w2 + 2) == -errno.EINVAL
    assert s.futex(t0, w1, WAKE | PRIVATE, 10) == 2
    assert s.futex(t0, w2, WAKE | PRIVATE, 10) == 1


def test_requeue_onto_the_same_futex_keeps_the_order() -> None:
    s = Sim(4)
    w = s.word()
    for t in s.tasks[1:]:
        s.park(t, w)
    assert s.futex(s.tasks[0], w, REQUEUE | PRIVATE, 0, 2, w) == 2
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, 1) == 1
    assert s.woken == [s.tasks[1]]


def test_cmp_requeue_checks_the_word() -> None:
    s = Sim(5)
    w1, w2 = s.word(7), s.word()
    for t in s.tasks[1:]:
        s.park(t, w1, val=7)
    t0 = s.tasks[0]
    assert s.futex(t0, w1, CMP_REQUEUE | PRIVATE, 1, 1, w2, 6) == -errno.EAGAIN
    assert s.woken == [] and len(s.table.queues[("private", s.mm, w1)]) == 4
    assert s.futex(t0, BAD, CMP_REQUEUE | PRIVATE, 1, 1, w2, 7) == -errno.EFAULT
    assert s.futex(t0, w1, CMP_REQUEUE | PRIVATE, -1, 1, w2, 6) == -errno.EINVAL  # before the compare
    assert s.futex(t0, w1, CMP_REQUEUE | PRIVATE, 1, 2, w2, 7) == 3
    assert s.woken == [s.tasks[1]]
    assert s.futex(t0, w2, WAKE | PRIVATE, 10) == 2
    assert s.futex(t0, w1, WAKE | PRIVATE, 10) == 1


def test_a_requeued_waiter_times_out_from_its_new_queue() -> None:
    s = Sim()
    w1, w2 = s.word(), s.word()
    t = s.tasks[1]
    s.park(t, w1, WAIT | PRIVATE, 0, utime=s.timespec(2))
    assert s.futex(s.tasks[0], w1, REQUEUE | PRIVATE, 0, 1, w2) == 1
    s.clock += 3
    assert s.resume(t) == -errno.ETIMEDOUT
    assert s.table.queues == {} and s.table.parked == {}


# ------------------------------------------------------------------------------ wake_op

OPS = [  # (op, oparg, shift, old, new)
    (0, 9, False, 5, 9),  # SET
    (1, 3, False, 5, 8),  # ADD
    (1, -1, False, 0, 0xFFFFFFFF),  # ADD of a sign-extended oparg, wrapping
    (2, 0x30, False, 0x0F, 0x3F),  # OR
    (3, 0x3, False, 0x0F, 0x0C),  # ANDN
    (4, 0xFF, False, 0x0F, 0xF0),  # XOR
    (0, 4, True, 0, 0x10),  # SET 1 << 4
    (2, 31, True, 1, 0x80000001),  # OR 1 << 31
    (2, 40, True, 0, 0x100),  # a bad shift is masked to 5 bits
    (2, -1, True, 0, 0x80000000),
]


@pytest.mark.parametrize("op,oparg,shift,old,new", OPS)
def test_wake_op_operations(op: int, oparg: int, shift: bool, old: int, new: int) -> None:
    s = Sim()
    w1, w2 = s.word(), s.word(old)
    encoded = wake_op(op, oparg, 1, 0x7FF, shift)  # CMP_NE with a value none of the olds has
    assert s.futex(s.tasks[0], w1, WAKE_OP | PRIVATE, 1, 1, w2, encoded) == 0
    assert s.get(w2) == new


CMPS = [  # (cmp, cmparg, old, wakes)  comparisons are signed
    (0, 5, 5, True), (0, 5, 6, False),  # EQ
    (1, 5, 5, False), (1, 5, 6, True),  # NE
    (2, 0, -1, True), (2, 0, 0, False), (2, -2, -1, False),  # LT
    (3, 0, 0, True), (3, 0, 1, False),  # LE
    (4, -1, 0, True), (4, 0, 0, False),  # GT
    (5, 0, 0, True), (5, 0, -1, False),  # GE
    (2, 0x7FF, 0x800, False), (4, -2048, -2049, False),  # 12-bit cmparg range ends
]


@pytest.mark.parametrize("cmp,cmparg,old,wakes", CMPS)
def test_wake_op_comparisons(cmp: int, cmparg: int, old: int, wakes: bool) -> None:
    s = Sim(5)
    w1, w2 = s.word(), s.word(old)
    s.park(s.tasks[1], w1)
    s.park(s.tasks[2], w1)
    s.park(s.tasks[3], w2, val=old)
    s.park(s.tasks[4], w2, val=old)
    encoded = wake_op(1, 0, cmp, cmparg)  # ADD 0: the word keeps its value
    assert s.futex(s.tasks[0], w1, WAKE_OP | PRIVATE, 1, 2, w2, encoded) == (3 if wakes else 1)
    assert s.woken == [s.tasks[1]] + ([s.tasks[3], s.tasks[4]] if wakes else [])
    assert s.get(w2) == old & 0xFFFFFFFF


def test_wake_op_counts_and_errors() -> None:
    s = Sim(5)
    w1, w2 = s.word(), s.word(0)
    for t in s.tasks[1:3]:
        s.park(t, w1)
    for t in s.tasks[3:]:
        s.park(t, w2)
    t0 = s.tasks[0]
    # nr_wake 0 still wakes one on each side, as Linux counts after waking
    assert s.futex(t0, w1, WAKE_OP | PRIVATE, 0, 0, w2, wake_op(1, 1, 0, 0)) == 2
    assert s.get(w2) == 1
    # unknown operation: nothing changes; unknown comparison: the update stays done
    assert s.futex(t0, w1, WAKE_OP | PRIVATE, 1, 1, w2, wake_op(5, 1, 0, 0)) == -errno.ENOSYS
    assert s.get(w2) == 1
    assert s.futex(t0, w1, WAKE_OP | PRIVATE, 1, 1, w2, wake_op(1, 1, 6, 0)) == -errno.ENOSYS
    assert s.get(w2) == 2
    assert len(s.woken) == 2
    assert s.futex(t0, w1, WAKE_OP | PRIVATE, 1, 1, w2 + 1, 0) == -errno.EINVAL
    assert s.futex(t0, w1 + 1, WAKE_OP | PRIVATE, 1, 1, w2, 0) == -errno.EINVAL
    assert s.futex(t0, w1, WAKE_OP | PRIVATE, 1, 1, BAD, 0) == -errno.EFAULT
    assert s.futex(t0, w1, WAKE_OP | PRIVATE, 1, 1, BAD, wake_op(7, 0, 0, 0)) == -errno.ENOSYS
    assert s.futex(t0, BAD, WAKE_OP | PRIVATE, 1, 1, w2, 0) == 0  # private uaddr: no pinning
    assert s.futex(t0, BAD, WAKE_OP, 1, 1, w2, 0) == -errno.EFAULT
    assert len(s.woken) == 2


def test_wake_op_needs_a_writable_second_word() -> None:
    s = Sim()
    ro = MEM_BASE + MEM_SIZE - 4096
    s.mm._carve(ro, ro + 4096)
    s.mm._insert(Vma(ro, ro + 4096, 1, 0x2))  # PROT_READ
    w1 = s.word()
    assert s.futex(s.tasks[0], w1, WAKE_OP | PRIVATE, 1, 1, ro, 0) == -errno.EFAULT
    assert s.futex(s.tasks[0], w1, WAKE_OP, 1, 1, ro, 0) == -errno.EFAULT
    assert s.futex(s.tasks[0], ro, WAKE, 1) == 0  # a shared WAKE only reads


class RacingHost:
    """A host with an atomic cmpxchg32, and another 'thread' that adds 100 to the word
    between our read and our first compare-and-exchange."""

    def __init__(self, host: Any) -> None:
        self.host = host
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.host, name)

    def cmpxchg32(self, addr: int, expected: int, new: int) -> int:
        self.attempts += 1
        seen = struct.unpack("<I", self.host.read(addr, 4))[0]
        if self.attempts == 1:
            seen += 100
            self.host.write(addr, struct.pack("<I", seen))
        if seen == expected:
            self.host.write(addr, struct.pack("<I", new))
        return seen


def test_atomic_update_retries_when_the_word_changed() -> None:
    s = Sim()
    w = s.word(5)
    s.mm.host = RacingHost(s.mm.host)
    assert atomic_update(s.mm, w, lambda v: v + 1) == 105
    assert s.get(w) == 106  # neither update lost
    assert s.mm.host.attempts == 2


# ------------------------------------------------------------------------------ bitsets

def test_bitsets_select_waiters() -> None:
    s = Sim(5)
    w = s.word()
    for t, bits in zip(s.tasks[1:], (1, 2, 3, 0xFFFFFFFF)):
        s.park(t, w, WAIT_BITSET | PRIVATE, val3=bits)
    t0 = s.tasks[0]
    assert s.futex(t0, w, WAKE_BITSET | PRIVATE, 10, val3=2) == 3
    assert s.woken == s.tasks[2:]
    assert s.futex(t0, w, WAKE_BITSET | PRIVATE, 10, val3=4) == 0
    assert s.futex(t0, w, WAKE | PRIVATE, 10) == 1  # FUTEX_WAKE matches any bitset
    assert s.futex(t0, w, WAIT_BITSET | PRIVATE, 0, val3=0) == -errno.EINVAL
    assert s.futex(t0, w, WAKE_BITSET | PRIVATE, 1, val3=0) == -errno.EINVAL
    assert s.futex(t0, w + 1, WAKE_BITSET | PRIVATE, 1, val3=0) == -errno.EINVAL


# ------------------------------------------------------------------------------ timeouts

def test_relative_timeout_is_fixed_at_the_start() -> None:
    s = Sim()
    t = s.tasks[1]
    w = s.word()
    block = s.park(t, w, WAIT | PRIVATE, 0, utime=s.timespec(2, 500_000_000))
    assert block.deadline == 1002.5
    s.clock += 1
    assert s.resume(t).deadline == 1002.5  # not restarted by a spurious wake
    s.clock = 1002.5
    assert s.resume(t) == -errno.ETIMEDOUT
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, 1) == 0


def test_bitset_timeouts_are_absolute_on_the_chosen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Sim()
    w = s.word()
    assert s.park(s.tasks[1], w, WAIT_BITSET | PRIVATE, 0, utime=s.timespec(1005),
                  val3=-1).deadline == 1005.0
    monkeypatch.setattr(sys_futex, "_realtime_ns", lambda: 1_700_000_000 * 10**9)
    t = s.tasks[2]
    block = s.park(t, w, WAIT_BITSET | PRIVATE | REALTIME, 0, utime=s.timespec(1_700_000_010), val3=-1)
    assert block.deadline == 1010.0
    # the wall clock steps forward by 8 s: the realtime expiry comes 8 s sooner
    monkeypatch.setattr(sys_futex, "_realtime_ns", lambda: 1_700_000_008 * 10**9)
    assert s.resume(t).deadline == 1002.0


def test_expired_timeouts_and_bad_timespecs() -> None:
    s = Sim()
    t = s.tasks[0]
    w = s.word(3)
    past = s.timespec(0, 1)
    assert s.futex(t, w, WAIT_BITSET | PRIVATE, 2, past, val3=-1) == -errno.EAGAIN  # word first
    assert s.futex(t, w, WAIT_BITSET | PRIVATE, 3, past, val3=-1) == -errno.ETIMEDOUT
    assert s.futex(t, w, WAIT | PRIVATE, 3, s.timespec(0, 0)) == -errno.ETIMEDOUT
    assert s.futex(t, w, WAIT | PRIVATE, 3, s.timespec(-1, 0)) == -errno.EINVAL
    assert s.futex(t, w, WAIT | PRIVATE, 3, s.timespec(0, 1_000_000_000)) == -errno.EINVAL
    assert s.futex(t, w, WAIT | PRIVATE, 3, BAD) == -errno.EFAULT
    assert s.futex(t, w + 1, WAIT | PRIVATE, 3, s.timespec(-1)) == -errno.EINVAL
    assert s.futex(t, w, WAIT_BITSET | PRIVATE, 3, BAD, val3=0) == -errno.EFAULT  # timeout first
    assert s.table.queues == {}


def test_realtime_clock_only_with_the_operations_that_take_it() -> None:
    s = Sim()
    t = s.tasks[0]
    w = s.word()
    assert s.futex(t, w, WAIT | REALTIME, 0) == -errno.ENOSYS
    assert s.futex(t, w, WAKE | REALTIME, 1) == -errno.ENOSYS
    assert s.futex(t, w, WAIT | REALTIME, 0, s.timespec(-1)) == -errno.EINVAL  # timespec first
    assert s.futex(t, w, WAIT | REALTIME, 0, BAD) == -errno.EFAULT
    assert s.futex(t, w, WAIT_BITSET | REALTIME | PRIVATE, 1, val3=-1) == -errno.EAGAIN


def test_woken_beats_an_expired_timeout() -> None:
    s = Sim()
    t = s.tasks[1]
    w = s.word()
    s.park(t, w, WAIT | PRIVATE, 0, utime=s.timespec(1))
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, 1) == 1
    s.clock += 5
    assert s.resume(t) == 0


# ------------------------------------------------------------------------------ cancel

def test_cancel_forgets_a_parked_waiter() -> None:
    s = Sim()
    t = s.tasks[1]
    w = s.word()
    s.park(t, w)
    s.table.cancel(t)
    assert s.futex(s.tasks[0], w, WAKE | PRIVATE, 1) == 0
    assert s.table.queues == {} and s.table.parked == {}
    # restarted with its memo (as a restart after a signal would be): the word is re-read
    s.set(w, 1)
    assert s.resume(t) == -errno.EAGAIN
    s.table.cancel(t)  # nothing parked: harmless


# ------------------------------------------------------------------------------ PI and others

def test_pi_ops_answer_enosys_with_a_warning() -> None:
    s = Sim()
    t = s.tasks[0]
    w = s.word()
    for cmd in (LOCK_PI, UNLOCK_PI, TRYLOCK_PI, WAIT_REQUEUE_PI, CMP_REQUEUE_PI, LOCK_PI2):
        assert s.futex(t, w, cmd | PRIVATE, 0, 0, s.word()) == -errno.ENOSYS
    assert {k for k in s.kernel.warnings if k.startswith("futex:")} == {
        "futex:LOCK_PI", "futex:UNLOCK_PI", "futex:TRYLOCK_PI", "futex:WAIT_REQUEUE_PI",
        "futex:CMP_REQUEUE_PI", "futex:LOCK_PI2"}
    assert s.futex(t, w, LOCK_PI, 0, BAD) == -errno.EFAULT  # its timeout is still read first
    s.kernel.warnings.clear()
    assert s.futex(t, w, FD, 0) == -errno.ENOSYS  # gone from Linux too: no warning
    assert s.futex(t, w, 14, 0) == -errno.ENOSYS
    assert s.futex(t, w, 0x201, 0) == -errno.ENOSYS
    assert s.kernel.warnings == {}


# ------------------------------------------------------------------------------ thread exit

def _robust_list(s: Sim, words: list[int], pending: int = 0, pi: set[int] = frozenset(),
                 circular: bool = False) -> tuple[int, list[int]]:
    """head + entries, each entry followed (offset 8) by its lock word's value."""
    head = s.p.alloc(24)
    entries = [s.p.alloc(16) for _ in words]
    offset = 8
    for i, (entry, value) in enumerate(zip(entries, words)):
        nxt = entries[i + 1] if i + 1 < len(entries) else (entries[0] if circular else head)
        s.p.host.write(entry, struct.pack("<QI", nxt | (1 if i + 1 in pi else 0), value))
    first = entries[0] | (1 if 0 in pi else 0) if entries else head
    s.p.host.write(head, struct.pack("<QqQ", first, offset, pending))
    return head, [e + offset for e in entries]


def test_robust_list_marks_owned_locks_and_wakes_their_waiters() -> None:
    s = Sim(5)
    dying, other = s.tasks[0], s.tasks[1]
    mine = dying.tid
    head, locks = _robust_list(s, [mine | FUTEX_WAITERS, other.tid | FUTEX_WAITERS, mine,
                                   mine | FUTEX_WAITERS | FUTEX_OWNER_DIED])
    s.park(s.tasks[2], locks[0], WAIT, mine | FUTEX_WAITERS)  # glibc waits with a shared op
    s.park(s.tasks[3], locks[1], WAIT, other.tid | FUTEX_WAITERS)
    s.park(s.tasks[4], locks[0], WAIT, mine | FUTEX_WAITERS)
    dying.robust_list = head
    futex_exit(dying)
    assert [s.get(a) for a in locks] == [
        FUTEX_WAITERS | FUTEX_OWNER_DIED,  # TID cleared, WAITERS kept
        other.tid | FUTEX_WAITERS,  # not ours: untouched
        FUTEX_OWNER_DIED,
        FUTEX_WAITERS | FUTEX_OWNER_DIED]
    assert s.woken == [s.tasks[2]]  # one waiter per lock
    assert dying.robust_list == 0


def test_robust_list_pending_op_pi_entries_and_limits() -> None:
    s = Sim(4)
    dying = s.tasks[0]
    # a pending lock with no owner (released but not yet woken): wake only
    pend_entry = s.p.alloc(16)
    s.p.host.write(pend_entry, struct.pack("<QI", 0, FUTEX_WAITERS))
    head, locks = _robust_list(s, [dying.tid | FUTEX_WAITERS, dying.tid | FUTEX_WAITERS],
                               pending=pend_entry, pi={1})
    s.park(s.tasks[1], pend_entry + 8, WAIT, FUTEX_WAITERS)
    s.park(s.tasks[2], locks[1], WAIT, dying.tid | FUTEX_WAITERS)
    s.park(s.tasks[3], locks[0], WAIT, dying.tid | FUTEX_WAITERS)
    dying.robust_list = head
    futex_exit(dying)
    assert s.get(pend_entry + 8) == FUTEX_WAITERS  # untouched
    assert s.get(locks[1]) == FUTEX_WAITERS | FUTEX_OWNER_DIED  # PI: marked, not woken here
    assert set(s.woken) == {s.tasks[1], s.tasks[3]}


def test_robust_list_pending_entry_on_the_list_is_handled_once() -> None:
    s = Sim(3)
    dying = s.tasks[0]
    head, locks = _robust_list(s, [dying.tid | FUTEX_WAITERS])
    s.p.host.write(head + 16, struct.pack("<Q", locks[0] - 8))  # pending = that same entry
    s.park(s.tasks[1], locks[0], WAIT, dying.tid | FUTEX_WAITERS)
    s.park(s.tasks[2], locks[0], WAIT, dying.tid | FUTEX_WAITERS)
    dying.robust_list = head
    futex_exit(dying)
    assert s.get(locks[0]) == FUTEX_WAITERS | FUTEX_OWNER_DIED
    assert s.woken == [s.tasks[1]]


def test_robust_list_stops_on_faults_and_circles() -> None:
    s = Sim(2)
    dying = s.tasks[0]
    head, locks = _robust_list(s, [dying.tid, dying.tid, dying.tid], circular=True)
    dying.robust_list = head
    futex_exit(dying)  # a circular list ends after ROBUST_LIST_LIMIT entries
    assert all(s.get(a) == FUTEX_OWNER_DIED for a in locks)
    # a long list: exactly ROBUST_LIST_LIMIT entries are handled
    head, locks = _robust_list(s, [dying.tid] * (ROBUST_LIST_LIMIT + 2))
    dying.robust_list = head
    futex_exit(dying)
    assert [s.get(a) for a in locks[ROBUST_LIST_LIMIT - 1:]] == [FUTEX_OWNER_DIED, dying.tid, dying.tid]
    # an entry pointing into unmapped memory ends the walk after the entries before it
    head, locks = _robust_list(s, [dying.tid, dying.tid])
    s.p.host.write(locks[0] - 8, struct.pack("<Q", BAD))
    dying.robust_list = head
    futex_exit(dying)
    assert [s.get(a) for a in locks] == [FUTEX_OWNER_DIED, dying.tid]
    dying.robust_list = BAD  # an unreadable head is ignored
    futex_exit(dying)
    assert dying.robust_list == 0


def test_clear_child_tid_is_zeroed_and_one_shared_waiter_woken() -> None:
    s = Sim(4)
    dying = s.tasks[1]
    tid_word = s.word(dying.tid)
    s.park(s.tasks[2], tid_word, WAIT | PRIVATE, dying.tid)  # private: not matched by the kernel
    s.park(s.tasks[0], tid_word, WAIT, dying.tid)  # pthread_join's shared wait
    s.park(s.tasks[3], tid_word, WAIT, dying.tid)
    dying.clear_child_tid = tid_word
    futex_exit(dying)
    assert s.get(tid_word) == 0
    assert s.woken == [s.tasks[0]]
    assert dying.clear_child_tid == 0


def test_clear_child_tid_untouched_when_the_address_space_has_no_other_user() -> None:
    s = Sim(1)
    tid_word = s.word(1)
    s.tasks[0].clear_child_tid = tid_word
    s.mm.users = 1
    futex_exit(s.tasks[0])
    assert s.get(tid_word) == 1  # mm_release writes only while another user remains


def test_exit_forgets_the_exiting_task_s_own_wait_and_ignores_bad_memory() -> None:
    s = Sim(2)
    w = s.word()
    t = s.tasks[1]
    s.park(t, w)
    t.clear_child_tid = BAD
    futex_exit(t)
    assert s.table.parked == {} and s.table.queues == {}
    assert kfutex.futex_table(s.kernel) is s.table


def test_only_untimed_waits_restart_after_a_handler() -> None:
    assert sys_futex.restarts_after_handler((0x1000, WAIT | PRIVATE, 0, 0, 0, 0))
    assert not sys_futex.restarts_after_handler((0x1000, WAIT | PRIVATE, 0, 0x2000, 0, 0))
    assert not sys_futex.restarts_after_handler((0x1000, WAIT_BITSET, 0, 0x2000, 0, -1))
