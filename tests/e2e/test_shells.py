"""Shells, Python and make: fork/exec/wait/pipe/signal-heavy programs from the host's root
run in the sandbox and print exactly what they print natively.

Why: these are what a container runs first, and they exercise the process machinery the way
real software does (a shell forks for every pipeline stage and command substitution, traps
signals, waits for background jobs; busybox re-executes itself through /proc/self/exe;
Python pools fork workers and talk over pipes; make runs gcc, which runs cc1, as and ld).
Every script runs natively first with the same environment and an empty work directory of
its own, its output is checked against what the script is meant to print (so the script
itself is sound on this host), and then the sandbox's output and status must be identical.

The stress tests (500 fork/exec/wait cycles, 64 threads) drive one sandbox step by step over
its stdin and watch its host process tree in /proc: nothing may be left behind, during the
run (zombies, stubs) or after it, and the sentry's memory must come back near its level.
"""
from __future__ import annotations

import os
import select
import signal
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Callable

import pytest

from harness import (REPO, assert_same_output, describe, env_flags, run_native, run_sandbox,
                     sandbox_command, sandbox_env)

pytestmark = pytest.mark.slow

BUSYBOX = "/bin/busybox"
BASH = "/bin/bash"
PYTHON3 = "/usr/bin/python3"

SHELLS = {"busybox-sh": [BUSYBOX, "sh", "-c"], "bash": [BASH, "-c"]}


def need(path: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} is not installed")


def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """Empty work directories for the native and the sandboxed run."""
    native, sandbox = tmp_path / "native", tmp_path / "sandbox"
    native.mkdir()
    sandbox.mkdir()
    return native, sandbox


def compare(args: list[str], tmp_path: Path, expect: str | None, status: int = 0,
            timeout: float = 60) -> None:
    """Run natively (checked against expect/status), then in the sandbox (default root,
    writable, cwd its own empty directory); stdout and status must be equal."""
    native_dir, sandbox_dir = dirs(tmp_path)
    native = run_native(args, cwd=native_dir, timeout=timeout)
    assert native.returncode == status, describe(native)
    if expect is not None:
        assert native.stdout == expect, describe(native)
    sandboxed = run_sandbox(args, extra=[*env_flags(), "--writable-root", "--cwd", str(sandbox_dir)],
                            timeout=timeout)
    assert_same_output(native, sandboxed)
    assert sorted(os.listdir(sandbox_dir)) == sorted(os.listdir(native_dir))


# --------------------------------------------------------------------------- shell scripts

#: name -> (script, expected stdout, expected status)
SCRIPTS: dict[str, tuple[str, str, int]] = {
    "pipeline": ("""
        seq 1 1000 | sort -rn | head -3
        echo "sum $(seq 1 100 | awk '{s += $1} END {print s}')"
        printf 'b\\na\\nc\\n' | sort | tr '\\n' ' '; echo
        yes | head -n 5 | wc -l
        echo one two three | tr ' ' '\\n' | tail -1
        """, "1000\n999\n998\nsum 5050\na b c \n5\nthree\n", 0),
    "subshells": ("""
        x=outer
        (x=inner; echo "in subshell: $x"; exit 3)
        echo "status $?"
        echo "after: $x"
        (cd / && pwd)
        ( (exit 4); echo "nested $?" )
        { echo grouped; echo lines; } | tr a-z A-Z
        f() { echo "function $1"; return 6; }
        f arg; echo "function status $?"
        (f sub) | cat
        """, "in subshell: inner\nstatus 3\nafter: outer\n/\nnested 4\nGROUPED\nLINES\n"
             "function arg\nfunction status 6\nfunction sub\n", 0),
    "command-substitution": ("""
        a=$(echo hello | tr a-z A-Z)
        echo "$a"
        echo "lines: $(seq 1 10 | wc -l)"
        echo "nested: $(echo $(echo deep))"
        n=`echo backticks`; echo $n
        echo "inner status: $(false; echo $?)"
        x=$(exit 5); echo "assignment status $?"
        big=$(seq 1 3000 | tail -1); echo "big $big"
        """, "HELLO\nlines: 10\nnested: deep\nbackticks\ninner status: 1\nassignment status 5\n"
             "big 3000\n", 0),
    "background-and-wait": ("""
        (exit 3) & p1=$!
        (exit 5) & p2=$!
        wait $p1; echo "first $?"
        wait $p2; echo "second $?"
        for i in 1 2 3 4; do (echo "job $i" > out.$i) & done
        wait
        cat out.1 out.2 out.3 out.4
        rm out.1 out.2 out.3 out.4
        sleep 10 & p=$!
        kill $p
        wait $p; echo "killed sleep: $?"
        { for i in 1 2 3; do echo $i & done; wait; } | sort | tr '\\n' ' '; echo
        """, "first 3\nsecond 5\njob 1\njob 2\njob 3\njob 4\nkilled sleep: 143\n1 2 3 \n", 0),
    "trap-and-kill": ("""
        trap 'echo got USR1' USR1
        kill -USR1 $$
        echo after
        trap 'echo got TERM' TERM
        kill -TERM $$
        trap - USR1
        kill -0 $$ && echo "kill -0 works"
        sh -c 'kill -9 $$'; echo "SIGKILLed child: $?"
        sh -c 'kill -TERM $$'; echo "SIGTERMed child: $?"
        sh -c 'exit 7'; echo "exit 7: $?"
        sh -c 'trap "echo child trapped" HUP; kill -HUP $$; echo child done'
        """, "got USR1\nafter\ngot TERM\nkill -0 works\nSIGKILLed child: 137\nSIGTERMed child: 143\n"
             "exit 7: 7\nchild trapped\nchild done\n", 0),
    "trap-exit": ("""
        trap 'echo "bye from exit trap"' EXIT
        (trap 'echo subshell exit trap' EXIT; echo in subshell)
        echo hi
        exit 3
        """, "in subshell\nsubshell exit trap\nhi\nbye from exit trap\n", 3),
    "here-documents": ("""
        cat <<EOF
        value $((6 * 7))
          indented
        EOF
        cat <<'EOF'
        $literal `not run`
        EOF
        tr a-z A-Z <<-EOF
        \ttab stripped
        \tEOF
        while read a b; do echo "$b $a"; done <<EOF
        1 one
        2 two
        EOF
        big=$(cat <<EOF
        $(seq 1 2000 | tr '\\n' ' ')
        EOF
        ); echo "${#big}"
        """, "value 42\n  indented\n$literal `not run`\nTAB STRIPPED\none 1\ntwo 2\n8893\n", 0),
    "set-e": ("""
        set -e
        echo one
        if false; then echo no; fi
        false || echo "or-list ok"
        x=$(echo sub); echo "$x"
        false
        echo never
        """, "one\nor-list ok\nsub\n", 1),
    "fork-loop": ("""
        n=0
        for i in $(seq 1 50); do
          /bin/true
          n=$((n + $(echo 1)))
        done
        echo "ran $n"
        for i in $(seq 1 20); do echo $i; done | sort -n | tail -1
        """, "ran 50\n20\n", 0),
    "xargs-parallel": ("""
        seq 1 20 | xargs -P4 -n1 sh -c 'echo $(($0 * $0))' | sort -n | tr '\\n' ' '; echo
        seq 1 10 | xargs -n3 echo
        """, "1 4 9 16 25 36 49 64 81 100 121 144 169 196 225 256 289 324 361 400 \n"
             "1 2 3\n4 5 6\n7 8 9\n10\n", 0),
    "exec-redirections": ("""
        exec 3>&1
        exec 1>discard.txt
        echo hidden
        exec 1>&3 3>&-
        echo visible
        exec 4>file.txt
        echo "to fd 4" >&4
        exec 4>&-
        cat file.txt
        exec 5<file.txt
        read line <&5
        echo "read back: $line"
        exec 5<&-
        { echo err-line >&2; } 2>&1 | tr a-z A-Z
        cat discard.txt
        rm file.txt discard.txt
        """, "visible\nto fd 4\nread back: to fd 4\nERR-LINE\nhidden\n", 0),
    "pipefail": ("""
        false | true; echo "without pipefail $?"
        set -o pipefail
        false | true; echo "with pipefail $?"
        (exit 3) | (exit 0); echo "pipefail 3: $?"
        printf 'a b\\nc d\\n' | while read x y; do echo "$y $x"; done
        """, "without pipefail 0\nwith pipefail 1\npipefail 3: 3\nb a\nd c\n", 0),
}


def _script(text: str) -> str:
    return textwrap.dedent(text).replace("\\t", "\t").strip() + "\n"


@pytest.mark.parametrize("name", sorted(SCRIPTS))
@pytest.mark.parametrize("shell", sorted(SHELLS))
def test_shell_script(shell: str, name: str, tmp_path: Path) -> None:
    need(SHELLS[shell][0])
    script, expect, status = SCRIPTS[name]
    compare([*SHELLS[shell], _script(script)], tmp_path, expect, status)


# --------------------------------------------------------------------------- Python

PY_PROCESSES = """
import os, signal, subprocess, time
r = subprocess.run(["/bin/echo", "hi"], capture_output=True, text=True)
print("subprocess.run:", r.returncode, r.stdout.strip())
r = subprocess.run(["/bin/sh", "-c", "tr a-z A-Z"], input="piped text\\n", capture_output=True, text=True)
print("through a pipe:", r.stdout.strip())
print("exit status:", subprocess.run(["/bin/sh", "-c", "exit 3"]).returncode)
print("killed:", subprocess.run(["/bin/sh", "-c", "kill -9 $$"]).returncode)
p1 = subprocess.Popen(["/usr/bin/seq", "1", "100"], stdout=subprocess.PIPE)
p2 = subprocess.Popen(["/usr/bin/wc", "-l"], stdin=p1.stdout, stdout=subprocess.PIPE, text=True)
p1.stdout.close()
print("Popen pipeline:", p2.communicate()[0].strip(), p1.wait())
pid = os.fork()
if pid == 0:
    os._exit(42)
print("fork + waitpid:", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
got = []
signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
os.kill(os.getpid(), signal.SIGUSR1)
print("SIGUSR1 handled:", got == [signal.SIGUSR1])
class Alarm(Exception):
    pass
def on_alarm(s, f):
    raise Alarm
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.05)
try:
    time.sleep(5)
    print("sleep was not interrupted")
except Alarm:
    print("setitimer interrupted sleep")
print("alarm:", signal.alarm(10), signal.alarm(0))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(r)
    os.write(w, b"x" * 100000)
    os._exit(0)
os.close(w)
n = 0
while chunk := os.read(r, 65536):
    n += len(chunk)
os.waitpid(pid, 0)
print("bytes through os.pipe across fork:", n)
"""

PY_THREADS = """
import threading
from concurrent.futures import ThreadPoolExecutor
lock = threading.Lock()
total = 0
def work():
    global total
    for _ in range(500):
        with lock:
            total += 1
threads = [threading.Thread(target=work) for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("16 threads with a lock:", total)
cond = threading.Condition()
items = []
def consumer(out):
    for _ in range(100):
        with cond:
            cond.wait_for(lambda: items)
            out.append(items.pop(0))
got = []
c = threading.Thread(target=consumer, args=(got,))
c.start()
for i in range(100):
    with cond:
        items.append(i)
        cond.notify()
c.join()
print("condition producer/consumer:", sum(got), len(got))
barrier = threading.Barrier(8)
arrived = []
def at_barrier(i):
    arrived.append(i)
    barrier.wait()
    return len(arrived)
with ThreadPoolExecutor(8) as ex:
    print("barrier saw all 8:", set(ex.map(at_barrier, range(8))) == {8})
with ThreadPoolExecutor(8) as ex:
    print("ThreadPoolExecutor:", sum(ex.map(lambda x: x * x, range(1000))))
ev = threading.Event()
t = threading.Timer(0.05, ev.set)
t.start()
print("event set by a Timer thread:", ev.wait(10))
t.join()
print("threads left:", threading.active_count())
"""

PY_POOLS = """
import multiprocessing, os
from concurrent.futures import ProcessPoolExecutor
def square(x):
    return x * x
def pid_of(_):
    return os.getpid()
if __name__ == "__main__":
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        print("Pool(4).map:", sum(pool.map(square, range(200))))
        print("workers are other processes:", os.getpid() not in set(pool.map(pid_of, range(20))))
    with ProcessPoolExecutor(4, mp_context=ctx) as ex:
        print("ProcessPoolExecutor:", sum(ex.map(square, range(100))))
    q = ctx.Queue()
    p = ctx.Process(target=q.put, args=("via a Queue",))
    p.start()
    print(q.get(timeout=30))
    p.join()
    print("Process exitcode:", p.exitcode)
"""

PYTHON_CASES = {
    "processes": (PY_PROCESSES,
                  "subprocess.run: 0 hi\nthrough a pipe: PIPED TEXT\nexit status: 3\nkilled: -9\n"
                  "Popen pipeline: 100 0\nfork + waitpid: 42\nSIGUSR1 handled: True\n"
                  "setitimer interrupted sleep\nalarm: 0 10\nbytes through os.pipe across fork: 100000\n"),
    "threads": (PY_THREADS,
                "16 threads with a lock: 8000\ncondition producer/consumer: 4950 100\n"
                "barrier saw all 8: True\nThreadPoolExecutor: 332833500\n"
                "event set by a Timer thread: True\nthreads left: 1\n"),
    "fork-pools": (PY_POOLS,
                   "Pool(4).map: 2646700\nworkers are other processes: True\n"
                   "ProcessPoolExecutor: 328350\nvia a Queue\nProcess exitcode: 0\n"),
}


@pytest.mark.parametrize("name", sorted(PYTHON_CASES))
def test_python(name: str, tmp_path: Path) -> None:
    need(PYTHON3)
    script, expect = PYTHON_CASES[name]
    compare([PYTHON3, "-c", script], tmp_path, expect)


# --------------------------------------------------------------------------- make + gcc

PROJECT = {
    "util.h": "int triangle(int n);\nconst char *greeting(void);\n",
    "util.c": '#include "util.h"\nint triangle(int n) { return n <= 0 ? 0 : n + triangle(n - 1); }\n'
              'const char *greeting(void) { return "built by make"; }\n',
    "main.c": '#include <stdio.h>\n#include "util.h"\n'
              'int main(void) { printf("%s: triangle(100) = %d\\n", greeting(), triangle(100)); return 0; }\n',
    "Makefile": "CC = gcc\nCFLAGS = -O2 -Wall\n\nprog: main.o util.o\n\t$(CC) -o $@ main.o util.o\n\n"
                "%.o: %.c util.h\n\t$(CC) $(CFLAGS) -c $<\n",
}


def test_make_j2_builds_with_gcc(tmp_path: Path) -> None:
    """`make -j2` (make → sh → gcc → cc1/as/collect2/ld) in the sandbox builds the same
    binary, byte for byte, as natively, and it runs in both."""
    for tool in ("/usr/bin/make", "/usr/bin/gcc"):
        need(tool)
    native_dir, sandbox_dir = dirs(tmp_path)
    for directory in (native_dir, sandbox_dir):
        for name, text in PROJECT.items():
            (directory / name).write_text(text)
    args = ["/usr/bin/make", "-j2"]
    native = run_native(args, cwd=native_dir, timeout=120)
    assert native.returncode == 0, describe(native)
    assert native.stdout == ("gcc -O2 -Wall -c main.c\ngcc -O2 -Wall -c util.c\n"
                             "gcc -o prog main.o util.o\n"), describe(native)
    sandboxed = run_sandbox(args, extra=[*env_flags(), "--writable-root", "--cwd", str(sandbox_dir)],
                            timeout=120)
    assert_same_output(native, sandboxed)
    assert sorted(os.listdir(sandbox_dir)) == sorted(os.listdir(native_dir))
    assert (sandbox_dir / "prog").read_bytes() == (native_dir / "prog").read_bytes()
    ran = run_native([sandbox_dir / "prog"], cwd=tmp_path)
    assert (ran.returncode, ran.stdout) == (0, "built by make: triangle(100) = 5050\n"), describe(ran)
    inside = run_sandbox(["./prog"], extra=[*env_flags(), "--cwd", str(sandbox_dir)])
    assert (inside.returncode, inside.stdout) == (0, ran.stdout), describe(inside)


# --------------------------------------------------------------------------- stress

#: A host process tree below the sentry: pid -> (state, start time, thread count).
Tree = dict[int, tuple[str, int, int]]


class Watched:
    """A `snakevisor do` run driven line by line through its stdin/stdout, whose host process
    tree (the sentry and every stub below it) is sampled from /proc while it runs."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(sandbox_command(args, extra=env_flags()), cwd=REPO, env=sandbox_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.seen: set[tuple[int, int]] = set()   # (pid, start time) of every stub ever sampled
        self.buffer = b""

    def sample(self) -> Tree:
        tree = descendants(self.proc.pid)
        self.seen.update((pid, start) for pid, (_, start, _) in tree.items())
        return tree

    def expect(self, line: str, timeout: float) -> None:
        """Read stdout until `line`, sampling the process tree meanwhile."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.fail(f"no {line!r} within {timeout}s")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, 0.02))
            self.sample()
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    self.fail(f"stdout closed before {line!r}")
                self.buffer += chunk
        got, self.buffer = self.buffer.split(b"\n", 1)
        if got.decode() != line:
            self.fail(f"expected {line!r}, got {got!r}")

    def send(self, text: str) -> None:
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def finish(self, timeout: float = 30) -> int:
        self.proc.stdin.close()
        status = self.proc.wait(timeout)
        err = self.proc.stderr.read().decode(errors="replace")
        assert status == 0, f"status {status}\n{err[-3000:]}"
        return status

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def fail(self, why: str) -> None:
        self.kill()
        err = self.proc.stderr.read().decode(errors="replace")
        pytest.fail(f"{why}\n--- stdout so far\n{self.buffer[-2000:]!r}\n--- stderr\n{err[-3000:]}")

    def all_gone(self) -> list[tuple[int, int]]:
        """Processes sampled during the run that still exist (same pid and start time),
        after giving the host a moment to finish killing them."""
        for _ in range(100):
            alive = [(pid, start) for pid, start in self.seen if start_time(pid) == start]
            if not alive:
                return []
            time.sleep(0.05)
        return alive


def start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[19])


def descendants(root: int) -> Tree:
    """pid -> (state, start time, threads) of every live host process below root."""
    children: dict[int, list[int]] = {}
    info: Tree = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        pid = int(entry)
        children.setdefault(int(fields[1]), []).append(pid)
        info[pid] = (fields[0], int(fields[19]), int(fields[17]))
    found: Tree = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = info[child]
            todo.append(child)
    return found


#: How much the sentry's resident memory may grow over a stress run that leaves nothing
#: behind (Python keeps some freed memory in its arenas; a leak of per-task state for 500
#: processes or 64 threads is well above this).
RSS_SLACK_KIB = 24 * 1024


def stress(args: list[str], done: str, timeout: float, check: Callable[[Tree, Tree], None]) -> Watched:
    """Run a stress program that prints "ready", waits for a line, does its work, prints
    `done` and waits for another line.  The host process tree and the sentry's memory are
    sampled just before and just after the work: check(before, after) judges the trees
    (until it passes, for up to 10 s: what has been reaped may still be leaving the host),
    and the memory must be back near its level.  Afterwards no stub may survive the
    sandbox.  Returns the finished run."""
    run = Watched(args)
    try:
        run.expect("ready", 60)
        before, base_rss = run.sample(), run.rss_kib()
        run.send("go\n")
        run.expect(done, timeout)
        # A thread or process the program has joined or reaped may still be leaving the host
        # (Linux wakes a joiner before the exiting thread is gone): judge the tree once it has
        # settled; what is left after the deadline is a leak.
        deadline = time.monotonic() + 10
        while True:
            after = run.sample()
            try:
                check(before, after)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        rss = run.rss_kib()
        assert rss - base_rss < RSS_SLACK_KIB, f"sentry RSS grew from {base_rss} KiB to {rss} KiB"
        run.send("go\n")
        run.finish()
    finally:
        run.kill()
    assert run.all_gone() == [], "stub processes survived the sandbox"
    return run


def test_stress_500_fork_exec_wait() -> None:
    """500 fork/exec/wait cycles (busybox sh running the static busybox binary): they all
    finish, no zombie or stub host process is left, the sentry's memory returns near its
    level before the loop, and every stub is gone once the sandbox exits."""
    need(BUSYBOX)
    script = ('echo ready; read go; i=0; while [ $i -lt 500 ]; do /bin/busybox true || exit 9; '
              'i=$((i + 1)); done; echo "forked $i"; read go')

    def nothing_left(before: Tree, after: Tree) -> None:
        assert not [p for p, (state, _, _) in after.items() if state == "Z"], f"zombies left: {after}"
        assert len(after) <= len(before), f"host processes left behind: before {before}, after {after}"

    run = stress([BUSYBOX, "sh", "-c", script], "forked 500", 300, nothing_left)
    assert len(run.seen) >= 2, f"the sampler did not see the template and the shell's stub: {run.seen}"


def test_stress_64_threads() -> None:
    """64 threads alive at once (a barrier of 64) in Python: joined, the stub's host threads
    are back to what they were, the sentry's memory near its level before, nothing left."""
    need(PYTHON3)
    script = textwrap.dedent("""
        import sys, threading
        print("ready", flush=True)
        sys.stdin.readline()
        barrier = threading.Barrier(64)
        count = []
        def work(i):
            barrier.wait()
            count.append(i)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(64)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("joined", len(count), sum(count), flush=True)
        sys.stdin.readline()
        """)

    def threads_back(before: Tree, after: Tree) -> None:
        threads_before = sum(n for _, _, n in before.values())
        threads_after = sum(n for _, _, n in after.values())
        assert threads_after == threads_before, f"host threads: {threads_before} before, {threads_after} after"

    stress([PYTHON3, "-c", script], "joined 64 2016", 120, threads_back)
