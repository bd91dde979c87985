"""Peers beside the C floor: libsodium's guarded heap, in the same C loops.

libsodium is loaded from the system library (cffi ABI mode, see
:mod:`benchmarks.sodium`) and its functions are called from the floor's C loop
through pointers, ``LOOP`` times per timed call, so what is measured is
libsodium itself, with no Python between iterations. Without libsodium the
timed benchmarks are skipped ("libsodium not installed") and
``track_installed`` records 0.
"""

from __future__ import annotations

from typing import Any

from ._common import CPU_TIMER, LOOP, MICRO_REPEAT, MICRO_ROUNDS
from .floor import ffi as floor_ffi
from .floor import load as load_floor
from .sodium import NotInstalled, available, load

timer = CPU_TIMER
rounds = MICRO_ROUNDS
repeat = MICRO_REPEAT

SIZE = 32


def _check(code: int, what: str) -> None:
    if code:
        raise OSError(code, f"libsodium {what} failed")


class Libsodium:
    """``sodium_malloc(32)`` + ``sodium_free``; and one protected read on a
    ``sodium_malloc(32)`` region: ``sodium_mprotect_readonly``, read 32 bytes,
    ``sodium_mprotect_noaccess``."""

    timeout = 120

    def setup(self) -> None:
        try:
            sodium = load()
        except NotInstalled as exc:
            raise NotImplementedError(str(exc)) from None
        self.lib = load_floor()
        ffi = floor_ffi()
        self.alloc = ffi.cast("floor_alloc_fn", sodium.address("sodium_malloc"))
        self.free = ffi.cast("floor_free_fn", sodium.address("sodium_free"))
        self.noaccess = ffi.cast("floor_protect_fn", sodium.address("sodium_mprotect_noaccess"))
        self.readonly = ffi.cast("floor_protect_fn", sodium.address("sodium_mprotect_readonly"))
        self.sodium = sodium
        self.region: Any = sodium.lib.sodium_malloc(SIZE)
        if self.region == sodium.ffi.NULL:
            raise RuntimeError("sodium_malloc(32) failed")
        sodium.ffi.memmove(self.region, bytes(range(1, SIZE + 1)), SIZE)
        _check(sodium.lib.sodium_mprotect_noaccess(self.region), "sodium_mprotect_noaccess")
        self.ptr = ffi.cast("void *", int(sodium.ffi.cast("uintptr_t", self.region)))

    def teardown(self) -> None:
        region = getattr(self, "region", None)
        if region is not None:
            self.sodium.lib.sodium_free(region)  # makes it writable, wipes and unmaps
            self.region = None

    def time_lifecycle_32_x200(self) -> None:
        _check(self.lib.floor_peer_lifecycle(LOOP, SIZE, self.alloc, self.free), "lifecycle")

    def time_protected_read_x200(self) -> None:
        _check(
            self.lib.floor_peer_protected_read(LOOP, SIZE, self.ptr, self.noaccess, self.readonly),
            "protected read",
        )


class LibsodiumInstalled:
    """1 when libsodium loads here (its timings exist), 0 when it is absent."""

    unit = "installed"

    def track_installed(self) -> float:
        return 1.0 if available() else 0.0
