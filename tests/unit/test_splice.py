"""sendfile/splice/tee/copy_file_range/vmsplice through the real handlers, for what the
differential program (tests/c/splice.c) cannot reach from inside one process on Linux:

- a long file-to-file copy yields to the event loop every BUDGET bytes with its progress
  already in the file positions and offset pointers, and the re-dispatched call finishes
  it (the kernel returns syscall_state["written"] when a signal ends it meanwhile);
- bytes read but not written are given back (a tmpfs filling up mid-copy);
- the CLI's stdio as host pipes: they count as pipes, bytes move through read/write,
  waiting happens on the host fd with nothing consumed, tee/vmsplice refuse (logged);
- readers and writers parked on a sentry pipe are woken by splices into and out of it.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct

import pytest

from snakevisor.fsimpl.stdio import StdioFile
from snakevisor.fsimpl.tmpfs import Tmpfs
from snakevisor.kernel.errors import Block
from snakevisor.syscalls.sys_file import CHUNK
from snakevisor.syscalls.sys_splice import BUDGET, HOST_PIPE_CHUNK, WRITTEN
from snakevisor.vfs.pipe import PipeFile
from tests.unit.conftest import DispatchEnv

O_RDWR, O_RDONLY = os.O_RDWR, os.O_RDONLY
SEEK_CUR = 1
F_SETPIPE_SZ = 1031


class Env(DispatchEnv):
    def file(self, fs: Tmpfs, name: bytes, data: bytes = b"", flags: int = O_RDWR) -> int:
        """A tmpfs file holding `data`, opened with `flags`, at offset 0."""
        node = fs.root().create(self.task, name, 0o644)
        if data:
            writer = node.open(self.task, O_RDWR)
            assert writer.pwrite(self.task, data, 0) == len(data)
            writer.release()
        return self.task.fds.install(node.open(self.task, flags))

    def contents(self, fd: int, size: int) -> bytes:
        return self.task.fds.get(fd).pread(self.task, size, 0)

    def position(self, fd: int) -> int:
        return self.task.fds.get(fd).lseek(0, SEEK_CUR)

    def offset_ptr(self, value: int) -> int:
        return self.p.put(struct.pack("<q", value))

    def read_ptr(self, addr: int) -> int:
        return struct.unpack("<q", self.p.get(addr, 8))[0]

    def write(self, fd: int, data: bytes) -> int:
        return self.dispatch("write", fd, self.p.put(data), len(data))

    def host_pipe(self) -> tuple[int, int, int, int]:
        """A host pipe as the CLI's stdio would be: (sandbox fd of the read end, of the write
        end, host read fd, host write fd)."""
        r, w = os.pipe()
        fds = self.task.fds
        return fds.install(StdioFile(r)), fds.install(StdioFile(w)), r, w


@pytest.fixture
def env() -> Env:
    return Env()


def _data(n: int) -> bytes:
    return bytes((i * 131 + (i >> 9)) & 0xFF for i in range(n))


# -- long copies: yield and resume ---------------------------------------------------------
def test_copy_file_range_yields_with_progress_in_pointers(env: Env) -> None:
    fs = Tmpfs()
    size = BUDGET + 2 * CHUNK + 5
    data = os.urandom(size)
    src, dst = env.file(fs, b"src", data), env.file(fs, b"dst")
    off_in = env.offset_ptr(0)
    with pytest.raises(Block) as info:
        env.p.raw("copy_file_range", src, off_in, dst, 0, size, 0)
    assert info.value.deadline is not None  # a yield, not a wait
    assert env.task.syscall_state[WRITTEN] == BUDGET  # what a signal now would return
    assert env.read_ptr(off_in) == BUDGET
    assert env.position(dst) == BUDGET and env.position(src) == 0
    assert env.dispatch("copy_file_range", src, off_in, dst, 0, size, 0) == size
    assert env.read_ptr(off_in) == size and env.position(dst) == size
    assert env.contents(dst, size + 1) == data


def test_sendfile_yields_with_progress_in_file_positions(env: Env) -> None:
    fs = Tmpfs()
    size = BUDGET + 3
    data = os.urandom(size)
    src, dst = env.file(fs, b"src", data), env.file(fs, b"dst")
    with pytest.raises(Block):
        env.p.raw("sendfile", dst, src, 0, size + 100)
    assert env.position(src) == env.position(dst) == BUDGET
    assert env.dispatch("sendfile", dst, src, 0, size + 100) == size
    assert env.position(src) == size
    assert env.contents(dst, size + 1) == data


def test_short_copies_do_not_yield(env: Env) -> None:
    fs = Tmpfs()
    data = _data(3 * CHUNK)
    src, dst = env.file(fs, b"src", data), env.file(fs, b"dst")
    assert env.dispatch("sendfile", dst, src, 0, len(data)) == len(data)
    assert env.task.syscall_state is None


# -- bytes that went nowhere are given back ------------------------------------------------
def test_full_destination_gives_the_rest_back(env: Env) -> None:
    """The second chunk does not fit the destination tmpfs: the first is the result, and
    the source position counts only what arrived."""
    src = env.file(Tmpfs(), b"src", _data(CHUNK + 1000))
    small = Tmpfs(size=CHUNK + 500)
    dst = env.file(small, b"dst")
    assert env.dispatch("sendfile", dst, src, 0, CHUNK + 1000) == CHUNK
    assert env.position(src) == CHUNK
    assert env.dispatch("sendfile", dst, src, 0, 1000) == -errno.ENOSPC
    assert env.position(src) == CHUNK


def test_copy_between_two_tmpfs_instances_is_exdev(env: Env) -> None:
    src = env.file(Tmpfs(), b"a", b"abc")
    dst = env.file(Tmpfs(), b"b")
    assert env.dispatch("copy_file_range", src, 0, dst, 0, 3, 0) == -errno.EXDEV
    fs = Tmpfs()
    one, two = env.file(fs, b"one", b"xyz"), env.file(fs, b"two")
    assert env.dispatch("copy_file_range", one, 0, two, 0, 3, 0) == 3


def test_advice_calls_on_tmpfs_files(env: Env) -> None:
    fd = env.file(Tmpfs(), b"f", b"data")
    assert env.dispatch("fadvise64", fd, 0, 0, 4) == 0
    assert env.dispatch("readahead", fd, 0, 100) == 0
    assert env.dispatch("sync_file_range", fd, 0, 0, 7) == 0
    write_only = env.file(Tmpfs(), b"g", flags=os.O_WRONLY)
    assert env.dispatch("readahead", write_only, 0, 100) == -errno.EBADF


# -- the CLI's stdio as host pipes ---------------------------------------------------------
def test_sentry_pipe_to_host_pipe(env: Env) -> None:
    _, out, r, _ = env.host_pipe()
    a, b = env.pipe()
    env.write(b, b"hello")
    assert env.dispatch("splice", a, 0, out, 0, 100, 0) == 5
    assert os.read(r, 100) == b"hello"


def test_full_host_pipe_waits_on_its_fd_and_consumes_nothing(env: Env) -> None:
    _, out, r, w = env.host_pipe()
    fcntl.fcntl(w, F_SETPIPE_SZ, 4096)
    os.write(w, b"x" * 4096)
    a, b = env.pipe()
    env.write(b, b"hello")
    block = env.blocks("splice", a, 0, out, 0, 100, 0)
    assert block.fd == w
    assert env.task.fds.get(a).pipe.nbytes() == 5  # still in the sentry pipe
    assert env.dispatch("splice", a, 0, out, 0, 100, 2) == -errno.EAGAIN  # SPLICE_F_NONBLOCK


def test_host_pipe_to_sentry_pipe(env: Env) -> None:
    inp, _, _, w = env.host_pipe()
    a, b = env.pipe()
    block = env.blocks("splice", inp, 0, b, 0, 100, 0)  # nothing there yet
    assert block.fd is not None
    os.write(w, b"abc")
    assert env.dispatch("splice", inp, 0, b, 0, 100, 0) == 3
    assert env.task.fds.get(a).pipe.nbytes() == 3
    assert env.dispatch("splice", inp, 8, b, 0, 100, 0) == -errno.ESPIPE  # an offset on a pipe


def test_sendfile_into_host_pipe_moves_one_pipeful(env: Env) -> None:
    _, out, r, _ = env.host_pipe()
    data = _data(100000)
    src = env.file(Tmpfs(), b"src", data)
    assert env.dispatch("sendfile", out, src, 0, len(data)) == HOST_PIPE_CHUNK
    got = b""
    while len(got) < HOST_PIPE_CHUNK:
        got += os.read(r, HOST_PIPE_CHUNK)
    assert got == data[:HOST_PIPE_CHUNK]
    assert env.position(src) == HOST_PIPE_CHUNK


def test_tee_and_vmsplice_refuse_host_pipes(env: Env) -> None:
    inp, out, _, _ = env.host_pipe()
    a, b = env.pipe()
    assert env.dispatch("tee", a, out, 10, 0) == -errno.EINVAL
    assert "tee:host" in env.p.kernel.warnings
    iov = env.p.put(struct.pack("<QQ", env.p.put(b"hi"), 2))
    assert env.dispatch("vmsplice", out, iov, 1, 0) == -errno.EINVAL
    assert "vmsplice:host" in env.p.kernel.warnings


# -- waking the other side -----------------------------------------------------------------
def test_splice_into_a_pipe_wakes_its_reader(env: Env) -> None:
    a, b = env.pipe()
    pipe = env.task.fds.get(a).pipe
    pipe.rd_wait.waiters.append(env.peer)  # the peer parked in read()
    src = env.file(Tmpfs(), b"src", b"data")
    assert env.dispatch("splice", src, 0, b, 0, 4, 0) == 4
    assert env.peer in env.woken


def test_splice_out_of_a_full_pipe_wakes_its_writer(env: Env) -> None:
    a, b = env.pipe()
    end = env.task.fds.get(b)
    assert isinstance(end, PipeFile)
    while not end.pipe.full:
        env.write(b, b"y" * 4096)
    end.pipe.wr_wait.waiters.append(env.peer)  # the peer parked in write()
    dst = env.file(Tmpfs(), b"dst")
    assert env.dispatch("splice", a, 0, dst, 0, 4096, 0) == 4096
    assert env.peer in env.woken


def test_packet_buffers_are_split_not_dropped(env: Env) -> None:
    """splice ignores O_DIRECT packet boundaries: a partly taken packet keeps its rest
    (a read would drop it)."""
    a, b = env.pipe()
    env.task.fds.get(b).flags |= os.O_DIRECT
    env.write(b, b"0123456789")
    dst = env.file(Tmpfs(), b"dst")
    assert env.dispatch("splice", a, 0, dst, 0, 4, 0) == 4
    assert env.task.fds.get(a).pipe.nbytes() == 6
