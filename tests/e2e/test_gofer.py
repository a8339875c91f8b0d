"""The real gofer process on a temporary container tree, driven by the sentry's 9P client.

Re-measuring the seccomp allowlist: ``SNAKEVISOR_GOFER_STRACE=/tmp/gofer.strace pytest
tests/e2e/test_gofer.py`` runs every gofer with --no-seccomp and strace attached to its
serving loop; the union of the calls in /tmp/gofer.strace.* is what gofer/seccomp.py allows.
"""
from __future__ import annotations

import array
import errno
import os
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from snakevisor.gofer import confine, seccomp
from snakevisor.gofer.confine import Volume
from snakevisor.gofer.launch import start_gofer
from snakevisor.kernel.errors import SyscallError
from snakevisor.p9 import messages as m
from snakevisor.p9.client import Client

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the gofer unshares a mount namespace: root only"),
]

UID, GID = 1234, 5678


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ (with an /etc/shadow symlink and a ..-escaping one), vol/ (ro), rw/, one file."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hello").write_bytes(b"hello\n")
    (root / "dir").mkdir()
    (root / "shadow").symlink_to("/etc/shadow")
    (root / "escape").symlink_to("../" * 12 + "etc")
    (tmp_path / "vol").mkdir()
    (tmp_path / "vol" / "data").write_bytes(b"read only\n")
    (tmp_path / "rw").mkdir()
    (tmp_path / "hosts").write_bytes(b"127.0.0.1 localhost\n")
    return tmp_path


def _volumes(tree: Path) -> list[Volume]:
    return [Volume(str(tree / "vol"), b"/data", ro=True),
            Volume(str(tree / "rw"), b"/work", ro=False),
            Volume(str(tree / "hosts"), b"/etc/hosts", ro=True)]


class Gofer:
    def __init__(self, tree: Path, want_fds: bool = True) -> None:
        trace = os.environ.get("SNAKEVISOR_GOFER_STRACE")
        extra = ("--no-seccomp",) if trace else ()
        self.proc, self.sock = start_gofer(str(tree / "root"), _volumes(tree), extra_args=extra)
        self.tracer = None
        if trace:
            _wait_status(self.proc.pid, "NoNewPrivs:\t1\n")  # confined: the loop starts next
            self.tracer = subprocess.Popen(["strace", "-f", "-qq", "-o",
                                            f"{trace}.{self.proc.pid}", "-p", str(self.proc.pid)])
            _wait_status(self.proc.pid, "TracerPid:\t0\n", present=False)
        self.client = Client(self.sock, want_fds=want_fds)
        self.root, self.root_qid = self.client.attach(b"/", UID)

    def close(self) -> int:
        self.sock.close()
        rc = self.proc.wait(10)
        if self.tracer is not None:
            self.tracer.wait(10)
        return rc


def _wait_status(pid: int, line: str, present: bool = True) -> None:
    for _ in range(500):
        if (line in Path(f"/proc/{pid}/status").read_text()) == present:
            return
        time.sleep(0.01)


@pytest.fixture
def gofer(tree: Path):
    g = Gofer(tree)
    yield g
    assert g.close() == 0


def _errno_of(fn, *args) -> int:
    with pytest.raises(SyscallError) as info:
        fn(*args)
    return info.value.errno


def test_attach_walk_getattr(gofer: Gofer, tree: Path) -> None:
    c = gofer.client
    assert gofer.root_qid.type == m.QTDIR
    fid, qids = c.walk(gofer.root, [b"etc", b"hello"])
    host = os.stat(tree / "root" / "etc" / "hello")
    assert fid is not None and [q.type for q in qids] == [m.QTDIR, m.QTFILE]
    assert qids[1].path == host.st_ino
    a = c.getattr(fid)
    assert (a.mode, a.size, a.nlink, a.uid) == (host.st_mode, 6, 1, host.st_uid)
    assert (a.mtime_sec, a.mtime_nsec) == divmod(host.st_mtime_ns, 10**9)
    assert a.valid == m.GETATTR_BASIC and a.qid == qids[1]
    assert _errno_of(c.walk, gofer.root, [b"nope"]) == errno.ENOENT
    assert _errno_of(c.attach, b"/nowhere") == errno.ENOENT
    # a partial walk creates no fid; walking from a file is ENOTDIR
    assert c.walk(gofer.root, [b"etc", b"nope"]) == (None, [qids[0]])
    assert _errno_of(c.walk, fid, [b"x"]) == errno.ENOTDIR
    c.clunk(fid)
    assert _errno_of(c.getattr, fid) == errno.EBADF


def test_lopen_donates_the_host_fd(gofer: Gofer, tree: Path) -> None:
    c = gofer.client
    assert c.fds
    fid, _ = c.walk(gofer.root, [b"etc", b"hello"])
    qid, iounit, fd = c.lopen(fid, os.O_RDONLY)
    assert fd is not None and iounit == c.msize - m.IOHDRSZ
    try:
        assert os.pread(fd, 100, 0) == b"hello\n"
        assert os.fstat(fd).st_ino == qid.path
        assert os.get_inheritable(fd) is False
        assert _errno_of_os(os.pwrite, fd, b"x", 0) == errno.EBADF  # opened O_RDONLY
    finally:
        os.close(fd)
    assert c.read(fid, 1, 3) == b"ell"  # the fid stays usable for Tread
    assert _errno_of(c.lopen, fid, os.O_RDONLY) == errno.EBUSY
    # "walk + open for mmap/exec": the fd outlives its fid
    fid2, _ = c.walk(gofer.root, [b"etc", b"hello"])
    _, _, fd2 = c.lopen(fid2, os.O_RDONLY)
    c.clunk(fid2)
    try:
        assert os.pread(fd2, 5, 0) == b"hello"
    finally:
        os.close(fd2)
    # directories are never donated (a directory fd could openat(fd, "..") out of the root)
    d = c.clone(gofer.root)
    _, _, dfd = c.lopen(d, os.O_RDONLY | os.O_DIRECTORY)
    assert dfd is None


def _errno_of_os(fn, *args) -> int:
    with pytest.raises(OSError) as info:
        fn(*args)
    return info.value.errno


def test_plain_9p2000l_donates_nothing(tree: Path) -> None:
    g = Gofer(tree, want_fds=False)
    try:
        assert g.client.version == m.VERSION and not g.client.fds
        fid, _ = g.client.walk(g.root, [b"etc", b"hello"])
        assert g.client.lopen(fid, os.O_RDONLY)[2] is None
        assert g.client.read(fid, 0, 100) == b"hello\n"
    finally:
        assert g.close() == 0


def test_create_write_rename_unlink_mkdir_readdir(gofer: Gofer, tree: Path) -> None:
    c, root = gofer.client, tree / "root"
    f = c.clone(gofer.root)
    qid, _, fd = c.lcreate(f, b"new", os.O_RDWR, 0o640, GID)
    try:
        assert c.write(f, 0, b"via 9p ") == 7
        assert os.pwrite(fd, b"via fd", 7) == 6
    finally:
        os.close(fd)
    host = os.stat(root / "new")
    assert (root / "new").read_bytes() == b"via 9p via fd"
    assert (stat.S_IMODE(host.st_mode), host.st_uid, host.st_gid) == (0o640, UID, GID)
    assert host.st_ino == qid.path
    assert _errno_of(c.lcreate, c.clone(gofer.root), b"new", os.O_RDWR, 0o644) == errno.EEXIST
    dq = c.mkdir(gofer.root, b"sub", 0o2750, GID)
    st = os.stat(root / "sub")
    assert dq.type == m.QTDIR and (stat.S_IMODE(st.st_mode), st.st_uid) == (0o2750, UID)
    c.renameat(gofer.root, b"new", gofer.root, b"renamed")
    assert not (root / "new").exists() and (root / "renamed").exists()
    # the created fid followed the rename: it can still be reopened by name
    f2, _ = c.walk(gofer.root, [b"renamed"])
    sub, _ = c.walk(gofer.root, [b"sub"])
    c.renameat(gofer.root, b"renamed", sub, b"moved")
    _, _, fd = c.lopen(f2, os.O_RDONLY)
    try:
        assert os.pread(fd, 6, 0) == b"via 9p"
    finally:
        os.close(fd)
    assert _errno_of(c.unlinkat, gofer.root, b"sub", m.AT_REMOVEDIR) == errno.ENOTEMPTY
    c.unlinkat(sub, b"moved")
    c.unlinkat(gofer.root, b"sub", m.AT_REMOVEDIR)
    assert sorted(os.listdir(root)) == ["dir", "escape", "etc", "shadow"]


def test_readdir_in_pieces_and_host_changes_seen_at_once(gofer: Gofer, tree: Path) -> None:
    c, d = gofer.client, tree / "root" / "dir"
    names = {f"file{i:03d}".encode() for i in range(60)}
    for n in names:
        (d / n.decode()).write_bytes(b"")
    fid, _ = c.walk(gofer.root, [b"dir"])
    c.lopen(fid, os.O_RDONLY | os.O_DIRECTORY)
    seen, offset, calls = [], 0, 0
    while True:
        entries = c.readdir(fid, offset, 200)  # a few entries per call
        if not entries:
            break
        calls += 1
        seen += entries
        offset = entries[-1].offset
    got = {e.name for e in seen}
    assert got == names | {b".", b".."} and len(seen) == len(got) and calls > 5
    by_name = {e.name: e for e in seen}
    assert by_name[b"file000"].qid.path == os.stat(d / "file000").st_ino
    assert by_name[b"file000"].type == 8 and by_name[b"."].qid.type == m.QTDIR
    # a file created on the host after the walk is found by the next walk
    (d / "late").write_bytes(b"12345")
    late, _ = c.walk(gofer.root, [b"dir", b"late"])
    assert c.getattr(late).size == 5
    (d / "late").write_bytes(b"1234567890")
    assert c.getattr(late).size == 10


def test_symlinks_are_never_followed(gofer: Gofer, tree: Path) -> None:
    c = gofer.client
    s, qids = c.walk(gofer.root, [b"shadow"])
    assert qids[0].type == m.QTSYMLINK
    assert c.readlink(s) == b"/etc/shadow"
    assert _errno_of(c.lopen, s, os.O_RDONLY) == errno.ELOOP
    assert stat.S_ISLNK(c.getattr(s).mode)
    e, _ = c.walk(gofer.root, [b"escape"])
    assert c.readlink(e) == b"../" * 12 + b"etc"
    # through the link: the walk stops at it (partial) or fails ENOTDIR, never reaches /etc
    newfid, partial = c.walk(gofer.root, [b"escape", b"passwd"])
    assert newfid is None and [q.path for q in partial] == [os.lstat(tree / "root" / "escape").st_ino]
    assert _errno_of(c.walk, e, [b"passwd"]) == errno.ENOTDIR
    # ".." stays at the root; "." and names with "/" are refused
    up, qs = c.walk(gofer.root, [b"..", b"..", b"etc"])
    assert qs[0] == gofer.root_qid and qs[1] == qs[0] and qs[2].type == m.QTDIR
    assert c.walk(up, [b"hello"])[0] is not None
    for bad in (b".", b"etc/hello", b"", b"a\0b"):
        assert _errno_of(c.walk, gofer.root, [bad]) == errno.EINVAL
    assert _errno_of(c.walk, gofer.root, [b"x" * 256]) == errno.ENAMETOOLONG


def test_readonly_volumes_refuse_writes(gofer: Gofer, tree: Path) -> None:
    c = gofer.client
    v, _ = c.attach(b"/data", UID)
    data, _ = c.walk(v, [b"data"])
    assert _errno_of(c.read, data, 0, 100) == errno.EBADF  # not opened yet
    _, _, fd = c.lopen(data, os.O_RDONLY)
    os.close(fd)
    assert c.read(data, 0, 100) == b"read only\n"
    f2, _ = c.walk(v, [b"data"])
    assert _errno_of(c.lopen, f2, os.O_WRONLY) == errno.EROFS
    assert _errno_of(c.lcreate, c.clone(v), b"x", os.O_RDWR, 0o644) == errno.EROFS
    assert _errno_of(c.mkdir, v, b"d", 0o755) == errno.EROFS
    assert _errno_of(c.unlinkat, v, b"data") == errno.EROFS
    assert _errno_of(c.setattr, f2, m.SETATTR_MODE, 0o777) == errno.EROFS
    assert _errno_of(c.setattr, f2, m.SETATTR_SIZE, 0, 0, 0, 0) == errno.EROFS
    assert (tree / "vol" / "data").read_bytes() == b"read only\n"
    # a single-file volume: attach to the file itself
    h, q = c.attach(b"/etc/hosts", UID)
    assert q.type == m.QTFILE
    _, _, fd = c.lopen(h, os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"127.0.0.1 localhost\n"
    finally:
        os.close(fd)
    assert _errno_of(c.lopen, c.clone(h), os.O_RDWR) == errno.EROFS
    assert _errno_of(c.walk, h, [b".."]) == errno.ENOTDIR
    # the rw volume takes writes
    w, _ = c.attach(b"/work", UID)
    f = c.clone(w)
    _, _, fd = c.lcreate(f, b"out", os.O_WRONLY, 0o600)
    os.write(fd, b"ok")
    os.close(fd)
    assert (tree / "rw" / "out").read_bytes() == b"ok"
    assert _errno_of(c.renameat, w, b"out", gofer.root, b"out") == errno.EXDEV


def test_setattr_link_symlink_mknod(gofer: Gofer, tree: Path) -> None:
    c, root = gofer.client, tree / "root"
    f = c.clone(gofer.root)
    _, _, fd = c.lcreate(f, b"f", os.O_RDWR, 0o644)
    os.write(fd, b"0123456789")
    os.close(fd)
    c.setattr(f, m.SETATTR_SIZE, size=4)
    c.setattr(f, m.SETATTR_MODE, mode=0o4711)
    c.setattr(f, m.SETATTR_UID | m.SETATTR_GID, uid=42, gid=43)
    c.setattr(f, m.SETATTR_ATIME | m.SETATTR_ATIME_SET | m.SETATTR_MTIME | m.SETATTR_MTIME_SET,
              atime=(1000, 5), mtime=(2000, 123456789))
    st = os.stat(root / "f")
    assert st.st_size == 4 and (st.st_uid, st.st_gid) == (42, 43)
    assert stat.S_IMODE(st.st_mode) == 0o711  # chown cleared set-user-ID, as on Linux
    assert (st.st_atime_ns, st.st_mtime_ns) == (1000 * 10**9 + 5, 2000 * 10**9 + 123456789)
    before = time.time_ns()
    c.setattr(f, m.SETATTR_MTIME)  # no _SET bit: the server's "now"
    assert os.stat(root / "f").st_mtime_ns >= before - 10**9
    assert os.stat(root / "f").st_atime_ns == 1000 * 10**9 + 5
    d, _ = c.walk(gofer.root, [b"dir"])
    assert _errno_of(c.setattr, d, m.SETATTR_SIZE) == errno.EISDIR
    c.link(d, f, b"hard")
    assert os.stat(root / "dir" / "hard").st_ino == st.st_ino
    q = c.symlink(gofer.root, b"sl", b"/etc/passwd", GID)
    assert q.type == m.QTSYMLINK and os.readlink(root / "sl") == "/etc/passwd"
    assert os.lstat(root / "sl").st_uid == UID
    q = c.mknod(gofer.root, b"fifo", stat.S_IFIFO | 0o600)
    assert stat.S_ISFIFO(os.stat(root / "fifo").st_mode)
    fifo, _ = c.walk(gofer.root, [b"fifo"])
    assert _errno_of(c.lopen, fifo, os.O_RDONLY) == errno.EPERM  # never blocks the gofer
    assert _errno_of(c.mknod, gofer.root, b"null", stat.S_IFCHR | 0o666, 1, 3) == errno.EPERM
    sfs = c.statfs(gofer.root)
    host = os.statvfs(root)
    assert (sfs.namelen, sfs.bsize, sfs.blocks) == (host.f_namemax, host.f_bsize, host.f_blocks)
    c.fsync(f)  # f is open since its Tlcreate
    c.fsync(f, datasync=True)


def test_xattrs_and_locks(gofer: Gofer, tree: Path) -> None:
    c = gofer.client
    f = c.clone(gofer.root)
    c.lcreate(f, b"x", os.O_RDWR, 0o644)
    try:
        os.setxattr(tree / "root" / "x", "user.probe", b"1")
    except OSError:
        pytest.skip("no user xattrs on the test file system")
    c.setxattr(f, b"user.color", b"blue")
    assert c.getxattr(f, b"user.color") == b"blue"
    assert set(c.listxattr(f)) >= {b"user.color", b"user.probe"}
    assert os.getxattr(tree / "root" / "x", "user.color") == b"blue"
    assert _errno_of(c.setxattr, f, b"user.color", b"red", 1) == errno.EEXIST  # XATTR_CREATE
    c.removexattr(f, b"user.color")
    assert _errno_of(c.getxattr, f, b"user.color") == errno.ENODATA
    # locks: each opened fid is its own lock owner
    g, _ = c.walk(gofer.root, [b"x"])
    c.lopen(g, os.O_RDWR)
    assert c.lock(f, m.LOCK_TYPE_WRLCK, 0, 10) == m.LOCK_SUCCESS
    assert c.lock(g, m.LOCK_TYPE_RDLCK, 5, 1) == m.LOCK_BLOCKED
    held = c.getlock(g, m.LOCK_TYPE_RDLCK, 0, 0)
    assert (held.type, held.start, held.length) == (m.LOCK_TYPE_WRLCK, 0, 10)
    assert c.lock(f, m.LOCK_TYPE_UNLCK, 0, 10) == m.LOCK_SUCCESS
    assert c.getlock(g, m.LOCK_TYPE_WRLCK, 0, 0).type == m.LOCK_TYPE_UNLCK
    assert c.lock(g, m.LOCK_TYPE_RDLCK, 5, 1) == m.LOCK_SUCCESS


def _raw(sock: socket.socket, packet: bytes) -> tuple[int, m.Message]:
    sock.send(packet)
    return m.decode(sock.recv(m.MAX_MSIZE + 1))


# --- the VERSION_FDS dialect's requests -------------------------------------------------------

def test_walkstat_answers_every_node_and_revalidates(gofer: Gofer, tree: Path) -> None:
    c = gofer.client
    root = tree / "root"
    fid, attrs = c.walkstat(gofer.root, (b"etc", b"hello"))
    assert fid is not None and [a.qid.path for a in attrs] == [
        os.stat(p).st_ino for p in (root, root / "etc", root / "etc" / "hello")]
    assert attrs[2].size == 6 and c.getattr(fid).qid.path == attrs[2].qid.path
    none, attrs = c.walkstat(gofer.root, (b"etc", b"nope"), create=False)
    assert none is None and len(attrs) == 2  # the prefix that exists, no fid
    assert _errno_of(c.walkstat, gofer.root, (b"nope",)) == errno.ENOENT
    (root / "etc" / "hello").unlink()
    (root / "etc" / "hello").write_bytes(b"other\n")  # the same name, another object
    _, attrs = c.walkstat(gofer.root, (b"etc", b"hello"), create=False)
    assert attrs[2].qid.path == os.stat(root / "etc" / "hello").st_ino
    assert _errno_of(c.openfd, fid, os.O_RDONLY) == errno.ESTALE  # the fid's object is gone


def test_openfd_renameat2_and_tmpfile(gofer: Gofer, tree: Path) -> None:
    c = gofer.client
    work = tree / "rw"
    w = c.attach(b"/work", UID)[0]
    (work / "a").write_bytes(b"A")
    (work / "b").write_bytes(b"B")
    fid, _ = c.walk(w, [b"a"])
    fds = [c.openfd(fid, os.O_RDONLY) for _ in range(2)]  # the fid is never opened itself
    assert [os.pread(fd, 1, 0) for fd in fds] == [b"A", b"A"]
    for fd in fds:
        os.close(fd)
    assert _errno_of(c.openfd, w, os.O_RDONLY) == errno.EISDIR
    c.renameat2(w, b"a", w, b"b", 2)  # RENAME_EXCHANGE
    assert (work / "a").read_bytes() == b"B" and (work / "b").read_bytes() == b"A"
    assert _errno_of(c.renameat2, w, b"a", w, b"b", 1) == errno.EEXIST
    assert _errno_of(c.renameat2, w, b"a", w, b"b", 4) == errno.EINVAL  # no whiteouts
    tfid, attrs, fd = c.tmpfile(w, os.O_RDWR, 0o640)
    assert attrs.nlink == 0 and stat.S_IMODE(attrs.mode) == 0o640 and fd is not None
    assert attrs.uid == UID  # the attach's user owns what it creates
    os.write(fd, b"tmp")
    os.close(fd)
    c.link(w, tfid, b"named")
    assert (work / "named").read_bytes() == b"tmp"
    assert _errno_of(c.tmpfile, w, os.O_RDONLY, 0o600) == errno.EINVAL  # needs write access


def test_xattr_remove_flag_and_empty_values(gofer: Gofer, tree: Path) -> None:
    c = gofer.client
    w = c.attach(b"/work", UID)[0]
    (tree / "rw" / "x").write_bytes(b"")
    fid, _ = c.walk(w, [b"x"])
    c.setxattr(fid, b"user.e", b"")
    assert os.getxattr(tree / "rw" / "x", "user.e") == b""  # set, not removed
    c.removexattr(fid, b"user.e")
    assert "user.e" not in os.listxattr(tree / "rw" / "x")
    assert _errno_of(c.removexattr, fid, b"user.e") == errno.ENODATA


def test_several_requests_in_one_packet(gofer: Gofer, tree: Path) -> None:
    """Our dialect: requests back to back in one packet, replies back to back in one, the
    donated fd attached even when a later request of the packet clunks its fid."""
    c = gofer.client
    f = c._alloc_fid()
    packet = b"".join([m.encode(m.Twalk(gofer.root, f, (b"etc", b"hello")), 1),
                       m.encode(m.Tlopen(f, os.O_RDONLY), 2), m.encode(m.Tclunk(f), 3),
                       m.encode(m.Tgetattr(f, m.GETATTR_BASIC), 4)])
    gofer.sock.send(packet)
    data, anc, _, _ = gofer.sock.recvmsg(1 << 17, socket.CMSG_SPACE(16))
    replies = [m.decode(p) for p in m.split_packet(data)]
    assert [(tag, type(r).__name__) for tag, r in replies] == [
        (1, "Rwalk"), (2, "Rlopen"), (3, "Rclunk"), (4, "Rlerror")]
    fds = array.array("i")
    fds.frombytes(anc[0][2])
    assert len(fds) == 1 and os.pread(fds[0], 5, 0) == b"hello"
    os.close(fds[0])


def test_created_modes_are_not_masked_by_the_gofer(gofer: Gofer, tree: Path) -> None:
    """The sandbox applied its umask already: 0777 stays 0777."""
    c = gofer.client
    w = c.attach(b"/work", UID)[0]
    c.mkdir(w, b"open", 0o777)
    f = c.clone(w)
    _, _, fd = c.lcreate(f, b"all", os.O_RDWR, 0o777)
    os.close(fd)
    assert stat.S_IMODE(os.stat(tree / "rw" / "open").st_mode) == 0o777
    assert stat.S_IMODE(os.stat(tree / "rw" / "all").st_mode) == 0o777


def test_malformed_packets_get_rlerror_and_service_goes_on(gofer: Gofer) -> None:
    sock, c = gofer.sock, gofer.client
    good = m.encode(m.Twalk(gofer.root, 99, (b"etc", b"hello")), 7)
    # a truncated string inside an otherwise well-framed message
    bad = bytearray(good[:-3])
    bad[0:4] = len(bad).to_bytes(4, "little")
    assert _raw(sock, bytes(bad)) == (7, m.Rlerror(errno.EINVAL))
    # size field disagreeing with the packet, trailing bytes, huge counts
    assert _raw(sock, good + b"xx") == (7, m.Rlerror(errno.EINVAL))
    huge = m.HEADER.pack(15, m.Twalk.TYPE, 8) + (1).to_bytes(4, "little") * 2 + b"\xff\xff"
    assert _raw(sock, huge[:15]) == (8, m.Rlerror(errno.EINVAL))
    data = m.HEADER.pack(23, m.Twrite.TYPE, 9) + bytes(12) + b"\xff\xff\xff\x7f"
    assert _raw(sock, data) == (9, m.Rlerror(errno.EINVAL))
    # shorter than a header: answered with NOTAG; an unknown type: EOPNOTSUPP
    assert _raw(sock, b"\x03\x00") == (m.NOTAG, m.Rlerror(errno.EINVAL))
    assert _raw(sock, m.HEADER.pack(7, 250, 10)) == (10, m.Rlerror(errno.EOPNOTSUPP))
    # an R-message sent to the server, a message over msize
    assert _raw(sock, m.encode(m.Rclunk(), 11)) == (11, m.Rlerror(errno.EINVAL))
    assert _raw(sock, m.encode(m.Twrite(1, 0, bytes(c.msize)), 12)) == (12, m.Rlerror(errno.EINVAL))
    # out-of-range values are refused without crashing the loop
    fid, _ = c.walk(gofer.root, [b"etc", b"hello"])
    c.lopen(fid, os.O_RDONLY)
    assert _raw(sock, m.encode(m.Tread(fid, 1 << 63, 10), 13)) == (13, m.Rlerror(errno.EINVAL))
    assert gofer.proc.poll() is None
    assert c.getattr(fid).size == 6 and c.read(fid, 0, 5) == b"hello"


@pytest.mark.skipif(bool(os.environ.get("SNAKEVISOR_GOFER_STRACE")), reason="measuring: no seccomp")
def test_gofer_is_confined(gofer: Gofer, tree: Path) -> None:
    pid = gofer.proc.pid
    assert sorted(os.listdir(f"/proc/{pid}/root")) == ["root", "volumes"]
    assert sorted(os.listdir(f"/proc/{pid}/root/root")) == sorted(os.listdir(tree / "root"))
    assert sorted(os.listdir(f"/proc/{pid}/root/volumes")) == ["0", "1", "2"]
    # the container's /etc/shadow symlink, seen from the gofer, points at nothing
    assert not os.path.exists(f"/proc/{pid}/root/etc")
    status = dict(line.split(":\t", 1) for line in
                  Path(f"/proc/{pid}/status").read_text().splitlines() if ":\t" in line)
    keep = sum(1 << cap for cap in confine.KEEP)
    assert keep == 0x1F  # CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID
    for field in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status[field], 16) == keep, field
    assert int(status["CapInh"], 16) == 0 and int(status["CapAmb"], 16) == 0
    assert status["Seccomp"].strip() == "2" and status["NoNewPrivs"].strip() == "1"
    mounts = Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
    assert len(mounts) == 5  # the tmpfs root, the container root, three volumes
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")


def test_seccomp_filter_refuses_calls_outside_the_allowlist() -> None:
    """The same BPF program, installed in a forked child: socket() is refused, pread is not."""
    program = seccomp.build_filter()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 1
        try:
            import ctypes
            ctypes.CDLL(None).prctl(38, 1, 0, 0, 0)  # no_new_privs
            seccomp.install(program)
            try:
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                code = 2
            except PermissionError:
                os.write(w, b"ok")  # an allowed call still works
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    os.close(w)
    assert os.read(r, 10) == b"ok"
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0


def test_gofer_exits_when_the_socket_closes(tree: Path) -> None:
    g = Gofer(tree)
    g.client.getattr(g.root)
    assert g.close() == 0


def test_getattr_round_trip_time(gofer: Gofer, capsys: pytest.CaptureFixture) -> None:
    """Reports the figure (no threshold): one Tgetattr -> Rgetattr through the real gofer."""
    c = gofer.client
    fid, _ = c.walk(gofer.root, [b"etc", b"hello"])
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        a = c.getattr(fid)
    per_call = (time.perf_counter() - t0) / n
    assert a.size == 6
    with capsys.disabled():
        print(f"\ngofer Tgetattr round trip: {per_call * 1e6:.1f} us")


@pytest.mark.skipif(shutil.which("diod") is None, reason="diod (Debian package) is not installed")
def test_client_interoperates_with_diod(tmp_path: Path) -> None:
    """The same client against an independent 9P2000.L server (diod, plain 9P over a stream).

    diod 1.0.24 answers Trenameat/Tunlinkat with EOPNOTSUPP (clients fall back to
    Trename/Tremove, which we do not speak), so those two are checked on our gofer only.
    """
    export = tmp_path / "export"
    export.mkdir()
    (export / "f").write_bytes(b"hi\n")
    (export / "s").symlink_to("/etc/shadow")
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    diod = subprocess.Popen(["diod", "-f", "-n", "-N", "-c", "/dev/null", "-L", "stderr",
                             "-r", str(theirs.fileno()), "-w", str(theirs.fileno()),
                             "-e", str(export)], pass_fds=(theirs.fileno(),))
    theirs.close()
    try:
        c = Client(ours)
        assert c.version == m.VERSION and not c.fds
        root, q = c.attach(os.fsencode(export), 0, b"root")
        assert q.type == m.QTDIR and q.path == os.stat(export).st_ino
        f, qids = c.walk(root, [b"f"])
        assert qids[0].path == os.stat(export / "f").st_ino and c.getattr(f).size == 3
        assert c.lopen(f, os.O_RDONLY)[2] is None and c.read(f, 0, 100) == b"hi\n"
        s, qids = c.walk(root, [b"s"])
        assert qids[0].type == m.QTSYMLINK and c.readlink(s) == b"/etc/shadow"
        n = c.clone(root)
        c.lcreate(n, b"new", os.O_RDWR, 0o644, 0)
        assert c.write(n, 0, b"xyz") == 3 and (export / "new").read_bytes() == b"xyz"
        assert c.mkdir(root, b"dd", 0o755, 0).type == m.QTDIR
        assert c.symlink(root, b"sl", b"target", 0).type == m.QTSYMLINK
        c.mknod(root, b"fifo", stat.S_IFIFO | 0o600, 0, 0, 0)
        assert stat.S_ISFIFO(os.stat(export / "fifo").st_mode)
        c.link(root, n, b"hard")
        assert os.stat(export / "hard").st_ino == os.stat(export / "new").st_ino
        c.setattr(n, m.SETATTR_MODE | m.SETATTR_SIZE, mode=0o600, size=1)
        c.setattr(n, m.SETATTR_MTIME | m.SETATTR_MTIME_SET, mtime=(1000, 5))
        a = c.getattr(n)
        assert (a.mode, a.size, a.mtime_sec, a.mtime_nsec) == (stat.S_IFREG | 0o600, 1, 1000, 5)
        d = c.clone(root)
        c.lopen(d, os.O_RDONLY | os.O_DIRECTORY)
        assert {e.name for e in c.readdir(d)} == {b".", b"..", b"f", b"s", b"new", b"dd", b"sl",
                                                 b"fifo", b"hard"}
        assert c.statfs(root).namelen == os.statvfs(export).f_namemax
        c.fsync(n)
        assert c.lock(n, m.LOCK_TYPE_WRLCK, 0, 10, 0, 1, b"x") == m.LOCK_SUCCESS
        assert c.getlock(n, m.LOCK_TYPE_WRLCK, 0, 10, 1, b"x").type == m.LOCK_TYPE_UNLCK
        assert _errno_of(c.walk, root, [b"nope"]) == errno.ENOENT
        c.flush(0)
        c.clunk(n)
    finally:
        ours.close()
        diod.wait(10)  # diod 1.0.24 itself may crash on shutdown (SIGSEGV): not our concern
