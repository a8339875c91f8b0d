"""`snakevisor do` typed at a terminal: the application gets a pty of the sandbox's own devpts
relayed to the user's terminal (as `docker run -it`), so ^C and ^Z reach its foreground job
and not the sentry; the user's terminal is raw while the sandbox runs and restored after.

Why a test of its own: handing the host terminal straight to the sandbox (what `--no-tty` and
redirected stdio still do) ends the whole sandbox on ^C, and a shell inside has no job control.
"""
from __future__ import annotations

import os
import pty
import termios
import time

import pytest

from engines import interactive_shell_session
from harness import PYTHON, PtyPeer

pytestmark = pytest.mark.slow

DO = [PYTHON, "-m", "snakevisor", "do", "--env=PS1=$ "]


def fresh_settings() -> list:
    """A new pty's termios: what pty.fork's terminal starts with and must end with."""
    master, slave = os.openpty()
    try:
        return termios.tcgetattr(master)
    finally:
        os.close(master)
        os.close(slave)


def cooked(settings: list) -> bool:
    return bool(settings[3] & termios.ICANON and settings[3] & termios.ECHO)


def spawn(argv: list[str], stdout: int | None = None) -> tuple[int, PtyPeer]:
    """argv in a new session on a new pty (its stdout elsewhere when given)."""
    pid, fd = pty.fork()
    if pid == 0:
        if stdout is not None:
            os.dup2(stdout, 1)
        os.execv(argv[0], argv)
    return pid, PtyPeer(fd)


def status_of(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_shell_at_a_terminal_is_at_a_sandbox_terminal() -> None:
    """Name, size and resizes of the user's terminal, ^C to the foreground job only, the
    shell's exit status; the terminal's settings are the user's again afterwards."""
    def restored(peer: PtyPeer) -> None:
        assert peer.settings() == fresh_settings()

    interactive_shell_session([*DO, "--", "/bin/sh"], settle=0.2, after=restored)


def test_job_control_and_raw_mode() -> None:
    """^Z stops the foreground job (the shell's `jobs` sees it, `fg` resumes it); the user's
    terminal is raw while the sandbox runs (keys go to the sandbox's line discipline)."""
    pid, peer = spawn([*DO, "--", "/bin/sh"])
    try:
        peer.expect("$ ")
        assert not cooked(peer.settings())
        peer.send(b"sleep 100\r")
        time.sleep(1)
        peer.send(b"\x1a")  # ^Z
        peer.expect("Stopped")
        mark = len(peer.seen)
        peer.send(b"jobs; fg\r")
        peer.expect("jobs; fg\r\n", since=mark)
        resumed = peer.seen.index(b"jobs; fg\r\n", mark) + len(b"jobs; fg\r\n")
        peer.expect("Stopped", since=mark)  # jobs lists it
        peer.expect("\nsleep 100\r\n", since=resumed)  # fg names the job it resumes
        time.sleep(0.5)
        peer.send(b"\x03")  # it is in the foreground again: ^C ends it
        mark = len(peer.seen)
        peer.send(b"echo after $?; jobs; echo none left\r")
        peer.expect("\nnone left\r\n", since=mark)  # (the output, not the echoed line)
        assert b"after 130" in peer.seen[mark:] and b"Stopped" not in peer.seen[mark:]
        peer.send(b"exit 5\r")
        assert status_of(pid) == 5
        assert peer.settings() == fresh_settings()
    finally:
        os.close(peer.fd)


def test_no_tty_leaves_the_terminal_to_the_application() -> None:
    """--no-tty: the host terminal itself is the application's (cooked by the host)."""
    pid, peer = spawn([*DO, "--no-tty", "--", "/bin/sh", "-c", "echo started; sleep 1; exit 7"])
    try:
        peer.expect("started")
        assert cooked(peer.settings())
        assert status_of(pid) == 7
    finally:
        os.close(peer.fd)


def test_redirected_output_gets_no_sandbox_terminal() -> None:
    """stdout to a pipe: the application writes to the pipe, not to a pty (and the user's
    terminal is not put in raw mode)."""
    r, w = os.pipe()
    pid, peer = spawn([*DO, "--", "/bin/sh", "-c",
                       "test -t 1 || echo not a tty; test -t 0 && echo >&2 stdin is; sleep 1"],
                      stdout=w)
    os.close(w)
    try:
        peer.expect("stdin is")
        assert cooked(peer.settings())
        assert status_of(pid) == 0
        with os.fdopen(r) as out:
            assert out.read() == "not a tty\n"
    finally:
        os.close(peer.fd)


def test_the_sentrys_own_lines_on_a_raw_terminal() -> None:
    """--strace (written by the sentry to stderr, the raw terminal) keeps its lines apart:
    each ends in CR LF, as the application's output does through its pty."""
    pid, peer = spawn([*DO, "--strace", "--", "/bin/echo", "hi"])
    try:
        assert status_of(pid) == 0
        peer.expect("exit_group")  # (what the sandbox wrote stays readable after it ended)
        assert b"hi\r\n" in peer.seen and b"write(1, " in peer.seen
        assert peer.seen.count(b"\n") == peer.seen.count(b"\r\n") > 3
    finally:
        os.close(peer.fd)
