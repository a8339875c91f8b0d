"""inotify through the real handlers on a fake task over the sandbox's own overlay root.

Expected values are Linux's (checked natively with tests/c/inotify.c on 6.x).  What these
tests add to the differential one: the event queue's rules in isolation (merging with the
tail only, the overflow event, record padding), the zero-cost promise (without a watch the
kernel dispatches through the shared, unwrapped table), the overlay's copy-up (a watch on
a lower-layer object follows it to its new identity), the deferred IN_DELETE_SELF of an
open file, limits, and blocking reads as the kernel drives them.
"""
from __future__ import annotations

import errno
import os
import struct

import pytest

from snakevisor.fsimpl.overlay import OverlayFs
from snakevisor.fsimpl.sandboxroot import SandboxRoot
from snakevisor.fsimpl.tmpfs import Tmpfs
from snakevisor.kernel.errors import Block, SyscallError
from snakevisor.syscalls import HANDLERS
from snakevisor.syscalls.numbers import SYSCALL_NUMBERS
from snakevisor.vfs import file as file_module
from snakevisor.vfs.file import POLLIN, POLLRDNORM
from snakevisor.vfs.inotify import (IN_ATTRIB, IN_CLOSE_NOWRITE, IN_CLOSE_WRITE, IN_CREATE,
                                    IN_DELETE, IN_DELETE_SELF, IN_IGNORED, IN_ISDIR, IN_MODIFY,
                                    IN_MOVE_SELF, IN_MOVED_FROM, IN_MOVED_TO, IN_OPEN,
                                    IN_Q_OVERFLOW, InotifyFile, get_hub)
from tests.unit.conftest import U64, FakeProcess

IN_ALL = 0xFFF
O_RDONLY, O_WRONLY, O_RDWR, O_CREAT = 0, 1, 2, os.O_CREAT
IN_NONBLOCK = os.O_NONBLOCK
AT_FDCWD = -100
FIONREAD = 0x541B


class Env:
    """A fake process on an overlay root (lower: /etc/conf, /etc/sub/deep) whose calls go
    through the kernel's own table, as Kernel._dispatch does."""

    def __init__(self, tmp_path) -> None:
        self.p = FakeProcess(None)
        task = self.task = self.p.task
        lower = Tmpfs(size=1 << 20, mode=0o755)
        root = lower.root()
        etc = root.mkdir(task, b"etc", 0o755)
        conf = etc.create(task, b"conf", 0o644)
        f = conf.open(task, O_WRONLY)
        f.write(task, b"lower")
        f.release()
        etc.mkdir(task, b"sub", 0o755).create(task, b"deep", 0o644)
        root.mkdir(task, b"tmp", 0o1777)
        self.overlay = OverlayFs(lower, Tmpfs(size=1 << 20, mode=0o755))
        self.p.tg.fs.root = SandboxRoot({b"/": self.overlay})
        self.woken: list = []
        self.p.kernel.wake = self.woken.append  # type: ignore[attr-defined]

    @property
    def table(self) -> list:
        return getattr(self.p.kernel, "handlers", None) or HANDLERS

    def call(self, name: str, *args) -> int:
        regs = []
        for a in args:
            regs.append(self.p.cstr(a) if isinstance(a, (str, bytes)) else a & U64)
        handler = self.table[SYSCALL_NUMBERS[name]]
        try:
            return handler(self.task, *regs, *[0] * (6 - len(regs)))
        except SyscallError as e:
            return -e.errno
        finally:
            self.task.syscall_state = None

    def init(self, flags: int = IN_NONBLOCK) -> int:
        return self.call("inotify_init1", flags)

    def events(self, fd: int) -> list[tuple[int, int, int, bytes]]:
        """Everything queued, as (wd, mask, cookie, name)."""
        buf = self.p.alloc(1 << 16)
        n = self.call("read", fd, buf, 1 << 16)
        if n == -errno.EAGAIN:
            return []
        assert n > 0, n
        data, out, pos = self.p.get(buf, n), [], 0
        while pos < n:
            wd, mask, cookie, length = struct.unpack_from("<iIII", data, pos)
            out.append((wd, mask, cookie, data[pos + 16:pos + 16 + length].rstrip(b"\0")))
            pos += 16 + length
        return out

    def touch(self, path: str) -> None:
        fd = self.call("openat", AT_FDCWD, path, O_CREAT | O_WRONLY, 0o644)
        assert fd >= 0, fd
        assert self.call("close", fd) == 0


@pytest.fixture
def env(tmp_path) -> Env:
    return Env(tmp_path)


def masks(events) -> list[tuple[int, int, bytes]]:
    return [(wd, mask, name) for wd, mask, _, name in events]


# -- the queue -----------------------------------------------------------------------------------
def instance(env: Env) -> InotifyFile:
    return get_hub(env.p.kernel).new_instance(True, 0)


def test_records_are_padded_and_read_whole(env: Env) -> None:
    ino = instance(env)
    ino.enqueue(1, IN_CREATE, 0, b"a" * 15)
    ino.enqueue(1, IN_CREATE, 0, b"b" * 16)
    ino.enqueue(1, IN_ATTRIB)
    assert [e.size for e in ino.events] == [32, 48, 16]
    with pytest.raises(SyscallError) as err:
        ino.read(env.task, 31)
    assert err.value.errno == errno.EINVAL
    first = ino.read(env.task, 79)  # the second does not fit: only the first
    assert len(first) == 32 and first[16:32] == b"a" * 15 + b"\0"
    assert struct.unpack_from("<iIII", first) == (1, IN_CREATE, 0, 16)
    rest = ino.read(env.task, 64)
    assert len(rest) == 64 and rest[16:48] == b"b" * 16 + bytes(16)
    with pytest.raises(SyscallError) as err:
        ino.read(env.task, 64)
    assert err.value.errno == errno.EAGAIN


def test_only_the_tail_merges(env: Env) -> None:
    ino = instance(env)
    ino.enqueue(1, IN_MODIFY, 0, b"f")
    ino.enqueue(1, IN_MODIFY, 0, b"f")
    ino.enqueue(1, IN_MOVED_FROM, 5, b"f")
    ino.enqueue(1, IN_MOVED_FROM, 6, b"f")  # the cookie is not compared (inotify_merge)
    ino.enqueue(1, IN_MODIFY, 0, b"f")
    ino.enqueue(1, IN_MODIFY, 0, b"g")
    ino.enqueue(1, IN_IGNORED)
    ino.enqueue(1, IN_IGNORED)  # an IN_IGNORED tail never merges
    assert [(e.mask, e.cookie, e.name) for e in ino.events] == [
        (IN_MODIFY, 0, b"f"), (IN_MOVED_FROM, 5, b"f"), (IN_MODIFY, 0, b"f"),
        (IN_MODIFY, 0, b"g"), (IN_IGNORED, 0, b""), (IN_IGNORED, 0, b"")]


def test_overflow_event_stands_for_what_was_lost(env: Env) -> None:
    ino = instance(env)
    ino.max_events = 3
    for i in range(6):
        ino.enqueue(1, IN_CREATE, 0, b"n%d" % i)
    assert [(e.wd, e.mask) for e in ino.events][-2:] == [(1, IN_CREATE), (-1, IN_Q_OVERFLOW)]
    assert len(ino.events) == 4
    ino.enqueue(1, IN_MODIFY)  # still full: nothing, not even the same event twice
    assert len(ino.events) == 4
    out = env.p.alloc(4)
    assert ino.ioctl(env.task, FIONREAD, out) == 0
    assert struct.unpack("<i", env.p.get(out, 4))[0] == 3 * 32 + 16
    ino.read(env.task, 1 << 12)
    ino.enqueue(1, IN_MODIFY)
    assert [(e.wd, e.mask) for e in ino.events] == [(1, IN_MODIFY)]


def test_blocking_read_parks_on_the_queue_and_an_event_wakes_it(env: Env) -> None:
    fd = env.init(0)
    ino = env.p.tg.fds.get(fd)
    assert ino.poll_events() == 0
    with pytest.raises(Block) as info:
        ino.read(env.task, 64)
    assert info.value.queue is ino.queue is ino.poll_queue()
    info.value.queue.waiters.append(env.task)  # what Kernel._park does
    assert env.call("inotify_add_watch", fd, "/tmp", IN_CREATE) == 1
    env.touch("/tmp/x")
    assert env.woken == [env.task]
    assert ino.poll_events() == POLLIN | POLLRDNORM


# -- zero cost without watches -----------------------------------------------------------------
def test_wrappers_exist_only_while_a_watch_does(env: Env) -> None:
    read_nr = SYSCALL_NUMBERS["read"]
    fd = env.init()
    assert env.table is HANDLERS  # an instance alone changes nothing
    wd = env.call("inotify_add_watch", fd, "/tmp", IN_CREATE)
    assert env.table is not HANDLERS and env.table[read_nr] is not HANDLERS[read_nr]
    assert file_module.on_last_put is not None
    assert env.call("inotify_rm_watch", fd, wd) == 0
    assert env.table is HANDLERS
    assert env.call("inotify_add_watch", fd, "/tmp", IN_CREATE) == wd + 1  # not reused
    assert env.table is not HANDLERS
    assert env.call("close", fd) == 0  # closing the instance drops its watches
    assert env.table is HANDLERS


def test_files_opened_before_the_first_watch_report_their_close(env: Env) -> None:
    f = env.call("openat", AT_FDCWD, "/etc/conf", O_RDONLY, 0)
    fd = env.init()
    wd = env.call("inotify_add_watch", fd, "/etc", IN_CLOSE_NOWRITE)
    assert env.call("close", f) == 0
    assert masks(env.events(fd)) == [(wd, IN_CLOSE_NOWRITE, b"conf")]


# -- the overlay's copy-up -----------------------------------------------------------------------
def test_watches_follow_objects_the_overlay_copies_up(env: Env) -> None:
    fd = env.init()
    etc = env.call("inotify_add_watch", fd, "/etc", IN_ALL)
    deep = env.call("inotify_add_watch", fd, "/etc/sub/deep", IN_ALL)
    sub = env.call("inotify_add_watch", fd, "/etc/sub", IN_ALL)
    env.touch("/etc/a")  # copies /etc up: its identity changes
    env.touch("/etc/b")
    assert masks(env.events(fd)) == [
        (etc, IN_CREATE, b"a"), (etc, IN_OPEN, b"a"), (etc, IN_CLOSE_WRITE, b"a"),
        (etc, IN_CREATE, b"b"), (etc, IN_OPEN, b"b"), (etc, IN_CLOSE_WRITE, b"b")]
    assert env.call("chmod", "/etc/sub/deep", 0o600) == 0  # copies /etc/sub and deep up
    assert env.call("chmod", "/etc/sub/deep", 0o644) == 0
    assert masks(env.events(fd)) == [(sub, IN_ATTRIB, b"deep"), (deep, IN_ATTRIB, b"")] * 2
    f = env.call("openat", AT_FDCWD, "/etc/conf", O_RDWR, 0)
    assert env.call("write", f, env.p.put(b"x"), 1) == 1
    assert env.call("close", f) == 0
    assert masks(env.events(fd)) == [(etc, IN_OPEN, b"conf"), (etc, IN_MODIFY, b"conf"),
                                      (etc, IN_CLOSE_WRITE, b"conf")]


def test_renames_carry_names_and_cookies(env: Env) -> None:
    fd = env.init()
    env.call("mkdir", "/tmp/d", 0o755)
    env.touch("/tmp/d/f")
    d = env.call("inotify_add_watch", fd, "/tmp/d", IN_ALL)
    f = env.call("inotify_add_watch", fd, "/tmp/d/f", IN_ALL)
    opened = env.call("openat", AT_FDCWD, "/tmp/d/f", O_RDONLY, 0)
    assert env.call("rename", "/tmp/d/f", "/tmp/d/g") == 0
    assert env.call("close", opened) == 0  # reported under the name it has now
    events = env.events(fd)
    assert masks(events) == [(d, IN_OPEN, b"f"), (f, IN_OPEN, b""), (d, IN_MOVED_FROM, b"f"),
                             (d, IN_MOVED_TO, b"g"), (f, IN_MOVE_SELF, b""),
                             (d, IN_CLOSE_NOWRITE, b"g"), (f, IN_CLOSE_NOWRITE, b"")]
    assert events[2][2] == events[3][2] != 0


# -- deletion ------------------------------------------------------------------------------------
def test_delete_self_waits_for_the_last_close(env: Env) -> None:
    fd = env.init()
    env.call("mkdir", "/tmp/d", 0o755)
    env.touch("/tmp/d/f")
    d = env.call("inotify_add_watch", fd, "/tmp/d", IN_ALL)
    f = env.call("inotify_add_watch", fd, "/tmp/d/f", IN_ALL & ~IN_OPEN)
    opened = env.call("openat", AT_FDCWD, "/tmp/d/f", O_RDONLY, 0)
    env.events(fd)
    assert env.call("unlink", "/tmp/d/f") == 0
    assert masks(env.events(fd)) == [(f, IN_ATTRIB, b""), (d, IN_DELETE, b"f")]
    assert env.call("close", opened) == 0
    assert masks(env.events(fd)) == [(d, IN_CLOSE_NOWRITE, b"f"), (f, IN_CLOSE_NOWRITE, b""),
                                      (f, IN_DELETE_SELF, b""), (f, IN_IGNORED, b"")]
    assert env.call("rmdir", "/tmp/d") == 0
    assert masks(env.events(fd)) == [(d, IN_DELETE_SELF, b""), (d, IN_IGNORED, b"")]
    assert env.table is HANDLERS  # both watches went with their objects


def test_directory_events_carry_isdir(env: Env) -> None:
    fd = env.init()
    t = env.call("inotify_add_watch", fd, "/tmp", IN_CREATE | IN_DELETE)
    env.call("mkdir", "/tmp/s", 0o755)
    env.call("rmdir", "/tmp/s")
    assert masks(env.events(fd)) == [(t, IN_CREATE | IN_ISDIR, b"s"),
                                      (t, IN_DELETE | IN_ISDIR, b"s")]


# -- arguments and limits ------------------------------------------------------------------------
def test_add_watch_checks_in_linux_order(env: Env) -> None:
    fd = env.init()
    plain = env.call("openat", AT_FDCWD, "/etc/conf", O_RDONLY, 0)
    assert env.call("inotify_add_watch", 999, "/tmp", 0) == -errno.EINVAL
    assert env.call("inotify_add_watch", fd, "/tmp", 0x1000 | IN_CREATE) == -errno.EINVAL
    assert env.call("inotify_add_watch", 999, "/tmp", IN_CREATE) == -errno.EBADF
    assert env.call("inotify_add_watch", plain, "/tmp", IN_CREATE) == -errno.EINVAL
    assert env.call("inotify_add_watch", fd, "/nope", IN_CREATE) == -errno.ENOENT
    assert env.call("inotify_add_watch", fd, "/etc/conf", 0x01000000 | IN_ATTRIB) == -errno.ENOTDIR
    wd = env.call("inotify_add_watch", fd, "/tmp", IN_CREATE)
    assert env.call("inotify_add_watch", fd, "/tmp/", IN_CREATE | 0x10000000) == -errno.EEXIST
    assert env.call("inotify_add_watch", fd, "/tmp/.", IN_DELETE | 0x20000000) == wd
    assert env.p.tg.fds.get(fd).by_wd[wd].mask == IN_CREATE | IN_DELETE
    assert env.call("inotify_rm_watch", fd, wd + 1) == -errno.EINVAL
    assert env.call("inotify_rm_watch", plain, wd) == -errno.EINVAL
    assert env.call("inotify_init1", 1) == -errno.EINVAL


def test_instance_and_watch_limits(env: Env) -> None:
    fds = [env.init() for _ in range(128)]
    assert all(fd >= 0 for fd in fds)
    assert env.init() == -errno.EMFILE
    env.call("close", fds.pop())
    get_hub(env.p.kernel).max_user_watches = 1
    assert env.call("inotify_add_watch", fds[0], "/tmp", IN_CREATE) == 1
    assert env.call("inotify_add_watch", fds[1], "/etc", IN_CREATE) == -errno.ENOSPC
    assert env.call("inotify_add_watch", fds[0], "/tmp", IN_DELETE) == 1  # an update is free
