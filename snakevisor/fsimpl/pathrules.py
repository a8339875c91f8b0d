"""An OCI container's masked and read-only paths (config.json's linux.maskedPaths and
linux.readonlyPaths), laid over its mount namespace as runc lays them.

Why: engines hide host details (/proc/kcore, /proc/keys, /sys/firmware...) and freeze
kernel knobs (/proc/sys, /proc/sysrq-trigger) this way, and programs and tests look for
exactly runc's result.  runc, after pivot_root and before the first process:

* each read-only path is bind-mounted on itself and remounted read-only, keeping the
  nosuid/nodev/noexec of the mount it was in: everything below refuses every change with
  EROFS and /proc/PID/mountinfo shows "ROOT-INSIDE-FS PATH ro,...";
* then each masked path gets /dev/null bind-mounted over it (reads give nothing, writes
  are swallowed, stat shows /dev/null), or, when it is a directory (mounting a file on it
  fails with ENOTDIR), an empty tmpfs mounted read-only;
* a path that does not exist is skipped.  Symlinks on the way are followed, as mount(2)
  follows them for its target.

The mounts are the sandbox's own (sandboxroot.BindMount and MaskFs below); whether a mount
is read-only is decided in one place, sandboxroot._writable_fs.
"""
from __future__ import annotations

import os
from collections import deque
from typing import TYPE_CHECKING

from snakevisor.fsimpl.sandboxroot import (MAXSYMLINKS, BindMount, Place, SandboxRoot,
                                           with_st_rdonly)
from snakevisor.fsimpl.tmpfs import Tmpfs

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.vfs.inode import Filesystem


class MaskFs(Tmpfs):
    """runc's mask for a directory: a fresh, empty tmpfs mounted read-only (mount("tmpfs",
    path, "tmpfs", MS_RDONLY)): "ro,relatime - tmpfs tmpfs ro" in mountinfo, mode 1777."""

    writable = False  #: the superblock is read-only: EROFS for every change
    mount_flags = "ro,relatime"
    covers: "Filesystem | None" = None  #: the mount at the same point beneath, if any

    def __init__(self) -> None:
        super().__init__(mode=0o1777)
        self.options = "ro"

    def statfs(self) -> bytes:
        return with_st_rdonly(super().statfs())


def apply_path_rules(root: SandboxRoot, kernel: "Kernel", masked: list[str],
                     readonly: list[str]) -> None:
    """Lay the read-only paths, then the masked paths, over a built SandboxRoot (runc's
    order), before any process runs.  Paths are absolute (runtime/spec.py checks them)."""
    for path in readonly:
        trail = _locate(root, kernel, path)
        if trail is not None:  # mount --bind PATH PATH; mount -o remount,bind,ro PATH
            root.add_mount(trail[-1].path, _bind(root, trail, writable=False))
    for path in masked:
        trail = _locate(root, kernel, path)
        if trail is None:
            continue
        if trail[-1].node.is_dir:
            root.add_mount(trail[-1].path, MaskFs())
            continue
        null = _locate(root, kernel, "/dev/null")
        if null is None:
            kernel.warn_once("pathrules:nonull", f"maskedPaths {path}: the sandbox has no "
                             "/dev/null to mask it with; left as it is")
            continue
        root.add_mount(trail[-1].path, _bind(root, null, writable=True))


def _bind(root: SandboxRoot, trail: list[Place], writable: bool) -> BindMount:
    """A bind mount of the object at the end of `trail` (its place inside its file system
    is mountinfo's root column: /sys for /proc/sys, /null for /dev/null)."""
    path = trail[-1].path
    point = root.mount_point_of(path)
    source = root.mounts[point]
    inside = path[len(point):] if point != b"/" else path
    if isinstance(source, BindMount) and source.inner != b"/":
        inside = source.inner + inside
    return BindMount(source, trail[-1].node, inside or b"/", writable)


def _locate(root: SandboxRoot, kernel: "Kernel", path: str) -> list[Place] | None:
    """The trail to what `path` names in the sandbox, symlinks followed (no permission
    checks: the runtime is root); None when nothing is there."""
    from snakevisor.kernel.errors import SyscallError
    trail = [Place(b"/", root.mounts[b"/"].root())]
    parts = deque(p for p in os.fsencode(path).split(b"/") if p)
    links = 0
    try:
        while parts:
            name = parts.popleft()
            here = trail[-1]
            if not here.node.is_dir:
                return None  # ENOTDIR: nothing can be there
            if name == b".":
                continue
            if name == b"..":
                if len(trail) > 1:
                    trail.pop()
                continue
            nxt = root.lookup_child(here, name)
            if nxt is None:
                return None
            if not nxt.node.is_symlink:
                trail.append(nxt)
                continue
            links += 1
            if links > MAXSYMLINKS or getattr(nxt.node.fs, "fstype", "") == "proc":
                # a loop, or a procfs link (self, thread-self) that depends on a reader
                # there is none of yet
                kernel.warn_once(f"pathrules:{path}", f"masked/read-only path {path}: "
                                 "symlinks could not be followed; left as it is")
                return None
            target = nxt.node.readlink(None)  # type: ignore[arg-type]
            if target[:1] == b"/":
                trail = trail[:1]
            parts.extendleft(reversed([p for p in target.split(b"/") if p]))
    except SyscallError:
        return None  # unreadable on the way: as good as absent
    return trail
