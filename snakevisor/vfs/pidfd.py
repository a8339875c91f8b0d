"""pidfds: file descriptors that name a process (pidfd_open, clone(CLONE_PIDFD)).

A pidfd holds the process itself, not its number, so it cannot be fooled by pid reuse;
it polls readable once the process has exited (whether or not it was reaped).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from snakevisor.vfs.epoll import anon_inode_stat
from snakevisor.vfs.file import POLLIN, POLLRDNORM, File

if TYPE_CHECKING:
    from snakevisor.kernel.errors import WaitQueue
    from snakevisor.kernel.task import ThreadGroup

O_RDWR = 2


class PidFd(File):
    """An open pidfd of one process."""

    def __init__(self, tg: "ThreadGroup", nonblock: bool) -> None:
        super().__init__(O_RDWR | (os.O_NONBLOCK if nonblock else 0), "anon_inode:[pidfd]")
        self.tg = tg

    def poll_events(self) -> int:
        return POLLIN | POLLRDNORM if not self.tg.alive else 0

    def poll_queue(self) -> "WaitQueue":
        return self.tg.exit_wait

    def stat(self) -> os.stat_result:
        return anon_inode_stat()
