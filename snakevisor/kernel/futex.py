"""Futexes: wait queues keyed the way Linux keys them, parked tasks woken through the loop.

A waiter is a parked task (``Block``) recorded under a *key*; FUTEX_WAKE and friends find
waiters by key and ``kernel.wake`` them, and the re-dispatched FUTEX_WAIT returns 0.

Keys follow Linux's get_futex_key():

* a PRIVATE op: (address space, address) — no mapping needed, as Linux only range-checks;
* a shared op on MAP_SHARED file memory: (st_dev, st_ino, offset of the word in the file),
  so processes that map the same file meet;
* a shared op on MAP_SHARED|MAP_ANONYMOUS memory: (the shared object, offset in it), via
  ``Vma.shared_id`` when VMAs carry one (until then: the address-space key below);
* a shared op on MAP_PRIVATE memory: (address space, address) but a *different* key from
  the private one — Linux marks it FUT_OFF_MMSHARED, so a FUTEX_WAIT_PRIVATE waiter is not
  woken by a plain FUTEX_WAKE on the same word (glibc relies on this when it waits on a
  thread's tid with a shared op: the exit-time wake is shared).

Atomicity: the sentry serves one system call at a time, so queue operations need no lock.
The *word itself* is different: other application threads may run on the CPU while we
serve a call and update it with locked instructions.  FUTEX_WAKE_OP's operation and the
robust-list OWNER_DIED update must be atomic read-modify-writes; they go through
``host.cmpxchg32(addr, expected, new)`` when the platform offers it.  Without it they are a
read and a write through the stub's memory, and a concurrent locked update of the same
word between the two can be lost (the @syscall partial note of futex says so).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Hashable

from snakevisor.kernel.errors import EAGAIN, EFAULT, EINVAL, ETIMEDOUT, Block, SyscallError
from snakevisor.mm.address_space import MAP_PRIVATE, PROT_READ, PROT_WRITE, Vma
from snakevisor.platform import AddressSpaceHost

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.mm.address_space import AddressSpace

FUTEX_WAIT, FUTEX_WAKE, FUTEX_FD, FUTEX_REQUEUE, FUTEX_CMP_REQUEUE, FUTEX_WAKE_OP = 0, 1, 2, 3, 4, 5
FUTEX_LOCK_PI, FUTEX_UNLOCK_PI, FUTEX_TRYLOCK_PI = 6, 7, 8
FUTEX_WAIT_BITSET, FUTEX_WAKE_BITSET = 9, 10
FUTEX_WAIT_REQUEUE_PI, FUTEX_CMP_REQUEUE_PI, FUTEX_LOCK_PI2 = 11, 12, 13
FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME = 128, 256
FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF

FUTEX_WAITERS, FUTEX_OWNER_DIED, FUTEX_TID_MASK = 0x80000000, 0x40000000, 0x3FFFFFFF
ROBUST_LIST_LIMIT = 2048

#: the highest address Linux's access_ok() lets a futex word start at (x86_64, 4-level)
USER_PTR_MAX = 0x7FFFFFFFF000

#: whether atomic updates of application words are really atomic on this platform, and
#: whether shared anonymous memory has an identity that survives fork (docs follow these)
HOST_CMPXCHG = hasattr(AddressSpaceHost, "cmpxchg32")
SHARED_ANON_IDENTITY = hasattr(Vma, "shared_id")

Key = Hashable


class Waiter:
    """One task parked in FUTEX_WAIT(_BITSET): where it waits and whether it was woken."""

    __slots__ = ("task", "key", "bitset", "woken")

    def __init__(self, task: "Task", key: Key, bitset: int) -> None:
        self.task, self.key, self.bitset, self.woken = task, key, bitset, False


class FutexTable:
    """All futex wait queues of one kernel: key -> waiters in arrival (FIFO) order."""

    def __init__(self) -> None:
        self.queues: dict[Key, list[Waiter]] = {}
        self.parked: dict["Task", Waiter] = {}  # a task's current wait, woken or not

    # -- keys ------------------------------------------------------------------------------
    def key(self, task: "Task", addr: int, private: bool, write: bool = False) -> Key:
        """The futex key of `addr` (EINVAL misaligned, EFAULT where Linux cannot pin it).

        `write` is Linux's FUTEX_WRITE: the op will store to the word (WAKE_OP's second).
        """
        if addr % 4:
            raise SyscallError(EINVAL)
        if addr > USER_PTR_MAX:
            raise SyscallError(EFAULT)
        mm = task.mm
        if private:
            return ("private", mm, addr)
        vma = mm.find(addr)
        # get_user_pages: write access first, read-only retried unless the op writes
        if vma is None or not vma.prot & (PROT_WRITE if write else PROT_READ | PROT_WRITE):
            raise SyscallError(EFAULT)
        if vma.flags & 0x3 != MAP_PRIVATE:
            offset = vma.offset + (addr - vma.start)
            if vma.file is not None:
                return ("inode", *_inode(vma.file), offset)
            shared_id = getattr(vma, "shared_id", None)
            if shared_id is not None:
                return ("shmem", shared_id, offset)
        return ("mm", mm, addr)

    # -- waiting ---------------------------------------------------------------------------
    def wait(self, task: "Task", addr: int, private: bool, expected: int,
             deadline: float | None, bitset: int) -> int:
        """FUTEX_WAIT(_BITSET): park while the word equals `expected`; 0 once woken.

        The first dispatch computes the key, checks the word and queues the task; a
        re-dispatch finds its Waiter in ``task.syscall_state`` (the handler keeps the
        deadline there too, so a relative timeout is not restarted).  A waiter forgotten by
        cancel() starts over, re-reading the word, as Linux's restarted wait does.
        """
        state = task.syscall_state if task.syscall_state is not None else {}
        waiter = state.get("futex")
        if waiter is not None and self.parked.get(task) is waiter:
            if waiter.woken:
                del self.parked[task]
                return 0
            if deadline is not None and task.kernel.now() >= deadline:
                self.cancel(task)
                raise SyscallError(ETIMEDOUT)
            raise Block(deadline=deadline)
        key = self.key(task, addr, private)
        if read_u32(task.mm, addr) != expected & 0xFFFFFFFF:
            raise SyscallError(EAGAIN)
        if deadline is not None and task.kernel.now() >= deadline:
            raise SyscallError(ETIMEDOUT)
        self.cancel(task)  # a stale wait of this task (interrupted, never cancelled)
        waiter = Waiter(task, key, bitset)
        self.queues.setdefault(key, []).append(waiter)
        self.parked[task] = waiter
        if task.syscall_state is None:
            task.syscall_state = {}
        task.syscall_state["futex"] = waiter
        raise Block(deadline=deadline)

    def cancel(self, task: "Task") -> None:
        """Forget `task`'s wait (a signal interrupted it, or the task is exiting)."""
        waiter = self.parked.pop(task, None)
        if waiter is not None and not waiter.woken:
            self._unqueue(waiter)

    # -- waking ----------------------------------------------------------------------------
    def wake(self, key: Key, nr_wake: int, bitset: int = FUTEX_BITSET_MATCH_ANY) -> int:
        """Wake waiters whose bitset meets `bitset`; returns how many.

        As Linux's futex_wake counts *after* each wake, nr_wake <= 0 still wakes one.
        """
        woken = 0
        for waiter in list(self.queues.get(key, ())):
            if not waiter.task.alive:
                self._drop(waiter)
                continue
            if not waiter.bitset & bitset:
                continue
            self._wake(waiter)
            woken += 1
            if woken >= nr_wake:
                break
        return woken

    def requeue(self, key1: Key, key2: Key, nr_wake: int, nr_requeue: int) -> int:
        """Wake up to nr_wake waiters of key1 and move up to nr_requeue more to key2.

        Returns woken + requeued, as Linux's futex_requeue does for REQUEUE and CMP_REQUEUE
        alike (futex(2) says "woken" for REQUEUE; the kernel counts both).  Bitsets are
        ignored, and requeueing onto the same key keeps the order, as in Linux.
        """
        count = 0
        for waiter in list(self.queues.get(key1, ())):
            if count - nr_wake >= nr_requeue:
                break
            if not waiter.task.alive:
                self._drop(waiter)
                continue
            count += 1
            if count <= nr_wake:
                self._wake(waiter)
            elif key2 != key1:
                self._unqueue(waiter)
                waiter.key = key2
                self.queues.setdefault(key2, []).append(waiter)
        return count

    # -- internals -------------------------------------------------------------------------
    def _wake(self, waiter: Waiter) -> None:
        self._unqueue(waiter)
        waiter.woken = True
        waiter.task.kernel.wake(waiter.task)

    def _drop(self, waiter: Waiter) -> None:
        """A dead task's leftover wait."""
        self._unqueue(waiter)
        if self.parked.get(waiter.task) is waiter:
            del self.parked[waiter.task]

    def _unqueue(self, waiter: Waiter) -> None:
        queue = self.queues.get(waiter.key)
        if queue is None:
            return
        try:
            queue.remove(waiter)
        except ValueError:
            return
        if not queue:
            del self.queues[waiter.key]


def futex_table(kernel: object) -> FutexTable:
    """The kernel's FutexTable, created on first use."""
    table = getattr(kernel, "futexes", None)
    if table is None:
        table = FutexTable()
        setattr(kernel, "futexes", table)
    return table


def _inode(file: object) -> tuple[int, int]:
    """(st_dev, st_ino) of a mapped file: the identity every process mapping it shares."""
    try:
        st = file.stat()  # type: ignore[attr-defined]
        return st.st_dev, st.st_ino
    except (OSError, SyscallError):
        return -1, id(file)  # no host inode: the open file itself is the identity


# -- the futex word ----------------------------------------------------------------------
def read_u32(mm: "AddressSpace", addr: int) -> int:
    return int.from_bytes(mm.read(addr, 4), "little")


def cmpxchg_u32(mm: "AddressSpace", addr: int, expected: int, new: int) -> int:
    """Store `new` if the word is `expected`; returns the value found (EFAULT if unwritable)."""
    mm.check(addr, 4, PROT_WRITE)
    host_cmpxchg = getattr(mm.host, "cmpxchg32", None)
    if host_cmpxchg is not None:
        try:
            return host_cmpxchg(addr, expected, new)
        except OSError as e:
            if e.errno == EFAULT:
                raise SyscallError(EFAULT) from None
            # No stopped thread to run it in (a process being killed while it runs
            # application code): the word is changed the plain way below.
    seen = read_u32(mm, addr)  # not atomic: see the module docstring
    if seen == expected:
        mm.write(addr, new.to_bytes(4, "little"))
    return seen


def atomic_update(mm: "AddressSpace", addr: int, update: Callable[[int], int]) -> int:
    """Replace the word by update(old) as one step from the application's view; returns old."""
    mm.check(addr, 4, PROT_WRITE)
    old = read_u32(mm, addr)
    while True:
        seen = cmpxchg_u32(mm, addr, old, update(old) & 0xFFFFFFFF)
        if seen == old:
            return old
        old = seen


# -- thread exit -------------------------------------------------------------------------
def futex_exit(task: "Task") -> None:
    """What Linux's futex_exit_release + mm_release do for a thread that exits or execs.

    Call it while the thread still counts in ``task.mm.users``: Linux writes
    clear_child_tid only when another user of the address space remains.  (1) the robust
    list is walked and each lock the thread holds gets FUTEX_OWNER_DIED, waking a waiter;
    (2) CLONE_CHILD_CLEARTID: 0 is stored at clear_child_tid and one shared-key waiter
    woken (how pthread_join learns of the exit).  Memory errors end that step silently.
    """
    table = futex_table(task.kernel)
    table.cancel(task)
    if task.robust_list:
        _exit_robust_list(task, table)
        task.robust_list = 0
    addr, task.clear_child_tid = task.clear_child_tid, 0
    if addr and task.mm.users > 1:
        try:
            task.mm.write(addr, bytes(4))
        except SyscallError:
            pass  # Linux ignores put_user's failure and still wakes
        _wake_shared(task, table, addr)


def _wake_shared(task: "Task", table: FutexTable, addr: int) -> None:
    """The kernel's own FUTEX_WAKE of one waiter, without PRIVATE (errors ignored)."""
    try:
        table.wake(table.key(task, addr, private=False), 1)
    except SyscallError:
        pass


def _fetch_entry(mm: "AddressSpace", addr: int) -> tuple[int, bool]:
    """A robust-list pointer: the address, and bit 0 meaning 'this lock is PI'."""
    value = mm.read_u64(addr)
    return value & ~1, bool(value & 1)


def _exit_robust_list(task: "Task", table: FutexTable) -> None:
    """exit_robust_list(): struct robust_list_head {next, long futex_offset, list_op_pending}."""
    mm, head = task.mm, task.robust_list
    try:
        entry, pi = _fetch_entry(mm, head)
        futex_offset = mm.read_u64(head + 8)
        pending, pending_pi = _fetch_entry(mm, head + 16)
    except SyscallError:
        return
    mask = (1 << 64) - 1
    limit = ROBUST_LIST_LIMIT
    while entry != head:
        try:
            next_entry, next_pi = _fetch_entry(mm, entry)
            fetched = True
        except SyscallError:
            fetched = False
        # a lock being added may already be on the list: do not handle it twice
        if entry != pending and not _owner_died(task, table, (entry + futex_offset) & mask, pi, False):
            return
        if not fetched:
            return
        entry, pi = next_entry, next_pi
        limit -= 1
        if not limit:
            break  # too long or circular
    if pending:
        _owner_died(task, table, (pending + futex_offset) & mask, pending_pi, True)


def _owner_died(task: "Task", table: FutexTable, addr: int, pi: bool, pending_op: bool) -> bool:
    """handle_futex_death(): mark a lock the dead thread held; False stops the list walk."""
    if addr % 4:
        return False
    mm = task.mm
    while True:
        try:
            value = read_u32(mm, addr)
        except SyscallError:
            return False
        owner = value & FUTEX_TID_MASK
        if pending_op and not pi and not owner:
            # killed between releasing the lock and waking a waiter: wake it now
            _wake_shared(task, table, addr)
            return True
        if owner != task.tid:
            return True
        new = (value & FUTEX_WAITERS) | FUTEX_OWNER_DIED
        try:
            if cmpxchg_u32(mm, addr, value, new) != value:
                continue  # changed under us: look again
        except SyscallError:
            return False
        if not pi and value & FUTEX_WAITERS:
            _wake_shared(task, table, addr)  # PI waiters are woken by the PI code (none here)
        return True


__all__ = ["FutexTable", "Waiter", "futex_table", "futex_exit", "read_u32", "cmpxchg_u32",
           "atomic_update"]
