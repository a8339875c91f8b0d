"""devpts: pseudo-terminal pairs and the file system at /dev/pts, served by the sentry.

Why in the sentry (as gVisor's devpts, not a host pty): a terminal's behaviour — line
editing, echo, ^C to the foreground process group, the controlling terminal of a session,
SIGWINCH — is kernel state tied to the sandbox's processes, sessions and signals, which
only the sentry knows.  The line discipline itself is vfs/tty.py's Terminal; this module
is Linux's drivers/tty/pty.c and fs/devpts: pairs, their numbers, the master and slave
files, and the directory listing the open slaves.

Opening ptmx (/dev/pts/ptmx; /dev/ptmx is a link to it, as in containers, or any 5:2 node)
makes a pair: the master file, and /dev/pts/N for its slave, locked until TIOCSPTLCK 0
(unlockpt).  Linux's life cycle, checked natively:
- the slave opens only while the master is open and unlocked (EIO otherwise);
- the name /dev/pts/N goes away when the master closes, the number N is reused only once
  both sides are closed;
- master closed: the slave is hung up (reads 0, writes and ioctls EIO, TIOCSPGRP ENOTTY,
  poll says everything), its session leader gets SIGHUP and SIGCONT;
- every slave closed (after one was opened): the master reads what is left, then EIO, and
  polls POLLHUP; its writes are still taken (and echoed) until a slave opens again.

The mount options are those containers use (runc, Docker): gid=5,mode=620,ptmxmode=666;
Linux's bare defaults (mode=600, the opener's gid, ptmxmode=000) would leave ptmx
unusable without a /dev/ptmx device node.
"""
from __future__ import annotations

import itertools
import os
import stat as st_
import struct
from typing import TYPE_CHECKING

from snakevisor.fsimpl.devfs import DeviceNode
from snakevisor.fsimpl.devices import (DeviceAttrs, DeviceFile, DeviceSpec, register_device)
from snakevisor.fsimpl.hostfs import open_file_flags
from snakevisor.kernel.errors import (EAGAIN, EBADF, EBUSY, EINVAL, EIO, EISDIR, ENODEV, ENOSPC,
                                      ENOTTY, EPERM, Block, SyscallError)
from snakevisor.vfs.file import POLLHUP, POLLIN, POLLOUT, POLLPRI, POLLRDNORM, POLLWRNORM
from snakevisor.vfs.inode import DT_CHR, Filesystem, Inode
from snakevisor.vfs.tty import (CAP_SYS_ADMIN, TIOCEXCL, TIOCGEXCL, TIOCGPKT, TIOCGPTLCK,
                                TIOCGPTN, TIOCGPTPEER, TIOCNXCL, TIOCPKT, TIOCSIG, TIOCSPGRP,
                                TIOCSPTLCK, TIOCVHANGUP, Terminal)

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

UNIX98_PTY_SLAVE_MAJOR = 136
TTYAUX_MAJOR, PTMX_MINOR = 5, 2
DEVPTS_SUPER_MAGIC = 0x1CD1
PTY_MAX = 4096  #: /proc/sys/kernel/pty/max
TTY_GID = 5  #: the "tty" group (gid= option)
PTS_MODE, PTMX_MODE = 0o620, 0o666  #: mode= and ptmxmode= options
ST_NOSUID, ST_NOEXEC, ST_RELATIME = 0x2, 0x8, 0x1000
ROOT_INO, PTMX_INO = 1, 2  #: devpts numbers its root 1, ptmx 2 and slave N as N + 3
O_ACCMODE, O_NOCTTY, O_CLOEXEC, O_NONBLOCK = 0o3, os.O_NOCTTY, os.O_CLOEXEC, os.O_NONBLOCK
RLIMIT_NOFILE, NR_OPEN = 7, 1 << 20
#: requests only a master answers: a slave says ENOTTY (TIOCGPTPEER: EIO, ptm_open_peer)
_MASTER_ONLY = frozenset({TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCPKT, TIOCGPKT, TIOCSIG})


class DevPtsFs(Filesystem):
    """One devpts instance: its pairs by number, the root directory and ptmx."""

    fstype = "devpts"

    def __init__(self) -> None:
        # the superblock's options (mountinfo adds rw; the mount is nosuid,noexec)
        super().__init__("devpts", f"gid={TTY_GID},mode={PTS_MODE:o},ptmxmode={PTMX_MODE:03o}")
        self.pairs: dict[int, PtyPair] = {}  #: numbers in use (until both sides close)
        self._order = itertools.count()
        self._root = DevPtsRoot(self)
        self.ptmx = PtmxNode(self, st_.S_IFCHR | PTMX_MODE,
                             rdev=os.makedev(TTYAUX_MAJOR, PTMX_MINOR), ino=PTMX_INO)

    def root(self) -> Inode:
        return self._root

    def statfs(self) -> bytes:
        return struct.pack("<qqQQQQQiiqqq4q", DEVPTS_SUPER_MAGIC, 4096, 0, 0, 0, 0, 0, 0, 0,
                           255, 4096, ST_NOSUID | ST_NOEXEC | ST_RELATIME, 0, 0, 0, 0)

    def visible(self) -> list["PtyPair"]:
        """The pairs /dev/pts lists (master still open), newest first as Linux's dcache."""
        return sorted((p for p in self.pairs.values() if p.master_open),
                      key=lambda p: p.order, reverse=True)

    def open_master(self, task: "Task", flags: int, attrs: DeviceAttrs | Inode,
                    path: str = "") -> "MasterFile":
        """ptmx_open: the lowest free number, a locked slave /dev/pts/N owned by the
        caller's fsuid and the tty group."""
        index = next((i for i in range(PTY_MAX) if i not in self.pairs), None)
        if index is None:
            raise SyscallError(ENOSPC)
        pair = PtyPair(self, index, task)
        self.pairs[index] = pair
        master = MasterFile(pair, open_file_flags(flags), attrs)
        master.path = path
        return master


class PtyPair:
    """A master and its slave: the Terminal they share and who has them open."""

    def __init__(self, fs: DevPtsFs, index: int, task: "Task") -> None:
        self.fs = fs
        self.index = index
        self.order = next(fs._order)
        rdev = os.makedev(UNIX98_PTY_SLAVE_MAJOR, index)
        self.node = PtsNode(fs, st_.S_IFCHR | PTS_MODE, task.tg.creds.fsuid, TTY_GID,
                            rdev=rdev, ino=index + 3)
        self.node.pair = self
        self.terminal = Terminal(task.kernel, rdev, self.reopen)
        self.master_open = True
        self.slaves = 0  #: open slave file descriptions
        self.slave_seen = False  #: a slave was opened (TTY_OTHER_CLOSED once all close)
        self.locked = True  #: TIOCSPTLCK
        self.master_excl = False  #: TIOCEXCL on the master (reported, nothing reopens it)

    @property
    def name(self) -> bytes:
        return str(self.index).encode()

    @property
    def other_closed(self) -> bool:
        """The master's TTY_OTHER_CLOSED: slaves were opened and all are closed now."""
        return self.slave_seen and not self.slaves

    def open_slave(self, task: "Task", flags: int, noctty: bool = False) -> "SlaveFile":
        """tty_open of the slave: EBUSY when exclusive, EIO while locked or once the
        master is gone; a session leader opening it without O_NOCTTY may acquire it."""
        term = self.terminal
        if term.exclusive and not _capable(task):
            raise SyscallError(EBUSY)
        if not self.master_open or self.locked:
            raise SyscallError(EIO)
        file = SlaveFile(self, open_file_flags(flags), self.node)
        file.path = f"/dev/pts/{self.index}"
        if not noctty and not flags & O_NOCTTY and file.readable:
            term.maybe_acquire(task.tg)
        return file

    def reopen(self, task: "Task", flags: int) -> "File":
        """/dev/tty: the controlling terminal opened anew."""
        return self.open_slave(task, flags, noctty=True)

    def master_closed(self) -> None:
        self.master_open = False
        self.terminal.hangup()
        self._maybe_free()

    def slave_closed(self) -> None:
        self.slaves -= 1
        if not self.slaves:
            self.terminal.master_wait.notify()  # the master reads EIO, polls POLLHUP
            self._maybe_free()

    def _maybe_free(self) -> None:
        if not self.master_open and not self.slaves and self.fs.pairs.get(self.index) is self:
            del self.fs.pairs[self.index]


def _capable(task: "Task") -> bool:
    from snakevisor.syscalls.sys_cred import has_cap
    return has_cap(task, CAP_SYS_ADMIN)


def _get_int(task: "Task", arg: int) -> int:
    return struct.unpack("<i", task.tg.mm.read(arg, 4))[0]


def _put_int(task: "Task", arg: int, value: int) -> int:
    task.tg.mm.write(arg, struct.pack("<i", value))
    return 0


# -- the file system's objects -----------------------------------------------------------------
class DevPtsRoot(Inode):
    """/dev/pts: ptmx and one name per pair whose master is open."""

    def __init__(self, fs: DevPtsFs) -> None:
        super().__init__(fs, st_.S_IFDIR | 0o755, ino=ROOT_INO)

    @property
    def devpts(self) -> DevPtsFs:
        return self.fs  # type: ignore[return-value]

    def lookup(self, task: "Task", name: bytes) -> Inode | None:
        if name == b"ptmx":
            return self.devpts.ptmx
        if name.isdigit() and (name == b"0" or not name.startswith(b"0")):
            pair = self.devpts.pairs.get(int(name))
            if pair is not None and pair.master_open:
                return pair.node
        return None

    def entries(self, task: "Task") -> list[tuple[bytes, int, int]]:
        return [(p.name, p.node.ino, DT_CHR) for p in self.devpts.visible()] + \
            [(b"ptmx", PTMX_INO, DT_CHR)]

    def open(self, task: "Task", flags: int) -> "File":
        if flags & O_ACCMODE:
            raise SyscallError(EISDIR)
        from snakevisor.vfs.dirfile import DirectoryFile
        return DirectoryFile(self, task, flags)


class PtmxNode(DeviceNode):
    """/dev/pts/ptmx: each open makes a new pair of this instance."""

    def open(self, task: "Task", flags: int) -> "File":
        return self.fs.open_master(task, flags, self)  # type: ignore[attr-defined]


class PtsNode(DeviceNode):
    """/dev/pts/N: the slave of pair N."""

    pair: PtyPair

    def open(self, task: "Task", flags: int) -> "File":
        return self.pair.open_slave(task, flags)


# -- the open files -------------------------------------------------------------------------------
class _PtyFile(DeviceFile):
    """What both ends share: their pair and Terminal, access checks, readiness."""

    can_poll = True

    def __init__(self, pair: PtyPair, flags: int, attrs: DeviceAttrs | Inode,
                 rdev: int | None = None) -> None:
        super().__init__(flags, attrs, rdev=rdev)  # type: ignore[arg-type]
        self.pair = pair
        self.terminal = pair.terminal
        if isinstance(attrs, Inode):
            self.attr_inode = attrs  # fchmod/fchown act on the node it was opened by

    def __repr__(self) -> str:
        return f"{type(self).__name__}(pts={self.pair.index}, flags={self.flags:#o})"

    @property
    def nonblock(self) -> bool:
        return bool(self.flags & O_NONBLOCK)

    def _excl_ioctl(self, task: "Task", request: int, arg: int, current: bool) -> bool | None:
        """TIOCEXCL/TIOCNXCL/TIOCGEXCL: the new flag, or None for other requests."""
        if request == TIOCEXCL:
            return True
        if request == TIOCNXCL:
            return False
        if request == TIOCGEXCL:
            _put_int(task, arg, int(current))
            return current
        return None


class MasterFile(_PtyFile):
    """The master: reads what the slave wrote, writes what the slave will read."""

    MAJOR, MINOR = TTYAUX_MAJOR, PTMX_MINOR

    def read(self, task: "Task", count: int) -> bytes:
        if not self.readable:
            raise SyscallError(EBADF)
        term = self.terminal
        if not count:
            return b""
        if term.packet and term.pktstatus:
            status, term.pktstatus = term.pktstatus, 0
            return bytes((status,))
        if term.out:
            if term.packet:  # TIOCPKT_DATA before the data
                return b"\0" + term.take_output(count - 1)
            return term.take_output(count)
        if self.pair.other_closed:
            raise SyscallError(EIO)
        if self.nonblock:
            raise SyscallError(EAGAIN)
        raise Block(queue=term.master_wait)

    def write(self, task: "Task", data: bytes) -> int:
        """Typed input for the slave; a blocking write waits until all of it is taken."""
        if not self.writable:
            raise SyscallError(EBADF)
        state = task.syscall_state
        done = state.get("transferred", 0) if state else 0
        total = len(data)
        while done < total:
            taken = self.terminal.receive(data[done:])
            if not taken:
                break
            done += taken
        if done >= total or (self.nonblock and done):
            if state:
                state.pop("transferred", None)
            return done
        if self.nonblock:
            raise SyscallError(EAGAIN)
        if state is None:
            state = task.syscall_state = {}
        state["transferred"] = done
        raise Block(queue=self.terminal.master_wait)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        pair, term = self.pair, self.terminal
        if request == TIOCGPTN:
            return _put_int(task, arg, pair.index)
        if request == TIOCSPTLCK:
            pair.locked = bool(_get_int(task, arg))
            return 0
        if request == TIOCGPTLCK:
            return _put_int(task, arg, int(pair.locked))
        if request == TIOCPKT:
            if _get_int(task, arg):
                if not term.packet:
                    term.pktstatus = 0
                    term.packet = True
            else:
                term.packet = False
            return 0
        if request == TIOCGPKT:
            return _put_int(task, arg, int(term.packet))
        if request == TIOCSIG:
            term.signal_pgrp(arg & 0xFFFFFFFF)
            return 0
        if request == TIOCGPTPEER:
            return self._open_peer(task, arg & 0xFFFFFFFF)
        excl = self._excl_ioctl(task, request, arg, pair.master_excl)
        if excl is not None:
            pair.master_excl = excl
            return 0
        if request == TIOCVHANGUP:
            if not _capable(task):
                raise SyscallError(EPERM)
            task.kernel.warn_once("pty:TIOCVHANGUP:master",
                                  "TIOCVHANGUP on a pty master is not supported -> EINVAL")
            raise SyscallError(EINVAL)
        return term.ioctl(task, request, arg, True, self.readable)

    def _open_peer(self, task: "Task", flags: int) -> int:
        """TIOCGPTPEER: the slave opened from the master (no path, no permission check)."""
        limit = min(task.tg.rlimits[RLIMIT_NOFILE][0], NR_OPEN)
        fds = task.tg.fds.files
        if len(fds) >= limit and all(fd in fds for fd in range(limit)):
            from snakevisor.kernel.errors import EMFILE
            raise SyscallError(EMFILE)
        slave = self.pair.open_slave(task, flags)
        try:
            return task.tg.fds.install(slave, bool(flags & O_CLOEXEC), 0, limit)
        except SyscallError:
            slave.release()
            raise

    def poll_events(self) -> int:
        term = self.terminal
        mask = 0
        if term.out:
            mask |= POLLIN | POLLRDNORM
        if term.packet and term.pktstatus:
            mask |= POLLPRI | POLLIN | POLLRDNORM
        if self.pair.other_closed:
            mask |= POLLHUP
        if term.input_room():
            mask |= POLLOUT | POLLWRNORM
        return mask

    def poll_queue(self):  # type: ignore[override]
        return self.terminal.master_wait

    def release(self) -> None:
        self.pair.master_closed()


class SlaveFile(_PtyFile):
    """/dev/pts/N opened: a terminal for the programs running on it."""

    MAJOR = UNIX98_PTY_SLAVE_MAJOR

    def __init__(self, pair: PtyPair, flags: int, node: "PtsNode") -> None:
        super().__init__(pair, flags, node, node.rdev)
        pair.slaves += 1
        pair.slave_seen = True

    def read(self, task: "Task", count: int) -> bytes:
        if not self.readable:
            raise SyscallError(EBADF)
        return self.terminal.read(task, count, self.nonblock)

    def write(self, task: "Task", data: bytes) -> int:
        if not self.writable:
            raise SyscallError(EBADF)
        return self.terminal.write(task, data, self.nonblock)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        term = self.terminal
        if term.hung_up:  # hung_up_tty_ioctl
            raise SyscallError(ENOTTY if request == TIOCSPGRP else EIO)
        if request in _MASTER_ONLY:
            raise SyscallError(ENOTTY)
        if request == TIOCGPTPEER:
            raise SyscallError(EIO)  # ptm_open_peer: not a master
        excl = self._excl_ioctl(task, request, arg, term.exclusive)
        if excl is not None:
            term.exclusive = excl
            return 0
        if request == TIOCVHANGUP:
            if not _capable(task):
                raise SyscallError(EPERM)
            term.hangup()
            return 0
        return term.ioctl(task, request, arg, False, self.readable)

    def poll_events(self) -> int:
        return self.terminal.slave_events()

    def poll_queue(self):  # type: ignore[override]
        return self.terminal.slave_wait

    def release(self) -> None:
        self.pair.slave_closed()


# -- ptmx by device number ------------------------------------------------------------------------
def _open_ptmx(flags: int, attrs: DeviceAttrs, task: "Task") -> "File":
    """A 5:2 node anywhere opens the devpts instance next to it, else the sandbox's
    (Linux's devpts_acquire: the "pts" sibling, else the initial instance)."""
    fs = getattr(attrs, "fs", None)
    devpts = fs if isinstance(fs, DevPtsFs) else getattr(fs, "pts", None)
    if not isinstance(devpts, DevPtsFs):
        devpts = sandbox_devpts(task)
    return devpts.open_master(task, flags, attrs)


def sandbox_devpts(task: "Task") -> DevPtsFs:
    """The devpts instance of the task's mount namespace (mounted, or inside its /dev)."""
    for fs in getattr(task.tg.fs.root, "mounts", {}).values():
        if isinstance(fs, DevPtsFs):
            return fs
        pts = getattr(fs, "pts", None)
        if isinstance(pts, DevPtsFs):
            return pts
    raise SyscallError(ENODEV)


register_device(DeviceSpec("ptmx", TTYAUX_MAJOR, PTMX_MINOR, st_.S_IFCHR | PTMX_MODE,
                           _open_ptmx), node=False)
