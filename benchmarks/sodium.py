"""libsodium's guarded heap, loaded from the system library (cffi ABI mode).

Nothing is compiled against libsodium: :func:`load` opens the shared library
with ``ffi.dlopen`` and the floor (``benchmarks/floor``) calls its functions
through pointers taken from it, in the same C loops as the floor's own
sequences. Where libsodium is absent, :func:`load` raises
:class:`NotInstalled`, whose message says so; the peer benchmarks are then
skipped and the report says "libsodium not installed".
"""

from __future__ import annotations

import ctypes.util
from dataclasses import dataclass
from typing import Any

from cffi import FFI

NAMES = ("libsodium.so.23", "libsodium.so.26", "libsodium.so")
CDEF = """
int sodium_init(void);
const char *sodium_version_string(void);
void *sodium_malloc(size_t size);
void sodium_free(void *ptr);
int sodium_mprotect_noaccess(void *ptr);
int sodium_mprotect_readonly(void *ptr);
"""
NOT_INSTALLED = "libsodium not installed"
INSTALL_HINT = "Debian/Ubuntu: apt-get install libsodium23"


class NotInstalled(RuntimeError):
    """No loadable libsodium on this machine."""


@dataclass(frozen=True)
class Sodium:
    ffi: Any
    lib: Any
    path: str

    @property
    def version(self) -> str:
        return str(self.ffi.string(self.lib.sodium_version_string()).decode())

    def address(self, name: str) -> int:
        """The address of one of libsodium's functions (to hand to the floor)."""
        return int(self.ffi.cast("uintptr_t", self.ffi.addressof(self.lib, name)))


_loaded: Sodium | None = None


def _candidates() -> list[str]:
    found = ctypes.util.find_library("sodium")
    return [*NAMES, *([found] if found else [])]


def load() -> Sodium:
    """libsodium, opened and initialised once per process; NotInstalled when absent."""
    global _loaded
    if _loaded is not None:
        return _loaded
    ffi = FFI()
    ffi.cdef(CDEF)
    errors = []
    for name in _candidates():
        try:
            lib: Any = ffi.dlopen(name)
        except OSError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if lib.sodium_init() < 0:
            raise NotInstalled(f"{name} loaded but sodium_init() failed")
        _loaded = Sodium(ffi, lib, name)
        return _loaded
    raise NotInstalled(f"{NOT_INSTALLED} ({INSTALL_HINT}); tried {', '.join(_candidates())}")


def available() -> bool:
    try:
        load()
    except NotInstalled:
        return False
    return True
