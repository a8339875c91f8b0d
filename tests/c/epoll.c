/* epoll on pipes, in one process: creation flags and the epoll file itself, epoll_ctl's
 * errors (EEXIST, ENOENT, EBADF, EPERM for files that cannot be polled, EINVAL for an
 * epoll in itself and for EPOLLEXCLUSIVE misuse, ELOOP for cycles and deep nesting),
 * level- versus edge-triggered report counts, EPOLLONESHOT and its re-arming by MOD,
 * EPOLLHUP/EPOLLERR (always reported), what closing a watched fd does (a dup keeps the
 * item; closing the last fd removes it), nested epoll, the ready list's round robin,
 * epoll_wait's argument errors, timeouts, epoll_pwait/epoll_pwait2 signal masks, EINTR,
 * and a wake-up by another thread. */
#include "proc_helpers.h"
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/time.h>

#define INTMAX_EVENTS (0x7fffffff / (int)sizeof(struct epoll_event))

static struct epoll_event evbuf[8];

static int ctl(int ep, int op, int fd, unsigned events, unsigned long data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};
    return epoll_ctl(ep, op, fd, &ev);
}

/* "label: n [events/data ...]" for an epoll_wait-like result held in evbuf */
static void show_events(const char *label, long r)
{
    if (r < 0) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: %ld [", label, r);
    for (long i = 0; i < r; i++)
        printf("%s%#x/%lu", i ? " " : "", evbuf[i].events, (unsigned long)evbuf[i].data.u64);
    printf("]\n");
}

static void wait0(const char *label, int ep)
{
    show_events(label, epoll_wait(ep, evbuf, 8, 0));
}

static void creation(void)
{
    section("creation");
    show("epoll_create(0)", epoll_create(0));
    show("epoll_create(-1)", epoll_create(-1));
    int ep = epoll_create(1);
    show_ok("epoll_create(1)", ep);
    printf("FD_CLOEXEC: %d, F_GETFL O_ACCMODE: %d\n", fcntl(ep, F_GETFD), fcntl(ep, F_GETFL) & O_ACCMODE);
    int ep2 = epoll_create1(EPOLL_CLOEXEC);
    printf("epoll_create1(EPOLL_CLOEXEC) FD_CLOEXEC: %d\n", fcntl(ep2, F_GETFD));
    show("epoll_create1(O_NONBLOCK)", epoll_create1(O_NONBLOCK));
    show("epoll_create1(1)", epoll_create1(1));
    struct stat st;
    show("fstat", fstat(ep, &st));
    printf("mode %#o nlink %ld size %ld blksize %ld\n", st.st_mode, (long)st.st_nlink,
           (long)st.st_size, (long)st.st_blksize);
    struct stat st2;
    fstat(ep2, &st2);
    printf("two epolls share one inode: %d\n", st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
    char c;
    show("read", read(ep, &c, 1));
    show("write", write(ep, "x", 1));
    show("lseek", lseek(ep, 5, SEEK_SET));
    close(ep);
    close(ep2);
}

static void ctl_errors(void)
{
    section("epoll_ctl errors");
    int ep = epoll_create1(0), p[2];
    make_pipe(p);
    put_file("epoll-regular", "data\n");
    int reg = open("epoll-regular", O_RDONLY);
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    int opath = open(".", O_PATH);
    int closed = dup(p[0]);
    close(closed);
    struct epoll_event ev = {.events = EPOLLIN};

    show("closed epfd", epoll_ctl(closed, EPOLL_CTL_ADD, p[0], &ev));
    show("closed fd", epoll_ctl(ep, EPOLL_CTL_ADD, closed, &ev));
    show("negative fd", epoll_ctl(ep, EPOLL_CTL_ADD, -1, &ev));
    show("O_PATH fd", epoll_ctl(ep, EPOLL_CTL_ADD, opath, &ev));
    show("epfd is a pipe", epoll_ctl(p[0], EPOLL_CTL_ADD, p[1], &ev));
    show("epoll in itself", epoll_ctl(ep, EPOLL_CTL_ADD, ep, &ev));
    show("regular file", epoll_ctl(ep, EPOLL_CTL_ADD, reg, &ev));
    show("directory", epoll_ctl(ep, EPOLL_CTL_ADD, dir, &ev));
    show("regular file, closed epfd", epoll_ctl(closed, EPOLL_CTL_ADD, reg, &ev));
    show("ADD NULL event", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], NULL));
    show("op 0, NULL event", epoll_ctl(ep, 0, p[0], NULL));
    show("op 0", epoll_ctl(ep, 0, p[0], &ev));
    show("op 4", epoll_ctl(ep, 4, p[0], &ev));
    show("MOD absent", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    show("DEL absent", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    show("ADD", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    show("ADD again", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    show("MOD", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
    show("DEL, NULL event", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
    show("DEL again", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], &ev));
    int d = dup(p[0]);
    show("ADD fd", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
    show("ADD a dup of it (another item)", epoll_ctl(ep, EPOLL_CTL_ADD, d, &ev));
    show("DEL the dup", epoll_ctl(ep, EPOLL_CTL_DEL, d, &ev));
    show("DEL fd", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], &ev));

    section("EPOLLEXCLUSIVE");
    show("ADD IN|EXCLUSIVE", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN | EPOLLEXCLUSIVE, 1));
    show("MOD of an exclusive item", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN, 1));
    show("MOD with EXCLUSIVE", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLEXCLUSIVE, 1));
    write(p[1], "x", 1);
    wait0("exclusive item reports", ep);
    show("DEL the exclusive item", ctl(ep, EPOLL_CTL_DEL, p[0], 0, 0));
    show("ADD ET|OUT|ERR|HUP|EXCLUSIVE", ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLET | EPOLLOUT | EPOLLERR
                                                                 | EPOLLHUP | EPOLLEXCLUSIVE, 2));
    show("MOD absent with EXCLUSIVE", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLEXCLUSIVE, 1));
    show("EXCLUSIVE|ONESHOT", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN | EPOLLONESHOT | EPOLLEXCLUSIVE, 1));
    show("EXCLUSIVE|RDHUP", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN | EPOLLRDHUP | EPOLLEXCLUSIVE, 1));
    show("EXCLUSIVE|PRI", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLPRI | EPOLLEXCLUSIVE, 1));
    show("EXCLUSIVE|RDNORM", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLRDNORM | EPOLLEXCLUSIVE, 1));
    int inner = epoll_create1(0);
    show("EXCLUSIVE on an epoll fd", ctl(ep, EPOLL_CTL_ADD, inner, EPOLLIN | EPOLLEXCLUSIVE, 1));
    show("EXCLUSIVE, DEL with it set", ctl(ep, EPOLL_CTL_DEL, p[1], EPOLLEXCLUSIVE, 0));

    close(inner);
    close(d);
    close(reg);
    close(dir);
    close(opath);
    close(p[0]);
    close(p[1]);
    close(ep);
    unlink("epoll-regular");
}

static void triggering(void)
{
    section("level- and edge-triggered");
    int lt = epoll_create1(0), et = epoll_create1(0), p[2];
    char buf[16];
    make_pipe(p);
    ctl(lt, EPOLL_CTL_ADD, p[0], EPOLLIN, 1);
    ctl(et, EPOLL_CTL_ADD, p[0], EPOLLIN | EPOLLET, 2);
    wait0("LT empty", lt);
    wait0("ET empty", et);
    write(p[1], "ab", 2);
    wait0("LT data 1", lt);
    wait0("LT data 2", lt);
    wait0("LT data 3", lt);
    wait0("ET data 1", et);
    wait0("ET data 2", et);
    write(p[1], "c", 1);
    wait0("ET after a write to a non-empty pipe", et);
    wait0("ET then", et);
    read(p[0], buf, 1);
    wait0("ET after a partial read", et);
    wait0("LT after a partial read", lt);
    read(p[0], buf, sizeof buf);
    wait0("LT drained", lt);
    wait0("ET drained", et);
    write(p[1], "d", 1);
    wait0("ET new data", et);
    show("ET MOD (same events) re-arms", ctl(et, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET, 3));
    wait0("ET after MOD", et);
    wait0("ET after MOD, again", et);
    show("MOD to LT", ctl(et, EPOLL_CTL_MOD, p[0], EPOLLIN, 4));
    wait0("now LT 1", et);
    wait0("now LT 2", et);
    read(p[0], buf, sizeof buf);

    /* the write end: ready once at ADD, again only after the pipe was full and drained */
    show("ET on the write end", ctl(et, EPOLL_CTL_ADD, p[1], EPOLLOUT | EPOLLET, 5));
    wait0("write end 1", et);
    wait0("write end 2", et);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    char big[4096] = {0};
    long total = 0, n;
    while ((n = write(p[1], big, sizeof big)) > 0)
        total += n;
    wait0("write end full", et);
    while (total > 0 && (n = read(p[0], big, sizeof big)) > 0)
        total -= n;
    wait0("write end after draining", et);
    wait0("write end after draining, again", et);

    section("interest masks");
    write(p[1], "e", 1);
    show("MOD read end to OUT (never true there)", ctl(lt, EPOLL_CTL_MOD, p[0], EPOLLOUT, 6));
    wait0("read end asked OUT", lt);
    show("MOD read end to 0xffff", ctl(lt, EPOLL_CTL_MOD, p[0], 0xffff, 7));
    wait0("read end asked 0xffff", lt);
    show("MOD to IN|RDNORM", ctl(lt, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLRDNORM, 8));
    wait0("read end asked IN|RDNORM", lt);
    close(p[0]);
    close(p[1]);
    close(lt);
    close(et);
}

static void oneshot(void)
{
    section("EPOLLONESHOT");
    int ep = epoll_create1(0), p[2];
    char buf[16];
    make_pipe(p);
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN | EPOLLONESHOT, 1);
    wait0("empty", ep);
    write(p[1], "a", 1);
    wait0("data", ep);
    wait0("disabled", ep);
    write(p[1], "b", 1);
    wait0("disabled after more data", ep);
    close(p[1]);
    wait0("disabled, even for HUP", ep);
    show("ADD again", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 1));
    show("MOD re-arms", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 2));
    wait0("re-armed", ep);
    wait0("disabled again", ep);
    show("MOD ET|ONESHOT", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET | EPOLLONESHOT, 3));
    wait0("re-armed ET", ep);
    read(p[0], buf, sizeof buf);
    show("MOD re-arms with only HUP left", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLONESHOT, 4));
    wait0("HUP", ep);
    show("DEL", ctl(ep, EPOLL_CTL_DEL, p[0], 0, 0));
    close(p[0]);
    close(ep);
}

static void hup_err(void)
{
    section("EPOLLHUP and EPOLLERR");
    int ep = epoll_create1(0), p[2];
    make_pipe(p);
    ctl(ep, EPOLL_CTL_ADD, p[0], 0, 1);
    wait0("read end, no events asked", ep);
    write(p[1], "a", 1);
    wait0("read end with data, no events asked", ep);
    close(p[1]);
    wait0("writer gone: HUP without asking", ep);
    show("MOD to IN|RDHUP", ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLRDHUP, 2));
    wait0("pipes never report RDHUP", ep);
    close(p[0]);

    make_pipe(p);
    ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLIN, 3);
    wait0("write end asked IN", ep);
    close(p[0]);
    wait0("reader gone: ERR", ep);
    show("MOD to OUT", ctl(ep, EPOLL_CTL_MOD, p[1], EPOLLOUT, 4));
    wait0("reader gone, asked OUT", ep);
    close(p[1]);
    close(ep);
}

static void closing(void)
{
    section("closing watched fds");
    signal(SIGPIPE, SIG_IGN);
    int ep = epoll_create1(0), p[2];
    make_pipe(p);
    int w = p[1];
    show("ADD write end", ctl(ep, EPOLL_CTL_ADD, w, EPOLLOUT, 7));
    int d = dup(w);
    close(w);
    wait0("fd closed, dup open: still reported", ep);
    show("DEL the closed fd", ctl(ep, EPOLL_CTL_DEL, w, 0, 0));
    show("MOD the closed fd", ctl(ep, EPOLL_CTL_MOD, w, EPOLLOUT, 0));
    show("ADD the dup", ctl(ep, EPOLL_CTL_ADD, d, EPOLLOUT, 8));
    wait0("both items", ep);
    show("ctl DEL dup", ctl(ep, EPOLL_CTL_DEL, d, 0, 0));
    dup2(d, w); /* the old number names the same file again: the old item is found */
    show("ADD old number, same file", ctl(ep, EPOLL_CTL_ADD, w, EPOLLOUT, 9));
    show("MOD old number, same file", ctl(ep, EPOLL_CTL_MOD, w, EPOLLOUT, 10));
    wait0("the old item, new data", ep);
    close(w);
    close(d);
    wait0("last fd closed: gone", ep);

    make_pipe(p);
    show("ADD read end", ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 11));
    write(p[1], "a", 1);
    wait0("ready", ep);
    int old = p[0];
    close(p[0]);
    wait0("closed: gone", ep);
    show("write to the pipe without readers", write(p[1], "b", 1));
    int q[2];
    make_pipe(q); /* takes the old number */
    printf("number reused: %d\n", q[0] == old);
    show("ADD the new file at the old number", ctl(ep, EPOLL_CTL_ADD, q[0], EPOLLIN, 12));
    show("DEL it", ctl(ep, EPOLL_CTL_DEL, q[0], 0, 0));
    close(q[0]);
    close(q[1]);
    close(p[1]);

    /* closing the epoll fd with items and a nested watcher */
    int outer = epoll_create1(0), inner = epoll_create1(0);
    make_pipe(p);
    ctl(inner, EPOLL_CTL_ADD, p[1], EPOLLOUT, 13);
    ctl(outer, EPOLL_CTL_ADD, inner, EPOLLIN, 14);
    show_events("outer sees inner", epoll_wait(outer, evbuf, 8, 0));
    close(inner);
    show_events("inner closed", epoll_wait(outer, evbuf, 8, 0));
    close(outer);
    close(p[0]);
    close(p[1]);
    close(ep);
}

static void nesting(void)
{
    section("nested epoll");
    int outer = epoll_create1(0), inner = epoll_create1(0), p[2];
    char buf[16];
    make_pipe(p);
    show("ADD inner to outer", ctl(outer, EPOLL_CTL_ADD, inner, EPOLLIN | EPOLLOUT, 1));
    wait0("outer, inner empty", outer);
    show("ADD pipe to inner", ctl(inner, EPOLL_CTL_ADD, p[0], EPOLLIN, 2));
    wait0("outer, pipe empty", outer);
    write(p[1], "a", 1);
    wait0("outer, pipe has data", outer);
    struct pollfd pf = {inner, POLLIN | POLLOUT, 0};
    int n = poll(&pf, 1, 0);
    printf("poll on inner: %d %#x\n", n, pf.revents);
    wait0("inner", inner);
    read(p[0], buf, sizeof buf);
    wait0("outer after draining", outer);
    ctl(inner, EPOLL_CTL_MOD, p[0], EPOLLIN | EPOLLET, 3);
    write(p[1], "b", 1);
    wait0("outer, inner has an ET event", outer);
    wait0("inner consumes it", inner);
    wait0("outer after inner consumed", outer);
    show("ADD outer to inner (a cycle)", ctl(inner, EPOLL_CTL_ADD, outer, EPOLLIN, 4));
    show("ET item for the inner epoll", ctl(outer, EPOLL_CTL_MOD, inner, EPOLLIN | EPOLLET, 5));
    write(p[1], "c", 1);
    wait0("outer ET 1", outer);
    wait0("outer ET 2", outer);
    close(p[0]);
    close(p[1]);
    close(inner);
    close(outer);

    section("nesting depth");
    int e[8];
    for (int i = 0; i < 8; i++)
        e[i] = epoll_create1(0);
    char label[64];
    for (int i = 0; i < 5; i++) {
        snprintf(label, sizeof label, "ADD e%d to e%d", i + 1, i);
        show(label, ctl(e[i], EPOLL_CTL_ADD, e[i + 1], EPOLLIN, i));
    }
    show("ADD e6 to e5 (below the chain)", ctl(e[5], EPOLL_CTL_ADD, e[6], EPOLLIN, 6));
    show("ADD e0 to e6 (above the chain)", ctl(e[6], EPOLL_CTL_ADD, e[0], EPOLLIN, 7));
    show("ADD e3 to e0 (a shortcut)", ctl(e[0], EPOLL_CTL_ADD, e[3], EPOLLIN, 8));
    show("ADD e0 to e3 (a cycle)", ctl(e[3], EPOLL_CTL_ADD, e[0], EPOLLIN, 9));
    show("ADD e2 to e2", ctl(e[2], EPOLL_CTL_ADD, e[2], EPOLLIN, 10));
    make_pipe(p);
    show("ADD a pipe to the deepest", ctl(e[4], EPOLL_CTL_ADD, p[0], EPOLLIN, 11));
    write(p[1], "x", 1);
    wait0("the top sees it", e[0]);
    for (int i = 0; i < 8; i++)
        close(e[i]);
    close(p[0]);
    close(p[1]);
}

static void order(void)
{
    section("ready list order");
    int ep = epoll_create1(0), p[2], q[2];
    make_pipe(p);
    make_pipe(q);
    write(p[1], "a", 1);
    write(q[1], "a", 1);
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 1);
    ctl(ep, EPOLL_CTL_ADD, q[0], EPOLLIN, 2);
    for (int i = 0; i < 3; i++)
        show_events("maxevents 1", epoll_wait(ep, evbuf, 1, 0));
    show_events("maxevents 8", epoll_wait(ep, evbuf, 8, 0));
    int r = epoll_create1(0);
    ctl(r, EPOLL_CTL_ADD, q[1], EPOLLOUT, 3);
    ctl(r, EPOLL_CTL_ADD, p[1], EPOLLOUT, 4);
    show_events("in ADD order", epoll_wait(r, evbuf, 8, 0));
    close(r);
    close(p[0]);
    close(p[1]);
    close(q[0]);
    close(q[1]);
    close(ep);
}

static void wait_errors(void)
{
    section("epoll_wait errors and timeouts");
    int ep = epoll_create1(0), p[2];
    make_pipe(p);
    int closed = dup(p[0]);
    close(closed);
    show("maxevents 0", epoll_wait(ep, evbuf, 0, 0));
    show("maxevents -1", epoll_wait(ep, evbuf, -1, 0));
    show("maxevents INT_MAX/12 + 1", epoll_wait(ep, evbuf, INTMAX_EVENTS + 1, 0));
    show("maxevents INT_MAX/12", epoll_wait(ep, evbuf, INTMAX_EVENTS, 0));
    show("maxevents 0, closed epfd", epoll_wait(closed, evbuf, 0, 0));
    show("closed epfd", epoll_wait(closed, evbuf, 1, 0));
    show("epfd is a pipe", epoll_wait(p[0], evbuf, 1, 0));
    show("epfd is a pipe, maxevents 0", epoll_wait(p[0], evbuf, 0, 0));
    show("kernel address, closed epfd", epoll_wait(closed, (void *)-4096L, 1, 0));
    show("kernel address, epfd is a pipe", epoll_wait(p[0], (void *)-4096L, 1, 0));
    show("kernel address, maxevents 0", epoll_wait(ep, (void *)-4096L, 0, 0));
    show("kernel address, nothing ready", epoll_wait(ep, (void *)-4096L, 1, 0));
    show("buffer ends at the user limit", epoll_wait(ep, (void *)(0x7ffffffff000L - 24), 2, 0));
    show("buffer ends a byte past it", epoll_wait(ep, (void *)(0x7ffffffff000L - 23), 2, 0));
    show("NULL events, nothing ready", epoll_wait(ep, NULL, 1, 0));
    ctl(ep, EPOLL_CTL_ADD, p[1], EPOLLOUT | EPOLLONESHOT, 1);
    show("NULL events, one ready", epoll_wait(ep, NULL, 1, 0));
    show_events("the event was not consumed", epoll_wait(ep, evbuf, 8, 0));
    ctl(ep, EPOLL_CTL_MOD, p[1], EPOLLOUT, 1);
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLOUT, 2);
    write(p[1], "x", 1);
    ctl(ep, EPOLL_CTL_MOD, p[0], EPOLLIN, 2);
    show("read-only events buffer", epoll_wait(ep, (void *)now_ms, 1, 0));

    long long t0 = now_ms();
    int q[2];
    make_pipe(q);
    int e2 = epoll_create1(0);
    ctl(e2, EPOLL_CTL_ADD, q[0], EPOLLIN, 3);
    show("epoll_wait 30 ms", epoll_wait(e2, evbuf, 8, 30));
    CHECK("epoll_wait waited", now_ms() - t0 >= 30);
    struct timespec ts = {0, 30000000};
    t0 = now_ms();
    show("epoll_pwait2 30 ms", syscall(SYS_epoll_pwait2, e2, evbuf, 8, &ts, NULL, 8));
    CHECK("epoll_pwait2 waited", now_ms() - t0 >= 30);
    printf("timespec not written back: %ld %ld\n", (long)ts.tv_sec, ts.tv_nsec);
    ts = (struct timespec){0, 0};
    show("epoll_pwait2 zero", syscall(SYS_epoll_pwait2, e2, evbuf, 8, &ts, NULL, 8));
    show("epoll_pwait2 NULL events, zero", syscall(SYS_epoll_pwait2, e2, NULL, 8, &ts, NULL, 8));
    ts = (struct timespec){0, 1000000000};
    show("epoll_pwait2 nsec 1e9", syscall(SYS_epoll_pwait2, e2, evbuf, 8, &ts, NULL, 8));
    ts = (struct timespec){-1, 0};
    show("epoll_pwait2 sec -1", syscall(SYS_epoll_pwait2, e2, evbuf, 8, &ts, NULL, 8));
    show("epoll_pwait2 bad timespec", syscall(SYS_epoll_pwait2, e2, evbuf, 8, (void *)8, NULL, 8));
    show("epoll_pwait2 bad timespec, maxevents 0", syscall(SYS_epoll_pwait2, e2, evbuf, 0, (void *)8, NULL, 8));
    ts = (struct timespec){0, 0};
    sigset_t none;
    sigemptyset(&none);
    show("epoll_pwait2 sigsetsize 3", syscall(SYS_epoll_pwait2, e2, evbuf, 8, &ts, &none, 3));
    show("epoll_pwait2 sigsetsize 3, maxevents 0", syscall(SYS_epoll_pwait2, e2, evbuf, 0, &ts, &none, 3));
    show("epoll_pwait sigsetsize 3", syscall(SYS_epoll_pwait, e2, evbuf, 8, 0, &none, 3));
    show("epoll_pwait NULL mask, sigsetsize 3", syscall(SYS_epoll_pwait, e2, evbuf, 8, 0, NULL, 3));
    show("epoll_pwait bad mask", syscall(SYS_epoll_pwait, e2, evbuf, 8, 0, (void *)8, 8));
    show("epoll_pwait bad mask, closed epfd", syscall(SYS_epoll_pwait, closed, evbuf, 8, 0, (void *)8, 8));
    write(q[1], "y", 1);
    t0 = now_ms();
    show_events("epoll_wait forever, ready", epoll_wait(e2, evbuf, 8, -1));
    ts = (struct timespec){5, 0};
    show_events("epoll_pwait2 5 s, ready", syscall(SYS_epoll_pwait2, e2, evbuf, 8, &ts, NULL, 8));
    printf("ready calls did not wait: %d\n", now_ms() - t0 < 4000);
    close(e2);
    close(q[0]);
    close(q[1]);
    close(p[0]);
    close(p[1]);
    close(ep);
}

static void on_alarm(int sig)
{
    (void)sig;
    handled++;
}

static void signals(void)
{
    section("signal masks and EINTR");
    int ep = epoll_create1(0), p[2];
    make_pipe(p);
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN, 1);
    sigset_t block1, only2;
    start_mask_probe(&block1, &only2);

    raise(SIGUSR1);
    show("epoll_pwait with USR1 unblocked", epoll_pwait(ep, evbuf, 8, -1, &only2));
    report_mask("after epoll_pwait");
    raise(SIGUSR1);
    show("epoll_pwait timeout 0 with USR1 unblocked", epoll_pwait(ep, evbuf, 8, 0, &only2));
    report_mask("a zero timeout beats the signal");
    write(p[1], "a", 1);
    show("epoll_pwait ready with USR1 unblocked", epoll_pwait(ep, evbuf, 8, -1, &only2));
    report_mask("readiness beats the signal");
    char c;
    read(p[0], &c, 1);
    struct timespec ts = {5, 0};
    show("epoll_pwait2 with USR1 unblocked", syscall(SYS_epoll_pwait2, ep, evbuf, 8, &ts, &only2, 8));
    report_mask("after epoll_pwait2");
    raise(SIGUSR1);
    show("epoll_pwait, USR1 still blocked, timeout 0", epoll_pwait(ep, evbuf, 8, 0, &block1));
    report_mask("still pending");
    sigprocmask(SIG_SETMASK, &only2, NULL);
    report_mask("unblocked at last");
    sigprocmask(SIG_SETMASK, &block1, NULL);

    set_action(SIGALRM, on_alarm, SA_RESTART); /* epoll_wait is never restarted */
    struct itimerval it = {{0, 0}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    show("epoll_wait forever, interrupted", epoll_wait(ep, evbuf, 8, -1));
    printf("alarms %d\n", (int)handled);
    handled = 0;
    sigprocmask(SIG_SETMASK, &only2, NULL);
    close(p[0]);
    close(p[1]);
    close(ep);
}

static void woken(void)
{
    section("woken by another thread");
    int ep = epoll_create1(0), outer = epoll_create1(0), p[2];
    make_pipe(p);
    ctl(ep, EPOLL_CTL_ADD, p[0], EPOLLIN | EPOLLET, 1);
    pthread_t t;
    pthread_create(&t, NULL, late_writer, &p[1]);
    show_events("epoll_wait forever", epoll_wait(ep, evbuf, 8, -1));
    pthread_join(t, NULL);
    char c;
    read(p[0], &c, 1);
    ctl(outer, EPOLL_CTL_ADD, ep, EPOLLIN, 2);
    pthread_create(&t, NULL, late_writer, &p[1]);
    show_events("outer epoll_wait forever", epoll_wait(outer, evbuf, 8, -1));
    pthread_join(t, NULL);
    show_events("inner then", epoll_wait(ep, evbuf, 8, 0));
    close(p[0]);
    close(p[1]);
    close(outer);
    close(ep);
}

/* One waiter blocked in each of several epoll instances watching one file: with
 * EPOLLEXCLUSIVE a write wakes at least one (Linux: one exclusive waiter, every
 * non-exclusive one); what each waiter reports depends on who woke first, so only
 * Linux's guarantees are printed. */
static void exclusive_wakeups(int file, int writer, const char *what)
{
    enum { N = 3 };
    unsigned modes[N] = {EPOLLIN | EPOLLEXCLUSIVE, EPOLLIN | EPOLLEXCLUSIVE, EPOLLIN};
    pid_t kids[N];
    for (int i = 0; i < N; i++) {
        int ep = epoll_create1(0);
        if (ctl(ep, EPOLL_CTL_ADD, file, modes[i], i) != 0)
            die("epoll_ctl");
        kids[i] = fork_or_die();
        if (kids[i] == 0) {
            struct epoll_event ev;
            int n = epoll_wait(ep, &ev, 1, 1500);
            _exit(n == 1 && ev.events == EPOLLIN && ev.data.u64 == (unsigned long)i ? 1 : 0);
        }
        close(ep);
    }
    usleep(100000);  /* most likely all are blocked by now; the output holds either way */
    uint64_t one = 1;
    if (write(writer, &one, sizeof one) <= 0)
        die("write");
    int woke[N];
    for (int i = 0; i < N; i++) {
        int st = reap(kids[i]);
        woke[i] = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    printf("%s: an exclusive waiter woke: %s\n", what, woke[0] == 1 || woke[1] == 1 ? "yes" : "no");
    printf("%s: the non-exclusive waiter woke: %s\n", what, woke[2] == 1 ? "yes" : "no");
}

static void exclusive(void)
{
    section("EPOLLEXCLUSIVE wake-ups");
    int efd = eventfd(0, 0);
    exclusive_wakeups(efd, efd, "eventfd");
    close(efd);
    int p[2];
    if (pipe(p) != 0)
        die("pipe");
    exclusive_wakeups(p[0], p[1], "pipe");
    close(p[0]);
    close(p[1]);
}

int main(void)
{
    test_init();
    creation();
    ctl_errors();
    triggering();
    oneshot();
    hup_err();
    closing();
    nesting();
    order();
    wait_errors();
    signals();
    woken();
    exclusive();
    return 0;
}
