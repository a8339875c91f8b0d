"""The sandbox's /sys: the few files programs read to size themselves (CPU lists, the
transparent-huge-page policy) and an empty cgroup mount point, never the host's sysfs.

CPU lists describe the CPUs the sandbox was given (kernel.platform.cpus), as
sched_getaffinity does, so glibc's get_nprocs and `nproc --all` agree with it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from snakevisor.fsimpl.synthetic import GeneratedFile, StaticDir, SyntheticFs
from snakevisor.vfs.inode import Inode

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel

SYSFS_MAGIC = 0x62656572


def cpu_list(cpus: "set[int] | frozenset[int]") -> bytes:
    """"0-3,6" as the kernel prints CPU masks in list form."""
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and runs[-1][1] == cpu - 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(f"{lo}-{hi}" if hi > lo else str(lo) for lo, hi in runs).encode() + b"\n"


class SysFs(SyntheticFs):
    def __init__(self, kernel: "Kernel") -> None:
        super().__init__("sysfs", SYSFS_MAGIC, "sysfs")
        cpus = frozenset(getattr(kernel.platform, "cpus", ()) or {0})

        def text(data: bytes) -> Inode:
            return GeneratedFile(self, lambda task: data)

        listing = cpu_list(cpus)
        cpu_dir = StaticDir(self, {
            b"online": text(listing), b"possible": text(listing), b"present": text(listing),
            b"offline": text(b"\n"), b"kernel_max": text(b"8191\n"),
            **{f"cpu{n}".encode(): StaticDir(self, {}) for n in sorted(cpus)},
        })
        self.root_dir = StaticDir(self, {
            b"devices": StaticDir(self, {b"system": StaticDir(self, {b"cpu": cpu_dir})}),
            b"kernel": StaticDir(self, {b"mm": StaticDir(self, {b"transparent_hugepage": StaticDir(
                self, {b"enabled": text(b"always [madvise] never\n")})})}),
            b"fs": StaticDir(self, {b"cgroup": StaticDir(self, {})}),
        })
