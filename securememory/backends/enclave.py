"""The enclave backend: sealed in ordinary memory, decrypted only while borrowed.

Locked memory is spent only by borrows in flight (one scratch Buffer per
borrowed secret, shared by concurrent borrows of it), so any number of idle
secrets fit under any memlock limit that fits the session key and one scratch.
"""

from __future__ import annotations

from typing import Any

from ..errors import SecretClosedError
from ..memguard import Buffer, Enclave, MlockPolicy
from ..secret import Secret


class EnclaveSecret(Secret):
    """A secret kept as an Enclave; a borrow opens it into a locked, guarded Buffer."""

    def __init__(self, buffer: Buffer, mlock: MlockPolicy) -> None:
        size = buffer.size
        self._locked = buffer.locked
        self._enclave: Enclave | None = buffer.seal(mlock=mlock)
        self._mlock = mlock
        self._open: Buffer | None = None
        super().__init__(size)

    def _expose(self) -> Any:
        if self._enclave is None:
            raise SecretClosedError()
        self._open = self._enclave.open(mlock=self._mlock)
        self._locked = self._open.locked
        return self._open._b.data

    def _conceal(self) -> None:
        if self._open is not None:
            self._open.destroy()
            self._open = None

    def _destroy(self) -> None:
        self._conceal()
        self._enclave = None

    @property
    def locked(self) -> bool:
        """Whether the most recent plaintext (initial fill or last borrow's scratch) was mlocked."""
        return self._locked

