"""Identity, limits, scheduling, info, clock and sleep calls against a fake task.

Struct layouts are checked field by field; errno choices are compared with the host
kernel where the same raw call is harmless to run natively (native_calls), and against
Linux's documented order of checks otherwise.  CPU-time figures come from the test
process itself standing in for the application's host process.
"""
from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from snakevisor.kernel.task import RLIM_INFINITY, ThreadGroup, Task
from snakevisor.syscalls import sys_cred, sys_info, sys_time
from tests.unit.conftest import MEM_BASE, MEM_SIZE, FakeProcess, In, Out, call_blocking, native_calls

BAD = 8  # an address no test mapping covers
U64 = (1 << 64) - 1
NSEC = 1_000_000_000


class Process(FakeProcess):
    """FakeProcess whose calls end like the kernel's: a completed call drops its memo."""

    def raw(self, name: str, *args: int) -> int:
        ret = super().raw(name, *args)
        self.task.syscall_state = None
        return ret


def sandbox() -> Process:
    """A fake process whose 'host process' is this test process (for CPU figures)."""
    p = Process(None)
    k = p.kernel
    k.hostname, k.domainname = b"box", b"(none)"
    k.boot_monotonic = time.monotonic() - 100.25
    k.thread_groups = {1: p.tg}
    p.host.pid = os.getpid()
    p.task.thread = SimpleNamespace(tid=threading.get_native_id())
    return p


def add_process(p: FakeProcess, pid: int, parent: ThreadGroup | None = None) -> Task:
    tg = ThreadGroup(p.kernel, pid, parent, p.tg.mm, None, None)  # type: ignore[arg-type]
    task = Task(p.kernel, pid, tg, SimpleNamespace(tid=threading.get_native_id()))  # type: ignore[arg-type]
    tg.tasks.append(task)
    p.kernel.thread_groups[pid] = tg
    return task


def drop_privileges(p: FakeProcess, uid: int = 1000) -> None:
    """setresuid as a program would do it: the capabilities follow the ids."""
    assert p.call("setresuid", uid, uid, uid) == 0
    assert p.call("capget", In(struct.pack("<Ii", 0x20080522, 0)), Out(24)) == 0
    assert sys_cred.caps_of(p.tg).effective == 0


def unmap_page(p: FakeProcess, addr: int) -> None:
    """Punch a hole into the fake address space (the next access there is EFAULT)."""
    p.tg.mm._carve(addr, addr + 4096)


def cstr(field: bytes) -> bytes:
    return field.split(b"\0", 1)[0]


# ------------------------------------------------------------------------------ uname

def test_uname_layout_and_names() -> None:
    p = sandbox()
    ret, buf = p.run([("uname", Out(390))])[0]
    assert ret == 0
    fields = [cstr(buf[i * 65:(i + 1) * 65]) for i in range(6)]
    host = os.uname()
    assert fields == [b"Linux", b"box", host.release.encode(), host.version.encode(),
                      b"x86_64", b"(none)"]
    assert p.call("uname", BAD) == -errno.EFAULT


def test_sethostname_and_domainname() -> None:
    p = sandbox()
    assert p.call("sethostname", In(b"inner"), 5) == 0
    assert p.kernel.hostname == b"inner"
    assert cstr(p.run([("uname", Out(390))])[0][1][65:130]) == b"inner"
    assert p.call("sethostname", In(b"x" * 64), 64) == 0
    assert p.call("sethostname", In(b"x" * 65), 65) == -errno.EINVAL
    assert p.call("sethostname", In(b"x"), -1) == -errno.EINVAL
    assert p.call("sethostname", BAD, 3) == -errno.EFAULT
    assert p.call("sethostname", 0, 0) == 0 and p.kernel.hostname == b""
    assert p.call("setdomainname", In(b"example.org"), 11) == 0
    assert p.kernel.domainname == b"example.org"
    drop_privileges(p)  # without privilege EPERM comes before the length check
    assert p.call("sethostname", In(b"x" * 65), 65) == -errno.EPERM
    assert p.call("setdomainname", In(b"y"), 1) == -errno.EPERM


# ------------------------------------------------------------------------------ ids

def test_pid_numbering() -> None:
    p = sandbox()
    assert (p.call("getpid"), p.call("gettid"), p.call("getppid")) == (1, 1, 0)
    child = add_process(p, 7, p.tg)
    p.task = child
    assert (p.call("getpid"), p.call("gettid"), p.call("getppid")) == (7, 7, 1)


def test_identity_getters() -> None:
    p = sandbox()
    c = p.tg.creds
    c.ruid, c.euid, c.suid, c.rgid, c.egid, c.sgid = 1, 2, 3, 4, 5, 6
    c.groups = [10, 20, 30]
    assert [p.call(n) for n in ("getuid", "geteuid", "getgid", "getegid")] == [1, 2, 4, 5]
    ret, r, e, s = p.run([("getresuid", Out(4), Out(4), Out(4))])[0]
    assert ret == 0 and [struct.unpack("<I", x)[0] for x in (r, e, s)] == [1, 2, 3]
    ret, r, e, s = p.run([("getresgid", Out(4), Out(4), Out(4))])[0]
    assert ret == 0 and [struct.unpack("<I", x)[0] for x in (r, e, s)] == [4, 5, 6]
    assert p.call("getresuid", Out(4), BAD, Out(4)) == -errno.EFAULT
    assert p.call("getgroups", 0, 0) == 3
    ret, lst = p.run([("getgroups", 8, Out(32))])[0]
    assert ret == 3 and struct.unpack("<3I", lst[:12]) == (10, 20, 30) and lst[12:] == bytes(20)
    assert p.call("getgroups", 2, Out(8)) == -errno.EINVAL
    assert p.call("getgroups", -1, Out(8)) == -errno.EINVAL
    assert p.call("getgroups", 3, BAD) == -errno.EFAULT


# ------------------------------------------------------------------------------ sysinfo

def test_sysinfo_layout() -> None:
    p = sandbox()
    add_process(p, 2, p.tg)
    ret, buf = p.run([("sysinfo", Out(112))])[0]
    assert ret == 0
    (uptime, l1, l5, l15, total, free, shared, buffers, tswap, fswap, procs, pad,
     thigh, fhigh, unit) = sys_info.SYSINFO.unpack(buf)
    assert uptime == 101  # 100.25 s rounds up, as Linux does
    assert (l1, l5, l15, thigh, fhigh, unit) == (0, 0, 0, 0, 0, 1)
    meminfo = dict(line.split(":", 1) for line in open("/proc/meminfo"))
    assert total == int(meminfo["MemTotal"].split()[0]) * 1024
    assert 0 < free <= total and tswap >= fswap
    assert procs == 2
    assert p.call("sysinfo", BAD) == -errno.EFAULT


# ------------------------------------------------------------------------------ getrandom

def test_getrandom_flags_and_faults() -> None:
    p = sandbox()
    ret, a = p.run([("getrandom", Out(64), 64, 0)])[0]
    assert ret == 64 and a != bytes(64)
    for flags in (1, 2, 4, 5, 3):
        assert p.call("getrandom", Out(8), 8, flags) == 8
    assert p.call("getrandom", Out(8), 8, 6) == -errno.EINVAL  # INSECURE|RANDOM
    assert p.call("getrandom", Out(8), 8, 8) == -errno.EINVAL
    assert p.call("getrandom", 0, 0, 0) == 0
    assert p.call("getrandom", BAD, 1, 0) == -errno.EFAULT
    assert p.call("getrandom", 0xFFFFFFFFFFFF0000, 0, 0) == -errno.EFAULT  # access_ok
    # a hole two pages in: the call fills up to it and reports the short count
    base = MEM_BASE + MEM_SIZE - 4 * 4096
    unmap_page(p, base + 2 * 4096)
    assert p.call("getrandom", base + 100, 3 * 4096, 0) == 2 * 4096 - 100
    assert p.call("getrandom", base + 2 * 4096, 16, 0) == -errno.EFAULT


def test_getrandom_native_parity() -> None:
    ops = [("getrandom", Out(8), 8, 6), ("getrandom", Out(8), 8, 8), ("getrandom", 0, 0, 0),
           ("getrandom", BAD, 1, 0), ("getrandom", Out(8), 8, 1)]
    native = [r[0] for r in native_calls("/", ops, readonly=False)]
    assert [r[0] for r in sandbox().run(ops)] == native


def test_getrandom_large_request_yields_between_slices() -> None:
    p = sandbox()
    size = sys_info.GETRANDOM_SLICE + 5000
    addr = MEM_BASE + 4096
    block = call_blocking(p, "getrandom", addr, size, 0)
    assert block.deadline is not None and block.deadline <= time.monotonic()
    assert p.task.syscall_state == {"count": size, "done": sys_info.GETRANDOM_SLICE}
    assert p.raw("getrandom", addr, size, 0) == size
    assert p.get(addr + size - 5000, 5000) != bytes(5000)


# ------------------------------------------------------------------------------ rlimits

def rlimit(p: FakeProcess, resource: int) -> tuple[int, int]:
    ret, buf = p.run([("getrlimit", resource, Out(16))])[0]
    assert ret == 0
    return struct.unpack("<QQ", buf)


def test_rlimits_roundtrip_and_errors() -> None:
    p = sandbox()
    soft, hard = rlimit(p, 7)
    assert p.tg.rlimits[7] == [soft, hard]
    assert p.call("setrlimit", 7, In(struct.pack("<QQ", 64, 4096))) == 0
    assert rlimit(p, 7) == (64, 4096)
    ret, old = p.run([("prlimit64", 0, 7, In(struct.pack("<QQ", 100, 4096)), Out(16))])[0]
    assert ret == 0 and struct.unpack("<QQ", old) == (64, 4096)
    assert rlimit(p, 7) == (100, 4096)
    assert p.call("prlimit64", 1, 7, 0, Out(16)) == 0  # own pid
    assert p.call("getrlimit", 16, Out(16)) == -errno.EINVAL
    assert p.call("setrlimit", 7, In(struct.pack("<QQ", 10, 5))) == -errno.EINVAL
    assert p.call("setrlimit", 7, In(struct.pack("<QQ", 10, (1 << 20) + 1))) == -errno.EPERM
    assert p.call("setrlimit", 7, In(struct.pack("<QQ", 10, RLIM_INFINITY))) == -errno.EPERM
    assert p.call("setrlimit", 7, BAD) == -errno.EFAULT
    assert p.call("getrlimit", 7, BAD) == -errno.EFAULT
    assert p.call("prlimit64", 99, 7, 0, Out(16)) == -errno.ESRCH
    assert p.call("prlimit64", 99, 7, BAD, Out(16)) == -errno.EFAULT  # copied in first
    assert p.call("prlimit64", 0, 99, 0, Out(16)) == -errno.EINVAL
    # the new limit is installed even when the old one cannot be copied out
    assert p.call("prlimit64", 0, 7, In(struct.pack("<QQ", 50, 4096)), BAD) == -errno.EFAULT
    assert rlimit(p, 7) == (50, 4096)
    # root may raise a hard limit; others may only lower it
    assert p.call("setrlimit", 3, In(struct.pack("<QQ", RLIM_INFINITY, RLIM_INFINITY))) == 0
    drop_privileges(p)
    assert p.call("setrlimit", 7, In(struct.pack("<QQ", 50, 5000))) == -errno.EPERM
    assert p.call("setrlimit", 7, In(struct.pack("<QQ", 50, 2000))) == 0
    assert rlimit(p, 7) == (50, 2000)


def test_rlimit_cpu_is_stored_with_a_warning() -> None:
    p = sandbox()
    assert p.call("setrlimit", 0, In(struct.pack("<QQ", 5, RLIM_INFINITY))) == 0
    assert rlimit(p, 0) == (5, RLIM_INFINITY)
    assert "rlimit-cpu" in p.kernel.warnings


def test_prlimit_of_another_process_needs_matching_ids() -> None:
    p = sandbox()
    other = add_process(p, 5, p.tg)
    assert p.call("prlimit64", 5, 7, In(struct.pack("<QQ", 32, 64)), 0) == 0
    assert other.tg.rlimits[7] == [32, 64]
    other.tg.creds.ruid = other.tg.creds.euid = other.tg.creds.suid = 42
    drop_privileges(p, 7)
    assert p.call("prlimit64", 5, 7, 0, Out(16)) == -errno.EPERM


def test_rlimit_native_parity() -> None:
    ops = [("getrlimit", 16, Out(16)), ("prlimit64", 0, 99, 0, Out(16)),
           ("setrlimit", 7, In(struct.pack("<QQ", 10, 5))),
           ("setrlimit", 7, In(struct.pack("<QQ", 10, RLIM_INFINITY))),
           ("getrlimit", 7, BAD), ("prlimit64", 0x7FFFFFF0, 7, 0, Out(16))]
    native = [r[0] for r in native_calls("/", ops, readonly=False)]
    assert [r[0] for r in sandbox().run(ops)] == native


# ------------------------------------------------------------------------------ scheduling

def test_sched_getaffinity_matches_host() -> None:
    ops = [("sched_getaffinity", 0, n, Out(1024)) for n in (0, 4, 8, 12, 16, 64, 1024)]
    ops += [("sched_getaffinity", 0x7FFFFFF0, 8, Out(8)), ("sched_getaffinity", 0, 8, BAD),
            ("sched_getaffinity", 0, 0x20000000, Out(8))]
    native = native_calls("/", ops, readonly=False)
    ours = sandbox().run(ops)
    assert [r[0] for r in ours] == [r[0] for r in native]
    for (ret, *buf), (_, *nbuf) in zip(ours, native):
        if ret > 0:
            assert buf[0][:ret] == nbuf[0][:ret]


def test_sched_setaffinity_records_subsets() -> None:
    p = sandbox()
    allowed = sys_info.allowed_cpus(p.task)
    lowest = allowed & -allowed
    assert p.call("sched_setaffinity", 0, 8, In(lowest.to_bytes(8, "little"))) == 0
    ret, buf = p.run([("sched_getaffinity", 0, 8, Out(8))])[0]
    assert int.from_bytes(buf[:8], "little") == lowest
    # CPUs outside the allowed set are dropped; nothing left is EINVAL
    outside = 1 << 63
    assert p.call("sched_setaffinity", 0, 8, In((outside | allowed).to_bytes(8, "little"))) == 0
    assert sys_info.thread_state(p.task).cpus == allowed
    assert p.call("sched_setaffinity", 0, 8, In(outside.to_bytes(8, "little"))) == -errno.EINVAL
    assert p.call("sched_setaffinity", 0, 0, In(b"")) == -errno.EINVAL
    assert p.call("sched_setaffinity", 0, 8, BAD) == -errno.EFAULT
    assert p.call("sched_setaffinity", 99, 8, In(allowed.to_bytes(8, "little"))) == -errno.ESRCH
    assert p.call("sched_yield") == 0


def test_affinity_is_per_thread_and_inherited() -> None:
    p = sandbox()
    other = add_process(p, 3, p.tg)
    allowed = sys_info.allowed_cpus(p.task)
    lowest = allowed & -allowed
    assert p.call("sched_setaffinity", 3, 8, In(lowest.to_bytes(8, "little"))) == 0
    assert sys_info.thread_state(other).cpus == lowest
    assert sys_info.thread_state(p.task).cpus == allowed
    child = add_process(p, 4, other.tg)
    sys_info.inherit_sched(other, child)
    assert sys_info.thread_state(child).cpus == lowest


def test_getcpu_reports_an_allowed_cpu() -> None:
    p = sandbox()
    ret, cpu, node = p.run([("getcpu", Out(4), Out(4), 0)])[0]
    assert ret == 0
    assert sys_info.allowed_cpus(p.task) >> struct.unpack("<I", cpu)[0] & 1
    assert struct.unpack("<I", node)[0] >= 0
    assert p.call("getcpu", 0, 0, 0) == 0
    assert p.call("getcpu", BAD, 0, 0) == -errno.EFAULT


def test_priorities() -> None:
    p = sandbox()
    base = 20 - os.getpriority(os.PRIO_PROCESS, 0)
    assert p.call("getpriority", 0, 0) == base
    assert p.call("setpriority", 0, 0, 5) == 0
    assert p.call("getpriority", 0, 1) == 15
    assert p.call("setpriority", 0, 0, 100) == 0  # clamped to 19
    assert p.call("getpriority", 0, 0) == 1
    assert p.call("getpriority", 3, 0) == -errno.EINVAL
    assert p.call("getpriority", 0, 99) == -errno.ESRCH
    assert p.call("setpriority", 0, 99, 0) == -errno.ESRCH
    other = add_process(p, 2, p.tg)
    sys_info.thread_state(other).nice = -3
    assert p.call("getpriority", 1, 0) == 23  # the process group: the best of its threads
    assert p.call("getpriority", 2, 0) == 23  # every thread of our user
    assert p.call("setpriority", 1, 0, 2) == 0
    assert sys_info.thread_state(other).nice == 2
    # unprivileged: raising priority past RLIMIT_NICE is EACCES, others' threads EPERM
    p.tg.rlimits[13] = [0, 0]
    drop_privileges(p)
    assert p.call("setpriority", 0, 0, 0) == -errno.EACCES
    assert p.call("setpriority", 0, 0, 10) == 0
    assert p.call("setpriority", 0, 2, 10) == -errno.EPERM


def test_priority_native_parity() -> None:
    ops = [("getpriority", 3, 0), ("getpriority", -1, 0), ("getpriority", 0, 0x7FFFFFF0),
           ("getpriority", 0, -5)]
    native = [r[0] for r in native_calls("/", ops, readonly=False)]
    assert [r[0] for r in sandbox().run(ops)] == native


def test_personality() -> None:
    p = sandbox()
    assert p.call("personality", 0xFFFFFFFF) == 0
    assert p.call("personality", 0x0040000) == 0
    assert p.call("personality", 0xFFFFFFFF) == 0x0040000
    assert p.call("personality", 0x0008) == -errno.EINVAL  # PER_LINUX32: not modelled
    assert any(k.startswith("personality:") for k in p.kernel.warnings)
    assert p.call("personality", 0) == 0x0040000


# ------------------------------------------------------------------------------ clocks

def timespec(buf: bytes) -> int:
    sec, nsec = struct.unpack("<qq", buf)
    return sec * NSEC + nsec


@pytest.mark.parametrize("clock", [0, 1, 4, 5, 6, 7, 11])
def test_clock_gettime_host_clocks(clock: int) -> None:
    p = sandbox()
    before = time.clock_gettime_ns(clock)
    ret, buf = p.run([("clock_gettime", clock, Out(16))])[0]
    after = time.clock_gettime_ns(clock)
    assert ret == 0 and before <= timespec(buf) <= after


def test_clock_gettime_errors() -> None:
    p = sandbox()
    for clock in (10, 12, 1000, -1 << 31 | 3, (~0 << 3) | 3, (~0 << 3) | 7):
        assert p.call("clock_gettime", clock & 0xFFFFFFFF, Out(16)) == -errno.EINVAL, clock
    assert p.call("clock_gettime", 1, BAD) == -errno.EFAULT
    assert p.call("clock_gettime", 1, 0) == -errno.EFAULT
    assert p.call("clock_gettime", 12345, BAD) == -errno.EINVAL  # the clock is checked first


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_clocks_measure_the_host_process_and_thread() -> None:
    p = sandbox()
    burn(0.05)
    proc_before = time.process_time_ns()
    thread_before = time.thread_time_ns()
    results = p.run([("clock_gettime", 2, Out(16)), ("clock_gettime", 3, Out(16))])
    proc_after = time.process_time_ns()
    thread_after = time.thread_time_ns()
    assert proc_before <= timespec(results[0][1]) <= proc_after
    assert thread_before <= timespec(results[1][1]) <= thread_after
    # clock_getcpuclockid(1) and pthread_getcpuclockid encodings
    pid_clock = ((~1 << 3) | 2) & 0xFFFFFFFF
    tid_clock = ((~1 << 3) | 6) & 0xFFFFFFFF
    prof_clock = ((~1 << 3) | 0) & 0xFFFFFFFF
    ret, buf = p.run([("clock_gettime", pid_clock, Out(16))])[0]
    assert ret == 0 and timespec(buf) >= proc_before
    ret, buf = p.run([("clock_gettime", tid_clock, Out(16))])[0]
    assert ret == 0 and timespec(buf) >= thread_before
    ret, buf = p.run([("clock_gettime", prof_clock, Out(16))])[0]
    assert ret == 0 and timespec(buf) > 0
    # another process's thread clock and unknown pids are EINVAL
    add_process(p, 9, p.tg)
    assert p.call("clock_gettime", ((~9 << 3) | 6) & 0xFFFFFFFF, Out(16)) == -errno.EINVAL
    assert p.call("clock_gettime", ((~9 << 3) | 2) & 0xFFFFFFFF, Out(16)) == 0
    assert p.call("clock_gettime", ((~77 << 3) | 2) & 0xFFFFFFFF, Out(16)) == -errno.EINVAL


def test_clock_getres_matches_host() -> None:
    clocks = list(range(13)) + [(~0 << 3) | 0, (~0 << 3) | 2, (~0 << 3) | 6, (~0 << 3) | 3]
    ops = [("clock_getres", c & 0xFFFFFFFF, Out(16)) for c in clocks]
    ops += [("clock_getres", 1, 0), ("clock_getres", 1, BAD), ("clock_getres", 99, 0)]
    native = native_calls("/", ops, readonly=False)
    ours = sandbox().run(ops)
    assert [r[0] for r in ours] == [r[0] for r in native]
    for (ret, *buf), (_, *nbuf) in zip(ours, native):
        if ret == 0 and buf:
            assert buf == nbuf


def test_gettimeofday_and_time() -> None:
    p = sandbox()
    before = time.time_ns() // 1000
    ret, tv, tz = p.run([("gettimeofday", Out(16), Out(8))])[0]
    sec, usec = struct.unpack("<qq", tv)
    assert ret == 0 and 0 <= usec < 1_000_000 and before <= sec * 1_000_000 + usec
    assert tz == bytes(8)
    assert p.call("gettimeofday", 0, 0) == 0
    assert p.call("gettimeofday", BAD, 0) == -errno.EFAULT
    assert p.call("gettimeofday", Out(16), BAD) == -errno.EFAULT
    ret, tloc = p.run([("time", Out(8))])[0]
    assert abs(ret - time.time()) <= 1 and struct.unpack("<q", tloc)[0] == ret
    assert abs(p.call("time", 0) - time.time()) <= 1
    assert p.call("time", BAD) == -errno.EFAULT


def test_setting_clocks_is_refused_after_validation() -> None:
    p = sandbox()
    good = In(struct.pack("<qq", 1_700_000_000, 0))
    assert p.call("settimeofday", good, 0) == -errno.EPERM
    assert p.call("settimeofday", 0, 0) == -errno.EPERM
    assert p.call("settimeofday", In(struct.pack("<qq", 0, 1_000_001)), 0) == -errno.EINVAL
    assert p.call("settimeofday", In(struct.pack("<qq", -1, 0)), 0) == -errno.EINVAL
    assert p.call("settimeofday", BAD, 0) == -errno.EFAULT
    assert p.call("clock_settime", 0, good) == -errno.EPERM
    assert p.call("clock_settime", 0, In(struct.pack("<qq", 0, NSEC))) == -errno.EINVAL
    assert p.call("clock_settime", 0, BAD) == -errno.EFAULT
    assert p.call("clock_settime", 1, good) == -errno.EINVAL  # monotonic cannot be set
    assert p.call("clock_settime", 2, good) == -errno.EINVAL
    assert p.call("clock_settime", ((~0 << 3) | 2) & 0xFFFFFFFF, good) == -errno.EPERM


# ------------------------------------------------------------------------------ sleeping

def ts(sec: int, nsec: int) -> In:
    return In(struct.pack("<qq", sec, nsec))


def test_nanosleep_parks_until_the_deadline() -> None:
    p = sandbox()
    req = p.put(struct.pack("<qq", 0, 30_000_000))
    start = time.monotonic()
    block = call_blocking(p, "nanosleep", req, 0)
    assert block.fd is None and block.queue is None
    assert start + 0.029 <= block.deadline <= time.monotonic() + 0.031
    state = dict(p.task.syscall_state)
    again = call_blocking(p, "nanosleep", req, 0)  # woken early: parks again, same target
    assert p.task.syscall_state["sleep_until"] == state["sleep_until"]
    assert again.deadline <= block.deadline + 0.001
    time.sleep(max(0.0, block.deadline - time.monotonic()) + 0.001)
    assert p.raw("nanosleep", req, 0) == 0


def test_sleep_argument_errors() -> None:
    p = sandbox()
    assert p.call("nanosleep", ts(0, NSEC), 0) == -errno.EINVAL
    assert p.call("nanosleep", ts(0, -1), 0) == -errno.EINVAL
    assert p.call("nanosleep", ts(-1, 0), 0) == -errno.EINVAL
    assert p.call("nanosleep", BAD, 0) == -errno.EFAULT
    assert p.call("nanosleep", ts(0, 0), 0) == 0
    assert p.call("clock_nanosleep", 1, 1, ts(1, 0), 0) == 0  # absolute, long past


def test_clock_nanosleep_errnos_match_host() -> None:
    # every request is invalid or already due, so the native side never waits
    past = struct.pack("<qq", 1, 0)
    ops = []
    for clock in [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, (~0 << 3) | 3, (~1 << 3) | 6]:
        ops.append(("clock_nanosleep", clock & 0xFFFFFFFF, 1, In(past), 0))
        ops.append(("clock_nanosleep", clock & 0xFFFFFFFF, 0, In(struct.pack("<qq", 0, NSEC)), 0))
    ops.append(("clock_nanosleep", 1, 0, BAD, 0))
    native = [r[0] for r in native_calls("/", ops, readonly=False)]
    ours = [r[0] for r in sandbox().run(ops)]
    # CAP_WAKE_ALARM: the host runner has it, the sandbox never does
    fixed = [-errno.EPERM if n == 0 and op[1] in (8, 9) and o == -errno.EPERM else n
             for n, o, op in zip(native, ours, ops)]
    assert ours == fixed


def test_clock_nanosleep_absolute_realtime_and_cpu_clocks() -> None:
    p = sandbox()
    target = time.clock_gettime_ns(0) + 50_000_000
    req = p.put(struct.pack("<qq", *divmod(target, NSEC)))
    block = call_blocking(p, "clock_nanosleep", 0, 1, req, 0)
    assert 0.03 < block.deadline - time.monotonic() <= 0.05
    assert p.task.syscall_state["sleep_until"] == target
    p.task.syscall_state = None
    # process CPU time: parks and polls, finishes once enough CPU has been used
    req = p.put(struct.pack("<qq", 0, 20_000_000))
    block = call_blocking(p, "clock_nanosleep", 2, 0, req, 0)
    assert block.deadline > time.monotonic()
    burn(0.03)
    assert p.raw("clock_nanosleep", 2, 0, req, 0) == 0
    p.task.syscall_state = None
    own_thread = ((~1 << 3) | 6) & 0xFFFFFFFF
    assert p.call("clock_nanosleep", own_thread, 0, ts(0, 1), 0) == -errno.EINVAL


def test_long_sleeps_park_at_most_a_day_at_a_time() -> None:
    p = sandbox()
    req = p.put(struct.pack("<qq", (1 << 63) - 1, 0))
    block = call_blocking(p, "nanosleep", req, 0)
    assert block.deadline <= time.monotonic() + sys_time.MAX_PARK


# ------------------------------------------------------------------------------ usage

def test_getrusage_reports_the_host_process() -> None:
    p = sandbox()
    burn(0.05)
    ret, buf = p.run([("getrusage", 0, Out(144))])[0]
    assert ret == 0
    f = sys_time.RUSAGE.unpack(buf)
    user = f[0] + f[1] / 1e6
    system = f[2] + f[3] / 1e6
    assert 0 <= f[1] < 1_000_000 and 0 <= f[3] < 1_000_000
    assert abs(user + system - time.process_time()) < 0.05
    maxrss = int([ln for ln in open("/proc/self/status") if ln.startswith("VmHWM")][0].split()[1])
    assert abs(f[4] - maxrss) <= maxrss // 10 and f[8] > 0  # ru_maxrss KiB, ru_minflt
    ret, buf = p.run([("getrusage", 1, Out(144))])[0]
    assert ret == 0 and sys_time.RUSAGE.unpack(buf)[0:4] != (0, 0, 0, 0)
    ret, buf = p.run([("getrusage", (-1) & U64, Out(144))])[0]
    assert ret == 0 and buf == bytes(144)
    assert p.call("getrusage", 2, Out(144)) == -errno.EINVAL
    assert p.call("getrusage", 0, BAD) == -errno.EFAULT


class Owner:
    pass


def test_reported_cpu_time_never_goes_back() -> None:
    owner = Owner()
    t = sys_time.CpuTimes
    assert sys_time.split_cputime(owner, 1, t(10, 10, 100, 0, 0)) == (50, 50)
    assert sys_time.split_cputime(owner, 1, t(30, 10, 120, 0, 0)) == (70, 50)
    assert sys_time.split_cputime(owner, 1, t(30, 10, 110, 0, 0)) == (70, 50)  # rtime lags
    assert sys_time.split_cputime(owner, 1, t(0, 40, 130, 0, 0))[1] == 130
    assert sys_time.split_cputime(owner, 2, t(5, 5, 10, 0, 0)) == (5, 5)  # new host process


def test_times() -> None:
    p = sandbox()
    burn(0.05)
    ret, buf = p.run([("times", Out(32))])[0]
    utime, stime, cutime, cstime = struct.unpack("<4q", buf)
    uptime = time.monotonic() - p.kernel.boot_monotonic
    assert abs(ret - uptime * sys_time.USER_HZ) <= 1
    hz = sys_time.USER_HZ
    assert abs((utime + stime) / hz - time.process_time()) < 0.05 and cutime == cstime == 0
    assert p.call("times", 0) > 0
    assert p.call("times", BAD) == -errno.EFAULT


def rusage(p: FakeProcess, who: int) -> tuple:
    ret, buf = p.run([("getrusage", who & U64, Out(144))])[0]
    assert ret == 0
    return sys_time.RUSAGE.unpack(buf)


def test_reaped_children_are_accounted() -> None:
    p = sandbox()
    child = add_process(p, 2, p.tg)
    grandchild = add_process(p, 3, child.tg)
    burn(0.05)
    # the grandchild exits and is reaped by the child, then the child by us
    grandchild.tg.final_usage = sys_time.snapshot_usage(grandchild.tg)
    sys_time.account_child_exit(child.tg, grandchild.tg)
    mine = child.tg.final_usage = sys_time.snapshot_usage(child.tg)
    assert sys_time.snapshot_usage(child.tg).utime >= mine.utime
    own = sys_time.own_usage(child)
    assert mine.utime >= 2 * sys_time.children_usage(child.tg).utime - 1  # own + grandchild's
    assert mine.maxrss == own.maxrss > 0
    sys_time.account_child_exit(p.tg, child.tg)
    assert sys_time.children_usage(p.tg) == mine
    assert mine.pack() == p.run([("getrusage", (-1) & U64, Out(144))])[0][1]  # wait4's too
    f = rusage(p, -1)
    assert f[0] * NSEC + f[1] * 1000 == mine.utime // 1000 * 1000
    assert f[2] * NSEC + f[3] * 1000 == mine.stime // 1000 * 1000
    assert (f[4], f[8], f[9]) == (mine.maxrss, mine.minflt, mine.majflt)
    assert f[8] > 0
    ret, buf = p.run([("times", Out(32))])[0]
    cutime, cstime = struct.unpack("<4q", buf)[2:]
    assert (cutime, cstime) == (mine.utime // sys_time.TICK_NS, mine.stime // sys_time.TICK_NS)
    # accumulating: a second child adds up; maxrss is the largest, not a sum
    sys_time.add_child_usage(p.tg, sys_time.Usage(NSEC, 0, 1, 2, 3))
    g = rusage(p, -1)
    assert g[0] * NSEC + g[1] * 1000 == (mine.utime + NSEC) // 1000 * 1000
    assert (g[4], g[8], g[9]) == (mine.maxrss, mine.minflt + 2, mine.majflt + 3)
    assert rusage(p, 0)[0:4] != g[0:4]  # RUSAGE_SELF is not the children's


def test_snapshot_of_a_vanished_process_keeps_its_children() -> None:
    p = sandbox()
    child = add_process(p, 2, p.tg)
    sys_time.add_child_usage(child.tg, sys_time.Usage(5, 6, 7, 8, 9))
    child.tg.mm = None  # its host process is gone
    assert sys_time.snapshot_usage(child.tg) == sys_time.Usage(5, 6, 7, 8, 9)


def test_exec_carries_cpu_time_over() -> None:
    p = sandbox()
    burn(0.05)
    before = sys_time.process_times(p.tg)
    sys_time.usage_exec(p.tg)  # as if the next image were a new host process ...
    after = sys_time.process_times(p.tg)  # ... which is this one again: counted twice
    assert after.runtime >= 2 * before.runtime
    assert after.minflt >= 2 * before.minflt
    ret, buf = p.run([("clock_gettime", 2, Out(16))])[0]
    assert ret == 0 and timespec(buf) >= 2 * before.runtime


def test_virtual_and_prof_clocks_derive_from_runtime() -> None:
    p = sandbox()
    burn(0.02)
    t = sys_time.process_times(p.tg)
    prof = sys_time.sample_cpu_clock(sys_time.CpuClock(sys_time.CPUCLOCK_PROF, None, p.tg))
    virt = sys_time.sample_cpu_clock(sys_time.CpuClock(sys_time.CPUCLOCK_VIRT, None, p.tg))
    assert prof >= t.runtime and virt <= prof
    assert virt >= t.runtime - t.stime - sys_time.TICK_NS  # one more tick of system time at most


# ------------------------------------------------------------------------------ end to end

def sandboxed(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC",
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "snakevisor", "do", "--", *argv], env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_e2e_uname_date_and_sleep() -> None:
    res = sandboxed("/bin/uname", "-a")
    assert res.returncode == 0, res.stderr
    host = os.uname()
    words = res.stdout.split()
    assert words[0] == "Linux" and words[2] == host.release and words[-2:] == ["x86_64", "GNU/Linux"]
    res = sandboxed("/bin/date", "+%s")
    assert res.returncode == 0 and abs(int(res.stdout) - time.time()) < 5, res.stderr
    start = time.monotonic()
    res = sandboxed("/bin/sleep", "0.4")
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - start >= 0.4


@pytest.mark.slow
def test_e2e_python_clocks_ids_and_usage() -> None:
    script = (
        "import os, resource, time\n"
        "t0, c0 = time.monotonic(), time.process_time()\n"
        "sum(range(2_000_000))\n"
        "cpu = time.process_time() - c0\n"
        "time.sleep(0.05)\n"
        "ru = resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(os.getpid(), os.getppid(), os.getuid(), os.uname().sysname)\n"
        "print(cpu > 0, time.thread_time() > 0, time.monotonic() - t0 >= 0.05)\n"
        "print(ru.ru_utime + ru.ru_stime > 0, ru.ru_maxrss > 0, len(os.sched_getaffinity(0)) > 0)\n"
        "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0] > 0, len(os.urandom(64)))\n")
    res = sandboxed("/usr/bin/python3", "-c", script)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n") == ["1 0 0 Linux", "True True True", "True True True",
                                      "True 64", ""]


def test_interrupted_sleep_reports_the_time_left() -> None:
    """The kernel calls syscall_state["on_interrupt"](task) when a handler cuts a sleep."""
    p = sandbox()
    req, rem = p.put(struct.pack("<qq", 5, 0)), p.alloc(16)
    call_blocking(p, "nanosleep", req, rem)
    hook = p.task.syscall_state["on_interrupt"]
    assert hook(p.task) is None
    left = timespec(p.get(rem, 16))
    assert 4 * NSEC < left <= 5 * NSEC
    p.task.syscall_state = None
    call_blocking(p, "clock_nanosleep", 1, 0, req, BAD)
    assert p.task.syscall_state["on_interrupt"](p.task) == -errno.EFAULT
    p.task.syscall_state = None
    call_blocking(p, "nanosleep", req, 0)  # no rem: nothing to report
    assert "on_interrupt" not in p.task.syscall_state
    p.task.syscall_state = None
    future = p.put(struct.pack("<qq", time.clock_gettime_ns(1) // NSEC + 60, 0))
    call_blocking(p, "clock_nanosleep", 1, 1, future, rem)  # absolute: rem is not written
    assert "on_interrupt" not in p.task.syscall_state
