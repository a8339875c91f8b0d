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

import os
import stat as st_
import time
from typing import TYPE_CHECKING

from snakevisor.fsimpl.tmpfs import TmpfsFile, TmpfsFileDescription
from snakevisor.kernel.errors import EACCES, EEXIST, EINVAL, ENOENT, SyscallError
from snakevisor.kernel.sysvipc import IPCMNI_SHIFT, IdAllocator, index_of

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task

IPC_PRIVATE = 0
IPC_CREAT, IPC_EXCL = 0o1000, 0o2000
SHM_DEST, SHM_LOCKED = 0o1000, 0o2000  #: status bits shown in shm_perm.mode
SHMMIN, SHMMNI = 1, 4096
SHMMAX = SHMALL = (1 << 64) - 1 - (1 << 24)  #: Linux's defaults ("unlimited")
O_RDWR = 0o2
PAGE_SIZE = 4096


class ShmSegment:
    """One segment: its identity, permissions, times and the file holding its bytes."""

    def __init__(self, index: int, seq: int, key: int, size: int, mode: int, task: "Task",
                 inode: TmpfsFile) -> None:
        creds = task.tg.creds
        self.index, self.seq, self.key, self.size = index, seq, key, size
        self.id = seq << IPCMNI_SHIFT | index
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
        self.locked_by = 0  #: the uid whose RLIMIT_MEMLOCK SHM_LOCK charged

    @property
    def nattch(self) -> int:
        return sum(a.refs for a in self.attachments)

    @property
    def pages(self) -> int:
        """The pages the segment's size accounts for (ns->shm_tot's share)."""
        return (self.size + PAGE_SIZE - 1) // PAGE_SIZE

    @property
    def resident(self) -> int:
        """Pages actually allocated in the backing file (shm_rss): what the host's memfd holds."""
        try:
            return os.fstat(self.inode.memfd).st_blocks * 512 // PAGE_SIZE
        except OSError:
            return 0

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
        self.ids = IdAllocator(SHMMNI)
        #: uid -> pages locked by SHM_LOCK, charged against RLIMIT_MEMLOCK (user_shm_lock)
        self.locked_pages: dict[int, int] = {}

    def by_key(self, key: int) -> ShmSegment | None:
        for seg in self.segments.values():
            if seg.key == key and not seg.removed:
                return seg
        return None

    def lookup(self, shmid: int) -> ShmSegment:
        """The segment named by an id (EINVAL for unknown or stale ids)."""
        seg = self.segments.get(index_of(shmid))
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

    def at_index(self, index: int) -> ShmSegment:
        """SHM_STAT: the segment at an index (masked as Linux does), EINVAL if none."""
        seg = self.segments.get(index_of(index))
        if seg is None:
            raise SyscallError(EINVAL)
        return seg

    def in_order(self) -> list[ShmSegment]:
        """Every segment (removed but attached ones too) by index, as /proc/sysvipc lists."""
        return [self.segments[i] for i in sorted(self.segments)]

    def _create(self, task: "Task", key: int, size: int, flags: int) -> ShmSegment:
        index, seq = self.ids.alloc(self.segments)
        from snakevisor.syscalls.sys_memfd import memfd_fs
        creds = task.tg.creds
        inode = TmpfsFile(memfd_fs(self.kernel), st_.S_IFREG | (flags & 0o777), creds.euid,
                          creds.egid)
        inode.resize(size)
        seg = ShmSegment(index, seq, key, size, flags, task, inode)
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
            self.unlock(seg)
            seg.inode.nlink = 0
            seg.inode.maybe_free()


    def lock(self, seg: ShmSegment, uid: int, memlock_limit: int | None) -> bool:
        """SHM_LOCK's accounting (user_shm_lock): uid's locked pages may not pass
        memlock_limit bytes (None: no limit, CAP_IPC_LOCK); False when they would."""
        if seg.locked:
            return True
        total = self.locked_pages.get(uid, 0) + seg.pages
        if memlock_limit is not None and total > memlock_limit // PAGE_SIZE:
            return False
        self.locked_pages[uid] = total
        seg.locked, seg.locked_by = True, uid
        return True

    def unlock(self, seg: ShmSegment) -> None:
        if seg.locked:
            self.locked_pages[seg.locked_by] -= seg.pages
            seg.locked = False


def shm_table(kernel: "Kernel") -> ShmTable:
    """The sandbox's segment table, made on first use (kept on the kernel)."""
    table = getattr(kernel, "shm_table", None)
    if table is None:
        table = kernel.shm_table = ShmTable(kernel)  # type: ignore[attr-defined]
    return table
