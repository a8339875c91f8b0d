"""Signal system calls: dispositions, masks, the alternate stack, sending (kill, tgkill,
sigqueue), waiting (sigsuspend, pause, sigtimedwait) and rt_sigreturn.  Generation and
delivery themselves live in snakevisor.kernel.signals.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import (EAGAIN, EINTR, EINVAL, EPERM, ESRCH, Block,
                                      SyscallError, WaitQueue)
from snakevisor.kernel.signals import (DEFAULT_IGNORE, NSIG, SA_KNOWN, SIG_DFL,
                                       SIG_IGN, SIGCONT, SIGKILL, SIGSTOP, UNBLOCKABLE,
                                       basic_siginfo, has_deliverable, sigreturn)
from snakevisor.kernel.sigframe import SI_TKILL, SI_USER, AltStack, do_sigaltstack, sigaltstack_report
from snakevisor.syscalls import NO_RETURN, syscall
from snakevisor.syscalls.sys_cred import CAP_KILL, has_cap
from snakevisor.syscalls.args import s32, u32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task, ThreadGroup

SS_ONSTACK, SS_DISABLE, MINSIGSTKSZ = 1, 2, 2048
_SIGACTION = struct.Struct("<QQQQ")
_STACK_T = struct.Struct("<QI4xQ")


@syscall("rt_sigaction")
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
        actions[signum] = (handler, flags & SA_KNOWN, restorer, mask & ~UNBLOCKABLE)
        if handler == SIG_IGN or (handler == SIG_DFL and signum in DEFAULT_IGNORE):
            # POSIX: setting a pending signal to be ignored discards it, in every thread
            task.tg.shared_pending.discard(signum)
            for t in task.tg.tasks:
                t.sigpending.discard(signum)
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
    pending = (task.sigpending.mask | task.tg.shared_pending.mask) & task.sigmask
    task.mm.write(set_ptr, pending.to_bytes(8, "little")[:sigsetsize])
    return 0


@syscall("sigaltstack")
def sys_sigaltstack(task: "Task", ss: int, old_ss: int, *_: int) -> int:
    sp = task.thread.get_regs().rsp if task.thread is not None else 0
    current = AltStack(*task.altstack)
    new = None
    if ss:
        new_sp, flags, size = _STACK_T.unpack(task.mm.read(ss, _STACK_T.size))
        new = AltStack(new_sp, flags & 0xFFFFFFFF, size)
    report = sigaltstack_report(current, sp)
    if new is not None:
        task.altstack = tuple(do_sigaltstack(current, new, sp))
    if old_ss:  # written only when the change succeeded, as Linux does
        task.mm.write(old_ss, _STACK_T.pack(*report))
    return 0


def _may_signal(task: "Task", target: "ThreadGroup", sig: int) -> bool:
    """kill(2)'s permission rule: CAP_KILL, or a real/effective uid matching the target's real
    or saved uid; SIGCONT within the same session is always allowed."""
    me, them = task.tg.creds, target.creds
    if has_cap(task, CAP_KILL) or (sig == SIGCONT and task.tg.sid == target.sid):
        return True
    return bool({me.ruid, me.euid} & {them.ruid, them.suid})


def _check_sig(sig: int) -> None:
    if not 0 <= sig <= NSIG:
        raise SyscallError(EINVAL)


def _user_info(task: "Task", sig: int, code: int) -> bytes:
    return basic_siginfo(sig, code, pid=task.tg.pid, uid=task.tg.creds.ruid)


def _signal_groups(task: "Task", groups: list["ThreadGroup"], sig: int) -> int:
    """Send to each permitted group; ESRCH when none exists, EPERM when none permitted."""
    if not groups:
        raise SyscallError(ESRCH)
    allowed = [g for g in groups if _may_signal(task, g, sig)]
    if not allowed:
        raise SyscallError(EPERM)
    if sig:
        for g in allowed:
            task.kernel.send_signal(g, sig, _user_info(task, sig, SI_USER))
    return 0


@syscall("kill")
def sys_kill(task: "Task", pid: int, sig: int, *_: int) -> object:
    pid, sig = s32(pid), s32(sig)
    _check_sig(sig)
    kernel = task.kernel
    live = [g for g in kernel.thread_groups.values() if g.alive]
    if pid > 0:
        t = kernel.tasks.get(pid)
        zombie = kernel.thread_groups.get(pid)
        if t is None:
            if zombie is not None and not zombie.reaped:
                return 0 if _may_signal(task, zombie, sig) else -EPERM  # a zombie: nothing to do
            raise SyscallError(ESRCH)
        return _signal_groups(task, [t.tg], sig)
    if pid == 0:
        return _signal_groups(task, [g for g in live if g.pgid == task.tg.pgid], sig)
    if pid == -1:
        targets = [g for g in live if g is not kernel.init and g is not task.tg]
        if not targets:
            raise SyscallError(ESRCH)
        for g in targets:
            if sig and _may_signal(task, g, sig):
                kernel.send_signal(g, sig, _user_info(task, sig, SI_USER))
        return 0
    if pid == -0x80000000:
        raise SyscallError(ESRCH)
    return _signal_groups(task, [g for g in live if g.pgid == -pid], sig)


def _thread(task: "Task", tgid: int, tid: int) -> "Task":
    if tid <= 0 or tgid == 0 or tgid < -1:
        raise SyscallError(EINVAL)
    t = task.kernel.tasks.get(tid)
    if t is None or not t.alive or (tgid > 0 and t.tg.pid != tgid):
        raise SyscallError(ESRCH)
    return t


def _signal_thread(task: "Task", target: "Task", sig: int, info: bytes) -> int:
    _check_sig(sig)
    if not _may_signal(task, target.tg, sig):
        raise SyscallError(EPERM)
    if sig:
        task.kernel.send_signal(target, sig, info)
    return 0


@syscall("tgkill")
def sys_tgkill(task: "Task", tgid: int, tid: int, sig: int, *_: int) -> object:
    sig = s32(sig)
    _check_sig(sig)
    target = _thread(task, s32(tgid) if s32(tgid) > 0 else 0, s32(tid))
    return _signal_thread(task, target, sig, _user_info(task, sig, SI_TKILL))


@syscall("tkill")
def sys_tkill(task: "Task", tid: int, sig: int, *_: int) -> object:
    sig = s32(sig)
    _check_sig(sig)
    target = _thread(task, -1, s32(tid))
    return _signal_thread(task, target, sig, _user_info(task, sig, SI_TKILL))


def _queued_info(task: "Task", target_pid: int, sig: int, uinfo: int) -> bytes:
    info = bytearray(task.mm.read(uinfo, 128))
    code = int.from_bytes(info[8:12], "little", signed=True)
    if (code >= 0 or code == SI_TKILL) and target_pid != task.tg.pid:
        raise SyscallError(EPERM)  # only the kernel may forge kernel codes for others
    info[0:4] = sig.to_bytes(4, "little")
    return bytes(info)


@syscall("rt_sigqueueinfo")
def sys_rt_sigqueueinfo(task: "Task", tgid: int, sig: int, uinfo: int, *_: int) -> object:
    tgid, sig = s32(tgid), s32(sig)
    _check_sig(sig)
    t = task.kernel.tasks.get(tgid)
    if tgid <= 0 or t is None:
        raise SyscallError(ESRCH)
    info = _queued_info(task, tgid, sig, uinfo)
    if not _may_signal(task, t.tg, sig):
        raise SyscallError(EPERM)
    if sig:
        task.kernel.send_signal(t.tg, sig, info)
    return 0


@syscall("rt_tgsigqueueinfo")
def sys_rt_tgsigqueueinfo(task: "Task", tgid: int, tid: int, sig: int, uinfo: int, *_: int) -> object:
    tgid, sig = s32(tgid), s32(sig)
    _check_sig(sig)
    if tgid <= 0:
        raise SyscallError(EINVAL)
    target = _thread(task, tgid, s32(tid))
    return _signal_thread(task, target, sig, _queued_info(task, tgid, sig, uinfo))


@syscall("pidfd_send_signal")
def sys_pidfd_send_signal(task: "Task", pidfd: int, sig: int, uinfo: int, flags: int, *_: int) -> object:
    from snakevisor.syscalls.sys_process import pidfd_target
    sig, flags = s32(sig), u32(flags)
    scope = flags & (PIDFD_SIGNAL_THREAD | PIDFD_SIGNAL_THREAD_GROUP | PIDFD_SIGNAL_PROCESS_GROUP)
    if flags != scope or scope & (scope - 1):
        raise SyscallError(EINVAL)  # unknown flags, or more than one scope
    target = pidfd_target(task, s32(pidfd))
    _check_sig(sig)
    if not target.alive:
        raise SyscallError(ESRCH)
    info = _queued_info(task, target.pid, sig, uinfo) if uinfo else _user_info(task, sig, SI_USER)
    if scope == PIDFD_SIGNAL_PROCESS_GROUP:
        return _signal_groups(task, [g for g in task.kernel.thread_groups.values()
                                     if g.alive and g.pgid == target.pgid], sig)
    if not _may_signal(task, target, sig):
        raise SyscallError(EPERM)
    if sig:
        leader = task.kernel.tasks.get(target.pid)
        dest = leader if scope == PIDFD_SIGNAL_THREAD and leader is not None else target
        task.kernel.send_signal(dest, sig, info)
    return 0


PIDFD_SIGNAL_THREAD, PIDFD_SIGNAL_THREAD_GROUP, PIDFD_SIGNAL_PROCESS_GROUP = 1, 2, 4


# -- waiting for signals ----------------------------------------------------------------------
@syscall("rt_sigsuspend")
def sys_rt_sigsuspend(task: "Task", mask: int, size: int, *_: int) -> object:
    if size != 8:
        raise SyscallError(EINVAL)
    state = task.syscall_state
    if state is None:
        new = task.mm.read_u64(mask) & ~UNBLOCKABLE
        task.syscall_state = {"old": task.sigmask}
        task.saved_sigmask = task.sigmask
        task.sigmask = new
    if has_deliverable(task):
        return -EINTR  # the handler runs with the suspend mask; the frame keeps the old one
    raise Block(queue=_NEVER)


@syscall("pause")
def sys_pause(task: "Task", *_: int) -> object:
    if has_deliverable(task):
        return -EINTR
    raise Block(queue=_NEVER)


_NEVER = WaitQueue()  # nothing notifies it: only a signal ends these waits

_TIMESPEC = struct.Struct("<qq")


@syscall("rt_sigtimedwait")
def sys_rt_sigtimedwait(task: "Task", uthese: int, uinfo: int, uts: int, size: int, *_: int) -> object:
    if size != 8:
        raise SyscallError(EINVAL)
    state = task.syscall_state
    if state is None:
        these = task.mm.read_u64(uthese) & ~UNBLOCKABLE
        deadline = None
        if uts:
            sec, nsec = _TIMESPEC.unpack(task.mm.read(uts, 16))
            if sec < 0 or not 0 <= nsec < 1_000_000_000:
                raise SyscallError(EINVAL)
            deadline = task.kernel.now() + sec + nsec / 1e9
        state = task.syscall_state = {"these": these, "deadline": deadline}
    these = state["these"]
    # Signals in `these` are taken even if blocked (the usual way to use it).
    got = task.sigpending.take(~these & ((1 << 64) - 1)) or \
        task.tg.shared_pending.take(~these & ((1 << 64) - 1))
    if got is not None:
        sig, info = got
        if uinfo:
            task.mm.write(uinfo, info)
        return sig
    deadline = state["deadline"]
    if deadline is not None and task.kernel.now() >= deadline:
        raise SyscallError(EAGAIN)
    raise Block(deadline=deadline, queue=task.tg.signal_wait)


@syscall("rt_sigreturn")
def sys_rt_sigreturn(task: "Task", *_: int) -> object:
    sigreturn(task)
    if task.alive:
        task.kernel.finish(task, None)
    return NO_RETURN
