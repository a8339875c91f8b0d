"""Container lifecycle: what create, start, state, kill, delete, ps and run do.

The process model engines need (see ../shared/oci-runtime-contract.md): `create` forks the
container's sentry and returns once the program is loaded and the sandbox confined; the
sentry's host pid goes to --pid-file, it is left as an orphan for the engine (a child
subreaper) to adopt, and it exits with the application's status (128+N when killed by
signal N).  `start` only tells the sentry to let the loop begin.  Everything after that
goes over the sentry's control socket (runtime/control.py); `delete` kills the sentry if
needed — its stubs and gofer die with it — and forgets the container.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Callable

from snakevisor.runtime import OneLineError, control
from snakevisor.runtime.cgroups import Cgroups, CgroupError, cgroup_path
from snakevisor.runtime.state import (CONTROL, OCI_VERSION, Record, StateDir, StateError, alive,
                                      process_start)

if TYPE_CHECKING:  # (spec, subprocess, dataclasses, datetime: imported where used, so that
    # the verbs engines call most — state, start, kill, delete — start fast)
    from snakevisor.fsimpl.mountns import MountConfig
    from snakevisor.gofer.launch import GoferPlan
    from snakevisor.runtime.spec import ContainerSpec, ProcessSpec

log = logging.getLogger("snakevisor.runtime")

#: how long `delete` waits for a killed sentry to be gone (its stubs die with it)
KILL_WAIT = 10.0
DEFAULT_HOOK_TIMEOUT = 60.0


class RuntimeFailure(OneLineError):
    """A verb failed; the message is the one line engines show their users."""


class Options:
    """The global flags that shape a sandbox (the rest only shape the CLI's own output)."""

    def __init__(self, root: str, platform: str = "ptrace", overlay: str = "root:memory",
                 debug: bool = False, strace: bool = False, systemd_cgroup: bool = False,
                 oci_seccomp: bool = False, log_handler: logging.Handler | None = None) -> None:
        self.root = root
        self.platform = platform
        self.overlay = overlay
        self.debug = debug
        self.strace = strace
        self.systemd_cgroup = systemd_cgroup
        self.oci_seccomp = oci_seccomp  #: enforce config.json's linux.seccomp inside the sandbox
        self.log_handler = log_handler  #: where the sentry logs (opened before confining)


def _now() -> str:
    from datetime import datetime, timezone
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _hook_dicts(spec: "ContainerSpec") -> dict:
    from dataclasses import asdict
    return {k: [asdict(h) for h in v] for k, v in spec.hooks.items()}


# -- create ------------------------------------------------------------------------------
def create(opts: Options, container_id: str, bundle: str, pid_file: str | None = None,
           console_socket: str | None = None, preserve_fds: int = 0) -> int:
    """Build the container's sandbox, stopped before its first instruction; returns the
    sentry's host pid (a child of this process until we exit)."""
    from snakevisor.runtime.spec import SpecError, load
    try:
        spec = load(bundle)
    except SpecError as exc:
        raise RuntimeFailure(str(exc)) from None
    if spec.process.terminal and console_socket is None:
        raise RuntimeFailure("cannot allocate a tty without --console-socket")
    if console_socket is not None and not spec.process.terminal:
        raise RuntimeFailure("--console-socket needs process.terminal")
    if preserve_fds < 0:
        raise RuntimeFailure("--preserve-fds must not be negative")
    if opts.oci_seccomp and spec.seccomp is not None:
        seccomp_profile(spec)  # refused here, in one line, rather than in the sentry
    states = StateDir(opts.root)
    if spec.sandbox_id:
        return _create_member(opts, states, container_id, spec, pid_file, console_socket,
                              preserve_fds)
    with states.claim(container_id):
        directory = states.path(container_id)
        host_tty = -1
        try:
            if console_socket is not None:
                host_tty = _host_pty(console_socket, spec.process.console_size)
            pid, stubs = _fork_sentry(opts, spec, directory, preserve_fds, host_tty)
            record = Record(id=container_id, bundle=spec.bundle, rootfs=spec.rootfs, pid=pid,
                            pid_start=process_start(pid) or 0, created=_now(),
                            annotations=spec.annotations,
                            hooks=_hook_dicts(spec),
                            cgroup=cgroup_path(spec.cgroups_path, container_id,
                                               opts.systemd_cgroup),
                            cpuset=bool({"cpus", "mems"} & set(spec.resources.get("cpu", {}))))
            states.save(record)
            cgroups = container_cgroups(record)
            cgroups.create()
            cgroups.apply(spec.resources)
            for stub in stubs:  # before the application's first instruction
                cgroups.add(stub)
            for kind in ("prestart", "createRuntime", "createContainer"):
                run_hooks(record, kind, "created")
            if pid_file:
                write_pid_file(pid_file, pid)
        except BaseException as exc:
            pid = locals().get("pid")
            if isinstance(pid, int):
                _kill_and_reap(pid)
            record = locals().get("record")
            if record is not None:
                _destroy_cgroups(record)
            states.remove(container_id)
            if isinstance(exc, CgroupError):
                raise RuntimeFailure(str(exc)) from None
            raise
        finally:
            if host_tty >= 0:
                os.close(host_tty)
    return pid


def _create_member(opts: Options, states: StateDir, container_id: str, spec: ContainerSpec,
                   pid_file: str | None, console_socket: str | None, preserve_fds: int) -> int:
    """A pod container (spec.sandbox_id): it joins the running sandbox's sentry
    (runtime/pod.py).  Its stand-in — forked here, its pid the container's — starts the
    container's gofer, hands it with the stdio to the sentry, and lives as long as the
    container, exiting with its status."""
    from dataclasses import asdict

    from snakevisor.runtime.spec import SpecError, apply_mount_hints, mount_hints
    try:
        sandbox = states.load(spec.sandbox_id)
    except StateError:
        raise RuntimeFailure(f"pod sandbox {spec.sandbox_id} does not exist") from None
    if sandbox.sandbox:
        raise RuntimeFailure(f"{spec.sandbox_id} is a pod's container, not its sandbox")
    status = status_of(states, sandbox)
    if status != "running":
        raise RuntimeFailure(f"pod sandbox {spec.sandbox_id} is {status}, not running")
    if opts.overlay.startswith("root:dir="):
        raise RuntimeFailure("--overlay2 root:dir= keeps one sandbox's files: it cannot serve "
                             "a pod's containers (use root:memory)")
    if spec.resources:
        log.warning("container %s: linux.resources of a pod's container are not applied "
                    "(the pod's sandbox's cgroups hold its processes)", container_id)
    if spec.own_pid_namespace:
        log.warning("container %s asks for a pid namespace of its own: the containers of a "
                    "pod share their sandbox's (as with shareProcessNamespace)", container_id)
    try:  # the pod's mount hints (the sandbox's annotations), then the container's own
        apply_mount_hints(spec, mount_hints({**sandbox.annotations, **spec.annotations}))
    except SpecError as exc:
        raise RuntimeFailure(str(exc)) from None
    mounts = mount_config(spec, opts)
    plan = None
    if os.environ.get("SNAKEVISOR_GOFER") != "0":
        from snakevisor.gofer.launch import GoferPlan
        try:
            plan = GoferPlan.resolve(mounts.rootfs, mounts.writable_root, mounts.volumes,
                                     overlay=mounts.overlay.startswith("root:"))
        except OSError as exc:
            raise RuntimeFailure(f"cannot serve the container's files: {exc}") from None
    message = {"op": "join", "container": container_id, "process": _process_message(spec.process),
               "mounts": asdict(mounts), "plan": asdict(plan) if plan is not None else None,
               "tty": spec.process.terminal,
               "seccomp": spec.seccomp if opts.oci_seccomp else None}
    with states.claim(container_id):
        directory = states.path(spec.sandbox_id)
        host_tty = -1
        pid = None
        try:
            if console_socket is not None:
                host_tty = _host_pty(console_socket, spec.process.console_size)
            stdio = (host_tty,) if host_tty >= 0 else (0, 1, 2)
            pid = _fork_stand_in(directory, message, stdio + tuple(range(3, 3 + preserve_fds)),
                                 host_tty, plan)
            record = Record(id=container_id, bundle=spec.bundle, rootfs=spec.rootfs, pid=pid,
                            pid_start=process_start(pid) or 0, created=_now(),
                            annotations=spec.annotations,
                            hooks=_hook_dicts(spec),
                            sandbox=spec.sandbox_id)
            states.save(record)
            for kind in ("prestart", "createRuntime", "createContainer"):
                run_hooks(record, kind, "created")
            if pid_file:
                write_pid_file(pid_file, pid)
        except BaseException:
            if pid is not None:
                _kill_and_reap(pid)
            states.remove(container_id)
            raise
        finally:
            if host_tty >= 0:
                os.close(host_tty)
    return pid


def mount_config(spec: "ContainerSpec", opts: Options) -> "MountConfig":
    """A container's mounts as its config asks (the sandbox's first container's, or a pod
    member's): the overlay --overlay2 names over the image, or, for root.readonly, the
    root itself read-only (no overlay to take writes)."""
    from snakevisor.fsimpl.mountns import MountConfig
    return MountConfig(
        os.path.realpath(spec.rootfs), not spec.readonly_root,
        [(b.source, b.destination, b.readonly) for b in spec.binds],
        [(t.destination, t.size, t.mode, t.share) for t in spec.tmpfs],
        "none" if spec.readonly_root else opts.overlay, spec.masked_paths,
        spec.readonly_paths, dev_console=spec.process.terminal, mount_flags=spec.mount_flags)


def _process_message(process: ProcessSpec) -> dict:
    """An OCI process as the sentry's exec and join requests carry it."""
    return {"args": process.args, "env": process.env, "cwd": process.cwd, "uid": process.uid,
            "gid": process.gid, "groups": process.groups,
            "rlimits": {str(k): list(v) for k, v in process.rlimits.items()},
            "capabilities": process.capabilities, "no_new_privs": process.no_new_privileges}


def apply_sysctls(kernel, sysctls: dict[str, str]) -> None:
    """linux.sysctl in the sandbox: POSIX queue limits and the UTS names take effect; the
    System V limits are fixed and net.* waits for the network stack — those are logged
    once each, never silently dropped."""
    from snakevisor.kernel.errors import SyscallError
    from snakevisor.kernel.mqueue import mqueue_namespace
    for name, value in sysctls.items():
        if name.startswith("fs.mqueue."):
            try:
                mqueue_namespace(kernel).sysctl_set(name[len("fs.mqueue."):], int(value))
            except (ValueError, SyscallError, KeyError):
                raise RuntimeFailure(f"sysctl {name}={value!r}: invalid value") from None
        elif name == "kernel.hostname":
            kernel.hostname = value.encode()
        elif name == "kernel.domainname":
            kernel.domainname = value.encode()
        else:
            kernel.warn_once(f"sysctl:{name}", f"sysctl {name}={value!r} accepted but not "
                             "applied (fixed in this sandbox)")


def seccomp_profile(spec: ContainerSpec):
    from snakevisor.syscalls import oci_seccomp
    try:
        return oci_seccomp.parse(spec.seccomp)
    except oci_seccomp.ProfileError as exc:
        raise RuntimeFailure(f"linux.seccomp: {exc}") from None


def check_preserved_fds(count: int) -> None:
    """--preserve-fds N hands fds 3..3+N-1 to the application: each must have been open when
    we started, or one of our own descriptors (the log, the control socket) would take its
    number and be handed over.  Call before opening anything."""
    for fd in range(3, 3 + count):
        try:
            os.fstat(fd)
        except OSError:
            raise RuntimeFailure(f"--preserve-fds {count}: fd {fd} is not open") from None


def _fork_reporting(child: Callable[[int], None]) -> tuple[int, bytes]:
    """Fork a process of ours that says how it started on a pipe (child(fd) writes, closes
    it, and never returns); our pid and what it said, once it has closed the pipe."""
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        try:
            child(ready_w)
        finally:
            os._exit(1)
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as fh:
        return pid, fh.read()


def _host_pty(console_socket: str, size: tuple[int, int] | None) -> int:
    from snakevisor.runtime.console import open_host_pty
    try:
        return open_host_pty(console_socket, size)
    except OSError as exc:
        raise RuntimeFailure(f"console socket {console_socket}: "
                             f"{exc.strerror or exc}") from None


def _fork_sentry(opts: Options, spec: ContainerSpec, directory: str, preserve_fds: int,
                 host_tty: int = -1) -> tuple[int, list[int]]:
    listener = control.listen(directory, CONTROL)
    try:
        pid, answer = _fork_reporting(
            lambda ready_w: _sentry_main(opts, spec, listener, ready_w, preserve_fds, host_tty))
    finally:
        listener.close()
    if not answer.startswith(b"ok "):
        _, status = os.waitpid(pid, 0)
        message = answer.decode(errors="replace").strip()
        raise RuntimeFailure(message or f"the sandbox died while starting (status {status})")
    return pid, [int(p) for p in answer[3:].split()]


def _sentry_main(opts: Options, spec: ContainerSpec, listener, ready_w: int,
                 preserve_fds: int, host_tty: int = -1) -> None:
    """The forked sentry: build the sandbox, report readiness, serve until the application's
    first process ends, exit with its status.  Never returns."""
    status = 1
    ready = False
    server = control.ControlServer(listener)

    def tell(message: bytes) -> None:
        try:
            os.write(ready_w, message)
            os.close(ready_w)
        except OSError:
            pass

    def on_ready(kernel) -> bool:
        nonlocal ready
        apply_sysctls(kernel, spec.sysctl)
        if opts.oci_seccomp and spec.seccomp is not None:
            from snakevisor.syscalls import oci_seccomp
            oci_seccomp.install(kernel, seccomp_profile(spec))
        if host_tty >= 0:
            from snakevisor.runtime.console import ConsoleRelay
            assert kernel.init is not None
            ConsoleRelay(kernel, host_tty).attach(kernel.init.tasks[0])
        ready = True
        # the application's host processes, for the runtime to put in the container's
        # cgroups: the stub template (every later stub is its child) and the first stub
        assert kernel.init is not None
        stubs = [kernel.platform.template.pid, kernel.init.host_pid]
        tell(b"ok " + " ".join(str(p) for p in stubs).encode())
        server.serve_until_started(kernel)
        return False  # (the server has resumed the first process, or will after the hooks)

    try:
        log_stream = getattr(opts.log_handler, "stream", None)  # (--log, opened by the verb)
        _close_fds_except({0, 1, 2, listener.fileno(), ready_w, host_tty}
                          | set(range(3, 3 + preserve_fds))
                          | ({log_stream.fileno()} if log_stream is not None else set()))
        _sentry_logging(opts)
        if host_tty >= 0:
            from snakevisor.runtime.console import take_host_terminal
            take_host_terminal(host_tty)
            # the terminal is the application's stdio: let go of create's (an engine waits
            # for EOF on the pipes it gave create, as runc's init drops them for the pty)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.close(null)
        if spec.netns is not None:
            from snakevisor.confinement import enter_network_namespace
            enter_network_namespace(None if spec.netns == "new" else spec.netns)
        from snakevisor.api import Sandbox, SandboxError
        try:
            sandbox = Sandbox(hostname=spec.hostname, debug=opts.debug, platform=opts.platform,
                              strace=sys.stderr if opts.strace else None, confine=True,
                              mounts=mount_config(spec, opts))
            process = spec.process
            status = sandbox.run(process.args, env=process.env, cwd=process.cwd,
                                 identity=process.identity, rlimits=process.rlimits,
                                 inherited=preserve_fds, capabilities=process.capabilities,
                                 no_new_privs=process.no_new_privileges, default_home=True,
                                 on_ready=on_ready)
        except control.ContainerKilled as exc:
            status = exc.status
        except (SandboxError, RuntimeFailure) as exc:
            status = getattr(exc, "status", 1)
            if not ready:
                tell(str(exc).encode())
            else:
                log.error("%s", exc)
    except BaseException as exc:  # a sentry bug: logged, never shown as a traceback
        log.error("internal error: %s", exc, exc_info=True)
        if not ready:
            tell(f"internal error: {type(exc).__name__}: {exc}".encode())
    try:
        server.finish(status)
    finally:
        os._exit(status & 0xFF)


def _close_fds_except(keep: set[int]) -> None:
    """The engines leak their own fds into the runtime (the shim's ttrpc socket as fd 3):
    none of them may reach the sandbox or outlive create in the sentry."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _sentry_logging(opts: Options) -> None:
    """The sentry's stdio is the application's: its log lines go to the runtime's --log
    (opened before confinement) and never to stderr."""
    root = logging.getLogger("snakevisor")
    for handler in list(root.handlers):
        if isinstance(handler, logging.StreamHandler) and \
                getattr(handler, "stream", None) in (sys.stderr, sys.stdout):
            root.removeHandler(handler)
    if opts.log_handler is not None:
        root.addHandler(opts.log_handler)


def write_pid_file(path: str, pid: int) -> None:
    """The bare number, no newline (containerd parses it with Atoi), replaced atomically."""
    path = os.path.abspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w") as fh:
            fh.write(str(pid))
        os.replace(tmp, path)
    except OSError as exc:
        raise RuntimeFailure(f"cannot write the pid file {path}: {exc.strerror}") from None


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


# -- hooks -------------------------------------------------------------------------------
def oci_state(record: Record, status: str) -> dict:
    return {"ociVersion": OCI_VERSION, "id": record.id, "status": status,
            "pid": record.pid if status != "stopped" else 0, "bundle": record.bundle,
            "rootfs": record.rootfs, "created": record.created, "owner": record.owner,
            "annotations": record.annotations}


def run_hooks(record: Record, kind: str, status: str, fatal: bool = True) -> None:
    """Run the config's hooks of one kind in order, each with the state JSON on stdin."""
    hooks = record.hooks.get(kind, [])
    if not hooks:
        return
    import subprocess

    from snakevisor.runtime.spec import Hook
    state = json.dumps(oci_state(record, status)).encode()
    for raw in hooks:
        hook = Hook(**raw)
        try:
            done = subprocess.run(hook.args or [hook.path], executable=hook.path,
                                  input=state, env=dict(e.split("=", 1) for e in hook.env
                                                        if "=" in e),
                                  cwd=record.bundle, capture_output=True,
                                  timeout=hook.timeout or DEFAULT_HOOK_TIMEOUT)
            failure = None if done.returncode == 0 else (
                f"exit status {done.returncode}: "
                f"{done.stderr.decode(errors='replace').strip()[-300:]}")
        except subprocess.TimeoutExpired:
            failure = "timed out"
        except OSError as exc:
            failure = exc.strerror or str(exc)
        if failure is not None:
            message = f"{kind} hook {hook.path} failed: {failure}"
            if fatal:
                raise RuntimeFailure(message)
            log.warning("%s", message)


# -- the other verbs -----------------------------------------------------------------------
def _request(states: StateDir, record: Record, message: dict,
             timeout: float | None = control.REPLY_TIMEOUT) -> dict:
    """Ask the sentry that runs the container (a pod member's is its sandbox's)."""
    if record.sandbox:
        message = {**message, "container": record.id}
    return control.request(states.path(record.sandbox or record.id), CONTROL, message,
                           timeout=timeout)


def status_of(states: StateDir, record: Record) -> str:
    if not alive(record):
        return "stopped"
    if record.cgroup and container_cgroups(record).frozen():
        return "paused"
    try:
        reply = _request(states, record, {"op": "state"})
    except control.ControlError:
        return "stopped" if not alive(record) else "running"
    return str(reply.get("status", "running"))


def state(opts: Options, container_id: str) -> dict:
    states = StateDir(opts.root)
    record = states.load(container_id)
    return oci_state(record, status_of(states, record))


def start(opts: Options, container_id: str) -> None:
    states = StateDir(opts.root)
    with states.locked(container_id):
        record = states.load(container_id)
        status = status_of(states, record)
        if status != "created":
            raise RuntimeFailure(f"cannot start a container that is {status}"
                                 if status != "running" else
                                 "cannot start an already running container")
        message: dict = {"op": "start"}
        hooks = record.hooks.get("startContainer", [])
        timeout = control.REPLY_TIMEOUT
        if hooks:  # run inside the sandbox before the program (runtime/start_hooks.py)
            message.update(hooks=hooks, state=json.dumps(oci_state(record, "created")))
            timeout += sum(h.get("timeout") or DEFAULT_HOOK_TIMEOUT for h in hooks)
        _ask(states, record, message, timeout=timeout)
        run_hooks(record, "poststart", "running", fatal=False)


def kill(opts: Options, container_id: str, sig: int, every_process: bool = False) -> None:
    states = StateDir(opts.root)
    record = states.load(container_id)
    if not alive(record):
        raise RuntimeFailure("container not running")
    try:
        _request(states, record, {"op": "kill", "signal": sig, "all": every_process})
    except control.ControlError as exc:
        if sig != signal.SIGKILL:
            raise RuntimeFailure(f"cannot signal the container: {exc}") from None
        os.kill(record.pid, signal.SIGKILL)  # a wedged sentry still dies, and its stubs with it
    if sig == signal.SIGKILL and record.cgroup:
        cgroups = container_cgroups(record)
        if cgroups.frozen():  # frozen processes die only once thawed
            cgroups.freeze(False)


def ps(opts: Options, container_id: str) -> list[int]:
    states = StateDir(opts.root)
    record = states.load(container_id)
    if not alive(record):
        return []
    return [int(p) for p in _ask(states, record, {"op": "ps"})["pids"]]


def debug_report(opts: Options, container_id: str) -> str:
    """The sentry's account of every task of the container's sandbox (kernel/debug.py)."""
    states = StateDir(opts.root)
    record = states.load(container_id)
    if not alive(record):
        raise RuntimeFailure(f"container {container_id} is not running")
    return str(_ask(states, record, {"op": "debug"})["report"])


def delete(opts: Options, container_id: str, force: bool = False) -> None:
    states = StateDir(opts.root)
    try:
        with states.locked(container_id):
            try:
                record = states.load(container_id)
            except StateError:
                if force:  # a create that died half-way: nothing runs, forget the id
                    states.remove(container_id)
                    return
                raise
            if alive(record):
                status = status_of(states, record)
                if status not in ("created", "stopped") and not force:
                    raise RuntimeFailure(f"cannot delete container {container_id} that is not "
                                         f"stopped: {status}")
                _kill_sentry(record)
            _destroy_cgroups(record)
            run_hooks(record, "poststop", "stopped", fatal=False)
            states.remove(container_id)
    except StateError:
        if force:
            return
        raise


def _kill_sentry(record: Record) -> None:
    try:
        os.kill(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if record.cgroup:
        try:
            container_cgroups(record).freeze(False)  # frozen stubs die only once thawed
        except CgroupError:
            pass
    deadline = time.monotonic() + KILL_WAIT
    while alive(record):
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"the sandbox (pid {record.pid}) did not die")
        time.sleep(0.01)


# -- cgroups: limits, pause/resume, figures ------------------------------------------------
def container_cgroups(record: Record) -> Cgroups:
    return Cgroups(record.cgroup, with_cpuset=record.cpuset)


def _destroy_cgroups(record: Record) -> None:
    if not record.cgroup:
        return
    try:
        container_cgroups(record).destroy()
    except CgroupError as exc:
        log.warning("%s", exc)


def pause(opts: Options, container_id: str, frozen: bool) -> None:
    """pause/resume: the application's processes frozen or thawed (cgroup freezer); the
    sentry keeps answering."""
    states = StateDir(opts.root)
    with states.locked(container_id):
        record = states.load(container_id)
        status = status_of(states, record)
        _not_a_member(record, "pause" if frozen else "resume")
        if frozen and status != "running":
            raise RuntimeFailure(f"container not running (it is {status})")
        if not frozen and status != "paused":
            raise RuntimeFailure(f"container not paused (it is {status})")
        try:
            container_cgroups(record).freeze(frozen)
        except CgroupError as exc:
            raise RuntimeFailure(str(exc)) from None


def update(opts: Options, container_id: str, resources: dict) -> None:
    states = StateDir(opts.root)
    with states.locked(container_id):
        record = states.load(container_id)
        if not alive(record):
            raise RuntimeFailure("container not running")
        _not_a_member(record, "update")
        try:
            container_cgroups(record).apply(resources)
        except CgroupError as exc:
            raise RuntimeFailure(str(exc)) from None


def stats(opts: Options, container_id: str) -> dict:
    states = StateDir(opts.root)
    record = states.load(container_id)
    if not alive(record):
        raise RuntimeFailure("container not running")
    _not_a_member(record, "events --stats")
    return {"type": "stats", "id": container_id, "data": container_cgroups(record).stats()}


def _not_a_member(record: Record, verb: str) -> None:
    """A pod's containers share their sandbox's host processes and cgroups: the verbs that
    act on cgroups act on the pod, through its sandbox."""
    if record.sandbox:
        raise RuntimeFailure(f"{verb} acts on a whole pod: use it on the pod's sandbox "
                             f"{record.sandbox}")


def wait(opts: Options, container_id: str) -> int:
    """Block until the container's first process ends; its status."""
    states = StateDir(opts.root)
    record = states.load(container_id)
    if not alive(record):
        raise RuntimeFailure("container is not running (its exit status went to its parent)")
    return int(_ask(states, record, {"op": "wait"}, timeout=None)["status"])


def list_containers(opts: Options) -> list[dict]:
    states = StateDir(opts.root)
    out = []
    for container_id in states.ids():
        try:
            record = states.load(container_id)
        except StateError:
            continue
        out.append(oci_state(record, status_of(states, record)))
    return out


def _ask(states: StateDir, record: Record, message: dict,
         timeout: float | None = control.REPLY_TIMEOUT) -> dict:
    try:
        return _request(states, record, message, timeout=timeout)
    except control.ControlError as exc:
        raise RuntimeFailure(str(exc)) from None


# -- exec --------------------------------------------------------------------------------
#: what an exec'd process's stand-in forwards to it (all catchable, non-job-control signals)
FORWARDED = tuple(s for s in signal.valid_signals() if s not in (
    signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGTSTP, signal.SIGTTIN,
    signal.SIGTTOU, signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE,
    signal.SIGTRAP, signal.SIGSYS) and s < signal.SIGRTMIN)


def exec_(opts: Options, container_id: str, process: ProcessSpec, pid_file: str | None = None,
          detach: bool = False, console_socket: str | None = None,
          preserve_fds: int = 0) -> int:
    """Add a process to a running container.  Its host stand-in is a process of ours (the
    exec'd program itself runs in the sandbox): it holds the stdio (or, with a terminal, the
    host pty's slave whose master went to --console-socket), forwards the signals it gets
    and exits with the program's status — so engines treat it as the exec'd process
    (--pid-file names it; with --detach it is left for the engine to adopt)."""
    if process.terminal and console_socket is None:
        raise RuntimeFailure("cannot allocate a tty without --console-socket")
    if console_socket is not None and not process.terminal:
        raise RuntimeFailure("--console-socket needs a terminal (--tty or process.terminal)")
    if preserve_fds < 0:
        raise RuntimeFailure("--preserve-fds must not be negative")
    states = StateDir(opts.root)
    record = states.load(container_id)
    status = status_of(states, record)
    if status != "running":
        raise RuntimeFailure(f"cannot exec in a container that is {status}")
    message: dict = {"op": "exec", "process": _process_message(process)}
    if record.sandbox:
        message["container"] = record.id
    directory = states.path(record.sandbox or record.id)
    preserved = tuple(range(3, 3 + preserve_fds))
    if not detach and not process.terminal:
        if pid_file:
            write_pid_file(pid_file, os.getpid())
        return _stand_in(directory, message, None, (0, 1, 2) + preserved)
    host_tty = -1
    if process.terminal:
        host_tty = _host_pty(str(console_socket), process.console_size)
        message["tty"] = True
    try:
        pid = _fork_stand_in(directory, message,
                             ((host_tty,) if host_tty >= 0 else (0, 1, 2)) + preserved, host_tty)
    finally:
        if host_tty >= 0:
            os.close(host_tty)
    if pid_file:
        write_pid_file(pid_file, pid)
    if detach:
        return 0
    _, wait_status = os.waitpid(pid, 0)  # a terminal without --detach: wait for it here
    return os.waitstatus_to_exitcode(wait_status) if os.WIFEXITED(wait_status) else \
        128 + os.WTERMSIG(wait_status)


def _fork_stand_in(directory: str, message: dict, fds: tuple[int, ...], host_tty: int,
                   plan: "GoferPlan | None" = None) -> int:
    """Fork the stand-in of an exec'd process or a pod member; its pid once the sentry has
    taken the process (RuntimeFailure with the sentry's words if it refused)."""
    def stand_in(ready_w: int) -> None:
        code = 1
        try:
            code = _stand_in(directory, message, ready_w, fds, host_tty, plan)
        except BaseException as exc:
            _tell(ready_w, str(exc) or type(exc).__name__)
        finally:
            os._exit(code & 0xFF)

    pid, said = _fork_reporting(stand_in)
    answer = said.decode(errors="replace")
    if answer != "ok":
        os.waitpid(pid, 0)
        raise RuntimeFailure(answer or f"{message['op']} failed")
    return pid


def _tell(fd: int | None, message: str) -> None:
    if fd is None:
        return
    try:
        os.write(fd, message.encode())
        os.close(fd)
    except OSError:
        pass


def _stand_in(directory: str, message: dict, ready_w: int | None, fds: tuple[int, ...],
              host_tty: int = -1, plan: "GoferPlan | None" = None) -> int:
    """Ask the sentry to start the process with fds (the stdio or the host pty's slave,
    which then becomes our controlling terminal so resizes reach us as SIGWINCH; then
    --preserve-fds's) — for a pod member first starting its gofer (plan), whose socket goes
    first — then mirror it: forward signals and resizes, return its status (128+N when
    killed by signal N)."""
    import subprocess
    gofer = None
    if plan is not None:
        # (not on the engine's stderr pipe: the container's end is when that closes)
        gofer, gofer_sock = plan.start(stderr=subprocess.DEVNULL)
        fds = (gofer_sock.fileno(),) + fds
    if host_tty >= 0:
        from snakevisor.runtime.console import take_host_terminal
        take_host_terminal(host_tty)
    try:
        sock = control.connect(directory, CONTROL, timeout=control.REPLY_TIMEOUT)
        control.send(sock, message, fds=fds)
        control.read_line(sock)
    except control.ControlError as exc:
        raise RuntimeFailure(str(exc)) from None
    except OSError as exc:
        raise RuntimeFailure(f"cannot reach the sandbox: {exc.strerror or exc}") from None
    sock.settimeout(None)
    # the process has its own copies of the stdio (or its terminal) now: ours must not keep
    # an engine waiting for EOF on the pipes it gave us (the shim waits for it before it
    # takes the console), nor may any other fd the engine leaked into us stay open (nor our
    # end of the gofer's socket: the gofer ends when the sentry lets go of it)
    _close_fds_except({sock.fileno(), host_tty} - {-1}
                      | ({ready_w} if ready_w is not None else set()))
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    for sig in FORWARDED:
        signal.signal(sig, lambda s, _f: control.send_quietly(sock, {"signal": s}))
    if host_tty >= 0:  # its terminal was resized / hung up: the sandbox pty follows
        signal.signal(signal.SIGWINCH, lambda *_: control.send_quietly(sock, {"winch": 1}))
        signal.signal(signal.SIGHUP, lambda *_: control.send_quietly(
            sock, {"signal": signal.SIGHUP}))
    _tell(ready_w, "ok")
    try:
        wait_status = int(control.read_line(sock)["status"])
    except (control.ControlError, KeyError, ValueError):
        wait_status = 0xFF00  # the sandbox went away under us: 255
    if gofer is not None:  # it exits once the sentry has closed its end
        try:
            gofer.wait(KILL_WAIT)
        except subprocess.TimeoutExpired:
            gofer.kill()
    if wait_status & 0x7F:
        return 128 + (wait_status & 0x7F)
    return (wait_status >> 8) & 0xFF


def run(opts: Options, container_id: str, bundle: str, pid_file: str | None = None,
        detach: bool = False, preserve_fds: int = 0, console_socket: str | None = None) -> int:
    """create + start; without --detach, wait for the end, delete, return its status."""
    pid = create(opts, container_id, bundle, pid_file, console_socket, preserve_fds)
    try:
        start(opts, container_id)
    except RuntimeFailure:
        delete(opts, container_id, force=True)
        raise
    if detach:
        return 0
    forward = {s: signal.signal(s, lambda sig, _f: _forward(opts, container_id, sig))
               for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                         signal.SIGUSR1, signal.SIGUSR2)}
    try:
        while True:
            try:
                _, wait_status = os.waitpid(pid, 0)
                break
            except InterruptedError:
                continue
    finally:
        for sig, old in forward.items():
            signal.signal(sig, old)
    delete(opts, container_id, force=True)
    return os.waitstatus_to_exitcode(wait_status) if os.WIFEXITED(wait_status) else \
        128 + os.WTERMSIG(wait_status)


def _forward(opts: Options, container_id: str, sig: int) -> None:
    try:
        kill(opts, container_id, sig)
    except RuntimeFailure:
        pass
