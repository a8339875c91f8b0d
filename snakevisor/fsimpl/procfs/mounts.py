"""Mount tables as procfs prints them: /proc/PID/mountinfo, /proc/PID/mounts (and
/proc/mounts), /proc/PID/mountstats.

The mount table itself belongs to the VFS: it produces one MountRecord per mount the
reader can see (mounts outside the reader's root left out, mount points relative to it),
in mount order, and these functions only format them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from snakevisor.fsimpl.procfs.text import b, mangle

#: superblock flags that /proc/mounts prints before the per-mount flags (show_sb_opts)
SB_FLAG_OPTIONS = frozenset({"sync", "dirsync", "mand", "lazytime"})


@dataclass(frozen=True)
class MountRecord:
    """One mount as the reader sees it.

    options: the mount's own flags, first "rw" or "ro" (MNT_READONLY), then nosuid, nodev,
    noexec, noatime, nodiratime, relatime, nosymfollow as set -- "rw,nosuid,relatime".
    super_options: the superblock's, first "rw" or "ro", then sync/dirsync/lazytime and the
    file system's own options -- "rw,size=65536k,mode=755".
    optional: propagation tags ("shared:1", "master:2 propagate_from:3", "unbindable").
    """

    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str  # the path inside the file system that is mounted ("/" for all of it)
    mountpoint: str  # where, relative to the reader's root
    options: str
    fstype: str
    source: str  # the device name given to mount ("tmpfs", "proc", "none", "/dev/vda")
    super_options: str
    optional: str = ""


def _split(options: str) -> list[str]:
    return [o for o in options.split(",") if o]


def mountinfo(records: Iterable[MountRecord]) -> bytes:
    """show_mountinfo: "id parent major:minor root mountpoint options [tags] - type source
    super_options"."""
    out = []
    for r in records:
        tags = f" {r.optional}" if r.optional else ""
        out.append(f"{r.mount_id} {r.parent_id} {r.major}:{r.minor} {mangle(r.root)} "
                   f"{mangle(r.mountpoint)} {r.options}{tags} - {mangle(r.fstype)} "
                   f"{mangle(r.source or 'none')} {r.super_options}\n")
    return b("".join(out))


def mount_options(r: MountRecord) -> str:
    """The option column of /proc/mounts (show_vfsmnt): ro if the mount or the superblock
    is read-only, the superblock flags, the mount flags, then the file system's options."""
    mnt, sb = _split(r.options), _split(r.super_options)
    ro = (mnt[:1] == ["ro"]) or (sb[:1] == ["ro"])
    sb_rest = sb[1:] if sb[:1] in (["ro"], ["rw"]) else sb
    mnt_rest = mnt[1:] if mnt[:1] in (["ro"], ["rw"]) else mnt
    flags = [o for o in sb_rest if o in SB_FLAG_OPTIONS]
    fs_opts = [o for o in sb_rest if o not in SB_FLAG_OPTIONS]
    return ",".join(["ro" if ro else "rw", *flags, *mnt_rest, *fs_opts])


def mounts(records: Iterable[MountRecord]) -> bytes:
    """/proc/PID/mounts: "source mountpoint type options 0 0" (fstab's format)."""
    return b("".join(f"{mangle(r.source or 'none')} {mangle(r.mountpoint)} {mangle(r.fstype)} "
                     f"{mount_options(r)} 0 0\n" for r in records))


def mountstats(records: Iterable[MountRecord]) -> bytes:
    """/proc/PID/mountstats for file systems without statistics of their own."""
    return b("".join(f"device {mangle(r.source or 'none')} mounted on {mangle(r.mountpoint)} "
                     f"with fstype {mangle(r.fstype)}\n" for r in records))
