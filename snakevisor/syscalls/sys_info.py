"""Identity, limits, scheduling and system-information calls.

These calls read or change per-sandbox state (hostname, ids, rlimits, nice values, CPU
affinity, personality) that the sentry keeps for itself; none of them is passed to the
host.  Host facts are used only where the sandbox shares them with the host anyway: the
kernel release (glibc and CPython probe it for features), the CPUs the sentry may run on,
and the machine's memory figures.
"""
from __future__ import annotations

import functools
import os
import struct
import time
import weakref
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EACCES, EFAULT, EINVAL, EPERM, ESRCH, Block, SyscallError
from snakevisor.kernel.task import RLIM_INFINITY, RLIMIT_NAMES
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, u32

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task, ThreadGroup

PAGE = 4096
#: one past the highest user address (access_ok's TASK_SIZE_MAX, 4-level paging)
TASK_SIZE_MAX = (1 << 47) - PAGE
#: the most one read/write-like call moves (INT_MAX rounded down to a page)
MAX_RW_COUNT = 0x7FFFFFFF & ~(PAGE - 1)
UTS_FIELD = 65  # __NEW_UTS_LEN + 1
UTS_NAME_MAX = 64

RLIMIT_CPU, RLIMIT_NOFILE, RLIMIT_NICE = 0, 7, 13
#: fs.nr_open's default: the NOFILE hard limit no one may exceed
NR_OPEN = 1048576

GRND_NONBLOCK, GRND_RANDOM, GRND_INSECURE = 1, 2, 4
#: getrandom fills at most this much per dispatch, then lets other tasks run
GETRANDOM_SLICE = 4 << 20

PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
MIN_NICE, MAX_NICE = -20, 19

PER_LINUX = 0
ADDR_NO_RANDOMIZE = 0x0040000
#: personalities we honour: the sentry places mappings deterministically, so "no
#: randomisation" is already true; every other persona changes behaviour we do not model
PERSONALITIES_OK = (PER_LINUX, PER_LINUX | ADDR_NO_RANDOMIZE)

SYSINFO = struct.Struct("<q3Q6QHH4xQQI4x")  # struct sysinfo, 112 bytes on x86_64
SI_LOAD_SHIFT = 16


# --------------------------------------------------------------------------- helpers

def capable(task: "Task") -> bool:
    """Whether the caller holds the sandbox's capabilities (root inside has them all)."""
    return task.tg.creds.euid == 0


def find_task(kernel: "Kernel", tid: int) -> "Task | None":
    """The live task with sandbox thread id `tid` (a process's leader answers for it
    while any of its threads runs, as Linux keeps an exited leader until the group ends)."""
    if tid <= 0:
        return None
    tg = kernel.thread_groups.get(tid)
    if tg is not None and tg.alive and tg.tasks and tg.tasks[0].tid == tid:
        return tg.tasks[0]
    for tg in kernel.thread_groups.values():
        if tg.alive:
            for t in tg.tasks:
                if t.tid == tid and t.alive:
                    return t
    return None


def lookup_task(task: "Task", tid: int) -> "Task":
    """`tid` as Linux's find_process_by_pid reads it: 0 is the caller; ESRCH if none."""
    if tid == 0:
        return task
    found = find_task(task.kernel, tid)
    if found is None:
        raise SyscallError(ESRCH)
    return found


def live_tasks(kernel: "Kernel"):
    for tg in kernel.thread_groups.values():
        if tg.alive:
            for t in tg.tasks:
                if t.alive:
                    yield t


# --------------------------------------------------------------------------- host facts

@functools.cache
def _uname_host() -> tuple[bytes, bytes]:
    u = os.uname()
    return u.release.encode(), u.version.encode()


@functools.cache
def nr_cpu_ids() -> int:
    """One past the highest possible CPU number (the width of a CPU mask)."""
    try:
        with open("/sys/devices/system/cpu/possible") as f:
            text = f.read().strip()
        return max(int(part.split("-")[-1]) for part in text.split(",")) + 1
    except (OSError, ValueError):
        return os.cpu_count() or 1


@functools.cache
def cpumask_size() -> int:
    """Bytes sched_getaffinity copies out: the host kernel's cpumask_size(), which depends
    on its configuration (NR_CPUS or nr_cpu_ids), so ask the host about ourselves once."""
    fallback = 8 * ((nr_cpu_ids() + 63) // 64)
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        buf = ctypes.create_string_buffer(8192)
        size = libc.syscall(ctypes.c_long(204), ctypes.c_long(0), ctypes.c_uint(len(buf)), buf)
    except (OSError, AttributeError):
        return fallback
    return size if size > 0 else fallback


def allowed_cpus(task: "Task") -> int:
    """The CPUs the sandbox was given, as a mask (not the one CPU the platform may pin its
    threads to: programs size their thread pools from this, as they would in a container)."""
    mask = 0
    for cpu in task.kernel.platform.cpus:
        mask |= 1 << cpu
    return mask


@functools.cache
def _cpu_nodes() -> dict[int, int]:
    nodes: dict[int, int] = {}
    base = "/sys/devices/system/node"
    try:
        entries = os.listdir(base)
    except OSError:
        return nodes
    for name in entries:
        if not (name.startswith("node") and name[4:].isdigit()):
            continue
        try:
            with open(f"{base}/{name}/cpulist") as f:
                text = f.read().strip()
        except OSError:
            continue
        for part in filter(None, text.split(",")):
            lo, _, hi = part.partition("-")
            for cpu in range(int(lo), int(hi or lo) + 1):
                nodes[cpu] = int(name[4:])
    return nodes


def _host_meminfo() -> dict[str, int]:
    """/proc/meminfo of the host in bytes (the sandbox shares the machine's memory)."""
    out: dict[str, int] = {}
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                key, _, rest = line.partition(b":")
                words = rest.split()
                if words:
                    out[key.decode()] = int(words[0]) * (1024 if len(words) > 1 else 1)
    except OSError:
        pass
    return out


# --------------------------------------------------------------------------- per-thread scheduling state

class SchedState:
    """What Linux keeps per thread and a new thread inherits: affinity, nice, personality."""

    __slots__ = ("cpus", "nice", "personality")

    def __init__(self, cpus: int, nice: int, personality: int) -> None:
        self.cpus, self.nice, self.personality = cpus, nice, personality


_sched: "weakref.WeakKeyDictionary[Task, SchedState]" = weakref.WeakKeyDictionary()


@functools.cache
def _initial_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


def sched_of(task: "Task") -> SchedState:
    state = _sched.get(task)
    if state is None:
        state = _sched[task] = SchedState(allowed_cpus(task), _initial_nice(), PER_LINUX)
    return state


def inherit_sched(parent: "Task", child: "Task") -> None:
    """clone/fork: the child thread starts with its parent's affinity, nice and persona."""
    p = sched_of(parent)
    _sched[child] = SchedState(p.cpus, p.nice, p.personality)


# --------------------------------------------------------------------------- names

@syscall("uname")
def sys_uname(task: "Task", buf: int, *_: int) -> int:
    release, version = _uname_host()
    kernel = task.kernel
    fields = (b"Linux", kernel.hostname, release, version, b"x86_64", kernel.domainname)
    task.mm.write(buf, b"".join(f[:UTS_NAME_MAX].ljust(UTS_FIELD, b"\0") for f in fields))
    return 0


def _set_uts_name(task: "Task", addr: int, length: int) -> bytes:
    if not capable(task):
        raise SyscallError(EPERM)
    if length < 0 or length > UTS_NAME_MAX:
        raise SyscallError(EINVAL)
    # Linux keeps all `length` bytes (NULs included); readers stop at the first NUL.
    return task.mm.read(addr, length)


@syscall("sethostname")
def sys_sethostname(task: "Task", name: int, length: int, *_: int) -> int:
    task.kernel.hostname = _set_uts_name(task, name, s32(length))
    return 0


@syscall("setdomainname")
def sys_setdomainname(task: "Task", name: int, length: int, *_: int) -> int:
    task.kernel.domainname = _set_uts_name(task, name, s32(length))
    return 0


# --------------------------------------------------------------------------- ids

@syscall("getpid")
def sys_getpid(task: "Task", *_: int) -> int:
    return task.tg.pid


@syscall("gettid")
def sys_gettid(task: "Task", *_: int) -> int:
    return task.tid


@syscall("getppid")
def sys_getppid(task: "Task", *_: int) -> int:
    parent = task.tg.parent
    return parent.pid if parent is not None else 0


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


# --------------------------------------------------------------------------- sysinfo

@syscall("sysinfo", partial="load averages are 0; memory figures are the host's")
def sys_sysinfo(task: "Task", info: int, *_: int) -> int:
    kernel = task.kernel
    up = time.monotonic() - kernel.boot_monotonic
    uptime = int(up) + (1 if up > int(up) else 0)  # Linux rounds a partial second up
    mem = _host_meminfo()
    procs = min(sum(1 for _ in live_tasks(kernel)), 0xFFFF)
    task.mm.write(info, SYSINFO.pack(
        uptime, 0, 0, 0,
        mem.get("MemTotal", 0), mem.get("MemFree", 0), mem.get("Shmem", 0),
        mem.get("Buffers", 0), mem.get("SwapTotal", 0), mem.get("SwapFree", 0),
        procs, 0, 0, 0, 1))
    return 0


# --------------------------------------------------------------------------- getrandom

@syscall("getrandom")
def sys_getrandom(task: "Task", buf: int, count: int, flags: int, *_: int) -> int:
    flags = u32(flags)
    state = task.syscall_state
    if state is None:
        if flags & ~(GRND_NONBLOCK | GRND_RANDOM | GRND_INSECURE):
            raise SyscallError(EINVAL)
        if flags & (GRND_INSECURE | GRND_RANDOM) == GRND_INSECURE | GRND_RANDOM:
            raise SyscallError(EINVAL)
        count = min(count, MAX_RW_COUNT)
        if count > TASK_SIZE_MAX or buf > TASK_SIZE_MAX - count:
            raise SyscallError(EFAULT)  # access_ok, checked even for 0 bytes
        done = 0
    else:
        count, done = state["count"], state["done"]
    # A big request is filled a slice per dispatch so other tasks run in between.
    step = min(count - done, GETRANDOM_SLICE)
    wrote = task.mm.write_prefix(buf + done, os.urandom(step)) if step else 0
    done += wrote
    if wrote == step and done < count:
        task.syscall_state = {"count": count, "done": done}
        raise Block(deadline=time.monotonic())
    if done == 0 and count:
        raise SyscallError(EFAULT)
    return done


# --------------------------------------------------------------------------- rlimits

def do_prlimit(task: "Task", tg: "ThreadGroup", resource: int,
               new: tuple[int, int] | None) -> tuple[int, int]:
    """Linux's do_prlimit: returns the old (soft, hard) after installing `new`."""
    if resource >= len(RLIMIT_NAMES):
        raise SyscallError(EINVAL)
    lim = tg.rlimits[resource]
    old = (lim[0], lim[1])
    if new is not None:
        soft, hard = new
        if soft > hard:
            raise SyscallError(EINVAL)
        if resource == RLIMIT_NOFILE and hard > NR_OPEN:
            raise SyscallError(EPERM)
        if hard > lim[1] and not capable(task):
            raise SyscallError(EPERM)
        lim[0], lim[1] = soft, hard
        if resource == RLIMIT_CPU and soft != RLIM_INFINITY:
            task.kernel.warn_once("rlimit-cpu", f"setrlimit(RLIMIT_CPU, {soft}, {hard}): "
                                  "stored but not enforced (no CPU timers yet)")
    return old


def _read_rlimit(task: "Task", addr: int) -> tuple[int, int]:
    soft, hard = struct.unpack("<QQ", task.mm.read(addr, 16))
    return soft, hard


@syscall("prlimit64", partial="RLIMIT_CPU is stored but not enforced")
def sys_prlimit64(task: "Task", pid: int, resource: int, new_rlim: int, old_rlim: int,
                  *_: int) -> int:
    new = _read_rlimit(task, new_rlim) if new_rlim else None
    target = lookup_task(task, s32(pid))
    if target is not task:
        mine, theirs = task.tg.creds, target.tg.creds
        same = (mine.ruid == theirs.euid == theirs.suid == theirs.ruid and
                mine.rgid == theirs.egid == theirs.sgid == theirs.rgid)
        if not same and not capable(task):
            raise SyscallError(EPERM)
    old = do_prlimit(task, target.tg, u32(resource), new)
    if old_rlim:
        task.mm.write(old_rlim, struct.pack("<QQ", *old))
    return 0


@syscall("getrlimit")
def sys_getrlimit(task: "Task", resource: int, rlim: int, *_: int) -> int:
    old = do_prlimit(task, task.tg, u32(resource), None)
    task.mm.write(rlim, struct.pack("<QQ", *old))
    return 0


@syscall("setrlimit", partial="RLIMIT_CPU is stored but not enforced")
def sys_setrlimit(task: "Task", resource: int, rlim: int, *_: int) -> int:
    new = _read_rlimit(task, rlim)
    do_prlimit(task, task.tg, u32(resource), new)
    return 0


# --------------------------------------------------------------------------- scheduling

def _same_owner(task: "Task", target: "Task") -> bool:
    mine, theirs = task.tg.creds, target.tg.creds
    return mine.euid in (theirs.euid, theirs.ruid)


@syscall("sched_getaffinity")
def sys_sched_getaffinity(task: "Task", pid: int, length: int, mask: int, *_: int) -> int:
    length = u32(length)
    if (length * 8) & 0xFFFFFFFF < nr_cpu_ids() or length & 7:
        raise SyscallError(EINVAL)
    target = lookup_task(task, s32(pid))
    size = min(length, cpumask_size())
    bits = sched_of(target).cpus & allowed_cpus(task)
    task.mm.write(mask, bits.to_bytes(size, "little"))
    return size


@syscall("sched_setaffinity", partial="the mask is recorded, host threads are not pinned")
def sys_sched_setaffinity(task: "Task", pid: int, length: int, mask: int, *_: int) -> int:
    length = min(u32(length), cpumask_size())
    bits = int.from_bytes(task.mm.read(mask, length), "little")
    target = lookup_task(task, s32(pid))
    if not _same_owner(task, target) and not capable(task):
        raise SyscallError(EPERM)
    bits &= allowed_cpus(task)
    if not bits:
        raise SyscallError(EINVAL)
    sched_of(target).cpus = bits
    return 0


@syscall("sched_yield")
def sys_sched_yield(task: "Task", *_: int) -> int:
    return 0


def host_stat_fields(path: str) -> list[bytes]:
    """The fields of a /proc/<id>/stat file after the command name (field 3 onwards)."""
    with open(path, "rb") as f:
        data = f.read()
    return data[data.rindex(b")") + 2:].split()


@syscall("getcpu")
def sys_getcpu(task: "Task", cpup: int, nodep: int, *_: int) -> int:
    try:  # the CPU the application's host thread last ran on (field 39)
        cpu = int(host_stat_fields(f"/proc/{task.thread.tid}/stat")[36])
    except (OSError, ValueError, IndexError):
        cpu = 0
    failed = False
    for ptr, value in ((cpup, cpu), (nodep, _cpu_nodes().get(cpu, 0))):
        if ptr:
            try:
                task.mm.write(ptr, struct.pack("<I", value))
            except SyscallError:
                failed = True
    if failed:
        raise SyscallError(EFAULT)
    return 0


def _prio_targets(task: "Task", which: int, who: int) -> list["Task"]:
    """The threads a {get,set}priority(which, who) names; EINVAL for an unknown `which`."""
    if which == PRIO_PROCESS:
        found = task if who == 0 else find_task(task.kernel, who)
        return [found] if found is not None else []
    if which == PRIO_PGRP:
        pgrp = task.tg.pgid if who == 0 else who
        return [t for t in live_tasks(task.kernel) if t.tg.pgid == pgrp]
    if which == PRIO_USER:
        uid = task.tg.creds.ruid if who == 0 else who & 0xFFFFFFFF
        return [t for t in live_tasks(task.kernel) if t.tg.creds.ruid == uid]
    raise SyscallError(EINVAL)


@syscall("getpriority")
def sys_getpriority(task: "Task", which: int, who: int, *_: int) -> int:
    targets = _prio_targets(task, s32(which), s32(who))
    if not targets:
        raise SyscallError(ESRCH)
    return max(20 - sched_of(t).nice for t in targets)  # the kernel's 1..40 encoding


@syscall("setpriority", partial="nice values are recorded, not applied to host threads")
def sys_setpriority(task: "Task", which: int, who: int, niceval: int, *_: int) -> int:
    targets = _prio_targets(task, s32(which), s32(who))
    nice = max(MIN_NICE, min(MAX_NICE, s32(niceval)))
    me = task.tg.creds
    error = ESRCH
    for t in targets:
        theirs = t.tg.creds
        if me.euid not in (theirs.ruid, theirs.euid) and not capable(task):
            error = EPERM
            continue
        state = sched_of(t)
        if nice < state.nice and 20 - nice > t.tg.rlimits[RLIMIT_NICE][0] and not capable(task):
            error = EACCES
            continue
        if error == ESRCH:
            error = 0
        state.nice = nice
    if error:
        raise SyscallError(error)
    return 0


@syscall("personality", partial="only PER_LINUX, optionally with ADDR_NO_RANDOMIZE")
def sys_personality(task: "Task", persona: int, *_: int) -> int:
    persona = u32(persona)
    state = sched_of(task)
    old = state.personality
    if persona == 0xFFFFFFFF:
        return old
    if persona not in PERSONALITIES_OK:
        task.kernel.warn_once(f"personality:{persona:#x}",
                              f"personality({persona:#x}): persona not supported -> EINVAL")
        raise SyscallError(EINVAL)
    state.personality = persona
    return old
