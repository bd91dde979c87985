"""Stop a child at the entry of chosen system calls and look at its memory there.

The child installs a seccomp filter that returns SECCOMP_RET_TRACE for the
chosen calls (every other call runs untouched); the parent, which seized the
child with PTRACE_O_TRACESECCOMP, gets a stop before each of those calls runs,
reads the call's number and arguments with PTRACE_GET_SYSCALL_INFO and can read
the child's memory through /proc/PID/mem while the call has not happened yet.
All of it through ctypes: no compiler at run time.

A child carrying the filter must stay traced: without a tracer the filtered
calls fail with ENOSYS. Its own children inherit the filter, so a traced child
must not fork.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from collections.abc import Callable
from dataclasses import dataclass

from securememory.memcall.system import ptrace_scope

PTRACE_GET_SYSCALL_INFO = 0x420E
PTRACE_SYSCALL_INFO_SECCOMP = 3
PTRACE_O_TRACESECCOMP = 0x80
PTRACE_EVENT_SECCOMP = 7

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_TRACE = 0x7FF00000

_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_RET_K = 0x06

# (audit arch, syscall numbers) per machine.
_ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (0xC000003E, {"munmap": 11, "madvise": 28, "mlock": 149, "munlock": 150, "mprotect": 10}),
    "aarch64": (0xC00000B7, {"munmap": 215, "madvise": 233, "mlock": 228, "munlock": 229, "mprotect": 226}),
}

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
_libc.ptrace.restype = ctypes.c_long
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_Filter))]


class _Info(ctypes.Structure):
    _fields_ = [
        ("op", ctypes.c_uint8),
        ("pad", ctypes.c_uint8 * 3),
        ("arch", ctypes.c_uint32),
        ("instruction_pointer", ctypes.c_uint64),
        ("stack_pointer", ctypes.c_uint64),
        ("nr", ctypes.c_uint64),
        ("args", ctypes.c_uint64 * 6),
        ("ret_data", ctypes.c_uint32),
        ("tail", ctypes.c_uint32),
    ]


@dataclass(frozen=True)
class Call:
    """One stopped system call: its name and raw arguments."""

    name: str
    args: tuple[int, ...]


class Tracer:
    """The calls to stop at, and what the parent does at each stop.

    ``on_call(pid, call)`` runs in the parent while the child is stopped at the
    entry of ``call``.
    """

    def __init__(self, names: tuple[str, ...], on_call: Callable[[int, Call], None]) -> None:
        reason = available()
        if reason:
            raise OSError(reason)
        self.arch, table = _ARCHES[platform.machine()]
        self.numbers = {table[n]: n for n in names}
        self.on_call = on_call
        self.options = PTRACE_O_TRACESECCOMP

    def install(self) -> None:
        """In the child: filter the chosen calls to the tracer (irreversible)."""
        nrs = list(self.numbers)
        code = [(_BPF_LD_W_ABS, 0, 0, 4), (_BPF_JEQ_K, 0, len(nrs) + 1, self.arch), (_BPF_LD_W_ABS, 0, 0, 0)]
        for i, nr in enumerate(nrs):
            code.append((_BPF_JEQ_K, len(nrs) - i, 0, nr))
        code += [(_BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW), (_BPF_RET_K, 0, 0, SECCOMP_RET_TRACE)]
        insns = (_Filter * len(code))(*[_Filter(*c) for c in code])
        prog = _Program(len(code), insns)
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.cast(ctypes.byref(prog), ctypes.c_void_p), 0, 0):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")

    def stopped(self, pid: int) -> None:
        """In the parent, at a seccomp stop of ``pid``: identify the call and hand it on."""
        info = _Info()
        n = _libc.ptrace(PTRACE_GET_SYSCALL_INFO, pid, ctypes.c_void_p(ctypes.sizeof(info)), ctypes.byref(info))
        if n <= 0 or info.op != PTRACE_SYSCALL_INFO_SECCOMP:
            raise OSError(ctypes.get_errno(), f"PTRACE_GET_SYSCALL_INFO failed for {pid}")
        name = self.numbers.get(int(info.nr))
        if name is not None:
            self.on_call(pid, Call(name, tuple(int(a) for a in info.args)))


def available() -> str | None:
    """None when this process may trace its children here, else the reason."""
    if platform.system() != "Linux":
        return "syscall stops need Linux (seccomp and ptrace)"
    if platform.machine() not in _ARCHES:
        return f"no syscall table for {platform.machine()}"
    if ptrace_scope() == 3:
        return "ptrace is disabled (Yama ptrace_scope 3)"
    return None
