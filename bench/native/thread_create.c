/* Thread life cycle: pthread_create of a thread that returns at once, then pthread_join. */
#include <pthread.h>

#include "bench.h"

static void *nothing(void *arg) { return arg; }

static void one(void *unused) {
    (void)unused;
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) != 0) bench_fail("pthread_create");
    if (pthread_join(t, NULL) != 0) bench_fail("pthread_join");
}

int main(int argc, char **argv) {
    bench_loop(bench_iterations(argc, argv, 0, ""), one, NULL);
    return 0;
}
