"""Real applications on each of the sandbox's file systems, judged against the same work done
natively or by what the host sees afterwards.

Why: test_fs_tools.py runs everyday tools once, on the overlay root.  Applications also meet
the other mounts a container has (a `--tmpfs`, a `--volume` shared with the host), move data
between them (a rename across mounts is EXDEV and makes mv copy), read /proc for ps/top/free,
keep databases and git repositories the host opens afterwards, and get killed mid-write.  A
volume is shared with the host, so what one side does the other must see at once, and a
rootfs is untrusted input, so its symlinks must never reach host files.

The places: "overlay" is a directory created in the default overlay root (writes land in the
sentry's memory), "tmpfs" is `--tmpfs /t`, "volume" is `--volume HOSTDIR:/v`.
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import select
import shutil
import signal
import sqlite3
import stat
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Iterable

import pytest

from harness import (DET_ENV, REPO, assert_same_output, describe, env_flags, run_native,
                     run_sandbox, sandbox_command, sandbox_env)

pytestmark = pytest.mark.slow

BASH = "/bin/bash"
BUSYBOX = "/bin/busybox"
PYTHON3 = "/usr/bin/python3"

#: place -> the directory the sandbox works in there
PLACES = {"overlay": "/work-apps", "tmpfs": "/t", "volume": "/v"}
#: Every run mounts both, so a script can move data between any two places.
TMPFS_FLAGS = ("--tmpfs", "/t")


def need(*tools: str) -> None:
    for tool in tools:
        if not (os.path.exists(tool) if tool.startswith("/") else shutil.which(tool)):
            pytest.skip(f"{tool} is not installed")


def volume(tmp_path: Path, name: str = "vol") -> Path:
    path = tmp_path / name
    path.mkdir(parents=True)
    return path


def mounts(vol: Path, at: str = "/v") -> list[str]:
    """CLI flags: the tmpfs at /t and the host directory vol at `at`."""
    return [*TMPFS_FLAGS, "--volume", f"{vol}:{at}"]


def sandbox_bash(script: str, args: Iterable[str], extra: Iterable[str] = (),
                 timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """bash -c script with args, in the host's root with DET_ENV; the overlay place is made first."""
    start = f"mkdir -p {PLACES['overlay']} && exec {BASH} -c \"$0\" bash \"$@\""
    return run_sandbox([BASH, "-c", start, script, *args], extra=[*env_flags(), *extra], timeout=timeout)


class Session:
    """A `snakevisor do` run driven line by line: read what it prints, act on the host, answer
    on its stdin.  Used where the host must act while the sandbox is in a known state."""

    def __init__(self, args: list[str], extra: Iterable[str] = ()) -> None:
        self.proc = subprocess.Popen(sandbox_command(args, extra=[*env_flags(), *extra]), cwd=REPO,
                                     env=sandbox_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.buffer = b""

    def line(self, timeout: float = 60) -> str:
        """The next line of output (the test fails with the run's stderr if none comes)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                self.fail(f"no line within {timeout}s")
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                self.fail("output ended")
            self.buffer += chunk
        got, self.buffer = self.buffer.split(b"\n", 1)
        return got.decode(errors="replace")

    def send(self, text: str = "go") -> None:
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 60) -> str:
        """Close stdin, wait for exit status 0; the rest of the output."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"did not exit within {timeout}s")
        rest = (self.buffer + out).decode(errors="replace")
        assert self.proc.returncode == 0, f"status {self.proc.returncode}\n{rest}\n{err.decode()[-3000:]}"
        return rest

    def kill(self) -> None:
        """SIGKILL the whole `snakevisor do` process group, as a container runtime would."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def fail(self, why: str) -> None:
        self.kill()
        err = self.proc.stderr.read().decode(errors="replace")
        pytest.fail(f"{why}\n--- output so far\n{self.buffer[-2000:]!r}\n--- stderr\n{err[-3000:]}")


# --------------------------------------------------------------------------- tools on each mount

#: A small tree with every kind of entry tar and cp must carry: nested directories with their
#: own modes, an empty one, text and binary data, a relative and a dangling symlink, a hard
#: link and a file with an old mtime.  Shell functions print what must survive a copy.
TREE = r'''
set -e
mkdir -p src/a/b src/empty
echo one > src/a/f
seq 1 40000 > src/a/b/big
printf 'x\0y\377' > src/a/bin
ln -s a/f src/link
ln -s /nonexistent src/dangling
ln src/a/f src/hard
chmod 640 src/a/f
chmod 700 src/a/b
chmod 750 src/empty
touch -h -d '2001-02-03 04:05:06 UTC' src/a/f src/link
entries() { (cd "$1" && find . ! -type d -printf '%p %y %m %s %TY-%Tm-%Td %n %l\n' | sort); }
dirs() { (cd "$1" && find . -type d -printf '%p %m\n' | sort); }
names() { (cd "$1" && find . | sort); }
'''

TAR = TREE + r'''
tar --sort=name -czf t.tgz src
tar tzvf t.tgz | awk '{print $1, $6, $7, $8}' | sort
mkdir out
tar xzf t.tgz -C out
diff -r --no-dereference src out/src && echo "contents equal"
entries src > want
entries out/src | diff want - && echo "entries equal"
dirs src | diff - <(dirs out/src) && echo "directories equal"
'''

COPY_MOVE = TREE + r'''
other=$2
entries src > want-entries
dirs src > want-dirs
cp -a src "$other/copy"
diff -r --no-dereference src "$other/copy" && echo "cp -a: contents equal"
entries "$other/copy" | diff want-entries - && dirs "$other/copy" | diff want-dirs - &&
    echo "cp -a: entries equal"
mv "$other/copy" moved
test ! -e "$other/copy" && echo "mv: gone from its old place"
entries moved | diff want-entries - && dirs moved | diff want-dirs - && echo "mv back: entries equal"
mv src "$other/src2"
entries "$other/src2" | diff want-entries - && echo "mv a tree: entries equal"
chmod -R go-rwx moved
(cd moved && find . -printf '%m %p\n' | sort)
du -s --apparent-size -b moved/a/b/big moved/a/f moved/a/bin | cut -f1
stat -c '%n %s %h %F' moved/a/f moved/link moved/dangling
rm -rf moved want-entries want-dirs "$other/src2"
names .
names "$other"
'''

PAIRS = [("overlay", "tmpfs"), ("tmpfs", "volume"), ("volume", "overlay")]

def in_first(script: str) -> str:
    """script, run in the directory given as $1 (the others are its $2, ...)."""
    return f"cd \"$1\" && {{\n{script}\n}}"


def native_bash(script: str, tmp_path: Path,
                places: int = 1) -> tuple[list[Path], subprocess.CompletedProcess[str]]:
    """Run script natively in `places` fresh directories (its $1, $2, ...); it must succeed."""
    dirs = [volume(tmp_path, f"native-{i}") for i in range(places)]
    res = run_native([BASH, "-c", in_first(script), "bash", *map(str, dirs)])
    assert res.returncode == 0, describe(res)
    return dirs, res


def in_places(script: str, *places: str) -> tuple[str, list[str]]:
    """The script to run in the sandbox in the first place, and its arguments."""
    return in_first(script), [PLACES[p] for p in places]


@pytest.mark.parametrize("place", sorted(PLACES))
def test_tar_round_trip(place: str, tmp_path: Path) -> None:
    """tar czf + tar xzf: the extracted tree has the same bytes, file and directory modes,
    sizes, mtimes, symlink targets and hard links, natively and in each place.  (GNU tar
    sets directory modes last, through chmod("/proc/self/fd/N") of an O_PATH fd.)"""
    need(BASH, "tar", "gzip")
    _, native = native_bash(TAR, tmp_path)
    assert native.stdout.endswith("contents equal\nentries equal\ndirectories equal\n"), describe(native)
    script, args = in_places(TAR, place)
    assert_same_output(native, sandbox_bash(script, args, mounts(volume(tmp_path))))


@pytest.mark.parametrize("here,other", PAIRS, ids=[f"{h}-{o}" for h, o in PAIRS])
def test_copy_and_move_between_mounts(here: str, other: str, tmp_path: Path) -> None:
    """cp -a to another mount, mv back (a rename across mounts is EXDEV: mv copies and
    removes), mv of a whole tree, chmod -R, du, stat, rm -rf: same output as natively between
    two directories, and nothing left behind in either place.  cp -a and mv copy POSIX ACLs
    (getxattr, then setxattr on the copy): a refused setxattr is an error message."""
    need(BASH)
    _, native = native_bash(COPY_MOVE, tmp_path, places=2)
    assert "mv a tree: entries equal\n" in native.stdout, describe(native)
    script, args = in_places(COPY_MOVE, here, other)
    vol = volume(tmp_path)
    sandboxed = sandbox_bash(script, args, mounts(vol))
    assert_same_output(native, sandboxed)
    assert sandboxed.stderr == native.stderr == ""  # mv only warns when it cannot keep modes
    assert os.listdir(vol) == []


# --------------------------------------------------------------------------- /proc readers

SYSTEM_TOOLS = r'''
ps aux
echo ==
top -bn1
echo ==
free -b
echo ==
uptime
echo ==
df -B1 / /t /v
echo ==
stat -f -c %T /t /v
echo ==
grep MemTotal /proc/meminfo
'''


def test_ps_top_free_uptime_df(tmp_path: Path) -> None:
    """procps and df read /proc and statfs: they must show the sandbox's processes only (bash
    as pid 1 and the tool itself), its mounts with their real sizes, and agree with /proc."""
    need(BASH, "ps", "top", "free", "uptime", "df")
    vol = volume(tmp_path)
    res = sandbox_bash(SYSTEM_TOOLS, [], ["--tmpfs", "/t:size=8m", "--volume", f"{vol}:/v"])
    assert res.returncode == 0, describe(res)
    ps, top, free, uptime, df, fstypes, meminfo = res.stdout.split("==\n")

    ps_lines = ps.splitlines()
    assert ps_lines[0].split()[:2] == ["USER", "PID"], describe(res)
    procs = {int(line.split()[1]): line.split(None, 10)[10] for line in ps_lines[1:]}
    assert procs.pop(1).startswith(f"{BASH} -c "), describe(res)
    assert list(procs.values()) == ["ps aux"], describe(res)  # no host process is visible

    tasks = re.search(r"^Tasks: +(\d+) total", top, re.M)
    assert tasks, describe(res)
    table = top[top.index("  PID "):].splitlines()[1:]
    assert int(tasks.group(1)) == len(table) and 2 <= len(table) <= 3, describe(res)
    assert {line.split()[-1] for line in table} >= {"bash", "top"}, describe(res)

    mem = free.splitlines()[1].split()
    kib = int(meminfo.split()[1])
    assert mem[0] == "Mem:" and int(mem[1]) == kib * 1024 > 0, describe(res)

    assert re.fullmatch(r" \d\d:\d\d:\d\d up .+, +\d+ users?, +load average: "
                        r"\d+\.\d\d, \d+\.\d\d, \d+\.\d\d\n", uptime), describe(res)

    rows = {line.split()[-1]: line.split() for line in df.splitlines()[1:]}
    assert sorted(rows) == ["/", "/t", "/v"], describe(res)
    assert rows["/t"][0] == "tmpfs" and int(rows["/t"][1]) == 8 << 20, describe(res)
    host = os.statvfs(vol)
    assert int(rows["/v"][1]) == host.f_blocks * host.f_frsize, describe(res)
    native_type = run_native(["stat", "-f", "-c", "%T", vol]).stdout
    assert fstypes == "tmpfs\n" + native_type, describe(res)


# --------------------------------------------------------------------------- git

GIT = r'''
set -e
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export GIT_AUTHOR_NAME=n GIT_AUTHOR_EMAIL=a@b GIT_COMMITTER_NAME=n GIT_COMMITTER_EMAIL=a@b
export GIT_AUTHOR_DATE='2001-02-03 04:05:06 +0000' GIT_COMMITTER_DATE='2001-02-03 04:05:06 +0000'
git init -q -b main repo
cd repo
for i in 1 2 3; do
    seq 1 $((i * 1000)) > f$i; mkdir -p d$i; echo $i > d$i/x
    git add f$i d$i; git commit -qm "add $i"
done
chmod +x f3 && git commit -qam "exec bit"
git mv f1 renamed && git rm -q f2 && git commit -qm "mv and rm"
git gc -q
git log --format='%H %s'
git status --porcelain | wc -l
cd ..
git clone -q repo clone
git -C clone log --format=%H -1
'''


def test_git_repository_on_a_volume_is_sound_on_the_host(tmp_path: Path) -> None:
    """init/add/commit/mv/rm/gc/clone on a volume: the same commit ids as natively (same
    trees, modes and dates), and the host's git finds both repositories intact, with the
    clone's pack hard-linked as a local clone does natively."""
    need(BASH, "git")
    (native_dir,), native = native_bash(GIT, tmp_path)
    vol = volume(tmp_path)
    assert_same_output(native, sandbox_bash(*in_places(GIT, "volume"), mounts(vol)))
    for repo in ("repo", "clone"):
        fsck = run_native(["git", "-C", vol / repo, "fsck", "--strict", "--no-progress"])
        assert fsck.returncode == 0, describe(fsck)
        status = run_native(["git", "-C", vol / repo, "status", "--porcelain"])
        assert (status.returncode, status.stdout) == (0, ""), describe(status)

    def pack_links(root: Path) -> list[int]:
        return sorted(p.stat().st_nlink for p in (root / "clone/.git/objects/pack").glob("*.pack"))
    assert pack_links(vol) == pack_links(native_dir) == [2]


# --------------------------------------------------------------------------- venv + pip

WHEEL_NAME, WHEEL_VERSION = "snakevisor_tiny", "1.0"


def build_wheel(out: Path) -> Path:
    """A pure-Python wheel made by hand (a zip with METADATA, WHEEL and RECORD): no network,
    no build backend."""
    info = f"{WHEEL_NAME}-{WHEEL_VERSION}.dist-info"
    files = {
        f"{WHEEL_NAME}/__init__.py": "def hello():\n    return 'hello from the wheel'\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {WHEEL_NAME}\nVersion: {WHEEL_VERSION}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: snakevisor-tests\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }

    def record(data: bytes) -> str:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        return f"sha256={digest},{len(data)}"
    lines = [f"{name},{record(text.encode())}" for name, text in files.items()] + [f"{info}/RECORD,,"]
    path = out / f"{WHEEL_NAME}-{WHEEL_VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in files.items():
            whl.writestr(name, text)
        whl.writestr(f"{info}/RECORD", "\n".join(lines) + "\n")
    return path


def test_venv_and_pip_install_of_a_local_wheel(tmp_path: Path) -> None:
    """python3 -m venv (ensurepip installs pip into it), pip install --no-index of a wheel,
    import from the venv's python.  The venv lies on a volume mounted at its host path, so the
    host's python then uses the same venv: it must be a complete, working environment."""
    need(PYTHON3)
    wheel = build_wheel(volume(tmp_path, "wheels"))
    vol = volume(tmp_path, "venvs")
    venv = vol / "venv"
    script = (f"{PYTHON3} -m venv {venv} && {venv}/bin/pip install --no-index --disable-pip-version-check "
              f"-q {wheel} && {venv}/bin/python -c 'import {WHEEL_NAME} as m, sys; "
              f"print(m.hello(), sys.prefix, m.__file__.startswith(sys.prefix))'")
    res = sandbox_bash(script, [], ["--volume", f"{vol}:{vol}", "--env", "PIP_CONFIG_FILE=/dev/null"],
                       timeout=180)
    assert (res.returncode, res.stdout) == (0, f"hello from the wheel {venv} True\n"), describe(res)
    host = run_native([venv / "bin/python", "-c", f"import {WHEEL_NAME} as m; print(m.hello())"])
    assert (host.returncode, host.stdout) == (0, "hello from the wheel\n"), describe(host)
    listed = run_native([venv / "bin/python", "-m", "pip", "list", "--disable-pip-version-check"],
                        env={**DET_ENV, "PIP_CONFIG_FILE": "/dev/null"})
    assert re.search(rf"^{WHEEL_NAME.replace('_', '[-_]')} +{WHEEL_VERSION}$", listed.stdout, re.M), \
        describe(listed)


# --------------------------------------------------------------------------- sqlite

SQLITE_WAL = """
import sqlite3, sys
db = sqlite3.connect("/v/t.db", isolation_level=None, timeout=0)
print(db.execute("pragma journal_mode=wal").fetchone()[0], flush=True)
db.execute("pragma wal_autocheckpoint=0")
db.execute("create table t(x)")
db.execute("begin")
db.executemany("insert into t values (?)", [(i,) for i in range(100)])
db.execute("commit")
print("written", flush=True)
sys.stdin.readline()
print(*db.execute("select count(*), sum(x) from t").fetchone(), flush=True)
db.execute("insert into t values (1000)")
db.close()
"""


def host_sqlite(db: Path, sql: str) -> subprocess.CompletedProcess[str]:
    return run_native(["sqlite3", db, sql], timeout=30)


def test_sqlite_wal_shared_with_the_host(tmp_path: Path) -> None:
    """A WAL database on a volume, open in the sandbox: the host's sqlite3 reads rows that are
    only in the -wal file (through the -shm index the sandbox wrote via a shared mapping),
    and its insert is then seen by the sandbox's open connection; after a clean close the
    host finds one consistent database file."""
    need(PYTHON3, "sqlite3")
    vol = volume(tmp_path)
    db = vol / "t.db"
    run = Session([PYTHON3, "-c", SQLITE_WAL], ["--volume", f"{vol}:/v"])
    try:
        assert run.line() == "wal"
        assert run.line() == "written"
        assert (vol / "t.db-wal").stat().st_size > 0
        seen = host_sqlite(db, "select count(*), sum(x) from t; insert into t values (500);")
        assert (seen.returncode, seen.stdout) == (0, "100|4950\n"), describe(seen)
        run.send()
        assert run.line() == "101 5450"
        run.finish()
    finally:
        run.kill()
    assert sorted(os.listdir(vol)) == ["t.db"]  # the last close checkpoints and removes -wal/-shm
    final = host_sqlite(db, "pragma integrity_check; select count(*), sum(x) from t;")
    assert (final.returncode, final.stdout) == (0, "ok\n102|6450\n"), describe(final)


SQLITE_LOCKS = """
import sqlite3, sys
db = sqlite3.connect("/v/t.db", isolation_level=None, timeout=0)
db.execute("pragma journal_mode=wal")
db.execute("create table t(x)")
db.execute("begin immediate")
db.execute("insert into t values (1)")
print("holding the write lock", flush=True)
sys.stdin.readline()
db.execute("commit")
print("committed", flush=True)
sys.stdin.readline()
try:
    db.execute("insert into t values (2)")
    print("inserted while the host holds the write lock", flush=True)
except sqlite3.OperationalError as e:
    print(e, flush=True)
"""


def test_sqlite_locks_exclude_host_writers(tmp_path: Path) -> None:
    need(PYTHON3, "sqlite3")
    vol = volume(tmp_path)
    db = vol / "t.db"
    run = Session([PYTHON3, "-c", SQLITE_LOCKS], ["--volume", f"{vol}:/v"])
    try:
        assert run.line() == "holding the write lock"
        blocked = host_sqlite(db, "insert into t values (500);")
        run.send()
        assert run.line() == "committed"
        host = sqlite3.connect(db, isolation_level=None, timeout=0)
        host.execute("begin immediate")
        host.execute("insert into t values (7)")
        run.send()
        inside = run.line()
        host.execute("commit")
        host.close()
        run.finish()
    finally:
        run.kill()
    assert blocked.returncode != 0 and "database is locked" in blocked.stderr, describe(blocked)
    assert inside == "database is locked"
    final = host_sqlite(db, "pragma integrity_check; "
                            "select group_concat(x) from (select x from t order by x);")
    assert final.stdout == "ok\n1,7\n", describe(final)


# --------------------------------------------------------------------------- host changes

WATCH = """
import os, sys, time
def text(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None
def holds(seen):
    try:
        return seen()
    except FileNotFoundError:  # the host is between two steps of a change
        return False
def wait(what, seen):
    deadline = time.monotonic() + 30
    while not holds(seen):
        if time.monotonic() > deadline:
            print("never saw", what, flush=True)
            sys.exit(1)
        time.sleep(0.01)
    print("saw", what, flush=True)
log = open("/v/log")
print("ready", repr(log.read()), repr(text("/v/f")), flush=True)
wait("in-place write", lambda: text("/v/f") == "two\\n")
wait("replace by rename", lambda: text("/v/f") == "three\\n")
wait("append on an open file", lambda: log.read() == "appended\\n")
wait("new name in the listing", lambda: "new" in os.listdir("/v"))
wait("new directory", lambda: os.path.isdir("/v/d"))
wait("file in the new directory", lambda: text("/v/d/inner") == "deep\\n")
wait("unlink", lambda: not os.path.exists("/v/new"))
wait("chmod", lambda: os.stat("/v/f").st_mode & 0o777 == 0o600)
wait("truncate", lambda: os.stat("/v/f").st_size == 0)
wait("directory replaced", lambda: text("/v/d/inner") is None and os.listdir("/v/d") == ["other"])
"""


def test_host_changes_in_a_volume_are_seen_at_once(tmp_path: Path) -> None:
    """A sandboxed loop polls a volume while the test changes it from the host, one change at
    a time: every change is seen (no cached content, attributes, names or directories)."""
    need(PYTHON3)
    vol = volume(tmp_path)
    (vol / "f").write_text("one\n")
    (vol / "log").write_text("")

    def replace_file() -> None:
        (vol / "f.tmp").write_text("three\n")
        os.rename(vol / "f.tmp", vol / "f")

    def replace_dir() -> None:
        os.rename(vol / "d", vol / "d.old")
        (vol / "d").mkdir()
        (vol / "d" / "other").write_text("")

    def append() -> None:
        with open(vol / "log", "a") as f:
            f.write("appended\n")
    changes = [
        ("in-place write", lambda: (vol / "f").write_text("two\n")),
        ("replace by rename", replace_file),
        ("append on an open file", append),
        ("new name in the listing", lambda: (vol / "new").write_text("n\n")),
        ("new directory", lambda: (vol / "d").mkdir()),
        ("file in the new directory", lambda: (vol / "d" / "inner").write_text("deep\n")),
        ("unlink", lambda: (vol / "new").unlink()),
        ("chmod", lambda: os.chmod(vol / "f", 0o600)),
        ("truncate", lambda: os.truncate(vol / "f", 0)),
        ("directory replaced", replace_dir),
    ]
    run = Session([PYTHON3, "-c", WATCH], ["--volume", f"{vol}:/v"])
    try:
        assert run.line() == "ready '' 'one\\n'"
        for what, change in changes:
            change()
            assert run.line() == f"saw {what}"
        run.finish()
    finally:
        run.kill()


RENAMED_CWD = """
import os, sys
os.chdir(sys.argv[1])
os.mkdir("a")
with open("a/f", "w") as f:
    f.write("in a")
fd = os.open("a", os.O_RDONLY | os.O_DIRECTORY)
os.chdir("a")
os.rename("../a", "../b")
os.mkdir("../a")
with open("../a/f", "w") as f:
    f.write("new a")
print("cwd:", os.path.basename(os.getcwd()), open("f").read())
with open(os.open("f", os.O_RDONLY, dir_fd=fd)) as f:
    print("openat:", f.read())
print("fd link:", os.path.basename(os.readlink(f"/proc/self/fd/{fd}")))
"""


@pytest.mark.parametrize("place", sorted(PLACES))
def test_cwd_and_directory_fds_follow_a_renamed_directory(place: str, tmp_path: Path) -> None:
    """A process in directory a (cwd and an open fd) while a is renamed to b and a new a made:
    its relative lookups still reach b's files, and getcwd and the fd's link name b."""
    need(PYTHON3)
    native = run_native([PYTHON3, "-c", RENAMED_CWD, volume(tmp_path, "native")])
    assert native.stdout == "cwd: b in a\nopenat: in a\nfd link: b\n", describe(native)
    sandboxed = sandbox_bash(f'exec {PYTHON3} -c "$1" "$2"', [RENAMED_CWD, PLACES[place]],
                             mounts(volume(tmp_path)))
    assert_same_output(native, sandboxed)


# --------------------------------------------------------------------------- the rootfs

def busybox_root(tmp_path: Path) -> Path:
    """A scratch rootfs holding only the static busybox, an /etc and a work directory."""
    need(BUSYBOX)
    root = tmp_path / "root"
    for d in ("bin", "etc", "w"):
        (root / d).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    return root


def snapshot(root: Path, times: bool = True) -> dict[str, tuple]:
    """Everything observable about a tree: per path its type, mode, size, link count, content
    digest or link target, and (with times) its mtime."""
    paths = [str(root)] + [os.path.join(dirpath, name) for dirpath, dirnames, filenames in os.walk(root)
                           for name in [*dirnames, *filenames]]
    out = {}
    for path in paths:
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode):
            body = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            body = os.readlink(path)
        else:
            body = ""
        size = st.st_size if not stat.S_ISDIR(st.st_mode) else None
        out[os.path.relpath(path, root)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), size,
                                            st.st_nlink, body, *((st.st_mtime_ns,) if times else ()))
    return out


SHADOW_LINKS = {"abs": "/etc/shadow", "w/rel": "../../../../../../etc/shadow", "etclink": "/etc"}
SHADOW_READS = ["/abs", "/w/rel", "/etclink/shadow", "/w/../../etc/shadow",
                "/proc/self/root/etc/shadow", "/proc/1/root/abs"]
DECOY = "decoy:inside:the:root\n"
ROOT_MODES = {"overlay": [], "writable-root": ["--writable-root"]}


def shadow_root(tmp_path: Path, decoy: bool) -> Path:
    """A busybox rootfs with symlinks that name /etc/shadow, and a decoy shadow of its own."""
    root = busybox_root(tmp_path)
    if decoy:
        (root / "etc" / "shadow").write_text(DECOY)
    for link, target in SHADOW_LINKS.items():
        os.symlink(target, root / link)
    return root


def host_shadow_untouched(res: subprocess.CompletedProcess[str], before: bytes | None) -> None:
    """No line of the host's /etc/shadow in the output, and the file is as it was."""
    if before is not None:
        assert not set(before.splitlines()) & set(res.stdout.encode().splitlines()), describe(res)
        assert Path("/etc/shadow").read_bytes() == before


def read_host_shadow() -> bytes | None:
    return Path("/etc/shadow").read_bytes() if os.access("/etc/shadow", os.R_OK) else None


@pytest.mark.parametrize("mode", sorted(ROOT_MODES))
@pytest.mark.parametrize("decoy", [True, False], ids=["decoy", "missing"])
def test_rootfs_symlinks_to_etc_shadow_stay_inside(decoy: bool, mode: str, tmp_path: Path) -> None:
    """Symlinks planted in the rootfs that name /etc/shadow (absolute, climbing, through a
    linked directory), and paths through /proc/PID/root, resolve inside the container root:
    they read its own /etc/shadow, or fail with ENOENT when it has none.  An append through
    one (which creates the target when there is none, as open(O_CREAT) through a dangling
    link does) lands in the overlay (the rootfs unchanged) or, with the root writable, in
    the rootfs's file."""
    root = shadow_root(tmp_path, decoy)
    host = read_host_shadow()
    script = "; ".join(f"cat {p} || echo 'no {p}'" for p in SHADOW_READS)
    script += "; readlink /abs; echo appended >> /abs && cat /etc/shadow"
    expect = "".join(DECOY if decoy else f"no {p}\n" for p in SHADOW_READS) + "/etc/shadow\n"
    shadow = (DECOY if decoy else "") + "appended\n"  # without a decoy, the append creates it
    before = snapshot(root)
    res = run_sandbox(["/bin/busybox", "sh", "-c", script], rootfs=root, extra=ROOT_MODES[mode])
    assert (res.returncode, res.stdout) == (0, expect + shadow), describe(res)
    host_shadow_untouched(res, host)
    if mode == "overlay":
        assert snapshot(root) == before
    else:
        assert (root / "etc" / "shadow").read_text() == shadow


MOUNT_LINKS = {"etc/mtab": "../proc/self/mounts", "w/null": "/dev/null",
               "w/proc": "/proc/self/root/etc/shadow", "w/tmp": "/t"}
@pytest.mark.parametrize("mode", sorted(ROOT_MODES))
def test_rootfs_symlinks_into_the_sandbox_mounts(mode: str, tmp_path: Path) -> None:
    """Symlinks of the rootfs that point into the sandbox's own mounts reach those mounts:
    /etc/mtab -> ../proc/self/mounts (as in Debian), a link to /dev/null, one through
    /proc/self/root, one to a --tmpfs directory (a file created through it lands there)."""
    root = shadow_root(tmp_path, decoy=True)
    for link, target in MOUNT_LINKS.items():
        os.symlink(target, root / link)
    script = ("head -1 /etc/mtab | cut -d' ' -f2; echo x > /w/null && cat /w/null /w/proc; ls -d /w/tmp/; "
              "echo y > /w/tmp/f && cat /t/f")
    res = run_sandbox(["/bin/busybox", "sh", "-c", script], rootfs=root,
                      extra=[*ROOT_MODES[mode], *TMPFS_FLAGS])
    assert (res.returncode, res.stdout) == (0, "/\n" + DECOY + "/w/tmp/\ny\n"), describe(res)


MUTATE = r'''
cd "$1"
echo new > w/created
echo more >> etc/config
: > etc/truncated
chmod 600 etc/modes
mv etc/renamed-src etc/renamed-dst
rm etc/deleted
rm -r old
mv keep w/moved
rmdir emptydir
mkdir -p w/new/deeper
ln -s ../etc/config w/symlink
ln etc/config w/hardlink
touch -d '2001-02-03 04:05:06' w/dated
mkfifo w/fifo
find . | sort
for f in $(find . -type f | sort); do echo "$f $(stat -c '%a %s %h' $f) $(md5sum < $f | cut -c1-8)"; done
for d in $(find . -type d | sort); do echo "$d $(stat -c '%a' $d)"; done
for l in $(find . -type l | sort); do echo "$l -> $(readlink $l)"; done
'''


def rootfs_tree(tmp_path: Path) -> Path:
    root = busybox_root(tmp_path)
    for name, text in {"config": "base\n", "truncated": "data\n", "modes": "m\n",
                       "renamed-src": "r\n", "deleted": "d\n"}.items():
        (root / "etc" / name).write_text(text)
    (root / "old" / "sub").mkdir(parents=True)
    (root / "old" / "sub" / "f").write_text("old\n")
    (root / "keep").mkdir()
    (root / "keep" / "k").write_text("k\n")
    (root / "emptydir").mkdir()
    return root


def test_overlay_keeps_the_rootfs_and_overlay2_none_writes_through(tmp_path: Path) -> None:
    """The same mutations (create, append, truncate, chmod, rename, unlink, rm -r of a lower
    tree, directory move, rmdir, mkdir -p, symlink, hard link, mtime, fifo) run natively on a
    copy of the rootfs, in the default overlay and with --overlay2 none --writable-root.  All
    three see the same result; the overlay leaves the rootfs identical to the byte and the
    mtime; write-through leaves it as the native run left its copy."""
    root = rootfs_tree(tmp_path)
    copy = tmp_path / "native-copy"
    shutil.copytree(root, copy, symlinks=True)
    native = run_native([BUSYBOX, "sh", "-c", MUTATE, "sh", copy])
    assert native.returncode == 0 and "./w/symlink -> ../etc/config\n" in native.stdout, describe(native)
    before = snapshot(root)
    overlay = run_sandbox(["/bin/busybox", "sh", "-c", MUTATE, "sh", "/"], rootfs=root, extra=env_flags())
    assert_same_output(native, overlay)
    assert snapshot(root) == before
    through = run_sandbox(["/bin/busybox", "sh", "-c", MUTATE, "sh", "/"], rootfs=root,
                          extra=[*env_flags(), "--overlay2", "none", "--writable-root"])
    assert_same_output(native, through)
    assert snapshot(root, times=False) == snapshot(copy, times=False)
    assert (root / "w" / "dated").stat().st_mtime == 981173106


# --------------------------------------------------------------------------- kill -9

WRITE_RENAME = r'''
i=1
while :; do
    { echo "generation $i"; head -c 33554432 /dev/zero; } > /v/.final.tmp || exit 1
    mv /v/.final.tmp /v/final || exit 1
    echo "$i"
    i=$((i + 1))
done
'''
GENERATION_SIZE = 32 << 20


def test_kill_during_write_then_rename_leaves_old_or_new(tmp_path: Path) -> None:
    """A program that writes a big temporary file on a volume and renames it over the final
    name, killed (SIGKILL to the `snakevisor do` process group) in the middle of a write: the
    final name holds a complete generation, the only other file is the temporary one in the
    volume, and nothing appears beside the volume or in the host's temporary directories."""
    need(BASH, "head")
    parent = tmp_path / "parent"
    vol = volume(parent)
    (vol / "final").write_text("generation 0\n")
    tmp_before = set(os.listdir("/tmp"))
    run = Session([BASH, "-c", WRITE_RENAME], ["--volume", f"{vol}:/v"])
    try:
        assert run.line() == "1"
        assert run.line() == "2"
        deadline = time.monotonic() + 60
        while not (vol / ".final.tmp").exists() or (vol / ".final.tmp").stat().st_size < 1 << 20:
            if time.monotonic() > deadline:
                run.fail("the third generation never started")
            time.sleep(0.005)
    finally:
        run.kill()
    assert run.proc.returncode == -signal.SIGKILL
    # The temporary file may have been renamed in the moment before the kill.
    assert set(os.listdir(vol)) in ({".final.tmp", "final"}, {"final"}), os.listdir(vol)
    final = (vol / "final").read_bytes()
    header, _, body = final.partition(b"\n")
    assert re.fullmatch(rb"generation [0-9]+", header) and int(header.split()[1]) >= 2, header
    assert len(body) == GENERATION_SIZE and body.count(0) == GENERATION_SIZE
    assert os.listdir(parent) == ["vol"]
    assert not {n for n in set(os.listdir("/tmp")) - tmp_before if "final" in n}
