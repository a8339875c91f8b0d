"""Files whose data operations are one host system call on one host fd the sentry holds.

Both the container root's files (hostfs) and the CLI's stdio are such files: the host fd
already enforces access modes and answers with Linux's own errnos (ESPIPE for a pipe's
pread, EBADF for a read on O_WRONLY), so the sentry only translates OSError to the
application's -errno.  Subclasses add what differs: waiting, permissions, directories.
"""
from __future__ import annotations

import ctypes
import os
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import SyscallError
from snakevisor.vfs.file import File

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task


_libc_fallocate = ctypes.CDLL(None, use_errno=True).fallocate
_libc_fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)


class HostFdFile(File):
    """An open file description backed by `self.fd`, a host descriptor the sentry owns."""

    fd: int
    #: the lock code took host locks through `fd` (kernel/locks.py): given back at release,
    #: since the description can outlive our fd (a gofer keeps its own copy of a file it
    #: created), and with it every lock on it
    host_locked = False

    def read(self, task: "Task", count: int) -> bytes:
        try:
            return os.read(self.fd, count)
        except OSError as e:
            raise SyscallError(e.errno) from None

    def write(self, task: "Task", data: bytes) -> int:
        try:
            return os.write(self.fd, data)
        except OSError as e:  # EPIPE: the kernel's signal code decides about SIGPIPE
            raise SyscallError(e.errno) from None

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        try:
            return os.pread(self.fd, count, offset)
        except OSError as e:
            raise SyscallError(e.errno) from None

    def pwrite(self, task: "Task", data: bytes, offset: int) -> int:
        try:
            return os.pwrite(self.fd, data, offset)
        except OSError as e:
            raise SyscallError(e.errno) from None

    def lseek(self, offset: int, whence: int) -> int:
        try:
            return os.lseek(self.fd, offset, whence)
        except OSError as e:
            raise SyscallError(e.errno) from None

    def stat(self) -> os.stat_result:
        return os.fstat(self.fd)

    def truncate(self, length: int) -> None:
        try:
            os.ftruncate(self.fd, length)
        except OSError as e:
            raise SyscallError(e.errno) from None

    def fallocate(self, task: "Task", mode: int, offset: int, length: int) -> None:
        if _libc_fallocate(self.fd, mode, offset, length) < 0:
            raise SyscallError(ctypes.get_errno())

    def fsync(self) -> None:
        try:
            os.fsync(self.fd)
        except OSError as e:
            raise SyscallError(e.errno) from None

    def mmap_fd(self) -> int:
        return self.fd

    def release(self) -> None:
        if self.host_locked:
            from snakevisor.kernel.locks import drop_host_locks
            drop_host_locks(self.fd)
        os.close(self.fd)
