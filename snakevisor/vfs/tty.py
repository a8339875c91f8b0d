"""A terminal as Linux keeps one: the N_TTY line discipline, termios and job control.

Why one object: on Linux a tty's settings (termios, window size), its line discipline
(n_tty.c: input editing, echo, signal characters, output post-processing) and its job
control (tty_jobctrl.c: the session it controls, its foreground process group, SIGTTIN and
SIGTTOU) act on the same state under the same rules, and every way in — read, write,
ioctl, poll — consults all three.  A Terminal is the *slave* side of a pseudo-terminal:
what programs open as /dev/pts/N.  Whatever sits at the other end (devpts's master file,
later the CLI's own terminal relay) only types with `receive` and collects with
`take_output`; ioctls on a master act on this terminal too, as Linux's tty_pair_get_tty
redirects them.

The data path, as in Linux:
    other end --receive--> flip (16 KiB) --line discipline--> buf (4 KiB) --read--> slave
    slave --write--> output processing (OPOST) --> out (20 KiB) --take_output--> other end
Echoes and the "^C" of a signal character go to `out` as the discipline makes them.

Echoes wait in `pending` (n_tty's echo buffer) until the batch of typed input ends, 256
of them pile up, a START character or a slave write comes — and while output is stopped:
a signal character discards them, so "abc^C" echoes only "^C".  Linux moves output into
the other end's read buffer from a work queue: what this batch wrote is still in flight
for a signal character's flush, and older output is taken to be there already up to that
buffer's size (DELIVERED), as it is once the work has run.

Blocking reads and writes raise Block on `slave_wait` (or `master_wait` for the other end);
every change that can make one side ready notifies that side's queue, which is also the
side's poll_queue.  A read never consumes input until it can return (so a call parked for
VMIN bytes and then interrupted loses nothing); VMIN/VTIME deadlines live in
task.syscall_state.

Controlling terminals: a terminal controls a session (`session`, the leader's pid); a
process's controlling terminal is the one whose session is its sid (Linux keeps a pointer
per process, copied at fork and cleared by setsid — the same thing except for a
non-leader's TIOCNOTTY, recorded in `detached`).  The session table is per kernel.
"""
from __future__ import annotations

import os
import re
import struct
import weakref
from typing import TYPE_CHECKING, Callable

from snakevisor.kernel.errors import (EAGAIN, EINVAL, EIO, ENOTTY, EPERM, ESRCH, Block,
                                      SyscallError, WaitQueue)
from snakevisor.vfs.file import (POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM,
                                 POLLWRNORM)

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task, ThreadGroup
    from snakevisor.vfs.file import File

# -- termios bits (asm-generic/termbits.h) ------------------------------------------------
IGNBRK, BRKINT, IGNPAR, PARMRK, INPCK, ISTRIP = 0o1, 0o2, 0o4, 0o10, 0o20, 0o40
INLCR, IGNCR, ICRNL, IUCLC, IXON, IXANY, IXOFF, IMAXBEL, IUTF8 = (
    0o100, 0o200, 0o400, 0o1000, 0o2000, 0o4000, 0o10000, 0o20000, 0o40000)
OPOST, OLCUC, ONLCR, OCRNL, ONOCR, ONLRET, TABDLY, XTABS = (
    0o1, 0o2, 0o4, 0o10, 0o20, 0o40, 0o14000, 0o14000)
CBAUD, CSIZE, CS8, CREAD, PARENB, CLOCAL, CBAUDEX, BOTHER, IBSHIFT = (
    0o10017, 0o60, 0o60, 0o200, 0o400, 0o4000, 0o10000, 0o10000, 16)
B38400 = 0o17
ISIG, ICANON, ECHO, ECHOE, ECHOK, ECHONL, NOFLSH, TOSTOP = (
    0o1, 0o2, 0o10, 0o20, 0o40, 0o100, 0o200, 0o400)
ECHOCTL, ECHOPRT, ECHOKE, IEXTEN, EXTPROC = 0o1000, 0o2000, 0o4000, 0o100000, 0o200000
VINTR, VQUIT, VERASE, VKILL, VEOF, VTIME, VMIN = 0, 1, 2, 3, 4, 5, 6
VSTART, VSTOP, VSUSP, VEOL, VREPRINT, VWERASE, VLNEXT, VEOL2 = 8, 9, 10, 11, 12, 14, 15, 16
NCCS, NCC = 19, 8  #: c_cc sizes of the kernel's struct termios and of struct termio
#: INIT_C_CC: ^C ^\ DEL ^U ^D, VTIME 0, VMIN 1, -, ^Q ^S ^Z, -, ^R ^O ^W ^V
INIT_C_CC = b"\x03\x1c\x7f\x15\x04\x00\x01\x00\x11\x13\x1a\x00\x12\x0f\x17\x16\x00\x00\x00"
#: what a new pty slave starts with (tty_std_termios with pts_driver's c_cflag)
DEFAULT_IFLAG, DEFAULT_OFLAG = ICRNL | IXON, OPOST | ONLCR
DEFAULT_CFLAG = B38400 | CS8 | CREAD
DEFAULT_LFLAG = ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN
BAUD_TABLE = (0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200,
              38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000,
              1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000)

# -- ioctl requests (asm-generic/ioctls.h) ------------------------------------------------
TCGETS, TCSETS, TCSETSW, TCSETSF, TCGETA, TCSETA, TCSETAW, TCSETAF = range(0x5401, 0x5409)
TCSBRK, TCXONC, TCFLSH, TIOCEXCL, TIOCNXCL, TIOCSCTTY, TIOCGPGRP, TIOCSPGRP = range(
    0x5409, 0x5411)
TIOCOUTQ, TIOCSTI, TIOCGWINSZ, TIOCSWINSZ = 0x5411, 0x5412, 0x5413, 0x5414
TIOCGSOFTCAR, TIOCSSOFTCAR, FIONREAD, TIOCCONS = 0x5419, 0x541A, 0x541B, 0x541D
TIOCINQ = FIONREAD
TIOCPKT, TIOCNOTTY, TIOCSETD, TIOCGETD, TCSBRKP = 0x5420, 0x5422, 0x5423, 0x5424, 0x5425
TIOCSBRK, TIOCCBRK, TIOCGSID = 0x5427, 0x5428, 0x5429
TCGETS2, TCSETS2, TCSETSW2, TCSETSF2 = 0x802C542A, 0x402C542B, 0x402C542C, 0x402C542D
TIOCGPTN, TIOCSPTLCK, TIOCGDEV, TIOCSIG = 0x80045430, 0x40045431, 0x80045432, 0x40045436
TIOCVHANGUP, TIOCGPKT, TIOCGPTLCK, TIOCGEXCL, TIOCGPTPEER = (
    0x5437, 0x80045438, 0x80045439, 0x80045440, 0x5441)
TIOCGLCKTRMIOS, TIOCSLCKTRMIOS = 0x5456, 0x5457
TCOOFF, TCOON, TCIOFF, TCION = 0, 1, 2, 3
TCIFLUSH, TCOFLUSH, TCIOFLUSH = 0, 1, 2
#: packet mode (TIOCPKT) status bits a master reads
TIOCPKT_DATA, TIOCPKT_FLUSHREAD, TIOCPKT_FLUSHWRITE, TIOCPKT_STOP, TIOCPKT_START = 0, 1, 2, 4, 8
TIOCPKT_NOSTOP, TIOCPKT_DOSTOP = 16, 32

SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGCONT, SIGWINCH = 1, 2, 3, 20, 21, 22, 18, 28
SI_USER = 0
CAP_SYS_ADMIN = 21

# -- sizes ------------------------------------------------------------------------------------
N_TTY_BUF_SIZE = 4096  #: the line discipline's read buffer
FLIP_LIMIT = 16384  #: input typed but not yet taken by the line discipline
OUT_LIMIT = N_TTY_BUF_SIZE + FLIP_LIMIT  #: output not yet read by the other end
#: of `out`, what sits in the other end's own read buffer; the rest is still in flight
#: (its flip buffer), which is all a slave's output flush or a signal character discards
DELIVERED = N_TTY_BUF_SIZE - 1
ECHO_COMMIT_WATERMARK = 256  #: pending echoes are written out once this many pile up

#: marks on cooked input bytes (n_tty's read_flags): a line ends here; the EOF character
#: ended the line (the byte is a placeholder that reads never return)
LINE_END, EOF_MARK = 1, 2
_DISABLED = 0  #: __DISABLED_CHAR: a c_cc entry of 0 matches nothing

# The kernel's own ctype (lib/ctype.c, Latin-1): control characters include 128-159.
_CNTRL = bytes(range(32)) + b"\x7f" + bytes(range(128, 160))
_CNTRL_SET = frozenset(_CNTRL)
_UPPER = frozenset(range(65, 91)) | frozenset(range(192, 215)) | frozenset(range(216, 223))
_LOWER = frozenset(range(97, 123)) | frozenset(range(223, 247)) | frozenset(range(248, 256))
_ALNUM = _UPPER | _LOWER | frozenset(range(48, 58))
_CONTINUATION = bytes(range(0x80, 0xC0))
_LOWER_TO_UPPER = bytes((c - 32 if c in _LOWER and c != 223 else c) for c in range(256))
_UPPER_TO_LOWER = bytes((c + 32 if c in _UPPER else c) for c in range(256))
#: bytes output processing must look at one by one (the rest only advance the column)
_OPOST_SPECIAL = re.compile(rb"[\n\r\t\x08]")
_OPOST_SPECIAL_OLCUC = re.compile(rb"[\n\r\t\x08a-z\xdf-\xf6\xf8-\xff]")


def iscntrl(c: int) -> bool:
    return c in _CNTRL_SET


# -- termios ------------------------------------------------------------------------------------
_TERMIOS = struct.Struct("<4IB19B")  # struct termios (TCGETS): 36 bytes
_TERMIOS2 = struct.Struct("<4IB19B2I")  # struct termios2 (TCGETS2): 44 bytes
_TERMIO = struct.Struct("<4HB8B")  # struct termio (TCGETA): 17 bytes written
_WINSIZE_SIZE = 8


def baud_rate(cflag: int, speed: int) -> int:
    """tty_termios_baud_rate: the speed the Bnnn bits name (BOTHER: the explicit one)."""
    cbaud = cflag & CBAUD
    if cbaud == BOTHER:
        return speed
    if cbaud & CBAUDEX:
        cbaud = (cbaud & ~CBAUDEX) + 15
    return BAUD_TABLE[cbaud] if cbaud < len(BAUD_TABLE) else 0


class Termios:
    """The kernel's struct ktermios: flags, line discipline number, c_cc and the speeds."""

    __slots__ = ("iflag", "oflag", "cflag", "lflag", "line", "cc", "ispeed", "ospeed")

    def __init__(self) -> None:
        self.iflag, self.oflag = DEFAULT_IFLAG, DEFAULT_OFLAG
        self.cflag, self.lflag = DEFAULT_CFLAG, DEFAULT_LFLAG
        self.line = 0
        self.cc = bytearray(INIT_C_CC)
        self.ispeed = self.ospeed = 38400

    def copy(self) -> "Termios":
        other = Termios()
        for name in self.__slots__:
            setattr(other, name, getattr(self, name))
        other.cc = bytearray(self.cc)
        return other

    def pack(self, request: int) -> bytes:
        """What TCGETS, TCGETS2 or TCGETA copies out."""
        flags = (self.iflag, self.oflag, self.cflag, self.lflag)
        if request == TCGETS2:
            return _TERMIOS2.pack(*flags, self.line, *self.cc, self.ispeed, self.ospeed)
        if request == TCGETA:
            return _TERMIO.pack(*(f & 0xFFFF for f in flags), self.line, *self.cc[:NCC])
        return _TERMIOS.pack(*flags, self.line, *self.cc)

    def updated(self, request: int, data: bytes) -> "Termios":
        """A copy with what TCSETS*, TCSETS2* or TCSETA* brings (the termio forms replace
        only the low 16 bits of each flag and the first 8 c_cc), speeds recomputed from
        the Bnnn bits as set_termios does."""
        new = self.copy()
        if request in (TCSETA, TCSETAW, TCSETAF):
            *flags, new.line = _TERMIO.unpack(data)[:5]
            new.iflag, new.oflag, new.cflag, new.lflag = (
                (old & 0xFFFF0000) | f for old, f in
                zip((self.iflag, self.oflag, self.cflag, self.lflag), flags))
            new.cc[:NCC] = data[9:9 + NCC]
        else:
            two = request in (TCSETS2, TCSETSW2, TCSETSF2)
            fields = (_TERMIOS2 if two else _TERMIOS).unpack(data)
            new.iflag, new.oflag, new.cflag, new.lflag, new.line = fields[:5]
            new.cc = bytearray(fields[5:5 + NCCS])
            if two:
                new.ispeed, new.ospeed = fields[5 + NCCS:]
        new.ospeed = baud_rate(new.cflag, new.ospeed)
        ibits = (new.cflag >> IBSHIFT) & CBAUD
        new.ispeed = new.ospeed if not ibits else baud_rate(ibits, new.ispeed)
        # pty_set_termios: a pty is always 8 bits, no parity, receiving
        new.cflag = (new.cflag & ~(CSIZE | PARENB)) | CS8 | CREAD
        return new


# -- sessions and controlling terminals ----------------------------------------------------------
#: kernel -> {sid: the terminal that session acquired}
_sessions: "weakref.WeakKeyDictionary[object, dict[int, Terminal]]" = weakref.WeakKeyDictionary()


def controlling_terminal(tg: "ThreadGroup") -> "Terminal | None":
    """The process's controlling terminal (Linux's current->signal->tty), or None."""
    term = _sessions.get(tg.kernel, {}).get(tg.sid)
    if term is None or term.session != tg.sid or tg in term.detached:
        return None
    leader = tg.kernel.thread_groups.get(tg.sid)
    if leader is None or not leader.alive:  # the exit watch missed it (no kernel hook)
        term.leader_exited(tg.sid)
        return None
    return term


def encode_dev(rdev: int) -> int:
    """new_encode_dev: a device number as tty_nr and TIOCGDEV give it."""
    major, minor = os.major(rdev), os.minor(rdev)
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def proc_stat_tty(tg: "ThreadGroup") -> tuple[int, int]:
    """/proc/PID/stat's tty_nr and tpgid: the controlling terminal's number and its
    foreground group (0 and -1 without one), which ps shows as TT and the "+" of STAT."""
    term = controlling_terminal(tg)
    if term is None:
        return 0, -1
    return encode_dev(term.rdev), term.pgrp if term.pgrp is not None else -1


def _groups(kernel: object, pgid: int) -> list["ThreadGroup"]:
    return [g for g in kernel.thread_groups.values()  # type: ignore[attr-defined]
            if g.alive and g.pgid == pgid]


def kill_pgrp(kernel: object, pgid: int, sig: int, info: bytes | None = None) -> None:
    """Send sig to every process of a group (kill_pgrp with priv: SI_KERNEL unless info)."""
    for g in _groups(kernel, pgid):
        kernel.send_signal(g, sig, info)  # type: ignore[attr-defined]


def _orphaned(kernel: object, pgid: int) -> bool:
    """is_current_pgrp_orphaned: no member has a parent in another group of its session."""
    for g in _groups(kernel, pgid):
        p = g.parent
        if p is not None and p.alive and p.pgid != pgid and p.sid == g.sid:
            return False
    return True


def _ignored(task: "Task", sig: int) -> bool:
    """n_tty's is_ignored: blocked by the thread or ignored by the process."""
    from snakevisor.kernel.signals import SIG_IGN, action
    return bool(task.sigmask >> (sig - 1) & 1) or action(task.tg, sig)[0] == SIG_IGN


def _capable(task: "Task", cap: int) -> bool:
    from snakevisor.syscalls.sys_cred import has_cap
    return has_cap(task, cap)


def _get_int(task: "Task", arg: int) -> int:
    return struct.unpack("<i", task.tg.mm.read(arg, 4))[0]


def _put_int(task: "Task", arg: int, value: int) -> int:
    task.tg.mm.write(arg, struct.pack("<i", value))
    return 0


class Terminal:
    """One tty: termios, window size, line discipline state and job control."""

    def __init__(self, kernel: object, rdev: int,
                 reopen: "Callable[[Task, int], File] | None" = None) -> None:
        self.kernel = kernel
        self.rdev = rdev  #: the slave's device number (TIOCGDEV)
        #: a new open file description of the slave, for /dev/tty (tty_open_current_tty)
        self.reopen_fn = reopen
        self.termios = Termios()
        self.winsize = bytes(_WINSIZE_SIZE)
        # input
        self.flip = bytearray()  #: typed by the other end, not yet taken by the discipline
        self.buf = bytearray()  #: cooked input (read_buf)
        self.marks = bytearray()  #: LINE_END / EOF_MARK per byte of buf (read_flags)
        self.canon_end = 0  #: bytes of buf that form complete lines (canon_head)
        self.partial = False  #: the first line in buf was read in part (line_start)
        self.lnext = False  #: the next byte is taken literally (VLNEXT)
        self.erasing = False  #: inside an ECHOPRT "\...\" erase
        # output
        self.out = bytearray()  #: post-processed output and echoes for the other end
        self.column = 0
        self.canon_column = 0
        #: echoes not written out yet, and the columns from before them
        self.pending = bytearray()
        self.pending_columns = (0, 0)
        self.batch_start = 0  #: where the current batch's output starts in `out`
        self.stopped = False  #: output stopped by VSTOP (flow.stopped)
        self.tco_stopped = False  #: output stopped by TCXONC TCOOFF
        self.master_stopped = False  #: the other end's writes stopped by its TCOOFF
        # job control
        self.session: int | None = None
        self.pgrp: int | None = None
        self.detached: "weakref.WeakSet[ThreadGroup]" = weakref.WeakSet()
        self.hung_up = False
        self.exclusive = False  #: TIOCEXCL on the slave
        self.packet = False  #: TIOCPKT on the master
        self.pktstatus = 0
        self.old_pgrps: dict[int, int] = {}  #: sid -> foreground group at hangup
        # waiting
        self.slave_wait = WaitQueue()  #: slave readers, writers and pollers
        self.master_wait = WaitQueue()  #: the other end's readers, writers and pollers
        self.job_wait = WaitQueue()  #: background processes waiting to be foreground
        self._update_char_map()

    def __repr__(self) -> str:
        return (f"Terminal({os.major(self.rdev)}:{os.minor(self.rdev)}, "
                f"session={self.session}, pgrp={self.pgrp})")

    # ================================================================ modes ===========
    def _update_char_map(self) -> None:
        """n_tty_set_termios: which bytes need the slow path, or whether none do."""
        t = self.termios
        i, lf, cc = t.iflag, t.lflag, t.cc
        special: set[int] = set()
        self.raw = not (i & (ISTRIP | IUCLC | IGNCR | ICRNL | INLCR | IXON | PARMRK)
                        or lf & (ICANON | ISIG | ECHO))
        if not self.raw:
            if i & (IGNCR | ICRNL):
                special.add(13)
            if i & INLCR:
                special.add(10)
            if lf & ICANON:
                special.update((cc[VERASE], cc[VKILL], cc[VEOF], 10, cc[VEOL]))
                if lf & IEXTEN:
                    special.update((cc[VWERASE], cc[VLNEXT], cc[VEOL2]))
                    if lf & ECHO:
                        special.add(cc[VREPRINT])
            if i & IXON:
                special.update((cc[VSTART], cc[VSTOP]))
            if lf & ISIG:
                special.update((cc[VINTR], cc[VQUIT], cc[VSUSP]))
            special.discard(_DISABLED)
        self.special = frozenset(special)
        self.icanon = bool(lf & ICANON)

    def set_termios(self, new: Termios) -> None:
        """tty_set_termios + n_tty_set_termios: switching ICANON re-reads the buffer."""
        old = self.termios
        self.termios = new
        if (old.lflag ^ new.lflag) & (ICANON | EXTPROC):
            self.marks = bytearray(len(self.buf))
            self.partial = False
            if new.lflag & ICANON and self.buf:
                self.marks[-1] = LINE_END  # what was typed becomes a line (push)
                self.canon_end = len(self.buf)
            else:
                self.canon_end = 0
            self.erasing = self.lnext = False
        self._update_char_map()
        if not new.iflag & IXON and old.iflag & IXON and self.stopped:
            self._start()
        if self.packet:
            was = old.iflag & IXON and old.cc[VSTOP] == 0x13 and old.cc[VSTART] == 0x11
            now = new.iflag & IXON and new.cc[VSTOP] == 0x13 and new.cc[VSTART] == 0x11
            if bool(was) != bool(now):
                self.pktstatus &= ~(TIOCPKT_DOSTOP | TIOCPKT_NOSTOP)
                self.pktstatus |= TIOCPKT_DOSTOP if now else TIOCPKT_NOSTOP
        self._feed()
        self.slave_wait.notify()
        self.master_wait.notify()

    # ================================================================ input ===========
    def receive(self, data: bytes) -> int:
        """The other end types `data`: how many bytes were taken (0 when the flip buffer is
        full, or while the other end's output is stopped by its TCOOFF)."""
        if self.master_stopped or not data:
            return 0
        take = min(len(data), FLIP_LIMIT - len(self.flip))
        if take <= 0:
            return 0
        self.flip += data[:take]
        self._feed()
        return take

    def input_room(self) -> bool:
        """Would receive() take something now (the other end's POLLOUT)?"""
        return not self.master_stopped and len(self.flip) < FLIP_LIMIT

    def _feed(self) -> None:
        """n_tty_receive_buf: move flip bytes through the discipline while it has room."""
        flip = self.flip
        if not flip:
            return
        before = (len(self.buf), self.canon_end)
        self.batch_start = len(self.out)
        i, n = 0, len(flip)
        while i < n:
            room = N_TTY_BUF_SIZE - 1 - len(self.buf)
            if room <= 0:
                if not (self.icanon and self.canon_end == 0):
                    break
                # no line to read yet: let bytes through so erase characters still work,
                # the newest one taking the last place (n_tty's overflow handling)
                if room < 0:
                    del self.buf[-1], self.marks[-1]
                room = 1
            if self.raw and not self.lnext:
                take = min(room, n - i)
                self.buf += flip[i:i + take]
                self.marks += bytes(take)
                i += take
                continue
            self._receive_char(flip[i])
            i += 1
        del flip[:i]
        self._process_echoes()  # flush_echoes
        if i:
            self.master_wait.notify()  # room for the other end's writers
        if (len(self.buf), self.canon_end) != before:
            self.slave_wait.notify()

    def _receive_char(self, c: int) -> None:
        if self.lnext:
            self.lnext = False
            self._receive_plain(self._pre(c))
            return
        c = self._pre(c)
        if c in self.special:
            self._receive_special(c)
        else:
            self._receive_plain(c)

    def _pre(self, c: int) -> int:
        t = self.termios
        if t.iflag & ISTRIP:
            c &= 0x7F
        if t.iflag & IUCLC and t.lflag & IEXTEN:
            c = _UPPER_TO_LOWER[c]
        return c

    def _ixany(self) -> None:
        if self.stopped and not self.tco_stopped and self.termios.iflag & IXON \
                and self.termios.iflag & IXANY:
            self._start()
            self._process_echoes()

    def _put(self, c: int, mark: int = 0) -> None:
        if c == 0xFF and self.termios.iflag & PARMRK:
            self.buf.append(c)
            self.marks.append(0)
        self.buf.append(c)
        self.marks.append(mark)
        if mark:
            self.canon_end = len(self.buf)

    def _receive_plain(self, c: int) -> None:
        """n_tty_receive_char: an ordinary byte is echoed and queued."""
        self._ixany()
        if self.termios.lflag & ECHO:
            self._finish_erasing()
            if self.canon_end == len(self.buf):
                self.canon_column = self.column  # echo_set_canon_col
            self._echo_char(c)
        self._put(c)

    def _receive_special(self, c: int) -> None:
        """n_tty_receive_char_special, in Linux's order of precedence."""
        t = self.termios
        cc, lf = t.cc, t.lflag
        if t.iflag & IXON and c in (cc[VSTART], cc[VSTOP]):
            if c == cc[VSTART]:
                self._start()
                self._process_echoes()
            else:
                self._stop()
            return
        if lf & ISIG:
            for index, sig in ((VINTR, SIGINT), (VQUIT, SIGQUIT), (VSUSP, SIGTSTP)):
                if c == cc[index]:
                    self._signal_char(sig, c)
                    return
        self._ixany()
        if c == 13:
            if t.iflag & IGNCR:
                return
            if t.iflag & ICRNL:
                c = 10
        elif c == 10 and t.iflag & INLCR:
            c = 13
        if self.icanon:
            if c in (cc[VERASE], cc[VKILL]) or (c == cc[VWERASE] and lf & IEXTEN):
                self._erase(c)
                return
            if c == cc[VLNEXT] and lf & IEXTEN:
                self.lnext = True
                if lf & ECHO:
                    self._finish_erasing()
                    if lf & ECHOCTL:
                        self._echo_raw(ord("^"))
                        self._echo_raw(8)
                return
            if c == cc[VREPRINT] and lf & ECHO and lf & IEXTEN:
                self._finish_erasing()
                self._echo_char(c)
                self._echo_raw(10)
                for b in self.buf[self.canon_end:]:
                    self._echo_char(b)
                return
            if c == 10:
                if lf & (ECHO | ECHONL):
                    self._echo_raw(10)
                self._put(c, LINE_END)
                return
            if c == cc[VEOF]:
                self._put(_DISABLED, EOF_MARK)
                return
            if c == cc[VEOL] or (c == cc[VEOL2] and lf & IEXTEN):
                if lf & ECHO:
                    if self.canon_end == len(self.buf):
                        self.canon_column = self.column
                    self._echo_char(c)
                self._put(c, LINE_END)
                return
        if lf & ECHO:
            self._finish_erasing()
            if c == 10:
                self._echo_raw(10)
            else:
                if self.canon_end == len(self.buf):
                    self.canon_column = self.column
                self._echo_char(c)
        self._put(c)

    def _signal_char(self, sig: int, c: int) -> None:
        """n_tty_receive_signal_char: signal the foreground group, flush both directions
        (unless NOFLSH), restart stopped output, echo the character ("^C")."""
        if self.pgrp is not None:
            kill_pgrp(self.kernel, self.pgrp, sig)
        if not self.termios.lflag & NOFLSH:
            if self.pending:  # discarded unwritten: they never moved the cursor
                self.column, self.canon_column = self.pending_columns
                self.pending.clear()
            del self.out[self.batch_start:]  # what this batch wrote is still in flight
            self._flush_input()
            self._flush_output()
        if self.termios.iflag & IXON:
            self._start()
        if self.termios.lflag & ECHO:
            self._echo_char(c)
        else:
            self._process_echoes()

    def _erase(self, c: int) -> None:
        """eraser(): VERASE, VWERASE and VKILL on the line being typed, with their echo."""
        t = self.termios
        lf, cc = t.lflag, t.cc
        buf = self.buf
        if len(buf) == self.canon_end:
            return
        utf8 = bool(t.iflag & IUTF8)
        if c == cc[VERASE]:
            kind = "erase"
        elif c == cc[VWERASE]:
            kind = "werase"
        else:
            if not lf & ECHO:
                self._truncate(self.canon_end)
                return
            if not (lf & ECHOK and lf & ECHOKE and lf & ECHOE):
                self._truncate(self.canon_end)
                self._finish_erasing()
                self._echo_char(cc[VKILL])
                if lf & ECHOK:
                    self._echo_raw(10)
                return
            kind = "kill"
        seen_alnums = 0
        while len(buf) > self.canon_end:
            head = len(buf) - 1
            while utf8 and 0x80 <= buf[head] < 0xC0 and head > self.canon_end:
                head -= 1
            ch = buf[head]
            if utf8 and 0x80 <= ch < 0xC0:
                break  # never erase half a character
            if kind == "werase":
                if ch in _ALNUM or ch == ord("_"):
                    seen_alnums += 1
                elif seen_alnums:
                    break
            erased = bytes(buf[head:])
            self._truncate(head)
            if lf & ECHO:
                if lf & ECHOPRT:
                    if not self.erasing:
                        self._echo_raw(ord("\\"))
                        self.erasing = True
                    self._echo_char(ch)
                    for b in erased[1:]:
                        self._echo_raw(b)
                        self.column = max(0, self.column - 1)
                elif kind == "erase" and not lf & ECHOE:
                    self._echo_char(cc[VERASE])
                elif ch == 9:
                    self._erase_tab(head)
                else:
                    if iscntrl(ch) and lf & ECHOCTL:
                        self._echo_bytes(b"\b \b")
                    if not iscntrl(ch) or lf & ECHOCTL:
                        self._echo_bytes(b"\b \b")
            if kind == "erase":
                break
        if len(buf) == self.canon_end and lf & ECHO:
            self._finish_erasing()

    def _erase_tab(self, head: int) -> None:
        """Back up over an erased tab: the columns it took depend on what precedes it on
        the line (since the line's start or the previous tab)."""
        lf = self.termios.lflag
        utf8 = bool(self.termios.iflag & IUTF8)
        num_chars, after_tab = 0, False
        for ch in reversed(self.buf[self.canon_end:head]):
            if ch == 9:
                after_tab = True
                break
            if iscntrl(ch):
                if lf & ECHOCTL:
                    num_chars += 2
            elif not (utf8 and 0x80 <= ch < 0xC0):
                num_chars += 1
        if not after_tab:
            num_chars += self.canon_column
        backs = 8 - (num_chars & 7)
        dst, room = self._echo_dst()
        if room >= backs:
            dst += b"\b" * backs
            self.column = max(0, self.column - backs)
            self._echoed()

    def _truncate(self, length: int) -> None:
        del self.buf[length:], self.marks[length:]

    def _finish_erasing(self) -> None:
        if self.erasing:
            self._echo_raw(ord("/"))
            self.erasing = False

    # ================================================================ reading =========
    def input_available(self, poll: bool = False) -> bool:
        """input_available_p: a line (canonical), or enough bytes (VMIN for poll)."""
        if self.icanon:
            return self.canon_end > 0
        amt = 1
        if poll and not self.termios.cc[VTIME] and self.termios.cc[VMIN]:
            amt = self.termios.cc[VMIN]
        return len(self.buf) >= amt

    def inq(self) -> int:
        """TIOCINQ: complete lines without their EOF placeholders, or all cooked bytes."""
        if self.termios.lflag & ICANON:
            return self.canon_end - self.marks[:self.canon_end].count(EOF_MARK)
        return len(self.buf)

    def read(self, task: "Task", count: int, nonblock: bool) -> bytes:
        """n_tty_read for a slave (after the caller's access checks).  Once hung up a read
        is at end of file — except one that was already waiting, which fails with EIO
        (n_tty_read sees the master's TTY_OTHER_CLOSED before the hangup)."""
        state = task.syscall_state
        if self.hung_up:
            if state and state.get("tty_waited"):
                raise SyscallError(EIO)
            return b""
        self._job_control(task, SIGTTIN)
        if not count:
            return b""
        now = task.kernel.now()
        if state is None:
            state = task.syscall_state = {}
        if self.icanon:
            while self.canon_end:
                data, eof_push = self._take_line(count)
                if not eof_push:
                    return data
            return self._wait_input(state, nonblock, None)
        vmin, vtime = self.termios.cc[VMIN], self.termios.cc[VTIME]
        avail = len(self.buf)
        if not vmin:
            if avail:
                return self._take(min(count, avail))
            if not vtime:
                return b""  # a poll: nothing, even with O_NONBLOCK
            deadline = state.setdefault("tty_deadline", now + vtime / 10)
            if now >= deadline:
                return b""
            return self._wait_input(state, nonblock, deadline)
        if avail >= min(vmin, count):
            return self._take(min(count, avail))
        if nonblock and avail:
            return self._take(avail)
        if not vtime or not avail:
            return self._wait_input(state, nonblock, None)
        # VTIME is an inter-byte timer: it starts with the first byte, restarts with each
        if state.get("tty_seen") != avail:
            state["tty_seen"] = avail
            state["tty_deadline"] = now + vtime / 10
        if now >= state["tty_deadline"]:
            return self._take(avail)
        return self._wait_input(state, nonblock, state["tty_deadline"])

    def _wait_input(self, state: dict, nonblock: bool, deadline: float | None) -> bytes:
        if nonblock:
            raise SyscallError(EAGAIN)
        state["tty_waited"] = True
        raise Block(queue=self.slave_wait, deadline=deadline)

    def _take(self, n: int) -> bytes:
        data = bytes(self.buf[:n])
        del self.buf[:n], self.marks[:n]
        self.canon_end = max(0, self.canon_end - n)
        self._consumed()
        return data

    def _take_line(self, count: int) -> tuple[bytes, bool]:
        """canon_copy_from_read_buf: up to one line; (bytes, the line ended in an EOF
        placeholder right after part of it was read — keep reading)."""
        n = min(count, len(self.buf))
        ends = [i for i in range(n) if self.marks[i]]
        if not ends:
            self.partial = True
            return self._take(n), False
        eol = ends[0]
        eof = self.marks[eol] == EOF_MARK
        data = bytes(self.buf[:eol if eof else eol + 1])
        eof_push = eof and not data and self.partial
        self.partial = False
        del self.buf[:eol + 1], self.marks[:eol + 1]
        self.canon_end -= eol + 1
        self._consumed()
        return data, eof_push

    def _consumed(self) -> None:
        """Room appeared in the read buffer: take more typed input (unthrottle)."""
        if self.flip:
            self._feed()
        self.master_wait.notify()

    # ================================================================ output ==========
    def _out_room(self) -> int:
        return OUT_LIMIT - len(self.out)

    def output_room(self) -> bool:
        """Could a slave write queue something now (its POLLOUT)?"""
        return not (self.stopped or self.tco_stopped) and self._out_room() > 0

    def _output_added(self) -> None:
        self.master_wait.notify()

    def _process_echoes(self) -> None:
        """Write the pending echoes out, unless output is stopped."""
        if self.pending and not (self.stopped or self.tco_stopped):
            self.out += self.pending[:self._out_room()]
            self.pending.clear()
            self._output_added()

    def _out_char(self, c: int, space: int, dst: bytearray | None = None) -> int:
        """do_output_char: one byte through OPOST into dst (`out`); the bytes of room it
        took, -1 if it does not fit."""
        if dst is None:
            dst = self.out
        if space <= 0:
            return -1
        oflag = self.termios.oflag
        if c == 10:
            if oflag & ONLRET:
                self.column = 0
            if oflag & ONLCR:
                if space < 2:
                    return -1
                self.canon_column = self.column = 0
                dst += b"\r\n"
                return 2
            self.canon_column = self.column
        elif c == 13:
            if oflag & ONOCR and self.column == 0:
                return 0
            if oflag & OCRNL:
                c = 10
                if oflag & ONLRET:
                    self.canon_column = self.column = 0
            else:
                self.canon_column = self.column = 0
        elif c == 9:
            spaces = 8 - (self.column & 7)
            if oflag & TABDLY == XTABS:
                if space < spaces:
                    return -1
                self.column += spaces
                dst += b" " * spaces
                return spaces
            self.column += spaces
        elif c == 8:
            if self.column > 0:
                self.column -= 1
        elif not iscntrl(c):
            if oflag & OLCUC:
                c = _LOWER_TO_UPPER[c]
            if not (self.termios.iflag & IUTF8 and 0x80 <= c < 0xC0):
                self.column += 1
        dst.append(c)
        return 1

    def _columns(self, run: bytes) -> int:
        """How far a run of ordinary bytes moves the cursor."""
        skip = _CNTRL + _CONTINUATION if self.termios.iflag & IUTF8 else _CNTRL
        return len(run.translate(None, skip))

    def _post(self, data: bytes, start: int, room: int) -> int:
        """process_output_block + process_output: bytes of data[start:] queued in room."""
        if not self.termios.oflag & OPOST:
            take = min(room, len(data) - start)
            self.out += data[start:start + take]
            return take
        special = _OPOST_SPECIAL_OLCUC if self.termios.oflag & OLCUC else _OPOST_SPECIAL
        i, n = start, len(data)
        while i < n and room > 0:
            m = special.search(data, i)
            end = min(m.start() if m else n, i + room)
            if end > i:
                run = data[i:end]
                self.out += run
                self.column += self._columns(run)
                room -= end - i
                i = end
                continue
            used = self._out_char(data[i], room)
            if used < 0:
                break
            room -= used
            i += 1
        return i - start

    def write(self, task: "Task", data: bytes, nonblock: bool) -> int:
        """n_tty_write for a slave: job control with TOSTOP, OPOST, waiting for room; a
        hangup ends it with EIO, or the count of what was already queued."""
        state = task.syscall_state
        done = state.get("transferred", 0) if state else 0
        if self.hung_up:
            if done:
                return done
            raise SyscallError(EIO)
        if self.termios.lflag & TOSTOP and not done:
            self._job_control(task, SIGTTOU)
        self._process_echoes()
        total = len(data)
        if done < total and not (self.stopped or self.tco_stopped):
            done += self._post(data, done, self._out_room())
            self._output_added()
        if done >= total or (nonblock and done):
            if state:
                state.pop("transferred", None)
            return done
        if nonblock:
            raise SyscallError(EAGAIN)
        if state is None:
            state = task.syscall_state = {}
        state["transferred"] = done
        raise Block(queue=self.slave_wait)

    def take_output(self, count: int) -> bytes:
        """The other end reads what the slave wrote (and the echoes)."""
        data = bytes(self.out[:count])
        del self.out[:count]
        if data:
            self.slave_wait.notify()  # room for slave writers
        return data

    # -- echo ------------------------------------------------------------------------------
    def _echo_dst(self) -> tuple[bytearray, int]:
        """The echo buffer and its room (noting the columns before its first echo)."""
        if not self.pending:
            self.pending_columns = (self.column, self.canon_column)
        return self.pending, N_TTY_BUF_SIZE - len(self.pending)

    def _echo_raw(self, c: int) -> None:
        """echo_char_raw: the byte as output processing makes it (dropped when no room);
        0xff, n_tty's escape byte in its echo buffer, goes out as it is."""
        dst, room = self._echo_dst()
        if c == 0xFF:
            if room > 0:
                dst.append(c)
                self.column += 1
        elif self.termios.oflag & OPOST:
            self._out_char(c, room, dst)
        elif room > 0:
            dst.append(c)
        self._echoed()

    def _echoed(self) -> None:
        if len(self.pending) >= ECHO_COMMIT_WATERMARK:  # commit_echoes
            self._process_echoes()

    def _echo_bytes(self, data: bytes) -> None:
        for c in data:
            self._echo_raw(c)

    def _echo_char(self, c: int) -> None:
        """echo_char: with ECHOCTL a control character but tab shows as ^X (a newline
        reaching here — not special in non-canonical mode — shows as ^J, as on Linux)."""
        if self.termios.lflag & ECHOCTL and iscntrl(c) and c != 9:
            dst, room = self._echo_dst()
            if room >= 2:
                dst += bytes((ord("^"), c ^ 0o100))
                self.column += 2
                self._echoed()
            return
        self._echo_raw(c)

    # -- flow control and flushing -------------------------------------------------------
    def _stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            if self.packet:
                self.pktstatus = (self.pktstatus & ~TIOCPKT_START) | TIOCPKT_STOP
                self.master_wait.notify()

    def _start(self) -> None:
        if self.stopped and not self.tco_stopped:
            self.stopped = False
            if self.packet:
                self.pktstatus = (self.pktstatus & ~TIOCPKT_STOP) | TIOCPKT_START
                self.master_wait.notify()
            self.slave_wait.notify()

    def _flush_input(self) -> None:
        """The slave's line discipline buffer (n_tty_flush_buffer)."""
        self.buf.clear()
        self.marks.clear()
        self.canon_end = 0
        self.partial = self.erasing = False
        if self.packet:
            self.pktstatus |= TIOCPKT_FLUSHREAD
            self.master_wait.notify()
        self.master_wait.notify()

    def _flush_output(self) -> None:
        """pty_flush_buffer of the slave: output still in flight to the other end."""
        del self.out[DELIVERED:]
        if self.packet:
            self.pktstatus |= TIOCPKT_FLUSHWRITE
            self.master_wait.notify()
        self.slave_wait.notify()

    def flush(self, queue: int, master: bool) -> None:
        """TCFLSH (__tty_perform_flush on that end's tty): input is all of what the end
        reads; output only what is still in flight to the other end (pty_flush_buffer
        empties the peer's flip buffer, not its read buffer)."""
        if queue not in (TCIFLUSH, TCOFLUSH, TCIOFLUSH):
            raise SyscallError(EINVAL)
        flush_in = queue in (TCIFLUSH, TCIOFLUSH)
        flush_out = queue in (TCOFLUSH, TCIOFLUSH)
        if master:
            if flush_in:
                self.out.clear()
                self.slave_wait.notify()
            if flush_out:
                self.flip.clear()
                self.master_wait.notify()
            return
        if flush_in:
            self.flip.clear()
            self._flush_input()
        if flush_out:
            self._flush_output()

    def xonc(self, action: int, master: bool) -> None:
        """TCXONC: stop/restart this end's output, or send a STOP/START character."""
        if action == TCOOFF or action == TCOON:
            if master:
                self.master_stopped = action == TCOOFF
                self.master_wait.notify()
            elif action == TCOOFF:
                if not self.tco_stopped:
                    self._stop()
                    self.tco_stopped = True
            elif self.tco_stopped:
                self.tco_stopped = False
                self._start()
        elif action == TCIOFF or action == TCION:
            ch = self.termios.cc[VSTOP if action == TCIOFF else VSTART]
            if ch != _DISABLED:
                if master:
                    self.flip.append(ch)
                    self._feed()
                else:
                    self.out.append(ch)
                    self._output_added()
        else:
            raise SyscallError(EINVAL)

    # ================================================================ job control =====
    def _is_ctty_of(self, tg: "ThreadGroup") -> bool:
        return controlling_terminal(tg) is self

    def _job_control(self, task: "Task", sig: int) -> None:
        """__tty_check_change: a background process of the session reading (SIGTTIN) or
        changing the terminal (SIGTTOU) gets the signal — EIO instead when it ignores or
        blocks SIGTTIN or its group is orphaned; an ignored SIGTTOU lets it proceed.

        Linux returns ERESTARTSYS with the signal pending.  Our kernel has no such result
        yet, so the call parks and the signal is sent from the event loop, which then finds
        the call waiting and interrupts it the same way (stop, EINTR or restart after a
        handler); the call is retried when the foreground group changes."""
        tg = task.tg
        if self.pgrp is None or tg.pgid == self.pgrp or not self._is_ctty_of(tg):
            return
        if _ignored(task, sig):
            if sig == SIGTTIN:
                raise SyscallError(EIO)
            return
        if _orphaned(self.kernel, tg.pgid):
            raise SyscallError(EIO)
        kernel, pgid = task.kernel, tg.pgid
        kernel.call_at(kernel.now(), lambda: kill_pgrp(kernel, pgid, sig))
        raise Block(queue=self.job_wait)

    def check_change(self, task: "Task") -> None:
        """tty_check_change (SIGTTOU) before changing settings of the slave."""
        self._job_control(task, SIGTTOU)

    def acquire(self, tg: "ThreadGroup") -> None:
        """__proc_set_tty: the session of tg (its leader) gets this controlling terminal."""
        if self.session is not None and self.session != tg.sid:
            self._drop_session()
        self.session, self.pgrp = tg.sid, tg.pgid
        self.detached = weakref.WeakSet()
        _sessions.setdefault(self.kernel, {})[tg.sid] = self
        self._watch_leader(tg)
        self.job_wait.notify()

    def maybe_acquire(self, tg: "ThreadGroup") -> None:
        """tty_open_proc_set_tty: a session leader without one, opening a terminal nobody
        controls without O_NOCTTY (and able to read it), gets it."""
        if tg.pid == tg.sid and self.session is None and controlling_terminal(tg) is None:
            self.acquire(tg)

    def _watch_leader(self, leader: "ThreadGroup") -> None:
        """Run leader_exited when the session leader ends (its exit_wait queue is notified
        once the process is gone)."""
        from snakevisor.vfs.epoll import QueueCallback
        sid = leader.sid
        leader.exit_wait.waiters.append(QueueCallback(lambda: self.leader_exited(sid)))

    def leader_exited(self, sid: int) -> None:
        """disassociate_ctty(on_exit) for a pty: SIGHUP to the foreground group (or, after
        a hangup, SIGHUP and SIGCONT to the group that was in front then)."""
        if self.session == sid:
            if self.pgrp is not None:
                kill_pgrp(self.kernel, self.pgrp, SIGHUP)
            self._drop_session()
        elif sid in self.old_pgrps:
            pgid = self.old_pgrps.pop(sid)
            kill_pgrp(self.kernel, pgid, SIGHUP)
            kill_pgrp(self.kernel, pgid, SIGCONT)

    def _drop_session(self) -> None:
        table = _sessions.get(self.kernel, {})
        if self.session is not None and table.get(self.session) is self:
            del table[self.session]
        self.session = self.pgrp = None
        self.detached = weakref.WeakSet()
        self.job_wait.notify()

    def hangup(self) -> None:
        """tty_vhangup (the master closed): reads see end of file, writes and most ioctls
        EIO; the session leader gets SIGHUP and SIGCONT and the session loses its
        controlling terminal."""
        if self.hung_up:
            return
        self.hung_up = True
        self.flip.clear()
        self._truncate(0)
        self.canon_end = 0
        if self.session is not None:
            leader = self.kernel.thread_groups.get(self.session)  # type: ignore[attr-defined]
            if leader is not None and leader.alive:
                self.kernel.send_signal(leader, SIGHUP)  # type: ignore[attr-defined]
                self.kernel.send_signal(leader, SIGCONT)  # type: ignore[attr-defined]
                if self.pgrp is not None:
                    self.old_pgrps[self.session] = self.pgrp
            self._drop_session()
        self.slave_wait.notify()
        self.master_wait.notify()

    def _notty(self, task: "Task") -> None:
        """TIOCNOTTY by a process this terminal controls: a leader gives it up for the
        whole session (SIGHUP and SIGCONT to the foreground group), anyone else for
        itself."""
        tg = task.tg
        if tg.pid != tg.sid:
            self.detached.add(tg)
            return
        if self.pgrp is not None:
            info = _user_info(task, SIGHUP)
            kill_pgrp(self.kernel, self.pgrp, SIGHUP, info)
            kill_pgrp(self.kernel, self.pgrp, SIGCONT, _user_info(task, SIGCONT))
        self._drop_session()

    def _sctty(self, task: "Task", arg: int, readable: bool) -> None:
        """tiocsctty: a session leader without a controlling terminal takes this one (with
        arg 1 and CAP_SYS_ADMIN even from another session)."""
        tg = task.tg
        leader = tg.pid == tg.sid
        if leader and self.session == tg.sid and controlling_terminal(tg) is self:
            return
        if not leader or controlling_terminal(tg) is not None:
            raise SyscallError(EPERM)
        if self.session is not None and self._session_alive():
            if not (arg == 1 and _capable(task, CAP_SYS_ADMIN)):
                raise SyscallError(EPERM)
        if not readable and not _capable(task, CAP_SYS_ADMIN):
            raise SyscallError(EPERM)
        self.acquire(tg)

    def _session_alive(self) -> bool:
        leader = self.kernel.thread_groups.get(self.session)  # type: ignore[attr-defined]
        return leader is not None and leader.alive

    def _spgrp(self, task: "Task", arg: int) -> None:
        """tiocspgrp: the caller's own terminal, a group of its own session."""
        try:
            self.check_change(task)
        except SyscallError as e:
            raise SyscallError(ENOTTY if e.errno == EIO else e.errno) from None
        tg = task.tg
        if not self._is_ctty_of(tg) or self.session != tg.sid:
            raise SyscallError(ENOTTY)
        pgid = _get_int(task, arg)
        if pgid < 0:
            raise SyscallError(EINVAL)
        groups = [g for g in self.kernel.thread_groups.values()  # type: ignore[attr-defined]
                  if not g.reaped]
        member = next((g for g in groups if g.pgid == pgid), None) or \
            next((g for g in groups if g.pid == pgid), None)
        if member is None:
            raise SyscallError(ESRCH)
        if member.sid != tg.sid:
            raise SyscallError(EPERM)
        self.pgrp = pgid
        self.job_wait.notify()

    def set_winsize(self, data: bytes) -> None:
        """tiocswinsz + pty_resize: SIGWINCH to the foreground group when it changes."""
        if data == self.winsize:
            return
        self.winsize = bytes(data)
        if self.pgrp is not None:
            kill_pgrp(self.kernel, self.pgrp, SIGWINCH)

    def signal_pgrp(self, sig: int) -> None:
        """TIOCSIG on the master."""
        if sig not in (SIGINT, SIGQUIT, SIGTSTP):
            raise SyscallError(EINVAL)
        if self.pgrp is not None:
            kill_pgrp(self.kernel, self.pgrp, sig)

    # ================================================================ poll =============
    def slave_events(self) -> int:
        """n_tty_poll for the slave (everything once hung up, as hung_up_tty_poll)."""
        if self.hung_up:
            return POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM
        mask = POLLIN | POLLRDNORM if self.input_available(poll=True) else 0
        if self.output_room():
            mask |= POLLOUT | POLLWRNORM
        return mask

    # ================================================================ ioctl ============
    def ioctl(self, task: "Task", request: int, arg: int, master: bool, readable: bool) -> int:
        """The requests both ends share (tty_ioctl, tty_jobctrl_ioctl, n_tty_ioctl,
        tty_mode_ioctl); a master's act on this, its slave, as Linux's do."""
        mm = task.tg.mm
        if request in (TCGETS, TCGETS2, TCGETA):
            mm.write(arg, self.termios.pack(request))
            return 0
        if request in (TCSETS, TCSETSW, TCSETSF, TCSETS2, TCSETSW2, TCSETSF2,
                       TCSETA, TCSETAW, TCSETAF):
            size = {TCSETS2: _TERMIOS2, TCSETSW2: _TERMIOS2, TCSETSF2: _TERMIOS2,
                    TCSETA: _TERMIO, TCSETAW: _TERMIO, TCSETAF: _TERMIO}.get(
                request, _TERMIOS).size
            self.check_change(task)
            new = self.termios.updated(request, mm.read(arg, size))
            if request in (TCSETSF, TCSETSF2, TCSETAF):
                self._flush_input()
            self.set_termios(new)
            return 0
        if request == TIOCGWINSZ:
            mm.write(arg, self.winsize)
            return 0
        if request == TIOCSWINSZ:
            self.set_winsize(mm.read(arg, _WINSIZE_SIZE))
            return 0
        if request == FIONREAD:
            return _put_int(task, arg, len(self.out) if master else self.inq())
        if request == TIOCOUTQ:
            return _put_int(task, arg, 0)  # a pty holds nothing in a driver queue
        if request == TCFLSH:
            if not master:
                self.check_change(task)
            self.flush(arg, master)
            return 0
        if request == TCXONC:
            if not master:
                self.check_change(task)
            self.xonc(arg, master)
            return 0
        if request in (TCSBRK, TCSBRKP, TIOCSBRK, TIOCSETD):
            if not master:
                self.check_change(task)
            if request == TIOCSETD:
                disc = _get_int(task, arg)
                if disc != 0:
                    task.kernel.warn_once("tty:TIOCSETD", f"line discipline {disc} on a "
                                          "pty: only N_TTY is available -> EINVAL")
                    raise SyscallError(EINVAL)
            return 0  # a pty has no break to send
        if request == TIOCCBRK:
            return 0
        if request == TIOCGETD:
            return _put_int(task, arg, 0)  # N_TTY
        if request == TIOCGDEV:
            return _put_int(task, arg, encode_dev(self.rdev))
        if request == TIOCGSOFTCAR:
            return _put_int(task, arg, 1 if self.termios.cflag & CLOCAL else 0)
        if request == TIOCSSOFTCAR:
            new = self.termios.copy()
            new.cflag = (new.cflag & ~CLOCAL) | (CLOCAL if _get_int(task, arg) else 0)
            self.set_termios(new)
            return 0
        if request == TIOCGLCKTRMIOS:
            mm.write(arg, bytes(_TERMIOS.size))  # nothing is locked
            return 0
        if request == TIOCSLCKTRMIOS:
            if not _capable(task, CAP_SYS_ADMIN):
                raise SyscallError(EPERM)
            task.kernel.warn_once("tty:TIOCSLCKTRMIOS", "TIOCSLCKTRMIOS: termios locks "
                                  "are not kept (accepted, no effect)")
            return 0
        if request == TIOCSCTTY:
            self._sctty(task, arg & 0xFFFFFFFF, readable)
            return 0
        if request == TIOCNOTTY:
            if master or not self._is_ctty_of(task.tg):
                raise SyscallError(ENOTTY)
            self._notty(task)
            return 0
        if request == TIOCGPGRP:
            if not master and not self._is_ctty_of(task.tg):
                raise SyscallError(ENOTTY)
            return _put_int(task, arg, self.pgrp or 0)
        if request == TIOCSPGRP:
            self._spgrp(task, arg)
            return 0
        if request == TIOCGSID:
            if (not master and not self._is_ctty_of(task.tg)) or self.session is None:
                raise SyscallError(ENOTTY)
            return _put_int(task, arg, self.session)
        if request == TIOCSTI:
            if not self._is_ctty_of(task.tg) or master:
                if not _capable(task, CAP_SYS_ADMIN):
                    raise SyscallError(EPERM)
            ch = mm.read(arg, 1)
            if master:
                self.out += ch
                self._output_added()
            else:
                self.flip += ch
                self._feed()
            return 0
        if request == TIOCCONS:
            if master:
                raise SyscallError(EINVAL)
            if not _capable(task, CAP_SYS_ADMIN):
                raise SyscallError(EPERM)
            task.kernel.warn_once("tty:TIOCCONS", "TIOCCONS: the sandbox has no console to "
                                  "redirect (accepted, no effect)")
            return 0
        task.kernel.warn_once(f"tty:ioctl:{request:#x}",
                              f"ioctl({request:#x}) on a pseudo-terminal -> ENOTTY")
        raise SyscallError(ENOTTY)


def _user_info(task: "Task", sig: int) -> bytes:
    from snakevisor.kernel.signals import basic_siginfo
    return basic_siginfo(sig, SI_USER, pid=task.tg.pid, uid=task.tg.creds.ruid)

