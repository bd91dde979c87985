"""Coffer: the session key that seals every Enclave.

The 32-byte key is never stored whole: two locked Buffers hold ``left`` and
``right`` with ``key = left XOR BLAKE2b-256(right)``. The split is
re-randomised without changing the key whenever the key is used and at least
:data:`REKEY_INTERVAL` (500 ms) has passed since the last re-split, so a
snapshot of one half at one moment is useless later. :meth:`Coffer.view` derives the key
(in C) into a third locked Buffer, yields it, and wipes it; :meth:`Coffer.with_aead`
derives it there only long enough to key one ChaCha20-Poly1305 object, which
lives only inside a fork fence lease (see :mod:`.forkfence`). No part of the
key is ever a Python object.

Rekeying is due-time checked on use rather than run by a background thread:
a thread would make every later fork() a multi-threaded fork (a deadlock risk,
and a DeprecationWarning on Python 3.12+). The cost: while nothing uses the
key, its halves are not re-randomised, so two partial reads of memory taken
during one idle spell could be combined. That is acceptable because what the
split defends against is a partial read (one half alone tells nothing about
the key), and an idle process's halves still sit in locked, no-dump,
wipe-on-fork buffers; the first use after an idle spell re-splits before it
derives the key, so a half read before it is useless after it.

Created lazily on first use (never at import), replaced by purge(), recreated
in a forked child.

Nonce budget: enclaves use random 96-bit nonces, so the chance of a nonce
repeating after n seals is about n**2 / 2**97. The coffer allows
:data:`NONCE_BUDGET` (2**32) seals per key (collision chance below 2**-33),
then raises NonceBudgetError until purge() installs a new key. A request for
several seals at once (one Stream write) is granted whole or refused whole.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from .._gate import hold
from .._native import ffi, lib
from ..errors import BorrowError, BufferDestroyedError, EntropyError, NonceBudgetError, SecureMemoryError
from .buffer import Buffer
from .forkfence import drop_frames, fence
from .policy import MlockPolicy
from .registry import fork_state
from .wipe import fill_random

KEY_SIZE = 32
REKEY_INTERVAL = 0.5
NONCE_BUDGET = 1 << 32

T = TypeVar("T")


class Coffer:
    """A split 32-byte key in locked memory, re-split on use once the last re-split is due."""

    def __init__(self, mlock: MlockPolicy | str | None = None) -> None:
        self._lock = threading.Lock()
        # The nonce count has its own lock: code inside an AEAD lease spends seals
        # and must never wait for the key lock (see with_aead).
        self._budget = threading.Lock()
        self._viewer: int | None = None
        # The halves are rewritten by every re-split: read-write, not frozen.
        # Owned: purge() replaces the coffer under its lock instead of
        # unmapping the halves under a key derivation in another thread.
        self._left = Buffer(KEY_SIZE, mlock=mlock, _owned=True)
        self._right = Buffer(KEY_SIZE, mlock=mlock, _owned=True)
        self._scratch = Buffer(KEY_SIZE, mlock=mlock, _owned=True)
        fill_random(self._left._b.data, KEY_SIZE)
        fill_random(self._right._b.data, KEY_SIZE)
        self._gen = fork_state.generation
        self._structs = (self._left._b, self._right._b, self._scratch._b)
        self._ptrs = (self._left._b.data, self._right._b.data, self._scratch._b.data)
        self._key_view = memoryview(ffi.buffer(self._scratch._b.data, KEY_SIZE)).toreadonly()
        self._seals = 0
        self._rekeyed = time.monotonic()

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
        """Count ``seals`` against the nonce budget, all or none."""
        with hold(self._budget):
            if self._seals + seals > NONCE_BUDGET:
                raise NonceBudgetError(
                    f"this session key has sealed {self._seals} of {NONCE_BUDGET} enclaves allowed; "
                    "purge() to replace it"
                )
            self._seals += seals

    def _resplit(self, now: float) -> int:
        """Re-randomise the split (lock held, buffers checked); 0, or getrandom's errno
        (the split is then unchanged and still valid)."""
        left, right, _ = self._ptrs
        code = lib.sm_coffer_rekey(left, right)
        if not code:
            self._rekeyed = now
        return code

    def _derive(self) -> None:
        """Re-split if due, then derive the key into the scratch buffer (lock held, buffers checked)."""
        now = time.monotonic()
        if now - self._rekeyed >= REKEY_INTERVAL:
            self._resplit(now)
        left, right, scratch = self._ptrs
        lib.sm_coffer_key(left, right, scratch)

    def rekey(self) -> None:
        """Re-randomise the split without changing the key.

        Raises BufferDestroyedError after destroy() (or purge), ForkedError in a forked child,
        EntropyError when getrandom fails (the split is then unchanged).
        """
        with hold(self._lock):
            self._check()
            code = self._resplit(time.monotonic())
        if code:
            raise EntropyError(f"rekey: the kernel random number generator failed ({os.strerror(code)})")

    def with_aead(self, action: Callable[[ChaCha20Poly1305], T], seals: int = 0) -> T:
        """``action(aead)`` with a ChaCha20-Poly1305 keyed with the session key; returns its result.

        ``seals`` are counted against the nonce budget first (all or none:
        NonceBudgetError). The key is derived into the locked scratch buffer,
        copied into the AEAD object and wiped before ``action`` runs. The object
        keeps its own copy of the key inside OpenSSL while it lives, so it exists
        only while ``action`` runs, inside a fork fence lease: fork() waits for it.
        ``action`` must not keep it; the locals of the frames an exception
        unwinds from ``action`` are cleared. Raises BufferDestroyedError after
        destroy(), ForkedError in a forked child.
        """
        outer = sys.exc_info()[1]
        left_b, right_b, scratch_b = self._structs
        with hold(self._lock):
            if not (self._gen == fork_state.generation and left_b.base and right_b.base and scratch_b.base):
                self._check()
            if seals:
                self._spend(seals)
            self._derive()
            # Entered under the key lock and never waiting for it inside: a fork
            # taken inside a key view cannot wait for a lease that waits for the view.
            fence.enter()
            try:
                aead = ChaCha20Poly1305(self._key_view)
            except BaseException:
                fence.leave()
                raise
            finally:
                lib.sm_wipe(self._ptrs[2], KEY_SIZE)
        try:
            return action(aead)
        except BaseException as e:
            drop_frames(e, outer)
            raise
        finally:
            del aead
            fence.leave()

    def spend(self, seals: int) -> None:
        """Count ``seals`` made inside :meth:`with_aead` against the nonce budget."""
        self._spend(seals)

    @contextlib.contextmanager
    def view(self, *, sealing: bool = False) -> Iterator[memoryview]:
        """Yield the key as a read-only view of locked memory, wiped on exit.

        ``sealing=True`` counts one seal against the nonce budget. The lock is
        held until the block ends; :meth:`with_aead` is the short path.
        """
        with hold(self._lock):
            self._check()
            if sealing:
                self._spend(1)
            self._derive()
            scratch = self._ptrs[2]
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
        """Destroy the key halves and the scratch buffer (idempotent).

        Raises BorrowError when called from inside this thread's own key view
        (it would wait for itself). Every buffer is destroyed even when the
        teardown of another fails (purge continues past failures); the first
        failure is raised at the end.
        """
        self._refuse_inside_view()
        failure: SecureMemoryError | None = None
        with hold(self._lock):
            for buf in (self._left, self._right, self._scratch):
                try:
                    buf.destroy()
                except SecureMemoryError as e:
                    failure = failure or e
        if failure is not None:
            raise failure


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


def with_session_aead(
    action: Callable[[ChaCha20Poly1305], T], mlock: MlockPolicy | str | None = None, seals: int = 0
) -> T:
    """:meth:`Coffer.with_aead` of the session Coffer (created on first use as by
    :func:`get_coffer`, and again if a purge replaced it before ``action`` began)."""
    h = _holder
    coffer = h.coffer
    if coffer is None or h.generation != fork_state.generation:
        coffer = get_coffer(mlock)
    began = False

    def run(aead: ChaCha20Poly1305) -> T:
        nonlocal began
        began = True
        return action(aead)

    try:
        return coffer.with_aead(run, seals)
    except BufferDestroyedError:
        if began:
            raise
    return get_coffer(mlock).with_aead(action, seals)


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


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
