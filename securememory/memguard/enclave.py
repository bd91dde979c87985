"""Enclave: a secret sealed with ChaCha20-Poly1305 under the session key.

Stored as ``nonce (12) || ciphertext || tag (16)`` in ordinary memory: 28 bytes
of overhead and nothing secret. Each seal draws a fresh random nonce and counts
against the Coffer's nonce budget. Opening decrypts with ``decrypt_into``
straight into a guarded Buffer, so plaintext is never a Python ``bytes``; the
AEAD object is built over a view of the key in locked memory and lives only for
the one operation, inside a fork fence lease (it keeps a copy of the key inside
OpenSSL while it lives, and fork() waits for it).
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .._native import ffi, lib
from ..errors import DecryptionError, InvalidTypeError
from ..memcall.region import check_size
from . import policy
from .buffer import Buffer
from .coffer import with_session_aead
from .wipe import nonce_bytes, source, wipe_bytes

NONCE_SIZE = 12
TAG_SIZE = 16
OVERHEAD = NONCE_SIZE + TAG_SIZE
FAILED = "enclave failed to authenticate: tampered, truncated or sealed under a purged key"


def seal_into(
    plaintext: memoryview | Any, out: memoryview, mlock: policy.MlockPolicy | str | None = None
) -> None:
    """Seal ``plaintext`` into ``out`` (exactly len(plaintext) + OVERHEAD bytes)."""
    nonce = nonce_bytes(NONCE_SIZE)
    out[:NONCE_SIZE] = nonce
    body = out[NONCE_SIZE:]
    with_session_aead(lambda aead: aead.encrypt_into(nonce, plaintext, None, body), mlock, 1)


def decrypt_into(aead: ChaCha20Poly1305, sealed: memoryview | bytearray, out: Any) -> None:
    """Authenticate and decrypt one sealed message into ``out`` (a writable buffer of
    exactly its plaintext size) with ``aead``.

    cryptography writes the plaintext before it checks the tag, so on any
    failure ``out`` is wiped before DecryptionError is raised.
    """
    n = len(out)
    if len(sealed) != n + OVERHEAD or n < 1:
        raise DecryptionError(f"sealed data of {len(sealed)} bytes is malformed")
    try:
        aead.decrypt_into(sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], None, out)
    except InvalidTag:
        wipe_bytes(out)
        raise DecryptionError(FAILED) from None


class Enclave:
    """Sealed data that only this process, under its current session key, can open.

    ``Enclave(src)`` seals a copy of ``src`` (bytes-like, at least 1 byte) and
    wipes ``src`` when it is writable; a ``bytes`` cannot be wiped. Enclaves
    sealed before a purge() fail to open after it (DecryptionError).
    """

    __slots__ = ("_sealed",)

    def __init__(self, src: object, *, mlock: policy.MlockPolicy | str | None = None) -> None:
        ptr, n, writable = source(src, empty="cannot seal empty data")
        self._sealed = bytearray(n + OVERHEAD)
        seal_into(ffi.buffer(ptr, n), memoryview(self._sealed), policy.resolve(mlock))
        if writable:
            lib.sm_wipe(ptr, n)

    @classmethod
    def random(cls, size: int) -> Enclave:
        """An enclave of ``size`` random bytes, generated in a guarded buffer."""
        return Buffer.random(check_size(size)).seal()

    @classmethod
    def _seal_buffer(cls, buf: Buffer, mlock: policy.MlockPolicy | None = None) -> Enclave:
        enclave = cls.__new__(cls)
        enclave._sealed = bytearray(buf.size + OVERHEAD)
        if not buf.mutable:
            buf.freeze()  # readable either way; NO_ACCESS would fault
        seal_into(buf.view(), memoryview(enclave._sealed), mlock)
        buf.destroy()
        return enclave

    @classmethod
    def from_ciphertext(cls, sealed: object) -> Enclave:
        """An Enclave over sealed bytes (as from :attr:`ciphertext`); checked at open()."""
        ptr, n, _ = source(sealed)
        enclave = cls.__new__(cls)
        enclave._sealed = bytearray(ffi.buffer(ptr, n))
        return enclave

    @property
    def ciphertext(self) -> bytes:
        """nonce || ciphertext || tag (not secret)."""
        return bytes(self._sealed)

    @property
    def size(self) -> int:
        """Plaintext bytes."""
        return max(0, len(self._sealed) - OVERHEAD)

    def open(self, *, mlock: policy.MlockPolicy | str | None = None, _owned: bool = False) -> Buffer:
        """Decrypt into a new frozen Buffer.

        Raises DecryptionError (leaving nothing allocated) when the data fails to
        authenticate, and MemoryLockError (holding no lock) when the buffer
        cannot be locked under the mlock policy.
        """
        size = self._plain_size()
        buf = Buffer(size, mlock=mlock, _owned=_owned)
        try:
            self._decrypt_into(ffi.buffer(buf._b.data, size), mlock)
            buf.freeze()
        except BaseException:
            buf.destroy()
            raise
        return buf

    def _plain_size(self) -> int:
        size = len(self._sealed) - OVERHEAD
        if size < 1:
            raise DecryptionError(f"sealed data of {len(self._sealed)} bytes is shorter than its overhead")
        return size

    def _decrypt_into(self, out: Any, mlock: policy.MlockPolicy | str | None) -> None:
        """Decrypt into ``out`` (writable, exactly :attr:`size` bytes of locked memory);
        on DecryptionError ``out`` is wiped."""
        sealed = memoryview(self._sealed)
        with_session_aead(lambda aead: decrypt_into(aead, sealed, out), mlock)

    def __repr__(self) -> str:
        return f"<Enclave size={self.size}>"

    def __reduce__(self) -> Any:
        raise InvalidTypeError("an Enclave cannot be pickled: its key exists only in this process")
