"""Path resolution in the sentry: component by component through mounts and symlinks.

Every name an application gives is walked here, never by the host: `..` stops at the
process's root, mounts are crossed in both directions, symlinks are read and their text
walked from the right place (at most 40 of them, ELOOP beyond), magic links (procfs)
jump straight to their target, and search permission is checked on each directory.
"""
from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from snakevisor.kernel.errors import ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, SyscallError
from snakevisor.vfs.mount import VirtualPath
from snakevisor.vfs.permissions import MAY_EXEC, check

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.mount import MountNamespace

PATH_MAX, NAME_MAX, MAXSYMLINKS = 4096, 255, 40
#: what the last component of a path is, for the calls that create or remove it
LAST_NORM, LAST_DOT, LAST_DOTDOT, LAST_ROOT = 0, 1, 2, 3


class Walk:
    """Where a walk starts and what it may do (one per system call)."""

    __slots__ = ("task", "ns", "root", "links")

    def __init__(self, task: "Task", ns: "MountNamespace", root: VirtualPath) -> None:
        self.task = task
        self.ns = ns
        self.root = root  #: the process's root: `..` never goes above it
        self.links = 0  #: symlinks followed so far (shared by nested walks)


class Parent(NamedTuple):
    """The directory a creating or removing call works in, and the final name."""

    dir: VirtualPath
    name: bytes
    kind: int  #: LAST_NORM, LAST_DOT, LAST_DOTDOT or LAST_ROOT
    trailing_slash: bool


def _split(path: bytes) -> list[bytes]:
    if len(path) >= PATH_MAX:
        raise SyscallError(ENAMETOOLONG)
    return [c for c in path.split(b"/") if c]


def _step(walk: Walk, cur: VirtualPath, name: bytes) -> VirtualPath:
    """One component (not a symlink-following step): `.`, `..` or a child."""
    if name == b".":
        return cur
    if name == b"..":
        if cur == walk.root:
            return cur
        cur = walk.ns.step_up(cur)  # from a mount's root to where it is mounted
        if cur == walk.root or cur.dentry.parent is None:
            return cur
        return VirtualPath(cur.mount, cur.dentry.parent)
    if len(name) > NAME_MAX:
        raise SyscallError(ENAMETOOLONG)
    child = cur.dentry.child(walk.task, name)
    if child is None:
        raise SyscallError(ENOENT)
    return walk.ns.step_down(VirtualPath(cur.mount, child))


def _search(walk: Walk, cur: VirtualPath) -> None:
    inode = cur.dentry.inode
    if not inode.is_dir:
        raise SyscallError(ENOTDIR)
    check(walk.task, inode.mode, inode.uid, inode.gid, MAY_EXEC)


def _walk(walk: Walk, start: VirtualPath, parts: deque[bytes], follow_last: bool) -> VirtualPath:
    cur = start
    while parts:
        name = parts.popleft()
        _search(walk, cur)
        nxt = _step(walk, cur, name)
        inode = nxt.dentry.inode
        if inode.is_symlink and (parts or follow_last):
            cur = _follow(walk, cur, nxt)
            continue
        cur = nxt
    return cur


def _follow(walk: Walk, where: VirtualPath, link: VirtualPath) -> VirtualPath:
    """The place a symlink at `link` (found in directory `where`) leads to."""
    walk.links += 1
    if walk.links > MAXSYMLINKS:
        raise SyscallError(ELOOP)
    inode = link.dentry.inode
    jump = inode.follow(walk.task)
    if jump is not None:
        return jump
    text = inode.readlink(walk.task)
    if not text:
        raise SyscallError(ENOENT)
    start = walk.root if text[:1] == b"/" else where
    return _walk(walk, start, deque(_split(text)), True)


def lookup(walk: Walk, start: VirtualPath, path: bytes, follow: bool = True) -> VirtualPath:
    """The place `path` names (it must exist).  A trailing slash demands a directory and
    follows a final symlink, as Linux does."""
    if not path:
        raise SyscallError(ENOENT)
    parts = deque(_split(path))
    base = walk.root if path[:1] == b"/" else start
    trailing = path.endswith(b"/")
    found = _walk(walk, base, parts, follow or trailing)
    if trailing and not found.dentry.inode.is_dir:
        raise SyscallError(ENOTDIR)
    return found


def lookup_parent(walk: Walk, start: VirtualPath, path: bytes) -> Parent:
    """The directory that holds the last component of `path`, and that component (for the
    calls that create, remove or rename a name)."""
    if not path:
        raise SyscallError(ENOENT)
    parts = _split(path)
    base = walk.root if path[:1] == b"/" else start
    trailing = path.endswith(b"/")
    if not parts:
        return Parent(base, b"/", LAST_ROOT, trailing)
    last = parts.pop()
    directory = _walk(walk, base, deque(parts), True)
    _search(walk, directory)
    if len(last) > NAME_MAX:
        raise SyscallError(ENAMETOOLONG)
    kind = LAST_DOT if last == b"." else LAST_DOTDOT if last == b".." else LAST_NORM
    return Parent(directory, last, kind, trailing)


def follow_final(walk: Walk, parent: Parent) -> VirtualPath | None:
    """The object a Parent's last name refers to, symlinks followed (None: no such name);
    used by open(O_CREAT) to find what it would open, or create the name when absent."""
    try:
        child = _step(walk, parent.dir, parent.name)
    except SyscallError as e:
        if e.errno == ENOENT:
            return None
        raise
    if child.dentry.inode.is_symlink:
        return _follow(walk, parent.dir, child)
    return child
