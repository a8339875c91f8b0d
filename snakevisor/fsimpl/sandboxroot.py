"""The root the application sees: the sandbox's own file systems (the root — the overlay or
a host directory —, procfs, sysfs, devfs, tmpfs, volumes) mounted at their places.

Every path is walked here one component at a time, as Linux's namei does: a trail of
places (canonical path text, inode) from the root to where the walk is, so `..` steps
back along the trail (into the mount below when it leaves a mount's root) and never
judges a name it has not looked up; a mount is entered when the walk reaches its
point; symlinks are read and their text walked from the link's directory (or the root),
at most 40 per call; search permission is checked on every directory.

One SandboxRoot is one mount namespace.  Mounts are keyed by the text of their point.  The
working directory and each directory fd are *held places* (Anchor, Linux's struct path): the
trail to the directory, so a relative walk starts at the directory object itself.  The root
keeps every held trail current: a rename of a directory at or above one walks it again at
its new name (so `..` is the real parent and getcwd, /proc/PID/cwd and /proc/PID/fd/N show
the name now), a removal marks it removed (getcwd ENOENT, "(deleted)" links, no lookups or
creations in it).  Changes made on the host in a volume are asked of the directory itself
when a held place is used: an inode that knows where it is now (`location()`: a host
directory's O_PATH fd follows it) has its trail walked again; one that cannot tell keeps the
trail it was reached by.
"""
from __future__ import annotations

import errno
import os
import stat as st_
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Callable, Iterable, NamedTuple

from snakevisor.fsimpl.hostfs import VALID_OPEN_FLAGS, HostFile
from snakevisor.kernel.errors import (EACCES, EBADF, EBUSY, EEXIST, EINVAL, EISDIR, ELOOP,
                                      ENAMETOOLONG, ENOENT, ENOTDIR, ENOTEMPTY, EOPNOTSUPP, EPERM,
                                      EROFS, EXDEV, SyscallError)
from snakevisor.syscalls.args import AT_FDCWD
from snakevisor.vfs.dirfile import DirectoryFile
from snakevisor.vfs.inode import Filesystem, Inode
from snakevisor.vfs.permissions import MAY_EXEC, MAY_READ, MAY_WRITE, check

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File
    from snakevisor.vfs.inode import Stat

ENODATA = errno.ENODATA
MAXSYMLINKS, NAME_MAX = 40, 255
CAP_CHOWN, CAP_FOWNER, CAP_SYS_ADMIN, CAP_MKNOD = 0, 3, 21, 27
O_ACCMODE, O_CREAT, O_EXCL, O_NOFOLLOW = 0o3, 0o100, 0o200, 0o400000
O_DIRECTORY, O_PATH, O_TRUNC, O_TMPFILE_BIT = 0o200000, 0o10000000, 0o1000, 0o20000000
O_TMPFILE = O_TMPFILE_BIT | O_DIRECTORY
AT_SYMLINK_FOLLOW = 0x400
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
#: what each name-changing call answers for a last component of ".", ".." or none ("/")
_DOTS = {  # call: (".", "..", "/")
    "create": (EEXIST, EEXIST, EEXIST),  # mkdir, mknod, symlink, link (filename_create)
    "rmdir": (EINVAL, ENOTEMPTY, EBUSY),
    "unlink": (EISDIR, EISDIR, EISDIR),
}


def _has_cap(task: "Task", cap: int) -> bool:
    from snakevisor.syscalls.sys_cred import has_cap
    return has_cap(task, cap)


def _join(path: bytes, name: bytes) -> bytes:
    return path + b"/" + name if path != b"/" else b"/" + name


def _within(path: bytes, top: bytes) -> bool:
    """Is canonical `path` the directory `top` or below it?"""
    return path == top or path.startswith(top + b"/")


class Place(NamedTuple):
    """One step of a walk: where it is (canonical absolute text) and what is there."""

    path: bytes
    node: Inode


class Anchor:
    """A directory a process holds — its working directory, an open directory fd — as Linux's
    struct path: the trail from the root to the directory (current names; the SandboxRoot
    that made it rewrites it when a directory on it is renamed) and whether it was removed.
    Shared by every holder of the same place (fork, dup, fchdir), so one update serves all."""

    __slots__ = ("root", "trail", "removed", "locate", "__weakref__")

    def __init__(self, root: "SandboxRoot", trail: Iterable[Place]) -> None:
        self.root = root
        self.removed = False
        self.trail: tuple[Place, ...] = ()
        #: the directory's own answer to "where are you now inside your file system"
        #: (None: removed), if its inode can tell (host-backed ones)
        self.locate: "Callable[[], bytes | None] | None" = None
        self.reset(trail)

    def reset(self, trail: Iterable[Place]) -> None:
        self.trail = tuple(trail)
        self.locate = getattr(self.trail[-1].node, "location", None)

    @property
    def path(self) -> bytes:
        """The canonical path as last known (see `current` for host-side changes)."""
        return self.trail[-1].path

    @property
    def text(self) -> str:
        return self.trail[-1].path.decode(errors="surrogateescape")

    def current(self, task: "Task | None") -> "Anchor":
        """This place, after asking a host-backed directory whether the host moved it."""
        if self.locate is not None and not self.removed:
            self.root.follow(task, self)
        return self

    def getcwd(self, task: "Task | None") -> bytes:
        """getcwd(2)'s answer: the path now, ENOENT once the directory is removed."""
        if self.current(task).removed:
            raise SyscallError(ENOENT)
        return self.path

    def link(self, task: "Task | None") -> str:
        """What /proc/PID/cwd and /proc/PID/fd/N read: the path now, "(deleted)" if removed."""
        self.current(task)
        return self.text + " (deleted)" if self.removed else self.text


class _HeldDir(DirectoryFile):
    """An open directory (or O_PATH fd) of a sentry file system that holds its place: *at
    calls start at the directory itself and its link text is where it is now."""

    def __init__(self, inode: Inode, task: "Task | None", flags: int, where: bytes,
                 anchor: Anchor | None, parent_ino: int | None) -> None:
        self.anchor = anchor
        super().__init__(inode, task, flags, parent_ino)  # type: ignore[arg-type]
        self._path = where.decode(errors="surrogateescape")

    @property  # type: ignore[override]
    def path(self) -> str:
        anchor = self.anchor
        return self._path if anchor is None else anchor.link(self.task)

    @path.setter
    def path(self, value: str) -> None:
        self._path = value

    def dotdot_ino(self) -> int:
        """getdents' `..`: the directory's parent now (it may have moved since the open)."""
        anchor = self.anchor
        if anchor is None:
            return self.parent_ino
        ino = anchor.root._parent_ino(list(anchor.trail))
        return self.inode.ino if ino is None else ino


class SentryDirFile(_HeldDir):
    """An open directory of a sentry file system."""

    def __init__(self, inode: Inode, task: "Task", flags: int, where: bytes,
                 anchor: Anchor | None = None, parent_ino: int | None = None) -> None:
        super().__init__(inode, task, flags, where, anchor, parent_ino)
        self.is_dir = True

    def getdents(self, count: int) -> bytes:
        if self.anchor is not None and self.anchor.current(self.task).removed:
            raise SyscallError(ENOENT)  # iterate_dir on a dead directory
        return super().getdents(count)


class _Lookup:
    """One call's walk state: symlinks followed so far, openat2's RESOLVE_* rules
    (`scope`: the trail of the starting directory when BENEATH/IN_ROOT confine the walk),
    and whether the walk started in a removed directory."""

    __slots__ = ("links", "policy", "scope", "dead")

    def __init__(self, policy: "Resolve | None" = None) -> None:
        self.links = 0
        self.policy = policy
        self.scope: list[Place] | None = None
        #: the starting place when it is a removed directory: nothing is looked up or made
        #: in it (ENOENT), though `.` and `..` still work
        self.dead: Place | None = None

    def count_link(self) -> None:
        self.links += 1
        if self.links > MAXSYMLINKS:
            raise SyscallError(ELOOP)


#: the per-mount flags the VFS enforces (MNT_NOSUID, MNT_NODEV, MNT_NOEXEC), in the order
#: mountinfo prints them
NOSUID, NODEV, NOEXEC = "nosuid", "nodev", "noexec"
MOUNT_FLAG_NAMES = (NOSUID, NODEV, NOEXEC)
NO_FLAGS: frozenset[str] = frozenset()
#: a tree built without flags (SandboxRoot(mounts) alone): each mount but the root gets
#: what a container runtime gives its file-system type, nosuid for the rest
_TYPE_FLAGS = {"proc": (NOSUID, NODEV, NOEXEC), "sysfs": (NOSUID, NODEV, NOEXEC),
               "devpts": (NOSUID, NOEXEC), "mqueue": (NOSUID, NODEV, NOEXEC)}


def _flag_set(flags: Iterable[str]) -> frozenset[str]:
    out = frozenset(flags)
    if out - set(MOUNT_FLAG_NAMES):
        raise ValueError(f"unknown mount flags {sorted(out - set(MOUNT_FLAG_NAMES))}")
    return out


def _show_flags(options: str, flags: frozenset[str]) -> str:
    """A mount's option column ("rw,relatime") with its flags after rw/ro, as Linux's
    show_mnt_opts orders them."""
    parts = [o for o in options.split(",") if o and o not in MOUNT_FLAG_NAMES]
    head = parts[:1] if parts[:1] in (["rw"], ["ro"]) else ["rw"]
    rest = parts[1:] if parts[:1] in (["rw"], ["ro"]) else parts
    return ",".join(head + [f for f in MOUNT_FLAG_NAMES if f in flags] + rest)


class SandboxRoot:
    """The sandbox's file-system tree: sentry file systems at fixed mount points."""

    def __init__(self, mounts: "dict[bytes, Filesystem]",
                 flags: "dict[bytes, Iterable[str]] | None" = None) -> None:
        self.mounts = mounts
        if flags is None:
            flags = {point: _TYPE_FLAGS.get(fs.fstype, (NOSUID,))
                     for point, fs in mounts.items() if point != b"/"}
        #: nosuid/nodev/noexec of each mount, by its point (a mount with none is absent):
        #: per mount, not per file system, since one tmpfs may be mounted in several roots
        self.flags: dict[bytes, frozenset[str]] = {
            point: _flag_set(f) for point, f in flags.items() if f}
        #: the flags of mounts an added mount covers (by id of the covered file system)
        self._covered_flags: dict[int, frozenset[str]] = {}
        if b"/" not in mounts:
            raise ValueError("the sandbox root needs a file system mounted at /")
        #: directories on the way to a mount point that its parent file system lacks (a
        #: runtime creates mount points; we may not write the root): empty stand-ins
        self._ways: dict[bytes, Inode | None] = {
            way: None for point in mounts for way in _ancestors(point)}
        #: every place a process holds (cwd, directory fds), kept current by rename/rmdir
        self._held: "weakref.WeakSet[Anchor]" = weakref.WeakSet()
        #: mounts made after the tree was built (add_mount), in the order they were made
        self._added: list[tuple[bytes, Filesystem]] = []

    # -- the walk ----------------------------------------------------------------------------
    def _root_trail(self) -> list[Place]:
        return [Place(b"/", self.mounts[b"/"].root())]

    def _child(self, task: "Task", here: Place, name: bytes) -> Place | None:
        """The place `name` leads to from a directory (a mount's root where one is mounted)."""
        path = _join(here.path, name)
        fs = self.mounts.get(path)
        if fs is not None:
            return Place(path, fs.root())
        if len(name) > NAME_MAX:
            raise SyscallError(ENAMETOOLONG)
        node = here.node.lookup(task, name)
        if node is None and path in self._ways:
            node = self._ways[path]
            if node is None:
                from snakevisor.fsimpl.synthetic import StaticDir
                node = self._ways[path] = StaticDir(_way_fs(), {}, mode=0o755)
        return None if node is None else Place(path, node)

    def _trail_of(self, task: "Task", text: bytes) -> list[Place]:
        """The trail to a canonical path the process already reached (its cwd, a dirfd)."""
        trail = self._root_trail()
        for name in text.split(b"/"):
            if name:
                nxt = self._child(task, trail[-1], name) if trail[-1].node.is_dir else None
                if nxt is None:
                    raise SyscallError(ENOENT)  # removed meanwhile
                trail.append(nxt)
        return trail

    # -- held places: the working directory and directory fds ---------------------------------
    def hold(self, trail: Iterable[Place]) -> Anchor:
        """A place a process keeps (chdir, an open directory), kept current from now on."""
        anchor = Anchor(self, trail)
        self._held.add(anchor)
        return anchor

    def _cwd(self, task: "Task") -> Anchor:
        fs = task.tg.fs
        anchor = fs.place
        if anchor is None:  # a cwd given as text (boot, tests): held from its first use
            anchor = fs.place = self.hold(self._trail_of(task, os.fsencode(fs.cwd)))
        return anchor

    def _base(self, task: "Task", dirfd: int, lk: _Lookup) -> list[Place]:
        """Where a relative path starts: the cwd or the directory a dirfd names."""
        if dirfd == AT_FDCWD:
            anchor = self._cwd(task)
        else:
            file = task.tg.fds.files.get(dirfd & 0xFFFFFFFF) if dirfd >= 0 else None
            if file is None:
                raise SyscallError(EBADF)
            if not getattr(file, "is_dir", False):
                raise SyscallError(ENOTDIR)
            anchor = getattr(file, "anchor", None)
            if anchor is None:
                return self._trail_of(task, os.fsencode(file.path))
        if anchor.locate is not None:
            anchor.current(task)
        if anchor.removed:
            lk.dead = anchor.trail[-1]
        return list(anchor.trail)

    def follow(self, task: "Task | None", anchor: Anchor) -> None:
        """Catch up with a change made on the host: ask the held directory where it is now
        inside its file system (None: removed) and walk its trail again to there when the
        answer differs from the trail's.  A directory that moved out of its mount, or that
        cannot be walked to at the new name, keeps the trail it has."""
        where = anchor.locate() if anchor.locate is not None else None
        trail = anchor.trail
        if where is None:
            anchor.removed = True
            self._held.discard(anchor)
            return
        top = next(i for i in range(len(trail) - 1, -1, -1)
                   if i == 0 or trail[i].path in self.mounts)
        if trail[top].node.fs is not trail[-1].node.fs:
            return  # not where the answer is measured from (a stand-in on the way)
        point = trail[top].path
        inside = trail[-1].path[len(point):] if point != b"/" else trail[-1].path
        if (inside or b"/") == where:
            return
        fresh = self._extend(task, list(trail[:top + 1]), where.split(b"/"))
        if fresh is not None and _same_object(fresh[-1].node, trail[-1].node):
            anchor.reset(fresh)

    def _extend(self, task: "Task | None", trail: list[Place], names: Iterable[bytes]
                ) -> list[Place] | None:
        """`trail` walked on by plain names (no permission checks, no links); None if one
        is missing."""
        for name in names:
            if name:
                if not trail[-1].node.is_dir:
                    return None
                nxt = self._child(task, trail[-1], name)  # type: ignore[arg-type]
                if nxt is None:
                    return None
                trail.append(nxt)
        return trail

    def _moved(self, task: "Task", old: bytes, new: bytes, exchange: bool) -> None:
        """After a rename of a directory: held places at or below `old` are now below `new`
        (and with RENAME_EXCHANGE the other way round); their trails are walked again from
        the deepest directory the rename left alone, so the nodes are the new names' own."""
        stay = min(old.count(b"/"), new.count(b"/")) - 1  # components above both ends
        for anchor in list(self._held):
            path = anchor.path
            if _within(path, old):
                text = new + path[len(old):]
            elif exchange and _within(path, new):
                text = old + path[len(new):]
            else:
                continue
            was, now = path.split(b"/")[1:], text.split(b"/")[1:]
            keep = 0
            while keep < stay and was[keep] == now[keep]:
                keep += 1
            fresh = self._extend(task, list(anchor.trail[:keep + 1]), now[keep:])
            if fresh is not None:  # (None only if the host raced us: keep the old trail)
                anchor.reset(fresh)

    def _removed(self, path: bytes) -> None:
        """After rmdir (or a rename over an empty directory): the places held there are dead."""
        for anchor in list(self._held):
            if anchor.path == path:
                anchor.removed = True
                self._held.discard(anchor)

    def _start(self, task: "Task", dirfd: int, path: bytes, lk: _Lookup) -> list[Place]:
        policy = lk.policy
        if policy is not None and (policy.beneath or policy.in_root):
            lk.scope = self._base(task, dirfd, lk)
            if path[:1] == b"/":
                return self._jump_root(lk, lk.scope)
            return list(lk.scope)
        if path[:1] == b"/":
            return self._jump_root(lk, None)
        return self._base(task, dirfd, lk)

    def _jump_root(self, lk: _Lookup, trail: list[Place] | None) -> list[Place]:
        """An absolute path or symlink target: the root (IN_ROOT: the starting directory)."""
        policy = lk.policy
        if policy is None:
            return self._root_trail()
        if policy.beneath:
            raise SyscallError(EXDEV)
        new = list(lk.scope) if policy.in_root and lk.scope is not None else self._root_trail()
        if policy.no_xdev and trail is not None and \
                self._mount_point(trail) != self._mount_point(new):
            raise SyscallError(EXDEV)
        return new

    def _parent_ino(self, trail: list[Place]) -> int | None:
        """What getdents shows for `..`: the parent's inode number, or (None) the
        directory's own at the root of a file system (a mount's root is its own parent)."""
        mount = self.mounts.get(trail[-1].path)
        if len(trail) >= 2 and isinstance(mount, BindMount) and mount.inner != b"/":
            return trail[-2].node.ino  # bound on itself: the file system's own parent
        if len(trail) < 2 or mount is not None:
            above = getattr(trail[-1].node, "parent_ino", None)  # a host directory's own `..`
            return above() if above is not None else None
        return trail[-2].node.ino

    def _mount_point(self, trail: list[Place]) -> bytes:
        return next(p.path for p in reversed(trail) if p.path in self.mounts)

    def mount_point_of(self, path: bytes) -> bytes:
        """The point of the mount a canonical path is in: the deepest one at or above it."""
        while path not in self.mounts:
            path = path.rpartition(b"/")[0] or b"/"
        return path

    def mount_of(self, path: bytes) -> "Filesystem":
        return self.mounts[self.mount_point_of(path)]

    def lookup_child(self, here: Place, name: bytes) -> Place | None:
        """One step of the walk for the runtime setting the tree up (no process yet, so no
        permission checks): a mount's root where one is mounted."""
        return self._child(None, here, name)  # type: ignore[arg-type]

    def _want_write(self, place: Place) -> None:
        """mnt_want_write for a change at `place` (EROFS on a read-only mount)."""
        _writable_fs(place.node, self.mount_of(place.path))

    def mount_flags(self, path: bytes) -> frozenset[str]:
        """The nosuid/nodev/noexec flags of the mount a canonical path is in."""
        return self.flags.get(self.mount_point_of(path), NO_FLAGS) if self.flags else NO_FLAGS

    def add_mount(self, point: bytes, fs: "Filesystem",
                  flags: "Iterable[str] | None" = None) -> None:
        """Mount fs at an existing place of the tree (a runtime's masks and read-only views,
        before any process runs); one already there stays beneath it (`covers`).  Without
        `flags` the mount takes those its file system names (`mount_flags` text: a fresh
        read-only tmpfs), a bind its source mount's (clone_mnt), anything else those of the
        mount it is made in."""
        if flags is None:
            flags = self._inherited_flags(point, fs)
        covered = self.mounts.get(point)
        if covered is not None:
            self._covered_flags[id(covered)] = self.flags.get(point, NO_FLAGS)
        fs.covers = covered  # type: ignore[attr-defined]
        self.mounts[point] = fs
        self.flags[point] = _flag_set(flags)
        self._added.append((point, fs))

    def _inherited_flags(self, point: bytes, fs: "Filesystem") -> frozenset[str]:
        given = getattr(fs, "mount_flags", None)
        if isinstance(given, str):
            return frozenset(f for f in given.split(",") if f in MOUNT_FLAG_NAMES)
        if isinstance(fs, BindMount):
            source = next((p for p, m in self.mounts.items() if m is fs.source_mount), None)
            if source is not None:
                return self.flags.get(source, NO_FLAGS)
        return self.mount_flags(point)

    def _flags_of(self, point: bytes, fs: "Filesystem") -> frozenset[str]:
        """The flags of the mount of fs at point (the top one there, or one it covers)."""
        if self.mounts.get(point) is fs:
            return self.flags.get(point, NO_FLAGS)
        return self._covered_flags.get(id(fs), NO_FLAGS)

    def _search(self, task: "Task", node: Inode) -> None:
        if not node.is_dir:
            raise SyscallError(ENOTDIR)
        check(task, node.mode, node.uid, node.gid, MAY_EXEC)

    def _up(self, trail: list[Place], lk: _Lookup) -> None:
        """`..`: back along the trail; at the root (or IN_ROOT's start) it stays."""
        if lk.scope is not None and len(trail) <= len(lk.scope):
            if lk.policy is not None and lk.policy.beneath:
                raise SyscallError(EXDEV)
            return
        if len(trail) == 1:
            return
        if lk.policy is not None and lk.policy.no_xdev and trail[-1].path in self.mounts:
            raise SyscallError(EXDEV)
        trail.pop()

    def _walk(self, task: "Task", trail: list[Place], path: bytes, follow: bool,
              lk: _Lookup) -> list[Place]:
        """Walk `path` on from `trail` (changed in place, and returned).  Symlinks before the
        last component are always followed, the last one when `follow` or a trailing slash
        asks; a followed /proc/PID/fd/N link ends the walk on the link (the open file)."""
        parts = deque(p for p in path.split(b"/") if p)
        trailing = path.endswith(b"/")
        follow = follow or trailing
        policy = lk.policy
        while parts:
            name = parts.popleft()
            here = trail[-1]
            self._search(task, here.node)
            if name == b".":
                continue
            if name == b"..":
                self._up(trail, lk)
                continue
            if here is lk.dead:
                raise SyscallError(ENOENT)  # a removed directory has no names
            nxt = self._child(task, here, name)
            if nxt is None:
                raise SyscallError(ENOENT)
            if policy is not None and policy.no_xdev and nxt.path in self.mounts:
                raise SyscallError(EXDEV)
            node = nxt.node
            if not node.is_symlink or not (parts or follow):
                trail.append(nxt)
                continue
            if policy is not None:
                policy.check_link(node)
            if not parts and _magic_file(node) is not None:
                trail.append(nxt)  # /proc/PID/fd/N: the open file itself, not its name
                break
            lk.count_link()
            target = node.readlink(task)
            if not target:
                raise SyscallError(ENOENT)
            if target[:1] == b"/":
                trail[:] = self._jump_root(lk, trail)
            parts.extendleft(reversed([p for p in target.split(b"/") if p]))
        if trailing and not trail[-1].node.is_dir:
            raise SyscallError(ENOTDIR)  # a trailing slash names a directory
        return trail

    def _trail(self, task: "Task", dirfd: int, path: bytes, follow: bool = True,
               policy: "Resolve | None" = None) -> list[Place]:
        if not path:
            raise SyscallError(ENOENT)
        lk = _Lookup(policy)
        return self._walk(task, self._start(task, dirfd, path, lk), path, follow, lk)

    def _resolve(self, task: "Task", dirfd: int, path: bytes, follow: bool = True,
                 policy: "Resolve | None" = None) -> tuple[Inode, bytes]:
        """(inode, canonical path) of what a path names."""
        place = self._trail(task, dirfd, path, follow, policy)[-1]
        return place.node, place.path

    def _parent(self, task: "Task", dirfd: int, path: bytes, what: str,
                lk: _Lookup | None = None) -> tuple[list[Place], bytes, bool]:
        """(trail to the directory, last name, trailing slash) for the calls that create or
        remove a name (filename_parentat): the directory is walked and searchable, the last
        name is a real one (`.`, `..` and `/` answer as Linux does for `what`)."""
        if not path:
            raise SyscallError(ENOENT)
        lk = lk or _Lookup()
        stripped = path.rstrip(b"/")
        head, slash, name = stripped.rpartition(b"/")
        trail = self._start(task, dirfd, path, lk)
        if head:
            trail = self._walk(task, trail, head, True, lk)
        self._search(task, trail[-1].node)
        if trail[-1] is lk.dead and name not in (b"", b".", b".."):
            raise SyscallError(ENOENT)  # nothing is made in (or removed from) a dead directory
        if name in (b"", b".", b"..") and what:
            raise SyscallError(_DOTS[what][0 if name == b"." else 1 if name else 2])
        return trail, name, len(stripped) != len(path)

    # -- openat2 -----------------------------------------------------------------------------
    def open_resolved(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int,
                      resolve: int) -> "File":
        """openat2 with RESOLVE_* flags: the same walk, under the flags' rules."""
        return self.open(task, dirfd, path, flags, mode, Resolve(resolve))

    # -- open --------------------------------------------------------------------------------
    def open(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int,
             policy: "Resolve | None" = None) -> "File":
        if not path:
            raise SyscallError(ENOENT)
        flags &= VALID_OPEN_FLAGS
        if flags & O_PATH:  # build_open_how: O_PATH keeps only these
            flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | os.O_CLOEXEC
        if flags & O_TMPFILE_BIT:  # build_open_flags: before any lookup
            if flags & (O_TMPFILE | O_CREAT) != O_TMPFILE or flags & O_ACCMODE not in (1, 2):
                raise SyscallError(EINVAL)
            return self._open_tmpfile(task, dirfd, path, flags, mode, policy)
        if flags & (O_DIRECTORY | O_CREAT) == O_DIRECTORY | O_CREAT:
            raise SyscallError(EINVAL)
        if flags & O_CREAT:
            return self._open_create(task, dirfd, path, flags, mode, policy)
        trail = self._trail(task, dirfd, path, not flags & O_NOFOLLOW, policy)
        return self._open_node(task, trail, flags)

    def _open_create(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int,
                     policy: "Resolve | None") -> "File":
        """open(O_CREAT): the last name is created when absent; a symlink there is followed
        (unless O_EXCL or O_NOFOLLOW) and its target's last name created in turn."""
        lk = _Lookup(policy)
        try:
            trail, name, trailing = self._parent(task, dirfd, path, "create", lk)
        except SyscallError as e:
            if e.errno != EEXIST:
                raise
            # ".", ".." or "/": an existing directory (EEXIST with O_EXCL, else EISDIR)
            trail = self._trail(task, dirfd, path, True, policy)
            return self._open_node(task, trail, flags)
        if trailing:
            raise SyscallError(EISDIR)
        while True:
            here = trail[-1]
            self._search(task, here.node)
            nxt = self._child(task, here, name)
            if nxt is None:
                _missing_name(here.node)
                return self._create_file(task, here, name, flags, mode)
            node = nxt.node
            follow = node.is_symlink and not flags & (O_EXCL | O_NOFOLLOW)
            if follow and policy is not None:
                policy.check_link(node)
            if not follow or _magic_file(node) is not None:
                return self._open_node(task, trail + [nxt], flags)
            lk.count_link()
            target = node.readlink(task)
            if not target:
                raise SyscallError(ENOENT)
            if target[:1] == b"/":
                trail = self._jump_root(lk, trail)
            stripped = target.rstrip(b"/")
            head, _, name = stripped.rpartition(b"/")
            if head:
                trail = self._walk(task, trail, head, True, lk)
            if name in (b"", b".", b"..") or len(stripped) != len(target):
                trail = self._walk(task, trail, name or b".", True, lk)
                return self._open_node(task, trail, flags)

    def _create_file(self, task: "Task", here: Place, name: bytes, flags: int,
                     mode: int) -> "File":
        """A new regular file, opened with whatever access was asked (its mode does not apply
        to the open that created it)."""
        self._want_write(here)
        check(task, here.node.mode, here.node.uid, here.node.gid, MAY_WRITE | MAY_EXEC)
        mode = mode & ~task.tg.umask & 0o7777
        create_open = getattr(here.node, "create_open", None)
        if create_open is not None:
            file = create_open(task, name, flags, mode)
        else:
            file = here.node.create(task, name, mode).open(task, flags & ~O_TRUNC)
        file.path = _join(here.path, name).decode(errors="surrogateescape")
        return file

    def _open_tmpfile(self, task: "Task", dirfd: int, path: bytes, flags: int, mode: int,
                      policy: "Resolve | None") -> "File":
        """O_TMPFILE: an unnamed file in a directory (EOPNOTSUPP where the fs has none)."""
        place = self._trail(task, dirfd, path, True, policy)[-1]
        node = place.node
        if not node.is_dir:
            raise SyscallError(ENOTDIR)
        self._want_write(place)
        check(task, node.mode, node.uid, node.gid, MAY_WRITE | MAY_EXEC)
        opener = getattr(node, "open_tmpfile", None)
        if opener is None:
            raise SyscallError(EOPNOTSUPP)
        file = opener(task, flags & ~O_CREAT, mode & ~task.tg.umask & 0o7777)
        file.path = place.path.decode(errors="surrogateescape")
        return file

    def _open_node(self, task: "Task", trail: list[Place], flags: int,
                   anchor: Anchor | None = None) -> "File":
        """may_open and the open itself, for an object that exists (at the trail's end;
        `anchor`: the place already held there, when reopening a directory fd)."""
        where, node = trail[-1]
        target = _magic_file(node) if not flags & O_PATH else None
        if target is not None:
            return self._reopen(task, target, flags)
        if flags & O_CREAT:
            if flags & O_EXCL:
                raise SyscallError(EEXIST)
            if node.is_dir:
                raise SyscallError(EISDIR)
        if flags & O_DIRECTORY and not node.is_dir:
            raise SyscallError(ENOTDIR)
        if flags & O_PATH:
            held = (anchor or self.hold(trail)) if node.is_dir else None
            return _PathFile(node, where, flags, held, self._parent_ino(trail))
        if node.is_symlink:
            raise SyscallError(ELOOP)
        if (st_.S_ISCHR(node.mode) or st_.S_ISBLK(node.mode)) and \
                NODEV in self.mount_flags(where):
            raise SyscallError(EACCES)  # may_open_dev, before the permission check
        acc = flags & O_ACCMODE
        if node.is_dir:
            if acc != 0 or flags & O_TRUNC:
                raise SyscallError(EISDIR)
            check(task, node.mode, node.uid, node.gid, MAY_READ)
            return SentryDirFile(node, task, flags, where, anchor or self.hold(trail),
                                 self._parent_ino(trail))
        wants_write = acc in (1, 2) or bool(flags & O_TRUNC and st_.S_ISREG(node.mode))
        if flags & O_TRUNC and st_.S_ISREG(node.mode):
            self._want_write(trail[-1])  # do_open: before may_open's permission check
        need = (MAY_READ if acc in (0, 2) else 0) | (MAY_WRITE if wants_write else 0)
        check(task, node.mode, node.uid, node.gid, need)
        if wants_write and not _special(node.mode):
            self._want_write(trail[-1])  # do_dentry_open's write access to the mount
        file = node.open(task, flags)
        file.path = where.decode(errors="surrogateescape")
        return file

    def _reopen(self, task: "Task", file: "File", flags: int) -> "File":
        """open(/proc/PID/fd/N): a new description of the file (its inode opened again,
        checked like any open); files with no inode (pipes, the terminal) share theirs."""
        if type(file) is HostFile:  # a HostRoot file (SNAKEVISOR_GOFER=0): the very host object
            pfd = os.open(f"/proc/self/fd/{file.fd}", os.O_PATH | os.O_CLOEXEC)
            try:
                return file.root._reopen(task, pfd, flags & ~(O_CREAT | O_EXCL))
            finally:
                os.close(pfd)
        node = _inode_of(file)
        if isinstance(node, Inode):
            anchor = getattr(file, "anchor", None)  # a directory: the same place, live
            trail = list(anchor.trail) if anchor is not None else \
                [Place(os.fsencode(file.path), node)]
            return self._open_node(task, trail, flags & ~(O_CREAT | O_EXCL), anchor)
        return file

    def reopen(self, task: "Task", fd: int) -> "File":
        """execveat(fd, "", AT_EMPTY_PATH): a new read-only description of fd's file."""
        file = task.tg.fds.get(fd)
        if type(file) is HostFile:
            try:
                new = os.open(f"/proc/self/fd/{file.fd}", os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise SyscallError(e.errno) from None
            reopened = HostFile(file.root, new, os.O_RDONLY, os.fstat(new).st_mode, False)
            reopened.path = file.path
            return reopened
        node = _inode_of(file) if file is not None else None
        if not isinstance(node, Inode) or not st_.S_ISREG(node.mode):
            raise SyscallError(EACCES)
        new_file = node.open(task, os.O_RDONLY)
        new_file.path = file.path  # type: ignore[union-attr]
        return new_file

    # -- looking at things ---------------------------------------------------------------------
    def stat(self, task: "Task", dirfd: int, path: bytes, follow: bool = True) -> "Stat":
        node = self._resolve(task, dirfd, path, follow)[0]
        target = _magic_file(node) if follow else None
        return target.stat() if target is not None else node.stat()

    def statx(self, task: "Task", dirfd: int, path: bytes, flags: int, mask: int) -> bytes:
        from snakevisor.syscalls.sys_file import pack_statx
        node = self._resolve(task, dirfd, path, not flags & 0x100)[0]
        target = _magic_file(node) if not flags & 0x100 else None
        if isinstance(target, HostFile):
            return target.statx(flags, mask)
        if target is None and hasattr(node, "statx"):  # a host object: all the host's fields
            return node.statx(task, flags, mask)  # type: ignore[attr-defined]
        return pack_statx(target.stat() if target is not None else node.stat())

    def readlink(self, task: "Task", dirfd: int, path: bytes) -> bytes:
        if not path:  # readlinkat(fd, "") reads the symlink an O_PATH fd holds
            node = self._empty(task, dirfd)
            if not isinstance(node, Inode) or not node.is_symlink:
                raise SyscallError(ENOENT)
            return node.readlink(task)
        node = self._resolve(task, dirfd, path, False)[0]
        if not node.is_symlink:
            raise SyscallError(EINVAL)
        return node.readlink(task)

    def access(self, task: "Task", st: "Stat", mode: int, effective: bool) -> None:
        """faccessat2(fd, "", AT_EMPTY_PATH) on an fd's attributes."""
        creds = task.tg.creds
        saved = creds.fsuid, creds.fsgid
        if not effective:
            creds.fsuid, creds.fsgid = creds.ruid, creds.rgid
        try:
            check(task, st.st_mode, st.st_uid, st.st_gid, mode & 7)
        finally:
            creds.fsuid, creds.fsgid = saved

    def access_at(self, task: "Task", dirfd: int, path: bytes, mode: int, effective: bool,
                  follow: bool) -> None:
        node, where = self._resolve(task, dirfd, path, follow)
        if not mode:
            return  # F_OK: it exists
        if mode & 2 and not _special(node.mode):
            self._want_write(Place(where, node))
        if mode & 2 and getattr(node, "no_write", False):
            raise SyscallError(EACCES)
        creds = task.tg.creds
        saved = creds.fsuid, creds.fsgid
        if not effective:  # access(2) asks with the real ids
            creds.fsuid, creds.fsgid = creds.ruid, creds.rgid
        try:
            check(task, node.mode, node.uid, node.gid, mode & 7)
        finally:
            creds.fsuid, creds.fsgid = saved

    def resolve_dir(self, task: "Task", path: bytes) -> Anchor:
        """chdir(2): a searchable directory, held (a /proc/PID/fd/N link: the fd's place)."""
        trail = self._trail(task, AT_FDCWD, path)
        node = trail[-1].node
        target = _magic_file(node)
        anchor = getattr(target, "anchor", None) if target is not None else None
        if anchor is not None:
            self._search(task, anchor.trail[-1].node)
            return anchor
        self._search(task, node)
        return self.hold(trail)

    def statfs(self, task: "Task", path: bytes) -> bytes:
        node, where = self._resolve(task, AT_FDCWD, path)
        return self.mount_statfs(node.fs.statfs(), node, where)

    def mount_statfs(self, raw: bytes, node: Inode, where: bytes) -> bytes:
        """A file system's struct statfs as seen through the mount `where` is in: f_flags
        gets the mount's ST_RDONLY (a read-only bind), ST_NOSUID, ST_NODEV and ST_NOEXEC,
        as Linux's statfs and fstatfs report them."""
        extra = 0
        try:
            _writable_fs(node, self.mount_of(where))
        except SyscallError:
            extra |= ST_RDONLY
        flags = self.mount_flags(where)
        for name, bit in ((NOSUID, ST_NOSUID), (NODEV, ST_NODEV), (NOEXEC, ST_NOEXEC)):
            if name in flags:
                extra |= bit
        return with_st_flags(raw, extra) if extra else raw

    def sync(self) -> None:
        for fs in self.mounts.values():
            sync = getattr(fs, "sync", None)
            if sync is not None:
                sync()

    def _empty(self, task: "Task", dirfd: int) -> object:
        """The object an empty path with AT_EMPTY_PATH names: dirfd's (a sentry inode, or
        None for files with none: pipes, the terminal), or the cwd."""
        if dirfd == AT_FDCWD:
            return self._resolve(task, AT_FDCWD, b".")[0]
        file = task.tg.fds.files.get(dirfd & 0xFFFFFFFF) if dirfd >= 0 else None
        if file is None:
            raise SyscallError(EBADF)
        return _inode_of(file)

    def mount_records(self) -> list:
        """The mount table as /proc/PID/mountinfo shows it: the root, each mount the tree
        was built with, then those added since in their order (a mount covering another at
        the same point is its child)."""
        from snakevisor.fsimpl.procfs.mounts import MountRecord
        late = {id(fs) for _, fs in self._added}
        entries: list[tuple[bytes, Filesystem]] = []
        for point in sorted(self.mounts, key=len):
            fs: "Filesystem | None" = self.mounts[point]
            while fs is not None and id(fs) in late:
                fs = fs.covers  # type: ignore[attr-defined]
            if fs is not None:
                entries.append((point, fs))
        entries += self._added
        records: list = []
        for i, (point, fs) in enumerate(entries, start=1):
            parent = max((j for j, (p, _) in enumerate(entries[:i - 1], start=1)
                          if p in (point, b"/") or _within(point, p)), default=0)
            major, minor, root, flags, fstype, source, options = self._mount_fields(fs)
            records.append(MountRecord(i, parent, major, minor, root,
                                       point.decode(errors="replace"),
                                       _show_flags(flags, self._flags_of(point, fs)), fstype,
                                       source, options))
        return records

    def _mount_fields(self, fs: "Filesystem") -> tuple[int, int, str, str, str, str, str]:
        """(major, minor, root, mount flags, type, source, superblock options) of a mount."""
        if isinstance(fs, BindMount):
            major, minor, _, flags, fstype, source, options = self._mount_fields(fs.source_mount)
            if not fs.writable:
                flags = "ro" + flags[2:] if flags.startswith(("rw", "ro")) else "ro," + flags
            return major, minor, fs.inner.decode(errors="replace"), flags, fstype, source, options
        bottom = self.mounts[b"/"]
        while getattr(bottom, "covers", None) is not None:
            bottom = bottom.covers  # type: ignore[attr-defined]
        major, minor = os.major(fs.dev), os.minor(fs.dev)
        if fs is bottom:  # the root file system (the first mount at /)
            if fs.fstype == "overlay":
                return 0, fs.dev & 0xFF, "/", "rw,relatime", "overlay", "overlay", "rw," + fs.options
            ro = "rw" if getattr(fs, "writable", True) else "ro"
            return major, minor, "/", ro + ",relatime", "rootfs", "rootfs", ro
        # (nosuid, nodev, noexec belong to the mount, not here: mount_records adds them)
        flags = getattr(fs, "mount_flags", None) or "rw,relatime"
        if fs.fstype == "bind":
            flags = fs.options + ",relatime"
        return (major, minor, "/", flags, "ext4" if fs.fstype == "bind" else fs.fstype,
                fs.source, _super_options(fs))

    # -- extended attributes -------------------------------------------------------------------
    def xattrs(self, task: "Task", dirfd: int, path: bytes, follow: bool) -> "Xattrs":
        return Xattrs(task, *self._attr_node(task, dirfd, path, follow))

    # -- changes: names ----------------------------------------------------------------------
    def _sticky(self, task: "Task", dir_: Inode, victim: Inode) -> None:
        """A sticky directory lets only the owner of a name (or of the directory) remove it."""
        fsuid = task.tg.creds.fsuid
        if dir_.mode & st_.S_ISVTX and fsuid not in (dir_.uid, victim.uid) \
                and not _has_cap(task, CAP_FOWNER):
            raise SyscallError(EPERM)

    def _may_delete(self, task: "Task", here: Place, name: bytes, victim: Inode,
                    isdir: bool) -> None:
        """may_delete: write+search on the directory, the sticky rule, the object's kind,
        and EBUSY for a mount point."""
        check(task, here.node.mode, here.node.uid, here.node.gid, MAY_WRITE | MAY_EXEC)
        self._sticky(task, here.node, victim)
        if isdir and not victim.is_dir:
            raise SyscallError(ENOTDIR)
        if not isdir and victim.is_dir:
            raise SyscallError(EISDIR)
        if _join(here.path, name) in self.mounts:
            raise SyscallError(EBUSY)

    def _new_name(self, task: "Task", dirfd: int, path: bytes, want_dir: bool = False
                  ) -> tuple[Place, bytes]:
        """filename_create: the directory and a name that does not exist yet there."""
        trail, name, trailing = self._parent(task, dirfd, path, "create")
        here = trail[-1]
        if self._child(task, here, name) is not None:
            raise SyscallError(EEXIST)
        _missing_name(here.node)
        if trailing and not want_dir:
            raise SyscallError(ENOENT)
        self._want_write(here)
        check(task, here.node.mode, here.node.uid, here.node.gid, MAY_WRITE | MAY_EXEC)
        return here, name

    def mkdir(self, task: "Task", dirfd: int, path: bytes, mode: int) -> None:
        here, name = self._new_name(task, dirfd, path, want_dir=True)
        here.node.mkdir(task, name, mode & ~task.tg.umask & 0o1777)  # no set-id bits asked

    def mknod(self, task: "Task", dirfd: int, path: bytes, mode: int, rdev: int) -> None:
        here, name = self._new_name(task, dirfd, path)
        kind = st_.S_IFMT(mode)
        if kind in (st_.S_IFCHR, st_.S_IFBLK) and not _has_cap(task, CAP_MKNOD):
            raise SyscallError(EPERM)
        here.node.mknod(task, name, kind | (mode & ~task.tg.umask & 0o7777), rdev)

    def symlink(self, task: "Task", target: bytes, dirfd: int, path: bytes) -> None:
        here, name = self._new_name(task, dirfd, path)
        here.node.symlink(task, name, target)

    def link(self, task: "Task", olddirfd: int, old: bytes, newdirfd: int, new: bytes,
             flags: int) -> None:
        if old:
            node, where = self._resolve(task, olddirfd, old, bool(flags & AT_SYMLINK_FOLLOW))
            file = _magic_file(node) if flags & AT_SYMLINK_FOLLOW else None
        elif olddirfd == AT_FDCWD:  # AT_EMPTY_PATH: the cwd (a directory: EPERM below)
            node, file = self._resolve(task, AT_FDCWD, b".")[0], None
        else:  # AT_EMPTY_PATH: the file olddirfd holds
            file = task.tg.fds.files.get(olddirfd & 0xFFFFFFFF) if olddirfd >= 0 else None
            if file is None:
                raise SyscallError(EBADF)
        if file is not None:
            node = _inode_of(file)
        here, name = self._new_name(task, newdirfd, new)
        if old and file is None and self.mount_of(where) is not self.mount_of(here.path):
            raise SyscallError(EXDEV)  # linkat: both names in one mount
        if node is None and type(file) is HostFile and hasattr(here.node, "link_fd"):
            here.node.link_fd(task, name, file.fd)  # type: ignore[attr-defined]
            return
        if not isinstance(node, Inode) or _fs_of(node) is not _fs_of(here.node):
            raise SyscallError(EXDEV)
        if node.is_dir:
            raise SyscallError(EPERM)
        body = getattr(node, "top", node)  # an overlay node's layer object
        if body.nlink == 0 and not getattr(body, "linkable", False):
            raise SyscallError(ENOENT)  # unlinked, or O_TMPFILE|O_EXCL
        here.node.link(task, name, node)
        if getattr(body, "linkable", False):
            body.linkable = False

    def unlink(self, task: "Task", dirfd: int, path: bytes, rmdir: bool) -> None:
        trail, name, trailing = self._parent(task, dirfd, path, "rmdir" if rmdir else "unlink")
        here = trail[-1]
        self._want_write(here)
        nxt = self._child(task, here, name)
        if nxt is None:
            raise SyscallError(ENOENT)
        victim = nxt.node
        if trailing and not rmdir:
            raise SyscallError(EISDIR if victim.is_dir else ENOTDIR)
        self._may_delete(task, here, name, victim, rmdir)
        if rmdir:
            here.node.rmdir(task, name)
            self._removed(_join(here.path, name))
        else:
            here.node.unlink(task, name)

    def rename(self, task: "Task", olddirfd: int, old: bytes, newdirfd: int, new: bytes,
               flags: int) -> None:
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) or (
                flags & RENAME_EXCHANGE and flags & (RENAME_NOREPLACE | RENAME_WHITEOUT)):
            raise SyscallError(EINVAL)
        src_trail, src_name, src_slash = self._parent(task, olddirfd, old, "")
        dst_trail, dst_name, dst_slash = self._parent(task, newdirfd, new, "")
        src, dst = src_trail[-1], dst_trail[-1]
        if _fs_of(src.node) is not _fs_of(dst.node) or \
                self.mount_of(src.path) is not self.mount_of(dst.path):
            raise SyscallError(EXDEV)
        if src_name in (b"", b".", b".."):
            raise SyscallError(EBUSY)
        if dst_name in (b"", b".", b".."):
            raise SyscallError(EEXIST if flags & RENAME_NOREPLACE else EBUSY)
        self._want_write(src)
        found = self._child(task, src, src_name)
        if found is None:
            raise SyscallError(ENOENT)
        victim = found.node
        target = self._child(task, dst, dst_name)
        if flags & RENAME_NOREPLACE and target is not None:
            raise SyscallError(EEXIST)
        if flags & RENAME_EXCHANGE:
            if target is None:
                raise SyscallError(ENOENT)
            if not target.node.is_dir and dst_slash:
                raise SyscallError(ENOTDIR)
        if not victim.is_dir and (src_slash or (dst_slash and not flags & RENAME_EXCHANGE)):
            raise SyscallError(ENOTDIR)
        if victim.is_dir and (dst.path + b"/").startswith(found.path + b"/"):
            raise SyscallError(EINVAL)  # a directory cannot move beneath itself
        if target is not None and target.node.is_dir and \
                (src.path + b"/").startswith(target.path + b"/"):
            # the target is an ancestor of the source
            raise SyscallError(EINVAL if flags & RENAME_EXCHANGE else ENOTEMPTY)
        if target is not None and _same_object(target.node, victim):
            return  # two names of one object: nothing to do
        self._may_delete(task, src, src_name, victim, victim.is_dir)
        if target is None:
            check(task, dst.node.mode, dst.node.uid, dst.node.gid, MAY_WRITE | MAY_EXEC)
        else:
            self._may_delete(task, dst, dst_name, target.node,
                             target.node.is_dir if flags & RENAME_EXCHANGE else victim.is_dir)
        if victim.is_dir and src.path != dst.path and not flags & RENAME_EXCHANGE:
            check(task, victim.mode, victim.uid, victim.gid, MAY_WRITE)  # its `..` changes
        old, new = found.path, _join(dst.path, dst_name)
        exchange = bool(flags & RENAME_EXCHANGE)
        other_dir = target is not None and target.node.is_dir
        moving = ([old] if victim.is_dir else []) + ([new] if exchange and other_dir else [])
        if any(point.startswith(p + b"/") for p in moving for point in self.mounts):
            raise SyscallError(EBUSY)  # mounts are kept by name here: they cannot move along
        src.node.rename(task, src_name, dst.node, dst_name, flags)
        if other_dir and not exchange:
            self._removed(new)  # the empty directory the rename replaced
        if moving:
            self._moved(task, old, new, exchange)

    # -- changes: attributes ----------------------------------------------------------------
    def _attr_node(self, task: "Task", dirfd: int, path: bytes, follow: bool
                   ) -> tuple[Inode, "Filesystem | None"]:
        """What chmod/chown/utimens change: a path's object (the open file behind a
        /proc/PID/fd/N link), or with an empty path dirfd's; and the mount it is in."""
        if not path:
            node = self._empty(task, dirfd)
            if not isinstance(node, Inode):
                task.kernel.warn_once("attr:noinode", "attribute change of a file with no "
                                      "sentry inode refused (EPERM)")
                raise SyscallError(EPERM)
            if dirfd == AT_FDCWD:
                return node, self.mount_of(self._cwd(task).path)
            return node, file_mount(task, task.tg.fds.files[dirfd & 0xFFFFFFFF])
        node, where = self._resolve(task, dirfd, path, follow)
        target = _magic_file(node) if follow else None
        if target is not None:
            inner = _inode_of(target)
            if not isinstance(inner, Inode):
                raise SyscallError(EPERM)
            return inner, file_mount(task, target)
        return node, self.mount_of(where)

    def chmod(self, task: "Task", dirfd: int, path: bytes, mode: int) -> None:
        InodeAttrs(task, *self._attr_node(task, dirfd, path, True)).chmod(mode)

    def chown(self, task: "Task", dirfd: int, path: bytes, uid: int, gid: int,
              follow: bool) -> None:
        InodeAttrs(task, *self._attr_node(task, dirfd, path, follow)).chown(uid, gid)

    def utimens(self, task: "Task", dirfd: int, path: bytes, times: bytes | None,
                follow: bool) -> None:
        InodeAttrs(task, *self._attr_node(task, dirfd, path, follow)).utimens(times)

    def truncate(self, task: "Task", path: bytes, length: int) -> None:
        node, mount = self._attr_node(task, AT_FDCWD, path, True)
        if node.is_dir:
            raise SyscallError(EISDIR)
        if not st_.S_ISREG(node.mode):
            raise SyscallError(EINVAL)
        _writable_fs(node, mount)
        check(task, node.mode, node.uid, node.gid, MAY_WRITE)
        node.setattr(task, size=length)


class _PathFile(_HeldDir):
    """An O_PATH open of a sentry object: it names the place, nothing more (every call
    that would use the file itself answers EBADF); a directory's place is held."""

    def __init__(self, node: Inode, where: bytes, flags: int = O_PATH,
                 anchor: Anchor | None = None, parent_ino: int | None = None) -> None:
        kept = flags & (O_PATH | O_DIRECTORY | O_NOFOLLOW)
        super().__init__(node, None, kept, where, anchor, parent_ino)
        self.is_dir = node.is_dir

    def lseek(self, offset: int, whence: int) -> int:
        raise SyscallError(EBADF)

    def fsync(self) -> None:
        raise SyscallError(EBADF)

    def truncate(self, length: int) -> None:
        raise SyscallError(EBADF)

    def stat(self) -> "Stat":  # type: ignore[override]
        return self.inode.stat()

    def getdents(self, count: int) -> bytes:
        raise SyscallError(EBADF)

    def read(self, task: "Task", count: int) -> bytes:
        raise SyscallError(EBADF)  # an O_PATH descriptor reads nothing

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        raise SyscallError(EBADF)


def _ancestors(point: bytes) -> list[bytes]:
    """/a/b/c -> [/a, /a/b] (the directories a mount point needs above it, not /)."""
    parts = point.strip(b"/").split(b"/")[:-1]
    return [b"/" + b"/".join(parts[:i]) for i in range(1, len(parts) + 1)]


_WAY_FS: "Filesystem | None" = None


def _way_fs() -> "Filesystem":
    """The file system of the stand-in directories on the way to mount points."""
    global _WAY_FS
    if _WAY_FS is None:
        from snakevisor.fsimpl.synthetic import SyntheticFs
        _WAY_FS = SyntheticFs("tmpfs", 0x01021994, "none")
    return _WAY_FS


class BindMount(Filesystem):
    """A mount of an object already in the tree (mount --bind; a runtime's masked files and
    read-only paths): the same objects, reached through a mount with flags of its own.
    `writable` False makes everything below it read-only (`_writable_fs`)."""

    def __init__(self, source_mount: "Filesystem", node: Inode, inner: bytes,
                 writable: bool) -> None:
        # no Filesystem.__init__: a bind has no superblock (device, options) of its own
        while isinstance(source_mount, BindMount):
            source_mount = source_mount.source_mount
        self.source_mount = source_mount  #: the mount the object was bound from
        self.node = node
        self.inner = inner  #: where the object is inside its file system (mountinfo's root)
        self.writable = writable
        self.fstype, self.source, self.options = node.fs.fstype, node.fs.source, node.fs.options
        self.dev = node.fs.dev
        self.xattr_prefixes = node.fs.xattr_prefixes
        self.covers: "Filesystem | None" = None  #: the mount at the same point beneath

    def root(self) -> Inode:
        return self.node

    def statfs(self) -> bytes:
        return self.node.fs.statfs()


def _magic_file(node: Inode) -> "File | None":
    """The open file a /proc/PID/fd/N link stands for (None for other nodes)."""
    target = getattr(node, "open_fd", None)
    if target is None:
        return None
    tg, fd = target
    return tg.fds.files.get(fd)


def _inode_of(file: "File") -> object:
    """The sentry inode behind an open file (an overlay file's merged node), if any."""
    return getattr(file, "attr_inode", None) or getattr(file, "inode", None)


def _fs_of(node: Inode) -> "Filesystem":
    return node.fs


def _same_object(a: Inode, b: Inode) -> bool:
    """Are two looked-up nodes one object (hard links)?  Lookups may build a new node each
    time (overlay, host paths): compare the layer object, or the inode number in one fs."""
    a, b = getattr(a, "top", a), getattr(b, "top", b)
    return a is b or (a.fs is b.fs and a.ino == b.ino and type(a) is type(b))


_F_FLAGS = 80  #: offset of f_flags in struct statfs
ST_RDONLY, ST_NOSUID, ST_NODEV, ST_NOEXEC = 1, 2, 4, 8


def with_st_flags(raw: bytes, bits: int) -> bytes:
    """A struct statfs with bits added to f_flags (a mount's flags)."""
    flags = int.from_bytes(raw[_F_FLAGS:_F_FLAGS + 8], "little") | bits
    return raw[:_F_FLAGS] + flags.to_bytes(8, "little") + raw[_F_FLAGS + 8:]


def with_st_rdonly(raw: bytes) -> bytes:
    """A struct statfs with ST_RDONLY added to f_flags (a read-only mount's answer)."""
    return with_st_flags(raw, ST_RDONLY)


def _special(mode: int) -> bool:
    """Device nodes, FIFOs and sockets: opened for writing even on a read-only mount."""
    return st_.S_ISCHR(mode) or st_.S_ISBLK(mode) or st_.S_ISFIFO(mode) or st_.S_ISSOCK(mode)


def _missing_name(directory: Inode) -> None:
    """A name to be created is absent from `directory`: ENOENT where looking up an absent name
    is itself an error (procfs: Linux's proc lookups fail instead of leaving a negative
    dentry), before any write or permission check -- `mkdir /proc/sys/x` is ENOENT even on
    a read-only /proc/sys."""
    if getattr(directory.fs, "lookup_misses_fail", False):
        raise SyscallError(ENOENT)


def _writable_fs(node: Inode, mount: "Filesystem | None" = None) -> None:
    """EROFS on a read-only file system (a `:ro` volume) or a read-only bind of part of one
    (an OCI readonlyPath; `mount`: the entry of the mount table the object was reached
    through, by its path), checked where mnt_want_write is.  The one place that decides it.
    A bind counts only for objects of its own file system: a path names an fd's file only
    approximately (a memfd's "/memfd:x (deleted)" is in no mount of the tree)."""
    if not getattr(node.fs, "writable", True) or (
            isinstance(mount, BindMount) and not mount.writable and mount.node.fs is node.fs):
        raise SyscallError(EROFS)


def file_mount(task: "Task", file: "File") -> "Filesystem | None":
    """The mount an open file of the task's tree was opened in (f_path.mnt), by its path."""
    root = getattr(task.tg.fs, "root", None)
    path = getattr(file, "path", "")
    if not isinstance(root, SandboxRoot) or not path.startswith("/"):
        return None
    return root.mount_of(os.fsencode(path))


def file_mount_flags(task: "Task", file: "File") -> frozenset[str]:
    """The nosuid/nodev/noexec flags of the mount an open file was opened in, by its path
    (none for files outside the task's tree: pipes, sockets, memfds)."""
    root = getattr(task.tg.fs, "root", None)
    path = getattr(file, "path", "")
    if not isinstance(root, SandboxRoot) or not root.flags or not path.startswith("/"):
        return NO_FLAGS
    return root.mount_flags(os.fsencode(path.removesuffix(" (deleted)")))


class InodeAttrs:
    """chmod/chown/utimens of a sentry inode with Linux's permission rules (the path and
    the fd forms share it; HostFile offers the same three methods for host files)."""

    def __init__(self, task: "Task", node: Inode, mount: "Filesystem | None" = None) -> None:
        self.task, self.node, self.mount = task, node, mount

    def _owned(self) -> None:
        if self.task.tg.creds.fsuid != self.node.uid and not _has_cap(self.task, CAP_FOWNER):
            raise SyscallError(EPERM)

    def chmod(self, mode: int) -> None:
        _writable_fs(self.node, self.mount)
        self._owned()
        self.node.setattr(self.task, mode=mode & 0o7777)

    def chown(self, uid: int, gid: int) -> None:
        node, creds = self.node, self.task.tg.creds
        _writable_fs(node, self.mount)
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
        _writable_fs(node, self.mount)
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
    node = _inode_of(file)
    return InodeAttrs(task, node, file_mount(task, file)) if isinstance(node, Inode) else None


class Xattrs:
    """The extended-attribute calls on one sentry object, with the VFS's rules in front of
    the file system's storage (xattr_permission: user.* only on files and directories,
    trusted.* for CAP_SYS_ADMIN only, DAC for the rest; EROFS on a read-only mount)."""

    def __init__(self, task: "Task", node: Inode, mount: "Filesystem | None" = None) -> None:
        self.task, self.node, self.mount = task, node, mount

    def _permission(self, name: bytes, write: bool) -> None:
        task, node = self.task, self.node
        if name.startswith((b"security.", b"system.")):
            return
        if name.startswith(b"trusted."):
            if not _has_cap(task, CAP_SYS_ADMIN):
                raise SyscallError(EPERM if write else ENODATA)
            return
        if name.startswith(b"user."):
            if not (st_.S_ISREG(node.mode) or st_.S_ISDIR(node.mode)):
                raise SyscallError(EPERM if write else ENODATA)
            if write and node.is_dir and node.mode & st_.S_ISVTX and \
                    task.tg.creds.fsuid != node.uid and not _has_cap(task, CAP_FOWNER):
                raise SyscallError(EPERM)
        check(task, node.mode, node.uid, node.gid, MAY_WRITE if write else MAY_READ)

    def get(self, name: bytes) -> bytes:
        self._permission(name, False)
        return self.node.getxattr(self.task, name)

    def list(self) -> bytes:
        """The NUL-terminated names listxattr(2) returns (trusted.* only to CAP_SYS_ADMIN)."""
        names = self.node.listxattr(self.task)
        if not _has_cap(self.task, CAP_SYS_ADMIN):
            names = [n for n in names if not n.startswith(b"trusted.")]
        return b"".join(n + b"\0" for n in names)

    def set(self, name: bytes, value: bytes, flags: int) -> None:
        _writable_fs(self.node, self.mount)
        self._permission(name, True)
        self.node.setxattr(self.task, name, value, flags)

    def remove(self, name: bytes) -> None:
        _writable_fs(self.node, self.mount)
        self._permission(name, True)
        self.node.removexattr(self.task, name)


class _NoXattrFs(Filesystem):
    """Where the objects with no sentry inode (pipes, sockets, the terminal) live: no
    attribute namespaces at all."""

    fstype = "pipefs"


_NO_XATTR_FS: "_NoXattrFs | None" = None


def file_xattrs(task: "Task", file: "File") -> Xattrs:
    """The f*xattr calls' target: an fd's sentry object (EBADF for O_PATH fds).  Files with
    no object of ours (pipes, the terminal) have no attributes, but the VFS's rules still
    answer first (user.* on a pipe: EPERM/ENODATA, as Linux)."""
    global _NO_XATTR_FS
    if file.is_path_only:
        raise SyscallError(EBADF)
    node = _inode_of(file)
    if not isinstance(node, Inode):
        if _NO_XATTR_FS is None:
            _NO_XATTR_FS = _NoXattrFs()
        st = file.stat()
        node = Inode(_NO_XATTR_FS, st.st_mode, st.st_uid, st.st_gid, ino=st.st_ino)
    return Xattrs(task, node, file_mount(task, file))


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
    """openat2's resolve flags as rules on the walk: BENEATH refuses to leave the starting
    directory (EXDEV), IN_ROOT treats it as the root (absolute paths and symlink targets
    start there, `..` stops there), NO_XDEV refuses to cross a mount, NO_SYMLINKS and
    NO_MAGICLINKS refuse to follow links (ELOOP)."""

    def __init__(self, flags: int) -> None:
        self.no_xdev = bool(flags & RESOLVE_NO_XDEV)
        self.no_magic = bool(flags & RESOLVE_NO_MAGICLINKS)
        self.no_symlinks = bool(flags & RESOLVE_NO_SYMLINKS)
        self.beneath = bool(flags & RESOLVE_BENEATH)
        self.in_root = bool(flags & RESOLVE_IN_ROOT)

    def check_link(self, node: Inode) -> None:
        if self.no_symlinks:
            raise SyscallError(ELOOP)
        if self.no_magic and _is_magic(node):
            raise SyscallError(ELOOP)


def _is_magic(node: Inode) -> bool:
    """procfs's links that jump to objects (fd/N, exe, cwd, root), not its plain ones."""
    if _magic_file(node) is not None:
        return True
    return getattr(node.fs, "fstype", "") == "proc" and node.ino not in (2, 3, 4)

