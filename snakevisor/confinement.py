"""Confining a snakevisor process on the host: the mount-namespace, pivot_root and
capability primitives that both the gofer (gofer/confine.py) and the sentry
(kernel/confine.py) use to end up in a tree of their own with only the capabilities they
need."""
from __future__ import annotations

import ctypes
import os
import struct

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND = 0x20, 0x400, 0x800, 0x1000
MS_REC, MS_PRIVATE, MS_RELATIME = 0x4000, 0x40000, 0x200000
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_READ, PR_CAPBSET_DROP = 1, 4, 23, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
NR_CAPSET, NR_PIVOT_ROOT, NR_UNSHARE, NR_SETNS = 126, 155, 272, 308
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)
_libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
_libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                        ctypes.c_ulong)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def _enc(s: str | bytes | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    check(_libc.mount(_enc(src), _enc(dst), _enc(fstype), flags, _enc(data)), f"mount {dst}")




def unshare_mounts() -> None:
    """A private mount namespace: nothing propagates in or out from now on."""
    check(_syscall(NR_UNSHARE, CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def enter_network_namespace(path: str | None) -> None:
    """Leave the host's network namespace for a new empty one (path None) or for the one at
    `path` (an engine's, e.g. /var/run/netns/X): engines configure the namespace of the pid
    they were given, and that must never be the host's own."""
    if path is None:
        check(_syscall(NR_UNSHARE, CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        return
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        check(_syscall(NR_SETNS, fd, CLONE_NEWNET), f"setns({path})")
    finally:
        os.close(fd)


def pivot_into(new_root: str) -> None:
    """Make new_root the root and detach the old one (nothing of it stays reachable)."""
    os.chdir(new_root)
    check(_syscall(NR_PIVOT_ROOT, b".", b"."), "pivot_root")
    check(_libc.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")


def prctl(option: int, arg: int = 0) -> int:
    return _libc.prctl(option, arg, 0, 0, 0)


def drop_capabilities(keep: "set[int] | dict[int, str]") -> None:
    """Bounding set, ambient set, then effective/permitted/inheritable cut to ``keep``."""
    cap = 0
    while prctl(PR_CAPBSET_READ, cap) >= 0:
        if cap not in keep:
            check(prctl(PR_CAPBSET_DROP, cap), f"PR_CAPBSET_DROP {cap}")
        cap += 1
    check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient")
    mask = sum(1 << c for c in keep)
    header = ctypes.create_string_buffer(struct.pack("<Ii", _LINUX_CAPABILITY_VERSION_3, 0))
    data = ctypes.create_string_buffer(struct.pack(
        "<6I", mask & 0xFFFFFFFF, mask & 0xFFFFFFFF, 0, mask >> 32, mask >> 32, 0))
    check(_syscall(NR_CAPSET, header, data), "capset")


