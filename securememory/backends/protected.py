"""The protected backend: one guarded Buffer per secret, NO_ACCESS between borrows."""

from __future__ import annotations

from ..memcall import Protection
from ..memguard import Buffer
from ..secret import Secret


class ProtectedSecret(Secret):
    """A secret in a memguard Buffer: guard pages, canary, locked, no-access when idle.

    The Buffer is owned outright and records NO_ACCESS, its state between
    borrows; the borrow gate toggles its inner pages directly.
    """

    def __init__(self, buffer: Buffer) -> None:
        buffer.protect(Protection.NO_ACCESS)
        self._buffer = buffer
        native = buffer._b
        super().__init__(buffer.size, native.data, (native.inner, int(native.inner_len)))

    def _destroy(self) -> None:
        self._buffer.destroy()

    @property
    def locked(self) -> bool:
        return self._buffer.locked

    @property
    def buffer(self) -> Buffer:
        """The underlying guarded Buffer (NO_ACCESS outside borrows)."""
        return self._buffer
