"""Process image and thread bookkeeping: execve, exit, arch_prctl, TLS and robust lists."""
from __future__ import annotations

from typing import TYPE_CHECKING

from snakevisor.kernel.errors import EINVAL, ENAMETOOLONG, EPERM, ESRCH, SyscallError, E2BIG
from snakevisor.mm import loader
from snakevisor.mm.address_space import TASK_SIZE
from snakevisor.syscalls import NO_RETURN, syscall
from snakevisor.syscalls.args import AT_EMPTY_PATH, AT_FDCWD, AT_SYMLINK_NOFOLLOW, PATH_MAX, s32

if TYPE_CHECKING:
    from snakevisor.kernel.task import Task

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


def exec_into(task: "Task", prog: loader.Program, envp: list[bytes]) -> None:
    """Replace task's process image with `prog` and start it running."""
    kernel = task.kernel
    new_mm = loader.load(task, prog, envp)
    tg = task.tg
    old_mm = tg.mm
    if task.thread is not None:
        kernel.by_host_tid.pop(task.thread.tid, None)
    task.thread = new_mm.host.control
    kernel.by_host_tid[task.thread.tid] = task
    tg.mm = new_mm
    if old_mm is not None:
        old_mm.users -= 1
        if old_mm.users <= 0:
            old_mm.destroy()
    tg.fds.close_on_exec()
    tg.exe = prog.path
    tg.argv = list(prog.argv)
    tg.env = list(envp)
    task.comm = prog.filename.rsplit(b"/", 1)[-1][:15]
    task.clear_child_tid = task.robust_list = 0
    task.fs_base = 0
    prog.file.release()
    if prog.interp is not None:
        prog.interp[0].release()
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


@syscall("exit", partial="single-threaded processes only until the threads issue")
def sys_exit(task: "Task", status: int, *_: int) -> object:
    task.kernel.exit_group(task.tg, (status & 0xFF) << 8)
    return NO_RETURN


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
