"""The "mqueue" file system: the sandbox's POSIX message queues as files (/dev/mqueue).

Why a file system: in Linux a message queue *is* an inode of the IPC namespace's mqueue
superblock and an mq_open descriptor is an open file of it, so open(2), unlink(2), stat,
poll/epoll and close all work on queues, and mounting "mqueue" anywhere shows the same
names.  There is one superblock per namespace (`mqueue_fs`), used by mq_open even where
nothing mounts it.  The queue semantics are `kernel/mqueue.py`.

Linux details followed (ipc/mqueue.c, checked natively): the root is a 01777 directory
whose size grows by 20 per queue; a queue file is 80 bytes long; reading one gives
"QSIZE:… NOTIFY:… SIGNO:… NOTIFY_PID:…"; writing is EINVAL; a queue created by open(2)
has the default attributes; mkdir, links, symlinks, rename and mknod are EPERM.
"""
from __future__ import annotations

import os
import stat as st_
import struct
from typing import TYPE_CHECKING, Iterable

from snakevisor.kernel.errors import EBADF, EEXIST, EINVAL, ENOENT, SyscallError
from snakevisor.kernel.mqueue import MessageQueue, MqueueNamespace, mqueue_namespace
from snakevisor.vfs.file import POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM, File, default_llseek
from snakevisor.vfs.inode import DT_REG, Filesystem, Inode, Stat

if TYPE_CHECKING:
    from snakevisor.kernel.errors import WaitQueue
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task

MQUEUE_MAGIC = 0x19800202
DIRENT_SIZE, FILENT_SIZE = 20, 80
O_CREAT, O_EXCL, O_TRUNC, O_NOCTTY = 0o100, 0o200, 0o1000, 0o400


class MqueueFs(Filesystem):
    """The superblock of one namespace's queues."""

    fstype = "mqueue"

    def __init__(self, ns: MqueueNamespace) -> None:
        super().__init__("mqueue", "rw")
        self.ns = ns
        self._root = MqueueDir(self)

    def root(self) -> "MqueueDir":
        return self._root

    def statfs(self) -> bytes:
        # struct statfs: type bsize blocks bfree bavail files ffree fsid[2] namelen frsize flags spare[4]
        return struct.pack("<qqQQQQQiiqqq4q", MQUEUE_MAGIC, 4096, 0, 0, 0, 0, 0, 0, 0, 255,
                           4096, 0x20, 0, 0, 0, 0)  # ST_RELATIME


def mqueue_fs(kernel: "Kernel") -> MqueueFs:
    """The namespace's superblock (every mount of "mqueue" in the sandbox shows it)."""
    ns = mqueue_namespace(kernel)
    if ns.fs is None:
        ns.fs = MqueueFs(ns)
    return ns.fs  # type: ignore[return-value]


class MqueueDir(Inode):
    """The root: queue names in creation order."""

    def __init__(self, fs: MqueueFs) -> None:
        super().__init__(fs, st_.S_IFDIR | 0o1777)
        self.children: dict[bytes, QueueInode] = {}

    @property
    def ns(self) -> MqueueNamespace:
        return self.fs.ns  # type: ignore[attr-defined]

    def size(self) -> int:
        return (len(self.children) + 2) * DIRENT_SIZE

    def stat(self) -> Stat:
        return super().stat()._replace(st_blocks=0)

    def lookup(self, task: "Task", name: bytes) -> "QueueInode | None":
        return self.children.get(name)

    def entries(self, task: "Task") -> Iterable[tuple[bytes, int, int]]:
        return [(name, node.ino, DT_REG) for name, node in self.children.items()]

    def create_queue(self, task: "Task", name: bytes, mode: int,
                     attr: tuple[int, int] | None) -> "QueueInode":
        """A new queue called `name` (mode already masked by the umask)."""
        if name in self.children:
            raise SyscallError(EEXIST)
        queue = self.ns.new_queue(task, attr)
        creds = task.tg.creds
        node = QueueInode(self.fs, queue, st_.S_IFREG | (mode & 0o7777), creds.fsuid,  # type: ignore[arg-type]
                          creds.fsgid)
        self.children[name] = node
        self.touch(mtime=True)
        return node

    def create(self, task: "Task", name: bytes, mode: int) -> Inode:
        """open(2) with O_CREAT: a queue with the default attributes."""
        return self.create_queue(task, name, mode, None)

    def unlink(self, task: "Task", name: bytes) -> None:
        node = self.children.pop(name, None)
        if node is None:
            raise SyscallError(ENOENT)
        node.nlink = 0
        node.touch(ctime=True)
        self.touch(mtime=True)
        node.maybe_free()

    def open(self, task: "Task", flags: int) -> File:
        from snakevisor.vfs.dirfile import DirectoryFile
        return DirectoryFile(self, task, flags)


class QueueInode(Inode):
    """One queue's inode: it lives while it has a name or an open description."""

    def __init__(self, fs: MqueueFs, queue: MessageQueue, mode: int, uid: int, gid: int) -> None:
        super().__init__(fs, mode, uid, gid)
        self.queue = queue
        self.open_count = 0

    def size(self) -> int:
        return FILENT_SIZE

    def stat(self) -> Stat:
        return super().stat()._replace(st_blocks=0)

    def open(self, task: "Task", flags: int) -> File:
        self.open_count += 1
        return MqueueFile(task.kernel, self, flags & ~(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC))

    def maybe_free(self) -> None:
        if self.nlink == 0 and self.open_count == 0:
            self.queue.free()


class MqueueFile(File):
    """An open queue (an mq_open descriptor or an open(2) of the queue's file)."""

    def __init__(self, kernel: "Kernel", inode: QueueInode, flags: int) -> None:
        self.kernel = kernel
        super().__init__(flags)
        self.inode = inode
        self.queue = inode.queue
        self.pos = 0

    @property
    def refs(self) -> int:
        return self._refs

    @refs.setter
    def refs(self, value: int) -> None:
        """File.refs, watched: a descriptor going away is Linux's ->flush at close(2)
        (mqueue_flush_file), which ends the closing process's notification."""
        dropped = value < getattr(self, "_refs", 0)
        self._refs = value
        current = getattr(self.kernel, "current", None) if dropped else None
        if current is not None:
            self.queue.flush(current.tg)

    @property
    def nonblocking(self) -> bool:
        return bool(self.flags & os.O_NONBLOCK)

    def read(self, task: "Task", count: int) -> bytes:
        data = self.pread(task, count, self.pos)
        self.pos += len(data)
        return data

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        if not self.readable:
            raise SyscallError(EBADF)
        data = self.queue.status_line()[offset:offset + count]
        if data:
            self.inode.touch(atime=True, ctime=True)
        return data

    def write(self, task: "Task", data: bytes) -> int:
        if not self.writable:
            raise SyscallError(EBADF)
        raise SyscallError(EINVAL)

    def pwrite(self, task: "Task", data: bytes, offset: int) -> int:
        return self.write(task, data)

    def lseek(self, offset: int, whence: int) -> int:
        """default_llseek: SEEK_END is relative to the file's size (80)."""
        self.pos = default_llseek(self.pos, offset, whence, FILENT_SIZE)
        return self.pos

    def stat(self) -> Stat:  # type: ignore[override]
        return self.inode.stat()

    def poll_events(self) -> int:
        mask = POLLIN | POLLRDNORM if self.queue.curmsgs else 0
        if not self.queue.full:
            mask |= POLLOUT | POLLWRNORM
        return mask

    def poll_queue(self) -> "WaitQueue":
        return self.queue.wait

    def release(self) -> None:
        self.inode.open_count -= 1
        self.inode.maybe_free()
