"""Sentry file-system objects without a walk: tmpfs inodes and files, stable directory
listings (the walk itself is tested in test_sandboxroot.py)."""
from __future__ import annotations

import errno

import pytest

from conftest import FakeProcess
from snakevisor.fsimpl.tmpfs import RENAME_EXCHANGE, RENAME_NOREPLACE, Tmpfs
from snakevisor.kernel.errors import SyscallError
from snakevisor.vfs.dirfile import DirectoryFile


@pytest.fixture
def env():
    """(task, the root directory of a 1 MiB tmpfs)."""
    return FakeProcess(root=None).task, Tmpfs(size=1 << 20).root()


def errno_of(fn, *args, **kw) -> int:
    with pytest.raises(SyscallError) as exc:
        fn(*args, **kw)
    return exc.value.errno


def test_tmpfs_files_and_limits(env) -> None:
    task, rootdir = env
    node = rootdir.create(task, b"data", 0o600)
    f = node.open(task, 2)
    assert f.write(task, b"hello") == 5
    assert f.lseek(0, 0) == 0 and f.read(task, 10) == b"hello"
    assert f.stat().st_size == 5 and node.stat().st_mode & 0o777 == 0o600
    with pytest.raises(SyscallError) as exc:
        f.pwrite(task, b"x", 2 << 20)  # beyond size=1M
    assert exc.value.errno == errno.ENOSPC
    assert errno_of(rootdir.create, task, b"data", 0o600) == errno.EEXIST
    rootdir.mkdir(task, b"d", 0o755)
    rootdir.lookup(task, b"d").create(task, b"inner", 0o644)
    assert errno_of(rootdir.rmdir, task, b"d") == errno.ENOTEMPTY
    assert errno_of(rootdir.unlink, task, b"d") == errno.EISDIR
    assert errno_of(rootdir.rename, task, b"data", rootdir, b"d", 0) == errno.EISDIR
    rootdir.create(task, b"other", 0o644)
    assert errno_of(rootdir.rename, task, b"data", rootdir, b"other", RENAME_NOREPLACE) == errno.EEXIST
    rootdir.rename(task, b"data", rootdir, b"other", RENAME_EXCHANGE)
    assert rootdir.lookup(task, b"other") is node
    d = rootdir.lookup(task, b"d")
    assert errno_of(rootdir.rename, task, b"d", d, b"sub", 0) == errno.EINVAL  # into itself
    used = node.fs.used
    rootdir.unlink(task, b"other")
    assert node.fs.used == used  # still open
    f.release()
    assert node.fs.used == 0


def test_directory_listing_is_stable(env) -> None:
    task, rootdir = env
    for name in (b"a", b"b", b"c"):
        rootdir.create(task, name, 0o644)
    listing = DirectoryFile(rootdir, task, 0)
    first = listing.getdents(48)  # room for a few records only
    rootdir.unlink(task, b"a")  # a concurrent change does not shift the offsets
    rest = listing.getdents(4096)
    names = _names(first + rest)
    assert names == [b".", b"..", b"a", b"b", b"c"]
    listing.lseek(0, 0)
    assert _names(listing.getdents(4096)) == [b".", b"..", b"b", b"c"]


def _names(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(data):
        reclen = int.from_bytes(data[pos + 16:pos + 18], "little")
        out.append(data[pos + 19:pos + reclen].split(b"\0", 1)[0])
        pos += reclen
    return out


def test_cpu_lists() -> None:
    from snakevisor.fsimpl.sysfs import cpu_list
    assert cpu_list({0, 1}) == b"0-1\n"
    assert cpu_list({0, 2, 3, 4, 8, 9}) == b"0,2-4,8-9\n"
    assert cpu_list({5}) == b"5\n"
