"""inotify(7): instances, their watches and event queues, and the notify API that reports
changes to them (Linux's fsnotify, reduced to what inotify uses).

Why this shape: Linux attaches marks to inodes and each VFS operation calls an fsnotify
hook with the inode (and the dentry's parent and name).  The sentry's objects have no
single inode type -- host files, tmpfs and overlay nodes, procfs entries -- but every one
reports (st_dev, st_ino) through stat, and that pair is what the application sees as the
identity of a file.  So a watch is keyed by that `Ident`, one `Hub` per sandbox holds every
watch of every instance, and the system call layer (syscalls/sys_inotify.py) tells the hub
what happened to which identity, after the fact, in Linux's vocabulary:

* `object_event`: something happened to an object reached by a name (open, read, write,
  attribute change); its own watch hears it, and so does its directory's watch, with the
  name (fsnotify_parent).
* `name_event`: a name appeared or went in a directory (create, delete, moves); only the
  directory hears it.
* `self_event`: only the object hears it (move-self, link-count changes).

An object's directory and name are those it was reached by, as Linux's dentry: an open
file remembers them (`OpenName`, kept per File in `_open`), renames carry them along, and
an unlinked name keeps reporting to its old directory (unless IN_EXCL_UNLINK).  An object
whose last name went is deleted (IN_DELETE_SELF, then IN_IGNORED) once no open file holds
it any more, as Linux's dentry is killed at the last reference.

The overlay root gives an object a new identity when it is copied up (its first change).
A watch on such an object is "unstable": the hub re-reads its identity after each change
(`revalidate`) and follows it (`rekey`), keeping the old identity as an alias for the open
files that still carry it.

Queues follow fs/notify/inotify: an event identical to the tail of the queue is merged into
it, past max_queued_events one IN_Q_OVERFLOW (wd -1) stands for everything lost, and read
hands out whole events (EINVAL when the next one does not fit).
"""
from __future__ import annotations

import os
import struct
import weakref
from collections import deque
from typing import TYPE_CHECKING, Callable, Iterable

from snakevisor.kernel.errors import (EAGAIN, EBADF, EEXIST, EINVAL, EMFILE, ENOSPC, ENOTTY,
                                      Block, SyscallError, WaitQueue)
from snakevisor.vfs import file as file_module
from snakevisor.vfs.epoll import anon_inode_stat
from snakevisor.vfs.file import POLLIN, POLLRDNORM, File

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

IN_ACCESS, IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x1, 0x2, 0x4, 0x8
IN_CLOSE_NOWRITE, IN_OPEN, IN_MOVED_FROM, IN_MOVED_TO = 0x10, 0x20, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
IN_ALL_EVENTS = 0xFFF
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK = 0x01000000, 0x02000000, 0x04000000
IN_MASK_CREATE, IN_MASK_ADD, IN_ISDIR, IN_ONESHOT = 0x10000000, 0x20000000, 0x40000000, 0x80000000
#: every bit inotify_add_watch accepts (anything else is EINVAL)
ALL_INOTIFY_BITS = (IN_ALL_EVENTS | IN_UNMOUNT | IN_Q_OVERFLOW | IN_IGNORED | IN_ONLYDIR
                    | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE | IN_MASK_ADD | IN_ISDIR
                    | IN_ONESHOT)
#: what a watch keeps of the mask it was given (the rest steers inotify_add_watch itself)
WATCH_BITS = IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK
#: self events Linux never flags IN_ISDIR for inotify (kept so for old programs)
_NO_ISDIR = IN_MOVE_SELF | IN_DELETE_SELF

#: /proc/sys/fs/inotify defaults (max_user_watches is sized by the host's memory)
MAX_QUEUED_EVENTS = 16384
MAX_USER_INSTANCES = 128
FIONREAD = 0x541B
INOTIFY_IOC_SETNEXTWD = 0x40044900
INT_MAX = 0x7FFFFFFF

_EVENT = struct.Struct("<iIII")  # struct inotify_event: wd, mask, cookie, len (then name)

Ident = tuple  # (st_dev, st_ino) as stat reports it in the sandbox


def ident_of(st) -> Ident:
    return (st.st_dev, st.st_ino)


def _host_max_user_watches() -> int:
    try:
        with open("/proc/sys/fs/inotify/max_user_watches") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 8192


class Event:
    """One queued struct inotify_event."""

    __slots__ = ("wd", "mask", "cookie", "name")

    def __init__(self, wd: int, mask: int, cookie: int, name: bytes) -> None:
        self.wd, self.mask, self.cookie, self.name = wd, mask, cookie, name

    @property
    def size(self) -> int:
        """16 bytes, then the name NUL-padded to a multiple of 16 (Linux's rounding)."""
        return _EVENT.size + ((len(self.name) + 16) & ~15 if self.name else 0)

    def pack(self) -> bytes:
        padded = (len(self.name) + 16) & ~15 if self.name else 0
        return _EVENT.pack(self.wd, self.mask, self.cookie, padded) + self.name.ljust(padded, b"\0")


class Watch:
    """One inotify_add_watch of one instance on one identity."""

    __slots__ = ("wd", "mask", "instance", "ident", "path")

    def __init__(self, wd: int, mask: int, instance: "InotifyFile", ident: Ident,
                 path: bytes | None) -> None:
        self.wd, self.mask, self.instance, self.ident = wd, mask, instance, ident
        self.path = path  #: absolute sandbox path it was added by (followed across renames)


class InotifyFile(File):
    """An inotify instance: its watches by wd and its event queue."""

    def __init__(self, hub: "Hub", nonblock: bool, owner: int) -> None:
        super().__init__(os.O_RDONLY | (os.O_NONBLOCK if nonblock else 0), "anon_inode:inotify")
        self.hub = hub
        self.owner = owner  #: the euid charged for this instance and its watches
        self.by_wd: dict[int, Watch] = {}
        self.by_ident: dict[Ident, Watch] = {}
        self.next_wd = 1
        self.events: deque[Event] = deque()
        self.overflow_queued = False
        self.max_events = MAX_QUEUED_EVENTS
        self.queue = WaitQueue()
        self.closed = False

    def __repr__(self) -> str:
        return f"InotifyFile(watches={len(self.by_wd)}, queued={len(self.events)})"

    # -- the queue ------------------------------------------------------------------------
    def enqueue(self, wd: int, mask: int, cookie: int = 0, name: bytes = b"") -> None:
        """fsnotify_insert_event with inotify_merge: full queue -> one overflow event;
        an event equal to the tail (mask, wd, name; not the cookie) is dropped."""
        events = self.events
        if len(events) >= self.max_events:
            if not self.overflow_queued:
                self.overflow_queued = True
                events.append(Event(-1, IN_Q_OVERFLOW, 0, b""))
                self.queue.notify()
            return
        if events:
            last = events[-1]
            if not last.mask & IN_IGNORED and last.mask == mask and last.wd == wd \
                    and last.name == name:
                return
        events.append(Event(wd, mask, cookie, name))
        self.queue.notify()

    def read(self, task: "Task", count: int) -> bytes:
        events = self.events
        if not events:
            if self.flags & os.O_NONBLOCK:
                raise SyscallError(EAGAIN)
            raise Block(queue=self.queue)
        out = []
        while events:
            event = events[0]
            size = event.size
            if size > count:
                if not out:
                    raise SyscallError(EINVAL)
                break
            events.popleft()
            if event.mask == IN_Q_OVERFLOW and event.wd == -1:
                self.overflow_queued = False
            out.append(event.pack())
            count -= size
        return b"".join(out)

    def write(self, task: "Task", data: bytes) -> int:
        raise SyscallError(EBADF)  # opened O_RDONLY

    def lseek(self, offset: int, whence: int) -> int:
        return 0  # noop_llseek

    def pending_bytes(self) -> int:
        return sum(event.size for event in self.events)

    def ioctl(self, task: "Task", request: int, arg: int) -> int:
        if request == FIONREAD:
            task.tg.mm.write(arg, struct.pack("<i", self.pending_bytes()))
            return 0
        if request == INOTIFY_IOC_SETNEXTWD:  # CRIU: where the wd numbering goes on
            if not 1 <= arg <= INT_MAX:
                raise SyscallError(EINVAL)
            self.next_wd = arg
            return 0
        raise SyscallError(ENOTTY)

    def poll_events(self) -> int:
        return POLLIN | POLLRDNORM if self.events else 0

    def poll_queue(self) -> WaitQueue:
        return self.queue

    def stat(self) -> os.stat_result:
        return anon_inode_stat()

    def fdinfo(self) -> str:
        """The lines Linux's /proc/PID/fdinfo adds for an inotify fd (without f_handle)."""
        return "".join(f"inotify wd:{w.wd:x} ino:{w.ident[1]:x} sdev:{_kdev(w.ident[0]):x} "
                       f"mask:{w.mask:x} ignored_mask:0\n" for w in self.by_wd.values())

    def release(self) -> None:
        """The last reference went: every watch goes, silently."""
        if self.closed:
            return
        self.closed = True
        for watch in list(self.by_wd.values()):
            self._forget(watch)
        self.events.clear()
        self.hub.instance_closed(self)

    # -- watches ----------------------------------------------------------------------------
    def add_watch(self, ident: Ident, mask: int, path: bytes | None, unstable: bool) -> int:
        """inotify_update_watch: the existing watch on the identity (its mask replaced, or
        extended with IN_MASK_ADD; EEXIST with IN_MASK_CREATE), or a new one."""
        hub = self.hub
        ident = hub.canon(ident)
        bits = mask & WATCH_BITS
        watch = self.by_ident.get(ident)
        if watch is not None:
            if mask & IN_MASK_CREATE:
                raise SyscallError(EEXIST)
            watch.mask = watch.mask | bits if mask & IN_MASK_ADD else bits
            return watch.wd
        if hub.watches_of(self.owner) >= hub.max_user_watches:
            raise SyscallError(ENOSPC)
        wd = self.next_wd
        while wd in self.by_wd:
            wd = wd + 1 if wd < INT_MAX else 1
        self.next_wd = wd + 1 if wd < INT_MAX else 1
        watch = Watch(wd, bits, self, ident, path)
        self.by_wd[wd] = watch
        self.by_ident[ident] = watch
        hub.attach(watch, unstable)
        return wd

    def rm_watch(self, wd: int) -> None:
        watch = self.by_wd.get(wd)
        if watch is None:
            raise SyscallError(EINVAL)
        self.drop(watch)

    def deliver(self, watch: Watch, mask: int, name: bytes = b"", cookie: int = 0) -> None:
        """Queue an event the watch asked for; a one-shot watch then goes (IN_IGNORED)."""
        self.enqueue(watch.wd, mask, cookie, name)
        if watch.mask & IN_ONESHOT:
            self.drop(watch)

    def drop(self, watch: Watch) -> None:
        """Remove a watch, telling the application with IN_IGNORED."""
        if self.by_wd.get(watch.wd) is not watch:
            return
        self.enqueue(watch.wd, IN_IGNORED)
        self._forget(watch)

    def _forget(self, watch: Watch) -> None:
        del self.by_wd[watch.wd]
        if self.by_ident.get(watch.ident) is watch:
            del self.by_ident[watch.ident]
        self.hub.detach(watch)


def _kdev(dev: int) -> int:
    """A dev_t as the kernel prints it in fdinfo (MKDEV: major << 20 | minor)."""
    return os.major(dev) << 20 | os.minor(dev)


class OpenName:
    """What Linux's file->f_path gives fsnotify for an open file: the object, and the
    directory and name it was reached by (followed across renames; `unlinked` once that
    name was removed)."""

    __slots__ = ("hub", "ident", "is_dir", "parent", "name", "unlinked", "notify", "writable")

    def __init__(self, hub: "Hub", ident: Ident | None, is_dir: bool, parent: Ident | None,
                 name: bytes, notify: bool, writable: bool) -> None:
        self.hub, self.ident, self.is_dir = hub, ident, is_dir
        self.parent, self.name = parent, name
        self.unlinked = False
        self.notify = notify  #: O_PATH descriptions hold the object but report nothing
        self.writable = writable


#: every File some sandbox's hub knows (across sandboxes: the release hook has no kernel)
_open: "weakref.WeakKeyDictionary[File, OpenName]" = weakref.WeakKeyDictionary()


def _last_put(file: File) -> None:
    """vfs.file.put's hook: a description's last reference is going (IN_CLOSE_*)."""
    info = _open.pop(file, None)
    if info is not None:
        info.hub.closed(info)


class Hub:
    """Every watch of one sandbox, by identity, and the notify API."""

    def __init__(self, kernel: object) -> None:
        self.kernel = kernel
        self.watches: dict[Ident, list[Watch]] = {}
        self.count = 0  #: watches in the sandbox: 0 means nothing is reported at all
        self.alias: dict[Ident, Ident] = {}  #: identities the overlay replaced (copy-up)
        self.unstable: set[Watch] = set()
        self.doomed: set[Ident] = set()  #: nameless objects still held open
        self.open_count: dict[Ident, int] = {}
        self.instances: dict[int, int] = {}  #: euid -> instances (max_user_instances)
        self.per_user: dict[int, int] = {}  #: euid -> watches (max_user_watches)
        self.max_user_watches = _host_max_user_watches()
        self.cookie = 0
        #: called when the last watch of the sandbox goes (nothing is reported any more)
        self.on_idle: Callable[[], None] | None = None

    # -- instances and watches ----------------------------------------------------------------
    def new_instance(self, nonblock: bool, euid: int) -> InotifyFile:
        if self.instances.get(euid, 0) >= MAX_USER_INSTANCES:
            raise SyscallError(EMFILE)
        self.instances[euid] = self.instances.get(euid, 0) + 1
        return InotifyFile(self, nonblock, euid)

    def instance_closed(self, instance: InotifyFile) -> None:
        self.instances[instance.owner] -= 1

    def watches_of(self, euid: int) -> int:
        return self.per_user.get(euid, 0)

    def attach(self, watch: Watch, unstable: bool) -> None:
        self.watches.setdefault(watch.ident, []).append(watch)
        owner = watch.instance.owner
        self.per_user[owner] = self.per_user.get(owner, 0) + 1
        if unstable:
            self.unstable.add(watch)
        self.count += 1

    def detach(self, watch: Watch) -> None:
        group = self.watches.get(watch.ident)
        if group is not None and watch in group:
            group.remove(watch)
            if not group:
                del self.watches[watch.ident]
        owner = watch.instance.owner
        self.per_user[owner] -= 1
        self.unstable.discard(watch)
        self.count -= 1
        if self.count == 0:
            self.alias.clear()
            self.doomed.clear()
            if self.on_idle is not None:
                self.on_idle()

    def canon(self, ident: Ident) -> Ident:
        return self.alias.get(ident, ident) if self.alias else ident

    def _watching(self, ident: Ident | None) -> list[Watch]:
        if ident is None:
            return []
        group = self.watches.get(self.canon(ident))
        return list(group) if group else []

    # -- open files -----------------------------------------------------------------------------
    def track(self, file: File, ident: Ident | None, is_dir: bool, parent: Ident | None,
              name: bytes) -> OpenName:
        """Remember an open description's object and name (its IN_CLOSE_* and the events
        of reads and writes through it need them)."""
        old = _open.pop(file, None)
        if old is not None and old.hub is self:
            self._unhold(old)
        if ident is not None:
            ident = self.canon(ident)
            self.open_count[ident] = self.open_count.get(ident, 0) + 1
        info = OpenName(self, ident, is_dir, parent, name, not file.is_path_only, file.writable)
        _open[file] = info
        return info

    @staticmethod
    def tracked(file: File) -> OpenName | None:
        return _open.get(file)

    def _unhold(self, info: OpenName) -> Ident | None:
        if info.ident is None:
            return None
        ident = self.canon(info.ident)
        left = self.open_count.get(ident, 0) - 1
        if left > 0:
            self.open_count[ident] = left
        else:
            self.open_count.pop(ident, None)
        return ident

    def closed(self, info: OpenName) -> None:
        """A tracked description was released: IN_CLOSE_*, then the deferred
        IN_DELETE_SELF of an object that had lost its last name meanwhile."""
        if info.notify and self.count:
            mask = IN_CLOSE_WRITE if info.writable else IN_CLOSE_NOWRITE
            self.object_event(info.ident, info.is_dir, info.parent, info.name, mask,
                              unlinked=info.unlinked, by_file=True)
        ident = self._unhold(info)
        if ident is not None and ident in self.doomed and ident not in self.open_count:
            self.doomed.discard(ident)
            self._delete_self(ident)

    def _names(self) -> Iterable[OpenName]:
        return [info for info in list(_open.values()) if info.hub is self]

    # -- the notify API -------------------------------------------------------------------------
    def object_event(self, ident: Ident | None, is_dir: bool, parent: Ident | None,
                     name: bytes, mask: int, unlinked: bool = False,
                     by_file: bool = False) -> None:
        """fsnotify_parent + the object's own marks: the directory's watch (with the name)
        first, then the object's.  Events through an open file (`by_file`) of a name since
        unlinked skip IN_EXCL_UNLINK watches."""
        if is_dir:
            mask |= IN_ISDIR
        refuse = IN_EXCL_UNLINK if unlinked and by_file else 0
        if name:
            for watch in self._watching(parent):
                if watch.mask & mask & IN_ALL_EVENTS and not watch.mask & refuse:
                    watch.instance.deliver(watch, mask, name)
        for watch in self._watching(ident):
            if watch.mask & mask & IN_ALL_EVENTS and not watch.mask & refuse:
                watch.instance.deliver(watch, mask)

    def file_event(self, info: OpenName, mask: int, by_file: bool = True) -> None:
        """An event through an open description (read, write, fchmod...)."""
        if info.notify:
            self.object_event(info.ident, info.is_dir, info.parent, info.name, mask,
                              unlinked=info.unlinked, by_file=by_file)

    def name_event(self, parent: Ident | None, mask: int, name: bytes, cookie: int = 0) -> None:
        """fsnotify_name: only the directory hears of the name."""
        for watch in self._watching(parent):
            if watch.mask & mask & IN_ALL_EVENTS:
                watch.instance.deliver(watch, mask, name, cookie)

    def self_event(self, ident: Ident | None, mask: int, is_dir: bool = False) -> None:
        """fsnotify_inode: only the object's own watches."""
        if is_dir and not mask & _NO_ISDIR:
            mask |= IN_ISDIR
        for watch in self._watching(ident):
            if watch.mask & mask & IN_ALL_EVENTS:
                watch.instance.deliver(watch, mask)

    def created(self, parent: Ident | None, name: bytes, is_dir: bool) -> None:
        self.name_event(parent, IN_CREATE | (IN_ISDIR if is_dir else 0), name)

    def linked(self, ident: Ident | None, parent: Ident | None, name: bytes) -> None:
        """link(2): the object's link count changed, a name appeared."""
        self.self_event(ident, IN_ATTRIB)
        self.name_event(parent, IN_CREATE, name)

    def removed(self, parent: Ident | None, name: bytes, ident: Ident | None, is_dir: bool,
                nlink: int, rmdir: bool) -> None:
        """unlink/rmdir of `name`, which held `ident` with `nlink` links before."""
        self._unlink_names(parent, name)
        if not rmdir:
            self.self_event(ident, IN_ATTRIB, is_dir)  # fsnotify_link_count
        if ident is not None and (rmdir or is_dir or nlink <= 1):
            self._gone(ident)
        self.name_event(parent, IN_DELETE | (IN_ISDIR if is_dir else 0), name)

    def renamed(self, src_parent: Ident | None, src_name: bytes, dst_parent: Ident | None,
                dst_name: bytes, moved: Ident | None, is_dir: bool,
                replaced: "tuple[Ident, bool, int] | None") -> None:
        """fsnotify_move: MOVED_FROM and MOVED_TO with one cookie, the replaced object's
        link count, the moved object's MOVE_SELF; then the replaced object goes."""
        cookie = self.next_cookie()
        isdir = IN_ISDIR if is_dir else 0
        self.name_event(src_parent, IN_MOVED_FROM | isdir, src_name, cookie)
        self.name_event(dst_parent, IN_MOVED_TO | isdir, dst_name, cookie)
        if replaced is not None:
            self.self_event(replaced[0], IN_ATTRIB, replaced[1])
        self.self_event(moved, IN_MOVE_SELF)
        if replaced is not None:
            self._unlink_names(dst_parent, dst_name)
            if replaced[1] or replaced[2] <= 1:
                self._gone(replaced[0])
        self._move_names({(self._key(src_parent), src_name): (dst_parent, dst_name)})

    def exchanged(self, a_parent: Ident | None, a_name: bytes, a: Ident | None, a_dir: bool,
                  b_parent: Ident | None, b_name: bytes, b: Ident | None, b_dir: bool) -> None:
        """renameat2(RENAME_EXCHANGE): two moves, each with its own cookie."""
        for (sp, sn, dp, dn, obj, isdir) in ((a_parent, a_name, b_parent, b_name, a, a_dir),
                                             (b_parent, b_name, a_parent, a_name, b, b_dir)):
            cookie = self.next_cookie()
            flag = IN_ISDIR if isdir else 0
            self.name_event(sp, IN_MOVED_FROM | flag, sn, cookie)
            self.name_event(dp, IN_MOVED_TO | flag, dn, cookie)
            self.self_event(obj, IN_MOVE_SELF)
        self._move_names({(self._key(a_parent), a_name): (b_parent, b_name),
                          (self._key(b_parent), b_name): (a_parent, a_name)})

    def next_cookie(self) -> int:
        self.cookie = (self.cookie + 1) & 0xFFFFFFFF or 1
        return self.cookie

    def _key(self, ident: Ident | None) -> Ident | None:
        return None if ident is None else self.canon(ident)

    def _unlink_names(self, parent: Ident | None, name: bytes) -> None:
        key = self._key(parent)
        for info in self._names():
            if info.name == name and self._key(info.parent) == key:
                info.unlinked = True

    def _move_names(self, moves: dict) -> None:
        for info in self._names():
            if info.unlinked:
                continue
            target = moves.get((self._key(info.parent), info.name))
            if target is not None:
                info.parent, info.name = target

    def _gone(self, ident: Ident) -> None:
        """The object lost its last name: deleted now, or at its last close."""
        ident = self.canon(ident)
        if ident in self.open_count:
            if ident in self.watches:
                self.doomed.add(ident)
            return
        self._delete_self(ident)

    def _delete_self(self, ident: Ident) -> None:
        for watch in self._watching(ident):
            if watch.mask & IN_DELETE_SELF:
                watch.instance.enqueue(watch.wd, IN_DELETE_SELF)
            watch.instance.drop(watch)

    # -- the overlay's copy-up ------------------------------------------------------------------
    def moved_paths(self, moves: "list[tuple[bytes, bytes]]") -> None:
        """Renames moved each old path to its new one (at once: an exchange swaps two):
        the paths of watches at or below them follow."""
        for group in self.watches.values():
            for watch in group:
                path = watch.path
                if path is None:
                    continue
                for old, new in moves:
                    if path == old or path.startswith(old + b"/"):
                        watch.path = new + path[len(old):]
                        break

    def revalidate(self, touched: "Iterable[bytes]", current: Callable[[bytes], "Ident | None"],
                   still_unstable: Callable[[bytes, Ident], bool]) -> None:
        """After a change to the `touched` paths: unstable watches on them or on their
        ancestors (copy-up copies the parents first) whose path now shows another
        identity follow it."""
        touched = list(touched)
        for watch in list(self.unstable):
            path = watch.path
            if path is None or not any(t == path or t.startswith(path.rstrip(b"/") + b"/")
                                       for t in touched):
                continue
            new = current(path)
            if new is None:
                continue
            if new != watch.ident:
                self.rekey(watch.ident, new)
            if not still_unstable(path, new):
                self.unstable.discard(watch)

    def rekey(self, old: Ident, new: Ident) -> None:
        """Identity `old` is now `new`: its watches, open counts and name references move."""
        old, new = self.canon(old), self.canon(new)
        if old == new:
            return
        for src, dst in list(self.alias.items()):
            if dst == old:
                self.alias[src] = new
        self.alias[old] = new
        moved = self.watches.pop(old, [])
        for watch in moved:
            instance = watch.instance
            if instance.by_ident.get(old) is watch:
                del instance.by_ident[old]
                instance.by_ident.setdefault(new, watch)
            watch.ident = new
        if moved:
            self.watches.setdefault(new, []).extend(moved)
        if old in self.open_count:
            self.open_count[new] = self.open_count.get(new, 0) + self.open_count.pop(old)
        if old in self.doomed:
            self.doomed.discard(old)
            self.doomed.add(new)


def get_hub(kernel: object) -> Hub:
    """The sandbox's hub, made at its first inotify instance (kernel.inotify)."""
    hub = getattr(kernel, "inotify", None)
    if hub is None:
        hub = Hub(kernel)
        kernel.inotify = hub  # type: ignore[attr-defined]
        file_module.on_last_put = _last_put
    return hub
