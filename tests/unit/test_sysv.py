"""System V semaphores and message queues, driven as the kernel drives them: blocking
calls raise Block on the object's queue and are dispatched again after a change."""
from __future__ import annotations

import errno
import struct

from snakevisor.kernel.sysvipc import on_exit, sysv_namespace
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
