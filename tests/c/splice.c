/* Moving data between descriptors without user buffers: sendfile, splice, tee,
 * copy_file_range, vmsplice, and the advice calls fadvise64, readahead, sync_file_range.
 *
 * Each call is run on the happy path (counts, file positions and offset pointers after
 * the call, the bytes that arrived, checksummed) and on Linux's error paths (which side
 * must be a pipe, offsets on pipes, access modes, O_APPEND, flags, overlapping ranges,
 * other file systems).  Pipes are observed through what Linux makes visible of their
 * page buffers: a splice from an unaligned file offset fills one buffer per file page,
 * spliced buffers are never merged into by later writes, and blocked calls wake when a
 * child process drains or fills the pipe.
 *
 * Only counts, errno names and checksums are printed. */
#define STATUS_BY_NUMBER
#include "proc_helpers.h"
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/time.h>
#include <sys/uio.h>

#define PAGE 4096
#define BIG (3 << 20) /* more than one CHUNK of the sentry's copy loops */

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 131u + (i >> 9)) & 0xff);
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

/* A file of `size` pattern bytes; returns an O_RDWR fd at offset 0. */
static int make_file(const char *path, size_t size)
{
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0644);
    if (fd < 0)
        die(path);
    unsigned char buf[8192];
    for (size_t done = 0; done < size;) {
        size_t n = size - done < sizeof buf ? size - done : sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = pattern_byte(done + i);
        if (write(fd, buf, n) != (ssize_t)n)
            die("write pattern");
        done += n;
    }
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* Checksum of a file's bytes [off, off+len) read with pread. */
static uint64_t sum_range(int fd, off_t off, size_t len)
{
    unsigned char buf[65536];
    uint64_t h = FNV0;
    while (len) {
        ssize_t n = pread(fd, buf, len < sizeof buf ? len : sizeof buf, off);
        if (n <= 0)
            break;
        h = fnv(h, buf, (size_t)n);
        off += n;
        len -= (size_t)n;
    }
    return h;
}

static uint64_t sum_pattern(size_t from, size_t len)
{
    uint64_t h = FNV0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = pattern_byte(from + i);
        h = fnv(h, &c, 1);
    }
    return h;
}

/* Everything a pipe holds now (it must not be empty-with-writers: reads nonblocking). */
static long drain(int rd, uint64_t *sum)
{
    unsigned char buf[65536];
    long total = 0;
    int fl = fcntl(rd, F_GETFL);
    fcntl(rd, F_SETFL, fl | O_NONBLOCK);
    *sum = FNV0;
    for (;;) {
        ssize_t n = read(rd, buf, sizeof buf);
        if (n <= 0)
            break;
        *sum = fnv(*sum, buf, (size_t)n);
        total += n;
    }
    fcntl(rd, F_SETFL, fl);
    return total;
}

static long fsize(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 ? (long)st.st_size : -1;
}

static long pos(int fd)
{
    return (long)lseek(fd, 0, SEEK_CUR);
}

static int nbytes_in(int fd)
{
    int n = -1;
    ioctl(fd, FIONREAD, &n);
    return n;
}

/* ------------------------------------------------------------------ sendfile */

static void test_sendfile(void)
{
    section("sendfile");
    int src = make_file("sf_src", 10000);
    int dst = open("sf_dst", O_CREAT | O_RDWR | O_TRUNC, 0644);
    show("file to file", sendfile(dst, src, NULL, 4000));
    show("src position", pos(src));
    show("dst position", pos(dst));
    show("rest", sendfile(dst, src, NULL, 100000));
    show("at eof", sendfile(dst, src, NULL, 100));
    show("dst size", fsize(dst));
    CHECK("dst bytes", sum_range(dst, 0, 10000) == sum_pattern(0, 10000));

    off_t off = 9000;
    show("with offset", sendfile(dst, src, &off, 500));
    show("offset after", (long)off);
    show("src position unchanged", pos(src));
    off = 20000;
    show("offset past eof", sendfile(dst, src, &off, 500));
    show("offset unchanged", (long)off);
    off = -1;
    show("negative offset", sendfile(dst, src, &off, 10));
    show("count 0", sendfile(dst, src, NULL, 0));
    show("bad offset pointer", sendfile(dst, src, (off_t *)8, 10));
    show("huge count", sendfile(dst, src, NULL, (size_t)-1));

    int p[2];
    make_pipe(p);
    off = 0;
    show("to pipe", sendfile(p[1], src, &off, 100000));
    uint64_t h;
    show("pipe held", drain(p[0], &h));
    CHECK("pipe bytes", h == sum_pattern(0, 10000));
    int big = make_file("sf_big", 200000);
    off = 100;
    show("to pipe, unaligned offset", sendfile(p[1], big, &off, 200000));
    show("pipe held", drain(p[0], &h));
    CHECK("pipe bytes", h == sum_pattern(100, 65436));
    show("from pipe", sendfile(dst, p[0], NULL, 10));
    off = 0;
    show("from pipe with offset", sendfile(dst, p[0], &off, 10));
    show("pipe to pipe", sendfile(p[1], p[0], NULL, 10));

    int app = open("sf_app", O_CREAT | O_WRONLY | O_APPEND, 0644);
    show("to O_APPEND", sendfile(app, src, NULL, 10));
    int wo = open("sf_src", O_WRONLY);
    show("from write-only", sendfile(dst, wo, NULL, 10));
    int ro = open("sf_src", O_RDONLY);
    show("to read-only", sendfile(ro, src, NULL, 10));
    show("bad in fd", sendfile(dst, 999, NULL, 10));
    show("bad out fd", sendfile(999, src, NULL, 10));
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    show("from directory", sendfile(dst, dir, NULL, 10));
    int path = open("sf_src", O_PATH);
    show("from O_PATH", sendfile(dst, path, NULL, 10));
    int null = open("/dev/null", O_WRONLY);
    off = 0;
    show("to /dev/null", sendfile(null, src, &off, 10000));
    int zero = open("/dev/zero", O_RDONLY);
    show("from /dev/zero", sendfile(dst, zero, NULL, 1000));

    /* full pipe, O_NONBLOCK write end */
    int q[2];
    make_pipe2(q, O_NONBLOCK);
    off = 0;
    long got = 0, n;
    while ((n = sendfile(q[1], big, &off, 200000)) > 0)
        got += n;
    show("filled nonblocking pipe", got);
    show("then", n);
    close(q[0]);
    signal(SIGPIPE, SIG_IGN);
    show("no reader", sendfile(q[1], src, NULL, 10));
    signal(SIGPIPE, SIG_DFL);

    /* in and out the same description: both sides start at its position */
    int self = make_file("sf_self", 1000);
    lseek(self, 100, SEEK_SET);
    show("same description", sendfile(self, self, NULL, 200));
    show("position after", pos(self));
    show("size after", fsize(self));
    CHECK("content unchanged", sum_range(self, 0, 1000) == sum_pattern(0, 1000));
    close(self);

    /* a large copy goes through in one call */
    int bsrc = make_file("sf_bigsrc", BIG);
    int bdst = open("sf_bigdst", O_CREAT | O_RDWR | O_TRUNC, 0644);
    show("3 MiB file to file", sendfile(bdst, bsrc, NULL, BIG + 10));
    CHECK("3 MiB bytes", sum_range(bdst, 0, BIG) == sum_pattern(0, BIG));
    show("positions", pos(bsrc) + pos(bdst));

    close(src), close(dst), close(p[0]), close(p[1]), close(big), close(app), close(wo);
    close(ro), close(dir), close(path), close(null), close(zero), close(q[1]), close(bsrc);
    close(bdst);
}

/* ------------------------------------------------------------------ splice */

static void test_splice_basic(void)
{
    section("splice");
    int src = make_file("sp_src", 10000);
    int dst = open("sp_dst", O_CREAT | O_RDWR | O_TRUNC, 0644);
    int p[2];
    make_pipe(p);
    uint64_t h;

    show("len 0 with bad fds", splice(999, NULL, 998, NULL, 0, 0));
    show("bad flags", splice(src, NULL, p[1], NULL, 10, 0x10));
    show("bad in fd", splice(999, NULL, p[1], NULL, 10, 0));
    show("bad out fd", splice(src, NULL, 999, NULL, 10, 0));
    show("neither a pipe", splice(src, NULL, dst, NULL, 10, 0));
    loff_t o = 0;
    show("offset on in pipe", splice(p[0], &o, dst, NULL, 10, 0));
    show("offset on out pipe", splice(src, NULL, p[1], &o, 10, 0));
    show("same pipe", splice(p[0], NULL, p[1], NULL, 10, 0));
    show("from write end", splice(p[1], NULL, dst, NULL, 10, 0));
    show("into read end", splice(src, NULL, p[0], NULL, 10, 0));
    show("bad offset pointer", splice(src, (loff_t *)8, p[1], NULL, 10, 0));

    show("file to pipe", splice(src, NULL, p[1], NULL, 3000, 0));
    show("src position", pos(src));
    o = 5000;
    show("file at offset to pipe", splice(src, &o, p[1], NULL, 1000, 0));
    show("offset after", (long)o);
    show("src position unchanged", pos(src));
    show("pipe holds", nbytes_in(p[0]));
    show("pipe to file", splice(p[0], NULL, dst, NULL, 100000, 0));
    show("dst position", pos(dst));
    CHECK("dst head", sum_range(dst, 0, 3000) == sum_pattern(0, 3000));
    CHECK("dst tail", sum_range(dst, 3000, 1000) == sum_pattern(5000, 1000));

    write(p[1], "hello", 5);
    o = 100;
    show("pipe to file at offset", splice(p[0], NULL, dst, &o, 100, 0));
    show("offset after", (long)o);
    show("dst position unchanged", pos(dst));
    char buf[8] = {0};
    pread(dst, buf, 5, 100);
    show_bytes("written", buf, 5);

    show("empty pipe, SPLICE_F_NONBLOCK", splice(p[0], NULL, dst, NULL, 10, SPLICE_F_NONBLOCK));
    int q[2];
    make_pipe2(q, O_NONBLOCK);
    show("empty pipe, O_NONBLOCK", splice(q[0], NULL, dst, NULL, 10, 0));
    close(q[1]);
    show("empty pipe, no writer", splice(q[0], NULL, dst, NULL, 10, 0));
    close(q[0]);

    int app = open("sp_app", O_CREAT | O_WRONLY | O_APPEND, 0644);
    write(p[1], "x", 1);
    show("pipe to O_APPEND", splice(p[0], NULL, app, NULL, 10, 0));
    o = 0;
    show("pipe to O_APPEND at offset", splice(p[0], NULL, app, &o, 10, 0));
    int ro = open("sp_src", O_RDONLY);
    show("pipe to read-only", splice(p[0], NULL, ro, NULL, 10, 0));
    show("still queued", nbytes_in(p[0]));
    show("pipe to /dev/null", splice(p[0], NULL, open("/dev/null", O_WRONLY), NULL, 10, 0));

    o = -1;
    show("negative in offset", splice(src, &o, p[1], NULL, 10, 0));
    o = 20000;
    show("in offset past eof", splice(src, &o, p[1], NULL, 10, 0));
    show("offset unchanged", (long)o);
    write(p[1], "ab", 2);
    o = -5;
    show("negative out offset", splice(p[0], NULL, dst, &o, 10, 0));
    int zero = open("/dev/zero", O_RDONLY);
    show("/dev/zero to pipe", splice(zero, NULL, p[1], NULL, 5000, 0));
    show("pipe held", drain(p[0], &h));
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    show("directory to pipe", splice(dir, NULL, p[1], NULL, 10, 0));
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    show("to pipe without reader", splice(src, NULL, p[1], NULL, 10, 0));
    signal(SIGPIPE, SIG_DFL);
    close(p[1]), close(src), close(dst), close(app), close(ro), close(zero), close(dir);
}

static void test_splice_pipes(void)
{
    section("splice pipe to pipe");
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    write(a[1], "0123456789", 10);
    show("pipe to pipe", splice(a[0], NULL, b[1], NULL, 4, 0));
    show("left in a", nbytes_in(a[0]));
    show("now in b", nbytes_in(b[0]));
    show("rest", splice(a[0], NULL, b[1], NULL, 100, 0));
    char buf[16] = {0};
    long n = read(b[0], buf, sizeof buf);
    show_bytes("b reads", buf, n);
    show("empty, nonblock", splice(a[0], NULL, b[1], NULL, 10, SPLICE_F_NONBLOCK));
    close(a[1]);
    show("empty, no writer", splice(a[0], NULL, b[1], NULL, 10, 0));

    /* a full output pipe */
    int c[2], d[2];
    make_pipe(c);
    make_pipe2(d, O_NONBLOCK);
    char page[PAGE];
    memset(page, 'p', sizeof page);
    long got = 0;
    while ((n = write(d[1], page, sizeof page)) > 0)
        got += n;
    show("filled", got);
    write(c[1], "zz", 2);
    show("into full pipe", splice(c[0], NULL, d[1], NULL, 2, 0));
    uint64_t h;
    show("drained", drain(d[0], &h));
    show("after draining", splice(c[0], NULL, d[1], NULL, 2, 0));
    close(d[0]);
    signal(SIGPIPE, SIG_IGN);
    write(c[1], "y", 1);
    show("into pipe without reader", splice(c[0], NULL, d[1], NULL, 2, 0));
    signal(SIGPIPE, SIG_DFL);
    show("input kept", nbytes_in(c[0]));
    close(a[0]), close(b[0]), close(b[1]), close(c[0]), close(c[1]), close(d[1]);
}

/* What Linux shows of pipe buffers: one per file page, never merged into. */
static void test_splice_buffers(void)
{
    section("splice buffers");
    int src = make_file("sb_src", 200000);
    int p[2];
    make_pipe2(p, O_NONBLOCK);
    uint64_t h;
    loff_t o = 100;
    show("unaligned offset", splice(src, &o, p[1], NULL, 200000, 0));
    show("drained", drain(p[0], &h));
    CHECK("bytes", h == sum_pattern(100, 65436));
    o = 0;
    show("aligned offset", splice(src, &o, p[1], NULL, 200000, 0));
    show("drained", drain(p[0], &h));
    CHECK("bytes", h == sum_pattern(0, 65536));
    o = 4000;
    show("across a page boundary", splice(src, &o, p[1], NULL, 200, 0));
    show("drained", drain(p[0], &h));

    /* sixteen small splices take sixteen buffers */
    long total = 0, n;
    int calls = 0;
    o = 0;
    while ((n = splice(src, &o, p[1], NULL, 100, 0)) > 0) {
        total += n;
        calls++;
    }
    printf("small splices: %d calls, %ld bytes, then %s\n", calls, total,
           n < 0 ? ename(errno) : "0");
    show("a write then", write(p[1], "w", 1));
    show("drained", drain(p[0], &h));

    /* a write after a splice does not merge into the spliced buffer */
    for (int i = 0; i < 15; i++)
        splice(src, NULL, p[1], NULL, 10, 0);
    show("write after 15 splices", write(p[1], "abc", 3));
    show("and another", write(p[1], "def", 3));
    show("drained", drain(p[0], &h));
    close(src), close(p[0]), close(p[1]);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_splice_blocking(void)
{
    section("splice blocking");
    int src = make_file("sk_src", 200000);
    int p[2];
    make_pipe(p);
    /* from an empty pipe: a child writes later */
    pid_t kid = fork_or_die();
    if (kid == 0) {
        sleep_ms(50);
        write(p[1], "late!", 5);
        _exit(0);
    }
    int dst = open("sk_dst", O_CREAT | O_RDWR | O_TRUNC, 0644);
    show("waited for data", splice(p[0], NULL, dst, NULL, 100, 0));
    show_status("writer", reap(kid));

    /* into a full pipe: a child reads one page */
    loff_t o = 0;
    long got = 0, n;
    while ((n = splice(src, &o, p[1], NULL, 200000, SPLICE_F_NONBLOCK)) > 0)
        got += n;
    show("filled", got);
    kid = fork_or_die();
    if (kid == 0) {
        char page[PAGE];
        sleep_ms(50);
        _exit(read(p[0], page, sizeof page) == PAGE ? 0 : 1);
    }
    show("waited for room", splice(src, &o, p[1], NULL, 200000, 0));
    show_status("reader", reap(kid));
    uint64_t h;
    show("drained", drain(p[0], &h));

    /* a signal ends the wait: EINTR without SA_RESTART */
    set_action(SIGALRM, on_alarm, 0);
    struct itimerval it = {{0, 0}, {0, 50000}};
    setitimer(ITIMER_REAL, &it, NULL);
    show("interrupted", splice(p[0], NULL, dst, NULL, 10, 0));
    set_action(SIGALRM, SIG_DFL, 0);

    /* tee waits for data too */
    int q[2];
    make_pipe(q);
    kid = fork_or_die();
    if (kid == 0) {
        sleep_ms(50);
        write(p[1], "tee", 3);
        _exit(0);
    }
    show("tee waited", tee(p[0], q[1], 100, 0));
    show_status("writer", reap(kid));
    close(src), close(p[0]), close(p[1]), close(dst), close(q[0]), close(q[1]);
}

/* ------------------------------------------------------------------ tee */

static void test_tee(void)
{
    section("tee");
    int a[2], b[2];
    make_pipe(a);
    make_pipe(b);
    int f = make_file("tee_file", 100);
    write(a[1], "hello world", 11);
    show("bad flags", tee(a[0], b[1], 10, 0x10));
    show("len 0", tee(999, 998, 0, 0));
    show("bad in", tee(999, b[1], 10, 0));
    show("bad out", tee(a[0], 999, 10, 0));
    show("file in", tee(f, b[1], 10, 0));
    show("file out", tee(a[0], f, 10, 0));
    show("same pipe", tee(a[0], a[1], 10, 0));
    show("from write end", tee(a[1], b[1], 10, 0));
    show("into read end", tee(a[0], b[0], 10, 0));
    show("tee 5", tee(a[0], b[1], 5, 0));
    show("input untouched", nbytes_in(a[0]));
    show("tee all", tee(a[0], b[1], 100, 0));
    char buf[32] = {0};
    long n = read(b[0], buf, sizeof buf);
    show_bytes("copy", buf, n);
    n = read(a[0], buf, sizeof buf);
    show_bytes("original", buf, n);
    show("empty, nonblock", tee(a[0], b[1], 10, SPLICE_F_NONBLOCK));
    close(a[1]);
    show("empty, no writer", tee(a[0], b[1], 10, 0));
    int c[2];
    make_pipe(c);
    write(c[1], "x", 1);
    close(b[0]);
    signal(SIGPIPE, SIG_IGN);
    show("no reader", tee(c[0], b[1], 10, 0));
    signal(SIGPIPE, SIG_DFL);
    close(a[0]), close(b[1]), close(c[0]), close(c[1]), close(f);
}

/* ------------------------------------------------------------------ copy_file_range */

static void test_copy_file_range(void)
{
    section("copy_file_range");
    int src = make_file("cf_src", 10000);
    int dst = open("cf_dst", O_CREAT | O_RDWR | O_TRUNC, 0644);
    show("basic", copy_file_range(src, NULL, dst, NULL, 4000, 0));
    show("positions", pos(src) * 100000 + pos(dst));
    loff_t oi = 9000, oo = 20000;
    show("with offsets", copy_file_range(src, &oi, dst, &oo, 5000, 0));
    show("in offset", (long)oi);
    show("out offset", (long)oo);
    show("positions unchanged", pos(src) * 100000 + pos(dst));
    show("dst size", fsize(dst));
    CHECK("bytes", sum_range(dst, 20000, 1000) == sum_pattern(9000, 1000));
    oi = 10000;
    show("at eof", copy_file_range(src, &oi, dst, NULL, 10, 0));
    oi = 20000;
    show("past eof", copy_file_range(src, &oi, dst, NULL, 10, 0));
    show("len 0", copy_file_range(src, NULL, dst, NULL, 0, 0));
    show("flags", copy_file_range(src, NULL, dst, NULL, 10, 1));
    show("bad fd", copy_file_range(999, NULL, dst, NULL, 10, 0));
    show("bad offset pointer", copy_file_range(src, (loff_t *)8, dst, NULL, 10, 0));
    oi = -1;
    show("negative offset", copy_file_range(src, &oi, dst, NULL, 10, 0));

    oi = 0, oo = 5000;
    show("same file apart", copy_file_range(src, &oi, src, &oo, 1000, 0));
    oi = 0, oo = 500;
    show("same file overlapping", copy_file_range(src, &oi, src, &oo, 1000, 0));
    int src2 = open("cf_src", O_RDWR);
    oi = 0, oo = 500;
    show("same file, other fd, overlapping", copy_file_range(src, &oi, src2, &oo, 1000, 0));

    int app = open("cf_app", O_CREAT | O_WRONLY | O_APPEND, 0644);
    show("to O_APPEND", copy_file_range(src, NULL, app, NULL, 10, 0));
    int wo = open("cf_src", O_WRONLY);
    show("from write-only", copy_file_range(wo, NULL, dst, NULL, 10, 0));
    int ro = open("cf_src", O_RDONLY);
    show("to read-only", copy_file_range(src, NULL, ro, NULL, 10, 0));
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    show("from directory", copy_file_range(dir, NULL, dst, NULL, 10, 0));
    show("to directory", copy_file_range(src, NULL, dir, NULL, 10, 0));
    int p[2];
    make_pipe(p);
    write(p[1], "abc", 3);
    show("from pipe", copy_file_range(p[0], NULL, dst, NULL, 10, 0));
    show("to pipe", copy_file_range(src, NULL, p[1], NULL, 10, 0));
    int null = open("/dev/null", O_RDWR);
    show("to /dev/null", copy_file_range(src, NULL, null, NULL, 10, 0));
    int path = open("cf_src", O_PATH);
    show("from O_PATH", copy_file_range(path, NULL, dst, NULL, 10, 0));
    int shm = open("/dev/shm/sv_splice_test", O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (shm >= 0) {
        show("to another file system", copy_file_range(src, NULL, shm, NULL, 10, 0));
        unlink("/dev/shm/sv_splice_test");
        close(shm);
    }

    int bsrc = make_file("cf_bigsrc", BIG);
    int bdst = open("cf_bigdst", O_CREAT | O_RDWR | O_TRUNC, 0644);
    long total = 0, n;
    while ((n = copy_file_range(bsrc, NULL, bdst, NULL, BIG, 0)) > 0)
        total += n;
    show("3 MiB copied", total);
    CHECK("3 MiB bytes", sum_range(bdst, 0, BIG) == sum_pattern(0, BIG));
    close(src), close(src2), close(dst), close(app), close(wo), close(ro), close(dir);
    close(p[0]), close(p[1]), close(null), close(path), close(bsrc), close(bdst);
}

/* ------------------------------------------------------------------ vmsplice */

static void test_vmsplice(void)
{
    section("vmsplice");
    int p[2];
    make_pipe(p);
    struct iovec iov[2] = {{"hello ", 6}, {"world", 5}};
    show("to pipe", vmsplice(p[1], iov, 2, 0));
    show("pipe holds", nbytes_in(p[0]));
    char a[4] = {0}, b[16] = {0};
    struct iovec out[2] = {{a, 4}, {b, sizeof b}};
    long n = vmsplice(p[0], out, 2, 0);
    show("to user", n);
    show_bytes("first", a, 4);
    show_bytes("second", b, n - 4);
    show("empty, nonblock", vmsplice(p[0], out, 2, SPLICE_F_NONBLOCK));
    show("no segments", vmsplice(p[0], out, 0, 0));
    show("bad flags", vmsplice(p[1], iov, 2, 0x10));
    show("too many segments", vmsplice(p[1], iov, 1025, 0));
    show("bad iovec pointer", vmsplice(p[1], (struct iovec *)8, 1, 0));
    struct iovec bad = {(void *)8, 10};
    show("unreadable memory", vmsplice(p[1], &bad, 1, 0));
    int f = make_file("vm_file", 10);
    show("file", vmsplice(f, iov, 2, 0));
    show("file, no segments", vmsplice(f, iov, 0, 0));
    show("bad fd", vmsplice(999, iov, 2, 0));
    int path = open("vm_file", O_PATH);
    show("O_PATH", vmsplice(path, iov, 2, 0));

    /* user pages become buffers: an unaligned 64 KiB region needs seventeen */
    unsigned char *mem = mmap(NULL, 20 * PAGE, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < 20 * PAGE; i++)
        mem[i] = pattern_byte(i);
    struct iovec big = {mem + 100, 16 * PAGE};
    show("unaligned 64 KiB", vmsplice(p[1], &big, 1, 0));
    show("full, nonblock", vmsplice(p[1], &big, 1, SPLICE_F_NONBLOCK));
    uint64_t h;
    show("drained", drain(p[0], &h));
    CHECK("bytes", h == sum_pattern(100, 16 * PAGE - 100));
    int q[2];
    make_pipe2(q, O_NONBLOCK);
    struct iovec one = {mem, 10};
    show("to O_NONBLOCK pipe", vmsplice(q[1], &one, 1, 0));
    close(q[1]);
    show("from a pipe whose writer left", vmsplice(q[0], out, 2, 0));
    show("then at eof", vmsplice(q[0], out, 2, 0));
    close(q[0]);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    show("no reader", vmsplice(p[1], iov, 2, 0));
    signal(SIGPIPE, SIG_DFL);
    munmap(mem, 20 * PAGE);
    close(p[1]), close(f), close(path);
}

/* ------------------------------------------------------------------ advice calls */

static long fadvise(int fd, long off, long len, int advice)
{
    return syscall(SYS_fadvise64, fd, off, len, advice);
}

static void test_advice(void)
{
    section("fadvise64");
    int f = make_file("adv_file", 10000);
    for (int adv = 0; adv <= 5; adv++) {
        char label[32];
        snprintf(label, sizeof label, "advice %d", adv);
        show(label, fadvise(f, 0, 0, adv));
    }
    show("advice 6", fadvise(f, 0, 0, 6));
    show("advice -1", fadvise(f, 0, 0, -1));
    show("negative len", fadvise(f, 0, -1, 0));
    show("negative offset", fadvise(f, -100, 10, 0));
    show("bad fd", fadvise(999, 0, 0, 0));
    int p[2];
    make_pipe(p);
    show("pipe", fadvise(p[0], 0, 0, 0));
    show("pipe, bad advice", fadvise(p[0], 0, 0, 99));
    int dir = open(".", O_RDONLY | O_DIRECTORY);
    show("directory", fadvise(dir, 0, 0, 0));
    int null = open("/dev/null", O_RDONLY);
    show("/dev/null", fadvise(null, 0, 0, 3));
    int path = open("adv_file", O_PATH);
    show("O_PATH", fadvise(path, 0, 0, 0));
    int wo = open("adv_file", O_WRONLY);
    show("write-only", fadvise(wo, 0, 0, 3));

    section("readahead");
    show("file", readahead(f, 0, 4096));
    show("past eof", readahead(f, 1 << 20, 4096));
    show("negative offset", readahead(f, -1, 10));
    show("huge count", readahead(f, 0, (size_t)-1));
    show("bad fd", readahead(999, 0, 10));
    show("pipe", readahead(p[0], 0, 10));
    show("directory", readahead(dir, 0, 10));
    show("/dev/null", readahead(null, 0, 10));
    show("write-only", readahead(wo, 0, 10));
    show("O_PATH", readahead(path, 0, 10));

    section("sync_file_range");
    show("file", sync_file_range(f, 0, 0, SYNC_FILE_RANGE_WRITE));
    show("all flags", sync_file_range(f, 0, 100, 7));
    show("no flags", sync_file_range(f, 0, 100, 0));
    show("bad flags", sync_file_range(f, 0, 100, 8));
    show("negative offset", sync_file_range(f, -1, 100, 0));
    show("negative nbytes", sync_file_range(f, 0, -1, 0));
    show("overflowing range", sync_file_range(f, 0x7fffffffffffff00ll, 0x1000, 0));
    show("bad fd", sync_file_range(999, 0, 0, 0));
    show("pipe", sync_file_range(p[0], 0, 0, 0));
    show("pipe, bad flags", sync_file_range(p[0], 0, 0, 8));
    show("directory", sync_file_range(dir, 0, 0, 0));
    show("/dev/null", sync_file_range(null, 0, 0, 0));
    show("write-only", sync_file_range(wo, 0, 0, 0));
    show("O_PATH", sync_file_range(path, 0, 0, 0));
    close(f), close(p[0]), close(p[1]), close(dir), close(null), close(path), close(wo);
}

int main(void)
{
    test_init();
    test_sendfile();
    test_splice_basic();
    test_splice_pipes();
    test_splice_buffers();
    test_splice_blocking();
    test_tee();
    test_copy_file_range();
    test_vmsplice();
    test_advice();
    show_all_reaped();
    return 0;
}
