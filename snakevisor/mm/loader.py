"""execve, implemented by the sentry (MISSION.md decision 3).

The new image is built in a fresh stub forked from the pristine template: ELF segments are
mapped from host file descriptors (never copied), the stack with argv/envp/auxv is written
by the sentry, and registers are set to the entry point.  Only when everything that can
fail with an errno has been checked does the calling process lose its old image.
"""
from __future__ import annotations

import os
import random
import stat
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import (
    MissingInterpreter,
    E2BIG, EACCES, EAGAIN, ELOOP, ENOENT, ENOEXEC, SyscallError,
)
from snakevisor.mm import elf
from snakevisor.fsimpl.sandboxroot import NOEXEC, NOSUID, file_mount_flags
from snakevisor.syscalls.sys_cred import exec_ids, exec_secure
from snakevisor.mm.address_space import (
    MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PAGE, PROT_READ, PROT_WRITE, TASK_SIZE,
    AddressSpace, page_down, page_up,
)
from snakevisor.platform.regs import default_fxsave

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

BINPRM_BUF_SIZE = 256
MAX_INTERP_DEPTH = 4  # Linux: BINPRM_MAX_RECURSION
MAX_ARG_STRLEN = 32 * PAGE
ELF_ET_DYN_BASE = 0x555555554000
STACK_GUARD_GAP = 256 * PAGE
AT_FDCWD = -100
O_RDONLY, O_CLOEXEC = os.O_RDONLY, os.O_CLOEXEC


@dataclass
class Program:
    """An executable chosen by execve, after `#!` scripts have been unwrapped."""

    file: "File"
    path: str  # canonical sandbox path (/proc/self/exe)
    filename: bytes  # the name given to execve (AT_EXECFN)
    argv: list[bytes]
    image: elf.ElfImage
    interp: "tuple[File, elf.ElfImage] | None"
    #: the (euid, egid) the image runs with (a set-id file's owner/group: exec_ids)
    ids: tuple[int, int]


def _host_auxv() -> dict[int, int]:
    """The sentry's own auxv: AT_HWCAP/HWCAP2/MINSIGSTKSZ describe the same CPU."""
    with open("/proc/self/auxv", "rb") as f:
        raw = f.read()
    out = {}
    for i in range(0, len(raw) - 15, 16):
        key, val = struct.unpack_from("<QQ", raw, i)
        if key == 0:
            break
        out[key] = val
    return out


_HOST_AUXV = _host_auxv()
_rng = random.SystemRandom()


def _read_whole(file: "File", task: "Task"):
    def read(offset: int, length: int) -> bytes:
        return file.pread(task, length, offset)
    return read


def _open_executable(task: "Task", dirfd: int, path: bytes, flags: int = 0) -> "File":
    if not path:
        if not flags & 0x1000:  # AT_EMPTY_PATH: the fd itself is the program
            raise SyscallError(ENOENT)
        file = task.tg.fs.root.reopen(task, dirfd)
    else:
        file = task.tg.fs.root.open(task, dirfd, path,
                                    O_RDONLY | O_CLOEXEC | (flags & 0x100 and os.O_NOFOLLOW), 0)
    try:
        _check_exec(task, file)
    except BaseException:
        file.release()
        raise
    return file


def _check_exec(task: "Task", file: "File") -> None:
    """do_open_execat's checks of a program or interpreter: a regular file with an x bit,
    not on a noexec mount (path_noexec) — EACCES otherwise."""
    st = file.stat()
    if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o111 or \
            NOEXEC in file_mount_flags(task, file):
        raise SyscallError(EACCES)


def resolve(task: "Task", dirfd: int, filename: bytes, argv: list[bytes], flags: int = 0,
            depth: int = 0) -> Program:
    """Open the program, unwrapping `#!` interpreters; everything that can fail, fails here."""
    if depth > MAX_INTERP_DEPTH:
        raise SyscallError(ELOOP)
    file = _open_executable(task, dirfd, filename, flags)
    try:
        header = file.pread(task, BINPRM_BUF_SIZE, 0)
        if header[:2] == b"#!":
            interp, new_argv = _parse_shebang(header, filename, argv)
        else:
            image = elf.parse(_read_whole(file, task), header)
            interp_part = _open_interpreter(task, image.interp) if image.interp is not None else None
            st = file.stat()
            ids = exec_ids(task, st.st_mode, st.st_uid, st.st_gid,
                           NOSUID in file_mount_flags(task, file))
            return Program(file, file.path, filename, argv, image, interp_part, ids)
    except BaseException:
        file.release()
        raise
    file.release()
    try:
        return resolve(task, AT_FDCWD, interp, new_argv, 0, depth + 1)
    except MissingInterpreter:
        raise
    except SyscallError as exc:
        if exc.errno == ENOENT:
            raise MissingInterpreter(interp) from None
        raise


def _parse_shebang(header: bytes, filename: bytes, argv: list[bytes]) -> tuple[bytes, list[bytes]]:
    """Split a `#!interp [arg]` line as Linux does: one optional argument, the rest verbatim."""
    line = header[2:].split(b"\n", 1)[0].strip(b" \t")
    if not line:
        raise SyscallError(ENOEXEC)
    parts = line.replace(b"\t", b" ").split(b" ", 1)
    interp = parts[0]
    extra = parts[1].strip(b" \t") if len(parts) > 1 else b""
    return interp, [interp] + ([extra] if extra else []) + [filename] + argv[1:]


def _open_interpreter(task: "Task", path: bytes) -> tuple["File", elf.ElfImage]:
    try:
        ifile = task.tg.fs.root.open(task, AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0)
    except SyscallError as exc:
        if exc.errno == ENOENT:
            raise MissingInterpreter(path) from None
        raise
    try:
        _check_exec(task, ifile)
        iheader = ifile.pread(task, BINPRM_BUF_SIZE, 0)
        return ifile, elf.parse(_read_whole(ifile, task), iheader, interpreter=True)
    except BaseException:
        ifile.release()
        raise


def _map_image(mm: AddressSpace, file: "File", image: elf.ElfImage, bias: int) -> int:
    """Map an image's PT_LOAD segments at `bias`; returns the end of the highest segment."""
    top = 0
    for seg in image.segments:
        start = page_down(bias + seg.vaddr)
        file_end = bias + seg.vaddr + seg.filesz
        mem_end = bias + seg.vaddr + seg.memsz
        prot = seg.prot
        if seg.filesz:
            mm.map(start, page_up(file_end) - start, prot, MAP_PRIVATE | MAP_FIXED, file,
                   page_down(seg.offset), name=file.path)
            if mem_end > file_end and file_end % PAGE:
                # The bss begins inside the last file page: clear the file's bytes there.
                mm.host.write(file_end, bytes(page_up(file_end) - file_end))
        anon_start = page_up(file_end) if seg.filesz else start
        if page_up(mem_end) > anon_start:
            mm.map(anon_start, page_up(mem_end) - anon_start, prot,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
        top = max(top, mem_end)
    return top


def _build_stack(mm: AddressSpace, task: "Task", prog: Program, envp: list[bytes], bias: int,
                 interp_bias: int, stack_top: int) -> int:
    """Write strings, auxv, envp, argv and argc below stack_top; returns the initial %rsp."""
    creds = task.tg.creds
    blob = bytearray()

    def put(data: bytes) -> int:
        blob[:0] = data  # strings grow down from the top
        return len(blob)

    execfn_off = put(prog.filename + b"\0")
    env_offs = [put(e + b"\0") for e in reversed(envp)][::-1]
    arg_offs = [put(a + b"\0") for a in reversed(prog.argv)][::-1]
    platform_off = put(b"x86_64\0")
    random_off = put(os.urandom(16))
    pad = (-len(blob)) % 16
    blob[:0] = bytes(pad)
    strings_base = stack_top - len(blob)

    def addr(off: int) -> int:  # offsets were taken while the blob was shorter
        return stack_top - off

    image = prog.image
    auxv = [
        (33, mm.vdso_base), (51, _HOST_AUXV.get(51, 0)), (16, _HOST_AUXV.get(16, 0)),
        (6, PAGE), (17, 100), (3, bias + image.phdr_address()), (4, 56), (5, image.phnum),
        (7, interp_bias), (8, 0), (9, bias + image.entry), (11, creds.ruid), (12, prog.ids[0]),
        (13, creds.rgid), (14, prog.ids[1]), (23, int(exec_secure(task.tg, prog.ids))),
        (25, addr(random_off)),
        (26, _HOST_AUXV.get(26, 0)), (31, addr(execfn_off)), (15, addr(platform_off)), (0, 0),
    ]
    auxv = [(k, v) for k, v in auxv if k not in (33, 51) or v]
    words = [len(prog.argv)] + [addr(o) for o in arg_offs] + [0] + [addr(o) for o in env_offs] + [0]
    for k, v in auxv:
        words += [k, v]
    table = struct.pack(f"<{len(words)}Q", *words)
    sp = (strings_base - len(table)) & ~0xF
    table += bytes(strings_base - sp - len(table))
    mm.host.write(sp, table + bytes(blob))
    return sp


def load(task: "Task", prog: Program, envp: list[bytes]) -> AddressSpace:
    """Build the new address space and set the thread's registers.  Point of no return."""
    kernel = task.kernel
    platform = kernel.platform
    try:
        host = platform.new_address_space()
    except OSError:  # the host refused a process (a pids cgroup limit): nothing changed yet
        raise SyscallError(EAGAIN) from None
    mm = AddressSpace(host, platform.host_vmas)
    try:
        limit = task.tg.rlimits[3][0]  # RLIMIT_STACK
        stack_size = min(limit if limit < (1 << 62) else 8 << 20, 1 << 30)
        stack_size = max(page_up(stack_size), 128 * 1024)
        stack_top = TASK_SIZE - 0x1000 - (_rng.getrandbits(18) << 12)
        while not mm.is_free(stack_top - stack_size - STACK_GUARD_GAP, stack_top):
            stack_top = mm.find_free(stack_size + STACK_GUARD_GAP, below=stack_top) + stack_size + STACK_GUARD_GAP
        stack_bottom = stack_top - stack_size
        mm.map(stack_bottom, stack_size, PROT_READ | PROT_WRITE,
               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | 0x4000, name="[stack]")
        mm.mmap_base = page_down(stack_bottom - STACK_GUARD_GAP - (128 << 20) - (_rng.getrandbits(28) << 12) // 64)
        image = prog.image
        lo, hi = image.span
        if image.type == elf.ET_DYN:
            bias = page_down(ELF_ET_DYN_BASE + (_rng.getrandbits(28) << 12) // 256) - lo
        else:
            bias = 0
        top = _map_image(mm, prog.file, image, bias)
        interp_bias = 0
        entry = bias + image.entry
        if prog.interp is not None:
            ifile, iimage = prog.interp
            ilo, ihi = iimage.span
            base = mm.find_free(page_up(ihi - ilo))
            interp_bias = base - ilo
            _map_image(mm, ifile, iimage, interp_bias)
            entry = interp_bias + iimage.entry
        mm.brk_start = mm.brk = page_up(top) + ((_rng.getrandbits(13) << 12) if image.type == elf.ET_DYN else 0)
        sp = _build_stack(mm, task, prog, envp, bias, interp_bias if prog.interp else 0, stack_top)
        thread = mm.host.control
        regs = thread.get_regs()
        for name in ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
                     "rcx", "rdx", "rsi", "rdi", "fs_base", "gs_base"):
            setattr(regs, name, 0)
        regs.orig_rax = 0xFFFFFFFFFFFFFFFF
        regs.rip = entry
        regs.rsp = sp
        regs.eflags = 0x202
        thread.set_regs(regs)
        thread.set_fpregs(default_fxsave())
    except BaseException:
        mm.destroy()
        raise
    return mm


def check_strings(strings: list[bytes]) -> None:
    """E2BIG as Linux: one string over MAX_ARG_STRLEN or the total over 1/4 of the stack limit."""
    total = 0
    for s in strings:
        if len(s) + 1 > MAX_ARG_STRLEN:
            raise SyscallError(E2BIG)
        total += len(s) + 1 + 8
    if total > 2 * 1024 * 1024:
        raise SyscallError(E2BIG)
