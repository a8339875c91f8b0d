"""The authoritative map of one application address space.

The sentry decides every mapping; the host process (a stub) only mirrors the decisions we
inject (decision 2 of MISSION.md: the host kernel is our MMU).  Application memory is read
and written only after checking it against this map, so the sentry answers EFAULT exactly
where Linux would even though /proc/PID/mem would happily write through read-only pages.
"""
from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from snakevisor.vfs.file import put
from snakevisor.kernel.errors import EACCES, EEXIST, EFAULT, EINVAL, ENOMEM, EOPNOTSUPP, EPERM, SyscallError

if TYPE_CHECKING:
    from snakevisor.platform import AddressSpaceHost
    from snakevisor.vfs.file import File

PAGE = 4096
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_SHARED, MAP_PRIVATE, MAP_SHARED_VALIDATE = 0x1, 0x2, 0x3
MAP_FIXED, MAP_ANONYMOUS, MAP_32BIT = 0x10, 0x20, 0x40
MAP_GROWSDOWN, MAP_DENYWRITE, MAP_EXECUTABLE, MAP_LOCKED = 0x100, 0x800, 0x1000, 0x2000
MAP_NORESERVE, MAP_POPULATE, MAP_NONBLOCK, MAP_STACK = 0x4000, 0x8000, 0x10000, 0x20000
MAP_HUGETLB, MAP_SYNC, MAP_FIXED_NOREPLACE = 0x40000, 0x80000, 0x100000
#: flags we pass on to the host mapping (the rest are bookkeeping or ignored, as in Linux)
_HOST_FLAGS = MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_POPULATE
_KNOWN_FLAGS = (0x3 | MAP_FIXED | MAP_ANONYMOUS | MAP_32BIT | MAP_GROWSDOWN | MAP_DENYWRITE |
                MAP_EXECUTABLE | MAP_LOCKED | MAP_NORESERVE | MAP_POPULATE | MAP_NONBLOCK |
                MAP_STACK | MAP_HUGETLB | MAP_SYNC | MAP_FIXED_NOREPLACE | (0x3F << 26))

#: the lowest address an application may map (vm.mmap_min_addr)
MMAP_MIN_ADDR = 0x10000
#: one past the highest user address on x86_64 with 4-level paging
TASK_SIZE = 0x7FFFFFFFF000

NR_MMAP, NR_MPROTECT, NR_MUNMAP, NR_MREMAP = 9, 10, 11, 25


def page_up(x: int) -> int:
    return (x + PAGE - 1) & ~(PAGE - 1)


def page_down(x: int) -> int:
    return x & ~(PAGE - 1)


class Vma:
    """One contiguous mapping with uniform protection and backing."""

    __slots__ = ("start", "end", "prot", "flags", "file", "offset", "name", "shared_id")

    def __init__(self, start: int, end: int, prot: int, flags: int, file: "File | None" = None,
                 offset: int = 0, name: str = "", shared_id: object = None) -> None:
        self.start, self.end, self.prot, self.flags = start, end, prot, flags
        self.file, self.offset, self.name = file, offset, name
        if file is not None:
            file.refs += 1  # a mapping keeps its file open, as vm_file does
        #: the identity of a shared anonymous object (MAP_SHARED|MAP_ANONYMOUS), the same in
        #: every process that inherited the mapping (shared futex keys); offset is within it
        self.shared_id = shared_id

    def split_at(self, addr: int) -> "Vma":
        """Cut this VMA at addr; returns the upper part (this becomes the lower)."""
        backed = self.file is not None or self.shared_id is not None
        upper = Vma(addr, self.end, self.prot, self.flags, self.file,
                    self.offset + (addr - self.start) if backed else 0, self.name, self.shared_id)
        self.end = addr
        return upper

    def copy(self) -> "Vma":
        return Vma(self.start, self.end, self.prot, self.flags, self.file, self.offset, self.name,
                   self.shared_id)

    def __repr__(self) -> str:
        return f"Vma({self.start:#x}-{self.end:#x} prot={self.prot} {self.name})"


class AddressSpace:
    """VMAs + brk + placement policy for one application address space."""

    def __init__(self, host: "AddressSpaceHost", reserved: list[tuple[int, int, str]]) -> None:
        self.host = host
        self.vmas: list[Vma] = []
        self._starts: list[int] = []
        self.brk_start = self.brk = 0
        self.mmap_base = 0x7F0000000000
        self.vdso_base = 0
        self.users = 1  # tasks sharing this address space (CLONE_VM)
        for start, end, name in reserved:
            if end > TASK_SIZE:
                continue  # [vsyscall] lives above user space; calls through it are refused
            prot = PROT_READ | (PROT_EXEC if name == "[vdso]" else 0)
            if name not in ("[vdso]", "[vvar]", "[vvar_vclock]"):
                name = "[stub]"
            self._insert(Vma(start, end, prot, MAP_PRIVATE, name=name))
            if name == "[vdso]":
                self.vdso_base = start

    # -- bookkeeping ---------------------------------------------------------------------
    def _insert(self, vma: Vma) -> None:
        i = bisect.bisect_left(self._starts, vma.start)
        self.vmas.insert(i, vma)
        self._starts.insert(i, vma.start)

    @staticmethod
    def _release(vmas: list[Vma]) -> None:
        """Drop the file references of VMAs that left the map for good."""
        for vma in vmas:
            file = vma.file
            if file is not None:
                vma.file = None
                put(file)

    def _carve(self, start: int, end: int) -> list[Vma]:
        """Remove [start, end) from the map; returns the removed pieces."""
        removed = []
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while i < len(self.vmas):
            vma = self.vmas[i]
            if vma.start >= end:
                break
            if vma.end <= start:
                i += 1
                continue
            if vma.start < start:
                upper = vma.split_at(start)
                self.vmas.insert(i + 1, upper)
                self._starts.insert(i + 1, upper.start)
                i += 1
                continue
            if vma.end > end:
                upper = vma.split_at(end)
                self.vmas.insert(i + 1, upper)
                self._starts.insert(i + 1, upper.start)
            removed.append(self.vmas.pop(i))
            self._starts.pop(i)
        return removed

    def find(self, addr: int) -> Vma | None:
        i = bisect.bisect_right(self._starts, addr) - 1
        if i >= 0:
            vma = self.vmas[i]
            if addr < vma.end:
                return vma
        return None

    def is_free(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self._starts, end)
        if i == 0:
            return True
        return self.vmas[i - 1].end <= start

    def fully_mapped(self, start: int, end: int) -> bool:
        addr = start
        while addr < end:
            vma = self.find(addr)
            if vma is None:
                return False
            addr = vma.end
        return True

    def find_free(self, length: int, below: int | None = None, above: int = MMAP_MIN_ADDR) -> int:
        """Highest gap of `length` bytes under `below` (top-down, like Linux's default)."""
        top = self.mmap_base if below is None else below
        i = bisect.bisect_left(self._starts, top)
        while True:
            floor = self.vmas[i - 1].end if i > 0 else above
            ceiling = min(top, self.vmas[i].start) if i < len(self.vmas) else top
            if ceiling - max(floor, above) >= length:
                return ceiling - length
            if i == 0:
                raise SyscallError(ENOMEM)
            i -= 1
            top = self.vmas[i].start

    # -- checked access to application memory --------------------------------------------
    def check(self, addr: int, length: int, prot: int) -> None:
        """EFAULT unless [addr, addr+length) is mapped with at least `prot`."""
        end = addr + length
        while addr < end:
            vma = self.find(addr)
            if vma is None or vma.prot & prot != prot:
                raise SyscallError(EFAULT)
            addr = vma.end

    def read(self, addr: int, length: int) -> bytes:
        if length <= 0:
            return b""
        vma = self.find(addr)
        if vma is None or not vma.prot & PROT_READ or addr + length > vma.end:
            self.check(addr, length, PROT_READ)
        try:
            data = self.host.read(addr, length)
        except OSError:
            raise SyscallError(EFAULT) from None
        if len(data) != length:
            raise SyscallError(EFAULT)
        return data

    def accessible(self, addr: int, length: int, prot: int) -> int:
        """How many bytes from addr are mapped with `prot`: Linux copies up to the fault."""
        end, limit = addr, addr + length
        while end < limit:
            vma = self.find(end)
            if vma is None or vma.prot & prot != prot:
                break
            end = vma.end
        return max(0, min(end, limit) - addr)

    def write_prefix(self, addr: int, data: bytes) -> int:
        """copy_to_user: store what fits before the first unwritable byte; returns the count."""
        try:
            self.write(addr, data)
            return len(data)
        except SyscallError:
            n = self.accessible(addr, len(data), PROT_WRITE)
        if n:
            self.write(addr, data[:n])
        return n

    def write(self, addr: int, data: bytes) -> None:
        if not data:
            return
        vma = self.find(addr)
        if vma is None or not vma.prot & PROT_WRITE or addr + len(data) > vma.end:
            self.check(addr, len(data), PROT_WRITE)
        try:
            self.host.write(addr, data)
        except OSError:
            raise SyscallError(EFAULT) from None

    def read_cstring(self, addr: int, limit: int = 4096) -> bytes:
        """A NUL-terminated string; ENAMETOOLONG-style callers check len == limit."""
        out = bytearray()
        while len(out) < limit:
            chunk = min(PAGE - (addr % PAGE), limit - len(out))
            data = self.read(addr, chunk)
            nul = data.find(b"\0")
            if nul >= 0:
                out += data[:nul]
                return bytes(out)
            out += data
            addr += chunk
        return bytes(out)

    def read_u64(self, addr: int) -> int:
        return int.from_bytes(self.read(addr, 8), "little")

    def write_u64(self, addr: int, value: int) -> None:
        self.write(addr, (value & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))

    def read_iovec(self, addr: int, count: int) -> list[tuple[int, int]]:
        """[(base, len)] of an iovec array; EINVAL past IOV_MAX or a negative total."""
        if count < 0 or count > 1024:
            raise SyscallError(EINVAL)
        raw = self.read(addr, 16 * count)
        out = []
        total = 0
        for i in range(count):
            base = int.from_bytes(raw[16 * i: 16 * i + 8], "little")
            length = int.from_bytes(raw[16 * i + 8: 16 * i + 16], "little")
            if length >= 1 << 63:
                raise SyscallError(EINVAL)
            total += length
            if total >= 1 << 63:
                raise SyscallError(EINVAL)
            out.append((base, length))
        return out

    # -- changing the map (each change injected into the host process) -------------------
    def _host(self, nr: int, *args: int) -> int:
        res = self.host.syscall(nr, *args)
        if res < 0:
            raise SyscallError(-res)
        return res

    def map(self, addr: int, length: int, prot: int, flags: int, file: "File | None" = None,
            offset: int = 0, name: str = "") -> int:
        """mmap(2) after argument checks; returns the address chosen."""
        kind = flags & 0x3
        if length <= 0 or kind == 0:
            raise SyscallError(EINVAL)
        if kind == MAP_SHARED_VALIDATE:
            # Only the validating type rejects what it does not know; MAP_SYNC needs DAX,
            # which no sandbox file has. Anonymous memory has no validating variant.
            if file is None:
                raise SyscallError(EINVAL)
            if flags & ~_KNOWN_FLAGS or flags & MAP_SYNC:
                raise SyscallError(EOPNOTSUPP)
        flags &= _KNOWN_FLAGS & ~MAP_SYNC  # the legacy types ignore unknown flags
        if offset % PAGE or offset < 0:
            raise SyscallError(EINVAL)
        length = page_up(length)
        if length == 0 or length > TASK_SIZE:
            raise SyscallError(ENOMEM)
        if flags & MAP_HUGETLB:
            raise SyscallError(EINVAL)  # no hugetlbfs in the sandbox
        fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)
        if fixed:
            if addr % PAGE:
                raise SyscallError(EINVAL)
            if addr < MMAP_MIN_ADDR and addr + length > 0:
                raise SyscallError(EPERM)  # below vm.mmap_min_addr
            if addr + length > TASK_SIZE:
                raise SyscallError(ENOMEM)
            if flags & MAP_FIXED_NOREPLACE and not flags & MAP_FIXED and not self.is_free(addr, addr + length):
                raise SyscallError(EEXIST)
            self._check_not_reserved(addr, addr + length)
        else:
            addr = page_down(addr)
            if flags & MAP_32BIT:
                addr = self.find_free(length, below=0x80000000, above=0x40000000)
            elif addr >= MMAP_MIN_ADDR and addr + length <= TASK_SIZE and self.is_free(addr, addr + length):
                pass
            else:
                addr = self.find_free(length)
        host_flags = (flags & _HOST_FLAGS) | MAP_FIXED
        if kind == MAP_SHARED_VALIDATE:
            host_flags = (host_flags & ~0x3) | MAP_SHARED
        if file is not None:
            if not file.readable:
                raise SyscallError(EACCES)
            if kind != MAP_PRIVATE and prot & PROT_WRITE and not file.writable:
                raise SyscallError(EACCES)
            res = self.host.mmap_file(addr, length, prot, host_flags, file.mmap_fd(), offset)
            if res < 0:
                raise SyscallError(-res)
        else:
            self._host(NR_MMAP, addr, length, prot, host_flags, -1, 0)
        replaced = self._carve(addr, addr + length)
        shared_id = object() if file is None and flags & 0x3 != MAP_PRIVATE else None
        self._insert(Vma(addr, addr + length, prot, flags & 0x3, file,
                         offset if file is not None else 0, name, shared_id))
        self._release(replaced)
        return addr

    def _check_not_reserved(self, start: int, end: int) -> None:
        """The stub's own pages and the vDSO are not the application's to replace."""
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        for vma in self.vmas[i:]:
            if vma.start >= end:
                break
            if vma.end > start and vma.name in ("[stub]", "[vvar]", "[vvar_vclock]"):
                raise SyscallError(ENOMEM)

    def unmap(self, addr: int, length: int) -> None:
        if addr % PAGE or length <= 0 or addr + length > TASK_SIZE:
            raise SyscallError(EINVAL)
        end = addr + page_up(length)
        self._check_not_reserved(addr, end)
        self._host(NR_MUNMAP, addr, end - addr)
        self._release(self._carve(addr, end))

    def protect(self, addr: int, length: int, prot: int) -> None:
        if addr % PAGE or prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC | 0x01000000 | 0x02000000):
            raise SyscallError(EINVAL)
        prot &= 7
        end = addr + page_up(length)
        if end <= addr:
            if length == 0:
                return
            raise SyscallError(ENOMEM)
        if not self.fully_mapped(addr, end):
            raise SyscallError(ENOMEM)
        self._check_not_reserved(addr, end)
        for vma in self._pieces(addr, end):
            if vma.file is not None and vma.flags & 0x3 != MAP_PRIVATE and prot & PROT_WRITE \
                    and not vma.file.writable:
                raise SyscallError(EACCES)
        self._host(NR_MPROTECT, addr, end - addr, prot)
        for vma in self._pieces(addr, end):
            vma.prot = prot

    def _pieces(self, start: int, end: int) -> list[Vma]:
        """Split VMAs at start/end and return those inside [start, end)."""
        pieces = self._carve(start, end)
        for vma in pieces:
            self._insert(vma)
        return pieces

    def remap(self, old: int, old_len: int, new_len: int, flags: int, new_addr: int) -> int:
        """mremap(2): grow, shrink or move a mapping (the host moves the pages)."""
        MREMAP_MAYMOVE, MREMAP_FIXED, MREMAP_DONTUNMAP = 1, 2, 4
        if flags & ~7 or old % PAGE or (flags & MREMAP_FIXED and not flags & MREMAP_MAYMOVE):
            raise SyscallError(EINVAL)
        if flags & MREMAP_DONTUNMAP:
            raise SyscallError(EINVAL)  # listed in docs/compatibility.md
        old_len, new_len = page_up(old_len), page_up(new_len)
        if new_len == 0:
            raise SyscallError(EINVAL)
        vma = self.find(old)
        if vma is None or (old_len and old + old_len > vma.end) or vma.name.startswith("["):
            raise SyscallError(EFAULT)
        if old_len == 0:
            raise SyscallError(EINVAL)  # duplicating shared mappings: not supported
        if flags & MREMAP_FIXED:
            if new_addr % PAGE or new_addr + new_len > TASK_SIZE:
                raise SyscallError(EINVAL)
            self._check_not_reserved(new_addr, new_addr + new_len)
            target = new_addr
        elif new_len <= old_len:
            if new_len < old_len:
                self.unmap(old + new_len, old_len - new_len)
            return old
        elif self.is_free(old + old_len, old + new_len):
            target = old
        elif flags & MREMAP_MAYMOVE:
            target = self.find_free(new_len)
        else:
            raise SyscallError(ENOMEM)
        proto = vma
        if target == old:
            self._host(NR_MREMAP, old, old_len, new_len, 0, 0)  # grows in place
        else:
            self._host(NR_MREMAP, old, old_len, new_len, MREMAP_MAYMOVE | MREMAP_FIXED, target)
        file, backed = proto.file, proto.file is not None or proto.shared_id is not None
        offset = proto.offset + (old - proto.start) if backed else 0
        gone = self._carve(old, old + old_len) + self._carve(target, target + new_len)
        self._insert(Vma(target, target + new_len, proto.prot, proto.flags, file, offset,
                         proto.name, proto.shared_id))
        self._release(gone)
        return target

    def set_brk(self, new: int) -> int:
        """brk(2): Linux returns the current break on any failure."""
        if new < self.brk_start:
            return self.brk
        old_top, new_top = page_up(self.brk), page_up(new)
        try:
            if new_top > old_top:
                if not self.is_free(old_top, new_top):
                    return self.brk
                self._host(NR_MMAP, old_top, new_top - old_top, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0)
                self._carve(old_top, new_top)
                self._insert(Vma(old_top, new_top, PROT_READ | PROT_WRITE, MAP_PRIVATE, name="[heap]"))
            elif new_top < old_top:
                self._host(NR_MUNMAP, new_top, old_top - new_top)
                self._carve(new_top, old_top)
        except SyscallError:
            return self.brk
        self.brk = new
        return new

    def fork(self) -> "AddressSpace":
        """A copy-on-write copy (host fork of the stub; VMAs copied)."""
        other = AddressSpace.__new__(AddressSpace)
        other.host = self.host.fork()
        other.vmas = [v.copy() for v in self.vmas]
        other._starts = list(self._starts)
        other.brk_start, other.brk, other.mmap_base = self.brk_start, self.brk, self.mmap_base
        other.vdso_base = self.vdso_base
        other.users = 1
        return other

    def destroy(self) -> None:
        self.host.destroy()
        self._release(self.vmas)
        self.vmas, self._starts = [], []

    def maps_text(self) -> str:
        """/proc/PID/maps-style listing, for debugging and procfs."""
        lines = []
        for v in self.vmas:
            perms = ("r" if v.prot & 1 else "-") + ("w" if v.prot & 2 else "-") + \
                    ("x" if v.prot & 4 else "-") + ("s" if v.flags & 3 == MAP_SHARED else "p")
            lines.append(f"{v.start:08x}-{v.end:08x} {perms} {v.offset:08x} 00:00 0 {v.name}".rstrip())
        return "\n".join(lines) + "\n"


