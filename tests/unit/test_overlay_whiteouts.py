"""The overlay's name changes and identity, on two tmpfs layers, as Linux's overlayfs
(redirect_dir=off, index=off) behaves — tests/e2e/test_overlay_vs_linux.py checks the same
sequences against a real overlay mount.

Whiteouts: a name the lower layer has stays hidden once removed or renamed away, however
the upper layer came to hold it (a copy-up, a file made over an earlier whiteout).
Identity: one st_dev for the mount, st_ino kept across copy-up, links and renames."""
from __future__ import annotations

import errno
import os
import struct

import pytest

from conftest import FakeProcess
from snakevisor.fsimpl.overlay import OVERLAYFS_SUPER_MAGIC, UPPER_INO, OverlayFs
from snakevisor.fsimpl.tmpfs import RENAME_EXCHANGE, RENAME_NOREPLACE, Tmpfs
from snakevisor.kernel.errors import SyscallError

RENAME_WHITEOUT = 4


def write(task, node, data: bytes) -> None:
    f = node.open(task, os.O_WRONLY | os.O_APPEND)
    f.write(task, data)
    f.release()


def read(task, node) -> bytes:
    f = node.open(task, os.O_RDONLY)
    try:
        return f.pread(task, 1000, 0)
    finally:
        f.release()


@pytest.fixture
def env():
    """d/{f1,f2,hl1=hl2,sub/deep,empty/,full/x}, x/ in the lower layer."""
    task = FakeProcess(root=None).task
    lower = Tmpfs(size=1 << 20, mode=0o755)
    d = lower.root().mkdir(task, b"d", 0o755)
    for name in (b"f1", b"f2", b"hl1"):
        write(task, d.create(task, name, 0o644), b"lower " + name)
    d.link(task, b"hl2", d.lookup(task, b"hl1"))
    d.mkdir(task, b"sub", 0o755).create(task, b"deep", 0o644)
    d.mkdir(task, b"empty", 0o755)
    d.mkdir(task, b"full", 0o755).create(task, b"x", 0o644)
    lower.root().mkdir(task, b"x", 0o755)
    ov = OverlayFs(lower, Tmpfs(size=1 << 20, mode=0o755))
    return task, ov.root(), ov


def names(task, node) -> list[bytes]:
    return sorted(n for n, _, _ in node.entries(task))


def at(task, root, path: bytes):
    node = root
    for part in path.split(b"/"):
        node = node.lookup(task, part) if node is not None else None
    return node


def fails(code: int, fn, *args) -> None:
    with pytest.raises(SyscallError) as exc:
        fn(*args)
    assert exc.value.errno == code


# -- whiteouts --------------------------------------------------------------------------------
def test_removing_a_copied_up_file_hides_the_lower_one(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    write(task, d.lookup(task, b"f1"), b"+")
    d.unlink(task, b"f1")
    assert d.lookup(task, b"f1") is None and b"f1" not in names(task, d)


def test_a_file_made_over_a_whiteout_leaves_one_when_removed(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    d.unlink(task, b"f1")
    write(task, d.create(task, b"f1", 0o600), b"new")
    assert read(task, d.lookup(task, b"f1")) == b"new"
    d.unlink(task, b"f1")
    assert d.lookup(task, b"f1") is None
    d.symlink(task, b"f1", b"target")
    d.unlink(task, b"f1")
    assert d.lookup(task, b"f1") is None


def test_rename_away_leaves_a_whiteout_and_over_a_lower_name_hides_it(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    write(task, d.lookup(task, b"f1"), b"+")
    d.rename(task, b"f1", root, b"moved", 0)
    assert d.lookup(task, b"f1") is None
    assert read(task, root.lookup(task, b"moved")) == b"lower f1+"
    root.rename(task, b"moved", d, b"f2", 0)  # over a lower-only name
    assert read(task, d.lookup(task, b"f2")) == b"lower f1+"
    d.rename(task, b"f2", root, b"again", 0)
    assert d.lookup(task, b"f2") is None and names(task, d) == \
        [b"empty", b"full", b"hl1", b"hl2", b"sub"]


def test_rename_flags(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    fails(errno.EINVAL, d.rename, task, b"f1", d, b"f2", RENAME_WHITEOUT)
    fails(errno.EEXIST, d.rename, task, b"f1", d, b"f2", RENAME_NOREPLACE)
    fails(errno.ENOENT, d.rename, task, b"f1", d, b"none", RENAME_EXCHANGE)
    d.rename(task, b"f1", d, b"f2", RENAME_EXCHANGE)
    assert read(task, d.lookup(task, b"f1")) == b"lower f2"
    assert read(task, d.lookup(task, b"f2")) == b"lower f1"
    d.unlink(task, b"f2")
    d.rename(task, b"f1", d, b"f2", RENAME_NOREPLACE)  # over its whiteout
    assert d.lookup(task, b"f1") is None and read(task, d.lookup(task, b"f2")) == b"lower f2"


def test_directories_with_a_lower_part_do_not_move(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    fails(errno.EXDEV, d.rename, task, b"empty", d, b"e2", 0)
    d.lookup(task, b"sub").create(task, b"new", 0o644)  # now copied up: still merged
    fails(errno.EXDEV, d.rename, task, b"sub", root, b"sub", 0)
    fails(errno.EXDEV, d.rename, task, b"f1", d, b"sub", RENAME_EXCHANGE)


def test_rmdir_then_mkdir_and_file_then_mkdir_give_opaque_directories(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    d.lookup(task, b"full").unlink(task, b"x")
    d.rmdir(task, b"full")
    d.create(task, b"full", 0o644)
    d.unlink(task, b"full")
    fresh = d.mkdir(task, b"full", 0o755)
    assert names(task, fresh) == [] and names(task, d.lookup(task, b"full")) == []
    fresh.create(task, b"mine", 0o644)
    d.rename(task, b"full", root, b"elsewhere", 0)  # opaque: upper-only, it may move
    assert d.lookup(task, b"full") is None
    assert names(task, root.lookup(task, b"elsewhere")) == [b"mine"]


def test_an_upper_directory_moved_over_a_lower_one_does_not_merge(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    root.mkdir(task, b"nd", 0o755)
    fails(errno.ENOTEMPTY, root.rename, task, b"nd", d, b"full", 0)  # x is below
    d.lookup(task, b"full").unlink(task, b"x")  # empty in the merged view: replaceable
    root.lookup(task, b"nd").create(task, b"a", 0o644)
    root.rename(task, b"nd", d, b"full", 0)
    assert names(task, d.lookup(task, b"full")) == [b"a"]  # the lower x stays hidden
    # ...and once exchanged onto a name whose lower directory has a name, too
    d.lookup(task, b"sub").unlink(task, b"deep")
    d.rmdir(task, b"sub")
    d.create(task, b"sub", 0o644)
    root.mkdir(task, b"nd2", 0o755)
    root.rename(task, b"nd2", d, b"sub", RENAME_EXCHANGE)
    assert names(task, d.lookup(task, b"sub")) == []
    assert not root.lookup(task, b"nd2").is_dir


def test_links_over_whiteouts_and_of_lower_files(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    d.unlink(task, b"f1")
    d.link(task, b"f1", d.lookup(task, b"f2"))
    assert read(task, d.lookup(task, b"f1")) == b"lower f2"
    assert d.lookup(task, b"f1").stat().st_nlink == 2
    d.unlink(task, b"f1")
    assert d.lookup(task, b"f1") is None and read(task, d.lookup(task, b"f2")) == b"lower f2"
    fails(errno.EEXIST, d.link, task, b"f2", d.lookup(task, b"hl1"))


def test_rmdir_errors(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    fails(errno.ENOTEMPTY, d.rmdir, task, b"full")
    fails(errno.ENOTDIR, d.rmdir, task, b"f1")
    fails(errno.EISDIR, d.unlink, task, b"empty")
    fails(errno.ENOENT, d.unlink, task, b"none")
    d.rmdir(task, b"empty")
    fails(errno.ENOENT, d.rmdir, task, b"empty")


# -- identity ---------------------------------------------------------------------------------
def test_one_device_for_the_mount(env) -> None:
    task, root, ov = env
    d = root.lookup(task, b"d")
    write(task, d.lookup(task, b"f1"), b"+")
    d.mkdir(task, b"new", 0o755)
    devs = {n.stat().st_dev for n in (root, d, d.lookup(task, b"f1"), d.lookup(task, b"f2"),
                                      d.lookup(task, b"new"), d.lookup(task, b"sub"))}
    assert devs == {ov.dev} and os.major(ov.dev) == 0 and ov.dev != ov.upper.dev
    raw = ov.statfs()
    magic, = struct.unpack_from("<q", raw)
    fsid = struct.unpack_from("<ii", raw, 56)
    assert magic == OVERLAYFS_SUPER_MAGIC and fsid == (ov.dev, 0)


def test_inode_numbers_survive_copy_up_links_and_renames(env) -> None:
    task, root, ov = env
    d = root.lookup(task, b"d")
    before = {name: d.lookup(task, name).stat().st_ino for name in (b"f1", b"sub")}
    dir_ino = d.stat().st_ino
    write(task, d.lookup(task, b"f1"), b"+")
    d.lookup(task, b"sub").create(task, b"new", 0o644)
    assert d.stat().st_ino == dir_ino
    assert {n: d.lookup(task, n).stat().st_ino for n in before} == before
    d.link(task, b"f1link", d.lookup(task, b"f1"))
    d.rename(task, b"f1", root, b"f1moved", 0)
    assert root.lookup(task, b"f1moved").stat().st_ino == before[b"f1"]
    assert d.lookup(task, b"f1link").stat().st_ino == before[b"f1"]
    listed = {n: ino for n, ino, _ in d.entries(task)}
    assert listed[b"f1link"] == before[b"f1"] and listed[b"sub"] == before[b"sub"]


def test_upper_only_numbers_cannot_meet_lower_ones(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    made = d.create(task, b"made", 0o644)
    ino = made.stat().st_ino
    assert ino & UPPER_INO and d.lookup(task, b"made").stat().st_ino == ino
    d.link(task, b"made2", made)
    d.rename(task, b"made", root, b"made3", 0)
    assert root.lookup(task, b"made3").stat().st_ino == ino
    assert {i for n, i, _ in d.entries(task) if n == b"made2"} == {ino}


def test_a_copied_up_lower_hard_link_is_a_file_of_its_own(env) -> None:
    """overlayfs without index: the copy gets its own number, so cp -a and tar do not
    take it and the link left below (different data now) for one file."""
    task, root, _ = env
    d = root.lookup(task, b"d")
    shared = d.lookup(task, b"hl1").stat().st_ino
    assert d.lookup(task, b"hl2").stat().st_ino == shared
    write(task, d.lookup(task, b"hl1"), b"+")
    assert d.lookup(task, b"hl1").stat().st_ino != shared
    assert d.lookup(task, b"hl2").stat().st_ino == shared


def test_merged_directories_report_one_link(env) -> None:
    task, root, _ = env
    d = root.lookup(task, b"d")
    assert root.stat().st_nlink == 1  # upper and lower: merged
    assert d.stat().st_nlink == 5  # lower only: its own count (2 + sub, empty, full)
    d.lookup(task, b"sub").create(task, b"n", 0o644)
    assert d.stat().st_nlink == 1 and d.lookup(task, b"sub").stat().st_nlink == 1
    assert d.mkdir(task, b"mine", 0o755).stat().st_nlink == 2  # upper only


def test_open_files_report_the_overlay_identity(env) -> None:
    task, root, ov = env
    d = root.lookup(task, b"d")
    for name, flags in ((b"f1", os.O_RDONLY), (b"f2", os.O_RDWR)):
        node = d.lookup(task, name)
        f = node.open(task, flags)
        try:
            st, path_st = f.stat(), d.lookup(task, name).stat()
            assert (st.st_dev, st.st_ino, st.st_size) == \
                (ov.dev, path_st.st_ino, path_st.st_size)
            assert f.statfs() == ov.statfs()
        finally:
            f.release()
