"""Per-process file descriptor tables (fd number -> open file description + FD_CLOEXEC)."""
from __future__ import annotations

from snakevisor.kernel.errors import EBADF, EINVAL, EMFILE, SyscallError
from snakevisor.vfs.file import File, put


class FdTable:
    """fd -> (File, cloexec).  Shared between threads (CLONE_FILES), copied by fork."""

    def __init__(self) -> None:
        self.files: dict[int, File] = {}
        self.cloexec: set[int] = set()
        self.users = 0  #: thread groups using this table (CLONE_FILES shares it)

    def get(self, fd: int) -> File:
        try:
            return self.files[fd]
        except (KeyError, TypeError):
            raise SyscallError(EBADF) from None

    def install(self, file: File, cloexec: bool = False, lowest: int = 0, limit: int = 1024) -> int:
        """Put `file` at the lowest free fd >= `lowest`; EMFILE past `limit` (RLIMIT_NOFILE)."""
        fd = lowest
        files = self.files
        while fd in files:
            fd += 1
        if fd >= limit:
            raise SyscallError(EMFILE)
        self.set(fd, file, cloexec)
        return fd

    def set(self, fd: int, file: File, cloexec: bool = False) -> None:
        """Point `fd` at `file`, closing what it pointed at before (dup2 semantics)."""
        if fd < 0:
            raise SyscallError(EBADF)
        old = self.files.get(fd)
        file.refs += 1
        self.files[fd] = file
        if cloexec:
            self.cloexec.add(fd)
        else:
            self.cloexec.discard(fd)
        if old is not None:
            _drop(old)

    def close(self, fd: int) -> None:
        file = self.files.pop(fd, None)
        if file is None:
            raise SyscallError(EBADF)
        self.cloexec.discard(fd)
        _drop(file)

    def close_range(self, first: int, last: int, cloexec_only: bool = False) -> None:
        if first > last:
            raise SyscallError(EINVAL)
        for fd in [fd for fd in self.files if first <= fd <= last]:
            if cloexec_only:
                self.cloexec.add(fd)
            else:
                self.close(fd)

    def close_on_exec(self) -> None:
        for fd in list(self.cloexec):
            self.close(fd)

    def fork(self) -> "FdTable":
        other = FdTable()
        for fd, file in self.files.items():
            file.refs += 1
            other.files[fd] = file
        other.cloexec = set(self.cloexec)
        return other

    def close_all(self) -> None:
        for fd in list(self.files):
            self.close(fd)


_drop = put
