"""A host directory as a sentry file system (bind mounts: `--volume HOST:SANDBOX[:ro]`).

Each inode is a path inside the directory; every operation is one HostRoot call on that
single component (never following a symlink), so HostRoot's confinement
(openat2 RESOLVE_IN_ROOT, hidden host mounts, device refusal, read-only answers) applies
unchanged, while the sentry's walk decides what `..` and symlinks mean.  Nothing is
cached: a change made on the host is seen by the next lookup.  This is the shape the
gofer-backed file system takes when host access moves out of the sentry.
"""
from __future__ import annotations

import os
import stat as st_
import struct
from typing import TYPE_CHECKING, Iterable

from snakevisor.fsimpl.hostfs import HostRoot, proc_fd_dir, xattr_change, xattr_get, xattr_list
from snakevisor.kernel.errors import ENOENT, SyscallError
from snakevisor.syscalls.args import AT_FDCWD
from snakevisor.vfs.inode import Filesystem, Inode, Stat

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY = 0, 1, 0o100, 0o200, 0o200000
O_TRUNC = 0o1000
_DIRENT = struct.Struct("<QqHB")


class HostPathFs(Filesystem):
    """One host directory, served beneath itself."""

    fstype = "bind"

    def __init__(self, host_dir: str, writable: bool) -> None:
        super().__init__(host_dir, "rw" if writable else "ro")
        self.host = HostRoot(host_dir, writable=writable)
        self.writable = writable
        self.dev = os.stat(host_dir).st_dev
        self.host_dir = host_dir

    def root(self) -> Inode:
        node = HostPathInode(self, b"/", os.stat(self.host_dir))
        node.dirfd, node.owns_dirfd = self.host.rootfd, False
        return node

    def host_stat(self, task: "Task | None", path: bytes) -> os.stat_result:
        return self.host.stat(task, AT_FDCWD, path, follow=False)  # type: ignore[arg-type]

    def new_unlinked_file(self) -> int:
        """A nameless read-write file in this directory (a tmpfs FileStore's backing)."""
        try:
            return os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600,
                           dir_fd=self.host.rootfd)
        except OSError as e:
            raise SyscallError(e.errno) from None

    def statfs(self) -> bytes:
        return self.host.statfs(None, b"/")  # type: ignore[arg-type]

    def sync(self) -> None:
        self.host.sync()


def _join(path: bytes, name: bytes) -> bytes:
    return (path.rstrip(b"/") + b"/" + name) if path != b"/" else b"/" + name


class HostPathInode(Inode):
    """The object at `path` inside the host directory (as of the last lookup)."""

    def __init__(self, fs: HostPathFs, path: bytes, st: os.stat_result) -> None:
        super().__init__(fs, st.st_mode, st.st_uid, st.st_gid, st.st_rdev, ino=st.st_ino)
        self.path = path
        #: an O_PATH fd of this directory, so a child is one fstatat of a single name
        #: (no `/`, never `..`: it cannot leave the directory)
        self.dirfd: int | None = None
        self.owns_dirfd = True
        self._apply(st)

    def __del__(self) -> None:
        if self.dirfd is not None and self.owns_dirfd:
            try:
                os.close(self.dirfd)
            except OSError:
                pass

    def _apply(self, st: os.stat_result) -> None:
        self.mode, self.uid, self.gid, self.nlink = st.st_mode, st.st_uid, st.st_gid, st.st_nlink
        self.atime_ns, self.mtime_ns, self.ctime_ns = st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns
        self._size, self._blocks, self._blksize = st.st_size, st.st_blocks, st.st_blksize
        self._dev = st.st_dev

    @property
    def host(self) -> HostRoot:
        return self.fs.host  # type: ignore[attr-defined]

    def stat(self) -> Stat:
        try:  # a directory: its own fd (the object itself, wherever the host moved it)
            self._apply(os.fstat(self.dirfd) if self.dirfd is not None else
                        self.fs.host_stat(None, self.path))  # type: ignore[attr-defined]
        except (SyscallError, OSError):
            pass  # removed on the host meanwhile: the last known attributes
        return Stat(self.mode, self.ino, self._dev, self.nlink, self.uid, self.gid, self._size,
                    self.atime_ns, self.mtime_ns, self.ctime_ns, self._blksize, self._blocks,
                    self.rdev)

    def size(self) -> int:
        return self._size

    def parent_ino(self) -> int | None:
        """The host's `..` of this directory (what getdents shows at a mount's root)."""
        if self.dirfd is None:
            return None
        try:
            return os.stat("..", dir_fd=self.dirfd, follow_symlinks=False).st_ino
        except OSError:
            return None

    def location(self) -> bytes | None:
        """Where this directory is now inside the volume (None: removed), as the host says:
        its O_PATH fd follows renames made on the host, so a held working directory or
        directory fd follows them too.  Without an fd, or moved out of the volume, the
        path it was looked up by is all there is."""
        fd = self.dirfd
        if fd is None:
            return self.path
        try:
            real = os.readlink(b"%d" % fd, dir_fd=proc_fd_dir())
            if real.endswith(b" (deleted)") and os.fstat(fd).st_nlink == 0:
                return None
        except OSError:
            return self.path
        prefix = self.host._prefix
        if real == prefix:
            return b"/"
        if not prefix or real.startswith(prefix + b"/"):
            return real[len(prefix):]
        return self.path

    def statx(self, task: "Task", flags: int, mask: int) -> bytes:
        """The host's struct statx (birth time, mount id...) of this very object."""
        if self.dirfd is not None:  # a directory: its own fd, wherever the host moved it
            return self.host.host_statx(self.dirfd, flags, mask)
        fd = self.host.lookup(task, AT_FDCWD, self.path, follow=False)
        try:
            return self.host.host_statx(fd, flags, mask)
        finally:
            os.close(fd)

    # -- directories -------------------------------------------------------------------------
    def _child(self, task: "Task", name: bytes) -> "HostPathInode":
        path = _join(self.path, name)
        if self.dirfd is None or b"/" in name or name in (b".", b".."):
            return HostPathInode(self.fs, path, self.fs.host_stat(task, path))  # type: ignore[arg-type]
        host = self.host
        try:
            st = os.stat(name, dir_fd=self.dirfd, follow_symlinks=False)
            if host._hidden:
                host._check_visible(st)
            child = HostPathInode(self.fs, path, st)  # type: ignore[arg-type]
            if st_.S_ISDIR(st.st_mode):
                child.dirfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY |
                                      os.O_CLOEXEC, dir_fd=self.dirfd)
        except OSError as e:
            raise SyscallError(e.errno) from None
        return child

    def lookup(self, task: "Task", name: bytes) -> Inode | None:
        try:
            return self._child(task, name)
        except SyscallError as e:
            if e.errno == ENOENT:
                return None
            raise

    def entries(self, task: "Task") -> Iterable[tuple[bytes, int, int]]:
        file = self.host.open(task, AT_FDCWD, self.path, O_RDONLY | O_DIRECTORY, 0)
        out = []
        try:
            while True:
                data = file.getdents(65536)
                if not data:
                    break
                pos = 0
                while pos < len(data):
                    ino, _off, reclen, dtype = _DIRENT.unpack_from(data, pos)
                    name = data[pos + _DIRENT.size:pos + reclen].split(b"\0", 1)[0]
                    if name not in (b".", b".."):
                        out.append((name, ino, dtype))
                    pos += reclen
        finally:
            file.release()
        return out

    def _own(self, task: "Task", name: bytes) -> "HostPathInode":
        """A new object belongs to its creator (the group of a setgid directory), as on
        Linux; the sentry made it, so it is given away when the sentry may (root)."""
        child = self._child(task, name)
        creds = task.tg.creds
        uid, gid = creds.fsuid, (self.gid if self.mode & st_.S_ISGID else creds.fsgid)
        if (child.uid, child.gid) != (uid, gid) and os.geteuid() == 0:
            try:
                os.chown(name, uid, gid, dir_fd=self._dir_fd(task), follow_symlinks=False)
                child = self._child(task, name)
            except OSError:
                pass  # e.g. an id the host does not map: keep the sentry's
        return child

    def _dir_fd(self, task: "Task") -> int:
        if self.dirfd is None:
            self.dirfd = self.host.lookup(task, AT_FDCWD, self.path, follow=False,
                                          directory=True)
            self.owns_dirfd = True
        return self.dirfd

    def create(self, task: "Task", name: bytes, mode: int) -> Inode:
        path = _join(self.path, name)
        self.host.open(task, AT_FDCWD, path, O_CREAT | O_EXCL | O_WRONLY, mode).release()
        return self._own(task, name)

    def create_open(self, task: "Task", name: bytes, flags: int, mode: int) -> "File":
        """open(O_CREAT) of a new name: created and opened in one host call, so the open
        that creates a file is not held to the mode it gives the file (as Linux)."""
        file = self.host.open(task, AT_FDCWD, _join(self.path, name),
                              (flags & ~O_TRUNC) | O_CREAT | O_EXCL, mode)
        file.attr_inode = self._own(task, name)  # type: ignore[attr-defined]
        return file

    def mkdir(self, task: "Task", name: bytes, mode: int) -> Inode:
        self.host.mkdir(task, AT_FDCWD, _join(self.path, name), mode)
        return self._own(task, name)

    def mknod(self, task: "Task", name: bytes, mode: int, rdev: int) -> Inode:
        """FIFOs, sockets and regular files (never host device nodes: EPERM)."""
        self.host.mknod(task, AT_FDCWD, _join(self.path, name), mode, rdev)
        return self._own(task, name)

    def symlink(self, task: "Task", name: bytes, target: bytes) -> Inode:
        self.host.symlink(task, target, AT_FDCWD, _join(self.path, name))
        return self._own(task, name)

    def link(self, task: "Task", name: bytes, inode: Inode) -> None:
        self.host.link(task, AT_FDCWD, inode.path, AT_FDCWD, _join(self.path, name), 0)  # type: ignore[attr-defined]

    def link_fd(self, task: "Task", name: bytes, hostfd: int) -> None:
        """Name the object an open host fd holds (linkat AT_EMPTY_PATH: an O_TMPFILE file,
        or one whose old name is gone) in this directory."""
        pfd = self.host.lookup(task, AT_FDCWD, self.path, follow=False, directory=True)
        try:
            if not self.fs.writable:  # type: ignore[attr-defined]
                from snakevisor.kernel.errors import EROFS
                raise SyscallError(EROFS)
            os.link(b"%d" % hostfd, name, src_dir_fd=proc_fd_dir(), dst_dir_fd=pfd,
                    follow_symlinks=True)
        except OSError as e:
            raise SyscallError(e.errno) from None
        finally:
            os.close(pfd)

    def open_tmpfile(self, task: "Task", flags: int, mode: int) -> "File":
        return self.host.open(task, AT_FDCWD, self.path, flags, mode)

    def unlink(self, task: "Task", name: bytes) -> None:
        self.host.unlink(task, AT_FDCWD, _join(self.path, name), rmdir=False)

    def rmdir(self, task: "Task", name: bytes) -> None:
        self.host.unlink(task, AT_FDCWD, _join(self.path, name), rmdir=True)

    def rename(self, task: "Task", name: bytes, new_dir: Inode, new_name: bytes,
               flags: int) -> None:
        self.host.rename(task, AT_FDCWD, _join(self.path, name), AT_FDCWD,
                         _join(new_dir.path, new_name), flags)  # type: ignore[attr-defined]

    # -- the rest --------------------------------------------------------------------------
    def readlink(self, task: "Task") -> bytes:
        return self.host.readlink(task, AT_FDCWD, self.path)

    def open(self, task: "Task", flags: int) -> "File":
        if st_.S_ISLNK(self.mode):
            from snakevisor.kernel.errors import ELOOP
            raise SyscallError(ELOOP)
        file = self.host.open(task, AT_FDCWD, self.path, flags & ~(O_CREAT | O_EXCL), 0)
        file.attr_inode = self  # type: ignore[attr-defined]  (fchmod & co. on the fd)
        return file

    def set_times(self, task: "Task", atime_ns: int | None, mtime_ns: int | None) -> None:
        omit = (1 << 30) - 2  # UTIME_OMIT
        times = b"".join(struct.pack("<qq", *divmod(t, 1_000_000_000)) if t is not None
                         else struct.pack("<qq", 0, omit) for t in (atime_ns, mtime_ns))
        self.host.utimens(task, AT_FDCWD, self.path, times, False)

    def setattr(self, task: "Task", mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None) -> None:
        if size is not None:
            self.host.truncate(task, self.path, size)
        if mode is not None:
            self.host.chmod(task, AT_FDCWD, self.path, mode)
        if (uid, gid) != (None, None):
            self.host.chown(task, AT_FDCWD, self.path,
                            0xFFFFFFFF if uid is None else uid,
                            0xFFFFFFFF if gid is None else gid, False)

    # -- extended attributes: the host's, through an O_PATH fd of this one object ----------
    def _with_fd(self, task: "Task", fn):
        fd = self.host.lookup(task, AT_FDCWD, self.path, follow=False)
        try:
            return fn(fd)
        finally:
            os.close(fd)

    def getxattr(self, task: "Task", name: bytes) -> bytes:
        return self._with_fd(task, lambda fd: xattr_get(fd, name))

    def listxattr(self, task: "Task") -> list[bytes]:
        return [n for n in self._with_fd(task, xattr_list).split(b"\0") if n]

    def setxattr(self, task: "Task", name: bytes, value: bytes, flags: int) -> None:
        self._with_fd(task, lambda fd: xattr_change(self.host, fd, name, value, flags))

    def removexattr(self, task: "Task", name: bytes) -> None:
        self._with_fd(task, lambda fd: xattr_change(self.host, fd, name, None, 0))
