"""x86_64 signal frames, byte for byte as Linux builds and reads them.

Three pieces of ABI live here, all pure functions of bytes and registers so they can be
tested without a process:

* ``struct siginfo`` (`pack_siginfo`, `unpack_siginfo`, `siginfo_from_user`), whose union
  layout depends on the signal and si_code (Linux's ``siginfo_layout``);
* delivery (`build_rt_frame`): the stack choice, the XSAVE image with its software bytes and
  magic, ``struct rt_sigframe`` {pretcode, ucontext, siginfo} and the handler's registers
  (arch/x86/kernel/signal.c, signal_64.c, fpu/signal.c);
* ``rt_sigreturn`` (`parse_rt_frame`): what Linux restores from a frame the handler may have
  edited, including the FPU checks that decide between a full XRSTOR, an FXRSTOR-only
  restore and SIGSEGV.

Sizes and offsets are pinned against the uapi headers and a native handler in
tests/unit/test_sigframe.py.  The sigaltstack rules (`on_sig_stack`, `do_sigaltstack`, ...)
are here too because delivery and sigreturn depend on them; the sigaltstack system call can
use the same functions.
"""
from __future__ import annotations

import signal as _signal
import struct
from dataclasses import dataclass
from typing import Callable, NamedTuple

from snakevisor.kernel.errors import EFAULT, EINVAL, ENOMEM, EPERM, SyscallError
from snakevisor.platform.regs import FXSAVE_SIZE, Regs

_U64 = (1 << 64) - 1

# -- siginfo ------------------------------------------------------------------------------
SIGINFO_SIZE = 128
#: sizeof(struct kernel_siginfo): the part Linux keeps; the rest reaches user space as zeros
KERNEL_SIGINFO_SIZE = 48

SI_USER, SI_KERNEL = 0, 0x80
SI_QUEUE, SI_TIMER, SI_MESGQ, SI_ASYNCIO = -1, -2, -3, -4
SI_SIGIO, SI_TKILL, SI_DETHREAD = -5, -6, -7
SI_ASYNCNL = -60

ILL_ILLOPC, ILL_ILLOPN, ILL_ILLADR, ILL_ILLTRP = 1, 2, 3, 4
ILL_PRVOPC, ILL_PRVREG, ILL_COPROC, ILL_BADSTK = 5, 6, 7, 8
FPE_INTDIV, FPE_INTOVF, FPE_FLTDIV, FPE_FLTOVF = 1, 2, 3, 4
FPE_FLTUND, FPE_FLTRES, FPE_FLTINV, FPE_FLTSUB = 5, 6, 7, 8
SEGV_MAPERR, SEGV_ACCERR, SEGV_BNDERR, SEGV_PKUERR = 1, 2, 3, 4
BUS_ADRALN, BUS_ADRERR, BUS_OBJERR, BUS_MCEERR_AR, BUS_MCEERR_AO = 1, 2, 3, 4, 5
TRAP_BRKPT, TRAP_TRACE, TRAP_BRANCH, TRAP_HWBKPT, TRAP_UNK, TRAP_PERF = 1, 2, 3, 4, 5, 6
CLD_EXITED, CLD_KILLED, CLD_DUMPED, CLD_TRAPPED, CLD_STOPPED, CLD_CONTINUED = 1, 2, 3, 4, 5, 6
POLL_IN, POLL_OUT, POLL_MSG, POLL_ERR, POLL_PRI, POLL_HUP = 1, 2, 3, 4, 5, 6
SYS_SECCOMP, SYS_USER_DISPATCH = 1, 2

_SIGILL, _SIGTRAP, _SIGBUS, _SIGFPE = 4, 5, 7, 8
_SIGSEGV, _SIGCHLD, _SIGPOLL, _SIGSYS = 11, 17, 29, 31
assert (_SIGILL, _SIGTRAP, _SIGBUS, _SIGFPE, _SIGSEGV, _SIGCHLD, _SIGPOLL, _SIGSYS) == (
    _signal.SIGILL, _signal.SIGTRAP, _signal.SIGBUS, _signal.SIGFPE, _signal.SIGSEGV,
    _signal.SIGCHLD, _signal.SIGPOLL, _signal.SIGSYS)
_NSIGPOLL = 6
#: signals whose positive si_codes select a signal-specific union member, and how many
#: codes they have (NSIGILL, NSIGFPE, ...)
_SPECIFIC = {_SIGILL: (11, "fault"), _SIGFPE: (15, "fault"), _SIGSEGV: (10, "fault"),
             _SIGBUS: (5, "fault"), _SIGTRAP: (6, "fault"), _SIGCHLD: (6, "chld"),
             _SIGPOLL: (_NSIGPOLL, "poll"), _SIGSYS: (2, "sys")}

#: union member -> ((field, offset in siginfo, struct code), ...)
SIGINFO_FIELDS: dict[str, tuple[tuple[str, int, str], ...]] = {
    "kill": (("pid", 16, "i"), ("uid", 20, "I")),
    "timer": (("timerid", 16, "i"), ("overrun", 20, "i"), ("value", 24, "Q")),
    "rt": (("pid", 16, "i"), ("uid", 20, "I"), ("value", 24, "Q")),
    "chld": (("pid", 16, "i"), ("uid", 20, "I"), ("status", 24, "i"), ("utime", 32, "q"),
             ("stime", 40, "q")),
    "fault": (("addr", 16, "Q"),),
    "fault_mceerr": (("addr", 16, "Q"), ("addr_lsb", 24, "h")),
    "fault_bnderr": (("addr", 16, "Q"), ("lower", 32, "Q"), ("upper", 40, "Q")),
    "fault_pkuerr": (("addr", 16, "Q"), ("pkey", 32, "I")),
    "fault_perf": (("addr", 16, "Q"), ("perf_data", 24, "Q"), ("perf_type", 32, "I"),
                   ("perf_flags", 36, "I")),
    "poll": (("band", 16, "q"), ("fd", 24, "i")),
    "sys": (("call_addr", 16, "Q"), ("syscall", 24, "i"), ("arch", 28, "I")),
}
_SIGINFO_HEAD = struct.Struct("<iii")


def siginfo_layout(signo: int, code: int) -> str:
    """Which union member a (signal, si_code) pair uses: Linux's siginfo_layout()."""
    if SI_USER < code < SI_KERNEL:
        spec = _SPECIFIC.get(signo)
        if spec is not None and code <= spec[0]:
            layout = spec[1]
            if signo == _SIGBUS and code in (BUS_MCEERR_AR, BUS_MCEERR_AO):
                return "fault_mceerr"
            if signo == _SIGSEGV and code == SEGV_BNDERR:
                return "fault_bnderr"
            if signo == _SIGSEGV and code == SEGV_PKUERR:
                return "fault_pkuerr"
            if signo == _SIGTRAP and code == TRAP_PERF:
                return "fault_perf"
            return layout
        if code <= _NSIGPOLL:
            return "poll"
        return "kill"
    if code == SI_TIMER:
        return "timer"
    if code == SI_SIGIO:
        return "poll"
    if code < 0:
        return "rt"
    return "kill"


def pack_siginfo(signo: int, code: int, errno: int = 0, *, pid: int = 0, uid: int = 0,
                 status: int = 0, utime: int = 0, stime: int = 0, value: int = 0, addr: int = 0,
                 addr_lsb: int = 0, lower: int = 0, upper: int = 0, pkey: int = 0,
                 perf_data: int = 0, perf_type: int = 0, perf_flags: int = 0,
                 timerid: int = 0, overrun: int = 0, band: int = 0, fd: int = 0,
                 call_addr: int = 0, syscall: int = 0, arch: int = 0) -> bytes:
    """A 128-byte siginfo.  Only the fields of the union member that (signo, code) selects
    are stored (see SIGINFO_FIELDS); a nonzero field of another member is a caller bug (it
    would overlap one that is there) and raises ValueError."""
    fields = {"pid": pid, "uid": uid, "status": status, "utime": utime, "stime": stime,
              "value": value, "addr": addr, "addr_lsb": addr_lsb, "lower": lower,
              "upper": upper, "pkey": pkey, "perf_data": perf_data, "perf_type": perf_type,
              "perf_flags": perf_flags, "timerid": timerid, "overrun": overrun, "band": band,
              "fd": fd, "call_addr": call_addr, "syscall": syscall, "arch": arch}
    layout = siginfo_layout(signo, code)
    spec = SIGINFO_FIELDS[layout]
    names = {name for name, _, _ in spec}
    stray = [k for k, v in fields.items() if v and k not in names]
    if stray:
        raise ValueError(f"siginfo fields {stray} do not belong to the {layout!r} layout "
                         f"of signal {signo} code {code}")
    buf = bytearray(SIGINFO_SIZE)
    _SIGINFO_HEAD.pack_into(buf, 0, signo, errno, code)
    for name, off, fmt in spec:
        size = struct.calcsize(fmt)
        struct.pack_into("<" + fmt.upper(), buf, off, fields[name] & ((1 << (8 * size)) - 1))
    return bytes(buf)


def unpack_siginfo(raw: bytes) -> dict:
    """The fields of a siginfo as a dict: signo, errno, code, layout and the member's
    fields (signed where Linux's are)."""
    if len(raw) < SIGINFO_SIZE:
        raise ValueError("siginfo is 128 bytes")
    signo, errno, code = _SIGINFO_HEAD.unpack_from(raw, 0)
    layout = siginfo_layout(signo, code)
    out: dict = {"signo": signo, "errno": errno, "code": code, "layout": layout}
    for name, off, fmt in SIGINFO_FIELDS[layout]:
        out[name] = struct.unpack_from("<" + fmt, raw, off)[0]
    return out


def _known_siginfo_layout(signo: int, code: int) -> bool:
    """Linux's known_siginfo_layout(): may the 80 bytes beyond kernel_siginfo be dropped?"""
    if code == SI_KERNEL:
        return True
    if code > SI_USER:
        spec = _SPECIFIC.get(signo)
        return code <= (spec[0] if spec is not None else _NSIGPOLL)
    return code >= SI_DETHREAD or code == SI_ASYNCNL


def siginfo_from_user(raw: bytes, signo: int) -> bytes:
    """A siginfo copied in from the application (rt_sigqueueinfo, rt_tgsigqueueinfo,
    pidfd_send_signal) as Linux keeps it: si_signo forced to `signo`, bytes 48..127 zeroed,
    E2BIG when the si_code is unknown and those bytes are not all zero.  (The EPERM rule
    for si_code >= 0 or SI_TKILL sent to another process is the caller's.)"""
    if len(raw) != SIGINFO_SIZE:
        raise ValueError("siginfo is 128 bytes")
    code = struct.unpack_from("<i", raw, 8)[0]
    if not _known_siginfo_layout(signo, code) and any(raw[KERNEL_SIGINFO_SIZE:]):
        raise SyscallError(7)  # E2BIG
    head = struct.pack("<i", signo) + raw[4:KERNEL_SIGINFO_SIZE]
    return head.ljust(SIGINFO_SIZE, b"\0")


# -- the frame ----------------------------------------------------------------------------
SA_SIGINFO, SA_RESTORER, SA_ONSTACK = 0x4, 0x04000000, 0x08000000
SS_ONSTACK, SS_DISABLE, SS_AUTODISARM = 1, 2, 1 << 31
SS_FLAG_BITS = SS_AUTODISARM
MINSIGSTKSZ = 2048
UC_FP_XSTATE, UC_SIGCONTEXT_SS, UC_STRICT_RESTORE_SS = 1, 2, 4
FP_XSTATE_MAGIC1, FP_XSTATE_MAGIC2, FP_XSTATE_MAGIC2_SIZE = 0x46505853, 0x46505845, 4
USER_CS, USER_DS = 0x33, 0x2B
#: highest user address + 1 with 4-level paging: access_ok()'s limit
TASK_SIZE_MAX = (1 << 47) - 4096
REDZONE = 128

EFLAGS_CF, EFLAGS_PF, EFLAGS_AF, EFLAGS_ZF, EFLAGS_SF = 0x1, 0x4, 0x10, 0x40, 0x80
EFLAGS_TF, EFLAGS_DF, EFLAGS_OF, EFLAGS_RF, EFLAGS_AC = 0x100, 0x400, 0x800, 0x10000, 0x40000
#: the flags rt_sigreturn takes from the frame (64-bit FIX_EFLAGS: RF is not among them)
FIX_EFLAGS = (EFLAGS_AC | EFLAGS_OF | EFLAGS_DF | EFLAGS_TF | EFLAGS_SF | EFLAGS_ZF
              | EFLAGS_AF | EFLAGS_PF | EFLAGS_CF)
#: cleared on handler entry (handle_signal); AC is kept, as natively
HANDLER_CLEARS_EFLAGS = EFLAGS_DF | EFLAGS_RF | EFLAGS_TF

#: struct sigcontext_64 through fpstate; reserved1[8] follows (64 bytes Linux never touches)
SIGCONTEXT_REGS = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15", "rdi", "rsi", "rbp",
                   "rbx", "rdx", "rax", "rcx", "rsp", "rip", "eflags")
_SIGCONTEXT = struct.Struct("<18Q4H5Q")
SIGCONTEXT_SIZE = 256
SIGCONTEXT_OFFSETS = {name: 8 * i for i, name in enumerate(SIGCONTEXT_REGS)}
SIGCONTEXT_OFFSETS.update(cs=144, gs=146, fs=148, ss=150, err=152, trapno=160, oldmask=168,
                          cr2=176, fpstate=184, reserved1=192)

#: struct ucontext (asm-generic/ucontext.h with the kernel's 8-byte sigset_t)
UCONTEXT_OFFSETS = {"uc_flags": 0, "uc_link": 8, "uc_stack": 16, "ss_sp": 16, "ss_flags": 24,
                    "ss_size": 32, "uc_mcontext": 40, "uc_sigmask": 296}
UCONTEXT_SIZE = 304
_UC_HEAD = struct.Struct("<QQQI4xQ")  # uc_flags, uc_link, ss_sp, ss_flags, ss_size

#: struct rt_sigframe {char *pretcode; struct ucontext uc; struct siginfo info;}
FRAME_UC, FRAME_INFO = 8, 8 + UCONTEXT_SIZE
FRAME_SIZE = FRAME_INFO + SIGINFO_SIZE  # 440

# FXSAVE / XSAVE image (struct _fpstate_64, struct _xstate)
FX_FCW, FX_MXCSR, FX_MXCSR_MASK, FX_ST, FX_XMM = 0, 24, 28, 32, 160
FX_SW_BYTES = 464  #: struct _fpx_sw_bytes in the software-reserved tail of FXSAVE
_SW_BYTES = struct.Struct("<IIQI28x")  # magic1, extended_size, xfeatures, xstate_size
XSAVE_HEADER = 512
XSAVE_HEADER_SIZE = 64
XSTATE_MIN_SIZE = XSAVE_HEADER + XSAVE_HEADER_SIZE
XFEATURE_FP, XFEATURE_SSE, XFEATURE_YMM = 1, 2, 4
XFEATURE_FPSSE = XFEATURE_FP | XFEATURE_SSE
XFEATURE_PKRU = 1 << 9
XFEATURE_XTILE_DATA = 1 << 18  #: the one dynamically enabled feature (AMX tile data)
FCW_DEFAULT, MXCSR_DEFAULT = 0x37F, 0x1F80
_MXCSR_MASK_DEFAULT = 0xFFBF  # what Linux assumes when FXSAVE reports a zero mask


class AltStack(NamedTuple):
    """A thread's sigaltstack as Linux stores it (sas_ss_sp, sas_ss_flags, sas_ss_size).

    ``flags`` is the stored value (0, SS_DISABLE, SS_ONSTACK, maybe | SS_AUTODISARM), not
    what sigaltstack(2) reports; `sigaltstack_report` computes that.  A process after
    execve has (0, 0, 0); a new thread (CLONE_VM) has (0, SS_DISABLE, 0); fork inherits."""
    sp: int = 0
    flags: int = 0
    size: int = 0


ALTSTACK_RESET = AltStack(0, SS_DISABLE, 0)  #: Linux's sas_ss_reset()


def _in_altstack(alt: AltStack, sp: int) -> bool:
    """__on_sig_stack(): the range test alone."""
    return sp > alt.sp and sp - alt.sp <= alt.size


def on_sig_stack(alt: AltStack, sp: int) -> bool:
    """Is `sp` on the alternate stack?  Never with SS_AUTODISARM (Linux's on_sig_stack)."""
    return not alt.flags & SS_AUTODISARM and _in_altstack(alt, sp)


def sas_ss_flags(alt: AltStack, sp: int) -> int:
    """SS_DISABLE, SS_ONSTACK or 0, as the kernel decides whether to switch stacks."""
    if not alt.size:
        return SS_DISABLE
    return SS_ONSTACK if on_sig_stack(alt, sp) else 0


def sigaltstack_report(alt: AltStack, sp: int) -> AltStack:
    """What sigaltstack(2) writes to old_ss for a thread whose rsp is `sp`."""
    return AltStack(alt.sp, sas_ss_flags(alt, sp) | (alt.flags & SS_FLAG_BITS), alt.size)


def do_sigaltstack(alt: AltStack, new: AltStack, sp: int,
                   min_size: int = MINSIGSTKSZ) -> AltStack:
    """The stored altstack after installing `new` (Linux's do_sigaltstack); raises
    SyscallError(EPERM) while on the alternate stack, EINVAL for bad flags, ENOMEM when
    smaller than `min_size`."""
    if on_sig_stack(alt, sp):
        raise SyscallError(EPERM)
    flags = new.flags & 0xFFFFFFFF
    mode = flags & ~SS_FLAG_BITS
    if mode not in (0, SS_ONSTACK, SS_DISABLE):
        raise SyscallError(EINVAL)
    if (alt.sp, alt.size, alt.flags) == (new.sp, new.size, flags):
        return alt
    if mode == SS_DISABLE:
        return AltStack(0, flags, 0)
    if new.size < min_size:
        raise SyscallError(ENOMEM)
    return AltStack(new.sp, flags, new.size)


class FrameError(Exception):
    """Delivery or rt_sigreturn failed where Linux forces SIGSEGV (force_sigsegv: if the
    signal being delivered is SIGSEGV itself, its handler is reset to SIG_DFL first)."""


class SigframeFault(FrameError):
    """The frame cannot be placed: no SA_RESTORER, or its addresses leave user space
    (Linux's -EFAULT from setup_rt_frame).  A write the caller makes may also fault."""


class AltStackOverflow(SigframeFault):
    """On (or entering) the alternate stack and the frame does not fit on it."""


class BadFrame(FrameError):
    """rt_sigreturn found a frame Linux rejects (signal_fault -> SIGSEGV).

    Linux has applied some of the frame before noticing, and the SIGSEGV is delivered on
    top of that state: install every attribute that is not None, then force SIGSEGV.
    ``mask`` (the blocked set, already without SIGKILL/SIGSTOP), ``regs`` (restored from
    the sigcontext), ``xstate`` (the FPU reset to its initial state when its restore
    failed)."""

    def __init__(self, reason: str, mask: int | None = None, regs: Regs | None = None,
                 xstate: bytes | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.mask = mask
        self.regs = regs
        self.xstate = xstate


@dataclass(frozen=True)
class FramePlan:
    """A handler invocation, ready to apply: write `writes` (in order: the FP state first,
    as Linux does), set `regs`, install `fpu_reset` with PTRACE_SETREGSET NT_X86_XSTATE,
    store `altstack_after` as the thread's altstack."""

    sp: int  #: the handler's rsp: the frame's address, (sp + 8) % 16 == 0
    uc_addr: int
    info_addr: int
    fpstate_addr: int
    writes: tuple[tuple[int, bytes], ...]
    regs: Regs
    fpu_reset: bytes
    altstack_after: AltStack


class SigreturnState(NamedTuple):
    """What rt_sigreturn restores.  rax in `regs` is the call's result: set the registers
    and do not write a return value over it."""
    regs: Regs
    xstate: bytes
    mask: int
    altstack: AltStack


# -- XSAVE images -------------------------------------------------------------------------
@dataclass(frozen=True)
class _FpuConfig:
    """The thread's FPU configuration, read off a PTRACE_GETREGSET NT_X86_XSTATE image
    (whose software bytes hold XCR0 at offset 464)."""
    image_size: int  #: length of the ptrace image (what SETREGSET takes)
    user_size: int  #: fpstate->user_size: bytes XSAVE puts in a signal frame
    xcr0: int  #: features the CPU accepts in XSTATE_BV
    user_xfeatures: int  #: fpstate->user_xfeatures
    mxcsr_mask: int


def _fpu_config(xstate: bytes, size_hint: int | None) -> _FpuConfig:
    if len(xstate) < XSTATE_MIN_SIZE:
        raise ValueError("an NT_X86_XSTATE image (FXSAVE + XSAVE header) is needed")
    xcr0 = struct.unpack_from("<Q", xstate, FX_SW_BYTES)[0]
    if xcr0 & XFEATURE_FPSSE != XFEATURE_FPSSE:
        raise ValueError("xstate image lacks XCR0 at offset 464: not from PTRACE_GETREGSET")
    user_size, user_xfeatures = len(xstate), xcr0
    if size_hint is not None and size_hint < len(xstate):
        # AMX: ptrace shows the largest layout, a task without ARCH_REQ_XCOMP_PERM
        # saves the default one (without tile data) in its frames.
        if size_hint < XSTATE_MIN_SIZE:
            raise ValueError("xstate_size_hint below the minimal XSAVE size")
        user_size, user_xfeatures = size_hint, xcr0 & ~XFEATURE_XTILE_DATA
    mask = struct.unpack_from("<I", xstate, FX_MXCSR_MASK)[0] or _MXCSR_MASK_DEFAULT
    return _FpuConfig(len(xstate), user_size, xcr0, user_xfeatures, mask)


def _uabi_tail(image: bytearray, cfg: _FpuConfig) -> None:
    """Normalise bytes 464..511 and the header padding to what ptrace shows, so every image
    handed out can be fed back in as `current_xstate`."""
    image[FX_SW_BYTES:XSAVE_HEADER] = struct.pack("<Q", cfg.xcr0).ljust(48, b"\0")
    image[XSAVE_HEADER + 8:XSTATE_MIN_SIZE] = bytes(XSAVE_HEADER_SIZE - 8)


def _set_bv(image: bytearray, bv: int) -> None:
    struct.pack_into("<Q", image, XSAVE_HEADER, bv)


def _init_x87(image: bytearray) -> None:
    """x87 registers in their initial state (FNINIT's: FCW 0x37f, the rest zero)."""
    image[0:FX_MXCSR] = bytes(FX_MXCSR)
    image[FX_ST:FX_XMM] = bytes(FX_XMM - FX_ST)
    struct.pack_into("<H", image, FX_FCW, FCW_DEFAULT)


def initial_fpu_state(xstate: bytes) -> bytes:
    """The FPU a handler starts with (Linux's fpu__clear_user_states): every user
    component in its initial state, FCW 0x37f, MXCSR 0x1f80.  PKRU is the one exception:
    it keeps its value here, where Linux loads init_pkru_value (0x55555554 by default);
    the PKRU component's offset is not known without CPUID."""
    cfg = _fpu_config(xstate, None)
    image = bytearray(xstate)
    _init_x87(image)
    struct.pack_into("<I", image, FX_MXCSR, MXCSR_DEFAULT)
    image[FX_XMM:FX_SW_BYTES] = bytes(FX_SW_BYTES - FX_XMM)
    bv = struct.unpack_from("<Q", xstate, XSAVE_HEADER)[0]
    _uabi_tail(image, cfg)
    _set_bv(image, XFEATURE_FPSSE | (bv & XFEATURE_PKRU))
    return bytes(image)


def _sigframe_fpstate(xstate: bytes, cfg: _FpuConfig) -> bytes:
    """The fpstate Linux writes to a frame: XSAVE of the user features, the software
    bytes that announce it, FP|SSE forced into XSTATE_BV, FP_XSTATE_MAGIC2 after it."""
    image = bytearray(xstate[:cfg.user_size])
    _SW_BYTES.pack_into(image, FX_SW_BYTES, FP_XSTATE_MAGIC1,
                        cfg.user_size + FP_XSTATE_MAGIC2_SIZE, cfg.user_xfeatures, cfg.user_size)
    bv = struct.unpack_from("<Q", xstate, XSAVE_HEADER)[0]
    image[XSAVE_HEADER:XSTATE_MIN_SIZE] = bytes(XSAVE_HEADER_SIZE)
    _set_bv(image, (bv & cfg.user_xfeatures) | XFEATURE_FPSSE)
    return bytes(image) + struct.pack("<I", FP_XSTATE_MAGIC2)


# -- delivery -----------------------------------------------------------------------------
def _check_user_range(addr: int, size: int) -> None:
    """access_ok(): the whole range below TASK_SIZE_MAX (addresses are unsigned 64-bit)."""
    if addr + size > TASK_SIZE_MAX:
        raise SigframeFault(f"signal frame at {addr:#x} is outside user space")


def build_rt_frame(regs: Regs, xstate: bytes, siginfo: bytes, saved_mask: int,
                   altstack: tuple[int, int, int], on_altstack_now: bool | None = None,
                   use_altstack: bool | None = None, handler: int = 0, sa_flags: int = 0,
                   restorer: int = 0, xstate_size_hint: int | None = None, *,
                   trapno: int = 0, err: int = 0, cr2: int = 0) -> FramePlan:
    """Build the rt_sigframe Linux's x64_setup_rt_frame would for a thread with registers
    `regs` (already adjusted for system call restart) and FPU image `xstate`
    (PTRACE_GETREGSET NT_X86_XSTATE).

    `siginfo` is 128 bytes (written only with SA_SIGINFO, as Linux does); `saved_mask` is
    sigmask_to_save(); `altstack` the thread's stored (sp, flags, size).  `on_altstack_now`
    and `use_altstack` override Linux's own tests (rsp on the altstack, SA_ONSTACK): leave
    them None.  `trapno`, `err`, `cr2` are the fault's (thread.trap_nr, error_code, cr2),
    zero for other signals.  `xstate_size_hint` is the task's signal-frame XSAVE size when
    it is smaller than the ptrace image (AMX without permission).

    Raises SigframeFault (AltStackOverflow when the altstack is too small): the caller
    forces SIGSEGV instead of running the handler.
    """
    if not sa_flags & SA_RESTORER:
        raise SigframeFault("x86_64 handlers need SA_RESTORER")
    if len(siginfo) != SIGINFO_SIZE:
        raise ValueError("siginfo is 128 bytes")
    alt = AltStack(*altstack)
    cfg = _fpu_config(xstate, xstate_size_hint)
    rsp = regs.rsp
    nested = on_sig_stack(alt, rsp) if on_altstack_now is None else on_altstack_now
    onstack = bool(sa_flags & SA_ONSTACK) if use_altstack is None else use_altstack
    sp = (rsp - REDZONE) & _U64
    entering = False
    if onstack and sas_ss_flags(alt, sp) == 0:
        sp = (alt.sp + alt.size) & _U64
        entering = True
    fp_size = cfg.user_size + FP_XSTATE_MAGIC2_SIZE
    fpstate = ((sp - fp_size) & _U64) & ~63
    frame = (((fpstate - FRAME_SIZE) & _U64) & ~15) - 8
    if (nested or entering) and not _in_altstack(alt, frame):
        raise AltStackOverflow(f"frame at {frame:#x} overflows the alternate stack "
                               f"{alt.sp:#x}+{alt.size:#x}")
    _check_user_range(fpstate, fp_size)
    if frame < 0:
        raise SigframeFault("signal frame below address 0")
    _check_user_range(frame, FRAME_SIZE)

    out = bytearray(FRAME_INFO + (SIGINFO_SIZE if sa_flags & SA_SIGINFO else 0))
    struct.pack_into("<Q", out, 0, restorer & _U64)
    uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS
    _UC_HEAD.pack_into(out, FRAME_UC, uc_flags, 0, alt.sp & _U64, alt.flags & 0xFFFFFFFF,
                       alt.size & _U64)
    _SIGCONTEXT.pack_into(
        out, FRAME_UC + UCONTEXT_OFFSETS["uc_mcontext"],
        *(getattr(regs, name) for name in SIGCONTEXT_REGS),
        regs.cs & 0xFFFF, 0, 0, regs.ss & 0xFFFF,
        err & _U64, trapno & _U64, saved_mask & _U64, cr2 & _U64, fpstate)
    struct.pack_into("<Q", out, FRAME_UC + UCONTEXT_OFFSETS["uc_sigmask"], saved_mask & _U64)
    if sa_flags & SA_SIGINFO:
        out[FRAME_INFO:] = siginfo

    new = regs.copy()
    new.rdi = struct.unpack_from("<i", siginfo, 0)[0] & _U64
    new.rax = 0
    new.rsi = frame + FRAME_INFO
    new.rdx = frame + FRAME_UC
    new.rip = handler & _U64
    new.rsp = frame
    new.cs = USER_CS
    if new.ss != USER_DS:
        new.ss = USER_DS  # force_valid_ss(): a sandboxed thread has no other valid SS
    new.eflags &= ~HANDLER_CLEARS_EFLAGS & _U64
    after = ALTSTACK_RESET if alt.flags & SS_AUTODISARM else alt
    return FramePlan(sp=frame, uc_addr=frame + FRAME_UC, info_addr=frame + FRAME_INFO,
                     fpstate_addr=fpstate,
                     writes=((fpstate, _sigframe_fpstate(xstate, cfg)), (frame, bytes(out))),
                     regs=new, fpu_reset=initial_fpu_state(xstate), altstack_after=after)


# -- rt_sigreturn -------------------------------------------------------------------------
Reader = Callable[[int, int], bytes]
_UNBLOCKABLE = (1 << 8) | (1 << 18)  # SIGKILL, SIGSTOP


class _FpuRestoreFailed(Exception):
    """fpu__restore_sig() returned false."""


def _read(read: Reader, addr: int, length: int) -> bytes:
    """A user read where any failure is a fault (SyscallError EFAULT from the reader)."""
    data = read(addr, length)
    if len(data) != length:
        raise SyscallError(EFAULT)
    return data


def _restore_fpstate(read: Reader, buf: int, cfg: _FpuConfig, current: bytes) -> bytes:
    """The XSTATE image the thread has after fpu__restore_sig(buf): the full XRSTOR path
    when the software bytes and magic2 vouch for an XSAVE image, else FXRSTOR of the
    legacy area with everything else in its initial state.  Raises _FpuRestoreFailed where
    Linux's restore fails (fault, #GP from XRSTOR/FXRSTOR)."""
    if buf + cfg.user_size + FP_XSTATE_MAGIC2_SIZE > TASK_SIZE_MAX:
        raise _FpuRestoreFailed("fpstate outside user space")
    try:
        magic1, ext_size, sw_xfeatures, xsize = _SW_BYTES.unpack(
            _read(read, buf + FX_SW_BYTES, _SW_BYTES.size))
        fx_only = (magic1 != FP_XSTATE_MAGIC1 or xsize < XSTATE_MIN_SIZE
                   or xsize > cfg.user_size or xsize > ext_size)
        if not fx_only:
            magic2 = struct.unpack("<I", _read(read, buf + xsize, 4))[0]
            fx_only = magic2 != FP_XSTATE_MAGIC2
        if fx_only:
            xsize, sw_xfeatures = FXSAVE_SIZE, XFEATURE_FPSSE
        if buf % (16 if fx_only else 64):
            raise _FpuRestoreFailed("misaligned fpstate (#GP)")
        data = _read(read, buf, xsize)
    except SyscallError as exc:
        raise _FpuRestoreFailed("fault reading fpstate") from exc
    xrestore = sw_xfeatures & cfg.user_xfeatures
    mxcsr = struct.unpack_from("<I", data, FX_MXCSR)[0]
    image = bytearray(cfg.image_size)
    if fx_only:
        if mxcsr & ~cfg.mxcsr_mask:
            raise _FpuRestoreFailed("reserved MXCSR bits (#GP in FXRSTOR)")
        image[:FX_SW_BYTES] = data[:FX_SW_BYTES]
        out_bv = XFEATURE_FPSSE
    else:
        bv, xcomp, reserved = struct.unpack_from("<QQQ", data, XSAVE_HEADER)
        if xcomp or reserved:
            raise _FpuRestoreFailed("XSAVE header bytes 8..23 not zero (#GP in XRSTOR)")
        if bv & ~cfg.xcr0:
            raise _FpuRestoreFailed("XSTATE_BV outside XCR0 (#GP in XRSTOR)")
        if xrestore & (XFEATURE_SSE | XFEATURE_YMM) and mxcsr & ~cfg.mxcsr_mask:
            raise _FpuRestoreFailed("reserved MXCSR bits (#GP in XRSTOR)")
        loaded = bv & xrestore
        image[XSTATE_MIN_SIZE:xsize] = data[XSTATE_MIN_SIZE:xsize]
        if loaded & XFEATURE_FP:
            image[:FX_XMM] = data[:FX_XMM]
        else:
            _init_x87(image)
        if loaded & XFEATURE_SSE:
            image[FX_XMM:FX_SW_BYTES] = data[FX_XMM:FX_SW_BYTES]
        if not xrestore & (XFEATURE_SSE | XFEATURE_YMM):
            mxcsr = struct.unpack_from("<I", current, FX_MXCSR)[0]
        # Components outside `loaded` are left out of XSTATE_BV: SETREGSET puts them in
        # their initial state, as XRSTOR (bit clear) or the init_bv restore (not in the
        # software xfeatures) does.  FP and SSE are materialised instead.
        out_bv = (loaded & ~XFEATURE_FPSSE) | XFEATURE_FPSSE
    struct.pack_into("<II", image, FX_MXCSR, mxcsr, cfg.mxcsr_mask)
    _uabi_tail(image, cfg)
    _set_bv(image, out_bv)
    return bytes(image)


def parse_rt_frame(read: Reader, frame: int, current_regs: Regs, current_xstate: bytes,
                   current_altstack: tuple[int, int, int], *,
                   xstate_size_hint: int | None = None) -> SigreturnState:
    """rt_sigreturn for a thread whose frame is at `frame` (its rsp - 8: the handler's
    `ret` popped pretcode).  `read(addr, length)` reads application memory and may raise
    SyscallError(EFAULT); `current_*` are the thread's state at the call.

    Returns the registers (rax = the value the call returns, orig_rax = -1, cs/ss forced
    to the 64-bit user selectors), the XSTATE image to SETREGSET, the blocked mask
    (without SIGKILL/SIGSTOP) and the stored altstack.  Raises BadFrame where Linux sends
    SIGSEGV; it carries the part of the state Linux had already applied."""
    frame &= _U64
    if frame + FRAME_SIZE > TASK_SIZE_MAX:
        raise BadFrame(f"rt_sigreturn frame {frame:#x} outside user space")
    uc_addr = frame + FRAME_UC
    try:
        uc = _read(read, uc_addr, UCONTEXT_SIZE)
    except SyscallError:
        uc = None
    if uc is None:  # which part faulted decides whether the mask was applied
        try:
            raw_mask = _read(read, uc_addr + UCONTEXT_OFFSETS["uc_sigmask"], 8)
            _read(read, uc_addr, 8)
        except SyscallError:
            raise BadFrame("fault reading the ucontext") from None
        mask = struct.unpack("<Q", raw_mask)[0] & ~_UNBLOCKABLE
        raise BadFrame("fault reading the sigcontext", mask=mask)
    mask = struct.unpack_from("<Q", uc, UCONTEXT_OFFSETS["uc_sigmask"])[0] & ~_UNBLOCKABLE
    _, _, ss_sp, ss_flags, ss_size = _UC_HEAD.unpack_from(uc, 0)
    sc = _SIGCONTEXT.unpack_from(uc, UCONTEXT_OFFSETS["uc_mcontext"])

    regs = current_regs.copy()
    for name, value in zip(SIGCONTEXT_REGS[:-1], sc):
        setattr(regs, name, value)
    # Linux takes cs|3 and ss|3 from the frame; the sandbox only runs 64-bit user code,
    # so it keeps the flat user selectors (a frame asking for another CS is not honoured).
    regs.cs, regs.ss = USER_CS, USER_DS
    regs.eflags = (current_regs.eflags & ~FIX_EFLAGS) | (sc[17] & FIX_EFLAGS)
    regs.orig_rax = _U64
    fpstate = sc[-1]
    cfg = _fpu_config(current_xstate, xstate_size_hint)
    if fpstate == 0:
        xstate = initial_fpu_state(current_xstate)
    else:
        try:
            xstate = _restore_fpstate(read, fpstate, cfg, current_xstate)
        except _FpuRestoreFailed as exc:
            raise BadFrame(f"fpstate at {fpstate:#x}: {exc}", mask=mask, regs=regs,
                           xstate=initial_fpu_state(current_xstate)) from None

    # restore_altstack(): every error but EFAULT is ignored
    alt = AltStack(*current_altstack)
    try:
        alt = do_sigaltstack(alt, AltStack(ss_sp, ss_flags, ss_size), regs.rsp)
    except SyscallError:
        pass
    return SigreturnState(regs, xstate, mask, alt)
