"""Host directories served by a gofer process over 9P2000.L: the container root and every
`--volume`, each export a file system of its own, all through ONE gofer and one session.

The same shape as hostpathfs.HostPathFs, with every host access moved out of the sentry:
each inode holds one fid, walked from its parent's fid by ONE name.  The gofer never
follows a symlink (a walk to one gives the link itself, Treadlink reads it), so the
sentry's walk alone decides what links and `..` mean.  A read-only export is a read-only
bind mount inside the gofer: the host itself answers EROFS.

Round trips are what an operation costs (a Python handler on each side and two process
switches: tens of microseconds), so:

* A lookup is one Twalkstat (our dialect: walk + attributes in one reply).
* Inodes are cached per (directory, name) and, on a tree shared with the host (a volume, a
  root written through), *revalidated, never trusted*: every walk asks the host again.  A
  directory remembers the name last looked up in it, so revalidating a cached path
  predicts the rest of the walk and checks every component with the host in the same
  request (`_revalidate`); the walk's next lookups take those answers
  (`GoferConnection.consume`), never answers from another system call.  A name that now
  means another object gets a fresh walk.  The overlay's lower layer (a container image:
  nothing changes it) is "exclusive", runsc's default for the root: its cached names are
  used without asking.
* Opening a regular file is one Topenfd: the gofer donates the host fd, and data
  operations (read, write, mmap) are host calls on it, exactly like HostFile's.  Requests
  that belong together (create + chown + getattr, setattr + getattr, clunks) travel in one
  packet each way.

The gofer never donates directory fds (openat(fd, "..") would leave the export), so an open
directory is a DirectoryFile over entries() (Tlopen + Treaddir on the gofer's side).
"""
from __future__ import annotations

import errno
import os
import stat as st_
import struct
import subprocess
import time
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Callable, Iterable

from snakevisor.fsimpl.hostfs import HostFile, _xattr_exposed, host_statx, open_file_flags
from snakevisor.kernel.errors import EINVAL, ELOOP, ENOENT, EOPNOTSUPP, EPERM, EROFS, SyscallError
from snakevisor.p9 import messages as m
from snakevisor.p9.client import Client
from snakevisor.vfs.dirfile import DirectoryFile
from snakevisor.vfs.inode import Filesystem, Inode, Stat

if TYPE_CHECKING:
    from snakevisor.gofer import Volume
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_DIRECTORY = 0, 2, 0o100, 0o200, 0o200000
O_ACCMODE, O_APPEND, O_DSYNC, O_DIRECT = 0o3, 0o2000, 0o10000, 0o40000
O_SYNC, O_NOATIME = 0o4010000, 0o1000000
#: open flags a create passes to the gofer (the rest is the description's, or the walk's)
_CREATE_FLAGS = O_ACCMODE | O_APPEND | O_DSYNC | O_DIRECT | O_SYNC | O_NOATIME | O_EXCL
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
_OMIT = 0xFFFFFFFF  # chown's "leave unchanged"
ST_RDONLY, ST_VALID = 0x1, 0x20
#: struct statfs: type bsize blocks bfree bavail files ffree fsid[2] namelen frsize flags spare[4]
_STATFS = struct.Struct("<qqQQQQQiiqqq4q")
_NS = 1_000_000_000
#: cached (directory, name) entries per export; beyond it the least recently used go
CACHE_ENTRIES = 4096
#: without the kernel's epoch, steps validated ahead for a walk are used only this soon
#: after the host answered (a walk takes microseconds)
FRESH_NS = 1_000_000


def _ns(sec: int, nsec: int) -> int:
    """A 9P time (sec as an unsigned 64-bit field) as signed nanoseconds."""
    if sec >= 1 << 63:
        sec -= 1 << 64
    return sec * _NS + nsec


class GoferConnection:
    """One gofer process and its 9P session, shared by the file systems of its exports.

    The session is opened (Tversion) on first use, so the gofer starts its interpreter and
    confines itself while the sentry gets ready.

    Answers the host gave for the request being served are kept here for the rest of the
    same system call only: `ahead` (steps of a cached path validated for the walk going on)
    and `fresh` (a node whose attributes were just answered, so stat() need not ask again).
    Any other request drops them.  What "the same system call" is comes from `epoch`, the
    kernel's count of dispatched calls, when the sandbox provides it; without it `fresh` is
    never used and `ahead` only for FRESH_NS, which is exact for walks that start at a
    mount's root (sandboxroot's: the first step of the next walk does not match)."""

    def __init__(self, proc: "subprocess.Popen | None", sock) -> None:
        self.proc = proc
        self.sock = sock
        self._client: Client | None = None
        self._dead: list[int] = []  #: fids of collected inodes, clunked before the next request
        self.ahead: list[tuple[GoferInode, bytes, GoferInode]] = []  #: validated walk steps
        self.fresh: GoferInode | None = None  #: attributes just answered by the host
        self.epoch: "Callable[[], int] | None" = None  #: the kernel's system-call count
        self._stamp = 0  #: the epoch (or monotonic ns) of `ahead` and `fresh`

    @classmethod
    def launch(cls, root: str, volumes: "list[Volume] | tuple[Volume, ...]" = (),
               ro_root: bool = False) -> "GoferConnection":
        """Start a gofer exporting root (aname "/") and volumes (aname = sandbox path)."""
        from snakevisor.gofer.launch import start_gofer
        proc, sock = start_gofer(root, volumes, ro_root=ro_root)
        return cls(proc, sock)

    @property
    def client(self) -> Client:
        if self._client is None:
            client = Client(self.sock)  # EIO when the gofer could not start
            if not client.fds:
                raise SyscallError(EOPNOTSUPP)  # a plain 9P server: not our gofer
            self._client = client
            self.pin()  # started on any CPU (in parallel with the sentry), served on ours
        return self._client

    def p9(self) -> Client:
        """The client, after giving back the fids of inodes collected since the last call;
        answers kept for the call being served are void from here on."""
        c = self.client
        self.ahead.clear()
        self.fresh = None
        if self._dead:
            dead, self._dead = self._dead, []
            c.clunk_many(dead)
        return c

    def forget(self, fid: int) -> None:
        self._dead.append(fid)

    def _now(self) -> int:
        return self.epoch() if self.epoch is not None else time.monotonic_ns()

    def _current(self) -> bool:
        if self.epoch is not None:
            return self.epoch() == self._stamp
        return time.monotonic_ns() - self._stamp < FRESH_NS

    def answered(self, ahead: "list[tuple[GoferInode, bytes, GoferInode]]",
                 fresh: "GoferInode | None") -> None:
        """Keep what the host just said for the rest of this system call."""
        self.ahead, self.fresh, self._stamp = ahead, fresh, self._now()

    def consume(self, parent: "GoferInode", name: bytes) -> "GoferInode | None":
        """The walk's next step, if it was validated ahead for this walk."""
        ahead = self.ahead
        if ahead:
            p, n, child = ahead[0]
            if p is parent and n == name and self._current():
                del ahead[0]
                self.fresh = child
                return child
            ahead.clear()
        return None

    def is_fresh(self, node: "GoferInode") -> bool:
        """Did the host answer node's attributes during this system call (and nothing was
        asked since)?"""
        return self.fresh is node and self.epoch is not None and self._current()

    def pin(self) -> None:
        """Put the gofer on the sentry's CPUs (done when the session opens: by then the
        platform has pinned the sentry).  A round trip on one CPU costs a quarter of one
        across CPUs; until then the gofer starts up on any CPU, beside the sentry's work."""
        if self.proc is not None:
            try:
                os.sched_setaffinity(self.proc.pid, os.sched_getaffinity(0))
            except OSError:
                pass  # already gone: its first request reports it

    def close(self, wait: bool = True) -> None:
        """End the session: the gofer exits when its socket closes.  wait=False leaves its
        exit (~3 ms of mount-namespace teardown) to whoever reaps the sentry's children."""
        if self.sock.fileno() >= 0:
            self.sock.close()
        if wait and self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __del__(self) -> None:
        try:
            if self.sock.fileno() >= 0:
                self.sock.close()
            if self.proc is not None:
                self.proc.poll()
        except Exception:
            pass


class GoferMounts:
    """One gofer for a sandbox: the container root and every volume, one GoferFs each
    (made by gofer.launch.start_gofer_mounts)."""

    def __init__(self, conn: GoferConnection, root: "GoferFs", volumes: "dict[str, GoferFs]",
                 upper: "GoferFs | None" = None) -> None:
        self.conn = conn
        self.root = root
        self.volumes = volumes  #: sandbox path (as given) -> its file system
        self.upper = upper  #: the overlay's upper directory (FileStore), if asked for

    def close(self, wait: bool = True) -> None:
        """End the gofer (call before the kernel shuts down: it waits for every child)."""
        self.conn.close(wait)


class GoferFs(Filesystem):
    """One export of a gofer (attach name aname); `start` launches a gofer of its own."""

    fstype = "bind"

    def __init__(self, conn: GoferConnection, aname: bytes, host_dir: str,
                 writable: bool, exclusive: bool = False, dev: int | None = None) -> None:
        super().__init__(host_dir, "rw" if writable else "ro")
        self.conn = conn
        self.aname = aname
        #: nothing but the sandbox changes this tree (the overlay's lower layer, as runsc's
        #: default file access "exclusive"): cached names are trusted, not asked again.  A
        #: tree shared with the host (a volume, a root written through) revalidates.
        self.exclusive = exclusive
        self.writable = writable
        self.host_dir = host_dir
        # Rgetattr carries no st_dev; the donated fds' fstat reports the host's, so stat()
        # reports the same one (a gofer walk never crosses a mount: RESOLVE_NO_XDEV)
        self.dev = os.stat(host_dir).st_dev if dev is None else dev
        self._root: GoferInode | None = None
        self._lru: OrderedDict[tuple[GoferInode, bytes], None] = OrderedDict()
        self.own_conn = False  #: close() ends the gofer (a file system started alone)

    @classmethod
    def start(cls, host_dir: str, writable: bool) -> "GoferFs":
        """A gofer of its own exporting host_dir (read-only bind inside it unless writable)."""
        host_dir = os.path.realpath(host_dir)
        if not os.path.isdir(host_dir):
            raise NotADirectoryError(host_dir)  # single-file volumes: not yet
        fs = cls(GoferConnection.launch(host_dir, (), ro_root=not writable), b"/", host_dir,
                 writable)
        fs.own_conn = True
        try:
            fs.root()
        except BaseException:
            fs.conn.close()
            raise
        return fs

    @property
    def client(self) -> Client:
        return self.conn.client

    @property
    def proc(self) -> "subprocess.Popen | None":
        return self.conn.proc

    def p9(self) -> Client:
        return self.conn.p9()

    def root(self) -> Inode:
        """The export's root, revalidated (a chmod of it on the host counts at once) together
        with the path walked from it last time."""
        if self._root is None:
            c = self.p9()
            fid, _ = c.attach(self.aname, m.NONUNAME)  # owners as created, as HostPathFs
            self._root = GoferInode(self, fid, c.getattr(fid), own_fid=False)
        elif not self.exclusive:
            self._root._revalidate()
        return self._root

    def statfs(self) -> bytes:
        root = self._root if self._root is not None else self.root()
        r = self.p9().statfs(root.fid)  # type: ignore[attr-defined]
        fsid0, fsid1 = r.fsid & 0xFFFFFFFF, r.fsid >> 32
        flags = ST_VALID | (0 if self.writable else ST_RDONLY)
        return _STATFS.pack(r.type, r.bsize, r.blocks, r.bfree, r.bavail, r.files, r.ffree,
                            fsid0 - (1 << 32) * (fsid0 >> 31), fsid1 - (1 << 32) * (fsid1 >> 31),
                            r.namelen, r.bsize, flags, 0, 0, 0, 0)

    def new_unlinked_file(self) -> int:
        """A nameless read-write file in this export (a tmpfs FileStore's backing): O_TMPFILE
        opened by the gofer, whose fid is given back at once."""
        root = self._root if self._root is not None else self.root()
        fid, _, fd = self.p9().tmpfile(root.fid, O_RDWR | O_EXCL, 0o600)  # type: ignore[attr-defined]
        self.conn.forget(fid)
        if fd is None:
            raise SyscallError(EOPNOTSUPP)
        return fd

    def host_statx(self, fd: int, flags: int, mask: int) -> bytes:
        """statx of a donated fd (HostFile asks its root)."""
        return host_statx(fd, flags, mask)

    def sync(self) -> None:
        """sync(2): the donated fds are the host's own files; 9P has no syncfs."""

    def close(self) -> None:
        if self.own_conn:
            self.conn.close()

    # -- the dentry cache ----------------------------------------------------------------
    def cache(self, parent: "GoferInode", name: bytes, child: "GoferInode") -> None:
        parent.children[name] = child
        child.parent, child.name = weakref.ref(parent), name
        key = (parent, name)
        self._lru[key] = None
        self._lru.move_to_end(key)
        while len(self._lru) > CACHE_ENTRIES:
            (p, n), _ = self._lru.popitem(last=False)
            p.children.pop(n, None)

    def touch(self, parent: "GoferInode", name: bytes) -> None:
        """A cached entry was used: the last to be evicted."""
        self._lru.move_to_end((parent, name))

    def uncache(self, parent: "GoferInode", name: bytes) -> None:
        if parent.children.pop(name, None) is not None:
            self._lru.pop((parent, name), None)


class GoferInode(Inode):
    """The object a fid names (as of the host's last answer about it)."""

    def __init__(self, fs: GoferFs, fid: int, attrs: "m.Rgetattr | m.Attr",
                 own_fid: bool = True, opened: bool = False) -> None:
        super().__init__(fs, attrs.mode, attrs.uid, attrs.gid, attrs.rdev, ino=attrs.qid.path)
        self.fid = fid
        self.conn = fs.conn
        self._own_fid = own_fid  #: clunked when collected (not the attach fid)
        self._opened = opened  #: the fid itself was Tlopen'ed (it can only be once)
        self.children: dict[bytes, GoferInode] = {}  #: cached lookups (revalidated on use)
        self.parent: "weakref.ref[GoferInode] | None" = None  #: where it was walked from
        self.name = b""
        self.last: bytes | None = None  #: the name looked up here last: the walk's guess
        self._apply(attrs)

    def __del__(self) -> None:
        try:
            if self._own_fid:
                self.conn.forget(self.fid)
        except Exception:
            pass  # interpreter teardown

    def _apply(self, a: "m.Rgetattr | m.Attr") -> None:
        self.mode, self.uid, self.gid, self.nlink = a.mode, a.uid, a.gid, a.nlink
        self.rdev, self.ino = a.rdev, a.qid.path
        self.atime_ns = _ns(a.atime_sec, a.atime_nsec)
        self.mtime_ns = _ns(a.mtime_sec, a.mtime_nsec)
        self.ctime_ns = _ns(a.ctime_sec, a.ctime_nsec)
        self._size, self._blocks, self._blksize = a.size, a.blocks, a.blksize

    @property
    def p9(self) -> Client:
        return self.conn.p9()

    def stat(self) -> Stat:
        if not self.conn.is_fresh(self):
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
    def _revalidate(self) -> None:
        """Ask the host about this node and the cached path walked from it last time, in
        one request; steps still naming the same objects are kept for the walk to take."""
        fs: GoferFs = self.fs  # type: ignore[assignment]
        path: list[tuple[GoferInode, bytes, GoferInode]] = []
        node = self
        while node.last is not None and len(path) < m.MAXWELEM:
            child = node.children.get(node.last)
            if child is None:
                break
            path.append((node, node.last, child))
            node = child
        c = self.p9
        try:
            _, attrs = c.walkstat(self.fid, [name for _, name, _ in path], create=False)
        except SyscallError as e:
            if e.errno != ENOENT or not path:
                raise
            fs.uncache(self, path[0][1])  # the first name is gone
            self._apply(c.getattr(self.fid))
            return
        self._apply(attrs[0])
        ahead = []
        for (parent, name, child), a in zip(path, attrs[1:]):
            if a.qid.path != child.ino or st_.S_IFMT(a.mode) != st_.S_IFMT(child.mode):
                fs.uncache(parent, name)  # another object under that name now
                break
            child._apply(a)
            ahead.append((parent, name, child))
        else:
            if len(attrs) - 1 < len(path):  # the walk stopped: that name is gone
                parent, name, _ = path[len(attrs) - 1]
                fs.uncache(parent, name)
        self.conn.answered(ahead, self)

    def _walk(self, name: bytes) -> "GoferInode":
        """A fresh walk to name: its own fid and the host's attributes, one request."""
        fid, attrs = self.p9.walkstat(self.fid, (name,))
        assert fid is not None  # one name: either walked or an error
        self._apply(attrs[0])
        child = GoferInode(self.fs, fid, attrs[1])  # type: ignore[arg-type]
        self.fs.cache(self, name, child)  # type: ignore[attr-defined]
        self.conn.answered([], child)
        return child

    def lookup(self, task: "Task", name: bytes) -> Inode | None:
        conn = self.conn
        self.last = name
        child = conn.consume(self, name)
        if child is not None:
            return child
        if self.fs.exclusive:  # type: ignore[attr-defined]
            child = self.children.get(name)
            if child is not None:
                self.fs.touch(self, name)  # type: ignore[attr-defined]
                return child
        elif name in self.children:
            try:
                self._revalidate()
            except SyscallError as e:
                if e.errno == ENOENT:
                    return None
                raise
            child = conn.consume(self, name)
            if child is not None:
                return child
            if name not in self.children:
                self.fs.uncache(self, name)  # type: ignore[attr-defined]
        try:
            return self._walk(name)
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

    def _owner(self, task: "Task") -> tuple[int, int] | None:
        """Who a new object here belongs to, as on Linux (its creator; the group of a setgid
        directory), when that is not what the gofer (host root) gets by creating it."""
        creds = task.tg.creds
        setgid = self.mode & st_.S_ISGID
        owner = creds.fsuid, (self.gid if setgid else creds.fsgid)
        return None if owner == (0, self.gid if setgid else 0) else owner

    def _adopt(self, name: bytes, fid: int, attrs: "m.Rgetattr | m.Attr",
               opened: bool = False) -> "GoferInode":
        child = GoferInode(self.fs, fid, attrs, opened=opened)  # type: ignore[arg-type]
        self.fs.cache(self, name, child)  # type: ignore[attr-defined]
        return child

    def create_open(self, task: "Task", name: bytes, flags: int, mode: int) -> "File":
        """open(O_CREAT) of a new name: created and opened by one Tlcreate, so the open that
        creates a file is not held to the mode it gives the file (as Linux)."""
        fid, attrs, fd = self.p9.lcreate_clone(self.fid, name, flags & _CREATE_FLAGS,
                                               mode & 0o7777, self._owner(task))
        child = self._adopt(name, fid, attrs, opened=True)
        if fd is None:
            raise SyscallError(EOPNOTSUPP)
        file = GoferFile(child, fd, flags)
        file.attr_inode = child  # type: ignore[attr-defined]
        return file

    def create(self, task: "Task", name: bytes, mode: int) -> Inode:
        fid, attrs, fd = self.p9.lcreate_clone(self.fid, name, O_RDWR, mode & 0o7777,
                                               self._owner(task))
        if fd is not None:
            os.close(fd)  # open() asks for the access the application wants
        return self._adopt(name, fid, attrs, opened=True)

    def _made(self, task: "Task", name: bytes, make: m.Message, mode: int | None) -> Inode:
        """The object make just created, walked to (and given to its owner) in one wait."""
        owner = self._owner(task)
        fid, attrs = self.p9.made(self.fid, make, name, owner,
                                  mode if mode is not None and mode & 0o6000 else None)
        return self._adopt(name, fid, attrs)

    def mkdir(self, task: "Task", name: bytes, mode: int) -> Inode:
        return self._made(task, name, m.Tmkdir(self.fid, name, mode & 0o7777, m.NONUNAME), None)

    def mknod(self, task: "Task", name: bytes, mode: int, rdev: int) -> Inode:
        """FIFOs, sockets and regular files (never host device nodes: EPERM)."""
        kind = st_.S_IFMT(mode) or st_.S_IFREG
        if kind in (st_.S_IFCHR, st_.S_IFBLK):
            if not self.fs.writable:  # type: ignore[attr-defined]
                raise SyscallError(EROFS)
            raise SyscallError(EPERM)
        return self._made(task, name, m.Tmknod(self.fid, name, kind | (mode & 0o7777), 0, 0,
                                               m.NONUNAME), mode & 0o7777)

    def symlink(self, task: "Task", name: bytes, target: bytes) -> Inode:
        return self._made(task, name, m.Tsymlink(self.fid, name, target, m.NONUNAME), None)

    def link(self, task: "Task", name: bytes, inode: Inode) -> None:
        c = self.p9
        c.link(self.fid, inode.fid, name)  # type: ignore[attr-defined]
        inode._apply(c.getattr(inode.fid))  # type: ignore[attr-defined]  (nlink: linkable again)

    def open_tmpfile(self, task: "Task", flags: int, mode: int) -> "File":
        """O_TMPFILE: the gofer opens it in this directory (the host file system answers
        EOPNOTSUPP if it has none) and donates the fd; the new fid names the nameless file,
        so linkat can give it a name later (Tlink), unless flags had O_EXCL."""
        fid, attrs, fd = self.p9.tmpfile(self.fid, flags & _CREATE_FLAGS, mode & 0o7777,
                                         self._owner(task))
        node = GoferInode(self.fs, fid, attrs, opened=True)  # type: ignore[arg-type]
        node.linkable = not flags & O_EXCL  # type: ignore[attr-defined]
        if fd is None:
            raise SyscallError(EOPNOTSUPP)
        return GoferFile(node, fd, flags & ~O_DIRECTORY)

    def unlink(self, task: "Task", name: bytes) -> None:
        self.p9.unlinkat(self.fid, name, 0)
        self.fs.uncache(self, name)  # type: ignore[attr-defined]

    def rmdir(self, task: "Task", name: bytes) -> None:
        self.p9.unlinkat(self.fid, name, m.AT_REMOVEDIR)
        self.fs.uncache(self, name)  # type: ignore[attr-defined]

    def rename(self, task: "Task", name: bytes, new_dir: Inode, new_name: bytes,
               flags: int) -> None:
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE):
            task.kernel.warn_once("goferfs:rename-flags",
                                  f"renameat2 flags {flags:#x} on a gofer mount -> EINVAL")
            raise SyscallError(EINVAL)
        c = self.p9
        if flags:
            c.renameat2(self.fid, name, new_dir.fid, new_name, flags)  # type: ignore[attr-defined]
        else:
            c.renameat(self.fid, name, new_dir.fid, new_name)  # type: ignore[attr-defined]
        self.fs.uncache(self, name)  # type: ignore[attr-defined]
        self.fs.uncache(new_dir, new_name)  # type: ignore[attr-defined, arg-type]

    # -- the rest --------------------------------------------------------------------------
    def readlink(self, task: "Task") -> bytes:
        return self.p9.readlink(self.fid)

    def open(self, task: "Task", flags: int) -> "File":
        if self.is_symlink:
            raise SyscallError(ELOOP)
        if self.is_dir:
            return DirectoryFile(self, task, flags)
        flags &= ~(O_CREAT | O_EXCL)
        node = self
        for _ in range(3):
            try:
                return GoferFile(node, node.p9.openfd(node.fid, flags), flags)
            except SyscallError as e:
                # the host put another file under the name since the walk (the gofer reopens
                # by name and checks the object): open what the name holds now
                parent = node.parent() if node.parent is not None else None
                if e.errno != errno.ESTALE or parent is None:
                    raise
                node = parent._walk(node.name)
                if node.is_dir or node.is_symlink:
                    return node.open(task, flags)
        raise SyscallError(errno.ESTALE)

    def _setattr(self, valid: int, **fields: object) -> None:
        """Tsetattr, and the attributes it leaves (permission checks read them) in the same
        packet."""
        self._apply(self.p9.setattr_getattr(self.fid, valid, **fields))  # type: ignore[arg-type]

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
            self._setattr(valid, mode=(mode or 0) & 0o7777, uid=uid or 0, gid=gid or 0,
                          size=size or 0)

    def set_times(self, task: "Task", atime_ns: int | None, mtime_ns: int | None) -> None:
        """utimensat: explicit times (None leaves one alone); the host sets ctime."""
        valid, fields = m.SETATTR_CTIME, {}
        if atime_ns is not None:
            valid |= m.SETATTR_ATIME | m.SETATTR_ATIME_SET
            fields["atime"] = _timespec(atime_ns)
        if mtime_ns is not None:
            valid |= m.SETATTR_MTIME | m.SETATTR_MTIME_SET
            fields["mtime"] = _timespec(mtime_ns)
        self._setattr(valid, **fields)

    # -- extended attributes: the host's (user.* and POSIX ACLs, as HostPathFs) ---------------
    def _xattr_object(self) -> bool:
        """Linux keeps user.* attributes on regular files and directories only."""
        return self.is_dir or st_.S_ISREG(self.mode)

    def getxattr(self, task: "Task", name: bytes) -> bytes:
        if not _xattr_exposed(name) or not self._xattr_object():
            raise SyscallError(errno.ENODATA)
        return self.p9.getxattr(self.fid, name)

    def listxattr(self, task: "Task") -> list[bytes]:
        if not self._xattr_object():
            return []
        return [n for n in self.p9.listxattr(self.fid) if _exposed_quietly(n)]

    def setxattr(self, task: "Task", name: bytes, value: bytes, flags: int) -> None:
        exposed = _xattr_exposed(name)
        if not self.fs.writable:  # type: ignore[attr-defined]
            raise SyscallError(EROFS)
        if not exposed or not self._xattr_object():
            raise SyscallError(EPERM)
        self.p9.setxattr(self.fid, name, value, flags)

    def removexattr(self, task: "Task", name: bytes) -> None:
        exposed = _xattr_exposed(name)
        if not self.fs.writable:  # type: ignore[attr-defined]
            raise SyscallError(EROFS)
        if not exposed or not self._xattr_object():
            raise SyscallError(EPERM)
        self.p9.removexattr(self.fid, name)


def _exposed_quietly(name: bytes) -> bool:
    try:
        return _xattr_exposed(name)
    except SyscallError:
        return False


def _timespec(ns: int) -> tuple[int, int]:
    sec, nsec = divmod(ns, _NS)
    return sec & 0xFFFFFFFFFFFFFFFF, nsec


class GoferFile(HostFile):
    """A regular file opened through the gofer: HostFile's I/O on the donated fd.

    HostFile asks its root only `writable` (fsync of a read-only mount) and host_statx; fd
    attribute calls go to the inode instead (fchmod/fchown/futimens: InodeAttrs ->
    Tsetattr), so the sentry never needs its own rights on the host file."""

    def __init__(self, inode: GoferInode, fd: int, flags: int) -> None:
        super().__init__(inode.fs, fd, open_file_flags(flags), inode.mode, False)  # type: ignore[arg-type]
        self.inode = inode
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
