/*
 * probe: a tiny command interpreter for the isolation and CLI tests.
 *
 * Why: those tests need one program that does a few chosen things (open a path, create
 * a file, report its pid, crash in a chosen way) and says precisely what happened, so a
 * test can assert one fact at a time.  Usage: probe OP [ARGS] [OP [ARGS]]...
 *
 *   open P | create P | mkdir P | unlink P | rmdir P | symlink T L | rename A B
 *   write P TEXT (O_CREAT|O_TRUNC) | trunc P (O_WRONLY|O_TRUNC) | append P TEXT | cat P | ls P | stat P
 *   chdir P | getcwd | pid | int80 | sleep MS | spin | echo TEXT | exit N
 *   crash null|ro|ud2|int3|div0|raise-segv|abort
 */
#include "common.h"
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>

static int result(const char *op, const char *arg, long r)
{
    if (r < 0)
        printf("%s %s: errno=%s\n", op, arg, ename(errno));
    else
        printf("%s %s: ok\n", op, arg);
    return r < 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static long int80_getpid(void)
{
    long ret;
    /* 32-bit getpid is 20; from a 64-bit process the sandbox must refuse it. */
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
    return ret;
}

static void crash(const char *how)
{
    fflush(stdout);
    if (!strcmp(how, "null")) {
        *(volatile int *)0 = 1;
    } else if (!strcmp(how, "ro")) {
        volatile char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        p[0] = 1;
    } else if (!strcmp(how, "ud2")) {
        __asm__ volatile("ud2");
    } else if (!strcmp(how, "int3")) {
        __asm__ volatile("int3");
    } else if (!strcmp(how, "div0")) {
        int q = 7, zero = 0;
        __asm__ volatile("cltd; idivl %1" : "+a"(q) : "r"(zero) : "edx");
        printf("%d\n", q);
    } else if (!strcmp(how, "raise-segv")) {
        raise(SIGSEGV);
    } else if (!strcmp(how, "abort")) {
        abort();
    }
    printf("crash %s: survived\n", how);
}

int main(int argc, char **argv)
{
    int failures = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1; i < argc; i++) {
        const char *op = argv[i];
        const char *a = i + 1 < argc ? argv[i + 1] : "";
        const char *b = i + 2 < argc ? argv[i + 2] : "";
        if (!strcmp(op, "open")) {
            int fd = open(a, O_RDONLY);
            failures += result(op, a, fd);
            if (fd >= 0) close(fd);
            i++;
        } else if (!strcmp(op, "create")) {
            int fd = open(a, O_CREAT | O_WRONLY | O_EXCL, 0644);
            failures += result(op, a, fd);
            if (fd >= 0) close(fd);
            i++;
        } else if (!strcmp(op, "write")) {
            int fd = open(a, O_CREAT | O_WRONLY | O_TRUNC, 0644);
            long r = fd < 0 ? -1 : write(fd, b, strlen(b));
            failures += result(op, a, r);
            if (fd >= 0) close(fd);
            i += 2;
        } else if (!strcmp(op, "trunc")) {
            int fd = open(a, O_WRONLY | O_TRUNC);
            failures += result(op, a, fd);
            if (fd >= 0) close(fd);
            i++;
        } else if (!strcmp(op, "append")) {
            int fd = open(a, O_WRONLY | O_APPEND);
            long r = fd < 0 ? -1 : write(fd, b, strlen(b));
            failures += result(op, a, r);
            if (fd >= 0) close(fd);
            i += 2;
        } else if (!strcmp(op, "mkdir")) {
            failures += result(op, a, mkdir(a, 0755));
            i++;
        } else if (!strcmp(op, "unlink")) {
            failures += result(op, a, unlink(a));
            i++;
        } else if (!strcmp(op, "rmdir")) {
            failures += result(op, a, rmdir(a));
            i++;
        } else if (!strcmp(op, "symlink")) {
            failures += result(op, b, symlink(a, b));
            i += 2;
        } else if (!strcmp(op, "rename")) {
            failures += result(op, a, rename(a, b));
            i += 2;
        } else if (!strcmp(op, "stat")) {
            struct stat st;
            failures += result(op, a, stat(a, &st));
            i++;
        } else if (!strcmp(op, "cat")) {
            int fd = open(a, O_RDONLY);
            if (result(op, a, fd)) {
                failures++;
            } else {
                char buf[4096];
                long n;
                while ((n = read(fd, buf, sizeof buf)) > 0)
                    fwrite(buf, 1, n, stdout);
                close(fd);
            }
            i++;
        } else if (!strcmp(op, "ls")) {
            DIR *d = opendir(a);
            if (!d) {
                failures += result(op, a, -1);
            } else {
                char *names[1024];
                int n = 0;
                struct dirent *e;
                while ((e = readdir(d)) && n < 1024)
                    names[n++] = strdup(e->d_name);
                closedir(d);
                qsort(names, n, sizeof names[0], cmp);
                printf("ls %s:", a);
                for (int k = 0; k < n; k++)
                    printf(" %s", names[k]);
                printf("\n");
            }
            i++;
        } else if (!strcmp(op, "chdir")) {
            failures += result(op, a, chdir(a));
            i++;
        } else if (!strcmp(op, "getcwd")) {
            char buf[PATH_MAX];
            if (getcwd(buf, sizeof buf))
                printf("getcwd: %s\n", buf);
            else
                failures += result(op, "", -1);
        } else if (!strcmp(op, "pid")) {
            printf("getpid=%ld getppid=%ld gettid=%ld\n", syscall(SYS_getpid), syscall(SYS_getppid),
                   syscall(SYS_gettid));
        } else if (!strcmp(op, "int80")) {
            printf("int80 getpid=%ld\n", int80_getpid());
            printf("continued after int80\n");
        } else if (!strcmp(op, "sleep")) {
            printf("sleeping\n");
            long ms = atol(a);
            struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
            printf("slept\n");
            i++;
        } else if (!strcmp(op, "spin")) {
            /* Busy in system calls until killed: a sandbox that is surely running. */
            printf("spinning\n");
            for (;;)
                syscall(SYS_getppid);
        } else if (!strcmp(op, "echo")) {
            printf("%s\n", a);
            i++;
        } else if (!strcmp(op, "exit")) {
            exit(atoi(a));
        } else if (!strcmp(op, "crash")) {
            crash(a);
            i++;
        } else {
            fprintf(stderr, "probe: unknown op %s\n", op);
            return 64;
        }
    }
    return failures ? 1 : 0;
}
