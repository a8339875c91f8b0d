"""Just enough ELF64 parsing for execve: header, program headers, interpreter path."""
from __future__ import annotations

import struct
from dataclasses import dataclass

from snakevisor.kernel.errors import ELIBBAD_OR_NOEXEC, ENOEXEC, SyscallError

ELFMAG = b"\x7fELF"
ELFCLASS64 = 2
ELFDATA2LSB = 1
EM_X86_64 = 62
ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_INTERP, PT_PHDR, PT_GNU_STACK = 1, 3, 6, 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")


@dataclass
class Segment:
    """A PT_LOAD program header."""

    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int

    @property
    def prot(self) -> int:
        return ((self.flags & PF_R) and 1) | ((self.flags & PF_W) and 2) | ((self.flags & PF_X) and 4)


@dataclass
class ElfImage:
    """What the loader needs to know about one ELF file."""

    type: int
    entry: int
    phoff: int
    phnum: int
    phdr_vaddr: int | None  # PT_PHDR, or None
    segments: list[Segment]
    interp: bytes | None
    exec_stack: bool

    @property
    def span(self) -> tuple[int, int]:
        """[lowest page, end) of the loaded image before relocation."""
        lo = min(s.vaddr for s in self.segments) & ~0xFFF
        hi = max(s.vaddr + s.memsz for s in self.segments)
        return lo, hi

    def phdr_address(self) -> int:
        """Unrelocated address of the program headers in memory (AT_PHDR)."""
        if self.phdr_vaddr is not None:
            return self.phdr_vaddr
        for s in self.segments:
            if s.offset <= self.phoff < s.offset + s.filesz:
                return s.vaddr + self.phoff - s.offset
        return 0


def is_elf(header: bytes) -> bool:
    return header[:4] == ELFMAG


def parse(read: "callable", header: bytes, interpreter: bool = False) -> ElfImage:
    """Parse an ELF64 x86_64 executable; `read(offset, length)` reads more of the file.

    Anything else (32-bit, other machines, core files, corrupt headers) is ENOEXEC, as
    Linux answers; for an interpreter it is ELIBBAD.
    """
    bad = SyscallError(ELIBBAD_OR_NOEXEC if interpreter else ENOEXEC)
    if len(header) < _EHDR.size or not is_elf(header):
        raise bad
    (ident, etype, machine, _version, entry, phoff, _shoff, _flags, _ehsize, phentsize,
     phnum, _shentsize, _shnum, _shstrndx) = _EHDR.unpack_from(header)
    if ident[4] != ELFCLASS64 or ident[5] != ELFDATA2LSB or machine != EM_X86_64:
        raise bad
    if etype not in (ET_EXEC, ET_DYN) or phentsize != _PHDR.size or not 0 < phnum <= 512:
        raise bad
    raw = read(phoff, phnum * phentsize)
    if len(raw) != phnum * phentsize:
        raise bad
    segments: list[Segment] = []
    interp = None
    phdr_vaddr = None
    exec_stack = False
    for i in range(phnum):
        ptype, pflags, offset, vaddr, _paddr, filesz, memsz, _align = _PHDR.unpack_from(raw, i * phentsize)
        if ptype == PT_LOAD:
            if filesz > memsz or (vaddr - offset) & 0xFFF:
                raise bad
            if memsz:
                segments.append(Segment(vaddr, offset, filesz, memsz, pflags))
        elif ptype == PT_INTERP:
            if interpreter or not 1 < filesz <= 4096:
                raise bad
            interp = read(offset, filesz).split(b"\0", 1)[0]
        elif ptype == PT_PHDR:
            phdr_vaddr = vaddr
        elif ptype == PT_GNU_STACK:
            exec_stack = bool(pflags & PF_X)
    if not segments:
        raise bad
    segments.sort(key=lambda s: s.vaddr)
    return ElfImage(etype, entry, phoff, phnum, phdr_vaddr, segments, interp, exec_stack)
