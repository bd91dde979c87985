"""Derive a key from a passphrase typed at the terminal and print a verifier for it.

    python examples/passphrase_cli.py --salt 00112233445566778899aabbccddeeff

Reads the passphrase with echo off straight into locked memory, derives a
32-byte key with scrypt into locked memory, and prints
HMAC-SHA256(key, "verifier") in hex: safe to store, it reveals neither.
"""

from __future__ import annotations

import argparse

from securememory import SecretFactory
from securememory.crypto import derive_scrypt, hmac_sha256

VERIFIER_MESSAGE = b"verifier"


def verifier(salt: bytes, n: int = 2**14, prompt: str = "Passphrase: ") -> str:
    """The hex verifier of a passphrase read from the terminal."""
    with SecretFactory().getpass(prompt) as passphrase, derive_scrypt(passphrase, salt, n=n) as key:
        return hmac_sha256(key, VERIFIER_MESSAGE).hex()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--salt", required=True, help="hex")
    parser.add_argument("--n", type=int, default=2**14, help="scrypt cost (a power of 2)")
    args = parser.parse_args(argv)
    print(verifier(bytes.fromhex(args.salt), args.n))


if __name__ == "__main__":
    main()
