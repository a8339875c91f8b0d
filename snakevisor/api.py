"""The embeddable Python API: run a command in a throwaway sandbox.

    from snakevisor.api import Sandbox
    status = Sandbox(rootfs="/").run(["/bin/echo", "hi"])
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, TextIO

from snakevisor.fsimpl.mountns import MountConfig

if TYPE_CHECKING:
    from typing import Callable

    from snakevisor.gofer.launch import GoferMounts
    from snakevisor.kernel.boot import Identity
    from snakevisor.kernel.kernel import Kernel


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
                 tmpfs: "list[tuple] | None" = None,
                 overlay: str = "none", confine: bool = False,
                 masked_paths: list[str] | None = None,
                 readonly_paths: list[str] | None = None, dev_console: bool = True,
                 mount_flags: dict[str, list[str]] | None = None,
                 mounts: MountConfig | None = None) -> None:
        """The first container's mounts: rootfs and the rest of the mount arguments (tmpfs
        entries are (sandbox path, size or None, mode[, pod volume name[, mount flags]]),
        volumes (host dir, sandbox path, read-only), mount_flags sandbox path -> of
        "nosuid", "nodev", "noexec"), or a whole recipe as `mounts` (the OCI runtime's,
        which pod members share), which then stands for all of them."""
        if mounts is None:
            flags = dict(mount_flags or {})
            flags.update({t[0]: list(t[4]) for t in tmpfs or [] if len(t) > 4})  # type: ignore[misc]
            mounts = MountConfig(
                os.path.realpath(rootfs), writable_root, list(volumes or []),
                [(t[0], t[1], t[2], t[3] if len(t) > 3 else "") for t in tmpfs or []],  # type: ignore[misc]
                overlay, list(masked_paths or []), list(readonly_paths or []), dev_console,
                flags)
        if not os.path.isdir(mounts.rootfs):
            raise SandboxError(f"rootfs {mounts.rootfs!r} is not a directory")
        if platform != "ptrace":
            raise SandboxError(f"unknown platform {platform!r} (available: ptrace)")
        self.mounts = mounts
        try:
            self.mounts.check_overlay()
        except ValueError as exc:
            raise SandboxError(str(exc)) from None
        self.hostname = hostname
        self.strace = strace
        self.debug = debug
        #: pivot this process into an empty tree once the sandbox is built (kernel/confine.py);
        #: for a process that exists only to be this sandbox's sentry (the CLI)
        self.confine = confine

    def run(self, argv: list[str], env: dict[str, str] | None = None, cwd: str = "/", *,
            identity: "Identity | None" = None,
            rlimits: "dict[int, tuple[int, int]] | None" = None, inherited: int = 0,
            capabilities: "dict[str, int] | None" = None, no_new_privs: bool = False,
            default_home: bool = False,
            on_ready: "Callable[[Kernel], bool | None] | None" = None) -> int:
        """Run argv to completion; returns its exit status (128+N if killed by signal N).

        identity: the first process's (uid, gid, supplementary groups) inside the sandbox;
        rlimits: resource number -> (soft, hard) for it; inherited: how many of our fds from 3
        up it gets as its own (fd 3 ..); capabilities/no_new_privs: its capability sets (masks
        by set name), no_new_privs and default_home (HOME from /etc/passwd when env has
        none, as runc sets it), as boot.spawn takes them; on_ready(kernel): called once the
        program is loaded (not yet running) and the sentry confined — the OCI runtime's
        `create` returns from there and `start` lets the loop begin; if it returns False the
        first process stays stopped until the caller resumes it (startContainer hooks)."""
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
            from snakevisor.fsimpl.mountns import build_root
            root = build_root(kernel, self.mounts, gofer)
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
                          capabilities=capabilities, no_new_privs=no_new_privs,
                          default_home=default_home)
            except BootError as exc:
                raise SandboxError(str(exc), exc.status) from None
            import threading
            if threading.current_thread() is threading.main_thread():
                from snakevisor.kernel.debug import dump_on_signal
                dump_on_signal(kernel)  # SIGUSR2: what every task is doing, on stderr
            if on_ready is not None:
                if on_ready(kernel) is not False:  # (False: the caller resumes it later)
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
        m = self.mounts
        try:
            return start_gofer_mounts(m.rootfs, m.writable_root, m.volumes, m.upper_dir,
                                      overlay=m.overlay.startswith("root:"))
        except OSError as exc:
            raise SandboxError(f"cannot start the gofer: {exc}") from None
