"""Signals the sentry's own host process receives, turned into events of the kernel's loop.

Why: a host signal may arrive in the middle of serving a system call, where nothing of the
kernel may be touched.  So the Python handler only posts the registered callback to the
kernel (Kernel.post: a queue and the platform's ring, which wakes a loop blocked waiting for
its threads), and the loop runs it between two system calls.  Not a wakeup fd watched by the
loop: a watched fd makes every system call's wait a multiplexed one (getpid 13 -> 18 us).
There is one set of handlers per process, hence one HostSignals per sentry, shared by its
users: the terminal relay (SIGWINCH, SIGHUP: runtime/console.py) and `snakevisor do`, which
hands the signals a command gets when run directly (a terminal's ^C, `kill`, `timeout`) on
to the application.
"""
from __future__ import annotations

import signal
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel

#: what `snakevisor do` hands on: to the first process's group as a terminal sends them, or
#: to the first process alone as `kill PID` (and `timeout`) would
TO_GROUP = (signal.SIGINT, signal.SIGQUIT)
TO_FIRST = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1)

_instance: "HostSignals | None" = None


class HostSignals:
    """Host signal handlers that post callbacks to the kernel's loop."""

    def __init__(self, kernel: "Kernel") -> None:
        self.kernel = kernel
        kernel.platform.prepare_ring()

    def on(self, sig: int, callback: Callable[[], None]) -> None:
        """Call `callback` from the loop whenever `sig` arrives (replacing an earlier one)."""
        post = self.kernel.post
        signal.signal(sig, lambda *_: post(callback))


def host_signals(kernel: "Kernel") -> HostSignals:
    """This process's HostSignals (made for the first kernel that asks)."""
    global _instance
    if _instance is None:
        _instance = HostSignals(kernel)
    return _instance


def forward_to_application(kernel: "Kernel", sig: int, group: bool) -> None:
    """`snakevisor do` got `sig`: the application gets it as if it had been run directly --
    from outside the sandbox (si_pid 0), to the first process's process group or to the
    first process alone, and with the default action the first process dies of it although
    it is the pid namespace's init (which a container's init would not: runtime/control.py)."""
    from snakevisor.kernel import signals
    from snakevisor.kernel.sigframe import SI_USER
    from snakevisor.vfs.tty import kill_pgrp

    first = kernel.init
    if first is None or not first.alive:
        return
    info = signals.basic_siginfo(sig, SI_USER)
    if group:
        kill_pgrp(kernel, first.pgid, sig, info)
    else:
        kernel.send_signal(first, sig, info)
    blocked = all(t.sigmask & signals.sig_bit(sig) for t in first.tasks if t.alive)
    if (first.alive and not blocked and signals.action(first, sig)[0] == signals.SIG_DFL
            and sig not in signals.DEFAULT_IGNORE and sig not in signals.STOP_SIGNALS):
        kernel.exit_group(first, signals.fatal_status(sig))


def forward_signals_of_do(kernel: "Kernel", with_terminal: bool) -> None:
    """Register the hand-on of TO_GROUP and TO_FIRST (SIGHUP stays the terminal relay's when
    the application has a sandbox terminal: the user's terminal hanging up hangs it up)."""
    signals_ = host_signals(kernel)
    for sig in TO_GROUP:
        signals_.on(sig, lambda s=sig: forward_to_application(kernel, s, group=True))
    for sig in TO_FIRST:
        if sig == signal.SIGHUP and with_terminal:
            continue
        signals_.on(sig, lambda s=sig: forward_to_application(kernel, s, group=False))
