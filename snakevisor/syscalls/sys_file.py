"""File and file-descriptor system calls.

Handlers decode arguments the way Linux's prototypes read them, check what Linux checks
before it touches a file (in Linux's order, so the errno for a doubly-wrong call matches),
and leave the file itself to its File (snakevisor.vfs.file) or, for path-based calls, to
the process's root file system (task.tg.fs.root: fsimpl/sandboxroot.py's walk).

read/write/pread64/pwrite64/close are the hot path (a 4 KiB pread should cost the sentry a
few microseconds on top of the ptrace stop): one dict lookup for the fd, one host call,
one memory transfer, nothing else.

Copies between files and application memory stop at the first fault the way Linux's do:
a read into a buffer that runs onto a read-only page is short, not EFAULT.

Known gaps (docs/compatibility.md): fcntl leases and F_SETSIG answer EINVAL;
preadv2/pwritev2 honour RWF_HIPRI, RWF_DSYNC and RWF_SYNC only; extended attributes of
host files show only user.* and POSIX ACLs (host security labels and trusted.* read as
absent).  Record locks are syscalls/sys_lock.py's.
"""
from __future__ import annotations

import errno
import os
import struct
from stat import S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFREG, S_IFSOCK
from typing import TYPE_CHECKING, Iterable

from snakevisor.fsimpl.hostfs import UTIME_OMIT, HostFile, check_search
from snakevisor.kernel.errors import (E2BIG, EAGAIN, EBADF, EFAULT, EINVAL, EMFILE, ENAMETOOLONG,
                                      ENOSYS, ENOTDIR, EOPNOTSUPP, EPERM, ERANGE,
                                      Block, SyscallError)
from snakevisor.syscalls import syscall
from snakevisor.syscalls.sys_lock import LOCK_CMDS, fcntl_lock
from snakevisor.vfs.pipe import F_GETPIPE_SZ, F_SETPIPE_SZ
from snakevisor.syscalls.args import (AT_EACCESS, AT_EMPTY_PATH, AT_FDCWD, AT_NO_AUTOMOUNT,
                                      AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, PATH_MAX,
                                      read_path, s32, s64, u32)
from snakevisor.mm.address_space import PROT_READ, PROT_WRITE
from snakevisor.vfs.file import SETFL_MASK, File

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

#: Linux clips one read/write to this many bytes
MAX_RW_COUNT = 0x7FFFF000
#: larger transfers are done piecewise so the sentry never holds huge buffers
CHUNK = 1 << 20
TASK_SIZE = 0x7FFFFFFFF000
NR_OPEN = 1 << 20  # fs.nr_open: the ceiling of RLIMIT_NOFILE
RLIMIT_NOFILE = 7
SEEK_CUR = 1
O_CREAT, O_WRONLY, O_TRUNC, O_CLOEXEC = os.O_CREAT, os.O_WRONLY, os.O_TRUNC, os.O_CLOEXEC
O_NONBLOCK, O_LARGEFILE, FASYNC = os.O_NONBLOCK, 0o100000, 0o20000
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC = 0, 1, 2, 3, 4, 1030
F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX = 8, 9, 15, 16
OWNER_EX = struct.Struct("<ii")  #: struct f_owner_ex {int type; pid_t pid;}
FD_CLOEXEC = 1
FIONCLEX, FIOCLEX, FIONBIO, FIOASYNC = 0x5450, 0x5451, 0x5421, 0x5452
CLOSE_RANGE_UNSHARE, CLOSE_RANGE_CLOEXEC = 2, 4
AT_STATX_SYNC_TYPE, STATX__RESERVED, STATX_BASIC_STATS = 0x6000, 0x80000000, 0x7FF
RWF_HIPRI, RWF_DSYNC, RWF_SYNC = 0x1, 0x2, 0x4
RWF_SUPPORTED = 0xFF  # HIPRI DSYNC SYNC NOWAIT APPEND NOAPPEND ATOMIC DONTCACHE
S_IFMT, S_IFLNK = 0o170000, 0o120000

#: struct stat (x86_64, 144 bytes): dev ino nlink mode uid gid pad rdev size blksize blocks
#: atime mtime ctime (sec, nsec each) and three reserved longs
_STAT = struct.Struct("<3Q3I4xQ3q6q24x")
#: struct statx (256 bytes) up to stx_dev_minor; the rest stays zero
_STATX = struct.Struct("<IIQIIIH2xQQQQqI4xqI4xqI4xqI4xIIII")
_NS = 1_000_000_000


# -- helpers -------------------------------------------------------------------------
def _file(task: "Task", fd: int) -> File:
    try:
        return task.tg.fds.files[fd & 0xFFFFFFFF]
    except KeyError:
        raise SyscallError(EBADF) from None


def _path_at(task: "Task", addr: int, flags: int, null_ok: bool = False) -> bytes:
    """A path that AT_EMPTY_PATH lets be empty (and, for the stat family, NULL)."""
    if not flags & AT_EMPTY_PATH:
        return read_path(task, addr)
    if not addr and null_ok:
        return b""
    path = task.tg.mm.read_cstring(addr, PATH_MAX)
    if len(path) >= PATH_MAX:
        raise SyscallError(ENAMETOOLONG)
    return path


def _nofile(task: "Task") -> int:
    return min(task.tg.rlimits[RLIMIT_NOFILE][0], NR_OPEN)


def _check_fd_room(task: "Task", limit: int) -> None:
    """EMFILE before anything is opened or created, as Linux allocates the fd first."""
    files = task.tg.fds.files
    if len(files) >= limit and all(fd in files for fd in range(limit)):
        raise SyscallError(EMFILE)


def _root(task: "Task"):
    return task.tg.fs.root


def _unread(file: File, n: int) -> None:
    """Give back bytes read into a buffer that then faulted (seekable files only)."""
    if n:
        try:
            file.lseek(-n, SEEK_CUR)
        except SyscallError:
            pass


def _copy_out(task: "Task", file: File, buf: int, data: bytes, seekable_read: bool) -> int:
    """Write what a read returned to the app; on a fault keep the part before it (a short
    read, as Linux returns) and give the rest back to a file read at its offset."""
    try:
        task.tg.mm.write(buf, data)
        return len(data)
    except SyscallError:
        n = task.tg.mm.accessible(buf, len(data), PROT_WRITE)
        if seekable_read:
            _unread(file, len(data) - n)
        if not n:
            raise
        task.tg.mm.write(buf, data[:n])
        return n


def _copy_in(task: "Task", file: File, buf: int, count: int) -> bytes:
    """The bytes a write takes from the app: up to the first unreadable byte."""
    try:
        return task.tg.mm.read(buf, count)
    except SyscallError:
        n = task.tg.mm.accessible(buf, count, PROT_READ)
        if not n:
            raise SyscallError(EFAULT if file.writable else EBADF) from None
        return task.tg.mm.read(buf, n)


def pack_stat(st: os.stat_result) -> bytes:
    """The kernel's struct stat for x86_64."""
    a_s, a_ns = divmod(st.st_atime_ns, _NS)
    m_s, m_ns = divmod(st.st_mtime_ns, _NS)
    c_s, c_ns = divmod(st.st_ctime_ns, _NS)
    return _STAT.pack(st.st_dev, st.st_ino, st.st_nlink, st.st_mode, st.st_uid, st.st_gid,
                      st.st_rdev, st.st_size, st.st_blksize, st.st_blocks,
                      a_s, a_ns, m_s, m_ns, c_s, c_ns)


def pack_statx(st: os.stat_result) -> bytes:
    """struct statx with the basic fields, for files that have no host statx of their own."""
    a_s, a_ns = divmod(st.st_atime_ns, _NS)
    m_s, m_ns = divmod(st.st_mtime_ns, _NS)
    c_s, c_ns = divmod(st.st_ctime_ns, _NS)
    head = _STATX.pack(STATX_BASIC_STATS, st.st_blksize, 0, st.st_nlink, st.st_uid, st.st_gid,
                       st.st_mode, st.st_ino, st.st_size, st.st_blocks, 0,
                       a_s, a_ns, 0, 0, c_s, c_ns, m_s, m_ns,
                       os.major(st.st_rdev), os.minor(st.st_rdev),
                       os.major(st.st_dev), os.minor(st.st_dev))
    return head + bytes(256 - len(head))


# -- opening and closing -------------------------------------------------------------
def _open(task: "Task", dirfd: int, path_addr: int, flags: int, mode: int) -> int:
    path = read_path(task, path_addr)
    limit = _nofile(task)
    _check_fd_room(task, limit)
    file = _root(task).open(task, dirfd, path, flags | O_LARGEFILE, mode & 0o7777)
    try:
        return task.tg.fds.install(file, bool(flags & O_CLOEXEC), 0, limit)
    except SyscallError:
        file.release()
        raise


RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_CACHED = 0x08, 0x10, 0x20
_OPEN_HOW = struct.Struct("<QQQ")


@syscall("openat2")
def sys_openat2(task: "Task", dirfd: int, path: int, how: int, size: int, *_: int) -> int:
    from snakevisor.fsimpl.hostfs import VALID_OPEN_FLAGS
    if size < _OPEN_HOW.size:
        raise SyscallError(EINVAL)
    if size > 4096:
        raise SyscallError(E2BIG)
    raw = task.mm.read(how, size)
    if any(raw[_OPEN_HOW.size:]):
        raise SyscallError(E2BIG)  # fields from a newer kernel we do not know
    flags, mode, resolve = _OPEN_HOW.unpack_from(raw)
    if flags & ~VALID_OPEN_FLAGS or mode & ~0o7777 or resolve & ~0x3F:
        raise SyscallError(EINVAL)
    if mode and not flags & (O_CREAT | 0o20000000):  # mode only with O_CREAT/O_TMPFILE
        raise SyscallError(EINVAL)
    if resolve & RESOLVE_BENEATH and resolve & RESOLVE_IN_ROOT:
        raise SyscallError(EINVAL)
    if resolve & RESOLVE_CACHED:
        if flags & (O_CREAT | O_TRUNC | 0o20000000):
            raise SyscallError(EAGAIN)  # as Linux: these can never be served from cache
        resolve &= ~RESOLVE_CACHED  # a lookup of ours never sleeps on I/O: allowed
    if not resolve:
        return _open(task, s32(dirfd), path, flags, mode)
    root = _root(task)
    if not hasattr(root, "open_resolved"):
        task.kernel.warn_once(f"openat2:{resolve:#x}", f"openat2 resolve flags {resolve:#x} "
                              "without the sandbox's VFS -> EINVAL")
        raise SyscallError(EINVAL)
    name = read_path(task, path)
    limit = _nofile(task)
    _check_fd_room(task, limit)
    file = root.open_resolved(task, s32(dirfd), name, flags | O_LARGEFILE, mode & 0o7777, resolve)
    try:
        return task.tg.fds.install(file, bool(flags & O_CLOEXEC), 0, limit)
    except SyscallError:
        file.release()
        raise


@syscall("openat")
def sys_openat(task: "Task", dirfd: int, path: int, flags: int, mode: int, *_: int) -> int:
    return _open(task, s32(dirfd), path, u32(flags), u32(mode))


@syscall("open")
def sys_open(task: "Task", path: int, flags: int, mode: int, *_: int) -> int:
    return _open(task, AT_FDCWD, path, u32(flags), u32(mode))


@syscall("creat")
def sys_creat(task: "Task", path: int, mode: int, *_: int) -> int:
    return _open(task, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, u32(mode))


def before_close(task: "Task", fds: "Iterable[int]") -> None:
    """Descriptors of the process are about to close (close, close_range, dup2 over an open
    fd, close-on-exec): its POSIX locks on those files go, as Linux's filp_close does."""
    if not hasattr(task.kernel, "locks"):  # only once locks were used
        return
    from snakevisor.syscalls.sys_lock import on_close
    files = task.tg.fds.files
    for fd in fds:
        file = files.get(fd)
        if file is not None:
            on_close(task, file, last=file.refs <= 1)  # before the close: the file still works


@syscall("close")
def sys_close(task: "Task", fd: int, *_: int) -> int:
    before_close(task, (fd & 0xFFFFFFFF,))
    task.tg.fds.close(fd & 0xFFFFFFFF)
    return 0


@syscall("close_range", partial="CLOSE_RANGE_UNSHARE is a no-op (fd tables are per process)")
def sys_close_range(task: "Task", first: int, last: int, flags: int, *_: int) -> int:
    first, last, flags = u32(first), u32(last), u32(flags)
    if flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) or first > last:
        raise SyscallError(EINVAL)
    if not flags & CLOSE_RANGE_CLOEXEC:
        before_close(task, [fd for fd in task.tg.fds.files if first <= fd <= last])
    task.tg.fds.close_range(first, last, bool(flags & CLOSE_RANGE_CLOEXEC))
    return 0


# -- reading and writing -------------------------------------------------------------
def _read_into(task: "Task", file: File, buf: int, count: int, offset: int | None) -> int:
    """A read of any size, done in CHUNK pieces; a later piece that would wait ends it."""
    if buf + count > TASK_SIZE:
        raise SyscallError(EFAULT if file.readable else EBADF)
    count = min(count, MAX_RW_COUNT)
    done = 0
    while True:
        n = min(count - done, CHUNK)
        try:
            data = file.read(task, n) if offset is None else file.pread(task, n, offset + done)
        except (SyscallError, Block):
            if done:
                return done
            raise
        if data:
            try:
                copied = _copy_out(task, file, buf + done, data, offset is None)
            except SyscallError:
                if done:
                    return done
                raise
            if copied < len(data):
                return done + copied
        done += len(data)
        if len(data) < n or done >= count:
            return done


def _write_from(task: "Task", file: File, buf: int, count: int, offset: int | None) -> int:
    """A write of any size, gathered from application memory in CHUNK pieces."""
    return _write_segments(task, file, [(buf, min(count, MAX_RW_COUNT))], offset)


def _write_segments(task: "Task", file: File, segments: list[tuple[int, int]],
                    offset: int | None) -> int:
    """Write (address, length) pieces in CHUNK steps.  A step that blocks parks the call
    with the bytes already written in syscall_state["written"], so the re-dispatched call
    resumes after them and returns the whole count, as one blocking write does on Linux."""
    state = task.syscall_state
    done = state.get("written", 0) if state else 0
    skip = done
    for base, length in segments:
        if skip >= length:
            skip -= length
            continue
        pos, skip = skip, 0
        while pos < length:
            n = min(length - pos, CHUNK)
            try:
                data = _copy_in(task, file, base + pos, n)
                wrote = (file.write(task, data) if offset is None
                         else file.pwrite(task, data, offset + done))
            except Block:
                if done:
                    if task.syscall_state is None:
                        task.syscall_state = {}
                    task.syscall_state["written"] = done
                raise
            except SyscallError:
                if done:
                    return done
                raise
            done += wrote
            pos += wrote
            if wrote < n:
                return done
    return done


@syscall("read")
def sys_read(task: "Task", fd: int, buf: int, count: int, *_: int) -> int:
    try:
        file = task.tg.fds.files[fd & 0xFFFFFFFF]
    except KeyError:
        raise SyscallError(EBADF) from None
    if file.read_into is not None:
        return _read_to_sink(task, file, [(buf, min(count, MAX_RW_COUNT))])
    if count > CHUNK:
        return _read_into(task, file, buf, count, None)
    data = file.read(task, count)
    if data:
        try:
            task.tg.mm.write(buf, data)
        except SyscallError:
            return _copy_out(task, file, buf, data, True)
    return len(data)


@syscall("write")
def sys_write(task: "Task", fd: int, buf: int, count: int, *_: int) -> int:
    try:
        file = task.tg.fds.files[fd & 0xFFFFFFFF]
    except KeyError:
        raise SyscallError(EBADF) from None
    if file.discards_writes and file.writable:
        return min(count, MAX_RW_COUNT)
    if count > CHUNK:
        return _write_from(task, file, buf, count, None)
    try:
        data = task.tg.mm.read(buf, count)
    except SyscallError:
        data = _copy_in(task, file, buf, count)
    return file.write(task, data)


@syscall("pread64")
def sys_pread64(task: "Task", fd: int, buf: int, count: int, pos: int, *_: int) -> int:
    if pos >> 63:
        raise SyscallError(EINVAL)
    try:
        file = task.tg.fds.files[fd & 0xFFFFFFFF]
    except KeyError:
        raise SyscallError(EBADF) from None
    if count > CHUNK:
        return _read_into(task, file, buf, count, pos)
    data = file.pread(task, count, pos)
    if data:
        try:
            task.tg.mm.write(buf, data)
        except SyscallError:
            return _copy_out(task, file, buf, data, False)
    return len(data)


@syscall("pwrite64")
def sys_pwrite64(task: "Task", fd: int, buf: int, count: int, pos: int, *_: int) -> int:
    if pos >> 63:
        raise SyscallError(EINVAL)
    file = _file(task, fd)
    if count > CHUNK:
        return _write_from(task, file, buf, count, pos)
    try:
        data = task.tg.mm.read(buf, count)
    except SyscallError:
        data = _copy_in(task, file, buf, count)
    return file.pwrite(task, data, pos)


def _read_to_sink(task: "Task", file: File, vecs: list[tuple[int, int]]) -> int:
    """Read a kind that fills user memory itself (what it cannot store stays queued)."""
    from snakevisor.syscalls.sys_socket import scatterer
    return file.read_into(task, scatterer(task.tg.mm, vecs), sum(n for _, n in vecs))  # type: ignore[misc]


def _readv(task: "Task", file: File, iov: int, cnt: int, offset: int | None) -> int:
    mm = task.tg.mm
    vecs = mm.read_iovec(iov, cnt if cnt < 1 << 31 else -1)
    if offset is None and file.read_into is not None:
        return _read_to_sink(task, file, vecs)
    total = sum(length for _, length in vecs)
    if total > CHUNK:  # piecewise, one buffer after another
        done = 0
        for base, length in vecs:
            if not length:
                continue
            try:
                got = _read_into(task, file, base, length, None if offset is None else offset + done)
            except (SyscallError, Block):
                if done:
                    return done
                raise
            done += got
            if got < length:
                break
        return done
    data = file.read(task, total) if offset is None else file.pread(task, total, offset)
    done = 0
    for base, length in vecs:
        if done >= len(data):
            break
        piece = data[done:done + length]
        try:
            copied = _copy_out(task, file, base, piece, False)
        except SyscallError:
            copied = 0
        done += copied
        if copied < len(piece):
            if offset is None:
                _unread(file, len(data) - done)
            if not done:
                raise SyscallError(EFAULT)
            return done
    return len(data)


def _writev(task: "Task", file: File, iov: int, cnt: int, offset: int | None) -> int:
    mm = task.tg.mm
    vecs = mm.read_iovec(iov, cnt if cnt < 1 << 31 else -1)
    total = sum(length for _, length in vecs)
    if not total:
        if not file.writable:
            raise SyscallError(EBADF)
        return 0  # Linux writes nothing at all (even /dev/full succeeds)
    if total > CHUNK:
        return _write_segments(task, file, [(b, n) for b, n in vecs if n], offset)
    pieces = []
    for base, length in vecs:  # gathered up to the first fault, as Linux copies
        if not length:
            continue
        try:
            pieces.append(mm.read(base, length))
        except SyscallError:
            n = task.tg.mm.accessible(base, length, PROT_READ)
            if n:
                pieces.append(mm.read(base, n))
            elif not pieces:
                raise SyscallError(EFAULT if file.writable else EBADF) from None
            break
    data = b"".join(pieces)
    return file.write(task, data) if offset is None else file.pwrite(task, data, offset)


@syscall("readv")
def sys_readv(task: "Task", fd: int, iov: int, cnt: int, *_: int) -> int:
    return _readv(task, _file(task, fd), iov, cnt, None)


@syscall("writev")
def sys_writev(task: "Task", fd: int, iov: int, cnt: int, *_: int) -> int:
    return _writev(task, _file(task, fd), iov, cnt, None)


def _pos(pos: int) -> int:
    """preadv's offset (x86_64 passes it whole in pos_l); EINVAL when negative."""
    if pos >> 63:
        raise SyscallError(EINVAL)
    return pos


@syscall("preadv")
def sys_preadv(task: "Task", fd: int, iov: int, cnt: int, pos: int, *_: int) -> int:
    pos = _pos(pos)
    return _readv(task, _file(task, fd), iov, cnt, pos)


@syscall("pwritev")
def sys_pwritev(task: "Task", fd: int, iov: int, cnt: int, pos: int, *_: int) -> int:
    pos = _pos(pos)
    return _writev(task, _file(task, fd), iov, cnt, pos)


def _rwf(task: "Task", name: str, flags: int) -> int:
    """Validate RWF_* flags: unknown ones are EOPNOTSUPP, as are those we do not honour."""
    flags = u32(flags)
    if flags & ~RWF_SUPPORTED:
        raise SyscallError(EOPNOTSUPP)
    if flags & ~(RWF_HIPRI | RWF_DSYNC | RWF_SYNC):
        task.kernel.warn_once(f"{name}:flags", f"{name} flags {flags:#x} not supported -> EOPNOTSUPP")
        raise SyscallError(EOPNOTSUPP)
    return flags


@syscall("preadv2", partial="RWF_NOWAIT/APPEND/NOAPPEND/ATOMIC/DONTCACHE answer EOPNOTSUPP")
def sys_preadv2(task: "Task", fd: int, iov: int, cnt: int, pos: int, _h: int, flags: int,
                *_: int) -> int:
    file = _file(task, fd)
    _rwf(task, "preadv2", flags)
    offset = None if s64(pos) == -1 else _pos(pos)
    return _readv(task, file, iov, cnt, offset)


@syscall("pwritev2", partial="RWF_NOWAIT/APPEND/NOAPPEND/ATOMIC/DONTCACHE answer EOPNOTSUPP")
def sys_pwritev2(task: "Task", fd: int, iov: int, cnt: int, pos: int, _h: int, flags: int,
                 *_: int) -> int:
    file = _file(task, fd)
    flags = _rwf(task, "pwritev2", flags)
    offset = None if s64(pos) == -1 else _pos(pos)
    n = _writev(task, file, iov, cnt, offset)
    if flags & (RWF_DSYNC | RWF_SYNC) and n:
        file.fsync()
    return n


@syscall("lseek")
def sys_lseek(task: "Task", fd: int, offset: int, whence: int, *_: int) -> int:
    return _file(task, fd).lseek(s64(offset), u32(whence))


# -- status ----------------------------------------------------------------------------
def _empty_path_stat(task: "Task", dirfd: int) -> os.stat_result:
    """What an empty path with AT_EMPTY_PATH names: dirfd's file, or the cwd."""
    if dirfd == AT_FDCWD:
        return _root(task).stat(task, AT_FDCWD, b".")
    return _file(task, dirfd).stat()


@syscall("fstat")
def sys_fstat(task: "Task", fd: int, buf: int, *_: int) -> int:
    task.tg.mm.write(buf, pack_stat(_file(task, fd).stat()))
    return 0


def _fstatat(task: "Task", dirfd: int, path_addr: int, buf: int, flags: int) -> int:
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    path = _path_at(task, path_addr, flags, null_ok=True)
    if path:
        st = _root(task).stat(task, dirfd, path, not flags & AT_SYMLINK_NOFOLLOW)
    else:
        st = _empty_path_stat(task, dirfd)
    task.tg.mm.write(buf, pack_stat(st))
    return 0


@syscall("stat")
def sys_stat(task: "Task", path: int, buf: int, *_: int) -> int:
    return _fstatat(task, AT_FDCWD, path, buf, 0)


@syscall("lstat")
def sys_lstat(task: "Task", path: int, buf: int, *_: int) -> int:
    return _fstatat(task, AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW)


@syscall("newfstatat")
def sys_newfstatat(task: "Task", dirfd: int, path: int, buf: int, flags: int, *_: int) -> int:
    return _fstatat(task, s32(dirfd), path, buf, u32(flags))


@syscall("statx")
def sys_statx(task: "Task", dirfd: int, path_addr: int, flags: int, mask: int, buf: int,
              *_: int) -> int:
    dirfd, flags, mask = s32(dirfd), u32(flags), u32(mask)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_EMPTY_PATH | AT_STATX_SYNC_TYPE) \
            or flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE or mask & STATX__RESERVED:
        raise SyscallError(EINVAL)
    path = _path_at(task, path_addr, flags, null_ok=True)
    if path:
        raw = _root(task).statx(task, dirfd, path, flags, mask)
    elif dirfd == AT_FDCWD:
        raw = _root(task).statx(task, AT_FDCWD, b".", flags, mask)
    else:
        file = _file(task, dirfd)
        raw = file.statx(flags, mask) if type(file) is HostFile else pack_statx(file.stat())
    task.tg.mm.write(buf, raw)
    return 0


@syscall("getdents64")
def sys_getdents64(task: "Task", fd: int, dirp: int, count: int, *_: int) -> int:
    data = _file(task, fd).getdents(u32(count))
    task.tg.mm.write(dirp, data)
    return len(data)


def dirents64_to_dirents(data: bytes) -> bytes:
    """linux_dirent64 records -> the old linux_dirent layout (same record lengths).

    old: u64 ino, s64 off, u16 reclen, name NUL, padding, u8 type in the record's last byte
    new: u64 ino, s64 off, u16 reclen, u8 type, name NUL, padding
    """
    out = bytearray(len(data))
    pos = 0
    while pos < len(data):
        reclen = int.from_bytes(data[pos + 16:pos + 18], "little")
        name_end = data.index(b"\0", pos + 19)
        out[pos:pos + 18] = data[pos:pos + 18]
        out[pos + 18:pos + 18 + name_end - pos - 19] = data[pos + 19:name_end]
        out[pos + reclen - 1] = data[pos + 18]
        pos += reclen
    return bytes(out)


@syscall("getdents")
def sys_getdents(task: "Task", fd: int, dirp: int, count: int, *_: int) -> int:
    data = dirents64_to_dirents(_file(task, fd).getdents(u32(count)))
    task.tg.mm.write(dirp, data)
    return len(data)


def _readlinkat(task: "Task", dirfd: int, path_addr: int, buf: int, size: int) -> int:
    size = s32(size)
    if size <= 0:
        raise SyscallError(EINVAL)
    path = _path_at(task, path_addr, AT_EMPTY_PATH)
    target = _root(task).readlink(task, dirfd, path)[:size]
    task.tg.mm.write(buf, target)
    return len(target)


@syscall("readlink")
def sys_readlink(task: "Task", path: int, buf: int, size: int, *_: int) -> int:
    return _readlinkat(task, AT_FDCWD, path, buf, size)


@syscall("readlinkat")
def sys_readlinkat(task: "Task", dirfd: int, path: int, buf: int, size: int, *_: int) -> int:
    return _readlinkat(task, s32(dirfd), path, buf, size)


def _faccessat(task: "Task", dirfd: int, path_addr: int, mode: int, flags: int) -> int:
    if mode & ~7 or flags & ~(AT_EACCESS | AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    path = _path_at(task, path_addr, flags)
    root = _root(task)
    if path:
        root.access_at(task, dirfd, path, mode, bool(flags & AT_EACCESS),
                       not flags & AT_SYMLINK_NOFOLLOW)
    else:
        root.access(task, _empty_path_stat(task, dirfd), mode, bool(flags & AT_EACCESS))
    return 0


@syscall("access")
def sys_access(task: "Task", path: int, mode: int, *_: int) -> int:
    return _faccessat(task, AT_FDCWD, path, u32(mode), 0)


@syscall("faccessat")
def sys_faccessat(task: "Task", dirfd: int, path: int, mode: int, *_: int) -> int:
    return _faccessat(task, s32(dirfd), path, u32(mode), 0)


@syscall("faccessat2")
def sys_faccessat2(task: "Task", dirfd: int, path: int, mode: int, flags: int, *_: int) -> int:
    return _faccessat(task, s32(dirfd), path, u32(mode), u32(flags))


# -- names -----------------------------------------------------------------------------
def _mknodat(task: "Task", dirfd: int, path_addr: int, mode: int, dev: int) -> int:
    kind = mode & S_IFMT
    if kind == S_IFDIR:
        raise SyscallError(EPERM)
    if kind not in (0, S_IFREG, S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK):
        raise SyscallError(EINVAL)
    major, minor = (dev >> 8) & 0xFFF, (dev & 0xFF) | ((dev >> 12) & 0xFFF00)  # new_decode_dev
    _root(task).mknod(task, dirfd, read_path(task, path_addr), (kind or S_IFREG) | (mode & 0o7777),
                      os.makedev(major, minor))
    return 0


@syscall("mknod")
def sys_mknod(task: "Task", path: int, mode: int, dev: int, *_: int) -> int:
    return _mknodat(task, AT_FDCWD, path, u32(mode), u32(dev))


@syscall("mknodat")
def sys_mknodat(task: "Task", dirfd: int, path: int, mode: int, dev: int, *_: int) -> int:
    return _mknodat(task, s32(dirfd), path, u32(mode), u32(dev))


@syscall("mkdir")
def sys_mkdir(task: "Task", path: int, mode: int, *_: int) -> int:
    _root(task).mkdir(task, AT_FDCWD, read_path(task, path), u32(mode))
    return 0


@syscall("mkdirat")
def sys_mkdirat(task: "Task", dirfd: int, path: int, mode: int, *_: int) -> int:
    _root(task).mkdir(task, s32(dirfd), read_path(task, path), u32(mode))
    return 0


@syscall("unlink")
def sys_unlink(task: "Task", path: int, *_: int) -> int:
    _root(task).unlink(task, AT_FDCWD, read_path(task, path), rmdir=False)
    return 0


@syscall("rmdir")
def sys_rmdir(task: "Task", path: int, *_: int) -> int:
    _root(task).unlink(task, AT_FDCWD, read_path(task, path), rmdir=True)
    return 0


@syscall("unlinkat")
def sys_unlinkat(task: "Task", dirfd: int, path: int, flags: int, *_: int) -> int:
    flags = u32(flags)
    if flags & ~AT_REMOVEDIR:
        raise SyscallError(EINVAL)
    _root(task).unlink(task, s32(dirfd), read_path(task, path), rmdir=bool(flags & AT_REMOVEDIR))
    return 0


def _renameat(task: "Task", olddirfd: int, old: int, newdirfd: int, new: int, flags: int) -> int:
    old_path, new_path = read_path(task, old), read_path(task, new)
    _root(task).rename(task, olddirfd, old_path, newdirfd, new_path, flags)
    return 0


@syscall("rename")
def sys_rename(task: "Task", old: int, new: int, *_: int) -> int:
    return _renameat(task, AT_FDCWD, old, AT_FDCWD, new, 0)


@syscall("renameat")
def sys_renameat(task: "Task", olddirfd: int, old: int, newdirfd: int, new: int, *_: int) -> int:
    return _renameat(task, s32(olddirfd), old, s32(newdirfd), new, 0)


@syscall("renameat2")
def sys_renameat2(task: "Task", olddirfd: int, old: int, newdirfd: int, new: int, flags: int,
                  *_: int) -> int:
    return _renameat(task, s32(olddirfd), old, s32(newdirfd), new, u32(flags))


@syscall("symlink")
def sys_symlink(task: "Task", target: int, path: int, *_: int) -> int:
    _root(task).symlink(task, read_path(task, target), AT_FDCWD, read_path(task, path))
    return 0


@syscall("symlinkat")
def sys_symlinkat(task: "Task", target: int, dirfd: int, path: int, *_: int) -> int:
    _root(task).symlink(task, read_path(task, target), s32(dirfd), read_path(task, path))
    return 0


def _linkat(task: "Task", olddirfd: int, old: int, newdirfd: int, new: int, flags: int) -> int:
    if flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    old_path = _path_at(task, old, flags)
    new_path = read_path(task, new)
    _root(task).link(task, olddirfd, old_path, newdirfd, new_path, flags)
    return 0


@syscall("link")
def sys_link(task: "Task", old: int, new: int, *_: int) -> int:
    return _linkat(task, AT_FDCWD, old, AT_FDCWD, new, 0)


@syscall("linkat")
def sys_linkat(task: "Task", olddirfd: int, old: int, newdirfd: int, new: int, flags: int,
               *_: int) -> int:
    return _linkat(task, s32(olddirfd), old, s32(newdirfd), new, u32(flags))


# -- descriptors -------------------------------------------------------------------------
def _set_status_flags(file: File, flags: int) -> None:
    """F_SETFL/FIONBIO: files backed by a host fd mirror what affects the host."""
    file.set_status_flags((file.flags & ~SETFL_MASK) | (flags & SETFL_MASK))


_FCNTL_ON_PATH = (F_DUPFD, F_DUPFD_CLOEXEC, F_GETFD, F_SETFD, F_GETFL)


@syscall("fcntl", partial="leases and F_SETSIG/F_GETSIG: EINVAL; O_ASYNC delivers no SIGIO")
def sys_fcntl(task: "Task", fd: int, cmd: int, arg: int, *_: int) -> int:
    fd, cmd = u32(fd), u32(cmd)
    fds = task.tg.fds
    file = _file(task, fd)
    if file.is_path_only and cmd not in _FCNTL_ON_PATH:
        raise SyscallError(EBADF)
    if cmd == F_GETFD:
        return FD_CLOEXEC if fd in fds.cloexec else 0
    if cmd == F_SETFD:
        if arg & FD_CLOEXEC:
            fds.cloexec.add(fd)
        else:
            fds.cloexec.discard(fd)
        return 0
    if cmd == F_GETFL:
        return file.flags
    if cmd == F_SETFL:
        if arg & FASYNC:
            task.kernel.warn_once("fcntl:FASYNC", "fcntl(F_SETFL, O_ASYNC): no SIGIO delivery")
        _set_status_flags(file, u32(arg))
        return 0
    if cmd == F_SETOWN:
        file.set_owner(task, s32(arg))
        return 0
    if cmd == F_GETOWN:
        return file.owner
    if cmd == F_SETOWN_EX:
        kind, who = OWNER_EX.unpack(task.mm.read(arg, OWNER_EX.size))
        file.set_owner(task, who, kind)
        return 0
    if cmd == F_GETOWN_EX:
        task.mm.write(arg, OWNER_EX.pack(file.owner_type, abs(file.owner)))
        return 0
    if cmd in (F_DUPFD, F_DUPFD_CLOEXEC):
        limit = _nofile(task)
        if u32(arg) >= limit:
            raise SyscallError(EINVAL)
        return fds.install(file, cmd == F_DUPFD_CLOEXEC, u32(arg), limit)
    if cmd in (F_SETPIPE_SZ, F_GETPIPE_SZ):
        return file.fcntl_pipe_size(task, cmd, arg)
    if cmd in LOCK_CMDS:
        return fcntl_lock(task, file, cmd, arg)
    if cmd in (1033, 1034):  # F_ADD_SEALS, F_GET_SEALS
        from snakevisor.syscalls.sys_memfd import fcntl_seals
        return fcntl_seals(task, file, cmd, arg)
    task.kernel.warn_once(f"fcntl:{cmd}", f"fcntl(fd, {cmd}, {arg:#x}) not supported -> EINVAL")
    raise SyscallError(EINVAL)


@syscall("dup")
def sys_dup(task: "Task", fd: int, *_: int) -> int:
    return task.tg.fds.install(_file(task, fd), False, 0, _nofile(task))


def _dup3(task: "Task", old: int, new: int, flags: int) -> int:
    if new >= _nofile(task):
        raise SyscallError(EBADF)
    file = _file(task, old)
    before_close(task, (new,))
    task.tg.fds.set(new, file, bool(flags & O_CLOEXEC))
    return new


@syscall("dup2")
def sys_dup2(task: "Task", old: int, new: int, *_: int) -> int:
    old, new = u32(old), u32(new)
    if old == new:
        _file(task, old)
        return new
    return _dup3(task, old, new, 0)


@syscall("dup3")
def sys_dup3(task: "Task", old: int, new: int, flags: int, *_: int) -> int:
    old, new, flags = u32(old), u32(new), u32(flags)
    if flags & ~O_CLOEXEC or old == new:
        raise SyscallError(EINVAL)
    return _dup3(task, old, new, flags)


@syscall("ioctl", partial="generic FIOCLEX/FIONCLEX/FIONBIO; file kinds add their own")
def sys_ioctl(task: "Task", fd: int, request: int, arg: int, *_: int) -> int:
    fd, request = u32(fd), u32(request)
    file = _file(task, fd)
    if file.is_path_only:
        raise SyscallError(EBADF)
    if request == FIOCLEX:
        task.tg.fds.cloexec.add(fd)
        return 0
    if request == FIONCLEX:
        task.tg.fds.cloexec.discard(fd)
        return 0
    if request == FIONBIO:
        on = int.from_bytes(task.tg.mm.read(arg, 4), "little")
        flags = file.flags | O_NONBLOCK if on else file.flags & ~O_NONBLOCK
        _set_status_flags(file, flags)
        return 0
    if request == FIOASYNC:
        task.kernel.warn_once("ioctl:FIOASYNC", "ioctl(FIOASYNC) not supported -> EINVAL")
        raise SyscallError(EINVAL)
    return file.ioctl(task, request, arg)


@syscall("fsync")
def sys_fsync(task: "Task", fd: int, *_: int) -> int:
    _file(task, fd).fsync()
    return 0


@syscall("fdatasync")
def sys_fdatasync(task: "Task", fd: int, *_: int) -> int:
    _file(task, fd).fsync()
    return 0


@syscall("ftruncate")
def sys_ftruncate(task: "Task", fd: int, length: int, *_: int) -> int:
    length = s64(length)
    if length < 0:
        raise SyscallError(EINVAL)
    _file(task, fd).truncate(length)
    return 0


FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_COLLAPSE_RANGE = 0x01, 0x02, 0x08
FALLOC_FL_INSERT_RANGE = 0x20
#: vfs_fallocate's operations (the mode without KEEP_SIZE): allocate, punch (needs
#: KEEP_SIZE), collapse, zero, insert, unshare, write-zeroes (6.17)
_FALLOC_OPERATIONS = {0x00, 0x02, 0x08, 0x10, 0x20, 0x40, 0x80}


@syscall("fallocate")
def sys_fallocate(task: "Task", fd: int, mode: int, offset: int, length: int, *_: int) -> int:
    """vfs_fallocate's checks in its order, then the file's own allocation."""
    file = _file(task, fd)
    mode, offset, length = u32(mode), s64(offset), s64(length)
    if offset < 0 or length <= 0:
        raise SyscallError(EINVAL)
    operation = mode & ~FALLOC_FL_KEEP_SIZE
    if operation not in _FALLOC_OPERATIONS:
        raise SyscallError(EOPNOTSUPP)
    if operation == FALLOC_FL_PUNCH_HOLE and not mode & FALLOC_FL_KEEP_SIZE:
        raise SyscallError(EOPNOTSUPP)
    if operation in (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE) and mode & FALLOC_FL_KEEP_SIZE:
        raise SyscallError(EOPNOTSUPP)
    if file.is_path_only or not file.flags & 0o3:  # O_RDONLY
        raise SyscallError(EBADF)
    kind = file.stat().st_mode & S_IFMT
    if kind == S_IFIFO:
        raise SyscallError(errno.ESPIPE)
    if kind == S_IFDIR:
        raise SyscallError(errno.EISDIR)
    if kind != S_IFREG:
        raise SyscallError(errno.ENODEV)
    if offset + length > (1 << 63) - 1:
        raise SyscallError(errno.EFBIG)
    file.fallocate(task, mode, offset, length)
    return 0


@syscall("truncate")
def sys_truncate(task: "Task", path: int, length: int, *_: int) -> int:
    length = s64(length)
    if length < 0:
        raise SyscallError(EINVAL)
    _root(task).truncate(task, read_path(task, path), length)
    return 0


# -- working directory and creation mask ------------------------------------------------
@syscall("getcwd")
def sys_getcwd(task: "Task", buf: int, size: int, *_: int) -> int:
    cwd = task.tg.fs.getcwd(task) + b"\0"  # ENOENT once the cwd is removed
    if len(cwd) > size:
        raise SyscallError(ERANGE)
    task.tg.mm.write(buf, cwd)
    return len(cwd)


@syscall("chdir")
def sys_chdir(task: "Task", path: int, *_: int) -> int:
    task.tg.fs.cwd = _root(task).resolve_dir(task, read_path(task, path))
    return 0


@syscall("fchdir")
def sys_fchdir(task: "Task", fd: int, *_: int) -> int:
    file = _file(task, fd)
    if not getattr(file, "is_dir", False):
        raise SyscallError(ENOTDIR)
    check_search(task, file.stat())
    task.tg.fs.cwd = getattr(file, "anchor", None) or file.path  # the fd's place, held
    return 0


@syscall("umask")
def sys_umask(task: "Task", mask: int, *_: int) -> int:
    old = task.tg.umask
    task.tg.umask = mask & 0o777
    return old


# -- attributes ------------------------------------------------------------------------
def _host_file(task: "Task", fd: int, what: str):
    """The fd's target for an attribute change (chmod/chown/utimens): a host file, or a
    sentry file system's inode; other kinds (the CLI's terminal, pipes) refuse."""
    file = _file(task, fd)
    if type(file) is not HostFile:
        if file.is_path_only:
            raise SyscallError(EBADF)
        from snakevisor.fsimpl.sandboxroot import attr_target
        target = attr_target(task, file)
        if target is not None:
            return target
        task.kernel.warn_once(f"{what}:nonhost", f"{what} of {file!r} refused (EPERM)")
        raise SyscallError(EPERM)
    return file


@syscall("chmod")
def sys_chmod(task: "Task", path: int, mode: int, *_: int) -> int:
    _root(task).chmod(task, AT_FDCWD, read_path(task, path), u32(mode))
    return 0


@syscall("fchmodat")
def sys_fchmodat(task: "Task", dirfd: int, path: int, mode: int, *_: int) -> int:
    _root(task).chmod(task, s32(dirfd), read_path(task, path), u32(mode))
    return 0


@syscall("fchmodat2")
def sys_fchmodat2(task: "Task", dirfd: int, path_addr: int, mode: int, flags: int,
                  *_: int) -> int:
    dirfd, flags = s32(dirfd), u32(flags)
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    path = _path_at(task, path_addr, flags)
    if not path:
        if dirfd == AT_FDCWD:
            path = b"."
        else:
            _host_file(task, dirfd, "fchmodat2").chmod(u32(mode))
            return 0
    root = _root(task)
    if flags & AT_SYMLINK_NOFOLLOW and root.stat(task, dirfd, path, False).st_mode & S_IFMT \
            == S_IFLNK:
        raise SyscallError(EOPNOTSUPP)  # symlinks have no mode of their own
    root.chmod(task, dirfd, path, u32(mode))
    return 0


@syscall("fchmod")
def sys_fchmod(task: "Task", fd: int, mode: int, *_: int) -> int:
    _host_file(task, fd, "fchmod").chmod(u32(mode))
    return 0


def _fchownat(task: "Task", dirfd: int, path_addr: int, uid: int, gid: int, flags: int) -> int:
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    path = _path_at(task, path_addr, flags)
    _root(task).chown(task, dirfd, path, u32(uid), u32(gid), not flags & AT_SYMLINK_NOFOLLOW)
    return 0


@syscall("chown")
def sys_chown(task: "Task", path: int, uid: int, gid: int, *_: int) -> int:
    return _fchownat(task, AT_FDCWD, path, uid, gid, 0)


@syscall("lchown")
def sys_lchown(task: "Task", path: int, uid: int, gid: int, *_: int) -> int:
    return _fchownat(task, AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW)


@syscall("fchownat")
def sys_fchownat(task: "Task", dirfd: int, path: int, uid: int, gid: int, flags: int,
                 *_: int) -> int:
    return _fchownat(task, s32(dirfd), path, uid, gid, u32(flags))


@syscall("fchown")
def sys_fchown(task: "Task", fd: int, uid: int, gid: int, *_: int) -> int:
    _host_file(task, fd, "fchown").chown(u32(uid), u32(gid))
    return 0


def _utimensat(task: "Task", dirfd: int, path_addr: int, times: bytes | None, flags: int) -> int:
    """Shared tail of utimensat/utimes/futimesat/utime (times: two struct timespec or None)."""
    if times is not None and all(int.from_bytes(times[off:off + 8], "little") == UTIME_OMIT
                                 for off in (8, 24)):
        return 0  # both UTIME_OMIT: nothing to do, the path is not even looked at
    if not path_addr and dirfd != AT_FDCWD:  # utimensat(fd, NULL, ...) is futimens
        if flags:
            raise SyscallError(EINVAL)
        _host_file(task, dirfd, "futimens").utimens(times)
        return 0
    if flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH):
        raise SyscallError(EINVAL)
    path = _path_at(task, path_addr, flags)
    _root(task).utimens(task, dirfd, path, times, not flags & AT_SYMLINK_NOFOLLOW)
    return 0


@syscall("utimensat")
def sys_utimensat(task: "Task", dirfd: int, path: int, times: int, flags: int, *_: int) -> int:
    raw = task.tg.mm.read(times, 32) if times else None
    return _utimensat(task, s32(dirfd), path, raw, u32(flags))


def _timevals(task: "Task", addr: int) -> bytes | None:
    """struct timeval[2] -> struct timespec[2] (EINVAL for microseconds out of range)."""
    if not addr:
        return None
    sec0, usec0, sec1, usec1 = struct.unpack("<qqqq", task.tg.mm.read(addr, 32))
    if not (0 <= usec0 < 1_000_000 and 0 <= usec1 < 1_000_000):
        raise SyscallError(EINVAL)
    return struct.pack("<qqqq", sec0, usec0 * 1000, sec1, usec1 * 1000)


@syscall("utimes")
def sys_utimes(task: "Task", path: int, times: int, *_: int) -> int:
    return _utimensat(task, AT_FDCWD, path, _timevals(task, times), 0)


@syscall("futimesat")
def sys_futimesat(task: "Task", dirfd: int, path: int, times: int, *_: int) -> int:
    return _utimensat(task, s32(dirfd), path, _timevals(task, times), 0)


@syscall("utime")
def sys_utime(task: "Task", path: int, times: int, *_: int) -> int:
    raw = None
    if times:
        actime, modtime = struct.unpack("<qq", task.tg.mm.read(times, 16))
        raw = struct.pack("<qqqq", actime, 0, modtime, 0)
    return _utimensat(task, AT_FDCWD, path, raw, 0)


@syscall("statfs")
def sys_statfs(task: "Task", path: int, buf: int, *_: int) -> int:
    task.tg.mm.write(buf, _root(task).statfs(task, read_path(task, path)))
    return 0


@syscall("fstatfs")
def sys_fstatfs(task: "Task", fd: int, buf: int, *_: int) -> int:
    file = _file(task, fd)
    statfs = getattr(file, "statfs", None)
    if statfs is None and getattr(file, "inode", None) is not None:
        statfs = file.inode.fs.statfs  # a sentry file system's file: its superblock's answer
    if statfs is None:
        task.kernel.warn_once(f"fstatfs:{type(file).__name__}",
                              f"fstatfs on {file!r} not supported -> ENOSYS")
        raise SyscallError(ENOSYS)
    raw = statfs()
    root = _root(task)
    node = getattr(file, "attr_inode", None) or getattr(file, "inode", None)
    path = getattr(file, "path", "")
    mount_statfs = getattr(root, "mount_statfs", None)
    if mount_statfs is not None and node is not None and path.startswith("/"):
        raw = mount_statfs(raw, node, os.fsencode(path))  # the mount's flags in f_flags
    task.tg.mm.write(buf, raw)
    return 0


@syscall("sync")
def sys_sync(task: "Task", *_: int) -> int:
    _root(task).sync()
    return 0


@syscall("syncfs")
def sys_syncfs(task: "Task", fd: int, *_: int) -> int:
    file = _file(task, fd)
    if type(file) is HostFile:
        file.root.sync()
    return 0


# -- extended attributes ---------------------------------------------------------------
XATTR_NAME_MAX, XATTR_SIZE_MAX, XATTR_LIST_MAX = 255, 65536, 65536
XATTR_CREATE, XATTR_REPLACE = 1, 2


def _xattr_name(task: "Task", addr: int) -> bytes:
    name = task.tg.mm.read_cstring(addr, XATTR_NAME_MAX + 1)
    if not name or len(name) > XATTR_NAME_MAX:
        raise SyscallError(ERANGE)
    return name


def _xattr_fd(task: "Task", fd: int):
    """The f*xattr calls' target: the fd's object in a sentry file system (EBADF for O_PATH,
    EOPNOTSUPP for pipes and the terminal)."""
    from snakevisor.fsimpl.sandboxroot import file_xattrs
    return file_xattrs(task, _file(task, fd))


def _with_target(task: "Task", path_addr: int, follow: bool, fn):
    """Run fn(attributes) on what an application path names (the sandbox's walk)."""
    return fn(_root(task).xattrs(task, AT_FDCWD, read_path(task, path_addr), follow))


def _put_sized(task: "Task", buf: int, size: int, data: bytes) -> int:
    """getxattr/listxattr's answer: the length when size is 0, ERANGE when too small."""
    if size:
        if len(data) > size:
            raise SyscallError(ERANGE)
        task.tg.mm.write(buf, data)
    return len(data)


def _getxattr(task: "Task", target, name_addr: int, buf: int, size: int) -> int:
    name = _xattr_name(task, name_addr)
    value = target(lambda attrs: attrs.get(name))
    return _put_sized(task, buf, min(size, XATTR_SIZE_MAX), value)


#: what the xattr calls reach (docs/compatibility.md)
_XATTR_SCOPE = ("host files: user.* and POSIX ACLs (security.*/trusted.* read as absent); "
                "tmpfs and the overlay: user.*, trusted.*, security.*")


@syscall("getxattr", partial=_XATTR_SCOPE)
def sys_getxattr(task: "Task", path: int, name: int, buf: int, size: int, *_: int) -> int:
    return _getxattr(task, lambda fn: _with_target(task, path, True, fn), name, buf, size)


@syscall("lgetxattr", partial=_XATTR_SCOPE)
def sys_lgetxattr(task: "Task", path: int, name: int, buf: int, size: int, *_: int) -> int:
    return _getxattr(task, lambda fn: _with_target(task, path, False, fn), name, buf, size)


@syscall("fgetxattr", partial=_XATTR_SCOPE)
def sys_fgetxattr(task: "Task", fd: int, name: int, buf: int, size: int, *_: int) -> int:
    return _getxattr(task, lambda fn: fn(_xattr_fd(task, fd)), name, buf, size)


def _listxattr(task: "Task", target, buf: int, size: int) -> int:
    return _put_sized(task, buf, min(size, XATTR_LIST_MAX), target(lambda attrs: attrs.list()))


@syscall("listxattr", partial=_XATTR_SCOPE)
def sys_listxattr(task: "Task", path: int, buf: int, size: int, *_: int) -> int:
    return _listxattr(task, lambda fn: _with_target(task, path, True, fn), buf, size)


@syscall("llistxattr", partial=_XATTR_SCOPE)
def sys_llistxattr(task: "Task", path: int, buf: int, size: int, *_: int) -> int:
    return _listxattr(task, lambda fn: _with_target(task, path, False, fn), buf, size)


@syscall("flistxattr", partial=_XATTR_SCOPE)
def sys_flistxattr(task: "Task", fd: int, buf: int, size: int, *_: int) -> int:
    return _listxattr(task, lambda fn: fn(_xattr_fd(task, fd)), buf, size)


def _setxattr(task: "Task", target, name_addr: int, value: int, size: int, flags: int) -> int:
    flags = u32(flags)
    if flags & ~(XATTR_CREATE | XATTR_REPLACE):
        raise SyscallError(EINVAL)
    name = _xattr_name(task, name_addr)
    if size > XATTR_SIZE_MAX:
        raise SyscallError(E2BIG)
    data = task.tg.mm.read(value, size) if size else b""
    target(lambda attrs: attrs.set(name, data, flags))
    return 0


@syscall("setxattr", partial=_XATTR_SCOPE)
def sys_setxattr(task: "Task", path: int, name: int, value: int, size: int, flags: int,
                 *_: int) -> int:
    return _setxattr(task, lambda fn: _with_target(task, path, True, fn), name, value, size, flags)


@syscall("lsetxattr", partial=_XATTR_SCOPE)
def sys_lsetxattr(task: "Task", path: int, name: int, value: int, size: int, flags: int,
                  *_: int) -> int:
    return _setxattr(task, lambda fn: _with_target(task, path, False, fn), name, value, size, flags)


@syscall("fsetxattr", partial=_XATTR_SCOPE)
def sys_fsetxattr(task: "Task", fd: int, name: int, value: int, size: int, flags: int,
                  *_: int) -> int:
    return _setxattr(task, lambda fn: fn(_xattr_fd(task, fd)), name, value, size, flags)


def _removexattr(task: "Task", target, name_addr: int) -> int:
    name = _xattr_name(task, name_addr)
    target(lambda attrs: attrs.remove(name))
    return 0


@syscall("removexattr", partial=_XATTR_SCOPE)
def sys_removexattr(task: "Task", path: int, name: int, *_: int) -> int:
    return _removexattr(task, lambda fn: _with_target(task, path, True, fn), name)


@syscall("lremovexattr", partial=_XATTR_SCOPE)
def sys_lremovexattr(task: "Task", path: int, name: int, *_: int) -> int:
    return _removexattr(task, lambda fn: _with_target(task, path, False, fn), name)


@syscall("fremovexattr", partial=_XATTR_SCOPE)
def sys_fremovexattr(task: "Task", fd: int, name: int, *_: int) -> int:
    return _removexattr(task, lambda fn: fn(_xattr_fd(task, fd)), name)
