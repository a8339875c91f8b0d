"""The sandbox's own /dev (emulated devices, never the host's) and /dev/shm (a tmpfs)."""
from __future__ import annotations

import os

import pytest

from harness import describe, run_sandbox

pytestmark = pytest.mark.slow


def sh(script: str, **kw):
    return run_sandbox(["/bin/sh", "-c", script], timeout=60, **kw)


def test_only_emulated_devices() -> None:
    res = sh("ls /dev | tr '\\n' ' '")
    assert res.returncode == 0, describe(res)
    names = set(res.stdout.split())
    assert {"null", "zero", "full", "random", "urandom", "tty", "fd", "stdin", "shm"} <= names
    host_only = {n for n in os.listdir("/dev") if n.startswith(("sd", "vd", "nvme", "loop", "kvm"))}
    assert not names & host_only, res.stdout


def test_device_behaviour() -> None:
    res = sh("echo gone > /dev/null && head -c 3 /dev/zero | od -An -tx1 && "
             "head -c 16 /dev/urandom | wc -c && (dd if=/dev/zero of=/dev/full bs=1 count=1) 2>&1 | head -1; "
             "stat -c '%t:%T %a' /dev/null")
    assert res.returncode == 0, describe(res)
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["00", "00", "00"], res.stdout
    assert lines[1].strip() == "16", res.stdout
    assert "No space left on device" in lines[2], res.stdout
    assert lines[3] == "1:3 666", res.stdout


def test_dev_shm_is_a_private_tmpfs() -> None:
    marker = "snakevisor-test-shm-marker"
    res = sh(f"echo data > /dev/shm/{marker} && cat /dev/shm/{marker} && stat -f -c %T /dev/shm "
             f"&& rm /dev/shm/{marker} && ls -A /dev/shm | wc -l")
    assert res.returncode == 0, describe(res)
    assert res.stdout.split() == ["data", "tmpfs", "0"], res.stdout
    assert not os.path.exists(f"/dev/shm/{marker}")  # never on the host


def test_posix_semaphores_without_a_writable_root() -> None:
    script = ("import multiprocessing as mp\n"
              "mp.set_start_method('fork')\n"
              "lock = mp.Lock()\n"
              "with mp.Pool(2) as p:\n"
              "    print(sum(p.map(abs, [-1, -2, -3])))\n")
    res = run_sandbox(["/usr/bin/python3", "-c", script], timeout=120)
    assert (res.returncode, res.stdout) == (0, "6\n"), describe(res)


TMPFS_SCRIPT = r'''
set -u
cd "$1"
mkdir d && mkdir d/sub && echo one > d/f && ln -s f d/link && ln d/f d/hard
stat -c '%n %F %a %h %s' d d/sub d/f d/link d/hard
readlink d/link; cat d/link
mv d/f d/g && ls d | tr '\n' ' '; echo
mv d/sub d/g 2>&1 | sed 's/.*: //'
rmdir d 2>&1 | sed 's/.*: //'
chmod 600 d/g && stat -c '%a' d/g
truncate -s 10 d/g && stat -c '%s' d/g
touch -d '2001-02-03 04:05:06 UTC' d/g && stat -c '%Y' d/g
mkdir d 2>&1 | sed 's/.*: //'
ln -s /nowhere d/dangling && cat d/dangling 2>&1 | sed 's/.*: //'
rm -r d && ls -A | wc -l
'''


def test_tmpfs_names_like_linux(tmp_path) -> None:
    """The same script in a host tmpfs and in the sandbox's /dev/shm prints the same."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory(dir="/dev/shm") as native_dir:
        native = subprocess.run(["/bin/sh", "-c", TMPFS_SCRIPT, "sh", native_dir],
                                capture_output=True, text=True, timeout=60)
    sandboxed = run_sandbox(["/bin/sh", "-c", "mkdir /dev/shm/w && exec sh -c \"$0\" sh /dev/shm/w",
                             TMPFS_SCRIPT], timeout=60)
    assert native.returncode == 0, native.stderr
    assert (sandboxed.returncode, sandboxed.stdout) == (0, native.stdout), describe(sandboxed)


FIFO_SCRIPT = r'''
import errno, os, sys, threading
d = sys.argv[1]
f = os.path.join(d, "fifo")
os.mkfifo(f, 0o640)
print(oct(os.stat(f).st_mode))
try:
    os.open(f, os.O_WRONLY | os.O_NONBLOCK)
except OSError as e:
    print("lone non-blocking writer:", errno.errorcode[e.errno])
r = os.open(f, os.O_RDONLY | os.O_NONBLOCK)
print("non-blocking reader opens:", r >= 0)
w = os.open(f, os.O_WRONLY | os.O_NONBLOCK)
os.write(w, b"ping")
print("read:", os.read(r, 10))
os.close(w); os.close(r)
pid = os.fork()
if pid == 0:
    fd = os.open(f, os.O_WRONLY)        # waits for the reader
    os.write(fd, b"from child")
    os._exit(0)
fd = os.open(f, os.O_RDONLY)            # waits for the writer
print("blocking rendezvous:", os.read(fd, 20))
os.waitpid(pid, 0)
rw = os.open(f, os.O_RDWR)              # never waits
print("O_RDWR opens alone:", rw >= 0)
os.mknod(os.path.join(d, "nul"), 0o20666, os.makedev(1, 3))
with open(os.path.join(d, "nul"), "w") as n:
    print("mknod'ed null takes", n.write("x" * 5))
os.unlink(f)
'''


def test_fifos_and_device_nodes_like_linux() -> None:
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory(dir="/dev/shm") as native_dir:
        native = subprocess.run(["/usr/bin/python3", "-c", FIFO_SCRIPT, native_dir],
                                capture_output=True, text=True, timeout=60)
    # (the sandbox's /dev/shm is nodev, as runc makes it; this host's is not: a plain tmpfs)
    sandboxed = run_sandbox(["/bin/sh", "-c", "mkdir /dev/shm/w && exec /usr/bin/python3 -c \"$0\" /dev/shm/w",
                             FIFO_SCRIPT], extra=["--tmpfs=/dev/shm"], timeout=60)
    assert native.returncode == 0, native.stderr
    assert (sandboxed.returncode, sandboxed.stdout) == (0, native.stdout), describe(sandboxed)
