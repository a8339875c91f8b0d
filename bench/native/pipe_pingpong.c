/* Pipe round trip between two processes: one byte there, one byte back. */
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

int main(int argc, char **argv) {
    long n = bench_iterations(argc, argv, 0, "");
    long total = n + bench_warmup(n);
    int there[2], back[2];
    char c = 'x';
    if (pipe(there) || pipe(back)) bench_fail("pipe");
    pid_t pid = fork();
    if (pid < 0) bench_fail("fork");
    if (pid == 0) {
        for (long i = 0; i < total; i++)
            if (read(there[0], &c, 1) != 1 || write(back[1], &c, 1) != 1) _exit(1);
        _exit(0);
    }
    uint64_t t0 = 0;
    for (long i = 0; i < total; i++) {
        if (i == total - n) t0 = bench_now_ns();
        if (write(there[1], &c, 1) != 1 || read(back[0], &c, 1) != 1) bench_fail("round trip");
    }
    uint64_t t1 = bench_now_ns();
    int status;
    waitpid(pid, &status, 0);
    bench_report(t0, t1, n);
    return 0;
}
