"""signalfd files (signalfd(2)): pending signals read as struct signalfd_siginfo records.

Why this shape: a signalfd holds only a mask.  Like Linux's, it has no signals of its
own: a read dequeues from whoever reads — the calling thread's pending set, then its
process's — so after a fork the child's copy of the description reads the child's
signals.  Readiness is the same question asked for the task being served (Linux asks it
of `current`), and the queue to wait on is that process's `signal_wait`, which signal
generation (kernel/signals.py, send_signal) notifies for every signal it queues, blocked
or not.  Applications block the signals they read this way; an unblocked one is
delivered as usual before a read can take it.
"""
from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EAGAIN, EINVAL, Block, SyscallError, WaitQueue
from snakevisor.kernel.sigframe import unpack_siginfo
from snakevisor.kernel.signals import UNBLOCKABLE
from snakevisor.vfs.epoll import anon_inode_stat
from snakevisor.vfs.file import O_RDWR, POLLIN, File

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

ALL_SIGNALS = (1 << 64) - 1
#: struct signalfd_siginfo: signo errno code pid uid fd tid band overrun trapno status int
#: ptr utime stime addr addr_lsb (pad) syscall call_addr arch, padded to 128 bytes
SIGNALFD_SIGINFO = struct.Struct("<IiiIIiIIIIiiQQQQH2xiQI28x")
assert SIGNALFD_SIGINFO.size == 128


def signalfd_siginfo(raw: bytes) -> bytes:
    """A queued 128-byte siginfo as signalfd_copyinfo reports it: only the fields of the
    union member the (signal, code) pair uses."""
    info = unpack_siginfo(raw)
    f = {"pid": 0, "uid": 0, "fd": 0, "tid": 0, "band": 0, "overrun": 0, "status": 0,
         "int": 0, "ptr": 0, "utime": 0, "stime": 0, "addr": 0, "addr_lsb": 0,
         "syscall": 0, "call_addr": 0, "arch": 0}
    layout = info["layout"]
    if layout in ("kill", "rt", "chld"):
        f["pid"], f["uid"] = info["pid"] & 0xFFFFFFFF, info["uid"]
    if layout in ("rt", "timer"):
        f["ptr"] = info["value"]
        f["int"] = struct.unpack("<i", struct.pack("<I", info["value"] & 0xFFFFFFFF))[0]
    if layout == "timer":
        f["tid"], f["overrun"] = info["timerid"] & 0xFFFFFFFF, info["overrun"] & 0xFFFFFFFF
    elif layout == "chld":
        f["status"], f["utime"], f["stime"] = info["status"], info["utime"], info["stime"]
    elif layout == "poll":
        f["band"], f["fd"] = info["band"] & 0xFFFFFFFF, info["fd"]
    elif layout.startswith("fault"):
        f["addr"] = info["addr"]
        if layout == "fault_mceerr":
            f["addr_lsb"] = info["addr_lsb"] & 0xFFFF
    elif layout == "sys":
        f["call_addr"], f["syscall"], f["arch"] = info["call_addr"], info["syscall"], info["arch"]
    return SIGNALFD_SIGINFO.pack(
        info["signo"], info["errno"], info["code"], f["pid"], f["uid"], f["fd"], f["tid"],
        f["band"], f["overrun"], 0, f["status"], f["int"], f["ptr"] & ALL_SIGNALS,
        f["utime"] & ALL_SIGNALS, f["stime"] & ALL_SIGNALS, f["addr"], f["addr_lsb"],
        f["syscall"], f["call_addr"], f["arch"])


class SignalFd(File):
    """One signalfd: the signals it reads (never SIGKILL or SIGSTOP)."""

    def __init__(self, owner: "Task", mask: int, nonblock: bool) -> None:
        super().__init__(O_RDWR | (os.O_NONBLOCK if nonblock else 0), "anon_inode:[signalfd]")
        self.mask = 0
        self.set_mask(mask)
        #: whom readiness is about when the kernel does not say which task it serves
        self.owner = owner

    def __repr__(self) -> str:
        return f"SignalFd(mask={self.mask:#x})"

    def set_mask(self, mask: int) -> None:
        self.mask = mask & ALL_SIGNALS & ~UNBLOCKABLE

    def _context(self) -> "Task":
        """The task readiness is asked for: the one being served (Linux's `current`)
        when the kernel records it, else the last task that used this file."""
        current = self.owner.kernel.current
        if current is not None and current.alive:
            return current
        owner = self.owner
        if not owner.alive:
            alive = [t for t in owner.tg.tasks if t.alive]
            if alive:
                self.owner = owner = alive[0]
        return owner

    def read(self, task: "Task", count: int) -> bytes:
        """Up to count // 128 records; waits for the first one only."""
        wanted = count // SIGNALFD_SIGINFO.size
        if not wanted:
            raise SyscallError(EINVAL)
        self.owner = task
        blocked = ~self.mask & ALL_SIGNALS
        records = []
        while len(records) < wanted:
            got = task.sigpending.take(blocked) or task.tg.shared_pending.take(blocked)
            if got is None:
                break
            records.append(signalfd_siginfo(got[1]))
        if records:
            return b"".join(records)
        if self.flags & os.O_NONBLOCK:
            raise SyscallError(EAGAIN)
        raise Block(queue=task.tg.signal_wait)

    def lseek(self, offset: int, whence: int) -> int:
        return 0  # noop_llseek

    def stat(self) -> os.stat_result:
        return anon_inode_stat()

    def poll_events(self) -> int:
        task = self._context()
        pending = task.sigpending.mask | task.tg.shared_pending.mask
        return POLLIN if pending & self.mask else 0

    def poll_queue(self) -> WaitQueue:
        return self._context().tg.signal_wait

    def fdinfo(self) -> str:
        """The line Linux's signalfd_show_fdinfo adds to /proc/PID/fdinfo/N."""
        return f"sigmask:\t{self.mask:016x}\n"
