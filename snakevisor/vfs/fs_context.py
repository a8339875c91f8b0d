"""Per-process file-system context: which root and which working directory (CLONE_FS).

The working directory is a place the root holds (`place`: the directory itself, followed
across renames and marked when removed — see fsimpl/sandboxroot.Anchor), so relative
lookups, `..` and getcwd answer about the directory now, not about the name it was entered
by.  A root that keeps paths as text (HostRoot) stores canonical text instead; a text cwd
given to a SandboxRoot (at boot, in tests) becomes a held place at its first use.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from snakevisor.syscalls.args import AT_FDCWD

if TYPE_CHECKING:
    from snakevisor.fsimpl.hostfs import HostRoot
    from snakevisor.fsimpl.sandboxroot import Anchor
    from snakevisor.kernel.task import Task


class FsContext:
    """root: the container's root file system; the cwd: a held place or canonical text."""

    def __init__(self, root: "HostRoot", cwd: str = "/") -> None:
        self.root = root
        self._text = cwd
        #: the held working directory (None: `_text` is it)
        self.place: "Anchor | None" = None

    @property
    def cwd(self) -> str:
        """The canonical path of the working directory, as last known."""
        place = self.place
        return self._text if place is None else place.text

    @cwd.setter
    def cwd(self, where: "str | Anchor") -> None:
        """chdir: a held place (SandboxRoot), or canonical text (roots that keep text)."""
        if isinstance(where, str):
            self._text, self.place = where, None
        else:
            self.place = where

    def getcwd(self, task: "Task") -> bytes:
        """getcwd(2): the path now; ENOENT once the directory has been removed."""
        place = self.place
        if place is not None:
            return place.getcwd(task)
        self.root.stat(task, AT_FDCWD, b".")  # a text cwd: ENOENT if nothing is there now
        place = self.place  # (a SandboxRoot holds a text cwd from that first lookup on)
        return place.getcwd(task) if place is not None else os.fsencode(self._text)

    def link(self) -> str:
        """/proc/PID/cwd's text: the path now, with " (deleted)" once removed."""
        place = self.place
        return self._text if place is None else place.link(None)

    def copy(self) -> "FsContext":
        new = FsContext(self.root, self._text)
        new.place = self.place  # one place, shared: it stays current for both
        return new
