"""Streams: write + read back 64 MiB, against raw ChaCha20-Poly1305 at the chunk size;
and the peak RSS that adds, measured in a fresh interpreter (see stream_rss.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ._common import CPU_TIMER, STREAM_TOTAL, cached, pattern, stream_chunk

STREAMS = ["memguard", "securememory"]

timer = CPU_TIMER


def _new_stream(kind: str) -> Any:
    if kind == "memguard":
        from securememory.memguard import Stream
    else:
        try:
            from securememory import Stream
        except ImportError as exc:
            raise NotImplementedError(repr(exc)) from None
    return Stream()


class StreamWriteRead:
    """One ``write`` of 64 MiB (a ``bytes``, so nothing is wiped), then ``readinto``
    a preallocated 64 MiB buffer until EOF."""

    params = STREAMS
    param_names = ("stream",)
    repeat = (2, 5, 30.0)
    timeout = 300

    def setup(self, kind: str) -> None:
        self.data = cached("stream-data", lambda: pattern(STREAM_TOTAL))
        self.out = cached("stream-out", lambda: bytearray(STREAM_TOTAL))
        self.new = lambda: _new_stream(kind)
        self.new()

    def _run(self) -> None:
        stream = self.new()
        stream.write(self.data)
        view = memoryview(self.out)
        done = 0
        while done < STREAM_TOTAL:
            n = stream.readinto(view[done:])
            if not n:
                break
            done += n
        if done != STREAM_TOTAL:
            raise RuntimeError(f"stream returned {done} of {STREAM_TOTAL} bytes")

    def time_write_read_64MiB(self, kind: str) -> None:
        self._run()

    def peakmem_write_read_64MiB(self, kind: str) -> None:
        self._run()


class StreamPeakRss:
    """Peak resident bytes above the baseline (interpreter, library, session key and
    the 64 MiB input in place) while a 64 MiB stream is written and read back into
    a new 64 MiB buffer, in a fresh interpreter per sample: ``stream_rss.py``. The
    report divides by the data size (about 2.0 at least: sealed copy + destination)."""

    params = STREAMS
    param_names = ("stream",)
    unit = "bytes"
    timeout = 300

    def track_peak_above_baseline_64MiB(self, kind: str) -> float:
        script = Path(__file__).resolve().parent / "stream_rss.py"
        done = subprocess.run(
            [sys.executable, str(script), kind], capture_output=True, text=True, timeout=240, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"stream_rss.py {kind} exited {done.returncode}: {done.stderr.strip()}")
        return float(json.loads(done.stdout)["above_baseline"])


class RawAeadChunks:
    """ChaCha20-Poly1305 ``encrypt_into`` + ``decrypt_into`` of 64 MiB in chunks of
    the stream's chunk size (4 pages), one prebuilt AEAD object, one reused
    ciphertext buffer: the throughput ceiling for a sealed-chunk stream."""

    repeat = (2, 5, 30.0)
    timeout = 300

    def setup(self) -> None:
        self.data = cached("stream-data", lambda: pattern(STREAM_TOTAL))
        self.out = cached("stream-out", lambda: bytearray(STREAM_TOTAL))
        self.aead = ChaCha20Poly1305(os.urandom(32))
        self.nonce = os.urandom(12)
        self.chunk = stream_chunk()
        self.ct = bytearray(self.chunk + 16)

    def time_encrypt_decrypt_64MiB(self) -> None:
        enc, dec, nonce, chunk = self.aead.encrypt_into, self.aead.decrypt_into, self.nonce, self.chunk
        src, dst, ct = memoryview(self.data), memoryview(self.out), memoryview(self.ct)
        for off in range(0, STREAM_TOTAL, chunk):
            end = min(off + chunk, STREAM_TOTAL)
            sealed = ct[: end - off + 16]
            enc(nonce, src[off:end], None, sealed)
            dec(nonce, sealed, None, dst[off:end])
