"""Memory system calls: the sentry decides, the stub's host kernel mirrors (mm.address_space)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from snakevisor.fsimpl.sandboxroot import NOEXEC, file_mount_flags
from snakevisor.kernel.errors import EACCES, EBADF, EINVAL, ENOMEM, EPERM, SyscallError
from snakevisor.mm.address_space import (
    MAP_ANONYMOUS, MAP_PRIVATE, PAGE, PROT_EXEC, PROT_WRITE, TASK_SIZE, page_up,
)
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, s64

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

NR_MADVISE, NR_MSYNC, NR_MINCORE = 28, 26, 27
#: advice values passed on to the host (they only affect this address space's pages)
_MADV_HOST = {0, 1, 2, 3, 4, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 25}
MADV_REMOVE, MADV_HWPOISON, MADV_SOFT_OFFLINE = 9, 100, 101


@syscall("brk")
def sys_brk(task: "Task", addr: int, *_: int) -> int:
    return task.mm.set_brk(addr)


@syscall("mmap", partial="no MAP_HUGETLB")
def sys_mmap(task: "Task", addr: int, length: int, prot: int, flags: int, fd: int, offset: int) -> int:
    flags = s32(flags)
    prot = s32(prot)
    if prot & ~0x7 & ~0x01000000:  # PROT_GROWSDOWN alone is ignored for new maps
        raise SyscallError(EINVAL)
    file = None
    if not flags & MAP_ANONYMOUS:
        file = task.fds.get(s32(fd))
        if file.is_path_only:
            raise SyscallError(EBADF)
        if prot & PROT_EXEC and length and flags & 0x3 and not s64(offset) % PAGE \
                and _noexec(task, file):  # (after do_mmap's EINVAL checks)
            _refuse_exec(file, flags, prot)
    return task.mm.map(addr, length, prot & 7, flags, file, s64(offset))


def _noexec(task: "Task", file: "File") -> bool:
    """Is a file from a noexec mount (path_noexec: its mappings never execute)?"""
    return NOEXEC in file_mount_flags(task, file)


def _refuse_exec(file: "File", flags: int, prot: int) -> None:
    """do_mmap's order for PROT_EXEC of a noexec file: the access checks' EACCES first,
    then EPERM."""
    if not file.readable or (flags & 0x3 != MAP_PRIVATE and prot & PROT_WRITE
                             and not file.writable):
        raise SyscallError(EACCES)
    raise SyscallError(EPERM)


@syscall("munmap")
def sys_munmap(task: "Task", addr: int, length: int, *_: int) -> int:
    task.mm.unmap(addr, length)
    return 0


@syscall("mprotect")
def sys_mprotect(task: "Task", addr: int, length: int, prot: int, *_: int) -> int:
    prot = s32(prot) & 0xFFFFFFFF
    if prot & PROT_EXEC and not addr % PAGE and not prot & ~(7 | 0x03000000):
        _check_may_exec(task, addr, addr + page_up(length))  # (after the EINVAL checks)
    task.mm.protect(addr, length, prot)
    return 0


def _check_may_exec(task: "Task", start: int, end: int) -> None:
    """mprotect's VM_MAYEXEC rule: a mapping of a file from a noexec mount never gains
    PROT_EXEC (EACCES), checked VMA by VMA up to the first hole (where the call answers
    ENOMEM instead)."""
    addr = start
    while addr < end:
        vma = task.mm.find(addr)
        if vma is None:
            return
        if vma.file is not None and _noexec(task, vma.file):
            raise SyscallError(EACCES)
        addr = vma.end


@syscall("pkey_mprotect", partial="only pkey -1 (no protection keys)")
def sys_pkey_mprotect(task: "Task", addr: int, length: int, prot: int, pkey: int, *_: int) -> int:
    if s32(pkey) != -1:
        raise SyscallError(EINVAL)
    return sys_mprotect(task, addr, length, prot)


@syscall("mremap", partial="no MREMAP_DONTUNMAP, no old_size 0 duplication")
def sys_mremap(task: "Task", old: int, old_len: int, new_len: int, flags: int, new_addr: int, *_: int) -> int:
    return task.mm.remap(old, old_len, new_len, s32(flags) & 0xFFFFFFFF, new_addr)


def _checked_range(task: "Task", addr: int, length: int) -> int:
    """Linux's common checks for madvise/msync/mlock: aligned start, mapped range."""
    if addr % PAGE:
        raise SyscallError(EINVAL)
    end = addr + page_up(length)
    if end < addr or end > TASK_SIZE:
        raise SyscallError(ENOMEM if end > TASK_SIZE else EINVAL)
    return end


@syscall("madvise", partial="advice that would affect other processes' files is refused")
def sys_madvise(task: "Task", addr: int, length: int, advice: int, *_: int) -> int:
    advice = s32(advice)
    end = _checked_range(task, addr, length)
    if advice not in _MADV_HOST:
        raise SyscallError(EINVAL)
    if end == addr:
        return 0
    if not task.mm.fully_mapped(addr, end):
        raise SyscallError(ENOMEM)
    if advice == MADV_REMOVE:
        raise SyscallError(EINVAL)  # would punch holes in host files
    res = task.mm.host.syscall(NR_MADVISE, addr, end - addr, advice)
    if res < 0:
        raise SyscallError(-res)
    return 0


@syscall("msync")
def sys_msync(task: "Task", addr: int, length: int, flags: int, *_: int) -> int:
    flags = s32(flags)
    if flags & ~7 or (flags & 1 and flags & 4):  # MS_ASYNC|MS_INVALIDATE|MS_SYNC
        raise SyscallError(EINVAL)
    end = _checked_range(task, addr, length)
    if not task.mm.fully_mapped(addr, end):
        raise SyscallError(ENOMEM)
    res = task.mm.host.syscall(NR_MSYNC, addr, end - addr, flags)
    if res < 0:
        raise SyscallError(-res)
    return 0


@syscall("mincore")
def sys_mincore(task: "Task", addr: int, length: int, vec: int, *_: int) -> int:
    if addr % PAGE:
        raise SyscallError(EINVAL)
    end = addr + page_up(length)
    if end > TASK_SIZE or end < addr:
        raise SyscallError(ENOMEM)
    if not task.mm.fully_mapped(addr, end):
        raise SyscallError(ENOMEM)
    task.mm.check(vec, (end - addr) // PAGE, PROT_WRITE)
    res = task.mm.host.syscall(NR_MINCORE, addr, end - addr, vec)
    if res < 0:
        raise SyscallError(-res)
    return 0


@syscall("mlock", "munlock", "mlock2", partial="accepted and checked; pages are not pinned")
def sys_mlock(task: "Task", addr: int, length: int, *_: int) -> int:
    start = addr & ~(PAGE - 1)
    end = page_up(addr + length)
    if not task.mm.fully_mapped(start, end):
        raise SyscallError(ENOMEM)
    return 0


@syscall("mlockall", "munlockall", partial="accepted; pages are not pinned")
def sys_mlockall(task: "Task", flags: int = 0, *_: int) -> int:
    if flags & ~7 or (flags and not flags & 3):  # MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT
        raise SyscallError(EINVAL)
    return 0
