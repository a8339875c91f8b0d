"""Starting the first process of a sandbox (pid 1)."""
from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from snakevisor.kernel.errors import MissingInterpreter, SyscallError
from snakevisor.kernel.kernel import Kernel
from snakevisor.kernel.task import Credentials, Task, ThreadGroup
from snakevisor.mm import loader
from snakevisor.syscalls.sys_process import exec_into
from snakevisor.vfs.fdtable import FdTable
from snakevisor.vfs.fs_context import FsContext

if TYPE_CHECKING:
    from snakevisor.fsimpl.sandboxroot import SandboxRoot
    from snakevisor.vfs.file import File

AT_FDCWD = -100


class BootError(Exception):
    """The sandbox's first process cannot start; the message is one line for the user."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


#: who the first process is inside the sandbox: uid, gid, supplementary groups
Identity = tuple[int, int, list[int]]


#: how much of /etc/passwd passwd_home reads
PASSWD_MAX = 1 << 20


def boot_init(kernel: Kernel, argv: list[bytes], envp: list[bytes], cwd: str, path: str, *,
              identity: Identity | None = None,
              rlimits: dict[int, tuple[int, int]] | None = None, inherited: int = 0,
              run: bool = True, capabilities: dict[str, int] | None = None,
              no_new_privs: bool = False, default_home: bool = False) -> Task:
    """Create pid 1 with the CLI's stdio and exec argv[0] (searched in PATH when bare), as
    `identity` (default root) with `rlimits` over the host's (an OCI process's settings),
    and the caller's fds 3 .. 3+inherited-1 as its own.  With run=False it stays stopped
    before its first instruction until the caller resumes task.thread."""
    from snakevisor.fsimpl.stdio import stdio_files

    return spawn(kernel, argv, envp, cwd, path, stdio_files(inherited), identity=identity,
                 rlimits=rlimits, run=run, init=True, capabilities=capabilities,
                 no_new_privs=no_new_privs, default_home=default_home)


def spawn(kernel: Kernel, argv: list[bytes], envp: list[bytes], cwd: str, path: str,
          files: "list[File | None]", *, identity: Identity | None = None,
          rlimits: dict[int, tuple[int, int]] | None = None, run: bool = True,
          init: bool = False, capabilities: dict[str, int] | None = None,
          no_new_privs: bool = False, root: "SandboxRoot | None" = None,
          default_home: bool = False) -> Task:
    """A new process from outside the sandbox's process tree: the first one (init=True), or
    one the runtime's `exec` adds to a running sandbox (no parent inside: getppid() is 0,
    as for a process that joined the pid namespace).  `files` become its fds 0, 1, 2, …
    (None: closed).  `capabilities` (masks by set name: bounding, effective, permitted,
    inheritable, ambient) replace what the ids would give before the program is exec'd, so
    Linux's exec rules then derive its sets; no_new_privs as prctl(PR_SET_NO_NEW_PRIVS).
    root: its mount namespace (a pod member's; default the sandbox's first container's).
    default_home: without HOME in envp, set it from the sandbox's /etc/passwd for its uid
    ("/" when there is no entry), as runc does for an OCI process.
    On failure nothing of it remains and BootError says why."""
    fds = FdTable()
    for fd, file in enumerate(files):
        if file is not None:  # a closed stdio fd stays closed for the application
            fds.set(fd, file)
    if root is None:
        root = kernel.root  # type: ignore[assignment]
    tg = ThreadGroup(kernel, kernel.alloc_pid(), None, None, fds, FsContext(root, cwd))  # type: ignore[arg-type]
    fds.users = 1
    task = Task(kernel, tg.pid, tg, None)  # type: ignore[arg-type]
    kernel.tasks[tg.pid] = task
    tg.tasks.append(task)
    kernel.thread_groups[tg.pid] = tg
    if init:
        kernel.init = tg
    if identity is not None:
        uid, gid, groups = identity
        tg.creds = Credentials(uid, gid)
        tg.creds.groups = list(groups)
    for resource, (soft, hard) in (rlimits or {}).items():
        tg.rlimits[resource] = [soft, hard]
    if capabilities is not None:
        from snakevisor.syscalls.sys_cred import Capabilities
        c = capabilities
        tg.caps = Capabilities(  # type: ignore[attr-defined]
            c["effective"] & c["permitted"], c["permitted"], c["inheritable"], c["bounding"],
            c["ambient"] & c["permitted"] & c["inheritable"])
    if no_new_privs:
        from snakevisor.syscalls.sys_info import thread_state
        thread_state(task).no_new_privs = True
    try:
        try:
            tg.fs.cwd = tg.fs.root.resolve_dir(task, cwd.encode())
        except SyscallError as exc:
            raise BootError(f"working directory {cwd}: {os.strerror(exc.errno)}", 126) from None
        if default_home and not any(e.startswith(b"HOME=") for e in envp):
            envp = [*envp, b"HOME=" + passwd_home(task, tg.creds.euid)]
        try:
            prog = _find_program(task, argv, path)
            exec_into(task, prog, envp, run=run)
        except MissingInterpreter as exc:
            interp = exc.path.decode(errors="replace")
            raise BootError(f"{argv[0].decode(errors='replace')}: interpreter {interp} not "
                            "found in the sandbox", 127) from None
        except SyscallError as exc:
            # worded as runc words them: engines turn "executable file not found", "no such
            # file or directory" and "permission denied" into the shell's 127 and 126
            name = argv[0].decode(errors="replace")
            if exc.errno == errno.ENOENT:
                raise BootError(f"exec: {name!r}: executable file not found in $PATH"
                                if b"/" not in argv[0] else
                                f"exec: {name!r}: no such file or directory", 127) from None
            status = 126 if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOEXEC,
                                          errno.EISDIR) else 1
            text = os.strerror(exc.errno)
            if exc.errno in (errno.EACCES, errno.EPERM):
                text = text.lower()  # the spelling engines look for
            raise BootError(f"exec: {name!r}: {text}", status) from None
    except BootError:
        if not init:  # a failed exec leaves nothing behind in a running sandbox
            if task.thread is None:
                kernel.tasks.pop(task.tid, None)
                kernel.thread_groups.pop(tg.pid, None)
                tg.fds.close_all()
            else:
                kernel.exit_group(tg, 127 << 8)
        raise
    return task


def passwd_home(task: Task, uid: int) -> bytes:
    """uid's home directory in the sandbox's /etc/passwd, read as the process itself would
    (through its root, with its permissions); "/" when there is none to be had."""
    try:
        file = task.tg.fs.root.open(task, AT_FDCWD, b"/etc/passwd", os.O_RDONLY, 0)
    except SyscallError:
        return b"/"
    try:
        data = b""
        while len(data) < PASSWD_MAX:
            chunk = file.read(task, 65536)
            if not chunk:
                break
            data += chunk
    except SyscallError:
        return b"/"
    finally:
        file.release()
    for line in data.splitlines():
        fields = line.split(b":")
        if len(fields) >= 7 and fields[2] == str(uid).encode():
            return fields[5] or b"/"
    return b"/"


def _find_program(task: Task, argv: list[bytes], path: str) -> loader.Program:
    name = argv[0]
    if b"/" in name:
        return loader.resolve(task, AT_FDCWD, name, argv)
    first_error: SyscallError | None = None
    for directory in path.split(":"):
        candidate = (directory.encode() or b".") + b"/" + name
        try:
            return loader.resolve(task, AT_FDCWD, candidate, argv)
        except SyscallError as exc:
            if exc.errno not in (errno.ENOENT, errno.ENOTDIR) and first_error is None:
                first_error = exc
    raise first_error or SyscallError(errno.ENOENT)
