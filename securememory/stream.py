"""Stream: secret data too large to lock at once, as a binary file object."""

from __future__ import annotations

import io
from collections.abc import Iterator

from .backends.protected import ProtectedSecret
from .errors import InvalidArgumentError, StreamEmptyError
from .memguard import MlockPolicy
from .memguard import Stream as _ChunkStream
from .reader import read_bytes
from .secret import Secret


class Stream(io.RawIOBase):
    """A FIFO of secret bytes held as sealed chunks; only one chunk is ever locked.

    ``write`` seals data (wiping writable input), ``readinto`` decrypts into the
    caller's buffer, iteration yields the chunks as Secrets. ``read()`` returns
    ``bytes`` the library cannot wipe; prefer ``readinto``.
    """

    def __init__(self, chunk_size: int | None = None, *, mlock: MlockPolicy | str | None = None) -> None:
        super().__init__()
        self._chunks = _ChunkStream(chunk_size, mlock=mlock)

    @property
    def size(self) -> int:
        """Bytes not yet read."""
        return self._chunks.size

    @property
    def chunk_size(self) -> int:
        return self._chunks.chunk_size

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int:
        self._check_open()
        return self._chunks.write(data)

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (everything left when negative) as ``bytes``, which
        the caller owns and the library cannot wipe; prefer :meth:`readinto`."""
        self._check_open()
        left = self._chunks.size
        return read_bytes(self.readinto, left if size is None or size < 0 else min(size, left))

    def readall(self) -> bytes:
        return self.read()

    def readinto(self, buffer: object) -> int:
        self._check_open()
        return self._chunks.readinto(buffer)

    def next_secret(self) -> Secret:
        """The next chunk as a Secret (protected backend); StreamEmptyError when empty."""
        self._check_open()
        return ProtectedSecret(self._chunks.next())

    def chunks(self) -> Iterator[Secret]:
        """Consume the stream chunk by chunk, each as a Secret the caller closes."""
        return self

    def __iter__(self) -> Iterator[Secret]:  # type: ignore[override]
        return self

    def __next__(self) -> Secret:  # type: ignore[override]
        """The next chunk as a Secret (not a line: a secret stream has no lines)."""
        try:
            return self.next_secret()
        except StreamEmptyError:
            raise StopIteration from None

    def flush_secret(self) -> Secret:
        """Everything left as one Secret (locks the whole size at once)."""
        self._check_open()
        return ProtectedSecret(self._chunks.flush())

    def _check_open(self) -> None:
        if self.closed:
            raise InvalidArgumentError("I/O operation on a closed Stream")

    def close(self) -> None:
        if not self.closed:
            self._chunks.destroy()
        super().close()
