"""The overlay root's rules, on two tmpfs layers: lookups, copy-up, whiteouts, opaque
directories, merged listings, and EXDEV for directories that exist below."""
from __future__ import annotations

import errno

import pytest

from conftest import FakeProcess
from snakevisor.fsimpl.overlay import OverlayFs
from snakevisor.fsimpl.tmpfs import Tmpfs
from snakevisor.kernel.errors import SyscallError


@pytest.fixture
def env():
    p = FakeProcess(root=None)
    task = p.task
    lower = Tmpfs(size=1 << 20, mode=0o755)
    low = lower.root()
    low.mkdir(task, b"etc", 0o755)
    f = low.lookup(task, b"etc").create(task, b"conf", 0o640)
    d = f.open(task, 2)
    d.write(task, b"lower data")
    d.release()
    low.lookup(task, b"etc").mkdir(task, b"sub", 0o755)
    low.lookup(task, b"etc").lookup(task, b"sub").create(task, b"deep", 0o644)
    ov = OverlayFs(lower, Tmpfs(size=1 << 20, mode=0o755))
    return task, ov, lower


def names(task, node) -> list[bytes]:
    return sorted(n for n, _, _ in node.entries(task))


def test_copy_up_keeps_data_and_mode_and_leaves_lower(env) -> None:
    task, ov, lower = env
    etc = ov.root().lookup(task, b"etc")
    conf = etc.lookup(task, b"conf")
    f = conf.open(task, 2 | 0o2000)  # O_RDWR|O_APPEND
    f.write(task, b"+upper")
    f.release()
    conf = etc.lookup(task, b"conf")
    g = conf.open(task, 0)
    assert g.pread(task, 100, 0) == b"lower data+upper"
    g.release()
    assert conf.stat().st_mode & 0o777 == 0o640
    raw = lower.root().lookup(task, b"etc").lookup(task, b"conf").open(task, 0)
    assert raw.pread(task, 100, 0) == b"lower data"


def test_whiteouts_and_merged_listing(env) -> None:
    task, ov, _ = env
    etc = ov.root().lookup(task, b"etc")
    etc.create(task, b"new", 0o644)
    assert names(task, etc) == [b"conf", b"new", b"sub"]
    etc.unlink(task, b"conf")
    assert etc.lookup(task, b"conf") is None and names(task, etc) == [b"new", b"sub"]
    etc.create(task, b"conf", 0o600)  # a new file over the whiteout
    assert etc.lookup(task, b"conf").stat().st_size == 0


def test_rmdir_then_mkdir_is_opaque(env) -> None:
    task, ov, _ = env
    etc = ov.root().lookup(task, b"etc")
    with pytest.raises(SyscallError) as exc:
        etc.rmdir(task, b"sub")
    assert exc.value.errno == errno.ENOTEMPTY
    etc.lookup(task, b"sub").unlink(task, b"deep")
    etc.rmdir(task, b"sub")
    assert etc.lookup(task, b"sub") is None
    etc.mkdir(task, b"sub", 0o700)
    assert names(task, etc.lookup(task, b"sub")) == []  # the lower "deep" stays hidden


def test_renames(env) -> None:
    task, ov, _ = env
    root = ov.root()
    etc = root.lookup(task, b"etc")
    with pytest.raises(SyscallError) as exc:
        etc.rename(task, b"sub", etc, b"moved", 0)
    assert exc.value.errno == errno.EXDEV  # a directory with a lower part
    etc.rename(task, b"conf", root, b"conf2", 0)
    assert etc.lookup(task, b"conf") is None
    assert root.lookup(task, b"conf2").stat().st_size == len(b"lower data")
