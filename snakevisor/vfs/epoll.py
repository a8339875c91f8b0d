"""epoll instances (epoll(7)): an interest list of items and a ready list, as Linux's eventpoll.

Why this shape: Linux's epoll is driven by wake-ups, not by scanning the interest list.
Each item (epitem) sits permanently on its file's wait queue; a wake-up puts it on the
ready list (ep_poll_callback) and wakes the instance's own waiters.  epoll_wait then
re-polls only the ready items (ep_send_events): what is ready is reported, a level-
triggered item goes back to the tail of the list, an edge-triggered one stays off it
until the next wake-up, a one-shot one is disabled until EPOLL_CTL_MOD.  Everything
applications observe follows from that model — an ET item is reported again after every
write into a pipe (the write wakes the queue), not after a partial read (which does not);
MOD re-arms whatever is ready now; maxevents smaller than the ready list gives round robin.
So this module keeps the same model on the sentry's WaitQueues:

* An item subscribes to its file's `poll_queue()` with a `QueueCallback` (a WaitQueue
  waiter that runs a function instead of waking a task), re-subscribing at each notify,
  newest first like Linux's add_wait_queue (the order decides which of several nested
  instances hears of an event first, hence their ready lists' order).
* Files whose readiness lives in the host (`poll_host()`: the CLI's stdio) have no queue;
  they are polled at each scan and a readiness bit that appeared since the last scan
  stands in for the wake-up (a change between two scans goes unseen).
* Items are keyed by (fd, File), Linux's epitem key: closing one fd of a dup'ed file keeps
  the item; it goes away when the file itself is released.  Linux removes it at release
  (eventpoll_release); here an item whose File was released (refs == 0: no fd, mapping
  or other hold left) is dropped the next time the instance looks at it — its ready
  list, its nesting, a wake-up — which no application can tell apart.

An epoll file is itself pollable (POLLIN while one of its ready items is ready) through
the same queue its epoll_wait callers sleep on, so instances nest; ELOOP guards cycles
and chains longer than EP_MAX_NESTS, with 6.x's rule (depth below + 1 + depth above).
"""
from __future__ import annotations

import os
import time
from typing import Callable, Iterator

from snakevisor.kernel.errors import EEXIST, EINVAL, ELOOP, ENOENT, SyscallError, WaitQueue
from snakevisor.vfs.file import O_RDWR, POLLIN, POLLOUT, POLLRDNORM, File

EPOLLERR, EPOLLHUP = 0x8, 0x10
EPOLLEXCLUSIVE, EPOLLWAKEUP, EPOLLONESHOT, EPOLLET = 1 << 28, 1 << 29, 1 << 30, 1 << 31
#: bits that steer epoll itself and are never reported (Linux's EP_PRIVATE_BITS)
EP_PRIVATE_BITS = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE
#: the only bits EPOLLEXCLUSIVE may come with (EPOLLEXCLUSIVE_OK_BITS)
EPOLLEXCLUSIVE_OK_BITS = POLLIN | POLLOUT | EPOLLERR | EPOLLHUP | EPOLLWAKEUP | EPOLLET | EPOLLEXCLUSIVE
EP_MAX_NESTS = 4  #: longest chain of epoll instances inside one another, in edges

#: the anonymous inode every epoll file shares (anon_inode:[eventpoll]): a made-up device
#: like pipefs's, mode 0600 without a file type, owned by root, born with the sentry
ANON_INODE_DEV = os.makedev(0, 0xFFFFE)
ANON_INODE_INO = 1
_ANON_INODE_TIME_NS = time.time_ns()


def anon_inode_stat() -> os.stat_result:
    """fstat of any anon_inode file (epoll now; eventfd, timerfd, signalfd share it)."""
    t = _ANON_INODE_TIME_NS
    return os.stat_result(
        (0o600, ANON_INODE_INO, ANON_INODE_DEV, 1, 0, 0, 0,
         t // 1_000_000_000, t // 1_000_000_000, t // 1_000_000_000),
        {"st_atime_ns": t, "st_mtime_ns": t, "st_ctime_ns": t,
         "st_blksize": 4096, "st_blocks": 0, "st_rdev": 0})


def can_poll(file: File) -> bool:
    """Whether epoll accepts the file (Linux's file_can_poll: its fops have ->poll).  A
    file that can tell us when its readiness changes can; regular files and directories
    (always ready, nothing to wait for) cannot: epoll_ctl answers EPERM for them."""
    return file.poll_queue() is not None or file.poll_host() is not None


class QueueCallback:
    """A WaitQueue waiter that runs a function instead of waking a task.

    WaitQueue.notify() wakes each waiter with ``waiter.kernel.wake(waiter)``; this object
    answers that protocol itself, so a sentry object (an epoll item) can follow a file's
    readiness the way Linux's wait-queue entries with a callback do."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn

    @property
    def kernel(self) -> "QueueCallback":
        return self

    def wake(self, _waiter: object) -> None:
        self.fn()


class Item:
    """One watched (fd, file) pair of an instance: Linux's epitem."""

    __slots__ = ("ep", "fd", "file", "events", "data", "queue", "hook", "seen", "removed")

    def __init__(self, ep: "EpollFile", fd: int, file: File, events: int, data: int) -> None:
        self.ep = ep
        self.fd = fd
        self.file = file
        self.events = events  #: interest and EPOLLET/ONESHOT/...; ERR|HUP always included
        self.data = data  #: the caller's 64-bit epoll_data, returned with each event
        self.queue = file.poll_queue()
        self.hook = QueueCallback(self._notified)
        self.seen = 0  #: readiness at the last scan (files without a queue)
        self.removed = False

    def __repr__(self) -> str:
        return f"Item(fd={self.fd}, events={self.events:#x}, data={self.data})"

    @property
    def enabled(self) -> bool:
        """False for a one-shot item that fired: no event bits left until MOD."""
        return bool(self.events & ~EP_PRIVATE_BITS)

    def revents(self) -> int:
        """What would be reported now (0 when not ready, or disabled)."""
        return self.file.poll_events() & self.events & ~EP_PRIVATE_BITS

    def subscribe(self) -> None:
        """Join the file's queue, at the head as add_wait_queue does (exclusive waiters
        go to the tail)."""
        if self.queue is None:
            return
        if self.events & EPOLLEXCLUSIVE:
            self.queue.waiters.append(self.hook)
        else:
            self.queue.waiters.insert(0, self.hook)

    def unsubscribe(self) -> None:
        self.removed = True
        if self.queue is not None:
            try:
                self.queue.waiters.remove(self.hook)
            except ValueError:
                pass

    def _notified(self) -> None:
        """ep_poll_callback: the file's readiness may have changed."""
        if self.removed:
            return
        assert self.queue is not None
        self.queue.waiters.append(self.hook)  # Linux's entry stays; ours is one-shot
        if self.ep.prune(self) and self.enabled:
            self.ep.link(self)


class EpollFile(File):
    """An epoll instance: the file epoll_create returns."""

    def __init__(self) -> None:
        super().__init__(O_RDWR, "anon_inode:[eventpoll]")
        self.items: dict[tuple[int, File], Item] = {}
        #: Linux's rdllist: items that may be ready, in the order they became so
        self.ready: dict[Item, None] = {}
        #: items of files without a poll queue: readiness checked at each scan
        self.polled: dict[Item, None] = {}
        #: items watching other epoll instances -> those instances (scans look inside)
        self.nested: dict[Item, EpollFile] = {}
        #: items of other instances that watch this one (for the nesting depth check)
        self.parents: dict[Item, None] = {}
        #: epoll_wait callers, poll/select on this fd and enclosing instances' items
        self.queue = WaitQueue()

    def __repr__(self) -> str:
        return f"EpollFile(items={len(self.items)}, ready={len(self.ready)})"

    # -- the interest list (epoll_ctl) ----------------------------------------------------
    def add(self, fd: int, file: File, events: int, data: int) -> None:
        """EPOLL_CTL_ADD (ep_insert): ELOOP for a nesting it would make too deep or
        circular, EEXIST for a present (fd, file)."""
        inner = file if isinstance(file, EpollFile) else None
        if inner is not None:
            self._loop_check(inner)
        key = (fd, file)
        if key in self.items:
            raise SyscallError(EEXIST)
        item = Item(self, fd, file, events | EPOLLERR | EPOLLHUP, data)
        self.items[key] = item
        if item.queue is None:
            self.polled[item] = None
        if inner is not None:
            self.nested[item] = inner
            inner.parents[item] = None
        item.subscribe()
        self._arm(item)

    def modify(self, fd: int, file: File, events: int, data: int) -> None:
        """EPOLL_CTL_MOD (ep_modify): new interest and data; ready now means reported
        (this is how applications re-arm ONESHOT and ET items).  An item added with
        EPOLLEXCLUSIVE cannot be modified."""
        item = self._find(fd, file)
        if item.events & EPOLLEXCLUSIVE:
            raise SyscallError(EINVAL)
        item.events = events | EPOLLERR | EPOLLHUP
        item.data = data
        self._arm(item)

    def delete(self, fd: int, file: File) -> None:
        """EPOLL_CTL_DEL."""
        self.remove(self._find(fd, file))

    def _find(self, fd: int, file: File) -> Item:
        item = self.items.get((fd, file))
        if item is None:
            raise SyscallError(ENOENT)
        return item

    def _arm(self, item: Item) -> None:
        mask = item.revents()
        item.seen = mask
        if mask:
            self.link(item)

    def remove(self, item: Item) -> None:
        item.unsubscribe()
        del self.items[(item.fd, item.file)]
        self.ready.pop(item, None)
        self.polled.pop(item, None)
        inner = self.nested.pop(item, None)
        if inner is not None:
            inner.parents.pop(item, None)

    def prune(self, item: Item) -> bool:
        """False (and the item gone) once its file was released (no reference left)."""
        if item.file.refs > 0:
            return True
        if not item.removed:
            self.remove(item)
        return False

    # -- the ready list ---------------------------------------------------------------------
    def link(self, item: Item) -> None:
        """Put the item on the ready list (if it is not there) and wake our waiters."""
        if item not in self.ready:
            self.ready[item] = None
        self.queue.notify()

    def refresh(self) -> None:
        """Before a scan: drop released files' items, and stand in for the wake-ups that
        files without a queue cannot give (readiness that appeared links the item).
        Instances inside this one are refreshed first: what they link may link ours."""
        for item, inner in list(self.nested.items()):
            if self.prune(item):
                inner.refresh()
        for item in list(self.polled):
            if not self.prune(item) or not item.enabled:
                continue
            mask = item.revents()
            if mask & ~item.seen:  # a wake-up comes with new readiness, not with less
                self.link(item)
            item.seen = mask

    def pick(self, maxevents: int) -> list[tuple[Item, int]]:
        """The first step of ep_send_events: up to maxevents (item, revents) from the
        ready list, in order; linked items that are not ready after all are unlinked.
        Nothing else changes until `consume` says which of them were delivered."""
        self.refresh()
        picked: list[tuple[Item, int]] = []
        for item in list(self.ready):
            if len(picked) >= maxevents:
                break
            mask = item.revents() if self.prune(item) else 0
            if mask:
                picked.append((item, mask))
            else:
                self.ready.pop(item, None)
        return picked

    def consume(self, delivered: list[Item]) -> None:
        """The events of these items reached the caller: a one-shot item is disabled, a
        level-triggered one goes to the tail of the ready list (behind the undelivered
        ones, as Linux splices them back in front), an edge-triggered one leaves it."""
        for item in delivered:
            self.ready.pop(item, None)
        for item in delivered:
            if item.events & EPOLLONESHOT:
                item.events &= EP_PRIVATE_BITS
            elif not item.events & EPOLLET:
                self.ready[item] = None

    def host_items(self, depth: int = 0) -> Iterator[tuple[File, int]]:
        """(file, interest) of the items whose readiness only the host can signal, in this
        instance and the ones inside it: what epoll_wait must watch besides our queue."""
        for item in self.polled:
            if item.enabled and item.file.refs > 0:
                yield item.file, item.events
        if depth < EP_MAX_NESTS:
            for inner in self.nested.values():
                if inner.refs > 0:
                    yield from inner.host_items(depth + 1)

    # -- nesting depth ----------------------------------------------------------------------
    def _loop_check(self, inner: "EpollFile") -> None:
        """ep_loop_check: ELOOP when `inner` reaches back to us, or when the longest chain
        through the new edge (below inner + 1 + above us) would exceed EP_MAX_NESTS."""
        below = inner._depth_below(self, {})
        if below > EP_MAX_NESTS or below + 1 + self._depth_above({}) > EP_MAX_NESTS:
            raise SyscallError(ELOOP)

    def _depth_below(self, into: "EpollFile", memo: dict) -> int:
        """Edges of the longest chain of live instances below us (more than the limit
        when the chain reaches `into`: the new edge would close a cycle)."""
        if self in memo:
            return memo[self]
        memo[self] = result = 0
        for inner in self.nested.values():
            if inner.refs <= 0:
                continue
            if inner is into:
                result = EP_MAX_NESTS + 1
            else:
                result = max(result, inner._depth_below(into, memo) + 1)
            if result > EP_MAX_NESTS:
                break
        memo[self] = result
        return result

    def _depth_above(self, memo: dict) -> int:
        """Edges of the longest chain of instances this one is inside."""
        if self in memo:
            return memo[self]
        result = 0
        for item in self.parents:
            if not item.removed and item.ep.refs > 0:
                result = max(result, item.ep._depth_above(memo) + 1)
        memo[self] = result
        return result

    # -- the file ---------------------------------------------------------------------------
    def poll_events(self) -> int:
        """ep_eventpoll_poll: readable while a ready-listed item is really ready."""
        self.refresh()
        for item in list(self.ready):
            if self.prune(item) and item.revents():
                return POLLIN | POLLRDNORM
            self.ready.pop(item, None)
        return 0

    def poll_queue(self) -> WaitQueue:
        return self.queue

    def poll_host(self) -> tuple[int, int] | None:
        """For poll/select on this fd: the host fd of one not-yet-ready host-backed item
        (the sentry's poll interface carries one host fd per file)."""
        for file, interest in self.host_items():
            host = file.poll_host()
            if host is not None and not file.poll_events() & interest:
                return host
        return None

    def lseek(self, offset: int, whence: int) -> int:
        return 0  # noop_llseek: the position stays 0

    def stat(self) -> os.stat_result:
        return anon_inode_stat()

    def release(self) -> None:
        """The last fd closed: every item leaves its file's queue (epoll's ep_free)."""
        for item in list(self.items.values()):
            self.remove(item)
