"""The sandbox's /dev: a tmpfs (as Linux's devtmpfs is) holding the emulated devices and
the usual links, never a view of the host's /dev.

Device nodes here and anywhere else in a sentry file system (mknod in a tmpfs) open
through `devices.open_device`, so only devices the sentry emulates can be reached.

/dev/pts is the sandbox's devpts instance (fsimpl/devpts.py), and /dev/ptmx a link to its
ptmx, as containers set them up.  The instance lives here, grafted at "pts", so /dev works
as one mount; mounting `DevFs.pts` at /dev/pts as well makes it a mount of its own (in
the mount table) with the same pairs.  A grafted file system cannot be removed (EBUSY,
as for a mount point).
"""
from __future__ import annotations

import os
import stat as st_
from typing import TYPE_CHECKING

from snakevisor.fsimpl.devices import DEVICES, open_device
from snakevisor.fsimpl.tmpfs import Tmpfs, TmpfsDir, TmpfsSymlink
from snakevisor.kernel.errors import EBUSY, SyscallError
from snakevisor.vfs.inode import Inode

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

#: the links every Linux /dev has (to procfs, which the sandbox mounts at /proc)
LINKS = {b"fd": b"/proc/self/fd", b"stdin": b"/proc/self/fd/0", b"stdout": b"/proc/self/fd/1",
         b"stderr": b"/proc/self/fd/2"}  # (no core: the sandbox's /proc has no kcore)
#: directories other file systems are mounted on (pts holds the devpts instance itself)
MOUNT_POINTS = (b"shm", b"mqueue")


class DeviceNode(Inode):
    """A character or block special file of a sentry file system."""

    @property
    def dev(self) -> int:  # DeviceAttrs reads st_dev from here
        return self.fs.dev

    @property
    def statfs(self):  # DeviceAttrs.statfs: fstatfs of an open node is its file system's
        return self.fs.statfs

    def open(self, task: "Task", flags: int) -> "File":
        if st_.S_ISBLK(self.mode):
            from snakevisor.kernel.errors import ENXIO, SyscallError
            raise SyscallError(ENXIO)  # no block devices in the sandbox
        return open_device(os.major(self.rdev), os.minor(self.rdev), flags, self, task)  # type: ignore[arg-type]


class DevFsRoot(TmpfsDir):
    """/dev itself: names of grafted file systems cannot be removed or replaced."""

    grafted: frozenset[bytes] = frozenset()

    def _busy(self, *names: bytes) -> None:
        if any(name in self.grafted for name in names):
            raise SyscallError(EBUSY)

    def unlink(self, task: "Task", name: bytes) -> None:
        self._busy(name)
        super().unlink(task, name)

    def rmdir(self, task: "Task", name: bytes) -> None:
        self._busy(name)
        super().rmdir(task, name)

    def rename(self, task: "Task", name: bytes, new_dir: Inode, new_name: bytes,
               flags: int) -> None:
        self._busy(name)
        if new_dir is self:
            self._busy(new_name)
        super().rename(task, name, new_dir, new_name, flags)


class DevFs(Tmpfs):
    fstype = "devtmpfs"

    def __init__(self, console: bool = True) -> None:
        """console: whether /dev/console exists (runc makes it for a terminal only)."""
        from snakevisor.fsimpl.devpts import DevPtsFs
        super().__init__(size=1 << 20, mode=0o755, source="devtmpfs")
        root = DevFsRoot(self, self._root.mode, 0, 0)
        root.ino, self._root = self._root.ino, root
        #: the sandbox's pseudo-terminals (mount it at /dev/pts to list it as a mount)
        self.pts = DevPtsFs()
        for name, spec in DEVICES.items():
            if name == "console" and not console:
                continue
            node = DeviceNode(self, spec.mode, rdev=spec.rdev)
            root.children[name.encode()] = node
        for name, target in LINKS.items():
            root.children[name] = TmpfsSymlink(self, target, 0, 0)
        for name in MOUNT_POINTS:
            sub = TmpfsDir(self, st_.S_IFDIR | 0o755, 0, 0)
            root.children[name] = sub
            root.nlink += 1
        root.children[b"pts"] = self.pts.root()
        root.nlink += 1
        root.grafted = frozenset({b"pts"})
        root.children[b"ptmx"] = TmpfsSymlink(self, b"pts/ptmx", 0, 0)
