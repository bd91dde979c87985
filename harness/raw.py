"""Raw memory access for scenario children: addresses of views, byte pokes and peeks.

These bypass every check on purpose: a scenario touches memory the way a
buggy or hostile piece of native code would.
"""

from __future__ import annotations

import ctypes
import os

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


_libc = ctypes.CDLL(None, use_errno=True)
_probe_r, _probe_w = os.pipe()


def readable(address: int) -> bool:
    """Whether this process can read the byte at ``address``, asked of the kernel
    (write(2) from it into a pipe fails with EFAULT where reading would fault)."""
    if _libc.write(_probe_w, ctypes.c_void_p(address), 1) == 1:
        os.read(_probe_r, 1)
        return True
    return False


def read(address: int, length: int) -> bytes:
    """``length`` bytes at ``address`` (a copy: use only on non-secret or wiped memory)."""
    return ctypes.string_at(address, length)
