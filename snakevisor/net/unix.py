"""AF_UNIX sockets (unix(7)) served entirely by the sentry: no host socket is ever made.

Why this shape: the observable behaviour of Linux's af_unix follows from a few pieces of
its state, so this module keeps exactly those pieces and lets the rest follow:

* Each socket has a receive queue of messages (Linux's skbs) and a peer.  A STREAM write
  is cut into skbs the way unix_stream_sendmsg cuts it; a read gathers skbs but never
  across one that carries fds, nor across senders with different credentials when
  SO_PASSCRED is on; a DGRAM/SEQPACKET read takes one message (MSG_TRUNC: its real length).
* Flow control is the sender's: every queued skb charges its *truesize* (what the skb
  allocator would give, computed below from the sizes Linux allocates) to the sender's
  send-buffer count (SIOCOUTQ), and a send waits while that count is at or above SO_SNDBUF.
  A datagram receiver not connected back to its sender also limits its queue to
  net.unix.max_dgram_qlen + 1 messages; a listener limits pending connections to its
  backlog + 1.  So "how many bytes fit before EAGAIN" matches Linux exactly.
* A STREAM/SEQPACKET connect creates the server's socket at once (the "embryo") and queues
  it on the listener; the client is connected before accept, and may write at once.
* Readiness is unix_poll/unix_dgram_poll, bit for bit; one WaitQueue per socket (`wait`,
  Linux's sk_sleep) is notified whenever those bits may change, and `peer_wait` wakes
  writers blocked on a full peer (datagram queue, listener backlog).
* Names: a path bind creates an S_IFSOCK node through the sandbox root (mknod), and the
  bound socket is found again from the node's identity (st_dev, st_ino), so connect
  follows renames and hard links and fails after unlink, as Linux does; abstract names
  (sun_path[0] == 0) live in a table private to the sandbox, one namespace per socket
  type (Linux hashes the type into the abstract name's bucket).

Blocking follows the kernel's Block protocol: a call that must wait raises Block and is
dispatched again; progress already made (bytes queued by a stream write, bytes copied by a
MSG_WAITALL read) is kept in task.syscall_state under TRANSFERRED, the key the kernel reads
to return a partial count when a signal interrupts the call.  SO_RCVTIMEO/SO_SNDTIMEO
become the wait's deadline (kept in 250 Hz jiffies, so what getsockopt reads back is
rounded as on Linux), and mark the call NO_RESTART: Linux answers EINTR even under
SA_RESTART for a socket call with a timeout.

Out-of-band data (CONFIG_AF_UNIX_OOB, Linux >= 5.15): send(MSG_OOB) on a stream queues its
last byte as an skb of its own that the receiver's `oob_skb` points at.  Reads stop in
front of it (the mark) once they copied something; a read that starts at it drops it
(unless SO_OOBINLINE) — manage_oob; recv(MSG_OOB) copies it and leaves the skb queued with
nothing left to read (the mark stays until a read passes it).  SIOCINQ reads a counter
kept the way Linux keeps inq_len (an urgent byte a read dropped stays counted).  The
receiver's owner (FIOSETOWN/SIOCSPGRP, Linux's f_owner) gets SIGURG.

Sockets in flight (unix_gc): a socket whose only references are SCM_RIGHTS messages
queued on sockets (itself, or a cycle of them) that no one can read any more is garbage.
Each socket counts the queued messages that hold it (`inflight`); when a reference goes
and every one left is in flight, `collect` runs Linux's classic mark-and-sweep over the
sockets in that state (nothing to do, and cheap, without such sockets): those reachable
from a live file stay, the rest lose the messages that carry files, which releases them
(their peers see EOF/POLLHUP, the files they held are closed).  Files in flight are also
charged to the sender's real uid: past RLIMIT_NOFILE a send with fds fails ETOOMANYREFS
(too_many_unix_fds), unless CAP_SYS_RESOURCE or CAP_SYS_ADMIN.

Not modelled (documented in the compatibility notes): SO_PEEK_OFF,
SO_PASSPIDFD/SO_PEERPIDFD.
"""
from __future__ import annotations

import errno
import itertools
import os
import random
import stat as st_
import struct
import time
from collections import deque
from typing import TYPE_CHECKING, Callable, Iterator, NamedTuple

from snakevisor.kernel.errors import (EAGAIN, EFAULT, EINVAL, EOPNOTSUPP, EPIPE, Block,
                                      SyscallError, WaitQueue)
from snakevisor.kernel.sigframe import SI_KERNEL, SI_USER
from snakevisor.kernel.signals import basic_siginfo
from snakevisor.syscalls.args import AT_FDCWD
from snakevisor.vfs.epoll import QueueCallback
from snakevisor.vfs.file import (O_RDWR, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLPRI,
                                 POLLRDHUP, POLLRDNORM, POLLWRBAND, POLLWRNORM, File, put)

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

EADDRINUSE, ECONNREFUSED, ECONNRESET = errno.EADDRINUSE, errno.ECONNREFUSED, errno.ECONNRESET
EISCONN, ENOTCONN, EPROTOTYPE, EMSGSIZE = errno.EISCONN, errno.ENOTCONN, errno.EPROTOTYPE, errno.EMSGSIZE
EEXIST, EPERM, ENOSPC = errno.EEXIST, errno.EPERM, errno.ENOSPC
EPROTONOSUPPORT, ESOCKTNOSUPPORT = errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT

AF_UNSPEC, AF_UNIX = 0, 1
SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET = 1, 2, 3, 5
#: sk_state values (include/net/tcp_states.h)
ESTABLISHED, CLOSE, LISTEN = 1, 7, 10
RCV_SHUTDOWN, SEND_SHUTDOWN, SHUTDOWN_MASK = 1, 2, 3
MSG_OOB, MSG_PEEK, MSG_CTRUNC, MSG_TRUNC, MSG_DONTWAIT = 0x1, 0x2, 0x8, 0x20, 0x40
MSG_WAITALL, MSG_NOSIGNAL = 0x100, 0x4000
SUN_PATH_OFFSET = 2  #: offsetof(struct sockaddr_un, sun_path)
SOCKADDR_UN_SIZE = 110
OVERFLOW_ID = 65534  #: from_kuid_munged() of an unset id
SIGPIPE, SIGURG = 13, 23
SO_OOBINLINE = 10
ESRCH, ETOOMANYREFS = errno.ESRCH, errno.ETOOMANYREFS
CAP_SYS_RESOURCE, CAP_SYS_ADMIN = 24, 21

#: task.syscall_state keys: bytes already moved by this call (the kernel returns it when a
#: signal ends the call), when the wait ends (SO_RCVTIMEO/SO_SNDTIMEO), the credentials a
#: MSG_WAITALL read glues to
TRANSFERRED = "transferred"
DEADLINE = "sock_deadline"
GLUED_CREDS = "sock_creds"
#: set while a call waits under SO_RCVTIMEO/SO_SNDTIMEO: Linux never restarts such a call
#: after a handler (signal(7)), it fails with EINTR (for Kernel.interrupt to honour)
NO_RESTART = "no_restart"

# -- Linux's numbers ---------------------------------------------------------------------
HZ = 250  #: socket timeouts are kept in jiffies: what getsockopt reads back is rounded
PAGE_SIZE = 4096
SHINFO = 320  #: SKB_DATA_ALIGN(sizeof(struct skb_shared_info))
SKB_OVERHEAD = 256 + SHINFO  #: what SKB_TRUESIZE adds to the head's usable size
SKB_MAX_HEAD0 = PAGE_SIZE - SHINFO  #: SKB_MAX_HEAD(0): linear bytes in a one-page head
UNIX_SKB_FRAGS_SZ = 32768
SKB_MAX_ALLOC = 4 * PAGE_SIZE - SHINFO  #: SKB_MAX_ORDER(0, 2)
MAX_SKB_FRAGS = 17
SOCK_MIN_SNDBUF, SOCK_MIN_RCVBUF = 4608, 2304
MAX_DGRAM_QLEN = 10  #: net.unix.max_dgram_qlen of a fresh network namespace
SCM_MAX_FD = 253


def _sysctl(name: str, default: int) -> int:
    """A host net.core value read once at import (before the sentry confines itself):
    global sysctls the sandbox's own network namespace shares with the host."""
    try:
        with open(f"/proc/sys/net/core/{name}") as f:
            return int(f.read())
    except (OSError, ValueError):
        return default


WMEM_DEFAULT = _sysctl("wmem_default", 212992)
RMEM_DEFAULT = _sysctl("rmem_default", 212992)
WMEM_MAX = _sysctl("wmem_max", 212992)
RMEM_MAX = _sysctl("rmem_max", 212992)

_socket_inodes = itertools.count(1)
#: sockfs: a made-up anonymous device, like pipefs's (not the host's sockfs)
SOCKFS_DEV = os.makedev(0, 0xFFFFD)


def _page_align(n: int) -> int:
    return (n + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)


def _head_truesize(linear: int) -> int:
    """Truesize of an skb head holding `linear` bytes: the allocation kmalloc rounds
    SKB_DATA_ALIGN(linear) + shared info up to (512 at least, then powers of two)."""
    size = ((linear + 63) & ~63) + SHINFO
    alloc = 512 if size <= 512 else 1 << (size - 1).bit_length()
    return alloc - SHINFO + SKB_OVERHEAD


def stream_skb(remaining: int, sndbuf: int) -> tuple[int, int]:
    """(payload, truesize) of the next skb unix_stream_sendmsg cuts: at most half the send
    buffer, a one-page head plus 32 KiB of page fragments."""
    size = min(remaining, (sndbuf >> 1) - 64, SKB_MAX_HEAD0 + UNIX_SKB_FRAGS_SZ)
    if size <= SKB_MAX_HEAD0:
        return size, _head_truesize(size)
    data_len = min(size, _page_align(max(0, size - SKB_MAX_HEAD0)))
    return size, _head_truesize(size - data_len) + _page_align(data_len)


def dgram_truesize(length: int) -> int:
    """Truesize of one datagram's skb (unix_dgram_sendmsg: a head up to 16 KiB, the rest in
    at most MAX_SKB_FRAGS pages)."""
    data_len = 0
    if length > SKB_MAX_ALLOC:
        data_len = _page_align(min(length - SKB_MAX_ALLOC, MAX_SKB_FRAGS * PAGE_SIZE))
    return _head_truesize(length - data_len) + data_len


# -- credentials ---------------------------------------------------------------------------
class Ucred(NamedTuple):
    """struct ucred as the sandbox sees it (its own pid numbers and ids)."""

    pid: int
    uid: int
    gid: int

    def pack(self) -> bytes:
        return struct.pack("<iII", self.pid, self.uid & 0xFFFFFFFF, self.gid & 0xFFFFFFFF)


#: what a receiver with SO_PASSCRED sees for a message sent with no credentials attached
NO_CREDS = Ucred(0, OVERFLOW_ID, OVERFLOW_ID)
#: SO_PEERCRED of a socket with no peer
NO_PEER = Ucred(0, -1, -1)


def sender_creds(task: "Task") -> Ucred:
    """SCM_CREDENTIALS added by the kernel: the process and its *real* ids."""
    creds = task.tg.creds
    return Ucred(task.tg.pid, creds.ruid, creds.rgid)


class PeerCred(NamedTuple):
    """The peer's credentials recorded at connect/listen/socketpair: SO_PEERCRED (the
    process and its effective ids) and SO_PEERGROUPS (its supplementary groups)."""

    ucred: Ucred
    groups: tuple[int, ...]


def peer_creds(task: "Task") -> PeerCred:
    creds = task.tg.creds
    return PeerCred(Ucred(task.tg.pid, creds.euid, creds.egid), tuple(creds.groups))


class Scm:
    """What a send carries besides data: files (SCM_RIGHTS, each holding a reference while
    in flight) and explicit credentials (SCM_CREDENTIALS)."""

    __slots__ = ("files", "creds")

    def __init__(self, files: "list[File] | None" = None, creds: Ucred | None = None) -> None:
        self.files = files or None
        self.creds = creds

    def drop(self) -> None:
        """The send failed or carried the files nowhere: give the references back."""
        files, self.files = self.files, None
        for f in files or ():
            put(f)


def hold(files: "list[File]") -> "list[File]":
    """New in-flight references to files (a send, or a MSG_PEEK receive's copies)."""
    for f in files:
        f.refs += 1
    return list(files)


class Skb:
    """One queued message: unread bytes, the socket charged for it, and its ancillary data."""

    __slots__ = ("data", "pos", "sender", "truesize", "files", "creds", "user")

    def __init__(self, data: bytes, sender: "UnixSocket", truesize: int,
                 files: "list[File] | None", creds: Ucred | None, user: int = 0) -> None:
        self.data = data
        self.pos = 0  #: bytes a stream read already consumed
        self.sender = sender
        self.truesize = truesize
        self.files = files
        self.creds = creds  #: None: sent without credentials
        self.user = user  #: the real uid the files in flight are charged to

    def __len__(self) -> int:
        return len(self.data) - self.pos


def _attach(names: "UnixNames", skb: Skb) -> None:
    """unix_add_edges: the sockets among the message's files are now held by it, and its
    sender's user has that many more files in flight."""
    files = skb.files or ()
    per_user = names.user_inflight
    per_user[skb.user] = per_user.get(skb.user, 0) + len(files)
    for f in files:
        if isinstance(f, UnixSocket):
            if not f.inflight:
                f.names.inflight.add(f)
            f.inflight += 1


def _detach(skb: Skb) -> "list[File] | None":
    """unix_del_edges: the files leave their message (received, or freed)."""
    files, skb.files = skb.files, None
    if files:
        skb.sender.names.user_inflight[skb.user] -= len(files)
    for f in files or ():
        if isinstance(f, UnixSocket):
            f.inflight -= 1
            if not f.inflight:
                f.names.inflight.discard(f)
    return files


class Received(NamedTuple):
    """What one receive produced, for the system call layer to hand out."""

    count: int  #: the call's result (the datagram's real length with MSG_TRUNC)
    flags: int  #: MSG_TRUNC for a datagram longer than the buffer
    name: bytes | None  #: the sender's address (None: unbound or not asked)
    files: "list[File] | None"  #: references now owned by the caller
    creds: Ucred | None  #: for SCM_CREDENTIALS (set only when SO_PASSCRED is on)


# -- names ------------------------------------------------------------------------------
class UnixNames:
    """The sandbox's AF_UNIX tables: bound names (path sockets by their node's identity,
    abstract names by (socket type, name)) and the sockets in flight.  One per sandbox
    (kernel)."""

    def __init__(self) -> None:
        self.paths: dict[tuple[int, int], UnixSocket] = {}
        self.abstract: dict[tuple[int, bytes], UnixSocket] = {}
        self.inflight: set[UnixSocket] = set()  #: sockets held by queued messages
        self.user_inflight: dict[int, int] = {}  #: real uid -> files it has in flight
        self.collecting = False  #: collect() is running (its own puts must not recurse)
        self.recollect = False  #: a socket became a candidate while it ran


def _queued_files(sock: "UnixSocket") -> "Iterator[File]":
    """scan_children: the files held by messages queued on sock (and on a listener's
    embryos, which no one else can reach)."""
    for s in (sock, *sock.pending):
        for skb in s.queue:
            if skb.files:
                yield from skb.files


def collect(names: UnixNames, dropping: "UnixSocket | None" = None) -> None:
    """unix_gc: release the sockets kept alive only by messages no one can read.

    Candidates are in-flight sockets whose every reference is in flight.  A candidate held
    by something else (a reference from an fd, or a message queued on a live socket) is
    live, and so is every candidate reachable from a live one through queued messages;
    the rest lose their queued messages that carry files.  `dropping` is the socket whose
    reference put() is dropping now: put() itself releases it if it turns out garbage, so
    it is pinned here (its count restored without the watch) while the files go."""
    if names.collecting:
        names.recollect = True
        return
    names.collecting = True
    pinned = False
    try:
        while True:
            names.recollect = False
            candidates = {s for s in names.inflight if s.refs == s.inflight}
            if not candidates:
                return
            outside = {s: s.refs for s in candidates}
            for s in candidates:
                for f in _queued_files(s):
                    if f in outside:
                        outside[f] -= 1
            live = [s for s, n in outside.items() if n > 0]
            reached = set(live)
            while live:
                for f in _queued_files(live.pop()):
                    if f in outside and f not in reached:
                        reached.add(f)
                        live.append(f)  # type: ignore[arg-type]
            garbage = candidates - reached
            if dropping in garbage and not pinned:
                dropping._refs += 1  # type: ignore[union-attr]
                pinned = True
            hitlist: list[tuple[UnixSocket, Skb]] = []
            for s in garbage:
                for owner in (s, *s.pending):
                    keep = deque(skb for skb in owner.queue if not skb.files)
                    hitlist += [(owner, skb) for skb in owner.queue if skb.files]
                    if owner.oob_skb is not None and owner.oob_skb not in keep:
                        owner.oob_skb = None
                    owner.queue = keep
            for owner, skb in hitlist:
                owner.inq_len -= len(skb)
                owner._free(skb)  # closes the files: the garbage is released
                owner.wait.notify()
            if not names.recollect:
                return
    finally:
        names.collecting = False
        if pinned:
            dropping._refs -= 1  # type: ignore[union-attr]  # put() releases it at 0


def names_of(task: "Task") -> UnixNames:
    kernel = task.kernel
    names = getattr(kernel, "unix_names", None)
    if names is None:
        names = kernel.unix_names = UnixNames()
    return names


def validate_addr(raw: bytes) -> None:
    """unix_validate_addr: a family of AF_UNIX and at least one byte of name."""
    if len(raw) <= SUN_PATH_OFFSET or len(raw) > SOCKADDR_UN_SIZE:
        raise SyscallError(EINVAL)
    if int.from_bytes(raw[:2], "little") != AF_UNIX:
        raise SyscallError(EINVAL)


def bsd_path(raw: bytes) -> bytes:
    """unix_mkname_bsd: the path is sun_path up to its first NUL (or the given length)."""
    return raw[SUN_PATH_OFFSET:].split(b"\0", 1)[0]


def find(task: "Task", raw: bytes, kind: int) -> "UnixSocket":
    """unix_find_other: the socket a (validated) address names, with Linux's errors."""
    names = names_of(task)
    if raw[SUN_PATH_OFFSET] == 0:
        sock = names.abstract.get((kind, raw[SUN_PATH_OFFSET:]))
        if sock is None:
            raise SyscallError(ECONNREFUSED)
        return sock
    path = bsd_path(raw)
    root = task.tg.fs.root
    root.access_at(task, AT_FDCWD, path, os.W_OK, True, True)  # ENOENT, EACCES...
    st = root.stat(task, AT_FDCWD, path, True)
    sock = names.paths.get((st.st_dev, st.st_ino)) if st_.S_ISSOCK(st.st_mode) else None
    if sock is None:
        raise SyscallError(ECONNREFUSED)
    if sock.kind != kind:
        raise SyscallError(EPROTOTYPE)
    return sock


# -- waiting -----------------------------------------------------------------------------
def wait(task: "Task", queue: WaitQueue, timeo: float | None) -> None:
    """Wait on queue, at most `timeo` seconds from the first wait of this call (None:
    forever, 0: not at all): EAGAIN when the time is up.  Never returns."""
    if timeo == 0:
        raise SyscallError(EAGAIN)
    state = task.syscall_state
    if state is None:
        state = task.syscall_state = {}
    deadline = state.get(DEADLINE)
    if deadline is None and timeo is not None:
        deadline = state[DEADLINE] = task.kernel.now() + timeo
        state[NO_RESTART] = True
    if deadline is not None and task.kernel.now() >= deadline:
        raise SyscallError(EAGAIN)
    raise Block(queue=queue, deadline=deadline)


def progress(task: "Task") -> int:
    state = task.syscall_state
    return state.get(TRANSFERRED, 0) if state else 0


def save_progress(task: "Task", done: int) -> None:
    if task.syscall_state is None:
        task.syscall_state = {}
    task.syscall_state[TRANSFERRED] = done


def finished(task: "Task") -> None:
    """One message is done: a caller sending or receiving in pieces (a large write(2),
    sendmmsg) starts the next afresh; the call's deadline stays."""
    state = task.syscall_state
    if state:
        state.pop(TRANSFERRED, None)
        state.pop(GLUED_CREDS, None)


def sigpipe(task: "Task") -> None:
    """send_sig(SIGPIPE, current, 0): SI_USER from the writer itself."""
    task.kernel.send_signal(task, SIGPIPE, basic_siginfo(SIGPIPE, SI_USER, pid=task.tg.pid,
                                                         uid=task.tg.creds.ruid))


#: reads `n` bytes of the payload at `offset` (short when it runs into a fault)
Gather = Callable[[int, int], bytes]
#: writes bytes at `offset` of the caller's buffer; returns how many it could write
Scatter = Callable[[int, bytes], int]


# -- the socket ------------------------------------------------------------------------------
class UnixSocket(File):
    """One AF_UNIX socket (Linux's struct socket + unix_sock, as one open file)."""

    is_socket = True
    family = AF_UNIX

    def __init__(self, task: "Task", kind: int, flags: int = O_RDWR) -> None:
        self.names = names_of(task)
        self.inflight = 0  #: queued messages holding this socket (SCM_RIGHTS)
        super().__init__(flags)
        self.kind = kind
        self.state = CLOSE
        self.peer: UnixSocket | None = None
        self.queue: deque[Skb] = deque()
        self.pending: deque[UnixSocket] = deque()  #: a listener's embryos, oldest first
        self.shutdown_bits = 0
        self.err = 0
        self.dead = False
        self.passcred = False
        self.sndbuf, self.rcvbuf = WMEM_DEFAULT, RMEM_DEFAULT
        self.wmem = 0  #: truesize of this socket's skbs still queued somewhere
        self.addr: bytes | None = None  #: sockaddr_un bytes, as getsockname returns them
        self.bound: tuple | None = None  #: our key in UnixNames
        self.backlog = MAX_DGRAM_QLEN  #: sk_max_ack_backlog
        self.peercred: PeerCred | None = None
        self.rcvtimeo: int | None = None  #: jiffies; None = MAX_SCHEDULE_TIMEOUT
        self.sndtimeo: int | None = None
        self.rcvlowat = 1
        self.linger = (0, 0)
        self.options: dict[int, int] = {}  #: accepted options with nothing to do
        self.listener: UnixSocket | None = None  #: an embryo's listener, until accept
        self.wait = WaitQueue()  #: sk_sleep: readers, writers and pollers of this socket
        self.peer_wait = WaitQueue()  #: writers waiting for room in *our* queue
        self.peer_wake: QueueCallback | None = None  #: relays peer_wait to our pollers
        self.ino = next(_socket_inodes)
        creds = task.tg.creds
        self.uid, self.gid = creds.fsuid, creds.fsgid
        self.ctime_ns = time.time_ns()
        self.path = f"socket:[{self.ino}]"
        self.oob_skb: Skb | None = None  #: the urgent byte's skb, still in `queue`
        self.inq_len = 0  #: SIOCINQ of a stream: bytes queued minus bytes read

    def __repr__(self) -> str:
        return f"UnixSocket(type={self.kind}, state={self.state}, ino={self.ino})"

    @property
    def refs(self) -> int:
        return self._refs

    @refs.setter
    def refs(self, value: int) -> None:
        """File.refs, watched: when a reference goes and all that are left are in flight,
        the socket may be garbage (unix_release_sock's unix_gc, run at once here)."""
        dropped = value < getattr(self, "_refs", 0)
        self._refs = value
        if dropped and value and value == self.inflight:
            collect(self.names, self)

    # -- small state questions -------------------------------------------------------------
    @property
    def nonblocking(self) -> bool:
        return bool(self.flags & os.O_NONBLOCK)

    def writable(self) -> bool:
        """unix_writable: not a listener, and at most a quarter of the send buffer in use
        (counting the reference the allocator keeps: refcount starts at 1)."""
        return self.state != LISTEN and (self.wmem + 1) << 2 <= self.sndbuf

    def recvq_full(self) -> bool:
        return len(self.pending if self.state == LISTEN else self.queue) > self.backlog

    def take_error(self) -> int:
        """sock_error: the pending error, cleared by reading it."""
        e, self.err = self.err, 0
        return e

    def passcred_enabled(self, other: "UnixSocket") -> bool:
        """unix_passcred_enabled: credentials ride along when either end asks for them (or
        the receiver is an embryo no one has accepted yet)."""
        return self.passcred or other.passcred or other.listener is not None

    @staticmethod
    def timeo(jiffies: int | None, nonblock: bool) -> float | None:
        if nonblock:
            return 0
        return None if jiffies is None else jiffies / HZ

    # -- File --------------------------------------------------------------------------------
    def stat(self) -> os.stat_result:
        t = self.ctime_ns
        return os.stat_result(
            (st_.S_IFSOCK | 0o777, self.ino, SOCKFS_DEV, 1, self.uid, self.gid, 0,
             t // 1_000_000_000, t // 1_000_000_000, t // 1_000_000_000),
            {"st_atime_ns": t, "st_mtime_ns": t, "st_ctime_ns": t,
             "st_blksize": PAGE_SIZE, "st_blocks": 0, "st_rdev": 0})

    def read(self, task: "Task", count: int) -> bytes:
        """read(2): recvmsg with no flags, no name, no control buffer (passed fds are
        closed); a zero-length read returns at once (sock_read_iter)."""
        if not count:
            return b""
        pieces: list[bytes] = []

        def sink(_offset: int, data: bytes) -> int:  # pieces arrive in order, never fail
            pieces.append(data)
            return len(data)

        got = self.recvmsg(task, count, MSG_DONTWAIT if self.nonblocking else 0, sink, False)
        if got.files:
            Scm(got.files).drop()
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def read_into(self, task: "Task", sink: Scatter, count: int) -> int:
        """read(2)/readv(2) straight into the caller's buffer (sink), so bytes that cannot
        be stored stay queued as on Linux (File.read's bytes would be consumed first)."""
        if not count:
            return 0
        got = self.recvmsg(task, count, MSG_DONTWAIT if self.nonblocking else 0, sink, False)
        if got.files:
            Scm(got.files).drop()
        return got.count

    def write(self, task: "Task", data: bytes) -> int:
        flags = MSG_DONTWAIT if self.nonblocking else 0
        return self.sendmsg(task, lambda off, n: data[off:off + n], len(data), None, Scm(), flags)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        mm = task.tg.mm
        if request == SIOCINQ:
            if self.state == LISTEN:
                raise SyscallError(EINVAL)
            if self.kind == SOCK_DGRAM:
                amount = len(self.queue[0]) if self.queue else 0
            elif self.kind == SOCK_STREAM:
                amount = self.inq_len
            else:
                amount = sum(len(skb) for skb in self.queue)
            mm.write(arg, struct.pack("<i", amount))
            return 0
        if request == SIOCOUTQ:
            mm.write(arg, struct.pack("<i", self.wmem))
            return 0
        if request == SIOCATMARK:
            mm.write(arg, struct.pack("<i", int(self.at_mark())))
            return 0
        if request in (FIOSETOWN, SIOCSPGRP):  # sock_ioctl: f_setown(file, pid, 1)
            self.set_owner(task, struct.unpack("<i", mm.read(arg, 4))[0])
            return 0
        if request in (FIOGETOWN, SIOCGPGRP):
            mm.write(arg, struct.pack("<i", self.owner))
            return 0
        task.kernel.warn_once(f"ioctl:sock:{request:#x}",
                              f"ioctl({request:#x}) on an AF_UNIX socket not supported -> ENOTTY")
        return super().ioctl(task, request, arg)

    def at_mark(self) -> bool:
        """SIOCATMARK: the next byte read would be the urgent one, or a read stops at once
        in front of an urgent byte already taken (its emptied skb heads the queue)."""
        queue = self.queue
        if not queue:
            return False
        head, oob = queue[0], self.oob_skb
        if head is oob:
            return True
        return not len(head) and (oob is None or (len(queue) > 1 and queue[1] is oob))

    def _send_sigurg(self, task: "Task") -> None:
        """sk_send_sigurg: SIGURG (SI_KERNEL) to the owner process or each process of the
        owner group (or thread)."""
        kernel = task.kernel
        for target in self.owner_targets(kernel):
            kernel.send_signal(target, SIGURG, basic_siginfo(SIGURG, SI_KERNEL))

    # -- readiness ---------------------------------------------------------------------------
    def poll_events(self) -> int:
        """unix_poll (STREAM) / unix_dgram_poll (DGRAM, SEQPACKET), bit for bit."""
        mask = 0
        shut = self.shutdown_bits
        if self.err:
            mask |= POLLERR
        if shut == SHUTDOWN_MASK:
            mask |= POLLHUP
        if shut & RCV_SHUTDOWN:
            mask |= POLLRDHUP | POLLIN | POLLRDNORM
        if self.queue or self.pending:
            mask |= POLLIN | POLLRDNORM
        if self.kind != SOCK_DGRAM and self.state == CLOSE:
            mask |= POLLHUP
        if self.writable() and not self._peer_full():
            mask |= POLLOUT | POLLWRNORM | POLLWRBAND
        if self.oob_skb is not None:
            mask |= POLLPRI
        return mask

    def _peer_full(self) -> bool:
        """unix_dgram_peer_wake_me: a datagram socket connected to a socket that is not
        connected back and whose queue is full cannot write; our pollers are then told
        (through a relay on the peer's peer_wait) when the peer reads."""
        other = self.peer
        if self.kind == SOCK_STREAM or other is None or other.peer is self:
            return False
        if not other.recvq_full() or other.dead:
            return False
        if self.peer_wake is None:
            self.peer_wake = QueueCallback(self._peer_woke)
        if self.peer_wake not in other.peer_wait.waiters:
            other.peer_wait.waiters.append(self.peer_wake)
        return True

    def _peer_woke(self) -> None:
        self.wait.notify()

    def poll_queue(self) -> WaitQueue:
        return self.wait

    # -- names -------------------------------------------------------------------------------
    def getname(self, peer: bool) -> bytes:
        """unix_getname: our (or the peer's) address; just the family when unbound."""
        sock = self
        if peer:
            sock = self.peer
            if sock is None:
                raise SyscallError(ENOTCONN)
        return sock.addr or AF_UNIX.to_bytes(2, "little")

    def bind(self, task: "Task", raw: bytes) -> None:
        """unix_bind: autobind with only a family, else a path or an abstract name."""
        if len(raw) == SUN_PATH_OFFSET and int.from_bytes(raw, "little") == AF_UNIX:
            self.autobind()
            return
        validate_addr(raw)
        if raw[SUN_PATH_OFFSET]:
            self._bind_path(task, raw)
        else:
            self._bind_abstract(raw)

    def _bind_path(self, task: "Task", raw: bytes) -> None:
        """unix_bind_bsd: the node first (EADDRINUSE if the name exists), then EINVAL if we
        were bound already (removing the node again), as Linux orders it."""
        path = bsd_path(raw)
        root = task.tg.fs.root
        try:
            root.mknod(task, AT_FDCWD, path, st_.S_IFSOCK | 0o777, 0)  # umask applied there
        except SyscallError as e:
            raise SyscallError(EADDRINUSE if e.errno == EEXIST else e.errno) from None
        if self.addr is not None:
            try:
                root.unlink(task, AT_FDCWD, path, False)
            except SyscallError:
                pass
            raise SyscallError(EINVAL)
        st = root.stat(task, AT_FDCWD, path, False)
        key = (st.st_dev, st.st_ino)
        self._set_name(raw[:SUN_PATH_OFFSET] + path + b"\0", ("path", key))
        self.names.paths[key] = self

    def _bind_abstract(self, raw: bytes) -> None:
        if self.addr is not None:
            raise SyscallError(EINVAL)
        key = (self.kind, raw[SUN_PATH_OFFSET:])
        if key in self.names.abstract:
            raise SyscallError(EADDRINUSE)
        self._set_name(raw, ("abstract", key))
        self.names.abstract[key] = self

    def autobind(self) -> None:
        """unix_autobind: a free abstract name of five hex digits ("\\0xxxxx")."""
        if self.addr is not None:
            return
        table = self.names.abstract
        start = random.getrandbits(20)
        for i in range(1, 1 << 20):
            name = b"\0%05x" % ((start + i) & 0xFFFFF)
            if (self.kind, name) not in table:
                break
        else:
            raise SyscallError(ENOSPC)
        self._set_name(AF_UNIX.to_bytes(2, "little") + name, ("abstract", (self.kind, name)))
        table[(self.kind, name)] = self

    def _set_name(self, addr: bytes, bound: tuple) -> None:
        self.addr = addr
        self.bound = bound

    def _unbind(self) -> None:
        if self.bound is None:
            return
        table = self.names.paths if self.bound[0] == "path" else self.names.abstract
        if table.get(self.bound[1]) is self:
            del table[self.bound[1]]
        self.bound = None

    # -- connections ---------------------------------------------------------------------------
    def listen(self, task: "Task", backlog: int) -> None:
        """unix_listen (the backlog already clamped to somaxconn by the caller)."""
        if self.kind not in (SOCK_STREAM, SOCK_SEQPACKET):
            raise SyscallError(EOPNOTSUPP)
        if self.addr is None or self.state not in (CLOSE, LISTEN):
            raise SyscallError(EINVAL)
        if backlog > self.backlog:
            self.peer_wait.notify()  # connectors waiting for room may fit now
        self.backlog = backlog
        self.state = LISTEN
        self.peercred = peer_creds(task)  # what connecting clients will see

    def connect(self, task: "Task", raw: bytes, nonblock: bool) -> None:
        if self.kind == SOCK_DGRAM:
            self._dgram_connect(task, raw)
        else:
            self._stream_connect(task, raw, nonblock)

    def _stream_connect(self, task: "Task", raw: bytes, nonblock: bool) -> None:
        """unix_stream_connect: the listener first (ENOENT, ECONNREFUSED, waiting for room
        in its backlog), then our own state (EISCONN); the server's socket is made now and
        queued on the listener, and we are connected before anyone accepts."""
        validate_addr(raw)
        if self.passcred and self.addr is None:
            self.autobind()
        other = find(task, raw, self.kind)
        if other.state != LISTEN or other.shutdown_bits & RCV_SHUTDOWN:
            raise SyscallError(ECONNREFUSED)
        if other.recvq_full():
            wait(task, other.peer_wait, self.timeo(self.sndtimeo, nonblock))
        if self.state != CLOSE:
            raise SyscallError(EISCONN if self.state == ESTABLISHED else EINVAL)
        embryo = UnixSocket(task, self.kind)
        embryo.peer = self
        embryo.state = ESTABLISHED
        embryo.peercred = peer_creds(task)
        embryo.listener = other
        embryo.addr = other.addr
        self.peercred = other.peercred
        self.state = ESTABLISHED
        self.peer = embryo
        other.pending.append(embryo)
        other.wait.notify()

    def _dgram_connect(self, task: "Task", raw: bytes) -> None:
        """unix_dgram_connect: (re)connect to a socket that may send to us, or dissolve the
        association with AF_UNSPEC; a new peer purges what the old one had queued."""
        if len(raw) < 2:
            raise SyscallError(EINVAL)
        other: UnixSocket | None = None
        if int.from_bytes(raw[:2], "little") != AF_UNSPEC:
            validate_addr(raw)
            if self.passcred and self.addr is None:
                self.autobind()
            other = find(task, raw, self.kind)
            if other.peer is not None and other.peer is not self:
                raise SyscallError(EPERM)
            self.state = other.state = ESTABLISHED
        old = self.peer
        self.peer = other
        if old is None:
            return
        if other is None:
            self.state = CLOSE
        self._peer_wake_disconnect(old)
        self.wait.notify()
        if other is not old:
            self._dgram_disconnected(old)
            if old.peer is None:
                old.state = CLOSE

    def _peer_wake_disconnect(self, other: "UnixSocket") -> None:
        hook = self.peer_wake
        if hook is not None and hook in other.peer_wait.waiters:
            other.peer_wait.waiters.remove(hook)

    def _dgram_disconnected(self, other: "UnixSocket") -> None:
        """unix_dgram_disconnected: what our old peer sent us is dropped; if it was
        connected back to us, it learns ECONNRESET."""
        if not self.queue:
            return
        self._purge()
        self.peer_wait.notify()
        if not other.dead and other.peer is self:
            other.err = ECONNRESET
            other.wait.notify()

    def accept(self, task: "Task", nonblock: bool) -> "UnixSocket":
        """unix_accept: the oldest pending connection (its socket, already connected)."""
        if self.kind not in (SOCK_STREAM, SOCK_SEQPACKET):
            raise SyscallError(EOPNOTSUPP)
        if self.state != LISTEN:
            raise SyscallError(EINVAL)
        while not self.pending:
            err = self.take_error()
            if err:
                raise SyscallError(err)
            if nonblock:
                raise SyscallError(EAGAIN)
            if self.shutdown_bits & RCV_SHUTDOWN:
                raise SyscallError(EINVAL)
            wait(task, self.wait, self.timeo(self.rcvtimeo, False))
        embryo = self.pending.popleft()
        self.peer_wait.notify()
        embryo.listener = None
        embryo.passcred = self.passcred  # unix_sock_inherit_flags
        creds = task.tg.creds
        embryo.uid, embryo.gid = creds.fsuid, creds.fsgid  # its inode is made by accept
        return embryo

    def pair(self, other: "UnixSocket", task: "Task") -> None:
        """unix_socketpair: back to back, each crediting the caller as its peer."""
        self.peer, other.peer = other, self
        self.peercred = other.peercred = peer_creds(task)
        self.state = other.state = ESTABLISHED

    def shutdown(self, how: int) -> None:
        """unix_shutdown: our half, and for connected STREAM/SEQPACKET the mirror on the
        peer (our SHUT_WR is its RCV_SHUTDOWN)."""
        if how < 0 or how > 2:
            raise SyscallError(EINVAL)
        mode = how + 1
        self.shutdown_bits |= mode
        self.wait.notify()
        other = self.peer
        if other is not None and self.kind != SOCK_DGRAM:
            peer_mode = (SEND_SHUTDOWN if mode & RCV_SHUTDOWN else 0) | \
                (RCV_SHUTDOWN if mode & SEND_SHUTDOWN else 0)
            other.shutdown_bits |= peer_mode
            other.wait.notify()

    # -- sending -----------------------------------------------------------------------------
    def _fds_user(self, task: "Task") -> int:
        """unix_attach_fds: the user to charge for a message's files; ETOOMANYREFS when it
        already has more in flight than RLIMIT_NOFILE, unless capable."""
        from snakevisor.syscalls.sys_cred import has_cap
        from snakevisor.syscalls.sys_file import _nofile
        user = task.tg.creds.ruid
        if (self.names.user_inflight.get(user, 0) > _nofile(task)
                and not has_cap(task, CAP_SYS_RESOURCE) and not has_cap(task, CAP_SYS_ADMIN)):
            raise SyscallError(ETOOMANYREFS)
        return user

    def sendmsg(self, task: "Task", gather: Gather, total: int, dest: bytes | None, scm: Scm,
                flags: int) -> int:
        """Send `total` bytes (pulled through gather) to the peer or to `dest`.  The files
        in scm are consumed either way (queued, or dropped on failure)."""
        try:
            if self.kind == SOCK_STREAM:
                sent = self._stream_send(task, gather, total, dest, scm, flags)
            else:
                if self.kind == SOCK_SEQPACKET:
                    err = self.take_error()
                    if err:
                        raise SyscallError(err)
                    if self.state != ESTABLISHED:
                        raise SyscallError(ENOTCONN)
                    dest = None  # a SEQPACKET send ignores any address
                sent = self._dgram_send(task, gather, total, dest, scm, flags)
        finally:
            scm.drop()  # a call that waits reads its ancillary data again when it resumes
        finished(task)
        return sent

    def _stream_send(self, task: "Task", gather: Gather, total: int, dest: bytes | None,
                     scm: Scm, flags: int) -> int:
        """unix_stream_sendmsg: skb by skb, each waiting for room in our send buffer; fds go
        with the first skb only.  Bytes queued before a wait are kept in the call's state.
        With MSG_OOB the last byte goes alone, as the peer's urgent byte (queue_oob)."""
        oob = bool(flags & MSG_OOB)
        if oob and not total:
            raise SyscallError(EOPNOTSUPP)
        if dest:
            raise SyscallError(EISCONN if self.state == ESTABLISHED else EOPNOTSUPP)
        other = self.peer
        if other is None:
            raise SyscallError(ENOTCONN)
        state = task.syscall_state
        sent = state.get(TRANSFERRED, 0) if state else 0
        if self.shutdown_bits & SEND_SHUTDOWN:
            if not flags & MSG_NOSIGNAL:
                sigpipe(task)
            raise SyscallError(EPIPE)
        files = scm.files if not sent else None
        nonblock = bool(flags & MSG_DONTWAIT)
        normal = total - 1 if oob else total
        while sent < total:
            if sent < normal:
                size, truesize = stream_skb(normal - sent, self.sndbuf)
            else:
                size, truesize = 1, _head_truesize(1)  # queue_oob's one-byte skb
            if self.wmem >= self.sndbuf:
                try:
                    if sent:
                        save_progress(task, sent)
                    wait(task, self.wait, self.timeo(self.sndtimeo, nonblock))
                except SyscallError:
                    if sent:
                        return sent
                    raise
            user = self._fds_user(task) if files else 0
            data = gather(sent, size)
            if len(data) < size:
                if sent:
                    return sent
                raise SyscallError(EFAULT)
            if other.dead or other.shutdown_bits & RCV_SHUTDOWN:
                if not sent and not flags & MSG_NOSIGNAL:
                    sigpipe(task)
                if sent:
                    return sent
                raise SyscallError(EPIPE)
            creds = scm.creds
            if creds is None and (self.passcred or other.passcred or other.listener):
                creds = sender_creds(task)  # unix_passcred_enabled
            skb = Skb(data, self, truesize, files, creds, user)
            if sent == normal:
                other.oob_skb = skb  # an earlier urgent byte becomes ordinary data
            self._queue_to(other, skb)
            if sent == normal:
                other._send_sigurg(task)
            if files is not None:
                scm.files = files = None  # they travel with this skb now
            sent += size
        return sent

    def _dgram_send(self, task: "Task", gather: Gather, total: int, dest: bytes | None,
                    scm: Scm, flags: int) -> int:
        """unix_dgram_sendmsg: one message, whole, to the peer or to `dest`."""
        if flags & MSG_OOB:
            raise SyscallError(EOPNOTSUPP)
        other = None
        if dest:
            validate_addr(dest)
        else:
            other = self.peer
            if other is None:
                raise SyscallError(ENOTCONN)
        if self.shutdown_bits & SEND_SHUTDOWN:
            raise SyscallError(EPIPE)
        if self.passcred and self.addr is None:
            self.autobind()
        if total > self.sndbuf - 32:
            raise SyscallError(EMSGSIZE)
        nonblock = bool(flags & MSG_DONTWAIT)
        if self.wmem >= self.sndbuf:
            wait(task, self.wait, self.timeo(self.sndtimeo, nonblock))
        user = self._fds_user(task) if scm.files else 0
        data = gather(0, total)
        if len(data) < total:
            raise SyscallError(EFAULT)
        if other is None:
            other = find(task, dest, self.kind)  # type: ignore[arg-type]
        if other.peer is not None and other.peer is not self:
            raise SyscallError(EPERM)  # unix_may_send
        if other.dead:
            if self.kind == SOCK_SEQPACKET:
                raise SyscallError(EPIPE)
            if self.peer is other:  # our peer is gone: we are no longer connected
                self.peer = None
                self._peer_wake_disconnect(other)
                self.wait.notify()
                self.state = CLOSE
                self._dgram_disconnected(other)
            raise SyscallError(ECONNREFUSED)
        if other.shutdown_bits & RCV_SHUTDOWN:
            raise SyscallError(EPIPE)
        if other is not self and other.peer is not self and other.recvq_full():
            wait(task, other.peer_wait, self.timeo(self.sndtimeo, nonblock))
        creds = scm.creds
        if creds is None and self.passcred_enabled(other):
            creds = sender_creds(task)
        self._queue_to(other, Skb(data, self, dgram_truesize(total), scm.files, creds, user))
        scm.files = None
        return total

    def _queue_to(self, other: "UnixSocket", skb: Skb) -> None:
        if skb.files:
            _attach(self.names, skb)
        self.wmem += skb.truesize
        other.inq_len += len(skb.data)
        other.queue.append(skb)
        if other.wait.waiters:
            other.wait.notify()  # sk_data_ready

    # -- receiving ---------------------------------------------------------------------------
    def recvmsg(self, task: "Task", size: int, flags: int, sink: Scatter,
                want_name: bool) -> Received:
        """Receive up to `size` bytes through sink; the files returned are the caller's."""
        if self.kind == SOCK_STREAM:
            got = self._stream_recv(task, size, flags, sink, want_name)
        else:
            if self.kind == SOCK_SEQPACKET and self.state != ESTABLISHED:
                raise SyscallError(ENOTCONN)
            got = self._dgram_recv(task, size, flags, sink, want_name)
        finished(task)
        return got

    def _stream_recv(self, task: "Task", size: int, flags: int, sink: Scatter,
                     want_name: bool) -> Received:
        """unix_stream_read_generic: gather skbs up to `size`; stop after one that carried
        fds, before one from another writer (SO_PASSCRED), and once `target` bytes are in
        and the queue is empty (target: 1, SO_RCVLOWAT, or everything with MSG_WAITALL)."""
        if self.state != ESTABLISHED:
            raise SyscallError(EINVAL)
        if flags & MSG_OOB:
            return self._recv_urg(size, flags, sink)
        target = size if flags & MSG_WAITALL else min(self.rcvlowat, size)
        target = target or 1
        nonblock = bool(flags & MSG_DONTWAIT)
        peek = bool(flags & MSG_PEEK)
        state = task.syscall_state
        if state:
            copied = state.get(TRANSFERRED, 0)
            glued: Ucred | None = state.get(GLUED_CREDS)
        else:
            copied, glued = 0, None
        check_creds = glued is not None
        name = None
        files: list[File] | None = None
        queue = self.queue
        index = 0  # a peek walks the queue without consuming it
        while True:  # at least once: a zero-length read still waits for data, as Linux
            skb = queue[index] if index < len(queue) else None
            if skb is not None and (skb is self.oob_skb or not len(skb)):
                at = self._manage_oob(index, peek, copied)
                if at is None and copied:
                    break  # the mark
                skb = None if at is None else queue[at]
                index = index if at is None else at
            if skb is None:
                if copied >= target or index:
                    break
                err = self.take_error()
                if err:
                    if copied:
                        break
                    raise SyscallError(err)
                if self.shutdown_bits & RCV_SHUTDOWN:
                    break
                try:
                    if copied:
                        save_progress(task, copied)
                        task.syscall_state[GLUED_CREDS] = glued if check_creds else None
                    wait(task, self.wait, self.timeo(self.rcvtimeo, nonblock))
                except SyscallError:
                    if copied:
                        break
                    raise
            skb_creds = skb.creds or NO_CREDS
            if check_creds:
                if skb_creds != glued:
                    break
            elif self.passcred:
                glued, check_creds = skb_creds, True
            if want_name:
                name = skb.sender.addr
            chunk = min(len(skb), size - copied)
            piece = skb.data[skb.pos:skb.pos + chunk]
            if sink(copied, piece) < chunk:
                if not copied:
                    raise SyscallError(EFAULT)
                break
            copied += chunk
            if peek:
                if skb.files:
                    files = hold(skb.files)
                    break
                index += 1
            else:
                skb.pos += chunk
                self.inq_len -= chunk
                if skb.files:
                    files = _detach(skb)
                if len(skb):
                    break
                queue.popleft()
                self._free(skb)
                if files:
                    break
            if copied >= size:
                break
        creds = None
        if self.passcred:
            creds = glued if check_creds else Ucred(0, 0, 0)
        return Received(copied, 0, name, files, creds)

    @property
    def oobinline(self) -> bool:
        return bool(self.options.get(SO_OOBINLINE))

    def _manage_oob(self, index: int, peek: bool, copied: int) -> int | None:
        """manage_oob: where a stream read goes on from queue[index] (None: nowhere).  A
        read that copied something stops at the urgent byte or at the emptied skb of one
        taken by recv(MSG_OOB); one that starts there steps over the emptied skb (freeing
        it) and takes the urgent byte (SO_OOBINLINE) or drops it.  A peek only steps."""
        queue = self.queue
        skb, oob = queue[index], self.oob_skb
        if len(skb) and skb is not oob:
            return index
        if not len(skb):
            if copied and (oob is None or skb is oob):
                return None
            if peek:
                index += 1
            else:
                del queue[index]
                self._free(skb)
            if index >= len(queue):
                return None
            skb = queue[index]
        if skb is not oob:
            return index
        if copied:
            return None
        if not peek:
            self.oob_skb = None
            if not self.oobinline:
                del queue[index]  # dropped; SIOCINQ still counts it, as Linux's inq_len
                self._free(skb)
                return index if index < len(queue) else None
        elif not self.oobinline:
            index += 1
            return index if index < len(queue) else None
        return index

    def _recv_urg(self, size: int, flags: int, sink: Scatter) -> Received:
        """unix_stream_recv_urg: the urgent byte (EINVAL when none, or SO_OOBINLINE); its
        skb stays queued, emptied, and an emptied one in front of it goes."""
        oob = self.oob_skb
        if oob is None or self.oobinline:
            raise SyscallError(EINVAL)
        byte = oob.data[oob.pos:oob.pos + 1]
        if not flags & MSG_PEEK:
            self.oob_skb = None
            self.inq_len -= 1
            queue = self.queue
            at = next(i for i, skb in enumerate(queue) if skb is oob)
            if at and not len(queue[at - 1]):
                prev = queue[at - 1]
                del queue[at - 1]
                self._free(prev)
            oob.pos += 1
        if size and sink(0, byte) < 1:
            raise SyscallError(EFAULT)
        return Received(1, MSG_OOB, None, None, None)

    def _dgram_recv(self, task: "Task", size: int, flags: int, sink: Scatter,
                    want_name: bool) -> Received:
        """__unix_dgram_recvmsg: one message; a short buffer truncates it (MSG_TRUNC),
        and with MSG_TRUNC in flags the result is its real length."""
        if flags & MSG_OOB:
            raise SyscallError(EOPNOTSUPP)
        nonblock = bool(flags & MSG_DONTWAIT)
        while True:
            err = self.take_error()
            if err:
                raise SyscallError(err)
            if self.queue:
                break
            if nonblock or self.rcvtimeo == 0:
                if self.kind == SOCK_SEQPACKET and self.shutdown_bits & RCV_SHUTDOWN:
                    return Received(0, 0, None, None, None)
                raise SyscallError(EAGAIN)
            if self.shutdown_bits & RCV_SHUTDOWN:
                return Received(0, 0, None, None, None)
            if self.kind == SOCK_SEQPACKET and self.state not in (ESTABLISHED, LISTEN):
                raise SyscallError(ENOTCONN)
            wait(task, self.wait, self.timeo(self.rcvtimeo, False))
        skb = self.queue[0] if flags & MSG_PEEK else self.queue.popleft()
        if not flags & MSG_PEEK:
            self.peer_wait.notify()  # a sender waiting for room in our queue
        length = len(skb.data)
        out_flags = MSG_TRUNC if size < length else 0
        n = min(size, length)
        try:
            if n and sink(0, skb.data[:n]) < n:
                raise SyscallError(EFAULT)  # the message is lost, as on Linux
            if flags & MSG_PEEK:
                files = hold(skb.files) if skb.files else None
            else:
                files = _detach(skb)
        finally:
            if not flags & MSG_PEEK:
                self._free(skb)
        creds = (skb.creds or NO_CREDS) if self.passcred else None
        name = skb.sender.addr if want_name else None
        return Received(length if flags & MSG_TRUNC else n, out_flags, name, files, creds)

    # -- releasing ---------------------------------------------------------------------------
    def _free(self, skb: Skb) -> None:
        """An skb is gone (read, purged): its fds are closed, its sender's buffer credited."""
        if skb.files:
            Scm(_detach(skb)).drop()
        sender = skb.sender
        sender.wmem -= skb.truesize
        if sender.wait.waiters and sender.writable():
            sender.wait.notify()  # unix_write_space

    def _purge(self) -> None:
        queue = self.queue
        while queue:
            self._free(queue.popleft())

    def release(self) -> None:
        """The last reference closed: unix_release_sock."""
        self._release(embryo=False)

    def _release(self, embryo: bool) -> None:
        self._unbind()
        self.dead = True
        self.shutdown_bits = SHUTDOWN_MASK
        was = self.state
        self.state = CLOSE
        other, self.peer = self.peer, None
        self.peer_wait.notify()
        if other is not None:
            if self.kind != SOCK_DGRAM:
                other.shutdown_bits = SHUTDOWN_MASK
                if self.queue or embryo:
                    other.err = ECONNRESET
                other.wait.notify()
            self._peer_wake_disconnect(other)
        if was == LISTEN:
            pending, self.pending = self.pending, deque()
            for sock in pending:
                sock._release(embryo=True)
        self.oob_skb = None
        self._purge()
        self.wait.notify()


# -- creation ---------------------------------------------------------------------------------
def create(task: "Task", kind: int, protocol: int, flags: int) -> UnixSocket:
    """unix_create: protocol 0 (or PF_UNIX); SOCK_RAW is a SOCK_DGRAM socket."""
    if protocol and protocol != AF_UNIX:
        raise SyscallError(EPROTONOSUPPORT)
    if kind == SOCK_RAW:
        kind = SOCK_DGRAM
    if kind not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
        raise SyscallError(ESOCKTNOSUPPORT)
    return UnixSocket(task, kind, O_RDWR | (flags & os.O_NONBLOCK))


# ioctl numbers a socket answers (include/uapi/asm-generic/sockios.h, linux/sockios.h)
SIOCINQ, SIOCOUTQ = 0x541B, 0x5411  #: FIONREAD, TIOCOUTQ
FIOSETOWN, SIOCSPGRP, FIOGETOWN, SIOCGPGRP, SIOCATMARK = 0x8901, 0x8902, 0x8903, 0x8904, 0x8905
