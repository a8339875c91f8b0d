"""process_vm_readv/writev and kcmp between two fake processes sharing one kernel."""
from __future__ import annotations

import struct

from snakevisor.kernel.errors import EBADF, EFAULT, EINVAL, ESRCH

from conftest import MEM_BASE, MEM_SIZE, FakeProcess


def pair() -> tuple[FakeProcess, FakeProcess]:
    a, b = FakeProcess(None), FakeProcess(None)
    b.task.kernel = b.tg.kernel = a.kernel
    b.tg.pid = b.task.tid = 2
    a.kernel.tasks = {1: a.task, 2: b.task}  # type: ignore[attr-defined]
    return a, b


def iov(p: FakeProcess, *vecs: tuple[int, int]) -> int:
    return p.put(b"".join(struct.pack("<QQ", base, n) for base, n in vecs))


def test_readv_gathers_across_vectors() -> None:
    a, b = pair()
    src = b.put(b"hello world")
    dst1, dst2 = a.alloc(4), a.alloc(16)
    n = a.raw("process_vm_readv", 2, iov(a, (dst1, 4), (dst2, 16)), 2, iov(a, (src, 11)), 1, 0)
    assert n == 11
    assert a.get(dst1, 4) == b"hell" and a.get(dst2, 7) == b"o world"


def test_writev_and_partial_and_efault() -> None:
    a, b = pair()
    data = a.put(b"xyz123")
    target = b.alloc(8)
    assert a.raw("process_vm_writev", 2, iov(a, (data, 6)), 1, iov(a, (target, 6)), 1, 0) == 6
    assert b.get(target, 6) == b"xyz123"
    end = MEM_BASE + MEM_SIZE  # the fake memory ends here: a transfer straddling it is partial
    assert a.raw("process_vm_writev", 2, iov(a, (data, 6)), 1, iov(a, (end - 2, 6)), 1, 0) == 2
    assert b.get(end - 2, 2) == b"xy"
    assert a.raw("process_vm_writev", 2, iov(a, (data, 6)), 1, iov(a, (end, 6)), 1, 0) == -EFAULT
    # nothing to move is not a fault
    assert a.raw("process_vm_writev", 2, iov(a, (data, 0)), 1, iov(a, (end, 6)), 1, 0) == 0


def test_errors() -> None:
    a, _ = pair()
    v = iov(a, (a.alloc(4), 4))
    assert a.raw("process_vm_readv", 99, v, 1, v, 1, 0) == -ESRCH
    assert a.raw("process_vm_readv", 2, v, 1, v, 1, 1) == -EINVAL
    assert a.raw("process_vm_readv", 2, v, 1025, v, 1, 0) == -EINVAL


def test_kcmp() -> None:
    a, b = pair()
    fds = a.alloc(8)
    assert a.raw("pipe2", fds, 0) == 0
    r, w = struct.unpack("<ii", a.get(fds, 8))
    assert a.raw("kcmp", 1, 1, 0, r, r) == 0  # KCMP_FILE, same description
    assert a.raw("kcmp", 1, 1, 0, r, w) in (1, 2)
    assert a.raw("kcmp", 1, 1, 0, r, w) == 3 - a.raw("kcmp", 1, 1, 0, w, r)  # consistent order
    assert a.raw("kcmp", 1, 1, 0, r, 500) == -EBADF
    assert a.raw("kcmp", 1, 2, 1, 0, 0) in (1, 2)  # KCMP_VM: different address spaces
    assert a.raw("kcmp", 1, 1, 1, 0, 0) == 0
    b.tg.fds = a.tg.fds  # as CLONE_FILES would
    assert a.raw("kcmp", 1, 2, 2, 0, 0) == 0  # KCMP_FILES
    assert a.raw("kcmp", 1, 2, 3, 0, 0) in (1, 2)  # KCMP_FS
    assert a.raw("kcmp", 1, 2, 5, 0, 0) == 0  # KCMP_IO: neither has one
    assert a.raw("kcmp", 1, 2, 7, 0, 0) == -EINVAL and "kcmp:epoll_tfd" in a.kernel.warnings
    assert a.raw("kcmp", 1, 2, 8, 0, 0) == -EINVAL
    assert a.raw("kcmp", 1, 42, 1, 0, 0) == -ESRCH
