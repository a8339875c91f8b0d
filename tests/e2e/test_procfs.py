"""The sandbox's own /proc, seen by real tools: only the sandbox's processes, in Linux's
formats, with the magic links (exe, fd/N, /dev/std*) that programs rely on."""
from __future__ import annotations

import os
import re

import pytest

from harness import describe, run_sandbox

pytestmark = pytest.mark.slow


def sh(script: str, timeout: float = 60):
    res = run_sandbox(["/bin/sh", "-c", script], timeout=timeout)
    assert res.returncode == 0, describe(res)
    return res.stdout


def test_only_sandbox_processes_are_listed() -> None:
    out = sh("ls /proc | grep -E '^[0-9]+$' | sort -n | tr '\\n' ' '")
    pids = [int(p) for p in out.split()]
    assert pids and pids[0] == 1 and max(pids) < 100, out  # not the host's pid space


def test_ps_sees_the_process_tree() -> None:
    out = sh("sleep 5 & ps -e -o pid=,ppid=,comm=; kill $!")
    rows = [line.split() for line in out.strip().splitlines()]
    by_name = {row[2]: (int(row[0]), int(row[1])) for row in rows}
    assert by_name["sh"] == (1, 0), out
    assert by_name["sleep"][1] == 1 and by_name["ps"][1] == 1, out


def test_exe_follows_exec_and_fd_links_name_files() -> None:
    out = sh("readlink /proc/self/exe; exec 3</etc/hostname; readlink /proc/$$/fd/3; "
             "ls /proc/self/fd | tr '\\n' ' '")
    lines = out.splitlines()
    assert lines[0] == "/usr/bin/readlink", out  # the image readlink runs, not the shell
    assert lines[1] == "/etc/hostname", out
    assert lines[2].split()[:4] == ["0", "1", "2", "3"], out


def test_status_and_stat_use_sandbox_ids() -> None:
    out = sh("grep -E '^(Pid|PPid|Tgid):' /proc/self/status; cut -d' ' -f1,4 /proc/self/stat")
    fields = dict(line.split(":\t") for line in out.splitlines()[:3])
    pid = int(fields["Pid"])
    assert fields["Tgid"] == str(pid) and fields["PPid"] == "1", out
    stat_pid, stat_ppid = out.splitlines()[3].split()
    assert int(stat_pid) > pid and stat_ppid == "1", out  # cut is the next child of pid 1


def test_dev_std_links_reach_the_open_files() -> None:
    res = run_sandbox(["/bin/sh", "-c", "echo to-stderr > /dev/stderr; echo to-stdout > /dev/stdout; "
                       "cat /dev/stdin"], input="from-stdin\n")
    assert res.returncode == 0, describe(res)
    assert res.stdout == "to-stdout\nfrom-stdin\n" and "to-stderr" in res.stderr, describe(res)


def test_system_files_parse() -> None:
    out = sh("cat /proc/uptime /proc/loadavg; head -1 /proc/meminfo; free -k | head -1; uptime")
    lines = out.splitlines()
    assert re.fullmatch(r"\d+\.\d\d \d+\.\d\d", lines[0]), out
    assert re.fullmatch(r"\d\.\d\d \d\.\d\d \d\.\d\d \d+/\d+ \d+", lines[1]), out
    assert lines[2].startswith("MemTotal:"), out
    assert "load average" in lines[-1], out


def test_proc_is_read_only() -> None:
    res = run_sandbox(["/bin/sh", "-c", "echo x > /proc/self/cmdline"])
    assert res.returncode != 0 and "Permission denied" in res.stderr, describe(res)


def test_relative_symlinks_reach_other_mounts(tmp_path) -> None:
    """A link in the root whose relative target leads into /proc reaches the sandbox's
    procfs (as /etc/mtab -> ../proc/self/mounts does on many systems)."""
    res = sh("ln -s ../proc/self/mounts /etc/mymtab && head -1 /etc/mymtab && "
             "ln -s ../../dev/null /usr/local/nul && echo gone > /usr/local/nul && echo ok")
    assert res.splitlines() == ["overlay / overlay rw,relatime,lowerdir=/,upperdir=memory 0 0",
                                "ok"], res


def test_sys_shows_the_sandbox_cpus() -> None:
    import os
    out = sh("cat /sys/devices/system/cpu/online; ls /sys/devices/system/cpu | grep -c '^cpu[0-9]'; "
             "nproc --all; stat -f -c %T /sys")
    cpus = sorted(os.sched_getaffinity(0))
    online, count, nproc_all, fstype = out.split()
    assert int(count) == int(nproc_all) == len(cpus), out
    assert online.split("-")[0] == str(cpus[0]), out
    assert fstype == "sysfs", out


def test_namespace_links() -> None:
    """/proc/PID/ns lists Linux's kinds in its order; every process of the sandbox shares one
    namespace of each kind, and none of them is the host's."""
    res = run_sandbox(["/bin/sh", "-c", "ls /proc/self/ns; readlink /proc/self/ns/pid "
                       "/proc/1/ns/pid /proc/self/ns/pid_for_children /proc/self/ns/uts"])
    lines = res.stdout.splitlines()
    assert lines[:10] == ["cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
                          "time_for_children", "user", "uts"], describe(res)
    pid_self, pid_init, pid_children, uts = lines[10:]
    assert re.fullmatch(r"pid:\[\d+\]", pid_self) and pid_self == pid_init == pid_children
    assert re.fullmatch(r"uts:\[\d+\]", uts), describe(res)
    assert pid_self != os.readlink("/proc/self/ns/pid")


def test_fd_links_reopen_files_of_every_mount(tmp_path) -> None:
    """open(/proc/self/fd/N) makes a new description of the same file on the overlay root
    (a write copies it up; the host image is untouched) and on a volume (reaches the host)."""
    (tmp_path / "f").write_text("data\n")
    script = ("exec 3</v/f; cat /proc/self/fd/3; echo more >> /proc/self/fd/3; "
              "exec 4</etc/hostname; echo added >> /proc/self/fd/4; tail -n 1 /etc/hostname")
    res = run_sandbox(["/bin/sh", "-c", script], extra=["--volume", f"{tmp_path}:/v"])
    assert (res.returncode, res.stdout) == (0, "data\nadded\n"), describe(res)
    assert (tmp_path / "f").read_text() == "data\nmore\n"
    assert "added" not in open("/etc/hostname").read()
