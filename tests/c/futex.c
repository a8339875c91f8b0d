/* futex(2) from one thread: every answer that does not need a second thread to observe.
 *
 * Waits that must fail (EAGAIN, ETIMEDOUT, EINVAL, EFAULT, ENOSYS), wakes and requeues with
 * nobody waiting (0), and FUTEX_WAKE_OP's effect on the second word for each operation and
 * comparison.  PI operations are left out on purpose: natively an uncontended LOCK_PI,
 * TRYLOCK_PI and LOCK_PI2 succeed and UNLOCK_PI answers 0/EPERM, while the sandbox answers
 * ENOSYS for all of them.  Multi-threaded behaviour (who is woken, requeue counts, robust
 * lists, clear_child_tid) is covered by tests/unit/test_futex.py until threads land. */
#include "common.h"
#include <linux/futex.h>
#include <sys/mman.h>
#include <time.h>

#define FUTEX_FD_OP 2 /* removed from Linux in 2.6.26 */

static long fx(void *uaddr, int op, unsigned val, const void *timeout_or_val2, void *uaddr2,
               unsigned val3)
{
    return syscall(SYS_futex, uaddr, op, val, timeout_or_val2, uaddr2, val3);
}

/* the val2 argument of REQUEUE/CMP_REQUEUE/WAKE_OP travels in the timeout register */
#define VAL2(n) ((const void *)(unsigned long)(unsigned)(n))

static void *unmapped_page(void)
{
    void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(p, 4096);
    return p;
}

static void waits(void)
{
    static unsigned word = 5;
    struct timespec tiny = {0, 1}, zero = {0, 0}, bad_nsec = {0, 1000000000}, neg = {-1, 0};
    section("wait");
    show("WAIT mismatch", fx(&word, FUTEX_WAIT, 4, NULL, NULL, 0));
    show("WAIT_PRIVATE mismatch", fx(&word, FUTEX_WAIT_PRIVATE, 6, NULL, NULL, 0));
    show("WAIT high bits of val ignored",
         syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 5ul | 1ul << 32, &zero, NULL, 0));
    show("WAIT 1ns", fx(&word, FUTEX_WAIT_PRIVATE, 5, &tiny, NULL, 0));
    show("WAIT shared 1ns", fx(&word, FUTEX_WAIT, 5, &tiny, NULL, 0));
    show("WAIT 0s", fx(&word, FUTEX_WAIT, 5, &zero, NULL, 0));
    show("WAIT mismatch with timeout", fx(&word, FUTEX_WAIT, 1, &tiny, NULL, 0));
    show("WAIT nsec 1e9", fx(&word, FUTEX_WAIT, 5, &bad_nsec, NULL, 0));
    show("WAIT negative sec", fx(&word, FUTEX_WAIT, 5, &neg, NULL, 0));
    show("WAIT timeout EFAULT", fx(&word, FUTEX_WAIT, 5, (void *)8, NULL, 0));
    show("WAIT misaligned", fx((char *)&word + 1, FUTEX_WAIT, 5, &tiny, NULL, 0));
    show("WAIT misaligned bad timespec", fx((char *)&word + 2, FUTEX_WAIT, 5, &neg, NULL, 0));
    show("WAIT unmapped", fx(unmapped_page(), FUTEX_WAIT_PRIVATE, 0, &tiny, NULL, 0));
    show("WAIT NULL", fx(NULL, FUTEX_WAIT, 0, &tiny, NULL, 0));
    show("WAIT|CLOCK_REALTIME", fx(&word, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 5, &tiny, NULL, 0));
    show("WAIT|CLOCK_REALTIME no timeout", fx(&word, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 5, NULL, NULL, 0));
    show("WAIT|CLOCK_REALTIME bad timespec", fx(&word, FUTEX_WAIT | FUTEX_CLOCK_REALTIME, 5, &neg, NULL, 0));
}

/* An absolute time 1 ms from now on `clock` (a FUTEX_WAIT_BITSET deadline). */
static struct timespec in_1ms(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    t.tv_nsec += 1000000;
    if (t.tv_nsec >= 1000000000) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000;
    }
    return t;
}

static void bitset_waits(void)
{
    static unsigned word = 9;
    struct timespec soon, past = {0, 1}, neg = {-1, 0};
    section("wait_bitset");
    soon = in_1ms(CLOCK_MONOTONIC);
    show("WAIT_BITSET mismatch", fx(&word, FUTEX_WAIT_BITSET, 8, NULL, NULL, FUTEX_BITSET_MATCH_ANY));
    show("WAIT_BITSET past", fx(&word, FUTEX_WAIT_BITSET_PRIVATE, 9, &past, NULL, 1));
    show("WAIT_BITSET past mismatch", fx(&word, FUTEX_WAIT_BITSET_PRIVATE, 1, &past, NULL, 1));
    show("WAIT_BITSET monotonic +1ms", fx(&word, FUTEX_WAIT_BITSET, 9, &soon, NULL, 0x10));
    soon = in_1ms(CLOCK_REALTIME);
    show("WAIT_BITSET realtime +1ms",
         fx(&word, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 9, &soon, NULL, FUTEX_BITSET_MATCH_ANY));
    show("WAIT_BITSET realtime past",
         fx(&word, FUTEX_WAIT_BITSET_PRIVATE | FUTEX_CLOCK_REALTIME, 9, &past, NULL, 3));
    show("WAIT_BITSET bitset 0", fx(&word, FUTEX_WAIT_BITSET, 9, &past, NULL, 0));
    show("WAIT_BITSET bitset 0 bad timespec", fx(&word, FUTEX_WAIT_BITSET, 9, &neg, NULL, 0));
    show("WAIT_BITSET bitset 0 misaligned", fx((char *)&word + 1, FUTEX_WAIT_BITSET, 9, NULL, NULL, 0));
    show("WAKE_BITSET no waiters", fx(&word, FUTEX_WAKE_BITSET, 1, NULL, NULL, 0x10));
    show("WAKE_BITSET bitset 0", fx(&word, FUTEX_WAKE_BITSET, 1, NULL, NULL, 0));
    show("WAKE_BITSET|CLOCK_REALTIME", fx(&word, FUTEX_WAKE_BITSET | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 1));
}

static void wakes(void)
{
    static unsigned word;
    void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *gone = unmapped_page(); /* last: no later mapping may land in the hole */
    section("wake");
    show("WAKE no waiters", fx(&word, FUTEX_WAKE, 1, NULL, NULL, 0));
    show("WAKE_PRIVATE no waiters", fx(&word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0));
    show("WAKE 0", fx(&word, FUTEX_WAKE, 0, NULL, NULL, 0));
    show("WAKE misaligned", fx((char *)&word + 2, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    show("WAKE_PRIVATE unmapped", fx(gone, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    show("WAKE shared unmapped", fx(gone, FUTEX_WAKE, 1, NULL, NULL, 0));
    show("WAKE_PRIVATE above user space", fx((void *)0xffff800000000000ul, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    show("WAKE_PRIVATE read-only", fx(ro, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0));
    show("WAKE|CLOCK_REALTIME", fx(&word, FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, NULL, NULL, 0));
    show("FUTEX_FD", fx(&word, FUTEX_FD_OP, 0, NULL, NULL, 0));
    show("unknown command 14", fx(&word, 14, 0, NULL, NULL, 0));
    show("unknown command bits", fx(&word, 0x201, 0, NULL, NULL, 0));
    munmap(ro, 4096);
}

static void requeues(void)
{
    static unsigned a = 3, b;
    void *gone = unmapped_page();
    section("requeue");
    show("REQUEUE no waiters", fx(&a, FUTEX_REQUEUE, 1, VAL2(1), &b, 0));
    show("REQUEUE_PRIVATE no waiters", fx(&a, FUTEX_REQUEUE_PRIVATE, 0, VAL2(0), &b, 0));
    show("REQUEUE nr_wake -1", fx(&a, FUTEX_REQUEUE, -1, VAL2(1), &b, 0));
    show("REQUEUE nr_requeue -1", fx(&a, FUTEX_REQUEUE, 1, VAL2(-1), &b, 0));
    show("REQUEUE misaligned uaddr2", fx(&a, FUTEX_REQUEUE, 1, VAL2(1), (char *)&b + 1, 0));
    show("REQUEUE_PRIVATE unmapped uaddr", fx(gone, FUTEX_REQUEUE_PRIVATE, 1, VAL2(1), &b, 0));
    show("REQUEUE shared unmapped uaddr", fx(gone, FUTEX_REQUEUE, 1, VAL2(1), &b, 0));
    show("CMP_REQUEUE equal", fx(&a, FUTEX_CMP_REQUEUE, 1, VAL2(1), &b, 3));
    show("CMP_REQUEUE_PRIVATE mismatch", fx(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(1), &b, 4));
    show("CMP_REQUEUE mismatch, nr_wake -1", fx(&a, FUTEX_CMP_REQUEUE, -1, VAL2(1), &b, 4));
    show("CMP_REQUEUE misaligned", fx((char *)&a + 1, FUTEX_CMP_REQUEUE, 1, VAL2(1), &b, 4));
    show("CMP_REQUEUE_PRIVATE unmapped uaddr", fx(gone, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(1), &b, 3));
    show("CMP_REQUEUE_PRIVATE unmapped uaddr2", fx(&a, FUTEX_CMP_REQUEUE_PRIVATE, 1, VAL2(1), gone, 3));
    show("CMP_REQUEUE shared unmapped uaddr2", fx(&a, FUTEX_CMP_REQUEUE, 1, VAL2(1), gone, 3));
    show("CMP_REQUEUE same word", fx(&a, FUTEX_CMP_REQUEUE, 1, VAL2(1), &a, 3));
}

static void wake_op_case(const char *label, unsigned start, unsigned encoded)
{
    static unsigned w1, w2;
    char line[96];
    w2 = start;
    long r = fx(&w1, FUTEX_WAKE_OP_PRIVATE, 1, VAL2(1), &w2, encoded);
    snprintf(line, sizeof line, "WAKE_OP %s", label);
    show(line, r);
    printf("  word %#x -> %#x\n", start, w2);
}

static void wake_ops(void)
{
    static unsigned w1;
    void *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *gone = unmapped_page(); /* last: no later mapping may land in the hole */
    section("wake_op");
    wake_op_case("SET 9", 5, FUTEX_OP(FUTEX_OP_SET, 9, FUTEX_OP_CMP_EQ, 5));
    wake_op_case("ADD 3", 5, FUTEX_OP(FUTEX_OP_ADD, 3, FUTEX_OP_CMP_EQ, 5));
    wake_op_case("ADD -1 wraps", 0, FUTEX_OP(FUTEX_OP_ADD, 0xfff, FUTEX_OP_CMP_NE, 0));
    wake_op_case("OR 0x30", 0xf, FUTEX_OP(FUTEX_OP_OR, 0x30, FUTEX_OP_CMP_LT, 0));
    wake_op_case("ANDN 3", 0xf, FUTEX_OP(FUTEX_OP_ANDN, 3, FUTEX_OP_CMP_LE, 0xf));
    wake_op_case("XOR 0xff", 0xf, FUTEX_OP(FUTEX_OP_XOR, 0xff, FUTEX_OP_CMP_GT, 0));
    wake_op_case("SET 1<<4", 0, FUTEX_OP(FUTEX_OP_SET | FUTEX_OP_OPARG_SHIFT, 4, FUTEX_OP_CMP_GE, 0));
    wake_op_case("OR 1<<31", 1, FUTEX_OP(FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT, 31, FUTEX_OP_CMP_EQ, 1));
    wake_op_case("OR shift 40 (masked)", 0, FUTEX_OP(FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT, 40, FUTEX_OP_CMP_EQ, 0));
    wake_op_case("OR shift -1 (masked)", 0, FUTEX_OP(FUTEX_OP_OR | FUTEX_OP_OPARG_SHIFT, 0xfff, FUTEX_OP_CMP_EQ, 0));
    wake_op_case("ANDN 1<<0", 3, FUTEX_OP(FUTEX_OP_ANDN | FUTEX_OP_OPARG_SHIFT, 0, FUTEX_OP_CMP_NE, 3));
    wake_op_case("XOR 1<<1", 3, FUTEX_OP(FUTEX_OP_XOR | FUTEX_OP_OPARG_SHIFT, 1, FUTEX_OP_CMP_LT, 4));
    wake_op_case("ADD 1<<2", 3, FUTEX_OP(FUTEX_OP_ADD | FUTEX_OP_OPARG_SHIFT, 2, FUTEX_OP_CMP_GT, 2));
    for (unsigned op = 5; op < 8; op++) {
        char label[32];
        snprintf(label, sizeof label, "op %u", op);
        wake_op_case(label, 5, FUTEX_OP(op, 1, FUTEX_OP_CMP_EQ, 0));
    }
    for (unsigned cmp = 0; cmp < 16; cmp++) {
        char label[32];
        snprintf(label, sizeof label, "ADD 1, cmp %u", cmp);
        wake_op_case(label, 0xffffffff, FUTEX_OP(FUTEX_OP_ADD, 1, cmp, 0));
    }
    show("WAKE_OP misaligned uaddr2", fx(&w1, FUTEX_WAKE_OP, 1, VAL2(1), (char *)&w1 + 2, 0));
    show("WAKE_OP misaligned uaddr", fx((char *)&w1 + 2, FUTEX_WAKE_OP, 1, VAL2(1), &w1, 0));
    show("WAKE_OP unmapped uaddr2", fx(&w1, FUTEX_WAKE_OP_PRIVATE, 1, VAL2(1), gone, 0));
    show("WAKE_OP unmapped uaddr2, op 7", fx(&w1, FUTEX_WAKE_OP_PRIVATE, 1, VAL2(1), gone, FUTEX_OP(7, 0, 0, 0)));
    show("WAKE_OP read-only uaddr2", fx(&w1, FUTEX_WAKE_OP_PRIVATE, 1, VAL2(1), ro, 0));
    show("WAKE_OP shared read-only uaddr2", fx(&w1, FUTEX_WAKE_OP, 1, VAL2(1), ro, 0));
    show("WAKE_OP_PRIVATE unmapped uaddr", fx(gone, FUTEX_WAKE_OP_PRIVATE, 1, VAL2(1), &w1, 0));
    show("WAKE_OP shared unmapped uaddr", fx(gone, FUTEX_WAKE_OP, 1, VAL2(1), &w1, 0));
    show("WAKE_OP|CLOCK_REALTIME", fx(&w1, FUTEX_WAKE_OP | FUTEX_CLOCK_REALTIME, 1, VAL2(1), &w1, 0));
    munmap(ro, 4096);
}

static void shared_memory(void)
{
    struct timespec tiny = {0, 1};
    section("shared mappings");
    unsigned *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    show_ptr("mmap shared anonymous", anon, MAP_FAILED);
    anon[1] = 7;
    show("WAIT shared anon mismatch", fx(&anon[1], FUTEX_WAIT, 6, &tiny, NULL, 0));
    show("WAIT shared anon 1ns", fx(&anon[1], FUTEX_WAIT, 7, &tiny, NULL, 0));
    show("WAKE shared anon", fx(&anon[1], FUTEX_WAKE, 1, NULL, NULL, 0));
    show("WAKE_OP shared anon", fx(&anon[1], FUTEX_WAKE_OP, 1, VAL2(1), &anon[2],
                                   FUTEX_OP(FUTEX_OP_ADD, 2, FUTEX_OP_CMP_EQ, 0)));
    printf("  anon[2] = %u\n", anon[2]);
    munmap(anon, 4096);

    char page[4096] = {0};
    int fd = open("futex-file", O_CREAT | O_RDWR | O_TRUNC, 0600);
    show("write file", write(fd, page, sizeof page) == sizeof page ? 0 : -1);
    unsigned *file = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    show_ptr("mmap shared file", file, MAP_FAILED);
    file[3] = 11;
    show("WAIT shared file mismatch", fx(&file[3], FUTEX_WAIT, 10, &tiny, NULL, 0));
    show("WAIT shared file 1ns", fx(&file[3], FUTEX_WAIT, 11, &tiny, NULL, 0));
    show("WAKE shared file", fx(&file[3], FUTEX_WAKE, 1, NULL, NULL, 0));
    show("CMP_REQUEUE shared file", fx(&file[3], FUTEX_CMP_REQUEUE, 1, VAL2(1), &file[4], 11));
    show("WAKE_OP shared file", fx(&file[3], FUTEX_WAKE_OP, 1, VAL2(1), &file[4],
                                   FUTEX_OP(FUTEX_OP_XOR, 0x55, FUTEX_OP_CMP_NE, 0)));
    printf("  file[4] = %#x\n", file[4]);
    munmap(file, 4096);
    unsigned stored = 0;
    pread(fd, &stored, sizeof stored, 16);
    printf("  file offset 16 after unmap = %#x\n", stored);
    close(fd);
    unlink("futex-file");
}

int main(void)
{
    test_init();
    waits();
    bitset_waits();
    wakes();
    requeues();
    wake_ops();
    shared_memory();
    return 0;
}
