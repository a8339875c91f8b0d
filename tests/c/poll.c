/* poll, ppoll, select and pselect6 on pipes, in one process: readiness of each end, POLLHUP
 * at EOF, POLLERR without readers, POLLNVAL, timeouts (and nfds 0 as a sleep), the time
 * left written back by select and the raw ppoll/pselect6, argument errors, the temporary
 * signal mask of ppoll/pselect6 (a pending blocked signal makes them EINTR after the
 * handler ran with that mask), EINTR from a handler even with SA_RESTART (with the time
 * left and zeroed revents written back), and a wake-up by another thread writing to the
 * pipe. */
#include "proc_helpers.h"
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/time.h>

static void show_revents(const char *label, struct pollfd *fds, int n, long r)
{
    if (r < 0) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: %ld [", label, r);
    for (int i = 0; i < n; i++)
        printf("%s%#x", i ? " " : "", fds[i].revents);
    printf("]\n");
}

static int poll1(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    long r = poll(&p, 1, 0);
    return r < 0 ? -1 : p.revents;
}

static void readiness(void)
{
    section("pipe readiness");
    int p[2];
    make_pipe(p);
    struct pollfd fds[2] = {{p[0], POLLIN, 0}, {p[1], POLLOUT, 0}};
    show_revents("empty: read end POLLIN, write end POLLOUT", fds, 2, poll(fds, 2, 0));
    printf("write end asked 0xffff: %#x\n", poll1(p[1], (short)0xffff));
    printf("write end asked nothing: %#x\n", poll1(p[1], 0));
    write(p[1], "abc", 3);
    printf("read end with data asked 0xffff: %#x\n", poll1(p[0], (short)0xffff));
    show_revents("with data: both ready", fds, 2, poll(fds, 2, 0));
    struct pollfd twice[2] = {{p[0], POLLIN, 0}, {p[0], POLLIN, 0}};
    show_revents("the same fd twice counts twice", twice, 2, poll(twice, 2, 0));

    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char buf[4096] = {0};
    long total = 3;
    while (write(p[1], buf, sizeof buf) > 0)
        total += sizeof buf;
    printf("full pipe: write end POLLOUT: %#x\n", poll1(p[1], POLLOUT));
    while (total > 0) {
        long n = read(p[0], buf, sizeof buf);
        if (n <= 0)
            break;
        total -= n;
    }
    printf("drained: read end %#x, write end %#x\n", poll1(p[0], POLLIN), poll1(p[1], POLLOUT));

    write(p[1], "x", 1);
    close(p[1]);
    printf("EOF with data left: %#x\n", poll1(p[0], POLLIN));
    read(p[0], buf, 1);
    printf("EOF, empty: %#x\n", poll1(p[0], POLLIN));
    printf("EOF, asked nothing: %#x\n", poll1(p[0], 0));
    close(p[0]);

    make_pipe(p);
    close(p[0]);
    printf("write end without readers, POLLOUT: %#x\n", poll1(p[1], POLLOUT));
    printf("write end without readers, POLLIN: %#x\n", poll1(p[1], POLLIN));
    close(p[1]);
}

static void nval(void)
{
    section("POLLNVAL and bad arguments");
    int p[2];
    make_pipe(p);
    int closed = dup(p[0]);
    close(closed);
    int opath = open("/", O_PATH);
    struct pollfd fds[4] = {{-1, POLLIN, 0x55}, {closed, POLLIN, 0x55}, {p[1], POLLOUT, 0x55},
                            {opath, POLLIN, 0x55}};
    show_revents("negative, closed, ready, O_PATH", fds, 4, poll(fds, 4, 0));
    printf("fields kept: fd %d events %#x\n", fds[0].fd == -1, fds[1].events);
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    show("poll nfds = RLIMIT_NOFILE + 1", syscall(SYS_poll, NULL, (unsigned long)rl.rlim_cur + 1, 0));
    show("poll nfds = 1, NULL", syscall(SYS_poll, NULL, 1, 0));
    show("poll nfds = 0, NULL", syscall(SYS_poll, NULL, 0, 0));
    close(p[0]);
    close(p[1]);
    close(opath);
}

static void timeouts(void)
{
    section("timeouts");
    int p[2];
    make_pipe(p);
    struct pollfd fd = {p[0], POLLIN, 0};
    long long t0 = now_ms();
    show_revents("poll empty pipe 30 ms", &fd, 1, poll(&fd, 1, 30));
    CHECK("poll waited its timeout", now_ms() - t0 >= 30);
    t0 = now_ms();
    show("poll nfds 0, 30 ms (a sleep)", poll(NULL, 0, 30));
    CHECK("nfds 0 slept", now_ms() - t0 >= 30);
    struct timespec ts = {0, 30000000};
    t0 = now_ms();
    show("raw ppoll nfds 0, 30 ms", syscall(SYS_ppoll, NULL, 0, &ts, NULL, 8));
    CHECK("ppoll slept", now_ms() - t0 >= 30);
    printf("ppoll timespec after the timeout: %ld %ld\n", (long)ts.tv_sec, ts.tv_nsec);
    close(p[0]);
    close(p[1]);
}

static void show_sets(const char *label, long r, fd_set *rd, fd_set *wr, fd_set *ex, int n)
{
    if (r < 0) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: %ld", label, r);
    fd_set *sets[3] = {rd, wr, ex};
    for (int s = 0; s < 3; s++) {
        printf(" %c{", "rwe"[s]);
        for (int fd = 0; fd < n; fd++)
            if (sets[s] && FD_ISSET(fd, sets[s]))
                printf(" %d", fd);
        printf(" }");
    }
    printf("\n");
}

static void both(fd_set *s, const int p[2])
{
    FD_ZERO(s);
    FD_SET(p[0], s);
    FD_SET(p[1], s);
}

static void selects(void)
{
    section("select");
    int p[2], q[2];
    make_pipe(p);
    make_pipe(q);
    /* fds are printed relative to p[0] so the numbering does not matter */
    int base = p[0];
    fd_set rd, wr, ex;
    struct timeval tv = {0, 0};
    both(&rd, p);
    both(&wr, p);
    both(&ex, p);
    long r = select(p[1] + 1, &rd, &wr, &ex, &tv);
    printf("empty pipe, timeout 0: %ld read %d/%d write %d/%d except %d/%d\n", r,
           FD_ISSET(p[0], &rd), FD_ISSET(p[1], &rd), FD_ISSET(p[0], &wr), FD_ISSET(p[1], &wr),
           FD_ISSET(p[0], &ex), FD_ISSET(p[1], &ex));
    write(p[1], "x", 1);
    both(&rd, p);
    both(&wr, p);
    tv = (struct timeval){5, 0};
    r = select(p[1] + 1, &rd, &wr, NULL, &tv);
    printf("with data: %ld read %d write %d\n", r, FD_ISSET(p[0], &rd), FD_ISSET(p[1], &wr));
    CHECK("timeval holds the time left (4.x s)", tv.tv_sec == 4 && tv.tv_usec > 0);

    /* the raw call (glibc's wrapper checks and converts the timeval itself) */
    tv = (struct timeval){0, 1500000};
    FD_ZERO(&wr);
    FD_SET(p[1], &wr);
    show("raw: usec 1500000 is accepted", syscall(SYS_select, p[1] + 1, NULL, &wr, NULL, &tv));
    CHECK("and normalised (1.x s left)", tv.tv_sec == 1);
    tv = (struct timeval){1, -1000000};
    show("raw: sec 1 usec -1000000 (zero)", syscall(SYS_select, p[1] + 1, NULL, &wr, NULL, &tv));
    printf("a zero timeout is not written back: %ld %ld\n", (long)tv.tv_sec, (long)tv.tv_usec);
    tv = (struct timeval){0, -1};
    show("raw: usec -1", syscall(SYS_select, p[1] + 1, NULL, &wr, NULL, &tv));
    tv = (struct timeval){-1, 0};
    show("raw: sec -1", syscall(SYS_select, p[1] + 1, NULL, &wr, NULL, &tv));
    tv = (struct timeval){5, 0};
    show("raw: ready", syscall(SYS_select, p[1] + 1, NULL, &wr, NULL, &tv));
    CHECK("raw timeval holds the time left (4.x s)", tv.tv_sec == 4 && tv.tv_usec > 0);
    tv = (struct timeval){0, 0};
    show("nfds -1", syscall(SYS_select, -1, NULL, NULL, NULL, &tv));

    int closed = dup(p[0]);
    close(closed);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    FD_SET(closed, &rd);
    tv = (struct timeval){5, 0};
    show("raw: a closed fd in the set", syscall(SYS_select, closed + 1, &rd, NULL, NULL, &tv));
    printf("sets untouched: %d %d\n", FD_ISSET(p[0], &rd), FD_ISSET(closed, &rd));
    CHECK("time left written even on EBADF", tv.tv_sec == 4);
    show("bad set pointer", syscall(SYS_select, p[1] + 1, (void *)8, NULL, NULL, NULL));
    show("bad timeval pointer", syscall(SYS_select, p[1] + 1, NULL, NULL, NULL, (void *)8));

    /* bits at or above nfds in the last word are cleared, later words left alone */
    unsigned long words[2] = {(1ul << p[0]) | (1ul << 63), 1ul};
    tv = (struct timeval){0, 0};
    r = syscall(SYS_select, p[0] + 1, words, NULL, NULL, &tv);
    printf("bits past nfds: %ld word0 %#lx word1 %#lx\n", r, words[0] >> base, words[1]);

    /* EOF, a broken write end, O_PATH */
    close(q[0]);
    int opath = open("/", O_PATH);
    int w = q[1];
    FD_ZERO(&rd); FD_ZERO(&wr); FD_ZERO(&ex);
    FD_SET(w, &rd); FD_SET(w, &wr); FD_SET(w, &ex);
    FD_SET(opath, &rd); FD_SET(opath, &wr); FD_SET(opath, &ex);
    int n = (w > opath ? w : opath) + 1;
    tv = (struct timeval){0, 0};
    r = select(n, &rd, &wr, &ex, &tv);
    printf("broken write end: read %d write %d except %d; O_PATH: read %d write %d except %d; total %ld\n",
           FD_ISSET(w, &rd), FD_ISSET(w, &wr), FD_ISSET(w, &ex), FD_ISSET(opath, &rd),
           FD_ISSET(opath, &wr), FD_ISSET(opath, &ex), r);
    char c;
    read(p[0], &c, 1);
    close(p[1]);
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    tv = (struct timeval){0, 0};
    printf("read end at EOF: %d in set %d\n", select(p[0] + 1, &rd, NULL, NULL, &tv), FD_ISSET(p[0], &rd));

    make_pipe(q);
    FD_ZERO(&rd);
    FD_SET(q[0], &rd);
    tv = (struct timeval){0, 20000};
    long long t0 = now_ms();
    r = syscall(SYS_select, q[0] + 1, &rd, NULL, NULL, &tv);
    printf("raw: timeout 20 ms: %ld, set cleared %d, timeval %ld %ld\n", r, !FD_ISSET(q[0], &rd),
           (long)tv.tv_sec, (long)tv.tv_usec);
    CHECK("select waited", now_ms() - t0 >= 20);
    close(q[0]);
    close(q[1]);
    close(p[0]);
    close(opath);
}

static void masks(void)
{
    section("ppoll and pselect6 signal masks");
    int p[2];
    make_pipe(p);
    sigset_t block1, only2;
    start_mask_probe(&block1, &only2);

    struct timespec ts = {0, -1};
    struct pollfd fd = {p[0], POLLIN, 0};
    show("raw ppoll bad timespec", syscall(SYS_ppoll, &fd, 1, &ts, NULL, 8));
    ts = (struct timespec){0, 0};
    show("raw ppoll sigsetsize 3", syscall(SYS_ppoll, &fd, 1, &ts, &only2, 3));
    show("raw ppoll NULL mask, sigsetsize 3", syscall(SYS_ppoll, &fd, 1, &ts, NULL, 3));
    show("raw ppoll bad mask pointer", syscall(SYS_ppoll, &fd, 1, &ts, (void *)8, 8));

    raise(SIGUSR1);
    report_mask("blocked and pending");
    show("ppoll with USR1 unblocked", ppoll(&fd, 1, NULL, &only2));
    report_mask("after ppoll");

    raise(SIGUSR1);
    struct pollfd wfd = {p[1], POLLOUT, 0};
    show("ppoll ready, USR1 unblocked and pending", ppoll(&wfd, 1, NULL, &only2));
    report_mask("readiness wins");
    show("ppoll with USR1 still blocked, timeout 0", ppoll(&fd, 1, &ts, &block1));
    report_mask("still pending");

    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    struct { const sigset_t *set; size_t size; } pack = {&only2, 8};
    ts = (struct timespec){5, 0};
    show("raw pselect6 with USR1 unblocked", syscall(SYS_pselect6, p[0] + 1, &rd, NULL, NULL, &ts, &pack));
    report_mask("after pselect6");
    CHECK("pselect6 wrote the time left", ts.tv_sec == 4);
    printf("read set after EINTR untouched: %d\n", FD_ISSET(p[0], &rd));

    pack.size = 3;
    show("raw pselect6 sigsetsize 3", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &pack));
    pack.set = NULL;
    show("raw pselect6 NULL mask, size 3", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, &pack));
    show("raw pselect6 bad argpack", syscall(SYS_pselect6, 0, NULL, NULL, NULL, &ts, (void *)8));
    ts = (struct timespec){5, 0};
    fd_set wr;
    FD_ZERO(&wr);
    FD_SET(p[1], &wr);
    show("raw pselect6 ready", syscall(SYS_pselect6, p[1] + 1, NULL, &wr, NULL, &ts, NULL));
    CHECK("timespec holds the time left (4.x s)", ts.tv_sec == 4 && ts.tv_nsec > 0);
    sigprocmask(SIG_SETMASK, &only2, NULL); /* delivers the pending USR1 */
    report_mask("unblocked at last");
    sigprocmask(SIG_SETMASK, &block1, NULL);
    close(p[0]);
    close(p[1]);
}

static volatile sig_atomic_t alarms, usr2_blocked_in_alarm;

static void on_alarm(int sig)
{
    (void)sig;
    sigset_t cur;
    sigprocmask(SIG_BLOCK, NULL, &cur);
    usr2_blocked_in_alarm = sigismember(&cur, SIGUSR2);
    alarms++;
}

static void interrupted(void)
{
    section("interrupted by a handler");
    set_action(SIGALRM, on_alarm, SA_RESTART); /* poll and select are never restarted */
    int p[2];
    make_pipe(p);
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    struct pollfd fd = {p[0], POLLIN, 0x55};
    show_revents("poll forever", &fd, 1, poll(&fd, 1, -1));
    printf("alarms %d, revents zeroed %d\n", (int)alarms, fd.revents == 0);
    setitimer(ITIMER_REAL, &it, NULL);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    show("raw select forever", syscall(SYS_select, p[0] + 1, &rd, NULL, NULL, NULL));
    printf("alarms %d, set untouched %d\n", (int)alarms, FD_ISSET(p[0], &rd));

    /* the time left is written back on EINTR too */
    struct timeval tv = {5, 0};
    setitimer(ITIMER_REAL, &it, NULL);
    show("raw select 5 s", syscall(SYS_select, p[0] + 1, &rd, NULL, NULL, &tv));
    CHECK("select's timeval holds the time left (4.x s)", tv.tv_sec == 4);
    struct timespec ts = {5, 0};
    setitimer(ITIMER_REAL, &it, NULL);
    show("raw ppoll 5 s", syscall(SYS_ppoll, &fd, 1, &ts, NULL, 8));
    CHECK("ppoll's timespec holds the time left (4.x s)", ts.tv_sec == 4);
    ts = (struct timespec){5, 0};
    setitimer(ITIMER_REAL, &it, NULL);
    show("raw pselect6 5 s", syscall(SYS_pselect6, p[0] + 1, &rd, NULL, NULL, &ts, NULL));
    CHECK("pselect6's timespec holds the time left (4.x s)", ts.tv_sec == 4);
    printf("alarms %d\n", (int)alarms);

    /* a handler interrupting ppoll runs with the temporary mask; the old one returns after */
    sigset_t only2, cur;
    sigemptyset(&only2);
    sigaddset(&only2, SIGUSR2);
    setitimer(ITIMER_REAL, &it, NULL);
    show("ppoll forever, USR2 blocked for the call", ppoll(&fd, 1, NULL, &only2));
    sigprocmask(SIG_BLOCK, NULL, &cur);
    printf("alarms %d, USR2 blocked in the handler %d, after %d\n", (int)alarms,
           (int)usr2_blocked_in_alarm, sigismember(&cur, SIGUSR2));
    close(p[0]);
    close(p[1]);
}

static void woken(void)
{
    section("woken by another thread");
    int p[2];
    make_pipe(p);
    pthread_t t;
    pthread_create(&t, NULL, late_writer, &p[1]);
    struct pollfd fd = {p[0], POLLIN, 0};
    show_revents("poll forever", &fd, 1, poll(&fd, 1, -1));
    pthread_join(t, NULL);
    char c;
    read(p[0], &c, 1);
    pthread_create(&t, NULL, late_writer, &p[1]);
    fd_set rd;
    FD_ZERO(&rd);
    FD_SET(p[0], &rd);
    struct timeval tv = {30, 0};
    show("raw select 30 s", syscall(SYS_select, p[0] + 1, &rd, NULL, NULL, &tv));
    printf("in set %d\n", FD_ISSET(p[0], &rd));
    pthread_join(t, NULL);
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    test_init();
    readiness();
    nval();
    timeouts();
    selects();
    masks();
    interrupted();
    woken();
    return 0;
}
