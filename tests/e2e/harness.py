"""The end-to-end harness: C test programs, the sandbox and native runners, scratch roots.

Why this shape: the end-to-end tests compare what a program does natively with what it
does inside `snakevisor do`.  Both halves must run with the same inputs (an empty work
directory, the same environment, the same umask) and be judged by the same rule (exit
status in the shell's 128+N convention), so the runners live here and the tests only
say *what* to run.  (A module of its own, not conftest.py: `from conftest import` would be
ambiguous next to tests/unit/conftest.py.)  The fixtures are in tests/e2e/conftest.py.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
C_DIR = REPO / "tests" / "c"
#: The interpreter that runs the sandbox (not the pyenv shim `python3` on PATH).
PYTHON = os.environ.get("SNAKEVISOR_PYTHON", sys.executable)
CFLAGS = ["-O1", "-g0", "-w", "-U_FORTIFY_SOURCE", "-fno-stack-protector"]
LINKS = ("static", "dynamic")
#: The sentry-served roots a program is compared on: "overlay" (the default root: the work
#: directory lives in the overlay's memory upper layer) and "rootfs" (--writable-root: the
#: scratch directory mounted at / as a writable host-path file system).
ROOTS = ("overlay", "rootfs")
#: Environment both halves of a comparison get, so locale and time zone cannot differ.
DET_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C", "TZ": "UTC", "HOME": os.environ.get("HOME", "/root")}


# --------------------------------------------------------------------------- C programs

def build_dir() -> Path:
    """Where compiled test programs are cached across sessions (rebuilt when sources change)."""
    base = os.environ.get("SNAKEVISOR_TEST_BUILD") or os.path.join(
        tempfile.gettempdir(), f"snakevisor-tests-{os.getuid()}")
    path = Path(base) / "c"
    path.mkdir(parents=True, exist_ok=True)
    return path


class CPrograms:
    """Compiles tests/c/NAME.c on demand, once per source change, static and dynamic.

    A build is kept under a digest of what makes it (the source, the headers, the flags), not
    judged by modification times: two checkouts sharing the cache (a work tree and a CI
    clone) each get the program of their own sources."""

    def __init__(self, out: Path) -> None:
        self.out = out

    @staticmethod
    def names() -> list[str]:
        return sorted(p.stem for p in C_DIR.glob("*.c"))

    def path(self, name: str, link: str = "static") -> Path:
        if link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}, not {link!r}")
        src = C_DIR / f"{name}.c"
        if not src.exists():
            raise FileNotFoundError(src)
        recipe = hashlib.sha256(repr((CFLAGS, link)).encode())
        for part in [src, *sorted(C_DIR.glob("*.h"))]:
            recipe.update(part.name.encode() + b"\0" + part.read_bytes())
        where = self.out / f"{name}-{recipe.hexdigest()[:16]}"
        where.mkdir(exist_ok=True)
        binary = where / f"{name}.{link}"  # (the name a program sees as its own)
        if binary.exists():
            return binary
        gcc = shutil.which("gcc")
        if gcc is None:
            pytest.skip("gcc is not installed")
        # Build beside the target and rename: concurrent sessions never see a partial file.
        fd, tmp = tempfile.mkstemp(dir=where, prefix=f".{name}.{link}.")
        os.close(fd)
        cmd = [gcc, *CFLAGS, *(["-static"] if link == "static" else []), "-I", str(C_DIR),
               "-o", tmp, str(src)]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            os.unlink(tmp)
            pytest.fail(f"gcc failed for {src.name} ({link}):\n{res.stderr}")
        os.replace(tmp, binary)
        return binary


# --------------------------------------------------------------------------- runners

def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "surrogateescape")


def shell_status(returncode: int) -> int:
    """Python's -N for "killed by signal N" as the shell (and `snakevisor do`) reports it."""
    return 128 - returncode if returncode < 0 else returncode


def hang_report(session: int, limit: int = 6000) -> str:
    """What a session that stopped answering is doing: every process in it (state and the
    kernel function it sleeps in), the Python stack of each sentry and gofer (py-spy), and
    -- on the sentry's own stderr, which the caller shows -- the sentry's account of every
    task (SIGUSR2, kernel/debug.py), so that a rare hang seen once in CI can be diagnosed
    from the log alone."""
    lines = ["--- hang report: processes of session %d" % session]
    pythons = []
    for entry in sorted(Path("/proc").iterdir(), key=lambda e: e.name):
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != session:  # field 6, the session id
                continue
            wchan = (entry / "wchan").read_text()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        lines.append(f"{entry.name} {fields[0]} ppid {fields[1]} {wchan or '-'} {cmd[:160]}")
        for thread in sorted((entry / "task").iterdir(), key=lambda e: int(e.name)):
            try:  # a stub thread in a ptrace stop: the application's system call and arguments
                lines.append(f"  thread {thread.name} syscall {(thread / 'syscall').read_text().strip()}")
            except OSError:
                pass
        if "snakevisor" in cmd:
            pythons.append(entry.name)
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    for pid in pythons if spy else ():
        try:
            res = subprocess.run([spy, "dump", "--pid", pid], capture_output=True, text=True,
                                 timeout=30)
            lines.append(f"--- py-spy dump {pid}\n{res.stdout}{res.stderr}")
        except (OSError, subprocess.TimeoutExpired) as e:
            lines.append(f"--- py-spy dump {pid}: {e}")
    sentries = [pid for pid in pythons if "snakevisor.gofer" not in
                Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")]
    for pid in sentries:
        with contextlib.suppress(OSError):
            os.kill(int(pid), signal.SIGUSR2)
    if sentries:
        time.sleep(0.5)
        lines.append(f"--- sentries {', '.join(sentries)} were asked for their tasks (on stderr)")
    return "\n".join(lines)[-limit:]


def run_process(cmd: Sequence[str], *, cwd: str | os.PathLike | None, env: Mapping[str, str],
         input: str | bytes | None, timeout: float, preexec=None) -> subprocess.CompletedProcess[str]:
    """Run in a new session; on timeout kill the whole group and fail the test."""
    data = input.encode() if isinstance(input, str) else input
    proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env), start_new_session=True,
                            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, umask=0o022,
                            preexec_fn=preexec)
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        report = hang_report(proc.pid)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout}s: {' '.join(map(str, cmd))}\n"
                    f"--- stdout\n{_text(out)[-3000:]}\n--- stderr\n{_text(err)[-3000:]}\n"
                    f"{report}")
    return subprocess.CompletedProcess(list(cmd), shell_status(proc.returncode), _text(out), _text(err))


def sandbox_command(args: Sequence[str | os.PathLike], rootfs: str | os.PathLike | None = None,
                    extra: Iterable[str] = ()) -> list[str]:
    cmd = [PYTHON, "-m", "snakevisor", "do"]
    if rootfs is not None:
        cmd += ["--rootfs", str(rootfs)]
    return [*cmd, *extra, "--", *map(str, args)]


def sandbox_env() -> dict[str, str]:
    """The CLI's environment: DET_ENV (which `do` hands on to the application), the
    package on PYTHONPATH, and any SNAKEVISOR_* settings of the caller."""
    env = dict(DET_ENV)
    env.update({k: v for k, v in os.environ.items() if k.startswith("SNAKEVISOR_")})
    env["PYTHONPATH"] = str(REPO)
    return env


def run_sandbox(args: Sequence[str | os.PathLike], rootfs: str | os.PathLike | None = None,
                extra: Iterable[str] = (), input: str | bytes | None = None,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`snakevisor do [--rootfs R] [extra] -- args`; returncode in the shell convention."""
    return run_process(sandbox_command(args, rootfs, extra), cwd=REPO, env=sandbox_env(), input=input,
                timeout=timeout)


def _no_core() -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def run_native(args: Sequence[str | os.PathLike], cwd: str | os.PathLike | None = None,
               input: str | bytes | None = None, timeout: float = 60,
               env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run natively with DET_ENV (or `env`), umask 022, no core dumps; 128+N on signal N."""
    return run_process([str(a) for a in args], cwd=cwd, env=DET_ENV if env is None else env,
                input=input, timeout=timeout, preexec=_no_core)


def env_flags(env: Mapping[str, str] = DET_ENV) -> list[str]:
    """--env flags giving the application exactly the variables a native run gets."""
    return [f"--env={k}={v}" for k, v in env.items()]


def describe(res: subprocess.CompletedProcess[str], limit: int = 4000) -> str:
    """A readable account of one run for assertion messages."""
    return (f"$ {' '.join(map(str, res.args))}\nstatus {res.returncode}\n"
            f"--- stdout\n{res.stdout[-limit:]}\n--- stderr\n{res.stderr[-limit:]}")


def assert_same_output(native: subprocess.CompletedProcess[str],
                       sandboxed: subprocess.CompletedProcess[str]) -> None:
    """Same stdout and exit status; a unified diff of stdout when they differ."""
    import difflib
    if native.stdout != sandboxed.stdout:
        diff = "".join(difflib.unified_diff(native.stdout.splitlines(True),
                                            sandboxed.stdout.splitlines(True),
                                            "native", "sandbox", n=1))
        pytest.fail(f"stdout differs (- native, + sandbox):\n{diff[:20000]}\n"
                    f"--- sandbox stderr\n{sandboxed.stderr[-4000:]}\n"
                    f"(status native {native.returncode}, sandbox {sandboxed.returncode})")
    assert sandboxed.returncode == native.returncode, \
        f"exit status differs: native {native.returncode}\n{describe(sandboxed)}"


# --------------------------------------------------------------------------- scratch roots

def shared_libraries(binary: Path) -> list[str]:
    """Absolute paths (as the loader asks for them) of a dynamic binary's libraries."""
    res = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True)
    paths = []
    for line in res.stdout.splitlines():
        words = line.split()
        if "=>" in words and len(words) > words.index("=>") + 1:
            candidate = words[words.index("=>") + 1]
        elif words:
            candidate = words[0]
        else:
            continue
        if candidate.startswith("/"):
            paths.append(candidate)
    return paths


#: Libraries glibc dlopens by name at run time instead of linking them: libgcc_s.so.1 does
#: the unwinding of pthread_exit and pthread_cancel.
ON_DEMAND = ("libgcc_s.so.1",)


def on_demand_libraries(linked: Iterable[str]) -> list[str]:
    """Host paths of the ON_DEMAND libraries that sit beside the linked libc (ld.so's default
    search directory, which a scratch root without ld.so.cache relies on)."""
    dirs = {os.path.dirname(p) for p in linked if os.path.basename(p).startswith("libc.so")}
    return sorted(os.path.join(d, name) for d in dirs for name in ON_DEMAND
                  if os.path.exists(os.path.join(d, name)))


@dataclass
class Scratch:
    """A throwaway root file system with the test programs, and its native twin.

    root/bin holds every test program (NAME static, NAME-dyn dynamic) and the dynamic
    loader and libraries at the paths they are asked for (and the ON_DEMAND ones beside
    libc); root/w is an empty work directory.  native/w is the same empty directory for the native half of a run.
    """

    root: Path
    native: Path
    sandbox_cwd: str = "/w"

    @property
    def native_cwd(self) -> Path:
        return self.native / "w"

    def bin(self, name: str, link: str = "static") -> str:
        """Path of a test program as the sandbox sees it."""
        return f"/bin/{name}" if link == "static" else f"/bin/{name}-dyn"

    def writable(self, *more: str) -> list[str]:
        """CLI flags for a run in this root with a writable root and cwd /w."""
        return self.flags("rootfs", *more)

    def flags(self, root: str, *more: str) -> list[str]:
        """CLI flags for a run with cwd /w on one of ROOTS."""
        if root not in ROOTS:
            raise ValueError(f"root must be one of {ROOTS}, not {root!r}")
        writable = ["--writable-root"] if root == "rootfs" else []
        return [*writable, "--cwd", self.sandbox_cwd, *more]


# --------------------------------------------------------------------------- terminals

class PtyPeer:
    """The user's side of a terminal: the master of a pty whose slave a program under test
    has (an engine's console, `pty.fork`'s child), with expect-style reading."""

    def __init__(self, master: int) -> None:
        self.fd = master
        self.seen = b""

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, text: str, timeout: float = 30, since: int = 0) -> None:
        """Wait until `text` has been seen (at or after offset `since` of what was seen)."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen[since:]:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not seen in {self.seen[-400:]!r}"
            if select.select([self.fd], [], [], left)[0]:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:  # EIO: every slave is closed
                    break
        assert text.encode() in self.seen[since:], self.seen[-400:]

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def settings(self) -> list:
        """The terminal's termios (a pty's master reports its slave's)."""
        return termios.tcgetattr(self.fd)
