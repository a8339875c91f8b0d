"""The sandbox's procfs: the content functions of this package arranged as a file system.

/proc lists the sandbox's processes (never the host's), `self` and `thread-self`, the
system files and /proc/sys; each /proc/PID holds the per-process files, `task/TID`, `fd/`
and `fdinfo/`, and the links exe, cwd and root.  Everything is computed when it is looked
up or opened, so it is always current.
"""
from __future__ import annotations

import stat as st_
from typing import TYPE_CHECKING, Callable

from snakevisor.fsimpl import procfs
from snakevisor.fsimpl.procfs import mounts, pid, sysctl, system, sysvipc
from snakevisor.fsimpl.synthetic import (DynamicDir, GeneratedFile, GeneratedLink, SyntheticFs,
                                         stable_ino)
from snakevisor.vfs.inode import Inode

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task, ThreadGroup

PROC_SUPER_MAGIC = 0x9FA0


def _int_name(name: bytes) -> int | None:
    return int(name) if name.isdigit() and not name.startswith(b"0") else None


class ProcFs(SyntheticFs):
    """One procfs instance for one sandbox (its kernel's processes)."""

    lookup_misses_fail = True  #: creating any name in it is ENOENT (sandboxroot._missing_name)

    def __init__(self, kernel: "Kernel", mount_records: Callable[[], list] | None = None) -> None:
        super().__init__("proc", PROC_SUPER_MAGIC, "proc")
        self.kernel = kernel
        #: the mount table as procfs shows it (mountinfo, mounts)
        self.mount_records = mount_records or (lambda: [])
        self.root_dir = DynamicDir(self, self._root_names, self._root_child, ino=1)

    # -- /proc -------------------------------------------------------------------------------
    def _root_names(self, task: "Task") -> list[bytes]:
        names = [str(p).encode() for p in pid.pids(self.kernel)]
        names += [b"self", b"thread-self", b"mounts", b"sys", b"sysvipc"]
        names += [n.encode() for n in procfs.SYSTEM_FILES]
        return names

    def _root_child(self, task: "Task", name: bytes) -> Inode | None:
        number = _int_name(name)
        if number is not None:
            tg = self.kernel.thread_groups.get(number)
            if tg is None or tg.reaped:
                return None
            return self._process_dir(tg, None, ino=stable_ino("pid", number))
        if name == b"self":
            return GeneratedLink(self, lambda t: system.self_link(t).encode(), ino=2)
        if name == b"thread-self":
            return GeneratedLink(self, lambda t: system.thread_self_link(t).encode(), ino=3)
        if name == b"mounts":
            return GeneratedLink(self, lambda t: b"self/mounts", ino=4)
        if name == b"sys":
            return self._sysctl_dir("", ino=5)
        if name == b"sysvipc":
            return self._sysvipc_dir()
        fn = procfs.SYSTEM_FILES.get(name.decode(errors="replace"))
        if fn is not None:
            kernel = self.kernel
            return GeneratedFile(self, lambda t, fn=fn: fn(kernel),
                                 ino=stable_ino("sys", name))
        return None

    def _sysctl_dir(self, path: str, ino: int | None = None) -> Inode:
        def names(task: "Task") -> list[bytes]:
            return [n.encode() for n in sysctl.entries(path)]

        def child(task: "Task", name: bytes) -> Inode | None:
            sub = f"{path}/{name.decode(errors='replace')}".lstrip("/")
            if name.decode(errors="replace") not in sysctl.entries(path):
                return None
            if sysctl.is_directory(sub):
                return self._sysctl_dir(sub, ino=stable_ino("sysctl", sub))
            kernel = self.kernel
            return GeneratedFile(self, lambda t: sysctl.sysctl(kernel, sub), mode=0o444,
                                 ino=stable_ino("sysctl", sub))

        return DynamicDir(self, names, child, ino=ino)

    def _sysvipc_dir(self) -> Inode:
        """/proc/sysvipc: msg, sem and shm (procfs/sysvipc.py)."""
        kernel = self.kernel

        def names(task: "Task") -> list[bytes]:
            return [n.encode() for n in sysvipc.FILES]

        def child(task: "Task", name: bytes) -> Inode | None:
            fn = sysvipc.FILES.get(name.decode(errors="replace"))
            if fn is None:
                return None
            return GeneratedFile(self, lambda t: fn(kernel), ino=stable_ino("sysvipc", name))

        return DynamicDir(self, names, child, ino=stable_ino("sysvipc"))

    # -- /proc/PID and /proc/PID/task/TID --------------------------------------------------------
    def _owner(self, tg: "ThreadGroup") -> tuple[int, int]:
        return tg.creds.euid, tg.creds.egid

    def _process_dir(self, tg: "ThreadGroup", thread: "Task | None", ino: int) -> Inode:
        files = procfs.THREAD_FILES if thread is not None else procfs.PROCESS_FILES
        extra = [b"fd", b"fdinfo", b"exe", b"cwd", b"root", b"mountinfo", b"mounts", b"ns"]
        if thread is None:
            extra.append(b"task")
        uid, gid = self._owner(tg)
        key = ("pid", tg.pid, thread.tid if thread else 0)

        def names(task: "Task") -> list[bytes]:
            return [n.encode() for n in files] + extra

        def child(task: "Task", name: bytes) -> Inode | None:
            text = name.decode(errors="replace")
            ino = stable_ino(*key, text)
            if text in files:
                fn = files[text]
                if thread is None:
                    return GeneratedFile(self, lambda t: fn(tg), uid=uid, gid=gid, ino=ino)  # type: ignore[call-arg]
                return GeneratedFile(self, lambda t: fn(tg, thread), uid=uid, gid=gid, ino=ino)  # type: ignore[call-arg]
            if text == "task" and thread is None:
                return self._task_dir(tg, ino)
            if text == "fd":
                return self._fd_dir(tg, ino, links=True)
            if text == "fdinfo":
                return self._fd_dir(tg, ino, links=False)
            if text == "exe":
                return GeneratedLink(self, lambda t: pid.exe_link(tg).encode(), uid=uid, gid=gid, ino=ino)
            if text == "cwd":
                return GeneratedLink(self, lambda t: pid.cwd_link(tg).encode(), uid=uid, gid=gid, ino=ino)
            if text == "root":
                return GeneratedLink(self, lambda t: pid.root_link(tg).encode(), uid=uid, gid=gid, ino=ino)
            if text == "ns":
                return self._ns_dir(uid, gid, ino, key)
            if text == "mountinfo":
                return GeneratedFile(self, lambda t: mounts.mountinfo(self.mount_records()), ino=ino)
            if text == "mounts":
                return GeneratedFile(self, lambda t: mounts.mounts(self.mount_records()), ino=ino)
            return None

        node = DynamicDir(self, names, child, uid=uid, gid=gid, ino=ino)
        node.no_write = True  # Linux's proc_pid_permission: no W_OK, even for root
        return node

    def _ns_dir(self, uid: int, gid: int, ino: int, key: tuple) -> Inode:
        """/proc/PID/ns: one link per namespace kind, "KIND:[INODE]".  Every process of the
        sandbox shares the sandbox's namespaces, so the numbers are the sandbox's own."""
        def names(task: "Task") -> list[bytes]:
            return [kind.encode() for kind in NAMESPACES]

        def child(task: "Task", name: bytes) -> Inode | None:
            kind = name.decode(errors="replace")
            if kind not in NAMESPACES:
                return None
            text = f"{kind.removesuffix('_for_children')}:[{NAMESPACES[kind]}]".encode()
            return GeneratedLink(self, lambda t: text, uid=uid, gid=gid,
                                 ino=stable_ino(*key, "ns", kind))

        return DynamicDir(self, names, child, mode=0o511, uid=uid, gid=gid, ino=ino)

    def _task_dir(self, tg: "ThreadGroup", ino: int) -> Inode:
        def names(task: "Task") -> list[bytes]:
            return [str(t).encode() for t in pid.tids(tg)]

        def child(task: "Task", name: bytes) -> Inode | None:
            tid = _int_name(name)
            thread = self.kernel.tasks.get(tid) if tid is not None else None
            if thread is None or thread.tg is not tg:
                return None
            return self._process_dir(tg, thread, stable_ino("tid", tg.pid, tid))

        return DynamicDir(self, names, child, ino=ino)

    def _fd_dir(self, tg: "ThreadGroup", ino: int, links: bool) -> Inode:
        uid, gid = self._owner(tg)

        def names(task: "Task") -> list[bytes]:
            return [str(fd).encode() for fd in sorted(tg.fds.files)] if tg.alive else []

        def child(task: "Task", name: bytes) -> Inode | None:
            fd = _int_name(name) if name != b"0" else 0
            if fd is None or not tg.alive or fd not in tg.fds.files:
                return None
            ino = stable_ino("fd", tg.pid, links, fd)
            if links:
                node = GeneratedLink(self, lambda t: pid.fd_link(tg, fd).encode(), uid=uid,
                                     gid=gid, ino=ino)
                node.mode = st_.S_IFLNK | (_fd_link_mode(tg, fd))
                node.open_fd = (tg, fd)  # type: ignore[attr-defined]
                return node
            return GeneratedFile(self, lambda t: pid.fdinfo(tg, fd), mode=0o400, uid=uid,
                                 gid=gid, ino=ino)

        return DynamicDir(self, names, child, mode=0o500, uid=uid, gid=gid, ino=ino)


#: /proc/PID/ns's entries in Linux's order, and the inode numbers of the sandbox's
#: namespaces (fixed: one sandbox, one namespace of each kind; unlike the host's)
NAMESPACES = {"cgroup": 4026532801, "ipc": 4026532802, "mnt": 4026532803, "net": 4026532804,
              "pid": 4026532805, "pid_for_children": 4026532805, "time": 4026532806,
              "time_for_children": 4026532806, "user": 4026532807, "uts": 4026532808}


def _fd_link_mode(tg: "ThreadGroup", fd: int) -> int:
    """/proc/PID/fd/N's permission bits show the access mode (r/w bits for owner)."""
    acc = tg.fds.files[fd].flags & 3
    return 0o100 | (0o200 if acc in (1, 2) else 0) | (0o400 if acc in (0, 2) else 0)
