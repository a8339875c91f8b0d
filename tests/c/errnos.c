/* errno of failure cases, grouped by errno.  Raw syscalls where glibc would interfere. */
#include "common.h"
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/sysinfo.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>

/* Pointers the compiler cannot reason about. */
static void *volatile bad = (void *)1;
static void *volatile kernel_addr = (void *)0xffff800000000000ul;
static void *volatile noncanonical = (void *)0x0000800000000000ul;

static void enoent(void)
{
    struct stat st;
    char buf[16];
    section("ENOENT");
    show("open", open("nope", O_RDONLY));
    show("stat", stat("nope", &st));
    show("lstat", lstat("nope", &st));
    show("unlink", unlink("nope"));
    show("rmdir", rmdir("nope"));
    show("chdir", chdir("nope"));
    show("readlink", readlink("nope", buf, sizeof buf));
    show("mkdir missing parent", mkdir("nope/x", 0755));
    show("rename", rename("nope", "x"));
    show("link", link("nope", "x"));
    show("access", access("nope", F_OK));
    show("empty path open", open("", O_RDONLY));
    show("empty path stat", stat("", &st));
    show("dir/.. of missing", open("nope/..", O_RDONLY));
}

static void enotdir(void)
{
    struct stat st;
    section("ENOTDIR");
    put_file("file", "content");
    show("open through file", open("file/x", O_RDONLY));
    show("stat through file", stat("file/x", &st));
    show("stat trailing slash", stat("file/", &st));
    show("open trailing slash", open("file/", O_RDONLY));
    show("chdir file", chdir("file"));
    show("O_DIRECTORY", open("file", O_RDONLY | O_DIRECTORY));
    show("rmdir file", rmdir("file"));
    int fd = open("file", O_RDONLY);
    show("openat file dirfd", openat(fd, "x", O_RDONLY));
    show("fstatat file dirfd", fstatat(fd, "x", &st, 0));
    show("getdents64 file", syscall(SYS_getdents64, fd, (char[64]){0}, 64));
    close(fd);
}

static void eisdir_eexist(void)
{
    section("EISDIR");
    mkdir("dir", 0755);
    put_file("dir/inner", "x");
    show("open dir O_WRONLY", open("dir", O_WRONLY));
    show("open dir O_RDWR|O_CREAT", open("dir", O_RDWR | O_CREAT, 0644));
    show("unlink dir", unlink("dir"));
    int fd = open("dir", O_RDONLY);
    char c;
    show("read dir", read(fd, &c, 1));
    show("pread dir", pread(fd, &c, 1, 0));
    close(fd);
    show("rename file over dir", rename("file", "dir"));

    section("EEXIST");
    show("mkdir existing dir", mkdir("dir", 0755));
    show("mkdir existing file", mkdir("file", 0755));
    show("O_CREAT|O_EXCL", open("file", O_CREAT | O_EXCL | O_WRONLY, 0644));
    show("O_CREAT|O_EXCL dir", open("dir", O_CREAT | O_EXCL | O_WRONLY, 0644));
    show("symlink existing", symlink("x", "file"));
    show("link existing", link("file", "dir"));
    symlink("file", "sym");
    show("O_CREAT|O_EXCL symlink", open("sym", O_CREAT | O_EXCL | O_WRONLY, 0644));

    section("ENOTEMPTY");
    show("rmdir nonempty", rmdir("dir"));
    mkdir("other", 0755);
    show("rename over nonempty", rename("other", "dir"));
}

static void ebadf(void)
{
    char buf[8];
    struct stat st;
    section("EBADF");
    show("read -1", read(-1, buf, 1));
    show("read 99", read(99, buf, 1));
    show("write 99", write(99, "x", 1));
    show("close 99", close(99));
    show("close -1", close(-1));
    show("fstat 99", fstat(99, &st));
    show("lseek 99", lseek(99, 0, SEEK_SET));
    show("dup 99", dup(99));
    show("fcntl 99", fcntl(99, F_GETFD));
    show("openat 99 relative", openat(99, "x", O_RDONLY));
    show("fsync 99", fsync(99));
    show("ftruncate 99", ftruncate(99, 0));
    show("getdents64 99", syscall(SYS_getdents64, 99, buf, sizeof buf));
    show("pread 99", pread(99, buf, 1, 0));
    show("fchdir 99", fchdir(99));
    show("read huge fd", read(1 << 30, buf, 1));
    int fd = open(".", O_PATH);
    show("read O_PATH fd", read(fd, buf, 1));
    show("fstat O_PATH fd", fstat(fd, &st));
    close(fd);
}

static void efault(void)
{
    struct stat st;
    section("EFAULT");
    int fd = open("file", O_RDONLY);
    show("read into bad pointer", read(fd, bad, 10));
    show("read into kernel address", read(fd, kernel_addr, 10));
    show("read into noncanonical", read(fd, noncanonical, 10));
    show("pread into bad pointer", pread(fd, bad, 10, 0));
    show("write from bad pointer", write(1, bad, 10));
    show("open bad path", syscall(SYS_open, bad, O_RDONLY));
    show("openat bad path", syscall(SYS_openat, AT_FDCWD, bad, O_RDONLY));
    show("stat bad buffer", syscall(SYS_stat, "file", bad));
    show("stat bad path", syscall(SYS_stat, bad, &st));
    show("fstat bad buffer", syscall(SYS_fstat, fd, bad));
    show("uname bad buffer", syscall(SYS_uname, bad));
    show("clock_gettime bad buffer", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, bad));
    show("gettimeofday bad buffer", syscall(SYS_gettimeofday, bad, NULL));
    show("getcwd bad buffer", syscall(SYS_getcwd, bad, 100));
    show("readv bad iov", syscall(SYS_readv, fd, bad, 1));
    struct iovec iov = {bad, 4};
    show("readv iov with bad base", readv(fd, &iov, 1));
    show("getrandom bad buffer", syscall(SYS_getrandom, bad, 8, 0));
    show("sysinfo bad buffer", syscall(SYS_sysinfo, bad));
    show("getrlimit bad buffer", syscall(SYS_getrlimit, RLIMIT_NOFILE, bad));
    show("nanosleep bad request", syscall(SYS_nanosleep, bad, NULL));
    show("readlink bad buffer", symlink("file", "lnk") | syscall(SYS_readlink, "lnk", bad, 10));
    show("mkdir bad path", syscall(SYS_mkdir, bad, 0755));
    show("unlink bad path", syscall(SYS_unlink, bad));
    show("statx bad buffer", syscall(SYS_statx, AT_FDCWD, "file", 0, 0x7ff, bad));
    show("getdents64 bad buffer", syscall(SYS_getdents64, open(".", O_RDONLY), bad, 4096));
    show("time bad pointer", syscall(SYS_time, bad));
    close(fd);
}

static void einval(void)
{
    char buf[8];
    section("EINVAL");
    int fd = open("file", O_RDONLY);
    show("lseek whence 99", lseek(fd, 0, 99));
    show("fcntl cmd 9999", fcntl(fd, 9999));
    show("mmap len 0", (long)mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == -1 ? -1 : 0);
    show("mmap no type", (long)mmap(NULL, 4096, PROT_READ, MAP_ANONYMOUS, -1, 0) == -1 ? -1 : 0);
    show("dup3 same fd", dup3(fd, fd, 0));
    show("dup3 bad flags", dup3(fd, 20, 0x1));
    show("getrandom bad flags", syscall(SYS_getrandom, buf, 8, 0xff));
    show("clock_gettime bad clock", syscall(SYS_clock_gettime, 999, buf));
    struct timespec ts = {0, 2000000000};
    show("nanosleep bad nsec", syscall(SYS_nanosleep, &ts, NULL));
    struct timespec neg = {-1, 0};
    show("nanosleep negative", syscall(SYS_nanosleep, &neg, NULL));
    symlink("file", "l");
    show("readlink size 0", readlink("l", buf, 0));
    show("readlink not a link", readlink("file", buf, sizeof buf));
    show("madvise bad advice", madvise((void *)((long)buf & ~4095l), 4096, 12345));
    show("mprotect unaligned", mprotect((void *)((long)buf | 1), 1, PROT_READ));
    show("munmap unaligned", munmap((void *)((long)buf | 1), 1));
    show("getdents64 tiny buffer", syscall(SYS_getdents64, open(".", O_RDONLY), buf, 1));
    struct rlimit rl = {10, 5};
    show("setrlimit soft > hard", setrlimit(RLIMIT_NOFILE, &rl));
    show("getrlimit bad resource", syscall(SYS_getrlimit, 999, &rl));
    show("prlimit bad resource", syscall(SYS_prlimit64, 0, 999, NULL, &rl));
    show("O_TMPFILE with O_RDONLY", open("file", O_RDONLY | O_TMPFILE));
    show("rmdir dot", rmdir("."));
    show("readv negative count", readv(fd, NULL, -1));
    show("write negative fd is EBADF", write(-5, buf, 1));
    close(fd);
}

static void names_and_loops(void)
{
    char name[300], path[5000];
    struct stat st;
    section("ENAMETOOLONG");
    memset(name, 'n', 256);
    name[256] = 0;
    show("component of 256", open(name, O_RDONLY));
    show("create component of 256", open(name, O_CREAT | O_WRONLY, 0644));
    show("mkdir component of 256", mkdir(name, 0755));
    name[255] = 0;
    show("component of 255 (missing)", open(name, O_RDONLY));
    show("create component of 255", close(open(name, O_CREAT | O_WRONLY, 0644)));
    show("unlink component of 255", unlink(name));
    int i;
    for (i = 0; i + 2 < 4200; i += 2)
        path[i] = 'a', path[i + 1] = '/';
    path[i] = 0;
    show("path of 4200", stat(path, &st));
    memset(path, '/', 4095);
    path[4095] = 0;
    show("path of 4095 slashes", stat(path, &st));
    memset(path, '/', 4096);
    path[4096] = 0;
    show("path of 4096 slashes", stat(path, &st));
    show("symlink target too long", symlink(path, "longlink"));

    section("ELOOP");
    symlink("self", "self");
    symlink("a2", "a1");
    symlink("a1", "a2");
    show("open self loop", open("self", O_RDONLY));
    show("stat loop", stat("a1", &st));
    show("lstat loop", lstat("a1", &st));
    show("chdir loop", chdir("a1"));
    show("mkdir under loop", mkdir("a1/x", 0755));
    show("O_NOFOLLOW on link", open("l", O_RDONLY | O_NOFOLLOW));
    show("O_CREAT|O_NOFOLLOW on loop", open("self", O_CREAT | O_WRONLY | O_NOFOLLOW, 0644));
}

static void misc(void)
{
    char buf[8];
    section("other");
    show("ENOSYS syscall 1000", syscall(1000));
    show("ENOSYS syscall 400", syscall(400));
    show("ENOSYS syscall -1", syscall(-1));
    show("ESPIPE lseek stdout pipe", lseek(1, 0, SEEK_CUR));
    show("ESPIPE pread stdout pipe", pread(1, buf, 1, 0));
    struct termios t;
    int fd = open("file", O_RDONLY);
    show("ENOTTY TCGETS file", ioctl(fd, TCGETS, &t));
    show("ioctl unknown request", ioctl(fd, 0x12345678, buf));
    close(fd);
    show("ERANGE getcwd small", getcwd(buf, 1) ? 0 : -1);
    show("EACCES exec non-executable", access("file", X_OK));
    show("EPERM link dir", link("dir", "dirlink"));
    show("EXDEV-free rename same dir", rename("file", "file_renamed"));
}

int main(void)
{
    test_init();
    enoent();
    enotdir();
    eisdir_eexist();
    ebadf();
    efault();
    einval();
    names_and_loops();
    misc();
    return 0;
}
