"""A container's mount namespace: which file systems it sees, and where.

Why its own module: a sandbox builds one for its first container, and a pod builds one more
for every container that joins the running sentry (runtime/pod.py) — each with its own root
(the container image through its own gofer), volumes, tmpfs, proc, sys and dev, while the
kernel (processes, IPC, network, pod-shared volumes) is one.  The recipe is a plain value
(MountConfig) so a pod member's can travel to the confined sentry as JSON.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snakevisor.fsimpl.goferfs import GoferMounts
    from snakevisor.fsimpl.sandboxroot import SandboxRoot
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.vfs.inode import Filesystem

#: /dev/shm's size, as Docker gives containers
DEV_SHM_SIZE = 64 << 20
OVERLAY_MODES = ("none", "root:memory")  #: and root:dir=PATH
#: the flags Linux and runc give the built-in mounts when a config names none
_ALL = ["nosuid", "nodev", "noexec"]
DEFAULT_MOUNT_FLAGS = {"/proc": _ALL, "/sys": _ALL, "/dev": ["nosuid"],
                       "/dev/pts": ["nosuid", "noexec"], "/dev/shm": _ALL, "/dev/mqueue": _ALL}


@dataclass
class MountConfig:
    """How one container's mounts are made."""

    rootfs: str  #: the host directory of its root (resolved)
    writable_root: bool = False
    volumes: list[tuple[str, str, bool]] = field(default_factory=list)  #: (host, inside, ro)
    #: (inside, size or None, mode, pod volume name or ""): a named one is one tmpfs shared
    #: by every container of the pod that mounts that name
    tmpfs: list[tuple[str, int | None, int, str]] = field(default_factory=list)
    #: none (the host directory itself), root:memory (a sentry tmpfs over it: writes never
    #: reach the host) or root:dir=PATH (that tmpfs's bytes kept in a host directory)
    overlay: str = "none"
    masked_paths: list[str] = field(default_factory=list)  #: linux.maskedPaths
    readonly_paths: list[str] = field(default_factory=list)  #: linux.readonlyPaths
    dev_console: bool = True  #: /dev/console (an OCI container has one with a terminal only)
    #: sandbox path as given -> its mount's flags (of "nosuid", "nodev", "noexec"); the
    #: built-in mounts not named have DEFAULT_MOUNT_FLAGS, the root, volumes and tmpfs none
    mount_flags: dict[str, list[str]] = field(default_factory=dict)

    @property
    def upper_dir(self) -> str | None:
        return self.overlay[len("root:dir="):] if self.overlay.startswith("root:dir=") else None

    def check_overlay(self) -> None:
        """ValueError (one line) unless overlay is a mode we have."""
        store = self.upper_dir
        if store is not None:
            if not os.path.isdir(store):
                raise ValueError(f"--overlay2 {self.overlay!r}: {store!r} is not a directory")
        elif self.overlay not in OVERLAY_MODES:
            raise ValueError(f"--overlay2 {self.overlay!r}: expected none, root:memory or "
                             "root:dir=PATH")


def pod_volume(kernel: "Kernel", name: str, size: int | None, mode: int) -> "Filesystem":
    """The pod-wide tmpfs called name: made by the first container that mounts it, the same
    file system for every later one (gVisor's mount hints with share=pod)."""
    from snakevisor.fsimpl.tmpfs import Tmpfs
    volumes = kernel.pod_volumes
    if name not in volumes:
        volumes[name] = Tmpfs(size=size, mode=mode)
    return volumes[name]


def build_root(kernel: "Kernel", config: MountConfig,
               gofer: "GoferMounts | None") -> "SandboxRoot":
    """The container's SandboxRoot: its root, /proc, /sys, /dev (with its own devpts),
    /dev/shm, /dev/mqueue, volumes and tmpfs, then masked and read-only paths.  gofer
    serves the root and the volumes (None: SNAKEVISOR_GOFER=0, the sentry walks host
    directories itself — development only)."""
    from snakevisor.fsimpl.devfs import DevFs
    from snakevisor.fsimpl.mqueuefs import mqueue_fs
    from snakevisor.fsimpl.procfs.fs import ProcFs
    from snakevisor.fsimpl.sandboxroot import SandboxRoot
    from snakevisor.fsimpl.sysfs import SysFs
    from snakevisor.fsimpl.tmpfs import Tmpfs

    devfs = DevFs(console=config.dev_console)
    proc = ProcFs(kernel)
    mounts: dict[bytes, Filesystem] = {
        b"/proc": proc,
        b"/sys": SysFs(kernel),
        b"/dev": devfs,
        b"/dev/pts": devfs.pts,
        b"/dev/shm": Tmpfs(size=DEV_SHM_SIZE, mode=0o1777, source="shm"),
        b"/dev/mqueue": mqueue_fs(kernel),
    }
    for host_dir, inside, readonly in config.volumes:
        mounts[os.fsencode(inside)] = (gofer.volumes[inside] if gofer is not None else
                                       _host_dir_fs(host_dir, writable=not readonly))
    for inside, size, mode, shared in config.tmpfs:
        mounts[os.fsencode(inside)] = (pod_volume(kernel, shared, size, mode) if shared else
                                       Tmpfs(size=size, mode=mode))
    if config.overlay.startswith("root:"):
        from snakevisor.fsimpl.overlay import OverlayFs
        from snakevisor.fsimpl.tmpfs import FileStore
        store = None
        if config.upper_dir is not None:  # the upper layer's bytes on disk
            store = FileStore(gofer.upper if gofer is not None else
                              _host_dir_fs(config.upper_dir, writable=True))
        lower = gofer.root if gofer is not None else _host_dir_fs(config.rootfs, False)
        mounts[b"/"] = OverlayFs(lower, Tmpfs(mode=0o755, source="overlay-upper", store=store))
    else:  # --overlay2 none / --writable-root: the host directory itself
        mounts[b"/"] = (gofer.root if gofer is not None else
                        _host_dir_fs(config.rootfs, writable=config.writable_root))
    flags = {os.fsencode(os.path.normpath(p)): f
             for p, f in {**DEFAULT_MOUNT_FLAGS, **config.mount_flags}.items()}
    root = SandboxRoot(mounts, {p: f for p, f in flags.items() if p in mounts})
    proc.mount_records = root.mount_records  # type: ignore[attr-defined]
    if config.masked_paths or config.readonly_paths:
        from snakevisor.fsimpl.pathrules import apply_path_rules
        apply_path_rules(root, kernel, config.masked_paths, config.readonly_paths)
    return root


def _host_dir_fs(host_dir: str, writable: bool) -> "Filesystem":
    """A host directory walked by the sentry itself (SNAKEVISOR_GOFER=0 only)."""
    from snakevisor.fsimpl.hostpathfs import HostPathFs
    return HostPathFs(host_dir, writable=writable)
