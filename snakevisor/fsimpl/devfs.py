"""The sandbox's /dev: a tmpfs (as Linux's devtmpfs is) holding the emulated devices and
the usual links, never a view of the host's /dev.

Device nodes here and anywhere else in a sentry file system (mknod in a tmpfs) open
through `devices.open_device`, so only devices the sentry emulates can be reached.
"""
from __future__ import annotations

import os
import stat as st_
from typing import TYPE_CHECKING

from snakevisor.fsimpl.devices import DEVICES, open_device
from snakevisor.fsimpl.tmpfs import Tmpfs, TmpfsDir, TmpfsSymlink
from snakevisor.vfs.inode import Inode

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

#: the links every Linux /dev has (to procfs, which the sandbox mounts at /proc)
LINKS = {b"fd": b"/proc/self/fd", b"stdin": b"/proc/self/fd/0", b"stdout": b"/proc/self/fd/1",
         b"stderr": b"/proc/self/fd/2", b"core": b"/proc/kcore"}
#: directories other file systems are mounted on
MOUNT_POINTS = (b"shm", b"pts", b"mqueue")


class DeviceNode(Inode):
    """A character or block special file of a sentry file system."""

    @property
    def dev(self) -> int:  # DeviceAttrs reads st_dev from here
        return self.fs.dev

    def open(self, task: "Task", flags: int) -> "File":
        if st_.S_ISBLK(self.mode):
            from snakevisor.kernel.errors import ENXIO, SyscallError
            raise SyscallError(ENXIO)  # no block devices in the sandbox
        return open_device(os.major(self.rdev), os.minor(self.rdev), flags, self, task)  # type: ignore[arg-type]


class DevFs(Tmpfs):
    fstype = "devtmpfs"

    def __init__(self) -> None:
        super().__init__(size=1 << 20, mode=0o755, source="devtmpfs")
        root: TmpfsDir = self.root()  # type: ignore[assignment]
        for name, spec in DEVICES.items():
            node = DeviceNode(self, spec.mode, rdev=spec.rdev)
            root.children[name.encode()] = node
        for name, target in LINKS.items():
            root.children[name] = TmpfsSymlink(self, target, 0, 0)
        for name in MOUNT_POINTS:
            sub = TmpfsDir(self, st_.S_IFDIR | 0o755, 0, 0)
            root.children[name] = sub
            root.nlink += 1
        root.children[b"ptmx"] = TmpfsSymlink(self, b"pts/ptmx", 0, 0)
