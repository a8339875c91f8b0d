"""Signals, served by the sentry: generation, the choice of a thread, delivery to handlers
(an rt_sigframe on the application stack), default actions and job control.

The host never delivers a signal to application code: stubs block every host signal, so
what reaches a stub is only SIGKILL, the SIGSTOP the sentry uses to *kick* a thread that is
running application code, and synchronous CPU faults (which ptrace reports before the host
acts on them).  Everything else is bookkeeping here:

* generation (`send_signal`) queues the signal on a thread or its process and makes one
  eligible thread notice: a thread parked in a blocking call is interrupted, one running
  application code is kicked, one being served right now notices on its way out;
* delivery (`deliver`) runs when a thread is about to return to application code: it takes
  the next unblocked signal and either ignores it, carries out the default action, or
  builds a frame and points the thread at the handler.
"""
from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EFAULT, EINTR, SyscallError
from snakevisor.kernel.sigframe import CLD_CONTINUED, CLD_STOPPED, SI_KERNEL, SI_USER

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task, ThreadGroup

log = logging.getLogger("snakevisor.signals")

SIGHUP, SIGINT, SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE = 1, 2, 3, 4, 5, 6, 7, 8
SIGKILL, SIGUSR1, SIGSEGV, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM = 9, 10, 11, 12, 13, 14, 15
SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU = 17, 18, 19, 20, 21, 22
SIGURG, SIGXCPU, SIGXFSZ, SIGWINCH, SIGSYS = 23, 24, 25, 28, 31
NSIG = 64
SIG_DFL, SIG_IGN = 0, 1
#: the sandbox's first process: the init of its pid namespace (pid 1 is never reused)
INIT_PID = 1

SA_NOCLDSTOP, SA_NOCLDWAIT, SA_SIGINFO = 1, 2, 4
SA_ONSTACK, SA_RESTART, SA_NODEFER, SA_RESETHAND = 0x08000000, 0x10000000, 0x40000000, 0x80000000
SA_RESTORER = 0x04000000
SA_EXPOSE_TAGBITS = 0x800
#: the sa_flags Linux keeps (others, including SA_UNSUPPORTED 0x400, read back as clear)
SA_KNOWN = (SA_NOCLDSTOP | SA_NOCLDWAIT | SA_SIGINFO | SA_EXPOSE_TAGBITS | SA_ONSTACK |
            SA_RESTART | SA_NODEFER | SA_RESETHAND | SA_RESTORER)


UNBLOCKABLE = (1 << (SIGKILL - 1)) | (1 << (SIGSTOP - 1))
STOP_SIGNALS = frozenset({SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU})
DEFAULT_IGNORE = frozenset({SIGCHLD, SIGCONT, SIGURG, SIGWINCH})
DEFAULT_CORE = frozenset({SIGQUIT, SIGILL, SIGTRAP, SIGABRT, SIGBUS, SIGFPE, SIGSEGV, SIGXCPU,
                          SIGXFSZ, SIGSYS})
#: synchronous CPU faults: never ignorable, never left blocked (Linux's force_sig)
FAULTS = frozenset({SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGSEGV, SIGSYS})
_STOP_MASK = sum(1 << (s - 1) for s in STOP_SIGNALS)
_CONT_BIT = 1 << (SIGCONT - 1)

#: system calls Linux never restarts after a handler (signal(7)): they fail with EINTR
NEVER_RESTART = frozenset({
    "pause", "rt_sigsuspend", "rt_sigtimedwait", "nanosleep", "clock_nanosleep", "poll",
    "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "io_getevents", "semop", "semtimedop", "msgrcv", "msgsnd", "futex_waitv",
})


def sig_bit(sig: int) -> int:
    return 1 << (sig - 1)


def basic_siginfo(signo: int, code: int, pid: int = 0, uid: int = 0, status: int = 0,
                  addr: int | None = None) -> bytes:
    """A 128-byte siginfo for the kinds the kernel itself generates."""
    from snakevisor.kernel.sigframe import pack_siginfo
    if addr is not None:
        return pack_siginfo(signo, code, addr=addr)
    return pack_siginfo(signo, code, pid=pid, uid=uid, status=status)


def fatal_status(sig: int) -> int:
    """The wait status of a process a signal killed.  The sandbox writes no core dumps, so
    the core flag (0x80) is never set, as on Linux when no dump was written (e.g. with
    RLIMIT_CORE 0); DEFAULT_CORE signals still report CLD_KILLED, not CLD_DUMPED."""
    return sig


def action(tg: "ThreadGroup", sig: int) -> tuple[int, int, int, int]:
    return tg.sigactions.get(sig, (SIG_DFL, 0, 0, 0))


def is_ignored(tg: "ThreadGroup", sig: int) -> bool:
    """Would delivery do nothing at all (so generation may drop it)?"""
    if sig in (SIGKILL, SIGSTOP):
        return False
    handler = action(tg, sig)[0]
    return handler == SIG_IGN or (handler == SIG_DFL and sig in DEFAULT_IGNORE)


# -- generation -----------------------------------------------------------------------------
def send_signal(kernel: "Kernel", target: "Task | ThreadGroup", sig: int,
                info: bytes | None = None) -> None:
    """Generate `sig` for a thread (Task) or a process (ThreadGroup)."""
    from snakevisor.kernel.task import Task
    if isinstance(target, Task):
        task: "Task | None" = target
        tg = target.tg
        pending = target.sigpending
    else:
        task, tg, pending = None, target, target.shared_pending
    if not tg.alive or sig == 0:
        return
    if info is None:
        info = basic_siginfo(sig, SI_KERNEL)
    # Side effects at generation time (Linux's prepare_signal): SIGCONT and stop signals
    # cancel each other, SIGCONT resumes a stopped group even if it is blocked or ignored.
    if sig in STOP_SIGNALS:
        for t in tg.tasks:
            t.sigpending.discard(SIGCONT)
        tg.shared_pending.discard(SIGCONT)
    elif sig == SIGCONT:
        for t in tg.tasks:
            for s in STOP_SIGNALS:
                t.sigpending.discard(s)
        for s in STOP_SIGNALS:
            tg.shared_pending.discard(s)
        if tg.stopped:
            continue_group(kernel, tg)
    blocked = task.sigmask & sig_bit(sig) if task else \
        all(t.sigmask & sig_bit(sig) for t in tg.tasks if t.alive)
    if tg.pid == INIT_PID and not blocked and init_ignores(tg, sig, info):
        return
    if sig == SIGKILL:
        kernel.exit_group(tg, SIGKILL)
        return
    if is_ignored(tg, sig) and not blocked:
        return
    if not pending.add(sig, info):
        return
    tg.signal_wait.notify()
    chosen = task if task is not None else _choose_thread(tg, sig)
    if chosen is not None:
        notify(kernel, chosen)


def init_ignores(tg: "ThreadGroup", sig: int, info: bytes) -> bool:
    """Linux's SIGNAL_UNKILLABLE rule (sig_task_ignored) for the sandbox's pid 1, the init
    of its pid namespace: a signal whose action is the default one is dropped, SIGKILL and
    SIGSTOP too unless forced (see `forced`).  Synchronous faults are forced through
    `force_sig`, which makes init killable again, as force_sig_info_to_task does.  The caller
    has checked the signal is not blocked (blocked signals are never ignored: delivery
    decides, see `deliver`)."""
    if tg in _KILLABLE_INITS or action(tg, sig)[0] != SIG_DFL:
        return False
    return not (sig in (SIGKILL, SIGSTOP) and forced(info))


def forced(info: bytes) -> bool:
    """Whether Linux would generate this signal with `force` (send_signal_locked): the kernel
    sent it (SI_KERNEL: SEND_SIG_PRIV, a CPU-time limit...) or a sender in an ancestor pid
    namespace did (si_pid 0 with SI_USER: the runtime's `kill` through runtime/control.py,
    whose own rule already keeps other default-action signals from the first process).

    A process of the sandbox always has a nonzero pid, so SI_USER with si_pid 0 comes from
    outside -- except for a siginfo init forges for itself with rt_sigqueueinfo, which Linux
    would not force (a limitation: the sentry does not know its sender here)."""
    code = int.from_bytes(info[8:12], "little", signed=True)
    return code == SI_KERNEL or (code == SI_USER and not int.from_bytes(info[16:20], "little"))


#: inits whose SIGNAL_UNKILLABLE a forced fault signal with the default action cleared
_KILLABLE_INITS: "weakref.WeakSet[ThreadGroup]" = weakref.WeakSet()


def force_sig(kernel: "Kernel", task: "Task", sig: int, info: bytes) -> None:
    """Linux's force_sig_info_to_task for a synchronous signal the kernel raises in `task`
    (seccomp's SIGSYS, a fault): a blocked or ignored one is unblocked and reset to the
    default action, and a default action then makes even init killable."""
    handler, flags, restorer, mask = action(task.tg, sig)
    blocked = task.sigmask & sig_bit(sig)
    if blocked or handler == SIG_IGN:
        task.tg.sigactions[sig] = (SIG_DFL, flags, restorer, mask)
        task.sigmask &= ~sig_bit(sig)
    if action(task.tg, sig)[0] == SIG_DFL and task.tg.pid == INIT_PID:
        _KILLABLE_INITS.add(task.tg)
    send_signal(kernel, task, sig, info)


def _choose_thread(tg: "ThreadGroup", sig: int) -> "Task | None":
    """A thread that does not block sig, preferring one parked in a system call (it can be
    interrupted at once) over one running application code."""
    candidates = [t for t in tg.tasks if t.alive and not t.sigmask & sig_bit(sig)]
    for t in candidates:
        if t.pending is not None:
            return t
    return candidates[0] if candidates else None


def notify(kernel: "Kernel", task: "Task") -> None:
    """Make `task` look at its pending signals soon."""
    if not task.alive or task.thread is None:
        return
    if task.pending is not None:
        kernel.interrupt(task)
    elif task.in_user:
        task.thread.interrupt()
    # else: it is being served right now; delivery happens on its way back to the app


def has_deliverable(task: "Task") -> bool:
    return bool((task.sigpending.mask | task.tg.shared_pending.mask) & ~task.sigmask)


def next_signal(task: "Task") -> tuple[int, bytes] | None:
    """Dequeue the next unblocked signal, thread-directed first (Linux's dequeue_signal)."""
    got = task.sigpending.take(task.sigmask)
    if got is None:
        got = task.tg.shared_pending.take(task.sigmask)
    return got


# -- job control ----------------------------------------------------------------------------
def stop_group(kernel: "Kernel", tg: "ThreadGroup", sig: int) -> None:
    """Default action of a stop signal: every thread stops; the parent hears of it."""
    if tg.stopped:
        return
    tg.stopped = True
    tg.stop_signal = sig
    tg.wait_report = "stopped"
    for t in tg.tasks:
        if t.alive and t.in_user:
            t.thread.interrupt()
    kernel.child_state_changed(tg, CLD_STOPPED, sig)


def continue_group(kernel: "Kernel", tg: "ThreadGroup") -> None:
    tg.stopped = False
    tg.wait_report = "continued"
    for t in list(tg.tasks):
        if t.alive and t.frozen is not None:
            frozen, t.frozen = t.frozen, None
            kernel.finish(t, *frozen)
    kernel.child_state_changed(tg, CLD_CONTINUED, SIGCONT)


# -- delivery -------------------------------------------------------------------------------
def deliver(kernel: "Kernel", task: "Task", result: int | None) -> bool:
    """Called with the thread stopped and about to return to the application, `result` being
    the value of the system call it is in (None: not in one).  Returns True when the thread
    has been set up (result written, maybe a handler frame) and may be resumed; False when
    it must not be resumed (the process died or stopped)."""
    framed = False
    while True:
        got = next_signal(task)
        if got is None:
            if result is not None:
                task.thread.set_return(result)
            if not framed and task.saved_sigmask is not None:
                # no handler ran: sigsuspend/ppoll/pselect's temporary mask ends here
                task.sigmask, task.saved_sigmask = task.saved_sigmask, None
            return True
        sig, info = got
        handler, flags, restorer, mask = action(task.tg, sig)
        if handler == SIG_IGN and sig not in FAULTS:
            continue
        if handler == SIG_DFL or (handler == SIG_IGN and sig in FAULTS):
            if sig in DEFAULT_IGNORE:
                continue
            if (task.tg.pid == INIT_PID and handler == SIG_DFL and sig not in (SIGKILL, SIGSTOP)
                    and task.tg not in _KILLABLE_INITS):
                continue  # init takes no default action it was sent (it was blocked then)
            if sig in STOP_SIGNALS:
                stop_group(kernel, task.tg, sig)
                task.frozen = (result,)
                return False
            kernel.exit_group(task.tg, fatal_status(sig))
            return False
        try:
            _setup_frame(task, sig, info, handler, flags, restorer, mask, result)
        except SyscallError:
            force_sigsegv(kernel, task, sig)
            return False
        if flags & SA_RESETHAND:
            task.tg.sigactions[sig] = (SIG_DFL, flags, restorer, mask)
        # Like Linux's exit-to-user loop: every deliverable signal gets its frame now, each
        # on top of the last; the newest handler runs first and returns into the next.
        result = None
        framed = True


def restart_result(task: "Task", nr_name: str, args: tuple, sa_flags: int) -> int | None:
    """What an interrupted blocking call returns when a handler runs: None = restart it."""
    if not sa_flags & SA_RESTART or nr_name in NEVER_RESTART:
        return -EINTR
    if nr_name == "futex":
        from snakevisor.syscalls.sys_futex import restarts_after_handler
        if not restarts_after_handler(args):
            return -EINTR  # a timed wait: ERESTART_RESTARTBLOCK, EINTR once a handler ran
    return None


def _setup_frame(task: "Task", sig: int, info: bytes, handler: int, flags: int,
                 restorer: int, mask: int, result: int | None) -> None:
    """Point the thread at its handler with an rt_sigframe on its stack (SyscallError(EFAULT)
    when the frame cannot be placed or written: the caller forces SIGSEGV)."""
    from snakevisor.kernel.sigframe import FrameError, build_rt_frame
    thread = task.thread
    regs = thread.get_regs()
    if result is not None:
        regs.rax = result & 0xFFFFFFFFFFFFFFFF
    saved_mask = task.saved_sigmask if task.saved_sigmask is not None else task.sigmask
    task.saved_sigmask = None
    fault_regs = {}
    if sig in FAULTS and len(info) >= 24:
        fault_regs = _fault_context(sig, int.from_bytes(info[8:12], "little", signed=True),
                                    int.from_bytes(info[16:24], "little"))
    try:
        plan = build_rt_frame(regs, thread.get_xstate(), info, saved_mask, task.altstack, None,
                              None, handler, flags, restorer, **fault_regs)
        for addr, data in plan.writes:
            task.mm.write(addr, data)
    except (FrameError, SyscallError):
        raise SyscallError(EFAULT) from None
    thread.set_regs(plan.regs)
    thread.set_xstate(plan.fpu_reset)
    task.altstack = tuple(plan.altstack_after)
    blocked = task.sigmask | mask
    if not flags & SA_NODEFER:
        blocked |= sig_bit(sig)
    task.sigmask = blocked & ~UNBLOCKABLE


def _fault_context(sig: int, code: int, addr: int) -> dict[str, int]:
    """The x86 exception behind a CPU fault signal, for sigcontext's trapno and cr2 (the host
    told us the signal, code and address; the vector follows from them)."""
    trapno = 0
    if sig == SIGSEGV:
        trapno = 13 if code == SI_KERNEL else 14  # general protection / page fault
    elif sig == SIGBUS:
        trapno = 17 if code == 1 else 14  # BUS_ADRALN: alignment check
    elif sig == SIGILL:
        trapno = 6  # invalid opcode
    elif sig == SIGTRAP:
        trapno = 3 if code == SI_KERNEL else 1  # int3 / debug
    elif sig == SIGFPE:
        trapno = 0 if code in (1, 2) else 19  # integer divide/overflow, else SIMD
    cr2 = addr if trapno == 14 else 0
    return {"trapno": trapno, "cr2": cr2}


def force_sigsegv(kernel: "Kernel", task: "Task", sig: int) -> None:
    """Delivery failed: Linux's force_sigsegv.  SIGSEGV is taken with its current action
    (reset to default first if it was the one failing); we end the process, as a second
    failure would."""
    if sig == SIGSEGV:
        task.tg.sigactions[SIGSEGV] = (SIG_DFL, 0, 0, 0)
    kernel.exit_group(task.tg, fatal_status(SIGSEGV))


def sigreturn(task: "Task") -> None:
    """rt_sigreturn: restore what the frame saved (registers including rax, FP state, mask,
    altstack); a frame Linux rejects leaves what it had applied and forces SIGSEGV."""
    from snakevisor.kernel.sigframe import BadFrame, parse_rt_frame
    thread = task.thread
    regs = thread.get_regs()
    try:
        st = parse_rt_frame(task.mm.read, regs.rsp - 8, regs, thread.get_xstate(), task.altstack)
    except BadFrame as bad:
        if bad.mask is not None:
            task.sigmask = bad.mask
        if bad.regs is not None:
            thread.set_regs(bad.regs)
        if bad.xstate is not None:
            thread.set_xstate(bad.xstate)
        force_sigsegv(task.kernel, task, 0)
        return
    thread.set_regs(st.regs)
    thread.set_xstate(st.xstate)
    task.sigmask = st.mask & ~UNBLOCKABLE
    task.altstack = tuple(st.altstack)


def fault(kernel: "Kernel", task: "Task", sig: int, info: bytes) -> None:
    """A synchronous CPU fault hit application code (the thread is in a signal stop): it is
    taken before anything else; blocked or ignored, it kills (Linux's force_sig)."""
    handler, flags, restorer, mask = action(task.tg, sig)
    if task.sigmask & sig_bit(sig) or handler in (SIG_DFL, SIG_IGN):
        kernel.exit_group(task.tg, fatal_status(sig))
        return
    try:
        _setup_frame(task, sig, info, handler, flags, restorer, mask, None)
    except SyscallError:
        force_sigsegv(kernel, task, sig)
        return
    if flags & SA_RESETHAND:
        task.tg.sigactions[sig] = (SIG_DFL, flags, restorer, mask)
    kernel.finish(task, None)
