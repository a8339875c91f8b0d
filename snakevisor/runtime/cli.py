"""The `snakevisor` command line: `do` (a throwaway sandbox for one command) and the
runc-compatible verbs engines drive (runtime/oci_cli.py)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel

USAGE = "snakevisor do [--rootfs DIR] [--no-tty] [--strace] [--debug] [--debug-log DIR] [--cwd DIR] [--env K=V] -- CMD ARGS..."


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter, sized without `shutil` (which argparse imports for the terminal
    width on every add_argument: ~4 ms of every runtime verb, with bz2 and lzma)."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        if width is None:
            try:
                width = int(os.environ.get("COLUMNS") or os.get_terminal_size(1).columns) - 2
            except (OSError, ValueError):
                width = 78
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad input in one line and exits 2 (no usage dump, no traceback)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        _fail(f"{message} (usage: {USAGE})", 2)


def _fail(message: str, status: int = 1) -> None:
    sys.stderr.write(f"snakevisor: {message}\n")
    sys.exit(status)


def _parser(argv: "list[str] | None" = None) -> argparse.ArgumentParser:
    """The command line's parser; given argv, built for the one verb it names (`do` or a
    runtime verb: building all twenty costs every start ~5 ms)."""
    from snakevisor.runtime import oci_cli

    parser = _Parser(prog="snakevisor", add_help=True)
    oci_cli.add_global_flags(parser)
    sub = parser.add_subparsers(dest="verb", parser_class=_Parser)
    verb = _verb_named(argv) if argv is not None else None
    if verb in oci_cli.VERBS:
        oci_cli.add_verbs(sub, only=verb)
        return parser
    oci_cli.add_verbs(sub, only=verb)  # (only="do": none of them; no verb: all, for --help)
    do = sub.add_parser("do", help="run a command in a throwaway sandbox")
    do.add_argument("--rootfs", default="/", help="root file system of the sandbox (default /)")
    do.add_argument("--writable-root", action="store_true",
                    help="let the application write to the rootfs directory (default: read-only)")
    do.add_argument("--cwd", default=None, help="working directory inside the sandbox")
    do.add_argument("--env", action="append", default=[], metavar="K=V", help="set an environment variable")
    do.add_argument("--hostname", default="snakevisor", help="the sandbox's host name")
    do.add_argument("--volume", "-v", action="append", default=[], metavar="HOST:SANDBOX[:ro]",
                    help="bind a host directory into the sandbox (read-only with :ro)")
    do.add_argument("--tmpfs", action="append", default=[], metavar="PATH[:size=N,mode=M]",
                    help="mount a private tmpfs at PATH")
    do.add_argument("--overlay2", default=None, metavar="none|root:memory|root:dir=PATH",
                    help="root:memory (the default): a private tmpfs over the root takes all "
                         "writes; root:dir=PATH: the same, its file data kept in unlinked files "
                         "in the host directory PATH; none: the root itself, read-only unless "
                         "--writable-root")
    do.add_argument("--strace", action="store_true", help="print the application's system calls")
    do.add_argument("--debug", action="store_true", help="debug logging to stderr")
    do.add_argument("--debug-log", metavar="DIR", help="write one log per component into DIR")
    do.add_argument("--platform", default="ptrace", help="syscall interception platform (ptrace)")
    do.add_argument("--no-tty", action="store_true",
                    help="at a terminal, give the application the terminal itself instead of a "
                         "sandbox pty relayed to it (no job control inside)")
    do.add_argument("--network", default="none", choices=["none"],
                    help="network mode (only 'none' until the network issue)")
    do.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    return parser


#: global flags that take a value as the next argument
_VALUED_GLOBALS = ("--root", "--log", "--log-format", "--platform", "--network", "--debug-log",
                   "--overlay2")


def _verb_named(argv: list[str]) -> str | None:
    """The verb argv names: its first word that is neither a global flag nor a flag's value."""
    words = iter(argv)
    for word in words:
        if word in _VALUED_GLOBALS:
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def _setup_logging(debug: bool, debug_log: str | None) -> None:
    root = logging.getLogger("snakevisor")
    root.setLevel(logging.DEBUG if (debug or debug_log) else logging.ERROR)
    fmt = logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
    handler: logging.Handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.DEBUG if debug else logging.ERROR)
    handler.setFormatter(fmt)
    root.addHandler(handler)
    if debug_log:
        try:
            os.makedirs(debug_log, exist_ok=True)
            fh = logging.FileHandler(os.path.join(debug_log, "sentry.log"))
        except OSError as exc:
            _fail(f"cannot open debug log in {debug_log}: {exc.strerror}")
        fh.setFormatter(fmt)
        root.addHandler(fh)


def _parse_volume(spec: str) -> tuple[str, str, bool]:
    """HOST:SANDBOX[:ro|:rw] -> (host dir, sandbox path, read-only)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
        _fail(f"--volume expects HOST:SANDBOX[:ro], got {spec!r}", 2)
    host, inside = parts[0], parts[1]
    if not os.path.isdir(host):
        _fail(f"--volume {spec!r}: {host!r} is not a directory on the host", 2)
    if not inside.startswith("/") or os.path.normpath(inside) == "/":
        _fail(f"--volume {spec!r}: the sandbox path must be absolute and not /", 2)
    return os.path.realpath(host), os.path.normpath(inside), len(parts) == 3 and parts[2] == "ro"


def _parse_tmpfs(spec: str) -> tuple[str, int | None, int, str, list[str]]:
    """PATH[:size=N,mode=M,nosuid,nodev,noexec] -> (sandbox path, size in bytes or None,
    mode, "" (no pod volume), mount flags)."""
    from snakevisor.fsimpl.tmpfs import parse_tmpfs_options
    from snakevisor.runtime.spec import FLAG_OPTIONS, parse_mount_flags
    path, _, options = spec.partition(":")
    if not path.startswith("/") or os.path.normpath(path) == "/":
        _fail(f"--tmpfs {spec!r}: the path must be absolute and not /", 2)
    given = list(filter(None, options.split(",")))
    try:
        size, mode = parse_tmpfs_options([o for o in given if o not in FLAG_OPTIONS])
    except ValueError as exc:
        _fail(f"--tmpfs {spec!r}: bad option {str(exc)!r} (size=N[k|m|g|%], mode=OCTAL, "
              "[no]suid, [no]dev, [no]exec)", 2)
    return os.path.normpath(path), size, mode, "", parse_mount_flags(given)


def _overlay_mode(args: argparse.Namespace) -> str:
    """--writable-root means writes go through to the root directory: no overlay."""
    if args.overlay2 not in (None, "none", "root:memory") and \
            not (args.overlay2 or "").startswith("root:dir="):
        _fail(f"--overlay2 {args.overlay2!r}: expected none, root:memory or root:dir=PATH", 2)
    if (args.overlay2 or "").startswith("root:dir=") and \
            not os.path.isdir(args.overlay2[len("root:dir="):]):
        _fail(f"--overlay2 {args.overlay2}: not a directory", 2)
    if args.overlay2 not in (None, "none") and args.writable_root:
        _fail(f"--overlay2 {args.overlay2} and --writable-root contradict each other", 2)
    if args.overlay2 is None:
        return "none" if args.writable_root else "root:memory"
    return args.overlay2


def cmd_do(args: argparse.Namespace) -> int:
    from snakevisor.api import Sandbox, SandboxError

    command = args.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        _fail(f"no command given (usage: {USAGE})", 2)
    env = dict(os.environ)
    for item in args.env:
        if "=" not in item or item.startswith("="):
            _fail(f"--env expects K=V, got {item!r}", 2)
        key, value = item.split("=", 1)
        env[key] = value
    rootfs = os.path.abspath(args.rootfs)
    cwd = args.cwd
    if cwd is None:
        here = os.getcwd()
        cwd = here if rootfs == "/" else "/"
    if not cwd.startswith("/"):
        _fail(f"--cwd must be an absolute path inside the sandbox, got {cwd!r}", 2)
    _setup_logging(args.debug, args.debug_log)
    strace = None
    if args.strace:
        strace = sys.stderr
        if args.debug_log:
            strace = open(os.path.join(args.debug_log, "strace.log"), "w", buffering=1)
    volumes = [_parse_volume(v) for v in args.volume]
    tmpfs = [_parse_tmpfs(t) for t in args.tmpfs]
    overlay = _overlay_mode(args)
    terminal = None
    if not args.no_tty:
        from snakevisor.runtime.console import UserTerminal
        terminal = UserTerminal.open()

    def on_ready(kernel: "Kernel") -> None:
        """The program is loaded: its terminal, and the signals `do` hands on to it."""
        from snakevisor.runtime.host_signals import forward_signals_of_do
        if terminal is not None:
            terminal.attach(kernel)
        forward_signals_of_do(kernel, with_terminal=terminal is not None)

    try:
        sandbox = Sandbox(rootfs=rootfs, writable_root=args.writable_root, hostname=args.hostname,
                          strace=strace, debug=args.debug, platform=args.platform,
                          volumes=volumes, tmpfs=tmpfs, overlay=overlay, confine=True)
        return sandbox.run(command, env=env, cwd=os.path.normpath(cwd), on_ready=on_ready)
    except SandboxError as exc:
        _fail(str(exc), exc.status)
    finally:
        if terminal is not None:
            terminal.close()
    return 1


#: verbs whose processes hand their stdio on to an application
_STDIO_VERBS = (None, "do", "create", "run", "exec")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parser(argv).parse_args(argv)  # (opens nothing that stays open)
    if args.verb in _STDIO_VERBS:
        from snakevisor.fsimpl.stdio import reserve_closed_stdio
        reserve_closed_stdio()  # before anything of ours may take a closed fd 0-2
    if args.g_version:
        from snakevisor.runtime.oci_cli import version_text
        sys.stdout.write(version_text())
        return 0
    if args.verb not in (None, "do"):
        from snakevisor.runtime.oci_cli import run_verb
        _setup_logging(args.g_debug, args.g_debug_log)
        return _guarded(run_verb, args)
    if args.verb == "do":
        return _guarded(cmd_do, args)
    _fail(f"a verb is required (usage: {USAGE})", 2)
    return 2


def _guarded(verb: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a verb; a bug of ours is one line (the traceback with --debug), ^C is 130."""
    try:
        return verb(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        logging.getLogger("snakevisor").debug("internal error", exc_info=True)
        _fail(f"internal error: {type(exc).__name__}: {exc}", 1)
    return 1
