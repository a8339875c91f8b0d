"""bench/syscall_bench.py builds its C programs and measures the native half on its own."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_native_half_runs_and_reports_json(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "syscall_bench.py"), "--json", "--native-only",
         "--no-runc", "--quiet", "--scale", "0.005", "--repeat", "1", "--startup-runs", "1",
         "--build-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    ops = [r["op"] for r in doc["results"]]
    fs_ops = [f"{op} @{place}" for op in ("open+close", "stat", "read 4KiB", "write 4KiB",
                                          "read 1MiB seq", "write 1MiB seq")
              for place in ("overlay", "tmpfs", "volume")]
    assert ops == ["getpid", "open+close", "pread 4KiB", "fork+exit+wait", "execve static",
                   "pipe round trip", "thread create+join", "startup true", *fs_ops]
    for row in doc["results"]:
        assert row["native_ns"] > 0 and not row["errors"], row
        assert row["sandbox_ns"] is None
    assert doc["skipped"] == {"sandbox": "--native-only", "runc": "--no-runc"}


def test_bad_arguments_get_one_clear_line() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "syscall_bench.py"), "--scale", "0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].endswith(
        "--scale must be positive, --repeat and --startup-runs at least 1")
    assert "Traceback" not in proc.stderr
