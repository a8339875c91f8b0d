"""Tasks (application threads) and thread groups (processes) as sentry objects."""
from __future__ import annotations

import resource
from typing import TYPE_CHECKING, Callable

from snakevisor.kernel.errors import WaitQueue

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.mm.address_space import AddressSpace
    from snakevisor.platform.ptrace import PtraceThread
    from snakevisor.vfs.fdtable import FdTable
    from snakevisor.vfs.fs_context import FsContext

RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF
RLIMIT_NAMES = ("CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK",
                "AS", "LOCKS", "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME")


_host_limits: list[tuple[int, int]] | None = None


def host_rlimits() -> list[list[int]]:
    """Start from the limits the sentry was started with, as a container inherits them
    (a snapshot: the sentry raises its own RLIMIT_NOFILE afterwards)."""
    global _host_limits
    if _host_limits is None:
        _host_limits = []
        for i in range(len(RLIMIT_NAMES)):
            soft, hard = resource.getrlimit(i)
            _host_limits.append((RLIM_INFINITY if soft < 0 else soft,
                                 RLIM_INFINITY if hard < 0 else hard))
    return [list(x) for x in _host_limits]


def raise_sentry_nofile() -> None:
    """The sentry holds a host fd per open application file: give it the hard limit."""
    host_rlimits()  # snapshot what the application should see first
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass  # keep the soft limit; opens fail with EMFILE later, as they would natively


class SigPending:
    """Signals generated but not delivered: standard ones at most once (a bit), real-time
    ones queued with their siginfo, as Linux keeps them."""

    __slots__ = ("mask", "queue")

    def __init__(self) -> None:
        self.mask = 0  #: bit (n-1) for each pending signal n
        self.queue: list[tuple[int, bytes]] = []  #: (signo, siginfo) in arrival order

    def add(self, sig: int, info: bytes) -> bool:
        """Queue sig; False when a standard signal was already pending (merged)."""
        bit = 1 << (sig - 1)
        if sig < 32 and self.mask & bit:
            return False
        self.mask |= bit
        self.queue.append((sig, info))
        return True

    def take(self, blocked: int) -> tuple[int, bytes] | None:
        """The next deliverable signal: lowest standard number first, then RT in order."""
        ready = self.mask & ~blocked
        if not ready:
            return None
        sig = (ready & -ready).bit_length()
        for i, (s, info) in enumerate(self.queue):
            if s == sig:
                del self.queue[i]
                break
        else:  # pragma: no cover - mask and queue always agree
            info = b""
        if not any(s == sig for s, _ in self.queue):
            self.mask &= ~(1 << (sig - 1))
        return sig, info

    def discard(self, sig: int) -> None:
        self.mask &= ~(1 << (sig - 1))
        self.queue = [(s, i) for s, i in self.queue if s != sig]


class Credentials:
    """Sandbox identities (uid 0 inside maps to nobody on the host)."""

    __slots__ = ("ruid", "euid", "suid", "fsuid", "rgid", "egid", "sgid", "fsgid", "groups")

    def __init__(self, uid: int = 0, gid: int = 0) -> None:
        self.ruid = self.euid = self.suid = self.fsuid = uid
        self.rgid = self.egid = self.sgid = self.fsgid = gid
        self.groups: list[int] = []

    def copy(self) -> "Credentials":
        other = Credentials()
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        other.groups = list(self.groups)
        return other


class ThreadGroup:
    """A process: what threads share (address space, fds, cwd, limits, identity)."""

    def __init__(self, kernel: "Kernel", pid: int, parent: "ThreadGroup | None", mm: "AddressSpace",
                 fds: "FdTable", fs: "FsContext") -> None:
        self.kernel = kernel
        self.pid = pid
        self.parent = parent
        self.mm = mm
        self.fds = fds
        self.fs = fs
        self.tasks: list[Task] = []
        self.children: list[ThreadGroup] = []
        self.umask = 0o022
        self.rlimits = host_rlimits() if parent is None else [list(x) for x in parent.rlimits]
        self.creds = Credentials() if parent is None else parent.creds.copy()
        self.pgid = parent.pgid if parent else pid
        self.sid = parent.sid if parent else pid
        self.exe = ""  # sandbox path of the running image (/proc/self/exe)
        self.exe_count = 0  #: execs since the fork (setpgid's EACCES)
        self.argv: list[bytes] = []
        self.env: list[bytes] = []
        self.exit_status: int | None = None  # wait status once the group has exited
        #: signal number -> (handler, flags, restorer, mask) as rt_sigaction stores them;
        #: one dict shared by every group cloned with CLONE_SIGHAND
        self.sigactions: dict[int, tuple[int, int, int, int]] = (
            dict(parent.sigactions) if parent is not None else {})
        self.start_time = kernel.now()
        #: process-directed signals not yet taken by any thread
        self.shared_pending = SigPending()
        #: the signal the parent gets when this process ends (clone's CSIGNAL; 0 = none)
        self.exit_signal = 17
        self.host_pid = 0  #: host pid of the stub process running this group
        self.reaped = False  #: a zombie the parent has collected (or auto-reaped)
        self.child_wait = WaitQueue()  #: wait4/waitid callers of this process
        self.signal_wait = WaitQueue()  #: rt_sigtimedwait callers (woken by any new signal)
        self.exit_wait = WaitQueue()  #: pidfd pollers: notified when the process exits
        #: job control: "stopped" while stopped; the report wait(WUNTRACED/WCONTINUED) owes
        self.stopped = False
        self.stop_signal = 0
        self.wait_report: str | None = None  # "stopped" / "continued" until collected
        self.subreaper = False  #: PR_SET_CHILD_SUBREAPER
        #: for a process without a parent in the sandbox (the runtime's `exec`): called with
        #: its wait status when it ends, instead of a parent being told
        self.on_exit: "Callable[[int], None] | None" = None
        self.vfork_waiters: list = []
        self.final_usage: object = None  #: resource usage captured at exit, for the parent

    @property
    def alive(self) -> bool:
        return self.exit_status is None

    @property
    def leader(self) -> "Task":
        return self.tasks[0]


class Task:
    """One application thread: a host thread of its stub plus sentry-side state."""

    __slots__ = ("kernel", "tid", "tg", "thread", "comm", "syscall_state", "pending",
                 "clear_child_tid", "robust_list", "robust_len", "alive", "fs_base",
                 "rseq", "rseq_len", "rseq_sig", "sigmask", "altstack", "sigpending",
                 "saved_sigmask", "pdeathsig", "vfork_parent", "in_user", "frozen",
                 "park_seq", "__weakref__")

    def __init__(self, kernel: "Kernel", tid: int, tg: ThreadGroup, thread: "PtraceThread") -> None:
        self.kernel = kernel
        self.tid = tid
        self.tg = tg
        self.thread = thread
        self.comm = b""
        self.syscall_state: dict | None = None  # a blocked call's memo until it completes
        self.pending: tuple | None = None  # (nr, args) of a parked system call
        self.clear_child_tid = 0
        self.robust_list = 0
        self.robust_len = 0
        self.rseq = self.rseq_len = self.rseq_sig = 0
        self.fs_base = 0
        self.sigmask = 0  # blocked signals, bit (n-1) for signal n
        self.altstack = (0, 2, 0)  # (ss_sp, ss_flags=SS_DISABLE, ss_size)
        self.sigpending = SigPending()  #: thread-directed signals
        #: the mask to restore after a handler interrupted sigsuspend/ppoll/pselect
        self.saved_sigmask: int | None = None
        self.pdeathsig = 0  #: PR_SET_PDEATHSIG
        self.vfork_parent: "Task | None" = None  #: parked in vfork until we exec or exit
        #: True while the host thread runs application code (not stopped for the sentry)
        self.in_user = False
        #: a stopped task's deferred resumption: (result,) when job control froze it
        self.frozen: tuple | None = None
        self.park_seq = 0  #: bumped at every park, so stale wake-ups are told apart
        self.alive = True

    # The commonly used pieces of the thread group, one attribute hop away.
    @property
    def mm(self) -> "AddressSpace":
        return self.tg.mm

    @property
    def fds(self) -> "FdTable":
        return self.tg.fds

    @property
    def pid(self) -> int:
        return self.tg.pid

    def __repr__(self) -> str:
        return f"Task(tid={self.tid}, pid={self.tg.pid}, comm={self.comm!r})"
