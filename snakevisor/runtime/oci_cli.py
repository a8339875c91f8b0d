"""The runc-compatible verbs of the `snakevisor` command (create, start, state, kill, delete,
run, ps, list, spec, features, wait) and their global flags.

Engines speak to a runtime only through these spellings (../shared/oci-runtime-contract.md):
long options, values given separately or with `=`, the container id last (kill: id, then
signal).  A failure is one line on stderr and, with --log, a JSON (or logfmt) line
{"level":"error","msg":…,"time":…} that containerd and podman show their users.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from snakevisor.runtime import OneLineError, container
from snakevisor.runtime.state import DEFAULT_ROOT, OCI_VERSION

if TYPE_CHECKING:  # (spec, subprocess, shutil, datetime: imported where used, so that the
    # verbs engines call most — state, start, kill, delete — start fast)
    from snakevisor.runtime.spec import ProcessSpec

VERSION = "0.6.0"
DOCKER_CONFIG = "/etc/docker/daemon.json"
#: verbs of runc's that the engines may call and that are not built yet: they fail loudly
NOT_YET = ("checkpoint", "restore")


def add_global_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("runtime (runc-compatible) global flags")
    g.add_argument("--root", dest="g_root", default=DEFAULT_ROOT,
                   help=f"state directory (default {DEFAULT_ROOT})")
    g.add_argument("--log", dest="g_log", default=None, help="append errors to this file")
    g.add_argument("--log-format", dest="g_log_format", default="text", choices=["text", "json"])
    g.add_argument("--debug", dest="g_debug", action="store_true", help="debug logging")
    g.add_argument("--systemd-cgroup", dest="g_systemd_cgroup", action="store_true",
                   help="accepted for compatibility (cgroupfs is used)")
    g.add_argument("--platform", dest="g_platform", default="ptrace")
    g.add_argument("--network", dest="g_network", default="none", choices=["none"])
    g.add_argument("--strace", dest="g_strace", action="store_true")
    g.add_argument("--debug-log", dest="g_debug_log", default=None, metavar="DIR")
    g.add_argument("--overlay2", dest="g_overlay2", default="root:memory",
                   metavar="none|root:memory|root:dir=PATH")
    g.add_argument("--oci-seccomp", dest="g_oci_seccomp", action="store_true",
                   help="enforce config.json's seccomp profile inside the sandbox")
    g.add_argument("--version", "-v", dest="g_version", action="store_true")


class _Unbuilt:
    """Stands for the parser of a verb not on the command line (add_verbs's `only`)."""

    def add_argument(self, *args: object, **kwargs: object) -> None:
        pass


def add_verbs(sub: argparse._SubParsersAction, only: str | None = None) -> None:
    """The verbs' parsers; with `only`, just that verb's (the others cost a light verb's
    start-up ~4 ms, and the command line names one verb)."""
    def parser(name: str, help_text: str) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return _Unbuilt()  # type: ignore[return-value]
        return sub.add_parser(name, help=help_text)

    def verb(name: str, help_text: str, with_id: bool = True) -> argparse.ArgumentParser:
        p = parser(name, help_text)
        if with_id:
            p.add_argument("id")
        return p

    for name in ("create", "run"):
        p = verb(name, "create a container" if name == "create" else "create, start and wait")
        p.add_argument("--bundle", "-b", default=".")
        p.add_argument("--pid-file", default=None)
        p.add_argument("--console-socket", default=None)
        p.add_argument("--preserve-fds", type=int, default=0)
        p.add_argument("--no-pivot", action="store_true")
        p.add_argument("--no-new-keyring", action="store_true")
        if name == "run":
            p.add_argument("--detach", "-d", action="store_true")
            p.add_argument("--no-subreaper", action="store_true")
    p = parser("exec", "run a process in a running container")
    p.add_argument("--process", "-p", default=None, help="an OCI process JSON file")
    p.add_argument("--detach", "-d", action="store_true")
    p.add_argument("--pid-file", default=None)
    p.add_argument("--console-socket", default=None)
    p.add_argument("--tty", "-t", action="store_true")
    p.add_argument("--cwd", default=None)
    p.add_argument("--env", "-e", action="append", default=[])
    p.add_argument("--user", "-u", default=None, help="UID[:GID]")
    p.add_argument("--additional-gids", "-g", action="append", default=[])
    p.add_argument("--preserve-fds", type=int, default=0)
    p.add_argument("--no-new-privs", action="store_true")
    p.add_argument("id")
    p.add_argument("command", nargs=argparse.REMAINDER)
    verb("start", "start a created container")
    verb("state", "print a container's OCI state")
    p = verb("kill", "send a signal to a container")
    p.add_argument("signal", nargs="?", default="SIGTERM")
    p.add_argument("--all", "-a", action="store_true")
    p = verb("delete", "delete a container")
    p.add_argument("--force", "-f", action="store_true")
    p = verb("ps", "host pids of a container's processes")
    p.add_argument("--format", "-f", default="table", choices=["table", "json"])
    p.add_argument("ps_args", nargs=argparse.REMAINDER)
    p = verb("list", "list containers", with_id=False)
    p.add_argument("--format", "-f", default="table", choices=["table", "json"])
    p.add_argument("--quiet", "-q", action="store_true")
    p = verb("spec", "write a config.json", with_id=False)
    p.add_argument("--bundle", "-b", default=".")
    p.add_argument("--rootless", action="store_true")
    verb("features", "what this runtime supports", with_id=False)
    for name in ("install", "uninstall"):
        p = verb(name, f"{name} snakevisor as a Docker runtime (daemon.json)", with_id=False)
        p.add_argument("--runtime", default="snakevisor", help="the runtime's name for docker")
        p.add_argument("--config-file", default=DOCKER_CONFIG)
        if name == "install":
            p.add_argument("runtime_args", nargs="*", help="flags docker passes it (after --)")
    verb("pause", "freeze a container's processes")
    verb("resume", "thaw a paused container")
    p = verb("update", "change a running container's resource limits")
    p.add_argument("--resources", "-r", required=True, help="LinuxResources JSON file, - = stdin")
    p = verb("events", "a container's figures")
    p.add_argument("--stats", action="store_true")
    p.add_argument("--interval", default="5s")
    verb("wait", "wait for a container to end; exits with its status")
    p = verb("debug", "what every task of a container's sandbox is doing")
    p.add_argument("--stacks", action="store_true", help="(runsc's spelling; the default)")
    for name in NOT_YET:
        p = parser(name, "not implemented yet")
        p.add_argument("rest", nargs=argparse.REMAINDER)


VERBS = {"create", "run", "exec", "start", "state", "kill", "delete", "ps", "list", "spec", "features",
         "wait", "pause", "resume", "update", "events", "install", "uninstall", "debug",
         *NOT_YET}


class RuntimeLog:
    """Errors for the engine: stderr always, and --log in its format when given."""

    def __init__(self, path: str | None, fmt: str) -> None:
        self.path = path
        self.fmt = fmt

    def line(self, level: str, msg: str) -> str:
        from datetime import datetime, timezone
        now = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        if self.fmt == "json":
            return json.dumps({"level": level, "msg": msg, "time": now})
        return f'time="{now}" level={level} msg={json.dumps(msg)}'

    def error(self, msg: str) -> None:
        sys.stderr.write(f"snakevisor: {msg}\n")
        self.write("error", msg)

    def write(self, level: str, msg: str) -> None:
        if not self.path:
            return
        try:
            with open(self.path, "a") as fh:
                fh.write(self.line(level, msg) + "\n")
        except OSError:
            pass

    def handler(self) -> logging.Handler | None:
        """A logging handler writing this log's lines (for the sentry, opened now)."""
        if not self.path:
            return None
        try:
            stream = open(self.path, "a", buffering=1)
        except OSError:
            return None
        handler = logging.StreamHandler(stream)
        handler.setLevel(logging.WARNING)
        handler.format = lambda record: self.line(  # type: ignore[method-assign]
            {"WARNING": "warning", "ERROR": "error", "CRITICAL": "error"}.get(
                record.levelname, record.levelname.lower()), record.getMessage())
        return handler


def run_verb(args: argparse.Namespace) -> int:
    rlog = RuntimeLog(args.g_log, args.g_log_format)
    opts = container.Options(root=args.g_root, platform=args.g_platform,
                             overlay=args.g_overlay2, debug=args.g_debug,
                             strace=args.g_strace, systemd_cgroup=args.g_systemd_cgroup,
                             oci_seccomp=args.g_oci_seccomp,
                             log_handler=None)
    try:
        return _dispatch(args, opts, rlog)
    except OneLineError as exc:
        rlog.error(str(exc))
        return 1
    except OSError as exc:
        rlog.error(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        return 1


def _dispatch(args: argparse.Namespace, opts: container.Options, rlog: RuntimeLog) -> int:
    verb = args.verb
    if verb in NOT_YET:
        raise container.RuntimeFailure(f"{verb} is not implemented yet")
    if verb in ("create", "run"):
        if args.g_overlay2 not in ("none", "root:memory") and \
                not args.g_overlay2.startswith("root:dir="):
            raise container.RuntimeFailure(f"--overlay2 {args.g_overlay2!r}: expected none, "
                                           "root:memory or root:dir=PATH")
        container.check_preserved_fds(args.preserve_fds)
        opts.log_handler = rlog.handler()
        if verb == "create":
            container.create(opts, args.id, args.bundle, args.pid_file, args.console_socket,
                             args.preserve_fds)
            return 0
        return container.run(opts, args.id, args.bundle, args.pid_file, args.detach,
                             args.preserve_fds, args.console_socket)
    if verb == "exec":
        container.check_preserved_fds(args.preserve_fds)
        process = _exec_process(args)
        process.terminal = process.terminal or args.tty
        return container.exec_(opts, args.id, process, args.pid_file, args.detach,
                               args.console_socket, args.preserve_fds)
    if verb == "start":
        container.start(opts, args.id)
    elif verb == "state":
        print(json.dumps(container.state(opts, args.id), indent=2))
    elif verb == "kill":
        container.kill(opts, args.id, parse_signal(args.signal), args.all)
    elif verb == "delete":
        container.delete(opts, args.id, args.force)
    elif verb == "ps":
        _print_ps(container.ps(opts, args.id), args.format, args.ps_args)
    elif verb == "list":
        _print_list(container.list_containers(opts), args.format, args.quiet)
    elif verb == "spec":
        _write_spec(args.bundle)
    elif verb == "features":
        print(json.dumps(features(), indent=2))
    elif verb == "wait":
        return container.wait(opts, args.id)
    elif verb in ("install", "uninstall"):
        docker_config(args.config_file, args.runtime,
                      args.runtime_args if verb == "install" else None)
    elif verb in ("pause", "resume"):
        container.pause(opts, args.id, verb == "pause")
    elif verb == "update":
        container.update(opts, args.id, _read_resources(args.resources))
    elif verb == "events":
        _events(opts, args)
    elif verb == "debug":
        print(container.debug_report(opts, args.id))
    return 0


def own_path() -> str:
    """The `snakevisor` executable engines should run: the console script beside our
    interpreter (a venv's bin/), else what PATH finds."""
    beside = os.path.join(os.path.dirname(sys.executable), "snakevisor")
    if os.access(beside, os.X_OK):
        return beside
    import shutil
    found = shutil.which("snakevisor")
    if found is None:
        raise container.RuntimeFailure("cannot find the snakevisor executable to register")
    return os.path.abspath(found)


def docker_config(path: str, name: str, runtime_args: list[str] | None) -> None:
    """Add (runtime_args given) or remove runtime NAME in Docker's daemon.json, keeping
    everything else in it; dockerd reads it on its next start or SIGHUP."""
    try:
        with open(path) as fh:
            config = json.load(fh)
    except FileNotFoundError:
        config = {}
    except (OSError, ValueError) as exc:
        raise container.RuntimeFailure(f"cannot read {path}: {exc}") from None
    if not isinstance(config, dict) or not isinstance(config.get("runtimes", {}), dict):
        raise container.RuntimeFailure(f"{path}: not a daemon.json object")
    runtimes = config.setdefault("runtimes", {})
    if runtime_args is None:
        if runtimes.pop(name, None) is None:
            raise container.RuntimeFailure(f"{path} has no runtime {name!r}")
        if not runtimes:
            del config["runtimes"]
    else:
        entry: dict = {"path": own_path()}
        if runtime_args:
            entry["runtimeArgs"] = list(runtime_args)
        runtimes[name] = entry
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(config, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)
    print(f"{'added' if runtime_args is not None else 'removed'} runtime {name!r} in {path}")


def _read_resources(source: str) -> dict:
    """update --resources: LinuxResources JSON from a file or stdin (docker: -)."""
    try:
        text = sys.stdin.read() if source == "-" else open(source).read()
        raw = json.loads(text)
    except OSError as exc:
        raise container.RuntimeFailure(f"cannot read {source}: {exc.strerror}") from None
    except ValueError as exc:
        raise container.RuntimeFailure(f"--resources is not valid JSON: {exc}") from None
    from snakevisor.runtime.spec import parse_resources
    return parse_resources(raw)


def _events(opts: container.Options, args: argparse.Namespace) -> None:
    """events --stats: one stats object; events: one every --interval until it stops."""
    text = args.interval.rstrip("s")
    try:
        interval = float(text)
    except ValueError:
        raise container.RuntimeFailure(f"--interval {args.interval!r}: expected seconds, "
                                       "e.g. 5s") from None
    while True:
        print(json.dumps(container.stats(opts, args.id)), flush=True)
        if args.stats:
            return
        import time
        time.sleep(interval)


def parse_signal(text: str) -> int:
    """kill's signal: a number, NAME or SIGNAME (runc's spellings)."""
    if text.isdigit():
        number = int(text)
        if not 0 < number < 65:
            raise container.RuntimeFailure(f"invalid signal {text!r}")
        return number
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise container.RuntimeFailure(f"invalid signal {text!r}") from None


def _exec_process(args: argparse.Namespace) -> ProcessSpec:
    """exec's process: --process FILE (what engines give), or runc's flags and a command."""
    from snakevisor.api import DEFAULT_PATH
    from snakevisor.runtime.spec import parse_process
    if args.process is not None:
        try:
            with open(args.process, "rb") as fh:
                raw = json.loads(fh.read())
        except OSError as exc:
            raise container.RuntimeFailure(f"cannot read {args.process}: {exc.strerror}") \
                from None
        except ValueError as exc:
            raise container.RuntimeFailure(f"{args.process} is not valid JSON: {exc}") from None
        process = parse_process(raw)
    else:
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        uid, _, gid = (args.user or "0").partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise container.RuntimeFailure(f"--user {args.user!r}: expected UID[:GID]")
        bad = [g for g in args.additional_gids if not g.isdigit()]
        if bad:
            raise container.RuntimeFailure(f"--additional-gids {bad[0]!r}: expected a GID")
        raw = {"args": command, "cwd": args.cwd or "/",
               "env": [f"PATH={DEFAULT_PATH}", *args.env],
               "user": {"uid": int(uid), "gid": int(gid or 0),
                        "additionalGids": [int(g) for g in args.additional_gids]}}
        process = parse_process(raw, "exec")
    if args.cwd:
        process.cwd = os.path.normpath(args.cwd)
    for item in args.env if args.process is not None else []:
        key, sep, value = item.partition("=")
        if not sep:
            raise container.RuntimeFailure(f"--env expects KEY=VALUE, got {item!r}")
        process.env[key] = value
    return process


def _print_ps(pids: list[int], fmt: str, ps_args: list[str]) -> None:
    if fmt == "json":
        print(json.dumps(pids))
        return
    import subprocess
    out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True)
    if out.returncode != 0:
        raise container.RuntimeFailure(f"ps failed: {out.stderr.strip()}")
    lines = out.stdout.splitlines()
    if not lines:
        return
    header = lines[0].split()
    if "PID" not in header:
        raise container.RuntimeFailure("ps output has no PID column")
    column = header.index("PID")
    print(lines[0])
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            print(line)


def _print_list(states: list[dict], fmt: str, quiet: bool) -> None:
    if quiet:
        for item in states:
            print(item["id"])
    elif fmt == "json":
        print(json.dumps(states))
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                  s["owner"] or "root") for s in states]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            print("   ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def _write_spec(bundle: str) -> None:
    path = os.path.join(bundle, "config.json")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise container.RuntimeFailure(f"File {path} exists. Remove it first") from None
    with os.fdopen(fd, "w") as fh:
        from snakevisor.runtime.spec import default_spec
        json.dump(default_spec(), fh, indent=2)
        fh.write("\n")


def features() -> dict:
    """`features` (runtime-spec features.md): what config.json may ask of us."""
    from snakevisor.syscalls.oci_seccomp import ACTIONS, OPS
    return {"ociVersionMin": "1.0.0", "ociVersionMax": OCI_VERSION,
            "hooks": ["prestart", "createRuntime", "createContainer", "poststart", "poststop"],
            "mountOptions": ["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "size",
                             "mode"],
            "linux": {"namespaces": ["pid", "ipc", "uts", "mount", "network"],
                      "capabilities": [], "cgroup": {"v1": True, "v2": False},
                      "seccomp": {"enabled": True, "actions": sorted(ACTIONS),
                                  "operators": sorted(OPS)}, "apparmor": {"enabled": False},
                      "selinux": {"enabled": False}},
            "annotations": {"org.opencontainers.runtime-spec.features.snakevisor.platform":
                            "ptrace"}}


def version_text() -> str:
    return f"snakevisor version {VERSION}\nspec: {OCI_VERSION}\n"
