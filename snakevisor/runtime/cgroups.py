"""A container's host cgroups (v1 hierarchies under /sys/fs/cgroup): linux.resources as
host limits, the freezer for pause/resume, and the figures `events --stats` reports.

Who is in them: the application's processes only — the stub template and every stub it
forks — not the sentry or the gofer.  Memory the application touches is charged to its
stubs, so `--memory 64m` bounds what the program can use rather than the Python sentry's
own footprint, and `--pids-limit` counts the application's threads.  The runtime (outside
the sentry's confinement) creates the groups and moves the stubs in before `create`
returns, before the first instruction of the application has run.
"""
from __future__ import annotations

import errno
import os
import time

ROOT = "/sys/fs/cgroup"
#: hierarchies a container gets a group in (those mounted here); cpuset only when asked
CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "blkio", "freezer")
UNLIMITED = -1


class CgroupError(Exception):
    """A cgroup could not be made, limited or read; one line for the user."""


def cgroup_path(cgroups_path: str, container_id: str, systemd: bool = False) -> str:
    """config.json's linux.cgroupsPath as a path below each hierarchy's root: absolute as
    given, relative ones below /, systemd's slice:prefix:name as slice/prefix-name.scope,
    and /snakevisor/ID when the engine gave none."""
    if not cgroups_path:
        return f"/snakevisor/{container_id}"
    if systemd or cgroups_path.count(":") == 2:
        slice_, prefix, name = (cgroups_path.split(":") + ["", "", ""])[:3]
        return "/" + "/".join(p for p in (slice_ or "system.slice",
                                          f"{prefix}-{name}.scope" if prefix else name) if p)
    if ".." in cgroups_path.split("/"):
        raise CgroupError(f"cgroupsPath {cgroups_path!r} must not contain '..'")
    return os.path.normpath("/" + cgroups_path.lstrip("/"))


class Cgroups:
    """One container's group in each mounted v1 hierarchy."""

    def __init__(self, path: str, with_cpuset: bool = False) -> None:
        self.path = path
        names = CONTROLLERS + (("cpuset",) if with_cpuset else ())
        self.dirs = {name: os.path.join(ROOT, name, path.lstrip("/")) for name in names
                     if os.path.isdir(os.path.join(ROOT, name))}

    def create(self) -> None:
        for name, directory in self.dirs.items():
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as exc:
                raise CgroupError(f"cannot create cgroup {directory}: {exc.strerror}") from None
            if name == "cpuset":
                _inherit_cpuset(directory)

    def add(self, pid: int) -> None:
        """Move a process (all its threads) into every group."""
        for directory in self.dirs.values():
            _write(directory, "cgroup.procs", str(pid))

    def apply(self, resources: dict) -> None:
        """linux.resources (and `update --resources`): memory, pids, cpu, cpuset."""
        memory = resources.get("memory") or {}
        if "memory" in self.dirs:
            d = self.dirs["memory"]
            limit = memory.get("limit")
            swap = memory.get("swap")
            if limit is not None:
                # memsw must stay >= limit: raise it first when the new limit is higher
                if swap is None and os.path.exists(os.path.join(d, "memory.memsw.limit_in_bytes")):
                    _write(d, "memory.memsw.limit_in_bytes", str(UNLIMITED))
                _write(d, "memory.limit_in_bytes", str(limit))
            if swap is not None:
                _write(d, "memory.memsw.limit_in_bytes", str(swap))
            if memory.get("reservation") is not None:
                _write(d, "memory.soft_limit_in_bytes", str(memory["reservation"]))
            if memory.get("swappiness") is not None and 0 <= memory["swappiness"] <= 100:
                _write(d, "memory.swappiness", str(memory["swappiness"]))
            if memory.get("disableOOMKiller"):
                _write(d, "memory.oom_control", "1")
        pids = resources.get("pids") or {}
        if "pids" in self.dirs and pids.get("limit") is not None:
            limit = int(pids["limit"])
            _write(self.dirs["pids"], "pids.max", "max" if limit <= 0 else str(limit))
        cpu = resources.get("cpu") or {}
        if "cpu" in self.dirs:
            d = self.dirs["cpu"]
            if cpu.get("shares"):
                _write(d, "cpu.shares", str(cpu["shares"]))
            if cpu.get("period"):
                _write(d, "cpu.cfs_period_us", str(cpu["period"]))
            if cpu.get("quota") is not None and cpu.get("quota") != 0:
                _write(d, "cpu.cfs_quota_us", str(cpu["quota"]))
        if "cpuset" in self.dirs:
            if cpu.get("cpus"):
                _write(self.dirs["cpuset"], "cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                _write(self.dirs["cpuset"], "cpuset.mems", cpu["mems"])

    # -- pause / resume ----------------------------------------------------------------
    def frozen(self) -> bool:
        directory = self.dirs.get("freezer")
        if directory is None:
            return False
        try:
            return _read(directory, "freezer.state") != "THAWED"
        except CgroupError:
            return False

    def freeze(self, frozen: bool, timeout: float = 10.0) -> None:
        directory = self.dirs.get("freezer")
        if directory is None:
            raise CgroupError("the freezer hierarchy is not mounted: pause needs it")
        want = "FROZEN" if frozen else "THAWED"
        _write(directory, "freezer.state", want)
        deadline = time.monotonic() + timeout
        while _read(directory, "freezer.state") != want:  # FREEZING until every task stops
            if time.monotonic() > deadline:
                raise CgroupError(f"the container's processes did not become {want.lower()}")
            time.sleep(0.005)
            _write(directory, "freezer.state", want)

    # -- figures ---------------------------------------------------------------------------
    def stats(self) -> dict:
        """The subset of runc's `events --stats` data that v1 groups give directly."""
        out: dict = {}
        if "pids" in self.dirs:
            out["pids"] = {"current": _number(self.dirs["pids"], "pids.current"),
                           "limit": _number(self.dirs["pids"], "pids.max")}
        if "memory" in self.dirs:
            d = self.dirs["memory"]
            out["memory"] = {"usage": {"usage": _number(d, "memory.usage_in_bytes"),
                                       "max": _number(d, "memory.max_usage_in_bytes"),
                                       "limit": _number(d, "memory.limit_in_bytes"),
                                       "failcnt": _number(d, "memory.failcnt")}}
        if "cpuacct" in self.dirs:
            out["cpu"] = {"usage": {"total": _number(self.dirs["cpuacct"], "cpuacct.usage")}}
        return out

    def destroy(self, timeout: float = 5.0) -> None:
        """Remove the groups once their processes are gone (EBUSY until they are)."""
        deadline = time.monotonic() + timeout
        for directory in self.dirs.values():
            while True:
                try:
                    os.rmdir(directory)
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise CgroupError(f"cannot remove cgroup {directory}: "
                                          f"{exc.strerror}") from None
                    time.sleep(0.01)


def _inherit_cpuset(directory: str) -> None:
    """A v1 cpuset group starts empty: copy cpus and mems down from its parents."""
    parent = os.path.dirname(directory)
    if os.path.dirname(parent) != os.path.join(ROOT):
        _inherit_cpuset(parent)
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not _read(directory, name):
            _write(directory, name, _read(parent, name))


def _write(directory: str, name: str, value: str) -> None:
    try:
        with open(os.path.join(directory, name), "w") as fh:
            fh.write(value)
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {directory}/{name}: "
                          f"{exc.strerror}") from None


def _read(directory: str, name: str) -> str:
    try:
        with open(os.path.join(directory, name)) as fh:
            return fh.read().strip()
    except OSError as exc:
        raise CgroupError(f"cannot read {directory}/{name}: {exc.strerror}") from None


def _number(directory: str, name: str) -> int:
    try:
        text = _read(directory, name)
    except CgroupError:
        return 0
    return int(text) if text.lstrip("-").isdigit() else 0
