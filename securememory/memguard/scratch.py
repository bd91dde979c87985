"""Scratch: reusable locked pages that enclave borrows decrypt into.

A scratch is a guarded Buffer of one inner page (:data:`CAPACITY` data
bytes): guard pages, canary, locked per the mlock policy, out of core dumps,
wiped in a forked child (MADV_WIPEONFORK). A borrow takes an idle scratch (or
makes one), opens it READ_WRITE only to decrypt into its tail (the last byte
touches the trailing guard page) and hands it out READ_ONLY. When the borrow
ends, one C call (``sm_buffer_scrub``) wipes it and makes it NO_ACCESS, and it
goes back to the pool: at most :data:`POOL_SIZE` idle per lock state, more are
destroyed. A scratch whose view escaped is never reused: it is quarantined
NO_ACCESS. A secret larger than a scratch is opened into a Buffer of its own,
destroyed when the borrow ends.

Idle scratches hold zeros and are NO_ACCESS; purge() destroys them and a
forked child starts without any (the parent's are abandoned there).
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from .._native import ffi, lib
from ..errors import ProtectionError, SecureMemoryError
from ..memcall import Protection
from ..memcall.failures import strerror
from . import policy
from .buffer import Buffer
from .exits import on_purge

if TYPE_CHECKING:
    from .enclave import Enclave

CAPACITY = int(lib.sm_page_size() - lib.SM_CANARY_MIN)
POOL_SIZE = 4
_READ_WRITE = int(Protection.READ_WRITE)
_READ_ONLY = int(Protection.READ_ONLY)
_REQUIRE = int(lib.SM_LOCK_REQUIRE)
_NONE = int(lib.SM_LOCK_NONE)
_MODES = {p: policy.lock_mode(p) for p in policy.MlockPolicy}


def _check(code: int, what: str, call: str) -> None:
    if code:
        raise ProtectionError(f"could not {what} the enclave scratch ({call} failed: {strerror(code)})", code)


class ScratchPool:
    """Idle scratches by lock state; each one is used by one exposure at a time."""

    def __init__(self) -> None:
        # [unlocked, locked]: list.pop and list.append are atomic, no lock needed
        self._idle: tuple[list[Buffer], list[Buffer]] = ([], [])

    def _take(self, mlock: policy.MlockPolicy) -> Buffer:
        mode = _MODES[mlock]
        # require: locked only; disabled: unlocked only; best_effort: either
        pools = self._idle[1:] if mode == _REQUIRE else self._idle[:1] if mode == _NONE else self._idle[::-1]
        for idle in pools:
            while idle:
                try:
                    buf = idle.pop()
                except IndexError:
                    break
                if buf._b.base:
                    return buf
        return Buffer(CAPACITY, mlock=mlock, _owned=True)

    def open(self, enclave: Enclave, mlock: policy.MlockPolicy) -> tuple[Buffer, int, int, int]:
        """Decrypt ``enclave`` into a scratch left READ_ONLY: (scratch, address of
        the plaintext, address and length of its inner pages).

        Raises DecryptionError (the scratch wiped and given back), MemoryLockError
        or AllocationError when a new scratch cannot be made, ProtectionError
        when mprotect fails (the scratch is then destroyed).
        """
        size = enclave._plain_size()
        if size > CAPACITY:
            buf = enclave.open(mlock=mlock, _owned=True)
            return (buf, buf.address, *buf.inner_span())
        buf = self._take(mlock)
        b = buf._b
        data = b.data + (CAPACITY - size)
        try:
            if b.prot != _READ_WRITE:
                _check(lib.sm_buffer_protect(b, _READ_WRITE), "open", "mprotect to READ_WRITE")
            enclave._decrypt_into(ffi.buffer(data, size), mlock)
            _check(lib.sm_buffer_protect(b, _READ_ONLY), "freeze", "mprotect to READ_ONLY")
        except BaseException:
            with contextlib.suppress(SecureMemoryError):  # the first failure is the one to report
                self.close(buf, False)
            raise
        return (buf, int(ffi.cast("uintptr_t", data)), int(ffi.cast("uintptr_t", b.inner)), int(b.inner_len))

    def close(self, buf: Buffer, escaped: bool) -> None:
        """End one exposure: an escaped scratch is quarantined NO_ACCESS (its range
        never reused), a dedicated Buffer destroyed, a pooled scratch wiped and
        made NO_ACCESS, then kept idle. Raises ProtectionError (the scratch then
        destroyed) when a step fails."""
        if escaped:
            buf._release(Protection.NO_ACCESS)
            return
        b = buf._b
        if b.size != CAPACITY:
            buf._release(None)
            return
        code = lib.sm_buffer_scrub(b)
        if code:
            buf._release(None)
            _check(code, "wipe and conceal", "mprotect")
        idle = self._idle[1 if b.locked else 0]
        if len(idle) < POOL_SIZE:
            idle.append(buf)
        else:
            buf._release(None)

    def idle(self) -> list[Buffer]:
        """The idle scratches now (each NO_ACCESS and wiped)."""
        return [*self._idle[0], *self._idle[1]]

    def drain(self) -> None:
        """Destroy every idle scratch; the first failure is raised at the end."""
        failure: SecureMemoryError | None = None
        for idle in self._idle:
            while idle:
                try:
                    idle.pop()._release(None)
                except IndexError:
                    break
                except SecureMemoryError as e:
                    failure = failure or e
        if failure is not None:
            raise failure

    def _forget(self) -> None:
        self._idle = ([], [])


scratch_pool = ScratchPool()


def release_scratch() -> None:
    """Destroy the idle enclave scratch pages, giving their locked memory back;
    later borrows make new ones. purge() does this too. Raises ProtectionError
    when a teardown fails (every idle scratch is destroyed all the same)."""
    scratch_pool.drain()


on_purge(release_scratch)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=scratch_pool._forget)
