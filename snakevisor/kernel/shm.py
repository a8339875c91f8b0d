"""The sandbox's System V shared memory segments (Linux's ipc/shm.c, one IPC namespace).

Why this shape: a segment must be the very same bytes in every process that attaches it,
so each one is a nameless file on the sandbox's internal tmpfs (a host memfd the sentry
owns, as memfd_create's) and shmat is an ordinary MAP_SHARED mapping of it through
AddressSpace.map.  Each attach maps its own open description (ShmAttachment); the VMAs
hold references to it exactly as Linux's vm_ops->open/close count shm_nattch — fork copies
and munmap splits add one, every VMA that goes drops one — so nattch is the sum of those
references and the last one gone destroys a segment already marked by IPC_RMID.
"""
from __future__ import annotations

import stat as st_
import time
from typing import TYPE_CHECKING

from snakevisor.fsimpl.tmpfs import TmpfsFile, TmpfsFileDescription
from snakevisor.kernel.errors import EACCES, EEXIST, EINVAL, ENOENT, ENOSPC, SyscallError

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task

IPC_PRIVATE = 0
IPC_CREAT, IPC_EXCL = 0o1000, 0o2000
SHM_DEST, SHM_LOCKED = 0o1000, 0o2000  #: status bits shown in shm_perm.mode
SHMMIN, SHMMNI = 1, 4096
SHMMAX = SHMALL = (1 << 64) - 1 - (1 << 24)  #: Linux's defaults ("unlimited")
IPCMNI_SEQ_SHIFT = 15  #: ids are seq << 15 | index, as Linux's ipc_buildid
O_RDWR = 0o2


class ShmSegment:
    """One segment: its identity, permissions, times and the file holding its bytes."""

    def __init__(self, index: int, seq: int, key: int, size: int, mode: int, task: "Task",
                 inode: TmpfsFile) -> None:
        creds = task.tg.creds
        self.index, self.seq, self.key, self.size = index, seq, key, size
        self.id = seq << IPCMNI_SEQ_SHIFT | index
        self.mode = mode & 0o777
        self.uid = self.cuid = creds.euid
        self.gid = self.cgid = creds.egid
        self.cpid, self.lpid = task.tg.pid, 0
        self.atime = self.dtime = 0
        self.ctime = int(time.time())
        self.inode = inode
        self.attachments: list[ShmAttachment] = []
        self.removed = False
        self.locked = False

    @property
    def nattch(self) -> int:
        return sum(a.refs for a in self.attachments)

    @property
    def shown_mode(self) -> int:
        return self.mode | (SHM_DEST if self.removed else 0) | (SHM_LOCKED if self.locked else 0)

    def permits(self, task: "Task", requested: int) -> bool:
        """ipcperms: the owner/creator, group or other bits (CAP_IPC_OWNER overrides)."""
        from snakevisor.syscalls.sys_cred import has_cap
        creds = task.tg.creds
        granted = self.mode
        if creds.euid in (self.uid, self.cuid):
            granted >>= 6
        elif self.gid in (creds.egid, *creds.groups) or self.cgid in (creds.egid, *creds.groups):
            granted >>= 3
        if requested & ~granted & 0o7 and not has_cap(task, CAP_IPC_OWNER):
            return False
        return True

    def is_owner(self, task: "Task") -> bool:
        """IPC_SET / IPC_RMID: the owner, the creator or CAP_SYS_ADMIN."""
        from snakevisor.syscalls.sys_cred import has_cap
        return task.tg.creds.euid in (self.uid, self.cuid) or has_cap(task, CAP_SYS_ADMIN)

    def attach_file(self) -> "ShmAttachment":
        """A fresh description to map for one shmat (the mapping takes the reference)."""
        self.inode.open_count += 1
        att = ShmAttachment(self, O_RDWR)
        att.path = f"/SYSV{self.key & 0xFFFFFFFF:08x} (deleted)"
        self.attachments.append(att)
        return att


CAP_IPC_OWNER, CAP_SYS_ADMIN = 15, 21


class ShmAttachment(TmpfsFileDescription):
    """The description one shmat mapped; released when its last VMA goes."""

    def __init__(self, segment: ShmSegment, flags: int) -> None:
        super().__init__(segment.inode, flags)
        self.segment = segment

    def release(self) -> None:
        seg = self.segment
        if self in seg.attachments:
            seg.attachments.remove(self)
        seg.dtime = int(time.time())
        super().release()
        table = getattr(seg, "table", None)
        if table is not None and seg.removed and not seg.attachments:
            table.destroy(seg)


class ShmTable:
    """The segments of one sandbox (its IPC namespace), by index."""

    def __init__(self, kernel: "Kernel") -> None:
        self.kernel = kernel
        self.segments: dict[int, ShmSegment] = {}
        self.seq = 0

    def by_key(self, key: int) -> ShmSegment | None:
        for seg in self.segments.values():
            if seg.key == key and not seg.removed:
                return seg
        return None

    def lookup(self, shmid: int) -> ShmSegment:
        """The segment named by an id (EINVAL for unknown or stale ids)."""
        seg = self.segments.get(shmid & ((1 << IPCMNI_SEQ_SHIFT) - 1))
        if shmid < 0 or seg is None or seg.id != shmid:
            raise SyscallError(EINVAL)
        return seg

    def get(self, task: "Task", key: int, size: int, flags: int) -> int:
        """shmget's lookup-or-create; returns the id."""
        if key != IPC_PRIVATE:
            seg = self.by_key(key)
            if seg is not None:
                if flags & IPC_CREAT and flags & IPC_EXCL:
                    raise SyscallError(EEXIST)
                if not seg.permits(task, (flags >> 6 | flags >> 3 | flags) & 7):
                    raise SyscallError(EACCES)
                if size > seg.size:
                    raise SyscallError(EINVAL)
                return seg.id
            if not flags & IPC_CREAT:
                raise SyscallError(ENOENT)
        if size < SHMMIN or size > SHMMAX:
            raise SyscallError(EINVAL)
        return self._create(task, key, size, flags).id

    def _create(self, task: "Task", key: int, size: int, flags: int) -> ShmSegment:
        index = next((i for i in range(SHMMNI) if i not in self.segments), None)
        if index is None:
            raise SyscallError(ENOSPC)
        from snakevisor.syscalls.sys_memfd import memfd_fs
        creds = task.tg.creds
        inode = TmpfsFile(memfd_fs(self.kernel), st_.S_IFREG | (flags & 0o777), creds.euid,
                          creds.egid)
        inode.resize(size)
        self.seq = (self.seq + 1) & 0xFFFF
        seg = ShmSegment(index, self.seq, key, size, flags, task, inode)
        seg.table = self  # type: ignore[attr-defined]
        self.segments[index] = seg
        return seg

    def remove(self, seg: ShmSegment) -> None:
        """IPC_RMID: the key is forgotten now, the bytes when the last attach goes."""
        seg.removed = True
        seg.key = IPC_PRIVATE
        if not seg.attachments:
            self.destroy(seg)

    def destroy(self, seg: ShmSegment) -> None:
        if self.segments.get(seg.index) is seg:
            del self.segments[seg.index]
            seg.inode.nlink = 0
            seg.inode.maybe_free()


def shm_table(kernel: "Kernel") -> ShmTable:
    """The sandbox's segment table, made on first use (kept on the kernel)."""
    table = getattr(kernel, "shm_table", None)
    if table is None:
        table = kernel.shm_table = ShmTable(kernel)  # type: ignore[attr-defined]
    return table
