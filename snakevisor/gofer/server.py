"""The gofer's 9P2000.L server: host files beneath the exported trees, one request at a time.

Fids name :class:`Node` objects, each holding an O_PATH descriptor.  A walk opens one name at a
time with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
RESOLVE_NO_XDEV) and O_NOFOLLOW, so it never follows a symlink at all: walking *to* a
symlink gives a fid of the link itself (Treadlink reads it; the sentry resolves links), and
walking *through* one fails with ENOTDIR.  ``..`` is answered from the server's own tree and
stays at an export's root.  Every other namespace call takes one validated name beneath a
directory fid's descriptor.  Nodes are shared per (parent, name) and kept up to date by our
own renames and unlinks, so a regular file can be reopened by name beneath its parent and
checked to be the same inode (ESTALE otherwise: e.g. replaced on the host meanwhile).

Each request's failure is answered with Rlerror and the host errno; malformed input with
Rlerror(EINVAL) (EOPNOTSUPP for an unknown type); an internal error with Rlerror(EIO) and one
line on stderr.  Never a traceback, never an exit except when the socket closes.
"""
from __future__ import annotations

import array
import ctypes
import errno
import fcntl
import os
import socket
import stat
import struct
import sys
import weakref
from typing import Callable

from snakevisor.gofer import hostcalls
from snakevisor.gofer.confine import Export
from snakevisor.p9 import messages as m

#: open(2) flags a Tlopen/Tlcreate may carry (others are dropped; O_PATH/O_TMPFILE refused)
_OPEN_FLAGS = (os.O_ACCMODE | os.O_TRUNC | os.O_APPEND | os.O_DSYNC | os.O_SYNC | os.O_DIRECT
               | os.O_LARGEFILE | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NOATIME)
_O_TMPFILE_BITS = os.O_TMPFILE & ~os.O_DIRECTORY
_XATTR_CREATE, _XATTR_REPLACE, _XATTR_SIZE_MAX = 1, 2, 65536
_F_OFD_GETLK, _F_OFD_SETLK = 36, 37
_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2
_FLOCK = struct.Struct("<hhqqi4x")
_INT64_MAX = (1 << 63) - 1
_DT = {stat.S_IFDIR: 4, stat.S_IFLNK: 10, stat.S_IFREG: 8, stat.S_IFIFO: 1, stat.S_IFSOCK: 12,
       stat.S_IFCHR: 2, stat.S_IFBLK: 6}


class Lerror(Exception):
    """A handler's failure with this errno (answered as Rlerror)."""

    def __init__(self, err: int) -> None:
        super().__init__(err)
        self.errno = err


class Node:
    """One file the sentry has walked to: an O_PATH fd plus where it lives in the tree."""

    __slots__ = ("fd", "parent", "name", "root", "fmt", "dev", "ino", "children", "__weakref__")

    def __init__(self, fd: int, parent: "Node | None", name: bytes, st: os.stat_result,
                 root: bool = False) -> None:
        self.fd = fd
        self.parent = parent  #: None once unlinked or replaced (and for directory exports)
        self.name = name
        self.root = root  #: an export's root: ".." stays here, reopen may cross its mount
        self.fmt = stat.S_IFMT(st.st_mode)
        self.dev, self.ino = st.st_dev, st.st_ino
        self.children: weakref.WeakValueDictionary[bytes, Node] = weakref.WeakValueDictionary()

    def __del__(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass


class Fid:
    """A client's handle: a node, and once opened the open descriptor (or xattr state)."""

    __slots__ = ("node", "uid", "fd", "flags", "xattr_data", "xattr_new")

    def __init__(self, node: Node, uid: int) -> None:
        self.node = node
        self.uid = uid  #: n_uname of the attach (NONUNAME: leave owners as created)
        self.fd = -1
        self.flags = 0
        self.xattr_data: bytes | None = None  #: a Txattrwalk fid's value or name list
        self.xattr_new: tuple[bytes, int, int, bytearray] | None = None  # name, size, flags, buf

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _qid_parts(st: os.stat_result) -> tuple[int, int]:
    fmt = stat.S_IFMT(st.st_mode)
    qtype = m.QTDIR if fmt == stat.S_IFDIR else m.QTSYMLINK if fmt == stat.S_IFLNK else m.QTFILE
    return qtype, (st.st_mtime_ns ^ (st.st_size << 8)) & 0xFFFFFFFF


def qid_of(st: os.stat_result) -> m.Qid:
    return m.Qid(*_qid_parts(st), st.st_ino)


def _check_name(name: bytes) -> None:
    """One path component: not empty, '.', '..', nor containing '/' or NUL."""
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise Lerror(errno.EINVAL)
    if len(name) > 255:
        raise Lerror(errno.ENAMETOOLONG)


def _open_flags(flags: int) -> int:
    if flags & os.O_PATH:
        raise Lerror(errno.EINVAL)
    if flags & _O_TMPFILE_BITS:
        raise Lerror(errno.EOPNOTSUPP)
    if flags & os.O_ACCMODE == os.O_ACCMODE:
        raise Lerror(errno.EINVAL)
    return (flags & _OPEN_FLAGS) | os.O_NOCTTY


def _offset(value: int) -> int:
    if value > _INT64_MAX:
        raise Lerror(errno.EINVAL)
    return value


class Server:
    """The 9P2000.L session on one SOCK_SEQPACKET socket."""

    def __init__(self, sock: socket.socket, exports: list[Export], debug: bool = False) -> None:
        self.sock = sock
        self.debug = debug
        self.msize = m.MAX_MSIZE
        self.donate = False  #: the client negotiated VERSION_FDS
        self.fids: dict[int, Fid] = {}
        self.roots: dict[bytes, Node] = {}
        for e in exports:
            st = os.fstat(e.fd)
            parent = None
            if e.parent_fd is not None:  # a single-file volume: keep its mount point's parent
                parent = Node(e.parent_fd, None, b"", os.fstat(e.parent_fd), root=True)
            self.roots[e.aname] = Node(e.fd, parent, e.name, st, root=True)
        self._dents = ctypes.create_string_buffer(m.MAX_MSIZE)
        self.handlers: dict[type[m.Message], Callable] = {
            m.Tversion: self.version, m.Tattach: self.attach, m.Tflush: self.flush,
            m.Twalk: self.walk, m.Tclunk: self.clunk, m.Tgetattr: self.getattr,
            m.Tsetattr: self.setattr, m.Tlopen: self.lopen, m.Tlcreate: self.lcreate,
            m.Tread: self.read, m.Twrite: self.write, m.Treaddir: self.readdir,
            m.Tmkdir: self.mkdir, m.Tmknod: self.mknod, m.Tsymlink: self.symlink,
            m.Tlink: self.link, m.Trenameat: self.renameat, m.Tunlinkat: self.unlinkat,
            m.Treadlink: self.readlink, m.Tstatfs: self.statfs, m.Tfsync: self.fsync,
            m.Txattrwalk: self.xattrwalk, m.Txattrcreate: self.xattrcreate,
            m.Tlock: self.lock, m.Tgetlock: self.getlock,
            m.Twalkstat: self.walkstat, m.Trenameat2: self.renameat2, m.Ttmpfile: self.tmpfile,
            m.Topenfd: self.openfd,
        }

    # --- the loop ---------------------------------------------------------------------------

    def serve(self) -> None:
        """Answer requests until the peer closes the socket."""
        while True:
            try:
                data, anc, flags, _ = self.sock.recvmsg(m.MAX_MSIZE, socket.CMSG_SPACE(16 * 4),
                                                        socket.MSG_CMSG_CLOEXEC)
            except (ConnectionResetError, BrokenPipeError):
                return
            _close_passed_fds(anc)  # the client never sends fds
            if not data:
                return
            if flags & socket.MSG_TRUNC:
                replies = [self._malformed(data, m.ProtocolError("packet larger than msize"))]
            else:
                replies = [self.handle(part) for part in self._requests(data)]
            fds = array.array("i", [fd for _, fd in replies if fd is not None])
            packet = b"".join(reply for reply, _ in replies)
            try:
                if fds:
                    self.sock.sendmsg([packet], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
                else:
                    self.sock.send(packet)
            except (ConnectionResetError, BrokenPipeError):
                return
            finally:
                for fd in fds:  # the copies made for the reply (its fid may be gone already)
                    os.close(fd)

    def _requests(self, data: bytes) -> list[bytes]:
        """The requests of one packet: several back to back in our dialect."""
        if not self.donate or len(data) < 4 or int.from_bytes(data[:4], "little") == len(data):
            return [data]
        try:
            return m.split_packet(data)
        except m.ProtocolError:
            return [data]  # answered as one malformed request

    def handle(self, data: bytes) -> tuple[bytes, int | None]:
        """One request -> (reply, fd to donate or None: a copy, closed once sent)."""
        try:
            tag, msg = m.decode(data, self.msize)
        except m.ProtocolError as e:
            return self._malformed(data, e)
        if self.debug:
            print(f"gofer: <- {tag} {msg}", file=sys.stderr, flush=True)
        handler = self.handlers.get(type(msg))
        fd = None
        try:
            if handler is None:
                raise Lerror(errno.EINVAL)  # an R-message sent to the server
            reply = handler(msg)
            if isinstance(reply, tuple):
                reply, fd = reply
        except Lerror as e:
            reply = m.Rlerror(e.errno)
        except OSError as e:
            reply = m.Rlerror(e.errno or errno.EIO)
        except Exception as e:  # a bug must cost one request, not the container's files
            print(f"gofer: internal error on {type(msg).__name__}: {e!r}", file=sys.stderr,
                  flush=True)
            reply = m.Rlerror(errno.EIO)
        if self.debug:
            print(f"gofer: -> {tag} {reply}" + (f" fd {fd}" if fd is not None else ""),
                  file=sys.stderr, flush=True)
        try:
            return m.encode(reply, tag), fd
        except m.ProtocolError as e:  # a host value that does not fit its field
            print(f"gofer: cannot answer {type(msg).__name__}: {e}", file=sys.stderr, flush=True)
            if fd is not None:
                os.close(fd)
            return m.encode(m.Rlerror(errno.EIO), tag), None

    def _malformed(self, data: bytes, e: m.ProtocolError) -> tuple[bytes, None]:
        if self.debug:
            print(f"gofer: malformed request: {e}", file=sys.stderr, flush=True)
        tag = e.tag if e.tag is not None else m.NOTAG
        if e.tag is None and len(data) >= 7:
            tag = m.peek_header(data)[2]
        err = errno.EOPNOTSUPP if isinstance(e, m.UnknownMessage) else errno.EINVAL
        return m.encode(m.Rlerror(err), tag), None

    # --- helpers ----------------------------------------------------------------------------

    def _fid(self, n: int) -> Fid:
        fid = self.fids.get(n)
        if fid is None:
            raise Lerror(errno.EBADF)
        return fid

    def _dir(self, n: int) -> Node:
        node = self._fid(n).node
        if node.fmt != stat.S_IFDIR:
            raise Lerror(errno.ENOTDIR)
        return node

    def _new_fid(self, n: int, node: Node, uid: int) -> None:
        if n in self.fids or n == m.NOFID:
            raise Lerror(errno.EEXIST)
        self.fids[n] = Fid(node, uid)

    def _lookup(self, node: Node, name: bytes) -> tuple[Node, os.stat_result]:
        """One walk step from a directory node, revalidated against the host every time.

        A name already walked is checked with one fstatat (no symlink followed, no second
        component): the same (dev, ino) means the same object, whose O_PATH fd is reused.
        Anything else (a new name, another object, a mount point: its root's dev differs)
        takes the confined openat2."""
        if node.fmt != stat.S_IFDIR:
            raise Lerror(errno.ENOTDIR)
        if name == b"..":
            up = node if node.root else node.parent
            if up is None:
                raise Lerror(errno.ENOENT)  # an unlinked directory
            return up, os.fstat(up.fd)
        _check_name(name)
        child = node.children.get(name)
        if child is not None:
            st = os.stat(name, dir_fd=node.fd, follow_symlinks=False)
            if (child.dev, child.ino) == (st.st_dev, st.st_ino) and \
                    stat.S_IFMT(st.st_mode) == child.fmt:
                return child, st
        fd = hostcalls.open_beneath(node.fd, name, os.O_PATH)
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        child = node.children.get(name)
        if child is not None and (child.dev, child.ino) == (st.st_dev, st.st_ino):
            os.close(fd)
            return child, st
        if child is not None:
            child.parent = None  # that name now means another file
        child = Node(fd, node, name, st)
        node.children[name] = child
        return child, st

    def _reopen(self, node: Node, flags: int) -> int:
        """A real descriptor for a node's directory or regular file, opened with flags."""
        if node.fmt == stat.S_IFDIR:
            return hostcalls.open_beneath(node.fd, b".", flags | os.O_DIRECTORY)
        if node.fmt == stat.S_IFLNK:
            raise Lerror(errno.ELOOP)
        if node.fmt != stat.S_IFREG:
            raise Lerror(errno.EPERM)  # FIFOs, sockets and devices are the sentry's own
        if node.parent is None:
            raise Lerror(errno.ESTALE)
        resolve = hostcalls.ONE_STEP
        if node.root:  # a single-file volume is itself a mount point
            resolve &= ~hostcalls.RESOLVE_NO_XDEV
        fd = hostcalls.open_beneath(node.parent.fd, node.name, flags, resolve=resolve)
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (node.dev, node.ino):
            os.close(fd)
            raise Lerror(errno.ESTALE)
        return fd

    def _owner(self, fd: int, uid: int, gid: int, mode: int = 0) -> None:
        """Give a new object the sandbox user's uid and the requested gid.

        chown clears set-ID bits even for root, so they are put back afterwards.
        """
        if uid == m.NONUNAME and gid == m.NONUNAME:
            return
        hostcalls.chown_fd(fd, -1 if uid == m.NONUNAME else uid,
                           -1 if gid == m.NONUNAME else gid)
        if mode & (stat.S_ISUID | stat.S_ISGID):
            os.fchmod(fd, mode & 0o7777)

    def _created(self, dnode: Node, name: bytes, uid: int, gid: int, mode: int) -> m.Qid:
        """Own and qid a just-created directory, symlink or node (undone if owning fails)."""
        try:
            node, st = self._lookup(dnode, name)
            if node.fmt in (stat.S_IFDIR, stat.S_IFREG):
                fd = self._reopen(node, os.O_RDONLY)
                try:
                    self._owner(fd, uid, gid, mode)
                    st = os.fstat(fd)
                finally:
                    os.close(fd)
            else:
                self._owner_path(node, uid, gid)
                st = os.fstat(node.fd)
            return qid_of(st)
        except OSError:
            self._unlink_quietly(dnode, name)
            raise

    def _owner_path(self, node: Node, uid: int, gid: int) -> None:
        if uid != m.NONUNAME or gid != m.NONUNAME:
            hostcalls.chown_fd(node.fd, -1 if uid == m.NONUNAME else uid,
                               -1 if gid == m.NONUNAME else gid)

    def _unlink_quietly(self, dnode: Node, name: bytes) -> None:
        try:
            os.unlink(name, dir_fd=dnode.fd)
        except OSError:
            try:
                os.rmdir(name, dir_fd=dnode.fd)
            except OSError:
                pass
        self._forget(dnode, name)

    @staticmethod
    def _forget(dnode: Node, name: bytes) -> None:
        child = dnode.children.pop(name, None)
        if child is not None:
            child.parent = None

    # --- session ----------------------------------------------------------------------------

    def version(self, msg: m.Tversion) -> m.Rversion:
        for fid in self.fids.values():
            fid.close()
        self.fids.clear()
        msize = min(msg.msize, m.MAX_MSIZE)
        if not msg.version.startswith(m.VERSION) or msize < m.MIN_MSIZE:
            return m.Rversion(msize, m.UNKNOWN_VERSION)
        self.msize = msize
        self.donate = (msg.version == m.VERSION_FDS
                       and self.sock.family == socket.AF_UNIX)
        return m.Rversion(msize, m.VERSION_FDS if self.donate else m.VERSION)

    def attach(self, msg: m.Tattach) -> m.Rattach:
        if msg.afid != m.NOFID:
            raise Lerror(errno.EINVAL)  # no authentication: the socket is the credential
        root = self.roots.get(msg.aname or b"/")
        if root is None:
            raise Lerror(errno.ENOENT)
        self._new_fid(msg.fid, root, msg.n_uname)
        return m.Rattach(qid_of(os.fstat(root.fd)))

    def flush(self, msg: m.Tflush) -> m.Rflush:
        return m.Rflush()  # requests are answered in order, so nothing is ever in flight

    def clunk(self, msg: m.Tclunk) -> m.Rclunk:
        fid = self._fid(msg.fid)
        del self.fids[msg.fid]
        try:
            if fid.xattr_new is not None:
                self._commit_xattr(fid)
        finally:
            fid.close()
        return m.Rclunk()

    # --- walking and attributes -------------------------------------------------------------

    def walk(self, msg: m.Twalk) -> m.Rwalk:
        fid = self._fid(msg.fid)
        if msg.newfid != msg.fid and msg.newfid in self.fids:
            raise Lerror(errno.EEXIST)
        node, stats, whole = self._walk_names(fid.node, msg.wnames)
        if whole:
            self._bind_walked(msg.fid, fid, msg.newfid, node)
        return m.Rwalk(tuple(qid_of(st) for st in stats))

    def walkstat(self, msg: m.Twalkstat) -> m.Rwalkstat:
        """Twalk answering the attributes of fid and of every node walked (our dialect)."""
        fid = self._fid(msg.fid)
        create = msg.newfid != m.NOFID
        if create and msg.newfid != msg.fid and msg.newfid in self.fids:
            raise Lerror(errno.EEXIST)
        start = os.fstat(fid.node.fd)
        node, stats, whole = self._walk_names(fid.node, msg.wnames)
        if whole and create:
            self._bind_walked(msg.fid, fid, msg.newfid, node)
        return m.Rwalkstat(b"".join(_packed(st) for st in [start, *stats]))

    def _walk_names(self, node: Node, names: tuple[bytes, ...]
                    ) -> tuple[Node, list[os.stat_result], bool]:
        """Walk names one at a time from node: (where it ended, each step's stat, whether
        every name was walked).  A failing first name is the request's error."""
        stats: list[os.stat_result] = []
        for i, name in enumerate(names):
            try:
                node, st = self._lookup(node, name)
            except (OSError, Lerror):
                if i == 0:
                    raise
                return node, stats, False  # partial walk: newfid is not created
            stats.append(st)
        return node, stats, True

    def _bind_walked(self, number: int, fid: Fid, newfid: int, node: Node) -> None:
        """A complete walk's result: newfid names node (when it is the walked fid itself,
        only an unopened one may move)."""
        if newfid == number:
            if fid.fd >= 0 or fid.xattr_data is not None or fid.xattr_new is not None:
                raise Lerror(errno.EBUSY)
            fid.node = node
        else:
            self._new_fid(newfid, node, fid.uid)

    def getattr(self, msg: m.Tgetattr) -> m.Rgetattr:
        return m.Rgetattr(m.GETATTR_BASIC, *_attr(os.fstat(self._fid(msg.fid).node.fd)),
                          0, 0, 0, 0)

    def setattr(self, msg: m.Tsetattr) -> m.Rsetattr:
        """size, then owners (which clear set-ID bits), then mode, then times (so they stick)."""
        fid = self._fid(msg.fid)
        node, v = fid.node, msg.valid
        if v & m.SETATTR_SIZE:
            if node.fmt == stat.S_IFDIR:
                raise Lerror(errno.EISDIR)
            if node.fmt != stat.S_IFREG:
                raise Lerror(errno.EINVAL)
            fd = self._reopen(node, os.O_WRONLY)
            try:
                os.ftruncate(fd, _offset(msg.size))
            finally:
                os.close(fd)
        if v & (m.SETATTR_UID | m.SETATTR_GID):
            hostcalls.chown_fd(node.fd, msg.uid if v & m.SETATTR_UID else -1,
                               msg.gid if v & m.SETATTR_GID else -1)
        if v & m.SETATTR_MODE:
            self._chmod(node, msg.mode & 0o7777)
        if v & (m.SETATTR_ATIME | m.SETATTR_MTIME):
            def when(bit: int, setbit: int, sec: int, nsec: int) -> tuple[int, int]:
                if not v & bit:
                    return 0, hostcalls.UTIME_OMIT
                if not v & setbit:
                    return 0, hostcalls.UTIME_NOW
                if sec > _INT64_MAX or nsec >= 10**9:
                    raise Lerror(errno.EINVAL)
                return sec, nsec
            hostcalls.utimens_fd(node.fd, when(m.SETATTR_ATIME, m.SETATTR_ATIME_SET,
                                               msg.atime_sec, msg.atime_nsec),
                                 when(m.SETATTR_MTIME, m.SETATTR_MTIME_SET,
                                      msg.mtime_sec, msg.mtime_nsec))
        return m.Rsetattr()

    def _chmod(self, node: Node, mode: int) -> None:
        try:
            hostcalls.chmod_fd(node.fd, mode)
        except OSError as e:
            if e.errno != errno.ENOSYS:
                raise
            fd = self._reopen(node, os.O_RDONLY)  # before Linux 6.6: fchmod on a real fd
            try:
                os.fchmod(fd, mode)
            finally:
                os.close(fd)

    def statfs(self, msg: m.Tstatfs) -> m.Rstatfs:
        return m.Rstatfs(*hostcalls.statfs_fd(self._fid(msg.fid).node.fd))

    def readlink(self, msg: m.Treadlink) -> m.Rreadlink:
        node = self._fid(msg.fid).node
        if node.fmt != stat.S_IFLNK:
            raise Lerror(errno.EINVAL)
        return m.Rreadlink(os.readlink(b"", dir_fd=node.fd))

    # --- open files ---------------------------------------------------------------------------

    def _opened(self, fid: Fid, fd: int, flags: int) -> tuple[m.Qid, int, int | None]:
        fid.fd, fid.flags = fd, flags
        st = os.fstat(fd)
        donate = _dup(fd) if self.donate and stat.S_ISREG(st.st_mode) else None
        return qid_of(st), self.msize - m.IOHDRSZ, donate

    def openfd(self, msg: m.Topenfd) -> tuple[m.Ropenfd, int]:
        """Open the regular file fid names and donate the descriptor (our dialect); the fid
        stays unopened, so the same fid serves every open of the file."""
        node = self._fid(msg.fid).node
        if node.fmt != stat.S_IFREG:
            raise Lerror(errno.EISDIR if node.fmt == stat.S_IFDIR else
                         errno.ELOOP if node.fmt == stat.S_IFLNK else errno.EPERM)
        if not self.donate:
            raise Lerror(errno.EOPNOTSUPP)
        fd = self._reopen(node, _open_flags(msg.flags))  # the reply's: closed once sent
        return m.Ropenfd(m.Qid(m.QTFILE, 0, node.ino), self.msize - m.IOHDRSZ), fd

    def lopen(self, msg: m.Tlopen) -> tuple[m.Rlopen, int | None]:
        fid = self._fid(msg.fid)
        if fid.fd >= 0 or fid.xattr_data is not None or fid.xattr_new is not None:
            raise Lerror(errno.EBUSY)
        flags = _open_flags(msg.flags)
        qid, iounit, donate = self._opened(fid, self._reopen(fid.node, flags), flags)
        return m.Rlopen(qid, iounit), donate

    def lcreate(self, msg: m.Tlcreate) -> tuple[m.Rlcreate, int | None]:
        fid = self._fid(msg.fid)
        if fid.fd >= 0:
            raise Lerror(errno.EBUSY)
        dnode = self._dir(msg.fid)
        _check_name(msg.name)
        flags = _open_flags(msg.flags) & ~os.O_DIRECTORY
        mode = msg.mode & 0o7777
        fd = hostcalls.open_beneath(dnode.fd, msg.name, flags | os.O_CREAT | os.O_EXCL, mode)
        try:
            self._owner(fd, fid.uid, msg.gid, mode)
            node, _ = self._lookup(dnode, msg.name)
            if node.fmt != stat.S_IFREG or (node.dev, node.ino) != _dev_ino(fd):
                raise Lerror(errno.ESTALE)
        except BaseException:
            os.close(fd)
            self._unlink_quietly(dnode, msg.name)
            raise
        fid.node = node
        qid, iounit, donate = self._opened(fid, fd, flags)
        return m.Rlcreate(qid, iounit), donate

    def tmpfile(self, msg: m.Ttmpfile) -> tuple[m.Rtmpfile, int | None]:
        """O_TMPFILE in a directory (our dialect): newfid names the nameless file, whose own
        open descriptor is its node's (Tlink names it with linkat AT_EMPTY_PATH)."""
        dfid = self._fid(msg.dfid)
        dnode = self._dir(msg.dfid)
        if msg.newfid in self.fids or msg.newfid == m.NOFID:
            raise Lerror(errno.EEXIST)
        if msg.flags & os.O_ACCMODE not in (os.O_WRONLY, os.O_RDWR):
            raise Lerror(errno.EINVAL)
        flags = (msg.flags & (_OPEN_FLAGS | os.O_EXCL) & ~os.O_TRUNC) | os.O_TMPFILE | os.O_NOCTTY
        mode = msg.mode & 0o7777
        fd = hostcalls.open_beneath(dnode.fd, b".", flags, mode)
        try:
            self._owner(fd, dfid.uid, msg.gid, mode)
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fids[msg.newfid] = Fid(Node(fd, None, b"", st), dfid.uid)
        return m.Rtmpfile(qid_of(st), self.msize - m.IOHDRSZ), _dup(fd) if self.donate else None

    def read(self, msg: m.Tread) -> m.Rread:
        fid = self._fid(msg.fid)
        count = min(msg.count, self.msize - m.IOHDRSZ)
        if fid.xattr_data is not None:
            off = _offset(msg.offset)
            return m.Rread(fid.xattr_data[off:off + count])
        if fid.fd < 0:
            raise Lerror(errno.EBADF)
        return m.Rread(os.pread(fid.fd, count, _offset(msg.offset)))

    def write(self, msg: m.Twrite) -> m.Rwrite:
        fid = self._fid(msg.fid)
        if fid.xattr_new is not None:
            name, size, flags, buf = fid.xattr_new
            if msg.offset != len(buf) or len(buf) + len(msg.data) > size:
                raise Lerror(errno.EINVAL)
            buf += msg.data
            return m.Rwrite(len(msg.data))
        if fid.fd < 0:
            raise Lerror(errno.EBADF)
        return m.Rwrite(os.pwrite(fid.fd, msg.data, _offset(msg.offset)))

    def fsync(self, msg: m.Tfsync) -> m.Rfsync:
        fid = self._fid(msg.fid)
        if fid.fd < 0:
            raise Lerror(errno.EBADF)
        (os.fdatasync if msg.datasync else os.fsync)(fid.fd)
        return m.Rfsync()

    def readdir(self, msg: m.Treaddir) -> m.Rreaddir:
        """Entries from the host's getdents64 offset ``msg.offset`` (0 = start)."""
        fid = self._fid(msg.fid)
        if fid.fd < 0 or fid.node.fmt != stat.S_IFDIR:
            raise Lerror(errno.EBADF if fid.fd < 0 else errno.ENOTDIR)
        count = min(msg.count, self.msize - m.IOHDRSZ)
        os.lseek(fid.fd, _offset(msg.offset), os.SEEK_SET)
        out, used = [], 0
        while True:
            # a host record is about the size of ours: read about what fits, plus one name
            entries = hostcalls.getdents(fid.fd, self._dents, count - used + 300)
            if not entries:
                break
            for ino, doff, dtype, name in entries:
                size = m.dirent_size(name)
                if used + size > count:
                    if not out:
                        raise Lerror(errno.EINVAL)  # count too small for one entry
                    return m.Rreaddir(b"".join(out))
                qtype = m.QTDIR if dtype == 4 else m.QTSYMLINK if dtype == 10 else m.QTFILE
                out.append(m.encode_dirent(m.Dirent(m.Qid(qtype, 0, ino), doff, dtype, name)))
                used += size
        return m.Rreaddir(b"".join(out))

    # --- namespace changes --------------------------------------------------------------------

    def mkdir(self, msg: m.Tmkdir) -> m.Rmkdir:
        dfid = self._fid(msg.dfid)
        dnode = self._dir(msg.dfid)
        _check_name(msg.name)
        os.mkdir(msg.name, msg.mode & 0o7777, dir_fd=dnode.fd)
        return m.Rmkdir(self._created(dnode, msg.name, dfid.uid, msg.gid, msg.mode & 0o7777))

    def mknod(self, msg: m.Tmknod) -> m.Rmknod:
        dfid = self._fid(msg.dfid)
        dnode = self._dir(msg.dfid)
        _check_name(msg.name)
        fmt = stat.S_IFMT(msg.mode) or stat.S_IFREG
        if fmt in (stat.S_IFCHR, stat.S_IFBLK):
            raise Lerror(errno.EPERM)  # devices are emulated by the sentry, never host nodes
        if fmt not in (stat.S_IFREG, stat.S_IFIFO, stat.S_IFSOCK):
            raise Lerror(errno.EINVAL)
        os.mknod(msg.name, fmt | (msg.mode & 0o7777), 0, dir_fd=dnode.fd)
        return m.Rmknod(self._created(dnode, msg.name, dfid.uid, msg.gid, msg.mode & 0o7777))

    def symlink(self, msg: m.Tsymlink) -> m.Rsymlink:
        dfid = self._fid(msg.fid)
        dnode = self._dir(msg.fid)
        _check_name(msg.name)
        if not msg.symtgt or b"\0" in msg.symtgt:
            raise Lerror(errno.ENOENT if not msg.symtgt else errno.EINVAL)
        os.symlink(msg.symtgt, msg.name, dir_fd=dnode.fd)
        return m.Rsymlink(self._created(dnode, msg.name, dfid.uid, msg.gid, 0))

    def link(self, msg: m.Tlink) -> m.Rlink:
        dnode = self._dir(msg.dfid)
        target = self._fid(msg.fid).node
        _check_name(msg.name)
        if target.fmt == stat.S_IFDIR:
            raise Lerror(errno.EPERM)
        hostcalls.link_fd(target.fd, dnode.fd, msg.name)
        return m.Rlink()

    def renameat(self, msg: m.Trenameat) -> m.Rrenameat:
        old, new = self._dir(msg.olddirfid), self._dir(msg.newdirfid)
        _check_name(msg.oldname)
        _check_name(msg.newname)
        os.rename(msg.oldname, msg.newname, src_dir_fd=old.fd, dst_dir_fd=new.fd)
        self._moved(old, msg.oldname, new, msg.newname)
        return m.Rrenameat()

    def renameat2(self, msg: m.Trenameat2) -> m.Rrenameat2:
        """renameat2 with RENAME_NOREPLACE or RENAME_EXCHANGE (our dialect); the node tree
        follows: an exchange swaps the two names' nodes."""
        old, new = self._dir(msg.olddirfid), self._dir(msg.newdirfid)
        _check_name(msg.oldname)
        _check_name(msg.newname)
        if msg.flags & ~(_RENAME_NOREPLACE | _RENAME_EXCHANGE) or \
                msg.flags == _RENAME_NOREPLACE | _RENAME_EXCHANGE:
            raise Lerror(errno.EINVAL)  # RENAME_WHITEOUT makes a device node: never here
        hostcalls.rename_at(old.fd, msg.oldname, new.fd, msg.newname, msg.flags)
        if not msg.flags & _RENAME_EXCHANGE:
            self._moved(old, msg.oldname, new, msg.newname)
            return m.Rrenameat2()
        a, b = old.children.pop(msg.oldname, None), new.children.pop(msg.newname, None)
        if a is not None:
            a.parent, a.name = new, msg.newname
            new.children[msg.newname] = a
        if b is not None:
            b.parent, b.name = old, msg.oldname
            old.children[msg.oldname] = b
        return m.Rrenameat2()

    def _moved(self, old: Node, oldname: bytes, new: Node, newname: bytes) -> None:
        """Our tree after a rename that replaced whatever newname was."""
        moved = old.children.pop(oldname, None)
        self._forget(new, newname)
        if moved is not None:
            moved.parent, moved.name = new, newname
            new.children[newname] = moved

    def unlinkat(self, msg: m.Tunlinkat) -> m.Runlinkat:
        dnode = self._dir(msg.dirfid)
        _check_name(msg.name)
        if msg.flags & ~m.AT_REMOVEDIR:
            raise Lerror(errno.EINVAL)
        if msg.flags & m.AT_REMOVEDIR:
            os.rmdir(msg.name, dir_fd=dnode.fd)
        else:
            os.unlink(msg.name, dir_fd=dnode.fd)
        self._forget(dnode, msg.name)
        return m.Runlinkat()

    # --- extended attributes ------------------------------------------------------------------

    def _xattr_fd(self, node: Node) -> int:
        if node.fmt not in (stat.S_IFDIR, stat.S_IFREG):
            raise Lerror(errno.EOPNOTSUPP)  # no way to reach a symlink's own xattrs by fd
        return self._reopen(node, os.O_RDONLY | os.O_NONBLOCK)

    def xattrwalk(self, msg: m.Txattrwalk) -> m.Rxattrwalk:
        """newfid reads the value of xattr ``name``, or the NUL-separated list if name is empty."""
        fid = self._fid(msg.fid)
        if msg.newfid != msg.fid and msg.newfid in self.fids:
            raise Lerror(errno.EEXIST)
        if b"\0" in msg.name:
            raise Lerror(errno.EINVAL)
        fd = self._xattr_fd(fid.node)
        try:
            if msg.name:
                data = os.getxattr(fd, msg.name)
            else:
                data = b"".join(os.fsencode(n) + b"\0" for n in os.listxattr(fd))
        finally:
            os.close(fd)
        if msg.newfid == msg.fid:
            if fid.fd >= 0:
                raise Lerror(errno.EBUSY)
            new = fid
        else:
            self._new_fid(msg.newfid, fid.node, fid.uid)
            new = self.fids[msg.newfid]
        new.xattr_data = data
        return m.Rxattrwalk(len(data))

    def xattrcreate(self, msg: m.Txattrcreate) -> m.Rxattrcreate:
        """fid becomes a sink for the value; the xattr is set when it is clunked (removed with
        size 0, or in our dialect with XATTR_REMOVE)."""
        fid = self._fid(msg.fid)
        if fid.fd >= 0 or fid.xattr_data is not None or fid.xattr_new is not None:
            raise Lerror(errno.EBUSY)
        allowed = _XATTR_CREATE | _XATTR_REPLACE | (m.XATTR_REMOVE if self.donate else 0)
        if not msg.name or b"\0" in msg.name or msg.flags & ~allowed or \
                (msg.flags & m.XATTR_REMOVE and msg.attr_size):
            raise Lerror(errno.EINVAL)
        if msg.attr_size > _XATTR_SIZE_MAX:
            raise Lerror(errno.E2BIG)
        if fid.node.fmt not in (stat.S_IFDIR, stat.S_IFREG):
            raise Lerror(errno.EOPNOTSUPP)
        fid.xattr_new = (msg.name, msg.attr_size, msg.flags, bytearray())
        return m.Rxattrcreate()

    def _commit_xattr(self, fid: Fid) -> None:
        name, size, flags, buf = fid.xattr_new
        fid.xattr_new = None
        if len(buf) != size:
            raise Lerror(errno.EINVAL)
        fd = self._xattr_fd(fid.node)
        try:
            if flags & m.XATTR_REMOVE or (size == 0 and not self.donate):
                os.removexattr(fd, name)  # plain 9P: size 0 removes
            else:
                os.setxattr(fd, name, bytes(buf), flags)
        finally:
            os.close(fd)

    # --- locks (open file description locks: one owner per opened fid) -------------------------

    def _lock_fd(self, fid_n: int, ltype: int, start: int, length: int) -> int:
        fid = self._fid(fid_n)
        if fid.fd < 0:
            raise Lerror(errno.EBADF)
        if ltype not in (m.LOCK_TYPE_RDLCK, m.LOCK_TYPE_WRLCK, m.LOCK_TYPE_UNLCK):
            raise Lerror(errno.EINVAL)
        _offset(start)
        _offset(length)
        return fid.fd

    def lock(self, msg: m.Tlock) -> m.Rlock:
        fd = self._lock_fd(msg.fid, msg.type, msg.start, msg.length)
        try:
            fcntl.fcntl(fd, _F_OFD_SETLK, _FLOCK.pack(msg.type, os.SEEK_SET, msg.start,
                                                       msg.length, 0))
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return m.Rlock(m.LOCK_BLOCKED)  # the client retries or answers EAGAIN
            raise
        return m.Rlock(m.LOCK_SUCCESS)

    def getlock(self, msg: m.Tgetlock) -> m.Rgetlock:
        fd = self._lock_fd(msg.fid, msg.type, msg.start, msg.length)
        out = fcntl.fcntl(fd, _F_OFD_GETLK, _FLOCK.pack(msg.type, os.SEEK_SET, msg.start,
                                                         msg.length, 0))
        ltype, _, start, length, pid = _FLOCK.unpack(out)
        if ltype == m.LOCK_TYPE_UNLCK:
            return m.Rgetlock(ltype, msg.start, msg.length, msg.proc_id, msg.client_id)
        return m.Rgetlock(ltype, start, length, pid & 0xFFFFFFFF, b"")


def _packed(st: os.stat_result) -> bytes:
    """st as one Rwalkstat record."""
    return m.pack_attr(*_qid_parts(st), st)


def _attr(st: os.stat_result) -> m.Attr:
    return m.Attr(qid_of(st), st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_rdev,
                  st.st_size, st.st_blksize, st.st_blocks, *_time(st.st_atime_ns),
                  *_time(st.st_mtime_ns), *_time(st.st_ctime_ns))


def _time(ns: int) -> tuple[int, int]:
    """(sec, nsec) with a time before 1970 as its two's complement, as Linux reads it."""
    sec, nsec = divmod(ns, 10**9)
    return sec & 0xFFFFFFFFFFFFFFFF, nsec


def _dup(fd: int) -> int:
    """A copy of fd for a reply to donate: a later request of the same packet may clunk the
    fid, closing fd itself, before the reply is sent."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 0)


def _dev_ino(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _close_passed_fds(anc: list) -> None:
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            for fd in fds:
                os.close(fd)
