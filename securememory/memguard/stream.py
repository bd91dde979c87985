"""Stream: data too large to lock at once, held as a queue of sealed chunks.

Each chunk (default 4 pages) is sealed like an Enclave: ``nonce || ciphertext
|| tag``. One ``write`` stores all its chunks in one allocation (a chunk is a
memoryview into it) and keys one AEAD object for all of them; one
``readinto`` likewise decrypts every whole chunk it consumes straight into the
caller's buffer with one AEAD object. Each AEAD object lives only for its call,
inside a fork fence lease (OpenSSL keeps a copy of the key while one lives, and
fork() waits for it). A chunk only
partly read is decrypted into a single guarded scratch buffer owned by the
stream, and its leftover resealed, so locked memory stays one chunk however
large the stream grows.
"""

from __future__ import annotations

import collections
import contextlib
import mmap
import threading
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .._gate import hold
from .._native import ffi, lib
from ..errors import DecryptionError, InvalidTypeError, NonceBudgetError, StreamEmptyError
from ..memcall.region import check_size, page_size
from . import policy
from .buffer import Buffer
from .coffer import Coffer, get_coffer
from .enclave import NONCE_SIZE, OVERHEAD, decrypt_into
from .wipe import nonce_bytes, source

DEFAULT_CHUNK_PAGES = 4

_ARENA_MIN = 2 << 20
_MAP_FLAGS = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
_HUGEPAGE = getattr(mmap, "MADV_HUGEPAGE", None)


def _arena(size: int) -> memoryview:
    """Writable, zeroed memory for sealed chunks (ciphertext: nothing secret).

    Large writes get a private anonymous mapping that may use transparent huge
    pages, which costs far fewer page faults than a heap bytearray of the same
    size; it is unmapped once no chunk refers to it.
    """
    if size >= _ARENA_MIN and _MAP_FLAGS and hasattr(mmap, "MAP_PRIVATE"):
        try:
            region = mmap.mmap(-1, size, flags=_MAP_FLAGS)
        except OSError:
            pass
        else:
            if _HUGEPAGE is not None:
                with contextlib.suppress(OSError):
                    region.madvise(_HUGEPAGE)
            return memoryview(region)
    return memoryview(bytearray(size))


def _seal_chunks(
    aead: ChaCha20Poly1305, src: memoryview, chunk: int, store: memoryview, nonces: memoryview
) -> list[memoryview]:
    """Seal ``src`` in chunks of ``chunk`` bytes back to back into ``store``, each
    ``nonce || ciphertext || tag`` with the next nonce of ``nonces``; returns the chunks."""
    n = len(src)
    step = chunk + OVERHEAD
    encrypt = aead.encrypt_into
    sealed: list[memoryview] = []
    append = sealed.append
    at = 0
    for offset in range(0, n - chunk, chunk):
        nonce = nonces[:NONCE_SIZE]
        nonces = nonces[NONCE_SIZE:]
        out = store[at : at + step]
        out[:NONCE_SIZE] = nonce
        encrypt(nonce, src[offset : offset + chunk], None, out[NONCE_SIZE:])
        append(out)
        at += step
    last = len(sealed) * chunk
    out = store[at:]
    out[:NONCE_SIZE] = nonces
    encrypt(nonces, src[last:], None, out[NONCE_SIZE:])
    append(out)
    return sealed


def _open_chunks(aead: ChaCha20Poly1305, chunks: Any, view: memoryview) -> None:
    """Decrypt ``chunks`` back to back into ``view`` with ``aead`` (DecryptionError on any failure)."""
    offset = 0
    for sealed in chunks:
        length = len(sealed) - OVERHEAD
        if length < 1 or offset + length > len(view):
            raise DecryptionError(f"sealed data of {len(sealed)} bytes is malformed")
        decrypt_into(aead, sealed, view[offset : offset + length])
        offset += length


class Stream:
    """A FIFO of secret bytes, sealed in chunks of ``chunk_size`` bytes.

    ``chunk_size`` defaults to 4 pages; a non-int raises InvalidTypeError, a value
    below 1 InvalidArgumentError. Thread-safe: operations on one stream are serialised.
    """

    def __init__(self, chunk_size: int | None = None, *, mlock: policy.MlockPolicy | str | None = None) -> None:
        if chunk_size is None:
            chunk_size = DEFAULT_CHUNK_PAGES * page_size()
        self._chunk_size = check_size(chunk_size, "chunk_size")
        self._mlock = policy.resolve(mlock)
        self._chunks: collections.deque[Any] = collections.deque()
        self._size = 0
        self._scratch: Buffer | None = None
        self._scratch_mv: memoryview | None = None
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

        Returns the number of bytes written. A ``bytes`` cannot be wiped. All
        of ``data`` is written or none of it (NonceBudgetError when the session
        key cannot seal that many chunks).
        """
        ptr, n, writable = source(data)
        if n == 0:
            return 0
        chunk = self._chunk_size
        count = -(-n // chunk)
        store = _arena(n + count * OVERHEAD)
        nonces = memoryview(nonce_bytes(NONCE_SIZE * count))
        src = memoryview(ffi.buffer(ptr, n))
        with hold(self._lock):
            coffer = get_coffer(self._mlock)
            sealed = coffer.with_aead(lambda aead: _seal_chunks(aead, src, chunk, store, nonces), count)
            self._chunks.extend(sealed)
            self._size += n
        if writable:
            lib.sm_wipe(ptr, n)
        return n

    def _scratch_view(self, length: int) -> memoryview:
        """A view of ``length`` bytes of the stream's one locked scratch buffer.

        Sized by the chunks actually read, so a large chunk_size costs nothing
        until that much data is written.
        """
        scratch = self._scratch
        if scratch is None or self._scratch_mv is None or not scratch.alive or scratch.size < length:
            self._scratch_mv = None
            if scratch is not None:
                scratch.destroy()
                self._scratch = None
            scratch = self._scratch = Buffer(length, mlock=self._mlock)
            self._scratch_mv = scratch.view()
        return self._scratch_mv[:length]

    def readinto(self, buf: object) -> int:
        """Fill ``buf`` from the front of the stream; returns bytes read (0 at the end).

        Whole chunks are decrypted straight into ``buf``; a partly read chunk
        goes through the locked scratch buffer and its leftover is resealed and
        stays at the front. A chunk that fails to authenticate stays at the
        front: DecryptionError if nothing was read before it, else the bytes
        read so far are returned and the next call raises.
        """
        ptr, want, writable = source(buf)
        if not writable:
            raise InvalidTypeError("readinto needs a writable buffer")
        if want == 0:
            return 0
        dst = memoryview(ffi.buffer(ptr, want))
        with hold(self._lock):
            if not self._chunks:
                return 0
            coffer = get_coffer(self._mlock)
            return coffer.with_aead(lambda aead: self._read_chunks(aead, coffer, ptr, dst))

    def _read_chunks(self, aead: ChaCha20Poly1305, coffer: Coffer, ptr: Any, dst: memoryview) -> int:
        """readinto's work with ``aead`` (stream lock held); returns bytes read."""
        chunks = self._chunks
        want = len(dst)
        done = 0
        try:
            while chunks:
                sealed = chunks[0]
                length = len(sealed) - OVERHEAD
                if length < 1:
                    raise DecryptionError(f"sealed data of {len(sealed)} bytes is malformed")
                if length <= want - done:
                    decrypt_into(aead, sealed, dst[done : done + length])
                    chunks.popleft()
                    done += length
                    if done == want:
                        break
                    continue
                take = want - done
                plain = self._scratch_view(length)
                plain_ptr = ffi.from_buffer(plain)
                try:
                    decrypt_into(aead, sealed, plain)
                    coffer.spend(1)
                    rest = bytearray(length - take + OVERHEAD)
                    nonce = nonce_bytes(NONCE_SIZE)
                    rest[:NONCE_SIZE] = nonce
                    aead.encrypt_into(nonce, plain[take:], None, memoryview(rest)[NONCE_SIZE:])
                    ffi.memmove(ptr + done, plain_ptr, take)
                finally:
                    lib.sm_wipe(plain_ptr, length)
                chunks[0] = memoryview(rest)
                done += take
                break
        except (DecryptionError, NonceBudgetError):
            if not done:
                raise
        finally:
            self._size -= done
        return done

    def next(self) -> Buffer:
        """The front chunk as a frozen Buffer; StreamEmptyError when the stream is empty."""
        with hold(self._lock):
            if not self._chunks:
                raise StreamEmptyError("stream is empty")
            sealed = self._chunks[0]
            buf = Buffer(len(sealed) - OVERHEAD, mlock=self._mlock)
            try:
                self._open_all([sealed], ffi.buffer(buf._b.data, buf.size))
            except BaseException:
                buf.destroy()
                raise
            self._chunks.popleft()
            self._size -= buf.size
        buf.freeze()
        return buf

    def flush(self) -> Buffer:
        """Everything left, as one frozen Buffer (this locks the whole size at once)."""
        with hold(self._lock):
            if not self._chunks:
                raise StreamEmptyError("stream is empty")
            buf = Buffer(self._size, mlock=self._mlock)
            try:
                self._open_all(self._chunks, ffi.buffer(buf._b.data, buf.size))
            except BaseException:
                buf.destroy()
                raise
            self._chunks.clear()
            self._size = 0
        buf.freeze()
        return buf

    def _open_all(self, chunks: Any, out: Any) -> None:
        """Decrypt ``chunks`` back to back into ``out`` (exactly their plaintext size)
        with one AEAD object; wipes ``out`` and raises DecryptionError on any failure."""
        view = memoryview(out)
        try:
            get_coffer(self._mlock).with_aead(lambda aead: _open_chunks(aead, chunks, view))
        except BaseException:
            lib.sm_wipe(ffi.from_buffer(view), len(view))
            raise

    def destroy(self) -> None:
        """Drop every chunk and the scratch buffer."""
        with hold(self._lock):
            self._chunks.clear()
            self._size = 0
            self._scratch_mv = None
            if self._scratch is not None:
                self._scratch.destroy()
                self._scratch = None

    def __repr__(self) -> str:
        return f"<Stream size={self._size} chunk_size={self._chunk_size}>"
