"""The sandbox's path walk (fsimpl/sandboxroot.py) over sentry file systems, through the
system-call handlers: `..` walked (never judged by text) and across mount points both
ways, symlinks followed by O_CREAT, loops, O_TMPFILE, extended attributes on tmpfs, the
overlay and a host directory, and held places (the cwd, directory fds) that follow their
directory through renames and removals, made by the sandbox or on the host."""
from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

import pytest

from conftest import FakeProcess, In, Out
from snakevisor.fsimpl.hostpathfs import HostPathFs
from snakevisor.fsimpl.overlay import OverlayFs
from snakevisor.fsimpl.sandboxroot import SandboxRoot
from snakevisor.fsimpl.tmpfs import Tmpfs

AT_FDCWD, AT_EMPTY_PATH, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW = -100, 0x1000, 0x400, 0x100
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL = 0, 1, 2, 0o100, 0o200
O_DIRECTORY, O_NOFOLLOW, O_PATH, O_TMPFILE = 0o200000, 0o400000, 0o10000000, 0o20200000
XATTR_CREATE, XATTR_REPLACE = 1, 2


def make(root_fs, **mounts) -> FakeProcess:
    table = {b"/": root_fs}
    table.update({os.fsencode(k.replace("_", "/")): v for k, v in mounts.items()})
    return FakeProcess(SandboxRoot(table))


@pytest.fixture
def p() -> FakeProcess:
    """A tmpfs root with /etc, /w, and tmpfs mounts on /m (over a directory) and /d/e
    (under a directory that exists in no file system)."""
    root = Tmpfs(mode=0o755)
    proc = make(root, _m=Tmpfs(mode=0o1777), _d_e=Tmpfs(mode=0o755))
    root.root().mkdir(proc.task, b"m", 0o755)  # the directory the mount covers
    for d in ("/etc", "/w"):
        assert proc.call("mkdir", d, 0o755) == 0
    assert proc.call("mkdir", "/m", 0o755) == -errno.EEXIST
    return proc


def ino(p: FakeProcess, path: str) -> tuple[int, int]:
    res = p.run([("newfstatat", AT_FDCWD, path, Out(144), 0)])[0]
    assert res[0] == 0, (path, res[0])
    dev, number = struct.unpack_from("<QQ", res[1])
    return dev, number


def mode(p: FakeProcess, path: str, flags: int = AT_SYMLINK_NOFOLLOW) -> int:
    res = p.run([("newfstatat", AT_FDCWD, path, Out(144), flags)])[0]
    return -1 if res[0] else struct.unpack_from("<I", res[1], 24)[0]


def test_dotdot_is_walked_not_judged_by_text(p: FakeProcess) -> None:
    assert p.call("newfstatat", AT_FDCWD, "/w/missing/..", Out(144), 0) == -errno.ENOENT
    assert p.call("openat", AT_FDCWD, "/w/missing/../../etc", O_RDONLY, 0) == -errno.ENOENT
    assert p.call("openat", AT_FDCWD, "/etc", O_WRONLY | O_CREAT, 0o644) == -errno.EISDIR
    assert p.call("mkdir", "/w/missing/../x", 0o755) == -errno.ENOENT
    fd = p.call("openat", AT_FDCWD, "/w/f", O_WRONLY | O_CREAT, 0o644)
    assert fd >= 0
    assert p.call("newfstatat", AT_FDCWD, "/w/f/..", Out(144), 0) == -errno.ENOTDIR
    assert p.call("symlink", "/etc", "/w/l") == 0
    assert ino(p, "/w/l/..") == ino(p, "/")  # `..` of where the link leads, not of /w
    assert ino(p, "/..") == ino(p, "/")


def test_dotdot_crosses_mounts_both_ways(p: FakeProcess) -> None:
    assert ino(p, "/m/..") == ino(p, "/")
    assert ino(p, "/m/../m") == ino(p, "/m")
    assert ino(p, "/m") != ino(p, "/w")
    assert ino(p, "/d/e/..") == ino(p, "/d")  # /d exists only as the way to a mount
    assert p.call("chdir", "/m") == 0
    assert ino(p, "..") == ino(p, "/")
    fd = p.call("openat", AT_FDCWD, "/m", O_RDONLY | O_DIRECTORY, 0)
    assert ino(p, "/") == _fstatat(p, fd, "..")
    assert p.call("rename", "/m/..", "/x") == -errno.EXDEV  # mounts first, as Linux
    assert p.call("rename", "/w/..", "/x") == -errno.EBUSY
    assert p.call("rmdir", "/m") == -errno.EBUSY
    assert p.call("rename", "/w/f", "/m/f") in (-errno.ENOENT, -errno.EXDEV)
    assert p.call("openat", AT_FDCWD, "/w/f", O_WRONLY | O_CREAT, 0o644) >= 0
    assert p.call("rename", "/w/f", "/m/f") == -errno.EXDEV
    assert p.call("link", "/w/f", "/m/f") == -errno.EXDEV


def _fstatat(p: FakeProcess, fd: int, path: str) -> tuple[int, int]:
    res = p.run([("newfstatat", fd, path, Out(144), 0)])[0]
    assert res[0] == 0
    return struct.unpack_from("<QQ", res[1])


def test_o_creat_follows_symlinks_to_their_target(p: FakeProcess) -> None:
    assert p.call("symlink", "target", "/w/dangling") == 0
    assert p.call("openat", AT_FDCWD, "/w/dangling", O_WRONLY | O_CREAT | O_EXCL, 0o644) == \
        -errno.EEXIST
    assert p.call("openat", AT_FDCWD, "/w/dangling", O_WRONLY | O_CREAT | O_NOFOLLOW, 0o644) \
        == -errno.ELOOP
    assert p.call("openat", AT_FDCWD, "/w/dangling", O_WRONLY | O_CREAT, 0o600) >= 0
    assert stat.S_ISREG(mode(p, "/w/target")) and mode(p, "/w/target") & 0o777 == 0o600
    assert p.call("symlink", "/m/in-other-mount", "/w/across") == 0
    assert p.call("openat", AT_FDCWD, "/w/across", O_WRONLY | O_CREAT, 0o644) >= 0
    assert stat.S_ISREG(mode(p, "/m/in-other-mount"))
    for i in range(40):  # a chain of 40 links is followed; 41 are ELOOP
        p.call("symlink", f"c{i + 1}" if i < 39 else "end", f"/w/c{i}")
    assert p.call("openat", AT_FDCWD, "/w/c0", O_WRONLY | O_CREAT, 0o644) >= 0
    assert stat.S_ISREG(mode(p, "/w/end"))
    assert p.call("symlink", "c0", "/w/c-1") == 0
    assert p.call("openat", AT_FDCWD, "/w/c-1", O_WRONLY | O_CREAT, 0o644) == -errno.ELOOP


def test_loops_are_eloop_even_for_the_parent(p: FakeProcess) -> None:
    assert p.call("symlink", "b", "/w/a") == 0
    assert p.call("symlink", "a", "/w/b") == 0
    assert p.call("mkdir", "/w/a/x", 0o755) == -errno.ELOOP
    assert p.call("openat", AT_FDCWD, "/w/a", O_WRONLY | O_CREAT, 0o644) == -errno.ELOOP
    assert p.call("unlink", "/w/a/x") == -errno.ELOOP
    assert p.call("newfstatat", AT_FDCWD, "/w/a", Out(144), AT_SYMLINK_NOFOLLOW) == 0


def test_tmpfile_is_unnamed_until_linked(p: FakeProcess) -> None:
    assert p.call("openat", AT_FDCWD, "/w", O_TMPFILE | O_RDONLY, 0o600) == -errno.EINVAL
    assert p.call("openat", AT_FDCWD, "/w", O_TMPFILE | O_CREAT | O_RDWR, 0o600) == -errno.EINVAL
    fd = p.call("openat", AT_FDCWD, "/w", O_TMPFILE | O_RDWR, 0o666)
    assert fd >= 0
    res = p.run([("fstat", fd, Out(144))])[0]
    assert struct.unpack_from("<Q", res[1], 16)[0] == 0  # st_nlink
    assert p.call("getdents64", p.call("openat", AT_FDCWD, "/w", O_RDONLY, 0), Out(4096),
                  4096) == 48  # only . and ..
    assert p.call("write", fd, In(b"data"), 4) == 4
    assert p.call("linkat", fd, "", AT_FDCWD, "/w/named", AT_EMPTY_PATH) == 0
    assert mode(p, "/w/named") & 0o777 == 0o644  # 0666 under the umask 022
    excl = p.call("openat", AT_FDCWD, "/w", O_TMPFILE | O_WRONLY | O_EXCL, 0o600)
    assert p.call("linkat", excl, "", AT_FDCWD, "/w/never", AT_EMPTY_PATH) == -errno.ENOENT
    assert p.call("openat", AT_FDCWD, "/w/named", O_TMPFILE | O_RDWR, 0) == -errno.ENOTDIR


def test_tmpfile_on_the_overlay_links_into_the_merged_tree(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    proc = make(OverlayFs(HostPathFs(str(tmp_path), writable=False), Tmpfs(mode=0o755)))
    fd = proc.call("openat", AT_FDCWD, "/w", O_TMPFILE | O_RDWR, 0o600)
    assert fd >= 0 and proc.call("write", fd, In(b"x"), 1) == 1
    assert proc.call("linkat", fd, "", AT_FDCWD, "/w/kept", AT_EMPTY_PATH) == 0
    assert stat.S_ISREG(mode(proc, "/w/kept"))
    assert not (tmp_path / "w" / "kept").exists()  # the lower layer is never written


def xattr_checks(proc: FakeProcess, path: str) -> None:
    assert proc.call("setxattr", path, "user.a", In(b"1"), 1, 0) == 0
    assert proc.call("setxattr", path, "user.a", In(b"2"), 1, XATTR_CREATE) == -errno.EEXIST
    assert proc.call("setxattr", path, "user.b", In(b"2"), 1, XATTR_REPLACE) == -errno.ENODATA
    assert proc.call("getxattr", path, "user.a", Out(8), 0) == 1
    assert proc.call("getxattr", path, "user.a", Out(8), 8) == 1
    assert proc.call("getxattr", path, "user.none", Out(8), 8) == -errno.ENODATA
    assert proc.call("setxattr", path, "user.b", In(b"22"), 2, 0) == 0
    assert proc.call("getxattr", path, "user.b", Out(1), 1) == -errno.ERANGE
    res = proc.run([("listxattr", path, Out(64), 64)])[0]
    assert sorted(res[1][:res[0]].split(b"\0")[:-1]) == [b"user.a", b"user.b"]
    assert proc.call("removexattr", path, "user.a") == 0
    assert proc.call("removexattr", path, "user.a") == -errno.ENODATA
    assert proc.call("setxattr", path, "other.x", In(b"1"), 1, 0) == -errno.EOPNOTSUPP


def test_xattrs_on_tmpfs(p: FakeProcess) -> None:
    assert p.call("openat", AT_FDCWD, "/w/f", O_WRONLY | O_CREAT, 0o644) >= 0
    xattr_checks(p, "/w/f")
    assert p.call("setxattr", "/w/f", "trusted.t", In(b"t"), 1, 0) == 0  # as root
    assert p.call("setxattr", "/w/f", "security.s", In(b"s"), 1, 0) == 0
    res = p.run([("listxattr", "/w/f", Out(64), 64)])[0]
    assert sorted(res[1][:res[0]].split(b"\0")[:-1]) == [b"security.s", b"trusted.t", b"user.b"]
    assert p.call("symlink", "f", "/w/l") == 0
    assert p.call("lsetxattr", "/w/l", "user.x", In(b"1"), 1, 0) == -errno.EPERM
    assert p.call("lgetxattr", "/w/l", "user.b", Out(8), 8) == -errno.ENODATA
    assert p.call("getxattr", "/w/l", "user.b", Out(8), 8) == 2  # through the link
    fd = p.call("openat", AT_FDCWD, "/w/f", O_RDONLY, 0)
    assert p.call("fsetxattr", fd, "user.fd", In(b"f"), 1, 0) == 0
    assert p.call("fgetxattr", fd, "user.fd", Out(8), 8) == 1
    path_fd = p.call("openat", AT_FDCWD, "/w/f", O_PATH, 0)
    assert p.call("fgetxattr", path_fd, "user.fd", Out(8), 8) == -errno.EBADF
    assert p.call("setresuid", 1000, 1000, 1000) == 0
    assert p.call("setxattr", "/w/f", "user.c", In(b"1"), 1, 0) == -errno.EACCES


def test_xattrs_on_the_overlay_copy_up_and_stay(tmp_path: Path) -> None:
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "lower").write_text("below")
    try:
        os.setxattr(tmp_path / "w" / "lower", "user.kept", b"k")
    except OSError:
        pytest.skip("no user xattrs on the host file system")
    proc = make(OverlayFs(HostPathFs(str(tmp_path), writable=False), Tmpfs(mode=0o755)))
    assert proc.call("getxattr", "/w/lower", "user.kept", Out(8), 8) == 1
    assert proc.call("setxattr", "/w/lower", "user.new", In(b"n"), 1, 0) == 0  # copy-up
    assert os.listxattr(tmp_path / "w" / "lower") == ["user.kept"]  # the host is untouched
    res = proc.run([("listxattr", "/w/lower", Out(64), 64)])[0]
    assert sorted(res[1][:res[0]].split(b"\0")[:-1]) == [b"user.kept", b"user.new"]
    assert proc.call("openat", AT_FDCWD, "/w/f", O_WRONLY | O_CREAT, 0o644) >= 0
    xattr_checks(proc, "/w/f")


def test_xattrs_on_a_host_directory(tmp_path: Path) -> None:
    try:
        os.setxattr(tmp_path, "user.probe", b"1")
    except OSError:
        pytest.skip("no user xattrs on the host file system")
    (tmp_path / "f").write_text("x")
    proc = make(HostPathFs(str(tmp_path), writable=True))
    xattr_checks(proc, "/f")
    assert os.getxattr(tmp_path / "f", "user.b") == b"22"
    ro = make(HostPathFs(str(tmp_path), writable=False))
    assert ro.call("setxattr", "/f", "user.c", In(b"1"), 1, 0) == -errno.EROFS
    assert ro.call("getxattr", "/f", "user.b", Out(8), 8) == 2


def test_new_host_objects_belong_to_their_creator(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file away needs root")
    os.chmod(tmp_path, 0o777)
    proc = make(HostPathFs(str(tmp_path), writable=True))
    assert proc.call("setresgid", 1000, 1000, 1000) == 0
    assert proc.call("setresuid", 1000, 1000, 1000) == 0
    fd = proc.call("openat", AT_FDCWD, "/f", O_WRONLY | O_CREAT, 0o444)
    assert fd >= 0  # the creating open is not held to the new file's mode
    assert proc.call("mkdir", "/d", 0o755) == 0
    for name in ("f", "d"):
        st = os.stat(tmp_path / name)
        assert (st.st_uid, st.st_gid) == (1000, 1000), name


# -- held places: the working directory and directory fds follow the directory ---------------
RENAME_EXCHANGE = 2


def getcwd(proc: FakeProcess) -> bytes | int:
    res = proc.run([("getcwd", Out(256), 256)])[0]
    return res[0] if res[0] < 0 else res[1][:res[0] - 1]


def read(proc: FakeProcess, path: str, dirfd: int = AT_FDCWD) -> bytes | int:
    fd = proc.call("openat", dirfd, path, O_RDONLY, 0)
    if fd < 0:
        return fd
    res = proc.run([("read", fd, Out(64), 64)])[0]
    proc.call("close", fd)
    return res[1][:res[0]]


def write(proc: FakeProcess, path: str, data: bytes) -> None:
    fd = proc.call("openat", AT_FDCWD, path, O_WRONLY | O_CREAT, 0o644)
    assert fd >= 0 and proc.call("write", fd, In(data), len(data)) == len(data)
    proc.call("close", fd)


def link(proc: FakeProcess, fd: int) -> str:
    """What /proc/self/fd/N reads (procfs shows the file's path)."""
    return proc.tg.fds.files[fd].path


def dotdot_ino(proc: FakeProcess, fd: int) -> int:
    """The d_ino getdents lists for `..` (the second record)."""
    proc.call("lseek", fd, 0, 0)
    res = proc.run([("getdents64", fd, Out(4096), 4096)])[0]
    assert res[0] > 0
    first = struct.unpack_from("<H", res[1], 16)[0]
    return struct.unpack_from("<Q", res[1], first)[0]


def test_cwd_and_dirfd_follow_a_directory_renamed_to_another_parent(p: FakeProcess) -> None:
    assert p.call("mkdir", "/w/a", 0o755) == 0 and p.call("mkdir", "/w/a/sub", 0o755) == 0
    write(p, "/w/a/f", b"in a")
    fd = p.call("openat", AT_FDCWD, "/w/a", O_RDONLY | O_DIRECTORY, 0)
    path_fd = p.call("openat", AT_FDCWD, "/w/a/sub", O_PATH | O_DIRECTORY, 0)
    assert p.call("chdir", "/w/a/sub") == 0
    assert p.call("rename", "/w/a", "/etc/b") == 0
    assert p.call("mkdir", "/w/a", 0o755) == 0
    write(p, "/w/a/f", b"new a")
    assert getcwd(p) == b"/etc/b/sub" and p.tg.fs.cwd == "/etc/b/sub"
    assert read(p, "../f") == b"in a"  # `..` is the directory's parent now
    assert ino(p, "../..") == ino(p, "/etc")
    assert read(p, "f", fd) == b"in a" and read(p, "../f", path_fd) == b"in a"
    assert link(p, fd) == "/etc/b" and link(p, path_fd) == "/etc/b/sub"
    assert dotdot_ino(p, fd) == ino(p, "/etc")[1]
    assert p.call("rename", "/etc/b", "/w/a/c") == 0  # again, deeper
    assert getcwd(p) == b"/w/a/c/sub" and read(p, "../f") == b"in a"
    assert p.call("fchdir", fd) == 0 and getcwd(p) == b"/w/a/c"
    assert p.call("rename", "/w/a/c/sub", "/w/a/c/s2") == 0
    assert link(p, path_fd) == "/w/a/c/s2"


def test_rename_exchange_swaps_the_places_held_in_both(p: FakeProcess) -> None:
    for d in ("/w/x", "/w/x/in", "/etc/y"):
        assert p.call("mkdir", d, 0o755) == 0
    fd = p.call("openat", AT_FDCWD, "/etc/y", O_RDONLY | O_DIRECTORY, 0)
    assert p.call("chdir", "/w/x/in") == 0
    assert p.call("renameat2", AT_FDCWD, "/w/x", AT_FDCWD, "/etc/y", RENAME_EXCHANGE) == 0
    assert getcwd(p) == b"/etc/y/in" and link(p, fd) == "/w/x"


def test_a_removed_cwd_or_dirfd_is_dead_but_keeps_its_parent(p: FakeProcess) -> None:
    """Linux: getcwd ENOENT, stat(".") works, nothing is looked up or made in it, `..` is
    the old parent, getdents ENOENT, links read "... (deleted)"."""
    assert p.call("mkdir", "/w/d", 0o755) == 0
    fd = p.call("openat", AT_FDCWD, "/w/d", O_RDONLY | O_DIRECTORY, 0)
    assert p.call("chdir", "/w/d") == 0
    assert p.call("rmdir", "/w/d") == 0
    assert p.call("mkdir", "/w/d", 0o755) == 0  # a new directory with the old name
    write(p, "/w/d/f", b"new")
    assert getcwd(p) == -errno.ENOENT
    assert p.call("newfstatat", AT_FDCWD, ".", Out(144), 0) == 0
    assert read(p, "f") == -errno.ENOENT and read(p, "f", fd) == -errno.ENOENT
    assert p.call("openat", AT_FDCWD, "g", O_WRONLY | O_CREAT, 0o644) == -errno.ENOENT
    assert p.call("mkdirat", fd, "g", 0o755) == -errno.ENOENT
    assert p.call("symlink", "x", "l") == -errno.ENOENT
    assert p.call("mkdir", ".", 0o755) == -errno.EEXIST and p.call("rmdir", ".") == -errno.EINVAL
    assert read(p, "../d/f") == b"new" and ino(p, "..") == ino(p, "/w")
    assert p.call("getdents64", fd, Out(4096), 4096) == -errno.ENOENT
    assert link(p, fd) == "/w/d (deleted)" and p.tg.fs.link() == "/w/d (deleted)"
    assert p.call("chdir", "..") == 0 and getcwd(p) == b"/w"


def test_a_directory_replaced_by_rename_is_dead(p: FakeProcess) -> None:
    assert p.call("mkdir", "/w/src", 0o755) == 0 and p.call("mkdir", "/w/dst", 0o755) == 0
    assert p.call("chdir", "/w/dst") == 0
    assert p.call("rename", "/w/src", "/w/dst") == 0
    assert getcwd(p) == -errno.ENOENT


def test_renaming_a_directory_above_a_mount_is_refused() -> None:
    """Mounts are kept by the text of their point: they could not move along (EBUSY; Linux
    moves the mount with the directory)."""
    root = Tmpfs(mode=0o755)
    proc = make(root, _x_y=Tmpfs(mode=0o755))
    root.root().mkdir(proc.task, b"x", 0o755).mkdir(proc.task, b"y", 0o755)
    assert proc.call("chdir", "/x/y") == 0
    assert proc.call("rename", "/x", "/z") == -errno.EBUSY
    assert proc.call("mkdir", "/z", 0o755) == 0
    assert proc.call("renameat2", AT_FDCWD, "/z", AT_FDCWD, "/x", RENAME_EXCHANGE) == -errno.EBUSY
    assert getcwd(proc) == b"/x/y" and ino(proc, "..") == ino(proc, "/x")


def test_a_place_inside_a_mount_goes_up_across_the_mount_point(p: FakeProcess) -> None:
    assert p.call("mkdir", "/m/in", 0o755) == 0
    assert p.call("chdir", "/m/in") == 0
    fd = p.call("openat", AT_FDCWD, "..", O_PATH | O_DIRECTORY, 0)
    assert p.call("rename", "/m/in", "/m/out") == 0
    assert getcwd(p) == b"/m/out" and ino(p, "../..") == ino(p, "/")
    assert _fstatat(p, fd, "..") == ino(p, "/") and link(p, fd) == "/m"


def test_forked_processes_share_the_held_cwd(p: FakeProcess) -> None:
    assert p.call("mkdir", "/w/a", 0o755) == 0 and p.call("chdir", "/w/a") == 0
    child = p.tg.fs.copy()
    assert p.call("rename", "/w/a", "/w/b") == 0
    assert child.cwd == "/w/b"


def test_cwd_on_the_overlay_follows_renames_and_removals(tmp_path: Path) -> None:
    (tmp_path / "low" / "keep").mkdir(parents=True)
    (tmp_path / "low" / "keep" / "below").write_text("lower")
    proc = make(OverlayFs(HostPathFs(str(tmp_path), writable=False), Tmpfs(mode=0o755)))
    assert proc.call("mkdir", "/low/up", 0o755) == 0
    assert proc.call("chdir", "/low/up") == 0
    assert proc.call("rename", "/low/up", "/low/keep/up2") == 0
    assert getcwd(proc) == b"/low/keep/up2" and read(proc, "../below") == b"lower"
    assert proc.call("chdir", "/low/keep") == 0
    assert proc.call("unlink", "below") == 0 and proc.call("rmdir", "up2") == 0
    assert proc.call("rmdir", "/low/keep") == 0  # a directory with a lower part: whited out
    assert getcwd(proc) == -errno.ENOENT
    assert read(proc, "below") == -errno.ENOENT  # the lower layer's names stay hidden
    assert (tmp_path / "low" / "keep" / "below").exists()


def test_a_volume_cwd_follows_changes_made_on_the_host(tmp_path: Path) -> None:
    """The host renames the directory a process is in (and its parent's name is taken by a
    new directory), then removes it: the held place follows its O_PATH fd."""
    vol = tmp_path / "vol"
    (vol / "a" / "sub").mkdir(parents=True)
    (vol / "a" / "f").write_text("in a")
    proc = make(Tmpfs(mode=0o755), _v=HostPathFs(str(vol), writable=True))
    fd = proc.call("openat", AT_FDCWD, "/v/a", O_RDONLY | O_DIRECTORY, 0)
    assert proc.call("chdir", "/v/a/sub") == 0
    os.rename(vol / "a", vol / "b")
    (vol / "a").mkdir()
    (vol / "a" / "f").write_text("new a")
    assert getcwd(proc) == b"/v/b/sub" and read(proc, "../f") == b"in a"
    assert link(proc, fd) == "/v/b" and read(proc, "f", fd) == b"in a"
    write(proc, "here", b"x")
    assert (vol / "b" / "sub" / "here").exists() and not (vol / "a" / "sub").exists()
    os.unlink(vol / "b" / "sub" / "here")
    os.rmdir(vol / "b" / "sub")
    assert getcwd(proc) == -errno.ENOENT
    assert proc.call("openat", AT_FDCWD, "g", O_WRONLY | O_CREAT, 0o644) == -errno.ENOENT
    assert proc.tg.fs.link() == "/v/b/sub (deleted)"
    assert ino(proc, "..") == ino(proc, "/v/b")
