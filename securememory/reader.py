"""SecretReader: a secret as a read-only binary stream."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from ._native import ffi
from .errors import InvalidArgumentError, InvalidTypeError
from .memguard.wipe import wipe_bytes
from .secret import Secret


def read_bytes(readinto: Callable[[bytearray], int], size: int) -> bytes:
    """``read()`` for secret streams: up to ``size`` bytes as the one ``bytes`` the
    caller asked for, with the staging buffer wiped (io's own read() leaves it)."""
    staging = bytearray(size)
    try:
        n = readinto(staging)
        return bytes(memoryview(staging)[:n])
    finally:
        wipe_bytes(staging)


class SecretReader(io.RawIOBase):
    """Reads a Secret from the start; each readinto() is one borrow.

    Over "0123456789", reads of 4, 4, 1, 4, 4 bytes give "0123", "4567", "8",
    "9", then "" (EOF). ``read()`` returns ``bytes``, which the caller owns
    and the library cannot wipe; prefer ``readinto`` with a buffer you wipe.
    Raises SecretClosedError once the secret is closed, InvalidArgumentError
    once the reader is. Like ``io.FileIO``, one reader is for one thread at a
    time (it keeps a position); make one reader per thread.
    """

    def __init__(self, secret: Secret) -> None:
        super().__init__()
        self._secret = secret
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            dst = memoryview(buffer).cast("B")
        except TypeError:
            raise InvalidTypeError(f"readinto needs a writable buffer, not {type(buffer).__name__}") from None
        if dst.readonly:
            raise InvalidTypeError("readinto needs a writable buffer")
        if self.closed:
            raise InvalidArgumentError("I/O operation on a closed SecretReader")
        n = min(len(dst), len(self._secret) - self._pos)
        if n <= 0:
            return 0
        with self._secret.borrow() as view:
            ffi.memmove(ffi.from_buffer(dst), ffi.from_buffer(view) + self._pos, n)
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative) as ``bytes``, which
        the caller owns and the library cannot wipe."""
        left = max(0, len(self._secret) - self._pos)
        return read_bytes(self.readinto, left if size is None or size < 0 else min(size, left))

    def readall(self) -> bytes:
        return self.read()

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        bases = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._secret)}
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise InvalidTypeError(f"offset must be an int, not {type(offset).__name__}")
        if whence not in bases:
            raise InvalidArgumentError(f"whence must be SEEK_SET, SEEK_CUR or SEEK_END, not {whence!r}")
        self._pos = max(0, bases[whence] + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos
