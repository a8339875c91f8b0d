"""The ptrace platform: application threads run under PTRACE_SYSEMU inside stub processes.

Every application address space is a host process started from our stub program
(snakevisor/platform/stub/stub.c), never from the sentry.  The first stub of a sandbox
confines itself and parks; it is the *template*.  Each new application address space is a
host fork of the template (or, for an application fork, of the parent's stub), so it holds
only the stub's text, a scratch page, and the kernel's vDSO.

Injection: with the thread stopped, %rip is pointed at ``stub_park`` ("syscall; int3") with
the chosen number and arguments; PTRACE_CONT runs exactly that call and the ``int3`` stops
the thread again.  One round trip per host call, and the stub's seccomp filter refuses any
system call from any other instruction.
"""
from __future__ import annotations

import ctypes
import logging
import os
import socket
import struct
import subprocess
import tempfile
from pathlib import Path

from snakevisor.platform import (
    STOP_EXITED,
    STOP_OTHER,
    STOP_SIGNAL,
    STOP_SYSCALL,
    STOP_WAKE,
    AddressSpaceHost,
    Platform,
    StopEvent,
    ThreadHost,
)
from snakevisor.platform.regs import FXSAVE_SIZE, REG_OFFSET, Regs

_libc = ctypes.CDLL(None, use_errno=True)
log = logging.getLogger("snakevisor")
_ptrace = _libc.ptrace
_ptrace.argtypes = (ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p)
_ptrace.restype = ctypes.c_long

PTRACE_TRACEME = 0
PTRACE_PEEKUSER = 3
PTRACE_POKEUSER = 6
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_GETREGS = 12
PTRACE_SETREGS = 13
PTRACE_GETFPREGS = 14
PTRACE_SETFPREGS = 15
PTRACE_SYSCALL = 24
PTRACE_SYSEMU = 31
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETSIGINFO = 0x4202
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
PTRACE_SEIZE = 0x4206
PTRACE_GET_SYSCALL_INFO = 0x420E

PTRACE_O_TRACESYSGOOD = 1
PTRACE_O_TRACEFORK = 1 << 1
PTRACE_O_TRACEVFORK = 1 << 2
PTRACE_O_TRACECLONE = 1 << 3
PTRACE_O_EXITKILL = 1 << 20

PTRACE_EVENT_FORK = 1
PTRACE_EVENT_VFORK = 2
PTRACE_EVENT_CLONE = 3

NT_X86_XSTATE = 0x202
AUDIT_ARCH_X86_64 = 0xC000003E
WALL = 0x40000000

SIGTRAP = 5
SIGSTOP = 19
SIGKILL = 9
SYSCALL_STOP = SIGTRAP | 0x80

#: address of the stub's "syscall; int3" (fixed by the stub's link address)
STUB_BASE = 0x7FF000000000
#: stub_cmpxchg's distance from stub_park (stub.c aligns it there)
CMPXCHG_OFFSET = 8
#: a page of the stub's own, for arguments of injected calls (msghdr for fd passing)
SCRATCH_ADDR = 0x7FF000100000
SCRATCH_SIZE = 0x1000
#: the stub's host fd for the socket over which the sentry passes file descriptors
STUB_FD_SOCKET = 3

NR_READ, NR_CLOSE, NR_MMAP, NR_MUNMAP, NR_GETPID, NR_FORK = 0, 3, 9, 11, 39, 57
NR_CLONE, NR_EXIT = 56, 60
CLONE_VM, CLONE_FS, CLONE_FILES, CLONE_SIGHAND = 0x100, 0x200, 0x400, 0x800
CLONE_THREAD, CLONE_SYSVSEM = 0x10000, 0x40000
#: a host thread of the same stub process: what an application thread is on the host
HOST_THREAD_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM
#: a separate host process sharing the stub's memory (vfork, clone(CLONE_VM) children)
HOST_SHARED_VM_FLAGS = CLONE_VM | CLONE_FS | CLONE_FILES | 17  # exit signal SIGCHLD
NR_RECVMSG = 47
MSG_DONTWAIT = 0x40
MSG_CMSG_CLOEXEC = 0x40000000

_STUB_SOURCE = Path(__file__).with_name("stub") / "stub.c"
_STUB_CFLAGS = (
    "-O2 -static -nostdlib -fno-pie -no-pie -mcmodel=large -fno-stack-protector "
    "-fcf-protection=none -fno-asynchronous-unwind-tables -Wl,--build-id=none "
    f"-Wl,-z,noexecstack -Wl,-Ttext-segment={STUB_BASE:#x}"
).split()

_SYSCALL_INFO = struct.Struct("<BxxxIQQQ6Q")


class PlatformError(Exception):
    """The host refused something the platform needs; the sandbox cannot run."""


def _check(res: int, what: str) -> int:
    if res == -1:
        err = ctypes.get_errno()
        if err:
            raise OSError(err, f"{what}: {os.strerror(err)}")
    return res


def stub_binary() -> Path:
    """Path of the compiled stub, building it with gcc when missing or stale."""
    candidates = [_STUB_SOURCE.with_name("snakevisor-stub"),
                  Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "snakevisor" / "snakevisor-stub"]
    for path in candidates:
        try:
            if path.stat().st_mtime >= _STUB_SOURCE.stat().st_mtime:
                return path
        except FileNotFoundError:
            pass
    for path in candidates:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            subprocess.run(["gcc", *_STUB_CFLAGS, "-o", str(tmp), str(_STUB_SOURCE)],
                           check=True, capture_output=True)
            os.replace(tmp, path)
            return path
        except PermissionError:
            continue
        except (OSError, subprocess.CalledProcessError) as exc:
            raise PlatformError(f"cannot build the stub with gcc: {exc}") from exc
    raise PlatformError("no writable place to build the stub")


class PtraceThread(ThreadHost):
    """One traced host thread.  Cheap accessors for the per-syscall hot path."""

    __slots__ = ("tid", "tgid", "aspace", "_info", "_regs")

    def __init__(self, tid: int, aspace: "PtraceAddressSpace", tgid: int = 0) -> None:
        self.tid = tid
        self.tgid = tgid or tid  #: host pid of the stub process the thread belongs to
        self.aspace = aspace
        self._info = ctypes.create_string_buffer(_SYSCALL_INFO.size + 16)
        self._regs = Regs()

    # -- registers ---------------------------------------------------------------------
    def get_regs(self) -> Regs:
        regs = Regs()
        _check(_ptrace(PTRACE_GETREGS, self.tid, None, ctypes.addressof(regs)), "GETREGS")
        return regs

    def set_regs(self, regs: Regs) -> None:
        _check(_ptrace(PTRACE_SETREGS, self.tid, None, ctypes.addressof(regs)), "SETREGS")

    def set_reg(self, name: str, value: int) -> None:
        _check(_ptrace(PTRACE_POKEUSER, self.tid, REG_OFFSET[name], value & 0xFFFFFFFFFFFFFFFF),
               "POKEUSER")

    def set_return(self, value: int) -> None:
        """Hot path: the result of the system call the thread is stopped in."""
        _ptrace(PTRACE_POKEUSER, self.tid, 80, value & 0xFFFFFFFFFFFFFFFF)

    def get_fpregs(self) -> bytes:
        buf = ctypes.create_string_buffer(FXSAVE_SIZE)
        _check(_ptrace(PTRACE_GETFPREGS, self.tid, None, buf), "GETFPREGS")
        return buf.raw

    def set_fpregs(self, image: bytes) -> None:
        buf = ctypes.create_string_buffer(bytes(image), FXSAVE_SIZE)
        _check(_ptrace(PTRACE_SETFPREGS, self.tid, None, buf), "SETFPREGS")

    def get_xstate(self) -> bytes:
        """The full XSAVE area (AVX and later state), as PTRACE_GETREGSET NT_X86_XSTATE gives it."""
        buf = ctypes.create_string_buffer(16384)
        iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), len(buf))
        _check(_ptrace(PTRACE_GETREGSET, self.tid, NT_X86_XSTATE, ctypes.addressof(iov)), "GETREGSET")
        return buf.raw[: iov[1]]

    def set_xstate(self, image: bytes) -> None:
        buf = ctypes.create_string_buffer(bytes(image), len(image))
        iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), len(image))
        _check(_ptrace(PTRACE_SETREGSET, self.tid, NT_X86_XSTATE, ctypes.addressof(iov)), "SETREGSET")

    def syscall_info(self) -> tuple:
        """(arch, ip, sp, nr, a0..a5) of the syscall-entry stop the thread is in."""
        _ptrace(PTRACE_GET_SYSCALL_INFO, self.tid, _SYSCALL_INFO.size, self._info)
        return _SYSCALL_INFO.unpack_from(self._info)[1:]

    # -- running -----------------------------------------------------------------------
    def resume(self, sig: int = 0) -> None:
        """Run application code until its next system call or fault."""
        _ptrace(PTRACE_SYSEMU, self.tid, None, sig)

    def kill(self) -> None:
        try:
            os.kill(self.tid, SIGKILL)
        except ProcessLookupError:
            pass

    def inject(self, nr: int, args: tuple[int, ...] = ()) -> int:
        """Run host syscall `nr` in this (stopped) thread's address space; restore registers.

        Returns the raw result (negative errno on failure).  Fork events met on the way
        are recorded in ``self.aspace.last_event_msg``.
        """
        saved = self.get_regs()
        regs = saved.copy()
        regs.rip = self.aspace.syscall_addr
        regs.rax = nr
        regs.orig_rax = 0xFFFFFFFFFFFFFFFF
        a = tuple(args) + (0,) * (6 - len(args))
        regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9 = (x & 0xFFFFFFFFFFFFFFFF for x in a)
        self.set_regs(regs)
        _check(_ptrace(PTRACE_CONT, self.tid, None, 0), "CONT")
        while True:
            _, status = os.waitpid(self.tid, WALL)
            if os.WIFSTOPPED(status):
                sig = os.WSTOPSIG(status)
                event = status >> 16
                if event:
                    msg = ctypes.c_ulong()
                    _ptrace(PTRACE_GETEVENTMSG, self.tid, None, ctypes.byref(msg))
                    self.aspace.last_event_msg = msg.value
                    _ptrace(PTRACE_CONT, self.tid, None, 0)
                    continue
                if sig == SIGTRAP:
                    break
                # A host signal (only SIGKILL-like cases get here): suppress and go on.
                _ptrace(PTRACE_CONT, self.tid, None, 0)
                continue
            raise PlatformError(f"stub {self.tid} died during injected syscall {nr} (status {status:#x})")
        done = self.get_regs()
        self.set_regs(saved)
        res = done.rax
        return res - (1 << 64) if res >= 1 << 63 else res

    def clone_thread(self) -> "PtraceThread":
        """A new host thread of this stub process (an application thread), stopped before it
        runs anything; the caller gives it registers."""
        return PtraceThread(self._clone(HOST_THREAD_FLAGS, "thread"), self.aspace, self.tgid)

    def clone_shared_vm(self) -> "PtraceThread":
        """A new host process sharing this one's memory (vfork / clone(CLONE_VM) children).
        Its thread belongs to the same PtraceAddressSpace: same memory, same stub fds."""
        return PtraceThread(self._clone(HOST_SHARED_VM_FLAGS, "process"), self.aspace)

    def _clone(self, flags: int, what: str) -> int:
        res = self.inject(NR_CLONE, (flags, 0, 0, 0, 0))
        if res < 0:
            raise OSError(-res, f"clone of a stub {what}")
        tid = self.aspace.last_event_msg  # the host's number (res is the stub pidns's)
        self.aspace.platform.await_new(tid)
        return tid

    def exit_thread(self) -> None:
        """End this host thread alone (an application thread's exit); others keep running."""
        regs = self.get_regs()
        regs.rip = self.aspace.syscall_addr
        regs.rax = NR_EXIT
        regs.rdi = 0
        regs.orig_rax = 0xFFFFFFFFFFFFFFFF
        self.set_regs(regs)
        _check(_ptrace(PTRACE_CONT, self.tid, None, 0), "CONT")
        while True:
            try:
                _, status = os.waitpid(self.tid, WALL)
            except ChildProcessError:
                return
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                return
            _ptrace(PTRACE_CONT, self.tid, None, 0)  # stray stop on the way out

    def interrupt(self) -> None:
        """Make a thread running application code stop soon (a host SIGSTOP the sentry will
        see and swallow), so that it can take a signal."""
        _libc.syscall(234, self.tgid, self.tid, SIGSTOP)  # tgkill; ESRCH if already gone

    def cmpxchg32(self, addr: int, expected: int, new: int) -> int:
        """Atomically replace the u32 at addr by `new` if it holds `expected`; returns the
        value found (== expected on success).  Runs the stub's `lock cmpxchg`, so it is
        atomic against the application's other threads; OSError(EFAULT) on a bad address."""
        saved = self.get_regs()
        regs = saved.copy()
        regs.rip = self.aspace.syscall_addr + CMPXCHG_OFFSET
        regs.rdi, regs.rax, regs.rsi = addr, expected & 0xFFFFFFFF, new & 0xFFFFFFFF
        regs.orig_rax = 0xFFFFFFFFFFFFFFFF
        self.set_regs(regs)
        _check(_ptrace(PTRACE_CONT, self.tid, None, 0), "CONT")
        while True:
            _, status = os.waitpid(self.tid, WALL)
            if not os.WIFSTOPPED(status):
                raise PlatformError(f"stub {self.tid} died in cmpxchg (status {status:#x})")
            sig = os.WSTOPSIG(status)
            if sig == SIGTRAP and not status >> 16:
                break
            if sig in (11, 7):  # SIGSEGV/SIGBUS: a bad address; the stop is dropped
                self.set_regs(saved)
                raise OSError(14, "cmpxchg on a bad address")
            _ptrace(PTRACE_CONT, self.tid, None, 0)
        found = self.get_regs().rax & 0xFFFFFFFF
        self.set_regs(saved)
        return found

    def siginfo(self) -> bytes:
        buf = ctypes.create_string_buffer(128)
        _check(_ptrace(PTRACE_GETSIGINFO, self.tid, None, buf), "GETSIGINFO")
        return buf.raw


class PtraceAddressSpace(AddressSpaceHost):
    """A stub process: the host side of one application address space."""

    def __init__(self, platform: "PtracePlatform", pid: int, syscall_addr: int) -> None:
        self.platform = platform
        self.pid = pid
        self.syscall_addr = syscall_addr
        self.mem_fd = os.open(f"/proc/{pid}/mem", os.O_RDWR | os.O_CLOEXEC)
        #: the thread through which host calls are injected (a stopped one)
        self.control = PtraceThread(pid, self)
        self.last_event_msg = 0
        self.alive = True
        self._fd_cache: dict[tuple[int, int, int], int] = {}

    def read(self, addr: int, length: int) -> bytes:
        return os.pread(self.mem_fd, length, addr)

    def write(self, addr: int, data: bytes) -> None:
        os.pwrite(self.mem_fd, data, addr)

    def syscall(self, nr: int, *args: int) -> int:
        return self.control.inject(nr, args)

    def cmpxchg32(self, addr: int, expected: int, new: int) -> int:
        return self.control.cmpxchg32(addr, expected, new)

    def install_fd(self, hostfd: int) -> int:
        """Pass `hostfd` to the stub over its socket; returns the stub's fd number."""
        socket.send_fds(self.platform.fd_socket, [b"F"], [hostfd])
        # struct msghdr {name,namelen,iov,iovlen,control,controllen,flags} + iovec + cmsg
        base = SCRATCH_ADDR
        iov_addr, data_addr, cmsg_addr = base + 64, base + 80, base + 96
        msghdr = struct.pack("<QQQQQQi4x", 0, 0, iov_addr, 1, cmsg_addr, 24, 0)
        iov = struct.pack("<QQ", data_addr, 8)
        self.write(base, msghdr + iov + bytes(16) + bytes(24))
        res = self.syscall(NR_RECVMSG, STUB_FD_SOCKET, base, MSG_DONTWAIT | MSG_CMSG_CLOEXEC)
        if res < 0:
            raise OSError(-res, "stub recvmsg")
        cmsg = self.read(cmsg_addr, 24)
        _len, level, typ, fd = struct.unpack("<QiiI4x", cmsg)
        if level != socket.SOL_SOCKET or typ != socket.SCM_RIGHTS:
            raise PlatformError("stub did not receive the descriptor")
        return fd

    def mmap_file(self, addr: int, length: int, prot: int, flags: int, hostfd: int, offset: int) -> int:
        """mmap a host file into the stub, reusing the stub's copy of it when it has one.

        Passing a descriptor costs two injected calls (recvmsg, later close), so the stub
        keeps up to FD_CACHE_SIZE of them, keyed by inode and access mode: a dynamic
        loader maps each library several times in a row.
        """
        st = os.fstat(hostfd)
        key = (st.st_dev, st.st_ino, _accmode(hostfd))
        stub_fd = self._fd_cache.pop(key, None)
        if stub_fd is None:
            stub_fd = self.install_fd(hostfd)
            if len(self._fd_cache) >= FD_CACHE_SIZE:
                old_key = next(iter(self._fd_cache))
                self.syscall(NR_CLOSE, self._fd_cache.pop(old_key))
        self._fd_cache[key] = stub_fd
        return self.syscall(NR_MMAP, addr, length, prot, flags, stub_fd, offset)

    def fork(self) -> "PtraceAddressSpace":
        res = self.syscall(NR_FORK)
        if res < 0:
            raise OSError(-res, "fork of stub")
        child = self.last_event_msg
        self.platform.await_new(child)
        other = PtraceAddressSpace(self.platform, child, self.syscall_addr)
        other._fd_cache = dict(self._fd_cache)  # the host fork copied the descriptors too
        return other

    def destroy(self) -> None:
        if not self.alive:
            return
        self.alive = False
        os.close(self.mem_fd)
        self.platform.reap(self.pid)


class PtracePlatform(Platform):
    """Catches system calls with PTRACE_SYSEMU; one stub process per address space."""

    name = "ptrace"

    def __init__(self, pin: bool = True) -> None:
        self.cpus = frozenset(os.sched_getaffinity(0))
        if pin:
            _pin_to_one_cpu()
        # Orphaned stubs (the template outlives its launcher) are reparented to us to reap.
        _libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
        self.stub_path = stub_binary()
        self.fd_socket, stub_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.template: PtraceAddressSpace | None = None
        self.host_vmas: list[tuple[int, int, str]] = []
        self._sigchld_fd = -1
        self._doorbell = 0  #: see prepare_ring
        self._cpu_group = None  #: the stubs' own cpu cgroup (platform/cpugroup.py)
        self._start_template(stub_end)
        stub_end.close()

    # -- the template ------------------------------------------------------------------
    def _start_template(self, stub_end: socket.socket) -> None:
        root = tempfile.mkdtemp(prefix="snakevisor-root-")
        os.chmod(root, 0o555)
        try:
            os.set_inheritable(stub_end.fileno(), True)
            actions = [(os.POSIX_SPAWN_DUP2, stub_end.fileno(), STUB_FD_SOCKET)]
            actions += [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_RDWR, 0) for fd in (0, 1, 2)]
            outer = os.posix_spawn(str(self.stub_path), ["snakevisor-stub", root], {},
                                   file_actions=actions)
            _, status = os.waitpid(outer, WALL)
            if not (os.WIFSTOPPED(status) and os.WSTOPSIG(status) == SIGSTOP):
                raise PlatformError(f"stub failed to start (status {status:#x}: "
                                    f"{_stub_exit_reason(status)})")
            self._join_cpu_group(outer)  # (before it forks the template: every stub inherits)
            _check(_ptrace(PTRACE_SETOPTIONS, outer, None,
                           PTRACE_O_EXITKILL | PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK |
                           PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE), "SETOPTIONS")
            # uid/gid 0 in the sandbox's user namespace is nobody on the host.
            with open(f"/proc/{outer}/setgroups", "w") as f:
                f.write("deny")
            with open(f"/proc/{outer}/uid_map", "w") as f:
                f.write("0 65534 1")
            with open(f"/proc/{outer}/gid_map", "w") as f:
                f.write("0 65534 1")
            _ptrace(PTRACE_CONT, outer, None, 0)
            template_pid = 0
            while True:
                pid, status = os.waitpid(-1, WALL)
                if pid == outer:
                    if os.WIFSTOPPED(status):
                        if status >> 16 == PTRACE_EVENT_FORK:
                            msg = ctypes.c_ulong()
                            _ptrace(PTRACE_GETEVENTMSG, outer, None, ctypes.byref(msg))
                            template_pid = msg.value
                        _ptrace(PTRACE_CONT, outer, None, 0)
                        continue
                    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and template_pid:
                        continue
                    raise PlatformError(f"stub failed to confine itself: {_stub_exit_reason(status)}")
                if pid == template_pid:
                    if os.WIFSTOPPED(status) and os.WSTOPSIG(status) == SIGSTOP:
                        _ptrace(PTRACE_CONT, pid, None, 0)
                        continue
                    if os.WIFSTOPPED(status) and os.WSTOPSIG(status) == SIGTRAP:
                        break
                    raise PlatformError(f"stub failed to confine itself: {_stub_exit_reason(status)}")
        finally:
            os.rmdir(root)
        regs = Regs()
        _check(_ptrace(PTRACE_GETREGS, template_pid, None, ctypes.addressof(regs)), "GETREGS")
        template = PtraceAddressSpace(self, template_pid, regs.rip - 3)
        self.template = template
        # Drop the stub's own stack; keep text, vDSO and vvar; add the scratch page.
        for start, end, name in _read_maps(template_pid):
            if name == "[stack]":
                template.syscall(NR_MUNMAP, start, end - start)
        res = template.syscall(NR_MMAP, SCRATCH_ADDR, SCRATCH_SIZE, 3, 0x32, -1, 0)
        if res != SCRATCH_ADDR:
            raise PlatformError(f"stub scratch mapping failed ({res})")
        self.host_vmas = _read_maps(template_pid)

    def _join_cpu_group(self, pid: int) -> None:
        from snakevisor.platform import cpugroup
        self._cpu_group = cpugroup.create()
        if self._cpu_group is not None:
            try:
                self._cpu_group.join(pid)
            except OSError as exc:
                log.debug("stubs stay in the sentry's cpu cgroup: %s", exc)

    # -- Platform ----------------------------------------------------------------------
    def new_address_space(self) -> PtraceAddressSpace:
        assert self.template is not None
        return self.template.fork()

    def await_new(self, pid: int) -> None:
        """Wait for the attach stop of a freshly forked stub."""
        while True:
            _, status = os.waitpid(pid, WALL)
            if os.WIFSTOPPED(status):
                return
            raise PlatformError(f"new stub {pid} died at birth ({status:#x})")

    def wait(self) -> StopEvent:
        tid, status = os.waitpid(-1, WALL)
        if tid == self._doorbell:
            return self._answer_doorbell(status)
        return self._decode(tid, status)

    # -- the doorbell ------------------------------------------------------------------
    def prepare_ring(self) -> None:
        """The doorbell: a child of ours that sleeps forever, traced by us.  A signal sent
        to it (ring) puts it in a signal-delivery stop, which the loop's waitpid(-1) reports
        like any thread's stop -- so the blocking wait needs no fd to be woken.  It holds no
        fd of ours and dies with us (PR_SET_PDEATHSIG)."""
        if self._doorbell:
            return
        import signal
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            try:
                _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
                os.closerange(0, os.sysconf("SC_OPEN_MAX"))
                while True:
                    signal.pause()  # (a signal never reaches it: we discard each one)
            finally:
                os._exit(0)
        if _ptrace(PTRACE_SEIZE, pid, None, 0) != 0:
            err = ctypes.get_errno()
            os.kill(pid, SIGKILL)
            os.waitpid(pid, 0)
            raise PlatformError(f"cannot trace the doorbell: {os.strerror(err)}")
        self._doorbell = pid

    def ring(self) -> None:
        import signal
        if self._doorbell:
            try:
                os.kill(self._doorbell, signal.SIGUSR1)
            except ProcessLookupError:
                pass

    def _answer_doorbell(self, status: int) -> StopEvent:
        """Resume the doorbell, its signal discarded; STOP_WAKE for the loop."""
        if os.WIFSTOPPED(status):
            _ptrace(PTRACE_CONT, self._doorbell, None, 0)
        else:
            self._doorbell = 0  # (killed from outside: rings are no-ops from now on)
        return StopEvent(STOP_WAKE, 0, 0)

    @staticmethod
    def _decode(tid: int, status: int) -> StopEvent:
        if status >> 8 == SYSCALL_STOP and status & 0x7F == 0x7F:
            return StopEvent(STOP_SYSCALL, tid, 0)
        if os.WIFSTOPPED(status):
            if status >> 16:
                return StopEvent(STOP_OTHER, tid, status >> 16)
            return StopEvent(STOP_SIGNAL, tid, os.WSTOPSIG(status))
        return StopEvent(STOP_EXITED, tid, status)

    def poll(self) -> tuple[int, int, int] | None:
        """A pending stop as (kind, tid, value), without blocking; None if there is none."""
        try:
            tid, status = os.waitpid(-1, WALL | os.WNOHANG)
        except ChildProcessError:
            return None
        if tid == 0:
            return None
        if tid == self._doorbell:
            return self._answer_doorbell(status)[:3]
        return self._decode(tid, status)

    def stop_fd(self) -> int:
        """A host fd that becomes readable when some traced thread stops (SIGCHLD signalfd)."""
        if self._sigchld_fd < 0:
            import signal
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
            mask = ctypes.c_ulong(1 << (signal.SIGCHLD - 1))
            fd = _libc.syscall(289, -1, ctypes.byref(mask), 8, os.O_NONBLOCK | os.O_CLOEXEC)
            self._sigchld_fd = _check(fd, "signalfd")
        return self._sigchld_fd

    def drain_stop_fd(self) -> None:
        try:
            while os.read(self._sigchld_fd, 128 * 16):
                pass
        except BlockingIOError:
            pass

    def reap(self, pid: int) -> None:
        """Kill a stub process.  Its threads' exits are collected by the event loop's own
        waitpid(-1) as they come (a multi-threaded leader is reported only after all its
        threads, so waiting for it here could block the sentry)."""
        try:
            os.kill(pid, SIGKILL)
        except ProcessLookupError:
            pass

    def shutdown(self) -> None:
        if self._doorbell:
            self.reap(self._doorbell)
            self._doorbell = 0
        if self.template is not None:
            # Killing pid 1 of the sandbox's pid namespace kills every stub in it.
            self.template.destroy()
            self.template = None
        # Collect every stub's exit so none is left behind (they are all SIGKILLed: this
        # takes milliseconds; the deadline only guards against a host that misbehaves).
        import time
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, WALL | os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                time.sleep(0.001)
        if self._cpu_group is not None:
            self._cpu_group.remove()
            self._cpu_group = None
        self.fd_socket.close()


FD_CACHE_SIZE = 32


def _accmode(hostfd: int) -> int:
    import fcntl
    return fcntl.fcntl(hostfd, fcntl.F_GETFL) & os.O_ACCMODE


def _pin_to_one_cpu() -> None:
    """Run the sentry and (by inheritance) every stub on one CPU.

    A ptrace stop is a pair of context switches between the stub and the sentry; on one CPU
    they are direct hand-offs, across CPUs each one pays an IPI and a wake-up.  Measured on
    a 2-core host: a trapped getpid costs ~15 us pinned against ~20-30 us unpinned.  The CPU
    is chosen by pid so that concurrent sandboxes spread over the machine.
    """
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > 1:
        os.sched_setaffinity(0, {allowed[os.getpid() % len(allowed)]})


def _read_maps(pid: int) -> list[tuple[int, int, str]]:
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split()
            start, end = (int(x, 16) for x in parts[0].split("-"))
            out.append((start, end, parts[5] if len(parts) > 5 else ""))
    return out


_STUB_STEPS = {1: "bad arguments", 2: "PTRACE_TRACEME", 3: "unshare namespaces", 4: "handshake",
               5: "fork into pid namespace", 6: "make mounts private", 7: "mount empty root",
               8: "chdir root", 9: "pivot_root", 10: "detach old root", 11: "chdir /",
               12: "remount root read-only", 13: "drop capabilities", 14: "no_new_privs",
               15: "ignore SIGCHLD", 16: "block signals", 17: "install seccomp filter",
               18: "setresgid", 19: "setresuid"}


def _stub_exit_reason(status: int) -> str:
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return f"step '{_STUB_STEPS.get(code - 100, code)}' failed"
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"unexpected stop {status:#x}"
