"""containerd driving snakevisor: `ctr run --runc-binary PATH`.

Why: containerd's shim (containerd-shim-runc-v2, the same one dockerd uses) is what
Kubernetes nodes and ctr users meet; ctr also sends `kill --all` and `noNewPrivileges`
configs with a relative root.path, which Docker does not.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from engines import Containerd, busybox_rootfs, engine_fixture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def containerd():
    yield from engine_fixture(Containerd)


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return busybox_rootfs(tmp_path_factory.mktemp("bb") / "rootfs")


def test_run_and_exit_status(containerd: Containerd, rootfs: Path) -> None:
    res = containerd.run(rootfs, "r1", "sh", "-c", "echo hi from ctr; exit 7",
                         options=("--rm",), check=False)
    assert (res.returncode, res.stdout) == (7, "hi from ctr\n"), res.stderr
    res = containerd.run(rootfs, "r2", "no-such-command", options=("--rm",), check=False)
    assert res.returncode != 0 and "executable file not found" in res.stderr


def test_detached_task_exec_kill_delete(containerd: Containerd, rootfs: Path) -> None:
    ctr = containerd.ctr
    containerd.run(rootfs, "t1", "sh", "-c",
                   'trap "echo TERM; exit 0" TERM; while :; do sleep 0.1; done',
                   options=("-d",))
    try:
        assert "RUNNING" in ctr("task", "ls").stdout
        pids = ctr("task", "ps", "t1").stdout.splitlines()[1:]
        assert pids and all(line.split()[0].isdigit() for line in pids)
        res = ctr("task", "exec", "--exec-id", "e1", "t1", "sh", "-c", "echo exec-ok; exit 2",
                  check=False)
        assert (res.returncode, res.stdout) == (2, "exec-ok\n")
        ctr("task", "kill", "t1")  # SIGTERM to the application's trap
        deadline = time.monotonic() + 30
        while "STOPPED" not in ctr("task", "ls").stdout:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        ctr("task", "delete", "t1")
    finally:
        ctr("task", "delete", "-f", "t1", check=False)
        ctr("container", "delete", "t1", check=False)
    # a running task deleted with force: `kill --all ID 9`, then delete
    containerd.run(rootfs, "t2", "sleep", "100", options=("-d",))
    ctr("task", "delete", "-f", "t2")
    ctr("container", "delete", "t2")
    assert "t2" not in ctr("task", "ls").stdout
