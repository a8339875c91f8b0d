/* Helpers shared by the AF_UNIX differential programs (unix_stream, unix_dgram, scm). */
#ifndef SV_UNIX_HELPERS_H
#define SV_UNIX_HELPERS_H
#include <linux/sockios.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

/* The revents of one fd as names (everything asked, POLLERR/POLLHUP always reported). */
static inline void show_poll(const char *label, int fd)
{
    static const struct { short bit; const char *name; } names[] = {
        {POLLIN, "IN"}, {POLLPRI, "PRI"}, {POLLOUT, "OUT"}, {POLLERR, "ERR"}, {POLLHUP, "HUP"},
        {POLLNVAL, "NVAL"}, {POLLRDNORM, "RDNORM"}, {POLLWRNORM, "WRNORM"},
        {POLLWRBAND, "WRBAND"}, {POLLRDHUP, "RDHUP"},
    };
    struct pollfd p = {fd, POLLIN | POLLOUT | POLLRDHUP | POLLRDNORM | POLLWRNORM | POLLWRBAND, 0};
    int r = poll(&p, 1, 0);
    printf("%s: poll=%d [", label, r);
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (p.revents & names[i].bit)
            printf(" %s", names[i].name);
    printf(" ]\n");
}

/* A path name, or an abstract one when name starts with '@' (the '@' becomes the 0). */
static inline socklen_t mkaddr(struct sockaddr_un *a, const char *name)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    if (name[0] == '@') {
        memcpy(a->sun_path + 1, name + 1, strlen(name) - 1);
        return offsetof(struct sockaddr_un, sun_path) + strlen(name);
    }
    strcpy(a->sun_path, name);
    return offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1;
}

static inline int bind_name(int fd, const char *name)
{
    struct sockaddr_un a;
    socklen_t n = mkaddr(&a, name);
    return bind(fd, (struct sockaddr *)&a, n);
}

static inline int connect_name(int fd, const char *name)
{
    struct sockaddr_un a;
    socklen_t n = mkaddr(&a, name);
    return connect(fd, (struct sockaddr *)&a, n);
}

static inline int sock(int type)
{
    int fd = socket(AF_UNIX, type, 0);
    if (fd < 0)
        die("socket");
    return fd;
}

static inline void pair(int type, int sv[2])
{
    if (socketpair(AF_UNIX, type, 0, sv) != 0)
        die("socketpair");
}

static inline void closeall(int a, int b)
{
    close(a);
    close(b);
}

static inline int inq(int fd)
{
    int n = -1;
    return ioctl(fd, SIOCINQ, &n) == 0 ? n : -errno;
}

static inline int outq(int fd)
{
    int n = -1;
    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -errno;
}

static int sigpipes __attribute__((unused));
static inline void on_sigpipe(int sig)
{
    (void)sig;
    sigpipes++;
}
#endif
