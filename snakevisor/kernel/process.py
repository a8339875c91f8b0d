"""Process lifecycle: clone (fork, vfork, threads), exit of threads and groups, zombies,
reparenting and wait.

Host mapping (MISSION.md decision 3): an application thread is a host thread of its stub;
fork is a host fork of the calling stub (copy-on-write by the host); a CLONE_VM child that
is not a thread (vfork, posix_spawn) is a host process sharing the stub's memory.  All
host work is injected from the calling thread, which is stopped in its clone call.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, TypeVar

from snakevisor.kernel.errors import EAGAIN, ECHILD, EINVAL, ENOMEM, SyscallError
from snakevisor.kernel.futex import futex_exit, futex_table
from snakevisor.kernel.sigframe import (CLD_CONTINUED, CLD_DUMPED, CLD_EXITED, CLD_KILLED,
                                        CLD_STOPPED)
from snakevisor.kernel.signals import (SA_NOCLDSTOP,
                                       SA_NOCLDWAIT, SIG_IGN, SIGCHLD, action, basic_siginfo)
from snakevisor.kernel.task import Task, ThreadGroup

_T = TypeVar("_T")

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel

CSIGNAL = 0xFF
CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_PIDFD, CLONE_PTRACE, CLONE_VFORK, CLONE_PARENT = 0x1000, 0x2000, 0x4000, 0x8000
CLONE_THREAD, CLONE_NEWNS, CLONE_SYSVSEM, CLONE_SETTLS = 0x10000, 0x20000, 0x40000, 0x80000
CLONE_PARENT_SETTID, CLONE_CHILD_CLEARTID, CLONE_DETACHED = 0x100000, 0x200000, 0x400000
CLONE_UNTRACED, CLONE_CHILD_SETTID, CLONE_NEWCGROUP = 0x800000, 0x1000000, 0x2000000
CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x4000000, 0x8000000, 0x10000000, 0x20000000
CLONE_NEWNET, CLONE_IO = 0x40000000, 0x80000000
CLONE_CLEAR_SIGHAND, CLONE_INTO_CGROUP, CLONE_NEWTIME = 1 << 32, 1 << 33, 0x80

#: flags we carry out; anything else is refused with EINVAL (never passed to the host)
SUPPORTED = (CSIGNAL | CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_PTRACE | CLONE_PIDFD |
             CLONE_VFORK | CLONE_PARENT | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
             CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_DETACHED | CLONE_UNTRACED |
             CLONE_CHILD_SETTID | CLONE_IO | CLONE_CLEAR_SIGHAND)
NAMESPACES = (CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
              CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWTIME)


def check_clone_flags(task: Task, flags: int) -> None:
    """copy_process's consistency rules, then our own refusals."""
    if flags & CLONE_NEWNS and flags & CLONE_FS:
        raise SyscallError(EINVAL)
    if flags & CLONE_THREAD and not flags & CLONE_SIGHAND:
        raise SyscallError(EINVAL)
    if flags & CLONE_SIGHAND and not flags & CLONE_VM:
        raise SyscallError(EINVAL)
    if flags & CLONE_CLEAR_SIGHAND and flags & CLONE_SIGHAND:
        raise SyscallError(EINVAL)
    if flags & CLONE_PIDFD and flags & CLONE_DETACHED:
        raise SyscallError(EINVAL)
    if flags & CLONE_PIDFD and flags & CLONE_THREAD:
        task.kernel.warn_once("clone:pidfd-thread", "clone(CLONE_PIDFD|CLONE_THREAD): thread "
                              "pidfds are not supported -> EINVAL")
        raise SyscallError(EINVAL)
    if flags & CLONE_PARENT and task.tg is task.kernel.init:
        raise SyscallError(EINVAL)  # init cannot create siblings
    if flags & CLONE_THREAD and flags & CSIGNAL:
        pass  # Linux ignores the exit signal of threads
    if flags & ~SUPPORTED:
        what = "namespaces" if flags & NAMESPACES else "flags"
        task.kernel.warn_once(f"clone:{flags & ~SUPPORTED:#x}",
                              f"clone with unsupported {what} {flags & ~SUPPORTED:#x} -> EINVAL")
        raise SyscallError(EINVAL)


def _host_clone(make: Callable[[], _T]) -> _T:
    """The host process or thread behind a new task.  The host refusing one (a pids cgroup
    limit, RLIMIT_NPROC of the stubs' user, memory) is the application's EAGAIN/ENOMEM, as
    Linux's clone answers, not a sentry failure."""
    try:
        return make()
    except OSError as exc:
        raise SyscallError(ENOMEM if exc.errno == ENOMEM else EAGAIN) from None


def do_clone(task: Task, flags: int, stack: int, parent_tid: int, child_tid: int,
             tls: int) -> Task:
    """Create the child task; it is left stopped with its registers set, not yet resumed."""
    kernel = task.kernel
    check_clone_flags(task, flags)
    regs = task.thread.get_regs()
    parent_tg = task.tg
    tid = kernel.alloc_pid()
    if flags & CLONE_THREAD:
        thread = _host_clone(task.thread.clone_thread)
        tg = parent_tg
        child = Task(kernel, tid, tg, thread)
        tg.mm.users += 1
    else:
        if flags & CLONE_VM:
            mm = parent_tg.mm
            thread = _host_clone(task.thread.clone_shared_vm)
            mm.users += 1
        else:
            mm = _host_clone(parent_tg.mm.fork)
            thread = mm.host.control
        real_parent = parent_tg.parent if flags & CLONE_PARENT else parent_tg
        fds = parent_tg.fds if flags & CLONE_FILES else parent_tg.fds.fork()
        fds.users += 1
        fs = parent_tg.fs if flags & CLONE_FS else parent_tg.fs.copy()
        tg = ThreadGroup(kernel, tid, real_parent, mm, fds, fs)
        _inherit(tg, parent_tg, flags)
        from snakevisor.syscalls.sys_cred import creds_fork
        creds_fork(parent_tg, tg)
        tg.host_pid = thread.tgid
        tg.exit_signal = flags & CSIGNAL
        child = Task(kernel, tid, tg, thread)
        if real_parent is not None:
            real_parent.children.append(tg)
        kernel.thread_groups[tid] = tg
    tg.tasks.append(child)
    kernel.tasks[tid] = child
    kernel.by_host_tid[thread.tid] = child
    child.comm = task.comm
    child.sigmask = task.sigmask
    child.altstack = task.altstack if not flags & CLONE_VM or flags & CLONE_VFORK else (0, 2, 0)
    child.fs_base = tls if flags & CLONE_SETTLS else task.fs_base
    _inherit_sched(task, child)
    # Registers: the parent's, returning 0 in the child, on its new stack and TLS.
    regs.rax = 0
    regs.orig_rax = 0xFFFFFFFFFFFFFFFF
    if stack:
        regs.rsp = stack
    if flags & CLONE_SETTLS:
        regs.fs_base = tls
    thread.set_regs(regs)
    if flags & CLONE_PARENT_SETTID:
        task.mm.write(parent_tid, tid.to_bytes(4, "little"))
    if flags & CLONE_CHILD_SETTID:
        child.mm.write(child_tid, tid.to_bytes(4, "little"))
    if flags & CLONE_CHILD_CLEARTID:
        child.clear_child_tid = child_tid
    return child


def _inherit(tg: ThreadGroup, parent: ThreadGroup, flags: int) -> None:
    """What a new process takes from the one that cloned it (not its wait-parent)."""
    tg.umask = parent.umask
    tg.rlimits = [list(x) for x in parent.rlimits]
    tg.creds = parent.creds.copy()
    tg.pgid, tg.sid = parent.pgid, parent.sid
    tg.exe, tg.argv, tg.env = parent.exe, list(parent.argv), list(parent.env)
    if flags & CLONE_SIGHAND:
        tg.sigactions = parent.sigactions  # one table, shared
    else:
        tg.sigactions = dict(parent.sigactions)
        if flags & CLONE_CLEAR_SIGHAND:
            tg.sigactions = {s: a for s, a in tg.sigactions.items() if a[0] == SIG_IGN}


def _inherit_sched(parent: Task, child: Task) -> None:
    try:
        from snakevisor.syscalls.sys_info import inherit_sched
    except ImportError:  # pragma: no cover
        return
    inherit_sched(parent, child)


# -- exit -----------------------------------------------------------------------------------
def release_task(task: Task) -> None:
    """Sentry-side cleanup common to a thread's exit and its group's."""
    kernel = task.kernel
    task.alive = False
    task.pending = None
    task.frozen = None
    kernel.tasks.pop(task.tid, None)
    if task.thread is not None:
        kernel.by_host_tid.pop(task.thread.tid, None)
    futex_table(kernel).cancel(task)
    _futex_exit(task)
    parent = task.vfork_parent
    if parent is not None:
        task.vfork_parent = None
        kernel.wake(parent)


def _futex_exit(task: Task) -> None:
    """Robust-list cleanup and CLONE_CHILD_CLEARTID (when the memory outlives the thread)."""
    if task.tg.mm is None or not (task.clear_child_tid or task.robust_list):
        return
    futex_exit(task)


def futex_exit_for_exec(task: Task) -> None:
    """execve runs the caller's robust list and CLONE_CHILD_CLEARTID against the old memory
    (it matters when others still use it, e.g. a vfork parent)."""
    _futex_exit(task)


def exit_thread(task: Task, code: int) -> None:
    """exit(2) of one thread; the last one out ends the process."""
    tg = task.tg
    live = [t for t in tg.tasks if t.alive and t is not task]
    if not live:
        task.kernel.exit_group(tg, (code & 0xFF) << 8)
        return
    release_task(task)
    tg.tasks.remove(task)
    tg.mm.users -= 1
    if task.tid != tg.pid:
        task.thread.exit_thread()
    # The leader's host thread stays parked (never resumed) until the group ends, so the
    # stub process and its /proc/PID/mem stay valid for the remaining threads.


def exit_group(kernel: "Kernel", tg: ThreadGroup, wait_status: int) -> None:
    """End every thread of tg; it becomes a zombie for its parent (or is reaped)."""
    if not tg.alive:
        return
    tg.exit_status = wait_status
    try:
        from snakevisor.syscalls.sys_time import snapshot_usage  # type: ignore[attr-defined]
        tg.final_usage = snapshot_usage(tg)
    except Exception:
        tg.final_usage = None
    shared_mm = tg.mm is not None and tg.mm.users > len([t for t in tg.tasks if t.alive])
    for task in list(tg.tasks):
        if task.alive:
            if not shared_mm:
                task.clear_child_tid = 0  # the memory dies with the process
            release_task(task)
    from snakevisor.syscalls.sys_timer import timers_exit
    timers_exit(tg)
    from snakevisor.kernel.sysvipc import on_exit as sysv_on_exit
    sysv_on_exit(tg)  # SEM_UNDO adjustments
    if tg.tasks:
        from snakevisor.syscalls.sys_lock import on_exit
        on_exit(tg.tasks[0])
    if tg.host_pid:
        kernel.platform_kill(tg.host_pid)
    if tg.mm is not None:
        tg.mm.users -= len(tg.tasks)
        if tg.mm.users <= 0:
            tg.mm.destroy()
    tg.fds.users -= 1
    if tg.fds.users <= 0:
        tg.fds.close_all()
    for waiter in tg.vfork_waiters:
        kernel.wake(waiter)
    tg.vfork_waiters = []
    tg.exit_wait.notify()
    if tg is kernel.init:
        kernel.init_exited(wait_status)
        return
    _reparent_children(kernel, tg)
    if tg.parent is None:  # a process `exec` added from outside: its waiter is out there
        if tg.on_exit is not None:
            tg.on_exit(wait_status)
        reap(kernel, tg)
        return
    _notify_parent_of_exit(kernel, tg)


def _reparent_children(kernel: "Kernel", tg: ThreadGroup) -> None:
    """Orphans go to the nearest subreaper ancestor, else to init (pid 1)."""
    if not tg.children:
        return
    new_parent = tg.parent
    while new_parent is not None and not new_parent.subreaper:
        new_parent = new_parent.parent
    if new_parent is None or not new_parent.alive:
        new_parent = kernel.init
    for child in tg.children:
        child.parent = new_parent
        if new_parent is not None:
            new_parent.children.append(child)
        for t in child.tasks:
            if t.alive and t.pdeathsig:
                kernel.send_signal(t, t.pdeathsig)
        if not child.alive and new_parent is not None:
            _notify_parent_of_exit(kernel, child)
    tg.children = []


def _notify_parent_of_exit(kernel: "Kernel", tg: ThreadGroup) -> None:
    parent = tg.parent
    if parent is None or not parent.alive:
        return
    status = tg.exit_status or 0
    handler, flags = action(parent, SIGCHLD)[:2]
    autoreap = tg.exit_signal == SIGCHLD and (handler == SIG_IGN or flags & SA_NOCLDWAIT)
    if tg.exit_signal:
        code, value = _cld_code(status)
        # Linux fills the SIGCHLD fields whatever the exit signal is (clone's CSIGNAL)
        info = basic_siginfo(SIGCHLD, code, pid=tg.pid, uid=tg.creds.ruid, status=value)
        info = tg.exit_signal.to_bytes(4, "little") + info[4:]
        kernel.send_signal(parent, tg.exit_signal, info)
    if autoreap:
        reap(kernel, tg)
    parent.child_wait.notify()


def _cld_code(status: int) -> tuple[int, int]:
    if status & 0x7F:
        return (CLD_DUMPED if status & 0x80 else CLD_KILLED), status & 0x7F
    return CLD_EXITED, (status >> 8) & 0xFF


def child_state_changed(kernel: "Kernel", tg: ThreadGroup, code: int, sig: int) -> None:
    """A child stopped or continued: SIGCHLD (unless SA_NOCLDSTOP) and wake waiters."""
    parent = tg.parent
    if parent is None or not parent.alive:
        return
    if not action(parent, SIGCHLD)[1] & SA_NOCLDSTOP:
        kernel.send_signal(parent, SIGCHLD, basic_siginfo(SIGCHLD, code, pid=tg.pid,
                                                           uid=tg.creds.ruid, status=sig))
    parent.child_wait.notify()


def reap(kernel: "Kernel", tg: ThreadGroup) -> None:
    """Forget a zombie: its pid may be reused."""
    tg.reaped = True
    if tg.parent is not None and tg in tg.parent.children:
        tg.parent.children.remove(tg)
        try:
            from snakevisor.syscalls.sys_time import add_child_usage  # type: ignore[attr-defined]
            if tg.final_usage is not None:
                add_child_usage(tg.parent, tg.final_usage)
        except Exception:
            pass
    kernel.thread_groups.pop(tg.pid, None)


# -- wait -----------------------------------------------------------------------------------
P_ALL, P_PID, P_PGID, P_PIDFD = 0, 1, 2, 3
WNOHANG, WUNTRACED, WSTOPPED, WEXITED, WCONTINUED, WNOWAIT = 1, 2, 2, 4, 8, 0x01000000
WNOTHREAD, WALL, WCLONE = 0x20000000, 0x40000000, 0x80000000


class WaitResult:
    """What one successful wait found: the child, its wait(2) status word, waitid's code."""

    __slots__ = ("tg", "status", "code", "value")

    def __init__(self, tg: ThreadGroup, status: int, code: int, value: int) -> None:
        self.tg, self.status, self.code, self.value = tg, status, code, value


def do_wait(task: Task, idtype: int, ident: int, options: int) -> WaitResult | None:
    """Look for a child in a reportable state; None when there are children but none is
    ready (the caller blocks or returns 0 with WNOHANG); ECHILD when none can ever be."""
    kernel = task.kernel
    me = task.tg
    candidates = [c for c in me.children if _matches(c, idtype, ident, options)]
    if not candidates:
        raise SyscallError(ECHILD)
    for child in candidates:
        if not child.alive:
            if not options & WEXITED:
                continue
            status = child.exit_status or 0
            code, value = _cld_code(status)
            if not options & WNOWAIT:
                reap(kernel, child)
            return WaitResult(child, status, code, value)
        if child.wait_report == "stopped" and child.stopped and options & WSTOPPED:
            if not options & WNOWAIT:
                child.wait_report = None
            return WaitResult(child, (child.stop_signal << 8) | 0x7F, CLD_STOPPED, child.stop_signal)
        if child.wait_report == "continued" and options & WCONTINUED:
            if not options & WNOWAIT:
                child.wait_report = None
            from snakevisor.kernel.signals import SIGCONT
            return WaitResult(child, 0xFFFF, CLD_CONTINUED, SIGCONT)
    return None


def _matches(child: ThreadGroup, idtype: int, ident: int, options: int) -> bool:
    if child.reaped:
        return False
    if idtype == P_PID and child.pid != ident:
        return False
    if idtype == P_PGID and child.pgid != ident:
        return False
    if options & WALL:
        return True
    is_clone = child.exit_signal != SIGCHLD
    return is_clone == bool(options & WCLONE)

