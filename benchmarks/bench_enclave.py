"""memguard Enclave seal and open, against raw ChaCha20-Poly1305 at the same sizes."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ._common import CPU_TIMER, LOOP, MICRO_REPEAT, MICRO_ROUNDS, SECRET_SIZES, cached, pattern

SIZES = SECRET_SIZES

timer = CPU_TIMER
rounds = MICRO_ROUNDS
repeat = MICRO_REPEAT


def _loops(size: int) -> int:
    """Iterations per timed call: LOOP for small sizes, 1 for 1 MiB."""
    return LOOP if size <= 4096 else 1


class Enclave:
    """``Enclave(data)`` (seal) and ``.open()`` + ``destroy()``; LOOP iterations
    per timed call for 32 B and 4 KiB, one for 1 MiB."""

    params = SIZES
    param_names = ("size",)
    timeout = 120

    def setup(self, size: int) -> None:
        from securememory.memguard import Enclave

        self.Enclave = Enclave
        self.data = cached(("pattern", size), lambda: pattern(size))
        self.enclave = Enclave(self.data)
        self.enclave.open().destroy()
        self.loops = _loops(size)

    def time_seal(self, size: int) -> None:
        make, data = self.Enclave, self.data
        for _ in range(self.loops):
            make(data)

    def time_open_destroy(self, size: int) -> None:
        open_ = self.enclave.open
        for _ in range(self.loops):
            open_().destroy()


class RawAead:
    """ChaCha20-Poly1305 decrypt_into a bytearray with a prebuilt AEAD object
    (``decrypt``), and with the AEAD object built per call (``new_decrypt``, as
    a key view that is dropped after each use requires); same loop counts as
    :class:`Enclave`."""

    params = SIZES
    param_names = ("size",)
    timeout = 120

    def setup(self, size: int) -> None:
        self.key = bytearray(os.urandom(32))
        self.aead = ChaCha20Poly1305(self.key)
        self.nonce = os.urandom(12)
        self.ct = self.aead.encrypt(self.nonce, pattern(size), None)
        self.out = bytearray(size)
        self.loops = _loops(size)

    def time_decrypt(self, size: int) -> None:
        decrypt_into, nonce, ct, out = self.aead.decrypt_into, self.nonce, self.ct, self.out
        for _ in range(self.loops):
            decrypt_into(nonce, ct, None, out)

    def time_new_decrypt(self, size: int) -> None:
        key, nonce, ct, out = memoryview(self.key), self.nonce, self.ct, self.out
        for _ in range(self.loops):
            ChaCha20Poly1305(key).decrypt_into(nonce, ct, None, out)

    def time_encrypt(self, size: int) -> None:
        encrypt, nonce = self.aead.encrypt, self.nonce
        data = cached(("pattern", size), lambda: pattern(size))
        for _ in range(self.loops):
            encrypt(nonce, data, None)
