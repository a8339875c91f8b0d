"""The overlay root against Linux's own overlayfs: the same lower tree, the same script.

Why: snakevisor's root is a memory upper layer over the read-only image, standing in for
the overlayfs Docker and runc give a container.  Linux is the specification, and as root
we can mount the real thing: each script runs once in the sandbox (`snakevisor do --rootfs
LOWER`, the default root:memory overlay) and once natively, chrooted into
`mount -t overlay -o lowerdir=LOWER,...,redirect_dir=off` (the mode our overlay follows),
and the outputs must match: which names reappear after removal, errnos of rename and
link, opaque directories, and identity (one st_dev for the mount, st_ino kept across
copy-up, hard links and renames, d_ino agreeing with stat).  Scripts print relations
(same/diff), never raw inode numbers, which differ between the two upper layers.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import assert_same_output, run_native, run_sandbox

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting overlayfs needs root"),
    pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed"),
    pytest.mark.skipif(not os.path.exists("/bin/busybox"), reason="busybox is not installed"),
]

#: ovt: the system calls a shell cannot make with exact flags, each printing "ok" or the
#: errno's name; `dino DIR` checks the d_ino of every entry on DIR's file system against
#: lstat's st_ino; `fid PATH` opens PATH for writing (a copy-up) and compares fstat, statx
#: and fstatfs on the fd with lstat and statfs of the path; `dev PATH` prints st_dev as
#: major:minor.
HELPER = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int report(const char *what, int r) {
    printf("%s: %s\n", what, r < 0 ? strerrorname_np(errno) : "ok");
    return 0;
}

int main(int argc, char **argv) {
    char what[512];
    snprintf(what, sizeof what, "%s %s %s %s", argv[1], argc > 2 ? argv[2] : "",
             argc > 3 ? argv[3] : "", argc > 4 ? argv[4] : "");
    if (!strcmp(argv[1], "rename"))
        return report(what, syscall(SYS_renameat2, AT_FDCWD, argv[2], AT_FDCWD, argv[3],
                                    argc > 4 ? strtoul(argv[4], 0, 0) : 0));
    if (!strcmp(argv[1], "link"))
        return report(what, link(argv[2], argv[3]));
    if (!strcmp(argv[1], "unlink"))
        return report(what, unlink(argv[2]));
    if (!strcmp(argv[1], "rmdir"))
        return report(what, rmdir(argv[2]));
    if (!strcmp(argv[1], "mkdir"))
        return report(what, mkdir(argv[2], 0755));
    if (!strcmp(argv[1], "dino")) {
        DIR *d = opendir(argv[2]);
        struct dirent *e;
        int n = 0, bad = 0;
        char path[4096];
        struct stat st, here;
        lstat(argv[2], &here);
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            snprintf(path, sizeof path, "%s/%s", argv[2], e->d_name);
            lstat(path, &st);
            if (st.st_dev != here.st_dev)
                continue;  /* a mount point (the sandbox's /proc, /dev) */
            n++;
            if (st.st_ino != e->d_ino) {
                printf("dino %s: d_ino differs from st_ino\n", path);
                bad++;
            }
        }
        printf("dino %s: %s entries, %d differ\n", argv[2], n ? "some" : "no", bad);
        return 0;
    }
    if (!strcmp(argv[1], "fid")) {
        struct stat a, b;
        struct statx x;
        struct statfs fa, fb;
        int fd = open(argv[2], O_RDWR | O_APPEND);
        if (fd < 0)
            return report(what, -1);
        write(fd, "+", 1);
        fstat(fd, &b);
        lstat(argv[2], &a);
        statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &x);
        statfs(argv[2], &fa);
        fstatfs(fd, &fb);
        printf("fid %s: fstat %s, statx %s, fstatfs %s\n", argv[2],
               a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_nlink == b.st_nlink
                   ? "=" : "!=",
               makedev(x.stx_dev_major, x.stx_dev_minor) == a.st_dev && x.stx_ino == a.st_ino
                   ? "=" : "!=",
               fa.f_type == fb.f_type ? "=" : "!=");
        close(fd);
        return 0;
    }
    if (!strcmp(argv[1], "dev")) {
        struct stat st;
        lstat(argv[2], &st);
        printf("%u:%u\n", major(st.st_dev), minor(st.st_dev));
        return 0;
    }
    fprintf(stderr, "ovt: unknown %s\n", argv[1]);
    return 2;
}
"""

#: The image: a few files, hard links, a symlink and directories (empty, nested, full).
TREE = {
    "d/f1": "lower f1\n", "d/f2": "lower f2\n", "d/f3": "lower f3\n", "d/f4": "lower f4\n",
    "d/f5": "lower f5\n", "d/f6": "lower f6\n", "d/f7": "lower f7\n", "d/f8": "lower f8\n",
    "d/sub/deep": "deep\n", "d/e3/x": "x\n", "d/e5/z": "z\n", "d/other/g": "g\n",
    "d/moved/m": "m\n", "x/f": "x f\n",
}
DIRS = ["d/empty", "d/ed2", "d/ed3"]


@pytest.fixture(scope="module")
def lower(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ovl") / "lower"
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin" / "busybox")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            os.symlink("busybox", root / "bin" / applet)
    res = subprocess.run(["gcc", "-static", "-O1", "-w", "-o", str(root / "bin" / "ovt"),
                          "-x", "c", "-"], input=HELPER, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"gcc failed:\n{res.stderr}")
    for name, text in TREE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    for name in DIRS:
        (root / name).mkdir()
    os.link(root / "d/f6", root / "d/hl")
    os.symlink("f1", root / "d/link")
    for name in ("tmp", "proc", "dev"):
        (root / name).mkdir()
    return root


def native_overlay(lower: Path, tmp: Path, script: str) -> subprocess.CompletedProcess[str]:
    """The script chrooted into a fresh Linux overlay of `lower` (upper in `tmp`)."""
    upper, work, mnt = tmp / "upper", tmp / "work", tmp / "mnt"
    for path in (upper, work, mnt):
        path.mkdir()
    options = f"lowerdir={lower},upperdir={upper},workdir={work},redirect_dir=off,index=off"
    mounted = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(mnt)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount overlayfs here: {mounted.stderr.strip()}")
    try:
        return run_native(["chroot", str(mnt), "/bin/sh", "-c", script])
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def same_as_linux(lower: Path, tmp: Path, script: str) -> str:
    script = "cd /; exec 2>&1; " + script + "\necho end of script"
    native = native_overlay(lower, tmp, script)
    ours = run_sandbox(["/bin/sh", "-c", script], rootfs=lower, extra=["--cwd", "/"])
    assert_same_output(native, ours)
    assert ours.stdout.endswith("end of script\n"), ours.stdout
    return ours.stdout


def test_removed_names_stay_removed(lower: Path, tmp_path: Path) -> None:
    """A whiteout whenever the lower layer has the name: after a copy-up, after a file made
    over an earlier whiteout, after rename away; rmdir then mkdir gives an empty directory."""
    out = same_as_linux(lower, tmp_path, """
        echo x >> d/f1; rm d/f1; cat d/f1
        rm d/f2; echo new > d/f2; cat d/f2; rm d/f2; cat d/f2
        echo y >> d/f3; mv d/f3 d/f3b; cat d/f3 d/f3b
        mv d/f3b d/f4; cat d/f4; mv d/f4 top_f4; cat d/f4 top_f4
        rm d/sub/deep; rmdir d/sub; ls d/sub; mkdir d/sub; ls -A d/sub; echo sub listed
        rm d/e3/x; ovt rmdir d/e3; touch d/e3; ovt rmdir d/e3; ovt unlink d/e3
        ovt mkdir d/e3; ls -A d/e3; echo e3 listed
        ovt rmdir d/empty; ovt mkdir d/empty; touch d/empty/n; ls -A d/empty
        ovt unlink d/link; cat d/link; ls -A d
    """)
    assert "lower f1" not in out and "lower f2" not in out and "deep" not in out


def test_renames(lower: Path, tmp_path: Path) -> None:
    """renameat2's errnos and flags, directories with a lower part (EXDEV), upper-only
    directories moving over lower names (opaque, no merge), RENAME_EXCHANGE."""
    out = same_as_linux(lower, tmp_path, """
        ovt rename d/other d/other2; touch d/other/new; ovt rename d/other d/other2
        ovt rename d/empty d/empty2; ovt rename d/f5 d/f6 4; ovt rename d/f5 d/f6 1
        ovt rename d/f5 d/f6 3; ovt rename d/f5 d/nothere 2
        ovt rename d/f5 d/f6 2; cat d/f5 d/f6
        ovt rename d/other d/f7 2; ovt rename d/ed2 d/f7 2
        mkdir /nd; touch /nd/a; ovt rename /nd d/ed2; ls -A d/ed2; ovt rename d/ed2 d/ed2m
        ls -A d/ed2m; ls d/ed2; rm d/e5/z; mkdir /nd2; ovt rename /nd2 d/e5; ls -A d/e5
        echo e5 listed; ovt rename d/e5 x/e5; ls -A x/e5 d/e5; echo e5 moved
        mkdir /nd3; ovt rename /nd3 d/moved; ovt rename d/ed3 /ed3
        rm d/moved/m; ovt rename /nd3 d/moved; ls -A d/moved; echo moved listed
        mkdir /nd4; ovt rename /nd4 d/f8 2; ls -A d/f8; echo f8 listed; cat /nd4
        ovt rename d/f8 /nd4 2; ls -A d; cat /nd4
        rm -r d/e3; touch d/e3; mkdir /nd5; ovt rename /nd5 d/e3 2; ls -A d/e3 /nd5
        echo e3 listed; ovt rename d/e3 /nd5 2; ls -A d/e3 /nd5; echo e3 back
        ovt rename d/f7 d/f7b 1; ovt rename d/f7b d/f1 1; ovt rename d/f1 d/f1 0; cat d/f1
        ls -A d
    """)
    assert "rename d/other d/other2 : EXDEV" in out


def test_links_and_identity(lower: Path, tmp_path: Path) -> None:
    """One st_dev for the mount; st_ino kept across copy-up (but not for a lower file with
    several links: its copy is a different file), hard links and rename;
    d_ino as stat says; fstat and statx on an fd agree with stat; merged directories
    report one link."""
    same_as_linux(lower, tmp_path, """
        ident() { stat -c %d:%i "$@"; }
        root=$(stat -c %d /)
        for p in / d d/f7 d/sub d/link; do
            [ "$(stat -c %d $p)" = "$root" ] && echo "$p: dev of /" || echo "$p: other dev"
        done
        a=$(ident d/f7 d d/sub x); h=$(ident d/hl)
        echo more >> d/f7; touch d/sub/new x/new; echo hl >> d/hl
        [ "$a" = "$(ident d/f7 d d/sub x)" ] && echo copy-up keeps ids || echo changed
        [ "$h" = "$(ident d/hl)" ] && echo hl kept || echo hl copy numbered anew
        [ "$(stat -c %i d/hl)" = "$(stat -c %i d/f6)" ] && echo hl same ino || echo hl differs
        cat d/hl d/f6
        ovt link d/f7 d/f7l; ovt link d/f2 d/f2l; ovt link d/f7 d/f1; ovt link d/nope d/n2
        rm d/f1; ovt link d/f7 d/f1; cat d/f1; rm d/f1; cat d/f1 d/f7
        [ "$(ident d/f7)" = "$(ident d/f7l)" ] && echo link same || echo link differs
        stat -c '%h %n' d/f7 d/f7l d/f2 d/f2l
        b=$(ident d/f7); mv d/f7 x/f7; [ "$b" = "$(ident x/f7)" ] && echo mv keeps || echo mv new
        mv d/f4 d/f4m; [ "$(stat -c %i d/f4m)" = "$(stat -c %i /d/f4m)" ] && echo stable
        touch /new; mkdir /newd; ln /new /new2
        [ "$(ident /new)" = "$(ident /new2)" ] && echo upper link same || echo upper differs
        for p in /new /newd /d/f8 /d/f1; do
            [ "$(stat -c %d $p)" = "$root" ] && echo "$p: dev of /" || echo "$p: other dev"
        done
        [ "$(stat -c %i /new)" = "$(stat -c %i /newd)" ] && echo clash || echo distinct
        ovt dino /; ovt dino d; ovt dino d/sub; ovt dino x
        ovt fid d/f8; ovt fid /new; ovt fid x/f7
        stat -c '%h %n' / d d/sub d/empty d/other x
        stat -f -c %T /
    """)


def test_mount_table_agrees_with_stat(lower: Path) -> None:
    """The device stat reports is the one the overlay's mountinfo line names (sandbox
    only: the native chroot has no /proc)."""
    res = run_sandbox(["/bin/sh", "-c", "ovt dev /; ovt dev /d/f1; echo >> /d/f1; "
                       "ovt dev /d/f1; grep ' / / ' /proc/self/mountinfo"],
                      rootfs=lower, extra=["--cwd", "/"])
    lines = res.stdout.split("\n")
    assert res.returncode == 0 and lines[0] == lines[1] == lines[2], res.stdout + res.stderr
    fields = lines[3].split()
    assert fields[2] == lines[0] and fields[fields.index("-") + 1] == "overlay", lines
