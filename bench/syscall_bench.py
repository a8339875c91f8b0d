#!/usr/bin/env python3
"""Per-syscall cost, file-system operations and start-up time, natively and inside the
sandbox, in one run.

The micro-benchmarks are small static C programs (bench/native/*.c) that time their own
loop with clock_gettime and print nanoseconds per operation, so sandbox boot is not in
their figures; start-up is the wall time of a whole `true` command.  Each program runs
natively and as ``python -m snakevisor do --rootfs / -- PROGRAM`` (and, for start-up,
under runc when it is installed); the table shows the medians and the sandbox/native ratio.
The file-system rows ("OP @PLACE") run bench/native/fs_ops.c in a directory on each kind of
mount the sandbox has: the overlay root, a ``--tmpfs`` and a ``--volume``; natively the
same loop runs in the host directory (or host tmpfs) the sandbox's place stands for.
The redis rows ("redis TEST") start redis-server on a unix socket and run redis-benchmark
against it, both inside one sandbox run (and both natively); they are throughput, so their
figures are requests per second and their ratio native/sandbox: every ratio in the table
reads "times slower than native".

    bench/syscall_bench.py [--json] [--scale 0.1] [--cpus 0] [--native-only] [--no-fs] [--no-redis]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
NATIVE_SRC = ROOT / "bench" / "native"
DEFAULT_BUILD = ROOT / "bench" / "build"
DATA_SIZE = 1 << 20  # the file read by the pread loop (and opened by open+close)
FS_FILE_SIZE = 1 << 20  # fs_ops.c's DIR/data and DIR/scratch
FS_FILES = ("data", "scratch")
HOST_TMPFS = Path("/dev/shm")
TRUE = "/bin/true"
TIMEOUT = 600  # seconds for any one command: a hung sandbox must not hang the bench
SCRATCH_DIR = tempfile.gettempdir()  # where a program may make names (unix_rr's socket)


class BenchError(Exception):
    """One measurement could not be taken; the message says why in one line."""


@dataclass(frozen=True)
class Micro:
    """A C loop benchmark: ops name, program (bench/native/<program>.c), iterations; the
    program's one argument, if any, is the data file (takes_path) or a scratch directory
    (takes_dir: SCRATCH_DIR, the host's natively and the overlay root's in the sandbox)."""

    op: str
    program: str
    native_iterations: int
    sandbox_iterations: int
    takes_path: bool = False
    takes_dir: bool = False


MICROS = (
    Micro("getpid", "getpid", 1_000_000, 20_000),
    Micro("open+close", "open_close", 100_000, 5_000, takes_path=True),
    Micro("pread 4KiB", "pread", 200_000, 10_000, takes_path=True),
    Micro("fork+exit+wait", "fork_wait", 5_000, 500),
    Micro("execve static", "exec_chain", 1_000, 200),
    Micro("pipe round trip", "pipe_pingpong", 50_000, 5_000),
    Micro("thread create+join", "thread_create", 5_000, 500),
    Micro("unix rr epoll", "unix_rr", 100_000, 20_000, takes_dir=True),
)
STARTUP_OP = "startup true"


@dataclass(frozen=True)
class FsOp:
    """One operation of bench/native/fs_ops.c (its OP argument), timed on every Place."""

    op: str
    arg: str
    native_iterations: int
    sandbox_iterations: int


FS_PROGRAM = "fs_ops"
FS_OPS = (
    FsOp("open+close", "open", 100_000, 5_000),
    FsOp("stat", "stat", 100_000, 5_000),
    FsOp("read 4KiB", "read4k", 200_000, 10_000),
    FsOp("write 4KiB", "write4k", 200_000, 10_000),
    FsOp("read 1MiB seq", "read1m", 5_000, 500),
    FsOp("write 1MiB seq", "write1m", 5_000, 500),
)


@dataclass(frozen=True)
class Place:
    """Where an FsOp runs: the sandbox's flags and directory, and the host directory that is
    its native counterpart (the directory itself for the root and a volume; a host tmpfs for
    a tmpfs).  A native figure is measured once per host directory and shared."""

    name: str
    flags: tuple[str, ...]
    sandbox_dir: str
    native_dir: Path | None  # None: no native counterpart on this host


def places(disk: Path, tmpfs: Path | None) -> tuple[Place, ...]:
    """The overlay root reads the host directory as a lower (rootfs image) file and writes into
    the sentry's memory; the tmpfs starts empty (fs_ops.c creates its files); the volume is
    the same host directory bind-mounted."""
    return (
        Place("overlay", (), str(disk), disk),
        Place("tmpfs", ("--tmpfs", "/t"), "/t", tmpfs),
        Place("volume", ("--volume", f"{disk}:/v"), "/v", disk),
    )


@dataclass(frozen=True)
class Loop:
    """One row measured by a C loop: the same program natively and in the sandbox."""

    op: str
    program: str  # bench/native/<program>.c
    native_args: tuple[str, ...] | None  # None: not measurable natively (reason in errors)
    sandbox_args: tuple[str, ...]
    native_n: int
    sandbox_n: int
    sandbox_flags: tuple[str, ...] = ()
    native_missing: str = ""  # why native_args is None
    section: str = ""


@dataclass
class Row:
    """A time per operation (ns) or, for a throughput row, requests per second (rps)."""

    op: str
    section: str = ""  # the table draws a rule where the section changes
    native_ns: float | None = None
    sandbox_ns: float | None = None
    runc_ns: float | None = None
    errors: dict[str, str] = field(default_factory=dict)
    throughput: bool = False  # figures in native_rps/sandbox_rps instead of *_ns
    native_rps: float | None = None
    sandbox_rps: float | None = None

    @property
    def ratio(self) -> float | None:
        """How many times slower the sandbox is: sandbox/native time, native/sandbox rps."""
        if self.throughput:
            if self.native_rps is not None and self.sandbox_rps:
                return self.native_rps / self.sandbox_rps
            return None
        if self.native_ns and self.sandbox_ns is not None:
            return self.sandbox_ns / self.native_ns
        return None

    @property
    def unit(self) -> str:
        return "req/s" if self.throughput else "ns"


def log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(f"bench: {msg}", file=sys.stderr, flush=True)


# -- building ---------------------------------------------------------------------------

def build(build_dir: Path) -> dict[str, Path]:
    """Compile each bench/native/*.c (gcc -O2 -static) when missing or stale."""
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BenchError("gcc not found: run scripts/install-deps.sh (or apt-get install gcc libc6-dev)")
    build_dir.mkdir(parents=True, exist_ok=True)
    header_mtime = (NATIVE_SRC / "bench.h").stat().st_mtime
    programs = {}
    for src in sorted(NATIVE_SRC.glob("*.c")):
        out = build_dir / src.stem
        fresh = out.exists() and out.stat().st_mtime >= max(src.stat().st_mtime, header_mtime)
        if not fresh:
            proc = subprocess.run([gcc, "-O2", "-static", "-Wall", "-o", str(out), str(src)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise BenchError(f"cannot compile {src.relative_to(ROOT)}:\n{proc.stderr.strip()}")
        programs[src.stem] = out
    return programs


def random_file(path: Path, size: int) -> Path:
    """path holding `size` random bytes (kept when it already has that size)."""
    if not path.exists() or path.stat().st_size != size:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
    return path


def data_file(build_dir: Path) -> Path:
    return random_file(build_dir / "data.bin", DATA_SIZE)


def fs_disk_dir(build_dir: Path) -> Path:
    """The host directory of the file-system rows, with its files made in advance: on the
    overlay root they are then lower files of the rootfs image (writes copy one up)."""
    disk = build_dir / "fs"
    for name in FS_FILES:
        random_file(disk / name, FS_FILE_SIZE)
    return disk


def is_tmpfs(path: Path) -> bool:
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[1:3] == [str(path), "tmpfs"] for line in mounts)


# -- running ----------------------------------------------------------------------------

def sandbox_prefix(python: str, flags: tuple[str, ...] = ()) -> list[str]:
    return [python, "-m", "snakevisor", "do", "--rootfs", "/", *flags, "--"]


def run(cmd: list[str], what: str) -> str:
    """Run cmd to completion; its stdout, or BenchError naming what failed and why.  cmd runs
    in a process group of its own, killed afterwards: nothing it started (a server its script
    did not stop, a hung sandbox's processes) outlives the measurement."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    except OSError as exc:
        raise BenchError(f"{what}: cannot run {cmd[0]}: {exc.strerror}") from None
    with proc:
        try:
            stdout, stderr = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.communicate()
            raise BenchError(f"{what}: no result after {TIMEOUT} s") from None
        finally:
            kill_group(proc.pid)
    if proc.returncode != 0:
        tail = stderr.strip().splitlines()[-3:] or ["(no output on stderr)"]
        raise BenchError(f"{what}: exit status {proc.returncode}: " + " / ".join(tail))
    return stdout


def kill_group(pgid: int) -> None:
    """SIGKILL what is left of the process group run() made (usually nothing)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def ns_per_op(cmd: list[str], what: str, repeat: int) -> float:
    """Median over `repeat` runs of the ns/op figure a C benchmark prints."""
    results = []
    for _ in range(repeat):
        out = run(cmd, what).split()
        try:
            results.append(float(out[-1]))
        except (IndexError, ValueError):
            raise BenchError(f"{what}: expected ns per op on stdout, got {' '.join(out)[:80]!r}") from None
    return statistics.median(results)


def wall_ns(cmd: list[str], what: str, runs: int) -> float:
    """Median wall time of the whole command, after one untimed warm-up run."""
    run(cmd, what)
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        run(cmd, what)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times)


# -- runc -------------------------------------------------------------------------------

def runc_bundle(workdir: Path, runc: str) -> Path:
    """A bundle whose root holds only `true` and the shared libraries it loads."""
    bundle = workdir / "bundle"
    rootfs = bundle / "rootfs"
    needed = [TRUE]
    ldd = subprocess.run(["ldd", TRUE], capture_output=True, text=True)
    for line in ldd.stdout.splitlines():
        for word in line.split():
            if word.startswith("/"):
                needed.append(word)
    for path in needed:
        dest = rootfs / path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.realpath(path), dest)
    run([runc, "spec", "--bundle", str(bundle)], "runc spec")
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = [TRUE]
    config["process"]["terminal"] = False
    config["root"] = {"path": "rootfs", "readonly": True}
    config_path.write_text(json.dumps(config))
    return bundle


def runc_startup(runs: int) -> float:
    runc = shutil.which("runc")
    if runc is None:
        raise BenchError("runc is not installed")
    with tempfile.TemporaryDirectory(prefix="snakevisor-bench-runc-") as tmp:
        workdir = Path(tmp)
        bundle = runc_bundle(workdir, runc)
        state = workdir / "state"
        counter = iter(range(1 << 30))

        def once() -> None:
            cid = f"snakevisor-bench-{os.getpid()}-{next(counter)}"
            run([runc, "--root", str(state), "run", "--bundle", str(bundle), cid], "runc run true")

        once()
        times = []
        for _ in range(runs):
            start = time.perf_counter_ns()
            once()
            times.append(time.perf_counter_ns() - start)
        return statistics.median(times)


# -- redis ------------------------------------------------------------------------------

REDIS_SECTION = "redis-benchmark"
REDIS_SELECT = "ping,set,get"  # redis-benchmark -t
REDIS_TESTS = ("PING_INLINE", "PING_MBULK", "SET", "GET")  # what REDIS_SELECT runs, in order
REDIS_CLIENTS = 10
REDIS_NATIVE_REQUESTS = 50_000  # per test
REDIS_SANDBOX_REQUESTS = 5_000
# sh -c SCRIPT sh DIR SERVER CLIENT REQUESTS CLIENTS: the server in the background on
# DIR/redis.sock (no TCP port, no persistence), the benchmark once the socket exists, the
# server stopped on the way out whatever happens; only the benchmark's CSV is on stdout.
REDIS_SCRIPT = r"""
dir=$1 server=$2 client=$3 requests=$4 clients=$5
"$server" --port 0 --unixsocket "$dir/redis.sock" --save '' --appendonly no \
    --daemonize no --logfile '' </dev/null >"$dir/redis.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid' EXIT
tries=0
while [ ! -S "$dir/redis.sock" ]; do
    if ! kill -0 $pid 2>/dev/null || [ $tries -ge 400 ]; then
        echo "redis-server did not start:" $(tail -n 2 "$dir/redis.log") >&2
        exit 1
    fi
    tries=$((tries + 1))
    sleep 0.05
done
"$client" -s "$dir/redis.sock" --csv -t %s -n "$requests" -c "$clients"
""" % REDIS_SELECT


def redis_programs() -> tuple[str, str]:
    """The paths of redis-server and redis-benchmark, or BenchError saying which is missing."""
    found = []
    for name in ("redis-server", "redis-benchmark"):
        path = shutil.which(name)
        if path is None:
            raise BenchError(f"{name} is not installed (apt-get install redis-server redis-tools)")
        found.append(path)
    return found[0], found[1]


def parse_redis_csv(text: str, what: str) -> dict[str, float]:
    """redis-benchmark --csv output: {test: requests per second}."""
    rps = {}
    for cells in csv.reader(text.splitlines()):
        if len(cells) < 2 or cells[0] == "test":
            continue
        try:
            value = float(cells[1])
        except ValueError:
            raise BenchError(f"{what}: bad requests/s {cells[1]!r} for {cells[0]}") from None
        if not math.isfinite(value) or value <= 0:
            raise BenchError(f"{what}: {cells[0]} at {cells[1]} requests/s: too few requests to time")
        rps[cells[0]] = value
    if not rps:
        raise BenchError(f"{what}: no results in redis-benchmark's output {text.strip()[:80]!r}")
    return rps


def redis_rps(prefix: list[str], programs: tuple[str, str], requests: int, what: str,
              repeat: int) -> dict[str, float]:
    """Median requests/s per test over `repeat` runs of REDIS_SCRIPT after prefix (nothing:
    natively; sandbox_prefix: server and benchmark in one sandbox).  Each run gets a fresh
    host directory; the sandbox sees it through the overlay root and makes its socket there
    in its own upper layer."""
    runs: dict[str, list[float]] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="snakevisor-bench-redis-") as tmp:
            cmd = prefix + ["/bin/sh", "-c", REDIS_SCRIPT, "sh", tmp, *programs,
                            str(requests), str(REDIS_CLIENTS)]
            for test, value in parse_redis_csv(run(cmd, what), what).items():
                runs.setdefault(test, []).append(value)
    return {test: statistics.median(values) for test, values in runs.items()}


def redis_rows(args: argparse.Namespace, sandbox_ok: bool, skipped: dict[str, str]) -> list[Row]:
    """One throughput Row per REDIS_TESTS entry; none (and a reason in skipped) without redis."""
    if args.no_redis:
        skipped["redis"] = "--no-redis"
        return []
    try:
        programs = redis_programs()
    except BenchError as exc:
        skipped["redis"] = str(exc)
        return []
    rows = [Row(f"redis {test}", REDIS_SECTION, throughput=True) for test in REDIS_TESTS]
    halves = [("native", [], scaled(REDIS_NATIVE_REQUESTS, args))]
    if sandbox_ok:
        halves.append(("sandbox", sandbox_prefix(args.python), scaled(REDIS_SANDBOX_REQUESTS, args)))
    for where, prefix, requests in halves:
        log(f"redis-benchmark: {where}, {requests} requests per test", args.quiet)
        try:
            rps = redis_rps(prefix, programs, requests, f"redis-benchmark ({where})", args.repeat)
        except BenchError as exc:
            rps = {}
            for row in rows:
                row.errors[where] = str(exc)
        for row, test in zip(rows, REDIS_TESTS):
            if test in rps:
                setattr(row, f"{where}_rps", rps[test])
            elif not row.errors.get(where):
                row.errors[where] = f"redis-benchmark printed no {test} result"
    return rows


# -- the whole run ----------------------------------------------------------------------

def micro_loops(args: argparse.Namespace, programs: dict[str, Path], data: str) -> list[Loop]:
    """The per-syscall rows: each program on its own, the same arguments in both halves."""
    loops = []
    for micro in MICROS:
        extra = (data,) if micro.takes_path else (SCRATCH_DIR,) if micro.takes_dir else ()
        loops.append(Loop(micro.op, micro.program, extra, extra,
                          scaled(micro.native_iterations, args), scaled(micro.sandbox_iterations, args)))
    return loops


def fs_loops(args: argparse.Namespace, disk: Path, tmpfs: Path | None) -> list[Loop]:
    """The file-system rows: every FsOp on every Place, grouped by operation."""
    return [Loop(f"{fs.op} @{place.name}", FS_PROGRAM,
                 None if place.native_dir is None else (fs.arg, str(place.native_dir)),
                 (fs.arg, place.sandbox_dir),
                 scaled(fs.native_iterations, args), scaled(fs.sandbox_iterations, args), place.flags,
                 native_missing=f"{HOST_TMPFS} is not a tmpfs: no native counterpart",
                 section="file systems")
            for fs in FS_OPS for place in places(disk, tmpfs)]


def scaled(iterations: int, args: argparse.Namespace) -> int:
    return max(1, int(iterations * args.scale))


def measure_loops(loops: list[Loop], programs: dict[str, Path], args: argparse.Namespace,
                  sandbox_ok: bool) -> list[Row]:
    """One Row per Loop.  Equal native commands (a volume and the root over the same host
    directory) are measured once and the figure shared, so the run stays short."""
    native_done: dict[tuple[str, ...], float | BenchError] = {}
    rows = []
    for loop in loops:
        row = Row(loop.op, loop.section)
        rows.append(row)
        if loop.program not in programs:
            row.errors["native"] = f"bench/native/{loop.program}.c is missing"
            continue
        binary = str(programs[loop.program])
        if loop.native_args is None:
            row.errors["native"] = loop.native_missing
        else:
            cmd = (binary, str(loop.native_n), *loop.native_args)
            if cmd not in native_done:
                log(f"{loop.op}: native, {loop.native_n} iterations", args.quiet)
                try:
                    native_done[cmd] = ns_per_op(list(cmd), f"{loop.op} (native)", args.repeat)
                except BenchError as exc:
                    native_done[cmd] = exc
            result = native_done[cmd]
            if isinstance(result, BenchError):
                row.errors["native"] = str(result)
            else:
                row.native_ns = result
        if not sandbox_ok:
            continue
        log(f"{loop.op}: sandbox, {loop.sandbox_n} iterations", args.quiet)
        try:
            row.sandbox_ns = ns_per_op(sandbox_prefix(args.python, loop.sandbox_flags)
                                       + [binary, str(loop.sandbox_n), *loop.sandbox_args],
                                       f"{loop.op} (sandbox)", args.repeat)
        except BenchError as exc:
            row.errors["sandbox"] = str(exc)
    return rows


def measure(args: argparse.Namespace) -> tuple[list[Row], dict[str, str]]:
    """All rows; plus the reasons a whole column could not be measured."""
    programs = build(args.build_dir)
    data = str(data_file(args.build_dir))
    skipped: dict[str, str] = {}
    sandbox = sandbox_prefix(args.python)
    if args.native_only:
        skipped["sandbox"] = "--native-only"
    else:
        log("checking that the sandbox runs /bin/true", args.quiet)
        try:
            run(sandbox + [TRUE], "sandbox probe (snakevisor do -- /bin/true)")
        except BenchError as exc:
            skipped["sandbox"] = str(exc)
            log(f"sandbox unavailable, measuring natively only: {exc}", args.quiet)
    sandbox_ok = "sandbox" not in skipped

    rows = measure_loops(micro_loops(args, programs, data), programs, args, sandbox_ok)
    rows.append(startup_row(args, sandbox, skipped))
    if args.no_fs:
        skipped["file-system rows"] = "--no-fs"
    else:
        with host_tmpfs_dir() as host_tmpfs:
            loops = fs_loops(args, fs_disk_dir(args.build_dir), host_tmpfs)
            rows += measure_loops(loops, programs, args, sandbox_ok)
    rows += redis_rows(args, sandbox_ok, skipped)
    return rows, skipped


@contextmanager
def host_tmpfs_dir() -> Iterator[Path | None]:
    """A private directory on the host's tmpfs for the native half of the @tmpfs rows
    (None when HOST_TMPFS is not a tmpfs), removed afterwards."""
    if not is_tmpfs(HOST_TMPFS):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="snakevisor-bench-", dir=HOST_TMPFS) as tmp:
        yield Path(tmp)


def startup_row(args: argparse.Namespace, sandbox: list[str], skipped: dict[str, str]) -> Row:
    """Wall time of /bin/true natively, in the sandbox and (when installed) under runc."""
    row = Row(STARTUP_OP)
    log(f"{STARTUP_OP}: native, {args.startup_runs} runs", args.quiet)
    try:
        row.native_ns = wall_ns([TRUE], "true (native)", args.startup_runs)
    except BenchError as exc:
        row.errors["native"] = str(exc)
    if "sandbox" not in skipped:
        log(f"{STARTUP_OP}: sandbox, {args.startup_runs} runs", args.quiet)
        try:
            row.sandbox_ns = wall_ns(sandbox + [TRUE], "true (sandbox)", args.startup_runs)
        except BenchError as exc:
            row.errors["sandbox"] = str(exc)
    if args.no_runc:
        skipped["runc"] = "--no-runc"
    elif shutil.which("runc") is None:
        skipped["runc"] = "runc is not installed"
    else:
        log(f"{STARTUP_OP}: runc, {args.startup_runs} runs", args.quiet)
        try:
            row.runc_ns = runc_startup(args.startup_runs)
        except BenchError as exc:
            skipped["runc"] = str(exc)
            log(f"runc skipped: {exc}", args.quiet)
    return row


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {
        "kernel": platform.release(),
        "cpu": model,
        "cpus_online": os.cpu_count(),
        "cpus_used": sorted(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "commit": commit or "unknown",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _fmt(ns: float | None) -> str:
    return "-" if ns is None else f"{ns:,.1f}" if ns < 10_000 else f"{ns:,.0f}"


def _fmt_rps(rps: float | None) -> str:
    return "-" if rps is None else f"{rps:,.0f}"


RATIO_LEGEND = ("ratio: how many times slower the sandbox is than native "
                "(sandbox/native ns; native/sandbox req/s)")


def table(rows: list[Row], skipped: dict[str, str]) -> str:
    """Rows under a header naming their unit; a rule and a new header where a section (or the
    unit) changes; then the ratio legend, what was skipped and what failed."""
    show_runc = any(r.runc_ns is not None for r in rows)

    def header(row: Row | None) -> list[str]:
        first, unit = ("op", "ns") if row is None or not row.throughput else (row.section, row.unit)
        return ([first, f"native {unit}", f"sandbox {unit}", "ratio"]
                + (["runc ns", "runc ratio"] if show_runc else []))

    lines = [header(rows[0] if rows else None)]
    rules = {1}  # indexes in lines before which a rule is drawn
    for i, r in enumerate(rows):
        if i and r.unit != rows[i - 1].unit:
            lines.append(header(r))
            rules |= {len(lines) - 1, len(lines)}
        elif i and r.section != rows[i - 1].section:
            rules.add(len(lines))
        ratio = "-" if r.ratio is None else f"{r.ratio:,.1f}x"
        if r.throughput:
            cells = [r.op, _fmt_rps(r.native_rps), _fmt_rps(r.sandbox_rps), ratio]
        else:
            cells = [r.op, _fmt(r.native_ns), _fmt(r.sandbox_ns), ratio]
        if show_runc:
            runc_ratio = f"{r.runc_ns / r.native_ns:,.1f}x" if r.runc_ns and r.native_ns else "-"
            cells += [_fmt(r.runc_ns), runc_ratio]
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
           for line in lines]
    rule = "  ".join("-" * w for w in widths)
    for i in sorted(rules, reverse=True):
        out.insert(i, rule)
    out.append(RATIO_LEGEND)
    for what, why in skipped.items():
        out.append(f"{what}: not measured ({why})")
    for r in rows:
        for where, why in r.errors.items():
            out.append(f"{r.op} ({where}) failed: {why}")
    return "\n".join(out)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--native-only", action="store_true", help="skip the sandbox column")
    p.add_argument("--no-runc", action="store_true", help="skip runc even when installed")
    p.add_argument("--no-redis", action="store_true",
                   help="skip the redis-benchmark rows even when redis is installed")
    p.add_argument("--no-fs", action="store_true",
                   help="skip the file-system rows (OP @overlay/@tmpfs/@volume)")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every iteration count (0.1 for a quick look; default 1)")
    p.add_argument("--repeat", type=int, default=3,
                   help="runs of each loop benchmark; the median is shown (default 3)")
    p.add_argument("--startup-runs", type=int, default=5,
                   help="timed runs of each start-up; the median is shown (default 5)")
    p.add_argument("--cpus", help="pin this script and everything it starts to these CPUs, e.g. 0 or 0,1")
    p.add_argument("--python", default=sys.executable,
                   help="interpreter that runs the sandbox (default: this one)")
    p.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD,
                   help="where the C programs are compiled (default bench/build)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    if args.scale <= 0 or args.repeat < 1 or args.startup_runs < 1:
        p.error("--scale must be positive, --repeat and --startup-runs at least 1")
    if args.cpus:
        try:
            cpus = {int(c) for c in args.cpus.split(",")}
            os.sched_setaffinity(0, cpus)
        except (ValueError, OSError) as exc:
            p.error(f"--cpus {args.cpus}: {exc}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        rows, skipped = measure(args)
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        doc = {
            "machine": machine(),
            "scale": args.scale,
            "repeat": args.repeat,
            "startup_runs": args.startup_runs,
            "results": [dict(asdict(r), ratio=r.ratio) for r in rows],
            "skipped": skipped,
        }
        print(json.dumps(doc, indent=2))
    else:
        info = machine()
        print(table(rows, skipped))
        print(f"machine: {info['cpu']} ({len(info['cpus_used'])}/{info['cpus_online']} cpus used), "
              f"Linux {info['kernel']}, Python {info['python']}, commit {info['commit']}")
    failed = any(r.errors for r in rows) or ("sandbox" in skipped and not args.native_only)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
