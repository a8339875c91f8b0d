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
from typing import TYPE_CHECKING, Callable

from snakevisor.kernel.errors import EACCES, EFAULT, EINVAL, EPERM, ESRCH, Block, SyscallError
from snakevisor.kernel.task import RLIM_INFINITY, RLIMIT_NAMES
from snakevisor.syscalls import sys_cred, syscall
from snakevisor.syscalls.args import s32, s64, u32
from snakevisor.syscalls.sys_cred import CAP_SYS_ADMIN, CAP_SYS_NICE, CAP_SYS_RESOURCE, has_cap

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

RLIMIT_CPU, RLIMIT_NOFILE, RLIMIT_NICE, RLIMIT_RTPRIO = 0, 7, 13, 14
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


# --------------------------------------------------------------------------- per-thread state

SCHED_NORMAL, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, SCHED_DEADLINE, SCHED_EXT = (
    0, 1, 2, 3, 5, 6, 7)
SCHED_RESET_ON_FORK = 0x40000000
RT_POLICIES = frozenset({SCHED_FIFO, SCHED_RR})
MAX_RT_PRIO = 100
DEFAULT_TIMER_SLACK = 50000  # ns, Linux's default when the host does not say


class ThreadState:
    """What Linux keeps per thread beyond registers, signals and ids: affinity, nice value,
    scheduling policy, personality, timer slack and no_new_privs.  New threads and forked
    children inherit it (inherit_sched).  (The parent death signal is task.pdeathsig.)"""

    __slots__ = ("cpus", "nice", "personality", "policy", "rt_priority", "reset_on_fork",
                 "timer_slack", "default_slack", "no_new_privs")

    def __init__(self, cpus: int, nice: int, personality: int, slack: int) -> None:
        self.cpus, self.nice, self.personality = cpus, nice, personality
        self.policy, self.rt_priority, self.reset_on_fork = SCHED_NORMAL, 0, False
        self.timer_slack = self.default_slack = slack
        self.no_new_privs = False

    def copy(self) -> "ThreadState":
        other = ThreadState(self.cpus, self.nice, self.personality, self.default_slack)
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        return other


_threads: "weakref.WeakKeyDictionary[Task, ThreadState]" = weakref.WeakKeyDictionary()


@functools.cache
def _initial_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, 0)


@functools.cache
def _initial_slack() -> int:
    """The timer slack the sandbox was started with (a container inherits its runtime's)."""
    try:
        with open("/proc/self/timerslack_ns") as f:
            return int(f.read())
    except (OSError, ValueError):
        return DEFAULT_TIMER_SLACK


def thread_state(task: "Task") -> ThreadState:
    state = _threads.get(task)
    if state is None:
        state = _threads[task] = ThreadState(allowed_cpus(task), _initial_nice(), PER_LINUX,
                                             _initial_slack())
    return state


def inherit_sched(parent: "Task", child: "Task") -> None:
    """clone/fork: the new thread copies its creator's state (copy_process, sched_fork):
    the current timer slack becomes the default one, and SCHED_RESET_ON_FORK gives back a
    normal policy and a nice value of at least 0."""
    state = thread_state(parent).copy()
    state.default_slack = state.timer_slack
    if state.reset_on_fork:
        if state.policy in RT_POLICIES:
            state.policy, state.rt_priority, state.nice = SCHED_NORMAL, 0, 0
        state.nice = max(state.nice, 0)
        state.reset_on_fork = False
    _threads[child] = state


# --------------------------------------------------------------------------- names

@syscall("uname")
def sys_uname(task: "Task", buf: int, *_: int) -> int:
    release, version = _uname_host()
    kernel = task.kernel
    fields = (b"Linux", kernel.hostname, release, version, b"x86_64", kernel.domainname)
    task.mm.write(buf, b"".join(f[:UTS_NAME_MAX].ljust(UTS_FIELD, b"\0") for f in fields))
    return 0


def _set_uts_name(task: "Task", addr: int, length: int) -> bytes:
    if not has_cap(task, CAP_SYS_ADMIN):
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
        if hard > lim[1] and not has_cap(task, CAP_SYS_RESOURCE):
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
        if not same and not has_cap(task, CAP_SYS_RESOURCE):
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
    bits = thread_state(target).cpus & allowed_cpus(task)
    task.mm.write(mask, bits.to_bytes(size, "little"))
    return size


@syscall("sched_setaffinity", partial="the mask is recorded, host threads are not pinned")
def sys_sched_setaffinity(task: "Task", pid: int, length: int, mask: int, *_: int) -> int:
    length = min(u32(length), cpumask_size())
    bits = int.from_bytes(task.mm.read(mask, length), "little")
    target = lookup_task(task, s32(pid))
    if not _same_owner(task, target) and not has_cap(task, CAP_SYS_NICE):
        raise SyscallError(EPERM)
    bits &= allowed_cpus(task)
    if not bits:
        raise SyscallError(EINVAL)
    thread_state(target).cpus = bits
    return 0


@syscall("sched_yield")
def sys_sched_yield(task: "Task", *_: int) -> int:
    return 0


def _nice_allowed(task: "Task", target: "Task", nice: int) -> bool:
    """is_nice_reduction: lowering nice to `nice` stays within RLIMIT_NICE, or privilege."""
    return 20 - nice <= target.tg.rlimits[RLIMIT_NICE][0] or has_cap(task, CAP_SYS_NICE)


def _sched_target(task: "Task", pid: int) -> "Task":
    if pid < 0:
        raise SyscallError(EINVAL)
    return lookup_task(task, pid)


def _set_scheduler(task: "Task", pid: int, policy: int, param: int) -> int:
    """Linux's __sched_setscheduler for sched_setscheduler and sched_setparam (policy -1).
    The policy is recorded for the sandbox; the host thread keeps running SCHED_OTHER."""
    if not param or pid < 0:
        raise SyscallError(EINVAL)
    priority = struct.unpack("<I", task.mm.read(param, 4))[0]  # an int, compared unsigned
    target = lookup_task(task, pid)
    state = thread_state(target)
    if policy == -1:
        policy, reset = state.policy, state.reset_on_fork
    else:
        reset = bool(policy & SCHED_RESET_ON_FORK)
        policy &= ~SCHED_RESET_ON_FORK
        if policy not in (SCHED_NORMAL, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE):
            raise SyscallError(EINVAL)  # SCHED_DEADLINE needs sched_setattr's parameters
    rt = policy in RT_POLICIES
    if priority > MAX_RT_PRIO - 1 or rt != (priority != 0):
        raise SyscallError(EINVAL)
    rtprio_limit = target.tg.rlimits[RLIMIT_RTPRIO][0]
    needs_privilege = (
        (rt and policy != state.policy and not rtprio_limit) or
        (rt and priority > state.rt_priority and priority > rtprio_limit) or
        (state.policy == SCHED_IDLE and policy != SCHED_IDLE and
         not _nice_allowed(task, target, state.nice)) or
        not _same_owner(task, target) or
        (state.reset_on_fork and not reset))
    if needs_privilege and not has_cap(task, CAP_SYS_NICE):
        raise SyscallError(EPERM)
    state.policy, state.rt_priority, state.reset_on_fork = policy, priority, reset
    if rt:
        state.timer_slack = 0  # real-time threads get no timer slack
    elif state.timer_slack == 0:
        state.timer_slack = state.default_slack
    return 0


@syscall("sched_setscheduler", partial="the policy is recorded; host threads stay SCHED_OTHER")
def sys_sched_setscheduler(task: "Task", pid: int, policy: int, param: int, *_: int) -> int:
    policy = s32(policy)
    if policy < 0:
        raise SyscallError(EINVAL)
    return _set_scheduler(task, s32(pid), policy, param)


@syscall("sched_setparam", partial="the priority is recorded; host threads stay SCHED_OTHER")
def sys_sched_setparam(task: "Task", pid: int, param: int, *_: int) -> int:
    return _set_scheduler(task, s32(pid), -1, param)


@syscall("sched_getscheduler")
def sys_sched_getscheduler(task: "Task", pid: int, *_: int) -> int:
    state = thread_state(_sched_target(task, s32(pid)))
    return state.policy | (SCHED_RESET_ON_FORK if state.reset_on_fork else 0)


@syscall("sched_getparam")
def sys_sched_getparam(task: "Task", pid: int, param: int, *_: int) -> int:
    pid = s32(pid)
    if not param or pid < 0:
        raise SyscallError(EINVAL)
    state = thread_state(lookup_task(task, pid))
    priority = state.rt_priority if state.policy in RT_POLICIES else 0
    task.mm.write(param, struct.pack("<i", priority))
    return 0


_PRIORITY_RANGES = {SCHED_FIFO: (1, MAX_RT_PRIO - 1), SCHED_RR: (1, MAX_RT_PRIO - 1),
                    SCHED_NORMAL: (0, 0), SCHED_BATCH: (0, 0), SCHED_IDLE: (0, 0),
                    SCHED_DEADLINE: (0, 0), SCHED_EXT: (0, 0)}


def _priority_range(policy: int) -> tuple[int, int]:
    found = _PRIORITY_RANGES.get(s32(policy))
    if found is None:
        raise SyscallError(EINVAL)
    return found


@syscall("sched_get_priority_max")
def sys_sched_get_priority_max(task: "Task", policy: int, *_: int) -> int:
    return _priority_range(policy)[1]


@syscall("sched_get_priority_min")
def sys_sched_get_priority_min(task: "Task", policy: int, *_: int) -> int:
    return _priority_range(policy)[0]


@functools.cache
def _rr_timeslice_ns() -> int:
    """kernel.sched_rr_timeslice_ms of the host kernel (the sandbox shares its scheduler)."""
    try:
        with open("/proc/sys/kernel/sched_rr_timeslice_ms") as f:
            return int(f.read()) * 1_000_000
    except (OSError, ValueError):
        return 100_000_000


@syscall("sched_rr_get_interval")
def sys_sched_rr_get_interval(task: "Task", pid: int, interval: int, *_: int) -> int:
    target = _sched_target(task, s32(pid))
    policy = thread_state(target).policy
    if policy == SCHED_RR:
        ns = _rr_timeslice_ns()
    elif policy == SCHED_FIFO:
        ns = 0
    else:  # the fair class: what the host scheduler says about the thread running it
        try:
            ns = round(os.sched_rr_get_interval(target.thread.tid) * 1e9)
        except OSError:
            ns = 0
    task.mm.write(interval, struct.pack("<qq", *divmod(ns, 1_000_000_000)))
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
    return max(20 - thread_state(t).nice for t in targets)  # the kernel's 1..40 encoding


@syscall("setpriority", partial="nice values are recorded, not applied to host threads")
def sys_setpriority(task: "Task", which: int, who: int, niceval: int, *_: int) -> int:
    targets = _prio_targets(task, s32(which), s32(who))
    nice = max(MIN_NICE, min(MAX_NICE, s32(niceval)))
    me = task.tg.creds
    error = ESRCH
    for t in targets:
        theirs = t.tg.creds
        if me.euid not in (theirs.ruid, theirs.euid) and not has_cap(task, CAP_SYS_NICE):
            error = EPERM
            continue
        state = thread_state(t)
        if nice < state.nice and not _nice_allowed(task, t, nice):
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
    state = thread_state(task)
    old = state.personality
    if persona == 0xFFFFFFFF:
        return old
    if persona not in PERSONALITIES_OK:
        task.kernel.warn_once(f"personality:{persona:#x}",
                              f"personality({persona:#x}): persona not supported -> EINVAL")
        raise SyscallError(EINVAL)
    state.personality = persona
    return old


# --------------------------------------------------------------------------- prctl

PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE = 1, 2, 3, 4
PR_GET_KEEPCAPS, PR_SET_KEEPCAPS = 7, 8
PR_SET_NAME, PR_GET_NAME = 15, 16
PR_GET_SECCOMP, PR_SET_SECCOMP = 21, 22
PR_CAPBSET_READ, PR_CAPBSET_DROP = 23, 24
PR_GET_SECUREBITS, PR_SET_SECUREBITS = 27, 28
PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 29, 30
PR_SET_MM = 35
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_GET_TID_ADDRESS = 38, 39, 40
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE = 41, 42
PR_CAP_AMBIENT = 47
PR_SET_VMA = 0x53564D41
TASK_COMM_LEN = 16
NSIG = 64
ULONG_MAX = (1 << 64) - 1


def _seccomp_mode(task: "Task") -> int:
    from snakevisor.syscalls.oci_seccomp import mode_of
    return mode_of(task.tg)


def _put_int(task: "Task", addr: int, value: int) -> int:
    task.mm.write(addr, struct.pack("<i", value))
    return 0


def _no_args(*args: int) -> None:
    if any(args):
        raise SyscallError(EINVAL)


def _pr_set_pdeathsig(task: "Task", sig: int, *_: int) -> int:
    if sig > NSIG:
        raise SyscallError(EINVAL)
    task.pdeathsig = sig
    return 0


def _pr_get_pdeathsig(task: "Task", addr: int, *_: int) -> int:
    return _put_int(task, addr, task.pdeathsig)


def _pr_set_dumpable(task: "Task", value: int, *_: int) -> int:
    if value not in (sys_cred.SUID_DUMP_DISABLE, sys_cred.SUID_DUMP_USER):
        raise SyscallError(EINVAL)
    task.tg.dumpable = value  # type: ignore[attr-defined]
    return 0


def _pr_set_name(task: "Task", addr: int, *_: int) -> int:
    task.comm = task.mm.read_cstring(addr, TASK_COMM_LEN - 1)
    return 0


def _pr_get_name(task: "Task", addr: int, *_: int) -> int:
    task.mm.write(addr, task.comm[:TASK_COMM_LEN - 1].ljust(TASK_COMM_LEN, b"\0"))
    return 0


def _pr_set_timerslack(task: "Task", slack: int, *_: int) -> int:
    state = thread_state(task)
    if state.policy not in RT_POLICIES:  # real-time threads keep no slack
        state.timer_slack = slack or state.default_slack
    return 0


def _pr_set_subreaper(task: "Task", value: int, *_: int) -> int:
    task.tg.subreaper = bool(value)
    return 0


def _pr_get_subreaper(task: "Task", addr: int, *_: int) -> int:
    return _put_int(task, addr, int(task.tg.subreaper))


def _pr_get_tid_address(task: "Task", addr: int, *_: int) -> int:
    task.mm.write_u64(addr, task.clear_child_tid)
    return 0


def _pr_set_no_new_privs(task: "Task", value: int, a3: int, a4: int, a5: int) -> int:
    if value != 1:
        raise SyscallError(EINVAL)
    _no_args(a3, a4, a5)
    thread_state(task).no_new_privs = True  # one-way, inherited, kept across execve
    return 0


def _pr_get_no_new_privs(task: "Task", a2: int, a3: int, a4: int, a5: int) -> int:
    _no_args(a2, a3, a4, a5)
    return int(thread_state(task).no_new_privs)


def _pr_set_thp_disable(task: "Task", value: int, a3: int, a4: int, a5: int) -> int:
    _no_args(a3, a4, a5)
    task.tg.thp_disable = bool(value)  # type: ignore[attr-defined]
    return 0


def _pr_get_thp_disable(task: "Task", a2: int, a3: int, a4: int, a5: int) -> int:
    _no_args(a2, a3, a4, a5)
    return int(getattr(task.tg, "thp_disable", False))


def _pr_refused(errno: int, what: str):
    """An option the sandbox does not offer: the errno Linux gives without the feature."""
    def refuse(task: "Task", a2: int, a3: int, a4: int, a5: int) -> int:
        task.kernel.warn_once(f"prctl:{what}", f"prctl({what}, {a2:#x}, {a3:#x}, {a4:#x}, "
                              f"{a5:#x}): {what} is not supported -> {os.strerror(errno)}")
        raise SyscallError(errno)
    return refuse


#: option -> handler(task, arg2, arg3, arg4, arg5)
PRCTL: dict[int, Callable[..., int]] = {
    PR_SET_PDEATHSIG: _pr_set_pdeathsig,
    PR_GET_PDEATHSIG: _pr_get_pdeathsig,
    PR_GET_DUMPABLE: lambda task, *_: sys_cred.dumpable(task.tg),
    PR_SET_DUMPABLE: _pr_set_dumpable,
    PR_GET_KEEPCAPS: lambda task, *_: sys_cred.prctl_get_keepcaps(task),
    PR_SET_KEEPCAPS: lambda task, value, *_: sys_cred.prctl_set_keepcaps(task, value),
    PR_SET_NAME: _pr_set_name,
    PR_GET_NAME: _pr_get_name,
    PR_GET_SECCOMP: lambda task, *_: _seccomp_mode(task),  # (2 under --oci-seccomp)
    PR_SET_SECCOMP: _pr_refused(EINVAL, "PR_SET_SECCOMP"),
    PR_CAPBSET_READ: lambda task, cap, *_: sys_cred.prctl_capbset_read(task, cap),
    PR_CAPBSET_DROP: lambda task, cap, *_: sys_cred.prctl_capbset_drop(task, cap),
    PR_GET_SECUREBITS: lambda task, *_: sys_cred.caps_of(task.tg).securebits,
    PR_SET_SECUREBITS: lambda task, bits, *_: sys_cred.prctl_set_securebits(task, bits),
    PR_SET_TIMERSLACK: _pr_set_timerslack,
    PR_GET_TIMERSLACK: lambda task, *_: s64(min(thread_state(task).timer_slack, ULONG_MAX)),
    PR_SET_MM: _pr_refused(EPERM, "PR_SET_MM"),
    PR_SET_CHILD_SUBREAPER: _pr_set_subreaper,
    PR_GET_CHILD_SUBREAPER: _pr_get_subreaper,
    PR_SET_NO_NEW_PRIVS: _pr_set_no_new_privs,
    PR_GET_NO_NEW_PRIVS: _pr_get_no_new_privs,
    PR_GET_TID_ADDRESS: _pr_get_tid_address,
    PR_SET_THP_DISABLE: _pr_set_thp_disable,
    PR_GET_THP_DISABLE: _pr_get_thp_disable,
    PR_CAP_AMBIENT: lambda task, op, cap, a4, a5: sys_cred.prctl_cap_ambient(task, op, cap, a4, a5),
    PR_SET_VMA: _pr_refused(EINVAL, "PR_SET_VMA"),
}


@syscall("prctl", partial="process names, death signal, dumpable, no_new_privs, subreaper, "
                         "capabilities and securebits, timer slack, THP flag; PR_SET_SECCOMP, "
                         "PR_SET_MM, PR_SET_VMA and other options are refused")
def sys_prctl(task: "Task", option: int, a2: int, a3: int, a4: int, a5: int, *_: int) -> int:
    option = s32(option)
    handler = PRCTL.get(option)
    if handler is None:
        task.kernel.warn_once(f"prctl:{option}", f"prctl({option:#x}, {a2:#x}, {a3:#x}, {a4:#x}, "
                              f"{a5:#x}): unknown option -> EINVAL")
        raise SyscallError(EINVAL)
    return handler(task, a2, a3, a4, a5)
