"""openat2's RESOLVE_* flags through the sandbox's walk (overlay root), compared with the
same program run natively in a directory laid out the same way."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness import describe, run_sandbox

pytestmark = pytest.mark.slow

SOURCE = r'''
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
static int dir;
static void t(const char *label, const char *path, unsigned long long resolve)
{
    struct open_how how = {.flags = O_RDONLY, .resolve = resolve};
    long fd = syscall(SYS_openat2, dir, path, &how, sizeof how);
    if (fd < 0) { printf("%s: %s\n", label, strerrorname_np(errno)); return; }
    char buf[32] = {0};
    read((int)fd, buf, sizeof buf - 1);
    printf("%s: %s", label, buf[0] ? buf : "(dir)\n");
    close((int)fd);
}
int main(int argc, char **argv)
{
    mkdir(argv[1], 0755);
    chdir(argv[1]);
    mkdir("top", 0755);
    mkdir("top/sub", 0755);
    FILE *f = fopen("top/sub/file", "w"); fputs("inside\n", f); fclose(f);
    f = fopen("outside", "w"); fputs("outside\n", f); fclose(f);
    symlink("sub/file", "top/rel");
    symlink("/sub/file", "top/abs");
    symlink("../outside", "top/up");
    dir = open("top", O_PATH | O_DIRECTORY);
    t("plain", "sub/file", 0);
    t("BENEATH plain", "sub/file", RESOLVE_BENEATH);
    t("BENEATH absolute", "/etc/hostname", RESOLVE_BENEATH);
    t("BENEATH dotdot out", "../outside", RESOLVE_BENEATH);
    t("BENEATH dotdot in", "sub/../sub/file", RESOLVE_BENEATH);
    t("BENEATH relative link", "rel", RESOLVE_BENEATH);
    t("BENEATH link out", "up", RESOLVE_BENEATH);
    t("BENEATH absolute link", "abs", RESOLVE_BENEATH);
    t("IN_ROOT absolute", "/sub/file", RESOLVE_IN_ROOT);
    t("IN_ROOT absolute link", "abs", RESOLVE_IN_ROOT);
    t("IN_ROOT dotdot clamps", "../../sub/file", RESOLVE_IN_ROOT);
    t("NO_SYMLINKS through a link", "rel", RESOLVE_NO_SYMLINKS);
    t("NO_SYMLINKS plain", "sub/file", RESOLVE_NO_SYMLINKS);
    t("NO_MAGICLINKS on a plain link", "rel", RESOLVE_NO_MAGICLINKS);
    dir = AT_FDCWD;
    t("NO_MAGICLINKS /proc/self/exe", "/proc/self/exe", RESOLVE_NO_MAGICLINKS);
    t("NO_MAGICLINKS /proc/self/fd/0", "/proc/self/fd/0", RESOLVE_NO_MAGICLINKS);
    t("NO_XDEV into /proc", "/proc/self/comm", RESOLVE_NO_XDEV);
    return 0;
}
'''


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_resolve_flags_like_linux(tmp_path: Path) -> None:
    src = tmp_path / "resolve.c"
    src.write_text(SOURCE)
    exe = tmp_path / "resolve"
    subprocess.run(["gcc", "-O2", "-static", "-o", str(exe), str(src)], check=True,
                   capture_output=True)
    native = subprocess.run([str(exe), str(tmp_path / "native")], capture_output=True, text=True,
                            timeout=30)
    sandboxed = run_sandbox([str(exe), "/work-openat2"], timeout=60)
    assert native.returncode == 0, native.stderr
    assert (sandboxed.returncode, sandboxed.stdout) == (0, native.stdout), describe(sandboxed)
