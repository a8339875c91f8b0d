"""`snakevisor do`: bad input gets one clear line and a non-zero status, never a traceback;
the operator flags (--strace, --debug, --debug-log, --cwd, --env, --hostname) do their job;
the application's exit status is the command's."""
from __future__ import annotations

import os
import re
import shutil
import socket
import struct
from pathlib import Path

import pytest

from harness import (PYTHON, REPO, CPrograms, Scratch, describe, run_native, run_sandbox,
                      sandbox_env, run_process, shell_status)

pytestmark = pytest.mark.slow


def run_cli(*argv: str, timeout: float = 60):
    """The CLI with arbitrary arguments (not necessarily `do ... -- CMD`)."""
    return run_process([PYTHON, "-m", "snakevisor", *argv], cwd=REPO, env=sandbox_env(), input=None,
                timeout=timeout)


def assert_one_line_error(res) -> None:
    assert res.returncode != 0, describe(res)
    assert "Traceback" not in res.stderr, describe(res)
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"want exactly one line on stderr\n{describe(res)}"
    assert res.stdout == "", describe(res)


# --------------------------------------------------------------------------- bad input

def _elf32(path: Path) -> Path:
    """A minimal 32-bit i386 ELF executable header: must be refused (ENOEXEC), not run."""
    ident = b"\x7fELF" + bytes([1, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, 0x8048054, 52, 0, 0, 52, 32, 1, 40, 0, 0)
    phdr = struct.pack("<IIIIIIII", 1, 0, 0x8048000, 0x8048000, 0x60, 0x60, 5, 0x1000)
    path.write_bytes(header + phdr + b"\xcd\x80" * 4)
    path.chmod(0o755)
    return path


BAD_INPUT = {
    "no-command": ["do"],
    "only-dashes": ["do", "--"],
    "no-verb": [],
    "unknown-verb": ["frobnicate"],
    "unknown-flag": ["do", "--bogus-flag", "--", "/bin/true"],
    "flag-missing-value": ["do", "--rootfs"],
    "directory-command": ["do", "--", "/usr/bin"],
    "directory-command-tmp": ["do", "--", "/tmp"],
    "missing-rootfs": ["do", "--rootfs", "/nonexistent-rootfs-dir", "--", "/bin/true"],
    "rootfs-is-file": ["do", "--rootfs", "/etc/os-release", "--", "/bin/true"],
    "missing-command": ["do", "--", "/nonexistent/command"],
    "missing-bare-command": ["do", "--", "no-such-command-snakevisor"],
    "non-executable-file": ["do", "--", "/etc/os-release"],
    "missing-cwd": ["do", "--cwd", "/nonexistent-cwd", "--", "/bin/true"],
    "relative-cwd": ["do", "--cwd", "relative/dir", "--", "/bin/true"],
    "cwd-is-file": ["do", "--cwd", "/etc/os-release", "--", "/bin/true"],
    "malformed-env": ["do", "--env", "NOEQUALS", "--", "/bin/true"],
    "unknown-platform": ["do", "--platform", "kvm-nonexistent", "--", "/bin/true"],
}


@pytest.mark.parametrize("name", sorted(BAD_INPUT))
def test_bad_input_one_line(name: str) -> None:
    assert_one_line_error(run_cli(*BAD_INPUT[name]))


def test_missing_command_status_127() -> None:
    """Like a shell: 127 for a command that is not found."""
    res = run_cli("do", "--", "/nonexistent/command")
    assert res.returncode == 127, describe(res)


def test_garbage_executable(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"this is not an ELF file\n" * 10)
    junk.chmod(0o755)
    res = run_cli("do", "--", str(junk))
    assert_one_line_error(res)
    assert "Exec format error" in res.stderr or "ENOEXEC" in res.stderr, describe(res)


def test_32bit_elf_refused(tmp_path: Path) -> None:
    res = run_cli("do", "--", str(_elf32(tmp_path / "elf32")))
    assert_one_line_error(res)
    assert "Exec format error" in res.stderr or "ENOEXEC" in res.stderr, describe(res)


def test_missing_interpreter(tmp_path: Path, c_programs: CPrograms) -> None:
    """A dynamic program in a root without its ld.so: a clear error, not a crash."""
    bare = tmp_path / "bare"
    (bare / "bin").mkdir(parents=True)
    shutil.copy2(c_programs.path("probe", "dynamic"), bare / "bin" / "probe")
    res = run_cli("do", "--rootfs", str(bare), "--", "/bin/probe", "echo", "hi")
    assert_one_line_error(res)


def test_script_with_missing_interpreter(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/nonexistent/interpreter\necho hi\n")
    script.chmod(0o755)
    assert_one_line_error(run_cli("do", "--", str(script)))


def test_help_is_not_an_error() -> None:
    res = run_cli("do", "--help")
    assert res.returncode == 0, describe(res)
    assert "Traceback" not in res.stderr and "--rootfs" in res.stdout, describe(res)


# --------------------------------------------------------------------------- exit status

@pytest.mark.parametrize("code,status", [(0, 0), (1, 1), (3, 3), (42, 42), (255, 255), (256, 0), (259, 3)])
def test_exit_status_propagates(scratch: Scratch, code: int, status: int) -> None:
    res = run_sandbox([scratch.bin("probe"), "echo", "x", "exit", str(code)], rootfs=scratch.root)
    assert (res.returncode, res.stdout) == (status, "x\n"), describe(res)


def test_exit_status_dynamic_from_host_root(c_programs: CPrograms) -> None:
    res = run_sandbox([c_programs.path("probe", "dynamic"), "exit", "7"])
    assert res.returncode == 7, describe(res)


# --------------------------------------------------------------------------- arguments, cwd, env

def test_argv_passes_through_unchanged(c_programs: CPrograms) -> None:
    args = ["a b", "", "--", "-x", "ünïcødé", "tab\there", "$HOME", "*"]
    native = run_native(["/bin/echo", *args])
    sandboxed = run_sandbox(["/bin/echo", *args])
    assert (sandboxed.returncode, sandboxed.stdout) == (0, native.stdout), describe(sandboxed)


def test_bare_command_found_on_path() -> None:
    res = run_sandbox(["echo", "found"])
    assert (res.returncode, res.stdout) == (0, "found\n"), describe(res)


def test_cwd_flag(scratch: Scratch) -> None:
    res = run_sandbox([scratch.bin("probe"), "getcwd"], rootfs=scratch.root, extra=["--cwd", "/w"])
    assert res.stdout == "getcwd: /w\n", describe(res)


def test_default_cwd_in_rootfs_is_root(scratch: Scratch) -> None:
    res = run_sandbox([scratch.bin("probe"), "getcwd"], rootfs=scratch.root)
    assert res.stdout == "getcwd: /\n", describe(res)


def test_env_flag() -> None:
    res = run_sandbox(["/usr/bin/env"], extra=["--env", "ALPHA=1", "--env", "BETA=x=y"])
    lines = res.stdout.splitlines()
    assert "ALPHA=1" in lines and "BETA=x=y" in lines, describe(res)


def test_stdin_is_the_callers() -> None:
    res = run_sandbox(["/bin/cat"], input="through stdin\n")
    assert (res.returncode, res.stdout) == (0, "through stdin\n"), describe(res)


def test_stderr_is_the_callers(scratch: Scratch) -> None:
    res = run_sandbox(["/bin/ls", "/nonexistent-for-stderr"])
    assert res.returncode == 2 and "nonexistent-for-stderr" in res.stderr, describe(res)


def test_hostname_flag_and_default() -> None:
    res = run_sandbox(["/bin/uname", "-n"], extra=["--hostname", "box-one"])
    assert res.stdout == "box-one\n", describe(res)
    default = run_sandbox(["/bin/uname", "-n"])
    assert default.returncode == 0 and default.stdout.strip(), describe(default)
    assert default.stdout.strip() != socket.gethostname(), "the sandbox shows the host's name"


# --------------------------------------------------------------------------- operator tools

def test_strace_lines(scratch: Scratch) -> None:
    res = run_sandbox([scratch.bin("probe"), "open", "/bin/probe", "open", "/nonexistent", "echo", "done"],
                      rootfs=scratch.root, extra=["--strace"])
    assert res.stdout == "open /bin/probe: ok\nopen /nonexistent: errno=ENOENT\ndone\n", describe(res)
    err = res.stderr
    assert re.search(r'^(\[pid +\d+\] )?openat\(AT_FDCWD, "/bin/probe", O_RDONLY\) += 3$', err, re.M), err
    assert re.search(r'^(\[pid +\d+\] )?openat\(AT_FDCWD, "/nonexistent", O_RDONLY\) += -1 ENOENT '
                     r'\(No such file or directory\)$', err, re.M), err
    assert re.search(r'^(\[pid +\d+\] )?write\(1, "done\\n", 5\) += 5$', err, re.M), err
    assert re.search(r'^(\[pid +\d+\] )?exit_group\(1\) += \?$', err, re.M), err


def test_strace_does_not_change_output(c_programs: CPrograms) -> None:
    plain = run_sandbox([c_programs.path("probe", "dynamic"), "echo", "same", "exit", "4"])
    traced = run_sandbox([c_programs.path("probe", "dynamic"), "echo", "same", "exit", "4"], extra=["--strace"])
    assert (traced.returncode, traced.stdout) == (plain.returncode, plain.stdout) == (4, "same\n")
    assert traced.stderr.count("\n") > 10 and "mmap(" in traced.stderr, describe(traced)


def test_debug_log_dir(tmp_path: Path, scratch: Scratch) -> None:
    logdir = tmp_path / "logs"
    res = run_sandbox([scratch.bin("probe"), "echo", "logged"], rootfs=scratch.root,
                      extra=["--debug-log", str(logdir)])
    assert (res.returncode, res.stdout) == (0, "logged\n"), describe(res)
    files = [p for p in logdir.iterdir() if p.is_file()] if logdir.is_dir() else []
    assert files, f"no log file in {logdir}"
    assert sum(p.stat().st_size for p in files) > 0, f"log files are empty: {files}"


def test_debug_log_with_strace(tmp_path: Path, scratch: Scratch) -> None:
    logdir = tmp_path / "logs"
    res = run_sandbox([scratch.bin("probe"), "open", "/bin"], rootfs=scratch.root,
                      extra=["--debug-log", str(logdir), "--strace"])
    assert res.returncode == 0, describe(res)
    logged = "".join(p.read_text(errors="replace") for p in logdir.iterdir() if p.is_file())
    assert 'openat(AT_FDCWD, "/bin"' in logged + res.stderr, describe(res)


def test_debug_flag(scratch: Scratch) -> None:
    res = run_sandbox([scratch.bin("probe"), "echo", "dbg"], rootfs=scratch.root, extra=["--debug"])
    assert (res.returncode, res.stdout) == (0, "dbg\n"), describe(res)
    assert "Traceback" not in res.stderr and res.stderr.strip(), describe(res)


def test_sigusr2_reports_every_task(tmp_path: Path) -> None:
    """SIGUSR2 to the sentry: one line per task saying which system call it is parked in,
    on stderr and in --debug-log; the sandbox goes on to finish normally."""
    import signal
    import subprocess
    import time
    logdir = tmp_path / "logs"
    proc = subprocess.Popen([PYTHON, "-m", "snakevisor", "do", "--debug-log", str(logdir), "--",
                             "/bin/sh", "-c", "echo started; sleep 3 | cat; echo done"],
                            cwd=REPO, env=sandbox_env(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout.readline() == "started\n"
        time.sleep(1)  # (sleep and cat are parked by now)
        proc.send_signal(signal.SIGUSR2)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (proc.returncode, out) == (0, "done\n"), err
    assert re.search(r"^sandbox state: 3 tasks", err, re.M), err
    assert re.search(r"pid 1 tid 1 host \d+ 'sh': parked in wait4\(", err), err
    assert "'sleep': parked in clock_nanosleep(" in err, err
    assert re.search(r"'cat': parked in read\(0x0, ", err), err
    assert "'sleep': parked in clock_nanosleep(" in (logdir / "sentry.log").read_text()


SIGNALLED = {  # name: (command printing "ready" first, signal, to the process group)
    "term-trapped": (["/bin/sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; "
                      "sleep 100 >/dev/null 2>&1 & wait"], "SIGTERM", False),
    "term-default": (["/bin/sh", "-c", "echo ready; exec sleep 100"], "SIGTERM", False),
    # no system call to wait for: the sentry's loop is woken for the signal (Platform.ring)
    "term-busy": (["/bin/sh", "-c", "echo ready; while :; do :; done"], "SIGTERM", False),
    "int-group": (["/bin/sh", "-c", "echo ready; sleep 100; echo after"], "SIGINT", True),
    "int-python": (["/usr/bin/python3", "-c", "import time; print('ready', flush=True); "
                    "time.sleep(100)"], "SIGINT", True),
    "hup-trapped": (["/bin/sh", "-c", "trap 'echo hup' HUP; echo ready; sleep 1; echo end"],
                    "SIGHUP", False),
}


@pytest.mark.parametrize("case", sorted(SIGNALLED))
def test_signals_to_do_reach_the_application(case: str) -> None:
    """`snakevisor do` passes the signals a directly run command would get on to the
    application (kill, timeout, a terminal's ^C to the group): same output, same status as
    natively -- although the application is the init of the sandbox's pid namespace."""
    import signal
    import subprocess
    import time
    argv, name, group = SIGNALLED[case]
    sig = getattr(signal, name)

    def run(cmd: list[str]) -> tuple[int, str]:
        proc = subprocess.Popen(cmd, cwd=REPO, env=sandbox_env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            assert proc.stdout.readline() == "ready\n"
            time.sleep(0.3)  # (past the shell's next step)
            (os.killpg if group else os.kill)(proc.pid, sig)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return shell_status(proc.returncode), out

    native = run(argv)
    assert native == run([PYTHON, "-m", "snakevisor", "do", "--", *argv])


def test_unwritable_debug_log_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_one_line_error(run_cli("do", "--debug-log", str(blocker / "sub"), "--", "/bin/true"))


@pytest.mark.parametrize("fd,argv,message", [
    (0, ["/bin/cat"], "Bad file descriptor"),
    (1, ["/bin/echo", "hi"], "Bad file descriptor"),
])
def test_closed_stdio_stays_closed(fd: int, argv: list[str], message: str) -> None:
    """A stdio fd the caller closed is closed in the sandbox too (EBADF, as natively), and
    none of the sentry's own descriptors takes its place."""
    import subprocess
    script = f'exec "$@" {fd}>&-'
    res = subprocess.run(["bash", "-c", script, "bash", PYTHON, "-m", "snakevisor", "do", "--",
                          *argv], cwd=REPO, env=sandbox_env(), capture_output=True, text=True,
                         timeout=60)
    native = subprocess.run(["bash", "-c", script, "bash", *argv], capture_output=True, text=True,
                            timeout=60)
    assert res.returncode == native.returncode == 1, describe(res)
    assert message in res.stderr and message in native.stderr, describe(res)
