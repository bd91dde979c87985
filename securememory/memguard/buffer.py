"""Buffer: a guarded, locked, canaried region holding one secret.

Layout (one mapping, built and torn down in one C call each)::

    [guard page][canary ... data][guard page]

The data is right-aligned, so the byte after the last data byte is the first
byte of the trailing guard page (an overflow faults at once). The canary fills
the inner pages in front of the data and is at least 16 bytes long: a size
that is an exact page multiple gets one more inner page for its canary. The
canary is checked on destroy and purge; a mismatch wipes every live buffer,
prints ``canary verification failed; buffer overflow detected`` and aborts.
The inner pages are locked (per the mlock policy), kept out of core dumps
(MADV_DONTDUMP) and wiped in forked children (MADV_WIPEONFORK).
"""

from __future__ import annotations

import errno as _errno
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from .._gate import locked
from .._native import ffi, lib
from ..errors import (
    AllocationError,
    BufferDestroyedError,
    EntropyError,
    ForkedError,
    InvalidArgumentError,
    InvalidTypeError,
    ProtectionError,
    ReadOnlyError,
)
from ..memcall import Protection
from ..memcall.failures import failed, strerror, teardown_error
from ..memcall.region import MAX_SIZE, check_size, owned_view
from ..memcall.system import lock_error
from . import crash, policy
from .reading import fill_from, readinto_of
from .registry import fork_state, registry
from .wipe import fill_random, source

if TYPE_CHECKING:
    from .buffer_reader import BufferReader
    from .enclave import Enclave

_STRUCT = ffi.typeof("sm_buffer *")
_READ_WRITE = Protection.READ_WRITE
_register = registry.add
_unregister = registry.remove


def _raise_create_error(code: int, step: int, size: int, inner_len: int) -> None:
    if step == lib.SM_STEP_SIZE:
        raise InvalidArgumentError(f"size {size} is too large for a guarded buffer")
    if step == lib.SM_STEP_LOCK:
        raise lock_error(code, inner_len)
    if step == lib.SM_STEP_RANDOM:
        raise EntropyError(f"could not draw the canary key for a guarded buffer ({failed(step, code)})")
    if step == lib.SM_STEP_MAP or (step == lib.SM_STEP_GUARD and code == _errno.ENOMEM):
        raise AllocationError(f"could not map a guarded buffer of {size} bytes ({failed(step, code)})", code, size)
    raise ProtectionError(f"could not set up a guarded buffer of {size} bytes ({failed(step, code)})", code)


def inner_length(size: int) -> int:
    """Bytes of inner (locked) pages a Buffer of ``size`` data bytes uses."""
    page = lib.sm_page_size()
    return (size + lib.SM_CANARY_MIN + page - 1) // page * page


class Buffer:
    """A guarded buffer of ``size`` bytes (>= 1), zero-filled and read-write.

    ``mlock`` overrides the mlock policy for this buffer ("require",
    "best_effort", "disabled"). Raises InvalidArgumentError for a size below 1
    (no zero-size buffers exist), MemoryLockError when locking is required and
    fails, AllocationError when the kernel refuses the mapping.

    Lives until :meth:`destroy`, the end of its ``with`` block, purge(), garbage
    collection (the finalizer is C: no Python runs then) or interpreter exit,
    whichever comes first. Every operation on a
    destroyed buffer raises BufferDestroyedError; on a buffer inherited across
    fork(), ForkedError.
    """

    __slots__ = ("__weakref__", "_b", "_gen", "_guard", "_owned", "_protection")

    def __init__(
        self, size: int, *, mlock: policy.MlockPolicy | str | None = None, _owned: bool = False
    ) -> None:
        """``_owned``: the buffer belongs to a Secret from birth; purge() leaves it to
        the Secret layer, which retires its borrows first."""
        if size.__class__ is not int or not 0 < size <= MAX_SIZE:
            size = check_size(size)
        mode = policy.lock_mode(mlock)
        crash.ensure_installed()
        # sm_buffer_destroy is the finalizer: C, idempotent, fork-aware
        b: Any = ffi.gc(ffi.new(_STRUCT), lib.sm_buffer_destroy)
        code = lib.sm_buffer_create(size, mode, b)
        if code:
            _raise_create_error(code, b.failed_step, size, inner_length(size))
        self._b: Any = b
        self._gen = fork_state.generation
        self._guard = threading.Lock()
        self._protection = _READ_WRITE
        self._owned = _owned
        _register(self)
        if b.lock_errno:
            policy.warn_unlocked(lock_error(b.lock_errno, b.inner_len))

    # -- constructors -------------------------------------------------------

    @classmethod
    def from_bytes(cls, src: object, *, mlock: policy.MlockPolicy | str | None = None) -> Buffer:
        """A buffer holding a copy of ``src``; writable sources are wiped after the copy.

        A ``bytes`` source is copied but cannot be wiped: it stays in the
        caller's memory. Pass a bytearray to have the library erase it. Like
        every filled constructor, returns the buffer frozen (melt() to write).
        """
        ptr, n, writable = source(src, empty="size must be at least 1, got 0")
        buf = cls(n, mlock=mlock)
        ffi.memmove(buf._b.data, ptr, n)
        if writable:
            lib.sm_wipe(ptr, n)
        buf.freeze()
        return buf

    @classmethod
    def random(cls, size: int, *, mlock: policy.MlockPolicy | str | None = None) -> Buffer:
        """A buffer filled in place from the kernel CSPRNG."""
        buf = cls(size, mlock=mlock)
        try:
            fill_random(buf._b.data, buf._b.size)
            buf.freeze()
        except BaseException:
            buf.destroy()
            raise
        return buf

    @classmethod
    def from_reader(
        cls, reader: BinaryIO | Any, size: int, *, mlock: policy.MlockPolicy | str | None = None
    ) -> Buffer:
        """Exactly ``size`` bytes read with ``reader.readinto`` straight into the buffer.

        Raises InvalidArgumentError (after wiping and destroying the buffer) when
        the reader ends early; InvalidTypeError when it has no ``readinto``.
        """
        readinto = readinto_of(reader)
        buf = cls(size, mlock=mlock)
        try:
            filled = fill_from(readinto, buf.view())
            if filled < size:
                raise InvalidArgumentError(f"reader ended after {filled} of {size} bytes")
            buf.freeze()
        except BaseException:
            buf.destroy()
            raise
        return buf

    @classmethod
    def from_entire_reader(
        cls, reader: BinaryIO | Any, *, mlock: policy.MlockPolicy | str | None = None
    ) -> Buffer:
        """Everything ``reader`` yields until EOF, read with ``readinto``.

        Grows by doubling through guarded buffers (each wiped and destroyed when
        outgrown), so the data never passes through ordinary memory. Raises
        InvalidArgumentError when the reader yields nothing.
        """
        readinto = readinto_of(reader)
        buf = cls(lib.sm_page_size() - lib.SM_CANARY_MIN, mlock=mlock)
        filled = 0
        try:
            while True:
                n = fill_from(readinto, buf.view()[filled:])
                filled += n
                if filled < buf.size:
                    break
                bigger = cls(buf.size * 2, mlock=mlock)
                ffi.memmove(bigger._b.data, buf._b.data, filled)
                buf.destroy()
                buf = bigger
            if filled == 0:
                raise InvalidArgumentError("reader yielded no data")
            exact = cls(filled, mlock=mlock)
            ffi.memmove(exact._b.data, buf._b.data, filled)
            exact.freeze()
        finally:
            buf.destroy()
        return exact

    # -- state ----------------------------------------------------------------

    def _live(self) -> Any:
        """The native struct, after checking the buffer is usable here and now."""
        b = self._b
        if self._gen != fork_state.generation:
            raise ForkedError("this buffer was created before fork(); it is wiped in the child")
        if not b.base:
            raise BufferDestroyedError("buffer has been destroyed")
        return b

    @property
    def size(self) -> int:
        """Data bytes; 0 once destroyed (as memguard reports)."""
        return int(self._b.size) if self._b.base else 0

    @property
    def alive(self) -> bool:
        """False once destroyed (or in a forked child)."""
        return bool(self._b.base) and self._gen == fork_state.generation

    @property
    def mutable(self) -> bool:
        """True while read-write (not frozen)."""
        return self.alive and self._protection == Protection.READ_WRITE

    @property
    def locked(self) -> bool:
        """Whether the inner pages are mlocked (False under best_effort failure or disabled)."""
        return self.alive and bool(self._b.locked)

    @property
    def protection(self) -> Protection:
        return self._protection

    @property
    def address(self) -> int:
        """Address of the first data byte (for inspection tools such as the harness)."""
        return int(ffi.cast("uintptr_t", self._live().data))

    def inner_span(self) -> tuple[int, int]:
        """(address, length) of the inner pages: the canary followed by the data."""
        b = self._live()
        return int(ffi.cast("uintptr_t", b.inner)), int(b.inner_len)

    # -- access -----------------------------------------------------------------

    def view(self) -> memoryview:
        """A memoryview of the data: writable while mutable, read-only when frozen.

        The view is only valid while the buffer is alive and readable; touching
        it after destroy() or while NO_ACCESS faults.
        """
        b = self._live()
        if self._protection == Protection.NO_ACCESS:
            raise ProtectionError("buffer is NO_ACCESS; protect it READ_ONLY first")
        view = owned_view(b.data, b.size, self)
        return view if self._protection == Protection.READ_WRITE else view.toreadonly()

    def protect(self, protection: Protection) -> None:
        """Set the protection of the inner pages (NO_ACCESS, READ_ONLY, READ_WRITE)."""
        if not isinstance(protection, Protection):
            raise InvalidTypeError(f"protection must be a Protection, not {type(protection).__name__}")
        locked(self._guard, self._protect, protection)

    def _protect(self, protection: Protection) -> None:
        code = lib.sm_buffer_protect(self._live(), int(protection))
        if code:
            raise ProtectionError(f"mprotect to {protection.name} failed ({strerror(code)})", code)
        self._protection = protection

    def freeze(self) -> None:
        """Make the data read-only; writes through any view then fault."""
        self.protect(Protection.READ_ONLY)

    def melt(self) -> None:
        """Make the data read-write again."""
        self.protect(Protection.READ_WRITE)

    def _writable(self) -> Any:
        b = self._live()
        if self._protection != Protection.READ_WRITE:
            raise ReadOnlyError("buffer is frozen; melt() it first")
        return b

    def wipe(self) -> None:
        """Overwrite the data with zeros."""
        locked(self._guard, self._wipe)

    def _wipe(self) -> None:
        b = self._writable()
        lib.sm_wipe(b.data, b.size)

    def scramble(self) -> None:
        """Overwrite the data with random bytes."""
        locked(self._guard, self._scramble)

    def _scramble(self) -> None:
        b = self._writable()
        fill_random(b.data, b.size)

    def copy(self, src: object) -> None:
        """Copy ``src`` to the start of the data (at most ``size`` bytes)."""
        self.copy_at(0, src)

    def copy_at(self, offset: int, src: object) -> None:
        """Copy ``src`` into the data at ``offset``; what does not fit is not copied."""
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise InvalidTypeError("offset must be an int")
        ptr, n, _ = source(src)
        locked(self._guard, self._copy_at, offset, ptr, n)

    def _copy_at(self, offset: int, ptr: Any, n: int) -> None:
        b = self._writable()
        if not 0 <= offset <= b.size:
            raise InvalidArgumentError(f"offset {offset} outside buffer of {b.size} bytes")
        ffi.memmove(b.data + offset, ptr, min(n, b.size - offset))

    def move(self, src: object) -> None:
        """Copy ``src`` to the start of the data, then wipe ``src`` (which must be writable)."""
        self.move_at(0, src)

    def move_at(self, offset: int, src: object) -> None:
        """Copy ``src`` into the data at ``offset`` as :meth:`copy_at` does, then wipe all of
        ``src`` (which must be writable: InvalidTypeError before anything is copied)."""
        ptr, n, writable = source(src)
        if not writable:
            raise InvalidTypeError(f"move() needs a writable source to wipe, not {type(src).__name__}")
        self.copy_at(offset, src)
        lib.sm_wipe(ptr, n)

    def reader(self) -> BufferReader:
        """A read-only binary stream over the data from its start; each read copies out."""
        from .buffer_reader import BufferReader

        return BufferReader(self)

    def equal_to(self, other: Buffer | object) -> bool:
        """Constant-time comparison of the data with another Buffer or bytes-like object.

        Holds both buffers' locks (in a fixed order), so neither can be destroyed
        or made NO_ACCESS meanwhile. Raises ProtectionError when either buffer
        is NO_ACCESS, BufferDestroyedError when either is destroyed.
        """
        if not isinstance(other, Buffer):
            ptr, n, _ = source(other)
            return bool(locked(self._guard, self._equal_bytes, ptr, n))
        if other is self:
            return bool(locked(self._guard, self._readable) is not None)
        first, second = (self, other) if id(self) < id(other) else (other, self)
        # the inner locked() is called from C: nothing runs between the two acquires
        return bool(locked(first._guard, locked, second._guard, self._equal_buffer, other))

    def _equal_bytes(self, ptr: Any, n: int) -> bool:
        b = self._readable()
        return n == b.size and bool(lib.sm_equal(b.data, ptr, n))

    def _equal_buffer(self, other: Buffer) -> bool:
        b, ob = self._readable(), other._readable()
        return bool(ob.size == b.size and lib.sm_equal(b.data, ob.data, b.size))

    def _readable(self) -> Any:
        b = self._live()
        if self._protection == Protection.NO_ACCESS:
            raise ProtectionError("buffer is NO_ACCESS; protect it READ_ONLY first")
        return b

    def quarantine(self, protection: Protection) -> None:
        """Tear down like :meth:`destroy` but keep the pages reserved, wiped and
        ``protection``: views that outlived their use fault (or read zeros)
        instead of reading whatever is mapped there next. Idempotent.

        When a step fails the buffer is torn down all the same and
        ProtectionError names the call: the range stays reserved, unlocked and
        without the data (pages that could not be made writable to be wiped
        are dropped unwiped, replaced by fresh zero pages)."""
        locked(self._guard, self._release, protection)

    def _release(self, keep: Protection | None) -> None:
        """destroy() (``keep`` None) or quarantine(keep) without taking the buffer's
        lock, for an owner that rules out concurrent use (a Secret whose gate is
        closed): each step is one idempotent C call, so an exception at any
        instant leaves the teardown done or resumable."""
        b = self._b
        self._torn_down(lib.sm_buffer_destroy(b) if keep is None else lib.sm_buffer_quarantine(b, int(keep)), keep)

    def _torn_down(self, code: int, keep: Protection | None) -> None:
        """After a teardown call (destroy, ``keep`` None, or quarantine): the
        buffer it claimed is dead even when a step failed, so it leaves the
        registry (failed teardown finishes); then the failure, naming the call,
        is raised."""
        if not self._b.base:
            _unregister(self)
        if code:
            what = "could not destroy the buffer" if keep is None else f"could not quarantine the buffer as {keep.name}"
            raise teardown_error(what, self._b.failed_step, code)

    def seal(self, *, mlock: policy.MlockPolicy | str | None = None) -> Enclave:
        """Encrypt the data into an Enclave and destroy this buffer.

        ``mlock`` applies to the session key if this seal creates it.
        """
        from .enclave import Enclave

        return Enclave._seal_buffer(self, policy.resolve(mlock))

    # -- end of life --------------------------------------------------------------

    def destroy(self) -> None:
        """Wipe the data, verify the canary, wipe everything, unlock and unmap.

        Idempotent. A canary mismatch is fatal (wipe all, message, SIGABRT).
        In a forked child it only unmaps the (already wiped) inherited pages.
        When munmap fails the buffer is dead all the same and ProtectionError
        names munmap: its wiped, unlocked pages stay mapped, owned by nothing
        (no newer secret can be placed there), as nothing else can remove them.
        """
        locked(self._guard, self._destroy)

    def _destroy(self) -> None:
        fresh = self._gen == fork_state.generation
        self._torn_down(lib.sm_buffer_destroy(self._b) if fresh else lib.sm_buffer_abandon(self._b), None)

    def __enter__(self) -> Buffer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.destroy()

    def __repr__(self) -> str:
        state = "destroyed" if not self.alive else self._protection.name
        return f"<Buffer size={self.size} {state}>"

    def __reduce__(self) -> Any:
        raise InvalidTypeError("a Buffer cannot be pickled")


def destroy_all() -> None:
    """Destroy every registered Buffer in one C call (purge's core), except those
    a Secret owns: purge retires those through their gates first, and one made
    while purge runs belongs to a Secret that purge never saw.

    Each buffer's lock is held meanwhile, as destroy() holds it, so none of its
    methods runs while its pages go; buffers registered meanwhile are then
    destroyed one by one. Raises ProtectionError when a teardown failed.
    """
    held: list[Buffer] = []
    code = 0
    try:
        for obj in registry.snapshot():
            if isinstance(obj, Buffer) and not obj._owned:
                obj._guard.acquire()
                held.append(obj)
        code = lib.sm_buffer_destroy_all([buf._b for buf in held], len(held))
    finally:
        for buf in held:
            if not buf._b.base:
                _unregister(buf)
            buf._guard.release()
    for obj in registry.snapshot():
        if isinstance(obj, Buffer) and not obj._owned:
            obj.destroy()
    if code:  # destroy fails only at munmap
        raise teardown_error("purge could not destroy a buffer", lib.SM_STEP_UNMAP, code)

