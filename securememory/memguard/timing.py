"""Tick counts of the library's constant-time comparison, taken in C.

Every comparison the library offers (``Secret.equals``, ``Buffer.equal_to``)
ends in the C function ``sm_equal``. Timing it from Python would bury a leak of
a few cycles under the interpreter's noise, so the timing loop runs in C
around ``sm_equal`` alone; the statistics belong to the caller.
"""

from __future__ import annotations

from .._native import ffi, lib
from ..errors import InvalidArgumentError, InvalidTypeError
from .wipe import source


def equal_ticks(candidate: object, pool: object, classes: object) -> list[int]:
    """Time one ``sm_equal`` call per class label; return the ticks of each call.

    ``pool`` holds pairs of rows as long as ``candidate``: row ``2 * j`` is of
    class 0 and row ``2 * j + 1`` of class 1. Call ``i`` compares the candidate
    with row ``2 * (i % pairs) + classes[i]``. Ticks are TSC cycles on x86,
    nanoseconds elsewhere. Raises InvalidTypeError for objects that are not
    bytes-like and InvalidArgumentError for an empty candidate, a pool that is
    not whole pairs of rows, or a label other than 0 or 1.
    """
    cand, size, _ = source(candidate)
    rows, pool_size, _ = source(pool)
    labels, n, _ = source(classes)
    if size == 0 or pool_size == 0 or pool_size % (2 * size):
        raise InvalidArgumentError(f"the pool must be whole pairs of {size}-byte rows, not {pool_size} bytes")
    if not isinstance(classes, bytes | bytearray):
        raise InvalidTypeError(f"classes must be bytes or bytearray, not {type(classes).__name__}")
    if classes.translate(None, b"\x00\x01"):
        raise InvalidArgumentError("class labels must be 0 or 1")
    ticks = ffi.new("uint64_t[]", n)
    lib.sm_equal_ticks(cand, rows, pool_size // (2 * size), size, labels, n, ticks)
    return list(ffi.unpack(ticks, n))
