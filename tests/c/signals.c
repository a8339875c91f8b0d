/* Signals: rt_sigaction (flags, masks, errors, round trip), the siginfo a handler sees for
 * each way of sending (kill, tgkill, sigqueue, rt_[tg]sigqueueinfo, timers, faults, children),
 * SA_RESETHAND/SA_NODEFER, the mask during a handler and its restoration from the frame,
 * blocking, pending and delivery order, FP/SSE/AVX state across a handler, sigaltstack,
 * EINTR versus SA_RESTART, sigsuspend, sigtimedwait, pause, synchronous faults (SIGSEGV,
 * SIGBUS, SIGFPE, SIGILL, SIGTRAP), SIGCHLD, SIGPIPE, stop/continue, itimers and POSIX
 * timers.
 *
 * This program is pid 1 inside the sandbox, so signals whose default action would end it
 * are only sent to children; everything sent to ourselves has a handler or is blocked. */
#include "proc_helpers.h"
#include <poll.h>
#include <setjmp.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/ucontext.h>

static const char *codename(int sig, int code)
{
    static char buf[32];
    switch (code) {
    case SI_USER: return "SI_USER";
    case SI_KERNEL: return "SI_KERNEL";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TIMER: return "SI_TIMER";
    case SI_TKILL: return "SI_TKILL";
    case SI_MESGQ: return "SI_MESGQ";
    case SI_ASYNCIO: return "SI_ASYNCIO";
    }
    if (sig == SIGSEGV && code == SEGV_MAPERR) return "SEGV_MAPERR";
    if (sig == SIGSEGV && code == SEGV_ACCERR) return "SEGV_ACCERR";
    if (sig == SIGBUS && code == BUS_ADRERR) return "BUS_ADRERR";
    if (sig == SIGBUS && code == BUS_ADRALN) return "BUS_ADRALN";
    if (sig == SIGFPE && code == FPE_INTDIV) return "FPE_INTDIV";
    if (sig == SIGILL && code == ILL_ILLOPN) return "ILL_ILLOPN";
    if (sig == SIGTRAP && code == TRAP_BRKPT) return "TRAP_BRKPT";
    if (sig == SIGCHLD && code == CLD_EXITED) return "CLD_EXITED";
    if (sig == SIGCHLD && code == CLD_KILLED) return "CLD_KILLED";
    if (sig == SIGCHLD && code == CLD_DUMPED) return "CLD_DUMPED";
    if (sig == SIGCHLD && code == CLD_STOPPED) return "CLD_STOPPED";
    if (sig == SIGCHLD && code == CLD_CONTINUED) return "CLD_CONTINUED";
    snprintf(buf, sizeof buf, "code %d", code);
    return buf;
}

/* ------------------------------------------------------------------ recording handler */

struct seen {
    int signo, code, value, depth;
    pid_t pid;
    uid_t uid;
    int self_blocked, hup_blocked, int_blocked;
};

static struct seen seen[64];
static volatile int nseen, depth, max_depth;
static int reenter_sig;   /* the handler sends this once more from inside itself */

static void record(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    int d = ++depth;
    if (d > max_depth)
        max_depth = d;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    if (nseen < 64) {
        struct seen *s = &seen[nseen++];
        s->signo = sig;
        s->code = si->si_code;
        s->pid = si->si_pid;
        s->uid = si->si_uid;
        s->value = si->si_value.sival_int;
        s->depth = d;
        s->self_blocked = sigismember(&cur, sig);
        s->hup_blocked = sigismember(&cur, SIGHUP);
        s->int_blocked = sigismember(&cur, SIGINT);
    }
    if (reenter_sig == sig) {
        reenter_sig = 0;
        raise(sig);
    }
    depth--;
}

static void reset_seen(void)
{
    nseen = 0;
    depth = 0;
    max_depth = 0;
}

static void on(int sig, void (*fn)(int, siginfo_t *, void *), int flags, const int *masked)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    sigemptyset(&sa.sa_mask);
    for (; masked && *masked; masked++)
        sigaddset(&sa.sa_mask, *masked);
    if (sigaction(sig, &sa, NULL) != 0)
        printf("sigaction %s: FAILED errno=%s\n", signame(sig), ename(errno));
}

static void show_seen(const char *label)
{
    printf("%s: %d deliveries\n", label, nseen);
    for (int i = 0; i < nseen; i++) {
        struct seen *s = &seen[i];
        printf("  %s %s pid-is-us=%s uid=%d value=%d depth=%d blocked(self,HUP,INT)=%d%d%d\n",
               signame(s->signo), codename(s->signo, s->code), s->pid == getpid() ? "yes" : "no",
               (int)s->uid, s->value, s->depth, s->self_blocked, s->hup_blocked, s->int_blocked);
    }
}

static void block(int sig)
{
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, sig);
    sigprocmask(SIG_BLOCK, &m, NULL);
}

static void unblock(int sig)
{
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, sig);
    sigprocmask(SIG_UNBLOCK, &m, NULL);
}

static int is_pending(int sig)
{
    sigset_t p;
    sigpending(&p);
    return sigismember(&p, sig);
}

static int is_blocked(int sig)
{
    sigset_t m;
    sigprocmask(SIG_BLOCK, NULL, &m);
    return sigismember(&m, sig);
}

static void one_shot_timer_ms(int ms)
{
    struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
    if (setitimer(ITIMER_REAL, &it, NULL) != 0)
        printf("setitimer: FAILED errno=%s\n", ename(errno));
}

static long raw_sigaction(int sig, const void *act, void *old, long size)
{
    return syscall(SYS_rt_sigaction, sig, act, old, size);
}

/* ------------------------------------------------------------------ sigaction */

static void dummy(int sig) { (void)sig; }

static void test_sigaction(void)
{
    section("sigaction");
    struct sigaction sa = {0}, old;
    sa.sa_handler = dummy;
    show("sigaction(SIGKILL, handler)", sigaction(SIGKILL, &sa, NULL));
    show("sigaction(SIGSTOP, handler)", sigaction(SIGSTOP, &sa, NULL));
    sa.sa_handler = SIG_IGN;
    show("sigaction(SIGKILL, SIG_IGN)", sigaction(SIGKILL, &sa, NULL));
    show("sigaction(SIGKILL, NULL, &old) (query only)", sigaction(SIGKILL, NULL, &old));
    show("sigaction(0)", sigaction(0, &sa, NULL));
    show("sigaction(65)", sigaction(65, &sa, NULL));
    show("raw rt_sigaction(64) query", raw_sigaction(64, NULL, &old, 8));
    show("raw rt_sigaction(65) query", raw_sigaction(65, NULL, &old, 8));
    show("raw rt_sigaction sigsetsize 4", raw_sigaction(SIGUSR1, NULL, &old, 4));
    show("raw rt_sigaction sigsetsize 16", raw_sigaction(SIGUSR1, NULL, &old, 16));
    show("raw rt_sigaction bad act pointer", raw_sigaction(SIGUSR1, (void *)8, NULL, 8));

    /* round trip */
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = record;
    sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGHUP);
    sigaddset(&sa.sa_mask, SIGQUIT);
    sigaddset(&sa.sa_mask, SIGKILL);
    sigaddset(&sa.sa_mask, SIGSTOP);
    sigaddset(&sa.sa_mask, SIGRTMIN + 3);
    show("sigaction(SIGUSR1, full action)", sigaction(SIGUSR1, &sa, NULL));
    memset(&old, 0, sizeof old);
    show("sigaction(SIGUSR1, NULL, &old)", sigaction(SIGUSR1, NULL, &old));
    CHECK("handler round-trips", old.sa_sigaction == record);
    printf("flags without SA_RESTORER: 0x%x, SA_RESTORER set: %s\n", old.sa_flags & ~0x04000000,
           old.sa_flags & 0x04000000 ? "yes" : "no");
    printf("mask: HUP %d QUIT %d KILL %d STOP %d RTMIN+3 %d INT %d\n", sigismember(&old.sa_mask, SIGHUP),
           sigismember(&old.sa_mask, SIGQUIT), sigismember(&old.sa_mask, SIGKILL),
           sigismember(&old.sa_mask, SIGSTOP), sigismember(&old.sa_mask, SIGRTMIN + 3),
           sigismember(&old.sa_mask, SIGINT));
    struct sigaction prev;
    sa.sa_handler = SIG_IGN;
    sa.sa_flags = 0;
    show("sigaction(SIGUSR1, SIG_IGN, &prev)", sigaction(SIGUSR1, &sa, &prev));
    CHECK("prev is the full action", prev.sa_sigaction == record && (prev.sa_flags & SA_NODEFER));
    show("signal(SIGUSR1, SIG_DFL) returns SIG_IGN", signal(SIGUSR1, SIG_DFL) == SIG_IGN);
    show("signal(SIGUSR1, dummy) returns SIG_DFL", signal(SIGUSR1, dummy) == SIG_DFL);
    signal(SIGUSR1, SIG_DFL);

    /* Unknown flag bits are dropped; SA_UNSUPPORTED never sticks (feature detection). */
    struct { void *h; unsigned long flags; void *restorer; unsigned long mask; } k = {0}, kold;
    k.h = (void *)SIG_IGN;
    k.flags = 0x00000400 /* SA_UNSUPPORTED */ | SA_RESTART;
    show("raw rt_sigaction with SA_UNSUPPORTED", raw_sigaction(SIGUSR2, &k, NULL, 8));
    memset(&kold, 0, sizeof kold);
    raw_sigaction(SIGUSR2, NULL, &kold, 8);
    printf("read back flags: 0x%lx\n", kold.flags);
    signal(SIGUSR2, SIG_DFL);

    /* Setting SIG_IGN discards a pending signal; so does SIG_DFL for a default-ignored one. */
    block(SIGUSR1);
    raise(SIGUSR1);
    printf("SIGUSR1 pending while blocked: %d\n", is_pending(SIGUSR1));
    signal(SIGUSR1, SIG_IGN);
    printf("pending after SIG_IGN: %d\n", is_pending(SIGUSR1));
    signal(SIGUSR1, SIG_DFL);
    unblock(SIGUSR1);
    block(SIGWINCH);
    on(SIGWINCH, record, 0, NULL);
    raise(SIGWINCH);
    printf("SIGWINCH pending while blocked (handled): %d\n", is_pending(SIGWINCH));
    signal(SIGWINCH, SIG_DFL);
    printf("pending after SIG_DFL (default ignore): %d\n", is_pending(SIGWINCH));
    raise(SIGWINCH);
    printf("blocked SIG_DFL SIGWINCH raised: pending %d\n", is_pending(SIGWINCH));
    signal(SIGWINCH, SIG_IGN);
    signal(SIGWINCH, SIG_DFL);
    unblock(SIGWINCH);
    /* Ignored signals sent to ourselves vanish. */
    signal(SIGUSR2, SIG_IGN);
    show("kill(self, ignored SIGUSR2)", kill(getpid(), SIGUSR2));
    signal(SIGUSR2, SIG_DFL);
}

/* ------------------------------------------------------------------ siginfo by sender */

static void test_siginfo(void)
{
    section("siginfo by sender");
    on(SIGUSR1, record, 0, NULL);
    reset_seen();
    show("kill(self, SIGUSR1)", kill(getpid(), SIGUSR1));
    show("raise(SIGUSR1)", raise(SIGUSR1));
    show("tgkill(self, gettid, SIGUSR1)", syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), SIGUSR1));
    show("tkill(gettid, SIGUSR1)", syscall(SYS_tkill, syscall(SYS_gettid), SIGUSR1));
    show("sigqueue(self, SIGUSR1, 1234)", sigqueue(getpid(), SIGUSR1, (union sigval){.sival_int = 1234}));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    si.si_signo = SIGUSR1;
    si.si_code = -60;
    si.si_pid = getpid();
    si.si_uid = 4242;
    si.si_value.sival_int = 5;
    show("rt_sigqueueinfo(self, code -60, uid 4242)", syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si));
    si.si_code = SI_USER;
    si.si_value.sival_int = 6;
    show("rt_sigqueueinfo(self, SI_USER) (allowed to ourselves)", syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, &si));
    si.si_code = SI_QUEUE;
    si.si_uid = 0;
    si.si_value.sival_int = 7;
    show("rt_tgsigqueueinfo(self, tid, SI_QUEUE)",
         syscall(SYS_rt_tgsigqueueinfo, getpid(), syscall(SYS_gettid), SIGUSR1, &si));
    show_seen("SIGUSR1 handler");

    show("kill(self, 0)", kill(getpid(), 0));
    show("sigqueue(self, 0)", sigqueue(getpid(), 0, (union sigval){0}));
    show("kill(self, 65)", kill(getpid(), 65));
    show("tgkill(self, tid, 65)", syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), 65));
    show("tgkill(self, 0, SIGUSR1)", syscall(SYS_tgkill, getpid(), 0, SIGUSR1));
    show("tgkill(0, tid, SIGUSR1)", syscall(SYS_tgkill, 0, syscall(SYS_gettid), SIGUSR1));
    show("tgkill(self, no such tid, 0)", syscall(SYS_tgkill, getpid(), 0x7ffffff0, 0));
    show("tkill(-1, SIGUSR1)", syscall(SYS_tkill, -1, SIGUSR1));
    show("tkill(no such tid, 0)", syscall(SYS_tkill, 0x7ffffff0, 0));
    show("rt_sigqueueinfo(self, 65)", syscall(SYS_rt_sigqueueinfo, getpid(), 65, &si));
    show("rt_sigqueueinfo(self, bad info pointer)", syscall(SYS_rt_sigqueueinfo, getpid(), SIGUSR1, (void *)8));

    /* Someone else's siginfo may not claim to be the kernel or kill(). */
    pid_t child = fork();
    if (child == 0) {
        for (;;)
            pause();
    }
    si.si_code = SI_USER;
    show("rt_sigqueueinfo(child, SI_USER)", syscall(SYS_rt_sigqueueinfo, child, SIGUSR1, &si));
    si.si_code = SI_KERNEL;
    show("rt_sigqueueinfo(child, SI_KERNEL)", syscall(SYS_rt_sigqueueinfo, child, SIGUSR1, &si));
    si.si_code = SI_TKILL;
    show("rt_sigqueueinfo(child, SI_TKILL)", syscall(SYS_rt_sigqueueinfo, child, SIGUSR1, &si));
    si.si_code = SI_QUEUE;
    show("rt_sigqueueinfo(child, SI_QUEUE, SIGKILL)", syscall(SYS_rt_sigqueueinfo, child, SIGKILL, &si));
    show_status("child", reap(child));
    signal(SIGUSR1, SIG_DFL);
}

/* ------------------------------------------------------------------ handler flags and masks */

static void modify_frame_mask(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    record(sig, si, ucv);
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGINT);
    sigprocmask(SIG_BLOCK, &m, NULL);     /* undone by sigreturn */
    sigaddset(&uc->uc_sigmask, SIGQUIT);  /* applied by sigreturn */
}

static void test_handler_masks(void)
{
    section("handler flags and masks");
    static const int hup[] = {SIGHUP, 0};
    reset_seen();
    on(SIGUSR1, record, 0, hup);
    raise(SIGUSR1);
    show_seen("plain handler with sa_mask {SIGHUP}");
    printf("after return: USR1 blocked %d, HUP blocked %d\n", is_blocked(SIGUSR1), is_blocked(SIGHUP));

    reset_seen();
    on(SIGUSR1, record, SA_NODEFER, NULL);
    raise(SIGUSR1);
    show_seen("SA_NODEFER");

    reset_seen();
    on(SIGUSR1, record, SA_RESETHAND, NULL);
    raise(SIGUSR1);
    show_seen("SA_RESETHAND");
    struct sigaction old;
    sigaction(SIGUSR1, NULL, &old);
    printf("after SA_RESETHAND delivery: handler is SIG_DFL %s, SA_SIGINFO kept %s\n",
           old.sa_handler == SIG_DFL ? "yes" : "no", old.sa_flags & SA_SIGINFO ? "yes" : "no");

    /* Re-entry: the handler raises its own signal once. */
    reset_seen();
    on(SIGUSR2, record, SA_NODEFER, NULL);
    reenter_sig = SIGUSR2;
    raise(SIGUSR2);
    printf("SA_NODEFER self-raise: %d deliveries, max nesting %d\n", nseen, max_depth);
    reset_seen();
    on(SIGUSR2, record, 0, NULL);
    reenter_sig = SIGUSR2;
    raise(SIGUSR2);
    printf("deferred self-raise: %d deliveries, max nesting %d\n", nseen, max_depth);

    /* The mask is restored from the frame, not from what the handler did. */
    reset_seen();
    on(SIGUSR2, modify_frame_mask, 0, NULL);
    raise(SIGUSR2);
    printf("after the handler: INT blocked %d (its sigprocmask undone), QUIT blocked %d (uc_sigmask applied)\n",
           is_blocked(SIGINT), is_blocked(SIGQUIT));
    unblock(SIGQUIT);
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);
}

/* ------------------------------------------------------------------ blocking, pending, order */

static void test_mask_and_pending(void)
{
    section("sigprocmask and sigpending");
    reset_seen();
    on(SIGUSR1, record, 0, NULL);
    sigset_t m, old, p;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    show("sigprocmask(SIG_BLOCK, {USR1})", sigprocmask(SIG_BLOCK, &m, &old));
    printf("old mask had USR1: %d\n", sigismember(&old, SIGUSR1));
    raise(SIGUSR1);
    printf("handler ran while blocked: %d\n", nseen);
    sigpending(&p);
    printf("sigpending has USR1: %d, USR2: %d\n", sigismember(&p, SIGUSR1), sigismember(&p, SIGUSR2));
    show("sigprocmask(SIG_UNBLOCK, {USR1})", sigprocmask(SIG_UNBLOCK, &m, NULL));
    printf("delivered on unblock (before sigprocmask returned): %d\n", nseen);
    printf("pending after delivery: %d\n", is_pending(SIGUSR1));

    sigfillset(&m);
    show("sigprocmask(SIG_SETMASK, all)", sigprocmask(SIG_SETMASK, &m, &old));
    sigprocmask(SIG_BLOCK, NULL, &m);
    printf("KILL blocked %d, STOP blocked %d, USR1 blocked %d, RTMAX blocked %d\n", sigismember(&m, SIGKILL),
           sigismember(&m, SIGSTOP), sigismember(&m, SIGUSR1), sigismember(&m, SIGRTMAX));
    sigprocmask(SIG_SETMASK, &old, NULL);
    show("sigprocmask(how 3)", sigprocmask(3, &m, NULL));
    show("sigprocmask(how -1)", sigprocmask(-1, &m, NULL));
    show("raw rt_sigprocmask(how 99, NULL set)", syscall(SYS_rt_sigprocmask, 99, NULL, &old, 8));
    show("raw rt_sigprocmask sigsetsize 4", syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &old, 4));
    show("raw rt_sigprocmask bad set pointer", syscall(SYS_rt_sigprocmask, SIG_BLOCK, (void *)8, NULL, 8));
    show("raw rt_sigpending sigsetsize 4", syscall(SYS_rt_sigpending, &p, 4));
    show("raw rt_sigpending sigsetsize 16", syscall(SYS_rt_sigpending, &p, 16));
    signal(SIGUSR1, SIG_DFL);
}

static void test_order(void)
{
    section("delivery order and queueing");
    static const int all[] = {SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGTERM, SIGALRM, 0};
    static const int none[] = {0};
    int rt0 = SIGRTMIN, rt1 = SIGRTMIN + 1;
    int rtall[] = {SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGTERM, SIGALRM, rt0, rt1, 0};
    sigset_t m, old;

    /* Handlers that block everything: one at a time, lowest number first. */
    for (const int *s = all; *s; s++)
        on(*s, record, 0, rtall);
    on(rt0, record, 0, rtall);
    on(rt1, record, 0, rtall);
    sigemptyset(&m);
    for (const int *s = rtall; *s; s++)
        sigaddset(&m, *s);
    sigprocmask(SIG_BLOCK, &m, &old);
    reset_seen();
    static const int sends[] = {SIGTERM, SIGUSR2, SIGINT, SIGUSR1, SIGHUP, SIGALRM};
    for (int round = 0; round < 3; round++)
        for (unsigned i = 0; i < sizeof sends / sizeof sends[0]; i++)
            kill(getpid(), sends[i]);
    for (int v = 1; v <= 3; v++)
        sigqueue(getpid(), rt1, (union sigval){.sival_int = v});
    sigqueue(getpid(), rt0, (union sigval){.sival_int = 9});
    sigqueue(getpid(), rt0, (union sigval){.sival_int = 10});
    printf("delivered while blocked: %d\n", nseen);
    sigprocmask(SIG_SETMASK, &old, NULL);
    show_seen("standard signals sent 3 times each, RT queued (handlers mask all)");

    /* Handlers that block nothing: each newly unblocked delivery nests on the last. */
    for (const int *s = all; *s; s++)
        on(*s, record, 0, none);
    sigprocmask(SIG_BLOCK, &m, &old);
    reset_seen();
    for (unsigned i = 0; i < sizeof sends / sizeof sends[0]; i++)
        kill(getpid(), sends[i]);
    sigprocmask(SIG_SETMASK, &old, NULL);
    show_seen("six standard signals, handlers mask nothing");

    for (const int *s = rtall; *s; s++)
        signal(*s, SIG_DFL);
}

/* ------------------------------------------------------------------ FP / SSE / AVX */

static unsigned fp_entry_mxcsr;
static unsigned short fp_entry_fcw;
static volatile int fp_handled;

static void fp_clobber(int sig)
{
    (void)sig;
    unsigned mx;
    unsigned short cw;
    __asm__ volatile("stmxcsr %0" : "=m"(mx));
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    fp_entry_mxcsr = mx;
    fp_entry_fcw = cw;
    __asm__ volatile("pcmpeqd %%xmm0, %%xmm0\n\t"
                     "movdqa %%xmm0, %%xmm1\n\tmovdqa %%xmm0, %%xmm2\n\tmovdqa %%xmm0, %%xmm3\n\t"
                     "movdqa %%xmm0, %%xmm4\n\tmovdqa %%xmm0, %%xmm5\n\tmovdqa %%xmm0, %%xmm6\n\t"
                     "movdqa %%xmm0, %%xmm7\n\tmovdqa %%xmm0, %%xmm8\n\tmovdqa %%xmm0, %%xmm9\n\t"
                     "movdqa %%xmm0, %%xmm10\n\tmovdqa %%xmm0, %%xmm11\n\tmovdqa %%xmm0, %%xmm12\n\t"
                     "movdqa %%xmm0, %%xmm13\n\tmovdqa %%xmm0, %%xmm14\n\tmovdqa %%xmm0, %%xmm15\n\t"
                     "fninit\n\t"
                     ::: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
                       "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st", "st(1)");
    if (__builtin_cpu_supports("avx"))
        __asm__ volatile("vpcmpeqd %%ymm0, %%ymm0, %%ymm0\n\t"
                         "vmovdqa %%ymm0, %%ymm1\n\tvmovdqa %%ymm0, %%ymm7\n\tvmovdqa %%ymm0, %%ymm15\n\t"
                         "vzeroupper\n\t" ::: "xmm0", "xmm1", "xmm7", "xmm15");
    if (__builtin_cpu_supports("avx512f"))
        __asm__ volatile("vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16\n\t"
                         "vmovdqa64 %%zmm16, %%zmm17\n\tvmovdqa64 %%zmm16, %%zmm31\n\t"
                         "kxnorw %%k0, %%k0, %%k1\n\tkxnorw %%k0, %%k0, %%k7\n\t" ::: "memory");
    unsigned newmx = 0x3f80;   /* round down, all masked */
    unsigned short newcw = 0x077f;
    __asm__ volatile("ldmxcsr %0" ::"m"(newmx));
    __asm__ volatile("fldcw %0" ::"m"(newcw));
    volatile double d = 3.3;
    d = d * d / 7.0;
    fp_handled++;
}

static uint64_t xin[32], xout[32];
static double x87in[2] = {1.25, -7.5}, x87out[2];

/* Loads xmm0-15 and two x87 registers, calls kill(self, SIGUSR1) with the `syscall`
 * instruction (the handler runs on its return), stores them back. */
static void sse_around_kill(void)
{
    long pid = getpid();
    __asm__ volatile(
        "fldl 8(%[x87in])\n\tfldl (%[x87in])\n\t"
        "movdqu 0(%[in]), %%xmm0\n\tmovdqu 16(%[in]), %%xmm1\n\tmovdqu 32(%[in]), %%xmm2\n\t"
        "movdqu 48(%[in]), %%xmm3\n\tmovdqu 64(%[in]), %%xmm4\n\tmovdqu 80(%[in]), %%xmm5\n\t"
        "movdqu 96(%[in]), %%xmm6\n\tmovdqu 112(%[in]), %%xmm7\n\tmovdqu 128(%[in]), %%xmm8\n\t"
        "movdqu 144(%[in]), %%xmm9\n\tmovdqu 160(%[in]), %%xmm10\n\tmovdqu 176(%[in]), %%xmm11\n\t"
        "movdqu 192(%[in]), %%xmm12\n\tmovdqu 208(%[in]), %%xmm13\n\tmovdqu 224(%[in]), %%xmm14\n\t"
        "movdqu 240(%[in]), %%xmm15\n\t"
        "mov $62, %%eax\n\tmov %[pid], %%rdi\n\tmov $10, %%esi\n\tsyscall\n\t"
        "movdqu %%xmm0, 0(%[out])\n\tmovdqu %%xmm1, 16(%[out])\n\tmovdqu %%xmm2, 32(%[out])\n\t"
        "movdqu %%xmm3, 48(%[out])\n\tmovdqu %%xmm4, 64(%[out])\n\tmovdqu %%xmm5, 80(%[out])\n\t"
        "movdqu %%xmm6, 96(%[out])\n\tmovdqu %%xmm7, 112(%[out])\n\tmovdqu %%xmm8, 128(%[out])\n\t"
        "movdqu %%xmm9, 144(%[out])\n\tmovdqu %%xmm10, 160(%[out])\n\tmovdqu %%xmm11, 176(%[out])\n\t"
        "movdqu %%xmm12, 192(%[out])\n\tmovdqu %%xmm13, 208(%[out])\n\tmovdqu %%xmm14, 224(%[out])\n\t"
        "movdqu %%xmm15, 240(%[out])\n\t"
        "fstpl (%[x87out])\n\tfstpl 8(%[x87out])\n\t"
        :
        : [in] "r"(xin), [out] "r"(xout), [pid] "r"(pid), [x87in] "r"(x87in), [x87out] "r"(x87out)
        : "rax", "rdi", "rsi", "rcx", "r11", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
          "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

static uint64_t yin[64], yout[64];

static void avx_around_kill(void)
{
    long pid = getpid();
    __asm__ volatile(
        "vmovdqu 0(%[in]), %%ymm0\n\tvmovdqu 32(%[in]), %%ymm1\n\tvmovdqu 224(%[in]), %%ymm7\n\t"
        "vmovdqu 480(%[in]), %%ymm15\n\t"
        "mov $62, %%eax\n\tmov %[pid], %%rdi\n\tmov $10, %%esi\n\tsyscall\n\t"
        "vmovdqu %%ymm0, 0(%[out])\n\tvmovdqu %%ymm1, 32(%[out])\n\tvmovdqu %%ymm7, 224(%[out])\n\t"
        "vmovdqu %%ymm15, 480(%[out])\n\tvzeroupper\n\t"
        :
        : [in] "r"(yin), [out] "r"(yout), [pid] "r"(pid)
        : "rax", "rdi", "rsi", "rcx", "r11", "memory", "xmm0", "xmm1", "xmm7", "xmm15");
}

static uint64_t zin[32], zout[32], kin[2], kout[2];

static void avx512_around_kill(void)
{
    long pid = getpid();
    __asm__ volatile(
        "vmovdqu64 0(%[in]), %%zmm16\n\tvmovdqu64 64(%[in]), %%zmm17\n\tvmovdqu64 128(%[in]), %%zmm31\n\t"
        "kmovq 0(%[kin]), %%k1\n\tkmovq 8(%[kin]), %%k7\n\t"
        "mov $62, %%eax\n\tmov %[pid], %%rdi\n\tmov $10, %%esi\n\tsyscall\n\t"
        "vmovdqu64 %%zmm16, 0(%[out])\n\tvmovdqu64 %%zmm17, 64(%[out])\n\tvmovdqu64 %%zmm31, 128(%[out])\n\t"
        "kmovq %%k1, 0(%[kout])\n\tkmovq %%k7, 8(%[kout])\n\tvzeroupper\n\t"
        :
        : [in] "r"(zin), [out] "r"(zout), [kin] "r"(kin), [kout] "r"(kout), [pid] "r"(pid)
        : "rax", "rdi", "rsi", "rcx", "r11", "memory");
}

static void test_fp_state(void)
{
    section("FP state across a handler");
    set_action(SIGUSR1, fp_clobber, 0);
    for (int i = 0; i < 32; i++)
        xin[i] = 0x0123456789abcdefull * (uint64_t)(i + 1) ^ (uint64_t)i << 56;
    memset(xout, 0, sizeof xout);
    unsigned mx = 0x7f80, mx_after = 0; /* round toward zero */
    unsigned short cw = 0x0f7f, cw_after = 0;
    __asm__ volatile("ldmxcsr %0" ::"m"(mx));
    __asm__ volatile("fldcw %0" ::"m"(cw));
    fp_handled = 0;
    sse_around_kill();
    __asm__ volatile("stmxcsr %0" : "=m"(mx_after));
    __asm__ volatile("fnstcw %0" : "=m"(cw_after));
    unsigned def_mx = 0x1f80;
    unsigned short def_cw = 0x037f;
    __asm__ volatile("ldmxcsr %0" ::"m"(def_mx));
    __asm__ volatile("fldcw %0" ::"m"(def_cw));
    printf("handler ran: %d\n", fp_handled);
    CHECK("xmm0-15 survive the handler", memcmp(xin, xout, sizeof xin) == 0);
    CHECK("x87 stack survives the handler", x87out[0] == x87in[0] && x87out[1] == x87in[1]);
    printf("MXCSR after: 0x%x, x87 control word after: 0x%x\n", mx_after, cw_after);
    printf("handler started with MXCSR 0x%x and x87 control word 0x%x\n", fp_entry_mxcsr, fp_entry_fcw);

    int avx_ok = 1, avx512_ok = 1;
    if (__builtin_cpu_supports("avx")) {
        for (int i = 0; i < 64; i++)
            yin[i] = 0xfedcba9876543210ull ^ (uint64_t)i * 0x1111;
        memset(yout, 0, sizeof yout);
        avx_around_kill();
        avx_ok = memcmp(yin, yout, 64) == 0 && memcmp(yin + 28, yout + 28, 32) == 0 &&
                 memcmp(yin + 60, yout + 60, 32) == 0;
    }
    CHECK("ymm registers (upper halves too) survive, where the CPU has AVX", avx_ok);
    if (__builtin_cpu_supports("avx512f")) {
        for (int i = 0; i < 32; i++)
            zin[i] = 0x5555aaaa3333ccccull + (uint64_t)i;
        kin[0] = 0x1234;
        kin[1] = 0xbeef;
        memset(zout, 0, sizeof zout);
        memset(kout, 0, sizeof kout);
        avx512_around_kill();
        avx512_ok = memcmp(zin, zout, 192) == 0 && (kout[0] & 0xffff) == 0x1234 && (kout[1] & 0xffff) == 0xbeef;
    }
    CHECK("zmm16-31 and opmask registers survive, where the CPU has AVX-512", avx512_ok);

    /* Plain C floating point across many deliveries. */
    volatile double acc = 0;
    for (int i = 1; i <= 50; i++) {
        double x = i * 0.5;
        raise(SIGUSR1);
        acc += x * x;
    }
    printf("sum of squares computed across 50 handlers: %.2f\n", acc);
    signal(SIGUSR1, SIG_DFL);
}

/* ------------------------------------------------------------------ sigaltstack */

static char *alt;
static const size_t ALT_SIZE = 65536;
static struct {
    int on_alt, flags, set_errno, nested_on_alt, nested_below;
    int uc_sp_is_alt, uc_size, uc_flags;
} alt_seen;
static char *outer_local;
static volatile int alt_nested_pending, alt_try_change;

static int in_alt(const void *p)
{
    return (const char *)p >= alt && (const char *)p < alt + ALT_SIZE;
}

static void alt_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)si;
    char local;
    ucontext_t *uc = ucv;
    if (sig == SIGUSR2) {   /* nested */
        alt_seen.nested_on_alt = in_alt(&local);
        alt_seen.nested_below = &local < outer_local;
        return;
    }
    outer_local = &local;
    alt_seen.on_alt = in_alt(&local);
    stack_t cur, other = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    sigaltstack(NULL, &cur);
    alt_seen.flags = cur.ss_flags;
    errno = 0;
    if (alt_try_change)
        alt_seen.set_errno = sigaltstack(&other, NULL) == 0 ? 0 : errno;
    alt_seen.uc_sp_is_alt = uc->uc_stack.ss_sp == alt;
    alt_seen.uc_size = (int)uc->uc_stack.ss_size;
    alt_seen.uc_flags = uc->uc_stack.ss_flags;
    if (alt_nested_pending) {
        alt_nested_pending = 0;
        raise(SIGUSR2);
    }
}

static void show_alt(const char *label)
{
    printf("%s: local on alt stack %d, ss_flags in handler 0x%x, sigaltstack change in handler %s, "
           "uc_stack sp is alt %d size %d flags 0x%x\n", label, alt_seen.on_alt, (unsigned)alt_seen.flags,
           alt_seen.set_errno ? ename(alt_seen.set_errno) : "ok", alt_seen.uc_sp_is_alt, alt_seen.uc_size,
           alt_seen.uc_flags);
}

static int overflow_depth;

static int recurse(int n)
{
    volatile char pad[512];
    pad[0] = (char)n;
    overflow_depth++;
    return recurse(n + 1) + pad[0];
}

static void overflow_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char local;
    _exit(sig == SIGSEGV && in_alt(&local) && si->si_code == SEGV_MAPERR ? 42 : 43);
}

static int overflow_child(void *arg)
{
    (void)arg;
    stack_t ss = {.ss_sp = alt, .ss_size = ALT_SIZE, .ss_flags = 0};
    sigaltstack(&ss, NULL);
    struct rlimit rl = {1 << 20, 1 << 20};
    setrlimit(RLIMIT_STACK, &rl);
    on(SIGSEGV, overflow_handler, SA_ONSTACK, NULL);
    return recurse(0);
}

static void test_sigaltstack(void)
{
    section("sigaltstack");
    alt = mmap(NULL, ALT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stack_t ss, old;
    memset(&old, 0, sizeof old);
    show("sigaltstack(NULL, &old) initially", sigaltstack(NULL, &old));
    printf("initial ss_flags %d (SS_DISABLE=%d) size %d\n", old.ss_flags, SS_DISABLE, (int)old.ss_size);
    ss.ss_sp = alt;
    ss.ss_size = 1024;
    ss.ss_flags = 0;
    show("sigaltstack size 1024", sigaltstack(&ss, NULL));
    ss.ss_size = ALT_SIZE;
    ss.ss_flags = 0x10;
    show("sigaltstack bad flags", sigaltstack(&ss, NULL));
    ss.ss_flags = SS_ONSTACK;
    show("sigaltstack SS_ONSTACK as a flag (accepted, means 0)", sigaltstack(&ss, NULL));
    ss.ss_flags = 0;
    show("sigaltstack(64 KiB)", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    printf("now: flags %d, sp is ours %d, size %d\n", old.ss_flags, old.ss_sp == alt, (int)old.ss_size);
    show("raw sigaltstack bad pointer", syscall(SYS_sigaltstack, (void *)8, NULL));

    on(SIGUSR1, alt_handler, SA_ONSTACK, NULL);
    on(SIGUSR2, alt_handler, SA_ONSTACK, NULL);
    memset(&alt_seen, 0, sizeof alt_seen);
    alt_nested_pending = 1;
    alt_try_change = 1;
    raise(SIGUSR1);
    alt_try_change = 0;
    show_alt("SA_ONSTACK");
    printf("nested SA_ONSTACK signal: on alt stack %d, below the outer frame %d\n", alt_seen.nested_on_alt,
           alt_seen.nested_below);
    sigaltstack(NULL, &old);
    printf("after return: flags %d\n", old.ss_flags);

    on(SIGUSR1, alt_handler, 0, NULL);
    memset(&alt_seen, 0, sizeof alt_seen);
    raise(SIGUSR1);
    show_alt("without SA_ONSTACK");

    ss.ss_flags = (int)(1u << 31); /* SS_AUTODISARM */
    show("sigaltstack SS_AUTODISARM", sigaltstack(&ss, NULL));
    on(SIGUSR1, alt_handler, SA_ONSTACK, NULL);
    memset(&alt_seen, 0, sizeof alt_seen);
    raise(SIGUSR1);
    show_alt("SS_AUTODISARM");
    sigaltstack(NULL, &old);
    printf("after return: flags 0x%x, sp is ours %d\n", (unsigned)old.ss_flags, old.ss_sp == alt);

    ss.ss_flags = SS_DISABLE;
    show("sigaltstack SS_DISABLE", sigaltstack(&ss, NULL));
    sigaltstack(NULL, &old);
    printf("disabled: flags %d\n", old.ss_flags);
    memset(&alt_seen, 0, sizeof alt_seen);
    raise(SIGUSR1);
    show_alt("SA_ONSTACK with the stack disabled");
    signal(SIGUSR1, SIG_DFL);
    signal(SIGUSR2, SIG_DFL);

    pid_t pid = spawn(overflow_child, NULL);
    show_status("stack overflow caught on the alternate stack (exit 42)", reap(pid));
}

/* ------------------------------------------------------------------ EINTR and SA_RESTART */

static int alarm_pipe_w = -1;
static volatile int alarms;

static void alarm_writes(int sig)
{
    (void)sig;
    alarms++;
    if (alarm_pipe_w >= 0)
        write(alarm_pipe_w, "x", 1);
}

static void test_restart(void)
{
    section("EINTR and SA_RESTART");
    int p[2];
    char buf[8];
    make_pipe(p);
    alarm_pipe_w = p[1];

    set_action(SIGALRM, alarm_writes, SA_RESTART);
    alarms = 0;
    one_shot_timer_ms(50);
    ssize_t n = read(p[0], buf, sizeof buf);
    printf("read on an empty pipe, SA_RESTART handler writes a byte: returned %zd (%s), handlers %d\n", n,
           n < 0 ? ename(errno) : "data", alarms);

    set_action(SIGALRM, alarm_writes, 0);
    alarms = 0;
    one_shot_timer_ms(50);
    n = read(p[0], buf, sizeof buf);
    printf("same without SA_RESTART: returned %zd (%s), handlers %d\n", n, n < 0 ? ename(errno) : "data", alarms);
    show("the handler's byte is still there", read(p[0], buf, sizeof buf));

    set_action(SIGALRM, alarm_writes, SA_RESTART);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    one_shot_timer_ms(50);
    show("poll with an SA_RESTART handler (never restarted)", poll(&pfd, 1, -1));
    read(p[0], buf, sizeof buf);

    alarm_pipe_w = -1;
    struct timespec req = {2, 0}, rem = {0, 0};
    alarms = 0;
    one_shot_timer_ms(50);
    show("nanosleep 2s, SA_RESTART handler at 50ms", nanosleep(&req, &rem));
    CHECK("remaining time reported (> 1s)", rem.tv_sec >= 1);
    one_shot_timer_ms(50);
    show("clock_nanosleep 2s (returns the error)", clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL));

    /* wait4: restarted with SA_RESTART, EINTR without; the handler releases the child. */
    int go[2];
    make_pipe(go);
    for (int restart = 1; restart >= 0; restart--) {
        pid_t pid = fork_or_die();
        if (pid == 0) {
            get_byte(go[0]);
            _exit(3);
        }
        alarm_pipe_w = go[1];
        set_action(SIGALRM, alarm_writes, restart ? SA_RESTART : 0);
        one_shot_timer_ms(50);
        int st = 0;
        pid_t r = waitpid(pid, &st, 0);
        printf("waitpid across the handler (%s): %s\n", restart ? "SA_RESTART" : "no SA_RESTART",
               r == pid ? "returned the child" : ename(errno));
        if (r != pid)
            st = reap(pid);
        show_status("child", st);
    }
    alarm_pipe_w = -1;
    signal(SIGALRM, SIG_DFL);
    close(go[0]);
    close(go[1]);
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------------------------ waiting for signals */

static void test_waiting(void)
{
    section("sigsuspend, sigtimedwait, pause");
    reset_seen();
    on(SIGUSR1, record, 0, NULL);
    block(SIGUSR1);
    raise(SIGUSR1);
    sigset_t empty, m;
    sigemptyset(&empty);
    show("sigsuspend({}) with USR1 pending", sigsuspend(&empty));
    printf("handler ran: %d, USR1 blocked again after: %d\n", nseen, is_blocked(SIGUSR1));

    set_action(SIGALRM, alarm_writes, 0);
    block(SIGALRM);
    alarms = 0;
    one_shot_timer_ms(30);
    show("sigsuspend({}) until a timer's SIGALRM", sigsuspend(&empty));
    printf("alarm handler ran: %d, ALRM blocked again: %d\n", alarms, is_blocked(SIGALRM));
    show("raw rt_sigsuspend sigsetsize 4", syscall(SYS_rt_sigsuspend, &empty, 4));
    unblock(SIGALRM);

    siginfo_t si;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR2);
    block(SIGUSR2);
    struct timespec ten_ms = {0, 10000000}, zero = {0, 0}, bad = {0, 2000000000};
    show("sigtimedwait(USR2, 10ms) nothing pending", sigtimedwait(&m, &si, &ten_ms));
    show("sigtimedwait(USR2, 0) nothing pending", sigtimedwait(&m, &si, &zero));
    show("sigtimedwait bad timeout", sigtimedwait(&m, &si, &bad));
    sigqueue(getpid(), SIGUSR2, (union sigval){.sival_int = 77});
    memset(&si, 0, sizeof si);
    int r = sigtimedwait(&m, &si, &ten_ms);
    printf("sigtimedwait with USR2 queued: %s, %s value %d pid-is-us %s\n", r > 0 ? signame(r) : ename(errno),
           codename(si.si_signo, si.si_code), si.si_value.sival_int, si.si_pid == getpid() ? "yes" : "no");
    printf("USR2 pending after: %d\n", is_pending(SIGUSR2));
    int rt = SIGRTMIN + 4;
    block(rt);
    sigqueue(getpid(), rt, (union sigval){.sival_int = 1});
    sigqueue(getpid(), rt, (union sigval){.sival_int = 2});
    sigemptyset(&m);
    sigaddset(&m, rt);
    for (int i = 0; i < 3; i++) {
        memset(&si, 0, sizeof si);
        r = sigtimedwait(&m, &si, &zero);
        printf("sigtimedwait RTMIN+4 #%d: %s value %d\n", i + 1, r > 0 ? signame(r) : ename(errno),
               si.si_value.sival_int);
    }
    unblock(rt);

    block(SIGALRM);
    sigemptyset(&m);
    sigaddset(&m, SIGALRM);
    one_shot_timer_ms(20);
    struct timespec five = {5, 0};
    memset(&si, 0, sizeof si);
    r = sigtimedwait(&m, &si, &five);
    printf("sigtimedwait for an itimer's SIGALRM: %s %s\n", r > 0 ? signame(r) : ename(errno),
           codename(si.si_signo, si.si_code));
    memset(&si, 0, sizeof si);
    one_shot_timer_ms(20);
    r = sigwaitinfo(&m, &si);
    printf("sigwaitinfo: %s\n", r > 0 ? signame(r) : ename(errno));
    unblock(SIGALRM);

    alarms = 0;
    one_shot_timer_ms(20);
    show("pause() until SIGALRM", pause());
    printf("alarm handler ran: %d\n", alarms);
    signal(SIGALRM, SIG_DFL);
    unblock(SIGUSR1);
    unblock(SIGUSR2);
    signal(SIGUSR1, SIG_DFL);
}

/* ------------------------------------------------------------------ synchronous faults */

static sigjmp_buf fault_jb;
static struct {
    int signo, code, trapno;
    void *addr;
    greg_t rip;
} fault;
static int fault_resume; /* set: return from the handler (after skipping skip_bytes) */
static int skip_bytes;

static void fault_handler(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    fault.signo = sig;
    fault.code = si->si_code;
    fault.addr = si->si_addr;
    fault.rip = uc->uc_mcontext.gregs[REG_RIP];
    fault.trapno = (int)uc->uc_mcontext.gregs[REG_TRAPNO];
    if (fault_resume) {
        uc->uc_mcontext.gregs[REG_RIP] += skip_bytes;
        fault_resume = skip_bytes = 0;
        return;
    }
    siglongjmp(fault_jb, 1);
}

static void show_fault(const char *label, const void *want_addr, int addr_is_rip)
{
    int addr_ok = addr_is_rip ? fault.addr == (void *)fault.rip : fault.addr == want_addr;
    printf("%s: %s %s addr-%s %s trapno %d\n", label, signame(fault.signo), codename(fault.signo, fault.code),
           addr_is_rip ? "is-rip" : "matches", addr_ok ? "yes" : "no", fault.trapno);
}

static int fault_in_child(void *arg)
{
    int mode = (int)(long)arg;
    if (mode == 1) {          /* SIGSEGV blocked: the fault still kills */
        block(SIGSEGV);
    } else if (mode == 2) {   /* SIGSEGV ignored: the fault still kills */
        signal(SIGSEGV, SIG_IGN);
    }
    *(volatile int *)0 = 1;
    return 0;
}

static void test_faults(void)
{
    section("synchronous faults");
    static const int none[] = {0};
    int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, 0};
    for (int *s = sigs; *s; s++)
        on(*s, fault_handler, 0, none);
    long pg = sysconf(_SC_PAGESIZE);

    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(fault_jb, 1) == 0)
        *(volatile int *)0 = 1;
    show_fault("write to NULL", NULL, 0);

    char *gone = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, pg);
    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(fault_jb, 1) == 0)
        (void)*(volatile char *)(gone + 8);
    show_fault("read of an unmapped page", gone + 8, 0);

    char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(fault_jb, 1) == 0)
        *(volatile char *)(ro + 16) = 1;
    show_fault("write to a read-only page", ro + 16, 0);
    mprotect(ro, pg, PROT_NONE);
    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(fault_jb, 1) == 0)
        (void)*(volatile char *)(ro + 24);
    show_fault("read of a PROT_NONE page", ro + 24, 0);

    char *nx = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    nx[0] = (char)0xc3;   /* ret */
    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(fault_jb, 1) == 0)
        ((void (*)(void))nx)();
    show_fault("call into a non-executable page", nx, 0);
    printf("  rip is the page: %s\n", fault.rip == (greg_t)nx ? "yes" : "no");

    /* SIGBUS: a shared file mapping beyond the end of the file. */
    int fd = open("bus.dat", O_CREAT | O_RDWR | O_TRUNC, 0644);
    write(fd, "short file", 10);
    char *fm = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(fault_jb, 1) == 0)
        (void)*(volatile char *)(fm + pg + 4);
    show_fault("read past the end of a mapped file", fm + pg + 4, 0);
    printf("  within the file's last page reads zero: %d\n", fm[100]);
    munmap(fm, 2 * pg);
    close(fd);
    unlink("bus.dat");

    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(fault_jb, 1) == 0) {
        int q = 7, zero = 0;
        __asm__ volatile("cltd; idivl %1" : "+a"(q) : "r"(zero) : "edx");
    }
    show_fault("integer divide by zero", NULL, 1);

    memset(&fault, 0, sizeof fault);
    fault_resume = 1;
    skip_bytes = 2;
    __asm__ volatile("ud2" ::: "memory");
    show_fault("ud2 (handler advances rip by 2 and returns)", NULL, 1);
    printf("  execution continued after ud2: yes\n");

    memset(&fault, 0, sizeof fault);
    greg_t after_int3;
    fault_resume = 1;
    __asm__ volatile("lea 1f(%%rip), %0\n\tint3\n1:" : "=r"(after_int3) :: "memory");
    printf("int3: %s %s rip-after-int3 %s addr-zero %s trapno %d\n", signame(fault.signo),
           codename(fault.signo, fault.code), fault.rip == after_int3 ? "yes" : "no",
           fault.addr == NULL ? "yes" : "no", fault.trapno);

    memset(&fault, 0, sizeof fault);
    if (sigsetjmp(fault_jb, 1) == 0)
        raise(SIGSEGV);
    printf("raise(SIGSEGV): %s %s\n", signame(fault.signo), codename(fault.signo, fault.code));

    for (int *s = sigs; *s; s++)
        signal(*s, SIG_DFL);
    struct rlimit none_core = {0, 0};
    setrlimit(RLIMIT_CORE, &none_core);
    show_status("child: NULL write with SIGSEGV blocked", reap(spawn(fault_in_child, (void *)1L)));
    show_status("child: NULL write with SIGSEGV ignored", reap(spawn(fault_in_child, (void *)2L)));
    munmap(ro, pg);
    munmap(nx, pg);
}

/* ------------------------------------------------------------------ children */

static int child_abort(void *arg)
{
    int mode = (int)(long)arg;
    if (mode == 1)
        signal(SIGABRT, dummy);   /* a returning handler does not stop abort() */
    if (mode == 2)
        block(SIGABRT);
    abort();
}

static int child_sigpipe(void *arg)
{
    int fd = (int)(long)arg;
    write(fd, "x", 1);
    return 0;
}

static int child_waits(void *arg)
{
    int fd = (int)(long)arg;
    get_byte(fd);
    return 5;
}

static int cont_pipe = -1;

static void cont_handler(int sig)
{
    put_byte(cont_pipe, sig == SIGCONT ? 'c' : 'u');
}

static int child_with_cont_handler(void *arg)
{
    int *fds = arg;  /* [0] read end to wait on, [1] write end for reports */
    cont_pipe = fds[1];
    set_action(SIGCONT, cont_handler, SA_RESTART);
    set_action(SIGUSR1, cont_handler, SA_RESTART);
    put_byte(cont_pipe, 'r');
    get_byte(fds[0]);
    return 0;
}

static int child_sleeps_through_stop(void *arg)
{
    int ready = (int)(long)arg;
    put_byte(ready, 'r');
    struct timespec t = {0, 200000000};
    return nanosleep(&t, NULL) == 0 ? 0 : 1;
}

static void show_chld(const char *label, const siginfo_t *si, pid_t pid)
{
    printf("%s: %s %s status %s pid-matches %s\n", label, signame(si->si_signo),
           codename(si->si_signo, si->si_code), chld_status(si), si->si_pid == pid ? "yes" : "no");
}

static void test_children(void)
{
    section("signals and children");
    show_status("abort()", reap(spawn(child_abort, (void *)0L)));
    show_status("abort() with a returning SIGABRT handler", reap(spawn(child_abort, (void *)1L)));
    show_status("abort() with SIGABRT blocked", reap(spawn(child_abort, (void *)2L)));

    /* SIGCHLD carries the child's fate. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    block(SIGCHLD);
    siginfo_t si;
    int go[2];
    make_pipe(go);
    pid_t pid = spawn(child_waits, (void *)(long)go[0]);
    put_byte(go[1], 'g');
    memset(&si, 0, sizeof si);
    sigwaitinfo(&chld, &si);
    show_chld("SIGCHLD for an exit", &si, pid);
    reap(pid);
    pid = spawn(child_waits, (void *)(long)go[0]);
    kill(pid, SIGSTOP);
    memset(&si, 0, sizeof si);
    sigwaitinfo(&chld, &si);
    show_chld("SIGCHLD for a stop", &si, pid);
    kill(pid, SIGCONT);
    memset(&si, 0, sizeof si);
    sigwaitinfo(&chld, &si);
    show_chld("SIGCHLD for a continue", &si, pid);
    kill(pid, SIGKILL);
    memset(&si, 0, sizeof si);
    sigwaitinfo(&chld, &si);
    show_chld("SIGCHLD for a kill", &si, pid);
    reap(pid);

    /* SA_NOCLDSTOP: no SIGCHLD for stop or continue. */
    set_action(SIGCHLD, dummy, SA_NOCLDSTOP);
    pid = spawn(child_waits, (void *)(long)go[0]);
    kill(pid, SIGSTOP);
    reap_opts(pid, WUNTRACED);
    printf("SA_NOCLDSTOP: SIGCHLD pending after a stop: %d\n", is_pending(SIGCHLD));
    kill(pid, SIGCONT);
    reap_opts(pid, WCONTINUED);
    printf("SA_NOCLDSTOP: SIGCHLD pending after a continue: %d\n", is_pending(SIGCHLD));
    put_byte(go[1], 'g');
    reap(pid);
    printf("SA_NOCLDSTOP: SIGCHLD pending after the exit: %d\n", is_pending(SIGCHLD));
    sigtimedwait(&chld, &si, &(struct timespec){0, 0});
    unblock(SIGCHLD);

    /* SIGCHLD ignored: children are reaped by the kernel, wait ends with ECHILD. */
    signal(SIGCHLD, SIG_IGN);
    pid = spawn(child_waits, (void *)(long)go[0]);
    put_byte(go[1], 'g');
    int st;
    show("SIG_IGN SIGCHLD: waitpid(-1) once the child exits", waitpid(-1, &st, 0));
    set_action(SIGCHLD, dummy, SA_NOCLDWAIT);
    block(SIGCHLD);
    pid = spawn(child_waits, (void *)(long)go[0]);
    put_byte(go[1], 'g');
    show("SA_NOCLDWAIT: waitpid(-1) once the child exits", waitpid(-1, &st, 0));
    printf("SA_NOCLDWAIT: SIGCHLD still sent: %d\n", is_pending(SIGCHLD));
    signal(SIGCHLD, SIG_DFL);
    unblock(SIGCHLD);

    /* SIGPIPE */
    int p[2];
    make_pipe(p);
    close(p[0]);
    show_status("child writing to a pipe without readers", reap(spawn(child_sigpipe, (void *)(long)p[1])));
    signal(SIGPIPE, SIG_IGN);
    show("write with SIGPIPE ignored", write(p[1], "x", 1));
    reset_seen();
    on(SIGPIPE, record, 0, NULL);
    show("write with a SIGPIPE handler", write(p[1], "x", 1));
    show_seen("SIGPIPE handler");
    signal(SIGPIPE, SIG_DFL);
    close(p[1]);

    /* Stop and continue: a signal sent to a stopped child waits; SIGCONT's handler runs. */
    int fds[2], rep[2];
    make_pipe(fds);
    make_pipe(rep);
    int args[2] = {fds[0], rep[1]};
    pid = spawn(child_with_cont_handler, args);
    get_byte(rep[0]);
    kill(pid, SIGSTOP);
    show_status("child", reap_opts(pid, WUNTRACED));
    kill(pid, SIGUSR1);
    struct pollfd pfd = {.fd = rep[0], .events = POLLIN};
    show("poll for a report while it is stopped", poll(&pfd, 1, 0));
    kill(pid, SIGCONT);
    char got[3] = {get_byte(rep[0]), get_byte(rep[0]), 0};
    if (got[0] > got[1]) {
        char t = got[0];
        got[0] = got[1];
        got[1] = t;
    }
    printf("after SIGCONT the child's handlers ran for: %s (c=SIGCONT, u=SIGUSR1)\n", got);
    show_status("child", reap_opts(pid, WCONTINUED));
    put_byte(fds[1], 'g');
    show_status("child", reap(pid));

    pid = spawn(child_sleeps_through_stop, (void *)(long)rep[1]);
    get_byte(rep[0]);
    kill(pid, SIGSTOP);
    reap_opts(pid, WUNTRACED);
    kill(pid, SIGCONT);
    show_status("nanosleep restarted across stop/continue (exit 0)", reap(pid));

    /* Pending signals are not inherited; mask and handlers are. */
    reset_seen();
    on(SIGUSR1, record, 0, NULL);
    block(SIGUSR1);
    raise(SIGUSR1);
    pid = fork_or_die();
    if (pid == 0) {
        struct sigaction sa;
        sigaction(SIGUSR1, NULL, &sa);
        int code = (is_pending(SIGUSR1) ? 1 : 0) | (is_blocked(SIGUSR1) ? 2 : 0) |
                   (sa.sa_sigaction == record ? 4 : 0);
        _exit(code);
    }
    show_status("fork child (bits: 1 pending, 2 blocked, 4 same handler)", reap(pid));
    printf("still pending here: %d\n", is_pending(SIGUSR1));
    unblock(SIGUSR1);
    printf("delivered here on unblock: %d\n", nseen);
    signal(SIGUSR1, SIG_DFL);
    for (int i = 0; i < 2; i++) {
        close(go[i]);
        close(fds[i]);
        close(rep[i]);
    }
}

/* ------------------------------------------------------------------ timers */

static void test_timers(void)
{
    section("itimers and alarm");
    struct itimerval it = {{0, 0}, {10, 0}}, old;
    show("setitimer(REAL, 10s)", setitimer(ITIMER_REAL, &it, NULL));
    getitimer(ITIMER_REAL, &old);
    CHECK("getitimer: 9s < remaining <= 10s", old.it_value.tv_sec == 9 || (old.it_value.tv_sec == 10 && old.it_value.tv_usec == 0));
    printf("interval %ld.%06ld\n", (long)old.it_interval.tv_sec, (long)old.it_interval.tv_usec);
    memset(&it, 0, sizeof it);
    memset(&old, 0, sizeof old);
    show("setitimer(REAL, 0) disarms", setitimer(ITIMER_REAL, &it, &old));
    CHECK("old value returned", old.it_value.tv_sec == 9 || old.it_value.tv_sec == 10);
    getitimer(ITIMER_REAL, &old);
    printf("after disarm: %ld.%06ld\n", (long)old.it_value.tv_sec, (long)old.it_value.tv_usec);
    show("alarm(10)", alarm(10));
    show("alarm(0) returns the rounded remainder", alarm(0));
    show("alarm(0) again", alarm(0));
    getitimer(ITIMER_VIRTUAL, &old);
    printf("ITIMER_VIRTUAL unarmed: %ld.%06ld\n", (long)old.it_value.tv_sec, (long)old.it_value.tv_usec);
    show("getitimer(which 5)", getitimer(5, &old));
    it.it_value.tv_usec = 1000000;
    show("setitimer usec 1000000", setitimer(ITIMER_REAL, &it, NULL));
    it.it_value.tv_usec = -1;
    show("setitimer usec -1", setitimer(ITIMER_REAL, &it, NULL));

    /* ITIMER_PROF/VIRTUAL fire after CPU time. */
    block(SIGPROF);
    struct itimerval prof = {{0, 0}, {0, 20000}};
    show("setitimer(PROF, 20ms CPU)", setitimer(ITIMER_PROF, &prof, NULL));
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGPROF);
    volatile unsigned long spin = 0;
    while (!is_pending(SIGPROF))   /* ~1 ms of pure user time between checks */
        for (int i = 0; i < 1000000; i++)
            spin++;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = sigwaitinfo(&m, &si);
    printf("ITIMER_PROF after CPU time: %s %s\n", r > 0 ? signame(r) : ename(errno), codename(si.si_signo, si.si_code));
    unblock(SIGPROF);

    section("POSIX timers");
    int sig = SIGRTMIN + 2;
    block(sig);
    sigemptyset(&m);
    sigaddset(&m, sig);
    timer_t t;
    struct sigevent sev = {0};
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = sig;
    sev.sigev_value.sival_int = 99;
    show("timer_create(MONOTONIC, SIGEV_SIGNAL)", timer_create(CLOCK_MONOTONIC, &sev, &t));
    struct itimerspec its = {{0, 0}, {0, 20000000}}, cur;
    show("timer_settime 20ms", timer_settime(t, 0, &its, NULL));
    timer_gettime(t, &cur);
    CHECK("timer_gettime: 0 < remaining <= 20ms",
          cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 && cur.it_value.tv_nsec <= 20000000);
    memset(&si, 0, sizeof si);
    r = sigwaitinfo(&m, &si);
    printf("timer signal: %s %s value %d overrun %d timerid-matches %s\n", r > 0 ? signame(r) : ename(errno),
           codename(si.si_signo, si.si_code), si.si_value.sival_int, si.si_overrun,
           si.si_timerid == (int)(intptr_t)t ? "yes" : "no");
    timer_gettime(t, &cur);
    printf("after expiry: %ld.%09ld\n", (long)cur.it_value.tv_sec, cur.it_value.tv_nsec);
    show("timer_getoverrun", timer_getoverrun(t));

    /* periodic: three expirations, then disarm */
    its.it_interval.tv_nsec = 10000000;
    its.it_value.tv_nsec = 10000000;
    timer_settime(t, 0, &its, NULL);
    int got = 0;
    for (int i = 0; i < 3; i++)
        got += sigwaitinfo(&m, &si) == sig;
    printf("periodic timer: %d signals received\n", got);
    memset(&its, 0, sizeof its);
    show("timer_settime 0 (disarm) with old value", timer_settime(t, 0, &its, &cur));
    CHECK("old interval was 10ms", cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 10000000);
    sigtimedwait(&m, &si, &(struct timespec){0, 0});

    /* absolute time in the past fires at once */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    its.it_value.tv_sec = now.tv_sec > 1 ? now.tv_sec - 1 : 0;
    its.it_value.tv_nsec = 1;
    show("timer_settime TIMER_ABSTIME in the past", timer_settime(t, TIMER_ABSTIME, &its, NULL));
    r = sigtimedwait(&m, &si, &(struct timespec){5, 0});
    printf("fired: %s\n", r > 0 ? signame(r) : ename(errno));
    its.it_value.tv_nsec = 1000000000;
    show("timer_settime bad nsec", timer_settime(t, 0, &its, NULL));
    show("timer_delete", timer_delete(t));
    show("timer_delete again", timer_delete(t));
    show("timer_gettime on a deleted timer", timer_gettime(t, &cur));

    /* SIGEV_THREAD_ID */
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    sev.sigev_value.sival_int = 100;
    show("timer_create(SIGEV_THREAD_ID self)", timer_create(CLOCK_REALTIME, &sev, &t));
    its = (struct itimerspec){{0, 0}, {0, 10000000}};
    timer_settime(t, 0, &its, NULL);
    memset(&si, 0, sizeof si);
    r = sigwaitinfo(&m, &si);
    printf("thread-directed timer signal: %s %s value %d\n", r > 0 ? signame(r) : ename(errno),
           codename(si.si_signo, si.si_code), si.si_value.sival_int);
    timer_delete(t);
    sev._sigev_un._tid = 0x7ffffff0;
    show("timer_create(SIGEV_THREAD_ID, no such thread)", timer_create(CLOCK_REALTIME, &sev, &t));

    /* SIGEV_NONE: armed, never signals, still readable */
    sev.sigev_notify = SIGEV_NONE;
    show("timer_create(SIGEV_NONE)", timer_create(CLOCK_MONOTONIC, &sev, &t));
    its = (struct itimerspec){{0, 0}, {10, 0}};
    timer_settime(t, 0, &its, NULL);
    timer_gettime(t, &cur);
    CHECK("SIGEV_NONE remaining in (9s, 10s]", cur.it_value.tv_sec == 9 || (cur.it_value.tv_sec == 10 && cur.it_value.tv_nsec == 0));
    timer_delete(t);

    sev.sigev_notify = SIGEV_SIGNAL;
    show("timer_create(bad clock)", timer_create(12345, &sev, &t));
    sev.sigev_signo = 0;
    show("timer_create(signal 0)", timer_create(CLOCK_MONOTONIC, &sev, &t));
    sev.sigev_signo = 65;
    show("timer_create(signal 65)", timer_create(CLOCK_MONOTONIC, &sev, &t));
    sev.sigev_signo = sig;
    sev.sigev_notify = 77;
    show("timer_create(bad sigev_notify)", timer_create(CLOCK_MONOTONIC, &sev, &t));
    /* NULL sigevent (raw: glibc passes its own): SIGALRM with the timer id as value */
    block(SIGALRM);
    int kid = -1;
    show("raw timer_create(NULL sigevent)", syscall(SYS_timer_create, CLOCK_MONOTONIC, NULL, &kid));
    its = (struct itimerspec){{0, 0}, {0, 5000000}};
    syscall(SYS_timer_settime, kid, 0, &its, NULL);
    sigemptyset(&m);
    sigaddset(&m, SIGALRM);
    memset(&si, 0, sizeof si);
    r = sigwaitinfo(&m, &si);
    printf("default timer signal: %s %s value-is-timer-id %s timerid-matches %s\n", r > 0 ? signame(r) : ename(errno),
           codename(si.si_signo, si.si_code), si.si_value.sival_int == kid ? "yes" : "no",
           si.si_timerid == kid ? "yes" : "no");
    show("raw timer_delete", syscall(SYS_timer_delete, kid));
    unblock(SIGALRM);
    unblock(sig);
}

int main(void)
{
    test_init();
    test_sigaction();
    test_siginfo();
    test_handler_masks();
    test_mask_and_pending();
    test_order();
    test_fp_state();
    test_sigaltstack();
    test_restart();
    test_waiting();
    test_faults();
    test_children();
    test_timers();
    show_all_reaped();
    return 0;
}
