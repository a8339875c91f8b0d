"""The root the application sees: the sandbox's own file systems (the overlay at /, procfs,
sysfs, devfs, tmpfs, volumes) mounted at their places, over the host root.

INTERIM, until the walk moves into vfs/resolve.py over a MountNamespace (issue 4): a path
finds its mount by its *text*, made absolute and normalised (so `a/../b` is judged
lexically); inside the mount the sentry walks component by component, and a symlink is
followed by routing its target again, so it may lead into another mount.  Paths no mount
claims (only with `--overlay2 none`) go to HostRoot's confined openat2 resolution.
"""
from __future__ import annotations

import os
import posixpath
import stat as st_
import time
from typing import TYPE_CHECKING

from snakevisor.fsimpl.hostfs import HostFile, HostRoot
from snakevisor.kernel.errors import (EACCES, EBADF, EBUSY, EINVAL, EISDIR, ELOOP, ENOENT, ENOTDIR,
                                      ENOTEMPTY, EOPNOTSUPP, EPERM, EROFS, EXDEV, SyscallError)
from snakevisor.syscalls.args import AT_FDCWD
from snakevisor.vfs.dirfile import DirectoryFile
from snakevisor.vfs.inode import Inode
from snakevisor.vfs.permissions import MAY_EXEC, MAY_READ, MAY_WRITE, check

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File
    from snakevisor.vfs.inode import Filesystem, Stat

MAXSYMLINKS = 40
#: what a creating or removing call answers when its last component is "." or ".."
_DOT_ERRORS = {"mkdir": 17, "rmdir": 22, "unlink": 21, "rename": 16}  # EEXIST EINVAL EISDIR EBUSY
_DOTDOT_ERRORS = {"mkdir": 17, "rmdir": 39, "unlink": 21, "rename": 16}  # ... ENOTEMPTY ...
CAP_CHOWN, CAP_FOWNER, CAP_MKNOD = 0, 3, 27


def _has_cap(task: "Task", cap: int) -> bool:
    from snakevisor.syscalls.sys_cred import has_cap
    return has_cap(task, cap)
O_ACCMODE, O_CREAT, O_EXCL, O_NOFOLLOW = 0o3, 0o100, 0o200, 0o400000
O_DIRECTORY, O_PATH, O_TRUNC = 0o200000, 0o10000000, 0o1000

class SentryDirFile(DirectoryFile):
    """An open directory of a sentry file system, remembering its path (for *at calls)."""

    def __init__(self, inode: Inode, task: "Task", flags: int, path: bytes) -> None:
        super().__init__(inode, task, flags)
        self.path = path.decode(errors="surrogateescape")
        self.is_dir = True


class SandboxRoot:
    """HostRoot's interface, with sentry file systems mounted at fixed places."""

    def __init__(self, host: HostRoot, mounts: "dict[bytes, Filesystem]") -> None:
        self.host = host
        self.mounts = mounts
        self._points = sorted(mounts, key=len, reverse=True)

    def __getattr__(self, name: str):
        return getattr(self.host, name)

    # -- routing -----------------------------------------------------------------------------
    def _absolute(self, task: "Task", dirfd: int, path: bytes) -> bytes | None:
        """The normalised absolute text of an application path, when it can be known."""
        if path[:1] == b"/":
            base = b""
        elif dirfd == AT_FDCWD:
            base = os.fsencode(task.tg.fs.cwd)
        else:
            file = task.tg.fds.files.get(dirfd)
            if file is None:
                raise SyscallError(EBADF)
            if not getattr(file, "is_dir", False):
                raise SyscallError(ENOTDIR)
            base = os.fsencode(file.path)
            if base is None:
                return None
        text = base + b"/" + path if base else path
        if b"/." in text or b"//" in text or text.endswith(b"/"):  # the rare, slow case
            text = posixpath.normpath(text) if path else base
            if text.startswith(b"//"):
                text = b"/" + text.lstrip(b"/")
        return text

    def _mount_of(self, text: bytes | None) -> tuple["Filesystem", bytes, bytes] | None:
        if text is None:
            return None
        for point in self._points:  # the deepest mount point first
            if text == point or text.startswith(point + b"/") or point == b"/":
                return self.mounts[point], point, text[len(point):].lstrip(b"/")
        return None

    def _crosses_mount(self, task: "Task", dirfd: int, path: bytes) -> bool:
        """Does the path's text pass through a mount point before `..` leaves it?"""
        if path[:1] != b"/" and dirfd == AT_FDCWD:
            path = os.fsencode(task.tg.fs.cwd) + b"/" + path
        elif path[:1] != b"/":
            return False
        return any(path.startswith(point + b"/") for point in self._points)

    def mount_records(self) -> list:
        """The mount table as /proc/PID/mountinfo shows it: the root, then each mount."""
        from snakevisor.fsimpl.procfs.mounts import MountRecord
        st = os.stat(self.host.root_dir)
        ro = "rw" if self.host.writable else "ro"
        overlay = self.mounts.get(b"/")
        if overlay is not None:
            records = [MountRecord(1, 0, 0, overlay.dev & 0xFF, "/", "/", "rw,relatime",
                                   "overlay", "overlay", "rw," + overlay.options)]
        else:
            records = [MountRecord(1, 0, os.major(st.st_dev), os.minor(st.st_dev), "/", "/",
                                   ro + ",relatime", "rootfs", "rootfs", ro)]
        for i, point in enumerate(sorted(self.mounts, key=len), start=2):
            if point == b"/":
                continue
            fs = self.mounts[point]
            parent = max((j for j, p in enumerate(sorted(self.mounts, key=len), start=2)
                          if point.startswith(p + b"/")), default=1)
            flags = "rw,nosuid,nodev,noexec,relatime" if fs.fstype in ("proc", "sysfs") \
                else "rw,nosuid,relatime"
            if fs.fstype == "bind":
                flags = fs.options + ",relatime"
            records.append(MountRecord(i, parent, os.major(fs.dev), os.minor(fs.dev), "/",
                                       point.decode(errors="replace"), flags,
                                       "ext4" if fs.fstype == "bind" else fs.fstype, fs.source,
                                       _super_options(fs)))
        return records

    def _route(self, task: "Task", dirfd: int, path: bytes):
        return self._mount_of(self._absolute(task, dirfd, path))

    def _walk(self, task: "Task", fs: "Filesystem", point: bytes, rest: bytes, follow: bool,
              links: int = 0, policy: "Resolve | None" = None
              ) -> tuple[Inode, bytes] | tuple[None, bytes]:
        """Walk `rest` inside fs.  Returns (inode, its path) or (None, a path that left the
        mount, to be routed again)."""
        node = fs.root()
        parts = [p for p in rest.split(b"/") if p]
        here: list[bytes] = []
        while parts:
            name = parts.pop(0)
            if not node.is_dir:
                raise SyscallError(ENOTDIR)
            check(task, node.mode, node.uid, node.gid, MAY_EXEC)
            if name == b".":
                continue
            if name == b"..":
                if not here:
                    if point == b"/":
                        continue  # `..` of the root is the root
                    return None, b"/".join([posixpath.dirname(point) or b"/"] + parts)
                here.pop()
                node = self._reach(task, fs, here)
                continue
            child = node.lookup(task, name)
            if child is None:
                raise SyscallError(ENOENT)
            if child.is_symlink and not parts and follow and _magic_file(child) is not None:
                if policy is not None:
                    policy.check_link(child)
                node = child  # /proc/PID/fd/N: the open file itself, not its name
                here.append(name)
                break
            if child.is_symlink and (parts or follow):
                links += 1
                if links > MAXSYMLINKS:
                    raise SyscallError(ELOOP)
                if policy is not None:
                    policy.check_link(child)
                target = child.readlink(task)
                if target[:1] == b"/":
                    if policy is not None:
                        target = policy.absolute_target(target)
                    return None, b"/".join([target] + parts)
                # Relative: continue from the link's directory by its path, routed again, so
                # a target inside another mount (/etc/mtab -> ../proc/self/mounts) reaches it.
                base = point.rstrip(b"/") + b"/" + b"/".join(here) if here else point
                return None, b"/".join([base.rstrip(b"/") or b"", target] + parts) or b"/"
            node = child
            here.append(name)
        return node, point.rstrip(b"/") + b"/" + b"/".join(here) if here else point

    def _reach(self, task: "Task", fs: "Filesystem", names: list[bytes]) -> Inode:
        node = fs.root()
        for name in names:
            nxt = node.lookup(task, name)
            if nxt is None:
                raise SyscallError(ENOENT)
            node = nxt
        return node

    def _resolve(self, task: "Task", dirfd: int, path: bytes, follow: bool = True,
                 policy: "Resolve | None" = None):
        """(inode, path) inside a sentry fs, or (None, host path) for the host."""
        if not path:
            raise SyscallError(ENOENT)
        if policy is not None:
            return self._resolve_confined(task, dirfd, path, follow, policy)
        text = self._absolute(task, dirfd, path)
        routed = self._mount_of(text)
        if routed is None and text is not None and b".." in path and \
                self._crosses_mount(task, dirfd, path):
            path, dirfd = text, AT_FDCWD  # e.g. /mnt/vol/..: the host never saw /mnt/vol
        for _ in range(MAXSYMLINKS):
            if routed is None:
                return None, path
            fs, point, rest = routed
            node, where = self._walk(task, fs, point, rest, follow)
            if node is not None:
                if path.endswith(b"/") and not node.is_dir:
                    raise SyscallError(ENOTDIR)  # a trailing slash names a directory
                return node, where
            path, dirfd = where, AT_FDCWD
            routed = self._mount_of(self._absolute(task, AT_FDCWD, where))
        raise SyscallError(ELOOP)

    def _resolve_confined(self, task: "Task", dirfd: int, path: bytes, follow: bool,
                          policy: "Resolve"):
        """openat2's RESOLVE_* rules on top of the walk (sentry file systems only)."""
        base = self._absolute(task, dirfd, b".")
        if base is None:
            raise SyscallError(EBADF)
        policy.base = base
        start = self._mount_of(base)
        text = policy.start_text(path)
        for _ in range(MAXSYMLINKS):
            policy.check_inside(text)
            routed = self._mount_of(self._absolute(task, AT_FDCWD, text))
            if routed is None:
                task.kernel.warn_once("openat2:host", "openat2 RESOLVE_* on the host root "
                                      "(--overlay2 none) is not supported -> EINVAL")
                raise SyscallError(EINVAL)
            fs, point, rest = routed
            if policy.no_xdev and start is not None and fs is not start[0]:
                raise SyscallError(EXDEV)
            node, where = self._walk(task, fs, point, rest, follow, policy=policy)
            if node is not None:
                return node, where
            text = where
        raise SyscallError(ELOOP)

    def open_resolved(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int,
                      resolve: int) -> "File":
        """openat2 with RESOLVE_* flags."""
        if not path:
            raise SyscallError(ENOENT)
        try:
            node, where = self._resolve(task, dirfd, path, not flags & O_NOFOLLOW,
                                        Resolve(resolve))
        except SyscallError as e:
            if e.errno != ENOENT or not flags & O_CREAT:
                raise
            head, _, name = path.rstrip(b"/").rpartition(b"/")
            _, parent = self._resolve(task, dirfd, head or b".", True, Resolve(resolve))
            return self.open(task, AT_FDCWD, parent.rstrip(b"/") + b"/" + name, flags, mode)
        return self.open(task, AT_FDCWD, where,
                         (flags | O_NOFOLLOW) if node.is_symlink else flags, mode)

    # -- HostRoot's interface ----------------------------------------------------------------
    def open(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int) -> "File":
        try:
            node, where = self._resolve(task, dirfd, path, not flags & O_NOFOLLOW)
        except SyscallError as e:
            if e.errno == ENOENT and flags & O_CREAT and self._route(task, dirfd, path):
                return self._create(task, dirfd, path, flags, mode)
            raise
        if node is None:
            return self.host.open(task, dirfd if where is path else AT_FDCWD, where, flags, mode)
        target = _magic_file(node) if not flags & O_PATH else None
        if target is not None:
            return self._reopen(task, target, flags)
        if flags & O_CREAT and flags & O_EXCL:
            from snakevisor.kernel.errors import EEXIST
            raise SyscallError(EEXIST)
        if flags & O_DIRECTORY and not node.is_dir:
            raise SyscallError(ENOTDIR)
        if node.is_symlink:
            if flags & O_PATH:
                return _PathFile(node, where)
            raise SyscallError(ELOOP)
        if flags & O_PATH:
            return _PathFile(node, where)
        acc = flags & O_ACCMODE
        if node.is_dir:
            if acc != 0 or flags & O_CREAT:
                raise SyscallError(EISDIR)
            check(task, node.mode, node.uid, node.gid, MAY_READ)
            return SentryDirFile(node, task, flags, where)
        need = (MAY_READ if acc in (0, 2) else 0) | (MAY_WRITE if acc in (1, 2) else 0)
        check(task, node.mode, node.uid, node.gid, need)
        file = node.open(task, flags)
        file.path = where.decode(errors="surrogateescape")
        return file

    def stat(self, task: "Task", dirfd: int, path: bytes, follow: bool = True):
        node, where = self._resolve(task, dirfd, path, follow)
        if node is None:
            return self.host.stat(task, dirfd if where is path else AT_FDCWD, where, follow)
        target = _magic_file(node) if follow else None
        return target.stat() if target is not None else node.stat()

    def _reopen(self, task: "Task", file: "File", flags: int) -> "File":
        """open(/proc/PID/fd/N): a new description of a host file, checked like any open;
        other kinds (pipes, the terminal) share the existing description (INTERIM)."""
        if isinstance(file, HostFile):
            pfd = os.open(f"/proc/self/fd/{file.fd}", os.O_PATH | os.O_CLOEXEC)
            try:
                return self.host._reopen(task, pfd, flags & ~(O_CREAT | O_EXCL))
            finally:
                os.close(pfd)
        return file

    def statx(self, task: "Task", dirfd: int, path: bytes, flags: int, mask: int) -> bytes:
        node, where = self._resolve(task, dirfd, path, not flags & 0x100)
        if node is None:
            return self.host.statx(task, dirfd if where is path else AT_FDCWD, where, flags, mask)
        from snakevisor.syscalls.sys_file import pack_statx
        target = _magic_file(node) if not flags & 0x100 else None
        if isinstance(target, HostFile):
            return target.statx(flags, mask)
        return pack_statx(target.stat() if target is not None else node.stat())

    def readlink(self, task: "Task", dirfd: int, path: bytes) -> bytes:
        node, where = self._resolve(task, dirfd, path, False)
        if node is None:
            return self.host.readlink(task, dirfd if where is path else AT_FDCWD, where)
        from snakevisor.kernel.errors import EINVAL
        if not node.is_symlink:
            raise SyscallError(EINVAL)
        return node.readlink(task)

    def access_at(self, task: "Task", dirfd: int, path: bytes, mode: int, effective: bool,
                  follow: bool) -> None:
        node, where = self._resolve(task, dirfd, path, follow)
        if node is None:
            return self.host.access_at(task, dirfd if where is path else AT_FDCWD, where, mode,
                                       effective, follow)
        if not mode:
            return  # F_OK: it exists
        if mode & 2 and not getattr(node.fs, "writable", True) and not (
                st_.S_ISCHR(node.mode) or st_.S_ISBLK(node.mode) or st_.S_ISFIFO(node.mode)
                or st_.S_ISSOCK(node.mode)):
            raise SyscallError(EROFS)
        if mode & 2 and getattr(node, "no_write", False):
            raise SyscallError(EACCES)
        creds = task.tg.creds
        saved = creds.fsuid, creds.fsgid
        if not effective:  # access(2) asks with the real ids
            creds.fsuid, creds.fsgid = creds.ruid, creds.rgid
        try:
            check(task, node.mode, node.uid, node.gid, (mode & 4) | (mode & 2) | (mode & 1))
        finally:
            creds.fsuid, creds.fsgid = saved

    def resolve_dir(self, task: "Task", path: bytes) -> str:
        node, where = self._resolve(task, AT_FDCWD, path)
        if node is None:
            return self.host.resolve_dir(task, where)
        if not node.is_dir:
            raise SyscallError(ENOTDIR)
        check(task, node.mode, node.uid, node.gid, MAY_EXEC)
        return where.decode(errors="surrogateescape")

    def lookup(self, task: "Task", dirfd: int, path: bytes, follow: bool = True,
               directory: bool = False) -> int:
        """An O_PATH host fd of what the path names, for the calls that work on host objects
        (extended attributes): a volume's file through its own confined root; objects of the
        sentry's own file systems have no host side (EOPNOTSUPP)."""
        node, where = self._resolve(task, dirfd, path, follow)
        if node is None:
            return self.host.lookup(task, dirfd if where is path else AT_FDCWD, where, follow,
                                    directory)
        host_of = getattr(node.fs, "host", None)
        host_path = getattr(node, "path", None)
        if isinstance(host_of, HostRoot) and isinstance(host_path, bytes):
            return host_of.lookup(task, AT_FDCWD, host_path, False, directory)
        raise SyscallError(EOPNOTSUPP)

    def statfs(self, task: "Task", path: bytes) -> bytes:
        node, where = self._resolve(task, AT_FDCWD, path)
        if node is None:
            return self.host.statfs(task, where)
        return node.fs.statfs()

    # -- changes: names in sentry file systems ---------------------------------------------
    def _parent(self, task: "Task", dirfd: int, path: bytes, write: bool = True,
                what: str = ""):
        """(directory inode, its path, last name) for a routed path, or None for the host;
        checks search and (for changes) write permission on the directory."""
        last = path.rstrip(b"/").rpartition(b"/")[2]
        if last in (b".", b"..") or not path.rstrip(b"/"):
            raise SyscallError(_DOT_ERRORS.get(what, EINVAL) if last == b"." or not last
                               else _DOTDOT_ERRORS.get(what, ENOTEMPTY))
        routed = self._route(task, dirfd, path)
        if routed is None:
            return None
        fs, point, rest = routed
        head, _, name = rest.rstrip(b"/").rpartition(b"/")
        if not name:
            raise SyscallError(EBUSY)  # the mount point itself
        node, where = self._walk(task, fs, point, head, True)
        if node is None:
            raise SyscallError(EXDEV)  # the parent lies in another file system
        if not node.is_dir:
            raise SyscallError(ENOTDIR)
        check(task, node.mode, node.uid, node.gid, MAY_EXEC | (MAY_WRITE if write else 0))
        if name in (b".", b".."):
            raise SyscallError(EINVAL if name == b"." else ENOTEMPTY)
        return node, where, name

    def _sticky(self, task: "Task", dir_: Inode, victim: Inode) -> None:
        """A sticky directory lets only the owner of a name (or of the directory) remove it."""
        fsuid = task.tg.creds.fsuid
        if dir_.mode & st_.S_ISVTX and fsuid not in (dir_.uid, victim.uid) \
                and not _has_cap(task, CAP_FOWNER):
            raise SyscallError(EPERM)

    def _create(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int) -> "File":
        parent = self._parent(task, dirfd, path)
        assert parent is not None
        dir_, where, name = parent
        if path.endswith(b"/"):
            raise SyscallError(EISDIR)
        node = dir_.create(task, name, mode & ~task.tg.umask & 0o7777)
        file = node.open(task, flags & ~O_TRUNC)
        file.path = (where + b"/" + name).decode(errors="surrogateescape")
        return file

    def mkdir(self, task: "Task", dirfd: int, path: bytes, mode: int) -> None:
        parent = self._parent(task, dirfd, path, what="mkdir")
        if parent is None:
            return self.host.mkdir(task, dirfd, path, mode)
        dir_, _, name = parent
        dir_.mkdir(task, name, mode & ~task.tg.umask & 0o7777)

    def mknod(self, task: "Task", dirfd: int, path: bytes, mode: int, rdev: int) -> None:
        parent = self._parent(task, dirfd, path)
        if parent is None:
            return self.host.mknod(task, dirfd, path, mode, rdev)
        dir_, _, name = parent
        kind = st_.S_IFMT(mode)
        if kind in (st_.S_IFCHR, st_.S_IFBLK) and not _has_cap(task, CAP_MKNOD):
            raise SyscallError(EPERM)
        dir_.mknod(task, name, kind | (mode & ~task.tg.umask & 0o7777), rdev)

    def unlink(self, task: "Task", dirfd: int, path: bytes, rmdir: bool) -> None:
        parent = self._parent(task, dirfd, path, what="rmdir" if rmdir else "unlink")
        if parent is None:
            return self.host.unlink(task, dirfd, path, rmdir)
        dir_, _, name = parent
        victim = dir_.lookup(task, name)
        if victim is None:
            raise SyscallError(ENOENT)
        if rmdir and not victim.is_dir:
            raise SyscallError(ENOTDIR)
        if not rmdir and path.endswith(b"/"):
            raise SyscallError(EISDIR if victim.is_dir else ENOTDIR)
        self._sticky(task, dir_, victim)
        if rmdir:
            dir_.rmdir(task, name)
        else:
            dir_.unlink(task, name)

    def rename(self, task: "Task", olddirfd: int, old: bytes, newdirfd: int, new: bytes,
               flags: int) -> None:
        if flags & ~7 or (flags & 2 and flags & 5):  # NOREPLACE 1, EXCHANGE 2, WHITEOUT 4
            raise SyscallError(EINVAL)
        src = self._parent(task, olddirfd, old, what="rename")
        dst = self._parent(task, newdirfd, new, what="rename")
        if src is None and dst is None:
            return self.host.rename(task, olddirfd, old, newdirfd, new, flags)
        if src is None or dst is None or src[0].fs is not dst[0].fs:
            raise SyscallError(EXDEV)
        victim = src[0].lookup(task, src[2])
        if victim is None:
            raise SyscallError(ENOENT)
        if not victim.is_dir and (old.endswith(b"/") or new.endswith(b"/")):
            raise SyscallError(ENOTDIR)
        self._sticky(task, src[0], victim)
        src[0].rename(task, src[2], dst[0], dst[2], flags)

    def symlink(self, task: "Task", target: bytes, dirfd: int, path: bytes) -> None:
        parent = self._parent(task, dirfd, path)
        if parent is None:
            return self.host.symlink(task, target, dirfd, path)
        dir_, _, name = parent
        dir_.symlink(task, name, target)

    def link(self, task: "Task", olddirfd: int, old: bytes, newdirfd: int, new: bytes,
             flags: int) -> None:
        dst = self._parent(task, newdirfd, new)
        node, _ = self._resolve(task, olddirfd, old, bool(flags & 0x400))  # AT_SYMLINK_FOLLOW
        if dst is None and node is None:
            return self.host.link(task, olddirfd, old, newdirfd, new, flags)
        if dst is None or node is None or node.fs is not dst[0].fs:
            raise SyscallError(EXDEV)
        if node.is_dir:
            raise SyscallError(EPERM)
        dst[0].link(task, dst[2], node)

    def chmod(self, task: "Task", dirfd: int, path: bytes, mode: int) -> None:
        node, where = self._resolve(task, dirfd, path)
        if node is None:
            return self.host.chmod(task, dirfd if where is path else AT_FDCWD, where, mode)
        InodeAttrs(task, node).chmod(mode)

    def chown(self, task: "Task", dirfd: int, path: bytes, uid: int, gid: int, follow: bool) -> None:
        node, where = self._resolve(task, dirfd, path, follow)
        if node is None:
            return self.host.chown(task, dirfd if where is path else AT_FDCWD, where, uid, gid, follow)
        InodeAttrs(task, node).chown(uid, gid)

    def utimens(self, task: "Task", dirfd: int, path: bytes, times: bytes | None, follow: bool) -> None:
        node, where = self._resolve(task, dirfd, path, follow)
        if node is None:
            return self.host.utimens(task, dirfd if where is path else AT_FDCWD, where, times, follow)
        InodeAttrs(task, node).utimens(times)

    def truncate(self, task: "Task", path: bytes, length: int) -> None:
        node, where = self._resolve(task, AT_FDCWD, path)
        if node is None:
            return self.host.truncate(task, where, length)
        if node.is_dir:
            raise SyscallError(EISDIR)
        check(task, node.mode, node.uid, node.gid, MAY_WRITE)
        node.setattr(task, size=length)

    def reopen(self, task: "Task", fd: int) -> HostFile:
        return self.host.reopen(task, fd)

    def dir_file(self, task: "Task", dirfd: int) -> HostFile:
        file = task.tg.fds.get(dirfd)
        if isinstance(file, SentryDirFile):
            raise SyscallError(EBADF)  # host walks cannot start in a sentry directory
        return self.host.dir_file(task, dirfd)


class _PathFile(DirectoryFile):
    """An O_PATH open of a sentry object: it names the place, nothing more."""

    def __init__(self, node: Inode, where: bytes) -> None:
        super().__init__(node, None, O_PATH)  # type: ignore[arg-type]
        self.path = where.decode(errors="surrogateescape")
        self.is_dir = node.is_dir

    def stat(self) -> "Stat":  # type: ignore[override]
        return self.inode.stat()

    def getdents(self, count: int) -> bytes:
        raise SyscallError(EBADF)

    def read(self, task: "Task", count: int) -> bytes:
        raise SyscallError(EBADF)  # an O_PATH descriptor reads nothing

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        raise SyscallError(EBADF)


def _magic_file(node: Inode) -> "File | None":
    """The open file a /proc/PID/fd/N link stands for (None for other nodes)."""
    target = getattr(node, "open_fd", None)
    if target is None:
        return None
    tg, fd = target
    return tg.fds.files.get(fd)


class InodeAttrs:
    """chmod/chown/utimens of a sentry inode with Linux's permission rules (the path and
    the fd forms share it; HostFile offers the same three methods for host files)."""

    def __init__(self, task: "Task", node: Inode) -> None:
        self.task, self.node = task, node

    def _owned(self) -> None:
        if self.task.tg.creds.fsuid != self.node.uid and not _has_cap(self.task, CAP_FOWNER):
            raise SyscallError(EPERM)

    def chmod(self, mode: int) -> None:
        self._owned()
        self.node.setattr(self.task, mode=mode & 0o7777)

    def chown(self, uid: int, gid: int) -> None:
        node, creds = self.node, self.task.tg.creds
        changes_owner = uid not in (0xFFFFFFFF, node.uid)
        gid_ok = gid in (0xFFFFFFFF, node.gid) or (creds.fsuid == node.uid and
                                                  (gid == creds.fsgid or gid in creds.groups))
        if (changes_owner or not gid_ok) and not _has_cap(self.task, CAP_CHOWN):
            raise SyscallError(EPERM)
        node.setattr(self.task, uid=uid, gid=gid)

    def utimens(self, times: bytes | None) -> None:
        from snakevisor.fsimpl.hostfs import UTIME_NOW, UTIME_OMIT, check_times
        node = self.node
        check_times(times)
        stamps = [(0, UTIME_NOW), (0, UTIME_NOW)] if times is None else [
            (int.from_bytes(times[o:o + 8], "little", signed=True),
             int.from_bytes(times[o + 8:o + 16], "little", signed=True)) for o in (0, 16)]
        if any(ns not in (UTIME_NOW, UTIME_OMIT) for _, ns in stamps):
            self._owned()  # explicit times: the owner only
        elif self.task.tg.creds.fsuid != node.uid:
            check(self.task, node.mode, node.uid, node.gid, MAY_WRITE)
        now = time.time_ns()
        atime, mtime = (None if ns == UTIME_OMIT else now if ns == UTIME_NOW
                        else sec * 1_000_000_000 + ns for sec, ns in stamps)
        node.set_times(self.task, atime, mtime)


def attr_target(task: "Task", file: "File") -> "InodeAttrs | None":
    """The attribute changer for an fd of a sentry file system (None: not one)."""
    node = getattr(file, "attr_inode", None) or getattr(file, "inode", None)
    return InodeAttrs(task, node) if isinstance(node, Inode) else None


def _super_options(fs: "Filesystem") -> str:
    """A superblock's options as mountinfo prints them: rw/ro first, then the fs's own."""
    if fs.fstype == "bind":
        return "rw"
    if fs.options.startswith(("rw", "ro")):
        return fs.options.split(",")[0]
    return "rw" + ("," + fs.options if fs.options else "")


RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x01, 0x02, 0x04
RESOLVE_BENEATH, RESOLVE_IN_ROOT = 0x08, 0x10


class Resolve:
    """openat2's resolve flags as rules on the walk's path texts.  BENEATH refuses to leave
    the starting directory (EXDEV); IN_ROOT treats it as the root (absolute paths and
    symlink targets start there, `..` stops there)."""

    def __init__(self, flags: int) -> None:
        self.no_xdev = bool(flags & RESOLVE_NO_XDEV)
        self.no_magic = bool(flags & RESOLVE_NO_MAGICLINKS)
        self.no_symlinks = bool(flags & RESOLVE_NO_SYMLINKS)
        self.beneath = bool(flags & RESOLVE_BENEATH)
        self.in_root = bool(flags & RESOLVE_IN_ROOT)
        self.base = b"/"

    def _join(self, text: bytes) -> bytes:
        inside = posixpath.normpath(b"/" + text)  # `..` cannot climb above its "/"
        return posixpath.normpath(self.base + inside) if self.base != b"/" else inside

    def start_text(self, path: bytes) -> bytes:
        if self.in_root:
            return self._join(path)
        if self.beneath and path[:1] == b"/":
            raise SyscallError(EXDEV)
        return posixpath.normpath(self.base + b"/" + path) if path[:1] != b"/" else path

    def check_inside(self, text: bytes) -> None:
        if (self.beneath or self.in_root) and self.base != b"/":
            norm = posixpath.normpath(text)
            if norm != self.base and not norm.startswith(self.base.rstrip(b"/") + b"/"):
                raise SyscallError(EXDEV)

    def check_link(self, node: Inode) -> None:
        if self.no_symlinks:
            raise SyscallError(ELOOP)
        if self.no_magic and _is_magic(node):
            raise SyscallError(ELOOP)

    def absolute_target(self, target: bytes) -> bytes:
        if self.in_root:
            return self._join(target)
        if self.beneath:
            raise SyscallError(EXDEV)
        return target


def _is_magic(node: Inode) -> bool:
    """procfs's links that jump to objects (fd/N, exe, cwd, root), not its plain ones."""
    if _magic_file(node) is not None:
        return True
    return getattr(node.fs, "fstype", "") == "proc" and node.ino not in (2, 3, 4)
