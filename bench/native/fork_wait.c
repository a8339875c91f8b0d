/* Process life cycle: fork, the child _exits at once, the parent waits for it. */
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static void one(void) {
    pid_t pid = fork();
    if (pid < 0) bench_fail("fork");
    if (pid == 0) _exit(0);
    int status;
    if (waitpid(pid, &status, 0) != pid || status != 0) bench_fail("waitpid");
}

int main(int argc, char **argv) {
    long n = bench_iterations(argc, argv, 0, "");
    for (long i = bench_warmup(n); i > 0; i--) one();
    uint64_t t0 = bench_now_ns();
    for (long i = n; i > 0; i--) one();
    bench_report(t0, bench_now_ns(), n);
    return 0;
}
