"""OCI maskedPaths/readonlyPaths (fsimpl/pathrules.py) on a SandboxRoot, through the
system-call handlers: masked directories (an empty read-only tmpfs), masked files
(/dev/null bound over them), read-only subtrees (every change EROFS, reads as before),
paths that are missing or reached through symlinks, /proc/PID/mountinfo's lines, and a
differential check against what Linux answers after runc's very mounts (unshare -m)."""
from __future__ import annotations

import errno
import json
import os
import stat
import struct

import pytest

import conftest
from conftest import FakeProcess, In, Out, native_calls
from snakevisor.fsimpl.devfs import DevFs
from snakevisor.fsimpl.pathrules import apply_path_rules
from snakevisor.fsimpl.procfs.fs import ProcFs
from snakevisor.fsimpl.sandboxroot import SandboxRoot
from snakevisor.fsimpl.sysfs import SysFs
from snakevisor.fsimpl.tmpfs import Tmpfs

AT_FDCWD, AT_SYMLINK_NOFOLLOW = -100, 0x100
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC = 0, 1, 2, 0o100, 0o1000
O_DIRECTORY = 0o200000
S_IFIFO, S_IFCHR = 0o010000, 0o020000
DOCKER_MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                 "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                 "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                 "/sys/devices/virtual/powercap"]
DOCKER_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def sandbox(mnt: bool = False) -> tuple[FakeProcess, SandboxRoot]:
    """A tmpfs root (/etc with files, a fifo and /etc/sub, /data/secret, /tmp) with the
    sandbox's /proc, /sys, /dev and /dev/pts (and a tmpfs on /mnt if asked), before any
    path rule."""
    proc = ProcFs(None)  # type: ignore[arg-type]  (its kernel is the fake process's, below)
    dev = DevFs()
    mounts = {b"/": Tmpfs(mode=0o755), b"/proc": proc, b"/sys": SysFs(_cpus()),
              b"/dev": dev, b"/dev/pts": dev.pts}
    if mnt:
        mounts[b"/mnt"] = Tmpfs()
    root = SandboxRoot(mounts)  # type: ignore[arg-type]
    p = FakeProcess(root)
    proc.kernel = p.kernel
    p.kernel.thread_groups = {1: p.tg}  # type: ignore[attr-defined]
    proc.mount_records = root.mount_records  # type: ignore[attr-defined]
    for d in ("/etc", "/etc/sub", "/data", "/tmp"):
        assert p.call("mkdir", d, 0o755) == 0
    write(p, "/etc/passwd", b"root:x:0:0\n")
    write(p, "/data/secret", b"key")
    assert p.call("mknod", "/etc/fifo", S_IFIFO | 0o666, 0) == 0
    assert p.call("symlink", "/etc", "/link") == 0
    return p, root


def _cpus() -> object:
    import types
    return types.SimpleNamespace(platform=types.SimpleNamespace(cpus=frozenset({0})))


def write(p: FakeProcess, path: str, data: bytes) -> None:
    fd = p.call("openat", AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    assert fd >= 0 and p.call("write", fd, In(data), len(data)) == len(data)
    assert p.call("close", fd) == 0


def read(p: FakeProcess, path: str) -> bytes | int:
    fd = p.call("openat", AT_FDCWD, path, O_RDONLY, 0)
    if fd < 0:
        return fd
    n, data = p.run([("read", fd, Out(8192), 8192)])[0]
    p.call("close", fd)
    return data[:n] if n >= 0 else n


def stat_of(p: FakeProcess, path: str) -> tuple[int, int, int, int, int, int]:
    """(dev, ino, nlink, mode, rdev, size) of newfstatat."""
    ret, buf = p.run([("newfstatat", AT_FDCWD, path, Out(144), 0)])[0]
    assert ret == 0, (path, ret)
    dev, ino, nlink, mode = struct.unpack_from("<QQQI", buf)
    rdev, size = struct.unpack_from("<Qq", buf, 40)
    return dev, ino, nlink, mode, rdev, size


def names(p: FakeProcess, path: str) -> list[bytes]:
    fd = p.call("openat", AT_FDCWD, path, O_RDONLY | O_DIRECTORY, 0)
    assert fd >= 0
    n, buf = p.run([("getdents64", fd, Out(8192), 8192)])[0]
    out, off = [], 0
    while off < n:
        reclen = struct.unpack_from("<H", buf, off + 16)[0]
        out.append(buf[off + 19:off + reclen].rstrip(b"\0"))
        off += reclen
    return sorted(out)


def dirent_ino(p: FakeProcess, path: str, name: bytes) -> int:
    """d_ino of one name in a directory's getdents listing."""
    fd = p.call("openat", AT_FDCWD, path, O_RDONLY | O_DIRECTORY, 0)
    n, buf = p.run([("getdents64", fd, Out(8192), 8192)])[0]
    off = 0
    while off < n:
        ino, _, reclen = struct.unpack_from("<QqH", buf, off)
        if buf[off + 19:off + reclen].rstrip(b"\0") == name:
            return ino
        off += reclen
    raise AssertionError(f"{name!r} not in {path}")


def mountinfo(p: FakeProcess) -> dict[str, str]:
    """mountinfo by mount point: "root point options - type source super" (no numbers)."""
    text = read(p, "/proc/self/mountinfo")
    assert isinstance(text, bytes)
    return {line.split()[4]: " ".join(line.split()[3:]) for line in text.decode().splitlines()}


def test_dockers_defaults_mount_only_what_exists() -> None:
    p, root = sandbox()
    before = set(root.mounts)
    apply_path_rules(root, p.kernel, DOCKER_MASKED, DOCKER_READONLY)  # type: ignore[arg-type]
    assert set(root.mounts) - before == {b"/proc/sys"}  # our /proc has none of the rest
    assert not p.kernel.warnings
    assert mountinfo(p)["/proc/sys"] == \
        "/sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw"
    assert read(p, "/proc/sys/kernel/ostype") == b"Linux\n"
    assert dirent_ino(p, "/proc/sys", b"..") == stat_of(p, "/proc")[1]  # bound on itself
    assert p.call("openat", AT_FDCWD, "/proc/sys/kernel/hostname", O_WRONLY, 0) == -errno.EROFS
    assert p.call("access", "/proc/sys/kernel/hostname", 2) == -errno.EROFS
    # a new name: proc's lookup fails first (ENOENT, as under runc), not the read-only bind
    assert p.call("mkdir", "/proc/sys/kernel/x", 0o755) == -errno.ENOENT
    assert p.call("access", "/proc/sys/kernel/hostname", 4) == 0
    assert statfs_flags(p, "/proc/sys/kernel") & 1 and not statfs_flags(p, "/proc") & 1


def statfs_flags(p: FakeProcess, path: str) -> int:
    ret, buf = p.run([("statfs", path, Out(120))])[0]
    assert ret == 0
    return struct.unpack_from("<q", buf, 80)[0]


def test_masked_directory_is_an_empty_read_only_tmpfs() -> None:
    p, root = sandbox()
    root_ino = stat_of(p, "/")[:2]
    apply_path_rules(root, p.kernel, ["/data", "/proc/sysvipc"], [])  # type: ignore[arg-type]
    for path in ("/data", "/proc/sysvipc"):
        _, _, nlink, mode, _, size = stat_of(p, path)
        assert (mode, nlink, size) == (stat.S_IFDIR | 0o1777, 2, 40)
        assert names(p, path) == [b".", b".."]
        assert mountinfo(p)[path] == f"/ {path} ro,relatime - tmpfs tmpfs ro"
    assert read(p, "/data/secret") == -errno.ENOENT
    assert p.call("openat", AT_FDCWD, "/data/new", O_WRONLY | O_CREAT, 0o644) == -errno.EROFS
    assert p.call("mkdir", "/data/d", 0o755) == -errno.EROFS
    assert p.call("symlink", "x", "/data/l") == -errno.EROFS
    assert p.call("mknod", "/data/fifo", S_IFIFO | 0o644, 0) == -errno.EROFS
    assert p.call("chmod", "/data", 0o755) == -errno.EROFS
    assert p.call("rmdir", "/data") == -errno.EBUSY  # a mount point
    assert stat_of(p, "/data/..")[:2] == root_ino  # `..` leaves the mask for its parent
    assert p.call("chdir", "/data") == 0 and stat_of(p, "..")[:2] == root_ino
    assert statfs_flags(p, "/data") & 1  # ST_RDONLY


def test_masked_file_is_dev_null() -> None:
    p, root = sandbox()
    null = stat_of(p, "/dev/null")
    apply_path_rules(root, p.kernel,  # type: ignore[arg-type]
                     ["/data/secret", "/proc/cpuinfo"], [])
    for path in ("/data/secret", "/proc/cpuinfo"):
        assert stat_of(p, path) == null
        assert read(p, path) == b""
        fd = p.call("openat", AT_FDCWD, path, O_WRONLY, 0)
        assert fd >= 0 and p.call("write", fd, In(b"gone"), 4) == 4  # swallowed
        assert read(p, path) == b""
        assert mountinfo(p)[path] == \
            f"/null {path} rw,nosuid,relatime - devtmpfs devtmpfs rw,mode=755,size=1024k"
    assert p.call("unlink", "/data/secret") == -errno.EBUSY
    assert mode_nofollow(p, "/data") == stat.S_IFDIR | 0o755  # its directory is untouched


def mode_nofollow(p: FakeProcess, path: str) -> int:
    ret, buf = p.run([("newfstatat", AT_FDCWD, path, Out(144), AT_SYMLINK_NOFOLLOW)])[0]
    return -ret if ret else struct.unpack_from("<I", buf, 24)[0]


def test_read_only_subtree_refuses_every_change() -> None:
    p, root = sandbox()
    apply_path_rules(root, p.kernel, [], ["/etc"])  # type: ignore[arg-type]
    assert mountinfo(p)["/etc"] == "/etc /etc ro,relatime - rootfs rootfs rw"
    rofs = -errno.EROFS
    fd = p.call("openat", AT_FDCWD, "/etc/passwd", O_RDONLY, 0)
    assert fd >= 0
    calls = [
        ("openat", AT_FDCWD, "/etc/passwd", O_WRONLY, 0),
        ("openat", AT_FDCWD, "/etc/passwd", O_RDWR, 0),
        ("openat", AT_FDCWD, "/etc/passwd", O_RDONLY | O_TRUNC, 0),
        ("openat", AT_FDCWD, "/etc/new", O_WRONLY | O_CREAT, 0o644),
        ("mkdir", "/etc/d", 0o755),
        ("mknod", "/etc/f2", S_IFIFO | 0o644, 0),
        ("symlink", "x", "/etc/l"),
        ("link", "/etc/passwd", "/etc/p2"),
        ("unlink", "/etc/passwd"),
        ("rmdir", "/etc/sub"),
        ("rename", "/etc/passwd", "/etc/p3"),
        ("chmod", "/etc/passwd", 0o600),
        ("chown", "/etc/passwd", 1, 1),
        ("utimensat", AT_FDCWD, "/etc/passwd", 0, 0),
        ("truncate", "/etc/passwd", 0),
        ("setxattr", "/etc/passwd", "user.a", In(b"1"), 1, 0),
        ("removexattr", "/etc/passwd", "user.a"),
        ("access", "/etc/passwd", 2),
        ("fchmod", fd, 0o600),
        ("fchown", fd, 1, 1),
        ("fsetxattr", fd, "user.a", In(b"1"), 1, 0),
        ("mkdir", "/link/d", 0o755),  # the same place through a symlink
    ]
    assert [p.call(*c) for c in calls] == [rofs] * len(calls)
    assert read(p, "/etc/passwd") == b"root:x:0:0\n"
    assert names(p, "/etc") == [b".", b"..", b"fifo", b"passwd", b"sub"]
    # leaving the mount is EXDEV, as rename/link between two mounts of one file system
    assert p.call("rename", "/etc/passwd", "/tmp/p") == -errno.EXDEV
    assert p.call("link", "/etc/passwd", "/tmp/p") == -errno.EXDEV
    assert p.call("rename", "/tmp", "/etc/tmp") == -errno.EXDEV
    # special files are still written; the rest of the tree is not read-only
    assert p.call("openat", AT_FDCWD, "/etc/fifo", O_RDWR, 0) >= 0
    assert p.call("openat", AT_FDCWD, "/etc/passwd", O_RDONLY | O_CREAT, 0o644) >= 0
    write(p, "/tmp/x", b"ok")
    assert p.call("chmod", "/", 0o700) == 0


def test_missing_and_symlinked_paths() -> None:
    p, root = sandbox()
    before = set(root.mounts)
    apply_path_rules(root, p.kernel,  # type: ignore[arg-type]
                     ["/nope", "/etc/passwd/x", "/data/../data/secret"], ["/link/sub", "/a/b/c"])
    assert set(root.mounts) - before == {b"/data/secret", b"/etc/sub"}
    assert p.call("mkdir", "/etc/sub/d", 0o755) == -errno.EROFS
    assert p.call("mkdir", "/etc/d", 0o755) == 0
    assert not p.kernel.warnings


def test_mask_over_a_read_only_path_and_a_mount_point() -> None:
    """runc lays read-only paths first, then masks: a mask inside a read-only subtree is a
    mount of its own; a rule on a mount point stacks a mount over it."""
    p, root = sandbox()
    apply_path_rules(root, p.kernel,  # type: ignore[arg-type]
                     ["/proc/sys/kernel", "/sys"], ["/proc/sys", "/dev/pts"])
    info = mountinfo(p)
    assert info["/proc/sys/kernel"] == "/ /proc/sys/kernel ro,relatime - tmpfs tmpfs ro"
    assert names(p, "/proc/sys/kernel") == [b".", b".."]
    assert b"vm" in names(p, "/proc/sys")
    assert names(p, "/sys") == [b".", b".."]
    text = read(p, "/proc/self/mountinfo")
    assert isinstance(text, bytes)
    pts = [line for line in text.decode().splitlines() if line.split()[4] == "/dev/pts"]
    assert len(pts) == 2 and pts[1].split()[1] == pts[0].split()[0]  # stacked on the first
    assert pts[1].split()[5].startswith("ro,")
    assert p.call("openat", AT_FDCWD, "/dev/pts/ptmx", O_RDWR, 0) >= 0  # a device: still opens


# -- differential: the same rules and calls on Linux ------------------------------------------
#: runc's readonlyPath and maskPath (libcontainer), in the native runner's mount namespace
_RUNC = r"""
import ctypes, errno as _e, json as _j, os as _o
_libc = ctypes.CDLL(None, use_errno=True)
def _mount(src, dst, kind, flags):
    if _libc.mount(src.encode(), dst.encode(), kind.encode(), ctypes.c_ulong(flags), None):
        return ctypes.get_errno()
    return 0
_mount("proc", "/proc", "proc", 2 | 4 | 8)  # a container's /proc: nosuid,nodev,noexec
_mount("tmpfs", "/mnt", "tmpfs", 2)  # a scratch tree: /mnt/etc/{passwd,sub,fifo}, data, secret
for _d in ("etc", "etc/sub", "data"):
    _o.mkdir("/mnt/" + _d)
for _f in ("etc/passwd", "secret", "data/x"):
    open("/mnt/" + _f, "w").write("text\n")
_o.mkfifo("/mnt/etc/fifo")
_rules = _j.loads(_o.environ["PATHRULES"])
for _p in _rules["readonly"]:
    if _mount(_p, _p, "", 4096 | 16384) == 0:
        _st = _o.statvfs(_p)
        _mount(_p, _p, "", (_st.f_flag & 14) | 4096 | 32 | 1)
for _p in _rules["masked"]:
    if _mount("/dev/null", _p, "", 4096) == _e.ENOTDIR:
        _mount("tmpfs", _p, "tmpfs", 1)
"""
DIFF_MASKED = ["/proc/sysvipc", "/proc/cpuinfo", "/proc/nonexistent", "/mnt/data", "/mnt/secret"]
DIFF_READONLY = ["/proc/sys", "/mnt/etc"]
DIFF_CALLS = [
    ("openat", AT_FDCWD, "/proc/sys/kernel/hostname", O_WRONLY, 0),
    ("openat", AT_FDCWD, "/proc/sys/kernel/hostname", O_RDONLY | O_TRUNC, 0),
    ("unlink", "/proc/sys/kernel/hostname"),
    ("rename", "/proc/sys/kernel/hostname", "/proc/sys/kernel/h2"),
    ("chmod", "/proc/sys/kernel/hostname", 0o600),
    ("chown", "/proc/sys/kernel/hostname", 1, 1),
    ("truncate", "/proc/sys/kernel/hostname", 0),
    ("utimensat", AT_FDCWD, "/proc/sys/kernel/hostname", 0, 0),
    ("setxattr", "/proc/sys/kernel/hostname", "user.a", In(b"1"), 1, 0),
    ("access", "/proc/sys/kernel/hostname", 2),
    ("openat", AT_FDCWD, "/proc/sysvipc/new", O_WRONLY | O_CREAT, 0o644),
    ("mkdir", "/proc/sysvipc/d", 0o755),
    ("mknod", "/proc/sysvipc/f", S_IFIFO | 0o644, 0),
    ("openat", AT_FDCWD, "/proc/sysvipc/shm", O_RDONLY, 0),
    ("chmod", "/proc/sysvipc", 0o755),
    ("truncate", "/proc/cpuinfo", 0),
    ("openat", AT_FDCWD, "/proc/nonexistent", O_RDONLY, 0),
    # a read-only subtree of a tmpfs
    ("openat", AT_FDCWD, "/mnt/etc/passwd", O_WRONLY, 0),
    ("openat", AT_FDCWD, "/mnt/etc/passwd", O_RDWR | O_TRUNC, 0),
    ("openat", AT_FDCWD, "/mnt/etc/passwd", O_RDONLY | O_CREAT, 0o644),
    ("openat", AT_FDCWD, "/mnt/etc/new", O_RDONLY | O_CREAT, 0o644),
    ("openat", AT_FDCWD, "/mnt/etc/fifo", O_RDWR, 0),
    ("mkdir", "/mnt/etc/d", 0o755),
    ("mkdir", "/mnt/etc/sub", 0o755),
    ("mknod", "/mnt/etc/f", S_IFIFO | 0o644, 0),
    ("symlink", "x", "/mnt/etc/l"),
    ("link", "/mnt/etc/passwd", "/mnt/etc/p2"),
    ("link", "/mnt/etc/passwd", "/mnt/p2"),
    ("rename", "/mnt/etc/passwd", "/mnt/etc/p3"),
    ("rename", "/mnt/etc/passwd", "/mnt/p3"),
    ("unlink", "/mnt/etc/passwd"),
    ("unlink", "/mnt/etc/missing"),
    ("rmdir", "/mnt/etc/sub"),
    ("chmod", "/mnt/etc/passwd", 0o600),
    ("chown", "/mnt/etc/passwd", 1, 1),
    ("utimensat", AT_FDCWD, "/mnt/etc/passwd", 0, 0),
    ("truncate", "/mnt/etc/passwd", 0),
    ("truncate", "/mnt/etc/sub", 0),
    ("setxattr", "/mnt/etc/passwd", "user.a", In(b"1"), 1, 0),
    ("removexattr", "/mnt/etc/passwd", "user.a"),
    ("access", "/mnt/etc/passwd", 2),
    ("access", "/mnt/etc/fifo", 2),
    ("access", "/mnt/etc/passwd", 4),
    # masks in a tmpfs
    ("openat", AT_FDCWD, "/mnt/data/x", O_RDONLY, 0),
    ("openat", AT_FDCWD, "/mnt/data/new", O_WRONLY | O_CREAT, 0o644),
    ("mkdir", "/mnt/data/d", 0o755),
    ("rmdir", "/mnt/data"),
    ("unlink", "/mnt/secret"),
    ("chmod", "/mnt/data", 0o755),
    ("openat", AT_FDCWD, "/mnt/secret", O_WRONLY | O_TRUNC, 0),
]
#: what is compared of stat: the type and permission bits, links, size and device number
DIFF_STATS = ["/proc/sysvipc", "/proc/cpuinfo", "/mnt/data", "/mnt/secret", "/mnt/data/..",
              "/mnt"]


def _stat_calls() -> list[tuple]:
    return [("newfstatat", AT_FDCWD, path, Out(144), 0) for path in DIFF_STATS]


def _read_calls(base: int) -> list[tuple]:
    """open+read of the masked file and of /proc/self/mountinfo (refs to the opens)."""
    from conftest import Ref
    return [("openat", AT_FDCWD, "/proc/cpuinfo", O_RDONLY, 0),
            ("read", Ref(base), Out(64), 64),
            ("openat", AT_FDCWD, "/proc/self/mountinfo", O_RDONLY, 0),
            ("read", Ref(base + 2), Out(16384), 16384)]


def _essence(results: list[list]) -> list:
    """Errnos of the calls, the compared stat fields, the masked file's read, and the path
    rules' mountinfo lines without the numbers."""
    n = len(DIFF_CALLS)
    errs = [r[0] if r[0] < 0 else "ok" for r in results[:n]]
    stats: list = []
    for ret, buf in results[n:n + len(DIFF_STATS)]:
        nlink, mode = struct.unpack_from("<QI", buf, 16)
        rdev, size = struct.unpack_from("<Qq", buf, 40)
        stats.append((ret, oct(mode), nlink, rdev, size if stat.S_ISDIR(mode) else 0))
    stats.append(results[n + 4][1][:16] == results[n + 5][1][:16])  # /mnt/data/.. is /mnt
    reads = results[n + len(DIFF_STATS):]
    info = reads[3][1][:reads[3][0]].decode()
    rules = {}
    for line in info.splitlines():
        f = line.split()
        if f[4] in DIFF_MASKED + DIFF_READONLY:
            sep = f.index("-")
            if f[3] == "/null":  # the flags and options of the /dev it comes from
                rules[f[4]] = (f[3], f[sep + 1])
            elif f[4].startswith("/mnt") and f[sep + 3] != "ro":  # (tmpfs's own options)
                rules[f[4]] = (f[3], f[5], f[sep + 1])
            else:
                rules[f[4]] = (f[3], f[5], f[sep + 1], f[sep + 3])
    return [errs, stats, reads[1][0], rules]


def test_differential_against_runcs_mounts(monkeypatch: pytest.MonkeyPatch) -> None:
    ops = DIFF_CALLS + _stat_calls() + _read_calls(len(DIFF_CALLS) + len(DIFF_STATS))
    monkeypatch.setenv("PATHRULES", json.dumps({"masked": DIFF_MASKED,
                                                "readonly": DIFF_READONLY}))
    monkeypatch.setattr(conftest, "_NATIVE_RUNNER", _RUNC + conftest._NATIVE_RUNNER)
    if not os.path.isdir("/proc/sysvipc") or not os.path.isfile("/proc/cpuinfo"):
        pytest.skip("this host's /proc lacks the compared paths")
    native = native_calls("/", ops, readonly=False)
    p, root = sandbox(mnt=True)
    assert p.call("mkdir", "/mnt/data", 0o755) == 0 and p.call("mkdir", "/mnt/etc", 0o755) == 0
    assert p.call("mkdir", "/mnt/etc/sub", 0o755) == 0
    for path in ("/mnt/etc/passwd", "/mnt/secret", "/mnt/data/x"):
        write(p, path, b"text\n")
    assert p.call("mknod", "/mnt/etc/fifo", S_IFIFO | 0o644, 0) == 0
    apply_path_rules(root, p.kernel, DIFF_MASKED, DIFF_READONLY)  # type: ignore[arg-type]
    ours = p.run(ops)
    assert _essence(ours) == _essence(native)


# -- config.json: linux.maskedPaths / linux.readonlyPaths ----------------------------------------
def _config(tmp_path, **linux) -> str:
    from snakevisor.runtime.spec import default_spec
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = default_spec(["sh"])
    config["linux"].update(linux)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return str(tmp_path)


def test_spec_reads_the_path_lists(tmp_path) -> None:
    from snakevisor.runtime.spec import load
    spec = load(_config(tmp_path, maskedPaths=DOCKER_MASKED, readonlyPaths=DOCKER_READONLY))
    assert spec.masked_paths == DOCKER_MASKED and spec.readonly_paths == DOCKER_READONLY
    config = json.loads((tmp_path / "config.json").read_text())
    del config["linux"]["maskedPaths"], config["linux"]["readonlyPaths"]  # both optional
    (tmp_path / "config.json").write_text(json.dumps(config))
    spec = load(str(tmp_path))
    assert spec.masked_paths == [] and spec.readonly_paths == []


@pytest.mark.parametrize("linux, words", [
    ({"maskedPaths": "/proc/kcore"}, "linux.maskedPaths must be a list"),
    ({"maskedPaths": [1]}, "linux.maskedPaths must be a string"),
    ({"readonlyPaths": ["proc/sys"]}, "linux.readonlyPaths: 'proc/sys' must be an absolute path"),
    ({"readonlyPaths": None}, "linux.readonlyPaths must be a list"),
])
def test_spec_refuses_bad_path_lists(tmp_path, linux: dict, words: str) -> None:
    from snakevisor.runtime.spec import SpecError, load
    with pytest.raises(SpecError) as info:
        load(_config(tmp_path, **linux))
    assert str(info.value) == words


def test_read_only_root_leaves_files_of_other_mounts_writable() -> None:
    """readonlyPaths ["/"]: the tree is read-only, but a memfd (no mount of the tree: its
    path only looks like one) is still changed through its fd and through /proc/self/fd."""
    p, root = sandbox()
    apply_path_rules(root, p.kernel, [], ["/"])  # type: ignore[arg-type]
    assert mountinfo(p)["/"] == "/ / ro,relatime - rootfs rootfs rw"
    assert p.call("mkdir", "/x", 0o755) == -errno.EROFS
    assert p.call("openat", AT_FDCWD, "/etc/passwd", O_WRONLY, 0) == -errno.EROFS
    fd = p.call("memfd_create", "m", 0)
    assert fd >= 0 and p.call("fchmod", fd, 0o600) == 0
    assert p.call("openat", AT_FDCWD, f"/proc/self/fd/{fd}", O_RDWR, 0) >= 0
    assert p.call("openat", AT_FDCWD, "/dev/null", O_WRONLY, 0) >= 0  # another mount
