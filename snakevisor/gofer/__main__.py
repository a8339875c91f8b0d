"""``python -m snakevisor.gofer``: confine this process, then serve 9P2000.L on a socket fd.

    python -m snakevisor.gofer --fd N --root PATH [--ro-root]
                               [--volume HOST:SANDBOX[:ro]]... [--debug] [--no-seccomp]

The socket (fd N, inherited) is one end of an AF_UNIX SOCK_SEQPACKET socketpair; the process
exits when the other end closes.  Must run as root on the host (it unshares a mount
namespace and pivots).  ``--no-seccomp`` exists only to measure the allowlist with strace.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys

from snakevisor.gofer import confine
from snakevisor.gofer.server import Server


def parse_volume(spec: str) -> confine.Volume:
    """HOST:SANDBOX[:ro] (HOST and SANDBOX absolute paths)."""
    parts = spec.split(":")
    ro = len(parts) == 3 and parts[2] == "ro"
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise argparse.ArgumentTypeError(f"volume {spec!r} is not HOST:SANDBOX[:ro]")
    host, path = parts[0], parts[1]
    if not host.startswith("/") or not path.startswith("/"):
        raise argparse.ArgumentTypeError(f"volume {spec!r}: both paths must be absolute")
    return confine.Volume(host, os.fsencode(os.path.normpath(path)), ro)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="snakevisor.gofer", description=__doc__.splitlines()[0])
    ap.add_argument("--fd", type=int, required=True, help="the SOCK_SEQPACKET socket to serve")
    ap.add_argument("--root", required=True, help="the container's root directory")
    ap.add_argument("--ro-root", action="store_true", help="serve the root read-only")
    ap.add_argument("--volume", type=parse_volume, action="append", default=[],
                    help="a bind mount HOST:SANDBOX[:ro]; attach name SANDBOX")
    ap.add_argument("--debug", action="store_true", help="log every message on stderr")
    ap.add_argument("--no-seccomp", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sock = socket.socket(fileno=args.fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the sentry's business
    try:
        confine.build_tree(args.root, args.volume, args.ro_root)
        exports = confine.open_exports(args.volume)
        confine.lock_down(filter_syscalls=not args.no_seccomp)
    except OSError as e:
        print(f"snakevisor gofer: cannot confine itself: {e}", file=sys.stderr, flush=True)
        return 1
    Server(sock, exports, debug=args.debug).serve()
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown: its calls are not on the allowlist


if __name__ == "__main__":
    sys.exit(main())
