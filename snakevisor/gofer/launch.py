"""Starting a gofer for a container: the socketpair and the process (the launcher's side).

Cheap to import on purpose (no ctypes, no 9P codec): a sandbox starts its gofer before
anything else, so the gofer's interpreter start-up and confinement overlap the sentry's.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from snakevisor.gofer import Volume

if TYPE_CHECKING:
    from snakevisor.fsimpl.goferfs import GoferConnection, GoferMounts

_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def start_gofer(root: str, volumes: list[Volume] | tuple[Volume, ...] = (), ro_root: bool = False,
                debug: bool = False, extra_args: tuple[str, ...] = (),
                stderr: int | None = None) -> tuple[subprocess.Popen, socket.socket]:
    """(gofer process, our end of its SOCK_SEQPACKET socket); the gofer exits when it closes.

    The gofer inherits the caller's CPU affinity: once the sentry has pinned itself, put the
    gofer on the same CPU (GoferConnection.pin).  A Tgetattr round trip then measures ~25 us,
    against ~90-100 us when every request must wake the other CPU.
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    argv = [sys.executable, "-m", "snakevisor.gofer", "--fd", str(theirs.fileno()),
            "--root", root]
    if ro_root:
        argv.append("--ro-root")
    for v in volumes:
        argv += ["--volume", f"{v.host}:{os.fsdecode(v.path)}:{'ro' if v.ro else 'rw'}"]
    if debug:
        argv.append("--debug")
    argv += extra_args
    # bytecode may be cached: without it the gofer's imports take twice as long
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PYTHONPATH": _PACKAGE_PARENT}
    try:
        proc = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=stderr)  # the sandbox's output is never the gofer's
    finally:
        theirs.close()
    return proc, ours


#: attach name of the directory that backs the overlay's upper layer (root:dir=PATH); two
#: leading slashes, which a volume's normalised sandbox path does not have by accident
UPPER_ANAME = b"//overlay-upper"


@dataclass
class GoferPlan:
    """What one sandbox's (or pod member's) gofer exports, resolved on the host.

    Plain values only: a pod member's plan is made by the runtime, which starts the gofer,
    and travels as JSON to the confined sentry, which mounts the exports (`mounts_over`)."""

    rootfs: str
    root_writable: bool
    volumes: list[tuple[str, str, bool]]  #: (host path, sandbox path as given, read-only)
    upper_dir: str | None = None
    overlay: bool = False
    #: each exported host path's st_dev, which stat() reports (a confined sentry cannot ask)
    devs: dict[str, int] = field(default_factory=dict)

    @classmethod
    def resolve(cls, rootfs: str, root_writable: bool, volumes: list[tuple[str, str, bool]],
                upper_dir: str | None = None, overlay: bool = False) -> "GoferPlan":
        """Host paths resolved and checked here, while they can still be seen.  Under an
        overlay the root is its lower layer, which nothing writes: exported read-only."""
        rootfs = os.path.realpath(rootfs)
        root_writable = root_writable and not overlay
        resolved = []
        for host, inside, ro in volumes:
            host = os.path.realpath(host)
            if not (os.path.isdir(host) or os.path.isfile(host)):
                raise FileNotFoundError(host)  # a directory or a regular file (a file bind)
            resolved.append((host, inside, ro))
        if upper_dir is not None:
            upper_dir = os.path.realpath(upper_dir)
            if not os.path.isdir(upper_dir):
                raise NotADirectoryError(upper_dir)
        paths = [rootfs, *(h for h, _, _ in resolved), *([upper_dir] if upper_dir else [])]
        return cls(rootfs, root_writable, resolved, upper_dir, overlay,
                   {path: os.stat(path).st_dev for path in paths})

    def exports(self) -> list[Volume]:
        out = [Volume(h, os.fsencode(os.path.normpath(inside)), ro)
               for h, inside, ro in self.volumes]
        if self.upper_dir is not None:
            out.append(Volume(self.upper_dir, UPPER_ANAME, False))
        return out

    def start(self, stderr: int | None = None) -> tuple[subprocess.Popen, socket.socket]:
        return start_gofer(self.rootfs, self.exports(), ro_root=not self.root_writable,
                           stderr=stderr)


def mounts_over(conn: "GoferConnection", plan: GoferPlan) -> "GoferMounts":
    """The file systems of a plan's exports over one session (the gofer already started).

    With overlay (the root is the overlay's read-only lower layer: a container image, which
    nothing changes) the root is "exclusive", as runsc's default: its names are cached and
    trusted.  A root written through (`--overlay2 none`) and the volumes are shared with the
    host, whose changes must be seen at once: every walk revalidates."""
    from snakevisor.fsimpl.goferfs import GoferFs, GoferMounts
    try:
        devs = plan.devs
        root = GoferFs(conn, b"/", plan.rootfs, plan.root_writable, exclusive=plan.overlay,
                       dev=devs.get(plan.rootfs))
        mounted = {inside: GoferFs(conn, os.fsencode(os.path.normpath(inside)), host, not ro,
                                   dev=devs.get(host))
                   for host, inside, ro in plan.volumes}
        upper = (GoferFs(conn, UPPER_ANAME, plan.upper_dir, True, exclusive=True,
                         dev=devs.get(plan.upper_dir))
                 if plan.upper_dir is not None else None)
    except BaseException:
        conn.close()
        raise
    return GoferMounts(conn, root, mounted, upper)


def start_gofer_mounts(rootfs: str, root_writable: bool, volumes: list[tuple[str, str, bool]],
                       upper_dir: str | None = None, overlay: bool = False) -> "GoferMounts":
    """ONE gofer for a sandbox: the container root (attach name "/"), every volume (attach
    name = its sandbox path) and the overlay's upper directory if any (`--overlay2
    root:dir=PATH`), one file system each over a shared session.

    volumes are (host dir, sandbox path, read-only) as api.Sandbox keeps them.  Returns as
    soon as the process is spawned: the session opens on first use."""
    from snakevisor.fsimpl.goferfs import GoferConnection
    plan = GoferPlan.resolve(rootfs, root_writable, volumes, upper_dir, overlay)
    proc, sock = plan.start()
    return mounts_over(GoferConnection(proc, sock), plan)
