"""The protected backend: one guarded Buffer per secret, NO_ACCESS between borrows."""

from __future__ import annotations

from ..memcall import Protection
from ..memguard import Buffer
from ..secret import Secret


class ProtectedSecret(Secret):
    """A secret in a memguard Buffer: guard pages, canary, locked, no-access when idle.

    The Buffer is owned outright and never handed out: only the borrow gate
    toggles its inner pages, and only close() or purge() tear it down.
    """

    def __init__(self, buffer: Buffer) -> None:
        buffer.protect(Protection.NO_ACCESS)
        self._buffer = buffer
        inner, inner_len = buffer.inner_span()
        super().__init__(buffer.size, buffer.address, (inner, inner_len))

    def _destroy(self, keep: Protection | None) -> None:
        self._buffer._release(keep)

    @property
    def locked(self) -> bool:
        return self._buffer.locked
