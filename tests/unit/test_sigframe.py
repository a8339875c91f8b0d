"""Signal frames against Linux: uapi offsets (compiled C), a native handler's frame, native
rt_sigreturn outcomes for edited frames, and round trips through build and parse."""
from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from snakevisor.kernel import sigframe as sf
from snakevisor.kernel.errors import E2BIG, EFAULT, EINVAL, ENOMEM, EPERM, SyscallError
from snakevisor.platform.regs import Regs

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc is needed to compile the C side")
HAS_AVX = " avx " in Path("/proc/cpuinfo").read_text().replace("\n", " ")


def _compile(tmp: Path, name: str, source: str) -> Path:
    src = tmp / f"{name}.c"
    src.write_text(source)
    exe = tmp / name
    subprocess.run([GCC, "-O1", "-o", str(exe), str(src)], check=True, capture_output=True)
    return exe


# -- a sparse user memory ------------------------------------------------------------------
class Memory:
    """Mapped regions; anything else faults like AddressSpace.read (SyscallError EFAULT)."""

    def __init__(self, *regions: tuple[int, int]) -> None:
        self.regions = [(base, bytearray(size)) for base, size in regions]

    def _find(self, addr: int, n: int) -> tuple[int, bytearray]:
        for base, buf in self.regions:
            if base <= addr and addr + n <= base + len(buf):
                return base, buf
        raise SyscallError(EFAULT)

    def read(self, addr: int, n: int) -> bytes:
        base, buf = self._find(addr, n)
        return bytes(buf[addr - base:addr - base + n])

    def write(self, addr: int, data: bytes) -> None:
        base, buf = self._find(addr, len(data))
        buf[addr - base:addr - base + len(data)] = data

    def apply(self, plan: sf.FramePlan) -> None:
        for addr, data in plan.writes:
            self.write(addr, data)

    def u32(self, addr: int) -> int:
        return struct.unpack("<I", self.read(addr, 4))[0]

    def u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.read(addr, 8))[0]

    def w32(self, addr: int, v: int) -> None:
        self.write(addr, struct.pack("<I", v))

    def w64(self, addr: int, v: int) -> None:
        self.write(addr, struct.pack("<Q", v))


# -- synthetic thread state ------------------------------------------------------------------
XCR0_AVX = sf.XFEATURE_FPSSE | sf.XFEATURE_YMM
AVX_OFF = 576  # standard-format offset of the YMM upper halves (CPUID 0xD.2)


def avx_image(xmm0: bytes = b"\x11" * 16, ymm0_hi: bytes = b"\x11" * 16, mxcsr: int = 0x9FC0,
              fcw: int = 0x27F, bv: int = XCR0_AVX) -> bytes:
    """An NT_X86_XSTATE image as ptrace gives it on an AVX machine (XCR0 = 7, 832 bytes)."""
    img = bytearray(AVX_OFF + 256)
    struct.pack_into("<H", img, 0, fcw)
    struct.pack_into("<II", img, 24, mxcsr, 0xFFFF)
    img[160:176] = xmm0
    struct.pack_into("<Q", img, 464, XCR0_AVX)
    struct.pack_into("<Q", img, 512, bv)
    img[AVX_OFF:AVX_OFF + 16] = ymm0_hi
    return bytes(img)


def user_regs(rsp: int, **values: int) -> Regs:
    regs = Regs()
    for i, name in enumerate(sf.SIGCONTEXT_REGS):
        setattr(regs, name, 0x1000 + i)
    regs.rsp, regs.rip, regs.eflags = rsp, 0x401000, 0x246
    regs.cs, regs.ss, regs.fs_base, regs.orig_rax = 0x33, 0x2B, 0x7000, 39
    for name, value in values.items():
        setattr(regs, name, value)
    return regs


STACK = 0x7FFF0000
RSP = STACK + 0xF000 - 0x38  # a call-aligned user rsp (any value works)
FLAGS = sf.SA_SIGINFO | sf.SA_RESTORER
INFO = sf.pack_siginfo(10, sf.SI_TKILL, pid=42, uid=1000)


def deliver(regs: Regs | None = None, xstate: bytes | None = None, mem: Memory | None = None,
            altstack: tuple[int, int, int] = (0, 0, 0), flags: int = FLAGS, mask: int = 0x200,
            **kw) -> tuple[sf.FramePlan, Memory]:
    mem = mem or Memory((STACK, 0x10000))
    plan = sf.build_rt_frame(regs or user_regs(RSP), xstate or avx_image(), INFO, mask,
                             altstack, None, None, 0x402000, flags, 0x403000, **kw)
    mem.apply(plan)
    return plan, mem


def sigreturn(plan: sf.FramePlan, mem: Memory, altstack: tuple[int, int, int] = (0, 0, 0),
              regs: Regs | None = None) -> sf.SigreturnState:
    cur = regs or plan.regs
    return sf.parse_rt_frame(mem.read, cur.rsp + 8 - 8, cur, plan.fpu_reset, altstack)


def after_ret(plan: sf.FramePlan) -> Regs:
    """The handler's registers at its rt_sigreturn: `ret` popped pretcode."""
    regs = plan.regs.copy()
    regs.rsp += 8
    regs.rax = 15
    return regs


def ret_frame(plan: sf.FramePlan, mem: Memory, **kw) -> sf.SigreturnState:
    regs = after_ret(plan)
    return sf.parse_rt_frame(mem.read, regs.rsp - 8, regs, plan.fpu_reset,
                             kw.get("altstack", (0, 0, 0)))


# -- uapi offsets ---------------------------------------------------------------------------
def _abi_checks() -> list[tuple[str, int]]:
    sc_c = {"rdi": "di", "rsi": "si", "rbp": "bp", "rbx": "bx", "rdx": "dx", "rax": "ax",
            "rcx": "cx", "rsp": "sp", "rip": "ip", "eflags": "flags"}
    checks = [(f"offsetof(struct sigcontext_64, {sc_c.get(n, n)})", off)
              for n, off in sf.SIGCONTEXT_OFFSETS.items()]
    checks += [("sizeof(struct sigcontext_64)", sf.SIGCONTEXT_SIZE),
               ("sizeof(struct ucontext)", sf.UCONTEXT_SIZE),
               ("sizeof(siginfo_t)", sf.SIGINFO_SIZE),
               ("offsetof(struct ucontext, uc_flags)", sf.UCONTEXT_OFFSETS["uc_flags"]),
               ("offsetof(struct ucontext, uc_link)", sf.UCONTEXT_OFFSETS["uc_link"]),
               ("offsetof(struct ucontext, uc_stack)", sf.UCONTEXT_OFFSETS["uc_stack"]),
               ("offsetof(struct ucontext, uc_stack.ss_sp)", sf.UCONTEXT_OFFSETS["ss_sp"]),
               ("offsetof(struct ucontext, uc_stack.ss_flags)", sf.UCONTEXT_OFFSETS["ss_flags"]),
               ("offsetof(struct ucontext, uc_stack.ss_size)", sf.UCONTEXT_OFFSETS["ss_size"]),
               ("offsetof(struct ucontext, uc_mcontext)", sf.UCONTEXT_OFFSETS["uc_mcontext"]),
               ("offsetof(struct ucontext, uc_sigmask)", sf.UCONTEXT_OFFSETS["uc_sigmask"]),
               ("offsetof(struct _fpstate_64, cwd)", sf.FX_FCW),
               ("offsetof(struct _fpstate_64, mxcsr)", sf.FX_MXCSR),
               ("offsetof(struct _fpstate_64, mxcsr_mask)", sf.FX_MXCSR_MASK),
               ("offsetof(struct _fpstate_64, st_space)", sf.FX_ST),
               ("offsetof(struct _fpstate_64, xmm_space)", sf.FX_XMM),
               ("offsetof(struct _fpstate_64, sw_reserved)", sf.FX_SW_BYTES),
               ("sizeof(struct _fpstate_64)", 512),
               ("sizeof(struct _fpx_sw_bytes)", sf._SW_BYTES.size),
               ("offsetof(struct _fpx_sw_bytes, extended_size)", 4),
               ("offsetof(struct _fpx_sw_bytes, xfeatures)", 8),
               ("offsetof(struct _fpx_sw_bytes, xstate_size)", 16),
               ("offsetof(struct _xstate, xstate_hdr)", sf.XSAVE_HEADER),
               ("offsetof(struct _xstate, ymmh)", sf.XSTATE_MIN_SIZE),
               ("FP_XSTATE_MAGIC1", sf.FP_XSTATE_MAGIC1), ("FP_XSTATE_MAGIC2", sf.FP_XSTATE_MAGIC2),
               ("FP_XSTATE_MAGIC2_SIZE", sf.FP_XSTATE_MAGIC2_SIZE),
               ("UC_FP_XSTATE", sf.UC_FP_XSTATE), ("UC_SIGCONTEXT_SS", sf.UC_SIGCONTEXT_SS),
               ("UC_STRICT_RESTORE_SS", sf.UC_STRICT_RESTORE_SS),
               ("SS_ONSTACK", sf.SS_ONSTACK), ("SS_DISABLE", sf.SS_DISABLE),
               ("SS_AUTODISARM", sf.SS_AUTODISARM), ("MINSIGSTKSZ", sf.MINSIGSTKSZ),
               ("SA_SIGINFO", sf.SA_SIGINFO), ("SA_RESTORER", sf.SA_RESTORER),
               ("SA_ONSTACK", sf.SA_ONSTACK)]
    macro = {"timerid": "si_tid", "perf_data": "si_perf_data", "perf_type": "si_perf_type",
             "perf_flags": "si_perf_flags"}
    for fields in sf.SIGINFO_FIELDS.values():
        for name, off, fmt in fields:
            field = macro.get(name, "si_" + name)
            checks.append((f"offsetof(siginfo_t, {field})", off))
            checks.append((f"sizeof(((siginfo_t *)0)->{field})", struct.calcsize(fmt)))
    checks += [("offsetof(siginfo_t, si_signo)", 0), ("offsetof(siginfo_t, si_errno)", 4),
               ("offsetof(siginfo_t, si_code)", 8)]
    for name in ("SI_USER SI_KERNEL SI_QUEUE SI_TIMER SI_MESGQ SI_ASYNCIO SI_SIGIO SI_TKILL "
                 "SI_DETHREAD SI_ASYNCNL ILL_ILLOPC ILL_ILLOPN ILL_ILLADR ILL_ILLTRP ILL_PRVOPC "
                 "ILL_PRVREG ILL_COPROC ILL_BADSTK FPE_INTDIV FPE_INTOVF FPE_FLTDIV FPE_FLTOVF "
                 "FPE_FLTUND FPE_FLTRES FPE_FLTINV FPE_FLTSUB SEGV_MAPERR SEGV_ACCERR "
                 "SEGV_BNDERR SEGV_PKUERR BUS_ADRALN BUS_ADRERR BUS_OBJERR BUS_MCEERR_AR "
                 "BUS_MCEERR_AO TRAP_BRKPT TRAP_TRACE TRAP_BRANCH TRAP_HWBKPT TRAP_UNK "
                 "TRAP_PERF CLD_EXITED CLD_KILLED CLD_DUMPED CLD_TRAPPED CLD_STOPPED "
                 "CLD_CONTINUED POLL_IN POLL_OUT POLL_MSG POLL_ERR POLL_PRI POLL_HUP "
                 "SYS_SECCOMP SYS_USER_DISPATCH").split():
        checks.append((name, getattr(sf, name)))
    for sig, c in ((4, "NSIGILL"), (8, "NSIGFPE"), (7, "NSIGBUS"), (5, "NSIGTRAP"),
                   (17, "NSIGCHLD"), (29, "NSIGPOLL"), (31, "NSIGSYS")):
        checks.append((c, sf._SPECIFIC[sig][0]))
    return checks


ABI_PRELUDE = """#include <stddef.h>
#include <stdio.h>
#include <asm/sigcontext.h>
#include <asm/signal.h>
#include <asm/siginfo.h>
#include <linux/signal.h>
#include <asm/ucontext.h>
int main(void) {
"""


@needs_gcc
def test_offsets_and_constants_match_uapi_headers(tmp_path: Path) -> None:
    checks = _abi_checks()
    body = "".join(f'    printf("%lld\\n", (long long)({expr}));\n' for expr, _ in checks)
    exe = _compile(tmp_path, "abi", ABI_PRELUDE + body + "    return 0;\n}\n")
    got = [int(x) for x in subprocess.run([str(exe)], capture_output=True, text=True,
                                          check=True).stdout.split()]
    assert {e: g for (e, _), g in zip(checks, got)} == dict(checks)


@needs_gcc
def test_nsigsegv_at_least_the_headers(tmp_path: Path) -> None:
    """Headers older than the kernel may know fewer SIGSEGV codes (SEGV_CPERR is 10)."""
    exe = _compile(tmp_path, "nsig", ABI_PRELUDE + 'printf("%d\\n", NSIGSEGV); return 0; }\n')
    assert sf._SPECIFIC[11][0] >= int(subprocess.run([str(exe)], capture_output=True,
                                                    text=True).stdout)


# -- the native handler ------------------------------------------------------------------
NATIVE_C = r"""
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <sys/syscall.h>
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

uint64_t g_rsp, g_rax, g_rdi, g_rsi, g_rdx, g_flags;
uint16_t g_fcw; uint32_t g_mxcsr;
void entry(int, siginfo_t *, void *);
/* Record the registers exactly as the kernel set them, then clear AC/DF for C code. */
__asm__(".text\n.globl entry\nentry:\n"
        " mov %rsp, g_rsp(%rip)\n mov %rax, g_rax(%rip)\n mov %rdi, g_rdi(%rip)\n"
        " mov %rsi, g_rsi(%rip)\n mov %rdx, g_rdx(%rip)\n pushfq\n popq g_flags(%rip)\n"
        " fnstcw g_fcw(%rip)\n stmxcsr g_mxcsr(%rip)\n cld\n"
        " pushfq\n andq $~0x40000, (%rsp)\n popfq\n jmp chandler\n");

static void hx(const char *k, const void *p, size_t n) {
    printf("%s ", k);
    for (size_t i = 0; i < n; i++) printf("%02x", ((const unsigned char *)p)[i]);
    printf("\n");
}
static int mode;
static void __attribute__((noinline)) pattern(void) {  /* stale bytes below the stack */
    volatile unsigned char pat[16384];
    for (size_t i = 0; i < sizeof pat; i++) pat[i] = 0xaa;
}
void chandler(int sig, siginfo_t *info, void *ucv) {
    unsigned char *uc = ucv, *sc = uc + 40;
    uint64_t *q = (uint64_t *)uc, *s = (uint64_t *)sc;
    printf("entry_rsp %#lx\nentry_rax %#lx\nentry_rdi %#lx\nentry_rsi %#lx\nentry_rdx %#lx\n",
           g_rsp, g_rax, g_rdi, g_rsi, g_rdx);
    printf("entry_flags %#lx\nentry_fcw %#x\nentry_mxcsr %#x\n", g_flags, g_fcw, g_mxcsr);
    printf("pretcode %#lx\nuc_flags %#lx\nuc_link %#lx\n", *(uint64_t *)(uc - 8), q[0], q[1]);
    printf("uc_ss_sp %#lx\nuc_ss_flags %#x\nuc_ss_size %#lx\n", q[2], *(uint32_t *)(uc + 24), q[4]);
    printf("sc_rsp %#lx\nsc_rip %#lx\nsc_eflags %#lx\nsc_rax %#lx\n", s[15], s[16], s[17], s[13]);
    printf("sc_cs %#x\nsc_gs %#x\nsc_fs %#x\nsc_ss %#x\n", *(uint16_t *)(sc + 144),
           *(uint16_t *)(sc + 146), *(uint16_t *)(sc + 148), *(uint16_t *)(sc + 150));
    printf("sc_err %#lx\nsc_trapno %#lx\nsc_oldmask %#lx\nsc_cr2 %#lx\nsc_fpstate %#lx\n",
           s[19], s[20], s[21], s[22], s[23]);
    printf("uc_sigmask %#lx\n", *(uint64_t *)(uc + 296));
    hx("info", uc + 304, 128);
    hx("reserved1", sc + 192, 64);
    unsigned char *fp = (unsigned char *)s[23];
    uint32_t xsz = *(uint32_t *)(fp + 464 + 16);
    hx("fp_sw", fp + 464, 48);
    hx("fp_hdr", fp + 512, 64);
    printf("fp_magic2 %#x\n", *(uint32_t *)(fp + xsz));
    printf("fp_fcw %#x\nfp_mxcsr %#x\n", *(uint16_t *)fp, *(uint32_t *)(fp + 24));
    hx("fp_xmm0", fp + 160, 16);
    hx("fp_ymm0_hi", fp + 576, 16);
    hx("gap", uc + 304 + 128, fp - (uc + 304 + 128));
    stack_t cur; sigaltstack(NULL, &cur);
    printf("cur_ss_sp %#lx\ncur_ss_flags %#x\ncur_ss_size %#lx\n", (long)cur.ss_sp, cur.ss_flags, cur.ss_size);
    switch (mode) {  /* edits of the frame; mirrored by MUTATIONS in the test */
    case 1: *(uint32_t *)(fp + 464) = 0; /* fallthrough */
    case 2: memset(fp + 160, 0x22, 16); memset(fp + 576, 0x33, 16); break;
    case 3: *(uint32_t *)(fp + 24) |= 0x80000000u; break;
    case 4: *(uint64_t *)(fp + 512) |= 1ull << 62; break;
    case 5: *(uint64_t *)(fp + 520) = 1; break;
    case 6: *(uint64_t *)(fp + 512) &= ~4ull; break;
    case 7: *(uint64_t *)(fp + 472) &= ~4ull; break;
    case 8: *(uint32_t *)(fp + 464) = 0; *(uint32_t *)(fp + 24) |= 0x80000000u; break;
    case 9: *(uint64_t *)(fp + 528) = 1; break;
    case 10: *(uint64_t *)(fp + 536) = 1; break;
    case 11: *(uint32_t *)(fp + 480) = 32768; break;
    case 12: *(uint32_t *)(fp + 468) = *(uint32_t *)(fp + 480) - 1; break;
    case 13: s[23] = 0; break;
    case 14: q[2] = 0x1000; *(uint32_t *)(uc + 24) = 0; q[4] = 100; break;
    case 15: q[2] = 0x1000; *(uint32_t *)(uc + 24) = 0; q[4] = 4096; break;
    case 16: q[2] = 0; *(uint32_t *)(uc + 24) = SS_DISABLE; q[4] = 0; break;
    case 17: *(uint32_t *)(uc + 24) = 5; break;
    case 18: s[17] = 0x3f7ffful & ~0x100ul; s[13] = 77; s[8] = 0x1234; break;
    case 19: *(uint64_t *)(uc + 296) = ~0ul; break;
    }
    fflush(stdout);
}

static void run(int sig, int flags, int patterned) {
    struct sigaction sa; memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = entry; sa.sa_flags = flags;
    sigaction(sig, &sa, NULL);
    sigset_t blk; sigemptyset(&blk); sigaddset(&blk, SIGWINCH); sigprocmask(SIG_BLOCK, &blk, NULL);
    unsigned char ymm_in[32], ymm_out[32];
    memset(ymm_in, 0x11, 32);
    uint64_t rsp_before, flags_after, rax_after, rdi_after;
    uint32_t mx = 0x9fc0, mx_after, mx_def = 0x1f80; uint16_t cw = 0x27f, cw_after;
    long tid = syscall(SYS_gettid);
    if (patterned) pattern();
    /* AC and DF set at the system call, FP state away from its defaults. */
    __asm__ volatile(
        "ldmxcsr %[mx]\n fldcw %[cw]\n vmovdqu %[yi], %%ymm0\n"
        "pushfq\n orq $0x40000, (%%rsp)\n popfq\n std\n"
        "mov %%rsp, %[rspb]\n"
        "mov $200, %%eax\n mov %[tid], %%rdi\n mov %[sig], %%rsi\n syscall\n"
        "pushfq\n pop %[fa]\n cld\n pushfq\n andq $~0x40000, (%%rsp)\n popfq\n"
        "mov %%rax, %[ra]\n mov %%rdi, %[rd]\n"
        "vmovdqu %%ymm0, %[yo]\n stmxcsr %[mxa]\n fnstcw %[cwa]\n ldmxcsr %[def]\n"
        : [rspb] "=&r"(rsp_before), [fa] "=&r"(flags_after), [ra] "=&r"(rax_after),
          [rd] "=&r"(rdi_after), [yo] "=m"(ymm_out), [mxa] "=m"(mx_after), [cwa] "=m"(cw_after)
        : [mx] "m"(mx), [cw] "m"(cw), [yi] "m"(ymm_in), [tid] "r"(tid), [sig] "r"((long)sig),
          [def] "m"(mx_def)
        : "rax", "rdi", "rsi", "rcx", "r11", "memory", "xmm0", "cc");
    __asm__ volatile("fninit");
    printf("rsp_before %#lx\nflags_after %#lx\nrax_after %#lx\nrdi_after %#lx\n",
           rsp_before, flags_after, rax_after, rdi_after);
    printf("mx_after %#x\ncw_after %#x\n", mx_after, cw_after);
    hx("ymm_after", ymm_out, 32);
    stack_t cur; sigaltstack(NULL, &cur);
    sigset_t now; sigprocmask(SIG_BLOCK, NULL, &now);
    printf("mask_after %#lx\n", *(uint64_t *)&now);
    printf("after_ss_sp %#lx\nafter_ss_flags %#x\nafter_ss_size %#lx\n", (long)cur.ss_sp, cur.ss_flags, cur.ss_size);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *what = argv[1];
    if (!strcmp(what, "xstate")) {  /* what PTRACE_GETREGSET NT_X86_XSTATE shows */
        pid_t c = fork();
        if (!c) { ptrace(PTRACE_TRACEME, 0, 0, 0); raise(SIGSTOP); _exit(0); }
        int st; waitpid(c, &st, 0);
        static unsigned char buf[65536]; struct iovec iov = {buf, sizeof buf};
        if (ptrace(PTRACE_GETREGSET, c, 0x202, &iov)) { perror("getregset"); return 1; }
        hx("xstate", buf, iov.iov_len);
        kill(c, SIGKILL);
        return 0;
    }
    mode = atoi(argv[2]);
    int flags = SA_SIGINFO;
    if (!strcmp(what, "nosiginfo")) flags = 0;
    if (strcmp(what, "plain") && strcmp(what, "nosiginfo")) {
        size_t sz = !strcmp(what, "small") ? 2048 : 65536;
        stack_t ss = { .ss_sp = aligned_alloc(4096, 65536), .ss_size = sz,
                       .ss_flags = !strcmp(what, "autodisarm") ? SS_AUTODISARM : 0 };
        memset(ss.ss_sp, 0xaa, 65536);
        if (sigaltstack(&ss, NULL)) perror("sigaltstack");
        printf("alt_sp %#lx\nalt_size %#lx\nalt_flags %#x\n", (long)ss.ss_sp, ss.ss_size, ss.ss_flags);
        flags |= SA_ONSTACK;
    }
    run(SIGUSR2, flags, !strcmp(what, "nosiginfo"));
    return 0;
}
"""

HEX_KEYS = {"info", "reserved1", "fp_sw", "fp_hdr", "fp_xmm0", "fp_ymm0_hi", "gap",
            "ymm_after", "xstate"}


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory):
    if GCC is None:
        pytest.skip("gcc is needed for the native experiment")
    if not HAS_AVX:
        pytest.skip("the native experiment uses AVX registers")
    exe = _compile(tmp_path_factory.mktemp("sigframe"), "native", NATIVE_C)

    def run(*args: str | int) -> dict | None:
        """Key/value facts, or None when the program died of SIGSEGV."""
        proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True,
                              timeout=30)
        if proc.returncode == -11:
            return None
        assert proc.returncode == 0, (args, proc.returncode, proc.stderr)
        facts: dict = {}
        for line in proc.stdout.splitlines():
            key, _, value = line.partition(" ")
            facts[key] = bytes.fromhex(value) if key in HEX_KEYS else int(value, 0)
        return facts
    return run


@pytest.fixture(scope="module")
def host_xstate(native) -> bytes:
    return native("xstate")["xstate"]


def _native_plan(facts: dict, xstate: bytes, altstack=(0, 0, 0),
                 flags: int = FLAGS | sf.SA_ONSTACK) -> sf.FramePlan:
    """Our frame for the registers the native kernel saw at the signal."""
    regs = user_regs(facts["sc_rsp"], eflags=facts["sc_eflags"], rip=facts["sc_rip"],
                     cs=facts["sc_cs"], ss=facts["sc_ss"], rax=facts["sc_rax"])
    mask = facts["sc_oldmask"]
    info = facts["info"] if flags & sf.SA_SIGINFO else sf.pack_siginfo(12, sf.SI_TKILL)
    return sf.build_rt_frame(regs, xstate, info, mask, altstack, None, None, 0x402000, flags,
                             facts["pretcode"])


def _frame_bytes(plan: sf.FramePlan) -> bytes:
    return dict((a, d) for a, d in plan.writes)[plan.sp]


def test_native_frame_layout(native, host_xstate: bytes) -> None:
    facts = native("plain", 0)
    plan = _native_plan(facts, host_xstate)
    assert (plan.sp, plan.uc_addr, plan.info_addr, plan.fpstate_addr) == (
        facts["entry_rsp"], facts["entry_rdx"], facts["entry_rsi"], facts["sc_fpstate"])
    assert (plan.sp + 8) % 16 == 0 and plan.fpstate_addr % 64 == 0
    r = plan.regs
    assert (r.rax, r.rdi, r.rsi, r.rdx, r.rsp, r.eflags) == (
        facts["entry_rax"], facts["entry_rdi"], facts["entry_rsi"], facts["entry_rdx"],
        facts["entry_rsp"], facts["entry_flags"])
    assert facts["entry_flags"] & sf.EFLAGS_AC  # Linux keeps AC for the handler
    frame = _frame_bytes(plan)
    uc = frame[sf.FRAME_UC:]
    head = struct.unpack_from("<QQQQI", frame, 0)
    assert head == (facts["pretcode"], facts["uc_flags"], facts["uc_link"], facts["uc_ss_sp"],
                    facts["uc_ss_flags"])
    assert struct.unpack_from("<Q", uc, 32)[0] == facts["uc_ss_size"]
    sc = struct.unpack_from("<18Q4H5Q", uc, 40)
    assert sc[15:18] == (facts["sc_rsp"], facts["sc_rip"], facts["sc_eflags"])
    assert sc[18:] == (facts["sc_cs"], facts["sc_gs"], facts["sc_fs"], facts["sc_ss"],
                       facts["sc_err"], facts["sc_trapno"], facts["sc_oldmask"],
                       facts["sc_cr2"], facts["sc_fpstate"])
    assert facts["sc_oldmask"] == facts["uc_sigmask"] == 1 << 27  # SIGWINCH was blocked
    assert struct.unpack_from("<Q", uc, 296)[0] == facts["uc_sigmask"]
    assert frame[sf.FRAME_INFO:] == facts["info"]
    fp = dict(plan.writes)[plan.fpstate_addr]
    assert fp[464:512] == facts["fp_sw"]
    xsize = struct.unpack_from("<I", facts["fp_sw"], 16)[0]
    assert len(fp) == xsize + 4 and struct.unpack_from("<I", fp, xsize)[0] == facts["fp_magic2"]
    assert fp[520:576] == facts["fp_hdr"][8:]
    reset = plan.fpu_reset
    assert struct.unpack_from("<H", reset, 0)[0] == facts["entry_fcw"]
    assert struct.unpack_from("<I", reset, 24)[0] == facts["entry_mxcsr"]


def test_native_siginfo_round_trips(native) -> None:
    info = native("plain", 0)["info"]
    fields = sf.unpack_siginfo(info)
    assert (fields["signo"], fields["code"], fields["layout"]) == (12, sf.SI_TKILL, "rt")
    kw = {k: v for k, v in fields.items() if k not in ("signo", "errno", "code", "layout")}
    assert sf.pack_siginfo(fields["signo"], fields["code"], fields["errno"], **kw) == info


def test_native_without_siginfo_leaves_info_unwritten(native, host_xstate: bytes) -> None:
    facts = native("nosiginfo", 0)
    assert facts["info"] == b"\xaa" * 128 and set(facts["gap"]) <= {0xAA}
    plan = _native_plan(facts, host_xstate, flags=sf.SA_RESTORER)
    assert len(_frame_bytes(plan)) == sf.FRAME_INFO
    assert plan.sp == facts["entry_rsp"] and plan.regs.rsi == facts["entry_rsi"]
    # Neither writes the alignment gap between the frame and the fpstate
    assert plan.sp + sf.FRAME_INFO + 128 <= plan.fpstate_addr


@pytest.mark.parametrize("kind", ["alt", "autodisarm"])
def test_native_altstack(native, host_xstate: bytes, kind: str) -> None:
    facts = native(kind, 0)
    alt = (facts["alt_sp"], facts["alt_flags"], facts["alt_size"])
    plan = _native_plan(facts, host_xstate, altstack=alt)
    assert (plan.sp, plan.fpstate_addr) == (facts["entry_rsp"], facts["sc_fpstate"])
    assert (facts["uc_ss_sp"], facts["uc_ss_flags"], facts["uc_ss_size"]) == alt  # stored flags
    uc = _frame_bytes(plan)[sf.FRAME_UC:]
    assert struct.unpack_from("<QI4xQ", uc, 16) == alt
    # sigaltstack(2) inside the handler, then after rt_sigreturn
    inside = sf.sigaltstack_report(plan.altstack_after, facts["entry_rsp"])
    assert tuple(inside) == (facts["cur_ss_sp"], facts["cur_ss_flags"], facts["cur_ss_size"])
    mem = Memory((plan.sp & ~0xFFFF, 0x20000))
    mem.apply(plan)
    st = sf.parse_rt_frame(mem.read, plan.sp, plan.regs, plan.fpu_reset, plan.altstack_after)
    after = sf.sigaltstack_report(st.altstack, st.regs.rsp)
    assert tuple(after) == (facts["after_ss_sp"], facts["after_ss_flags"], facts["after_ss_size"])


def test_native_altstack_overflow(native, host_xstate: bytes) -> None:
    assert native("small", 0) is None  # the frame does not fit in 2048 bytes: SIGSEGV
    alt = (0x10000, 0, sf.MINSIGSTKSZ)
    with pytest.raises(sf.AltStackOverflow):
        sf.build_rt_frame(user_regs(0x7FF000), host_xstate, INFO, 0, alt, None, None,
                          0x402000, FLAGS | sf.SA_ONSTACK, 0x403000)


def _mutate(mode: int, mem: Memory, plan: sf.FramePlan) -> None:
    """The frame edits the native handler makes (its `switch (mode)`)."""
    fp, uc = plan.fpstate_addr, plan.uc_addr
    sc = uc + 40
    if mode in (1, 8):
        mem.w32(fp + 464, 0)
    if mode in (1, 2):
        mem.write(fp + 160, b"\x22" * 16)
        mem.write(fp + 576, b"\x33" * 16)
    if mode in (3, 8):
        mem.w32(fp + 24, mem.u32(fp + 24) | 0x80000000)
    edits = {4: (fp + 512, lambda v: v | 1 << 62), 5: (fp + 520, lambda v: 1),
             6: (fp + 512, lambda v: v & ~4), 7: (fp + 472, lambda v: v & ~4),
             9: (fp + 528, lambda v: 1), 10: (fp + 536, lambda v: 1), 13: (sc + 184, lambda v: 0),
             19: (uc + 296, lambda v: (1 << 64) - 1)}
    if mode in edits:
        addr, fn = edits[mode]
        mem.w64(addr, fn(mem.u64(addr)))
    if mode == 11:
        mem.w32(fp + 480, 32768)
    if mode == 12:
        mem.w32(fp + 468, mem.u32(fp + 480) - 1)
    if mode in (14, 15, 16, 17):
        sp, flags, size = {14: (0x1000, 0, 100), 15: (0x1000, 0, 4096), 16: (0, 2, 0),
                           17: (0x1000, 5, 4096)}[mode]
        mem.write(uc + 16, struct.pack("<QI4xQ", sp, flags, size))
    if mode == 18:
        mem.w64(sc + 136, 0x3F7FFF & ~0x100)
        mem.w64(sc + 104, 77)
        mem.w64(sc + 64, 0x1234)


def _predicted(mode: int, host_xstate: bytes, sc_eflags: int) -> dict | None:
    """What our rt_sigreturn makes of the same edit, in the native program's terms."""
    img = bytearray(host_xstate)
    struct.pack_into("<H", img, 0, 0x27F)
    struct.pack_into("<I", img, 24, 0x9FC0)
    img[160:176] = b"\x11" * 16
    img[576:592] = b"\x11" * 16
    struct.pack_into("<Q", img, 512, struct.unpack_from("<Q", img, 512)[0] | 7)
    regs = user_regs(RSP, eflags=sc_eflags, rdi=12, rax=0)
    plan, mem = deliver(regs, bytes(img), mask=1 << 27)
    _mutate(mode, mem, plan)
    cur = after_ret(plan)
    cur.eflags = 0x40202
    try:
        st = sf.parse_rt_frame(mem.read, cur.rsp - 8, cur, plan.fpu_reset, (0, 0, 0))
    except sf.BadFrame:
        return None
    x = st.xstate
    hi = x[576:592] if struct.unpack_from("<Q", x, 512)[0] & 4 else bytes(16)
    alt = sf.sigaltstack_report(st.altstack, st.regs.rsp)
    return {"ymm_after": x[160:176] + hi, "mx_after": struct.unpack_from("<I", x, 24)[0],
            "cw_after": struct.unpack_from("<H", x, 0)[0], "flags_after": st.regs.eflags,
            "rax_after": st.regs.rax, "rdi_after": st.regs.rdi, "mask_after": st.mask,
            "after_ss_sp": alt.sp, "after_ss_flags": alt.flags, "after_ss_size": alt.size}


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
                                  18, 19])
def test_native_sigreturn_of_edited_frames(native, host_xstate: bytes, mode: int) -> None:
    facts = native("plain", mode)
    ours = _predicted(mode, host_xstate, facts["sc_eflags"] if facts else 0x40606)
    if facts is None or ours is None:
        assert facts is None and ours is None, "one of Linux and us sends SIGSEGV"
        return
    want = {k: facts[k] for k in ours}
    if mode != 18:  # which sets them in the frame; otherwise rdi is the native thread id
        want["rdi_after"], want["rax_after"] = ours["rdi_after"], ours["rax_after"]
    # eflags bits outside FIX_EFLAGS are the current ones (IF, bit 1): compare the rest
    want["flags_after"] &= sf.FIX_EFLAGS
    ours["flags_after"] &= sf.FIX_EFLAGS
    assert ours == want


# -- siginfo ----------------------------------------------------------------------------------
@pytest.mark.parametrize("signo,code,layout", [
    (10, sf.SI_USER, "kill"), (10, sf.SI_KERNEL, "kill"), (10, sf.SI_QUEUE, "rt"),
    (10, sf.SI_TKILL, "rt"), (14, sf.SI_TIMER, "timer"), (29, sf.SI_SIGIO, "poll"),
    (11, sf.SEGV_MAPERR, "fault"), (11, sf.SEGV_BNDERR, "fault_bnderr"),
    (11, sf.SEGV_PKUERR, "fault_pkuerr"), (7, sf.BUS_MCEERR_AR, "fault_mceerr"),
    (5, sf.TRAP_PERF, "fault_perf"), (5, sf.TRAP_BRKPT, "fault"), (8, sf.FPE_INTDIV, "fault"),
    (4, sf.ILL_ILLOPN, "fault"), (17, sf.CLD_EXITED, "chld"), (29, sf.POLL_IN, "poll"),
    (31, sf.SYS_SECCOMP, "sys"),
    # Linux's quirks: small positive codes of other signals use the poll layout, large
    # ones the kill layout
    (10, 3, "poll"), (31, 3, "poll"), (17, 7, "kill"), (10, 0x7F, "kill"),
])
def test_siginfo_layout(signo: int, code: int, layout: str) -> None:
    assert sf.siginfo_layout(signo, code) == layout


def test_pack_siginfo_fields() -> None:
    raw = sf.pack_siginfo(17, sf.CLD_KILLED, pid=7, uid=1000, status=9, utime=-1, stime=5)
    assert struct.unpack_from("<iii4xiIi4xqq", raw) == (17, 0, 2, 7, 1000, 9, -1, 5)
    assert len(raw) == 128 and not any(raw[48:])
    assert sf.pack_siginfo(11, sf.SEGV_ACCERR, addr=0xDEAD)[16:24] == struct.pack("<Q", 0xDEAD)
    raw = sf.pack_siginfo(31, sf.SYS_SECCOMP, 3, call_addr=0x401000, syscall=59, arch=0xC000003E)
    assert struct.unpack_from("<iii4xQiI", raw) == (31, 3, 1, 0x401000, 59, 0xC000003E)
    raw = sf.pack_siginfo(14, sf.SI_TIMER, timerid=3, overrun=2, value=0x55)
    assert struct.unpack_from("<iiQ", raw, 16) == (3, 2, 0x55)
    raw = sf.pack_siginfo(29, sf.POLL_HUP, band=-1, fd=4)
    assert struct.unpack_from("<qi", raw, 16) == (-1, 4)
    raw = sf.pack_siginfo(7, sf.BUS_MCEERR_AO, addr=0x1000, addr_lsb=12)
    assert struct.unpack_from("<Qh", raw, 16) == (0x1000, 12)
    queued = sf.unpack_siginfo(sf.pack_siginfo(34, sf.SI_QUEUE, pid=-1, value=-2))
    assert (queued["pid"], queued["value"]) == (-1, (1 << 64) - 2)


def test_pack_siginfo_rejects_fields_of_another_layout() -> None:
    with pytest.raises(ValueError):
        sf.pack_siginfo(10, sf.SI_USER, addr=0x1000)
    with pytest.raises(ValueError):
        sf.pack_siginfo(11, sf.SEGV_MAPERR, status=1)


def test_siginfo_from_user() -> None:
    raw = bytearray(sf.pack_siginfo(10, sf.SI_QUEUE, pid=5, value=9))
    raw[0:4] = struct.pack("<i", 99)
    raw[100] = 1  # a known layout: the tail is dropped
    kept = sf.siginfo_from_user(bytes(raw), 12)
    assert sf.unpack_siginfo(kept)["signo"] == 12 and not any(kept[48:])
    assert kept[4:48] == raw[4:48]
    odd = bytearray(128)
    odd[8:12] = struct.pack("<i", -8)  # below SI_DETHREAD and not SI_ASYNCNL: unknown
    assert sf.siginfo_from_user(bytes(odd), 10)[:4] == struct.pack("<i", 10)
    odd[127] = 1
    with pytest.raises(SyscallError) as exc:
        sf.siginfo_from_user(bytes(odd), 10)
    assert exc.value.errno == E2BIG


# -- delivery -------------------------------------------------------------------------------
def test_frame_geometry_for_every_alignment() -> None:
    img = avx_image()
    for delta in range(0, 128, 8):
        plan, _ = deliver(user_regs(RSP - delta), img)
        fp_end = plan.fpstate_addr + len(img) + 4
        assert (plan.sp + 8) % 16 == 0 and plan.fpstate_addr % 64 == 0
        assert plan.sp + sf.FRAME_SIZE <= plan.fpstate_addr
        assert fp_end <= RSP - delta - sf.REDZONE < fp_end + 64
        assert plan.fpstate_addr - (plan.sp + sf.FRAME_SIZE) < 16 + 8


def test_handler_registers() -> None:
    regs = user_regs(RSP, eflags=0x202 | sf.EFLAGS_DF | sf.EFLAGS_TF | sf.EFLAGS_RF
                     | sf.EFLAGS_AC, ss=0x23, cs=0x23)
    plan, mem = deliver(regs)
    r = plan.regs
    assert (r.rip, r.rdi, r.rsi, r.rdx, r.rax, r.rsp) == (
        0x402000, 10, plan.sp + 312, plan.sp + 8, 0, plan.sp)
    assert r.eflags == 0x202 | sf.EFLAGS_AC and (r.cs, r.ss) == (0x33, 0x2B)
    assert (r.r12, r.fs_base, r.orig_rax) == (regs.r12, regs.fs_base, regs.orig_rax)
    assert mem.u64(plan.sp) == 0x403000
    sc = plan.uc_addr + 40
    assert mem.u64(sc + 136) == regs.eflags  # the interrupted flags, before clearing
    assert struct.unpack("<4H", mem.read(sc + 144, 8)) == (0x23, 0, 0, 0x23)


def test_fault_details_and_mask_in_sigcontext() -> None:
    plan, mem = deliver(mask=0xF0F0, trapno=14, err=6, cr2=0xBAD000)
    sc = plan.uc_addr + 40
    assert [mem.u64(sc + o) for o in (152, 160, 168, 176)] == [6, 14, 0xF0F0, 0xBAD000]
    assert mem.u64(plan.uc_addr + 296) == 0xF0F0


def test_fpstate_written_like_xsave() -> None:
    img = bytearray(avx_image(bv=sf.XFEATURE_SSE | sf.XFEATURE_YMM))
    img[520:528] = b"\xff" * 8  # ptrace never shows this; the frame's header is clean
    plan, mem = deliver(xstate=bytes(img))
    fp = mem.read(plan.fpstate_addr, len(img) + 4)
    assert struct.unpack_from("<IIQI", fp, 464) == (sf.FP_XSTATE_MAGIC1, len(img) + 4, 7, len(img))
    assert not any(fp[484:512]) and not any(fp[520:576])
    assert struct.unpack_from("<Q", fp, 512)[0] == 7  # FP forced in
    assert fp[:464] == img[:464] and fp[576:len(img)] == img[576:]
    assert struct.unpack_from("<I", fp, len(img))[0] == sf.FP_XSTATE_MAGIC2


def test_handler_fpu_starts_clean() -> None:
    plan, _ = deliver()
    x = plan.fpu_reset
    assert struct.unpack_from("<HHHH", x, 0) == (0x37F, 0, 0, 0)
    assert struct.unpack_from("<II", x, 24) == (0x1F80, 0xFFFF)
    assert not any(x[32:464]) and struct.unpack_from("<Q", x, 512)[0] == 3
    assert struct.unpack_from("<Q", x, 464)[0] == XCR0_AVX


def test_xstate_size_hint_drops_dynamic_features() -> None:
    img = bytearray(4096)
    struct.pack_into("<Q", img, 464, 0x60207)  # XCR0 with AMX tile config and data
    struct.pack_into("<I", img, 28, 0xFFFF)
    plan, mem = deliver(xstate=bytes(img), xstate_size_hint=2816,
                        mem=Memory((STACK, 0x10000)))
    fp = dict(plan.writes)[plan.fpstate_addr]
    assert len(fp) == 2820
    assert struct.unpack_from("<IIQI", fp, 464) == (sf.FP_XSTATE_MAGIC1, 2820, 0x20207, 2816)


def test_no_siginfo_without_sa_siginfo() -> None:
    plan, _ = deliver(flags=sf.SA_RESTORER)
    assert [len(d) for a, d in plan.writes] == [836, sf.FRAME_INFO]


def test_no_restorer_is_a_fault() -> None:
    with pytest.raises(sf.SigframeFault):
        deliver(flags=sf.SA_SIGINFO)


@pytest.mark.parametrize("rsp", [0x100, 0x10, (1 << 47) + 0x10000])
def test_frame_outside_user_space(rsp: int) -> None:
    with pytest.raises(sf.SigframeFault) as exc:
        deliver(user_regs(rsp))
    assert not isinstance(exc.value, sf.AltStackOverflow)


ALT = (0x10000, 0, 0x4000)


def _alt_mem() -> Memory:
    return Memory((STACK, 0x10000), (0x10000, 0x4000))


def test_switch_to_altstack() -> None:
    plan, _ = deliver(mem=_alt_mem(), altstack=ALT, flags=FLAGS | sf.SA_ONSTACK)
    assert plan.fpstate_addr == (0x14000 - 836) & ~63
    assert plan.altstack_after == ALT


def test_no_switch_without_sa_onstack() -> None:
    plan, _ = deliver(mem=_alt_mem(), altstack=ALT)
    assert plan.sp > STACK


def test_nested_on_altstack_stays_below_rsp() -> None:
    rsp = 0x13000
    plan, _ = deliver(user_regs(rsp), mem=_alt_mem(), altstack=ALT, flags=FLAGS | sf.SA_ONSTACK)
    assert plan.fpstate_addr + 836 <= rsp - 128 and plan.sp > 0x10000


def test_nested_overflow_even_without_sa_onstack() -> None:
    with pytest.raises(sf.AltStackOverflow):
        deliver(user_regs(0x10400), mem=_alt_mem(), altstack=ALT)


def test_red_zone_decides_onstack() -> None:
    """Linux asks sas_ss_flags() about rsp - 128: just above the altstack's top counts as
    on it, so the frame goes below rsp with no overflow check."""
    plan, _ = deliver(user_regs(0x14000 + 64), mem=_alt_mem(), altstack=ALT,
                      flags=FLAGS | sf.SA_ONSTACK)
    assert plan.fpstate_addr + 836 <= 0x14000 + 64 - 128


def test_autodisarm() -> None:
    alt = (0x10000, sf.SS_AUTODISARM, 0x4000)
    plan, mem = deliver(mem=_alt_mem(), altstack=alt, flags=FLAGS | sf.SA_ONSTACK)
    assert plan.sp < 0x14000 and plan.altstack_after == sf.ALTSTACK_RESET
    assert struct.unpack("<QI4xQ", mem.read(plan.uc_addr + 16, 24)) == alt
    # AUTODISARM: a nested signal while on the stack starts again from its top
    again, _ = deliver(user_regs(0x12000), mem=_alt_mem(), altstack=alt,
                       flags=FLAGS | sf.SA_ONSTACK)
    assert again.sp == plan.sp


def test_disabled_altstack_is_not_used() -> None:
    plan, _ = deliver(altstack=(0x10000, sf.SS_DISABLE, 0), flags=FLAGS | sf.SA_ONSTACK)
    assert plan.sp > STACK


# -- rt_sigreturn ---------------------------------------------------------------------------
def test_round_trip() -> None:
    regs = user_regs(RSP, eflags=0x246 | sf.EFLAGS_DF, rax=(1 << 64) - 4)
    img = avx_image(bv=7)
    plan, mem = deliver(regs, img, mask=(1 << 8) | (1 << 18) | 0x5)
    st = ret_frame(plan, mem)
    want = regs.copy()
    want.orig_rax = (1 << 64) - 1
    assert repr(st.regs) == repr(want)
    assert st.xstate == img and st.mask == 0x5 and st.altstack == (0, 0, 0)


def test_round_trip_host_image(host_xstate: bytes) -> None:
    plan, mem = deliver(xstate=host_xstate)
    st = ret_frame(plan, mem)
    bv_in = struct.unpack_from("<Q", host_xstate, 512)[0]
    assert struct.unpack_from("<Q", st.xstate, 512)[0] == bv_in | 3
    assert st.xstate[:512] == host_xstate[:512] and st.xstate[520:] == host_xstate[520:]


def test_sigreturn_takes_only_fix_eflags() -> None:
    plan, mem = deliver()
    mem.w64(plan.uc_addr + 40 + 136, 0xFFFFFFFF & ~sf.EFLAGS_TF)
    cur = after_ret(plan)
    cur.eflags = 0x202
    st = sf.parse_rt_frame(mem.read, cur.rsp - 8, cur, plan.fpu_reset, (0, 0, 0))
    assert st.regs.eflags == 0x202 | (sf.FIX_EFLAGS & ~sf.EFLAGS_TF)
    assert not st.regs.eflags & sf.EFLAGS_RF


def test_sigreturn_forces_user_selectors() -> None:
    plan, mem = deliver()
    mem.write(plan.uc_addr + 40 + 144, struct.pack("<4H", 0x23, 1, 2, 0))
    st = ret_frame(plan, mem)
    assert (st.regs.cs, st.regs.ss) == (0x33, 0x2B)


def test_sigreturn_rax_is_the_frames() -> None:
    plan, mem = deliver()
    mem.w64(plan.uc_addr + 40 + 104, 1234)
    assert ret_frame(plan, mem).regs.rax == 1234


def test_unreadable_frame() -> None:
    plan, mem = deliver()
    cur = after_ret(plan)
    with pytest.raises(sf.BadFrame) as exc:
        sf.parse_rt_frame(Memory().read, cur.rsp - 8, cur, plan.fpu_reset, (0, 0, 0))
    assert (exc.value.mask, exc.value.regs, exc.value.xstate) == (None, None, None)
    with pytest.raises(sf.BadFrame):
        sf.parse_rt_frame(mem.read, (1 << 64) - 8, cur, plan.fpu_reset, (0, 0, 0))


def test_unreadable_fpstate_resets_fpu() -> None:
    plan, mem = deliver()
    mem.w64(plan.uc_addr + 40 + 184, 0x500000)
    with pytest.raises(sf.BadFrame) as exc:
        ret_frame(plan, mem)
    bad = exc.value
    assert bad.mask == 0x200 and bad.regs.rip == 0x401000 and bad.xstate == plan.fpu_reset


def _fp_edit(offset: int, data: bytes):
    def edit(plan: sf.FramePlan, mem: Memory) -> None:
        mem.write(plan.fpstate_addr + offset, data)
    return edit


@pytest.mark.parametrize("why,edit", [
    ("magic1", _fp_edit(464, b"\0\0\0\0")),
    ("size below minimum", _fp_edit(480, struct.pack("<I", 575))),
    ("size above the thread's", _fp_edit(480, struct.pack("<I", 833))),
    ("extended size below size", _fp_edit(468, struct.pack("<I", 831))),
    ("magic2", _fp_edit(832, b"\0\0\0\0")),
])
def test_fx_only_restore(why: str, edit) -> None:
    plan, mem = deliver()
    mem.write(plan.fpstate_addr + 160, b"\x22" * 16)
    edit(plan, mem)
    x = ret_frame(plan, mem).xstate
    assert x[160:176] == b"\x22" * 16 and struct.unpack_from("<Q", x, 512)[0] == 3, why
    assert struct.unpack_from("<I", x, 24)[0] == 0x9FC0


def test_fx_only_alignment() -> None:
    """FXRSTOR needs 16-byte alignment, XRSTOR 64: a moved fpstate pointer tells."""
    plan, mem = deliver()
    fp = plan.fpstate_addr
    mem.write(fp - 16, mem.read(fp, 512))
    mem.w32(fp - 16 + 464, 0)
    mem.w64(plan.uc_addr + 40 + 184, fp - 16)
    assert ret_frame(plan, mem).xstate[160:176] == b"\x11" * 16
    mem.w64(plan.uc_addr + 40 + 184, fp - 8)
    mem.write(fp - 8, mem.read(fp - 16, 512))
    with pytest.raises(sf.BadFrame):
        ret_frame(plan, mem)
    plan, mem = deliver()
    fp = plan.fpstate_addr
    mem.write(fp - 16, mem.read(fp, 836))
    mem.w64(plan.uc_addr + 40 + 184, fp - 16)
    with pytest.raises(sf.BadFrame):  # a full image 16-aligned: XRSTOR #GP
        ret_frame(plan, mem)


def test_sw_xfeatures_limit_the_restore() -> None:
    plan, mem = deliver()
    mem.w64(plan.fpstate_addr + 472, sf.XFEATURE_FP | sf.XFEATURE_YMM)
    x = ret_frame(plan, mem).xstate
    assert x[160:176] == bytes(16) and struct.unpack_from("<Q", x, 512)[0] == 7
    assert x[576:592] == b"\x11" * 16
    plan, mem = deliver()
    mem.w64(plan.fpstate_addr + 472, sf.XFEATURE_SSE)
    x = ret_frame(plan, mem).xstate
    assert struct.unpack_from("<HI", x, 0)[0] == 0x37F and x[160:176] == b"\x11" * 16
    assert struct.unpack_from("<I", x, 24)[0] == 0x9FC0


def test_null_fpstate_resets_fpu() -> None:
    plan, mem = deliver()
    mem.w64(plan.uc_addr + 40 + 184, 0)
    assert ret_frame(plan, mem).xstate == plan.fpu_reset


def test_mask_never_blocks_kill_or_stop() -> None:
    plan, mem = deliver()
    mem.w64(plan.uc_addr + 296, (1 << 64) - 1)
    assert ret_frame(plan, mem).mask == (1 << 64) - 1 - (1 << 8) - (1 << 18)


@pytest.mark.parametrize("stack,current,want", [
    ((0x20000, 0, 0x8000), (0, 0, 0), (0x20000, 0, 0x8000)),
    ((0, sf.SS_DISABLE, 0), ALT, (0, sf.SS_DISABLE, 0)),
    ((0x20000, 0, 100), ALT, ALT),  # ENOMEM: ignored
    ((0x20000, 4, 0x8000), ALT, ALT),  # EINVAL: ignored
    ((0x20000, sf.SS_AUTODISARM, 0x8000), (0, sf.SS_DISABLE, 0),
     (0x20000, sf.SS_AUTODISARM, 0x8000)),
])
def test_sigreturn_restores_altstack(stack, current, want) -> None:
    plan, mem = deliver()
    mem.write(plan.uc_addr + 16, struct.pack("<QI4xQ", *stack))
    assert ret_frame(plan, mem, altstack=current).altstack == want


def test_sigreturn_onto_altstack_keeps_it() -> None:
    """EPERM (the restored rsp is on the current altstack) is ignored too."""
    plan, mem = deliver(mem=_alt_mem(), altstack=ALT, flags=FLAGS | sf.SA_ONSTACK)
    mem.w64(plan.uc_addr + 40 + 120, 0x12000)
    mem.write(plan.uc_addr + 16, struct.pack("<QI4xQ", 0, sf.SS_DISABLE, 0))
    assert ret_frame(plan, mem, altstack=ALT).altstack == ALT


# -- sigaltstack rules ----------------------------------------------------------------------
def test_sigaltstack_rules() -> None:
    alt = sf.AltStack(*ALT)
    assert sf.sigaltstack_report(sf.AltStack(), 0x1234) == (0, sf.SS_DISABLE, 0)
    assert sf.sigaltstack_report(alt, 0x12000) == (0x10000, sf.SS_ONSTACK, 0x4000)
    assert sf.sigaltstack_report(alt, 0x14000) == (0x10000, sf.SS_ONSTACK, 0x4000)
    assert sf.sigaltstack_report(alt, 0x10000) == (0x10000, 0, 0x4000)
    armed = sf.AltStack(0x10000, sf.SS_AUTODISARM, 0x4000)
    assert sf.sigaltstack_report(armed, 0x12000) == (0x10000, sf.SS_AUTODISARM, 0x4000)
    for new, err in (((0, 3, 0), EINVAL), ((0x1000, 0, 2047), ENOMEM)):
        with pytest.raises(SyscallError) as exc:
            sf.do_sigaltstack(sf.AltStack(), sf.AltStack(*new), 0x5000)
        assert exc.value.errno == err
    with pytest.raises(SyscallError) as exc:
        sf.do_sigaltstack(alt, sf.AltStack(), 0x12000)
    assert exc.value.errno == EPERM
    assert sf.do_sigaltstack(alt, sf.AltStack(5, sf.SS_DISABLE | sf.SS_AUTODISARM, 9), 0) == (
        0, sf.SS_DISABLE | sf.SS_AUTODISARM, 0)
    assert sf.do_sigaltstack(armed, sf.AltStack(0x1000, sf.SS_ONSTACK, 4096), 0x12000) == (
        0x1000, sf.SS_ONSTACK, 4096)
