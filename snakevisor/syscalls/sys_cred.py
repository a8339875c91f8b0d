"""Credentials and capabilities, emulated inside the sandbox (credentials(7), capabilities(7)).

Every identity a sandboxed program sees is the sentry's bookkeeping: the host only ever
knows the stub's one unprivileged uid, so set*id and capset never reach the host, and
uid 0 inside holds every capability of this kernel (CAP_LAST_CAP 40) as it would in a
container's user namespace.  The rules are Linux's kernel/sys.c and commoncap.c,
including the capability fix-ups when uids move away from or back to 0.

Linux keeps credentials per thread; glibc's setxid broadcast makes every thread of a
process change together, so they are kept per thread group here (``tg.creds`` for the ids,
``tg.caps`` for the capability state).  What changes with the credentials but belongs
elsewhere is done here too: the dumpable flag (``tg.dumpable``) and the caller's parent
death signal (``task.pdeathsig``), as commit_creds does.
"""
from __future__ import annotations

import functools
import struct
from typing import TYPE_CHECKING, NamedTuple

from snakevisor.kernel.errors import EFAULT, EINVAL, EPERM, SyscallError
from snakevisor.kernel.task import Credentials
from snakevisor.mm.address_space import PROT_READ
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, u32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task, ThreadGroup

# --------------------------------------------------------------------------- capability numbers

CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID = 0, 1, 2, 3, 4
CAP_KILL, CAP_SETGID, CAP_SETUID, CAP_SETPCAP, CAP_LINUX_IMMUTABLE = 5, 6, 7, 8, 9
CAP_IPC_LOCK, CAP_SYS_CHROOT, CAP_SYS_PTRACE, CAP_SYS_ADMIN = 14, 18, 19, 21
CAP_SYS_NICE, CAP_SYS_RESOURCE, CAP_SYS_TIME, CAP_MKNOD = 23, 24, 25, 27
CAP_MAC_OVERRIDE, CAP_WAKE_ALARM = 32, 35
CAP_LAST_CAP = 40
CAP_FULL_SET = (1 << (CAP_LAST_CAP + 1)) - 1
#: cleared from the effective set when fsuid leaves 0 (and restored when it returns)
CAP_FS_SET = sum(1 << c for c in (CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
                                   CAP_FOWNER, CAP_FSETID, CAP_LINUX_IMMUTABLE, CAP_MKNOD,
                                   CAP_MAC_OVERRIDE))

# securebits (prctl PR_SET_SECUREBITS); each bit's lock is the next bit up
SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_KEEP_CAPS, SECBIT_NO_CAP_AMBIENT_RAISE = 1, 4, 16, 64
SECBIT_KEEP_CAPS_LOCKED = 32
SECBIT_EXEC_RESTRICT_FILE, SECBIT_EXEC_DENY_INTERACTIVE = 1 << 8, 1 << 10
SECURE_ALL_BITS = (SECBIT_NOROOT | SECBIT_NO_SETUID_FIXUP | SECBIT_KEEP_CAPS |
                   SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_EXEC_RESTRICT_FILE |
                   SECBIT_EXEC_DENY_INTERACTIVE)
SECURE_ALL_LOCKS = SECURE_ALL_BITS << 1

_LINUX_CAPABILITY_VERSION_1 = 0x19980330
_LINUX_CAPABILITY_VERSION_2 = 0x20071026
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_CAP_HEADER = struct.Struct("<Ii")  # version, pid
_CAP_DATA = struct.Struct("<III")  # effective, permitted, inheritable (32 bits each)

#: the partial note of the calls that change credentials
PER_PROCESS = ("credentials are kept per process, not per thread (glibc's setxid changes "
               "every thread together)")

NO_ID = 0xFFFFFFFF  # (uid_t)-1: "leave unchanged", never a valid id
NGROUPS_MAX = 65536
SUID_DUMP_DISABLE, SUID_DUMP_USER = 0, 1


# --------------------------------------------------------------------------- capability state

class Capabilities:
    """A process's capability sets (64-bit masks) and securebits."""

    __slots__ = ("effective", "permitted", "inheritable", "bounding", "ambient", "securebits")

    def __init__(self, effective: int, permitted: int, inheritable: int = 0,
                 bounding: int = CAP_FULL_SET, ambient: int = 0, securebits: int = 0) -> None:
        self.effective, self.permitted, self.inheritable = effective, permitted, inheritable
        self.bounding, self.ambient, self.securebits = bounding, ambient, securebits

    @classmethod
    def for_ids(cls, creds: Credentials) -> "Capabilities":
        """What a program started with these ids holds (no file capabilities anywhere):
        root has the whole bounding set, anyone else nothing."""
        permitted = CAP_FULL_SET if 0 in (creds.ruid, creds.euid) else 0
        return cls(permitted if creds.euid == 0 else 0, permitted)

    def copy(self) -> "Capabilities":
        return Capabilities(self.effective, self.permitted, self.inheritable, self.bounding,
                            self.ambient, self.securebits)


def caps_of(tg: "ThreadGroup") -> Capabilities:
    """The capability state of a process (created from its ids on first use)."""
    caps = getattr(tg, "caps", None)
    if caps is None:
        caps = tg.caps = Capabilities.for_ids(tg.creds)  # type: ignore[attr-defined]
    return caps


def has_cap(task: "Task", cap: int) -> bool:
    """capable(): whether the caller's effective set holds `cap`."""
    return bool(caps_of(task.tg).effective >> cap & 1)


def cap_valid(cap: int) -> bool:
    return 0 <= cap <= CAP_LAST_CAP


def dumpable(tg: "ThreadGroup") -> int:
    """PR_GET_DUMPABLE: 1 until credentials change or the program says otherwise."""
    return getattr(tg, "dumpable", SUID_DUMP_USER)


@functools.cache
def suid_dumpable() -> int:
    """fs.suid_dumpable: what dumpable becomes when credentials change (the host's value,
    since the sandbox shares the host kernel's sysctls)."""
    try:
        with open("/proc/sys/fs/suid_dumpable") as f:
            return int(f.read())
    except (OSError, ValueError):
        return SUID_DUMP_DISABLE


# --------------------------------------------------------------------------- process life

def creds_fork(parent: "ThreadGroup", child: "ThreadGroup") -> None:
    """fork/clone of a process: the child starts with copies of the parent's capability
    state and dumpable flag (ThreadGroup copies the ids themselves)."""
    child.caps = caps_of(parent).copy()  # type: ignore[attr-defined]
    child.dumpable = dumpable(parent)  # type: ignore[attr-defined]


S_ISUID, S_ISGID, S_IXGRP = 0o4000, 0o2000, 0o010


def exec_ids(task: "Task", mode: int, uid: int, gid: int, nosuid: bool) -> tuple[int, int]:
    """bprm_fill_uid: the (euid, egid) a program file gives the new image: its owner for a
    set-user-ID file, its group for a set-group-ID one with group execute (without it the
    bit means mandatory locking) — unless its mount is nosuid or the thread has
    no_new_privs, which keep the caller's."""
    c = task.tg.creds
    if nosuid or not mode & (S_ISUID | S_ISGID):
        return c.euid, c.egid
    from snakevisor.syscalls.sys_info import thread_state
    if thread_state(task).no_new_privs:
        return c.euid, c.egid
    return (uid if mode & S_ISUID else c.euid,
            gid if mode & (S_ISGID | S_IXGRP) == S_ISGID | S_IXGRP else c.egid)


def _exec_caps(tg: "ThreadGroup", ids: "tuple[int, int] | None" = None
               ) -> tuple[int, int, int, bool]:
    """(permitted, effective, ambient, secure) after an execve whose image runs with the
    effective ids `ids` (exec_ids; None: the caller's): Linux's cap_bprm_creds_from_file
    for a file without capabilities.  Root (real or effective) gets its bounding set, the
    effective set follows the effective uid, a set-id exec (effective ids other than the
    real ones) clears the ambient set, and it — or an exec that gives capabilities to a
    non-root real uid — is privilege-elevated (AT_SECURE)."""
    c, caps = tg.creds, caps_of(tg)
    euid, egid = ids if ids is not None else (c.euid, c.egid)
    is_setid = euid != c.ruid or egid != c.rgid
    ambient = 0 if is_setid else caps.ambient
    root_rules = not caps.securebits & SECBIT_NOROOT
    permitted = ambient
    if root_rules and 0 in (euid, c.ruid):
        permitted |= caps.bounding | caps.inheritable
    raise_effective = root_rules and euid == 0
    effective = permitted if raise_effective else ambient
    secure = is_setid or (c.ruid != 0 and (raise_effective or bool(permitted & ~ambient)))
    return permitted, effective, ambient, secure


def exec_secure(tg: "ThreadGroup", ids: "tuple[int, int] | None" = None) -> bool:
    """AT_SECURE for the image about to be loaded (before creds_exec commits it)."""
    return _exec_caps(tg, ids)[3]


def creds_exec(task: "Task", ids: "tuple[int, int] | None" = None) -> bool:
    """execve, at its point of no return: the effective ids of a set-id program (`ids`,
    from exec_ids), the capability sets of _exec_caps, saved and fs ids set to the
    effective ones, KEEP_CAPS cleared, dumpability decided.  Returns AT_SECURE."""
    tg = task.tg
    c, caps = tg.creds, caps_of(tg)
    old, old_permitted = _ids(c), caps.permitted
    # begin_new_exec decides dumpability from the ids before the exec changes them (the
    # change itself is commit_creds', in _commit)
    tg.dumpable = (SUID_DUMP_USER if (c.euid, c.egid) == (c.ruid, c.rgid)  # type: ignore[attr-defined]
                   else suid_dumpable())
    caps.permitted, caps.effective, caps.ambient, secure = _exec_caps(tg, ids)
    if ids is not None:
        c.euid, c.egid = ids
    c.suid = c.fsuid = c.euid
    c.sgid = c.fsgid = c.egid
    caps.securebits &= ~SECBIT_KEEP_CAPS
    if secure:
        task.pdeathsig = 0  # the parent may not signal a privileged program
    _commit(task, old, old_permitted)
    return secure


# --------------------------------------------------------------------------- committing changes

def _ids(c: Credentials) -> tuple[int, ...]:
    return (c.ruid, c.euid, c.suid, c.fsuid, c.rgid, c.egid, c.sgid, c.fsgid)


def _commit(task: "Task", old: tuple[int, ...], old_permitted: int) -> int:
    """commit_creds: a change of effective or fs ids, or new permitted capabilities, makes
    the process non-dumpable (fs.suid_dumpable) and clears the caller's parent death signal."""
    c = task.tg.creds
    if (old[1], old[3], old[5], old[7]) != (c.euid, c.fsuid, c.egid, c.fsgid) or \
            caps_of(task.tg).permitted & ~old_permitted:
        task.tg.dumpable = suid_dumpable()  # type: ignore[attr-defined]
        task.pdeathsig = 0
    return 0


def _fix_setuid(task: "Task", old: tuple[int, ...]) -> None:
    """cap_emulate_setxuid: leaving uid 0 everywhere drops the permitted and effective
    sets (unless KEEP_CAPS) and the ambient set; the effective set follows euid 0."""
    caps = caps_of(task.tg)
    if caps.securebits & SECBIT_NO_SETUID_FIXUP:
        return
    c = task.tg.creds
    old_ruid, old_euid, old_suid = old[0], old[1], old[2]
    if 0 in (old_ruid, old_euid, old_suid) and 0 not in (c.ruid, c.euid, c.suid):
        if not caps.securebits & SECBIT_KEEP_CAPS:
            caps.permitted = caps.effective = 0
        caps.ambient = 0
    if old_euid == 0 and c.euid != 0:
        caps.effective = 0
    if old_euid != 0 and c.euid == 0:
        caps.effective = caps.permitted


def _fix_setfsuid(task: "Task", old_fsuid: int) -> None:
    """fsuid leaving 0 drops the file-system capabilities from the effective set; coming
    back to 0 restores those of them that are permitted."""
    caps = caps_of(task.tg)
    if caps.securebits & SECBIT_NO_SETUID_FIXUP:
        return
    new_fsuid = task.tg.creds.fsuid
    if old_fsuid == 0 and new_fsuid != 0:
        caps.effective &= ~CAP_FS_SET
    elif old_fsuid != 0 and new_fsuid == 0:
        caps.effective |= caps.permitted & CAP_FS_SET


def _check_ids(*ids: int) -> None:
    if any(i == NO_ID for i in ids):
        raise SyscallError(EINVAL)


def _given(*ids: int) -> tuple[int, ...]:
    """Ids that are not (uid_t)-1, each checked: nothing else is invalid inside."""
    return tuple(i for i in ids if i != NO_ID)


# --------------------------------------------------------------------------- getters

@syscall("getuid")
def sys_getuid(task: "Task", *_: int) -> int:
    return task.tg.creds.ruid


@syscall("geteuid")
def sys_geteuid(task: "Task", *_: int) -> int:
    return task.tg.creds.euid


@syscall("getgid")
def sys_getgid(task: "Task", *_: int) -> int:
    return task.tg.creds.rgid


@syscall("getegid")
def sys_getegid(task: "Task", *_: int) -> int:
    return task.tg.creds.egid


def _put_ids(task: "Task", ptrs: tuple[int, int, int], ids: tuple[int, int, int]) -> int:
    for ptr, value in zip(ptrs, ids):  # one put_user each: the first bad pointer stops
        task.mm.write(ptr, struct.pack("<I", value & 0xFFFFFFFF))
    return 0


@syscall("getresuid")
def sys_getresuid(task: "Task", r: int, e: int, s: int, *_: int) -> int:
    c = task.tg.creds
    return _put_ids(task, (r, e, s), (c.ruid, c.euid, c.suid))


@syscall("getresgid")
def sys_getresgid(task: "Task", r: int, e: int, s: int, *_: int) -> int:
    c = task.tg.creds
    return _put_ids(task, (r, e, s), (c.rgid, c.egid, c.sgid))


# --------------------------------------------------------------------------- user and group ids

class _IdKind(NamedTuple):
    """User or group ids: the set*id calls follow the same rules for both (kernel/sys.c),
    with their own four fields, their own capability, and capability fix-ups for uids only."""

    fields: tuple[str, str, str, str]  # real, effective, saved, fs
    cap: int  # allows any value
    moves_caps: bool  # cap_emulate_setxuid and the fsuid fix-up apply

    def get(self, c: Credentials) -> tuple[int, int, int, int]:
        r, e, s, fs = (getattr(c, name) for name in self.fields)
        return r, e, s, fs

    def put(self, c: Credentials, ids: tuple[int, int, int, int]) -> None:
        for name, value in zip(self.fields, ids):
            setattr(c, name, value)


UIDS = _IdKind(("ruid", "euid", "suid", "fsuid"), CAP_SETUID, True)
GIDS = _IdKind(("rgid", "egid", "sgid", "fsgid"), CAP_SETGID, False)


def _or_keep(new: int, current: int) -> int:
    """An id argument: (uid_t)-1 keeps the current value."""
    return current if new == NO_ID else new


def _change(task: "Task", kind: _IdKind, new: tuple[int, int, int, int]) -> int:
    """Store the new (real, effective, saved, fs) ids, fix capabilities up, commit."""
    c = task.tg.creds
    old, permitted = _ids(c), caps_of(task.tg).permitted
    kind.put(c, new)
    if kind.moves_caps:
        _fix_setuid(task, old)
    return _commit(task, old, permitted)


def _setid(task: "Task", kind: _IdKind, value: int) -> int:
    """setuid/setgid: with the capability all four ids; without it only the effective
    and fs ids, and only to the real or saved one."""
    value = u32(value)
    _check_ids(value)
    r, _, s, _ = kind.get(task.tg.creds)
    if has_cap(task, kind.cap):
        r = s = value
    elif value not in (r, s):
        raise SyscallError(EPERM)
    return _change(task, kind, (r, value, s, value))


def _setreid(task: "Task", kind: _IdKind, real: int, effective: int) -> int:
    """setreuid/setregid: the saved id follows the new effective one when the real id is
    set or the effective one moves away from the old real id."""
    real, effective = u32(real), u32(effective)
    r, e, s, _ = kind.get(task.tg.creds)
    privileged = has_cap(task, kind.cap)
    if real != NO_ID and real not in (r, e) and not privileged:
        raise SyscallError(EPERM)
    if effective != NO_ID and effective not in (r, e, s) and not privileged:
        raise SyscallError(EPERM)
    new_e = _or_keep(effective, e)
    if real != NO_ID or (effective != NO_ID and effective != r):
        s = new_e
    return _change(task, kind, (_or_keep(real, r), new_e, s, new_e))


def _setresid(task: "Task", kind: _IdKind, real: int, effective: int, saved: int) -> int:
    """setresuid/setresgid: each id to any of the current three (any value with the
    capability); a call that changes nothing needs no permission."""
    real, effective, saved = u32(real), u32(effective), u32(saved)
    r, e, s, fs = kind.get(task.tg.creds)
    if real in (NO_ID, r) and (effective == NO_ID or effective == e == fs) and saved in (NO_ID, s):
        return 0
    if any(i not in (r, e, s) for i in _given(real, effective, saved)) and \
            not has_cap(task, kind.cap):
        raise SyscallError(EPERM)
    new_e = _or_keep(effective, e)
    return _change(task, kind, (_or_keep(real, r), new_e, _or_keep(saved, s), new_e))


def _setfsid(task: "Task", kind: _IdKind, value: int) -> int:
    """setfsuid/setfsgid: returns the previous fs id whether or not it changed (there is
    no error)."""
    value = u32(value)
    c = task.tg.creds
    r, e, s, old_fs = kind.get(c)
    if value == NO_ID or value == old_fs:
        return old_fs
    if value in (r, e, s) or has_cap(task, kind.cap):
        old, permitted = _ids(c), caps_of(task.tg).permitted
        kind.put(c, (r, e, s, value))
        if kind.moves_caps:
            _fix_setfsuid(task, old_fs)
        _commit(task, old, permitted)
    return old_fs


@syscall("setuid", partial=PER_PROCESS)
def sys_setuid(task: "Task", uid: int, *_: int) -> int:
    return _setid(task, UIDS, uid)


@syscall("setgid", partial=PER_PROCESS)
def sys_setgid(task: "Task", gid: int, *_: int) -> int:
    return _setid(task, GIDS, gid)


@syscall("setreuid", partial=PER_PROCESS)
def sys_setreuid(task: "Task", ruid: int, euid: int, *_: int) -> int:
    return _setreid(task, UIDS, ruid, euid)


@syscall("setregid", partial=PER_PROCESS)
def sys_setregid(task: "Task", rgid: int, egid: int, *_: int) -> int:
    return _setreid(task, GIDS, rgid, egid)


@syscall("setresuid", partial=PER_PROCESS)
def sys_setresuid(task: "Task", ruid: int, euid: int, suid: int, *_: int) -> int:
    return _setresid(task, UIDS, ruid, euid, suid)


@syscall("setresgid", partial=PER_PROCESS)
def sys_setresgid(task: "Task", rgid: int, egid: int, sgid: int, *_: int) -> int:
    return _setresid(task, GIDS, rgid, egid, sgid)


@syscall("setfsuid", partial=PER_PROCESS)
def sys_setfsuid(task: "Task", uid: int, *_: int) -> int:
    return _setfsid(task, UIDS, uid)


@syscall("setfsgid", partial=PER_PROCESS)
def sys_setfsgid(task: "Task", gid: int, *_: int) -> int:
    return _setfsid(task, GIDS, gid)


# --------------------------------------------------------------------------- supplementary groups

@syscall("getgroups")
def sys_getgroups(task: "Task", size: int, lst: int, *_: int) -> int:
    size = s32(size)
    groups = task.tg.creds.groups
    if size < 0:
        raise SyscallError(EINVAL)
    if size:
        if size < len(groups):
            raise SyscallError(EINVAL)
        task.mm.write(lst, struct.pack(f"<{len(groups)}I", *groups))
    return len(groups)


@syscall("setgroups", partial=PER_PROCESS)
def sys_setgroups(task: "Task", size: int, lst: int, *_: int) -> int:
    if not has_cap(task, CAP_SETGID):
        raise SyscallError(EPERM)
    size = s32(size)
    if not 0 <= size <= NGROUPS_MAX:
        raise SyscallError(EINVAL)
    # Linux copies one id at a time, so an invalid id before an unreadable one is EINVAL
    want = 4 * size
    readable = task.mm.accessible(lst, want, PROT_READ) // 4 * 4
    groups = list(struct.unpack(f"<{readable // 4}I", task.mm.read(lst, readable)))
    _check_ids(*groups)
    if readable < want:
        raise SyscallError(EFAULT)
    task.tg.creds.groups = sorted(groups)  # groups_sort: getgroups returns them ordered
    return 0


# --------------------------------------------------------------------------- capget / capset

def _cap_version(task: "Task", header: int) -> int:
    """How many 32-bit data structs the header's version uses; an unknown version is
    answered with the preferred one written back and EINVAL."""
    version = struct.unpack("<I", task.mm.read(header, 4))[0]
    if version == _LINUX_CAPABILITY_VERSION_1:
        return 1
    if version in (_LINUX_CAPABILITY_VERSION_2, _LINUX_CAPABILITY_VERSION_3):
        return 2
    task.mm.write(header, struct.pack("<I", _LINUX_CAPABILITY_VERSION_3))
    raise SyscallError(EINVAL)


@syscall("capget")
def sys_capget(task: "Task", header: int, data: int, *_: int) -> int:
    try:
        words = _cap_version(task, header)
    except SyscallError as e:
        if e.errno == EINVAL and not data:
            return 0  # libcap's version probe: capget(&hdr, NULL)
        raise
    if not data:
        return 0
    pid = _CAP_HEADER.unpack(task.mm.read(header, _CAP_HEADER.size))[1]
    if pid < 0:
        raise SyscallError(EINVAL)
    target = task
    if pid not in (0, task.tid):
        # sys_info imports this module (for has_cap): import it only when needed
        from snakevisor.syscalls.sys_info import lookup_task
        target = lookup_task(task, pid)
    caps = caps_of(target.tg)
    out = b"".join(_CAP_DATA.pack(caps.effective >> (32 * i) & 0xFFFFFFFF,
                                  caps.permitted >> (32 * i) & 0xFFFFFFFF,
                                  caps.inheritable >> (32 * i) & 0xFFFFFFFF)
                   for i in range(words))
    task.mm.write(data, out)
    return 0


@syscall("capset", partial=PER_PROCESS)
def sys_capset(task: "Task", header: int, data: int, *_: int) -> int:
    words = _cap_version(task, header)
    pid = _CAP_HEADER.unpack(task.mm.read(header, _CAP_HEADER.size))[1]
    if pid not in (0, task.tid):
        raise SyscallError(EPERM)  # only one's own capabilities may be set
    raw = task.mm.read(data, _CAP_DATA.size * words)
    effective = permitted = inheritable = 0
    for i in range(words):
        e, p, inh = _CAP_DATA.unpack_from(raw, _CAP_DATA.size * i)
        effective |= e << (32 * i)
        permitted |= p << (32 * i)
        inheritable |= inh << (32 * i)
    effective &= CAP_FULL_SET
    permitted &= CAP_FULL_SET
    inheritable &= CAP_FULL_SET
    caps = caps_of(task.tg)
    if not has_cap(task, CAP_SETPCAP) and inheritable & ~(caps.inheritable | caps.permitted):
        raise SyscallError(EPERM)  # new inheritable bits need CAP_SETPCAP ...
    if inheritable & ~(caps.inheritable | caps.bounding):
        raise SyscallError(EPERM)  # ... and never outside the bounding set
    if permitted & ~caps.permitted or effective & ~permitted:
        raise SyscallError(EPERM)
    caps.effective, caps.permitted, caps.inheritable = effective, permitted, inheritable
    caps.ambient &= permitted & inheritable
    return 0


# --------------------------------------------------------------------------- prctl's capability options

PR_CAP_AMBIENT_IS_SET, PR_CAP_AMBIENT_RAISE, PR_CAP_AMBIENT_LOWER, PR_CAP_AMBIENT_CLEAR_ALL = 1, 2, 3, 4


def prctl_get_keepcaps(task: "Task") -> int:
    return int(bool(caps_of(task.tg).securebits & SECBIT_KEEP_CAPS))


def prctl_set_keepcaps(task: "Task", value: int) -> int:
    caps = caps_of(task.tg)
    if value > 1:
        raise SyscallError(EINVAL)
    if caps.securebits & SECBIT_KEEP_CAPS_LOCKED:
        raise SyscallError(EPERM)
    caps.securebits = caps.securebits & ~SECBIT_KEEP_CAPS | (SECBIT_KEEP_CAPS if value else 0)
    return 0


def prctl_set_securebits(task: "Task", bits: int) -> int:
    caps = caps_of(task.tg)
    old = caps.securebits
    locks = old & SECURE_ALL_LOCKS
    if ((locks >> 1) & (old ^ bits) or locks & ~bits or bits & ~(SECURE_ALL_LOCKS | SECURE_ALL_BITS)
            or not has_cap(task, CAP_SETPCAP)):
        raise SyscallError(EPERM)  # locked bits, unlocking, unknown bits, or no privilege
    caps.securebits = bits
    return 0


def prctl_capbset_read(task: "Task", cap: int) -> int:
    if not cap_valid(cap):
        raise SyscallError(EINVAL)
    return caps_of(task.tg).bounding >> cap & 1


def prctl_capbset_drop(task: "Task", cap: int) -> int:
    if not has_cap(task, CAP_SETPCAP):
        raise SyscallError(EPERM)
    if not cap_valid(cap):
        raise SyscallError(EINVAL)
    caps_of(task.tg).bounding &= ~(1 << cap)
    return 0


def prctl_cap_ambient(task: "Task", op: int, cap: int, a4: int, a5: int) -> int:
    caps = caps_of(task.tg)
    if op == PR_CAP_AMBIENT_CLEAR_ALL:
        if cap | a4 | a5:
            raise SyscallError(EINVAL)
        caps.ambient = 0
        return 0
    if not cap_valid(cap) or a4 | a5:
        raise SyscallError(EINVAL)
    if op == PR_CAP_AMBIENT_IS_SET:
        return caps.ambient >> cap & 1
    if op == PR_CAP_AMBIENT_RAISE:
        if not (caps.permitted & caps.inheritable) >> cap & 1 or \
                caps.securebits & SECBIT_NO_CAP_AMBIENT_RAISE:
            raise SyscallError(EPERM)
        caps.ambient |= 1 << cap
        return 0
    if op == PR_CAP_AMBIENT_LOWER:
        caps.ambient &= ~(1 << cap)
        return 0
    raise SyscallError(EINVAL)
