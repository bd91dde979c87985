"""The protected backend: one guarded Buffer per secret, NO_ACCESS between borrows."""

from __future__ import annotations

from typing import Any

from ..memcall import Protection
from ..memguard import Buffer
from ..secret import Secret


class ProtectedSecret(Secret):
    """A secret in a memguard Buffer: guard pages, canary, locked, no-access when idle."""

    def __init__(self, buffer: Buffer) -> None:
        buffer.protect(Protection.NO_ACCESS)
        self._buffer = buffer
        super().__init__(buffer.size)

    def _expose(self) -> Any:
        self._buffer.protect(Protection.READ_ONLY)
        return self._buffer._b.data

    def _conceal(self) -> None:
        self._buffer.protect(Protection.NO_ACCESS)

    def _destroy(self) -> None:
        self._buffer.destroy()

    @property
    def locked(self) -> bool:
        return self._buffer.locked

    @property
    def buffer(self) -> Buffer:
        """The underlying guarded Buffer (for inspection; NO_ACCESS outside borrows)."""
        return self._buffer
