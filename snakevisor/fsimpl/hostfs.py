"""The container's root file system served from a host directory, confined beneath it.

Until the gofer takes over host file access, the sentry opens host files itself — but only
through openat2(rootfd, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so that `..`,
absolute symlinks and /proc magic links all resolve inside the root, never above it.
Relative paths are joined to the process's canonical cwd (or a dirfd's own location) and
the whole path is resolved from the root, exactly as a chroot would.

Three further rules keep the host safe and the answers Linux-exact:

* Nothing is opened for I/O before we know what it is: the final object is first opened
  with O_PATH (no side effects), checked with fstat, then reopened through
  /proc/self/fd/N.  Host device nodes other than the harmless memory devices (null, zero,
  full, random, urandom) are refused like a `nodev` mount does (EACCES), since opening
  e.g. /dev/watchdog or a disk has effects on the host.
* Pseudo file systems mounted beneath the root (the host's proc, sysfs, cgroup,
  binfmt_misc...) are hidden: their mount points look like empty directories and
  everything inside is ENOENT, until the sandbox's own procfs/sysfs exist.
* Read-only mode (the default) answers EROFS exactly where a read-only mount would,
  including Linux's ordering of EROFS against ENOENT/EEXIST/EISDIR/EBUSY.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import stat as st_
import struct
from typing import TYPE_CHECKING, Iterator

from snakevisor.kernel.errors import (EACCES, EBADF, EBUSY, EEXIST, EINVAL, EISDIR, ELOOP, ENOENT,
                                      ENOTDIR, ENOTEMPTY, ENOTTY, ENXIO, EOPNOTSUPP, EPERM, EROFS,
                                      EXDEV, SyscallError)
ENODATA = errno.ENODATA
from snakevisor.syscalls.args import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW
from snakevisor.fsimpl.hostfd import HostFdFile
from snakevisor.vfs.file import File

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

# -- host system calls the os module does not offer -------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)
_c_long, _c_int, _c_uint = ctypes.c_long, ctypes.c_int, ctypes.c_uint
_c_char_p, _c_void_p, _c_size_t = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t


def _syscall(*argtypes: type) -> ctypes._CFuncPtr:
    """libc syscall() typed for one call shape (the first argument is the number)."""
    return ctypes.CFUNCTYPE(_c_long, _c_long, *argtypes, use_errno=True)(("syscall", _libc))


NR_OPENAT2, NR_GETDENTS64, NR_STATX, NR_FSTATFS = 437, 217, 332, 138
NR_RENAMEAT2, NR_UTIMENSAT, NR_FCHOWNAT, NR_SYNCFS = 316, 280, 260, 306
_getdents64 = _syscall(_c_int, _c_void_p, _c_uint)
_statx = _syscall(_c_int, _c_char_p, _c_int, _c_uint, _c_void_p)
_fstatfs = _syscall(_c_int, _c_void_p)
_renameat2 = _syscall(_c_int, _c_char_p, _c_int, _c_char_p, _c_uint)
_utimensat = _syscall(_c_int, _c_char_p, _c_void_p, _c_int)
_fchownat = _syscall(_c_int, _c_char_p, _c_uint, _c_uint, _c_int)
_syncfs = _syscall(_c_int)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_openat2 = _syscall(_c_int, _c_char_p, ctypes.POINTER(_OpenHow), _c_size_t)

RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT = 0x08, 0x10
IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
BENEATH = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS
_HOWS: dict[tuple[int, int], _OpenHow] = {}

# -- open(2) flags ---------------------------------------------------------------------
O_ACCMODE, O_RDONLY = 0o3, 0
O_CREAT, O_EXCL, O_NOCTTY, O_TRUNC = os.O_CREAT, os.O_EXCL, os.O_NOCTTY, os.O_TRUNC
O_APPEND, O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW = os.O_APPEND, os.O_NONBLOCK, os.O_DIRECTORY, os.O_NOFOLLOW
O_CLOEXEC, O_PATH, O_LARGEFILE = os.O_CLOEXEC, os.O_PATH, 0o100000
O_DSYNC, O_SYNC, O_DIRECT, O_NOATIME, FASYNC = os.O_DSYNC, os.O_SYNC, os.O_DIRECT, os.O_NOATIME, 0o20000
O_TMPFILE_BIT = 0o20000000
#: what open(2) keeps (unknown bits are silently dropped, as Linux does)
VALID_OPEN_FLAGS = (O_ACCMODE | O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_APPEND | O_NONBLOCK |
                    O_SYNC | O_DSYNC | FASYNC | O_DIRECT | O_LARGEFILE | O_DIRECTORY | O_NOFOLLOW |
                    O_NOATIME | O_CLOEXEC | O_PATH | O_TMPFILE_BIT)
#: flags that still mean something on an O_PATH open (O_CLOEXEC belongs to the fd)
O_PATH_KEEP = O_PATH | O_DIRECTORY | O_NOFOLLOW
#: flags handed to the host when a file is really opened (the rest we apply ourselves)
_HOST_PASS = (O_ACCMODE | O_APPEND | O_NONBLOCK | O_SYNC | O_DSYNC | O_DIRECT | O_NOATIME |
              O_TRUNC | O_LARGEFILE)
#: status flags F_SETFL may change that the host fd must mirror (O_NONBLOCK stays ours)
_HOST_SETFL = O_APPEND | O_DIRECT | O_NOATIME

S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 0o170000, st_.S_IFDIR, st_.S_IFREG, st_.S_IFLNK
S_IFCHR, S_IFBLK, S_IFIFO, S_IFSOCK = st_.S_IFCHR, st_.S_IFBLK, st_.S_IFIFO, st_.S_IFSOCK
MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
FIONREAD = 0x541B
STATX_ATTR_MOUNT_ROOT = 0x2000
_STATX_ID, _STATX_INO = struct.Struct("<II"), struct.Struct("<Q")
ST_RDONLY = 1

#: host character devices a sandbox may open: (major, minor) of null, zero, full, random, urandom
ALLOWED_DEVICES = frozenset({(1, 3), (1, 5), (1, 7), (1, 8), (1, 9)})
#: file systems whose contents are plain data; any other mount beneath the root is hidden
DATA_FILESYSTEMS = frozenset({
    "ext2", "ext3", "ext4", "xfs", "btrfs", "bcachefs", "f2fs", "jfs", "reiserfs", "nilfs2",
    "zfs", "tmpfs", "ramfs", "overlay", "squashfs", "erofs", "iso9660", "udf", "vfat", "msdos",
    "exfat", "ntfs", "ntfs3", "hfsplus", "nfs", "nfs4", "cifs", "smb3", "ceph", "9p",
    "virtiofs", "devtmpfs", "fuse", "fuseblk"})
#: name kinds of a path's last component (fs/namei.c's LAST_*)
LAST_NORM, LAST_ROOT, LAST_DOT, LAST_DOTDOT = 0, 1, 2, 3
_DENTS_MAX = 65536
_dents_buf: ctypes.Array | None = None


_fd_dir: int | None = None


def proc_fd_dir() -> int:
    """An O_PATH fd of the sentry's /proc/self/fd: reopening `N` beneath it is twice as
    fast as walking "/proc/self/fd/N" from the top each time."""
    global _fd_dir
    if _fd_dir is None:
        _fd_dir = os.open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC)
    return _fd_dir


def _forget_fd_dir() -> None:
    """A forked child inherits the parent's /proc/<pid>/fd: look its own up again."""
    global _fd_dir
    if _fd_dir is not None:
        try:
            os.close(_fd_dir)
        except OSError:
            pass
        _fd_dir = None


os.register_at_fork(after_in_child=_forget_fd_dir)


@contextlib.contextmanager
def _exact_mode() -> Iterator[None]:
    """Create host files with exactly the mode we computed from the sandbox's umask: the
    sentry's own umask must not apply on top (the sentry is single-threaded)."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _raise_errno() -> None:
    raise SyscallError(ctypes.get_errno())


def _how(flags: int, mode: int, resolve: int) -> _OpenHow:
    key = (flags, resolve)
    how = _HOWS.get(key) if not mode else None
    if how is None:
        how = _OpenHow(flags, mode, resolve)
        if not mode:
            _HOWS[key] = how
    return how


def _split(path: bytes) -> tuple[bytes, bytes, int]:
    """(parent, last component with its trailing slashes, LAST_* kind) of a non-empty path."""
    stripped = path.rstrip(b"/")
    if not stripped:
        return b"/", b"", LAST_ROOT
    cut = stripped.rfind(b"/") + 1
    name = stripped[cut:]
    kind = LAST_DOT if name == b"." else LAST_DOTDOT if name == b".." else LAST_NORM
    return stripped[:cut] or b".", path[cut:], kind


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (\\040 for space...)."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="surrogateescape")


def _hidden_mounts(root: str) -> dict[int, set[int]]:
    """st_dev of every non-data mount beneath `root` -> inode numbers of its visible roots."""
    try:
        with open("/proc/self/mountinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    hidden_points: list[str] = []
    hidden: dict[int, set[int]] = {}
    under = root.rstrip("/") + "/"
    for line in lines:
        fields = line.split(" ")
        try:
            fstype = fields[fields.index("-", 6) + 1]
        except (ValueError, IndexError):
            continue
        point = _unescape(fields[4])
        if point != root and not point.startswith(under):
            continue
        base = fstype.split(".", 1)[0]
        if base in DATA_FILESYSTEMS and not any(
                point == p or point.startswith(p.rstrip("/") + "/") for p in hidden_points):
            continue
        hidden_points.append(point)
        major, minor = (int(x) for x in fields[2].split(":"))
        dev = os.makedev(major, minor)
        roots = hidden.setdefault(dev, set())
        try:
            top = os.stat(point)
        except OSError:
            continue
        if top.st_dev == dev:
            roots.add(top.st_ino)
    return hidden


def permitted(st: os.stat_result, uid: int, gid: int, groups: list[int], mask: int) -> bool:
    """Linux's DAC check (generic_permission) for the sandbox identity; uid 0 overrides."""
    mode = st.st_mode
    if uid == 0:
        return not mask & MAY_EXEC or (mode & S_IFMT) == S_IFDIR or bool(mode & 0o111)
    if st.st_uid == uid:
        bits = mode >> 6
    elif st.st_gid == gid or st.st_gid in groups:
        bits = mode >> 3
    else:
        bits = mode
    return not mask & ~bits & 7


def open_file_flags(flags: int) -> int:
    """What F_GETFL reports for an open with these flags (creation-only bits dropped)."""
    if flags & O_PATH:
        return flags & O_PATH_KEEP
    return (flags | O_LARGEFILE) & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC)


class HostRoot:
    """The container root: a host directory every sandbox path resolves beneath."""

    def __init__(self, root_dir: str, writable: bool = False) -> None:
        real = os.path.realpath(root_dir)
        self.rootfd = os.open(real, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self.root_dir = real
        self.writable = writable
        self._prefix = b"" if real == "/" else os.fsencode(real)
        self._hidden = _hidden_mounts(real)
        st = os.fstat(self.rootfd)
        #: (dev major, dev minor, ino) of the root: statx marks it STATX_ATTR_MOUNT_ROOT
        self.root_id = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
        probe = _openat2(NR_OPENAT2, self.rootfd, b".", _how(O_PATH | O_CLOEXEC, 0, IN_ROOT), 24)
        if probe < 0:
            os.close(self.rootfd)
            raise OSError(ctypes.get_errno(), "openat2 with RESOLVE_IN_ROOT (Linux 5.6+) is required")
        os.close(probe)

    def close(self) -> None:
        os.close(self.rootfd)

    # -- resolution ------------------------------------------------------------------
    def _openat2(self, base: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
        how = _how(flags | O_CLOEXEC, mode, resolve)
        for _ in range(8):
            fd = _openat2(NR_OPENAT2, base, path, how, 24)
            if fd >= 0:
                return fd
            err = ctypes.get_errno()
            if err != errno.EAGAIN:  # EAGAIN: a rename raced with `..` resolution; retry
                break
        raise SyscallError(err)

    def _resolve(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int = 0) -> int:
        """openat2 of an application path (non-empty) confined to the root; a host fd."""
        if path[:1] == b"/":
            return self._openat2(self.rootfd, path, flags, mode, IN_ROOT)
        if dirfd == AT_FDCWD:
            return self._openat2(self.rootfd, os.fsencode(task.tg.fs.cwd) + b"/" + path,
                                 flags, mode, IN_ROOT)
        base = self.dir_file(task, dirfd)
        try:  # resolve beneath the directory itself, so a renamed dirfd still works
            return self._openat2(base.fd, path, flags, mode, BENEATH)
        except SyscallError as e:
            if e.errno != EXDEV:  # EXDEV: `..` above it or an absolute symlink
                raise
        return self._openat2(self.rootfd, os.fsencode(base.path) + b"/" + path, flags, mode,
                             IN_ROOT)

    def dir_file(self, task: "Task", dirfd: int) -> "HostFile":
        """The directory an *at call's dirfd names (EBADF, ENOTDIR as Linux)."""
        file = task.tg.fds.get(dirfd)
        if type(file) is not HostFile or not file.is_dir:
            raise SyscallError(ENOTDIR)
        return file

    def reopen(self, task: "Task", fd: int) -> "HostFile":
        """A new read-only description of the file `fd` names (execveat AT_EMPTY_PATH, even
        on an O_PATH fd); EACCES for files that are not ours to execute (pipes, stdio)."""
        file = task.tg.fds.get(fd)
        if type(file) is not HostFile:
            raise SyscallError(EACCES)
        try:
            new = os.open(f"/proc/self/fd/{file.fd}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise SyscallError(e.errno) from None
        reopened = HostFile(self, new, os.O_RDONLY, os.fstat(new).st_mode, False)
        reopened.path = file.path
        return reopened

    def _check_visible(self, st: os.stat_result, mount_root_ok: bool = True) -> bool:
        """ENOENT for anything on a hidden mount; True if it is a hidden mount's (empty) root."""
        roots = self._hidden.get(st.st_dev)
        if roots is None:
            return False
        if mount_root_ok and st.st_ino in roots:
            return True
        raise SyscallError(ENOENT)

    def lookup(self, task: "Task", dirfd: int, path: bytes, follow: bool = True,
               directory: bool = False) -> int:
        """An O_PATH host fd of the object `path` names (caller closes it)."""
        flags = O_PATH | (0 if follow else O_NOFOLLOW) | (O_DIRECTORY if directory else 0)
        fd = self._resolve(task, dirfd, path, flags)
        if self._hidden:
            try:
                self._check_visible(os.fstat(fd))
            except SyscallError:
                os.close(fd)
                raise
        return fd

    def _lookup_stat(self, task: "Task", dirfd: int, path: bytes, flags: int
                     ) -> tuple[int, os.stat_result]:
        """lookup() and its fstat in one (the visibility check needs the stat anyway)."""
        fd = self._resolve(task, dirfd, path, flags)
        try:
            st = os.fstat(fd)
            if self._hidden:
                self._check_visible(st)
        except BaseException:
            os.close(fd)
            raise
        return fd, st

    def _parent(self, task: "Task", dirfd: int, path: bytes) -> tuple[int, bytes, int]:
        """(O_PATH fd of the parent directory, last name with trailing slashes, LAST_* kind)."""
        parent, name, kind = _split(path)
        fd = self._resolve(task, dirfd, parent, O_PATH | O_DIRECTORY)
        if self._hidden:
            try:
                self._check_visible(os.fstat(fd), mount_root_ok=False)
            except SyscallError:
                os.close(fd)
                raise
        return fd, name, kind

    def sandbox_path(self, hostfd: int) -> str:
        """Canonical sandbox path of an open host fd (its current location, like d_path)."""
        try:
            real = os.readlink(b"%d" % hostfd, dir_fd=proc_fd_dir())
        except OSError:
            return "/"
        prefix = self._prefix
        if not prefix:
            return os.fsdecode(real)
        if real == prefix:
            return "/"
        if real.startswith(prefix + b"/"):
            return os.fsdecode(real[len(prefix):])
        return "/"  # moved out of the root by the host: never reveal where

    def _need_writable(self) -> None:
        if not self.writable:
            raise SyscallError(EROFS)

    # -- open ------------------------------------------------------------------------
    def open(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int) -> File:
        """open(2)/openat(2) of an application path; returns an unattached HostFile."""
        if not path:
            raise SyscallError(ENOENT)
        flags &= VALID_OPEN_FLAGS
        if flags & O_PATH:
            fd = self._resolve(task, dirfd, path, flags & O_PATH_KEEP)
            try:
                st = os.fstat(fd)
                opaque = self._check_visible(st) if self._hidden else False
            except BaseException:
                os.close(fd)
                raise
            return HostFile(self, fd, flags & O_PATH_KEEP, st.st_mode, opaque)
        if flags & O_TMPFILE_BIT:
            return self._open_tmpfile(task, dirfd, path, flags, mode)
        if flags & (O_DIRECTORY | O_CREAT) == O_DIRECTORY | O_CREAT:
            raise SyscallError(EINVAL)
        creat = flags & O_CREAT
        excl = creat and flags & O_EXCL
        probe = O_PATH | (flags & (O_DIRECTORY | O_NOFOLLOW)) | (O_NOFOLLOW if excl else 0)
        for attempt in range(3):
            try:
                pfd = self._resolve(task, dirfd, path, probe)
            except SyscallError as e:
                if e.errno != ENOENT or not creat:
                    raise
                file = self._create(task, dirfd, path, flags, mode, follow_existing=attempt > 0)
                if file is not None:
                    return file
                continue  # lost a race with a creator: look again
            try:
                return self._reopen(task, pfd, flags)
            finally:
                os.close(pfd)
        raise SyscallError(EEXIST)

    def _reopen(self, task: "Task", pfd: int, flags: int) -> "HostFile":
        """Checks on the existing object behind O_PATH fd `pfd`, then the real open."""
        st = os.fstat(pfd)
        mode = st.st_mode
        fmt = mode & S_IFMT
        acc = flags & O_ACCMODE
        opaque = self._check_visible(st) if self._hidden else False  # before EEXIST tells
        if flags & O_CREAT and flags & O_EXCL:
            raise SyscallError(EEXIST)
        if flags & O_CREAT and fmt == S_IFDIR:
            raise SyscallError(EISDIR)
        if fmt == S_IFREG and flags & O_TRUNC and not self.writable:
            raise SyscallError(EROFS)
        wants_write = acc != O_RDONLY or (flags & O_TRUNC and fmt in (S_IFREG, S_IFDIR))
        if fmt == S_IFLNK:
            raise SyscallError(ELOOP)
        if fmt == S_IFDIR and wants_write:
            raise SyscallError(EISDIR)
        if fmt in (S_IFCHR, S_IFBLK):
            dev = (os.major(st.st_rdev), os.minor(st.st_rdev))
            if fmt == S_IFBLK or dev not in ALLOWED_DEVICES:
                task.kernel.warn_once(f"hostdev:{dev}", f"open of host device {dev[0]}:{dev[1]} "
                                      "refused (EACCES): no device passthrough")
                raise SyscallError(EACCES)
        creds = task.tg.creds
        need = (MAY_READ if acc != 1 else 0) | (MAY_WRITE if wants_write else 0)
        if not permitted(st, creds.fsuid, creds.fsgid, creds.groups, need):
            raise SyscallError(EACCES)
        # access mode 3 (ioctl-only) asks for write permission but takes no write access
        # to the mount, so a read-only mount lets it open
        if (acc in (1, 2) or flags & O_TRUNC) and not self.writable and fmt == S_IFREG:
            raise SyscallError(EROFS)
        if fmt == S_IFSOCK:
            raise SyscallError(ENXIO)
        if fmt == S_IFIFO and not flags & O_NONBLOCK:
            task.kernel.warn_once("hostfifo", "blocking open of a host FIFO is not supported "
                                  "(EINVAL); named pipes arrive with pipefs")
            raise SyscallError(EINVAL)
        try:
            fd = os.open(b"%d" % pfd, (flags & _HOST_PASS) | O_CLOEXEC | O_NOCTTY,
                         dir_fd=proc_fd_dir())
        except OSError as e:
            raise SyscallError(e.errno) from None
        return HostFile(self, fd, open_file_flags(flags), mode, opaque)

    def _create(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int,
                follow_existing: bool) -> "HostFile | None":
        """O_CREAT of a name that did not exist; None if it appeared meanwhile (retry)."""
        pfd, name, _kind = self._parent(task, dirfd, path)
        os.close(pfd)
        if name.endswith(b"/"):
            raise SyscallError(EISDIR)
        self._need_writable()
        host = (flags & _HOST_PASS & ~O_TRUNC) | O_CREAT | O_NOCTTY
        if not follow_existing:
            host |= O_EXCL | O_NOFOLLOW  # a fresh regular file and nothing else
        else:
            host |= O_NONBLOCK  # a dangling symlink's target: never block on what it became
        try:
            with _exact_mode():
                fd = self._resolve(task, dirfd, path, host, mode & 0o7777 & ~task.tg.umask)
        except SyscallError as e:
            if e.errno == EEXIST and not flags & O_EXCL:
                return None
            raise
        st = os.fstat(fd)
        if st.st_mode & S_IFMT != S_IFREG:
            os.close(fd)
            raise SyscallError(EACCES)
        if host & O_NONBLOCK and not flags & O_NONBLOCK:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & _HOST_SETFL)
        return HostFile(self, fd, open_file_flags(flags), st.st_mode, False)

    def _open_tmpfile(self, task: "Task", dirfd: int, path: bytes, flags: int,
                      mode: int) -> "HostFile":
        """O_TMPFILE: an unnamed regular file in a directory (needs write access)."""
        if flags & (O_DIRECTORY | O_CREAT) != O_DIRECTORY or flags & O_ACCMODE == O_RDONLY:
            raise SyscallError(EINVAL)
        pfd = self.lookup(task, dirfd, path, directory=True)
        os.close(pfd)
        self._need_writable()
        host = flags & (_HOST_PASS | O_TMPFILE_BIT | O_DIRECTORY | O_EXCL) & ~O_TRUNC
        with _exact_mode():
            fd = self._resolve(task, dirfd, path, host, mode & 0o7777 & ~task.tg.umask)
        return HostFile(self, fd, open_file_flags(flags), os.fstat(fd).st_mode, False)

    # -- lookups -------------------------------------------------------------------------
    def stat(self, task: "Task", dirfd: int, path: bytes, follow: bool = True) -> os.stat_result:
        fd, st = self._lookup_stat(task, dirfd, path, O_PATH if follow else O_PATH | O_NOFOLLOW)
        os.close(fd)
        return st

    def statx(self, task: "Task", dirfd: int, path: bytes, flags: int, mask: int) -> bytes:
        fd = self.lookup(task, dirfd, path, not flags & AT_SYMLINK_NOFOLLOW)
        try:
            return self.host_statx(fd, flags, mask)
        finally:
            os.close(fd)

    def host_statx(self, fd: int, flags: int, mask: int) -> bytes:
        """The host's struct statx, with the container root marked as a mount root."""
        raw = host_statx(fd, flags, mask)
        if _STATX_ID.unpack_from(raw, 136) + _STATX_INO.unpack_from(raw, 32) == self.root_id:
            attrs = int.from_bytes(raw[8:16], "little") | STATX_ATTR_MOUNT_ROOT
            raw = raw[:8] + attrs.to_bytes(8, "little") + raw[16:]
        return raw

    def readlink(self, task: "Task", dirfd: int, path: bytes) -> bytes:
        if not path:  # readlinkat(fd, "") reads the symlink an O_PATH fd refers to
            if dirfd == AT_FDCWD:
                raise SyscallError(ENOENT)
            file = task.tg.fds.get(dirfd)
            if type(file) is not HostFile or file.mode & S_IFMT != S_IFLNK:
                raise SyscallError(ENOENT)
            return _readlink_fd(file.fd)
        fd = self.lookup(task, dirfd, path, follow=False)
        try:
            return _readlink_fd(fd)
        finally:
            os.close(fd)

    def access(self, task: "Task", st: os.stat_result, mode: int, effective: bool) -> None:
        """faccessat2's verdict on a looked-up object: permission with the real (or
        effective) sandbox ids, then EROFS for W_OK ("SuS v2 requires we report a read only
        fs too")."""
        creds = task.tg.creds
        uid, gid = (creds.euid, creds.egid) if effective else (creds.ruid, creds.rgid)
        if not permitted(st, uid, gid, creds.groups, mode):
            raise SyscallError(EACCES)
        if mode & MAY_WRITE and not self.writable and st.st_mode & S_IFMT in (S_IFREG, S_IFDIR,
                                                                              S_IFLNK):
            raise SyscallError(EROFS)

    def access_at(self, task: "Task", dirfd: int, path: bytes, mode: int, effective: bool,
                  follow: bool) -> None:
        """access(2)/faccessat(2) of a path."""
        self.access(task, self.stat(task, dirfd, path, follow), mode, effective)

    def resolve_dir(self, task: "Task", path: bytes) -> str:
        """chdir(2): canonical sandbox path of a searchable directory."""
        fd, st = self._lookup_stat(task, AT_FDCWD, path, O_PATH | O_DIRECTORY)
        try:
            check_search(task, st)
            return self.sandbox_path(fd)
        finally:
            os.close(fd)

    def statfs(self, task: "Task", path: bytes) -> bytes:
        fd = self.lookup(task, AT_FDCWD, path)
        try:
            return self.host_statfs(fd)
        finally:
            os.close(fd)

    def host_statfs(self, fd: int) -> bytes:
        """struct statfs of the host file system, marked read-only if we are."""
        raw = host_fstatfs(fd)
        if not self.writable:
            flags = int.from_bytes(raw[80:88], "little") | ST_RDONLY
            raw = raw[:80] + flags.to_bytes(8, "little") + raw[88:]
        return raw

    # -- modifications (name-level: parent directory + one final name) ------------------
    def mkdir(self, task: "Task", dirfd: int, path: bytes, mode: int) -> None:
        pfd, name, kind = self._parent(task, dirfd, path)
        try:
            if kind != LAST_NORM:
                raise SyscallError(EEXIST)
            if not self.writable:
                _raise_if_exists(pfd, name)
                raise SyscallError(EROFS)
            with _exact_mode():
                os.mkdir(name, mode & 0o1777 & ~task.tg.umask, dir_fd=pfd)
        except OSError as e:
            raise SyscallError(e.errno) from None
        finally:
            os.close(pfd)

    def mknod(self, task: "Task", dirfd: int, path: bytes, mode: int, rdev: int) -> None:
        """mknod(2) on the host root: FIFOs, sockets and regular files; never device nodes
        (the sandbox has no device passthrough), EPERM as an unprivileged mknod gets."""
        kind = mode & S_IFMT
        if kind in (st_.S_IFCHR, st_.S_IFBLK):
            task.kernel.warn_once("mknod:hostdev", "mknod of a device node on the host root "
                                  "refused (EPERM): no device passthrough")
            raise SyscallError(EPERM)
        pfd, name, last = self._parent(task, dirfd, path)
        try:
            if last != LAST_NORM:
                raise SyscallError(EEXIST)
            if not self.writable:
                _raise_if_exists(pfd, name)
                raise SyscallError(EROFS)
            with _exact_mode():
                os.mknod(name, (kind or S_IFREG) | (mode & 0o7777 & ~task.tg.umask), 0,
                         dir_fd=pfd)
        except OSError as e:
            raise SyscallError(e.errno) from None
        finally:
            os.close(pfd)

    def unlink(self, task: "Task", dirfd: int, path: bytes, rmdir: bool) -> None:
        pfd, name, kind = self._parent(task, dirfd, path)
        try:
            if kind != LAST_NORM:
                if not rmdir:
                    raise SyscallError(EISDIR)
                raise SyscallError({LAST_DOTDOT: ENOTEMPTY, LAST_DOT: EINVAL}.get(kind, EBUSY))
            self._need_writable()
            if rmdir:
                os.rmdir(name, dir_fd=pfd)
            else:
                os.unlink(name, dir_fd=pfd)
        except OSError as e:
            raise SyscallError(e.errno) from None
        finally:
            os.close(pfd)

    def rename(self, task: "Task", olddirfd: int, old: bytes, newdirfd: int, new: bytes,
               flags: int) -> None:
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) or (
                flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)):
            raise SyscallError(EINVAL)
        ofd, oname, okind = self._parent(task, olddirfd, old)
        try:
            nfd, nname, nkind = self._parent(task, newdirfd, new)
            try:
                if os.fstat(ofd).st_dev != os.fstat(nfd).st_dev:
                    raise SyscallError(EXDEV)
                if okind != LAST_NORM:
                    raise SyscallError(EBUSY)
                if nkind != LAST_NORM:
                    raise SyscallError(EEXIST if flags & RENAME_NOREPLACE else EBUSY)
                self._need_writable()
                if _renameat2(NR_RENAMEAT2, ofd, oname, nfd, nname, flags) < 0:
                    _raise_errno()
            finally:
                os.close(nfd)
        finally:
            os.close(ofd)

    def symlink(self, task: "Task", target: bytes, dirfd: int, path: bytes) -> None:
        pfd, name, kind = self._parent(task, dirfd, path)
        try:
            if kind != LAST_NORM:
                raise SyscallError(EEXIST)
            if not self.writable:
                _raise_if_exists(pfd, name, create_file=True)
                raise SyscallError(EROFS)
            os.symlink(target, name, dir_fd=pfd)
        except OSError as e:
            raise SyscallError(e.errno) from None
        finally:
            os.close(pfd)

    def link(self, task: "Task", olddirfd: int, old: bytes, newdirfd: int, new: bytes,
             flags: int) -> None:
        """linkat(2); AT_EMPTY_PATH with an empty `old` links the file olddirfd refers to."""
        if not old:
            if olddirfd == AT_FDCWD:
                raise SyscallError(ENOENT)
            file = task.tg.fds.get(olddirfd)
            if type(file) is not HostFile:
                raise SyscallError(ENOENT)
            src, owned = file.fd, False
        else:
            src, owned = self.lookup(task, olddirfd, old, bool(flags & AT_SYMLINK_FOLLOW)), True
        try:
            pfd, name, kind = self._parent(task, newdirfd, new)
            try:
                if kind != LAST_NORM:
                    raise SyscallError(EEXIST)
                if not self.writable:
                    _raise_if_exists(pfd, name, create_file=True)
                    raise SyscallError(EROFS)
                if os.fstat(src).st_dev != os.fstat(pfd).st_dev:
                    raise SyscallError(EXDEV)
                # the magic link names the inode itself (a symlink stays a symlink)
                os.link(b"%d" % src, name, src_dir_fd=proc_fd_dir(), dst_dir_fd=pfd,
                        follow_symlinks=True)
            except OSError as e:
                raise SyscallError(e.errno) from None
            finally:
                os.close(pfd)
        finally:
            if owned:
                os.close(src)

    # -- attribute changes ---------------------------------------------------------------
    def _object(self, task: "Task", dirfd: int, path: bytes, follow: bool) -> tuple[int, bool]:
        """(host fd, owned) of what a path names; an empty path means dirfd itself."""
        if path:
            return self.lookup(task, dirfd, path, follow), True
        if dirfd == AT_FDCWD:
            return self.lookup(task, AT_FDCWD, b"."), True
        file = task.tg.fds.get(dirfd)
        if type(file) is not HostFile:
            task.kernel.warn_once("attr:nonhost", f"attribute change of {file!r} refused (EPERM)")
            raise SyscallError(EPERM)
        return file.fd, False

    def chmod(self, task: "Task", dirfd: int, path: bytes, mode: int) -> None:
        fd = self.lookup(task, dirfd, path)
        try:
            self._need_writable()
            set_mode(fd, mode)
        finally:
            os.close(fd)

    def chown(self, task: "Task", dirfd: int, path: bytes, uid: int, gid: int, follow: bool) -> None:
        fd, owned = self._object(task, dirfd, path, follow)
        try:
            self._need_writable()
            if _fchownat(NR_FCHOWNAT, fd, b"", uid, gid, AT_EMPTY_PATH) < 0:
                _raise_errno()
        finally:
            if owned:
                os.close(fd)

    def utimens(self, task: "Task", dirfd: int, path: bytes, times: bytes | None,
                follow: bool) -> None:
        fd, owned = self._object(task, dirfd, path, follow)
        try:
            check_times(times)
            self._need_writable()
            host_utimens(fd, times)
        finally:
            if owned:
                os.close(fd)

    def truncate(self, task: "Task", path: bytes, length: int) -> None:
        fd, st = self._lookup_stat(task, AT_FDCWD, path, O_PATH)
        try:
            fmt = st.st_mode & S_IFMT
            if fmt == S_IFDIR:
                raise SyscallError(EISDIR)
            if fmt != S_IFREG:
                raise SyscallError(EINVAL)
            self._need_writable()
            try:
                os.truncate(b"/proc/self/fd/%d" % fd, length)
            except OSError as e:
                raise SyscallError(e.errno) from None
        finally:
            os.close(fd)

    def sync(self) -> None:
        """sync(2)/syncfs(2): only a writable root has anything of ours to flush."""
        if self.writable:  # syncfs ignores O_PATH fds: use a real one
            fd = os.open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, dir_fd=self.rootfd)
            try:
                _syncfs(NR_SYNCFS, fd)
            finally:
                os.close(fd)


def _readlink_fd(fd: int) -> bytes:
    try:
        return os.readlink(b"", dir_fd=fd)
    except FileNotFoundError:  # readlinkat(fd, "") on a non-symlink
        raise SyscallError(EINVAL) from None
    except OSError as e:
        raise SyscallError(e.errno) from None


def _raise_if_exists(pfd: int, name: bytes, create_file: bool = False) -> None:
    """filename_create's answers before EROFS: EEXIST, or ENOENT for `name/` of a non-dir."""
    try:
        os.stat(name.rstrip(b"/"), dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        if create_file and name.endswith(b"/"):
            raise SyscallError(ENOENT) from None
        return
    except OSError as e:
        raise SyscallError(e.errno) from None
    raise SyscallError(EEXIST)


def check_search(task: "Task", st: os.stat_result) -> None:
    creds = task.tg.creds
    if not permitted(st, creds.fsuid, creds.fsgid, creds.groups, MAY_EXEC):
        raise SyscallError(EACCES)


def set_mode(fd: int, mode: int) -> None:
    """chmod through an O_PATH fd (via its magic link, which fchmod cannot take)."""
    try:
        os.chmod(b"%d" % fd, mode & 0o7777, dir_fd=proc_fd_dir())
    except OSError as e:
        raise SyscallError(e.errno) from None


def check_times(times: bytes | None) -> None:
    """EINVAL unless each tv_nsec is in [0, 1e9) or UTIME_NOW/UTIME_OMIT (vfs_utimes)."""
    if times is not None:
        for off in (8, 24):
            nsec = int.from_bytes(times[off:off + 8], "little", signed=True)
            if not (0 <= nsec < 1_000_000_000 or nsec in (UTIME_NOW, UTIME_OMIT)):
                raise SyscallError(EINVAL)


def host_fstatfs(fd: int) -> bytes:
    """The host's struct statfs (120 bytes on x86_64) for the file system behind fd."""
    buf = ctypes.create_string_buffer(120)
    if _fstatfs(NR_FSTATFS, fd, buf) < 0:
        _raise_errno()
    return buf.raw


def host_utimens(fd: int, times: bytes | None) -> None:
    """utimensat(fd, "", times, AT_EMPTY_PATH): works on O_PATH fds, symlinks included."""
    if _utimensat(NR_UTIMENSAT, fd, b"", times, AT_EMPTY_PATH) < 0:
        _raise_errno()


def host_statx(fd: int, flags: int, mask: int) -> bytes:
    """The host's struct statx (256 bytes) for the object behind fd."""
    buf = ctypes.create_string_buffer(256)
    sync = flags & 0x6000  # AT_STATX_SYNC_TYPE
    if _statx(NR_STATX, fd, b"", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW | sync, mask, buf) < 0:
        _raise_errno()
    return buf.raw


# -- extended attributes ------------------------------------------------------------------
#: namespaces Linux knows; any other prefix is EOPNOTSUPP
XATTR_NAMESPACES = (b"user.", b"trusted.", b"security.", b"system.")
#: what the sandbox sees of host attributes: its own user.* data and POSIX ACLs.  Host
#: security labels, file capabilities and trusted.* (overlayfs' bookkeeping) read as absent.
XATTR_ACLS = (b"system.posix_acl_access", b"system.posix_acl_default")


def _xattr_exposed(name: bytes) -> bool:
    if not name.startswith(XATTR_NAMESPACES):
        raise SyscallError(EOPNOTSUPP)
    return name.startswith(b"user.") or name in XATTR_ACLS


def _magic_path(fd: int) -> bytes:
    """The object behind an O_PATH fd, for calls with no *at form that takes one."""
    return b"/proc/self/fd/%d" % fd


def xattr_get(fd: int, name: bytes) -> bytes:
    if not _xattr_exposed(name):
        raise SyscallError(ENODATA)
    try:
        return os.getxattr(_magic_path(fd), name)
    except OSError as e:
        raise SyscallError(e.errno) from None


def xattr_list(fd: int) -> bytes:
    """The NUL-terminated names listxattr(2) returns, filtered to what we expose."""
    try:
        names = [os.fsencode(n) for n in os.listxattr(_magic_path(fd))]
    except OSError as e:
        raise SyscallError(e.errno) from None
    return b"".join(n + b"\0" for n in names if _xattr_exposed(n))


def xattr_change(root: "HostRoot", fd: int, name: bytes, value: bytes | None, flags: int) -> None:
    """setxattr (value given) or removexattr (value None) after the EROFS check."""
    exposed = _xattr_exposed(name)
    if not root.writable:
        raise SyscallError(EROFS)
    if not exposed:
        raise SyscallError(EPERM)
    try:
        if value is None:
            os.removexattr(_magic_path(fd), name)
        else:
            os.setxattr(_magic_path(fd), name, value, flags)
    except OSError as e:
        raise SyscallError(e.errno) from None


class HostFile(HostFdFile):
    """An open file description backed by one host fd beneath the container root."""

    def __init__(self, root: HostRoot, fd: int, flags: int, mode: int, opaque: bool) -> None:
        self.flags = flags
        self.refs = 0
        self.fd = fd
        self.root = root
        self.mode = mode  # st_mode at open (type bits never change)
        self.is_dir = mode & S_IFMT == S_IFDIR
        self.opaque = opaque  # a hidden mount's root: lists as empty
        self._path: str | None = None

    @property  # type: ignore[override]
    def path(self) -> str:
        """Where the file is now (follows renames), as /proc/self/fd shows it."""
        if self._path is not None:
            return self._path
        return self.root.sandbox_path(self.fd)

    @path.setter
    def path(self, value: str) -> None:
        self._path = value or None

    def __repr__(self) -> str:
        return f"HostFile(fd={self.fd}, flags={self.flags:#o})"

    # -- I/O is HostFdFile's; what follows knows about the container root -----------------
    def statx(self, flags: int, mask: int) -> bytes:
        return self.root.host_statx(self.fd, flags, mask)

    def statfs(self) -> bytes:
        return self.root.host_statfs(self.fd)

    def getdents(self, count: int) -> bytes:
        """linux_dirent64 records straight from the host (d_off stays valid for lseek)."""
        global _dents_buf
        if self.opaque:
            if self.is_path_only:
                raise SyscallError(EBADF)
            return b""
        if _dents_buf is None:
            _dents_buf = ctypes.create_string_buffer(_DENTS_MAX)
        n = _getdents64(NR_GETDENTS64, self.fd, _dents_buf, min(count, _DENTS_MAX))
        if n < 0:
            _raise_errno()
        return ctypes.string_at(_dents_buf, n)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        if request == FIONREAD:
            try:
                raw = fcntl.ioctl(self.fd, FIONREAD, b"\0\0\0\0")
            except OSError as e:
                raise SyscallError(e.errno) from None
            task.tg.mm.write(arg, raw)
            return 0
        task.kernel.warn_once(f"ioctl:host:{request:#x}",
                              f"ioctl({request:#x}) on a host file is not passed through -> ENOTTY")
        raise SyscallError(ENOTTY)

    def fsync(self) -> None:
        if not self.root.writable and not self.is_path_only:
            return  # nothing of ours can be dirty
        super().fsync()

    def set_status_flags(self, flags: int) -> None:
        """F_SETFL: O_APPEND/O_DIRECT/O_NOATIME change what the host does with our writes."""
        if (flags ^ self.flags) & _HOST_SETFL:
            try:
                host = fcntl.fcntl(self.fd, fcntl.F_GETFL)
                fcntl.fcntl(self.fd, fcntl.F_SETFL, (host & ~_HOST_SETFL) | (flags & _HOST_SETFL))
            except OSError as e:
                raise SyscallError(e.errno) from None
        self.flags = flags

    # -- attributes (the fd forms of chmod/chown/utimens) --------------------------------
    def _modifiable(self) -> None:
        if self.is_path_only:
            raise SyscallError(EBADF)
        if not self.root.writable:
            raise SyscallError(EROFS)

    def chmod(self, mode: int) -> None:
        self._modifiable()
        set_mode(self.fd, mode)

    def chown(self, uid: int, gid: int) -> None:
        self._modifiable()
        if _fchownat(NR_FCHOWNAT, self.fd, b"", uid, gid, AT_EMPTY_PATH) < 0:
            _raise_errno()

    def utimens(self, times: bytes | None) -> None:
        if self.is_path_only:
            raise SyscallError(EBADF)
        check_times(times)
        self._modifiable()
        host_utimens(self.fd, times)
