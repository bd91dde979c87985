"""Coffer: the session key that seals every Enclave.

The 32-byte key is never stored whole: two locked Buffers hold ``left`` and
``right`` with ``key = left XOR BLAKE2b-256(right)``. A daemon thread
re-randomises the split every 500 ms without changing the key, so a snapshot
of one half at one moment is useless later. :meth:`Coffer.view` derives the key
(in C) into a third locked Buffer, yields it, and wipes it; :meth:`Coffer.aead`
derives it there only long enough to key one ChaCha20-Poly1305 object. No
part of the key is ever a Python object.

Created lazily on first use (never at import), replaced by purge(), recreated
in a forked child with its own thread. The thread stops at interpreter exit.

Nonce budget: enclaves use random 96-bit nonces, so the chance of a nonce
repeating after n seals is about n**2 / 2**97. The coffer allows
:data:`NONCE_BUDGET` (2**32) seals per key (collision chance below 2**-33),
then raises NonceBudgetError until purge() installs a new key. A request for
several seals at once (one Stream write) is granted whole or refused whole.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .._native import ffi, lib
from ..errors import BorrowError, BufferDestroyedError, EntropyError, NonceBudgetError
from .buffer import Buffer
from .policy import MlockPolicy
from .registry import fork_state

KEY_SIZE = 32
REKEY_INTERVAL = 0.5
NONCE_BUDGET = 1 << 32


class Coffer:
    """A split, periodically rekeyed 32-byte key in locked memory."""

    def __init__(self, mlock: MlockPolicy | str | None = None) -> None:
        self._lock = threading.Lock()
        self._viewer: int | None = None
        self._left = Buffer.random(KEY_SIZE, mlock=mlock)
        self._right = Buffer.random(KEY_SIZE, mlock=mlock)
        self._scratch = Buffer(KEY_SIZE, mlock=mlock)
        self._gen = fork_state.generation
        self._structs = (self._left._b, self._right._b, self._scratch._b)
        self._ptrs = (self._left._b.data, self._right._b.data, self._scratch._b.data)
        self._key_view = memoryview(ffi.buffer(self._scratch._b.data, KEY_SIZE)).toreadonly()
        self._seals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._rekey_loop, name="securememory-coffer", daemon=True)
        self._thread.start()

    @property
    def locked(self) -> bool:
        """Whether the key's buffers are mlocked (False when created under best_effort or disabled)."""
        return self._left.locked and self._right.locked and self._scratch.locked

    @property
    def alive(self) -> bool:
        left, right, scratch = self._structs
        return bool(self._gen == fork_state.generation and left.base and right.base and scratch.base)

    def _check(self) -> None:
        """Raise ForkedError or BufferDestroyedError unless every key buffer is usable (lock held)."""
        left, right, scratch = self._structs
        if not (self._gen == fork_state.generation and left.base and right.base and scratch.base):
            for buf in (self._left, self._right, self._scratch):
                buf._live()

    def _spend(self, seals: int) -> None:
        """Count ``seals`` against the nonce budget, all or none (lock held)."""
        if self._seals + seals > NONCE_BUDGET:
            raise NonceBudgetError(
                f"this session key has sealed {self._seals} of {NONCE_BUDGET} enclaves allowed; "
                "purge() to replace it"
            )
        self._seals += seals

    def rekey(self) -> None:
        """Re-randomise the split without changing the key.

        Raises EntropyError when getrandom fails; the split is then unchanged.
        """
        with self._lock:
            if self.alive:
                left, right, _ = self._ptrs
                code = lib.sm_coffer_rekey(left, right)
                if code:
                    raise EntropyError(f"rekey: the kernel random number generator failed ({os.strerror(code)})")

    def _rekey_loop(self) -> None:
        while not self._stop.wait(REKEY_INTERVAL):
            if not self.alive:
                return
            with contextlib.suppress(EntropyError):  # the split stays valid; the next round tries again
                self.rekey()

    def aead(self, seals: int = 0) -> ChaCha20Poly1305:
        """A ChaCha20-Poly1305 keyed with the session key; ``seals`` are counted
        against the nonce budget first (all or none: NonceBudgetError).

        The key is derived into the locked scratch buffer, copied into the AEAD
        object and wiped before this returns. The object keeps its own copy of
        the key inside OpenSSL while it lives: use it for one operation (one
        enclave, one stream call) and drop it.
        """
        left_b, right_b, scratch_b = self._structs
        with self._lock:
            if not (self._gen == fork_state.generation and left_b.base and right_b.base and scratch_b.base):
                self._check()
            if seals:
                self._spend(seals)
            left, right, scratch = self._ptrs
            lib.sm_coffer_key(left, right, scratch)
            try:
                return ChaCha20Poly1305(self._key_view)
            finally:
                lib.sm_wipe(scratch, KEY_SIZE)

    def spend(self, seals: int) -> None:
        """Count ``seals`` made with an :meth:`aead` object against the nonce budget."""
        with self._lock:
            self._spend(seals)

    @contextlib.contextmanager
    def view(self, *, sealing: bool = False) -> Iterator[memoryview]:
        """Yield the key as a read-only view of locked memory, wiped on exit.

        ``sealing=True`` counts one seal against the nonce budget. The lock is
        held until the block ends; :meth:`aead` is the short path.
        """
        with self._lock:
            self._check()
            if sealing:
                self._spend(1)
            left, right, scratch = self._ptrs
            lib.sm_coffer_key(left, right, scratch)
            self._viewer = threading.get_ident()
            try:
                yield self._key_view
            finally:
                self._viewer = None
                lib.sm_wipe(scratch, KEY_SIZE)

    @property
    def seals(self) -> int:
        """Seals made under this key."""
        return self._seals

    def _refuse_inside_view(self) -> None:
        if self._viewer == threading.get_ident():
            raise BorrowError("cannot destroy or purge the session key from inside a view of it")

    def destroy(self) -> None:
        """Stop the rekey thread and destroy the key halves.

        Raises BorrowError when called from inside this thread's own key view
        (it would wait for itself).
        """
        self._refuse_inside_view()
        self._stop.set()
        with self._lock:
            for buf in (self._left, self._right, self._scratch):
                buf.destroy()
        if self._thread is not threading.current_thread() and self._thread.ident is not None:
            self._thread.join(timeout=2 * REKEY_INTERVAL)


class _Holder:
    coffer: Coffer | None = None
    generation = -1
    lock = threading.Lock()


_holder = _Holder()


def get_coffer(mlock: MlockPolicy | str | None = None) -> Coffer:
    """The session Coffer, created on first use (and afresh after purge or fork).

    The first use's mlock policy (else the process policy) governs the key's
    buffers; :attr:`Coffer.locked` tells whether they are locked.
    """
    h = _holder
    coffer = h.coffer
    if coffer is not None and h.generation == fork_state.generation and coffer.alive:
        return coffer
    with h.lock:
        if h.coffer is None or h.generation != fork_state.generation or not h.coffer.alive:
            h.coffer = Coffer(mlock)
            h.generation = fork_state.generation
        return h.coffer


def session_aead(mlock: MlockPolicy | str | None = None, seals: int = 0) -> ChaCha20Poly1305:
    """:meth:`Coffer.aead` of the session Coffer (created on first use as by :func:`get_coffer`)."""
    h = _holder
    coffer = h.coffer
    if coffer is None or h.generation != fork_state.generation:
        coffer = get_coffer(mlock)
    try:
        return coffer.aead(seals)
    except BufferDestroyedError:
        return get_coffer(mlock).aead(seals)


def reset_coffer() -> None:
    """Destroy the current key (if any); the next use creates a new one."""
    h = _holder
    with h.lock:
        coffer = h.coffer
        if coffer is not None and h.generation == fork_state.generation:
            coffer._refuse_inside_view()
        h.coffer = None
    if coffer is not None and h.generation == fork_state.generation:
        coffer.destroy()


def _after_fork_in_child() -> None:
    _holder.lock = threading.Lock()
    _holder.coffer = None


def _stop_at_exit() -> None:
    coffer: Any = _holder.coffer
    if coffer is not None and _holder.generation == fork_state.generation:
        coffer._stop.set()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_stop_at_exit)
