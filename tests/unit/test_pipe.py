"""Pipes through the real handlers on a fake task: Linux's capacities, atomicity, blocking
and waking, EOF, EPIPE with SIGPIPE, sizes, packets, FIONREAD, fstat and pipe2's errors.

The expected numbers are Linux's (checked natively with tests/c/pipes.c and probes):
e.g. 1000-byte writes fill a default pipe at 64000 bytes because capacity is 16 page
slots, and a 70000-byte non-blocking write after 100 bytes queues 61808.  Blocking is
checked the way the kernel drives it: the handler raises Block on a WaitQueue; the test
plays "the other side", then dispatches the same call again.
"""
from __future__ import annotations

import errno
import fcntl
import os
import random
import select
import struct

import pytest

from snakevisor.kernel.errors import Block, SyscallError
from snakevisor.kernel.task import Task
from snakevisor.syscalls import sys_pipe
from snakevisor.vfs.pipe import F_GETPIPE_SZ, F_SETPIPE_SZ, FIONREAD, PipeFile
from tests.unit.conftest import MEM_BASE, MEM_SIZE, U64, DispatchEnv

O_NONBLOCK, O_CLOEXEC, O_DIRECT = os.O_NONBLOCK, os.O_CLOEXEC, os.O_DIRECT
F_GETFD, F_GETFL, F_SETFL = 1, 3, 4
RLIMIT_NOFILE, SIGPIPE = 7, 13
_STAT = struct.Struct("<3Q3I4xQ3q6q24x")


class Env(DispatchEnv):
    """DispatchEnv with the pipe-specific calls; `peer` plays the other side while the main
    thread is parked."""

    def pipe(self, flags: int = 0) -> tuple[int, int]:
        """Through pipe2 itself: these tests are about it."""
        out = self.p.alloc(8)
        assert self.dispatch("pipe2", out, flags) == 0
        rfd, wfd = struct.unpack("<ii", self.p.get(out, 8))
        return rfd, wfd

    def write(self, fd: int, data: bytes, task: Task | None = None) -> int:
        return self.dispatch("write", fd, self.p.put(data), len(data), task=task)

    def read(self, fd: int, count: int, task: Task | None = None) -> bytes | int:
        buf = self.p.alloc(count)
        n = self.dispatch("read", fd, buf, count, task=task)
        return n if n < 0 else self.p.get(buf, n)

    def park(self, block: Block) -> None:
        """What Kernel._park does with a WaitQueue."""
        assert block.queue is not None
        block.queue.waiters.append(self.p.task)

    def file(self, fd: int) -> PipeFile:
        file = self.p.tg.fds.get(fd)
        assert isinstance(file, PipeFile)
        return file

    def fionread(self, fd: int) -> int:
        out = self.p.alloc(4)
        assert self.dispatch("ioctl", fd, FIONREAD, out) == 0
        return struct.unpack("<i", self.p.get(out, 4))[0]

    def pipe_size(self, fd: int, cmd: int, arg: int = 0) -> int:
        try:
            return self.file(fd).fcntl_pipe_size(self.p.task, cmd, arg)
        except SyscallError as e:
            return -e.errno

    def fill(self, fd: int, chunk: int) -> int:
        """Non-blocking writes of `chunk` bytes until EAGAIN; the bytes that fitted."""
        total = 0
        while (n := self.write(fd, b"x" * chunk)) > 0:
            total += n
        assert n == -errno.EAGAIN
        return total


@pytest.fixture
def env() -> Env:
    return Env()


# -- pipe2 -----------------------------------------------------------------------------
@pytest.mark.parametrize("flags, rfl, wfl, cloexec", [
    (0, 0, 0o1, 0),
    (O_NONBLOCK, O_NONBLOCK, O_NONBLOCK | 0o1, 0),
    (O_CLOEXEC, 0, 0o1, 1),
    (O_DIRECT, 0, O_DIRECT | 0o1, 0),  # Linux leaves O_DIRECT off the read end
    (O_NONBLOCK | O_CLOEXEC | O_DIRECT, O_NONBLOCK, O_NONBLOCK | O_DIRECT | 0o1, 1),
])
def test_pipe2_flags(env: Env, flags: int, rfl: int, wfl: int, cloexec: int) -> None:
    rfd, wfd = env.pipe(flags)
    assert (rfd, wfd) == (0, 1)
    assert env.dispatch("fcntl", rfd, F_GETFL) == rfl
    assert env.dispatch("fcntl", wfd, F_GETFL) == wfl
    assert env.dispatch("fcntl", rfd, F_GETFD) == cloexec
    assert env.dispatch("fcntl", wfd, F_GETFD) == cloexec


def test_pipe_is_pipe2_without_flags(env: Env) -> None:
    out = env.p.alloc(8)
    assert env.dispatch("pipe", out) == 0
    assert struct.unpack("<ii", env.p.get(out, 8)) == (0, 1)


@pytest.mark.parametrize("flags, err", [
    (os.O_APPEND, errno.EINVAL), (1 << 31, errno.EINVAL), (U64, errno.EINVAL),
    (sys_pipe.O_NOTIFICATION_PIPE, errno.ENOPKG),
])
def test_pipe2_refused_flags_install_nothing(env: Env, flags: int, err: int) -> None:
    assert env.dispatch("pipe2", env.p.alloc(8), flags) == -err
    assert env.p.tg.fds.files == {}


def test_pipe2_notification_pipe_is_named(env: Env) -> None:
    env.dispatch("pipe2", env.p.alloc(8), sys_pipe.O_NOTIFICATION_PIPE)
    assert "pipe2:O_NOTIFICATION_PIPE" in env.p.kernel.warnings


@pytest.mark.parametrize("addr", [0, MEM_BASE + MEM_SIZE - 4, MEM_BASE + MEM_SIZE])
def test_pipe2_efault_leaks_no_fd_and_releases_the_pipe(
        env: Env, monkeypatch: pytest.MonkeyPatch, addr: int) -> None:
    made = []

    def recording_new_pipe(task, flags):
        made.append(real(task, flags))
        return made[-1]

    real = sys_pipe.new_pipe
    monkeypatch.setattr(sys_pipe, "new_pipe", recording_new_pipe)
    assert env.dispatch("pipe2", addr, O_CLOEXEC) == -errno.EFAULT
    assert env.p.tg.fds.files == {} and env.p.tg.fds.cloexec == set()
    pipe = made[0][0].pipe
    assert (pipe.readers, pipe.writers) == (0, 0)
    assert env.pipe() == (0, 1)  # the numbers are free again


def test_pipe2_checks_flags_before_the_address(env: Env) -> None:
    assert env.dispatch("pipe2", 0, os.O_APPEND) == -errno.EINVAL


@pytest.mark.parametrize("limit, result", [(0, -errno.EMFILE), (1, -errno.EMFILE), (2, 0)])
def test_pipe2_emfile_follows_rlimit_nofile(env: Env, limit: int, result: int) -> None:
    env.p.tg.rlimits[RLIMIT_NOFILE][0] = limit
    assert env.dispatch("pipe2", env.p.alloc(8), 0) == result
    assert len(env.p.tg.fds.files) == (2 if result == 0 else 0)


def test_pipe2_emfile_wins_over_efault(env: Env) -> None:
    env.p.tg.rlimits[RLIMIT_NOFILE][0] = 1
    assert env.dispatch("pipe2", 0, 0) == -errno.EMFILE


# -- data ------------------------------------------------------------------------------
def test_bytes_come_out_in_order_and_fionread_counts_them(env: Env) -> None:
    rfd, wfd = env.pipe()
    assert env.write(wfd, b"hello") == 5
    assert env.write(wfd, b" world") == 6
    assert env.fionread(rfd) == 11 and env.fionread(wfd) == 11  # either end answers
    assert env.read(rfd, 3) == b"hel"
    assert env.fionread(rfd) == 8
    assert env.read(rfd, 100) == b"lo world"
    assert env.fionread(rfd) == 0


def test_readv_and_writev(env: Env) -> None:
    rfd, wfd = env.pipe()
    iov = env.p.put(struct.pack("<QQQQ", env.p.put(b"ab"), 2, env.p.put(b"cdef"), 4))
    assert env.dispatch("writev", wfd, iov, 2) == 6
    a, b = env.p.alloc(4), env.p.alloc(4)
    assert env.dispatch("readv", rfd, env.p.put(struct.pack("<QQQQ", a, 4, b, 4)), 2) == 6
    assert env.p.get(a, 4) + env.p.get(b, 2) == b"abcdef"


def test_unknown_ioctl_is_enotty(env: Env) -> None:
    rfd, _ = env.pipe()
    assert env.dispatch("ioctl", rfd, 0x5401, env.p.alloc(64)) == -errno.ENOTTY  # TCGETS


@pytest.mark.parametrize("chunk, fits", [  # Linux 6.x's figures
    (1, 65536), (1000, 64000), (3000, 48000), (4096, 65536), (4097, 45066), (5000, 54096),
    (8191, 65528), (65536, 65536), (100000, 65536)])
def test_capacity_is_counted_in_page_slots(env: Env, chunk: int, fits: int) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    assert env.fill(wfd, chunk) == fits
    assert env.fionread(rfd) == fits


def test_one_byte_writes_fill_whole_pages(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    assert env.pipe_size(wfd, F_SETPIPE_SZ, 4096) == 4096
    assert env.fill(wfd, 1) == 4096


def test_small_writes_are_atomic_when_nonblocking(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    env.pipe_size(wfd, F_SETPIPE_SZ, 8192)
    assert env.write(wfd, b"a" * 100) == 100
    assert env.write(wfd, b"b" * 4096) == 4096  # both slots used, the last page full
    for n in (1, 3000, 4096):
        assert env.write(wfd, b"c" * n) == -errno.EAGAIN
    assert env.fionread(rfd) == 4196
    assert env.read(rfd, 100) == b"a" * 100  # frees the first slot
    # more than PIPE_BUF may be split: one page fits now
    assert env.write(wfd, b"d" * 4097) == 4096
    assert env.write(wfd, b"e") == -errno.EAGAIN


def test_small_blocking_write_waits_whole(env: Env) -> None:
    rfd, wfd = env.pipe()
    env.pipe_size(wfd, F_SETPIPE_SZ, 4096)
    assert env.write(wfd, b"a" * 4000) == 4000
    buf = env.p.put(b"b" * 200)
    block = env.blocks("write", wfd, buf, 200)
    assert block.queue is env.file(wfd).pipe.wr_wait
    assert env.fionread(rfd) == 4000  # nothing of the 200 went in
    assert env.p.task.syscall_state is None  # nothing to remember
    env.park(block)
    assert env.read(rfd, 4000, task=env.peer) == b"a" * 4000
    assert env.woken == [env.p.task]
    assert env.dispatch("write", wfd, buf, 200) == 200
    assert env.read(rfd, 1000) == b"b" * 200


def test_large_nonblocking_write_tops_up_the_last_page_then_is_partial(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    assert env.write(wfd, b"a" * 100) == 100
    # 70000 = 17 pages + 368: the 368 merge into the first page, 15 pages fit after it
    assert env.write(wfd, b"b" * 70000) == 368 + 15 * 4096
    assert env.write(wfd, b"c") == -errno.EAGAIN
    assert env.read(rfd, 1 << 20) == b"a" * 100 + b"b" * (368 + 15 * 4096)


def test_remainder_merge_respects_the_page_end(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    env.pipe_size(wfd, F_SETPIPE_SZ, 4096)
    assert env.write(wfd, b"a" * 3000) == 3000
    assert env.read(rfd, 2000) == b"a" * 2000  # read bytes do not give room back
    assert env.write(wfd, b"b" * 1000) == 1000  # page end 4000
    assert env.write(wfd, b"c" * 97) == -errno.EAGAIN  # 4097 > page, no free slot
    assert env.write(wfd, b"c" * 96) == 96


def test_blocking_large_write_continues_across_dispatches(env: Env) -> None:
    rfd, wfd = env.pipe()
    data = bytes(range(256)) * 400  # 102400 bytes: more than the pipe holds
    buf = env.p.put(data)
    block = env.blocks("write", wfd, buf, len(data))
    assert block.queue is env.file(wfd).pipe.wr_wait
    assert env.p.task.syscall_state == {"transferred": 65536}
    env.park(block)
    got = env.read(rfd, 1 << 20, task=env.peer)
    assert env.woken == [env.p.task]  # room: the writer is woken
    assert env.dispatch("write", wfd, buf, len(data)) == len(data)  # the whole count
    got += env.read(rfd, 1 << 20)
    assert got == data


def test_blocking_write_with_readers_gone_returns_what_was_queued(env: Env) -> None:
    rfd, wfd = env.pipe()
    data = b"z" * 70000
    buf = env.p.put(data)
    block = env.blocks("write", wfd, buf, len(data))
    env.park(block)
    assert env.dispatch("close", rfd, task=env.peer) == 0
    assert env.woken == [env.p.task]
    assert env.dispatch("write", wfd, buf, len(data)) == 65536
    assert env.signals == [(env.p.task, SIGPIPE)]  # SIGPIPE even for the partial count


def test_piecewise_write_over_a_megabyte_nonblocking(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    count = 3 << 20
    buf = env.p.alloc(count)
    assert env.dispatch("write", wfd, buf, count) == 65536
    assert env.fionread(rfd) == 65536


def test_read_blocks_until_data(env: Env) -> None:
    rfd, wfd = env.pipe()
    buf = env.p.alloc(10)
    block = env.blocks("read", rfd, buf, 10)
    assert block.queue is env.file(rfd).pipe.rd_wait
    env.park(block)
    assert env.write(wfd, b"hi", task=env.peer) == 2
    assert env.woken == [env.p.task]
    assert env.dispatch("read", rfd, buf, 10) == 2 and env.p.get(buf, 2) == b"hi"


def test_nonblocking_read_of_empty_pipe_is_eagain(env: Env) -> None:
    rfd, wfd = env.pipe()
    assert env.dispatch("fcntl", rfd, F_SETFL, O_NONBLOCK) == 0
    assert env.read(rfd, 10) == -errno.EAGAIN


def test_null_read_and_write_succeed_at_once(env: Env) -> None:
    rfd, wfd = env.pipe()
    assert env.read(rfd, 0) == b""  # would block otherwise: empty pipe, writer open
    assert env.write(wfd, b"") == 0
    assert env.dispatch("close", rfd) == 0
    assert env.write(wfd, b"") == 0  # no reader, still no EPIPE and no signal
    assert env.signals == []


def test_eof_once_the_last_writer_closes(env: Env) -> None:
    rfd, wfd = env.pipe()
    dup = env.dispatch("dup", wfd)
    assert env.write(wfd, b"tail") == 4
    assert env.read(rfd, 8) == b"tail"
    env.park(env.blocks("read", rfd, env.p.alloc(8), 8))
    assert env.dispatch("close", wfd, task=env.peer) == 0
    assert env.woken == []  # the dup still writes
    assert env.dispatch("close", dup, task=env.peer) == 0
    assert env.woken == [env.p.task]
    assert env.read(rfd, 8) == b""
    assert env.read(rfd, 8) == b""


def test_data_before_eof_is_still_read(env: Env) -> None:
    rfd, wfd = env.pipe()
    env.write(wfd, b"last words")
    env.dispatch("close", wfd)
    assert env.read(rfd, 4) == b"last"
    assert env.read(rfd, 100) == b" words"
    assert env.read(rfd, 100) == b""


def test_epipe_and_sigpipe_to_the_writing_thread(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    env.dispatch("close", rfd)
    assert env.write(wfd, b"x") == -errno.EPIPE
    assert env.signals == [(env.p.task, SIGPIPE)]
    assert env.write(wfd, b"x" * 100000) == -errno.EPIPE
    assert len(env.signals) == 2


def test_pipe_survives_a_forked_fd_table(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    child = env.p.tg.fds.fork()
    env.dispatch("close", rfd)  # the child still has the read end
    assert env.write(wfd, b"x") == 1 and env.signals == []
    child.close_all()
    assert env.write(wfd, b"x") == -errno.EPIPE


def test_wrong_end_and_seeks(env: Env) -> None:
    rfd, wfd = env.pipe()
    assert env.read(wfd, 1) == -errno.EBADF
    assert env.read(wfd, 0) == -errno.EBADF
    assert env.write(rfd, b"x") == -errno.EBADF
    assert env.write(rfd, b"") == -errno.EBADF
    assert env.dispatch("lseek", rfd, 0, 1) == -errno.ESPIPE
    assert env.dispatch("lseek", wfd, 0, 0) == -errno.ESPIPE
    assert env.dispatch("pread64", rfd, env.p.alloc(4), 4, 0) == -errno.ESPIPE
    assert env.dispatch("pwrite64", wfd, env.p.put(b"x"), 1, 0) == -errno.ESPIPE


# -- sizes -------------------------------------------------------------------------------
@pytest.mark.parametrize("arg, result", [
    (0, 4096), (1, 4096), (4096, 4096), (4097, 8192), (5000, 8192), (65536, 65536),
    (65537, 131072), (1 << 20, 1 << 20), ((1 << 20) + 1, -errno.EPERM),
    (1 << 31, -errno.EPERM), ((1 << 31) + 1, -errno.EINVAL), (0xFFFFFFFF, -errno.EINVAL),
    ((1 << 32) + 8192, 8192),  # an unsigned int argument: the high half is ignored
])
def test_set_pipe_size_rounds_to_power_of_two_pages(env: Env, arg: int, result: int) -> None:
    rfd, wfd = env.pipe()
    assert env.pipe_size(rfd, F_GETPIPE_SZ) == 65536
    assert env.pipe_size(rfd, F_SETPIPE_SZ, arg) == result
    expect = result if result > 0 else 65536
    assert env.pipe_size(wfd, F_GETPIPE_SZ) == expect  # one pipe, both ends


def test_shrinking_below_the_used_slots_is_ebusy(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    for _ in range(3):
        env.write(wfd, b"x" * 4096)
    assert env.pipe_size(rfd, F_SETPIPE_SZ, 8192) == -errno.EBUSY
    assert env.pipe_size(rfd, F_SETPIPE_SZ, 16384) == 16384  # 4 slots hold 3
    env.read(rfd, 8192 + 4000)  # one slot with 96 bytes left
    assert env.pipe_size(rfd, F_SETPIPE_SZ, 4096) == 4096
    assert env.read(rfd, 1000) == b"x" * 96


def test_growing_wakes_a_blocked_writer(env: Env) -> None:
    rfd, wfd = env.pipe()
    buf = env.p.alloc(70000)
    env.park(env.blocks("write", wfd, buf, 70000))
    assert env.pipe_size(rfd, F_SETPIPE_SZ, 131072) == 131072
    assert env.woken == [env.p.task]
    assert env.dispatch("write", wfd, buf, 70000) == 70000
    assert env.fionread(rfd) == 70000


# -- packets (O_DIRECT) -------------------------------------------------------------------
def test_packets_are_read_one_at_a_time(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK | O_DIRECT)
    assert env.write(wfd, b"abc") == 3
    assert env.write(wfd, b"defgh") == 5
    assert env.write(wfd, b"p" * 5000) == 5000  # split into 4096 + 904
    assert env.fionread(rfd) == 5008
    assert env.read(rfd, 100) == b"abc"
    assert env.read(rfd, 2) == b"de"  # the rest of the packet is dropped
    assert env.read(rfd, 10000) == b"p" * 4096
    assert env.read(rfd, 10000) == b"p" * 904
    env.dispatch("fcntl", rfd, F_SETFL, O_NONBLOCK)
    assert env.read(rfd, 10) == -errno.EAGAIN


def test_each_packet_takes_a_slot(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK | O_DIRECT)
    assert env.fill(wfd, 1) == 16
    env.read(rfd, 1)
    assert env.fill(wfd, 5000) == 4096  # one free slot: the first page of a split packet
    assert env.pipe_size(rfd, F_SETPIPE_SZ, 8192) == -errno.EBUSY


def test_writev_gathers_one_packet(env: Env) -> None:
    rfd, wfd = env.pipe(O_DIRECT)
    iov = env.p.put(struct.pack("<QQQQ", env.p.put(b"ab"), 2, env.p.put(b"cd"), 2))
    assert env.dispatch("writev", wfd, iov, 2) == 4
    assert env.write(wfd, b"ef") == 2
    assert env.read(rfd, 100) == b"abcd"


def test_packet_and_stream_writes_mix_as_on_linux(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK | O_DIRECT)
    env.write(wfd, b"pk")
    env.dispatch("fcntl", wfd, F_SETFL, O_NONBLOCK)  # back to a byte stream
    env.write(wfd, b"nn")  # not merged into the packet
    env.write(wfd, b"mm")  # merged with "nn"
    assert env.read(rfd, 100) == b"pk"
    assert env.read(rfd, 100) == b"nnmm"


# -- status --------------------------------------------------------------------------------
def test_fstat_describes_a_fifo(env: Env) -> None:
    env.p.tg.creds.fsuid, env.p.tg.creds.fsgid = 1000, 100
    rfd, wfd = env.pipe()
    other, _ = env.pipe()
    stats = []
    for fd in (rfd, wfd, other):
        out = env.p.alloc(144)
        assert env.dispatch("fstat", fd, out) == 0
        stats.append(_STAT.unpack(env.p.get(out, 144)))
    dev, ino, nlink, mode, uid, gid, rdev, size, blksize, blocks = stats[0][:10]
    assert (mode, nlink, uid, gid, rdev, size, blksize, blocks) == (
        0o010600, 1, 1000, 100, 0, 0, 4096, 0)
    assert stats[1][:2] == (dev, ino)  # both ends: one inode
    assert stats[2][0] == dev and stats[2][1] != ino
    assert env.write(wfd, b"x") == 1
    assert env.file(wfd).stat().st_mtime_ns >= env.file(wfd).stat().st_atime_ns


def test_statx_of_a_pipe(env: Env) -> None:
    rfd, _ = env.pipe()
    out = env.p.alloc(256)
    assert env.dispatch("statx", rfd, env.p.cstr(""), 0x1000, 0x7FF, out) == 0  # AT_EMPTY_PATH
    mode = struct.unpack_from("<H", env.p.get(out, 256), 28)[0]
    assert mode == 0o010600


def test_poll_events(env: Env) -> None:
    rfd, wfd = env.pipe(O_NONBLOCK)
    r, w = env.file(rfd), env.file(wfd)
    assert r.poll_events() == 0
    assert w.poll_events() == select.POLLOUT | select.POLLWRNORM
    env.fill(wfd, 4096)
    assert r.poll_events() == select.POLLIN | select.POLLRDNORM
    assert w.poll_events() == 0
    assert r.poll_queue() is r.pipe.rd_wait and w.poll_queue() is w.pipe.wr_wait
    env.dispatch("close", wfd)
    assert r.poll_events() == select.POLLIN | select.POLLRDNORM | select.POLLHUP
    env.read(rfd, 1 << 20)
    assert r.poll_events() == select.POLLHUP


def test_poll_err_without_readers(env: Env) -> None:
    rfd, wfd = env.pipe()
    env.dispatch("close", rfd)
    assert env.file(wfd).poll_events() == select.POLLOUT | select.POLLWRNORM | select.POLLERR


def test_closing_the_last_reader_wakes_writers(env: Env) -> None:
    rfd, wfd = env.pipe()
    env.pipe_size(wfd, F_SETPIPE_SZ, 4096)
    env.write(wfd, b"x" * 4096)
    env.park(env.blocks("write", wfd, env.p.put(b"y"), 1))
    env.dispatch("close", rfd, task=env.peer)
    assert env.woken == [env.p.task]
    assert env.write(wfd, b"y") == -errno.EPIPE


def test_repr_names_the_end(env: Env) -> None:
    rfd, wfd = env.pipe()
    assert "read" in repr(env.file(rfd)) and "write" in repr(env.file(wfd))
    assert env.file(rfd).path == env.file(wfd).path == f"pipe:[{env.file(rfd).pipe.ino}]"


# -- the host kernel as the oracle ---------------------------------------------------------
_WRITES = (1, 100, 1000, 3000, 4095, 4096, 4097, 5000, 8192, 20000, 70000)
_READS = (1, 10, 1000, 4096, 5000, 65536)
_SIZES = (4096, 8192, 16384, 65536, 131072)


def _script(seed: int) -> list[tuple[str, int]]:
    rng = random.Random(seed)
    ops: list[tuple[str, int]] = []
    for _ in range(400):
        kind = rng.choices(("write", "read", "size", "direct", "fionread"), (8, 6, 1, 1, 1))[0]
        arg = {"write": lambda: rng.choice(_WRITES), "read": lambda: rng.choice(_READS),
               "size": lambda: rng.choice(_SIZES), "direct": lambda: rng.randrange(2),
               "fionread": lambda: 0}[kind]()
        ops.append((kind, arg))
    return ops


def _payload(i: int, n: int) -> bytes:
    return bytes((i + k) & 0xFF for k in range(n))


def _run_native(ops: list[tuple[str, int]]) -> list:
    r, w = os.pipe2(O_NONBLOCK)
    out: list = []
    try:
        for i, (kind, arg) in enumerate(ops):
            try:
                if kind == "write":
                    out.append(os.write(w, _payload(i, arg)))
                elif kind == "read":
                    out.append(os.read(r, arg))
                elif kind == "size":
                    out.append(fcntl.fcntl(w, F_SETPIPE_SZ, arg))
                elif kind == "direct":
                    out.append(fcntl.fcntl(w, F_SETFL, O_NONBLOCK | (O_DIRECT if arg else 0)))
                else:
                    buf = bytearray(4)
                    fcntl.ioctl(r, FIONREAD, buf)
                    out.append(struct.unpack("<i", buf)[0])
            except OSError as e:
                out.append(-e.errno)
    finally:
        os.close(r)
        os.close(w)
    return out


def _run_ours(env: Env, ops: list[tuple[str, int]]) -> list:
    r, w = env.pipe(O_NONBLOCK)
    out: list = []
    for i, (kind, arg) in enumerate(ops):
        if kind == "write":
            out.append(env.write(w, _payload(i, arg)))
        elif kind == "read":
            out.append(env.read(r, arg))
        elif kind == "size":
            out.append(env.pipe_size(w, F_SETPIPE_SZ, arg))
        elif kind == "direct":
            out.append(env.dispatch("fcntl", w, F_SETFL, O_NONBLOCK | (O_DIRECT if arg else 0)))
        else:
            out.append(env.fionread(r))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_same_results_as_the_host_kernel(env: Env, seed: int) -> None:
    """Random non-blocking scripts of writes, reads, resizes and O_DIRECT toggles give the
    host kernel's results call for call, bytes included."""
    ops = _script(seed)
    native = _run_native(ops)
    ours = _run_ours(env, ops)
    for i, (a, b) in enumerate(zip(native, ours)):
        assert a == b, f"op {i} {ops[i]}: native {a!r:.60} ours {b!r:.60}"
