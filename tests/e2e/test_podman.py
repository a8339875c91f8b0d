"""Podman driving snakevisor: `podman --runtime PATH`.

Why: Podman is the other engine users meet, and it calls the runtime differently from the
containerd shim (../shared/oci-runtime-contract.md): conmon runs create and exec, podman
itself runs start/kill/delete with no global flags at all (a generic runtime name), every
delete is `delete --force`, and the console socket is conmon's.
"""
from __future__ import annotations

import time

import pytest

from engines import Podman, engine_fixture, interactive_shell_session

pytestmark = pytest.mark.slow

IMAGE = "localhost/sv-busybox:test"


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory):
    yield from engine_fixture(Podman, tmp_path_factory.mktemp("bb") / "rootfs", IMAGE)


def test_run_and_exit_codes(podman: Podman) -> None:
    res = podman.podman("run", "--rm", IMAGE, "echo", "hi", check=False)
    assert (res.returncode, res.stdout) == (0, "hi\n"), res.stderr
    assert podman.podman("run", "--rm", IMAGE, "sh", "-c", "exit 42",
                         check=False).returncode == 42
    missing = podman.podman("run", "--rm", IMAGE, "no-such-command", check=False)
    assert missing.returncode == 127, missing.stderr
    res = podman.podman("run", "--rm", "-e", "A=b", "-w", "/tmp", "-u", "65534", IMAGE, "sh",
                        "-c", "echo $A $(pwd) $(id -u)", check=False)
    assert res.stdout == "b /tmp 65534\n", res.stderr


def test_detached_exec_stop_rm(podman: Podman) -> None:
    cid = podman.podman("run", "-d", IMAGE, "sh", "-c",
                        'trap "echo TERM; exit 0" TERM; echo up; '
                        'while :; do sleep 0.1; done').stdout.strip()
    try:
        deadline = time.monotonic() + 30
        while "up" not in podman.podman("logs", cid).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        res = podman.podman("exec", cid, "sh", "-c", "echo exec-ok; exit 2", check=False)
        assert (res.returncode, res.stdout) == (2, "exec-ok\n")
        podman.podman("stop", "-t", "20", cid)
        assert podman.podman("logs", cid).stdout.splitlines() == ["up", "TERM"]
        assert podman.podman("inspect", "-f", "{{.State.ExitCode}}",
                             cid).stdout.strip() == "0"
    finally:
        podman.podman("rm", "-f", cid)


def test_interactive_terminal(podman: Podman) -> None:
    interactive_shell_session([*podman.base, "run", "-it", "--rm", "-e", "PS1=$ ", IMAGE, "sh"])


def test_exec_with_a_terminal(podman: Podman) -> None:
    cid = podman.podman("run", "-d", IMAGE, "sleep", "300").stdout.strip()
    try:
        interactive_shell_session([*podman.base, "exec", "-it", "-e", "PS1=$ ", cid, "sh"])
        assert podman.podman("exec", cid, "echo", "still").stdout == "still\n"
    finally:
        podman.podman("rm", "-f", cid)


def test_a_pod_is_one_sandbox(podman: Podman) -> None:
    """`podman pod`: its containers carry CRI-O's sandbox annotations naming the infra
    container, so they join its sentry: one kernel — each other's processes (the pod shares
    its pid namespace here), IPC — and the pod's /dev/shm; each its own root."""
    podman.podman("pod", "create", "--name", "svpod", "--infra-image", IMAGE,
                  "--infra-command", "sleep 1000", "--share", "ipc,uts,pid")
    try:
        podman.podman("run", "-d", "--pod", "svpod", "--name", "svpod-a", IMAGE, "sh", "-c",
                      "echo from-a > /dev/shm/note; touch /dev/mqueue/queue-a; "
                      "echo only-a > /etc/mine; exec sleep 1001")
        deadline = time.monotonic() + 30
        while podman.podman("exec", "svpod-a", "cat", "/dev/shm/note",
                            check=False).stdout != "from-a\n":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        res = podman.podman("run", "--rm", "--pod", "svpod", IMAGE, "sh", "-c",
                            "ps -o args | grep -c '^sleep 100[01]'; cat /dev/shm/note; "
                            "ls /dev/mqueue; cat /etc/mine 2>&1; hostname",
                            check=False)
        lines = res.stdout.splitlines()
        assert res.returncode == 0, res.stderr
        # the infra container's sleep and a's; the pod's /dev/shm; a's POSIX queue
        assert lines[:3] == ["2", "from-a", "queue-a"], lines
        assert "No such file" in lines[3] and lines[4] == "svpod", lines
        # the infra container's sentry runs both: one sandbox, not three
        top = podman.podman("pod", "top", "svpod", check=False)
        assert top.returncode == 0, top.stderr
    finally:
        podman.podman("pod", "rm", "-f", "-t", "0", "svpod", check=False)
