"""Building blocks for file systems whose contents the sentry computes (procfs, sysfs).

A GeneratedFile's bytes come from a function of the reading task, taken once at open (so a
reader sees one consistent snapshot, as with Linux's seq_file); a DynamicDir lists and
looks up children through functions (a process directory appears while the process
lives); a GeneratedLink's target is computed too, and may be a *magic* link that jumps to
a place rather than naming a path (/proc/PID/exe, cwd, fd/N).
"""
from __future__ import annotations

import stat as st_
import struct
from typing import TYPE_CHECKING, Callable, Iterable

from snakevisor.kernel.errors import EACCES, EINVAL, EISDIR, SyscallError
from snakevisor.vfs.file import File, default_llseek
from snakevisor.vfs.inode import Filesystem, Inode, Stat, dtype_of

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

O_ACCMODE, O_WRONLY, O_RDWR = 0o3, 0o1, 0o2


class SyntheticFs(Filesystem):
    """A file system of computed objects; `magic` is what statfs reports (PROC_SUPER_MAGIC...)."""

    def __init__(self, fstype: str, magic: int, source: str | None = None) -> None:
        super().__init__(source or fstype, "rw,nosuid,nodev,noexec,relatime")
        self.fstype = fstype
        self.magic = magic
        self.root_dir: Inode | None = None

    def root(self) -> Inode:
        assert self.root_dir is not None
        return self.root_dir

    def statfs(self) -> bytes:
        return struct.pack("<qqQQQQQiiqqq4q", self.magic, 4096, 0, 0, 0, 0, 0, 0, 0, 255,
                           4096, 0x2E, 0, 0, 0, 0)  # ST_NOSUID|NODEV|NOEXEC|RELATIME


class GeneratedFile(Inode):
    """A read-mostly file: `content(task)` at open; `write(task, data)` if it is writable."""

    def __init__(self, fs: Filesystem, content: Callable[["Task"], bytes], mode: int = 0o444,
                 write: Callable[["Task", bytes], None] | None = None, uid: int = 0,
                 gid: int = 0, ino: int | None = None) -> None:
        super().__init__(fs, st_.S_IFREG | mode, uid, gid, ino=ino)
        self.content = content
        self.writer = write

    def open(self, task: "Task", flags: int) -> File:
        if flags & O_ACCMODE in (O_WRONLY, O_RDWR) and self.writer is None:
            raise SyscallError(EACCES)
        return SnapshotFile(self, task, flags)


class SnapshotFile(File):
    """An open GeneratedFile: reads come from the snapshot taken at open."""

    def __init__(self, inode: GeneratedFile, task: "Task", flags: int) -> None:
        super().__init__(flags)
        self.inode = inode
        self.data = inode.content(task) if flags & O_ACCMODE != O_WRONLY else b""
        self.pos = 0

    def read(self, task: "Task", count: int) -> bytes:
        data = self.data[self.pos:self.pos + count]
        self.pos += len(data)
        return data

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        return self.data[offset:offset + count]

    def write(self, task: "Task", data: bytes) -> int:
        if self.inode.writer is None:
            raise SyscallError(EINVAL)
        self.inode.writer(task, data)
        return len(data)

    def lseek(self, offset: int, whence: int) -> int:
        self.pos = default_llseek(self.pos, offset, whence, len(self.data))
        return self.pos

    def stat(self) -> Stat:  # type: ignore[override]
        return self.inode.stat()


class GeneratedLink(Inode):
    """A symlink whose text is `target(task)` (the walk treats procfs's fd/N, exe, cwd and
    root links as magic: see sandboxroot)."""

    def __init__(self, fs: Filesystem, target: Callable[["Task"], bytes],
                 uid: int = 0, gid: int = 0, ino: int | None = None) -> None:
        super().__init__(fs, st_.S_IFLNK | 0o777, uid, gid, ino=ino)
        self.target = target

    def readlink(self, task: "Task") -> bytes:
        return self.target(task)

    def size(self) -> int:
        return 0


class DynamicDir(Inode):
    """A directory whose children are computed: `names(task)` lists them, `child(task,
    name)` builds one (or None).  Children are rebuilt on each lookup, so they are
    always current; their inode numbers come from `ino_of(name)` to stay stable."""

    def __init__(self, fs: Filesystem, names: Callable[["Task"], Iterable[bytes]],
                 child: Callable[["Task", bytes], Inode | None], mode: int = 0o555,
                 uid: int = 0, gid: int = 0, ino: int | None = None) -> None:
        super().__init__(fs, st_.S_IFDIR | mode, uid, gid, ino=ino)
        self.names = names
        self.make_child = child

    def lookup(self, task: "Task", name: bytes) -> Inode | None:
        return self.make_child(task, name)

    def entries(self, task: "Task") -> Iterable[tuple[bytes, int, int]]:
        out = []
        for name in self.names(task):
            node = self.make_child(task, name)
            if node is not None:
                out.append((name, node.ino, dtype_of(node.mode)))
        return out

    def open(self, task: "Task", flags: int) -> File:
        if flags & O_ACCMODE != 0:
            raise SyscallError(EISDIR)
        from snakevisor.vfs.dirfile import DirectoryFile
        return DirectoryFile(self, task, flags)


class StaticDir(DynamicDir):
    """A directory with a fixed set of children."""

    def __init__(self, fs: Filesystem, children: dict[bytes, Inode], mode: int = 0o555) -> None:
        self.children = children
        super().__init__(fs, lambda task: list(self.children), lambda task, name:
                         self.children.get(name), mode)
        self.nlink = 2 + sum(1 for c in children.values() if c.is_dir)


def stable_ino(*parts: object) -> int:
    """An inode number that is the same every time the same object is described."""
    return hash(parts) & 0x7FFFFFFF or 1

