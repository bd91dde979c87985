"""Filling fresh secret memory in place, and making sure no view of it outlives the fill."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import Any

from ._native import ffi, lib
from .errors import ViewEscapedError


def fill_once(fill: Callable[[memoryview], object], ptr: Any, size: int) -> None:
    """Call ``fill(view)`` with a writable view of ``size`` bytes at ``ptr``, then revoke it.

    The view is released when ``fill`` returns or raises, so a stored reference
    to it is harmless (using it raises ValueError). A slice or an export of it
    still alive keeps the memory reachable: the bytes are wiped and
    ViewEscapedError is raised, for the caller to free the memory. When
    ``fill`` raises, the bytes are wiped before its exception propagates.
    """
    anchor = ffi.buffer(ptr, size)
    free_refs = sys.getrefcount(anchor)
    view = memoryview(anchor)
    try:
        fill(view)
    except BaseException as e:
        # Locals of the failing frames may hold slices: drop them with the view.
        traceback.clear_frames(e.__traceback__)
        _revoke(view)
        lib.sm_wipe(ptr, size)
        raise
    escaped = _revoke(view) or sys.getrefcount(anchor) > free_refs
    if escaped:
        lib.sm_wipe(ptr, size)
        raise ViewEscapedError("fill kept a view of the secret's memory; the secret was wiped and not created")


def _revoke(view: memoryview) -> bool:
    """Release ``view``; True when an export of it is still alive."""
    try:
        view.release()
    except BufferError:
        return True
    return False
