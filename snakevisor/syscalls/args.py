"""Decoding raw 64-bit syscall arguments the way Linux's C prototypes read them."""
from __future__ import annotations

from typing import TYPE_CHECKING

from snakevisor.kernel.errors import ENAMETOOLONG, ENOENT, SyscallError

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_SYMLINK_FOLLOW = 0x400
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_EACCESS = 0x200
PATH_MAX = 4096


def s32(x: int) -> int:
    """An `int` argument (fd, flags, mode): the low 32 bits, signed."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def u32(x: int) -> int:
    """An `unsigned int` argument."""
    return x & 0xFFFFFFFF


def s64(x: int) -> int:
    """A `long`/`off_t`/`ssize_t` argument."""
    return x - (1 << 64) if x & (1 << 63) else x


def read_path(task: "Task", addr: int) -> bytes:
    """A path argument: EFAULT, ENAMETOOLONG past PATH_MAX, ENOENT when empty."""
    path = task.tg.mm.read_cstring(addr, PATH_MAX)
    if not path:
        raise SyscallError(ENOENT)
    if len(path) >= PATH_MAX:
        raise SyscallError(ENAMETOOLONG)
    return path
