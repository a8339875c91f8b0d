"""Moving data between descriptors inside the sentry: sendfile, splice, tee,
copy_file_range, vmsplice; and the advice calls fadvise64, readahead, sync_file_range.

Why the sentry moves the bytes itself: every descriptor of the sandbox is a File of the
sentry (a host file, a tmpfs memfd, a sentry pipe, a device), so there is no pair of host
fds to hand to the host's splice.  The data goes through the same File methods read(2)
and write(2) use (read/pread, write/pwrite), so each file kind keeps its own rules
(tmpfs size accounting, /dev/full, the CLI's stdio waiting on the host).

Sentry pipes are worked at the level of their page buffers (vfs/pipe.py's slots), because
that is what Linux's splice does and applications can see it: a file page spliced into a
pipe is a buffer of its own that later writes never merge into, so an unaligned splice
fills a 64 KiB pipe at 65436 bytes and sixteen 100-byte splices fill it; tee copies
buffers without consuming them; a pipe-to-pipe splice moves whole buffers.

Two rules keep the transfers exact:
- Nothing is consumed before it is delivered: a pipe is peeked and drained by what the
  destination took, a file is read at an offset and its position advanced by what was
  written (or the rest given back with lseek), and what goes into a pipe is first cut to
  the room it has.  So a call that must wait can raise Block having moved nothing, and the
  re-dispatched call starts afresh.
- Like Linux, splice, tee and vmsplice wait only before moving anything; with some bytes
  moved they return the count.  A file-to-file copy (sendfile, copy_file_range) is whole on
  Linux: here it runs in CHUNK pieces and yields to the event loop every BUDGET bytes
  (Block with a deadline of now), its progress in syscall_state["written"] and in the file
  positions and offset pointers.  A signal meanwhile ends it with that count (Linux would
  finish the copy first; callers loop on short counts, which the call may always give).

The CLI's stdio may be host pipes: they count as pipes for Linux's argument checks, and
their bytes move through read/write like any file's.  tee and vmsplice on them answer
EINVAL (logged): their buffers are the host's.
"""
from __future__ import annotations

import os
import stat as st_
import time
from selectors import EVENT_WRITE
from typing import TYPE_CHECKING, Callable, Iterator

from snakevisor.kernel.errors import (EAGAIN, EBADF, EFAULT, EFBIG, EINVAL, EISDIR, EOVERFLOW,
                                      ESPIPE, EXDEV, Block, SyscallError)
from snakevisor.mm.address_space import PROT_READ
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, s64, u32
from snakevisor.syscalls.sys_file import CHUNK, MAX_RW_COUNT
from snakevisor.vfs.file import POLLOUT, File
from snakevisor.vfs.pipe import DEFAULT_SLOTS, PAGE_SIZE, Pipe, PipeFile, spliced_slot

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE, SPLICE_F_GIFT = 0x1, 0x2, 0x4, 0x8
SPLICE_F_ALL = 0xF
O_APPEND, O_NONBLOCK = os.O_APPEND, os.O_NONBLOCK
SEEK_SET, SEEK_CUR = 0, 1
LOFF_MAX = (1 << 63) - 1  #: MAX_LFS_FILESIZE, every sandbox file system's s_maxbytes
U64 = (1 << 64) - 1
#: a file-to-file copy yields to the event loop after this many bytes
BUDGET = 8 * CHUNK
#: what one call moves into a host pipe (the CLI's stdio): a default pipe's capacity
HOST_PIPE_CHUNK = DEFAULT_SLOTS * PAGE_SIZE
POSIX_FADV_MAX = 5  #: NORMAL RANDOM SEQUENTIAL WILLNEED DONTNEED NOREUSE
SYNC_FILE_RANGE_ALL = 0x7  #: WAIT_BEFORE | WRITE | WAIT_AFTER
#: task.syscall_state key: bytes a yielding copy already moved (the kernel returns it
#: when a signal ends the call)
WRITTEN = "written"


# -- descriptors and what kind of file they are -----------------------------------------
def _get(task: "Task", fd: int) -> File:
    """The file of fd; EBADF for O_PATH descriptors too (Linux's fdget skips them)."""
    file = task.tg.fds.files.get(fd & 0xFFFFFFFF)
    if file is None or file.is_path_only:
        raise SyscallError(EBADF)
    return file


def _mode(file: File) -> int:
    try:
        return file.stat().st_mode
    except SyscallError:
        return 0


def _is_pipe(file: File) -> bool:
    """A pipe for Linux's splice rules: a sentry pipe or FIFO, or a host one (CLI stdio)."""
    return isinstance(file, PipeFile) or st_.S_ISFIFO(_mode(file))


def _seekable(file: File) -> bool:
    """Linux's FMODE_LSEEK/FMODE_PREAD: everything but pipes, terminals, sockets."""
    try:
        file.lseek(0, SEEK_CUR)
        return True
    except SyscallError:
        return False


def _position(file: File) -> int:
    """f_pos (0 for files that have none, as Linux checks it)."""
    try:
        return file.lseek(0, SEEK_CUR)
    except SyscallError:
        return 0


def _check_splice_read(file: File) -> None:
    """Linux's ->splice_read: pipes and directories have none (EINVAL)."""
    if _is_pipe(file) or st_.S_ISDIR(_mode(file)):
        raise SyscallError(EINVAL)


def _verify_area(pos: int, count: int) -> None:
    """rw_verify_area: a negative size or offset, or a range past the largest offset."""
    if count > LOFF_MAX or pos < 0 or pos + count > LOFF_MAX:
        raise SyscallError(EINVAL)


def _read_offset(task: "Task", ptr: int) -> int:
    return s64(task.tg.mm.read_u64(ptr))


# -- pipe buffers ---------------------------------------------------------------------
def _wait_input(pipe: Pipe, nonblock: bool) -> None:
    """ipipe_prep: data, or EOF (no writer left); else EAGAIN or wait."""
    if pipe.bufs or not pipe.writers:
        return
    if nonblock:
        raise SyscallError(EAGAIN)
    raise Block(queue=pipe.rd_wait)


def _wait_room(task: "Task", end: PipeFile, nonblock: bool) -> None:
    """wait_for_space: EPIPE and SIGPIPE without a reader, else a free buffer, EAGAIN or
    a wait."""
    pipe = end.pipe
    if not pipe.readers:
        end.broken(task, 0)  # SIGPIPE to the caller, EPIPE
    if not pipe.full:
        return
    if nonblock:
        raise SyscallError(EAGAIN)
    raise Block(queue=pipe.wr_wait)


def _pipe_to_pipe(task: "Task", src: PipeFile, dst: PipeFile, count: int, nonblock: bool) -> int:
    """splice_pipe_to_pipe: whole buffers move (keeping whether writes may merge into
    them), a partly taken one is copied."""
    ipipe, opipe = src.pipe, dst.pipe
    _wait_input(ipipe, nonblock)
    _wait_room(task, dst, nonblock)
    moved = 0
    was_full = ipipe.full
    while moved < count and ipipe.bufs and not opipe.full:
        slot = ipipe.bufs[0]
        want = count - moved
        if len(slot.data) <= want:
            opipe.bufs.append(ipipe.bufs.popleft())
            moved += len(slot.data)
        else:
            opipe.bufs.append(spliced_slot(slot.data[:want], slot.packet))
            del slot.data[:want]
            moved += want
    if moved:
        opipe.filled()
        ipipe.atime_ns = time.time_ns()
        if was_full and not ipipe.full:
            ipipe.wr_wait.notify()
    return moved


def _tee(task: "Task", src: PipeFile, dst: PipeFile, count: int, nonblock: bool) -> int:
    """link_pipe: copies of the input's buffers, the input untouched."""
    ipipe, opipe = src.pipe, dst.pipe
    _wait_input(ipipe, nonblock)
    _wait_room(task, dst, nonblock)
    copied = 0
    for slot in list(ipipe.bufs):
        if copied >= count or opipe.full:
            break
        piece = slot.data[:count - copied]
        opipe.bufs.append(spliced_slot(piece, slot.packet))
        copied += len(piece)
    if copied:
        opipe.filled()
    return copied


def _file_to_pipe(task: "Task", src: File, offset: int | None, dst: PipeFile, count: int,
                  nonblock: bool, splice_read: bool = True) -> int:
    """splice_file_to_pipe: wait for a free buffer, then one read of what fits.  A regular
    file fills one buffer per file page (the first from `offset` to its page's end).
    `splice_read`: refuse sources Linux cannot splice from (a host pipe may, into a pipe)."""
    _wait_room(task, dst, nonblock)
    if not count:
        return 0
    pipe = dst.pipe
    first = PAGE_SIZE
    if st_.S_ISREG(_mode(src)):
        first -= (_position(src) if offset is None else offset) % PAGE_SIZE
    count = min(count, pipe.free_slots() * PAGE_SIZE - (PAGE_SIZE - first), MAX_RW_COUNT)
    if splice_read:
        _check_splice_read(src)
    data = src.read(task, count) if offset is None else src.pread(task, count, offset)
    if data:
        view = memoryview(data)
        pipe.bufs.append(spliced_slot(view[:first]))
        for at in range(first, len(data), PAGE_SIZE):
            pipe.bufs.append(spliced_slot(view[at:at + PAGE_SIZE]))
        pipe.filled()
    return len(data)


def _pipe_to_file(task: "Task", src: PipeFile, dst: File, offset: int | None, count: int,
                  nonblock: bool) -> int:
    """iter_file_splice_write: what the pipe holds (waiting only while nothing moved),
    written at `offset` or the file's position; the pipe loses what the file took."""
    pipe = src.pipe
    done = 0
    while done < count:
        if not pipe.bufs:
            if not pipe.writers or done:
                break
            if nonblock:
                raise SyscallError(EAGAIN)
            raise Block(queue=pipe.rd_wait)
        data = pipe.peek(count - done)
        try:
            wrote = dst.write(task, data) if offset is None else dst.pwrite(task, data, offset + done)
        except (SyscallError, Block):
            if done:
                break
            raise
        if wrote <= 0:
            break
        pipe.consume(wrote)
        done += wrote
        if wrote < len(data):
            break
    return done


def _await_writable(task: "Task", dst: File, nonblock: bool) -> None:
    """Before reading bytes that cannot be given back (a host pipe, a terminal): wait
    until the destination takes some."""
    if dst.poll_events() & POLLOUT:
        return
    if nonblock:
        raise SyscallError(EAGAIN)
    host = dst.poll_host()
    if host is not None:
        raise Block(fd=host[0], events=EVENT_WRITE)
    queue = dst.poll_queue()
    if queue is not None:
        raise Block(queue=queue)


def _copy(task: "Task", src: File, src_pos: int | None, dst: File, dst_pos: int | None,
          count: int, nonblock: bool = False,
          progress: Callable[[int], None] | None = None) -> int:
    """Up to count bytes from src to dst in CHUNK pieces, at src_pos/dst_pos (pread/
    pwrite) or at the files' own positions (read/write) when None.  Ends at EOF, at a short
    write, or at a wait once some bytes moved.  Bytes read but not written are given back
    with lseek.  With `progress`, every BUDGET bytes it records what moved and yields."""
    stream = src_pos is None and not _seekable(src)
    done = 0
    while done < count:
        if progress is not None and done >= BUDGET:
            progress(done)
            raise Block(deadline=task.kernel.now())
        if stream:
            _await_writable(task, dst, nonblock)
        n = min(CHUNK, count - done)
        try:
            data = src.read(task, n) if src_pos is None else src.pread(task, n, src_pos + done)
        except Block:
            if done:
                break
            if nonblock:
                raise SyscallError(EAGAIN) from None
            raise
        except SyscallError:
            if done:
                break
            raise
        if not data:
            break
        try:
            wrote = dst.write(task, data) if dst_pos is None else dst.pwrite(task, data, dst_pos + done)
        except (SyscallError, Block):
            _give_back(src, src_pos, len(data), stream)
            if done:
                break
            raise
        done += wrote
        if wrote < len(data):
            _give_back(src, src_pos, len(data) - wrote, stream)
            break
        if len(data) < n:
            break
    return done


def _give_back(src: File, src_pos: int | None, n: int, stream: bool) -> None:
    """Undo the read of n bytes that went nowhere (a stream cannot: they are lost, as in
    Linux's splice_direct_to_actor)."""
    if src_pos is None and not stream and n:
        try:
            src.lseek(-n, SEEK_CUR)
        except SyscallError:
            pass


def _resumed(task: "Task") -> int:
    """Bytes an earlier dispatch of this (yielding) call already moved."""
    state = task.syscall_state
    return state.get(WRITTEN, 0) if state else 0


def _progress_saver(task: "Task", resumed: int, apply: Callable[[int], None]) -> Callable[[int], None]:
    """progress(done) for _copy: make the positions say `done` more bytes moved and
    remember the total, so the re-dispatched call continues from there."""
    def save(done: int) -> None:
        apply(done)
        if task.syscall_state is None:
            task.syscall_state = {}
        task.syscall_state[WRITTEN] = resumed + done
    return save


# -- sendfile ----------------------------------------------------------------------------
@syscall("sendfile")
def sys_sendfile(task: "Task", out_fd: int, in_fd: int, offset: int, count: int, *_: int) -> int:
    """sendfile64 (x86_64's sendfile): the offset pointer, if any, is written back even
    when the call fails (unchanged then), as Linux's put_user does."""
    mm = task.tg.mm
    pos = _read_offset(task, offset) if offset else None
    resumed = _resumed(task)

    def advance(done: int) -> None:
        if pos is not None:
            mm.write_u64(offset, pos + done)
    try:
        moved = _sendfile(task, s32(out_fd), s32(in_fd), pos, count - resumed,
                          _progress_saver(task, resumed, advance))
    except SyscallError:
        if not resumed:
            advance(0)
            raise
        moved = 0
    advance(moved)
    return resumed + moved


def _sendfile(task: "Task", out_fd: int, in_fd: int, pos: int | None, count: int,
              progress: Callable[[int], None]) -> int:
    """do_sendfile: into a pipe, one read of what fits; into a file, the whole count."""
    src = _get(task, in_fd)
    if not src.readable:
        raise SyscallError(EBADF)
    if pos is not None and not _seekable(src):
        raise SyscallError(ESPIPE)
    _verify_area(_position(src) if pos is None else pos, count)
    count = min(count, MAX_RW_COUNT)
    dst = _get(task, out_fd)
    if not dst.writable:
        raise SyscallError(EBADF)
    if isinstance(dst, PipeFile):
        return _file_to_pipe(task, src, pos, dst, count, bool(dst.flags & O_NONBLOCK))
    if _is_pipe(dst):  # a host pipe: one pipe's worth, as Linux's splice into it
        if count:
            _check_splice_read(src)
        return _copy(task, src, pos, dst, None, min(count, HOST_PIPE_CHUNK))
    _verify_area(_position(dst), count)
    if dst.flags & O_APPEND or not _seekable(src):
        raise SyscallError(EINVAL)
    if count:
        _check_splice_read(src)
    if pos is None and src is dst:  # one description: both sides start at its position
        pos = _position(src)
    return _copy(task, src, pos, dst, None, count, progress=progress)


# -- splice ------------------------------------------------------------------------------
@syscall("splice")
def sys_splice(task: "Task", fd_in: int, off_in: int, fd_out: int, off_out: int, length: int,
               flags: int, *_: int) -> int:
    if not length:
        return 0
    flags = u32(flags)
    if flags & ~SPLICE_F_ALL:
        raise SyscallError(EINVAL)
    src, dst = _get(task, fd_in), _get(task, fd_out)
    ipipe, opipe = _is_pipe(src), _is_pipe(dst)
    if (ipipe and off_in) or (opipe and off_out):
        raise SyscallError(ESPIPE)
    pos_out = _read_offset(task, off_out) if off_out else None
    pos_in = _read_offset(task, off_in) if off_in else None
    if not src.readable or not dst.writable:
        raise SyscallError(EBADF)
    nonblock = bool(flags & SPLICE_F_NONBLOCK)
    if ipipe and opipe:
        moved = _splice_pipes(task, src, dst, length, nonblock)
    elif ipipe:
        if pos_out is not None and not _seekable(dst):
            raise SyscallError(EINVAL)
        if dst.flags & O_APPEND:
            raise SyscallError(EINVAL)
        _verify_area(_position(dst) if pos_out is None else pos_out, length)
        nonblock = nonblock or bool(src.flags & O_NONBLOCK)
        if isinstance(src, PipeFile):
            moved = _pipe_to_file(task, src, dst, pos_out, length, nonblock)
        else:
            moved = _copy(task, src, None, dst, pos_out, min(length, MAX_RW_COUNT), nonblock)
    elif opipe:
        if pos_in is not None and not _seekable(src):
            raise SyscallError(EINVAL)
        _verify_area(_position(src) if pos_in is None else pos_in, length)
        nonblock = nonblock or bool(dst.flags & O_NONBLOCK)
        if isinstance(dst, PipeFile):
            moved = _file_to_pipe(task, src, pos_in, dst, length, nonblock)
        else:
            moved = _copy(task, src, pos_in, dst, None, min(length, HOST_PIPE_CHUNK), nonblock)
    else:
        raise SyscallError(EINVAL)
    if pos_out is not None:
        task.tg.mm.write_u64(off_out, pos_out + moved)
    if pos_in is not None:
        task.tg.mm.write_u64(off_in, pos_in + moved)
    return moved


def _splice_pipes(task: "Task", src: File, dst: File, length: int, nonblock: bool) -> int:
    """Both ends are pipes: sentry pipes move buffers; a host pipe (CLI stdio) on either
    side moves bytes through read/write."""
    nonblock = nonblock or bool((src.flags | dst.flags) & O_NONBLOCK)
    if isinstance(src, PipeFile) and isinstance(dst, PipeFile):
        if src.pipe is dst.pipe:
            raise SyscallError(EINVAL)
        return _pipe_to_pipe(task, src, dst, length, nonblock)
    try:
        if isinstance(src, PipeFile):
            return _pipe_to_file(task, src, dst, None, length, nonblock)
        if isinstance(dst, PipeFile):
            return _file_to_pipe(task, src, None, dst, length, nonblock, splice_read=False)
        return _copy(task, src, None, dst, None, min(length, HOST_PIPE_CHUNK), nonblock)
    except Block:
        if nonblock:  # the host pipe would wait: a non-blocking pipe-to-pipe splice does not
            raise SyscallError(EAGAIN) from None
        raise


@syscall("tee", partial="the CLI's host-pipe stdio answers EINVAL (logged)")
def sys_tee(task: "Task", fd_in: int, fd_out: int, length: int, flags: int, *_: int) -> int:
    flags = u32(flags)
    if flags & ~SPLICE_F_ALL:
        raise SyscallError(EINVAL)
    if not length:
        return 0
    src, dst = _get(task, fd_in), _get(task, fd_out)
    if not src.readable or not dst.writable:
        raise SyscallError(EBADF)
    if not (isinstance(src, PipeFile) and isinstance(dst, PipeFile)) or src.pipe is dst.pipe:
        if _is_pipe(src) and _is_pipe(dst):
            task.kernel.warn_once("tee:host", "tee on a host pipe (the CLI's stdio) -> EINVAL")
        raise SyscallError(EINVAL)
    nonblock = bool(flags & SPLICE_F_NONBLOCK) or bool((src.flags | dst.flags) & O_NONBLOCK)
    return _tee(task, src, dst, length, nonblock)


# -- copy_file_range ---------------------------------------------------------------------
def _filesystem(file: File) -> object:
    """What Linux compares as the superblock: the sentry file system an inode belongs to
    (the overlay for files opened through it), else the host device."""
    node = getattr(file, "attr_inode", None) or getattr(file, "inode", None)
    if node is not None:
        return node.fs
    return ("dev", file.stat().st_dev)


@syscall("copy_file_range")
def sys_copy_file_range(task: "Task", fd_in: int, off_in: int, fd_out: int, off_out: int,
                        length: int, flags: int, *_: int) -> int:
    resumed = _resumed(task)
    try:
        return resumed + _copy_file_range(task, s32(fd_in), off_in, s32(fd_out), off_out,
                                          length - resumed, u32(flags), resumed)
    except SyscallError:
        if resumed:
            return resumed
        raise


def _copy_file_range(task: "Task", fd_in: int, off_in: int, fd_out: int, off_out: int,
                     count: int, flags: int, resumed: int) -> int:
    src, dst = _get(task, fd_in), _get(task, fd_out)
    mm = task.tg.mm
    pos_in = _read_offset(task, off_in) if off_in else _position(src)
    pos_out = _read_offset(task, off_out) if off_out else _position(dst)
    if flags:
        raise SyscallError(EINVAL)
    st_in, st_out = src.stat(), dst.stat()
    if st_.S_ISDIR(st_in.st_mode) or st_.S_ISDIR(st_out.st_mode):
        raise SyscallError(EISDIR)
    if not (st_.S_ISREG(st_in.st_mode) and st_.S_ISREG(st_out.st_mode)):
        raise SyscallError(EINVAL)
    if not src.readable or not dst.writable or dst.flags & O_APPEND:
        raise SyscallError(EBADF)
    if _filesystem(src) != _filesystem(dst):
        raise SyscallError(EXDEV)
    if (pos_in & U64) + count > U64 or (pos_out & U64) + count > U64:
        raise SyscallError(EOVERFLOW)  # the offsets wrap, compared as unsigned
    size_in = st_in.st_size
    count = 0 if pos_in >= size_in else min(count, (size_in - pos_in) & U64)
    if pos_out >= LOFF_MAX:
        raise SyscallError(EFBIG)
    count = min(count, LOFF_MAX - pos_out)
    if (st_in.st_dev, st_in.st_ino) == (st_out.st_dev, st_out.st_ino) \
            and pos_out + count > pos_in and pos_out < pos_in + count:
        raise SyscallError(EINVAL)  # overlapping ranges of one file
    _verify_area(pos_in, count)
    _verify_area(pos_out, count)
    if not count:
        return 0
    count = min(count, MAX_RW_COUNT)

    def apply(done: int) -> None:
        if off_in:
            mm.write_u64(off_in, pos_in + done)
        else:
            src.lseek(pos_in + done, SEEK_SET)
        if off_out:
            mm.write_u64(off_out, pos_out + done)
        else:
            dst.lseek(pos_out + done, SEEK_SET)

    moved = _copy(task, src, pos_in, dst, pos_out, count,
                  progress=_progress_saver(task, resumed, apply))
    if moved:
        apply(moved)
    return moved


# -- vmsplice ----------------------------------------------------------------------------
@syscall("vmsplice", partial="the CLI's host-pipe stdio answers EINVAL (logged)")
def sys_vmsplice(task: "Task", fd: int, iov: int, nr_segs: int, flags: int, *_: int) -> int:
    """User memory into a pipe, or a pipe into user memory.  Into a pipe the bytes are
    copied: Linux shares the pages, but callers must not change them while they are in the
    pipe, so no program can tell.  Only SPLICE_F_NONBLOCK makes it non-blocking: the
    pipe's O_NONBLOCK does not."""
    flags = u32(flags)
    if flags & ~SPLICE_F_ALL:
        raise SyscallError(EINVAL)
    file = _get(task, fd)
    if not file.writable and not file.readable:
        raise SyscallError(EBADF)
    vecs = task.tg.mm.read_iovec(iov, nr_segs if nr_segs < 1 << 31 else -1)
    vecs = _clip(vecs, MAX_RW_COUNT)
    if not vecs:
        return 0
    if not isinstance(file, PipeFile):
        if _is_pipe(file):
            task.kernel.warn_once("vmsplice:host", "vmsplice on a host pipe (the CLI's stdio) -> EINVAL")
            raise SyscallError(EINVAL)
        raise SyscallError(EBADF)
    nonblock = bool(flags & SPLICE_F_NONBLOCK)
    if file.writable:
        return _vmsplice_to_pipe(task, file, vecs, nonblock)
    return _vmsplice_to_user(task, file.pipe, vecs, nonblock)


def _clip(vecs: list[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """The non-empty segments, the total cut at `limit` (import_iovec's MAX_RW_COUNT)."""
    out = []
    for base, length in vecs:
        length = min(length, limit)
        if length:
            out.append((base, length))
            limit -= length
    return out


def _user_pages(vecs: list[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """(address, length) of each piece of the segments that lies in one page."""
    for base, length in vecs:
        at, stop = base, base + length
        while at < stop:
            n = min(PAGE_SIZE - at % PAGE_SIZE, stop - at)
            yield at, n
            at += n


def _vmsplice_to_pipe(task: "Task", end: PipeFile, vecs: list[tuple[int, int]],
                      nonblock: bool) -> int:
    """iter_to_pipe: one buffer per user page touched, until the pipe is full or memory
    stops being readable (EFAULT if nothing went in)."""
    _wait_room(task, end, nonblock)
    pipe, mm = end.pipe, task.tg.mm
    total = 0
    for at, n in _user_pages(vecs):
        if pipe.full or mm.accessible(at, n, PROT_READ) < n:
            break
        pipe.bufs.append(spliced_slot(mm.read(at, n)))
        total += n
    if not total:
        raise SyscallError(EFAULT)
    pipe.filled()
    return total


def _vmsplice_to_user(task: "Task", pipe: Pipe, vecs: list[tuple[int, int]], nonblock: bool) -> int:
    """__splice_from_pipe with pipe_to_user: what the pipe holds (waiting only while it is
    empty and has writers), scattered over the segments.  A fault ends it: the buffer it
    hit stays in the pipe (EFAULT if no buffer was copied whole)."""
    if not pipe.bufs:
        if not pipe.writers:
            return 0
        if nonblock:
            raise SyscallError(EAGAIN)
        raise Block(queue=pipe.rd_wait)
    mm = task.tg.mm
    data = pipe.peek(sum(length for _, length in vecs))
    copied = 0
    for base, length in vecs:
        piece = data[copied:copied + length]
        n = mm.write_prefix(base, piece) if piece else 0
        copied += n
        if n < length:
            break
    taken = 0  # the bytes of the buffers copied whole
    for slot in pipe.bufs:
        end = min(taken + len(slot.data), len(data))
        if end > copied:
            break
        taken = end
        if taken == len(data):
            break
    if not taken:
        raise SyscallError(EFAULT)
    pipe.consume(taken)
    return taken


# -- advice ------------------------------------------------------------------------------
@syscall("fadvise64", partial="advice is checked and ignored (no page cache of our own)")
def sys_fadvise64(task: "Task", fd: int, offset: int, length: int, advice: int, *_: int) -> int:
    file = _get(task, fd)
    if _is_pipe(file):
        raise SyscallError(ESPIPE)
    if s64(length) < 0 or not 0 <= s32(advice) <= POSIX_FADV_MAX:
        raise SyscallError(EINVAL)
    return 0


@syscall("readahead", partial="checked and ignored (the host reads ahead for its own files)")
def sys_readahead(task: "Task", fd: int, offset: int, count: int, *_: int) -> int:
    file = _get(task, fd)
    if not file.readable:
        raise SyscallError(EBADF)
    mode = _mode(file)
    if not (st_.S_ISREG(mode) or st_.S_ISBLK(mode)) or s64(count) < 0:
        raise SyscallError(EINVAL)
    return 0


@syscall("sync_file_range", partial="checked; starts no write-back (the sentry's writes are "
                                    "already in the host's page cache)")
def sys_sync_file_range(task: "Task", fd: int, offset: int, nbytes: int, flags: int,
                        *_: int) -> int:
    file = _get(task, fd)
    offset, nbytes, flags = s64(offset), s64(nbytes), u32(flags)
    end = s64((offset + nbytes) & U64)
    if flags & ~SYNC_FILE_RANGE_ALL or offset < 0 or end < 0 or end < offset:
        raise SyscallError(EINVAL)
    mode = _mode(file)
    if not (st_.S_ISREG(mode) or st_.S_ISBLK(mode) or st_.S_ISDIR(mode) or st_.S_ISLNK(mode)):
        raise SyscallError(ESPIPE)
    return 0
