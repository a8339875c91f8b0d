/*
 * Helpers shared by the differential test programs.
 *
 * Why: every program prints one line per observation, and the harness compares the
 * native output with the sandbox's byte for byte.  So results are printed only in forms
 * that are the same on both sides: return values that Linux defines (sizes, fd numbers,
 * counts), errno *names*, and yes/no answers to relations ("monotonic did not go back").
 * Never addresses, times, inode or device numbers, or absolute paths.
 *
 * CHECK prints "FAILED" when a relation that must hold on Linux does not; the native
 * self-test asserts that no program prints FAILED on this host.
 */
#ifndef SV_TEST_COMMON_H
#define SV_TEST_COMMON_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static inline const char *ename(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* "label: value" on success, "label: errno=ENAME" on failure (the call returned -1). */
static inline long show(const char *label, long r)
{
    if (r == -1)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        printf("%s: %ld\n", label, r);
    return r;
}

/* Like show() but the success value is not deterministic (an address, a time). */
static inline long show_ok(const char *label, long r)
{
    if (r == -1)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        printf("%s: ok\n", label);
    return r;
}

/* For calls returning a pointer: MAP_FAILED / NULL mean failure. */
static inline void *show_ptr(const char *label, void *p, void *failed)
{
    if (p == failed)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        printf("%s: ok\n", label);
    return p;
}

/* A relation that holds on Linux; prints the details only when it does not. */
static inline int check(const char *label, int cond, const char *fmt, ...)
{
    if (cond) {
        printf("%s: ok\n", label);
    } else {
        va_list ap;
        printf("%s: FAILED ", label);
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        printf("\n");
    }
    return cond;
}
#define CHECK(label, cond) check(label, (cond), "(%s)", #cond)

/* Print a labelled string with non-printable bytes escaped. */
static inline void show_bytes(const char *label, const void *buf, long n)
{
    const unsigned char *p = buf;
    printf("%s: [", label);
    for (long i = 0; i < n; i++) {
        if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    }
    printf("]\n");
}

/* Create (or replace) a file holding `text`. */
static inline void put_file(const char *path, const char *text)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        printf("setup %s: FAILED errno=%s\n", path, ename(errno));
        exit(2);
    }
    close(fd);
}

/* Read a whole small file into a static buffer (NUL-terminated) or return NULL. */
static inline const char *get_file(const char *path)
{
    static char buf[4096];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0)
        return NULL;
    buf[n] = 0;
    return buf;
}

static inline void section(const char *name)
{
    printf("== %s\n", name);
}

/* Line-buffered stdout so a crash loses nothing, and a known umask. */
static inline void test_init(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    umask(022);
}

#endif
