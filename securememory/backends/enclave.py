"""The enclave backend: sealed in ordinary memory, decrypted only while borrowed.

Locked memory is spent only by borrows in flight (one scratch Buffer per
borrowed secret, shared by concurrent borrows of it), so any number of idle
secrets fit under any memlock limit that fits the session key and one scratch.
"""

from __future__ import annotations

from typing import Any

from ..errors import DecryptionError, SecretClosedError
from ..memcall import Protection
from ..memguard import Buffer, Enclave, MlockPolicy
from ..secret import Secret


class EnclaveSecret(Secret):
    """A secret kept as an Enclave; a borrow opens it into a locked, guarded Buffer."""

    def __init__(self, buffer: Buffer, mlock: MlockPolicy) -> None:
        size = buffer.size
        self._locked = buffer.locked
        self._enclave: Enclave | None = buffer.seal(mlock=mlock)
        self._mlock = mlock
        super().__init__(size)

    def _expose(self) -> tuple[Any, int, int, int]:
        if self._enclave is None:
            raise SecretClosedError()
        try:
            scratch = self._enclave.open(mlock=self._mlock, _owned=True)
        except DecryptionError as e:
            # sealed while a purge() ran, under the key it then replaced
            raise SecretClosedError("the secret was sealed under a session key that purge() replaced") from e
        self._locked = scratch.locked
        return (scratch, scratch.address, *scratch.inner_span())

    def _conceal(self, exposed: Any, escaped: bool) -> None:
        exposed._release(Protection.NO_ACCESS if escaped else None)

    def _destroy(self, keep: Protection | None) -> None:
        self._enclave = None
        scratch = self._gate.exposed
        if scratch is not None:
            scratch._release(keep)

    @property
    def locked(self) -> bool:
        """Whether the most recent plaintext (initial fill or last borrow's scratch) was mlocked."""
        return self._locked

