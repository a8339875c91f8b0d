/* Directories: mkdir/rmdir, getdents64 listings, rename(at2), unlink, links, symlinks. */
#include "common.h"
#include <dirent.h>
#include <limits.h>
#include <linux/fs.h>

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char type_letter(unsigned char t)
{
    switch (t) {
    case DT_REG: return 'f';
    case DT_DIR: return 'd';
    case DT_LNK: return 'l';
    case DT_FIFO: return 'p';
    case DT_CHR: return 'c';
    case DT_BLK: return 'b';
    case DT_SOCK: return 's';
    default: return '?';
    }
}

/* getdents64 with a small buffer (several calls), sorted "name:type" list. */
static void list(const char *label, const char *path, int bufsize)
{
    char *names[256];
    int count = 0, calls = 0;
    char buf[4096];
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buf, bufsize);
        if (n < 0) {
            printf("%s: getdents64 errno=%s\n", label, ename(errno));
            break;
        }
        if (n == 0)
            break;
        calls++;
        for (long off = 0; off < n;) {
            struct linux_dirent64 *d = (void *)(buf + off);
            if (count < 256 && asprintf(&names[count], "%s:%c", d->d_name, type_letter(d->d_type)) > 0)
                count++;
            off += d->d_reclen;
        }
    }
    close(fd);
    qsort(names, count, sizeof names[0], cmp);
    printf("%s:", label);
    for (int i = 0; i < count; i++) {
        printf(" %s", names[i]);
        free(names[i]);
    }
    printf("\n");
    if (bufsize < 200)
        CHECK("small buffer needed several calls", calls > 1);
}

static void show_link(const char *label, const char *path)
{
    char buf[PATH_MAX];
    long n = readlink(path, buf, sizeof buf);
    if (n < 0)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        show_bytes(label, buf, n);
}

static void make_dirs(void)
{
    section("mkdir");
    show("mkdir", mkdir("d", 0755));
    show("mkdir existing", mkdir("d", 0755));
    show("mkdir missing parent", mkdir("nope/x", 0755));
    put_file("file", "data");
    show("mkdir under file", mkdir("file/x", 0755));
    show("mkdir over file", mkdir("file", 0755));
    show("mkdir trailing slash", mkdir("d2/", 0755));
    show("mkdir dot", mkdir(".", 0755));
    show("mkdir empty", mkdir("", 0755));
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    show("mkdirat", mkdirat(dfd, "sub", 0700));
    show("mkdirat bad dirfd", mkdirat(999, "x", 0700));
    int ffd = open("file", O_RDONLY);
    show("mkdirat file dirfd", mkdirat(ffd, "x", 0700));
    close(ffd);
    show("openat relative", close(openat(dfd, "a", O_CREAT | O_WRONLY, 0644)));
    show("openat absolute ignores bad dirfd", close(openat(999, "/", O_RDONLY)));
    close(dfd);
    put_file("d/b", "bee");
    put_file("d/c", "sea");
    show("symlink", symlink("a", "d/l"));
    show("stat through dotdot", access("d/sub/../a", F_OK));
    show("stat dot components", access("./d/./sub/.", F_OK));
}

static void listings(void)
{
    section("getdents64");
    list("list d", "d", 4096);
    list("list d small buffer", "d", 64);
    list("list sub", "d/sub", 4096);
    list("list file", "file", 4096);
    char buf[8];
    int fd = open("d", O_RDONLY);
    show("getdents64 tiny buffer", syscall(SYS_getdents64, fd, buf, sizeof buf));
    char big[4096];
    long first = syscall(SYS_getdents64, fd, big, sizeof big);
    show("getdents64 at end", syscall(SYS_getdents64, fd, big, sizeof big));
    show("rewind", lseek(fd, 0, SEEK_SET));
    CHECK("same size after rewind", syscall(SYS_getdents64, fd, big, sizeof big) == first);
    close(fd);
    show("getdents64 bad fd", syscall(SYS_getdents64, 999, big, sizeof big));

    DIR *dir = opendir("d");
    int n = 0;
    while (readdir(dir))
        n++;
    closedir(dir);
    show("readdir count", n);
}

static void renames(void)
{
    section("rename");
    show("rename file", rename("d/a", "d/a2"));
    show("old name gone", access("d/a", F_OK));
    show("rename over file", rename("d/b", "d/c"));
    show_bytes("replaced content", get_file("d/c"), 3);
    show("rename missing", rename("d/zzz", "d/y"));
    show("rename to itself", rename("d/c", "d/c"));
    show("rename file over dir", rename("d/c", "d/sub"));
    show("rename dir over file", rename("d/sub", "d/c"));
    mkdir("d/full", 0755);
    put_file("d/full/x", "x");
    mkdir("d/empty", 0755);
    show("rename dir over nonempty dir", rename("d/sub", "d/full"));
    show("rename dir over empty dir", rename("d/sub", "d/empty"));
    show("rename dir into itself", rename("d", "d/empty/inside"));
    show("rename to missing dir", rename("d/c", "nope/c"));
    show("rename file with trailing slash target", rename("d/c", "d/c9/"));
    show("rename dot", rename(".", "d/dot"));
    list("after renames", "d", 4096);

    section("renameat2");
    put_file("r1", "one");
    put_file("r2", "two");
    show("RENAME_NOREPLACE existing", renameat2(AT_FDCWD, "r1", AT_FDCWD, "r2", RENAME_NOREPLACE));
    show("RENAME_NOREPLACE new", renameat2(AT_FDCWD, "r1", AT_FDCWD, "r3", RENAME_NOREPLACE));
    show("RENAME_EXCHANGE", renameat2(AT_FDCWD, "r3", AT_FDCWD, "r2", RENAME_EXCHANGE));
    show_bytes("r2 after exchange", get_file("r2"), 3);
    show_bytes("r3 after exchange", get_file("r3"), 3);
    show("RENAME_EXCHANGE missing", renameat2(AT_FDCWD, "r3", AT_FDCWD, "r9", RENAME_EXCHANGE));
    show("EXCHANGE|NOREPLACE", renameat2(AT_FDCWD, "r3", AT_FDCWD, "r2", RENAME_EXCHANGE | RENAME_NOREPLACE));
    show("renameat2 bad flags", renameat2(AT_FDCWD, "r3", AT_FDCWD, "r2", 1 << 10));
    int dfd = open("d", O_RDONLY | O_DIRECTORY);
    show("renameat dirfd", renameat(AT_FDCWD, "r3", dfd, "r3moved"));
    show("renameat bad dirfd", renameat(999, "r2", AT_FDCWD, "r4"));
    close(dfd);
    show("moved", access("d/r3moved", F_OK));
}

static void removals(void)
{
    section("unlink/rmdir");
    show("unlink dir", unlink("d/empty"));
    show("unlink missing", unlink("d/none"));
    show("unlink through file", unlink("file/x"));
    show("rmdir nonempty", rmdir("d/full"));
    show("rmdir file", rmdir("d/c"));
    show("rmdir dot", rmdir("d/empty/."));
    show("rmdir dotdot", rmdir("d/empty/.."));
    show("rmdir missing", rmdir("d/none"));
    show("unlinkat AT_REMOVEDIR on file", unlinkat(AT_FDCWD, "d/c", AT_REMOVEDIR));
    show("unlinkat bad flags", unlinkat(AT_FDCWD, "d/c", 0x1000));
    show("unlink file", unlink("d/c"));
    show("unlink file trailing slash", unlink("d/a2/"));
    show("rmdir trailing slash", rmdir("d/empty/"));
    show("unlinkat AT_REMOVEDIR", unlinkat(AT_FDCWD, "d/full/x", 0) | unlinkat(AT_FDCWD, "d/full", AT_REMOVEDIR));
    list("after removals", "d", 4096);

    int fd = open("doomed", O_CREAT | O_RDWR, 0644);
    write(fd, "still here", 10);
    show("unlink open file", unlink("doomed"));
    char buf[16];
    long n = show("read unlinked file", pread(fd, buf, sizeof buf, 0));
    show_bytes("data", buf, n);
    struct stat st;
    fstat(fd, &st);
    show("nlink of unlinked", st.st_nlink);
    close(fd);
}

static void links(void)
{
    struct stat st;
    section("link");
    put_file("orig", "hard");
    show("link", link("orig", "hl"));
    stat("orig", &st);
    show("nlink after link", st.st_nlink);
    struct stat st2;
    stat("hl", &st2);
    CHECK("same inode", st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
    show("link existing", link("orig", "hl"));
    show("link missing", link("nosuch", "hl2"));
    show("link dir", link("d", "dlink"));
    show("linkat", linkat(AT_FDCWD, "orig", AT_FDCWD, "hl3", 0));
    show("linkat bad flags", linkat(AT_FDCWD, "orig", AT_FDCWD, "hl4", 0x2));
    unlink("hl");
    stat("orig", &st);
    show("nlink after unlink", st.st_nlink);

    section("symlink");
    show("symlink", symlink("orig", "sl"));
    show_link("readlink", "sl");
    char small[3];
    long n = show("readlink truncated", readlink("sl", small, sizeof small));
    show_bytes("truncated", small, n > 0 ? n : 0);
    show("readlink size 0", readlink("sl", small, 0));
    show("readlink not a link", readlink("orig", small, sizeof small));
    show("readlink missing", readlink("nosuch", small, sizeof small));
    show("readlinkat", readlinkat(AT_FDCWD, "sl", small, sizeof small));
    show("symlink existing", symlink("x", "sl"));
    show("symlink empty target", symlink("", "sl_empty"));
    show("symlink long target", symlink("a/b/c/../../d/e/f/g", "sl_long"));
    show_link("readlink long", "sl_long");
    lstat("sl", &st);
    printf("lstat symlink: link=%d size=%ld\n", S_ISLNK(st.st_mode), (long)st.st_size);
    stat("sl", &st);
    printf("stat through symlink: reg=%d size=%ld\n", S_ISREG(st.st_mode), (long)st.st_size);
    show("dangling", symlink("target_missing", "dang"));
    show("open dangling", open("dang", O_RDONLY));
    show("stat dangling", access("dang", F_OK));
    show("O_CREAT|O_EXCL through dangling", open("dang", O_CREAT | O_EXCL | O_WRONLY, 0644));
    show("O_CREAT through dangling", close(open("dang", O_CREAT | O_WRONLY, 0644)));
    show("target created", access("target_missing", F_OK));
    show("O_NOFOLLOW on symlink", open("sl", O_RDONLY | O_NOFOLLOW));
    show("O_NOFOLLOW|O_PATH on symlink", close(open("sl", O_PATH | O_NOFOLLOW)));
    show("symlink to dir", symlink("d", "sd"));
    show("open through dir link", close(open("sd/r3moved", O_RDONLY)));
    show("symlink dir trailing slash", access("sd/", F_OK));
    show("rmdir symlink to dir", rmdir("sd"));
    show("unlink symlink to dir", unlink("sd"));
    show("symlinkat", symlinkat("orig", AT_FDCWD, "sl2"));
    show("symlinkat bad dirfd", symlinkat("orig", 999, "sl3"));
    show("readlink dir", readlink("d", small, sizeof small));

    section("loops");
    symlink("loop_b", "loop_a");
    symlink("loop_a", "loop_b");
    symlink("self", "self");
    show("open loop", open("loop_a", O_RDONLY));
    show("stat loop", access("loop_a", F_OK));
    show("lstat loop", lstat("loop_a", &st));
    show("open self loop", open("self", O_RDONLY));
    show("loop as dir", open("self/x", O_RDONLY));
    /* A chain of links: Linux follows at most 40. */
    char name[32], target[32];
    for (int i = 0; i < 41; i++) {
        snprintf(name, sizeof name, "ch%d", i);
        if (i == 40)
            snprintf(target, sizeof target, "orig");
        else
            snprintf(target, sizeof target, "ch%d", i + 1);
        symlink(target, name);
    }
    show("chain of 40 links", close(open("ch1", O_RDONLY)));
    show("chain of 41 links", open("ch0", O_RDONLY));
}

static void cwd_relative(void)
{
    section("cwd");
    char base[PATH_MAX], cur[PATH_MAX];
    if (!getcwd(base, sizeof base)) {
        printf("getcwd: errno=%s\n", ename(errno));
        return;
    }
    size_t bl = strlen(base);
    show("chdir d", chdir("d"));
    getcwd(cur, sizeof cur);
    printf("cwd relative: %s\n", strncmp(cur, base, bl) == 0 ? cur + bl : cur);
    show("open relative to new cwd", close(open("r3moved", O_RDONLY)));
    show("chdir ..", chdir(".."));
    getcwd(cur, sizeof cur);
    CHECK("back at base", strcmp(cur, base) == 0);
    show("chdir file", chdir("orig"));
    show("chdir missing", chdir("nosuch"));
    show("chdir through symlink", symlink("d", "sd2") | chdir("sd2"));
    getcwd(cur, sizeof cur);
    printf("cwd after symlink chdir: %s\n", strncmp(cur, base, bl) == 0 ? cur + bl : cur);
    int dfd = open("..", O_RDONLY | O_DIRECTORY);
    show("fchdir", fchdir(dfd));
    getcwd(cur, sizeof cur);
    CHECK("fchdir back at base", strcmp(cur, base) == 0);
    close(dfd);
    int ffd = open("orig", O_RDONLY);
    show("fchdir file", fchdir(ffd));
    close(ffd);
    show("fchdir bad fd", fchdir(999));
    show("getcwd too small", getcwd(cur, 2) ? 0 : -1);
    show("getcwd size 0", syscall(SYS_getcwd, cur, 0));
    long n = syscall(SYS_getcwd, cur, sizeof cur);
    CHECK("raw getcwd length includes NUL", n == (long)strlen(base) + 1);
    /* rmdir'd cwd: getcwd says "(unreachable)" style ENOENT */
    mkdir("gone", 0755);
    chdir("gone");
    rmdir("../gone");
    show("getcwd of removed dir", getcwd(cur, sizeof cur) ? 0 : -1);
    show("create in removed cwd", open("x", O_CREAT | O_WRONLY, 0644));
    chdir(base);
}

int main(void)
{
    test_init();
    make_dirs();
    listings();
    renames();
    removals();
    links();
    cwd_relative();
    return 0;
}
