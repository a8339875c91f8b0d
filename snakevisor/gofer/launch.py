"""Starting a gofer for a container: the socketpair and the process (the launcher's side).

Cheap to import on purpose (no ctypes, no 9P codec): a sandbox starts its gofer before
anything else, so the gofer's interpreter start-up and confinement overlap the sentry's.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

from snakevisor.gofer import Volume

if TYPE_CHECKING:
    from snakevisor.fsimpl.goferfs import GoferMounts

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


def start_gofer_mounts(rootfs: str, root_writable: bool, volumes: list[tuple[str, str, bool]],
                       upper_dir: str | None = None, overlay: bool = False) -> "GoferMounts":
    """ONE gofer for a sandbox: the container root (attach name "/"), every volume (attach
    name = its sandbox path) and the overlay's upper directory if any (`--overlay2
    root:dir=PATH`), one file system each over a shared session.

    volumes are (host dir, sandbox path, read-only) as api.Sandbox keeps them.  Returns as
    soon as the process is spawned: the session opens on first use.  Host paths are
    resolved and stat'ed here, before the sentry gives up its own view of the host.

    With overlay (the root is the overlay's read-only lower layer: a container image, which
    nothing changes) the root is "exclusive", as runsc's default: its names are cached and
    trusted.  A root written through (`--overlay2 none`) and the volumes are shared with the
    host, whose changes must be seen at once: every walk revalidates."""
    rootfs = os.path.realpath(rootfs)
    specs = []
    for host, inside, ro in volumes:
        host = os.path.realpath(host)
        if not (os.path.isdir(host) or os.path.isfile(host)):
            raise FileNotFoundError(host)  # a directory or a regular file (a file bind mount)
        specs.append(Volume(host, os.fsencode(os.path.normpath(inside)), ro))
    exports = list(specs)
    if upper_dir is not None:
        upper_dir = os.path.realpath(upper_dir)
        if not os.path.isdir(upper_dir):
            raise NotADirectoryError(upper_dir)
        exports.append(Volume(upper_dir, UPPER_ANAME, False))
    proc, sock = start_gofer(rootfs, exports, ro_root=not root_writable)
    from snakevisor.fsimpl.goferfs import GoferConnection, GoferFs, GoferMounts
    conn = GoferConnection(proc, sock)
    try:
        root = GoferFs(conn, b"/", rootfs, root_writable, exclusive=overlay)
        mounted = {inside: GoferFs(conn, v.path, v.host, not v.ro)
                   for (_, inside, _), v in zip(volumes, specs)}
        upper = (GoferFs(conn, UPPER_ANAME, upper_dir, True, exclusive=True)
                 if upper_dir is not None else None)
    except BaseException:
        conn.close()
        raise
    return GoferMounts(conn, root, mounted, upper)
