/*
 * System V shared memory: shmget's creation rules and limits, shmat at a chosen or any
 * address (SHM_RND, SHM_RDONLY), the same bytes seen across fork, shm_nattch counting
 * attaches (fork included), IPC_SET, and IPC_RMID destroying at the last detach.
 * Keys are IPC_PRIVATE, so nothing collides with other programs; every segment is removed.
 */
#include "common.h"
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>

static long nattch(int id)
{
    struct shmid_ds ds;
    if (shmctl(id, IPC_STAT, &ds) == -1)
        return -errno;
    return (long)ds.shm_nattch;
}

/* The /proc/sysvipc/shm header and the fields of the row of `id` that do not depend on
 * the host (key perms size nattch uid gid cuid cgid; rss only as "some"). */
static void proc_row(int id)
{
    char line[512];
    FILE *f = fopen("/proc/sysvipc/shm", "r");
    if (!f) {
        printf("/proc/sysvipc/shm: errno=%s\n", ename(errno));
        return;
    }
    if (fgets(line, sizeof line, f))
        printf("shm header: %s", line);
    while (fgets(line, sizeof line, f)) {
        unsigned long v[16];
        int n = 0;
        for (char *s = strtok(line, " \n"); s && n < 16; s = strtok(NULL, " \n"))
            v[n++] = strtoul(s, NULL, 10);
        if (n == 16 && (int)v[1] == id)
            printf("shm row: key %lu perms %lu size %lu nattch %lu ids %lu %lu %lu %lu rss %s\n",
                   v[0], v[2], v[3], v[6], v[7], v[8], v[9], v[10], v[14] ? "some" : "none");
    }
    fclose(f);
}

/* IPC_INFO, SHM_INFO, SHM_STAT(_ANY) by index, SHM_LOCK, /proc/sysvipc/shm: relations and
 * fields that other segments of the host's namespace cannot change. */
static void introspection(void)
{
    int id = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
    int idx = id & 0x7fff;
    char *p = shmat(id, NULL, 0);
    p[0] = p[9999] = 1;
    struct shminfo si;
    int r = shmctl(0, IPC_INFO, (struct shmid_ds *)&si);
    printf("IPC_INFO covers my index: %s\n", r >= idx ? "yes" : "no");
    printf("shminfo: max %lu min %lu mni %lu seg %lu all %lu\n", si.shmmax, si.shmmin,
           si.shmmni, si.shmseg, si.shmall);
    show("IPC_INFO id -1", shmctl(-1, IPC_INFO, (struct shmid_ds *)&si));
    struct shm_info in;
    r = shmctl(0, SHM_INFO, (struct shmid_ds *)&in);
    printf("SHM_INFO covers my index: %s, used >= 1: %s, pages >= 3: %s, resident >= 2: %s\n",
           r >= idx ? "yes" : "no", in.used_ids >= 1 ? "yes" : "no",
           in.shm_tot >= 3 ? "yes" : "no", in.shm_rss >= 2 ? "yes" : "no");
    struct shmid_ds ds;
    printf("SHM_STAT index gives my id: %s\n", shmctl(idx, SHM_STAT, &ds) == id ? "yes" : "no");
    printf("SHM_STAT segsz %zu nattch %lu mode %o\n", ds.shm_segsz,
           (unsigned long)ds.shm_nattch, ds.shm_perm.mode);
    printf("SHM_STAT_ANY gives my id: %s\n", shmctl(idx, SHM_STAT_ANY, &ds) == id ? "yes" : "no");
    show("SHM_STAT -1", shmctl(-1, SHM_STAT, &ds));
    show("IPC_STAT with IPC_64", syscall(SYS_shmctl, id, IPC_STAT | 0x100, &ds));
    show("SHM_LOCK", shmctl(id, SHM_LOCK, NULL));
    shmctl(id, IPC_STAT, &ds);
    printf("locked mode %o\n", ds.shm_perm.mode);
    proc_row(id);
    show("SHM_UNLOCK", shmctl(id, SHM_UNLOCK, NULL));
    show("SHM_UNLOCK again", shmctl(id, SHM_UNLOCK, NULL));
    shmctl(id, IPC_STAT, &ds);
    printf("unlocked mode %o\n", ds.shm_perm.mode);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        if (setgid(65534) || setuid(65534))
            printf("setuid failed\n");
        show("nobody: SHM_STAT", shmctl(idx, SHM_STAT, &ds));
        printf("nobody: SHM_STAT_ANY gives the id: %s\n",
               shmctl(idx, SHM_STAT_ANY, &ds) == id ? "yes" : "no");
        show("nobody: SHM_LOCK", shmctl(id, SHM_LOCK, NULL));
        show("nobody: SHM_UNLOCK", shmctl(id, SHM_UNLOCK, NULL));
        fflush(stdout);
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    show("shmdt", shmdt(p));
    show("IPC_RMID", shmctl(id, IPC_RMID, NULL));
    show("SHM_LOCK removed", shmctl(id, SHM_LOCK, NULL));
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    /* shmget */
    show("shmget size 0", shmget(IPC_PRIVATE, 0, IPC_CREAT | 0600));
    show("shmget huge", shmget(IPC_PRIVATE, (size_t)-1, IPC_CREAT | 0600));
    int id = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
    CHECK("shmget private", id >= 0);
    int id2 = shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0600);
    CHECK("private ids differ", id2 >= 0 && id2 != id);

    struct shmid_ds ds;
    show("IPC_STAT", shmctl(id, IPC_STAT, &ds));
    printf("segsz %zu mode %o nattch %lu key %d\n", ds.shm_segsz, ds.shm_perm.mode & 0777,
           (unsigned long)ds.shm_nattch, ds.shm_perm.__key);
    CHECK("cpid is me", ds.shm_cpid == getpid());
    CHECK("lpid 0", ds.shm_lpid == 0);
    show("IPC_STAT bad id", shmctl(id + 1000000, IPC_STAT, &ds));
    show("shmctl bad cmd", shmctl(id, 99, &ds));

    /* shmat anywhere; write; nattch */
    char *p = shmat(id, NULL, 0);
    show_ptr("shmat any", p, (void *)-1);
    CHECK("page aligned", ((uintptr_t)p & 4095) == 0);
    strcpy(p, "hello");
    p[9999] = 'z';
    printf("nattch after shmat: %ld\n", nattch(id));
    char *q = shmat(id, NULL, SHM_RDONLY);
    show_ptr("shmat rdonly", q, (void *)-1);
    printf("rdonly sees: %s %c\n", q, q[9999]);
    printf("nattch two: %ld\n", nattch(id));
    show("shmdt rdonly", shmdt(q));
    show("shmdt again", shmdt(q));
    show("shmdt inside", shmdt(p + 4096));
    show("shmdt unaligned", shmdt(p + 1));
    printf("nattch back: %ld\n", nattch(id));

    /* fixed address, SHM_RND */
    char *area = mmap(NULL, 8 * 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(area, 8 * 4096);
    show_ptr("shmat unaligned", shmat(id, area + 5, 0), (void *)-1);
    char *r = shmat(id, area + 5, SHM_RND);
    show_ptr("shmat SHM_RND", r, (void *)-1);
    CHECK("rounded down", r == area);
    printf("fixed sees: %s\n", r);
    show_ptr("shmat over mapping", shmat(id, area, 0), (void *)-1);
    show("shmdt fixed", shmdt(r));
    show_ptr("shmat bad id", shmat(id + 1000000, NULL, 0), (void *)-1);

    /* fork: the child sees and changes the same bytes; its attach counts */
    int pipefd[2], back[2];
    pipe(pipefd);
    pipe(back);
    pid_t child = fork();
    if (child == 0) {
        char c;
        write(back[1], "x", 1);
        read(pipefd[0], &c, 1);
        strcpy(p, "child wrote");
        _exit(0);
    }
    char c;
    read(back[0], &c, 1);
    printf("nattch with child: %ld\n", nattch(id));
    write(pipefd[1], "x", 1);
    int status;
    waitpid(child, &status, 0);
    printf("parent sees: %s\n", p);
    printf("nattch after child exit: %ld\n", nattch(id));

    /* IPC_SET */
    shmctl(id, IPC_STAT, &ds);
    ds.shm_perm.mode = 0640;
    show("IPC_SET", shmctl(id, IPC_SET, &ds));
    shmctl(id, IPC_STAT, &ds);
    printf("mode now %o\n", ds.shm_perm.mode & 0777);

    /* IPC_RMID while attached: stays until the last detach */
    show("IPC_RMID attached", shmctl(id, IPC_RMID, NULL));
    show("IPC_STAT removed", shmctl(id, IPC_STAT, &ds));
    printf("dest bit %d nattch %lu\n", !!(ds.shm_perm.mode & SHM_DEST), (unsigned long)ds.shm_nattch);
    printf("still readable: %s\n", p);
    show("shmdt last", shmdt(p));
    show("IPC_STAT gone", shmctl(id, IPC_STAT, &ds));
    show("IPC_RMID gone", shmctl(id, IPC_RMID, NULL));

    /* a key: IPC_CREAT|IPC_EXCL, ENOENT, size bigger than the segment */
    key_t key = 0x5eed0000 + (getpid() & 0xffff);
    show("key absent", shmget(key, 100, 0600));
    int kid = shmget(key, 100, IPC_CREAT | IPC_EXCL | 0600);
    CHECK("key created", kid >= 0);
    show("key excl again", shmget(key, 100, IPC_CREAT | IPC_EXCL | 0600));
    CHECK("key found", shmget(key, 50, 0600) == kid);
    show("key too big", shmget(key, 200, 0600));
    show("key rmid", shmctl(kid, IPC_RMID, NULL));
    show("key absent after rmid", shmget(key, 100, 0600));

    show("IPC_RMID id2", shmctl(id2, IPC_RMID, NULL));
    introspection();
    return 0;
}
