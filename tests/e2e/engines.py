"""Real container engines for the tests, each started by the tests themselves, isolated from
whatever else runs on the machine: a dockerd with its own data and exec roots, socket and
containerd, no bridge and no iptables rules, and snakevisor registered as a runtime.

Why isolated: the tests must not depend on (or disturb) a daemon someone left running, and a
fresh machine has none.  Images are imported from root file systems the tests build, so no
registry is needed: a busybox root (instant) and a Debian minbase root (debootstrap, built
once per machine and kept as a tarball in TEST_CACHE).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from harness import REPO, PtyPeer

RUNTIME = REPO / ".venv" / "bin" / "snakevisor"
BUSYBOX = "/bin/busybox"
# Outside the repo and the tests' temporary directories, so one build serves every later run.
TEST_CACHE = Path(os.environ.get("SNAKEVISOR_TEST_CACHE", "/var/cache/snakevisor-tests"))
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# debootstrap's messages when the mirror cannot be reached (as opposed to a broken build).
NETWORK_FAILURES = ("Failed getting release file", "Couldn't download", "Temporary failure",
                    "Could not resolve", "Connection refused", "Connection timed out",
                    "Network is unreachable", "No route to host", "unable to resolve")


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


def debian_rootfs(cache: Path = TEST_CACHE, suite: str = "bookworm",
                  variant: str = "minbase") -> Path:
    """A tarball of a Debian SUITE root made by `debootstrap --variant=VARIANT` (amd64),
    built on the first call on this machine and kept in CACHE: a build downloads ~50 MB
    and takes half a minute or more, an import of the tar seconds.  Skips the test when
    debootstrap is missing or the mirror cannot be reached; any other failure fails it."""
    import pytest
    tar = cache / f"debian-{suite}-{variant}-amd64.tar"
    if tar.exists():
        return tar
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed (scripts/install-deps.sh installs it)")
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building the same root
        if tar.exists():
            return tar
        for stale in cache.glob(".build-*"):  # the lock is ours: their builders are gone
            unmount_under(stale)
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
        try:
            root, log = work / "root", work / "debootstrap.log"
            with open(log, "wb") as out:
                res = subprocess.run(["debootstrap", f"--variant={variant}", "--arch=amd64",
                                      suite, str(root), DEBIAN_MIRROR],
                                     stdout=out, stderr=subprocess.STDOUT, timeout=1800)
            if res.returncode != 0:
                text = log.read_text(errors="replace")
                why = f"debootstrap {suite} failed ({res.returncode}): {text[-1500:]}"
                if any(marker in text for marker in NETWORK_FAILURES):
                    pytest.skip(f"{DEBIAN_MIRROR} unreachable: {why}")
                pytest.fail(why)
            for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
                deb.unlink()  # downloads, not part of the root (as in Debian's images)
            subprocess.run(["tar", "--numeric-owner", "--xattrs", "-C", str(root), "-cf",
                            str(work / "root.tar"), "."], check=True, capture_output=True)
            os.rename(work / "root.tar", tar)  # atomically: a tar in the cache is complete
        finally:
            unmount_under(work)  # a killed debootstrap leaves its /proc and /sys mounted
            shutil.rmtree(work, ignore_errors=True)
    return tar


def unmount_under(directory: Path) -> None:
    """Lazily unmount every mount at or below DIRECTORY, deepest first."""
    prefix = str(directory.resolve())
    with open("/proc/self/mountinfo") as info:
        points = [line.split()[4].encode().decode("unicode_escape") for line in info]
    for point in sorted(points, key=len, reverse=True):
        if point == prefix or point.startswith(prefix + "/"):
            subprocess.run(["umount", "-l", point], capture_output=True)


def interactive_shell_session(argv: list[str], settle: float = 0.5,
                              after: Callable[[PtyPeer], None] | None = None) -> None:
    """Drive `ENGINE run -it IMAGE sh` (prompt "$ ") through a pty as a user would: output,
    the terminal's name and size, a resize, ^C to a foreground job, the exit status; then
    `after(terminal)`, while the terminal is still open."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    peer = PtyPeer(fd)
    try:
        peer.resize(30, 100)
        peer.expect("$ ")
        peer.send(b"echo hello $((6*7)); tty; stty size\r")
        peer.expect("hello 42")
        peer.expect("/dev/pts/0")
        peer.expect("30 100")
        peer.resize(40, 120)
        time.sleep(settle)  # the engine relays the resize
        peer.send(b"stty size\r")
        peer.expect("40 120")
        peer.send(b"sleep 100\r")
        time.sleep(1)
        peer.send(b"\x03")
        peer.send(b"echo after $?\r")
        peer.expect("after 130")
        peer.send(b"exit 3\r")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 3
        if after is not None:
            after(peer)
    finally:
        os.close(fd)


def stop_daemon(proc: subprocess.Popen, log, directory: Path, mounted: tuple[str, ...]) -> None:
    """SIGTERM (SIGKILL after 30 s) a daemon of ours, then unmount what it may have left
    under its directory and remove it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    log.close()
    for name in mounted:
        subprocess.run(["umount", "-R", "-l", str(directory / name)], capture_output=True)
    shutil.rmtree(directory, ignore_errors=True)


def engine_fixture(make: Callable[[], object], rootfs_dir: Path | None = None,
                   image: str | None = None):
    """A module fixture's body: the engine (skipping when busybox or the engine is missing),
    with IMAGE imported from a busybox root built in ROOTFS_DIR; stopped afterwards."""
    import pytest
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    try:
        engine = make()
    except EngineUnavailable as exc:
        pytest.skip(str(exc))
    try:
        if image is not None and rootfs_dir is not None:
            engine.import_image(busybox_rootfs(rootfs_dir), image)  # type: ignore[attr-defined]
        yield engine
    finally:
        engine.stop()  # type: ignore[attr-defined]


def image_fixture(engine, root: Callable[[], Path], image: str) -> Iterator[str]:
    """A module fixture's body: IMAGE imported into a running ENGINE (another fixture's)
    from the root ROOT() gives, a directory or a tarball (ROOT may skip); removed after."""
    engine.import_image(root(), image)
    try:
        yield image
    finally:
        engine.remove_image(image)


@contextlib.contextmanager
def tarball(rootfs: Path, dest: Path) -> Iterator[Path]:
    """ROOTFS as a tar an engine can import: itself when it already is one (a cached root),
    else DEST made from the directory for the duration."""
    if rootfs.is_file():
        yield rootfs
        return
    with tarfile.open(dest, "w") as tar:
        tar.add(rootfs, arcname=".")
    try:
        yield dest
    finally:
        dest.unlink()


class Dockerd:
    """One private dockerd; `docker(...)` runs the CLI against it."""

    def __init__(self) -> None:
        if shutil.which("dockerd") is None or shutil.which("docker") is None:
            raise EngineUnavailable("docker.io is not installed")
        # short paths: containerd's sockets live under exec-root (sun_path is 108 bytes)
        self.dir = Path(tempfile.mkdtemp(prefix="svdock-"))
        self.sock = self.dir / "docker.sock"
        (self.dir / "daemon.json").write_text(json.dumps({"log-level": "info"}))
        for name, flags in (("snakevisor", []), ("snakevisor-seccomp", ["--oci-seccomp"])):
            subprocess.run([str(RUNTIME), "install", "--runtime", name, "--config-file",
                            str(self.dir / "daemon.json"), "--", *flags],
                           check=True, capture_output=True)  # as users register it
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
        """NAME from ROOTFS, a root directory or a tarball of one."""
        with tarball(rootfs, self.dir / f"{name.replace(':', '_')}.tar") as tar:
            self.docker("import", str(tar), name, timeout=600)
        return name

    def remove_image(self, name: str) -> None:
        self.docker("rmi", "-f", name, check=False)

    def stop(self) -> None:
        stop_daemon(self.proc, self.log, self.dir, ("data", "exec"))


class Containerd:
    """One private containerd (no CRI plugin); `ctr(...)` runs ctr against it with
    snakevisor as the runc binary for `run`."""

    def __init__(self) -> None:
        if shutil.which("containerd") is None or shutil.which("ctr") is None:
            raise EngineUnavailable("containerd is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="svctrd-"))
        self.sock = self.dir / "c.sock"
        (self.dir / "config.toml").write_text(
            f'version = 2\nroot = "{self.dir}/root"\nstate = "{self.dir}/state"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.sock}"\n[ttrpc]\n  address = "{self.sock}.ttrpc"\n')
        self.log = open(self.dir / "containerd.log", "wb")
        self.proc = subprocess.Popen(["containerd", "--config", str(self.dir / "config.toml")],
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while self.ctr("version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EngineUnavailable("containerd did not come up")
            time.sleep(0.2)

    def ctr(self, *args: str, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        res = subprocess.run(["ctr", "-a", str(self.sock), *args], capture_output=True,
                             text=True, timeout=timeout)
        if check:
            assert res.returncode == 0, f"ctr {' '.join(args)}: {res.returncode}\n{res.stderr}"
        return res

    def run(self, rootfs: Path, cid: str, *command: str, options: tuple[str, ...] = (),
            check: bool = True) -> subprocess.CompletedProcess[str]:
        """`ctr run OPTIONS --rootfs ROOTFS ID COMMAND` with snakevisor as runc."""
        return self.ctr("run", "--runc-binary", str(RUNTIME), *options, "--rootfs",
                        str(rootfs), cid, *command, check=check)

    def stop(self) -> None:
        stop_daemon(self.proc, self.log, self.dir, ("root",))


class Podman:
    """podman with its own storage and run roots (the machine's images and containers are
    not touched) and snakevisor as --runtime (a generic name: podman passes it no global
    flags, so the runtime keeps its state in its default root)."""

    def __init__(self) -> None:
        if shutil.which("podman") is None or shutil.which("conmon") is None:
            raise EngineUnavailable("podman is not installed")
        self.dir = Path(tempfile.mkdtemp(prefix="svpod-"))
        self.base = ["podman", "--root", str(self.dir / "root"), "--runroot",
                     str(self.dir / "run"), "--tmpdir", str(self.dir / "tmp"),
                     "--cgroup-manager", "cgroupfs", "--events-backend", "file",
                     "--runtime", str(RUNTIME)]
        if self.podman("info", check=False).returncode != 0:
            raise EngineUnavailable("podman info failed")

    def podman(self, *args: str, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([*self.base, *args], capture_output=True, text=True,
                             timeout=timeout, stdin=subprocess.DEVNULL)
        if check:
            assert res.returncode == 0, f"podman {' '.join(args)}: {res.returncode}\n{res.stderr}"
        return res

    def import_image(self, rootfs: Path, name: str) -> str:
        """NAME from ROOTFS, a root directory or a tarball of one."""
        with tarball(rootfs, self.dir / "image.tar") as tar:
            self.podman("import", str(tar), name, timeout=600)
        return name

    def remove_image(self, name: str) -> None:
        self.podman("rmi", "-f", name, check=False)

    def stop(self) -> None:
        self.podman("rm", "-a", "-f", check=False)
        self.podman("rmi", "-a", "-f", check=False)
        subprocess.run(["umount", "-R", "-l", str(self.dir / "root")], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
