"""File system calls over the container root: confinement, EROFS, errno parity with Linux.

Most checks are differential: the same raw system calls run through our handlers (a fake
task over a HostRoot) and natively with ctypes inside a chroot of the same tree — a
read-only bind mount for read-only mode, a twin copy for writable mode.
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from snakevisor.fsimpl.hostfs import HostFile, HostRoot
from snakevisor.fsimpl.stdio import StdioFile, stdio_files
from snakevisor.kernel.errors import Block, SyscallError
from snakevisor.syscalls.sys_file import CHUNK, dirents64_to_dirents

from tests.unit.conftest import (FakeProcess, In, Out, Ref, call_blocking, native_available,
                                 native_calls)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = 0x100, 0x200, 0x400, 0x1000
O_RDONLY, O_WRONLY, O_RDWR = os.O_RDONLY, os.O_WRONLY, os.O_RDWR
O_CREAT, O_EXCL, O_TRUNC, O_APPEND = os.O_CREAT, os.O_EXCL, os.O_TRUNC, os.O_APPEND
O_DIRECTORY, O_NOFOLLOW, O_PATH, O_CLOEXEC = os.O_DIRECTORY, os.O_NOFOLLOW, os.O_PATH, os.O_CLOEXEC
O_NONBLOCK, O_TMPFILE = os.O_NONBLOCK, os.O_TMPFILE
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
UTIME_OMIT = (1 << 30) - 2
F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, F_DUPFD_CLOEXEC = 0, 1, 2, 3, 4, 1030
#: calls whose non-negative result is a descriptor number (compared as "an fd")
FD_RESULTS = {"open", "openat", "creat", "dup"}

SECRET = b"host secret\n"
PASSWD = b"sandbox passwd\n"


def build_tree(base: Path) -> Path:
    """A small root file system, and a host secret beside it that must stay unreachable."""
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(SECRET)
    root = base / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_bytes(PASSWD)
    (root / "file").write_bytes(b"hello world\n")
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "dir" / "a").write_bytes(b"a")
    (root / "empty_dir").mkdir()
    os.symlink("/etc/passwd", root / "abs_link")
    os.symlink("file", root / "rel_link")
    os.symlink("dir", root / "dir_link")
    os.symlink("../../../../../etc/passwd", root / "dotdot_link")
    os.symlink(str(outside / "secret"), root / "escape_link")
    os.symlink(str(outside), root / "escape_dir")
    os.symlink("/proc/self/root" + str(outside / "secret"), root / "magic_link")
    os.symlink("/etc/passwd", root / "dir" / "abs2")
    os.symlink("nothere", root / "dangling")
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return build_tree(tmp_path)


def sandbox(root: Path | str, writable: bool = False, cwd: str = "/") -> FakeProcess:
    """A process whose root is the tree, as the sandbox mounts it (a host-path file
    system at /, walked by the sentry)."""
    from snakevisor.fsimpl.hostpathfs import HostPathFs
    from snakevisor.fsimpl.sandboxroot import SandboxRoot
    fs = HostPathFs(str(root), writable=writable)
    return FakeProcess(SandboxRoot({b"/": fs}), cwd)


def host_sandbox(root: Path | str, writable: bool = False, cwd: str = "/") -> FakeProcess:
    """A process whose root is a bare HostRoot, for HostRoot's own rules (confined
    resolution, hidden host mounts, host-side renames), which HostPathFs builds on."""
    return FakeProcess(HostRoot(str(root), writable=writable), cwd)


def read_file(p: FakeProcess, path: str, dirfd: int = AT_FDCWD) -> bytes | int:
    """Open, read up to 4 KiB, close; -errno if the open fails."""
    fd = p.call("openat", dirfd, path, O_RDONLY, 0)
    if fd < 0:
        return fd
    buf = p.alloc(4096)
    n = p.raw("read", fd, buf, 4096)
    assert p.raw("close", fd) == 0
    assert n >= 0
    return p.get(buf, n)


def snapshot(root: Path) -> dict:
    """Everything about a tree a write could change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("f", stat.S_IMODE(st.st_mode), st.st_uid, path.read_bytes(),
                            st.st_mtime_ns, st.st_nlink)
            else:
                out[rel] = ("d", stat.S_IMODE(st.st_mode), st.st_uid)
    return out


def normalize(ops: list[tuple], results: list[list]) -> list:
    return ["fd" if op[0] in FD_RESULTS and r[0] >= 0 else r[0] for op, r in zip(ops, results)]


def assert_same(ops: list[tuple], ours: list[list], native: list[list]) -> None:
    mine, theirs = normalize(ops, ours), normalize(ops, native)
    bad = [f"  {ops[i][0]}{ops[i][1:]!r}: sandbox {_name(a)} native {_name(b)}"
           for i, (a, b) in enumerate(zip(mine, theirs)) if a != b]
    assert not bad, "results differ:\n" + "\n".join(bad)


def _name(r: object) -> str:
    if isinstance(r, int) and r < 0:
        return errno.errorcode.get(-r, str(r))
    return repr(r)


def timespecs(*pairs: tuple[int, int]) -> In:
    return In(b"".join(struct.pack("<qq", s, ns) for s, ns in pairs))


# ----------------------------------------------------------------------------- confinement

def test_dotdot_never_leaves_the_root(tree: Path) -> None:
    p = sandbox(tree, cwd="/dir/sub")
    assert read_file(p, "../../../../../../etc/passwd") == PASSWD
    assert read_file(p, "/../../../etc/passwd") == PASSWD
    assert read_file(p, "/dotdot_link") == PASSWD
    assert p.call("chdir", "../../../../..") == 0
    assert p.tg.fs.cwd == "/"


def test_absolute_symlinks_resolve_inside_the_root(tree: Path) -> None:
    p = sandbox(tree)
    assert read_file(p, "/abs_link") == PASSWD
    assert read_file(p, "/dir/abs2") == PASSWD
    assert read_file(p, "/escape_link") == -errno.ENOENT
    assert read_file(p, "/escape_dir/secret") == -errno.ENOENT
    assert read_file(p, str(tree.parent / "outside" / "secret")) == -errno.ENOENT
    assert p.call("stat", str(tree.parent / "outside"), Out(144)) == -errno.ENOENT
    assert read_file(p, "/magic_link") == -errno.ENOENT  # /proc does not exist in this root


def test_dirfd_relative_paths_stay_inside(tree: Path) -> None:
    p = sandbox(tree)
    dirfd = p.call("openat", AT_FDCWD, "/dir", O_RDONLY | O_DIRECTORY, 0)
    assert dirfd >= 0
    assert read_file(p, "a", dirfd) == b"a"
    assert read_file(p, "sub/../a", dirfd) == b"a"
    assert read_file(p, "../../../../etc/passwd", dirfd) == PASSWD  # `..` above dirfd
    assert read_file(p, "abs2", dirfd) == PASSWD  # absolute symlink below dirfd
    filefd = p.call("openat", AT_FDCWD, "/file", O_RDONLY, 0)
    assert read_file(p, "a", filefd) == -errno.ENOTDIR
    assert read_file(p, "a", 999) == -errno.EBADF
    assert read_file(p, "/file", 999) == b"hello world\n"  # dirfd ignored for absolute paths


def test_renamed_dirfd_follows_its_directory(tree: Path) -> None:
    p = host_sandbox(tree, writable=True)
    dirfd = p.call("openat", AT_FDCWD, "/dir", O_PATH | O_DIRECTORY, 0)
    os.rename(tree / "dir", tree / "moved")
    assert read_file(p, "a", dirfd) == b"a"
    assert read_file(p, "../file", dirfd) == b"hello world\n"
    assert p.tg.fds.get(dirfd).path == "/moved"


def test_host_proc_is_hidden_and_magic_links_refused() -> None:
    """With the host's / as root, its procfs must not leak the sentry (or the host)."""
    p = host_sandbox("/")
    assert read_file(p, "/proc/self/status") == -errno.ENOENT
    assert read_file(p, "/proc/self/root/etc/hostname") in (-errno.ENOENT, -errno.ELOOP)
    assert p.call("readlink", "/proc/self/exe", Out(256), 256) == -errno.ENOENT
    assert p.call("openat", AT_FDCWD, "/proc/1/environ", O_RDONLY, 0) == -errno.ENOENT
    assert p.call("stat", "/proc", Out(144)) == 0  # the mount point looks like a directory
    fd = p.call("openat", AT_FDCWD, "/proc", O_RDONLY | O_DIRECTORY, 0)
    assert fd >= 0
    assert p.call("getdents64", fd, Out(4096), 4096) == 0  # ...an empty one
    assert p.call("openat", fd, "self/maps", O_RDONLY, 0) == -errno.ENOENT
    assert p.call("mkdir", "/proc/x", 0o755) == -errno.ENOENT
    assert p.call("stat", "/sys/kernel", Out(144)) == -errno.ENOENT


@pytest.mark.skipif(not native_available(), reason="needs root and unshare(1)")
def test_openat2_refuses_magic_links_under_a_real_procfs(tree: Path) -> None:
    """Second line of defence: even a procfs we failed to hide cannot be walked through."""
    (tree / "proc").mkdir()
    script = f"""
import errno, os
from snakevisor.fsimpl.hostfs import HostRoot
from snakevisor.kernel.errors import SyscallError
from tests.unit.conftest import FakeProcess
os.system("mount -t proc proc {tree}/proc")
results = []
for hide in (True, False):
    root = HostRoot({str(tree)!r})
    task = FakeProcess(root).task
    if not hide:
        root._hidden = {{}}
    for path in (b"/proc/self/root{tree.parent}/outside/secret", b"/magic_link",
                 b"/proc/self/cwd", b"/proc/1/root/etc/passwd", b"/proc/self/status"):
        try:
            f = root.open(task, -100, path, os.O_RDONLY, 0)
            results.append(f.read(task, 100))
        except SyscallError as e:
            results.append(errno.errorcode[e.errno])
print(results)
"""
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", "--pid", "--fork",
                          sys.executable, "-c", script], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert res.returncode == 0, res.stderr
    results = eval(res.stdout)
    # openat2 refuses every magic link, hidden mount or not; hiding covers the rest
    assert results[:5] == ["ELOOP"] * 4 + ["ENOENT"]
    assert results[5:9] == ["ELOOP"] * 4 and results[9].startswith(b"Name:")


def test_file_path_is_canonical(tree: Path) -> None:
    p = sandbox(tree)
    fd = p.call("openat", AT_FDCWD, "/dir_link/sub/../a", O_RDONLY, 0)
    assert p.tg.fds.get(fd).path == "/dir/a"
    fd = p.call("openat", AT_FDCWD, "/", O_PATH, 0)
    assert p.tg.fds.get(fd).path == "/"
    host = host_sandbox("/").tg.fs.root
    assert host.sandbox_path(host.rootfd) == "/"


def test_host_devices_are_refused_except_memory_devices(tree: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mknod needs root")
    (tree / "dev").mkdir()
    os.mknod(tree / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(tree / "dev" / "disk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    os.mknod(tree / "dev" / "mem", 0o600 | stat.S_IFCHR, os.makedev(1, 1))
    p = sandbox(tree)
    fd = p.call("openat", AT_FDCWD, "/dev/null", O_WRONLY, 0)
    assert fd >= 0 and p.call("write", fd, In(b"abc"), 3) == 3  # special files: no EROFS
    assert p.call("openat", AT_FDCWD, "/dev/disk", O_RDONLY, 0) == -errno.EACCES
    assert p.call("openat", AT_FDCWD, "/dev/mem", O_RDONLY, 0) == -errno.EACCES
    assert p.call("openat", AT_FDCWD, "/dev/mem", O_PATH, 0) >= 0  # no side effects
    assert any(k.startswith("hostdev") for k in p.kernel.warnings)


def test_fifo_open_never_blocks_the_sentry(tree: Path) -> None:
    os.mkfifo(tree / "fifo")
    p = sandbox(tree)
    assert p.call("openat", AT_FDCWD, "/fifo", O_RDONLY, 0) == -errno.EINVAL
    assert "hostfifo" in p.kernel.warnings
    fd = p.call("openat", AT_FDCWD, "/fifo", O_RDONLY | O_NONBLOCK, 0)
    assert fd >= 0
    assert p.call("read", fd, Out(16), 16) == 0  # no writer: end of file
    assert p.call("openat", AT_FDCWD, "/fifo", O_WRONLY | O_NONBLOCK, 0) >= 0


# ----------------------------------------------------------------------------- read-only

READ_ONLY_OPS: list[tuple] = [
    ("openat", AT_FDCWD, "/file", O_WRONLY, 0),
    ("openat", AT_FDCWD, "/file", O_RDWR, 0),
    ("openat", AT_FDCWD, "/file", 3, 0),
    ("openat", AT_FDCWD, "/file", O_RDONLY | O_TRUNC, 0),
    ("openat", AT_FDCWD, "/file", O_RDONLY | O_CREAT, 0o644),
    ("openat", AT_FDCWD, "/file", O_RDONLY | O_CREAT | O_EXCL, 0o644),
    ("openat", AT_FDCWD, "/new", O_WRONLY | O_CREAT, 0o644),
    ("openat", AT_FDCWD, "/new", O_RDONLY | O_CREAT, 0o644),
    ("openat", AT_FDCWD, "/new/", O_RDONLY | O_CREAT, 0o644),
    ("openat", AT_FDCWD, "/nodir/new", O_RDONLY | O_CREAT, 0o644),
    ("openat", AT_FDCWD, "/nodir/new/", O_RDONLY | O_CREAT, 0o644),
    ("openat", AT_FDCWD, "/dangling", O_WRONLY | O_CREAT, 0o644),
    ("openat", AT_FDCWD, "/dangling", O_WRONLY | O_CREAT | O_EXCL, 0o644),
    ("openat", AT_FDCWD, "/dir", O_RDONLY | O_CREAT, 0),
    ("openat", AT_FDCWD, "/dir", O_WRONLY, 0),
    ("openat", AT_FDCWD, "/dir", O_RDONLY | O_TRUNC, 0),
    ("openat", AT_FDCWD, "/dir", O_RDONLY | O_CREAT | O_DIRECTORY, 0),
    ("openat", AT_FDCWD, "/dir", O_WRONLY | O_TMPFILE, 0o600),
    ("openat", AT_FDCWD, "/dir", O_RDONLY | O_TMPFILE, 0o600),
    ("openat", AT_FDCWD, "/file", O_RDONLY | O_DIRECTORY, 0),
    ("openat", AT_FDCWD, "/rel_link", O_RDONLY | O_NOFOLLOW, 0),
    ("openat", AT_FDCWD, "/rel_link", O_WRONLY | O_NOFOLLOW, 0),
    ("openat", AT_FDCWD, "/loop1", O_RDONLY, 0),
    ("openat", AT_FDCWD, "/file/x", O_RDONLY, 0),
    ("openat", AT_FDCWD, "", O_RDONLY, 0),
    ("openat", AT_FDCWD, "x" * 300, O_RDONLY, 0),
    ("openat", AT_FDCWD, "/" + "a/" * 2048, O_RDONLY, 0),
    ("creat", "/new", 0o644),
    ("creat", "/file", 0o644),
    ("mkdir", "/newdir", 0o755),
    ("mkdir", "/dir", 0o755),
    ("mkdir", "/file/", 0o755),
    ("mkdir", "/nodir/x", 0o755),
    ("mkdir", "/", 0o755),
    ("mkdir", "/dir/..", 0o755),
    ("mkdir", "/dangling", 0o755),
    ("unlink", "/file"),
    ("unlink", "/nonexistent"),
    ("unlink", "/dir/.."),
    ("unlink", "/file/"),
    ("unlink", "/nodir/x"),
    ("unlinkat", AT_FDCWD, "/file", 0x1),
    ("rmdir", "/empty_dir"),
    ("rmdir", "/"),
    ("rmdir", "/dir/."),
    ("rmdir", "/dir/.."),
    ("rename", "/file", "/file2"),
    ("rename", "/dir/.", "/x"),
    ("rename", "/nonexistent", "/x"),
    ("rename", "/file", "/nodir/x"),
    ("renameat2", AT_FDCWD, "/file", AT_FDCWD, "/dir/..", RENAME_NOREPLACE),
    ("renameat2", AT_FDCWD, "/file", AT_FDCWD, "/x", 8),
    ("renameat2", AT_FDCWD, "/file", AT_FDCWD, "/x", RENAME_EXCHANGE | RENAME_NOREPLACE),
    ("symlink", "target", "/newlink"),
    ("symlink", "x", "/file"),
    ("symlink", "x", "/new/"),
    ("symlink", "", "/x"),
    ("link", "/file", "/newlink"),
    ("link", "/nonexistent", "/x"),
    ("link", "/file", "/dir"),
    ("linkat", AT_FDCWD, "/file", AT_FDCWD, "/x", 0x8),
    ("truncate", "/file", 0),
    ("truncate", "/dir", 0),
    ("truncate", "/file", -1),
    ("truncate", "/nonexistent", 0),
    ("chmod", "/file", 0o600),
    ("chmod", "/nonexistent", 0o600),
    ("fchmodat", AT_FDCWD, "/dir", 0o700),
    ("chown", "/file", 0, 0),
    ("lchown", "/rel_link", 0, 0),
    ("fchownat", AT_FDCWD, "/file", 0, 0, 0x1),
    ("utimensat", AT_FDCWD, "/file", 0, 0),
    ("utimensat", AT_FDCWD, "/file", timespecs((1, UTIME_OMIT), (2, UTIME_OMIT)), 0),
    ("utimensat", AT_FDCWD, "/file", timespecs((1, 5), (2, 2_000_000_000)), 0),
    ("utimensat", AT_FDCWD, "/nonexistent", timespecs((1, 5), (2, -1)), 0),
    ("utimensat", AT_FDCWD, "/file", 0, 0x8),
    ("utimes", "/file", 0),
    ("access", "/file", os.R_OK),
    ("access", "/file", os.W_OK),
    ("access", "/file", os.X_OK),
    ("access", "/dir", os.W_OK | os.X_OK),
    ("access", "/nonexistent", os.F_OK),
    ("access", "/file", 8),
    ("faccessat2", AT_FDCWD, "/rel_link", os.W_OK, AT_SYMLINK_NOFOLLOW),
    ("faccessat2", AT_FDCWD, "/file", os.R_OK, 0x4),
]


def _fd_ops(ops: list[tuple], opener: tuple, calls: list[tuple]) -> None:
    """Append `opener` and `calls`, where FD in a call stands for the opened descriptor."""
    fd = Ref(len(ops))
    ops.append(opener)
    ops.extend(tuple(fd if a is FD else a for a in call) for call in calls)


FD = object()
_fd_ops(READ_ONLY_OPS, ("openat", AT_FDCWD, "/file", O_RDONLY, 0), [
    ("ftruncate", FD, 0),
    ("fchmod", FD, 0o600),
    ("fchown", FD, 0, 0),
    ("write", FD, In(b"x"), 1),
    ("write", FD, 0, 1),
    ("fsync", FD),
    ("fdatasync", FD),
    ("utimensat", FD, 0, 0, 0),
    ("utimensat", FD, 0, 0, AT_SYMLINK_NOFOLLOW),
])
_fd_ops(READ_ONLY_OPS, ("openat", AT_FDCWD, "/file", O_PATH, 0), [
    ("fchmod", FD, 0o600),
    ("read", FD, Out(4), 4),
    ("fsync", FD),
    ("ftruncate", FD, 0),
    ("lseek", FD, 0, 0),
    ("getdents64", FD, Out(1024), 1024),
    ("ioctl", FD, 0x541B, Out(4)),
    ("fcntl", FD, F_SETFL, 0),
    ("fstat", FD, Out(144)),
    ("utimensat", FD, 0, 0, 0),
    ("utimensat", FD, "", 0, AT_EMPTY_PATH),
    ("fchownat", FD, "", 0, 0, AT_EMPTY_PATH),
])
_fd_ops(READ_ONLY_OPS, ("openat", AT_FDCWD, "/dir", O_RDONLY | O_DIRECTORY, 0), [
    ("read", FD, Out(4), 4),
    ("ioctl", FD, 0x541B, Out(4)),
    ("openat", FD, "a", O_RDONLY, 0),
    ("openat", FD, "../file", O_RDONLY, 0),
    ("mkdirat", FD, "new", 0o755),
    ("unlinkat", FD, "a", 0),
    ("unlinkat", FD, "sub", AT_REMOVEDIR),
    ("readlinkat", FD, "abs2", Out(64), 64),
    ("readlinkat", FD, "a", Out(64), 64),
    ("readlinkat", FD, "", Out(64), 64),
])
READ_ONLY_OPS += [
    ("readlink", "/rel_link", Out(64), 0),
    ("readlink", "/dir_link/", Out(64), 64),
    ("newfstatat", AT_FDCWD, "/abs_link/", Out(144), AT_SYMLINK_NOFOLLOW),
    ("newfstatat", AT_FDCWD, "/dir_link/", Out(144), AT_SYMLINK_NOFOLLOW),
    ("newfstatat", AT_FDCWD, "/file", Out(144), 0x2),
    ("newfstatat", AT_FDCWD, "", Out(144), 0),
    ("statx", AT_FDCWD, "/file", 0x6000, 0x7FF, Out(256)),
    ("statx", AT_FDCWD, "/file", 0, 0x80000000, Out(256)),
    ("chdir", "/file"),
    ("chdir", "/nonexistent"),
    ("getcwd", Out(1), 1),
    ("getcwd", Out(64), 64),
]


def test_read_only_root_answers_like_a_read_only_mount(tree: Path) -> None:
    before = snapshot(tree)
    ours = sandbox(tree).run(READ_ONLY_OPS)
    assert snapshot(tree) == before, "a read-only root changed on the host"
    native = native_calls(str(tree), READ_ONLY_OPS, readonly=True)
    assert_same(READ_ONLY_OPS, ours, native)


def test_read_only_statfs_reports_rdonly(tree: Path) -> None:
    p = sandbox(tree)
    buf = p.alloc(120)
    assert p.raw("statfs", p.cstr("/"), buf) == 0
    assert struct.unpack_from("<q", p.get(buf, 120), 80)[0] & 1  # f_flags (offset 80) & ST_RDONLY
    fd = p.call("openat", AT_FDCWD, "/file", O_RDONLY, 0)
    assert p.raw("fstatfs", fd, buf) == 0
    native = os.statvfs(tree)
    assert struct.unpack_from("<q", p.get(buf, 120), 8)[0] == native.f_bsize


# ----------------------------------------------------------------------------- writable

WRITABLE_OPS: list[tuple] = []
_fd_ops(WRITABLE_OPS, ("openat", AT_FDCWD, "/new", O_WRONLY | O_CREAT, 0o666), [
    ("write", FD, In(b"data"), 4),
    ("close", FD),
])
WRITABLE_OPS.append(("openat", AT_FDCWD, "/new", O_WRONLY | O_CREAT | O_EXCL, 0o666))
_fd_ops(WRITABLE_OPS, ("openat", AT_FDCWD, "/new", O_WRONLY | O_APPEND, 0), [
    ("write", FD, In(b"+more"), 5),
    ("pwrite64", FD, In(b"P"), 1, 0),  # O_APPEND: Linux appends anyway
])
WRITABLE_OPS += [
    ("openat", AT_FDCWD, "/dangling", O_WRONLY | O_CREAT, 0o640),  # creates /nothere
    ("mkdir", "/newdir", 0o777),
    ("mkdir", "/newdir", 0o777),
    ("mkdir", "/newdir/deep/", 0o700),
    ("rmdir", "/dir"),
    ("rmdir", "/file"),
    ("unlink", "/dir"),
    ("unlink", "/empty_dir/"),
    ("unlink", "/file/"),
    ("rmdir", "/empty_dir/"),
    ("rmdir", "/rel_link/"),
    ("rename", "/file", "/renamed"),
    ("rename", "/renamed", "/newdir"),
    ("rename", "/newdir", "/dir"),
    ("rename", "/dir/a", "/dir/sub/"),
    ("renameat2", AT_FDCWD, "/renamed", AT_FDCWD, "/new", RENAME_NOREPLACE),
    ("renameat2", AT_FDCWD, "/renamed", AT_FDCWD, "/new", RENAME_EXCHANGE),
    ("rename", "/dir", "/dir/sub/x"),
    ("symlink", "target", "/sl"),
    ("symlink", "target", "/sl"),
    ("readlink", "/sl", Out(64), 64),
    ("link", "/renamed", "/hard"),
    ("link", "/dir", "/dirhard"),
    ("linkat", AT_FDCWD, "/rel_link", AT_FDCWD, "/hard_nofollow", 0),
    ("linkat", AT_FDCWD, "/abs_link", AT_FDCWD, "/hard_follow", AT_SYMLINK_FOLLOW),
    ("truncate", "/renamed", 3),
    ("chmod", "/renamed", 0o600),
    ("fchmodat2", AT_FDCWD, "/rel_link", 0o600, AT_SYMLINK_NOFOLLOW),
    ("utimensat", AT_FDCWD, "/hard", timespecs((1000, 5), (2000, 7)), 0),
    ("openat", AT_FDCWD, "/dir/sub", O_WRONLY | O_TMPFILE, 0o600),
]
_fd_ops(WRITABLE_OPS, ("openat", AT_FDCWD, "/new", O_RDWR | O_TRUNC, 0), [
    ("ftruncate", FD, 10),
    ("pwrite64", FD, In(b"xyz"), 3, 2),
    ("fchmod", FD, 0o640),
    ("fchown", FD, 1234, 5678),
    ("lchown", "/sl", 42, 43),
    ("fsync", FD),
    ("unlink", "/sl"),
    ("unlink", "/sl"),
])
_fd_ops(WRITABLE_OPS, ("openat", AT_FDCWD, "/etc", O_RDONLY | O_DIRECTORY, 0), [
    ("mkdirat", FD, "sub", 0o750),
    ("symlinkat", "../file", FD, "up"),
    ("renameat", FD, "passwd", FD, "sub/passwd"),
    ("unlinkat", FD, "sub", AT_REMOVEDIR),
    ("linkat", FD, "sub/passwd", AT_FDCWD, "/pw", 0),
])
WRITABLE_OPS.append(("openat", AT_FDCWD, "/w_umask", O_WRONLY | O_CREAT, 0o777))


def test_writable_root_reaches_the_host_like_native(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ours_root, native_root = build_tree(tmp_path / "a"), build_tree(tmp_path / "b")
    p = sandbox(ours_root, writable=True)
    p.tg.umask = 0o027
    ours = p.run(WRITABLE_OPS)
    native = native_calls(str(native_root), WRITABLE_OPS, readonly=False, umask=0o027)
    assert_same(WRITABLE_OPS, ours, native)
    a, b = snapshot(ours_root), snapshot(native_root)
    for key in set(a) | set(b):  # mtimes of files we did not set explicitly differ
        if key != "hard" and key in a and key in b and a[key][0] == "f":
            a[key], b[key] = a[key][:4] + a[key][5:], b[key][:4] + b[key][5:]
    # the escape links name host paths of their own tree
    for key in ("escape_link", "escape_dir", "magic_link"):
        a.pop(key), b.pop(key)
    assert a == b
    assert (ours_root / "new").stat().st_uid == 1234
    assert stat.S_IMODE((ours_root / "w_umask").stat().st_mode) == 0o750


def test_writable_create_through_dangling_symlink_stays_inside(tree: Path) -> None:
    target = tree.parent / "outside" / "created"
    os.symlink(str(target), tree / "dangling_out")
    p = sandbox(tree, writable=True)
    # the target's directory does not exist inside the root: ENOENT, as in a chroot
    assert p.call("openat", AT_FDCWD, "/dangling_out", O_WRONLY | O_CREAT, 0o644) == -errno.ENOENT
    inside = tree / str(target).lstrip("/")
    inside.parent.mkdir(parents=True)
    assert p.call("openat", AT_FDCWD, "/dangling_out", O_WRONLY | O_CREAT, 0o644) >= 0
    assert inside.exists() and not target.exists()


# ----------------------------------------------------------------------------- I/O and status

def test_stat_family_matches_native(tree: Path) -> None:
    ops = [
        ("openat", AT_FDCWD, "/file", O_RDONLY, 0),
        ("fstat", Ref(0), Out(144)),
        ("stat", "/dir_link", Out(144)),
        ("lstat", "/dir_link", Out(144)),
        ("newfstatat", Ref(0), "", Out(144), AT_EMPTY_PATH),
        ("newfstatat", AT_FDCWD, "/dir/abs2", Out(144), AT_SYMLINK_NOFOLLOW),
        ("statx", AT_FDCWD, "/file", 0, 0xFFF, Out(256)),
        ("statx", AT_FDCWD, "/rel_link", AT_SYMLINK_NOFOLLOW, 0x7FF, Out(256)),
        ("statx", Ref(0), "", AT_EMPTY_PATH, 0x7FF, Out(256)),
        ("statx", AT_FDCWD, 0, AT_EMPTY_PATH, 0x7FF, Out(256)),
        ("newfstatat", AT_FDCWD, 0, Out(144), AT_EMPTY_PATH),
    ]
    ours = sandbox(tree).run(ops)
    native = native_calls(str(tree), ops, readonly=True)
    assert_same(ops, ours, native)

    def masked(buf: bytes) -> bytes:
        if len(buf) == 144:  # atime may be touched by the other run's reads
            return buf[:72] + bytes(16) + buf[88:]
        # statx: atime, and stx_mnt_id (the native side looks through a new bind mount)
        return buf[:64] + bytes(16) + buf[80:144] + bytes(8) + buf[152:]

    for i, (a, b) in enumerate(zip(ours, native)):
        for x, y in zip(a[1:], b[1:]):
            assert masked(x) == masked(y), f"{ops[i]} differs"


def _dirents(data: bytes, old: bool = False) -> set[tuple[bytes, int, int]]:
    out, pos = set(), 0
    while pos < len(data):
        ino, _off, reclen = struct.unpack_from("<QqH", data, pos)
        if old:
            name = data[pos + 18:pos + reclen - 1].split(b"\0", 1)[0]
            dtype = data[pos + reclen - 1]
        else:
            dtype = data[pos + 18]
            name = data[pos + 19:pos + reclen].split(b"\0", 1)[0]
        out.add((name, dtype, ino))
        pos += reclen
    return out


def test_getdents_match_native(tree: Path) -> None:
    ops = [
        ("openat", AT_FDCWD, "/", O_RDONLY | O_DIRECTORY, 0),
        ("getdents64", Ref(0), Out(32768), 32768),
        ("getdents64", Ref(0), Out(32768), 32768),
        ("openat", AT_FDCWD, "/dir", O_RDONLY | O_DIRECTORY, 0),
        ("getdents", Ref(3), Out(32768), 32768),
        ("getdents64", Ref(3), Out(8), 8),
        ("openat", AT_FDCWD, "/file", O_RDONLY, 0),
        ("getdents64", Ref(6), Out(1024), 1024),
    ]
    ours = sandbox(tree).run(ops)
    native = native_calls(str(tree), ops, readonly=True)
    assert_same(ops, ours, native)
    assert _dirents(ours[1][1][:ours[1][0]]) == _dirents(native[1][1][:native[1][0]])
    names = {n for n, _, _ in _dirents(ours[1][1][:ours[1][0]])}
    assert names == {b".", b".."} | {n.encode() for n in os.listdir(tree)}
    assert _dirents(ours[4][1][:ours[4][0]], old=True) == \
        _dirents(native[4][1][:native[4][0]], old=True)


def test_dirents64_to_dirents_layout() -> None:
    name = b"hello"
    reclen = (19 + len(name) + 1 + 7) & ~7
    rec = struct.pack("<QqHB", 7, 99, reclen, 4) + name + b"\0"
    rec += bytes(reclen - len(rec))
    old = dirents64_to_dirents(rec)
    assert len(old) == reclen
    assert struct.unpack_from("<QqH", old) == (7, 99, reclen)
    assert old[18:18 + len(name) + 1] == name + b"\0" and old[reclen - 1] == 4


def test_fcntl_flags_match_native(tree: Path) -> None:
    opens = [O_RDONLY | O_CLOEXEC, O_RDONLY | O_NOFOLLOW | O_APPEND | O_NONBLOCK,
             O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, O_PATH, O_RDONLY | O_DIRECTORY]
    ops: list[tuple] = []
    for flags in opens:
        path = "/dir" if flags & O_DIRECTORY else "/file"
        ops += [("openat", AT_FDCWD, path, flags, 0), ("fcntl", Ref(len(ops)), F_GETFL, 0),
                ("fcntl", Ref(len(ops)), F_GETFD, 0)]
    ops += [("openat", AT_FDCWD, "/file", O_RDONLY, 0)]
    fd = Ref(len(ops) - 1)
    ops += [("fcntl", fd, F_SETFL, O_APPEND | O_NONBLOCK | O_WRONLY | O_TRUNC),
            ("fcntl", fd, F_GETFL, 0), ("fcntl", fd, F_SETFD, 1), ("fcntl", fd, F_GETFD, 0),
            ("ioctl", fd, 0x5450, 0), ("fcntl", fd, F_GETFD, 0),
            ("ioctl", fd, 0x5451, 0), ("fcntl", fd, F_GETFD, 0),
            ("ioctl", fd, 0x541B, Out(4)), ("ioctl", fd, 0x5401, Out(64)),
            ("fcntl", fd, F_DUPFD, 1 << 30), ("fcntl", 12345, F_GETFD, 0),
            ("lseek", fd, 3, 0), ("lseek", fd, 0, 7), ("lseek", fd, -5, 0),
            ("ioctl", fd, 0x541B, Out(4)), ("lseek", fd, 0, 2), ("lseek", fd, 1, 3)]
    ours = sandbox(tree).run(ops)
    native = native_calls(str(tree), ops, readonly=True)
    assert_same(ops, ours, native)
    fionread = [i for i, op in enumerate(ops) if op[0] == "ioctl" and op[2] == 0x541B]
    for i in fionread:
        assert ours[i][1] == native[i][1]


def test_read_write_pread_readv_writev(tree: Path) -> None:
    p = sandbox(tree, writable=True)
    fd = p.call("openat", AT_FDCWD, "/file", O_RDWR, 0)
    assert p.call("pread64", fd, Out(5), 5, 6) == 5
    buf = p.alloc(64)
    assert p.raw("pread64", fd, buf, 64, 6) == 6 and p.get(buf, 6) == b"world\n"
    assert p.raw("pread64", fd, buf, 64, -1) == -errno.EINVAL
    assert p.raw("pread64", 999, buf, 64, -1) == -errno.EINVAL  # before EBADF, as Linux
    # readv scatters one read over several buffers, skipping empty ones
    b1, b2 = p.alloc(3), p.alloc(64)
    iov = p.put(struct.pack("<QQQQQQ", b1, 3, 0, 0, b2, 64))
    assert p.raw("readv", fd, iov, 3) == 12
    assert p.get(b1, 3) == b"hel" and p.get(b2, 9) == b"lo world\n"
    assert p.raw("readv", fd, iov, 1025) == -errno.EINVAL
    # writev gathers; pwritev writes at an offset without moving the file position
    iov = p.put(struct.pack("<QQQQ", p.put(b"ab"), 2, p.put(b"cd"), 2))
    assert p.raw("writev", fd, iov, 2) == 4
    assert p.raw("pwritev", fd, iov, 2, 0) == 4
    assert p.raw("lseek", fd, 0, 1) == 16
    assert p.raw("preadv", fd, p.put(struct.pack("<QQ", buf, 64)), 1, 0) == 16
    assert p.get(buf, 16) == b"abcdo world\nabcd"
    assert p.raw("preadv2", fd, p.put(struct.pack("<QQ", buf, 64)), 1, -1 & (2**64 - 1), 0, 0) == 0
    assert p.raw("pwritev2", fd, iov, 2, 0, 0, 0x10) == -errno.EOPNOTSUPP
    assert p.raw("pwritev2", fd, iov, 2, 0, 0, 1 << 20) == -errno.EOPNOTSUPP
    assert p.raw("pwritev2", fd, iov, 2, 100, 0, 0x2) == 4  # RWF_DSYNC
    assert (tree / "file").read_bytes()[100:] == b"abcd"


def test_read_fault_gives_the_bytes_back(tree: Path) -> None:
    p = sandbox(tree)
    fd = p.call("openat", AT_FDCWD, "/file", O_RDONLY, 0)
    assert p.raw("read", fd, 0x1000, 4) == -errno.EFAULT
    assert p.call("read", fd, Out(4), 4) == 4
    assert p.raw("lseek", fd, 0, 1) == 4
    assert p.raw("write", fd, 0x1000, 4) == -errno.EBADF  # not writable beats a bad buffer
    assert p.raw("read", fd, 0x7FFFFFFF0000, 1 << 40) == -errno.EFAULT
    assert p.raw("read", 999, 0x1000, 4) == -errno.EBADF


def test_large_read_and_write_are_piecewise(tree: Path) -> None:
    data = os.urandom(CHUNK * 2 + 12345)
    (tree / "big").write_bytes(data)
    p = sandbox(tree, writable=True)
    fd = p.call("openat", AT_FDCWD, "/big", O_RDWR, 0)
    buf = p.alloc(len(data) + CHUNK)
    assert p.raw("read", fd, buf, len(data) + CHUNK) == len(data)
    assert p.get(buf, len(data)) == data
    assert p.raw("pread64", fd, buf, len(data), 5) == len(data) - 5
    assert p.raw("pwrite64", fd, buf, len(data), len(data)) == len(data)
    assert (tree / "big").read_bytes() == data + data[5:] + data[len(data) - 5:]


def test_fd_table_calls(tree: Path) -> None:
    p = sandbox(tree)
    fd = p.call("openat", AT_FDCWD, "/file", O_RDONLY | O_CLOEXEC, 0)
    assert fd == 0 and p.raw("fcntl", fd, F_GETFD, 0) == 1
    assert p.raw("dup", fd) == 1 and p.raw("fcntl", 1, F_GETFD, 0) == 0
    assert p.raw("dup2", fd, fd) == fd
    assert p.raw("dup2", 77, 77) == -errno.EBADF
    assert p.raw("dup3", fd, fd, 0) == -errno.EINVAL
    assert p.raw("dup3", fd, 5, 0o1) == -errno.EINVAL
    assert p.raw("dup3", fd, 5, O_CLOEXEC) == 5 and p.raw("fcntl", 5, F_GETFD, 0) == 1
    assert p.raw("fcntl", fd, F_DUPFD, 3) == 3
    assert p.raw("fcntl", fd, F_DUPFD_CLOEXEC, 3) == 4 and 4 in p.tg.fds.cloexec
    assert p.raw("dup2", fd, 1 << 20) == -errno.EBADF
    assert p.raw("fcntl", fd, 5, 0) == -errno.EFAULT  # F_GETLK reads its struct flock
    assert p.raw("fcntl", fd, 1025, 0) == -errno.EINVAL and "fcntl:1025" in p.kernel.warnings
    assert p.raw("close_range", 3, 4, 4) == 0 and {3, 4} <= p.tg.fds.cloexec
    assert p.raw("close_range", 4, 3, 0) == -errno.EINVAL
    assert p.raw("close_range", 3, 0xFFFFFFFF, 0) == 0 and set(p.tg.fds.files) == {0, 1}
    assert p.raw("close", 1) == 0 and p.raw("close", 1) == -errno.EBADF
    assert p.raw("close", -1) == -errno.EBADF
    # RLIMIT_NOFILE bounds every way of getting a descriptor
    p.tg.rlimits[7][0] = 3
    assert p.call("openat", AT_FDCWD, "/file", O_RDONLY, 0) == 1
    assert p.call("openat", AT_FDCWD, "/file", O_RDONLY, 0) == 2
    assert p.call("openat", AT_FDCWD, "/file", O_RDONLY, 0) == -errno.EMFILE
    assert p.raw("dup", 0) == -errno.EMFILE
    assert p.raw("fcntl", 0, F_DUPFD, 3) == -errno.EINVAL
    assert p.raw("dup2", 0, 3) == -errno.EBADF


def test_cwd_calls(tree: Path) -> None:
    p = sandbox(tree)
    assert p.call("chdir", "/dir_link/sub") == 0
    assert p.tg.fs.cwd == "/dir/sub"
    buf = p.alloc(64)
    assert p.raw("getcwd", buf, 64) == 9 and p.get(buf, 9) == b"/dir/sub\0"
    assert p.raw("getcwd", buf, 8) == -errno.ERANGE
    assert read_file(p, "../a") == b"a"
    assert p.call("chdir", "/file") == -errno.ENOTDIR
    fd = p.call("openat", AT_FDCWD, "/etc", O_PATH | O_DIRECTORY, 0)
    assert p.raw("fchdir", fd) == 0 and p.tg.fs.cwd == "/etc"
    assert read_file(p, "passwd") == PASSWD
    fd = p.call("openat", AT_FDCWD, "/file", O_RDONLY, 0)
    assert p.raw("fchdir", fd) == -errno.ENOTDIR
    assert p.raw("umask", 0o7777) == 0o022 and p.raw("umask", 0) == 0o777


def test_access_uses_sandbox_identity(tree: Path) -> None:
    (tree / "private").write_bytes(b"x")
    os.chmod(tree / "private", 0o600)
    p = sandbox(tree, writable=True)
    assert p.call("access", "/private", os.R_OK | os.W_OK) == 0  # sandbox root
    creds = p.tg.creds
    creds.ruid = creds.euid = creds.fsuid = 1000
    creds.rgid = creds.egid = creds.fsgid = 1000
    assert p.call("access", "/private", os.R_OK) == -errno.EACCES
    assert p.call("openat", AT_FDCWD, "/private", O_RDONLY, 0) == -errno.EACCES
    assert p.call("access", "/file", os.R_OK) == 0
    assert p.call("access", "/file", os.W_OK) == -errno.EACCES
    creds.euid = creds.fsuid = 0  # (setresuid moves the fs id with the effective one)
    assert p.call("faccessat2", AT_FDCWD, "/private", os.R_OK, 0x200) == 0  # AT_EACCESS


def test_open_path_readlink_and_empty_paths(tree: Path) -> None:
    p = sandbox(tree)
    fd = p.call("openat", AT_FDCWD, "/rel_link", O_PATH | O_NOFOLLOW, 0)
    buf = p.alloc(64)
    assert p.raw("readlinkat", fd, p.cstr(""), buf, 64) == 4 and p.get(buf, 4) == b"file"
    assert p.raw("readlink", p.cstr("/abs_link"), buf, 3) == 3 and p.get(buf, 3) == b"/et"
    assert p.raw("readlink", p.cstr("/abs_link"), buf, 0) == -errno.EINVAL
    st = p.alloc(144)
    assert p.raw("newfstatat", fd, p.cstr(""), st, AT_EMPTY_PATH) == 0
    assert stat.S_ISLNK(struct.unpack_from("<I", p.get(st, 144), 24)[0])
    assert p.raw("newfstatat", fd, p.cstr(""), st, 0) == -errno.ENOENT
    assert p.raw("newfstatat", AT_FDCWD, p.cstr(""), st, AT_EMPTY_PATH) == 0  # the cwd
    assert p.raw("newfstatat", AT_FDCWD, 0, st, 0) == -errno.EFAULT
    long_path = p.cstr("/" + "x" * 4095)
    assert p.raw("newfstatat", AT_FDCWD, long_path, st, 0) == -errno.ENAMETOOLONG


# ----------------------------------------------------------------------------- stdio

def _stdio_process(hostfd: int) -> tuple[FakeProcess, StdioFile]:
    p = FakeProcess(HostRoot("/"))
    f = StdioFile(hostfd)
    p.tg.fds.set(0, f)
    return p, f


def test_stdio_pipe_reads_park_instead_of_blocking() -> None:
    r, w = os.pipe()
    p, f = _stdio_process(os.dup(r))
    buf = p.alloc(16)
    block = call_blocking(p, "read", 0, buf, 16)
    assert block.fd == f.fd and block.events == 1
    assert p.raw("fcntl", 0, F_SETFL, O_NONBLOCK) == 0
    assert p.raw("read", 0, buf, 16) == -errno.EAGAIN
    assert fcntl.fcntl(f.fd, fcntl.F_GETFL) & O_NONBLOCK == 0  # the host fd is untouched
    os.write(w, b"hi there")
    assert p.call("ioctl", 0, 0x541B, Out(4)) == 0
    assert p.run([("ioctl", 0, 0x541B, Out(4))])[0][1] == struct.pack("<i", 8)
    assert p.raw("read", 0, buf, 16) == 8 and p.get(buf, 8) == b"hi there"
    assert p.call("ioctl", 0, 0x5401, Out(64)) == -errno.ENOTTY
    assert p.call("ioctl", 0, 0x5413, Out(8)) == -errno.ENOTTY
    assert p.raw("lseek", 0, 0, 1) == -errno.ESPIPE
    assert p.raw("pread64", 0, buf, 1, 0) == -errno.ESPIPE
    os.close(w)
    assert p.raw("read", 0, buf, 16) == 0
    os.close(r)


def test_stdio_writes_and_redirected_files(tmp_path: Path) -> None:
    r, w = os.pipe()
    p, f = _stdio_process(os.dup(w))
    assert p.call("write", 0, In(b"out"), 3) == 3
    assert os.read(r, 10) == b"out"
    os.close(r)
    assert p.call("write", 0, In(b"x"), 1) == -errno.EPIPE
    path = tmp_path / "redirect"
    path.write_bytes(b"0123456789")
    p, f = _stdio_process(os.open(path, os.O_RDWR))
    assert p.raw("lseek", 0, 4, 0) == 4
    assert p.call("read", 0, Out(3), 3) == 3
    assert p.call("pread64", 0, Out(2), 2, 0) == 2
    assert p.raw("ftruncate", 0, 5) == 0 and path.read_bytes() == b"01234"
    assert p.call("fstat", 0, Out(144)) == 0


def test_stdio_terminal_ioctls() -> None:
    master, slave = os.openpty()
    try:
        p, f = _stdio_process(os.dup(slave))
        out = p.run([("ioctl", 0, 0x5401, Out(36)), ("ioctl", 0, 0x5413, Out(8))])
        assert out[0][0] == 0 and out[1][0] == 0
        iflag, oflag, cflag, lflag = struct.unpack_from("<IIII", out[0][1])
        host = termios.tcgetattr(slave)
        assert [iflag, oflag, cflag, lflag] == host[:4]
        termios_raw = out[0][1]
        assert p.call("ioctl", 0, 0x5402, In(termios_raw)) == 0
        winsize = struct.pack("<HHHH", 40, 100, 0, 0)
        assert p.call("ioctl", 0, 0x5414, In(winsize)) == 0
        assert p.run([("ioctl", 0, 0x5413, Out(8))])[0][1] == winsize
        assert p.call("ioctl", 0, 0x540F, Out(4)) in (0, -errno.ENOTTY)
        assert p.call("ioctl", 0, 0x5499, 0) == -errno.ENOTTY
        assert any(k.startswith("ioctl:tty") for k in p.kernel.warnings)
    finally:
        os.close(master)
        os.close(slave)


def test_stdio_files_are_the_clis_own() -> None:
    files = stdio_files()
    assert len(files) == 3
    for i, f in enumerate(files):
        if f is None:
            continue
        assert os.path.sameopenfile(f.fd, i) and f.fd != i
        f.release()


def test_host_file_release_closes_the_host_fd(tree: Path) -> None:
    p = sandbox(tree)
    fd = p.call("openat", AT_FDCWD, "/file", O_RDONLY, 0)
    f = p.tg.fds.get(fd)
    assert isinstance(f, HostFile)
    host = f.fd
    os.fstat(host)
    assert p.raw("close", fd) == 0
    with pytest.raises(OSError):
        os.fstat(host)
    with pytest.raises(SyscallError):
        p.tg.fds.get(fd)
    assert isinstance(Block(), Exception)


# ----------------------------------------------------------------------------- xattrs

XATTR_OPS: list[tuple] = [
    ("setxattr", "/file", "user.k", In(b"v1"), 2, 0),
    ("getxattr", "/file", "user.k", Out(16), 16),
    ("getxattr", "/file", "user.k", Out(1), 0),
    ("getxattr", "/file", "user.k", Out(1), 1),
    ("getxattr", "/file", "user.none", Out(16), 16),
    ("getxattr", "/file", "bogus.x", Out(16), 16),
    ("getxattr", "/file", "", Out(16), 16),
    ("getxattr", "/nonexistent", "user.k", Out(16), 16),
    ("getxattr", "/dir", "system.posix_acl_access", Out(64), 64),
    ("getxattr", "/dir", "security.selinux", Out(64), 64),
    ("setxattr", "/file", "user.k", In(b"v2"), 2, 1),
    ("setxattr", "/file", "user.other", In(b"v2"), 2, 2),
    ("setxattr", "/file", "user.k", In(b"v2"), 2, 4),
    ("setxattr", "/file", "user.k", In(b"x"), 65537, 0),
    ("listxattr", "/file", Out(64), 64),
    ("listxattr", "/file", Out(64), 0),
    ("listxattr", "/file", Out(2), 2),
    ("llistxattr", "/rel_link", Out(64), 64),
    ("lgetxattr", "/rel_link", "user.k", Out(16), 16),
    ("getxattr", "/rel_link", "user.k", Out(16), 16),
    ("lsetxattr", "/rel_link", "user.k", In(b"v"), 1, 0),
]
_fd_ops(XATTR_OPS, ("openat", AT_FDCWD, "/file", O_RDONLY, 0), [
    ("fgetxattr", FD, "user.k", Out(16), 16),
    ("flistxattr", FD, Out(64), 64),
    ("fsetxattr", FD, "user.f", In(b"fd"), 2, 0),
    ("fremovexattr", FD, "user.f"),
])
_fd_ops(XATTR_OPS, ("openat", AT_FDCWD, "/file", O_PATH, 0), [
    ("fgetxattr", FD, "user.k", Out(16), 16),
])
XATTR_OPS += [
    ("removexattr", "/file", "user.k"),
    ("removexattr", "/file", "user.k"),
    ("lremovexattr", "/rel_link", "user.k"),
]


def test_xattrs_writable_match_native(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ours_root, native_root = build_tree(tmp_path / "a"), build_tree(tmp_path / "b")
    try:
        os.setxattr(native_root / "file", "user.probe", b"1")
    except OSError:
        pytest.skip("no user xattrs on this file system")
    os.removexattr(native_root / "file", "user.probe")
    ours = sandbox(ours_root, writable=True).run(XATTR_OPS)
    native = native_calls(str(native_root), XATTR_OPS, readonly=False)
    assert_same(XATTR_OPS, ours, native)
    for i, op in enumerate(XATTR_OPS):  # values and name lists, byte for byte
        if op[0].endswith(("getxattr", "listxattr")) and ours[i][0] > 0:
            assert ours[i][1][:ours[i][0]] == native[i][1][:native[i][0]], op


def test_xattrs_read_only_and_hidden_labels(tree: Path) -> None:
    try:
        os.setxattr(tree / "file", "user.k", b"v")
        os.setxattr(tree / "file", "trusted.overlay.x", b"host")
    except OSError:
        pytest.skip("no user/trusted xattrs on this file system")
    p = sandbox(tree)
    assert p.call("setxattr", "/file", "user.k", In(b"w"), 1, 0) == -errno.EROFS
    assert p.call("removexattr", "/file", "user.k") == -errno.EROFS
    assert p.call("setxattr", "/nonexistent", "user.k", In(b"w"), 1, 0) == -errno.ENOENT
    assert p.run([("getxattr", "/file", "user.k", Out(4), 4)])[0][:2] == [1, b"v\0\0\0"]
    assert p.call("getxattr", "/file", "trusted.overlay.x", Out(8), 8) == -errno.ENODATA
    listing = p.run([("listxattr", "/file", Out(64), 64)])[0]
    assert listing[1][:listing[0]] == b"user.k\0"


def test_copies_stop_at_the_first_fault_like_linux(tree: Path) -> None:
    """read() into a buffer running onto a read-only page is short, not EFAULT."""
    p = sandbox(tree, writable=True)
    mm = p.tg.mm
    ro_page, gap = p.alloc(8192) + 4096 & ~4095, p.alloc(8192) + 4096 & ~4095
    for vma in mm._pieces(ro_page, ro_page + 4096):
        vma.prot = 1  # PROT_READ
    mm._carve(gap, gap + 4096)  # unmapped
    fd = p.call("openat", AT_FDCWD, "/file", O_RDWR, 0)
    assert p.raw("read", fd, ro_page - 4, 10) == 4
    assert p.get(ro_page - 4, 4) == b"hell" and p.raw("lseek", fd, 0, 1) == 4
    assert p.raw("pread64", fd, ro_page - 2, 10, 0) == 2
    assert p.raw("read", fd, ro_page, 10) == -errno.EFAULT and p.raw("lseek", fd, 0, 1) == 4
    iov = p.put(struct.pack("<QQQQ", p.alloc(2), 2, ro_page - 1, 5))
    assert p.raw("readv", fd, iov, 2) == 3 and p.raw("lseek", fd, 0, 1) == 7
    # writes take the readable prefix
    host_before = (tree / "file").read_bytes()
    p.host.write(gap - 3, b"XYZ")
    assert p.raw("pwrite64", fd, gap - 3, 10, 0) == 3
    assert (tree / "file").read_bytes() == b"XYZ" + host_before[3:]
    iov = p.put(struct.pack("<QQQQ", p.put(b"ab"), 2, gap, 4))
    assert p.raw("pwritev", fd, iov, 2, 0) == 2
    assert p.raw("write", fd, gap, 4) == -errno.EFAULT


def test_getcwd_of_a_removed_directory(tree: Path) -> None:
    p = sandbox(tree, writable=True)
    assert p.call("chdir", "/empty_dir") == 0
    os.rmdir(tree / "empty_dir")
    assert p.call("getcwd", Out(64), 64) == -errno.ENOENT
    assert p.call("openat", AT_FDCWD, "new", O_WRONLY | O_CREAT, 0o644) == -errno.ENOENT


def test_hidden_objects_do_not_leak_through_o_excl() -> None:
    p = host_sandbox("/")
    assert p.call("openat", AT_FDCWD, "/proc/1", O_RDONLY | O_CREAT | O_EXCL, 0o644) == \
        -errno.ENOENT
    assert p.call("openat", AT_FDCWD, "/proc/1/status", O_PATH, 0) == -errno.ENOENT
