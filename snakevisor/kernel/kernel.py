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
from snakevisor.kernel.errors import ENOSYS, Block, SyscallError
from snakevisor.kernel.task import Task, ThreadGroup
from snakevisor.platform import STOP_EXITED, STOP_SIGNAL, STOP_SYSCALL, Platform
from snakevisor.syscalls.numbers import syscall_name

log = logging.getLogger("snakevisor.sentry")

AUDIT_ARCH_X86_64 = 0xC000003E
EIO = 5


class Kernel:
    """Everything one sandbox shares: tasks, pid numbering, root fs, clocks, the loop."""

    def __init__(self, platform: Platform, root: object, hostname: str = "snakevisor",
                 strace: TextIO | None = None, debug: bool = False) -> None:
        from snakevisor.kernel.task import raise_sentry_nofile

        raise_sentry_nofile()
        self.platform = platform
        self.root = root
        self.hostname = hostname.encode()
        self.domainname = b"(none)"
        self.strace = strace
        self.debug = debug
        self.handlers = syscalls.load_all()
        self.by_host_tid: dict[int, Task] = {}
        self.thread_groups: dict[int, ThreadGroup] = {}
        self._next_pid = 1
        self.init: ThreadGroup | None = None
        self.boot_monotonic = time.monotonic()
        self.boot_time = time.time()
        self._ready: deque[Task] = deque()
        self._timers: list[tuple[float, int, Task]] = []
        self._timer_seq = 0
        self._selector: selectors.BaseSelector | None = None
        self._fd_waiters: dict[int, list[Task]] = {}
        self._warned: set[str] = set()
        self.exit_status = 0

    # -- small services for handlers -----------------------------------------------------
    def now(self) -> float:
        return time.monotonic()

    def alloc_pid(self) -> int:
        pid = self._next_pid
        while pid in self.thread_groups:
            pid += 1
        self._next_pid = pid + 1
        return pid

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
                    self._dispatch(task, nr, args)
                continue
            if self._timers or self._fd_waiters:
                self._wait_multiplexed()
                continue
            kind, tid, value, _ = wait()
            handle(kind, tid, value)
        return self.exit_status

    def _handle_stop(self, kind: int, tid: int, value: int) -> None:
        task = self.by_host_tid.get(tid)
        if task is None:
            return  # a stub we already let go of
        if kind == STOP_SYSCALL:
            arch, _ip, _sp, nr, a0, a1, a2, a3, a4, a5 = task.thread.syscall_info()
            if arch != AUDIT_ARCH_X86_64:
                self.warn_once("arch", f"refused a 32-bit system call entry (int 0x80, nr {nr})")
                task.thread.set_return(-ENOSYS)
                task.thread.resume()
                return
            self._dispatch(task, nr, (a0, a1, a2, a3, a4, a5))
        elif kind == STOP_SIGNAL:
            self.on_host_signal(task, value)
        elif kind == STOP_EXITED:
            self.on_host_exit(task, value)
        else:
            task.thread.resume()

    def _dispatch(self, task: Task, nr: int, args: tuple) -> None:
        handler = self.handlers[nr] if 0 <= nr < 512 else None
        if self.strace is not None:
            from snakevisor.syscalls.strace import traced_call
            result = traced_call(self, task, nr, args, handler, self._call)
        else:
            result = self._call(task, nr, args, handler)
        if result is syscalls.NO_RETURN:
            return
        thread = task.thread
        thread.set_return(result)
        thread.resume()

    def _call(self, task: Task, nr: int, args: tuple, handler: Callable | None) -> object:
        """Run one handler; returns the result or NO_RETURN (parked, exec'd, exited)."""
        if handler is None:
            self.warn_once(f"nosys:{nr}", f"unimplemented system call {syscall_name(nr)} "
                           f"(nr {nr}, args {', '.join(hex(a) for a in args)}) -> ENOSYS")
            return -ENOSYS
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
            if self._selector is None:
                self._selector = selectors.DefaultSelector()
            waiters = self._fd_waiters.setdefault(block.fd, [])
            if not waiters:
                self._selector.register(block.fd, block.events or selectors.EVENT_READ)
            waiters.append(task)
        if block.queue is not None:
            block.queue.waiters.append(task)

    def wake(self, task: Task) -> None:
        """Make a parked task re-run its system call soon."""
        if task.pending is not None and task not in self._ready:
            self._ready.append(task)

    def _wait_multiplexed(self) -> None:
        """Wait for a host stop, a timer or a host fd, whichever comes first."""
        event = self.platform.poll()
        if event is not None:
            self._handle_stop(event[0], event[1], event[2])
            return
        timeout = None
        if self._timers:
            # capped: epoll's timeout is an int of ms; a far deadline just loops again
            timeout = min(max(0.0, self._timers[0][0] - time.monotonic()), 86400.0)
        if self._selector is None:
            self._selector = selectors.DefaultSelector()
        wake_fd = self.platform.stop_fd()
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
            for task in self._fd_waiters.pop(key.fd, []):
                self.wake(task)
            self._selector.unregister(key.fd)
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, task = heapq.heappop(self._timers)
            self.wake(task)

    # -- process lifecycle --------------------------------------------------------------
    def on_host_signal(self, task: Task, sig: int) -> None:
        """A CPU fault or host signal hit application code: default action (terminate)."""
        if sig == signal.SIGSTOP:
            task.thread.resume()
            return
        core = sig in (signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
                       signal.SIGTRAP, signal.SIGABRT, signal.SIGSYS, signal.SIGQUIT)
        self.exit_group(task.tg, sig | (0x80 if core else 0))

    def on_host_exit(self, task: Task, status: int) -> None:
        """The host thread vanished without us asking (e.g. killed from outside)."""
        self.by_host_tid.pop(task.thread.tid, None)
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else signal.SIGKILL
        self.exit_group(task.tg, sig)

    def exit_group(self, tg: ThreadGroup, wait_status: int) -> None:
        """End every thread of `tg`; wait_status is the wait(2) status word."""
        if not tg.alive:
            return
        tg.exit_status = wait_status
        for task in tg.tasks:
            task.alive = False
            task.pending = None
            if task.thread is not None:  # None when boot failed before the first exec
                self.by_host_tid.pop(task.thread.tid, None)
        if tg.mm is not None:
            tg.mm.users -= len(tg.tasks)
            if tg.mm.users <= 0:
                tg.mm.destroy()
        tg.fds.close_all()
        if tg is self.init:
            if wait_status & 0x7F:
                self.exit_status = 128 + (wait_status & 0x7F)
            else:
                self.exit_status = (wait_status >> 8) & 0xFF

    def shutdown(self) -> None:
        for tg in list(self.thread_groups.values()):
            if tg.alive:
                self.exit_group(tg, signal.SIGKILL)
        self.platform.shutdown()
