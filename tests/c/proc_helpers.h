/*
 * Helpers shared by the test programs that fork and wait, run threads or take signals
 * (proc.c, signals.c, threads.c, pipes2.c, poll.c, epoll.c).
 *
 * Why one header: each of those programs had grown its own copy of "fork or die", "wait
 * for this child, retrying on EINTR", "print a wait status", "a SIGUSR1 handler that
 * records its mask"...  The copies drifted (one returned -1 for the wrong child, another
 * the stale status 0), so they live here once.  Failures print FAILED, as in common.h.
 *
 * show_status keeps each program's wording, because the expected output of each was
 * written in it: define before including
 *   STATUS_BY_NUMBER  "killed by signal 9" (threads.c, pipes2.c) instead of the default
 *                     "killed by SIGKILL core=0";
 *   STATUS_RAW        the raw status word appended, " raw=0x9" (proc.c).
 */
#ifndef SV_TEST_PROC_HELPERS_H
#define SV_TEST_PROC_HELPERS_H
#include "common.h"
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

/* "what: FAILED errno=E" and exit(1): set-up the rest of a program cannot do without. */
static inline void die(const char *what)
{
    printf("%s: FAILED errno=%s\n", what, ename(errno));
    exit(1);
}

/* ------------------------------------------------------------------ signal names */

/* "SIGTERM", "SIGRTMIN+3" or "signal N"; four rotating buffers, so one printf may hold
 * up to four of them. */
static inline const char *signame(int sig)
{
    static char buf[4][32];
    static int slot;
    char *b = buf[slot++ % 4];
    if (sig >= SIGRTMIN && sig <= SIGRTMAX)
        snprintf(b, 32, "SIGRTMIN+%d", sig - SIGRTMIN);
    else if (sig > 0 && sigabbrev_np(sig))
        snprintf(b, 32, "SIG%s", sigabbrev_np(sig));
    else
        snprintf(b, 32, "signal %d", sig);
    return b;
}

/* si_status of a SIGCHLD siginfo (or waitid's) as text: an exit code for CLD_EXITED, a
 * signal name otherwise. */
static inline const char *chld_status(const siginfo_t *si)
{
    static char code[16];
    if (si->si_code != CLD_EXITED)
        return signame(si->si_status);
    snprintf(code, sizeof code, "%d", si->si_status);
    return code;
}

/* A handler (or SIG_DFL/SIG_IGN) with these flags and an empty sa_mask. */
static inline void set_action(int sig, void (*handler)(int), int flags)
{
    struct sigaction sa = {0};
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) != 0)
        printf("sigaction %s: FAILED errno=%s\n", signame(sig), ename(errno));
}

/* ------------------------------------------------------------------ children */

static inline void show_status(const char *label, int st)
{
    char raw[24] = "";
#ifdef STATUS_RAW
    snprintf(raw, sizeof raw, " raw=0x%x", st);
#endif
    if (WIFEXITED(st))
        printf("%s: exited %d%s\n", label, WEXITSTATUS(st), raw);
#ifdef STATUS_BY_NUMBER
    else if (WIFSIGNALED(st))
        printf("%s: killed by signal %d%s\n", label, WTERMSIG(st), raw);
#else
    else if (WIFSIGNALED(st))
        printf("%s: killed by %s core=%d%s\n", label, signame(WTERMSIG(st)),
               WCOREDUMP(st) ? 1 : 0, raw);
#endif
    else if (WIFSTOPPED(st))
        printf("%s: stopped by %s%s\n", label, signame(WSTOPSIG(st)), raw);
    else if (WIFCONTINUED(st))
        printf("%s: continued%s\n", label, raw);
    else
        printf("%s: FAILED unknown status 0x%x\n", label, st);
}

/* fork() with stdout flushed first (so the child does not print our buffer again). */
static inline pid_t fork_or_die(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    return pid;
}

/* A child that runs fn(arg) and _exits with what it returns. */
static inline pid_t spawn(int (*fn)(void *), void *arg)
{
    pid_t pid = fork_or_die();
    if (pid == 0)
        _exit(fn(arg));
    return pid;
}

/* waitpid(pid, options) retried on EINTR: the status, or FAILED and -1 if that child was
 * not the one reported. */
static inline int reap_opts(pid_t pid, int options)
{
    int st = 0;
    pid_t r;
    do
        r = waitpid(pid, &st, options);
    while (r == -1 && errno == EINTR);
    if (r != pid) {
        printf("waitpid: FAILED returned %s errno=%s\n", r == 0 ? "0" : "other", ename(errno));
        return -1;
    }
    return st;
}

static inline int reap(pid_t pid)
{
    return reap_opts(pid, 0);
}

/* The last line of a program that forked: nothing is left to wait for. */
static inline void show_all_reaped(void)
{
    int st;
    show("all children reaped", waitpid(-1, &st, WNOHANG));
}

/* ------------------------------------------------------------------ pipes and bytes */

static inline void make_pipe(int p[2])
{
    if (pipe(p) != 0)
        die("pipe");
}

static inline void make_pipe2(int p[2], int flags)
{
    if (pipe2(p, flags) != 0)
        die("pipe2");
}

/* One byte, retried on EINTR; '?' at EOF or on an error. */
static inline char get_byte(int fd)
{
    char c = 0;
    ssize_t n;
    do
        n = read(fd, &c, 1);
    while (n == -1 && errno == EINTR);
    return n == 1 ? c : '?';
}

static inline void put_byte(int fd, char c)
{
    if (write(fd, &c, 1) != 1)
        printf("write: FAILED errno=%s\n", ename(errno));
}

/* ------------------------------------------------------------------ time */

static inline long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000ll + t.tv_nsec / 1000000;
}

/* Sleeps the whole time even if a handler interrupts it. */
static inline void sleep_ms(int ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) == -1 && errno == EINTR)
        ;
}

/* A thread body: writes one byte to the fd *arg after 20 ms (a wake-up for a waiter). */
static inline void *late_writer(void *arg)
{
    sleep_ms(20);
    write(*(int *)arg, "x", 1);
    return NULL;
}

/* ------------------------------------------------------------------ temporary masks */

/* The mask a call such as ppoll or epoll_pwait installs while it waits is seen by the
 * SIGUSR1 handler record_mask: it counts itself in `handled` and notes whether USR1 and
 * USR2 were blocked while it ran; report_mask prints that, the mask and pending set now,
 * and starts the count again. */
static volatile sig_atomic_t handled, usr1_blocked_in_handler, usr2_blocked_in_handler;

static inline void record_mask(int sig)
{
    (void)sig;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    handled++;
    usr1_blocked_in_handler = sigismember(&cur, SIGUSR1);
    usr2_blocked_in_handler = sigismember(&cur, SIGUSR2);
}

static inline void report_mask(const char *label)
{
    sigset_t cur, pend;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    sigpending(&pend);
    printf("%s: handled %d (in handler: USR1 blocked %d, USR2 blocked %d); now USR1 blocked %d, "
           "USR2 blocked %d, USR1 pending %d\n", label, (int)handled, (int)usr1_blocked_in_handler,
           (int)usr2_blocked_in_handler, sigismember(&cur, SIGUSR1), sigismember(&cur, SIGUSR2),
           sigismember(&pend, SIGUSR1));
    handled = usr1_blocked_in_handler = usr2_blocked_in_handler = 0;
}

/* Installs record_mask for SIGUSR1, fills `block1` (USR1 only) and `only2` (USR2 only), and
 * makes block1 the mask: a raised USR1 then stays pending until a call's mask lets it in. */
static inline void start_mask_probe(sigset_t *block1, sigset_t *only2)
{
    set_action(SIGUSR1, record_mask, 0);
    sigemptyset(block1);
    sigaddset(block1, SIGUSR1);
    sigemptyset(only2);
    sigaddset(only2, SIGUSR2);
    sigprocmask(SIG_SETMASK, block1, NULL);
}

#endif
