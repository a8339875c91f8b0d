/* AF_UNIX SOCK_DGRAM and SOCK_SEQPACKET: message boundaries, MSG_TRUNC (the real length)
 * and MSG_PEEK, sendto/recvfrom with path and abstract names (a namespace per socket
 * type), connect semantics of datagram sockets (EPERM towards a socket connected
 * elsewhere, ECONNREFUSED once the peer is gone, then ENOTCONN), autobind, the receive
 * queue limit, EMSGSIZE, shutdown, SEQPACKET listen/accept/EOF, and poll masks.
 *
 * Only return values, errno names, masks and relations are printed. */
#define STATUS_BY_NUMBER
#include "proc_helpers.h"
#include "unix_helpers.h"

static char big[1 << 20];

static long send_to(int fd, const char *msg, const char *name)
{
    struct sockaddr_un a;
    socklen_t n = mkaddr(&a, name);
    return sendto(fd, msg, strlen(msg), MSG_DONTWAIT, (struct sockaddr *)&a, n);
}

/* recvfrom into buf; prints the length, the data and the sender's name. */
static long show_recv(const char *label, int fd, size_t size, int flags)
{
    char buf[512];
    struct sockaddr_un a;
    memset(&a, 0x55, sizeof a);
    socklen_t n = sizeof a;
    long r = recvfrom(fd, buf, size, flags, (struct sockaddr *)&a, &n);
    if (r < 0) {
        printf("%s: errno=%s\n", label, ename(errno));
        return r;
    }
    printf("%s: %ld [%.*s] from len=%d", label, r, (int)(r < (long)size ? r : (long)size), buf, (int)n);
    if (n > offsetof(struct sockaddr_un, sun_path)) {
        if (a.sun_path[0])
            printf(" %s", a.sun_path);
        else
            printf(" @%.*s", (int)(n - offsetof(struct sockaddr_un, sun_path) - 1), a.sun_path + 1);
    }
    printf("\n");
    return r;
}

/* recvmsg showing msg_flags (MSG_TRUNC, MSG_EOR...). */
static void show_recvmsg(const char *label, int fd, size_t size, int flags)
{
    char buf[512];
    struct iovec iov = {buf, size};
    struct msghdr mh = {0};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    long r = recvmsg(fd, &mh, flags);
    if (r < 0)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        printf("%s: %ld [%.*s] flags=%#x\n", label, r, (int)(r < (long)size ? r : (long)size), buf,
               mh.msg_flags);
}

/* ------------------------------------------------------------------ datagrams */

static void datagrams(void)
{
    section("dgram socketpair");
    int sv[2];
    pair(SOCK_DGRAM, sv);
    show_poll("fresh dgram pair", sv[0]);
    send(sv[0], "first", 5, 0);
    send(sv[0], "second!", 7, 0);
    send(sv[0], "", 0, 0);
    show("inq: first datagram", inq(sv[1]));
    CHECK("outq counts three datagrams", outq(sv[0]) >= 3 * 768);
    show_recv("recv 3 of 5", sv[1], 3, 0);
    show_recv("recv MSG_PEEK", sv[1], 100, MSG_PEEK);
    show_recv("recv MSG_TRUNC 2", sv[1], 2, MSG_TRUNC);
    show("inq: the empty datagram", inq(sv[1]));
    show_poll("empty datagram pending", sv[1]);
    show_recv("recv empty datagram", sv[1], 100, 0);
    show("recv nothing (DONTWAIT)", recv(sv[1], big, 10, MSG_DONTWAIT));
    send(sv[0], "truncated", 9, 0);
    show_recvmsg("recvmsg short", sv[1], 4, 0);
    send(sv[0], "exact", 5, 0);
    show_recvmsg("recvmsg exact", sv[1], 5, 0);
    send(sv[0], "peeked", 6, 0);
    show_recvmsg("recvmsg MSG_PEEK|MSG_TRUNC short", sv[1], 2, MSG_PEEK | MSG_TRUNC);
    show_recvmsg("recvmsg after peek", sv[1], 100, 0);
    struct iovec iov[2] = {{"ab", 2}, {"cd", 2}};
    show("writev is one datagram", writev(sv[0], iov, 2));
    char x[3], y[3];
    struct iovec rv[2] = {{x, 3}, {y, 3}};
    show("readv", readv(sv[1], rv, 2));
    show_bytes("readv x", x, 3);
    show_bytes("readv y", y, 1);
    show("read zero bytes", read(sv[1], big, 0));
    send(sv[0], "zz", 2, 0);
    show("read 0 consumes?", recv(sv[1], big, 0, 0));
    show("inq after 0-byte recv", inq(sv[1]));
    show("sendto an address on a connected pair", send_to(sv[0], "x", "nowhere"));
    show("send MSG_OOB", send(sv[0], "x", 1, MSG_OOB));
    show("recv MSG_OOB", recv(sv[1], big, 1, MSG_OOB));
    show("send MSG_EOR", send(sv[0], "e", 1, MSG_EOR));
    show_recvmsg("recv it", sv[1], 10, 0);
    show("send > sndbuf-32", send(sv[0], big, 212961, 0));
    show("send = sndbuf-32", send(sv[0], big, 212960, MSG_DONTWAIT));
    show("inq of the big one", inq(sv[1]));
    show_poll("after the big one, sender", sv[0]);
    show("recv the big one", recv(sv[1], big, sizeof big, 0));
    closeall(sv[0], sv[1]);

    pair(SOCK_DGRAM, sv);
    show("shutdown SHUT_WR (dgram)", shutdown(sv[0], SHUT_WR));
    show_poll("dgram SHUT_WR self", sv[0]);
    show_poll("dgram SHUT_WR peer", sv[1]);
    show("send after own SHUT_WR", send(sv[0], "x", 1, MSG_NOSIGNAL));
    sigpipes = 0;
    show("send after own SHUT_WR (signal)", send(sv[0], "x", 1, 0));
    printf("SIGPIPE count: %d\n", sigpipes);
    show("peer sends back", send(sv[1], "y", 1, 0));
    show("shutdown SHUT_RD (dgram)", shutdown(sv[0], SHUT_RD));
    show_poll("dgram SHUT_RDWR self", sv[0]);
    show("recv queued after SHUT_RD", recv(sv[0], big, 10, 0));
    show("recv empty after SHUT_RD", recv(sv[0], big, 10, 0));
    show("recv empty after SHUT_RD (DONTWAIT)", recv(sv[0], big, 10, MSG_DONTWAIT));
    closeall(sv[0], sv[1]);

    pair(SOCK_DGRAM, sv);
    send(sv[1], "to a", 4, 0);
    send(sv[0], "to b", 4, 0);
    close(sv[1]);
    show_poll("dgram peer closed", sv[0]);
    show("recv from closed peer's data", recv(sv[0], big, 10, MSG_DONTWAIT));
    show("send to closed peer", send(sv[0], "x", 1, 0));
    show("send again", send(sv[0], "x", 1, 0));
    show_poll("after ECONNREFUSED", sv[0]);
    close(sv[0]);
    pair(SOCK_DGRAM, sv);
    send(sv[1], "to a", 4, 0);
    close(sv[1]);
    show("send to closed peer, own queue pending", send(sv[0], "x", 1, 0));
    show("own queue after that", recv(sv[0], big, 10, MSG_DONTWAIT));
    close(sv[0]);
}

/* ------------------------------------------------------------------ names */

static void naming(void)
{
    section("dgram names");
    int a = sock(SOCK_DGRAM), b = sock(SOCK_DGRAM), c = sock(SOCK_DGRAM);
    show("bind a", bind_name(a, "da"));
    show("bind b abstract", bind_name(b, "@sv-test-b"));
    show("bind c abstract in use", bind_name(c, "@sv-test-b"));
    int s = sock(SOCK_STREAM);
    show("bind stream to the same abstract name", bind_name(s, "@sv-test-b"));
    int q = sock(SOCK_SEQPACKET);
    show("bind seqpacket to the same abstract name", bind_name(q, "@sv-test-b"));
    close(q);
    close(s);
    show("sendto a path", send_to(c, "to-a", "da"));
    show("sendto abstract", send_to(a, "to-b", "@sv-test-b"));
    show("sendto missing path", send_to(a, "x", "missing"));
    show("sendto missing abstract", send_to(a, "x", "@sv-missing"));
    show("sendto abstract prefix", send_to(a, "x", "@sv-test"));
    show_recv("a receives from unbound c", a, 100, 0);
    show_recv("b receives from a", b, 100, 0);
    show("send unconnected, no address", send(c, "x", 1, 0));
    show("write unconnected", write(c, "x", 1));
    show("sendto len 2 address", sendto(c, "x", 1, 0, (struct sockaddr *)&(sa_family_t){AF_UNIX}, 2));
    show("sendto NULL address len 10", sendto(c, "x", 1, 0, NULL, 10));
    int st = sock(SOCK_STREAM);
    bind_name(st, "stream-sock");
    show("sendto a stream socket's path", send_to(c, "x", "stream-sock"));
    close(st);
    unlink("stream-sock");

    /* connect */
    show("connect c to a", connect_name(c, "da"));
    show_poll("connected dgram", c);

    struct sockaddr_un pn;
    socklen_t pl = sizeof pn;
    show("getpeername", getpeername(c, (struct sockaddr *)&pn, &pl));
    printf("peer len=%d path=%s\n", (int)pl, pn.sun_path);
    show("send connected", send(c, "via-connect", 11, 0));
    show_recv("a receives", a, 100, 0);
    show("b sends to a (a unconnected)", send_to(b, "from-b", "da"));
    show_recv("a receives from b", a, 100, 0);
    show("a connects to b", connect_name(a, "@sv-test-b"));
    show("c sends to a, connected elsewhere", send(c, "x", 1, 0));
    show("b sends to a (a's peer)", send_to(b, "ok", "da"));
    show_recv("a receives from its peer", a, 100, 0);
    show("connect AF_UNSPEC dissolves", connect(a, (struct sockaddr *)&(struct sockaddr){AF_UNSPEC}, sizeof(struct sockaddr)));
    show("getpeername after AF_UNSPEC", getpeername(a, (struct sockaddr *)&pn, &pl));
    show("c sends to a again", send(c, "again", 5, 0));
    show_recv("a receives", a, 100, 0);
    show("connect to missing", connect_name(c, "missing"));
    show("still connected to a?", send(c, "still", 5, 0));
    show_recv("a receives", a, 100, 0);
    show("reconnect to b", connect_name(c, "@sv-test-b"));
    show("send after reconnect", send(c, "to-b", 4, 0));
    show_recv("b receives", b, 100, 0);
    show("connect dgram to itself", connect_name(b, "@sv-test-b"));
    show("send to self", send(b, "self", 4, 0));
    show_recv("self receives", b, 100, 0);
    closeall(a, b);
    close(c);
    unlink("da");

    /* autobind on connect/send with SO_PASSCRED */
    a = sock(SOCK_DGRAM);
    bind_name(a, "@sv-auto-target");
    b = sock(SOCK_DGRAM);
    int one = 1;
    setsockopt(b, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    show("sendto with SO_PASSCRED (unbound)", send_to(b, "auto", "@sv-auto-target"));
    struct sockaddr_un nm;
    socklen_t nl = sizeof nm;
    getsockname(b, (struct sockaddr *)&nm, &nl);
    printf("sender autobound: len=%d abstract=%d\n", (int)nl, nm.sun_path[0] == 0);
    nl = sizeof nm;
    recvfrom(a, big, 10, 0, (struct sockaddr *)&nm, &nl);
    printf("receiver sees a name of len=%d\n", (int)nl);
    c = sock(SOCK_DGRAM);
    send_to(c, "plain", "@sv-auto-target");
    nl = sizeof nm;
    getsockname(c, (struct sockaddr *)&nm, &nl);
    printf("sender without SO_PASSCRED stays unbound: len=%d\n", (int)nl);
    int d = sock(SOCK_DGRAM);
    setsockopt(d, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
    connect_name(d, "@sv-auto-target");
    nl = sizeof nm;
    getsockname(d, (struct sockaddr *)&nm, &nl);
    printf("connect with SO_PASSCRED autobinds: len=%d\n", (int)nl);
    closeall(a, b);
    closeall(c, d);
}

/* ------------------------------------------------------------------ queue limit */

static void queue_limit(void)
{
    section("receive queue limit");
    int r = sock(SOCK_DGRAM | SOCK_NONBLOCK);
    bind_name(r, "@sv-queue");
    int s = sock(SOCK_DGRAM | SOCK_NONBLOCK);
    int n = 0;
    while (send_to(s, "m", "@sv-queue") == 1)
        n++;
    printf("unconnected sender: %d datagrams, then %s\n", n, ename(errno));
    show_poll("unconnected sender when full", s);
    connect_name(s, "@sv-queue");
    show("connected sender when full", send(s, "m", 1, MSG_DONTWAIT));
    show_poll("connected sender when full", s);
    recv(r, big, 10, 0);
    show_poll("connected sender after one recv", s);
    show("send again", send(s, "m", 1, MSG_DONTWAIT));
    show("inq", inq(r));
    /* a blocked sender is woken by a receive in another process */
    pid_t pid = fork_or_die();
    if (pid == 0) {
        sleep_ms(50);
        recv(r, big, 10, 0);
        _exit(0);
    }
    int fl = fcntl(s, F_GETFL);
    fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
    show("blocking send waits for room", send(s, "w", 1, 0));
    show_status("receiver", reap(pid));
    int m = 0;
    while (recv(r, big, 10, MSG_DONTWAIT) >= 0)
        m++;
    printf("drained %d\n", m);
    closeall(r, s);

    int sv[2];
    pair(SOCK_DGRAM | SOCK_NONBLOCK, sv);
    n = 0;
    while (send(sv[0], "m", 1, 0) == 1)
        n++;
    printf("socketpair: %d datagrams before %s\n", n, ename(errno));
    closeall(sv[0], sv[1]);
    static const int sizes[] = {1, 1000, 3777, 16384, 65536, 100000};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        pair(SOCK_DGRAM, sv);
        send(sv[0], big, sizes[i], 0);
        printf("datagram %d: outq %d\n", sizes[i], outq(sv[0]));
        closeall(sv[0], sv[1]);
    }
}

/* ------------------------------------------------------------------ seqpacket */

static void seqpacket(void)
{
    section("seqpacket");
    int sv[2];
    pair(SOCK_SEQPACKET, sv);
    show_poll("fresh seqpacket pair", sv[0]);
    send(sv[0], "one", 3, 0);
    send(sv[0], "two-two", 7, 0);
    show_recvmsg("recvmsg short", sv[1], 2, 0);
    show_recvmsg("recvmsg MSG_TRUNC", sv[1], 3, MSG_TRUNC);
    show("write", write(sv[0], "w", 1));
    show_recvmsg("recvmsg", sv[1], 10, 0);
    show("sendto with address is ignored", send_to(sv[0], "addr", "nowhere"));
    show_recv("recv it", sv[1], 10, 0);
    show("send 0 bytes", send(sv[0], "", 0, 0));
    show("recv the empty packet", recv(sv[1], big, 10, MSG_DONTWAIT));
    show("recv nothing", recv(sv[1], big, 10, MSG_DONTWAIT));
    show("shutdown SHUT_WR", shutdown(sv[0], SHUT_WR));
    show_poll("seqpacket SHUT_WR self", sv[0]);
    show_poll("seqpacket SHUT_WR peer", sv[1]);
    show("peer recv: EOF", recv(sv[1], big, 10, 0));
    show("send after SHUT_WR", send(sv[0], "x", 1, MSG_NOSIGNAL));
    closeall(sv[0], sv[1]);
    pair(SOCK_SEQPACKET, sv);
    send(sv[0], "left", 4, 0);
    close(sv[0]);
    show_poll("seqpacket peer closed", sv[1]);
    show_recv("recv left-over", sv[1], 10, 0);
    show("recv EOF", recv(sv[1], big, 10, 0));
    show("recv EOF nonblock", recv(sv[1], big, 10, MSG_DONTWAIT));
    show("send to closed peer", send(sv[1], "x", 1, MSG_NOSIGNAL));
    sigpipes = 0;
    show("send to closed peer (signal)", send(sv[1], "x", 1, 0));
    printf("SIGPIPE count: %d\n", sigpipes);
    close(sv[1]);
    pair(SOCK_SEQPACKET, sv);
    send(sv[0], "unread", 6, 0);
    close(sv[1]);
    show_poll("seqpacket closed with data unread", sv[0]);
    show("send: the reset", send(sv[0], "x", 1, MSG_NOSIGNAL));
    show("send again", send(sv[0], "x", 1, MSG_NOSIGNAL));
    close(sv[0]);

    int l = sock(SOCK_SEQPACKET);
    show_poll("unbound seqpacket", l);
    show("seqpacket recv unconnected", recv(l, big, 10, MSG_DONTWAIT));
    show("seqpacket send unconnected", send(l, "x", 1, MSG_NOSIGNAL));
    show("bind", bind_name(l, "sp"));
    show("listen", listen(l, 4));
    show_poll("seqpacket listener", l);
    int c = sock(SOCK_SEQPACKET);
    show("connect", connect_name(c, "sp"));
    show_poll("seqpacket listener with pending", l);
    int s = show("accept", accept(l, NULL, NULL));
    show("send", send(c, "packet-1", 8, 0));
    show("send", send(c, "packet-2", 8, 0));
    show_recv("server recv", s, 6, 0);
    show_recv("server recv", s, 100, 0);
    int dg = sock(SOCK_DGRAM);
    show("dgram connect to seqpacket listener", connect_name(dg, "sp"));
    close(dg);
    int st = sock(SOCK_STREAM);
    show("stream connect to seqpacket listener", connect_name(st, "sp"));
    close(st);
    closeall(c, s);
    close(l);
    unlink("sp");
}


/* ------------------------------------------------------------------ mmsg */

static void batches(void)
{
    section("sendmmsg and recvmmsg");
    int sv[2];
    pair(SOCK_DGRAM, sv);
    struct mmsghdr out[3];
    struct iovec oi[3] = {{"one", 3}, {"two!", 4}, {"three", 5}};
    memset(out, 0, sizeof out);
    for (int i = 0; i < 3; i++) {
        out[i].msg_hdr.msg_iov = &oi[i];
        out[i].msg_hdr.msg_iovlen = 1;
    }
    show("sendmmsg 3", sendmmsg(sv[0], out, 3, 0));
    printf("msg_len: %u %u %u\n", out[0].msg_len, out[1].msg_len, out[2].msg_len);
    struct mmsghdr in[5];
    char bufs[5][8];
    struct iovec ii[5];
    memset(in, 0, sizeof in);
    for (int i = 0; i < 5; i++) {
        ii[i].iov_base = bufs[i];
        ii[i].iov_len = 4;
        in[i].msg_hdr.msg_iov = &ii[i];
        in[i].msg_hdr.msg_iovlen = 1;
    }
    show("recvmmsg 5 (MSG_DONTWAIT, 3 queued)", recvmmsg(sv[1], in, 5, MSG_DONTWAIT, NULL));
    for (int i = 0; i < 3; i++)
        printf("  [%d] len %u flags %#x [%.*s]\n", i, in[i].msg_len, in[i].msg_hdr.msg_flags,
               (int)(in[i].msg_len < 4 ? in[i].msg_len : 4), bufs[i]);
    show("recvmmsg on empty (MSG_DONTWAIT)", recvmmsg(sv[1], in, 5, MSG_DONTWAIT, NULL));
    send(sv[0], "a", 1, 0);
    send(sv[0], "b", 1, 0);
    show("recvmmsg MSG_WAITFORONE", recvmmsg(sv[1], in, 5, MSG_WAITFORONE, NULL));
    pid_t pid = fork_or_die();
    if (pid == 0) {
        sleep_ms(30);
        send(sv[0], "late", 4, 0);
        _exit(0);
    }
    show("recvmmsg MSG_WAITFORONE waits for the first", recvmmsg(sv[1], in, 5, MSG_WAITFORONE, NULL));
    show_status("late sender", reap(pid));
    show("sendmmsg vlen 0", sendmmsg(sv[0], out, 0, 0));
    out[1].msg_hdr.msg_iov = (void *)8;
    show("sendmmsg, second message faults", sendmmsg(sv[0], out, 3, 0));
    show("recvmmsg what arrived", recvmmsg(sv[1], in, 5, MSG_DONTWAIT, NULL));
    show("sendmmsg on a bad fd", sendmmsg(99, out, 1, 0));
    closeall(sv[0], sv[1]);
}

int main(void)
{
    test_init();
    set_action(SIGPIPE, on_sigpipe, 0);
    datagrams();
    naming();
    queue_limit();
    seqpacket();
    batches();
    show_all_reaped();
    return 0;
}
