"""Signals and exits: purge every secret before the process ends.

One handler table: registering a signal again replaces its earlier handler;
other signals, and handlers other libraries installed for them, are left alone.
On a caught signal the handler runs, every Secret and Buffer is purged, and the
process exits with status 128 + the signal number.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from .errors import InvalidArgumentError, InvalidTypeError
from .memguard import purge as purge_buffers
from .secret import purge_secrets

Handler = Callable[[signal.Signals], None]

_table: dict[int, Handler | None] = {}
_lock = threading.Lock()


def purge() -> None:
    """Destroy every live Secret and Buffer now and replace the session key."""
    purge_secrets()
    purge_buffers()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    handler = _table.get(signum)
    try:
        if handler is not None:
            handler(signal.Signals(signum))
    finally:
        purge()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(128 + signum)


def catch_signal(handler: Handler | None, *signals: int) -> None:
    """On any of ``signals``: call ``handler(signal)``, purge, exit with 128 + signum.

    Must be called from the main thread (a Python rule for signal handlers).
    Raises InvalidArgumentError for no signals or ones that cannot be caught.
    """
    if handler is not None and not callable(handler):
        raise InvalidTypeError("handler must be callable or None")
    if not signals:
        raise InvalidArgumentError("name at least one signal")
    with _lock:
        for sig in signals:
            if not isinstance(sig, int):
                raise InvalidTypeError(f"signal must be an int or signal.Signals, not {type(sig).__name__}")
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                raise InvalidArgumentError(f"{signal.Signals(sig).name} cannot be caught")
            try:
                signal.signal(sig, _on_signal)
            except ValueError as e:
                raise InvalidArgumentError(f"cannot catch signal {sig}: {e}") from None
            _table[int(sig)] = handler


def catch_interrupt(handler: Handler | None = None) -> None:
    """Purge and exit on SIGINT (Ctrl-C) and SIGTERM, with status 128 + signum."""
    catch_signal(handler, signal.SIGINT, signal.SIGTERM)


def safe_exit(code: int = 0) -> NoReturn:
    """Purge every Secret and Buffer, then exit the interpreter with ``code``."""
    purge()
    sys.exit(code)
