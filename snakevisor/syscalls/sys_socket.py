"""The socket system calls: argument decoding as net/socket.c does it, then the socket.

Families: AF_UNIX is served by the sentry (snakevisor.net.unix, its control messages in
sys_unix).  Every other family answers EAFNOSUPPORT with a log line — AF_INET, AF_INET6
and AF_NETLINK come with the network issue.  Calls on a descriptor that is not a socket
answer EBADF/ENOTSOCK, as Linux does (bash asks getpeername on its stdin).

What is generic lives here, following net/socket.c and net/core/sock.c: socket/socketpair
type flags and fd reservation (EMFILE before EFAULT before the family's errors),
move_addr_to_kernel / move_addr_to_user (lengths clamped and written back as Linux does),
msghdr and mmsghdr decoding (EMSGSIZE past UIO_MAXIOV, ENOBUFS past optmem_max),
O_NONBLOCK turning into MSG_DONTWAIT, and the SOL_SOCKET options with their sizes,
rounding (timeouts kept in 250 Hz jiffies) and limits (SO_SNDBUF doubled, at least
SOCK_MIN_SNDBUF, at most 2 * wmem_max).
"""
from __future__ import annotations

import errno
import itertools
import os
import struct
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import (EAGAIN, EBADF, EINVAL, EMFILE, EOPNOTSUPP, EPERM, ERANGE,
                                      Block, SyscallError)
from snakevisor.mm.address_space import PROT_READ
from snakevisor.net import unix
from snakevisor.net.unix import Scm, UnixSocket
from snakevisor.syscalls import syscall, sys_unix
from snakevisor.syscalls.args import s32, u32
from snakevisor.syscalls.sys_file import MAX_RW_COUNT, _check_fd_room, _nofile

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.mm.address_space import AddressSpace

ENOTSOCK, EMSGSIZE, ENOBUFS, ENOPROTOOPT, EAFNOSUPPORT, EDOM, ENODATA = (
    errno.ENOTSOCK, errno.EMSGSIZE, errno.ENOBUFS, errno.ENOPROTOOPT, errno.EAFNOSUPPORT,
    errno.EDOM, errno.ENODATA)
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET = 1, 2, 10, 16, 17
NPROTO = 46  #: AF_MAX
SOCK_MAX = 11
SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK, SOCK_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
SOMAXCONN = 4096  #: net.core.somaxconn of a fresh network namespace
OPTMEM_MAX = 131072  #: net.core.optmem_max
UIO_MAXIOV = 1024
SOCKADDR_STORAGE = 128
MSG_DONTWAIT, MSG_CMSG_CLOEXEC, MSG_WAITFORONE = 0x40, 0x40000000, 0x10000
INT_MAX = 0x7FFFFFFF
CAP_NET_ADMIN = 12
_FAMILY_NAMES = {AF_INET: "AF_INET", AF_INET6: "AF_INET6", AF_NETLINK: "AF_NETLINK",
                 AF_PACKET: "AF_PACKET"}

#: struct msghdr: name, namelen, iov, iovlen, control, controllen, flags
_MSGHDR = struct.Struct("<QI4xQQQQi4x")
_UNIX_ONLY = "AF_UNIX only (MSG_OOB: stream sockets, as Linux >= 5.15)"
MMSGHDR_SIZE = _MSGHDR.size + 8  #: struct mmsghdr adds msg_len (and padding)
_INT = struct.Struct("<i")


# -- helpers ---------------------------------------------------------------------------------
def sock_of(task: "Task", fd: int) -> UnixSocket:
    """sockfd_lookup: EBADF for a closed fd, ENOTSOCK for anything but a socket."""
    file = task.tg.fds.files.get(s32(fd))
    if file is None:
        raise SyscallError(EBADF)
    if not getattr(file, "is_socket", False):
        raise SyscallError(ENOTSOCK)
    return file  # type: ignore[return-value]


def addr_in(task: "Task", addr: int, length: int) -> bytes:
    """move_addr_to_kernel: EINVAL outside 0..sizeof(sockaddr_storage), EFAULT."""
    length = s32(length)
    if length < 0 or length > SOCKADDR_STORAGE:
        raise SyscallError(EINVAL)
    return task.tg.mm.read(addr, length) if length else b""


def addr_out(task: "Task", name: bytes, uaddr: int, ulen_addr: int) -> None:
    """move_addr_to_user: as much of the name as the buffer holds; the full length is
    written back ("the value before truncation", 1003.1g)."""
    mm = task.tg.mm
    ulen = _INT.unpack(mm.read(ulen_addr, 4))[0]
    ulen = min(ulen, len(name))
    if ulen < 0:
        raise SyscallError(EINVAL)
    if ulen:
        mm.write(uaddr, name[:ulen])
    mm.write(ulen_addr, _INT.pack(len(name)))


def _flags(sock: UnixSocket, flags: int) -> int:
    return flags | MSG_DONTWAIT if sock.nonblocking else flags


def gatherer(mm: "AddressSpace", vecs: list[tuple[int, int]]) -> unix.Gather:
    """Reads payload bytes out of an iovec, short at the first unreadable byte."""
    def gather(offset: int, n: int) -> bytes:
        pieces = []
        for base, length in vecs:
            if offset >= length:
                offset -= length
                continue
            take = min(length - offset, n)
            try:
                pieces.append(mm.read(base + offset, take))
            except SyscallError:
                got = mm.accessible(base + offset, take, PROT_READ)
                if got:
                    pieces.append(mm.read(base + offset, got))
                break
            n -= take
            offset = 0
            if not n:
                break
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
    return gather


def scatterer(mm: "AddressSpace", vecs: list[tuple[int, int]]) -> unix.Scatter:
    """Writes received bytes into an iovec at an offset; returns how many it could."""
    def sink(offset: int, data: bytes) -> int:
        done = 0
        for base, length in vecs:
            if offset >= length:
                offset -= length
                continue
            take = min(length - offset, len(data) - done)
            wrote = mm.write_prefix(base + offset, data[done:done + take])
            done += wrote
            if wrote < take or done >= len(data):
                break
            offset = 0
        return done
    return sink


def _iovec(task: "Task", addr: int, count: int) -> tuple[list[tuple[int, int]], int]:
    """A msghdr's iovec: EMSGSIZE past UIO_MAXIOV; the total clipped to MAX_RW_COUNT."""
    if count > UIO_MAXIOV:
        raise SyscallError(EMSGSIZE)
    vecs = task.tg.mm.read_iovec(addr, count)
    return vecs, min(sum(n for _, n in vecs), MAX_RW_COUNT)


# -- creation ----------------------------------------------------------------------------------
def _type_flags(kind: int) -> tuple[int, int]:
    """(type, SOCK_NONBLOCK|SOCK_CLOEXEC): EINVAL for any other flag bit."""
    flags = kind & ~SOCK_TYPE_MASK
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        raise SyscallError(EINVAL)
    return kind & SOCK_TYPE_MASK, flags


def _create(task: "Task", family: int, kind: int, protocol: int, flags: int,
            call: str) -> UnixSocket:
    """__sock_create: the family's range, the type's range, then the family itself."""
    if family < 0 or family >= NPROTO:
        raise SyscallError(EAFNOSUPPORT)
    if kind < 0 or kind >= SOCK_MAX:
        raise SyscallError(EINVAL)
    if family != AF_UNIX:
        name = _FAMILY_NAMES.get(family, str(family))
        task.kernel.warn_once(f"socket:{family}", f"{call}(family={name}, type={kind}, "
                              f"protocol={protocol}): only AF_UNIX sockets exist yet "
                              "-> EAFNOSUPPORT")
        raise SyscallError(EAFNOSUPPORT)
    return unix.create(task, kind, protocol, flags)


@syscall("socket", partial="AF_UNIX only: other families answer EAFNOSUPPORT (logged)")
def sys_socket(task: "Task", family: int, kind: int, protocol: int, *_: int) -> int:
    kind, flags = _type_flags(s32(kind))
    sock = _create(task, s32(family), kind, s32(protocol), flags, "socket")
    try:
        return task.tg.fds.install(sock, bool(flags & SOCK_CLOEXEC), 0, _nofile(task))
    except SyscallError:
        sock.release()
        raise


@syscall("socketpair", partial="AF_UNIX only")
def sys_socketpair(task: "Task", family: int, kind: int, protocol: int, sv: int,
                   *_: int) -> int:
    """The two fds are reserved and written first, then the sockets made (Linux's order)."""
    kind, flags = _type_flags(s32(kind))
    family = s32(family)
    fds = task.tg.fds
    limit = _nofile(task)
    free = list(itertools.islice((fd for fd in range(limit) if fd not in fds.files), 2))
    if len(free) < 2:
        raise SyscallError(EMFILE)
    task.tg.mm.write(sv, struct.pack("<ii", *free))
    if family in _FAMILY_NAMES and 0 < kind < SOCK_MAX:
        raise SyscallError(EOPNOTSUPP)  # those families exist on Linux but pair nothing
    a = _create(task, family, kind, s32(protocol), flags, "socketpair")
    b = unix.create(task, a.kind, s32(protocol), flags)
    a.pair(b, task)
    cloexec = bool(flags & SOCK_CLOEXEC)
    fds.set(free[0], a, cloexec)
    fds.set(free[1], b, cloexec)
    return 0


# -- names and connections -------------------------------------------------------------------------
@syscall("bind")
def sys_bind(task: "Task", fd: int, addr: int, length: int, *_: int) -> int:
    sock = sock_of(task, fd)
    sock.bind(task, addr_in(task, addr, length))
    return 0


@syscall("listen")
def sys_listen(task: "Task", fd: int, backlog: int, *_: int) -> int:
    sock = sock_of(task, fd)
    backlog = s32(backlog)
    if u32(backlog) > SOMAXCONN:  # an unsigned comparison: negative means somaxconn
        backlog = SOMAXCONN
    sock.listen(task, backlog)
    return 0


@syscall("connect")
def sys_connect(task: "Task", fd: int, addr: int, length: int, *_: int) -> int:
    sock = sock_of(task, fd)
    sock.connect(task, addr_in(task, addr, length), sock.nonblocking)
    return 0


def _accept(task: "Task", fd: int, addr: int, addrlen: int, flags: int) -> int:
    """__sys_accept4: flags checked first, an fd reserved before waiting; a peer address
    that cannot be written loses the connection, as on Linux."""
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        raise SyscallError(EINVAL)
    sock = sock_of(task, fd)
    limit = _nofile(task)
    _check_fd_room(task, limit)
    new = sock.accept(task, sock.nonblocking)
    new.flags = os.O_RDWR | (flags & SOCK_NONBLOCK)
    if addr:
        try:
            addr_out(task, new.getname(True), addr, addrlen)
        except SyscallError:
            new.release()
            raise
    return task.tg.fds.install(new, bool(flags & SOCK_CLOEXEC), 0, limit)


@syscall("accept")
def sys_accept(task: "Task", fd: int, addr: int, addrlen: int, *_: int) -> int:
    return _accept(task, fd, addr, addrlen, 0)


@syscall("accept4")
def sys_accept4(task: "Task", fd: int, addr: int, addrlen: int, flags: int, *_: int) -> int:
    return _accept(task, fd, addr, addrlen, s32(flags))


@syscall("getsockname")
def sys_getsockname(task: "Task", fd: int, addr: int, addrlen: int, *_: int) -> int:
    addr_out(task, sock_of(task, fd).getname(False), addr, addrlen)
    return 0


@syscall("getpeername")
def sys_getpeername(task: "Task", fd: int, addr: int, addrlen: int, *_: int) -> int:
    addr_out(task, sock_of(task, fd).getname(True), addr, addrlen)
    return 0


@syscall("shutdown")
def sys_shutdown(task: "Task", fd: int, how: int, *_: int) -> int:
    sock_of(task, fd).shutdown(s32(how))
    return 0


# -- data ------------------------------------------------------------------------------------------
@syscall("sendto", partial=_UNIX_ONLY)
def sys_sendto(task: "Task", fd: int, buf: int, length: int, flags: int, addr: int,
               addrlen: int) -> int:
    sock = sock_of(task, fd)
    length = min(length, MAX_RW_COUNT)
    dest = addr_in(task, addr, addrlen) if addr else b""
    gather = gatherer(task.tg.mm, [(buf, length)])
    return sock.sendmsg(task, gather, length, dest or None, Scm(), _flags(sock, u32(flags)))


@syscall("recvfrom")
def sys_recvfrom(task: "Task", fd: int, buf: int, size: int, flags: int, addr: int,
                 addrlen: int) -> int:
    sock = sock_of(task, fd)
    size = min(size, MAX_RW_COUNT)
    sink = scatterer(task.tg.mm, [(buf, size)])
    got = sock.recvmsg(task, size, _flags(sock, u32(flags)), sink, bool(addr))
    Scm(got.files).drop()  # no control buffer: passed fds are closed
    if addr:
        addr_out(task, got.name or b"", addr, addrlen)
    return got.count


def _sendmsg(task: "Task", sock: UnixSocket, msg: int, flags: int) -> int:
    """___sys_sendmsg: the msghdr, its iovec, name and control buffer, then the send."""
    mm = task.tg.mm
    name, namelen, iov, iovlen, ctl, ctl_len, _ = _MSGHDR.unpack(mm.read(msg, _MSGHDR.size))
    namelen = s32(namelen) if name else 0
    if namelen < 0:
        raise SyscallError(EINVAL)
    namelen = min(namelen, SOCKADDR_STORAGE)
    vecs, total = _iovec(task, iov, iovlen)
    dest = mm.read(name, namelen) if namelen else None
    if ctl_len > INT_MAX or (ctl_len > 44 and ctl_len >= OPTMEM_MAX):
        raise SyscallError(ENOBUFS)  # sock_kmalloc of the control buffer fails
    control = mm.read(ctl, ctl_len) if ctl_len else b""
    scm = sys_unix.parse_control(task, control) if control else Scm()
    return sock.sendmsg(task, gatherer(mm, vecs), total, dest, scm, _flags(sock, flags))


def _recvmsg(task: "Task", sock: UnixSocket, msg: int, flags: int) -> int:
    """___sys_recvmsg: receive into the iovec, then the name, control messages, msg_flags
    (MSG_CMSG_CLOEXEC kept, as Linux reports it) and msg_controllen written back."""
    mm = task.tg.mm
    name, namelen, iov, iovlen, ctl, ctl_len, _ = _MSGHDR.unpack(mm.read(msg, _MSGHDR.size))
    if name and s32(namelen) < 0:
        raise SyscallError(EINVAL)
    vecs, total = _iovec(task, iov, iovlen)
    got = sock.recvmsg(task, total, _flags(sock, flags), scatterer(mm, vecs), bool(name))
    used, ctrunc = sys_unix.put_control(task, ctl, ctl_len, got,
                                        bool(flags & MSG_CMSG_CLOEXEC))
    if name:
        addr_out(task, got.name or b"", name, msg + 8)
    out_flags = got.flags | ctrunc | (flags & MSG_CMSG_CLOEXEC)
    mm.write(msg + 40, struct.pack("<Qi", used, out_flags))
    return got.count


@syscall("sendmsg", partial=_UNIX_ONLY)
def sys_sendmsg(task: "Task", fd: int, msg: int, flags: int, *_: int) -> int:
    return _sendmsg(task, sock_of(task, fd), msg, u32(flags))


@syscall("recvmsg")
def sys_recvmsg(task: "Task", fd: int, msg: int, flags: int, *_: int) -> int:
    return _recvmsg(task, sock_of(task, fd), msg, u32(flags))


#: task.syscall_state key of sendmmsg/recvmmsg: messages done before a wait (the key
#: Kernel.interrupt reads, so a signal ends the call with that count, as Linux returns the
#: datagrams it moved)
DONE = "written"


def _mmsg_done(task: "Task") -> int:
    state = task.syscall_state
    return state.get(DONE, 0) if state else 0


def _mmsg_wait(task: "Task", done: int) -> None:
    """A message of the vector waits: remember how many went before it."""
    if done:
        if task.syscall_state is None:
            task.syscall_state = {}
        task.syscall_state[DONE] = done


@syscall("sendmmsg", partial=_UNIX_ONLY)
def sys_sendmmsg(task: "Task", fd: int, vec: int, vlen: int, flags: int, *_: int) -> int:
    """__sys_sendmmsg: each result into its msg_len; the first failure ends the vector
    and is returned only when nothing was sent."""
    sock = sock_of(task, fd)
    vlen = min(u32(vlen), UIO_MAXIOV)
    done = _mmsg_done(task)
    while done < vlen:
        entry = vec + done * MMSGHDR_SIZE
        try:
            n = _sendmsg(task, sock, entry, u32(flags))
        except SyscallError:
            if done:
                break
            raise
        except Block:
            _mmsg_wait(task, done)
            raise
        task.tg.mm.write(entry + _MSGHDR.size, struct.pack("<I", n))
        done += 1
    return done


@syscall("recvmmsg")
def sys_recvmmsg(task: "Task", fd: int, vec: int, vlen: int, flags: int, timeout: int,
                 *_: int) -> int:
    """do_recvmmsg: MSG_WAITFORONE stops waiting after the first datagram; the timeout
    ends the call only between datagrams (the wait for one is not bounded by it); an
    error after some datagrams is kept for the next call (SO_ERROR), EAGAIN excepted."""
    flags = u32(flags)
    deadline = None
    if timeout:
        sec, nsec = struct.unpack("<qq", task.tg.mm.read(timeout, 16))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise SyscallError(EINVAL)
        if task.syscall_state is None:
            task.syscall_state = {}
        deadline = task.syscall_state.setdefault("mmsg_end", task.kernel.now() + sec + nsec / 1e9)
    sock = sock_of(task, fd)
    done = _mmsg_done(task)
    if not done:
        err = sock.take_error()
        if err:
            raise SyscallError(err)
    vlen = min(u32(vlen), UIO_MAXIOV)
    while done < vlen:
        entry = vec + done * MMSGHDR_SIZE
        this = flags & ~MSG_WAITFORONE
        if done and flags & MSG_WAITFORONE:
            this |= MSG_DONTWAIT
        try:
            n = _recvmsg(task, sock, entry, this)
        except SyscallError as e:
            if not done:
                raise
            if e.errno != EAGAIN:
                sock.err = e.errno
            break
        except Block:
            _mmsg_wait(task, done)
            raise
        task.tg.mm.write(entry + _MSGHDR.size, struct.pack("<I", n))
        done += 1
        if deadline is not None and task.kernel.now() >= deadline:
            break
    if deadline is not None and done:
        left = max(0.0, deadline - task.kernel.now())
        task.tg.mm.write(timeout, struct.pack("<qq", int(left), int(left % 1 * 1e9)))
    return done


# -- options -------------------------------------------------------------------------------------------
SOL_SOCKET = 1
SO_DEBUG, SO_REUSEADDR, SO_TYPE, SO_ERROR, SO_DONTROUTE, SO_BROADCAST = 1, 2, 3, 4, 5, 6
SO_SNDBUF, SO_RCVBUF, SO_KEEPALIVE, SO_OOBINLINE, SO_NO_CHECK, SO_PRIORITY = 7, 8, 9, 10, 11, 12
SO_LINGER, SO_BSDCOMPAT, SO_REUSEPORT, SO_PASSCRED, SO_PEERCRED = 13, 14, 15, 16, 17
SO_RCVLOWAT, SO_SNDLOWAT, SO_RCVTIMEO_OLD, SO_SNDTIMEO_OLD = 18, 19, 20, 21
SO_BINDTODEVICE, SO_PEERNAME, SO_TIMESTAMP, SO_ACCEPTCONN = 25, 28, 29, 30
SO_SNDBUFFORCE, SO_RCVBUFFORCE, SO_PASSSEC, SO_MARK = 32, 33, 34, 36
SO_PROTOCOL, SO_DOMAIN, SO_PEEK_OFF, SO_ZEROCOPY = 38, 39, 42, 60
SO_TIMESTAMP_NEW, SO_RCVTIMEO_NEW, SO_SNDTIMEO_NEW = 63, 66, 67
SO_PEERSEC, SO_PEERGROUPS = 31, 59
#: options kept and read back with nothing else to do for an AF_UNIX socket
_STORED_BOOLS = (SO_DEBUG, SO_DONTROUTE, SO_BROADCAST, SO_KEEPALIVE, SO_OOBINLINE,
                 SO_NO_CHECK, SO_PASSSEC, SO_REUSEADDR)
_RCVTIMEO, _SNDTIMEO = (SO_RCVTIMEO_OLD, SO_RCVTIMEO_NEW), (SO_SNDTIMEO_OLD, SO_SNDTIMEO_NEW)
HZ = unix.HZ
MAX_TIMEOUT_SEC = (0x7FFFFFFFFFFFFFFF // HZ) - 1


def _set_timeout(task: "Task", optval: int, optlen: int) -> int | None:
    """sock_set_timeout: a struct timeval to jiffies (None: wait forever, 0: never)."""
    if optlen < 16:
        raise SyscallError(EINVAL)
    sec, usec = struct.unpack("<qq", task.tg.mm.read(optval, 16))
    if usec < 0 or usec >= 1_000_000:
        raise SyscallError(EDOM)
    if sec < 0:
        return 0
    if not sec and not usec:
        return None
    if sec >= MAX_TIMEOUT_SEC:
        return None
    return sec * HZ + -(-usec // (1_000_000 // HZ))


def _get_timeout(jiffies: int | None) -> bytes:
    if jiffies is None:
        return struct.pack("<qq", 0, 0)
    return struct.pack("<qq", jiffies // HZ, (jiffies % HZ) * 1_000_000 // HZ)


def _buffer_size(task: "Task", val: int, force: bool, limit: int, minimum: int) -> int:
    """SO_SNDBUF/SO_RCVBUF (capped by the sysctl) and their *FORCE forms (CAP_NET_ADMIN):
    Linux doubles the value for bookkeeping overhead and keeps a floor."""
    if force:
        from snakevisor.syscalls.sys_cred import has_cap
        if not has_cap(task, CAP_NET_ADMIN):
            raise SyscallError(EPERM)
        val = max(val, 0)
    else:
        val = min(val & 0xFFFFFFFF, limit)
    return max(min(val, INT_MAX // 2) * 2, minimum)


def _setsockopt(task: "Task", sock: UnixSocket, name: int, optval: int, optlen: int) -> None:
    """sk_setsockopt for what an AF_UNIX socket has."""
    from snakevisor.syscalls.sys_cred import has_cap
    mm = task.tg.mm
    if name == SO_BINDTODEVICE:
        sock.options[name] = 1  # a unix socket is bound to no device: nothing changes
        return
    if optlen < 4:
        raise SyscallError(EINVAL)
    if name in _RCVTIMEO:
        sock.rcvtimeo = _set_timeout(task, optval, optlen)
        return
    if name in _SNDTIMEO:
        sock.sndtimeo = _set_timeout(task, optval, optlen)
        return
    if name == SO_LINGER:
        if optlen < 8:
            raise SyscallError(EINVAL)
        onoff, secs = struct.unpack("<ii", mm.read(optval, 8))
        sock.linger = (1, secs) if onoff else (0, sock.linger[1])
        return
    val = _INT.unpack(mm.read(optval, 4))[0]
    if name in _STORED_BOOLS or name == SO_TIMESTAMP or name == SO_TIMESTAMP_NEW:
        if name in (SO_TIMESTAMP, SO_TIMESTAMP_NEW):
            task.kernel.warn_once("setsockopt:SO_TIMESTAMP", "setsockopt(SO_TIMESTAMP) on an "
                                  "AF_UNIX socket: accepted, no timestamps are delivered")
        sock.options[name] = 1 if val else 0
    elif name == SO_PASSCRED:
        sock.passcred = bool(val)
    elif name == SO_REUSEPORT:
        if val:
            raise SyscallError(EOPNOTSUPP)  # only inet sockets reuse ports
    elif name in (SO_SNDBUF, SO_SNDBUFFORCE):
        sock.sndbuf = _buffer_size(task, val, name == SO_SNDBUFFORCE, unix.WMEM_MAX,
                                   unix.SOCK_MIN_SNDBUF)
        if sock.writable():
            sock.wait.notify()  # sk_write_space
    elif name in (SO_RCVBUF, SO_RCVBUFFORCE):
        sock.rcvbuf = _buffer_size(task, val, name == SO_RCVBUFFORCE, unix.RMEM_MAX,
                                   unix.SOCK_MIN_RCVBUF)
    elif name == SO_RCVLOWAT:
        sock.rcvlowat = (INT_MAX if val < 0 else val) or 1
    elif name in (SO_PRIORITY, SO_MARK):
        if (name == SO_MARK or not 0 <= val <= 15) and not has_cap(task, CAP_NET_ADMIN):
            raise SyscallError(EPERM)
        sock.options[name] = val
    elif name == SO_ZEROCOPY:
        raise SyscallError(EOPNOTSUPP)
    elif name in (SO_BSDCOMPAT,):
        pass
    elif name in (SO_TYPE, SO_PROTOCOL, SO_DOMAIN, SO_ERROR, SO_SNDLOWAT, SO_ACCEPTCONN,
                  SO_PEERCRED, SO_PEERNAME, SO_PEERSEC, SO_PEERGROUPS):
        raise SyscallError(ENOPROTOOPT)  # not settable, as on Linux
    else:
        task.kernel.warn_once(f"setsockopt:{name}", f"setsockopt(SOL_SOCKET, {name}) on an "
                              "AF_UNIX socket not supported -> ENOPROTOOPT")
        raise SyscallError(ENOPROTOOPT)


def _getsockopt(task: "Task", sock: UnixSocket, name: int, length: int,
                optlen_addr: int) -> bytes:
    """sk_getsockopt: the option's value, copied up to optlen by the caller (SO_PEERGROUPS
    answers ERANGE with the size it needs instead)."""
    if name in _STORED_BOOLS or name in (SO_PRIORITY, SO_MARK, SO_TIMESTAMP, SO_TIMESTAMP_NEW):
        value = sock.options.get(name, 0)
    elif name == SO_REUSEPORT:
        value = 0
    elif name == SO_PASSCRED:
        value = int(sock.passcred)
    elif name == SO_TYPE:
        value = sock.kind
    elif name == SO_PROTOCOL:
        value = 0
    elif name == SO_DOMAIN:
        value = AF_UNIX
    elif name == SO_ERROR:
        value = sock.take_error()
    elif name == SO_SNDBUF:
        value = sock.sndbuf
    elif name == SO_RCVBUF:
        value = sock.rcvbuf
    elif name == SO_RCVLOWAT:
        value = sock.rcvlowat
    elif name == SO_SNDLOWAT:
        value = 1
    elif name == SO_ACCEPTCONN:
        value = int(sock.state == unix.LISTEN)
    elif name == SO_PEEK_OFF:
        value = -1  # never set: SO_PEEK_OFF is not supported
    elif name == SO_LINGER:
        return struct.pack("<ii", *sock.linger)
    elif name in _RCVTIMEO:
        return _get_timeout(sock.rcvtimeo)
    elif name in _SNDTIMEO:
        return _get_timeout(sock.sndtimeo)
    elif name == SO_PEERCRED:
        return (sock.peercred.ucred if sock.peercred else unix.NO_PEER).pack()[:length]
    elif name == SO_PEERGROUPS:
        if sock.peercred is None:
            raise SyscallError(ENODATA)
        groups = struct.pack(f"<{len(sock.peercred.groups)}I", *sock.peercred.groups)
        if length < len(groups):
            task.tg.mm.write(optlen_addr, _INT.pack(len(groups)))
            raise SyscallError(ERANGE)
        return groups
    elif name == SO_PEERSEC:
        raise SyscallError(ENOPROTOOPT)  # no security module labels the sandbox's sockets
    elif name == SO_PEERNAME:
        try:
            peer = sock.getname(True)
        except SyscallError:
            raise SyscallError(unix.ENOTCONN) from None
        if len(peer) < length:
            raise SyscallError(EINVAL)
        return peer[:length]
    else:
        task.kernel.warn_once(f"getsockopt:{name}", f"getsockopt(SOL_SOCKET, {name}) on an "
                              "AF_UNIX socket not supported -> ENOPROTOOPT")
        raise SyscallError(ENOPROTOOPT)
    return _INT.pack(value)


@syscall("setsockopt", partial="SOL_SOCKET options of AF_UNIX sockets; others ENOPROTOOPT "
                               "(logged)")
def sys_setsockopt(task: "Task", fd: int, level: int, name: int, optval: int, optlen: int,
                   *_: int) -> int:
    sock = sock_of(task, fd)
    if s32(level) != SOL_SOCKET:
        raise SyscallError(EOPNOTSUPP)  # AF_UNIX has no options of its own level
    _setsockopt(task, sock, s32(name), optval, s32(optlen))
    return 0


@syscall("getsockopt", partial="SOL_SOCKET options of AF_UNIX sockets; others ENOPROTOOPT "
                               "(logged)")
def sys_getsockopt(task: "Task", fd: int, level: int, name: int, optval: int, optlen: int,
                   *_: int) -> int:
    sock = sock_of(task, fd)
    if s32(level) != SOL_SOCKET:
        raise SyscallError(EOPNOTSUPP)
    mm = task.tg.mm
    length = _INT.unpack(mm.read(optlen, 4))[0]
    if length < 0:
        raise SyscallError(EINVAL)
    value = _getsockopt(task, sock, s32(name), length, optlen)
    value = value[:length]
    mm.write(optval, value)
    mm.write(optlen, _INT.pack(len(value)))
    return 0

