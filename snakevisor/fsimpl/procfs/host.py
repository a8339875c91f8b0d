"""The host's procfs, read for figures the sandbox shares with the machine.

Why one module: the application's code runs natively in host processes (stubs), so their
CPU time, resident memory and page faults are only known to the host kernel, and the
machine-wide files (meminfo, cpuinfo, stat) describe memory and CPUs the sandbox shares.
Every host /proc read of the procfs content goes through `read`, so the day the sentry
loses its own host file system (issue 4) the change is made here once.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

HOST_PROC = "/proc"


def read(path: str) -> bytes | None:
    """A host procfs file (path relative to /proc), or None if it cannot be read."""
    try:
        with open(f"{HOST_PROC}/{path}", "rb") as f:
            return f.read()
    except OSError:
        return None


def key_values(data: bytes | None) -> dict[str, str]:
    """"Key:<tab or spaces>value" lines (status, meminfo, smaps bodies) in file order."""
    out: dict[str, str] = {}
    if data:
        for line in data.decode("utf-8", "surrogateescape").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                out[key.strip()] = value.strip()
    return out


def kb(value: str | None) -> int:
    """The number of a "  1234 kB" value (0 when absent)."""
    if not value:
        return 0
    try:
        return int(value.split()[0])
    except (ValueError, IndexError):
        return 0


@functools.cache
def kernel_status() -> dict[str, str]:
    """The sentry's own /proc/self/status: which optional lines this host kernel prints
    (config- and arch-dependent) and the values of lines about the machine."""
    return key_values(read("self/status"))


def status(pid: int, tid: int | None = None) -> dict[str, str]:
    """A host process's (or one of its threads') status lines; {} if it is gone."""
    if pid <= 0:
        return {}
    return key_values(read(f"{pid}/status" if tid is None else f"{pid}/task/{tid}/status"))


def stat_fields(pid: int, tid: int | None = None) -> list[bytes]:
    """The fields of a host stat file after the command name (index 0 is field 3)."""
    if pid <= 0:
        return []
    data = read(f"{pid}/stat" if tid is None else f"{pid}/task/{tid}/stat")
    if not data:
        return []
    return data[data.rindex(b")") + 2:].split()


def stat_field(fields: list[bytes], number: int) -> int:
    """Field `number` (1-based, as proc(5) numbers them) of stat_fields(); 0 if absent."""
    try:
        return int(fields[number - 3])
    except (IndexError, ValueError):
        return 0


def statm(pid: int) -> list[int]:
    """The seven page counts of a host statm (zeros if the process is gone)."""
    data = read(f"{pid}/statm") if pid > 0 else None
    try:
        values = [int(x) for x in data.split()] if data else []
    except ValueError:
        values = []
    return (values + [0] * 7)[:7]


class HostVma(NamedTuple):
    """One block of a host smaps file."""

    start: int
    end: int
    inode: int
    values: dict[str, str]  # every "Key: value" line of the block, VmFlags included


def smaps(pid: int) -> list[HostVma]:
    """A host process's smaps, sorted by address ([] if it is gone)."""
    data = read(f"{pid}/smaps") if pid > 0 else None
    if not data:
        return []
    out: list[HostVma] = []
    current: dict[str, str] | None = None
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        head = line.split(None, 5)
        if len(head) >= 5 and "-" in head[0] and ":" in head[3] and not head[0].endswith(":"):
            lo, _, hi = head[0].partition("-")
            try:
                current = {}
                out.append(HostVma(int(lo, 16), int(hi, 16), int(head[4]), current))
                continue
            except ValueError:
                current = None
        if current is not None:
            key, sep, value = line.partition(":")
            if sep:
                current[key] = value.strip()
    return out


def meminfo() -> bytes:
    return read("meminfo") or b""


def meminfo_kb() -> dict[str, int]:
    return {k: kb(v) for k, v in key_values(read("meminfo")).items()}
