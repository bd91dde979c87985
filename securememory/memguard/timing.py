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


def _labels(name: str, value: object) -> tuple[object, int]:
    if not isinstance(value, bytes | bytearray):
        raise InvalidTypeError(f"{name} must be bytes or bytearray, not {type(value).__name__}")
    if value.translate(None, b"\x00\x01"):
        raise InvalidArgumentError(f"{name} must hold only 0 and 1")
    return ffi.from_buffer(value), len(value)


def equal_ticks(rows: object, size: int, classes: object, variants: object) -> list[int]:
    """Time one ``sm_equal`` call per class label; return the ticks of each call.

    ``rows`` holds groups of four rows of ``size`` bytes, ``[a_u, a_v, b_u,
    b_v]`` with u and v differing. Call ``i`` takes group ``i % groups`` and
    ``k = variants[i]``, and compares ``a_k`` with ``b_k`` (class 0) or with
    ``b_(1-k)`` (class 1). Ticks are TSC cycles on x86, nanoseconds elsewhere.
    Raises InvalidTypeError for arguments of the wrong type and
    InvalidArgumentError for rows that are not whole groups, labels other than
    0 and 1, or classes and variants of different lengths.
    """
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidTypeError(f"size must be an int, not {type(size).__name__}")
    ptr, total, _ = source(rows)
    if size < 1 or total == 0 or total % (4 * size):
        raise InvalidArgumentError(f"rows must be whole groups of four {size}-byte rows, not {total} bytes")
    labels, n = _labels("classes", classes)
    picks, m = _labels("variants", variants)
    if m != n:
        raise InvalidArgumentError(f"{n} classes but {m} variants")
    ticks = ffi.new("uint64_t[]", n)
    lib.sm_equal_ticks(ptr, total // (4 * size), size, labels, picks, n, ticks)
    return list(ffi.unpack(ticks, n))
