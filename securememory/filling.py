"""Filling fresh secret memory in place, and making sure no view of it outlives the fill."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import _gate
from ._native import ffi, lib
from .errors import ViewEscapedError


def fill_once(fill: Callable[[memoryview], object], ptr: Any, size: int) -> None:
    """Call ``fill(view)`` with a writable view of ``size`` bytes at ``ptr``, then revoke it.

    The view is released when ``fill`` returns or raises, so a stored reference
    to it is harmless (using it raises ValueError). A slice or an export of it
    still alive keeps the memory reachable: the bytes are wiped and
    ViewEscapedError is raised, for the caller to free the memory. When
    ``fill`` raises, the bytes are wiped before its exception propagates.
    Escapes are found by the exporter counting its buffers (``_gate.fill``),
    the same rule as a borrow's on every interpreter.
    """
    try:
        escaped = _gate.fill(int(ffi.cast("uintptr_t", ptr)), size, fill)
    except BaseException:
        lib.sm_wipe(ptr, size)
        raise
    if escaped:
        lib.sm_wipe(ptr, size)
        raise ViewEscapedError("fill kept a view of the secret's memory; the secret was wiped and not created")
