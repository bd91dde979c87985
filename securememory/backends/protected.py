"""The protected backend: one guarded Buffer per secret, NO_ACCESS between borrows."""

from __future__ import annotations

import os
from typing import Any

from .._native import lib
from ..errors import ProtectionError
from ..memcall import Protection
from ..memguard import Buffer
from ..secret import Secret

_protect = lib.sm_buffer_protect
_READ = int(Protection.READ_ONLY)
_NONE = int(Protection.NO_ACCESS)


def _check(code: int, what: str) -> None:
    if code:
        raise ProtectionError(f"mprotect to {what} failed ({os.strerror(code)})", code)


class ProtectedSecret(Secret):
    """A secret in a memguard Buffer: guard pages, canary, locked, no-access when idle.

    The Buffer is owned outright and records NO_ACCESS, its state between
    borrows; a borrow toggles the pages with one C call each way (the
    Secret's lock already serialises access, so the Buffer's is not taken).
    """

    def __init__(self, buffer: Buffer) -> None:
        buffer.protect(Protection.NO_ACCESS)
        self._buffer = buffer
        self._native = buffer._b
        super().__init__(buffer.size)

    def _expose(self) -> Any:
        self._buffer._live()
        _check(_protect(self._native, _READ), "READ_ONLY")
        return self._native.data

    def _conceal(self) -> None:
        _check(_protect(self._native, _NONE), "NO_ACCESS")

    def _destroy(self) -> None:
        self._buffer.destroy()

    @property
    def locked(self) -> bool:
        return self._buffer.locked

    @property
    def buffer(self) -> Buffer:
        """The underlying guarded Buffer (NO_ACCESS outside borrows)."""
        return self._buffer
