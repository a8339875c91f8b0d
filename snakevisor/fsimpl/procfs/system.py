"""System-wide procfs files: /proc/{meminfo, vmstat, cpuinfo, stat, uptime, loadavg,
version, filesystems} and the self / thread-self links.

The sandbox shares the machine's memory and CPUs with the host, so memory and CPU
figures are the host's (CPUs restricted to those the sandbox was given); what is about
the sandbox itself -- its uptime, boot time, processes and load -- is the sentry's own.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from snakevisor.fsimpl.procfs import host
from snakevisor.fsimpl.procfs.loadavg import LoadAverage, runnable_tasks
from snakevisor.fsimpl.procfs.text import b, s

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task

#: file systems the sandbox can mount, in Linux's registration order (all without a
#: block device: "nodev")
SANDBOX_FILESYSTEMS = ("sysfs", "tmpfs", "proc", "devtmpfs", "devpts", "overlay", "mqueue", "9p")
SOFTIRQS = 10  # HI TIMER NET_TX NET_RX BLOCK IRQ_POLL TASKLET SCHED HRTIMER RCU


def _cpus(kernel: "Kernel") -> set[int]:
    return set(kernel.platform.cpus)


def meminfo(kernel: "Kernel") -> bytes:
    """The host's, every line: the sandbox's memory is the machine's."""
    return host.meminfo()


def vmstat(kernel: "Kernel") -> bytes:
    """The host's virtual memory counters (vmstat(8) needs them; the memory is shared)."""
    return host.read("vmstat") or b""


def cpuinfo(kernel: "Kernel") -> bytes:
    """The host's blocks for the CPUs the sandbox was given (numbers unchanged, so they
    agree with sched_getaffinity and Cpus_allowed_list)."""
    data = s(host.read("cpuinfo") or b"")
    cpus = _cpus(kernel)
    out = []
    for block in data.split("\n\n"):
        fields = host.key_values(b(block))
        try:
            number = int(fields.get("processor", ""))
        except ValueError:
            continue
        if number in cpus:
            out.append(block.strip("\n") + "\n\n")
    return b("".join(out))


def _host_cpu_lines(kernel: "Kernel") -> tuple[list[list[int]], dict[str, int]]:
    """Per-CPU tick counts of the allowed CPUs ([cpu, user, nice, ...]) and the host's
    scalar lines (ctxt...)."""
    cpus = _cpus(kernel)
    rows: list[list[int]] = []
    scalars: dict[str, int] = {}
    for line in s(host.read("stat") or b"").splitlines():
        words = line.split()
        if not words:
            continue
        if words[0].startswith("cpu") and words[0][3:].isdigit():
            if int(words[0][3:]) in cpus:
                rows.append([int(words[0][3:])] + [int(w) for w in words[1:11]])
        elif len(words) == 2 and words[1].isdigit():
            scalars[words[0]] = int(words[1])
    return rows, scalars


def last_pid(kernel: "Kernel") -> int:
    """The pid allocated last (loadavg's fifth field)."""
    value = getattr(kernel, "last_pid", None)
    if isinstance(value, int):
        return value
    return max(0, getattr(kernel, "_next_pid", 1) - 1)


def stat(kernel: "Kernel") -> bytes:
    """/proc/stat: the allowed CPUs' host tick counts (and their sum on the "cpu" line),
    no interrupt or softirq counts, the host's context switches, the sandbox's boot time
    and its process counts ("processes": pids handed out since boot)."""
    rows, scalars = _host_cpu_lines(kernel)
    width = 10
    total = [sum(r[i] for r in rows) for i in range(1, width + 1)]
    out = ["cpu  " + " ".join(map(str, total)) + "\n"]
    out += [f"cpu{r[0]} " + " ".join(map(str, r[1:width + 1])) + "\n" for r in rows]
    forks = getattr(kernel, "forks", None)
    out += ["intr 0\n", f"ctxt {scalars.get('ctxt', 0)}\n", f"btime {int(kernel.boot_time)}\n",
            f"processes {forks if isinstance(forks, int) else last_pid(kernel)}\n",
            f"procs_running {runnable_tasks(kernel)}\n", "procs_blocked 0\n",
            "softirq 0" + " 0" * SOFTIRQS + "\n"]
    return b("".join(out))


def _centis(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole}.{int((seconds - whole) * 100):02d}"


def uptime(kernel: "Kernel") -> bytes:
    """Seconds since the sandbox booted, and idle CPU-seconds: the uptime times the
    allowed CPUs times the fraction of time the host reports those CPUs idle."""
    up = max(0.0, kernel.now() - kernel.boot_monotonic)
    rows, _ = _host_cpu_lines(kernel)
    busy = sum(sum(r[1:4]) + sum(r[6:9]) for r in rows)  # user nice system irq softirq steal
    idle_ticks = sum(r[4] + r[5] for r in rows)  # idle iowait
    fraction = idle_ticks / (idle_ticks + busy) if idle_ticks + busy else 1.0
    idle = up * max(len(_cpus(kernel)), 1) * fraction
    return b(f"{_centis(up)} {_centis(idle)}\n")


def loadavg(kernel: "Kernel", averages: LoadAverage | None = None) -> bytes:
    """"1min 5min 15min running/threads last_pid"; the averages from `averages` (or
    kernel.loadavg), zeros when none is kept."""
    averages = averages if averages is not None else getattr(kernel, "loadavg", None)
    text = averages.text() if isinstance(averages, LoadAverage) else "0.00 0.00 0.00"
    threads = sum(1 for t in kernel.tasks.values() if t.alive)
    return b(f"{text} {runnable_tasks(kernel)}/{threads} {last_pid(kernel)}\n")


def version(kernel: "Kernel") -> bytes:
    """The host's: uname(2) reports the host's release and version, and this line names
    the kernel's build (compiler, build user@host), not the running machine's hostname."""
    return host.read("version") or b""


def filesystems(kernel: "Kernel | None" = None) -> bytes:
    return b("".join(f"nodev\t{name}\n" for name in SANDBOX_FILESYSTEMS))


def self_link(task: "Task") -> str:
    """readlink /proc/self: the reader's pid."""
    return str(task.tg.pid)


def thread_self_link(task: "Task") -> str:
    """readlink /proc/thread-self: the reader's pid/task/tid."""
    return f"{task.tg.pid}/task/{task.tid}"
