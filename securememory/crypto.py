"""Crypto recipes over ``cryptography`` whose keys and outputs stay in locked memory.

Each recipe keys its primitive from a borrow of a Secret (a memoryview of
locked memory, never a ``bytes`` copy), drops the primitive before the borrow
ends (OpenSSL keeps a copy of the key in its context while it lives), and
writes secret output with ``*_into`` straight into a new Secret made with
:meth:`SecretFactory.create`, so a failure at any point wipes what was
written and leaves nothing allocated.

Errors: InvalidTypeError / InvalidArgumentError for bad arguments (what
``cryptography`` rejects included), DecryptionError when authentication fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from .errors import DecryptionError, InvalidArgumentError, InvalidTypeError, SecureMemoryError
from .factory import SecretFactory
from .secret import Secret

TAG_SIZE = 16


@contextlib.contextmanager
def _checked() -> Iterator[None]:
    """Turn cryptography's ValueError/TypeError into the library's documented errors."""
    try:
        yield
    except SecureMemoryError:
        raise
    except InvalidTag:
        raise DecryptionError("authentication failed: wrong key, nonce or associated data, or tampered data") from None
    except ValueError as e:
        raise InvalidArgumentError(str(e)) from e
    except TypeError as e:
        raise InvalidTypeError(str(e)) from e


def _secret(value: object, what: str) -> Secret:
    if not isinstance(value, Secret):
        raise InvalidTypeError(f"{what} must be a Secret, not {type(value).__name__}")
    return value


def derive_scrypt(
    password: Secret,
    salt: bytes,
    *,
    length: int = 32,
    n: int = 2**14,
    r: int = 8,
    p: int = 1,
    factory: SecretFactory | None = None,
) -> Secret:
    """A ``length``-byte key derived from ``password`` with scrypt, written into a new Secret.

    ``factory`` (default: a protected, mlock-required one) makes the result.
    """
    _secret(password, "password")
    with _checked():
        kdf = Scrypt(salt=salt, length=length, n=n, r=r, p=p)
    return _derive(kdf, password, length, factory)


def hkdf(
    key: Secret,
    *,
    length: int = 32,
    salt: bytes | None = None,
    info: bytes | None = None,
    algorithm: hashes.HashAlgorithm | None = None,
    factory: SecretFactory | None = None,
) -> Secret:
    """A ``length``-byte key derived from ``key`` with HKDF (default SHA-256), written into a new Secret."""
    _secret(key, "key")
    with _checked():
        kdf = HKDF(algorithm=algorithm or hashes.SHA256(), length=length, salt=salt, info=info)
    return _derive(kdf, key, length, factory)


def _derive(kdf: Scrypt | HKDF, source: Secret, length: int, factory: SecretFactory | None) -> Secret:
    """A new Secret of ``length`` bytes written by ``kdf.derive_into`` from a borrow of ``source``."""

    def fill(out: memoryview) -> None:
        with source.borrow() as material, _checked():
            kdf.derive_into(material, out)

    return (factory or SecretFactory()).create(length, fill)


def aead_decrypt(
    key: Secret,
    nonce: bytes,
    ciphertext: bytes,
    aad: bytes | None = None,
    *,
    cipher: Any = ChaCha20Poly1305,
    factory: SecretFactory | None = None,
) -> Secret:
    """The plaintext of ``ciphertext`` (with its 16-byte tag), decrypted straight into a new Secret.

    ``cipher`` is any ``cryptography`` AEAD class with ``decrypt_into``
    (ChaCha20Poly1305, AESGCM, AESGCMSIV, AESOCB3, AESCCM). cryptography
    writes the plaintext before it checks the tag; on a failed tag the
    Secret's memory is wiped and freed before DecryptionError is raised, so
    unauthenticated plaintext never survives.
    """
    _secret(key, "key")
    if not callable(getattr(cipher, "decrypt_into", None)):
        raise InvalidTypeError(f"cipher must be an AEAD class with decrypt_into, not {cipher!r}")
    try:
        size = memoryview(ciphertext).nbytes - TAG_SIZE
    except TypeError:
        raise InvalidTypeError(f"ciphertext must be bytes-like, not {type(ciphertext).__name__}") from None
    if size < 1:
        raise InvalidArgumentError(f"ciphertext of {size + TAG_SIZE} bytes holds no plaintext after its tag")

    def fill(out: memoryview) -> None:
        with key.borrow() as k, _checked():
            aead = cipher(k)
            try:
                aead.decrypt_into(nonce, ciphertext, aad, out)
            finally:
                del aead

    return (factory or SecretFactory()).create(size, fill)


def hmac_sha256(key: Secret, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key``; the tag is not secret and is returned as bytes.

    The HMAC is keyed from the borrowed view (cryptography passes the buffer
    to OpenSSL without a Python copy), unlike the stdlib ``hmac.new``, which
    rejects a memoryview key.
    """
    _secret(key, "key")
    with key.borrow() as k, _checked():
        mac = hmac.HMAC(k, hashes.SHA256())
        try:
            mac.update(message)
            return mac.finalize()
        finally:
            del mac
