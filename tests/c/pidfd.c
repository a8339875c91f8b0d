/* pidfds: pidfd_open, polling for exit, waitid(P_PIDFD), pidfd_send_signal, pidfd_getfd,
 * clone(CLONE_PIDFD), and their error cases. */
#include "common.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static int pidfd_open(pid_t pid, unsigned flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
static int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags)
{
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}
static int pidfd_getfd(int fd, int target, unsigned flags) { return (int)syscall(SYS_pidfd_getfd, fd, target, flags); }

static int readable_now(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, 0);
    return r == 1 && (p.revents & POLLIN);
}

int main(void)
{
    int gate[2];
    if (pipe(gate)) return 1;
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char c;
        close(gate[1]);
        read(gate[0], &c, 1); /* wait for the parent's word, then exit 7 */
        _exit(7);
    }
    close(gate[0]);
    int pfd = pidfd_open(child, 0);
    CHECK("pidfd_open of a child", pfd >= 0);
    CHECK("pidfd is close-on-exec", fcntl(pfd, F_GETFD) == FD_CLOEXEC);
    printf("readable while the child runs: %d\n", readable_now(pfd));
    write(gate[1], "x", 1);
    struct pollfd p = {.fd = pfd, .events = POLLIN};
    printf("poll until it exits: %d\n", poll(&p, 1, 5000));
    printf("readable after exit (not reaped): %d\n", readable_now(pfd));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    show("waitid(P_PIDFD)", waitid(P_PIDFD, pfd, &si, WEXITED));
    printf("si_code CLD_EXITED %d, status %d, pid matches %d\n", si.si_code == CLD_EXITED,
           si.si_status, si.si_pid == child);
    show("pidfd_send_signal to the reaped child", pidfd_send_signal(pfd, SIGTERM, NULL, 0));
    close(pfd);

    /* A signal through a pidfd. */
    fflush(stdout);
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    pfd = pidfd_open(child, 0);
    show("pidfd_send_signal SIGTERM", pidfd_send_signal(pfd, SIGTERM, NULL, 0));
    memset(&si, 0, sizeof si);
    show("waitid(P_PIDFD) after the signal", waitid(P_PIDFD, pfd, &si, WEXITED));
    printf("killed by SIGTERM: %d\n", si.si_code == CLD_KILLED && si.si_status == SIGTERM);
    show("pidfd_send_signal PIDFD_SIGNAL_THREAD to a dead process", pidfd_send_signal(pfd, SIGTERM, NULL, 1));
    show("pidfd_send_signal unknown flags", pidfd_send_signal(pfd, SIGTERM, NULL, 8));
    show("pidfd_send_signal two scopes", pidfd_send_signal(pfd, SIGTERM, NULL, 3));
    close(pfd);

    /* pidfd_getfd: a copy of a child's descriptor. */
    int data[2];
    if (pipe(data)) return 1;
    fflush(stdout);
    child = fork();
    if (child == 0) {
        pause();
        _exit(0);
    }
    pfd = pidfd_open(child, 0);
    int copy = pidfd_getfd(pfd, data[1], 0);
    CHECK("pidfd_getfd returned an fd", copy >= 0);
    CHECK("the copy is close-on-exec", fcntl(copy, F_GETFD) == FD_CLOEXEC);
    show("write through the copy", write(copy, "hi", 2));
    char buf[4] = {0};
    show("read what the copy wrote", read(data[0], buf, sizeof buf));
    show("pidfd_getfd of a closed fd", pidfd_getfd(pfd, 999, 0));
    show("pidfd_getfd bad flags", pidfd_getfd(pfd, data[1], 1));
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    close(pfd);

    /* clone(CLONE_PIDFD): the pidfd arrives through parent_tid. */
    int cfd = -1;
    fflush(stdout);
    long r = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &cfd, 0, 0);
    if (r == 0)
        _exit(3);
    CHECK("clone(CLONE_PIDFD) returned the child", r > 0);
    CHECK("and a pidfd", cfd >= 0 && fcntl(cfd, F_GETFD) == FD_CLOEXEC);
    memset(&si, 0, sizeof si);
    show("waitid on the clone's pidfd", waitid(P_PIDFD, cfd, &si, WEXITED));
    printf("its status: %d\n", si.si_status);
    show("clone(CLONE_PIDFD|CLONE_PARENT_SETTID)",
         syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &cfd, 0, 0));

    /* Errors. */
    show("pidfd_open(0)", pidfd_open(0, 0));
    show("pidfd_open bad flags", pidfd_open(getpid(), 1));
    show("pidfd_open of no such process", pidfd_open(4000000, 0));
    int self = pidfd_open(getpid(), 0);
    show("waitid(P_PIDFD) on ourselves (not a child)", waitid(P_PIDFD, self, &si, WEXITED | WNOHANG));
    show("waitid(P_PIDFD) on a pipe", waitid(P_PIDFD, data[0], &si, WEXITED));
    show("pidfd_send_signal on a pipe", pidfd_send_signal(data[0], 0, NULL, 0));
    show("pidfd_send_signal signal 0 to ourselves", pidfd_send_signal(self, 0, NULL, 0));
    show("pidfd_send_signal bad signal", pidfd_send_signal(self, 99, NULL, 0));
    int nb = pidfd_open(getpid(), PIDFD_NONBLOCK);
    CHECK("PIDFD_NONBLOCK sets O_NONBLOCK", (fcntl(nb, F_GETFL) & O_NONBLOCK) != 0);
    return 0;
}
