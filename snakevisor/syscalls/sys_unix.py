"""AF_UNIX at the system call boundary: the control messages only unix sockets carry.

SCM_RIGHTS passes open file descriptions: on send each fd of the message is looked up in
the sender's table and a reference is held while the message is in flight (any kind of
file, O_PATH included, as fget_raw takes them); on receive each is installed as a new fd
of the receiver, pointing at the same description (offset and status flags shared).
SCM_CREDENTIALS carries a ucred in the sandbox's view (its pids, its ids).

Both directions follow net/core/scm.c to the byte: __scm_send's walk and checks (CMSG_OK,
at most SCM_MAX_FD fds, scm_check_creds, ESRCH for a pid that does not exist), and on
receive put_cmsg/scm_detach_fds — credentials first, then as many fds as the control
buffer has room for, MSG_CTRUNC and the excess closed when it has not.  The sockets
themselves are snakevisor.net.unix; the generic socket calls are sys_socket.
"""
from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EBADF, EFAULT, EINVAL, EPERM, ESRCH, SyscallError
from snakevisor.net.unix import SCM_MAX_FD, Received, Scm, Ucred, hold
from snakevisor.syscalls.sys_file import _nofile

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

SOL_SOCKET = 1
SCM_RIGHTS, SCM_CREDENTIALS = 1, 2
MSG_CTRUNC = 0x8
CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN = 6, 7, 21
_CMSGHDR = struct.Struct("<Qii")  #: cmsg_len (size_t), cmsg_level, cmsg_type
HDR = _CMSGHDR.size
UCRED_SIZE = 12
INVALID_ID = 0xFFFFFFFF


def _align(n: int) -> int:
    return (n + 7) & ~7


def cmsg_space(n: int) -> int:
    return HDR + _align(n)


def _cmsgs(ctl: bytes):
    """for_each_cmsghdr: (offset, cmsg_len, level, type) of each header in the buffer."""
    pos = 0
    while pos + HDR <= len(ctl):
        length, level, kind = _CMSGHDR.unpack_from(ctl, pos)
        yield pos, length, level, kind
        pos += _align(length)


def parse_control(task: "Task", ctl: bytes) -> Scm:
    """__scm_send: the fds and credentials a sendmsg's control buffer asks to pass.  The
    fds are held (the references belong to the returned Scm); nothing is held on error."""
    scm = Scm()
    files: list = []
    try:
        for pos, length, level, kind in _cmsgs(ctl):
            if length < HDR or length > len(ctl) - pos:
                raise SyscallError(EINVAL)  # CMSG_OK
            if level != SOL_SOCKET:
                continue
            if kind == SCM_RIGHTS:
                _take_fds(task, ctl[pos + HDR:pos + length], files)
            elif kind == SCM_CREDENTIALS:
                if length != HDR + UCRED_SIZE:
                    raise SyscallError(EINVAL)
                scm.creds = _check_creds(task, Ucred(*struct.unpack_from("<iII", ctl, pos + HDR)))
            else:
                raise SyscallError(EINVAL)
    except SyscallError:
        Scm(files).drop()
        raise
    scm.files = files or None
    return scm


def _take_fds(task: "Task", data: bytes, files: list) -> None:
    """scm_fp_copy: each fd must be open (EBADF), at most SCM_MAX_FD in the message."""
    num = len(data) // 4
    if num <= 0:
        return
    if num > SCM_MAX_FD or len(files) + num > SCM_MAX_FD:
        raise SyscallError(EINVAL)
    table = task.tg.fds.files
    for (fd,) in struct.iter_unpack("<i", data[:4 * num]):
        file = table.get(fd) if fd >= 0 else None
        if file is None:
            raise SyscallError(EBADF)
        files.extend(hold([file]))


def _check_creds(task: "Task", cred: Ucred) -> Ucred:
    """scm_check_creds: our own pid and one of our ids, unless capabilities allow more;
    then the pid must exist (ESRCH)."""
    from snakevisor.syscalls.sys_cred import has_cap
    if cred.uid == INVALID_ID or cred.gid == INVALID_ID:
        raise SyscallError(EINVAL)
    creds = task.tg.creds
    own_pid = task.tg.pid
    if not ((cred.pid == own_pid or has_cap(task, CAP_SYS_ADMIN))
            and (cred.uid in (creds.ruid, creds.euid, creds.suid) or has_cap(task, CAP_SETUID))
            and (cred.gid in (creds.rgid, creds.egid, creds.sgid) or has_cap(task, CAP_SETGID))):
        raise SyscallError(EPERM)
    if cred.pid != own_pid and cred.pid not in getattr(task.kernel, "thread_groups", {}):
        raise SyscallError(ESRCH)
    return cred


class _ControlWriter:
    """put_cmsg into the receiver's control buffer: what fits, MSG_CTRUNC for the rest."""

    def __init__(self, task: "Task", addr: int, size: int) -> None:
        self.task = task
        self.addr = addr
        self.left = size
        self.used = 0
        self.flags = 0

    def put(self, level: int, kind: int, data: bytes) -> None:
        if self.left < HDR:
            self.flags |= MSG_CTRUNC
            return
        length = HDR + len(data)
        if self.left < length:
            self.flags |= MSG_CTRUNC
            length = self.left
        raw = _CMSGHDR.pack(length, level, kind) + data
        self.task.tg.mm.write(self.addr + self.used, raw[:length])
        self._advance(min(cmsg_space(len(data)), self.left))

    def _advance(self, n: int) -> None:
        self.used += n
        self.left -= n

    def put_fds(self, files: list, cloexec: bool) -> None:
        """scm_detach_fds: install what the buffer has room for; the rest are closed."""
        fdmax = min((self.left - HDR) // 4 if self.left > HDR else 0, len(files))
        fds = self.task.tg.fds
        limit = _nofile(self.task)
        installed: list[int] = []
        for file in files[:fdmax]:
            try:
                installed.append(fds.install(file, cloexec, 0, limit))
            except SyscallError:
                break
        if installed:
            data = struct.pack(f"<{len(installed)}i", *installed)
            header = _CMSGHDR.pack(HDR + len(data), SOL_SOCKET, SCM_RIGHTS)
            try:
                self.task.tg.mm.write(self.addr + self.used, header + data)
            except SyscallError:
                for fd in installed:
                    fds.close(fd)
                raise
            self._advance(min(cmsg_space(len(data)), self.left))
        if len(installed) < len(files) or (files and fdmax <= 0):
            self.flags |= MSG_CTRUNC
        Scm(files).drop()  # the in-flight references: installed fds hold their own


def put_control(task: "Task", addr: int, size: int, got: Received, cloexec: bool
                ) -> tuple[int, int]:
    """scm_recv_unix: the control messages of one receive into (addr, size); returns
    (bytes used, MSG_CTRUNC or 0).  The received files are consumed either way."""
    if not addr:
        files = got.files
        Scm(files).drop()
        return 0, MSG_CTRUNC if (got.creds is not None or files) else 0
    out = _ControlWriter(task, addr, size)
    try:
        if got.creds is not None:
            out.put(SOL_SOCKET, SCM_CREDENTIALS, got.creds.pack())
    except SyscallError:
        Scm(got.files).drop()
        raise SyscallError(EFAULT) from None
    if got.files:
        out.put_fds(got.files, cloexec)
    return out.used, out.flags
