/* Advisory locks between processes: fcntl record locks (ranges, F_GETLK, F_SETLKW, EDEADLK,
 * release on any close), OFD locks, flock(2). */
#include "common.h"
#include <sys/syscall.h>
#include <sys/wait.h>

#include <sys/file.h>
#include <sys/wait.h>

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    return fcntl(fd, cmd, &fl);
}

static void getlk(const char *label, int fd, int cmd, short type, off_t start, off_t len)
{
    struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
    if (fcntl(fd, cmd, &fl) == -1) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    if (fl.l_type == F_UNLCK)
        printf("%s: unlocked\n", label);
    else
        printf("%s: %s start %ld len %ld pid-is-child %d\n", label, fl.l_type == F_WRLCK ? "W" : "R",
               (long)fl.l_start, (long)fl.l_len, fl.l_pid > 0 && fl.l_pid != getpid());
}

static void wait_byte(int fd) { char c; read(fd, &c, 1); }
static void send_byte(int fd) { write(fd, "x", 1); }

/* can another process take a write lock on the whole file now? */
static int child_can_lock(const char *path)
{
    fflush(stdout);
    pid_t p = fork();
    if (p == 0)
        _exit(setlk(open(path, O_RDWR), F_SETLK, F_WRLCK, 0, 0) == 0 ? 0 : 1);
    int status;
    waitpid(p, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* every way a descriptor closes drops the process's POSIX locks on the file */
static void implicit_closes(void)
{
    int fd = open("lockfile2", O_RDWR | O_CREAT, 0644);
    setlk(fd, F_SETLK, F_WRLCK, 0, 0);
    printf("held: other can lock %d\n", child_can_lock("lockfile2"));
    int other = open("lockfile2", O_RDONLY);
    dup2(other, fd);
    printf("dup2 over the fd: other can lock %d\n", child_can_lock("lockfile2"));
    close(fd);
    close(other);
    fd = open("lockfile2", O_RDWR);
    setlk(fd, F_SETLK, F_WRLCK, 0, 0);
    syscall(SYS_close_range, fd, fd, 0);
    printf("close_range: other can lock %d\n", child_can_lock("lockfile2"));
    fd = open("lockfile2", O_RDWR);
    setlk(fd, F_SETLK, F_WRLCK, 0, 0);
    syscall(SYS_close_range, fd, fd, 4 /* CLOSE_RANGE_CLOEXEC */);
    printf("close_range CLOEXEC only: other can lock %d\n", child_can_lock("lockfile2"));
    close(fd);
}

int main(void)
{
    int fd = open("lockfile", O_RDWR | O_CREAT | O_TRUNC, 0644);
    write(fd, "0123456789", 10);
    int to_child[2], to_parent[2];
    pipe(to_child);
    pipe(to_parent);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int cfd = open("lockfile", O_RDWR);
        setlk(cfd, F_SETLK, F_WRLCK, 2, 3);   /* bytes 2..4 */
        setlk(cfd, F_SETLK, F_RDLCK, 8, 0);   /* 8..EOF */
        send_byte(to_parent[1]);
        wait_byte(to_child[0]);               /* parent tested; now release 2..4 later */
        usleep(100000);
        setlk(cfd, F_SETLK, F_UNLCK, 2, 3);
        wait_byte(to_child[0]);
        int other = open("lockfile", O_RDONLY);
        close(other);                         /* any close drops this process's locks */
        send_byte(to_parent[1]);
        wait_byte(to_child[0]);
        _exit(0);
    }
    wait_byte(to_parent[0]);
    getlk("F_GETLK W 0..9", fd, F_GETLK, F_WRLCK, 0, 10);
    getlk("F_GETLK W 5..7", fd, F_GETLK, F_WRLCK, 5, 3);
    getlk("F_GETLK R 8..", fd, F_GETLK, F_RDLCK, 8, 0);
    getlk("F_GETLK W 9..", fd, F_GETLK, F_WRLCK, 9, 0);
    show("F_SETLK W 3 (held)", setlk(fd, F_SETLK, F_WRLCK, 3, 1));
    show("F_SETLK R 9 (shared)", setlk(fd, F_SETLK, F_RDLCK, 9, 1));
    show("F_SETLK W 5..7 (free)", setlk(fd, F_SETLK, F_WRLCK, 5, 3));
    send_byte(to_child[1]);
    show("F_SETLKW W 3 (waits for the child)", setlk(fd, F_SETLKW, F_WRLCK, 3, 1));
    send_byte(to_child[1]);
    wait_byte(to_parent[0]);
    getlk("after the child's close", fd, F_GETLK, F_WRLCK, 0, 0);
    send_byte(to_child[1]);
    waitpid(pid, NULL, 0);

    /* errors */
    show("F_GETLK with F_UNLCK", ({ struct flock f = {.l_type = F_UNLCK}; fcntl(fd, F_GETLK, &f); }));
    show("bad type", setlk(fd, F_SETLK, 7, 0, 1));
    show("negative start", setlk(fd, F_SETLK, F_WRLCK, -5, 1));
    int ro = open("lockfile", O_RDONLY);
    show("write lock on O_RDONLY", setlk(ro, F_SETLK, F_WRLCK, 0, 1));
    show("OFD lock with l_pid set", ({ struct flock f = {.l_type = F_RDLCK, .l_pid = 1}; fcntl(ro, F_OFD_SETLK, &f); }));

    /* OFD locks conflict with POSIX locks of the same process on another description */
    setlk(fd, F_SETLK, F_UNLCK, 0, 0);
    show("OFD W on one description", setlk(fd, F_OFD_SETLK, F_WRLCK, 0, 5));
    int fd2 = open("lockfile", O_RDWR);
    show("OFD W on another description", setlk(fd2, F_OFD_SETLK, F_WRLCK, 0, 5));
    getlk("F_OFD_GETLK from the other", fd2, F_OFD_GETLK, F_WRLCK, 0, 5);

    /* flock */
    show("flock LOCK_EX", flock(fd, LOCK_EX));
    show("flock LOCK_EX|LOCK_NB on another description", flock(fd2, LOCK_EX | LOCK_NB));
    show("flock LOCK_SH|LOCK_NB on another description", flock(fd2, LOCK_SH | LOCK_NB));
    show("flock LOCK_UN", flock(fd, LOCK_UN));
    show("flock LOCK_SH|LOCK_NB now", flock(fd2, LOCK_SH | LOCK_NB));
    /* a conversion is not atomic: the old lock goes first, and stays gone if it fails */
    show("flock LOCK_SH on the first too", flock(fd, LOCK_SH));
    show("first to LOCK_EX|LOCK_NB (the other reads)", flock(fd, LOCK_EX | LOCK_NB));
    show("other to LOCK_EX|LOCK_NB (the first's lock went)", flock(fd2, LOCK_EX | LOCK_NB));
    show("other back to LOCK_SH", flock(fd2, LOCK_SH));
    show("flock bad op", flock(fd, 0));
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        /* the child shares fd's description: flock is per description */
        printf("child flock LOCK_EX|LOCK_NB on the inherited fd: %s\n",
               flock(fd, LOCK_EX | LOCK_NB) == 0 ? "ok" : ename(errno));
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);

    /* a holder that exits without unlocking wakes the waiter (its last close drops it) */
    flock(fd2, LOCK_UN);
    fflush(stdout);
    pid = fork();
    if (pid == 0) {
        int own = open("lockfile", O_RDWR);
        flock(own, LOCK_EX);
        send_byte(to_parent[1]);
        usleep(100000);
        _exit(0);
    }
    wait_byte(to_parent[0]);
    show("flock LOCK_EX waits for the holder's exit", flock(fd, LOCK_EX));
    waitpid(pid, NULL, 0);
    unlink("lockfile");
    implicit_closes();
    return 0;
}
