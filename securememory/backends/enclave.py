"""The enclave backend: sealed in ordinary memory, decrypted only while borrowed.

Locked memory is spent only by borrows in flight: a borrow decrypts into a
reusable scratch (memguard.scratch, shared by concurrent borrows of one
secret), wiped and NO_ACCESS again when the last borrow ends, so any number of
idle secrets fit under any memlock limit that fits the session key and a few
scratch pages.
"""

from __future__ import annotations

from typing import Any

from ..errors import DecryptionError, SecretClosedError
from ..memcall import Protection
from ..memguard import Buffer, Enclave, MlockPolicy
from ..memguard.scratch import scratch_pool
from ..secret import Secret


class EnclaveSecret(Secret):
    """A secret kept as an Enclave; a borrow opens it into locked, guarded scratch."""

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
            exposed = scratch_pool.open(self._enclave, self._mlock)
        except DecryptionError as e:
            # sealed while a purge() ran, under the key it then replaced
            raise SecretClosedError("the secret was sealed under a session key that purge() replaced") from e
        self._locked = bool(exposed[0]._b.locked)
        return exposed

    def _conceal(self, exposed: Any, escaped: bool) -> None:
        scratch_pool.close(exposed, escaped)

    def _destroy(self, keep: Protection | None) -> None:
        self._enclave = None
        scratch = self._gate.exposed
        if scratch is not None:
            scratch._release(keep)

    @property
    def locked(self) -> bool:
        """Whether the most recent plaintext (initial fill or last borrow's scratch) was mlocked."""
        return self._locked
