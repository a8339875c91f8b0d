"""bench/syscall_bench.py builds its C programs and measures the native half on its own; its
redis-benchmark rows parse redis's CSV and report throughput as native/sandbox ratios."""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "syscall_bench.py"
HAVE_REDIS = all(shutil.which(p) for p in ("redis-server", "redis-benchmark"))
REDIS_OPS = ["redis PING_INLINE", "redis PING_MBULK", "redis SET", "redis GET"]

# What redis-benchmark 7 prints with --csv (latency columns trimmed from the real output).
REDIS_CSV = '''"test","rps","avg_latency_ms","min_latency_ms"
"PING_INLINE","90909.09","0.065","0.024"
"PING_MBULK","80000.00","0.061","0.016"
"SET","100000.00","0.058","0.024"
"GET","86956.52","0.066","0.024"
'''


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    """The script as a module (it is not in a package); registered so dataclasses resolve."""
    spec = importlib.util.spec_from_file_location("syscall_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["syscall_bench"] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules["syscall_bench"]


def bench_args(bench: ModuleType, *extra: str) -> argparse.Namespace:
    return bench.parse_args(["--quiet", "--repeat", "1", *extra])


def test_native_half_runs_and_reports_json(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--json", "--native-only",
         "--no-runc", "--quiet", "--scale", "0.005", "--repeat", "1", "--startup-runs", "1",
         "--build-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    ops = [r["op"] for r in doc["results"]]
    fs_ops = [f"{op} @{place}" for op in ("open+close", "stat", "read 4KiB", "write 4KiB",
                                          "read 1MiB seq", "write 1MiB seq")
              for place in ("overlay", "tmpfs", "volume")]
    redis_ops = REDIS_OPS if HAVE_REDIS else []
    assert ops == ["getpid", "open+close", "pread 4KiB", "fork+exit+wait", "execve static",
                   "pipe round trip", "thread create+join", "unix rr epoll", "startup true",
                   *fs_ops, *redis_ops]
    for row in doc["results"]:
        assert not row["errors"], row
        if row["op"] in REDIS_OPS:
            assert row["throughput"] and row["native_rps"] > 0 and row["native_ns"] is None, row
            assert row["sandbox_rps"] is None and row["ratio"] is None, row
        else:
            assert row["native_ns"] > 0 and not row["throughput"], row
            assert row["sandbox_ns"] is None
    expected_skipped = {"sandbox": "--native-only", "runc": "--no-runc"}
    if not HAVE_REDIS:
        expected_skipped["redis"] = doc["skipped"].get("redis", "(missing)")
        assert "is not installed" in expected_skipped["redis"]
    assert doc["skipped"] == expected_skipped


def test_bad_arguments_get_one_clear_line() -> None:
    proc = subprocess.run([sys.executable, str(BENCH), "--scale", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "--scale must be positive, --repeat and --startup-runs at least 1")
    assert "Traceback" not in proc.stderr


def test_unix_rr_gets_a_scratch_directory(bench: ModuleType) -> None:
    loops = {loop.op: loop for loop in bench.micro_loops(bench_args(bench), {}, "/data")}
    rr = loops["unix rr epoll"]
    assert rr.program == "unix_rr"
    assert rr.native_args == rr.sandbox_args == (bench.SCRATCH_DIR,)
    assert loops["pread 4KiB"].native_args == ("/data",)
    assert loops["getpid"].native_args == ()


def test_parse_redis_csv(bench: ModuleType) -> None:
    assert bench.parse_redis_csv(REDIS_CSV, "r") == {
        "PING_INLINE": 90909.09, "PING_MBULK": 80000.0, "SET": 100000.0, "GET": 86956.52}


@pytest.mark.parametrize("text, message", [
    ('"test","rps"\n"SET","fast"\n', "r: bad requests/s 'fast' for SET"),
    ('"test","rps"\n"SET","inf"\n', "r: SET at inf requests/s: too few requests to time"),
    ('"test","rps"\n"SET","0.00"\n', "r: SET at 0.00 requests/s: too few requests to time"),
    ("Could not connect to Redis at /tmp/x: No such file\n",
     "r: no results in redis-benchmark's output 'Could not connect to Redis at /tmp/x: No such file'"),
])
def test_parse_redis_csv_rejects(bench: ModuleType, text: str, message: str) -> None:
    with pytest.raises(bench.BenchError) as info:
        bench.parse_redis_csv(text, "r")
    assert str(info.value) == message


def test_throughput_ratio_is_native_over_sandbox(bench: ModuleType) -> None:
    row = bench.Row("redis SET", throughput=True, native_rps=90_000.0, sandbox_rps=3_000.0)
    assert row.ratio == pytest.approx(30.0)
    assert row.unit == "req/s"
    assert bench.Row("redis SET", throughput=True, native_rps=90_000.0).ratio is None
    assert bench.Row("getpid", native_ns=100.0, sandbox_ns=1_000.0).ratio == pytest.approx(10.0)


def test_table_gives_throughput_rows_their_own_header(bench: ModuleType) -> None:
    rows = [bench.Row("getpid", native_ns=150.0, sandbox_ns=12_000.0),
            bench.Row("redis SET", "redis-benchmark", throughput=True,
                      native_rps=90_000.0, sandbox_rps=4_500.0),
            bench.Row("redis GET", "redis-benchmark", throughput=True, native_rps=80_000.0,
                      errors={"sandbox": "boom"})]
    lines = bench.table(rows, {"runc": "--no-runc"}).splitlines()
    words = [line.split() for line in lines]
    assert words[0] == ["op", "native", "ns", "sandbox", "ns", "ratio"]
    assert set(lines[1]) == {"-", " "}
    assert words[2] == ["getpid", "150.0", "12,000", "80.0x"]
    assert set(lines[3]) == {"-", " "}
    assert words[4] == ["redis-benchmark", "native", "req/s", "sandbox", "req/s", "ratio"]
    assert set(lines[5]) == {"-", " "}
    assert words[6] == ["redis", "SET", "90,000", "4,500", "20.0x"]
    assert words[7] == ["redis", "GET", "80,000", "-", "-"]
    assert lines[8] == bench.RATIO_LEGEND
    assert lines[9:] == ["runc: not measured (--no-runc)", "redis GET (sandbox) failed: boom"]


def fake_redis(bench: ModuleType, monkeypatch: pytest.MonkeyPatch, outputs: dict[str, str]) -> list[list[str]]:
    """redis "installed" and run() answering by half (native, or sandbox when the command
    starts with the sandbox prefix); the commands run are returned."""
    commands: list[list[str]] = []
    monkeypatch.setattr(bench, "redis_programs", lambda: ("/r/redis-server", "/r/redis-benchmark"))

    def run(cmd: list[str], what: str) -> str:
        commands.append(cmd)
        half = "sandbox" if cmd[:3] == [sys.executable, "-m", "snakevisor"] else "native"
        assert what == f"redis-benchmark ({half})"
        if outputs[half].startswith("FAIL"):
            raise bench.BenchError(f"{what}: {outputs[half]}")
        return outputs[half]

    monkeypatch.setattr(bench, "run", run)
    return commands


def test_redis_rows_both_halves(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox_csv = '"test","rps"\n"PING_INLINE","3000"\n"PING_MBULK","4000"\n"SET","2000"\n'
    commands = fake_redis(bench, monkeypatch, {"native": REDIS_CSV, "sandbox": sandbox_csv})
    skipped: dict[str, str] = {}
    rows = bench.redis_rows(bench_args(bench, "--scale", "0.1"), True, skipped)
    assert skipped == {}
    assert [r.op for r in rows] == REDIS_OPS
    assert all(r.throughput and r.section == "redis-benchmark" for r in rows)
    assert [r.native_rps for r in rows] == [90909.09, 80000.0, 100000.0, 86956.52]
    assert [r.sandbox_rps for r in rows] == [3000.0, 4000.0, 2000.0, None]
    assert rows[2].ratio == pytest.approx(50.0)
    assert rows[3].errors == {"sandbox": "redis-benchmark printed no GET result"}
    native, sandbox = commands
    assert native[:4] == ["/bin/sh", "-c", bench.REDIS_SCRIPT, "sh"]
    assert native[5:] == ["/r/redis-server", "/r/redis-benchmark",
                          str(bench.REDIS_NATIVE_REQUESTS // 10), str(bench.REDIS_CLIENTS)]
    assert sandbox[:len(bench.sandbox_prefix(sys.executable))] == bench.sandbox_prefix(sys.executable)
    assert sandbox[-2:] == [str(bench.REDIS_SANDBOX_REQUESTS // 10), str(bench.REDIS_CLIENTS)]
    assert native[4] != sandbox[-5] and not Path(native[4]).exists()  # a fresh directory per run, removed


def test_redis_failure_marks_every_row(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_redis(bench, monkeypatch, {"native": REDIS_CSV, "sandbox": "FAIL exit status 1"})
    rows = bench.redis_rows(bench_args(bench), True, {})
    assert all(r.native_rps and r.sandbox_rps is None for r in rows)
    assert {r.errors["sandbox"] for r in rows} == {"redis-benchmark (sandbox): FAIL exit status 1"}


def test_redis_skipped_when_missing_or_unwanted(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    skipped: dict[str, str] = {}
    assert bench.redis_rows(bench_args(bench, "--no-redis"), True, skipped) == []
    assert skipped == {"redis": "--no-redis"}
    monkeypatch.setattr(bench.shutil, "which", lambda name: None if name == "redis-benchmark" else "/x")
    skipped = {}
    assert bench.redis_rows(bench_args(bench), True, skipped) == []
    assert skipped == {"redis": "redis-benchmark is not installed (apt-get install redis-server redis-tools)"}


def test_redis_native_only_runs_no_sandbox(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    commands = fake_redis(bench, monkeypatch, {"native": REDIS_CSV, "sandbox": "FAIL unexpected"})
    rows = bench.redis_rows(bench_args(bench), False, {})
    assert len(commands) == 1 and all(not r.errors and r.sandbox_rps is None for r in rows)


def test_container_bench_table_reads_against_runc() -> None:
    spec = importlib.util.spec_from_file_location("container_bench",
                                                  ROOT / "bench" / "container_bench.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    text = bench.table({"direct": {"snakevisor": 150.0, "runc": 30.0, "crun": 7.5},
                        "docker": {"snakevisor": 400.0}},
                       {"podman": "not installed"})
    lines = text.splitlines()
    assert lines[0].split() == ["engine", "runtime", "median", "ms", "vs", "runc"]
    assert lines[2].split() == ["direct", "snakevisor", "150.0", "5.0x"]
    assert lines[4].split() == ["direct", "crun", "7.5", "0.2x"]
    assert lines[5].split() == ["docker", "snakevisor", "400.0", "-"]  # no runc to compare
    assert lines[-1] == "skipped podman: not installed"
