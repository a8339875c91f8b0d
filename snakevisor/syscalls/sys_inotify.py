"""inotify_init, inotify_init1, inotify_add_watch, inotify_rm_watch -- and where the
events come from.

The instances and the notify API are snakevisor.vfs.inotify.  Events are produced here, by
interposing on the sandbox's system call table while (and only while) some watch exists:
the kernel dispatches through `kernel.handlers`, so the first watch swaps in a copy of the
table whose file calls are wrapped (the call runs unchanged, then its success is reported
to the hub), and the last watch going restores the shared table.  A sandbox without
watches therefore pays nothing at all on any call -- not even an attribute check -- and the
file-call modules stay free of inotify code.  Linux's fsnotify hooks sit in the VFS; the
syscall boundary is the sentry's equivalent until its file systems share one VFS layer.

A wrapper looks at its object *before* the call when the call may remove it or give it a
new identity (unlink, rename, a first write through the overlay), and reports after it.
Objects are named by `Place`: the lexical absolute path (the way the sandbox root routes
paths), the identity of the directory holding the name, and what the name holds.

Known gaps: execve's own open/read/close of the program are not reported; events for
changes made outside the sandbox (the host side of --writable-root or volumes) are not seen.
"""
from __future__ import annotations

import os
import posixpath
import stat as st_
from typing import TYPE_CHECKING, Callable, NamedTuple

from snakevisor.kernel.errors import EBADF, EINVAL, ENOTDIR, SyscallError
from snakevisor.syscalls import HANDLERS, syscall
from snakevisor.syscalls.args import (AT_EMPTY_PATH, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW,
                                      AT_SYMLINK_NOFOLLOW, PATH_MAX, read_path, s32, u32)
from snakevisor.syscalls.numbers import SYSCALL_NUMBERS
from snakevisor.syscalls.sys_file import _nofile
from snakevisor.vfs.inotify import (ALL_INOTIFY_BITS, IN_ACCESS, IN_ATTRIB, IN_DONT_FOLLOW,
                                    IN_MASK_ADD, IN_MASK_CREATE, IN_MODIFY, IN_ONLYDIR, IN_OPEN,
                                    Hub, Ident, InotifyFile, OpenName, get_hub, ident_of)

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

IN_CLOEXEC, IN_NONBLOCK = os.O_CLOEXEC, os.O_NONBLOCK
O_ACCMODE, O_CREAT, O_EXCL, O_TRUNC = 0o3, os.O_CREAT, os.O_EXCL, os.O_TRUNC
O_NOFOLLOW, O_TMPFILE_BIT = os.O_NOFOLLOW, 0o20000000
RENAME_EXCHANGE = 2
UTIME_OMIT = (1 << 30) - 2
NO_ID = 0xFFFFFFFF  # chown's "leave it alone"
R_OK = 4
MAXSYMLINKS = 40
AF_UNIX = 1


# -- inotify_init, inotify_init1 --------------------------------------------------------------
def _init(task: "Task", flags: int) -> int:
    if flags & ~(IN_CLOEXEC | IN_NONBLOCK):
        raise SyscallError(EINVAL)
    instance = get_hub(task.kernel).new_instance(bool(flags & IN_NONBLOCK), task.tg.creds.euid)
    try:
        return task.tg.fds.install(instance, bool(flags & IN_CLOEXEC), 0, _nofile(task))
    except SyscallError:
        instance.release()
        raise


@syscall("inotify_init")
def sys_inotify_init(task: "Task", *_: int) -> int:
    return _init(task, 0)


@syscall("inotify_init1")
def sys_inotify_init1(task: "Task", flags: int, *_: int) -> int:
    return _init(task, s32(flags))


def _fdget(task: "Task", fd: int) -> "File":
    """Linux's fdget: EBADF for a closed fd and for an O_PATH one."""
    file = task.tg.fds.files.get(u32(fd))
    if file is None or file.is_path_only:
        raise SyscallError(EBADF)
    return file


def _instance(file: "File") -> InotifyFile:
    """EINVAL for anything but an inotify fd."""
    if not isinstance(file, InotifyFile):
        raise SyscallError(EINVAL)
    return file


# -- inotify_add_watch, inotify_rm_watch ------------------------------------------------------
@syscall("inotify_add_watch", partial="events come from the sandbox's own file calls: "
                                       "changes made on the host side (volumes, --writable-root) "
                                       "and execve's opening of the program are not seen; no "
                                       "IN_UNMOUNT")
def sys_inotify_add_watch(task: "Task", fd: int, path_addr: int, mask: int, *_: int) -> int:
    mask = u32(mask)
    if mask & ~ALL_INOTIFY_BITS or not mask:
        raise SyscallError(EINVAL)
    file = _fdget(task, fd)
    if mask & IN_MASK_ADD and mask & IN_MASK_CREATE:
        raise SyscallError(EINVAL)
    instance = _instance(file)
    path = read_path(task, path_addr)
    follow = not mask & IN_DONT_FOLLOW
    root = task.tg.fs.root
    st = root.stat(task, AT_FDCWD, path, follow)
    if mask & IN_ONLYDIR and not st_.S_ISDIR(st.st_mode):
        raise SyscallError(ENOTDIR)
    root.access_at(task, AT_FDCWD, path, R_OK, True, follow)  # inode_permission(MAY_READ)
    ident = ident_of(st)
    place = locate(task, AT_FDCWD, path, follow)
    text = place.text if place.st is not None and ident_of(place.st) == ident else None
    wd = instance.add_watch(ident, mask, text, text is not None and _unstable(task, text, ident))
    if not _installed(task.kernel):
        _install(task)
    return wd


@syscall("inotify_rm_watch")
def sys_inotify_rm_watch(task: "Task", fd: int, wd: int, *_: int) -> int:
    _instance(_fdget(task, fd)).rm_watch(s32(wd))
    return 0


# -- naming objects ---------------------------------------------------------------------------
class Place(NamedTuple):
    """An object as a path names it: fsnotify's dentry."""

    text: bytes | None  #: absolute, lexically normalised path of the name (None: unknown)
    parent: Ident | None  #: identity of the directory holding the name
    name: bytes  #: the last component
    st: object | None  #: stat of what the name holds (None: nothing yet)


def _stat(task: "Task", path: bytes, dirfd: int = AT_FDCWD, follow: bool = False):
    try:
        return task.tg.fs.root.stat(task, dirfd, path, follow)
    except (SyscallError, OSError):
        return None


def _absolute(task: "Task", dirfd: int, path: bytes) -> bytes | None:
    if path[:1] == b"/":
        text = path
    else:
        if dirfd == AT_FDCWD:
            base = task.tg.fs.cwd
        else:
            file = task.tg.fds.files.get(u32(dirfd))
            if file is None:
                return None
            base = file.path
        if not base.startswith("/"):
            return None
        text = os.fsencode(base) + b"/" + path
    return b"/" + posixpath.normpath(text).lstrip(b"/")


def _mounts(task: "Task") -> dict:
    return getattr(task.tg.fs.root, "mounts", None) or {}


def _parent_of(task: "Task", text: bytes) -> Ident | None:
    """The directory holding the name (none for the root and for mount points: a mount's
    root is IS_ROOT in Linux, its events go to no parent)."""
    if text == b"/" or text in _mounts(task):
        return None
    st = _stat(task, posixpath.dirname(text), follow=True)
    return ident_of(st) if st is not None else None


def locate(task: "Task", dirfd: int, path: bytes, follow: bool) -> Place:
    """The name a path reaches (after a final symlink when `follow`) and its directory."""
    text = _absolute(task, dirfd, path)
    if text is None:
        return Place(None, None, b"", _stat(task, path, dirfd, follow))
    st = _stat(task, text)
    if follow and st is not None and st_.S_ISLNK(st.st_mode):
        real = _stat(task, text, follow=True)
        root = task.tg.fs.root
        for _ in range(MAXSYMLINKS):
            try:
                target = root.readlink(task, AT_FDCWD, text)
            except (SyscallError, OSError):
                break
            joined = target if target[:1] == b"/" else posixpath.dirname(text) + b"/" + target
            text = b"/" + posixpath.normpath(joined).lstrip(b"/")
            st = _stat(task, text)
            if st is None or not st_.S_ISLNK(st.st_mode):
                break
        if real is not None and (st is None or ident_of(st) != ident_of(real)):
            return Place(None, None, b"", real)  # a magic link (/proc/PID/fd/N): no name
    return Place(text, _parent_of(task, text), posixpath.basename(text), st)


def _unstable(task: "Task", text: bytes, ident: Ident) -> bool:
    """Is this a lower-layer object of an overlay (its identity changes at copy-up)?"""
    mounts = _mounts(task)
    point = max((p for p in mounts if text == p or text.startswith(p.rstrip(b"/") + b"/")),
                key=len, default=None)
    upper = getattr(mounts.get(point), "upper", None) if point is not None else None
    return upper is not None and ident[0] != getattr(upper, "dev", ident[0])


def _revalidate(hub: Hub, task: "Task", seen: object) -> None:
    """Unstable watches on or above the paths a call touched may have been copied up."""
    def current(path: bytes) -> Ident | None:
        st = _stat(task, path)
        return ident_of(st) if st is not None else None

    hub.revalidate(_texts(seen), current, lambda path, ident: _unstable(task, path, ident))


def _texts(seen: object) -> list[bytes]:
    """The paths in what a wrapper saw: its Places, and the paths of open files."""
    if isinstance(seen, Place):
        return [seen.text] if seen.text is not None else []
    if isinstance(seen, tuple):
        return [text for item in seen for text in _texts(item)]
    path = getattr(seen, "path", None)  # a File
    return [os.fsencode(path)] if isinstance(path, str) and path.startswith("/") else []


def _name_of(hub: Hub, task: "Task", file: "File", place: Place | None = None) -> OpenName:
    """The open description's object and name: tracked at open, else found now."""
    info = hub.tracked(file)
    if info is not None and info.hub is hub and place is None:
        return info
    try:
        st = file.stat()
    except (SyscallError, OSError):
        st = None
    ident = ident_of(st) if st is not None else None
    if place is None and file.path.startswith("/"):
        place = locate(task, AT_FDCWD, os.fsencode(file.path), False)
        if place.st is None or ident is None or ident_of(place.st) != ident:
            place = None  # the path now names something else
    is_dir = st is not None and st_.S_ISDIR(st.st_mode)
    return hub.track(file, ident, is_dir, place.parent if place else None,
                     place.name if place else b"")


def _fd_info(hub: Hub, task: "Task", fd: int) -> OpenName | None:
    file = task.tg.fds.files.get(u32(fd))
    return None if file is None else _name_of(hub, task, file)


# -- installing the wrappers ------------------------------------------------------------------
def _installed(kernel) -> bool:
    return getattr(kernel, "_inotify_base", None) is not None


def _install(task: "Task") -> None:
    """The first watch: wrap the file calls and learn the files already open."""
    kernel = task.kernel
    rebase(kernel, getattr(kernel, "handlers", None) or HANDLERS)
    hub = get_hub(kernel)
    hub.on_idle = lambda: _uninstall(kernel)
    groups = getattr(kernel, "thread_groups", None) or {task.tg.pid: task.tg}
    seen: set[int] = set()
    for tg in list(groups.values()):
        fds = getattr(tg, "fds", None)
        if fds is None or id(fds) in seen:
            continue
        seen.add(id(fds))
        for file in list(fds.files.values()):
            info = hub.tracked(file)
            if info is None or info.hub is not hub:
                _name_of(hub, task, file)


def rebase(kernel, base: list) -> None:
    """Wrap the file calls of base (the table the sandbox would use without watches: it
    changes when --oci-seccomp adds a pod member's profile) and dispatch through that."""
    table = list(base)
    for name, wrap in WRAPPERS.items():
        nr = SYSCALL_NUMBERS[name]
        if table[nr] is not None:
            table[nr] = wrap(table[nr])
    kernel._inotify_base = base
    kernel.handlers = table


def _uninstall(kernel) -> None:
    """The last watch went: the shared table again."""
    base = getattr(kernel, "_inotify_base", None)
    if base is not None:
        kernel.handlers = base
        kernel._inotify_base = None


Handler = Callable[..., int]


def _fd_calls(pairs: tuple[tuple[int, int], ...], ok: Callable[[int], bool],
              by_file: bool = True) -> Callable[[Handler], Handler]:
    """Calls on fds (read, write...): (argument index, event) pairs reported when
    ok(result).  `by_file`: Linux reports it through the file (fsnotify_file), so an
    unlinked name's IN_EXCL_UNLINK watches skip it; attribute changes are not."""
    def wrap(orig: Handler) -> Handler:
        def handler(task: "Task", *args: int) -> int:
            result = orig(task, *args)
            if ok(result):
                try:
                    _fd_events(task, args, pairs, by_file)
                except (SyscallError, OSError):
                    pass  # a lookup failing now only loses the event
            return result
        return handler
    return wrap


def _fd_events(task: "Task", args: tuple, pairs: tuple[tuple[int, int], ...],
               by_file: bool) -> None:
    hub = task.kernel.inotify
    files = task.tg.fds.files
    for index, mask in pairs:
        file = files.get(u32(args[index]))
        if file is not None:
            hub.file_event(_name_of(hub, task, file), mask, by_file)
    if hub.unstable and not by_file:  # fchmod & co. copy a lower object up
        _revalidate(hub, task, tuple(files.get(u32(args[i])) for i, _ in pairs))


def _path_call(pre: Callable, post: Callable, ok: Callable[[int], bool] = lambda r: r == 0
               ) -> Callable[[Handler], Handler]:
    """Calls that name objects: pre(task, args) looks before, post(hub, task, args, result,
    seen) reports after success; then unstable watches are re-read."""
    def wrap(orig: Handler) -> Handler:
        def handler(task: "Task", *args: int) -> int:
            try:
                seen = pre(task, args)
            except (SyscallError, OSError):
                seen = None
            result = orig(task, *args)
            if seen is not None and ok(result):
                hub = task.kernel.inotify
                try:
                    post(hub, task, args, result, seen)
                    if hub.unstable:
                        _revalidate(hub, task, seen)
                except (SyscallError, OSError):
                    pass  # a lookup failing now only loses the event
            return result
        return handler
    return wrap


def _report(hub: Hub, target: "Place | OpenName", mask: int) -> None:
    """An attribute or data change of a path's or an fd's object (dentry-based: never
    filtered by IN_EXCL_UNLINK)."""
    if isinstance(target, OpenName):
        hub.file_event(target, mask, by_file=False)
    elif target.st is not None:
        hub.object_event(ident_of(target.st), st_.S_ISDIR(target.st.st_mode), target.parent,
                         target.name, mask)


def _target(task: "Task", dirfd: int, addr: int, follow: bool, empty_ok: bool):
    """What an *at call works on: the named object, or dirfd's own file (AT_EMPTY_PATH
    with "", or a NULL path where the call allows it)."""
    if addr:
        path = task.tg.mm.read_cstring(addr, PATH_MAX)
        if path:
            return locate(task, dirfd, path, follow)
        if not empty_ok:
            return None
    if dirfd == AT_FDCWD:
        return locate(task, AT_FDCWD, b".", True)
    return _fd_info(get_hub(task.kernel), task, dirfd)


# -- opening ------------------------------------------------------------------------------------
def _open_pre(dirfd: Callable, path: Callable, flags: Callable) -> Callable:
    def pre(task: "Task", args: tuple) -> tuple[int, Place]:
        how = flags(task, args)
        follow = not how & O_NOFOLLOW and not (how & O_CREAT and how & O_EXCL)
        return how, locate(task, dirfd(args), read_path(task, path(args)), follow)
    return pre


def _open_post(hub: Hub, task: "Task", args: tuple, fd: int, seen: tuple[int, Place]) -> None:
    """IN_CREATE for a new file, IN_OPEN, IN_MODIFY for O_TRUNC of an existing one."""
    flags, place = seen
    file = task.tg.fds.files.get(fd)
    if file is None:
        return
    if flags & O_TMPFILE_BIT:
        place = Place(None, None, b"", None)  # unnamed: reported to no directory
    info = _name_of(hub, task, file, place)
    if file.is_path_only:
        return
    created = bool(flags & O_CREAT) and place.st is None and place.text is not None
    if created:
        hub.created(place.parent, place.name, False)
    ident = ident_of(place.st) if place.st is not None else info.ident
    hub.object_event(ident, info.is_dir, info.parent, info.name, IN_OPEN, by_file=True)
    if flags & O_TRUNC and place.st is not None and st_.S_ISREG(place.st.st_mode):
        hub.object_event(ident, False, info.parent, info.name, IN_MODIFY)


def _openat2_flags(task: "Task", args: tuple) -> int:
    return task.tg.mm.read_u64(args[2])


_OPENS = {
    "open": _open_pre(lambda a: AT_FDCWD, lambda a: a[0], lambda t, a: u32(a[1])),
    "openat": _open_pre(lambda a: s32(a[0]), lambda a: a[1], lambda t, a: u32(a[2])),
    "creat": _open_pre(lambda a: AT_FDCWD, lambda a: a[0],
                       lambda t, a: O_CREAT | os.O_WRONLY | O_TRUNC),
    "openat2": _open_pre(lambda a: s32(a[0]), lambda a: a[1], _openat2_flags),
}


# -- names: create, link, unlink, rename --------------------------------------------------------
def _create(dirfd: Callable, path: Callable, is_dir: bool) -> Callable[[Handler], Handler]:
    def pre(task: "Task", args: tuple) -> Place:
        return locate(task, dirfd(args), read_path(task, path(args)), False)

    def post(hub: Hub, task: "Task", args: tuple, result: int, place: Place) -> None:
        hub.created(place.parent, place.name, is_dir)
    return _path_call(pre, post)


def _link(olddirfd: Callable, old: Callable, newdirfd: Callable, new: Callable,
          flags: Callable) -> Callable[[Handler], Handler]:
    def pre(task: "Task", args: tuple) -> tuple:
        how = flags(args)
        source = _target(task, olddirfd(args), old(args), bool(how & AT_SYMLINK_FOLLOW),
                         bool(how & AT_EMPTY_PATH))
        return source, locate(task, newdirfd(args), read_path(task, new(args)), False)

    def post(hub: Hub, task: "Task", args: tuple, result: int, seen: tuple) -> None:
        source, place = seen
        if isinstance(source, OpenName):
            ident = source.ident
        else:
            ident = ident_of(source.st) if source is not None and source.st is not None else None
        hub.linked(ident, place.parent, place.name)
    return _path_call(pre, post)


def _unlink(dirfd: Callable, path: Callable, rmdir: Callable) -> Callable[[Handler], Handler]:
    def pre(task: "Task", args: tuple) -> Place:
        return locate(task, dirfd(args), read_path(task, path(args)), False)

    def post(hub: Hub, task: "Task", args: tuple, result: int, place: Place) -> None:
        st = place.st
        if st is None:
            return
        hub.removed(place.parent, place.name, ident_of(st), st_.S_ISDIR(st.st_mode),
                    st.st_nlink, rmdir(args))
    return _path_call(pre, post)


def _rename(olddirfd: Callable, old: Callable, newdirfd: Callable, new: Callable,
            flags: Callable) -> Callable[[Handler], Handler]:
    def pre(task: "Task", args: tuple) -> tuple[Place, Place]:
        return (locate(task, olddirfd(args), read_path(task, old(args)), False),
                locate(task, newdirfd(args), read_path(task, new(args)), False))

    def post(hub: Hub, task: "Task", args: tuple, result: int, seen: tuple) -> None:
        src, dst = seen
        if src.st is None:
            return
        moved, src_dir = ident_of(src.st), st_.S_ISDIR(src.st.st_mode)
        if flags(args) & RENAME_EXCHANGE:
            if dst.st is None:
                return
            hub.exchanged(src.parent, src.name, moved, src_dir, dst.parent, dst.name,
                          ident_of(dst.st), st_.S_ISDIR(dst.st.st_mode))
            if src.text is not None and dst.text is not None:
                hub.moved_paths([(src.text, dst.text), (dst.text, src.text)])
            return
        replaced = None
        if dst.st is not None:
            if ident_of(dst.st) == moved:
                return  # two names of one object: rename does nothing
            replaced = (ident_of(dst.st), st_.S_ISDIR(dst.st.st_mode), dst.st.st_nlink)
        hub.renamed(src.parent, src.name, dst.parent, dst.name, moved, src_dir, replaced)
        if src.text is not None and dst.text is not None:
            hub.moved_paths([(src.text, dst.text)])
    return _path_call(pre, post)


# -- attributes and data by path ----------------------------------------------------------------
def _attr(dirfd: Callable, path: Callable, follow: Callable, empty_ok: Callable,
          mask: Callable) -> Callable[[Handler], Handler]:
    """chmod/chown/utimes/truncate/xattr by path (or by fd through AT_EMPTY_PATH)."""
    def pre(task: "Task", args: tuple):
        event = mask(task, args)
        if not event:
            return None
        target = _target(task, dirfd(args), path(args), follow(args), empty_ok(args))
        return None if target is None else (target, event)

    def post(hub: Hub, task: "Task", args: tuple, result: int, seen: tuple) -> None:
        _report(hub, seen[0], seen[1])
    return _path_call(pre, post)


def _chown_mask(uid: int, gid: int) -> int:
    return IN_ATTRIB if u32(uid) != NO_ID or u32(gid) != NO_ID else 0


def _utimens_mask(task: "Task", times: int) -> int:
    """notify_change's mask for new times: both -> ATTRIB, atime only -> ACCESS, mtime
    only -> MODIFY (utimensat with UTIME_OMIT)."""
    if not times:
        return IN_ATTRIB
    raw = task.tg.mm.read(times, 32)
    atime = int.from_bytes(raw[8:16], "little") != UTIME_OMIT
    mtime = int.from_bytes(raw[24:32], "little") != UTIME_OMIT
    return IN_ATTRIB if atime and mtime else IN_ACCESS if atime else IN_MODIFY if mtime else 0


def _always(event: int) -> Callable:
    return lambda task, args: event


def _never(args: tuple) -> bool:
    return False


def _follow_unless(index: int, flag: int = AT_SYMLINK_NOFOLLOW) -> Callable:
    return lambda args: not u32(args[index]) & flag


def _empty_if(index: int) -> Callable:
    return lambda args: bool(u32(args[index]) & AT_EMPTY_PATH)


_CWD = lambda args: AT_FDCWD  # noqa: E731


def _arg(index: int) -> Callable:
    return lambda args: args[index]


def _dirfd(index: int) -> Callable:
    return lambda args: s32(args[index])


def _bind() -> Callable[[Handler], Handler]:
    """bind(2) of a unix socket to a path creates the name."""
    def pre(task: "Task", args: tuple) -> Place | None:
        length = u32(args[2])
        if length <= 2 or length > 110:
            return None
        raw = task.tg.mm.read(args[1], length)
        if int.from_bytes(raw[:2], "little") != AF_UNIX or raw[2] == 0:
            return None
        return locate(task, AT_FDCWD, raw[2:].split(b"\0")[0], False)

    def post(hub: Hub, task: "Task", args: tuple, result: int, place: Place) -> None:
        hub.created(place.parent, place.name, False)
    return _path_call(pre, post)


def _positive(result: int) -> bool:
    return result > 0


def _done(result: int) -> bool:
    return result >= 0


def _zero(result: int) -> bool:
    return result == 0


def _fchown() -> Callable[[Handler], Handler]:
    inner = _fd_calls(((0, IN_ATTRIB),), _zero, by_file=False)

    def wrap(orig: Handler) -> Handler:
        reporting = inner(orig)

        def handler(task: "Task", *args: int) -> int:
            if _chown_mask(args[1], args[2]):
                return reporting(task, *args)
            return orig(task, *args)
        return handler
    return wrap


#: name -> wrapper factory; a name whose handler is missing is skipped at install
WRAPPERS: dict[str, Callable[[Handler], Handler]] = {
    **{name: _path_call(pre, _open_post, _done) for name, pre in _OPENS.items()},
    # data through an fd
    **{name: _fd_calls(((0, IN_ACCESS),), _positive)
       for name in ("read", "readv", "pread64", "preadv", "preadv2")},
    **{name: _fd_calls(((0, IN_ACCESS),), _done) for name in ("getdents", "getdents64")},
    **{name: _fd_calls(((0, IN_MODIFY),), _positive)
       for name in ("write", "writev", "pwrite64", "pwritev", "pwritev2")},
    "ftruncate": _fd_calls(((0, IN_MODIFY),), _zero, by_file=False),
    "fallocate": _fd_calls(((0, IN_MODIFY),), _zero),
    "sendfile": _fd_calls(((1, IN_ACCESS), (0, IN_MODIFY)), _positive),
    "copy_file_range": _fd_calls(((0, IN_ACCESS), (2, IN_MODIFY)), _positive),
    "splice": _fd_calls(((0, IN_ACCESS), (2, IN_MODIFY)), _positive),
    "tee": _fd_calls(((0, IN_ACCESS), (1, IN_MODIFY)), _positive),
    # attributes through an fd
    **{name: _fd_calls(((0, IN_ATTRIB),), _zero, by_file=False)
       for name in ("fchmod", "fsetxattr", "fremovexattr")},
    "fchown": _fchown(),
    # names
    "mkdir": _create(_CWD, _arg(0), True),
    "mkdirat": _create(_dirfd(0), _arg(1), True),
    "mknod": _create(_CWD, _arg(0), False),
    "mknodat": _create(_dirfd(0), _arg(1), False),
    "symlink": _create(_CWD, _arg(1), False),
    "symlinkat": _create(_dirfd(1), _arg(2), False),
    "link": _link(_CWD, _arg(0), _CWD, _arg(1), lambda a: 0),
    "linkat": _link(_dirfd(0), _arg(1), _dirfd(2), _arg(3), lambda a: u32(a[4])),
    "unlink": _unlink(_CWD, _arg(0), lambda a: False),
    "rmdir": _unlink(_CWD, _arg(0), lambda a: True),
    "unlinkat": _unlink(_dirfd(0), _arg(1), lambda a: bool(u32(a[2]) & AT_REMOVEDIR)),
    "rename": _rename(_CWD, _arg(0), _CWD, _arg(1), lambda a: 0),
    "renameat": _rename(_dirfd(0), _arg(1), _dirfd(2), _arg(3), lambda a: 0),
    "renameat2": _rename(_dirfd(0), _arg(1), _dirfd(2), _arg(3), lambda a: u32(a[4])),
    "bind": _bind(),
    # attributes and sizes by path
    "chmod": _attr(_CWD, _arg(0), lambda a: True, _never, _always(IN_ATTRIB)),
    "fchmodat": _attr(_dirfd(0), _arg(1), lambda a: True, _never, _always(IN_ATTRIB)),
    "fchmodat2": _attr(_dirfd(0), _arg(1), _follow_unless(3), _empty_if(3), _always(IN_ATTRIB)),
    "chown": _attr(_CWD, _arg(0), lambda a: True, _never,
                   lambda t, a: _chown_mask(a[1], a[2])),
    "lchown": _attr(_CWD, _arg(0), lambda a: False, _never,
                    lambda t, a: _chown_mask(a[1], a[2])),
    "fchownat": _attr(_dirfd(0), _arg(1), _follow_unless(4), _empty_if(4),
                      lambda t, a: _chown_mask(a[2], a[3])),
    "utimensat": _attr(_dirfd(0), _arg(1), _follow_unless(3),
                       lambda a: not a[1] or bool(u32(a[3]) & AT_EMPTY_PATH),
                       lambda t, a: _utimens_mask(t, a[2])),
    "futimesat": _attr(_dirfd(0), _arg(1), lambda a: True, lambda a: not a[1],
                       _always(IN_ATTRIB)),
    "utimes": _attr(_CWD, _arg(0), lambda a: True, _never, _always(IN_ATTRIB)),
    "utime": _attr(_CWD, _arg(0), lambda a: True, _never, _always(IN_ATTRIB)),
    "truncate": _attr(_CWD, _arg(0), lambda a: True, _never, _always(IN_MODIFY)),
    "setxattr": _attr(_CWD, _arg(0), lambda a: True, _never, _always(IN_ATTRIB)),
    "lsetxattr": _attr(_CWD, _arg(0), lambda a: False, _never, _always(IN_ATTRIB)),
    "removexattr": _attr(_CWD, _arg(0), lambda a: True, _never, _always(IN_ATTRIB)),
    "lremovexattr": _attr(_CWD, _arg(0), lambda a: False, _never, _always(IN_ATTRIB)),
}
