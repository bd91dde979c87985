"""The one exception family of securememory, shared by every layer.

Every error the library raises on purpose derives from :class:`SecureMemoryError`.
Bad arguments raise :class:`InvalidArgumentError` (also a ``ValueError``) or
:class:`InvalidTypeError` (also a ``TypeError``), so callers may catch either
the library's base class or the built-in one.
"""

from __future__ import annotations

import errno as _errno


class SecureMemoryError(Exception):
    """Base class of every error securememory raises."""


class InvalidArgumentError(SecureMemoryError, ValueError):
    """An argument has the right type but an unusable value (size < 1, too large...)."""


class InvalidTypeError(SecureMemoryError, TypeError):
    """An argument has the wrong type."""


class AllocationError(SecureMemoryError, MemoryError):
    """The kernel refused to map memory (mmap or memfd_secret failed)."""

    def __init__(self, message: str, errno: int = 0, requested: int = 0) -> None:
        super().__init__(message)
        self.errno = errno
        self.requested = requested


class ProtectionError(SecureMemoryError):
    """Changing page protection or advice failed (mprotect or madvise)."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


class EntropyError(SecureMemoryError):
    """The kernel's random number generator failed (getrandom refused or unavailable)."""


class UnsupportedError(SecureMemoryError):
    """The kernel or platform lacks a requested protection (e.g. memfd_secret)."""


class RegionFreedError(SecureMemoryError):
    """A memcall Region was used after it was freed."""


class BufferDestroyedError(SecureMemoryError):
    """A memguard Buffer or Enclave was used after it was destroyed or purged."""


class ForkedError(SecureMemoryError):
    """An object created before fork() was used in the child process.

    Its pages were wiped in the child (MADV_WIPEONFORK); only the parent may use it.
    """


class ReadOnlyError(SecureMemoryError):
    """A write was attempted on a frozen (read-only) Buffer."""


class DecryptionError(SecureMemoryError):
    """Sealed data failed to authenticate: tampered, truncated, or sealed under an old key."""


class NonceBudgetError(SecureMemoryError):
    """The session key has sealed as many messages as it safely can; purge() replaces it."""


class SourceReadError(SecureMemoryError, OSError):
    """A file a secret was to be read from could not be opened or read."""


class TransferError(SecureMemoryError, OSError):
    """A secret could not be sent to, or received from, another process (a pipe or socket)."""


class StreamEmptyError(SecureMemoryError, EOFError):
    """next() or flush() on a Stream that holds no data."""


class SecretClosedError(SecureMemoryError):
    """A Secret was used after close()."""

    def __init__(self, message: str = "secret has already been destroyed") -> None:
        super().__init__(message)


class ViewEscapedError(SecureMemoryError):
    """A memoryview of a secret outlived the borrow that handed it out.

    The memory is made inaccessible again regardless. The escaped view must not
    be used: touching it faults while the secret is open, and after close() its
    address may belong to other memory.
    """


class BorrowError(SecureMemoryError):
    """A borrow was used in a way that would deadlock (e.g. closing its own secret)."""


class UnlockedMemoryWarning(RuntimeWarning):
    """Secret memory could not be locked and was used unlocked (mlock policy 'best_effort')."""


def _mib(n: int) -> str:
    if n < 0:
        return "unlimited"
    if n < 1024 * 1024:
        return f"{n // 1024} KiB"
    return f"{n / (1024 * 1024):g} MiB"


class MemoryLockError(SecureMemoryError):
    """mlock failed: the pages could not be locked into RAM.

    Attributes name the limit that was hit: ``errno`` (ENOMEM: over RLIMIT_MEMLOCK;
    EPERM: the limit is 0 or locking is not permitted), ``requested`` bytes,
    ``limit_soft`` / ``limit_hard`` (RLIMIT_MEMLOCK, -1 for unlimited),
    ``locked`` (bytes this process already had locked, VmLck) and
    ``cap_ipc_lock`` (whether CAP_IPC_LOCK was effective); ``enclave`` is
    True when it was raised on the enclave backend.
    """

    def __init__(
        self,
        errno: int,
        requested: int,
        limit_soft: int,
        limit_hard: int,
        locked: int,
        cap_ipc_lock: bool,
        *,
        enclave: bool = False,
    ) -> None:
        self.enclave = enclave
        self.errno = errno
        self.requested = requested
        self.limit_soft = limit_soft
        self.limit_hard = limit_hard
        self.locked = locked
        self.cap_ipc_lock = cap_ipc_lock
        super().__init__(self._message())

    def _message(self) -> str:
        limit = f"RLIMIT_MEMLOCK is {_mib(self.limit_soft)} (hard {_mib(self.limit_hard)})"
        if self.errno == _errno.EPERM:
            cause = (
                f"mlock of {self.requested} bytes not permitted (EPERM): {limit} "
                "and CAP_IPC_LOCK is not held"
            )
        elif self.errno == _errno.ENOMEM:
            cause = (
                f"mlock of {self.requested} bytes would exceed the memlock limit (ENOMEM): "
                f"{limit}, {_mib(self.locked)} already locked by this process"
            )
        else:
            cause = (
                f"mlock of {self.requested} bytes failed ({_errno.errorcode.get(self.errno, self.errno)}): "
                f"{limit}"
            )
        advice = "" if self.enclave else "use the 'enclave' backend (constant locked memory), "
        remedy = (
            "raise the limit (`ulimit -l`, `docker run --ulimit memlock=-1:-1`, "
            "`prlimit --memlock`), grant CAP_IPC_LOCK (`--cap-add IPC_LOCK`, `setcap cap_ipc_lock+ep`), "
            f"{advice}or choose the mlock policy 'best_effort' (SECUREMEMORY_MLOCK=best_effort)"
        )
        if self.enclave:
            remedy += (
                "; the 'enclave' backend locks each secret in full while it is filled or borrowed, "
                "so the limit must fit the largest secret"
            )
        return f"{cause}; to fix: {remedy}"

    def on_enclave(self) -> MemoryLockError:
        """The same error, raised on the enclave backend (whose advice differs)."""
        return MemoryLockError(
            self.errno, self.requested, self.limit_soft, self.limit_hard, self.locked, self.cap_ipc_lock, enclave=True
        )


__all__ = [
    "AllocationError",
    "BorrowError",
    "BufferDestroyedError",
    "DecryptionError",
    "EntropyError",
    "ForkedError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "MemoryLockError",
    "NonceBudgetError",
    "ProtectionError",
    "ReadOnlyError",
    "RegionFreedError",
    "SecretClosedError",
    "SecureMemoryError",
    "SourceReadError",
    "StreamEmptyError",
    "TransferError",
    "UnlockedMemoryWarning",
    "UnsupportedError",
    "ViewEscapedError",
]
