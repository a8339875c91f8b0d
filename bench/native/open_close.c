/* Path lookup and file-description life cycle: open(PATH, O_RDONLY) + close, per operation. */
#include <fcntl.h>
#include <unistd.h>

#include "bench.h"

static void once(void *arg) {
    const char *path = arg;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) bench_fail(path);
    if (close(fd) != 0) bench_fail("close");
}

int main(int argc, char **argv) {
    long n = bench_iterations(argc, argv, 1, "PATH");
    bench_loop(n, once, argv[2]);
    return 0;
}
