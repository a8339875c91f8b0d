/* AF_UNIX SOCK_STREAM: socket/socketpair flags and errors, bind to a path (the socket file,
 * EADDRINUSE, umask), connect (ENOENT, ECONNREFUSED, EPROTOTYPE, EISCONN), listen/accept
 * with the backlog (a full backlog: EAGAIN for a non-blocking connect, a blocking one
 * waits until accept makes room), data (coalescing, partial reads, MSG_PEEK,
 * MSG_DONTWAIT, MSG_WAITALL), shutdown (EOF, EPIPE and SIGPIPE, MSG_NOSIGNAL), the send
 * buffer (how much fits before EAGAIN, SIOCOUTQ/SIOCINQ), poll masks in each state,
 * names (getsockname/getpeername), socket options and timeouts.
 *
 * Only return values, errno names, masks and relations are printed. */
#define STATUS_BY_NUMBER
#include "proc_helpers.h"
#include "unix_helpers.h"
#include <sys/epoll.h>
#include <sys/time.h>

static char big[1 << 20];

/* A listening socket bound to path. */
static int listener(const char *path, int backlog)
{
    int fd = sock(SOCK_STREAM);
    if (bind_name(fd, path) != 0 || listen(fd, backlog) != 0)
        die("listener");
    return fd;
}

/* Show a name as getsockname/getpeername return it: length and path (or abstract). */
static void show_name(const char *label, int fd, int peer)
{
    struct sockaddr_un a;
    memset(&a, 0x55, sizeof a);
    socklen_t n = sizeof a;
    int r = peer ? getpeername(fd, (struct sockaddr *)&a, &n) : getsockname(fd, (struct sockaddr *)&a, &n);
    if (r != 0) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: len=%d family=%d", label, (int)n, a.sun_family);
    if (n > offsetof(struct sockaddr_un, sun_path)) {
        if (a.sun_path[0])
            printf(" path=%s", a.sun_path);
        else
            printf(" abstract len=%d", (int)(n - offsetof(struct sockaddr_un, sun_path)));
    }
    printf("\n");
}

/* ------------------------------------------------------------------ creation */

static void creation(void)
{
    section("socket and socketpair");
    int fd = show("socket(AF_UNIX, SOCK_STREAM)", socket(AF_UNIX, SOCK_STREAM, 0));
    printf("flags: %s\n", (fcntl(fd, F_GETFL) & O_NONBLOCK) ? "nonblock" : "block");
    printf("cloexec: %d\n", fcntl(fd, F_GETFD));
    close(fd);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    printf("NONBLOCK|CLOEXEC: nonblock=%d cloexec=%d\n", !!(fcntl(fd, F_GETFL) & O_NONBLOCK),
           fcntl(fd, F_GETFD));
    printf("F_GETFL access: %d\n", fcntl(fd, F_GETFL) & O_ACCMODE);
    close(fd);
    show("socket(AF_UNIX, PF_UNIX protocol)", socket(AF_UNIX, SOCK_STREAM, PF_UNIX) >= 0 ? 0 : -1);
    show("socket(AF_UNIX, protocol 2)", socket(AF_UNIX, SOCK_STREAM, 2));
    {
        int raw = socket(AF_UNIX, SOCK_RAW, 0), ty = -1;
        socklen_t tl = sizeof ty;
        getsockopt(raw, SOL_SOCKET, SO_TYPE, &ty, &tl);
        printf("socket(AF_UNIX, SOCK_RAW): type %d\n", ty);
        close(raw);
    }
        show("socket(AF_UNIX, SOCK_RDM)", socket(AF_UNIX, SOCK_RDM, 0));
    show("socket(AF_UNIX, type 0)", socket(AF_UNIX, 0, 0));
    show("socket(AF_UNIX, type 11)", socket(AF_UNIX, 11, 0));
    show("socket(AF_UNIX, bad flag)", socket(AF_UNIX, SOCK_STREAM | 0x100, 0));
    show("socket(family 1000)", socket(1000, SOCK_STREAM, 0));
    show("socket(family -1)", socket(-1, SOCK_STREAM, 0));
    int sv[2] = {-1, -1};
    show("socketpair(stream)", socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    CHECK("socketpair fds are the two lowest", sv[1] == sv[0] + 1);
    closeall(sv[0], sv[1]);
    show("socketpair(NONBLOCK|CLOEXEC)", socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
    printf("both nonblock: %d %d, cloexec: %d %d\n", !!(fcntl(sv[0], F_GETFL) & O_NONBLOCK),
           !!(fcntl(sv[1], F_GETFL) & O_NONBLOCK), fcntl(sv[0], F_GETFD), fcntl(sv[1], F_GETFD));
    closeall(sv[0], sv[1]);
    show("socketpair(protocol 2)", socketpair(AF_UNIX, SOCK_STREAM, 2, sv));
    show("socketpair(SOCK_RDM)", socketpair(AF_UNIX, SOCK_RDM, 0, sv));
    show("socketpair(bad pointer)", socketpair(AF_UNIX, SOCK_STREAM, 0, (int *)8));
    struct stat st;
    pair(SOCK_STREAM, sv);
    fstat(sv[0], &st);
    printf("fstat: sock=%d mode=%o nlink=%d size=%ld\n", S_ISSOCK(st.st_mode), st.st_mode & 07777,
           (int)st.st_nlink, (long)st.st_size);
    show("lseek on socket", lseek(sv[0], 0, SEEK_SET));
    show("pread on socket", pread(sv[0], big, 1, 0));
    show("pwrite on socket", pwrite(sv[0], big, 1, 0));
    closeall(sv[0], sv[1]);
    int pp[2];
    make_pipe(pp);
    show("getsockname on a pipe", getsockname(pp[0], NULL, NULL));
    show("listen on a pipe", listen(pp[0], 1));
    show("accept on a closed fd", accept(99, NULL, NULL));
    closeall(pp[0], pp[1]);
}

/* ------------------------------------------------------------------ bind */

static void binding(void)
{
    section("bind");
    struct stat st;
    int a = sock(SOCK_STREAM);
    show("bind s1", bind_name(a, "s1"));
    show("stat s1 is a socket", stat("s1", &st) == 0 && S_ISSOCK(st.st_mode) ? 0 : -1);
    printf("s1 mode: %o\n", st.st_mode & 07777);
    show("bind again (bound)", bind_name(a, "s2"));
    show("s2 left behind", access("s2", F_OK));
    int b = sock(SOCK_STREAM);
    show("bind s1 in use", bind_name(b, "s1"));
    show("bind in missing dir", bind_name(b, "nodir/s"));
    put_file("plain", "x");
    show("bind over a file", bind_name(b, "plain"));
    umask(077);
    show("bind s3 with umask 077", bind_name(b, "s3"));
    stat("s3", &st);
    printf("s3 mode: %o\n", st.st_mode & 07777);
    umask(022);
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    int c = sock(SOCK_STREAM);
    show("bind len 0", bind(c, (struct sockaddr *)&addr, 0));
    show("bind len 1", bind(c, (struct sockaddr *)&addr, 1));
    show("bind len 111", bind(c, (struct sockaddr *)&addr, 111));
    show("bind len 129", bind(c, (struct sockaddr *)&addr, 129));
    show("bind len -1", bind(c, (struct sockaddr *)&addr, -1));
    show("bind NULL len 10", bind(c, NULL, 10));
    addr.sun_family = AF_INET;
    strcpy(addr.sun_path, "s4");
    show("bind AF_INET family", bind(c, (struct sockaddr *)&addr, 10));
    addr.sun_family = AF_UNIX;
    memcpy(addr.sun_path, "s5xyz", 5);
    show("bind unterminated, len 7", bind(c, (struct sockaddr *)&addr, 7));
    show("s5 exists", access("s5", F_OK));
    show_name("name of unterminated bind", c, 0);
    close(c);
    /* a path of 108 bytes with no NUL */
    c = sock(SOCK_STREAM);
    memset(addr.sun_path, 'p', sizeof addr.sun_path);
    show("bind 108-byte path", bind(c, (struct sockaddr *)&addr, sizeof addr));
    show_name("name of 108-byte bind", c, 0);
    close(c);
    unlink(addr.sun_path);
    /* autobind */
    c = sock(SOCK_STREAM);
    show_name("unbound name", c, 0);
    show("bind family only", bind(c, (struct sockaddr *)&addr, sizeof(sa_family_t)));
    show_name("autobound name", c, 0);
    struct sockaddr_un got;
    socklen_t gl = sizeof got;
    getsockname(c, (struct sockaddr *)&got, &gl);
    int hex = 1;
    for (int i = 1; i < 6; i++)
        hex &= !!strchr("0123456789abcdef", got.sun_path[i]);
    CHECK("autobind name is 5 hex digits", gl == 8 && got.sun_path[0] == 0 && hex);
    show("autobind again", bind(c, (struct sockaddr *)&addr, sizeof(sa_family_t)));
    show("bind path after autobind", bind_name(c, "s6"));
    close(c);
    show("unlink s1 while bound", unlink("s1"));
    show("bind s1 again after unlink", bind_name(b, "s1"));
    closeall(a, b);
    unlink("s1");
    unlink("s3");
    unlink("s5");
    unlink("s6");
    unlink("plain");
    /* bound sockets are not listeners: close does not remove the file */
    a = sock(SOCK_STREAM);
    bind_name(a, "s7");
    close(a);
    show("file stays after close", access("s7", F_OK));
    b = sock(SOCK_STREAM);
    show("bind over a stale socket file", bind_name(b, "s7"));
    show("connect to a stale socket file", connect_name(b, "s7"));
    close(b);
    unlink("s7");
}

/* ------------------------------------------------------------------ connect/accept */

static void connecting(void)
{
    section("connect and accept");
    int c = sock(SOCK_STREAM);
    show("connect missing", connect_name(c, "none"));
    put_file("plain", "x");
    show("connect to a regular file", connect_name(c, "plain"));
    unlink("plain");
    int b = sock(SOCK_STREAM);
    bind_name(b, "bound");
    show("connect to bound, not listening", connect_name(c, "bound"));
    int d = sock(SOCK_DGRAM);
    bind_name(d, "dgram");
    show("connect stream to dgram", connect_name(c, "dgram"));
    closeall(b, d);
    unlink("bound");
    unlink("dgram");
    show("listen unbound", listen(c, 5));
    int dg = sock(SOCK_DGRAM);
    show("listen on dgram", listen(dg, 5));
    show("accept on dgram", accept(dg, NULL, NULL));
    close(dg);
    show("accept on unbound stream", accept(c, NULL, NULL));

    int l = listener("srv", 5);
    show("listen again", listen(l, 10));
    show_poll("listener idle", l);
    show_name("listener name", l, 0);
    show_name("listener peer", l, 1);
    show("connect", connect_name(c, "srv"));
    show_poll("listener with a pending connection", l);
    show_poll("client connected (not accepted)", c);
    show("write before accept", write(c, "early", 5));
    show("connect again", connect_name(c, "srv"));
    show("connect again, missing", connect_name(c, "none"));
    show("connect listener to itself", connect_name(l, "srv"));
    struct sockaddr_un pa;
    memset(&pa, 0x55, sizeof pa);
    socklen_t pl = sizeof pa;
    int s = show("accept", accept(l, (struct sockaddr *)&pa, &pl));
    printf("accept addr len=%d family=%d\n", (int)pl, pa.sun_family);
    show_poll("listener after accept", l);
    show_name("accepted name", s, 0);
    show_name("accepted peer", s, 1);
    show_name("client name", c, 0);
    show_name("client peer", c, 1);
    char buf[64] = {0};
    show("read early data", read(s, buf, sizeof buf));
    show("listen on connected", listen(c, 1));
    show("accept on connected", accept(c, NULL, NULL));
    show("write on listener", write(l, "x", 1));
    show("read on listener", read(l, buf, 1));
    show("sendto on connected with address", sendto(c, "x", 1, 0, (struct sockaddr *)&pa, pl));
    closeall(c, s);

    /* a bound client shows its name to the peer */
    c = sock(SOCK_STREAM);
    bind_name(c, "cli");
    connect_name(c, "srv");
    pl = sizeof pa;
    s = accept4(l, (struct sockaddr *)&pa, &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    printf("accept4 bound client: len=%d path=%s nonblock=%d cloexec=%d\n", (int)pl, pa.sun_path,
           !!(fcntl(s, F_GETFL) & O_NONBLOCK), fcntl(s, F_GETFD));
    show("accept4 bad flags", accept4(l, NULL, NULL, 0x1234));
    pl = 3;
    connect_name(sock(SOCK_STREAM), "srv");
    memset(&pa, 0, sizeof pa);
    int s2 = show("accept with a short address buffer", accept(l, (struct sockaddr *)&pa, &pl));
    printf("short buffer: len=%d family=%d\n", (int)pl, pa.sun_family);
    closeall(s2, c);
    close(s);
    unlink("cli");

    int n = fcntl(l, F_GETFL);
    fcntl(l, F_SETFL, n | O_NONBLOCK);
    show("accept nothing pending (nonblock)", accept(l, NULL, NULL));
    fcntl(l, F_SETFL, n);
    /* the listener goes away with a connection pending */
    c = sock(SOCK_STREAM);
    connect_name(c, "srv");
    write(c, "lost", 4);
    close(l);
    show_poll("client after listener closed", c);
    show("read after listener closed", read(c, buf, sizeof buf));
    show("read again", read(c, buf, sizeof buf));
    show("write after listener closed (NOSIGNAL)", send(c, "x", 1, MSG_NOSIGNAL));
    close(c);
    c = sock(SOCK_STREAM);
    show("connect to a closed listener's file", connect_name(c, "srv"));
    close(c);
    unlink("srv");
    /* shutdown(SHUT_RD) on a listener refuses connections */
    l = listener("srv2", 5);
    show("shutdown listener SHUT_RD", shutdown(l, SHUT_RD));
    c = sock(SOCK_STREAM);
    show("connect to shut-down listener", connect_name(c, "srv2"));
    closeall(c, l);
    unlink("srv2");
}

/* ------------------------------------------------------------------ backlog */

static void backlog(void)
{
    section("backlog");
    int l = listener("bk", 2);
    int c[8], made = 0;
    for (int i = 0; i < 8; i++) {
        c[i] = sock(SOCK_STREAM | SOCK_NONBLOCK);
        if (connect_name(c[i], "bk") != 0) {
            printf("connect %d: errno=%s\n", i, ename(errno));
            break;
        }
        made++;
    }
    printf("backlog 2 took %d connections\n", made);
    show_poll("client refused by the backlog", c[made]);
    show("raise backlog, connect again", (listen(l, 3), connect_name(c[made], "bk")));
    made++;
    for (int i = 0; i < made; i++)
        close(accept(l, NULL, NULL));
    for (int i = 0; i <= made && i < 8; i++)
        close(c[i]);
    close(l);
    unlink("bk");

    l = listener("bk0", 0);
    int a = sock(SOCK_STREAM | SOCK_NONBLOCK), b = sock(SOCK_STREAM | SOCK_NONBLOCK);
    show("backlog 0, first", connect_name(a, "bk0"));
    show("backlog 0, second", connect_name(b, "bk0"));
    closeall(a, b);
    close(l);
    unlink("bk0");

    /* a blocking connect waits for room: a child accepts after a while */
    l = listener("bk1", 0);
    a = sock(SOCK_STREAM);
    connect_name(a, "bk1");
    pid_t pid = fork_or_die();
    if (pid == 0) {
        sleep_ms(50);
        int s = accept(l, NULL, NULL);
        char ch = get_byte(s);
        _exit(ch == 'a' ? 0 : 3);
    }
    write(a, "a", 1);
    b = sock(SOCK_STREAM);
    show("blocking connect waits for accept", connect_name(b, "bk1"));
    show_status("accepting child", reap(pid));
    close(a);
    /* SO_SNDTIMEO bounds a blocking connect (b's connection fills the backlog) */
    a = b;
    b = sock(SOCK_STREAM);
    struct timeval tv = {0, 40000};
    setsockopt(b, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    long long t0 = now_ms();
    show("connect with SO_SNDTIMEO", connect_name(b, "bk1"));
    CHECK("waited about the timeout", now_ms() - t0 >= 30);
    closeall(a, b);
    close(l);
    unlink("bk1");
}

/* ------------------------------------------------------------------ data */

static void data(void)
{
    section("data");
    int sv[2];
    char buf[256];
    pair(SOCK_STREAM, sv);
    write(sv[0], "hello ", 6);
    write(sv[0], "world", 5);
    show("inq after two writes", inq(sv[1]));
    CHECK("outq counts more than the bytes", outq(sv[0]) > 11);
    show("read coalesces", read(sv[1], buf, sizeof buf));
    show_bytes("data", buf, 11);
    show("outq after read", outq(sv[0]));
    write(sv[0], "abcdef", 6);
    show("partial read", read(sv[1], buf, 2));
    show("recv MSG_PEEK", recv(sv[1], buf, 3, MSG_PEEK));
    show_bytes("peeked", buf, 3);
    show("recv MSG_TRUNC (stream)", recv(sv[1], buf, 2, MSG_TRUNC));
    show_bytes("got", buf, 2);
    show("rest", read(sv[1], buf, sizeof buf));
    show("recv MSG_DONTWAIT on empty", recv(sv[1], buf, 1, MSG_DONTWAIT));
    show("recv MSG_OOB", recv(sv[1], buf, 1, MSG_OOB | MSG_DONTWAIT));
    show("read 0 bytes", read(sv[1], buf, 0));
    show("write 0 bytes", write(sv[0], buf, 0));
    show("inq after zero write", inq(sv[1]));
    show("recv 0 bytes MSG_DONTWAIT", recv(sv[1], buf, 0, MSG_DONTWAIT));
    struct iovec iov[3] = {{"one", 3}, {"", 0}, {"two", 3}};
    show("writev", writev(sv[0], iov, 3));
    char x[2], y[10];
    struct iovec rv[2] = {{x, 2}, {y, 10}};
    show("readv", readv(sv[1], rv, 2));
    show_bytes("readv x", x, 2);
    show_bytes("readv y", y, 4);
    struct msghdr mh = {0};
    struct iovec one = {"sendmsg", 7};
    mh.msg_iov = &one;
    mh.msg_iovlen = 1;
    show("sendmsg", sendmsg(sv[0], &mh, 0));
    memset(&mh, 0, sizeof mh);
    struct iovec in = {buf, sizeof buf};
    mh.msg_iov = &in;
    mh.msg_iovlen = 1;
    struct sockaddr_un from;
    mh.msg_name = &from;
    mh.msg_namelen = sizeof from;
    show("recvmsg", recvmsg(sv[1], &mh, 0));
    printf("recvmsg namelen=%d flags=%#x controllen=%d\n", (int)mh.msg_namelen, mh.msg_flags,
           (int)mh.msg_controllen);
    socklen_t fl = sizeof from;
    write(sv[0], "z", 1);
    show("recvfrom socketpair", recvfrom(sv[1], buf, 10, 0, (struct sockaddr *)&from, &fl));
    printf("recvfrom len=%d\n", (int)fl);
    show("write bad buffer", write(sv[0], (void *)8, 10));
    write(sv[0], "q", 1);
    show("recv into bad buffer", recv(sv[1], (void *)8, 10, 0));
    show("inq after faulted recv", inq(sv[1]));
    read(sv[1], buf, sizeof buf);
    show("sendto NULL addr, len 0", sendto(sv[0], "k", 1, 0, NULL, 0));
    read(sv[1], buf, sizeof buf);
    closeall(sv[0], sv[1]);

    /* MSG_WAITALL gathers several writes from another process */
    pair(SOCK_STREAM, sv);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        for (int i = 0; i < 4; i++) {
            sleep_ms(10);
            write(sv[1], "abcd", 4);
        }
        _exit(0);
    }
    show("recv MSG_WAITALL 16", recv(sv[0], buf, 16, MSG_WAITALL));
    show_status("writer", reap(pid));
    closeall(sv[0], sv[1]);
    /* MSG_WAITALL stops at EOF */
    pair(SOCK_STREAM, sv);
    write(sv[1], "abc", 3);
    close(sv[1]);
    show("MSG_WAITALL short at EOF", recv(sv[0], buf, 16, MSG_WAITALL));
    close(sv[0]);

    /* a large transfer between processes, checked */
    pair(SOCK_STREAM, sv);
    pid = fork_or_die();
    if (pid == 0) {
        close(sv[0]);
        for (int i = 0; i < (int)sizeof big; i++)
            big[i] = (char)(i * 7 + (i >> 10));
        long left = 4 << 20, off = 0;
        while (left > 0) {
            long n = left < (long)sizeof big ? left : (long)sizeof big;
            long w = write(sv[1], big + (off % 1000), n - 1000 > 0 ? n - 1000 : n);
            if (w <= 0)
                _exit(1);
            left -= w;
            off += w;
        }
        _exit(0);
    }
    close(sv[1]);
    long total = 0, r;
    unsigned long sum = 0;
    static char rb[70000];
    while ((r = read(sv[0], rb, sizeof rb)) > 0) {
        for (long i = 0; i < r; i++)
            sum = sum * 31 + (unsigned char)rb[i];
        total += r;
    }
    printf("received %ld bytes, sum %lx\n", total, sum);
    show_status("bulk writer", reap(pid));
    close(sv[0]);
}

/* ------------------------------------------------------------------ buffers */

static long fill(int fd, long chunk, int *err)
{
    long total = 0, n;
    while ((n = send(fd, big, chunk, MSG_DONTWAIT)) > 0)
        total += n;
    *err = errno;
    return total;
}

static void buffers(void)
{
    section("send buffer");
    int sv[2], err;
    static const long chunks[] = {1, 100, 1000, 4096, 5000, 36544, 65536, 200000};
    for (unsigned i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        pair(SOCK_STREAM, sv);
        long n = fill(sv[0], chunks[i], &err);
        printf("chunk %ld: %ld bytes fit, then %s; outq %d inq %d\n", chunks[i], n, ename(err),
               outq(sv[0]), inq(sv[1]));
        show_poll("full writer", sv[0]);
        closeall(sv[0], sv[1]);
    }
    static const int sizes[] = {1, 500, 3000, 3777, 8192, 10000, 36545, 100000};
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        pair(SOCK_STREAM, sv);
        write(sv[0], big, sizes[i]);
        printf("write %d: outq %d\n", sizes[i], outq(sv[0]));
        closeall(sv[0], sv[1]);
    }
    int v;
    socklen_t vl = sizeof v;
    pair(SOCK_STREAM, sv);
    getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &vl);
    printf("default SO_SNDBUF %d\n", v);
    getsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, &vl);
    printf("default SO_RCVBUF %d\n", v);
    static const int asks[] = {0, 1, 1000, 2304, 4608, 10000, 100000};
    for (unsigned i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        v = asks[i];
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
        getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &vl);
        int r = asks[i];
        setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &r, sizeof r);
        getsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &r, &vl);
        printf("set %d: SO_SNDBUF %d SO_RCVBUF %d\n", asks[i], v, r);
    }
    v = -5;
    show("SO_SNDBUF negative", setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
    getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &vl);
    printf("after negative: %d\n", v);
    v = 10000;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    printf("sndbuf 20000: 1000-byte chunks fit %ld (%s)\n", fill(sv[0], 1000, &err), ename(err));
    show_poll("small-buffer writer full", sv[0]);
    read(sv[1], big, 3000);
    show_poll("after reading 3000", sv[0]);
    read(sv[1], big, sizeof big);
    show_poll("after draining", sv[0]);
    closeall(sv[0], sv[1]);

    /* a blocked writer is woken by the reader in another process */
    pair(SOCK_STREAM, sv);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        close(sv[0]);
        sleep_ms(50);
        long got = 0, r;
        while ((r = read(sv[1], big, 4096)) > 0)
            got += r;
        _exit(got == 1000000 ? 0 : 1);
    }
    close(sv[1]);
    show("blocking write of 1000000", write(sv[0], big, 1000000));
    close(sv[0]);
    show_status("slow reader", reap(pid));
}

/* ------------------------------------------------------------------ shutdown */

static void shutdowns(void)
{
    section("shutdown");
    int sv[2];
    char buf[64];
    set_action(SIGPIPE, on_sigpipe, 0);
    int u = sock(SOCK_STREAM);
    show("shutdown unconnected", shutdown(u, SHUT_RDWR));
    show("shutdown bad how", shutdown(u, 3));
    show("shutdown negative how", shutdown(u, -1));
    show_poll("unconnected after shutdown", u);
    close(u);
    u = sock(SOCK_STREAM);
    show_poll("fresh unconnected", u);
    show("read unconnected", read(u, buf, 1));
    show("write unconnected", send(u, "x", 1, MSG_NOSIGNAL));
    show("recv unconnected nonblock", recv(u, buf, 1, MSG_DONTWAIT));
    show("sendto unconnected with address", sendto(u, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&(struct sockaddr_un){AF_UNIX, "zz"}, 5));
    close(u);

    pair(SOCK_STREAM, sv);
    show_poll("fresh pair", sv[0]);
    write(sv[0], "data", 4);
    show("shutdown SHUT_WR", shutdown(sv[0], SHUT_WR));
    show_poll("after SHUT_WR, self", sv[0]);
    show_poll("after SHUT_WR, peer", sv[1]);
    show("peer reads the data", read(sv[1], buf, sizeof buf));
    show("peer reads EOF", read(sv[1], buf, sizeof buf));
    show("peer reads EOF again", read(sv[1], buf, sizeof buf));
    sigpipes = 0;
    show("write after SHUT_WR", write(sv[0], "x", 1));
    printf("SIGPIPE count: %d\n", sigpipes);
    show("send MSG_NOSIGNAL after SHUT_WR", send(sv[0], "x", 1, MSG_NOSIGNAL));
    printf("SIGPIPE count: %d\n", sigpipes);
    show("peer can still write", write(sv[1], "back", 4));
    show("self reads it", read(sv[0], buf, sizeof buf));
    show("shutdown SHUT_RD on peer", shutdown(sv[1], SHUT_RD));
    show_poll("both halves shut, self", sv[0]);
    show_poll("both halves shut, peer", sv[1]);
    closeall(sv[0], sv[1]);

    pair(SOCK_STREAM, sv);
    show("shutdown SHUT_RD", shutdown(sv[0], SHUT_RD));
    show_poll("SHUT_RD self", sv[0]);
    show_poll("SHUT_RD peer", sv[1]);
    sigpipes = 0;
    show("peer write to a reader that shut down", write(sv[1], "x", 1));
    printf("SIGPIPE count: %d\n", sigpipes);
    show("read after own SHUT_RD", read(sv[0], buf, sizeof buf));
    show("write after own SHUT_RD", write(sv[0], "y", 1));
    show("peer reads it", read(sv[1], buf, sizeof buf));
    closeall(sv[0], sv[1]);

    pair(SOCK_STREAM, sv);
    write(sv[1], "unread", 6);
    show("shutdown SHUT_RD with data queued", shutdown(sv[0], SHUT_RD));
    show("data still readable", read(sv[0], buf, sizeof buf));
    closeall(sv[0], sv[1]);

    pair(SOCK_STREAM, sv);
    close(sv[1]);
    show_poll("peer closed", sv[0]);
    show("read after peer closed", read(sv[0], buf, sizeof buf));
    sigpipes = 0;
    show("write after peer closed", write(sv[0], "x", 1));
    printf("SIGPIPE count: %d\n", sigpipes);
    close(sv[0]);

    pair(SOCK_STREAM, sv);
    write(sv[0], "never read", 10);
    close(sv[1]);
    show_poll("peer closed with data unread", sv[0]);
    int err = -1;
    socklen_t el = sizeof err;
    getsockopt(sv[0], SOL_SOCKET, SO_ERROR, &err, &el);
    printf("SO_ERROR: %s\n", err ? ename(err) : "0");
    show_poll("after SO_ERROR read", sv[0]);
    close(sv[0]);
    pair(SOCK_STREAM, sv);
    write(sv[0], "never read", 10);
    close(sv[1]);
    show("read: the reset", read(sv[0], buf, sizeof buf));
    show("read: then EOF", read(sv[0], buf, sizeof buf));
    close(sv[0]);

    /* the default action of SIGPIPE kills the writer */
    pair(SOCK_STREAM, sv);
    close(sv[1]);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        signal(SIGPIPE, SIG_DFL);
        write(sv[0], "x", 1);
        _exit(0);
    }
    show_status("writer to a closed peer", reap(pid));
    close(sv[0]);
    set_action(SIGPIPE, SIG_DFL, 0);

    /* a reader blocked in another process sees EOF at shutdown */
    pair(SOCK_STREAM, sv);
    pid = fork_or_die();
    if (pid == 0) {
        char c;
        long n = read(sv[1], &c, 1);
        _exit(n == 0 ? 0 : 1);
    }
    sleep_ms(30);
    shutdown(sv[0], SHUT_WR);
    show_status("blocked reader sees EOF", reap(pid));
    closeall(sv[0], sv[1]);
}

/* ------------------------------------------------------------------ options */

static void options(void)
{
    section("options");
    int sv[2], v;
    socklen_t vl = sizeof v;
    pair(SOCK_STREAM, sv);
    static const struct { int opt; const char *name; } ints[] = {
        {SO_TYPE, "SO_TYPE"}, {SO_DOMAIN, "SO_DOMAIN"}, {SO_PROTOCOL, "SO_PROTOCOL"},
        {SO_ERROR, "SO_ERROR"}, {SO_ACCEPTCONN, "SO_ACCEPTCONN"}, {SO_PASSCRED, "SO_PASSCRED"},
        {SO_REUSEADDR, "SO_REUSEADDR"}, {SO_KEEPALIVE, "SO_KEEPALIVE"},
        {SO_RCVLOWAT, "SO_RCVLOWAT"}, {SO_SNDLOWAT, "SO_SNDLOWAT"},
    };
    for (unsigned i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        v = -7;
        vl = sizeof v;
        int r = getsockopt(sv[0], SOL_SOCKET, ints[i].opt, &v, &vl);
        if (r)
            printf("%s: errno=%s\n", ints[i].name, ename(errno));
        else
            printf("%s: %d (len %d)\n", ints[i].name, v, (int)vl);
    }
    int l = listener("opt", 1);
    vl = sizeof v;
    getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl);
    printf("listener SO_ACCEPTCONN: %d\n", v);
    close(l);
    unlink("opt");
    v = 1;
    show("set SO_PASSCRED", setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, sizeof v));
    vl = sizeof v;
    getsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, &vl);
    printf("SO_PASSCRED now %d\n", v);
    v = 1;
    show("set SO_REUSEADDR", setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, sizeof v));
    getsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, &vl);
    printf("SO_REUSEADDR now %d\n", v);
    struct linger lg = {1, 5};
    show("set SO_LINGER", setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
    memset(&lg, 0, sizeof lg);
    vl = sizeof lg;
    getsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, &vl);
    printf("SO_LINGER now %d %d (len %d)\n", lg.l_onoff, lg.l_linger, (int)vl);
    v = 1;
    show("setsockopt short optlen", setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, 2));
    show("setsockopt bad pointer", setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, (void *)8, 4));
    show("setsockopt unknown level", setsockopt(sv[0], 999, 1, &v, sizeof v));
    show("setsockopt SOL_TCP", setsockopt(sv[0], 6, 1, &v, sizeof v));
    show("setsockopt unknown option", setsockopt(sv[0], SOL_SOCKET, 9999, &v, sizeof v));
    vl = sizeof v;
    show("getsockopt unknown level", getsockopt(sv[0], 999, 1, &v, &vl));
    show("getsockopt unknown option", getsockopt(sv[0], SOL_SOCKET, 9999, &v, &vl));
    vl = 2;
    show("getsockopt SO_TYPE optlen 2", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &vl));
    printf("optlen now %d\n", (int)vl);
    vl = 100;
    show("getsockopt SO_TYPE optlen 100", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &vl));
    printf("optlen now %d\n", (int)vl);
    int neg = -1;
    vl = (socklen_t)neg;
    show("getsockopt negative optlen", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &vl));
    show("getsockopt NULL optlen", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, NULL));
    struct ucred uc;
    vl = sizeof uc;
    show("SO_PEERCRED", getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &uc, &vl));
    CHECK("peer pid is ours", uc.pid == getpid());
    printf("peer uid=%d gid=%d len=%d\n", (int)uc.uid, (int)uc.gid, (int)vl);
    int u = sock(SOCK_STREAM);
    vl = sizeof uc;
    show("SO_PEERCRED unconnected", getsockopt(u, SOL_SOCKET, SO_PEERCRED, &uc, &vl));
    printf("unconnected peer pid=%d uid=%d gid=%d\n", uc.pid, (int)uc.uid, (int)uc.gid);
    close(u);

    /* timeouts */
    struct timeval tv = {0, 30000}, got;
    show("set SO_RCVTIMEO", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    vl = sizeof got;
    getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &vl);
    printf("SO_RCVTIMEO now %ld.%06ld (len %d)\n", (long)got.tv_sec, (long)got.tv_usec, (int)vl);
    char c;
    long long t0 = now_ms();
    show("read with SO_RCVTIMEO", read(sv[0], &c, 1));
    CHECK("read waited about the timeout", now_ms() - t0 >= 20);
    tv.tv_usec = 1000001;
    show("SO_RCVTIMEO usec too big", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
    tv.tv_usec = 0;
    show("SO_RCVTIMEO short optlen", setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, 8));
    tv.tv_sec = 2;
    tv.tv_usec = 500000;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    getsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &got, &vl);
    printf("SO_SNDTIMEO now %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);
    tv.tv_sec = 0;
    tv.tv_usec = 0;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    getsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &got, &vl);
    printf("SO_RCVTIMEO zero %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);
    v = 20000;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    tv.tv_sec = 0;
    tv.tv_usec = 40000;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    long sent = 0, n;
    while ((n = write(sv[1], big, 1000)) > 0)
        sent += n;
    printf("write with SO_SNDTIMEO stopped after %ld: %s\n", sent, ename(errno));
    closeall(sv[0], sv[1]);

    /* ioctls */
    pair(SOCK_STREAM, sv);
    write(sv[0], "12345", 5);
    int q = -1;
    show("FIONREAD", ioctl(sv[1], FIONREAD, &q));
    printf("FIONREAD = %d\n", q);
    l = listener("opt2", 1);
    show("SIOCINQ on listener", ioctl(l, SIOCINQ, &q));
    show("SIOCOUTQ on listener", ioctl(l, SIOCOUTQ, &q));
    printf("listener SIOCOUTQ = %d\n", q);
    show("TCGETS on a socket", ioctl(l, 0x5401, &q));
    show("FIONREAD bad pointer", ioctl(sv[1], FIONREAD, (void *)8));
    close(l);
    unlink("opt2");
    closeall(sv[0], sv[1]);
}

/* ------------------------------------------------------------------ names */

static void names(void)
{
    section("names");
    int sv[2];
    pair(SOCK_STREAM, sv);
    show_name("socketpair name", sv[0], 0);
    show_name("socketpair peer", sv[0], 1);
    int u = sock(SOCK_STREAM);
    show_name("unconnected peer", u, 1);
    struct sockaddr_un a;
    socklen_t n = 0;
    show("getsockname len 0", getsockname(sv[0], (struct sockaddr *)&a, &n));
    printf("len now %d\n", (int)n);
    n = (socklen_t)-1;
    show("getsockname negative len", getsockname(sv[0], (struct sockaddr *)&a, &n));
    show("getsockname NULL len", getsockname(sv[0], (struct sockaddr *)&a, NULL));
    bind_name(u, "named");
    n = 5;
    memset(&a, 0, sizeof a);
    show("getsockname short buffer", getsockname(u, (struct sockaddr *)&a, &n));
    printf("len now %d, path prefix %.3s\n", (int)n, a.sun_path);
    mkdir("dir", 0755);
    chdir("dir");
    int v = sock(SOCK_STREAM);
    bind_name(v, "../named2");
    show_name("relative name as given", v, 0);
    listen(v, 1);
    int c = sock(SOCK_STREAM);
    show("connect through ..", connect_name(c, "../named2"));
    chdir("..");
    show("unlink named2", unlink("named2"));
    int c2 = sock(SOCK_STREAM);
    show("connect after unlink", connect_name(c2, "named2"));
    symlink("named", "link");
    closeall(c, c2);
    close(v);
    closeall(sv[0], sv[1]);
    close(u);
    unlink("named");
    unlink("link");
    rmdir("dir");
    /* connect through a symlink, rename keeps the listener */
    int l = listener("orig", 10);
    symlink("orig", "lnk");
    c = sock(SOCK_STREAM);
    show("connect through a symlink", connect_name(c, "lnk"));
    close(c);
    rename("orig", "moved");
    c = sock(SOCK_STREAM);
    show("connect after rename", connect_name(c, "moved"));
    show_name("listener name after rename", l, 0);
    close(c);
    link("moved", "hard");
    c = sock(SOCK_STREAM);
    show("connect through a hard link", connect_name(c, "hard"));
    close(c);
    chmod("moved", 0);
    c = sock(SOCK_STREAM);
    show("connect to mode 000 (root)", connect_name(c, "moved"));
    close(c);
    close(l);
    unlink("moved");
    unlink("hard");
    unlink("lnk");
}


/* ------------------------------------------------------------------ waiting */

static volatile int alarms;
static void on_usr1(int sig)
{
    (void)sig;
    alarms++;
}

/* A child that signals us after `sig_ms` and writes `data` into fd after `write_ms`. */
static pid_t poke(int fd, int sig_ms, int write_ms, const char *data)
{
    pid_t parent = getpid();
    pid_t pid = fork_or_die();
    if (pid == 0) {
        if (sig_ms >= 0) {
            sleep_ms(sig_ms);
            kill(parent, SIGUSR1);
        }
        if (write_ms >= 0) {
            sleep_ms(write_ms);
            write(fd, data, strlen(data));
        }
        _exit(0);
    }
    return pid;
}

static void waiting(void)
{
    section("waiting");
    char buf[64];
    /* poll on a listener wakes when a connection arrives */
    int l = listener("wt", 4);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        sleep_ms(30);
        int c = sock(SOCK_STREAM);
        connect_name(c, "wt");
        write(c, "hi", 2);
        get_byte(c);
        _exit(0);
    }
    struct pollfd p = {l, POLLIN, 0};
    show("poll on a listener until a connection", poll(&p, 1, 5000));
    printf("revents %#x\n", p.revents);
    int s = accept(l, NULL, NULL);
    p.fd = s;
    show("poll the accepted socket", poll(&p, 1, 5000));
    show("read", read(s, buf, sizeof buf));
    write(s, "k", 1);
    show_status("connector", reap(pid));
    p.events = POLLIN | POLLRDHUP;
    show("poll after the peer exited", poll(&p, 1, 5000));
    printf("revents %#x\n", p.revents);
    close(s);
    close(l);
    unlink("wt");

    /* epoll, edge-triggered: each write is an edge, a partial read is not */
    int sv[2];
    pair(SOCK_STREAM, sv);
    int ep = epoll_create1(0);
    struct epoll_event ev = {EPOLLIN | EPOLLET, {.u32 = 7}};
    epoll_ctl(ep, EPOLL_CTL_ADD, sv[1], &ev);
    show("epoll: nothing yet", epoll_wait(ep, &ev, 1, 0));
    write(sv[0], "ab", 2);
    write(sv[0], "cd", 2);
    show("epoll ET after two writes", epoll_wait(ep, &ev, 1, 0));
    show("epoll ET again", epoll_wait(ep, &ev, 1, 0));
    read(sv[1], buf, 1);
    show("epoll ET after a partial read", epoll_wait(ep, &ev, 1, 0));
    write(sv[0], "e", 1);
    show("epoll ET after another write", epoll_wait(ep, &ev, 1, 0));
    pid = poke(sv[0], -1, 30, "late");
    show("epoll_wait blocks until the child writes", epoll_wait(ep, &ev, 1, 5000));
    show_status("late writer", reap(pid));
    show("drain", read(sv[1], buf, sizeof buf));
    /* EPOLLOUT edge when the reader makes room */
    int v = 5000;
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    struct epoll_event ov = {EPOLLOUT | EPOLLET, {.u32 = 8}};
    int ep2 = epoll_create1(0);
    epoll_ctl(ep2, EPOLL_CTL_ADD, sv[0], &ov);
    show("EPOLLOUT initially", epoll_wait(ep2, &ov, 1, 0));
    while (send(sv[0], big, 1000, MSG_DONTWAIT) > 0)
        ;
    show("EPOLLOUT when full", epoll_wait(ep2, &ov, 1, 0));
    read(sv[1], big, sizeof big);
    show("EPOLLOUT after the reader drained", epoll_wait(ep2, &ov, 1, 0));
    closeall(ep, ep2);
    closeall(sv[0], sv[1]);

    /* signals: EINTR without SA_RESTART, a restart with it, a partial MSG_WAITALL */
    pair(SOCK_STREAM, sv);
    set_action(SIGUSR1, on_usr1, 0);
    alarms = 0;
    pid = poke(sv[1], 30, -1, "");
    show("read interrupted (no SA_RESTART)", read(sv[0], buf, sizeof buf));
    printf("handler ran: %d\n", alarms);
    reap(pid);
    set_action(SIGUSR1, on_usr1, SA_RESTART);
    pid = poke(sv[1], 20, 40, "after");
    show("read restarted (SA_RESTART)", read(sv[0], buf, sizeof buf));
    printf("handler ran: %d\n", alarms);
    reap(pid);
    set_action(SIGUSR1, on_usr1, 0);
    write(sv[1], "part", 4);
    pid = poke(sv[1], 30, -1, "");
    show("MSG_WAITALL interrupted after 4 bytes", recv(sv[0], buf, 10, MSG_WAITALL));
    reap(pid);
    pid = poke(sv[1], 30, -1, "");
    show("blocked recv interrupted", recv(sv[0], buf, 10, 0));
    reap(pid);
    set_action(SIGUSR1, SIG_DFL, 0);
    closeall(sv[0], sv[1]);
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* An alarm 100 ms from now, its handler installed with or without SA_RESTART. */
static void alarm_soon(int restart)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {{0, 0}, {0, 100000}};
    setitimer(ITIMER_REAL, &it, NULL);
}

/* A child that writes one byte to fd (or connects to name) after 300 ms. */
static pid_t later(int fd, const char *name)
{
    pid_t c = fork_or_die();
    if (c == 0) {
        usleep(300000);
        if (name)
            _exit(connect_name(sock(SOCK_STREAM), name) == 0 ? 0 : 1);
        _exit(write(fd, "L", 1) == 1 ? 0 : 1);
    }
    return c;
}

/* signal(7): a socket call that waits under SO_RCVTIMEO/SO_SNDTIMEO is never restarted
 * after a handler, even with SA_RESTART: it fails with EINTR (or returns what it moved);
 * without a timeout SA_RESTART restarts it. */
static void interrupted(void)
{
    section("interrupted waits");
    int sv[2], d[2];
    char c, buf[16];
    struct timeval tv = {5, 0};
    pair(SOCK_STREAM, sv);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    alarm_soon(1);
    show("read with SO_RCVTIMEO, SA_RESTART handler", read(sv[0], &c, 1));
    alarm_soon(1);
    show("recvmsg with SO_RCVTIMEO, SA_RESTART handler", recv(sv[0], buf, sizeof buf, MSG_WAITALL));
    write(sv[1], "ab", 2);
    alarm_soon(1);
    show("MSG_WAITALL with 2 of 16 bytes, interrupted", recv(sv[0], buf, sizeof buf, MSG_WAITALL));
    tv.tv_sec = 0;
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pid_t k = later(sv[1], NULL);
    alarm_soon(1);
    show("read without timeout, SA_RESTART handler (restarted)", read(sv[0], &c, 1));
    reap(k);
    alarm_soon(0);
    show("read without timeout, no SA_RESTART", read(sv[0], &c, 1));

    /* a full send buffer */
    int one = 1;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &one, sizeof one);
    while (send(sv[1], big, 4096, MSG_DONTWAIT) > 0)
        ;
    tv.tv_sec = 5;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    alarm_soon(1);
    show("write with SO_SNDTIMEO into a full buffer, SA_RESTART handler", write(sv[1], "x", 1));
    closeall(sv[0], sv[1]);

    pair(SOCK_DGRAM, d);
    setsockopt(d[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    alarm_soon(1);
    show("datagram recv with SO_RCVTIMEO, SA_RESTART handler", recv(d[0], buf, sizeof buf, 0));
    closeall(d[0], d[1]);

    int l = listener("intr.sock", 4);
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    alarm_soon(1);
    show("accept with SO_RCVTIMEO, SA_RESTART handler", accept(l, NULL, NULL));
    tv.tv_sec = 0;
    setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    k = later(-1, "intr.sock");
    alarm_soon(1);
    int a = accept(l, NULL, NULL);
    show_ok("accept without timeout, SA_RESTART handler (restarted)", a);
    reap(k);
    close(a);
    close(l);
    unlink("intr.sock");
    signal(SIGALRM, SIG_DFL);
}

int main(void)
{
    test_init();
    signal(SIGPIPE, SIG_IGN);
    creation();
    binding();
    connecting();
    backlog();
    data();
    buffers();
    shutdowns();
    options();
    names();
    waiting();
    interrupted();
    show_all_reaped();
    return 0;
}
