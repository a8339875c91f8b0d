/* openat2(2): struct open_how checks, sizes, resolve flags (RESOLVE_CACHED: EAGAIN). */
#include "common.h"
#include <linux/openat2.h>
static void t(const char *label, const char *p, unsigned long long flags, unsigned long long mode, unsigned long long resolve, size_t size) {
  char buf[64] = {0}; struct open_how how = {.flags = flags, .mode = mode, .resolve = resolve};
  memcpy(buf, &how, sizeof how);
  long r = syscall(SYS_openat2, AT_FDCWD, p, buf, size);
  if (r < 0) printf("%s: %s\n", label, strerrorname_np(errno)); else { printf("%s: ok\n", label); close(r); }
}
int main(void)
{
  close(open("f", O_WRONLY | O_CREAT, 0644));
  t("plain", "f", O_RDONLY, 0, 0, sizeof(struct open_how));
  t("small size", "f", O_RDONLY, 0, 0, 16);
  t("bigger size zero tail", "f", O_RDONLY, 0, 0, 40);
  t("mode without O_CREAT", "f", O_RDONLY, 0644, 0, 24);
  t("unknown flag", "f", O_RDONLY | (1ULL<<40), 0, 0, 24);
  t("unknown resolve", "f", O_RDONLY, 0, 0x1000, 24);
  t("BENEATH|IN_ROOT", "f", O_RDONLY, 0, RESOLVE_BENEATH|RESOLVE_IN_ROOT, 24);
  t("CACHED with O_CREAT", "/tmp/x", O_RDONLY|O_CREAT, 0, RESOLVE_CACHED, 24);
  t("missing", "/nonexistent", O_RDONLY, 0, 0, 24);
  t("size past a page", "f", O_RDONLY, 0, 0, 4097);
  t("O_DIRECTORY on a file", "f", O_RDONLY | O_DIRECTORY, 0, 0, 24);
  t("O_CREAT|O_EXCL on an existing file", "f", O_RDWR | O_CREAT | O_EXCL, 0600, 0, 24);
  t("O_CREAT of a new file", "g", O_RDWR | O_CREAT, 0640, 0, 24);
  struct stat st;
  show("its mode", stat("g", &st) == 0 ? (long)(st.st_mode & 0777) : -1);
  t("mode bits beyond 07777", "h", O_RDWR | O_CREAT, 010000, 0, 24);
  t("O_PATH", "f", O_PATH, 0, 0, 24);
  t("RESOLVE_CACHED plain", "f", O_RDONLY, 0, RESOLVE_CACHED, 24);
  t("O_WRONLY on a directory", ".", O_WRONLY, 0, 0, 24);
  t("empty path", "", O_RDONLY, 0, 0, 24);
  {
      char big[64] = {0};
      struct open_how how = {.flags = O_RDONLY};
      memcpy(big, &how, sizeof how);
      big[40] = 1;
      long r = syscall(SYS_openat2, AT_FDCWD, "f", big, 48);
      printf("non-zero tail: %s\n", r < 0 ? strerrorname_np(errno) : "ok");
  }
  show("NULL how", syscall(SYS_openat2, AT_FDCWD, "f", NULL, 24));
  long fd = syscall(SYS_openat2, AT_FDCWD, "f", &(struct open_how){.flags = O_RDONLY | O_CLOEXEC}, 24);
  show("O_CLOEXEC reaches the fd", fd >= 0 ? fcntl((int)fd, F_GETFD) : -1);
  unlink("g");
  return 0;
}
