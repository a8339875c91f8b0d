"""The stubs of a sandbox run in a cpu cgroup of their own beside the sentry's
(snakevisor/platform/cpugroup.py), and groups of sandboxes that are gone are removed.

Why: in one group, a resumed stub preempts the sentry before it reaches its wait, which
made a system call cost 17-59 us instead of 12-13 whenever a timer was pending."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness import PYTHON, REPO, sandbox_env

pytestmark = pytest.mark.slow


def cpu_directory() -> Path | None:
    """Our own cgroup's directory in the v1 hierarchy with the cpu controller."""
    from snakevisor.platform.cpugroup import _our_cpu_directory
    found = _our_cpu_directory()
    return Path(found) if found else None


def cpu_path_of(pid: int) -> str:
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpu" in controllers.split(","):
            return path
    raise AssertionError(f"no cpu cgroup line for {pid}")


@pytest.fixture
def cpu_hierarchy() -> Path:
    found = cpu_directory()
    if found is None or os.geteuid() != 0:
        pytest.skip("needs root and a cgroup v1 cpu hierarchy")
    return found


def test_stubs_have_a_cpu_group_of_their_own(cpu_hierarchy: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that is gone: its group is a leftover
    stale = cpu_hierarchy / f"snakevisor-stubs-{dead.pid}"
    stale.mkdir(exist_ok=True)
    proc = subprocess.Popen([PYTHON, "-m", "snakevisor", "do", "--", "/bin/sh", "-c",
                             "echo ready; sleep 5"], cwd=REPO, env=sandbox_env(),
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        assert not stale.exists()  # removed by the sandbox that started
        stubs = [int(p) for p in (cpu_hierarchy / f"snakevisor-stubs-{proc.pid}" /
                                  "cgroup.procs").read_text().split()]
        ours = cpu_path_of(proc.pid)
        assert len(stubs) >= 2  # the template and the shell's stub (and sleep's)
        for pid in stubs:
            assert Path(f"/proc/{pid}/comm").read_text().strip() == "snakevisor-stub"
            assert cpu_path_of(pid) == os.path.join(ours, f"snakevisor-stubs-{proc.pid}")
        assert cpu_path_of(proc.pid) == cpu_path_of(os.getpid())  # the sentry stays
    finally:
        proc.kill()
        proc.wait()
    group = cpu_hierarchy / f"snakevisor-stubs-{proc.pid}"
    deadline = time.monotonic() + 10
    while group.exists() and (group / "cgroup.procs").read_text().strip():
        assert time.monotonic() < deadline, "stubs outlived their sandbox"
        time.sleep(0.1)
