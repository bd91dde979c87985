"""Bytes-like sources: read them without copying, and wipe them in place.

Sources are any object with the buffer protocol (bytes, bytearray, memoryview,
array, mmap). Writable ones can be wiped after use; a ``bytes`` cannot be wiped
(it is immutable, and small ones are shared interpreter-wide), so it is copied
and left as it was: it is the caller's copy of the secret.
"""

from __future__ import annotations

import os
from typing import Any

from .._native import ffi, lib
from ..errors import EntropyError, InvalidArgumentError, InvalidTypeError

CData = Any


def source(data: object, *, empty: str | None = None) -> tuple[CData, int, bool]:
    """A pointer to ``data``'s bytes, their count, and whether it can be wiped.

    With ``empty``, an empty ``data`` raises InvalidArgumentError(empty) before
    any pointer into it exists (an exception must not pin the caller's buffer).
    """
    if isinstance(data, str):
        raise InvalidTypeError("expected a bytes-like object, not str (encode it into a bytearray first)")
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidTypeError(f"expected a bytes-like object, not {type(data).__name__}") from None
    if not view.c_contiguous:
        raise InvalidTypeError("expected a contiguous buffer")
    if empty is not None and view.nbytes == 0:
        view.release()
        raise InvalidArgumentError(empty)
    writable = not view.readonly and not isinstance(data, bytes)
    return ffi.from_buffer(view, require_writable=False), view.nbytes, writable


def copy_bytes(dst: object, src: object) -> int:
    """Copy as much of ``src`` as fits into the start of ``dst``; returns the bytes copied.

    Raises InvalidTypeError when ``dst`` is read-only.
    """
    dptr, dn, writable = source(dst)
    if not writable:
        raise InvalidTypeError(f"cannot copy into a read-only {type(dst).__name__}")
    sptr, sn, _ = source(src)
    n = min(dn, sn)
    ffi.memmove(dptr, sptr, n)
    return n


def move_bytes(dst: object, src: object) -> int:
    """:func:`copy_bytes`, then wipe all of ``src``; returns the bytes copied.

    Raises InvalidTypeError, before copying anything, when ``src`` cannot be
    wiped (a ``bytes``) or ``dst`` is read-only.
    """
    if not source(src)[2]:
        raise InvalidTypeError(f"cannot move from a read-only {type(src).__name__}: it could not be wiped")
    n = copy_bytes(dst, src)
    wipe_bytes(src)
    return n


def wipe_bytes(data: object) -> None:
    """Overwrite a writable buffer (bytearray, writable memoryview, array) with zeros.

    Raises InvalidTypeError for read-only objects such as ``bytes``, which cannot
    be wiped safely.
    """
    ptr, n, writable = source(data)
    if not writable:
        raise InvalidTypeError(f"cannot wipe a read-only {type(data).__name__}")
    lib.sm_wipe(ptr, n)


def nonce_bytes(n: int) -> bytes:
    """``n`` random bytes for a nonce (not secret); EntropyError when getrandom fails."""
    try:
        return os.urandom(n)
    except OSError as e:
        raise EntropyError(f"the kernel random number generator failed (getrandom: {os.strerror(e.errno or 0)})") from e


def fill_random(ptr: CData, n: int) -> None:
    """Fill ``n`` bytes at ``ptr`` from the kernel CSPRNG; EntropyError when it fails."""
    code = lib.sm_random(ptr, n)
    if code:
        raise EntropyError(f"the kernel random number generator failed ({os.strerror(code)})")


def scramble_bytes(data: object) -> None:
    """Overwrite a writable buffer with random bytes from the kernel CSPRNG."""
    ptr, n, writable = source(data)
    if not writable:
        raise InvalidTypeError(f"cannot scramble a read-only {type(data).__name__}")
    if n:
        fill_random(ptr, n)
