"""Run a function in a forked child and observe it from the parent.

The parent sees how the child ended (exit status or the signal that killed
it), what it wrote to stderr, the values it reported, and its memory: the
child can pause at a checkpoint while the parent reads /proc/PID/mem, and with
``at_exit`` the parent reads the dying child's memory at PTRACE_EVENT_EXIT,
which is the memory a core dump of that death would hold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import faulthandler
import json
import os
import select
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, NoReturn

from securememory.memguard import crash_wipe_installed, disable_crash_wipe, enable_crash_wipe

from . import restrict, trace

PTRACE_CONT = 7
PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_O_TRACEEXIT = 0x40
PTRACE_EVENT_EXIT = 6

# The C library through ctypes, with ptrace typed (shared with the fault injector).
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


# Exit status of a child whose restriction could not be applied (EX_TEMPFAIL).
RESTRICTION_UNAVAILABLE = 75

# How faulthandler names each fatal signal in its "Fatal Python error" line.
FATAL_NAMES: dict[int, str] = {
    signal.SIGSEGV: "Segmentation fault",
    signal.SIGABRT: "Aborted",
    signal.SIGBUS: "Bus error",
    signal.SIGILL: "Illegal instruction",
    signal.SIGFPE: "Floating point exception",
}


class ChildError(RuntimeError):
    """The child could not be run or observed."""


@dataclass
class Outcome:
    """How a child ended and what was seen of it."""

    exit_code: int | None
    signal: int | None
    stderr: str
    reports: list[Any] = field(default_factory=list)
    observations: list[Any] = field(default_factory=list)
    timed_out: bool = False

    @property
    def unsupported(self) -> str | None:
        """Why the child's restriction could not be applied, when it could not."""
        if self.exit_code != RESTRICTION_UNAVAILABLE:
            return None
        lines = [line for line in self.stderr.splitlines() if line.startswith("RestrictError: ")]
        return lines[-1].removeprefix("RestrictError: ") if lines else None

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(self.signal).name if self.signal else None

    @property
    def fatal_error(self) -> str:
        """What the child's faulthandler report named ("Segmentation fault"), or ""."""
        prefix = "Fatal Python error: "
        lines = [line.removeprefix(prefix) for line in self.stderr.splitlines() if line.startswith(prefix)]
        return lines[0] if lines else ""

    def died_of(self, sig: int) -> bool:
        """True when ``sig`` killed the child and its captured stderr names that signal."""
        return self.signal == sig and self.fatal_error == FATAL_NAMES.get(sig)

    def describe(self) -> str:
        if self.timed_out:
            return "timed out"
        if self.signal is not None:
            return f"killed by {self.signal_name}"
        return f"exit status {self.exit_code}"


class Context:
    """What the child function receives: report values, pause at checkpoints."""

    def __init__(self, to_parent: int, from_parent: int) -> None:
        self._out = to_parent
        self._in = from_parent

    def _send(self, kind: str, value: Any) -> None:
        data = (json.dumps({"kind": kind, "value": value}) + "\n").encode()
        os.write(self._out, data)

    def report(self, value: Any) -> None:
        """Send a JSON-serialisable value to the parent (never a secret)."""
        self._send("report", value)

    def checkpoint(self, value: Any = None) -> Any:
        """Pause until the parent has looked; returns what the parent's observer returned."""
        self._send("checkpoint", value)
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(self._in, 1)
            if not chunk:
                os._exit(70)
            line += chunk
        return json.loads(line)


Observer = Callable[[int, Any], Any]


def report_fatal_signals() -> None:
    """Send faulthandler's fatal-signal report to this child's captured stderr.

    faulthandler writes to the descriptor it was given (pytest's copy of the
    terminal, say), so it is pointed at the new fd 2; on an enabled handler
    ``enable`` only changes the file. A crash-wipe handler is kept in front.
    """
    if faulthandler.is_enabled():
        faulthandler.enable(file=sys.stderr)
        return
    wiping = crash_wipe_installed()
    if wiping:
        disable_crash_wipe()
    faulthandler.enable(file=sys.stderr)
    if wiping:
        enable_crash_wipe()


def child_main(err_fd: int, body: Callable[[], None]) -> NoReturn:
    """A forked child's whole life: stderr (fatal-signal reports included) to
    ``err_fd``, then ``body()``; exits with its SystemExit code, with 1 after
    printing any other exception, else 0. Never returns."""
    code = 0
    try:
        os.dup2(err_fd, 2)
        sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
        report_fatal_signals()
        body()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
    os._exit(code)


def _read_lines(fd: int, buf: bytearray) -> list[bytes]:
    chunk = os.read(fd, 65536)
    if not chunk:
        raise EOFError
    buf.extend(chunk)
    lines = []
    while b"\n" in buf:
        line, _, rest = bytes(buf).partition(b"\n")
        lines.append(line)
        buf[:] = rest
    return lines


def run(
    fn: Callable[[Context], None],
    *,
    observe: Observer | None = None,
    at_exit: Callable[[int], Any] | None = None,
    restriction: restrict.Restriction | None = None,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    on_report: Callable[[Any], None] | None = None,
    tracer: trace.Tracer | None = None,
) -> Outcome:
    """Fork; run ``fn(ctx)`` in the child; return its Outcome.

    ``observe(pid, value)`` runs in the parent at each ``ctx.checkpoint(value)``;
    its JSON-serialisable result goes back to the child. ``at_exit(pid)`` runs
    when the child is about to die, however it dies, with its memory intact.
    ``restriction`` is applied in the child before ``fn``; then ``tracer``'s
    filter, after which the parent runs ``tracer`` at each chosen syscall's entry.
    ``on_report(value)`` runs in the parent as each report arrives (they are
    also kept in order).
    """
    with tempfile.TemporaryFile() as errfile:
        return _run(fn, errfile, observe, at_exit, restriction, timeout, env, on_report, tracer)


def _run(
    fn: Callable[[Context], None],
    errfile: IO[bytes],
    observe: Observer | None,
    at_exit: Callable[[int], Any] | None,
    restriction: restrict.Restriction | None,
    timeout: float,
    env: dict[str, str] | None,
    on_report: Callable[[Any], None] | None,
    tracer: trace.Tracer | None = None,
) -> Outcome:
    options = (PTRACE_O_TRACEEXIT if at_exit is not None else 0) | (tracer.options if tracer is not None else 0)
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:

        def body() -> None:
            os.close(to_parent_r)
            os.close(to_child_w)
            if env:
                os.environ.update(env)
            if options:
                os.read(to_child_r, 1)  # wait until the parent has seized us
            if restriction is not None:
                try:
                    restrict.apply(restriction)
                except restrict.RestrictError as e:
                    print(f"RestrictError: {e.strerror}", file=sys.stderr)
                    raise SystemExit(RESTRICTION_UNAVAILABLE) from None
            if tracer is not None:
                tracer.install()
            fn(Context(to_parent_w, to_child_r))

        child_main(errfile.fileno(), body)

    os.close(to_parent_w)
    os.close(to_child_r)
    outcome = Outcome(exit_code=None, signal=None, stderr="")
    deadline = time.monotonic() + timeout
    try:
        if options:
            if libc.ptrace(PTRACE_SEIZE, pid, None, options) != 0:
                err = ctypes.get_errno()
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                raise ChildError(f"ptrace(PTRACE_SEIZE) failed: {os.strerror(err)}")
            os.write(to_child_w, b"g")
        status = _supervise(pid, to_parent_r, to_child_w, observe, at_exit, on_report, outcome, deadline, tracer)
    finally:
        os.close(to_parent_r)
        os.close(to_child_w)
    if os.WIFSIGNALED(status):
        outcome.signal = os.WTERMSIG(status)
    elif os.WIFEXITED(status):
        outcome.exit_code = os.WEXITSTATUS(status)
    errfile.seek(0)
    outcome.stderr = errfile.read().decode(errors="replace")
    return outcome


def _supervise(
    pid: int,
    from_child: int,
    to_child: int,
    observe: Observer | None,
    at_exit: Callable[[int], Any] | None,
    on_report: Callable[[Any], None] | None,
    outcome: Outcome,
    deadline: float,
    tracer: trace.Tracer | None = None,
) -> int:
    """Serve checkpoints and reports, resume ptrace stops, and reap the child."""
    buf = bytearray()
    open_pipe = True
    status: int | None = None
    drain_until = 0.0
    while status is None or open_pipe:
        if status is not None and time.monotonic() > drain_until:
            break  # a grandchild may hold the pipe open; the child is gone
        if open_pipe:
            ready, _, _ = select.select([from_child], [], [], 0.01)
            if ready:
                try:
                    lines = _read_lines(from_child, buf)
                except EOFError:
                    open_pipe = False
                    lines = []
                for line in lines:
                    msg = json.loads(line)
                    if msg["kind"] == "report":
                        outcome.reports.append(msg["value"])
                        if on_report is not None:
                            on_report(msg["value"])
                        continue
                    seen = observe(pid, msg["value"]) if observe is not None else None
                    outcome.observations.append(seen)
                    os.write(to_child, (json.dumps(seen) + "\n").encode())
        elif status is None:
            time.sleep(0.005)
        if status is None:
            if time.monotonic() > deadline and not outcome.timed_out:
                outcome.timed_out = True
                os.kill(pid, signal.SIGKILL)
            wpid, st = os.waitpid(pid, os.WNOHANG)
            if wpid == 0:
                continue
            if not os.WIFSTOPPED(st):
                status = st
                drain_until = time.monotonic() + 0.5
                continue
            # A traced child: its exit stop, or a signal on its way (re-inject it).
            event = st >> 16
            inject = os.WSTOPSIG(st) if event == 0 else 0
            if event == PTRACE_EVENT_EXIT and at_exit is not None:
                outcome.observations.append(at_exit(pid))
            elif event == trace.PTRACE_EVENT_SECCOMP and tracer is not None:
                tracer.stopped(pid)
            libc.ptrace(PTRACE_CONT, pid, None, inject)
    return status
