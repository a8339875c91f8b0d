/* Path lookup and file-description life cycle: open(PATH, O_RDONLY) + close, per operation. */
#include <fcntl.h>
#include <unistd.h>

#include "bench.h"

static void once(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) bench_fail(path);
    if (close(fd) != 0) bench_fail("close");
}

int main(int argc, char **argv) {
    long n = bench_iterations(argc, argv, 1, "PATH");
    const char *path = argv[2];
    uint64_t t0, t1;
    for (long i = bench_warmup(n); i > 0; i--) once(path);
    t0 = bench_now_ns();
    for (long i = n; i > 0; i--) once(path);
    t1 = bench_now_ns();
    bench_report(t0, t1, n);
    return 0;
}
