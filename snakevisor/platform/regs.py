"""x86_64 register layouts shared by platforms and the kernel (signal frames, clone, exec)."""
from __future__ import annotations

import ctypes

_REG_NAMES = (
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx",
    "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base",
    "gs_base", "ds", "es", "fs", "gs",
)


class Regs(ctypes.Structure):
    """struct user_regs_struct, as PTRACE_GETREGS/SETREGS and core dumps use it."""

    _fields_ = [(name, ctypes.c_ulonglong) for name in _REG_NAMES]

    def copy(self) -> "Regs":
        other = Regs()
        ctypes.pointer(other)[0] = self
        return other

    def __repr__(self) -> str:
        return "Regs(" + ", ".join(f"{n}={getattr(self, n):#x}" for n in _REG_NAMES) + ")"


#: byte offset of each register in struct user (for PTRACE_PEEKUSER/POKEUSER)
REG_OFFSET = {name: 8 * i for i, name in enumerate(_REG_NAMES)}

FXSAVE_SIZE = 512


def default_fxsave() -> bytes:
    """An FXSAVE image of the FPU state a fresh process starts with (FCW 0x37f, MXCSR 0x1f80)."""
    image = bytearray(FXSAVE_SIZE)
    image[0:2] = (0x37F).to_bytes(2, "little")
    image[24:28] = (0x1F80).to_bytes(4, "little")
    image[28:32] = (0xFFFF).to_bytes(4, "little")  # MXCSR_MASK as the CPU reports it
    return bytes(image)
