/* POSIX message queues: mq_open's names, flags and attributes, priority order, O_NONBLOCK,
 * absolute timeouts, blocking across fork, signals (EINTR and SA_RESTART), mq_notify with
 * SIGEV_SIGNAL, poll/epoll readiness, the mqueue file system (/dev/mqueue: read, stat,
 * open(2), unlink(2)), unlink while open, permissions and limits. */
#include "common.h"
#include <dirent.h>
#include <mqueue.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#define MQUEUE_MAGIC 0x19800202

static char names[8][64];
static char mqdir[64] = "/dev/mqueue";

static const char *qname(int i) { return names[i]; }

static void reap(const char *label, pid_t p)
{
    int status;
    waitpid(p, &status, 0);
    printf("%s: exit %d\n", label, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void as_nobody(void)
{
    if (setgid(65534) || setuid(65534))
        printf("setuid failed\n");
}

static struct timespec in_ms(long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static void show_attr(const char *label, mqd_t q)
{
    struct mq_attr a;
    if (mq_getattr(q, &a) == -1) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: flags=%#lx maxmsg=%ld msgsize=%ld curmsgs=%ld\n", label, a.mq_flags,
           a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs);
}

static mqd_t make(int i, int oflag, long maxmsg, long msgsize)
{
    struct mq_attr a = {.mq_maxmsg = maxmsg, .mq_msgsize = msgsize};
    return mq_open(qname(i), O_CREAT | O_EXCL | oflag, 0600, maxmsg ? &a : NULL);
}

static void recv_show(const char *label, mqd_t q, size_t len)
{
    char buf[16384];
    unsigned prio = 99;
    ssize_t n = mq_receive(q, buf, len, &prio);
    if (n < 0)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        printf("%s: %zd [%.*s] prio %u\n", label, n, (int)n, buf, prio);
}

static int revents(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM};
    return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

/* The queue file's text with the pid column replaced by whether it is `pid`.  Read by a
 * child: closing a descriptor of the queue in the registered process itself would end
 * its registration (mqueue_flush_file). */
static void show_status_here(const char *label, int i, pid_t pid)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", mqdir, qname(i) + 1);
    const char *text = get_file(path);
    if (!text) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    const char *p = strstr(text, "NOTIFY_PID:");
    if (!p) {
        show_bytes(label, text, strlen(text));
        return;
    }
    long got = strtol(p + 11, NULL, 10);
    printf("%s: len %zu [%.*s] pid %s\n", label, strlen(text), (int)(p - text), text,
           got == 0 ? "0" : got == pid ? "owner" : "other");
}

static void show_status(const char *label, int i, pid_t pid)
{
    pid_t p = fork();
    if (p == 0) {
        show_status_here(label, i, pid);
        _exit(0);
    }
    waitpid(p, NULL, 0);
}

static void find_mqueue_fs(void)
{
    struct statfs s;
    if (statfs(mqdir, &s) == 0 && s.f_type == MQUEUE_MAGIC) {
        printf("mqueue fs: ok\n");
        return;
    }
    /* not mounted on this host: mount one privately (the same ipc namespace's queues) */
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        (mkdir("mqfs", 0755) && errno != EEXIST) || mount("mqueue", "mqfs", "mqueue", 0, NULL)) {
        printf("mqueue fs: FAILED errno=%s\n", ename(errno));
        return;
    }
    strcpy(mqdir, "mqfs");
    printf("mqueue fs: ok\n");
}

static void names_and_create(void)
{
    section("names");
    show("no slash", mq_open("x", O_RDWR));
    show("absent", mq_open(qname(0), O_RDWR));
    show("slash only", mq_open("/", O_RDWR | O_CREAT, 0600, NULL));
    show("inner slash", mq_open("/a/b", O_RDWR | O_CREAT, 0600, NULL));
    show("double slash", mq_open("//a", O_RDWR | O_CREAT, 0600, NULL));
    show("dot", mq_open("/.", O_RDWR | O_CREAT, 0600, NULL));
    show("dotdot", mq_open("/..", O_RDWR | O_CREAT, 0600, NULL));
    char longname[300] = "/";
    memset(longname + 1, 'q', 256);
    longname[257] = 0;
    show("256 chars", mq_open(longname, O_RDWR | O_CREAT, 0600, NULL));
    longname[256] = 0;
    int q = mq_open(longname, O_RDWR | O_CREAT | O_EXCL, 0600, NULL);
    show_ok("255 chars", q);
    mq_close(q);
    show("unlink 255", mq_unlink(longname));
    show("unlink absent", mq_unlink(longname));
    show("unlink slash", mq_unlink("/a/b"));

    section("create");
    mqd_t a = make(0, O_RDWR, 0, 0);
    show_ok("create", a);
    show_attr("defaults", a);
    show("cloexec", fcntl(a, F_GETFD));
    show("fd flags rdwr", fcntl(a, F_GETFL) & O_ACCMODE);
    struct stat st;
    if (fstat(a, &st) == 0)
        printf("fstat: reg %d mode %o size %ld nlink %ld\n", S_ISREG(st.st_mode),
               st.st_mode & 07777, (long)st.st_size, (long)st.st_nlink);
    show("excl again", mq_open(qname(0), O_RDWR | O_CREAT | O_EXCL, 0600, NULL));
    mqd_t b = mq_open(qname(0), O_RDWR | O_CREAT, 0600, NULL);
    show_ok("creat existing", b);
    mq_close(b);
    show("accmode 3", mq_open(qname(0), O_RDWR | O_WRONLY));
    struct mq_attr bad = {.mq_maxmsg = 0, .mq_msgsize = 10};
    show("maxmsg 0", mq_open(qname(1), O_RDWR | O_CREAT, 0600, &bad));
    bad.mq_maxmsg = 1, bad.mq_msgsize = -1;
    show("msgsize -1", mq_open(qname(1), O_RDWR | O_CREAT, 0600, &bad));
    bad.mq_maxmsg = 65537, bad.mq_msgsize = 1;
    show("maxmsg 65537", mq_open(qname(1), O_RDWR | O_CREAT, 0600, &bad));
    bad.mq_maxmsg = 1, bad.mq_msgsize = 16 * 1024 * 1024 + 1;
    show("msgsize 16M+1", mq_open(qname(1), O_RDWR | O_CREAT, 0600, &bad));
    bad.mq_maxmsg = 2, bad.mq_msgsize = 5;
    mqd_t c = mq_open(qname(1), O_WRONLY | O_CREAT | O_NONBLOCK, 0640, &bad);
    show_ok("create 2x5 nonblock", c);
    show_attr("2x5", c);
    show("fd flags", fcntl(c, F_GETFL) & (O_ACCMODE | O_NONBLOCK));
    mq_close(c);
    mq_close(a);
    show("unlink 1", mq_unlink(qname(1)));
}

static void attrs_and_messages(void)
{
    section("setattr");
    mqd_t q = mq_open(qname(0), O_RDWR);
    struct mq_attr n = {.mq_flags = O_NONBLOCK, .mq_maxmsg = 1, .mq_msgsize = 1}, o;
    show("setattr nonblock", mq_setattr(q, &n, &o));
    printf("old flags %#lx maxmsg %ld\n", o.mq_flags, o.mq_maxmsg);
    show_attr("after", q);
    show("fd O_NONBLOCK", !!(fcntl(q, F_GETFL) & O_NONBLOCK));
    n.mq_flags = 1;
    show("setattr bad flags", mq_setattr(q, &n, &o));
    show("getattr bad fd", syscall(SYS_mq_getsetattr, 999, NULL, &o));
    show("getattr regular fd", syscall(SYS_mq_getsetattr, 1, NULL, &o));

    section("priorities");
    show("recv empty nonblock", mq_receive(q, (char[8192]){0}, 8192, NULL));
    show("send prio 1", mq_send(q, "a", 1, 1));
    show("send prio 5", mq_send(q, "bb", 2, 5));
    show("send prio 5 again", mq_send(q, "ccc", 3, 5));
    show("send prio 0", mq_send(q, "", 0, 0));
    show("send prio 32767", mq_send(q, "eeee", 4, 32767));
    show("send prio 32768", mq_send(q, "x", 1, 32768));
    show("send 8193 bytes", mq_send(q, (char[8193]){0}, 8193, 0));
    show_attr("five queued", q);
    recv_show("recv small buffer", q, 8191);
    for (int i = 0; i < 6; i++)
        recv_show("recv", q, 8192);
    n.mq_flags = 0;
    mq_setattr(q, &n, NULL);

    section("nonblocking");
    struct mq_attr a = {.mq_maxmsg = 2, .mq_msgsize = 16};
    mqd_t s = mq_open(qname(2), O_RDWR | O_CREAT | O_NONBLOCK, 0600, &a);
    show("send 1", mq_send(s, "one", 3, 0));
    show("send 2", mq_send(s, "two", 3, 0));
    show("send 3 full", mq_send(s, "three", 5, 0));
    show("send 17 bytes", mq_send(s, "0123456789abcdefg", 17, 0));
    recv_show("recv 1", s, 16);
    recv_show("recv 15-byte buffer", s, 15);
    recv_show("recv 2", s, 16);
    recv_show("recv empty", s, 16);

    section("timeouts");
    mqd_t t = mq_open(qname(2), O_RDWR);
    struct timespec ts = in_ms(100);
    show("timedreceive empty", mq_timedreceive(t, (char[16]){0}, 16, NULL, &ts));
    ts = in_ms(-1000);
    show("timedreceive past", mq_timedreceive(t, (char[16]){0}, 16, NULL, &ts));
    struct timespec inval = {.tv_sec = 0, .tv_nsec = 1000000000L};
    mq_send(t, "m", 1, 3);
    show("timedreceive bad ns (message queued)", mq_timedreceive(t, (char[16]){0}, 16, NULL, &inval));
    inval.tv_sec = -1, inval.tv_nsec = 0;
    show("timedsend negative sec", mq_timedsend(t, "m", 1, 0, &inval));
    show("timedreceive past (message queued)", mq_timedreceive(t, (char[16]){0}, 16, NULL, &ts));
    mq_send(t, "x", 1, 0);
    mq_send(t, "y", 1, 0);
    ts = in_ms(100);
    show("timedsend full", mq_timedsend(t, "z", 1, 0, &ts));
    ts = in_ms(-1000);
    show("timedsend full past", mq_timedsend(t, "z", 1, 0, &ts));
    show("timedsend bad fd", mq_timedsend(999, "z", 1, 0, &ts));
    recv_show("drain", t, 16);
    recv_show("drain", t, 16);

    section("access modes");
    mqd_t r = mq_open(qname(2), O_RDONLY), w = mq_open(qname(2), O_WRONLY);
    show("send on O_RDONLY", mq_send(r, "x", 1, 0));
    show("receive on O_WRONLY", mq_receive(w, (char[16]){0}, 16, NULL));
    show("send on stdout", mq_send(1, "x", 1, 0));
    show("send on closed", mq_send(999, "x", 1, 0));
    show("send prio bad first", mq_send(999, "x", 1, 40000));
    show("receive on O_RDONLY empty nonblock?", (mq_setattr(r, &(struct mq_attr){.mq_flags = O_NONBLOCK}, NULL),
                                                   mq_receive(r, (char[16]){0}, 16, NULL)));
    mq_close(r);
    mq_close(w);
    mq_close(t);
    mq_close(s);
    mq_close(q);
    show("unlink 2", mq_unlink(qname(2)));
}

static void across_fork(void)
{
    section("fork");
    struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 32};
    mqd_t q = mq_open(qname(3), O_RDWR | O_CREAT, 0600, &a);
    pid_t p = fork();
    if (p == 0) {
        usleep(50000);
        mq_send(q, "from child 1", 12, 1);
        mq_send(q, "from child 2", 12, 2); /* blocks until the parent takes the first */
        _exit(0);
    }
    recv_show("parent blocking recv", q, 32);
    recv_show("parent blocking recv", q, 32);
    reap("sender", p);

    p = fork();
    if (p == 0) {
        mqd_t c = mq_open(qname(3), O_RDONLY);
        recv_show("child recv", c, 32);
        _exit(0);
    }
    usleep(100000);
    long sent = mq_send(q, "to child", 8, 7);
    reap("receiver", p);
    show("parent send", sent);
    show_attr("after fork", q);
    mq_close(q);
}

static volatile int alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

static void interrupted(void)
{
    section("signals");
    mqd_t q = mq_open(qname(3), O_RDWR);
    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    show("receive interrupted", mq_receive(q, (char[32]){0}, 32, NULL));
    printf("alarms %d\n", alarms);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    struct timespec ts = in_ms(300);
    show("timedreceive restarted", mq_timedreceive(q, (char[32]){0}, 32, NULL, &ts));
    printf("alarms %d\n", alarms);
    mq_send(q, "full", 4, 0);
    sa.sa_flags = 0;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    show("send interrupted", mq_send(q, "more", 4, 0));
    printf("alarms %d\n", alarms);
    recv_show("left", q, 32);
    mq_close(q);
}

static void notify(void)
{
    long sent;
    section("notify");
    mqd_t q = mq_open(qname(4), O_RDWR | O_CREAT, 0600, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, NULL);
    struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1};
    ev.sigev_value.sival_int = 42;
    show_status("status before", 4, getpid());
    show("notify", mq_notify(q, &ev));
    show_status("status registered", 4, getpid());
    show("notify again (same process)", mq_notify(q, &ev));
    pid_t p = fork();
    if (p == 0) {
        show("child notify", mq_notify(q, &ev));
        show("child unregister (not owner)", mq_notify(q, NULL));
        _exit(0);
    }
    reap("child", p);
    show_status("still registered", 4, getpid());
    show("send", mq_send(q, "hello", 5, 0));
    siginfo_t si;
    struct timespec zero = {0, 0};
    int sig = sigtimedwait(&set, &si, &zero);
    printf("signal %d code %d value %d pid %s uid %s\n", sig, si.si_code, si.si_value.sival_int,
           si.si_pid == getpid() ? "self" : "other", si.si_uid == getuid() ? "self" : "other");
    show_status("status after firing", 4, getpid());
    show("send second", mq_send(q, "again", 5, 0));
    show("no second signal", sigtimedwait(&set, &si, &zero));
    recv_show("recv", q, 8192);
    recv_show("recv", q, 8192);
    show("send to empty, unregistered", mq_send(q, "x", 1, 0));
    show("still no signal", sigtimedwait(&set, &si, &zero));
    recv_show("recv", q, 8192);

    /* a message arriving on a non-empty queue does not notify */
    show("notify", mq_notify(q, &ev));
    show("unregister", mq_notify(q, NULL));
    show("unregister again", mq_notify(q, NULL));
    show_status("unregistered", 4, getpid());
    mq_send(q, "one", 3, 0);
    show("notify with a message queued", mq_notify(q, &ev));
    show("send onto non-empty", mq_send(q, "two", 3, 0));
    show("no signal", sigtimedwait(&set, &si, &zero));
    recv_show("recv", q, 8192);
    recv_show("recv", q, 8192);
    show("send onto empty", mq_send(q, "three", 5, 0));
    sig = sigtimedwait(&set, &si, &zero);
    printf("signal %d code %d\n", sig, si.si_code);
    recv_show("recv", q, 8192);

    /* a blocked receiver takes the message: no notification */
    p = fork();
    if (p == 0) {
        recv_show("child blocked recv", q, 8192);
        _exit(0);
    }
    usleep(150000);
    long registered = mq_notify(q, &ev);
    sent = mq_send(q, "direct", 6, 0);
    reap("receiver", p);
    show("notify", registered);
    show("send to blocked receiver", sent);
    show("no signal", sigtimedwait(&set, &si, &zero));
    show_status("still registered", 4, getpid());
    show("unregister", mq_notify(q, NULL));

    /* the registration dies with its process */
    p = fork();
    if (p == 0) {
        show("child notify", mq_notify(q, &ev));
        _exit(0);
    }
    reap("child", p);
    show("notify after owner exited", mq_notify(q, &ev));
    show("unregister", mq_notify(q, NULL));

    /* closing any descriptor of the queue ends the closer's own registration */
    show("notify", mq_notify(q, &ev));
    show_status_here("owner reads the queue file", 4, getpid());
    show_status("after the owner's close", 4, getpid());
    show("notify again", mq_notify(q, &ev));
    mqd_t dup_q = dup(q);
    close(dup_q);
    show_status("after closing a dup", 4, getpid());
    show("notify again", mq_notify(q, &ev));
    p = fork();
    if (p == 0) {
        close(q);
        _exit(0);
    }
    reap("child closes its copy", p);
    show_status("registration kept", 4, getpid());
    show("unregister", mq_notify(q, NULL));

    section("notify kinds");
    struct sigevent none = {.sigev_notify = SIGEV_NONE};
    show("SIGEV_NONE", mq_notify(q, &none));
    show_status("status none", 4, getpid());
    show("busy", mq_notify(q, &ev));
    mq_send(q, "n", 1, 0);
    show_status("none fired", 4, getpid());
    recv_show("recv", q, 8192);
    struct sigevent zero_sig = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = 0};
    show("signal 0", mq_notify(q, &zero_sig));
    show_status("status signal 0", 4, getpid());
    mq_send(q, "z", 1, 0);
    show_status("signal 0 fired", 4, getpid());
    recv_show("recv", q, 8192);
    struct sigevent bad = {.sigev_notify = 99};
    show("bad sigev_notify", mq_notify(q, &bad));
    bad.sigev_notify = SIGEV_SIGNAL, bad.sigev_signo = 65;
    show("signal 65", mq_notify(q, &bad));
    bad.sigev_signo = -1;
    show("signal -1", mq_notify(q, &bad));
    show("notify bad fd", mq_notify(999, &none));
    show("notify regular fd", mq_notify(1, &none));
    show("unregister bad fd", mq_notify(999, NULL));
    mq_close(q);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

static void readiness(void)
{
    section("poll");
    struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 8};
    mqd_t q = mq_open(qname(5), O_RDWR | O_CREAT, 0600, &a);
    mqd_t ro = mq_open(qname(5), O_RDONLY);
    printf("empty %#x\n", revents(q));
    mq_send(q, "x", 1, 0);
    printf("full %#x\n", revents(q));
    printf("full, read-only fd %#x\n", revents(ro));

    section("epoll");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 5}, out[4];
    show("epoll_ctl", epoll_ctl(ep, EPOLL_CTL_ADD, ro, &ev));
    int n = epoll_wait(ep, out, 4, 0);
    printf("ready %d events %#x data %lu\n", n, n > 0 ? out[0].events : 0,
           n > 0 ? (unsigned long)out[0].data.u64 : 0);
    recv_show("recv", q, 8);
    show("epoll empty", epoll_wait(ep, out, 4, 0));
    pid_t p = fork();
    if (p == 0) {
        usleep(50000);
        mq_send(q, "late", 4, 0);
        _exit(0);
    }
    n = epoll_wait(ep, out, 4, 5000);
    printf("woken %d events %#x\n", n, n > 0 ? out[0].events : 0);
    reap("sender", p);
    struct pollfd pf = {.fd = q, .events = POLLOUT};
    p = fork();
    if (p == 0) {
        usleep(50000);
        recv_show("child recv", q, 8);
        _exit(0);
    }
    n = poll(&pf, 1, 5000);
    reap("receiver", p);
    printf("poll POLLOUT woken %d revents %#x\n", n, pf.revents);
    close(ep);
    mq_close(ro);
    mq_close(q);
}

static void filesystem(void)
{
    section("mqueue fs");
    char path[128];
    snprintf(path, sizeof path, "%s/%s", mqdir, qname(6) + 1);
    mqd_t q = mq_open(qname(6), O_RDWR | O_CREAT, 0640, NULL);
    mq_send(q, "12345", 5, 1);
    mq_send(q, "678", 3, 2);
    show_status("status", 6, getpid());
    struct stat st;
    if (stat(path, &st) == 0)
        printf("stat: reg %d mode %o size %ld blocks %ld\n", S_ISREG(st.st_mode),
               st.st_mode & 07777, (long)st.st_size, (long)st.st_blocks);
    if (stat(mqdir, &st) == 0)
        printf("dir: dir %d mode %o\n", S_ISDIR(st.st_mode), st.st_mode & 07777);
    DIR *d = opendir(mqdir);
    int seen = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (!strcmp(e->d_name, qname(6) + 1))
            seen = e->d_type == DT_REG ? 1 : 2;
    if (d)
        closedir(d);
    printf("listed: %d\n", seen);
    int fd = open(path, O_RDONLY);
    show_ok("open(2)", fd);
    char buf[128];
    show("read 10", read(fd, buf, 10));
    show("read rest", read(fd, buf, sizeof buf));
    show("read at end", read(fd, buf, sizeof buf));
    show("lseek end", lseek(fd, 0, SEEK_END));
    show("mq_receive on open(2) fd", mq_receive(fd, buf, 8192, NULL));
    show("write on O_RDONLY", write(fd, "x", 1));
    close(fd);
    fd = open(path, O_RDWR);
    show("write", write(fd, "x", 1));
    show("mq_send on open(2) fd", mq_send(fd, "via open", 8, 0));
    show_attr("attr via open(2) fd", fd);
    close(fd);
    show("mkdir inside", mkdir(strcat(strcpy(buf, mqdir), "/sub"), 0755));
    show("symlink inside", symlink("x", buf));
    char other[128];
    snprintf(other, sizeof other, "%s/%s", mqdir, qname(7) + 1);
    show("rename", rename(path, other));
    show("link", link(path, other));
    fd = open(other, O_RDWR | O_CREAT | O_EXCL, 0600);
    show_ok("open(2) O_CREAT", fd);
    show_attr("created by open(2)", fd);
    close(fd);
    show("unlink(2)", unlink(other));
    show("mq_open after unlink(2)", mq_open(qname(7), O_RDWR));

    section("unlink while open");
    show("mq_unlink", mq_unlink(qname(6)));
    show("stat after unlink", stat(path, &st));
    if (fstat(q, &st) == 0)
        printf("fstat nlink %ld\n", (long)st.st_nlink);
    show("send still works", mq_send(q, "after", 5, 9));
    recv_show("recv", q, 8192);
    show("mq_open unlinked", mq_open(qname(6), O_RDWR));
    mqd_t again = make(6, O_RDWR, 0, 0);
    show_ok("recreate", again);
    show_attr("new queue", again);
    show_attr("old queue", q);
    mq_close(again);
    mq_close(q);
}

static void permissions(void)
{
    section("permissions");
    mqd_t q = make(7, O_RDWR, 0, 0);
    fchmod(q, 0644);
    pid_t p = fork();
    if (p == 0) {
        as_nobody();
        show("nobody O_RDONLY", mq_open(qname(7), O_RDONLY) >= 0);
        show("nobody O_WRONLY", mq_open(qname(7), O_WRONLY));
        show("nobody O_RDWR", mq_open(qname(7), O_RDWR));
        show("nobody unlink", mq_unlink(qname(7)));
        struct mq_attr big = {.mq_maxmsg = 11, .mq_msgsize = 8};
        show("nobody maxmsg 11", mq_open(qname(1), O_RDWR | O_CREAT, 0600, &big));
        big.mq_maxmsg = 10, big.mq_msgsize = 8193;
        show("nobody msgsize 8193", mq_open(qname(1), O_RDWR | O_CREAT, 0600, &big));
        struct rlimit rl = {100000, 100000};
        setrlimit(RLIMIT_MSGQUEUE, &rl);
        mqd_t m = mq_open(qname(1), O_RDWR | O_CREAT | O_EXCL, 0600, NULL);
        show_ok("nobody first default queue", m);
        show("nobody second default queue", mq_open(qname(2), O_RDWR | O_CREAT | O_EXCL, 0600, NULL));
        big.mq_maxmsg = 1, big.mq_msgsize = 1000;
        mqd_t small = mq_open(qname(2), O_RDWR | O_CREAT | O_EXCL, 0600, &big);
        show_ok("nobody small queue", small);
        show("nobody unlinks own", mq_unlink(qname(1)));
        show("nobody unlinks own 2", mq_unlink(qname(2)));
        mq_close(m);
        mq_close(small);
        _exit(0);
    }
    reap("nobody", p);
    show("root unlinks", mq_unlink(qname(7)));
    mq_close(q);
}

int main(void)
{
    test_init();
    for (int i = 0; i < 8; i++) {
        snprintf(names[i], sizeof names[i], "/sv-mq-%d-%d", (int)getpid(), i);
        mq_unlink(names[i]);
    }
    find_mqueue_fs();
    names_and_create();
    attrs_and_messages();
    across_fork();
    interrupted();
    notify();
    readiness();
    filesystem();
    permissions();
    section("cleanup");
    for (int i = 0; i < 8; i++)
        printf("unlink %d: %s\n", i, mq_unlink(names[i]) == 0 ? "ok" : ename(errno));
    return 0;
}
