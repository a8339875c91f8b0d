/* Request/response over unix stream sockets, the shape of an event-driven server: a
 * forked server process runs one epoll loop that accepts on a listening socket bound at
 * DIR/unix_rr.PID.sock and answers each 64-byte request with a 64-byte response; the
 * client process drives CONNS connections from its own epoll loop, one request in flight
 * on each (as redis-benchmark does).  One operation = one request answered, so the figure
 * is wall time / requests with CONNS of them overlapping.  Partial reads are reassembled:
 * a stream socket may split a message. */
#define _GNU_SOURCE /* accept4 */
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define CONNS 4
#define MSG 64
#define BACKLOG 16
#define MAX_EVENTS 16

/* One connection's partial message and, on the client side, the request in flight. */
struct conn {
    int fd;
    size_t have;
    uint64_t seq;
    unsigned char buf[MSG * 8];
};

/* Server: respond to every complete request in c->buf; 0 once the peer has closed. */
static int serve(struct conn *c) {
    ssize_t got = read(c->fd, c->buf + c->have, sizeof c->buf - c->have);
    if (got < 0) {
        if (errno == EAGAIN || errno == EINTR) return 1;
        bench_fail("server read");
    }
    if (got == 0) return 0;
    c->have += (size_t)got;
    size_t done = 0;
    for (; c->have - done >= MSG; done += MSG) {
        unsigned char reply[MSG];
        memcpy(reply, c->buf + done, 8); /* the request's sequence number comes back */
        memset(reply + 8, 'r', MSG - 8);
        if (write(c->fd, reply, MSG) != MSG) bench_fail("server write");
    }
    memmove(c->buf, c->buf + done, c->have - done);
    c->have -= done;
    return 1;
}

static void server(int lfd) {
    struct conn conns[CONNS];
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL}, events[MAX_EVENTS];
    int ep = epoll_create1(EPOLL_CLOEXEC), accepted = 0, open_conns = 0;
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev)) bench_fail("server epoll");
    while (accepted < CONNS || open_conns > 0) {
        int ready = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            bench_fail("server epoll_wait");
        }
        for (int i = 0; i < ready; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) bench_fail("accept4");
                if (accepted == CONNS) { errno = EMFILE; bench_fail("server: too many clients"); }
                c = &conns[accepted++];
                c->fd = fd;
                c->have = 0;
                struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
                if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev)) bench_fail("server epoll_ctl");
                open_conns++;
            } else if (!serve(c)) {
                if (epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL) || close(c->fd)) bench_fail("server close");
                open_conns--;
            }
        }
    }
    _exit(0);
}

static void send_request(struct conn *c, uint64_t seq) {
    unsigned char req[MSG];
    memset(req, 'q', MSG);
    memcpy(req, &seq, 8);
    c->seq = seq;
    if (write(c->fd, req, MSG) != MSG) bench_fail("client write");
}

int main(int argc, char **argv) {
    long n = bench_iterations(argc, argv, 1, "DIR");
    long total = n + bench_warmup(n);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (snprintf(addr.sun_path, sizeof addr.sun_path, "%s/unix_rr.%d.sock", argv[2], (int)getpid())
        >= (int)sizeof addr.sun_path) {
        fprintf(stderr, "%s: directory name too long for a socket path: %s\n", argv[0], argv[2]);
        return 2;
    }
    int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) bench_fail("socket");
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr)) bench_fail(addr.sun_path);
    if (listen(lfd, BACKLOG)) bench_fail("listen");
    pid_t pid = fork();
    if (pid < 0) bench_fail("fork");
    if (pid == 0) server(lfd);
    close(lfd);

    struct conn conns[CONNS];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) bench_fail("epoll_create1");
    for (int i = 0; i < CONNS; i++) {
        conns[i].fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        conns[i].have = 0;
        if (conns[i].fd < 0 || connect(conns[i].fd, (struct sockaddr *)&addr, sizeof addr))
            bench_fail("connect");
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev)) bench_fail("epoll_ctl");
    }
    unlink(addr.sun_path); /* connected: the name is no longer needed */

    long sent = 0, answered = 0;
    for (int i = 0; i < CONNS && sent < total; i++) send_request(&conns[i], (uint64_t)sent++);
    uint64_t t0 = bench_now_ns();
    while (answered < total) {
        struct epoll_event events[MAX_EVENTS];
        int ready = epoll_wait(ep, events, MAX_EVENTS, -1);
        if (ready < 0) {
            if (errno == EINTR) continue;
            bench_fail("epoll_wait");
        }
        for (int i = 0; i < ready; i++) {
            struct conn *c = events[i].data.ptr;
            ssize_t got = read(c->fd, c->buf + c->have, MSG - c->have);
            if (got <= 0) {
                if (got == 0) errno = ECONNRESET;
                bench_fail("client read");
            }
            c->have += (size_t)got;
            if (c->have < MSG) continue;
            uint64_t seq;
            memcpy(&seq, c->buf, 8);
            if (seq != c->seq) {
                fprintf(stderr, "unix_rr: response %llu to request %llu\n",
                        (unsigned long long)seq, (unsigned long long)c->seq);
                return 1;
            }
            c->have = 0;
            if (++answered == total - n) t0 = bench_now_ns();
            if (sent < total) send_request(c, (uint64_t)sent++);
        }
    }
    uint64_t t1 = bench_now_ns();
    for (int i = 0; i < CONNS; i++) close(conns[i].fd);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "unix_rr: server failed (status %#x)\n", status);
        return 1;
    }
    bench_report(t0, t1, n);
    return 0;
}
