"""An OCI bundle's config.json, read into what the sandbox is built from.

Why one module: config.json is untrusted input written by an engine or a user.  Everything
the runtime takes from it is validated here, once, into plain values; every refusal is a
SpecError whose message is the one line the engine shows its user.  Settings the sandbox
cannot honour yet fail here loudly rather than being silently dropped.
"""
from __future__ import annotations

import json
import os
import resource
from dataclasses import dataclass, field
from typing import Any

from snakevisor.runtime import OneLineError
from snakevisor.runtime.state import OCI_VERSION

#: mounts the sandbox always has at these places (its own proc, sysfs, devfs, devpts,
#: /dev/shm and /dev/mqueue): a config asking for the same type there is satisfied as is
BUILTIN_MOUNTS = {"/proc": {"proc"}, "/sys": {"sysfs"}, "/dev": {"tmpfs", "devtmpfs"},
                  "/dev/pts": {"devpts"}, "/dev/shm": {"tmpfs"}, "/dev/mqueue": {"mqueue"},
                  "/sys/fs/cgroup": {"cgroup", "cgroup2"}}
#: sysctls a container may set (runc's rule: those of the IPC, UTS and network namespaces)
NAMESPACED_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                      "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
                      "fs.mqueue.", "kernel.hostname", "kernel.domainname", "net.")
NAMESPACES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
RLIMITS = {name: getattr(resource, name) for name in dir(resource) if name.startswith("RLIMIT_")}
DEFAULT_TMPFS_MODE = 0o1777


class SpecError(OneLineError):
    """config.json asks for something invalid or unsupported; one line for the user."""


@dataclass
class BindMount:
    source: str  #: absolute host path
    destination: str
    readonly: bool


@dataclass
class TmpfsMount:
    destination: str
    size: int | None
    mode: int
    share: str = ""  #: a pod volume's name: one tmpfs for every container of the pod


#: Kubernetes' runtime annotations naming a pod container's sandbox (containerd, CRI-O)
POD_ROLE = (("io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id"),
            ("io.kubernetes.cri-o.ContainerType", "io.kubernetes.cri-o.SandboxID"))
#: gVisor's mount hints: dev.gvisor.spec.mount.NAME.{source,type,share,options}
MOUNT_HINT = "dev.gvisor.spec.mount."


@dataclass
class MountHint:
    """How the pod's containers use one volume (a gVisor mount hint): a bind mount of
    `source` in any of them becomes a tmpfs of the sentry — one for the whole pod with
    share=pod, a private one with share=container — or stays a bind (type=bind, or
    share=shared: the host sees it too)."""

    name: str
    source: str
    kind: str  #: "tmpfs" or "bind"
    share: str  #: "container", "pod" or "shared"
    options: list[str] = field(default_factory=list)


@dataclass
class Hook:
    path: str
    args: list[str]
    env: list[str]
    timeout: float | None


#: Linux's capability numbers, in order (capability.h)
CAPABILITIES = {f"CAP_{name}": number for number, name in enumerate((
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"))}
CAP_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


@dataclass
class ProcessSpec:
    """An OCI `process` object: the container's first process, or one `exec` adds."""

    args: list[str]
    env: dict[str, str]
    cwd: str
    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)
    terminal: bool = False
    rlimits: dict[int, tuple[int, int]] = field(default_factory=dict)
    no_new_privileges: bool = False
    #: process.capabilities as masks by set name (None: the kernel's default for the ids)
    capabilities: dict[str, int] | None = None
    console_size: tuple[int, int] | None = None  #: process.consoleSize (rows, columns)

    @property
    def identity(self) -> tuple[int, int, list[int]]:
        return self.uid, self.gid, self.groups


@dataclass
class ContainerSpec:
    """What a container is, as the sandbox needs it."""

    bundle: str
    rootfs: str  #: absolute host path
    readonly_root: bool
    process: ProcessSpec
    hostname: str = "snakevisor"
    binds: list[BindMount] = field(default_factory=list)
    tmpfs: list[TmpfsMount] = field(default_factory=list)
    hooks: dict[str, list[Hook]] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    #: the sentry's host network namespace: "new", a path to join, or None (the caller's)
    netns: str | None = None
    cgroups_path: str = ""  #: linux.cgroupsPath
    seccomp: dict | None = None  #: linux.seccomp as given (enforced with --oci-seccomp)
    sysctl: dict[str, str] = field(default_factory=dict)  #: linux.sysctl, namespaced ones
    resources: dict = field(default_factory=dict)  #: linux.resources, validated
    masked_paths: list[str] = field(default_factory=list)  #: linux.maskedPaths
    readonly_paths: list[str] = field(default_factory=list)  #: linux.readonlyPaths
    #: the pod sandbox this container joins (its sentry runs it), "" when it is a sandbox
    sandbox_id: str = ""
    own_pid_namespace: bool = False  #: linux.namespaces has a new pid namespace
    #: each mount's destination -> its nosuid/nodev/noexec options (the built-in mounts'
    #: replace fsimpl/mountns.DEFAULT_MOUNT_FLAGS)
    mount_flags: dict[str, list[str]] = field(default_factory=dict)


def load(bundle: str) -> ContainerSpec:
    """Read BUNDLE/config.json; SpecError names the first problem."""
    bundle = os.path.abspath(bundle)
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as fh:
            raw = json.loads(fh.read())
    except FileNotFoundError:
        raise SpecError(f"cannot read {path}: no such file or directory") from None
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise SpecError(f"{path} is not valid JSON: {exc}") from None
    return parse(raw, bundle)


def parse(raw: Any, bundle: str) -> ContainerSpec:
    cfg = _obj(raw, "config.json")
    if not isinstance(cfg.get("ociVersion"), str):
        raise SpecError("config.json: ociVersion must be a string")
    root = _obj(cfg.get("root"), "root")
    rootfs = _str(root.get("path"), "root.path")
    rootfs = os.path.normpath(os.path.join(bundle, rootfs))
    if not os.path.isdir(rootfs):
        raise SpecError(f"rootfs {rootfs}: no such directory")
    spec = ContainerSpec(bundle=bundle, rootfs=rootfs, readonly_root=bool(root.get("readonly")),
                         process=parse_process(cfg.get("process")))
    hostname = cfg.get("hostname", "")
    spec.hostname = _str(hostname, "hostname") or "snakevisor"
    for index, mount in enumerate(_list(cfg.get("mounts", []), "mounts")):
        _mount(spec, _obj(mount, f"mounts[{index}]"), index)
    spec.hooks = _hooks(cfg.get("hooks", {}))
    linux = _obj(cfg.get("linux", {}), "linux")
    joined: list[str] = []  #: namespaces named by path: only a pod member may (its sandbox's)
    for index, ns in enumerate(_list(linux.get("namespaces", []), "linux.namespaces")):
        ns = _obj(ns, f"linux.namespaces[{index}]")
        kind = _str(ns.get("type"), f"linux.namespaces[{index}].type")
        path = ns.get("path")
        if kind not in NAMESPACES:
            raise SpecError(f"linux.namespaces: unknown type {kind!r}")
        if kind == "network":
            spec.netns = _str(path, "linux.namespaces[network].path") if path else "new"
        elif path:  # the sandbox's own kernel is every other namespace
            joined.append(kind)
        elif kind == "pid":
            spec.own_pid_namespace = True
    spec.cgroups_path = _str(linux.get("cgroupsPath", ""), "linux.cgroupsPath")
    spec.resources = parse_resources(linux.get("resources", {}))
    for name, value in _obj(linux.get("sysctl", {}), "linux.sysctl").items():
        if not any(name == n or name.startswith(n) for n in NAMESPACED_SYSCTLS):
            raise SpecError(f"sysctl {name!r} is not in a namespace the container owns")
        spec.sysctl[name] = _str(value, f"linux.sysctl.{name}")
    if linux.get("seccomp") is not None:
        spec.seccomp = _obj(linux["seccomp"], "linux.seccomp")
    spec.masked_paths = _abs_paths(linux.get("maskedPaths", []), "linux.maskedPaths")
    spec.readonly_paths = _abs_paths(linux.get("readonlyPaths", []), "linux.readonlyPaths")
    annotations = _obj(cfg.get("annotations", {}), "annotations")
    spec.annotations = {str(k): _str(v, f"annotations.{k}") for k, v in annotations.items()}
    for kind_key, sandbox_key in POD_ROLE:
        if spec.annotations.get(kind_key) == "container":
            spec.sandbox_id = spec.annotations.get(sandbox_key, "")
            if not spec.sandbox_id:
                raise SpecError(f"annotation {sandbox_key} is required with {kind_key}=container")
    if joined and not spec.sandbox_id:
        raise SpecError(f"joining a {joined[0]} namespace by path is not supported")
    apply_mount_hints(spec, mount_hints(spec.annotations))
    return spec


def mount_hints(annotations: dict[str, str]) -> dict[str, MountHint]:
    """The mount hints among a pod's annotations, by name; SpecError for a bad one."""
    raw: dict[str, dict[str, str]] = {}
    for key, value in annotations.items():
        if key.startswith(MOUNT_HINT):
            name, _, attr = key[len(MOUNT_HINT):].rpartition(".")
            if not name or attr not in ("source", "type", "share", "options"):
                raise SpecError(f"annotation {key}: not a mount hint (NAME.source, .type, "
                                ".share or .options)")
            raw.setdefault(name, {})[attr] = value
    hints = {}
    for name, attrs in raw.items():
        where = f"mount hint {name}"
        if "source" not in attrs:
            raise SpecError(f"{where}: no source")
        kind, share = attrs.get("type", "bind"), attrs.get("share", "shared")
        if kind not in ("tmpfs", "bind"):
            raise SpecError(f"{where}: type {kind!r} (expected tmpfs or bind)")
        if share not in ("container", "pod", "shared"):
            raise SpecError(f"{where}: share {share!r} (expected container, pod or shared)")
        options = [o for o in attrs.get("options", "").split(",") if o]
        hints[name] = MountHint(name, os.path.normpath(attrs["source"]), kind, share, options)
    return hints


def apply_mount_hints(spec: ContainerSpec, hints: dict[str, MountHint]) -> None:
    """Bind mounts named by a tmpfs hint become the sentry's tmpfs (pod-wide for share=pod):
    what a pod's containers write there stays in the sandbox, and they see each other's."""
    by_source = {h.source: h for h in hints.values()
                 if h.kind == "tmpfs" and h.share in ("container", "pod")}
    kept = []
    for bind in spec.binds:
        hint = by_source.get(bind.source)
        if hint is None:
            kept.append(bind)
            continue
        from snakevisor.fsimpl.tmpfs import parse_tmpfs_options
        try:
            size, mode = parse_tmpfs_options(hint.options, DEFAULT_TMPFS_MODE, others=True)
        except ValueError as exc:
            raise SpecError(f"mount hint {hint.name}: bad option {str(exc)!r}") from None
        spec.tmpfs.append(TmpfsMount(bind.destination, size, mode,
                                     hint.name if hint.share == "pod" else ""))
    spec.binds = kept


def parse_process(raw: Any, what: str = "process") -> ProcessSpec:
    """An OCI process object (config.json's, or `exec --process FILE`'s)."""
    process = _obj(raw, what)
    args = _strs(process.get("args"), f"{what}.args")
    if not args:
        raise SpecError(f"{what}.args must not be empty")
    env: dict[str, str] = {}
    for item in _strs(process.get("env", []), f"{what}.env"):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(f"{what}.env entry {item!r} is not KEY=VALUE")
        env[key] = value
    cwd = _str(process.get("cwd", "/"), f"{what}.cwd")
    if not cwd.startswith("/"):
        raise SpecError(f"{what}.cwd {cwd!r} must be an absolute path")
    user = _obj(process.get("user", {}), f"{what}.user")
    if "username" in user:
        raise SpecError(f"{what}.user.username is not supported (give uid and gid)")
    return ProcessSpec(args=args, env=env, cwd=os.path.normpath(cwd),
                       uid=_id(user.get("uid", 0), f"{what}.user.uid"),
                       gid=_id(user.get("gid", 0), f"{what}.user.gid"),
                       groups=[_id(g, f"{what}.user.additionalGids")
                               for g in _list(user.get("additionalGids", []),
                                              f"{what}.user.additionalGids")],
                       terminal=bool(process.get("terminal", False)),
                       rlimits=_rlimits(process.get("rlimits", []), what),
                       no_new_privileges=bool(process.get("noNewPrivileges", False)),
                       capabilities=_capabilities(process.get("capabilities"), what),
                       console_size=_console_size(process.get("consoleSize"), what))


def _console_size(raw: Any, what: str) -> tuple[int, int] | None:
    if raw is None:
        return None
    size = _obj(raw, f"{what}.consoleSize")
    rows, cols = size.get("height", 0), size.get("width", 0)
    for value in (rows, cols):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFF:
            raise SpecError(f"{what}.consoleSize: height and width must be 0..65535")
    return rows, cols


def _capabilities(raw: Any, what: str) -> dict[str, int] | None:
    """process.capabilities as masks; names this kernel does not know grant nothing (a
    newer engine's list must not fail, and leaving a capability out is the safe side)."""
    if raw is None:
        return None
    sets = _obj(raw, f"{what}.capabilities")
    out = {}
    for name in CAP_SETS:
        mask = 0
        for cap in _strs(sets.get(name, []), f"{what}.capabilities.{name}"):
            mask |= 1 << CAPABILITIES[cap] if cap in CAPABILITIES else 0
        out[name] = mask
    return out


#: linux.resources fields applied (others, e.g. devices and blockIO, have nothing to act on:
#: the sandbox reaches no host device)
RESOURCE_NUMBERS = {"memory": ("limit", "reservation", "swap", "swappiness"),
                    "pids": ("limit",), "cpu": ("shares", "quota", "period")}


def parse_resources(raw: Any) -> dict:
    """linux.resources (config.json, or `update --resources`) with the numbers checked."""
    resources = _obj(raw, "linux.resources")
    out: dict = {}
    for group, names in RESOURCE_NUMBERS.items():
        section = _obj(resources.get(group) or {}, f"linux.resources.{group}")
        kept = {}
        for name in names:
            value = section.get(name)
            if value is None:
                continue
            if not isinstance(value, int) or isinstance(value, bool):
                raise SpecError(f"linux.resources.{group}.{name} must be an integer")
            kept[name] = value
        if group == "memory" and section.get("disableOOMKiller"):
            kept["disableOOMKiller"] = True
        if group == "cpu":
            for name in ("cpus", "mems"):
                if section.get(name):
                    kept[name] = _str(section[name], f"linux.resources.cpu.{name}")
        if kept:
            out[group] = kept
    return out


def _mount(spec: ContainerSpec, mount: dict, index: int) -> None:
    where = f"mounts[{index}]"
    dest = os.path.normpath(_str(mount.get("destination"), f"{where}.destination"))
    if not dest.startswith("/"):
        raise SpecError(f"{where}: destination {dest!r} must be absolute")
    kind = mount.get("type", "bind" if "bind" in mount.get("options", []) else "")
    options = _strs(mount.get("options", []), f"{where}.options")
    spec.mount_flags[dest] = parse_mount_flags(options)
    if kind in BUILTIN_MOUNTS.get(dest, ()):
        return
    if kind == "bind" or "bind" in options or "rbind" in options:
        source = _str(mount.get("source"), f"{where}.source")
        source = os.path.normpath(os.path.join(spec.bundle, source))
        if not os.path.exists(source):
            raise SpecError(f"bind mount source {source}: no such file or directory")
        if not (os.path.isdir(source) or os.path.isfile(source)):
            raise SpecError(f"bind mount source {source}: only directories and regular files "
                            "can be bind-mounted")
        spec.binds.append(BindMount(source, dest, "ro" in options))
    elif kind == "tmpfs":
        from snakevisor.fsimpl.tmpfs import parse_tmpfs_options
        try:
            size, mode = parse_tmpfs_options(options, DEFAULT_TMPFS_MODE, others=True)
        except ValueError as exc:
            raise SpecError(f"{where}: bad tmpfs option {str(exc)!r}") from None
        spec.tmpfs.append(TmpfsMount(dest, size, mode))
    else:
        raise SpecError(f"{where}: a {kind or 'typeless'} mount at {dest} is not supported")


#: mount options that set a per-mount flag, and their opposites that clear it (last wins)
FLAG_OPTIONS = {"nosuid": ("nosuid", True), "suid": ("nosuid", False),
                 "nodev": ("nodev", True), "dev": ("nodev", False),
                 "noexec": ("noexec", True), "exec": ("noexec", False)}


def parse_mount_flags(options: list[str]) -> list[str]:
    """The nosuid/nodev/noexec flags a mount's options leave set."""
    chosen: dict[str, bool] = {}
    for option in options:
        if option in FLAG_OPTIONS:
            name, on = FLAG_OPTIONS[option]
            chosen[name] = on
    return [name for name in ("nosuid", "nodev", "noexec") if chosen.get(name)]


def _rlimits(raw: Any, what: str) -> dict[int, tuple[int, int]]:
    out: dict[int, tuple[int, int]] = {}
    for index, item in enumerate(_list(raw, f"{what}.rlimits")):
        item = _obj(item, f"{what}.rlimits[{index}]")
        name = _str(item.get("type"), f"{what}.rlimits[{index}].type")
        if name not in RLIMITS:
            raise SpecError(f"{what}.rlimits: unknown limit {name}")
        soft, hard = item.get("soft"), item.get("hard")
        if not isinstance(soft, int) or not isinstance(hard, int) or soft < 0 or hard < 0:
            raise SpecError(f"{what}.rlimits: {name} needs non-negative soft and hard")
        if soft > hard:
            raise SpecError(f"{what}.rlimits: {name} soft limit above its hard limit")
        out[RLIMITS[name]] = (soft, hard)
    return out


HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")


def _hooks(raw: Any) -> dict[str, list[Hook]]:
    hooks = _obj(raw, "hooks")
    out: dict[str, list[Hook]] = {}
    for kind, entries in hooks.items():
        if kind not in HOOK_KINDS:
            raise SpecError(f"hooks: unknown kind {kind!r}")
        for index, entry in enumerate(_list(entries, f"hooks.{kind}")):
            where = f"hooks.{kind}[{index}]"
            entry = _obj(entry, where)
            path = _str(entry.get("path"), f"{where}.path")
            if not path.startswith("/"):
                raise SpecError(f"{where}.path {path!r} must be absolute")
            timeout = entry.get("timeout")
            if timeout is not None and (not isinstance(timeout, int) or timeout <= 0):
                raise SpecError(f"{where}.timeout must be a positive integer")
            out.setdefault(kind, []).append(Hook(path, _strs(entry.get("args", [path]),
                                                             f"{where}.args"),
                                                 _strs(entry.get("env", []), f"{where}.env"),
                                                 timeout))
    return out


def _obj(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(f"{what} must be an object")
    return value


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise SpecError(f"{what} must be a list")
    return value


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{what} must be a string")
    if "\0" in value:
        raise SpecError(f"{what} contains a NUL byte")
    return value


def _strs(value: Any, what: str) -> list[str]:
    return [_str(v, what) for v in _list(value, what)]


def _abs_paths(value: Any, what: str) -> list[str]:
    """A list of absolute paths inside the container (maskedPaths, readonlyPaths)."""
    paths = _strs(value, what)
    for path in paths:
        if not path.startswith("/"):
            raise SpecError(f"{what}: {path!r} must be an absolute path")
    return paths


def _id(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**32 - 1:
        raise SpecError(f"{what} must be an id between 0 and 4294967294")
    return value


def default_spec(args: list[str] | None = None) -> dict:
    """What `snakevisor spec` writes: a runnable config.json for a ./rootfs."""
    return {
        "ociVersion": OCI_VERSION,
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0},
                    "args": args or ["sh"],
                    "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                            "TERM=xterm"],
                    "cwd": "/",
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                    "noNewPrivileges": True},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "snakevisor",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts",
                                                       "mount")],
                  "maskedPaths": [], "readonlyPaths": []},
    }
