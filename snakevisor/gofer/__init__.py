"""The gofer: a confined process that alone opens host files and serves them over 9P2000.L.

server.py (requests), confine.py (namespace, pivot_root, capabilities), seccomp.py (allowlist),
hostcalls.py (ctypes calls), launch.py (starting one), __main__.py (the command line).
"""
from typing import NamedTuple


class Volume(NamedTuple):
    """A bind mount: host path, the sandbox path it appears at (its attach name), read-only."""

    host: str
    path: bytes
    ro: bool = False
