"""pipe and pipe2: a new pipe's two ends installed as the two lowest free descriptors.

The pipe itself (buffering, blocking, SIGPIPE, sizes, packets) is snakevisor.vfs.pipe.
Like Linux, nothing is left behind when the call fails: the fds are taken before the
array is written (so EMFILE wins over EFAULT) and given back if the write faults.
"""
from __future__ import annotations

import errno
import os
import struct
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EINVAL, SyscallError
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import u32
from snakevisor.syscalls.sys_file import _nofile
from snakevisor.vfs.pipe import new_pipe

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

O_NOTIFICATION_PIPE = os.O_EXCL  # a watch-queue pipe (CONFIG_WATCH_QUEUE)
PIPE2_FLAGS = os.O_CLOEXEC | os.O_NONBLOCK | os.O_DIRECT | O_NOTIFICATION_PIPE
_FDS = struct.Struct("<ii")


def _pipe2(task: "Task", addr: int, flags: int) -> int:
    if flags & ~PIPE2_FLAGS:
        raise SyscallError(EINVAL)
    if flags & O_NOTIFICATION_PIPE:
        # what a kernel built without CONFIG_WATCH_QUEUE answers; we have no watch queues
        task.kernel.warn_once("pipe2:O_NOTIFICATION_PIPE",
                              "pipe2(O_NOTIFICATION_PIPE): watch queues not supported -> ENOPKG")
        raise SyscallError(errno.ENOPKG)
    reader, writer = new_pipe(task, flags)
    fds = task.tg.fds
    limit = _nofile(task)
    cloexec = bool(flags & os.O_CLOEXEC)
    try:
        rfd = fds.install(reader, cloexec, 0, limit)
    except SyscallError:
        reader.release()
        writer.release()
        raise
    try:
        wfd = fds.install(writer, cloexec, 0, limit)
    except SyscallError:
        writer.release()
        fds.close(rfd)
        raise
    try:
        task.tg.mm.write(addr, _FDS.pack(rfd, wfd))
    except SyscallError:
        fds.close(wfd)
        fds.close(rfd)
        raise
    return 0


@syscall("pipe")
def sys_pipe(task: "Task", fds: int, *_: int) -> int:
    return _pipe2(task, fds, 0)


@syscall("pipe2", partial="O_NOTIFICATION_PIPE answers ENOPKG (no watch queues)")
def sys_pipe2(task: "Task", fds: int, flags: int, *_: int) -> int:
    return _pipe2(task, fds, u32(flags))
