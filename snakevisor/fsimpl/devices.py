"""The character devices of the sandbox's /dev: null, zero, full, random, urandom, tty, console.

Why a registry keyed by (major, minor): Linux opens a device node by its number, not by its
name, so a node the application mknod's anywhere (1:3 in /tmp) must behave like /dev/null,
and a number nobody registered fails with ENXIO at open.  The devfs builds /dev from
DEVICES and every device-node open — devfs, tmpfs, overlay — goes through open_device.

Each file follows Linux's drivers/char/mem.c, drivers/char/random.c and drivers/tty/tty_io.c
(checked against the host's devices by tests/unit/test_devices.py):

- null: reads are EOF, writes swallow everything; zero: reads zeros, writes swallow; full:
  reads zeros, writes ENOSPC (even of 0 bytes).  Their lseek always answers 0 whatever the
  offset (null_lseek: `fopen("/dev/null", "a")` must work), pread/pwrite act like
  read/write, no ioctl of their own (ENOTTY), no ->poll (always ready; epoll refuses them).
- random, urandom: our pool is the host's (os.urandom = getrandom(2)), which is always
  initialised by the time a sandbox runs, so neither ever blocks and O_NONBLOCK changes
  nothing.  Writes are accepted and dropped: Linux would mix them into its pool, which
  adds no entropy credit and which we do not have.  lseek is noop_llseek: the offset
  never moves, so it is 0.  /dev/random has a ->poll (readable, never writable, as Linux
  answers once the pool is ready); /dev/urandom has none.
- tty, console: the controlling terminal of the caller / the sandbox's console, opened
  anew (own status flags), reported by fstat as the /dev/tty (5:0) or /dev/console (5:1)
  node as Linux does.  Who they are is the terminal layer's business: /dev/tty is the
  session's controlling terminal as vfs/tty.py knows it (a devpts slave a session leader
  acquired); other layers may register resolvers with tty_factory/console_factory.  No
  controlling terminal: ENXIO (the CLI's own terminal is not one: the sandbox starts in a
  session without one, as a container without a terminal); no console: ENODEV (Linux
  without a console driver).

Times, owners and permissions belong to the node (DeviceAttrs, shared with the devfs inode
so a later chmod shows in fstat of an open fd).
"""
from __future__ import annotations

import os
import stat as st_
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from snakevisor.fsimpl.hostfs import open_file_flags
from snakevisor.kernel.errors import (EBADF, EFAULT, EINVAL, ENODEV, ENOSPC, ENOSYS, ENXIO,
                                      EPERM, SyscallError)
from snakevisor.mm.address_space import PROT_READ
from snakevisor.vfs.file import POLLIN, POLLRDNORM, File

if TYPE_CHECKING:
    from snakevisor.kernel.errors import WaitQueue
    from snakevisor.kernel.task import Task

S_IFCHR = st_.S_IFCHR
BLKSIZE = 4096  #: devtmpfs's block size (PAGE_SIZE), what stat(2) shows on every node
SEEK_MAX = 4  #: SEEK_HOLE; a larger whence is EINVAL before the device is asked
MAX_RW_COUNT = 0x7FFFF000
#: what random.c reports once its input pool is ready (POOL_READY_BITS), the host's figure
ENTROPY_BITS = 256

# random(4) ioctls: _IOR('R', 0, int), _IOW('R', 1, int), _IOW('R', 3, int[2]), _IO('R', 4..7)
RNDGETENTCNT, RNDADDTOENTCNT, RNDADDENTROPY = 0x80045200, 0x40045201, 0x40085203
RNDZAPENTCNT, RNDCLEARPOOL, RNDRESEEDCRNG = 0x5204, 0x5206, 0x5207

MEM_MAJOR, TTYAUX_MAJOR = 1, 5


@dataclass
class DeviceAttrs:
    """The metadata of a device node, owned by the file system that holds the node.

    Open files keep a reference and read it at every fstat, so the devfs may hand in its
    inode's own record (any object with these attributes) and update it in place.
    """

    mode: int = S_IFCHR | 0o666  #: st_mode: S_IFCHR and the permission bits
    uid: int = 0
    gid: int = 0
    ino: int = 0
    dev: int = 0  #: st_dev of the file system holding the node
    nlink: int = 1
    atime_ns: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    #: fstatfs(2) of the holding file system (its struct statfs), when it has one
    statfs: Callable[[], bytes] | None = None


class DeviceFile(File):
    """An open device node: stat from the node's attributes, access-mode checks.

    Used bare for O_PATH opens, which Linux serves without calling the driver (so an
    O_PATH open of /dev/tty succeeds without a controlling terminal, and of an unknown
    number too).
    """

    MAJOR = 0
    MINOR = 0
    #: whether the file has a ->poll of its own; Linux's epoll_ctl answers EPERM without
    #: one (file_can_poll), while poll/select see it as always ready
    can_poll = False

    def __init__(self, flags: int, attrs: DeviceAttrs, path: str = "",
                 rdev: int | None = None) -> None:
        super().__init__(flags, path)
        self.attrs = attrs
        self.rdev = os.makedev(self.MAJOR, self.MINOR) if rdev is None else rdev

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({os.major(self.rdev)}:{os.minor(self.rdev)}, "
                f"path={self.path!r}, flags={self.flags:#o})")

    # -- access checks (vfs_read / vfs_write) --------------------------------------------
    def _check_readable(self) -> None:
        if not self.readable:
            raise SyscallError(EBADF)

    def _check_writable(self) -> None:
        if not self.writable:
            raise SyscallError(EBADF)

    def read(self, task: "Task", count: int) -> bytes:
        self._check_readable()
        return super().read(task, count)

    def write(self, task: "Task", data: bytes) -> int:
        self._check_writable()
        return super().write(task, data)

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        self._check_readable()
        return super().pread(task, count, offset)

    def pwrite(self, task: "Task", data: bytes, offset: int) -> int:
        self._check_writable()
        return super().pwrite(task, data, offset)

    # -- metadata ------------------------------------------------------------------------
    def stat(self) -> os.stat_result:
        a = self.attrs
        ns = 1_000_000_000
        return os.stat_result(
            (a.mode, a.ino, a.dev, a.nlink, a.uid, a.gid, 0,
             a.atime_ns // ns, a.mtime_ns // ns, a.ctime_ns // ns),
            {"st_atime_ns": a.atime_ns, "st_mtime_ns": a.mtime_ns, "st_ctime_ns": a.ctime_ns,
             "st_blksize": BLKSIZE, "st_blocks": 0, "st_rdev": self.rdev})

    def statfs(self) -> bytes:
        if self.attrs.statfs is None:
            raise SyscallError(ENOSYS)
        return self.attrs.statfs()

    def lseek(self, offset: int, whence: int) -> int:
        """A path-only fd has no file to seek (EBADF); the rest override."""
        if self.is_path_only:
            raise SyscallError(EBADF)
        return super().lseek(offset, whence)


class _MemDevice(DeviceFile):
    """What null, zero, full, random and urandom share: no position, pread = read."""

    MAJOR = MEM_MAJOR

    def lseek(self, offset: int, whence: int) -> int:
        """null_lseek and noop_llseek: the position is always 0 and stays there."""
        if self.is_path_only:
            raise SyscallError(EBADF)
        if whence > SEEK_MAX:
            raise SyscallError(EINVAL)
        return 0

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        return self.read(task, count)

    def pwrite(self, task: "Task", data: bytes, offset: int) -> int:
        return self.write(task, data)

    def fsync(self) -> None:
        raise SyscallError(EINVAL)  # no ->fsync, as on Linux


class NullFile(_MemDevice):
    """/dev/null (1:3): reads are at EOF, writes vanish."""

    MINOR = 3
    #: write_null never reads the caller's buffer (write(fd, NULL, 10) is 10 on Linux); a
    #: handler may skip copying it in once vfs_write's checks have passed
    discards_writes = True

    def read(self, task: "Task", count: int) -> bytes:
        self._check_readable()
        return b""

    def write(self, task: "Task", data: bytes) -> int:
        self._check_writable()
        return len(data)


class ZeroFile(_MemDevice):
    """/dev/zero (1:5): reads zeros, writes vanish, maps as anonymous memory.

    mmap_zero on Linux turns a MAP_PRIVATE mapping into plain anonymous memory and a
    MAP_SHARED one into shared anonymous memory (shmem); the file only names the VMA.
    The mm layer should test `mmap_anonymous` and map accordingly.  Until it does,
    mmap_fd() hands it the host's own /dev/zero, whose mmap the host kernel turns into
    exactly that memory.
    """

    MINOR = 5
    mmap_anonymous = True
    discards_writes = True  #: as NullFile

    def read(self, task: "Task", count: int) -> bytes:
        self._check_readable()
        return bytes(count)

    def write(self, task: "Task", data: bytes) -> int:
        self._check_writable()
        return len(data)

    def mmap_fd(self) -> int:
        return host_zero_fd()


class FullFile(_MemDevice):
    """/dev/full (1:7): reads zeros, every write (even of nothing) is ENOSPC, no mmap."""

    MINOR = 7

    def read(self, task: "Task", count: int) -> bytes:
        self._check_readable()
        return bytes(count)

    def write(self, task: "Task", data: bytes) -> int:
        self._check_writable()
        raise SyscallError(ENOSPC)


class URandomFile(_MemDevice):
    """/dev/urandom (1:9): the host's getrandom(2) output, never blocking."""

    MINOR = 9

    def read(self, task: "Task", count: int) -> bytes:
        self._check_readable()
        return os.urandom(count)

    def write(self, task: "Task", data: bytes) -> int:
        """Linux mixes written bytes into its input pool without crediting entropy; we
        have no pool of our own, so they are accepted and dropped (same visible result)."""
        self._check_writable()
        return len(data)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        """random_ioctl: the entropy count reads 256 (a ready pool); the changing requests
        need CAP_SYS_ADMIN, validate their arguments as Linux does, and change nothing;
        anything else is EINVAL (not ENOTTY: random.c answers every request itself)."""
        mm = task.tg.mm
        if request == RNDGETENTCNT:
            mm.write(arg, struct.pack("<i", ENTROPY_BITS))
            return 0
        if request not in (RNDADDTOENTCNT, RNDADDENTROPY, RNDZAPENTCNT, RNDCLEARPOOL,
                           RNDRESEEDCRNG):
            raise SyscallError(EINVAL)
        from snakevisor.syscalls.sys_cred import CAP_SYS_ADMIN, has_cap  # (imports us)
        if not has_cap(task, CAP_SYS_ADMIN):
            raise SyscallError(EPERM)
        if request == RNDADDTOENTCNT:
            if struct.unpack("<i", mm.read(arg, 4))[0] < 0:
                raise SyscallError(EINVAL)
        elif request == RNDADDENTROPY:
            if struct.unpack("<i", mm.read(arg, 4))[0] < 0:  # the bits to credit
                raise SyscallError(EINVAL)
            length = struct.unpack("<i", mm.read(arg + 4, 4))[0]
            # the buffer must be readable in full (write_pool_user must take all of it)
            if length < 0 or length > MAX_RW_COUNT or \
                    mm.accessible(arg + 8, length, PROT_READ) < length:
                raise SyscallError(EFAULT)
        return 0


class RandomFile(URandomFile):
    """/dev/random (1:8): since Linux 5.6 the same bytes as urandom once the pool is ready
    (always, for us); differs only by having a ->poll: readable, never writable."""

    MINOR = 8
    can_poll = True

    def poll_events(self) -> int:
        return POLLIN | POLLRDNORM


# -- terminals -------------------------------------------------------------------------
#: (task, status flags) -> a new open file description of the terminal, or None when there
#: is none.  The resolver must not make the terminal the caller's controlling terminal
#: (opening /dev/tty or /dev/console never does).
TerminalResolver = Callable[["Task", int], "File | None"]


class TerminalAliasFile(DeviceFile):
    """/dev/tty or /dev/console: an open of another terminal, seen through this node.

    Linux gives the open file the real terminal's operations but keeps the node's inode,
    so everything is the terminal's except fstat/fstatfs (5:0 or 5:1, the node's owner and
    mode) and the path.  The status flags are the inner file's, so F_SETFL here changes
    only this open (the resolver opened the terminal anew).
    """

    MAJOR = TTYAUX_MAJOR

    def __init__(self, inner: File, attrs: DeviceAttrs, minor: int, path: str = "") -> None:
        self.inner = inner
        super().__init__(inner.flags, attrs, path, os.makedev(TTYAUX_MAJOR, minor))
        self.can_poll = getattr(inner, "can_poll", True)

    @property  # type: ignore[override]
    def flags(self) -> int:
        return self.inner.flags

    @flags.setter
    def flags(self, value: int) -> None:
        self.inner.flags = value

    def read(self, task: "Task", count: int) -> bytes:
        return self.inner.read(task, count)

    def write(self, task: "Task", data: bytes) -> int:
        return self.inner.write(task, data)

    def pread(self, task: "Task", count: int, offset: int) -> bytes:
        return self.inner.pread(task, count, offset)

    def pwrite(self, task: "Task", data: bytes, offset: int) -> int:
        return self.inner.pwrite(task, data, offset)

    def lseek(self, offset: int, whence: int) -> int:
        return self.inner.lseek(offset, whence)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        return self.inner.ioctl(task, request, arg)

    def fsync(self) -> None:
        self.inner.fsync()

    def truncate(self, length: int) -> None:
        self.inner.truncate(length)

    def set_status_flags(self, flags: int) -> None:
        self.inner.set_status_flags(flags)

    def fcntl_pipe_size(self, task: "Task", cmd: int, arg: int) -> int:
        return self.inner.fcntl_pipe_size(task, cmd, arg)

    def mmap_fd(self) -> int:
        return self.inner.mmap_fd()

    def poll_events(self) -> int:
        return self.inner.poll_events()

    def poll_queue(self) -> "WaitQueue | None":
        return self.inner.poll_queue()

    def poll_host(self) -> tuple[int, int] | None:
        return self.inner.poll_host()

    def readiness(self) -> tuple[int, int] | None:
        return self.inner.readiness()

    def release(self) -> None:
        self.inner.release()


def _no_terminal(task: "Task", flags: int) -> "File | None":
    return None


def _controlling_terminal(task: "Task", flags: int) -> "File | None":
    """tty_open_current_tty: the caller's controlling terminal, opened anew."""
    from snakevisor.vfs.tty import controlling_terminal
    term = controlling_terminal(task.tg)
    if term is None or term.reopen_fn is None:
        return None
    return term.reopen_fn(task, flags)


#: (status flags, node attributes, opening task) -> the open file
DeviceFactory = Callable[[int, DeviceAttrs, "Task"], File]


def tty_factory(resolve: TerminalResolver) -> DeviceFactory:
    """/dev/tty's open: the caller's controlling terminal, ENXIO without one."""
    def open_tty(flags: int, attrs: DeviceAttrs, task: "Task") -> File:
        inner = resolve(task, flags)
        if inner is None:
            raise SyscallError(ENXIO)
        return TerminalAliasFile(inner, attrs, 0)
    return open_tty


def console_factory(resolve: TerminalResolver) -> DeviceFactory:
    """/dev/console's open: the sandbox's console, ENODEV when it has none.

    runsc has no /dev/console at all (gVisor's ttydev leaves it as a TODO); runc with
    terminal=true bind-mounts the container's terminal there.  We follow runc: the
    terminal layer resolves the console to the terminal the sandbox was started on.
    """
    def open_console(flags: int, attrs: DeviceAttrs, task: "Task") -> File:
        inner = resolve(task, flags)
        if inner is None:
            raise SyscallError(ENODEV)
        return TerminalAliasFile(inner, attrs, 1)
    return open_console


# -- the registry ----------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceSpec:
    """One character device: its /dev name, number, default node mode and opener."""

    name: str  #: path below /dev
    major: int
    minor: int
    mode: int  #: st_mode of the node the devfs creates (S_IFCHR | permissions)
    factory: DeviceFactory

    @property
    def rdev(self) -> int:
        return os.makedev(self.major, self.minor)


def _plain(cls: type[DeviceFile]) -> DeviceFactory:
    def open_plain(flags: int, attrs: DeviceAttrs, task: "Task") -> File:
        return cls(flags, attrs)
    return open_plain


def _spec(name: str, cls: type[DeviceFile], perms: int = 0o666) -> DeviceSpec:
    return DeviceSpec(name, cls.MAJOR, cls.MINOR, S_IFCHR | perms, _plain(cls))


#: name -> device, what the devfs puts in /dev
DEVICES: dict[str, DeviceSpec] = {}
_BY_NUMBER: dict[tuple[int, int], DeviceSpec] = {}


def register_device(spec: DeviceSpec, node: bool = True) -> None:
    """Add or replace a device (the terminal layer re-registers tty and console with its
    resolvers).  node=False: reachable by number only, with no node of its own in /dev
    (ptmx, whose /dev name is a link into devpts)."""
    old = DEVICES.pop(spec.name, None)
    if old is not None:
        _BY_NUMBER.pop((old.major, old.minor), None)
    if node:
        DEVICES[spec.name] = spec
    _BY_NUMBER[(spec.major, spec.minor)] = spec


for _s in (_spec("null", NullFile), _spec("zero", ZeroFile), _spec("full", FullFile),
           _spec("random", RandomFile), _spec("urandom", URandomFile),
           DeviceSpec("tty", TTYAUX_MAJOR, 0, S_IFCHR | 0o666,
                      tty_factory(_controlling_terminal)),
           DeviceSpec("console", TTYAUX_MAJOR, 1, S_IFCHR | 0o600,
                      console_factory(_no_terminal))):
    register_device(_s)


def lookup_device(major: int, minor: int) -> DeviceSpec | None:
    return _BY_NUMBER.get((major, minor))


def open_device(major: int, minor: int, flags: int, attrs: DeviceAttrs, task: "Task",
                path: str = "") -> File:
    """Open a character device node with open(2) flags (permission checks are the
    caller's, done on the node like any other file).  A number no device claims is ENXIO,
    as Linux answers for an unregistered char device; O_PATH never reaches the driver."""
    flags = open_file_flags(flags)
    if flags & os.O_PATH:
        return DeviceFile(flags, attrs, path, os.makedev(major, minor))
    spec = _BY_NUMBER.get((major, minor))
    if spec is None:
        raise SyscallError(ENXIO)
    file = spec.factory(flags, attrs, task)
    file.path = path
    return file


# -- the host's /dev/zero, for mapping -------------------------------------------------
_host_zero: int | None = None


def host_zero_fd() -> int:
    """A host /dev/zero descriptor for ZeroFile.mmap_fd (opened once; the sentry must do
    it before it gives up host file access, or the mm layer uses mmap_anonymous)."""
    global _host_zero
    if _host_zero is None:
        try:
            _host_zero = os.open("/dev/zero", os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            raise SyscallError(ENODEV) from None
    return _host_zero
