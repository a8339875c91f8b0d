"""The contents of the sandbox's /proc, in Linux's exact formats, as pure functions of
the sentry's objects (the file system that serves them is the VFS's job).

Modules: `pid` (per-process and per-thread files), `maps` (maps, smaps, statm and the
memory figures), `mounts` (MountRecord and the mount tables), `system` (meminfo,
cpuinfo, stat, uptime, loadavg, version, filesystems, self links), `sysctl` (/proc/sys),
`loadavg` (LoadAverage), `host` (every read of the host's procfs), `text` (shared
formatting rules).

The tables below map file names to content functions of one signature each, for the
VFS to serve without knowing each file:
- PROCESS_FILES[name](tg) -> bytes           /proc/PID/<name>
- THREAD_FILES[name](tg, task) -> bytes      /proc/PID/task/TID/<name>
- SYSTEM_FILES[name](kernel) -> bytes        /proc/<name>
- sysctl.sysctl(kernel, path) -> bytes       /proc/sys/<path>
Files that need more than the process are separate functions: mounts.mountinfo/mounts/
mountstats(records), pid.fdinfo(tg, fd, mnt_id), and the links pid.fd_link/exe_link/
cwd_link/root_link and system.self_link/thread_self_link.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from snakevisor.fsimpl.procfs import maps, pid, system

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task, ThreadGroup

PROCESS_FILES: dict[str, Callable[["ThreadGroup"], bytes]] = {
    "cgroup": pid.cgroup,
    "cmdline": pid.cmdline,
    "comm": pid.comm,
    "environ": pid.environ,
    "gid_map": pid.gid_map,
    "io": pid.io,
    "limits": pid.limits,
    "loginuid": pid.loginuid,
    "maps": maps.maps,
    "oom_adj": pid.oom_adj,
    "oom_score": pid.oom_score,
    "oom_score_adj": pid.oom_score_adj,
    "personality": pid.personality,
    "sessionid": pid.sessionid,
    "setgroups": pid.setgroups,
    "smaps": maps.smaps,
    "stat": pid.stat,
    "statm": maps.statm,
    "status": pid.status,
    "timerslack_ns": pid.timerslack_ns,
    "uid_map": pid.uid_map,
    "wchan": pid.wchan,
}

#: the files whose thread-level content differs from the process's
_PER_THREAD: dict[str, Callable[["ThreadGroup", "Task"], bytes]] = {
    "children": pid.children, "comm": pid.comm, "io": pid.io, "personality": pid.personality, "stat": pid.stat,
    "status": pid.status, "wchan": pid.wchan,
}


def _process_wide(fn: Callable[["ThreadGroup"], bytes]) -> Callable[["ThreadGroup", "Task"], bytes]:
    return lambda tg, task: fn(tg)


THREAD_FILES: dict[str, Callable[["ThreadGroup", "Task"], bytes]] = {
    **{name: _process_wide(fn) for name, fn in PROCESS_FILES.items()
       if name != "timerslack_ns"},  # (not under task/)
    **_PER_THREAD,
}

SYSTEM_FILES: dict[str, Callable[["Kernel"], bytes]] = {
    "cpuinfo": system.cpuinfo,
    "filesystems": system.filesystems,
    "loadavg": system.loadavg,
    "meminfo": system.meminfo,
    "stat": system.stat,
    "uptime": system.uptime,
    "version": system.version,
    "vmstat": system.vmstat,
}
