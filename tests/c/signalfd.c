/* signalfd and signalfd4: reading blocked signals as signalfd_siginfo records (thread-
 * and process-directed, standard and real-time, with their fields), changing the mask,
 * readiness through poll and epoll, waiting, fork (each process reads its own signals),
 * and the error cases. */
#include "common.h"

#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>

static int sfd4(int fd, const void *mask, size_t size, int flags)
{
    return (int)syscall(SYS_signalfd4, fd, mask, size, flags);
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDNORM};
    return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

static const char *code_name(int code)
{
    switch (code) {
    case SI_USER: return "SI_USER";
    case SI_QUEUE: return "SI_QUEUE";
    case SI_TKILL: return "SI_TKILL";
    case SI_KERNEL: return "SI_KERNEL";
    case CLD_EXITED: return "CLD_EXITED";
    default: return "other";
    }
}

/* Read up to `max` records and describe each (pids and uids as relations). */
static void show_records(const char *label, int fd, int max)
{
    struct signalfd_siginfo si[8];
    memset(si, 0, sizeof si);
    long r = read(fd, si, max * sizeof si[0]);
    if (r == -1) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: %ld bytes\n", label, r);
    for (long i = 0; i < r / (long)sizeof si[0]; i++)
        printf("  signo %u code %s errno %d pid-is-me %d uid-is-mine %d int %d ptr %llu tid %u "
               "overrun %u status %d\n", si[i].ssi_signo, code_name(si[i].ssi_code),
               si[i].ssi_errno, si[i].ssi_pid == (uint32_t)getpid(), si[i].ssi_uid == (uint32_t)getuid(),
               si[i].ssi_int, (unsigned long long)si[i].ssi_ptr, si[i].ssi_tid,
               si[i].ssi_overrun, si[i].ssi_status);
}

static void queue_rt(int sig, int value)
{
    union sigval v = {.sival_int = value};
    sigqueue(getpid(), sig, v);
}

int main(void)
{
    test_init();
    sigset_t blocked, mask;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGUSR1);
    sigaddset(&blocked, SIGUSR2);
    sigaddset(&blocked, SIGRTMIN);
    sigaddset(&blocked, SIGCHLD);
    sigprocmask(SIG_BLOCK, &blocked, NULL);
    printf("sizeof(struct signalfd_siginfo) %zu\n", sizeof(struct signalfd_siginfo));

    section("create");
    sigemptyset(&mask);
    sigaddset(&mask, SIGUSR1);
    sigaddset(&mask, SIGKILL);
    sigaddset(&mask, SIGSTOP);
    int s = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    CHECK("signalfd", s >= 0);
    show("F_GETFL", fcntl(s, F_GETFL));
    show("F_GETFD", fcntl(s, F_GETFD));
    struct stat st;
    show("fstat", fstat(s, &st));
    printf("mode %o\n", (unsigned)st.st_mode);
    char link[128] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", s);
    show("readlink", readlink(path, link, sizeof link - 1));
    printf("link %s\n", link);
    uint64_t raw = 1ULL << (SIGUSR1 - 1);
    show("sizemask 4", sfd4(-1, &raw, 4, 0));
    show("sizemask 16", sfd4(-1, &raw, 16, 0));
    show("bad mask pointer", sfd4(-1, (void *)16, 8, 0));
    show("bad size before bad pointer", sfd4(-1, (void *)16, 4, 0));
    show("unknown flag", sfd4(-1, &raw, 8, 1));
    show("bad pointer before bad flag", sfd4(-1, (void *)16, 8, 1));
    int e = eventfd(0, 0);
    show("update an eventfd", sfd4(e, &raw, 8, 0));
    show("update a closed fd", sfd4(999, &raw, 8, 0));
    show("fd -2", sfd4(-2, &raw, 8, 0));
    close(e);
    raw = (1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1));
    int k = sfd4(-1, &raw, 8, SFD_NONBLOCK);
    CHECK("mask of only SIGKILL and SIGSTOP", k >= 0);
    show("read it", read(k, &st, 128));
    close(k);

    section("reading");
    char small[200];
    show("read 127 bytes", read(s, small, 127));
    show_records("read with nothing pending", s, 1);
    printf("revents %#x\n", readable(s));
    raise(SIGUSR1);
    printf("revents after raise %#x\n", readable(s));
    show_records("read 1", s, 1);
    printf("revents after read %#x\n", readable(s));
    kill(getpid(), SIGUSR1);
    show_records("read after kill (buffer for 4)", s, 4);
    raise(SIGUSR1);
    show("read 200 bytes: one record", read(s, small, 200));
    kill(getpid(), SIGUSR2);
    show_records("SIGUSR2 is not in the mask", s, 1);
    sigset_t pend;
    sigpending(&pend);
    printf("SIGUSR2 still pending: %d\n", sigismember(&pend, SIGUSR2));

    section("changing the mask");
    sigaddset(&mask, SIGUSR2);
    sigaddset(&mask, SIGRTMIN);
    show("update", signalfd(s, &mask, 0) == s);
    printf("revents %#x\n", readable(s));
    queue_rt(SIGRTMIN, 1234);
    queue_rt(SIGRTMIN, -5);
    raise(SIGUSR1);
    show_records("read 4: standard first, then real-time in order", s, 4);
    sigpending(&pend);
    printf("nothing pending: %d\n", !sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGUSR2) &&
           !sigismember(&pend, SIGRTMIN));
    show("F_GETFL after signalfd(fd, ..., 0)", fcntl(s, F_GETFL));

    section("SIGCHLD");
    sigaddset(&mask, SIGCHLD);
    signalfd(s, &mask, 0);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0)
        _exit(3);
    int status = 0;
    waitpid(child, &status, 0);
    struct signalfd_siginfo ci;
    show("read SIGCHLD", read(s, &ci, sizeof ci));
    printf("signo %u code %s status %d pid-is-child %d\n", ci.ssi_signo, code_name(ci.ssi_code),
           ci.ssi_status, ci.ssi_pid == (uint32_t)child);

    section("waiting");
    int b = signalfd(-1, &mask, 0);
    fflush(stdout);
    pid_t parent = getpid();
    child = fork();
    if (child == 0) {
        usleep(20000);
        kill(parent, SIGUSR2);
        _exit(0);
    }
    show_records("blocking read until the child's signal", b, 1);
    waitpid(child, &status, 0);
    show_records("then SIGCHLD", s, 1);
    fflush(stdout);
    child = fork();
    if (child == 0) {
        usleep(20000);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    struct pollfd p = {.fd = s, .events = POLLIN};
    show("poll until the child's signal", poll(&p, 1, 5000));
    printf("revents %#x\n", p.revents);
    show_records("read", s, 1);
    waitpid(child, &status, 0);
    show_records("then SIGCHLD", s, 1);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 5}, out[2];
    show("epoll_ctl ADD", epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
    printf("epoll_wait with nothing pending: %d\n", epoll_wait(ep, out, 2, 0));
    fflush(stdout);
    child = fork();
    if (child == 0) {
        usleep(20000);
        kill(parent, SIGUSR1);
        _exit(0);
    }
    int n = epoll_wait(ep, out, 2, 5000);
    printf("epoll_wait: %d data %llu events %#x\n", n, n > 0 ? (unsigned long long)out[0].data.u64 : 0,
           n > 0 ? out[0].events : 0);
    show_records("read", s, 1);
    waitpid(child, &status, 0);
    show_records("then SIGCHLD", s, 1);
    close(ep);

    section("fork");
    kill(getpid(), SIGUSR2); /* pending in the parent: a child does not inherit it */
    fflush(stdout);
    child = fork();
    if (child == 0) {
        struct signalfd_siginfo si;
        if (read(s, &si, sizeof si) != -1 || errno != EAGAIN)
            _exit(1);
        raise(SIGUSR1);
        if (read(s, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR1 ||
            si.ssi_pid != (uint32_t)getpid())
            _exit(2);
        _exit(0);
    }
    waitpid(child, &status, 0);
    printf("child read its own signal: exit %d\n", WEXITSTATUS(status));
    show_records("parent reads its SIGUSR2, then SIGCHLD", s, 2);
    close(b);
    close(s);
    return 0;
}
