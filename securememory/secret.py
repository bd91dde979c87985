"""Secret: the object users hold, and the access counting every backend shares.

Memory is readable only during a borrow. Access is counted by a C gate
(``gate.c``): the first concurrent borrow exposes the memory (READ_ONLY, or
decrypted into locked scratch memory), the last conceals it again (NO_ACCESS,
or wiped); release runs in ``finally``, so an exception in the caller's action
neither leaks the count nor leaves the memory readable. For the protected and
legacy backends the gate toggles the pages itself: a borrow is one crossing
into C on the way in and one on the way out.

Each borrow hands out a fresh read-only memoryview. When the borrow ends the
view is released and any view derived from it that is still alive (a slice,
``memoryview(view)``, or, for ``with_bytes``, the view itself stored away) is
detected: the memory is concealed anyway and ViewEscapedError is raised.
Detection relies on CPython reference counting.
"""

from __future__ import annotations

import abc
import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from ._native import ffi, lib
from .errors import (
    AllocationError,
    BorrowError,
    ForkedError,
    InvalidTypeError,
    ProtectionError,
    SecretClosedError,
    ViewEscapedError,
)
from .memguard.exits import on_purge
from .memguard.registry import Registry, fork_state
from .metrics import metrics

if TYPE_CHECKING:
    from .reader import SecretReader

T = TypeVar("T")

_enter = lib.sm_gate_enter
_exit = lib.sm_gate_exit
_ffi_buffer = ffi.buffer
_getrefcount = sys.getrefcount
_EXPOSE = lib.SM_GATE_EXPOSE
_CONCEAL = lib.SM_GATE_CONCEAL
_CLOSED = lib.SM_GATE_CLOSED
_SELF = lib.SM_GATE_SELF


def _refs_seen_by_end(anchor: Any) -> int:
    return _getrefcount(anchor)


def _refs_when_free() -> int:
    anchor = ffi.buffer(ffi.new("char[1]"), 1)
    return _refs_seen_by_end(anchor)


# References _end() sees to a borrow's exporter when no view of it survives
# (the borrower's local, _end's argument, getrefcount's argument), measured
# the same way on this interpreter.
_FREE_REFS = _refs_when_free()

live_secrets: Registry[Secret] = Registry()


class Secret(abc.ABC):
    """A secret of ``len(secret)`` bytes readable only inside a borrow.

    Use :meth:`with_bytes`, :meth:`borrow` or :meth:`reader`; close it (or use
    it as a context manager) when done. Never shows its content in ``repr``;
    refuses pickling, copying and hashing; ``==`` is identity (compare content
    with the constant-time :meth:`equals`).
    """

    def __init__(self, size: int, data: Any = None, span: tuple[Any, int] | None = None) -> None:
        """``data`` points at the secret's first byte and ``span`` names the pages the
        gate toggles; without them the backend's _expose/_conceal run instead."""
        gate = lib.sm_gate_new(span[0] if span else ffi.NULL, span[1] if span else 0)
        if gate == ffi.NULL:
            raise AllocationError("could not allocate a borrow gate")
        self._gate = ffi.gc(gate, lib.sm_gate_free)
        self._size = size
        self._ptr: Any = data
        self._gen = fork_state.generation
        self._finished = False
        live_secrets.add(self)
        metrics._opened()

    # -- what a backend provides --------------------------------------------

    def _expose(self) -> Any:
        """Make the secret readable; return a pointer to its first byte (gates without a span)."""
        raise NotImplementedError

    def _conceal(self) -> None:
        """Make the secret unreadable again once the last borrow ends (gates without a span)."""
        raise NotImplementedError

    @abc.abstractmethod
    def _destroy(self) -> None:
        """Wipe and free the secret's memory (no borrow is active)."""

    @property
    @abc.abstractmethod
    def locked(self) -> bool:
        """Whether the memory holding the secret (or its scratch) is mlocked."""

    # -- borrowing ----------------------------------------------------------

    def _entered(self, code: int) -> None:
        """Finish a gate entry that did not simply succeed."""
        if code == _EXPOSE:
            try:
                self._ptr = self._expose()
            except BaseException:
                lib.sm_gate_exposed(self._gate, 0)
                raise
            lib.sm_gate_exposed(self._gate, 1)
            return
        if code == _CLOSED:
            raise SecretClosedError()
        raise ProtectionError(f"could not make the secret readable ({os.strerror(code)})", code)

    def _acquire(self) -> Any:
        """Count one borrow (exposing on the first); return the borrow's exporter."""
        if self._gen != fork_state.generation:
            self._forked()
        code = _enter(self._gate)
        if code:
            self._entered(code)
        return _ffi_buffer(self._ptr, self._size)

    def _forked(self) -> NoReturn:
        raise ForkedError("this secret was created before fork(); it is wiped in the child")

    def _end(self, view: memoryview, anchor: Any, failing: BaseException | None) -> None:
        """Release ``view``, uncount the borrow (concealing on the last), report any escape."""
        escaped = False
        try:
            view.release()
        except BufferError:
            escaped = True  # an export of the view is alive
        if _getrefcount(anchor) > _FREE_REFS:
            if failing is not None:
                # Locals of the failing frames may hold slices; drop them so
                # that nothing readable survives in the traceback.
                traceback.clear_frames(failing.__traceback__)
            escaped = escaped or _getrefcount(anchor) > _FREE_REFS
        code = _exit(self._gate)
        if code:
            self._exited(code)
        if escaped:
            raise ViewEscapedError(
                "a view of the secret outlived its borrow; the memory is inaccessible again "
                "and that view must not be used"
            )

    def _exited(self, code: int) -> None:
        if code == _CONCEAL:
            try:
                self._ptr = None
                self._conceal()
            finally:
                lib.sm_gate_concealed(self._gate)
            return
        raise ProtectionError(f"could not make the secret inaccessible ({os.strerror(code)})", code)

    def with_bytes(self, action: Callable[[memoryview], T]) -> T:
        """Call ``action(view)`` with a read-only memoryview of the secret; return its result.

        Raises SecretClosedError after close(), ForkedError in a forked child,
        ViewEscapedError when the action kept the view or a slice of it.
        """
        anchor = self._acquire()
        view = memoryview(anchor).toreadonly()
        try:
            result = action(view)
        except BaseException as e:
            self._end(view, anchor, e)
            raise
        if _getrefcount(view) > 2:
            self._end(view, anchor, None)
            raise ViewEscapedError("the action kept the view it was given; the memory is inaccessible again")
        self._end(view, anchor, None)
        return result

    def with_bytes_func(self, action: Callable[[memoryview], T]) -> T:
        """Same as :meth:`with_bytes` (the name Asherah users know)."""
        return self.with_bytes(action)

    @contextlib.contextmanager
    def borrow(self) -> Iterator[memoryview]:
        """A context manager yielding a read-only memoryview of the secret.

        The view is released when the block ends (using it afterwards raises
        ValueError); a slice or export of it still alive then raises
        ViewEscapedError.
        """
        anchor = self._acquire()
        view = memoryview(anchor).toreadonly()
        try:
            yield view
        except BaseException as e:
            self._end(view, anchor, e)
            raise
        self._end(view, anchor, None)

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
        return 0 if self._gen != fork_state.generation else int(lib.sm_gate_count(self._gate))

    @property
    def closed(self) -> bool:
        """True once close() has begun."""
        if self._gen != fork_state.generation:
            return self._finished
        return self._finished or bool(lib.sm_gate_closing(self._gate))

    def close(self) -> None:
        """Refuse new borrows, wait for borrows in flight, then wipe and free.

        A second close() is a no-op (it returns once the first has finished).
        Closing from inside one of this secret's own borrows raises BorrowError
        (it would wait for itself forever); the gate tracks up to 16 threads
        borrowing at once for this check. In a forked child it only marks the
        secret closed: its pages there were wiped at fork.
        """
        if self._gen != fork_state.generation:
            self._finished = True
            return
        code = lib.sm_gate_close(self._gate)
        if code == _SELF:
            raise BorrowError("cannot close a secret from inside its own borrow")
        if code == _CLOSED:
            return
        try:
            self._destroy()
        finally:
            self._finish()

    def _finish(self) -> None:
        self._finished = True
        lib.sm_gate_finish(self._gate)
        live_secrets.remove(self)
        metrics._closed()

    def _purge(self) -> None:
        """Destroy now, without waiting for borrows (exit paths only)."""
        if self._finished or self._gen != fork_state.generation:
            return
        try:
            self._destroy()
        finally:
            self._finish()

    def __len__(self) -> int:
        return self._size

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_finished", True) or getattr(self, "_gen", -1) != fork_state.generation:
            return
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


def purge_secrets() -> None:
    """Destroy every live Secret at once, without waiting for borrows."""
    for secret in live_secrets.snapshot():
        secret._purge()


on_purge(purge_secrets)
