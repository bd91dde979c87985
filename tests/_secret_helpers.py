"""Shared helpers for the Secret tests: backends, addresses, page permissions."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any

from securememory import Secret
from securememory._native import ffi
from securememory.memguard import registry
from securememory.memguard.scratch import scratch_pool

BACKENDS = ("protected", "enclave", "legacy")
POLICIES = ("require", "best_effort", "disabled")


def address_of(view: Any) -> int:
    """Address of the first byte a buffer-protocol object exposes."""
    return int(ffi.cast("uintptr_t", ffi.from_buffer(view)))


def borrowed_address(secret: Secret) -> int:
    """Where the secret's bytes are during a borrow (an int: nothing readable is kept)."""
    return secret.with_bytes(address_of)


def perms_at(addr: int, pid: int | None = None) -> str | None:
    """The permission string of the mapping holding ``addr`` in ``pid``, None when unmapped."""
    with open(f"/proc/{os.getpid() if pid is None else pid}/maps", encoding="ascii") as f:
        for line in f:
            span, perms = line.split(None, 2)[:2]
            start, end = span.split("-")
            if int(start, 16) <= addr < int(end, 16):
                return perms
    return None


_libc = ctypes.CDLL(None, use_errno=True)
_probe_r, _probe_w = os.pipe()


def readable(addr: int) -> bool:
    """Whether this process can read the byte at ``addr``, asked of the kernel
    (write(2) from it into a pipe fails with EFAULT instead of faulting)."""
    n = _libc.write(_probe_w, ctypes.c_void_p(addr), 1)
    if n == 1:
        os.read(_probe_r, 1)
        return True
    assert ctypes.get_errno() == errno.EFAULT, os.strerror(ctypes.get_errno())
    return False


def inaccessible(addr: int) -> bool:
    """True when ``addr`` is in a PROT_NONE mapping or in no mapping at all."""
    perms = perms_at(addr)
    return perms is None or perms.startswith("---")


def buffers_in_use() -> int:
    """Live registered buffers, less the enclave scratches idle in their pool
    (each checked wiped-and-concealed: NO_ACCESS)."""
    idle = scratch_pool.idle()
    for buf in idle:
        assert inaccessible(int(ffi.cast("uintptr_t", buf._b.inner))), "an idle scratch is accessible"
    return registry.count() - len(idle)
