/* execve of a static binary: the program execs itself N times in a chain (each image
 * starts, then execs the next), and the last one reports the time per exec.
 * argv: ITERATIONS, or internally ITERATIONS REMAINING START_NS. */
#include <unistd.h>

#include "bench.h"

int main(int argc, char **argv) {
    char remaining[32], start[32];
    long n, left;
    uint64_t t0;
    if (argc == 4) {  /* a link of the chain */
        n = strtol(argv[1], NULL, 10);
        left = strtol(argv[2], NULL, 10);
        t0 = strtoull(argv[3], NULL, 10);
    } else {
        n = bench_iterations(argc, argv, 0, "");
        left = n;
        t0 = bench_now_ns();
    }
    if (left == 0) {
        bench_report(t0, bench_now_ns(), n);
        return 0;
    }
    snprintf(remaining, sizeof remaining, "%ld", left - 1);
    snprintf(start, sizeof start, "%llu", (unsigned long long)t0);
    char *args[] = {argv[0], argv[1], remaining, start, NULL};
    char *env[] = {NULL};
    execve("/proc/self/exe", args, env);
    execve(argv[0], args, env);  /* the sandbox has no /proc yet: the path we were run by */
    bench_fail("execve");
    return 1;
}
