/* Pipes between processes: a three-process pipeline moving 1 MiB (checksummed), PIPE_BUF
 * atomicity with four concurrent writer processes, EOF only when the last writer in any
 * process closes, readers and writers blocked in one process woken by another, EPIPE for a
 * blocked writer whose reader exits, poll across processes, close-on-exec of pipe ends, and
 * a shell-style pipeline: pipe ends dup2'ed onto 0/1 and the program re-executed (argv[0])
 * as a filter ("upper", "rev").
 *
 * Only sizes, counts, checksums and relations are printed. */
#define STATUS_BY_NUMBER
#include "proc_helpers.h"
#include <ctype.h>
#include <limits.h>
#include <poll.h>
#include <sys/ioctl.h>

static const char *self;

/* write() until everything is out (pipes may take less than asked). */
static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV0 0xcbf29ce484222325ull
#define TOTAL (1 << 20)

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 131u + (i >> 9)) & 0xff);
}

static int to_upper(char *s, ssize_t n);
static int reverse_line(char *s, ssize_t n);

/* ------------------------------------------------------------------ pipeline */

static void test_pipeline(void)
{
    section("generator | transformer | parent, 1 MiB");
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    pid_t gen = fork_or_die();
    if (gen == 0) {
        close(a[0]);
        close(b[0]);
        close(b[1]);
        static unsigned char buf[8192];
        size_t sent = 0, chunk = 1;
        while (sent < TOTAL) {
            chunk = (chunk * 7 + 1) % 8000 + 1;   /* 1..8000 bytes, varying */
            size_t n = TOTAL - sent < chunk ? TOTAL - sent : chunk;
            for (size_t i = 0; i < n; i++)
                buf[i] = pattern_byte(sent + i);
            if (write_all(a[1], buf, n) != 0)
                _exit(1);
            sent += n;
        }
        _exit(0);
    }
    pid_t xform = fork_or_die();
    if (xform == 0) {
        close(a[1]);
        close(b[0]);
        static unsigned char buf[5000];
        size_t want = 1;
        for (;;) {
            want = (want * 13 + 5) % 4999 + 1;
            ssize_t n = read(a[0], buf, want);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                _exit(n == 0 ? 0 : 1);
            for (ssize_t i = 0; i < n; i++)
                buf[i] = (unsigned char)(buf[i] + 1);
            if (write_all(b[1], buf, (size_t)n) != 0)
                _exit(2);
        }
    }
    close(a[0]);
    close(a[1]);
    close(b[1]);
    static unsigned char buf[65536];
    uint64_t h = FNV0;
    size_t total = 0;
    long reads = 0;
    for (;;) {
        ssize_t n = read(b[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        reads++;
        h = fnv(h, buf, (size_t)n);
        total += (size_t)n;
    }
    close(b[0]);
    uint64_t want = FNV0;
    for (size_t i = 0; i < TOTAL; i++) {
        unsigned char c = (unsigned char)(pattern_byte(i) + 1);
        want = fnv(want, &c, 1);
    }
    printf("received %zu bytes, checksum %016llx, matches the expected: %s\n", total,
           (unsigned long long)h, h == want ? "yes" : "no");
    CHECK("it took several reads", reads > 16);
    show_status("generator", reap(gen));
    show_status("transformer", reap(xform));
}

/* ------------------------------------------------------------------ PIPE_BUF atomicity */

#define WRITERS 4
#define RECORDS 64
#define REC 4096   /* PIPE_BUF */

static void test_atomicity(void)
{
    section("PIPE_BUF atomicity, 4 writer processes");
    printf("PIPE_BUF: %d\n", PIPE_BUF);
    int p[2];
    make_pipe(p);
    pid_t kids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        kids[w] = fork_or_die();
        if (kids[w] == 0) {
            close(p[0]);
            static unsigned char rec[REC];
            for (int s = 0; s < RECORDS; s++) {
                memset(rec, 'A' + w, REC);
                rec[0] = (unsigned char)w;
                rec[1] = (unsigned char)s;
                rec[REC - 1] = (unsigned char)(w ^ s);
                if (write(p[1], rec, REC) != REC)   /* one write: all or nothing */
                    _exit(1);
            }
            _exit(0);
        }
    }
    close(p[1]);
    static unsigned char rec[REC];
    size_t have = 0;
    int records = 0, torn = 0, disorder = 0, per[WRITERS] = {0}, next[WRITERS] = {0};
    size_t want = 1;
    for (;;) {
        want = (want * 31 + 7) % 3000 + 1;   /* odd read sizes: records are reassembled */
        size_t n = REC - have < want ? REC - have : want;
        ssize_t r = read(p[0], rec + have, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        have += (size_t)r;
        if (have < REC)
            continue;
        have = 0;
        records++;
        int w = rec[0], s = rec[1];
        int ok = w < WRITERS && rec[REC - 1] == (unsigned char)(w ^ s);
        for (int i = 2; ok && i < REC - 1; i++)
            ok = rec[i] == 'A' + w;
        if (!ok) {
            torn++;
            continue;
        }
        per[w]++;
        if (s != next[w])
            disorder++;
        next[w] = s + 1;
    }
    printf("records %d, torn %d, out of order within a writer %d, leftover bytes %zu\n", records, torn,
           disorder, have);
    printf("per writer: %d %d %d %d\n", per[0], per[1], per[2], per[3]);
    int ok = 1;
    for (int w = 0; w < WRITERS; w++) {
        int st = reap(kids[w]);
        ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    printf("all writers exited 0: %s\n", ok ? "yes" : "no");
    close(p[0]);
}

/* ------------------------------------------------------------------ EOF and wakeups */

static void test_eof_and_wakeups(void)
{
    section("EOF and wakeups across processes");
    int p[2], go[2];
    make_pipe(p);
    make_pipe(go);
    pid_t quick = fork_or_die();
    if (quick == 0) {
        close(p[0]);
        write(p[1], "a", 1);
        _exit(0);
    }
    pid_t slow = fork_or_die();
    if (slow == 0) {
        close(p[0]);
        char c;
        read(go[0], &c, 1);
        write(p[1], "b", 1);
        _exit(0);
    }
    close(p[1]);
    show_status("first writer", reap(quick));
    char buf[8];
    show("read the first writer's byte", read(p[0], buf, sizeof buf));
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    show("poll(0) while the second writer still holds its end", poll(&pfd, 1, 0));
    write(go[1], "g", 1);
    show("blocking read woken by the second writer", read(p[0], buf, sizeof buf));
    show_status("second writer", reap(slow));
    show("read after the last writer exited (EOF)", read(p[0], buf, sizeof buf));
    pfd.revents = 0;
    poll(&pfd, 1, 0);
    printf("poll revents at EOF: POLLIN %d POLLHUP %d\n", !!(pfd.revents & POLLIN), !!(pfd.revents & POLLHUP));
    close(p[0]);

    /* A reader blocked before the data exists. */
    make_pipe(p);
    pid_t late = fork_or_die();
    if (late == 0) {
        close(p[0]);
        sleep_ms(30);
        write(p[1], "late data", 9);
        _exit(0);
    }
    close(p[1]);
    memset(buf, 0, sizeof buf);
    char big[32] = {0};
    show("read blocked until the child wrote", read(p[0], big, sizeof big));
    printf("data: %s\n", big);
    show_status("late writer", reap(late));
    close(p[0]);

    /* A writer blocked on a full pipe, woken when another process drains it. */
    make_pipe(p);
    int cap = fcntl(p[1], F_GETPIPE_SZ);
    printf("capacity: %d\n", cap);
    pid_t drainer = fork_or_die();
    if (drainer == 0) {
        close(p[1]);
        sleep_ms(30);
        static char sink[65536];
        long total = 0;
        ssize_t n;
        while ((n = read(p[0], sink, sizeof sink)) > 0)
            total += n;
        _exit(total == 65536 + 10000 ? 0 : 1);
    }
    close(p[0]);
    static char fill[65536 + 10000];
    memset(fill, 'f', sizeof fill);
    show("write of capacity + 10000 bytes (blocks until drained)", write(p[1], fill, sizeof fill));
    close(p[1]);
    show_status("drainer counted every byte", reap(drainer));

    /* A writer blocked on a full pipe whose only reader exits gets EPIPE. */
    make_pipe(p);
    signal(SIGPIPE, SIG_IGN);
    pid_t quitter = fork_or_die();
    if (quitter == 0) {
        close(p[1]);
        sleep_ms(30);
        _exit(0);
    }
    close(p[0]);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    long filled = 0;
    ssize_t n;
    while ((n = write(p[1], fill, 4096)) > 0)
        filled += n;
    printf("non-blocking fill stopped at %ld bytes with %s\n", filled, ename(errno));
    fcntl(p[1], F_SETFL, 0);
    show("blocking write on the full pipe until the reader exits", write(p[1], fill, 1));
    show_status("reader", reap(quitter));
    pfd = (struct pollfd){.fd = p[1], .events = POLLOUT};
    poll(&pfd, 1, 0);
    printf("poll on the write end without readers: POLLERR %d POLLOUT %d\n", !!(pfd.revents & POLLERR),
           !!(pfd.revents & POLLOUT));
    signal(SIGPIPE, SIG_DFL);
    close(p[1]);

    /* FIONREAD sees what another process left behind. */
    make_pipe(p);
    pid_t leaver = fork_or_die();
    if (leaver == 0) {
        close(p[0]);
        write(p[1], fill, 123);
        _exit(0);
    }
    close(p[1]);
    reap(leaver);
    int avail = -1;
    show("ioctl(FIONREAD)", ioctl(p[0], FIONREAD, &avail));
    printf("bytes available: %d\n", avail);
    close(p[0]);

    /* poll wakes for data written by another process. */
    make_pipe(p);
    pid_t poker = fork_or_die();
    if (poker == 0) {
        close(p[0]);
        sleep_ms(20);
        write(p[1], "p", 1);
        sleep_ms(20);
        _exit(0);
    }
    close(p[1]);
    pfd = (struct pollfd){.fd = p[0], .events = POLLIN};
    show("poll(-1) until the child writes", poll(&pfd, 1, -1));
    printf("revents POLLIN %d POLLHUP %d\n", !!(pfd.revents & POLLIN), !!(pfd.revents & POLLHUP));
    read(p[0], buf, 1);
    pfd.revents = 0;
    show("poll(-1) until the child exits", poll(&pfd, 1, -1));
    printf("revents POLLIN %d POLLHUP %d\n", !!(pfd.revents & POLLIN), !!(pfd.revents & POLLHUP));
    reap(poker);
    close(p[0]);
    close(go[0]);
    close(go[1]);
}

/* ------------------------------------------------------------------ exec */

/* fork, make `in` and `out` stdin and stdout, close every other descriptor, exec a filter. */
static pid_t spawn_filter(const char *mode, int in, int out)
{
    pid_t pid = fork_or_die();
    if (pid == 0) {
        dup2(in, 0);
        dup2(out, 1);
        for (int fd = 3; fd < 64; fd++)
            close(fd);
        execl(self, self, mode, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* fork a child that execs this program to write "via exec" to its copy of p[1]; we keep
 * only p[0]. */
static pid_t spawn_fd_writer(int p[2])
{
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", p[1]);
    pid_t pid = fork_or_die();
    if (pid == 0) {
        close(p[0]);
        execl(self, self, "write-fd", fdarg, (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    return pid;
}

static void test_exec(void)
{
    section("pipe ends across exec");
    /* close-on-exec: the exec'd child does not hold the write end, so EOF comes at once */
    int p[2];
    pipe2(p, O_CLOEXEC);
    pid_t pid = spawn_fd_writer(p);
    char buf[64];
    show("read: EOF once the child execs (its copy was O_CLOEXEC)", read(p[0], buf, sizeof buf));
    show_status("exec'd child's write to the closed fd (exit 9 means EBADF)", reap(pid));
    close(p[0]);

    /* The same fd without O_CLOEXEC stays usable after exec. */
    make_pipe(p);
    pid = spawn_fd_writer(p);
    memset(buf, 0, sizeof buf);
    show("read what the exec'd child wrote through the inherited fd", read(p[0], buf, sizeof buf));
    printf("data: %s\n", buf);
    show_status("exec'd child", reap(pid));
    close(p[0]);

    /* parent | upper | rev | parent */
    int in[2], mid[2], out[2];
    make_pipe(in);
    make_pipe(mid);
    make_pipe(out);
    pid_t up = spawn_filter("upper", in[0], mid[1]);
    pid_t rev = spawn_filter("rev", mid[0], out[1]);
    close(in[0]);
    close(mid[0]);
    close(mid[1]);
    close(out[1]);
    static char text[40000];
    size_t len = 0;
    for (int i = 0; i < 1000; i++)
        len += (size_t)snprintf(text + len, sizeof text - len, "line %04d of the pipeline\n", i);
    /* The filters drain as we write: 27 KB does not fit a 64 KiB pipe pair to deadlock on. */
    write_all(in[1], text, len);
    close(in[1]);
    static char result[40000];
    size_t got = 0;
    ssize_t n;
    while ((n = read(out[0], result + got, sizeof result - 1 - got)) > 0)
        got += (size_t)n;
    result[got] = 0;
    close(out[0]);
    printf("pipeline output: %zu bytes (input %zu)\n", got, len);
    /* What upper | rev must produce, computed here. */
    uint64_t want = FNV0;
    static char expect[4096];
    for (size_t i = 0, start = 0; i < len; i++) {
        if (text[i] != '\n')
            continue;
        size_t ll = i + 1 - start;
        memcpy(expect, text + start, ll);
        to_upper(expect, (ssize_t)ll);
        reverse_line(expect, (ssize_t)ll);
        want = fnv(want, (unsigned char *)expect, ll);
        start = i + 1;
    }
    printf("output is the input upper-cased and reversed line by line: %s\n",
           fnv(FNV0, (unsigned char *)result, got) == want && got == len ? "yes" : "no");
    char *nl = strchr(result, '\n');
    if (nl)
        *nl = 0;
    printf("first line: %s\n", result);
    show_status("upper", reap(up));
    show_status("rev", reap(rev));
}

/* ------------------------------------------------------------------ exec'd modes */

static int filter(int (*fn)(char *, ssize_t))
{
    static char buf[65536];
    static char line[4096];
    size_t ll = 0;
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (ll < sizeof line)
                line[ll++] = buf[i];
            if (buf[i] == '\n') {
                fn(line, (ssize_t)ll);
                if (write_all(1, line, ll) != 0)
                    return 3;
                ll = 0;
            }
        }
    }
    if (ll) {
        fn(line, (ssize_t)ll);
        write_all(1, line, ll);
    }
    return n < 0 ? 2 : 0;
}

static int to_upper(char *s, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++)
        s[i] = (char)toupper((unsigned char)s[i]);
    return 0;
}

static int reverse_line(char *s, ssize_t n)
{
    ssize_t end = n > 0 && s[n - 1] == '\n' ? n - 1 : n;
    for (ssize_t i = 0, j = end - 1; i < j; i++, j--) {
        char t = s[i];
        s[i] = s[j];
        s[j] = t;
    }
    return 0;
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 2 && !strcmp(argv[1], "upper"))
        return filter(to_upper);
    if (argc == 2 && !strcmp(argv[1], "rev"))
        return filter(reverse_line);
    if (argc == 3 && !strcmp(argv[1], "write-fd"))
        return write(atoi(argv[2]), "via exec", 8) == 8 ? 0 : errno == EBADF ? 9 : 8;
    test_init();
    test_pipeline();
    test_atomicity();
    test_eof_and_wakeups();
    test_exec();
    show_all_reaped();
    return 0;
}
