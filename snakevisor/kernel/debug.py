"""What a running sandbox is doing, from the sentry's side: every task and what it waits for.

Why: a sandbox that stops making progress looks idle from the host (the sentry sleeps in
epoll_wait or waitpid, the stubs sit in ptrace stops), and only the sentry knows which task
is parked in which system call and what would wake it.  The operator asks with SIGUSR2 (the
report goes to the sentry's stderr and its --debug-log) or with `snakevisor debug ID` for a
container (over the control socket), as `runsc debug --stacks` asks gVisor's sentry.

The report is built between two steps of the loop (a Python signal handler runs between
bytecodes, a control request between system calls) and only reads the kernel's state.
"""
from __future__ import annotations

import logging
import signal
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task

log = logging.getLogger("snakevisor")


def task_line(task: "Task") -> str:
    """One task: ids, name, and where it is (application code, a parked call, stopped)."""
    from snakevisor.syscalls.numbers import syscall_name

    tg = task.tg
    where = "in application code" if task.in_user else "stopped for the sentry"
    if task.pending is not None:
        nr, args = task.pending
        where = f"parked in {syscall_name(nr)}({', '.join(hex(a) for a in args)})"
        if task.syscall_state:
            where += f" state {sorted(task.syscall_state)}"
    if tg.stopped:
        where += f" (group stopped by signal {tg.stop_signal})"
    if task.frozen is not None:
        where += " (frozen)"
    pending = task.sigpending.mask | tg.shared_pending.mask
    return (f"pid {tg.pid} tid {task.tid} host {getattr(task.thread, 'tid', '?')} "
            f"{task.comm.decode(errors='replace')!r}: {where}; signals pending {pending:#x} "
            f"blocked {task.sigmask:#x}")


def describe(kernel: "Kernel") -> str:
    """The whole sandbox: the loop's queues, then one line per live task."""
    now = time.monotonic()
    timers = sorted(deadline - now for deadline, _, _ in kernel._timers)[:5]
    lines = [f"sandbox state: {len(kernel.tasks)} tasks, {len(kernel._ready)} ready to run, "
             f"{len(kernel._timers)} timers (next in {', '.join(f'{t:.3f}' for t in timers) or '-'} s), "
             f"host fds waited on {sorted(kernel._fd_waiters)}, watched {sorted(kernel._watches)}, "
             f"{kernel.dispatched} system calls served"]
    for tid in sorted(kernel.tasks):
        try:
            lines.append("  " + task_line(kernel.tasks[tid]))
        except Exception as exc:  # (a structure caught mid-update: say so, go on)
            lines.append(f"  tid {tid}: unreadable ({type(exc).__name__}: {exc})")
    return "\n".join(lines)


def dump_on_signal(kernel: "Kernel", sig: int = signal.SIGUSR2) -> None:
    """SIGUSR2 to the sentry writes describe() to its stderr and log."""

    def dump(_sig: int, _frame: object) -> None:
        try:
            report = describe(kernel)
        except Exception as exc:
            report = f"sandbox state: unavailable ({type(exc).__name__}: {exc})"
        try:
            sys.stderr.write(report + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        log.info("%s", report)

    signal.signal(sig, dump)
