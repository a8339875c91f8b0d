/* stat family: fields, consistency between stat/fstat/lstat/fstatat/statx, access. */
#include "common.h"
#include <linux/stat.h>
#include <sys/sysmacros.h>
#include <time.h>

static const char *kind(mode_t m)
{
    if (S_ISREG(m)) return "reg";
    if (S_ISDIR(m)) return "dir";
    if (S_ISLNK(m)) return "lnk";
    if (S_ISCHR(m)) return "chr";
    if (S_ISBLK(m)) return "blk";
    if (S_ISFIFO(m)) return "fifo";
    if (S_ISSOCK(m)) return "sock";
    return "?";
}

/* A directory's size and blocks are its file system's choice (ext4: 4096 and 8, tmpfs: 20
 * per name and 0), so they are not printed for directories. */
static void fields(const char *label, const struct stat *st)
{
    if (S_ISDIR(st->st_mode))
        printf("%s: type=%s mode=%o nlink=%ld blksize>0=%d own=%d\n", label,
               kind(st->st_mode), st->st_mode & 07777, (long)st->st_nlink, st->st_blksize > 0,
               st->st_uid == getuid() && st->st_gid == getgid());
    else
        printf("%s: type=%s mode=%o nlink=%ld size=%ld blocks>0=%d blksize>0=%d own=%d\n",
               label, kind(st->st_mode), st->st_mode & 07777, (long)st->st_nlink,
               (long)st->st_size, st->st_blocks > 0, st->st_blksize > 0,
               st->st_uid == getuid() && st->st_gid == getgid());
}

static int same(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_mode == b->st_mode &&
           a->st_nlink == b->st_nlink && a->st_size == b->st_size && a->st_uid == b->st_uid &&
           a->st_gid == b->st_gid && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_blocks == b->st_blocks;
}

/* Fields the kernel did not put in stx_mask may be zero (a filesystem choice): skip them. */
static int same_statx(const struct stat *a, const struct statx *x)
{
    unsigned m = x->stx_mask;
    return x->stx_ino == a->st_ino && makedev(x->stx_dev_major, x->stx_dev_minor) == a->st_dev &&
           x->stx_mode == a->st_mode && x->stx_nlink == a->st_nlink &&
           (long)x->stx_size == (long)a->st_size && x->stx_uid == a->st_uid &&
           x->stx_gid == a->st_gid && x->stx_blksize == (unsigned)a->st_blksize &&
           (!(m & STATX_MTIME) || (x->stx_mtime.tv_sec == a->st_mtim.tv_sec &&
                                   x->stx_mtime.tv_nsec == (unsigned)a->st_mtim.tv_nsec)) &&
           (!(m & STATX_BLOCKS) || x->stx_blocks == (uint64_t)a->st_blocks);
}

static void files(void)
{
    struct stat st, st2;
    section("regular file");
    umask(0);
    struct timespec before;
    clock_gettime(CLOCK_REALTIME, &before);
    int fd = open("f", O_CREAT | O_RDWR, 0640);
    static char data[12345];
    memset(data, 'x', sizeof data);
    write(fd, data, sizeof data);
    show("stat", stat("f", &st));
    fields("fields", &st);
    show("fstat", fstat(fd, &st2));
    CHECK("fstat == stat", same(&st, &st2));
    show("lstat", lstat("f", &st2));
    CHECK("lstat == stat", same(&st, &st2));
    show("fstatat", fstatat(AT_FDCWD, "f", &st2, 0));
    CHECK("fstatat == stat", same(&st, &st2));
    show("fstatat AT_EMPTY_PATH", fstatat(fd, "", &st2, AT_EMPTY_PATH));
    CHECK("fstatat empty == stat", same(&st, &st2));
    show("fstatat empty without flag", fstatat(fd, "", &st2, 0));
    show("fstatat bad flags", fstatat(AT_FDCWD, "f", &st2, 0x4));
    CHECK("mtime not before creation", st.st_mtim.tv_sec >= before.tv_sec - 1);
    CHECK("mtime not in the future", st.st_mtim.tv_sec <= time(NULL) + 1);
    CHECK("ctime >= mtime", st.st_ctim.tv_sec >= st.st_mtim.tv_sec);

    section("statx");
    struct statx x;
    show("statx", statx(AT_FDCWD, "f", 0, STATX_BASIC_STATS, &x));
    CHECK("basic stats in mask", (x.stx_mask & STATX_BASIC_STATS) == STATX_BASIC_STATS);
    CHECK("statx == stat", same_statx(&st, &x));
    printf("statx: size=%llu mode=%o nlink=%u\n", (unsigned long long)x.stx_size, x.stx_mode, x.stx_nlink);
    show("statx AT_EMPTY_PATH", statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &x));
    CHECK("statx size mask", (x.stx_mask & STATX_SIZE) != 0);
    CHECK("statx fd == stat", same_statx(&st, &x));
    show("statx reserved mask", statx(AT_FDCWD, "f", 0, 0x80000000u, &x));
    show("statx bad flags", statx(AT_FDCWD, "f", 0x80000000, STATX_BASIC_STATS, &x));
    show("statx sync flags both", statx(AT_FDCWD, "f", AT_STATX_FORCE_SYNC | AT_STATX_DONT_SYNC, STATX_BASIC_STATS, &x));
    show("statx missing", statx(AT_FDCWD, "missing", 0, STATX_BASIC_STATS, &x));
    show("statx bad fd", statx(999, "f", 0, STATX_BASIC_STATS, &x));
    show("statx bad fd absolute", statx(999, "/", 0, STATX_BASIC_STATS, &x));

    section("size changes");
    ftruncate(fd, 100);
    fstat(fd, &st2);
    show("size after ftruncate", st2.st_size);
    pwrite(fd, "y", 1, 99999);
    fstat(fd, &st2);
    show("size after sparse write", st2.st_size);
    close(fd);

    section("links and modes");
    link("f", "f2");
    stat("f", &st);
    show("nlink after link", st.st_nlink);
    fd = open("mode0", O_CREAT | O_WRONLY, 0);
    fstat(fd, &st);
    fields("mode 0 file", &st);
    close(fd);
    fd = open("exec", O_CREAT | O_WRONLY, 0755);
    fstat(fd, &st);
    fields("mode 755 file", &st);
    close(fd);
    umask(027);
    fd = open("masked", O_CREAT | O_WRONLY, 0777);
    fstat(fd, &st);
    fields("umask 027 file", &st);
    close(fd);
    mkdir("masked_dir", 0777);
    stat("masked_dir", &st);
    fields("umask 027 dir", &st);
    umask(022);
}

static void dirs_and_links(void)
{
    struct stat st, st2;
    section("directory");
    mkdir("dir", 0755);
    show("stat dir", stat("dir", &st));
    fields("dir fields", &st);
    mkdir("dir/a", 0755);
    mkdir("dir/b", 0755);
    stat("dir", &st);
    show("dir nlink with 2 subdirs", st.st_nlink);
    int dfd = open("dir", O_RDONLY | O_DIRECTORY);
    fstat(dfd, &st2);
    CHECK("fstat dir == stat dir", same(&st, &st2));
    struct stat dot;
    fstatat(dfd, ".", &dot, 0);
    CHECK("dir/. is dir", dot.st_ino == st.st_ino);
    fstatat(dfd, "a/..", &dot, 0);
    CHECK("dir/a/.. is dir", dot.st_ino == st.st_ino);
    close(dfd);

    section("symlink");
    symlink("f", "lnk");
    show("lstat link", lstat("lnk", &st));
    printf("link: type=%s size=%ld\n", kind(st.st_mode), (long)st.st_size);
    stat("lnk", &st);
    stat("f", &st2);
    CHECK("stat follows link", same(&st, &st2));
    fstatat(AT_FDCWD, "lnk", &st, AT_SYMLINK_NOFOLLOW);
    printf("fstatat nofollow: type=%s\n", kind(st.st_mode));
    struct statx x;
    statx(AT_FDCWD, "lnk", AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &x);
    printf("statx nofollow: type=%s size=%llu\n", kind(x.stx_mode), (unsigned long long)x.stx_size);
    statx(AT_FDCWD, "lnk", 0, STATX_BASIC_STATS, &x);
    printf("statx follow: type=%s size=%llu\n", kind(x.stx_mode), (unsigned long long)x.stx_size);

    section("stdio");
    fstat(0, &st);
    printf("stdin: type=%s\n", kind(st.st_mode));
    fstat(1, &st);
    printf("stdout: type=%s\n", kind(st.st_mode));
}

static void access_checks(void)
{
    section("access");
    show("F_OK existing", access("f", F_OK));
    show("F_OK missing", access("missing", F_OK));
    show("R_OK|W_OK", access("f", R_OK | W_OK));
    show("X_OK non-executable", access("f", X_OK));
    show("X_OK executable", access("exec", X_OK));
    show("X_OK dir", access("dir", X_OK));
    show("R_OK mode 0 file (root)", access("mode0", R_OK));
    show("access bad mode", access("f", 8));
    show("access through file", access("f/x", F_OK));
    show("access dangling link", symlink("nothing", "dangle") | access("dangle", F_OK));
    show("faccessat", faccessat(AT_FDCWD, "f", R_OK, 0));
    show("raw faccessat", syscall(SYS_faccessat, AT_FDCWD, "exec", X_OK));
    show("faccessat2 nofollow on dangling", syscall(SYS_faccessat2, AT_FDCWD, "dangle", F_OK, AT_SYMLINK_NOFOLLOW));
    show("faccessat2 AT_EACCESS", syscall(SYS_faccessat2, AT_FDCWD, "f", R_OK, AT_EACCESS));
    show("faccessat2 bad flags", syscall(SYS_faccessat2, AT_FDCWD, "f", R_OK, 0x4));
    show("faccessat2 AT_EMPTY_PATH", syscall(SYS_faccessat2, open("f", O_RDONLY), "", R_OK, AT_EMPTY_PATH));
    show("faccessat bad dirfd", faccessat(999, "f", F_OK, 0));
}

int main(void)
{
    test_init();
    files();
    dirs_and_links();
    access_checks();
    return 0;
}
