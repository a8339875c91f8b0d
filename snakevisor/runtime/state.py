"""The runtime's state directory: one directory per container under --root.

Why: every runtime verb is a separate short-lived process, and engines run create, kill and
delete for many containers at once.  A container's directory holds its record (state.json),
a lock file taken for the whole of any verb that changes it, and the sentry's control
socket.  Whether the container still runs is never stored: it is read from the host
(the sentry's pid with its start time, so a recycled pid is not mistaken for it) and from
the sentry itself over the control socket.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import re
from contextlib import contextmanager
from typing import Iterator

from snakevisor.runtime import OneLineError

OCI_VERSION = "1.0.2"  #: of the runtime spec whose state and config we speak
DEFAULT_ROOT = "/run/snakevisor"
RECORD = "state.json"
LOCK = "lock"
CONTROL = "control.sock"
#: runc's rule for container ids: no path tricks, no surprises in file names
_ID = re.compile(r"^[\w+\-.]+$")


class StateError(OneLineError):
    """A verb cannot act on the state it found; one line for the user."""


class Record:
    """What `create` wrote down about a container.  (A plain class: every verb loads one,
    and importing `dataclasses` would cost each light verb ~5 ms.)"""

    def __init__(self, id: str, bundle: str, rootfs: str, pid: int, pid_start: int,
                 created: str, annotations: dict[str, str] | None = None,
                 hooks: dict | None = None, owner: str = "", cgroup: str = "",
                 cpuset: bool = False, sandbox: str = "") -> None:
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.pid = pid
        #: the sentry's start time (clock ticks after boot): tells pid reuse apart
        self.pid_start = pid_start
        self.created = created  #: RFC 3339
        self.annotations = annotations or {}
        self.hooks = hooks or {}  #: kind -> [hook dicts], for start and delete
        self.owner = owner
        self.cgroup = cgroup  #: the application's cgroup path below each hierarchy ("": none)
        self.cpuset = cpuset  #: it has a cpuset group too
        #: a pod member: the id of the sandbox whose sentry runs it (record.pid is then its
        #: stand-in, runtime/pod.py); "" for a container that is its own sandbox
        self.sandbox = sandbox

    def as_dict(self) -> dict:
        return dict(vars(self))


def check_id(container_id: str) -> str:
    if not _ID.match(container_id) or container_id in (".", ".."):
        raise StateError(f"invalid container id {container_id!r}")
    return container_id


class StateDir:
    """--root: containers by id."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def path(self, container_id: str, name: str = "") -> str:
        return os.path.join(self.root, check_id(container_id), name)

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if _ID.match(n) and os.path.isfile(
            os.path.join(self.root, n, RECORD)))

    @contextmanager
    def claim(self, container_id: str) -> Iterator[None]:
        """Take a new id: its directory is made exactly once (EEXIST: taken) and its lock is
        held until the block ends, so no other verb sees it half-made."""
        os.makedirs(self.root, mode=0o711, exist_ok=True)
        directory = self.path(container_id)
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            raise StateError(f"container with id {container_id} already exists") from None
        fd = os.open(os.path.join(directory, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def locked(self, container_id: str) -> Iterator[None]:
        """Hold the container's lock (verbs on one container run one at a time)."""
        try:
            fd = os.open(self.path(container_id, LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                         0o600)
        except FileNotFoundError:
            raise StateError(f"container {container_id} does not exist") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def save(self, record: Record) -> None:
        path = self.path(record.id, RECORD)
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(record.as_dict(), fh)
        os.replace(tmp, path)

    def load(self, container_id: str) -> Record:
        try:
            with open(self.path(container_id, RECORD)) as fh:
                data = json.load(fh)
        except (FileNotFoundError, NotADirectoryError):
            raise StateError(f"container {container_id} does not exist") from None
        except (OSError, ValueError) as exc:
            raise StateError(f"container {container_id}: its state is unreadable ({exc})") \
                from None
        return Record(**data)

    def remove(self, container_id: str) -> None:
        directory = self.path(container_id)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(directory)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise


def process_start(pid: int) -> int | None:
    """The start time of a live (not zombie) host process, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def alive(record: Record) -> bool:
    return record.pid > 0 and process_start(record.pid) == record.pid_start
