#!/usr/bin/env python3
"""Container start-to-exit of `true`, through each way users start one, under snakevisor and
under runc and crun, in one run.

Each row is the median wall time of N runs of a command that creates a container running
`/bin/true` (a busybox root made here) and returns after it has exited and been removed:

    direct   RUNTIME run --bundle B ID          (snakevisor, runc, crun)
    docker   docker run --rm --runtime=R IMAGE /bin/true     (a private dockerd)
    podman   podman --runtime PATH run --rm IMAGE /bin/true  (private storage)
    ctr      ctr run --rm --runc-binary PATH --rootfs R ID /bin/true  (a private containerd)
    pod      snakevisor run of a pod container (the CRI sandbox-id annotations) joining a
             running sandbox's sentry — no new sentry; runc's row is a plain `runc run`

The ratio is against runc in the same engine.  The engines are the tests' own private
daemons (tests/e2e/engines.py), so nothing of the machine's own is used or changed — except
that crun refuses this host's hybrid cgroup layout until a v1 hugetlb hierarchy is mounted
at /sys/fs/cgroup/hugetlb; with --fix-crun the bench mounts it (and says so).

    bench/container_bench.py [--runs 10] [--json] [--fix-crun] [--only direct,docker,...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from engines import (RUNTIME, Containerd, Dockerd, EngineUnavailable,  # noqa: E402
                     Podman, busybox_rootfs)

ENGINES = ("direct", "docker", "podman", "ctr", "pod")
TIMEOUT = 120


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def runtimes() -> dict[str, str]:
    """name -> executable of the runtimes to compare (snakevisor always)."""
    found = {"snakevisor": str(RUNTIME)}
    for name in ("runc", "crun"):
        path = shutil.which(name)
        if path:
            found[name] = path
    return found


def crun_works(bundle: Path) -> bool:
    res = subprocess.run(["crun", "run", "--bundle", str(bundle), f"probe-{os.getpid()}"],
                         capture_output=True, timeout=TIMEOUT)
    return res.returncode == 0


def fix_crun() -> None:
    """The host notes' fix: a v1 hugetlb hierarchy, so cgroup2 owns no controller."""
    target = Path("/sys/fs/cgroup/hugetlb")
    if target.is_dir() and os.path.ismount(target):
        return
    log("mounting a v1 hugetlb hierarchy at /sys/fs/cgroup/hugetlb for crun")
    target.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "cgroup", "-o", "hugetlb", "none", str(target)], check=True)


def wall_ms(run: Callable[[int], None], runs: int) -> float:
    """Median wall time of run(i) in ms, after one untimed warm-up."""
    run(-1)
    times = []
    for i in range(runs):
        start = time.perf_counter()
        run(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def checked(cmd: list[str], what: str) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT,
                         stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"{what}: exit {res.returncode}: {res.stderr.strip()[-300:]}")


def make_bundle(where: Path, args: tuple[str, ...] = ("/bin/true",),
                annotations: dict[str, str] | None = None) -> Path:
    busybox_rootfs(where / "rootfs")
    subprocess.run([str(RUNTIME), "spec", "--bundle", str(where)], check=True)
    config = json.loads((where / "config.json").read_text())
    config["process"]["args"] = list(args)
    config["annotations"] = annotations or {}
    (where / "config.json").write_text(json.dumps(config))
    return where


def pod_ms(rts: dict[str, str], work: Path, runs: int) -> dict[str, float]:
    """A pod container's run in a running sandbox (snakevisor), a plain run (runc)."""
    state = ["--root", str(work / "pod-state")]
    role = "io.kubernetes.cri.container-type"
    sandbox = make_bundle(work / "pod-sandbox", ("/bin/sleep", "1000"),
                          {role: "sandbox", "io.kubernetes.cri.sandbox-id": "pod"})
    member = make_bundle(work / "pod-member", ("/bin/true",),
                         {role: "container", "io.kubernetes.cri.sandbox-id": "pod"})
    # (its stdio: not pipes, which the detached sandbox would keep open)
    subprocess.run([str(RUNTIME), *state, "run", "--detach", "--bundle", str(sandbox), "pod"],
                   check=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        out = {"snakevisor": wall_ms(lambda i: checked(
            [str(RUNTIME), *state, "run", "--bundle", str(member), f"m{i + 1}"],
            "pod member run"), runs)}
    finally:
        checked([str(RUNTIME), *state, "delete", "--force", "pod"], "pod delete")
    if "runc" in rts:
        root = ["--root", str(work / "state" / "runc-pod")]
        out["runc"] = wall_ms(lambda i: checked(
            [rts["runc"], *root, "run", "--bundle", str(work / "bundle"), f"p{i + 1}"],
            "runc run"), runs)
    return out


def measure(engine: str, rts: dict[str, str], work: Path, runs: int) -> dict[str, float]:
    bundle = work / "bundle"
    rootfs = bundle / "rootfs"
    out: dict[str, float] = {}
    if engine == "pod":
        return pod_ms(rts, work, runs)
    if engine == "direct":
        state = work / "state"
        for name, path in rts.items():
            root = ["--root", str(state / name)]
            out[name] = wall_ms(lambda i, p=path, r=root, n=name: checked(
                [p, *r, "run", "--bundle", str(bundle), f"b{i + 1}"], f"{n} run"), runs)
        return out
    if engine == "docker":
        daemon = Dockerd()
        try:
            image = daemon.import_image(rootfs, "sv-bench:latest")
            if "crun" in rts:
                log("docker: crun is not registered with the private dockerd; skipped")
            for name in ("snakevisor", "runc"):
                out[name] = wall_ms(lambda i, n=name: checked(
                    ["docker", "-H", f"unix://{daemon.sock}", "run", "--rm",
                     f"--runtime={n}", image, "/bin/true"], f"docker {n}"), runs)
        finally:
            daemon.stop()
        return out
    if engine == "podman":
        engine_ = Podman()
        try:
            image = engine_.import_image(rootfs, "localhost/sv-bench:latest")
            base = [a for a in engine_.base]
            at = base.index("--runtime")
            for name, path in rts.items():
                argv = base[:at + 1] + [path] + base[at + 2:]
                # podman's default rlimits exceed this host's hard limits (runc/crun fail
                # to set them): the same reachable limits for every runtime
                out[name] = wall_ms(lambda i, a=argv, n=name: checked(
                    [*a, "run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit",
                     "nproc=4096:4096", image, "/bin/true"], f"podman {n}"), runs)
        finally:
            engine_.stop()
        return out
    daemon_ = Containerd()
    try:
        for name, path in rts.items():
            out[name] = wall_ms(lambda i, p=path, n=name: checked(
                ["ctr", "-a", str(daemon_.sock), "run", "--rm", "--runc-binary", p,
                 "--rootfs", str(rootfs), f"{n}{i + 1}", "/bin/true"], f"ctr {n}"), runs)
    finally:
        daemon_.stop()
    return out


def table(results: dict[str, dict[str, float]], skipped: dict[str, str]) -> str:
    lines = [f"{'engine':<8} {'runtime':<11} {'median ms':>10} {'vs runc':>8}",
             "-" * 40]
    for engine, by_runtime in results.items():
        base = by_runtime.get("runc")
        for name, ms in by_runtime.items():
            ratio = f"{ms / base:.1f}x" if base else "-"
            lines.append(f"{engine:<8} {name:<11} {ms:>10.1f} {ratio:>8}")
    for what, why in skipped.items():
        lines.append(f"skipped {what}: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--fix-crun", action="store_true",
                        help="mount a v1 hugetlb hierarchy so crun runs on this host")
    parser.add_argument("--only", default=",".join(ENGINES))
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("container_bench: needs root (engines and runtimes)", file=sys.stderr)
        return 2
    results: dict[str, dict[str, float]] = {}
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="svcbench-") as tmp:
        work = Path(tmp)
        make_bundle(work / "bundle")
        rts = runtimes()
        if "crun" in rts:
            if args.fix_crun:
                fix_crun()
            if not crun_works(work / "bundle"):
                skipped["crun"] = "refuses this host's cgroups (try --fix-crun)"
                del rts["crun"]
        for missing in ("runc", "crun"):
            if missing not in rts and missing not in skipped:
                skipped[missing] = "not installed"
        for engine in args.only.split(","):
            log(f"{engine}: {args.runs} runs per runtime")
            try:
                results[engine] = measure(engine, rts, work, args.runs)
            except (EngineUnavailable, RuntimeError, subprocess.SubprocessError) as exc:
                skipped[engine] = str(exc).splitlines()[0]
    if args.json:
        print(json.dumps({"results": results, "skipped": skipped}, indent=2))
    else:
        print(table(results, skipped))
    return 0


if __name__ == "__main__":
    sys.exit(main())
