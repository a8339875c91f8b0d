/* Shared helpers of the micro-benchmarks: each program runs one operation N times,
 * times the loop itself with clock_gettime(CLOCK_MONOTONIC) (so process start-up and
 * sandbox boot are not counted), and prints the nanoseconds per operation on stdout. */
#ifndef SNAKEVISOR_BENCH_H
#define SNAKEVISOR_BENCH_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static inline uint64_t bench_now_ns(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        perror("clock_gettime");
        exit(2);
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* argv[1]: iterations (a positive integer); `nargs` more arguments must follow it. */
static inline long bench_iterations(int argc, char **argv, int nargs, const char *usage) {
    char *end;
    long n;
    if (argc != 2 + nargs) {
        fprintf(stderr, "usage: %s ITERATIONS %s\n", argv[0], usage);
        exit(2);
    }
    errno = 0;
    n = strtol(argv[1], &end, 10);
    if (errno || *end || n <= 0) {
        fprintf(stderr, "%s: bad iteration count '%s'\n", argv[0], argv[1]);
        exit(2);
    }
    return n;
}

/* A tenth of the run (at least one operation) warms caches and the sandbox's lazy paths. */
static inline long bench_warmup(long n) { return n / 10 + 1; }

static inline void bench_report(uint64_t start_ns, uint64_t end_ns, long n) {
    printf("%.1f\n", (double)(end_ns - start_ns) / (double)n);
}

static inline void bench_fail(const char *what) {
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
    exit(1);
}

/* The usual main loop: op(arg) bench_warmup(n) times untimed, then n times timed, and the
 * report.  Static inline so that op is inlined into the loop as a direct call would be. */
static inline void bench_loop(long n, void (*op)(void *), void *arg) {
    for (long i = bench_warmup(n); i > 0; i--) op(arg);
    uint64_t t0 = bench_now_ns();
    for (long i = n; i > 0; i--) op(arg);
    bench_report(t0, bench_now_ns(), n);
}

#endif
