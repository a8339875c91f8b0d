/* Pseudo-terminals: ptmx/devpts (numbers, locking, grantpt/unlockpt/ptsname, TIOCGPTPEER,
 * the names in /dev/pts, stat of a slave), termios (defaults, round trips, TCSETSF, forced
 * CS8, speeds, TCGETS2), the line discipline (canonical editing with ERASE/KILL/WERASE/
 * LNEXT/EOF/EOL, echo and its ECHO* flags, input and output processing, non-canonical
 * VMIN/VTIME, flow control, flushing, packet mode), and a session in a child: acquiring
 * the controlling terminal, /dev/tty, ^C ^\ ^Z to the foreground group, SIGWINCH, SIGTTIN
 * and SIGTTOU for a background group, TIOCSPGRP's rules, TIOCNOTTY, and the hangup when
 * the master closes.  The other end's close: EIO and POLLHUP.
 *
 * Runs the same natively and in the sandbox: the program never uses a terminal it did not
 * make (it may have one natively, or not), opens slaves with O_NOCTTY except in the child
 * that made itself a session leader, and prints pty numbers only as relations.  Linux
 * hands typed bytes to the line discipline from a work queue, so what a read or a poll
 * sees is settled first (both flush that work), and echoes are collected until they stop.
 */
#include "proc_helpers.h"
#include <dirent.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>

/* struct termios2 (asm/termbits.h clashes with <termios.h>) */
struct ktermios2 {
    tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
    cc_t c_line, c_cc[19];
    speed_t c_ispeed, c_ospeed;
};
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static void esc(const char *label, const char *buf, long n)
{
    if (n < 0) {
        printf("%s: errno=%s\n", label, ename(errno));
        return;
    }
    printf("%s: %ld \"", label, n);
    for (long i = 0; i < n; i++) {
        unsigned char c = buf[i];
        if (c >= 32 && c < 127 && c != '\\' && c != '"')
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    printf("\"\n");
}

/* What arrives on fd: up to 2 s for the first byte, then until 50 ms pass without more. */
static long drain(int fd, char *buf, long cap)
{
    long n = 0;
    int wait = 2000;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, wait) <= 0 || !(p.revents & POLLIN))
            break;
        long r = read(fd, buf + n, cap - n);
        if (r <= 0)
            break;
        n += r;
        wait = 50;
    }
    return n;
}

static void show_drain(const char *label, int fd)
{
    char buf[512];
    esc(label, buf, drain(fd, buf, sizeof buf));
}

static void type(int m, const char *s)
{
    if (write(m, s, strlen(s)) != (long)strlen(s))
        printf("type: FAILED errno=%s\n", ename(errno));
}

/* A read of the slave with the bytes shown. */
static void show_read(const char *label, int fd, long count)
{
    char buf[512];
    esc(label, buf, read(fd, buf, count));
}

static int revents(int fd, int events)
{
    struct pollfd p = {fd, events, 0};
    if (poll(&p, 1, 0) < 0)
        return -1;
    return p.revents;
}

static const char *events_text(int ev)
{
    static char buf[64];
    buf[0] = 0;
    if (ev & POLLIN) strcat(buf, "IN ");
    if (ev & POLLPRI) strcat(buf, "PRI ");
    if (ev & POLLOUT) strcat(buf, "OUT ");
    if (ev & POLLERR) strcat(buf, "ERR ");
    if (ev & POLLHUP) strcat(buf, "HUP ");
    if (!buf[0]) strcat(buf, "none");
    return buf;
}

static int ptn(int m)
{
    int n = -1;
    if (ioctl(m, TIOCGPTN, &n) != 0)
        die("TIOCGPTN");
    return n;
}

/* A master and its unlocked slave's number; the slave is not opened. */
static int new_master(int *n)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0)
        die("posix_openpt");
    if (unlockpt(m) != 0)
        die("unlockpt");
    *n = ptn(m);
    return m;
}

static int open_slave(int n, int flags)
{
    char path[32];
    snprintf(path, sizeof path, "/dev/pts/%d", n);
    return open(path, flags);
}

static int listed(const char *name)
{
    DIR *d = opendir("/dev/pts");
    if (!d)
        return -1;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strcmp(e->d_name, name))
            found = 1;
    closedir(d);
    return found;
}

static int pts_listed(int n)
{
    char name[16];
    snprintf(name, sizeof name, "%d", n);
    return listed(name);
}

static void set_lflag(int fd, tcflag_t on, tcflag_t off)
{
    struct termios t;
    tcgetattr(fd, &t);
    t.c_lflag = (t.c_lflag | on) & ~off;
    if (tcsetattr(fd, TCSANOW, &t) != 0)
        printf("tcsetattr: FAILED errno=%s\n", ename(errno));
}

static void set_flags(int fd, tcflag_t iflag, tcflag_t oflag, tcflag_t lflag)
{
    struct termios t;
    tcgetattr(fd, &t);
    t.c_iflag = iflag;
    t.c_oflag = oflag;
    t.c_lflag = lflag;
    if (tcsetattr(fd, TCSANOW, &t) != 0)
        printf("tcsetattr: FAILED errno=%s\n", ename(errno));
}

static void set_min_time(int fd, int vmin, int vtime)
{
    struct termios t;
    tcgetattr(fd, &t);
    t.c_cc[VMIN] = vmin;
    t.c_cc[VTIME] = vtime;
    if (tcsetattr(fd, TCSANOW, &t) != 0)
        printf("tcsetattr: FAILED errno=%s\n", ename(errno));
}

/* ------------------------------------------------------------------ ptmx and devpts */

static void test_devpts(void)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    show_ok("posix_openpt", m);
    int n = ptn(m), lck = -1;
    char path[32];
    snprintf(path, sizeof path, "/dev/pts/%d", n);
    show("TIOCGPTLCK at first", ioctl(m, TIOCGPTLCK, &lck) == 0 ? lck : -1);
    show("open of a locked slave", open(path, O_RDWR | O_NOCTTY));
    show("TIOCGPTPEER of a locked slave", ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY));
    CHECK("listed while locked", pts_listed(n) == 1);
    show("grantpt", grantpt(m));
    show("unlockpt", unlockpt(m));
    show("TIOCGPTLCK after unlockpt", ioctl(m, TIOCGPTLCK, &lck) == 0 ? lck : -1);
    const char *name = ptsname(m);
    CHECK("ptsname is /dev/pts/<TIOCGPTN>", name && !strcmp(name, path));

    int s = open(path, O_RDWR | O_NOCTTY);
    show_ok("open slave", s);
    struct stat st, st2;
    fstat(s, &st);
    CHECK("slave is a char device", S_ISCHR(st.st_mode));
    CHECK("slave major 136", major(st.st_rdev) == 136);
    CHECK("slave minor = TIOCGPTN", (int)minor(st.st_rdev) == n);
    CHECK("slave owned by the opener", st.st_uid == geteuid());
    CHECK("slave rw for its owner", (st.st_mode & 0600) == 0600);
    stat(path, &st2);
    CHECK("stat of the path: same device", st2.st_rdev == st.st_rdev && S_ISCHR(st2.st_mode));
    fstat(m, &st2);
    CHECK("master is 5:2", S_ISCHR(st2.st_mode) && major(st2.st_rdev) == 5 &&
                           minor(st2.st_rdev) == 2);
    stat("/dev/pts/ptmx", &st2);
    CHECK("/dev/pts/ptmx is 5:2", S_ISCHR(st2.st_mode) && st2.st_rdev == makedev(5, 2));
    CHECK("ptmx listed", listed("ptmx") == 1);
    show("isatty master", isatty(m));
    show("isatty slave", isatty(s));
    char tn[64] = "";
    CHECK("ttyname of the slave is its path",
          ttyname_r(s, tn, sizeof tn) == 0 && !strcmp(tn, path));
    int v;
    show("TIOCGPTN on the slave", ioctl(s, TIOCGPTN, &v));
    show("TIOCSPTLCK on the slave", ioctl(s, TIOCSPTLCK, &v));
    show("TIOCGPTPEER on the slave", ioctl(s, TIOCGPTPEER, O_RDWR));
    show("TIOCPKT on the slave", ioctl(s, TIOCPKT, &v));
    int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
    show_ok("TIOCGPTPEER", peer);
    fstat(peer, &st2);
    CHECK("peer is the slave", st2.st_rdev == st.st_rdev);
    show("peer close-on-exec", fcntl(peer, F_GETFD) & FD_CLOEXEC);
    show("lseek master", lseek(m, 0, SEEK_SET));
    show("pread slave", pread(s, tn, 1, 0));
    show("unknown ioctl", ioctl(s, _IO('T', 0x7f), 0));
    int ld = -1;
    show("TIOCGETD", ioctl(s, TIOCGETD, &ld) == 0 ? ld : -1);
    unsigned dev = 0;
    CHECK("TIOCGDEV on both ends is the slave", ioctl(m, TIOCGDEV, &dev) == 0 &&
          dev == (unsigned)((136 << 8) | (n & 0xff) | ((n & ~0xff) << 12)));
    show("TIOCOUTQ", ioctl(s, TIOCOUTQ, &v) == 0 ? v : -1);
    show("TIOCGPGRP of the master (no session)", ioctl(m, TIOCGPGRP, &v) == 0 ? v : -1);
    show("TIOCGPGRP of a slave that is not ours", ioctl(s, TIOCGPGRP, &v));
    show("TIOCGSID of the master (no session)", ioctl(m, TIOCGSID, &v));
    show("TIOCNOTTY on a terminal that is not ours", ioctl(s, TIOCNOTTY));
    close(m);
    show("stat with the master closed", stat(path, &st2));
    close(peer);
    close(s);
}

static void test_numbers(void)
{
    int na, nb, nc;
    int a = new_master(&na);
    int sa = open_slave(na, O_RDWR | O_NOCTTY);
    close(a);
    CHECK("master closed: name gone", pts_listed(na) == 0);
    show("open of that name", open_slave(na, O_RDWR | O_NOCTTY));
    int b = new_master(&nb);
    CHECK("number kept while the slave is open", nb != na);
    close(sa);
    /* the lowest free number comes next: na is among the next few (others may run) */
    int masters[16], count = 0, reused = 0;
    while (count < 16 && !reused) {
        masters[count++] = new_master(&nc);
        reused = nc == na;
    }
    CHECK("number free once both are closed", reused);
    while (count)
        close(masters[--count]);
    close(b);
}

/* ------------------------------------------------------------------ termios */

static void show_termios(const char *label, const struct termios *t)
{
    printf("%s: iflag=%#o oflag=%#o cflag=%#o lflag=%#o line=%d\n", label, t->c_iflag,
           t->c_oflag, t->c_cflag, t->c_lflag, t->c_line);
    printf("%s: cc=", label);
    for (int i = 0; i < 17; i++)
        printf("%d%s", t->c_cc[i], i < 16 ? "," : "\n");
}

static void test_termios(void)
{
    int n, m = new_master(&n);
    int s = open_slave(n, O_RDWR | O_NOCTTY);
    struct termios t, t2, raw;
    memset(&t, 0, sizeof t);
    memset(&t2, 0, sizeof t2);
    tcgetattr(s, &t);
    show_termios("default", &t);
    show("default ospeed is B38400", cfgetospeed(&t) == B38400);
    tcgetattr(m, &t2);
    CHECK("the master reports the slave's termios", !memcmp(&t, &t2, sizeof t));
    struct winsize ws;
    ioctl(s, TIOCGWINSZ, &ws);
    printf("default winsize: %d %d %d %d\n", ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel);

    raw = t;
    cfmakeraw(&raw);
    show("tcsetattr raw", tcsetattr(s, TCSANOW, &raw));
    tcgetattr(s, &t2);
    show_termios("raw", &t2);
    raw.c_cflag = (raw.c_cflag & ~(CSIZE | PARENB)) | CS7 | PARENB;
    cfsetospeed(&raw, B9600);
    cfsetispeed(&raw, B9600);
    show("tcsetattr CS7 PARENB B9600", tcsetattr(m, TCSANOW, &raw));
    tcgetattr(s, &t2);
    printf("CS8 forced: %d, PARENB cleared: %d, ospeed B9600: %d\n",
           (t2.c_cflag & CSIZE) == CS8, !(t2.c_cflag & PARENB), cfgetospeed(&t2) == B9600);
    struct ktermios2 k2;
    show("TCGETS2", ioctl(s, 0x802C542A, &k2));
    printf("TCGETS2 speeds: %u %u\n", k2.c_ispeed, k2.c_ospeed);
    show("tcsetattr TCSADRAIN", tcsetattr(s, TCSADRAIN, &t));
    tcgetattr(s, &t2);
    CHECK("restored", t2.c_lflag == t.c_lflag && t2.c_iflag == t.c_iflag);

    type(m, "pending\n");
    show("POLLIN before TCSAFLUSH", revents(s, POLLIN));
    show("tcsetattr TCSAFLUSH", tcsetattr(s, TCSAFLUSH, &t));
    show("POLLIN after", revents(s, POLLIN));
    show_drain("echo of the flushed line", m);
    show("tcsetattr bad action", tcsetattr(s, 99, &t));
    show("TCSETS with a bad pointer", ioctl(s, TCSETS, (void *)16));
    close(s);
    close(m);
}

/* ------------------------------------------------------------------ line discipline */

struct line_case {
    const char *label, *typed;
};

static void test_canonical(void)
{
    int n, m = new_master(&n);
    int s = open_slave(n, O_RDWR | O_NOCTTY);
    static const struct line_case cases[] = {
        {"plain", "hello\n"},
        {"erase", "ab\x7f" "c\n"},
        {"erase at line start", "\x7f" "x\n"},
        {"kill", "xyz\x15q\n"},
        {"werase", "foo bar \x17" "baz\n"},
        {"werase punctuation", "a.b-c\x17\x17" "d\n"},
        {"tab erase", "ab\tc\x7f\x7f" "d\n"},
        {"control echo", "\x01\x02\n"},
        {"erase a control char", "a\x01\x7f\n"},
        {"lnext", "\x16\x03\x16\x7f" "z\n"},
        {"carriage return", "cr\r"},
        {"eof ends a line", "abc\x04"},
        {"reprint", "ab\x12" "c\n"},
        {"high bytes", "\xc3\xa9\xff\n"},
    };
    for (unsigned i = 0; i < sizeof cases / sizeof *cases; i++) {
        char label[80];
        type(m, cases[i].typed);
        snprintf(label, sizeof label, "%s: read", cases[i].label);
        show_read(label, s, 100);
        snprintf(label, sizeof label, "%s: echo", cases[i].label);
        show_drain(label, m);
    }
    type(m, "\x04");
    show_read("eof at line start", s, 100);
    type(m, "one\ntwo\n");
    show_read("first of two lines", s, 100);
    show_read("second of two lines", s, 100);
    type(m, "abcdef\n");
    show_read("part of a line", s, 3);
    show_read("rest of the line", s, 100);
    type(m, "abc");
    show("POLLIN without a newline", revents(s, POLLIN));
    int v = -1;
    show("FIONREAD without a newline", ioctl(s, FIONREAD, &v) == 0 ? v : -1);
    type(m, "\n\x04");
    show("POLLIN with a line", revents(s, POLLIN));
    show("FIONREAD with a line (EOF not counted)", ioctl(s, FIONREAD, &v) == 0 ? v : -1);
    show_read("the line", s, 100);
    show_read("the eof", s, 100);
    show_drain("echoes", m);
    fcntl(s, F_SETFL, O_NONBLOCK);
    show_read("nonblocking read with nothing typed", s, 100);
    fcntl(s, F_SETFL, 0);

    /* echo flags */
    set_lflag(s, 0, ECHOE);
    type(m, "ab\x7f\n");
    show_read("no ECHOE: read", s, 100);
    show_drain("no ECHOE: echo", m);
    set_lflag(s, ECHOE, ECHOKE);
    type(m, "xy\x15z\n");
    show_read("ECHOK without ECHOKE: read", s, 100);
    show_drain("ECHOK without ECHOKE: echo", m);
    set_lflag(s, ECHOKE, ECHOCTL);
    type(m, "\x01\n");
    show_read("no ECHOCTL: read", s, 100);
    show_drain("no ECHOCTL: echo", m);
    set_lflag(s, ECHOCTL | ECHOPRT, 0);
    type(m, "abc\x7f\x7f" "d\n");
    show_read("ECHOPRT: read", s, 100);
    show_drain("ECHOPRT: echo", m);
    set_lflag(s, ECHONL, ECHO | ECHOPRT);
    type(m, "quiet\n");
    show_read("ECHONL: read", s, 100);
    show_drain("ECHONL: echo", m);
    set_lflag(s, ECHO, ECHONL);
    struct termios t, saved;
    tcgetattr(s, &saved);
    t = saved;
    t.c_cc[VEOL] = '!';
    t.c_cc[VERASE] = '#';
    t.c_cc[VKILL] = _POSIX_VDISABLE;
    tcsetattr(s, TCSANOW, &t);
    type(m, "ab#c!");
    show_read("VEOL and VERASE changed: read", s, 100);
    type(m, "x\x15y\n");
    show_read("VKILL disabled: read", s, 100);
    show_drain("changed characters: echo", m);
    tcsetattr(s, TCSANOW, &saved);

    /* input processing */
    set_flags(s, ICRNL | IGNCR, OPOST | ONLCR, ICANON | ISIG);
    type(m, "a\rb\n");
    show_read("IGNCR", s, 100);
    set_flags(s, ICRNL | INLCR, OPOST | ONLCR, ICANON | ISIG);
    type(m, "a\nb\r");
    show_read("INLCR and ICRNL", s, 100);
    set_flags(s, ISTRIP, OPOST | ONLCR, ICANON | ISIG);
    type(m, "\xe9\xc1\n");
    show_read("ISTRIP", s, 100);
    set_flags(s, IUCLC, OPOST | ONLCR, ICANON | ISIG | IEXTEN);
    type(m, "ABc\n");
    show_read("IUCLC", s, 100);
    set_flags(s, IUTF8 | ICRNL, OPOST | ONLCR, ICANON | ECHO | ECHOE | ECHOCTL | IEXTEN);
    type(m, "x\xc3\xa9\x7f\n");
    show_read("IUTF8 erase: read", s, 100);
    show_drain("IUTF8 erase: echo", m);

    /* output processing */
    static const struct { const char *label; tcflag_t oflag; const char *text; } outs[] = {
        {"ONLCR", OPOST | ONLCR, "a\nb\n"},
        {"no ONLCR", OPOST, "a\nb\n"},
        {"OCRNL", OPOST | OCRNL, "a\rb\n"},
        {"ONOCR", OPOST | ONOCR, "x\r\ry\n"},
        {"ONLRET and tabs", OPOST | ONLRET | XTABS, "ab\tc\n\td\n"},
        {"XTABS", OPOST | ONLCR | XTABS, "a\tbc\t\x08\x08x\tz\n"},
        {"OLCUC", OPOST | OLCUC, "Mixed case\n"},
        {"no OPOST", ONLCR, "raw\n"},
    };
    for (unsigned i = 0; i < sizeof outs / sizeof *outs; i++) {
        set_flags(s, ICRNL, outs[i].oflag, ICANON);
        if (write(s, outs[i].text, strlen(outs[i].text)) < 0)
            printf("write: FAILED errno=%s\n", ename(errno));
        show_drain(outs[i].label, m);
    }
    close(s);
    close(m);
}

static void test_noncanonical(void)
{
    int n, m = new_master(&n);
    int s = open_slave(n, O_RDWR | O_NOCTTY);
    set_flags(s, 0, OPOST | ONLCR, ISIG);
    set_min_time(s, 0, 0);
    show_read("VMIN 0 VTIME 0, nothing typed", s, 10);
    fcntl(s, F_SETFL, O_NONBLOCK);
    show_read("the same with O_NONBLOCK", s, 10);
    fcntl(s, F_SETFL, 0);
    set_min_time(s, 0, 1);
    long long t0 = now_ms();
    show_read("VMIN 0 VTIME 1, nothing typed", s, 10);
    CHECK("VTIME 1 waited about 0.1 s", now_ms() - t0 >= 60);
    type(m, "xy");
    show("POLLIN", revents(s, POLLIN));
    show_read("VMIN 0 VTIME 1, typed", s, 1);
    show_read("the next byte", s, 10);
    set_min_time(s, 3, 0);
    type(m, "ab");
    show("VMIN 3, two typed: POLLIN", revents(s, POLLIN));
    int v = -1;
    show("FIONREAD", ioctl(s, FIONREAD, &v) == 0 ? v : -1);
    fcntl(s, F_SETFL, O_NONBLOCK);
    show_read("VMIN 3 nonblocking", s, 10);
    show_read("VMIN 3 nonblocking, empty", s, 10);
    fcntl(s, F_SETFL, 0);
    type(m, "abcd");
    show_read("VMIN 3, four typed", s, 10);
    type(m, "q");
    show_read("VMIN 3 but asked for 1", s, 1);
    set_min_time(s, 5, 2);
    type(m, "ab");
    t0 = now_ms();
    show_read("VMIN 5 VTIME 2, two typed", s, 10);
    CHECK("the inter-byte timer ran", now_ms() - t0 >= 100);
    /* a literal newline is not special without ICANON: ECHOCTL shows it as ^J */
    set_flags(s, ICRNL, OPOST | ONLCR, ECHO | ECHOCTL);
    set_min_time(s, 1, 0);
    type(m, "\n\r\x01");
    show("POLLIN", revents(s, POLLIN));
    show_read("non-canonical read", s, 10);
    show_drain("non-canonical echo", m);
    close(s);
    close(m);
}

static void test_flow_flush_packet(void)
{
    int n, m = new_master(&n);
    int s = open_slave(n, O_RDWR | O_NOCTTY);
    type(m, "abc\n");
    show("POLLIN", revents(s, POLLIN));
    show("tcflush TCIFLUSH", tcflush(s, TCIFLUSH));
    show("POLLIN after", revents(s, POLLIN));
    show_drain("echo", m);
    /* output the master has received stays; only what is in flight would go */
    show("write", write(s, "zzz", 3));
    show("master POLLIN", revents(m, POLLIN));
    show("tcflush TCOFLUSH", tcflush(s, TCOFLUSH));
    fcntl(m, F_SETFL, O_NONBLOCK);
    show_read("master after TCOFLUSH", m, 10);
    show("write", write(s, "zzz", 3));
    show("master TCIFLUSH", tcflush(m, TCIFLUSH));
    show_read("master after its TCIFLUSH", m, 10);
    type(m, "typed\n");
    show("POLLIN", revents(s, POLLIN));
    show("master TCOFLUSH", tcflush(m, TCOFLUSH));
    show("POLLIN after the master's TCOFLUSH", revents(s, POLLIN));
    show_read("master: echo", m, 20);
    show_read("slave", s, 20);
    show("tcflush bad", tcflush(s, 9));
    show("tcflow TCOOFF", tcflow(s, TCOOFF));
    fcntl(s, F_SETFL, O_NONBLOCK);
    show("write while stopped", write(s, "x", 1));
    show("POLLOUT while stopped", revents(s, POLLOUT));
    show("tcflow TCOON", tcflow(s, TCOON));
    show("write after TCOON", write(s, "x", 1));
    show_read("master", m, 10);
    type(m, "\x13");
    show("POLLIN after ^S", revents(s, POLLIN));
    show("write after ^S", write(s, "y", 1));
    type(m, "\x11");
    show("POLLIN after ^Q", revents(s, POLLIN));
    show("write after ^Q", write(s, "y", 1));
    show_read("master", m, 10);
    show("tcflow TCIOFF", tcflow(s, TCIOFF));
    show_read("master after TCIOFF", m, 10);
    show("tcflow bad", tcflow(s, 9));
    show("write for FIONREAD", write(s, "abcd", 4));
    show("master POLLIN", revents(m, POLLIN));
    int v = -1;
    show("master FIONREAD", ioctl(m, FIONREAD, &v) == 0 ? v : -1);
    show_read("master", m, 10);

    int on = 1;
    show("TIOCPKT", ioctl(m, TIOCPKT, &on));
    show("TIOCGPKT", ioctl(m, TIOCGPKT, &v) == 0 ? v : -1);
    show("write", write(s, "hi", 2));
    show_read("packet data", m, 10);
    show("tcflush TCIFLUSH", tcflush(s, TCIFLUSH));
    show("master POLLPRI", revents(m, POLLPRI | POLLIN));
    show_read("packet status", m, 10);
    show("tcflush TCOFLUSH", tcflush(s, TCOFLUSH));
    show_read("packet status", m, 10);
    show_read("nothing more", m, 10);
    on = 0;
    ioctl(m, TIOCPKT, &on);
    close(s);
    close(m);
}

/* ------------------------------------------------------------------ the other end closes */

static void test_master_side(void)
{
    int n, m = new_master(&n);
    fcntl(m, F_SETFL, O_NONBLOCK);
    printf("before the slave opens: %s\n", events_text(revents(m, POLLIN | POLLOUT)));
    show_read("master read before the slave opens", m, 10);
    int s = open_slave(n, O_RDWR | O_NOCTTY);
    printf("slave open: %s\n", events_text(revents(m, POLLIN | POLLOUT)));
    show("slave write", write(s, "bye\n", 4));
    close(s);
    printf("slave closed: %s\n", events_text(revents(m, POLLIN | POLLOUT)));
    show_read("master read after the slave closed", m, 10);
    show_read("then", m, 10);
    printf("drained: %s\n", events_text(revents(m, POLLIN | POLLOUT)));
    show("master write with the slave closed", write(m, "q", 1));
    s = open_slave(n, O_RDWR | O_NOCTTY);
    show_ok("slave reopened", s);
    printf("reopened: %s\n", events_text(revents(m, POLLOUT)));
    show_drain("the echo of what was typed meanwhile", m);
    close(s);
    close(m);
}

/* ------------------------------------------------------------------ a session */

static int report_fd;

static void report(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (write(report_fd, buf, len) != len)
        _exit(90);
}

static const char *err_or(long r, long ok_value_text)
{
    static char buf[4][40];
    static int slot;
    char *b = buf[slot++ % 4];
    if (r == -1)
        snprintf(b, 40, "errno=%s", ename(errno));
    else
        snprintf(b, 40, "%ld", ok_value_text ? r : 0);
    return b;
}

static void wait_sig(const char *label, int sig)
{
    sigset_t set;
    siginfo_t si;
    sigemptyset(&set);
    sigaddset(&set, sig);
    struct timespec limit = {5, 0};
    int got = sigtimedwait(&set, &si, &limit);
    report("%s: %s %s\n", label, got > 0 ? signame(got) : "timeout",
           got > 0 ? (si.si_code == SI_KERNEL ? "SI_KERNEL" : si.si_code == SI_USER ? "SI_USER"
                      : "other") : "");
}

static int pending(int sig)
{
    sigset_t set;
    sigpending(&set);
    return sigismember(&set, sig);
}

/* A background process of the session: what it sees when it uses the terminal. */
static void background(int fd, int ctl, const char *what)
{
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        char c;
        if (!strcmp(what, "read, SIGTTIN ignored")) {
            signal(SIGTTIN, SIG_IGN);
            _exit(read(fd, &c, 1) == -1 ? errno : 0);
        }
        if (!strcmp(what, "read, SIGTTIN blocked")) {
            sigset_t set;
            sigemptyset(&set);
            sigaddset(&set, SIGTTIN);
            sigprocmask(SIG_BLOCK, &set, NULL);
            _exit(read(fd, &c, 1) == -1 ? errno : 0);
        }
        if (!strcmp(what, "read")) {
            signal(SIGTTIN, SIG_DFL);
            read(fd, &c, 1);
            _exit(99);
        }
        if (!strcmp(what, "write without TOSTOP"))
            _exit(write(fd, "w\n", 2) == 2 && write(ctl, "w", 1) == 1 ? 0 : 1);
        if (!strcmp(what, "write with TOSTOP")) {
            signal(SIGTTOU, SIG_DFL);
            write(fd, "bg\n", 3);
            _exit(99);
        }
        if (!strcmp(what, "write with TOSTOP, SIGTTOU ignored")) {
            signal(SIGTTOU, SIG_IGN);
            _exit(write(fd, "i\n", 2) == 2 ? 0 : errno);
        }
        if (!strcmp(what, "tcsetattr")) {
            signal(SIGTTOU, SIG_DFL);
            struct termios t;
            tcgetattr(fd, &t);
            tcsetattr(fd, TCSANOW, &t);
            _exit(99);
        }
        if (!strcmp(what, "tcsetpgrp, SIGTTOU ignored")) {
            signal(SIGTTOU, SIG_IGN);
            _exit(tcsetpgrp(fd, getpgrp()) == 0 ? 0 : errno);
        }
        _exit(98);
    }
    setpgid(pid, pid);
    int st = reap_opts(pid, WUNTRACED);
    if (WIFSTOPPED(st)) {
        report("background %s: stopped by %s\n", what, signame(WSTOPSIG(st)));
        kill(pid, SIGKILL);
        reap(pid);
    } else if (WIFEXITED(st)) {
        report("background %s: exited %s\n", what,
               WEXITSTATUS(st) ? ename(WEXITSTATUS(st)) : "0");
    } else {
        report("background %s: status %#x\n", what, st);
    }
}

/* The child: a new session whose controlling terminal is the slave. */
static int session(int n, int sync_in, int sync_out)
{
    char path[32], buf[64];
    snprintf(path, sizeof path, "/dev/pts/%d", n);
    sigset_t set;
    sigemptyset(&set);
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sig != SIGCHLD && sig != SIGCONT &&
            sig != SIGTTIN && sig != SIGTTOU)
            sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, NULL);
    report("setsid: %s\n", err_or(setsid() == getpid() ? 0 : -1, 0));
    report("/dev/tty before: %s\n", err_or(open("/dev/tty", O_RDWR), 0));
    int fd = open(path, O_RDWR);  /* a session leader without one: acquires it */
    report("open slave: %s\n", err_or(fd, 0));
    report("tcgetpgrp is us: %d\n", tcgetpgrp(fd) == getpid());
    report("tcgetsid is us: %d\n", tcgetsid(fd) == getpid());
    int tty = open("/dev/tty", O_RDWR);
    report("/dev/tty: %s\n", err_or(tty, 0));
    struct stat st, st2;
    fstat(tty, &st);
    fstat(fd, &st2);
    report("/dev/tty is the 5:0 node: %d\n", S_ISCHR(st.st_mode) && st.st_rdev == makedev(5, 0));
    report("the slave is not: %d\n", st2.st_rdev != st.st_rdev);
    report("write via /dev/tty: %s\n", err_or(write(tty, "via tty\n", 8), 1));
    report("TIOCSCTTY again: %s\n", err_or(ioctl(fd, TIOCSCTTY, 0), 0));
    report("TIOCGPGRP via /dev/tty: %d\n", tcgetpgrp(tty) == getpid());
    put_byte(sync_out, 'R');

    wait_sig("^C", SIGINT);
    report("after ^C: %s\n", err_or(read(fd, buf, sizeof buf), 1));
    put_byte(sync_out, 'D');
    wait_sig("^\\", SIGQUIT);
    wait_sig("^Z", SIGTSTP);
    long r = read(fd, buf, sizeof buf);
    report("the line after ^Z: %.*s", (int)(r > 0 ? r : 0), buf);
    put_byte(sync_out, 'W');
    wait_sig("resize", SIGWINCH);
    get_byte(sync_in);  /* the same size again has been set */
    report("same size again: SIGWINCH pending %d\n", pending(SIGWINCH));
    struct winsize ws;
    ioctl(fd, TIOCGWINSZ, &ws);
    report("winsize: %d x %d\n", ws.ws_row, ws.ws_col);
    struct termios t;
    tcgetattr(fd, &t);
    t.c_lflag &= ~TOSTOP;
    tcsetattr(fd, TCSANOW, &t);

    int ctl[2];
    make_pipe(ctl);
    background(fd, ctl[1], "read, SIGTTIN ignored");
    background(fd, ctl[1], "read, SIGTTIN blocked");
    background(fd, ctl[1], "read");
    background(fd, ctl[1], "write without TOSTOP");
    report("background write arrived: %c\n", get_byte(ctl[0]));
    t.c_lflag |= TOSTOP;
    tcsetattr(fd, TCSANOW, &t);
    background(fd, ctl[1], "write with TOSTOP");
    background(fd, ctl[1], "write with TOSTOP, SIGTTOU ignored");
    background(fd, ctl[1], "tcsetattr");
    t.c_lflag &= ~TOSTOP;
    tcsetattr(fd, TCSANOW, &t);
    background(fd, ctl[1], "tcsetpgrp, SIGTTOU ignored");
    report("tcgetpgrp is us after that: %d\n", tcgetpgrp(fd) == getpid());
    signal(SIGTTOU, SIG_IGN);  /* we are in the background now: take it back */
    report("tcsetpgrp back: %s\n", err_or(tcsetpgrp(fd, getpid()), 0));
    signal(SIGTTOU, SIG_DFL);
    report("tcgetpgrp is us: %d\n", tcgetpgrp(fd) == getpid());

    pid_t gone = fork();
    if (gone == 0)
        _exit(0);
    reap(gone);
    report("tcsetpgrp to a group that does not exist: %s\n", err_or(tcsetpgrp(fd, gone), 0));
    report("tcsetpgrp to a negative group: %s\n", err_or(tcsetpgrp(fd, -5), 0));
    report("tcsetpgrp to another session's group: %s\n",
           err_or(tcsetpgrp(fd, getppid()), 0));
    int on, other = new_master(&on);
    int other_slave = open_slave(on, O_RDWR | O_NOCTTY);
    report("TIOCSCTTY on a second terminal: %s\n", err_or(ioctl(other_slave, TIOCSCTTY, 0), 0));
    report("TIOCSCTTY via its master: %s\n", err_or(ioctl(other, TIOCSCTTY, 0), 0));
    close(other_slave);
    close(other);

    report("TIOCNOTTY: %s\n", err_or(ioctl(fd, TIOCNOTTY), 0));
    wait_sig("TIOCNOTTY", SIGHUP);
    report("/dev/tty after TIOCNOTTY: %s\n", err_or(open("/dev/tty", O_RDWR), 0));
    report("tcgetpgrp after TIOCNOTTY: %s\n", err_or(tcgetpgrp(fd), 0));
    report("the open /dev/tty still works: %s\n", err_or(write(tty, "t\n", 2), 1));
    report("TIOCSCTTY again: %s\n", err_or(ioctl(fd, TIOCSCTTY, 0), 0));
    report("tcgetpgrp is us: %d\n", tcgetpgrp(fd) == getpid());

    put_byte(sync_out, 'H');  /* the master closes now */
    report("read at hangup: %s\n", err_or(read(fd, buf, sizeof buf), 1));
    wait_sig("hangup", SIGHUP);
    report("read again: %s\n", err_or(read(fd, buf, sizeof buf), 1));
    report("write after hangup: %s\n", err_or(write(fd, "x", 1), 1));
    report("tcgetattr after hangup: %s\n", err_or(tcgetattr(fd, &t), 0));
    report("tcsetpgrp after hangup: %s\n", err_or(tcsetpgrp(fd, getpid()), 0));
    report("write via /dev/tty after hangup: %s\n", err_or(write(tty, "x", 1), 1));
    report("/dev/tty after hangup: %s\n", err_or(open("/dev/tty", O_RDWR), 0));
    report("poll after hangup: %s\n", events_text(revents(fd, POLLIN | POLLOUT)));
    report("open the slave again: %s\n", err_or(open(path, O_RDWR), 0));
    return 0;
}

static void test_session(void)
{
    int n, m = new_master(&n);
    int to_child[2], from_child[2], rep[2];
    make_pipe(to_child);
    make_pipe(from_child);
    make_pipe(rep);
    report_fd = rep[1];
    pid_t pid = fork_or_die();
    if (pid == 0) {
        close(rep[0]);
        close(m);  /* the master must close in the parent alone for the hangup */
        _exit(session(n, to_child[0], from_child[1]));
    }
    close(rep[1]);
    CHECK("child ready", get_byte(from_child[0]) == 'R');
    show_drain("written via /dev/tty", m);
    int v = 0;
    CHECK("TIOCGPGRP of the master: the child's group", ioctl(m, TIOCGPGRP, &v) == 0 && v == pid);
    CHECK("TIOCGSID of the master: the child's session", ioctl(m, TIOCGSID, &v) == 0 && v == pid);
    type(m, "abc\x03");
    type(m, "def\n");
    CHECK("child read the line", get_byte(from_child[0]) == 'D');
    show_drain("echo of ^C and the line", m);
    type(m, "\x1c");
    show_drain("echo of ^\\", m);
    type(m, "g\x1ah\n");
    CHECK("child read", get_byte(from_child[0]) == 'W');
    show_drain("echo of ^Z and the line", m);
    struct winsize ws = {24, 80, 0, 0};
    show("TIOCSWINSZ", ioctl(m, TIOCSWINSZ, &ws));
    show("TIOCSWINSZ the same", ioctl(m, TIOCSWINSZ, &ws));
    put_byte(to_child[1], 'S');
    CHECK("child at hangup", get_byte(from_child[0]) == 'H');
    show_drain("background output", m);
    close(m);
    show_status("session", reap(pid));
    char buf[4096];
    long len = 0, r;
    while ((r = read(rep[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += r;
    buf[len] = 0;
    fputs(buf, stdout);
    close(rep[0]);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    test_devpts();
    test_numbers();
    test_termios();
    test_canonical();
    test_noncanonical();
    test_flow_flush_packet();
    test_master_side();
    test_session();
    show_all_reaped();
    return 0;
}
