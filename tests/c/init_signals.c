/*
 * Signals to the init (pid 1) of a pid namespace, from inside that namespace.
 *
 * Why: Linux protects a namespace's init (SIGNAL_UNKILLABLE): a signal it sends itself, or
 * that another process of the namespace sends it, is dropped at generation when its action
 * is the default one, SIGKILL and SIGSTOP included (kernel/signal.c sig_task_ignored);
 * synchronous faults are forced and do kill it (force_sig_info_to_task).  A container's
 * first process is such an init, so `kill -9 $$` in it must do nothing.
 *
 * Must run as pid 1: natively under `unshare --pid --fork`, in the sandbox as its first
 * process (tests/e2e/test_init_signals.py).  argv[1] picks a scenario; the default one
 * survives everything and exits 0, the others end the way Linux ends them.
 */
#include "common.h"
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

static volatile sig_atomic_t hits[65];

static void on_signal(int sig) { hits[sig]++; }

static void set_action(int sig, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, NULL);
}

static void block(int sig, int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(how, &set, NULL);
}

/* The pending set (thread's and process's), as signal numbers. */
static void show_pending(const char *label)
{
    sigset_t set;
    sigpending(&set);
    printf("%s: pending [", label);
    for (int s = 1; s < 65; s++)
        if (sigismember(&set, s) == 1)
            printf(" %d", s);
    printf(" ]\n");
}

/* Send one signal to ourselves with `how` while its action is the default one. */
static void self_default(const char *how, int sig)
{
    char label[64];
    long r;
    set_action(sig, SIG_DFL);
    if (!strcmp(how, "kill"))
        r = kill(getpid(), sig);
    else if (!strcmp(how, "raise"))
        r = raise(sig);
    else if (!strcmp(how, "tgkill"))
        r = syscall(SYS_tgkill, getpid(), gettid(), sig);
    else if (!strcmp(how, "tkill"))
        r = syscall(SYS_tkill, gettid(), sig);
    else if (!strcmp(how, "sigqueue"))
        r = sigqueue(getpid(), sig, (union sigval){ .sival_int = 7 });
    else if (!strcmp(how, "pidfd")) {
        int fd = syscall(SYS_pidfd_open, getpid(), 0);
        r = syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
        close(fd);
    } else if (!strcmp(how, "pgrp0"))
        r = kill(0, sig);
    else /* "pgrp" */
        r = kill(-getpgrp(), sig);
    snprintf(label, sizeof label, "%s %d default", how, sig);
    show(label, r);
    show_pending(label);
}

static void defaults(void)
{
    const int sigs[] = { SIGKILL, SIGTERM, SIGSTOP, SIGUSR1, SIGINT, SIGHUP, SIGQUIT,
                                SIGTSTP, SIGTTIN, SIGALRM, SIGSEGV, SIGABRT, SIGPIPE,
                                SIGRTMIN + 2 };
    static const char *hows[] = { "kill", "raise", "tgkill", "tkill", "sigqueue", "pidfd",
                                  "pgrp0" };
    for (unsigned h = 0; h < sizeof hows / sizeof *hows; h++)
        for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++)
            self_default(hows[h], sigs[i]);
    show("kill -1 SIGKILL (init is never a target)", kill(-1, SIGKILL));
}

static void handled_and_ignored(void)
{
    set_action(SIGTERM, on_signal);
    show("kill SIGTERM with a handler", kill(getpid(), SIGTERM));
    printf("handler ran: %d\n", hits[SIGTERM]);
    set_action(SIGUSR1, on_signal);
    show("tgkill SIGUSR1 with a handler", syscall(SYS_tgkill, getpid(), gettid(), SIGUSR1));
    printf("handler ran: %d\n", hits[SIGUSR1]);

    set_action(SIGTERM, SIG_IGN);
    show("kill SIGTERM ignored", kill(getpid(), SIGTERM));
    show_pending("ignored");
    set_action(SIGTERM, SIG_DFL);
}

/* Blocked signals are never ignored at generation; delivery then drops a default one. */
static void blocked(void)
{
    set_action(SIGTERM, SIG_DFL);
    block(SIGTERM, SIG_BLOCK);
    show("kill SIGTERM blocked", kill(getpid(), SIGTERM));
    show_pending("blocked SIGTERM");
    block(SIGTERM, SIG_UNBLOCK);
    show_pending("unblocked SIGTERM, default action");

    hits[SIGUSR1] = 0;
    set_action(SIGUSR1, SIG_DFL);
    block(SIGUSR1, SIG_BLOCK);
    show("kill SIGUSR1 blocked", kill(getpid(), SIGUSR1));
    show_pending("blocked SIGUSR1");
    set_action(SIGUSR1, on_signal);
    block(SIGUSR1, SIG_UNBLOCK);
    printf("handler installed while pending ran: %d\n", hits[SIGUSR1]);

    set_action(SIGUSR2, SIG_DFL);
    block(SIGUSR2, SIG_BLOCK);
    kill(getpid(), SIGUSR2);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    struct timespec zero = { 0, 0 };
    show("sigtimedwait takes a blocked default SIGUSR2", sigtimedwait(&set, NULL, &zero));
    block(SIGUSR2, SIG_UNBLOCK);
}

/* Another process of the namespace signalling init. */
static void from_child(int sig, int with_handler)
{
    char label[80];
    hits[sig] = 0;
    set_action(sig, with_handler ? on_signal : SIG_DFL);
    pid_t child = fork();
    if (child == 0) {
        int r = kill(getppid(), sig);
        _exit(r == 0 ? 0 : 1);
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    snprintf(label, sizeof label, "child sends %d (%s)", sig, with_handler ? "handler" : "default");
    printf("%s: child status %d, handler ran %d\n", label, status, hits[sig]);
    show_pending(label);
    set_action(sig, SIG_DFL);
}

static void *thread_kill(void *arg)
{
    (void)arg;
    return (void *)syscall(SYS_tgkill, getpid(), getpid(), SIGKILL);
}

static void from_thread(void)
{
    pthread_t t;
    void *r;
    pthread_create(&t, NULL, thread_kill, NULL);
    pthread_join(t, &r);
    printf("thread tgkills the main thread with SIGKILL: %ld\n", (long)r);
}

static void broken_pipe(void)
{
    int p[2];
    set_action(SIGPIPE, SIG_DFL);
    pipe(p);
    close(p[0]);
    show("write to a broken pipe (SIGPIPE default)", write(p[1], "x", 1));
    show_pending("after the broken pipe");
    close(p[1]);
}

static void itimer(void)
{
    set_action(SIGALRM, SIG_DFL);
    struct itimerval it = { { 0, 0 }, { 0, 10000 } };
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec ts = { 0, 200 * 1000 * 1000 };
    show("nanosleep past an itimer's SIGALRM", nanosleep(&ts, NULL));
}

static void survive(void)
{
    setpgid(0, 0); /* fails (EPERM) where init leads its session already, as in the sandbox */
    printf("pgrp is pid: %d\n", getpgrp() == getpid());
    defaults();
    handled_and_ignored();
    blocked();
    from_child(SIGKILL, 0);
    from_child(SIGTERM, 0);
    from_child(SIGSTOP, 0);
    from_child(SIGCONT, 0);
    from_child(SIGTERM, 1);
    from_thread();
    broken_pipe();
    itimer();
    kill(getpid(), SIGKILL);
    printf("survived\n");
}

/* Init leads a session whose terminal hangs up: SIGHUP (and SIGCONT) from the kernel. */
static void hangup(int with_handler)
{
    setsid(); /* EPERM where init leads its session already, as in the sandbox */
    printf("session leader: %d\n", getsid(0) == getpid());
    hits[SIGHUP] = 0;
    set_action(SIGHUP, with_handler ? on_signal : SIG_DFL);
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    grantpt(master);
    unlockpt(master);
    int slave = open(ptsname(master), O_RDWR);
    show("TIOCSCTTY", ioctl(slave, TIOCSCTTY, 0));
    show("close the master", close(master));
    printf("SIGHUP handler ran: %d\n", hits[SIGHUP]);
    show_pending("after the hangup");
    printf("survived\n");
}

static void segv(void)
{
    printf("faulting\n");
    *(volatile int *)16 = 1;
    printf("FAILED: survived a fault\n");
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "survive";
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("pid is 1: %d\n", getpid() == 1);
    if (!strcmp(what, "survive")) {
        survive();
        return 0;
    }
    if (!strcmp(what, "segv")) {
        segv();
    } else if (!strcmp(what, "segv-blocked")) {
        block(SIGSEGV, SIG_BLOCK);
        segv();
    } else if (!strcmp(what, "segv-ignored")) {
        set_action(SIGSEGV, SIG_IGN);
        segv();
    } else if (!strcmp(what, "segv-handled")) {
        /* a handler: the fault is delivered to it, which then leaves */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = (void (*)(int))_exit;
        sigaction(SIGSEGV, &sa, NULL);
        segv();
    } else if (!strcmp(what, "hangup")) {
        hangup(0);
    } else if (!strcmp(what, "hangup-handled")) {
        hangup(1);
    } else if (!strcmp(what, "abort")) {
        printf("aborting\n");
        abort();
    } else if (!strcmp(what, "sigqueue-kernel")) {
        /* a queued siginfo claiming SI_KERNEL is a forced signal: SIGKILL kills init */
        siginfo_t si;
        memset(&si, 0, sizeof si);
        si.si_signo = SIGKILL;
        si.si_code = SI_KERNEL;
        printf("queueing SIGKILL as SI_KERNEL\n");
        show("rt_sigqueueinfo", syscall(SYS_rt_sigqueueinfo, getpid(), SIGKILL, &si));
    } else if (!strcmp(what, "sigqueue-user")) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        si.si_signo = SIGKILL;
        si.si_code = SI_QUEUE;
        show("rt_sigqueueinfo SI_QUEUE SIGKILL", syscall(SYS_rt_sigqueueinfo, getpid(), SIGKILL, &si));
    } else {
        printf("unknown scenario %s\n", what);
        return 2;
    }
    printf("still here\n");
    return 0;
}
