"""Credentials, capabilities, scheduling policies and prctl against a fake task.

The oracle is the host kernel: each scenario is a sequence of raw calls that runs through
our handlers and natively (native_calls, as root in a throwaway process) and must give the
same results -- ids, capability sets, errnos.  The host's bounding set may lack some
capabilities the sandbox's root has (a container runtime drops them), so capability words
are compared with those bits masked out.  What cannot be run natively without harm or is
host-dependent (exec transitions, fork inheritance, refused prctl options) is checked
against Linux's documented rules.
"""
from __future__ import annotations

import errno
import os
import struct
import threading
from types import SimpleNamespace

from snakevisor.kernel.task import Task, ThreadGroup
from snakevisor.syscalls import sys_cred, sys_info
from snakevisor.syscalls.sys_cred import CAP_FULL_SET, CAP_SETUID, caps_of
from tests.unit.conftest import FakeProcess, In, Out, native_calls

BAD = 8
NO = 0xFFFFFFFF  # (uid_t)-1
V1, V2, V3 = 0x19980330, 0x20071026, 0x20080522
PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_GET_DUMPABLE, PR_SET_DUMPABLE = 1, 2, 3, 4
PR_GET_KEEPCAPS, PR_SET_KEEPCAPS, PR_SET_NAME, PR_GET_NAME = 7, 8, 15, 16
PR_GET_SECCOMP, PR_SET_SECCOMP, PR_CAPBSET_READ, PR_CAPBSET_DROP = 21, 22, 23, 24
PR_GET_SECUREBITS, PR_SET_SECUREBITS, PR_SET_TIMERSLACK, PR_GET_TIMERSLACK = 27, 28, 29, 30
PR_SET_MM, PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 35, 36, 37
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS, PR_GET_TID_ADDRESS = 38, 39, 40
PR_SET_THP_DISABLE, PR_GET_THP_DISABLE, PR_CAP_AMBIENT, PR_SET_VMA = 41, 42, 47, 0x53564D41
SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE = 0, 1, 2, 3, 5
RESET_ON_FORK = 0x40000000


def sandbox() -> FakeProcess:
    p = FakeProcess(None)
    p.kernel.thread_groups = {1: p.tg}
    p.task.thread = SimpleNamespace(tid=threading.get_native_id())
    return p


def add_thread(p: FakeProcess, tid: int, tg: ThreadGroup | None = None) -> Task:
    tg = tg or p.tg
    task = Task(p.kernel, tid, tg, SimpleNamespace(tid=threading.get_native_id()))  # type: ignore[arg-type]
    tg.tasks.append(task)
    return task


def add_process(p: FakeProcess, pid: int) -> Task:
    tg = ThreadGroup(p.kernel, pid, p.tg, p.tg.mm, None, None)  # type: ignore[arg-type]
    p.kernel.thread_groups[pid] = tg
    return add_thread(p, pid, tg)


# -- ops that read state back -----------------------------------------------------------

def ids() -> list[tuple]:
    return [("getresuid", Out(4), Out(4), Out(4)), ("getresgid", Out(4), Out(4), Out(4)),
            ("setfsuid", NO), ("setfsgid", NO)]


def capget(version: int = V3, pid: int = 0, words: int = 2) -> tuple:
    return ("capget", In(struct.pack("<Ii", version, pid)), Out(12 * words))


def caps() -> list[tuple]:
    return [capget(), ("prctl", PR_CAP_AMBIENT, 1, 0, 0, 0)]


def capset(e: int, p: int, i: int = 0, version: int = V3, pid: int = 0) -> tuple:
    data = struct.pack("<6I", e & NO, p & NO, i & NO, e >> 32, p >> 32, i >> 32)
    return ("capset", In(struct.pack("<Ii", version, pid)), In(data))


def host_bounding() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return CAP_FULL_SET


#: capabilities the sandbox's root has and this host's root may not
MISSING = CAP_FULL_SET & ~host_bounding()


def normalise(ops: list[tuple], results: list[list]) -> list:
    """Results with capget words reduced to the capabilities both sides can have."""
    out = []
    for op, (ret, *bufs) in zip(ops, results):
        if op[0] == "capget" and ret == 0 and bufs:
            words = struct.unpack(f"<{len(bufs[0]) // 4}I", bufs[0])
            bufs = [tuple(w & ~(MISSING >> (32 * (i // 3))) & NO for i, w in enumerate(words))]
        out.append([ret, *bufs])
    return out


def same_as_linux(ops: list[tuple]) -> list:
    ours = normalise(ops, sandbox().run(ops))
    native = normalise(ops, native_calls("/", ops, readonly=False))
    assert ours == native
    return ours


# ------------------------------------------------------------------------------ uids

def test_setuid_from_root_drops_everything() -> None:
    same_as_linux([("setuid", 1000), *ids(), *caps(), ("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0),
                   ("setuid", 0), ("setuid", 1000), ("setuid", NO), ("setgid", 5)])


def test_saved_root_uid_keeps_permitted_caps() -> None:
    same_as_linux([("prctl", PR_SET_PDEATHSIG, 9, 0, 0, 0), ("setresuid", 1000, 1000, 0),
                   *ids(), *caps(), ("prctl", PR_GET_PDEATHSIG, Out(4), 0, 0, 0),
                   ("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0),
                   ("setuid", 0), *ids(), *caps(), ("setuid", 2000), ("setresuid", NO, 0, NO),
                   *ids(), *caps(), ("setreuid", NO, 1000), ("setreuid", 1000, 0), *ids()])


def test_setreuid_and_setresuid_rules_for_non_root() -> None:
    same_as_linux([("setreuid", 1000, 2000), *ids(), *caps(), ("setreuid", 2000, NO), *ids(),
                   ("setreuid", 3000, NO), ("setreuid", NO, 1000), ("setresuid", NO, NO, 3000),
                   ("setresuid", 2000, 2000, 2000), ("setresuid", NO, NO, NO), *ids(),
                   ("setuid", 1000), ("setreuid", NO, NO)])


def test_setreuid_saved_uid_rules() -> None:
    same_as_linux([("setreuid", NO, 1000), *ids(), *caps(), ("setreuid", NO, 0), *ids(),
                   ("setresuid", 5, 6, 7), *ids(), ("setreuid", 7, NO), *ids(),
                   ("setreuid", NO, 5), *ids(), ("setreuid", 6, 6), *ids()])


def test_keepcaps_keeps_permitted_across_setuid() -> None:
    same_as_linux([("prctl", PR_SET_KEEPCAPS, 1, 0, 0, 0), ("setuid", 1000), *ids(), *caps(),
                   ("prctl", PR_GET_KEEPCAPS, 0, 0, 0, 0), ("prctl", PR_GET_SECUREBITS, 0, 0, 0, 0),
                   ("setuid", 0), ("setresuid", NO, 0, NO), ("setresuid", 0, 0, 0), *caps()])


def test_setfsuid_moves_the_filesystem_capabilities() -> None:
    same_as_linux([("setfsuid", 1000), *ids(), *caps(), ("setfsuid", 0), *ids(), *caps(),
                   ("setfsgid", 55), *ids(), ("setresuid", NO, 7, NO), *ids(), *caps(),
                   ("setfsuid", 7), ("setfsuid", 8), ("setfsuid", 0), *ids(), *caps(),
                   ("setfsgid", 9), *ids()])


# ------------------------------------------------------------------------------ gids and groups

def test_gids_and_supplementary_groups() -> None:
    groups = In(struct.pack("<5I", 30, 10, 20, 10, 0))
    same_as_linux([("setgroups", 5, groups), ("getgroups", 8, Out(32)), ("getgroups", 0, 0),
                   ("getgroups", 4, Out(16)), ("setgroups", 1, In(struct.pack("<I", NO))),
                   ("setgroups", 65537, groups), ("setgroups", -1, groups),
                   ("setgroups", 2, BAD), ("setgroups", 0, 0), ("getgroups", 0, 0),
                   ("setgid", 5), *ids(), ("setregid", 6, 7), *ids(),
                   ("setresgid", 1, 2, 3), *ids(), ("setuid", 100), ("setgid", 5),
                   ("setgid", 2), *ids(), ("setgid", 1), *ids(), ("setregid", 3, NO), *ids(),
                   ("setregid", NO, 9), ("setresgid", NO, NO, 2), ("setresgid", 3, 1, 1),
                   *ids(), ("setgroups", 0, 0), ("setgid", NO), ("setregid", NO, NO),
                   ("setfsgid", 3), ("setfsgid", 77), *ids()])


def test_setgroups_checks_ids_before_the_fault() -> None:
    p = sandbox()
    last = p.alloc(4096 * 2)
    p.tg.mm._carve((last + 4096) & ~4095, ((last + 4096) & ~4095) + 4096)
    edge = ((last + 4096) & ~4095) - 4
    p.host.write(edge, struct.pack("<I", NO))
    assert p.call("setgroups", 2, edge) == -errno.EINVAL  # Linux reads one id at a time
    p.host.write(edge, struct.pack("<I", 5))
    assert p.call("setgroups", 2, edge) == -errno.EFAULT
    assert p.tg.creds.groups == []


# ------------------------------------------------------------------------------ capabilities

def test_capget_versions_and_probe() -> None:
    same_as_linux([("capget", In(struct.pack("<Ii", 0x12345, 0)), 0),
                   ("capget", In(struct.pack("<Ii", 0x12345, 0)), Out(24)),
                   capget(V1, words=1), capget(V2), capget(V3), capget(V3, -1),
                   capget(V3, 0x7FFFFFF0), ("capget", BAD, Out(24)), ("capget", In(struct.pack("<Ii", V3, 0)), BAD),
                   capset(0, 0, pid=0x7FFFFFF0)])


def test_capget_probe_writes_the_preferred_version() -> None:
    p = sandbox()
    header = p.put(struct.pack("<Ii", 0x12345, 0))
    assert p.call("capget", header, 0) == 0
    assert struct.unpack("<I", p.get(header, 4))[0] == V3
    p.host.write(header, struct.pack("<I", 7))
    assert p.call("capget", header, p.alloc(24)) == -errno.EINVAL
    assert struct.unpack("<I", p.get(header, 4))[0] == V3


def test_root_holds_the_whole_bounding_set() -> None:
    p = sandbox()
    ret, data = p.run([capget()])[0]
    e0, p0, i0, e1, p1, i1 = struct.unpack("<6I", data)
    assert ret == 0 and (e1 << 32 | e0) == (p1 << 32 | p0) == (1 << 41) - 1 and i0 == i1 == 0
    assert p.call("prctl", PR_CAPBSET_READ, 40, 0, 0, 0) == 1
    assert p.call("prctl", PR_CAPBSET_READ, 41, 0, 0, 0) == -errno.EINVAL
    assert p.call("prctl", PR_CAPBSET_READ, -1, 0, 0, 0) == -errno.EINVAL


def test_capset_rules() -> None:
    full = CAP_FULL_SET & host_bounding()  # what both sides' root holds
    same_as_linux([capset(0, full), *caps(), ("setuid", 5), *ids(),
                   capset(1, full), capset(1, full, 1), *caps(), capset(1, full | 1 << 40, 1),
                   capset(4, 3), capset(2, 3), *caps(), capset(2, 7), capset(2, 3, 1),
                   capget(V1, words=1), capset(2, 1, version=V1), *caps(),
                   ("setuid", 0), capset(0, 0, version=0x1234)])


def test_capset_keeps_upper_words_of_v1_zero_and_clips_to_valid_caps() -> None:
    p = sandbox()
    everything = (1 << 64) - 1
    assert p.run([capset(everything, everything)])[0][0] == 0  # clipped to the valid caps
    caps = caps_of(p.tg)
    assert caps.effective == caps.permitted == CAP_FULL_SET
    assert p.run([capset(1 << 63 | 1, 1 << 63 | 1)])[0][0] == 0
    assert (caps.effective, caps.permitted) == (1, 1)  # bits past CAP_LAST_CAP are dropped


def test_capset_of_another_process_is_refused() -> None:
    p = sandbox()
    other = add_process(p, 5)
    assert p.run([capset(0, 0, pid=5)])[0][0] == -errno.EPERM
    assert p.run([capset(1, 1, pid=1)])[0][0] == 0  # one's own pid
    ret, data = p.run([capget(pid=5)])[0]
    assert ret == 0 and struct.unpack("<I", data[:4])[0] == CAP_FULL_SET & NO
    assert caps_of(other.tg).effective == CAP_FULL_SET


def test_bounding_and_ambient_sets() -> None:
    same_as_linux([("prctl", PR_CAPBSET_DROP, 0, 0, 0, 0), ("prctl", PR_CAPBSET_READ, 0, 0, 0, 0),
                   *caps(), ("prctl", PR_CAPBSET_DROP, 41, 0, 0, 0),
                   capset(CAP_FULL_SET & host_bounding(), CAP_FULL_SET & host_bounding(), 3),
                   capset(CAP_FULL_SET & host_bounding(), CAP_FULL_SET & host_bounding(), 2),
                   ("prctl", PR_CAP_AMBIENT, 2, 1, 0, 0), ("prctl", PR_CAP_AMBIENT, 2, 0, 0, 0),
                   ("prctl", PR_CAP_AMBIENT, 1, 1, 0, 0), ("prctl", PR_CAP_AMBIENT, 1, 1, 1, 0),
                   ("prctl", PR_CAP_AMBIENT, 9, 0, 0, 0), ("prctl", PR_CAP_AMBIENT, 4, 1, 0, 0),
                   ("prctl", PR_CAP_AMBIENT, 1, 41, 0, 0), ("prctl", PR_CAP_AMBIENT, 3, 1, 0, 0),
                   ("prctl", PR_CAP_AMBIENT, 1, 1, 0, 0), ("prctl", PR_CAP_AMBIENT, 2, 1, 0, 0),
                   ("setuid", 1000), *caps(), ("prctl", PR_CAP_AMBIENT, 1, 1, 0, 0),
                   ("prctl", PR_CAPBSET_DROP, 1, 0, 0, 0), ("prctl", PR_CAP_AMBIENT, 4, 0, 0, 0)])


def test_securebits() -> None:
    same_as_linux([("prctl", PR_SET_SECUREBITS, 0x3, 0, 0, 0), ("prctl", PR_SET_SECUREBITS, 0x1, 0, 0, 0),
                   ("prctl", PR_SET_SECUREBITS, 0x2, 0, 0, 0), ("prctl", PR_SET_SECUREBITS, 0x7, 0, 0, 0),
                   ("prctl", PR_SET_KEEPCAPS, 2, 0, 0, 0), ("prctl", PR_SET_KEEPCAPS, 1, 0, 0, 0),
                   ("prctl", PR_SET_SECUREBITS, 0x33, 0, 0, 0), ("prctl", PR_SET_KEEPCAPS, 0, 0, 0, 0),
                   ("prctl", PR_GET_SECUREBITS, 0, 0, 0, 0), ("prctl", PR_SET_SECUREBITS, 0x37, 0, 0, 0),
                   ("prctl", PR_SET_SECUREBITS, 0x1000, 0, 0, 0),
                   ("prctl", PR_SET_SECUREBITS, 0x537, 0, 0, 0),
                   ("prctl", PR_SET_SECUREBITS, 0x33, 0, 0, 0), ("setuid", 1000), *caps(),
                   ("prctl", PR_GET_SECUREBITS, 0, 0, 0, 0), ("prctl", PR_SET_SECUREBITS, 0x37, 0, 0, 0)])


def test_no_setuid_fixup_keeps_capabilities() -> None:
    same_as_linux([("prctl", PR_SET_SECUREBITS, 0x4, 0, 0, 0), ("setuid", 1000), *caps(),
                   ("setfsuid", 0), *caps(), ("prctl", PR_SET_SECUREBITS, 0, 0, 0, 0),
                   ("prctl", PR_GET_SECUREBITS, 0, 0, 0, 0)])


# ------------------------------------------------------------------------------ fork and exec

def test_creds_fork_copies_capability_state() -> None:
    p = sandbox()
    assert p.run([capset(1, 3)])[0][0] == 0
    assert p.call("prctl", PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    child = add_process(p, 2)
    sys_cred.creds_fork(p.tg, child.tg)
    assert (caps_of(child.tg).effective, caps_of(child.tg).permitted) == (1, 3)
    assert sys_cred.dumpable(child.tg) == 0
    caps_of(child.tg).effective = 0
    assert caps_of(p.tg).effective == 1  # a copy, not a share


def test_exec_as_root_regains_the_bounding_set() -> None:
    p = sandbox()
    assert p.run([capset(0, 1)])[0][0] == 0
    assert p.call("prctl", PR_CAPBSET_DROP, 5, 0, 0, 0) == -errno.EPERM  # no CAP_SETPCAP now
    caps = caps_of(p.tg)
    caps.bounding &= ~(1 << 5)
    assert p.call("prctl", PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0
    assert sys_cred.creds_exec(p.task) is False
    assert caps.permitted == caps.effective == CAP_FULL_SET & ~(1 << 5)
    assert caps.securebits == 0  # KEEP_CAPS is cleared by execve
    assert sys_cred.dumpable(p.tg) == 0  # permitted grew: commit_creds makes it non-dumpable


def test_exec_resets_saved_ids_and_follows_euid() -> None:
    p = sandbox()
    c = p.tg.creds
    assert p.call("setresgid", 5, 6, 7) == 0
    assert p.call("setresuid", 1000, 1000, 0) == 0
    assert sys_cred.creds_exec(p.task) is True  # egid != rgid: AT_SECURE, as Linux
    assert (c.ruid, c.euid, c.suid, c.fsuid) == (1000, 1000, 1000, 1000)
    assert (c.rgid, c.egid, c.sgid, c.fsgid) == (5, 6, 6, 6)
    caps = caps_of(p.tg)
    assert caps.permitted == caps.effective == 0  # a non-root exec loses the kept set
    assert p.call("setuid", 0) == -errno.EPERM


def test_exec_with_effective_root_only_is_secure() -> None:
    p = sandbox()
    assert p.call("setresuid", 1000, 0, 0) == 0
    assert p.call("prctl", PR_SET_PDEATHSIG, 10, 0, 0, 0) == 0
    assert sys_cred.exec_secure(p.tg) is True and p.task.pdeathsig == 10  # only a question
    assert sys_cred.creds_exec(p.task) is True  # AT_SECURE: set-user-ID-like privilege
    assert caps_of(p.tg).effective == CAP_FULL_SET
    assert p.task.pdeathsig == 0
    assert sys_cred.dumpable(p.tg) == sys_cred.suid_dumpable()


def test_exec_ambient_capabilities_survive_for_non_root() -> None:
    p = sandbox()
    assert p.run([capset(CAP_FULL_SET, CAP_FULL_SET, 1 << CAP_SETUID)])[0][0] == 0
    assert p.call("prctl", PR_CAP_AMBIENT, 2, CAP_SETUID, 0, 0) == 0
    assert p.call("setresuid", 1000, 1000, 1000) == 0
    assert caps_of(p.tg).ambient == 0  # leaving root clears the ambient set ...
    p = sandbox()
    assert p.run([capset(CAP_FULL_SET, CAP_FULL_SET, 1 << CAP_SETUID)])[0][0] == 0
    assert p.call("prctl", PR_SET_SECUREBITS, 0x10, 0, 0, 0) == 0  # keep caps
    assert p.call("prctl", PR_CAP_AMBIENT, 2, CAP_SETUID, 0, 0) == 0
    caps_of(p.tg).securebits |= sys_cred.SECBIT_NO_SETUID_FIXUP  # ... unless told not to
    assert p.call("setresuid", 1000, 1000, 1000) == 0
    assert sys_cred.creds_exec(p.task) is False
    caps = caps_of(p.tg)
    assert caps.permitted == caps.effective == caps.ambient == 1 << CAP_SETUID


def test_capability_checks_follow_the_effective_set() -> None:
    p = sandbox()
    assert p.call("sethostname", In(b"a"), 1) == 0
    assert p.run([capset(0, CAP_FULL_SET)])[0][0] == 0  # root without effective caps
    assert p.call("sethostname", In(b"b"), 1) == -errno.EPERM
    assert p.call("setuid", 5) == -errno.EPERM
    assert p.call("setgroups", 0, 0) == -errno.EPERM


# ------------------------------------------------------------------------------ scheduling

def test_sched_policies_match_linux() -> None:
    sp = [In(struct.pack("<i", n)) for n in (0, 1, 5, 99, 100, -1)]
    ops = [("sched_getscheduler", 0), ("sched_getparam", 0, Out(4)),
           ("sched_setscheduler", 0, 7, sp[0]), ("sched_setscheduler", 0, 4, sp[0]),
           ("sched_setscheduler", 0, 6, sp[0]), ("sched_setscheduler", 0, SCHED_FIFO, sp[0]),
           ("sched_setscheduler", 0, SCHED_FIFO, sp[4]), ("sched_setscheduler", 0, SCHED_FIFO, sp[5]),
           ("sched_setscheduler", 0, SCHED_OTHER, sp[1]), ("sched_setscheduler", 0, -1, sp[0]),
           ("sched_setscheduler", -1, 0, sp[0]), ("sched_setscheduler", 0, 0, 0),
           ("sched_setscheduler", 0, 0, BAD), ("sched_setscheduler", 0x7FFFFFF0, 0, BAD),
           ("sched_setscheduler", 0x7FFFFFF0, 0, sp[0]), ("sched_setscheduler", 0x7FFFFFF0, 99, sp[0]),
           ("sched_setscheduler", 0, 99, BAD),
           ("sched_setscheduler", 0, RESET_ON_FORK | SCHED_BATCH, sp[0]), ("sched_getscheduler", 0),
           ("sched_setparam", 0, sp[0]), ("sched_getscheduler", 0), ("sched_setparam", 0, sp[1]),
           ("sched_setscheduler", 0, SCHED_IDLE, sp[1]), ("sched_setscheduler", 0, SCHED_IDLE, sp[0]),
           ("sched_getscheduler", 0), ("sched_setscheduler", 0, SCHED_OTHER, sp[0]),
           ("sched_getscheduler", -1), ("sched_getscheduler", 0x7FFFFFF0), ("sched_getparam", 0, 0),
           ("sched_getparam", -1, Out(4)), ("sched_getparam", 0x7FFFFFF0, BAD), ("sched_getparam", 0, BAD),
           ("sched_rr_get_interval", -1, Out(16)), ("sched_rr_get_interval", 0x7FFFFFF0, BAD),
           ("sched_rr_get_interval", 0, BAD), ("sched_rr_get_interval", 0, Out(16)),
           ("setpriority", 0, 0, 5),
           ("sched_setscheduler", 0, SCHED_RR, sp[2]), ("sched_getscheduler", 0),
           ("sched_getparam", 0, Out(4)), ("sched_rr_get_interval", 0, Out(16)),
           ("prctl", PR_SET_TIMERSLACK, 1000, 0, 0, 0), ("prctl", PR_GET_TIMERSLACK, 0, 0, 0, 0),
           ("sched_setparam", 0, sp[3]), ("sched_getparam", 0, Out(4)),
           ("sched_setscheduler", 0, SCHED_FIFO, sp[1]), ("sched_rr_get_interval", 0, Out(16)),
           ("sched_setscheduler", 0, SCHED_OTHER, sp[0]), ("getpriority", 0, 0),
           ("prctl", PR_GET_TIMERSLACK, 0, 0, 0, 0)]
    ops += [("sched_get_priority_max", n) for n in (0, 1, 2, 3, 4, 5, 6, -1, 99)]
    ops += [("sched_get_priority_min", n) for n in (0, 1, 2, 3, 4, 5, 6, -1, 99)]
    same_as_linux(ops)


def test_sched_unprivileged_rules() -> None:
    p = sandbox()
    sp = p.put(struct.pack("<i", 1))
    zero = p.put(struct.pack("<i", 0))
    p.tg.rlimits[14] = [0, 0]  # RLIMIT_RTPRIO
    p.tg.rlimits[13] = [0, 0]  # RLIMIT_NICE
    other = add_process(p, 2)  # stays root
    assert p.call("sched_setscheduler", 0, SCHED_IDLE, zero) == 0
    assert p.call("setresuid", 1000, 1000, 1000) == 0
    assert p.call("sched_setscheduler", 0, SCHED_FIFO, sp) == -errno.EPERM
    assert p.call("sched_setscheduler", 0, SCHED_OTHER, zero) == -errno.EPERM  # leaving IDLE
    p.tg.rlimits[13] = [20, 20]
    assert p.call("sched_setscheduler", 0, SCHED_BATCH, zero) == 0
    p.tg.rlimits[14] = [5, 5]
    assert p.call("sched_setscheduler", 0, SCHED_RR, sp) == 0  # within RLIMIT_RTPRIO
    assert p.call("sched_setscheduler", 0, SCHED_RR, p.put(struct.pack("<i", 6))) == -errno.EPERM
    assert p.call("sched_setscheduler", 2, SCHED_BATCH, zero) == -errno.EPERM  # root's thread
    assert sys_info.thread_state(other).policy == SCHED_OTHER


def test_reset_on_fork_and_inheritance() -> None:
    p = sandbox()
    state = sys_info.thread_state(p.task)
    assert p.call("sched_setscheduler", 0, SCHED_RR | RESET_ON_FORK, p.put(struct.pack("<i", 7))) == 0
    assert p.call("setpriority", 0, 0, -5) == 0
    assert p.call("prctl", PR_SET_PDEATHSIG, 15, 0, 0, 0) == 0
    assert p.call("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    child = add_thread(p, 2)
    sys_info.inherit_sched(p.task, child)
    cs = sys_info.thread_state(child)
    assert (cs.policy, cs.rt_priority, cs.nice, cs.reset_on_fork) == (SCHED_OTHER, 0, 0, False)
    assert cs.no_new_privs
    assert (state.policy, state.rt_priority, state.nice) == (SCHED_RR, 7, -5)
    # a normal policy survives the flag, a negative nice does not; without it both stay
    assert p.call("sched_setscheduler", 0, SCHED_BATCH | RESET_ON_FORK, p.put(bytes(4))) == 0
    grandchild = add_thread(p, 3)
    sys_info.inherit_sched(p.task, grandchild)
    gs = sys_info.thread_state(grandchild)
    assert (gs.policy, gs.nice) == (SCHED_BATCH, 0)
    assert p.call("sched_setscheduler", 0, SCHED_BATCH, p.put(bytes(4))) == 0
    last = add_thread(p, 4)
    sys_info.inherit_sched(p.task, last)
    assert (sys_info.thread_state(last).policy, sys_info.thread_state(last).nice) == (SCHED_BATCH, -5)


def test_sched_calls_on_other_threads() -> None:
    p = sandbox()
    other = add_thread(p, 9)
    assert p.call("sched_setscheduler", 9, SCHED_FIFO, p.put(struct.pack("<i", 50))) == 0
    assert p.call("sched_getscheduler", 9) == SCHED_FIFO
    assert p.call("sched_getscheduler", 0) == SCHED_OTHER
    ret, prio = p.run([("sched_getparam", 9, Out(4))])[0]
    assert ret == 0 and struct.unpack("<i", prio)[0] == 50
    assert sys_info.thread_state(other).timer_slack == 0


# ------------------------------------------------------------------------------ prctl

def test_prctl_matches_linux() -> None:
    same_as_linux([
        ("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0), ("prctl", PR_SET_DUMPABLE, 2, 0, 0, 0),
        ("prctl", PR_SET_DUMPABLE, 0, 0, 0, 0), ("prctl", PR_GET_DUMPABLE, 0, 0, 0, 0),
        ("prctl", PR_SET_DUMPABLE, 1, 0, 0, 0),
        ("prctl", PR_SET_PDEATHSIG, 65, 0, 0, 0), ("prctl", PR_SET_PDEATHSIG, -1, 0, 0, 0),
        ("prctl", PR_SET_PDEATHSIG, 10, 0, 0, 0), ("prctl", PR_GET_PDEATHSIG, Out(4), 0, 0, 0),
        ("prctl", PR_GET_PDEATHSIG, BAD, 0, 0, 0),
        ("prctl", PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), ("prctl", PR_GET_NO_NEW_PRIVS, 1, 0, 0, 0),
        ("prctl", PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0), ("prctl", PR_SET_NO_NEW_PRIVS, 1, 1, 0, 0),
        ("prctl", PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), ("prctl", PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0),
        ("prctl", PR_GET_CHILD_SUBREAPER, Out(4), 0, 0, 0),
        ("prctl", PR_SET_CHILD_SUBREAPER, 5, 0, 0, 0), ("prctl", PR_GET_CHILD_SUBREAPER, Out(4), 0, 0, 0),
        ("prctl", PR_GET_CHILD_SUBREAPER, BAD, 0, 0, 0),
        ("prctl", PR_GET_KEEPCAPS, 0, 0, 0, 0), ("prctl", PR_GET_TIMERSLACK, 0, 0, 0, 0),
        ("prctl", PR_SET_TIMERSLACK, 1000, 0, 0, 0), ("prctl", PR_GET_TIMERSLACK, 0, 0, 0, 0),
        ("prctl", PR_SET_TIMERSLACK, 0, 0, 0, 0), ("prctl", PR_GET_TIMERSLACK, 0, 0, 0, 0),
        ("prctl", PR_SET_NAME, "0123456789abcdefghij", 0, 0, 0), ("prctl", PR_GET_NAME, Out(16), 0, 0, 0),
        ("prctl", PR_SET_NAME, "", 0, 0, 0), ("prctl", PR_GET_NAME, Out(16), 0, 0, 0),
        ("prctl", PR_SET_NAME, "x", 0, 0, 0), ("prctl", PR_GET_NAME, Out(20), 0, 0, 0),
        ("prctl", PR_SET_NAME, BAD, 0, 0, 0), ("prctl", PR_GET_NAME, BAD, 0, 0, 0),
        ("prctl", PR_GET_TID_ADDRESS, BAD, 0, 0, 0),
        ("prctl", PR_SET_VMA, 0, 0, 0, 0), ("prctl", PR_SET_VMA, 1, 0, 0, 0), ("prctl", 9999, 0, 0, 0, 0),
        ("prctl", PR_SET_SECCOMP, 0, 0, 0, 0),
        ("prctl", PR_GET_THP_DISABLE, 0, 0, 0, 0), ("prctl", PR_GET_THP_DISABLE, 1, 0, 0, 0),
        ("prctl", PR_SET_THP_DISABLE, 1, 0, 0, 0), ("prctl", PR_GET_THP_DISABLE, 0, 0, 0, 0),
        ("prctl", PR_SET_THP_DISABLE, 0, 1, 0, 0), ("prctl", PR_SET_THP_DISABLE, 0, 0, 0, 0),
        ("prctl", PR_SET_TIMERSLACK, -1, 0, 0, 0), ("prctl", PR_GET_TIMERSLACK, 0, 0, 0, 0)])


def test_prctl_state_lands_where_the_kernel_reads_it() -> None:
    p = sandbox()
    assert p.call("prctl", PR_SET_NAME, "worker-thread-number-7", 0, 0, 0) == 0
    assert p.task.comm == b"worker-thread-n"
    assert p.call("prctl", PR_SET_PDEATHSIG, 9, 0, 0, 0) == 0
    assert p.task.pdeathsig == 9
    assert p.call("prctl", PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    assert p.tg.subreaper is True
    p.task.clear_child_tid = 0x10001234
    ret, addr = p.run([("prctl", PR_GET_TID_ADDRESS, Out(8), 0, 0, 0)])[0]
    assert ret == 0 and struct.unpack("<Q", addr)[0] == 0x10001234
    # a credential change clears the caller's death signal and dumpable flag
    assert p.call("setuid", 0) == 0 and p.task.pdeathsig == 9  # no change
    assert p.call("setresuid", NO, 5, NO) == 0
    assert p.task.pdeathsig == 0
    assert sys_cred.dumpable(p.tg) == sys_cred.suid_dumpable()


def test_prctl_refusals_are_logged() -> None:
    p = sandbox()
    assert p.call("prctl", PR_GET_SECCOMP, 0, 0, 0, 0) == 0
    assert p.call("prctl", PR_SET_SECCOMP, 2, 0, 0, 0) == -errno.EINVAL
    assert p.call("prctl", PR_SET_MM, 1, 0, 0, 0) == -errno.EPERM
    assert p.call("prctl", 0x59616D61, 0, 0, 0, 0) == -errno.EINVAL  # PR_SET_PTRACER (Yama)
    assert {"prctl:PR_SET_SECCOMP", "prctl:PR_SET_MM", f"prctl:{0x59616D61}"} <= set(p.kernel.warnings)


def test_rr_interval_of_the_fair_class_is_the_hosts() -> None:
    p = sandbox()
    ret, buf = p.run([("sched_rr_get_interval", 0, Out(16))])[0]
    sec, nsec = struct.unpack("<qq", buf)
    assert ret == 0 and sec * 10**9 + nsec == round(os.sched_rr_get_interval(0) * 1e9)


def test_sched_yield() -> None:
    assert sandbox().call("sched_yield") == 0
