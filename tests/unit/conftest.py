"""Fake tasks for calling syscall handlers directly, and a native twin to compare with.

Why: handlers take a Task whose memory lives in a stub process.  Unit tests need neither
ptrace nor a stub — a real AddressSpace over a bytearray (so EFAULT checks are the real
ones), real FdTable/FsContext/ThreadGroup, and a kernel that only records warnings.
The native half (`native_calls`) runs the *same* raw system calls with ctypes in a
chroot (optionally a read-only bind mount) so errno values can be compared one to one.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import types
from typing import Any, Sequence

import pytest

from snakevisor.kernel.errors import Block, SyscallError
from snakevisor.kernel.task import Task, ThreadGroup
from snakevisor.mm.address_space import MAP_PRIVATE, AddressSpace, Vma
from snakevisor.syscalls import HANDLERS, load_all
from snakevisor.syscalls.numbers import SYSCALL_NUMBERS
from snakevisor.vfs.fdtable import FdTable
from snakevisor.vfs.fs_context import FsContext
from snakevisor.vfs.pipe import new_pipe

MEM_BASE = 0x10000000
MEM_SIZE = 16 << 20
U64 = (1 << 64) - 1


class FakeKernel:
    """Just what handlers ask of the kernel: warnings and a clock."""

    def __init__(self) -> None:
        self.warnings: dict[str, str] = {}
        # the CPUs the sandbox was given: two, whatever this machine has
        self.platform = types.SimpleNamespace(cpus=frozenset({0, 1}))
        self.current = None  # the task being served (set by tests that need it)
        self.seccomp_profiles: dict = {}  # --oci-seccomp profiles by container root (none)

    def warn_once(self, key: str, message: str) -> None:
        self.warnings.setdefault(key, message)

    def now(self) -> float:
        return time.monotonic()


class ArrayHost:
    """An AddressSpaceHost whose memory is one bytearray at MEM_BASE."""

    def __init__(self) -> None:
        self.mem = bytearray(MEM_SIZE)

    def read(self, addr: int, length: int) -> bytes:
        off = addr - MEM_BASE
        return bytes(self.mem[off:off + length])

    def write(self, addr: int, data: bytes) -> None:
        off = addr - MEM_BASE
        self.mem[off:off + len(data)] = data

    def destroy(self) -> None:
        pass


class Out:
    """An output buffer argument of `n` bytes (its contents are returned after the call)."""

    def __init__(self, n: int) -> None:
        self.n = n


class In:
    """An input buffer argument holding exactly these bytes (no NUL added)."""

    def __init__(self, data: bytes) -> None:
        self.data = data


class Ref:
    """The result of an earlier call in the same sequence (an fd, usually)."""

    def __init__(self, index: int) -> None:
        self.index = index


class FakeProcess:
    """A sandbox process without a host process: call handlers, inspect memory."""

    def __init__(self, root: Any, cwd: str = "/") -> None:
        load_all()
        self.kernel = FakeKernel()
        self.host = ArrayHost()
        mm = AddressSpace(self.host, [])  # type: ignore[arg-type]
        mm._insert(Vma(MEM_BASE, MEM_BASE + MEM_SIZE, 3, MAP_PRIVATE, name="[test]"))
        self.tg = ThreadGroup(self.kernel, 1, None, mm, FdTable(), FsContext(root, cwd))  # type: ignore[arg-type]
        self.task = Task(self.kernel, 1, self.tg, None)  # type: ignore[arg-type]
        self.tg.tasks.append(self.task)
        self._next = MEM_BASE + 4096

    # -- memory ----------------------------------------------------------------------
    def alloc(self, n: int) -> int:
        addr = self._next
        self._next += (max(n, 1) + 15) & ~15
        assert self._next <= MEM_BASE + MEM_SIZE, "fake memory exhausted"
        return addr

    def put(self, data: bytes) -> int:
        addr = self.alloc(len(data))
        self.host.write(addr, data)
        return addr

    def cstr(self, s: str | bytes) -> int:
        return self.put((s.encode() if isinstance(s, str) else s) + b"\0")

    def get(self, addr: int, n: int) -> bytes:
        return self.host.read(addr, n)

    # -- calls -----------------------------------------------------------------------
    def raw(self, name: str, *args: int, task: Task | None = None) -> int:
        """Call a handler with raw register values (in `task`, the main thread by default);
        -errno on failure, like the kernel; Block propagates."""
        handler = HANDLERS[SYSCALL_NUMBERS[name]]
        assert handler is not None, f"no handler for {name}"
        task = task or self.task
        regs = [a & U64 for a in args] + [0] * (6 - len(args))
        try:
            return handler(task, *regs)
        except SyscallError as e:
            task.syscall_state = None
            return -e.errno

    def call(self, name: str, *args: Any) -> int:
        """Like raw(), turning str/bytes into C strings and In/Out into buffers."""
        return self.run([(name, *args)])[0][0]

    def run(self, ops: Sequence[tuple]) -> list[list]:
        """Run a sequence of calls; each result is [return value, *output buffers]."""
        results: list[list] = []
        for name, *args in ops:
            regs, outs = [], []
            for a in args:
                if isinstance(a, (str, bytes)):
                    regs.append(self.cstr(a))
                elif isinstance(a, Out):
                    addr = self.alloc(a.n)
                    self.host.write(addr, bytes(a.n))
                    outs.append((addr, a.n))
                    regs.append(addr)
                elif isinstance(a, In):
                    regs.append(self.put(a.data))
                elif isinstance(a, Ref):
                    regs.append(results[a.index][0])
                else:
                    regs.append(a)
            ret = self.raw(name, *regs)
            results.append([ret] + [self.get(addr, n) for addr, n in outs])
        return results


def call_blocking(proc: FakeProcess, name: str, *args: Any) -> Block:
    """Call expecting the handler to raise Block; returns it."""
    handler = HANDLERS[SYSCALL_NUMBERS[name]]
    regs = [a & U64 for a in args] + [0] * (6 - len(args))
    with pytest.raises(Block) as info:
        handler(proc.task, *regs)
    return info.value


class DispatchEnv:
    """A fake process whose calls are dispatched as Kernel._call does it, with a second
    thread, `peer` (tid 2), to play the other side while the main one is parked.

    Why: blocking calls are tested the way the kernel drives them -- the handler raises
    Block, the test changes the world (often from `peer`), then dispatches the same call
    again -- which needs the kernel's bookkeeping of the call's memo (dropped once the call
    completes).  The FakeKernel has no send_signal or wake: both are recorded here, in
    `signals` (target, signal number) and `woken` (tasks)."""

    def __init__(self) -> None:
        self.p = FakeProcess(None)
        self.task = self.p.task
        self.peer = Task(self.p.kernel, 2, self.p.tg, None)  # type: ignore[arg-type]
        self.p.tg.tasks.append(self.peer)
        self.signals: list[tuple[object, int]] = []
        self.woken: list[Task] = []
        self.p.kernel.send_signal = (  # type: ignore[attr-defined]
            lambda target, sig, info=None: self.signals.append((target, sig)))
        self.p.kernel.wake = self.woken.append  # type: ignore[attr-defined]

    def dispatch(self, name: str, *args: int, task: Task | None = None) -> int:
        """One dispatch: -errno on failure, Block propagates (the memo kept for the call's
        next dispatch), the memo dropped once the call completes."""
        task = task or self.task
        result = self.p.raw(name, *args, task=task)
        task.syscall_state = None
        return result

    def blocks(self, name: str, *args: int) -> Block:
        """Dispatch in the main thread expecting Block; returns it."""
        with pytest.raises(Block) as info:
            self.dispatch(name, *args)
        return info.value

    def pipe(self) -> tuple[int, int]:
        """A sentry pipe's (read, write) ends installed in the fd table without a system
        call, for tests about what is done with pipes rather than about pipe2."""
        reader, writer = new_pipe(self.task, 0)
        fds = self.task.fds
        return fds.install(reader), fds.install(writer)


# -- the native twin -----------------------------------------------------------------
_NATIVE_RUNNER = r"""
import ctypes, json, os, sys
spec = json.load(sys.stdin)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
root = spec["root"]
if spec["readonly"]:
    if os.system("mount --bind '%s' '%s' && mount -o remount,ro,bind '%s'" % (root, root, root)):
        sys.exit(3)
os.chroot(root)
os.chdir(spec["cwd"])
os.umask(spec["umask"])
results = []
for op in spec["ops"]:
    args, outs = [], []
    for kind, val in op[1:]:
        if kind == "i":
            args.append(ctypes.c_ulong(val & (2**64 - 1)))
        elif kind == "s":
            args.append(ctypes.create_string_buffer(bytes.fromhex(val)))
        elif kind == "b":
            data = bytes.fromhex(val)
            args.append(ctypes.create_string_buffer(data, len(data)))
        elif kind == "o":
            buf = ctypes.create_string_buffer(val)
            outs.append(buf)
            args.append(buf)
        elif kind == "r":
            args.append(ctypes.c_long(results[val][0]))
    ctypes.set_errno(0)
    ret = libc.syscall(ctypes.c_long(op[0]), *args)
    if ret == -1:
        ret = -ctypes.get_errno()
    results.append([ret] + [o.raw.hex() for o in outs])
print(json.dumps(results))
"""


def native_available() -> bool:
    return os.geteuid() == 0 and shutil.which("unshare") is not None


def native_calls(root: str, ops: Sequence[tuple], readonly: bool, cwd: str = "/",
                 umask: int = 0o022) -> list[list]:
    """Run `ops` natively, chrooted into `root` (a read-only bind mount if asked)."""
    if not native_available():
        pytest.skip("native comparison needs root and unshare(1)")
    encoded = []
    for name, *args in ops:
        enc: list = [SYSCALL_NUMBERS[name]]
        for a in args:
            if isinstance(a, (str, bytes)):
                enc.append(["s", (a.encode() if isinstance(a, str) else a).hex()])
            elif isinstance(a, Out):
                enc.append(["o", a.n])
            elif isinstance(a, In):
                enc.append(["b", a.data.hex()])
            elif isinstance(a, Ref):
                enc.append(["r", a.index])
            else:
                enc.append(["i", a])
        encoded.append(enc)
    spec = {"root": root, "readonly": readonly, "cwd": cwd, "umask": umask, "ops": encoded}
    res = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable,
                          "-c", _NATIVE_RUNNER], input=json.dumps(spec), capture_output=True,
                         text=True, timeout=60)
    if res.returncode != 0:
        pytest.skip(f"native runner unavailable: {res.stderr.strip()[-300:]}")
    return [[r[0]] + [bytes.fromhex(h) for h in r[1:]] for r in json.loads(res.stdout)]
