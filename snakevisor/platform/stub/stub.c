/*
 * snakevisor stub: the host process that becomes one application address space.
 *
 * Why this exists: the sentry must never fork itself into the sandbox (its memory
 * would leak in), so every application address space starts life as this tiny
 * static program.  It confines itself (namespaces, empty root, no capabilities,
 * no_new_privs, seccomp), then parks on `int3` forever.  From then on the sentry
 * drives it with ptrace: application code runs under PTRACE_SYSEMU, and host
 * system calls the sentry decides to make are injected by pointing %rip at
 * stub_syscall ("syscall; int3").  The seccomp filter kills any system call whose
 * instruction pointer is not that one instruction.
 *
 * Built freestanding: no libc, no data, no bss, text linked high so the
 * application layout below it is free.
 *
 * argv[1]: an empty host directory that becomes the stub's root (tmpfs, pivot_root).
 * argv[2]: host uid/gid map is written by the sentry at the SIGSTOP handshake.
 */
#include <linux/seccomp.h>
#include <linux/filter.h>
#include <linux/audit.h>
#include <linux/sched.h>
#include <linux/capability.h>
#include <linux/prctl.h>
#include <linux/mount.h>
#include <asm/unistd.h>
#include <stddef.h>

#define SIGSTOP 19
#define SIGCHLD 17
#define SIG_IGN 1
#define MNT_DETACH 2

extern void stub_park(void);

/* Used only before the filter is installed. */
static inline long sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#define sys(n, a, b, c) sys6(n, (long)(a), (long)(b), (long)(c), 0, 0, 0)

static void die(int code)
{
    for (;;)
        sys(__NR_exit_group, 100 + code, 0, 0);
}

#define CHECK(expr, code) do { if ((long)(expr) < 0) die(code); } while (0)

struct ksigaction { unsigned long handler, flags, restorer, mask; };

void stub_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    if (argc < 2)
        die(1);
    const char *root = argv[1];

    /* The sentry is our tracer from the first instruction it cares about. */
    CHECK(sys(__NR_ptrace, 0 /* PTRACE_TRACEME */, 0, 0), 2);
    CHECK(sys(__NR_unshare, CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
                                CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP, 0, 0), 3);
    /* Handshake: the sentry sets ptrace options and writes our uid/gid maps. */
    CHECK(sys(__NR_kill, sys(__NR_getpid, 0, 0, 0), SIGSTOP, 0), 4);
    /* Take on the mapped identity: root here, an unprivileged uid on the host. */
    CHECK(sys(__NR_setresgid, 0, 0, 0), 18);
    CHECK(sys(__NR_setresuid, 0, 0, 0), 19);

    /* Become pid 1 of the new pid namespace: only children enter it. */
    long pid = sys(__NR_fork, 0, 0, 0);
    CHECK(pid, 5);
    if (pid > 0)
        die(-100); /* exit_group(0): the outer stub's job is done */

    /* Root: a fresh read-only tmpfs, the host tree detached entirely. */
    CHECK(sys6(__NR_mount, 0, (long)"/", 0, MS_REC | MS_PRIVATE, 0, 0), 6);
    CHECK(sys6(__NR_mount, (long)"none", (long)root, (long)"tmpfs",
               MS_NOSUID | MS_NODEV | MS_NOEXEC, (long)"size=4k,mode=0555", 0), 7);
    CHECK(sys(__NR_chdir, root, 0, 0), 8);
    CHECK(sys(__NR_pivot_root, ".", ".", 0), 9);
    CHECK(sys(__NR_umount2, ".", MNT_DETACH, 0), 10);
    CHECK(sys(__NR_chdir, "/", 0, 0), 11);
    CHECK(sys6(__NR_mount, 0, (long)"/", 0, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID |
               MS_NODEV | MS_NOEXEC, 0, 0), 12);

    /* No capabilities, now or ever. */
    for (long cap = 0; cap < 64; cap++)
        sys(__NR_prctl, PR_CAPBSET_DROP, cap, 0);
    sys6(__NR_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0);
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2] = {{0, 0, 0}, {0, 0, 0}};
    CHECK(sys(__NR_capset, &hdr, data, 0), 13);
    CHECK(sys6(__NR_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0), 14);

    /* Host signals never reach application code: block them all.  Faults are
     * forced through regardless and show up to the sentry as signal stops.
     * Exited child stubs are reaped by the kernel (SIGCHLD ignored). */
    struct ksigaction ign = {SIG_IGN, 0, 0, 0};
    CHECK(sys6(__NR_rt_sigaction, SIGCHLD, (long)&ign, 0, 8, 0, 0), 15);
    unsigned long all = ~0UL;
    CHECK(sys6(__NR_rt_sigprocmask, 0 /* SIG_BLOCK */, (long)&all, 0, 8, 0, 0), 16);

    /* Only the instruction at stub_syscall may make host system calls. */
    unsigned long ip = (unsigned long)&stub_park + 2; /* %rip after its syscall */
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)ip, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, instruction_pointer) + 4),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)(ip >> 32), 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1), /* no x32 numbers */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof(filter) / sizeof(filter[0]), filter};
    CHECK(sys(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog), 17);

    /* Announce readiness through the one permitted instruction: getpid, then int3. */
    __asm__ volatile("mov %0, %%eax\n\tjmp stub_park" : : "i"(__NR_getpid) : "rax");
    __builtin_unreachable();
}

/* The only code the application address space keeps from us. */
__asm__(".text\n"
        ".globl _start\n"
        "_start:\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call stub_main\n"
        "  hlt\n"
        ".balign 16\n"
        ".globl stub_park\n"
        "stub_park:\n"
        "  syscall\n"
        "  int3\n"
        "  jmp stub_park\n"
        /* stub_park + 8: an atomic compare-and-swap of the u32 at %rdi (expected %eax,
         * new %esi; %eax = what was there) for futex operations the sentry must do
         * atomically against the application's running threads. No system call. */
        ".balign 8\n"
        ".globl stub_cmpxchg\n"
        "stub_cmpxchg:\n"
        "  lock cmpxchgl %esi, (%rdi)\n"
        "  int3\n");
