/* Out-of-band data on AF_UNIX SOCK_STREAM (Linux >= 5.15, CONFIG_AF_UNIX_OOB): send with
 * MSG_OOB makes the last byte urgent; normal reads stop at the mark and never return the
 * urgent byte (it is dropped when read past, unless SO_OOBINLINE); recv(MSG_OOB) takes it
 * (EINVAL when there is none, or inline); SIOCATMARK, SIOCINQ, POLLPRI/EPOLLPRI; SIGURG to
 * the owner set with FIOSETOWN; EOPNOTSUPP for datagram and seqpacket sockets.
 *
 * Only return values, errno names, masks and relations are printed. */
#include "proc_helpers.h"
#include "unix_helpers.h"
#include <signal.h>
#include <sys/epoll.h>

static volatile int urgs;
static void on_urg(int sig)
{
    (void)sig;
    urgs++;
}

static int atmark(int fd)
{
    int n = -1;
    return ioctl(fd, SIOCATMARK, &n) == 0 ? n : -errno;
}

/* A read of up to n bytes, shown as its result and the bytes it returned. */
static void rd(const char *label, int fd, int n, int flags)
{
    char buf[64] = {0};
    long r = recv(fd, buf, n, flags | MSG_DONTWAIT);
    if (r < 0)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        printf("%s: %ld \"%.*s\"\n", label, r, (int)r, buf);
}

/* recvmsg(MSG_OOB), showing the byte and msg_flags. */
static void rd_oob(const char *label, int fd, int flags)
{
    char c = '?';
    struct iovec iov = {&c, 1};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    long r = recvmsg(fd, &mh, MSG_OOB | MSG_DONTWAIT | flags);
    if (r < 0)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        printf("%s: %ld '%c' flags=%#x\n", label, r, r ? c : '-', mh.msg_flags);
}

static void state(const char *label, int fd)
{
    printf("%s: inq=%d atmark=%d\n", label, inq(fd), atmark(fd));
    show_poll(label, fd);
    struct pollfd p = {fd, POLLPRI, 0};
    poll(&p, 1, 0);
    printf("%s: pri=%d\n", label, !!(p.revents & POLLPRI));
}

static void basics(void)
{
    int sv[2];
    pair(SOCK_STREAM, sv);
    state("fresh", sv[1]);
    rd_oob("recv OOB with none", sv[1], 0);
    show("send abc OOB", send(sv[0], "abc", 3, MSG_OOB));
    state("after OOB send", sv[1]);
    rd_oob("peek OOB", sv[1], MSG_PEEK);
    rd("read 10", sv[1], 10, 0);
    state("at the mark", sv[1]);
    rd("read at the mark", sv[1], 10, MSG_PEEK);
    rd_oob("recv OOB", sv[1], 0);
    state("after recv OOB", sv[1]);
    rd_oob("recv OOB again", sv[1], 0);
    rd("read after", sv[1], 10, 0);
    state("drained", sv[1]);
    show("send empty OOB", send(sv[0], "", 0, MSG_OOB));
    closeall(sv[0], sv[1]);
}

static void read_past(void)
{
    int sv[2];
    pair(SOCK_STREAM, sv);
    show("send ab OOB", send(sv[0], "ab", 2, MSG_OOB));
    show("send cd", send(sv[0], "cd", 2, 0));
    state("past: before", sv[1]);
    rd("past: read 10", sv[1], 10, 0);
    state("past: at mark", sv[1]);
    rd("past: peek 10", sv[1], 10, MSG_PEEK);
    rd("past: read 10 again", sv[1], 10, 0);
    state("past: after", sv[1]);
    rd_oob("past: recv OOB", sv[1], 0);

    /* two urgent bytes: the first becomes ordinary data */
    show("send x OOB", send(sv[0], "x", 1, MSG_OOB));
    show("send y OOB", send(sv[0], "y", 1, MSG_OOB));
    state("two: before", sv[1]);
    rd("two: read 10", sv[1], 10, 0);
    state("two: after read", sv[1]);
    rd_oob("two: recv OOB", sv[1], 0);
    rd("two: read rest", sv[1], 10, 0);

    /* an urgent byte in the middle, taken first, then the data around it */
    show("send 12 OOB", send(sv[0], "12", 2, MSG_OOB));
    show("send 34", send(sv[0], "34", 2, 0));
    rd_oob("mid: recv OOB", sv[1], 0);
    state("mid: after recv OOB", sv[1]);
    rd("mid: read 10", sv[1], 10, 0);
    state("mid: after first read", sv[1]);
    rd("mid: read 10 again", sv[1], 10, 0);

    /* urgent byte first in the queue, read over with a waiting reader's buffer */
    show("send z OOB", send(sv[0], "z", 1, MSG_OOB));
    show("send tail", send(sv[0], "tail", 4, 0));
    state("head: before", sv[1]);
    rd("head: peek", sv[1], 10, MSG_PEEK);
    rd("head: read", sv[1], 10, 0);
    state("head: after", sv[1]);
    rd_oob("head: recv OOB", sv[1], 0);

    /* MSG_WAITALL stops at the mark too */
    show("send pq OOB", send(sv[0], "pq", 2, MSG_OOB));
    show("send rs", send(sv[0], "rs", 2, 0));
    rd("waitall: read 3", sv[1], 3, MSG_WAITALL);
    closeall(sv[0], sv[1]);
}

static void inline_mode(void)
{
    int sv[2], on = 1;
    pair(SOCK_STREAM, sv);
    show("SO_OOBINLINE", setsockopt(sv[1], SOL_SOCKET, SO_OOBINLINE, &on, sizeof on));
    show("inline: send ab OOB", send(sv[0], "ab", 2, MSG_OOB));
    show("inline: send cd", send(sv[0], "cd", 2, 0));
    state("inline: before", sv[1]);
    rd_oob("inline: recv OOB", sv[1], 0);
    rd("inline: read 10", sv[1], 10, 0);
    state("inline: at mark", sv[1]);
    rd("inline: read 10 again", sv[1], 10, 0);
    state("inline: drained", sv[1]);
    show("inline: send e OOB", send(sv[0], "e", 1, MSG_OOB));
    on = 0;
    show("inline off", setsockopt(sv[1], SOL_SOCKET, SO_OOBINLINE, &on, sizeof on));
    rd_oob("inline off: recv OOB", sv[1], 0);
    rd("inline off: read", sv[1], 10, 0);
    closeall(sv[0], sv[1]);
}

static void errors_and_signals(void)
{
    int sv[2];
    char c;
    pair(SOCK_DGRAM, sv);
    show("dgram send OOB", send(sv[0], "a", 1, MSG_OOB));
    show("dgram recv OOB", recv(sv[1], &c, 1, MSG_OOB | MSG_DONTWAIT));
    closeall(sv[0], sv[1]);
    pair(SOCK_SEQPACKET, sv);
    show("seqpacket send OOB", send(sv[0], "a", 1, MSG_OOB));
    show("seqpacket recv OOB", recv(sv[1], &c, 1, MSG_OOB | MSG_DONTWAIT));
    closeall(sv[0], sv[1]);

    int l = sock(SOCK_STREAM);
    show("unconnected send OOB", send(l, "a", 1, MSG_OOB | MSG_NOSIGNAL));
    show("unconnected recv OOB", recv(l, &c, 1, MSG_OOB | MSG_DONTWAIT));
    close(l);

    pair(SOCK_STREAM, sv);
    shutdown(sv[1], SHUT_RD);
    show("send OOB to shut reader", send(sv[0], "ab", 2, MSG_OOB | MSG_NOSIGNAL));
    show("inq after", inq(sv[1]));
    signal(SIGPIPE, on_sigpipe);
    show("send 1 OOB to shut reader", send(sv[0], "a", 1, MSG_OOB));
    show("send 2 OOB to shut reader", send(sv[0], "ab", 2, MSG_OOB));
    printf("SIGPIPEs: %d\n", sigpipes);
    signal(SIGPIPE, SIG_DFL);
    closeall(sv[0], sv[1]);

    pair(SOCK_STREAM, sv);
    show("send OOB for a zero-length recv", send(sv[0], "a", 1, MSG_OOB));
    show("recv OOB into 0 bytes", recv(sv[1], &c, 0, MSG_OOB));
    show("SIOCATMARK after", atmark(sv[1]));
    rd_oob("recv OOB after", sv[1], 0);
    closeall(sv[0], sv[1]);

    /* SIGURG goes to the owner only */
    signal(SIGURG, on_urg);
    pair(SOCK_STREAM, sv);
    show("send OOB without owner", send(sv[0], "a", 1, MSG_OOB));
    printf("SIGURG without owner: %d\n", urgs);
    int pid = getpid(), got = -1;
    show("FIOSETOWN", ioctl(sv[1], FIOSETOWN, &pid));
    ioctl(sv[1], FIOGETOWN, &got);
    printf("FIOGETOWN is us: %d\n", got == pid);
    show("send OOB with owner", send(sv[0], "b", 1, MSG_OOB));
    printf("SIGURG with owner: %d\n", urgs);
    show("send plain with owner", send(sv[0], "c", 1, 0));
    printf("SIGURG after plain: %d\n", urgs);
    int pg = -getpgrp();
    show("SIOCSPGRP", ioctl(sv[1], SIOCSPGRP, &pg));
    ioctl(sv[1], SIOCGPGRP, &got);
    printf("SIOCGPGRP is our group: %d\n", got == pg);
    show("send OOB with group owner", send(sv[0], "d", 1, MSG_OOB));
    printf("SIGURG with group owner: %d\n", urgs);
    /* fcntl's F_SETOWN/F_GETOWN are the same f_owner */
    show("F_SETOWN us", fcntl(sv[1], F_SETOWN, getpid()));
    printf("F_GETOWN is us: %d\n", fcntl(sv[1], F_GETOWN) == getpid());
    show("send OOB with fcntl owner", send(sv[0], "D", 1, MSG_OOB));
    printf("SIGURG with fcntl owner: %d\n", urgs);
    show("F_SETOWN no such pid", fcntl(sv[1], F_SETOWN, 4000000));
    printf("F_GETOWN unchanged: %d\n", fcntl(sv[1], F_GETOWN) == getpid());
    struct f_owner_ex ex = {F_OWNER_PGRP, getpgrp()};
    show("F_SETOWN_EX group", fcntl(sv[1], F_SETOWN_EX, &ex));
    printf("F_GETOWN is minus the group: %d\n", fcntl(sv[1], F_GETOWN) == -getpgrp());
    memset(&ex, 0, sizeof ex);
    show("F_GETOWN_EX", fcntl(sv[1], F_GETOWN_EX, &ex));
    printf("F_GETOWN_EX type=%d is our group: %d\n", ex.type, ex.pid == getpgrp());
    ex.type = F_OWNER_TID;
    ex.pid = gettid();
    show("F_SETOWN_EX thread", fcntl(sv[1], F_SETOWN_EX, &ex));
    show("send OOB with thread owner", send(sv[0], "T", 1, MSG_OOB));
    printf("SIGURG with thread owner: %d\n", urgs);
    ex.type = 7;
    show("F_SETOWN_EX bad type", fcntl(sv[1], F_SETOWN_EX, &ex));
    pid = 0;
    ioctl(sv[1], FIOSETOWN, &pid);
    show("send OOB owner cleared", send(sv[0], "e", 1, MSG_OOB));
    printf("SIGURG owner cleared: %d\n", urgs);
    closeall(sv[0], sv[1]);
    signal(SIGURG, SIG_DFL);

    /* epoll sees EPOLLPRI, edge-triggered once per urgent byte */
    pair(SOCK_STREAM, sv);
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLPRI | EPOLLET, {.u64 = 7}}, out[2];
    show("epoll add PRI", epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev));
    show("epoll before", epoll_wait(ep, out, 2, 0));
    show("send OOB", send(sv[0], "xy", 2, MSG_OOB));
    int n = epoll_wait(ep, out, 2, 0);
    printf("epoll after: %d events=%#x\n", n, n > 0 ? out[0].events : 0);
    show("epoll again (ET)", epoll_wait(ep, out, 2, 0));
    rd_oob("epoll: recv OOB", sv[1], 0);
    ev.events = EPOLLPRI;
    epoll_ctl(ep, EPOLL_CTL_MOD, sv[1], &ev);
    show("epoll after recv OOB", epoll_wait(ep, out, 2, 0));
    close(ep);

    /* the urgent byte carries the fds when it is the whole message */
    char ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {"f", 1};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    int one = 1;
    memcpy(CMSG_DATA(cm), &one, sizeof one);
    rd("drain", sv[1], 10, 0);
    show("sendmsg fd with OOB", sendmsg(sv[0], &mh, MSG_OOB));
    memset(&mh, 0, sizeof mh);
    char b = 0;
    struct iovec iv = {&b, 1};
    mh.msg_iov = &iv;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    long r = recvmsg(sv[1], &mh, MSG_OOB);
    printf("recvmsg OOB with fd: %ld '%c' controllen=%d flags=%#x\n", r, b,
           (int)mh.msg_controllen, mh.msg_flags);
    closeall(sv[0], sv[1]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    basics();
    read_past();
    inline_mode();
    errors_and_signals();
    return 0;
}
