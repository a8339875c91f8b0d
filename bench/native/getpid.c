/* Raw system call cost: syscall(SYS_getpid), which no libc or vDSO can answer in user space. */
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

int main(int argc, char **argv) {
    long n = bench_iterations(argc, argv, 0, "");
    uint64_t t0, t1;
    for (long i = bench_warmup(n); i > 0; i--)
        if (syscall(SYS_getpid) < 0) bench_fail("getpid");
    t0 = bench_now_ns();
    for (long i = n; i > 0; i--) syscall(SYS_getpid);
    t1 = bench_now_ns();
    bench_report(t0, t1, n);
    return 0;
}
