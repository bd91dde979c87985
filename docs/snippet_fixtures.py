"""Names the README's snippets use without defining them: the things an application already has.

Each snippet runs in a fresh interpreter with these names in scope (as
doctest globals would be), in a directory holding ``tls.key``, with
``API_KEY`` set and a pseudo-terminal on which "hunter2" is typed at the
first "Password: " prompt.
"""

from __future__ import annotations

import io
import os
import signal
import socket

from securememory import SecretFactory

pin_file = io.BytesIO(b"1234")  # any unbuffered reader with readinto
_peer, sock = socket.socketpair()
_peer.sendall(os.urandom(64))
raw = io.BytesIO(b"a line secret\nthe rest")
_r, _w = os.pipe()
os.write(_w, b"blob of data")
os.close(_w)
fd = _r
key = SecretFactory().create_random(32)
other_key = SecretFactory().create_random(32)
nonce = os.urandom(12)
message = b"attack at dawn"
big_bytearray = bytearray(os.urandom(100_000))
out = bytearray(50_000)


def check(view: memoryview) -> None:
    assert len(view) > 0


def consume(view: memoryview) -> int:
    return len(view)


def on_hup(signum: int) -> None:
    pass


__all__ = [
    "big_bytearray", "check", "consume", "fd", "key", "message", "nonce", "on_hup", "other_key", "out",
    "pin_file", "raw", "signal", "sock",
]
