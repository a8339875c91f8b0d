"""The sentry's kernel object and its single event loop.

One loop per sandbox (MISSION.md decision 1): it waits for the next host thread stop,
turns a syscall stop into a handler call, and resumes the thread.  A handler that must
wait raises Block; the task is parked (timer heap, host-fd readiness, or a WaitQueue) and
its system call is dispatched again when it is woken.  No handler ever blocks the loop.
"""
from __future__ import annotations

import heapq
import logging
import os
import selectors
import signal
import time
import traceback
from collections import deque
from typing import Callable, TextIO

from snakevisor import syscalls
from snakevisor.kernel import process, signals
from snakevisor.kernel.errors import EINTR, ENOSYS, Block, SyscallError
from snakevisor.kernel.task import Task, ThreadGroup
from snakevisor.platform import STOP_EXITED, STOP_SIGNAL, STOP_SYSCALL, STOP_WAKE, Platform
from snakevisor.syscalls.numbers import syscall_name

log = logging.getLogger("snakevisor.sentry")

AUDIT_ARCH_X86_64 = 0xC000003E
PID_MAX = 4194304  # /proc/sys/kernel/pid_max
EIO = 5


class Kernel:
    """Everything one sandbox shares: tasks, pid numbering, root fs, clocks, the loop."""

    def __init__(self, platform: Platform, root: object, hostname: str = "snakevisor",
                 strace: TextIO | None = None, debug: bool = False) -> None:
        from snakevisor.kernel.task import raise_sentry_nofile

        raise_sentry_nofile()
        self.platform = platform
        self.root = root  #: the first container's mount namespace (each process has its own)
        #: pod-wide volumes by name (fsimpl/mountns.pod_volume): one per sandbox, not per root
        self.pod_volumes: dict[str, object] = {}
        self.hostname = hostname.encode()
        self.domainname = b"(none)"
        self.strace = strace
        self.debug = debug
        self.handlers = syscalls.load_all()
        #: --oci-seccomp: each container's profile by its root (syscalls/oci_seccomp.py
        #: rebuilds `handlers` from `plain_handlers` when one is added or removed)
        self.seccomp_profiles: dict[object, object] = {}
        self.plain_handlers = self.handlers
        self.by_host_tid: dict[int, Task] = {}
        self.tasks: dict[int, Task] = {}  #: sandbox tid -> live task
        self.thread_groups: dict[int, ThreadGroup] = {}  #: pid -> process (zombies too)
        self._next_pid = 1
        self.init: ThreadGroup | None = None
        self.current: Task | None = None  #: the task whose system call is being served
        self.dispatched = 0  #: system calls served so far
        self.boot_monotonic = time.monotonic()
        self.boot_time = time.time()
        self._ready: deque[Task] = deque()
        self._timers: list[tuple[float, int, "Task | Timer"]] = []
        self._timer_seq = 0
        self._selector: selectors.BaseSelector | None = None
        self._fd_waiters: dict[int, list[Task]] = {}
        self._watches: dict[int, Callable[[], None]] = {}  #: the sentry's own fds: fd -> callback
        self._posted: deque[Callable[[], None]] = deque()  #: see post()
        self._warned: set[str] = set()
        from snakevisor.kernel.futex import FutexTable
        self.futexes = FutexTable()
        self.exit_status = 0

    # -- small services for handlers -----------------------------------------------------
    def now(self) -> float:
        return time.monotonic()

    def alloc_pid(self) -> int:
        """The next free number (pids and tids share one space, as in Linux)."""
        pid = self._next_pid
        while pid in self.thread_groups or pid in self.tasks:
            pid += 1
            if pid >= PID_MAX:
                pid = 2
        self._next_pid = pid + 1 if pid + 1 < PID_MAX else 2
        return pid

    def call_at(self, deadline: float, fn: Callable[[], None]) -> "Timer":
        """Run fn from the loop at time.monotonic() >= deadline (timers, itimers)."""
        timer = Timer(fn)
        self._timer_seq += 1
        heapq.heappush(self._timers, (deadline, self._timer_seq, timer))
        return timer

    def send_signal(self, target: "Task | ThreadGroup", sig: int, info: bytes | None = None) -> None:
        signals.send_signal(self, target, sig, info)

    def child_state_changed(self, tg: ThreadGroup, code: int, sig: int) -> None:
        process.child_state_changed(self, tg, code, sig)

    def warn_once(self, key: str, message: str) -> None:
        """Log an unimplemented/refused path once per key (named in compatibility.md)."""
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    # -- the loop ---------------------------------------------------------------------
    def run(self) -> int:
        """Serve the sandbox until its first process exits; returns `snakevisor do`'s status."""
        assert self.init is not None
        wait = self.platform.wait
        handle = self._handle_stop
        while self.init.alive:
            if self._ready:
                task = self._ready.popleft()
                if task.alive and task.pending is not None:
                    nr, args = task.pending
                    task.pending = None
                    try:
                        self._dispatch(task, nr, args)
                    except Exception:
                        self._internal_error(task.thread.tid)
                continue
            if self._timers or self._fd_waiters or self._watches:
                self._wait_multiplexed()
                continue
            kind, tid, value, _ = wait()
            try:
                handle(kind, tid, value)
            except Exception:
                self._internal_error(tid)
        return self.exit_status

    def _internal_error(self, host_tid: int) -> None:
        """A bug or a host failure outside any handler: fail closed by killing the process
        whose stop we were serving (never by leaving its thread in an unknown state)."""
        log.error("internal error serving host thread %d: %s", host_tid, traceback.format_exc())
        if self.debug:
            raise
        task = self.by_host_tid.get(host_tid)
        if task is not None:
            self.exit_group(task.tg, signal.SIGKILL)

    def _handle_stop(self, kind: int, tid: int, value: int) -> None:
        task = self.by_host_tid.get(tid)
        if task is None:
            if kind == STOP_WAKE:
                self._run_posted()
            return  # (else a stub we already let go of)
        task.in_user = False
        if kind == STOP_SYSCALL:
            thread = task.thread
            thread.aspace.control = thread  # host calls for this call run in this thread
            arch, _ip, _sp, nr, a0, a1, a2, a3, a4, a5 = thread.syscall_info()
            if arch != AUDIT_ARCH_X86_64:
                self.warn_once("arch", f"refused a 32-bit system call entry (int 0x80, nr {nr})")
                self.finish(task, -ENOSYS)
                return
            self._dispatch(task, nr, (a0, a1, a2, a3, a4, a5))
        elif kind == STOP_SIGNAL:
            self.on_host_signal(task, value)
        elif kind == STOP_EXITED:
            self.on_host_exit(task, value)
        else:
            self.finish(task, None)

    def _dispatch(self, task: Task, nr: int, args: tuple) -> None:
        handler = self.handlers[nr] if 0 <= nr < 512 else None
        if self.strace is not None:
            from snakevisor.syscalls.strace import traced_call
            result = traced_call(self, task, nr, args, handler, self._call)
        else:
            result = self._call(task, nr, args, handler)
        if result is syscalls.NO_RETURN:
            return
        tg = task.tg
        if tg.stopped or (task.sigpending.mask | tg.shared_pending.mask) & ~task.sigmask:
            self.finish(task, result)  # type: ignore[arg-type]
            return
        thread = task.thread
        thread.set_return(result)
        task.in_user = True
        thread.resume()

    def finish(self, task: Task, result: int | None) -> None:
        """Return a stopped thread to the application: the result of its system call (None:
        it was not in one), after taking pending signals; held back while its process is
        stopped by job control."""
        if not task.alive:
            return
        if task.tg.stopped:
            task.frozen = (result,)
            return
        if signals.has_deliverable(task):
            if not signals.deliver(self, task, result):
                return
        elif result is not None:
            task.thread.set_return(result)
        if task.alive:
            task.in_user = True
            task.thread.resume()

    def _call(self, task: Task, nr: int, args: tuple, handler: Callable | None) -> object:
        """Run one handler; returns the result or NO_RETURN (parked, exec'd, exited)."""
        if handler is None:
            self.warn_once(f"nosys:{nr}", f"unimplemented system call {syscall_name(nr)} "
                           f"(nr {nr}, args {', '.join(hex(a) for a in args)}) -> ENOSYS")
            return -ENOSYS
        self.current = task  # Linux's `current`: whose view readiness answers (signalfd)
        self.dispatched += 1  # "the same system call" for caches that live that long (gofer)
        try:
            result = handler(task, *args)
        except SyscallError as e:
            task.syscall_state = None
            return -e.errno
        except Block as b:
            self._park(task, nr, args, b)
            return syscalls.NO_RETURN
        except Exception:
            log.error("internal error in %s: %s", syscall_name(nr), traceback.format_exc())
            if self.debug:
                raise
            task.syscall_state = None
            return -EIO
        task.syscall_state = None
        return result

    # -- parking and waking -------------------------------------------------------------
    def _park(self, task: Task, nr: int, args: tuple, block: Block) -> None:
        task.pending = (nr, args)
        if block.deadline is not None:
            self._timer_seq += 1
            heapq.heappush(self._timers, (block.deadline, self._timer_seq, task))
        if block.fd is not None:
            self._wait_host_fd(task, block.fd, block.events or selectors.EVENT_READ)
        for fd, events in block.fds:
            self._wait_host_fd(task, fd, events)
        if block.queue is not None and task not in block.queue.waiters:
            block.queue.waiters.append(task)
        for queue in block.queues:
            if task not in queue.waiters:
                queue.waiters.append(task)

    def _wait_host_fd(self, task: Task, fd: int, events: int) -> None:
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
        waiters = self._fd_waiters.setdefault(fd, [])
        if task not in waiters:
            waiters.append(task)
        try:
            key = self._selector.get_key(fd)
        except KeyError:
            self._selector.register(fd, events)
            return
        try:
            if events & ~key.events:
                self._selector.modify(fd, key.events | events)
        except OSError:  # the number was closed and reused since: start afresh
            self._selector.unregister(fd)
            self._selector.register(fd, events)

    def post(self, fn: Callable[[], None]) -> None:
        """Run `fn` from the loop, between two system calls, soon: callable from anywhere,
        a host signal's Python handler included (which may run in the middle of serving a
        call, where nothing of the kernel may change).  The platform's ring wakes a loop
        blocked waiting for its threads (runtime/host_signals.py)."""
        self._posted.append(fn)
        self.platform.ring()

    def _run_posted(self) -> None:
        while self._posted:
            fn = self._posted.popleft()
            try:
                fn()
            except Exception:
                self._internal_error(0)

    def watch_fd(self, fd: int, callback: Callable[[], None]) -> None:
        """Call `callback` from the loop whenever the sentry's own host fd is readable: how the
        OCI runtime's control socket is served between system calls, never during one."""
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
        self._watches[fd] = callback
        self._selector.register(fd, selectors.EVENT_READ)

    def unwatch_fd(self, fd: int) -> None:
        if self._watches.pop(fd, None) is not None and self._selector is not None:
            self._selector.unregister(fd)

    def wake(self, task: Task) -> None:
        """Make a parked task re-run its system call soon (spurious wake-ups are allowed:
        a handler re-checks its condition and blocks again)."""
        if task.pending is not None and task not in self._ready:
            self._ready.append(task)

    def interrupt(self, task: Task) -> None:
        """A signal arrived for a task parked in a system call: end the call (EINTR, or a
        restart after the handler) if the signal will run a handler; a fatal one ends the
        process, a stop stops it, an ignored one leaves the call waiting."""
        if task.pending is None:
            return
        ready = (task.sigpending.mask | task.tg.shared_pending.mask) & ~task.sigmask
        if not ready:
            return
        sig = (ready & -ready).bit_length()
        handler, flags = signals.action(task.tg, sig)[:2]
        if handler == signals.SIG_IGN or (handler == signals.SIG_DFL and sig in signals.DEFAULT_IGNORE):
            return
        if handler == signals.SIG_DFL:
            if sig in signals.STOP_SIGNALS:
                if task.tg.shared_pending.mask & signals.sig_bit(sig):
                    task.tg.shared_pending.discard(sig)
                else:
                    task.sigpending.discard(sig)
                signals.stop_group(self, task.tg, sig)
                return
            self.exit_group(task.tg, signals.fatal_status(sig))
            return
        state = task.syscall_state
        if state is not None and "vfork_child" in state:
            return  # a vfork parent waits uninterruptibly (only fatal signals end it)
        nr, args = task.pending
        task.pending = None
        # A write that already queued bytes returns that count (Linux), never EINTR or a
        # restart that would write them twice.
        partial = (state.get("written", 0) + state.get("transferred", 0)) if state else 0
        on_interrupt = state.get("on_interrupt") if state else None
        task.syscall_state = None
        task.park_seq += 1
        self.futexes.cancel(task)
        result = partial or signals.restart_result(task, syscall_name(nr), args, flags)
        if result is None and state and state.get("no_restart"):
            result = -EINTR  # a socket call with a timeout set: EINTR even under SA_RESTART
        if result is not None and on_interrupt is not None:
            # the call's own last word on EINTR (nanosleep's rem, select's timeval)
            own = on_interrupt(task)
            if isinstance(own, int):
                result = own
        if result is None:
            regs = task.thread.get_regs()
            regs.rip -= 2  # back onto the syscall instruction, to run it again
            regs.rax = nr
            task.thread.set_regs(regs)
        self.finish(task, result)

    def _wait_multiplexed(self) -> None:
        """Wait for a host stop, a timer or a host fd, whichever comes first."""
        # The SIGCHLD signalfd first: a stop between the poll and its creation would be lost.
        wake_fd = self.platform.stop_fd()
        event = self.platform.poll()
        if event is not None:
            try:
                self._handle_stop(event[0], event[1], event[2])
            except Exception:
                self._internal_error(event[1])
            return
        timeout = None
        if self._timers:
            # capped: epoll's timeout is an int of ms; a far deadline just loops again
            timeout = min(max(0.0, self._timers[0][0] - time.monotonic()), 86400.0)
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
        if wake_fd not in self._selector.get_map():
            self._selector.register(wake_fd, selectors.EVENT_READ)
        if timeout is None or timeout > 0:
            ready = self._selector.select(timeout)
        else:
            ready = []
        for key, _ in ready:
            if key.fd == wake_fd:
                self.platform.drain_stop_fd()
                continue
            watch = self._watches.get(key.fd)
            if watch is not None:
                try:
                    watch()
                except Exception:
                    self._internal_error(0)
                continue
            for task in self._fd_waiters.pop(key.fd, []):
                self.wake(task)
            self._selector.unregister(key.fd)
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, what = heapq.heappop(self._timers)
            if isinstance(what, Timer):
                if not what.cancelled:
                    try:
                        what.fn()
                    except Exception:
                        self._internal_error(0)
            else:
                self.wake(what)

    # -- process lifecycle --------------------------------------------------------------
    def on_host_signal(self, task: Task, sig: int) -> None:
        """A host signal stop: our own kick (SIGSTOP) or a CPU fault in application code."""
        if sig == signal.SIGSTOP:
            self.finish(task, None)  # the kick: take pending signals, or stay stopped
            return
        try:
            info = task.thread.siginfo()
        except OSError:
            info = signals.basic_siginfo(sig, signals.SI_KERNEL)
        signals.fault(self, task, sig, info)

    def on_host_exit(self, task: Task, status: int) -> None:
        """The host thread vanished without us asking (e.g. killed from outside)."""
        self.by_host_tid.pop(task.thread.tid, None)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else signal.SIGKILL
        self.exit_group(task.tg, sig)

    def exit_group(self, tg: ThreadGroup, wait_status: int) -> None:
        """End every thread of `tg`; wait_status is the wait(2) status word."""
        process.exit_group(self, tg, wait_status)

    def platform_kill(self, host_pid: int) -> None:
        try:
            os.kill(host_pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def init_exited(self, wait_status: int) -> None:
        """pid 1 ended: like a pid namespace, the sandbox ends; the CLI reports its status."""
        if wait_status & 0x7F:
            self.exit_status = 128 + (wait_status & 0x7F)
        else:
            self.exit_status = (wait_status >> 8) & 0xFF
        for tg in list(self.thread_groups.values()):
            if tg.alive:
                self.exit_group(tg, signal.SIGKILL)

    def shutdown(self) -> None:
        for tg in list(self.thread_groups.values()):
            if tg.alive:
                self.exit_group(tg, signal.SIGKILL)
        self.platform.shutdown()


class Timer:
    """A callback scheduled with Kernel.call_at; cancel() before it fires to drop it."""

    __slots__ = ("fn", "cancelled")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
