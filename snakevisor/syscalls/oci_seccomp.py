"""An OCI seccomp profile (linux.seccomp) enforced by the sentry, with `--oci-seccomp`.

Why here and not as a host filter: the application's system calls never reach the host
kernel, so a host BPF filter would see only the stub's own few calls.  The sentry applies
the profile itself before a handler runs, as runsc does with --oci-seccomp: the kernel's
handler table is replaced by one whose entries check the profile's rules (names, argument
comparisons, actions) for that call.  Calls the profile allows outright keep their plain
handler, so the cost is paid only by calls with conditions or a non-allow action, and not
at all without --oci-seccomp.
"""
from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from snakevisor.syscalls.numbers import SYSCALL_NUMBERS

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

Handler = Callable[..., int]

#: actions from the most to the least restrictive (the kernel's precedence)
KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, TRACE, LOG, ALLOW = range(7)
ACTIONS = {"SCMP_ACT_KILL_PROCESS": KILL_PROCESS, "SCMP_ACT_KILL": KILL_THREAD,
           "SCMP_ACT_KILL_THREAD": KILL_THREAD, "SCMP_ACT_TRAP": TRAP,
           "SCMP_ACT_ERRNO": ERRNO, "SCMP_ACT_TRACE": TRACE, "SCMP_ACT_LOG": LOG,
           "SCMP_ACT_ALLOW": ALLOW}
_U64 = (1 << 64) - 1
OPS: dict[str, Callable[[int, int, int], bool]] = {
    "SCMP_CMP_NE": lambda a, v, _: a != v,
    "SCMP_CMP_LT": lambda a, v, _: a < v,
    "SCMP_CMP_LE": lambda a, v, _: a <= v,
    "SCMP_CMP_EQ": lambda a, v, _: a == v,
    "SCMP_CMP_GE": lambda a, v, _: a >= v,
    "SCMP_CMP_GT": lambda a, v, _: a > v,
    "SCMP_CMP_MASKED_EQ": lambda a, v, v2: a & v == v2,
}
SYS_SECCOMP = 1  #: si_code of the SIGSYS a TRAP sends


class ProfileError(Exception):
    """The profile asks for something invalid or unsupported; one line."""


@dataclass(frozen=True)
class Rule:
    action: int
    errno: int
    args: tuple[tuple[int, str, int, int], ...]  #: (index, op, value, valueTwo)

    def matches(self, regs: tuple) -> bool:
        return all(OPS[op](regs[index] & _U64, value, two)
                   for index, op, value, two in self.args)


@dataclass(frozen=True)
class Profile:
    default: int
    default_errno: int
    rules: dict[int, tuple[Rule, ...]]  #: syscall number -> its rules


def parse(raw: Any) -> Profile:
    """linux.seccomp from config.json."""
    if not isinstance(raw, dict):
        raise ProfileError("linux.seccomp must be an object")
    default_errno = _int(raw.get("defaultErrnoRet", errno.EPERM), "defaultErrnoRet")
    default = _action(raw.get("defaultAction"), "defaultAction")
    arches = raw.get("architectures") or []
    if arches and "SCMP_ARCH_X86_64" not in arches:
        raise ProfileError("the seccomp profile does not cover x86_64")
    if raw.get("listenerPath"):
        raise ProfileError("seccomp user notification (listenerPath) is not supported")
    rules: dict[int, list[Rule]] = {}
    for index, entry in enumerate(raw.get("syscalls") or []):
        where = f"linux.seccomp.syscalls[{index}]"
        if not isinstance(entry, dict):
            raise ProfileError(f"{where} must be an object")
        action = _action(entry.get("action"), f"{where}.action")
        err = _int(entry.get("errnoRet", default_errno), f"{where}.errnoRet")
        args = []
        for arg in entry.get("args") or []:
            op = arg.get("op") if isinstance(arg, dict) else None
            if op not in OPS:
                raise ProfileError(f"{where}: unknown comparison {op!r}")
            position = _int(arg.get("index"), f"{where}.args.index")
            if not 0 <= position < 6:
                raise ProfileError(f"{where}: argument index {position} out of range")
            args.append((position, op, _int(arg.get("value", 0), f"{where}.args.value") & _U64,
                         _int(arg.get("valueTwo", 0), f"{where}.args.valueTwo") & _U64))
        rule = Rule(action, err, tuple(args))
        for name in entry.get("names") or ([entry["name"]] if entry.get("name") else []):
            nr = SYSCALL_NUMBERS.get(name)
            if nr is not None:  # names of other architectures' calls apply to nothing here
                rules.setdefault(nr, []).append(rule)
    return Profile(default, default_errno, {nr: tuple(r) for nr, r in rules.items()})


def _action(value: Any, where: str) -> int:
    if value not in ACTIONS:
        raise ProfileError(f"{where}: unsupported seccomp action {value!r}")
    return ACTIONS[value]


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProfileError(f"{where} must be an integer")
    return value


def decide(profile: Profile, nr: int, regs: tuple) -> tuple[int, int]:
    """(action, errno) for one call: the most restrictive matching rule, else the default."""
    best: tuple[int, int] | None = None
    for rule in profile.rules.get(nr, ()):
        if rule.matches(regs) and (best is None or rule.action < best[0]):
            best = (rule.action, rule.errno)
    return best if best is not None else (profile.default, profile.default_errno)


def install(kernel: Any, profile: Profile | None, root: Any = None) -> None:
    """Apply profile to the processes of one container — those whose root (mount namespace)
    is root, by default the sandbox's first container — before they run; None removes a
    container's profile (a pod member that ended).  The handler table is rebuilt so that a
    call no profile restricts runs its plain handler, at no cost."""
    profiles = kernel.seccomp_profiles
    base = kernel.plain_handlers
    key = kernel.root if root is None else root
    if profile is None:
        profiles.pop(key, None)
    else:
        profiles[key] = profile
    table = list(base)
    for nr in range(len(table)):
        if any(_restricts(p, nr) for p in profiles.values()):
            table[nr] = _guarded(profiles, nr, base[nr])
    if getattr(kernel, "_inotify_base", None) is not None:  # inotify's wrappers stay on top
        from snakevisor.syscalls.sys_inotify import rebase
        rebase(kernel, table)
    else:
        kernel.handlers = table


def mode_of(tg: Any) -> int:
    """The process's seccomp mode as Linux reports it (/proc/PID/status Seccomp,
    PR_GET_SECCOMP): 2 (filter) under an OCI profile, else 0."""
    return 2 if tg.fs.root in tg.kernel.seccomp_profiles else 0


def _restricts(profile: Profile, nr: int) -> bool:
    rules = profile.rules.get(nr, ())
    if not rules:
        return profile.default != ALLOW
    return not all(not r.args and r.action == ALLOW for r in rules)


def _guarded(profiles: dict, nr: int, handler: Handler | None) -> Handler:
    def call(task: "Task", *regs: int) -> int:
        profile = profiles.get(task.tg.fs.root)  # (None: a container without a profile)
        if profile is not None:
            action, err = decide(profile, nr, regs)
            if action < LOG:
                return _deny(task, nr, action, err)
        if handler is None:
            from snakevisor.kernel.errors import ENOSYS, SyscallError
            raise SyscallError(ENOSYS)
        return handler(task, *regs)
    return call


def _deny(task: "Task", nr: int, action: int, err: int) -> int:
    from snakevisor.kernel.errors import ENOSYS, SyscallError
    from snakevisor.kernel.signals import SIGSYS, basic_siginfo, force_sig
    kernel = task.kernel
    if action == ERRNO:
        raise SyscallError(err)
    if action == TRACE:  # no tracer is attached: the call fails with ENOSYS
        raise SyscallError(ENOSYS)
    if action == TRAP:
        info = bytearray(basic_siginfo(SIGSYS, SYS_SECCOMP))
        info[24:28] = nr.to_bytes(4, "little")  # si_syscall
        info[28:32] = (0xC000003E).to_bytes(4, "little")  # si_arch: AUDIT_ARCH_X86_64
        force_sig(kernel, task, SIGSYS, bytes(info))  # (kills even pid 1, as Linux)
        raise SyscallError(ENOSYS)
    # KILL_THREAD is applied to the whole process: never less than asked
    from snakevisor.syscalls import NO_RETURN
    kernel.exit_group(task.tg, SIGSYS)
    return NO_RETURN  # type: ignore[return-value]
