"""Socket system calls until the sandbox has sockets of its own (AF_UNIX with the IPC
issue, the network stack after it).

No file the sandbox can open is a socket yet, so every call on a descriptor answers what
Linux answers for a non-socket: EBADF for a closed fd, ENOTSOCK otherwise (programs probe
this: bash asks getpeername on its stdin whether it was started by a network daemon).
Creating sockets fails loudly with ENOSYS and a log line; listed in docs/compatibility.md.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from snakevisor.kernel.errors import ENOSYS, SyscallError
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import s32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

ENOTSOCK = 88

_NOT_YET = "no socket can exist yet: EBADF/ENOTSOCK as for any non-socket descriptor"


@syscall("connect", "accept", "accept4", "sendto", "recvfrom", "sendmsg", "recvmsg",
         "shutdown", "bind", "listen", "getsockname", "getpeername", "setsockopt",
         "getsockopt", "sendmmsg", "recvmmsg", partial=_NOT_YET)
def sys_socket_fd_call(task: "Task", fd: int, *_: int) -> int:
    task.fds.get(s32(fd))  # EBADF for a closed descriptor
    raise SyscallError(ENOTSOCK)


@syscall("socket", "socketpair", partial="no socket families yet: ENOSYS")
def sys_socket(task: "Task", family: int, kind: int, protocol: int, *_: int) -> int:
    task.kernel.warn_once(f"socket:{s32(family)}",
                          f"socket(family={s32(family)}, type={s32(kind):#x}, protocol={s32(protocol)}): "
                          "sockets are not implemented yet -> ENOSYS")
    raise SyscallError(ENOSYS)
