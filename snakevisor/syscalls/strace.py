"""--strace: each application system call, decoded the way strace(1) prints it.

Imported only when a sandbox traces (Kernel._dispatch imports it lazily), so none of this
costs a sandbox that does not.  The module is a table, not code per system call: SPECS
gives each call's argument *kinds*; a kind renders one argument value (reading application
memory through task.mm when the value is a pointer).  As in strace, input arguments are
rendered before the handler runs (execve replaces the memory they live in) and output
arguments after it returns; a call that parks is printed as ``<unfinished ...>`` and
completed by ``<... name resumed>`` when it is dispatched again.  Rendering never raises:
an argument that cannot be decoded is printed as its raw hex value.
"""
from __future__ import annotations

import errno as _errno
import os
import re
import time
import weakref
from typing import Callable, TextIO

from snakevisor.kernel.task import RLIMIT_NAMES
from snakevisor.syscalls import NO_RETURN
from snakevisor.syscalls.numbers import SYSCALL_NAMES, syscall_name

MASK64 = (1 << 64) - 1
#: strace's default -s: bytes of a buffer, and elements of an array, shown before "..."
STRSIZE = 32
PATH_MAX = 4096
IOV_MAX = 1024
EINTR = _errno.EINTR
NUL = b"\0"


# ----------------------------------------------------------------- number formatting

def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _s64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v & (1 << 63) else v


def _cx(v: int) -> str:
    """C's %#x: "0" for zero, 0x-prefixed hex otherwise."""
    return "0" if v == 0 else f"{v:#x}"


def _ptr(v: int) -> str:
    return "NULL" if v == 0 else f"{v:#x}"


def _oct(v: int) -> str:
    """C's %#03o, strace's format for modes: 000, 022, 0644, 04755."""
    return (f"0{v:o}" if v else "0").zfill(3)


def _u(data: bytes, off: int, size: int) -> int:
    return int.from_bytes(data[off:off + size], "little")


def _i(data: bytes, off: int, size: int) -> int:
    return int.from_bytes(data[off:off + size], "little", signed=True)


_ESCAPES = {0x09: "\\t", 0x0A: "\\n", 0x0B: "\\v", 0x0C: "\\f", 0x0D: "\\r",
            0x22: '\\"', 0x5C: "\\\\"}


def _quote(data: bytes, hexstyle: bool = False) -> str:
    """A byte string in strace's quoting: C escapes, shortest octal unless a digit follows."""
    if hexstyle:
        return '"' + "".join(f"\\x{c:02x}" for c in data) + '"'
    out = ['"']
    last = len(data) - 1
    for i, c in enumerate(data):
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        elif i < last and 0x30 <= data[i + 1] <= 0x37:
            out.append(f"\\{c:03o}")
        else:
            out.append(f"\\{c:o}")
    out.append('"')
    return "".join(out)


def _table(text: str) -> tuple[tuple[int, str], ...]:
    """'NAME=VALUE ...' -> ((value, name), ...), in the order strace tests them."""
    return tuple((int(v, 0), n) for n, v in (item.split("=") for item in text.split()))


def _flags(v: int, table: tuple[tuple[int, str], ...], zero: str = "0", unknown: str = "") -> str:
    """Known bits by name joined with '|', leftover bits in hex (strace's printflags)."""
    parts = []
    rest = v
    for val, name in table:
        if val and rest & val == val:
            parts.append(name)
            rest &= ~val
    if rest:
        if not parts and unknown:
            return f"{rest:#x} /* {unknown} */"
        parts.append(f"{rest:#x}")
    return "|".join(parts) if parts else zero


def _enum(v: int, names: dict[int, str], unknown: str) -> str:
    name = names.get(v)
    return name if name is not None else f"{v & 0xFFFFFFFF:#x} /* {unknown} */"


# ------------------------------------------------------------------- symbol tables

_SIGNALS = ("0 SIGHUP SIGINT SIGQUIT SIGILL SIGTRAP SIGABRT SIGBUS SIGFPE SIGKILL SIGUSR1 "
            "SIGSEGV SIGUSR2 SIGPIPE SIGALRM SIGTERM SIGSTKFLT SIGCHLD SIGCONT SIGSTOP SIGTSTP "
            "SIGTTIN SIGTTOU SIGURG SIGXCPU SIGXFSZ SIGVTALRM SIGPROF SIGWINCH SIGIO SIGPWR "
            "SIGSYS").split()


def _signame(n: int) -> str:
    if 0 <= n < 32:
        return _SIGNALS[n]
    if n == 32:
        return "SIGRTMIN"
    if 32 < n <= 64:
        return f"SIGRT_{n - 32}"
    return str(n)


#: errno names as strace spells them where Python's table picks an alias
_ERRNAMES = dict(_errno.errorcode)
_ERRNAMES.update({_errno.EAGAIN: "EAGAIN", 35: "EDEADLK", 95: "EOPNOTSUPP", 133: "EHWPOISON"})
#: kernel-internal restart codes: the call did not return to the application as such
_RESTART = {512: ("ERESTARTSYS", "To be restarted if SA_RESTART is set"),
            513: ("ERESTARTNOINTR", "To be restarted"),
            514: ("ERESTARTNOHAND", "To be restarted if no handler"),
            515: ("ENOIOCTLCMD", "No ioctl command"),
            516: ("ERESTART_RESTARTBLOCK", "Interrupted by signal")}

O_FLAGS = _table("O_CREAT=0o100 O_EXCL=0o200 O_NOCTTY=0o400 O_TRUNC=0o1000 O_APPEND=0o2000 "
                 "O_NONBLOCK=0o4000 O_SYNC=0o4010000 O_DSYNC=0o10000 O_DIRECT=0o40000 "
                 "O_LARGEFILE=0o100000 O_NOFOLLOW=0o400000 O_NOATIME=0o1000000 "
                 "O_CLOEXEC=0o2000000 O_PATH=0o10000000 O_TMPFILE=0o20200000 "
                 "O_DIRECTORY=0o200000 FASYNC=0o20000")
O_ACCMODES = ("O_RDONLY", "O_WRONLY", "O_RDWR", "O_ACCMODE")
O_CREAT_OR_TMPFILE = 0o100 | 0o20000000
PROT = _table("PROT_READ=1 PROT_WRITE=2 PROT_EXEC=4 PROT_SEM=8 PROT_GROWSDOWN=0x1000000 "
              "PROT_GROWSUP=0x2000000")
MAP_TYPES = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}
MAP_FLAGS = _table("MAP_FIXED=0x10 MAP_ANONYMOUS=0x20 MAP_32BIT=0x40 MAP_ABOVE4G=0x80 "
                   "MAP_NORESERVE=0x4000 MAP_POPULATE=0x8000 MAP_NONBLOCK=0x10000 "
                   "MAP_GROWSDOWN=0x100 MAP_DENYWRITE=0x800 MAP_EXECUTABLE=0x1000 "
                   "MAP_LOCKED=0x2000 MAP_STACK=0x20000 MAP_HUGETLB=0x40000 MAP_SYNC=0x80000 "
                   "MAP_UNINITIALIZED=0x4000000 MAP_FIXED_NOREPLACE=0x100000")
AT_FLAGS = _table("AT_SYMLINK_NOFOLLOW=0x100 AT_REMOVEDIR=0x200 AT_SYMLINK_FOLLOW=0x400 "
                  "AT_NO_AUTOMOUNT=0x800 AT_EMPTY_PATH=0x1000 AT_RECURSIVE=0x8000")
FACCESSAT_FLAGS = _table("AT_SYMLINK_NOFOLLOW=0x100 AT_EACCESS=0x200 AT_EMPTY_PATH=0x1000")
STATX_SYNC = {0: "AT_STATX_SYNC_AS_STAT", 0x2000: "AT_STATX_FORCE_SYNC",
              0x4000: "AT_STATX_DONT_SYNC", 0x6000: "AT_STATX_FORCE_SYNC|AT_STATX_DONT_SYNC"}
STATX_MASK = _table("STATX_ALL=0xfff STATX_BASIC_STATS=0x7ff STATX_TYPE=1 STATX_MODE=2 "
                    "STATX_NLINK=4 STATX_UID=8 STATX_GID=0x10 STATX_ATIME=0x20 STATX_MTIME=0x40 "
                    "STATX_CTIME=0x80 STATX_INO=0x100 STATX_SIZE=0x200 STATX_BLOCKS=0x400 "
                    "STATX_BTIME=0x800 STATX_MNT_ID=0x1000 STATX_DIOALIGN=0x2000 "
                    "STATX_MNT_ID_UNIQUE=0x4000 STATX_SUBVOL=0x8000 STATX_WRITE_ATOMIC=0x10000 "
                    "STATX_DIO_READ_ALIGN=0x20000")
STATX_ATTRS = _table("STATX_ATTR_COMPRESSED=0x4 STATX_ATTR_IMMUTABLE=0x10 STATX_ATTR_APPEND=0x20 "
                     "STATX_ATTR_NODUMP=0x40 STATX_ATTR_ENCRYPTED=0x800 "
                     "STATX_ATTR_AUTOMOUNT=0x1000 STATX_ATTR_MOUNT_ROOT=0x2000 "
                     "STATX_ATTR_VERITY=0x100000 STATX_ATTR_DAX=0x200000 "
                     "STATX_ATTR_WRITE_ATOMIC=0x400000")
FILE_TYPES = {0o140000: "S_IFSOCK", 0o120000: "S_IFLNK", 0o100000: "S_IFREG", 0o60000: "S_IFBLK",
              0o40000: "S_IFDIR", 0o20000: "S_IFCHR", 0o10000: "S_IFIFO"}
MODE_BITS = _table("S_ISUID=0o4000 S_ISGID=0o2000 S_ISVTX=0o1000")
CLONE_FLAGS = _table(
    "CLONE_VM=0x100 CLONE_FS=0x200 CLONE_FILES=0x400 CLONE_SIGHAND=0x800 CLONE_PIDFD=0x1000 "
    "CLONE_PTRACE=0x2000 CLONE_VFORK=0x4000 CLONE_PARENT=0x8000 CLONE_THREAD=0x10000 "
    "CLONE_NEWNS=0x20000 CLONE_SYSVSEM=0x40000 CLONE_SETTLS=0x80000 "
    "CLONE_PARENT_SETTID=0x100000 CLONE_CHILD_CLEARTID=0x200000 CLONE_UNTRACED=0x800000 "
    "CLONE_CHILD_SETTID=0x1000000 CLONE_NEWCGROUP=0x2000000 CLONE_NEWUTS=0x4000000 "
    "CLONE_NEWIPC=0x8000000 CLONE_NEWUSER=0x10000000 CLONE_NEWPID=0x20000000 "
    "CLONE_NEWNET=0x40000000 CLONE_IO=0x80000000 CLONE_CLEAR_SIGHAND=0x100000000 "
    "CLONE_INTO_CGROUP=0x200000000")
SA_FLAGS = _table("SA_RESTORER=0x4000000 SA_ONSTACK=0x8000000 SA_RESTART=0x10000000 "
                  "SA_NODEFER=0x40000000 SA_RESETHAND=0x80000000 SA_SIGINFO=4 SA_NOCLDSTOP=1 "
                  "SA_NOCLDWAIT=2 SA_UNSUPPORTED=0x400 SA_EXPOSE_TAGBITS=0x800")
SA_RESTORER = 0x4000000
SIG_HANDLERS = {0: "SIG_DFL", 1: "SIG_IGN"}
POLL_EVENTS = _table("POLLIN=1 POLLPRI=2 POLLOUT=4 POLLERR=8 POLLHUP=0x10 POLLNVAL=0x20 "
                     "POLLRDNORM=0x40 POLLRDBAND=0x80 POLLWRNORM=0x100 POLLWRBAND=0x200 "
                     "POLLMSG=0x400 POLLREMOVE=0x1000 POLLRDHUP=0x2000 POLL_BUSY_LOOP=0x8000")
EPOLL_EVENTS = _table("EPOLLIN=1 EPOLLPRI=2 EPOLLOUT=4 EPOLLERR=8 EPOLLHUP=0x10 EPOLLNVAL=0x20 "
                      "EPOLLRDNORM=0x40 EPOLLRDBAND=0x80 EPOLLWRNORM=0x100 EPOLLWRBAND=0x200 "
                      "EPOLLMSG=0x400 EPOLLRDHUP=0x2000 EPOLLEXCLUSIVE=0x10000000 "
                      "EPOLLWAKEUP=0x20000000 EPOLLONESHOT=0x40000000 EPOLLET=0x80000000")
MSG_FLAGS = _table("MSG_OOB=1 MSG_PEEK=2 MSG_DONTROUTE=4 MSG_CTRUNC=8 MSG_PROXY=0x10 "
                   "MSG_TRUNC=0x20 MSG_DONTWAIT=0x40 MSG_EOR=0x80 MSG_WAITALL=0x100 "
                   "MSG_FIN=0x200 MSG_SYN=0x400 MSG_CONFIRM=0x800 MSG_RST=0x1000 "
                   "MSG_ERRQUEUE=0x2000 MSG_NOSIGNAL=0x4000 MSG_MORE=0x8000 "
                   "MSG_WAITFORONE=0x10000 MSG_BATCH=0x40000 MSG_ZEROCOPY=0x4000000 "
                   "MSG_FASTOPEN=0x20000000 MSG_CMSG_CLOEXEC=0x40000000")
SOCK_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM",
              5: "SOCK_SEQPACKET", 6: "SOCK_DCCP", 10: "SOCK_PACKET"}
SOCK_FLAGS = _table("SOCK_CLOEXEC=0x80000 SOCK_NONBLOCK=0x800")
ADDRESS_FAMILIES = {
    0: "AF_UNSPEC", 1: "AF_UNIX", 2: "AF_INET", 3: "AF_AX25", 4: "AF_IPX", 5: "AF_APPLETALK",
    6: "AF_NETROM", 7: "AF_BRIDGE", 8: "AF_ATMPVC", 9: "AF_X25", 10: "AF_INET6", 11: "AF_ROSE",
    12: "AF_DECnet", 13: "AF_NETBEUI", 14: "AF_SECURITY", 15: "AF_KEY", 16: "AF_NETLINK",
    17: "AF_PACKET", 18: "AF_ASH", 19: "AF_ECONET", 20: "AF_ATMSVC", 21: "AF_RDS", 22: "AF_SNA",
    23: "AF_IRDA", 24: "AF_PPPOX", 25: "AF_WANPIPE", 26: "AF_LLC", 27: "AF_IB", 28: "AF_MPLS",
    29: "AF_CAN", 30: "AF_TIPC", 31: "AF_BLUETOOTH", 32: "AF_IUCV", 33: "AF_RXRPC",
    34: "AF_ISDN", 35: "AF_PHONET", 36: "AF_IEEE802154", 37: "AF_CAIF", 38: "AF_ALG",
    39: "AF_NFC", 40: "AF_VSOCK", 41: "AF_KCM", 42: "AF_QIPCRTR", 43: "AF_SMC", 44: "AF_XDP",
    45: "AF_MCTP"}
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK = 1, 2, 10, 16
IP_PROTOCOLS = {0: "IPPROTO_IP", 1: "IPPROTO_ICMP", 2: "IPPROTO_IGMP", 4: "IPPROTO_IPIP",
                6: "IPPROTO_TCP", 17: "IPPROTO_UDP", 41: "IPPROTO_IPV6", 47: "IPPROTO_GRE",
                58: "IPPROTO_ICMPV6", 132: "IPPROTO_SCTP", 136: "IPPROTO_UDPLITE",
                255: "IPPROTO_RAW", 262: "IPPROTO_MPTCP"}
NETLINK_PROTOCOLS = {0: "NETLINK_ROUTE", 2: "NETLINK_USERSOCK", 4: "NETLINK_SOCK_DIAG",
                     6: "NETLINK_XFRM", 7: "NETLINK_SELINUX", 9: "NETLINK_AUDIT",
                     12: "NETLINK_NETFILTER", 15: "NETLINK_KOBJECT_UEVENT", 16: "NETLINK_GENERIC"}
SOL_LEVELS = {0: "SOL_IP", 1: "SOL_SOCKET", 6: "SOL_TCP", 17: "SOL_UDP", 41: "SOL_IPV6",
              263: "SOL_PACKET", 270: "SOL_NETLINK"}
SOCKOPT_NAMES = {
    1: dict(enumerate(
        ("0 SO_DEBUG SO_REUSEADDR SO_TYPE SO_ERROR SO_DONTROUTE SO_BROADCAST SO_SNDBUF "
         "SO_RCVBUF SO_KEEPALIVE SO_OOBINLINE SO_NO_CHECK SO_PRIORITY SO_LINGER SO_BSDCOMPAT "
         "SO_REUSEPORT SO_PASSCRED SO_PEERCRED SO_RCVLOWAT SO_SNDLOWAT SO_RCVTIMEO_OLD "
         "SO_SNDTIMEO_OLD SO_SECURITY_AUTHENTICATION SO_SECURITY_ENCRYPTION_TRANSPORT "
         "SO_SECURITY_ENCRYPTION_NETWORK SO_BINDTODEVICE SO_ATTACH_FILTER SO_DETACH_FILTER "
         "SO_PEERNAME SO_TIMESTAMP_OLD SO_ACCEPTCONN SO_PEERSEC SO_SNDBUFFORCE SO_RCVBUFFORCE "
         "SO_PASSSEC SO_TIMESTAMPNS_OLD SO_MARK SO_TIMESTAMPING_OLD SO_PROTOCOL SO_DOMAIN "
         "SO_RXQ_OVFL SO_WIFI_STATUS SO_PEEK_OFF SO_NOFCS SO_LOCK_FILTER SO_SELECT_ERR_QUEUE "
         "SO_BUSY_POLL SO_MAX_PACING_RATE SO_BPF_EXTENSIONS SO_INCOMING_CPU "
         "SO_ATTACH_BPF").split())),
    6: dict(enumerate(
        ("0 TCP_NODELAY TCP_MAXSEG TCP_CORK TCP_KEEPIDLE TCP_KEEPINTVL TCP_KEEPCNT TCP_SYNCNT "
         "TCP_LINGER2 TCP_DEFER_ACCEPT TCP_WINDOW_CLAMP TCP_INFO TCP_QUICKACK TCP_CONGESTION "
         "TCP_MD5SIG 15 TCP_THIN_LINEAR_TIMEOUTS TCP_THIN_DUPACK TCP_USER_TIMEOUT TCP_REPAIR "
         "TCP_REPAIR_QUEUE TCP_QUEUE_SEQ TCP_REPAIR_OPTIONS TCP_FASTOPEN").split())),
    0: {1: "IP_TOS", 2: "IP_TTL", 3: "IP_HDRINCL", 4: "IP_OPTIONS", 8: "IP_PKTINFO",
        10: "IP_MTU_DISCOVER", 11: "IP_RECVERR", 14: "IP_MTU", 15: "IP_FREEBIND",
        32: "IP_MULTICAST_IF", 33: "IP_MULTICAST_TTL", 34: "IP_MULTICAST_LOOP",
        35: "IP_ADD_MEMBERSHIP", 36: "IP_DROP_MEMBERSHIP"},
    41: {16: "IPV6_UNICAST_HOPS", 17: "IPV6_MULTICAST_IF", 18: "IPV6_MULTICAST_HOPS",
         19: "IPV6_MULTICAST_LOOP", 20: "IPV6_ADD_MEMBERSHIP", 21: "IPV6_DROP_MEMBERSHIP",
         23: "IPV6_MTU_DISCOVER", 24: "IPV6_MTU", 25: "IPV6_RECVERR", 26: "IPV6_V6ONLY",
         49: "IPV6_RECVPKTINFO", 50: "IPV6_PKTINFO"},
}
CLOCKS = dict(enumerate(
    ("CLOCK_REALTIME CLOCK_MONOTONIC CLOCK_PROCESS_CPUTIME_ID CLOCK_THREAD_CPUTIME_ID "
     "CLOCK_MONOTONIC_RAW CLOCK_REALTIME_COARSE CLOCK_MONOTONIC_COARSE CLOCK_BOOTTIME "
     "CLOCK_REALTIME_ALARM CLOCK_BOOTTIME_ALARM CLOCK_SGI_CYCLE CLOCK_TAI").split()))
FCNTL_CMDS = {0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL",
              5: "F_GETLK", 6: "F_SETLK", 7: "F_SETLKW", 8: "F_SETOWN", 9: "F_GETOWN",
              10: "F_SETSIG", 11: "F_GETSIG", 15: "F_SETOWN_EX", 16: "F_GETOWN_EX",
              17: "F_GETOWNER_UIDS", 36: "F_OFD_GETLK", 37: "F_OFD_SETLK", 38: "F_OFD_SETLKW",
              1024: "F_SETLEASE", 1025: "F_GETLEASE", 1026: "F_NOTIFY", 1027: "F_DUPFD_QUERY",
              1028: "F_CREATED_QUERY", 1029: "F_CANCELLK", 1030: "F_DUPFD_CLOEXEC",
              1031: "F_SETPIPE_SZ", 1032: "F_GETPIPE_SZ", 1033: "F_ADD_SEALS",
              1034: "F_GET_SEALS"}
IOCTLS = {
    0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x5404: "TCSETSF", 0x5405: "TCGETA",
    0x5406: "TCSETA", 0x5407: "TCSETAW", 0x5408: "TCSETAF", 0x5409: "TCSBRK", 0x540A: "TCXONC",
    0x540B: "TCFLSH", 0x540C: "TIOCEXCL", 0x540D: "TIOCNXCL", 0x540E: "TIOCSCTTY",
    0x540F: "TIOCGPGRP", 0x5410: "TIOCSPGRP", 0x5411: "TIOCOUTQ", 0x5412: "TIOCSTI",
    0x5413: "TIOCGWINSZ", 0x5414: "TIOCSWINSZ", 0x5415: "TIOCMGET", 0x5416: "TIOCMBIS",
    0x5417: "TIOCMBIC", 0x5418: "TIOCMSET", 0x5419: "TIOCGSOFTCAR", 0x541A: "TIOCSSOFTCAR",
    0x541B: "FIONREAD", 0x541C: "TIOCLINUX", 0x541D: "TIOCCONS", 0x541E: "TIOCGSERIAL",
    0x541F: "TIOCSSERIAL", 0x5420: "TIOCPKT", 0x5421: "FIONBIO", 0x5422: "TIOCNOTTY",
    0x5423: "TIOCSETD", 0x5424: "TIOCGETD", 0x5425: "TCSBRKP", 0x5427: "TIOCSBRK",
    0x5428: "TIOCCBRK", 0x5429: "TIOCGSID", 0x802C542A: "TCGETS2", 0x402C542B: "TCSETS2",
    0x402C542C: "TCSETSW2", 0x402C542D: "TCSETSF2", 0x80045430: "TIOCGPTN",
    0x40045431: "TIOCSPTLCK", 0x80045432: "TIOCGDEV", 0x40045436: "TIOCSIG",
    0x5437: "TIOCVHANGUP", 0x80045438: "TIOCGPKT", 0x80045439: "TIOCGPTLCK",
    0x80045440: "TIOCGEXCL", 0x5441: "TIOCGPTPEER", 0x5450: "FIONCLEX", 0x5451: "FIOCLEX",
    0x5452: "FIOASYNC", 0x545C: "TIOCMIWAIT", 0x545D: "TIOCGICOUNT", 0x5460: "FIOQSIZE",
    0x1: "FIBMAP", 0x2: "FIGETBSZ", 0xC0045877: "FIFREEZE", 0xC0045878: "FITHAW",
    0x40049409: "FICLONE", 0x80086601: "FS_IOC_GETFLAGS", 0x40086602: "FS_IOC_SETFLAGS",
    0x8910: "SIOCGIFNAME", 0x8912: "SIOCGIFCONF", 0x8913: "SIOCGIFFLAGS",
    0x8914: "SIOCSIFFLAGS", 0x8915: "SIOCGIFADDR", 0x8921: "SIOCGIFMTU",
    0x8927: "SIOCGIFHWADDR", 0x8933: "SIOCGIFINDEX", 0x400454CA: "TUNSETIFF",
    0x80081272: "BLKGETSIZE64", 0x80045200: "RNDGETENTCNT"}
IOC_DIRS = ("_IOC_NONE", "_IOC_WRITE", "_IOC_READ", "_IOC_READ|_IOC_WRITE")
FUTEX_CMDS = dict(enumerate(
    ("FUTEX_WAIT FUTEX_WAKE FUTEX_FD FUTEX_REQUEUE FUTEX_CMP_REQUEUE FUTEX_WAKE_OP "
     "FUTEX_LOCK_PI FUTEX_UNLOCK_PI FUTEX_TRYLOCK_PI FUTEX_WAIT_BITSET FUTEX_WAKE_BITSET "
     "FUTEX_WAIT_REQUEUE_PI FUTEX_CMP_REQUEUE_PI FUTEX_LOCK_PI2").split()))
FUTEX_PRIVATE, FUTEX_CLOCK_REALTIME = 128, 256
ARCH_CODES = {0x1001: "ARCH_SET_GS", 0x1002: "ARCH_SET_FS", 0x1003: "ARCH_GET_FS",
              0x1004: "ARCH_GET_GS", 0x1011: "ARCH_GET_CPUID", 0x1012: "ARCH_SET_CPUID",
              0x1021: "ARCH_GET_XCOMP_SUPP", 0x1022: "ARCH_GET_XCOMP_PERM",
              0x1023: "ARCH_REQ_XCOMP_PERM", 0x1024: "ARCH_GET_XCOMP_GUEST_PERM",
              0x1025: "ARCH_REQ_XCOMP_GUEST_PERM", 0x2001: "ARCH_MAP_VDSO_X32",
              0x2002: "ARCH_MAP_VDSO_32", 0x2003: "ARCH_MAP_VDSO_64",
              0x4001: "ARCH_GET_UNTAG_MASK", 0x4002: "ARCH_ENABLE_TAGGED_ADDR",
              0x4003: "ARCH_GET_MAX_TAG_BITS", 0x4004: "ARCH_FORCE_TAGGED_SVA",
              0x5001: "ARCH_SHSTK_ENABLE", 0x5002: "ARCH_SHSTK_DISABLE",
              0x5003: "ARCH_SHSTK_LOCK", 0x5004: "ARCH_SHSTK_UNLOCK",
              0x5005: "ARCH_SHSTK_STATUS"}
PRCTL_OPTIONS = {1: "PR_SET_PDEATHSIG", 2: "PR_GET_PDEATHSIG", 3: "PR_GET_DUMPABLE",
                 4: "PR_SET_DUMPABLE", 7: "PR_GET_KEEPCAPS", 8: "PR_SET_KEEPCAPS",
                 15: "PR_SET_NAME", 16: "PR_GET_NAME", 21: "PR_GET_SECCOMP",
                 22: "PR_SET_SECCOMP", 23: "PR_CAPBSET_READ", 24: "PR_CAPBSET_DROP",
                 29: "PR_SET_TIMERSLACK", 30: "PR_GET_TIMERSLACK", 35: "PR_SET_MM",
                 36: "PR_SET_CHILD_SUBREAPER", 37: "PR_GET_CHILD_SUBREAPER",
                 38: "PR_SET_NO_NEW_PRIVS", 39: "PR_GET_NO_NEW_PRIVS", 40: "PR_GET_TID_ADDRESS",
                 41: "PR_SET_THP_DISABLE", 42: "PR_GET_THP_DISABLE", 47: "PR_CAP_AMBIENT",
                 0x53564D41: "PR_SET_VMA", 0x59616D61: "PR_SET_PTRACER"}
RUSAGE_WHO = {0: "RUSAGE_SELF", -1: "RUSAGE_CHILDREN", 1: "RUSAGE_THREAD"}
MADVISE = {0: "MADV_NORMAL", 1: "MADV_RANDOM", 2: "MADV_SEQUENTIAL", 3: "MADV_WILLNEED",
           4: "MADV_DONTNEED", 8: "MADV_FREE", 9: "MADV_REMOVE", 10: "MADV_DONTFORK",
           11: "MADV_DOFORK", 12: "MADV_MERGEABLE", 13: "MADV_UNMERGEABLE",
           14: "MADV_HUGEPAGE", 15: "MADV_NOHUGEPAGE", 16: "MADV_DONTDUMP", 17: "MADV_DODUMP",
           18: "MADV_WIPEONFORK", 19: "MADV_KEEPONFORK", 20: "MADV_COLD", 21: "MADV_PAGEOUT",
           22: "MADV_POPULATE_READ", 23: "MADV_POPULATE_WRITE", 24: "MADV_DONTNEED_LOCKED",
           25: "MADV_COLLAPSE", 100: "MADV_HWPOISON", 101: "MADV_SOFT_OFFLINE",
           102: "MADV_GUARD_INSTALL", 103: "MADV_GUARD_REMOVE"}
FS_MAGICS = {0xEF53: "EXT2_SUPER_MAGIC", 0x01021994: "TMPFS_MAGIC", 0x9FA0: "PROC_SUPER_MAGIC",
             0x62656572: "SYSFS_MAGIC", 0x1CD1: "DEVPTS_SUPER_MAGIC",
             0x794C7630: "OVERLAYFS_SUPER_MAGIC", 0x58465342: "XFS_SUPER_MAGIC",
             0x9123683E: "BTRFS_SUPER_MAGIC", 0x27E0EB: "CGROUP_SUPER_MAGIC",
             0x63677270: "CGROUP2_SUPER_MAGIC", 0x01021997: "V9FS_MAGIC",
             0x6969: "NFS_SUPER_MAGIC", 0x858458F6: "RAMFS_MAGIC", 0x50495045: "PIPEFS_MAGIC",
             0x534F434B: "SOCKFS_MAGIC", 0x42494E4D: "BINFMTFS_MAGIC",
             0x73636673: "SECURITYFS_MAGIC", 0x64626720: "DEBUGFS_MAGIC",
             0x65735546: "FUSE_SUPER_MAGIC", 0x73717368: "SQUASHFS_MAGIC"}
STATFS_FLAGS = _table("ST_RDONLY=1 ST_NOSUID=2 ST_NODEV=4 ST_NOEXEC=8 ST_SYNCHRONOUS=0x10 "
                      "ST_VALID=0x20 ST_MANDLOCK=0x40 ST_NOATIME=0x400 ST_NODIRATIME=0x800 "
                      "ST_RELATIME=0x1000 ST_NOSYMFOLLOW=0x2000")
TC_IFLAGS = _table("IGNBRK=1 BRKINT=2 IGNPAR=4 PARMRK=8 INPCK=0x10 ISTRIP=0x20 INLCR=0x40 "
                   "IGNCR=0x80 ICRNL=0x100 IUCLC=0x200 IXON=0x400 IXANY=0x800 IXOFF=0x1000 "
                   "IMAXBEL=0x2000 IUTF8=0x4000")
TC_OFLAGS = _table("OPOST=1 OLCUC=2 ONLCR=4 OCRNL=8 ONOCR=0x10 ONLRET=0x20 OFILL=0x40 "
                   "OFDEL=0x80")
#: (mask, shift, names) of c_oflag's delay fields, printed before the flags
TC_ODELAYS = ((0x100, 8, ("NL0", "NL1")), (0x600, 9, ("CR0", "CR1", "CR2", "CR3")),
              (0x1800, 11, ("TAB0", "TAB1", "TAB2", "TAB3")), (0x2000, 13, ("BS0", "BS1")),
              (0x4000, 14, ("VT0", "VT1")), (0x8000, 15, ("FF0", "FF1")))
TC_CFLAGS = _table("CSTOPB=0x40 CREAD=0x80 PARENB=0x100 PARODD=0x200 HUPCL=0x400 CLOCAL=0x800 "
                   "CMSPAR=0x40000000 CRTSCTS=0x80000000")
TC_LFLAGS = _table("ISIG=1 ICANON=2 XCASE=4 ECHO=8 ECHOE=0x10 ECHOK=0x20 ECHONL=0x40 "
                   "NOFLSH=0x80 IEXTEN=0x8000 ECHOCTL=0x200 ECHOPRT=0x400 ECHOKE=0x800 "
                   "FLUSHO=0x1000 PENDIN=0x4000 TOSTOP=0x100 EXTPROC=0x10000")
BAUDS = dict(enumerate("B0 B50 B75 B110 B134 B150 B200 B300 B600 B1200 B1800 B2400 B4800 "
                       "B9600 B19200 B38400".split()))
BAUDS.update({0x1000 + i: n for i, n in enumerate(
    "BOTHER B57600 B115200 B230400 B460800 B500000 B576000 B921600 B1000000 B1152000 "
    "B1500000 B2000000 B2500000 B3000000 B3500000 B4000000".split())})

#: enumerations: kind name -> (names, how to take the value, strace's "unknown" tag)
ENUMS: dict[str, tuple[dict[int, str], Callable[[int], int], str]] = {
    "whence": ({0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"},
               _s32, "SEEK_???"),
    "clock": (CLOCKS, _s32, "CLOCK_???"),
    "fcntlcmd": (FCNTL_CMDS, _s32, "F_???"),
    "madvise": (MADVISE, _s32, "MADV_???"),
    "rlimres": (dict(enumerate(f"RLIMIT_{n}" for n in RLIMIT_NAMES)), _s32, "RLIMIT_???"),
    "sighow": ({0: "SIG_BLOCK", 1: "SIG_UNBLOCK", 2: "SIG_SETMASK"}, _s32, "SIG_???"),
    "af": (ADDRESS_FAMILIES, _s32, "AF_???"),
    "epollop": ({1: "EPOLL_CTL_ADD", 2: "EPOLL_CTL_DEL", 3: "EPOLL_CTL_MOD"}, _s32,
                "EPOLL_CTL_???"),
    "archcode": (ARCH_CODES, _s32, "ARCH_???"),
    "prctlop": (PRCTL_OPTIONS, _s32, "PR_???"),
    "itimerwhich": ({0: "ITIMER_REAL", 1: "ITIMER_VIRTUAL", 2: "ITIMER_PROF"}, _s32,
                    "ITIMER_???"),
    "priowhich": ({0: "PRIO_PROCESS", 1: "PRIO_PGRP", 2: "PRIO_USER"}, _s32, "PRIO_???"),
    "rusagewho": (RUSAGE_WHO, _s32, "RUSAGE_???"),
    "shuthow": ({0: "SHUT_RD", 1: "SHUT_WR", 2: "SHUT_RDWR"}, _s32, "SHUT_???"),
    "fadvice": ({0: "POSIX_FADV_NORMAL", 1: "POSIX_FADV_RANDOM", 2: "POSIX_FADV_SEQUENTIAL",
                 3: "POSIX_FADV_WILLNEED", 4: "POSIX_FADV_DONTNEED", 5: "POSIX_FADV_NOREUSE"},
                _s32, "POSIX_FADV_???"),
    "idtype": ({0: "P_ALL", 1: "P_PID", 2: "P_PGID", 3: "P_PIDFD"}, _s32, "P_???"),
    "sockoptlevel": (SOL_LEVELS, _s32, "SOL_???"),
}

#: flag sets: kind name -> (bits in strace's order, name printed for zero, "unknown" tag)
FLAGS: dict[str, tuple[tuple[tuple[int, str], ...], str, str]] = {
    "prot": (PROT, "PROT_NONE", "PROT_???"),
    "atflags": (AT_FLAGS, "0", "AT_???"),
    "faccessflags": (FACCESSAT_FLAGS, "0", "AT_???"),
    "statxmask": (STATX_MASK, "0", "STATX_???"),
    "accessmode": (_table("R_OK=4 W_OK=2 X_OK=1"), "F_OK", "?_OK"),
    "renameflags": (_table("RENAME_NOREPLACE=1 RENAME_EXCHANGE=2 RENAME_WHITEOUT=4"), "0",
                    "RENAME_???"),
    "grndflags": (_table("GRND_NONBLOCK=1 GRND_RANDOM=2 GRND_INSECURE=4"), "0", "GRND_???"),
    "msyncflags": (_table("MS_ASYNC=1 MS_SYNC=4 MS_INVALIDATE=2"), "0", "MS_???"),
    "mremapflags": (_table("MREMAP_MAYMOVE=1 MREMAP_FIXED=2 MREMAP_DONTUNMAP=4"), "0",
                    "MREMAP_???"),
    "sockflags": (SOCK_FLAGS, "0", "SOCK_???"),
    "epollflags": (_table("EPOLL_CLOEXEC=0x80000"), "0", "EPOLL_???"),
    "nsflags": (CLONE_FLAGS, "0", "CLONE_???"),
    "waitopts": (_table("WNOHANG=1 WSTOPPED=2 WEXITED=4 WCONTINUED=8 WNOWAIT=0x1000000 "
                        "__WNOTHREAD=0x20000000 __WALL=0x40000000 __WCLONE=0x80000000"),
                 "0", "W???"),
    "fdflags": (_table("FD_CLOEXEC=1"), "0", "FD_???"),
    "timerflags": (_table("TIMER_ABSTIME=1"), "0", "TIMER_???"),
    "msgflags": (MSG_FLAGS, "0", "MSG_???"),
    "mountflags": (_table("MS_RDONLY=1 MS_NOSUID=2 MS_NODEV=4 MS_NOEXEC=8 MS_SYNCHRONOUS=0x10 "
                          "MS_REMOUNT=0x20 MS_MANDLOCK=0x40 MS_DIRSYNC=0x80 "
                          "MS_NOSYMFOLLOW=0x100 MS_NOATIME=0x400 MS_NODIRATIME=0x800 "
                          "MS_BIND=0x1000 MS_MOVE=0x2000 MS_REC=0x4000 MS_SILENT=0x8000 "
                          "MS_POSIXACL=0x10000 MS_UNBINDABLE=0x20000 MS_PRIVATE=0x40000 "
                          "MS_SLAVE=0x80000 MS_SHARED=0x100000 MS_RELATIME=0x200000 "
                          "MS_KERNMOUNT=0x400000 MS_I_VERSION=0x800000 "
                          "MS_STRICTATIME=0x1000000 MS_LAZYTIME=0x2000000"), "0", "MS_???"),
    "umountflags": (_table("MNT_FORCE=1 MNT_DETACH=2 MNT_EXPIRE=4 UMOUNT_NOFOLLOW=8"), "0",
                    "MNT_???"),
    "efdflags": (_table("EFD_SEMAPHORE=1 EFD_CLOEXEC=0x80000 EFD_NONBLOCK=0x800"), "0",
                 "EFD_???"),
    "sfdflags": (_table("SFD_CLOEXEC=0x80000 SFD_NONBLOCK=0x800"), "0", "SFD_???"),
    "tfdflags": (_table("TFD_CLOEXEC=0x80000 TFD_NONBLOCK=0x800"), "0", "TFD_???"),
    "tfdsetflags": (_table("TFD_TIMER_ABSTIME=1 TFD_TIMER_CANCEL_ON_SET=2"), "0", "TFD_???"),
    "inflags": (_table("IN_NONBLOCK=0x800 IN_CLOEXEC=0x80000"), "0", "IN_???"),
    "mfdflags": (_table("MFD_CLOEXEC=1 MFD_ALLOW_SEALING=2 MFD_HUGETLB=4 MFD_NOEXEC_SEAL=8 "
                        "MFD_EXEC=0x10"), "0", "MFD_???"),
    "rwflags": (_table("RWF_HIPRI=1 RWF_DSYNC=2 RWF_SYNC=4 RWF_NOWAIT=8 RWF_APPEND=0x10"), "0",
                "RWF_???"),
    "spliceflags": (_table("SPLICE_F_MOVE=1 SPLICE_F_NONBLOCK=2 SPLICE_F_MORE=4 "
                           "SPLICE_F_GIFT=8"), "0", "SPLICE_F_???"),
    "fallocmode": (_table("FALLOC_FL_KEEP_SIZE=1 FALLOC_FL_PUNCH_HOLE=2 "
                          "FALLOC_FL_NO_HIDE_STALE=4 FALLOC_FL_COLLAPSE_RANGE=8 "
                          "FALLOC_FL_ZERO_RANGE=0x10 FALLOC_FL_INSERT_RANGE=0x20 "
                          "FALLOC_FL_UNSHARE_RANGE=0x40"), "0", "FALLOC_FL_???"),
    "flockop": (_table("LOCK_SH=1 LOCK_EX=2 LOCK_NB=4 LOCK_UN=8"), "0", "LOCK_???"),
    "xattrflags": (_table("XATTR_CREATE=1 XATTR_REPLACE=2"), "0", "XATTR_???"),
    "closerangeflags": (_table("CLOSE_RANGE_UNSHARE=2 CLOSE_RANGE_CLOEXEC=4"), "0",
                        "CLOSE_RANGE_???"),
    "inmask": (_table("IN_ACCESS=1 IN_MODIFY=2 IN_ATTRIB=4 IN_CLOSE_WRITE=8 "
                      "IN_CLOSE_NOWRITE=0x10 IN_OPEN=0x20 IN_MOVED_FROM=0x40 IN_MOVED_TO=0x80 "
                      "IN_CREATE=0x100 IN_DELETE=0x200 IN_DELETE_SELF=0x400 "
                      "IN_MOVE_SELF=0x800 IN_UNMOUNT=0x2000 IN_Q_OVERFLOW=0x4000 "
                      "IN_IGNORED=0x8000 IN_ONLYDIR=0x1000000 IN_DONT_FOLLOW=0x2000000 "
                      "IN_EXCL_UNLINK=0x4000000 IN_MASK_CREATE=0x10000000 "
                      "IN_MASK_ADD=0x20000000 IN_ISDIR=0x40000000 IN_ONESHOT=0x80000000"),
               "0", "IN_???"),
}


# ------------------------------------------------------------------- kinds of argument

class _Ctx:
    """One traced call: the task whose memory pointers refer to, raw args, result."""

    __slots__ = ("task", "args", "ret")

    def __init__(self, task: object, args: tuple) -> None:
        self.task = task
        self.args = args
        self.ret: int | None = None  # signed result once the handler returned

    @property
    def succeeded(self) -> bool:
        return self.ret is not None and not -4096 < self.ret < 0

    def read(self, addr: int, length: int) -> bytes:
        return self.task.mm.read(addr, length)

    def u64s(self, addr: int, limit: int) -> list[int]:
        """Up to `limit` u64s from addr, stopping after the first zero (argv-style arrays)."""
        out: list[int] = []
        while len(out) < limit:
            chunk = min((4096 - addr % 4096) // 8 or 1, limit - len(out))
            data = self.read(addr, 8 * chunk)
            for i in range(chunk):
                v = _u(data, 8 * i, 8)
                out.append(v)
                if v == 0:
                    return out
            addr += 8 * chunk
        return out


class _Kind:
    __slots__ = ("fn", "phase", "pointer")

    def __init__(self, fn: Callable, phase: int, pointer: bool) -> None:
        self.fn = fn
        self.phase = phase
        self.pointer = pointer


IN, OUT, LATE = 0, 1, 2  # rendered before the call / after it (address on failure) / after it
KINDS: dict[str, _Kind] = {}


def _kind(*names: str, phase: int = IN, pointer: bool = False) -> Callable:
    """Register fn(ctx, value, param) -> str as the renderer of the named kinds."""

    def register(fn: Callable) -> Callable:
        for name in names:
            KINDS[name] = _Kind(fn, phase, pointer)
        return fn

    return register


def _param_arg(c: _Ctx, p: int | None) -> int:
    return c.args[p] if p is not None and p < len(c.args) else 0


# scalars
_kind("int", "fd")(lambda c, v, p: str(_s32(v)))
_kind("uint")(lambda c, v, p: str(v & 0xFFFFFFFF))
_kind("long")(lambda c, v, p: str(_s64(v)))
_kind("ulong")(lambda c, v, p: str(v & MASK64))
_kind("hex")(lambda c, v, p: _cx(v & MASK64))
_kind("ptr")(lambda c, v, p: _ptr(v & MASK64))
_kind("dirfd")(lambda c, v, p: "AT_FDCWD" if _s32(v) == -100 else str(_s32(v)))
_kind("uid")(lambda c, v, p: "-1" if v & 0xFFFFFFFF == 0xFFFFFFFF else str(v & 0xFFFFFFFF))
_kind("mode")(lambda c, v, p: _oct(v & 0xFFFFFFFF))
_kind("sig")(lambda c, v, p: _signame(_s32(v)))


def _file_mode(m: int) -> str:
    kind = m & 0o170000
    parts = [FILE_TYPES.get(kind, f"{kind:#o}")] if kind else []
    rest = _flags(m & 0o7000, MODE_BITS, "")
    if rest:
        parts.append(rest)
    parts.append(_oct(m & 0o777))
    return "|".join(parts)


def _makedev(dev: int) -> str:
    major = ((dev >> 8) & 0xFFF) | ((dev >> 32) & 0xFFFFF000)
    minor = (dev & 0xFF) | ((dev >> 12) & 0xFFFFFF00)
    return f"makedev({_cx(major)}, {_cx(minor)})"


_kind("fmode")(lambda c, v, p: _file_mode(v & 0xFFFFFFFF))
_kind("dev")(lambda c, v, p: _makedev(v))


def _register_tables() -> None:
    for name, (names, take, unknown) in ENUMS.items():
        _kind(name)(lambda c, v, p, n=names, t=take, u=unknown: _enum(t(v), n, u))
    for name, (table, zero, unknown) in FLAGS.items():
        _kind(name)(lambda c, v, p, t=table, z=zero, u=unknown: _flags(v & MASK64, t, z, u))


_register_tables()


def _open_flags(v: int) -> str:
    v &= 0xFFFFFFFF
    rest = _flags(v & ~3, O_FLAGS, "")
    return O_ACCMODES[v & 3] + ("|" + rest if rest else "")


_kind("oflags")(lambda c, v, p: _open_flags(v))
#: O_* flags of calls that take no access mode (pipe2, dup3)
_kind("ofdflags")(lambda c, v, p: _flags(v & 0xFFFFFFFF, O_FLAGS))


@_kind("mapflags")
def _map_flags(c: _Ctx, v: int, p: int | None) -> str:
    v &= 0xFFFFFFFF
    kind = MAP_TYPES.get(v & 3, "0")
    rest = _flags(v & ~3, MAP_FLAGS, "")
    return kind + ("|" + rest if rest else "")


@_kind("statxflags")
def _statx_flags(c: _Ctx, v: int, p: int | None) -> str:
    v &= 0xFFFFFFFF
    rest = _flags(v & ~0x6000, AT_FLAGS, "")
    return STATX_SYNC[v & 0x6000] + ("|" + rest if rest else "")


def _clone_flags(v: int) -> str:
    parts = [] if v & ~0xFF == 0 else [_flags(v & ~0xFF, CLONE_FLAGS)]
    if v & 0xFF:
        parts.append(_signame(v & 0xFF))
    return "|".join(parts) or "0"


_kind("cloneflags")(lambda c, v, p: _clone_flags(v & MASK64))


@_kind("socktype")
def _socktype(c: _Ctx, v: int, p: int | None) -> str:
    v &= 0xFFFFFFFF
    parts = [SOCK_TYPES.get(v & 0xF, f"{v & 0xF:#x} /* SOCK_??? */")]
    known = sum(bit for bit, _ in SOCK_FLAGS)
    if v & known:
        parts.append(_flags(v & known, SOCK_FLAGS))
    if v & ~0xF & ~known:
        parts.append(f"{v & ~0xF & ~known:#x} /* SOCK_??? */")
    return "|".join(parts)


@_kind("sockproto")
def _sockproto(c: _Ctx, v: int, p: int | None) -> str:
    domain, proto = _s32(c.args[0]), _s32(v)
    names = {AF_INET: IP_PROTOCOLS, AF_INET6: IP_PROTOCOLS,
             AF_NETLINK: NETLINK_PROTOCOLS}.get(domain)
    return names.get(proto, str(proto)) if names else str(proto)


@_kind("sockoptname")
def _sockoptname(c: _Ctx, v: int, p: int | None) -> str:
    names = SOCKOPT_NAMES.get(_s32(c.args[1]), {})
    name = names.get(_s32(v))
    return name if name and not name.isdigit() else str(_s32(v))


@_kind("futexop")
def _futexop(c: _Ctx, v: int, p: int | None) -> str:
    v &= 0xFFFFFFFF
    cmd = FUTEX_CMDS.get(v & 0x7F)
    if cmd is None:
        return f"{v:#x} /* FUTEX_??? */"
    if v & FUTEX_PRIVATE:
        cmd += "_PRIVATE"
    if v & FUTEX_CLOCK_REALTIME:
        cmd += "|FUTEX_CLOCK_REALTIME"
    rest = v & ~(0x7F | FUTEX_PRIVATE | FUTEX_CLOCK_REALTIME)
    return cmd + (f"|{rest:#x}" if rest else "")


_kind("futexbitset")(lambda c, v, p: "FUTEX_BITSET_MATCH_ANY"
                     if v & 0xFFFFFFFF == 0xFFFFFFFF else _cx(v & 0xFFFFFFFF))


@_kind("ioctlreq")
def _ioctlreq(c: _Ctx, v: int, p: int | None) -> str:
    v &= 0xFFFFFFFF
    name = IOCTLS.get(v)
    if name:
        return name
    return (f"_IOC({IOC_DIRS[v >> 30]}, {_cx((v >> 8) & 0xFF)}, {_cx(v & 0xFF)}, "
            f"{_cx((v >> 16) & 0x3FFF)})")


# strings and buffers

def _cstr(c: _Ctx, addr: int, limit: int) -> str:
    """A NUL-terminated string, "..." after it when longer than limit."""
    s = c.task.mm.read_cstring(addr, limit + 1)
    return _quote(s[:limit]) + ("..." if len(s) > limit else "")


def _buf(c: _Ctx, addr: int, length: int, hexstyle: bool = False) -> str:
    """length bytes at addr, the first STRSIZE of them shown."""
    if length <= 0:
        return '""'
    data = c.read(addr, min(length, STRSIZE))
    return _quote(data, hexstyle) + ("..." if length > STRSIZE else "")


_kind("path", pointer=True)(lambda c, v, p: _cstr(c, v, PATH_MAX))
_kind("ibuf", pointer=True)(lambda c, v, p: _buf(c, v, _param_arg(c, p)))
_kind("obuf", phase=OUT, pointer=True)(lambda c, v, p: _buf(c, v, c.ret))
_kind("obufhex", phase=OUT, pointer=True)(lambda c, v, p: _buf(c, v, c.ret, hexstyle=True))
_kind("ocwd", phase=OUT, pointer=True)(
    lambda c, v, p: _quote(c.task.mm.read_cstring(v, max(c.ret, 1))))
_kind("ostr16", phase=OUT, pointer=True)(lambda c, v, p: _cstr(c, v, 15))


@_kind("argv", pointer=True)
def _argv(c: _Ctx, v: int, p: int | None) -> str:
    ptrs = c.u64s(v, STRSIZE + 1)
    items = [_cstr(c, s, STRSIZE) for s in ptrs[:STRSIZE] if s]
    if len(ptrs) > STRSIZE and ptrs[STRSIZE]:
        items.append("...")
    return "[" + ", ".join(items) + "]"


@_kind("envp", pointer=True)
def _envp(c: _Ctx, v: int, p: int | None) -> str:
    ptrs = c.u64s(v, 4096)
    count = len(ptrs) - (1 if ptrs and ptrs[-1] == 0 else 0)
    return f"{v:#x} /* {count} vars */"


def _iovec(c: _Ctx, addr: int, count: int, limit: int | None) -> str:
    """iovec array; limit: data bytes to show in total (readv: what was read)."""
    if count < 0 or count > IOV_MAX:
        return _ptr(addr)
    shown = min(count, STRSIZE)
    raw = c.read(addr, 16 * shown)
    items = []
    for i in range(shown):
        base, length = _u(raw, 16 * i, 8), _u(raw, 16 * i + 8, 8)
        size = length if limit is None else max(0, min(length, limit))
        if limit is not None:
            limit = max(0, limit - length)
        try:
            data = _buf(c, base, size)
        except Exception:
            data = _ptr(base)
        items.append(f"{{iov_base={data}, iov_len={length}}}")
    if count > shown:
        items.append("...")
    return "[" + ", ".join(items) + "]"


_kind("iovec", pointer=True)(lambda c, v, p: _iovec(c, v, _s32(_param_arg(c, p)), None))
_kind("oiovec", phase=OUT, pointer=True)(
    lambda c, v, p: _iovec(c, v, _s32(_param_arg(c, p)), c.ret))


# simple structs

def _timespec(data: bytes, off: int = 0, sub: str = "nsec") -> str:
    return f"{{tv_sec={_i(data, off, 8)}, tv_{sub}={_i(data, off + 8, 8)}}}"


_kind("timespec", pointer=True)(lambda c, v, p: _timespec(c.read(v, 16)))
_kind("otimespec", phase=OUT, pointer=True)(lambda c, v, p: _timespec(c.read(v, 16)))
_kind("timeval", pointer=True)(lambda c, v, p: _timespec(c.read(v, 16), sub="usec"))
_kind("otimeval", phase=OUT, pointer=True)(lambda c, v, p: _timespec(c.read(v, 16), sub="usec"))
_kind("rem", phase=LATE, pointer=True)(
    lambda c, v, p: _timespec(c.read(v, 16)) if c.ret == -EINTR else _ptr(v))
_kind("timevals2", pointer=True)(
    lambda c, v, p: "[" + ", ".join(_timespec(c.read(v, 32), o, "usec") for o in (0, 16)) + "]")
_UTIME_SPECIAL = {(1 << 30) - 1: "UTIME_NOW", (1 << 30) - 2: "UTIME_OMIT"}


@_kind("timespecs2", pointer=True)
def _timespecs2(c: _Ctx, v: int, p: int | None) -> str:
    data = c.read(v, 32)
    return "[" + ", ".join(_UTIME_SPECIAL.get(_i(data, o + 8, 8)) or _timespec(data, o)
                           for o in (0, 16)) + "]"


def _itimer(data: bytes, sub: str) -> str:
    return f"{{it_interval={_timespec(data, 0, sub)}, it_value={_timespec(data, 16, sub)}}}"


_kind("itimerval", pointer=True)(lambda c, v, p: _itimer(c.read(v, 32), "usec"))
_kind("oitimerval", phase=OUT, pointer=True)(lambda c, v, p: _itimer(c.read(v, 32), "usec"))
_kind("itimerspec", pointer=True)(lambda c, v, p: _itimer(c.read(v, 32), "nsec"))
_kind("oitimerspec", phase=OUT, pointer=True)(lambda c, v, p: _itimer(c.read(v, 32), "nsec"))


def _rlim(v: int) -> str:
    if v == MASK64:
        return "RLIM64_INFINITY"
    return f"{v // 1024}*1024" if v > 1024 and v % 1024 == 0 else str(v)


def _rlimit(c: _Ctx, v: int, p: int | None) -> str:
    data = c.read(v, 16)
    return f"{{rlim_cur={_rlim(_u(data, 0, 8))}, rlim_max={_rlim(_u(data, 8, 8))}}}"


_kind("rlimit", pointer=True)(_rlimit)
_kind("orlimit", phase=OUT, pointer=True)(_rlimit)


def _stat(c: _Ctx, v: int, p: int | None) -> str:
    data = c.read(v, 144)
    mode = _u(data, 24, 4)
    if mode & 0o170000 in (0o20000, 0o60000):
        size = f"st_rdev={_makedev(_u(data, 40, 8))}"
    else:
        size = f"st_size={_i(data, 48, 8)}"
    return f"{{st_mode={_file_mode(mode)}, {size}, ...}}"


_kind("stat", phase=OUT, pointer=True)(_stat)


@_kind("statx", phase=OUT, pointer=True)
def _statx(c: _Ctx, v: int, p: int | None) -> str:
    data = c.read(v, 48)
    return (f"{{stx_mask={_flags(_u(data, 0, 4), STATX_MASK)}, "
            f"stx_attributes={_flags(_u(data, 8, 8), STATX_ATTRS)}, "
            f"stx_mode={_file_mode(_u(data, 28, 2))}, stx_size={_u(data, 40, 8)}, ...}}")


@_kind("statfs", phase=OUT, pointer=True)
def _statfs(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 88)
    ftype = _u(d, 0, 8)
    fields = ", ".join(f"{n}={_u(d, o, 8)}" for n, o in (
        ("f_bsize", 8), ("f_blocks", 16), ("f_bfree", 24), ("f_bavail", 32), ("f_files", 40),
        ("f_ffree", 48)))
    return (f"{{f_type={FS_MAGICS.get(ftype, _cx(ftype))}, {fields}, "
            f"f_fsid={{val=[{_cx(_u(d, 56, 4))}, {_cx(_u(d, 60, 4))}]}}, "
            f"f_namelen={_u(d, 64, 8)}, f_frsize={_u(d, 72, 8)}, "
            f"f_flags={_flags(_u(d, 80, 8), STATFS_FLAGS)}}}")


@_kind("utsname", phase=OUT, pointer=True)
def _utsname(c: _Ctx, v: int, p: int | None) -> str:
    data = c.read(v, 130)
    sysname, nodename = (data[o:o + 65].split(b"\0", 1)[0] for o in (0, 65))
    return f"{{sysname={_quote(sysname)}, nodename={_quote(nodename)}, ...}}"


@_kind("osysinfo", phase=OUT, pointer=True)
def _sysinfo(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 112)
    loads = ", ".join(str(_u(d, o, 8)) for o in (8, 16, 24))
    mem = ", ".join(f"{n}={_u(d, o, 8)}" for n, o in (
        ("totalram", 32), ("freeram", 40), ("sharedram", 48), ("bufferram", 56),
        ("totalswap", 64), ("freeswap", 72)))
    return (f"{{uptime={_i(d, 0, 8)}, loads=[{loads}], {mem}, procs={_u(d, 80, 2)}, "
            f"totalhigh={_u(d, 88, 8)}, freehigh={_u(d, 96, 8)}, mem_unit={_u(d, 104, 4)}}}")


@_kind("orusage", phase=OUT, pointer=True)
def _rusage(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 32)
    return f"{{ru_utime={_timespec(d, 0, 'usec')}, ru_stime={_timespec(d, 16, 'usec')}, ...}}"


@_kind("otms", phase=OUT, pointer=True)
def _tms(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 32)
    return "{" + ", ".join(f"tms_{n}={_u(d, 8 * i, 8)}"
                           for i, n in enumerate(("utime", "stime", "cutime", "cstime"))) + "}"


def _int_cell(c: _Ctx, v: int, p: int | None) -> str:
    return f"[{_i(c.read(v, 4), 0, 4)}]"


_kind("iint", pointer=True)(_int_cell)
_kind("oint", phase=OUT, pointer=True)(_int_cell)
_kind("ouint", "ouid", "opid", phase=OUT, pointer=True)(
    lambda c, v, p: f"[{_u(c.read(v, 4), 0, 4)}]")
_kind("ou64", phase=OUT, pointer=True)(lambda c, v, p: f"[{_cx(_u(c.read(v, 8), 0, 8))}]")
_kind("ioff", pointer=True)(lambda c, v, p: f"[{_i(c.read(v, 8), 0, 8)}]")
_kind("fdpair", phase=OUT, pointer=True)(
    lambda c, v, p: "[{}, {}]".format(*(_i(c.read(v, 8), o, 4) for o in (0, 4))))


@_kind("otime", phase=OUT, pointer=True)
def _otime(c: _Ctx, v: int, p: int | None) -> str:
    t = _i(c.read(v, 8), 0, 8)
    return f"[{t} /* {_isotime(t)} */]"


def _isotime(t: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def _int_list(data: bytes, count: int, size: int) -> str:
    items = [str(_u(data, size * i, size)) for i in range(min(count, STRSIZE))]
    if count > STRSIZE:
        items.append("...")
    return "[" + ", ".join(items) + "]"


_kind("groups", pointer=True)(
    lambda c, v, p: _int_list(c.read(v, 4 * min(_s32(_param_arg(c, p)), STRSIZE)),
                              _s32(_param_arg(c, p)), 4))
_kind("ogroups", phase=OUT, pointer=True)(
    lambda c, v, p: _int_list(c.read(v, 4 * min(c.ret, STRSIZE)), c.ret, 4))


@_kind("omincore", phase=OUT, pointer=True)
def _mincore(c: _Ctx, v: int, p: int | None) -> str:
    pages = (_param_arg(c, p) + 4095) // 4096
    return _int_list(c.read(v, min(pages, STRSIZE)), pages, 1)


def _bit_list(data: bytes, nbits: int, sep: str = " ") -> str:
    bits = int.from_bytes(data, "little")
    return "[" + sep.join(str(i) for i in range(min(nbits, 8 * len(data))) if bits >> i & 1) + "]"


_kind("cpuset", pointer=True)(
    lambda c, v, p: _bit_list(c.read(v, min(_param_arg(c, p), 1024)), 8 * 1024))
_kind("ocpuset", phase=OUT, pointer=True)(
    lambda c, v, p: _bit_list(c.read(v, min(c.ret, 1024)), 8 * 1024))


@_kind("fdset", pointer=True)
def _fdset(c: _Ctx, v: int, p: int | None) -> str:
    nfds = _s32(_param_arg(c, p))
    if nfds <= 0 or nfds > 1 << 20:
        return _ptr(v)
    return _bit_list(c.read(v, (nfds + 63) // 64 * 8), nfds)


@_kind("dents", phase=OUT, pointer=True)
def _dents(c: _Ctx, v: int, p: int | None) -> str:
    data = c.read(v, c.ret)
    count = pos = 0
    while pos + 18 <= len(data):
        reclen = _u(data, pos + 16, 2)
        if reclen == 0:
            break
        count += 1
        pos += reclen
    return f"{v:#x} /* {count} entries */"


# signals

def _sigset_text(data: bytes) -> str:
    bits = int.from_bytes(data, "little")
    nbits = 8 * len(data)
    invert = 2 * bin(bits).count("1") > nbits
    if invert:
        bits = ~bits & ((1 << nbits) - 1)
    names = [_signame(i + 1).removeprefix("SIG") for i in range(nbits) if bits >> i & 1]
    return ("~[" if invert else "[") + " ".join(names) + "]"


def _sigset(c: _Ctx, v: int, p: int | None) -> str:
    size = _param_arg(c, p) if p is not None else 8
    if not 0 < size <= 128:
        return _ptr(v)
    return _sigset_text(c.read(v, size))


_kind("sigset", pointer=True)(_sigset)
_kind("osigset", phase=OUT, pointer=True)(_sigset)


def _sigaction(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 32)
    handler, flags, restorer = _u(d, 0, 8), _u(d, 8, 8), _u(d, 16, 8)
    text = (f"{{sa_handler={SIG_HANDLERS.get(handler) or _cx(handler)}, "
            f"sa_mask={_sigset_text(d[24:32])}, sa_flags={_flags(flags, SA_FLAGS)}")
    if flags & SA_RESTORER:
        text += f", sa_restorer={_cx(restorer)}"
    return text + "}"


_kind("sigaction", pointer=True)(_sigaction)
_kind("osigaction", phase=OUT, pointer=True)(_sigaction)


def _stack(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 24)
    flags = _flags(_u(d, 8, 4), _table("SS_ONSTACK=1 SS_DISABLE=2 SS_AUTODISARM=0x80000000"))
    return f"{{ss_sp={_ptr(_u(d, 0, 8))}, ss_flags={flags}, ss_size={_u(d, 16, 8)}}}"


_kind("stackt", pointer=True)(_stack)
_kind("ostackt", phase=OUT, pointer=True)(_stack)


@_kind("wstatus", phase=OUT, pointer=True)
def _wstatus(c: _Ctx, v: int, p: int | None) -> str:
    if c.ret <= 0:
        return _ptr(v)
    s = _u(c.read(v, 4), 0, 4)
    if s & 0x7F == 0:
        text = f"WIFEXITED(s) && WEXITSTATUS(s) == {(s >> 8) & 0xFF}"
    elif s & 0xFF == 0x7F:
        text = f"WIFSTOPPED(s) && WSTOPSIG(s) == {_signame((s >> 8) & 0xFF)}"
    elif s == 0xFFFF:
        text = "WIFCONTINUED(s)"
    else:
        text = f"WIFSIGNALED(s) && WTERMSIG(s) == {_signame(s & 0x7F)}"
        if s & 0x80:
            text += " && WCOREDUMP(s)"
    return f"[{{{text}}}]"


@_kind("cloneargs", phase=LATE, pointer=True)
def _clone_args(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, min(_param_arg(c, p) or 64, 88))
    flags = _u(d, 0, 8)
    parts = [f"flags={_flags(flags, CLONE_FLAGS)}"]
    for name, off, bit in (("pidfd", 8, 0x1000), ("child_tid", 16, 0x1200000),
                           ("parent_tid", 24, 0x100000)):
        if flags & bit:
            parts.append(f"{name}={_ptr(_u(d, off, 8))}")
    parts.append(f"exit_signal={_signame(_u(d, 32, 8))}")
    parts.append(f"stack={_ptr(_u(d, 40, 8))}, stack_size={_cx(_u(d, 48, 8))}")
    if flags & 0x80000:
        parts.append(f"tls={_ptr(_u(d, 56, 8))}")
    text = "{" + ", ".join(parts) + "}"
    if c.succeeded and flags & 0x100000 and _u(d, 24, 8):
        text += f" => {{parent_tid=[{_u(c.read(_u(d, 24, 8), 4), 0, 4)}]}}"
    return text


# descriptors: poll, epoll, sockets, terminals, locks

def _pollfds(c: _Ctx, addr: int, count: int, field: str, only_ready: bool) -> str:
    shown = min(count, STRSIZE)
    d = c.read(addr, 8 * shown)
    items = []
    for i in range(shown):
        fd, events, revents = _i(d, 8 * i, 4), _u(d, 8 * i + 4, 2), _u(d, 8 * i + 6, 2)
        value = revents if field == "revents" else events
        if only_ready and not revents:
            continue
        items.append(f"{{fd={fd}, {field}={_flags(value, POLL_EVENTS)}}}")
    if count > shown:
        items.append("...")
    return "[" + ", ".join(items) + "]"


_kind("pollfds", pointer=True)(
    lambda c, v, p: _pollfds(c, v, _param_arg(c, p) & 0xFFFFFFFF, "events", False))


def _epoll_event(d: bytes, off: int) -> str:
    data = _u(d, off + 4, 8)
    return (f"{{events={_flags(_u(d, off, 4), EPOLL_EVENTS)}, "
            f"data={{u32={data & 0xFFFFFFFF}, u64={data}}}}}")


_kind("epollevent", pointer=True)(lambda c, v, p: _epoll_event(c.read(v, 12), 0))


@_kind("oepollevents", phase=OUT, pointer=True)
def _epoll_events(c: _Ctx, v: int, p: int | None) -> str:
    shown = min(c.ret, STRSIZE)
    d = c.read(v, 12 * shown)
    items = [_epoll_event(d, 12 * i) for i in range(shown)]
    if c.ret > shown:
        items.append("...")
    return "[" + ", ".join(items) + "]"


def _sockaddr_at(c: _Ctx, addr: int, length: int) -> str:
    if addr == 0:
        return "NULL"
    length = min(length, 128)
    if length < 2:
        return _ptr(addr)
    d = c.read(addr, length)
    family = _u(d, 0, 2)
    head = f"sa_family={_enum(family, ADDRESS_FAMILIES, 'AF_???')}"
    if family == AF_UNIX:
        path = d[2:]
        if not path:
            return f"{{{head}}}"
        if path[0] == 0:
            return f"{{{head}, sun_path=@{_quote(path[1:])}}}"
        return f"{{{head}, sun_path={_quote(path.split(NUL, 1)[0])}}}"
    if family == AF_INET and length >= 8:
        ip = ".".join(str(b) for b in d[4:8])
        return (f"{{{head}, sin_port=htons({int.from_bytes(d[2:4], 'big')}), "
                f'sin_addr=inet_addr("{ip}")}}')
    if family == AF_INET6 and length >= 24:
        import socket
        ip = socket.inet_ntop(socket.AF_INET6, d[8:24])
        scope = f", sin6_scope_id={_u(d, 24, 4)}" if length >= 28 else ""
        return (f"{{{head}, sin6_port=htons({int.from_bytes(d[2:4], 'big')}), "
                f"sin6_flowinfo=htonl({int.from_bytes(d[4:8], 'big')}), "
                f'inet_pton(AF_INET6, "{ip}", &sin6_addr){scope}}}')
    if family == AF_NETLINK and length >= 12:
        return f"{{{head}, nl_pid={_u(d, 4, 4)}, nl_groups={_u(d, 8, 4):08x}}}"
    return f"{{{head}, sa_data={_quote(d[2:])}}}"


_kind("sockaddr", pointer=True)(lambda c, v, p: _sockaddr_at(c, v, _param_arg(c, p) & 0xFFFFFFFF))
_kind("osockaddr", phase=OUT, pointer=True)(
    lambda c, v, p: _sockaddr_at(c, v, _u(c.read(_param_arg(c, p), 4), 0, 4)))
_kind("osocklen", phase=OUT, pointer=True)(lambda c, v, p: f"[{_u(c.read(v, 4), 0, 4)}]")


def _sockopt(c: _Ctx, v: int, length: int) -> str:
    return _int_cell(c, v, None) if length == 4 else _buf(c, v, length)


_kind("sockoptval", pointer=True)(lambda c, v, p: _sockopt(c, v, _param_arg(c, p) & 0xFFFFFFFF))
_kind("osockoptval", phase=OUT, pointer=True)(
    lambda c, v, p: _sockopt(c, v, _u(c.read(_param_arg(c, p), 4), 0, 4)))


def _msghdr(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 56)
    name, namelen = _u(d, 0, 8), _u(d, 8, 4)
    iov, iovlen = _u(d, 16, 8), _u(d, 24, 8)
    control, controllen = _u(d, 32, 8), _u(d, 40, 8)
    limit = c.ret if c.ret is not None else None
    parts = [f"msg_name={_sockaddr_at(c, name, namelen)}", f"msg_namelen={namelen}",
             f"msg_iov={_iovec(c, iov, iovlen, limit) if iov else 'NULL'}",
             f"msg_iovlen={iovlen}"]
    if controllen:
        parts.append(f"msg_control={_ptr(control)}")
    parts.append(f"msg_controllen={controllen}")
    parts.append(f"msg_flags={_flags(_u(d, 48, 4), MSG_FLAGS)}")
    return "{" + ", ".join(parts) + "}"


_kind("msghdr", pointer=True)(_msghdr)
_kind("omsghdr", phase=OUT, pointer=True)(_msghdr)


def _termios(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 36)
    iflag, oflag, cflag, lflag = (_u(d, o, 4) for o in (0, 4, 8, 12))
    delays = "|".join(names[(oflag & mask) >> shift] for mask, shift, names in TC_ODELAYS)
    odelay_mask = sum(mask for mask, _, _ in TC_ODELAYS)
    baud = BAUDS.get(cflag & 0x100F, _cx(cflag & 0x100F))
    csize = f"CS{5 + ((cflag >> 4) & 3)}"
    return (f"{{c_iflag={_flags(iflag, TC_IFLAGS, '')}, "
            f"c_oflag={delays}|{_flags(oflag & ~odelay_mask, TC_OFLAGS, '')}, "
            f"c_cflag={baud}|{csize}|{_flags(cflag & ~0x103F, TC_CFLAGS, '')}, "
            f"c_lflag={_flags(lflag, TC_LFLAGS, '')}, ...}}")


_kind("termios", pointer=True)(_termios)
_kind("otermios", phase=OUT, pointer=True)(_termios)


def _winsize(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 8)
    return "{" + ", ".join(f"ws_{n}={_u(d, 2 * i, 2)}"
                           for i, n in enumerate(("row", "col", "xpixel", "ypixel"))) + "}"


_kind("winsize", pointer=True)(_winsize)
_kind("owinsize", phase=OUT, pointer=True)(_winsize)


def _flock(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 32)
    ltype = {0: "F_RDLCK", 1: "F_WRLCK", 2: "F_UNLCK"}.get(_i(d, 0, 2), str(_i(d, 0, 2)))
    whence = _enum(_i(d, 2, 2), ENUMS["whence"][0], "SEEK_???")
    return (f"{{l_type={ltype}, l_whence={whence}, l_start={_i(d, 8, 8)}, "
            f"l_len={_i(d, 16, 8)}, l_pid={_i(d, 24, 4)}}}")


_kind("flock", pointer=True)(_flock)
_kind("oflock", phase=OUT, pointer=True)(_flock)


@_kind("openhow", pointer=True)
def _open_how(c: _Ctx, v: int, p: int | None) -> str:
    d = c.read(v, 24)
    flags, mode, resolve = _u(d, 0, 8), _u(d, 8, 8), _u(d, 16, 8)
    parts = [f"flags={_open_flags(flags)}"]
    if mode or flags & O_CREAT_OR_TMPFILE:
        parts.append(f"mode={_oct(mode)}")
    if resolve:
        parts.append("resolve=" + _flags(resolve, _table(
            "RESOLVE_NO_XDEV=1 RESOLVE_NO_MAGICLINKS=2 RESOLVE_NO_SYMLINKS=4 "
            "RESOLVE_BENEATH=8 RESOLVE_IN_ROOT=0x10 RESOLVE_CACHED=0x20")))
    return "{" + ", ".join(parts) + "}"


# ------------------------------------------------------------------- the signature table

#: name: argument kinds [-> result format].  A token is [label=]kind[:N][#I][?C&MASK]:
#: N a parameter (usually the index of the argument holding a length or count), I the
#: argument index when not the next one, ?C&MASK prints the argument only when argument
#: C has a bit of MASK set, '_' skips an argument, and *name continues with the
#: arguments TAILS[name] chooses from the preceding selector argument.
SPECS_TEXT = """
read: fd obuf ulong
write: fd ibuf:2 ulong
open: path oflags mode?1&0x400040
close: fd
stat: path stat
fstat: fd stat
lstat: path stat
poll: pollfds:1 uint int -> poll
lseek: fd long whence
mmap: ptr ulong prot mapflags fd hex -> hex
mprotect: ptr ulong prot
munmap: ptr ulong
brk: ptr -> hex
rt_sigaction: sig sigaction osigaction ulong
rt_sigprocmask: sighow sigset:3 osigset:3 ulong
rt_sigreturn:
ioctl: fd ioctlreq *ioctl
pread64: fd obuf ulong long
pwrite64: fd ibuf:2 ulong long
readv: fd oiovec:2 int
writev: fd iovec:2 int
access: path accessmode
pipe: fdpair
select: int fdset:0 fdset:0 fdset:0 timeval
sched_yield:
mremap: ptr ulong ulong mremapflags ptr?3&2 -> hex
msync: ptr ulong msyncflags
mincore: ptr ulong omincore:1
madvise: ptr ulong madvise
shmget: hex ulong hex
shmat: int ptr hex -> hex
shmctl: int int ptr
dup: fd
dup2: fd fd
pause:
nanosleep: timespec rem
getitimer: itimerwhich oitimerval
alarm: uint
setitimer: itimerwhich itimerval oitimerval
getpid:
sendfile: fd fd ioff ulong
socket: af socktype sockproto
connect: fd sockaddr:2 int
accept: fd osockaddr:2 osocklen
sendto: fd ibuf:2 ulong msgflags sockaddr:5 int
recvfrom: fd obuf ulong msgflags osockaddr:5 osocklen
sendmsg: fd msghdr msgflags
recvmsg: fd omsghdr msgflags
shutdown: fd shuthow
bind: fd sockaddr:2 int
listen: fd int
getsockname: fd osockaddr:2 osocklen
getpeername: fd osockaddr:2 osocklen
socketpair: af socktype sockproto fdpair
setsockopt: fd sockoptlevel sockoptname sockoptval:4 int
getsockopt: fd sockoptlevel sockoptname osockoptval:4 osocklen
clone: child_stack=ptr#1 flags=cloneflags#0 parent_tid=opid#2?0&0x100000 \
tls=hex#4?0&0x80000 child_tidptr=ptr#3?0&0x1200000
fork:
vfork:
execve: path argv envp
exit: int -> none
wait4: int wstatus waitopts ptr
kill: int sig
uname: utsname
semget: hex int hex
semop: int ptr uint
semctl: int int int hex
shmdt: ptr
msgget: hex hex
msgsnd: int ptr ulong hex
msgrcv: int ptr ulong long hex
msgctl: int int ptr
fcntl: fd fcntlcmd *fcntl
flock: fd flockop
fsync: fd
fdatasync: fd
truncate: path long
ftruncate: fd long
getdents: fd dents ulong
getcwd: ocwd ulong
chdir: path
fchdir: fd
rename: path path
mkdir: path mode
rmdir: path
creat: path mode
link: path path
unlink: path
symlink: path path
readlink: path obuf ulong
chmod: path mode
fchmod: fd mode
chown: path uid uid
fchown: fd uid uid
lchown: path uid uid
umask: mode -> oct
gettimeofday: otimeval ptr
getrlimit: rlimres orlimit
getrusage: rusagewho orusage
sysinfo: osysinfo
times: otms
ptrace: int int hex hex
getuid:
syslog: int ptr int
getgid:
setuid: uid
setgid: uid
geteuid:
getegid:
setpgid: int int
getppid:
getpgrp:
setsid:
setreuid: uid uid
setregid: uid uid
getgroups: int ogroups
setgroups: int groups:0
setresuid: uid uid uid
getresuid: ouid ouid ouid
setresgid: uid uid uid
getresgid: ouid ouid ouid
getpgid: int
setfsuid: uid
setfsgid: uid
getsid: int
capget: ptr ptr
capset: ptr ptr
rt_sigpending: osigset:1 ulong
rt_sigtimedwait: sigset:3 ptr timespec ulong
rt_sigqueueinfo: int sig ptr
rt_sigsuspend: sigset:1 ulong
sigaltstack: stackt ostackt
utime: path ptr
mknod: path fmode dev
uselib: path
personality: hex
ustat: dev ptr
statfs: path statfs
fstatfs: fd statfs
sysfs: int hex hex
getpriority: priowhich int
setpriority: priowhich int int
sched_setparam: int ptr
sched_getparam: int ptr
sched_setscheduler: int int ptr
sched_getscheduler: int
sched_get_priority_max: int
sched_get_priority_min: int
sched_rr_get_interval: int otimespec
mlock: ptr ulong
munlock: ptr ulong
mlockall: hex
munlockall:
vhangup:
modify_ldt: int ptr ulong
pivot_root: path path
prctl: prctlop *prctl
arch_prctl: archcode *arch_prctl
adjtimex: ptr
setrlimit: rlimres rlimit
chroot: path
sync:
acct: path
settimeofday: timeval ptr
mount: path path path mountflags ptr
umount2: path umountflags
swapon: path hex
swapoff: path
reboot: hex hex hex ptr
sethostname: ibuf:1 ulong
setdomainname: ibuf:1 ulong
iopl: int
ioperm: ulong ulong int
init_module: ptr ulong path
delete_module: path hex
quotactl: hex path int ptr
gettid:
readahead: fd long ulong
setxattr: path path ibuf:3 ulong xattrflags
lsetxattr: path path ibuf:3 ulong xattrflags
fsetxattr: fd path ibuf:3 ulong xattrflags
getxattr: path path obuf ulong
lgetxattr: path path obuf ulong
fgetxattr: fd path obuf ulong
listxattr: path obuf ulong
llistxattr: path obuf ulong
flistxattr: fd obuf ulong
removexattr: path path
lremovexattr: path path
fremovexattr: fd path
tkill: int sig
time: otime -> time
futex: ptr futexop *futex
sched_setaffinity: int ulong cpuset:1
sched_getaffinity: int ulong ocpuset
io_setup: uint ptr
io_destroy: hex
io_getevents: hex long long ptr timespec
io_submit: hex long ptr
io_cancel: hex ptr ptr
epoll_create: int
remap_file_pages: ptr ulong hex ulong hex
getdents64: fd dents ulong
set_tid_address: ptr
restart_syscall:
semtimedop: int ptr uint timespec
fadvise64: fd long long fadvice
timer_create: clock ptr ptr
timer_settime: int timerflags itimerspec oitimerspec
timer_gettime: int oitimerspec
timer_getoverrun: int
timer_delete: int
clock_settime: clock timespec
clock_gettime: clock otimespec
clock_getres: clock otimespec
clock_nanosleep: clock timerflags timespec rem
exit_group: int -> none
epoll_wait: fd oepollevents int int
epoll_ctl: fd epollop fd epollevent
tgkill: int int sig
utimes: path timevals2
mbind: ptr ulong int ptr ulong hex
set_mempolicy: int ptr ulong
get_mempolicy: ptr ptr ulong ptr hex
mq_open: path oflags mode ptr
mq_unlink: path
mq_timedsend: int ptr ulong uint timespec
mq_timedreceive: int ptr ulong ptr timespec
mq_notify: int ptr
mq_getsetattr: int ptr ptr
waitid: idtype int ptr waitopts ptr
add_key: path path ptr ulong int
request_key: path path path int
keyctl: int hex hex hex hex
ioprio_set: int int int
ioprio_get: int int
inotify_init:
inotify_add_watch: fd path inmask
inotify_rm_watch: fd int
migrate_pages: int ulong ptr ptr
openat: dirfd path oflags mode?2&0x400040
mkdirat: dirfd path mode
mknodat: dirfd path fmode dev
fchownat: dirfd path uid uid atflags
futimesat: dirfd path timevals2
newfstatat: dirfd path stat atflags
unlinkat: dirfd path atflags
renameat: dirfd path dirfd path
linkat: dirfd path dirfd path atflags
symlinkat: path dirfd path
readlinkat: dirfd path obuf ulong
fchmodat: dirfd path mode
faccessat: dirfd path accessmode
pselect6: int fdset:0 fdset:0 fdset:0 timespec ptr
ppoll: pollfds:1 uint timespec sigset:4 ulong -> poll
unshare: nsflags
set_robust_list: ptr ulong
get_robust_list: int ptr ptr
splice: fd ioff fd ioff ulong spliceflags
tee: fd fd ulong spliceflags
sync_file_range: fd long long hex
vmsplice: fd iovec:2 ulong spliceflags
move_pages: int ulong ptr ptr ptr hex
utimensat: dirfd path timespecs2 atflags
epoll_pwait: fd oepollevents int int sigset:5 ulong
signalfd: fd sigset:2 ulong
timerfd_create: clock tfdflags
eventfd: uint
fallocate: fd fallocmode long long
timerfd_settime: fd tfdsetflags itimerspec oitimerspec
timerfd_gettime: fd oitimerspec
accept4: fd osockaddr:2 osocklen sockflags
signalfd4: fd sigset:2 ulong sfdflags
eventfd2: uint efdflags
epoll_create1: epollflags
dup3: fd fd ofdflags
pipe2: fdpair ofdflags
inotify_init1: inflags
preadv: fd oiovec:2 int long
pwritev: fd iovec:2 int long
rt_tgsigqueueinfo: int int sig ptr
perf_event_open: ptr int int int hex
recvmmsg: fd ptr uint msgflags timespec
fanotify_init: hex hex
fanotify_mark: fd hex hex dirfd path
prlimit64: int rlimres rlimit orlimit
name_to_handle_at: dirfd path ptr ptr atflags
open_by_handle_at: fd ptr oflags
clock_adjtime: clock ptr
syncfs: fd
sendmmsg: fd ptr uint msgflags
setns: fd nsflags
getcpu: ouint ouint ptr
process_vm_readv: int ptr ulong ptr ulong hex
process_vm_writev: int ptr ulong ptr ulong hex
kcmp: int int int hex hex
finit_module: fd path hex
sched_setattr: int ptr hex
sched_getattr: int ptr uint hex
renameat2: dirfd path dirfd path renameflags
seccomp: int hex ptr
getrandom: obufhex ulong grndflags
memfd_create: path mfdflags
kexec_file_load: fd fd ulong path hex
bpf: int ptr uint
execveat: dirfd path argv envp atflags
userfaultfd: ofdflags
membarrier: int hex int
mlock2: ptr ulong hex
copy_file_range: fd ioff fd ioff ulong uint
preadv2: fd oiovec:2 int long rwflags
pwritev2: fd iovec:2 int long rwflags
pkey_mprotect: ptr ulong prot int
pkey_alloc: hex hex
pkey_free: int
statx: dirfd path statxflags statxmask statx
io_pgetevents: hex long long ptr timespec ptr
rseq: ptr hex hex hex
pidfd_send_signal: fd sig ptr uint
io_uring_setup: uint ptr
io_uring_enter: fd uint uint hex ptr ulong
io_uring_register: fd uint ptr uint
open_tree: dirfd path hex
move_mount: dirfd path dirfd path hex
fsopen: path hex
fsconfig: fd uint path ptr int
fsmount: fd hex hex
fspick: dirfd path hex
pidfd_open: int hex
clone3: cloneargs ulong
close_range: fd uint closerangeflags
openat2: dirfd path openhow ulong
pidfd_getfd: fd int hex
faccessat2: dirfd path accessmode faccessflags
process_madvise: fd iovec:2 ulong madvise hex
epoll_pwait2: fd oepollevents int timespec sigset:5 ulong
mount_setattr: dirfd path atflags ptr ulong
memfd_secret: hex
process_mrelease: fd hex
futex_waitv: ptr uint hex timespec clock
set_mempolicy_home_node: ptr ulong ulong hex
cachestat: fd ptr ptr hex
fchmodat2: dirfd path mode atflags
map_shadow_stack: ptr ulong hex
futex_wake: ptr ulong int hex
futex_wait: ptr ulong ulong hex timespec clock
futex_requeue: ptr hex int int
set_thread_area: ptr
get_thread_area: ptr
epoll_ctl_old: fd epollop fd epollevent
epoll_wait_old: fd oepollevents int int
kexec_load: hex ulong ptr hex
quotactl_fd: fd uint int ptr
landlock_create_ruleset: ptr ulong hex
landlock_add_rule: fd int ptr hex
landlock_restrict_self: fd hex
mseal: ptr ulong hex
"""

#: selector-dependent argument lists: name -> (selector argument index, key of the raw
#: selector, names of keys, {key names: spec}, spec for any other key)
TAILS_TEXT: dict[str, tuple[int, Callable[[int], int], dict[int, str], str, str]] = {
    "fcntl": (1, _s32, FCNTL_CMDS, """
        F_GETFD: -> fdflagsret
        F_SETFD: fdflags
        F_GETFL: -> flflagsret
        F_SETFL: oflags
        F_DUPFD F_DUPFD_CLOEXEC F_SETOWN F_SETSIG F_SETPIPE_SZ F_SETLEASE F_NOTIFY: int
        F_GETOWN F_GETSIG F_GETPIPE_SZ F_GETLEASE F_GET_SEALS:
        F_GETLK F_OFD_GETLK: oflock
        F_SETLK F_SETLKW F_OFD_SETLK F_OFD_SETLKW: flock
        """, "hex"),
    "ioctl": (1, lambda v: v & 0xFFFFFFFF, IOCTLS, """
        TCGETS: otermios
        TCSETS TCSETSW TCSETSF: termios
        TIOCGWINSZ: owinsize
        TIOCSWINSZ: winsize
        FIONREAD TIOCOUTQ TIOCGPGRP TIOCGSID TIOCGPTN TIOCGETD TIOCMGET: oint
        FIONBIO FIOASYNC TIOCSPGRP TIOCSPTLCK TIOCSETD TIOCPKT: iint
        FIOCLEX FIONCLEX TIOCNOTTY TIOCEXCL TIOCNXCL TIOCSBRK TIOCCBRK TIOCVHANGUP:
        TCFLSH TCXONC TCSBRK TCSBRKP TIOCSCTTY TIOCSIG: int
        TIOCGPTPEER: oflags
        """, "hex"),
    "futex": (1, lambda v: v & 0x7F, FUTEX_CMDS, """
        FUTEX_WAIT: int timespec
        FUTEX_WAKE FUTEX_FD: int
        FUTEX_REQUEUE: int uint ptr
        FUTEX_CMP_REQUEUE FUTEX_CMP_REQUEUE_PI: int uint ptr int
        FUTEX_WAKE_OP: int uint ptr hex
        FUTEX_LOCK_PI FUTEX_LOCK_PI2: _ timespec
        FUTEX_UNLOCK_PI FUTEX_TRYLOCK_PI:
        FUTEX_WAIT_BITSET: int timespec _ futexbitset
        FUTEX_WAKE_BITSET: int _ _ futexbitset
        FUTEX_WAIT_REQUEUE_PI: int timespec ptr
        """, "hex hex hex hex"),
    "arch_prctl": (0, _s32, ARCH_CODES, """
        ARCH_GET_FS ARCH_GET_GS: ou64
        """, "hex"),
    "prctl": (0, _s32, PRCTL_OPTIONS, """
        PR_SET_NAME: path
        PR_GET_NAME: ostr16
        PR_SET_PDEATHSIG: sig
        PR_GET_PDEATHSIG PR_GET_CHILD_SUBREAPER: oint
        PR_GET_DUMPABLE PR_GET_KEEPCAPS PR_GET_NO_NEW_PRIVS PR_GET_SECCOMP PR_GET_TIMERSLACK:
        PR_GET_THP_DISABLE:
        PR_SET_DUMPABLE PR_SET_KEEPCAPS PR_SET_CHILD_SUBREAPER PR_SET_TIMERSLACK: ulong
        PR_CAPBSET_READ PR_CAPBSET_DROP: int
        PR_SET_NO_NEW_PRIVS PR_SET_THP_DISABLE: ulong ulong ulong ulong
        """, "hex hex hex hex"),
}


class _Arg:
    """One argument slot of a signature."""

    __slots__ = ("label", "kind", "param", "index", "cond", "tail")

    def __init__(self, label: str | None, kind: _Kind | None, param: int | None, index: int,
                 cond: tuple[int, int] | None, tail: str | None = None) -> None:
        self.label, self.kind, self.param, self.index = label, kind, param, index
        self.cond, self.tail = cond, tail


_TOKEN = re.compile(r"(?:(\w+)=)?(\*?\w+)(?::(\d+))?(?:#(\d+))?(?:\?(\d+)&(\w+))?$")
Signature = tuple[tuple[_Arg, ...], str]


def _parse(spec: str, start: int = 0) -> Signature:
    """'kind kind ... [-> ret]' -> (args, result format); raises ValueError on a typo."""
    ret = "dec"
    if "->" in spec:
        spec, ret = (s.strip() for s in spec.split("->", 1))
        if ret not in RETURNS:
            raise ValueError(f"unknown result format {ret!r}")
    args = []
    index = start
    for token in spec.split():
        if token == "_":
            index += 1
            continue
        m = _TOKEN.match(token)
        if not m:
            raise ValueError(f"bad token {token!r}")
        label, kind, param, at, cidx, cmask = m.groups()
        if at is not None:
            index = int(at)
        if kind.startswith("*"):
            if kind[1:] not in TAILS_TEXT:
                raise ValueError(f"unknown tail {kind!r}")
            args.append(_Arg(None, None, None, index, None, kind[1:]))
            continue
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r} in {token!r}")
        cond = (int(cidx), int(cmask, 0)) if cidx is not None else None
        args.append(_Arg(label, KINDS[kind], int(param) if param else None, index, cond))
        index += 1
    return tuple(args), ret


def _parse_specs(text: str) -> dict[str, Signature]:
    specs = {}
    for line in text.strip().splitlines():
        name, _, spec = line.partition(":")
        if name not in SYSCALL_NAMES:
            raise ValueError(f"not a system call: {name!r}")
        specs[name] = _parse(spec)
    return specs


def _parse_tails() -> dict[str, tuple[int, Callable[[int], int], dict[int, Signature], Signature]]:
    tails = {}
    for name, (sel, key, names, text, default) in TAILS_TEXT.items():
        by_name = {v: k for k, v in names.items()}
        table = {}
        for line in text.strip().splitlines():
            keys, _, spec = line.partition(":")
            sig = _parse(spec, sel + 1)
            for k in keys.split():
                table[by_name[k]] = sig
        tails[name] = (sel, key, table, _parse(default, sel + 1))
    return tails


# ------------------------------------------------------------------- results

def _ret_poll(c: _Ctx, r: int) -> str:
    if r == 0:
        return "0 (Timeout)"
    ready = _pollfds(c, c.args[0], c.args[1] & 0xFFFFFFFF, "revents", True)
    return f"{r} ({ready})"


def _ret_fdflags(c: _Ctx, r: int) -> str:
    return f"{r:#x} (flags {_flags(r, FLAGS['fdflags'][0])})" if r else "0"


RETURNS: dict[str, Callable[[_Ctx, int], str]] = {
    "dec": lambda c, r: str(r),
    "hex": lambda c, r: _cx(r & MASK64),
    "oct": lambda c, r: _oct(r),
    "none": lambda c, r: "?",
    "time": lambda c, r: f"{r} ({_isotime(r)})",
    "poll": _ret_poll,
    "fdflagsret": _ret_fdflags,
    "flflagsret": lambda c, r: f"{_cx(r)} (flags {_open_flags(r)})",
}


def format_result(c: _Ctx, fmt: str) -> str:
    r = c.ret
    if r is not None and -4096 < r < 0:
        err = -r
        if err in _RESTART:
            name, text = _RESTART[err]
            return f"? {name} ({text})"
        return f"-1 {_ERRNAMES.get(err, f'ERRNO_{err}')} ({os.strerror(err)})"
    try:
        return RETURNS[fmt](c, r)
    except Exception:
        return _cx(r & MASK64)


SPECS: dict[str, Signature] = _parse_specs(SPECS_TEXT)
TAILS = _parse_tails()
#: calls with no spec (and numbers with no name) print this many raw arguments
RAW_ARITY = 6


# ------------------------------------------------------------------- one traced call

def _format_arg(c: _Ctx, a: _Arg) -> str:
    v = c.args[a.index] if a.index < len(c.args) else 0
    k = a.kind
    try:
        if k.pointer and v == 0:
            text = "NULL"
        elif k.phase == OUT and not c.succeeded:
            text = _ptr(v)
        else:
            text = k.fn(c, v, a.param)
    except Exception:
        text = _ptr(v & MASK64) if k.pointer else _cx(v & MASK64)
    return f"{a.label}={text}" if a.label else text


class _Call:
    """A call being printed: its entry half is rendered before the handler runs."""

    __slots__ = ("nr", "name", "args", "ctx", "exit_args", "ret", "head", "entry_done")

    def __init__(self, task: object, nr: int, args: tuple) -> None:
        self.nr, self.args = nr, args
        self.name = syscall_name(nr)
        self.ctx = _Ctx(task, args)
        try:
            slots, self.ret = self._expand(SPECS.get(self.name))
            split = next((i for i, a in enumerate(slots) if a.kind.phase != IN), len(slots))
            entry = [_format_arg(self.ctx, a) for a in slots[:split]]
            self.exit_args = slots[split:]
        except Exception:
            entry, self.exit_args, self.ret = [_cx(a & MASK64) for a in args[:RAW_ARITY]], (), "dec"
        self.head = f"{self.name}(" + ", ".join(entry) + (", " if entry and self.exit_args else "")

    def _expand(self, sig: Signature | None) -> tuple[list[_Arg], str]:
        if sig is None:
            return [_Arg(None, KINDS["hex"], None, i, None) for i in range(RAW_ARITY)], "dec"
        slots: list[_Arg] = []
        args, ret = sig
        for a in args:
            if a.tail is not None:
                sel, key, table, default = TAILS[a.tail]
                targs, tret = table.get(key(self.args[sel]), default)
                slots.extend(t for t in targs if self._wanted(t))
                if tret != "dec":
                    ret = tret
            elif self._wanted(a):
                slots.append(a)
        return slots, ret

    def _wanted(self, a: _Arg) -> bool:
        return a.cond is None or bool(self.args[a.cond[0]] & a.cond[1])

    def finish(self, result: object, resumed: bool) -> str:
        """The rest of the line once the call returned."""
        c = self.ctx
        if result is NO_RETURN:
            ret = self._no_return_value()
        else:
            c.ret = _s64(result) if isinstance(result, int) else None
            ret = format_result(c, self.ret) if c.ret is not None else repr(result)
        tail = ", ".join(_format_arg(c, a) for a in self.exit_args)
        start = f"<... {self.name} resumed>" if resumed else self.head
        return f"{start}{tail}) = {ret}"

    def _no_return_value(self) -> str:
        """execve succeeded (0), exit never returns (?), rt_sigreturn restored a register."""
        if self.name in ("execve", "execveat"):
            return "0"
        if self.name == "rt_sigreturn":
            try:
                return str(_s64(self.ctx.task.thread.get_regs().rax))
            except Exception:
                pass
        return "?"


#: calls parked mid-way (printed <unfinished ...>), by task, until they are re-dispatched
_UNFINISHED: "weakref.WeakKeyDictionary[object, _Call]" = weakref.WeakKeyDictionary()


def _prefix(kernel: object, task: object) -> str:
    """'[pid N] ' from the moment the sandbox has had more than one thread (strace -f)."""
    try:
        if getattr(kernel, "_strace_multi", False):
            return f"[pid {task.tid}] "
        if len(kernel.thread_groups) > 1 or len(task.tg.tasks) > 1:
            kernel._strace_multi = True
            return f"[pid {task.tid}] "
    except Exception:
        pass
    return ""


def note(kernel: object, task: object, text: str) -> None:
    """Print one line (a call, '--- SIGCHLD ... ---', '+++ exited with 0 +++')."""
    out: TextIO | None = getattr(kernel, "strace", None)
    if out is None:
        return
    try:
        out.write(_prefix(kernel, task) + text + "\n")
        out.flush()
    except Exception:
        pass


def exit_text(wait_status: int) -> str:
    """strace's last line for a process, from its wait(2) status."""
    sig = wait_status & 0x7F
    if sig:
        core = " (core dumped)" if wait_status & 0x80 else ""
        return f"+++ killed by {_signame(sig)}{core} +++"
    return f"+++ exited with {(wait_status >> 8) & 0xFF} +++"


def traced_call(kernel: object, task: object, nr: int, args: tuple, handler: object,
                call: Callable) -> object:
    """Run call(task, nr, args, handler) and print it in strace's style to kernel.strace."""
    record = _UNFINISHED.pop(task, None)
    resumed = record is not None and record.nr == nr and record.args == args
    if not resumed:
        record = _Call(task, nr, args)
    result = call(task, nr, args, handler)
    try:
        if result is NO_RETURN and getattr(task, "pending", None) is not None:
            # parked: the same call is dispatched again when the task is woken
            if not resumed:
                note(kernel, task, record.head + " <unfinished ...>")
            _UNFINISHED[task] = record
            return result
        note(kernel, task, record.finish(result, resumed))
        if record.name in ("exit", "exit_group") and task.tg.exit_status is not None:
            status = task.tg.exit_status
            note(kernel, task, exit_text(status if status is not None else (args[0] & 0xFF) << 8))
    except Exception:
        raw = ", ".join(_cx(a & MASK64) for a in args[:RAW_ARITY])
        shown = result if isinstance(result, int) else "?"
        note(kernel, task, f"{syscall_name(nr)}({raw}) = {shown}")
    return result
