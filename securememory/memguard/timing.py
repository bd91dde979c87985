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

MAX_SIZE: int = lib.SM_EQUAL_TICKS_MAX  # the longest row equal_ticks takes, in bytes


def _labels(name: str, value: object) -> tuple[object, int]:
    if not isinstance(value, bytes | bytearray):
        raise InvalidTypeError(f"{name} must be bytes or bytearray, not {type(value).__name__}")
    if value.translate(None, b"\x00\x01"):
        raise InvalidArgumentError(f"{name} must hold only 0 and 1")
    return ffi.from_buffer(value), len(value)


def equal_ticks(rows: object, size: int, classes: object, variants: object) -> list[int]:
    """Time one ``sm_equal`` call per class label; return the ticks of each call.

    ``rows`` holds groups of two rows of ``size`` bytes (at most
    ``MAX_SIZE``), ``[u, v]`` with u and v differing. Call ``i`` takes group
    ``i % groups`` and ``k = variants[i]``; untimed, it copies row ``k`` to one
    side and row ``k`` (class 0) or row ``1 - k`` (class 1) to the other, then
    times ``sm_equal`` on the two sides. The sides are the same two rows of
    memory in every call, whatever its class, so the classes differ in the
    contents compared and in nothing else. Ticks are TSC cycles on x86,
    nanoseconds elsewhere. Raises InvalidTypeError for arguments of the wrong
    type and InvalidArgumentError for rows that are not whole groups, a size
    out of range, labels other than 0 and 1, or classes and variants of
    different lengths.
    """
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidTypeError(f"size must be an int, not {type(size).__name__}")
    if not 1 <= size <= MAX_SIZE:
        raise InvalidArgumentError(f"size must be 1 to {MAX_SIZE} bytes, not {size}")
    ptr, total, _ = source(rows)
    if total == 0 or total % (2 * size):
        raise InvalidArgumentError(f"rows must be whole groups of two {size}-byte rows, not {total} bytes")
    labels, n = _labels("classes", classes)
    picks, m = _labels("variants", variants)
    if m != n:
        raise InvalidArgumentError(f"{n} classes but {m} variants")
    ticks = ffi.new("uint64_t[]", n)
    lib.sm_equal_ticks(ptr, total // (2 * size), size, labels, picks, n, ticks)
    return list(ffi.unpack(ticks, n))
