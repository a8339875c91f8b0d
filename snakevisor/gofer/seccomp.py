"""The gofer's seccomp allowlist and the BPF program that enforces it.

The filter is built here in Python: a classic-BPF program is only an array of 8-byte
instructions ``{u16 code; u8 jt; u8 jf; u32 k}``, which struct packs exactly as the C
macros in platform/stub/stub.c do; installing it is one seccomp(2) call through ctypes.  No C
compiler or helper binary is needed where the gofer runs.

Policy: x86_64 entry only (another architecture or an x32 number kills the process); the
calls below are allowed; every other call fails with EPERM, which the serving loop turns into
Rlerror(EPERM) for that one request (fail closed without killing the container's file
system over an unforeseen path in the interpreter).

The list was measured with strace attached to the serving loop (after confinement) through
every request type of tests/e2e/test_gofer.py, malformed input and shutdown (how: the
docstring of that test file), plus a run with 128 KiB reads/writes, 3000 fids and --debug;
the allocator calls and rt_sigreturn are kept for the interpreter even where a run did not
happen to make them.  Each entry names why it is needed.
"""
from __future__ import annotations

import ctypes
import errno
import struct

from snakevisor.syscalls.numbers import SYSCALL_NUMBERS

#: name -> why the serving loop needs it
ALLOWED: dict[str, str] = {
    # transport
    "recvmsg": "receive a request packet", "sendmsg": "send a reply with a donated fd",
    "sendto": "send a reply (socket.send)",
    # walking and opening, always one component beneath an O_PATH fd
    "openat2": "walk/open/create with RESOLVE_BENEATH|NO_SYMLINKS|NO_XDEV",
    "close": "clunk, temporary reopened fds", "newfstatat": "qids, getattr (glibc's fstat)",
    "fstat": "glibc versions whose fstat is not newfstatat",
    "lseek": "readdir offsets", "getdents64": "readdir", "readlinkat": "Treadlink",
    "pread64": "Tread", "pwrite64": "Twrite", "fsync": "Tfsync", "fdatasync": "Tfsync datasync",
    "ftruncate": "setattr size", "fstatfs": "Tstatfs",
    # namespace changes: one validated name beneath a directory fd
    "mkdirat": "Tmkdir", "mknodat": "Tmknod", "symlinkat": "Tsymlink", "linkat": "Tlink",
    "unlinkat": "Tunlinkat", "renameat": "Trenameat", "renameat2": "Trenameat2 (flags)",
    # attributes
    "fchmodat2": "setattr mode on an O_PATH fd", "fchmod": "set-ID bits after chown; mode "
    "before Linux 6.6", "fchownat": "setattr uid/gid, owner of created files",
    "utimensat": "setattr times", "fgetxattr": "Txattrwalk", "flistxattr": "Txattrwalk",
    "fsetxattr": "Tclunk after Txattrcreate", "fremovexattr": "same, with size 0",
    "fcntl": "Tlock/Tgetlock (F_OFD_SETLK/F_OFD_GETLK)",
    # the Python runtime itself
    "write": "log lines on stderr", "mmap": "allocator", "munmap": "allocator",
    "brk": "allocator", "mremap": "allocator", "madvise": "allocator",
    "rt_sigreturn": "return from a signal handler", "exit_group": "exit when the socket closes",
}

AUDIT_ARCH_X86_64 = 0xC000003E
X32_SYSCALL_BIT = 0x40000000
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_SET_MODE_FILTER = 1
NR_SECCOMP = 317

_BPF_LD_W_ABS = 0x00 | 0x00 | 0x20
_BPF_JMP_JEQ_K = 0x05 | 0x10 | 0x00
_BPF_JMP_JGE_K = 0x05 | 0x30 | 0x00
_BPF_RET_K = 0x06 | 0x00
_OFF_NR, _OFF_ARCH = 0, 4  # offsetof(struct seccomp_data, nr / arch)
_INSN = struct.Struct("<HBBI")


def _stmt(code: int, k: int) -> bytes:
    return _INSN.pack(code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return _INSN.pack(code, jt, jf, k)


def build_filter(names: list[str] | None = None, deny_errno: int = errno.EPERM) -> bytes:
    """The BPF program (packed sock_filter array) allowing exactly ``names``."""
    numbers = sorted({SYSCALL_NUMBERS[n] for n in (names if names is not None else ALLOWED)})
    if len(numbers) > 250:
        raise ValueError("allowlist too long for 8-bit jump offsets")
    prog = [
        _stmt(_BPF_LD_W_ABS, _OFF_ARCH),
        _jump(_BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        _stmt(_BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        _stmt(_BPF_LD_W_ABS, _OFF_NR),
        _jump(_BPF_JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        _stmt(_BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
    ]
    n = len(numbers)
    # compare i jumps over the remaining n-1-i compares and the deny return to ALLOW
    prog += [_jump(_BPF_JMP_JEQ_K, nr, n - i, 0) for i, nr in enumerate(numbers)]
    prog.append(_stmt(_BPF_RET_K, SECCOMP_RET_ERRNO | (deny_errno & 0xFFFF)))
    prog.append(_stmt(_BPF_RET_K, SECCOMP_RET_ALLOW))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER) for this (single-threaded) process.

    Needs no_new_privs (or CAP_SYS_ADMIN) already set.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // _INSN.size, ctypes.addressof(buf))
    call = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_uint, ctypes.c_uint,
                            ctypes.c_void_p, use_errno=True)(("syscall", libc))
    if call(NR_SECCOMP, SECCOMP_SET_MODE_FILTER, 0, ctypes.addressof(prog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER)")
