"""Pods: more containers in a running sandbox's sentry (the sentry's side).

Why: Kubernetes runs a pod as a sandbox container (the pause process) and then creates each
of its containers with the annotations io.kubernetes.cri.container-type=container and
io.kubernetes.cri.sandbox-id=ID.  As gVisor does, such a container joins the sandbox's
sentry: one kernel (processes, System V and POSIX IPC, network, pod-wide volumes), while
the container keeps its own root and mount namespace — its image served by a gofer of its
own, which the runtime starts (the sentry is confined and cannot) and hands over with the
`join` request.  A member's processes are those whose root is its mount namespace.

The runtime side (runtime/container.py) keeps a stand-in host process per member, as for
`exec`: it holds the join connection, forwards signals, and exits with the member's status,
so engines treat it as the container's process.  The connection closing (the stand-in was
killed: `delete`) ends the member; the member's first process ending ends every process of
the member, as the end of a pid namespace's init does.
"""
from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING

from snakevisor.api import DEFAULT_PATH
from snakevisor.runtime.control import Container

if TYPE_CHECKING:
    from snakevisor.fsimpl.goferfs import GoferMounts
    from snakevisor.fsimpl.sandboxroot import SandboxRoot
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import ThreadGroup
    from snakevisor.runtime.console import ConsoleRelay
    from snakevisor.runtime.control import ControlServer

log = logging.getLogger("snakevisor.runtime")


class PodError(Exception):
    """A join or a request about a member was refused; one line for the runtime."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Member(Container):
    """One container that joined the pod's sentry (requests about it: Container.request)."""

    def __init__(self, kernel: "Kernel", member_id: str, root: "SandboxRoot",
                 gofer: "GoferMounts | None", first: "ThreadGroup",
                 conn: socket.socket) -> None:
        super().__init__(kernel, first, root)
        self.id = member_id
        self.gofer = gofer
        self.conn: "socket.socket | None" = conn  #: the stand-in's (None once it closed)
        self.relay: "ConsoleRelay | None" = None


class Pod:
    """The members of one sandbox, by container id."""

    def __init__(self, server: "ControlServer", kernel: "Kernel") -> None:
        self.server = server
        self.kernel = kernel
        self.members: dict[str, Member] = {}

    # -- join ------------------------------------------------------------------------
    def join(self, conn: socket.socket, message: dict, fds: list[int]) -> None:
        """Build the member's mount namespace over its gofer (fds[0]), load its first process
        stopped before its first instruction with the rest of fds as its stdio (or one fd:
        the host pty's slave) and its preserved fds; answer its pid.  The connection stays
        open for the member's life."""
        from snakevisor.fsimpl.goferfs import GoferConnection
        from snakevisor.fsimpl.mountns import MountConfig, build_root
        from snakevisor.fsimpl.stdio import StdioFile
        from snakevisor.gofer.launch import GoferPlan, mounts_over
        from snakevisor.kernel.boot import BootError, spawn

        kernel = self.kernel
        member_id = str(message["container"])
        if member_id in self.members:
            raise PodError(f"container {member_id} is already in this sandbox")
        profile = None
        if message.get("seccomp") is not None:  # --oci-seccomp: its own profile
            from snakevisor.syscalls import oci_seccomp
            try:
                profile = oci_seccomp.parse(message["seccomp"])
            except oci_seccomp.ProfileError as exc:
                raise PodError(f"linux.seccomp: {exc}") from None
        tty = bool(message.get("tty"))
        served = message.get("plan") is not None  # (else SNAKEVISOR_GOFER=0, development:
        if len(fds) < served + (1 if tty else 3):  # the sentry walks host paths itself)
            raise PodError("join: the gofer's socket and the stdio are needed")
        gofer = None
        if served:
            conn_9p = GoferConnection(None, socket.socket(fileno=fds.pop(0)))
            conn_9p.epoch = lambda: kernel.dispatched
            gofer = mounts_over(conn_9p, GoferPlan(**message["plan"]))
        try:
            root = build_root(kernel, MountConfig(**message["mounts"]), gofer)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            self._close(gofer, [])
            raise PodError(f"cannot build the container's mounts: {exc}") from None
        proc = message["process"]
        host_tty = fds.pop(0) if tty else -1
        # the stdio (none with a terminal: the relay gives it a pty), then --preserve-fds
        files: list = [None, None, None] if tty else []
        files += [StdioFile(fd) for fd in fds]
        fds.clear()
        try:
            task = spawn(kernel, [a.encode() for a in proc["args"]],
                         [f"{k}={v}".encode() for k, v in proc["env"].items()], proc["cwd"],
                         proc["env"].get("PATH", DEFAULT_PATH), files,
                         identity=(proc["uid"], proc["gid"], proc["groups"]),
                         rlimits={int(k): tuple(v) for k, v in proc["rlimits"].items()},
                         capabilities=proc.get("capabilities"),
                         no_new_privs=bool(proc.get("no_new_privs")), default_home=True,
                         run=False, root=root)
        except BootError as exc:
            self._close(gofer, [host_tty] if tty else [])
            raise PodError(str(exc), exc.status) from None
        member = Member(kernel, member_id, root, gofer, task.tg, conn)
        if profile is not None:
            from snakevisor.syscalls import oci_seccomp
            oci_seccomp.install(kernel, profile, root)
        if tty:
            from snakevisor.runtime.console import ConsoleRelay
            member.relay = ConsoleRelay(kernel, host_tty)
            member.relay.attach(task, host_signals=False)
        self.members[member_id] = member
        task.tg.on_exit = lambda status: self._ended(member, status)
        from snakevisor.runtime.control import send_quietly
        send_quietly(conn, {"pid": task.tg.pid, "host_pid": task.thread.tid})
        conn.setblocking(False)
        kernel.watch_fd(conn.fileno(), lambda: self.server.relay_message(
            conn, task.tg, member.relay, on_eof=lambda: self._gone(member)))
        log.info("container %s joined the sandbox as pid %d", member_id, task.tg.pid)

    @staticmethod
    def _close(gofer: "GoferMounts | None", fds: list[int]) -> None:
        if gofer is not None:
            gofer.close(wait=False)
        for fd in fds:
            os.close(fd)

    # -- the end of a member ------------------------------------------------------------------
    def _ended(self, member: Member, status: int) -> None:
        """Its first process ended: so do the rest of its processes, its stand-in and waiters
        hear the status, and its mounts go (its gofer exits)."""
        from snakevisor.kernel import signals
        from snakevisor.runtime.control import reply
        self.members.pop(member.id, None)
        if member.root in self.kernel.seccomp_profiles:
            from snakevisor.syscalls import oci_seccomp
            oci_seccomp.install(self.kernel, None, member.root)
        for tg in member.processes():
            self.kernel.send_signal(tg, signals.SIGKILL)
        if member.relay is not None:
            member.relay.close()
        if member.conn is not None:
            self.kernel.unwatch_fd(member.conn.fileno())
            member.conn.setblocking(True)
            reply(member.conn, {"status": status})
            member.conn = None
        for conn in member.waiters:
            reply(conn, {"status": status})
        member.waiters.clear()
        if member.gofer is not None:
            member.gofer.close(wait=False)
        log.info("container %s ended with status %#x", member.id, status)

    def _gone(self, member: Member) -> None:
        """The stand-in went away (killed by `delete`): the member ends now."""
        from snakevisor.kernel.signals import SIGKILL
        member.conn = None  # (closed by relay_message)
        if member.first.alive:
            if member.started:
                self.kernel.send_signal(member.first, SIGKILL)
            else:
                self.kernel.exit_group(member.first, SIGKILL)
