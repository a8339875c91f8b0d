"""Real container engines for the tests, each started by the tests themselves, isolated from
whatever else runs on the machine: a dockerd with its own data and exec roots, socket and
containerd, no bridge and no iptables rules, and snakevisor registered as a runtime.

Why isolated: the tests must not depend on (or disturb) a daemon someone left running, and a
fresh machine has none.  Images are imported from root file systems the tests build, so no
registry is needed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from harness import REPO

RUNTIME = REPO / ".venv" / "bin" / "snakevisor"
BUSYBOX = "/bin/busybox"


class EngineUnavailable(Exception):
    """The engine is not installed or would not start here; the message says why."""


def busybox_rootfs(where: Path) -> Path:
    """A busybox root: every applet, /etc/passwd and /etc/group, /tmp."""
    for d in ("bin", "etc", "tmp", "root"):
        (where / d).mkdir(parents=True, exist_ok=True)
    (where / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, where / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            (where / "bin" / applet).symlink_to("busybox")
    (where / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                          "nobody:x:65534:65534:nobody:/:/bin/sh\n")
    (where / "etc" / "group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return where


def tarball(rootfs: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tar:
        tar.add(rootfs, arcname=".")
    return dest


class Dockerd:
    """One private dockerd; `docker(...)` runs the CLI against it."""

    def __init__(self) -> None:
        if shutil.which("dockerd") is None or shutil.which("docker") is None:
            raise EngineUnavailable("docker.io is not installed")
        # short paths: containerd's sockets live under exec-root (sun_path is 108 bytes)
        self.dir = Path(tempfile.mkdtemp(prefix="svdock-"))
        self.sock = self.dir / "docker.sock"
        (self.dir / "daemon.json").write_text(json.dumps(
            {"runtimes": {"snakevisor": {"path": str(RUNTIME)}}}))
        self.log = open(self.dir / "dockerd.log", "wb")
        self.proc = subprocess.Popen(
            ["dockerd", "--config-file", str(self.dir / "daemon.json"),
             "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
             "--pidfile", str(self.dir / "docker.pid"), "-H", f"unix://{self.sock}",
             "--bridge=none", "--iptables=false", "--ip6tables=false"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise EngineUnavailable(f"dockerd exited: {self.tail()}")
            if self.docker("version", check=False).returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise EngineUnavailable(f"dockerd did not come up: {self.tail()}")
            time.sleep(0.2)

    def tail(self) -> str:
        return (self.dir / "dockerd.log").read_text(errors="replace")[-2000:]

    def docker(self, *args: str, check: bool = True, timeout: float = 120,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(["docker", "-H", f"unix://{self.sock}", *args], capture_output=True,
                             text=True, timeout=timeout, input=input)
        if check:
            assert res.returncode == 0, f"docker {' '.join(args)}: {res.returncode}\n{res.stderr}"
        return res

    def import_image(self, rootfs: Path, name: str) -> str:
        tar = tarball(rootfs, self.dir / f"{name.replace(':', '_')}.tar")
        self.docker("import", str(tar), name)
        tar.unlink()
        return name

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        subprocess.run(["umount", "-R", "-l", str(self.dir / "data")], capture_output=True)
        subprocess.run(["umount", "-R", "-l", str(self.dir / "exec")], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
