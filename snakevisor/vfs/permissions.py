"""Linux's discretionary access check (generic_permission) for the sandbox's identities.

One rule for every file system: the owner's, the group's or the others' bits, with
CAP_DAC_OVERRIDE (anything but executing a file with no x bit) and CAP_DAC_READ_SEARCH
(reading files, reading and searching directories) as the overrides.
"""
from __future__ import annotations

import stat as st_
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EACCES, SyscallError

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

MAY_EXEC, MAY_WRITE, MAY_READ = 1, 2, 4
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2


def _has_cap(task: "Task", cap: int) -> bool:
    from snakevisor.syscalls.sys_cred import has_cap
    return has_cap(task, cap)


def permitted(task: "Task", mode: int, uid: int, gid: int, mask: int) -> bool:
    """May the task's filesystem identity access an object with these attributes?"""
    creds = task.tg.creds
    if creds.fsuid == uid:
        bits = mode >> 6
    elif creds.fsgid == gid or gid in creds.groups:
        bits = mode >> 3
    else:
        bits = mode
    if not mask & ~bits & 7:
        return True
    is_dir = st_.S_ISDIR(mode)
    if _has_cap(task, CAP_DAC_OVERRIDE):
        # execute needs some x bit on a non-directory, even for root
        return not mask & MAY_EXEC or is_dir or bool(mode & 0o111)
    if _has_cap(task, CAP_DAC_READ_SEARCH):
        if mask == MAY_READ or (is_dir and not mask & MAY_WRITE):
            return True
    return False


def check(task: "Task", mode: int, uid: int, gid: int, mask: int) -> None:
    if not permitted(task, mode, uid, gid, mask):
        raise SyscallError(EACCES)
