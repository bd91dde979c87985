"""Enclave.open on arbitrary or tampered ciphertext: DecryptionError, nothing left allocated."""

from __future__ import annotations

from _common import atheris, check, live_buffers, main

from securememory.errors import DecryptionError
from securememory.memguard import OVERHEAD, Enclave


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    before = live_buffers()
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:
        enclave = Enclave.from_ciphertext(fdp.ConsumeBytes(fdp.remaining_bytes()))
        expect = None
    else:
        plain = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 512)) or b"\x00"
        original = Enclave(plain).ciphertext
        check(len(original) == len(plain) + OVERHEAD, "sealed length")
        sealed = bytearray(original)
        if mode == 1:
            for i, m in enumerate(fdp.ConsumeBytes(len(sealed))):
                sealed[i] ^= m
        else:
            cut = fdp.ConsumeIntInRange(0, len(sealed))
            sealed = sealed[:cut] + bytearray(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8)))
        expect = plain if bytes(sealed) == original else None
        enclave = Enclave.from_ciphertext(sealed)
    try:
        buf = enclave.open()
    except DecryptionError:
        check(expect is None, "an untouched enclave failed to open")
    else:
        try:
            check(expect is not None, "forged or altered ciphertext opened")
            check(bytes(buf.view()) == expect, "opened to different plaintext")
            check(not buf.mutable, "opened buffer is writable")
        finally:
            buf.destroy()
    check(live_buffers() == before, f"buffers leaked: {before} -> {live_buffers()}")


if __name__ == "__main__":
    main(test_one_input)
