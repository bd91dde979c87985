"""capabilities(): what protections this process can have, right now."""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .._native import ffi, lib
from . import system


@dataclass(frozen=True)
class Capabilities:
    """A snapshot of the protections available to this process.

    Sizes are bytes; limits of -1 mean unlimited. ``mlock_works`` is measured
    by locking one page now, so it reflects the limit and capabilities in force.
    """

    kernel: str
    page_size: int
    memlock_soft: int
    memlock_hard: int
    locked_bytes: int
    cap_ipc_lock: bool
    mlock_works: bool
    memfd_secret: bool
    madv_dontdump: bool
    madv_wipeonfork: bool
    core_soft: int
    core_hard: int
    core_pattern: str | None
    ptrace_scope: int | None

    def report(self) -> str:
        """A human-readable multi-line summary."""

        def size(n: int) -> str:
            return "unlimited" if n == system.UNLIMITED else f"{n} bytes"

        rows = [
            ("kernel", self.kernel),
            ("python", sys.version.split()[0]),
            ("page size", f"{self.page_size} bytes"),
            ("RLIMIT_MEMLOCK", f"soft {size(self.memlock_soft)}, hard {size(self.memlock_hard)}"),
            ("locked now (VmLck)", f"{self.locked_bytes} bytes"),
            ("CAP_IPC_LOCK", "effective" if self.cap_ipc_lock else "not held"),
            ("mlock", "works" if self.mlock_works else "FAILS"),
            ("memfd_secret", "available" if self.memfd_secret else "unavailable"),
            ("MADV_DONTDUMP", "supported" if self.madv_dontdump else "unsupported"),
            ("MADV_WIPEONFORK", "supported" if self.madv_wipeonfork else "unsupported"),
            ("RLIMIT_CORE", f"soft {size(self.core_soft)}, hard {size(self.core_hard)}"),
            ("core_pattern", self.core_pattern if self.core_pattern is not None else "unknown"),
            ("ptrace_scope", str(self.ptrace_scope) if self.ptrace_scope is not None else "no Yama"),
        ]
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _mlock_works() -> bool:
    page = lib.sm_page_size()
    out = ffi.new("void **")
    if lib.sm_map(page, 0, out):
        return False
    ok = lib.sm_lock(out[0], page) == 0
    lib.sm_free(out[0], page, 1 if ok else 0)
    return ok


def capabilities() -> Capabilities:
    """Measure and return this process's :class:`Capabilities`."""
    memlock_soft, memlock_hard = system.memlock_limit()
    core_soft, core_hard = system.core_limit()
    advice = lib.sm_advice_supported()
    return Capabilities(
        kernel=system.kernel(),
        page_size=lib.sm_page_size(),
        memlock_soft=memlock_soft,
        memlock_hard=memlock_hard,
        locked_bytes=system.locked_bytes(),
        cap_ipc_lock=system.has_capability(system.CAP_IPC_LOCK),
        mlock_works=_mlock_works(),
        memfd_secret=bool(lib.sm_memfd_secret_supported()),
        madv_dontdump=bool(advice & lib.SM_ADV_DONTDUMP),
        madv_wipeonfork=bool(advice & lib.SM_ADV_WIPEONFORK),
        core_soft=core_soft,
        core_hard=core_hard,
        core_pattern=system.read_text("/proc/sys/kernel/core_pattern"),
        ptrace_scope=system.ptrace_scope(),
    )
