"""securememory: secrets in locked, guarded, no-access memory, wiped on every way out.

High-level API: :class:`SecretFactory` makes :class:`Secret` objects on the
``protected``, ``enclave`` or ``legacy`` backend; :class:`Stream` holds data
too large to lock at once; :func:`catch_interrupt` and :func:`catch_signal`
purge before exit; :data:`metrics` counts secrets. Lower layers:
:mod:`securememory.memguard` (guarded buffers, enclaves) and
:mod:`securememory.memcall` (page-level system calls). Every error derives
from :class:`securememory.errors.SecureMemoryError`.
"""

from . import errors
from .errors import (
    BorrowError,
    DecryptionError,
    ForkedError,
    InvalidArgumentError,
    InvalidTypeError,
    MemoryLockError,
    SecretClosedError,
    SecureMemoryError,
    ViewEscapedError,
)
from .factory import Backend, SecretFactory
from .memguard import MlockPolicy, get_mlock_policy, purge, safe_exit, set_mlock_policy
from .metrics import metrics
from .reader import SecretReader
from .secret import Secret
from .signals import catch_interrupt, catch_signal
from .stream import Stream

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "BorrowError",
    "DecryptionError",
    "ForkedError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "MemoryLockError",
    "MlockPolicy",
    "Secret",
    "SecretClosedError",
    "SecretFactory",
    "SecretReader",
    "SecureMemoryError",
    "Stream",
    "ViewEscapedError",
    "catch_interrupt",
    "catch_signal",
    "errors",
    "get_mlock_policy",
    "metrics",
    "purge",
    "safe_exit",
    "set_mlock_policy",
]
