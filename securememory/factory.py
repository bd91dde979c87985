"""SecretFactory: makes Secrets on one backend under one mlock policy.

Data enters a secret in one of four ways, none of which leaves a copy in a
Python object the library controls: copied from a caller's buffer (wiped
afterwards when writable), generated in place, or read with ``readinto``
straight into locked memory from a reader or a file.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from typing import Any

from . import memcall
from ._native import ffi, lib
from .backends.enclave import EnclaveSecret
from .backends.legacy import LegacySecret
from .backends.protected import ProtectedSecret
from .errors import InvalidArgumentError, InvalidTypeError, SourceReadError
from .memguard import Buffer, MlockPolicy
from .memguard.buffer import fill_from, readinto_of
from .memguard.policy import parse, resolve
from .memguard.wipe import fill_random, source
from .secret import Secret


class Backend(enum.StrEnum):
    PROTECTED = "protected"
    ENCLAVE = "enclave"
    LEGACY = "legacy"


def _length(size: object) -> int:
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidTypeError(f"secret length must be an int, not {type(size).__name__}")
    if size < 1 or size > memcall.region.MAX_SIZE:
        raise InvalidArgumentError("invalid secret length")
    return size


class SecretFactory:
    """Creates Secrets.

    ``backend``: "protected" (default; guarded buffer per secret), "enclave"
    (encrypted at rest, constant locked memory) or "legacy" (the old design).
    ``mlock``: "require", "best_effort" or "disabled"; None follows the process
    policy (``SECUREMEMORY_MLOCK``, default "require").

    Every constructor raises InvalidArgumentError("invalid secret length") for
    a size below 1 and MemoryLockError when locking is required and fails,
    leaving nothing allocated.
    """

    def __init__(self, backend: Backend | str = Backend.PROTECTED, mlock: MlockPolicy | str | None = None) -> None:
        if not isinstance(backend, str):
            raise InvalidTypeError(f"backend must be a str, not {type(backend).__name__}")
        try:
            self._backend = Backend(backend)
        except ValueError:
            choices = ", ".join(b.value for b in Backend)
            raise InvalidArgumentError(f"backend={backend!r} is not one of: {choices}") from None
        self._mlock = None if mlock is None else parse(mlock)

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def mlock(self) -> MlockPolicy:
        """The policy this factory applies (its own, else the process policy now)."""
        return resolve(self._mlock)

    def _make(self, size: int, fill: Callable[[memoryview], None]) -> Secret:
        size = _length(size)
        mlock = self.mlock
        if self._backend == Backend.LEGACY:
            region = LegacySecret.allocate(size, mlock)
            try:
                fill(region.view()[:size])
                return LegacySecret(region, size)
            except BaseException:
                if not region.freed:
                    memcall.free(region)
                raise
        buf = Buffer(size, mlock=mlock, _owned=True)
        try:
            fill(buf.view())
            if self._backend == Backend.ENCLAVE:
                return EnclaveSecret(buf, mlock)
            return ProtectedSecret(buf)
        except BaseException:
            buf.destroy()
            raise

    def new(self, data: object) -> Secret:
        """A secret holding a copy of ``data``; a writable ``data`` is wiped afterwards.

        A ``bytes`` is accepted but cannot be wiped: it remains the caller's copy.
        """
        ptr, n, writable = source(data, empty="invalid secret length")

        def copy(view: memoryview) -> None:
            ffi.memmove(ffi.from_buffer(view), ptr, n)

        secret = self._make(n, copy)
        if writable:
            lib.sm_wipe(ptr, n)
        return secret

    def create_random(self, size: int) -> Secret:
        """A secret of ``size`` random bytes generated in place from the kernel CSPRNG."""

        def generate(view: memoryview) -> None:
            fill_random(ffi.from_buffer(view), len(view))

        return self._make(size, generate)

    def from_reader(self, reader: Any, size: int) -> Secret:
        """A secret of exactly ``size`` bytes read with ``reader.readinto`` into locked memory.

        Raises InvalidArgumentError (after wiping what was read) when the reader
        ends early, InvalidTypeError when it has no ``readinto``.
        """
        readinto = readinto_of(reader)

        def read(view: memoryview) -> None:
            got = fill_from(readinto, view)
            if got < len(view):
                raise InvalidArgumentError(f"reader ended after {got} of {len(view)} bytes")

        return self._make(size, read)

    def from_file(self, path: str | os.PathLike[str]) -> Secret:
        """A secret holding the whole file at ``path``, read unbuffered into locked memory.

        Raises SourceReadError (an OSError) when the file cannot be opened or read,
        InvalidArgumentError("invalid secret length") when it is empty.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidTypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 (closed below, errors mapped)
        except OSError as e:
            raise SourceReadError(e.errno, e.strerror, os.fspath(path)) from e
        with f:
            try:
                size = os.fstat(f.fileno()).st_size
                return self.from_reader(f, size)
            except OSError as e:
                raise SourceReadError(e.errno, e.strerror, os.fspath(path)) from e

    def __repr__(self) -> str:
        return f"SecretFactory(backend={self._backend.value!r}, mlock={self.mlock.value!r})"
