"""`--volume` bind mounts and `--tmpfs` mounts: where writes land, what the host sees, and
that a volume's symlinks resolve inside the sandbox's root."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from harness import PYTHON, REPO, describe, run_process, run_sandbox, sandbox_env

pytestmark = pytest.mark.slow
BUSYBOX = "/bin/busybox"


def cli(*argv: str):
    return run_process([PYTHON, "-m", "snakevisor", *argv], cwd=REPO, env=sandbox_env(),
                       input=None, timeout=60)


def test_volume_writes_reach_the_host_and_host_changes_are_seen(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "from-host").write_text("one\n")
    script = ("cat /v/from-host; echo two > /v/from-sandbox; mkdir /v/d; mv /v/from-sandbox /v/d/moved; "
              "echo changed > /v/from-host; cat /v/from-host")
    res = run_sandbox(["/bin/sh", "-c", script], extra=["--volume", f"{vol}:/v"])
    assert (res.returncode, res.stdout) == (0, "one\nchanged\n"), describe(res)
    assert (vol / "d" / "moved").read_text() == "two\n"
    assert (vol / "from-host").read_text() == "changed\n"


def test_read_only_volume(tmp_path: Path) -> None:
    vol = tmp_path / "ro"
    vol.mkdir()
    res = run_sandbox(["/bin/sh", "-c", "echo x > /v/f"], extra=["--volume", f"{vol}:/v:ro"])
    assert res.returncode != 0 and "Read-only file system" in res.stderr, describe(res)
    assert not (vol / "f").exists()


@pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="busybox-static is not installed")
def test_volume_symlinks_resolve_inside_the_sandbox_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "bin").mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    vol = tmp_path / "vol"
    vol.mkdir()
    os.symlink("/etc/shadow", vol / "evil")
    os.symlink("../../../../../../etc/passwd", vol / "climb")
    res = run_sandbox(["/bin/busybox", "sh", "-c", "cat /v/evil; cat /v/climb; echo done"],
                      rootfs=root, extra=["--volume", f"{vol}:/v"])
    assert res.stdout == "done\n", describe(res)  # neither the host's shadow nor passwd
    assert res.stderr.count("No such file or directory") == 2, describe(res)


def test_tmpfs_mount_has_its_size(tmp_path: Path) -> None:
    res = run_sandbox(["/bin/sh", "-c", "head -c 200000 /dev/zero > /s/big; echo $?; ls /s; "
                       "stat -f -c %T /s"], extra=["--tmpfs", "/s:size=100k"])
    lines = res.stdout.splitlines()
    assert lines[0] != "0" and "No space left on device" in res.stderr, describe(res)
    assert lines[1:] == ["big", "tmpfs"], describe(res)


def test_overlay_upper_on_a_host_directory(tmp_path: Path) -> None:
    """--overlay2 root:dir=PATH: the upper layer's bytes are in unlinked files of PATH (the
    sentry holds them open while the sandbox runs: checked from inside via a marker), the
    directory stays empty, and the root image is untouched."""
    store = tmp_path / "store"
    store.mkdir()
    script = ("head -c 3000000 /dev/zero | tr '\\0' x > /big && wc -c < /big && "
              "echo new > /etc/from-sandbox && cat /etc/from-sandbox && "
              f"ls -A {store} 2>&1 | wc -l")
    res = run_sandbox(["/bin/sh", "-c", script], extra=["--overlay2", f"root:dir={store}"])
    assert (res.returncode, res.stdout) == (0, "3000000\nnew\n0\n"), describe(res)
    assert list(store.iterdir()) == [] and not Path("/etc/from-sandbox").exists()


@pytest.mark.parametrize("flag,value", [
    ("--overlay2", "root:dir=/nonexistent-store"),
    ("--overlay2", "root:disk"),
    ("--volume", "/nonexistent-host-dir:/v"),
    ("--volume", "/tmp"),
    ("--volume", "/tmp:relative"),
    ("--volume", "/tmp:/v:maybe"),
    ("--tmpfs", "relative"),
    ("--tmpfs", "/s:size=lots"),
    ("--tmpfs", "/s:color=red"),
])
def test_bad_mount_flags_get_one_line(flag: str, value: str) -> None:
    res = cli("do", flag, value, "--", "/bin/true")
    assert res.returncode == 2 and "Traceback" not in res.stderr, describe(res)
    assert len(res.stderr.strip().splitlines()) == 1, describe(res)


def test_access_reports_each_mount(tmp_path: Path) -> None:
    vol = tmp_path / "ro"
    vol.mkdir()
    script = ("for p in /dev/shm /s /v /etc /dev/null /proc/self; do "
              "printf '%s ' $p; test -w $p && printf w; test -r $p && printf r; echo; done")
    res = run_sandbox(["/bin/sh", "-c", script], extra=["--tmpfs", "/s", "--volume", f"{vol}:/v:ro"])
    assert res.stdout.splitlines() == ["/dev/shm wr", "/s wr", "/v r", "/etc wr", "/dev/null wr",
                                       "/proc/self r"], describe(res)  # procfs: never W_OK


def test_volume_times_reach_the_host(tmp_path: Path) -> None:
    vol = tmp_path / "times"
    vol.mkdir()
    res = run_sandbox(["/bin/sh", "-c", "touch /v/t && touch -d '2001-02-03 04:05:06 UTC' /v/t"],
                      extra=["--volume", f"{vol}:/v"])
    assert res.returncode == 0, describe(res)
    assert int((vol / "t").stat().st_mtime) == 981173106


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 is not installed")
def test_sqlite_wal_on_a_volume(tmp_path: Path) -> None:
    """WAL mode needs record locks and a shared mapping of the -shm file between processes."""
    import subprocess
    vol = tmp_path / "db"
    vol.mkdir()
    script = ('cd /data && sqlite3 t.db "pragma journal_mode=wal; create table t(x); '
              'insert into t values (1),(2);" && sqlite3 t.db "insert into t values (3);" & '
              'wait; sqlite3 /data/t.db "select count(*) from t;"')
    res = run_sandbox(["/bin/bash", "-c", script], extra=["--volume", f"{vol}:/data"], timeout=120)
    assert res.returncode == 0 and res.stdout.split()[-1] == "3", describe(res)
    host = subprocess.run(["sqlite3", str(vol / "t.db"), "select count(*) from t;"],
                          capture_output=True, text=True, timeout=30)
    assert host.stdout.strip() == "3", host.stderr


def test_killing_the_sandbox_mid_write_leaves_the_host_consistent(tmp_path: Path) -> None:
    """SIGKILL of the sentry during a large write to a volume: what was written is in the one
    file being written, nothing appears anywhere else, and the rootfs is untouched (the
    overlay's writes were only ever in memory)."""
    import signal
    import subprocess
    import time
    vol = tmp_path / "vol"
    vol.mkdir()
    before_tmp = set(os.listdir("/tmp"))
    cmd = [PYTHON, "-m", "snakevisor", "do", "--volume", f"{vol}:/v", "--", "/bin/sh", "-c",
           "echo overlay-only > /etc/snakevisor-kill-test; "
           "dd if=/dev/zero of=/v/big bs=1M count=4000 2>/dev/null"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=sandbox_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not ((vol / "big").exists() and (vol / "big").stat().st_size):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert os.listdir(vol) == ["big"]
    assert 0 < (vol / "big").stat().st_size < 4000 << 20  # killed mid-write, data landed
    assert not os.path.exists("/etc/snakevisor-kill-test")
    assert {n for n in set(os.listdir("/tmp")) - before_tmp if n.startswith("snakevisor")} == set()
