"""The legacy backend (the old design): mmap + mlock + mprotect per secret.

No guard pages and no canary; kept for compatibility and as the benchmark
baseline. Its pages are still kept out of core dumps, wiped on fork, and
wiped by the crash handler.
"""

from __future__ import annotations

from .. import memcall
from .._native import ffi, lib
from ..errors import MemoryLockError
from ..memcall import Protection, Region
from ..memcall.region import release
from ..memguard import MlockPolicy, crash
from ..memguard.policy import warn_unlocked
from ..secret import Secret


class LegacySecret(Secret):
    """A secret in its own locked mapping, NO_ACCESS between borrows."""

    def __init__(self, region: Region, size: int) -> None:
        memcall.protect(region, Protection.NO_ACCESS)
        self._region = region
        start = ffi.cast("unsigned char *", region.address)
        crash.ensure_installed()
        self._slot = lib.sm_live_add(start, region.size)  # wiped on a crash or a caught signal
        super().__init__(size, region.address, (region.address, region.size))

    @classmethod
    def allocate(cls, size: int, mlock: MlockPolicy) -> Region:
        """A read-write region for ``size`` bytes, locked per ``mlock``."""
        region = memcall.alloc(size)
        try:
            memcall.dont_dump(region)
            memcall.wipe_on_fork(region)
            if mlock != MlockPolicy.DISABLED:
                try:
                    memcall.lock(region)
                except MemoryLockError as e:
                    if mlock == MlockPolicy.REQUIRE:
                        raise
                    warn_unlocked(e)
        except BaseException:
            memcall.free(region)
            raise
        return region

    def _destroy(self, keep: Protection | None) -> None:
        # each step is one idempotent C call, so an interrupted teardown resumes
        lib.sm_live_remove_if(self._slot, ffi.cast("void *", self._region.address))
        release(self._region, keep)

    @property
    def locked(self) -> bool:
        return self._region.locked
