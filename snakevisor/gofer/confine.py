"""Confining the gofer before it serves a single request.

1. Its own mount namespace (unshare CLONE_NEWNS; needs root on the host), every mount made
   private so nothing propagates in or out.
2. A fresh tree on a tmpfs (mounted over /proc of the *private* namespace, as runsc's gofer
   does, so no directory is ever created on the host):
       /root        the container root (a non-recursive bind: no host submounts)
       /volumes/N   bind mount N (a directory or a single file)
   each bind nosuid,nodev (device nodes in an image can never be opened), read-only when
   asked, keeping the source's noexec/atime flags; then the tmpfs itself is made read-only.
3. pivot_root into that tree and detach the old root: the gofer's /proc/PID/root shows only
   the container root and its volumes.
4. RLIMIT_NOFILE raised to its hard limit; capabilities cut to :data:`KEEP` (bounding, effective, permitted; inheritable and ambient
   empty), PR_SET_DUMPABLE 0, PR_SET_PDEATHSIG SIGKILL, no_new_privs, and the seccomp
   allowlist of gofer/seccomp.py.

Everything the serving loop imports must be imported before step 3: afterwards the Python
standard library is no longer visible.
"""
from __future__ import annotations

import os
import resource
import signal
from typing import NamedTuple

from snakevisor.confinement import (MS_BIND, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC,
                                    MS_NOSUID, MS_RDONLY, MS_RELATIME, MS_REMOUNT,
                                    PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, check,
                                    drop_capabilities, mount, pivot_into, prctl, unshare_mounts)
from snakevisor.gofer import seccomp
from snakevisor.gofer import Volume  # noqa: F401  (re-exported)

#: capabilities the serving loop keeps, and why (all others are dropped from every set):
KEEP = {
    0: "CAP_CHOWN: give created files the sandbox user's uid/gid; setattr uid/gid",
    1: "CAP_DAC_OVERRIDE: the sentry checks permissions itself; the gofer must not re-check",
    2: "CAP_DAC_READ_SEARCH: search any directory; linkat(AT_EMPTY_PATH) of an O_PATH fd",
    3: "CAP_FOWNER: chmod/utimes/xattrs of files owned by other uids; O_NOATIME",
    4: "CAP_FSETID: keep set-user/group-ID bits as the sentry asked on chmod and chown",
}
# CAP_MKNOD is not kept: Tmknod creates regular files, FIFOs and sockets only (the sentry
# emulates devices), none of which needs it.  CAP_SYS_ADMIN (mounts, trusted.* xattrs),
# CAP_SETUID/SETGID and the rest are gone before the first request.

ST_RDONLY, ST_NOEXEC, ST_NOATIME, ST_NODIRATIME, ST_RELATIME = 0x1, 0x8, 0x400, 0x800, 0x1000

NEW_ROOT = "/proc"  # where the tree is built inside the private namespace

class Export(NamedTuple):
    """One attachable tree after confinement: aname -> O_PATH fd of its root.

    A single-file volume also keeps its mount point's parent directory and name, so that the
    file can be reopened (there is no way to reopen an O_PATH fd without /proc).
    """

    aname: bytes
    fd: int
    parent_fd: int | None = None
    name: bytes = b""


def _keep_flags(host: str) -> int:
    """The source mount's noexec/atime flags, which a bind remount would otherwise drop."""
    f = os.statvfs(host).f_flag
    out = 0
    for st, ms in ((ST_NOEXEC, MS_NOEXEC), (ST_NOATIME, MS_NOATIME),
                   (ST_NODIRATIME, MS_NODIRATIME), (ST_RELATIME, MS_RELATIME),
                   (ST_RDONLY, MS_RDONLY)):
        if f & st:
            out |= ms
    return out


def _bind(host: str, target: str, ro: bool) -> None:
    flags = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | _keep_flags(host)
    mount(host, target, None, MS_BIND)
    mount(None, target, None, flags | (MS_RDONLY if ro else 0))


def build_tree(root: str, volumes: list[Volume], ro_root: bool) -> None:
    """Steps 1-3: private namespace holding only root and volumes, pivoted into."""
    sources = [os.path.realpath(root)] + [os.path.realpath(v.host) for v in volumes]
    for src in sources:
        if src == "/proc" or src.startswith("/proc/"):
            raise OSError(f"gofer: cannot export {src}: beneath /proc")
        os.stat(src)
    unshare_mounts()
    mount("snakevisor-gofer", NEW_ROOT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
           "mode=0755,size=64k")
    os.mkdir(f"{NEW_ROOT}/root", 0o755)
    _bind(sources[0], f"{NEW_ROOT}/root", ro_root)
    os.mkdir(f"{NEW_ROOT}/volumes", 0o755)
    for i, (v, src) in enumerate(zip(volumes, sources[1:])):
        target = f"{NEW_ROOT}/volumes/{i}"
        if os.path.isdir(src):
            os.mkdir(target, 0o755)
        else:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        _bind(src, target, v.ro)
    mount(None, NEW_ROOT, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
    pivot_into(NEW_ROOT)


def open_exports(volumes: list[Volume], prefix: str = "") -> list[Export]:
    """O_PATH fds of the attachable trees (prefix "" once pivoted)."""
    path_flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    out = [Export(b"/", os.open(f"{prefix}/root", path_flags | os.O_DIRECTORY))]
    vdir = None
    for i, v in enumerate(volumes):
        fd = os.open(f"{prefix}/volumes/{i}", path_flags)
        if os.path.isdir(f"{prefix}/volumes/{i}"):
            out.append(Export(v.path, fd))
        else:
            if vdir is None:
                vdir = os.open(f"{prefix}/volumes", path_flags | os.O_DIRECTORY)
            out.append(Export(v.path, fd, vdir, str(i).encode()))
    return out


def lock_down(filter_syscalls: bool = True) -> None:
    """Step 4: fd limit, capabilities, dumpable, parent-death signal, no_new_privs, seccomp."""
    # every file the sentry holds a fid for costs one O_PATH fd; setrlimit is not allowed later
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    drop_capabilities(KEEP)
    check(prctl(PR_SET_DUMPABLE, 0), "PR_SET_DUMPABLE")
    check(prctl(PR_SET_PDEATHSIG, signal.SIGKILL), "PR_SET_PDEATHSIG")
    check(prctl(PR_SET_NO_NEW_PRIVS, 1), "PR_SET_NO_NEW_PRIVS")
    if filter_syscalls:
        seccomp.install(seccomp.build_filter())
