"""Secret: the object users hold, and the borrow protocol every backend shares.

Memory is readable only during a borrow. The protocol lives in C
(``gate.c``, wrapped by ``gatemodule.c`` as ``securememory._gate``): the first
concurrent borrow exposes the memory (READ_ONLY, or decrypted into locked
scratch memory), the last conceals it again (NO_ACCESS, or wiped). Entering,
making the view, ending and concealing are each one C call, and a ``with``
block's handler is in place before any bytecode runs after the entry, so no
exception, KeyboardInterrupt included, can leave a borrow counted or the
memory readable.

Each borrow hands out a fresh read-only memoryview whose exporter counts the
buffers taken from it. When the borrow ends the view is released; a slice, a
cast, ``memoryview(view)``, ``memoryview(view.obj)`` or any buffer taken from
the view still alive then is an escape: the memory is concealed anyway,
ViewEscapedError is raised, and the secret's pages are kept reserved and
NO_ACCESS when it is closed (never unmapped), so the escaped view faults and
never reads a newer secret. A view merely stored away is released, not
escaped: using it raises ValueError.
"""

from __future__ import annotations

import abc
import contextlib
import traceback
import warnings
import weakref
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from . import _gate
from ._native import ffi, lib
from .errors import (
    BorrowError,
    ForkedError,
    InvalidTypeError,
    ProtectionError,
    SecretClosedError,
    SecureMemoryError,
    ViewEscapedError,
)
from .memcall import Protection
from .memguard.exits import on_purge
from .memguard.registry import Registry

if TYPE_CHECKING:
    from .reader import SecretReader

T = TypeVar("T")
_ACLOSE_POLL = 0.005  # seconds between aclose()'s looks at the borrows in flight

_gate.configure(SecretClosedError, ViewEscapedError, ForkedError, BorrowError, ProtectionError, traceback.clear_frames)

live_secrets: Registry[Secret] = Registry()


class Secret(abc.ABC):
    """A secret of ``len(secret)`` bytes readable only inside a borrow.

    Use :meth:`with_bytes`, :meth:`borrow` or :meth:`reader`; close it (or use
    it as a context manager) when done. Never shows its content in ``repr``;
    refuses pickling, copying and hashing; ``==`` is identity (compare content
    with the constant-time :meth:`equals`).
    """

    def __init__(self, size: int, data: int = 0, span: tuple[int, int] | None = None) -> None:
        """``data`` is the address of the secret's first byte and ``span`` the pages
        the gate toggles; without them the backend's _expose/_conceal run instead."""
        if span is not None:
            self._gate = _gate.Gate(data, size, span[0], span[1])
        else:
            ref = weakref.ref(self)  # the gate must not keep its secret alive

            def expose() -> tuple[Any, int, int, int]:
                return _alive(ref)._expose()

            def conceal(exposed: Any, escaped: bool) -> None:
                _alive(ref)._conceal(exposed, escaped)

            self._gate = _gate.Gate(0, size, 0, 0, expose, conceal)
        self._size = size
        self._finished = False
        live_secrets.add(self)

    # -- what a backend provides --------------------------------------------

    def _expose(self) -> tuple[Any, int, int, int]:
        """Make the secret readable (gates without a span): (owner object, data
        address, address and length of the readable pages)."""
        raise NotImplementedError

    def _conceal(self, exposed: Any, escaped: bool) -> None:
        """Undo one _expose once the last borrow ends; ``escaped``: keep its pages reserved."""
        raise NotImplementedError

    @abc.abstractmethod
    def _destroy(self, keep: Protection | None) -> None:
        """Wipe and free the secret's memory. ``keep`` None unmaps; otherwise the
        wiped pages stay reserved with that protection (a view outlived a borrow,
        or borrows are in flight at purge). A SecureMemoryError means a step
        failed after the memory was released as far as it can be (no plaintext
        stays mapped): nothing is left to retry."""

    @property
    @abc.abstractmethod
    def locked(self) -> bool:
        """Whether the memory holding the secret (or its scratch) is mlocked."""

    # -- borrowing ----------------------------------------------------------

    def with_bytes(self, action: Callable[[memoryview], T]) -> T:
        """Call ``action(view)`` with a read-only memoryview of the secret; return its result.

        Raises SecretClosedError after close(), ForkedError in a forked child,
        ViewEscapedError when a slice or export of the view outlived the call.
        """
        return self._gate.call(action)

    def with_bytes_func(self, action: Callable[[memoryview], T]) -> T:
        """Same as :meth:`with_bytes` (the name Asherah users know)."""
        return self._gate.call(action)

    def borrow(self) -> AbstractContextManager[memoryview]:
        """A context manager giving a read-only memoryview of the secret.

        The view is released when the block ends (using it afterwards raises
        ValueError); a slice or export of it still alive then raises
        ViewEscapedError.
        """
        return self._gate.borrow(self)

    def aborrow(self) -> AbstractAsyncContextManager[memoryview]:
        """``async with secret.aborrow() as view``: :meth:`borrow` for coroutines.

        The same borrow: awaiting inside it keeps the memory readable (and keeps
        close() and aclose() waiting) until the block ends, so await only what
        needs the secret.
        """
        return _AsyncBorrow(self._gate.borrow(self))

    def reader(self) -> SecretReader:
        """An io.RawIOBase over the secret (readinto copies out one borrow per call)."""
        from .reader import SecretReader

        return SecretReader(self)

    def equals(self, other: Secret) -> bool:
        """Constant-time content comparison with another Secret."""
        if not isinstance(other, Secret):
            raise InvalidTypeError(f"equals() takes a Secret, not {type(other).__name__}")
        if len(other) != self._size:
            return False
        if other is self:
            with self.borrow():
                return True
        with self.borrow() as a, other.borrow() as b:
            return bool(lib.sm_equal(ffi.from_buffer(a), ffi.from_buffer(b), self._size))

    # -- end of life -------------------------------------------------------------

    @property
    def borrows(self) -> int:
        """Borrows in flight right now."""
        return self._gate.count

    @property
    def closed(self) -> bool:
        """True once close() has begun."""
        return self._finished or self._gate.closing != 0

    def close(self) -> None:
        """Refuse new borrows, wait for borrows in flight, then wipe and free.

        A second close() is a no-op (it returns once the first has finished).
        Closing from inside one of this thread's own borrows of the secret
        raises BorrowError (it would wait for itself forever). Signal handlers
        run while it waits; if one raises, the secret stays closed to new
        borrows and a later close() finishes the job. In a forked child it only
        marks the secret closed: its pages there were wiped at fork.

        When a system call of the teardown fails, the secret is closed all the
        same (no plaintext stays mapped, it no longer counts as in use) and
        ProtectionError names the call and errno.
        """
        if self._gate.forked:
            self._finished = True
            return
        self._gate.close(self._teardown)

    async def aclose(self) -> None:
        """:meth:`close` for coroutines: waits for borrows in flight, other tasks'
        on this thread included, without blocking the event loop.

        Awaiting it from inside one of the same task's borrows waits forever:
        end the borrow first. If it is cancelled, a later close finishes.
        """
        import asyncio

        if self._gate.forked:
            self._finished = True
            return
        try:
            while self._gate.try_close(self._teardown) is None:
                await asyncio.sleep(_ACLOSE_POLL)
        except BaseException:
            self._gate.resign()
            raise

    def _teardown(self, escaped: bool) -> SecureMemoryError | None:
        return self._end(Protection.NO_ACCESS if escaped else None)

    def _end(self, keep: Protection | None) -> SecureMemoryError | None:
        """Destroy (see :meth:`_destroy`), then finish: the secret is done even
        when a step of its teardown failed, whose error is returned (failed
        teardown finishes). Any other exception leaves it unfinished, for a
        later close() to resume."""
        try:
            self._destroy(keep)
        except SecureMemoryError as e:
            failure: SecureMemoryError | None = e
        else:
            failure = None
        self._finished = True
        live_secrets.remove(self)
        return failure

    def _purge(self) -> None:
        """Destroy now, without waiting for borrows (exit paths only).

        Borrows in flight read zeros until they end; their pages are never
        unmapped, so no stale view reads a newer secret.
        """
        if self._finished or self._gate.forked:
            return
        inflight = self._gate.retire()
        if inflight:
            keep: Protection | None = Protection.READ_ONLY
        else:
            keep = Protection.NO_ACCESS if self._gate.escaped else None
        try:
            failure = self._end(keep)
        finally:
            if inflight:  # borrows that ended during the wipe left their pages' protection to it
                self._gate.torn()
        if failure is not None:
            raise failure

    def __len__(self) -> int:
        return self._size

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_finished", True):
            return
        try:
            if not self._gate.forked:  # a forked child never owned its parent's secrets
                # stacklevel 1: attributed to this module, so filters can name securememory
                warnings.warn(
                    f"unclosed secret {self!r}: close() it or use 'with'", ResourceWarning, stacklevel=1, source=self
                )
        finally:
            with contextlib.suppress(Exception):
                self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"<{type(self).__name__} size={self._size} {state}>"

    __str__ = __repr__

    def __hash__(self) -> int:
        raise InvalidTypeError("a Secret is not hashable")

    def _no_copy(self, *args: object) -> NoReturn:
        raise InvalidTypeError("a Secret cannot be pickled or copied")

    __reduce__ = _no_copy
    __reduce_ex__ = _no_copy
    __copy__ = _no_copy
    __deepcopy__ = _no_copy
    __getstate__ = _no_copy

    def send(self, endpoint: object) -> None:
        """Write this secret to another process through a pipe or socket, from a borrow.

        ``endpoint`` is a file descriptor or has ``fileno()`` (a multiprocessing
        Connection, a socket); the other side calls ``SecretFactory.receive``.
        See :mod:`securememory.transfer` for the framing and the errors.
        """
        from .transfer import send

        send(self, endpoint)


class _AsyncBorrow:
    """An async context manager over one Borrow (whose C methods do the work)."""

    __slots__ = ("_borrow",)

    def __init__(self, borrow: _gate.Borrow) -> None:
        self._borrow = borrow

    async def __aenter__(self) -> memoryview:
        return self._borrow.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self._borrow.__exit__(exc_type, exc, tb)


def _alive(ref: weakref.ref[Secret]) -> Secret:
    secret = ref()
    if secret is None:
        raise SecretClosedError()
    return secret


def purge_secrets() -> None:
    """Destroy every live Secret at once, without waiting for borrows.

    Every secret is torn down even when the teardown of another fails (purge
    continues past failures); then one ProtectionError says how many failed,
    chained from the first failure.
    """
    secrets = live_secrets.snapshot()
    failures: list[SecureMemoryError] = []
    for secret in secrets:
        try:
            secret._purge()
        except SecureMemoryError as e:
            failures.append(e)
    if failures:
        first = failures[0]
        raise ProtectionError(
            f"purge: the teardown of {len(failures)} of {len(secrets)} secrets failed "
            f"(every secret was torn down; the first failure: {first})",
            getattr(first, "errno", 0),
        ) from first


on_purge(purge_secrets)
