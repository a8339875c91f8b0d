"""The sentry's control socket: how runtime verbs (start, kill, state, ps, wait) reach a
running container.

Why a socket: the sentry outlives the `create` that forked it and is confined (no host
paths) soon after, so later verbs cannot touch its state directly.  `create` binds
STATE/ID/control.sock before forking; the sentry keeps the listening fd through
confinement and serves one JSON request per connection — while waiting for `start` from a
blocking loop, afterwards from the kernel's event loop (Kernel.watch_fd), always between
system calls, never in the middle of one.  Only root and the runtime's own uid may connect
(SO_PEERCRED), and the socket's directory is 0700 anyway.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import struct
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.runtime.pod import Pod

log = logging.getLogger("snakevisor.runtime")
REPLY_TIMEOUT = 5.0  #: seconds a verb waits for the sentry (it answers between syscalls)
#: fds one request may carry: a pod member's gofer socket, stdio, and --preserve-fds
MAX_FDS = 128
_UCRED = struct.Struct("3i")


class ControlError(Exception):
    """The sentry could not be asked (gone, or it refused); one line for the user."""


class ContainerKilled(Exception):
    """A signal ended the container before `start`: the sentry exits with `status`."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@contextmanager
def _in_dir(directory: str) -> Iterator[str]:
    """A short name for DIRECTORY/ (sun_path holds 108 bytes; engines' state paths with
    64-character ids do not fit): /proc/self/fd/N of an O_PATH descriptor."""
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/"
    finally:
        os.close(fd)


def listen(directory: str, name: str) -> socket.socket:
    """Bind and listen on DIRECTORY/NAME (0600)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    with _in_dir(directory) as prefix:
        sock.bind(prefix + name)
        os.chmod(prefix + name, 0o600)
    sock.listen(16)
    return sock


def connect(directory: str, name: str, timeout: float | None = REPLY_TIMEOUT) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        with _in_dir(directory) as prefix:
            sock.connect(prefix + name)
    except BaseException:
        sock.close()
        raise
    return sock


def send(sock: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode() + b"\n"
    if fds:
        sent = socket.send_fds(sock, [data], list(fds))
        data = data[sent:]
    sock.sendall(data)


def read_line(sock: socket.socket) -> dict:
    """One JSON line from the peer (ControlError when it goes away first)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    try:
        reply = json.loads(data)
    except ValueError:
        raise ControlError("the sandbox went away while answering") from None
    if "error" in reply:
        raise ControlError(str(reply["error"]))
    return reply


def request(directory: str, name: str, message: dict, timeout: float | None = REPLY_TIMEOUT) -> dict:
    """Send one request to the sentry listening at DIRECTORY/NAME and return its answer."""
    try:
        sock = connect(directory, name, timeout)
    except FileNotFoundError:
        raise ControlError("the sandbox's control socket is gone") from None
    except ConnectionRefusedError:
        raise ControlError("the sandbox is not running") from None
    except OSError as exc:
        raise ControlError(f"cannot reach the sandbox: {exc.strerror or exc}") from None
    try:
        send(sock, message)
        return read_line(sock)
    except FileNotFoundError:
        raise ControlError("the sandbox's control socket is gone") from None
    except ConnectionRefusedError:
        raise ControlError("the sandbox is not running") from None
    except socket.timeout:
        raise ControlError("the sandbox did not answer") from None
    except OSError as exc:
        raise ControlError(f"cannot reach the sandbox: {exc.strerror or exc}") from None
    finally:
        sock.close()


class ControlServer:
    """The sentry's side: answers verbs for one container."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.kernel: "Kernel | None" = None
        self.own: "OwnContainer | None" = None  #: the sandbox's own container (its first process)
        self._allowed = {0, os.getuid()}
        self._pod: "Pod | None" = None

    @property
    def started(self) -> bool:
        return self.own is not None and self.own.started

    @property
    def pod(self) -> "Pod":
        """The containers that joined this sandbox (made at the first join)."""
        if self._pod is None:
            from snakevisor.runtime.pod import Pod
            assert self.kernel is not None
            self._pod = Pod(self, self.kernel)
        return self._pod

    # -- the two phases -------------------------------------------------------------
    def serve_until_started(self, kernel: "Kernel") -> None:
        """Before `start`: the program is loaded and nothing runs; block on the socket until
        `start` (returns, the first process resumed) or a fatal `kill` (raises
        ContainerKilled)."""
        self.kernel = kernel
        assert kernel.init is not None
        self.own = OwnContainer(kernel, kernel.init, kernel.root)
        while not self.own.started:
            self._serve_one()
        self.listener.setblocking(False)
        kernel.watch_fd(self.listener.fileno(), self._serve_one)

    def finish(self, status: int) -> None:
        """The container ended: tell every `wait` its status, and every member of the pod
        that it was killed with the sandbox."""
        for conn in self.own.waiters if self.own is not None else []:
            reply(conn, {"status": status})
        if self._pod is not None:
            for member in list(self._pod.members.values()):
                for conn in [member.conn, *member.waiters]:
                    if conn is not None:
                        reply(conn, {"status": 9})  # (a wait status: killed by SIGKILL)
        self.listener.close()

    # -- requests --------------------------------------------------------------------
    def _serve_one(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        conn.settimeout(REPLY_TIMEOUT)
        try:
            uid = _UCRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                _UCRED.size))[1]
            if uid not in self._allowed:
                reply(conn, {"error": "permission denied"})
                return
            message, fds = _read_request(conn)
        except (OSError, ValueError):
            conn.close()
            return
        op = message.get("op")
        if op not in ("exec", "join"):
            for fd in fds:
                os.close(fd)
        answer: dict | None
        try:
            if op in ("exec", "join"):
                self._add_process(conn, op, message, fds)
                return
            name = message.get("container")  # (a pod member's id; none: our own)
            container = self.own if name is None else self.pod.members.get(str(name))
            if container is None:
                answer = {"error": f"container {name} is not in this sandbox (it has stopped)"}
            else:
                answer = container.request(op, message, conn)
                if answer is None:
                    return  # answered later
        except ContainerKilled:
            reply(conn, {})
            raise
        except (KeyError, TypeError, ValueError) as exc:
            answer = {"error": f"bad request: {exc}"}
        except Exception as exc:  # a bug of ours fails this request, not the sandbox
            log.error("control request %r failed: %s", op, exc, exc_info=True)
            answer = {"error": f"internal error: {type(exc).__name__}: {exc}"}
        reply(conn, answer)

    def _add_process(self, conn: socket.socket, op: str, message: dict, fds: list[int]) -> None:
        """exec or join: a request that hands us fds and keeps its connection."""
        from snakevisor.runtime.pod import PodError
        try:
            if not self.started:
                raise PodError(f"cannot {op} in a sandbox that has not started")
            if op == "join":
                self.pod.join(conn, message, fds)
            else:
                self._exec(conn, message, fds)
        except PodError as exc:
            reply(conn, {"error": str(exc), "status": exc.status})
        except (KeyError, TypeError, ValueError) as exc:
            reply(conn, {"error": f"bad request: {exc}"})
        except Exception as exc:  # a bug of ours fails this request, not the sandbox
            log.error("control request %r failed: %s", op, exc, exc_info=True)
            reply(conn, {"error": f"internal error: {type(exc).__name__}: {exc}"})
        finally:
            for fd in fds:  # what the request did not take (each taker removes its own)
                os.close(fd)

    # -- exec: a new process in the running sandbox ------------------------------------
    def _exec(self, conn: socket.socket, message: dict, fds: list[int]) -> None:
        """Start message["process"] with the caller's stdio (fds); the connection stays
        open: the caller forwards signals over it, we answer its end with the status, and
        its closing (the caller was killed) kills the process.  With a terminal the first
        fd is the host pty's slave: the process gets a pty of the sandbox's devpts relayed
        to it (runtime/console.py).  Fds after the stdio are --preserve-fds's (3, 4, ...).
        message["container"] names a pod member to exec in (its mount namespace)."""
        from snakevisor.api import DEFAULT_PATH
        from snakevisor.fsimpl.stdio import StdioFile
        from snakevisor.kernel.boot import BootError, spawn
        from snakevisor.runtime.pod import PodError

        kernel = self.kernel
        assert kernel is not None
        root = None
        if message.get("container") is not None:
            member = self.pod.members.get(str(message["container"]))
            if member is None or not member.started:
                raise PodError(f"container {message['container']} is not running")
            root = member.root
        proc = message["process"]
        env = [f"{k}={v}" for k, v in proc["env"].items()]
        tty = bool(message.get("tty"))
        if len(fds) < (1 if tty else 3):
            raise PodError("exec: the stdio (or a terminal) is needed")
        host_tty = fds.pop(0) if tty else -1
        files: list = [None, None, None] if tty else []
        files += [StdioFile(fd) for fd in fds]
        fds.clear()
        try:
            task = spawn(kernel, [a.encode() for a in proc["args"]], [e.encode() for e in env],
                         proc["cwd"], proc["env"].get("PATH", DEFAULT_PATH), files,
                         identity=(proc["uid"], proc["gid"], proc["groups"]),
                         rlimits={int(k): tuple(v) for k, v in proc["rlimits"].items()},
                         capabilities=proc.get("capabilities"),
                         no_new_privs=bool(proc.get("no_new_privs")), default_home=True,
                         run=not tty, root=root)
        except BootError as exc:
            if tty:
                os.close(host_tty)
            raise PodError(str(exc), exc.status) from None
        relay = None
        if tty:
            from snakevisor.runtime.console import ConsoleRelay
            relay = ConsoleRelay(kernel, host_tty)
            relay.attach(task, host_signals=False)
            task.thread.resume()
        tg = task.tg
        tg.on_exit = lambda status: self._exec_ended(conn, status, relay)
        send_quietly(conn, {"pid": tg.pid, "host_pid": task.thread.tid})
        conn.setblocking(False)
        kernel.watch_fd(conn.fileno(), lambda: self.relay_message(conn, tg, relay))

    def relay_message(self, conn: socket.socket, tg, relay=None,
                      on_eof: "Callable[[], None] | None" = None) -> None:
        """From a process's stand-in: a signal to forward, a resize of its terminal, or the
        stand-in's end (EOF): then the process dies too (on_eof, if given, decides how)."""
        from snakevisor.kernel import signals
        from snakevisor.kernel.sigframe import SI_USER
        kernel = self.kernel
        assert kernel is not None
        try:
            data = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            kernel.unwatch_fd(conn.fileno())
            conn.close()
            if on_eof is not None:
                on_eof()
            elif tg.alive:
                tg.on_exit = None
                kernel.send_signal(tg, signals.SIGKILL)
            return
        for line in data.splitlines():
            try:
                request = json.loads(line)
                if request.get("winch") and relay is not None:
                    relay.sync_winsize(signal_change=True)
                    continue
                sig = int(request["signal"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            if 0 < sig <= signals.NSIG and tg.alive:
                kernel.send_signal(tg, sig, signals.basic_siginfo(sig, SI_USER))

    def _exec_ended(self, conn: socket.socket, status: int, relay=None) -> None:
        assert self.kernel is not None
        if relay is not None:
            relay.close()
        self.kernel.unwatch_fd(conn.fileno())
        conn.setblocking(True)
        reply(conn, {"status": status})


def reply(conn: socket.socket, answer: dict) -> None:
    """The last line on a connection: then it is closed."""
    try:
        conn.sendall(json.dumps(answer).encode() + b"\n")
    except OSError:
        pass
    finally:
        conn.close()


def send_quietly(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


def _read_request(conn: socket.socket) -> tuple[dict, list[int]]:
    """One JSON line and the fds sent with it (at most MAX_FDS)."""
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, MAX_FDS)
    try:
        while not data.endswith(b"\n") and len(data) < 1 << 20:
            chunk = conn.recv(1 << 16)
            if not chunk:
                break
            data += chunk
        message = json.loads(data)
        if not isinstance(message, dict):
            raise ValueError("not an object")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return message, fds


def start_with_hooks(kernel: "Kernel", message: dict, first, conn: socket.socket,
                     resume: "Callable[[], None]", fail: "Callable[[], None]") -> None:
    """`start` with startContainer hooks: run them inside the sandbox, then resume the
    container's first process and answer — or, when one fails, answer why and end it."""
    from snakevisor.runtime.start_hooks import StartHooks

    def done(error: str | None) -> None:
        if error is None:
            resume()
            reply(conn, {})
        else:
            reply(conn, {"error": error})
            fail()
    StartHooks(kernel, message["hooks"], str(message.get("state", "{}")), first, done).run()


def deliver_signal(kernel: "Kernel", tg, sig: int, first: bool) -> None:
    """A signal from outside the sandbox (si_pid 0, SI_USER) to one process.

    As for the init of a pid namespace signalled from an ancestor namespace, a container's
    first process only receives signals it has a handler for, plus SIGKILL and SIGSTOP."""
    from snakevisor.kernel import signals
    from snakevisor.kernel.sigframe import SI_USER
    if sig == 0 or not tg.alive:
        return
    if (first and sig not in (signals.SIGKILL, signals.SIGSTOP)
            and signals.action(tg, sig)[0] == signals.SIG_DFL):
        return
    kernel.send_signal(tg, sig, signals.basic_siginfo(sig, SI_USER))


class Container:
    """One container of the sandbox as control requests see it: the sandbox's own (its first
    process's, OwnContainer) or a pod member's (runtime/pod.Member).  Its processes are those
    whose root is its mount namespace."""

    def __init__(self, kernel: "Kernel", first, root: object) -> None:
        self.kernel = kernel
        self.first = first  #: its first process (a ThreadGroup), stopped until `start`
        self.root = root  #: its mount namespace
        self.started = False
        self.waiters: list[socket.socket] = []  #: `wait` requests, answered at its end

    def processes(self) -> list:
        """Its live processes, the first one first."""
        live = [tg for tg in self.kernel.thread_groups.values()
                if tg.alive and tg.fs.root is self.root]
        return sorted(live, key=lambda tg: (tg is not self.first, tg.pid))

    def kill_unstarted(self, sig: int) -> None:
        """A fatal signal before `start`: the first process ends without having run."""
        self.kernel.exit_group(self.first, sig)

    def request(self, op: object, message: dict, conn: socket.socket) -> dict | None:
        """state, start, kill, ps, wait or debug (None: the answer comes later, on conn)."""
        from snakevisor.kernel import signals
        kernel = self.kernel
        if op == "state":
            return {"status": "running" if self.started else "created"}
        if op == "start":
            if self.started:
                return {"error": "the container is already running"}
            self.started = True
            resume = self.first.tasks[0].thread.resume
            if not message.get("hooks"):
                resume()
                return {}
            # startContainer hooks run first, in the loop; the first process is resumed
            # and `start` answered once they have succeeded
            start_with_hooks(kernel, message, self.first, conn, resume=resume,
                             fail=lambda: kernel.exit_group(self.first, 1 << 8))
            return None
        if op == "kill":
            sig = int(message["signal"])
            if not 0 <= sig <= signals.NSIG:
                raise ValueError(f"signal {sig}")
            if not self.started:
                if sig and sig not in signals.DEFAULT_IGNORE and sig not in signals.STOP_SIGNALS:
                    self.kill_unstarted(sig)
                return {}
            for tg in self.processes() if message.get("all") else [self.first]:
                deliver_signal(kernel, tg, sig, first=tg is self.first)
            return {}
        if op == "ps":  # the host pids of its processes (the stubs), first process first
            return {"pids": [tg.tasks[0].thread.tid for tg in self.processes() if tg.tasks]}
        if op == "wait":
            self.waiters.append(conn)
            return None
        if op == "debug":  # every task of the sandbox (kernel/debug.py)
            from snakevisor.kernel.debug import describe
            return {"report": describe(kernel)}
        return {"error": f"unknown request {op!r}"}


class OwnContainer(Container):
    """The sandbox's own container: killed before `start`, the whole sentry ends."""

    def kill_unstarted(self, sig: int) -> None:
        raise ContainerKilled(128 + sig)
