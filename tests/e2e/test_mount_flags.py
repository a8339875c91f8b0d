"""Per-mount flags nosuid, nodev and noexec enforced as Linux does, compared with Linux.

Why: an OCI config's mounts carry them (Docker's `--tmpfs /x:noexec`, its /dev/shm
"nosuid,noexec,nodev", /proc, /sys, /dev/pts...) and programs rely on them: execve of a file
(its PT_INTERP, a #! script's interpreter) on a noexec mount is EACCES, a PROT_EXEC mapping
of such a file EPERM and mprotect to PROT_EXEC EACCES; set-id bits do nothing on nosuid;
device nodes do not open on nodev.  The same C program runs natively on real tmpfs mounts
with those flags (in a private mount namespace: we are root) and in the sandbox on
`--tmpfs PATH:FLAGS` mounts at the same paths, and both outputs must be equal.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness import assert_same_output, describe, run_native, run_sandbox

pytestmark = pytest.mark.slow

DIRS = {"plain": "", "noexec": "noexec", "nosuid": "nosuid", "nodev": "nodev"}

#: argv: BASE LD_SO LIBC PROG_WITH_NOEXEC_INTERP (BASE/{plain,noexec,nosuid,nodev} are
#: tmpfs mounts with those flags); `ids` prints the ids and AT_SECURE the exec gave
PROGRAM = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static char base[256];

static const char *path(const char *dir, const char *name) {
  static char buf[4][512]; static int n;
  char *p = buf[n++ % 4];
  snprintf(p, 512, "%s/%s/%s", base, dir, name);
  return p;
}

static const char *err(long rc) {
  if (rc >= 0) return "ok";
  const char *e = strerrorname_np(errno);
  return e ? e : "?";
}

static void copy(const char *from, const char *to, mode_t mode) {
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
  char b[65536]; ssize_t n;
  if (in < 0 || out < 0) { printf("copy %s: %s\n", to, err(-1)); exit(1); }
  while ((n = read(in, b, sizeof b)) > 0) if (write(out, b, n) != n) exit(1);
  close(in); close(out); chmod(to, mode);
}

static void write_file(const char *to, const char *text) {
  int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (fd < 0 || write(fd, text, strlen(text)) < 0) exit(1);
  close(fd);
}

/* run prog in a child (as uid if uid >= 0): the exec's errno, or the exit status */
static void run(const char *what, const char *prog, char **argv, char **envp, int uid) {
  int p[2], e = 0, status;
  if (pipe2(p, O_CLOEXEC)) exit(1);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    if (uid >= 0 && (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid)))
      _exit(99);
    execve(prog, argv, envp);
    e = errno; write(p[1], &e, sizeof e); _exit(98);
  }
  close(p[1]);
  ssize_t got = read(p[0], &e, sizeof e);
  close(p[0]);
  waitpid(pid, &status, 0);
  if (got == sizeof e) printf("%s: execve %s\n", what, strerrorname_np(e));
  else printf("%s: exit %d\n", what, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static void mapping(const char *what, const char *file, int oflags, int flags) {
  int fd = open(file, oflags);
  void *a = mmap(NULL, 4096, PROT_READ | PROT_EXEC, flags, fd, 0);
  printf("%s: mmap(RX) %s", what, a == MAP_FAILED ? err(-1) : "ok");
  if (a != MAP_FAILED) munmap(a, 4096);
  a = mmap(NULL, 4096, PROT_READ, flags, fd, 0);
  if (a == MAP_FAILED) { printf(" mmap(R) %s\n", err(-1)); close(fd); return; }
  printf(" mprotect(RX) %s", err(mprotect(a, 4096, PROT_READ | PROT_EXEC)));
  printf(" mprotect(RW) %s", err(mprotect(a, 4096, PROT_READ | PROT_WRITE)));
  printf(" mprotect(R) %s\n", err(mprotect(a, 4096, PROT_READ)));
  munmap(a, 4096);
  close(fd);
}

int main(int argc, char **argv) {
  if (argc > 1 && !strcmp(argv[1], "ids")) {
    printf("euid=%d egid=%d ruid=%d secure=%lu\n", geteuid(), getegid(), getuid(),
           getauxval(AT_SECURE));
    return 0;
  }
  if (argc < 5) return 2;
  snprintf(base, sizeof base, "%s", argv[1]);
  const char *dirs[] = {"plain", "noexec", "nosuid", "nodev"};
  char what[128], text[600], env[600];
  char *ids[] = {"prog", "ids", NULL}, *sh[] = {"s", NULL};
  for (int i = 0; i < 4; i++) {
    copy("/proc/self/exe", path(dirs[i], "prog"), 0755);
    copy(argv[2], path(dirs[i], "ld.so"), 0755);
    copy(argv[3], path(dirs[i], "libc.so.6"), 0755);
    copy("/bin/sh", path(dirs[i], "sh"), 0755);
    write_file(path(dirs[i], "script"), "#!/bin/sh\necho script ran\n");
  }
  for (int i = 0; i < 2; i++) {  /* noexec: execve, #!, ld.so, libraries, mmap, mprotect */
    const char *d = dirs[i];
    snprintf(what, sizeof what, "%s program", d);
    run(what, path(d, "prog"), ids, environ, -1);
    snprintf(what, sizeof what, "%s script", d);
    run(what, path(d, "script"), sh, environ, -1);
    snprintf(text, sizeof text, "#!%s\necho script ran\n", path(d, "sh"));
    write_file(path("plain", "via"), text);
    snprintf(what, sizeof what, "%s sh as a #! interpreter", d);
    run(what, path("plain", "via"), sh, environ, -1);
    snprintf(what, sizeof what, "%s ld.so run directly", d);
    char *ld[] = {"ld.so", (char *)path("plain", "prog"), "ids", NULL};
    run(what, path(d, "ld.so"), ld, environ, -1);
    snprintf(what, sizeof what, "%s program run by ld.so", d);
    char *ld2[] = {"ld.so", (char *)path(d, "prog"), "ids", NULL};
    run(what, path("plain", "ld.so"), ld2, environ, -1);
    snprintf(what, sizeof what, "%s libc by LD_LIBRARY_PATH", d);
    snprintf(env, sizeof env, "LD_LIBRARY_PATH=%s/%s", base, d);
    char *envs[] = {env, NULL};
    run(what, path("plain", "prog"), ids, envs, -1);
    snprintf(what, sizeof what, "%s private", d);
    mapping(what, path(d, "prog"), O_RDONLY, MAP_PRIVATE);
    snprintf(what, sizeof what, "%s shared", d);
    mapping(what, path(d, "prog"), O_RDONLY, MAP_SHARED);
    snprintf(what, sizeof what, "%s write-only fd", d);
    mapping(what, path(d, "prog"), O_WRONLY, MAP_PRIVATE);
  }
  run("PT_INTERP on noexec", argv[4], ids, environ, -1);
  for (int i = 0; i < 3; i += 2) {  /* nosuid: set-id copies run by uid 1000 */
    const char *d = dirs[i];
    copy("/proc/self/exe", path(d, "suid"), 0755);
    copy("/proc/self/exe", path(d, "sgid"), 0755);
    copy("/proc/self/exe", path(d, "sgid-nox"), 0755);
    if (chown(path(d, "suid"), 0, 0) || chown(path(d, "sgid"), 0, 7) ||
        chown(path(d, "sgid-nox"), 0, 7)) return 3;
    chmod(path(d, "suid"), 04755);
    chmod(path(d, "sgid"), 02755);
    chmod(path(d, "sgid-nox"), 02745);
    snprintf(what, sizeof what, "%s set-user-ID", d);
    run(what, path(d, "suid"), ids, environ, 1000);
    snprintf(what, sizeof what, "%s set-group-ID", d);
    run(what, path(d, "sgid"), ids, environ, 1000);
    snprintf(what, sizeof what, "%s set-group-ID without g+x", d);
    run(what, path(d, "sgid-nox"), ids, environ, 1000);
    snprintf(what, sizeof what, "%s set-user-ID by root", d);
    run(what, path(d, "suid"), ids, environ, -1);
  }
  for (int i = 0; i < 4; i += 3) {  /* nodev: a /dev/null twin */
    const char *d = dirs[i], *n = path(d, "null");
    printf("%s: mknod %s", d, err(mknod(n, S_IFCHR | 0666, makedev(1, 3))));
    int fd = open(n, O_WRONLY);
    printf(" open(O_WRONLY) %s", err(fd));
    if (fd >= 0) { printf(" write %s", err(write(fd, "x", 1))); close(fd); }
    fd = open(n, O_RDONLY);
    printf(" open(O_RDONLY) %s", err(fd)); if (fd >= 0) close(fd);
    fd = open(n, O_PATH);
    printf(" open(O_PATH) %s", err(fd)); if (fd >= 0) close(fd);
    printf(" mkfifo %s", err(mkfifo(path(d, "fifo"), 0600)));
    fd = open(path(d, "fifo"), O_RDONLY | O_NONBLOCK);
    printf(" open(fifo) %s\n", err(fd)); if (fd >= 0) close(fd);
  }
  return 0;
}
"""


def _libs() -> tuple[str, str]:
    """The host's ld.so and libc (what the program's copies are made from)."""
    ldso, libc = "/lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"
    if not (os.path.exists(ldso) and os.path.exists(libc)):
        pytest.skip("no x86_64 glibc at the usual paths")
    return os.path.realpath(ldso), os.path.realpath(libc)


@pytest.fixture
def open_dir():
    """A scratch directory every uid may search (uid 1000 runs the set-id copies there;
    pytest's own tmp_path is root's alone), with BASE/NAME for each of DIRS."""
    top = Path(tempfile.mkdtemp(prefix="snakevisor-mntflags-"))
    top.chmod(0o755)
    for name in DIRS:
        (top / "m" / name).mkdir(parents=True)
    yield top
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def programs(open_dir: Path) -> tuple[Path, Path, Path]:
    """(base directory, the program, the program with BASE/noexec/ld.so as PT_INTERP)."""
    if shutil.which("gcc") is None or shutil.which("unshare") is None:
        pytest.skip("gcc and unshare are needed")
    tmp_path, base = open_dir, open_dir / "m"
    src = tmp_path / "mntflags.c"
    src.write_text(PROGRAM)
    prog, interp = tmp_path / "mntflags", tmp_path / "mntflags-interp"
    subprocess.run(["gcc", "-O1", "-w", "-o", prog, src], check=True)
    subprocess.run(["gcc", "-O1", "-w", "-o", interp, src,
                    f"-Wl,--dynamic-linker={base}/noexec/ld.so"], check=True)
    return base, prog, interp


def run_native_mounts(base: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """argv natively in a private mount namespace where BASE/NAME are tmpfs mounts with the
    flags of DIRS (skips unless we may mount)."""
    mounts = "; ".join(f"mount -t tmpfs -o {flags or 'defaults'} tmpfs {base}/{name}"
                       for name, flags in DIRS.items())
    probe = run_native(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        f"{mounts} && echo mounted"])
    if "mounted" not in probe.stdout:
        pytest.skip(f"cannot make tmpfs mounts natively: {probe.stderr.strip()}")
    return run_native(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                       f'{mounts} && exec "$@"', "sh", *argv])


def sandbox_flags(base: Path) -> list[str]:
    return [f"--tmpfs={base}/{name}" + (f":{flags}" if flags else "")
            for name, flags in DIRS.items()]


def test_exec_mmap_setid_and_devices_as_linux(programs: tuple[Path, Path, Path]) -> None:
    base, prog, interp = programs
    argv = [str(prog), str(base), *_libs(), str(interp)]
    native = run_native_mounts(base, argv)
    assert native.returncode == 0, describe(native)
    lines = native.stdout.splitlines()
    for want in ("noexec program: execve EACCES", "noexec script: execve EACCES",
                 "noexec sh as a #! interpreter: execve EACCES",
                 "noexec ld.so run directly: execve EACCES",
                 "noexec program run by ld.so: exit 127", "noexec libc by LD_LIBRARY_PATH: exit 127",
                 "noexec private: mmap(RX) EPERM mprotect(RX) EACCES mprotect(RW) ok mprotect(R) ok",
                 "PT_INTERP on noexec: execve EACCES",
                 "euid=0 egid=1000 ruid=1000 secure=1",  # plain set-user-ID
                 "nodev: mknod ok open(O_WRONLY) EACCES open(O_RDONLY) EACCES open(O_PATH) ok "
                 "mkfifo ok open(fifo) ok"):
        assert want in lines, f"Linux itself answered otherwise: {want!r}\n{native.stdout}"
    assert_same_output(native, run_sandbox(argv, extra=sandbox_flags(base), timeout=120))


def _flag_columns(mountinfo: str, base: Path) -> dict[str, str]:
    """mountinfo's point -> per-mount options, for the mounts below base."""
    out = {}
    for line in mountinfo.splitlines():
        fields = line.split()
        if fields[4].startswith(f"{base}/"):
            out[fields[4]] = fields[5]
    return out


def _mounts_flags(mounts: str, base: Path) -> dict[str, list[str]]:
    """/proc/mounts' point -> the rw/ro and per-mount flags in its options column."""
    keep = ("rw", "ro", "nosuid", "nodev", "noexec", "relatime")
    return {f[1]: [o for o in f[3].split(",") if o in keep]
            for f in (line.split() for line in mounts.splitlines())
            if f[1].startswith(f"{base}/")}


def test_mountinfo_and_mounts_show_the_flags(open_dir: Path) -> None:
    base = open_dir / "m"
    show = ["sh", "-c", "cat /proc/self/mountinfo; echo ---; cat /proc/self/mounts"]
    native = run_native_mounts(base, show)
    sandboxed = run_sandbox(show, extra=sandbox_flags(base))
    assert sandboxed.returncode == 0, describe(sandboxed)
    (n_info, n_mounts), (s_info, s_mounts) = (r.stdout.split("---\n") for r in (native, sandboxed))
    assert _flag_columns(s_info, base) == _flag_columns(n_info, base) == {
        f"{base}/plain": "rw,relatime", f"{base}/noexec": "rw,noexec,relatime",
        f"{base}/nosuid": "rw,nosuid,relatime", f"{base}/nodev": "rw,nodev,relatime"}
    assert _mounts_flags(s_mounts, base) == _mounts_flags(n_mounts, base)
    builtin = {f[4]: f[5] for f in (line.split() for line in s_info.splitlines())}
    assert builtin["/dev/shm"] == builtin["/proc"] == builtin["/sys"] == \
        "rw,nosuid,nodev,noexec,relatime"
    assert (builtin["/dev"], builtin["/dev/pts"]) == ("rw,nosuid,relatime",
                                                      "rw,nosuid,noexec,relatime")


def test_statfs_reports_the_mount_flags(open_dir: Path) -> None:
    """statfs and fstatfs put the mount's flags in f_flag (ST_NOSUID 2, ST_NODEV 4,
    ST_NOEXEC 8), as Linux does."""
    base = open_dir / "m"
    script = ("import os, sys\n"
              "for d in sorted(os.listdir(sys.argv[1])):\n"
              "    p = os.path.join(sys.argv[1], d)\n"
              "    fd = os.open(p, os.O_RDONLY)\n"
              "    print(d, os.statvfs(p).f_flag & 15, os.fstatvfs(fd).f_flag & 15)\n")
    argv = ["/usr/bin/python3", "-c", script, str(base)]
    native = run_native_mounts(base, argv)
    assert native.stdout.splitlines() == ["nodev 4 4", "noexec 8 8", "nosuid 2 2",
                                          "plain 0 0"], describe(native)
    assert_same_output(native, run_sandbox(argv, extra=sandbox_flags(base)))


def test_cli_rejects_unknown_tmpfs_flags() -> None:
    res = run_sandbox(["true"], extra=["--tmpfs=/x:noexec,bogus"])
    assert res.returncode == 2 and "bogus" in res.stderr and "Traceback" not in res.stderr


def test_oci_mount_options_become_flags(tmp_path: Path, rt) -> None:
    """A config's options reach the sandbox: a tmpfs with noexec, one with nodev, /proc
    with nosuid only (replacing its default), and /dev/shm as `snakevisor spec` writes it."""
    from test_oci_runtime import edit_config, make_bundle

    from snakevisor.fsimpl.mountns import MountConfig
    from snakevisor.runtime.spec import load
    script = ("busybox cp /bin/busybox /x/true; /x/true; echo x=$?; "
              "busybox cp /bin/busybox /y/true; /y/true; echo y=$?; "
              "busybox cut -d' ' -f5,6 /proc/self/mountinfo")
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", script])

    def mounts(config: dict) -> None:
        for m in config["mounts"]:
            if m["destination"] == "/proc":
                m["options"] = ["nosuid"]
        config["mounts"] += [
            {"destination": "/x", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "noexec", "mode=1777"]},
            {"destination": "/y", "type": "tmpfs", "source": "tmpfs",
             "options": ["noexec", "exec", "nodev"]}]
    edit_config(bundle, mounts)
    spec = load(str(bundle))
    assert {k: spec.mount_flags[k] for k in ("/x", "/y", "/proc", "/dev/shm")} == {
        "/x": ["nosuid", "noexec"], "/y": ["nodev"], "/proc": ["nosuid"],
        "/dev/shm": ["nosuid", "nodev", "noexec"]}
    config = MountConfig("/", mount_flags=spec.mount_flags)
    from dataclasses import asdict
    assert MountConfig(**json.loads(json.dumps(asdict(config)))) == config  # as pods send it
    res = rt("run", "--bundle", str(bundle), "flags1")
    lines = res.stdout.splitlines()
    assert lines[:2] == ["x=126", "y=0"], res.stdout + res.stderr
    shown = dict(line.split() for line in lines[2:])
    assert {k: shown[k] for k in ("/x", "/y", "/proc", "/dev/shm", "/dev/pts")} == {
        "/x": "rw,nosuid,noexec,relatime", "/y": "rw,nodev,relatime",
        "/proc": "rw,nosuid,relatime", "/dev/shm": "rw,nosuid,nodev,noexec,relatime",
        "/dev/pts": "rw,nosuid,noexec,relatime"}


def test_flags_are_per_mount_and_later_mounts_inherit_them() -> None:
    """One tmpfs in two trees with different flags (a pod's shared volume); a bind made
    later takes its source mount's flags, a mask (a fresh tmpfs) its own."""
    from snakevisor.fsimpl.pathrules import MaskFs
    from snakevisor.fsimpl.sandboxroot import BindMount, SandboxRoot
    from snakevisor.fsimpl.tmpfs import Tmpfs
    shared = Tmpfs()
    one = SandboxRoot({b"/": Tmpfs(), b"/v": shared}, {b"/v": ["noexec", "nodev"]})
    two = SandboxRoot({b"/": Tmpfs(), b"/v": shared}, {})
    assert one.mount_flags(b"/v/a/b") == {"noexec", "nodev"} and not two.mount_flags(b"/v/a")
    assert not one.mount_flags(b"/etc")
    one.add_mount(b"/v/ro", BindMount(shared, shared.root(), b"/", writable=False))
    one.add_mount(b"/v/mask", MaskFs())
    one.add_mount(b"/v", MaskFs(), ["nosuid"])  # over the mount at the same point
    assert one.mount_flags(b"/v/ro/x") == {"noexec", "nodev"}
    assert not one.mount_flags(b"/v/mask/x") and one.mount_flags(b"/v/x") == {"nosuid"}
    shown = {r.mountpoint: r.options for r in one.mount_records()}
    assert shown["/v/ro"] == "ro,nodev,noexec,relatime" and shown["/v/mask"] == "ro,relatime"
    records = [(r.mountpoint, r.options) for r in one.mount_records()]
    assert ("/v", "rw,nodev,noexec,relatime") in records and ("/v", "ro,nosuid,relatime") in records
    with pytest.raises(ValueError):
        SandboxRoot({b"/": Tmpfs()}, {b"/": ["nosymfollow"]})
