/* Memory: mmap (anonymous, file private/shared), mprotect, munmap, mremap, brk, madvise,
 * mincore, msync, and EFAULT from system calls touching protected or unmapped memory. */
#include "common.h"
#include <sys/mman.h>

static long page;

/* Stop a section (not the program) when a mapping it builds on could not be made. */
#define NEED(p, what) do { if ((void *)(p) == MAP_FAILED) { \
        printf("%s failed: rest of section skipped\n", what); return; } } while (0)

static void mincore_show(const char *label, void *addr, long pages)
{
    unsigned char vec[64];
    if (mincore(addr, pages * page, vec) < 0) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: ", label);
    for (long i = 0; i < pages; i++)
        putchar('0' + (vec[i] & 1));
    putchar('\n');
}

static int all_zero(const unsigned char *p, long n)
{
    for (long i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void anonymous(void)
{
    section("anonymous");
    show("page size", page);
    unsigned char *p = show_ptr("mmap 4 pages", mmap(NULL, 4 * page, PROT_READ | PROT_WRITE,
                                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), MAP_FAILED);
    NEED(p, "mmap");
    CHECK("page aligned", ((long)p & (page - 1)) == 0);
    CHECK("zero filled", all_zero(p, 4 * page));
    mincore_show("mincore after zero reads", p, 4);
    p[0] = 1;
    p[2 * page + 5] = 2;
    mincore_show("mincore after touching 0 and 2", p, 4);
    for (long i = 0; i < 4 * page; i++)
        p[i] = (unsigned char)(i % 251);
    long sum = 0;
    for (long i = 0; i < 4 * page; i++)
        sum += p[i];
    show("checksum", sum);

    section("mprotect");
    show("mprotect page 1 read-only", mprotect(p + page, page, PROT_READ));
    show("reading read-only page", p[page + 7]);
    int fd = open("src", O_CREAT | O_RDWR | O_TRUNC, 0644);
    write(fd, "0123456789", 10);
    show("read() into read-only page", pread(fd, p + page, 10, 0));
    show("read() into page 0 (writable)", pread(fd, p, 10, 0));
    show_bytes("data", p, 10);
    show("read() spanning writable and read-only", pread(fd, p + page - 4, 10, 0));
    show_bytes("partial data", p + page - 4, 4);
    show("write() from read-only page", write(fd, p + page, 10));
    show("mprotect PROT_NONE", mprotect(p + page, page, PROT_NONE));
    show("write() from PROT_NONE page", pwrite(fd, p + page, 10, 0));
    show("mprotect back to RW", mprotect(p + page, page, PROT_READ | PROT_WRITE));
    show("data kept through PROT_NONE", p[page + 7]);
    show("mprotect unaligned", mprotect(p + 1, page, PROT_READ));
    show("mprotect bad prot", mprotect(p, page, 0x100));
    show("mprotect len 0", mprotect(p, 0, PROT_READ));
    close(fd);

    section("munmap");
    show("munmap page 2", munmap(p + 2 * page, page));
    mincore_show("mincore over hole", p, 4);
    mincore_show("mincore page 3", p + 3 * page, 1);
    show("munmap again (no-op)", munmap(p + 2 * page, page));
    show("munmap unaligned", munmap(p + 1, page));
    show("munmap len 0", munmap(p, 0));
    show("mprotect over hole", mprotect(p, 4 * page, PROT_READ));
    show("mincore unaligned", mincore(p + 1, page, (unsigned char[4]){0}));
    show("madvise over hole", madvise(p, 4 * page, MADV_NORMAL));
    int fd2 = open("src", O_RDONLY);
    show("read() into unmapped page", read(fd2, p + 2 * page, 10));
    close(fd2);
    show("munmap rest", munmap(p, 4 * page));
}

static void fixed_and_hints(void)
{
    section("MAP_FIXED");
    unsigned char *r = mmap(NULL, 8 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    NEED(r, "mmap");
    void *want = r + 2 * page;
    void *got = mmap(want, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK("MAP_FIXED at requested address", got == want);
    show("MAP_FIXED_NOREPLACE over mapping",
         mmap(want, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0) == MAP_FAILED ? -1 : 0);
    show("MAP_FIXED unaligned",
         mmap(r + 1, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED ? -1 : 0);
    show("mmap huge", mmap(NULL, 1ul << 47, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0);
    show("mmap MAP_SHARED_VALIDATE anonymous", mmap(NULL, page, PROT_READ, MAP_SHARED_VALIDATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED ? -1 : 0);
    show("mmap anon with bad fd is fine", mmap(NULL, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, 999, 0) == MAP_FAILED ? -1 : 0);
    show("mmap file with bad fd", mmap(NULL, page, PROT_READ, MAP_PRIVATE, 999, 0) == MAP_FAILED ? -1 : 0);
    show("munmap reservation", munmap(r, 8 * page));
}

static void remap_grow_shrink(void)
{
    section("mremap grow/shrink");
    unsigned char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    NEED(m, "mmap");
    memset(m, 'm', 2 * page);
    unsigned char *g = show_ptr("mremap grow maymove", mremap(m, 2 * page, 6 * page, MREMAP_MAYMOVE), MAP_FAILED);
    NEED(g, "mremap grow");
    CHECK("content preserved", g[0] == 'm' && g[2 * page - 1] == 'm');
    CHECK("new tail zero", all_zero(g + 2 * page, 4 * page));
    unsigned char *s = show_ptr("mremap shrink", mremap(g, 6 * page, page, 0), MAP_FAILED);
    NEED(s, "mremap shrink");
    CHECK("shrink in place", s == g);
    mincore_show("mincore after shrink", g, 1);
    mincore_show("mincore of released tail", g + page, 1);
    show("mremap bad flags", mremap(s, page, page, 0x100) == MAP_FAILED ? -1 : 0);
    show("mremap FIXED without MAYMOVE", mremap(s, page, page, MREMAP_FIXED, s + 8 * page) == MAP_FAILED ? -1 : 0);
    show("mremap unaligned", mremap(s + 1, page, page, 0) == MAP_FAILED ? -1 : 0);
    show("mremap new size 0", mremap(s, page, 0, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0);
    show("mremap same size", mremap(s, page, page, 0) == s ? 0 : -1);
    munmap(s, page);
    show("mremap unmapped", mremap(s, page, 2 * page, MREMAP_MAYMOVE) == MAP_FAILED ? -1 : 0);
}

static void remap_in_place(void)
{
    section("mremap in place");
    /* Growing in place into an occupied neighbour fails without MAYMOVE. */
    unsigned char *a = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    NEED(a, "mmap");
    show("mremap grow into neighbour", mremap(a, page, 2 * page, 0) == MAP_FAILED ? -1 : 0);
    munmap(a + page, 2 * page);
    show("mremap grow in place into free space", mremap(a, page, 2 * page, 0) == a ? 0 : -1);
    munmap(a, 3 * page);
}

static void remap_fixed(void)
{
    section("mremap fixed");
    unsigned char *a = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *dst = mmap(NULL, 4 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    NEED(a, "mmap");
    NEED(dst, "mmap");
    a[0] = 'f';
    void *f = mremap(a, 2 * page, 2 * page, MREMAP_MAYMOVE | MREMAP_FIXED, dst + page);
    NEED(f, "mremap MREMAP_FIXED");
    CHECK("MREMAP_FIXED lands at target", f == dst + page);
    CHECK("MREMAP_FIXED moved data", dst[page] == 'f');
    mincore_show("old place unmapped", a, 1);
    munmap(dst, 4 * page);
}

static void file_backed(void)
{
    section("file private");
    unsigned char buf[64];
    int fd = open("data", O_CREAT | O_RDWR | O_TRUNC, 0644);
    for (int i = 0; i < 3 * page; i++)
        buf[0] = 'A' + i % 26, write(fd, buf, 1);
    unsigned char *p = show_ptr("mmap private", mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0), MAP_FAILED);
    NEED(p, "mmap private");
    show_bytes("mapped data", p, 8);
    show_bytes("mapped page 2", p + 2 * page, 8);
    p[0] = 'x';
    pread(fd, buf, 4, 0);
    show_bytes("file unchanged by private write", buf, 4);
    pwrite(fd, "Q", 1, page);
    show_bytes("private mapping sees untouched page update", p + page, 2);
    show("MADV_DONTNEED private file", madvise(p, page, MADV_DONTNEED));
    show_bytes("private page reverted to file", p, 4);
    munmap(p, 3 * page);
    unsigned char *off = show_ptr("mmap offset 1 page", mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, page), MAP_FAILED);
    if (off != MAP_FAILED) {
        show_bytes("offset data", off, 4);
        munmap(off, page);
    }
    show("mmap unaligned offset", mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 1) == MAP_FAILED ? -1 : 0);

    section("file shared");
    unsigned char *s = show_ptr("mmap shared", mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), MAP_FAILED);
    NEED(s, "mmap shared");
    memcpy(s + 100, "SHARED", 6);
    show("msync MS_SYNC", msync(s, page, MS_SYNC));
    pread(fd, buf, 6, 100);
    show_bytes("file sees shared write", buf, 6);
    pwrite(fd, "WRITE", 5, page + 10);
    show_bytes("mapping sees file write", s + page + 10, 5);
    show("msync MS_ASYNC", msync(s, 3 * page, MS_ASYNC));
    show("msync MS_INVALIDATE", msync(s, page, MS_INVALIDATE));
    show("msync both sync flags", msync(s, page, MS_SYNC | MS_ASYNC));
    show("msync unaligned", msync(s + 1, page, MS_SYNC));
    show("msync bad flags", msync(s, page, 0x100));
    munmap(s, 3 * page);
    show("msync unmapped", msync(s, page, MS_SYNC));
    /* A second shared mapping of the same file sees the first one's writes. */
    unsigned char *s1 = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    unsigned char *s2 = mmap(NULL, page, PROT_READ, MAP_SHARED, fd, 0);
    NEED(s1, "second shared mmap");
    NEED(s2, "third shared mmap");
    s1[200] = '!';
    CHECK("two shared mappings coherent", s2[200] == '!');
    munmap(s1, page);
    munmap(s2, page);
    close(fd);

    section("file access modes");
    int ro = open("data", O_RDONLY);
    show("shared RW of O_RDONLY", mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, ro, 0) == MAP_FAILED ? -1 : 0);
    void *pw = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE, ro, 0);
    show("private RW of O_RDONLY", pw == MAP_FAILED ? -1 : 0);
    void *sr = mmap(NULL, page, PROT_READ, MAP_SHARED, ro, 0);
    show("shared RO of O_RDONLY", sr == MAP_FAILED ? -1 : 0);
    show("mprotect shared RO map to RW", mprotect(sr, page, PROT_READ | PROT_WRITE));
    close(ro);
    show("mapping outlives fd", sr == MAP_FAILED ? -1 : ((unsigned char *)sr)[1]);
    int wo = open("data", O_WRONLY);
    ro = open("data", O_RDONLY);
    show("MAP_SHARED_VALIDATE unknown flag",
         mmap(NULL, page, PROT_READ, MAP_SHARED_VALIDATE | 0x800000, ro, 0) == MAP_FAILED ? -1 : 0);
    close(ro);
    show("mmap of O_WRONLY", mmap(NULL, page, PROT_READ, MAP_PRIVATE, wo, 0) == MAP_FAILED ? -1 : 0);
    close(wo);
    int dfd = open(".", O_RDONLY);
    show("mmap of directory", mmap(NULL, page, PROT_READ, MAP_PRIVATE, dfd, 0) == MAP_FAILED ? -1 : 0);
    close(dfd);
}

static void heap(void)
{
    section("brk");
    char *start = (char *)syscall(SYS_brk, 0);
    char *cur = sbrk(0);
    CHECK("sbrk(0) == brk(0)", start == cur);
    char *grown = (char *)syscall(SYS_brk, cur + 100000);
    CHECK("brk grows", grown == cur + 100000);
    memset(cur, 'b', 100000);
    CHECK("heap writable", cur[99999] == 'b');
    char *shrunk = (char *)syscall(SYS_brk, cur + 10);
    CHECK("brk shrinks", shrunk == cur + 10);
    CHECK("kept below new break", cur[5] == 'b');
    char *again = (char *)syscall(SYS_brk, cur + 3 * page);
    CHECK("brk regrows", again == cur + 3 * page);
    CHECK("regrown area beyond old page is zero", cur[2 * page] == 0);
    char *low = (char *)syscall(SYS_brk, 4096);
    CHECK("brk below start refused (returns current)", low == cur + 3 * page);
    char *huge = (char *)syscall(SYS_brk, cur + (1l << 46));
    CHECK("huge brk refused (returns current)", huge == cur + 3 * page);
    void *m = malloc(1 << 20);
    CHECK("malloc 1 MiB", m != NULL);
    memset(m, 1, 1 << 20);
    free(m);
    void *small = malloc(100);
    CHECK("malloc small", small != NULL);
    free(small);
}

static void advice(void)
{
    section("madvise");
    unsigned char *p = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    NEED(p, "mmap");
    memset(p, 7, 2 * page);
    show("MADV_DONTNEED", madvise(p, page, MADV_DONTNEED));
    CHECK("anonymous page zeroed", all_zero(p, page));
    CHECK("other page kept", p[page] == 7);
    show("MADV_WILLNEED", madvise(p, 2 * page, MADV_WILLNEED));
    show("MADV_NORMAL", madvise(p, 2 * page, MADV_NORMAL));
    show("MADV_SEQUENTIAL", madvise(p, 2 * page, MADV_SEQUENTIAL));
    show("MADV_RANDOM", madvise(p, 2 * page, MADV_RANDOM));
    show("MADV_DONTFORK", madvise(p, page, MADV_DONTFORK));
    show("MADV_DOFORK", madvise(p, page, MADV_DOFORK));
    show("madvise bad advice", madvise(p, page, 12345));
    show("madvise unaligned", madvise(p + 1, page, MADV_NORMAL));
    show("madvise len 0", madvise(p, 0, MADV_NORMAL));
    munmap(p, 2 * page);
    show("madvise unmapped", madvise(p, page, MADV_NORMAL));
}

int main(void)
{
    test_init();
    page = sysconf(_SC_PAGESIZE);
    anonymous();
    fixed_and_hints();
    remap_grow_shrink();
    remap_in_place();
    remap_fixed();
    file_backed();
    heap();
    advice();
    return 0;
}
