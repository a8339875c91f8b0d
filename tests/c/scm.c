/* Ancillary data over AF_UNIX sockets: SCM_RIGHTS (a pipe, an epoll instance, a socket,
 * O_PATH and regular files; within one process and across processes; the received fds
 * share the sender's open file descriptions), MSG_CMSG_CLOEXEC, MSG_CTRUNC with a
 * control buffer too small (the excess is closed), MSG_PEEK with fds, stream reads that
 * never merge across a message carrying fds, malformed control messages (EINVAL, EBADF),
 * SCM_CREDENTIALS with SO_PASSCRED (defaults, explicit values, EPERM for another pid),
 * and SO_PEERCRED for socketpair, connect and accept.
 *
 * Pids are printed only as relations to getpid()/the child's pid. */
#define STATUS_BY_NUMBER
#include "proc_helpers.h"
#include "unix_helpers.h"
#include <poll.h>
#include <stddef.h>
#include <grp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>


/* sendmsg of `data` with the given fds in one SCM_RIGHTS message (none when n == 0). */
static long send_fds(int sock, const char *data, const int *fds, int n, int flags)
{
    char ctl[CMSG_SPACE(sizeof(int) * 300)];
    struct iovec iov = {(void *)data, strlen(data)};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    if (n > 0) {
        memset(ctl, 0, sizeof ctl);
        mh.msg_control = ctl;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
    }
    return sendmsg(sock, &mh, flags);
}

struct received {
    long n;          /* recvmsg's result */
    int flags;       /* msg_flags */
    int controllen;  /* msg_controllen after the call */
    int nfds;        /* fds in the SCM_RIGHTS message */
    int fds[300];
    int has_cred;
    struct ucred cred;
    char data[256];
};

/* recvmsg with a control buffer of `ctl_len` bytes; the cmsgs decoded. */
static struct received recv_fds(int sock, size_t size, size_t ctl_len, int flags)
{
    static char ctl[4096];
    struct received r;
    memset(&r, 0, sizeof r);
    memset(ctl, 0, sizeof ctl);
    struct iovec iov = {r.data, size};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl_len ? ctl : NULL;
    mh.msg_controllen = ctl_len;
    r.n = recvmsg(sock, &mh, flags);
    if (r.n < 0) {
        r.n = -errno;
        return r;
    }
    r.flags = mh.msg_flags;
    r.controllen = (int)mh.msg_controllen;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            r.nfds = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(r.fds, CMSG_DATA(cm), sizeof(int) * r.nfds);
        } else if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_CREDENTIALS) {
            r.has_cred = 1;
            memcpy(&r.cred, CMSG_DATA(cm), sizeof r.cred);
        } else {
            printf("unexpected cmsg level %d type %d\n", cm->cmsg_level, cm->cmsg_type);
        }
    }
    return r;
}

static void show_received(const char *label, const struct received *r)
{
    if (r->n < 0) {
        printf("%s: errno=%s\n", label, ename((int)-r->n));
        return;
    }
    printf("%s: %ld [%.*s] flags=%#x controllen=%d nfds=%d cred=%d\n", label, r->n,
           (int)(r->n < 64 ? r->n : 64), r->data, r->flags, r->controllen, r->nfds, r->has_cred);
}

/* The lowest free descriptor (what the next fd will be). */
static int lowest_free(void)
{
    int fd = dup(0);
    close(fd);
    return fd;
}

/* ------------------------------------------------------------------ rights */

static void rights(void)
{
    section("SCM_RIGHTS within a process");
    int sv[2], p[2];
    pair(SOCK_STREAM, sv);
    make_pipe(p);
    show("send the pipe's write end", send_fds(sv[0], "P", &p[1], 1, 0));
    int free_before = lowest_free();
    struct received r = recv_fds(sv[1], 10, CMSG_SPACE(sizeof(int)), 0);
    show_received("recv", &r);
    CHECK("the new fd is the lowest free", r.nfds == 1 && r.fds[0] == free_before);
    CHECK("not close-on-exec", fcntl(r.fds[0], F_GETFD) == 0);
    show("write through the received fd", write(r.fds[0], "via", 3));
    char buf[64];
    show("read from the pipe", read(p[0], buf, sizeof buf));
    int fl = fcntl(p[1], F_GETFL);
    fcntl(r.fds[0], F_SETFL, fl | O_NONBLOCK);
    CHECK("same open file description (status flags shared)", fcntl(p[1], F_GETFL) & O_NONBLOCK);
    fcntl(p[1], F_SETFL, fl);
    close(r.fds[0]);
    close(p[1]);
    show("EOF once both write ends are closed", read(p[0], buf, sizeof buf));
    close(p[0]);

    /* MSG_CMSG_CLOEXEC */
    make_pipe(p);
    send_fds(sv[0], "C", &p[0], 1, 0);
    r = recv_fds(sv[1], 10, CMSG_SPACE(sizeof(int)), MSG_CMSG_CLOEXEC);
    show_received("recv MSG_CMSG_CLOEXEC", &r);
    CHECK("close-on-exec set", fcntl(r.fds[0], F_GETFD) == FD_CLOEXEC);
    close(r.fds[0]);

    /* several fds, several cmsgs, the same fd twice */
    int three[3] = {p[0], p[1], p[0]};
    show("send 3 fds", send_fds(sv[0], "3", three, 3, 0));
    r = recv_fds(sv[1], 10, CMSG_SPACE(sizeof(int) * 3), 0);
    show_received("recv 3", &r);
    CHECK("three distinct new fds", r.nfds == 3 && r.fds[0] != r.fds[2] && r.fds[0] != r.fds[1]);
    for (int i = 0; i < r.nfds; i++)
        close(r.fds[i]);

    /* control buffer too small: MSG_CTRUNC, the excess is closed */
    send_fds(sv[0], "T", three, 3, 0);
    free_before = lowest_free();
    r = recv_fds(sv[1], 10, CMSG_LEN(sizeof(int) * 2), 0);
    show_received("recv 3 fds into room for 2", &r);
    CHECK("only two installed", r.nfds == 2 && lowest_free() == free_before + 2);
    for (int i = 0; i < r.nfds; i++)
        close(r.fds[i]);
    send_fds(sv[0], "N", three, 3, 0);
    free_before = lowest_free();
    r = recv_fds(sv[1], 10, 0, 0);
    show_received("recv with no control buffer", &r);
    CHECK("nothing installed", lowest_free() == free_before);
    send_fds(sv[0], "H", three, 1, 0);
    r = recv_fds(sv[1], 10, sizeof(struct cmsghdr), 0);
    show_received("recv with room for the header only", &r);
    send_fds(sv[0], "S", three, 1, 0);
    r = recv_fds(sv[1], 10, 4, 0);
    show_received("recv with a 4-byte control buffer", &r);

    /* stream reads never merge across a message with fds */
    write(sv[0], "ab", 2);
    send_fds(sv[0], "cd", &p[0], 1, 0);
    write(sv[0], "ef", 2);
    send_fds(sv[0], "gh", &p[1], 1, 0);
    r = recv_fds(sv[1], 100, CMSG_SPACE(sizeof(int)), 0);
    show_received("read up to the first fds", &r);
    close(r.fds[0]);
    r = recv_fds(sv[1], 100, CMSG_SPACE(sizeof(int)), 0);
    show_received("read up to the second fds", &r);
    close(r.fds[0]);
    write(sv[0], "ij", 2);
    r = recv_fds(sv[1], 100, CMSG_SPACE(sizeof(int)), 0);
    show_received("then plain data", &r);

    /* MSG_PEEK gives new fds too, and the message stays */
    send_fds(sv[0], "peek", &p[0], 1, 0);
    r = recv_fds(sv[1], 100, CMSG_SPACE(sizeof(int)), MSG_PEEK);
    show_received("peek", &r);
    int peeked = r.fds[0];
    r = recv_fds(sv[1], 100, CMSG_SPACE(sizeof(int)), 0);
    show_received("read after peek", &r);
    CHECK("peek and read gave different fds", r.nfds == 1 && r.fds[0] != peeked);
    close(peeked);
    close(r.fds[0]);

    /* errors */
    int bad = 77;
    show("send a closed fd", send_fds(sv[0], "x", &bad, 1, 0));
    int many[254];
    for (int i = 0; i < 254; i++)
        many[i] = p[0];
    show("send 254 fds", send_fds(sv[0], "x", many, 254, 0));
    show("send 253 fds", send_fds(sv[0], "x", many, 253, 0));
    r = recv_fds(sv[1], 10, CMSG_SPACE(sizeof(int) * 253), 0);
    show_received("recv 253", &r);
    for (int i = 0; i < r.nfds; i++)
        close(r.fds[i]);
    show("send 0 fds (empty SCM_RIGHTS)", send_fds(sv[0], "z", many, 0, 0));
    read(sv[1], buf, sizeof buf);
    char ctl[64];
    struct iovec iov = {"x", 1};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    struct cmsghdr *cm = (struct cmsghdr *)ctl;
    memset(ctl, 0, sizeof ctl);
    mh.msg_controllen = CMSG_SPACE(sizeof(int));
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = 8;
    show("cmsg_len shorter than the header", sendmsg(sv[0], &mh, 0));
    cm->cmsg_len = CMSG_SPACE(sizeof(int)) + 8;
    show("cmsg_len past the buffer", sendmsg(sv[0], &mh, 0));
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    cm->cmsg_type = 99;
    show("unknown SOL_SOCKET type", sendmsg(sv[0], &mh, 0));
    cm->cmsg_level = 6;
    show("other level is ignored", sendmsg(sv[0], &mh, 0));
    mh.msg_controllen = 8;
    show("controllen smaller than a header", sendmsg(sv[0], &mh, 0));
    read(sv[1], buf, sizeof buf);
    mh.msg_control = (void *)8;
    mh.msg_controllen = 32;
    show("control buffer unreadable", sendmsg(sv[0], &mh, 0));
    closeall(p[0], p[1]);
    closeall(sv[0], sv[1]);

    /* fds sent but never received are closed with the socket */
    pair(SOCK_DGRAM, sv);
    make_pipe(p);
    send_fds(sv[0], "lost", &p[1], 1, 0);
    close(p[1]);
    closeall(sv[0], sv[1]);
    show("EOF: the in-flight write end went with the socket", read(p[0], buf, sizeof buf));
    close(p[0]);

    /* datagrams carry their fds whole */
    pair(SOCK_DGRAM, sv);
    make_pipe(p);
    send_fds(sv[0], "dgram-with-fd", &p[1], 1, 0);
    r = recv_fds(sv[1], 5, CMSG_SPACE(sizeof(int)), 0);
    show_received("dgram truncated, fd kept", &r);
    close(r.fds[0]);
    closeall(p[0], p[1]);
    closeall(sv[0], sv[1]);

    /* a socket sent over itself, and an O_PATH fd */
    pair(SOCK_STREAM, sv);
    show("send a socket over itself", send_fds(sv[0], "self", &sv[1], 1, 0));
    r = recv_fds(sv[1], 10, CMSG_SPACE(sizeof(int)), 0);
    show_received("recv own socket", &r);
    show("write via the received copy", write(sv[0], "k", 1));
    show("read it from the copy", read(r.fds[0], buf, 1));
    close(r.fds[0]);
    put_file("regular", "contents");
    int opath = open("regular", O_PATH);
    int reg = open("regular", O_RDONLY);
    int two[2] = {opath, reg};
    show("send O_PATH and regular fds", send_fds(sv[0], "files", two, 2, 0));
    r = recv_fds(sv[1], 10, CMSG_SPACE(sizeof(int) * 2), 0);
    show_received("recv files", &r);
    show("read the received regular file", read(r.fds[1], buf, 4));
    show("offset shared with the sender's fd", lseek(reg, 0, SEEK_CUR));
    show("the O_PATH fd stays O_PATH", read(r.fds[0], buf, 1));
    close(r.fds[0]);
    close(r.fds[1]);
    closeall(opath, reg);
    unlink("regular");
    closeall(sv[0], sv[1]);
}

/* ------------------------------------------------------------------ across processes */

static void across(void)
{
    section("SCM_RIGHTS across processes");
    int sv[2];
    pair(SOCK_SEQPACKET, sv);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        close(sv[0]);
        /* the child makes a pipe and an epoll instance watching its read end */
        int p[2];
        make_pipe(p);
        int ep = epoll_create1(0);
        struct epoll_event ev = {EPOLLIN, {.u64 = 42}};
        epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
        int fds[3] = {p[0], p[1], ep};
        if (send_fds(sv[1], "from-child", fds, 3, 0) < 0)
            _exit(1);
        closeall(p[0], p[1]);
        close(ep);
        /* then waits for the parent to send back a pipe to write into */
        struct received r = recv_fds(sv[1], 100, CMSG_SPACE(sizeof(int)), 0);
        if (r.nfds != 1)
            _exit(2);
        write(r.fds[0], "child-wrote", 11);
        _exit(0);
    }
    close(sv[1]);
    struct received r = recv_fds(sv[0], 100, CMSG_SPACE(sizeof(int) * 3), 0);
    show_received("parent receives 3 fds", &r);
    int rd = r.fds[0], wr = r.fds[1], ep = r.fds[2];
    struct epoll_event ev;
    show("epoll_wait on the received instance (empty pipe)", epoll_wait(ep, &ev, 1, 0));
    write(wr, "ping", 4);
    int n = epoll_wait(ep, &ev, 1, 1000);
    printf("epoll_wait after a write: %d data=%llu\n", n, (unsigned long long)ev.data.u64);
    char buf[64];
    show("read the pipe", read(rd, buf, sizeof buf));
    int p[2];
    make_pipe(p);
    send_fds(sv[0], "back", &p[1], 1, 0);
    close(p[1]);
    memset(buf, 0, sizeof buf);
    long got = 0, k;
    while ((k = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += k;
    printf("parent reads what the child wrote: %ld [%s]\n", got, buf);
    show_status("child", reap(pid));
    close(p[0]);
    close(rd);
    close(wr);
    close(ep);
    close(sv[0]);

    /* a listening socket's connection passed to another process (a pre-fork server) */
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = {AF_UNIX, "srv"};
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 4);
    pair(SOCK_DGRAM, sv);
    pid = fork_or_die();
    if (pid == 0) {
        close(sv[0]);
        close(l);
        struct received c = recv_fds(sv[1], 10, CMSG_SPACE(sizeof(int)), 0);
        if (c.nfds != 1)
            _exit(1);
        char b[16];
        long m = read(c.fds[0], b, sizeof b);
        write(c.fds[0], "worker:", 7);
        write(c.fds[0], b, m);
        _exit(0);
    }
    close(sv[1]);
    int cl = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(cl, (struct sockaddr *)&a, sizeof a);
    int s = accept(l, NULL, NULL);
    send_fds(sv[0], "conn", &s, 1, 0);
    close(s);
    write(cl, "hello", 5);
    shutdown(cl, SHUT_WR);
    memset(buf, 0, sizeof buf);
    got = 0;
    while ((k = read(cl, buf + got, sizeof buf - 1 - got)) > 0)
        got += k;
    printf("client got: %ld [%s]\n", got, buf);
    show_status("worker", reap(pid));
    closeall(cl, l);
    close(sv[0]);
    unlink("srv");
}

/* ------------------------------------------------------------------ credentials */

static void credentials(void)
{
    section("SCM_CREDENTIALS and SO_PEERCRED");
    int sv[2], one = 1;
    pair(SOCK_DGRAM, sv);
    send(sv[0], "before", 6, 0);
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    send(sv[0], "after", 5, 0);
    struct received r = recv_fds(sv[1], 100, 256, 0);
    show_received("sent before SO_PASSCRED", &r);
    printf("cred: pid is 0: %d, uid=%d gid=%d\n", r.cred.pid == 0, (int)r.cred.uid, (int)r.cred.gid);
    r = recv_fds(sv[1], 100, 256, 0);
    show_received("sent after SO_PASSCRED", &r);
    printf("cred: pid is ours: %d, uid=%d gid=%d\n", r.cred.pid == getpid(), (int)r.cred.uid, (int)r.cred.gid);
    send(sv[0], "nobuf", 5, 0);
    r = recv_fds(sv[1], 100, 0, 0);
    show_received("SO_PASSCRED, no control buffer", &r);
    send(sv[0], "small", 5, 0);
    r = recv_fds(sv[1], 100, CMSG_LEN(4), 0);
    show_received("SO_PASSCRED, control buffer too small", &r);

    /* explicit credentials */
    char ctl[CMSG_SPACE(sizeof(struct ucred))];
    struct iovec iov = {"explicit", 8};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_CREDENTIALS;
    cm->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred uc = {getpid(), getuid(), getgid()};
    memcpy(CMSG_DATA(cm), &uc, sizeof uc);
    show("send own credentials", sendmsg(sv[0], &mh, 0));
    r = recv_fds(sv[1], 100, 256, 0);
    show_received("recv", &r);
    printf("cred: pid is ours: %d\n", r.cred.pid == getpid());
    uc.pid = getppid() == 0 ? 1 : 1;
    memcpy(CMSG_DATA(cm), &uc, sizeof uc);
    show("send pid 1 as root (CAP_SYS_ADMIN)", sendmsg(sv[0], &mh, 0));
    r = recv_fds(sv[1], 100, 256, 0);
    printf("cred pid: %d\n", r.cred.pid);
    uc.pid = 999999;
    memcpy(CMSG_DATA(cm), &uc, sizeof uc);
    show("send a pid that does not exist", sendmsg(sv[0], &mh, 0));
    cm->cmsg_len = CMSG_LEN(sizeof(struct ucred)) - 4;
    show("SCM_CREDENTIALS of the wrong size", sendmsg(sv[0], &mh, 0));
    closeall(sv[0], sv[1]);

    /* a stream read does not merge data from different senders when SO_PASSCRED is on */
    pair(SOCK_STREAM, sv);
    setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    write(sv[0], "parent", 6);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        write(sv[0], "child", 5);
        _exit(0);
    }
    reap(pid);
    r = recv_fds(sv[1], 100, 256, 0);
    show_received("stream with SO_PASSCRED: first sender", &r);
    printf("cred: pid is ours: %d\n", r.cred.pid == getpid());
    r = recv_fds(sv[1], 100, 256, 0);
    show_received("stream with SO_PASSCRED: second sender", &r);
    printf("cred: pid is the child's: %d\n", r.cred.pid == pid);
    closeall(sv[0], sv[1]);

    /* SO_PEERCRED: the peer as it was at connect/listen time */
    struct ucred pc;
    socklen_t pl = sizeof pc;
    pair(SOCK_STREAM, sv);
    getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &pc, &pl);
    printf("socketpair peer: pid is ours %d uid=%d gid=%d\n", pc.pid == getpid(), (int)pc.uid, (int)pc.gid);
    closeall(sv[0], sv[1]);
    int l = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un a = {AF_UNIX, "pc"};
    bind(l, (struct sockaddr *)&a, sizeof a);
    listen(l, 4);
    int p[2];
    make_pipe(p);
    pid = fork_or_die();
    if (pid == 0) {
        int c = socket(AF_UNIX, SOCK_SEQPACKET, 0);
        connect(c, (struct sockaddr *)&a, sizeof a);
        struct ucred cc;
        socklen_t cl = sizeof cc;
        getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cc, &cl);
        put_byte(p[1], cc.pid == getppid() ? 'y' : 'n');
        get_byte(c);
        _exit(0);
    }
    int s = accept(l, NULL, NULL);
    getsockopt(s, SOL_SOCKET, SO_PEERCRED, &pc, &pl);
    printf("accepted peer: pid is the child's %d uid=%d gid=%d\n", pc.pid == pid, (int)pc.uid, (int)pc.gid);
    printf("child sees the listener's pid: %c\n", get_byte(p[0]));
    getsockopt(l, SOL_SOCKET, SO_PEERCRED, &pc, &pl);
    printf("listener's own SO_PEERCRED: pid is ours %d\n", pc.pid == getpid());
    write(s, "x", 1);
    show_status("connecting child", reap(pid));
    closeall(p[0], p[1]);
    closeall(s, l);
    unlink("pc");

    /* SO_PEERGROUPS: the connecting process's supplementary groups */
    l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un ga = {AF_UNIX, "pg"};
    bind(l, (struct sockaddr *)&ga, sizeof ga);
    listen(l, 4);
    gid_t gl[8];
    socklen_t gn = sizeof gl;
    show("SO_PEERGROUPS on a listener", getsockopt(l, SOL_SOCKET, SO_PEERGROUPS, gl, &gn));
    int unc = socket(AF_UNIX, SOCK_STREAM, 0);
    gn = sizeof gl;
    show("SO_PEERGROUPS unconnected", getsockopt(unc, SOL_SOCKET, SO_PEERGROUPS, gl, &gn));
    close(unc);
    pid = fork_or_die();
    if (pid == 0) {
        gid_t mine[2] = {5, 6};
        if (setgroups(2, mine) != 0)
            _exit(2);
        int c = socket(AF_UNIX, SOCK_STREAM, 0);
        connect(c, (struct sockaddr *)&ga, sizeof ga);
        get_byte(c);
        _exit(0);
    }
    s = accept(l, NULL, NULL);
    gn = 4;
    show("SO_PEERGROUPS, room for one", getsockopt(s, SOL_SOCKET, SO_PEERGROUPS, gl, &gn));
    printf("optlen now %d\n", (int)gn);
    gn = sizeof gl;
    show("SO_PEERGROUPS", getsockopt(s, SOL_SOCKET, SO_PEERGROUPS, gl, &gn));
    printf("groups: %d: %d %d\n", (int)(gn / sizeof(gid_t)), (int)gl[0], (int)gl[1]);
    write(s, "x", 1);
    show_status("child with groups 5 6", reap(pid));
    closeall(s, l);
    unlink("pg");
}

/* Linux's garbage collector frees sockets that only messages no one can read keep open;
 * it runs asynchronously after a unix socket is released, so closing an unrelated pair
 * prompts it and poll waits (up to 5 s) for its result. */
static void gc_prompt_and_wait(const char *label, int fd)
{
    int t[2];
    pair(SOCK_STREAM, t);
    closeall(t[0], t[1]);
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 5000);
    printf("%s: poll=%d revents=%#x\n", label, r, p.revents);
}

static void garbage(void)
{
    int a[2], b[2], p[2];
    char buf[8];

    /* a socket queued on itself, with a pipe's write end: both are closed */
    pair(SOCK_STREAM, a);
    if (pipe(p) != 0)
        die("pipe");
    int self[2] = {a[0], p[1]};
    show("send self and pipe", send_fds(a[1], "s", self, 2, 0));
    close(a[0]);
    close(p[1]);
    gc_prompt_and_wait("self: pipe reader", p[0]);
    gc_prompt_and_wait("self: peer", a[1]);
    show("self: peer reads EOF", read(a[1], buf, sizeof buf));
    show("self: peer outq", outq(a[1]));
    closeall(a[1], p[0]);

    /* a cycle through two pairs: each held only by the other's queue */
    pair(SOCK_STREAM, a);
    pair(SOCK_SEQPACKET, b);
    show("send b0 into a0", send_fds(a[1], "1", &b[0], 1, 0));
    show("send a0 into b0", send_fds(b[1], "2", &a[0], 1, 0));
    close(a[0]);
    show_poll("cycle: a1 with b0 still open", a[1]);
    close(b[0]);
    gc_prompt_and_wait("cycle: a1", a[1]);
    gc_prompt_and_wait("cycle: b1", b[1]);
    show_poll("cycle: a1", a[1]);
    show_poll("cycle: b1", b[1]);
    show("cycle: a1 reads EOF", read(a[1], buf, sizeof buf));
    show("cycle: a1 outq", outq(a[1]));
    show("cycle: b1 outq", outq(b[1]));
    show("cycle: b1 send", send(b[1], "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL));
    closeall(a[1], b[1]);

    /* held by a live socket's queue: not garbage, and usable once received */
    pair(SOCK_STREAM, a);
    pair(SOCK_STREAM, b);
    show("send a0 into b1", send_fds(b[0], "3", &a[0], 1, 0));
    close(a[0]);
    int t[2];
    pair(SOCK_STREAM, t);
    closeall(t[0], t[1]);
    show_poll("live: a1", a[1]);
    struct received r = recv_fds(b[1], 10, CMSG_SPACE(sizeof(int)), 0);
    printf("live: received %ld bytes, %d fds\n", r.n, r.nfds);
    if (r.nfds == 1) {
        show("live: write through the received fd", write(r.fds[0], "hi", 2));
        show("live: a1 reads", read(a[1], buf, sizeof buf));
        close(r.fds[0]);
    }
    closeall(a[1], b[0]);
    close(b[1]);

    /* a listener queued on its own pending connection */
    int l = sock(SOCK_STREAM), c = sock(SOCK_STREAM);
    show("bind @scm_gc", bind_name(l, "@scm_gc"));
    show("listen", listen(l, 1));
    show("connect", connect_name(c, "@scm_gc"));
    show("send listener into its embryo", send_fds(c, "l", &l, 1, 0));
    close(l);
    gc_prompt_and_wait("listener: client", c);
    show_poll("listener: client", c);
    show("listener: client reads", read(c, buf, sizeof buf));
    show("listener: connect again", connect_name(sock(SOCK_STREAM), "@scm_gc"));
    close(c);
}

/* More files in flight than RLIMIT_NOFILE for one user: ETOOMANYREFS (unless capable:
 * the child drops root, and its capabilities with it). */
static void too_many(void)
{
    pid_t c = fork_or_die();
    if (c == 0) {
        struct rlimit rl = {12, 12};
        int sv[2], d[2], fds[3] = {0, 1, 2}, n = 0;
        char b[8];
        setrlimit(RLIMIT_NOFILE, &rl);
        if (setuid(65534) != 0)
            die("setuid");
        pair(SOCK_STREAM, sv);
        pair(SOCK_DGRAM, d);
        while (send_fds(sv[0], "x", fds, 3, MSG_DONTWAIT) == 1)
            n++;
        printf("in flight: %d messages of 3 fds, then %s\n", n, ename(errno));
        show("one more on another socket", send_fds(d[0], "y", fds, 1, 0));
        show("read one message", recv(sv[1], b, 1, 0));
        show("one more after the read", send_fds(d[0], "y", fds, 1, 0));
        show("no fds", send(d[0], "z", 1, 0));
        fflush(stdout);
        _exit(0);
    }
    printf("too_many child: %d\n", reap(c));
}

int main(void)
{
    test_init();
    signal(SIGPIPE, SIG_IGN);
    rights();
    across();
    credentials();
    garbage();
    too_many();
    show_all_reaped();
    return 0;
}
