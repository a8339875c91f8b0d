"""poll, ppoll, select, pselect6: waiting for the first of many files to become ready.

Why this shape: a call scans its files (File.poll_events), and when nothing is ready it
parks on every source that could change the answer — each file's sentry WaitQueue
(poll_queue) and host fd (poll_host) — plus its deadline.  Any of them re-dispatches the
call, which scans again (wake-ups may be spurious).  What Linux fixes at entry is kept in
task.syscall_state: the decoded fd list or bitmaps, the absolute end time, the swapped
signal mask.  `Watch`, `Timeout`, `pollable` and the sigmask helpers are what epoll
reuses.

Linux details followed (fs/select.c, checked natively): the remaining time is written
back to select's timeval and to ppoll/pselect6's timespec whatever the outcome (except a
zero timeout, and silently skipped when unwritable); select clamps nfds to the size of
the fd table and ignores bits past it; a bit on a closed fd is EBADF; an O_PATH fd is
POLLNVAL, which select reports in all three sets; readiness beats a pending signal,
which beats the timeout.
"""
from __future__ import annotations

import struct
from selectors import EVENT_READ, EVENT_WRITE
from typing import TYPE_CHECKING, Callable

from snakevisor.kernel.errors import EBADF, EINTR, EINVAL, Block, SyscallError, WaitQueue
from snakevisor.kernel.signals import UNBLOCKABLE, has_deliverable
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32, u32
from snakevisor.vfs.file import (POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI,
                                 POLLRDBAND, POLLRDNORM, POLLWRBAND, POLLWRNORM, File)

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.fdtable import FdTable

NSEC = 1_000_000_000
RLIMIT_NOFILE = 7
#: what puts an fd into select's read / write / except result (Linux's POLL*_SET)
POLLIN_SET = POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR | POLLNVAL
POLLOUT_SET = POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR | POLLNVAL
POLLEX_SET = POLLPRI | POLLNVAL
_READ_BITS = POLLIN | POLLRDNORM | POLLRDBAND
_WRITE_BITS = POLLOUT | POLLWRNORM | POLLWRBAND
#: task.syscall_state key of the callable(task) Kernel.interrupt runs (after dropping the
#: state) when a signal ends the wait with EINTR: the call's Linux side effects (time
#: left, zeroed revents) still happen; an int it returns replaces the EINTR
ON_INTERRUPT = "on_interrupt"

_POLLFD = struct.Struct("<iHH")
_TIMESPEC = struct.Struct("<qq")
_SIGSET_ARGPACK = struct.Struct("<QQ")


# -- readiness, shared with epoll -----------------------------------------------------------
def pollable(task: "Task", fd: int) -> File | None:
    """The file behind fd for readiness, or None where Linux's fdget fails (POLLNVAL):
    not open, or an O_PATH descriptor."""
    file = task.fds.files.get(fd)
    if file is None or file.is_path_only:
        return None
    return file


class Watch:
    """The wake-up sources of the files one scan looked at, to block on when none is ready."""

    __slots__ = ("task", "queues", "hostfds")

    def __init__(self, task: "Task") -> None:
        self.task = task
        self.queues: list[WaitQueue] = []
        self.hostfds: dict[int, int] = {}  # host fd -> selectors.EVENT_* mask

    def check(self, file: File, interest: int) -> int:
        """The file's POLL* bits now (callers filter them), noting how a change of the bits
        in `interest` — and of POLLERR/POLLHUP, always reported — would be signalled."""
        events = file.poll_events()
        queue = file.poll_queue()
        # a task still listed from an earlier park of this call needs no second entry
        if queue is not None and all(q is not queue for q in self.queues) \
                and self.task not in queue.waiters:
            self.queues.append(queue)
        host = file.poll_host()
        if host is not None:
            fd, offered = host
            want = _host_events(interest, events, offered)
            if want:
                self.hostfds[fd] = self.hostfds.get(fd, 0) | want
        return events

    def block(self, deadline: float | None) -> Block:
        return Block(deadline=deadline, queues=self.queues, fds=list(self.hostfds.items()))


def _host_events(interest: int, events: int, offered: int) -> int:
    """Selector events that fire only when the host fd's state changes in a way the caller
    may see.  Never one the fd reports now: a level-triggered selector would wake us at
    once, over and over (e.g. waiting for POLLPRI on a terminal with input pending)."""
    want = 0
    if interest & _READ_BITS and not events & POLLIN:
        want |= EVENT_READ
    if interest & _WRITE_BITS and not events & POLLOUT:
        want |= EVENT_WRITE
    want &= offered
    if not want:  # only POLLERR/POLLHUP can matter: the host reports those with any event
        if not events & POLLIN:
            want = EVENT_READ
        elif not events & POLLOUT:
            want = EVENT_WRITE
    return want


class Timeout:
    """A wait's end, fixed at the first dispatch as Linux's end_time: None = forever."""

    __slots__ = ("deadline", "zero")

    def __init__(self, deadline: float | None, zero: bool = False) -> None:
        self.deadline = deadline
        self.zero = zero  #: a zero timeout: nothing is written back

    @classmethod
    def after(cls, task: "Task", sec: int, nsec: int) -> "Timeout":
        """poll_select_set_timeout: EINVAL unless 0 <= sec and 0 <= nsec < 1e9."""
        if sec < 0 or not 0 <= nsec < NSEC:
            raise SyscallError(EINVAL)
        return cls(task.kernel.now() + sec + nsec / NSEC, zero=not (sec or nsec))

    @classmethod
    def ms(cls, task: "Task", ms: int) -> "Timeout":
        """poll/epoll_wait's int of milliseconds: negative waits forever."""
        if ms < 0:
            return cls(None)
        return cls.after(task, ms // 1000, ms % 1000 * 1_000_000)

    @classmethod
    def timespec(cls, task: "Task", addr: int) -> "Timeout":
        """A struct timespec argument (relative); NULL waits forever."""
        if not addr:
            return cls(None)
        sec, nsec = _TIMESPEC.unpack(task.mm.read(addr, _TIMESPEC.size))
        return cls.after(task, sec, nsec)

    def expired(self, task: "Task") -> bool:
        return self.deadline is not None and task.kernel.now() >= self.deadline

    def remaining_ns(self, task: "Task") -> int:
        assert self.deadline is not None
        return max(0, round((self.deadline - task.kernel.now()) * NSEC))


def wait_for(task: "Task", scan: Callable[[Watch], int], timeout: Timeout) -> int:
    """One dispatch of a waiting call: the scan's count when something is ready, else
    EINTR for a deliverable signal, 0 once the time is up, or Block on what it watched."""
    watch = Watch(task)
    count = scan(watch)
    if count:
        return count
    if has_deliverable(task):
        return -EINTR
    if timeout.expired(task):
        return 0
    raise watch.block(timeout.deadline)


def swap_sigmask(task: "Task", addr: int, size: int) -> None:
    """ppoll/pselect6/epoll_pwait's temporary mask (set_user_sigmask): in force for the
    call, the old one kept in task.saved_sigmask so a handler's frame restores it."""
    if not addr:
        return
    if size != 8:
        raise SyscallError(EINVAL)
    new = task.mm.read_u64(addr) & ~UNBLOCKABLE
    task.saved_sigmask = task.sigmask
    task.sigmask = new
    task.syscall_state["sigmask_swapped"] = True


def restore_sigmask(task: "Task", result: int) -> None:
    """End of the call: the old mask comes back now, unless a handler is about to run
    (EINTR), whose frame restores it after the handler ran with the temporary one."""
    state = task.syscall_state
    if result == -EINTR or not state or not state.pop("sigmask_swapped", False):
        return
    task.sigmask = task.saved_sigmask
    task.saved_sigmask = None


def _write_time_left(task: "Task", addr: int, timeout: Timeout, timeval: bool) -> None:
    """poll_select_finish: the time left into the caller's timespec/timeval (not for a
    zero or absent timeout; an unwritable one is silently left alone)."""
    if not addr or timeout.deadline is None or timeout.zero:
        return
    sec, nsec = divmod(timeout.remaining_ns(task), NSEC)
    try:
        task.mm.write(addr, _TIMESPEC.pack(sec, nsec // 1000 if timeval else nsec))
    except SyscallError:
        pass


def _finish(task: "Task", body: Callable[[], int], addr: int, timeval: bool) -> int:
    """Run a call's waiting body to an outcome (a Block propagates: the call goes on),
    then do what Linux does at the end of every outcome: time left, signal mask."""
    state = task.syscall_state
    try:
        result = body()
    except SyscallError as e:
        result = -e.errno
    _write_time_left(task, addr, state["timeout"], timeval)
    restore_sigmask(task, result)
    return result


def _on_interrupt(task: "Task", timeout: Timeout, addr: int, timeval: bool,
                  writes: list[tuple[int, bytes]]) -> int | None:
    """What a signal that ends the wait leaves behind on Linux (for ON_INTERRUPT): poll's
    zeroed revents (EFAULT instead of EINTR when they cannot be stored), the time left."""
    result = None
    for where, data in writes:
        try:
            task.mm.write(where, data)
        except SyscallError as e:
            result = -e.errno
    _write_time_left(task, addr, timeout, timeval)
    return result


# -- poll, ppoll ----------------------------------------------------------------------------
def _do_poll(task: "Task", ufds: int, nfds: int) -> int:
    """do_sys_poll: scan the pollfd array read at the first dispatch; revents are written
    back when the call ends (all of them, zeros included)."""
    state = task.syscall_state
    entries = state.get("pollfds")
    if entries is None:
        if nfds > task.tg.rlimits[RLIMIT_NOFILE][0]:
            raise SyscallError(EINVAL)
        raw = task.mm.read(ufds, nfds * _POLLFD.size)
        entries = state["pollfds"] = [(fd, events) for fd, events, _ in _POLLFD.iter_unpack(raw)]
        state[ON_INTERRUPT] = lambda t: _on_interrupt(
            t, state["timeout"], state["time_addr"], False,
            [(ufds, _pollfd_array(entries, [0] * len(entries)))])
    revents = [0] * len(entries)

    def scan(watch: Watch) -> int:
        count = 0
        for i, (fd, events) in enumerate(entries):
            if fd < 0:
                continue
            file = pollable(task, fd)
            if file is None:
                mask = POLLNVAL
            else:
                mask = watch.check(file, events) & (events | POLLERR | POLLHUP)
            if mask:
                revents[i] = mask
                count += 1
        return count

    result = wait_for(task, scan, state["timeout"])
    if entries:
        task.mm.write(ufds, _pollfd_array(entries, revents))
    return result


def _pollfd_array(entries: list[tuple[int, int]], revents: list[int]) -> bytes:
    return b"".join(_POLLFD.pack(fd, events, rev) for (fd, events), rev in zip(entries, revents))


@syscall("poll")
def sys_poll(task: "Task", ufds: int, nfds: int, timeout_ms: int, *_: int) -> int:
    if task.syscall_state is None:
        task.syscall_state = {"timeout": Timeout.ms(task, s32(timeout_ms)), "time_addr": 0}
    return _finish(task, lambda: _do_poll(task, ufds, u32(nfds)), 0, False)


@syscall("ppoll")
def sys_ppoll(task: "Task", ufds: int, nfds: int, tsp: int, sigmask: int, sigsetsize: int,
              *_: int) -> int:
    if task.syscall_state is None:
        timeout = Timeout.timespec(task, tsp)
        task.syscall_state = {"timeout": timeout, "time_addr": tsp}
        try:
            swap_sigmask(task, sigmask, sigsetsize)
        except SyscallError:
            task.syscall_state = None
            raise
    return _finish(task, lambda: _do_poll(task, ufds, u32(nfds)), tsp, False)


# -- select, pselect6 -----------------------------------------------------------------------
def fdtable_size(fds: "FdTable") -> int:
    """Linux's max_fds, to which select clamps nfds: 64 slots, grown to the power of two
    that holds the highest fd (here: of those open now; Linux never shrinks it)."""
    highest = max(fds.files, default=0)
    return max(64, 1 << highest.bit_length())


def _do_select(task: "Task", n: int, inp: int, outp: int, exp: int) -> int:
    """core_sys_select on the bitmaps read at the first dispatch; results written over
    them (whole 64-bit words up to n) unless the call ends with an error or EINTR."""
    state = task.syscall_state
    sets = state.get("fdsets")
    if sets is None:
        if n < 0:
            raise SyscallError(EINVAL)
        n = min(n, fdtable_size(task.fds))
        size = (n + 63) // 64 * 8
        sets = [int.from_bytes(task.mm.read(addr, size), "little") if addr else 0
                for addr in (inp, outp, exp)]
        sets = [bits & ((1 << n) - 1) for bits in sets]
        files = task.fds.files
        wanted = sets[0] | sets[1] | sets[2]
        for fd in _bits(wanted):
            if fd not in files:
                raise SyscallError(EBADF)
        state["fdsets"] = sets
        state["fdset_size"] = size
    size = state["fdset_size"]
    rd, wr, ex = sets
    results = [0, 0, 0]

    def scan(watch: Watch) -> int:
        count = 0
        for fd in _bits(rd | wr | ex):
            bit = 1 << fd
            file = pollable(task, fd)
            if file is None:
                mask = POLLNVAL
            else:
                interest = (POLLIN_SET if rd & bit else 0) | (POLLOUT_SET if wr & bit else 0) \
                    | (POLLEX_SET if ex & bit else 0)
                mask = watch.check(file, interest)
            for i, (want, ready) in enumerate(((rd, POLLIN_SET), (wr, POLLOUT_SET),
                                               (ex, POLLEX_SET))):
                if want & bit and mask & ready:
                    results[i] |= bit
                    count += 1
        return count

    result = wait_for(task, scan, state["timeout"])
    if result >= 0:
        for addr, bits in zip((inp, outp, exp), results):
            if addr:
                task.mm.write(addr, bits.to_bytes(size, "little"))
    return result


def _bits(x: int):
    """The positions of the set bits of x, lowest first."""
    while x:
        low = x & -x
        yield low.bit_length() - 1
        x ^= low


def _select_timeval(task: "Task", tvp: int) -> Timeout:
    """select's timeval, normalised as kern_select does (C division: usec may exceed a
    second; a negative remainder is EINVAL)."""
    if not tvp:
        return Timeout(None)
    sec, usec = _TIMESPEC.unpack(task.mm.read(tvp, _TIMESPEC.size))
    q = abs(usec) // 1_000_000 * (1 if usec >= 0 else -1)  # C's truncating division
    rem = usec - q * 1_000_000
    return Timeout.after(task, sec + q, rem * 1000)


@syscall("select")
def sys_select(task: "Task", n: int, inp: int, outp: int, exp: int, tvp: int, *_: int) -> int:
    if task.syscall_state is None:
        timeout = _select_timeval(task, tvp)
        task.syscall_state = {"timeout": timeout, "time_addr": tvp,
                              ON_INTERRUPT: lambda t: _on_interrupt(t, timeout, tvp, True, [])}
    return _finish(task, lambda: _do_select(task, s32(n), inp, outp, exp), tvp, True)


@syscall("pselect6")
def sys_pselect6(task: "Task", n: int, inp: int, outp: int, exp: int, tsp: int, sig: int) -> int:
    if task.syscall_state is None:
        mask_addr = mask_size = 0
        if sig:
            mask_addr, mask_size = _SIGSET_ARGPACK.unpack(task.mm.read(sig, _SIGSET_ARGPACK.size))
        timeout = Timeout.timespec(task, tsp)
        task.syscall_state = {"timeout": timeout, "time_addr": tsp,
                              ON_INTERRUPT: lambda t: _on_interrupt(t, timeout, tsp, False, [])}
        try:
            swap_sigmask(task, mask_addr, mask_size)
        except SyscallError:
            task.syscall_state = None
            raise
    return _finish(task, lambda: _do_select(task, s32(n), inp, outp, exp), tsp, False)
