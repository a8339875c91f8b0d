/*
 * Identity, capabilities, scheduling, prctl, resource usage and timers that need no
 * signal delivery -- one process, run as root.
 *
 * Every privilege change is undone before the next section (a saved uid of 0, or
 * KEEP_CAPS, brings root back), so the program stays single-process.  Capability sets
 * are printed only as relations: a container's root (the native side) may lack some
 * capabilities of the bounding set that the sandbox's root has.
 */
#include "common.h"
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>

#define CAP_FS_SET ((1ull << CAP_CHOWN) | (1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_DAC_READ_SEARCH) | \
                    (1ull << CAP_FOWNER) | (1ull << CAP_FSETID) | (1ull << CAP_LINUX_IMMUTABLE) |   \
                    (1ull << CAP_MKNOD) | (1ull << CAP_MAC_OVERRIDE))
#define BIT(c) (1ull << (c))

struct caps {
    unsigned long long e, p, i;
};

static struct caps getcaps(void)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    struct caps c = {0, 0, 0};
    if (syscall(SYS_capget, &h, d) == 0) {
        c.e = d[0].effective | (unsigned long long)d[1].effective << 32;
        c.p = d[0].permitted | (unsigned long long)d[1].permitted << 32;
        c.i = d[0].inheritable | (unsigned long long)d[1].inheritable << 32;
    }
    return c;
}

static long setcaps(unsigned long long e, unsigned long long p, unsigned long long i)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {
        {(unsigned)e, (unsigned)p, (unsigned)i}, {(unsigned)(e >> 32), (unsigned)(p >> 32), (unsigned)(i >> 32)}};
    return syscall(SYS_capset, &h, d);
}

static void ids(const char *label)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    int fsu = setfsuid(-1), fsg = setfsgid(-1);
    printf("%s: uid %d %d %d fs %d, gid %d %d %d fs %d\n", label, r, e, s, fsu, gr, ge, gs, fsg);
}

static void groups(void)
{
    gid_t g[8];
    int n = getgroups(8, g);
    printf("groups (%d):", n);
    for (int i = 0; i < n; i++)
        printf(" %d", g[i]);
    printf("\n");
}

static struct caps root_caps;

static void caps_rel(const char *label)
{
    struct caps c = getcaps();
    printf("%s: e==p %s, e==0 %s, p==root's %s, p==0 %s, i %#llx\n", label, c.e == c.p ? "yes" : "no",
           c.e == 0 ? "yes" : "no", c.p == root_caps.p ? "yes" : "no", c.p == 0 ? "yes" : "no", c.i);
}

static void identity(void)
{
    section("identity");
    ids("start");
    CHECK("root starts with e == p", root_caps.e == root_caps.p);
    CHECK("root holds CAP_SETUID, CAP_SYS_ADMIN, CAP_SYS_NICE",
          (root_caps.e & (BIT(CAP_SETUID) | BIT(CAP_SYS_ADMIN) | BIT(CAP_SYS_NICE))) ==
              (BIT(CAP_SETUID) | BIT(CAP_SYS_ADMIN) | BIT(CAP_SYS_NICE)));
    show("no inheritable caps", root_caps.i);

    section("groups");
    gid_t g[5] = {30, 10, 20, 10, 7};
    show("setgroups 5", setgroups(5, g));
    groups();
    show("setgroups invalid id", setgroups(1, (gid_t[]){(gid_t)-1}));
    show("setgroups too many", setgroups(65537, g));
    show("setgroups bad pointer", setgroups(2, (void *)8));
    show("getgroups too small", getgroups(2, g));
    show("setgroups none", setgroups(0, NULL));
    groups();

    section("gids");
    show("setresgid 1 2 3", setresgid(1, 2, 3));
    ids("after setresgid");
    show("setregid 4 -1", setregid(4, -1));
    ids("after setregid");
    show("setfsgid 9 (returns old)", setfsgid(9));
    ids("after setfsgid");
    show("setgid 0", setgid(0));
    ids("after setgid");
    show("setgid -1", setgid(-1));

    section("uids with a saved root");
    show("PR_SET_PDEATHSIG 9", prctl(PR_SET_PDEATHSIG, 9));
    show("setresuid 1000 1000 0", setresuid(1000, 1000, 0));
    ids("non-root");
    caps_rel("caps");
    int sig = -1;
    prctl(PR_GET_PDEATHSIG, &sig);
    show("pdeathsig cleared by the change", sig);
    show("dumpable after the change", prctl(PR_GET_DUMPABLE));
    show("setgroups without CAP_SETGID", setgroups(0, NULL));
    show("setuid 2000 (not ours)", setuid(2000));
    show("setreuid -1 0 (saved)", setreuid(-1, 0));
    ids("euid back to 0");
    caps_rel("caps");
    show("setreuid 0 -1", setreuid(0, -1));
    ids("all root");
    show("PR_SET_DUMPABLE 1", prctl(PR_SET_DUMPABLE, 1));

    section("setfsuid");
    show("setfsuid 1000 (returns old)", setfsuid(1000));
    struct caps c = getcaps();
    CHECK("file-system caps left the effective set", c.e == (root_caps.e & ~CAP_FS_SET));
    CHECK("permitted set untouched", c.p == root_caps.p);
    show("setfsuid 0", setfsuid(0));
    CHECK("file-system caps are back", getcaps().e == root_caps.e);
    ids("fs back");

    section("keepcaps");
    show("PR_GET_KEEPCAPS", prctl(PR_GET_KEEPCAPS));
    show("PR_SET_KEEPCAPS 2", prctl(PR_SET_KEEPCAPS, 2));
    show("PR_SET_KEEPCAPS 1", prctl(PR_SET_KEEPCAPS, 1));
    show("PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS));
    show("setresuid 1000 1000 1000", setresuid(1000, 1000, 1000));
    ids("all 1000");
    caps_rel("caps kept");
    show("setuid 0 without effective caps", setuid(0));
    struct caps kept = getcaps();
    show("raise effective from permitted", setcaps(kept.p, kept.p, 0));
    show("setresuid 0 0 0", setresuid(0, 0, 0));
    ids("root again");
    caps_rel("caps");
    show("PR_SET_KEEPCAPS 0", prctl(PR_SET_KEEPCAPS, 0));
}

/* The one change root cannot undo: every uid leaves 0.  Runs last. */
static void drop_root(void)
{
    section("leaving root for good");
    show("setreuid 1000 2000", setreuid(1000, 2000));
    ids("real 1000 effective 2000");
    caps_rel("caps");
    show("setreuid 3000 -1 (not ours)", setreuid(3000, -1));
    show("setresuid -1 -1 1000", setresuid(-1, -1, 1000));
    show("setresuid -1 -1 -1 (no-op)", setresuid(-1, -1, -1));
    ids("saved 1000");
    show("raise effective (none permitted)", setcaps(root_caps.p, root_caps.p, 0));
}

static void capabilities(void)
{
    section("capget and capset");
    struct __user_cap_header_struct h = {0x12345, 0};
    struct __user_cap_data_struct d[2];
    show("capget version probe (data NULL)", syscall(SYS_capget, &h, NULL));
    printf("preferred version: %#x\n", h.version);
    h.version = 0x12345;
    show("capget unknown version", syscall(SYS_capget, &h, d));
    h.version = _LINUX_CAPABILITY_VERSION_1;
    show("capget v1", syscall(SYS_capget, &h, d));
    CHECK("v1 has the low word", d[0].effective == (unsigned)root_caps.e);
    h.version = _LINUX_CAPABILITY_VERSION_3;
    h.pid = -1;
    show("capget pid -1", syscall(SYS_capget, &h, d));
    h.pid = getpid();
    show("capget own pid", syscall(SYS_capget, &h, d));
    h.pid = 0x7ffffff0;
    show("capget no such pid", syscall(SYS_capget, &h, d));
    show("capset no such pid", syscall(SYS_capset, &h, d));
    show("capget bad header", syscall(SYS_capget, (void *)8, d));
    show("capset effective 0", setcaps(0, root_caps.p, 0));
    caps_rel("no effective");
    show("sethostname without CAP_SYS_ADMIN", sethostname("x", 1));
    show("setuid 5 without CAP_SETUID", setuid(5));
    show("capset effective beyond permitted", setcaps(BIT(CAP_SYS_BOOT), 0, 0));
    show("capset effective back", setcaps(root_caps.p, root_caps.p, 0));
    caps_rel("restored");
    show("capset inheritable CAP_NET_BIND_SERVICE", setcaps(root_caps.p, root_caps.p, BIT(CAP_NET_BIND_SERVICE)));
    show("ambient raise", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
    show("ambient is set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
    show("ambient raise (not inheritable)", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
    show("ambient bad cap", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 99, 0, 0));
    show("ambient bad op", prctl(PR_CAP_AMBIENT, 9, 0, 0, 0));
    show("ambient lower", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_NET_BIND_SERVICE, 0, 0));
    show("ambient is set", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0));
    show("ambient clear all", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
    show("ambient clear all with args", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0));
    show("drop CAP_SYS_BOOT from permitted", setcaps(root_caps.e & ~BIT(CAP_SYS_BOOT), root_caps.p & ~BIT(CAP_SYS_BOOT), 0));
    show("take it back", setcaps(root_caps.e, root_caps.p, 0));
    root_caps = getcaps();

    section("bounding set and securebits");
    show("CAPBSET_READ CAP_SYS_BOOT", prctl(PR_CAPBSET_READ, CAP_SYS_BOOT));
    show("CAPBSET_READ 41", prctl(PR_CAPBSET_READ, 41));
    show("CAPBSET_DROP CAP_SYS_BOOT", prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT));
    show("CAPBSET_READ CAP_SYS_BOOT", prctl(PR_CAPBSET_READ, CAP_SYS_BOOT));
    show("CAPBSET_DROP 41", prctl(PR_CAPBSET_DROP, 41));
    show("inheritable outside the bounding set", setcaps(root_caps.e, root_caps.p, BIT(CAP_SYS_BOOT)));
    show("PR_SET_SECUREBITS NO_SETUID_FIXUP", prctl(PR_SET_SECUREBITS, 0x4));
    show("PR_GET_SECUREBITS", prctl(PR_GET_SECUREBITS));
    show("PR_SET_SECUREBITS unknown bit", prctl(PR_SET_SECUREBITS, 0x1000));
    show("setresuid 1000 1000 0", setresuid(1000, 1000, 0));
    caps_rel("caps without fixup");
    show("setresuid 0 0 0", setresuid(0, 0, 0));
    show("PR_SET_SECUREBITS 0", prctl(PR_SET_SECUREBITS, 0));
}

static void scheduling(void)
{
    section("scheduling");
    struct sched_param sp = {0};
    show("sched_getscheduler", sched_getscheduler(0));
    show("sched_getparam", sched_getparam(0, &sp));
    show("priority", sp.sched_priority);
    static const int policies[] = {SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, -1, 99};
    for (unsigned i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        printf("policy %d: ", policies[i]);
        show("max", sched_get_priority_max(policies[i]));
        printf("policy %d: ", policies[i]);
        show("min", sched_get_priority_min(policies[i]));
    }
    show("set BATCH", sched_setscheduler(0, SCHED_BATCH, &sp));
    show("get", sched_getscheduler(0));
    show("set IDLE", sched_setscheduler(0, SCHED_IDLE, &sp));
    show("get", sched_getscheduler(0));
    show("set BATCH|RESET_ON_FORK", sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &sp));
    show("get", sched_getscheduler(0));
    show("setparam keeps the policy", sched_setparam(0, &sp));
    show("get", sched_getscheduler(0));
    sp.sched_priority = 1;
    show("OTHER with priority 1", sched_setscheduler(0, SCHED_OTHER, &sp));
    sp.sched_priority = 0;
    show("FIFO with priority 0", sched_setscheduler(0, SCHED_FIFO, &sp));
    sp.sched_priority = 100;
    show("FIFO with priority 100", sched_setscheduler(0, SCHED_FIFO, &sp));
    show("policy -1", sched_setscheduler(0, -1, &sp));
    show("pid -1", sched_setscheduler(-1, SCHED_OTHER, &sp));
    show("NULL param", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
    show("bad param", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, (void *)8));
    show("no such pid", sched_setscheduler(0x7ffffff0, SCHED_OTHER, &sp));
    show("getscheduler no such pid", sched_getscheduler(0x7ffffff0));
    show("getparam NULL", syscall(SYS_sched_getparam, 0, NULL));
    sp.sched_priority = 0;
    show("back to OTHER", sched_setscheduler(0, SCHED_OTHER, &sp));
    show("get", sched_getscheduler(0));
    struct timespec ts;
    show_ok("rr_get_interval OTHER", sched_rr_get_interval(0, &ts));
    show("rr_get_interval pid -1", sched_rr_get_interval(-1, &ts));
    show("rr_get_interval bad pointer", syscall(SYS_sched_rr_get_interval, 0, (void *)8));

    long slack = prctl(PR_GET_TIMERSLACK);
    sp.sched_priority = 10;
    show("set RR 10", sched_setscheduler(0, SCHED_RR, &sp));
    show("get", sched_getscheduler(0));
    sp.sched_priority = -1;
    show("getparam", sched_getparam(0, &sp));
    show("priority", sp.sched_priority);
    show("rr_get_interval RR", sched_rr_get_interval(0, &ts));
    CHECK("RR time slice is positive", ts.tv_sec > 0 || ts.tv_nsec > 0);
    show("timer slack of a real-time thread", prctl(PR_GET_TIMERSLACK));
    show("PR_SET_TIMERSLACK ignored", prctl(PR_SET_TIMERSLACK, 1000));
    show("timer slack", prctl(PR_GET_TIMERSLACK));
    sp.sched_priority = 20;
    show("setparam 20", sched_setparam(0, &sp));
    sp.sched_priority = 0;
    sched_getparam(0, &sp);
    show("priority", sp.sched_priority);
    show("set FIFO 1", sched_setscheduler(0, SCHED_FIFO, &(struct sched_param){1}));
    show("rr_get_interval FIFO", sched_rr_get_interval(0, &ts));
    show("time slice", ts.tv_sec * 1000000000l + ts.tv_nsec);
    show("back to OTHER", sched_setscheduler(0, SCHED_OTHER, &(struct sched_param){0}));
    CHECK("timer slack restored", prctl(PR_GET_TIMERSLACK) == slack);

    section("nice");
    int nice0 = getpriority(PRIO_PROCESS, 0);
    show("setpriority 5", setpriority(PRIO_PROCESS, 0, 5));
    show("getpriority", getpriority(PRIO_PROCESS, 0));
    show("raw getpriority (20 - nice)", syscall(SYS_getpriority, PRIO_PROCESS, 0));
    show("setpriority 100 (clamped)", setpriority(PRIO_PROCESS, 0, 100));
    show("getpriority", getpriority(PRIO_PROCESS, 0));
    show("bad which", setpriority(7, 0, 0));
    show("no such pid", setpriority(PRIO_PROCESS, 0x7ffffff0, 0));
    show("setresuid 1000 1000 0", setresuid(1000, 1000, 0));
    struct rlimit rl;
    getrlimit(RLIMIT_NICE, &rl);
    if (rl.rlim_cur == 0)
        show("lowering nice without CAP_SYS_NICE", setpriority(PRIO_PROCESS, 0, -1));
    else
        printf("lowering nice without CAP_SYS_NICE: errno=EACCES\n");
    show("raising nice is allowed", setpriority(PRIO_PROCESS, 0, 19));
    show("setresuid 0 0 0", setresuid(0, 0, 0));
    show("back to the start", setpriority(PRIO_PROCESS, 0, nice0));
    CHECK("nice restored", getpriority(PRIO_PROCESS, 0) == nice0);
    show("sched_yield", sched_yield());
}

static void prctls(void)
{
    section("prctl");
    char name[32];
    memset(name, 'x', sizeof name);
    show("PR_SET_NAME long", prctl(PR_SET_NAME, "0123456789abcdefghij"));
    show("PR_GET_NAME", prctl(PR_GET_NAME, name));
    show_bytes("name", name, 17);
    show("PR_SET_NAME ident", prctl(PR_SET_NAME, "ident"));
    prctl(PR_GET_NAME, name);
    show_bytes("name", name, 16);
    show("PR_SET_NAME bad pointer", prctl(PR_SET_NAME, (void *)8));
    show("PR_GET_NAME bad pointer", prctl(PR_GET_NAME, (void *)8));
    int v = -1;
    show("PR_SET_PDEATHSIG 65", prctl(PR_SET_PDEATHSIG, 65));
    show("PR_SET_PDEATHSIG SIGTERM", prctl(PR_SET_PDEATHSIG, SIGTERM));
    show("PR_GET_PDEATHSIG", prctl(PR_GET_PDEATHSIG, &v));
    show("pdeathsig", v);
    show("PR_GET_PDEATHSIG bad pointer", prctl(PR_GET_PDEATHSIG, (void *)8));
    show("PR_SET_PDEATHSIG 0", prctl(PR_SET_PDEATHSIG, 0));
    show("PR_GET_DUMPABLE", prctl(PR_GET_DUMPABLE));
    show("PR_SET_DUMPABLE 2", prctl(PR_SET_DUMPABLE, 2));
    show("PR_SET_DUMPABLE 0", prctl(PR_SET_DUMPABLE, 0));
    show("PR_GET_DUMPABLE", prctl(PR_GET_DUMPABLE));
    show("PR_SET_DUMPABLE 1", prctl(PR_SET_DUMPABLE, 1));
    v = -1;
    show("PR_GET_CHILD_SUBREAPER", prctl(PR_GET_CHILD_SUBREAPER, &v));
    show("subreaper", v);
    show("PR_SET_CHILD_SUBREAPER 5", prctl(PR_SET_CHILD_SUBREAPER, 5));
    prctl(PR_GET_CHILD_SUBREAPER, &v);
    show("subreaper", v);
    show("PR_SET_CHILD_SUBREAPER 0", prctl(PR_SET_CHILD_SUBREAPER, 0));
    int *orig = NULL, *got = NULL, mine = 0;
    show("PR_GET_TID_ADDRESS", prctl(PR_GET_TID_ADDRESS, &orig));
    show("set_tid_address returns the tid", syscall(SYS_set_tid_address, &mine) == getpid());
    prctl(PR_GET_TID_ADDRESS, &got);
    CHECK("PR_GET_TID_ADDRESS reads it back", got == &mine);
    syscall(SYS_set_tid_address, orig);
    prctl(PR_GET_TID_ADDRESS, &got);
    CHECK("and the original is back", got == orig);
    show("PR_GET_TID_ADDRESS bad pointer", prctl(PR_GET_TID_ADDRESS, (void *)8));
    long slack = prctl(PR_GET_TIMERSLACK);
    show("PR_SET_TIMERSLACK 1000", prctl(PR_SET_TIMERSLACK, 1000));
    show("PR_GET_TIMERSLACK", prctl(PR_GET_TIMERSLACK));
    show("PR_SET_TIMERSLACK 0 (default)", prctl(PR_SET_TIMERSLACK, 0));
    CHECK("default timer slack is back", prctl(PR_GET_TIMERSLACK) == slack);
    show("PR_GET_THP_DISABLE", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    show("PR_SET_THP_DISABLE 1", prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
    show("PR_GET_THP_DISABLE", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
    show("PR_SET_THP_DISABLE extra arg", prctl(PR_SET_THP_DISABLE, 0, 1, 0, 0));
    show("PR_SET_THP_DISABLE 0", prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0));
    show("PR_SET_SECCOMP mode 0", prctl(PR_SET_SECCOMP, 0));
    show("unknown option", prctl(9999));
    show("PR_GET_NO_NEW_PRIVS", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    show("PR_GET_NO_NEW_PRIVS extra arg", prctl(PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0));
    show("PR_SET_NO_NEW_PRIVS 2", prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0));
    show("PR_SET_NO_NEW_PRIVS 1", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
    show("PR_GET_NO_NEW_PRIVS", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
}

static long long tv_ns(struct timeval tv)
{
    return tv.tv_sec * 1000000000ll + tv.tv_usec * 1000ll;
}

static void usage(void)
{
    section("getrusage and times");
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    volatile unsigned long x = 0;
    do {
        for (int i = 0; i < 2000000; i++)
            x += i;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    } while ((t1.tv_sec - t0.tv_sec) * 1000000000ll + (t1.tv_nsec - t0.tv_nsec) < 50000000ll);
    struct rusage self, thread, children;
    show("RUSAGE_SELF", getrusage(RUSAGE_SELF, &self));
    struct timespec cpu;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
    long long total = tv_ns(self.ru_utime) + tv_ns(self.ru_stime);
    long long clock = cpu.tv_sec * 1000000000ll + cpu.tv_nsec;
    CHECK("user + system >= 50 ms", total >= 50000000ll);
    CHECK("user + system agrees with the CPU clock within 100 ms", llabs(total - clock) < 100000000ll);
    CHECK("mostly user time", tv_ns(self.ru_utime) > tv_ns(self.ru_stime));
    CHECK("maxrss > 0", self.ru_maxrss > 0);
    CHECK("minor faults > 0", self.ru_minflt > 0);
    show("RUSAGE_THREAD", getrusage(RUSAGE_THREAD, &thread));
    CHECK("thread time > 0", tv_ns(thread.ru_utime) + tv_ns(thread.ru_stime) > 0);
    show("RUSAGE_CHILDREN", getrusage(RUSAGE_CHILDREN, &children));
    show("children utime", tv_ns(children.ru_utime));
    show("children stime", tv_ns(children.ru_stime));
    show("children maxrss", children.ru_maxrss);
    show("bad who", getrusage(7, &self));
    show("bad pointer", syscall(SYS_getrusage, RUSAGE_SELF, (void *)8));
    struct tms tms;
    CHECK("times() counts ticks", times(&tms) > 0);
    CHECK("tms_utime > 0", tms.tms_utime + tms.tms_stime > 0);
    show("tms_cutime", tms.tms_cutime);
    show("tms_cstime", tms.tms_cstime);
}

static long long ts_ns(struct timespec ts)
{
    return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void timers(void)
{
    section("posix timers (no expiry)");
    struct sigevent none = {.sigev_notify = SIGEV_NONE};
    int id = -1;
    show("timer_create MONOTONIC", syscall(SYS_timer_create, CLOCK_MONOTONIC, NULL, &id));
    show("id", id);
    show("timer_create REALTIME SIGEV_NONE", syscall(SYS_timer_create, CLOCK_REALTIME, &none, &id));
    show("id", id);
    struct itimerspec its = {{1, 500}, {100, 0}}, old, cur;
    show("timer_settime relative 100 s", syscall(SYS_timer_settime, 1, 0, &its, &old));
    show("old interval", ts_ns(old.it_interval));
    show("old value", ts_ns(old.it_value));
    show("timer_gettime", syscall(SYS_timer_gettime, 1, &cur));
    show("interval", ts_ns(cur.it_interval));
    CHECK("value within (99 s, 100 s]", ts_ns(cur.it_value) > 99000000000ll && ts_ns(cur.it_value) <= 100000000000ll);
    show("timer_getoverrun", syscall(SYS_timer_getoverrun, 1));
    /* (disarming is checked on the SIGALRM timer: Linux keeps reporting a disarmed
       SIGEV_NONE timer's old expiry) */
    its = (struct itimerspec){{0, 0}, {100, 0}};
    show("timer_settime 0 for 100 s", syscall(SYS_timer_settime, 0, 0, &its, NULL));
    its.it_value.tv_sec = 0;
    show("timer_settime disarm", syscall(SYS_timer_settime, 0, 0, &its, &old));
    CHECK("old value was armed", ts_ns(old.it_value) > 99000000000ll);
    syscall(SYS_timer_gettime, 0, &cur);
    show("disarmed value", ts_ns(cur.it_value));
    show("disarmed interval", ts_ns(cur.it_interval));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    its = (struct itimerspec){{0, 0}, {now.tv_sec + 50, now.tv_nsec}};
    show("timer_settime absolute +50 s", syscall(SYS_timer_settime, 1, TIMER_ABSTIME, &its, NULL));
    syscall(SYS_timer_gettime, 1, &cur);
    CHECK("absolute value within (49 s, 50 s]", ts_ns(cur.it_value) > 49000000000ll && ts_ns(cur.it_value) <= 50000000000ll);
    its.it_value.tv_nsec = 1000000000;
    show("timer_settime bad nsec", syscall(SYS_timer_settime, 1, 0, &its, NULL));
    show("timer_settime NULL", syscall(SYS_timer_settime, 1, 0, NULL, NULL));
    show("timer_settime no such timer", syscall(SYS_timer_settime, 99, 0, &cur, NULL));
    show("timer_gettime bad pointer", syscall(SYS_timer_gettime, 1, (void *)8));
    show("timer_delete 0", syscall(SYS_timer_delete, 0));
    show("timer_delete 0 again", syscall(SYS_timer_delete, 0));
    show("timer_getoverrun deleted", syscall(SYS_timer_getoverrun, 0));
    show("timer_create MONOTONIC_RAW", syscall(SYS_timer_create, CLOCK_MONOTONIC_RAW, NULL, &id));
    show("timer_create bad clock", syscall(SYS_timer_create, 12345, NULL, &id));
    struct sigevent bad = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = 65};
    show("timer_create bad signal", syscall(SYS_timer_create, CLOCK_MONOTONIC, &bad, &id));
    bad.sigev_notify = 3;
    show("timer_create bad notify", syscall(SYS_timer_create, CLOCK_MONOTONIC, &bad, &id));
    show("timer_create PROCESS_CPUTIME", syscall(SYS_timer_create, CLOCK_PROCESS_CPUTIME_ID, &none, &id));
    show("id (failed creations used ids too)", id);
    show("timer_delete", syscall(SYS_timer_delete, id));
    show("timer_delete 1", syscall(SYS_timer_delete, 1));

    section("interval timers (no expiry)");
    struct itimerval iv = {{0, 0}, {100, 0}}, ov;
    show("setitimer REAL 100 s", setitimer(ITIMER_REAL, &iv, &ov));
    show("old value", tv_ns(ov.it_value));
    getitimer(ITIMER_REAL, &ov);
    CHECK("REAL within (99 s, 100 s]", tv_ns(ov.it_value) > 99000000000ll && tv_ns(ov.it_value) <= 100000000000ll);
    show("alarm(0) returns the seconds left", alarm(0));
    show("alarm(0) again", alarm(0));
    show("alarm(30)", alarm(30));
    show("alarm(0)", alarm(0));
    iv = (struct itimerval){{2, 0}, {0, 0}};
    show("setitimer REAL interval only", setitimer(ITIMER_REAL, &iv, NULL));
    getitimer(ITIMER_REAL, &ov);
    show("REAL interval (dropped)", tv_ns(ov.it_interval));
    show("setitimer PROF interval only", setitimer(ITIMER_PROF, &iv, NULL));
    getitimer(ITIMER_PROF, &ov);
    show("PROF interval (kept)", tv_ns(ov.it_interval));
    show("PROF value", tv_ns(ov.it_value));
    iv = (struct itimerval){{0, 0}, {100, 0}};
    show("setitimer VIRTUAL 100 s", setitimer(ITIMER_VIRTUAL, &iv, NULL));
    getitimer(ITIMER_VIRTUAL, &ov);
    CHECK("VIRTUAL starts a tick late: (100 s, 101 s)", tv_ns(ov.it_value) > 100000000000ll && tv_ns(ov.it_value) < 101000000000ll);
    iv = (struct itimerval){{0, 0}, {0, 0}};
    show("stop VIRTUAL", setitimer(ITIMER_VIRTUAL, &iv, &ov));
    CHECK("old VIRTUAL value > 99 s", tv_ns(ov.it_value) > 99000000000ll);
    show("stop PROF", setitimer(ITIMER_PROF, &iv, NULL));
    iv.it_value.tv_usec = 1000000;
    show("setitimer bad usec", setitimer(ITIMER_REAL, &iv, NULL));
    show("setitimer bad which", setitimer(5, &iv, NULL));
    show("getitimer bad which", getitimer(5, &ov));
    show("getitimer bad pointer", syscall(SYS_getitimer, ITIMER_REAL, (void *)8));
}

int main(void)
{
    test_init();
    root_caps = getcaps();
    identity();
    capabilities();
    scheduling();
    prctls();
    usage();
    timers();
    drop_root();
    return 0;
}
