/* memfd_create and file seals: flags and names, what fstat and /proc show, I/O, MAP_SHARED
 * mappings shared across fork, and F_ADD_SEALS/F_GET_SEALS with every seal enforced on
 * write, truncate, mmap, mprotect and chmod (EPERM, EBUSY, EACCES as Linux answers). */
#include "common.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

static int mfd(const char *name, unsigned flags) { return (int)syscall(SYS_memfd_create, name, flags); }

static void show_seals(const char *label, int fd)
{
    int s = fcntl(fd, F_GET_SEALS);
    if (s == -1) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: %#x%s%s%s%s%s%s\n", label, s, s & F_SEAL_SEAL ? " SEAL" : "",
           s & F_SEAL_SHRINK ? " SHRINK" : "", s & F_SEAL_GROW ? " GROW" : "",
           s & F_SEAL_WRITE ? " WRITE" : "", s & F_SEAL_FUTURE_WRITE ? " FUTURE_WRITE" : "",
           s & F_SEAL_EXEC ? " EXEC" : "");
}

static void show_stat(const char *label, int fd)
{
    struct stat st;
    if (fstat(fd, &st)) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: mode %o nlink %ld size %lld\n", label, (unsigned)st.st_mode, (long)st.st_nlink,
           (long long)st.st_size);
}

static void show_link(int fd)
{
    char link[512] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (readlink(path, link, sizeof link - 1) < 0)
        printf("readlink: errno=%s\n", ename(errno));
    else
        printf("link %s\n", link);
}

static void show_map(const char *label, void *p)
{
    show_ptr(label, p, MAP_FAILED);
    if (p != MAP_FAILED)
        munmap(p, 4096);
}

/* Is there a line of /proc/self/maps naming `name`? */
static int mapped_as(const char *name)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strstr(line, name))
            found = 1;
    fclose(f);
    return found;
}

int main(void)
{
    test_init();

    section("create");
    int m = mfd("hello", MFD_CLOEXEC);
    CHECK("memfd_create", m >= 0);
    show("F_GETFL", fcntl(m, F_GETFL));
    show("F_GETFD", fcntl(m, F_GETFD));
    show_stat("fstat", m);
    show_link(m);
    show("unknown flag", mfd("x", 0x100));
    show("huge page size without MFD_HUGETLB", mfd("x", 21U << 26));
    show("MFD_EXEC with MFD_NOEXEC_SEAL", mfd("x", MFD_EXEC | MFD_NOEXEC_SEAL));
    show("bad name pointer", syscall(SYS_memfd_create, (void *)16, 0));
    char name[300];
    memset(name, 'n', sizeof name);
    name[249] = 0;
    int r = mfd(name, 0);
    CHECK("a 249-byte name", r >= 0);
    close(r);
    name[249] = 'n';
    name[250] = 0;
    show("a 250-byte name", mfd(name, 0));
    r = mfd("", 0);
    CHECK("an empty name", r >= 0);
    show_link(r);
    close(r);
    r = mfd("a/b c", 0);
    CHECK("a name with a slash and a space", r >= 0);
    show_link(r);
    close(r);
    r = mfd("huge", MFD_HUGETLB);
    printf("MFD_HUGETLB: %s\n", r >= 0 || errno == ENOSYS || errno == EINVAL ? "ok or unsupported"
                                                                              : ename(errno));
    if (r >= 0)
        close(r);

    section("I/O");
    show("write", write(m, "hello memfd", 11));
    show("lseek end", lseek(m, 0, SEEK_END));
    char buf[64] = {0};
    show("pread", pread(m, buf, sizeof buf - 1, 0));
    printf("data %s\n", buf);
    show("ftruncate 5", ftruncate(m, 5));
    show_stat("fstat", m);
    show("ftruncate 8192", ftruncate(m, 8192));
    show_stat("fstat", m);
    show("fchmod 0640", fchmod(m, 0640));
    show_stat("fstat", m);

    section("shared mapping across fork");
    char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);
    show_ptr("mmap MAP_SHARED", p, MAP_FAILED);
    printf("maps names it: %d\n", mapped_as("/memfd:hello (deleted)"));
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        strcpy(p + 100, "written by the child");
        _exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    printf("parent sees: %s\n", p + 100);
    memset(buf, 0, sizeof buf);
    pread(m, buf, 20, 100);
    printf("pread sees: %s\n", buf);
    pwrite(m, "via pwrite", 10, 200);
    printf("mapping sees: %s\n", p + 200);
    munmap(p, 4096);
    close(m);

    section("sealing not allowed");
    int n = mfd("plain", 0);
    show_seals("F_GET_SEALS", n);
    show("F_ADD_SEALS WRITE", fcntl(n, F_ADD_SEALS, F_SEAL_WRITE));
    show("F_ADD_SEALS 0", fcntl(n, F_ADD_SEALS, 0));
    close(n);
    int pp[2];
    pipe(pp);
    show("F_GET_SEALS on a pipe", fcntl(pp[0], F_GET_SEALS));
    show("F_ADD_SEALS on a pipe's write end", fcntl(pp[1], F_ADD_SEALS, F_SEAL_WRITE));
    show("F_ADD_SEALS on a pipe's read end", fcntl(pp[0], F_ADD_SEALS, F_SEAL_WRITE));
    close(pp[0]);
    close(pp[1]);
    int shm = open("/dev/shm/memfd-test", O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (shm >= 0) {
        show_seals("F_GET_SEALS of a /dev/shm file", shm);
        show("F_ADD_SEALS on it", fcntl(shm, F_ADD_SEALS, F_SEAL_WRITE));
        close(shm);
        unlink("/dev/shm/memfd-test");
    }

    section("F_SEAL_WRITE");
    int s = mfd("sealed", MFD_ALLOW_SEALING);
    show_seals("F_GET_SEALS", s);
    ftruncate(s, 8192);
    show("F_ADD_SEALS unknown bit", fcntl(s, F_ADD_SEALS, 0x40));
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0);
    show("F_ADD_SEALS WRITE with a writable shared mapping", fcntl(s, F_ADD_SEALS, F_SEAL_WRITE));
    munmap(p, 4096);
    p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, s, 0);
    show("... with a read-only shared mapping of an O_RDWR fd", fcntl(s, F_ADD_SEALS, F_SEAL_WRITE));
    munmap(p, 4096);
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, s, 0);
    show("... with a private mapping", fcntl(s, F_ADD_SEALS, F_SEAL_WRITE));
    show_seals("F_GET_SEALS", s);
    p[0] = 'x'; /* a private copy is still writable */
    munmap(p, 4096);
    show("write", write(s, "x", 1));
    show("pwrite", pwrite(s, "x", 1, 0));
    show("write of nothing", write(s, "x", 0));
    show_map("mmap PROT_WRITE MAP_SHARED", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, s, 0));
    show_map("mmap PROT_WRITE MAP_PRIVATE", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, s, 0));
    p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, s, 0);
    show_ptr("mmap PROT_READ MAP_SHARED", p, MAP_FAILED);
    show("mprotect it PROT_WRITE", mprotect(p, 4096, PROT_READ | PROT_WRITE));
    munmap(p, 4096);
    show("ftruncate grows", ftruncate(s, 16384));
    show("ftruncate shrinks", ftruncate(s, 4096));
    show("F_ADD_SEALS SEAL", fcntl(s, F_ADD_SEALS, F_SEAL_SEAL));
    show("F_ADD_SEALS after SEAL", fcntl(s, F_ADD_SEALS, F_SEAL_SHRINK));
    show("F_ADD_SEALS 0 after SEAL", fcntl(s, F_ADD_SEALS, 0));
    show_seals("F_GET_SEALS", s);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", s);
    int ro = open(path, O_RDONLY);
    CHECK("reopen read-only through /proc/self/fd", ro >= 0);
    show_seals("F_GET_SEALS of the read-only fd", ro);
    show("F_ADD_SEALS on the read-only fd", fcntl(ro, F_ADD_SEALS, 0));
    close(ro);
    close(s);

    section("F_SEAL_SHRINK and F_SEAL_GROW");
    int g = mfd("grow", MFD_ALLOW_SEALING);
    show("write 3", write(g, "abc", 3));
    show("F_ADD_SEALS SHRINK", fcntl(g, F_ADD_SEALS, F_SEAL_SHRINK));
    show("ftruncate 1", ftruncate(g, 1));
    show("ftruncate 3", ftruncate(g, 3));
    show("ftruncate 4096", ftruncate(g, 4096));
    show("F_ADD_SEALS GROW", fcntl(g, F_ADD_SEALS, F_SEAL_GROW));
    show("ftruncate 8192", ftruncate(g, 8192));
    show("pwrite inside", pwrite(g, "xyz", 3, 100));
    show("pwrite at the end", pwrite(g, "xyz", 3, 4096));
    show("pwrite across the end", pwrite(g, "xyz", 3, 4094));
    char big[8192];
    memset(big, 'b', sizeof big);
    ftruncate(g, 4096);
    show("8192-byte pwrite from 0 (one page fits)", pwrite(g, big, sizeof big, 0));
    show_stat("fstat", g);
    show_map("mmap PROT_WRITE MAP_SHARED", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, g, 0));
    show_seals("F_GET_SEALS", g);
    close(g);

    section("F_SEAL_FUTURE_WRITE");
    int fw = mfd("future", MFD_ALLOW_SEALING);
    ftruncate(fw, 4096);
    p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fw, 0);
    show("F_ADD_SEALS FUTURE_WRITE with a writable mapping", fcntl(fw, F_ADD_SEALS, F_SEAL_FUTURE_WRITE));
    strcpy(p, "old mapping still writes");
    memset(buf, 0, sizeof buf);
    pread(fw, buf, 24, 0);
    printf("pread: %s\n", buf);
    show("write", write(fw, "x", 1));
    show_map("new mmap PROT_WRITE MAP_SHARED", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fw, 0));
    show_map("new mmap PROT_WRITE MAP_PRIVATE", mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fw, 0));
    show("ftruncate", ftruncate(fw, 8192));
    munmap(p, 4096);
    close(fw);

    section("F_SEAL_EXEC");
    int ne = mfd("noexec", MFD_NOEXEC_SEAL);
    show_stat("MFD_NOEXEC_SEAL", ne);
    show_seals("F_GET_SEALS", ne);
    show("fchmod 0755", fchmod(ne, 0755));
    show("fchmod 0600", fchmod(ne, 0600));
    show("write", write(ne, "ok", 2));
    close(ne);
    int ex = mfd("exec", MFD_EXEC);
    show_stat("MFD_EXEC", ex);
    show_seals("F_GET_SEALS", ex);
    close(ex);
    int x = mfd("x", MFD_ALLOW_SEALING);
    show("F_ADD_SEALS EXEC on mode 0777", fcntl(x, F_ADD_SEALS, F_SEAL_EXEC));
    show_seals("F_GET_SEALS (implies the write seals)", x);
    show("fchmod 0644", fchmod(x, 0644));
    show("write", write(x, "x", 1));
    close(x);
    x = mfd("x", MFD_ALLOW_SEALING);
    show("fchmod 0644", fchmod(x, 0644));
    show("F_ADD_SEALS EXEC on mode 0644", fcntl(x, F_ADD_SEALS, F_SEAL_EXEC));
    show_seals("F_GET_SEALS", x);
    show("fchmod 0600", fchmod(x, 0600));
    show("fchmod 0700", fchmod(x, 0700));
    show("write", write(x, "x", 1));
    close(x);
    return 0;
}
