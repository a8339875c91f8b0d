"""The sandbox's POSIX message queue namespace: queues, their limits and notifications.

Why here: a queue outlives the processes that opened it and is found by name across the
whole sandbox (Linux keeps one set per IPC namespace, the sandbox has one), so the limits,
the queue count and the per-user byte charge belong to the Kernel (made on first use, as
`sysvipc.py` does).  The names themselves are entries of the "mqueue" file system
(`fsimpl/mqueuefs.py`), and the system calls are `syscalls/sys_mqueue.py`.

Linux details followed (ipc/mqueue.c of 6.x, checked natively): messages leave highest
priority first, FIFO within a priority; a queue's attributes are checked against
/proc/sys/fs/mqueue's msg_max/msgsize_max (HARD_MSGMAX/HARD_MSGSIZEMAX with
CAP_SYS_RESOURCE); its worst-case memory is charged to the creator's RLIMIT_MSGQUEUE
(EMFILE when over) until the queue is gone (unlinked and closed); queues_max bounds the
count (ENOSPC without CAP_SYS_RESOURCE).  One process may be registered for notification;
it is told (and unregistered) when a message arrives on an empty queue no receiver is
blocked on.
"""
from __future__ import annotations

import heapq
import itertools
import time
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EINVAL, EMFILE, ENOSPC, EOVERFLOW, SyscallError, WaitQueue

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import Task, ThreadGroup

# /proc/sys/fs/mqueue defaults (include/linux/ipc_namespace.h), checked natively
DFLT_QUEUESMAX, DFLT_MSG, DFLT_MSGMAX, DFLT_MSGSIZE, DFLT_MSGSIZEMAX = 256, 10, 10, 8192, 8192
HARD_MSGMAX, HARD_MSGSIZEMAX = 65536, 16 * 1024 * 1024
MQ_PRIO_MAX = 32768
#: kernel bookkeeping Linux charges per possible message: sizeof(struct msg_msg) and
#: sizeof(struct posix_msg_tree_node) on x86_64
MSG_MSG_SIZE, TREE_NODE_SIZE = 48, 48
RLIMIT_MSGQUEUE = 12
CAP_SYS_RESOURCE = 24
ULONG_MAX = (1 << 64) - 1

SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD = 0, 1, 2
SI_MESGQ = -3


def _capable(task: "Task", cap: int) -> bool:
    from snakevisor.syscalls.sys_cred import has_cap
    return has_cap(task, cap)


class Notification:
    """A process's mq_notify registration."""

    __slots__ = ("owner", "notify", "signo", "value", "exec_id")

    def __init__(self, owner: "ThreadGroup", notify: int, signo: int, value: int) -> None:
        self.owner = owner
        self.notify = notify
        self.signo = signo
        self.value = value
        #: Linux's self_exec_id: a process that exec'd since registering is not signalled
        self.exec_id = owner.exe_count


class MessageQueue:
    """One queue: attributes, messages in priority order, waiters and the notification."""

    def __init__(self, ns: "MqueueNamespace", maxmsg: int, msgsize: int, charged: int,
                 ruid: int) -> None:
        self.ns = ns
        self.maxmsg = maxmsg
        self.msgsize = msgsize
        self.charged = charged  #: bytes charged to `ruid`'s RLIMIT_MSGQUEUE
        self.ruid = ruid
        self._heap: list[tuple[int, int, bytes]] = []  # (-priority, arrival, text)
        self._arrival = itertools.count()
        self.qsize = 0  #: bytes of message text queued (the QSIZE of the queue file)
        self.notification: Notification | None = None
        #: woken on every change: blocked senders and receivers re-check, pollers re-poll
        self.wait = WaitQueue()
        #: the memos (task.syscall_state) of receivers blocked in mq_timedreceive
        self._receivers: list[dict] = []
        self.freed = False

    # -- state -------------------------------------------------------------------------
    @property
    def curmsgs(self) -> int:
        return len(self._heap)

    @property
    def full(self) -> bool:
        return len(self._heap) >= self.maxmsg

    def attr(self, nonblock: int) -> tuple[int, int, int, int]:
        """struct mq_attr's fields: mq_flags (the description's O_NONBLOCK), mq_maxmsg,
        mq_msgsize, mq_curmsgs."""
        return nonblock, self.maxmsg, self.msgsize, len(self._heap)

    # -- messages ----------------------------------------------------------------------
    def send(self, sender: "Task", text: bytes, prio: int) -> None:
        """Queue a message (the caller checked the size and that there is room), then
        notify the registered process if it made an empty queue non-empty with no
        receiver blocked, as __do_notify does."""
        heapq.heappush(self._heap, (-prio, next(self._arrival), text))
        self.qsize += len(text)
        if len(self._heap) == 1 and not self.receivers_blocked():
            self._fire(sender)
        self.wait.notify()

    def receive(self) -> tuple[bytes, int]:
        """Take the oldest message of the highest priority: (text, priority)."""
        neg_prio, _, text = heapq.heappop(self._heap)
        self.qsize -= len(text)
        self.wait.notify()  # senders may fit now
        return text, -neg_prio

    def receivers_blocked(self) -> bool:
        """Is some receiver parked in mq_timedreceive (its call still in progress)?"""
        self._receivers = [s for s in self._receivers
                           if s["task"].syscall_state is s and s["task"].alive]
        return bool(self._receivers)

    def add_receiver(self, state: dict) -> None:
        """Record a receiver about to block (its memo, which the kernel drops when the
        call ends or is interrupted: then it no longer counts)."""
        if not any(s is state for s in self._receivers):
            self._receivers.append(state)

    # -- notification ------------------------------------------------------------------
    def registration(self) -> Notification | None:
        """The live registration (one whose process has exited is gone: its descriptors
        were closed, which ends it in Linux even when another process did the killing)."""
        reg = self.notification
        if reg is not None and not reg.owner.alive:
            self.notification = reg = None
        return reg

    def flush(self, closer: "ThreadGroup") -> None:
        """A descriptor of the queue was closed by `closer`: its registration ends."""
        if self.notification is not None and self.notification.owner is closer:
            self.notification = None

    def register(self, reg: Notification | None, caller: "ThreadGroup") -> bool:
        """mq_notify: register (False when another process is registered: EBUSY), or with
        None remove the caller's own registration (anyone else's stays)."""
        current = self.registration()
        if reg is None:
            if current is not None and current.owner is caller:
                self.notification = None
            return True
        if current is not None:
            return False
        self.notification = reg
        return True

    def _fire(self, sender: "Task") -> None:
        reg = self.registration()
        if reg is None:
            return
        self.notification = None  # one shot, whatever the kind
        if reg.notify != SIGEV_SIGNAL or not reg.signo:
            return  # SIGEV_NONE (and signal 0, which Linux accepts and never sends)
        if reg.owner.exe_count != reg.exec_id:
            return
        from snakevisor.kernel.sigframe import pack_siginfo
        info = pack_siginfo(reg.signo, SI_MESGQ, pid=sender.tg.pid,
                            uid=sender.tg.creds.ruid, value=reg.value)
        sender.kernel.send_signal(reg.owner, reg.signo, info)

    def status_line(self) -> bytes:
        """What reading the queue's file gives (mqueue_read_file)."""
        reg = self.registration()
        notify = reg.notify if reg is not None else 0
        signo = reg.signo if reg is not None and reg.notify == SIGEV_SIGNAL else 0
        pid = reg.owner.pid if reg is not None else 0
        return (f"QSIZE:{self.qsize:<10d} NOTIFY:{notify:<5d} SIGNO:{signo:<5d} "
                f"NOTIFY_PID:{pid:<6d}\n").encode()

    def free(self) -> None:
        """The queue is gone (no name, no open description): give its charge back."""
        if not self.freed:
            self.freed = True
            self.ns.release(self)


class MqueueNamespace:
    """The sandbox's queues' limits and accounting (/proc/sys/fs/mqueue)."""

    def __init__(self) -> None:
        self.msg_max = DFLT_MSGMAX
        self.msgsize_max = DFLT_MSGSIZEMAX
        self.queues_max = DFLT_QUEUESMAX
        self.msg_default = DFLT_MSG
        self.msgsize_default = DFLT_MSGSIZE
        self.queues_count = 0
        #: RLIMIT_MSGQUEUE bytes in use by real uid
        self.charged: dict[int, int] = {}
        #: the "mqueue" file system holding the names (set by fsimpl.mqueuefs.mqueue_fs)
        self.fs: object = None

    def new_queue(self, task: "Task", attr: tuple[int, int] | None) -> MessageQueue:
        """mqueue_create_attr + mqueue_get_inode: the count (ENOSPC), the attributes
        (EINVAL, EOVERFLOW) and the memory charge (EMFILE), in Linux's order."""
        privileged = _capable(task, CAP_SYS_RESOURCE)
        if self.queues_count >= self.queues_max and not privileged:
            raise SyscallError(ENOSPC)
        maxmsg = min(self.msg_max, self.msg_default)
        msgsize = min(self.msgsize_max, self.msgsize_default)
        if attr is not None:
            maxmsg, msgsize = attr
        if maxmsg <= 0 or msgsize <= 0:
            raise SyscallError(EINVAL)
        if privileged:
            if maxmsg > HARD_MSGMAX or msgsize > HARD_MSGSIZEMAX:
                raise SyscallError(EINVAL)
        elif maxmsg > self.msg_max or msgsize > self.msgsize_max:
            raise SyscallError(EINVAL)
        if msgsize > ULONG_MAX // maxmsg:
            raise SyscallError(EOVERFLOW)
        charge = maxmsg * msgsize + maxmsg * MSG_MSG_SIZE + min(maxmsg, MQ_PRIO_MAX) * TREE_NODE_SIZE
        if charge > ULONG_MAX:
            raise SyscallError(EOVERFLOW)
        ruid = task.tg.creds.ruid
        used = self.charged.get(ruid, 0) + charge
        if used > task.tg.rlimits[RLIMIT_MSGQUEUE][0]:
            raise SyscallError(EMFILE)
        self.charged[ruid] = used
        self.queues_count += 1
        return MessageQueue(self, maxmsg, msgsize, charge, ruid)

    def release(self, queue: MessageQueue) -> None:
        self.charged[queue.ruid] = self.charged.get(queue.ruid, 0) - queue.charged
        self.queues_count -= 1

    def sysctl_set(self, name: str, value: int) -> None:
        """A write to /proc/sys/fs/mqueue/<name>: EINVAL outside ipc/mq_sysctl.c's range."""
        low, high = SYSCTL_RANGES[name]
        if not low <= value <= high:
            raise SyscallError(EINVAL)
        setattr(self, name, value)


#: /proc/sys/fs/mqueue's files (attributes of MqueueNamespace) and the values a write may
#: give them (MIN_MSGMAX, HARD_MSGMAX, MIN_MSGSIZEMAX, HARD_MSGSIZEMAX; queues_max: an int)
SYSCTL_RANGES = {
    "msg_default": (1, HARD_MSGMAX), "msg_max": (1, HARD_MSGMAX),
    "msgsize_default": (128, HARD_MSGSIZEMAX), "msgsize_max": (128, HARD_MSGSIZEMAX),
    "queues_max": (0, 0x7FFFFFFF),
}


def mqueue_namespace(kernel: "Kernel") -> MqueueNamespace:
    """The kernel's namespace, made on first use."""
    ns = getattr(kernel, "mqueue_ns", None)
    if ns is None:
        ns = MqueueNamespace()
        kernel.mqueue_ns = ns  # type: ignore[attr-defined]
    return ns


def realtime_now() -> float:
    return time.clock_gettime(time.CLOCK_REALTIME)
