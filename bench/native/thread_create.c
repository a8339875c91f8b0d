/* Thread life cycle: pthread_create of a thread that returns at once, then pthread_join. */
#include <pthread.h>

#include "bench.h"

static void *nothing(void *arg) { return arg; }

static void one(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0) bench_fail("pthread_create");
    if (pthread_join(t, NULL) != 0) bench_fail("pthread_join");
}

int main(int argc, char **argv) {
    long n = bench_iterations(argc, argv, 0, "");
    for (long i = bench_warmup(n); i > 0; i--) one();
    uint64_t t0 = bench_now_ns();
    for (long i = n; i > 0; i--) one();
    bench_report(t0, bench_now_ns(), n);
    return 0;
}
