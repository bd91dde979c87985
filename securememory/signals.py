"""Signals: wipe every secret before the process ends.

One handler table: registering a signal again replaces its earlier handler;
other signals, and handlers other libraries installed for them, are left alone.
On a caught signal the handler runs, the memory of every live Secret and
Buffer (the session key included) is wiped, and the process exits with status
128 + the signal number. The wipe is done in C without taking any lock, since
the interrupted code may hold one; the exit releases the memory itself.
Fatal signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) are not catchable
here: the crash wipe handles them in C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from ._gate import hold
from ._native import lib
from .errors import InvalidArgumentError, InvalidTypeError

Handler = Callable[[signal.Signals], None]

_table: dict[int, Handler | None] = {}
_lock = threading.Lock()


def _signals(*names: str) -> frozenset[int]:
    """The signals of ``names`` this platform has (Windows lacks SIGBUS, SIGKILL, SIGSTOP)."""
    return frozenset(getattr(signal, name) for name in names if hasattr(signal, name))


_FATAL = _signals("SIGSEGV", "SIGBUS", "SIGILL", "SIGFPE", "SIGABRT")
_UNCATCHABLE = _signals("SIGKILL", "SIGSTOP")


def _on_signal(signum: int, frame: FrameType | None) -> None:
    handler = _table.get(signum)
    try:
        if handler is not None:
            handler(signal.Signals(signum))
    finally:
        lib.sm_wipe_all()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(128 + signum)


def catch_signal(handler: Handler | None, *signals: int) -> None:
    """On any of ``signals``: call ``handler(signal)``, wipe every secret, exit with 128 + signum.

    Must be called from the main thread (a Python rule for signal handlers).
    Raises InvalidArgumentError for no signals or ones that cannot be caught.
    """
    if handler is not None and not callable(handler):
        raise InvalidTypeError("handler must be callable or None")
    if not signals:
        raise InvalidArgumentError("name at least one signal")
    with hold(_lock):
        for sig in signals:
            if not isinstance(sig, int):
                raise InvalidTypeError(f"signal must be an int or signal.Signals, not {type(sig).__name__}")
            if sig in _UNCATCHABLE:
                raise InvalidArgumentError(f"{signal.Signals(sig).name} cannot be caught")
            if sig in _FATAL:
                raise InvalidArgumentError(
                    f"{signal.Signals(sig).name} is fatal: the crash wipe handles it in C, "
                    "a Python handler would never run"
                )
            try:
                signal.signal(sig, _on_signal)
            except ValueError as e:
                raise InvalidArgumentError(f"cannot catch signal {sig}: {e}") from None
            _table[int(sig)] = handler


def catch_interrupt(handler: Handler | None = None) -> None:
    """Purge and exit on SIGINT (Ctrl-C) and SIGTERM, with status 128 + signum."""
    catch_signal(handler, signal.SIGINT, signal.SIGTERM)
