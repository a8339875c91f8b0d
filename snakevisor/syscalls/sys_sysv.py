"""System V semaphores and message queues: semget/semop/semtimedop/semctl, msgget/msgsnd/
msgrcv/msgctl, over the sandbox's namespace in `kernel/sysvipc.py`.

Waiting: a semop or msgsnd/msgrcv that cannot proceed parks on the object's WaitQueue and
re-checks everything when dispatched again (every change notifies the queue); the object
kept in ``task.syscall_state`` tells a waiter that its object was removed (EIDRM).
"""
from __future__ import annotations

import errno
import struct
import time
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import (E2BIG, EAGAIN, EFBIG, EINVAL, EPERM, ERANGE, Block,
                                      SyscallError)
from snakevisor.kernel.sysvipc import (IPC_NOWAIT, MSGMAX, MSGMNB, MSGMNI, SEMAEM, SEMMNI,
                                       SEMMNS, SEMMSL, SEMOPM, SEMVMX, IpcIds, IpcObject,
                                       Message, MsgQueue, SemSet, _capable, max_index,
                                       sysv_namespace)
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, s64
from snakevisor.syscalls.sys_time import NSEC, read_timespec, timespec_valid

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
GETPID, GETVAL, GETALL, GETNCNT, GETZCNT, SETVAL, SETALL = 11, 12, 13, 14, 15, 16, 17
SEM_STAT, SEM_INFO, SEM_STAT_ANY = 18, 19, 20
MSG_STAT, MSG_INFO, MSG_STAT_ANY = 11, 12, 13
SEM_UNDO = 0x1000
MSG_NOERROR, MSG_EXCEPT, MSG_COPY = 0o10000, 0o20000, 0o40000
CAP_SYS_RESOURCE = 24
READ, WRITE = 0o444, 0o222

SEMBUF = struct.Struct("<Hhh")
#: struct ipc64_perm: key, uid, gid, cuid, cgid, mode, seq (+ padding and two unused longs)
IPC_PERM = struct.Struct("<iIIIIIH2x4x16x")
SEMID_TAIL = struct.Struct("<q8xq8xQ16x")  # sem_otime, sem_ctime, sem_nsems
MSQID_TAIL = struct.Struct("<qqqQQQii16x")  # stime rtime ctime cbytes qnum qbytes lspid lrpid
#: struct seminfo: semmap semmni semmns semmnu semmsl semopm semume semusz semvmx semaem
SEMINFO = struct.Struct("<10i")
#: struct msginfo: msgpool msgmap msgmax msgmnb msgmni msgssz msgtql msgseg (+ padding)
MSGINFO = struct.Struct("<7iH2x")
# include/uapi/linux/sem.h and msg.h: the "unused" fields IPC_INFO still reports
SEMUSZ, MSGSSZ = 20, 16
MSGPOOL = MSGMNI * MSGMNB // 1024
MSGSEG = min(MSGPOOL * 1024 // MSGSSZ, 0xFFFF)


def _unsupported(task: "Task", call: str, cmd: int) -> SyscallError:
    task.kernel.warn_once(f"{call}-{cmd}", f"{call}: command {cmd} is not supported -> EINVAL")
    return SyscallError(EINVAL)


def _stat_target(ids: IpcIds, ident: int, cmd: int) -> IpcObject:
    """IPC_STAT names an id; the *_STAT forms name an index (SEM_STAT, MSG_STAT...)."""
    return ids.lookup(ident) if cmd == IPC_STAT else ids.at_index(ident)


def _blocked(task: "Task", obj: IpcObject, deadline: float | None = None) -> Block:
    """Park on obj's queue, remembering obj so its removal is seen as EIDRM."""
    if task.syscall_state is None:
        task.syscall_state = {}
    task.syscall_state["sysv_obj"] = obj
    return Block(queue=obj.wait, deadline=deadline)


def _resume(task: "Task") -> IpcObject | None:
    """The object a re-dispatched wait was parked on; EIDRM if it was removed meanwhile."""
    state = task.syscall_state
    obj = state.get("sysv_obj") if state else None
    if obj is not None and obj.removed:
        raise SyscallError(errno.EIDRM)
    return obj


def _set_perm_from(task: "Task", obj: IpcObject, data: bytes) -> None:
    """IPC_SET's common part: check ownership, take uid/gid/mode from the caller's struct."""
    obj.check_owner(task)
    _key, uid, gid, _cuid, _cgid, mode, _seq = IPC_PERM.unpack_from(data)
    obj.set_perm(uid, gid, mode)


# -- semaphores ------------------------------------------------------------------------------

@syscall("semget")
def sys_semget(task: "Task", key: int, nsems: int, flags: int, *_: int) -> int:
    key, nsems, flags = s32(key), s32(nsems), s32(flags)
    if nsems < 0 or nsems > SEMMSL:
        raise SyscallError(EINVAL)
    ns = sysv_namespace(task.kernel)

    def make() -> SemSet:
        if nsems == 0:
            raise SyscallError(EINVAL)
        return SemSet(key, task.tg.creds, flags, nsems)

    def check(sset: SemSet) -> None:
        if nsems > len(sset.sems):
            raise SyscallError(EINVAL)
    return ns.sems.get(task, key, flags, make, check)


def _try_semop(task: "Task", sset: SemSet,
               ops: list[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    """Apply all of ops atomically, or none: None when done, else the operation that must
    wait (GETNCNT/GETZCNT count a waiter by that one, as Linux's q->blocking).

    Operations see the effect of the earlier ones (Linux applies them in order and rolls
    back), so values and undo adjustments are computed on copies first."""
    ns = sysv_namespace(task.kernel)
    vals = [s.val for s in sset.sems]
    undo = ns.undo.get(task.tg, {}).get(sset.id)
    adj = list(undo) if undo is not None else [0] * len(vals)
    for num, op, flg in ops:
        result = vals[num] + op
        if (op == 0 and vals[num]) or result < 0:
            if flg & IPC_NOWAIT:
                raise SyscallError(EAGAIN)
            return (num, op, flg)
        if result > SEMVMX:
            raise SyscallError(ERANGE)
        if flg & SEM_UNDO and op:
            if not -SEMVMX - 1 <= adj[num] - op <= SEMVMX:
                raise SyscallError(ERANGE)
            adj[num] -= op
        vals[num] = result
    for num, op, _flg in ops:
        if op:
            sset.sems[num].pid = task.tg.pid
    for sem, val in zip(sset.sems, vals):
        sem.val = val
    if any(flg & SEM_UNDO for _n, op, flg in ops if op):
        ns.undo_list(task.tg, sset)[:] = adj
    sset.otime = int(time.time())
    sset.wait.notify()
    return None


def _semop(task: "Task", semid: int, sops: int, nsops: int, timeout: int) -> int:
    nsops = nsops & 0xFFFFFFFFFFFFFFFF  # size_t
    if nsops < 1 or semid < 0:
        raise SyscallError(EINVAL)
    if nsops > SEMOPM:
        raise SyscallError(E2BIG)
    raw = task.mm.read(sops, SEMBUF.size * nsops)
    ops = list(SEMBUF.iter_unpack(raw))
    state = task.syscall_state
    if state is not None and "sysv_deadline" in state:
        deadline = state["sysv_deadline"]
    else:
        deadline = None
        if timeout:
            sec, nsec = read_timespec(task, timeout)
            if not timespec_valid(sec, nsec):
                raise SyscallError(EINVAL)
            deadline = task.kernel.now() + sec + nsec / NSEC
    sset = _resume(task)
    if sset is None:
        sset = sysv_namespace(task.kernel).sems.lookup(semid)
    assert isinstance(sset, SemSet)
    if max(num for num, _op, _flg in ops) >= len(sset.sems):
        raise SyscallError(EFBIG)
    sset.check_perm(task, WRITE if any(op for _n, op, _f in ops) else READ)
    blocking = _try_semop(task, sset, ops)
    if blocking is None:
        return 0
    if deadline is not None and task.kernel.now() >= deadline:
        raise SyscallError(EAGAIN)
    block = _blocked(task, sset, deadline)
    task.syscall_state["sysv_deadline"] = deadline
    token = task.syscall_state.setdefault("sysv_token", object())
    sset.waiters[token] = (task, [blocking])
    raise block



@syscall("semop")
def sys_semop(task: "Task", semid: int, sops: int, nsops: int, *_: int) -> int:
    return _semop(task, s32(semid), sops, nsops, 0)


@syscall("semtimedop")
def sys_semtimedop(task: "Task", semid: int, sops: int, nsops: int, timeout: int, *_: int) -> int:
    return _semop(task, s32(semid), sops, nsops, timeout)


def _semid_ds(sset: SemSet) -> bytes:
    return IPC_PERM.pack(*sset.perm_bytes()) + SEMID_TAIL.pack(sset.otime, sset.ctime,
                                                               len(sset.sems))


def _seminfo(task: "Task", cmd: int, arg: int) -> int:
    """semctl_info: the limits; SEM_INFO puts the sets in use in semusz and the semaphores
    in use in semaem.  Returns the highest index in use."""
    sets = sysv_namespace(task.kernel).sems
    usz, aem = SEMUSZ, SEMAEM
    if cmd == SEM_INFO:
        usz, aem = len(sets.by_slot), sum(len(s.sems) for s in sets.by_slot.values())
    task.mm.write(arg, SEMINFO.pack(SEMMNS, SEMMNI, SEMMNS, SEMMNS, SEMMSL, SEMOPM, SEMOPM,
                                    usz, SEMVMX, aem))
    return max_index(sets.by_slot)


@syscall("semctl")
def sys_semctl(task: "Task", semid: int, semnum: int, cmd: int, arg: int, *_: int) -> int:
    semid, semnum, cmd = s32(semid), s32(semnum), s32(cmd)
    if semid < 0:
        raise SyscallError(EINVAL)
    ns = sysv_namespace(task.kernel)
    if cmd in (IPC_INFO, SEM_INFO):
        return _seminfo(task, cmd, arg)
    if cmd in (IPC_STAT, SEM_STAT, SEM_STAT_ANY):
        sset = _stat_target(ns.sems, semid, cmd)
        assert isinstance(sset, SemSet)
        if cmd != SEM_STAT_ANY:
            sset.check_perm(task, READ)
        task.mm.write(arg, _semid_ds(sset))
        return 0 if cmd == IPC_STAT else sset.id
    if cmd not in (IPC_RMID, IPC_SET, GETPID, GETVAL, GETALL, GETNCNT, GETZCNT, SETVAL, SETALL):
        raise SyscallError(EINVAL)
    sset = ns.sems.lookup(semid)
    nsems = len(sset.sems)
    if cmd == IPC_RMID:
        sset.check_owner(task)
        ns.clear_undo(sset)
        ns.sems.remove(sset)
        return 0
    if cmd == IPC_SET:
        _set_perm_from(task, sset, task.mm.read(arg, IPC_PERM.size + SEMID_TAIL.size))
        return 0
    if cmd in (SETVAL, SETALL):
        sset.check_perm(task, WRITE)
    else:
        sset.check_perm(task, READ)
    if cmd == GETALL:
        task.mm.write(arg, struct.pack(f"<{nsems}H", *(s.val for s in sset.sems)))
        return 0
    if cmd == SETALL:
        vals = struct.unpack(f"<{nsems}H", task.mm.read(arg, 2 * nsems))
        if any(v > SEMVMX for v in vals):
            raise SyscallError(ERANGE)
        for sem, val in zip(sset.sems, vals):
            sem.val, sem.pid = val, task.tg.pid
        ns.clear_undo(sset)
        sset.ctime = int(time.time())
        sset.wait.notify()
        return 0
    if not 0 <= semnum < nsems:
        raise SyscallError(EINVAL)
    sem = sset.sems[semnum]
    if cmd == GETVAL:
        return sem.val
    if cmd == GETPID:
        return sem.pid
    if cmd == SETVAL:
        val = s32(arg)
        if not 0 <= val <= SEMVMX:
            raise SyscallError(ERANGE)
        sem.val, sem.pid = val, task.tg.pid
        ns.clear_undo(sset, semnum)
        sset.ctime = int(time.time())
        sset.wait.notify()
        return 0
    # GETNCNT / GETZCNT: the waiters whose blocking operation is on this semaphore
    want_zero = cmd == GETZCNT
    return sum(1 for ops in sset.live_waiters()
               if any(n == semnum and ((op == 0) if want_zero else (op < 0))
                      for n, op, _f in ops))


# -- message queues --------------------------------------------------------------------------

@syscall("msgget")
def sys_msgget(task: "Task", key: int, flags: int, *_: int) -> int:
    key, flags = s32(key), s32(flags)
    return sysv_namespace(task.kernel).msgs.get(
        task, key, flags, lambda: MsgQueue(key, task.tg.creds, flags))


@syscall("msgsnd")
def sys_msgsnd(task: "Task", msqid: int, msgp: int, msgsz: int, flags: int, *_: int) -> int:
    msqid, msgsz, flags = s32(msqid), s64(msgsz), s32(flags)
    mtype = s64(task.mm.read_u64(msgp))
    if mtype < 1 or msgsz > MSGMAX or msgsz < 0:
        raise SyscallError(EINVAL)
    text = task.mm.read(msgp + 8, msgsz)
    queue = _resume(task)
    if queue is None:
        if msqid < 0:
            raise SyscallError(EINVAL)
        queue = sysv_namespace(task.kernel).msgs.lookup(msqid)
    assert isinstance(queue, MsgQueue)
    queue.check_perm(task, WRITE)
    if msgsz + queue.cbytes > queue.qbytes or len(queue.messages) + 1 > queue.qbytes:
        if flags & IPC_NOWAIT:
            raise SyscallError(EAGAIN)
        raise _blocked(task, queue)
    queue.messages.append(Message(mtype, text))
    queue.cbytes += msgsz
    queue.lspid, queue.stime = task.tg.pid, int(time.time())
    queue.wait.notify()
    return 0


def _find(queue: MsgQueue, msgtyp: int, flags: int) -> int | None:
    """The index of the message msgrcv takes (type 0: first; >0: first of that type, or not
    of it with MSG_EXCEPT; <0: first of the lowest type <= -msgtyp)."""
    best = None
    for i, msg in enumerate(queue.messages):
        if msgtyp == 0:
            return i
        if msgtyp > 0:
            if (msg.mtype != msgtyp) if flags & MSG_EXCEPT else (msg.mtype == msgtyp):
                return i
        elif msg.mtype <= -msgtyp and (best is None or msg.mtype < queue.messages[best].mtype):
            best = i
    return best


@syscall("msgrcv", partial="MSG_COPY is EINVAL")
def sys_msgrcv(task: "Task", msqid: int, msgp: int, msgsz: int, msgtyp: int, flags: int,
               *_: int) -> int:
    msqid, msgsz, msgtyp, flags = s32(msqid), s64(msgsz), s64(msgtyp), s32(flags)
    if flags & MSG_COPY:
        raise _unsupported(task, "msgrcv", MSG_COPY)
    if msqid < 0 or msgsz < 0:
        raise SyscallError(EINVAL)
    queue = _resume(task)
    if queue is None:
        queue = sysv_namespace(task.kernel).msgs.lookup(msqid)
    assert isinstance(queue, MsgQueue)
    queue.check_perm(task, READ)
    index = _find(queue, msgtyp, flags)
    if index is None:
        if flags & IPC_NOWAIT:
            raise SyscallError(errno.ENOMSG)
        raise _blocked(task, queue)
    msg = queue.messages[index]
    if len(msg.text) > msgsz and not flags & MSG_NOERROR:
        raise SyscallError(E2BIG)
    text = msg.text[:msgsz]
    task.mm.write(msgp, struct.pack("<q", msg.mtype) + text)
    del queue.messages[index]
    queue.cbytes -= len(msg.text)
    queue.lrpid, queue.rtime = task.tg.pid, int(time.time())
    queue.wait.notify()
    return len(text)


def _msginfo(task: "Task", cmd: int, buf: int) -> int:
    """msgctl_info: the limits; MSG_INFO puts the queues in use in msgpool, the messages
    queued in msgmap and their bytes in msgtql.  Returns the highest index in use."""
    queues = sysv_namespace(task.kernel).msgs
    pool, nmap, tql = MSGPOOL, MSGMNB, MSGMNB
    if cmd == MSG_INFO:
        pool = len(queues.by_slot)
        nmap = sum(len(q.messages) for q in queues.by_slot.values())
        tql = sum(q.cbytes for q in queues.by_slot.values())
    task.mm.write(buf, MSGINFO.pack(pool, nmap, MSGMAX, MSGMNB, MSGMNI, MSGSSZ, tql, MSGSEG))
    return max_index(queues.by_slot)


@syscall("msgctl")
def sys_msgctl(task: "Task", msqid: int, cmd: int, buf: int, *_: int) -> int:
    msqid, cmd = s32(msqid), s32(cmd)
    if msqid < 0 or cmd < 0:
        raise SyscallError(EINVAL)
    ns = sysv_namespace(task.kernel)
    if cmd in (IPC_INFO, MSG_INFO):
        return _msginfo(task, cmd, buf)
    if cmd in (IPC_STAT, MSG_STAT, MSG_STAT_ANY):
        queue = _stat_target(ns.msgs, msqid, cmd)
        assert isinstance(queue, MsgQueue)
        if cmd != MSG_STAT_ANY:
            queue.check_perm(task, READ)
        task.mm.write(buf, IPC_PERM.pack(*queue.perm_bytes()) + MSQID_TAIL.pack(
            queue.stime, queue.rtime, queue.ctime, queue.cbytes, len(queue.messages),
            queue.qbytes, queue.lspid, queue.lrpid))
        return 0 if cmd == IPC_STAT else queue.id
    if cmd not in (IPC_RMID, IPC_SET):
        raise SyscallError(EINVAL)
    data = task.mm.read(buf, IPC_PERM.size + MSQID_TAIL.size) if cmd == IPC_SET else b""
    queue = ns.msgs.lookup(msqid)
    if cmd == IPC_RMID:
        queue.check_owner(task)
        ns.msgs.remove(queue)
        return 0
    qbytes = MSQID_TAIL.unpack_from(data, IPC_PERM.size)[5]
    queue.check_owner(task)
    if qbytes > MSGMNB and not _capable(task, CAP_SYS_RESOURCE):
        raise SyscallError(EPERM)
    _set_perm_from(task, queue, data)
    queue.qbytes = qbytes
    queue.wait.notify()
    return 0
