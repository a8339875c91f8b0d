/* Processes: fork, vfork, clone (CLONE_PARENT, exit signals), wait4/waitid status words
 * and si_codes, stop/continue reports, zombies, orphan reparenting to a subreaper, process
 * groups and sessions, kill to groups and its permission rule, and execve from a child
 * (close-on-exec, signal dispositions, mask, pending signals, `#!` chains, errors).
 *
 * Pids are never printed: children report relations ("getppid == parent") through exit
 * codes, pipes or lines printed while the parent waits.  The program re-executes itself
 * (argv[0], an absolute path on both sides) with a mode word for the exec tests.
 *
 * In the sandbox this program is pid 1 of its namespace; natively it is a session leader
 * (the harness starts it in a new session).  Both are process-group and session leaders,
 * so the tests rely on that and nothing else about their own ancestry.  Signals with a
 * default action are only ever sent to children (init ignores them). */
#define STATUS_RAW
#include "proc_helpers.h"
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>

static const char *self; /* argv[0]: re-executed for the exec tests */

static const char *cld_name(int code)
{
    switch (code) {
    case CLD_EXITED: return "CLD_EXITED";
    case CLD_KILLED: return "CLD_KILLED";
    case CLD_DUMPED: return "CLD_DUMPED";
    case CLD_TRAPPED: return "CLD_TRAPPED";
    case CLD_STOPPED: return "CLD_STOPPED";
    case CLD_CONTINUED: return "CLD_CONTINUED";
    }
    return "CLD_?";
}

static void show_waitid(const char *label, const siginfo_t *si, pid_t expect)
{
    printf("%s: si_signo=%s si_code=%s si_status=%s pid-matches=%s uid=%d\n", label,
           si->si_signo ? signame(si->si_signo) : "0", cld_name(si->si_code), chld_status(si),
           si->si_pid == expect ? "yes" : "no", si->si_uid);
}

static int block_forever(void *arg)
{
    (void)arg;
    for (;;)
        pause();
}

static int exit_with(void *arg)
{
    return (int)(long)arg;
}

struct held {
    int *hold, code, own_group;
};

static int held_child(void *arg)
{
    const struct held *h = arg;
    if (h->own_group)
        setpgid(0, 0);
    if (h->hold) {
        close(h->hold[1]);
        get_byte(h->hold[0]); /* restarted transparently across stop/continue */
    }
    return h->code;
}

/* A child that exits with `code` once we close (or write to) hold[1], a pipe made here;
 * at once if hold is NULL.  With `own_group` it leads a process group of its own, set on
 * both sides so that no race decides when. */
static pid_t spawn_held(int hold[2], int code, int own_group)
{
    struct held h = {hold, code, own_group};
    if (hold)
        make_pipe2(hold, 0);
    pid_t pid = spawn(held_child, &h);
    if (own_group)
        setpgid(pid, pid);
    if (hold)
        close(hold[0]);
    return pid;
}

static volatile sig_atomic_t got_signal;

static void count_signal(int sig)
{
    (void)sig;
    got_signal++;
}

/* ------------------------------------------------------------------ fork */

static int fork_global = 1;

struct fork_args {
    pid_t parent;
    int go;   /* read end: the parent has written fork_global */
};

static int fork_child(void *p)
{
    struct fork_args *a = p;
    int ok = 1;
    ok &= getppid() == a->parent;
    ok &= getpid() != a->parent;
    ok &= fork_global == 1;
    fork_global = 2;               /* invisible to the parent */
    get_byte(a->go);               /* the parent wrote 3 to its copy meanwhile */
    ok &= fork_global == 2;
    return ok ? 0 : 1;
}

static void test_fork(void)
{
    section("fork");
    int go[2];
    make_pipe2(go, 0);
    struct fork_args a = {getpid(), go[0]};
    pid_t pid = spawn(fork_child, &a);
    CHECK("fork returns a child pid > 0", pid > 0);
    CHECK("child pid differs from ours", pid != getpid());
    fork_global = 3;
    put_byte(go[1], 'x');
    show_status("child (getppid == parent, own copy of memory)", reap(pid));
    CHECK("the child's write is not visible here", fork_global == 3);
    close(go[0]);
    close(go[1]);

    /* The fd table is copied: both ends of one pipe shared across the fork. */
    int p[2];
    make_pipe2(p, 0);
    pid = fork_or_die();
    if (pid == 0) {
        close(p[0]);
        _exit(write(p[1], "from child", 10) == 10 ? 0 : 1);
    }
    close(p[1]);
    char buf[32] = {0};
    show("read what the child wrote through the inherited pipe", read(p[0], buf, sizeof buf));
    printf("data: %s\n", buf);
    show_status("writer child", reap(pid));
    show("read after the writer exited (EOF)", read(p[0], buf, sizeof buf));
    close(p[0]);

    /* Many children at once, reaped in any order with waitpid(-1). */
    int sum = 0, n = 0;
    for (int i = 1; i <= 8; i++)
        spawn(exit_with, (void *)(long)i);
    for (;;) {
        int st;
        pid_t r = waitpid(-1, &st, 0);
        if (r < 0) {
            printf("waitpid(-1) after 8 children: errno=%s\n", ename(errno));
            break;
        }
        n++;
        sum += WEXITSTATUS(st);
    }
    printf("reaped %d children, exit codes sum %d\n", n, sum);
}

/* ------------------------------------------------------------------ vfork */

static volatile int vfork_shared;

/* clone(CLONE_VM|CLONE_VFORK) with no new stack: the child runs on our stack, so it must
 * not call or return; it stores 5 to *shared and exits 3 within this asm. */
static long clone_vm_vfork(volatile int *shared)
{
    long ret;
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    __asm__ volatile("syscall\n\t"
                     "test %%rax, %%rax\n\t"
                     "jnz 1f\n\t"
                     "movl $5, (%[p])\n\t"
                     "mov $60, %%eax\n\t"
                     "mov $3, %%edi\n\t"
                     "syscall\n\t"
                     "1:\n\t"
                     : "=a"(ret)
                     : "0"((long)SYS_clone), "D"((long)(CLONE_VM | CLONE_VFORK | SIGCHLD)), "S"(0L),
                       "d"(0L), "r"(r10), "r"(r8), [p] "r"(shared)
                     : "rcx", "r11", "memory");
    return ret;
}
static volatile pid_t vfork_seen_ppid, vfork_seen_pid;

static void test_vfork(void)
{
    section("vfork");
    vfork_shared = 0;
    fflush(stdout);
    pid_t pid = vfork();
    if (pid == 0) {
        vfork_seen_ppid = getppid();
        vfork_seen_pid = getpid();
        vfork_shared = 42;   /* shared memory: the parent sees it */
        _exit(7);
    }
    CHECK("parent resumed after the child's _exit and sees its write", vfork_shared == 42);
    CHECK("the vfork child saw us as its parent", vfork_seen_ppid == getpid());
    CHECK("the vfork child had its own pid", vfork_seen_pid == pid && pid != getpid());
    show_status("vfork child", reap(pid));

    /* The parent resumes when the child execs, not when the new image exits: the exec'd
     * program waits for a byte only the resumed parent sends. */
    int p[2];
    make_pipe2(p, 0);
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", p[0]);
    char *args[] = {(char *)self, "wait-fd", fdarg, NULL};
    vfork_shared = 0;
    fflush(stdout);
    pid = vfork();
    if (pid == 0) {
        vfork_shared = 1;
        execv(self, args);
        _exit(127);
    }
    CHECK("parent resumed at the child's exec", vfork_shared == 1);
    put_byte(p[1], 9);
    show_status("exec'd vfork child (exit code from the byte we sent)", reap(pid));
    close(p[0]);
    close(p[1]);

    /* clone(CLONE_VM|CLONE_VFORK) is what posix_spawn uses. */
    vfork_shared = 0;
    fflush(stdout);
    pid = clone_vm_vfork(&vfork_shared);
    CHECK("clone(CLONE_VM|CLONE_VFORK): parent sees the child's write", vfork_shared == 5);
    show_status("CLONE_VFORK child", reap(pid));
}

/* ------------------------------------------------------------------ clone */

static int clone_parent_middle(void *arg)
{
    int report = (int)(long)arg;
    pid_t grandparent = getppid();
    /* Raw clone children use only raw system calls (glibc's cached thread state is the
     * parent's). */
    pid_t c = syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
    if (c == 0)
        syscall(SYS_exit, syscall(SYS_getppid) == grandparent ? 10 : 11);
    if (c < 0)
        return 99;
    write(report, &c, sizeof c);
    int st;
    /* The sibling is not our child. */
    return waitpid(c, &st, 0) == -1 && errno == ECHILD ? 0 : 1;
}

static void test_clone(void)
{
    section("clone");
    int p[2];
    make_pipe2(p, 0);
    pid_t middle = spawn(clone_parent_middle, (void *)(long)p[1]);
    pid_t sibling = 0;
    show("read the CLONE_PARENT child's pid", read(p[0], &sibling, sizeof sibling) == sizeof sibling);
    show_status("middle (its waitpid on the CLONE_PARENT child is ECHILD)", reap(middle));
    show_status("CLONE_PARENT child reaped by us (getppid was us)", reap(sibling));
    close(p[0]);
    close(p[1]);

    /* exit signal 0: a "clone" child, invisible to wait without __WCLONE/__WALL. */
    fflush(stdout);
    pid_t pid = syscall(SYS_clone, 0, 0, 0, 0, 0);
    if (pid == 0)
        syscall(SYS_exit, 6);
    int st;
    errno = 0;
    show("waitpid(clone child, 0) without __WCLONE", waitpid(pid, &st, 0));
    show_status("waitpid(clone child, __WCLONE)", reap_opts(pid, __WCLONE));

    pid = syscall(SYS_clone, 0, 0, 0, 0, 0);
    if (pid == 0)
        syscall(SYS_exit, 8);
    show_status("waitpid(clone child, __WALL)", reap_opts(pid, __WALL));

    pid = spawn(exit_with, (void *)2L);
    show("waitpid(fork child, __WCLONE) (only clone children)", waitpid(pid, &st, __WCLONE));
    show_status("waitpid(fork child, __WALL)", reap_opts(pid, __WALL));

    /* exit signal SIGUSR1: we get SIGUSR1, not SIGCHLD, when it exits. */
    got_signal = 0;
    set_action(SIGUSR1, count_signal, 0);
    pid = syscall(SYS_clone, SIGUSR1, 0, 0, 0, 0);
    if (pid == 0)
        syscall(SYS_exit, 4);
    show_status("clone child with exit signal SIGUSR1", reap_opts(pid, __WALL));
    printf("SIGUSR1 received on its exit: %d\n", (int)got_signal);
    set_action(SIGUSR1, SIG_DFL, 0);

    show("clone(CLONE_THREAD without CLONE_SIGHAND)", syscall(SYS_clone, CLONE_THREAD, 0, 0, 0, 0));
    show("clone(CLONE_SIGHAND without CLONE_VM)", syscall(SYS_clone, CLONE_SIGHAND, 0, 0, 0, 0));
    show("clone(CLONE_NEWNS|CLONE_FS)", syscall(SYS_clone, CLONE_NEWNS | CLONE_FS, 0, 0, 0, 0));
}

/* ------------------------------------------------------------------ exit statuses */

static int segv_child(void *arg)
{
    (void)arg;
    *(volatile int *)0 = 1;
    return 0;
}

static int abort_child(void *arg)
{
    (void)arg;
    abort();
}

static void test_exit_statuses(void)
{
    section("exit statuses");
    struct rlimit none = {0, 0};
    show("setrlimit CORE 0 (no dumps: the core flag stays clear)", setrlimit(RLIMIT_CORE, &none));
    static const int codes[] = {0, 1, 42, 127, 128, 255, 256, 257, -1};
    for (unsigned i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "_exit(%d)", codes[i]);
        show_status(label, reap(spawn(exit_with, (void *)(long)codes[i])));
    }
    static const int sigs[] = {SIGKILL, SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGALRM};
    for (unsigned i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        char label[64];
        pid_t pid = spawn(block_forever, NULL);
        kill(pid, sigs[i]);
        snprintf(label, sizeof label, "child sent %s", signame(sigs[i]));
        show_status(label, reap(pid));
    }
    show_status("child abort()", reap(spawn(abort_child, NULL)));
    show_status("child NULL write", reap(spawn(segv_child, NULL)));
}

/* ------------------------------------------------------------------ wait errors */

static void test_wait_errors(void)
{
    section("wait errors");
    int st;
    show("waitpid(-1) with no children", waitpid(-1, &st, 0));
    show("waitpid(-1, WNOHANG) with no children", waitpid(-1, &st, WNOHANG));
    show("waitpid(self)", waitpid(getpid(), &st, 0));
    show("waitpid(-pgrp) with no children", waitpid(-getpgrp(), &st, 0));
    siginfo_t si;
    show("waitid(P_ALL) with no children", waitid(P_ALL, 0, &si, WEXITED));

    int go[2];
    pid_t pid = spawn_held(go, 12, 0);
    show("waitpid(child, WNOHANG) while it runs", waitpid(pid, &st, WNOHANG));
    show("waitpid(-1, WNOHANG) while it runs", waitpid(-1, &st, WNOHANG));
    memset(&si, 0x55, sizeof si);
    show("waitid(P_PID, WEXITED|WNOHANG) while it runs", waitid(P_PID, pid, &si, WEXITED | WNOHANG));
    printf("waitid WNOHANG nothing ready: si_pid=%d si_signo=%d\n", si.si_pid, si.si_signo);
    show("waitpid with a bad option bit", waitpid(pid, &st, 0x40000));
    show("wait4 with WEXITED (waitid only)", waitpid(pid, &st, WEXITED));
    show("waitid without WEXITED/WSTOPPED/WCONTINUED", waitid(P_PID, pid, &si, 0));
    show("waitid bad idtype", waitid((idtype_t)42, pid, &si, WEXITED));
    show("waitid(P_PID, 0)", waitid(P_PID, 0, &si, WEXITED | WNOHANG));
    show("waitid(P_PID, non-child)", waitid(P_PID, getpid(), &si, WEXITED | WNOHANG));
    close(go[1]);   /* the child reads EOF and exits 12 */
    show_status("blocking waitpid after releasing it", reap(pid));
}

/* ------------------------------------------------------------------ waitid */

static void test_waitid(void)
{
    section("waitid");
    siginfo_t si;
    pid_t pid = spawn(exit_with, (void *)21L);
    memset(&si, 0, sizeof si);
    show("waitid(P_PID, WEXITED)", waitid(P_PID, pid, &si, WEXITED));
    show_waitid("P_PID", &si, pid);
    int st;
    show("already reaped: waitpid", waitpid(pid, &st, WNOHANG));

    /* P_PGID: a child in a group of its own (set on both sides to close the race). */
    pid = spawn_held(NULL, 22, 1);
    memset(&si, 0, sizeof si);
    show("waitid(P_PGID, our group, WNOHANG) (the child left it)",
         waitid(P_PGID, getpgrp(), &si, WEXITED | WNOHANG));
    show("waitid(P_PGID, its group)", waitid(P_PGID, pid, &si, WEXITED));
    show_waitid("P_PGID", &si, pid);

    /* waitpid(-pgid) is the same selection. */
    pid = spawn_held(NULL, 23, 1);
    st = 0;
    CHECK("waitpid(-its group) returns the child", waitpid(-pid, &st, 0) == pid);
    show_status("waitpid(-its group)", st);

    /* P_PGID with 0: our own process group. */
    pid = spawn(exit_with, (void *)24L);
    memset(&si, 0, sizeof si);
    show("waitid(P_PGID, 0) (our group)", waitid(P_PGID, 0, &si, WEXITED));
    show_waitid("P_PGID 0", &si, pid);

    pid = spawn(exit_with, (void *)25L);
    memset(&si, 0, sizeof si);
    show("waitid(P_ALL, WEXITED)", waitid(P_ALL, 0, &si, WEXITED));
    show_waitid("P_ALL", &si, pid);

    /* WNOWAIT leaves the child waitable. */
    pid = spawn(exit_with, (void *)26L);
    memset(&si, 0, sizeof si);
    show("waitid(WEXITED|WNOWAIT)", waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
    show_waitid("WNOWAIT", &si, pid);
    memset(&si, 0, sizeof si);
    show("waitid(WEXITED|WNOWAIT) again", waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
    show_waitid("WNOWAIT again", &si, pid);
    show_status("then waitpid reaps it", reap(pid));
    show("and it is gone", waitpid(pid, &st, WNOHANG));

    /* Killed children: CLD_KILLED (no dump with RLIMIT_CORE 0, so not CLD_DUMPED). */
    pid = spawn(block_forever, NULL);
    kill(pid, SIGTERM);
    memset(&si, 0, sizeof si);
    show("waitid on a SIGTERM'd child", waitid(P_PID, pid, &si, WEXITED));
    show_waitid("SIGTERM", &si, pid);
    pid = spawn(abort_child, NULL);
    memset(&si, 0, sizeof si);
    show("waitid on an aborted child", waitid(P_PID, pid, &si, WEXITED));
    show_waitid("abort", &si, pid);

    /* rusage from wait4 */
    pid = spawn(exit_with, (void *)0L);
    struct rusage ru;
    memset(&ru, 0xff, sizeof ru);
    CHECK("wait4 returns the child", wait4(pid, &st, 0, &ru) == pid);
    CHECK("wait4 rusage filled (times sane)", ru.ru_utime.tv_sec >= 0 && ru.ru_utime.tv_sec < 100 &&
                                                  ru.ru_stime.tv_usec >= 0 && ru.ru_stime.tv_usec < 1000000);
}

/* ------------------------------------------------------------------ stop / continue */

static void test_stop_continue(void)
{
    section("stop and continue");
    int go[2];
    pid_t pid = spawn_held(go, 31, 0);
    int st;
    siginfo_t si;
    kill(pid, SIGSTOP);
    show_status("waitpid(WUNTRACED) after SIGSTOP", reap_opts(pid, WUNTRACED));
    show("waitpid(WUNTRACED|WNOHANG) again (report consumed)", waitpid(pid, &st, WUNTRACED | WNOHANG));
    kill(pid, SIGCONT);
    show_status("waitpid(WCONTINUED) after SIGCONT", reap_opts(pid, WCONTINUED));

    kill(pid, SIGSTOP);
    memset(&si, 0, sizeof si);
    show("waitid(WSTOPPED)", waitid(P_PID, pid, &si, WSTOPPED));
    show_waitid("stopped", &si, pid);
    memset(&si, 0, sizeof si);
    show("waitid(WSTOPPED|WNOHANG) again", waitid(P_PID, pid, &si, WSTOPPED | WNOHANG));
    printf("nothing to report: si_pid=%d\n", si.si_pid);
    kill(pid, SIGCONT);
    memset(&si, 0, sizeof si);
    show("waitid(WCONTINUED|WNOWAIT)", waitid(P_PID, pid, &si, WCONTINUED | WNOWAIT));
    show_waitid("continued (not consumed)", &si, pid);
    memset(&si, 0, sizeof si);
    show("waitid(WCONTINUED)", waitid(P_PID, pid, &si, WCONTINUED));
    show_waitid("continued", &si, pid);
    show("waitpid(WUNTRACED|WCONTINUED|WNOHANG) while running", waitpid(pid, &st, WUNTRACED | WCONTINUED | WNOHANG));

    /* A stopped child's stop is not reported without WUNTRACED; SIGKILL ends it. */
    kill(pid, SIGSTOP);
    memset(&si, 0, sizeof si);
    waitid(P_PID, pid, &si, WSTOPPED | WNOWAIT);   /* wait until it is stopped */
    show("waitpid(0 options) on a stopped child, WNOHANG", waitpid(pid, &st, WNOHANG));
    kill(pid, SIGKILL);
    show_status("stopped child killed", reap(pid));
    close(go[1]);

    /* SIGTSTP stops a child whose group is not orphaned (its own group; we are its
     * parent in another group of the same session). */
    pid = spawn_held(go, 32, 1);
    kill(pid, SIGTSTP);
    show_status("SIGTSTP", reap_opts(pid, WUNTRACED));
    kill(pid, SIGCONT);
    show_status("SIGCONT", reap_opts(pid, WCONTINUED));
    close(go[1]);
    show_status("released", reap(pid));

    /* __WALL also reports stops. */
    pid = spawn_held(go, 33, 0);
    kill(pid, SIGSTOP);
    show_status("waitpid(__WALL|WUNTRACED) stop", reap_opts(pid, __WALL | WUNTRACED));
    kill(pid, SIGCONT);
    close(go[1]);
    show_status("waitpid(__WALL) exit", reap_opts(pid, __WALL));
}

/* ------------------------------------------------------------------ subreaper */

struct reaper_args {
    pid_t top;
    int ack[2], go[2], info[2];
};

static int reaper_middle(void *p)
{
    struct reaper_args *a = p;
    pid_t me = getpid();
    pid_t c = fork_or_die();
    if (c == 0) {
        char before = getppid() == me;
        put_byte(a->ack[1], before);
        get_byte(a->go[0]);             /* the middle has exited and been reaped */
        _exit(getppid() == a->top ? 0 : 1);
    }
    char before = get_byte(a->ack[0]);
    write(a->info[1], &c, sizeof c);
    put_byte(a->info[1], before);
    return 3;
}

static void test_subreaper(void)
{
    section("subreaper");
    int v = -1;
    show("prctl(PR_SET_CHILD_SUBREAPER, 1)", prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0));
    show("prctl(PR_GET_CHILD_SUBREAPER)", prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0));
    printf("subreaper flag: %d\n", v);
    struct reaper_args a;
    a.top = getpid();
    make_pipe2(a.ack, 0);
    make_pipe2(a.go, 0);
    make_pipe2(a.info, 0);
    pid_t middle = spawn(reaper_middle, &a);
    pid_t grandchild = 0;
    read(a.info[0], &grandchild, sizeof grandchild);
    printf("grandchild's parent was the middle process: %s\n", get_byte(a.info[0]) == 1 ? "yes" : "no");
    show_status("middle", reap(middle));
    put_byte(a.go[1], 'g');
    show_status("orphaned grandchild reaped by the subreaper (its getppid was us)", reap(grandchild));
    int st;
    show("no more children", waitpid(-1, &st, WNOHANG));
    show("prctl(PR_SET_CHILD_SUBREAPER, 0)", prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0));
    prctl(PR_GET_CHILD_SUBREAPER, &v, 0, 0, 0);
    printf("subreaper flag: %d\n", v);
    for (int i = 0; i < 2; i++) {
        close(a.ack[i]);
        close(a.go[i]);
        close(a.info[i]);
    }
}

/* ------------------------------------------------------------------ zombies */

static void test_zombies(void)
{
    section("zombies");
    pid_t pid = spawn(exit_with, (void *)4L);
    siginfo_t si;
    memset(&si, 0, sizeof si);
    show("waitid(WEXITED|WNOWAIT) until it is a zombie", waitid(P_PID, pid, &si, WEXITED | WNOWAIT));
    show("kill(zombie, 0)", kill(pid, 0));
    show("kill(zombie, SIGKILL)", kill(pid, SIGKILL));
    CHECK("getpgid(zombie) is our group", getpgid(pid) == getpgrp());
    CHECK("getsid(zombie) is our session", getsid(pid) == getsid(0));
    show_status("reaped zombie (the SIGKILL changed nothing)", reap(pid));
    show("kill(reaped pid, 0)", kill(pid, 0));
    show("getpgid(reaped pid)", getpgid(pid));
}

/* ------------------------------------------------------------------ groups, sessions */

static int pgrp_child(void *arg)
{
    pid_t parent_pgrp = (pid_t)(long)arg;
    printf("child: getpgrp == parent's group: %s\n", getpgrp() == parent_pgrp ? "yes" : "no");
    printf("child: getsid == parent's session: %s\n", getsid(0) == getsid(getppid()) ? "yes" : "no");
    show("child: setpgid(0, 0)", setpgid(0, 0));
    printf("child: now leads its group: %s\n", getpgrp() == getpid() && getpgid(0) == getpid() ? "yes" : "no");
    show("child: setsid as a group leader", setsid());
    show("child: setpgid(0, parent's group) (same session)", setpgid(0, parent_pgrp));
    printf("child: back in the parent's group: %s\n", getpgrp() == parent_pgrp ? "yes" : "no");
    show("child: setpgid(parent, parent) (not our child)", setpgid(getppid(), getppid()));
    return 0;
}

static int session_child(void *arg)
{
    pid_t parent_pgrp = (pid_t)(long)arg;
    pid_t sid = setsid();
    printf("child: setsid returns our pid: %s\n", sid == getpid() ? "yes" : "no");
    printf("child: getsid(0) == pid: %s\n", getsid(0) == getpid() ? "yes" : "no");
    printf("child: getpgrp == pid: %s\n", getpgrp() == getpid() ? "yes" : "no");
    show("child: setsid again", setsid());
    show("child: setpgid(0, parent's group) (other session)", setpgid(0, parent_pgrp));
    printf("child: parent's session unchanged: %s\n", getsid(getppid()) != getsid(0) ? "yes" : "no");
    return 0;
}

static void test_pgrp_session(void)
{
    section("process groups and sessions");
    CHECK("we lead our process group", getpgrp() == getpid());
    CHECK("getpgid(0) == getpgrp()", getpgid(0) == getpgrp());
    CHECK("getpgid(self) == getpgrp()", getpgid(getpid()) == getpgrp());
    CHECK("raw getpgrp", syscall(SYS_getpgrp) == getpgrp());
    CHECK("we lead our session", getsid(0) == getpid());
    show("setsid as a session leader", setsid());
    show("setpgid(0, 0) as a session leader (already leader of its group)", setpgid(0, 0));
    show("setpgid(0, -1)", setpgid(0, -1));
    show("setpgid(-1, 0)", setpgid(-1, 0));
    show("setpgid(no such pid, 0)", setpgid(0x7ffffff0, 0));
    show("getpgid(no such pid)", getpgid(0x7ffffff0));
    show("getpgid(-1)", getpgid(-1));
    show("getsid(no such pid)", getsid(0x7ffffff0));
    show("getsid(-1)", getsid(-1));

    show_status("pgrp child", reap(spawn(pgrp_child, (void *)(long)getpgrp())));
    show_status("session child", reap(spawn(session_child, (void *)(long)getpgrp())));

    /* The parent moves a child between groups. */
    int go[2], ready[2];
    make_pipe2(go, 0);
    make_pipe2(ready, 0);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        get_byte(go[0]);
        _exit(getpgrp() == getpid() ? 0 : 1);
    }
    show("setpgid(child, child)", setpgid(pid, pid));
    CHECK("getpgid(child) == child", getpgid(pid) == pid);
    show("setpgid(child, no such group)", setpgid(pid, 0x7ffffff0));
    put_byte(go[1], 'g');
    show_status("child saw itself leading its group", reap(pid));

    /* A child in another session cannot be moved. */
    pid = fork_or_die();
    if (pid == 0) {
        setsid();
        put_byte(ready[1], 'r');
        get_byte(go[0]);
        _exit(0);
    }
    get_byte(ready[0]);
    show("setpgid(child in another session, our group)", setpgid(pid, getpgrp()));
    show("setpgid(child in another session, 0)", setpgid(pid, 0));
    CHECK("getsid(child) == child", getsid(pid) == pid);
    put_byte(go[1], 'g');
    show_status("session child", reap(pid));

    /* After the child execs, its parent may no longer change its group. */
    int cx[2], hold[2];
    make_pipe2(cx, O_CLOEXEC);
    make_pipe2(hold, 0);
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", hold[0]);
    pid = fork_or_die();
    if (pid == 0) {
        close(cx[0]);
        execl(self, self, "wait-fd", fdarg, (char *)NULL);
        put_byte(cx[1], 'E');
        _exit(127);
    }
    close(cx[1]);
    char c;
    show("read the close-on-exec pipe until the child's exec closes it", read(cx[0], &c, 1));
    show("setpgid(exec'd child, itself)", setpgid(pid, pid));
    put_byte(hold[1], 17);
    show_status("exec'd child", reap(pid));
    for (int i = 0; i < 2; i++) {
        close(go[i]);
        close(ready[i]);
        close(hold[i]);
    }
    close(cx[0]);
}

/* ------------------------------------------------------------------ kill to groups */

/* Resets the signals under test to SIG_DFL, says so on fd `arg` (if >= 0), waits. */
static int pgrp_member(void *arg)
{
    int ready = (int)(long)arg;
    set_action(SIGUSR1, SIG_DFL, 0);
    set_action(SIGTERM, SIG_DFL, 0);
    if (ready >= 0)
        put_byte(ready, 'r');
    for (;;)
        pause();
}

/* Leads a group of two members, signals it with kill(0, ...), reports their statuses. */
static int kill0_leader(void *arg)
{
    (void)arg;
    setpgid(0, 0);
    pid_t a = spawn(pgrp_member, (void *)-1L), b = spawn(pgrp_member, (void *)-1L);
    set_action(SIGTERM, SIG_IGN, 0);
    int ok = kill(0, SIGTERM) == 0;
    int sa = reap(a), sb = reap(b);
    ok &= WIFSIGNALED(sa) && WTERMSIG(sa) == SIGTERM;
    ok &= WIFSIGNALED(sb) && WTERMSIG(sb) == SIGTERM;
    return ok ? 0 : 1;
}

static int killpg_leader(void *arg)
{
    int ready = (int)(long)arg;
    setpgid(0, 0);
    got_signal = 0;
    set_action(SIGUSR1, count_signal, 0);
    pid_t a = spawn(pgrp_member, (void *)(long)ready);
    int st = reap(a);
    int ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1;
    ok &= got_signal == 1;
    return ok ? 0 : 1;
}

static void test_kill_groups(void)
{
    section("kill to groups");
    show_status("kill(0, SIGTERM) in a child's own group (members die, leader ignores)",
                reap(spawn(kill0_leader, NULL)));

    int ready[2];
    make_pipe2(ready, 0);
    pid_t leader = spawn(killpg_leader, (void *)(long)ready[1]);
    setpgid(leader, leader);
    get_byte(ready[0]);
    show("kill(-group, SIGUSR1)", kill(-leader, SIGUSR1));
    show_status("group leader (handler ran once, member died of SIGUSR1)", reap(leader));
    show("kill(-group, 0) after it is gone", kill(-leader, 0));
    show("killpg(no such group, 0)", killpg(0x7ffffff0, 0));
    show("kill(-(no such group), 0)", kill(-0x7ffffff0, 0));
    show("kill(no such pid, 0)", kill(0x7ffffff0, 0));
    show("kill(self, 0)", kill(getpid(), 0));
    show("kill(0, 0) (our own group)", kill(0, 0));
    show("kill(self, 65)", kill(getpid(), 65));
    show("kill(self, -1)", kill(getpid(), -1));
    close(ready[0]);
    close(ready[1]);
}

/* ------------------------------------------------------------------ permissions */

static int unprivileged_kill(void *arg)
{
    pid_t parent = (pid_t)(long)arg;
    if (setgid(65534) != 0 || setuid(65534) != 0)
        return 90;
    int ok = kill(parent, 0) == -1 && errno == EPERM;
    ok &= kill(parent, SIGCONT) == 0;            /* SIGCONT: same session is enough */
    ok &= kill(getpid(), 0) == 0;
    return ok ? 0 : 1;
}

static void test_kill_permissions(void)
{
    section("kill permissions");
    set_action(SIGCONT, SIG_DFL, 0);
    show_status("uid 65534 child: kill(root parent, 0) EPERM, SIGCONT allowed in-session",
                reap(spawn(unprivileged_kill, (void *)(long)getpid())));
}

/* ------------------------------------------------------------------ execve */

static void test_exec_errors(void)
{
    section("execve errors");
    char *args[] = {"x", NULL};
    char *env[] = {NULL};
    show("execve(nonexistent)", execve("/nonexistent/program", args, env));
    show("execve(directory)", execve(".", args, env));
    show("execve(\"\")", execve("", args, env));
    show("execve(NULL path)", syscall(SYS_execve, NULL, args, env));
    show("execve(bad argv pointer)", syscall(SYS_execve, self, (void *)8, env));
    put_file("plain.txt", "not a program\n");
    show("execve(file without x bit)", execve("./plain.txt", args, env));
    show("chmod 0755", chmod("plain.txt", 0755));
    show("execve(text file, 0755)", execve("./plain.txt", args, env));
    put_file("empty", "");
    chmod("empty", 0755);
    show("execve(empty file, 0755)", execve("./empty", args, env));
    put_file("badinterp.sh", "#!/nonexistent/interpreter\n");
    chmod("badinterp.sh", 0755);
    show("execve(#! with a missing interpreter)", execve("./badinterp.sh", args, env));
    show("execveat(AT_FDCWD, nonexistent)", syscall(SYS_execveat, AT_FDCWD, "nope", args, env, 0));
    show("execveat(bad flags)", syscall(SYS_execveat, AT_FDCWD, self, args, env, 0x40000));
    unlink("plain.txt");
    unlink("empty");
    unlink("badinterp.sh");
}

static void test_exec_state(void)
{
    section("execve state");
    /* Everything is set up in the child, which then execs "exec-check". */
    int p[2];
    make_pipe2(p, 0);
    mkdir("sub", 0755);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 20);                          /* kept */
        dup3(p[1], 21, O_CLOEXEC);               /* closed at exec */
        dup2(p[1], 22);
        fcntl(22, F_SETFD, FD_CLOEXEC);          /* closed at exec */
        close(p[1]);
        set_action(SIGUSR1, count_signal, 0);    /* caught: reset to SIG_DFL */
        set_action(SIGUSR2, SIG_IGN, 0);         /* ignored: stays ignored */
        set_action(SIGPIPE, count_signal, SA_RESTART | SA_ONSTACK);
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGHUP);
        sigaddset(&m, SIGWINCH);
        sigprocmask(SIG_SETMASK, &m, NULL);      /* kept */
        raise(SIGWINCH);                         /* blocked: stays pending across exec */
        static char altstack[65536];
        stack_t ss = {.ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0};
        sigaltstack(&ss, NULL);                  /* reset at exec */
        umask(027);                              /* kept */
        chdir("sub");                            /* kept */
        struct rlimit rl = {100, 100};
        setrlimit(RLIMIT_NOFILE, &rl);           /* kept */
        prctl(PR_SET_NAME, "renamed", 0, 0, 0);  /* replaced by the new image's name */
        char pidarg[16], ppidarg[16];
        snprintf(pidarg, sizeof pidarg, "%d", getpid());
        snprintf(ppidarg, sizeof ppidarg, "%d", getppid());
        execl(self, self, "exec-check", pidarg, ppidarg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    show_status("exec-check child", reap(pid));
    char buf[64] = {0};
    show("bytes the exec'd child wrote to the inherited fd 20", read(p[0], buf, sizeof buf - 1));
    printf("data: %s\n", buf);
    close(p[0]);
    rmdir("sub");

    /* execveat with AT_EMPTY_PATH on an fd of the program */
    int fd = open(self, O_RDONLY | O_CLOEXEC);
    pid = fork_or_die();
    if (pid == 0) {
        char *args[] = {(char *)self, "exit", "5", NULL};
        syscall(SYS_execveat, fd, "", args, environ, AT_EMPTY_PATH);
        _exit(127);
    }
    show_status("execveat(fd, \"\", AT_EMPTY_PATH)", reap(pid));
    close(fd);

    /* #! scripts, one level and two */
    char text[512];
    snprintf(text, sizeof text, "#!%s shebang-arg\n", self);
    put_file("s.sh", text);
    chmod("s.sh", 0755);
    put_file("s2.sh", "#!./s.sh\n");
    chmod("s2.sh", 0755);
    pid = fork_or_die();
    if (pid == 0) {
        execl("./s.sh", "./s.sh", "x", "y", (char *)NULL);
        _exit(127);
    }
    show_status("#! script", reap(pid));
    pid = fork_or_die();
    if (pid == 0) {
        execl("./s2.sh", "ignored-argv0", "z", (char *)NULL);
        _exit(127);
    }
    show_status("#! script whose interpreter is a #! script", reap(pid));
    unlink("s.sh");
    unlink("s2.sh");
}

/* ------------------------------------------------------------------ exec'd modes */

static int mode_exec_check(char **argv)
{
    printf("exec'd: pid unchanged: %s\n", getpid() == atoi(argv[2]) ? "yes" : "no");
    printf("exec'd: parent unchanged: %s\n", getppid() == atoi(argv[3]) ? "yes" : "no");
    printf("exec'd: fd 20 (no FD_CLOEXEC) open: %s, flags %d\n", fcntl(20, F_GETFD) >= 0 ? "yes" : "no",
           fcntl(20, F_GETFD));
    show("exec'd: fcntl(21 dup3 O_CLOEXEC, F_GETFD)", fcntl(21, F_GETFD));
    show("exec'd: fcntl(22 FD_CLOEXEC, F_GETFD)", fcntl(22, F_GETFD));
    show("exec'd: write to fd 20", write(20, "kept", 4));
    struct sigaction sa;
    sigaction(SIGUSR1, NULL, &sa);
    printf("exec'd: SIGUSR1 (was caught) is SIG_DFL: %s\n", sa.sa_handler == SIG_DFL ? "yes" : "no");
    sigaction(SIGUSR2, NULL, &sa);
    printf("exec'd: SIGUSR2 (was ignored) is SIG_IGN: %s\n", sa.sa_handler == SIG_IGN ? "yes" : "no");
    sigaction(SIGPIPE, NULL, &sa);
    printf("exec'd: SIGPIPE (was caught) is SIG_DFL: %s, flags cleared: %s\n",
           sa.sa_handler == SIG_DFL ? "yes" : "no", (sa.sa_flags & (SA_RESTART | SA_ONSTACK)) == 0 ? "yes" : "no");
    sigset_t m, pend;
    sigprocmask(SIG_BLOCK, NULL, &m);
    printf("exec'd: mask kept: SIGHUP %d SIGWINCH %d SIGUSR1 %d\n", sigismember(&m, SIGHUP),
           sigismember(&m, SIGWINCH), sigismember(&m, SIGUSR1));
    sigpending(&pend);
    printf("exec'd: SIGWINCH still pending: %d\n", sigismember(&pend, SIGWINCH));
    stack_t ss;
    sigaltstack(NULL, &ss);
    printf("exec'd: sigaltstack disabled: %s\n", ss.ss_flags == SS_DISABLE ? "yes" : "no");
    mode_t old = umask(0);
    printf("exec'd: umask 0%o\n", old);
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) {
        const char *base = strrchr(cwd, '/');
        printf("exec'd: cwd basename %s\n", base ? base + 1 : cwd);
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    printf("exec'd: RLIMIT_NOFILE %ld\n", (long)rl.rlim_cur);
    char comm[17] = {0}, want[16] = {0};
    prctl(PR_GET_NAME, comm, 0, 0, 0);
    const char *base = strrchr(argv[0], '/');
    strncpy(want, base ? base + 1 : argv[0], 15);
    printf("exec'd: comm is the new file's name: %s\n", strcmp(comm, want) == 0 ? "yes" : "no");
    return 0;
}

static int mode_shebang(int argc, char **argv)
{
    printf("script: argc %d, argv[0] is an absolute path: %s\n", argc, argv[0][0] == '/' ? "yes" : "no");
    for (int i = 1; i < argc; i++)
        printf("script: argv[%d] = %s\n", i, argv[i]);
    return 0;
}

/* argv[0] made absolute (the exec tests run from other directories). */
static const char *absolute(const char *path)
{
    static char buf[4096];
    if (path[0] == '/' || !getcwd(buf, sizeof buf - strlen(path) - 2))
        return path;
    strcat(buf, "/");
    strcat(buf, path);
    return buf;
}

int main(int argc, char **argv)
{
    self = absolute(argv[0]);
    if (argc >= 2) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (!strcmp(argv[1], "exec-check") && argc == 4)
            return mode_exec_check(argv);
        if (!strcmp(argv[1], "wait-fd") && argc == 3)
            return (unsigned char)get_byte(atoi(argv[2]));
        if (!strcmp(argv[1], "exit") && argc == 3)
            return atoi(argv[2]);
        if (!strcmp(argv[1], "shebang-arg"))
            return mode_shebang(argc, argv);
        printf("unknown mode %s\n", argv[1]);
        return 2;
    }
    test_init();
    test_fork();
    test_vfork();
    test_clone();
    test_exit_statuses();
    test_wait_errors();
    test_waitid();
    test_stop_continue();
    test_subreaper();
    test_zombies();
    test_pgrp_session();
    test_kill_groups();
    test_kill_permissions();
    test_exec_errors();
    test_exec_state();
    show_all_reaped();
    return 0;
}
