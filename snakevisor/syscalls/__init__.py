"""The system call table: number -> handler, filled by the sys_* modules' decorators.

A handler is ``def name(task, a0, a1, a2, a3, a4, a5) -> int`` (it may declare fewer
parameters followed by ``*_``).  It returns the result, raises SyscallError(errno) to fail,
raises Block to wait, or returns NO_RETURN when it has set the thread's registers itself
(execve, rt_sigreturn) or the thread is gone (exit).
"""
from __future__ import annotations

import importlib
from typing import Callable

from snakevisor.syscalls.numbers import SYSCALL_NUMBERS

HANDLERS: list[Callable | None] = [None] * 512
#: handled but knowingly partial: name -> what is missing (docs/compatibility.md)
PARTIAL: dict[str, str] = {}


class _NoReturn:
    def __repr__(self) -> str:
        return "NO_RETURN"


NO_RETURN = _NoReturn()

#: modules that register handlers; each owns one family of calls
MODULES = ("sys_mm", "sys_file", "sys_info", "sys_time", "sys_process", "sys_futex", "sys_signal",
           "sys_pipe", "sys_cred", "sys_timer", "sys_poll", "sys_socket", "sys_epoll",
           "sys_lock", "sys_splice", "sys_inotify",
           "sys_eventfd", "sys_memfd", "sys_unix", "sys_sysv", "sys_procmem", "sys_shm",
           "sys_mqueue")


def syscall(*names: str, partial: str = "") -> Callable:
    """Register the decorated function as the handler of each named system call."""

    def register(fn: Callable) -> Callable:
        for name in names:
            HANDLERS[SYSCALL_NUMBERS[name]] = fn
            if partial:
                PARTIAL[name] = partial
        return fn

    return register


def load_all() -> list[Callable | None]:
    for mod in MODULES:
        try:
            importlib.import_module(f"snakevisor.syscalls.{mod}")
        except ModuleNotFoundError as exc:
            if exc.name != f"snakevisor.syscalls.{mod}":
                raise
    return HANDLERS
