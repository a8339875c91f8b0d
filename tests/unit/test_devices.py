"""The /dev character devices through the real handlers, compared with the host's own.

Each device file is installed in a fake process's fd table and driven by read/write/pread/
lseek/fstat/ioctl/poll handlers; the same raw calls run natively (conftest.native_calls,
or directly in this process) on the host's /dev nodes, and results, errnos and stat fields
(all but st_dev, st_ino and the times) must be equal.  Random bytes are compared by length
and by not being all zero.
"""
from __future__ import annotations

import errno
import fcntl
import mmap
import os
import select
import struct
import subprocess
import termios
from typing import Any, Iterator

import pytest

from snakevisor.fsimpl import devices
from snakevisor.fsimpl.devices import (DEVICES, DeviceAttrs, DeviceFile, DeviceSpec, NullFile,
                                       RandomFile, TerminalAliasFile, URandomFile, ZeroFile,
                                       open_device, register_device, tty_factory)
from snakevisor.kernel.errors import SyscallError
from snakevisor.vfs.file import POLLIN, POLLOUT, File
from tests.unit.conftest import FakeProcess, In, Out, Ref, native_available, native_calls

AT_FDCWD = -100
O_RDONLY, O_WRONLY, O_RDWR = os.O_RDONLY, os.O_WRONLY, os.O_RDWR
O_NONBLOCK, O_PATH = os.O_NONBLOCK, os.O_PATH
F_GETFL, F_SETFL = 3, 4
SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA, SEEK_HOLE = 0, 1, 2, 3, 4
TCGETS, FIONREAD = 0x5401, 0x541B
RNDGETENTCNT, RNDADDTOENTCNT, RNDGETPOOL, RNDADDENTROPY = 0x80045200, 0x40045201, 0x80085202, 0x40085203
RNDZAPENTCNT, RNDCLEARPOOL, RNDRESEEDCRNG = 0x5204, 0x5206, 0x5207
_STAT = struct.Struct("<3Q3I4xQ3q6q24x")
#: every poll bit a device could report
ALL_EVENTS = 0x1 | 0x2 | 0x4 | 0x40 | 0x80 | 0x100 | 0x200 | 0x2000
MEM_DEVICES = ["null", "zero", "full", "random", "urandom"]
RANDOM_DEVICES = {"random", "urandom"}


class _Fd:
    """Placeholder for the device's fd in an op list (Ref(0) natively, the installed fd in
    the sandbox)."""


FD = _Fd()


def sandbox(name: str, flags: int, attrs: DeviceAttrs | None = None) -> tuple[FakeProcess, int]:
    p = FakeProcess(None)
    spec = DEVICES[name]
    file = open_device(spec.major, spec.minor, flags, attrs or DeviceAttrs(), p.task,
                       f"/dev/{name}")
    return p, p.tg.fds.install(file)


def run_both(name: str, flags: int, ops: list[tuple]) -> tuple[list[list], list[list]]:
    """(sandbox results, native results) of ops on /dev/name opened with flags."""
    p, fd = sandbox(name, flags)
    ours = p.run([tuple(fd if a is FD else a for a in op) for op in ops])
    native_ops = [("openat", AT_FDCWD, f"/dev/{name}", flags, 0)]
    native_ops += [tuple(Ref(0) if a is FD else a for a in op) for op in ops]
    theirs = native_calls("/", native_ops, readonly=False)
    assert theirs[0][0] >= 0, theirs[0]
    return ours, theirs[1:]


def blur_random(results: list[list]) -> list[list]:
    """Random output buffers compared by whether they hold anything."""
    return [[r[0]] + [any(b) for b in r[1:]] for r in results]


def data_ops() -> list[tuple]:
    return [
        ("read", FD, Out(16), 16),
        ("read", FD, Out(16), 0),
        ("lseek", FD, 0, SEEK_CUR),
        ("pread64", FD, Out(16), 16, 1000),
        ("pread64", FD, Out(16), 16, -1),
        ("write", FD, In(b"x" * 10), 10),
        ("write", FD, In(b""), 0),
        ("pwrite64", FD, In(b"y" * 5), 5, 77),
        ("lseek", FD, 0, SEEK_CUR),
        ("lseek", FD, 123, SEEK_SET),
        ("lseek", FD, -5, SEEK_CUR),
        ("lseek", FD, 0, SEEK_END),
        ("lseek", FD, 0, SEEK_DATA),
        ("lseek", FD, 0, SEEK_HOLE),
        ("lseek", FD, 0, 5),
        ("lseek", FD, -1, SEEK_SET),
        ("ioctl", FD, TCGETS, Out(64)),
        ("ioctl", FD, FIONREAD, Out(4)),
        ("ioctl", FD, RNDGETPOOL, Out(8)),
        ("fsync", FD),
        ("ftruncate", FD, 0),
        ("fcntl", FD, F_GETFL, 0),
    ]


@pytest.mark.parametrize("name", MEM_DEVICES)
def test_data_calls_match_native(name: str) -> None:
    ours, theirs = run_both(name, O_RDWR, data_ops())
    if name in RANDOM_DEVICES:
        ours, theirs = blur_random(ours), blur_random(theirs)
    assert ours == theirs
    # and what they are, spelled out for one device of each kind
    if name == "zero":
        assert ours[0] == [16, bytes(16)] and ours[5][0] == 10 and ours[9][0] == 0
    if name == "full":
        assert ours[5][0] == -errno.ENOSPC and ours[6][0] == -errno.ENOSPC
    if name == "random":
        assert ours[0] == [16, True] and ours[16][0] == -errno.EINVAL


@pytest.mark.parametrize("name", MEM_DEVICES)
@pytest.mark.parametrize("flags", [O_RDONLY, O_WRONLY, O_RDONLY | os.O_CREAT | os.O_TRUNC | os.O_NOCTTY,
                                   O_WRONLY | O_NONBLOCK | os.O_APPEND])
def test_access_modes_and_status_flags_match_native(name: str, flags: int) -> None:
    ops = [("read", FD, Out(8), 8), ("pread64", FD, Out(8), 8, 0), ("write", FD, In(b"abc"), 3),
           ("pwrite64", FD, In(b"abc"), 3, 0), ("write", FD, In(b""), 0),
           ("fcntl", FD, F_GETFL, 0), ("fcntl", FD, F_SETFL, O_NONBLOCK),
           ("fcntl", FD, F_GETFL, 0), ("read", FD, Out(8), 8)]
    ours, theirs = run_both(name, flags, ops)
    if name in RANDOM_DEVICES:
        ours, theirs = blur_random(ours), blur_random(theirs)
    assert ours == theirs


@pytest.mark.parametrize("name", list(DEVICES))
def test_fstat_matches_the_host_node(name: str) -> None:
    """Mode, rdev, size, blksize, blocks, nlink and owner as the host's node (root's)."""
    host = os.stat(f"/dev/{name}")
    p = FakeProcess(None)
    spec = DEVICES[name]
    attrs = DeviceAttrs(mode=spec.mode, uid=host.st_uid, gid=host.st_gid, ino=77,
                        dev=os.makedev(0, 5), mtime_ns=1_500_000_000_123)
    fd = p.tg.fds.install(DeviceFile(O_PATH, attrs, f"/dev/{name}", spec.rdev))
    if name not in ("tty", "console"):
        fd = p.tg.fds.install(open_device(spec.major, spec.minor, O_RDONLY, attrs, p.task))
    ret, raw = p.run([("fstat", fd, Out(_STAT.size))])[0]
    assert ret == 0
    (dev, ino, nlink, mode, uid, gid, rdev, size, blksize, blocks,
     _as, _ans, m_s, m_ns, _cs, _cns) = _STAT.unpack(raw)
    assert (mode, rdev, size, blksize, blocks, nlink, uid, gid) == (
        host.st_mode, host.st_rdev, host.st_size, host.st_blksize, host.st_blocks,
        host.st_nlink, host.st_uid, host.st_gid)
    assert (dev, ino, m_s, m_ns) == (os.makedev(0, 5), 77, 1500, 123)


def test_fstat_follows_the_node_attributes() -> None:
    """A chmod/chown of the node after the open shows in fstat, as the inode is shared."""
    attrs = DeviceAttrs()
    p, fd = sandbox("null", O_RDWR, attrs)
    attrs.mode = 0o20600
    attrs.uid = 1000
    ret, raw = p.run([("fstat", fd, Out(_STAT.size))])[0]
    fields = _STAT.unpack(raw)
    assert ret == 0 and fields[3] == 0o20600 and fields[4] == 1000


def _native_poll(name: str, flags: int) -> tuple[int, bool]:
    fd = os.open(f"/dev/{name}", flags)
    try:
        poller = select.poll()
        poller.register(fd, ALL_EVENTS)
        revents = poller.poll(0)[0][1]
        ep = select.epoll()
        try:
            ep.register(fd, select.EPOLLIN)
            epollable = True
        except OSError as e:
            assert e.errno == errno.EPERM
            epollable = False
        finally:
            ep.close()
        return revents, epollable
    finally:
        os.close(fd)


@pytest.mark.parametrize("name", MEM_DEVICES)
@pytest.mark.parametrize("flags", [O_RDWR, O_WRONLY])
def test_poll_matches_native(name: str, flags: int) -> None:
    p, fd = sandbox(name, flags)
    pfd = p.put(struct.pack("<ihh", fd, ALL_EVENTS, 0))
    assert p.call("poll", pfd, 1, 0) == 1
    revents = struct.unpack("<ihh", p.get(pfd, 8))[2] & 0xFFFF
    file = p.tg.fds.files[fd]
    assert (revents, file.can_poll) == _native_poll(name, flags)


def test_random_devices_never_block_and_give_fresh_bytes() -> None:
    for name in ("random", "urandom"):
        p, fd = sandbox(name, O_RDONLY | O_NONBLOCK)
        size = 3 << 20  # past the handler's 1 MiB chunks
        buf = p.alloc(size)
        assert p.call("read", fd, buf, size) == size
        data = p.get(buf, size)
        assert data.count(0) < size // 128  # about 1/256 of the bytes are zero
        assert p.get(buf, 64) != p.get(buf + 64, 64)


def test_zero_large_read_and_readv() -> None:
    p, fd = sandbox("zero", O_RDONLY)
    size = 3 << 20
    buf = p.alloc(size)
    p.host.write(buf, b"\xff" * size)
    assert p.call("read", fd, buf, size) == size
    assert p.get(buf, size) == bytes(size)
    a, b = p.alloc(5), p.alloc(7)
    p.host.write(a, b"\xff" * 5)
    p.host.write(b, b"\xff" * 7)
    iov = p.put(struct.pack("<QQQQ", a, 5, b, 7))
    assert p.call("readv", fd, iov, 2) == 12
    assert p.get(a, 5) + p.get(b, 7) == bytes(12)


def test_null_write_counts_without_keeping_anything() -> None:
    p, fd = sandbox("null", O_WRONLY)
    size = 3 << 20
    assert p.call("write", fd, p.alloc(size), size) == size
    a = p.put(b"abc")
    iov = p.put(struct.pack("<QQQQ", a, 3, a, 3))
    assert p.call("writev", fd, iov, 2) == 6


def test_null_write_never_touches_the_buffer() -> None:
    p, fd = sandbox("null", O_WRONLY)
    native = native_calls("/", [("openat", AT_FDCWD, "/dev/null", O_WRONLY, 0),
                                ("write", Ref(0), 0, 10)], readonly=False)
    assert native[1][0] == 10
    assert p.call("write", fd, 0, 10) == 10


def test_full_empty_writev_is_zero() -> None:
    ours, theirs = run_both("full", O_WRONLY, [("writev", FD, In(struct.pack("<QQ", 0, 0)), 1)])
    assert theirs == [[0]]
    assert ours == theirs


# -- random(4) ioctls --------------------------------------------------------------------
def rnd_ops() -> list[tuple]:
    return [
        ("ioctl", FD, RNDGETENTCNT, Out(4)),
        ("ioctl", FD, RNDGETENTCNT, 0),
        ("ioctl", FD, RNDZAPENTCNT, 0),
        ("ioctl", FD, RNDCLEARPOOL, 0),
        ("ioctl", FD, RNDADDTOENTCNT, In(struct.pack("<i", -1))),
        ("ioctl", FD, RNDADDTOENTCNT, 0),
        ("ioctl", FD, RNDADDENTROPY, In(struct.pack("<ii", -1, 0))),
        ("ioctl", FD, RNDADDENTROPY, 0),
        ("ioctl", FD, RNDADDENTROPY, In(struct.pack("<ii", 0, -1))),
        ("ioctl", FD, 0x5208, 0),
    ]


@pytest.mark.parametrize("name", ["random", "urandom"])
def test_random_ioctls_as_root_match_native(name: str) -> None:
    """Only requests that change nothing on the host are made natively (no crediting, no
    mixing, no reseed)."""
    if os.geteuid() != 0:
        pytest.skip("needs root natively")
    ours, theirs = run_both(name, O_RDONLY, rnd_ops())
    assert ours == theirs
    assert ours[0] == [0, struct.pack("<i", 256)]


_UNPRIVILEGED = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
fd = os.open(sys.argv[1], os.O_RDONLY)
buf = ctypes.create_string_buffer(16)
out = []
for req in [int(a) for a in sys.argv[2:]]:
    r = libc.ioctl(fd, ctypes.c_ulong(req), buf)
    out.append(r if r != -1 else -ctypes.get_errno())
print(" ".join(map(str, out)))
"""


def test_random_ioctls_without_cap_sys_admin_match_native() -> None:
    if not native_available():
        pytest.skip("needs root to run the native side as nobody")
    reqs = [RNDGETENTCNT, RNDZAPENTCNT, RNDCLEARPOOL, RNDADDTOENTCNT, RNDADDENTROPY,
            RNDRESEEDCRNG, RNDGETPOOL, TCGETS]
    native = subprocess.run(["/usr/bin/python3", "-c", _UNPRIVILEGED, "/dev/urandom",
                             *map(str, reqs)], user=65534, group=65534, capture_output=True,
                            text=True, timeout=30, check=True)
    p, fd = sandbox("urandom", O_RDONLY)
    p.tg.creds.ruid = p.tg.creds.euid = p.tg.creds.suid = p.tg.creds.fsuid = 1000
    buf = p.alloc(16)
    ours = [p.call("ioctl", fd, req, buf) for req in reqs]
    assert ours == [int(x) for x in native.stdout.split()]
    assert ours[1:6] == [-errno.EPERM] * 5


def test_random_ioctls_validate_like_linux_for_root() -> None:
    """RNDADDENTROPY reads the whole buffer (EFAULT when it runs off the mapped memory);
    RNDRESEEDCRNG succeeds: no native side (both would change the host's pool)."""
    p, fd = sandbox("random", O_RDONLY)
    head = p.put(struct.pack("<ii", 8, 16) + bytes(16))
    assert p.call("ioctl", fd, RNDADDENTROPY, head) == 0
    assert p.call("ioctl", fd, RNDADDENTROPY, p.put(struct.pack("<ii", 8, 64 << 20))) == -errno.EFAULT
    assert p.call("ioctl", fd, RNDRESEEDCRNG, 0) == 0
    assert p.call("ioctl", fd, RNDADDTOENTCNT, p.put(struct.pack("<i", 8))) == 0


# -- mmap --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MEM_DEVICES)
def test_mmap_support_matches_native(name: str) -> None:
    fd = os.open(f"/dev/{name}", O_RDWR)
    try:
        mmap.mmap(fd, 4096, mmap.MAP_PRIVATE).close()
        native = 0
    except OSError as e:
        native = e.errno
    finally:
        os.close(fd)
    p, sfd = sandbox(name, O_RDWR)
    file = p.tg.fds.files[sfd]
    try:
        host = file.mmap_fd()
        ours = 0
    except SyscallError as e:
        ours = e.errno
    assert ours == native
    assert getattr(file, "mmap_anonymous", False) == (name == "zero")
    if name == "zero":
        assert os.fstat(host).st_rdev == os.makedev(1, 5)


# -- the registry ------------------------------------------------------------------------
def test_registry_numbers_and_modes_are_linux_s() -> None:
    want = {"null": (1, 3, 0o666), "zero": (1, 5, 0o666), "full": (1, 7, 0o666),
            "random": (1, 8, 0o666), "urandom": (1, 9, 0o666), "tty": (5, 0, 0o666),
            "console": (5, 1, 0o600)}
    got = {n: (s.major, s.minor, s.mode & 0o7777) for n, s in DEVICES.items()}
    assert got == want
    assert all(s.mode & 0o170000 == 0o020000 for s in DEVICES.values())
    for name, spec in DEVICES.items():  # the host agrees (mode bits too)
        assert os.stat(f"/dev/{name}").st_rdev == spec.rdev
        assert os.stat(f"/dev/{name}").st_mode == spec.mode


def test_mknod_numbers_open_like_native(tmp_path: Any) -> None:
    """A node made anywhere opens by its number: 1:3 is a null; unclaimed numbers, an
    unknown minor of the memory major included, are ENXIO."""
    numbers = [(1, 3), (1, 99), (240, 7)]
    native = []
    for i, (major, minor) in enumerate(numbers):
        node = tmp_path / f"n{i}"
        try:
            os.mknod(node, 0o20666, os.makedev(major, minor))
        except PermissionError:
            pytest.skip("mknod needs CAP_MKNOD")
        try:
            fd = os.open(node, O_RDWR)
            native.append(os.write(fd, b"abc"))
            os.close(fd)
        except OSError as e:
            native.append(-e.errno)
    p = FakeProcess(None)
    ours = []
    for major, minor in numbers:
        try:
            file = open_device(major, minor, O_RDWR, DeviceAttrs(), p.task)
            ours.append(p.call("write", p.tg.fds.install(file), In(b"abc"), 3))
            assert isinstance(file, NullFile)
        except SyscallError as e:
            ours.append(-e.errno)
    assert ours == native == [3, -errno.ENXIO, -errno.ENXIO]


def test_open_flags_are_stored_as_f_getfl_reports_them() -> None:
    p = FakeProcess(None)
    file = open_device(1, 8, O_RDWR | os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_CLOEXEC,
                       DeviceAttrs(), p.task, "/dev/random")
    assert isinstance(file, RandomFile) and not isinstance(file, ZeroFile)
    assert file.flags == O_RDWR | 0o100000 and file.path == "/dev/random"
    assert type(open_device(1, 9, O_RDONLY, DeviceAttrs(), p.task)) is URandomFile


def test_path_only_open_needs_no_driver() -> None:
    """O_PATH on /dev/tty works without a controlling terminal (as natively, below), and on
    an unclaimed number; such an fd reads, writes and seeks as EBADF."""
    p = FakeProcess(None)
    for major, minor in ((5, 0), (240, 7)):
        fd = p.tg.fds.install(open_device(major, minor, O_PATH, DeviceAttrs(), p.task))
        assert [p.call("read", fd, Out(4), 4), p.call("write", fd, In(b"x"), 1),
                p.call("lseek", fd, 0, SEEK_CUR), p.call("ioctl", fd, TCGETS, Out(64))] == \
            [-errno.EBADF] * 4


# -- terminals ---------------------------------------------------------------------------
_NO_CTTY = r"""
import os
os.setsid()
for flags in (os.O_RDWR, os.O_PATH):
    try:
        os.close(os.open("/dev/tty", flags))
        print(0)
    except OSError as e:
        print(-e.errno)
"""

_WITH_CTTY = r"""
import fcntl, os, termios
os.setsid()
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
fd = os.open("/dev/tty", os.O_RDWR)
st = os.fstat(fd)
fcntl.fcntl(fd, fcntl.F_SETFL, os.O_NONBLOCK)
print(st.st_mode, st.st_rdev, fcntl.fcntl(slave, fcntl.F_GETFL) & os.O_NONBLOCK)
"""


def test_tty_without_controlling_terminal_is_enxio_like_native() -> None:
    native = subprocess.run(["/usr/bin/python3", "-c", _NO_CTTY], capture_output=True,
                            text=True, timeout=30, check=True).stdout.split()
    p = FakeProcess(None)
    ours = []
    for flags in (O_RDWR, O_PATH):
        try:
            open_device(5, 0, flags, DeviceAttrs(), p.task)
            ours.append(0)
        except SyscallError as e:
            ours.append(-e.errno)
    assert ours == [int(x) for x in native] == [-errno.ENXIO, 0]


def test_console_without_console_is_enodev() -> None:
    """Linux's tty_lookup_driver answers ENODEV when no console driver is registered (the
    host has one, so there is nothing to compare with natively)."""
    p = FakeProcess(None)
    with pytest.raises(SyscallError) as info:
        open_device(5, 1, O_RDWR, DeviceAttrs(mode=0o20600), p.task)
    assert info.value.errno == errno.ENODEV


class FakeTerminal(File):
    """A terminal as the terminal layer would open it: records what reaches it."""

    def __init__(self, flags: int) -> None:
        super().__init__(flags, "/dev/pts/0")
        self.written = b""
        self.ioctls: list[int] = []
        self.released = False

    def read(self, task: Any, count: int) -> bytes:
        return b"typed\n"[:count]

    def write(self, task: Any, data: bytes) -> int:
        self.written += data
        return len(data)

    def ioctl(self, task: Any, request: int, arg: int) -> int:
        self.ioctls.append(request)
        return 0

    def poll_events(self) -> int:
        return POLLOUT

    def stat(self) -> os.stat_result:
        raise AssertionError("fstat must show the /dev/tty node, not the terminal")

    def release(self) -> None:
        self.released = True


@pytest.fixture
def terminal() -> Iterator[list[FakeTerminal]]:
    """/dev/tty re-registered with a resolver handing out FakeTerminals; restored after."""
    opened: list[FakeTerminal] = []

    def resolve(task: Any, flags: int) -> FakeTerminal:
        opened.append(FakeTerminal(flags))
        return opened[-1]

    old = DEVICES["tty"]
    register_device(DeviceSpec("tty", 5, 0, old.mode, tty_factory(resolve)))
    try:
        yield opened
    finally:
        register_device(old)
    assert devices.lookup_device(5, 0) is old


def test_tty_is_the_controlling_terminal_seen_through_5_0(terminal: list[FakeTerminal]) -> None:
    native = subprocess.run(["/usr/bin/python3", "-c", _WITH_CTTY], capture_output=True,
                            text=True, timeout=30, check=True).stdout.split()
    native_mode, native_rdev, slave_nonblock = map(int, native)
    p = FakeProcess(None)
    attrs = DeviceAttrs(mode=DEVICES["tty"].mode)
    fd = p.tg.fds.install(open_device(5, 0, O_RDWR, attrs, p.task, "/dev/tty"))
    fd2 = p.tg.fds.install(open_device(5, 0, O_RDWR, attrs, p.task, "/dev/tty"))
    file = p.tg.fds.files[fd]
    assert isinstance(file, TerminalAliasFile) and file.path == "/dev/tty"
    assert terminal[0].flags == terminal[1].flags == O_RDWR | 0o100000
    ret, raw = p.run([("fstat", fd, Out(_STAT.size))])[0]
    fields = _STAT.unpack(raw)
    assert (ret, fields[3], fields[6]) == (0, native_mode, native_rdev)
    assert p.call("write", fd, In(b"hello"), 5) == 5 and terminal[0].written == b"hello"
    buf = p.alloc(16)
    assert p.call("read", fd, buf, 16) == 6 and p.get(buf, 6) == b"typed\n"
    assert p.call("ioctl", fd, TCGETS, Out(64)) == 0 and terminal[0].ioctls == [TCGETS]
    assert p.call("lseek", fd, 0, SEEK_CUR) == -errno.ESPIPE  # the terminal's answer
    # F_SETFL reaches this open's terminal only (natively the other descriptions keep theirs)
    assert p.call("fcntl", fd, F_SETFL, O_NONBLOCK) == 0
    assert terminal[0].flags & O_NONBLOCK and not terminal[1].flags & O_NONBLOCK
    assert slave_nonblock == 0
    assert p.call("fcntl", fd, F_GETFL, 0) & O_NONBLOCK
    pfd = p.put(struct.pack("<ihh", fd, POLLIN | POLLOUT, 0))
    assert p.call("poll", pfd, 1, 0) == 1
    assert struct.unpack("<ihh", p.get(pfd, 8))[2] == POLLOUT
    p.call("close", fd)
    assert terminal[0].released and not terminal[1].released
    p.call("close", fd2)


def test_console_factory_shows_5_1() -> None:
    p = FakeProcess(None)
    inner = FakeTerminal(O_RDWR)
    file = devices.console_factory(lambda task, flags: inner)(O_RDWR, DeviceAttrs(mode=0o20600),
                                                              p.task)
    assert file.stat().st_rdev == os.makedev(5, 1) and file.stat().st_mode == 0o20600


def test_host_tty_numbers() -> None:
    """The host's tty and console nodes carry the numbers our terminal aliases report."""
    assert os.stat("/dev/tty").st_rdev == os.makedev(5, 0)
    assert os.stat("/dev/console").st_rdev == os.makedev(5, 1)
    # and isatty() on a memory device fails like the host's (ENOTTY from null, EINVAL random)
    for name, err in (("null", errno.ENOTTY), ("urandom", errno.EINVAL)):
        fd = os.open(f"/dev/{name}", O_RDONLY)
        with pytest.raises(OSError) as info:
            fcntl.ioctl(fd, termios.TCGETS, bytes(64))
        os.close(fd)
        assert info.value.errno == err

