"""Socket calls on descriptors that are not sockets, and families the sandbox lacks."""
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


def test_network_families_are_refused_and_logged() -> None:
    p = FakeProcess(root=None)
    assert p.raw("socket", 2, 1, 0) == -errno.EAFNOSUPPORT  # AF_INET until the network issue
    assert any("AF_INET" in msg for msg in p.kernel.warnings.values())
