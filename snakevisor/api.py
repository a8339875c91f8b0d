"""The embeddable Python API: run a command in a throwaway sandbox.

    from snakevisor.api import Sandbox
    status = Sandbox(rootfs="/").run(["/bin/echo", "hi"])
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from typing import Callable

    from snakevisor.gofer.launch import GoferMounts
    from snakevisor.kernel.boot import Identity
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.vfs.inode import Filesystem


#: /dev/shm's size, as Docker gives containers
DEV_SHM_SIZE = 64 << 20
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class SandboxError(Exception):
    """A sandbox could not be started; the message is one line for the user."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Sandbox:
    """One sandbox: a sentry kernel on a platform, serving one command tree."""

    def __init__(self, rootfs: str = "/", writable_root: bool = False, hostname: str = "snakevisor",
                 strace: TextIO | None = None, debug: bool = False, platform: str = "ptrace",
                 volumes: list[tuple[str, str, bool]] | None = None,
                 tmpfs: list[tuple[str, int | None, int]] | None = None,
                 overlay: str = "none", confine: bool = False) -> None:
        if not os.path.isdir(rootfs):
            raise SandboxError(f"rootfs {rootfs!r} is not a directory")
        if platform != "ptrace":
            raise SandboxError(f"unknown platform {platform!r} (available: ptrace)")
        self.rootfs = os.path.realpath(rootfs)
        self.writable_root = writable_root
        self.hostname = hostname
        self.strace = strace
        self.debug = debug
        self.volumes = volumes or []  #: (host dir, sandbox path, read-only)
        self.tmpfs = tmpfs or []  #: (sandbox path, size or None, mode)
        if overlay.startswith("root:dir="):
            store = overlay[len("root:dir="):]
            if not os.path.isdir(store):
                raise SandboxError(f"--overlay2 {overlay!r}: {store!r} is not a directory")
        elif overlay not in ("none", "root:memory"):
            raise SandboxError(f"--overlay2 {overlay!r}: expected none, root:memory or "
                               "root:dir=PATH")
        #: root:memory puts a sentry tmpfs over the root (writes never reach the host)
        self.overlay = overlay
        #: pivot this process into an empty tree once the sandbox is built (kernel/confine.py);
        #: for a process that exists only to be this sandbox's sentry (the CLI)
        self.confine = confine

    def run(self, argv: list[str], env: dict[str, str] | None = None, cwd: str = "/", *,
            identity: "Identity | None" = None,
            rlimits: "dict[int, tuple[int, int]] | None" = None, inherited: int = 0,
            capabilities: "dict[str, int] | None" = None, no_new_privs: bool = False,
            on_ready: "Callable[[Kernel], None] | None" = None) -> int:
        """Run argv to completion; returns its exit status (128+N if killed by signal N).

        identity: the first process's (uid, gid, supplementary groups) inside the sandbox;
        rlimits: resource number -> (soft, hard) for it; inherited: how many of our fds from 3
        up it gets as its own (fd 3 ..); capabilities/no_new_privs: its capability sets (masks
        by set name) and no_new_privs, as boot.spawn takes them; on_ready(kernel): called once the
        program is loaded (not yet running) and the sentry confined — the OCI runtime's
        `create` returns from there and `start` lets the loop begin."""
        if not argv:
            raise SandboxError("no command given")
        gofer = self._start_gofer()  # first: its start-up overlaps ours
        from snakevisor.kernel.boot import BootError, boot_init
        from snakevisor.kernel.kernel import Kernel
        from snakevisor.platform.ptrace import PlatformError, PtracePlatform

        env = dict(os.environ if env is None else env)
        try:
            platform = PtracePlatform()
        except (PlatformError, OSError) as exc:
            if gofer is not None:
                gofer.close()
            raise SandboxError(f"cannot start the platform: {exc}") from None
        kernel = Kernel(platform, None, hostname=self.hostname, strace=self.strace, debug=self.debug)
        if gofer is not None:  # a walk's answers stay valid for the rest of its system call
            gofer.conn.epoch = lambda: kernel.dispatched
        try:
            from snakevisor.fsimpl.devfs import DevFs
            from snakevisor.fsimpl.mqueuefs import mqueue_fs
            from snakevisor.fsimpl.procfs.fs import ProcFs
            from snakevisor.fsimpl.sandboxroot import SandboxRoot
            from snakevisor.fsimpl.sysfs import SysFs
            from snakevisor.fsimpl.tmpfs import Tmpfs
            devfs = DevFs()
            mounts = {
                b"/proc": ProcFs(kernel),
                b"/sys": SysFs(kernel),
                b"/dev": devfs,
                b"/dev/pts": devfs.pts,
                b"/dev/shm": Tmpfs(size=DEV_SHM_SIZE, mode=0o1777, source="shm"),
                b"/dev/mqueue": mqueue_fs(kernel),
            }
            for host_dir, inside, readonly in self.volumes:
                mounts[os.fsencode(inside)] = (gofer.volumes[inside] if gofer is not None else
                                               _host_dir_fs(host_dir, writable=not readonly))
            for inside, size, mode in self.tmpfs:
                mounts[os.fsencode(inside)] = Tmpfs(size=size, mode=mode)
            if self.overlay.startswith("root:"):
                from snakevisor.fsimpl.overlay import OverlayFs
                from snakevisor.fsimpl.tmpfs import FileStore
                store = None
                if self.overlay.startswith("root:dir="):  # the upper layer's bytes on disk
                    store = FileStore(gofer.upper if gofer is not None else
                                      _host_dir_fs(self.overlay[len("root:dir="):], writable=True))
                lower = gofer.root if gofer is not None else _host_dir_fs(self.rootfs, False)
                mounts[b"/"] = OverlayFs(lower,
                                         Tmpfs(mode=0o755, source="overlay-upper", store=store))
            else:  # --overlay2 none / --writable-root: the host directory itself
                mounts[b"/"] = (gofer.root if gofer is not None else
                                _host_dir_fs(self.rootfs, writable=self.writable_root))
            root = SandboxRoot(mounts)
            mounts[b"/proc"].mount_records = root.mount_records  # type: ignore[attr-defined]
            kernel.root = root
            if self.confine and gofer is not None:  # no host path is ours to open any more
                from snakevisor.kernel.confine import confine_sentry
                try:
                    confine_sentry()
                except OSError as exc:
                    raise SandboxError(f"cannot confine the sentry: {exc}") from None
            try:
                init = boot_init(kernel, [a.encode() for a in argv],
                          [f"{k}={v}".encode() for k, v in env.items()], cwd,
                          env.get("PATH", DEFAULT_PATH), identity=identity, rlimits=rlimits,
                          inherited=inherited, run=on_ready is None,
                          capabilities=capabilities, no_new_privs=no_new_privs)
            except BootError as exc:
                raise SandboxError(str(exc), exc.status) from None
            if on_ready is not None:
                on_ready(kernel)
                init.thread.resume()
            return kernel.run()
        finally:
            if gofer is not None:
                gofer.close(wait=False)  # it exits while the stubs are reaped
            kernel.shutdown()  # (which waits for every child of ours)
            if gofer is not None:
                gofer.close()

    def _start_gofer(self) -> "GoferMounts | None":
        """One gofer for the root, the volumes and a root:dir store — unless
        SNAKEVISOR_GOFER=0 (development only: the sentry then opens host paths itself and is
        not confined)."""
        if os.environ.get("SNAKEVISOR_GOFER") == "0":
            return None
        from snakevisor.gofer.launch import start_gofer_mounts
        upper = self.overlay[len("root:dir="):] if self.overlay.startswith("root:dir=") else None
        try:
            return start_gofer_mounts(self.rootfs, self.writable_root, self.volumes, upper,
                                      overlay=self.overlay.startswith("root:"))
        except OSError as exc:
            raise SandboxError(f"cannot start the gofer: {exc}") from None


def _host_dir_fs(host_dir: str, writable: bool) -> "Filesystem":
    """A host directory walked by the sentry itself (SNAKEVISOR_GOFER=0 only)."""
    from snakevisor.fsimpl.hostpathfs import HostPathFs
    return HostPathFs(host_dir, writable=writable)
