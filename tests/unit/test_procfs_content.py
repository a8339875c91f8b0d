"""The sandbox's /proc contents against this host's real /proc.

A helper process on the host stands in for the application's stub: the fake process's
VMA map mirrors that helper's own mappings, so maps and smaps can be compared with the
host's files byte for byte, and every figure taken from the host (CPU time, resident
memory, context switches) is about a real process.  Formats are compared with the host
kernel's files (same keys in the same order, same widths); the slow tests lay the
generated files out like /proc and run procps (ps, top, free, uptime, pgrep) on them in
a private mount namespace.
"""
from __future__ import annotations

import math
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import pytest

from snakevisor.fsimpl import procfs
from snakevisor.fsimpl.hostfd import HostFdFile
from snakevisor.fsimpl.procfs import host, loadavg, maps, mounts, pid, sysctl, system
from snakevisor.fsimpl.procfs.text import bitmap_hex, bitmap_list, escape_name, mangle
from snakevisor.kernel.task import RLIM_INFINITY, Task, ThreadGroup
from snakevisor.mm.address_space import MAP_PRIVATE, MAP_SHARED, Vma
from snakevisor.syscalls import sys_info, sys_time
from snakevisor.vfs.fdtable import FdTable
from snakevisor.vfs.file import O_RDONLY, O_RDWR, File
from snakevisor.vfs.fs_context import FsContext
from tests.unit.conftest import FakeProcess

HELPER = r"""
import mmap, os, sys, time
anon = mmap.mmap(-1, 8192, mmap.MAP_SHARED)
anon[0] = 1
with open(sys.argv[1], "wb") as f:
    f.write(b"x" * 8192)
rw = mmap.mmap(os.open(sys.argv[1], os.O_RDWR), 8192, mmap.MAP_SHARED)
rw[0] = 2
ro = mmap.mmap(os.open(sys.argv[1], os.O_RDONLY), 4096, mmap.MAP_SHARED, prot=mmap.PROT_READ)
print("ready", flush=True)
time.sleep(1000)
"""
BOOTED_AGO = 100.25


# ------------------------------------------------------------------------------ fixtures

class PathFile(File):
    """A mapped file known by its host path (its stat is the host's, as hostfs's is)."""

    def __init__(self, path: str, flags: int) -> None:
        super().__init__(flags, path)

    def stat(self) -> os.stat_result:
        return os.stat(self.path)


class Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Clock:
    """A kernel clock the test moves by hand, and the timers set on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, Callable[[], None], Handle]] = []

    def call_at(self, deadline: float, fn: Callable[[], None]) -> Handle:
        handle = Handle()
        self.timers.append((deadline, fn, handle))
        return handle

    def advance(self, seconds: float) -> None:
        """Move time on, running every due timer (in deadline order)."""
        self.now += seconds
        while True:
            due = [t for t in self.timers if t[0] <= self.now and not t[2].cancelled]
            if not due:
                return
            first = min(due, key=lambda t: t[0])
            self.timers.remove(first)
            first[1]()


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A host process with shared anonymous, shared file and private mappings."""
    data = tmp_path_factory.mktemp("stub") / "mapped.bin"
    proc = subprocess.Popen([sys.executable, "-c", HELPER, str(data)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    yield proc.pid
    proc.kill()
    proc.wait()


def mirror_vmas(p: FakeProcess, host_pid: int) -> None:
    """Make the fake address space the host process's own map (names, files, offsets)."""
    mm = p.tg.mm
    mm.vmas.clear()
    mm._starts.clear()
    files: dict[tuple[str, bool], PathFile] = {}
    for line in Path(f"/proc/{host_pid}/maps").read_text().splitlines():
        parts = line.split(None, 5)
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        perms, offset = parts[1], int(parts[2], 16)
        name = parts[5] if len(parts) > 5 else ""
        if name == "[vsyscall]":
            continue  # above user space: not in an AddressSpace, listed by maps itself
        prot = (1 if perms[0] == "r" else 0) | (2 if perms[1] == "w" else 0) | (4 if perms[2] == "x" else 0)
        kind = MAP_SHARED if perms[3] == "s" else MAP_PRIVATE
        if name == maps.SHMEM_NAME:
            vma = Vma(lo, hi, prot, kind, offset=offset, shared_id=object())
        elif name.startswith("/"):
            writable = kind == MAP_SHARED and perms[1] == "w"
            file = files.setdefault((name, writable), PathFile(name, O_RDWR if writable else O_RDONLY))
            vma = Vma(lo, hi, prot, kind, file, offset)
        else:
            vma = Vma(lo, hi, prot, kind, name=name)
            if name == "[heap]":
                mm.brk_start, mm.brk = lo, hi
        mm._insert(vma)


def bare(clock: Clock | None = None) -> FakeProcess:
    """pid 1 of a fake sandbox without a host process, booted BOOTED_AGO seconds ago."""
    p = FakeProcess(None)
    k = p.kernel
    clock = clock or Clock()
    k.now = lambda: clock.now  # type: ignore[method-assign]
    k.call_at = clock.call_at  # type: ignore[attr-defined]
    k.boot_monotonic = clock.now - BOOTED_AGO  # type: ignore[attr-defined]
    k.boot_time = time.time() - BOOTED_AGO  # type: ignore[attr-defined]
    k.hostname, k.domainname = b"box", b"(none)"  # type: ignore[attr-defined]
    k.thread_groups = {1: p.tg}  # type: ignore[attr-defined]
    k.tasks = {1: p.task}  # type: ignore[attr-defined]
    k._next_pid = 2  # type: ignore[attr-defined]
    p.tg.start_time = clock.now - BOOTED_AGO + 0.5
    return p


def sandbox(stub_pid: int, clock: Clock | None = None) -> FakeProcess:
    """pid 1 of a fake sandbox, run by the host helper process `stub_pid`."""
    p = bare(clock)
    p.tg.exe_count = 1
    p.host.pid = stub_pid  # type: ignore[attr-defined]
    p.tg.host_pid = stub_pid
    p.task.thread = SimpleNamespace(tid=stub_pid)  # type: ignore[assignment]
    p.task.comm = b"init"
    p.tg.argv, p.tg.env = [b"/sbin/init", b"--flag"], [b"HOME=/", b"TERM=dumb"]
    p.tg.fds.users = 1
    mirror_vmas(p, stub_pid)
    p.tg.exe = p.tg.mm.vmas[0].file.path if p.tg.mm.vmas[0].file else ""
    return p


def add_process(p: FakeProcess, pid_: int, comm: bytes, parent: ThreadGroup | None = None,
                stub_pid: int | None = None) -> Task:
    """Another process of the sandbox (sharing pid 1's host process for figures)."""
    k = p.kernel
    parent = parent or p.tg
    fds = FdTable()
    fds.users = 1
    tg = ThreadGroup(k, pid_, parent, p.tg.mm, fds, FsContext(None, "/"))  # type: ignore[arg-type]
    tg.host_pid = stub_pid or p.tg.host_pid
    tg.exe_count = 1
    tg.argv = [comm, b"arg"]
    tg.start_time = p.tg.start_time + 1
    parent.children.append(tg)
    task = Task(k, pid_, tg, SimpleNamespace(tid=tg.host_pid))  # type: ignore[arg-type]
    task.comm = comm
    tg.tasks.append(task)
    k.thread_groups[pid_] = tg  # type: ignore[attr-defined]
    k.tasks[pid_] = task  # type: ignore[attr-defined]
    k._next_pid = max(k._next_pid, pid_ + 1)  # type: ignore[attr-defined]
    return task


def add_thread(tg: ThreadGroup, tid: int) -> Task:
    k = tg.kernel
    task = Task(k, tid, tg, SimpleNamespace(tid=tg.tasks[0].thread.tid))  # type: ignore[arg-type]
    task.comm = tg.tasks[0].comm
    tg.tasks.append(task)
    k.tasks[tid] = task  # type: ignore[attr-defined]
    return task


def make_zombie(tg: ThreadGroup, status: int) -> None:
    """What exit_group leaves: an exit status, dead threads, usage captured, no fds."""
    tg.final_usage = sys_time.Usage(3 * sys_time.TICK_NS, 2 * sys_time.TICK_NS, 100, 40, 1)
    tg.exit_status = status
    for t in tg.tasks:
        t.alive = False
        tg.kernel.tasks.pop(t.tid, None)  # type: ignore[attr-defined]
    tg.fds.files.clear()


def key_order(text: bytes) -> list[str]:
    return [line.split(":", 1)[0] for line in text.decode().splitlines()]


def native_zombie() -> tuple[int, Callable[[], None]]:
    pid_ = os.fork()
    if pid_ == 0:
        os._exit(3)
    while Path(f"/proc/{pid_}/stat").read_text().split(") ")[1][0] != "Z":
        time.sleep(0.01)
    return pid_, lambda: os.waitpid(pid_, 0) and None


# ------------------------------------------------------------------------------ text rules

def test_bitmaps_as_vsprintf_prints_them() -> None:
    assert bitmap_hex(0b11, 2) == "3"
    assert bitmap_hex(0b101, 6) == "05"
    assert bitmap_hex(1, 64) == "00000000,00000001"
    assert bitmap_hex(1 << 32 | 0xF, 40) == "01,0000000f"
    assert bitmap_hex(1, 1024) == ",".join(["00000000"] * 31 + ["00000001"])
    assert bitmap_list(0b11) == "0-1"
    assert bitmap_list(0b1011101) == "0,2-4,6"
    assert bitmap_list(0) == ""


def test_host_bitmaps_reproduced() -> None:
    """This process's own Cpus_allowed and Mems_allowed lines, rebuilt from their lists."""
    st = host.key_values(Path("/proc/self/status").read_bytes())
    cpus = sum(1 << c for c in os.sched_getaffinity(0))
    assert bitmap_hex(cpus, sys_info.nr_cpu_ids()) == st["Cpus_allowed"]
    assert bitmap_list(cpus) == st["Cpus_allowed_list"]
    mems = 0
    for part in st["Mems_allowed_list"].split(","):
        lo, _, hi = part.partition("-")
        for n in range(int(lo), int(hi or lo) + 1):
            mems |= 1 << n
    assert bitmap_hex(mems, 32 * len(st["Mems_allowed"].split(","))) == st["Mems_allowed"]


def test_escapes() -> None:
    assert escape_name("a\tb\nc\\d") == "a\\tb\\nc\\\\d"
    assert mangle("/mnt/my dir\\x") == "/mnt/my\\040dir\\134x"


# ------------------------------------------------------------------------------ maps and smaps

def test_maps_identical_to_the_hosts(stub: int) -> None:
    """Every line of the helper's maps -- files with device and inode, [heap], [stack],
    [vdso], [vvar], the shared anonymous /dev/zero, [vsyscall] -- rebuilt exactly."""
    p = sandbox(stub)
    assert maps.maps(p.tg) == Path(f"/proc/{stub}/maps").read_bytes()


def without_sharing(text: bytes) -> bytes:
    """The shared/private split and the proportional figures change whenever any process
    on the host maps or drops a page the helper maps too (libc...): compare the rest."""
    return re.sub(rb"\n(Pss|Pss_Dirty|SwapPss|Shared_Clean|Shared_Dirty|Private_Clean|"
                  rb"Private_Dirty):( +)\d+ kB", rb"\n\1:\2? kB", text)


def test_smaps_identical_to_the_hosts(stub: int) -> None:
    p = sandbox(stub)
    ours = maps.smaps(p.tg)
    assert without_sharing(ours) == without_sharing(Path(f"/proc/{stub}/smaps").read_bytes())
    assert without_sharing(ours) != ours
    assert b"[stack]" in ours and b"VmFlags: rd wr mr mw me gd ac \n" in ours


def test_smaps_keys_are_the_kernels() -> None:
    """Without any host figure, the keys, widths and flags still follow Linux."""
    p = bare()
    p.tg.mm._insert(Vma(0x7F0000000000, 0x7F0000021000, 3, MAP_PRIVATE, name="[stack]"))
    text = maps.smaps(p.tg)
    blocks = re.split(rb"\n(?=[0-9a-f]+-)", text)
    native = re.split(rb"\n(?=[0-9a-f]+-)", Path("/proc/self/smaps").read_bytes())[0]
    for block in blocks:
        assert key_order(block)[1:] == key_order(native)[1:]
    assert blocks[0].splitlines()[1] == b"Size:              16384 kB"
    assert b"Size:                132 kB\nKernelPageSize:        4 kB\n" in text
    assert b"[stack]\n" in text and b"VmFlags: rd wr mr mw me gd ac \n" in text


def test_vm_flags_computed() -> None:
    assert maps.vm_flags(Vma(0, 4096, 5, MAP_PRIVATE, PathFile("/x", O_RDONLY))) == \
        ["rd", "ex", "mr", "mw", "me"]
    assert maps.vm_flags(Vma(0, 4096, 1, MAP_SHARED, PathFile("/x", O_RDONLY))) == \
        ["rd", "mr", "me", "ms"]
    assert maps.vm_flags(Vma(0, 4096, 3, MAP_SHARED, PathFile("/x", O_RDWR))) == \
        ["rd", "wr", "sh", "mr", "mw", "me", "ms"]
    assert maps.vm_flags(Vma(0, 4096, 3, MAP_PRIVATE)) == ["rd", "wr", "mr", "mw", "me", "ac"]


def test_maps_line_padding() -> None:
    """The name column starts at 73 (the prefix padded to 72, then a space); a longer
    prefix gets the one space only; an anonymous line keeps its trailing space."""
    line = maps.map_line(0x400000, 0x401000, "r-xp", 0, 8, 1, 1234, "/bin/x")
    assert line.index("/bin/x") == 73 and line.endswith("\n")
    long = maps.map_line(0xFFFFFFFFFF600000, 0xFFFFFFFFFF601000, "--xp", 0, 0, 0, 0, "[vsyscall]")
    assert long == "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0" + " " * 18 + "[vsyscall]\n"
    assert maps.map_line(0x1000, 0x2000, "rw-p", 0, 0, 0, 0, "") == \
        "00001000-00002000 rw-p 00000000 00:00 0 \n"


def test_statm_matches_the_host(stub: int) -> None:
    p = sandbox(stub)
    ours = [int(x) for x in maps.statm(p.tg).split()]
    native = [int(x) for x in Path(f"/proc/{stub}/statm").read_text().split()]
    assert len(ours) == 7 and ours[4] == ours[6] == 0
    assert ours[0] == native[0]  # size: the same mappings
    assert ours[1:3] == native[1:3]  # resident and shared: the host's own figures
    assert ours[5] == native[5]  # data + stack
    lay = maps.layout(p.tg)
    assert ours[3] == (maps.text_bytes(lay)) // 4096 > 0


def test_layout_from_the_executable_mappings(stub: int) -> None:
    p = sandbox(stub)
    lay = maps.layout(p.tg)
    exe = [v for v in p.tg.mm.vmas if v.file is not None and v.file.path == p.tg.exe]
    code = next(v for v in exe if v.prot & 4)
    assert (lay.start_code, lay.end_code) == (code.start, code.end)
    assert lay.start_data == next(v.start for v in exe if v.prot & 2)
    assert lay.start_brk == p.tg.mm.brk_start
    stack = next(v for v in p.tg.mm.vmas if v.name == "[stack]")
    assert lay.start_stack == stack.end
    p.tg.mm.start_code, p.tg.mm.arg_start = 0x401000, 0x7FFF0000  # type: ignore[attr-defined]
    lay = maps.layout(p.tg)
    assert (lay.start_code, lay.arg_start) == (0x401000, 0x7FFF0000)


# ------------------------------------------------------------------------------ status

def test_status_lines_as_the_host_prints_them(stub: int) -> None:
    p = sandbox(stub)
    text = pid.status(p.tg)
    native = Path(f"/proc/{stub}/status").read_bytes()
    assert key_order(text) == key_order(native)
    ours, theirs = host.key_values(text), host.key_values(native)
    for key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem", "VmPTE", "VmSwap",
                "VmSize", "VmData", "VmStk", "Mems_allowed", "Speculation_Store_Bypass",
                "voluntary_ctxt_switches"):
        assert ours[key] == theirs[key], key
    for line in text.decode().splitlines():  # the memory lines' widths are Linux's
        if line.startswith(("Vm", "Rss", "Hugetlb")):
            assert re.fullmatch(r"\w+:\t[ \d]{8} kB", line) or re.fullmatch(r"\w+:\t\d{9,} kB", line), line


def test_status_values() -> None:
    p = bare()
    p.task.comm = b"my\tprog"
    c = p.tg.creds
    c.ruid, c.euid, c.suid, c.fsuid, c.rgid, c.egid, c.sgid, c.fsgid = 1, 2, 3, 4, 5, 6, 7, 8
    c.groups = [10, 20]
    p.tg.umask = 0o027
    p.tg.sigactions = {1: (1, 0, 0, 0), 2: (0x401000, 0, 0, 0), 15: (0, 0, 0, 0)}
    p.task.sigmask = 1 << 9
    p.task.sigpending.add(10, b"")
    p.tg.shared_pending.add(34, b"")
    p.tg.shared_pending.add(34, b"")
    p.task.pending = (7, (0,) * 6)
    p.tg.fds.files = {0: File(0), 70: File(0)}
    kv = host.key_values(pid.status(p.tg))
    assert kv["Name"] == "my\\tprog"
    assert kv["Umask"] == "0027" and kv["State"] == "S (sleeping)"
    assert kv["Uid"] == "1\t2\t3\t4" and kv["Gid"] == "5\t6\t7\t8"
    assert kv["Groups"] == "10 20"  # (the trailing space is stripped by key_values)
    assert b"\nGroups:\t10 20 \n" in pid.status(p.tg)
    assert kv["FDSize"] == "128"
    assert kv["SigIgn"] == "0000000000000001" and kv["SigCgt"] == "0000000000000002"
    assert kv["SigBlk"] == "0000000000000200" and kv["SigPnd"] == "0000000000000200"
    assert kv["ShdPnd"] == "0000000200000000" and kv["SigQ"].startswith("3/")
    assert kv["CapEff"] == "0000000000000000"  # euid 2: no capabilities
    assert kv["Cpus_allowed_list"] == "0-1" and kv["NoNewPrivs"] == "0"
    assert kv["Threads"] == "1" and kv["PPid"] == "0" and kv["TracerPid"] == "0"
    p.tg.stopped = True
    assert host.key_values(pid.status(p.tg))["State"] == "T (stopped)"
    p.tg.stopped = False
    p.task.pending = None
    assert host.key_values(pid.status(p.tg))["State"] == "R (running)"
    assert b"\nGroups:\t \n" in pid.status(bare().tg)


def test_zombie_status_and_stat_as_linux_shows_them(stub: int) -> None:
    p = sandbox(stub)
    child = add_process(p, 2, b"worker")
    make_zombie(child.tg, 3 << 8)
    zpid, reap = native_zombie()
    try:
        native_status = Path(f"/proc/{zpid}/status").read_bytes()
        native_stat = Path(f"/proc/{zpid}/stat").read_text().split()
    finally:
        reap()
    text = pid.status(child.tg)
    assert key_order(text) == key_order(native_status)  # no Umask, no Vm* lines
    kv = host.key_values(text)
    assert kv["State"] == "Z (zombie)" and kv["FDSize"] == "0" and kv["Threads"] == "1"
    fields = pid.stat(child.tg).decode().split()
    assert len(fields) == len(native_stat) == 52
    assert fields[2] == "Z" and fields[51] == str(3 << 8)
    assert fields[22:28] == native_stat[22:28] == ["0", "0", str(RLIM_INFINITY), "0", "0", "0"]
    assert (fields[13], fields[14], fields[9]) == ("3", "2", "40")  # captured at exit
    assert int(fields[8]) & pid.PF_EXITING
    assert maps.statm(child.tg) == b"0 0 0 0 0 0 0\n"
    assert maps.maps(child.tg) == pid.cmdline(child.tg) == b""
    assert pid.oom_score(child.tg) == b"0\n"


def test_thread_status_and_stat(stub: int) -> None:
    p = sandbox(stub)
    t2 = add_thread(p.tg, 5)
    t2.comm = b"helper"
    t2.sigmask = 0b100
    kv = host.key_values(pid.status(p.tg, t2))
    assert (kv["Pid"], kv["Tgid"], kv["NSpid"], kv["Name"]) == ("5", "1", "5", "helper")
    assert kv["SigBlk"] == "0000000000000004" and kv["Threads"] == "2"
    whole = pid.stat(p.tg).decode().split()
    thread = pid.stat(p.tg, t2).decode().split()
    assert whole[0] == "1" and thread[0] == "5" and thread[1] == "(helper)"
    assert whole[37] == "17" and thread[37] == "-1"  # exit_signal: only the leader's
    assert int(thread[8]) & pid.PF_FORKNOEXEC and not int(whole[8]) & pid.PF_FORKNOEXEC
    assert whole[19] == thread[19] == "2"
    assert pid.tids(p.tg) == [1, 5]


# ------------------------------------------------------------------------------ stat

def test_stat_fields(stub: int) -> None:
    p = sandbox(stub)
    p.task.comm = b"a) b ("
    p.tg.pgid, p.tg.sid = 1, 1
    child = add_process(p, 4, b"kid")
    child.pending = (61, (0,) * 6)
    p.tg.sigactions = {17: (1, 0, 0, 0), 2: (0x1000, 0, 0, 0)}
    text = pid.stat(p.tg).decode()
    assert text.endswith("\n")
    head, rest = text[:text.rindex(")") + 1], text[text.rindex(")") + 2:].split()
    assert head == "1 (a) b ()" and len(rest) == 50  # 52 fields
    native = Path(f"/proc/{stub}/stat").read_text()
    assert len(native[native.rindex(")") + 2:].split()) == 50
    f = [None, None, None] + rest  # f[n] is proc(5)'s field n
    assert f[3] == "R" and f[4] == "0" and f[5] == f[6] == "1"
    assert (f[7], f[8]) == ("0", "-1")  # no controlling terminal
    assert (f[18], f[19]) == ("20", "0")  # priority, nice
    assert f[22] == str(round(0.5 * sys_time.USER_HZ))  # started 0.5 s after boot
    assert int(f[23]) == sum(v.end - v.start for v in p.tg.mm.vmas)
    assert int(f[24]) == host.statm(stub)[1]
    assert f[25] == str(p.tg.rlimits[5][0])
    assert int(f[26]) == maps.layout(p.tg).start_code > 0
    assert f[34] == str(1 << 1) and f[33] == str(1 << 16)  # sigcatch, sigignore
    assert f[35] == "0" and f[38] == "17"
    kid = pid.stat(child.tg).decode().split()
    assert kid[2] == "S" and kid[3] == "1" and kid[34] == "1"  # sleeping: wchan flag
    stranger = pid.stat(p.tg, permitted=False).decode()
    sf = [None, None, None] + stranger[stranger.rindex(")") + 2:].split()
    assert sf[26] == sf[27] == "1" and sf[28] == "0" and sf[45:52] == ["0"] * 7


def test_stat_cpu_figures_are_getrusages(stub: int) -> None:
    """utime/stime/minflt come from the same accounting as getrusage (never less)."""
    p = bare()
    p.host.pid = os.getpid()  # type: ignore[attr-defined]
    p.tg.host_pid = os.getpid()
    p.task.thread = SimpleNamespace(tid=os.getpid())  # type: ignore[assignment]
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    fig = pid.cpu_figures(p.tg)
    usage = sys_time.own_usage(p.task)
    assert fig.utime + fig.stime > 0
    assert usage.utime // sys_time.TICK_NS >= fig.utime and usage.minflt >= fig.minflt > 0
    child_use = sys_time.Usage(5 * sys_time.TICK_NS, 7 * sys_time.TICK_NS, 1, 11, 2)
    sys_time.add_child_usage(p.tg, child_use)
    f = pid.stat(p.tg).decode().split()
    assert (f[10], f[12], f[15], f[16]) == ("11", "2", "5", "7")


def test_stat_of_a_stopped_process_and_states(stub: int) -> None:
    p = sandbox(stub)
    assert pid.state(p.tg, p.task) == "R"
    p.tg.stopped = True
    assert pid.stat(p.tg).split()[2] == b"T"
    p.tg.stopped = False
    p.task.frozen = (0,)
    assert pid.state(p.tg, p.task) == "T"


# ------------------------------------------------------------------------------ the other per-process files

def test_cmdline_environ_comm(stub: int) -> None:
    p = sandbox(stub)
    assert pid.cmdline(p.tg) == b"/sbin/init\0--flag\0"
    assert pid.environ(p.tg) == b"HOME=/\0TERM=dumb\0"
    assert pid.comm(p.tg) == b"init\n"
    t2 = add_thread(p.tg, 9)
    t2.comm = b"worker"
    assert pid.comm(p.tg, t2) == b"worker\n" and pid.comm(p.tg) == b"init\n"


def test_cmdline_from_memory_when_recorded() -> None:
    """With the loader's addresses, argv is read where it lives (setproctitle shows)."""
    p = bare()
    args, env = b"prog\0-v\0", b"A=1\0B=2\0"
    base = p.put(args + env)
    mm = p.tg.mm
    mm.arg_start, mm.arg_end = base, base + len(args)  # type: ignore[attr-defined]
    mm.env_start, mm.env_end = base + len(args), base + len(args) + len(env)  # type: ignore[attr-defined]
    assert pid.cmdline(p.tg) == args and pid.environ(p.tg) == env
    p.host.write(base, b"my title here\0")  # overwrites argv's final NUL: a proctitle
    assert pid.cmdline(p.tg) == b"my title here\0"


def test_limits_identical_to_the_hosts() -> None:
    p = bare()
    p.tg.rlimits = [[RLIM_INFINITY if v < 0 else v for v in resource.getrlimit(i)]
                    for i in range(16)]
    assert pid.limits(p.tg) == Path("/proc/self/limits").read_bytes()


def test_small_files_in_the_hosts_format() -> None:
    p = bare()
    native = Path("/proc/self")
    if native.joinpath("uid_map").read_bytes() == pid.ID_MAP:  # the host's initial userns
        assert pid.uid_map(p.tg) == native.joinpath("uid_map").read_bytes()
        assert pid.gid_map(p.tg) == native.joinpath("gid_map").read_bytes()
    assert pid.uid_map(p.tg) == b"%10d %10d %10d\n" % (0, 0, 2**32 - 1)
    assert pid.cgroup(p.tg) == b"0::/\n"
    assert key_order(pid.io(p.tg)) == key_order(native.joinpath("io").read_bytes())
    assert pid.personality(p.tg) == native.joinpath("personality").read_bytes()
    assert pid.timerslack_ns(p.tg) == native.joinpath("timerslack_ns").read_bytes()
    assert re.fullmatch(rb"\d+", pid.loginuid(p.tg)) and re.fullmatch(rb"\d+", pid.sessionid(p.tg))
    assert pid.oom_score_adj(p.tg) == b"0\n" and pid.oom_adj(p.tg) == b"0\n"
    p.tg.oom_score_adj = 1000  # type: ignore[attr-defined]
    assert pid.oom_adj(p.tg) == b"15\n"
    p.tg.oom_score_adj = -500  # type: ignore[attr-defined]
    assert pid.oom_adj(p.tg) == b"-8\n"  # C division truncates toward zero
    assert pid.wchan(p.tg) == b"0"
    assert pid.setgroups(p.tg) == b"allow\n"


def test_oom_score_like_the_hosts(stub: int) -> None:
    """Same memory figures, same formula: the helper's own score."""
    p = sandbox(stub)
    assert pid.oom_score(p.tg) == Path(f"/proc/{stub}/oom_score").read_bytes()
    p.tg.oom_score_adj = -1000  # type: ignore[attr-defined]
    assert pid.oom_score(p.tg) == b"0\n"


def test_fdinfo_like_the_hosts(tmp_path: Path) -> None:
    p = bare()
    path = tmp_path / "f"
    path.write_bytes(b"hello world")
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC)
    try:
        os.lseek(fd, 5, os.SEEK_SET)
        file = HostFdFile(os.O_RDWR | os.O_APPEND | 0o100000, str(path))
        file.fd = fd
        p.tg.fds.set(3, file, cloexec=True)
        native = host.key_values(Path(f"/proc/self/fdinfo/{fd}").read_bytes())
        text = pid.fdinfo(p.tg, 3, int(native["mnt_id"]))
        assert text == Path(f"/proc/self/fdinfo/{fd}").read_bytes()[:len(text)]
        assert pid.fd_link(p.tg, 3) == str(path) and pid.fds(p.tg) == [3]
        p.tg.fds.cloexec.discard(3)
        assert host.key_values(pid.fdinfo(p.tg, 3))["flags"] == "0102002"
    finally:
        os.close(fd)
    with pytest.raises(KeyError):
        pid.fdinfo(p.tg, 9)


def test_fd_table_size() -> None:
    p = bare()
    assert pid.fd_table_size(p.tg) == 64
    for top, size in ((63, 64), (64, 128), (127, 128), (128, 256), (255, 256), (256, 512), (1000, 1024)):
        p.tg.fds.files = {top: File(0)}
        assert pid.fd_table_size(p.tg) == size, top


def test_links_and_listings(stub: int) -> None:
    p = sandbox(stub)
    p.tg.fs.cwd = "/work"
    child = add_process(p, 3, b"c")
    add_process(p, 6, b"d", parent=child.tg)
    make_zombie(p.kernel.thread_groups[6].tasks[0].tg, 0)  # type: ignore[attr-defined]
    assert pid.pids(p.kernel) == [1, 3, 6]  # type: ignore[arg-type]
    assert pid.cwd_link(p.tg) == "/work" and pid.root_link(p.tg) == "/"
    assert pid.exe_link(p.tg) == p.tg.exe
    assert system.self_link(child) == "3" and system.thread_self_link(child) == "3/task/3"
    assert pid.children(child.tg, child) == b"6 "
    assert procfs.THREAD_FILES["children"](p.tg, p.task) == b"3 "


def test_file_tables_cover_linux_names() -> None:
    native = set(os.listdir("/proc/self"))
    assert set(procfs.PROCESS_FILES) <= native
    assert set(procfs.THREAD_FILES) <= set(os.listdir(f"/proc/self/task/{os.getpid()}"))
    assert set(procfs.SYSTEM_FILES) <= set(os.listdir("/proc"))


# ------------------------------------------------------------------------------ mounts

def _records_from(text: str) -> list[mounts.MountRecord]:
    out = []
    for line in text.splitlines():
        left, right = line.split(" - ")
        f = left.split()
        fstype, source, sopts = right.split()
        major, minor = f[2].split(":")
        unq = (lambda x: re.sub(r"\\(\d{3})", lambda m: chr(int(m.group(1), 8)), x))
        out.append(mounts.MountRecord(int(f[0]), int(f[1]), int(major), int(minor), unq(f[3]),
                                      unq(f[4]), f[5], unq(fstype), unq(source), sopts,
                                      " ".join(f[6:])))
    return out


def test_mount_tables_identical_to_the_hosts() -> None:
    """The host's own mount table, parsed into records and printed back: mountinfo
    byte for byte, /proc/mounts with its different option order byte for byte."""
    native = Path("/proc/self/mountinfo").read_text()
    records = _records_from(native)
    assert mounts.mountinfo(records).decode() == native
    assert mounts.mounts(records) == Path("/proc/self/mounts").read_bytes()


def test_mount_record_formatting() -> None:
    r = mounts.MountRecord(21, 1, 0, 42, "/", "/mnt/my dir", "ro,nosuid,relatime", "tmpfs",
                           "tmpfs", "rw,lazytime,size=64k,mode=755", "shared:3")
    assert mounts.mountinfo([r]) == (b"21 1 0:42 / /mnt/my\\040dir ro,nosuid,relatime shared:3 - "
                                     b"tmpfs tmpfs rw,lazytime,size=64k,mode=755\n")
    assert mounts.mounts([r]) == b"tmpfs /mnt/my\\040dir tmpfs ro,lazytime,nosuid,relatime,size=64k,mode=755 0 0\n"
    assert mounts.mountstats([r]) == b"device tmpfs mounted on /mnt/my\\040dir with fstype tmpfs\n"


# ------------------------------------------------------------------------------ system-wide

def test_meminfo_is_the_hosts() -> None:
    p = bare()
    ours = system.meminfo(p.kernel)  # type: ignore[arg-type]
    assert key_order(ours) == key_order(Path("/proc/meminfo").read_bytes())
    assert host.meminfo_kb()["MemTotal"] == int(ours.split()[1])


def test_cpuinfo_only_the_sandboxs_cpus() -> None:
    p = bare()
    native = Path("/proc/cpuinfo").read_text()
    host_cpus = [int(x) for x in re.findall(r"^processor\s*: (\d+)$", native, re.M)]
    p.kernel.platform.cpus = frozenset(host_cpus)
    assert system.cpuinfo(p.kernel) == native.encode()  # type: ignore[arg-type]
    p.kernel.platform.cpus = frozenset(host_cpus[-1:])
    ours = system.cpuinfo(p.kernel).decode()  # type: ignore[arg-type]
    assert re.findall(r"^processor\s*: (\d+)$", ours, re.M) == [str(host_cpus[-1])]
    assert ours.endswith("\n\n") and ours.strip() in native


def test_proc_stat(stub: int) -> None:
    p = sandbox(stub)
    add_process(p, 2, b"x").pending = (0, (0,) * 6)
    add_process(p, 3, b"y")
    p.kernel.platform.cpus = frozenset({0})
    lines = system.stat(p.kernel).decode().splitlines()  # type: ignore[arg-type]
    assert [line.split()[0] for line in lines] == [
        "cpu", "cpu0", "intr", "ctxt", "btime", "processes", "procs_running", "procs_blocked",
        "softirq"]
    native = {line.split()[0]: line.split() for line in Path("/proc/stat").read_text().splitlines()}
    assert lines[0].startswith("cpu  ") and len(lines[0].split()) == len(native["cpu"])
    assert lines[0].split()[1:] == lines[1].split()[1:]  # the total of one CPU is itself
    assert len(lines[8].split()) == len(native["softirq"])
    assert lines[4] == f"btime {int(p.kernel.boot_time)}"  # type: ignore[attr-defined]
    assert lines[5] == "processes 3" and lines[6] == "procs_running 2"


def test_uptime(stub: int) -> None:
    p = sandbox(stub)
    text = system.uptime(p.kernel).decode()  # type: ignore[arg-type]
    assert re.fullmatch(r"\d+\.\d\d \d+\.\d\d\n", text)
    up, idle = (float(x) for x in text.split())
    assert up == BOOTED_AGO and 0 <= idle <= up * 2


def test_loadavg_formula_and_timer(stub: int) -> None:
    clock = Clock()
    p = sandbox(stub, clock)
    la = loadavg.LoadAverage(p.kernel)  # type: ignore[arg-type]
    la.start()
    assert system.loadavg(p.kernel, la) == b"0.00 0.00 0.00 1/1 1\n"  # type: ignore[arg-type]
    clock.advance(60)  # 12 samples of one runnable thread
    assert la.avenrun == [1299, 378, 132]  # Linux's fixed-point steps
    assert la.text() == "0.63 0.18 0.06"
    for load, minutes in zip(la.avenrun, (1, 5, 15)):  # 1 - e^(-1 min / period)
        assert abs(load / 2048 - (1 - math.exp(-1 / minutes))) < 0.01
    p.task.pending = (0, (0,) * 6)  # now asleep
    clock.advance(600)
    assert la.text().startswith("0.00 ")
    assert la.sysinfo_loads()[2] == la.avenrun[2] << 5
    add_process(p, 2, b"w")
    kernel = p.kernel
    kernel.loadavg = la  # type: ignore[attr-defined]
    assert system.loadavg(kernel).endswith(b" 1/2 2\n")  # type: ignore[arg-type]
    # a late loop replays the missed periods with the current count
    before = list(la.avenrun)
    deadline = clock.timers[-1][0]
    clock.now = deadline + 3 * loadavg.LOAD_FREQ
    clock.advance(0)
    replay = loadavg.LoadAverage(kernel)  # type: ignore[arg-type]
    replay.avenrun = before
    replay.sample(1, 4)
    assert la.avenrun == replay.avenrun and clock.timers[-1][0] == deadline + 4 * loadavg.LOAD_FREQ
    la.stop()
    assert clock.timers[-1][2].cancelled


def test_calc_load_rounding() -> None:
    assert loadavg.calc_load(0, 1884, 2048) == 164
    assert loadavg.calc_load(2000, 1884, 2048) == 2004  # 2003.84, rounded up while rising
    assert loadavg.calc_load(2048, 1884, 0) == 1884
    assert loadavg.calc_load(2048, 1884, 2048) == 2048


def test_version_filesystems() -> None:
    p = bare()
    assert system.version(p.kernel) == Path("/proc/version").read_bytes()  # type: ignore[arg-type]
    lines = system.filesystems().decode().splitlines()
    assert {"nodev\ttmpfs", "nodev\tproc", "nodev\tsysfs", "nodev\tdevpts", "nodev\toverlay"} <= set(lines)
    native = Path("/proc/filesystems").read_text().splitlines()
    for line in lines:  # the same "nodev<TAB>name" shape as the host's
        assert line.split("\t")[0] == "nodev" and ("nodev\t" + line.split("\t")[1] in native or
                                                   line.endswith("9p"))


def test_sysctl_values() -> None:
    p = bare()
    k = p.kernel
    k.hostname, k.domainname = b"box\0junk", b"(none)"  # type: ignore[attr-defined]
    assert sysctl.sysctl(k, "kernel/hostname") == b"box\n"  # type: ignore[arg-type]
    assert sysctl.sysctl(k, "kernel/domainname") == b"(none)\n"  # type: ignore[arg-type]
    same_as_host = ["kernel/ostype", "kernel/osrelease", "kernel/version", "kernel/cap_last_cap",
                    "kernel/ngroups_max", "kernel/overflowuid", "kernel/overflowgid",
                    "fs/nr_open", "fs/file-max", "kernel/threads-max", "vm/overcommit_memory"]
    linux_defaults = ["kernel/shmmax", "kernel/shmall", "kernel/shmmni", "kernel/msgmax",
                      "kernel/msgmnb", "kernel/sem", "vm/max_map_count", "fs/pipe-max-size",
                      "net/core/somaxconn"]
    for name in same_as_host:
        assert sysctl.sysctl(k, name) == Path("/proc/sys", name).read_bytes(), name  # type: ignore[arg-type]
    for name in linux_defaults:  # the host may be tuned: compare the shape only
        ours, theirs = sysctl.sysctl(k, name), Path("/proc/sys", name).read_bytes()  # type: ignore[arg-type]
        assert len(ours.split()) == len(theirs.split()) and ours.count(b"\t") == theirs.count(b"\t"), name
    assert sysctl.sysctl(k, "kernel/pid_max") == b"4194304\n"  # type: ignore[arg-type]
    assert sysctl.sysctl(k, "vm/mmap_min_addr") == b"65536\n"  # type: ignore[arg-type]
    uuid_re = rb"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}\n"
    boot = sysctl.sysctl(k, "kernel/random/boot_id")  # type: ignore[arg-type]
    assert re.fullmatch(uuid_re, boot) and sysctl.sysctl(k, "/kernel/random/boot_id/") == boot  # type: ignore[arg-type]
    assert sysctl.sysctl(bare().kernel, "kernel/random/boot_id") != boot  # type: ignore[arg-type]
    assert sysctl.sysctl(k, "kernel/random/uuid") != sysctl.sysctl(k, "kernel/random/uuid")  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        sysctl.sysctl(k, "kernel/nonexistent")  # type: ignore[arg-type]
    assert sysctl.entries() == ["fs", "kernel", "net", "vm"]
    assert "random" in sysctl.entries("kernel") and sysctl.entries("kernel/random") == ["boot_id", "uuid"]
    assert sysctl.is_directory("kernel/random") and not sysctl.is_directory("kernel/hostname")


# ------------------------------------------------------------------------------ the real tools

def write_tree(root: Path, p: FakeProcess, reader: Task) -> None:
    """Lay the generated files out as /proc is laid out, as the reader would see them."""
    k = p.kernel
    for name, fn in procfs.SYSTEM_FILES.items():
        (root / name).write_bytes(fn(k))  # type: ignore[arg-type]
    for path in sysctl.SYSCTL:
        target = root / "sys" / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(sysctl.sysctl(k, path))  # type: ignore[arg-type]
    (root / "mounts").write_bytes(mounts.mounts([]))
    for number in pid.pids(k):  # type: ignore[arg-type]
        tg = k.thread_groups[number]  # type: ignore[attr-defined]
        d = root / str(number)
        d.mkdir()
        for name, fn in procfs.PROCESS_FILES.items():
            (d / name).write_bytes(fn(tg))
        for tid in pid.tids(tg):
            task = next(t for t in tg.tasks if t.tid == tid)
            td = d / "task" / str(tid)
            td.mkdir(parents=True)
            for name, tfn in procfs.THREAD_FILES.items():
                (td / name).write_bytes(tfn(tg, task))
        (d / "fd").mkdir()
    os.symlink(system.self_link(reader), root / "self")
    os.symlink(system.thread_self_link(reader), root / "thread-self")


def run_with_proc(root: Path, command: str) -> str:
    """Run a command with `root` mounted over /proc, in private mount and pid namespaces
    where it is pid 1 (procps looks itself up as /proc/<getpid()>: pid 1 is the reader
    the tree was written for)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1)")
    res = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--propagation", "private",
                          "sh", "-c", f"mount --bind '{root}' /proc && exec {command}"],
                         capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "LC_ALL": "C"})
    if res.returncode != 0 and "mount" in res.stderr and "ps" not in command:
        pytest.skip(f"cannot bind-mount over /proc: {res.stderr.strip()}")
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.fixture
def tree(stub: int, tmp_path: Path) -> Path:
    """A sandbox: pid 1 sleeping, a two-threaded worker running, a stopped process and
    a zombie; pid 1 is the reader."""
    p = sandbox(stub)
    p.task.comm = b"init"
    p.task.pending = (61, (0,) * 6)
    worker = add_process(p, 7, b"worker")
    add_thread(worker.tg, 8)
    worker.tg.argv = [b"/usr/bin/worker", b"--jobs", b"2"]
    stopped = add_process(p, 9, b"paused")
    stopped.tg.stopped = True
    zombie = add_process(p, 12, b"gone")
    make_zombie(zombie.tg, 0)
    p.tg.sigactions = {17: (1, 0, 0, 0)}
    la = loadavg.LoadAverage(p.kernel)  # type: ignore[arg-type]
    la.avenrun = [1299, 378, 132]
    p.kernel.loadavg = la  # type: ignore[attr-defined]
    root = tmp_path / "proc"
    root.mkdir()
    write_tree(root, p, p.task)
    return root


@pytest.mark.slow
def test_ps_reads_the_sandboxs_proc(tree: Path) -> None:
    # (ps lists in directory order: the real procfs's is ascending, a test tree's is not)
    out = run_with_proc(tree, "ps -e -o pid=,ppid=,stat=,nlwp=,comm=")
    rows = sorted((line.split() for line in out.splitlines()), key=lambda r: int(r[0]))
    assert rows == [["1", "0", "Ss", "1", "init"], ["7", "1", "Rl", "2", "worker"],
                    ["9", "1", "T", "1", "paused"], ["12", "1", "Z", "1", "gone"]]
    out = run_with_proc(tree, "ps -L -o pid=,lwp=,comm= -p 7")
    assert sorted(line.split() for line in out.splitlines()) == [["7", "7", "worker"],
                                                                 ["7", "8", "worker"]]
    aux = run_with_proc(tree, "ps aux").splitlines()
    assert aux[0].split()[:4] == ["USER", "PID", "%CPU", "%MEM"]
    worker = next(line for line in aux if " 7 " in line)
    assert worker.split()[0] == "root" and worker.endswith("/usr/bin/worker --jobs 2")
    assert any(line.endswith("[gone] <defunct>") for line in aux)


@pytest.mark.slow
def test_free_uptime_top_pgrep_read_the_sandboxs_proc(tree: Path) -> None:
    free = run_with_proc(tree, "free -k").splitlines()
    total = host.meminfo_kb()["MemTotal"]
    assert free[1].split()[:2] == ["Mem:", str(total)]
    up = run_with_proc(tree, "uptime")
    assert "up 1 min" in up and "load average: 0.63, 0.18, 0.06" in up
    top = run_with_proc(tree, "top -bn1")
    assert re.search(r"Tasks:\s+4 total,\s+1 running,\s+1 sleeping,\s+1 stopped,\s+1 zombie", top), top
    assert "load average: 0.63, 0.18, 0.06" in top and "worker" in top
    assert run_with_proc(tree, "pgrep -l work").split() == ["7", "worker"]
    assert run_with_proc(tree, "pgrep -f 'jobs 2'").split() == ["7"]
    assert run_with_proc(tree, "pidof worker").split() == ["7"]
    vmstat = run_with_proc(tree, "vmstat").splitlines()
    assert vmstat[1].split()[:2] == ["r", "b"] and len(vmstat[2].split()) == 17
    pmap = run_with_proc(tree, "pmap -x 7").splitlines()
    assert pmap[0] == "7:   /usr/bin/worker --jobs 2" and "[ stack ]" in "".join(pmap)
