"""System V shared memory: shmget, shmat, shmdt, shmctl (segments: kernel/shm.py).

shmat is mmap(MAP_SHARED) of the segment's tmpfs file through AddressSpace.map, so the
host kernel shares the pages between stubs exactly as for any shared file mapping.
"""
from __future__ import annotations

import struct
import time
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EACCES, EINVAL, ENOMEM, EPERM, SyscallError
from snakevisor.kernel.shm import (
    SHMALL, SHMMAX, SHMMIN, SHMMNI, ShmAttachment, ShmSegment, ShmTable, shm_table,
)
from snakevisor.kernel.sysvipc import max_index
from snakevisor.kernel.task import RLIM_INFINITY
from snakevisor.mm.address_space import (
    MAP_FIXED, MAP_SHARED, PAGE, PROT_EXEC, PROT_READ, PROT_WRITE, page_up,
)
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32
from snakevisor.syscalls.sys_cred import has_cap

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC = 0o10000, 0o20000, 0o40000, 0o100000
SHMLBA = PAGE
IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO, SHM_STAT_ANY = 11, 12, 13, 14, 15
CAP_IPC_LOCK = 14
RLIMIT_MEMLOCK = 8
#: struct shmid64_ds on x86_64: ipc64_perm (key, uid, gid, cuid, cgid, mode, seq, 2 unused
#: longs), segsz, atime, dtime, ctime, cpid, lpid, nattch, 2 unused longs
SHMID_DS = struct.Struct("<iIIIIIH2x4xQQ" "QqqqiiQQQ")
SHMINFO = struct.Struct("<9Q")  # shmmax, shmmin, shmmni, shmseg, shmall, 4 unused
SHM_INFO_S = struct.Struct("<i4x5Q")  # used_ids, shm_tot, shm_rss, shm_swp, 2 swap counters


@syscall("shmget")
def sys_shmget(task: "Task", key: int, size: int, flags: int, *_: int) -> int:
    return shm_table(task.kernel).get(task, s32(key), size, s32(flags))


@syscall("shmat", partial="SHM_REMAP replaces mappings as MAP_FIXED does")
def sys_shmat(task: "Task", shmid: int, addr: int, flags: int, *_: int) -> int:
    flags = s32(flags)
    seg = shm_table(task.kernel).lookup(s32(shmid))
    if addr % SHMLBA:
        if not flags & SHM_RND:
            raise SyscallError(EINVAL)
        addr -= addr % SHMLBA
        if addr == 0 and flags & SHM_REMAP:
            raise SyscallError(EINVAL)
    prot, wanted = PROT_READ, 0o444
    if not flags & SHM_RDONLY:
        prot, wanted = prot | PROT_WRITE, wanted | 0o222
    if flags & SHM_EXEC:
        prot, wanted = prot | PROT_EXEC, wanted | 0o111
    if not seg.permits(task, (wanted >> 6 | wanted >> 3 | wanted) & 7):
        raise SyscallError(EACCES)
    length = page_up(seg.size)
    mm = task.mm
    map_flags = MAP_SHARED
    if addr:
        if not flags & SHM_REMAP and not mm.is_free(addr, addr + length):
            raise SyscallError(EINVAL)
        map_flags |= MAP_FIXED
    att = seg.attach_file()
    att.refs += 1  # held across the mapping call, so a failure releases it below
    try:
        result = mm.map(addr, length, prot, map_flags, att, 0, att.path)
    finally:
        from snakevisor.vfs.file import put
        put(att)
    seg.atime, seg.lpid = int(time.time()), task.tg.pid
    return result


@syscall("shmdt")
def sys_shmdt(task: "Task", addr: int, *_: int) -> int:
    """Unmap every piece of the attach at addr (Linux: VMAs of that file, offset-aligned)."""
    if addr % SHMLBA:
        raise SyscallError(EINVAL)
    mm = task.mm
    first = mm.find(addr)
    if (first is None or first.start != addr or first.offset != 0
            or not isinstance(first.file, ShmAttachment)):
        raise SyscallError(EINVAL)
    seg = first.file.segment
    end = addr + page_up(seg.size)
    pieces = [v for v in mm.vmas if addr <= v.start < end and isinstance(v.file, ShmAttachment)
              and v.file.segment is seg and v.start - addr == v.offset]
    for vma in pieces:
        mm.unmap(vma.start, vma.end - vma.start)
    seg.lpid = task.tg.pid
    return 0


def _stat_bytes(seg: ShmSegment) -> bytes:
    return SHMID_DS.pack(seg.key, seg.uid, seg.gid, seg.cuid, seg.cgid, seg.shown_mode, seg.seq,
                         0, 0, seg.size, seg.atime, seg.dtime, seg.ctime, seg.cpid, seg.lpid,
                         seg.nattch, 0, 0)


def _shm_stat(task: "Task", table: ShmTable, shmid: int, cmd: int, buf: int) -> int:
    """IPC_STAT takes an id and returns 0; SHM_STAT(_ANY) take an index and return the id.
    All but SHM_STAT_ANY need read permission (EACCES)."""
    seg = table.lookup(shmid) if cmd == IPC_STAT else table.at_index(shmid)
    if cmd != SHM_STAT_ANY and not seg.permits(task, 0o4):
        raise SyscallError(EACCES)
    task.mm.write(buf, _stat_bytes(seg))
    return 0 if cmd == IPC_STAT else seg.id


def _shm_lock(task: "Task", table: ShmTable, seg: ShmSegment, cmd: int) -> int:
    """shmctl_do_lock: without CAP_IPC_LOCK only the owner or creator, and SHM_LOCK needs a
    non-zero RLIMIT_MEMLOCK that the caller's locked segments fit in (else ENOMEM)."""
    limit: int | None = None
    if not has_cap(task, CAP_IPC_LOCK):
        if task.tg.creds.euid not in (seg.uid, seg.cuid):
            raise SyscallError(EPERM)
        soft = task.tg.rlimits[RLIMIT_MEMLOCK][0]
        if cmd == SHM_LOCK and soft == 0:
            raise SyscallError(EPERM)
        limit = None if soft == RLIM_INFINITY else soft
    if cmd == SHM_UNLOCK:
        table.unlock(seg)
    elif not table.lock(seg, task.tg.creds.ruid, limit):
        raise SyscallError(ENOMEM)
    return 0


@syscall("shmctl", partial="SHM_LOCK/SHM_UNLOCK account RLIMIT_MEMLOCK and show the flag "
                           "but do not pin the pages in host memory")
def sys_shmctl(task: "Task", shmid: int, cmd: int, buf: int, *_: int) -> int:
    table = shm_table(task.kernel)
    cmd, shmid = s32(cmd), s32(shmid)
    if cmd < 0 or shmid < 0:
        raise SyscallError(EINVAL)
    if cmd == IPC_INFO:
        task.mm.write(buf, SHMINFO.pack(SHMMAX, SHMMIN, SHMMNI, SHMMNI, SHMALL, 0, 0, 0, 0))
        return max_index(table.segments)
    if cmd == SHM_INFO:
        segs = table.segments.values()
        task.mm.write(buf, SHM_INFO_S.pack(len(table.segments), sum(s.pages for s in segs),
                                           sum(s.resident for s in segs), 0, 0, 0))
        return max_index(table.segments)
    if cmd in (IPC_STAT, SHM_STAT, SHM_STAT_ANY):
        return _shm_stat(task, table, shmid, cmd, buf)
    if cmd not in (IPC_SET, IPC_RMID, SHM_LOCK, SHM_UNLOCK):
        raise SyscallError(EINVAL)
    raw = task.mm.read(buf, SHMID_DS.size) if cmd == IPC_SET else b""
    seg = table.lookup(shmid)
    if cmd in (SHM_LOCK, SHM_UNLOCK):
        return _shm_lock(task, table, seg, cmd)
    if not seg.is_owner(task):
        raise SyscallError(EPERM)
    if cmd == IPC_SET:
        fields = SHMID_DS.unpack(raw)
        seg.uid, seg.gid, seg.mode = fields[1], fields[2], fields[5] & 0o777
        seg.ctime = int(time.time())
        return 0
    table.remove(seg)
    return 0
