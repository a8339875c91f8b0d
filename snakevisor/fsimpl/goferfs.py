"""A host directory served by a gofer process over 9P2000.L (`--volume`, gofer-backed).

The same shape as hostpathfs.HostPathFs, with every host access moved out of the sentry:
each inode holds one fid, walked from its parent's fid by ONE name, and every operation is
one or two 9P requests on it.  The gofer never follows a symlink (a walk to one gives the
link itself, Treadlink reads it), so the sentry's walk alone decides what links and `..`
mean.  Nothing is cached: each lookup is a fresh Twalk + Tgetattr and each stat() a fresh
Tgetattr, so a change made on the host is seen at once.  A read-only volume is a read-only
bind mount inside the gofer: the host itself answers EROFS.

Regular files are opened with Tlopen and the gofer donates the host fd, so data
operations (read, write, mmap) are host calls on that fd, exactly like HostFile's.  The
gofer never donates directory fds (openat(fd, "..") would leave the export), so an open
directory is a DirectoryFile over entries() (Tlopen + Treaddir on the gofer's side).

Fids are given back when their inode is garbage-collected.  The clunk is deferred to the
next request: a finalizer may run in the middle of another request (cyclic GC), and the
client has one request in flight at a time.
"""
from __future__ import annotations

import os
import struct
import subprocess
from typing import TYPE_CHECKING, Iterable

from snakevisor.fsimpl.hostfs import HostFile, open_file_flags
from snakevisor.kernel.errors import EINVAL, ELOOP, ENOENT, EOPNOTSUPP, EEXIST, SyscallError
from snakevisor.p9 import messages as m
from snakevisor.p9.client import Client
from snakevisor.vfs.dirfile import DirectoryFile
from snakevisor.vfs.inode import Filesystem, Inode, Stat

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_DIRECTORY = 0, 2, 0o100, 0o200, 0o200000
RENAME_NOREPLACE = 1
_OMIT = 0xFFFFFFFF  # chown's "leave unchanged"
ST_RDONLY, ST_VALID = 0x1, 0x20
#: struct statfs: type bsize blocks bfree bavail files ffree fsid[2] namelen frsize flags spare[4]
_STATFS = struct.Struct("<qqQQQQQiiqqq4q")
_NS = 1_000_000_000


def _ns(sec: int, nsec: int) -> int:
    """A 9P time (sec as an unsigned 64-bit field) as signed nanoseconds."""
    if sec >= 1 << 63:
        sec -= 1 << 64
    return sec * _NS + nsec


class GoferFs(Filesystem):
    """One host directory exported by its own gofer; `start` launches and attaches."""

    fstype = "bind"

    def __init__(self, client: Client, host_dir: str, writable: bool,
                 proc: "subprocess.Popen | None" = None) -> None:
        super().__init__(host_dir, "rw" if writable else "ro")
        self.client = client
        self.proc = proc
        self.writable = writable
        self.host_dir = host_dir
        # Rgetattr carries no st_dev; the donated fds' fstat reports the host's, so stat()
        # reports the same one (a gofer walk never crosses a mount: RESOLVE_NO_XDEV)
        self.dev = os.stat(host_dir).st_dev
        self._dead: list[int] = []  #: fids of collected inodes, clunked before the next request
        fid, _ = client.attach(b"/", m.NONUNAME)  # owners as created, as HostPathFs
        self._root = GoferInode(self, fid, client.getattr(fid), own_fid=False)

    @classmethod
    def start(cls, host_dir: str, writable: bool) -> "GoferFs":
        """Launch a gofer exporting host_dir (read-only bind inside it unless writable).

        Start it after the platform pinned the sentry to its CPU: the gofer inherits the
        affinity, and a round trip on one CPU costs a quarter of one across CPUs."""
        from snakevisor.gofer.launch import start_gofer
        host_dir = os.path.realpath(host_dir)
        if not os.path.isdir(host_dir):
            raise NotADirectoryError(host_dir)  # single-file volumes: not yet (see report)
        proc, sock = start_gofer(host_dir, (), ro_root=not writable)
        try:
            return cls(Client(sock), host_dir, writable, proc)
        except BaseException:
            sock.close()
            proc.wait(10)
            raise

    def p9(self) -> Client:
        """The client, after giving back the fids of inodes collected since the last call."""
        while self._dead:
            fid = self._dead.pop()
            try:
                self.client.clunk(fid)
            except SyscallError:
                pass  # gone on both sides anyway
        return self.client

    def forget(self, fid: int) -> None:
        self._dead.append(fid)

    def root(self) -> Inode:
        self._root.stat()  # a chmod of the volume's root on the host counts at once
        return self._root

    def statfs(self) -> bytes:
        r = self.p9().statfs(self._root.fid)
        fsid0, fsid1 = r.fsid & 0xFFFFFFFF, r.fsid >> 32
        flags = ST_VALID | (0 if self.writable else ST_RDONLY)
        return _STATFS.pack(r.type, r.bsize, r.blocks, r.bfree, r.bavail, r.files, r.ffree,
                            fsid0 - (1 << 32) * (fsid0 >> 31), fsid1 - (1 << 32) * (fsid1 >> 31),
                            r.namelen, r.bsize, flags, 0, 0, 0, 0)

    def close(self) -> None:
        """Close the session: the gofer exits when its socket closes."""
        self.client.close()
        if self.proc is not None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __del__(self) -> None:
        try:
            if self.client.sock.fileno() >= 0:
                self.client.sock.close()
            if self.proc is not None:
                self.proc.poll()
        except Exception:
            pass


class GoferInode(Inode):
    """The object a fid names (as of its last Tgetattr)."""

    def __init__(self, fs: GoferFs, fid: int, attrs: m.Rgetattr, own_fid: bool = True,
                 opened: bool = False) -> None:
        super().__init__(fs, attrs.mode, attrs.uid, attrs.gid, attrs.rdev, ino=attrs.qid.path)
        self.fid = fid
        self._own_fid = own_fid  #: clunked when collected (not the attach fid)
        self._opened = opened  #: the fid itself was Tlopen'ed (it can only be once)
        self._apply(attrs)

    def __del__(self) -> None:
        try:
            if self._own_fid:
                self.fs.forget(self.fid)  # type: ignore[attr-defined]
        except Exception:
            pass  # interpreter teardown

    def _apply(self, a: m.Rgetattr) -> None:
        self.mode, self.uid, self.gid, self.nlink = a.mode, a.uid, a.gid, a.nlink
        self.rdev, self.ino = a.rdev, a.qid.path
        self.atime_ns = _ns(a.atime_sec, a.atime_nsec)
        self.mtime_ns = _ns(a.mtime_sec, a.mtime_nsec)
        self.ctime_ns = _ns(a.ctime_sec, a.ctime_nsec)
        self._size, self._blocks, self._blksize = a.size, a.blocks, a.blksize

    @property
    def p9(self) -> Client:
        return self.fs.p9()  # type: ignore[attr-defined]

    def stat(self) -> Stat:
        try:
            self._apply(self.p9.getattr(self.fid))
        except SyscallError:
            pass  # the session failed meanwhile: the last known attributes
        return Stat(self.mode, self.ino, self.fs.dev, self.nlink, self.uid, self.gid, self._size,
                    self.atime_ns, self.mtime_ns, self.ctime_ns, self._blksize, self._blocks,
                    self.rdev)

    def size(self) -> int:
        return self._size

    # -- directories -------------------------------------------------------------------------
    def _attached(self, fid: int, opened: bool = False) -> "GoferInode":
        """An inode for a fresh fid (given back if its Tgetattr fails)."""
        c = self.p9
        try:
            attrs = c.getattr(fid)
        except BaseException:
            c.clunk(fid)
            raise
        return GoferInode(self.fs, fid, attrs, opened=opened)  # type: ignore[arg-type]

    def _child(self, name: bytes) -> "GoferInode":
        fid, _ = self.p9.walk(self.fid, (name,))
        assert fid is not None  # one name: either walked or an error
        return self._attached(fid)

    def lookup(self, task: "Task", name: bytes) -> Inode | None:
        try:
            return self._child(name)
        except SyscallError as e:
            if e.errno == ENOENT:
                return None
            raise

    def entries(self, task: "Task") -> Iterable[tuple[bytes, int, int]]:
        c = self.p9
        if not self._opened:
            c.lopen(self.fid, O_RDONLY | O_DIRECTORY)  # walks still start from this fid
            self._opened = True
        out, offset = [], 0
        while True:
            batch = c.readdir(self.fid, offset)
            if not batch:
                return out
            for d in batch:
                if d.name not in (b".", b".."):
                    out.append((d.name, d.qid.path, d.type))
            offset = batch[-1].offset

    def create(self, task: "Task", name: bytes, mode: int) -> Inode:
        c = self.p9
        fid = c.clone(self.fid)
        try:
            _, _, fd = c.lcreate(fid, name, O_RDWR, mode & 0o7777)
        except BaseException:
            c.clunk(fid)
            raise
        if fd is not None:
            os.close(fd)  # open() asks for the access mode the application wants
        return self._attached(fid, opened=True)

    def mkdir(self, task: "Task", name: bytes, mode: int) -> Inode:
        self.p9.mkdir(self.fid, name, mode & 0o7777)
        return self._child(name)

    def symlink(self, task: "Task", name: bytes, target: bytes) -> Inode:
        self.p9.symlink(self.fid, name, target)
        return self._child(name)

    def link(self, task: "Task", name: bytes, inode: Inode) -> None:
        self.p9.link(self.fid, inode.fid, name)  # type: ignore[attr-defined]

    def unlink(self, task: "Task", name: bytes) -> None:
        self.p9.unlinkat(self.fid, name, 0)

    def rmdir(self, task: "Task", name: bytes) -> None:
        self.p9.unlinkat(self.fid, name, m.AT_REMOVEDIR)

    def rename(self, task: "Task", name: bytes, new_dir: Inode, new_name: bytes,
               flags: int) -> None:
        if flags & ~RENAME_NOREPLACE:
            task.kernel.warn_once("goferfs:rename-flags",
                                  f"renameat2 flags {flags:#x} on a gofer volume -> EINVAL")
            raise SyscallError(EINVAL)
        if flags and new_dir.lookup(task, new_name) is not None:
            raise SyscallError(EEXIST)  # INTERIM: 9P has no flags, so a racy check
        self.p9.renameat(self.fid, name, new_dir.fid, new_name)  # type: ignore[attr-defined]

    # -- the rest --------------------------------------------------------------------------
    def readlink(self, task: "Task") -> bytes:
        return self.p9.readlink(self.fid)

    def open(self, task: "Task", flags: int) -> "File":
        if self.is_symlink:
            raise SyscallError(ELOOP)
        if self.is_dir:
            return DirectoryFile(self, task, flags)
        c = self.p9
        own = not self._opened
        fid = self.fid if own else c.clone(self.fid)
        try:
            _, _, fd = c.lopen(fid, flags & ~(O_CREAT | O_EXCL))
        finally:
            if not own:
                c.clunk(fid)  # the donated fd outlives its fid
        if own:
            self._opened = True
        if fd is None:
            task.kernel.warn_once("goferfs:nofd", "the gofer donated no fd for a regular file "
                                  "(Tread/Twrite files are not implemented) -> EOPNOTSUPP")
            raise SyscallError(EOPNOTSUPP)
        return GoferFile(self, fd, flags)

    def setattr(self, task: "Task", mode: int | None = None, uid: int | None = None,
                gid: int | None = None, size: int | None = None) -> None:
        valid = 0
        if size is not None:
            valid |= m.SETATTR_SIZE
        if mode is not None:
            valid |= m.SETATTR_MODE
        if uid is not None and uid != _OMIT:
            valid |= m.SETATTR_UID
        if gid is not None and gid != _OMIT:
            valid |= m.SETATTR_GID
        if valid:
            self.p9.setattr(self.fid, valid, mode=(mode or 0) & 0o7777, uid=uid or 0,
                            gid=gid or 0, size=size or 0)


class GoferFile(HostFile):
    """A regular file opened through the gofer: HostFile's I/O on the donated fd.

    HostFile asks its root only `writable` (fsync of a read-only mount, and fd attribute
    calls, which for this type go to the inode instead); statfs is the volume's."""

    def __init__(self, inode: GoferInode, fd: int, flags: int) -> None:
        super().__init__(inode.fs, fd, open_file_flags(flags), inode.mode, False)  # type: ignore[arg-type]
        self.inode = inode  # fchmod/fchown/futimens: InodeAttrs -> Tsetattr
        self._path = ""

    @property  # type: ignore[override]
    def path(self) -> str:
        return self._path or ""

    @path.setter
    def path(self, value: str) -> None:
        self._path = value

    def __repr__(self) -> str:
        return f"GoferFile(fd={self.fd}, flags={self.flags:#o})"

    def statfs(self) -> bytes:
        return self.inode.fs.statfs()
