"""process_vm_readv / process_vm_writev and kcmp: looking at another process of the sandbox.

Both name processes by pid in the sandbox's pid space and reach their memory or objects
through the sentry's own structures (the target's AddressSpace, fd table, fs context):
no host call names another stub.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EBADF, EFAULT, EINVAL, ESRCH, SyscallError
from snakevisor.mm.address_space import PROT_READ, PROT_WRITE
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO, KCMP_SYSVSEM = range(7)
KCMP_EPOLL_TFD, KCMP_TYPES = 7, 8


def _target(task: "Task", pid: int) -> "Task":
    """The live task with this sandbox pid/tid (ESRCH otherwise)."""
    target = task.kernel.tasks.get(pid) if pid > 0 else None
    if target is None or not getattr(target, "alive", True):
        raise SyscallError(ESRCH)
    return target


def _transfer(task: "Task", pid: int, local_iov: int, liovcnt: int, remote_iov: int,
              riovcnt: int, flags: int, to_remote: bool) -> int:
    """Copy along both iovec lists until one ends or a page faults; bytes moved."""
    if flags:
        raise SyscallError(EINVAL)
    local = task.mm.read_iovec(local_iov, liovcnt)  # EINVAL past IOV_MAX
    remote = task.mm.read_iovec(remote_iov, riovcnt)
    rmm = _target(task, s32(pid)).tg.mm
    src_mm, dst_mm = (task.mm, rmm) if to_remote else (rmm, task.mm)
    src, dst = (local, remote) if to_remote else (remote, local)
    done, si, di, soff, doff = 0, 0, 0, 0, 0
    while si < len(src) and di < len(dst):
        (sbase, slen), (dbase, dlen) = src[si], dst[di]
        n = min(slen - soff, dlen - doff)
        if n == 0:
            si, soff = (si + 1, 0) if slen == soff else (si, soff)
            di, doff = (di + 1, 0) if dlen == doff else (di, doff)
            continue
        n = min(n, src_mm.accessible(sbase + soff, n, PROT_READ),
                dst_mm.accessible(dbase + doff, n, PROT_WRITE))
        if n:
            try:
                dst_mm.write(dbase + doff, src_mm.read(sbase + soff, n))
            except SyscallError:
                n = 0
        if n == 0:
            # Linux stops at the first fault in the remote side, skips to the next local
            # vector on a local fault; both end this simple copy here
            break
        done += n
        soff += n
        doff += n
    if done == 0 and any(length for _, length in src) and any(length for _, length in dst):
        raise SyscallError(EFAULT)
    return done


@syscall("process_vm_readv", partial="no EPERM for other credentials (one sandbox, one user)")
def sys_process_vm_readv(task: "Task", pid: int, lvec: int, liovcnt: int, rvec: int,
                         riovcnt: int, flags: int) -> int:
    return _transfer(task, pid, lvec, liovcnt, rvec, riovcnt, flags, to_remote=False)


@syscall("process_vm_writev", partial="no EPERM for other credentials (one sandbox, one user)")
def sys_process_vm_writev(task: "Task", pid: int, lvec: int, liovcnt: int, rvec: int,
                          riovcnt: int, flags: int) -> int:
    return _transfer(task, pid, lvec, liovcnt, rvec, riovcnt, flags, to_remote=True)


def _order(a: object, b: object) -> int:
    """kcmp's answer: 0 equal, 1 less, 2 greater (Linux only promises a consistent order)."""
    if a is b:
        return 0
    return 1 if id(a) < id(b) else 2


def _object(t: "Task", kind: int, idx: int) -> object:
    tg = t.tg
    if kind == KCMP_FILE:
        try:
            return t.fds.get(idx)
        except SyscallError:
            raise SyscallError(EBADF) from None
    if kind == KCMP_VM:
        return tg.mm
    if kind == KCMP_FILES:
        return t.fds
    if kind == KCMP_FS:
        return tg.fs
    if kind == KCMP_SIGHAND:
        return tg.sigactions
    # no per-task io_context or SEM_UNDO list: both are NULL on Linux until first used
    return getattr(tg, "io_context" if kind == KCMP_IO else "sem_undo", None)


@syscall("kcmp", partial="KCMP_EPOLL_TFD: EINVAL; KCMP_IO/KCMP_SYSVSEM compare absent objects")
def sys_kcmp(task: "Task", pid1: int, pid2: int, kind: int, idx1: int, idx2: int, *_: int) -> int:
    t1, t2 = _target(task, s32(pid1)), _target(task, s32(pid2))
    kind = s32(kind)
    if kind == KCMP_EPOLL_TFD:
        task.kernel.warn_once("kcmp:epoll_tfd", "kcmp(KCMP_EPOLL_TFD): not implemented -> EINVAL")
        raise SyscallError(EINVAL)
    if not 0 <= kind < KCMP_TYPES:
        raise SyscallError(EINVAL)
    a = _object(t1, kind, s32(idx1))
    b = _object(t2, kind, s32(idx2))
    if a is None and b is None:
        return 0
    return _order(a, b)
