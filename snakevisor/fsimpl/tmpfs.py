"""tmpfs: a file system held by the sentry (the overlay's upper layer, /tmp, /dev/shm).

Directories, symlinks and special files are Python objects; a regular file's bytes live
in a host memfd the sentry owns, so the application can mmap it (the fd is donated to its
stub) and reads/writes are one host call, like any host-backed file.  `size=` bounds the
bytes all regular files hold (ENOSPC), as Linux's tmpfs does.  With a :class:`FileStore`
(`--overlay2 root:dir=PATH`) those bytes live in unlinked files of a host directory
instead, so a large upper layer costs disk, not memory — gVisor's overlay medium.
"""
from __future__ import annotations

import os
import stat as st_
import struct
from typing import TYPE_CHECKING, Iterable

from snakevisor.fsimpl.hostfd import HostFdFile
from snakevisor.kernel.errors import (EBADF, EEXIST, EINVAL, EISDIR, ENOENT, ENOSPC, ENOTDIR,
                                      ENOTEMPTY, EPERM, SyscallError)
from snakevisor.vfs.inode import Filesystem, Inode, Stat, dtype_of

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

TMPFS_MAGIC = 0x01021994
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
O_ACCMODE, O_EXCL, O_TRUNC, O_DIRECTORY, O_PATH = 0o3, 0o200, 0o1000, 0o200000, 0o10000000
#: Linux keeps symlink targets shorter than this inside the inode (no page, no blocks)
SHORT_SYMLINK_LEN = 128


def parse_tmpfs_options(options: "list[str]", mode: int = 0o1777,
                        others: bool = False) -> tuple[int | None, int]:
    """size= and mode= of a tmpfs (`--tmpfs`, an OCI tmpfs mount) -> (size or None, mode);
    ValueError names a bad one.  With others, options that are not tmpfs's own (nosuid,
    noexec, strictatime...) are let through, as mount(8) applies them elsewhere."""
    size = None
    for option in options:
        key, _, value = option.partition("=")
        try:
            if key == "size":
                size = parse_size(value)
                continue
            if key == "mode":
                mode = int(value, 8)
                continue
        except (SyscallError, ValueError):
            raise ValueError(option) from None
        if not others:
            raise ValueError(option)
    return size, mode


def parse_size(text: str, total_memory: int | None = None) -> int:
    """tmpfs's size= option: bytes with k/m/g suffixes or a % of memory."""
    text = text.strip().lower()
    if text.endswith("%"):
        if total_memory is None:
            total_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return total_memory * int(text[:-1]) // 100
    scale = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    if not number.isdigit():
        raise SyscallError(EINVAL)
    return int(number) * scale


FALLOC_FL_KEEP_SIZE = 0x01


def new_memfd() -> int:
    return os.memfd_create("snakevisor-tmpfs", os.MFD_CLOEXEC)


class FileStore:
    """Backing files in a host directory (`--overlay2 root:dir=PATH`), made by the file
    system serving it (a gofer's export once the sentry is confined) as unlinked files, so
    the host directory stays empty however much the tmpfs holds."""

    def __init__(self, directory: Filesystem) -> None:
        self.directory = directory

    def new_file(self) -> int:
        return self.directory.new_unlinked_file()  # type: ignore[attr-defined]


class Tmpfs(Filesystem):
    """One tmpfs instance."""

    fstype = "tmpfs"
    #: what Linux's tmpfs stores (user.* since 6.6); system.* (POSIX ACLs) is not kept
    xattr_prefixes = (b"user.", b"trusted.", b"security.")

    def __init__(self, size: int | None = None, mode: int = 0o1777, uid: int = 0, gid: int = 0,
                 source: str = "tmpfs", store: FileStore | None = None) -> None:
        options = f"mode={mode:o}" + (f",size={size // 1024}k" if size else "")
        super().__init__(source, options)
        #: where regular files' bytes live: memfds, or unlinked files of a host directory
        self.new_backing = store.new_file if store is not None else new_memfd
        #: byte limit of all regular files (None: half of memory, as Linux's default)
        self.size_limit = size if size is not None else parse_size("50%")
        self.used = 0
        self._root = TmpfsDir(self, st_.S_IFDIR | (mode & 0o7777), uid, gid)

    def root(self) -> Inode:
        return self._root

    def charge(self, delta: int) -> None:
        """Account bytes a file grows (or shrinks) by; ENOSPC beyond size=."""
        if delta > 0 and self.used + delta > self.size_limit:
            raise SyscallError(ENOSPC)
        self.used += delta

    def statfs(self) -> bytes:
        bsize = 4096
        blocks = self.size_limit // bsize
        free = max(0, blocks - (self.used + bsize - 1) // bsize)
        # struct statfs: type bsize blocks bfree bavail files ffree fsid[2] namelen frsize flags spare[4]
        return struct.pack("<qqQQQQQiiqqq4q", TMPFS_MAGIC, bsize, blocks, free, free,
                           1 << 20, 1 << 20, 0, 0, 255, bsize, 0x20, 0, 0, 0, 0)


class TmpfsDir(Inode):
    """A directory: an ordered map of names (creation order gives stable getdents offsets)."""

    def __init__(self, fs: Tmpfs, mode: int, uid: int, gid: int) -> None:
        super().__init__(fs, mode, uid, gid)
        self.children: dict[bytes, Inode] = {}

    def lookup(self, task: "Task", name: bytes) -> Inode | None:
        return self.children.get(name)

    def size(self) -> int:
        return (len(self.children) + 2) * 20  # Linux's BOGO_DIRENT_SIZE per name

    def stat(self) -> Stat:
        return super().stat()._replace(st_blocks=0)  # names take no pages

    def entries(self, task: "Task") -> Iterable[tuple[bytes, int, int]]:
        return [(name, node.ino, dtype_of(node.mode)) for name, node in self.children.items()]

    def _add(self, name: bytes, node: Inode) -> Inode:
        if name in self.children:
            raise SyscallError(EEXIST)
        self.children[name] = node
        if node.is_dir:
            self.nlink += 1
        self.touch(mtime=True)
        return node

    def _owner(self, task: "Task") -> tuple[int, int]:
        """New objects belong to the caller; setgid directories pass their group on."""
        creds = task.tg.creds
        return creds.fsuid, (self.gid if self.mode & st_.S_ISGID else creds.fsgid)

    def create(self, task: "Task", name: bytes, mode: int) -> Inode:
        uid, gid = self._owner(task)
        return self._add(name, TmpfsFile(self.fs, st_.S_IFREG | (mode & 0o7777), uid, gid))  # type: ignore[arg-type]

    def mkdir(self, task: "Task", name: bytes, mode: int) -> Inode:
        uid, gid = self._owner(task)
        mode = (mode & 0o7777) | (self.mode & st_.S_ISGID)
        return self._add(name, TmpfsDir(self.fs, st_.S_IFDIR | mode, uid, gid))  # type: ignore[arg-type]

    def mknod(self, task: "Task", name: bytes, mode: int, rdev: int) -> Inode:
        uid, gid = self._owner(task)
        if st_.S_ISREG(mode) or not st_.S_IFMT(mode):
            return self.create(task, name, mode)
        if st_.S_IFMT(mode) not in (st_.S_IFCHR, st_.S_IFBLK, st_.S_IFIFO, st_.S_IFSOCK):
            raise SyscallError(EINVAL)
        if st_.S_IFMT(mode) in (st_.S_IFCHR, st_.S_IFBLK):
            from snakevisor.fsimpl.devfs import DeviceNode
            return self._add(name, DeviceNode(self.fs, mode, uid, gid, rdev=rdev))
        if st_.S_ISFIFO(mode):
            from snakevisor.fsimpl.fifo import FifoNode
            return self._add(name, FifoNode(self.fs, mode, uid, gid))
        return self._add(name, Inode(self.fs, mode, uid, gid, rdev=rdev))

    def symlink(self, task: "Task", name: bytes, target: bytes) -> Inode:
        uid, gid = self._owner(task)
        return self._add(name, TmpfsSymlink(self.fs, target, uid, gid))  # type: ignore[arg-type]

    def link(self, task: "Task", name: bytes, inode: Inode) -> None:
        if inode.fs is not self.fs:
            raise SyscallError(EPERM)
        self._add(name, inode)
        inode.nlink += 1
        inode.touch(ctime=True)

    def unlink(self, task: "Task", name: bytes) -> None:
        node = self.children.get(name)
        if node is None:
            raise SyscallError(ENOENT)
        if node.is_dir:
            raise SyscallError(EISDIR)
        del self.children[name]
        node.nlink -= 1
        node.touch(ctime=True)
        self.touch(mtime=True)
        if isinstance(node, TmpfsFile):
            node.maybe_free()

    def rmdir(self, task: "Task", name: bytes) -> None:
        node = self.children.get(name)
        if node is None:
            raise SyscallError(ENOENT)
        if not node.is_dir:
            raise SyscallError(ENOTDIR)
        if node.children:  # type: ignore[attr-defined]
            raise SyscallError(ENOTEMPTY)
        del self.children[name]
        node.nlink = 0
        self.nlink -= 1
        self.touch(mtime=True)

    def rename(self, task: "Task", name: bytes, new_dir: Inode, new_name: bytes,
               flags: int) -> None:
        if not isinstance(new_dir, TmpfsDir) or new_dir.fs is not self.fs:
            raise SyscallError(EPERM)
        node = self.children.get(name)
        if node is None:
            raise SyscallError(ENOENT)
        target = new_dir.children.get(new_name)
        if node is target:
            return
        if flags & RENAME_EXCHANGE:
            if target is None:
                raise SyscallError(ENOENT)
            self.children[name], new_dir.children[new_name] = target, node
            if node.is_dir != target.is_dir and self is not new_dir:
                delta = 1 if node.is_dir else -1
                new_dir.nlink += delta
                self.nlink -= delta
            self.touch(mtime=True)
            new_dir.touch(mtime=True)
            return
        if target is not None:
            if flags & RENAME_NOREPLACE:
                raise SyscallError(EEXIST)
            if node.is_dir and not target.is_dir:
                raise SyscallError(ENOTDIR)
            if target.is_dir and not node.is_dir:
                raise SyscallError(EISDIR)
            if target.is_dir:
                if target.children:  # type: ignore[attr-defined]
                    raise SyscallError(ENOTEMPTY)
                new_dir.rmdir(task, new_name)
            else:
                new_dir.unlink(task, new_name)
        if node.is_dir and _is_ancestor(node, new_dir):
            raise SyscallError(EINVAL)  # a directory cannot move beneath itself
        del self.children[name]
        new_dir.children[new_name] = node
        if node.is_dir and self is not new_dir:
            self.nlink -= 1
            new_dir.nlink += 1
        node.touch(ctime=True)
        self.touch(mtime=True)
        new_dir.touch(mtime=True)

    def open(self, task: "Task", flags: int) -> "File":
        from snakevisor.vfs.dirfile import DirectoryFile
        return DirectoryFile(self, task, flags)

    def open_tmpfile(self, task: "Task", flags: int, mode: int) -> "File":
        """O_TMPFILE: a file with no name; linkat may give it one unless O_EXCL said never."""
        uid, gid = self._owner(task)
        node = TmpfsFile(self.fs, st_.S_IFREG | (mode & 0o7777), uid, gid)  # type: ignore[arg-type]
        node.nlink = 0
        node.linkable = not flags & O_EXCL
        return node.open(task, flags)


def _is_ancestor(node: Inode, of: Inode) -> bool:
    """Is `node` `of` or above it?  (tmpfs directories know their children, not parents.)"""
    stack = [node]
    while stack:
        cur = stack.pop()
        if cur is of:
            return True
        stack.extend(c for c in getattr(cur, "children", {}).values() if c.is_dir)
    return False


class TmpfsSymlink(Inode):
    def __init__(self, fs: Tmpfs, target: bytes, uid: int, gid: int) -> None:
        super().__init__(fs, st_.S_IFLNK | 0o777, uid, gid)
        self.target = target

    def size(self) -> int:
        return len(self.target)

    def stat(self) -> Stat:
        return super().stat()._replace(st_blocks=0 if len(self.target) < SHORT_SYMLINK_LEN else 8)

    def readlink(self, task: "Task") -> bytes:
        return self.target


class TmpfsFile(Inode):
    """A regular file whose bytes are in a host memfd (created on first use)."""

    def __init__(self, fs: Tmpfs, mode: int, uid: int, gid: int) -> None:
        super().__init__(fs, mode, uid, gid)
        self.memfd = fs.new_backing()  # type: ignore[attr-defined]
        self.open_count = 0
        self.charged = 0
        #: an O_TMPFILE file linkat may still name (Linux's I_LINKABLE)
        self.linkable = False

    def size(self) -> int:
        return os.fstat(self.memfd).st_size if self.memfd >= 0 else 0

    def stat(self) -> Stat:
        base = super().stat()
        return base._replace(st_blocks=(base.st_size + 4095) // 4096 * 8)

    def resize(self, size: int) -> None:
        """Truncate or extend, charging the file system for the bytes held."""
        if size < 0:
            raise SyscallError(EINVAL)
        self.fs.charge(size - self.charged)  # type: ignore[attr-defined]
        os.ftruncate(self.memfd, size)
        self.charged = size
        self.touch(mtime=True)

    def setattr(self, task: "Task", mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None) -> None:
        if size is not None:
            self.resize(size)
        super().setattr(task, mode, uid, gid)

    def open(self, task: "Task", flags: int) -> "File":
        if flags & O_TRUNC and flags & O_ACCMODE:
            self.resize(0)
        self.open_count += 1
        return TmpfsFileDescription(self, flags)

    def maybe_free(self) -> None:
        """Unlinked and closed everywhere: give the bytes back."""
        if self.nlink == 0 and self.open_count == 0 and self.memfd >= 0:
            self.fs.charge(-self.charged)  # type: ignore[attr-defined]
            os.close(self.memfd)
            self.memfd = -1


class TmpfsFileDescription(HostFdFile):
    """An open tmpfs file: I/O on the memfd through a dup with its own offset... the
    description keeps the offset itself (pread/pwrite on the shared memfd)."""

    def __init__(self, inode: TmpfsFile, flags: int) -> None:
        super().__init__(flags)
        self.inode = inode
        self.fd = inode.memfd
        self.offset = 0

    def _grow_to(self, end: int) -> None:
        if end > self.inode.charged:
            self.inode.fs.charge(end - self.inode.charged)  # type: ignore[attr-defined]
            self.inode.charged = end

    def read(self, task: "Task", count: int) -> bytes:
        data = self.pread(task, count, self.offset)
        self.offset += len(data)
        self.inode.touch(atime=True)
        return data

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        if not self.readable:
            raise SyscallError(EBADF)
        return super().pread(task, count, offset)

    def write(self, task: "Task", data: bytes) -> int:
        if self.flags & os.O_APPEND:
            self.offset = self.inode.size()
        n = self.pwrite(task, data, self.offset)
        self.offset += n
        return n

    def pwrite(self, task: "Task", data: bytes, offset: int) -> int:
        if not self.writable:
            raise SyscallError(EBADF)
        if self.flags & os.O_APPEND:
            offset = self.inode.size()  # Linux appends even for pwrite on O_APPEND
        self._grow_to(offset + len(data))
        n = super().pwrite(task, data, offset)
        self.inode.touch(mtime=True)
        return n

    def lseek(self, offset: int, whence: int) -> int:
        base = {0: 0, 1: self.offset, 2: self.inode.size()}.get(whence)
        if base is None:
            raise SyscallError(EINVAL)
        new = base + offset
        if new < 0:
            raise SyscallError(EINVAL)
        self.offset = new
        return new

    def stat(self) -> Stat:  # type: ignore[override]
        return self.inode.stat()

    def truncate(self, length: int) -> None:
        if not self.writable:
            raise SyscallError(EINVAL)  # ftruncate needs a descriptor open for writing
        self.inode.resize(length)

    def fallocate(self, task: "Task", mode: int, offset: int, length: int) -> None:
        if not mode & FALLOC_FL_KEEP_SIZE:
            self._grow_to(offset + length)  # ENOSPC before the memfd grows
        super().fallocate(task, mode, offset, length)
        self.inode.touch(mtime=True)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        if request == 0x541B:  # FIONREAD: bytes between the offset and the end
            task.tg.mm.write(arg, max(0, self.inode.size() - self.offset).to_bytes(4, "little"))
            return 0
        return super().ioctl(task, request, arg)

    def fsync(self) -> None:
        pass  # memory: nothing to flush

    def release(self) -> None:
        self.inode.open_count -= 1
        self.inode.maybe_free()
