"""/proc/sys: the kernel parameters a sandboxed program reads.

Names and identities are the sandbox's own (hostname, domainname, boot id); the limits
the sentry itself enforces are its constants (pid_max, nr_open, pipe-max-size,
mmap_min_addr, cap_last_cap, ngroups_max); what describes the shared machine (memory
overcommit policy, file-max, threads-max) is the host's; the System V IPC limits are
the constants kernel/sysvipc.py and kernel/shm.py enforce (Linux's defaults), so `ipcs -l`
tells the truth.
"""
from __future__ import annotations

import os
import uuid
import weakref
from typing import TYPE_CHECKING, Callable

from snakevisor.fsimpl.procfs import host
from snakevisor.fsimpl.procfs.text import b
from snakevisor.kernel.shm import SHMALL, SHMMAX, SHMMNI
from snakevisor.kernel.mqueue import SYSCTL_RANGES, mqueue_namespace
from snakevisor.kernel.sysvipc import MSGMAX, MSGMNB, MSGMNI, SEMMNI, SEMMNS, SEMMSL, SEMOPM
from snakevisor.mm.address_space import MMAP_MIN_ADDR
from snakevisor.syscalls import sys_cred, sys_info
from snakevisor.vfs.pipe import PIPE_MAX_SIZE

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel

OVERFLOW_ID = 65534
MAX_MAP_COUNT = 65530  # vm.max_map_count's default
SOMAXCONN = 4096  # net.core.somaxconn since Linux 5.4
RANDOMIZE_VA_SPACE = 2  # the loader randomises stack, mmap base, PIE and brk

_boot_ids: "weakref.WeakKeyDictionary[object, str]" = weakref.WeakKeyDictionary()


def boot_id(kernel: "Kernel") -> str:
    """A random id fixed for the sandbox's lifetime (a new one for each sandbox "boot")."""
    value = _boot_ids.get(kernel)
    if value is None:
        value = _boot_ids[kernel] = str(uuid.uuid4())
    return value


def _uts(value: bytes) -> bytes:
    """A UTS name as the sysctl prints it: up to the first NUL, then a newline."""
    return value.split(b"\0", 1)[0] + b"\n"


def _host_value(path: str, default: str) -> bytes:
    data = host.read(f"sys/{path}")
    return data if data else b(default + "\n")


def _number(value: int) -> Callable[["Kernel"], bytes]:
    return lambda kernel: b(f"{value}\n")


def _mqueue_limit(name: str) -> Callable[["Kernel"], bytes]:
    """The sandbox's POSIX message queue limits (read-only here)."""
    return lambda kernel: b"%d\n" % getattr(mqueue_namespace(kernel), name)


def _pid_max(kernel: "Kernel") -> bytes:
    from snakevisor.kernel.kernel import PID_MAX  # not at import: the kernel imports us
    return b(f"{PID_MAX}\n")


def _release(kernel: "Kernel") -> bytes:
    return b(os.uname().release + "\n")  # what uname(2) tells the sandbox


def _version(kernel: "Kernel") -> bytes:
    return b(os.uname().version + "\n")


#: path under /proc/sys -> content for the sandbox
SYSCTL: dict[str, Callable[["Kernel"], bytes]] = {
    "fs/file-max": lambda kernel: _host_value("fs/file-max", "9223372036854775807"),
    "fs/nr_open": _number(sys_info.NR_OPEN),
    **{f"fs/mqueue/{name}": _mqueue_limit(name) for name in SYSCTL_RANGES},
    "fs/pipe-max-size": _number(PIPE_MAX_SIZE),
    "kernel/cap_last_cap": _number(sys_cred.CAP_LAST_CAP),
    "kernel/domainname": lambda kernel: _uts(kernel.domainname),
    "kernel/hostname": lambda kernel: _uts(kernel.hostname),
    "kernel/msgmax": _number(MSGMAX),
    "kernel/msgmnb": _number(MSGMNB),
    "kernel/msgmni": _number(MSGMNI),
    "kernel/ngroups_max": _number(sys_cred.NGROUPS_MAX),
    "kernel/osrelease": _release,
    "kernel/ostype": lambda kernel: b"Linux\n",
    "kernel/overflowgid": _number(OVERFLOW_ID),
    "kernel/overflowuid": _number(OVERFLOW_ID),
    "kernel/pid_max": _pid_max,
    "kernel/random/boot_id": lambda kernel: b(boot_id(kernel) + "\n"),
    "kernel/random/uuid": lambda kernel: b(str(uuid.uuid4()) + "\n"),
    "kernel/randomize_va_space": _number(RANDOMIZE_VA_SPACE),
    "kernel/sem": lambda kernel: b(f"{SEMMSL}\t{SEMMNS}\t{SEMOPM}\t{SEMMNI}\n"),
    "kernel/shmall": _number(SHMALL),
    "kernel/shmmax": _number(SHMMAX),
    "kernel/shmmni": _number(SHMMNI),
    "kernel/threads-max": lambda kernel: _host_value("kernel/threads-max", "4096"),
    "kernel/version": _version,
    "net/core/somaxconn": _number(SOMAXCONN),
    "vm/max_map_count": _number(MAX_MAP_COUNT),
    "vm/mmap_min_addr": _number(MMAP_MIN_ADDR),
    "vm/overcommit_memory": lambda kernel: _host_value("vm/overcommit_memory", "0"),
}


def sysctl(kernel: "Kernel", path: str) -> bytes:
    """The content of /proc/sys/<path>; KeyError for a parameter the sandbox lacks."""
    return SYSCTL[path.strip("/")](kernel)


def entries(directory: str = "") -> list[str]:
    """The names in a /proc/sys directory ("" is /proc/sys itself), for getdents."""
    prefix = directory.strip("/")
    prefix = prefix + "/" if prefix else ""
    names = {p[len(prefix):].split("/", 1)[0] for p in SYSCTL if p.startswith(prefix)}
    return sorted(names)


def is_directory(path: str) -> bool:
    prefix = path.strip("/") + "/"
    return any(p.startswith(prefix) for p in SYSCTL)
