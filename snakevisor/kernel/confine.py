"""Confining the sentry itself once the sandbox is built: no host file system of its own.

After start-up every host file reaches the sandbox through the gofer (donated fds), so the
sentry needs no paths at all.  Before serving the first system call it:

1. imports every module it may need later (afterwards the Python library is invisible);
2. enters a private mount namespace (unshare CLONE_NEWNS, everything made private);
3. builds an empty read-only tmpfs holding a single directory, ``/proc``, with a fresh
   procfs mounted there (as runsc does for its sentry: the platform reads and writes stub
   memory through /proc/PID/mem and takes CPU and memory figures from /proc);
4. pivot_roots into it and detaches the old root: the sentry's host /proc/PID/root shows
   an empty tree; a path such as /etc/passwd no longer exists for it;
5. cuts its capabilities to :data:`KEEP` and sets no_new_privs.

Descriptors opened before (the stub template, stubs' /proc/PID/mem, the gofer socket, the
CLI's stdio) stay valid.  Confinement needs root on the host (a mount namespace); without
it the sentry logs one warning and runs unconfined.
"""
from __future__ import annotations

import importlib
import logging
import os
import pkgutil

log = logging.getLogger("snakevisor")

#: capabilities the sentry keeps, and why (everything else is dropped from every set)
KEEP = {
    5: "CAP_KILL: stop and kill stubs, whose host uid (nobody) differs from ours",
    19: "CAP_SYS_PTRACE: trace stubs and open their /proc/PID/mem across uids/user namespaces",
    24: "CAP_SYS_RESOURCE: apply the sandbox's rlimits to its stubs (prlimit) above our own",
}

#: where the empty tree is built inside the private namespace before pivoting
_BUILD_AT = "/proc"
#: modules the serving loop imports lazily (inside functions) from the standard library
_LAZY_STDLIB = ("ctypes", "fcntl", "signal", "socket", "time", "traceback", "linecache",
                "json", "struct", "errno", "select", "resource")


def preload() -> None:
    """Import every snakevisor module (and the standard modules they import lazily)."""
    import snakevisor
    for name in _LAZY_STDLIB:
        importlib.import_module(name)
    for info in pkgutil.walk_packages(snakevisor.__path__, "snakevisor."):
        if info.name.endswith("__main__") or ".gofer" in info.name:
            continue  # entry points, and the gofer's own code (it runs in its own process)
        importlib.import_module(info.name)


def confine_sentry() -> bool:
    """Steps 1-5; True once confined, False (with a warning) when not possible here."""
    from snakevisor.confinement import (MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REMOUNT,
                                        PR_SET_NO_NEW_PRIVS, check, drop_capabilities, mount,
                                        pivot_into, prctl, unshare_mounts)
    if os.geteuid() != 0:
        log.warning("sentry runs unconfined: confining it needs root on the host")
        return False
    preload()
    with open("/proc/self/status") as f:  # capabilities we hold (a container may hold fewer)
        held = int(next(line for line in f if line.startswith("CapPrm:")).split()[1], 16)
    unshare_mounts()
    hardened = MS_NOSUID | MS_NODEV | MS_NOEXEC
    mount("snakevisor-sentry", _BUILD_AT, "tmpfs", hardened, "mode=0555,size=16k")
    os.mkdir(f"{_BUILD_AT}/proc", 0o555)
    mount("proc", f"{_BUILD_AT}/proc", "proc", hardened)
    mount(None, _BUILD_AT, None, MS_REMOUNT | MS_RDONLY | hardened)
    pivot_into(_BUILD_AT)
    drop_capabilities({cap for cap in KEEP if held & (1 << cap)})
    check(prctl(PR_SET_NO_NEW_PRIVS, 1), "PR_SET_NO_NEW_PRIVS")
    return True
