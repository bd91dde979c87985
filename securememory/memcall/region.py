"""Regions: page-rounded private mappings and the syscalls that act on them.

Each function makes one call into C, which performs the whole syscall sequence
and returns an errno; errors become exceptions from :mod:`securememory.errors`.
"""

from __future__ import annotations

import enum
import errno as _errno
import threading
from typing import Any

from .._gate import hold
from .._native import ffi, lib
from ..errors import (
    AllocationError,
    InvalidArgumentError,
    InvalidTypeError,
    ProtectionError,
    RegionFreedError,
    UnsupportedError,
)
from .failures import strerror as _strerror
from .failures import teardown_error
from .system import lock_error

# Far above any real mapping, far below overflow in page rounding.
MAX_SIZE = 1 << 62


class Protection(enum.IntEnum):
    """Page protection of a Region."""

    NO_ACCESS = lib.SM_PROT_NONE
    READ_ONLY = lib.SM_PROT_READ
    READ_WRITE = lib.SM_PROT_READ_WRITE


def page_size() -> int:
    """The system page size in bytes."""
    return lib.sm_page_size()


def check_size(size: object, what: str = "size") -> int:
    """Validate a requested byte count: an int from 1 to 2**62."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise InvalidTypeError(f"{what} must be an int, not {type(size).__name__}")
    if size < 1:
        raise InvalidArgumentError(f"{what} must be at least 1, got {size}")
    if size > MAX_SIZE:
        raise InvalidArgumentError(f"{what} {size} exceeds the maximum of {MAX_SIZE}")
    return size


def owned_view(ptr: Any, size: int, owner: object) -> memoryview:
    """A writable memoryview of ``size`` bytes at ``ptr`` that keeps ``owner`` alive.

    The owner unmaps the memory when collected, so every view must hold it.
    """
    def keep(_: Any, _owner: object = owner) -> None:
        pass

    anchored = ffi.gc(ffi.cast("unsigned char *", ptr), keep)
    return memoryview(ffi.buffer(anchored, size))


class Region:
    """A page-aligned mapping owned by this process.

    Knows its address, size, protection, and whether it is locked or freed.
    Hands out a memoryview only when asked (:meth:`view`); touching that view
    while the region is NO_ACCESS (or writing while READ_ONLY) faults. The
    mapping is released once, in C, by :func:`free`, :func:`quarantine` or the
    finalizer, whichever comes first: no Python runs when a Region is collected.
    """

    __slots__ = ("_address", "_guard", "_m", "_protection", "_secret")

    def __init__(self, ptr: Any, size: int, secret: bool) -> None:
        # memfd_secret pages are locked by the kernel when mapped (VM_LOCKED,
        # charged to RLIMIT_MEMLOCK); mlock on them fails with ENOMEM.
        m = ffi.new("sm_mapping *", {"addr": ptr, "len": size, "locked": 1 if secret else 0})
        self._m: Any = ffi.gc(m, lib.sm_mapping_finalize)
        self._address = int(ffi.cast("uintptr_t", ptr))
        self._secret = secret
        self._protection = Protection.READ_WRITE
        self._guard = threading.Lock()

    @property
    def _ptr(self) -> Any:
        return self._m.addr

    @property
    def address(self) -> int:
        return self._address

    @property
    def size(self) -> int:
        """Mapped bytes (a page multiple)."""
        return int(self._m.len)

    @property
    def _size(self) -> int:
        return int(self._m.len)

    @property
    def protection(self) -> Protection:
        return self._protection

    @property
    def locked(self) -> bool:
        return bool(self._m.locked) and not self.freed

    @property
    def freed(self) -> bool:
        return bool(self._m.addr == ffi.NULL)

    @property
    def secret(self) -> bool:
        """Backed by memfd_secret: invisible even to the kernel's other users."""
        return self._secret

    def view(self) -> memoryview:
        """A memoryview over the whole region (read-only unless READ_WRITE)."""
        self._check()
        view = owned_view(self._ptr, self._size, self)
        return view if self._protection == Protection.READ_WRITE else view.toreadonly()

    def _check(self) -> None:
        if self.freed:
            raise RegionFreedError(f"region at {self.address:#x} has been freed")

    def __repr__(self) -> str:
        state = "freed" if self.freed else self._protection.name
        return f"<Region {self.address:#x} size={self._size} {state} locked={self.locked}>"


def _region(region: object) -> Region:
    if not isinstance(region, Region):
        raise InvalidTypeError(f"expected a Region, not {type(region).__name__}")
    region._check()
    return region


def alloc(size: int, *, secret: bool = False) -> Region:
    """Map ``size`` bytes rounded up to whole pages: zero-filled, read-write, private.

    With ``secret=True`` the pages come from memfd_secret (Linux >= 5.14), which
    removes them from the kernel's direct map; the descriptor is closed once
    mapped. Raises UnsupportedError where memfd_secret is unavailable,
    AllocationError when the kernel refuses the mapping.
    """
    size = check_size(size)
    page = lib.sm_page_size()
    rounded = (size + page - 1) // page * page
    out = ffi.new("void **")
    code = lib.sm_map(rounded, 1 if secret else 0, out)
    if code:
        if secret:
            failed = f"memfd_secret, ftruncate or mmap failed: {_strerror(code)}"
            if code in (_errno.ENOSYS, _errno.EINVAL, _errno.EPERM, _errno.ENOTSUP):
                raise UnsupportedError(f"memfd_secret is not available here ({failed})")
            raise AllocationError(f"could not map {rounded} bytes of memfd_secret memory ({failed})", code, rounded)
        raise AllocationError(f"could not map {rounded} bytes (mmap failed: {_strerror(code)})", code, rounded)
    return Region(out[0], rounded, secret)


def free(region: Region) -> None:
    """Make the region read-write, wipe it, unlock it if locked, and unmap it.

    Pages that cannot be made read-write are unmapped unwiped rather than left
    mapped. Raises ProtectionError when munmap fails (the pages are wiped and
    unlocked by then, and stay mapped: the region counts as freed all the same,
    since nothing is left to retry); a second free raises RegionFreedError.
    """
    region = _region(region)
    release(region, None)


def release(region: Region, keep: Protection | None) -> None:
    """Free the region (``keep`` None) or quarantine it; a no-op once released.

    Takes no Python lock: the C call claims the mapping atomically, so an
    exception at any instant leaves it either released or still owned. A
    release that fails has still released it as far as it could (no plaintext
    stays mapped) and raises ProtectionError naming the call that failed.
    """
    code = lib.sm_mapping_release(region._m, -1 if keep is None else int(keep))
    if code:
        what = "could not free the region" if keep is None else f"could not quarantine the region as {keep.name}"
        raise teardown_error(what, region._m.failed_step, code)


def quarantine(region: Region, protection: Protection) -> None:
    """Make the region read-write, wipe it, unlock it, and leave it mapped with
    ``protection`` for good: a stale view into it never reads newer data.

    The region counts as freed afterwards (its pages are never reused). When a
    step fails the range is still left reserved, unlocked and without the data
    (pages that could not be made writable are dropped unwiped, by replacing
    them with fresh zero pages) and ProtectionError names the call that failed.
    """
    region = _region(region)
    if not isinstance(protection, Protection):
        raise InvalidTypeError(f"protection must be a Protection, not {type(protection).__name__}")
    release(region, protection)


def lock(region: Region) -> None:
    """mlock the region; raises MemoryLockError naming the limit that was hit.

    A memfd_secret region is already locked by the kernel; locking it again is a no-op.
    """
    region = _region(region)
    with hold(region._guard):
        region._check()
        if region._secret:
            return
        code = lib.sm_lock(region._ptr, region._size)
        if code:
            raise lock_error(code, region._size)
        region._m.locked = 1


def unlock(region: Region) -> None:
    """munlock the region."""
    region = _region(region)
    with hold(region._guard):
        region._check()
        code = lib.sm_unlock(region._ptr, region._size)
        if code:
            raise ProtectionError(f"munlock failed ({_strerror(code)})", code)
        region._m.locked = 0


def protect(region: Region, protection: Protection) -> None:
    """Set the region's page protection (mprotect)."""
    region = _region(region)
    if not isinstance(protection, Protection):
        raise InvalidTypeError(f"protection must be a Protection, not {type(protection).__name__}")
    with hold(region._guard):
        region._check()
        code = lib.sm_protect(region._ptr, region._size, int(protection))
        if code:
            raise ProtectionError(f"mprotect to {protection.name} failed ({_strerror(code)})", code)
        region._protection = protection


def _advise(region: Region, advice: int, name: str) -> None:
    region = _region(region)
    with hold(region._guard):
        region._check()
        code = lib.sm_advise(region._ptr, region._size, advice)
    if code == _errno.ENOTSUP:
        raise UnsupportedError(f"{name} is not supported on this platform")
    if code:
        raise ProtectionError(f"madvise({name}) failed ({_strerror(code)})", code)


def dont_dump(region: Region) -> None:
    """Exclude the region from core dumps (MADV_DONTDUMP)."""
    _advise(region, lib.SM_ADV_DONTDUMP, "MADV_DONTDUMP")


def wipe_on_fork(region: Region) -> None:
    """Make a forked child see the region as zeros (MADV_WIPEONFORK).

    memfd_secret regions are shared mappings, which the kernel refuses here.
    """
    _advise(region, lib.SM_ADV_WIPEONFORK, "MADV_WIPEONFORK")


def disable_core_dumps(*, hard: bool = False) -> None:
    """Set RLIMIT_CORE to 0 for this process and its children.

    By default only the soft limit, so it can be raised again; ``hard=True``
    also lowers the hard limit, which cannot be undone without privilege.
    Prefer per-region :func:`dont_dump`, which every memguard Buffer applies.
    """
    code = lib.sm_disable_core_dumps(1 if hard else 0)
    if code == _errno.ENOTSUP:
        raise UnsupportedError("core-dump limits do not exist on this platform")
    if code:
        raise ProtectionError(f"could not lower RLIMIT_CORE ({_strerror(code)})", code)
