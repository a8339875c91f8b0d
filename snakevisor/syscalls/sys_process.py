"""Process image and thread bookkeeping: execve, exit, arch_prctl, TLS and robust lists."""
from __future__ import annotations

from typing import TYPE_CHECKING

import struct

from snakevisor.kernel.errors import (E2BIG, EACCES, EAGAIN, EBADF, EINVAL, EMFILE, ENAMETOOLONG,
                                      ENOENT, EPERM, ESRCH, Block, SyscallError)
from snakevisor.kernel.process import (CLONE_PARENT_SETTID, CLONE_PIDFD, CLONE_VFORK, CLONE_VM, P_ALL, P_PGID, P_PID, P_PIDFD,
                                       WALL, WCLONE, WCONTINUED, WEXITED, WNOHANG, WNOTHREAD,
                                       WNOWAIT, WSTOPPED, WUNTRACED, do_clone, do_wait,
                                       exit_thread, futex_exit_for_exec, release_task)
from snakevisor.kernel.signals import SIG_IGN, SIGCHLD, basic_siginfo
from snakevisor.syscalls.sys_cred import creds_exec
from snakevisor.syscalls.sys_time import usage_exec
from snakevisor.syscalls.sys_timer import timers_exec
from snakevisor.vfs.file import put
from snakevisor.vfs.pidfd import PidFd

O_NONBLOCK = 0o4000
from snakevisor.mm import loader
from snakevisor.mm.address_space import TASK_SIZE
from snakevisor.syscalls import NO_RETURN, syscall
from snakevisor.syscalls.args import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, PATH_MAX, s32, u32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task, ThreadGroup

MAX_ARG_STRINGS = 0x7FFFFFFF


def read_string_array(task: "Task", addr: int, limit: int = 1 << 17) -> list[bytes]:
    """A NULL-terminated array of C strings (argv/envp); NULL array = empty, like Linux."""
    out: list[bytes] = []
    if addr == 0:
        return out
    while True:
        ptr = task.mm.read_u64(addr + 8 * len(out))
        if ptr == 0:
            return out
        if len(out) >= limit:
            raise SyscallError(E2BIG)
        out.append(task.mm.read_cstring(ptr, loader.MAX_ARG_STRLEN + 1))


def exec_into(task: "Task", prog: loader.Program, envp: list[bytes], run: bool = True) -> None:
    """Replace task's process image with `prog` and start it running (unless `run` is
    False: the OCI runtime's created state): the other threads go, the calling one takes
    the process's pid, caught signals return to SIG_DFL."""
    kernel = task.kernel
    held = [prog.file] + ([prog.interp[0]] if prog.interp is not None else [])
    for file in held:
        file.refs += 1  # the loader's own hold; the new mappings take theirs
    try:
        new_mm = loader.load(task, prog, envp)
    finally:
        for file in held:
            put(file)
    tg = task.tg
    old_mm = tg.mm
    old_host_pid = tg.host_pid
    old_users = len(tg.tasks)  # each thread of the group counted one user of old_mm
    if old_mm is not None:
        usage_exec(tg)  # CPU time and faults carry across exec
        futex_exit_for_exec(task)  # the exec'ing thread's robust list and clear_child_tid
    for other in [t for t in tg.tasks if t is not task]:
        release_task(other)
    tg.tasks[:] = [task]
    if task.tid != tg.pid:  # a non-leader exec takes over the leader's identity
        kernel.tasks.pop(task.tid, None)
        task.tid = tg.pid
        kernel.tasks[tg.pid] = task
    if task.thread is not None:
        kernel.by_host_tid.pop(task.thread.tid, None)
    task.thread = new_mm.host.control
    kernel.by_host_tid[task.thread.tid] = task
    tg.mm = new_mm
    tg.host_pid = task.thread.tgid
    if old_mm is not None:
        old_mm.users -= old_users
        if old_mm.users <= 0:
            old_mm.destroy()
        elif old_host_pid:
            kernel.platform_kill(old_host_pid)  # a vfork child leaves the shared memory
    if task.vfork_parent is not None:
        kernel.wake(task.vfork_parent)
        task.vfork_parent = None
    for waiter in tg.vfork_waiters:
        kernel.wake(waiter)
    tg.vfork_waiters = []
    actions = {sig: act for sig, act in tg.sigactions.items() if act[0] == SIG_IGN}
    tg.sigactions = actions  # a fresh table: no longer shared with a CLONE_SIGHAND peer
    task.altstack = (0, 0, 0)  # Linux after execve (new threads get SS_DISABLE)
    tg.exit_signal = SIGCHLD
    if tg.fds.users > 1:  # unshare a CLONE_FILES table before closing on exec
        tg.fds.users -= 1
        tg.fds = tg.fds.fork()
        tg.fds.users = 1
    from snakevisor.syscalls.sys_file import before_close
    before_close(task, list(tg.fds.cloexec))
    tg.fds.close_on_exec()
    creds_exec(task, prog.ids)
    timers_exec(tg)
    tg.exe = prog.path
    tg.exe_count += 1
    tg.argv = list(prog.argv)
    tg.env = list(envp)
    task.comm = prog.filename.rsplit(b"/", 1)[-1][:15]
    task.clear_child_tid = task.robust_list = 0
    task.fs_base = 0
    if run:
        task.thread.resume()


def do_execve(task: "Task", dirfd: int, path: int, argv: int, envp: int, flags: int) -> object:
    if flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW):
        raise SyscallError(EINVAL)
    filename = task.mm.read_cstring(path, PATH_MAX)
    if len(filename) >= PATH_MAX:
        raise SyscallError(ENAMETOOLONG)
    args = read_string_array(task, argv)
    env = read_string_array(task, envp)
    loader.check_strings(args + env)
    prog = loader.resolve(task, dirfd, filename, args, flags)
    if not filename and flags & AT_EMPTY_PATH:
        prog.filename = b"/dev/fd/%d" % dirfd
    exec_into(task, prog, env)
    return NO_RETURN


@syscall("execve")
def sys_execve(task: "Task", path: int, argv: int, envp: int, *_: int) -> object:
    return do_execve(task, AT_FDCWD, path, argv, envp, 0)


@syscall("execveat")
def sys_execveat(task: "Task", dirfd: int, path: int, argv: int, envp: int, flags: int, *_: int) -> object:
    return do_execve(task, s32(dirfd), path, argv, envp, s32(flags))


@syscall("exit_group")
def sys_exit_group(task: "Task", status: int, *_: int) -> object:
    task.kernel.exit_group(task.tg, (status & 0xFF) << 8)
    return NO_RETURN


@syscall("exit")
def sys_exit(task: "Task", status: int, *_: int) -> object:
    exit_thread(task, status)
    return NO_RETURN


# -- clone, fork, vfork -------------------------------------------------------------------
def _start_child(task: "Task", flags: int, stack: int, ptid: int, ctid: int, tls: int,
                 pidfd_ptr: int = 0) -> object:
    state = task.syscall_state
    if state is not None and "vfork_child" in state:
        child = state["vfork_child"]
        if child.vfork_parent is task and child.alive:
            raise Block()  # woken when the child execs or exits
        return child.tid
    pidfd_slot = _reserve_pidfd(task, flags)
    child = do_clone(task, flags, stack, ptid, ctid, tls)
    kernel = task.kernel
    if pidfd_slot is not None:  # CLONE_PIDFD: the parent gets an fd naming the child
        from snakevisor.syscalls.sys_file import _nofile
        fd = task.tg.fds.install(PidFd(child.tg, False), True, pidfd_slot, _nofile(task))
        task.mm.write(pidfd_ptr or ptid, fd.to_bytes(4, "little"))
    if flags & CLONE_VFORK:
        child.vfork_parent = task
        task.syscall_state = {"vfork_child": child}
        kernel.finish(child, None)
        raise Block()
    kernel.finish(child, None)
    return child.tid


def _reserve_pidfd(task: "Task", flags: int) -> int | None:
    """CLONE_PIDFD needs a free descriptor; EMFILE before anything is created."""
    if not flags & CLONE_PIDFD:
        return None
    from snakevisor.syscalls.sys_file import _nofile
    fds = task.tg.fds
    slot = 0
    while slot in fds.files:
        slot += 1
    if slot >= _nofile(task):
        raise SyscallError(EMFILE)
    return slot


@syscall("clone")
def sys_clone(task: "Task", flags: int, stack: int, ptid: int, ctid: int, tls: int, *_: int) -> object:
    flags &= 0xFFFFFFFF
    if flags & CLONE_PIDFD and flags & CLONE_PARENT_SETTID:
        raise SyscallError(EINVAL)  # clone() returns the pidfd through parent_tid
    return _start_child(task, flags, stack, ptid, ctid, tls)


@syscall("fork")
def sys_fork(task: "Task", *_: int) -> object:
    return _start_child(task, SIGCHLD, 0, 0, 0, 0)


@syscall("vfork")
def sys_vfork(task: "Task", *_: int) -> object:
    return _start_child(task, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0)


_CLONE_ARGS = struct.Struct("<11Q")


@syscall("clone3", partial="no set_tid or cgroup placement")
def sys_clone3(task: "Task", args_addr: int, size: int, *_: int) -> object:
    if size < 64 or size > 4096:
        raise SyscallError(EINVAL)
    raw = task.mm.read(args_addr, min(size, _CLONE_ARGS.size))
    raw += bytes(_CLONE_ARGS.size - len(raw))
    if size > _CLONE_ARGS.size and any(task.mm.read(args_addr + _CLONE_ARGS.size, size - _CLONE_ARGS.size)):
        raise SyscallError(E2BIG)
    (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
     set_tid_size, cgroup) = _CLONE_ARGS.unpack(raw)
    if flags & 0xFF or exit_signal > 64 or set_tid_size or set_tid or cgroup:
        if set_tid_size or set_tid:
            task.kernel.warn_once("clone3:set_tid", "clone3 with set_tid -> EINVAL")
        raise SyscallError(EINVAL)
    if (stack == 0) != (stack_size == 0) and stack_size:
        raise SyscallError(EINVAL)
    top = stack + stack_size if stack else 0
    return _start_child(task, flags | exit_signal, top, parent_tid, child_tid, tls, pidfd)


# -- wait -------------------------------------------------------------------------------------
_WAIT4_OPTIONS = WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE
_WAITID_OPTIONS = WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE


def _wait(task: "Task", idtype: int, ident: int, options: int):
    found = do_wait(task, idtype, ident, options)
    if found is None:
        if options & WNOHANG:
            return None
        raise Block(queue=task.tg.child_wait)
    return found


@syscall("wait4")
def sys_wait4(task: "Task", pid: int, status_addr: int, options: int, rusage: int, *_: int) -> object:
    pid, options = s32(pid), u32(options)
    if options & ~_WAIT4_OPTIONS:
        raise SyscallError(EINVAL)
    if pid == -0x80000000:
        raise SyscallError(ESRCH)
    if pid > 0:
        idtype, ident = P_PID, pid
    elif pid == 0:
        idtype, ident = P_PGID, task.tg.pgid
    elif pid == -1:
        idtype, ident = P_ALL, 0
    else:
        idtype, ident = P_PGID, -pid
    found = _wait(task, idtype, ident, options | WEXITED)
    if found is None:
        return 0
    if status_addr:
        task.mm.write(status_addr, (found.status & 0xFFFFFFFF).to_bytes(4, "little"))
    if rusage:
        task.mm.write(rusage, _child_rusage(found.tg))
    return found.tg.pid


@syscall("waitid")
def sys_waitid(task: "Task", idtype: int, ident: int, infop: int, options: int, rusage: int, *_: int) -> object:
    idtype, ident, options = s32(idtype), s32(ident), u32(options)
    if options & ~_WAITID_OPTIONS or not options & (WEXITED | WSTOPPED | WCONTINUED):
        raise SyscallError(EINVAL)
    if idtype not in (P_ALL, P_PID, P_PGID, P_PIDFD):
        raise SyscallError(EINVAL)
    nonblock = False
    if idtype == P_PIDFD:
        pidfd = task.fds.get(ident)
        if not isinstance(pidfd, PidFd):
            raise SyscallError(EBADF)
        idtype, ident = P_PID, pidfd.tg.pid
        nonblock = bool(pidfd.flags & O_NONBLOCK)
    if idtype == P_PGID and ident == 0:
        ident = task.tg.pgid
    if idtype != P_ALL and ident <= 0:
        raise SyscallError(EINVAL)
    try:
        found = _wait(task, idtype, ident, options)
    except Block:
        if nonblock:
            raise SyscallError(EAGAIN) from None  # a O_NONBLOCK pidfd never waits
        raise
    if infop:
        if found is None:
            task.mm.write(infop, bytes(128))
        else:
            task.mm.write(infop, basic_siginfo(SIGCHLD, found.code, pid=found.tg.pid,
                                               uid=found.tg.creds.ruid, status=found.value))
    if rusage and found is not None:
        task.mm.write(rusage, _child_rusage(found.tg))
    return 0


def _child_rusage(tg: "ThreadGroup") -> bytes:
    """struct rusage of a collected child (zeros when its usage is not known)."""
    usage = tg.final_usage
    pack = getattr(usage, "pack", None)
    return pack() if callable(pack) else bytes(144)


# -- pidfds -----------------------------------------------------------------------------------
PIDFD_NONBLOCK, PIDFD_THREAD = O_NONBLOCK, 0o200  # PIDFD_THREAD is O_EXCL


@syscall("pidfd_open")
def sys_pidfd_open(task: "Task", pid: int, flags: int, *_: int) -> int:
    pid, flags = s32(pid), u32(flags)
    if flags & ~(PIDFD_NONBLOCK | PIDFD_THREAD) or pid <= 0:
        raise SyscallError(EINVAL)
    target = task.kernel.tasks.get(pid)
    if target is not None and target.alive:
        if target.tid != target.tg.pid and not flags & PIDFD_THREAD:
            raise SyscallError(ENOENT)  # Linux: a thread that is not its group's leader
        tg = target.tg
    else:
        # a zombie keeps its pid until reaped, and Linux opens a pidfd on it (readable at
        # once): asyncio's PidfdChildWatcher meets short-lived children this way
        tg = task.kernel.thread_groups.get(pid)
        if tg is None or tg.reaped:
            raise SyscallError(ESRCH)
    from snakevisor.syscalls.sys_file import _nofile
    return task.tg.fds.install(PidFd(tg, bool(flags & PIDFD_NONBLOCK)), True, 0, _nofile(task))


def pidfd_target(task: "Task", fd: int) -> "ThreadGroup":
    """The process a pidfd names (EBADF for another kind of file)."""
    file = task.fds.get(fd)
    if not isinstance(file, PidFd):
        raise SyscallError(EBADF)
    return file.tg


@syscall("pidfd_getfd")
def sys_pidfd_getfd(task: "Task", pidfd: int, targetfd: int, flags: int, *_: int) -> int:
    if u32(flags):
        raise SyscallError(EINVAL)
    target = pidfd_target(task, s32(pidfd))
    if not target.alive:
        raise SyscallError(ESRCH)
    me, them = task.tg.creds, target.creds
    from snakevisor.syscalls.sys_cred import CAP_SYS_PTRACE, has_cap
    if not has_cap(task, CAP_SYS_PTRACE) and not (
            me.ruid == them.ruid == them.euid == them.suid and me.rgid == them.rgid):
        raise SyscallError(EPERM)  # ptrace_may_access(PTRACE_MODE_ATTACH_REALCREDS)
    file = target.fds.get(s32(targetfd))
    from snakevisor.syscalls.sys_file import _nofile
    return task.tg.fds.install(file, True, 0, _nofile(task))


# -- process groups and sessions ------------------------------------------------------------
@syscall("setpgid")
def sys_setpgid(task: "Task", pid: int, pgid: int, *_: int) -> int:
    pid, pgid = s32(pid), s32(pgid)
    if pgid < 0 or pid < 0:
        raise SyscallError(EINVAL)
    me = task.tg
    target = me if pid in (0, me.pid) else task.kernel.thread_groups.get(pid)
    if target is None or not target.alive or (target is not me and target.parent is not me):
        raise SyscallError(ESRCH)
    if target is not me and target.exe_count:
        raise SyscallError(EACCES)  # the child has exec'd since the fork
    if target.sid == target.pid or target.sid != me.sid:
        raise SyscallError(EPERM)  # a session leader, or another session
    pgid = pgid or target.pid
    if pgid != target.pid and not any(g.alive and g.pgid == pgid and g.sid == me.sid
                                      for g in task.kernel.thread_groups.values()):
        raise SyscallError(EPERM)
    target.pgid = pgid
    return 0


@syscall("getpgid")
def sys_getpgid(task: "Task", pid: int, *_: int) -> int:
    return _find_group(task, s32(pid)).pgid


@syscall("getpgrp")
def sys_getpgrp(task: "Task", *_: int) -> int:
    return task.tg.pgid


@syscall("getsid")
def sys_getsid(task: "Task", pid: int, *_: int) -> int:
    return _find_group(task, s32(pid)).sid


@syscall("setsid")
def sys_setsid(task: "Task", *_: int) -> int:
    me = task.tg
    if any(g.alive and g.pgid == me.pid for g in task.kernel.thread_groups.values()):
        raise SyscallError(EPERM)  # already a group leader (or its id is a group's)
    me.sid = me.pgid = me.pid
    return me.pid


def _find_group(task: "Task", pid: int) -> "ThreadGroup":
    if pid == 0:
        return task.tg
    t = task.kernel.tasks.get(pid)
    if t is not None and t.alive:
        return t.tg
    zombie = task.kernel.thread_groups.get(pid)
    if zombie is None or zombie.reaped:
        raise SyscallError(ESRCH)
    return zombie


ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004
ARCH_GET_CPUID, ARCH_SET_CPUID = 0x1011, 0x1012


@syscall("arch_prctl", partial="FS/GS base and CPUID query; CET/AMX requests are EINVAL")
def sys_arch_prctl(task: "Task", code: int, addr: int, *_: int) -> int:
    thread = task.thread
    if code in (ARCH_SET_FS, ARCH_SET_GS):
        if addr >= TASK_SIZE:
            raise SyscallError(EPERM)
        thread.set_reg("fs_base" if code == ARCH_SET_FS else "gs_base", addr)
        if code == ARCH_SET_FS:
            task.fs_base = addr
        return 0
    if code in (ARCH_GET_FS, ARCH_GET_GS):
        regs = thread.get_regs()
        task.mm.write_u64(addr, regs.fs_base if code == ARCH_GET_FS else regs.gs_base)
        return 0
    if code == ARCH_GET_CPUID:
        return 1
    task.kernel.warn_once(f"arch_prctl:{code:#x}", f"arch_prctl({code:#x}, {addr:#x}) unsupported -> EINVAL")
    raise SyscallError(EINVAL)


@syscall("set_tid_address")
def sys_set_tid_address(task: "Task", addr: int, *_: int) -> int:
    task.clear_child_tid = addr
    return task.tid


ROBUST_LIST_HEAD_SIZE = 24


@syscall("set_robust_list")
def sys_set_robust_list(task: "Task", head: int, length: int, *_: int) -> int:
    if length != ROBUST_LIST_HEAD_SIZE:
        raise SyscallError(EINVAL)
    task.robust_list, task.robust_len = head, length
    return 0


@syscall("get_robust_list")
def sys_get_robust_list(task: "Task", pid: int, head_ptr: int, len_ptr: int, *_: int) -> int:
    pid = s32(pid)
    target = task if pid in (0, task.tid) else None
    if target is None:
        for tg in task.kernel.thread_groups.values():
            for t in tg.tasks:
                if t.tid == pid and t.alive:
                    target = t
    if target is None:
        raise SyscallError(ESRCH)
    task.mm.write_u64(head_ptr, target.robust_list)
    task.mm.write_u64(len_ptr, ROBUST_LIST_HEAD_SIZE)
    return 0
