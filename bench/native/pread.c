/* Data path: pread of 4 KiB at successive page offsets of PATH (wrapping at its end). */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define CHUNK 4096

static char buf[CHUNK];

int main(int argc, char **argv) {
    long n = bench_iterations(argc, argv, 1, "PATH");
    const char *path = argv[2];
    struct stat st;
    off_t pages, page = 0;
    uint64_t t0, t1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) bench_fail(path);
    if (fstat(fd, &st) != 0) bench_fail("fstat");
    pages = st.st_size / CHUNK;
    if (pages < 1) {
        fprintf(stderr, "%s: smaller than %d bytes\n", path, CHUNK);
        return 1;
    }
    for (long i = bench_warmup(n); i > 0; i--, page = (page + 1) % pages)
        if (pread(fd, buf, CHUNK, page * CHUNK) != CHUNK) bench_fail("pread");
    t0 = bench_now_ns();
    for (long i = n; i > 0; i--, page = (page + 1) % pages)
        if (pread(fd, buf, CHUNK, page * CHUNK) != CHUNK) bench_fail("pread");
    t1 = bench_now_ns();
    bench_report(t0, t1, n);
    return 0;
}
