"""Shared helpers for the Secret tests: backends, addresses, page permissions."""

from __future__ import annotations

import os
from typing import Any

from harness import memory
from securememory import Secret
from securememory._native import ffi

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
    for m in memory.mappings(os.getpid() if pid is None else pid):
        if m.contains(addr):
            return m.perms
    return None


def inaccessible(addr: int) -> bool:
    """True when ``addr`` is in a PROT_NONE mapping or in no mapping at all."""
    perms = perms_at(addr)
    return perms is None or perms.startswith("---")
