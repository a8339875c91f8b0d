"""The VFS core: path resolution through mounts and symlinks, and tmpfs, without a host
process (a fake task supplies the identity)."""
from __future__ import annotations

import errno

import pytest

from conftest import FakeProcess
from snakevisor.fsimpl.tmpfs import RENAME_EXCHANGE, RENAME_NOREPLACE, Tmpfs
from snakevisor.kernel.errors import SyscallError
from snakevisor.vfs.dirfile import DirectoryFile
from snakevisor.vfs.mount import MountNamespace, VirtualPath
from snakevisor.vfs.resolve import LAST_DOTDOT, Walk, lookup, lookup_parent


@pytest.fixture
def env():
    p = FakeProcess(root=None)
    ns = MountNamespace(Tmpfs(size=1 << 20))
    root = VirtualPath(ns.root, ns.root.root)
    return p.task, ns, root


def walk(task, ns, root):
    return Walk(task, ns, root)


def errno_of(fn, *args, **kw) -> int:
    with pytest.raises(SyscallError) as exc:
        fn(*args, **kw)
    return exc.value.errno


def mkdirs(task, ns, root, *paths: bytes) -> None:
    for path in paths:
        parent = lookup_parent(walk(task, ns, root), root, path)
        parent.dir.dentry.inode.mkdir(task, parent.name, 0o755)


def test_symlinks_dots_and_trailing_slashes(env) -> None:
    task, ns, root = env
    mkdirs(task, ns, root, b"/a", b"/a/b")
    rootdir = root.dentry.inode
    rootdir.symlink(task, b"l", b"a/b")
    rootdir.symlink(task, b"abs", b"/a")
    rootdir.symlink(task, b"loop", b"loop")
    rootdir.create(task, b"f", 0o644)
    a = lookup(walk(task, ns, root), root, b"/a")
    assert lookup(walk(task, ns, root), root, b"/l/..") == a  # .. of the link's target
    assert lookup(walk(task, ns, root), root, b"/abs/b/../../..") == root  # .. stops at root
    assert lookup(walk(task, ns, root), root, b"l", follow=False).dentry.inode.is_symlink
    assert errno_of(lookup, walk(task, ns, root), root, b"/f/") == errno.ENOTDIR
    assert errno_of(lookup, walk(task, ns, root), root, b"/loop") == errno.ELOOP
    assert errno_of(lookup, walk(task, ns, root), root, b"/nope/x") == errno.ENOENT
    assert errno_of(lookup, walk(task, ns, root), root, b"/f/x") == errno.ENOTDIR
    assert errno_of(lookup, walk(task, ns, root), root, b"") == errno.ENOENT
    assert errno_of(lookup, walk(task, ns, root), root, b"/" + b"x" * 256) == errno.ENAMETOOLONG
    parent = lookup_parent(walk(task, ns, root), root, b"/a/..")
    assert parent.kind == LAST_DOTDOT and parent.dir == a


def test_mounts_are_crossed_both_ways(env) -> None:
    task, ns, root = env
    mkdirs(task, ns, root, b"/mnt", b"/mnt/under")
    mnt_dir = lookup(walk(task, ns, root), root, b"/mnt")
    inner = Tmpfs(size=1 << 16)
    ns.mount(inner, mnt_dir)
    inner.root().mkdir(task, b"inside", 0o755)
    found = lookup(walk(task, ns, root), root, b"/mnt/inside")
    assert found.mount.fs is inner
    assert errno_of(lookup, walk(task, ns, root), root, b"/mnt/under") == errno.ENOENT  # hidden
    back = lookup(walk(task, ns, root), found, b"../..")
    assert back == root
    assert ns.path_of(found) == b"/mnt/inside"
    # a process rooted inside the mount cannot climb out of it
    chroot = lookup(walk(task, ns, root), root, b"/mnt")
    assert lookup(walk(task, ns, chroot), found, b"../../../..") == chroot
    assert ns.path_of(found, chroot) == b"/inside"


def test_search_permission(env) -> None:
    task, ns, root = env
    mkdirs(task, ns, root, b"/locked", b"/locked/x")
    locked = lookup(walk(task, ns, root), root, b"/locked")
    locked.dentry.inode.mode = (locked.dentry.inode.mode & ~0o777) | 0o700
    task.tg.creds.fsuid = task.tg.creds.euid = 1000
    task.tg.caps = None  # recomputed from the new ids: an unprivileged user
    from snakevisor.syscalls.sys_cred import caps_of
    from snakevisor.syscalls.sys_cred import Capabilities
    task.tg.caps = Capabilities.for_ids(task.tg.creds)
    assert caps_of(task.tg).effective == 0
    assert errno_of(lookup, walk(task, ns, root), root, b"/locked/x") == errno.EACCES


def test_tmpfs_files_and_limits(env) -> None:
    task, ns, root = env
    rootdir = root.dentry.inode
    node = rootdir.create(task, b"data", 0o600)
    f = node.open(task, 2)
    assert f.write(task, b"hello") == 5
    assert f.lseek(0, 0) == 0 and f.read(task, 10) == b"hello"
    assert f.stat().st_size == 5 and node.stat().st_mode & 0o777 == 0o600
    with pytest.raises(SyscallError) as exc:
        f.pwrite(task, b"x", 2 << 20)  # beyond size=1M
    assert exc.value.errno == errno.ENOSPC
    assert errno_of(rootdir.create, task, b"data", 0o600) == errno.EEXIST
    rootdir.mkdir(task, b"d", 0o755)
    rootdir.lookup(task, b"d").create(task, b"inner", 0o644)
    assert errno_of(rootdir.rmdir, task, b"d") == errno.ENOTEMPTY
    assert errno_of(rootdir.unlink, task, b"d") == errno.EISDIR
    assert errno_of(rootdir.rename, task, b"data", rootdir, b"d", 0) == errno.EISDIR
    rootdir.create(task, b"other", 0o644)
    assert errno_of(rootdir.rename, task, b"data", rootdir, b"other", RENAME_NOREPLACE) == errno.EEXIST
    rootdir.rename(task, b"data", rootdir, b"other", RENAME_EXCHANGE)
    assert rootdir.lookup(task, b"other") is node
    d = rootdir.lookup(task, b"d")
    assert errno_of(rootdir.rename, task, b"d", d, b"sub", 0) == errno.EINVAL  # into itself
    used = node.fs.used
    rootdir.unlink(task, b"other")
    assert node.fs.used == used  # still open
    f.release()
    assert node.fs.used == 0


def test_directory_listing_is_stable(env) -> None:
    task, ns, root = env
    rootdir = root.dentry.inode
    for name in (b"a", b"b", b"c"):
        rootdir.create(task, name, 0o644)
    listing = DirectoryFile(rootdir, task, 0)
    first = listing.getdents(48)  # room for a few records only
    rootdir.unlink(task, b"a")  # a concurrent change does not shift the offsets
    rest = listing.getdents(4096)
    names = _names(first + rest)
    assert names == [b".", b"..", b"a", b"b", b"c"]
    listing.lseek(0, 0)
    assert _names(listing.getdents(4096)) == [b".", b"..", b"b", b"c"]


def _names(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        reclen = int.from_bytes(data[pos + 16:pos + 18], "little")
        out.append(data[pos + 19:pos + reclen].split(b"\0", 1)[0])
        pos += reclen
    return out


def test_cpu_lists() -> None:
    from snakevisor.fsimpl.sysfs import cpu_list
    assert cpu_list({0, 1}) == b"0-1\n"
    assert cpu_list({0, 2, 3, 4, 8, 9}) == b"0,2-4,8-9\n"
    assert cpu_list({5}) == b"5\n"
