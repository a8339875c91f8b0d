"""Pods: a container created with Kubernetes' sandbox-id annotations joins a running sandbox.

Why: this is how Kubernetes (containerd's CRI, CRI-O) runs a pod under a sandboxing runtime:
first the sandbox container (pause), then each container with
io.kubernetes.cri.container-type=container and io.kubernetes.cri.sandbox-id=ID.  As under
gVisor the containers share one sentry — processes, IPC, pod volumes — but each has its own
root.  Driven here verb by verb, as the CRI plugin drives the runtime binary.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from harness import REPO, PtyPeer
from test_oci_runtime import Runtime, edit_config, make_bundle, one_error_line

pytestmark = pytest.mark.slow

SANDBOX = "pod-sandbox"


def member_bundle(where: Path, args: list[str], sandbox: str = SANDBOX,
                  **annotations: str) -> Path:
    bundle = make_bundle(where, args)

    def annotate(config: dict) -> None:
        config["annotations"] = {"io.kubernetes.cri.container-type": "container",
                                 "io.kubernetes.cri.sandbox-id": sandbox, **annotations}
        # as containerd writes it: the sandbox's namespaces, by path
        config["linux"]["namespaces"] = [
            {"type": kind, "path": f"/proc/1/ns/{kind}"} for kind in ("pid", "ipc", "uts")]
    edit_config(bundle, annotate)
    return bundle


def wait_for(fn, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start_sandbox(tmp_path: Path, rt: Runtime, hints: dict[str, str] | None = None) -> None:
    bundle = make_bundle(tmp_path / "sandbox", ["sleep", "1000"])
    edit_config(bundle, lambda c: c.update(annotations={
        "io.kubernetes.cri.container-type": "sandbox",
        "io.kubernetes.cri.sandbox-id": SANDBOX, **(hints or {})}))
    rt("create", "--bundle", str(bundle), SANDBOX)
    rt("start", SANDBOX)


def test_a_pod_shares_one_kernel_with_separate_roots(tmp_path: Path, rt: Runtime) -> None:
    start_sandbox(tmp_path, rt)
    # a member: created (loaded, not running), then started; its own root (the file that
    # marks it is only in its image), the sandbox's processes in its ps
    one = member_bundle(tmp_path / "one", ["sh", "-c", "echo ready > /tmp/up; sleep 1000"])
    (one / "rootfs" / "etc" / "one").write_text("image one\n")
    pid_file = tmp_path / "one.pid"
    rt("create", "--bundle", str(one), "--pid-file", str(pid_file), "c1")
    assert rt.state("c1")["status"] == "created"
    stand_in = int(pid_file.read_text())
    assert rt.state("c1")["pid"] == stand_in
    rt("start", "c1")
    assert rt.state("c1")["status"] == "running"
    wait_for(lambda: rt("exec", "c1", "cat", "/tmp/up", check=False).stdout == "ready\n")
    two = member_bundle(tmp_path / "two", ["sh", "-c", "exit 7"])
    rt("create", "--bundle", str(two), "c2")
    rt("start", "c2")
    wait_for(lambda: rt.state("c2")["status"] == "stopped")
    rt("delete", "c2")
    # the second container: not c1's /etc/one nor its /tmp; c1's shell and the sandbox's
    # sleep among its processes (one pid namespace: the pod's)
    res = rt("run", "--bundle", str(member_bundle(tmp_path / "three", [
        "sh", "-c", "cat /etc/one 2>&1; ls /tmp | wc -l; ps -o args | grep -c '^sleep 1000'"])),
        "c3", check=False)
    lines = res.stdout.splitlines()
    assert res.returncode == 0, res.stderr
    assert "No such file" in lines[0] and lines[1] == "0", lines
    assert lines[2] == "2", lines  # the sandbox's sleep and c1's
    # ps of the sandbox lists its own processes only; a member's lists its own
    sandbox_ps = json.loads(rt("ps", "--format", "json", SANDBOX).stdout)
    member_ps = json.loads(rt("ps", "--format", "json", "c1").stdout)
    assert len(sandbox_ps) == 1 and member_ps and not set(sandbox_ps) & set(member_ps)
    # exec into a member runs in its root
    assert rt("exec", "c1", "cat", "/etc/one").stdout == "image one\n"
    # the member's end: killed by SIGTERM? its shell has no handler: as a pid namespace's
    # init it ignores it; SIGKILL ends it, its stand-in exits 137, the sandbox lives on
    rt("kill", "c1", "TERM")
    assert rt("exec", "c1", "true").returncode == 0  # (served after the signal was)
    assert rt.state("c1")["status"] == "running"
    rt("kill", "c1", "KILL")
    wait_for(lambda: rt.state("c1")["status"] == "stopped")
    assert rt.state(SANDBOX)["status"] == "running"
    rt("delete", "c1")
    rt("delete", "--force", SANDBOX)


def test_member_exit_status_reaches_the_engine(tmp_path: Path, rt: Runtime) -> None:
    """The shim adopts the stand-in (pid file) and reads the member's status from it."""
    import subprocess
    from test_oci_runtime import SHIM, _env
    start_sandbox(tmp_path, rt)
    bundle = member_bundle(tmp_path / "m", ["sh", "-c", "exit 9"])
    res = subprocess.run(
        [os.sys.executable, "-c", SHIM, json.dumps(rt.argv()[:-4] if rt.log else rt.argv()),
         str(rt.root), "m1", str(bundle), str(tmp_path / "m.pid")],
        capture_output=True, text=True, cwd=REPO, env=_env(), timeout=60)
    assert res.stdout.splitlines() == ["ppid-is-shim True", "exit 9"], res.stderr
    rt("delete", "m1")
    # a member whose program is missing fails at create, with runc's words
    bad = member_bundle(tmp_path / "bad", ["no-such-program"])
    one_error_line(rt("create", "--bundle", str(bad), "m2", check=False),
                   "executable file not found")
    assert "m2" not in rt("list", "--format", "json").stdout
    # a member's startContainer hooks run in its root before its program
    hooked = member_bundle(tmp_path / "h", ["cat", "/tmp/by-hook"])
    edit_config(hooked, lambda c: c.update(hooks={"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo hooked > /tmp/by-hook"]}]}))
    assert rt("run", "--bundle", str(hooked), "m3").stdout == "hooked\n"
    rt("delete", "--force", SANDBOX)


def test_pod_volume_is_one_tmpfs_for_the_pod(tmp_path: Path, rt: Runtime) -> None:
    """gVisor's mount hints: a bind of the volume's source becomes one sentry tmpfs for all
    the pod's containers (nothing reaches the host directory)."""
    shared = tmp_path / "emptydir"
    shared.mkdir()
    hints = {"dev.gvisor.spec.mount.cache.source": str(shared),
             "dev.gvisor.spec.mount.cache.type": "tmpfs",
             "dev.gvisor.spec.mount.cache.share": "pod"}
    start_sandbox(tmp_path, rt, hints)

    def with_volume(bundle: Path) -> Path:
        edit_config(bundle, lambda c: c["mounts"].append(
            {"destination": "/cache", "type": "bind", "source": str(shared),
             "options": ["rbind", "rw"]}))
        return bundle

    writer = with_volume(member_bundle(tmp_path / "w", [
        "sh", "-c", "echo from-writer > /cache/note; mkfifo /cache/fifo; cat /cache/fifo"]))
    rt("create", "--bundle", str(writer), "w")
    rt("start", "w")
    reader = with_volume(member_bundle(tmp_path / "r", [
        "sh", "-c", "cat /cache/note; echo done > /cache/fifo; "
        "grep ' /cache ' /proc/self/mounts | cut -d' ' -f3"]))
    res = rt("run", "--bundle", str(reader), "r", check=False)
    assert (res.returncode, res.stdout) == (0, "from-writer\ntmpfs\n"), res.stderr
    wait_for(lambda: rt.state("w")["status"] == "stopped")
    assert os.listdir(shared) == []  # the pod's tmpfs, not the host directory
    # a plain bind mount (no hint) of one host directory is shared through the host
    host_dir = tmp_path / "hostdir"
    host_dir.mkdir()
    b = member_bundle(tmp_path / "b", ["sh", "-c", "echo via-host > /h/file"])
    edit_config(b, lambda c: c["mounts"].append(
        {"destination": "/h", "type": "bind", "source": str(host_dir), "options": ["rbind"]}))
    assert rt("run", "--bundle", str(b), "b").returncode == 0
    assert (host_dir / "file").read_text() == "via-host\n"
    for cid in ("w", "r", "b"):
        rt("delete", "--force", cid, check=False)
    rt("delete", "--force", SANDBOX)


def test_pod_errors_are_one_line(tmp_path: Path, rt: Runtime) -> None:
    orphan = member_bundle(tmp_path / "o", ["true"], sandbox="no-such-sandbox")
    one_error_line(rt("create", "--bundle", str(orphan), "o1", check=False),
                   "no-such-sandbox", "does not exist")
    edit_config(orphan, lambda c: c["annotations"].pop("io.kubernetes.cri.sandbox-id"))
    one_error_line(rt("create", "--bundle", str(orphan), "o2", check=False),
                   "io.kubernetes.cri.sandbox-id")
    start_sandbox(tmp_path, rt)
    member = member_bundle(tmp_path / "m", ["sleep", "100"])
    rt("create", "--bundle", str(member), "m1")
    one_error_line(rt("pause", "m1", check=False), "whole pod", SANDBOX)
    # the sandbox's end ends its members: their stand-ins report SIGKILL
    rt("start", "m1")
    rt("kill", SANDBOX, "KILL")
    wait_for(lambda: rt.state("m1")["status"] == "stopped")
    rt("delete", "m1")
    rt("delete", SANDBOX)


def test_member_terminal_through_the_console_socket(tmp_path: Path, rt: Runtime) -> None:
    """A pod member's terminal: its own pty of its own devpts, relayed to the engine's."""
    start_sandbox(tmp_path, rt)
    bundle = member_bundle(tmp_path / "t", ["sh"])
    edit_config(bundle, lambda c: c["process"].update(terminal=True))
    sock_path = tmp_path / "console.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_path))
    listener.listen(1)
    rt("create", "--bundle", str(bundle), "--console-socket", str(sock_path), "t1")
    listener.settimeout(30)
    conn, _ = listener.accept()
    _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    conn.close()
    listener.close()
    rt("start", "t1")
    peer = PtyPeer(fds[0])
    peer.send(b"tty; echo $((6*7))\r")
    peer.expect("/dev/pts/0")  # its own devpts: the sandbox's first pty is not its
    peer.expect("42")
    peer.send(b"exit 3\r")
    wait_for(lambda: rt.state("t1")["status"] == "stopped")
    os.close(peer.fd)
    rt("delete", "t1")
    rt("delete", "--force", SANDBOX)


class SeccompRuntime(Runtime):
    """The runtime with --oci-seccomp (each container's own linux.seccomp is enforced)."""

    def argv(self) -> list[str]:
        return [*super().argv(), "--oci-seccomp"]


def test_each_member_keeps_its_own_seccomp_profile(tmp_path: Path) -> None:
    rt = SeccompRuntime(tmp_path / "state")
    start_sandbox(tmp_path, rt)
    try:
        strict = member_bundle(tmp_path / "strict", ["sh", "-c", "mkdir /tmp/d 2>&1; echo $?"])
        edit_config(strict, lambda c: c["linux"].update(seccomp={
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                          "errnoRet": 1}]}))
        rt("create", "--bundle", str(strict), "strict")  # stays, holding its profile
        free = member_bundle(tmp_path / "free", ["sh", "-c", "mkdir /tmp/d 2>&1; echo $?; "
                                                 "grep ^Seccomp: /proc/self/status"])
        assert rt("run", "--bundle", str(free), "free").stdout == "0\nSeccomp:\t0\n"
        rt("start", "strict")
        wait_for(lambda: rt.state("strict")["status"] == "stopped")
        rt("delete", "strict")
        # (its output went to the create's stdio: run it again to read it)
        edit_config(strict, lambda c: c["process"].update(args=[
            "sh", "-c", "mkdir /tmp/d 2>&1; echo $?; grep ^Seccomp /proc/self/status"]))
        res = rt("run", "--bundle", str(strict), "strict2")
        assert res.stdout.splitlines() == [  # (filter mode, as Linux reports it)
            "mkdir: can't create directory '/tmp/d': Operation not permitted", "1",
            "Seccomp:\t2", "Seccomp_filters:\t1"]
        # the sandbox's own container has no profile: unaffected
        assert rt("exec", SANDBOX, "sh", "-c", "mkdir /tmp/x").returncode == 0
    finally:
        rt("delete", "--force", SANDBOX, check=False)
