"""Docker driving snakevisor unchanged: `docker run --runtime=snakevisor`.

Why: this is how users meet the runtime.  dockerd's containerd shim calls our binary exactly
as it calls runc (../shared/oci-runtime-contract.md): create with a console-less bundle whose
config carries dockerd's networking hook, file bind mounts for resolv.conf/hosts/hostname,
then start, kill, delete, exec --process --detach, ps --format json.  Each check compares
what the container does under snakevisor with what Docker users expect from runc.

Two images: busybox (one static binary, instant to build) for the engine's mechanics, and a
Debian minbase root (debootstrap, cached per machine) for a real distribution's userland:
bash, coreutils, glibc's NSS, dpkg and apt reading their databases.
"""
from __future__ import annotations

import subprocess
import difflib
import time
from pathlib import Path

import pytest

from engines import (Dockerd, debian_rootfs, engine_fixture, image_fixture,
                     interactive_shell_session)

pytestmark = pytest.mark.slow

IMAGE = "sv-busybox:test"
DEBIAN = "sv-debian:bookworm-minbase"


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory):
    yield from engine_fixture(Dockerd, tmp_path_factory.mktemp("bb") / "rootfs", IMAGE)


@pytest.fixture(scope="module")
def debian(dockerd: Dockerd):
    yield from image_fixture(dockerd, debian_rootfs, DEBIAN)


def run(d: Dockerd, *args: str, check: bool = False, **kw):
    return d.docker("run", "--rm", "--runtime=snakevisor", *args, check=check, **kw)


def run_both(d: Dockerd, *args: str) -> tuple[subprocess.CompletedProcess[str],
                                              subprocess.CompletedProcess[str]]:
    """`docker run --rm ARGS` under snakevisor, then under Docker's default runtime (runc)."""
    return run(d, *args), d.docker("run", "--rm", *args, check=False)


def same_as_runc(d: Dockerd, *args: str) -> str:
    """ARGS' output, after checking that snakevisor gives exactly what runc gives."""
    ours, theirs = run_both(d, *args)
    if (ours.returncode, ours.stdout, ours.stderr) != \
            (theirs.returncode, theirs.stdout, theirs.stderr):
        diff = "\n".join(difflib.unified_diff(
            f"{theirs.stdout}--- stderr\n{theirs.stderr}".splitlines(),
            f"{ours.stdout}--- stderr\n{ours.stderr}".splitlines(), "runc", "snakevisor",
            lineterm=""))
        pytest.fail(f"{args}: status {ours.returncode} (runc {theirs.returncode})\n{diff}")
    return ours.stdout


def test_echo_and_exit_codes(dockerd: Dockerd) -> None:
    res = run(dockerd, IMAGE, "echo", "hi")
    assert (res.returncode, res.stdout) == (0, "hi\n"), res.stderr
    assert run(dockerd, IMAGE, "sh", "-c", "exit 42").returncode == 42
    # pid 1 ignores a default-action signal it sends itself, SIGKILL included (as runc)
    assert run(dockerd, IMAGE, "sh", "-c", "kill -9 $$; echo survived").stdout == "survived\n"
    assert run(dockerd, IMAGE, "sh", "-c", "sleep 100 & kill -9 $!; wait $!").returncode == 137
    missing = run(dockerd, IMAGE, "no-such-command")
    assert missing.returncode == 127 and "executable file not found" in missing.stderr
    assert run(dockerd, IMAGE, "/etc/passwd").returncode == 126
    # the same container under runc, for comparison of what the user sees
    native = dockerd.docker("run", "--rm", IMAGE, "sh", "-c", "exit 42", check=False)
    assert native.returncode == 42


def test_run_options(dockerd: Dockerd, tmp_path: Path) -> None:
    res = run(dockerd, "-e", "FOO=bar", "-w", "/tmp", "-u", "1000:1000", "--hostname", "box",
              IMAGE, "sh", "-c", "echo $FOO $(pwd) $(id -u):$(id -g) $(hostname)")
    assert res.stdout == "bar /tmp 1000:1000 box\n", res.stderr
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "in").write_text("from host\n")
    res = run(dockerd, "-v", f"{vol}:/data", IMAGE, "sh", "-c",
              "cat /data/in; echo from container > /data/out")
    assert res.stdout == "from host\n", res.stderr
    assert (vol / "out").read_text() == "from container\n"
    res = run(dockerd, "-v", f"{vol}:/ro:ro", IMAGE, "sh", "-c", "echo x > /ro/y; echo $?")
    assert res.stdout == "1\n" and not (vol / "y").exists()
    res = run(dockerd, "--tmpfs", "/scratch:size=1m", IMAGE, "sh", "-c",
              "echo x > /scratch/y && cat /scratch/y && df -k /scratch | tail -1")
    lines = res.stdout.splitlines()
    assert lines[0] == "x" and lines[1].split()[1] == "1024", res.stdout + res.stderr
    res = run(dockerd, "--read-only", IMAGE, "sh", "-c", "touch /x 2>&1; echo $?")
    assert res.stdout.splitlines()[-1] == "1" and "Read-only" in res.stdout
    # the writable root's changes stay in the sandbox (and leave the image as it was)
    assert run(dockerd, IMAGE, "sh", "-c", "echo y > /made; cat /made").stdout == "y\n"
    assert run(dockerd, IMAGE, "ls", "/made").returncode == 1
    # dockerd's files bind-mounted one by one
    res = run(dockerd, "--hostname", "box2", "--add-host", "peer:10.1.2.3", IMAGE, "sh", "-c",
              "cat /etc/hostname; grep peer /etc/hosts")
    assert res.stdout.split() == ["box2", "10.1.2.3", "peer"], res.stderr


def test_detached_exec_logs_top_stop_restart(dockerd: Dockerd) -> None:
    script = ('trap "echo got TERM; exit 0" TERM; echo started; '
              'while :; do sleep 0.1; done')
    cid = dockerd.docker("run", "-d", "--runtime=snakevisor", IMAGE, "sh", "-c",
                         script).stdout.strip()
    try:
        deadline = time.monotonic() + 30
        while "started" not in dockerd.docker("logs", cid).stdout:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        res = dockerd.docker("exec", "-e", "X=1", cid, "sh", "-c", "echo exec $X; exit 3",
                             check=False)
        assert (res.returncode, res.stdout) == (3, "exec 1\n")
        top = dockerd.docker("top", cid).stdout.splitlines()
        assert top[0].split()[:2] == ["UID", "PID"] and len(top) >= 2
        dockerd.docker("stop", "-t", "20", cid)  # SIGTERM reaches the application's trap
        assert dockerd.docker("logs", cid).stdout.splitlines() == ["started", "got TERM"]
        state = dockerd.docker("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip()
        assert state == "0"
        dockerd.docker("start", cid)  # a fresh create with the same id
        deadline = time.monotonic() + 30
        while dockerd.docker("logs", cid).stdout.count("started") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        dockerd.docker("rm", "-f", cid)
    assert cid not in dockerd.docker("ps", "-a", "-q", "--no-trunc").stdout


def test_interactive_terminal(dockerd: Dockerd) -> None:
    """`docker run -it IMAGE sh` driven through a pty, as a user at a terminal drives it."""
    interactive_shell_session(["docker", "-H", f"unix://{dockerd.sock}", "run", "-it", "--rm",
                               "--runtime=snakevisor", "-e", "PS1=$ ", IMAGE, "sh"])


def test_resource_limits_pause_and_update(dockerd: Dockerd, tmp_path: Path) -> None:
    # --memory: the application's processes are limited (the allocation is OOM-killed)
    res = run(dockerd, "--memory", "32m", "--memory-swap", "32m", IMAGE, "sh", "-c",
              'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo ${#x}')
    assert res.returncode == 137 and res.stdout == "", (res.returncode, res.stdout)
    assert run(dockerd, "--memory", "64m", IMAGE, "sh", "-c",
               'x=$(head -c 1000000 /dev/zero | tr "\\0" a); echo ${#x}').stdout == "1000000\n"
    # --pids-limit: past the limit new processes fail with EAGAIN, as under runc (here the
    # fork, or the execve, which needs a new host process for a moment, may be the one)
    res = run(dockerd, "--pids-limit", "8", IMAGE, "sh", "-c",
              "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 5 & done; wait")
    assert "Resource temporarily unavailable" in res.stderr, res.stderr
    free = run(dockerd, "--pids-limit", "100", IMAGE, "sh", "-c",
               "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1 & done; wait")
    assert free.returncode == 0 and free.stderr == "", free.stderr
    # pause/unpause freeze the application; update changes its limits
    vol = tmp_path / "v"
    vol.mkdir()
    cid = dockerd.docker("run", "-d", "--runtime=snakevisor", "-v", f"{vol}:/v", IMAGE, "sh",
                         "-c", "i=0; while :; do i=$((i+1)); echo $i > /v/n; sleep 0.05; done"
                         ).stdout.strip()
    try:
        deadline = time.monotonic() + 30
        while not (vol / "n").exists() or not (vol / "n").read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        dockerd.docker("pause", cid)
        assert "Paused" in dockerd.docker("ps", "--format", "{{.Status}}", "-f",
                                          f"id={cid}").stdout
        time.sleep(0.3)
        frozen_at = (vol / "n").read_text()
        time.sleep(1)
        assert (vol / "n").read_text() == frozen_at  # nothing ran while paused
        dockerd.docker("unpause", cid)
        deadline = time.monotonic() + 30
        while (vol / "n").read_text() == frozen_at:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        dockerd.docker("update", "--memory", "48m", "--memory-swap", "48m", cid)
        limit = Path(f"/sys/fs/cgroup/memory/docker/{cid}/memory.limit_in_bytes")
        assert limit.read_text().strip() == str(48 << 20)
    finally:
        dockerd.docker("rm", "-f", cid)
    assert not Path(f"/sys/fs/cgroup/pids/docker/{cid}").exists()  # delete removed them


def test_capabilities_as_seen_inside(dockerd: Dockerd) -> None:
    """Docker's capability sets and no_new_privs reach the application as runc gives them."""
    script = "grep -E '^(Cap|NoNewPrivs)' /proc/self/status"
    for extra in ([], ["--cap-drop", "ALL"], ["--cap-add", "SYS_ADMIN"], ["-u", "1000"],
                  ["--security-opt", "no-new-privileges"]):
        ours = run(dockerd, *extra, IMAGE, "sh", "-c", script)
        theirs = dockerd.docker("run", "--rm", *extra, IMAGE, "sh", "-c", script, check=False)
        assert ours.stdout == theirs.stdout and ours.stdout, (extra, ours.stdout, ours.stderr)
    res = run(dockerd, "--cap-drop", "ALL", IMAGE, "sh", "-c", "chown 1000 /tmp; echo $?")
    assert res.stdout == "1\n" and "Operation not permitted" in res.stderr
    cid = dockerd.docker("run", "-d", "--runtime=snakevisor", "--cap-drop", "CHOWN", IMAGE,
                         "sleep", "100").stdout.strip()
    try:  # exec'd processes get the container's sets too
        res = dockerd.docker("exec", cid, "sh", "-c", "chown 1000 /tmp", check=False)
        assert res.returncode == 1 and "Operation not permitted" in res.stderr
    finally:
        dockerd.docker("rm", "-f", cid)


def test_docker_seccomp_profile_with_oci_seccomp(dockerd: Dockerd) -> None:
    """With --oci-seccomp (runtimeArgs), Docker's default profile decides as under runc."""
    script = ("echo start; unshare -U true 2>&1; echo unshare $?; "
              "mkdir /tmp/x && echo mkdir ok; echo end")
    ours = dockerd.docker("run", "--rm", "--runtime=snakevisor-seccomp", IMAGE, "sh", "-c",
                          script, check=False)
    theirs = dockerd.docker("run", "--rm", IMAGE, "sh", "-c", script, check=False)
    assert ours.stdout == theirs.stdout, (ours.stdout, theirs.stdout, ours.stderr)
    assert "Operation not permitted" in ours.stdout and "unshare 1" in ours.stdout
    unconfined = dockerd.docker("run", "--rm", "--runtime=snakevisor-seccomp", "--security-opt",
                                "seccomp=unconfined", IMAGE, "sh", "-c", "unshare -U true",
                                check=False)
    assert "Operation not permitted" not in unconfined.stderr  # ENOSYS here: no user ns


def test_exec_with_a_terminal(dockerd: Dockerd) -> None:
    """`docker exec -it` into a running container: the shim's console socket for exec."""
    cid = dockerd.docker("run", "-d", "--runtime=snakevisor", IMAGE, "sleep", "300").stdout.strip()
    try:
        interactive_shell_session(["docker", "-H", f"unix://{dockerd.sock}", "exec", "-it",
                                   "-e", "PS1=$ ", cid, "sh"])
        # the container lives on after the interactive exec ended
        assert dockerd.docker("exec", cid, "echo", "still").stdout == "still\n"
    finally:
        dockerd.docker("rm", "-f", cid)


def test_debian_bash_echo_and_exit_codes(dockerd: Dockerd, debian: str) -> None:
    assert same_as_runc(dockerd, debian, "echo", "hi") == "hi\n"
    for script, status in (("exit 42", 42), ("no-such-command", 127), ("/etc/passwd", 126),
                           ("bash -c 'kill -9 $$' 2>&1; echo $?", 0)):
        ours, theirs = run_both(dockerd, debian, "/bin/bash", "-c", script)
        assert ours.returncode == theirs.returncode == status, (script, ours.stderr)
        assert ours.stdout == theirs.stdout, script
        assert ours.stderr == theirs.stderr or status == 0, script  # 0: a pid in a message


def test_debian_init_ignores_default_signals_from_inside(dockerd: Dockerd, debian: str) -> None:
    for script in ("kill -9 $$; echo survived", "kill -TERM $$; echo survived"):
        ours, theirs = run_both(dockerd, debian, "/bin/bash", "-c", script)
        assert (theirs.returncode, theirs.stdout) == (0, "survived\n"), script
        assert (ours.returncode, ours.stdout) == (0, "survived\n"), script


@pytest.mark.parametrize("command", [
    "cat /etc/os-release /etc/debian_version",
    "id; id -u -n; getent passwd root; getent group nogroup; getent passwd 12345; echo $?",
    "dpkg -l | grep -c ^ii; dpkg-query -W -f '${Package} ${Status}\\n' bash coreutils dpkg",
    "dpkg --verify; echo verify $?",
    "apt-get check; echo check $?; apt-config dump | grep -c ^; apt-cache policy | head -3",
    "apt-cache show dpkg | grep -E '^(Package|Priority|Section):'; apt-get -s install dpkg",
])
def test_debian_userland_as_under_runc(dockerd: Dockerd, debian: str, command: str) -> None:
    """Real Debian binaries reading their real databases: the same output as under runc."""
    assert same_as_runc(dockerd, debian, "/bin/bash", "-c", command).strip()


def test_debian_as_another_user(dockerd: Dockerd, debian: str) -> None:
    out = same_as_runc(dockerd, "-u", "1000", debian, "/bin/bash", "-c",
                       "id; touch /x 2>&1; echo $?; touch /tmp/x && stat -c '%u %g %a' /tmp/x")
    assert out.startswith("uid=1000 gid=0(root) groups=0(root)\n"), out
    assert "Permission denied" in out


def test_debian_root_listing(dockerd: Dockerd, debian: str) -> None:
    """`ls -la /`: the image's entries with their modes, owners and link targets as under
    runc (link counts, sizes and times are the file systems' and the moment's)."""
    def entries(out: str) -> list[tuple[str, ...]]:
        lines = [line.split() for line in out.splitlines()[1:]]
        return [(f[0], f[2], f[3], *f[8:]) for f in lines]
    ours, theirs = run_both(dockerd, debian, "ls", "-la", "/")
    assert ours.returncode == theirs.returncode == 0, ours.stderr
    assert entries(ours.stdout) == entries(theirs.stdout)


def test_debian_package_install_offline(dockerd: Dockerd, debian: str) -> None:
    """dpkg-deb builds a package, `apt-get install ./x.deb` installs it (apt's solver, then
    dpkg unpacking and rewriting its database), dpkg verifies and removes it: no network.
    (SOURCE_DATE_EPOCH: the .deb's size must not depend on the second it was built in.)"""
    script = (
        "set -e; mkdir -p /tmp/p/DEBIAN /tmp/p/usr/bin; "
        "printf 'Package: svtest\\nVersion: 1.0\\nArchitecture: all\\n"
        "Maintainer: t <t@t>\\nDescription: t\\n' > /tmp/p/DEBIAN/control; "
        "printf '#!/bin/sh\\necho svtest runs\\n' > /tmp/p/usr/bin/svtest; "
        "chmod 755 /tmp/p/usr/bin/svtest; "
        "SOURCE_DATE_EPOCH=1 dpkg-deb --root-owner-group --build /tmp/p /tmp/svtest.deb; "
        "apt-get install -y -q /tmp/svtest.deb 2>&1 | grep -v -e ^Reading -e ^Building; "
        "svtest; dpkg -s svtest | grep -E '^(Status|Version)'; dpkg --verify svtest; "
        "dpkg -r svtest; dpkg -l | grep -c ^ii; ls /usr/bin/svtest 2>&1 || true; "
        "echo x >> /etc/debian_version; rm /etc/debian_version; "
        "cat /etc/debian_version 2>&1 || true")
    out = same_as_runc(dockerd, debian, "/bin/bash", "-c", script)
    assert "Setting up svtest (1.0) ...\nsvtest runs\nStatus: install ok installed\n" in out


def test_debian_one_file_system(dockerd: Dockerd, debian: str) -> None:
    """Tools that stay on one file system (find -xdev, du -x, tar --one-file-system) see the
    root as one, before and after the application writes to it."""
    out = same_as_runc(dockerd, debian, "/bin/bash", "-c",
                       "f=/etc/debian_version; d=/var/log; a=$(stat -c %d:%i $f $d); "
                       "echo >> $f; touch $d/x; b=$(stat -c %d:%i $f $d); "
                       "[ \"$a\" = \"$b\" ] && echo constant; find / -xdev -type f | wc -l")
    assert out.startswith("constant\n") and int(out.split()[1]) > 1000, out


def test_debian_environment(dockerd: Dockerd, debian: str) -> None:
    for extra in ([], ["-u", "1000"], ["-e", "HOME=/srv"]):
        same_as_runc(dockerd, "-h", "box", *extra, debian, "/bin/bash", "-c",
                     "env | sort; cd ~ && pwd")


def test_debian_dev_listing(dockerd: Dockerd, debian: str) -> None:
    same_as_runc(dockerd, debian, "ls", "-A", "/dev")


def test_debian_bash_jobs_and_pipes(dockerd: Dockerd, debian: str) -> None:
    script = ("seq 1 20000 | sort -rn | head -3; seq 5 | tac | paste -sd+ | bc 2>/dev/null "
              "|| echo $(( $(seq 5 | paste -sd+) )); "
              "(exit 3) | (exit 4) | true; echo ${PIPESTATUS[@]}; "
              "set -o pipefail; false | true; echo pipefail $?; "
              "sleep 0.2 & p=$!; (echo sub; exit 5) & q=$!; wait $q; echo q $?; "
              "jobs | wc -l; wait $p; echo p $?; "
              "coproc tr a-z A-Z; echo hello >&${COPROC[1]}; exec {COPROC[1]}>&-; "
              "read -r up <&${COPROC[0]}; echo $up; wait; "
              "diff <(printf 'a\\nb\\n') <(printf 'a\\nc\\n'); echo diff $?; "
              "mapfile -t xs < <(seq 3); echo ${#xs[@]}")
    out = same_as_runc(dockerd, debian, "/bin/bash", "-c", script)
    assert "20000\n19999\n19998\n" in out and "3 4 0\n" in out and "HELLO\n" in out, out


def test_debian_interactive_bash(dockerd: Dockerd, debian: str) -> None:
    """`docker run -it IMAGE bash`: bash's line editing and job control on our pty."""
    interactive_shell_session(["docker", "-H", f"unix://{dockerd.sock}", "run", "-it", "--rm",
                               "--runtime=snakevisor", "-e", "PS1=$ ", debian, "bash",
                               "--norc"])
