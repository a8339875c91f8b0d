"""A synchronous 9P2000.L client for the sentry: typed calls, fid allocation, donated fds.

One request is outstanding at a time (each call sends and waits for its reply), but every
request still carries its own tag and replies are checked against it.  A reply of Rlerror
raises SyscallError(ecode); a broken connection or a malformed reply raises SyscallError(EIO)
and every later call fails the same way (``self.broken`` says why).

The transport is a unix SOCK_SEQPACKET socket (one message per packet, fd donation as
described in messages.py) or any SOCK_STREAM socket (plain 9P2000.L, e.g. diod).
"""
from __future__ import annotations

import array
import errno
import os
import socket
from typing import Callable, NoReturn

from snakevisor.kernel.errors import SyscallError
from snakevisor.p9 import messages as m
from snakevisor.p9.messages import Dirent, Qid

_PIPELINE = 8  #: requests sent before reading replies (a unix socket queues >= 10 packets)
_MAX_FDS = 4  # room for a few fds so that a misbehaving server's extras are seen and closed


class Client:
    """One 9P session; Tversion is sent by the constructor."""

    def __init__(self, sock: socket.socket, msize: int = m.MAX_MSIZE, want_fds: bool = True) -> None:
        self.sock = sock
        self.stream = sock.type == socket.SOCK_STREAM
        self.broken: str | None = None
        self._tag = 0
        self._next_fid = 0
        self._free_fids: list[int] = []
        self.msize = max(msize, m.MIN_MSIZE)
        offer = m.VERSION_FDS if want_fds and not self.stream else m.VERSION
        r = self._rpc(m.Tversion(self.msize, offer), tag=m.NOTAG)[0]
        if r.version == m.UNKNOWN_VERSION and offer != m.VERSION:
            r = self._rpc(m.Tversion(self.msize, m.VERSION), tag=m.NOTAG)[0]
        if r.version not in (m.VERSION, m.VERSION_FDS) or not m.MIN_MSIZE <= r.msize <= self.msize:
            self._fail(f"server answered version {r.version!r} msize {r.msize}")
        self.msize = r.msize
        self.version = r.version
        self.fds = r.version == m.VERSION_FDS  #: the server donates fds on Rlopen/Rlcreate
        self.iounit = self.msize - m.IOHDRSZ

    # --- transport ----------------------------------------------------------------------------

    def _fail(self, why: str) -> NoReturn:
        self.broken = why
        raise SyscallError(errno.EIO)

    def _send(self, packet: bytes) -> None:
        try:
            self.sock.sendall(packet)
        except OSError as e:
            self._fail(f"send: {e}")

    def _recv(self) -> tuple[bytes, list[int]]:
        try:
            if self.stream:
                return self._recv_stream(), []
            data, anc, flags, _ = self.sock.recvmsg(self.msize + 1, socket.CMSG_SPACE(4 * _MAX_FDS),
                                                    socket.MSG_CMSG_CLOEXEC)
        except OSError as e:
            self._fail(f"receive: {e}")
        fds = []
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(payload[:len(payload) - len(payload) % a.itemsize])
                fds.extend(a)
        if not data:
            _close_all(fds)
            self._fail("the server closed the connection")
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            _close_all(fds)
            self._fail("reply larger than msize, or too many fds")
        return data, fds

    def _recv_stream(self) -> bytes:
        head = self._recv_exact(4)
        size = int.from_bytes(head, "little")
        if not m.HEADER_SIZE <= size <= self.msize:
            self._fail(f"reply size {size}")
        return head + self._recv_exact(size - 4)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                self._fail("the server closed the connection")
            buf += chunk
        return bytes(buf)

    def _rpc(self, msg: m.Message, tag: int | None = None,
             takes_fd: bool = False) -> tuple[m.Message, int | None]:
        """Send one request and return (reply, donated fd or None); Rlerror raises."""
        if tag is None:
            tag = self._next_tag()
        self._send(self._encode(msg, tag))
        reply, fd = self._reply(msg, tag, takes_fd)
        if isinstance(reply, m.Rlerror):
            raise SyscallError(reply.ecode or errno.EIO)
        return reply, fd

    def _pipeline(self, msgs: list[m.Message], takes_fd: int = -1
                  ) -> list[tuple[m.Message, int | None]]:
        """Several requests answered in order: each answer is (reply or Rlerror, fd); only
        msgs[takes_fd] may carry one.  Our dialect takes them in one packet and answers in
        one (one switch between the processes); otherwise they are sent one after another
        before the first reply is read.  At most _PIPELINE requests."""
        assert len(msgs) <= _PIPELINE
        tags = [self._next_tag() for _ in msgs]
        packets = [self._encode(msg, tag) for msg, tag in zip(msgs, tags)]
        if self.fds and not self.stream and sum(map(len, packets)) <= self.msize:
            self._send(b"".join(packets))
            data, fds = self._recv()
            try:
                parts = m.split_packet(data)
            except m.ProtocolError as e:
                _close_all(fds)
                self._fail(f"malformed reply: {e}")
            if len(parts) != len(msgs):
                _close_all(fds)
                self._fail(f"{len(parts)} replies to {len(msgs)} requests")
            out = []
            for i, (msg, tag, part) in enumerate(zip(msgs, tags, parts)):
                reply, fd = self._check(msg, tag, part, fds if i == takes_fd else [], True)
                if fd is not None:
                    fds.remove(fd)
                out.append((reply, fd))
            _close_all(fds)
            return out
        for packet in packets:
            self._send(packet)
        return [self._reply(msg, tag, i == takes_fd)
                for i, (msg, tag) in enumerate(zip(msgs, tags))]

    def _next_tag(self) -> int:
        tag = self._tag
        self._tag = (tag + 1) % m.NOTAG
        return tag

    def _encode(self, msg: m.Message, tag: int) -> bytes:
        if self.broken is not None:
            raise SyscallError(errno.EIO)
        try:
            packet = m.encode(msg, tag)
        except m.ProtocolError:
            raise SyscallError(errno.EINVAL) from None  # e.g. a name longer than 65535 bytes
        if len(packet) > self.msize:
            raise SyscallError(errno.EINVAL)
        return packet

    def _reply(self, msg: m.Message, tag: int, takes_fd: bool) -> tuple[m.Message, int | None]:
        """Receive and check the reply to msg: (reply or Rlerror, donated fd or None)."""
        data, fds = self._recv()
        reply, fd = self._check(msg, tag, data, fds, takes_fd)
        _close_all([f for f in fds if f != fd])
        return reply, fd

    def _check(self, msg: m.Message, tag: int, data: bytes, fds: list[int],
               takes_fd: bool) -> tuple[m.Message, int | None]:
        """Decode and check one reply: (reply or Rlerror, the fd of fds it keeps, if any).
        The caller closes the fds not kept (all of them when this fails)."""
        try:
            rtag, reply = m.decode(data, self.msize)
        except m.ProtocolError as e:
            _close_all(fds)
            self._fail(f"malformed reply: {e}")
        if rtag != tag:
            _close_all(fds)
            self._fail(f"reply tag {rtag} for request tag {tag}")
        if isinstance(reply, m.Rlerror):
            return reply, None
        if reply.TYPE != msg.TYPE + 1:
            _close_all(fds)
            self._fail(f"{type(reply).__name__} answering {type(msg).__name__}")
        return reply, (fds[0] if takes_fd and fds else None)

    def _call(self, msg: m.Message) -> m.Message:
        return self._rpc(msg)[0]

    # --- fids -----------------------------------------------------------------------------------

    def _alloc_fid(self) -> int:
        if self._free_fids:
            return self._free_fids.pop()
        fid = self._next_fid
        self._next_fid += 1
        return fid

    def _new_fid(self, msg_of: Callable[[int], m.Message]) -> tuple[int, m.Message]:
        """Run a request that creates a fid; the number is given back if it fails."""
        fid = self._alloc_fid()
        try:
            return fid, self._call(msg_of(fid))
        except BaseException:
            self._free_fids.append(fid)
            raise

    # --- session --------------------------------------------------------------------------------

    def attach(self, aname: bytes = b"/", n_uname: int = m.NONUNAME,
               uname: bytes = b"") -> tuple[int, Qid]:
        """(fid of the export's root, its qid).  n_uname owns the files this fid creates."""
        fid, r = self._new_fid(lambda f: m.Tattach(f, m.NOFID, uname, aname, n_uname))
        return fid, r.qid

    def walk(self, fid: int, names: list[bytes] | tuple[bytes, ...]) -> tuple[int | None, list[Qid]]:
        """(new fid, qids); new fid is None if only a prefix of names could be walked.

        At most MAXWELEM names; [] clones fid.  Symlinks are never followed by the server.
        """
        newfid = self._alloc_fid()
        try:
            r = self._call(m.Twalk(fid, newfid, tuple(names)))
        except BaseException:
            self._free_fids.append(newfid)
            raise
        if len(r.wqids) != len(names):
            self._free_fids.append(newfid)
            return None, list(r.wqids)
        return newfid, list(r.wqids)

    def walkstat(self, fid: int, names: list[bytes] | tuple[bytes, ...],
                 create: bool = True) -> tuple[int | None, list[m.Attr]]:
        """Twalkstat (our dialect only): (new fid or None, attributes of fid and of each name
        walked).  A new fid exists only if create and every name was walked; a partial walk
        answers the attributes of the prefix that exists (an error if not even the first)."""
        newfid = self._alloc_fid() if create else m.NOFID
        try:
            r = self._call(m.Twalkstat(fid, newfid, tuple(names)))
            attrs = m.decode_attrs(r.attrs)
        except m.ProtocolError as e:
            self._fail(f"malformed walkstat data: {e}")
        except BaseException:
            if create:
                self._free_fids.append(newfid)
            raise
        if not 1 <= len(attrs) <= len(names) + 1:
            self._fail(f"{len(attrs)} attributes answering a walk of {len(names)} names")
        if len(attrs) != len(names) + 1 or not create:
            if create:
                self._free_fids.append(newfid)
            return None, attrs
        return newfid, attrs

    def clone(self, fid: int) -> int:
        newfid, _ = self.walk(fid, ())
        assert newfid is not None
        return newfid

    def clunk(self, fid: int) -> None:
        """Forget fid (gone on both sides even when the server reports an error)."""
        try:
            self._call(m.Tclunk(fid))
        finally:
            self._free_fids.append(fid)

    def clunk_many(self, fids: list[int]) -> None:
        """Tclunk each fid, pipelined (one wait per _PIPELINE fids instead of one per fid);
        errors are ignored: a fid is gone on both sides anyway."""
        for i in range(0, len(fids), _PIPELINE):
            batch = fids[i:i + _PIPELINE]
            try:
                self._pipeline([m.Tclunk(fid) for fid in batch])
            finally:
                self._free_fids.extend(batch)

    def flush(self, oldtag: int) -> None:
        self._call(m.Tflush(oldtag))

    # --- attributes ----------------------------------------------------------------------------

    def getattr(self, fid: int, mask: int = m.GETATTR_BASIC) -> m.Rgetattr:
        return self._call(m.Tgetattr(fid, mask))

    def setattr(self, fid: int, valid: int, mode: int = 0, uid: int = 0, gid: int = 0,
                size: int = 0, atime: tuple[int, int] = (0, 0),
                mtime: tuple[int, int] = (0, 0)) -> None:
        """SETATTR_* in valid select the fields; a time bit without its _SET bit means now."""
        self._call(m.Tsetattr(fid, valid, mode, uid, gid, size, *atime, *mtime))

    def setattr_getattr(self, fid: int, valid: int, mode: int = 0, uid: int = 0, gid: int = 0,
                        size: int = 0, atime: tuple[int, int] = (0, 0),
                        mtime: tuple[int, int] = (0, 0)) -> m.Rgetattr:
        """Tsetattr then Tgetattr, sent together: the attributes the change left."""
        (done, _), (attrs, _) = self._pipeline(
            [m.Tsetattr(fid, valid, mode, uid, gid, size, *atime, *mtime),
             m.Tgetattr(fid, m.GETATTR_BASIC)])
        for r in (done, attrs):
            if isinstance(r, m.Rlerror):
                raise SyscallError(r.ecode or errno.EIO)
        return attrs

    def statfs(self, fid: int) -> m.Rstatfs:
        return self._call(m.Tstatfs(fid))

    def readlink(self, fid: int) -> bytes:
        return self._call(m.Treadlink(fid)).target

    # --- files ----------------------------------------------------------------------------------

    def lopen(self, fid: int, flags: int) -> tuple[Qid, int, int | None]:
        """Open fid with Linux open flags: (qid, iounit, donated host fd of a regular file)."""
        r, fd = self._rpc(m.Tlopen(fid, flags), takes_fd=True)
        return r.qid, r.iounit or self.iounit, fd

    def openfd(self, fid: int, flags: int) -> int:
        """Topenfd (our dialect): the donated fd of the regular file fid names, opened with
        flags; the fid stays as it was."""
        r, fd = self._rpc(m.Topenfd(fid, flags), takes_fd=True)
        if fd is None:
            self._fail("Ropenfd without a descriptor")
        return fd

    def lcreate_clone(self, dfid: int, name: bytes, flags: int, mode: int,
                      owner: tuple[int, int] | None = None) -> tuple[int, m.Rgetattr, int | None]:
        """Create name in directory dfid on a new fid, opened: Twalk (clone) + Tlcreate (+
        Tsetattr of owner (uid, gid), mode kept) + Tgetattr sent together.  (new fid naming
        the file, its attributes, donated fd)."""
        newfid = self._alloc_fid()
        msgs: list[m.Message] = [m.Twalk(dfid, newfid, ()), m.Tlcreate(newfid, name, flags, mode,
                                                                       m.NONUNAME)]
        if owner is not None:
            msgs.append(_chown(newfid, owner, mode))
        msgs.append(m.Tgetattr(newfid, m.GETATTR_BASIC))
        try:
            replies = self._pipeline(msgs, takes_fd=1)
        except BaseException:
            self._free_fids.append(newfid)
            raise
        fd = replies[1][1]
        if isinstance(replies[0][0], m.Rlerror):
            self._free_fids.append(newfid)
            raise SyscallError(replies[0][0].ecode or errno.EIO)
        failed = next((r for r, _ in replies[1:] if isinstance(r, m.Rlerror)), None)
        if failed is not None:
            if fd is not None:
                os.close(fd)
            if not isinstance(replies[1][0], m.Rlerror):
                self._call(m.Tunlinkat(dfid, name, 0))  # made, but not as asked: undo
            self.clunk(newfid)
            raise SyscallError(failed.ecode or errno.EIO)
        return newfid, replies[-1][0], fd

    def made(self, dfid: int, make: m.Message, name: bytes, owner: tuple[int, int] | None,
             mode: int | None) -> tuple[int, m.Attr]:
        """After make (Tmkdir, Tsymlink or Tmknod of name in dfid): Twalkstat to it on a new
        fid, Tsetattr of owner (uid, gid; mode kept unless None) and Tgetattr, sent together.
        (new fid, the new object's attributes)."""
        newfid = self._alloc_fid()
        msgs: list[m.Message] = [make, m.Twalkstat(dfid, newfid, (name,))]
        if owner is not None:
            msgs += [_chown(newfid, owner, mode), m.Tgetattr(newfid, m.GETATTR_BASIC)]
        try:
            replies = [r for r, _ in self._pipeline(msgs)]
        except BaseException:
            self._free_fids.append(newfid)
            raise
        if isinstance(replies[1], m.Rlerror):
            self._free_fids.append(newfid)
        elif isinstance(replies[0], m.Rlerror):
            self.clunk(newfid)  # the name was there already: walked to that
        if isinstance(replies[0], m.Rlerror) or isinstance(replies[1], m.Rlerror):
            raise SyscallError((replies[0] if isinstance(replies[0], m.Rlerror)
                                else replies[1]).ecode or errno.EIO)
        try:
            attrs = m.decode_attrs(replies[1].attrs)
        except m.ProtocolError as e:
            self._fail(f"malformed walkstat data: {e}")
        failed = next((r for r in replies[2:] if isinstance(r, m.Rlerror)), None)
        if failed is not None or len(attrs) != 2:
            self._call(m.Tunlinkat(dfid, name, m.AT_REMOVEDIR if isinstance(make, m.Tmkdir)
                                   else 0))  # made, but not as asked: undo
            self.clunk(newfid)
            raise SyscallError(failed.ecode if failed is not None else errno.ENOENT)
        if owner is not None:
            return newfid, replies[-1]
        return newfid, attrs[1]

    def tmpfile(self, dfid: int, flags: int, mode: int,
                owner: tuple[int, int] | None = None) -> tuple[int, m.Rgetattr, int | None]:
        """Ttmpfile (our dialect) (+ Tsetattr of owner) + Tgetattr sent together: (new fid
        naming the nameless file, its attributes, donated fd)."""
        newfid = self._alloc_fid()
        msgs: list[m.Message] = [m.Ttmpfile(dfid, newfid, flags, mode, m.NONUNAME)]
        if owner is not None:
            msgs.append(_chown(newfid, owner, mode))
        msgs.append(m.Tgetattr(newfid, m.GETATTR_BASIC))
        try:
            replies = self._pipeline(msgs, takes_fd=0)
            (made, fd), attrs = replies[0], next(
                (r for r, _ in replies[1:] if isinstance(r, m.Rlerror)), replies[-1][0])
        except BaseException:
            self._free_fids.append(newfid)
            raise
        if isinstance(made, m.Rlerror):
            self._free_fids.append(newfid)
            raise SyscallError(made.ecode or errno.EIO)
        if isinstance(attrs, m.Rlerror):
            if fd is not None:
                os.close(fd)
            self.clunk(newfid)
            raise SyscallError(attrs.ecode or errno.EIO)
        return newfid, attrs, fd

    def lcreate(self, fid: int, name: bytes, flags: int, mode: int,
                gid: int = m.NONUNAME) -> tuple[Qid, int, int | None]:
        """Create name in directory fid and open it; fid then names the new file."""
        r, fd = self._rpc(m.Tlcreate(fid, name, flags, mode, gid), takes_fd=True)
        return r.qid, r.iounit or self.iounit, fd

    def read(self, fid: int, offset: int, count: int) -> bytes:
        """One Tread: at most min(count, iounit) bytes."""
        return self._call(m.Tread(fid, offset, min(count, self.iounit))).data

    def write(self, fid: int, offset: int, data: bytes) -> int:
        """One Twrite of at most iounit bytes; the count written."""
        return self._call(m.Twrite(fid, offset, bytes(data[:self.iounit]))).count

    def readdir(self, fid: int, offset: int = 0, count: int | None = None) -> list[Dirent]:
        """Entries from offset (0, or the offset of the last entry received); [] at the end."""
        count = self.iounit if count is None else min(count, self.iounit)
        try:
            return m.decode_dirents(self._call(m.Treaddir(fid, offset, count)).data)
        except m.ProtocolError as e:
            self._fail(f"malformed readdir data: {e}")

    def fsync(self, fid: int, datasync: bool = False) -> None:
        self._call(m.Tfsync(fid, int(datasync)))

    # --- namespace ------------------------------------------------------------------------------

    def mkdir(self, dfid: int, name: bytes, mode: int, gid: int = m.NONUNAME) -> Qid:
        return self._call(m.Tmkdir(dfid, name, mode, gid)).qid

    def mknod(self, dfid: int, name: bytes, mode: int, major: int = 0, minor: int = 0,
              gid: int = m.NONUNAME) -> Qid:
        return self._call(m.Tmknod(dfid, name, mode, major, minor, gid)).qid

    def symlink(self, dfid: int, name: bytes, target: bytes, gid: int = m.NONUNAME) -> Qid:
        return self._call(m.Tsymlink(dfid, name, target, gid)).qid

    def link(self, dfid: int, fid: int, name: bytes) -> None:
        self._call(m.Tlink(dfid, fid, name))

    def renameat(self, olddirfid: int, oldname: bytes, newdirfid: int, newname: bytes) -> None:
        self._call(m.Trenameat(olddirfid, oldname, newdirfid, newname))

    def renameat2(self, olddirfid: int, oldname: bytes, newdirfid: int, newname: bytes,
                  flags: int) -> None:
        """Trenameat2 (our dialect only): renameat2(2) flags."""
        self._call(m.Trenameat2(olddirfid, oldname, newdirfid, newname, flags))

    def unlinkat(self, dirfid: int, name: bytes, flags: int = 0) -> None:
        """flags: AT_REMOVEDIR for a directory."""
        self._call(m.Tunlinkat(dirfid, name, flags))

    # --- extended attributes --------------------------------------------------------------------

    def xattrwalk(self, fid: int, name: bytes) -> tuple[int, int]:
        """(new fid to Tread the value from, value size); name b"" lists the names."""
        newfid, r = self._new_fid(lambda f: m.Txattrwalk(fid, f, name))
        return newfid, r.size

    def xattrcreate(self, fid: int, name: bytes, size: int, flags: int = 0) -> None:
        """fid becomes the sink for the value; it is set when fid is clunked."""
        self._call(m.Txattrcreate(fid, name, size, flags))

    def getxattr(self, fid: int, name: bytes) -> bytes:
        if self.fds and not self.stream:  # one packet: a value fits one Rread (64 KiB max)
            newfid = self._alloc_fid()
            try:
                (walked, _), (read, _), _ = self._pipeline(
                    [m.Txattrwalk(fid, newfid, name), m.Tread(newfid, 0, self.iounit),
                     m.Tclunk(newfid)])
            finally:
                self._free_fids.append(newfid)
            for r in (walked, read):
                if isinstance(r, m.Rlerror):
                    raise SyscallError(r.ecode or errno.EIO)
            return read.data[:walked.size]
        xfid, size = self.xattrwalk(fid, name)
        try:
            return self._read_all(xfid, size)
        finally:
            self.clunk(xfid)

    def listxattr(self, fid: int) -> list[bytes]:
        return [n for n in self.getxattr(fid, b"").split(b"\0") if n]

    def setxattr(self, fid: int, name: bytes, value: bytes, flags: int = 0) -> None:
        """Set (flags XATTR_CREATE/XATTR_REPLACE).  An empty value removes the attribute on
        a plain 9P server; ours (VERSION_FDS) sets it empty and removes on XATTR_REMOVE."""
        if self.fds and not self.stream and len(value) <= self.iounit:  # one packet
            xfid = self._alloc_fid()
            msgs: list[m.Message] = [m.Twalk(fid, xfid, ()), m.Txattrcreate(xfid, name,
                                                                          len(value), flags)]
            if value:
                msgs.append(m.Twrite(xfid, 0, bytes(value)))
            msgs.append(m.Tclunk(xfid))  # sets it: its error is the call's
            try:
                replies = self._pipeline(msgs)
            finally:
                self._free_fids.append(xfid)
            failed = next((r for r, _ in replies if isinstance(r, m.Rlerror)), None)
            if failed is not None:
                raise SyscallError(failed.ecode or errno.EIO)
            return
        xfid = self.clone(fid)
        try:
            self.xattrcreate(xfid, name, len(value), flags)
            done = 0
            while done < len(value):
                done += self.write(xfid, done, value[done:])
        except BaseException:
            try:
                self.clunk(xfid)
            except SyscallError:
                pass
            raise
        self.clunk(xfid)  # the server sets the attribute now; its error is ours

    def removexattr(self, fid: int, name: bytes) -> None:
        self.setxattr(fid, name, b"", m.XATTR_REMOVE if self.fds else 0)

    def _read_all(self, fid: int, size: int) -> bytes:
        out = bytearray()
        while len(out) < size:
            chunk = self.read(fid, len(out), size - len(out))
            if not chunk:
                break
            out += chunk
        return bytes(out)

    # --- locks ----------------------------------------------------------------------------------

    def lock(self, fid: int, ltype: int, start: int, length: int, flags: int = 0,
             proc_id: int = 0, client_id: bytes = b"") -> int:
        """LOCK_SUCCESS or LOCK_BLOCKED (a conflicting lock is held)."""
        return self._call(m.Tlock(fid, ltype, flags, start, length, proc_id, client_id)).status

    def getlock(self, fid: int, ltype: int, start: int, length: int, proc_id: int = 0,
                client_id: bytes = b"") -> m.Rgetlock:
        """The first lock that would conflict, or type LOCK_TYPE_UNLCK."""
        return self._call(m.Tgetlock(fid, ltype, start, length, proc_id, client_id))

    def close(self) -> None:
        self.sock.close()


def _chown(fid: int, owner: tuple[int, int], mode: int | None) -> m.Tsetattr:
    """Tsetattr giving fid's object to owner; with mode, set-ID bits survive the chown (the
    server changes owners first, then the mode)."""
    valid = m.SETATTR_UID | m.SETATTR_GID | (m.SETATTR_MODE if mode is not None else 0)
    return m.Tsetattr(fid, valid, mode or 0, owner[0], owner[1], 0, 0, 0, 0, 0)


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
