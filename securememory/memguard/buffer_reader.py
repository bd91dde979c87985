"""BufferReader: a Buffer's data as a read-only binary stream (memguard's Buffer.Reader)."""

from __future__ import annotations

import io
import threading
from typing import TYPE_CHECKING, Any

from .._gate import hold
from ..errors import InvalidTypeError
from .wipe import wipe_bytes

if TYPE_CHECKING:
    from .buffer import Buffer


class BufferReader(io.RawIOBase):
    """Reads a Buffer's data from the start, copying out on each ``readinto``.

    Raises BufferDestroyedError once the buffer is destroyed and ProtectionError
    while it is NO_ACCESS. ``read()`` returns ``bytes``, which the caller owns
    and the library cannot wipe (its own staging copy is wiped); prefer
    ``readinto`` with a buffer you wipe.
    """

    def __init__(self, buf: Buffer) -> None:
        super().__init__()
        self._buf = buf
        self._pos = 0
        self._lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            dst = memoryview(buffer).cast("B")
        except TypeError:
            raise InvalidTypeError(f"readinto needs a writable buffer, not {type(buffer).__name__}") from None
        if dst.readonly:
            raise InvalidTypeError("readinto needs a writable buffer")
        with hold(self._lock):
            data = self._buf.view()
            n = max(0, min(len(dst), len(data) - self._pos))
            dst[:n] = data[self._pos : self._pos + n]
            self._pos += n
            return n

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative)."""
        left = max(0, self._buf.size - self._pos)
        staging = bytearray(left if size is None or size < 0 else min(size, left))
        try:
            n = self.readinto(staging)
            return bytes(memoryview(staging)[:n])
        finally:
            wipe_bytes(staging)

    def readall(self) -> bytes:
        return self.read()
