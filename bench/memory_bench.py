#!/usr/bin/env python3
"""Memory of an idle container (`sleep` in a busybox root), under snakevisor and under runc
and crun, in one run.

For each runtime, N containers are started detached (`RUNTIME run --detach`) and left idle;
then every host process of each container is found (the container's pid from `state` and
all its descendants: for snakevisor the sentry, its gofer, the stub template and the
application's stub; for runc and crun the application itself) and its memory read from
/proc/PID/smaps_rollup:

    PSS   proportional set size: shared pages divided among their users, so N containers'
          PSS adds up to what they cost the machine together (the per-sandbox figure)
    USS   private pages only: what one more container adds at the least
    RSS   every resident page, shared ones counted fully in each process

The rows are per container (the totals over N containers divided by N).  `native` is a
plain `sleep` process for scale.

    bench/memory_bench.py [--containers 5] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
sys.path.insert(0, str(ROOT / "bench"))
from container_bench import TIMEOUT, log, make_bundle, runtimes  # noqa: E402

SETTLE = 1.0  #: seconds an idle container is left before it is measured


def descendants(root: int) -> list[int]:
    """root and every live host process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat[stat.rindex(")") + 2:].split()[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """PSS, USS and RSS of one process in KiB (zeros if it is gone)."""
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            name, _, rest = line.partition(":")
            fields[name] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        return {"pss": 0, "uss": 0, "rss": 0}
    return {"pss": fields.get("Pss", 0),
            "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
            "rss": fields.get("Rss", 0)}


def total(pids: list[int]) -> dict[str, int]:
    sums = {"pss": 0, "uss": 0, "rss": 0, "processes": 0}
    for pid in pids:
        figures = memory_kib(pid)
        if figures["rss"]:
            sums["processes"] += 1
        for key, value in figures.items():
            sums[key] += value
    return sums


def per_container(sums: dict[str, int], n: int) -> dict[str, float]:
    return {key: value / n for key, value in sums.items()}


def runtime_row(name: str, path: str, bundle: Path, state: Path, n: int) -> dict[str, float]:
    root = ["--root", str(state / name)]
    ids = [f"m{i}" for i in range(n)]
    try:
        for cid in ids:
            subprocess.run([path, *root, "run", "--detach", "--bundle", str(bundle), cid],
                           check=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(SETTLE)
        pids: list[int] = []
        for cid in ids:
            state_json = subprocess.run([path, *root, "state", cid], check=True,
                                        capture_output=True, text=True, timeout=TIMEOUT).stdout
            pids += descendants(int(json.loads(state_json)["pid"]))
        return per_container(total(pids), n)
    finally:
        for cid in ids:
            subprocess.run([path, *root, "delete", "--force", cid], capture_output=True,
                           timeout=TIMEOUT)


def native_row(n: int) -> dict[str, float]:
    procs = [subprocess.Popen(["sleep", "1000"]) for _ in range(n)]
    try:
        time.sleep(SETTLE)
        return per_container(total([p.pid for p in procs]), n)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def table(rows: dict[str, dict[str, float]]) -> str:
    base = rows.get("runc")
    lines = [f"{'runtime':<11} {'processes':>9} {'PSS MiB':>8} {'USS MiB':>8} {'RSS MiB':>8} "
             f"{'PSS vs runc':>11}", "-" * 60]
    for name, r in rows.items():
        ratio = f"{r['pss'] / base['pss']:.1f}x" if base and base["pss"] else "-"
        lines.append(f"{name:<11} {r['processes']:>9.1f} {r['pss'] / 1024:>8.1f} "
                     f"{r['uss'] / 1024:>8.1f} {r['rss'] / 1024:>8.1f} {ratio:>11}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("memory_bench: needs root (runtimes)", file=sys.stderr)
        return 2
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="svmbench-") as tmp:
        work = Path(tmp)
        bundle = make_bundle(work / "bundle", ("/bin/sleep", "1000"))
        for name, path in runtimes().items():
            log(f"{name}: {args.containers} idle containers")
            try:
                rows[name] = runtime_row(name, path, bundle, work / "state", args.containers)
            except (subprocess.SubprocessError, OSError, ValueError) as exc:
                log(f"{name}: skipped ({exc})")
        if shutil.which("sleep"):
            rows["native"] = native_row(args.containers)
    print(json.dumps(rows, indent=2) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
