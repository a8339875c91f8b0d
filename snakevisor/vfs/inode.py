"""File system objects as the sentry's own file systems implement them (tmpfs, procfs,
devfs, and later the gofer-backed and overlay file systems).

An Inode answers the questions the VFS asks while resolving paths and serving calls:
what am I (mode, ids, times), which child has this name, what does this symlink say,
and open me.  Linux's errnos for operations a kind of object does not support are the
defaults here, so a subclass implements only what it has.
"""
from __future__ import annotations

import errno
import itertools
import stat as st_
import time
from typing import TYPE_CHECKING, Iterable, NamedTuple

from snakevisor.kernel.errors import (EACCES, EEXIST, EINVAL, ENOTDIR, EOPNOTSUPP, EPERM,
                                      SyscallError)

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

ENODATA = errno.ENODATA
_dev_numbers = itertools.count(0x100)


def new_anon_dev() -> int:
    """A device number for a file system with no backing device (Linux's anon bdev: major 0)."""
    return next(_dev_numbers) & 0xFFFFF  # major 0, minor counting up


class Stat(NamedTuple):
    """The attributes stat(2) reports; field names follow os.stat_result so one packer
    serves host files and the sentry's own."""

    st_mode: int
    st_ino: int
    st_dev: int
    st_nlink: int
    st_uid: int
    st_gid: int
    st_size: int
    st_atime_ns: int
    st_mtime_ns: int
    st_ctime_ns: int
    st_blksize: int = 4096
    st_blocks: int = 0
    st_rdev: int = 0


#: dirent d_type values (getdents64)
DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12


def dtype_of(mode: int) -> int:
    return {st_.S_IFIFO: DT_FIFO, st_.S_IFCHR: DT_CHR, st_.S_IFDIR: DT_DIR, st_.S_IFBLK: DT_BLK,
            st_.S_IFREG: DT_REG, st_.S_IFLNK: DT_LNK, st_.S_IFSOCK: DT_SOCK}.get(
        st_.S_IFMT(mode), DT_UNKNOWN)


class Filesystem:
    """One mounted instance of a file system type (a superblock)."""

    fstype = "none"
    #: extended-attribute namespaces the sentry keeps in memory for this file system's
    #: inodes (tmpfs: user, trusted, security); none means no attributes (EOPNOTSUPP)
    xattr_prefixes: tuple[bytes, ...] = ()

    def __init__(self, source: str = "none", options: str = "") -> None:
        self.dev = new_anon_dev()
        self.source = source
        self.options = options
        self._inos = itertools.count(1)

    def next_ino(self) -> int:
        return next(self._inos)

    def root(self) -> "Inode":
        raise NotImplementedError

    def statfs(self) -> bytes:
        """struct statfs (120 bytes): subclasses give their magic and sizes."""
        raise SyscallError(EINVAL)


class Inode:
    """One object of a file system.  Times are nanoseconds since the epoch."""

    def __init__(self, fs: Filesystem, mode: int, uid: int = 0, gid: int = 0,
                 rdev: int = 0, ino: int | None = None) -> None:
        now = time.time_ns()
        self.fs = fs
        self.ino = fs.next_ino() if ino is None else ino
        self.mode = mode
        self.uid, self.gid = uid, gid
        self.rdev = rdev
        self.nlink = 2 if st_.S_ISDIR(mode) else 1
        self.atime_ns = self.mtime_ns = self.ctime_ns = self.btime_ns = now
        self.xattrs: dict[bytes, bytes] | None = None  #: in-memory attributes, made on first set

    # -- what it is ----------------------------------------------------------------------
    @property
    def is_dir(self) -> bool:
        return st_.S_ISDIR(self.mode)

    @property
    def is_symlink(self) -> bool:
        return st_.S_ISLNK(self.mode)

    def size(self) -> int:
        return 0

    def stat(self) -> Stat:
        size = self.size()
        return Stat(self.mode, self.ino, self.fs.dev, self.nlink, self.uid, self.gid, size,
                    self.atime_ns, self.mtime_ns, self.ctime_ns,
                    st_blocks=(size + 511) // 512, st_rdev=self.rdev)

    def touch(self, atime: bool = False, mtime: bool = False, ctime: bool = False) -> None:
        now = time.time_ns()
        if atime:
            self.atime_ns = now
        if mtime:
            self.mtime_ns = now
        if ctime or mtime:
            self.ctime_ns = now

    # -- directories ---------------------------------------------------------------------
    def lookup(self, task: "Task", name: bytes) -> "Inode | None":
        """The child called `name` (never "." or ".."), or None."""
        raise SyscallError(ENOTDIR)

    def entries(self, task: "Task") -> Iterable[tuple[bytes, int, int]]:
        """(name, ino, d_type) of each child, in a stable order (getdents offsets)."""
        raise SyscallError(ENOTDIR)

    def create(self, task: "Task", name: bytes, mode: int) -> "Inode":
        # (Linux's lookup_open: a directory whose file system cannot create files is EACCES)
        raise SyscallError(ENOTDIR if not self.is_dir else EACCES)

    def mkdir(self, task: "Task", name: bytes, mode: int) -> "Inode":
        raise SyscallError(ENOTDIR if not self.is_dir else EPERM)

    def mknod(self, task: "Task", name: bytes, mode: int, rdev: int) -> "Inode":
        raise SyscallError(ENOTDIR if not self.is_dir else EPERM)

    def symlink(self, task: "Task", name: bytes, target: bytes) -> "Inode":
        raise SyscallError(ENOTDIR if not self.is_dir else EPERM)

    def link(self, task: "Task", name: bytes, inode: "Inode") -> None:
        raise SyscallError(ENOTDIR if not self.is_dir else EPERM)

    def unlink(self, task: "Task", name: bytes) -> None:
        raise SyscallError(ENOTDIR if not self.is_dir else EPERM)

    def rmdir(self, task: "Task", name: bytes) -> None:
        raise SyscallError(ENOTDIR if not self.is_dir else EPERM)

    def rename(self, task: "Task", name: bytes, new_dir: "Inode", new_name: bytes,
               flags: int) -> None:
        raise SyscallError(ENOTDIR if not self.is_dir else EPERM)

    # -- symlinks ------------------------------------------------------------------------
    def readlink(self, task: "Task") -> bytes:
        raise SyscallError(EINVAL)

    # -- contents ------------------------------------------------------------------------
    def open(self, task: "Task", flags: int) -> "File":
        raise SyscallError(EPERM)

    def set_times(self, task: "Task", atime_ns: int | None, mtime_ns: int | None) -> None:
        """utimensat's result (None: leave that time alone); ctime becomes now."""
        if atime_ns is not None:
            self.atime_ns = atime_ns
        if mtime_ns is not None:
            self.mtime_ns = mtime_ns
        self.ctime_ns = time.time_ns()

    def setattr(self, task: "Task", mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None) -> None:
        """chmod/chown/truncate; permission checks are the caller's."""
        if size is not None:
            raise SyscallError(EINVAL if not self.is_dir else EPERM)
        if mode is not None:
            self.mode = st_.S_IFMT(self.mode) | (mode & 0o7777)
        if uid is not None and uid != 0xFFFFFFFF:
            self.uid = uid
        if gid is not None and gid != 0xFFFFFFFF:
            self.gid = gid
        self.touch(ctime=True)

    # -- extended attributes -------------------------------------------------------------
    # The storage only: namespaces the file system lacks are EOPNOTSUPP, the rest is a map
    # kept with the inode.  Permission rules (xattr_permission) are the VFS caller's.
    def _xattr_ns(self, name: bytes) -> None:
        for prefix in self.fs.xattr_prefixes:
            if name.startswith(prefix):
                if name == prefix:
                    raise SyscallError(EINVAL)  # a bare "user." names nothing
                return
        raise SyscallError(EOPNOTSUPP)

    def getxattr(self, task: "Task", name: bytes) -> bytes:
        self._xattr_ns(name)
        value = (self.xattrs or {}).get(name)
        if value is None:
            raise SyscallError(ENODATA)
        return value

    def listxattr(self, task: "Task") -> list[bytes]:
        """The names set on the object (sorted, as Linux's tmpfs keeps them in a tree)."""
        return sorted(self.xattrs or ())

    def setxattr(self, task: "Task", name: bytes, value: bytes, flags: int) -> None:
        """flags: XATTR_CREATE (1) fails on an existing name, XATTR_REPLACE (2) on a missing one."""
        self._xattr_ns(name)
        exists = name in (self.xattrs or {})
        if flags & 1 and exists:
            raise SyscallError(EEXIST)
        if flags & 2 and not exists:
            raise SyscallError(ENODATA)
        if self.xattrs is None:
            self.xattrs = {}
        self.xattrs[name] = value
        self.touch(ctime=True)

    def removexattr(self, task: "Task", name: bytes) -> None:
        self._xattr_ns(name)
        if self.xattrs is None or name not in self.xattrs:
            raise SyscallError(ENODATA)
        del self.xattrs[name]
        self.touch(ctime=True)
