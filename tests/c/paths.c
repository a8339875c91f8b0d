/* Path resolution and name-changing calls at their edges: symlink limits, name lengths,
 * trailing slashes, `..` across mount points, O_PATH/O_NOFOLLOW/O_DIRECTORY/O_EXCL/O_TMPFILE,
 * AT_EMPTY_PATH and AT_SYMLINK_NOFOLLOW, permissions as an unprivileged user, sticky
 * directories, umask, EXDEV, rename flags, directory offsets while names go away, and
 * extended attributes (user.*) in the work directory.
 *
 * Everything happens relative to the (empty) work directory, so nothing depends on where it
 * is; what Linux answers differently per file system (directory sizes, listing order,
 * trusted.* and security.* attributes) is not printed. */
#include "common.h"
#include <dirent.h>
#include <grp.h>
#include <linux/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE 1
#define RENAME_EXCHANGE 2
#endif

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) || stat(b, &sb))
        return -1;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void yesno(const char *label, int cond)
{
    printf("%s: %s\n", label, cond ? "yes" : "no");
}

static const char *type_of(const char *path, int follow)
{
    struct stat st;
    if ((follow ? stat : lstat)(path, &st))
        return ename(errno);
    return S_ISREG(st.st_mode) ? "reg" : S_ISDIR(st.st_mode) ? "dir" : S_ISLNK(st.st_mode) ? "lnk"
           : S_ISFIFO(st.st_mode) ? "fifo" : "other";
}

static void chain(const char *prefix, int n, const char *last_target)
{
    char name[64], target[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s%d", prefix, i);
        if (i == n - 1)
            snprintf(target, sizeof target, "%s", last_target);
        else
            snprintf(target, sizeof target, "%s%d", prefix, i + 1);
        symlink(target, name);
    }
}

static void links(void)
{
    section("symlink limits");
    put_file("file", "data");
    chain("c", 40, "file");
    show("open through 40 links", open("c0", O_RDONLY) >= 0 ? 0 : -1);
    chain("d", 41, "file");
    show("open through 41 links", open("d0", O_RDONLY) >= 0 ? 0 : -1);
    show("lstat of the 41st-chain head", lstat("d0", &(struct stat){0}));
    symlink("loopB", "loopA");
    symlink("loopA", "loopB");
    show("stat of a loop", stat("loopA", &(struct stat){0}));
    show("lstat of a loop", lstat("loopA", &(struct stat){0}));
    show("mkdir under a loop", mkdir("loopA/x", 0755));
    show("O_CREAT through a loop", open("loopA", O_CREAT | O_WRONLY, 0644));
    chain("e", 40, "made-by-chain");
    int fd = open("e0", O_CREAT | O_WRONLY, 0644);
    show("O_CREAT through 40 links", fd >= 0 ? 0 : -1);
    close(fd);
    printf("target of the chain: %s\n", type_of("made-by-chain", 0));
    chain("f", 41, "not-made");
    show("O_CREAT through 41 links", open("f0", O_CREAT | O_WRONLY, 0644));
    printf("target of the long chain: %s\n", type_of("not-made", 0));
    symlink("dangling-target", "dangling");
    show("O_CREAT|O_EXCL on a dangling link", open("dangling", O_CREAT | O_EXCL | O_WRONLY, 0644));
    printf("dangling target after O_EXCL: %s\n", type_of("dangling-target", 0));
    show("O_CREAT|O_NOFOLLOW on a dangling link",
         open("dangling", O_CREAT | O_NOFOLLOW | O_WRONLY, 0644));
    fd = open("dangling", O_CREAT | O_WRONLY, 0600);
    show("O_CREAT on a dangling link", fd >= 0 ? 0 : -1);
    close(fd);
    printf("dangling target after O_CREAT: %s\n", type_of("dangling-target", 0));
    show("O_CREAT|O_EXCL on an existing file", open("file", O_CREAT | O_EXCL | O_WRONLY, 0644));
    mkdir("ldir", 0755);
    symlink("ldir/sub/leaf", "deep-dangling");
    show("O_CREAT through a link into a missing dir",
         open("deep-dangling", O_CREAT | O_WRONLY, 0644));
    symlink("", "empty-link");
    show("stat of an empty link", stat("empty-link", &(struct stat){0}));
    symlink(".", "dotlink");
    show("O_CREAT through a link to .", open("dotlink", O_CREAT | O_WRONLY, 0644));
}

static void lengths(void)
{
    section("name lengths");
    char name[300], path[5000];
    memset(name, 'n', 256);
    name[256] = 0;
    show("open, component of 256", open(name, O_RDONLY));
    show("mkdir, component of 256", mkdir(name, 0755));
    show("stat, dir/component of 256", stat(strcat(strcpy(path, "ldir/"), name), &(struct stat){0}));
    name[255] = 0;
    show("open, component of 255", open(name, O_RDONLY));
    int fd = open(name, O_CREAT | O_WRONLY, 0644);
    show("create, component of 255", fd >= 0 ? 0 : -1);
    close(fd);
    show("unlink, component of 255", unlink(name));
    /* "./" repeated, then a missing name: a path of 4095 bytes is looked up; 4096 is not */
    path[0] = 0;
    for (int i = 0; i < 2047; i++)
        strcat(path, "./");
    strcat(path, "z");
    printf("length %d: ", (int)strlen(path));
    show("stat", stat(path, &(struct stat){0}));
    strcat(path, "z");
    printf("length %d: ", (int)strlen(path));
    show("stat", stat(path, &(struct stat){0}));
    show("symlink with a target of 4096", symlink(path, "longlink"));
}

static void slashes_and_dots(void)
{
    section("trailing slashes");
    show("stat dir/", stat("ldir/", &(struct stat){0}));
    show("stat file/", stat("file/", &(struct stat){0}));
    show("open file/", open("file/", O_RDONLY));
    show("open file/x", open("file/x", O_RDONLY));
    show("mkdir file/x", mkdir("file/x", 0755));
    show("O_CREAT new/", open("newfile/", O_CREAT | O_WRONLY, 0644));
    show("O_CREAT dir/", open("ldir/", O_CREAT | O_RDONLY, 0644));
    show("mkdir new/", mkdir("slashdir/", 0755));
    show("rmdir dir/", rmdir("slashdir/"));
    show("unlink file/", unlink("file/"));
    show("unlink dir/", unlink("ldir/"));
    show("symlink to new/", symlink("x", "newlink/"));
    show("link to new/", link("file", "newhard/"));
    show("mknod new/", mknod("newnode/", S_IFIFO | 0644, 0));
    show("rename file to x/", rename("file", "x/"));
    mkdir("mvdir", 0755);
    show("rename dir/ to dir2/", rename("mvdir/", "mvdir2/"));
    symlink("ldir", "dirlink");
    printf("lstat dirlink/: %s\n", type_of("dirlink/", 0));
    printf("lstat dirlink: %s\n", type_of("dirlink", 0));
    show("O_NOFOLLOW dirlink/", open("dirlink/", O_RDONLY | O_NOFOLLOW | O_DIRECTORY) >= 0 ? 0 : -1);
    show("rmdir dirlink/", rmdir("dirlink/"));
    show("unlink dirlink/", unlink("dirlink/"));

    section("dots");
    show("open missing/..", open("missing/..", O_RDONLY));
    show("stat file/..", stat("file/..", &(struct stat){0}));
    show("stat file/.", stat("file/.", &(struct stat){0}));
    yesno("ldir/.. is .", same_file("ldir/..", ".") == 1);
    yesno("dirlink/.. is . (the link's target's parent)", same_file("dirlink/..", ".") == 1);
    show("mkdir .", mkdir(".", 0755));
    show("mkdir ..", mkdir("..", 0755));
    show("mkdir ldir/.", mkdir("ldir/.", 0755));
    show("rmdir .", rmdir("."));
    show("rmdir ..", rmdir(".."));
    show("rmdir ldir/.", rmdir("ldir/."));
    show("rmdir missing/.", rmdir("missing/."));
    show("unlink .", unlink("."));
    show("rename . to x", rename(".", "renamed"));
    show("rename file to .", rename("file", "."));
    show("link file to .", link("file", "."));
    show("symlink at ..", symlink("x", ".."));
    show("O_CREAT .", open(".", O_CREAT | O_RDONLY, 0644));
    show("O_CREAT|O_EXCL .", open(".", O_CREAT | O_EXCL | O_RDONLY, 0644));
    show("mkdir missing/..", mkdir("missing/..", 0755));
    show("rmdir /", rmdir("/"));
    show("unlink /", unlink("/"));
    show("mkdir /", mkdir("/", 0755));
    show("rename / to x", rename("/", "x"));
}

static void mounts(void)
{
    section("mount points");
    yesno("/.. is /", same_file("/..", "/") == 1);
    yesno("/proc/.. is /", same_file("/proc/..", "/") == 1);
    yesno("/dev/.. is /", same_file("/dev/..", "/") == 1);
    yesno("/dev/shm/.. is /dev", same_file("/dev/shm/..", "/dev") == 1);
    yesno("/proc/self/.. is /proc", same_file("/proc/self/..", "/proc") == 1);
    yesno("/proc/../proc is /proc", same_file("/proc/../proc", "/proc") == 1);
    yesno("/proc/1/../.. is /", same_file("/proc/1/../..", "/") == 1);
    show("stat /proc/missing/..", stat("/proc/missing/..", &(struct stat){0}));
    int cwd = open(".", O_RDONLY | O_DIRECTORY);
    char buf[256];
    chdir("/proc");
    chdir("..");
    printf("getcwd after /proc then ..: %s\n", getcwd(buf, sizeof buf) ? buf : ename(errno));
    chdir("/dev/shm");
    chdir("..");
    printf("getcwd after /dev/shm then ..: %s\n", getcwd(buf, sizeof buf) ? buf : ename(errno));
    int pfd = open("/proc", O_RDONLY | O_DIRECTORY);
    struct stat a, b;
    fstatat(pfd, "..", &a, 0);
    stat("/", &b);
    yesno("openat(/proc fd, ..) is /", a.st_dev == b.st_dev && a.st_ino == b.st_ino);
    close(pfd);
    fchdir(cwd);
    close(cwd);

    /* proc's lookups fail for absent names (ENOENT before any other check); sysfs and
     * devpts have no create (EACCES) and no mkdir/symlink (EPERM) */
    section("creating names in proc, sys and devpts");
    static const char *const made[] = {"/proc/sv-new", "/proc/sys/sv-new", "/proc/self/sv-new",
                                       "/proc/sys/kernel/sv-new", "/sys/sv-new",
                                       "/sys/kernel/sv-new", "/dev/pts/sv-new"};
    for (unsigned i = 0; i < sizeof made / sizeof *made; i++) {
        printf("%s:", made[i]);
        printf(" mkdir %s", mkdir(made[i], 0755) ? ename(errno) : "ok");
        int fd = open(made[i], O_WRONLY | O_CREAT, 0644);
        printf(", creat %s", fd < 0 ? ename(errno) : "ok");
        printf(", symlink %s", symlink("x", made[i]) ? ename(errno) : "ok");
        printf(", mknod %s\n", mknod(made[i], S_IFIFO | 0644, 0) ? ename(errno) : "ok");
        if (fd >= 0)
            close(fd);
    }

    section("EXDEV");
    char shm[64];
    snprintf(shm, sizeof shm, "/dev/shm/sv-paths-%d", getpid());
    put_file(shm, "in shm");
    show("rename /dev/shm file to the work dir", rename(shm, "from-shm"));
    show("link /dev/shm file into the work dir", link(shm, "from-shm"));
    show("rename a work file to /dev/shm", rename("file", "/dev/shm/sv-paths-moved"));
    show("renameat2 NOREPLACE across mounts", syscall(SYS_renameat2, AT_FDCWD, shm, AT_FDCWD,
                                                      "file", RENAME_NOREPLACE));
    unlink(shm);
}

static void open_flags(void)
{
    section("open flags");
    show("O_NOFOLLOW on a symlink", open("c39", O_RDONLY | O_NOFOLLOW));
    int fd = open("c39", O_PATH | O_NOFOLLOW);
    show("O_PATH|O_NOFOLLOW on a symlink", fd >= 0 ? 0 : -1);
    struct stat st;
    show("fstat it", fstat(fd, &st));
    printf("it is a link: %d\n", S_ISLNK(st.st_mode));
    char buf[64];
    long n = readlinkat(fd, "", buf, sizeof buf);
    printf("readlinkat(fd, \"\"): %.*s\n", n > 0 ? (int)n : 0, buf);
    close(fd);
    show("O_DIRECTORY on a file", open("file", O_RDONLY | O_DIRECTORY));
    show("O_DIRECTORY|O_CREAT", open("nd", O_RDONLY | O_DIRECTORY | O_CREAT, 0644));
    show("O_DIRECTORY|O_NOFOLLOW on a dir link", open("dirlink", O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
    show("O_WRONLY on a dir", open("ldir", O_WRONLY));
    show("O_RDONLY|O_TRUNC on a dir", open("ldir", O_RDONLY | O_TRUNC));

    section("O_PATH");
    fd = open("file", O_PATH);
    show("fstat", fstat(fd, &st));
    printf("size: %ld\n", (long)st.st_size);
    show("read", read(fd, buf, 1));
    show("write", write(fd, "x", 1));
    show("fchmod", fchmod(fd, 0600));
    show("fgetxattr", fgetxattr(fd, "user.x", buf, sizeof buf));
    show("fstatat AT_EMPTY_PATH", fstatat(fd, "", &st, AT_EMPTY_PATH));
    show("fstatat empty without AT_EMPTY_PATH", fstatat(fd, "", &st, 0));
    show("openat through a file fd", openat(fd, "x", O_RDONLY));
    close(fd);
    int dfd = open("ldir", O_PATH | O_DIRECTORY);
    fd = openat(dfd, "made", O_CREAT | O_WRONLY, 0644);
    show("openat(O_PATH dir fd, new name)", fd >= 0 ? 0 : -1);
    close(fd);
    show("getdents on O_PATH dir fd", syscall(SYS_getdents64, dfd, buf, sizeof buf));
    show("fchdir to an O_PATH dir fd", fchdir(dfd));
    printf("made here: %s\n", type_of("made", 0));
    chdir("..");
    close(dfd);
}

static void empty_path_and_nofollow(void)
{
    section("AT_EMPTY_PATH and AT_SYMLINK_NOFOLLOW");
    struct stat st;
    int fd = open("file", O_RDONLY);
    show("fstatat(fd, \"\", AT_EMPTY_PATH)", fstatat(fd, "", &st, AT_EMPTY_PATH));
    show("linkat(fd, \"\", AT_EMPTY_PATH)", linkat(fd, "", AT_FDCWD, "file-hard", AT_EMPTY_PATH));
    stat("file", &st);
    printf("nlink after linkat: %ld\n", (long)st.st_nlink);
    show("linkat(fd, \"\") without the flag", linkat(fd, "", AT_FDCWD, "file-hard2", 0));
    close(fd);
    show("linkat AT_FDCWD \"\" AT_EMPTY_PATH", linkat(AT_FDCWD, "", AT_FDCWD, "cwd-hard",
                                                      AT_EMPTY_PATH));
    show("fstatat(AT_FDCWD, \"\", AT_EMPTY_PATH)", fstatat(AT_FDCWD, "", &st, AT_EMPTY_PATH));
    printf("that is a dir: %d\n", S_ISDIR(st.st_mode));
    show("fstatat link NOFOLLOW", fstatat(AT_FDCWD, "c39", &st, AT_SYMLINK_NOFOLLOW));
    printf("is link: %d size=%ld\n", S_ISLNK(st.st_mode), (long)st.st_size);
    show("fstatat link follow", fstatat(AT_FDCWD, "c39", &st, 0));
    printf("is reg: %d\n", S_ISREG(st.st_mode));
    show("fchownat link NOFOLLOW", fchownat(AT_FDCWD, "c39", 0, 0, AT_SYMLINK_NOFOLLOW));
    show("utimensat link NOFOLLOW", utimensat(AT_FDCWD, "c39", NULL, AT_SYMLINK_NOFOLLOW));
    show("fchmodat link NOFOLLOW", fchmodat(AT_FDCWD, "c39", 0600, AT_SYMLINK_NOFOLLOW));
    show("linkat of a symlink (no follow)", linkat(AT_FDCWD, "c39", AT_FDCWD, "hard-link-to-link", 0));
    printf("that is: %s\n", type_of("hard-link-to-link", 0));
    show("linkat of a symlink, AT_SYMLINK_FOLLOW",
         linkat(AT_FDCWD, "c39", AT_FDCWD, "hard-followed", AT_SYMLINK_FOLLOW));
    printf("that is: %s\n", type_of("hard-followed", 0));
    show("linkat of a dir", linkat(AT_FDCWD, "ldir", AT_FDCWD, "dir-hard", 0));
    show("linkat bad flags", linkat(AT_FDCWD, "file", AT_FDCWD, "x", 0x8000));
}

static void tmpfiles(void)
{
    section("O_TMPFILE");
    int fd = open(".", O_TMPFILE | O_RDWR, 0666);
    show("O_TMPFILE in the work dir", fd >= 0 ? 0 : -1);
    struct stat st;
    fstat(fd, &st);
    printf("nlink=%ld mode=%o reg=%d\n", (long)st.st_nlink, st.st_mode & 07777, S_ISREG(st.st_mode));
    write(fd, "tmpdata", 7);
    show("linkat it", linkat(fd, "", AT_FDCWD, "from-tmpfile", AT_EMPTY_PATH));
    printf("named: %s size=%s\n", type_of("from-tmpfile", 0),
           get_file("from-tmpfile") ? get_file("from-tmpfile") : "?");
    show("linkat it again", linkat(fd, "", AT_FDCWD, "from-tmpfile2", AT_EMPTY_PATH));
    close(fd);
    fd = open(".", O_TMPFILE | O_WRONLY | O_EXCL, 0600);
    show("O_TMPFILE|O_EXCL", fd >= 0 ? 0 : -1);
    show("linkat an O_EXCL one", linkat(fd, "", AT_FDCWD, "never", AT_EMPTY_PATH));
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    show("linkat it through /proc/self/fd", linkat(AT_FDCWD, proc, AT_FDCWD, "never",
                                                   AT_SYMLINK_FOLLOW));
    close(fd);
    fd = open("ldir", O_TMPFILE | O_RDWR, 0640);
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    show("linkat a tmpfile through /proc/self/fd", linkat(AT_FDCWD, proc, AT_FDCWD,
                                                          "ldir/via-proc", AT_SYMLINK_FOLLOW));
    printf("via-proc: %s\n", type_of("ldir/via-proc", 0));
    close(fd);
    show("O_TMPFILE read-only", open(".", O_TMPFILE | O_RDONLY, 0600));
    show("O_TMPFILE|O_CREAT", open(".", O_TMPFILE | O_CREAT | O_RDWR, 0600));
    show("O_TMPFILE on a file", open("file", O_TMPFILE | O_RDWR, 0600));
    show("O_TMPFILE in a missing dir", open("missing", O_TMPFILE | O_RDWR, 0600));
    show("O_TMPFILE in /proc", open("/proc", O_TMPFILE | O_RDWR, 0600));
    fd = open(".", O_TMPFILE | O_RDWR, 0600);
    show("unlinked file linkat", linkat(fd, "", AT_FDCWD, "file", AT_EMPTY_PATH));
    close(fd);
    fd = open("file-hard", O_RDONLY);
    unlink("file-hard");
    stat("file", &st);
    printf("nlink of file after unlink of its twin: %ld\n", (long)st.st_nlink);
    close(fd);
    put_file("doomed", "x");
    fd = open("doomed", O_RDONLY);
    unlink("doomed");
    show("linkat a removed file back", linkat(fd, "", AT_FDCWD, "undead", AT_EMPTY_PATH));
    close(fd);
}

static void name_errors(void)
{
    section("EEXIST, EISDIR, ENOTEMPTY");
    show("mkdir existing dir", mkdir("ldir", 0755));
    show("mkdir existing file", mkdir("file", 0755));
    symlink("nowhere", "dl3");
    show("mkdir on a dangling link", mkdir("dl3", 0755));
    show("symlink over a file", symlink("x", "file"));
    show("symlink over a dangling link", symlink("x", "dl3"));
    show("link over a file", link("from-tmpfile", "file"));
    show("mknod over a file", mknod("file", S_IFIFO | 0644, 0));
    show("open a dir for writing", open("ldir", O_RDWR));
    show("unlink a dir", unlink("ldir"));
    show("rename file onto a dir", rename("from-tmpfile", "ldir"));
    show("rename dir onto a file", rename("ldir", "from-tmpfile"));
    mkdir("full", 0755);
    put_file("full/x", "x");
    mkdir("empty", 0755);
    show("rmdir non-empty", rmdir("full"));
    show("rename dir onto non-empty dir", rename("empty", "full"));
    show("rename dir onto empty dir", rename("full", "empty"));
    printf("empty/x after: %s\n", type_of("empty/x", 0));
    show("rename dir into itself", rename("empty", "empty/sub"));
    show("rename dir onto its own child", rename("empty", "empty/x"));
    mkdir("empty/inner", 0755);
    show("rename dir onto its ancestor", rename("empty/inner", "empty"));
    show("rename a name onto itself", rename("file", "file"));
    link("file", "file-twin");
    show("rename hard links onto each other", rename("file", "file-twin"));
    printf("both names still there: %s ", type_of("file", 0));
    printf("%s\n", type_of("file-twin", 0));

    section("renameat2");
    put_file("ra", "A");
    put_file("rb", "B");
    show("NOREPLACE onto existing", syscall(SYS_renameat2, AT_FDCWD, "ra", AT_FDCWD, "rb",
                                            RENAME_NOREPLACE));
    show("NOREPLACE onto new", syscall(SYS_renameat2, AT_FDCWD, "ra", AT_FDCWD, "rc",
                                       RENAME_NOREPLACE));
    show("EXCHANGE", syscall(SYS_renameat2, AT_FDCWD, "rb", AT_FDCWD, "rc", RENAME_EXCHANGE));
    printf("rb=%s ", get_file("rb"));
    printf("rc=%s\n", get_file("rc"));
    show("EXCHANGE with a missing name", syscall(SYS_renameat2, AT_FDCWD, "rb", AT_FDCWD,
                                                 "rmissing", RENAME_EXCHANGE));
    show("EXCHANGE|NOREPLACE", syscall(SYS_renameat2, AT_FDCWD, "rb", AT_FDCWD, "rc",
                                       RENAME_EXCHANGE | RENAME_NOREPLACE));
    show("EXCHANGE a dir and a file", syscall(SYS_renameat2, AT_FDCWD, "rb", AT_FDCWD, "empty",
                                              RENAME_EXCHANGE));
    printf("now rb is %s, empty is %s\n", type_of("rb", 0), type_of("empty", 0));
    show("unknown flag", syscall(SYS_renameat2, AT_FDCWD, "rb", AT_FDCWD, "rc", 0x40));
    show("NOREPLACE onto .", syscall(SYS_renameat2, AT_FDCWD, "rc", AT_FDCWD, ".",
                                     RENAME_NOREPLACE));
}

static void umasks(void)
{
    section("umask");
    mode_t old = umask(077);
    int fd = open("um-file", O_CREAT | O_WRONLY, 0666);
    close(fd);
    mkdir("um-dir", 0777);
    mknod("um-fifo", S_IFIFO | 0666, 0);
    symlink("x", "um-link");
    struct stat st;
    stat("um-file", &st);
    printf("file 0666 under 077: %o\n", st.st_mode & 07777);
    stat("um-dir", &st);
    printf("dir 0777 under 077: %o\n", st.st_mode & 07777);
    stat("um-fifo", &st);
    printf("fifo 0666 under 077: %o\n", st.st_mode & 07777);
    lstat("um-link", &st);
    printf("symlink under 077: %o\n", st.st_mode & 07777);
    umask(0);
    mkdir("um-dir2", 07777);
    stat("um-dir2", &st);
    printf("dir 07777 under 0: %o\n", st.st_mode & 07777);
    fd = open("um-file2", O_CREAT | O_WRONLY, 07777);
    close(fd);
    stat("um-file2", &st);
    printf("file 07777 under 0: %o\n", st.st_mode & 07777);
    printf("umask returns the old mask: %o\n", umask(old));
}

/* What uid 65534 may do: run in a child that gave up root. */
static void as_nobody(void)
{
    section("permissions as uid 65534");
    mkdir("private", 0700);
    put_file("private/secret", "s");
    put_file("readonly", "r");
    chmod("readonly", 0644);
    mkdir("shared", 0755);
    put_file("shared/rootfile", "r");
    mkdir("sticky", 0755);
    chmod("sticky", 01777);
    put_file("sticky/rootfile", "r");
    chmod("sticky/rootfile", 0666);
    mkdir("open", 0755);
    chmod("open", 0777);
    put_file("open/rootfile", "r");
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) || setgid(65534) || setuid(65534)) {
            printf("dropping root: errno=%s\n", ename(errno));
            _exit(1);
        }
        show("stat in a 0700 dir", stat("private/secret", &(struct stat){0}));
        show("open in a 0700 dir", open("private/secret", O_RDONLY));
        show("chdir into a 0700 dir", chdir("private"));
        show("opendir a 0700 dir", open("private", O_RDONLY | O_DIRECTORY));
        show("stat the 0700 dir itself", stat("private", &(struct stat){0}));
        show("open 0644 for writing", open("readonly", O_WRONLY));
        show("open 0644 for reading", open("readonly", O_RDONLY) >= 0 ? 0 : -1);
        show("O_TRUNC on 0644", open("readonly", O_RDONLY | O_TRUNC));
        show("access W_OK 0644", access("readonly", W_OK));
        show("access R_OK 0644", access("readonly", R_OK));
        show("truncate 0644", truncate("readonly", 0));
        show("chmod someone else's file", chmod("readonly", 0777));
        show("create in a 0755 dir", open("shared/new", O_CREAT | O_WRONLY, 0644));
        show("mkdir existing in a 0755 dir", mkdir("shared/rootfile", 0755));
        show("mkdir in a 0755 dir", mkdir("shared/newdir", 0755));
        show("unlink in a 0755 dir", unlink("shared/rootfile"));
        show("unlink missing in a 0755 dir", unlink("shared/missing"));
        show("rename within a 0755 dir", rename("shared/rootfile", "shared/moved"));
        show("symlink in a 0755 dir", symlink("x", "shared/ln"));
        show("O_TMPFILE in a 0755 dir", open("shared", O_TMPFILE | O_RDWR, 0600));
        show("setxattr on someone else's 0644 file", setxattr("readonly", "user.a", "1", 1, 0));
        char v[8];
        show("getxattr on a 0700 dir's file", getxattr("private/secret", "user.a", v, sizeof v));
        int fd = open("sticky/mine", O_CREAT | O_WRONLY, 0644);
        show("create in a sticky dir", fd >= 0 ? 0 : -1);
        close(fd);
        show("unlink root's file in a sticky dir", unlink("sticky/rootfile"));
        show("rename root's file in a sticky dir", rename("sticky/rootfile", "sticky/taken"));
        show("rename own file over root's in a sticky dir", rename("sticky/mine", "sticky/rootfile"));
        show("unlink own file in a sticky dir", unlink("sticky/mine"));
        show("unlink root's file in a 0777 dir", unlink("open/rootfile"));
        show("utimensat now on someone else's 0666 file", utimensat(AT_FDCWD, "sticky/rootfile",
                                                                    NULL, 0));
        struct timespec ts[2] = {{1, 0}, {1, 0}};
        show("utimensat explicit on someone else's file", utimensat(AT_FDCWD, "sticky/rootfile",
                                                                    ts, 0));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    printf("child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    printf("after: sticky/rootfile %s, open/rootfile %s, shared/rootfile %s\n",
           type_of("sticky/rootfile", 0), type_of("open/rootfile", 0), type_of("shared/rootfile", 0));
}

static int seen_once(char names[][16], int n, const char *name)
{
    int count = 0;
    for (int i = 0; i < n; i++)
        count += !strcmp(names[i], name);
    return count;
}

static void offsets(void)
{
    section("directory offsets");
    mkdir("many", 0755);
    char path[64];
    for (int i = 0; i < 20; i++) {
        snprintf(path, sizeof path, "many/f%02d", i);
        put_file(path, "x");
    }
    DIR *d = opendir("many");
    char first[5][16], rest[32][16], again[32][16];
    int nfirst = 0, nrest = 0, nagain = 0;
    struct dirent *e;
    while (nfirst < 5 && (e = readdir(d)))
        if (e->d_name[0] != '.')
            snprintf(first[nfirst++], 16, "%s", e->d_name);
    long pos = telldir(d);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            snprintf(rest[nrest++], 16, "%s", e->d_name);
    printf("read 5, then %d more\n", nrest);
    seekdir(d, pos);
    e = readdir(d);
    while (e && e->d_name[0] == '.')
        e = readdir(d);
    yesno("seekdir(telldir) resumes at the same name", e && !strcmp(e->d_name, rest[0]));
    /* remove what was read before the mark and one name after it, then resume there */
    for (int i = 0; i < nfirst; i++) {
        snprintf(path, sizeof path, "many/%s", first[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "many/%s", rest[1]);
    unlink(path);
    seekdir(d, pos);
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            snprintf(again[nagain++], 16, "%s", e->d_name);
    int ok = 1;
    for (int i = 0; i < nrest; i++)
        if (i != 1 && seen_once(again, nagain, rest[i]) != 1)
            ok = 0;
    for (int i = 0; i < nagain; i++)
        if (!seen_once(rest, nrest, again[i]) || seen_once(again, nagain, again[i]) != 1)
            ok = 0;
    yesno("after removals, the rest is read once each from the mark", ok);
    rewinddir(d);
    int count = 0;
    while ((e = readdir(d)))
        count += e->d_name[0] != '.';
    printf("after rewinddir: %d names\n", count);
    closedir(d);
}

static int listed(const char *list, long n, const char *name)
{
    for (long i = 0; i < n; i += strlen(list + i) + 1)
        if (!strcmp(list + i, name))
            return 1;
    return 0;
}

static void user_names(const char *label, const char *list, long n)
{
    /* only user.* names, sorted (the order is the file system's) */
    const char *names[16];
    int k = 0;
    for (long i = 0; n > 0 && i < n && k < 16; i += strlen(list + i) + 1)
        if (!strncmp(list + i, "user.", 5))
            names[k++] = list + i;
    for (int i = 0; i < k; i++)
        for (int j = i + 1; j < k; j++)
            if (strcmp(names[j], names[i]) < 0) {
                const char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    printf("%s:", label);
    for (int i = 0; i < k; i++)
        printf(" %s", names[i]);
    printf("\n");
}

static void xattrs(void)
{
    section("extended attributes");
    char v[64], list[512];
    put_file("xf", "x");
    show("setxattr", setxattr("xf", "user.one", "111", 3, 0));
    show("setxattr empty value", setxattr("xf", "user.empty", "", 0, 0));
    show("getxattr size 0", getxattr("xf", "user.one", NULL, 0));
    long n = getxattr("xf", "user.one", v, sizeof v);
    printf("getxattr: %ld [%.*s]\n", n, n > 0 ? (int)n : 0, v);
    show("getxattr empty value", getxattr("xf", "user.empty", v, sizeof v));
    show("getxattr small buffer", getxattr("xf", "user.one", v, 2));
    show("getxattr missing", getxattr("xf", "user.none", v, sizeof v));
    show("XATTR_CREATE on existing", setxattr("xf", "user.one", "2", 1, XATTR_CREATE));
    show("XATTR_REPLACE on missing", setxattr("xf", "user.two", "2", 1, XATTR_REPLACE));
    show("XATTR_REPLACE on existing", setxattr("xf", "user.one", "1", 1, XATTR_REPLACE));
    show("XATTR_CREATE on missing", setxattr("xf", "user.two", "22", 2, XATTR_CREATE));
    show("bad flags", setxattr("xf", "user.one", "1", 1, 4));
    n = listxattr("xf", list, sizeof list);
    user_names("listxattr", list, n);
    show("listxattr small buffer", listxattr("xf", list, 3));
    show("removexattr", removexattr("xf", "user.empty"));
    show("removexattr missing", removexattr("xf", "user.empty"));
    show("getxattr after remove", getxattr("xf", "user.empty", v, sizeof v));
    show("unknown namespace set", setxattr("xf", "other.x", "1", 1, 0));
    show("unknown namespace get", getxattr("xf", "other.x", v, sizeof v));
    show("bare user. name", setxattr("xf", "user.", "1", 1, 0));
    show("empty name", setxattr("xf", "", "1", 1, 0));
    char longname[300] = "user.";
    memset(longname + 5, 'a', 260);
    longname[265] = 0;
    show("name of 265", setxattr("xf", longname, "1", 1, 0));
    static char big[70000];
    show("value of 70000", setxattr("xf", "user.big", big, sizeof big, 0));
    show("missing file", setxattr("nofile", "user.one", "1", 1, 0));

    symlink("xf", "xlink");
    n = getxattr("xlink", "user.one", v, sizeof v);
    printf("getxattr through a link: %ld\n", n);
    show("lgetxattr on the link", lgetxattr("xlink", "user.one", v, sizeof v));
    show("lsetxattr user.* on a link", lsetxattr("xlink", "user.one", "1", 1, 0));
    n = llistxattr("xlink", list, sizeof list);
    user_names("llistxattr of the link", list, n);
    show("lremovexattr on the link", lremovexattr("xlink", "user.one"));
    show("setxattr through the link", setxattr("xlink", "user.via", "v", 1, 0));
    n = listxattr("xf", list, sizeof list);
    user_names("listxattr of the target", list, n);

    int fd = open("xf", O_RDWR);
    show("fsetxattr", fsetxattr(fd, "user.fd", "f", 1, 0));
    show("fgetxattr", fgetxattr(fd, "user.fd", v, sizeof v));
    n = flistxattr(fd, list, sizeof list);
    user_names("flistxattr", list, n);
    show("fremovexattr", fremovexattr(fd, "user.fd"));
    show("fremovexattr missing", fremovexattr(fd, "user.fd"));
    close(fd);
    fd = open("xf", O_RDONLY);
    show("fsetxattr on a read-only fd", fsetxattr(fd, "user.ro", "r", 1, 0));
    close(fd);
    int p[2];
    pipe(p);
    show("fsetxattr on a pipe", fsetxattr(p[0], "user.p", "p", 1, 0));
    show("fgetxattr on a pipe", fgetxattr(p[0], "user.p", v, sizeof v));
    close(p[0]);
    close(p[1]);

    show("setxattr on the work dir", setxattr(".", "user.dir", "d", 1, 0));
    show("getxattr on the work dir", getxattr(".", "user.dir", v, sizeof v));
    mkfifo("xfifo", 0644);
    show("setxattr user.* on a fifo", setxattr("xfifo", "user.f", "f", 1, 0));
    show("getxattr user.* on a fifo", getxattr("xfifo", "user.f", v, sizeof v));
    show("setxattr user.* on a sticky dir as owner", setxattr("sticky", "user.s", "s", 1, 0));
    link("xf", "xf-hard");
    n = listxattr("xf-hard", list, sizeof list);
    user_names("listxattr of a hard link", list, n);
    rename("xf", "xf-moved");
    n = listxattr("xf-moved", list, sizeof list);
    user_names("after rename", list, n);
    yesno("user.one survives", listed(list, n, "user.one"));
}

int main(void)
{
    test_init();
    links();
    lengths();
    slashes_and_dots();
    mounts();
    open_flags();
    empty_path_and_nofollow();
    tmpfiles();
    name_errors();
    umasks();
    umask(022);
    as_nobody();
    offsets();
    xattrs();
    return 0;
}
