"""Pipes (pipe(7)): a ring of page-sized buffers shared by a read end and a write end.

Why a ring of page slots and not a byte ring: Linux counts a pipe's capacity in page
buffers (16 by default), and the numbers applications observe follow from that — 1000-byte
writes fill a 64 KiB pipe at 64000 bytes, an O_DIRECT packet takes a whole slot whatever
its size, F_SETPIPE_SZ answers EBUSY when the buffers *in use* outnumber the new size,
and a large write first tops up the last page with its sub-page remainder.  Modelling the
slots (each: unread bytes, where in its page they end, packet or mergeable) makes all of
those match Linux's fs/pipe.c without special cases.

PIPE_BUF atomicity falls out of the same rule Linux relies on: a write of at most a page
either merges whole into the last buffer or takes one free slot, so it is never split.

Waiting goes through the event loop: a reader that finds the pipe empty (writers exist)
raises Block on `rd_wait`, a writer that finds it full blocks on `wr_wait`; every change
notifies the other side's queue.  A blocking write keeps the bytes it has already queued in
task.syscall_state["transferred"], so the re-dispatched call continues where it stopped
and finally returns the total (and a signal that interrupts it should return that count,
as Linux does, rather than EINTR or a restart).
"""
from __future__ import annotations

import itertools
import os
import struct
import time
from collections import deque
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import (EAGAIN, EBADF, EBUSY, EINVAL, EPERM, EPIPE, Block,
                                      SyscallError, WaitQueue)
from snakevisor.kernel.sigframe import SI_USER
from snakevisor.kernel.signals import basic_siginfo
from snakevisor.vfs.file import (O_RDONLY, O_WRONLY, POLLERR, POLLHUP, POLLIN, POLLOUT,
                                 POLLRDNORM, POLLWRNORM, File)

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

PAGE_SIZE = 4096
PIPE_BUF = 4096  #: writes up to this size are atomic (one slot or one merge)
DEFAULT_SLOTS = 16  #: 64 KiB
PIPE_MAX_SIZE = 1 << 20  #: /proc/sys/fs/pipe-max-size
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032
FIONREAD = 0x541B
SIGPIPE = 13
O_NONBLOCK, O_DIRECT = os.O_NONBLOCK, os.O_DIRECT
S_IFIFO = 0o010000
#: the sandbox's pipefs device: a made-up anonymous device, deliberately not the host's
#: pipefs, whose inode numbers the CLI's own stdio pipes carry
PIPEFS_DEV = os.makedev(0, 0xFFFFF)
#: task.syscall_state key: bytes of the current write already queued
TRANSFERRED = "transferred"

_inodes = itertools.count(1)


class _Slot:
    """One page buffer: its unread bytes and the page offset they end at (a write may
    merge into the page only up to PAGE_SIZE; bytes already read stay used)."""

    __slots__ = ("data", "end", "packet")

    def __init__(self, data: bytes | memoryview, packet: bool) -> None:
        self.data = bytearray(data)
        self.end = len(data)
        self.packet = packet  # O_DIRECT: read whole (or truncated), never merged into


def spliced_slot(data: bytes | bytearray | memoryview, packet: bool = False) -> _Slot:
    """A buffer that did not come from write(2): later writes never merge into it
    (Linux's page-cache, user-page and tee'd buffers lack PIPE_BUF_FLAG_CAN_MERGE)."""
    slot = _Slot(data, packet)
    slot.end = PAGE_SIZE
    return slot


class Pipe:
    """The shared buffer and its two ends' bookkeeping (Linux's pipe_inode_info)."""

    def __init__(self, uid: int, gid: int) -> None:
        self.bufs: deque[_Slot] = deque()
        self.max_usage = DEFAULT_SLOTS  #: capacity in slots
        self.readers = 0  #: open file descriptions of the read end
        self.writers = 0
        self.rd_wait = WaitQueue()  #: readers (and pollers of a read end) wait for data/EOF
        self.wr_wait = WaitQueue()  #: writers wait for room or for the last reader to go
        self.ino = next(_inodes)
        self.uid, self.gid = uid, gid
        self.atime_ns = self.mtime_ns = self.ctime_ns = time.time_ns()

    @property
    def full(self) -> bool:
        return len(self.bufs) >= self.max_usage

    def nbytes(self) -> int:
        return sum(len(slot.data) for slot in self.bufs)

    def set_size(self, size: int) -> int:
        """F_SETPIPE_SZ: round up to a power-of-two number of pages (at least one).

        Growing past pipe-max-size is EPERM: Linux allows it only with CAP_SYS_RESOURCE in
        the initial user namespace, which the sandbox's (namespaced) root never has."""
        if size > 1 << 31:
            raise SyscallError(EINVAL)  # round_pipe_size() gives 0
        size = PAGE_SIZE if size < PAGE_SIZE else 1 << (size - 1).bit_length()
        slots = size // PAGE_SIZE
        if slots > self.max_usage and size > PIPE_MAX_SIZE:
            raise SyscallError(EPERM)
        if slots < len(self.bufs):
            raise SyscallError(EBUSY)
        self.max_usage = slots
        self.wr_wait.notify()  # there may be room now
        return size

    # -- buffers moved whole (splice, tee, vmsplice) ---------------------------------------
    def free_slots(self) -> int:
        return max(0, self.max_usage - len(self.bufs))

    def filled(self) -> None:
        """Buffers were added: wake readers and pollers of the read end."""
        self.mtime_ns = self.ctime_ns = time.time_ns()
        self.rd_wait.notify()

    def consume(self, n: int) -> None:
        """Drop n bytes from the front (a partly read buffer keeps the rest, packet or not:
        splice ignores packet boundaries) and wake writers when room appears."""
        was_full = self.full
        bufs = self.bufs
        while n:
            data = bufs[0].data
            if len(data) > n:
                del data[:n]
                break
            n -= len(data)
            bufs.popleft()
        self.atime_ns = time.time_ns()
        if was_full and not self.full:
            self.wr_wait.notify()

    def peek(self, count: int) -> bytes:
        """Up to count bytes from the front of the pipe, left in place."""
        pieces, left = [], count
        for slot in self.bufs:
            if not left:
                break
            piece = slot.data[:left]
            pieces.append(piece)
            left -= len(piece)
        return b"".join(pieces)


class PipeFile(File):
    """One end of a pipe.  The end is fixed at creation (F_SETFL cannot change it), as
    Linux fixes f_mode; the status flags (O_NONBLOCK, O_DIRECT) stay changeable."""

    def __init__(self, pipe: Pipe, flags: int) -> None:
        super().__init__(flags, f"pipe:[{pipe.ino}]")
        self.pipe = pipe
        self.is_reader = self.readable
        self.is_writer = self.writable
        if self.is_reader:
            pipe.readers += 1
        if self.is_writer:
            pipe.writers += 1

    def __repr__(self) -> str:
        end = "read" if self.is_reader else "write"
        return f"PipeFile({end}, ino={self.pipe.ino}, flags={self.flags:#o})"

    # -- data ----------------------------------------------------------------------------
    def read(self, task: "Task", count: int) -> bytes:
        """What is buffered, up to count (one packet at most); EOF once no writer is left."""
        if not self.is_reader:
            raise SyscallError(EBADF)
        if not count:
            return b""  # a null read succeeds at once, even on an empty pipe
        pipe = self.pipe
        bufs = pipe.bufs
        if not bufs:
            if not pipe.writers:
                return b""
            if self.flags & O_NONBLOCK:
                raise SyscallError(EAGAIN)
            raise Block(queue=pipe.rd_wait)
        pieces = []
        was_full = pipe.full
        while bufs and count:
            slot = bufs[0]
            data = slot.data
            if len(data) > count:
                pieces.append(bytes(data[:count]))
                if not slot.packet:
                    del data[:count]
                    break
                bufs.popleft()  # a packet read short loses the rest of it
                break
            pieces.append(data)
            count -= len(data)
            bufs.popleft()
            if slot.packet:
                break  # at most one packet per read
        if was_full and not pipe.full:
            pipe.wr_wait.notify()
        pipe.atime_ns = time.time_ns()
        return bytes(pieces[0]) if len(pieces) == 1 else b"".join(pieces)

    def write(self, task: "Task", data: bytes) -> int:
        """Queue all of data: whole when it is at most PIPE_BUF, else page by page, waiting
        for room unless O_NONBLOCK (then what fitted, or EAGAIN when nothing did)."""
        if not self.is_writer:
            raise SyscallError(EBADF)
        total = len(data)
        if not total:
            return 0  # a null write succeeds, readers or not
        pipe = self.pipe
        state = task.syscall_state
        done = state.get(TRANSFERRED, 0) if state is not None else 0
        if not pipe.readers:
            return self.broken(task, done)
        bufs = pipe.bufs
        resumed = done
        if not done:
            # top up the last page with the sub-page remainder (page-aligns the rest)
            chars = total & (PAGE_SIZE - 1)
            if chars and bufs:
                last = bufs[-1]
                if not last.packet and last.end + chars <= PAGE_SIZE:
                    last.data += data[:chars]
                    last.end += chars
                    done = chars
        packet = bool(self.flags & O_DIRECT)
        view = memoryview(data)
        while done < total:
            if pipe.full:
                if self.flags & O_NONBLOCK:
                    if done:
                        break
                    raise SyscallError(EAGAIN)
                if done:
                    if state is None:
                        state = task.syscall_state = {}
                    state[TRANSFERRED] = done
                if done > resumed:
                    self._queued(pipe)
                raise Block(queue=pipe.wr_wait)
            bufs.append(_Slot(view[done:done + PAGE_SIZE], packet))
            done += min(PAGE_SIZE, total - done)
        if state is not None:
            state.pop(TRANSFERRED, None)  # a caller writing in pieces starts the next afresh
        self._queued(pipe)
        return done

    def _queued(self, pipe: Pipe) -> None:
        pipe.mtime_ns = pipe.ctime_ns = time.time_ns()
        if pipe.rd_wait.waiters:
            pipe.rd_wait.notify()

    def broken(self, task: "Task", done: int) -> int:
        """No reader is left: SIGPIPE to the writing thread (the kernel applies its
        disposition), and EPIPE unless part of this write was already queued."""
        # Linux's send_sig(SIGPIPE, current, 0): SI_USER from the writer itself
        task.kernel.send_signal(task, SIGPIPE, basic_siginfo(SIGPIPE, SI_USER, pid=task.tg.pid,
                                                             uid=task.tg.creds.ruid))
        if task.syscall_state is not None:
            task.syscall_state.pop(TRANSFERRED, None)
        if done:
            return done
        raise SyscallError(EPIPE)

    # -- control ---------------------------------------------------------------------------
    def fcntl_pipe_size(self, task: "Task", cmd: int, arg: int) -> int:
        """F_GETPIPE_SZ / F_SETPIPE_SZ (arg is an unsigned int, as pipe_fcntl reads it)."""
        if cmd == F_GETPIPE_SZ:
            return self.pipe.max_usage * PAGE_SIZE
        if cmd == F_SETPIPE_SZ:
            return self.pipe.set_size(arg & 0xFFFFFFFF)
        raise SyscallError(EINVAL)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        if request == FIONREAD:  # either end: the bytes waiting to be read
            task.tg.mm.write(arg, struct.pack("<i", self.pipe.nbytes()))
            return 0
        return super().ioctl(task, request, arg)

    def stat(self) -> os.stat_result:
        pipe = self.pipe
        a, m, c = pipe.atime_ns, pipe.mtime_ns, pipe.ctime_ns
        return os.stat_result(
            (S_IFIFO | 0o600, pipe.ino, PIPEFS_DEV, 1, pipe.uid, pipe.gid, 0,
             a // 1_000_000_000, m // 1_000_000_000, c // 1_000_000_000),
            {"st_atime_ns": a, "st_mtime_ns": m, "st_ctime_ns": c,
             "st_blksize": PAGE_SIZE, "st_blocks": 0, "st_rdev": 0})

    # -- readiness (for poll/select/epoll) -------------------------------------------------
    def poll_events(self) -> int:
        """Linux's pipe_poll mask: callers keep what was asked plus POLLERR/POLLHUP."""
        pipe = self.pipe
        mask = 0
        if self.is_reader:
            if pipe.bufs:
                mask |= POLLIN | POLLRDNORM
            if not pipe.writers:
                mask |= POLLHUP
        if self.is_writer:
            if not pipe.full:
                mask |= POLLOUT | POLLWRNORM
            if not pipe.readers:
                mask |= POLLERR
        return mask

    def poll_queue(self) -> WaitQueue:
        """The queue notified whenever poll_events() of this end may have changed."""
        return self.pipe.rd_wait if self.is_reader else self.pipe.wr_wait

    def release(self) -> None:
        """The last fd of this end closed: the other side learns EOF / EPIPE."""
        pipe = self.pipe
        if self.is_reader:
            pipe.readers -= 1
            if not pipe.readers:
                pipe.wr_wait.notify()
        if self.is_writer:
            pipe.writers -= 1
            if not pipe.writers:
                pipe.rd_wait.notify()


def new_pipe(task: "Task", flags: int) -> tuple[PipeFile, PipeFile]:
    """A pipe's two ends as pipe2(2) makes them: O_NONBLOCK on both, O_DIRECT on the write
    end only (Linux's read end never carries it), owned by the caller's fsuid/fsgid."""
    creds = task.tg.creds
    pipe = Pipe(creds.fsuid, creds.fsgid)
    reader = PipeFile(pipe, O_RDONLY | (flags & O_NONBLOCK))
    writer = PipeFile(pipe, O_WRONLY | (flags & (O_NONBLOCK | O_DIRECT)))
    return reader, writer
