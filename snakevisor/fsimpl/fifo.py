"""Named pipes (FIFOs) of the sentry's file systems: mknod(S_IFIFO) in a tmpfs.

Opens rendezvous as on Linux: a reader waits for a writer and a writer for a reader
(through the event loop), unless O_NONBLOCK (a lone non-blocking writer gets ENXIO) or
O_RDWR.  All opens share one pipe while any end is open; its data goes when the last
end closes.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import ENXIO, Block, SyscallError, WaitQueue
from snakevisor.vfs.inode import Inode
from snakevisor.vfs.pipe import Pipe, PipeFile

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task
    from snakevisor.vfs.file import File

O_ACCMODE, O_RDONLY, O_WRONLY = 0o3, 0, 1


class FifoNode(Inode):
    """The inode of a named pipe."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pipe: Pipe | None = None
        self.open_wait = WaitQueue()  #: opens waiting for the other side
        self.reader_opens = self.writer_opens = 0  #: counters, as Linux's r/w_counter

    def open(self, task: "Task", flags: int) -> "File":
        state = task.syscall_state
        acc = flags & O_ACCMODE
        nonblock = bool(flags & os.O_NONBLOCK)
        if state is not None and "fifo_end" in state:
            end, seen = state["fifo_end"], state["fifo_seen"]
        else:
            if self.pipe is None or not (self.pipe.readers or self.pipe.writers):
                self.pipe = Pipe(self.uid, self.gid)
            if acc == O_WRONLY and nonblock and not self.pipe.readers:
                raise SyscallError(ENXIO)
            end = PipeFile(self.pipe, flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC))
            if end.is_reader:
                self.reader_opens += 1
            if end.is_writer:
                self.writer_opens += 1
            self.open_wait.notify()
            seen = (self.reader_opens, self.writer_opens)
        if not nonblock and acc in (O_RDONLY, O_WRONLY):
            pipe = end.pipe
            other_came = (self.writer_opens > seen[1]) if acc == O_RDONLY else (self.reader_opens > seen[0])
            alone = not pipe.writers if acc == O_RDONLY else not pipe.readers
            if alone and not other_came:
                task.syscall_state = {"fifo_end": end, "fifo_seen": seen,
                                      # a signal ends the wait: this end was never installed
                                      "on_interrupt": lambda t: end.release()}
                raise Block(queue=self.open_wait)
        return end
