"""Advisory file locks, kept by the sentry: POSIX record locks (fcntl F_SETLK & co., owned
by the process), open-file-description locks (F_OFD_*, owned by the open file) and
flock(2) locks (whole file, owned by the open file).  A waiting lock parks its task on the
file's queue and is retried whenever a lock of that file goes away.

The sentry's table is the truth for the sandbox (owners, merging, EDEADLK, F_GETLK's pid).
Files shared with the host (volumes, the written-through root) also hold every lock on the
host, so that host processes and the sandbox exclude each other (`HostMirror`).  The host
cannot hold a sandbox process's POSIX locks as POSIX locks -- the sentry makes the host
calls, and a POSIX lock it took would be the sentry's: one owner for the whole sandbox,
dropped whenever the sentry closes any fd of the file -- so it holds them as OFD locks on
the descriptions the sentry keeps open for the sandbox (each open is a host open):

* an OFD lock or a flock lock lives on its own description (the owners are the same
  thing on both sides, so this is exact);
* a process's POSIX locks on one file all live on one description it locked through (its
  *anchor*): moved to another description when the anchor cannot carry a lock type (a
  write lock asked through an O_RDWR fd while the anchor is O_RDONLY);
* a description can carry the locks of several owners (its OFD locks, the POSIX locks of
  processes anchored on it); the host holds their union, the strongest type per byte.

The sentry checks its own table first, then asks the host (F_OFD_SETLK / flock LOCK_NB,
never a blocking call), then commits; a refusal by the host leaves the table untouched
(`HostBusy`: EAGAIN, or a timed retry for the waiting forms).
"""
from __future__ import annotations

import errno
import fcntl
import struct
from typing import TYPE_CHECKING, Callable, Hashable, NamedTuple

from snakevisor.kernel.errors import EAGAIN, Block, SyscallError, WaitQueue

if TYPE_CHECKING:
    from snakevisor.vfs.file import File

F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
EDEADLK = 35
INF = 1 << 63  #: "to the end of the file, however long it grows"
F_OFD_GETLK, F_OFD_SETLK = 36, 37
FLOCK = struct.Struct("<hh4xqqi4x")  #: struct flock: l_type, l_whence, l_start, l_len, l_pid
_FLOCK_OPS = {F_RDLCK: fcntl.LOCK_SH, F_WRLCK: fcntl.LOCK_EX, F_UNLCK: fcntl.LOCK_UN}


class Lock(NamedTuple):
    owner: Hashable
    type: int  #: F_RDLCK or F_WRLCK
    start: int
    end: int  #: last byte, inclusive (INF: open-ended)
    pid: int  #: what F_GETLK reports (-1 for OFD locks and flock)


class HostBusy(SyscallError):
    """A host process holds a conflicting lock (the sandbox's table had none)."""

    def __init__(self) -> None:
        super().__init__(EAGAIN)


def file_key(file: "File") -> tuple:
    """Which file a lock is on: the inode, whichever description reaches it."""
    st = file.stat()
    return (st.st_dev, st.st_ino)


def span(start: int, end: int) -> int:
    """struct flock's l_len of [start, end] (0: to the end of the file)."""
    return 0 if end >= INF else end - start + 1


def _released(owner: Hashable) -> bool:
    """An OFD or flock owner whose description is gone (its last fd closed by a path that
    does not tell the lock code: close_range, dup2, exec, exit): its locks went with it."""
    kind, who = owner  # type: ignore[misc]
    return kind != "posix" and who.refs <= 0


class LockTable:
    """All advisory locks of one sandbox of one kind: record locks ("posix" and "ofd"
    owners) or flock locks ("flock" owners).  `host_fd` tells which descriptions are shared
    with the host (the fd to lock there) and which are the sentry's alone (None)."""

    def __init__(self, flock: bool = False,
                 host_fd: "Callable[[File], int | None]" = lambda file: None,
                 warn: Callable[[str, str], None] = lambda key, message: None) -> None:
        self.locks: dict[tuple, list[Lock]] = {}
        self.queues: dict[tuple, WaitQueue] = {}
        #: POSIX owner -> the owner it waits for (deadlock detection)
        self.waiting_for: dict[Hashable, Hashable] = {}
        self.host = HostMirror(self, flock, host_fd, warn)

    def queue(self, key: tuple) -> WaitQueue:
        return self.queues.setdefault(key, WaitQueue())

    def held(self, key: tuple, owner: Hashable) -> list[Lock]:
        return [lk for lk in self.locks.get(key, ()) if lk.owner == owner]

    def _conflicts(self, key: tuple, owner: Hashable, ltype: int, start: int, end: int) -> list[Lock]:
        locks = self.locks.get(key, ())
        if any(_released(lk.owner) for lk in locks):
            locks = [lk for lk in locks if not _released(lk.owner)]
            if locks:
                self.locks[key] = locks
            else:
                del self.locks[key]
        return [lk for lk in locks
                if lk.owner != owner and lk.start <= end and start <= lk.end
                and (lk.type == F_WRLCK or ltype == F_WRLCK)]

    def test(self, key: tuple, owner: Hashable, ltype: int, start: int, end: int) -> Lock | None:
        """F_GETLK: the first lock of the sandbox that would block this one."""
        found = self._conflicts(key, owner, ltype, start, end)
        return min(found, key=lambda lk: lk.start) if found else None

    def set(self, key: tuple, owner: Hashable, ltype: int, start: int, end: int, pid: int,
            wait: bool, deadlock_check: bool = False, via: "File | None" = None) -> None:
        """Take, change or drop (F_UNLCK) the owner's lock on [start, end], asked through
        the description `via` (None: a release by close or exit).  HostBusy when only a host
        process stands in the way."""
        if ltype != F_UNLCK:
            blocking = self._conflicts(key, owner, ltype, start, end)
            if blocking:
                if not wait:
                    raise SyscallError(EAGAIN)
                if deadlock_check and self._would_deadlock(owner, blocking[0].owner):
                    raise SyscallError(EDEADLK)
                self.waiting_for[owner] = blocking[0].owner
                raise Block(queue=self.queue(key))
        self.waiting_for.pop(owner, None)
        self.host.acquire(key, owner, ltype, start, end, via)
        kept: list[Lock] = []
        for lk in self.locks.get(key, ()):
            if lk.owner != owner or lk.end < start or end < lk.start:
                kept.append(lk)
                continue
            if lk.start < start:  # the part before the new range survives
                kept.append(lk._replace(end=start - 1))
            if lk.end > end:  # and the part after it
                kept.append(lk._replace(start=end + 1))
        if ltype != F_UNLCK:
            kept.append(Lock(owner, ltype, start, end, pid))
        self.locks[key] = _merge(kept)
        if not self.locks[key]:
            del self.locks[key]
        self.host.settle(key, owner, ltype, start, end)
        self.wake(key)

    def _would_deadlock(self, me: Hashable, blocker: Hashable) -> bool:
        seen = set()
        while blocker is not None and blocker not in seen:
            if blocker == me:
                return True
            seen.add(blocker)
            blocker = self.waiting_for.get(blocker)
        return False

    def release(self, key: tuple, owner: Hashable) -> None:
        """Drop every lock `owner` holds on the file (close of a POSIX owner's fd)."""
        if any(lk.owner == owner for lk in self.locks.get(key, ())):
            self.set(key, owner, F_UNLCK, 0, INF, 0, False)

    def release_owner(self, owner: Hashable) -> None:
        """Drop everything an owner holds (a process exits, an open file is released)."""
        self.waiting_for.pop(owner, None)
        for key in [k for k, locks in self.locks.items() if any(lk.owner == owner for lk in locks)]:
            self.set(key, owner, F_UNLCK, 0, INF, 0, False)

    def wake(self, key: tuple) -> None:
        queue = self.queues.get(key)
        if queue is not None and queue.waiters:
            queue.notify()


class HostMirror:
    """Keeps the host's locks on host-shared files equal to the table's (module docstring):
    every host call is non-blocking, and each description's host locks are recomputed from
    the table wherever a lock went away, so owners sharing a description never undo each
    other's ranges."""

    def __init__(self, table: LockTable, flock: bool,
                 host_fd: "Callable[[File], int | None]",
                 warn: Callable[[str, str], None]) -> None:
        self.table = table
        self.flock = flock
        self.host_fd = host_fd
        self.warn = warn
        #: (POSIX owner, file key) -> the description holding that owner's locks on the host
        self.anchors: dict[tuple[Hashable, tuple], "File"] = {}

    def description(self, owner: Hashable, key: tuple) -> "File | None":
        """The description whose host locks include `owner`'s on the file, if any."""
        kind, who = owner  # type: ignore[misc]
        if kind == "posix":
            return self.anchors.get((owner, key))
        return who if self.host_fd(who) is not None else None

    # -- taking -----------------------------------------------------------------------------
    def acquire(self, key: tuple, owner: Hashable, ltype: int, start: int, end: int,
                via: "File | None") -> None:
        """Before the table commits: take the range on the host (HostBusy if refused)."""
        if ltype == F_UNLCK:
            return
        kind, who = owner  # type: ignore[misc]
        if kind == "posix":
            desc = self._anchor(key, owner, ltype, via)
        else:
            desc = who if self.host_fd(who) is not None else None
        if desc is not None and not self._host_set(desc, ltype, start, end):
            raise HostBusy()

    def _anchor(self, key: tuple, owner: Hashable, ltype: int, via: "File | None") -> "File | None":
        """Where a POSIX owner's new lock goes: its anchor, made or moved as needed."""
        if via is None or self.host_fd(via) is None:
            return None
        anchor = self.anchors.get((owner, key))
        if anchor is None:
            self.anchors[(owner, key)] = via
            return via
        if anchor.refs > 0 and _carries(anchor, ltype):
            return anchor
        held = self.table.held(key, owner)
        if not all(_carries(via, lk.type) for lk in held):
            self.warn("locks:anchor", "a process locks one host-shared file through both an "
                      "O_RDONLY and an O_WRONLY description: one of its locks is kept in the "
                      "sandbox only (host processes do not see it)")
            return None
        self._move(key, owner, anchor, via, held)
        return via

    def _move(self, key: tuple, owner: Hashable, old: "File", new: "File", held: list[Lock]) -> None:
        """Carry an owner's locks from one description to another.  A read lock is taken on
        the new one before it leaves the old (readers share); a write lock must leave first,
        so a host process could slip in between -- then the lock is the sandbox's only."""
        self.anchors[(owner, key)] = new
        alive = old.refs > 0
        for lk in sorted(held, key=lambda lk: lk.type):
            if lk.type == F_RDLCK or not alive:
                ok = self._host_set(new, lk.type, lk.start, lk.end)
                if alive:
                    self._sync(old, key, lk.start, lk.end)
            else:
                self._sync(old, key, lk.start, lk.end)
                ok = self._host_set(new, lk.type, lk.start, lk.end)
            if not ok:
                self.warn("locks:moved", "a host process took a range while the sentry moved a "
                          "sandbox process's lock between descriptions: kept in the sandbox only")

    # -- dropping ---------------------------------------------------------------------------
    def settle(self, key: tuple, owner: Hashable, ltype: int, start: int, end: int) -> None:
        """After the table committed: give back on the host what the owner let go (what
        other owners of the same description hold there stays)."""
        kind = owner[0]  # type: ignore[index]
        if ltype == F_UNLCK:
            desc = self.description(owner, key)
            if desc is not None:
                self._sync(desc, key, start, end)
        if kind == "posix" and (owner, key) in self.anchors and not self.table.held(key, owner):
            del self.anchors[(owner, key)]

    def _sync(self, desc: "File", key: tuple, start: int, end: int) -> None:
        """Make the host's locks of `desc` on [start, end] what the table says its owners
        hold there (only unlocks and downgrades: they cannot fail)."""
        if desc.refs <= 0:
            return  # closed: the host dropped its locks with it (and the fd may be reused)
        mine = [lk for lk in self.table.locks.get(key, ())
                if lk.start <= end and start <= lk.end and self.description(lk.owner, key) is desc]
        for ltype, first, last in cover(mine, start, end):
            self._host_set(desc, ltype, first, last)

    # -- asking -----------------------------------------------------------------------------
    def test(self, key: tuple, owner: Hashable, ltype: int, start: int, end: int,
             via: "File") -> Lock | None:
        """F_GETLK beyond the sandbox: a host process's conflicting lock.  Asked on the
        description holding the owner's own locks, so they never count against it (every
        other sandbox lock is in the table, which answered first).  l_pid as Linux reports
        a holder outside the pid namespace: 0, or -1 for an OFD lock."""
        if self.flock or self.host_fd(via) is None:
            return None
        desc = self.description(owner, key)
        fd = self.host_fd(desc) if desc is not None and desc.refs > 0 else None
        try:
            got = fcntl.fcntl(self.host_fd(via) if fd is None else fd, F_OFD_GETLK,
                              FLOCK.pack(ltype, 0, start, span(start, end), 0))
        except OSError as e:
            raise SyscallError(e.errno) from None
        htype, _, hstart, hlen, hpid = FLOCK.unpack(got)
        if htype == F_UNLCK:
            return None
        return Lock(None, htype, hstart, INF if hlen == 0 else hstart + hlen - 1,
                    -1 if hpid == -1 else 0)

    def _host_set(self, desc: "File", ltype: int, start: int, end: int) -> bool:
        """One non-blocking host lock call on the description's fd; False if refused."""
        fd = self.host_fd(desc)
        if fd is None:
            return True
        try:
            if self.flock:
                fcntl.flock(fd, _FLOCK_OPS[ltype] | fcntl.LOCK_NB)
            else:
                fcntl.fcntl(fd, F_OFD_SETLK, FLOCK.pack(ltype, 0, start, span(start, end), 0))
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise SyscallError(e.errno) from None
        if ltype != F_UNLCK:
            desc.host_locked = True  # type: ignore[attr-defined]  (HostFdFile.release)
        return True


def drop_host_locks(fd: int) -> None:
    """Give back every lock held through a host description (its release: the sandbox's
    table forgets them too, see _released)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
        fcntl.fcntl(fd, F_OFD_SETLK, FLOCK.pack(F_UNLCK, 0, 0, 0, 0))
    except OSError:
        pass


def _carries(desc: "File", ltype: int) -> bool:
    """Can the host lock this type through this description (F_RDLCK needs a readable fd,
    F_WRLCK a writable one)?"""
    return desc.readable if ltype == F_RDLCK else desc.writable if ltype == F_WRLCK else True


def cover(locks: list[Lock], start: int, end: int) -> list[tuple[int, int, int]]:
    """[start, end] cut into (type, first, last) pieces: F_WRLCK where any of `locks` writes,
    F_RDLCK where they only read, F_UNLCK where none holds; neighbours of one type joined."""
    cuts = {start, end + 1}
    for lk in locks:
        cuts.update(c for c in (lk.start, lk.end + 1) if start < c <= end)
    points = sorted(cuts)
    out: list[tuple[int, int, int]] = []
    for first, after in zip(points, points[1:]):
        types = [lk.type for lk in locks if lk.start <= first and after - 1 <= lk.end]
        ltype = F_WRLCK if F_WRLCK in types else F_RDLCK if types else F_UNLCK
        if out and out[-1][0] == ltype:
            out[-1] = (ltype, out[-1][1], after - 1)
        else:
            out.append((ltype, first, after - 1))
    return out


def _merge(locks: list[Lock]) -> list[Lock]:
    """Coalesce adjacent or overlapping locks of the same owner and type."""
    locks.sort(key=lambda lk: (hash(lk.owner), lk.type, lk.start))
    out: list[Lock] = []
    for lk in locks:
        prev = out[-1] if out else None
        if prev is not None and prev.owner == lk.owner and prev.type == lk.type \
                and lk.start <= (prev.end + 1 if prev.end < INF else INF):
            out[-1] = prev._replace(end=max(prev.end, lk.end))
        else:
            out.append(lk)
    return out
