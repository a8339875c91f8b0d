"""System V semaphores and message queues, driven as the kernel drives them: blocking
calls raise Block on the object's queue and are dispatched again after a change."""
from __future__ import annotations

import errno
import struct

from snakevisor.fsimpl.procfs import sysvipc as sysvipc_proc
from snakevisor.kernel.sysvipc import on_exit, sysv_namespace
from snakevisor.kernel.task import Credentials
from tests.unit.conftest import DispatchEnv

IPC_PRIVATE, IPC_NOWAIT, IPC_RMID = 0, 0o4000, 0
GETVAL, GETNCNT, SETVAL = 12, 14, 16
SEM_UNDO = 0x1000


def _sops(env: DispatchEnv, *ops: tuple[int, int, int]) -> int:
    return env.p.put(b"".join(struct.pack("<Hhh", *op) for op in ops))


def _park(env: DispatchEnv, *call: object) -> None:
    """Dispatch expecting Block and park the task on its queue, as Kernel does."""
    block = env.blocks(*call)  # type: ignore[arg-type]
    assert block.queue is not None
    block.queue.waiters.append(env.task)
    env.woken.clear()


def test_semop_blocks_then_completes_after_increment() -> None:
    env = DispatchEnv()
    sid = env.dispatch("semget", IPC_PRIVATE, 1, 0o600)
    assert sid >= 0
    dec = _sops(env, (0, -1, 0))
    _park(env, "semop", sid, dec, 1)
    assert env.dispatch("semctl", sid, 0, GETNCNT, task=env.peer) == 1
    assert env.dispatch("semop", sid, _sops(env, (0, 1, 0)), 1, task=env.peer) == 0
    assert env.task in env.woken
    assert env.p.raw("semop", sid, dec, 1) == 0  # the re-dispatch completes
    env.task.syscall_state = None
    assert env.dispatch("semctl", sid, 0, GETVAL) == 0
    assert env.dispatch("semctl", sid, 0, GETNCNT) == 0


def test_removal_wakes_waiter_with_eidrm() -> None:
    env = DispatchEnv()
    sid = env.dispatch("semget", IPC_PRIVATE, 1, 0o600)
    dec = _sops(env, (0, -1, 0))
    env.blocks("semop", sid, dec, 1)
    assert env.dispatch("semctl", sid, 0, IPC_RMID, task=env.peer) == 0
    assert env.p.raw("semop", sid, dec, 1) == -errno.EIDRM


def test_nowait_and_sem_undo_applied_at_exit() -> None:
    env = DispatchEnv()
    sid = env.dispatch("semget", IPC_PRIVATE, 2, 0o600)
    assert env.dispatch("semop", sid, _sops(env, (0, -1, IPC_NOWAIT)), 1) == -errno.EAGAIN
    assert env.dispatch("semop", sid, _sops(env, (0, 3, SEM_UNDO), (1, 2, 0)), 2) == 0
    assert env.dispatch("semop", sid, _sops(env, (0, -1, SEM_UNDO)), 1) == 0
    assert env.dispatch("semctl", sid, 0, GETVAL) == 2
    on_exit(env.p.tg)  # undoes +3-1 on sem 0 only
    assert env.dispatch("semctl", sid, 0, GETVAL) == 0
    assert env.dispatch("semctl", sid, 1, GETVAL) == 2
    assert not sysv_namespace(env.p.kernel).undo


def test_setval_clears_undo() -> None:
    env = DispatchEnv()
    sid = env.dispatch("semget", IPC_PRIVATE, 1, 0o600)
    assert env.dispatch("semop", sid, _sops(env, (0, 5, SEM_UNDO)), 1) == 0
    assert env.dispatch("semctl", sid, 0, SETVAL, 1) == 0
    on_exit(env.p.tg)
    assert env.dispatch("semctl", sid, 0, GETVAL) == 1


def test_msgrcv_blocks_until_matching_type() -> None:
    env = DispatchEnv()
    qid = env.dispatch("msgget", IPC_PRIVATE, 0o600)
    buf = env.p.alloc(64)
    _park(env, "msgrcv", qid, buf, 32, 7, 0)
    assert env.dispatch("msgsnd", qid, env.p.put(struct.pack("<q", 3) + b"no"), 2, 0,
                        task=env.peer) == 0
    assert env.task in env.woken
    _park(env, "msgrcv", qid, buf, 32, 7, 0)  # type 3 does not match
    assert env.dispatch("msgsnd", qid, env.p.put(struct.pack("<q", 7) + b"yes"), 3, 0,
                        task=env.peer) == 0
    assert env.dispatch("msgrcv", qid, buf, 32, 7, 0) == 3
    assert env.p.get(buf, 11) == struct.pack("<q", 7) + b"yes"
    assert env.dispatch("msgrcv", qid, buf, 1, 0, 0) == -errno.E2BIG
    assert env.dispatch("msgrcv", qid, buf, 32, 0, IPC_NOWAIT) == 2
    assert env.dispatch("msgrcv", qid, buf, 32, 0, IPC_NOWAIT) == -errno.ENOMSG


# -- introspection: ids, *_INFO, *_STAT, /proc/sysvipc ----------------------------------------

IPC_STAT, IPC_INFO = 2, 3
SEM_STAT, SEM_INFO, SEM_STAT_ANY = 18, 19, 20
MSG_STAT, MSG_INFO, MSG_STAT_ANY = 11, 12, 13
SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO, SHM_STAT_ANY = 11, 12, 13, 14, 15


def _become(env: DispatchEnv, uid: int) -> None:
    """Switch the fake process to an unprivileged uid (capabilities recomputed)."""
    env.p.tg.creds = Credentials(uid, uid)
    if hasattr(env.p.tg, "caps"):
        del env.p.tg.caps


def test_ids_cycle_through_indices_then_bump_the_sequence() -> None:
    """Linux's ipc_idr_alloc: 0, 1, 2 ... in a fresh namespace, a removed index is not
    reused until the cycle of 64 wraps, and the wrap bumps the sequence (id 32768)."""
    env = DispatchEnv()
    first = [env.dispatch("semget", IPC_PRIVATE, 1, 0o600) for _ in range(3)]
    assert first == [0, 1, 2]
    for sid in first[:2]:
        assert env.dispatch("semctl", sid, 0, IPC_RMID) == 0
    ids = []
    for _ in range(62):
        ids.append(env.dispatch("semget", IPC_PRIVATE, 1, 0o600))
        assert env.dispatch("semctl", ids[-1], 0, IPC_RMID) == 0
    assert ids[:2] == [3, 4] and ids[60] == 63
    assert ids[61] == 32768  # index 0 again, sequence 1
    assert env.dispatch("semctl", 0, 0, IPC_STAT, env.p.alloc(128)) == -errno.EINVAL


def test_sem_info_and_stat() -> None:
    env = DispatchEnv()
    info = env.p.alloc(40)
    assert env.dispatch("semctl", 0, 0, SEM_INFO, info) == 0  # nothing in use: 0
    assert struct.unpack("<10i", env.p.get(info, 40))[7:] == (0, 32767, 0)
    a = env.dispatch("semget", 0x55, 3, 0o600 | 0o1000)
    b = env.dispatch("semget", IPC_PRIVATE, 2, 0o600)
    assert env.dispatch("semctl", b, 0, IPC_RMID) == 0
    c = env.dispatch("semget", IPC_PRIVATE, 4, 0o600)
    assert (a, c) == (0, 2)
    assert env.dispatch("semctl", 0, 0, IPC_INFO, info) == 2
    assert struct.unpack("<10i", env.p.get(info, 40)) == (
        1024000000, 32000, 1024000000, 1024000000, 32000, 500, 500, 20, 32767, 32767)
    assert env.dispatch("semctl", 0, 0, SEM_INFO, info) == 2
    assert struct.unpack("<10i", env.p.get(info, 40))[7:] == (2, 32767, 7)  # sets, sems
    assert env.dispatch("semctl", -1, 0, IPC_INFO, info) == -errno.EINVAL
    ds = env.p.alloc(104)
    assert env.dispatch("semctl", 2, 0, SEM_STAT, ds) == c
    assert env.dispatch("semctl", 2 | 0x8000, 0, SEM_STAT, ds) == c  # the index is masked
    key, *_rest = struct.unpack_from("<iIIIIIH", env.p.get(ds, 104))
    assert (key, struct.unpack_from("<Q", env.p.get(ds, 104), 80)[0]) == (0, 4)
    assert env.dispatch("semctl", 1, 0, SEM_STAT, ds) == -errno.EINVAL
    assert env.dispatch("semctl", a, 0, IPC_STAT, ds) == 0
    assert env.dispatch("semctl", 21, 0, 99, ds) == -errno.EINVAL
    _become(env, 1000)  # mode 0600 owned by root: SEM_STAT needs read permission
    assert env.dispatch("semctl", 0, 0, SEM_STAT, ds) == -errno.EACCES
    assert env.dispatch("semctl", 0, 0, SEM_STAT_ANY, ds) == a
    assert env.dispatch("semctl", 0, 0, SEM_INFO, info) == 2


def test_msg_info_and_stat() -> None:
    env = DispatchEnv()
    qid = env.dispatch("msgget", 0x66, 0o620 | 0o1000)
    for text in (b"abc", b"defghij"):
        assert env.dispatch("msgsnd", qid, env.p.put(struct.pack("<q", 5) + text),
                            len(text), 0) == 0
    info = env.p.alloc(32)
    assert env.dispatch("msgctl", 0, IPC_INFO, info) == 0
    assert struct.unpack("<7iH2x", env.p.get(info, 32)) == (
        512000, 16384, 8192, 16384, 32000, 16, 16384, 65535)
    assert env.dispatch("msgctl", 0, MSG_INFO, info) == 0
    assert struct.unpack("<7iH2x", env.p.get(info, 32))[:3] == (1, 2, 8192)
    assert struct.unpack("<7iH2x", env.p.get(info, 32))[6] == 10
    ds = env.p.alloc(120)
    assert env.dispatch("msgctl", 0, MSG_STAT, ds) == qid
    assert struct.unpack_from("<QQ", env.p.get(ds, 120), 72) == (10, 2)  # cbytes, qnum
    assert env.dispatch("msgctl", 1, MSG_STAT, ds) == -errno.EINVAL
    assert env.dispatch("msgctl", 0, -1, ds) == -errno.EINVAL
    _become(env, 1000)  # 0620: others may not read
    assert env.dispatch("msgctl", 0, MSG_STAT, ds) == -errno.EACCES
    assert env.dispatch("msgctl", 0, MSG_STAT_ANY, ds) == qid


def test_shm_info_stat_and_lock() -> None:
    env = DispatchEnv()
    a = env.dispatch("shmget", IPC_PRIVATE, 10000, 0o600)
    b = env.dispatch("shmget", 0x1234, 100, 0o640 | 0o1000)
    assert (a, b) == (0, 1)
    info = env.p.alloc(72)
    assert env.dispatch("shmctl", 0, IPC_INFO, info) == 1
    assert struct.unpack("<9Q", env.p.get(info, 72))[1:4] == (1, 4096, 4096)
    assert env.dispatch("shmctl", 0, SHM_INFO, info) == 1
    used, tot = struct.unpack_from("<i4xQ", env.p.get(info, 16))
    assert (used, tot) == (2, 3 + 1)  # pages of 10000 and 100 bytes
    ds = env.p.alloc(112)
    assert env.dispatch("shmctl", 1, SHM_STAT, ds) == b
    assert env.dispatch("shmctl", 2, SHM_STAT, ds) == -errno.EINVAL
    assert env.dispatch("shmctl", a, IPC_STAT | 0x100, ds) == -errno.EINVAL  # no IPC_64
    assert env.dispatch("shmctl", a, SHM_LOCK, 0) == 0
    assert env.dispatch("shmctl", a, IPC_STAT, ds) == 0
    assert struct.unpack_from("<I", env.p.get(ds, 112), 20)[0] == 0o2600  # SHM_LOCKED
    text = sysvipc_proc.shm(env.p.kernel).decode().splitlines()
    assert text[0] == sysvipc_proc.SHM_HEADER.rstrip("\n")
    assert text[1].split()[:7] == ["0", "0", "2600", "10000", "1", "0", "0"]
    assert text[2].split()[:3] == [str(0x1234), "1", "640"]
    assert len(text[1]) == len(text[0])  # the columns line up with the header
    assert env.dispatch("shmctl", a, SHM_UNLOCK, 0) == 0
    _become(env, 1000)
    assert env.dispatch("shmctl", 0, SHM_STAT, ds) == -errno.EACCES
    assert env.dispatch("shmctl", 0, SHM_STAT_ANY, ds) == a
    assert env.dispatch("shmctl", a, SHM_LOCK, 0) == -errno.EPERM  # not the owner


def test_proc_sysvipc_sem_and_msg_rows() -> None:
    env = DispatchEnv()
    assert env.dispatch("semget", 0x55, 3, 0o600 | 0o1000) == 0
    assert env.dispatch("msgget", 0x66, 0o620 | 0o1000) == 0
    sem = sysvipc_proc.sem(env.p.kernel).decode().splitlines()
    msg = sysvipc_proc.msg(env.p.kernel).decode().splitlines()
    assert sem[0].split() == ["key", "semid", "perms", "nsems", "uid", "gid", "cuid", "cgid",
                              "otime", "ctime"]
    assert sem[1].split()[:9] == ["85", "0", "600", "3", "0", "0", "0", "0", "0"]
    assert len(sem[1]) == len(sem[0])
    assert msg[1].split()[:12] == ["102", "0", "620", "0", "0", "0", "0", "0", "0", "0", "0",
                                   "0"]
    assert len(msg[1]) == len(msg[0])


def test_ncnt_counts_a_waiter_on_the_operation_it_blocks_on() -> None:
    """Linux (q->blocking): a semop of two decrements waits on the first that cannot go."""
    env = DispatchEnv()
    sid = env.dispatch("semget", IPC_PRIVATE, 2, 0o600)
    both = _sops(env, (0, -1, 0), (1, -1, 0))
    _park(env, "semop", sid, both, 2)
    counts = [env.dispatch("semctl", sid, n, GETNCNT, task=env.peer) for n in (0, 1)]
    assert counts == [1, 0]
    assert env.dispatch("semctl", sid, 0, SETVAL, 1, task=env.peer) == 0
    _park(env, "semop", sid, both, 2)  # re-dispatched: now it waits on semaphore 1
    counts = [env.dispatch("semctl", sid, n, GETNCNT, task=env.peer) for n in (0, 1)]
    assert counts == [0, 1]
