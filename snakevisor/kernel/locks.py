"""Advisory file locks, kept by the sentry: POSIX record locks (fcntl F_SETLK & co., owned
by the process), open-file-description locks (F_OFD_*, owned by the open file) and
flock(2) locks (whole file, owned by the open file).  A waiting lock parks its task on the
file's queue and is retried whenever a lock of that file goes away.

Locks are per sandbox: processes of the sandbox see each other's locks; the host does not
(the gofer does not forward them).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Hashable, NamedTuple

from snakevisor.kernel.errors import EAGAIN, Block, SyscallError, WaitQueue

if TYPE_CHECKING:
    from snakevisor.vfs.file import File

F_RDLCK, F_WRLCK, F_UNLCK = 0, 1, 2
EDEADLK = 35
INF = 1 << 63  #: "to the end of the file, however long it grows"


class Lock(NamedTuple):
    owner: Hashable
    type: int  #: F_RDLCK or F_WRLCK
    start: int
    end: int  #: last byte, inclusive (INF: open-ended)
    pid: int  #: what F_GETLK reports (-1 for OFD locks and flock)


def file_key(file: "File") -> tuple:
    """Which file a lock is on: the inode, whichever description reaches it."""
    st = file.stat()
    return (st.st_dev, st.st_ino)


class LockTable:
    """All advisory locks of one sandbox, by file and by kind ("posix" or "flock")."""

    def __init__(self) -> None:
        self.locks: dict[tuple, list[Lock]] = {}
        self.queues: dict[tuple, WaitQueue] = {}
        #: POSIX owner -> the owner it waits for (deadlock detection)
        self.waiting_for: dict[Hashable, Hashable] = {}

    def _conflicts(self, key: tuple, owner: Hashable, ltype: int, start: int, end: int) -> list[Lock]:
        return [lk for lk in self.locks.get(key, ())
                if lk.owner != owner and lk.start <= end and start <= lk.end
                and (lk.type == F_WRLCK or ltype == F_WRLCK)]

    def test(self, key: tuple, owner: Hashable, ltype: int, start: int, end: int) -> Lock | None:
        """F_GETLK: the first lock that would block this one."""
        found = self._conflicts(key, owner, ltype, start, end)
        return min(found, key=lambda lk: lk.start) if found else None

    def set(self, key: tuple, owner: Hashable, ltype: int, start: int, end: int, pid: int,
            wait: bool, deadlock_check: bool = False) -> None:
        """Take, change or drop (F_UNLCK) the owner's lock on [start, end]."""
        if ltype != F_UNLCK:
            blocking = self._conflicts(key, owner, ltype, start, end)
            if blocking:
                if not wait:
                    raise SyscallError(EAGAIN)
                if deadlock_check and self._would_deadlock(owner, blocking[0].owner):
                    raise SyscallError(EDEADLK)
                self.waiting_for[owner] = blocking[0].owner
                raise Block(queue=self.queues.setdefault(key, WaitQueue()))
        self.waiting_for.pop(owner, None)
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


def _merge(locks: list[Lock]) -> list[Lock]:
    """Coalesce adjacent or overlapping locks of the same owner and type."""
    locks.sort(key=lambda lk: (str(id(lk.owner)), lk.type, lk.start))
    out: list[Lock] = []
    for lk in locks:
        prev = out[-1] if out else None
        if prev is not None and prev.owner == lk.owner and prev.type == lk.type \
                and lk.start <= (prev.end + 1 if prev.end < INF else INF):
            out[-1] = prev._replace(end=max(prev.end, lk.end))
        else:
            out.append(lk)
    return out
