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

from . import memcall, sources, transfer
from ._native import ffi, lib
from .backends.enclave import EnclaveSecret
from .backends.legacy import LegacySecret
from .backends.protected import ProtectedSecret
from .errors import InvalidArgumentError, InvalidTypeError, MemoryLockError
from .filling import fill_once
from .memguard import Buffer, MlockPolicy
from .memguard.policy import parse, resolve
from .memguard.reading import fill_from, readinto_of
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
        raise InvalidArgumentError(f"invalid secret length: {size} (expected 1 to {memcall.region.MAX_SIZE} bytes)")
    return size


class SecretFactory:
    """Creates Secrets.

    ``backend``: "protected" (default; guarded buffer per secret), "enclave"
    (encrypted at rest, constant locked memory) or "legacy" (the old design).
    ``mlock``: "require", "best_effort" or "disabled"; None follows the process
    policy (``SECUREMEMORY_MLOCK``, default "require").

    Every constructor raises InvalidArgumentError("invalid secret length: N ...")
    for a size N below 1, MemoryLockError when locking is required and fails,
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

    def _make(self, size: int, fill: Callable[[memoryview], object]) -> Secret:
        size = _length(size)
        mlock = self.mlock
        if self._backend == Backend.LEGACY:
            region = LegacySecret.allocate(size, mlock)
            try:
                fill_once(fill, ffi.cast("unsigned char *", region.address), size)
                return LegacySecret(region, size)
            except BaseException:
                if not region.freed:
                    memcall.free(region)
                raise
        if self._backend == Backend.ENCLAVE:
            try:
                return self._fill_buffer(size, fill, mlock)
            except MemoryLockError as e:
                raise e.on_enclave() from None
        return self._fill_buffer(size, fill, mlock)

    def _fill_buffer(self, size: int, fill: Callable[[memoryview], object], mlock: MlockPolicy) -> Secret:
        buf = Buffer(size, mlock=mlock, _owned=True)
        try:
            fill_once(fill, buf._b.data, size)
            if self._backend == Backend.ENCLAVE:
                return EnclaveSecret(buf, mlock)
            return ProtectedSecret(buf)
        except BaseException:
            buf.destroy()
            raise

    def create(self, size: int, fill: Callable[[memoryview], object]) -> Secret:
        """A secret of ``size`` bytes written in place by ``fill(view)``.

        ``view`` is a writable memoryview of the secret's own locked memory
        (on the enclave backend, of locked scratch memory that is sealed and
        wiped afterwards), zero-filled; ``fill`` writes into it, for example
        with ``readinto``, ``Scrypt.derive_into`` or ``AEAD.decrypt_into``.
        Its return value is ignored. When ``fill`` returns, the view is
        released and the memory becomes inaccessible (or sealed).

        If ``fill`` raises, what it wrote is wiped, nothing stays allocated,
        and its exception propagates. If ``fill`` kept a slice or an export of
        the view (the view itself is released and so harmless), the secret is
        wiped and freed as well and ViewEscapedError is raised; the kept slice
        must not be used (it faults). InvalidTypeError when ``fill`` is not
        callable.
        """
        if not callable(fill):
            raise InvalidTypeError(f"fill must be callable, not {type(fill).__name__}")
        return self._make(size, fill)

    def new(self, data: object) -> Secret:
        """A secret holding a copy of ``data``; a writable ``data`` is wiped afterwards.

        A ``bytes`` is accepted but cannot be wiped: it remains the caller's copy.
        """
        ptr, n, writable = source(data, empty="invalid secret length: 0 (expected 1 or more bytes)")

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
        ends early, InvalidTypeError when it has no ``readinto`` or is buffered
        (see :mod:`securememory.memguard.reading`), SourceReadError when a
        non-blocking reader has no data ready.
        """
        readinto = readinto_of(reader)

        def read(view: memoryview) -> None:
            got = fill_from(readinto, view)
            if got < len(view):
                raise InvalidArgumentError(f"reader ended after {got} of {len(view)} bytes")

        return self._make(size, read)

    def from_file(self, path: str | os.PathLike[str], *, any_file: bool = False) -> Secret:
        """The whole file at ``path``, read unbuffered into locked memory.

        Opened non-blocking, so a FIFO with no writer cannot hang; it must be a
        regular file unless ``any_file=True`` (then read to end of data).
        Raises SourceReadError (an OSError) when the file cannot be opened or
        read, InvalidArgumentError when it is not a regular file or is empty.
        """
        return sources.from_file(self, path, any_file=any_file)

    def from_fd(self, fd: int, size: int | None = None) -> Secret:
        """Exactly ``size`` bytes read from file descriptor ``fd`` (left open), or all
        of them until end of data when ``size`` is None; see :func:`sources.from_fd`."""
        return sources.from_fd(self, fd, size)

    def from_reader_until(self, reader: Any, delimiter: bytes | int, *, max_size: int) -> Secret:
        """Bytes from an unbuffered ``reader`` up to ``delimiter`` (excluded) or end of data,
        at most ``max_size``; see :func:`sources.from_reader_until`."""
        return sources.from_reader_until(self, reader, delimiter, max_size=max_size)

    def getpass(self, prompt: str = "Password: ", *, max_size: int = 4096) -> Secret:
        """A line typed at the controlling terminal with echo off; see :func:`sources.getpass`."""
        return sources.getpass(self, prompt, max_size=max_size)

    def from_env(self, name: str, *, unset: bool = True) -> Secret:
        """The value of environment variable ``name``, wiped and removed from the
        environment unless ``unset=False``; see :func:`sources.from_env` for its limits."""
        return sources.from_env(self, name, unset=unset)

    def receive(self, endpoint: object, *, max_size: int = transfer.DEFAULT_MAX_SIZE) -> Secret:
        """A secret sent by :meth:`Secret.send` on ``endpoint`` (a fd, a multiprocessing
        Connection, a socket), read straight into its locked memory; see :mod:`securememory.transfer`."""
        return transfer.receive(self, endpoint, max_size=max_size)

    def __repr__(self) -> str:
        return f"SecretFactory(backend={self._backend.value!r}, mlock={self.mlock.value!r})"
