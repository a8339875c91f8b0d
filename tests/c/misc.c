/* Process-wide calls: uname, clocks and sleeps, ids, umask, rlimits, getrandom, sysinfo,
 * sched_getaffinity, arch_prctl.  Values that legitimately differ between the host and
 * the sandbox (hostname, pid, boot time) are printed only as relations. */
#include "common.h"
#include <sched.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <asm/prctl.h>
#include <time.h>
#include <elf.h>
#include <link.h>
#include <sys/auxv.h>

static long long ns(const struct timespec *t)
{
    return t->tv_sec * 1000000000ll + t->tv_nsec;
}

static long long now(clockid_t c)
{
    struct timespec t;
    clock_gettime(c, &t);
    return ns(&t);
}

static void names(void)
{
    struct utsname u;
    section("uname");
    show("uname", uname(&u));
    printf("sysname: %s\n", u.sysname);
    printf("machine: %s\n", u.machine);
    CHECK("release starts with a digit", u.release[0] >= '0' && u.release[0] <= '9');
    CHECK("nodename non-empty", u.nodename[0] != 0);
    CHECK("version non-empty", u.version[0] != 0);
    char host[256];
    show("gethostname", gethostname(host, sizeof host));
    CHECK("gethostname == uname nodename", strcmp(host, u.nodename) == 0);
}

static void clocks(void)
{
    section("clocks");
    static const struct { clockid_t id; const char *name; } ids[] = {
        {CLOCK_REALTIME, "REALTIME"},         {CLOCK_MONOTONIC, "MONOTONIC"},
        {CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW"}, {CLOCK_REALTIME_COARSE, "REALTIME_COARSE"},
        {CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE"}, {CLOCK_BOOTTIME, "BOOTTIME"},
        {CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME"}, {CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME"},
    };
    struct timespec t;
    for (unsigned i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char label[64];
        snprintf(label, sizeof label, "clock_gettime %s", ids[i].name);
        show_ok(label, clock_gettime(ids[i].id, &t));
        snprintf(label, sizeof label, "raw clock_gettime %s", ids[i].name);
        show_ok(label, syscall(SYS_clock_gettime, ids[i].id, &t));
    }
    show("clock_getres MONOTONIC ns", clock_getres(CLOCK_MONOTONIC, &t) == 0 ? t.tv_nsec : -1);
    show("clock_getres REALTIME ns", clock_getres(CLOCK_REALTIME, &t) == 0 ? t.tv_nsec : -1);
    show("clock_getres bad clock", clock_getres(12345, &t));

    long long prev = now(CLOCK_MONOTONIC);
    int backwards = 0;
    for (int i = 0; i < 2000; i++) {
        long long cur = i % 2 ? now(CLOCK_MONOTONIC) : (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t), ns(&t));
        if (cur < prev)
            backwards++;
        prev = cur;
    }
    CHECK("monotonic never goes back (vDSO and syscall mixed)", backwards == 0);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    long long rt = now(CLOCK_REALTIME);
    long long gt = tv.tv_sec * 1000000000ll + tv.tv_usec * 1000ll;
    CHECK("gettimeofday agrees with CLOCK_REALTIME within 1s", llabs(rt - gt) < 1000000000ll);
    syscall(SYS_gettimeofday, &tv, NULL);
    gt = tv.tv_sec * 1000000000ll + tv.tv_usec * 1000ll;
    CHECK("raw gettimeofday agrees within 1s", llabs(now(CLOCK_REALTIME) - gt) < 1000000000ll);
    time_t tt = time(NULL);
    CHECK("time() agrees within 1s", llabs(tt - rt / 1000000000ll) <= 1);
    time_t t2 = 0;
    long r = syscall(SYS_time, &t2);
    CHECK("raw time() agrees", llabs(r - tt) <= 1 && r == t2);
    CHECK("realtime is after 2020", rt / 1000000000ll > 1577836800ll);
    CHECK("boottime >= monotonic", now(CLOCK_BOOTTIME) >= now(CLOCK_MONOTONIC) - 1000000);
    CHECK("process cputime > 0", now(CLOCK_PROCESS_CPUTIME_ID) > 0);
    struct timezone tz;
    show("gettimeofday with tz", gettimeofday(&tv, (void *)&tz));

    section("sleeps");
    struct timespec req = {0, 10000000}, rem = {9, 9};
    long long t0 = now(CLOCK_MONOTONIC);
    show("nanosleep 10ms", nanosleep(&req, &rem));
    long long t1 = now(CLOCK_MONOTONIC);
    CHECK("slept at least 10ms", t1 - t0 >= 10000000ll);
    CHECK("slept less than 1s", t1 - t0 < 1000000000ll);
    t0 = now(CLOCK_MONOTONIC);
    show("clock_nanosleep relative 10ms", clock_nanosleep(CLOCK_MONOTONIC, 0, &req, NULL));
    CHECK("clock_nanosleep slept at least 10ms", now(CLOCK_MONOTONIC) - t0 >= 10000000ll);
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    long long target = ns(&abs) + 20000000ll;
    abs.tv_sec = target / 1000000000ll;
    abs.tv_nsec = target % 1000000000ll;
    show("clock_nanosleep absolute +20ms", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL));
    CHECK("woke after absolute deadline", now(CLOCK_MONOTONIC) >= target);
    show("clock_nanosleep absolute in the past", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &(struct timespec){1, 0}, NULL));
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_nsec += 5000000;
    if (abs.tv_nsec >= 1000000000) abs.tv_sec++, abs.tv_nsec -= 1000000000;
    show("clock_nanosleep REALTIME absolute", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &abs, NULL));
    show("nanosleep 0", nanosleep(&(struct timespec){0, 0}, NULL));
    show("clock_nanosleep bad clock (returns errno)", clock_nanosleep(12345, 0, &req, NULL));
    show("clock_nanosleep bad nsec (returns errno)", clock_nanosleep(CLOCK_MONOTONIC, 0, &(struct timespec){0, 1000000000}, NULL));
}

static void ids(void)
{
    section("ids");
    printf("uid=%d euid=%d gid=%d egid=%d\n", getuid(), geteuid(), getgid(), getegid());
    uid_t r, e, s;
    show("getresuid", getresuid(&r, &e, &s));
    CHECK("getresuid agrees", r == getuid() && e == geteuid());
    gid_t gr, ge, gs;
    show("getresgid", getresgid(&gr, &ge, &gs));
    CHECK("getresgid agrees", gr == getgid() && ge == getegid());
    CHECK("gettid == getpid (single thread)", syscall(SYS_gettid) == getpid());
    CHECK("raw getpid == getpid", syscall(SYS_getpid) == getpid());
    CHECK("getppid not self", getppid() != getpid());
    CHECK("getpgid(0) works", getpgid(0) > 0 || errno == ENOSYS);
}

static void masks_and_limits(void)
{
    section("umask");
    show("umask initial (set by test_init)", umask(077));
    show("umask previous", umask(01777));
    show("umask keeps 0777 bits only", umask(022));

    section("rlimits");
    struct rlimit rl, old;
    show("getrlimit NOFILE", getrlimit(RLIMIT_NOFILE, &rl));
    CHECK("soft <= hard", rl.rlim_cur <= rl.rlim_max);
    CHECK("soft >= 64", rl.rlim_cur >= 64);
    struct rlimit lim = {64, rl.rlim_max};
    show("setrlimit NOFILE 64", setrlimit(RLIMIT_NOFILE, &lim));
    getrlimit(RLIMIT_NOFILE, &rl);
    show("soft now", rl.rlim_cur);
    int last = -1, fd;
    while ((fd = open(".", O_RDONLY)) >= 0)
        last = fd;
    printf("open until failure: last=%d errno=%s\n", last, ename(errno));
    show("dup2 to 64", dup2(0, 64));
    show("dup2 to 63", dup2(0, 63));
    show("F_DUPFD 64", fcntl(0, F_DUPFD, 64));
    for (int i = 3; i < 64; i++)
        close(i);
    struct rlimit nl = {32, lim.rlim_max};
    show("prlimit set+get", prlimit(0, RLIMIT_NOFILE, &nl, &old));
    show("prlimit old soft", old.rlim_cur);
    show("prlimit own pid", prlimit(getpid(), RLIMIT_NOFILE, NULL, &old));
    show("prlimit soft", old.rlim_cur);
    show("raw getrlimit", syscall(SYS_getrlimit, RLIMIT_NOFILE, &old));
    show("raw getrlimit soft", old.rlim_cur);
    show("getrlimit STACK", getrlimit(RLIMIT_STACK, &rl));
    CHECK("stack soft limit > 0", rl.rlim_cur > 0);
    show("getrlimit AS", getrlimit(RLIMIT_AS, &rl));
    show("getrlimit CORE", getrlimit(RLIMIT_CORE, &rl));
    struct rlimit core = {0, rl.rlim_max};
    show("setrlimit CORE 0", setrlimit(RLIMIT_CORE, &core));
    getrlimit(RLIMIT_CORE, &rl);
    show("core soft", rl.rlim_cur);
    show("setrlimit bad resource", setrlimit(999, &core));
    show("getrlimit bad resource", getrlimit(999, &rl));
    struct rlimit inv = {10, 5};
    show("setrlimit soft > hard", setrlimit(RLIMIT_CORE, &inv));
}

static void randomness(void)
{
    section("getrandom");
    unsigned char a[32], b[32];
    show("getrandom 32", getrandom(a, sizeof a, 0));
    show("getrandom 32 again", getrandom(b, sizeof b, 0));
    CHECK("two draws differ", memcmp(a, b, sizeof a) != 0);
    show("GRND_NONBLOCK", getrandom(a, 16, GRND_NONBLOCK));
    show("GRND_RANDOM", getrandom(a, 16, GRND_RANDOM));
    show("GRND_INSECURE", getrandom(a, 16, 0x4));
    show("GRND_INSECURE|GRND_RANDOM", getrandom(a, 16, 0x4 | GRND_RANDOM));
    show("length 0", getrandom(a, 0, 0));
    show("bad flags", getrandom(a, 16, 0x100));
    static unsigned char big[1 << 20];
    long n = getrandom(big, sizeof big, 0);
    CHECK("large request returns a positive count", n > 0);
    int zeros = 0;
    for (int i = 0; i < 4096; i++)
        zeros += big[i] == 0;
    CHECK("large request is random", zeros < 100);
}

static void system_info(void)
{
    section("sysinfo");
    struct sysinfo si;
    show("sysinfo", sysinfo(&si));
    CHECK("uptime > 0", si.uptime > 0);
    CHECK("totalram > 0", si.totalram > 0);
    CHECK("freeram <= totalram", si.freeram <= si.totalram);
    CHECK("mem_unit >= 1", si.mem_unit >= 1);
    CHECK("procs >= 1", si.procs >= 1);
    CHECK("loads sane", si.loads[0] < (1ul << 16) * 10000);

    section("sched_getaffinity");
    cpu_set_t set;
    CPU_ZERO(&set);
    show_ok("sched_getaffinity", sched_getaffinity(0, sizeof set, &set));
    CHECK("at least one cpu", CPU_COUNT(&set) >= 1);
    long raw = syscall(SYS_sched_getaffinity, 0, sizeof set, &set);
    CHECK("raw returns a multiple of 8", raw > 0 && raw % 8 == 0);
    show("sched_getaffinity size 0", syscall(SYS_sched_getaffinity, 0, 0, &set));
    show("sched_getaffinity size 7", syscall(SYS_sched_getaffinity, 0, 7, &set));
    CHECK("nprocs >= 1", sysconf(_SC_NPROCESSORS_ONLN) >= 1);

    section("arch_prctl");
    unsigned long fs = 0;
    show("ARCH_GET_FS", syscall(SYS_arch_prctl, ARCH_GET_FS, &fs));
    CHECK("fs base set by libc", fs != 0);
    unsigned long fs_reg;
    __asm__ volatile("mov %%fs:0, %0" : "=r"(fs_reg));
    CHECK("fs:0 points at the TCB", fs_reg == fs);
    show("ARCH_GET_GS", syscall(SYS_arch_prctl, ARCH_GET_GS, &fs));
    show("arch_prctl bad code", syscall(SYS_arch_prctl, 0x9999, &fs));
    show("set_tid_address returns tid", syscall(SYS_set_tid_address, NULL) == getpid());
}

extern char _start[];

/* The loader's work as the program sees it: auxv entries, argv and the environment. */
static void loader(int argc, char **argv)
{
    section("auxv");
    show("AT_PAGESZ", getauxval(AT_PAGESZ));
    show("AT_PHENT", getauxval(AT_PHENT));
    show("AT_CLKTCK", getauxval(AT_CLKTCK));
    show("AT_SECURE", getauxval(AT_SECURE));
    CHECK("AT_ENTRY is _start", getauxval(AT_ENTRY) == (unsigned long)_start);
    const ElfW(Phdr) *ph = (const void *)getauxval(AT_PHDR);
    unsigned long phnum = getauxval(AT_PHNUM);
    int has_interp = 0, has_phdr_load = 0;
    CHECK("AT_PHDR and AT_PHNUM set", ph != NULL && phnum > 0);
    for (unsigned long i = 0; ph && i < phnum; i++) {
        has_interp |= ph[i].p_type == PT_INTERP;
        has_phdr_load |= ph[i].p_type == PT_LOAD;
    }
    CHECK("program headers readable at AT_PHDR", has_phdr_load);
    CHECK("AT_BASE set exactly when there is an interpreter", (getauxval(AT_BASE) != 0) == has_interp);
    CHECK("AT_UID/EUID/GID/EGID match", getauxval(AT_UID) == getuid() && getauxval(AT_EUID) == geteuid() &&
          getauxval(AT_GID) == getgid() && getauxval(AT_EGID) == getegid());
    const unsigned char *rnd = (const void *)getauxval(AT_RANDOM);
    int nonzero = 0;
    for (int i = 0; rnd && i < 16; i++)
        nonzero += rnd[i] != 0;
    CHECK("AT_RANDOM points at random bytes", rnd != NULL && nonzero >= 8);
    const char *plat = (const char *)getauxval(AT_PLATFORM);
    printf("AT_PLATFORM: %s\n", plat ? plat : "(none)");
    CHECK("AT_HWCAP set", getauxval(AT_HWCAP) != 0);
    const char *execfn = (const char *)getauxval(AT_EXECFN);
    CHECK("AT_EXECFN is the path executed", execfn && strcmp(execfn, argv[0]) == 0);
    CHECK("AT_SYSINFO_EHDR: a vDSO is mapped", getauxval(AT_SYSINFO_EHDR) != 0);
    const unsigned char *vdso = (const void *)getauxval(AT_SYSINFO_EHDR);
    CHECK("vDSO starts with an ELF header", vdso && memcmp(vdso, ELFMAG, SELFMAG) == 0);

    section("argv and environment");
    show("argc", argc);
    CHECK("argv[argc] is NULL", argv[argc] == NULL);
    extern char **environ;
    CHECK("environ follows argv", environ == argv + argc + 1);
    int n = 0;
    for (char **e = environ; *e; e++)
        n += strchr(*e, '=') != NULL;
    CHECK("every environment entry has '='", environ[n] == NULL);
}

int main(int argc, char **argv)
{
    test_init();
    loader(argc, argv);
    names();
    clocks();
    ids();
    masks_and_limits();
    randomness();
    system_info();
    return 0;
}
