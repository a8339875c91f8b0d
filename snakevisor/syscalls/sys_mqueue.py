"""POSIX message queues: mq_open, mq_unlink, mq_timedsend, mq_timedreceive, mq_notify,
mq_getsetattr, over the namespace of `kernel/mqueue.py` and its file system
(`fsimpl/mqueuefs.py`).

Order matters for errno fidelity: each handler checks its arguments in the order of
ipc/mqueue.c (the timeout before the descriptor, the descriptor before the sizes).
Waiting: a send to a full queue or a receive from an empty one parks on the queue's
WaitQueue (every change notifies it) until its absolute CLOCK_REALTIME timeout, re-checking
when dispatched again; the message and the expiry are kept in ``task.syscall_state``.
A signal ends the wait with EINTR, or a restart under SA_RESTART, as Linux's -ERESTARTSYS.
"""
from __future__ import annotations

import os
import stat as st_
import struct
from typing import TYPE_CHECKING

from snakevisor.fsimpl.mqueuefs import MqueueFile, mqueue_fs
from snakevisor.kernel.errors import (EACCES, EAGAIN, EBADF, EBUSY, EEXIST, EINVAL, ENAMETOOLONG,
                                      ENOENT, ETIMEDOUT, Block, SyscallError)
from snakevisor.kernel.mqueue import (MQ_PRIO_MAX, SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD,
                                      Notification, realtime_now)
from snakevisor.syscalls import syscall
from snakevisor.syscalls.args import read_path, s32, s64, u32
from snakevisor.syscalls.sys_cred import has_cap
from snakevisor.syscalls.sys_file import _check_fd_room, _nofile
from snakevisor.syscalls.sys_time import NSEC, read_timespec, timespec_valid
from snakevisor.vfs.file import O_ACCMODE
from snakevisor.vfs.permissions import MAY_EXEC, MAY_READ, MAY_WRITE, check

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

EMSGSIZE, ENOTSOCK = 90, 88
O_CREAT, O_EXCL = 0o100, 0o200
NAME_MAX = 255
NSIG = 64
CAP_FOWNER = 3
#: struct mq_attr: mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs, __reserved[4]
MQ_ATTR = struct.Struct("<qqqq32x")
#: struct sigevent: sigev_value, sigev_signo, sigev_notify, then the union (64 bytes)
SIGEVENT = struct.Struct("<Qii48x")
NOTIFY_COOKIE_LEN = 32
_ACCESS = {0: MAY_READ, 1: MAY_WRITE, 2: MAY_READ | MAY_WRITE}


# --------------------------------------------------------------------------- names

def _check_name(name: bytes) -> bytes:
    """lookup_one_len on the queue directory (getname already refused an empty name):
    EACCES for ".", ".." and names holding '/', ENAMETOOLONG past NAME_MAX."""
    if name in (b".", b"..") or b"/" in name:
        raise SyscallError(EACCES)
    if len(name) > NAME_MAX:
        raise SyscallError(ENAMETOOLONG)
    return name


def _queue_file(task: "Task", mqdes: int) -> MqueueFile:
    """The queue an mq descriptor holds: EBADF for a closed fd or any other file."""
    file = task.tg.fds.files.get(u32(mqdes))
    if not isinstance(file, MqueueFile):
        raise SyscallError(EBADF)
    return file


@syscall("mq_open")
def sys_mq_open(task: "Task", name_ptr: int, oflag: int, mode: int, attr_ptr: int, *_: int) -> int:
    oflag = s32(oflag)
    attr = None
    if attr_ptr:
        _, maxmsg, msgsize, _ = MQ_ATTR.unpack(task.mm.read(attr_ptr, MQ_ATTR.size))
        attr = (s64(maxmsg), s64(msgsize))
    name = read_path(task, name_ptr)
    limit = _nofile(task)
    _check_fd_room(task, limit)  # the fd is taken before the name is looked up
    _check_name(name)
    directory = mqueue_fs(task.kernel).root()
    node = directory.lookup(task, name)
    if node is None:
        if not oflag & O_CREAT:
            raise SyscallError(ENOENT)
        check(task, directory.mode, directory.uid, directory.gid, MAY_WRITE | MAY_EXEC)
        node = directory.create_queue(task, name, mode & 0o7777 & ~task.tg.umask, attr)
    else:
        if oflag & (O_CREAT | O_EXCL) == O_CREAT | O_EXCL:
            raise SyscallError(EEXIST)
        if oflag & O_ACCMODE == O_ACCMODE:
            raise SyscallError(EINVAL)
        check(task, node.mode, node.uid, node.gid, _ACCESS[oflag & O_ACCMODE])
    file = node.open(task, oflag)
    file.path = "/" + name.decode(errors="surrogateescape")
    return task.tg.fds.install(file, True, 0, limit)  # always close-on-exec, as Linux


@syscall("mq_unlink")
def sys_mq_unlink(task: "Task", name_ptr: int, *_: int) -> int:
    name = _check_name(read_path(task, name_ptr))
    directory = mqueue_fs(task.kernel).root()
    node = directory.lookup(task, name)
    if node is None:
        raise SyscallError(ENOENT)
    # may_delete: write and search on the directory, then its sticky bit -- which refuses
    # with EACCES here, where unlink(2) of the same file says EPERM (Linux 6.x, native)
    check(task, directory.mode, directory.uid, directory.gid, MAY_WRITE | MAY_EXEC)
    fsuid = task.tg.creds.fsuid
    if directory.mode & st_.S_ISVTX and fsuid not in (directory.uid, node.uid) \
            and not has_cap(task, CAP_FOWNER):
        raise SyscallError(EACCES)
    directory.unlink(task, name)
    return 0


# --------------------------------------------------------------------------- messages

def _timeout(task: "Task", addr: int) -> float | None:
    """prepare_timeout: the absolute CLOCK_REALTIME expiry (EFAULT, EINVAL), or None."""
    if not addr:
        return None
    sec, nsec = read_timespec(task, addr)
    if not timespec_valid(sec, nsec):
        raise SyscallError(EINVAL)
    return sec + nsec / NSEC


def _wait(task: "Task", expiry: float | None, file: MqueueFile) -> Block:
    """Block on the queue until it changes or the realtime expiry passes (ETIMEDOUT once
    it has).  The expiry is re-read against the wall clock at every dispatch."""
    if expiry is None:
        return Block(queue=file.queue.wait)
    left = expiry - realtime_now()
    if left <= 0:
        raise SyscallError(ETIMEDOUT)
    return Block(deadline=task.kernel.now() + left, queue=file.queue.wait)


@syscall("mq_timedsend")
def sys_mq_timedsend(task: "Task", mqdes: int, msg_ptr: int, msg_len: int, prio: int,
                     timeout_ptr: int, *_: int) -> int:
    state = task.syscall_state
    if state is None or "mq_text" not in state:
        expiry = _timeout(task, timeout_ptr)
        if u32(prio) >= MQ_PRIO_MAX:
            raise SyscallError(EINVAL)
        file = _queue_file(task, mqdes)
        if not file.writable:
            raise SyscallError(EBADF)
        if msg_len > file.queue.msgsize:
            raise SyscallError(EMSGSIZE)
        text = task.mm.read(msg_ptr, msg_len) if msg_len else b""
        if file.queue.full and file.nonblocking:
            raise SyscallError(EAGAIN)
        state = task.syscall_state = {"task": task, "mq_text": text, "mq_file": file,
                                      "mq_expiry": expiry}
    file = state["mq_file"]
    if not file.queue.full:
        file.queue.send(task, state["mq_text"], u32(prio))
        file.inode.touch(mtime=True)
        return 0
    raise _wait(task, state["mq_expiry"], file)


@syscall("mq_timedreceive")
def sys_mq_timedreceive(task: "Task", mqdes: int, msg_ptr: int, msg_len: int, prio_ptr: int,
                        timeout_ptr: int, *_: int) -> int:
    state = task.syscall_state
    if state is None or "mq_file" not in state:
        expiry = _timeout(task, timeout_ptr)
        file = _queue_file(task, mqdes)
        if not file.readable:
            raise SyscallError(EBADF)
        if msg_len < file.queue.msgsize:
            raise SyscallError(EMSGSIZE)
        if not file.queue.curmsgs and file.nonblocking:
            raise SyscallError(EAGAIN)
        state = task.syscall_state = {"task": task, "mq_file": file, "mq_expiry": expiry}
    file = state["mq_file"]
    queue = file.queue
    if not queue.curmsgs:
        queue.add_receiver(state)
        raise _wait(task, state["mq_expiry"], file)
    text, priority = queue.receive()
    file.inode.touch(mtime=True)
    if prio_ptr:
        task.mm.write(prio_ptr, struct.pack("<I", priority))
    if text:
        task.mm.write(msg_ptr, text)
    return len(text)


# --------------------------------------------------------------------------- notification

def _thread_notification(task: "Task", value: int, sock_fd: int) -> None:
    """SIGEV_THREAD needs a netlink socket (glibc makes one and passes its fd): the sandbox
    has no AF_NETLINK, so this fails as Linux does for a descriptor that is not one."""
    task.kernel.warn_once("mq_notify:SIGEV_THREAD",
                          "mq_notify(SIGEV_THREAD): needs an AF_NETLINK socket, which the "
                          "sandbox lacks; failing (glibc reports ENOSYS)")
    task.mm.read(value, NOTIFY_COOKIE_LEN)
    file = task.tg.fds.files.get(u32(sock_fd))
    if file is None:
        raise SyscallError(EBADF)
    try:
        is_socket = st_.S_ISSOCK(file.stat().st_mode)
    except SyscallError:
        is_socket = False
    raise SyscallError(EINVAL if is_socket else ENOTSOCK)


@syscall("mq_notify", partial="SIGEV_THREAD fails (no netlink sockets in the sandbox: glibc "
         "answers ENOSYS)")
def sys_mq_notify(task: "Task", mqdes: int, sevp: int, *_: int) -> int:
    reg = None
    if sevp:
        value, signo, notify = SIGEVENT.unpack(task.mm.read(sevp, SIGEVENT.size))
        if notify not in (SIGEV_NONE, SIGEV_SIGNAL, SIGEV_THREAD):
            raise SyscallError(EINVAL)
        if notify == SIGEV_SIGNAL and not 0 <= signo <= NSIG:
            raise SyscallError(EINVAL)
        if notify == SIGEV_THREAD:
            _thread_notification(task, value, signo)
        reg = Notification(task.tg, notify, signo, value)
    file = _queue_file(task, mqdes)
    if not file.queue.register(reg, task.tg):
        raise SyscallError(EBUSY)
    file.inode.touch(atime=True, ctime=True)
    return 0


@syscall("mq_getsetattr")
def sys_mq_getsetattr(task: "Task", mqdes: int, new_ptr: int, old_ptr: int, *_: int) -> int:
    new_flags = None
    if new_ptr:
        new_flags = s64(MQ_ATTR.unpack(task.mm.read(new_ptr, MQ_ATTR.size))[0])
        if new_flags & ~os.O_NONBLOCK:
            raise SyscallError(EINVAL)
    file = _queue_file(task, mqdes)
    old = file.queue.attr(file.flags & os.O_NONBLOCK)
    if new_flags is not None:
        file.flags = (file.flags & ~os.O_NONBLOCK) | new_flags
        file.inode.touch(atime=True, ctime=True)
    if old_ptr:
        task.mm.write(old_ptr, MQ_ATTR.pack(*old))
    return 0
