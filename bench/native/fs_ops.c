/* File-system operations in one directory, so the same loop can be timed on each kind of
 * mount (the sandbox's overlay root, a tmpfs, a bind mount) and on the host:
 *
 *     fs_ops ITERATIONS OP DIR
 *
 * OP is one of
 *   open      open(DIR/data, O_RDONLY) + close
 *   stat      stat(DIR/data)
 *   read4k    pread of 4 KiB at successive page offsets of DIR/data
 *   write4k   pwrite of 4 KiB at successive page offsets of DIR/scratch
 *   read1m    lseek to 0, then read DIR/data's 1 MiB in CHUNK reads
 *   write1m   lseek to 0, then write 1 MiB over DIR/scratch in CHUNK writes
 *
 * DIR/data and DIR/scratch are created (1 MiB each) when missing, so an empty tmpfs works;
 * an existing DIR/data is only ever opened read-only, so on an overlay root it stays a
 * lower file and the read figures measure reads of the image, not of a copied-up file. */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define FILE_SIZE (1 << 20)
#define PAGE 4096
#define CHUNK (128 << 10) /* what cat and cp use per read (coreutils' io_blksize) */

static char buf[CHUNK];

struct ctx {
    const char *path;
    int fd;
    off_t page; /* next page offset of the 4 KiB ops */
};

/* A 1 MiB file at path: left alone when it is that big already (opened read-only to see),
 * otherwise written with a byte pattern. */
static void ensure_file(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (st.st_size >= FILE_SIZE) return;
    } else if (errno != ENOENT) {
        bench_fail(path);
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) bench_fail(path);
    memset(buf, 'x', sizeof buf);
    for (off_t done = 0; done < FILE_SIZE; done += CHUNK)
        if (write(fd, buf, CHUNK) != CHUNK) bench_fail("write (filling the file)");
    if (close(fd) != 0) bench_fail("close");
}

static void op_open(void *arg) {
    struct ctx *c = arg;
    int fd = open(c->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) bench_fail(c->path);
    if (close(fd) != 0) bench_fail("close");
}

static void op_stat(void *arg) {
    struct ctx *c = arg;
    struct stat st;
    if (stat(c->path, &st) != 0) bench_fail(c->path);
}

static void op_read4k(void *arg) {
    struct ctx *c = arg;
    if (pread(c->fd, buf, PAGE, c->page) != PAGE) bench_fail("pread");
    c->page = (c->page + PAGE) % FILE_SIZE;
}

static void op_write4k(void *arg) {
    struct ctx *c = arg;
    if (pwrite(c->fd, buf, PAGE, c->page) != PAGE) bench_fail("pwrite");
    c->page = (c->page + PAGE) % FILE_SIZE;
}

static void op_read1m(void *arg) {
    struct ctx *c = arg;
    if (lseek(c->fd, 0, SEEK_SET) != 0) bench_fail("lseek");
    for (off_t done = 0; done < FILE_SIZE; done += CHUNK)
        if (read(c->fd, buf, CHUNK) != CHUNK) bench_fail("read");
}

static void op_write1m(void *arg) {
    struct ctx *c = arg;
    if (lseek(c->fd, 0, SEEK_SET) != 0) bench_fail("lseek");
    for (off_t done = 0; done < FILE_SIZE; done += CHUNK)
        if (write(c->fd, buf, CHUNK) != CHUNK) bench_fail("write");
}

static const struct {
    const char *name;
    void (*fn)(void *);
    const char *file;  /* data (read side) or scratch (written) */
    int open_flags;    /* -1: the op opens nothing itself beforehand */
} OPS[] = {
    {"open", op_open, "data", -1},
    {"stat", op_stat, "data", -1},
    {"read4k", op_read4k, "data", O_RDONLY},
    {"write4k", op_write4k, "scratch", O_WRONLY},
    {"read1m", op_read1m, "data", O_RDONLY},
    {"write1m", op_write1m, "scratch", O_WRONLY},
};

int main(int argc, char **argv) {
    long n = bench_iterations(argc, argv, 2, "open|stat|read4k|write4k|read1m|write1m DIR");
    static char path[4096];
    struct ctx c = {path, -1, 0};
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++) {
        if (strcmp(argv[2], OPS[i].name) != 0) continue;
        if (snprintf(path, sizeof path, "%s/%s", argv[3], OPS[i].file) >= (int)sizeof path) {
            fprintf(stderr, "%s: directory name too long\n", argv[0]);
            return 2;
        }
        ensure_file(path);
        if (OPS[i].open_flags >= 0 && (c.fd = open(path, OPS[i].open_flags | O_CLOEXEC)) < 0)
            bench_fail(path);
        bench_loop(n, OPS[i].fn, &c);
        return 0;
    }
    fprintf(stderr, "%s: unknown operation '%s'\n", argv[0], argv[2]);
    return 2;
}
