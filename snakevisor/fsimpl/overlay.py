"""The overlay root: the container's root read-only below, a sentry tmpfs above, so the
application's writes never reach the host (`--overlay2 root:memory`).

Lookups see the upper layer first; an upper whiteout (a 0:0 character device, as Linux's
overlayfs uses) hides a lower name, an opaque upper directory hides the whole lower one.
Changing anything copies it (and its parent directories) up first; removing a name that
exists below leaves a whiteout.  Renaming a directory that has a lower part answers
EXDEV, as overlayfs does without redirect_dir (mv then copies).
"""
from __future__ import annotations

import os
import stat as st_
from typing import TYPE_CHECKING, Iterable

from snakevisor.fsimpl.tmpfs import Tmpfs
from snakevisor.kernel.errors import EEXIST, ENOENT, ENOTEMPTY, EXDEV, SyscallError
from snakevisor.vfs.inode import Filesystem, Inode, Stat

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

O_ACCMODE, O_TRUNC, O_WRONLY = 0o3, 0o1000, 1
WHITEOUT = st_.S_IFCHR  # with rdev 0
CHUNK = 1 << 20


def _is_whiteout(node: Inode | None) -> bool:
    return node is not None and st_.S_ISCHR(node.mode) and node.rdev == 0


class OverlayFs(Filesystem):
    fstype = "overlay"

    def __init__(self, lower: Filesystem, upper: Tmpfs) -> None:
        super().__init__("overlay", "lowerdir=/,upperdir=memory")
        self.lower = lower
        self.upper = upper
        self._root = OverlayNode(self, None, b"", upper.root(), lower.root())

    def root(self) -> Inode:
        return self._root

    def statfs(self) -> bytes:
        return self.upper.statfs()


class OverlayNode(Inode):
    """One merged object: its upper and/or lower inode."""

    def __init__(self, fs: OverlayFs, parent: "OverlayNode | None", name: bytes,
                 upper: Inode | None, lower: Inode | None) -> None:
        top = upper if upper is not None else lower
        assert top is not None
        super().__init__(fs, top.mode, top.uid, top.gid, top.rdev, ino=top.ino)
        self.parent, self.name = parent, name
        self.upper, self.lower = upper, lower
        self._sync()

    @property
    def top(self) -> Inode:
        return self.upper if self.upper is not None else self.lower  # type: ignore[return-value]

    def _sync(self) -> None:
        top = self.top
        self.mode, self.uid, self.gid, self.rdev, self.ino = top.mode, top.uid, top.gid, top.rdev, top.ino
        self.nlink = top.nlink

    def stat(self) -> Stat:
        st = self.top.stat()
        self._sync()
        return st

    def size(self) -> int:
        return self.top.size()

    @property
    def _opaque(self) -> bool:
        return bool(getattr(self.upper, "opaque", False))

    def _fresh(self, task: "Task") -> None:
        """Another node of the same object (an open directory's, a dirfd's) may have copied
        it up since this one was made: see the upper layer it now has."""
        if self.upper is None and self.parent is not None:
            self.parent._fresh(task)
            above = self.parent.upper
            up = above.lookup(task, self.name) if above is not None and above.is_dir else None
            if up is not None and not _is_whiteout(up):
                self.upper = up
                self._sync()

    # -- reading ------------------------------------------------------------------------------
    def lookup(self, task: "Task", name: bytes) -> Inode | None:
        self._fresh(task)
        up = self.upper.lookup(task, name) if self.upper is not None and self.upper.is_dir else None
        if _is_whiteout(up):
            return None
        lo = None
        if self.lower is not None and self.lower.is_dir and not self._opaque:
            lo = self.lower.lookup(task, name)
        if up is None and lo is None:
            return None
        if up is not None and lo is not None and not (up.is_dir and lo.is_dir):
            lo = None  # a non-directory on top hides whatever was below
        return OverlayNode(self.fs, self, name, up, lo)  # type: ignore[arg-type]

    def entries(self, task: "Task") -> Iterable[tuple[bytes, int, int]]:
        out: dict[bytes, tuple[bytes, int, int]] = {}
        hidden: set[bytes] = set()
        self._fresh(task)
        if self.upper is not None and self.upper.is_dir:
            for name, ino, dtype in self.upper.entries(task):
                node = self.upper.lookup(task, name)
                if _is_whiteout(node):
                    hidden.add(name)
                else:
                    out[name] = (name, ino, dtype)
        if self.lower is not None and self.lower.is_dir and not self._opaque:
            for name, ino, dtype in self.lower.entries(task):
                if name not in out and name not in hidden:
                    out[name] = (name, ino, dtype)
        return list(out.values())

    def readlink(self, task: "Task") -> bytes:
        return self.top.readlink(task)

    def open(self, task: "Task", flags: int) -> "File":
        if self.is_dir:
            from snakevisor.vfs.dirfile import DirectoryFile
            return DirectoryFile(self, task, flags)
        if flags & O_ACCMODE or flags & O_TRUNC:
            self.copy_up(task)
        file = self.top.open(task, flags)
        file.attr_inode = self  # type: ignore[attr-defined]  (fchmod & co. on the fd)
        return file

    # -- copy-up ------------------------------------------------------------------------------
    def copy_up(self, task: "Task") -> Inode:
        """Make this object exist in the upper layer (parents first); returns the upper."""
        if self.upper is not None:
            return self.upper
        assert self.parent is not None and self.lower is not None
        dir_up = self.parent.copy_up(task)
        lower = self.lower
        st = lower.stat()
        kind = st_.S_IFMT(st.st_mode)
        existing = dir_up.lookup(task, self.name)
        if _is_whiteout(existing):
            dir_up.unlink(task, self.name)
        elif existing is not None:  # copied up meanwhile through another node of this object
            self.upper = existing
            self._sync()
            return existing
        if kind == st_.S_IFDIR:
            up = dir_up.mkdir(task, self.name, st.st_mode & 0o7777)
        elif kind == st_.S_IFLNK:
            up = dir_up.symlink(task, self.name, lower.readlink(task))
        elif kind == st_.S_IFREG:
            up = dir_up.create(task, self.name, st.st_mode & 0o7777)
            _copy_data(task, lower, up)
        else:
            up = dir_up.mknod(task, self.name, st.st_mode, st.st_rdev)
        up.mode = st.st_mode
        up.uid, up.gid = st.st_uid, st.st_gid
        up.atime_ns, up.mtime_ns = st.st_atime_ns, st.st_mtime_ns
        for name in lower.listxattr(task):  # attributes travel with the object
            try:
                up.setxattr(task, name, lower.getxattr(task, name), 0)
            except SyscallError:
                pass  # a namespace the upper layer does not keep
        self.upper = up
        self._sync()
        return up

    # -- changing names ---------------------------------------------------------------------
    def _prepare_name(self, task: "Task", name: bytes) -> Inode:
        """The upper directory, with a whiteout at `name` cleared so it can be reused."""
        up = self.copy_up(task)
        if self.lookup(task, name) is not None:
            raise SyscallError(EEXIST)
        existing = up.lookup(task, name)
        if _is_whiteout(existing):
            up.unlink(task, name)
        return up

    def create(self, task: "Task", name: bytes, mode: int) -> Inode:
        up = self._prepare_name(task, name).create(task, name, mode)
        return OverlayNode(self.fs, self, name, up, None)  # type: ignore[arg-type]

    def mkdir(self, task: "Task", name: bytes, mode: int) -> Inode:
        below = self.lower is not None and self.lower.is_dir and \
            self.lower.lookup(task, name) is not None
        up = self._prepare_name(task, name).mkdir(task, name, mode)
        if below:
            up.opaque = True  # type: ignore[attr-defined]  (a new dir over a removed one)
        return OverlayNode(self.fs, self, name, up, None)  # type: ignore[arg-type]

    def mknod(self, task: "Task", name: bytes, mode: int, rdev: int) -> Inode:
        up = self._prepare_name(task, name).mknod(task, name, mode, rdev)
        return OverlayNode(self.fs, self, name, up, None)  # type: ignore[arg-type]

    def symlink(self, task: "Task", name: bytes, target: bytes) -> Inode:
        up = self._prepare_name(task, name).symlink(task, name, target)
        return OverlayNode(self.fs, self, name, up, None)  # type: ignore[arg-type]

    def link(self, task: "Task", name: bytes, inode: Inode) -> None:
        if not isinstance(inode, OverlayNode):
            raise SyscallError(EXDEV)
        target = inode.copy_up(task)
        self._prepare_name(task, name).link(task, name, target)

    def _remove(self, task: "Task", name: bytes, rmdir: bool) -> None:
        child = self.lookup(task, name)
        if child is None:
            raise SyscallError(ENOENT)
        assert isinstance(child, OverlayNode)
        if rmdir and child.is_dir and list(child.entries(task)):
            raise SyscallError(ENOTEMPTY)
        up = self.copy_up(task)
        if child.upper is not None:
            if rmdir and child.upper.is_dir:
                for entry, _ino, _type in list(child.upper.entries(task)):
                    child.upper.unlink(task, entry)  # only whiteouts are left in it
                up.rmdir(task, name)
            elif rmdir:
                up.rmdir(task, name)  # ENOTDIR from the upper layer
            else:
                up.unlink(task, name)
        elif rmdir and not child.is_dir:
            from snakevisor.kernel.errors import ENOTDIR
            raise SyscallError(ENOTDIR)
        elif not rmdir and child.is_dir:
            from snakevisor.kernel.errors import EISDIR
            raise SyscallError(EISDIR)
        if child.lower is not None:
            up.mknod(task, name, WHITEOUT, 0)

    def unlink(self, task: "Task", name: bytes) -> None:
        self._remove(task, name, rmdir=False)

    def rmdir(self, task: "Task", name: bytes) -> None:
        self._remove(task, name, rmdir=True)

    def rename(self, task: "Task", name: bytes, new_dir: Inode, new_name: bytes,
               flags: int) -> None:
        if not isinstance(new_dir, OverlayNode):
            raise SyscallError(EXDEV)
        child = self.lookup(task, name)
        if child is None:
            raise SyscallError(ENOENT)
        assert isinstance(child, OverlayNode)
        if child.is_dir and child.lower is not None:
            raise SyscallError(EXDEV)  # no redirect_dir: the caller copies instead
        target = new_dir.lookup(task, new_name)
        child.copy_up(task)
        dst = new_dir.copy_up(task)
        existing = dst.lookup(task, new_name)
        if _is_whiteout(existing):
            dst.unlink(task, new_name)
        elif existing is None and target is not None:
            assert isinstance(target, OverlayNode)
            target.copy_up(task)  # a lower-only target: replace its upper copy
        self.copy_up(task).rename(task, name, dst, new_name, flags)
        if child.lower is not None:
            self.copy_up(task).mknod(task, name, WHITEOUT, 0)

    # -- attributes ------------------------------------------------------------------------
    def setattr(self, task: "Task", mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None) -> None:
        self.copy_up(task).setattr(task, mode, uid, gid, size)
        self._sync()

    def set_times(self, task: "Task", atime_ns: int | None, mtime_ns: int | None) -> None:
        self.copy_up(task).set_times(task, atime_ns, mtime_ns)

    def open_tmpfile(self, task: "Task", flags: int, mode: int) -> "File":
        """O_TMPFILE in the upper layer; the file's overlay node is what linkat names."""
        file = self.copy_up(task).open_tmpfile(task, flags, mode)
        node = OverlayNode(self.fs, self, b"", file.inode, None)  # type: ignore[arg-type, attr-defined]
        file.attr_inode = node  # type: ignore[attr-defined]
        return file

    # -- extended attributes: read from the top layer, changed after a copy-up ----------------
    def getxattr(self, task: "Task", name: bytes) -> bytes:
        return self.top.getxattr(task, name)

    def listxattr(self, task: "Task") -> list[bytes]:
        return self.top.listxattr(task)

    def setxattr(self, task: "Task", name: bytes, value: bytes, flags: int) -> None:
        self.copy_up(task).setxattr(task, name, value, flags)

    def removexattr(self, task: "Task", name: bytes) -> None:
        self.getxattr(task, name)  # ENODATA before any copy-up
        self.copy_up(task).removexattr(task, name)


def _copy_data(task: "Task", lower: Inode, upper: Inode) -> None:
    """A regular file's bytes, from the lower layer into the new upper file."""
    src = lower.open(task, os.O_RDONLY)
    dst = upper.open(task, O_WRONLY)
    try:
        offset = 0
        while True:
            data = src.pread(task, CHUNK, offset)
            if not data:
                break
            dst.pwrite(task, data, offset)
            offset += len(data)
    finally:
        src.release()
        dst.release()
