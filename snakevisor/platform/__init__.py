"""Platforms: how application system calls are caught and how address spaces are driven.

A platform hands the kernel three kinds of object:

* an :class:`AddressSpaceHost` (one host process per application address space) that can
  read/write application memory and run a host system call the sentry chose (injection);
* a :class:`ThreadHost` (one host thread per application thread) whose registers can be
  read and written and which can be resumed until its next system call or fault;
* :class:`StopEvent` values from :meth:`Platform.wait`, which the kernel's event loop turns
  into syscall dispatch, fault delivery or exit bookkeeping.

`ptrace` is the first implementation (snakevisor.platform.ptrace).  A faster platform
(seccomp user notification, a systrap-style stub) implements the same classes.
"""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from snakevisor.platform.regs import Regs


class StopEvent(NamedTuple):
    """One thing a host thread did that the kernel must react to."""

    kind: int  #: one of the STOP_* constants below
    tid: int  #: host thread id
    value: int  #: syscall number, signal number, or exit status
    info: object = None  #: syscall args tuple, or platform detail


STOP_SYSCALL = 1  #: the thread made a system call (value = nr, info = 6 args)
STOP_SIGNAL = 2  #: the thread took a host signal / CPU fault (value = signo)
STOP_EXITED = 3  #: the host thread is gone (value = raw wait status)
STOP_OTHER = 4  #: anything else (ptrace events), usually ignored
STOP_BADARCH = 5  #: a system call through a refused entry (int 0x80 etc.)
STOP_WAKE = 6  #: no thread: Platform.ring() was called (the loop looks at its own events)


class AddressSpaceHost(abc.ABC):
    """The host side of one application address space."""

    @abc.abstractmethod
    def read(self, addr: int, length: int) -> bytes: ...

    @abc.abstractmethod
    def write(self, addr: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def syscall(self, nr: int, *args: int) -> int:
        """Run host system call `nr` inside this address space; returns raw rax."""

    @abc.abstractmethod
    def mmap_file(self, addr: int, length: int, prot: int, flags: int, hostfd: int, offset: int) -> int:
        """Map host file `hostfd` at `addr` (MAP_FIXED in flags); returns raw result."""

    @abc.abstractmethod
    def cmpxchg32(self, addr: int, expected: int, new: int) -> int:
        """Atomic compare-and-swap of a u32 in application memory; returns the old value."""

    @abc.abstractmethod
    def fork(self) -> "AddressSpaceHost":
        """A copy-on-write copy of this address space (host fork of its process)."""

    @abc.abstractmethod
    def destroy(self) -> None: ...


class ThreadHost(abc.ABC):
    """The host side of one application thread (stopped whenever the sentry holds it)."""

    tid: int  #: host thread id
    tgid: int  #: host process id of the thread's stub

    @abc.abstractmethod
    def get_regs(self) -> "Regs": ...

    @abc.abstractmethod
    def set_regs(self, regs: "Regs") -> None: ...

    @abc.abstractmethod
    def set_return(self, value: int) -> None:
        """The result of the system call the thread is stopped in (the hot path)."""

    @abc.abstractmethod
    def get_xstate(self) -> bytes:
        """The full XSAVE image (FP/SSE/AVX state), for signal frames."""

    @abc.abstractmethod
    def set_xstate(self, image: bytes) -> None: ...

    @abc.abstractmethod
    def syscall_info(self) -> tuple:
        """(arch, ip, sp, nr, a0..a5) of the system call the thread stopped in."""

    @abc.abstractmethod
    def resume(self, sig: int = 0) -> None:
        """Run application code until the next system call or fault."""

    @abc.abstractmethod
    def siginfo(self) -> bytes:
        """The host's siginfo of the fault the thread stopped with."""

    @abc.abstractmethod
    def clone_thread(self) -> "ThreadHost":
        """A new thread in the same host process, stopped before running anything."""

    @abc.abstractmethod
    def clone_shared_vm(self) -> "ThreadHost":
        """A new host process sharing this one's memory (vfork/CLONE_VM children)."""

    @abc.abstractmethod
    def exit_thread(self) -> None:
        """End this host thread alone."""

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Stop the thread soon if it is running application code (to deliver a signal)."""


class Platform(abc.ABC):
    """Creates address spaces and reports what their threads do."""

    name: str
    #: the host CPUs the sandbox was given (before any pinning the platform does for speed);
    #: what sched_getaffinity and nproc report inside
    cpus: frozenset[int]

    @abc.abstractmethod
    def new_address_space(self) -> AddressSpaceHost:
        """A fresh, empty (pristine) address space."""

    @abc.abstractmethod
    def wait(self) -> StopEvent:
        """Block until some host thread stops."""

    @abc.abstractmethod
    def poll(self) -> tuple[int, int, int] | None:
        """A pending stop as (kind, tid, value) without blocking, or None."""

    @abc.abstractmethod
    def prepare_ring(self) -> None:
        """Make ring() usable (once, from the loop's thread, before any ring)."""

    @abc.abstractmethod
    def ring(self) -> None:
        """Make wait()/poll() report a STOP_WAKE soon, from anywhere -- a Python signal
        handler included (so it must not touch the kernel): how the loop, blocked waiting
        for its threads, learns of events of its own without watching an fd (which would
        cost every system call a multiplexed wait)."""

    @abc.abstractmethod
    def stop_fd(self) -> int:
        """A host fd that polls readable when a stop may be pending (for multiplexed waits)."""

    @abc.abstractmethod
    def drain_stop_fd(self) -> None: ...

    @abc.abstractmethod
    def shutdown(self) -> None: ...
