"""Interception is total and the sandbox is a sandbox.

- the application sees the sandbox's pid numbering (raw syscall, not glibc's cache);
- the root is the root: paths outside --rootfs do not exist, `..` and symlinks stay inside;
- the default root is read-only: writes fail with EROFS and nothing appears on the host;
- 32-bit system call entry is refused, and the program goes on;
- death by a signal is reported as 128+N;
- after a sandbox exits (or its sentry is killed) none of its host processes remain.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from harness import (REPO, CPrograms, Scratch, describe, run_native, run_sandbox, sandbox_command,
                      sandbox_env)

pytestmark = pytest.mark.slow

STUB_NAME = "snakevisor-stub"


def probe(scratch: Scratch, *ops: str, writable: bool = False, extra: list[str] | None = None,
          link: str = "static") -> subprocess.CompletedProcess[str]:
    flags = scratch.writable() if writable else ["--cwd", "/"]
    return run_sandbox([scratch.bin("probe", link), *ops], rootfs=scratch.root, extra=[*flags, *(extra or [])])


# --------------------------------------------------------------------------- pid

@pytest.mark.parametrize("link", ["static", "dynamic"])
def test_first_process_is_pid_1(scratch: Scratch, link: str) -> None:
    res = probe(scratch, "pid", link=link)
    assert (res.returncode, res.stdout) == (0, "getpid=1 getppid=0 gettid=1\n"), describe(res)


def test_pid_1_from_host_root(c_programs: CPrograms) -> None:
    res = run_sandbox([c_programs.path("probe", "dynamic"), "pid"])
    assert (res.returncode, res.stdout) == (0, "getpid=1 getppid=0 gettid=1\n"), describe(res)


def test_native_pid_is_not_1(c_programs: CPrograms) -> None:
    """The harness half: natively the same probe does not see pid 1."""
    res = run_native([c_programs.path("probe", "static"), "pid"])
    assert res.returncode == 0 and not res.stdout.startswith("getpid=1 "), describe(res)


# --------------------------------------------------------------------------- the root

def test_host_paths_do_not_exist_in_rootfs(scratch: Scratch) -> None:
    res = probe(scratch, "open", "/etc/os-release", "open", "/etc", "stat", "/usr/bin/env",
                "open", str(REPO / "pyproject.toml"), "ls", "/")
    expected_ls = " ".join(sorted([".", "..", *os.listdir(scratch.root)]))
    assert res.stdout == ("open /etc/os-release: errno=ENOENT\n"
                          "open /etc: errno=ENOENT\n"
                          "stat /usr/bin/env: errno=ENOENT\n"
                          f"open {REPO / 'pyproject.toml'}: errno=ENOENT\n"
                          f"ls /: {expected_ls}\n"), describe(res)


def _escape_links(scratch: Scratch, marker: Path) -> None:
    w = scratch.root / "w"
    (w / "up").symlink_to(f"../../{marker.name}")
    (w / "abs").symlink_to(marker)
    (w / "dots").symlink_to("../../../../../..")
    (scratch.root / "escape_dir").symlink_to("..")
    (w / "abs_dir").symlink_to(marker.parent)


ESCAPES = ["/../{m}", "../{m}", "../../../../{m}", "/w/up", "/w/abs", "/w/dots/{m}",
           "/escape_dir/{m}", "/w/abs_dir/{m}", "/w/../../{m}", "/./../w/../../{m}"]


def test_dotdot_and_symlink_escapes_are_enoent(scratch: Scratch, outside_marker: Path) -> None:
    _escape_links(scratch, outside_marker)
    paths = [p.format(m=outside_marker.name) for p in ESCAPES]
    ops = [w for p in paths for w in ("open", p)]
    res = probe(scratch, *ops)
    assert res.stdout == "".join(f"open {p}: errno=ENOENT\n" for p in paths), describe(res)


def test_escapes_land_inside_the_root(scratch: Scratch, outside_marker: Path) -> None:
    """With a decoy of the same name at the sandbox's /, every escape reads the decoy."""
    _escape_links(scratch, outside_marker)
    (scratch.root / outside_marker.name).write_text("decoy inside\n")
    paths = [p.format(m=outside_marker.name) for p in ESCAPES if "abs" not in p]
    ops = [w for p in paths for w in ("cat", p)]
    res = probe(scratch, *ops)
    assert res.stdout == "".join(f"cat {p}: ok\ndecoy inside\n" for p in paths), describe(res)
    assert "host secret" not in res.stdout


def test_chdir_dotdot_stops_at_root(scratch: Scratch, outside_marker: Path) -> None:
    _escape_links(scratch, outside_marker)
    res = probe(scratch, "chdir", "/w", "chdir", "..", "chdir", "..", "chdir", "../..", "getcwd",
                "open", outside_marker.name, "chdir", "/w/dots", "getcwd", "ls", "/..")
    expected_ls = " ".join(sorted([".", "..", *os.listdir(scratch.root)]))
    assert res.stdout == ("chdir /w: ok\nchdir ..: ok\nchdir ..: ok\nchdir ../..: ok\n"
                          "getcwd: /\n"
                          f"open {outside_marker.name}: errno=ENOENT\n"
                          "chdir /w/dots: ok\ngetcwd: /\n"
                          f"ls /..: {expected_ls}\n"), describe(res)


def test_writes_through_escaping_links_stay_inside(scratch: Scratch, tmp_path: Path) -> None:
    w = scratch.root / "w"
    (w / "newlink").symlink_to("../../created-outside")
    (w / "absnew").symlink_to(tmp_path / "created-abs")
    # open(O_CREAT) follows a dangling symlink and creates its target: inside the root.
    res = probe(scratch, "write", "/w/newlink", "inside", "write", "/w/absnew", "x",
                "mkdir", "/../made-dir", writable=True)
    # /w/absnew names a host path; inside the root its parent directories do not exist.
    assert res.stdout == ("write /w/newlink: ok\nwrite /w/absnew: errno=ENOENT\n"
                          "mkdir /../made-dir: ok\n"), describe(res)
    assert not (tmp_path / "created-outside").exists()
    assert not (tmp_path / "created-abs").exists()
    assert not (tmp_path / "made-dir").exists()
    assert (scratch.root / "created-outside").read_text() == "inside"
    assert (scratch.root / "made-dir").is_dir()


# --------------------------------------------------------------------------- read-only root

@pytest.fixture
def host_files(tmp_path: Path) -> Path:
    d = tmp_path / "host"
    d.mkdir()
    (d / "existing").write_text("original\n")
    (d / "emptydir").mkdir()
    return d


def test_readonly_host_root_refuses_writes(c_programs: CPrograms, host_files: Path) -> None:
    h = host_files
    res = run_sandbox([c_programs.path("probe", "static"),
                       "create", f"{h}/new", "mkdir", f"{h}/newdir", "unlink", f"{h}/existing",
                       "trunc", f"{h}/existing", "append", f"{h}/existing", "more",
                       "rename", f"{h}/existing", f"{h}/renamed", "symlink", "x", f"{h}/sym",
                       "rmdir", f"{h}/emptydir", "open", f"{h}/existing"],
                      extra=["--overlay2", "none"])
    assert res.stdout == (f"create {h}/new: errno=EROFS\n"
                          f"mkdir {h}/newdir: errno=EROFS\n"
                          f"unlink {h}/existing: errno=EROFS\n"
                          f"trunc {h}/existing: errno=EROFS\n"
                          f"append {h}/existing: errno=EROFS\n"
                          f"rename {h}/existing: errno=EROFS\n"
                          f"symlink {h}/sym: errno=EROFS\n"
                          f"rmdir {h}/emptydir: errno=EROFS\n"
                          f"open {h}/existing: ok\n"), describe(res)
    assert sorted(os.listdir(h)) == ["emptydir", "existing"]
    assert (h / "existing").read_text() == "original\n"


def test_native_probe_can_write(c_programs: CPrograms, host_files: Path) -> None:
    """The harness half: the same operations succeed natively, so EROFS is the sandbox's."""
    h = host_files
    res = run_native([c_programs.path("probe", "static"), "create", f"{h}/new", "mkdir", f"{h}/newdir",
                      "append", f"{h}/existing", "more"])
    assert res.returncode == 0 and res.stdout.count(": ok\n") == 3, describe(res)


def test_overlay_root_keeps_writes_inside(c_programs: CPrograms, host_files: Path) -> None:
    """The default overlay: every change succeeds inside and the host tree is untouched."""
    h = host_files
    res = run_sandbox([c_programs.path("probe", "static"),
                       "create", f"{h}/new", "mkdir", f"{h}/newdir", "append", f"{h}/existing", "more",
                       "rename", f"{h}/existing", f"{h}/renamed", "rmdir", f"{h}/emptydir",
                       "open", f"{h}/renamed"])
    assert res.stdout == (f"create {h}/new: ok\nmkdir {h}/newdir: ok\nappend {h}/existing: ok\n"
                          f"rename {h}/existing: ok\nrmdir {h}/emptydir: ok\n"
                          f"open {h}/renamed: ok\n"), describe(res)
    assert sorted(os.listdir(h)) == ["emptydir", "existing"]
    assert (h / "existing").read_text() == "original\n"


def test_readonly_rootfs_refuses_writes(scratch: Scratch) -> None:
    res = probe(scratch, "create", "/w/x", "mkdir", "/newdir", "unlink", "/bin/probe-dyn",
                extra=["--overlay2", "none"])
    assert res.stdout == ("create /w/x: errno=EROFS\nmkdir /newdir: errno=EROFS\n"
                          "unlink /bin/probe-dyn: errno=EROFS\n"), describe(res)
    assert os.listdir(scratch.root / "w") == []
    assert (scratch.root / "bin" / "probe-dyn").exists()


def test_writable_root_writes_land(scratch: Scratch) -> None:
    res = probe(scratch, "create", "/w/x", "mkdir", "/w/d", writable=True)
    assert res.stdout == "create /w/x: ok\nmkdir /w/d: ok\n", describe(res)
    assert sorted(os.listdir(scratch.root / "w")) == ["d", "x"]


# --------------------------------------------------------------------------- entry tricks, signals

def test_int80_is_refused_and_program_continues(scratch: Scratch) -> None:
    res = probe(scratch, "int80", "echo", "still-running")
    assert res.stdout == "int80 getpid=-38\ncontinued after int80\nstill-running\n", describe(res)
    assert res.returncode == 0, describe(res)


CRASHES = {"null": 139, "ro": 139, "ud2": 132, "int3": 133, "div0": 136}


@pytest.mark.parametrize("how", sorted(CRASHES))
def test_native_crash_status(c_programs: CPrograms, how: str) -> None:
    res = run_native([c_programs.path("probe", "static"), "echo", "before", "crash", how])
    assert (res.returncode, res.stdout) == (CRASHES[how], "before\n"), describe(res)


@pytest.mark.parametrize("how", sorted(CRASHES))
def test_sandbox_crash_status(scratch: Scratch, how: str) -> None:
    """A hardware fault kills the application with its signal: status 128+N, and output
    written before the fault is kept."""
    res = probe(scratch, "echo", "before", "crash", how)
    assert (res.returncode, res.stdout) == (CRASHES[how], "before\n"), describe(res)
    assert "Traceback" not in res.stderr, describe(res)


RAISED = {"raise-segv": 139, "abort": 134}
#: the same as the sandbox's first process, pid 1 of its pid namespace: Linux drops a signal
#: it sends itself with the default action, so raise(SIGSEGV) returns; abort()'s two raises
#: are dropped and glibc's last resort, a `hlt`, faults (SIGSEGV, which does kill init)
RAISED_AS_INIT = {"raise-segv": (0, "before\ncrash raise-segv: survived\n"),
                  "abort": (139, "before\n")}


@pytest.mark.parametrize("how", sorted(RAISED))
def test_native_raised_signal_status(c_programs: CPrograms, how: str) -> None:
    res = run_native([c_programs.path("probe", "dynamic"), "crash", how])
    assert res.returncode == RAISED[how], describe(res)


@pytest.mark.parametrize("link", ["static", "dynamic"])
@pytest.mark.parametrize("how", sorted(RAISED))
def test_sandbox_raised_signal_status(scratch: Scratch, how: str, link: str) -> None:
    """raise()/abort() in the sandbox's first process: pid 1's rules (test_init_signals.py
    compares them with a native pid 1)."""
    res = probe(scratch, "echo", "before", "crash", how, link=link)
    assert (res.returncode, res.stdout) == RAISED_AS_INIT[how], describe(res)


# --------------------------------------------------------------------------- host hygiene

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_CHILD_SUBREAPER = 36


def _proc_stat(pid: int) -> tuple[str, str, int, int] | None:
    """(comm, state, ppid, session) of a host process, or None if it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    rest = data[data.rindex(")") + 2:].split()
    return comm, rest[0], int(rest[1]), int(rest[3])


def _exe_name(pid: int) -> str:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return ""


def _processes() -> dict[int, tuple[str, str, int, int]]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (info := _proc_stat(int(name))) is not None:
            out[int(name)] = info
    return out


def _stub_pids() -> set[int]:
    return {pid for pid, (comm, state, _, _) in _processes().items()
            if state != "Z" and (comm == STUB_NAME or _exe_name(pid).startswith(STUB_NAME))}


@contextmanager
def _subreaper() -> Iterator[None]:
    """Make this process the reaper of orphans, so a leftover of the sandbox becomes our child."""
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    try:
        yield
    finally:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _leftovers(session: int, grace: float = 3.0) -> list[str]:
    """Live host processes of a finished sandbox: orphans reparented to us (we are their
    subreaper) and anything still in its session.  Other sandboxes running on this host at
    the same time are neither.  Reaps zombie orphans; kills (and reports) live leftovers."""
    me = os.getpid()
    deadline = time.monotonic() + grace
    while True:
        found = {}
        for pid, (comm, state, ppid, sid) in _processes().items():
            if ppid == me and state == "Z":
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                continue
            if state == "Z":
                continue
            if ppid == me or sid == session:
                found[pid] = f"pid {pid} {comm!r} state {state} ppid {ppid} sid {sid} exe {_exe_name(pid)!r}"
        if not found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return sorted(found.values())


def _start(scratch: Scratch, *ops: str) -> subprocess.Popen[bytes]:
    cmd = sandbox_command([scratch.bin("probe"), *ops], scratch.root, ["--cwd", "/"])
    return subprocess.Popen(cmd, cwd=REPO, env=sandbox_env(), start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_line(proc: subprocess.Popen[bytes], line: bytes, timeout: float = 60) -> None:
    """Read stdout until `line` (the application is then running inside the sandbox)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    deadline = time.monotonic() + timeout
    while line not in buf.splitlines():
        if time.monotonic() > deadline or not sel.select(deadline - time.monotonic()):
            proc.kill()
            pytest.fail(f"no {line!r} from the sandbox; stdout so far {buf!r}, "
                        f"stderr {proc.stderr.read()[-2000:]!r}")
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            proc.wait()
            pytest.fail(f"sandbox ended before {line!r} (status {proc.returncode}); stdout {buf!r}, "
                        f"stderr {proc.stderr.read()[-2000:]!r}")
        buf += chunk


@pytest.mark.parametrize("ops,status", [
    (("echo", "hi"), 0),
    (("exit", "3"), 3),
    (("crash", "null"), 139),
    (("crash", "ud2"), 132),
    (("open", "/nonexistent"), 1),
], ids=["exit0", "exit3", "segv", "sigill", "failure"])
def test_no_host_process_left_after_exit(scratch: Scratch, ops: tuple[str, ...], status: int) -> None:
    with _subreaper():
        proc = _start(scratch, *ops)
        out, err = proc.communicate(timeout=60)
        left = _leftovers(proc.pid)
    assert proc.returncode == status, (proc.returncode, out, err[-2000:])
    assert left == [], left


#: (probe ops, line it prints once running): busy in system calls, or parked in a sleep.
RUNNING = {"spin": (("spin",), b"spinning"), "sleep": (("sleep", "30000"), b"sleeping")}


def _start_running(scratch: Scratch, how: str) -> subprocess.Popen[bytes]:
    ops, line = RUNNING[how]
    proc = _start(scratch, *ops)
    _wait_for_line(proc, line)
    time.sleep(0.2)
    if proc.poll() is not None:
        pytest.fail(f"the sandboxed {how} ended by itself (status {proc.returncode}); "
                    f"stderr {proc.stderr.read()[-2000:]!r}")
    return proc


@pytest.mark.parametrize("how", sorted(RUNNING))
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_no_host_process_left_when_sentry_is_killed(scratch: Scratch, sig: signal.Signals, how: str) -> None:
    """Even a sentry killed mid-run (SIGKILL: no cleanup code runs) leaves nothing behind:
    the stubs die with their tracer (PTRACE_O_EXITKILL) and their pid namespace."""
    with _subreaper():
        proc = _start_running(scratch, how)
        os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail(f"sentry did not exit within 15 s of {sig.name}")
        left = _leftovers(proc.pid)
    proc.stdout.close()
    proc.stderr.close()
    assert left == [], left
    if sig != signal.SIGKILL:
        assert proc.returncode != 0


def test_stubs_are_confined(scratch: Scratch) -> None:
    """While a sandbox runs, its stub processes are in namespaces of their own (pid, mount,
    net, user, ipc, uts), have no capabilities, no_new_privs and a seccomp filter."""
    with _subreaper():
        proc = _start_running(scratch, "spin")
        try:
            stubs = sorted(p for p in _stub_pids() if (_proc_stat(p) or ("", "", 0, 0))[3] == proc.pid)
            assert stubs, "no stub process found in the sandbox's session while it runs"
            mine = {ns: os.readlink(f"/proc/self/ns/{ns}") for ns in ("pid", "mnt", "net", "user", "ipc", "uts")}
            for pid in stubs:
                for ns, ident in mine.items():
                    try:
                        theirs = os.readlink(f"/proc/{pid}/ns/{ns}")
                    except FileNotFoundError:
                        continue
                    assert theirs != ident, f"stub {pid} shares the host's {ns} namespace"
                status = Path(f"/proc/{pid}/status").read_text()
                caps = {l.split(":")[0]: l.split()[1] for l in status.splitlines() if l.startswith("Cap")}
                assert int(caps["CapEff"], 16) == 0 and int(caps["CapPrm"], 16) == 0, caps
                assert "NoNewPrivs:\t1" in status, status
                assert "Seccomp:\t2" in status, status
        finally:
            proc.kill()
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
            _leftovers(proc.pid)


def test_the_sentry_has_no_host_file_system(tmp_path: Path) -> None:
    """While a sandbox runs, its sentry (the `snakevisor do` process) sees an empty root
    holding only /proc and keeps no capability beyond kill/ptrace(/sys_resource); the
    gofer alone opens host files."""
    marker = tmp_path / "started"
    script = "echo > /m/started; sleep 30"  # the marker through a volume (the root is an overlay)
    proc = subprocess.Popen(sandbox_command(["/bin/sh", "-c", script],
                                            extra=["--volume", f"{tmp_path}:/m"]),
                            cwd=REPO, env=sandbox_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the sandbox did not start"
        root = Path(f"/proc/{proc.pid}/root")
        assert sorted(p.name for p in root.iterdir()) == ["proc"]
        assert not (root / "etc").exists() and not (root / "work").exists()
        status = Path(f"/proc/{proc.pid}/status").read_text()
        caps = int(next(l for l in status.splitlines() if l.startswith("CapEff:")).split()[1], 16)
        assert caps & ~((1 << 5) | (1 << 19) | (1 << 24)) == 0, hex(caps)
        assert "NoNewPrivs:\t1" in status
    finally:
        proc.kill()
        proc.wait(timeout=30)
