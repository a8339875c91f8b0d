"""/proc/sysvipc/{shm,sem,msg}: the sandbox's System V objects in Linux's formats.

Why: `ipcs` reads these files first (falling back to the *_STAT commands only without
them), so they are what a user sees.  The formats are ipc/shm.c, sem.c and msg.c's
sysvipc_*_proc_show on a 64-bit kernel: the same header lines and column widths, one row
per object in index order, ids, pids and uids as the sandbox knows them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from snakevisor.fsimpl.procfs.text import b
from snakevisor.kernel.shm import PAGE_SIZE, shm_table
from snakevisor.kernel.sysvipc import sysv_namespace

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel

SHM_HEADER = ("       key      shmid perms                  size  cpid  lpid nattch   uid   gid"
              "  cuid  cgid      atime      dtime      ctime                   rss"
              "                  swap\n")
SEM_HEADER = ("       key      semid perms      nsems   uid   gid  cuid  cgid      otime"
              "      ctime\n")
MSG_HEADER = ("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid"
              "  cuid  cgid      stime      rtime      ctime\n")


def shm(kernel: "Kernel") -> bytes:
    rows = [SHM_HEADER]
    for seg in shm_table(kernel).in_order():
        rows.append(f"{seg.key:10d} {seg.id:10d}  {seg.shown_mode:4o} {seg.size:21d} "
                    f"{seg.cpid:5d} {seg.lpid:5d}  {seg.nattch:5d} {seg.uid:5d} {seg.gid:5d} "
                    f"{seg.cuid:5d} {seg.cgid:5d} {seg.atime:10d} {seg.dtime:10d} "
                    f"{seg.ctime:10d} {seg.resident * PAGE_SIZE:21d} {0:21d}\n")
    return b("".join(rows))


def sem(kernel: "Kernel") -> bytes:
    rows = [SEM_HEADER]
    for sset in sysv_namespace(kernel).sems.in_order():
        rows.append(f"{sset.key:10d} {sset.id:10d}  {sset.mode:4o} {len(sset.sems):10d} "
                    f"{sset.uid:5d} {sset.gid:5d} {sset.cuid:5d} {sset.cgid:5d} "
                    f"{sset.otime:10d} {sset.ctime:10d}\n")
    return b("".join(rows))


def msg(kernel: "Kernel") -> bytes:
    rows = [MSG_HEADER]
    for q in sysv_namespace(kernel).msgs.in_order():
        rows.append(f"{q.key:10d} {q.id:10d}  {q.mode:4o}  {q.cbytes:10d} "
                    f"{len(q.messages):10d} {q.lspid:5d} {q.lrpid:5d} {q.uid:5d} {q.gid:5d} "
                    f"{q.cuid:5d} {q.cgid:5d} {q.stime:10d} {q.rtime:10d} {q.ctime:10d}\n")
    return b("".join(rows))


#: name under /proc/sysvipc -> content
FILES: dict[str, Callable[["Kernel"], bytes]] = {"msg": msg, "sem": sem, "shm": shm}
