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
from snakevisor.p9 import messages as m
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


# --- one gofer per sandbox, the cache, the dialect's extensions -------------------------------

def _as(uid: int, gid: int):
    t = _task()
    t.tg.creds.fsuid, t.tg.creds.fsgid = uid, gid
    return t


@pytest.fixture
def mounts(tmp_path: Path, vol: Path):
    """The root (read-only, as under the overlay) and two volumes through ONE gofer."""
    from snakevisor.gofer.launch import start_gofer_mounts
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_bytes(b"root:x:0:0\n")
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "data").write_bytes(b"ro\n")
    g = start_gofer_mounts(str(root), False, [(str(vol), "/v", False), (str(ro), "/r/o", True)])
    yield g
    g.close()
    assert g.conn.proc.returncode == 0


def test_one_gofer_serves_the_root_and_every_volume(mounts, vol: Path) -> None:
    t = _task()
    assert set(mounts.volumes) == {"/v", "/r/o"}
    fss = [mounts.root, mounts.volumes["/v"], mounts.volumes["/r/o"]]
    assert len({id(fs.conn) for fs in fss}) == 1 and mounts.conn.proc is not None
    passwd = mounts.root.root().lookup(t, b"etc").lookup(t, b"passwd")
    assert passwd.open(t, os.O_RDONLY).pread(t, 100, 0) == b"root:x:0:0\n"
    assert mounts.volumes["/v"].root().lookup(t, b"hello").stat().st_size == 6
    data = mounts.volumes["/r/o"].root().lookup(t, b"data")
    assert data.open(t, os.O_RDONLY).pread(t, 10, 0) == b"ro\n"
    assert _errno_of(data.open, t, os.O_WRONLY) == errno.EROFS
    assert _errno_of(mounts.root.root().create, t, b"x", 0o644) == errno.EROFS
    mounts.volumes["/v"].root().create(t, b"made", 0o644)
    assert (vol / "made").exists()
    assert mounts.root.writable is False and mounts.volumes["/v"].writable is True


def test_cached_names_are_revalidated_not_trusted(rw: GoferFs, vol: Path) -> None:
    """Each walk asks the host again: a name replaced, renamed away or removed on the host is
    seen by the very next lookup, even when the whole path is cached."""
    t = _task()
    (vol / "sub" / "deep").mkdir()
    (vol / "sub" / "deep" / "f").write_bytes(b"1")

    def walk(*names: bytes):
        node = rw.root()
        for name in names:
            node = node.lookup(t, name)
            if node is None:
                return None
        return node

    first = walk(b"sub", b"deep", b"f")
    assert walk(b"sub", b"deep", b"f") is first  # cached: the same inode, its fid kept
    (vol / "sub" / "deep" / "f").unlink()
    (vol / "sub" / "deep" / "f").write_bytes(b"22")
    again = walk(b"sub", b"deep", b"f")
    assert again is not first and again.stat().st_size == 2
    os.rename(vol / "sub" / "deep", vol / "sub" / "moved")
    assert walk(b"sub", b"deep", b"f") is None and walk(b"sub", b"moved", b"f") is not None
    os.chmod(vol / "sub", 0o700)
    assert stat.S_IMODE(walk(b"sub").mode) == 0o700  # attributes of a cached node: fresh
    (vol / "sub" / "moved" / "f").unlink()
    assert walk(b"sub", b"moved", b"f") is None


def test_a_walk_takes_one_request_per_walk_not_per_name(rw: GoferFs, vol: Path) -> None:
    """Revalidating a cached path is one Twalkstat: count requests on the wire."""
    t = _task()
    (vol / "a" / "b" / "c").mkdir(parents=True)
    names = (b"a", b"b", b"c")

    def walk():
        node = rw.root()
        for name in names:
            node = node.lookup(t, name)
        return node

    walk()
    sent = []
    c = rw.client
    real = c._send
    c._send = lambda packet: (sent.append(packet[4]), real(packet))[1]
    try:
        assert walk() is not None
    finally:
        c._send = real
    assert sent == [m.Twalkstat.TYPE]


def test_times_xattrs_fifos_and_owners_reach_the_host(rw: GoferFs, vol: Path) -> None:
    t = _task()
    root = rw.root()
    node = root.lookup(t, b"hello")
    node.set_times(t, 1_000_000_123, None)
    st = os.stat(vol / "hello")
    assert st.st_atime_ns == 1_000_000_123 and st.st_mtime_ns != 1_000_000_123
    node.set_times(t, None, 2_000_000_000)
    assert os.stat(vol / "hello").st_mtime_ns == 2_000_000_000
    node.setxattr(t, b"user.one", b"111", 0)
    node.setxattr(t, b"user.empty", b"", 0)  # an empty value is a value, not a removal
    assert os.getxattr(vol / "hello", "user.empty") == b""
    assert node.getxattr(t, b"user.one") == b"111"
    assert sorted(node.listxattr(t)) == [b"user.empty", b"user.one"]
    assert _errno_of(node.setxattr, t, b"user.one", b"2", 1) == errno.EEXIST  # XATTR_CREATE
    node.removexattr(t, b"user.one")
    assert _errno_of(node.getxattr, t, b"user.one") == errno.ENODATA
    assert _errno_of(node.removexattr, t, b"user.one") == errno.ENODATA
    assert _errno_of(node.setxattr, t, b"trusted.x", b"1", 0) == errno.EPERM
    fifo = root.mknod(t, b"fifo", stat.S_IFIFO | 0o640, 0)
    assert stat.S_ISFIFO(os.stat(vol / "fifo").st_mode) and fifo.stat().st_mode & 0o777 == 0o640
    assert _errno_of(root.mknod, t, b"dev", stat.S_IFCHR | 0o600, 0x0101) == errno.EPERM
    user = _as(1000, 1000)
    made = root.mkdir(user, b"mine", 0o755)
    f = made.create_open(user, b"f", os.O_WRONLY, 0o6755)  # set-ID bits survive the chown
    f.release()
    link = made.symlink(user, b"l", b"f")
    for path, node in ((vol / "mine", made), (vol / "mine" / "f", made.lookup(t, b"f")),
                       (vol / "mine" / "l", link)):
        host = os.lstat(path)
        assert (host.st_uid, host.st_gid) == (1000, 1000) == (node.uid, node.gid)
    assert stat.S_IMODE(os.stat(vol / "mine" / "f").st_mode) == 0o6755
    os.chmod(vol / "mine", 0o2775)  # a setgid directory gives its group
    os.chown(vol / "mine", 1000, 55)
    root.lookup(t, b"mine")
    made.create_open(user, b"g", os.O_RDWR, 0o644).release()
    assert os.stat(vol / "mine" / "g").st_gid == 55


def test_rename_flags_and_tmpfiles(rw: GoferFs, vol: Path) -> None:
    t = _task()
    root = rw.root()
    (vol / "x").write_bytes(b"x")
    (vol / "y").write_bytes(b"y")
    root.rename(t, b"x", root, b"y", 2)  # RENAME_EXCHANGE
    assert (vol / "x").read_bytes() == b"y" and (vol / "y").read_bytes() == b"x"
    assert _errno_of(root.rename, t, b"x", root, b"y", 1) == errno.EEXIST  # NOREPLACE
    assert _errno_of(root.rename, t, b"x", root, b"y", 4) == errno.EINVAL  # WHITEOUT
    f = root.open_tmpfile(t, os.O_RDWR | 0o20200000, 0o600)
    assert f.write(t, b"tmp") == 3 and os.fstat(f.fd).st_nlink == 0
    root.link(t, b"named", f.inode)
    assert (vol / "named").read_bytes() == b"tmp" and f.inode.nlink == 1
    f.release()
    g = root.open_tmpfile(t, os.O_WRONLY | os.O_EXCL | 0o20200000, 0o600)
    assert _errno_of(root.link, t, b"never", g.inode) == errno.ENOENT  # O_EXCL: not linkable
    g.release()


def test_open_after_the_host_replaced_the_name_opens_what_it_holds_now(rw: GoferFs,
                                                                        vol: Path) -> None:
    """Looked up, then replaced on the host (rename over it) before the open: the gofer's
    reopen by name finds another object (ESTALE), so the name is walked again."""
    t = _task()
    node = rw.root().lookup(t, b"hello")
    (vol / "new").write_bytes(b"replaced\n")
    os.rename(vol / "new", vol / "hello")
    f = node.open(t, os.O_RDONLY)
    assert f.pread(t, 100, 0) == b"replaced\n" and f.inode is not node
    f.release()


def test_the_overlay_upper_directory_is_an_export_of_the_same_gofer(tmp_path: Path,
                                                                     vol: Path) -> None:
    """--overlay2 root:dir=PATH: the FileStore's nameless files come from the same gofer."""
    from snakevisor.gofer.launch import start_gofer_mounts
    upper = tmp_path / "upper"
    upper.mkdir()
    g = start_gofer_mounts(str(vol), False, [], upper_dir=str(upper))
    try:
        fd = g.upper.new_unlinked_file()
        assert os.write(fd, b"bytes") == 5 and os.fstat(fd).st_nlink == 0
        assert os.listdir(upper) == [] and g.upper.conn is g.root.conn
        os.close(fd)
    finally:
        g.close()
    assert g.conn.proc.returncode == 0


def test_an_overlay_lower_layer_is_exported_read_only(tmp_path: Path) -> None:
    """Under an overlay nothing writes the image: even asked for a writable root, the gofer
    exports it read-only (a sentry taken over cannot change the image through it)."""
    from snakevisor.gofer.launch import GoferPlan
    assert GoferPlan.resolve(str(tmp_path), True, [], overlay=True).root_writable is False
    assert GoferPlan.resolve(str(tmp_path), True, [], overlay=False).root_writable is True
