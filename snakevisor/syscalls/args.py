"""Decoding raw 64-bit syscall arguments the way Linux's C prototypes read them."""
from __future__ import annotations

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
