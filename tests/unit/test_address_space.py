"""The VMA map: placement, splitting, protection checks — against a fake host."""
from __future__ import annotations

import pytest

from snakevisor.kernel.errors import SyscallError
from snakevisor.mm.address_space import (
    MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_PRIVATE, PAGE, PROT_READ, PROT_WRITE,
    AddressSpace,
)


class FakeHost:
    """Records injected calls and keeps memory in a dict of pages."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.mem: dict[int, int] = {}

    def syscall(self, nr: int, *args: int) -> int:
        self.calls.append((nr,) + args)
        return args[0] if nr in (9, 25) else 0

    def read(self, addr: int, length: int) -> bytes:
        return bytes(self.mem.get(addr + i, 0) for i in range(length))

    def write(self, addr: int, data: bytes) -> None:
        for i, b in enumerate(data):
            self.mem[addr + i] = b

    def destroy(self) -> None:
        pass


ANON = MAP_PRIVATE | MAP_ANONYMOUS


def make() -> AddressSpace:
    return AddressSpace(FakeHost(), [(0x7FF000000000, 0x7FF000003000, "/stub")])


def test_top_down_placement_and_no_overlap():
    mm = make()
    a = mm.map(0, 3 * PAGE, PROT_READ, ANON)
    b = mm.map(0, PAGE, PROT_READ, ANON)
    assert b + PAGE <= a
    assert a + 3 * PAGE <= mm.mmap_base


def test_fixed_map_splits_existing_vma():
    mm = make()
    a = mm.map(0x100000, 4 * PAGE, PROT_READ, ANON | MAP_FIXED)
    mm.map(a + PAGE, PAGE, PROT_READ | PROT_WRITE, ANON | MAP_FIXED)
    spans = [(v.start - a, v.end - a, v.prot) for v in mm.vmas if v.start < 0x200000]
    assert spans == [(0, PAGE, 1), (PAGE, 2 * PAGE, 3), (2 * PAGE, 4 * PAGE, 1)]


def test_fixed_noreplace_refuses_overlap():
    mm = make()
    mm.map(0x100000, PAGE, PROT_READ, ANON | MAP_FIXED)
    with pytest.raises(SyscallError) as e:
        mm.map(0x100000, PAGE, PROT_READ, ANON | MAP_FIXED_NOREPLACE)
    assert e.value.errno == 17  # EEXIST


def test_writes_to_read_only_memory_fault():
    mm = make()
    a = mm.map(0x100000, PAGE, PROT_READ, ANON | MAP_FIXED)
    with pytest.raises(SyscallError) as e:
        mm.write(a, b"x")
    assert e.value.errno == 14  # EFAULT
    mm.protect(a, PAGE, PROT_READ | PROT_WRITE)
    mm.write(a, b"xy")
    assert mm.read(a, 2) == b"xy"


def test_access_across_a_hole_faults():
    mm = make()
    mm.map(0x100000, PAGE, PROT_READ, ANON | MAP_FIXED)
    mm.map(0x102000, PAGE, PROT_READ, ANON | MAP_FIXED)
    with pytest.raises(SyscallError):
        mm.read(0x100000 + PAGE - 1, 2)


def test_mprotect_of_unmapped_range_is_enomem():
    mm = make()
    with pytest.raises(SyscallError) as e:
        mm.protect(0x100000, PAGE, PROT_READ)
    assert e.value.errno == 12


def test_unmap_middle_then_brk_grow_and_shrink():
    mm = make()
    a = mm.map(0x100000, 3 * PAGE, PROT_READ, ANON | MAP_FIXED)
    mm.unmap(a + PAGE, PAGE)
    assert mm.find(a + PAGE) is None and mm.find(a) and mm.find(a + 2 * PAGE)
    mm.brk_start = mm.brk = 0x200000
    assert mm.set_brk(0x200000 + 5000) == 0x200000 + 5000
    assert mm.find(0x201000) is not None
    assert mm.set_brk(0x200000) == 0x200000
    assert mm.find(0x200000) is None
    assert mm.set_brk(0x1000) == 0x200000  # below the start: unchanged


def test_stub_pages_cannot_be_replaced():
    mm = make()
    with pytest.raises(SyscallError):
        mm.map(0x7FF000000000, PAGE, PROT_READ, ANON | MAP_FIXED)
    with pytest.raises(SyscallError):
        mm.unmap(0x7FF000000000, PAGE)


def test_read_cstring_stops_at_nul_across_pages():
    mm = make()
    a = mm.map(0x100000, 2 * PAGE, PROT_READ | PROT_WRITE, ANON | MAP_FIXED)
    mm.write(a + PAGE - 3, b"abcdef\0zz")
    assert mm.read_cstring(a + PAGE - 3) == b"abcdef"
