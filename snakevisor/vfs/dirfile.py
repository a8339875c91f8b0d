"""An open directory of a sentry file system: getdents64 over the inode's entries.

The listing is taken when reading starts (offset 0) and served from that snapshot, so
offsets stay stable while other processes add or remove names (each record's d_off is
its position); seeking back to 0 takes a fresh one, as rewinddir expects.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EBADF, EINVAL, EISDIR, SyscallError
from snakevisor.vfs.file import File
from snakevisor.vfs.inode import DT_DIR

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.inode import Inode, Stat

_DIRENT64 = struct.Struct("<QqHB")  # d_ino, d_off, d_reclen, d_type, then the name


def pack_dirent64(ino: int, off: int, dtype: int, name: bytes) -> bytes:
    reclen = (_DIRENT64.size + len(name) + 1 + 7) & ~7
    return _DIRENT64.pack(ino, off, reclen, dtype) + name + bytes(reclen - _DIRENT64.size - len(name))


class DirectoryFile(File):
    """open(2) of a directory: getdents64, lseek to 0 or to a d_off, fstat."""

    def __init__(self, inode: "Inode", task: "Task", flags: int, parent_ino: int | None = None) -> None:
        super().__init__(flags)
        self.inode = inode
        self.task = task
        self.parent_ino = parent_ino if parent_ino is not None else inode.ino
        self.pos = 0
        self._listing: list[tuple[bytes, int, int]] | None = None

    def dotdot_ino(self) -> int:
        """The inode number `..` lists (a file that holds its place answers its parent now)."""
        return self.parent_ino

    def _entries(self) -> list[tuple[bytes, int, int]]:
        if self._listing is None or self.pos == 0:
            self._listing = [(b".", self.inode.ino, DT_DIR), (b"..", self.dotdot_ino(), DT_DIR)]
            self._listing += list(self.inode.entries(self.task))
        return self._listing

    def getdents(self, count: int) -> bytes:
        listing = self._entries()
        out = bytearray()
        while self.pos < len(listing):
            name, ino, dtype = listing[self.pos]
            record = pack_dirent64(ino, self.pos + 1, dtype, name)
            if len(out) + len(record) > count:
                if not out:
                    raise SyscallError(EINVAL)  # the buffer cannot hold one record
                break
            out += record
            self.pos += 1
        self.inode.touch(atime=True)
        return bytes(out)

    def lseek(self, offset: int, whence: int) -> int:
        if whence == 0 and offset >= 0:
            self.pos = offset
            if offset == 0:
                self._listing = None
            return offset
        if whence == 1 and self.pos + offset >= 0:
            self.pos += offset
            return self.pos
        raise SyscallError(EINVAL)

    def read(self, task: "Task", count: int) -> bytes:
        raise SyscallError(EISDIR)

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        raise SyscallError(EISDIR)

    def write(self, task: "Task", data: bytes) -> int:
        raise SyscallError(EBADF)  # a directory is never open for writing

    def stat(self) -> "Stat":  # type: ignore[override]
        return self.inode.stat()

    def fsync(self) -> None:
        pass
