"""memfd_create and file seals (fcntl F_ADD_SEALS / F_GET_SEALS).

Why this shape: a memfd is a tmpfs file with no name, so it is fsimpl/tmpfs.py's TmpfsFile
(bytes in a host memfd the sentry owns, mappable by the stub) on a tmpfs of its own, like
Linux's internal shm mount.  Its seals live on that *host* memfd: the sentry creates it
sealable and adds exactly the seals the application adds, so the host kernel enforces
them wherever the application's memory is involved — mmap(PROT_WRITE, MAP_SHARED) and
mprotect in the stub fail as on Linux, and F_SEAL_WRITE answers EBUSY while a stub has a
writable shared mapping (the host counts the stubs' mappings of that very memfd).  The
sentry checks the seals itself only where it would otherwise change its own accounting
before the host refuses (writes, truncation) and where the state is its own (the mode:
F_SEAL_EXEC; the host memfd's mode mirrors the sandbox's so F_SEAL_EXEC implies the
write seals exactly when Linux's would).

Every tmpfs file is sealable in Linux's sense (F_GET_SEALS answers F_SEAL_SEAL, adding
is EPERM): the host memfds of ordinary tmpfs files, created without MFD_ALLOW_SEALING,
answer the same.  Other files are EINVAL.

Linux details followed (mm/memfd.c, checked natively): memfd_create's flags (with huge
page size bits only beside MFD_HUGETLB), MFD_EXEC with MFD_NOEXEC_SEAL is EINVAL, names
of at most 249 bytes, mode 0777 (0666 and F_SEAL_EXEC with MFD_NOEXEC_SEAL), nlink 0,
O_RDWR|O_LARGEFILE, "/memfd:NAME (deleted)" in /proc/PID/fd and maps.  F_ADD_SEALS:
EPERM unless open for writing, EINVAL for unknown bits or a non-tmpfs file, EPERM once
F_SEAL_SEAL is set.
"""
from __future__ import annotations

import fcntl
import os
import stat as st_
from typing import TYPE_CHECKING

from snakevisor.fsimpl.tmpfs import O_ACCMODE, O_TRUNC, Tmpfs, TmpfsFile, TmpfsFileDescription
from snakevisor.kernel.errors import EINVAL, ENOSYS, EPERM, SyscallError
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import u32
from snakevisor.syscalls.sys_file import _nofile

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

MFD_CLOEXEC, MFD_ALLOW_SEALING, MFD_HUGETLB, MFD_NOEXEC_SEAL, MFD_EXEC = 0x1, 0x2, 0x4, 0x8, 0x10
MFD_ALL_FLAGS = 0x1F
MFD_HUGE_MASK, MFD_HUGE_SHIFT = 0x3F, 26
MFD_NAME_MAX_LEN = 249  #: NAME_MAX minus "memfd:"
F_ADD_SEALS, F_GET_SEALS = 1033, 1034
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 0x1, 0x2, 0x4, 0x8
F_SEAL_FUTURE_WRITE, F_SEAL_EXEC = 0x10, 0x20
F_ALL_SEALS = 0x3F
O_RDWR, O_LARGEFILE = 0o2, 0o100000


def _host_fcntl(fd: int, cmd: int, arg: int = 0) -> int:
    try:
        return fcntl.fcntl(fd, cmd, arg)
    except OSError as e:
        raise SyscallError(e.errno) from None


def memfd_fs(kernel: "Kernel") -> Tmpfs:
    """The sandbox's internal tmpfs that memfds live on (Linux's shm_mnt), made on first use."""
    fs = getattr(kernel, "memfd_fs", None)
    if fs is None:
        fs = kernel.memfd_fs = Tmpfs(source="memfd")  # type: ignore[attr-defined]
        fs.new_backing = _sealable_memfd  # the host memfd carries (and enforces) the seals
    return fs


def _sealable_memfd() -> int:
    return os.memfd_create("snakevisor-memfd", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)


class MemfdInode(TmpfsFile):
    """A memfd's inode: a nameless tmpfs file whose host memfd carries its seals."""

    def __init__(self, fs: Tmpfs, mode: int, uid: int, gid: int, name: bytes,
                 flags: int) -> None:
        super().__init__(fs, mode, uid, gid)
        os.fchmod(self.memfd, mode & 0o777)
        self.nlink = 0
        self.path = f"/memfd:{os.fsdecode(name)} (deleted)"
        if flags & MFD_NOEXEC_SEAL:
            _host_fcntl(self.memfd, F_ADD_SEALS, F_SEAL_EXEC)
        elif not flags & MFD_ALLOW_SEALING:
            _host_fcntl(self.memfd, F_ADD_SEALS, F_SEAL_SEAL)

    @property
    def seals(self) -> int:
        return _host_fcntl(self.memfd, F_GET_SEALS)

    def resize(self, size: int) -> None:
        """Truncation under F_SEAL_SHRINK / F_SEAL_GROW is EPERM (before any accounting)."""
        seals, current = self.seals, self.size()
        if (seals & F_SEAL_SHRINK and size < current) or (seals & F_SEAL_GROW and size > current):
            raise SyscallError(EPERM)
        super().resize(size)

    def setattr(self, task: "Task", mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None) -> None:
        """F_SEAL_EXEC freezes the execute bits; the host memfd follows the mode."""
        if mode is not None and self.seals & F_SEAL_EXEC and (self.mode ^ mode) & 0o111:
            raise SyscallError(EPERM)
        super().setattr(task, mode, uid, gid, size)
        if mode is not None:
            os.fchmod(self.memfd, self.mode & 0o777)

    def open(self, task: "Task", flags: int) -> "File":
        # TmpfsFile.open, returning the sealing-aware description
        if flags & O_TRUNC and flags & O_ACCMODE:
            self.resize(0)
        self.open_count += 1
        file = MemfdFile(self, flags)
        file.path = self.path
        return file


class MemfdFile(TmpfsFileDescription):
    """An open memfd: writes respect the write and grow seals."""

    inode: MemfdInode

    def pwrite(self, task: "Task", data: bytes, offset: int) -> int:
        if data and self.inode.seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE):
            raise SyscallError(EPERM)
        # F_SEAL_GROW: the host writes what fits page by page (EPERM when nothing does)
        return super().pwrite(task, data, offset)

    def _grow_to(self, end: int) -> None:
        if not self.inode.seals & F_SEAL_GROW:  # a sealed file cannot grow: nothing to charge
            super()._grow_to(end)


# -- memfd_create ------------------------------------------------------------------------------
@syscall("memfd_create", partial="MFD_HUGETLB: ENOSYS (no hugetlbfs in the sandbox)")
def sys_memfd_create(task: "Task", name_addr: int, flags: int, *_: int) -> int:
    flags = u32(flags)
    known = MFD_ALL_FLAGS | (MFD_HUGE_MASK << MFD_HUGE_SHIFT if flags & MFD_HUGETLB else 0)
    if flags & ~known or (flags & MFD_EXEC and flags & MFD_NOEXEC_SEAL):
        raise SyscallError(EINVAL)
    name = task.mm.read_cstring(name_addr, MFD_NAME_MAX_LEN + 1)
    if len(name) > MFD_NAME_MAX_LEN:
        raise SyscallError(EINVAL)
    if flags & MFD_HUGETLB:
        task.kernel.warn_once("memfd_create:hugetlb", f"memfd_create({name!r}, {flags:#x}): "
                              "MFD_HUGETLB needs hugetlbfs, which the sandbox lacks -> ENOSYS")
        raise SyscallError(ENOSYS)  # what a Linux built without hugetlbfs answers
    creds = task.tg.creds
    mode = st_.S_IFREG | (0o666 if flags & MFD_NOEXEC_SEAL else 0o777)
    inode = MemfdInode(memfd_fs(task.kernel), mode, creds.fsuid, creds.fsgid, name, flags)
    file = inode.open(task, O_RDWR | O_LARGEFILE)
    try:
        return task.fds.install(file, bool(flags & MFD_CLOEXEC), 0, _nofile(task))
    except SyscallError:
        file.release()
        raise


# -- seals (fcntl) -----------------------------------------------------------------------------
def _sealable(file: "File") -> TmpfsFile | None:
    """The tmpfs inode whose host memfd holds the file's seals (None: not sealable)."""
    if isinstance(file, TmpfsFileDescription) and file.inode.memfd >= 0:
        return file.inode
    return None


def fcntl_seals(task: "Task", file: "File", cmd: int, arg: int) -> int:
    """fcntl F_ADD_SEALS / F_GET_SEALS (memfd_fcntl), for sys_fcntl."""
    inode = _sealable(file)
    if cmd == F_GET_SEALS:
        if inode is None:
            raise SyscallError(EINVAL)
        return _host_fcntl(inode.memfd, F_GET_SEALS)
    if not file.writable:
        raise SyscallError(EPERM)
    seals = u32(arg)
    if seals & ~F_ALL_SEALS or inode is None:
        raise SyscallError(EINVAL)
    # the host checks F_SEAL_SEAL (EPERM) and the stubs' writable mappings (EBUSY)
    _host_fcntl(inode.memfd, F_ADD_SEALS, seals)
    return 0
