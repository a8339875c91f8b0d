/* Pipes within one process: pipe/pipe2 flags and errors, F_GETPIPE_SZ/F_SETPIPE_SZ
 * rounding, capacity counted in page slots (how many bytes of a given write size fit
 * before EAGAIN), PIPE_BUF atomicity, FIONREAD, EOF, EPIPE with SIGPIPE ignored and
 * blocked, O_DIRECT packets, fstat/statx of a pipe, ESPIPE and wrong-end errors.
 *
 * Nothing here ever waits: every write that could block is non-blocking, and every
 * blocking read has data or EOF ready.  Cross-process pipes are tests/c/pipes2.c. */
#include "common.h"
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/uio.h>

static char big[200000];
static const char *self;

/* The two lowest free descriptors, as pipe() must return them. */
static void lowest_two(int *a, int *b)
{
    *a = dup(1);
    *b = dup(1);
    close(*a);
    close(*b);
}

static int fionread(int fd)
{
    int n = -1;
    if (ioctl(fd, FIONREAD, &n) == -1)
        return -1;
    return n;
}

static void closep(int p[2])
{
    close(p[0]);
    close(p[1]);
}

/* Non-blocking writes of `chunk` bytes until one fails; the bytes that fitted. */
static long fill(int fd, long chunk, int *err)
{
    long total = 0, n;
    while ((n = write(fd, big, chunk)) > 0)
        total += n;
    *err = errno;
    return total;
}

static void creation(void)
{
    static const struct { int flags; const char *name; } sets[] = {
        {0, "0"}, {O_NONBLOCK, "O_NONBLOCK"}, {O_CLOEXEC, "O_CLOEXEC"}, {O_DIRECT, "O_DIRECT"},
        {O_NONBLOCK | O_CLOEXEC | O_DIRECT, "all three"},
    };
    char label[96];
    int p[2], a, b;
    section("pipe2 flags");
    for (unsigned i = 0; i < sizeof sets / sizeof sets[0]; i++) {
        lowest_two(&a, &b);
        snprintf(label, sizeof label, "pipe2 %s", sets[i].name);
        if (show(label, pipe2(p, sets[i].flags)) == -1)
            continue;
        CHECK("the two lowest free fds", p[0] == a && p[1] == b);
        snprintf(label, sizeof label, "  read end F_GETFL");
        show(label, fcntl(p[0], F_GETFL));
        snprintf(label, sizeof label, "  write end F_GETFL");
        show(label, fcntl(p[1], F_GETFL));
        show("  read end F_GETFD", fcntl(p[0], F_GETFD));
        show("  write end F_GETFD", fcntl(p[1], F_GETFD));
        closep(p);
    }
    show("pipe", pipe(p));
    show("  read end F_GETFL", fcntl(p[0], F_GETFL));
    show("  write end F_GETFL", fcntl(p[1], F_GETFL));
    closep(p);

    section("pipe2 errors");
    lowest_two(&a, &b);
    show("pipe2 O_APPEND", pipe2(p, O_APPEND));
    show("pipe2 O_RDWR", pipe2(p, O_RDWR));
    show("pipe2 high bit", syscall(SYS_pipe2, p, 0x80000000u));
    show("pipe2 NULL", syscall(SYS_pipe2, NULL, 0));
    show("pipe2 NULL O_CLOEXEC", syscall(SYS_pipe2, NULL, O_CLOEXEC));
    show("pipe2 bad address and bad flags", syscall(SYS_pipe2, (void *)8, O_APPEND));
    show("pipe NULL", syscall(SYS_pipe, NULL));
    int c, d;
    lowest_two(&c, &d);
    CHECK("failed calls left no descriptor behind", a == c && b == d);

    struct rlimit old, one;
    getrlimit(RLIMIT_NOFILE, &old);
    one = old;
    one.rlim_cur = a + 1; /* exactly one free descriptor */
    show("setrlimit NOFILE", setrlimit(RLIMIT_NOFILE, &one));
    show("pipe with one free fd", pipe(p));
    show("pipe2 NULL with one free fd", syscall(SYS_pipe2, NULL, 0));
    int e = dup(1);
    CHECK("the free fd is still free", e == a);
    close(e);
    setrlimit(RLIMIT_NOFILE, &old);
}

static void sizes(void)
{
    static const long args[] = {0, 1, 4096, 4097, 5000, 65537, 1 << 20, 0x80000001L, -1, 65536};
    char label[64];
    int p[2];
    section("pipe sizes");
    pipe(p);
    show("F_GETPIPE_SZ read end", fcntl(p[0], F_GETPIPE_SZ));
    show("F_GETPIPE_SZ write end", fcntl(p[1], F_GETPIPE_SZ));
    for (unsigned i = 0; i < sizeof args / sizeof args[0]; i++) {
        snprintf(label, sizeof label, "F_SETPIPE_SZ %ld", args[i]);
        show(label, fcntl(p[1], F_SETPIPE_SZ, (int)args[i]));
        show("  F_GETPIPE_SZ other end", fcntl(p[0], F_GETPIPE_SZ));
    }
    show("F_SETPIPE_SZ high half ignored",
         syscall(SYS_fcntl, p[0], F_SETPIPE_SZ, (1L << 32) + 8192));
    fcntl(p[0], F_SETPIPE_SZ, 65536);
    for (int i = 0; i < 3; i++)
        write(p[1], big, 4096);
    show("F_SETPIPE_SZ 8192 with 3 pages queued", fcntl(p[0], F_SETPIPE_SZ, 8192));
    show("F_SETPIPE_SZ 16384 with 3 pages queued", fcntl(p[0], F_SETPIPE_SZ, 16384));
    show("read", read(p[0], big, 12000));
    show("F_SETPIPE_SZ 4096 with 288 bytes in one page", fcntl(p[0], F_SETPIPE_SZ, 4096));
    show("FIONREAD", fionread(p[0]));
    closep(p);

    int fd = open(self, O_RDONLY); /* this program: a regular file */
    show("F_GETPIPE_SZ on a regular file", fcntl(fd, F_GETPIPE_SZ));
    show("F_SETPIPE_SZ on a regular file", fcntl(fd, F_SETPIPE_SZ, 4096));
    close(fd);
    show("F_GETPIPE_SZ on a closed fd", fcntl(fd, F_GETPIPE_SZ));
}

static void capacity(void)
{
    static const long chunks[] = {1000, 3000, 4096, 4097, 5000, 8191, 65536, 100000};
    char label[64];
    int p[2], err;
    section("capacity");
    for (unsigned i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        pipe2(p, O_NONBLOCK);
        long fit = fill(p[1], chunks[i], &err);
        snprintf(label, sizeof label, "%ld-byte writes fit", chunks[i]);
        show(label, fit);
        printf("  then: errno=%s\n", ename(err));
        CHECK("  FIONREAD counts them", fionread(p[0]) == fit);
        closep(p);
    }
    pipe2(p, O_NONBLOCK);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    show("1-byte writes fit a one-page pipe", fill(p[1], 1, &err));
    printf("  then: errno=%s\n", ename(err));
    closep(p);

    section("atomicity");
    pipe2(p, O_NONBLOCK);
    fcntl(p[1], F_SETPIPE_SZ, 8192);
    show("write 100", write(p[1], big, 100));
    show("write 4096", write(p[1], big, 4096));
    show("write 1 (full)", write(p[1], big, 1));
    show("write 3000 (full)", write(p[1], big, 3000));
    show("write 4096 (full)", write(p[1], big, 4096));
    show("write 4097 (full)", write(p[1], big, 4097));
    show("FIONREAD", fionread(p[0]));
    show("read 100", read(p[0], big, 100));
    show("write 4097 (one free page)", write(p[1], big, 4097));
    show("write 1", write(p[1], big, 1));
    closep(p);

    pipe2(p, O_NONBLOCK);
    show("write 100", write(p[1], big, 100));
    show("write 70000 (partial)", write(p[1], big, 70000));
    show("write 1", write(p[1], big, 1));
    show("read all", read(p[0], big, sizeof big));
    show("read again", read(p[0], big, sizeof big));
    closep(p);

    pipe2(p, O_NONBLOCK);
    fcntl(p[1], F_SETPIPE_SZ, 4096);
    show("write 3000", write(p[1], big, 3000));
    show("read 2000", read(p[0], big, 2000));
    show("write 1000 (up to the page end)", write(p[1], big, 1000));
    show("write 97 (past the page end)", write(p[1], big, 97));
    show("write 96", write(p[1], big, 96));
    closep(p);
}

static void reading(void)
{
    char buf[64], a[4], b[4];
    int p[2];
    section("reading and writing");
    pipe(p);
    show("write", write(p[1], "hello world", 11));
    show("FIONREAD read end", fionread(p[0]));
    show("FIONREAD write end", fionread(p[1]));
    show("read 3", read(p[0], buf, 3));
    show_bytes("  got", buf, 3);
    show("FIONREAD", fionread(p[0]));
    struct iovec iv[2] = {{a, 4}, {b, 4}};
    show("readv 4+4", readv(p[0], iv, 2));
    show_bytes("  first", a, 4);
    show_bytes("  second", b, 4);
    struct iovec ov[2] = {{"ab", 2}, {"cde", 3}};
    show("writev 2+3", writev(p[1], ov, 2));
    show("read 64", read(p[0], buf, sizeof buf));
    show_bytes("  got", buf, 5);
    show("read 0 bytes of an empty pipe", read(p[0], buf, 0));
    show("write 0 bytes", write(p[1], buf, 0));
    show("F_SETFL O_NONBLOCK on the read end", fcntl(p[0], F_SETFL, O_NONBLOCK));
    show("read empty non-blocking", read(p[0], buf, 1));
    int on = 0;
    show("FIONBIO off", ioctl(p[0], FIONBIO, &on));
    show("  F_GETFL", fcntl(p[0], F_GETFL));
    show("read on the write end", read(p[1], buf, 1));
    show("read 0 on the write end", read(p[1], buf, 0));
    show("write on the read end", write(p[0], "x", 1));
    show("lseek read end", lseek(p[0], 0, SEEK_CUR));
    show("lseek write end", lseek(p[1], 0, SEEK_SET));
    show("pread", pread(p[0], buf, 1, 0));
    show("pwrite", pwrite(p[1], "x", 1, 0));
    show("ioctl TCGETS", ioctl(p[0], TCGETS, buf));

    section("end of file");
    int w2 = dup(p[1]);
    show("write", write(p[1], "tail", 4));
    show("close write end", close(p[1]));
    show("read", read(p[0], buf, sizeof buf));
    show_bytes("  got", buf, 4);
    show("F_SETFL O_NONBLOCK", fcntl(p[0], F_SETFL, O_NONBLOCK));
    show("read with a dup of the write end open", read(p[0], buf, sizeof buf));
    show("write via the dup", write(w2, "!", 1));
    show("close the dup", close(w2));
    show("read the last byte", read(p[0], buf, sizeof buf));
    show("read at EOF (non-blocking)", read(p[0], buf, sizeof buf));
    show("F_SETFL 0", fcntl(p[0], F_SETFL, 0));
    show("read at EOF (blocking)", read(p[0], buf, sizeof buf));
    show("read at EOF again", read(p[0], buf, sizeof buf));
    close(p[0]);
}

static int sigpipe_pending(void)
{
    sigset_t s;
    sigpending(&s);
    return sigismember(&s, SIGPIPE);
}

static void broken(void)
{
    int p[2];
    section("broken pipe");
    signal(SIGPIPE, SIG_IGN);
    pipe(p);
    show("close read end", close(p[0]));
    show("write with SIGPIPE ignored", write(p[1], "x", 1));
    show("write 0 bytes", write(p[1], "x", 0));
    show("write 100000 bytes", write(p[1], big, 100000));
    close(p[1]);

    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGPIPE);
    sigprocmask(SIG_BLOCK, &block, &old);
    signal(SIGPIPE, SIG_DFL);
    pipe2(p, O_NONBLOCK);
    close(p[0]);
    show("SIGPIPE pending before", sigpipe_pending());
    show("write with SIGPIPE blocked", write(p[1], "x", 1));
    show("SIGPIPE pending after", sigpipe_pending());
    signal(SIGPIPE, SIG_IGN); /* discards the pending one */
    show("SIGPIPE pending once ignored", sigpipe_pending());
    sigprocmask(SIG_SETMASK, &old, NULL);
    close(p[1]);
}

static void packets(void)
{
    char buf[8192];
    int p[2], err;
    section("O_DIRECT packets");
    pipe2(p, O_NONBLOCK | O_DIRECT);
    show("write 3", write(p[1], "abc", 3));
    show("write 5", write(p[1], "defgh", 5));
    show("write 5000", write(p[1], big, 5000));
    show("FIONREAD", fionread(p[0]));
    show("read 100", read(p[0], buf, 100));
    show_bytes("  got", buf, 3);
    show("read 2 of a 5-byte packet", read(p[0], buf, 2));
    show_bytes("  got", buf, 2);
    show("read 8192", read(p[0], buf, sizeof buf));
    show("read 8192", read(p[0], buf, sizeof buf));
    show("read empty", read(p[0], buf, sizeof buf));
    show("1-byte packets fit", fill(p[1], 1, &err));
    printf("  then: errno=%s\n", ename(err));
    show("F_SETPIPE_SZ 8192 with 16 packets", fcntl(p[0], F_SETPIPE_SZ, 8192));
    while (read(p[0], buf, sizeof buf) > 0)
        ;
    struct iovec ov[2] = {{"ab", 2}, {"cd", 2}};
    show("writev 2+2", writev(p[1], ov, 2));
    show("write 2", write(p[1], "ef", 2));
    show("read 100", read(p[0], buf, 100));
    show_bytes("  got", buf, 4);
    show("read 100", read(p[0], buf, 100));
    show("write packet", write(p[1], "pk", 2));
    show("F_SETFL O_NONBLOCK (stream again)", fcntl(p[1], F_SETFL, O_NONBLOCK));
    show("write", write(p[1], "nn", 2));
    show("write", write(p[1], "mm", 2));
    show("read 100", read(p[0], buf, 100));
    show("read 100", read(p[0], buf, 100));
    show_bytes("  got", buf, 4);
    show("F_SETFL O_DIRECT on the read end", fcntl(p[0], F_SETFL, O_DIRECT));
    show("  F_GETFL", fcntl(p[0], F_GETFL));
    closep(p);
}

static void status(void)
{
    struct stat r, w, o;
    int p[2], q[2];
    section("status");
    pipe(p);
    pipe(q);
    show("fstat read end", fstat(p[0], &r));
    show("fstat write end", fstat(p[1], &w));
    fstat(q[0], &o);
    show("S_ISFIFO", S_ISFIFO(r.st_mode));
    printf("permissions: %o\n", r.st_mode & 07777);
    show("st_nlink", r.st_nlink);
    show("st_size", r.st_size);
    show("st_blksize", r.st_blksize);
    show("st_blocks", r.st_blocks);
    show("st_rdev", r.st_rdev);
    CHECK("owned by the creator", r.st_uid == geteuid() && r.st_gid == getegid());
    CHECK("both ends are one inode", r.st_ino == w.st_ino && r.st_dev == w.st_dev);
    CHECK("another pipe is another inode", r.st_ino != o.st_ino && r.st_dev == o.st_dev);
    write(p[1], "x", 1);
    fstat(p[0], &w);
    CHECK("a write does not set st_size", w.st_size == 0);
    struct statx sx;
    show("statx AT_EMPTY_PATH", statx(p[0], "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx));
    show("  S_ISFIFO", S_ISFIFO(sx.stx_mode));
    CHECK("  same inode as fstat", sx.stx_ino == r.st_ino);
    closep(p);
    closep(q);
}

int main(int argc, char **argv)
{
    (void)argc;
    self = argv[0];
    test_init();
    memset(big, 'x', sizeof big);
    creation();
    sizes();
    capacity();
    reading();
    broken();
    packets();
    status();
    return 0;
}
