"""Socket calls before sockets exist: Linux's answers for descriptors that are not sockets."""
from __future__ import annotations

import errno

import pytest

from conftest import FakeProcess
from snakevisor.vfs.pipe import new_pipe


@pytest.mark.parametrize("name", ["getpeername", "getsockname", "connect", "accept4", "sendmsg",
                                  "recvfrom", "shutdown", "setsockopt", "listen"])
def test_fd_calls(name: str) -> None:
    p = FakeProcess(root=None)
    reader, writer = new_pipe(p.task, 0)
    fd = p.tg.fds.install(reader)
    assert p.raw(name, fd, 0, 0) == -errno.ENOTSOCK
    assert p.raw(name, 77, 0, 0) == -errno.EBADF


def test_socket_creation_is_enosys_and_logged() -> None:
    p = FakeProcess(root=None)
    assert p.raw("socket", 1, 1, 0) == -errno.ENOSYS
    assert any("socket(family=1" in msg for msg in p.kernel.warnings.values())
