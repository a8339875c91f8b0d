"""Dentries, mounts and mount namespaces: where file systems appear in the sandbox's tree.

A Dentry is a name in a directory of one file system (its parent chain gives the path);
a Mount places a file system's root dentry on a dentry of another mount; a
MountNamespace is the tree of mounts a process sees.  A place in that tree is a
VirtualPath (mount, dentry), Linux's struct path.
"""
from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

from snakevisor.kernel.errors import EBUSY, EINVAL, SyscallError

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.inode import Filesystem, Inode

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21

_mount_ids = itertools.count(21)  # Linux numbers the first mounts in the low twenties


class Dentry:
    """A named link to an inode.  Children are cached by name; a file system whose objects
    can change behind our back (the gofer's) revalidates them on each walk."""

    __slots__ = ("name", "parent", "inode", "children", "mount_count", "__weakref__")

    def __init__(self, name: bytes, parent: "Dentry | None", inode: "Inode") -> None:
        self.name = name
        self.parent = parent
        self.inode = inode
        self.children: dict[bytes, Dentry] = {}
        self.mount_count = 0  #: mounts placed on this dentry, in any namespace

    def child(self, task: "Task", name: bytes) -> "Dentry | None":
        """The dentry for `name` in this directory (a lookup on a cache miss)."""
        cached = self.children.get(name)
        inode = self.inode.lookup(task, name)
        if inode is None:
            if cached is not None and not cached.mount_count:
                del self.children[name]
            return None
        if cached is not None and cached.inode is inode:
            return cached
        dentry = Dentry(name, self, inode)
        if cached is None or not cached.mount_count:
            self.children[name] = dentry
        return dentry

    def forget(self, name: bytes) -> None:
        """A name was removed or renamed away (a mount on it stays reachable by its Mount)."""
        cached = self.children.get(name)
        if cached is not None and not cached.mount_count:
            del self.children[name]


class Mount:
    """One file system instance placed in a namespace's tree."""

    __slots__ = ("fs", "root", "parent", "mountpoint", "flags", "id", "ns")

    def __init__(self, fs: "Filesystem", root: Dentry, flags: int = 0) -> None:
        self.fs = fs
        self.root = root
        self.parent: Mount | None = None
        self.mountpoint: Dentry | None = None
        self.flags = flags
        self.id = next(_mount_ids)
        self.ns: MountNamespace | None = None

    @property
    def readonly(self) -> bool:
        return bool(self.flags & MS_RDONLY)


class VirtualPath(NamedTuple):
    """A place in the tree: a dentry as seen through a mount."""

    mount: Mount
    dentry: Dentry


class MountNamespace:
    """The mounts one group of processes sees, and where each sits."""

    def __init__(self, root_fs: "Filesystem", flags: int = 0) -> None:
        root = Dentry(b"/", None, root_fs.root())
        self.root = Mount(root_fs, root, flags)
        self.root.ns = self
        #: (parent mount id, mountpoint dentry) -> the mount on top there
        self._on: dict[tuple[int, int], Mount] = {}
        self.mounts: list[Mount] = [self.root]

    def mount(self, fs: "Filesystem", at: VirtualPath, flags: int = 0) -> Mount:
        """Place fs's root on `at` (a directory); it hides what was there."""
        if not at.dentry.inode.is_dir:
            raise SyscallError(EINVAL)
        mnt = Mount(fs, Dentry(b"/", None, fs.root()), flags)
        mnt.parent, mnt.mountpoint, mnt.ns = at.mount, at.dentry, self
        at.dentry.mount_count += 1
        self._on[(at.mount.id, id(at.dentry))] = mnt
        self.mounts.append(mnt)
        return mnt

    def umount(self, mnt: Mount) -> None:
        if mnt is self.root or any(m.parent is mnt for m in self.mounts):
            raise SyscallError(EBUSY)
        assert mnt.parent is not None and mnt.mountpoint is not None
        key = (mnt.parent.id, id(mnt.mountpoint))
        if self._on.get(key) is mnt:
            del self._on[key]
        mnt.mountpoint.mount_count -= 1
        self.mounts.remove(mnt)

    def mounted_on(self, path: VirtualPath) -> Mount | None:
        """The mount whose root covers this place, if any (only the top one)."""
        if not path.dentry.mount_count:
            return None
        return self._on.get((path.mount.id, id(path.dentry)))

    def step_down(self, path: VirtualPath) -> VirtualPath:
        """Follow mounts stacked on a place to the top one's root (Linux's follow_mount)."""
        while True:
            mnt = self.mounted_on(path)
            if mnt is None:
                return path
            path = VirtualPath(mnt, mnt.root)

    def step_up(self, path: VirtualPath) -> VirtualPath:
        """From a mount's root to the place it is mounted on (for `..`)."""
        while path.dentry is path.mount.root and path.mount.parent is not None:
            assert path.mount.mountpoint is not None
            path = VirtualPath(path.mount.parent, path.mount.mountpoint)
        return path

    def path_of(self, path: VirtualPath, root: VirtualPath | None = None) -> bytes:
        """The absolute path of a place as seen from `root` (getcwd, /proc/PID/fd links)."""
        root = root or VirtualPath(self.root, self.root.root)
        parts: list[bytes] = []
        while True:
            if path.dentry is root.dentry and path.mount is root.mount:
                break
            if path.dentry is path.mount.root:
                if path.mount.parent is None:
                    break  # outside the process's root: Linux shows it from the real root
                assert path.mount.mountpoint is not None
                path = VirtualPath(path.mount.parent, path.mount.mountpoint)
                continue
            parts.append(path.dentry.name)
            assert path.dentry.parent is not None
            path = VirtualPath(path.mount, path.dentry.parent)
        return b"/" + b"/".join(reversed(parts))
