"""Host file calls the gofer needs that Python's os module lacks, through ctypes.

All of them act on O_PATH descriptors with AT_EMPTY_PATH or on one path component beneath a
directory descriptor, so no call here ever resolves a multi-component path or follows a
symlink.  Failures raise OSError(errno) with no message: formatting strerror could make libc
load locale files, which do not exist once the gofer has pivoted into the container tree.
"""
from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_c_long, _c_int, _c_uint = ctypes.c_long, ctypes.c_int, ctypes.c_uint


def _syscall(*argtypes: type) -> ctypes._CFuncPtr:
    """libc's syscall() typed for one call: (nr, *args) -> long."""
    return ctypes.CFUNCTYPE(_c_long, _c_long, *argtypes, use_errno=True)(("syscall", _libc))


def _check(ret: int) -> int:
    if ret < 0:
        raise OSError(ctypes.get_errno(), "")
    return ret


AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH = 0x1, 0x2, 0x4, 0x8
#: one component, never a symlink, never out of the directory, never into another mount
ONE_STEP = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV

NR_GETDENTS64, NR_RENAMEAT2, NR_OPENAT2, NR_FCHMODAT2 = 217, 316, 437, 452


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_openat2 = _syscall(_c_int, ctypes.c_char_p, ctypes.POINTER(_OpenHow), ctypes.c_size_t)
_fchmodat2 = _syscall(_c_int, ctypes.c_char_p, _c_uint, _c_int)
_getdents64 = _syscall(_c_int, ctypes.c_void_p, ctypes.c_size_t)
_renameat2 = _syscall(_c_int, ctypes.c_char_p, _c_int, ctypes.c_char_p, _c_uint)


def open_beneath(dirfd: int, name: bytes, flags: int, mode: int = 0,
                 resolve: int = ONE_STEP) -> int:
    """openat2 of one name beneath dirfd, never following a symlink (O_NOFOLLOW added).

    With O_PATH a trailing symlink yields a descriptor of the link itself; without it the
    kernel answers ELOOP.
    """
    how = _OpenHow(flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, resolve)
    return _check(_openat2(NR_OPENAT2, dirfd, name, ctypes.byref(how), ctypes.sizeof(how)))


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

_libc.utimensat.argtypes = (_c_int, ctypes.c_char_p, ctypes.POINTER(_Timespec), _c_int)
_libc.linkat.argtypes = (_c_int, ctypes.c_char_p, _c_int, ctypes.c_char_p, _c_int)
_libc.fchownat.argtypes = (_c_int, ctypes.c_char_p, _c_uint, _c_uint, _c_int)
_libc.fstatfs.argtypes = (_c_int, ctypes.c_void_p)


def utimens_fd(fd: int, atime: tuple[int, int], mtime: tuple[int, int]) -> None:
    """utimensat on the object an O_PATH fd names (a symlink's own times, too)."""
    ts = (_Timespec * 2)(_Timespec(*atime), _Timespec(*mtime))
    _check(_libc.utimensat(fd, b"", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))


def chown_fd(fd: int, uid: int, gid: int) -> None:
    """fchownat on the object an O_PATH fd names; -1 keeps a field."""
    _check(_libc.fchownat(fd, b"", uid & 0xFFFFFFFF, gid & 0xFFFFFFFF,
                          AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))


def chmod_fd(fd: int, mode: int) -> None:
    """fchmodat2 (Linux 6.6) on the object an O_PATH fd names; ENOSYS on older kernels."""
    _check(_fchmodat2(NR_FCHMODAT2, fd, b"", mode, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW))


def link_fd(fd: int, newdirfd: int, newname: bytes) -> None:
    """linkat of the inode an O_PATH fd names (needs CAP_DAC_READ_SEARCH)."""
    _check(_libc.linkat(fd, b"", newdirfd, newname, AT_EMPTY_PATH))


def rename_at(olddirfd: int, oldname: bytes, newdirfd: int, newname: bytes, flags: int) -> None:
    """renameat2 of one name beneath each directory fd (flags as renameat2(2))."""
    _check(_renameat2(NR_RENAMEAT2, olddirfd, oldname, newdirfd, newname, flags))


_STATFS = struct.Struct("<7Q2iQQQ32x")  # x86_64 struct statfs: 120 bytes


def statfs_fd(fd: int) -> tuple[int, int, int, int, int, int, int, int, int]:
    """(type, bsize, blocks, bfree, bavail, files, ffree, fsid, namelen) of fd's file system."""
    buf = ctypes.create_string_buffer(_STATFS.size)
    _check(_libc.fstatfs(fd, buf))
    ftype, bsize, blocks, bfree, bavail, files, ffree, fsid0, fsid1, namelen, _frsize, _flags = (
        _STATFS.unpack(buf.raw))
    fsid = (fsid0 & 0xFFFFFFFF) | ((fsid1 & 0xFFFFFFFF) << 32)
    return ftype, bsize, blocks, bfree, bavail, files, ffree, fsid, namelen


_DIRENT64 = struct.Struct("<QqHB")  # d_ino, d_off, d_reclen, d_type, then d_name


def getdents(fd: int, buf: ctypes.Array, limit: int) -> list[tuple[int, int, int, bytes]]:
    """One getdents64 call of at most limit bytes: [(ino, next offset, type, name)], [] at the end."""
    n = _check(_getdents64(NR_GETDENTS64, fd, buf, min(limit, len(buf))))
    raw = buf.raw[:n]
    out, off = [], 0
    while off < n:
        ino, doff, reclen, dtype = _DIRENT64.unpack_from(raw, off)
        name = raw[off + _DIRENT64.size:off + reclen]
        out.append((ino, doff, dtype, name[:name.index(b"\0")]))
        off += reclen
    return out
