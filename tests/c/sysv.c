/* System V semaphores and message queues: creation by key and IPC_PRIVATE, semop's atomic
 * all-or-nothing operations, IPC_NOWAIT, blocking with other processes, timeouts, removal
 * under waiters (EIDRM), semctl/msgctl commands, message selection by type, permissions. */
#include "common.h"
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/wait.h>
#include <time.h>

union semun { int val; struct semid_ds *buf; unsigned short *array; };

static int key_base(void) { return 0x5e000000 | (getpid() & 0xffff) << 4; }

static void reap(const char *label, pid_t p)
{
    int status;
    waitpid(p, &status, 0);
    printf("%s: exit %d\n", label, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* Wait (bounded) until `n` processes are blocked on semaphore `num` in the way `cmd` counts. */
static int wait_count(int id, int num, int cmd, int n)
{
    for (int i = 0; i < 5000; i++) {
        if (semctl(id, num, cmd) == n)
            return n;
        usleep(1000);
    }
    return semctl(id, num, cmd);
}

static int sop(int id, unsigned short num, short op, short flg)
{
    struct sembuf b = {num, op, flg};
    return semop(id, &b, 1);
}

static void as_nobody(void)
{
    if (setgid(65534) || setuid(65534))
        printf("setuid failed\n");
}

static void sems(void)
{
    union semun u;
    show("semget nsems 0", semget(IPC_PRIVATE, 0, 0600));
    show("semget nsems -1", semget(IPC_PRIVATE, -1, 0600));
    show("semget nsems 32001", semget(IPC_PRIVATE, 32001, 0600));
    int id = semget(IPC_PRIVATE, 3, 0600 | IPC_CREAT);
    show_ok("semget private", id);
    show("initial GETVAL", semctl(id, 0, GETVAL));
    u.val = 5;
    show("SETVAL 5", semctl(id, 0, SETVAL, u));
    show("GETVAL", semctl(id, 0, GETVAL));
    u.val = 32768;
    show("SETVAL 32768", semctl(id, 0, SETVAL, u));
    u.val = -1;
    show("SETVAL -1", semctl(id, 0, SETVAL, u));
    show("GETVAL semnum 3", semctl(id, 3, GETVAL));
    show("GETVAL semnum -1", semctl(id, -1, GETVAL));
    unsigned short vals[3] = {7, 0, 2}, got[3] = {9, 9, 9};
    u.array = vals;
    show("SETALL", semctl(id, 0, SETALL, u));
    u.array = got;
    show("GETALL", semctl(id, 0, GETALL, u));
    printf("values %d %d %d\n", got[0], got[1], got[2]);
    vals[1] = 40000;
    u.array = vals;
    show("SETALL 40000", semctl(id, 0, SETALL, u));
    show("GETPID is me", semctl(id, 0, GETPID) == getpid());

    struct semid_ds ds;
    u.buf = &ds;
    show("IPC_STAT", semctl(id, 0, IPC_STAT, u));
    printf("nsems %lu mode %o uid %u otime-set %d\n", (unsigned long)ds.sem_nsems,
           ds.sem_perm.mode & 0777, ds.sem_perm.uid, ds.sem_otime != 0);
    ds.sem_perm.mode = 0640;
    show("IPC_SET", semctl(id, 0, IPC_SET, u));
    show("IPC_STAT again", semctl(id, 0, IPC_STAT, u));
    printf("mode %o\n", ds.sem_perm.mode & 0777);
    show("bad cmd", semctl(id, 0, 999));

    /* semop */
    show("dec 0 by 3", sop(id, 0, -3, 0));
    show("GETVAL 0", semctl(id, 0, GETVAL));
    show("GETPID after semop is me", semctl(id, 0, GETPID) == getpid());
    show("dec 1 nowait", sop(id, 1, -1, IPC_NOWAIT));
    show("wait-zero 0 nowait", sop(id, 0, 0, IPC_NOWAIT));
    show("wait-zero 1", sop(id, 1, 0, 0));
    show("sem_num 3", sop(id, 3, 1, 0));
    show("over SEMVMX", sop(id, 2, 32767, 0));
    struct sembuf two[2] = {{0, -1, 0}, {1, -1, IPC_NOWAIT}};
    show("atomic pair", semop(id, two, 2));
    show("sem 0 unchanged", semctl(id, 0, GETVAL));
    struct sembuf same[2] = {{2, 1, 0}, {2, -3, 0}};
    show("ops see earlier ops", semop(id, same, 2));
    show("GETVAL 2", semctl(id, 2, GETVAL));
    show("nsops 0", semop(id, two, 0));
    static struct sembuf many[501];
    show("nsops 501", semop(id, many, 501));
    for (int i = 0; i < 501; i++)
        many[i].sem_num = 1;
    show("nsops 500 zero-waits", semop(id, many, 500));
    show("bad semid", sop(-1, 0, 1, 0));
    show("stale semid", sop(id + 1, 0, 1, 0));
    show("fault", semop(id, (struct sembuf *)8, 1));
    struct timespec ts = {0, 20 * 1000 * 1000};
    struct sembuf dec1 = {1, -1, 0};
    show("semtimedop times out", semtimedop(id, &dec1, 1, &ts));
    ts.tv_nsec = 1000000000;
    show("semtimedop bad timespec", semtimedop(id, &dec1, 1, &ts));
    ts.tv_nsec = 0;
    show("semtimedop zero timeout", semtimedop(id, &dec1, 1, &ts));

    /* SEM_UNDO inside the process: adjustments accumulate; SETVAL clears them */
    show("undo inc", sop(id, 1, 2, SEM_UNDO));
    show("undo dec", sop(id, 1, -1, SEM_UNDO));
    show("GETVAL 1", semctl(id, 1, GETVAL));

    /* blocking decrement, woken by an increment from the parent */
    u.val = 0;
    semctl(id, 1, SETVAL, u);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        int r = sop(id, 1, -2, 0);
        printf("child: dec 2 -> %d, value now %d\n", r, semctl(id, 1, GETVAL));
        fflush(stdout);
        _exit(0);
    }
    show("GETNCNT", wait_count(id, 1, GETNCNT, 1));
    show("GETZCNT", semctl(id, 1, GETZCNT));
    show("inc by 1 (not enough)", sop(id, 1, 1, 0));
    show("still waiting", wait_count(id, 1, GETNCNT, 1));
    long r = sop(id, 1, 1, 0);
    reap("decrementer", p);  /* the woken child's line first, whoever runs first */
    show("inc by 1", r);

    /* wait-for-zero woken by SETVAL */
    u.val = 3;
    semctl(id, 2, SETVAL, u);
    fflush(stdout);
    p = fork();
    if (p == 0) {
        printf("child: wait-zero -> %d\n", sop(id, 2, 0, 0));
        fflush(stdout);
        _exit(0);
    }
    show("GETZCNT", wait_count(id, 2, GETZCNT, 1));
    u.val = 0;
    r = semctl(id, 2, SETVAL, u);
    reap("zero-waiter", p);
    show("SETVAL 0", r);

    /* permissions: another user */
    u.val = 1;
    semctl(id, 0, SETVAL, u);
    fflush(stdout);
    p = fork();
    if (p == 0) {
        as_nobody();
        show("nobody: GETVAL 0640", semctl(id, 0, GETVAL));
        show("nobody: semop", sop(id, 0, -1, IPC_NOWAIT));
        show("nobody: wait-zero", sop(id, 0, 0, IPC_NOWAIT));
        show("nobody: IPC_RMID", semctl(id, 0, IPC_RMID));
        fflush(stdout);
        _exit(0);
    }
    reap("nobody", p);

    /* removal wakes waiters with EIDRM */
    u.val = 0;
    semctl(id, 0, SETVAL, u);
    fflush(stdout);
    p = fork();
    if (p == 0) {
        int r = sop(id, 0, -1, 0);
        printf("child: blocked dec -> %s\n", r == -1 ? ename(errno) : "ok");
        fflush(stdout);
        _exit(0);
    }
    wait_count(id, 0, GETNCNT, 1);
    r = semctl(id, 0, IPC_RMID);
    reap("waiter", p);
    show("IPC_RMID", r);
    show("GETVAL removed", semctl(id, 0, GETVAL));
    show("IPC_RMID again", semctl(id, 0, IPC_RMID));

    /* keys */
    key_t key = key_base() | 1;
    show("get absent key", semget(key, 1, 0600));
    int k1 = semget(key, 2, 0600 | IPC_CREAT);
    show_ok("create key", k1);
    show("same id", semget(key, 2, 0600 | IPC_CREAT) == k1);
    show("nsems 0 finds it", semget(key, 0, 0) == k1);
    show("more nsems", semget(key, 3, 0600));
    show("IPC_EXCL", semget(key, 2, 0600 | IPC_CREAT | IPC_EXCL));
    int priv = semget(IPC_PRIVATE, 2, 0600);
    show("private is new", priv != k1);
    semctl(priv, 0, IPC_RMID);
    u.val = 0;
    semctl(k1, 0, SETVAL, u);
    semctl(k1, 0, IPC_RMID);
    show("absent after rmid", semget(key, 1, 0600));
}

struct msg { long mtype; char mtext[8200]; };

static struct msg m;

static int snd(int id, long type, const char *text, size_t len, int flags)
{
    m.mtype = type;
    memcpy(m.mtext, text, len < sizeof m.mtext ? len : sizeof m.mtext);
    return msgsnd(id, &m, len, flags);
}

static void rcv(const char *label, int id, size_t size, long type, int flags)
{
    memset(&m, 0, sizeof m);
    ssize_t r = msgrcv(id, &m, size, type, flags);
    if (r == -1)
        printf("%s: errno=%s\n", label, ename(errno));
    else
        printf("%s: %zd type %ld '%.*s'\n", label, r, m.mtype, (int)r, m.mtext);
}

static void msgs(void)
{
    int id = msgget(IPC_PRIVATE, 0600);
    show_ok("msgget", id);
    show("mtype 0", snd(id, 0, "x", 1, 0));
    show("size 8193", snd(id, 1, "x", 8193, 0));
    show("size 8192", snd(id, 9, "big", 8192, 0));
    rcv("take big", id, 8192, 9, 0);
    show("send 3", snd(id, 3, "three", 5, 0));
    show("send 1", snd(id, 1, "one", 3, 0));
    show("send 2", snd(id, 2, "two", 3, 0));
    show("send 1b", snd(id, 1, "uno", 3, 0));
    struct msqid_ds ds;
    show("IPC_STAT", msgctl(id, IPC_STAT, &ds));
    printf("qnum %lu cbytes %lu qbytes %lu mode %o lspid-me %d\n", (unsigned long)ds.msg_qnum,
           (unsigned long)ds.__msg_cbytes, (unsigned long)ds.msg_qbytes, ds.msg_perm.mode & 0777,
           ds.msg_lspid == getpid());
    rcv("type 2", id, 100, 2, 0);
    rcv("too small", id, 2, 0, 0);
    rcv("noerror", id, 2, 0, MSG_NOERROR);
    rcv("type -2", id, 100, -2, 0);
    rcv("except 1", id, 100, 1, MSG_EXCEPT | IPC_NOWAIT);
    rcv("type 1", id, 100, 1, 0);
    rcv("empty nowait", id, 100, 0, IPC_NOWAIT);
    rcv("type 5 nowait", id, 100, 5, IPC_NOWAIT);
    rcv("size -1", id, (size_t)-1, 0, IPC_NOWAIT);
    rcv("bad id", -1, 100, 0, IPC_NOWAIT);
    show("fault", msgsnd(id, (void *)8, 1, 0));

    /* the byte limit: two 8192-byte messages fill 16384 */
    show("fill 1", snd(id, 1, "a", 8192, 0));
    show("fill 2", snd(id, 2, "b", 8192, 0));
    show("full nowait", snd(id, 3, "c", 1, IPC_NOWAIT));
    show("empty message fits? nowait", snd(id, 3, "", 0, IPC_NOWAIT));
    fflush(stdout);
    int sync[2];
    pipe(sync);
    pid_t p = fork();
    if (p == 0) {
        write(sync[1], "x", 1);
        int r = snd(id, 4, "late", 4, 0);
        printf("child: blocked send -> %d\n", r);
        fflush(stdout);
        _exit(0);
    }
    char c;
    read(sync[0], &c, 1);
    usleep(100000);
    long r = msgrcv(id, &m, 8192, 1, 0);
    reap("sender", p);
    show("make room", r);
    rcv("type 4", id, 100, 4, 0);
    rcv("type 2 rest", id, 4, 2, MSG_NOERROR);

    /* blocking receive of one type */
    fflush(stdout);
    p = fork();
    if (p == 0) {
        write(sync[1], "x", 1);
        rcv("child: type 7", id, 100, 7, 0);
        fflush(stdout);
        _exit(0);
    }
    read(sync[0], &c, 1);
    usleep(100000);
    show("send 6", snd(id, 6, "six", 3, 0));
    r = snd(id, 7, "seven", 5, 0);
    reap("receiver", p);
    show("send 7", r);
    rcv("6 left", id, 100, 0, IPC_NOWAIT);

    /* IPC_SET: mode and a smaller queue */
    show("IPC_STAT", msgctl(id, IPC_STAT, &ds));
    ds.msg_qbytes = 10;
    ds.msg_perm.mode = 0640;
    show("IPC_SET", msgctl(id, IPC_SET, &ds));
    show("IPC_STAT", msgctl(id, IPC_STAT, &ds));
    printf("qbytes %lu mode %o\n", (unsigned long)ds.msg_qbytes, ds.msg_perm.mode & 0777);
    show("11 bytes nowait", snd(id, 1, "hello world", 11, IPC_NOWAIT));
    show("10 bytes", snd(id, 1, "helloworld", 10, IPC_NOWAIT));
    show("bad cmd", msgctl(id, 999, &ds));

    fflush(stdout);
    p = fork();
    if (p == 0) {
        as_nobody();
        rcv("nobody: rcv 0640", id, 100, 0, IPC_NOWAIT);
        show("nobody: IPC_STAT", msgctl(id, IPC_STAT, &ds));
        show("nobody: snd", snd(id, 1, "x", 1, IPC_NOWAIT));
        show("nobody: IPC_RMID", msgctl(id, IPC_RMID, NULL));
        fflush(stdout);
        _exit(0);
    }
    reap("nobody", p);

    /* removal wakes a receiver with EIDRM */
    fflush(stdout);
    p = fork();
    if (p == 0) {
        write(sync[1], "x", 1);
        rcv("child: waiting receive", id, 100, 99, 0);
        fflush(stdout);
        _exit(0);
    }
    read(sync[0], &c, 1);
    usleep(100000);
    r = msgctl(id, IPC_RMID, NULL);
    reap("waiter", p);
    show("IPC_RMID", r);
    show("IPC_STAT removed", msgctl(id, IPC_STAT, &ds));

    key_t key = key_base() | 2;
    show("get absent key", msgget(key, 0600));
    int k = msgget(key, 0600 | IPC_CREAT);
    show("same id", msgget(key, 0) == k);
    show("IPC_EXCL", msgget(key, 0600 | IPC_CREAT | IPC_EXCL));
    msgctl(k, IPC_RMID, NULL);
}

/* A private queue (mode 0600) holding two messages of 3 and 7 bytes. */
static int msgqid_with_two(void)
{
    int q = msgget(IPC_PRIVATE, 0600);
    snd(q, 5, "abc", 3, 0);
    snd(q, 6, "defghij", 7, 0);
    return q;
}

/* SEM_UNDO: what an exiting process did with it is undone */
static void undo(void)
{
    int id = semget(IPC_PRIVATE, 1, 0600);
    semctl(id, 0, SETVAL, 5);
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        sop(id, 0, 3, SEM_UNDO);
        sop(id, 0, -1, SEM_UNDO);
        sop(id, 0, 1, 0);  /* no undo: stays */
        _exit(0);
    }
    int status;
    waitpid(p, &status, 0);
    printf("after the child's exit: value %d (5 + 3 - 1 + 1, undo -2)\n", semctl(id, 0, GETVAL));
    semctl(id, 0, IPC_RMID);
}

/* The row of /proc/sysvipc/NAME whose second column is `id`, with its header line
 * printed as is; fields (1-based) listed in `cols` are printed. */
static void proc_row(const char *name, int id, const int *cols, int ncols)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/sysvipc/%s", name);
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("%s: errno=%s\n", path, ename(errno));
        return;
    }
    if (fgets(line, sizeof line, f))
        printf("%s header: %s", name, line);
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        long v[20];
        int n = 0;
        for (char *s = strtok(line, " \n"); s && n < 20; s = strtok(NULL, " \n"))
            v[n++] = strtol(s, NULL, 10);
        if (n < 2 || v[1] != id)
            continue;
        found = 1;
        printf("%s row:", name);
        for (int i = 0; i < ncols; i++)
            printf(" %ld", v[cols[i] - 1]);
        printf(" (%d fields)\n", n);
    }
    printf("%s row found: %s\n", name, found ? "yes" : "no");
    fclose(f);
}

/* IPC_INFO, SEM_INFO/MSG_INFO, the *_STAT commands by index, and /proc/sysvipc: only the
 * relations and fields that do not depend on other objects of the host's namespace. */
static void info(void)
{
    struct seminfo si;
    int id = semget(IPC_PRIVATE, 3, 0600);
    int idx = id & 0x7fff;
    int r = semctl(0, 0, IPC_INFO, (struct seminfo *)&si);
    printf("sem IPC_INFO covers my index: %s\n", r >= idx ? "yes" : "no");
    printf("seminfo: map %d mni %d mns %d mnu %d msl %d opm %d ume %d usz %d vmx %d aem %d\n",
           si.semmap, si.semmni, si.semmns, si.semmnu, si.semmsl, si.semopm, si.semume,
           si.semusz, si.semvmx, si.semaem);
    r = semctl(0, 0, SEM_INFO, (struct seminfo *)&si);
    printf("SEM_INFO covers my index: %s, sets >= 1: %s, sems >= 3: %s, mni %d\n",
           r >= idx ? "yes" : "no", si.semusz >= 1 ? "yes" : "no",
           si.semaem >= 3 ? "yes" : "no", si.semmni);
    show("sem IPC_INFO id -1", semctl(-1, 0, IPC_INFO, (struct seminfo *)&si));
    struct semid_ds ds;
    union semun u = {.buf = &ds};
    printf("SEM_STAT index gives my id: %s\n", semctl(idx, 0, SEM_STAT, u) == id ? "yes" : "no");
    printf("SEM_STAT nsems %lu mode %o key %d\n", (unsigned long)ds.sem_nsems,
           ds.sem_perm.mode, ds.sem_perm.__key);
    printf("SEM_STAT masks the index: %s\n",
           semctl(idx | 0x8000, 0, SEM_STAT, u) == id ? "yes" : "no");
    printf("SEM_STAT_ANY gives my id: %s\n", semctl(idx, 0, SEM_STAT_ANY, u) == id ? "yes" : "no");
    show("SEM_STAT -1", semctl(-1, 0, SEM_STAT, u));
    show("semctl cmd 99", semctl(id, 0, 99, u));
    proc_row("sem", id, (const int[]){1, 3, 4, 5, 6, 7, 8}, 7);

    int q = msgqid_with_two();
    int qidx = q & 0x7fff;
    struct msginfo mi;
    r = msgctl(0, IPC_INFO, (struct msqid_ds *)&mi);
    printf("msg IPC_INFO covers my index: %s\n", r >= qidx ? "yes" : "no");
    printf("msginfo: pool %d map %d max %d mnb %d mni %d ssz %d tql %d seg %u\n", mi.msgpool,
           mi.msgmap, mi.msgmax, mi.msgmnb, mi.msgmni, mi.msgssz, mi.msgtql, mi.msgseg);
    r = msgctl(0, MSG_INFO, (struct msqid_ds *)&mi);
    printf("MSG_INFO covers my index: %s, queues >= 1: %s, messages >= 2: %s, bytes >= 10: %s\n",
           r >= qidx ? "yes" : "no", mi.msgpool >= 1 ? "yes" : "no", mi.msgmap >= 2 ? "yes" : "no",
           mi.msgtql >= 10 ? "yes" : "no");
    show("msgctl cmd -1", msgctl(q, -1, NULL));
    struct msqid_ds mds;
    printf("MSG_STAT index gives my id: %s\n", msgctl(qidx, MSG_STAT, &mds) == q ? "yes" : "no");
    printf("MSG_STAT cbytes %lu qnum %lu qbytes %lu lspid is me: %s\n",
           (unsigned long)mds.__msg_cbytes, (unsigned long)mds.msg_qnum,
           (unsigned long)mds.msg_qbytes, mds.msg_lspid == getpid() ? "yes" : "no");
    proc_row("msg", q, (const int[]){1, 3, 4, 5, 7, 8, 9, 10, 11}, 9);

    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        as_nobody();
        show("nobody: SEM_STAT", semctl(idx, 0, SEM_STAT, u));
        printf("nobody: SEM_STAT_ANY gives the id: %s\n",
               semctl(idx, 0, SEM_STAT_ANY, u) == id ? "yes" : "no");
        show("nobody: IPC_STAT", semctl(id, 0, IPC_STAT, u));
        show("nobody: MSG_STAT", msgctl(qidx, MSG_STAT, &mds));
        printf("nobody: MSG_STAT_ANY gives the id: %s\n",
               msgctl(qidx, MSG_STAT_ANY, &mds) == q ? "yes" : "no");
        printf("nobody: SEM_INFO works: %s\n",
               semctl(0, 0, SEM_INFO, (struct seminfo *)&si) >= 0 ? "yes" : "no");
        fflush(stdout);
        _exit(0);
    }
    reap("nobody", p);
    semctl(id, 0, IPC_RMID);
    msgctl(q, IPC_RMID, NULL);
    printf("SEM_STAT after removal: %s\n", semctl(idx, 0, SEM_STAT, u) == id ? "still" : "gone");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    sems();
    undo();
    msgs();
    info();
    return 0;
}
