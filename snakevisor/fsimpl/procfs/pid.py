"""Per-process and per-thread procfs files: /proc/PID/... and /proc/PID/task/TID/...

Every function takes the process (ThreadGroup) and, for the thread-level variants under
task/TID/, the thread (Task); `task=None` means the whole-process view, which Linux
builds from the leader thread plus process-wide sums (stat's `whole`).  Identities,
signals, limits, scheduling state and names are the sentry's own bookkeeping; CPU time,
page faults and context switches are the host's figures for the stub threads that run
the application's code (MISSION: the host kernel is our CPU and MMU).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from snakevisor.vfs.tty import proc_stat_tty
from snakevisor.fsimpl.procfs import host, maps
from snakevisor.fsimpl.procfs.text import b, bitmap_hex, bitmap_list, escape_name, lines, s
from snakevisor.kernel.errors import SyscallError
from snakevisor.kernel.task import RLIM_INFINITY
from snakevisor.syscalls import sys_cred, sys_info, sys_time

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task, ThreadGroup

SIG_DFL, SIG_IGN = 0, 1
NSIG = 64
PF_EXITING, PF_FORKNOEXEC, PF_NOFREEZE, PF_RANDOMIZE = 0x4, 0x40, 0x8000, 0x400000
PF_POSTCOREDUMP = 0x8
O_CLOEXEC = 0o2000000
#: the sandbox is its own initial user namespace: the identity map over all 32-bit ids
ID_MAP = b"         0          0 4294967295\n"
AUDIT_UNSET = 4294967295  # loginuid and sessionid of a process no login ever touched
OOM_SCORE_ADJ_MIN, OOM_SCORE_ADJ_MAX = -1000, 1000


# --------------------------------------------------------------------------- who and what state

def live_tasks(tg: "ThreadGroup") -> list["Task"]:
    return [t for t in tg.tasks if t.alive]


def representative(tg: "ThreadGroup") -> "Task | None":
    """The thread whose state the whole-process files show: the leader, or (after the
    leader thread exited) the first live thread; a zombie's last thread."""
    live = live_tasks(tg)
    if live:
        return next((t for t in live if t.tid == tg.pid), live[0])
    return tg.tasks[0] if tg.tasks else None


STATES = {"R": "R (running)", "S": "S (sleeping)", "T": "T (stopped)", "Z": "Z (zombie)",
          "X": "X (dead)"}


def state(tg: "ThreadGroup", task: "Task | None") -> str:
    """The one-letter state: Z for a zombie, T while job control stops the process, S for
    a thread parked in a system call, R otherwise (running application code, or stopped
    at a system call the sentry is serving)."""
    if not tg.alive:
        return "Z"
    if task is not None and not task.alive:
        return "X"
    if tg.stopped or (task is not None and task.frozen is not None):
        return "T"
    if task is not None and task.pending is not None:
        return "S"
    return "R"


def pids(kernel: "Kernel") -> list[int]:
    """The numeric entries of /proc: every process not yet reaped, zombies included."""
    return sorted(pid for pid, tg in kernel.thread_groups.items() if not tg.reaped)


def tids(tg: "ThreadGroup") -> list[int]:
    """The entries of /proc/PID/task (a zombie keeps its last thread)."""
    live = live_tasks(tg)
    return sorted(t.tid for t in live) if live else [t.tid for t in tg.tasks[:1]]


def _ppid(tg: "ThreadGroup") -> int:
    return tg.parent.pid if tg.parent is not None else 0


# --------------------------------------------------------------------------- CPU figures

class CpuFigures(NamedTuple):
    """stat's fields 10-17: faults and clock ticks, own and of reaped children."""

    minflt: int
    cminflt: int
    majflt: int
    cmajflt: int
    utime: int
    stime: int
    cutime: int
    cstime: int


def _ticks(ns: int) -> int:
    return ns // sys_time.TICK_NS


def cpu_figures(tg: "ThreadGroup", task: "Task | None" = None) -> CpuFigures:
    """The host's figures for the stub (whole process) or one stub thread, split into
    user and system time as getrusage splits them (so the two always agree); a zombie
    shows what was captured at its exit."""
    children = sys_time.children_usage(tg)
    if not tg.alive:
        final = tg.final_usage if isinstance(tg.final_usage, sys_time.Usage) else sys_time.Usage()
        own = sys_time.Usage(*(max(0, a - b) for a, b in zip(final, children)))
        utime, stime, minflt, majflt = own.utime, own.stime, own.minflt, own.majflt
    else:
        try:
            if task is None:
                t = sys_time.process_times(tg)
                utime, stime = sys_time.split_cputime(tg, sys_time.host_pid(tg), t)
            else:
                t = sys_time.thread_times(task)
                utime, stime = sys_time.split_cputime(task, task.thread.tid, t)
            minflt, majflt = t.minflt, t.majflt
        except (SyscallError, AttributeError):  # no host process (yet, or any more)
            utime = stime = minflt = majflt = 0
    return CpuFigures(minflt, children.minflt, majflt, children.majflt, _ticks(utime),
                      _ticks(stime), _ticks(children.utime), _ticks(children.stime))


def _host_thread_stat(task: "Task | None") -> list[bytes]:
    thread = getattr(task, "thread", None)
    tid = getattr(thread, "tid", 0)
    return host.stat_fields(tid) if tid and task is not None and task.alive else []


def _host_thread_status(task: "Task | None") -> dict[str, str]:
    thread = getattr(task, "thread", None)
    tid = getattr(thread, "tid", 0)
    return host.status(tid) if tid and task is not None and task.alive else {}


# --------------------------------------------------------------------------- signals

def signal_sets(tg: "ThreadGroup") -> tuple[int, int]:
    """(ignored, caught) masks from the process's actions (collect_sigign_sigcatch)."""
    ign = catch = 0
    for sig, action in tg.sigactions.items():
        if not 1 <= sig <= NSIG:
            continue
        if action[0] == SIG_IGN:
            ign |= 1 << (sig - 1)
        elif action[0] != SIG_DFL:
            catch |= 1 << (sig - 1)
    return ign, catch


def queued_signals(kernel: "Kernel", uid: int) -> int:
    """Signals queued by every process of a real uid (SigQ counts per user)."""
    count = 0
    for tg in kernel.thread_groups.values():
        if tg.creds.ruid != uid or not tg.alive:
            continue
        count += len(tg.shared_pending.queue)
        count += sum(len(t.sigpending.queue) for t in live_tasks(tg))
    return count


# --------------------------------------------------------------------------- stat

def _priority(task: "Task | None") -> tuple[int, int, int, int]:
    """(priority, nice, rt_priority, policy) as stat prints them."""
    if task is None:
        return 20, 0, 0, 0
    st = sys_info.thread_state(task)
    if st.policy in sys_info.RT_POLICIES:
        return -1 - st.rt_priority, 0, st.rt_priority, st.policy
    return 20 + st.nice, st.nice, st.rt_priority, st.policy


def _pf_flags(tg: "ThreadGroup", task: "Task | None") -> int:
    flags = PF_RANDOMIZE
    if task is not None and task.tid != tg.pid or tg.exe_count == 0:
        flags |= PF_FORKNOEXEC  # a clone that has not exec'd (every new thread)
    if not tg.alive:
        flags |= PF_EXITING | PF_POSTCOREDUMP | PF_NOFREEZE
    return flags


def start_ticks(tg: "ThreadGroup") -> int:
    """Clock ticks from the sandbox's boot to the process's creation."""
    return max(0, round((tg.start_time - tg.kernel.boot_monotonic) * sys_time.USER_HZ))


def stat(tg: "ThreadGroup", task: "Task | None" = None, *, permitted: bool = True) -> bytes:
    """/proc/PID/stat (task=None) or /proc/PID/task/TID/stat: 52 fields (proc(5)).
    `permitted` is the reader's ptrace read access: without it the address fields show
    what Linux shows a stranger."""
    whole = task is None
    t = representative(tg) if whole else task
    letter = state(tg, t)
    alive = tg.alive
    cpu = cpu_figures(tg, None if whole else task)
    priority, nice, rt_priority, policy = _priority(t)
    host_stat = _host_thread_stat(t)
    lay = maps.layout(tg) if alive else None
    mm_field = (lambda value: (value if permitted else 1) if lay is not None else 0)
    addr = (lambda value: value if lay is not None and permitted else 0)
    ign, catch = signal_sets(tg)
    pending = t.sigpending.mask if t is not None else 0
    blocked = t.sigmask if t is not None else 0
    is_leader = t is None or t.tid == tg.pid
    # 1: "/proc/PID/wchan would name where it waits" (any thread not running)
    wchan = 1 if permitted and letter in "ST" and (not whole or len(live_tasks(tg)) < 2) else 0
    comm = s(t.comm if t is not None else b"")
    fields = [
        t.tid if t is not None and not whole else tg.pid, f"({comm})", letter, _ppid(tg),
        tg.pgid, tg.sid, *proc_stat_tty(tg), _pf_flags(tg, None if whole else t),
        cpu.minflt, cpu.cminflt, cpu.majflt, cpu.cmajflt, cpu.utime, cpu.stime, cpu.cutime,
        cpu.cstime, priority, nice, max(1, len(live_tasks(tg))) if alive else 1, 0,
        start_ticks(tg),
        maps.vm_counts(tg.mm).total if alive else 0, maps.rss_pages(tg) if alive else 0,
        tg.rlimits[5][0],
        mm_field(lay.start_code if lay else 0), mm_field(lay.end_code if lay else 0),
        addr(lay.start_stack if lay else 0), 0, 0,
        pending & 0x7FFFFFFF, blocked & 0x7FFFFFFF, ign & 0x7FFFFFFF, catch & 0x7FFFFFFF,
        wchan, 0, 0, tg.exit_signal if is_leader else -1,
        host.stat_field(host_stat, 39), rt_priority, policy, 0, 0, 0,
    ]
    fields += [addr(v) for v in ((lay.start_data, lay.end_data, lay.start_brk, lay.arg_start,
                                  lay.arg_end, lay.env_start, lay.env_end) if lay else (0,) * 7)]
    fields.append((tg.exit_status or 0) if permitted and not alive else 0)
    return b(" ".join(str(f) for f in fields) + "\n")


# --------------------------------------------------------------------------- status

#: lines only some kernel configurations print: kept when this host's kernel prints them
STATUS_OPTIONAL = frozenset({
    "Ngid", "Kthread", "HugetlbPages", "CoreDumping", "THP_enabled", "untag_mask",
    "Seccomp_filters", "Speculation_Store_Bypass", "SpeculationIndirectBranch",
    "Mems_allowed", "Mems_allowed_list", "x86_Thread_features", "x86_Thread_features_locked"})
#: lines that describe the hardware thread itself: the stub thread's values
STATUS_FROM_HOST = ("untag_mask", "Speculation_Store_Bypass", "SpeculationIndirectBranch",
                    "Mems_allowed", "Mems_allowed_list", "x86_Thread_features",
                    "x86_Thread_features_locked")


def fd_table_size(tg: "ThreadGroup") -> int:
    """FDSize: the fd table's capacity (64, then multiples of 128 rounded to a power of
    two, as alloc_fdtable grows it), from the highest open fd; 0 once the table is gone."""
    fds = getattr(tg, "fds", None)
    files = getattr(fds, "files", None)
    if not tg.alive or files is None:
        return 0
    size = getattr(fds, "max_fds", None)
    if isinstance(size, int):
        return size
    top = max(files, default=0)
    if top < 64:
        return 64
    units = top // 128 + 1
    return 128 * (1 << (units - 1).bit_length())


def _kb(value: int) -> str:
    return f"{value:>8} kB"


def status(tg: "ThreadGroup", task: "Task | None" = None) -> bytes:
    """/proc/PID/status (task=None: the leader's view) or task/TID/status, with the lines
    of Linux 6.x in its order; a zombie has no Umask and no memory lines, as in Linux."""
    t = representative(tg) if task is None else task
    alive = tg.alive
    creds = tg.creds
    kernel = tg.kernel
    host_status = _host_thread_status(t)
    template = host.kernel_status()

    def from_host(key: str) -> str | None:
        return host_status.get(key, template.get(key))

    out: list[tuple[str, str]] = [("Name", escape_name(s(t.comm if t is not None else b"")))]
    if alive:
        out.append(("Umask", f"0{tg.umask:03o}"))
    tid = t.tid if t is not None else tg.pid
    out += [("State", STATES[state(tg, t)]), ("Tgid", str(tg.pid)), ("Ngid", "0"),
            ("Pid", str(tid)), ("PPid", str(_ppid(tg))), ("TracerPid", "0"),
            ("Uid", f"{creds.ruid}\t{creds.euid}\t{creds.suid}\t{creds.fsuid}"),
            ("Gid", f"{creds.rgid}\t{creds.egid}\t{creds.sgid}\t{creds.fsgid}"),
            ("FDSize", str(fd_table_size(tg))),
            ("Groups", " ".join(str(g) for g in creds.groups) + " "),
            ("NStgid", str(tg.pid)), ("NSpid", str(tid)), ("NSpgid", str(tg.pgid)),
            ("NSsid", str(tg.sid)), ("Kthread", "0")]
    if alive:
        out += [(k, _kb(v)) for k, v in maps.mem_figures(tg)._asdict().items()]
        thp = "0" if getattr(tg, "thp_disable", False) else template.get("THP_enabled", "1")
        out += [("CoreDumping", "0"), ("THP_enabled", thp)]
        out.append(("untag_mask", from_host("untag_mask") or ""))
    live = live_tasks(tg)
    ign, catch = signal_sets(tg)
    sig_limit = tg.rlimits[11][0]  # RLIMIT_SIGPENDING
    caps = sys_cred.caps_of(tg)
    from snakevisor.syscalls.oci_seccomp import mode_of
    seccomp_mode = mode_of(tg)
    st = sys_info.thread_state(t) if t is not None else None
    cpus = st.cpus if st is not None else sum(1 << c for c in kernel.platform.cpus)
    out += [("Threads", str(len(live) if alive else 1)),
            ("SigQ", f"{queued_signals(kernel, creds.ruid)}/{sig_limit}"),
            ("SigPnd", f"{t.sigpending.mask if t is not None else 0:016x}"),
            ("ShdPnd", f"{tg.shared_pending.mask:016x}"),
            ("SigBlk", f"{t.sigmask if t is not None else 0:016x}"),
            ("SigIgn", f"{ign:016x}"), ("SigCgt", f"{catch:016x}"),
            ("CapInh", f"{caps.inheritable:016x}"), ("CapPrm", f"{caps.permitted:016x}"),
            ("CapEff", f"{caps.effective:016x}"), ("CapBnd", f"{caps.bounding:016x}"),
            ("CapAmb", f"{caps.ambient:016x}"),
            ("NoNewPrivs", str(int(bool(st and st.no_new_privs)))),
            ("Seccomp", str(seccomp_mode)), ("Seccomp_filters", str(seccomp_mode // 2))]
    out += [(k, from_host(k) or "") for k in ("Speculation_Store_Bypass", "SpeculationIndirectBranch")]
    out += [("Cpus_allowed", bitmap_hex(cpus, sys_info.nr_cpu_ids())),
            ("Cpus_allowed_list", bitmap_list(cpus))]
    out += [(k, from_host(k) or "") for k in ("Mems_allowed", "Mems_allowed_list")]
    out += [("voluntary_ctxt_switches", host_status.get("voluntary_ctxt_switches", "0")),
            ("nonvoluntary_ctxt_switches", host_status.get("nonvoluntary_ctxt_switches", "0"))]
    out += [(k, from_host(k) or "") for k in ("x86_Thread_features", "x86_Thread_features_locked")]
    return lines([(k, v) for k, v in out if k not in STATUS_OPTIONAL or
                  (k in template if template else k not in STATUS_FROM_HOST)])


# --------------------------------------------------------------------------- argv, environment, names

def _recorded_area(tg: "ThreadGroup", start_name: str, end_name: str) -> tuple[int, int] | None:
    mm = tg.mm
    start, end = getattr(mm, start_name, None), getattr(mm, end_name, None)
    if isinstance(start, int) and isinstance(end, int) and start and end >= start:
        return start, end
    return None


def _read_area(tg: "ThreadGroup", start: int, end: int) -> bytes:
    try:
        return tg.mm.read(start, end - start)
    except SyscallError:
        return b""


def cmdline(tg: "ThreadGroup") -> bytes:
    """NUL-terminated argv.  When the loader records where argv lives (mm.arg_start/
    arg_end) it is read from memory, as Linux does, so setproctitle-style rewrites show
    (an overwritten final NUL means: the first string, up to a page); otherwise the argv
    execve was given.  Empty for a zombie."""
    if not tg.alive:
        return b""
    area = _recorded_area(tg, "arg_start", "arg_end")
    if area is None:
        return b"".join(a + b"\0" for a in tg.argv)
    data = _read_area(tg, *area)
    if data and data[-1] != 0:
        env = _recorded_area(tg, "env_start", "env_end")
        limit = min(area[0] + 4096, env[1] if env and env[0] == area[1] else area[1])
        title = _read_area(tg, area[0], max(limit, area[1]))
        nul = title.find(b"\0")
        return title[:nul + 1] if nul >= 0 else title
    return data


def environ(tg: "ThreadGroup") -> bytes:
    """The environment block (from memory when recorded, else execve's envp)."""
    if not tg.alive:
        return b""
    area = _recorded_area(tg, "env_start", "env_end")
    if area is None:
        return b"".join(e + b"\0" for e in tg.env)
    return _read_area(tg, *area)


def comm(tg: "ThreadGroup", task: "Task | None" = None) -> bytes:
    t = representative(tg) if task is None else task
    return (t.comm if t is not None else b"") + b"\n"


# --------------------------------------------------------------------------- limits

#: (name, unit) per resource, in RLIMIT_* order, as proc_pid_limits prints them
LIMIT_NAMES = (("Max cpu time", "seconds"), ("Max file size", "bytes"),
               ("Max data size", "bytes"), ("Max stack size", "bytes"),
               ("Max core file size", "bytes"), ("Max resident set", "bytes"),
               ("Max processes", "processes"), ("Max open files", "files"),
               ("Max locked memory", "bytes"), ("Max address space", "bytes"),
               ("Max file locks", "locks"), ("Max pending signals", "signals"),
               ("Max msgqueue size", "bytes"), ("Max nice priority", ""),
               ("Max realtime priority", ""), ("Max realtime timeout", "us"))


def limits(tg: "ThreadGroup") -> bytes:
    out = [f"{'Limit':<25} {'Soft Limit':<20} {'Hard Limit':<20} {'Units':<10}\n"]
    for (name, unit), (soft, hard) in zip(LIMIT_NAMES, tg.rlimits):
        row = f"{name:<25} "
        for value in (soft, hard):
            row += f"{'unlimited' if value == RLIM_INFINITY else value:<20} "
        out.append(row + (f"{unit:<10}\n" if unit else "\n"))
    return b("".join(out))


# --------------------------------------------------------------------------- small files

def _cdiv(a: int, b_: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b_)
    return q if (a >= 0) == (b_ > 0) else -q


def oom_score_adj(tg: "ThreadGroup") -> bytes:
    return b(f"{getattr(tg, 'oom_score_adj', 0)}\n")


def oom_adj(tg: "ThreadGroup") -> bytes:
    """The legacy scale: OOM_ADJUST_MAX (15) for the maximum, else adj * 17 / 1000."""
    adj = getattr(tg, "oom_score_adj", 0)
    return b(f"{15 if adj == OOM_SCORE_ADJ_MAX else _cdiv(adj * 17, 1000)}\n")


def oom_score(tg: "ThreadGroup") -> bytes:
    """oom_badness scaled to 0..2000 and then by 2/3 (proc_oom_score), from the stub's
    resident, swapped and page-table memory against the machine's RAM and swap."""
    adj = getattr(tg, "oom_score_adj", 0)
    if not tg.alive or adj == OOM_SCORE_ADJ_MIN:
        return b"0\n"
    mem = host.meminfo_kb()
    total = (mem.get("MemTotal", 0) + mem.get("SwapTotal", 0)) // 4 or 1
    fig = maps.mem_figures(tg)
    badness = (fig.VmRSS + fig.VmSwap + fig.VmPTE) // 4 + _cdiv(adj * total, 1000)
    return b(f"{max(0, _cdiv((1000 + _cdiv(badness * 1000, total)) * 2, 3))}\n")


def cgroup(tg: "ThreadGroup") -> bytes:
    """One cgroup v2 hierarchy, and the process at its root."""
    return b"0::/\n"


def uid_map(tg: "ThreadGroup") -> bytes:
    return ID_MAP


def gid_map(tg: "ThreadGroup") -> bytes:
    return ID_MAP


def setgroups(tg: "ThreadGroup") -> bytes:
    return b"allow\n"


def io(tg: "ThreadGroup", task: "Task | None" = None) -> bytes:
    """I/O accounting: not kept by the sentry yet, so all zeros (the format is Linux's)."""
    keys = ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes",
            "cancelled_write_bytes")
    return b("".join(f"{k}: 0\n" for k in keys))


def wchan(tg: "ThreadGroup", task: "Task | None" = None) -> bytes:
    """No kernel symbol to name: "0", as Linux prints when it will not say (no newline)."""
    return b"0"


def timerslack_ns(tg: "ThreadGroup") -> bytes:
    t = representative(tg)
    slack = sys_info.thread_state(t).timer_slack if t is not None else 0
    return b(f"{slack}\n")


def loginuid(tg: "ThreadGroup") -> bytes:
    return b(str(AUDIT_UNSET))


def sessionid(tg: "ThreadGroup") -> bytes:
    return b(str(AUDIT_UNSET))


def personality(tg: "ThreadGroup", task: "Task | None" = None) -> bytes:
    t = representative(tg) if task is None else task
    persona = sys_info.thread_state(t).personality if t is not None else 0
    return b(f"{persona:08x}\n")


def children(tg: "ThreadGroup", task: "Task") -> bytes:
    """task/TID/children: the live and zombie children, each followed by a space.  Linux
    lists a thread's own forks; the sentry records the process's, shown on the leader."""
    if task.tid != tg.pid:
        return b""
    return b("".join(f"{c.pid} " for c in tg.children if not c.reaped))


# --------------------------------------------------------------------------- fds and links

def fds(tg: "ThreadGroup") -> list[int]:
    """The entries of /proc/PID/fd and fdinfo (none once the process has exited)."""
    table = getattr(tg, "fds", None)
    if not tg.alive or table is None:
        return []
    return sorted(table.files)


def fdinfo(tg: "ThreadGroup", fd: int, mnt_id: int | None = None) -> bytes:
    """pos, flags (octal, O_CLOEXEC added for a close-on-exec fd), mnt_id and ino.  The
    mount id comes from the caller (the mount table), else `file.mnt_id`, else 0.
    KeyError if the fd is not open."""
    file = tg.fds.files[fd]
    try:
        pos = file.lseek(0, 1)  # SEEK_CUR; files without an offset show 0
    except (SyscallError, OSError):
        pos = 0
    try:
        ino = file.stat().st_ino
    except (SyscallError, OSError):
        ino = 0
    flags = file.flags | (O_CLOEXEC if fd in tg.fds.cloexec else 0)
    if mnt_id is None:
        mnt_id = getattr(file, "mnt_id", 0)
    extra = getattr(file, "fdinfo", None)  # the kind's own lines (inotify, eventfd, ...)
    return b(f"pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t{mnt_id}\nino:\t{ino}\n"
             + (extra() if extra is not None else ""))


def fd_link(tg: "ThreadGroup", fd: int) -> str:
    """readlink of /proc/PID/fd/N: the path the file was opened by ("pipe:[ino]"...)."""
    return tg.fds.files[fd].path


def exe_link(tg: "ThreadGroup") -> str:
    return tg.exe


def cwd_link(tg: "ThreadGroup") -> str:
    return tg.fs.link()


def root_link(tg: "ThreadGroup") -> str:
    return "/"
