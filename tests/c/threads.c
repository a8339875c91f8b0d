/* Threads: pthread_create/join (64 at once), thread ids, TLS, mutexes and condition
 * variables (futex wait/wake), semaphores, barriers, detached threads, pthread_exit of a
 * worker and of the main thread, exit_group from a thread while others block, signals to
 * one thread (pthread_kill, tgkill) and per-thread masks, pthread_cancel of a blocked
 * thread, a raw clone(CLONE_THREAD|CLONE_CHILD_CLEARTID) waited for with a futex, robust
 * mutexes whose owner dies, fork from a multi-threaded process (and from a non-main thread),
 * and execve from a non-main thread.
 *
 * Output never depends on scheduling: every line is a count, a sum or a relation checked
 * after the threads involved have been joined or have reported through a pipe. */
#define STATUS_BY_NUMBER
#include "proc_helpers.h"
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/prctl.h>

static const char *self;

static pid_t gettid_(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static void check_rc(const char *what, int rc)
{
    if (rc != 0)
        printf("%s: FAILED %s\n", what, ename(rc));
}

/* ------------------------------------------------------------------ create / join */

#define NTHREADS 64

struct worker {
    int index;
    pid_t tid, pid;
    long result;
    void *tls_addr;
    int tls_ok;
};

static __thread int tls_value = 1;

static void *compute(void *p)
{
    struct worker *w = p;
    w->tid = gettid_();
    w->pid = getpid();
    tls_value = w->index * 10;
    w->tls_addr = &tls_value;
    long sum = 0;
    for (int i = 0; i <= (w->index + 1) * 1000; i++)
        sum += i;
    sched_yield();
    w->tls_ok = tls_value == w->index * 10;
    w->result = sum;
    return (void *)(long)(w->index + 1000);
}

static void test_create_join(void)
{
    section("create and join");
    static struct worker w[NTHREADS];
    pthread_t th[NTHREADS];
    int created = 0;
    for (int i = 0; i < NTHREADS; i++) {
        w[i].index = i;
        if (pthread_create(&th[i], NULL, compute, &w[i]) == 0)
            created++;
    }
    printf("created %d threads\n", created);
    long total = 0, rets = 0;
    int distinct = 1, same_pid = 1, not_main = 1, tls_ok = 1, tls_distinct = 1;
    for (int i = 0; i < NTHREADS; i++) {
        void *ret = NULL;
        check_rc("pthread_join", pthread_join(th[i], &ret));
        rets += (long)ret;
        total += w[i].result;
    }
    for (int i = 0; i < NTHREADS; i++) {
        same_pid &= w[i].pid == getpid();
        not_main &= w[i].tid != getpid() && w[i].tid > 0;
        tls_ok &= w[i].tls_ok;
        for (int j = 0; j < i; j++) {
            distinct &= w[i].tid != w[j].tid;
            tls_distinct &= w[i].tls_addr != w[j].tls_addr;
        }
    }
    printf("sum of results %ld, sum of return values %ld\n", total, rets);
    CHECK("getpid is the same in every thread", same_pid);
    CHECK("every thread's gettid differs from getpid", not_main);
    CHECK("thread ids are distinct", distinct);
    CHECK("each thread kept its own __thread value", tls_ok);
    CHECK("__thread variables live at distinct addresses", tls_distinct);
    printf("main thread's __thread value untouched: %d\n", tls_value);
    CHECK("main thread: gettid == getpid", gettid_() == getpid());
    int rc = pthread_join(pthread_self(), NULL);
    printf("pthread_join(self): %s\n", rc ? ename(rc) : "0");
}

/* ------------------------------------------------------------------ mutex / condvar */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int turn, rounds_done;
#define ROUNDS 200

static void *pong(void *arg)
{
    (void)arg;
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&mu);
        while (turn != 1)
            pthread_cond_wait(&cv, &mu);
        turn = 0;
        rounds_done++;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static long counter;
static atomic_long acounter;

static void *contend(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&mu);
        counter++;
        pthread_mutex_unlock(&mu);
        atomic_fetch_add(&acounter, 1);
    }
    return NULL;
}

static sem_t sem_items;
static int produced[100];

static void *producer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++) {
        produced[i] = i * i;
        sem_post(&sem_items);
    }
    return NULL;
}

static pthread_barrier_t barrier;
static atomic_int before_barrier, serial_count;
static int saw_all;

static void *at_barrier(void *arg)
{
    (void)arg;
    atomic_fetch_add(&before_barrier, 1);
    int r = pthread_barrier_wait(&barrier);
    if (r == PTHREAD_BARRIER_SERIAL_THREAD)
        atomic_fetch_add(&serial_count, 1);
    if (atomic_load(&before_barrier) != 8)
        saw_all = -1;
    return NULL;
}

static void test_sync(void)
{
    section("mutexes, condition variables, semaphores, barriers");
    pthread_t t;
    pthread_create(&t, NULL, pong, NULL);
    for (int i = 0; i < ROUNDS; i++) {
        pthread_mutex_lock(&mu);
        turn = 1;
        pthread_cond_signal(&cv);
        while (turn != 0)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
    }
    pthread_join(t, NULL);
    printf("condvar ping-pong rounds: %d\n", rounds_done);

    pthread_t c[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&c[i], NULL, contend, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(c[i], NULL);
    printf("contended mutex counter: %ld, atomic counter: %ld\n", counter, (long)atomic_load(&acounter));

    sem_init(&sem_items, 0, 0);
    pthread_create(&t, NULL, producer, NULL);
    long sum = 0;
    for (int i = 0; i < 100; i++) {
        sem_wait(&sem_items);
        sum += produced[i];
    }
    pthread_join(t, NULL);
    printf("semaphore consumer sum: %ld\n", sum);
    show("sem_trywait on an empty semaphore", sem_trywait(&sem_items));
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 20000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    show("sem_timedwait 20ms on an empty semaphore", sem_timedwait(&sem_items, &ts));
    sem_destroy(&sem_items);

    pthread_mutex_lock(&mu);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += 20000000;
    if (ts.tv_nsec >= 1000000000) ts.tv_sec++, ts.tv_nsec -= 1000000000;
    show("pthread_cond_clockwait 20ms (returns the error)", pthread_cond_clockwait(&cv, &mu, CLOCK_MONOTONIC, &ts));
    show("pthread_mutex_trylock on a held mutex (returns the error)", pthread_mutex_trylock(&mu));
    pthread_mutex_unlock(&mu);

    pthread_barrier_init(&barrier, NULL, 8);
    pthread_t b[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&b[i], NULL, at_barrier, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(b[i], NULL);
    printf("barrier: serial threads %d, everyone saw all 8 arrive: %s\n", atomic_load(&serial_count),
           saw_all == 0 ? "yes" : "no");
    pthread_barrier_destroy(&barrier);
}

/* ------------------------------------------------------------------ exits */

static int gate[2];

static void *exit_early(void *arg)
{
    (void)arg;
    pthread_exit((void *)77L);
}

static void *keeps_running(void *arg)
{
    (void)arg;
    char c;
    read(gate[0], &c, 1);   /* released by main after the other thread is gone */
    long sum = 0;
    for (int i = 0; i < 100000; i++)
        sum += i % 7;
    return (void *)sum;
}

static void *blocks_forever(void *arg)
{
    int fd = (int)(long)arg;
    char c;
    for (;;)
        read(fd, &c, 1);
    return NULL;
}

static void *calls_exit(void *arg)
{
    (void)arg;
    exit(7);
}

static void *reports_after_main_exits(void *arg)
{
    int fd = (int)(long)arg;
    struct timespec t = {0, 20000000};
    nanosleep(&t, NULL);
    write(fd, "alive", 5);
    return NULL;   /* the last thread: the process exits 0 */
}

static void test_exits(void)
{
    section("thread exits");
    pipe(gate);
    pthread_t a, b;
    pthread_create(&a, NULL, exit_early, NULL);
    pthread_create(&b, NULL, keeps_running, NULL);
    void *ra = NULL, *rb = NULL;
    pthread_join(a, &ra);
    printf("pthread_exit value: %ld\n", (long)ra);
    write(gate[1], "g", 1);
    pthread_join(b, &rb);
    printf("the other thread kept running and returned %ld\n", (long)rb);
    close(gate[0]);
    close(gate[1]);

    /* exit() from one thread ends the process while others block. */
    pid_t pid = fork_or_die();
    if (pid == 0) {
        int p[2];
        pipe(p);
        pthread_t t1, t2, t3;
        pthread_create(&t1, NULL, blocks_forever, (void *)(long)p[0]);
        pthread_create(&t2, NULL, blocks_forever, (void *)(long)p[0]);
        pthread_create(&t3, NULL, calls_exit, NULL);
        pthread_join(t1, NULL);   /* never returns */
        _exit(99);
    }
    show_status("child whose thread called exit(7) while others blocked", reap(pid));

    /* raw exit_group from a thread */
    pid = fork_or_die();
    if (pid == 0) {
        int p[2];
        pipe(p);
        pthread_t t1;
        pthread_create(&t1, NULL, blocks_forever, (void *)(long)p[0]);
        syscall(SYS_exit_group, 9);
        _exit(99);
    }
    show_status("child calling exit_group(9) with a blocked thread", reap(pid));

    /* The main thread leaves with pthread_exit; the process lives on until the last thread. */
    int rep[2];
    pipe(rep);
    pid = fork_or_die();
    if (pid == 0) {
        close(rep[0]);
        pthread_t t;
        pthread_create(&t, NULL, reports_after_main_exits, (void *)(long)rep[1]);
        pthread_exit(NULL);
    }
    close(rep[1]);
    char buf[16] = {0};
    ssize_t n = read(rep[0], buf, sizeof buf - 1);
    printf("worker after the main thread's pthread_exit wrote: %s (%zd)\n", n > 0 ? buf : "-", n);
    show_status("process after its last thread returned", reap(pid));
    close(rep[0]);

    /* Raw exit of the main thread only (SYS_exit), a thread finishes with exit code 3. */
    pid = fork_or_die();
    if (pid == 0) {
        pthread_t t;
        pthread_create(&t, NULL, calls_exit, NULL);   /* exit(7) after the leader is gone */
        syscall(SYS_exit, 0);
    }
    show_status("a thread called exit(7), the leader left with SYS_exit", reap(pid));
}

/* ------------------------------------------------------------------ signals to threads */

static volatile pid_t handled_on;
static volatile int handled_code, handled_count;
static int wake[2];

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    handled_on = gettid_();
    handled_code = si->si_code;
    handled_count++;
    write(wake[1], "w", 1);
}

struct target {
    pid_t tid;
    int unblock_usr1;
    sem_t ready;
};

static void *signal_target(void *p)
{
    struct target *t = p;
    t->tid = gettid_();
    if (t->unblock_usr1) {
        sigset_t m;
        sigemptyset(&m);
        sigaddset(&m, SIGUSR1);
        pthread_sigmask(SIG_UNBLOCK, &m, NULL);
    }
    sem_post(&t->ready);
    char c;
    while (read(wake[0], &c, 1) != 1)
        ;   /* EINTR or not: the handler's byte ends the wait */
    return NULL;
}

static void *sigmask_inherit(void *arg)
{
    (void)arg;
    sigset_t m;
    pthread_sigmask(SIG_BLOCK, NULL, &m);
    return (void *)(long)(sigismember(&m, SIGUSR1) * 2 + sigismember(&m, SIGUSR2));
}

static void *cancel_me(void *arg)
{
    int fd = (int)(long)arg;
    char c;
    read(fd, &c, 1);   /* a cancellation point */
    return (void *)1L;
}

static void test_thread_signals(void)
{
    section("signals and threads");
    pipe(wake);
    struct sigaction sa = {0};
    sa.sa_sigaction = on_usr1;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGUSR1, &sa, NULL);

    /* pthread_kill: the handler runs on the target thread. */
    struct target tg = {0};
    sem_init(&tg.ready, 0, 0);
    pthread_t t;
    pthread_create(&t, NULL, signal_target, &tg);
    sem_wait(&tg.ready);
    handled_count = 0;
    check_rc("pthread_kill", pthread_kill(t, SIGUSR1));
    pthread_join(t, NULL);
    printf("pthread_kill: handled %d time(s), on the target thread: %s, si_code SI_TKILL: %s\n", handled_count,
           handled_on == tg.tid ? "yes" : "no", handled_code == SI_TKILL ? "yes" : "no");
    show("pthread_kill with signal 0 to a live thread", pthread_kill(pthread_self(), 0));

    /* A process-directed signal goes to the one thread that does not block it. */
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &m, NULL);
    struct target tg2 = {0};
    tg2.unblock_usr1 = 1;
    sem_init(&tg2.ready, 0, 0);
    pthread_create(&t, NULL, signal_target, &tg2);
    sem_wait(&tg2.ready);
    handled_count = 0;
    kill(getpid(), SIGUSR1);
    pthread_join(t, NULL);
    printf("kill(getpid()): handled %d time(s), by the thread that unblocked it: %s, si_code SI_USER: %s\n",
           handled_count, handled_on == tg2.tid ? "yes" : "no", handled_code == SI_USER ? "yes" : "no");
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    printf("main thread still blocks SIGUSR1: %d\n", sigismember(&cur, SIGUSR1));

    /* tgkill to a thread that blocks the signal: pending on that thread only. */
    handled_count = 0;
    syscall(SYS_tgkill, getpid(), gettid_(), SIGUSR1);
    sigset_t pend;
    sigpending(&pend);
    printf("tgkill to ourselves while blocked: handled %d, pending %d\n", handled_count, sigismember(&pend, SIGUSR1));
    pthread_sigmask(SIG_UNBLOCK, &m, NULL);
    char c;
    read(wake[0], &c, 1);
    printf("after unblocking: handled %d on the main thread: %s\n", handled_count, handled_on == gettid_() ? "yes" : "no");

    /* New threads inherit the creator's mask. */
    sigaddset(&m, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &m, NULL);
    void *bits;
    pthread_create(&t, NULL, sigmask_inherit, NULL);
    pthread_join(t, &bits);
    printf("new thread's mask (2=USR1, 1=USR2): %ld\n", (long)bits);
    pthread_sigmask(SIG_UNBLOCK, &m, NULL);
    signal(SIGUSR1, SIG_DFL);

    /* pthread_cancel of a thread blocked in read() */
    int p[2];
    pipe(p);
    pthread_create(&t, NULL, cancel_me, (void *)(long)p[0]);
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    check_rc("pthread_cancel", pthread_cancel(t));
    void *ret = NULL;
    pthread_join(t, &ret);
    printf("cancelled thread returned PTHREAD_CANCELED: %s\n", ret == PTHREAD_CANCELED ? "yes" : "no");
    close(p[0]);
    close(p[1]);
    close(wake[0]);
    close(wake[1]);
}

/* ------------------------------------------------------------------ raw clone */

static volatile int raw_result;
static volatile pid_t raw_tid_seen;

static int raw_thread(void *arg)
{
    /* No TLS of its own: raw system calls and plain stores only. */
    long n = (long)arg, sum = 0;
    for (long i = 1; i <= n; i++)
        sum += i;
    raw_tid_seen = (pid_t)syscall(SYS_gettid);
    raw_result = (int)sum;
    struct timespec t = {0, 10000000};
    syscall(SYS_nanosleep, &t, NULL);   /* the parent is (most likely) already waiting */
    syscall(SYS_exit, 0);
    return 0;
}

static void test_raw_clone(void)
{
    section("raw clone with CLONE_CHILD_CLEARTID");
    size_t size = 256 * 1024;
    char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    static volatile pid_t ctid;
    pid_t ptid = 0;
    int flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
    ctid = -1;
    int tid = clone(raw_thread, stack + size, flags, (void *)100L, &ptid, NULL, &ctid);
    CHECK("clone returned a tid other than ours", tid > 0 && tid != getpid());
    CHECK("CLONE_PARENT_SETTID stored the tid", ptid == tid);
    /* ctid is -1 until the child clears it on exit; futex-wait on it as pthread_join does. */
    for (;;) {
        pid_t v = ctid;
        if (v == 0)
            break;
        syscall(SYS_futex, &ctid, FUTEX_WAIT, v, NULL, NULL, 0);
    }
    printf("woken by the kernel's CLONE_CHILD_CLEARTID futex wake: ctid is %d\n", (int)ctid);
    printf("thread's result %d, its gettid was the clone return: %s\n", raw_result, raw_tid_seen == tid ? "yes" : "no");
    /* The tid is released a little after the CLEARTID wake: poll until tgkill says ESRCH. */
    int gone = 0;
    for (int i = 0; i < 2000 && !gone; i++) {
        gone = syscall(SYS_tgkill, getpid(), tid, 0) == -1 && errno == ESRCH;
        if (!gone)
            sched_yield();
    }
    printf("tgkill(exited thread, 0) reaches ESRCH: %s\n", gone ? "yes" : "no");
    munmap(stack, size);
}

/* ------------------------------------------------------------------ detached, names, robust */

static sem_t detached_done;
static volatile int detached_ran;

static void *detached(void *arg)
{
    (void)arg;
    detached_ran = 1;
    sem_post(&detached_done);
    return NULL;
}

static void *named(void *arg)
{
    char buf[17] = {0};
    prctl(PR_SET_NAME, (char *)arg, 0, 0, 0);
    prctl(PR_GET_NAME, buf, 0, 0, 0);
    return (void *)(long)(strcmp(buf, arg) == 0);
}

static pthread_mutex_t robust;

static void *die_holding(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&robust);
    return NULL;   /* exits while holding it: the kernel walks the robust list */
}

static void test_misc(void)
{
    section("detached threads, names, robust mutexes");
    sem_init(&detached_done, 0, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t t;
    check_rc("pthread_create detached", pthread_create(&t, &attr, detached, NULL));
    sem_wait(&detached_done);
    printf("detached thread ran: %d\n", detached_ran);
    pthread_attr_destroy(&attr);

    char before[17] = {0}, after[17] = {0};
    prctl(PR_GET_NAME, before, 0, 0, 0);
    void *ok;
    pthread_create(&t, NULL, named, "worker-3");
    pthread_join(t, &ok);
    prctl(PR_GET_NAME, after, 0, 0, 0);
    printf("thread renamed itself: %s; main thread's name unchanged: %s\n", ok ? "yes" : "no",
           strcmp(before, after) == 0 ? "yes" : "no");

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&robust, &ma);
    pthread_create(&t, NULL, die_holding, NULL);
    pthread_join(t, NULL);
    int r = pthread_mutex_lock(&robust);
    printf("lock after the owner died: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : r ? ename(r) : "0");
    if (r == EOWNERDEAD)
        show("pthread_mutex_consistent", pthread_mutex_consistent(&robust));
    pthread_mutex_unlock(&robust);
    show("lock again", pthread_mutex_lock(&robust));
    pthread_mutex_unlock(&robust);
    pthread_mutex_destroy(&robust);

    /* The same across processes: a shared robust mutex, owner process killed. */
    pthread_mutex_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(shared, &ma);
    int p[2];
    pipe(p);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        pthread_mutex_lock(shared);
        write(p[1], "l", 1);
        for (;;)
            pause();
    }
    char c;
    read(p[0], &c, 1);
    kill(pid, SIGKILL);
    show_status("owner process", reap(pid));
    r = pthread_mutex_lock(shared);
    printf("lock after the owner process died: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : r ? ename(r) : "0");
    pthread_mutex_consistent(shared);
    pthread_mutex_unlock(shared);

    /* Again, with the owner killed while it runs application code (not in a call). */
    pid = fork_or_die();
    if (pid == 0) {
        pthread_mutex_lock(shared);
        write(p[1], "l", 1);
        for (;;)
            ;
    }
    read(p[0], &c, 1);
    kill(pid, SIGKILL);
    show_status("spinning owner process", reap(pid));
    r = pthread_mutex_lock(shared);
    printf("lock after the spinning owner died: %s\n", r == EOWNERDEAD ? "EOWNERDEAD" : r ? ename(r) : "0");
    pthread_mutex_consistent(shared);
    pthread_mutex_unlock(shared);
    pthread_mutexattr_destroy(&ma);
    munmap(shared, 4096);
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------------------------ fork and exec */

static int hold[2];
static volatile pid_t holder_tid;

static void *holder(void *arg)
{
    if (arg)
        holder_tid = gettid_();
    char c;
    read(hold[0], &c, 1);
    return NULL;
}

static void *trivial(void *arg)
{
    return (void *)((long)arg + 1);
}

/* In a child forked from a multi-threaded process: only the forking thread exists. */
static int after_fork_checks(pid_t other_tid)
{
    int ok = gettid_() == getpid();
    ok &= syscall(SYS_tgkill, getpid(), other_tid, 0) == -1 && errno == ESRCH;
    pthread_t t;
    void *r = NULL;
    ok &= pthread_create(&t, NULL, trivial, (void *)41L) == 0;
    ok &= pthread_join(t, &r) == 0 && (long)r == 42;
    return ok ? 0 : 1;
}

static pid_t main_tid;

static void *forks(void *arg)
{
    (void)arg;
    pid_t pid = fork();
    if (pid == 0)
        _exit(after_fork_checks(main_tid));
    int st = reap(pid);
    return (void *)(long)st;
}

static void *execs(void *arg)
{
    char *pidarg = arg;
    execl(self, self, "after-exec", pidarg, (char *)NULL);
    return (void *)1L;
}

static void test_fork_exec(void)
{
    section("fork and exec with threads");
    pipe(hold);
    pthread_t h[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&h[i], NULL, holder, (void *)(long)(i == 0));
    main_tid = gettid_();
    while (!holder_tid)
        sched_yield();

    pid_t pid = fork_or_die();
    if (pid == 0)
        _exit(after_fork_checks(holder_tid));
    show_status("fork from the main thread of a 4-thread process (child has one thread)", reap(pid));

    pthread_t t;
    void *st;
    pthread_create(&t, NULL, forks, NULL);
    pthread_join(t, &st);
    show_status("fork from a non-main thread (child: that thread only, tid == pid)", (int)(long)st);

    for (int i = 0; i < 3; i++)
        write(hold[1], "x", 1);
    for (int i = 0; i < 3; i++)
        pthread_join(h[i], NULL);
    close(hold[0]);
    close(hold[1]);

    pid = fork_or_die();
    if (pid == 0) {
        char pidarg[16];
        snprintf(pidarg, sizeof pidarg, "%d", getpid());
        int p[2];
        pipe(p);
        pthread_t a, b;
        pthread_create(&a, NULL, blocks_forever, (void *)(long)p[0]);
        pthread_create(&b, NULL, execs, pidarg);
        pthread_join(b, NULL);   /* replaced by the exec */
        _exit(98);
    }
    show_status("execve from a non-main thread", reap(pid));
}

static int mode_after_exec(char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("after exec: pid unchanged: %s\n", getpid() == atoi(argv[2]) ? "yes" : "no");
    printf("after exec: gettid == getpid: %s\n", gettid_() == getpid() ? "yes" : "no");
    pthread_t t;
    void *r = NULL;
    pthread_create(&t, NULL, trivial, (void *)1L);
    pthread_join(t, &r);
    printf("after exec: threads work: %s\n", (long)r == 2 ? "yes" : "no");
    return 5;
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 3 && !strcmp(argv[1], "after-exec"))
        return mode_after_exec(argv);
    test_init();
    test_create_join();
    test_sync();
    test_exits();
    test_thread_signals();
    test_raw_clone();
    test_misc();
    test_fork_exec();
    return 0;
}
