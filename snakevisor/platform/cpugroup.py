"""A cpu cgroup of their own for a sandbox's stubs, beside the sentry's (cgroup v1 cpu).

Why: the sentry and its stubs share one CPU, and a system call is a hand-off between them.
When they are in one cpu cgroup, a stub that the sentry resumes preempts it at once
whenever the sentry has not gone to sleep first — which is every call while the loop waits
multiplexed (a timer pending, a watched fd): 17-59 us per getpid instead of 13.  With the
stubs in a group of their own, the scheduler compares the two groups instead and the
sentry reaches its wait: 12.5 us multiplexed, 12.2 us blocking (performance.md, "The
loop's two ways of waiting").  A container's stubs get the same from the runtime (they are
moved into the container's cgroups), so this matters for `snakevisor do`.

Everything here is best effort: without a writable v1 cpu hierarchy (cgroup v2 only, no
root) nothing changes.  The group outlives its sandbox, empty: the confined sentry has no
CAP_DAC_OVERRIDE left to remove it (a v1 hierarchy's root directory is mode 555), and no
process holding that capability may stay beside it (the sentry keeps CAP_SYS_PTRACE).  The
next sandbox that starts removes the groups of sentries that are gone.
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger("snakevisor")

PREFIX = "snakevisor-stubs-"


class CpuGroup:
    """A created group: its parent directory (an fd: usable after the sentry is confined)
    and its name there."""

    def __init__(self, parent_fd: int, name: str) -> None:
        self.parent_fd = parent_fd
        self.name = name

    def join(self, pid: int) -> None:
        """Move a host process (and so everything it forks later) into the group."""
        fd = os.open(f"{self.name}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC,
                     dir_fd=self.parent_fd)
        try:
            os.write(fd, str(pid).encode())
        finally:
            os.close(fd)

    def remove(self) -> None:
        """Once its processes are gone (works only while we hold CAP_DAC_OVERRIDE: an
        unconfined sentry)."""
        try:
            os.rmdir(self.name, dir_fd=self.parent_fd)
        except OSError as exc:
            log.debug("cannot remove cpu cgroup %s: %s", self.name, exc)
        os.close(self.parent_fd)


def _our_cpu_directory() -> str | None:
    """The directory of our own cgroup in the v1 hierarchy that has the cpu controller."""
    mount = None
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            sep = fields.index("-")
            if fields[sep + 1] == "cgroup" and "cpu" in fields[sep + 3].split(","):
                mount = fields[4]
                break
    if mount is None:
        return None
    with open("/proc/self/cgroup") as groups:
        for line in groups:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if "cpu" in controllers.split(","):
                return os.path.join(mount, path.lstrip("/"))
    return None


def create() -> CpuGroup | None:
    """A new group beside ours for the stubs, or None where there cannot be one."""
    try:
        parent = _our_cpu_directory()
        if parent is None:
            return None
        for entry in os.listdir(parent):  # groups of sentries that were killed
            if entry.startswith(PREFIX) and not os.path.exists(f"/proc/{entry[len(PREFIX):]}"):
                try:
                    os.rmdir(os.path.join(parent, entry))
                except OSError:
                    pass
        name = f"{PREFIX}{os.getpid()}"
        os.mkdir(os.path.join(parent, name))
        return CpuGroup(os.open(parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC), name)
    except (OSError, ValueError) as exc:
        log.debug("no cpu cgroup for the stubs: %s", exc)
        return None
