"""Signal dispositions, masks and self-directed signals.

Until the signals issue lands, the sentry records actions and masks exactly (so libraries
that install handlers or block signals work) and carries out *default* actions of signals a
process sends itself (abort() → SIGABRT terminates with status 134).  Delivering a signal to
a handler is not done yet: such a kill answers ENOSYS with a log line, never a silent success.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EINVAL, ENOMEM, ENOSYS, ESRCH, SyscallError
from snakevisor.syscalls import NO_RETURN, syscall
from snakevisor.syscalls.args import s32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

SIGKILL, SIGSTOP, SIGCHLD, SIGCONT, SIGURG, SIGWINCH = 9, 19, 17, 18, 23, 28
NSIG = 64
SIG_DFL, SIG_IGN = 0, 1
UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))
#: signals whose default action is to do nothing
DEFAULT_IGNORE = {SIGCHLD, SIGCONT, SIGURG, SIGWINCH}
#: signals whose default action also dumps core (the 0x80 bit of the wait status)
DEFAULT_CORE = {3, 4, 5, 6, 7, 8, 11, 24, 25, 31}
SS_ONSTACK, SS_DISABLE, MINSIGSTKSZ = 1, 2, 2048
_SIGACTION = struct.Struct("<QQQQ")
_STACK_T = struct.Struct("<Qi4xQ")


@syscall("rt_sigaction", partial="actions are recorded; delivery to handlers comes with the signals issue")
def sys_rt_sigaction(task: "Task", signum: int, act: int, oldact: int, sigsetsize: int, *_: int) -> int:
    signum = s32(signum)
    if sigsetsize != 8:
        raise SyscallError(EINVAL)
    if not 1 <= signum <= NSIG:
        raise SyscallError(EINVAL)
    new = None
    if act:
        new = _SIGACTION.unpack(task.mm.read(act, _SIGACTION.size))
        if signum in (SIGKILL, SIGSTOP):
            raise SyscallError(EINVAL)
    actions = task.tg.sigactions
    if oldact:
        task.mm.write(oldact, _SIGACTION.pack(*actions.get(signum, (0, 0, 0, 0))))
    if new is not None:
        handler, flags, restorer, mask = new
        actions[signum] = (handler, flags, restorer, mask & ~UNBLOCKABLE)
    return 0


@syscall("rt_sigprocmask")
def sys_rt_sigprocmask(task: "Task", how: int, nset: int, oset: int, sigsetsize: int, *_: int) -> int:
    if sigsetsize != 8:
        raise SyscallError(EINVAL)
    old = task.sigmask
    if nset:
        how = s32(how)
        if how not in (0, 1, 2):
            raise SyscallError(EINVAL)
        value = task.mm.read_u64(nset)
        if how == 0:
            mask = old | value
        elif how == 1:
            mask = old & ~value
        else:
            mask = value
        new_mask = mask & ~UNBLOCKABLE
    else:
        new_mask = old
    if oset:
        task.mm.write_u64(oset, old)
    task.sigmask = new_mask
    return 0


@syscall("rt_sigpending")
def sys_rt_sigpending(task: "Task", set_ptr: int, sigsetsize: int, *_: int) -> int:
    if sigsetsize > 8:
        raise SyscallError(EINVAL)
    task.mm.write(set_ptr, bytes(sigsetsize))
    return 0


@syscall("sigaltstack")
def sys_sigaltstack(task: "Task", ss: int, old_ss: int, *_: int) -> int:
    if ss:
        sp, flags, size = _STACK_T.unpack(task.mm.read(ss, _STACK_T.size))
    if old_ss:
        sp0, flags0, size0 = task.altstack
        task.mm.write(old_ss, _STACK_T.pack(sp0, flags0, size0))
    if ss:
        if flags & ~(SS_DISABLE | (1 << 31)):
            raise SyscallError(EINVAL)
        if flags & SS_DISABLE:
            task.altstack = (0, SS_DISABLE, 0)
        else:
            if size < MINSIGSTKSZ:
                raise SyscallError(ENOMEM)
            task.altstack = (sp, flags, size)
    return 0


def _self_signal(task: "Task", pid: int, sig: int) -> int:
    """kill/tgkill aimed at the caller's own process: sig 0 probes, default actions run."""
    if not 0 <= sig <= NSIG:
        raise SyscallError(EINVAL)
    if pid != task.tg.pid:
        raise SyscallError(ESRCH)
    if sig == 0:
        return 0
    handler = task.tg.sigactions.get(sig, (SIG_DFL,))[0]
    if sig not in (SIGKILL, SIGSTOP) and (handler == SIG_IGN or (handler == SIG_DFL and sig in DEFAULT_IGNORE)):
        return 0
    if sig in (SIGKILL,) or handler == SIG_DFL:
        if sig == SIGSTOP or sig in (20, 21, 22):
            task.kernel.warn_once("stop", f"job-control stop signal {sig} to self not supported -> ENOSYS")
            raise SyscallError(ENOSYS)
        if task.sigmask & (1 << (sig - 1)) and sig != SIGKILL:
            task.kernel.warn_once("pending", f"blocked signal {sig} sent to self: queuing not supported -> ENOSYS")
            raise SyscallError(ENOSYS)
        task.kernel.exit_group(task.tg, sig | (0x80 if sig in DEFAULT_CORE else 0))
        return NO_RETURN  # type: ignore[return-value]
    task.kernel.warn_once(f"deliver:{sig}", f"kill({pid}, {sig}) to a handler: delivery not supported yet -> ENOSYS")
    raise SyscallError(ENOSYS)


@syscall("kill", partial="only the caller's own process")
def sys_kill(task: "Task", pid: int, sig: int, *_: int) -> object:
    pid = s32(pid)
    return _self_signal(task, task.tg.pid if pid == 0 else pid, s32(sig))


@syscall("tgkill", partial="only the caller's own thread group")
def sys_tgkill(task: "Task", tgid: int, tid: int, sig: int, *_: int) -> object:
    tgid, tid = s32(tgid), s32(tid)
    if tgid <= 0 or tid <= 0:
        raise SyscallError(EINVAL)
    if tgid != task.tg.pid or all(t.tid != tid for t in task.tg.tasks):
        raise SyscallError(ESRCH)
    return _self_signal(task, tgid, s32(sig))


@syscall("tkill", partial="only the caller's own threads")
def sys_tkill(task: "Task", tid: int, sig: int, *_: int) -> object:
    tid = s32(tid)
    if tid <= 0:
        raise SyscallError(EINVAL)
    if all(t.tid != tid for t in task.tg.tasks):
        raise SyscallError(ESRCH)
    return _self_signal(task, task.tg.pid, s32(sig))
