"""Raw memory access for scenario children: addresses of views, byte pokes and peeks.

These bypass every check on purpose: a scenario touches memory the way a
buggy or hostile piece of native code would.
"""

from __future__ import annotations

import ctypes

import cffi

_ffi = cffi.FFI()


def address_of(view: memoryview) -> int:
    """Address of the first byte of a (possibly read-only) buffer."""
    return int(_ffi.cast("uintptr_t", _ffi.from_buffer(view)))


def poke(address: int, value: int = 0x41) -> None:
    """Write one byte at ``address``."""
    ctypes.c_ubyte.from_address(address).value = value


def peek(address: int) -> int:
    """Read one byte at ``address``."""
    return int(ctypes.c_ubyte.from_address(address).value)


def read(address: int, length: int) -> bytes:
    """``length`` bytes at ``address`` (a copy: use only on non-secret or wiped memory)."""
    return ctypes.string_at(address, length)
