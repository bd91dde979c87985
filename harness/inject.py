"""Fault injection from outside the library: the N-th call of a syscall fails with a chosen errno.

A forked child installs a seccomp filter that hands the watched syscalls
(mmap, mprotect, mlock, munlock, madvise, munmap, memfd_secret, getrandom) to
its tracer (SECCOMP_RET_TRACE). The parent, attached with PTRACE_SEIZE and
PTRACE_O_TRACESECCOMP, sees each call stop before it runs. Between the child's
``begin`` and ``end`` marks, in the thread that set the filter, it counts the
calls the library makes and fails exactly the chosen one by setting the syscall
number to -1 (the kernel skips it) and the return value to ``-errno``.

A call is the library's when a return address on the stack lies in one of
the library's native modules (``securememory/_*.so``), or, for getrandom and
memfd_secret, whatever the caller (the library
draws nonces with ``os.urandom``); the interpreter's own allocations (arena
mmaps, malloc trims) are never counted or failed. Only x86-64 Linux is
supported (:func:`supported` says why not elsewhere). The library has no
switch for any of this.

The child talks to the tracer through a marker syscall (getcpu with a magic
first argument) that the tracer answers itself: ``begin``/``end`` the window,
``value`` (the parent draws fresh bytes after the fork and writes them to a
file the child reads with the library), ``learn`` (the parent reads a value
from the child's memory) and ``scan`` (the parent counts copies of a value in
the child's memory, outside the spans named).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import signal
import struct
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from . import child, memory

SYSCALLS: dict[str, int] = {
    "mmap": 9, "mprotect": 10, "munmap": 11, "madvise": 28, "mlock": 149, "munlock": 150,
    "getrandom": 318, "memfd_secret": 447,
}
ERRNOS: tuple[int, ...] = (errno.ENOMEM, errno.EPERM, errno.EAGAIN, errno.EINVAL)
_NAMES = {nr: name for name, nr in SYSCALLS.items()}
_ANY_CALLER = {"getrandom", "memfd_secret"}

_MARKER_NR = 309  # getcpu: the interpreter never calls it as a syscall
_MAGIC = 0x5EC0_FA17_0000
_BEGIN, _END, _VALUE, _LEARN, _SCAN = range(1, 6)

PTRACE_GETREGS, PTRACE_SETREGS = 12, 13
PTRACE_O_TRACECLONE, PTRACE_O_TRACESECCOMP, PTRACE_O_EXITKILL = 0x8, 0x80, 0x100000
PTRACE_EVENT_SECCOMP = 7
_WALL = 0x40000000
_STACK_WORDS = 64

_libc = child.libc
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]


class _Regs(ctypes.Structure):
    """struct user_regs_struct on x86-64."""

    _fields_ = [(n, ctypes.c_ulonglong) for n in (
        "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx",
        "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base",
        "ds", "es", "fs", "gs",
    )]


class _Filter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Filter))]


class InjectError(RuntimeError):
    """The child could not be traced or filtered."""


def supported() -> str | None:
    """None when injection works here, else the reason it cannot."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"syscall fault injection needs x86-64 Linux (this is {sys.platform}/{platform.machine()})"
    with open("/proc/self/status", encoding="ascii") as f:
        status = f.read()
    if "Seccomp:" not in status:
        return "this kernel has no seccomp filters"
    return None


@dataclass(frozen=True)
class Fault:
    """Fail the ``nth`` (1-based) library call of ``syscall`` with ``errno``."""

    syscall: str
    nth: int
    errno: int

    def describe(self) -> str:
        return f"{self.syscall} #{self.nth} -> {errno.errorcode[self.errno]}"


@dataclass
class Trace:
    """What one traced child did: its calls in the window, reports, and how it ended."""

    calls: list[str] = field(default_factory=list)
    injected: bool = False
    reports: list[Any] = field(default_factory=list)
    exit_code: int | None = None
    signal: int | None = None
    stderr: str = ""

    def counts(self) -> dict[str, int]:
        return {name: self.calls.count(name) for name in SYSCALLS if name in self.calls}

    def describe(self) -> str:
        if self.signal is not None:
            return f"killed by {signal.Signals(self.signal).name}"
        return f"exit status {self.exit_code}"


# -- the child's side --------------------------------------------------------------


def _value_path(pid: int, key: int) -> str:
    return os.path.join(tempfile.gettempdir(), f"securememory-inject-{pid}-{key}")


def _mark(op: int, a: int = 0, b: int = 0) -> int:
    return int(_libc.syscall(_MARKER_NR, ctypes.c_ulong(_MAGIC | op), ctypes.c_ulong(a), ctypes.c_ulong(b)))


class Probe:
    """The child's handle: mark the window, get fresh values, ask the parent to look."""

    def __init__(self, report_fd: int) -> None:
        self._fd = report_fd
        self._scans: list[tuple[int, int]] = []

    def report(self, value: Any) -> None:
        os.write(self._fd, (json.dumps(value) + "\n").encode())

    def begin(self) -> None:
        """Start counting (and failing) library calls."""
        _mark(_BEGIN)

    def end(self) -> None:
        """Stop counting; calls after this run normally."""
        _mark(_END)

    def value_file(self, key: int) -> str:
        """A file holding fresh random bytes (32) drawn by the parent after the fork, remembered as ``key``."""
        if _mark(_VALUE, key) != 0:
            raise InjectError("the tracer could not write a value file")
        return _value_path(os.getpid(), key)

    def learn(self, key: int, address: int) -> None:
        """Have the parent read 32 bytes at ``address`` as value ``key``."""
        if _mark(_LEARN, key, address) != 0:
            raise InjectError(f"the tracer could not read {address:#x}")

    def scan(self, key: int, exclude: list[tuple[int, int]]) -> int:
        """Copies of value ``key`` anywhere in this process's memory outside ``exclude``."""
        spans = (ctypes.c_ulonglong * (2 * len(exclude) + 1))(len(exclude), *[x for s in exclude for x in s])
        return _mark(_SCAN, key, ctypes.addressof(spans))


def _install_filter() -> None:
    """seccomp: the watched syscalls and the marker go to the tracer, everything else runs."""
    ld_nr, ld_arch, ret, jeq = 0x20, 0x20, 0x06, 0x15
    allow, trace, audit_x86_64 = 0x7FFF0000, 0x7FF00000, 0xC000003E
    watched = [*SYSCALLS.values(), _MARKER_NR]
    prog = [(ld_arch, 0, 0, 4), (jeq, 0, len(watched) + 1, audit_x86_64), (ld_nr, 0, 0, 0)]
    prog += [(jeq, len(watched) - i, 0, nr) for i, nr in enumerate(watched)]
    prog += [(ret, 0, 0, allow), (ret, 0, 0, trace)]
    filters = (_Filter * len(prog))(*[_Filter(*p) for p in prog])
    program = _Program(len(prog), filters)
    if _libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise InjectError(f"PR_SET_NO_NEW_PRIVS: {os.strerror(ctypes.get_errno())}")
    if _libc.prctl(22, 2, ctypes.addressof(program), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
        raise InjectError(f"PR_SET_SECCOMP: {os.strerror(ctypes.get_errno())}")


def _child(fn: Callable[[Probe], None], go: int, report_fd: int, err_fd: int) -> NoReturn:
    def body() -> None:
        os.read(go, 1)  # seized
        _install_filter()
        fn(Probe(report_fd))

    child.child_main(err_fd, body)


# -- the parent's side -------------------------------------------------------------


class _Tracer:
    def __init__(self, pid: int, fault: Fault | None) -> None:
        self.pid = pid
        self.fault = fault
        self.trace = Trace()
        self.window = False
        self.native: list[tuple[int, int]] = []
        self.values: dict[int, bytes] = {}
        self.seen: dict[str, int] = {}

    def _read(self, address: int, length: int) -> bytes:
        data = memory.read(self.pid, address, length)
        if data is None or len(data) != length:
            raise InjectError(f"cannot read {length} bytes at {address:#x} in the child")
        return data

    def _native_text(self) -> list[tuple[int, int]]:
        return [(m.start, m.end) for m in memory.ranges(self.pid)
                if "x" in m.perms and "/securememory/_" in m.path and m.path.endswith(".so")]

    def _from_library(self, regs: _Regs) -> bool:
        stack = memory.read(self.pid, regs.rsp, 8 * _STACK_WORDS) or b""
        words = struct.unpack(f"<{len(stack) // 8}Q", stack[: len(stack) // 8 * 8])
        return any(lo <= w < hi for w in words for lo, hi in self.native)

    def _marker(self, regs: _Regs) -> int:
        op, a, b = regs.rdi & 0xFFFF, regs.rsi, regs.rdx
        if op == _BEGIN:
            self.native = self._native_text()
            self.window = True
        elif op == _END:
            self.window = False
        elif op == _VALUE:
            value = os.urandom(32)
            with open(_value_path(self.pid, a), "wb") as f:
                f.write(value)
            self.values[a] = value
        elif op == _LEARN:
            self.values[a] = self._read(b, 32)
        elif op == _SCAN:
            n = struct.unpack("<Q", self._read(b, 8))[0]
            flat = struct.unpack(f"<{2 * n}Q", self._read(b + 8, 16 * n)) if n else ()
            spans = [(flat[2 * i], flat[2 * i + 1]) for i in range(n)]
            return len(memory.find(self.pid, self.values[a], spans, resident_only=True))
        return 0

    def on_seccomp(self, tid: int) -> None:
        regs = _Regs()
        if _libc.ptrace(PTRACE_GETREGS, tid, None, ctypes.addressof(regs)) != 0:
            return
        nr = regs.orig_rax
        if nr == _MARKER_NR and regs.rdi & ~0xFFFF == _MAGIC:
            result = self._marker(regs)
            regs.orig_rax = 2**64 - 1
            regs.rax = result
            _libc.ptrace(PTRACE_SETREGS, tid, None, ctypes.addressof(regs))
            return
        name = _NAMES.get(nr)
        if name is None or not self.window or tid != self.pid:
            return
        if name not in _ANY_CALLER and not self._from_library(regs):
            return
        self.trace.calls.append(name)
        self.seen[name] = self.seen.get(name, 0) + 1
        f = self.fault
        if f is not None and f.syscall == name and f.nth == self.seen[name]:
            regs.orig_rax = 2**64 - 1
            regs.rax = 2**64 - f.errno
            _libc.ptrace(PTRACE_SETREGS, tid, None, ctypes.addressof(regs))
            self.trace.injected = True


def run(fn: Callable[[Probe], None], fault: Fault | None = None, timeout: float = 60.0) -> Trace:
    """Fork; trace ``fn(probe)`` in the child, failing ``fault`` (or nothing: a counting run).

    Waits for every traced thread with waitpid(-1): run it from a process
    with no other children.
    """
    reason = supported()
    if reason:
        raise InjectError(reason)
    go_r, go_w = os.pipe()
    with tempfile.TemporaryFile() as reports, tempfile.TemporaryFile() as errfile:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os.close(go_w)
            _child(fn, go_r, reports.fileno(), errfile.fileno())
        os.close(go_r)
        tracer = _Tracer(pid, fault)
        options = PTRACE_O_TRACESECCOMP | PTRACE_O_TRACECLONE | PTRACE_O_EXITKILL
        if _libc.ptrace(child.PTRACE_SEIZE, pid, None, options) != 0:
            err = ctypes.get_errno()
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(go_w)
            raise InjectError(f"ptrace(PTRACE_SEIZE): {os.strerror(err)}")
        os.write(go_w, b"g")
        os.close(go_w)
        status = _supervise(tracer, timeout)
        trace = tracer.trace
        if os.WIFSIGNALED(status):
            trace.signal = os.WTERMSIG(status)
        else:
            trace.exit_code = os.WEXITSTATUS(status)
        reports.seek(0)
        trace.reports = [json.loads(line) for line in reports.read().splitlines()]
        errfile.seek(0)
        trace.stderr = errfile.read().decode(errors="replace")
        for key in tracer.values:
            if os.path.exists(_value_path(pid, key)):
                os.unlink(_value_path(pid, key))
    return trace


def _supervise(tracer: _Tracer, timeout: float) -> int:
    """Serve seccomp stops and pass signals on until the child is gone."""

    def expire(signum: int, frame: Any) -> None:
        os.kill(tracer.pid, signal.SIGKILL)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        while True:
            try:
                tid, status = os.waitpid(-1, _WALL)
            except InterruptedError:
                continue
            if not os.WIFSTOPPED(status):
                if tid == tracer.pid:
                    return status
                continue
            event = status >> 16
            inject = 0
            if event == PTRACE_EVENT_SECCOMP:
                tracer.on_seccomp(tid)
            elif event == 0:
                inject = os.WSTOPSIG(status)
            _libc.ptrace(child.PTRACE_CONT, tid, None, inject)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
