"""Advisory locks on files the sandbox shares with the host: a volume (`--volume`) and the
written-through root (`--writable-root`).

Why: there the sandbox's file is the host's file, and programs on both sides coordinate with
locks -- sqlite above all, whose rows are lost when a host writer commits while the sandbox
holds its write lock.  Linux: the locks of a bind mount's file are the host file's locks,
so each side must see the other's POSIX (fcntl/lockf), OFD and flock locks, a waiting lock
(F_SETLKW, blocking flock) must wait for a host holder, and F_GETLK must name one (l_pid 0
for a POSIX holder outside the sandbox's pid namespace, -1 for an OFD lock).

Both sides run the same little interpreter (REPL below): one Python statement a line, the
answer "ok", the value left in `out`, an errno name, or an exception's text.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import REPO, env_flags, hang_report, sandbox_command, sandbox_env

pytestmark = pytest.mark.slow

PYTHON3 = "/usr/bin/python3"

REPL = r"""
import errno, fcntl, os, sqlite3, struct, sys
F = struct.Struct("<hh4xqqi4x")
def getlk(fd, ltype, start=0, length=0):
    t, _, s, n, pid = F.unpack(fcntl.fcntl(fd, fcntl.F_GETLK, F.pack(ltype, 0, start, length, 0)))
    return "unlocked" if t == fcntl.F_UNLCK else f"{'RW'[t]} {s} {n} pid {pid}"
print("ready", flush=True)
for line in sys.stdin:
    out = "ok"
    try:
        exec(line)
    except OSError as e:
        out = errno.errorcode[e.errno]
    except Exception as e:
        out = f"{type(e).__name__}: {e}"
    print(out, flush=True)
"""

#: where the shared directory is mounted, and whether a gofer serves it (GoferFile: the
#: gofer's donated descriptions; the gofer serves a volume and the root alike)
PLACES = {"volume": (lambda d: (["--volume", f"{d}:/v"], "/v"), False),
          "root": (lambda d: (["--writable-root", "--cwd", str(d)], str(d)), False),
          "gofer-root": (lambda d: (["--writable-root", "--cwd", str(d)], str(d)), True)}


class Repl:
    """One side: a python3 running REPL, natively or in the sandbox."""

    def __init__(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, text=True, start_new_session=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        assert self.answer(60) == "ready"

    def answer(self, timeout: float = 30) -> str:
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            report = hang_report(self.proc.pid)
            self.kill()
            pytest.fail(f"no answer within {timeout}s; stderr:\n{self.proc.stderr.read()[-3000:]}"
                        f"\n{report}")
        line = self.proc.stdout.readline()
        if not line:
            pytest.fail(f"the interpreter ended; stderr:\n{self.proc.stderr.read()[-3000:]}")
        return line.rstrip("\n")

    def send(self, code: str) -> None:
        self.proc.stdin.write(code + "\n")
        self.proc.stdin.flush()

    def __call__(self, code: str) -> str:
        self.send(code)
        return self.answer()

    def silent_for(self, seconds: float) -> bool:
        """Nothing printed for that long (a call still waiting)."""
        return not select.select([self.proc.stdout], [], [], seconds)[0]

    def finish(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0, self.proc.stderr.read()[-3000:]

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


@pytest.fixture(params=sorted(PLACES))
def place(request, tmp_path: Path):
    """(shared host directory, its path in the sandbox, a function starting a sandbox REPL)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    mount, gofer = PLACES[request.param]
    flags, inside = mount(shared)
    env = sandbox_env()
    env.pop("SNAKEVISOR_GOFER", None)
    if gofer:
        env["SNAKEVISOR_GOFER"] = "1"
    started: list[Repl] = []

    def sandbox() -> Repl:
        repl = Repl(sandbox_command([PYTHON3, "-c", REPL], extra=[*env_flags(), *flags]), env)
        started.append(repl)
        return repl

    yield shared, inside, sandbox
    for repl in started:
        repl.kill()


@pytest.fixture
def host():
    repl = Repl([PYTHON3, "-c", REPL])
    yield repl
    repl.kill()


def test_sqlite_write_locks_exclude_each_other(place, host: Repl) -> None:
    """BEGIN IMMEDIATE on one side makes the other's write 'database is locked', both ways,
    in both journal modes; every committed row is there at the end."""
    shared, inside, sandbox = place
    box = sandbox()
    for mode, db in (("delete", "j.db"), ("wal", "w.db")):
        assert box(f"db = sqlite3.connect('{inside}/{db}', isolation_level=None, timeout=0)") == "ok"
        assert box(f"out = db.execute('pragma journal_mode={mode}').fetchone()[0]") == mode
        assert box("db.execute('create table t(x)')") == "ok"
        assert host(f"db = sqlite3.connect('{shared}/{db}', isolation_level=None, timeout=0)") == "ok"
        assert box("db.execute('begin immediate'); db.execute('insert into t values (1)')") == "ok"
        assert host("db.execute('insert into t values (2)')") == "OperationalError: database is locked"
        assert box("db.execute('commit')") == "ok"
        assert host("db.execute('begin immediate'); db.execute('insert into t values (3)')") == "ok"
        assert box("db.execute('insert into t values (4)')") == "OperationalError: database is locked"
        assert host("db.execute('commit')") == "ok"
        assert box("db.execute('insert into t values (5)')") == "ok"
        assert host("out = db.execute('select group_concat(x) from (select x from t order by x)').fetchone()[0]") == "1,3,5"
        assert box("db.close()") == "ok"
        assert host("out = db.execute('pragma integrity_check').fetchone()[0]; db.close()") == "ok"
    box.finish()


def test_lockf_both_ways(place, host: Repl) -> None:
    shared, inside, sandbox = place
    (shared / "f").write_bytes(b"0123456789")
    box = sandbox()
    assert box(f"fd = os.open('{inside}/f', os.O_RDWR)") == "ok"
    assert host(f"fd = os.open('{shared}/f', os.O_RDWR)") == "ok"
    # the sandbox holds bytes 2..4: the host is refused there and sees an OFD-style holder
    assert box("fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 3, 2)") == "ok"
    assert host("fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 4)") == "EAGAIN"
    assert host("fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 5)") == "ok"
    assert host("out = getlk(fd, fcntl.F_WRLCK)") == "W 2 3 pid -1"
    # ... and the host's 5.. refuses the sandbox, whose F_GETLK names a holder outside: pid 0
    assert box("fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 9)") == "EAGAIN"
    assert box("out = getlk(fd, fcntl.F_RDLCK, 5)") == "W 5 0 pid 0"
    assert box("out = getlk(fd, fcntl.F_WRLCK, 0, 5)") == "unlocked"  # its own lock does not count
    assert host("os.close(fd)") == "ok"  # a POSIX lock goes at any close of the file
    assert box("fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 9)") == "ok"
    # a sandbox process's locks go when it closes any fd of the file
    assert box(f"os.close(os.open('{inside}/f', os.O_RDONLY))") == "ok"
    assert host(f"fd = os.open('{shared}/f', os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0)") == "ok"
    box.finish()


def test_flock_both_ways(place, host: Repl) -> None:
    shared, inside, sandbox = place
    (shared / "f").write_bytes(b"")
    box = sandbox()
    assert box(f"fd = os.open('{inside}/f', os.O_RDONLY)") == "ok"
    assert host(f"fd = os.open('{shared}/f', os.O_RDONLY)") == "ok"
    assert box("fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)") == "ok"
    assert host("fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)") == "EAGAIN"
    assert box("fcntl.flock(fd, fcntl.LOCK_SH)") == "ok"  # a downgrade
    assert host("fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)") == "ok"
    assert box("fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)") == "EAGAIN"  # the host reads
    assert host("fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)") == "ok"  # the failed conversion dropped it
    assert box("fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)") == "EAGAIN"
    assert host("fcntl.flock(fd, fcntl.LOCK_UN)") == "ok"
    assert box("fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)") == "ok"
    box.finish()  # the process exits holding it: its last close gives it back
    assert host("fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)") == "ok"


@pytest.mark.parametrize("how", ["setlkw", "flock"])
def test_a_waiting_lock_waits_for_the_host(place, host: Repl, how: str) -> None:
    """F_SETLKW and a blocking flock return only once the host holder lets go, and the
    sandbox goes on serving its other processes meanwhile."""
    shared, inside, sandbox = place
    (shared / "f").write_bytes(b"0123456789")
    take, give = {"setlkw": ("fcntl.lockf(fd, fcntl.LOCK_EX)", "fcntl.lockf(fd, fcntl.LOCK_UN)"),
                  "flock": ("fcntl.flock(fd, fcntl.LOCK_EX)", "fcntl.flock(fd, fcntl.LOCK_UN)")}[how]
    assert host(f"fd = os.open('{shared}/f', os.O_RDWR); {take}") == "ok"
    box = sandbox()
    assert box(f"fd = os.open('{inside}/f', os.O_RDWR)") == "ok"
    # a process of the same sandbox that works while this one waits
    assert box(f"import subprocess; subprocess.Popen(['/bin/sh', '-c', "
               f"'sleep 0.2; echo alive > {inside}/alive'])") == "ok"
    box.send(take)
    assert box.silent_for(0.5)  # still waiting (a lock granted at once would answer now)
    deadline = time.monotonic() + 30
    while not (shared / "alive").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (shared / "alive").exists(), "the sandbox stood still while a call waited"
    assert host(give) == "ok"
    assert box.answer() == "ok"
    assert host(take.replace("LOCK_EX)", "LOCK_EX | fcntl.LOCK_NB)")) == "EAGAIN"
    assert box(give) == "ok"
    assert host(take) == "ok"
    box.finish()


def test_exit_releases_posix_locks_on_the_host(place, host: Repl) -> None:
    shared, inside, sandbox = place
    (shared / "f").write_bytes(b"x")
    box = sandbox()
    assert box(f"fd = os.open('{inside}/f', os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_EX)") == "ok"
    assert box("pid = os.fork(); pid or os._exit(0)") == "ok"  # a child exits: not with the parent's locks
    assert host(f"fd = os.open('{shared}/f', os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)") == "EAGAIN"
    assert box("os.waitpid(pid, 0)") == "ok"
    assert host("fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)") == "EAGAIN"
    box.send("os._exit(0)")
    assert box.proc.wait(timeout=60) == 0
    assert host("fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)") == "ok"


DYING = """
import fcntl, os, struct, sys
d = sys.argv[1]
fd = os.open(f"{d}/new", os.O_RDWR | os.O_CREAT, 0o644)  # created by this process (a gofer's
fcntl.flock(fd, fcntl.LOCK_EX)                           # Tlcreate, not a plain open)
fcntl.lockf(fd, fcntl.LOCK_EX, 10)  # bytes 0..9: the OFD lock below is another owner
ofd = os.open(f"{d}/new", os.O_RDWR)
fcntl.fcntl(ofd, fcntl.F_OFD_SETLK, struct.pack("<hh4xqqi4x", fcntl.F_WRLCK, 0, 10, 0, 0))
os._exit(0)
"""


def test_a_process_that_dies_holding_locks_gives_them_back(place, host: Repl) -> None:
    """Its POSIX locks go with the process, its OFD and flock locks with its last fds -- while
    the sandbox goes on running."""
    shared, inside, sandbox = place
    box = sandbox()
    assert box(f"import subprocess; out = subprocess.run([sys.executable, '-c', {DYING!r}, "
               f"'{inside}']).returncode") == "0"
    assert host(f"fd = os.open('{shared}/new', os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)") == "ok"
    assert host("fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)") == "ok"
    box.finish()
