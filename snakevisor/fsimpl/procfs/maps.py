"""A process's memory as procfs shows it: maps, smaps, statm, and the figures status and
stat print (VmSize..., vsize, rss, start_code...).

The layout (which mappings, their protections, files and names) is the sentry's own VMA
map -- the authority on the application's address space.  How much of it is resident,
dirty or swapped is known only to the host kernel, which holds the pages in the stub
process: those figures are the host's, read from the stub's smaps/status/statm and
matched to our VMAs by address range.
"""
from __future__ import annotations

import bisect
import functools
import os
import weakref
from typing import TYPE_CHECKING, NamedTuple

from snakevisor.fsimpl.procfs import host
from snakevisor.fsimpl.procfs.text import b, s
from snakevisor.mm.address_space import (MAP_PRIVATE, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, Vma,
                                         page_up)

if TYPE_CHECKING:
    from snakevisor.kernel.task import ThreadGroup
    from snakevisor.mm.address_space import AddressSpace

KB_PER_PAGE = PAGE // 1024
#: seq_setwidth(m, 25 + sizeof(void *) * 6 - 1): the prefix is padded to 72 columns
MAPS_NAME_COLUMN = 72
#: what a shared anonymous mapping is in Linux: an unlinked shmem file
SHMEM_NAME = "/dev/zero (deleted)"
SHMEM_DEV = (0, 1)
#: smaps lines whose figures come from the host (kB, summed over the host's VMAs)
SMAPS_FIGURES = ("Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Private_Clean",
                 "Private_Dirty", "Referenced", "Anonymous", "KSM", "LazyFree", "AnonHugePages",
                 "ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb", "Swap",
                 "SwapPss", "Locked")
#: lines a kernel prints only with some configurations (kept when this host prints them)
SMAPS_OPTIONAL = frozenset({"Pss_Dirty", "KSM", "ProtectionKey"})


# --------------------------------------------------------------------------- the layout

class Layout(NamedTuple):
    """mm_struct's addresses that stat prints (fields 26-28 and 45-51)."""

    start_code: int
    end_code: int
    start_data: int
    end_data: int
    start_brk: int
    start_stack: int
    arg_start: int
    arg_end: int
    env_start: int
    env_end: int


def _is_stack(vma: Vma) -> bool:
    return vma.name == "[stack]"


def _is_shared(vma: Vma) -> bool:
    return vma.flags & 0x3 != MAP_PRIVATE  # MAP_SHARED or MAP_SHARED_VALIDATE


def layout(tg: "ThreadGroup") -> Layout:
    """The loader's addresses when it records them on the AddressSpace (start_code, ...);
    otherwise derived from the VMAs of the executable (page-aligned bounds of its code and
    data mappings, the top of [stack]) -- an approximation of the ELF segment bounds."""
    mm = tg.mm

    def recorded(name: str) -> int | None:
        value = getattr(mm, name, None)
        return value if isinstance(value, int) else None

    code = data = (0, 0)
    backed = [v for v in mm.vmas if v.file is not None]
    # the executable's File: named by tg.exe, else the lowest file mapping (the loader
    # maps the main image below the interpreter and libraries)
    main = next((v.file for v in backed if v.file.path == tg.exe),
                backed[0].file if backed else None)
    for v in (v for v in backed if v.file is main):
        if v.prot & PROT_EXEC and code == (0, 0):
            code = (v.start, v.end)
        if v.prot & PROT_WRITE:
            data = (data[0] or v.start, v.end)
    stack_top = next((v.end for v in mm.vmas if _is_stack(v)), 0)
    derived = {"start_code": code[0], "end_code": code[1], "start_data": data[0],
               "end_data": data[1], "start_brk": mm.brk_start, "start_stack": stack_top,
               "arg_start": 0, "arg_end": 0, "env_start": 0, "env_end": 0}
    return Layout(*(v if (v := recorded(k)) is not None else d for k, d in derived.items()))


# --------------------------------------------------------------------------- figures

class MemFigures(NamedTuple):
    """The task_mem lines of status, in kB, in the order Linux prints them."""

    VmPeak: int
    VmSize: int
    VmLck: int
    VmPin: int
    VmHWM: int
    VmRSS: int
    RssAnon: int
    RssFile: int
    RssShmem: int
    VmData: int
    VmStk: int
    VmExe: int
    VmLib: int
    VmPTE: int
    VmSwap: int
    HugetlbPages: int


class VmCounts(NamedTuple):
    """mm_struct's page counters, computed from the VMA map (bytes)."""

    total: int
    data: int  # private writable, not stack (is_data_mapping)
    stack: int
    exec: int  # executable, not writable, not stack (is_exec_mapping)


def vm_counts(mm: "AddressSpace") -> VmCounts:
    total = data = stack = exe = 0
    for v in mm.vmas:
        size = v.end - v.start
        total += size
        if _is_stack(v):
            stack += size
        elif v.prot & PROT_WRITE and not _is_shared(v):
            data += size
        elif v.prot & PROT_EXEC and not v.prot & PROT_WRITE:
            exe += size
    return VmCounts(total, data, stack, exe)


def mm_host_pid(tg: "ThreadGroup") -> int:
    """The host process holding tg's pages (a vfork child shares its parent's)."""
    return getattr(tg.mm.host, "pid", 0) or getattr(tg, "host_pid", 0)


_peaks: "weakref.WeakKeyDictionary[AddressSpace, int]" = weakref.WeakKeyDictionary()


def text_bytes(lay: Layout) -> int:
    """PAGE_ALIGN(end_code) - (start_code & PAGE_MASK), as statm and VmExe count it."""
    if not lay.end_code:
        return 0
    return page_up(lay.end_code) - (lay.start_code & ~(PAGE - 1))


def mem_figures(tg: "ThreadGroup") -> MemFigures:
    """Sizes from our VMA map; resident, locked, page-table and swap figures from the
    stub's host status.  VmPeak is the largest VmSize seen by a reader (not tracked
    between reads)."""
    mm = tg.mm
    counts = vm_counts(mm)
    size_kb = counts.total // 1024
    peak = max(_peaks.get(mm, 0), size_kb)
    _peaks[mm] = peak
    text = min(text_bytes(layout(tg)), counts.exec) // 1024
    hs = host.status(mm_host_pid(tg))

    def h(key: str) -> int:
        return host.kb(hs.get(key))

    return MemFigures(peak, size_kb, h("VmLck"), h("VmPin"), h("VmHWM"), h("VmRSS"),
                      h("RssAnon"), h("RssFile"), h("RssShmem"), counts.data // 1024,
                      counts.stack // 1024, text, counts.exec // 1024 - text, h("VmPTE"),
                      h("VmSwap"), h("HugetlbPages"))


def rss_pages(tg: "ThreadGroup") -> int:
    return host.statm(mm_host_pid(tg))[1]


# --------------------------------------------------------------------------- statm

def statm(tg: "ThreadGroup") -> bytes:
    """size resident shared text lib data dt, in pages (lib and dt are always 0)."""
    if not tg.alive:
        return b"0 0 0 0 0 0 0\n"
    counts = vm_counts(tg.mm)
    hm = host.statm(mm_host_pid(tg))
    text = text_bytes(layout(tg)) // PAGE
    return b(f"{counts.total // PAGE} {hm[1]} {hm[2]} {text} 0 "
             f"{(counts.data + counts.stack) // PAGE} 0\n")


# --------------------------------------------------------------------------- maps

def _perms(vma: Vma) -> str:
    return (("r" if vma.prot & PROT_READ else "-") + ("w" if vma.prot & PROT_WRITE else "-") +
            ("x" if vma.prot & PROT_EXEC else "-") + ("s" if _is_shared(vma) else "p"))


class _Ident(NamedTuple):
    offset: int
    major: int
    minor: int
    inode: int
    name: str


def _identify(vma: Vma, host_inodes: dict[int, int]) -> _Ident:
    """What the maps line says about the backing: offset, device, inode and name."""
    if vma.file is not None:
        try:
            st = vma.file.stat()
            dev, ino = st.st_dev, st.st_ino
        except Exception:  # a file that cannot stat itself still has a path
            dev = ino = 0
        return _Ident(vma.offset, os.major(dev), os.minor(dev), ino,
                      vma.file.path.replace("\n", "\\012"))
    if vma.shared_id is not None:
        ino = host_inodes.get(vma.start) or (id(vma.shared_id) >> 4) & 0xFFFFF
        return _Ident(vma.offset, *SHMEM_DEV, ino, SHMEM_NAME)
    return _Ident(0, 0, 0, 0, vma.name)


def map_line(start: int, end: int, perms: str, offset: int, major: int, minor: int,
             inode: int, name: str) -> str:
    """One maps line (show_map_vma): the prefix padded to 72 columns, a space, the name;
    an anonymous mapping keeps the prefix's trailing space."""
    prefix = f"{start:08x}-{end:08x} {perms} {offset:08x} {major:02x}:{minor:02x} {inode} "
    if not name:
        return prefix + "\n"
    return prefix.ljust(MAPS_NAME_COLUMN) + " " + name + "\n"


def _host_inodes(entries: list[host.HostVma]) -> dict[int, int]:
    return {e.start: e.inode for e in entries}


@functools.cache
def gate_area() -> tuple[int, int] | None:
    """The host kernel's [vsyscall] page above user space, which every stub has too
    (Linux lists this gate area last, outside the VMA counts); None if it has none."""
    for line in s(host.read("self/maps") or b"").splitlines():
        if line.endswith("[vsyscall]"):
            lo, _, hi = line.split()[0].partition("-")
            return int(lo, 16), int(hi, 16)
    return None


def listed_vmas(tg: "ThreadGroup") -> list[Vma]:
    """The VMAs maps and smaps list: the address space's, then the gate area."""
    vmas = list(tg.mm.vmas)
    gate = gate_area()
    if gate is not None and not (vmas and vmas[-1].end > gate[0]):
        vmas.append(Vma(gate[0], gate[1], PROT_EXEC, MAP_PRIVATE, name="[vsyscall]"))
    return vmas


def maps(tg: "ThreadGroup") -> bytes:
    """/proc/PID/maps (empty for a zombie, whose memory is gone)."""
    if not tg.alive:
        return b""
    inodes = _host_inodes(host.smaps(mm_host_pid(tg))) if any(
        v.shared_id is not None and v.file is None for v in tg.mm.vmas) else {}
    out = []
    for v in listed_vmas(tg):
        ident = _identify(v, inodes)
        out.append(map_line(v.start, v.end, _perms(v), *ident))
    return b("".join(out))


# --------------------------------------------------------------------------- smaps

def vm_flags(vma: Vma) -> list[str]:
    """show_smap_vma_flags for a mapping made through the sentry: access bits, the MAY*
    bits mmap grants, VM_GROWSDOWN and VM_ACCOUNT of the stack, the special mappings'."""
    if vma.name in ("[vvar]", "[vvar_vclock]"):
        return ["rd", "mr", "pf", "io", "de", "dd"]
    if vma.name == "[vdso]":
        return ["rd", "ex", "mr", "mw", "me", "de"]
    if vma.name == "[vsyscall]":
        return ["ex"]
    flags = [f for bit, f in ((PROT_READ, "rd"), (PROT_WRITE, "wr"), (PROT_EXEC, "ex"))
             if vma.prot & bit]
    shared = _is_shared(vma)
    writable_file = vma.file is None or vma.file.writable
    if shared and writable_file:
        flags.append("sh")
    flags.append("mr")
    if not shared or writable_file:
        flags.append("mw")
    flags.append("me")
    if shared:
        flags.append("ms")
    if _is_stack(vma):
        flags.append("gd")
    if not shared and (vma.prot & PROT_WRITE or _is_stack(vma)):
        flags.append("ac")
    return flags


def _host_figures(entries: list[host.HostVma], starts: list[int], vma: Vma
                  ) -> tuple[dict[str, int], host.HostVma | None]:
    """The host's figures for [vma.start, vma.end): sums over the host VMAs inside it,
    prorated by size for one the host merged with a neighbour.  Also the host VMA that
    matches exactly, if any (its flags and THP eligibility are the real ones)."""
    sums = dict.fromkeys(SMAPS_FIGURES, 0)
    exact = None
    i = max(bisect.bisect_right(starts, vma.start) - 1, 0)
    for e in entries[i:]:
        if e.start >= vma.end:
            break
        lo, hi = max(e.start, vma.start), min(e.end, vma.end)
        if hi <= lo:
            continue
        if e.start == vma.start and e.end == vma.end:
            exact = e
        share = (hi - lo) / (e.end - e.start)
        for key in SMAPS_FIGURES:
            value = host.kb(e.values.get(key))
            sums[key] += value if share == 1 else round(value * share / KB_PER_PAGE) * KB_PER_PAGE
    return sums, exact


SMAPS_KEYS = ("Size", "KernelPageSize", "MMUPageSize", *SMAPS_FIGURES, "THPeligible",
              "ProtectionKey")


@functools.cache
def smaps_keys() -> tuple[str, ...]:
    """The per-VMA lines in Linux 6.x order, less the optional ones this host kernel
    does not print (judged from the sentry's own first smaps block)."""
    data = host.read("self/smaps") or b""
    first = data.split(b"\nVmFlags:", 1)[0]
    present = set(host.key_values(first)) if first else set(SMAPS_KEYS) - {"ProtectionKey"}
    return tuple(k for k in SMAPS_KEYS if k not in SMAPS_OPTIONAL or k in present)


def smaps(tg: "ThreadGroup") -> bytes:
    """/proc/PID/smaps: each maps line followed by its figures."""
    if not tg.alive:
        return b""
    entries = host.smaps(mm_host_pid(tg))
    starts = [e.start for e in entries]
    inodes = _host_inodes(entries)
    keys = smaps_keys()
    out = []
    for v in listed_vmas(tg):
        ident = _identify(v, inodes)
        out.append(map_line(v.start, v.end, _perms(v), *ident))
        figures, exact = _host_figures(entries, starts, v)
        figures.update(Size=(v.end - v.start) // 1024, KernelPageSize=KB_PER_PAGE,
                       MMUPageSize=KB_PER_PAGE)
        for key in keys:
            if key == "THPeligible":
                value = exact.values.get(key, "0") if exact else "0"
                out.append(f"{'THPeligible:':<16}{value:>8}\n")
            elif key == "ProtectionKey":
                value = exact.values.get(key, "0") if exact else "0"
                out.append(f"{'ProtectionKey:':<16}{value:>8}\n")
            else:
                out.append(f"{key + ':':<16}{figures[key]:>8} kB\n")
        flags = vm_flags(v)
        if exact is not None and "VmFlags" in exact.values and not _is_stack(v):
            flags = exact.values["VmFlags"].split()
        out.append("VmFlags: " + "".join(f + " " for f in flags) + "\n")
    return b("".join(out))
