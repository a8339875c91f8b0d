/* eventfd and eventfd2: counter and semaphore reads, 8-byte rules, overflow waiting,
 * readiness through poll and epoll, sharing across fork, and the error cases. */
#include "common.h"

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <sys/wait.h>

static int efd2(unsigned initval, int flags) { return (int)syscall(SYS_eventfd2, initval, flags); }

static int revents(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    if (poll(&p, 1, 0) < 0)
        return -1;
    return p.revents;
}

static volatile int alarms;
static void on_alarm(int sig) { (void)sig; alarms++; }

static long wr(int fd, uint64_t v) { return write(fd, &v, sizeof v); }

static void show_read(const char *label, int fd)
{
    uint64_t v = 0;
    long r = read(fd, &v, sizeof v);
    if (r == -1)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        printf("%s: %ld value %llu\n", label, r, (unsigned long long)v);
}

int main(void)
{
    test_init();

    section("create");
    int e = eventfd(3, EFD_NONBLOCK | EFD_CLOEXEC);
    CHECK("eventfd", e >= 0);
    show("F_GETFL", fcntl(e, F_GETFL));
    show("F_GETFD", fcntl(e, F_GETFD));
    show("eventfd2 unknown flag", efd2(0, 4));
    show("eventfd2 all flags but unknown", efd2(0, -1));
    show("eventfd(..., 0) is eventfd2", efd2(0, 0) >= 0);
    struct stat st;
    show("fstat", fstat(e, &st));
    printf("mode %o size %lld\n", (unsigned)st.st_mode, (long long)st.st_size);
    char link[128] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", e);
    show("readlink", readlink(path, link, sizeof link - 1));
    printf("link %s\n", link);

    section("read and write");
    char buf[32];
    uint64_t v = 0;
    show("read 0 bytes", read(e, buf, 0));
    show("read 7 bytes", read(e, buf, 7));
    show("write 7 bytes", write(e, buf, 7));
    show("pread", pread(e, &v, 8, 0));
    show("pwrite", pwrite(e, &v, 8, 0));
    show("lseek", lseek(e, 100, SEEK_SET));
    show_read("read 8", e);
    show_read("read again", e);
    show("write 5", wr(e, 5));
    show("write 0", wr(e, 0));
    memset(buf, 0, sizeof buf);
    show("read 16 bytes", read(e, buf, 16));
    printf("value %llu\n", (unsigned long long)*(uint64_t *)buf);
    *(uint64_t *)buf = 2;
    show("write 16 bytes", write(e, buf, 16));
    show_read("read", e);
    show("write max", wr(e, UINT64_MAX));
    show("write max - 1", wr(e, UINT64_MAX - 1));
    printf("revents at max-1: %#x\n", revents(e, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM));
    show("write 1 more", wr(e, 1));
    show("write 0 at max-1", wr(e, 0));
    show_read("read max-1", e);
    printf("revents at 0: %#x\n", revents(e, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM));
    show("write 1", wr(e, 1));
    printf("revents at 1: %#x\n", revents(e, POLLIN | POLLOUT));

    section("semaphore");
    int s = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
    show_read("read 1", s);
    show_read("read 2", s);
    show_read("read 3", s);
    show_read("read 4", s);
    show("write 2", wr(s, 2));
    show_read("read", s);
    show("F_SETFL blocking", fcntl(s, F_SETFL, 0));
    show("F_GETFL", fcntl(s, F_GETFL));
    show_read("blocking read with 1 left", s);

    section("blocking across fork");
    int b = eventfd(0, 0);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        uint64_t got = 0;
        /* waits for the parent's write */
        if (read(b, &got, 8) != 8)
            _exit(1);
        /* fill the counter to max-1 ... */
        wr(b, UINT64_MAX - 1);
        _exit(got == 42 ? 0 : 2);
    }
    show("parent write 42", wr(b, 42));
    int status = 0;
    waitpid(child, &status, 0);
    printf("child exit %d\n", WEXITSTATUS(status));
    /* the counter is full: a blocking write waits until a read makes room */
    fflush(stdout);
    child = fork();
    if (child == 0) {
        _exit(wr(b, 7) == 8 ? 0 : 3);
    }
    struct pollfd p = {.fd = b, .events = POLLOUT};
    printf("writer waits (not writable): %d\n", poll(&p, 1, 50) == 0);
    show_read("read frees room", b);
    waitpid(child, &status, 0);
    printf("blocked writer exit %d\n", WEXITSTATUS(status));
    show_read("read what it wrote", b);

    section("epoll");
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u64 = 9};
    show("epoll_ctl ADD", epoll_ctl(ep, EPOLL_CTL_ADD, e, &ev));
    struct epoll_event out[4];
    int n = epoll_wait(ep, out, 4, 0);
    printf("ready: %d data %llu events %#x\n", n, n > 0 ? (unsigned long long)out[0].data.u64 : 0,
           n > 0 ? out[0].events : 0);
    printf("edge-triggered again: %d\n", epoll_wait(ep, out, 4, 0));
    show("write 1", wr(e, 1));
    n = epoll_wait(ep, out, 4, 0);
    printf("after write: %d events %#x\n", n, n > 0 ? out[0].events : 0);
    show_read("drain", e);
    fflush(stdout);
    child = fork();
    if (child == 0) {
        usleep(20000);
        wr(e, 3);
        _exit(0);
    }
    n = epoll_wait(ep, out, 4, 5000);
    printf("woken by the child: %d events %#x\n", n, n > 0 ? out[0].events : 0);
    waitpid(child, &status, 0);
    show_read("read", e);

    section("interrupted read");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART */
    struct itimerval it = {.it_value = {.tv_usec = 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    int empty = eventfd(0, 0);
    show_read("blocking read, then SIGALRM", empty);
    printf("handler ran: %d\n", alarms);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGALRM, &sa, NULL);
    setitimer(ITIMER_REAL, &it, NULL);
    fflush(stdout);
    child = fork();
    if (child == 0) {
        usleep(100000);
        wr(empty, 11);
        _exit(0);
    }
    show_read("SA_RESTART read restarts until the write", empty);
    printf("handler ran: %d\n", alarms);
    waitpid(child, &status, 0);
    close(empty);
    close(ep);
    close(s);
    close(b);
    close(e);
    return 0;
}
