"""Crypto recipes: right answers, documented errors, nothing left on failure."""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import os
from collections.abc import Iterator

import pytest
from _secret_helpers import BACKENDS
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from test_create import footprint

from securememory import DecryptionError, InvalidArgumentError, InvalidTypeError, SecretFactory
from securememory.crypto import aead_decrypt, derive_scrypt, hkdf, hmac_sha256


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest) -> Iterator[SecretFactory]:
    f = SecretFactory(request.param)
    with f.create_random(1) as warm:  # the session key, and the enclave's idle scratch, exist from here on
        warm.with_bytes(len)
    yield f


def test_derive_scrypt_matches_hashlib(factory: SecretFactory) -> None:
    password = factory.new(bytearray(b"correct horse"))
    with derive_scrypt(password, b"salt" * 4, length=32, n=2**10, factory=factory) as key:
        want = hashlib.scrypt(b"correct horse", salt=b"salt" * 4, n=2**10, r=8, p=1, dklen=32)
        assert key.with_bytes(bytes) == want
        assert len(key) == 32
    assert password.borrows == 0


def test_hkdf_matches_cryptography(factory: SecretFactory) -> None:
    ikm = factory.new(bytearray(b"k" * 32))
    with hkdf(ikm, length=42, salt=b"s", info=b"ctx", factory=factory) as out:
        want = HKDF(algorithm=hashes.SHA256(), length=42, salt=b"s", info=b"ctx").derive(b"k" * 32)
        assert out.with_bytes(bytes) == want


@pytest.mark.parametrize("cipher", [ChaCha20Poly1305, AESGCM])
def test_aead_decrypt_round_trip(factory: SecretFactory, cipher: type) -> None:
    raw = os.urandom(32)
    key = factory.new(bytearray(raw))
    nonce = os.urandom(12)
    ct = cipher(raw).encrypt(nonce, b"attack at dawn", b"hdr")
    with aead_decrypt(key, nonce, ct, b"hdr", cipher=cipher, factory=factory) as pt:
        assert pt.with_bytes(bytes) == b"attack at dawn"


@pytest.mark.parametrize("damage", ["tag", "aad", "nonce"])
def test_aead_failed_tag_leaves_nothing(factory: SecretFactory, damage: str) -> None:
    raw = os.urandom(32)
    key = factory.new(bytearray(raw))
    nonce = os.urandom(12)
    ct = bytearray(ChaCha20Poly1305(raw).encrypt(nonce, b"x" * 100, b"hdr"))
    aad = b"hdr"
    if damage == "tag":
        ct[-1] ^= 1
    elif damage == "aad":
        aad = b"HDR"
    else:
        nonce = bytes(12)
    before = footprint()
    with pytest.raises(DecryptionError, match="authentication failed"):
        aead_decrypt(key, nonce, bytes(ct), aad, factory=factory)
    assert footprint() == before
    assert key.borrows == 0


def test_hmac_sha256_matches_stdlib(factory: SecretFactory) -> None:
    key = factory.new(bytearray(b"K" * 40))
    assert hmac_sha256(key, b"message") == std_hmac.new(b"K" * 40, b"message", "sha256").digest()
    assert key.borrows == 0


def test_bad_arguments_raise_documented_errors(factory: SecretFactory) -> None:
    key = factory.new(bytearray(32))
    before = footprint()
    with pytest.raises(InvalidTypeError):
        hmac_sha256(bytearray(32), b"m")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        hmac_sha256(key, "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        derive_scrypt(key, b"salt", n=3)
    with pytest.raises(InvalidTypeError):
        derive_scrypt(key, "salt")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        hkdf(key, length=0)
    with pytest.raises(InvalidArgumentError, match="no plaintext"):
        aead_decrypt(key, bytes(12), bytes(16))
    with pytest.raises(InvalidArgumentError):
        aead_decrypt(key, bytes(3), bytes(40))
    with factory.new(bytearray(5)) as short_key, pytest.raises(InvalidArgumentError):
        aead_decrypt(short_key, bytes(12), bytes(40))
    with pytest.raises(InvalidTypeError):
        aead_decrypt(key, bytes(12), bytes(40), cipher=object)
    with pytest.raises(InvalidTypeError):
        aead_decrypt(key, bytes(12), 40)  # type: ignore[arg-type]
    assert footprint() == before
    assert key.borrows == 0
