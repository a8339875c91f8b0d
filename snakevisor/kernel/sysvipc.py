"""The sandbox's System V IPC namespace: semaphore sets and message queues.

Why here: these objects outlive the processes that made them and are shared by key across
the whole sandbox, so they belong to the Kernel (one namespace per sandbox, created on
first use) rather than to any task or file.  The system calls that use them are
`syscalls/sys_sysv.py`; shared memory segments keep their own table.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Collection, Generic, TypeVar

from snakevisor.kernel.errors import (EACCES, EEXIST, EINVAL, ENOENT, ENOSPC, EPERM,
                                      SyscallError, WaitQueue)

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Credentials, Task, ThreadGroup

IPC_PRIVATE = 0
IPC_CREAT, IPC_EXCL, IPC_NOWAIT = 0o1000, 0o2000, 0o4000
S_IRWXUGO = 0o777
IPCMNI_SHIFT = 15
IPCMNI = 1 << IPCMNI_SHIFT  #: indices are below this; id = seq << 15 | index (ipc_buildid)
IPCID_SEQ_MAX = 0x7FFFFFFF >> IPCMNI_SHIFT
IPC_MIN_CYCLE = 64  #: RADIX_TREE_MAP_SIZE: indices cycle through at least this many

# Linux's defaults (ipc/sem.c, ipc/msg.c)
SEMMSL, SEMMNS, SEMOPM, SEMMNI, SEMVMX, SEMAEM = 32000, 1024000000, 500, 32000, 32767, 32767
MSGMAX, MSGMNB, MSGMNI = 8192, 16384, 32000

CAP_IPC_OWNER, CAP_SYS_ADMIN = 15, 21


def _capable(task: "Task", cap: int) -> bool:
    from snakevisor.syscalls.sys_cred import has_cap
    return has_cap(task, cap)


class IpcObject:
    """What every System V object has: key, owner, creator, mode bits, times."""

    def __init__(self, key: int, creds: "Credentials", mode: int) -> None:
        self.key = key
        self.id = -1
        self.uid = self.cuid = creds.euid
        self.gid = self.cgid = creds.egid
        self.mode = mode & S_IRWXUGO
        self.ctime = int(time.time())
        self.removed = False
        #: woken on every change: waiters re-check their condition when dispatched again
        self.wait = WaitQueue()

    def check_perm(self, task: "Task", requested: int) -> None:
        """ipcperms(): the owner/group/other triplet of mode against `requested` (e.g. 0o444)."""
        creds = task.tg.creds
        granted = self.mode
        if creds.euid in (self.uid, self.cuid):
            granted >>= 6
        elif self.gid == creds.egid or self.cgid == creds.egid or \
                self.gid in creds.groups or self.cgid in creds.groups:
            granted >>= 3
        if requested & ~granted & 0o7 and not _capable(task, CAP_IPC_OWNER):
            raise SyscallError(EACCES)

    def check_owner(self, task: "Task") -> None:
        """IPC_SET/IPC_RMID: the owner, the creator or CAP_SYS_ADMIN, else EPERM."""
        if task.tg.creds.euid not in (self.uid, self.cuid) and not _capable(task, CAP_SYS_ADMIN):
            raise SyscallError(EPERM)

    def set_perm(self, uid: int, gid: int, mode: int) -> None:
        self.uid, self.gid = uid, gid
        self.mode = (self.mode & ~S_IRWXUGO) | (mode & S_IRWXUGO)
        self.ctime = int(time.time())

    def perm_bytes(self) -> tuple:
        """The fields of struct ipc64_perm, in order (key, uid, gid, cuid, cgid, mode, seq)."""
        return (self.key, self.uid, self.gid, self.cuid, self.cgid, self.mode,
                self.id >> IPCMNI_SHIFT)


T = TypeVar("T", bound=IpcObject)


class IdAllocator:
    """Linux's ipc_idr_alloc: indices are handed out cyclically (idr_alloc_cyclic below
    max(in_use * 3 / 2, 64)), and the sequence number advances whenever the cycle wraps, so
    a fresh namespace numbers its objects 0, 1, 2, ... and a reused index gets a new id."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  #: SEMMNI / MSGMNI / SHMMNI
        self.next = 0  #: idr_next
        self.last_idx = -1
        self.seq = 0

    def alloc(self, used: Collection[int]) -> tuple[int, int]:
        """(index, seq) for a new object; ENOSPC when the kind is full."""
        in_use = len(used)
        if in_use >= min(self.limit, IPCMNI):
            raise SyscallError(ENOSPC)
        end = min(max(in_use * 3 // 2, IPC_MIN_CYCLE), IPCMNI)
        idx = next((i for i in range(self.next, end) if i not in used), None)
        if idx is None:
            idx = next((i for i in range(0, end) if i not in used), None)
        if idx is None:
            raise SyscallError(ENOSPC)
        self.next = idx + 1
        if idx <= self.last_idx:
            self.seq += 1
            if self.seq >= IPCID_SEQ_MAX:
                self.seq = 0
        self.last_idx = idx
        return idx, self.seq


def max_index(used: Collection[int]) -> int:
    """What IPC_INFO/SEM_INFO/MSG_INFO/SHM_INFO return: the highest index in use, or 0
    (ipc_get_maxidx's -1 for an empty kind is turned into 0 by every caller)."""
    return max(used, default=0)


def index_of(ident: int) -> int:
    """ipcid_to_idx: the *_STAT commands take an index, but Linux masks whatever it gets."""
    return ident & (IPCMNI - 1)


class IpcIds(Generic[T]):
    """One kind's table: ids (slot + sequence, as Linux numbers them) and keys."""

    def __init__(self, limit: int) -> None:
        self.by_slot: dict[int, T] = {}
        self.ids = IdAllocator(limit)

    def lookup(self, ident: int) -> T:
        """The live object with this id; EINVAL for a negative, free or stale id."""
        obj = self.by_slot.get(index_of(ident)) if ident >= 0 else None
        if obj is None or obj.id != ident:
            raise SyscallError(EINVAL)
        return obj

    def find_key(self, key: int) -> T | None:
        for obj in self.by_slot.values():
            if obj.key == key and key != IPC_PRIVATE:
                return obj
        return None

    def at_index(self, index: int) -> T:
        """SEM_STAT/MSG_STAT: the object at an index (masked as Linux does), EINVAL if none."""
        obj = self.by_slot.get(index_of(index))
        if obj is None:
            raise SyscallError(EINVAL)
        return obj

    def in_order(self) -> list[T]:
        """The live objects by index, as /proc/sysvipc lists them."""
        return [self.by_slot[i] for i in sorted(self.by_slot)]

    def add(self, obj: T) -> T:
        slot, seq = self.ids.alloc(self.by_slot)
        obj.id = seq << IPCMNI_SHIFT | slot
        self.by_slot[slot] = obj
        return obj

    def remove(self, obj: T) -> None:
        del self.by_slot[index_of(obj.id)]
        obj.removed = True
        obj.wait.notify()

    def get(self, task: "Task", key: int, flags: int, make, check=None) -> int:
        """ipcget(): IPC_PRIVATE or absent+IPC_CREAT creates (`make()`); an existing key
        gives EEXIST under IPC_CREAT|IPC_EXCL, then `check(obj)`, then the mode check."""
        obj = None if key == IPC_PRIVATE else self.find_key(key)
        if obj is None:
            if key != IPC_PRIVATE and not flags & IPC_CREAT:
                raise SyscallError(ENOENT)
            return self.add(make()).id
        if flags & IPC_CREAT and flags & IPC_EXCL:
            raise SyscallError(EEXIST)
        if check is not None:
            check(obj)
        obj.check_perm(task, flags & S_IRWXUGO)
        return obj.id


class Semaphore:
    __slots__ = ("val", "pid")

    def __init__(self) -> None:
        self.val = 0
        self.pid = 0  #: the last process to change it (GETPID)


class SemSet(IpcObject):
    def __init__(self, key: int, creds: "Credentials", mode: int, nsems: int) -> None:
        super().__init__(key, creds, mode)
        self.sems = [Semaphore() for _ in range(nsems)]
        self.otime = 0
        #: tasks parked in semop: token -> (task, [the operation it blocks on]); a token
        #: whose task moved on is stale
        self.waiters: dict[object, tuple["Task", list[tuple[int, int, int]]]] = {}

    def live_waiters(self) -> list[list[tuple[int, int, int]]]:
        """The blocking operations of the tasks still parked on this set (GETNCNT/GETZCNT)."""
        for token, (task, _ops) in list(self.waiters.items()):
            state = task.syscall_state
            if state is None or state.get("sysv_token") is not token or not task.alive:
                del self.waiters[token]
        return [ops for _task, ops in self.waiters.values()]


class Message:
    __slots__ = ("mtype", "text")

    def __init__(self, mtype: int, text: bytes) -> None:
        self.mtype, self.text = mtype, text


class MsgQueue(IpcObject):
    def __init__(self, key: int, creds: "Credentials", mode: int) -> None:
        super().__init__(key, creds, mode)
        self.messages: list[Message] = []
        self.cbytes = 0
        self.qbytes = MSGMNB
        self.lspid = self.lrpid = 0
        self.stime = self.rtime = 0


class SysvNamespace:
    """One sandbox's semaphore sets, message queues and per-process semaphore undo lists."""

    def __init__(self) -> None:
        self.sems: IpcIds[SemSet] = IpcIds(SEMMNI)
        self.msgs: IpcIds[MsgQueue] = IpcIds(MSGMNI)
        #: ThreadGroup -> {semid: [adjustment per semaphore]} (SEM_UNDO)
        self.undo: dict["ThreadGroup", dict[int, list[int]]] = {}

    def undo_list(self, tg: "ThreadGroup", sset: SemSet) -> list[int]:
        per_set = self.undo.setdefault(tg, {})
        adj = per_set.get(sset.id)
        if adj is None:
            adj = per_set[sset.id] = [0] * len(sset.sems)
        return adj

    def clear_undo(self, sset: SemSet, num: int | None = None) -> None:
        """SETVAL (one semaphore) and SETALL/IPC_RMID (all) reset everyone's adjustments."""
        for per_set in self.undo.values():
            adj = per_set.get(sset.id)
            if adj is None:
                continue
            if num is None:
                del per_set[sset.id]
            else:
                adj[num] = 0

    def exit(self, tg: "ThreadGroup") -> None:
        """exit_sem(): apply a dying process's SEM_UNDO adjustments, clamped to [0, SEMVMX]."""
        for semid, adj in self.undo.pop(tg, {}).items():
            try:
                sset = self.sems.lookup(semid)
            except SyscallError:
                continue  # removed since
            for sem, delta in zip(sset.sems, adj):
                if delta:
                    sem.val = min(max(sem.val + delta, 0), SEMVMX)
                    sem.pid = tg.pid
            sset.otime = int(time.time())
            sset.wait.notify()


def sysv_namespace(kernel: "Kernel") -> SysvNamespace:
    """The kernel's namespace, made on first use."""
    ns = getattr(kernel, "sysv_ipc", None)
    if ns is None:
        ns = SysvNamespace()
        kernel.sysv_ipc = ns  # type: ignore[attr-defined]
    return ns


def on_exit(tg: "ThreadGroup") -> None:
    """The exit hook (kernel/process.py exit_group): SEM_UNDO of the ending process."""
    ns = getattr(tg.kernel, "sysv_ipc", None)
    if ns is not None:
        ns.exit(tg)
