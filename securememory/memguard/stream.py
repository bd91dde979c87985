"""Stream: data too large to lock at once, held as a queue of sealed chunks.

Each chunk (default 4 pages) is an Enclave. Reading decrypts one chunk at a
time into a single guarded scratch buffer owned by the stream, so locked
memory stays one chunk however large the stream grows.
"""

from __future__ import annotations

import collections
import threading

from .._native import ffi, lib
from ..errors import InvalidTypeError, StreamEmptyError
from ..memcall.region import check_size, page_size
from . import policy
from .buffer import Buffer
from .enclave import OVERHEAD, open_into, seal_into
from .wipe import source

DEFAULT_CHUNK_PAGES = 4


class Stream:
    """A FIFO of secret bytes, sealed in chunks of ``chunk_size`` bytes.

    ``chunk_size`` defaults to 4 pages; it must be an int >= 1 (InvalidArgumentError
    otherwise). Thread-safe: operations on one stream are serialised.
    """

    def __init__(self, chunk_size: int | None = None, *, mlock: policy.MlockPolicy | str | None = None) -> None:
        if chunk_size is None:
            chunk_size = DEFAULT_CHUNK_PAGES * page_size()
        self._chunk_size = check_size(chunk_size, "chunk_size")
        self._mlock = policy.resolve(mlock)
        self._chunks: collections.deque[bytearray] = collections.deque()
        self._size = 0
        self._scratch: Buffer | None = None
        self._lock = threading.Lock()

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    @property
    def size(self) -> int:
        """Bytes waiting to be read."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def write(self, data: object) -> int:
        """Seal ``data`` onto the end of the stream; wipes ``data`` when writable.

        Returns the number of bytes written. A ``bytes`` cannot be wiped.
        """
        ptr, n, writable = source(data)
        with self._lock:
            for offset in range(0, n, self._chunk_size):
                length = min(self._chunk_size, n - offset)
                sealed = bytearray(length + OVERHEAD)
                seal_into(ffi.buffer(ptr + offset, length), memoryview(sealed), self._mlock)
                self._chunks.append(sealed)
                self._size += length
        if writable:
            lib.sm_wipe(ptr, n)
        return n

    def _scratch_view(self, length: int) -> memoryview:
        """A view of ``length`` bytes of the stream's one locked scratch buffer.

        Sized by the chunks actually read, so a large chunk_size costs nothing
        until that much data is written.
        """
        if self._scratch is None or not self._scratch.alive or self._scratch.size < length:
            if self._scratch is not None:
                self._scratch.destroy()
            self._scratch = Buffer(length, mlock=self._mlock)
        return self._scratch.view()[:length]

    def readinto(self, buf: object) -> int:
        """Fill ``buf`` from the front of the stream; returns bytes read (0 at the end).

        A partly read chunk is resealed and stays at the front.
        """
        ptr, want, writable = source(buf)
        if not writable:
            raise InvalidTypeError("readinto needs a writable buffer")
        done = 0
        with self._lock:
            while done < want and self._chunks:
                sealed = self._chunks.popleft()
                length = len(sealed) - OVERHEAD
                plain = self._scratch_view(length)
                try:
                    open_into(memoryview(sealed), plain, self._mlock)
                except BaseException:
                    self._chunks.appendleft(sealed)
                    raise
                take = min(length, want - done)
                ffi.memmove(ptr + done, ffi.from_buffer(plain), take)
                if take < length:
                    rest = bytearray(length - take + OVERHEAD)
                    seal_into(plain[take:], memoryview(rest), self._mlock)
                    self._chunks.appendleft(rest)
                lib.sm_wipe(ffi.from_buffer(plain), length)
                done += take
                self._size -= take
        return done

    def next(self) -> Buffer:
        """The front chunk as a frozen Buffer; StreamEmptyError when the stream is empty."""
        with self._lock:
            if not self._chunks:
                raise StreamEmptyError("stream is empty")
            sealed = self._chunks[0]
            buf = Buffer(len(sealed) - OVERHEAD, mlock=self._mlock)
            try:
                open_into(memoryview(sealed), buf.view(), self._mlock)
            except BaseException:
                buf.destroy()
                raise
            self._chunks.popleft()
            self._size -= buf.size
        buf.freeze()
        return buf

    def flush(self) -> Buffer:
        """Everything left, as one frozen Buffer (this locks the whole size at once)."""
        with self._lock:
            if not self._chunks:
                raise StreamEmptyError("stream is empty")
            buf = Buffer(self._size, mlock=self._mlock)
            try:
                view = buf.view()
                offset = 0
                for sealed in self._chunks:
                    length = len(sealed) - OVERHEAD
                    open_into(memoryview(sealed), view[offset : offset + length], self._mlock)
                    offset += length
            except BaseException:
                buf.destroy()
                raise
            self._chunks.clear()
            self._size = 0
        buf.freeze()
        return buf

    def destroy(self) -> None:
        """Drop every chunk and the scratch buffer."""
        with self._lock:
            self._chunks.clear()
            self._size = 0
            if self._scratch is not None:
                self._scratch.destroy()
                self._scratch = None

    def __repr__(self) -> str:
        return f"<Stream size={self._size} chunk_size={self._chunk_size}>"
