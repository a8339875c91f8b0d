"""Per-process file-system context: which root and which working directory (CLONE_FS)."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from snakevisor.fsimpl.hostfs import HostRoot


class FsContext:
    """root: the container's root file system; cwd: canonical sandbox path of the cwd."""

    def __init__(self, root: "HostRoot", cwd: str = "/") -> None:
        self.root = root
        self.cwd = cwd

    def copy(self) -> "FsContext":
        return FsContext(self.root, self.cwd)
