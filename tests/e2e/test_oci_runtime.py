"""The runc-compatible lifecycle with a bundle, driven the way engines drive it.

Why: Docker's and containerd's shim, and conmon, call the runtime binary verb by verb and
rely on a precise process model (../shared/oci-runtime-contract.md): `create` returns with
the program loaded but not running and the sentry's host pid in --pid-file (no newline);
the caller, a child subreaper, adopts that process and reads the application's exit status
from wait4 itself; `delete --force` of an unknown id succeeds; errors are one line on stderr
and a JSON line in --log.  The "shim" here is a small Python subreaper doing exactly that.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness import REPO, PtyPeer

pytestmark = pytest.mark.slow

SNAKEVISOR = [sys.executable, "-m", "snakevisor"]
BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "echo", "sleep", "cat", "ls", "id", "true", "hostname", "env", "pwd", "touch",
           "wc", "trap", "kill", "ps", "grep", "test")

#: A stand-in for containerd-shim-runc-v2: a child subreaper that runs `create` with the
#: given arguments, then `start`, adopts the orphaned sentry (its pid from the pid file) and
#: prints the application's exit status as wait4 gives it.
SHIM = r"""
import ctypes, json, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
runtime, root, cid, bundle, pidfile = sys.argv[1:6]
rt = json.loads(runtime) + ["--root", root]
subprocess.run(rt + ["create", "--bundle", bundle, "--pid-file", pidfile, cid], check=True)
pid = int(open(pidfile).read())
print("ppid-is-shim", open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1] == str(os.getpid()), flush=True)
subprocess.run(rt + ["start", cid], check=True)
_, status = os.waitpid(pid, 0)
print("exit", os.waitstatus_to_exitcode(status))
"""


def need_busybox() -> None:
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")


def make_bundle(where: Path, args: list[str], **process: object) -> Path:
    """A busybox root and a config.json written by `snakevisor spec`, with args set."""
    need_busybox()
    rootfs = where / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for d in ("tmp", "etc", "out"):
        (rootfs / d).mkdir()
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    subprocess.run([*SNAKEVISOR, "spec", "--bundle", str(where)], check=True, cwd=REPO,
                   env=_env())
    config = json.loads((where / "config.json").read_text())
    config["process"]["args"] = args
    config["root"]["readonly"] = False  # writes go to the sandbox's overlay
    config["process"].update(process)
    (where / "config.json").write_text(json.dumps(config))
    return where


def edit_config(bundle: Path, fn) -> None:
    config = json.loads((bundle / "config.json").read_text())
    fn(config)
    (bundle / "config.json").write_text(json.dumps(config))


def _env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    env.update({k: v for k, v in os.environ.items() if k.startswith("SNAKEVISOR_")})
    return env


class Runtime:
    """`snakevisor --root ROOT [--log LOG --log-format json] VERB ...`"""

    def __init__(self, root: Path, log: Path | None = None) -> None:
        self.root = root
        self.log = log

    def argv(self) -> list[str]:
        extra = ["--log", str(self.log), "--log-format", "json"] if self.log else []
        return [*SNAKEVISOR, "--root", str(self.root), *extra]

    def __call__(self, *args: str, check: bool = True, timeout: float = 60,
                 **kw: object) -> subprocess.CompletedProcess[str]:
        # files, not pipes: a created container keeps the stdio it was given (as the engines
        # want), so a pipe would not reach EOF when the verb exits
        if "input" in kw:
            kw["input"] = str(kw["input"]).encode()
        else:
            kw["stdin"] = subprocess.DEVNULL
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            done = subprocess.run([*self.argv(), *args], stdout=out, stderr=err, cwd=REPO,
                                  env=_env(), timeout=timeout,
                                  **kw)  # type: ignore[call-overload]
            out.seek(0)
            err.seek(0)
            res = subprocess.CompletedProcess(done.args, done.returncode,
                                              out.read().decode(), err.read().decode())
        if check:
            assert res.returncode == 0, f"{args}: {res.returncode} {res.stderr}"
        return res

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid).stdout)

    def wait_status(self, cid: str, want: str, timeout: float = 20) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state(cid)
            if state["status"] == want or time.monotonic() > deadline:
                return state
            time.sleep(0.05)


def one_error_line(res: subprocess.CompletedProcess[str], *words: str) -> str:
    assert res.returncode != 0
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("snakevisor: "), res.stderr
    assert "Traceback" not in res.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_created_means_loaded_but_not_running(tmp_path: Path, rt: Runtime) -> None:
    out = tmp_path / "out"
    out.mkdir()
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", "echo ran > /out/marker; exec sleep 100"])
    edit_config(bundle, lambda c: c["mounts"].append(
        {"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]}))
    pid_file = tmp_path / "pid"
    rt("create", "--bundle", str(bundle), "--pid-file", str(pid_file), "c1")
    pid_text = pid_file.read_text()
    assert pid_text.isdigit() and not pid_text.endswith("\n")  # containerd's Atoi
    state = rt.state("c1")
    assert state["status"] == "created" and state["pid"] == int(pid_text)
    assert state["id"] == "c1" and state["bundle"] == str(bundle) and state["ociVersion"]
    time.sleep(0.3)
    assert not (out / "marker").exists()  # nothing of the application ran yet
    assert os.path.exists(f"/proc/{pid_text}")
    rt("start", "c1")
    deadline = time.monotonic() + 20
    while not (out / "marker").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (out / "marker").read_text() == "ran\n"
    assert rt.state("c1")["status"] == "running"
    one_error_line(rt("start", "c1", check=False), "already running")
    pids = json.loads(rt("ps", "--format", "json", "c1").stdout)
    assert len(pids) == 1 and os.path.exists(f"/proc/{pids[0]}")
    assert str(pids[0]) in rt("ps", "c1").stdout
    report = rt("debug", "c1").stdout  # the sentry's account of its tasks
    assert report.startswith("sandbox state: 1 tasks") and \
        f"pid 1 tid 1 host {pids[0]} 'sleep': parked in clock_nanosleep(" in report, report
    listed = rt("list", "--format", "json").stdout
    assert [s["id"] for s in json.loads(listed)] == ["c1"]
    one_error_line(rt("delete", "c1", check=False), "not stopped")
    rt("kill", "c1", "TERM")  # pid 1 without a handler: ignored, as in a pid namespace
    time.sleep(0.3)
    assert rt.state("c1")["status"] == "running"
    rt("kill", "c1", "KILL")
    assert rt.wait_status("c1", "stopped")["pid"] == 0
    one_error_line(rt("kill", "c1", "9", check=False), "not running")
    rt("delete", "c1")
    assert not (rt.root / "c1").exists()
    assert not os.path.exists(f"/proc/{pids[0]}")
    one_error_line(rt("state", "c1", check=False), "does not exist")


def test_the_shim_adopts_the_sentry_and_reads_the_exit_status(tmp_path: Path,
                                                              rt: Runtime) -> None:
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", "echo out; echo err >&2; exit 42"])
    shim = tmp_path / "shim.py"
    shim.write_text(SHIM)
    res = subprocess.run([sys.executable, str(shim), json.dumps(rt.argv()), str(rt.root), "c1",
                          str(bundle), str(tmp_path / "pid")], capture_output=True, text=True,
                         env=_env(), timeout=60, cwd=REPO)
    assert res.returncode == 0, res.stderr
    # the application's stdio is the one `create` was given (the shim's pipes)
    assert res.stdout.splitlines() == ["ppid-is-shim True", "out", "exit 42"]
    assert res.stderr == "err\n"
    assert rt.state("c1")["status"] == "stopped"
    rt("delete", "c1")
    rt("delete", "--force", "c1")  # the cleanup shim's second delete


def test_run_returns_the_status_and_signals(tmp_path: Path, rt: Runtime) -> None:
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", "exit 7"])
    assert rt("run", "--bundle", str(bundle), "r1", check=False).returncode == 7
    assert not (rt.root / "r1").exists()  # run deletes what it created
    # the first process is pid 1: a SIGKILL it sends itself is dropped (as natively); a
    # child killed by one is 137 to its parent
    edit_config(bundle, lambda c: c["process"].update(args=["sh", "-c", "kill -9 $$; exit 5"]))
    assert rt("run", "--bundle", str(bundle), "r1", check=False).returncode == 5
    edit_config(bundle, lambda c: c["process"].update(
        args=["sh", "-c", "sleep 100 & kill -9 $!; wait $!"]))
    assert rt("run", "--bundle", str(bundle), "r1", check=False).returncode == 137
    # a handled SIGTERM ends it (once the handler is set: until then pid 1 ignores it)
    out = tmp_path / "out"
    out.mkdir()
    edit_config(bundle, lambda c: c["mounts"].append(
        {"destination": "/out", "type": "bind", "source": str(out), "options": ["rbind"]}))
    edit_config(bundle, lambda c: c["process"].update(
        args=["sh", "-c", "trap 'echo got TERM; exit 3' TERM; : > /out/ready; "
              "while :; do sleep 0.1; done"]))
    rt("run", "--detach", "--bundle", str(bundle), "r2")
    deadline = time.monotonic() + 20
    while not (out / "ready").exists():
        assert time.monotonic() < deadline, "the container never set its handler"
        time.sleep(0.05)
    rt("kill", "r2", "SIGTERM")
    assert rt.wait_status("r2", "stopped")["status"] == "stopped"
    rt("delete", "r2")


def test_process_settings_are_honoured(tmp_path: Path, rt: Runtime) -> None:
    script = "id -u; id -g; id -G; pwd; hostname; echo $GREETING; ulimit -n; ls /proc/self/fd"
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", script],
                         user={"uid": 1000, "gid": 1000, "additionalGids": [27, 1000]},
                         cwd="/tmp", env=["PATH=/bin", "GREETING=hello"],
                         rlimits=[{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 512}])
    edit_config(bundle, lambda c: c.update(hostname="box1"))
    # the engines leak fds into the runtime: none may reach the container
    leak_r, leak_w = os.pipe()
    res = rt("run", "--bundle", str(bundle), "p1", pass_fds=(leak_r, leak_w))
    os.close(leak_r)
    os.close(leak_w)
    assert res.stdout.split() == ["1000", "1000", "1000", "27", "/tmp", "box1", "hello", "512",
                                  "0", "1", "2", "3"]  # 3: ls's own directory fd


def test_preserve_fds_hands_fd_3_on(tmp_path: Path, rt: Runtime) -> None:
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", "echo through-fd-3 >&3"])
    r, w = os.pipe()
    os.set_inheritable(w, True)
    # fd 3 of the runtime must be w: a shell puts it there
    res = subprocess.run(["/bin/bash", "-c", f'exec "$0" "$@" 3>&{w} {w}>&-', *rt.argv(), "run",
                          "--preserve-fds", "1", "--bundle", str(bundle), "f1"],
                         capture_output=True, text=True, cwd=REPO, env=_env(), timeout=60,
                         pass_fds=(w,))
    os.close(w)
    assert res.returncode == 0, res.stderr
    with os.fdopen(r) as fh:
        assert fh.read() == "through-fd-3\n"
    # a preserved fd that is not open is an error, not a chance to pass one of ours on
    one_error_line(rt("run", "--preserve-fds", "2", "--bundle", str(bundle), "f2",
                      check=False), "fd 3 is not open")
    # exec too: fds 3 and 4 of the exec'd process are the caller's
    edit_config(bundle, lambda c: c["process"].update(args=["sleep", "100"]))
    rt("run", "--detach", "--bundle", str(bundle), "f3")
    r, w = os.pipe()
    r2, w2 = os.pipe()
    res = subprocess.run(["/bin/bash", "-c", f'exec "$0" "$@" 3>&{w} 4>&{w2} {w}>&- {w2}>&-',
                          *rt.argv(), "exec", "--preserve-fds", "2", "f3", "sh", "-c",
                          "echo three >&3; echo four >&4; echo five >&5"],
                         capture_output=True, text=True, cwd=REPO, env=_env(), timeout=60,
                         pass_fds=(w, w2))
    os.close(w)
    os.close(w2)
    assert res.returncode == 1 and "5: Bad file descriptor" in res.stderr, res.stderr
    with os.fdopen(r) as fh, os.fdopen(r2) as fh2:
        assert (fh.read(), fh2.read()) == ("three\n", "four\n")
    one_error_line(rt("exec", "--preserve-fds", "1", "f3", "true", check=False),
                   "fd 3 is not open")
    rt("delete", "--force", "f3")


def test_errors_are_one_line_and_logged_as_json(tmp_path: Path, rt: Runtime) -> None:
    bundle = make_bundle(tmp_path / "b", ["true"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    one_error_line(rt("create", "--bundle", str(tmp_path / "bad"), "x", check=False),
                   "not valid JSON")
    entry = json.loads(rt.log.read_text().splitlines()[-1])  # type: ignore[union-attr]
    assert entry["level"] == "error" and "not valid JSON" in entry["msg"] and entry["time"]
    one_error_line(rt("create", "--bundle", str(tmp_path / "nowhere"), "x", check=False),
                   "no such file or directory")
    shutil.rmtree(bundle / "rootfs" / "tmp")
    edit_config(bundle, lambda c: c["root"].update(path="missing-rootfs"))
    one_error_line(rt("create", "--bundle", str(bundle), "x", check=False), "missing-rootfs")
    edit_config(bundle, lambda c: c["root"].update(path="rootfs"))
    edit_config(bundle, lambda c: c["process"].update(args=["no-such-program"]))
    one_error_line(rt("create", "--bundle", str(bundle), "x", check=False), "not found")
    assert not (rt.root / "x").exists()  # a failed create leaves nothing behind
    edit_config(bundle, lambda c: c["process"].update(args=["sleep", "100"]))
    rt("create", "--bundle", str(bundle), "x")
    one_error_line(rt("create", "--bundle", str(bundle), "x", check=False), "already exists")
    for verb in (["start"], ["state"], ["kill"], ["delete"], ["ps"], ["debug"]):
        one_error_line(rt(*verb, "nosuch", check=False), "does not exist")
    assert rt("delete", "--force", "nosuch").returncode == 0
    one_error_line(rt("kill", "x", "SIGNOPE", check=False), "invalid signal")
    one_error_line(rt("create", "--bundle", str(bundle), "../evil", check=False),
                   "invalid container id")
    rt("delete", "x")  # created, never started: delete without --force
    rt("create", "--bundle", str(bundle), "x")  # the id is free again
    rt("delete", "--force", "x")


def test_hooks_get_the_state_on_stdin(tmp_path: Path, rt: Runtime) -> None:
    record = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\necho \"$1 $(cat)\" >> {record}\n")
    hook.chmod(0o755)
    bundle = make_bundle(tmp_path / "b", ["true"])
    edit_config(bundle, lambda c: c.update(hooks={
        kind: [{"path": str(hook), "args": ["hook.sh", kind]}]
        for kind in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")}))
    rt("create", "--bundle", str(bundle), "h1")
    pid = rt.state("h1")["pid"]
    rt("start", "h1")
    rt.wait_status("h1", "stopped")
    rt("delete", "h1")
    seen = [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1]))
            for line in record.read_text().splitlines()]
    assert [kind for kind, _ in seen] == ["prestart", "createRuntime", "createContainer",
                                          "poststart", "poststop"]
    assert all(state["id"] == "h1" for _, state in seen)
    assert seen[0][1]["pid"] == pid and seen[0][1]["status"] == "created"
    assert seen[-1][1]["status"] == "stopped"
    # a failing prestart hook fails create and leaves nothing running
    hook.write_text("#!/bin/sh\necho broken >&2; exit 1\n")
    one_error_line(rt("create", "--bundle", str(bundle), "h2", check=False), "prestart hook")
    assert not (rt.root / "h2").exists()


def test_start_container_hooks_run_inside_before_the_program(tmp_path: Path,
                                                             rt: Runtime) -> None:
    """startContainer hooks are the image's programs, run in the sandbox (its root, not the
    host's) in order, with the state on stdin, before the container's program starts."""
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", "cat /tmp/hooks; echo program"])
    (bundle / "rootfs" / "bin" / "hook").write_text(
        "#!/bin/sh\necho \"$1 $(cat | grep -o '\"status\": *\"[a-z]*\"')\" >> /tmp/hooks\n"
        "echo hook $1 says hi\n")
    (bundle / "rootfs" / "bin" / "hook").chmod(0o755)
    edit_config(bundle, lambda c: c.update(hooks={"startContainer": [
        {"path": "/bin/hook", "args": ["hook", "one"]},
        {"path": "/bin/hook", "args": ["hook", "two"], "timeout": 30}]}))
    res = rt("run", "--bundle", str(bundle), "s1")
    assert res.stdout == ('hook one says hi\nhook two says hi\n'
                          'one "status": "created"\ntwo "status": "created"\nprogram\n'), res.stdout
    assert not Path("/tmp/hooks").exists() or "program" not in Path("/tmp/hooks").read_text()
    # a failing one fails start: the program never runs
    edit_config(bundle, lambda c: c["hooks"]["startContainer"].insert(
        0, {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}))
    rt("create", "--bundle", str(bundle), "s2")
    one_error_line(rt("start", "s2", check=False), "startContainer hook /bin/sh",
                   "exit status 3")
    assert rt.wait_status("s2", "stopped")["status"] == "stopped"
    # one that is not in the image
    edit_config(bundle, lambda c: c["hooks"].update(startContainer=[{"path": "/bin/nope"}]))
    rt("create", "--bundle", str(bundle), "s3")
    one_error_line(rt("start", "s3", check=False), "/bin/nope")


def test_many_containers_at_once(tmp_path: Path, rt: Runtime) -> None:
    bundle = make_bundle(tmp_path / "b", ["sleep", "100"])
    ids = [f"m{i}" for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda cid: rt("create", "--bundle", str(bundle), cid,
                                               check=False), ids))
    assert [r.returncode for r in results] == [0] * 6, [r.stderr for r in results]
    states = json.loads(rt("list", "--format", "json").stdout)
    assert sorted(s["id"] for s in states) == ids
    assert {s["status"] for s in states} == {"created"}
    assert len({s["pid"] for s in states}) == 6
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda cid: rt("delete", "--force", cid, check=False), ids))
    assert [r.returncode for r in results] == [0] * 6
    assert rt("list", "--quiet").stdout == ""
    for s in states:
        assert not os.path.exists(f"/proc/{s['pid']}") or \
            open(f"/proc/{s['pid']}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"


def test_version_features_and_spec(tmp_path: Path) -> None:
    res = subprocess.run([*SNAKEVISOR, "--version"], capture_output=True, text=True, cwd=REPO,
                         env=_env())
    assert res.returncode == 0 and res.stdout.startswith("snakevisor version ")
    assert "spec: 1." in res.stdout
    res = subprocess.run([*SNAKEVISOR, "features"], capture_output=True, text=True, cwd=REPO,
                         env=_env())
    assert json.loads(res.stdout)["ociVersionMax"].startswith("1.")
    spec_dir = tmp_path / "s"
    spec_dir.mkdir()
    subprocess.run([*SNAKEVISOR, "spec", "-b", str(spec_dir)], check=True, cwd=REPO, env=_env())
    assert json.loads((spec_dir / "config.json").read_text())["root"]["path"] == "rootfs"
    again = subprocess.run([*SNAKEVISOR, "spec", "-b", str(spec_dir)], capture_output=True,
                           text=True, cwd=REPO, env=_env())
    assert again.returncode == 1 and "exists" in again.stderr


def test_exec_adds_processes_to_a_running_container(tmp_path: Path, rt: Runtime) -> None:
    bundle = make_bundle(tmp_path / "b", ["sleep", "100"])
    one_error_line(rt("exec", "nosuch", "true", check=False), "does not exist")
    rt("create", "--bundle", str(bundle), "e1")
    one_error_line(rt("exec", "e1", "true", check=False), "created")
    rt("start", "e1")
    # runc's flags and a command: its stdio is ours, its status is ours, its parent is none
    res = rt("exec", "--env", "X=1", "--cwd", "/tmp", "--user", "1000:1000", "e1",
             "sh", "-c", "echo $X $PPID $(id -u):$(id -g) $(pwd); echo err >&2; exit 5",
             check=False)
    assert (res.returncode, res.stdout, res.stderr) == (5, "1 0 1000:1000 /tmp\n", "err\n")
    one_error_line(rt("exec", "e1", "no-such-program", check=False), "not found")
    # what engines send: --process FILE, --detach, --pid-file naming the stand-in
    process = tmp_path / "process.json"
    process.write_text(json.dumps({
        "args": ["sh", "-c", "trap 'echo got USR1 >> /tmp/log; exit 3' USR1; "
                 "echo ready > /tmp/ready; while :; do sleep 0.05; done"],
        "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}))
    pid_file = tmp_path / "exec.pid"
    rt("exec", "--process", str(process), "--detach", "--pid-file", str(pid_file), "e1")
    stand_in = int(pid_file.read_text())
    deadline = time.monotonic() + 20
    while "ready" not in rt("exec", "e1", "cat", "/tmp/ready", check=False).stdout:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    ps = json.loads(rt("ps", "--format", "json", "e1").stdout)
    assert len(ps) >= 2  # sleep and the exec'd shell (its sleeps come and go)
    os.kill(stand_in, 10)  # engines signal the exec pid itself
    deadline = time.monotonic() + 20
    while rt("exec", "e1", "cat", "/tmp/log", check=False).stdout != "got USR1\n":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # killing the stand-in kills what it stands for
    rt("exec", "--process", str(process), "--detach", "--pid-file", str(pid_file), "e1")
    stand_in = int(pid_file.read_text())
    deadline = time.monotonic() + 20
    while len(json.loads(rt("ps", "--format", "json", "e1").stdout)) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(stand_in, 9)
    deadline = time.monotonic() + 20
    while len(json.loads(rt("ps", "--format", "json", "e1").stdout)) != 1:
        assert time.monotonic() < deadline, rt("exec", "e1", "ps").stdout
        time.sleep(0.1)
    rt("delete", "--force", "e1")


def test_terminal_through_the_console_socket(tmp_path: Path, rt: Runtime) -> None:
    bundle = make_bundle(tmp_path / "b", ["sh"], terminal=True, env=["PATH=/bin", "PS1=$ "],
                         consoleSize={"height": 25, "width": 90})
    path = tmp_path / "console.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    one_error_line(rt("create", "--bundle", str(bundle), "t0", check=False), "console-socket")
    with tempfile.TemporaryFile() as out:
        runner = subprocess.Popen([*rt.argv(), "run", "--console-socket", str(path),
                                   "--bundle", str(bundle), "t1"], stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  cwd=REPO, env=_env())
        listener.settimeout(30)
        conn, _ = listener.accept()
        name, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        conn.close()
        assert name.startswith(b"/dev/pts/") and len(fds) == 1
        peer = PtyPeer(fds[0])
        size = struct.unpack("HHHH", fcntl.ioctl(peer.fd, termios.TIOCGWINSZ, bytes(8)))
        assert size[:2] == (25, 90)  # process.consoleSize
        peer.resize(30, 100)
        peer.expect("$ ")
        peer.send(b"echo hi $((1+2)); tty; stty size\r")
        peer.expect("hi 3")
        peer.expect("/dev/pts/0")  # a terminal of the sandbox's own devpts
        peer.expect("30 100")
        peer.resize(40, 120)  # reaches the application as SIGWINCH and a new size
        peer.send(b"trap 'echo WINCH' WINCH; sleep 0.2; stty size\r")
        peer.expect("40 120")
        peer.resize(41, 121)
        peer.expect("WINCH")
        peer.send(b"sleep 100\r")
        time.sleep(0.5)
        peer.send(b"\x03")  # ^C: SIGINT to the foreground job through the line discipline
        peer.send(b"echo back $?\r")
        peer.expect("back 130")
        peer.send(b"exit 4\r")
        assert runner.wait(30) == 4
        os.close(peer.fd)
    listener.close()


def test_resources_pause_update_and_stats(tmp_path: Path, rt: Runtime) -> None:
    cg = f"/snakevisor-test/{os.getpid()}-{time.monotonic_ns()}"
    bundle = make_bundle(tmp_path / "b", ["sh", "-c",
                                          "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; "
                                          "sleep 0.05; done"])
    edit_config(bundle, lambda c: c["linux"].update(cgroupsPath=cg, resources={
        "memory": {"limit": 64 << 20}, "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000}}))
    root = Path("/sys/fs/cgroup")
    rt("create", "--bundle", str(bundle), "c1")
    try:
        assert (root / "memory" / cg.lstrip("/") / "memory.limit_in_bytes").read_text() \
            == f"{64 << 20}\n"
        assert (root / "pids" / cg.lstrip("/") / "pids.max").read_text() == "50\n"
        assert (root / "cpu" / cg.lstrip("/") / "cpu.cfs_quota_us").read_text() == "50000\n"
        procs = (root / "pids" / cg.lstrip("/") / "cgroup.procs").read_text().split()
        assert len(procs) == 2  # the stub template and the first process, not the sentry
        assert str(rt.state("c1")["pid"]) not in procs
        rt("start", "c1")
        read_n = lambda: rt("exec", "c1", "cat", "/tmp/n", check=False).stdout  # noqa: E731
        deadline = time.monotonic() + 20
        while not read_n().strip():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        rt("pause", "c1")
        assert rt.state("c1")["status"] == "paused"
        one_error_line(rt("pause", "c1", check=False), "not running")
        # the sentry still answers while its application is frozen
        assert json.loads(rt("ps", "--format", "json", "c1").stdout)
        frozen = (root / "freezer" / cg.lstrip("/") / "freezer.state").read_text().strip()
        assert frozen == "FROZEN"
        rt("resume", "c1")
        assert rt.state("c1")["status"] == "running"
        one_error_line(rt("resume", "c1", check=False), "not paused")
        first = read_n()
        deadline = time.monotonic() + 20
        while read_n() == first:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        update = tmp_path / "resources.json"
        update.write_text(json.dumps({"memory": {"limit": 96 << 20}, "pids": {"limit": 40}}))
        rt("update", f"--resources={update}", "c1")  # podman's spelling
        assert (root / "pids" / cg.lstrip("/") / "pids.max").read_text() == "40\n"
        rt("update", "--resources", "-", "c1", input=json.dumps({"pids": {"limit": 30}}))
        assert (root / "pids" / cg.lstrip("/") / "pids.max").read_text() == "30\n"
        stats = json.loads(rt("events", "--stats", "c1").stdout)
        assert stats["type"] == "stats" and stats["data"]["pids"]["current"] >= 2
        assert stats["data"]["memory"]["usage"]["limit"] == 96 << 20
        rt("pause", "c1")
        rt("kill", "c1", "KILL")  # a paused container still dies
        assert rt.wait_status("c1", "stopped")["status"] == "stopped"
    finally:
        rt("delete", "--force", "c1")
    assert not (root / "pids" / cg.lstrip("/")).exists()
    for hierarchy in ("pids", "memory", "cpu", "freezer"):
        parent = root / hierarchy / "snakevisor-test"
        try:
            parent.rmdir()
        except OSError:
            pass


def test_install_registers_the_runtime_with_docker(tmp_path: Path) -> None:
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"log-level": "warn", "runtimes": {"other": {"path": "/x"}}}))
    cli = [*SNAKEVISOR, "install", "--config-file", str(config), "--", "--overlay2", "none"]
    subprocess.run(cli, check=True, cwd=REPO, env=_env(), capture_output=True)
    data = json.loads(config.read_text())
    entry = data["runtimes"]["snakevisor"]
    assert data["log-level"] == "warn" and data["runtimes"]["other"] == {"path": "/x"}
    assert entry["runtimeArgs"] == ["--overlay2", "none"]
    assert os.access(entry["path"], os.X_OK) and entry["path"].endswith("snakevisor")
    remove = [*SNAKEVISOR, "uninstall", "--config-file", str(config)]
    subprocess.run(remove, check=True, cwd=REPO, env=_env(), capture_output=True)
    assert "snakevisor" not in json.loads(config.read_text())["runtimes"]
    again = subprocess.run(remove, cwd=REPO, env=_env(), capture_output=True, text=True)
    assert again.returncode == 1 and "no runtime" in again.stderr


def test_oci_seccomp_profile_enforced_inside(tmp_path: Path) -> None:
    rt = Runtime(tmp_path / "state")
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["fchmodat", "chmod"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 1, "value": 0o777, "op": "SCMP_CMP_EQ"}]},
            {"names": ["sync"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["not_a_syscall_here"], "action": "SCMP_ACT_ERRNO"}]}
    script = ("touch /tmp/f; mkdir /tmp/d 2>&1; chmod 700 /tmp/f && echo chmod700-ok; "
              "chmod 777 /tmp/f 2>&1; sync; echo after $?")
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", script])
    edit_config(bundle, lambda c: c["linux"].update(seccomp=profile))
    enforced = subprocess.run([*rt.argv()[:3], "--oci-seccomp", *rt.argv()[3:], "run",
                               "--bundle", str(bundle), "s1"], capture_output=True, text=True,
                              cwd=REPO, env=_env(), timeout=60)
    assert enforced.stdout.splitlines() == [
        "mkdir: can't create directory '/tmp/d': Permission denied", "chmod700-ok",
        "chmod: /tmp/f: Operation not permitted", "after 159"], enforced.stderr  # 128+SIGSYS
    ignored = rt("run", "--bundle", str(bundle), "s2")  # without --oci-seccomp: as runsc
    assert "after 0" in ignored.stdout and "chmod:" not in ignored.stdout
    edit_config(bundle, lambda c: c["linux"].update(seccomp={"defaultAction": "SCMP_ACT_NOTIFY"}))
    bad = subprocess.run([*rt.argv()[:3], "--oci-seccomp", *rt.argv()[3:], "create",
                          "--bundle", str(bundle), "s3"], capture_output=True, text=True,
                         cwd=REPO, env=_env(), timeout=60)
    one_error_line(bad, "unsupported seccomp action")


def test_sysctls(tmp_path: Path, rt: Runtime) -> None:
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", "cat /proc/sys/fs/mqueue/msg_max; "
                                          "hostname"])
    edit_config(bundle, lambda c: c["linux"].update(sysctl={
        "fs.mqueue.msg_max": "64", "kernel.hostname": "from-sysctl",
        "net.ipv4.ip_unprivileged_port_start": "0"}))
    assert rt("run", "--bundle", str(bundle), "y1").stdout.split() == ["64", "from-sysctl"]
    edit_config(bundle, lambda c: c["linux"].update(sysctl={"vm.swappiness": "1"}))
    one_error_line(rt("create", "--bundle", str(bundle), "y2", check=False), "not in a namespace")
    edit_config(bundle, lambda c: c["linux"].update(sysctl={"fs.mqueue.msg_max": "0"}))
    one_error_line(rt("create", "--bundle", str(bundle), "y3", check=False), "invalid value")
    assert not (rt.root / "y3").exists()


def test_exec_flag_errors_are_one_line(tmp_path: Path, rt: Runtime) -> None:
    bundle = make_bundle(tmp_path / "b", ["sleep", "100"])
    rt("run", "--detach", "--bundle", str(bundle), "f1")
    try:
        one_error_line(rt("exec", "--user", "root", "f1", "true", check=False), "UID[:GID]")
        one_error_line(rt("exec", "--additional-gids", "wheel", "f1", "true", check=False),
                       "expected a GID")
        res = rt("exec", "--user", "5:6", "--additional-gids", "7", "f1", "id", "-G",
                 check=False)
        assert res.stdout.split() == ["6", "7"], res.stderr
    finally:
        rt("delete", "--force", "f1")


def test_masked_and_readonly_paths(tmp_path: Path, rt: Runtime) -> None:
    """linux.maskedPaths/readonlyPaths as runc applies them (details: test_pathrules.py)."""
    bundle = make_bundle(tmp_path / "b", ["sh", "-c",
                                          "cat /etc/secret; ls /etc/private | wc -l; "
                                          "{ echo x > /etc/new; } 2>&1; echo x > /tmp/ok && echo ok; "
                                          "grep -c ' ro,' /proc/self/mountinfo"])
    (bundle / "rootfs" / "etc" / "secret").write_text("password\n")
    (bundle / "rootfs" / "etc" / "private").mkdir()
    (bundle / "rootfs" / "etc" / "private" / "key").write_text("k\n")
    edit_config(bundle, lambda c: c["linux"].update(
        maskedPaths=["/etc/secret", "/etc/private", "/no/such/path"],
        readonlyPaths=["/etc", "/proc/sys"]))
    res = rt("run", "--bundle", str(bundle), "m1")
    assert res.stdout.splitlines() == [
        "0", "sh: can't create /etc/new: Read-only file system", "ok",
        "3"], res.stdout  # /etc, /proc/sys, /etc/private (a file's mask is /dev/null's: rw)
    edit_config(bundle, lambda c: c["linux"].update(maskedPaths=["relative"]))
    one_error_line(rt("create", "--bundle", str(bundle), "m2", check=False), "absolute")


def test_home_comes_from_the_image_passwd(tmp_path: Path, rt: Runtime) -> None:
    """As runc: HOME, when process.env has none, is the uid's home in the container's
    /etc/passwd ("/" without an entry) — for the first process and for exec."""
    bundle = make_bundle(tmp_path / "b", ["sh", "-c", "echo $HOME"], env=["PATH=/bin"])
    (bundle / "rootfs" / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\nv:x:1001:1001:::\n")
    outs = []
    for n, user in enumerate(({"uid": 0, "gid": 0}, {"uid": 1000, "gid": 1000},
                              {"uid": 1001, "gid": 1}, {"uid": 2000, "gid": 2000})):
        edit_config(bundle, lambda c: c["process"].update(user=user))
        outs.append(rt("run", "--bundle", str(bundle), f"home{n}").stdout)
    assert outs == ["/root\n", "/home/u\n", "/\n", "/\n"]
    edit_config(bundle, lambda c: c["process"].update(env=["PATH=/bin", "HOME=/given"],
                                                      args=["sleep", "100"]))
    rt("run", "--detach", "--bundle", str(bundle), "home9")
    assert rt("exec", "--user", "1000:1000", "home9", "sh", "-c", "echo $HOME").stdout == \
        "/home/u\n"  # exec's own env: none given, so from passwd
    assert rt("exec", "--env", "HOME=/e", "home9", "sh", "-c", "echo $HOME").stdout == "/e\n"
    rt("delete", "--force", "home9")
