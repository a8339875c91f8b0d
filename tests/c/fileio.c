/* File I/O: open flags, read/write families, offsets, truncation, fd flags, ioctls. */
#include "common.h"
#include <linux/falloc.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <termios.h>

static long fsize(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -1;
    return st.st_size;
}

static void show_content(const char *label, const char *path)
{
    const char *s = get_file(path);
    if (!s)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        show_bytes(label, s, strlen(s));
}

static void basics(void)
{
    char buf[64];
    section("basics");
    int fd = show("open O_CREAT|O_EXCL new", open("f1", O_CREAT | O_RDWR | O_EXCL, 0644));
    show("write", write(fd, "hello world\n", 12));
    show("lseek cur", lseek(fd, 0, SEEK_CUR));
    show("lseek set", lseek(fd, 0, SEEK_SET));
    long n = show("read", read(fd, buf, sizeof buf));
    show_bytes("read data", buf, n);
    show("read at eof", read(fd, buf, sizeof buf));
    show("read count 0", read(fd, buf, 0));
    show("write count 0", write(fd, buf, 0));
    n = show("pread", pread(fd, buf, 5, 6));
    show_bytes("pread data", buf, n);
    show("pwrite", pwrite(fd, "WORLD", 5, 6));
    show("offset unchanged by pwrite", lseek(fd, 0, SEEK_CUR));
    show("pwrite past end", pwrite(fd, "X", 1, 20));
    show("size after hole", fsize(fd));
    n = show("pread over hole", pread(fd, buf, 64, 0));
    show_bytes("pread hole data", buf, n);
    show("pread at size", pread(fd, buf, 8, 21));
    show("pread beyond size", pread(fd, buf, 8, 1000));
    show("lseek end -1", lseek(fd, -1, SEEK_END));
    show("lseek beyond end", lseek(fd, 100, SEEK_END));
    show("size unchanged by lseek", fsize(fd));
    show("lseek negative", lseek(fd, -100, SEEK_SET));
    show("lseek cur negative", lseek(fd, -1000, SEEK_CUR));
    show("lseek bad whence", lseek(fd, 0, 42));
    show("pread negative offset", pread(fd, buf, 1, -1));
    show("pwrite negative offset", pwrite(fd, buf, 1, -1));
    show("close", close(fd));
    show("close again", close(fd));
}

static void vectors(void)
{
    char a[2], b[3], c[100];
    section("vectors");
    int fd = show("open", open("v", O_CREAT | O_RDWR | O_TRUNC, 0644));
    struct iovec w[3] = {{"one,", 4}, {"", 0}, {"two,three", 9}};
    show("writev", writev(fd, w, 3));
    show("lseek", lseek(fd, 0, SEEK_SET));
    struct iovec r[3] = {{a, 2}, {b, 3}, {c, sizeof c}};
    long n = show("readv", readv(fd, r, 3));
    show_bytes("readv a", a, 2);
    show_bytes("readv b", b, 3);
    show_bytes("readv c", c, n - 5);
    struct iovec pw[2] = {{"AB", 2}, {"CD", 2}};
    show("pwritev", pwritev(fd, pw, 2, 1));
    show("offset unchanged by pwritev", lseek(fd, 0, SEEK_CUR));
    memset(c, 0, sizeof c);
    struct iovec pr[2] = {{a, 2}, {c, 6}};
    n = show("preadv", preadv(fd, pr, 2, 0));
    show_bytes("preadv a", a, 2);
    show_bytes("preadv c", c, 6);
    show("readv iovcnt 0", readv(fd, r, 0));
    show("readv iovcnt -1", readv(fd, r, -1));
    show("readv iovcnt 1025", readv(fd, r, 1025));
    struct iovec neg[1] = {{a, (size_t)-1}};
    show("readv negative len", readv(fd, neg, 1));
    show("preadv negative offset", preadv(fd, pr, 2, -5));
    close(fd);
}

static void truncation(void)
{
    char buf[32];
    section("truncate");
    int fd = open("t", O_CREAT | O_RDWR | O_TRUNC, 0644);
    write(fd, "0123456789", 10);
    show("ftruncate shrink", ftruncate(fd, 4));
    show("size", fsize(fd));
    show("offset kept", lseek(fd, 0, SEEK_CUR));
    show("ftruncate grow", ftruncate(fd, 8));
    long n = show("pread", pread(fd, buf, sizeof buf, 0));
    show_bytes("data", buf, n);
    show("ftruncate negative", ftruncate(fd, -1));
    show("fsync", fsync(fd));
    show("fdatasync", fdatasync(fd));
    close(fd);
    int ro = open("t", O_RDONLY);
    show("ftruncate on O_RDONLY", ftruncate(ro, 0));
    show("fsync on O_RDONLY", fsync(ro));
    close(ro);
    show("ftruncate bad fd", ftruncate(999, 0));
    show("truncate path", truncate("t", 2));
    show_content("after truncate", "t");
    show("truncate missing", truncate("missing", 0));
    show("truncate dir", truncate(".", 0));
    fd = show("open O_TRUNC", open("t", O_WRONLY | O_TRUNC));
    show("size after O_TRUNC", fsize(fd));
    close(fd);
}

static void open_flags(void)
{
    section("open flags");
    put_file("e", "abc");
    show("O_CREAT|O_EXCL existing", open("e", O_CREAT | O_EXCL | O_RDWR, 0644));
    show("O_CREAT existing", close(open("e", O_CREAT | O_RDWR, 0600)));
    show("missing without O_CREAT", open("nope", O_RDONLY));
    show("file as directory", open("e/x", O_RDONLY));
    show("O_DIRECTORY on file", open("e", O_RDONLY | O_DIRECTORY));
    show("dir O_WRONLY", open(".", O_WRONLY));
    show("dir O_RDWR", open(".", O_RDWR));
    show("dir O_CREAT", open(".", O_CREAT | O_RDONLY, 0644));
    int d = show("dir O_RDONLY", open(".", O_RDONLY));
    char c;
    show("read dir", read(d, &c, 1));
    show("write dir fd", write(d, "x", 1));
    close(d);

    int fd = open("e", O_RDONLY);
    show("write on O_RDONLY", write(fd, "x", 1));
    close(fd);
    fd = open("e", O_WRONLY);
    show("read on O_WRONLY", read(fd, &c, 1));
    show("pread on O_WRONLY", pread(fd, &c, 1, 0));
    close(fd);

    section("append");
    put_file("ap", "aaa");
    fd = show("open O_APPEND", open("ap", O_WRONLY | O_APPEND));
    show("lseek 0", lseek(fd, 0, SEEK_SET));
    show("write", write(fd, "bbb", 3));
    show("offset after append", lseek(fd, 0, SEEK_CUR));
    show("pwrite at 0 appends", pwrite(fd, "c", 1, 0));
    close(fd);
    show_content("content", "ap");

    section("creat and umask");
    fd = show("creat", creat("cr", 0666));
    show("creat accmode", fcntl(fd, F_GETFL) & O_ACCMODE);
    struct stat st;
    fstat(fd, &st);
    printf("creat mode: %o\n", st.st_mode & 07777);
    close(fd);
    mode_t old = umask(0);
    printf("umask was: %o\n", old);
    fd = open("cr0", O_CREAT | O_WRONLY, 0777);
    fstat(fd, &st);
    printf("mode with umask 0: %o\n", st.st_mode & 07777);
    close(fd);
    umask(077);
    fd = open("cr77", O_CREAT | O_WRONLY, 0666);
    fstat(fd, &st);
    printf("mode with umask 077: %o\n", st.st_mode & 07777);
    close(fd);
    umask(old);
}

static void fd_flags(void)
{
    section("fcntl flags");
    int fd = open("e", O_RDWR | O_CLOEXEC);
    show("F_GETFD with O_CLOEXEC", fcntl(fd, F_GETFD));
    show("F_SETFD 0", fcntl(fd, F_SETFD, 0));
    show("F_GETFD", fcntl(fd, F_GETFD));
    show("F_SETFD FD_CLOEXEC", fcntl(fd, F_SETFD, FD_CLOEXEC));
    show("F_GETFD", fcntl(fd, F_GETFD));
    int fl = fcntl(fd, F_GETFL);
    printf("F_GETFL accmode=%d append=%d nonblock=%d\n", fl & O_ACCMODE, !!(fl & O_APPEND),
           !!(fl & O_NONBLOCK));
    show("F_SETFL append|nonblock|wronly", fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK | O_WRONLY));
    fl = fcntl(fd, F_GETFL);
    printf("F_GETFL accmode=%d append=%d nonblock=%d\n", fl & O_ACCMODE, !!(fl & O_APPEND),
           !!(fl & O_NONBLOCK));
    show("F_SETFL 0", fcntl(fd, F_SETFL, 0));
    fl = fcntl(fd, F_GETFL);
    printf("F_GETFL accmode=%d append=%d nonblock=%d\n", fl & O_ACCMODE, !!(fl & O_APPEND),
           !!(fl & O_NONBLOCK));
    show("fcntl bad cmd", fcntl(fd, 9999));
    show("fcntl bad fd", fcntl(999, F_GETFD));

    section("ioctl");
    int n = -1;
    lseek(fd, 1, SEEK_SET);
    show("FIONREAD on file", ioctl(fd, FIONREAD, &n));
    printf("FIONREAD value: %d\n", n);
    struct termios t;
    show("TCGETS on file", ioctl(fd, TCGETS, &t));
    struct winsize ws;
    show("TIOCGWINSZ on file", ioctl(fd, TIOCGWINSZ, &ws));
    show("FIONCLEX", ioctl(fd, FIONCLEX));
    show("F_GETFD", fcntl(fd, F_GETFD));
    show("FIOCLEX", ioctl(fd, FIOCLEX));
    show("F_GETFD", fcntl(fd, F_GETFD));
    show("ioctl bad fd", ioctl(999, FIONREAD, &n));
    show("TCGETS on stdout", ioctl(1, TCGETS, &t));
    close(fd);
}

static void dup_family(void)
{
    char buf[8];
    section("dup");
    put_file("du", "0123456789");
    int fd = open("du", O_RDONLY);
    int d = show("dup", dup(fd));
    read(fd, buf, 3);
    show("dup shares offset", lseek(d, 0, SEEK_CUR));
    show("dup cloexec cleared", fcntl(d, F_GETFD));
    show("dup2", dup2(fd, 10));
    show("dup2 same fd", dup2(fd, fd));
    show("dup2 bad oldfd", dup2(999, 11));
    show("dup2 same bad fd", dup2(999, 999));
    show("dup2 newfd negative", dup2(fd, -1));
    show("dup3", dup3(fd, 12, O_CLOEXEC));
    show("dup3 cloexec", fcntl(12, F_GETFD));
    show("dup3 same fd", dup3(fd, fd, 0));
    show("dup3 bad flags", dup3(fd, 13, O_APPEND));
    show("F_DUPFD 20", fcntl(fd, F_DUPFD, 20));
    show("F_DUPFD 20 again", fcntl(fd, F_DUPFD, 20));
    show("F_DUPFD_CLOEXEC 30", fcntl(fd, F_DUPFD_CLOEXEC, 30));
    show("F_DUPFD_CLOEXEC flag", fcntl(30, F_GETFD));
    show("F_DUPFD negative", fcntl(fd, F_DUPFD, -1));
    show("F_DUPFD huge", fcntl(fd, F_DUPFD, 1 << 30));
    show("dup2 huge", dup2(fd, 1 << 30));
    show("dup lowest", dup(fd));
    show("close 10", close(10));
    show("dup reuses 10?", dup(fd));
    show("dup bad", dup(999));
    show("dup negative", dup(-1));
    for (int i = 4; i < 40; i++)
        close(i);
    close(fd);
}

static void big(void)
{
    section("large transfer");
    static unsigned char out[1 << 20], in[1 << 20];
    for (unsigned i = 0; i < sizeof out; i++)
        out[i] = (unsigned char)(i * 2654435761u >> 13);
    int fd = open("big", O_CREAT | O_RDWR | O_TRUNC, 0644);
    show("write 1 MiB", write(fd, out, sizeof out));
    show("pread 1 MiB", pread(fd, in, sizeof in, 0));
    CHECK("1 MiB round trip", memcmp(in, out, sizeof in) == 0);
    show("pread 1 MiB at 4095", pread(fd, in, sizeof in, 4095));
    CHECK("unaligned round trip", memcmp(in, out + 4095, sizeof in - 4095) == 0);
    close(fd);
}

/* fallocate: only what every file system answers alike (ZERO_RANGE, COLLAPSE... depend on it) */
static void allocation(void)
{
    section("fallocate");
    int fd = open("fa", O_CREAT | O_RDWR | O_TRUNC, 0644);
    show("allocate", fallocate(fd, 0, 0, 8192));
    show("size", fsize(fd));
    show("keep size", fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 8192));
    show("size kept", fsize(fd));
    write(fd, "abcdefgh", 8);
    show("punch hole", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4));
    char buf[8];
    long n = show("pread", pread(fd, buf, sizeof buf, 0));
    show_bytes("data", buf, n);
    show("punch without keep", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 4096));
    show("zero length", fallocate(fd, 0, 0, 0));
    show("negative offset", fallocate(fd, 0, -1, 10));
    show("unknown mode", fallocate(fd, 0x100, 0, 10));
    show("two operations", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE |
                                        FALLOC_FL_KEEP_SIZE, 0, 10));
    show("collapse with keep", fallocate(fd, FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_KEEP_SIZE, 0, 4096));
    show("too big", fallocate(fd, 0, 0x7fffffffffffffffLL, 10));
    close(fd);
    int ro = open("fa", O_RDONLY);
    show("read-only fd", fallocate(ro, 0, 0, 10));
    close(ro);
    int p[2];
    pipe(p);
    show("pipe", fallocate(p[1], 0, 0, 10));
    close(p[0]);
    close(p[1]);
    int d = open(".", O_RDONLY | O_DIRECTORY);
    show("directory", fallocate(d, 0, 0, 10));
    close(d);
    int null = open("/dev/null", O_WRONLY);
    show("device", fallocate(null, 0, 0, 10));
    close(null);
    show("bad fd", fallocate(999, 0, 0, 10));
}

int main(void)
{
    test_init();
    basics();
    vectors();
    truncation();
    allocation();
    open_flags();
    fd_flags();
    dup_family();
    big();
    return 0;
}
