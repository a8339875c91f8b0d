/* Process life cycle: fork, the child _exits at once, the parent waits for it. */
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static void one(void *unused) {
    (void)unused;
    pid_t pid = fork();
    if (pid < 0) bench_fail("fork");
    if (pid == 0) _exit(0);
    int status;
    if (waitpid(pid, &status, 0) != pid || status != 0) bench_fail("waitpid");
}

int main(int argc, char **argv) {
    bench_loop(bench_iterations(argc, argv, 0, ""), one, NULL);
    return 0;
}
