"""The overlay root: the container's root read-only below, a sentry tmpfs above, so the
application's writes never reach the host (`--overlay2 root:memory`).

Lookups see the upper layer first; an upper whiteout (a 0:0 character device, as Linux's
overlayfs uses) hides a lower name, an opaque upper directory hides the whole lower one.
Changing anything copies it (and its parent directories) up first.  Whenever a name leaves
a merged directory (unlink, rmdir, rename away) and the lower directory still has it, a
whiteout is left, whatever the upper layer held there (a copy-up, a file made over an
earlier whiteout).  A directory made in, or moved into, a merged directory is opaque, so it
never merges with a lower one of the same name.  Renaming a directory that has a lower
part answers EXDEV, as overlayfs does without redirect_dir (mv then copies).

Identity is the mount's, as overlayfs with xino gives it: every object reports the
overlay's one st_dev, and st_ino is the lower object's number, kept across copy-up (the
upper copy remembers its origin, as overlayfs's "origin" xattr) except for a file with
several lower links, whose copy is a file of its own; objects made in the upper layer get
their upper number with a high bit set (UPPER_INO), a range lower file systems do not use.
d_ino in listings and fstat on open files agree with stat.
"""
from __future__ import annotations

import os
import stat as st_
import struct
from typing import TYPE_CHECKING, Iterable

from snakevisor.fsimpl.tmpfs import RENAME_EXCHANGE, RENAME_NOREPLACE, Tmpfs
from snakevisor.kernel.errors import (EEXIST, EINVAL, EISDIR, ENOENT, ENOTDIR, ENOTEMPTY,
                                      EXDEV, SyscallError)
from snakevisor.vfs.inode import Filesystem, Inode, Stat

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

O_ACCMODE, O_TRUNC, O_WRONLY = 0o3, 0o1000, 1
WHITEOUT = st_.S_IFCHR  # with rdev 0
CHUNK = 1 << 20
OVERLAYFS_SUPER_MAGIC = 0x794C7630
#: st_ino of an object made in the upper layer: its upper number with this bit set, a range
#: of its own (overlayfs's xino puts a layer's id in high bits likewise).  Bit 52: far above
#: any number ext4, xfs, btrfs or tmpfs hand out, and still exact as a double (JavaScript
#: reads st_ino as one: with bit 63 every upper file would look like one file to it).
UPPER_INO = 1 << 52
#: struct statfs: type bsize blocks bfree bavail files ffree fsid[2] namelen frsize flags spare[4]
_STATFS = struct.Struct("<qqQQQQQiiqqq4q")
#: offsets in struct statx of stx_nlink (u32), stx_ino (u64), stx_dev_major/minor (u32 each)
_STX_NLINK, _STX_INO, _STX_DEV = 16, 32, 136


def _is_whiteout(node: Inode | None) -> bool:
    return node is not None and st_.S_ISCHR(node.mode) and node.rdev == 0


def _is_opaque(node: Inode | None) -> bool:
    return bool(getattr(node, "opaque", False))


def _number(upper: Inode | None, lower: Inode | None) -> int:
    """st_ino of a merged object: where it came from below (kept across copy-up), else its
    upper number tagged so it cannot meet a lower one."""
    origin = getattr(upper, "overlay_origin", None)
    if origin is not None:
        return origin
    if lower is not None:
        return lower.ino
    assert upper is not None
    return upper.ino | UPPER_INO


class OverlayFs(Filesystem):
    fstype = "overlay"

    def __init__(self, lower: Filesystem, upper: Tmpfs) -> None:
        super().__init__("overlay", "lowerdir=/,upperdir=memory")
        # One anonymous device (major 0) for everything on the mount, as overlayfs with
        # xino: the minor stays below 256, what the mount table line reports for it.
        self.dev = os.makedev(0, self.dev % 0xFF + 1)
        self.lower = lower
        self.upper = upper
        self._root = OverlayNode(self, None, b"", upper.root(), lower.root())

    def root(self) -> Inode:
        return self._root

    def statfs(self) -> bytes:
        """The upper layer's space, as overlayfs reports, under overlay's magic and an fsid
        made of the mount's device number."""
        fields = list(_STATFS.unpack(self.upper.statfs()))
        fields[0] = OVERLAYFS_SUPER_MAGIC
        fields[7], fields[8] = self.dev & 0x7FFFFFFF, 0
        return _STATFS.pack(*fields)


class OverlayNode(Inode):
    """One merged object: its upper and/or lower inode."""

    def __init__(self, fs: OverlayFs, parent: "OverlayNode | None", name: bytes,
                 upper: Inode | None, lower: Inode | None) -> None:
        top = upper if upper is not None else lower
        assert top is not None
        super().__init__(fs, top.mode, top.uid, top.gid, top.rdev, ino=_number(upper, lower))
        self.parent, self.name = parent, name
        self.upper, self.lower = upper, lower
        self._sync()

    @property
    def top(self) -> Inode:
        return self.upper if self.upper is not None else self.lower  # type: ignore[return-value]

    def _sync(self) -> None:
        top = self.top
        self.mode, self.uid, self.gid, self.rdev = top.mode, top.uid, top.gid, top.rdev
        self.ino = _number(self.upper, self.lower)
        self.nlink = self._nlink(top.nlink)

    def _nlink(self, layer_nlink: int) -> int:
        """A merged directory's links are not counted (overlayfs answers 1, which tells
        find not to trust it); everything else has its layer's count."""
        merged = self.upper is not None and self.lower is not None and self.is_dir
        return 1 if merged else layer_nlink

    def present(self, st: "Stat | os.stat_result") -> Stat:
        """A layer's attributes as the overlay reports them: its device, this object's
        number, a merged directory's link count."""
        return Stat(st.st_mode, self.ino, self.fs.dev, self._nlink(st.st_nlink), st.st_uid,
                    st.st_gid, st.st_size, st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns,
                    st.st_blksize, st.st_blocks, st.st_rdev)

    def present_statx(self, raw: bytes) -> bytes:
        """A layer's struct statx with the overlay's device, number and link count."""
        nlink = self._nlink(int.from_bytes(raw[_STX_NLINK:_STX_NLINK + 4], "little"))
        dev = self.fs.dev
        return b"".join((raw[:_STX_NLINK], struct.pack("<I", nlink),
                         raw[_STX_NLINK + 4:_STX_INO], struct.pack("<Q", self.ino),
                         raw[_STX_INO + 8:_STX_DEV],
                         struct.pack("<II", os.major(dev), os.minor(dev)),
                         raw[_STX_DEV + 8:]))

    def stat(self) -> Stat:
        st = self.top.stat()
        self._sync()
        return self.present(st)

    def size(self) -> int:
        return self.top.size()

    @property
    def _opaque(self) -> bool:
        return _is_opaque(self.upper)

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

    def _lower_dir(self) -> Inode | None:
        """The lower directory whose names show through this one (None: an upper-only or
        opaque directory, whose names the lower layer has no say in)."""
        if self.lower is not None and self.lower.is_dir and not self._opaque:
            return self.lower
        return None

    def _below(self, task: "Task", name: bytes) -> bool:
        """Does the lower layer still have `name` here?  Then a whiteout must hide it once
        the name goes, whatever the upper layer holds at it now."""
        self._fresh(task)
        lower = self._lower_dir()
        return lower is not None and lower.lookup(task, name) is not None

    def _upper_child(self, task: "Task", name: bytes) -> Inode | None:
        up = self.upper
        return up.lookup(task, name) if up is not None and up.is_dir else None

    # -- reading ------------------------------------------------------------------------------
    def lookup(self, task: "Task", name: bytes) -> Inode | None:
        self._fresh(task)
        up = self._upper_child(task, name)
        if _is_whiteout(up):
            return None
        lower = self._lower_dir()
        lo = lower.lookup(task, name) if lower is not None else None
        if up is None and lo is None:
            return None
        if up is not None and lo is not None and \
                not (up.is_dir and lo.is_dir and not _is_opaque(up)):
            lo = None  # a non-directory or an opaque directory on top hides what was below
        return OverlayNode(self.fs, self, name, up, lo)  # type: ignore[arg-type]

    def entries(self, task: "Task") -> Iterable[tuple[bytes, int, int]]:
        out: dict[bytes, tuple[bytes, int, int]] = {}
        hidden: set[bytes] = set()
        self._fresh(task)
        lower = self._lower_dir()
        if self.upper is not None and self.upper.is_dir:
            for name, _ino, dtype in self.upper.entries(task):
                node = self.upper.lookup(task, name)
                if _is_whiteout(node):
                    hidden.add(name)
                elif node is not None:  # d_ino is what stat says (the origin's number)
                    out[name] = (name, _number(node, None), dtype)
        if lower is not None:
            for name, ino, dtype in lower.entries(task):
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
        self._answer_as_overlay(file)
        return file

    def _answer_as_overlay(self, file: "File") -> None:
        """fstat (and statx) of the layer's open file report the overlay's identity, as
        stat of its path does (the layer file's own answer is kept for the other fields);
        fstatfs reports the overlay, as statfs of its path does."""
        layer_stat = file.stat
        file.stat = lambda: self.present(layer_stat())  # type: ignore[method-assign, assignment]
        file.statfs = self.fs.statfs  # type: ignore[attr-defined]
        layer_statx = getattr(file, "statx", None)
        if layer_statx is not None:
            file.statx = lambda flags, mask: \
                self.present_statx(layer_statx(flags, mask))  # type: ignore[attr-defined]

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
        if kind == st_.S_IFDIR or st.st_nlink == 1:
            # st_ino stays the lower's; not for one of several lower links, whose copy is
            # now a file of its own (overlayfs without index: tar and cp -a must not take
            # the copy and the remaining links for one file)
            up.overlay_origin = lower.ino  # type: ignore[attr-defined]
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

    def _made(self, name: bytes, up: Inode) -> Inode:
        """The merged node of an object just made in the upper layer."""
        return OverlayNode(self.fs, self, name, up, None)  # type: ignore[arg-type]

    def create(self, task: "Task", name: bytes, mode: int) -> Inode:
        return self._made(name, self._prepare_name(task, name).create(task, name, mode))

    def mkdir(self, task: "Task", name: bytes, mode: int) -> Inode:
        merged = self._lower_dir() is not None
        up = self._prepare_name(task, name).mkdir(task, name, mode)
        if merged:  # overlayfs: a new directory in a merged one never merges with one below
            up.opaque = True  # type: ignore[attr-defined]
        return self._made(name, up)

    def mknod(self, task: "Task", name: bytes, mode: int, rdev: int) -> Inode:
        return self._made(name,
                          self._prepare_name(task, name).mknod(task, name, mode, rdev))

    def symlink(self, task: "Task", name: bytes, target: bytes) -> Inode:
        return self._made(name,
                          self._prepare_name(task, name).symlink(task, name, target))

    def link(self, task: "Task", name: bytes, inode: Inode) -> None:
        if not isinstance(inode, OverlayNode):
            raise SyscallError(EXDEV)
        target = inode.copy_up(task)
        self._prepare_name(task, name).link(task, name, target)

    def _whiteout_if_below(self, task: "Task", name: bytes) -> None:
        """`name` has just left this directory's upper layer: hide the lower one, if any."""
        if self._below(task, name):
            self.copy_up(task).mknod(task, name, WHITEOUT, 0)

    def _remove(self, task: "Task", name: bytes, rmdir: bool) -> None:
        child = self.lookup(task, name)
        if child is None:
            raise SyscallError(ENOENT)
        assert isinstance(child, OverlayNode)
        if rmdir and not child.is_dir:
            raise SyscallError(ENOTDIR)
        if not rmdir and child.is_dir:
            raise SyscallError(EISDIR)
        if rmdir:
            child._empty_for_removal(task)
        up = self.copy_up(task)
        if child.upper is not None:
            (up.rmdir if rmdir else up.unlink)(task, name)
        self._whiteout_if_below(task, name)

    def _empty_for_removal(self, task: "Task") -> None:
        """A directory about to be removed or replaced: ENOTEMPTY if the merged view has
        names, else the whiteouts its upper part holds are dropped."""
        if list(self.entries(task)):
            raise SyscallError(ENOTEMPTY)
        if self.upper is not None:
            for entry, _ino, _type in list(self.upper.entries(task)):
                self.upper.unlink(task, entry)  # only whiteouts are left in it

    def unlink(self, task: "Task", name: bytes) -> None:
        self._remove(task, name, rmdir=False)

    def rmdir(self, task: "Task", name: bytes) -> None:
        self._remove(task, name, rmdir=True)

    def rename(self, task: "Task", name: bytes, new_dir: Inode, new_name: bytes,
               flags: int) -> None:
        """overlayfs's rename without redirect_dir: both objects are copied up and renamed
        in the upper layer; the old name is whited out when the lower layer has it; a
        directory that arrives in a merged directory is made opaque; a directory with a
        lower part cannot move (EXDEV: mv copies it instead)."""
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
            raise SyscallError(EINVAL)  # RENAME_WHITEOUT: overlayfs does not offer it
        if not isinstance(new_dir, OverlayNode):
            raise SyscallError(EXDEV)
        exchange = bool(flags & RENAME_EXCHANGE)
        child = self.lookup(task, name)
        if child is None:
            raise SyscallError(ENOENT)
        target = new_dir.lookup(task, new_name)
        assert isinstance(child, OverlayNode) and isinstance(target, (OverlayNode, type(None)))
        if exchange and target is None:
            raise SyscallError(ENOENT)
        if flags & RENAME_NOREPLACE and target is not None:
            raise SyscallError(EEXIST)
        for moving in (child, target if exchange else None):
            if moving is not None and moving.is_dir and moving.lower is not None:
                raise SyscallError(EXDEV)  # no redirect_dir: the caller copies instead
        if target is not None and target.is_dir and not exchange and child.is_dir:
            target._empty_for_removal(task)
        child.copy_up(task)
        if exchange:
            target.copy_up(task)  # type: ignore[union-attr]
        src, dst = self.copy_up(task), new_dir.copy_up(task)
        cleared = False
        if _is_whiteout(dst.lookup(task, new_name)):
            dst.unlink(task, new_name)
            cleared = True
        try:
            src.rename(task, name, dst, new_name, flags)
        except SyscallError:
            if cleared:
                dst.mknod(task, new_name, WHITEOUT, 0)
            raise
        if child.is_dir and new_dir._lower_dir() is not None:
            child.upper.opaque = True  # type: ignore[union-attr]
        if exchange and target.is_dir and self._lower_dir() is not None:  # type: ignore[union-attr]
            target.upper.opaque = True  # type: ignore[union-attr]
        if not exchange:
            self._whiteout_if_below(task, name)

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
        node._answer_as_overlay(file)
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
