/* inotify: inotify_init/init1, inotify_add_watch and inotify_rm_watch with their flags and
 * errors, the events file operations produce (names, IN_ISDIR, cookies, self events, the
 * deferred IN_DELETE_SELF of an open file), read's record format (padding, EINVAL for a
 * short buffer, merging, IN_Q_OVERFLOW), FIONREAD, poll/epoll and blocking reads.
 *
 * Events print as "LABEL MASK name": labels stand for watch descriptors, and a move's
 * cookie prints as a letter (the same letter for the same cookie within one read). */
#include "common.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#ifndef IN_MASK_CREATE
#define IN_MASK_CREATE 0x10000000
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE 2
#endif

#define MAX_LABELS 64
static struct { int fd, wd; const char *label; } labels[MAX_LABELS];
static int nlabels;

static int watch(int fd, const char *path, uint32_t mask, const char *label)
{
    int wd = inotify_add_watch(fd, path, mask);
    if (wd < 0) {
        printf("watch %s (%s): errno=%s\n", label, path, ename(errno));
        return wd;
    }
    for (int i = 0; i < nlabels; i++)
        if (labels[i].fd == fd && labels[i].wd == wd) {
            labels[i].label = label;
            return wd;
        }
    if (nlabels < MAX_LABELS)
        labels[nlabels++] = (typeof(labels[0])){fd, wd, label};
    return wd;
}

static const char *label_of(int fd, int wd)
{
    static char buf[32];
    if (wd == -1)
        return "-1";
    for (int i = 0; i < nlabels; i++)
        if (labels[i].fd == fd && labels[i].wd == wd)
            return labels[i].label;
    snprintf(buf, sizeof buf, "wd?");
    return buf;
}

static const char *mask_names(uint32_t m)
{
    static char buf[256];
    static const struct { uint32_t bit; const char *name; } names[] = {
        {IN_ACCESS, "ACCESS"}, {IN_MODIFY, "MODIFY"}, {IN_ATTRIB, "ATTRIB"},
        {IN_CLOSE_WRITE, "CLOSE_WRITE"}, {IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"}, {IN_OPEN, "OPEN"},
        {IN_MOVED_FROM, "MOVED_FROM"}, {IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"},
        {IN_DELETE, "DELETE"}, {IN_DELETE_SELF, "DELETE_SELF"}, {IN_MOVE_SELF, "MOVE_SELF"},
        {IN_UNMOUNT, "UNMOUNT"}, {IN_Q_OVERFLOW, "Q_OVERFLOW"}, {IN_IGNORED, "IGNORED"},
        {IN_ISDIR, "ISDIR"},
    };
    buf[0] = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (m & names[i].bit) {
            if (buf[0])
                strcat(buf, "|");
            strcat(buf, names[i].name);
            m &= ~names[i].bit;
        }
    if (m)
        sprintf(buf + strlen(buf), "|%#x", m);
    return buf;
}

static char evbuf[1 << 20] __attribute__((aligned(8)));

/* Print the events of one buffer; returns how many there were. */
static int print_events(int fd, const char *what, const char *buf, ssize_t n)
{
    uint32_t cookies[16];
    int ncookies = 0, count = 0;
    for (const char *p = buf; p < buf + n;) {
        const struct inotify_event *e = (const void *)p;
        char cookie[16] = "";
        if (e->cookie) {
            int k = 0;
            while (k < ncookies && cookies[k] != e->cookie)
                k++;
            if (k == ncookies && ncookies < 16)
                cookies[ncookies++] = e->cookie;
            snprintf(cookie, sizeof cookie, " cookie=%c", 'A' + k);
        }
        printf("%s: %s %s%s%s%s\n", what, label_of(fd, e->wd), mask_names(e->mask),
               e->len ? " " : "", e->len ? e->name : "", cookie);
        if (e->len % 16 || (e->len && strlen(e->name) >= e->len))
            printf("%s: FAILED name length %u\n", what, e->len);
        p += sizeof *e + e->len;
        count++;
    }
    return count;
}

/* Read and print everything queued on a non-blocking instance. */
static int drain(int fd, const char *what)
{
    int total = 0;
    for (;;) {
        ssize_t n = read(fd, evbuf, sizeof evbuf);
        if (n < 0) {
            if (errno != EAGAIN)
                printf("%s: read errno=%s\n", what, ename(errno));
            break;
        }
        total += print_events(fd, what, evbuf, n);
    }
    if (!total)
        printf("%s: (none)\n", what);
    return total;
}

static int queued_bytes(int fd)
{
    int n = -1;
    if (ioctl(fd, FIONREAD, &n) < 0)
        return -errno;
    return n;
}

static void touch(const char *path)
{
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0)
        close(fd);
}

static void on_alarm(int sig) { (void)sig; }

/* -- the calls themselves ---------------------------------------------------------------- */
static void init_calls(void)
{
    section("init");
    show("inotify_init1 unknown flag", inotify_init1(1));
    show("inotify_init1 O_RDWR", inotify_init1(O_RDWR));
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    CHECK("inotify_init1 NONBLOCK|CLOEXEC", fd >= 0);
    printf("F_GETFD: %d\n", fcntl(fd, F_GETFD));
    printf("F_GETFL: %#o\n", fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK | O_APPEND));
    struct stat st;
    show("fstat", fstat(fd, &st));
    printf("st_mode: %#o\n", st.st_mode);
    char link[64] = "";
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(proc, link, sizeof link - 1);
    if (n >= 0)
        link[n] = 0;
    printf("fd link: %s\n", link);
    show("read empty, non-blocking", read(fd, evbuf, sizeof evbuf));
    show("read 0 bytes, empty", read(fd, evbuf, 0));
    show("write", write(fd, "x", 1));
    show("lseek", lseek(fd, 0, SEEK_CUR));
    printf("FIONREAD empty: %d\n", queued_bytes(fd));
    show("ioctl unknown", ioctl(fd, 0x5401 /* TCGETS */, evbuf));
    close(fd);
    fd = inotify_init();
    CHECK("inotify_init", fd >= 0);
    printf("inotify_init F_GETFD %d F_GETFL %#o\n", fcntl(fd, F_GETFD),
           fcntl(fd, F_GETFL) & (O_ACCMODE | O_NONBLOCK));
    close(fd);
}

static void add_watch_errors(void)
{
    section("inotify_add_watch and inotify_rm_watch errors");
    int fd = inotify_init1(IN_NONBLOCK);
    int plain = open("file", O_RDONLY);
    int opath = open(".", O_PATH);
    show("mask 0", inotify_add_watch(fd, ".", 0));
    show("mask with an unknown bit", inotify_add_watch(fd, ".", IN_CREATE | 0x1000));
    show("mask 0, bad fd", inotify_add_watch(999, ".", 0));
    show("bad fd", inotify_add_watch(999, ".", IN_CREATE));
    show("bad fd, MASK_ADD|MASK_CREATE", inotify_add_watch(999, ".", IN_CREATE | IN_MASK_ADD | IN_MASK_CREATE));
    show("O_PATH fd", inotify_add_watch(opath, ".", IN_CREATE));
    show("not an inotify fd", inotify_add_watch(plain, ".", IN_CREATE));
    show("MASK_ADD|MASK_CREATE", inotify_add_watch(fd, ".", IN_CREATE | IN_MASK_ADD | IN_MASK_CREATE));
    show("missing path", inotify_add_watch(fd, "nope", IN_CREATE));
    show("empty path", inotify_add_watch(fd, "", IN_CREATE));
    show("NULL path", inotify_add_watch(fd, NULL, IN_CREATE));
    show("through a file", inotify_add_watch(fd, "file/x", IN_CREATE));
    show("ONLYDIR on a file", inotify_add_watch(fd, "file", IN_ONLYDIR | IN_ATTRIB));
    show("ONLYDIR on a symlink to a dir, DONT_FOLLOW",
         inotify_add_watch(fd, "dirlink", IN_ONLYDIR | IN_DONT_FOLLOW | IN_ATTRIB));
    show("dangling symlink", inotify_add_watch(fd, "dangling", IN_ATTRIB));
    int w1 = show("first watch", inotify_add_watch(fd, ".", IN_CREATE));
    int w2 = show("same directory, another path", inotify_add_watch(fd, "./", IN_DELETE));
    printf("same wd: %d\n", w1 == w2);
    show("MASK_CREATE on a watched inode", inotify_add_watch(fd, ".", IN_CREATE | IN_MASK_CREATE));
    show("only flags (IN_ONESHOT)", inotify_add_watch(fd, ".", IN_ONESHOT));
    show("IN_IGNORED as the mask", inotify_add_watch(fd, ".", IN_IGNORED));
    show("ONLYDIR on a directory", inotify_add_watch(fd, ".", IN_ONLYDIR | IN_CREATE));
    int wf = show("a file", inotify_add_watch(fd, "file", IN_ATTRIB));
    show("symlink, followed", inotify_add_watch(fd, "link", IN_ATTRIB));
    int wl = show("symlink, DONT_FOLLOW", inotify_add_watch(fd, "link", IN_ATTRIB | IN_DONT_FOLLOW));
    printf("followed == file: %d, DONT_FOLLOW differs: %d\n",
           inotify_add_watch(fd, "link", IN_ATTRIB) == wf, wl != wf);
    show("a hard link of the file", inotify_add_watch(fd, "hard", IN_ATTRIB));
    show("rm_watch", inotify_rm_watch(fd, wl));
    show("rm_watch again", inotify_rm_watch(fd, wl));
    show("rm_watch 0", inotify_rm_watch(fd, 0));
    show("rm_watch -1", inotify_rm_watch(fd, -1));
    show("rm_watch bad fd", inotify_rm_watch(999, w1));
    show("rm_watch not inotify", inotify_rm_watch(plain, w1));
    show("rm_watch O_PATH fd", inotify_rm_watch(opath, w1));
    show("next wd (not reused)", inotify_add_watch(fd, "sub", IN_CREATE));
    watch(fd, ".", IN_CREATE, "W");
    drain(fd, "after rm_watch");
    close(fd);
    close(plain);
    close(opath);
}

static void mask_flags(void)
{
    section("IN_MASK_ADD, replace, IN_ONESHOT");
    int fd = inotify_init1(IN_NONBLOCK);
    watch(fd, "sub", IN_CREATE, "S");
    touch("sub/a");
    unlink("sub/a");
    drain(fd, "CREATE only");
    watch(fd, "sub", IN_DELETE | IN_MASK_ADD, "S");
    touch("sub/b");
    unlink("sub/b");
    drain(fd, "MASK_ADD DELETE");
    watch(fd, "sub", IN_DELETE, "S");
    touch("sub/c");
    unlink("sub/c");
    drain(fd, "replaced by DELETE");
    int wd = watch(fd, "sub", IN_CREATE | IN_ONESHOT, "S");
    touch("sub/d");
    touch("sub/e");
    drain(fd, "ONESHOT");
    show("rm_watch after the shot", inotify_rm_watch(fd, wd));
    unlink("sub/d");
    unlink("sub/e");
    close(fd);
}

static void name_events(void)
{
    section("events on names");
    int fd = inotify_init1(IN_NONBLOCK);
    mkdir("d", 0755);
    watch(fd, "d", IN_ALL_EVENTS, "D");
    drain(fd, "watch");
    int f = open("d/f", O_CREAT | O_WRONLY, 0644);
    write(f, "hello", 5);
    close(f);
    drain(fd, "create, write, close");
    watch(fd, "d/f", IN_ALL_EVENTS, "F");
    char buf[16];
    f = open("d/f", O_RDONLY);
    read(f, buf, sizeof buf);
    read(f, buf, sizeof buf); /* at EOF: no event */
    close(f);
    drain(fd, "open, read, read at EOF, close");
    f = open("d/f", O_WRONLY);
    write(f, "", 0); /* nothing written: no event */
    pwrite(f, "a", 1, 0);
    drain(fd, "open, empty write, pwrite");
    ftruncate(f, 2);
    fchmod(f, 0640);
    drain(fd, "ftruncate, fchmod");
    int f2 = dup(f);
    close(f);
    drain(fd, "close of a dup");
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        close(f2); /* the parent still holds the description */
        _exit(0);
    }
    waitpid(child, NULL, 0);
    drain(fd, "close in a child");
    close(f2);
    drain(fd, "last close");
    chmod("d/f", 0644);
    drain(fd, "chmod");
    show("chown -1 -1", chown("d/f", -1, -1));
    drain(fd, "chown -1 -1");
    chown("d/f", getuid(), -1);
    drain(fd, "chown uid");
    struct timespec both[2] = {{1, 0}, {2, 0}};
    struct timespec atime_only[2] = {{3, 0}, {0, UTIME_OMIT}};
    struct timespec mtime_only[2] = {{0, UTIME_OMIT}, {4, 0}};
    struct timespec neither[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    utimensat(AT_FDCWD, "d/f", both, 0);
    drain(fd, "utimensat both");
    utimensat(AT_FDCWD, "d/f", atime_only, 0);
    drain(fd, "utimensat atime only");
    utimensat(AT_FDCWD, "d/f", mtime_only, 0);
    drain(fd, "utimensat mtime only");
    utimensat(AT_FDCWD, "d/f", neither, 0);
    drain(fd, "utimensat neither");
    utimensat(AT_FDCWD, "d/f", NULL, 0);
    drain(fd, "utimensat now");
    truncate("d/f", 1);
    drain(fd, "truncate");
    f = open("d/f", O_WRONLY | O_TRUNC);
    close(f);
    drain(fd, "open O_TRUNC");
    f = open("d/f", O_WRONLY | O_CREAT, 0644);
    close(f);
    drain(fd, "open O_CREAT of an existing file");
    f = open("d/f", O_PATH);
    close(f);
    drain(fd, "O_PATH open and close");
    symlink("f", "d/ln");
    drain(fd, "symlink");
    chmod("d/ln", 0600);
    drain(fd, "chmod through the symlink");
    unlink("d/ln");
    drain(fd, "unlink symlink");
    link("d/f", "d/hard");
    drain(fd, "link");
    unlink("d/hard");
    drain(fd, "unlink one of two links");
    mkfifo("d/fifo", 0644);
    unlink("d/fifo");
    drain(fd, "mkfifo, unlink");
    mkdir("d/sub", 0755);
    watch(fd, "d/sub", IN_ALL_EVENTS, "S");
    DIR *dir = opendir("d/sub");
    while (readdir(dir))
        ;
    closedir(dir);
    drain(fd, "mkdir, list it");
    rename("d/f", "d/g");
    drain(fd, "rename");
    rename("d/g", "d/sub/g");
    drain(fd, "rename to another watched directory");
    rename("d/sub/g", "d/f");
    drain(fd, "and back");
    rename("d/f", "d/f");
    drain(fd, "rename onto itself");
    rename("d/sub", "d/sub2");
    drain(fd, "rename a directory");
    rename("d/sub2", "d/sub");
    drain(fd, "and back");
    touch("d/t");
    watch(fd, "d/t", IN_ALL_EVENTS, "T");
    drain(fd, "a target");
    rename("d/f", "d/t");
    drain(fd, "rename over the watched target");
    watch(fd, "d/t", IN_ALL_EVENTS, "F");
    touch("d/u");
    watch(fd, "d/u", IN_ALL_EVENTS, "U");
    drain(fd, "another file");
    show("renameat2 RENAME_EXCHANGE", syscall(SYS_renameat2, AT_FDCWD, "d/t", AT_FDCWD, "d/u", RENAME_EXCHANGE));
    drain(fd, "exchange");
    mkdir("d/e", 0755);
    watch(fd, "d/e", IN_ALL_EVENTS, "E");
    rename("d/sub", "d/e");
    drain(fd, "rename a directory over an empty one");
    f = open("d/u", O_RDONLY);
    unlink("d/u");
    drain(fd, "unlink while open");
    read(f, buf, sizeof buf);
    drain(fd, "read after the unlink");
    close(f);
    drain(fd, "close: now it is deleted");
    unlink("d/t");
    drain(fd, "unlink");
    rmdir("d/e");
    drain(fd, "rmdir a watched directory");
    close(fd);
}

static void dir_self_events(void)
{
    section("the watched directory itself");
    int fd = inotify_init1(IN_NONBLOCK);
    mkdir("p", 0755);
    mkdir("p/c", 0755);
    watch(fd, "p", IN_ALL_EVENTS, "P");
    watch(fd, "p/c", IN_ALL_EVENTS | IN_ONLYDIR, "C");
    int c = open("p/c", O_RDONLY | O_DIRECTORY);
    drain(fd, "open a watched dir in a watched dir");
    rmdir("p/c");
    drain(fd, "rmdir while open");
    close(c);
    drain(fd, "close");
    chmod("p", 0700);
    drain(fd, "chmod the dir");
    rmdir("p");
    drain(fd, "rmdir it");
    close(fd);
}

static void excl_unlink(void)
{
    section("IN_EXCL_UNLINK");
    int a = inotify_init1(IN_NONBLOCK), b = inotify_init1(IN_NONBLOCK);
    mkdir("x", 0755);
    touch("x/f");
    watch(a, "x", IN_ACCESS | IN_MODIFY | IN_CLOSE | IN_ATTRIB | IN_EXCL_UNLINK, "XA");
    watch(b, "x", IN_ACCESS | IN_MODIFY | IN_CLOSE | IN_ATTRIB, "XB");
    int f = open("x/f", O_RDWR);
    unlink("x/f");
    write(f, "z", 1);
    pread(f, evbuf, 1, 0);
    fchmod(f, 0600);
    close(f);
    drain(a, "EXCL_UNLINK");
    drain(b, "without it");
    rmdir("x");
    close(a);
    close(b);
}

static void record_format(void)
{
    section("records");
    int fd = inotify_init1(IN_NONBLOCK);
    mkdir("r", 0755);
    watch(fd, "r", IN_CREATE | IN_MODIFY, "R");
    touch("r/123456789012345");  /* 15 bytes + NUL: 16 */
    touch("r/1234567890123456"); /* 16 bytes + NUL: 32 */
    printf("FIONREAD: %d\n", queued_bytes(fd));
    show("read 0 bytes", read(fd, evbuf, 0));
    show("read 16 bytes (too small)", read(fd, evbuf, 16));
    show("read 31 bytes (too small)", read(fd, evbuf, 31));
    ssize_t n = show("read 40 bytes (one fits)", read(fd, evbuf, 40));
    struct inotify_event *e = (void *)evbuf;
    printf("len %u name %s, NUL at its end %d\n", e->len, e->name, n == 32 && !evbuf[16 + 15]);
    n = show("read 48 bytes (exactly)", read(fd, evbuf, 48));
    printf("len %u name %s\n", e->len, e->name);
    int zero = 1;
    for (int i = 16 + 16; i < 48; i++)
        zero &= !evbuf[i];
    printf("name NUL-padded: %d\n", zero);
    show("read NULL buffer with nothing queued", syscall(SYS_read, fd, NULL, 64));
    touch("r/q");
    show("read into NULL", syscall(SYS_read, fd, NULL, 64));
    show("read after the fault (event consumed)", read(fd, evbuf, sizeof evbuf));

    section("merging");
    int f = open("r/m", O_CREAT | O_WRONLY, 0644);
    drain(fd, "create");
    write(f, "a", 1);
    write(f, "b", 1);
    write(f, "c", 1);
    drain(fd, "three writes");
    write(f, "a", 1);
    touch("r/other");
    write(f, "b", 1);
    drain(fd, "write, create, write");
    close(f);
    unlink("r/other");
    unlink("r/m");
    close(fd);
}

static void overflow(void)
{
    section("overflow");
    int fd = inotify_init1(IN_NONBLOCK);
    mkdir("o", 0755);
    int f = open("o/f", O_CREAT | O_RDWR, 0644);
    watch(fd, "o", IN_MODIFY, "O");
    watch(fd, "o/f", IN_MODIFY, "F");
    for (int i = 0; i < 8192; i++) /* two events each, alternating: nothing merges */
        pwrite(f, "x", 1, 0);
    printf("FIONREAD at 16384 events: %d\n", queued_bytes(fd));
    pwrite(f, "x", 1, 0);
    pwrite(f, "x", 1, 0);
    printf("FIONREAD after more: %d\n", queued_bytes(fd));
    ssize_t n = read(fd, evbuf, sizeof evbuf);
    int count = 0, overflows = 0, last_overflow = 0;
    for (char *p = evbuf; p < evbuf + n;) {
        struct inotify_event *e = (void *)p;
        count++;
        last_overflow = e->mask == IN_Q_OVERFLOW && e->wd == -1 && !e->len;
        overflows += !!(e->mask & IN_Q_OVERFLOW);
        p += sizeof *e + e->len;
    }
    printf("events %d, overflow events %d, last is the overflow %d\n", count, overflows, last_overflow);
    pwrite(f, "x", 1, 0);
    drain(fd, "after draining");
    close(f);
    unlink("o/f");
    rmdir("o");
    close(fd);
}

static void waiting(void)
{
    section("poll, epoll, blocking read");
    int fd = inotify_init1(IN_NONBLOCK);
    mkdir("b", 0755);
    watch(fd, "b", IN_CREATE, "B");
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
    int r = poll(&p, 1, 0);
    printf("poll empty: %d revents %#x\n", r, p.revents);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7}, out;
    show("epoll_ctl ADD", epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
    printf("epoll_wait empty: %d\n", epoll_wait(ep, &out, 1, 0));
    touch("b/x");
    r = poll(&p, 1, 0);
    printf("poll: %d revents %#x\n", r, p.revents);
    r = epoll_wait(ep, &out, 1, 1000);
    printf("epoll_wait: %d events %#x data %u\n", r, out.events, out.data.u32);
    drain(fd, "queued");
    printf("epoll_wait after draining: %d\n", epoll_wait(ep, &out, 1, 0));
    close(ep);
    close(fd);

    fd = inotify_init();
    watch(fd, "b", IN_CREATE, "B");
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        struct timespec t = {0, 100 * 1000 * 1000};
        nanosleep(&t, NULL);
        mkdir("b/late", 0755);
        _exit(0);
    }
    ssize_t n = read(fd, evbuf, sizeof evbuf);
    printf("blocking read: %d\n", n > 0);
    print_events(fd, "woken by a child", evbuf, n);
    waitpid(child, NULL, 0);

    struct sigaction sa = {.sa_handler = on_alarm};
    sigaction(SIGALRM, &sa, NULL);
    /* periodic: a tick that lands before read blocks is followed by one that does not */
    struct itimerval it = {{0, 50 * 1000}, {0, 50 * 1000}}, off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &it, NULL);
    show("blocking read interrupted", read(fd, evbuf, sizeof evbuf));
    setitimer(ITIMER_REAL, &off, NULL);
    close(fd);
    rmdir("b/late");
    unlink("b/x");
    rmdir("b");
}

static void permissions(void)
{
    section("permissions");
    mkdir("perm", 0755);
    touch("perm/secret");
    chmod("perm/secret", 0);
    mkdir("perm/closed", 0700);
    touch("perm/closed/f");
    chmod("perm/closed/f", 0644);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        if (setgid(65534) || setuid(65534)) {
            printf("setuid: errno=%s\n", ename(errno));
            _exit(1);
        }
        int fd = inotify_init1(0);
        show("unreadable file", inotify_add_watch(fd, "perm/secret", IN_ATTRIB));
        show("unreadable dir (not searchable)", inotify_add_watch(fd, "perm/closed", IN_ATTRIB));
        show("readable dir", inotify_add_watch(fd, "perm", IN_ATTRIB) > 0);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    printf("child exit %d\n", WEXITSTATUS(status));
    int fd = inotify_init1(0);
    show("as root: unreadable file", inotify_add_watch(fd, "perm/secret", IN_ATTRIB) > 0);
    close(fd);
    unlink("perm/closed/f");
    rmdir("perm/closed");
    unlink("perm/secret");
    rmdir("perm");
}

static void shm(void)
{
    section("tmpfs (/dev/shm)");
    char dir[64], path[96];
    snprintf(dir, sizeof dir, "/dev/shm/sv-inotify-%d", (int)getpid());
    mkdir(dir, 0755);
    int fd = inotify_init1(IN_NONBLOCK);
    watch(fd, dir, IN_ALL_EVENTS, "M");
    snprintf(path, sizeof path, "%s/file", dir);
    int f = open(path, O_CREAT | O_RDWR, 0600);
    write(f, "x", 1);
    close(f);
    unlink(path);
    rmdir(dir);
    drain(fd, "create, write, unlink, rmdir");
    close(fd);
}

static void closing(void)
{
    section("closing the instance");
    int fd = inotify_init1(IN_NONBLOCK);
    int wd = watch(fd, ".", IN_CREATE, "W");
    touch("z");
    printf("FIONREAD: %d\n", queued_bytes(fd));
    int other = inotify_init1(IN_NONBLOCK);
    show("new instance starts at wd 1", watch(other, ".", IN_CREATE, "OTHER") == 1);
    close(fd);
    show("rm_watch of a wd the other instance lacks", inotify_rm_watch(other, wd + 1));
    touch("z2");
    drain(other, "the other instance");
    close(other);
    unlink("z");
    unlink("z2");
}

int main(void)
{
    test_init();
    init_calls();
    put_file("file", "data");
    link("file", "hard");
    symlink("file", "link");
    symlink("sub", "dirlink");
    symlink("nowhere", "dangling");
    mkdir("sub", 0755);
    add_watch_errors();
    mask_flags();
    name_events();
    dir_self_events();
    excl_unlink();
    record_format();
    overflow();
    waiting();
    permissions();
    shm();
    closing();
    return 0;
}
