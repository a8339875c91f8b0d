"""GoferFs: a host directory served by a real gofer process, driven through the Inode API
(the calls SandboxRoot makes) with a minimal task."""
from __future__ import annotations

import errno
import gc
import os
import stat
import types
from pathlib import Path

import pytest

from snakevisor.fsimpl.goferfs import GoferFile, GoferFs
from snakevisor.kernel.errors import SyscallError
from snakevisor.kernel.task import Credentials
from snakevisor.vfs.dirfile import DirectoryFile

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the gofer unshares a mount namespace: root only"),
]


def _task():
    """What the Inode API asks of a task: identity, umask, warnings."""
    warnings: dict[str, str] = {}
    kernel = types.SimpleNamespace(warn_once=lambda k, msg: warnings.setdefault(k, msg),
                                   warnings=warnings)
    return types.SimpleNamespace(kernel=kernel, tg=types.SimpleNamespace(
        creds=Credentials(), umask=0o022))


@pytest.fixture
def vol(tmp_path: Path) -> Path:
    d = tmp_path / "vol"
    (d / "sub").mkdir(parents=True)
    (d / "hello").write_bytes(b"hello\n")
    (d / "shadow").symlink_to("/etc/shadow")
    return d


def _start(vol: Path, writable: bool):
    fs = GoferFs.start(str(vol), writable)
    yield fs
    proc = fs.proc
    fs.close()
    assert proc.returncode == 0


@pytest.fixture
def rw(vol: Path):
    yield from _start(vol, True)


@pytest.fixture
def ro(vol: Path):
    yield from _start(vol, False)


def _errno_of(fn, *args) -> int:
    with pytest.raises(SyscallError) as info:
        fn(*args)
    return info.value.errno


def _names(node, task) -> set[bytes]:
    return {name for name, _, _ in node.entries(task)}


def test_lookup_and_stat_match_the_host(rw: GoferFs, vol: Path) -> None:
    t = _task()
    root = rw.root()
    assert root.is_dir and root.ino == os.stat(vol).st_ino
    node = root.lookup(t, b"hello")
    host = os.stat(vol / "hello")
    s = node.stat()
    assert (s.st_mode, s.st_ino, s.st_dev, s.st_size, s.st_nlink, s.st_mtime_ns) == (
        host.st_mode, host.st_ino, host.st_dev, 6, 1, host.st_mtime_ns)
    assert root.lookup(t, b"nope") is None
    assert _errno_of(node.lookup, t, b"x") == errno.ENOTDIR
    assert _names(root, t) == {b"sub", b"hello", b"shadow"}
    kinds = {name: dtype for name, _, dtype in root.entries(t)}
    assert (kinds[b"sub"], kinds[b"hello"], kinds[b"shadow"]) == (4, 8, 10)


def test_create_open_write_read_through_the_donated_fd(rw: GoferFs, vol: Path) -> None:
    t = _task()
    root = rw.root()
    node = root.create(t, b"new", 0o640)
    assert stat.S_IMODE(os.stat(vol / "new").st_mode) == 0o640
    assert _errno_of(root.create, t, b"new", 0o644) == errno.EEXIST
    f = node.open(t, os.O_WRONLY)
    assert isinstance(f, GoferFile)
    assert f.write(t, b"data\n") == 5
    assert _errno_of(f.read, t, 10) == errno.EBADF  # the host fd's access mode holds
    f.release()
    assert (vol / "new").read_bytes() == b"data\n"
    again = root.lookup(t, b"new")
    g = again.open(t, os.O_RDONLY)
    assert g.pread(t, 100, 0) == b"data\n"
    assert g.stat().st_ino == again.stat().st_ino == os.stat(vol / "new").st_ino
    g2 = again.open(t, os.O_RDWR | os.O_APPEND)  # a second open of one inode clones its fid
    g2.write(t, b"more\n")
    g2.release()
    assert g.pread(t, 100, 0) == b"data\nmore\n" and again.stat().st_size == 10
    g.release()
    again.setattr(t, size=2, mode=0o600)
    assert (vol / "new").read_bytes() == b"da"
    assert stat.S_IMODE(os.stat(vol / "new").st_mode) == 0o600
    again.setattr(t, uid=1234, gid=0xFFFFFFFF)
    assert (os.stat(vol / "new").st_uid, again.stat().st_uid) == (1234, 1234)


def test_namespace_changes(rw: GoferFs, vol: Path) -> None:
    t = _task()
    root = rw.root()
    d = root.mkdir(t, b"d", 0o750)
    assert d.is_dir and stat.S_IMODE(os.stat(vol / "d").st_mode) == 0o750
    assert _errno_of(root.mkdir, t, b"d", 0o755) == errno.EEXIST
    d.create(t, b"f", 0o644)
    root.rename(t, b"hello", d, b"moved", 0)
    assert (vol / "d" / "moved").read_bytes() == b"hello\n" and not (vol / "hello").exists()
    assert _errno_of(d.rename, t, b"f", d, b"moved", 1) == errno.EEXIST  # RENAME_NOREPLACE
    d.link(t, b"hard", d.lookup(t, b"moved"))
    assert os.stat(vol / "d" / "hard").st_nlink == 2
    assert _names(d, t) == {b"f", b"moved", b"hard"}
    assert _errno_of(root.rmdir, t, b"d") == errno.ENOTEMPTY
    for name in (b"f", b"moved", b"hard"):
        d.unlink(t, name)
    assert _names(d, t) == set()
    assert _errno_of(root.unlink, t, b"d") == errno.EISDIR
    root.rmdir(t, b"d")
    assert not (vol / "d").exists() and root.lookup(t, b"d") is None
    dirfile = root.open(t, os.O_RDONLY | os.O_DIRECTORY)
    assert isinstance(dirfile, DirectoryFile) and b"sub" in dirfile.getdents(4096)


def test_host_changes_are_seen_at_once(rw: GoferFs, vol: Path) -> None:
    t = _task()
    root = rw.root()
    node = root.lookup(t, b"hello")
    (vol / "hello").write_bytes(b"longer text\n")
    assert node.stat().st_size == 12
    (vol / "late").write_bytes(b"x")
    assert root.lookup(t, b"late") is not None and b"late" in _names(root, t)
    os.unlink(vol / "late")
    assert root.lookup(t, b"late") is None and b"late" not in _names(root, t)
    os.chmod(vol, 0o711)
    assert stat.S_IMODE(rw.root().mode) == 0o711
    (vol / "hello").unlink()
    (vol / "hello").write_bytes(b"replaced\n")  # another inode under the same name
    assert root.lookup(t, b"hello").stat().st_ino == os.stat(vol / "hello").st_ino


def test_symlinks_are_never_followed_by_the_gofer(rw: GoferFs) -> None:
    t = _task()
    link = rw.root().lookup(t, b"shadow")
    assert link.is_symlink and link.readlink(t) == b"/etc/shadow"
    assert stat.S_ISLNK(link.stat().st_mode)
    assert _errno_of(link.open, t, os.O_RDONLY) == errno.ELOOP
    assert _errno_of(link.lookup, t, b"x") == errno.ENOTDIR
    new = rw.root().symlink(t, b"up", b"../../..")
    assert new.is_symlink and new.readlink(t) == b"../../.."
    assert _errno_of(rw.root().readlink, t) == errno.EINVAL


def test_read_only_volume_refuses_writes(ro: GoferFs, vol: Path) -> None:
    t = _task()
    root = ro.root()
    node = root.lookup(t, b"hello")
    assert node.open(t, os.O_RDONLY).pread(t, 5, 0) == b"hello"
    assert _errno_of(node.open, t, os.O_WRONLY) == errno.EROFS
    assert _errno_of(root.create, t, b"x", 0o644) == errno.EROFS
    assert _errno_of(root.mkdir, t, b"x", 0o755) == errno.EROFS
    assert _errno_of(root.mkdir, t, b"sub", 0o755) == errno.EEXIST  # as Linux: exists first
    assert _errno_of(root.symlink, t, b"x", b"y") == errno.EROFS
    assert _errno_of(root.unlink, t, b"hello") == errno.EROFS
    assert _errno_of(root.rename, t, b"hello", root, b"x", 0) == errno.EROFS
    assert _errno_of(node.setattr, t, None, None, None, 0) == errno.EROFS
    assert _errno_of(node.setattr, t, 0o600) == errno.EROFS
    assert sorted(os.listdir(vol)) == ["hello", "shadow", "sub"]
    flags = int.from_bytes(ro.statfs()[80:88], "little")
    assert flags & 1  # ST_RDONLY


def test_fids_are_given_back(rw: GoferFs) -> None:
    t = _task()
    root = rw.root()
    for _ in range(50):
        root.lookup(t, b"hello").open(t, os.O_RDONLY).release()
        root.lookup(t, b"nope")
    gc.collect()
    rw.p9()  # clunks what was collected
    c = rw.client
    assert c._next_fid - len(c._free_fids) <= 2  # the attach fid (and at most one in use)
