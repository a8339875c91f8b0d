/* timerfd_create/settime/gettime: clocks, relative and absolute times, periodic
 * expirations counted by read, readiness through poll and epoll, TFD_IOC_SET_TICKS,
 * sharing across fork, and the error cases.  Times are only compared, never printed. */
#include "common.h"

#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#define MS 1000000L
#define SEC 1000000000L

static long long ns_of(struct timespec t) { return t.tv_sec * SEC + t.tv_nsec; }

static struct itimerspec its(long long value_ns, long long interval_ns)
{
    struct itimerspec t = {
        .it_value = {value_ns / SEC, value_ns % SEC},
        .it_interval = {interval_ns / SEC, interval_ns % SEC},
    };
    return t;
}

static long settime(int fd, int flags, long long value_ns, long long interval_ns)
{
    struct itimerspec t = its(value_ns, interval_ns);
    return timerfd_settime(fd, flags, &t, NULL);
}

static long long now_ns(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return ns_of(t);
}

/* read's result, and the count only when it is exactly known */
static uint64_t show_read(const char *label, int fd, int print_count)
{
    uint64_t v = 0;
    long r = read(fd, &v, sizeof v);
    if (r == -1)
        printf("%s: errno=%s\n", label, ename(errno));
    else if (print_count)
        printf("%s: %ld count %llu\n", label, r, (unsigned long long)v);
    else
        printf("%s: %ld\n", label, r);
    return v;
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDNORM};
    return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

int main(void)
{
    test_init();

    section("create");
    int t = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    CHECK("timerfd_create MONOTONIC", t >= 0);
    show("F_GETFL", fcntl(t, F_GETFL));
    show("F_GETFD", fcntl(t, F_GETFD));
    int r = timerfd_create(CLOCK_REALTIME, 0);
    CHECK("REALTIME", r >= 0);
    close(r);
    r = timerfd_create(CLOCK_BOOTTIME, 0);
    CHECK("BOOTTIME", r >= 0);
    close(r);
    show("PROCESS_CPUTIME_ID", timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0));
    show("MONOTONIC_RAW", timerfd_create(CLOCK_MONOTONIC_RAW, 0));
    show("MONOTONIC_COARSE", timerfd_create(CLOCK_MONOTONIC_COARSE, 0));
    show("TAI", timerfd_create(CLOCK_TAI, 0));
    show("clock -1", timerfd_create(-1, 0));
    show("unknown flag", timerfd_create(CLOCK_MONOTONIC, 1));
    show("O_RDWR as a flag", timerfd_create(CLOCK_MONOTONIC, O_RDWR));
    /* Needs CAP_WAKE_ALARM in the initial user namespace: root on the host has it, root
     * of a user namespace (the sandbox's) does not. */
    r = timerfd_create(CLOCK_REALTIME_ALARM, 0);
    printf("REALTIME_ALARM: %s\n", r >= 0 || errno == EPERM ? "ok or EPERM" : ename(errno));
    if (r >= 0)
        close(r);
    struct stat st;
    show("fstat", fstat(t, &st));
    printf("mode %o size %lld\n", (unsigned)st.st_mode, (long long)st.st_size);
    char link[128] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", t);
    show("readlink", readlink(path, link, sizeof link - 1));
    printf("link %s\n", link);

    section("argument errors");
    struct itimerspec cur, ok = its(10 * SEC, 0), bad = its(0, 0);
    int e = eventfd(0, 0);
    show("settime unknown flag", timerfd_settime(t, 4, &ok, NULL));
    bad.it_value.tv_nsec = SEC;
    show("settime tv_nsec 1e9", timerfd_settime(t, 0, &bad, NULL));
    bad = its(0, 0);
    bad.it_interval.tv_nsec = -1;
    show("settime interval nsec -1", timerfd_settime(t, 0, &bad, NULL));
    bad = its(0, 0);
    bad.it_value.tv_sec = -1;
    show("settime tv_sec -1", timerfd_settime(t, 0, &bad, NULL));
    show("settime on an eventfd", timerfd_settime(e, 0, &ok, NULL));
    show("settime on a closed fd", timerfd_settime(999, 0, &ok, NULL));
    show("settime NULL new", syscall(SYS_timerfd_settime, t, 0, NULL, NULL));
    show("settime bad flags before fd", timerfd_settime(999, 8, &ok, NULL));
    show("settime bad value before fd", syscall(SYS_timerfd_settime, 999, 0, 16, NULL));
    show("gettime on an eventfd", timerfd_gettime(e, &cur));
    show("gettime on a closed fd", timerfd_gettime(999, &cur));
    show("gettime bad pointer", syscall(SYS_timerfd_gettime, t, 16));
    close(e);

    section("disarmed");
    show("gettime", timerfd_gettime(t, &cur));
    printf("value %lld interval %lld\n", ns_of(cur.it_value), ns_of(cur.it_interval));
    show("read 4 bytes", read(t, &cur, 4));
    show_read("read nonblocking", t, 1);
    printf("revents %#x\n", readable(t));
    show("interval only", settime(t, 0, 0, SEC));
    timerfd_gettime(t, &cur);
    printf("value %lld interval %lld\n", ns_of(cur.it_value), ns_of(cur.it_interval));

    section("relative");
    show("settime 10s", settime(t, 0, 10 * SEC, 0));
    timerfd_gettime(t, &cur);
    long long left = ns_of(cur.it_value);
    CHECK("remaining in (9s, 10s]", left > 9 * SEC && left <= 10 * SEC);
    struct itimerspec old;
    show("settime 20s with old", timerfd_settime(t, 0, &ok, &old));
    CHECK("old value <= 10s", ns_of(old.it_value) > 0 && ns_of(old.it_value) <= 10 * SEC);
    show("disarm", settime(t, 0, 0, 0));
    timerfd_gettime(t, &cur);
    printf("disarmed value %lld\n", ns_of(cur.it_value));
    show_read("read", t, 1);

    section("absolute");
    long long now = now_ns(CLOCK_MONOTONIC);
    show("ABSTIME in the past", settime(t, TFD_TIMER_ABSTIME, now - SEC, 0));
    printf("revents %#x\n", readable(t));
    show_read("read at once", t, 1);
    show_read("read again", t, 1);
    timerfd_gettime(t, &cur);
    printf("expired one-shot: value %lld interval %lld\n", ns_of(cur.it_value),
           ns_of(cur.it_interval));
    now = now_ns(CLOCK_MONOTONIC);
    show("periodic ABSTIME 10.5 periods ago", settime(t, TFD_TIMER_ABSTIME, now - 10 * SEC - SEC / 2, SEC));
    show_read("read counts the missed periods", t, 1);
    timerfd_gettime(t, &cur);
    CHECK("next expiry within one period", ns_of(cur.it_value) > 0 && ns_of(cur.it_value) <= SEC);
    printf("interval %lld\n", ns_of(cur.it_interval));
    show("ABSTIME in the future", settime(t, TFD_TIMER_ABSTIME, now_ns(CLOCK_MONOTONIC) + 30 * SEC, 0));
    timerfd_gettime(t, &cur);
    CHECK("remaining in (29s, 30s]", ns_of(cur.it_value) > 29 * SEC && ns_of(cur.it_value) <= 30 * SEC);
    int rt = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
    show("REALTIME ABSTIME|CANCEL_ON_SET", settime(rt, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
                                                   now_ns(CLOCK_REALTIME) + 60 * SEC, 0));
    show_read("read", rt, 1);
    show("CANCEL_ON_SET without ABSTIME", settime(rt, TFD_TIMER_CANCEL_ON_SET, SEC, 0));
    show("REALTIME ABSTIME in the past", settime(rt, TFD_TIMER_ABSTIME, now_ns(CLOCK_REALTIME) - SEC, 0));
    show_read("read", rt, 1);
    close(rt);

    section("waiting");
    int w = timerfd_create(CLOCK_MONOTONIC, 0);
    show("settime 30ms", settime(w, 0, 30 * MS, 0));
    printf("readable before expiry: %#x\n", readable(w));
    show_read("blocking read", w, 1);
    show("settime 20ms", settime(w, 0, 20 * MS, 0));
    struct pollfd p = {.fd = w, .events = POLLIN};
    show("poll until expiry", poll(&p, 1, 5000));
    printf("revents %#x\n", p.revents);
    show_read("read", w, 1);
    show("periodic 10ms", settime(w, 0, 10 * MS, 10 * MS));
    usleep(50 * 1000);
    uint64_t n = show_read("read after 50ms", w, 0);
    CHECK("expired >= 1", n >= 1);
    n = show_read("blocking read of the next period", w, 0);
    CHECK("expired >= 1", n >= 1);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 77}, out[2];
    show("epoll_ctl ADD", epoll_ctl(ep, EPOLL_CTL_ADD, w, &ev));
    int got = epoll_wait(ep, out, 2, 5000);
    printf("epoll_wait: %d data %llu events %#x\n", got, got > 0 ? (unsigned long long)out[0].data.u64 : 0,
           got > 0 ? out[0].events : 0);
    n = show_read("read", w, 0);
    CHECK("expired >= 1", n >= 1);
    show("disarm", settime(w, 0, 0, 0));
    printf("epoll_wait after disarm: %d\n", epoll_wait(ep, out, 2, 30));
    close(ep);

    section("ticks ioctl");
    uint64_t ticks = 5;
    show("TFD_IOC_SET_TICKS 5", ioctl(t, TFD_IOC_SET_TICKS, &ticks));
    printf("revents %#x\n", readable(t));
    show_read("read", t, 1);
    ticks = 0;
    show("TFD_IOC_SET_TICKS 0", ioctl(t, TFD_IOC_SET_TICKS, &ticks));
    show("TFD_IOC_SET_TICKS bad pointer", ioctl(t, TFD_IOC_SET_TICKS, (void *)16));
    show("FIONREAD", ioctl(t, 0x541B, &ticks));
    ticks = 3;
    ioctl(t, TFD_IOC_SET_TICKS, &ticks);
    show("settime resets the count", settime(t, 0, 10 * SEC, 0));
    show_read("read", t, 1);

    section("fork");
    show("settime 30ms", settime(w, 0, 30 * MS, 0));
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        uint64_t v = 0;
        _exit(read(w, &v, 8) == 8 && v == 1 ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    printf("child read the shared timer: exit %d\n", WEXITSTATUS(status));
    show("F_SETFL O_NONBLOCK", fcntl(w, F_SETFL, O_NONBLOCK));
    show_read("parent finds it read", w, 1);
    close(w);
    close(t);
    return 0;
}
