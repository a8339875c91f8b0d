"""``python -m snakevisor.gofer``: confine this process, then serve 9P2000.L on a socket fd.

    python -m snakevisor.gofer --fd N --root PATH [--ro-root]
                               [--volume HOST:SANDBOX[:ro]]... [--debug] [--no-seccomp]

The socket (fd N, inherited) is one end of an AF_UNIX SOCK_SEQPACKET socketpair; the process
exits when the other end closes.  Must run as root on the host (it unshares a mount
namespace and pivots).  ``--no-seccomp`` exists only to measure the allowlist with strace.
"""
from __future__ import annotations

import os
import signal
import socket
import sys

from snakevisor.gofer import Volume, confine
from snakevisor.gofer.server import Server

_USAGE = ("usage: python -m snakevisor.gofer --fd N --root PATH [--ro-root] "
          "[--volume HOST:SANDBOX[:ro]]... [--debug]")


class UsageError(Exception):
    """A bad command line (the launcher's bug: the gofer is not a user-facing command)."""


def parse_volume(spec: str) -> Volume:
    """HOST:SANDBOX[:ro] (HOST and SANDBOX absolute paths)."""
    parts = spec.split(":")
    ro = len(parts) == 3 and parts[2] == "ro"
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        raise UsageError(f"volume {spec!r} is not HOST:SANDBOX[:ro]")
    host, path = parts[0], parts[1]
    if not host.startswith("/") or not path.startswith("/"):
        raise UsageError(f"volume {spec!r}: both paths must be absolute")
    return Volume(host, os.fsencode(os.path.normpath(path)), ro)


def parse_args(argv: list[str]) -> dict:
    """The options above (argparse would cost a fifth of the gofer's start-up)."""
    opts: dict = {"fd": None, "root": None, "ro_root": False, "volumes": [], "debug": False,
                  "seccomp": True}
    args = iter(argv)
    for arg in args:
        flag = {"--ro-root": "ro_root", "--debug": "debug"}.get(arg)
        if flag is not None:
            opts[flag] = True
        elif arg == "--no-seccomp":  # only to measure the allowlist with strace
            opts["seccomp"] = False
        elif arg in ("--fd", "--root", "--volume"):
            value = next(args, None)
            if value is None:
                raise UsageError(f"{arg} needs a value")
            if arg == "--fd":
                if not value.isdigit():
                    raise UsageError(f"--fd {value!r} is not a descriptor number")
                opts["fd"] = int(value)
            elif arg == "--root":
                opts["root"] = value
            else:
                opts["volumes"].append(parse_volume(value))
        else:
            raise UsageError(f"unknown argument {arg!r}")
    if opts["fd"] is None or opts["root"] is None:
        raise UsageError("--fd and --root are required")
    return opts


def main(argv: list[str] | None = None) -> int:
    try:
        opts = parse_args(sys.argv[1:] if argv is None else argv)
    except UsageError as e:
        print(f"snakevisor gofer: {e}\n{_USAGE}", file=sys.stderr)
        return 2
    sock = socket.socket(fileno=opts["fd"])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the sentry's business
    os.umask(0)  # modes arrive with the sandbox's umask applied already
    try:
        confine.build_tree(opts["root"], opts["volumes"], opts["ro_root"])
        exports = confine.open_exports(opts["volumes"])
        confine.lock_down(filter_syscalls=opts["seccomp"])
    except OSError as e:
        print(f"snakevisor gofer: cannot confine itself: {e}", file=sys.stderr, flush=True)
        return 1
    Server(sock, exports, debug=opts["debug"]).serve()
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown: its calls are not on the allowlist


if __name__ == "__main__":
    sys.exit(main())
