"""startContainer hooks: programs of the container's image run inside the sandbox at `start`,
before the container's own program.

Why in the sentry: the OCI spec runs them "in the container namespace" — under snakevisor
that is the sandbox itself (its kernel, the container's mount namespace), never the host.
Each runs to completion in turn, as a parentless process with the state JSON on its stdin
and the container's stdout/stderr; the first to fail (non-zero status, not found, or over
its timeout) fails the start, and the container's first process is never resumed.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable

from snakevisor.api import DEFAULT_PATH

if TYPE_CHECKING:
    from snakevisor.kernel.kernel import Kernel
    from snakevisor.kernel.task import ThreadGroup

DEFAULT_TIMEOUT = 60.0


class StartHooks:
    """Run hooks (dicts: path, args, env, timeout) for the container whose first process is
    `first`; then done(None), or done(one line) at the first failure."""

    def __init__(self, kernel: "Kernel", hooks: list[dict], state: str, first: "ThreadGroup",
                 done: Callable[[str | None], None]) -> None:
        self.kernel = kernel
        self.hooks = list(hooks)
        self.state = state.encode()
        self.first = first
        self.done = done
        self._timer = None

    def run(self) -> None:
        """Start the next hook (or report that all succeeded)."""
        from snakevisor.fsimpl.stdio import StdioFile
        from snakevisor.kernel.boot import BootError, spawn
        if not self.hooks:
            self.done(None)
            return
        hook = self.hooks.pop(0)
        path = str(hook["path"])
        args = [path, *hook.get("args", [path])[1:]]  # (argv[0] is the path)
        env = [str(e) for e in hook.get("env", [])]
        stdin = self._state_pipe()
        # its stdout and stderr: the container's (the first process's files, shared)
        fds = self.first.fds.files
        files = [StdioFile(stdin), fds.get(1), fds.get(2)]
        try:
            task = spawn(self.kernel, [a.encode() for a in args], [e.encode() for e in env],
                         "/", _path_of(env), files, root=self.first.fs.root)
        except BootError as exc:
            self.done(f"startContainer hook {path}: {exc}")
            return
        self._timer = self.kernel.call_at(
            self.kernel.now() + float(hook.get("timeout") or DEFAULT_TIMEOUT),
            lambda: self._timed_out(task.tg, path))
        task.tg.on_exit = lambda status: self._ended(path, status)

    def _state_pipe(self) -> int:
        """A host pipe's read end holding the state JSON (then EOF)."""
        r, w = os.pipe2(os.O_CLOEXEC)
        try:
            os.write(w, self.state)  # (a state is far below a pipe's 64 KiB)
        finally:
            os.close(w)
        return r

    def _ended(self, path: str, status: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if status == 0:
            self.run()
        elif status & 0x7F:
            self.done(f"startContainer hook {path} failed: killed by signal {status & 0x7F}")
        else:
            self.done(f"startContainer hook {path} failed: exit status {status >> 8}")

    def _timed_out(self, tg: "ThreadGroup", path: str) -> None:
        from snakevisor.kernel.signals import SIGKILL
        self._timer = None
        if tg.alive:
            tg.on_exit = None
            self.kernel.send_signal(tg, SIGKILL)
            self.done(f"startContainer hook {path} failed: timed out")


def _path_of(env: list[str]) -> str:
    for item in env:
        if item.startswith("PATH="):
            return item[5:]
    return DEFAULT_PATH
