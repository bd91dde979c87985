"""purge(), safe_exit(), safe_panic(), and the purge at interpreter exit."""

from __future__ import annotations

import atexit
import sys
from collections.abc import Callable
from typing import NoReturn

from ..errors import BorrowError, SecureMemoryError
from .buffer import destroy_all
from .coffer import reset_coffer

_before_purge: list[Callable[[], None]] = []


def on_purge(hook: Callable[[], None]) -> None:
    """Run ``hook`` at the start of every purge (the Secret layer closes its secrets there)."""
    _before_purge.append(hook)


def purge() -> None:
    """Destroy every live Buffer (verifying canaries) and replace the session key.

    Enclaves sealed before the purge can no longer be opened. A canary mismatch
    found here is fatal, as in destroy(). Meant for exit paths: memory that
    another thread is reading through a borrow or view at that moment is
    unmapped under it, and touching it faults. Every step runs even when one
    fails (a failed munmap, say); the first failure is raised at the end.
    Raises BorrowError at once, destroying nothing more, when called from
    inside a view of the session key.
    """
    failed: SecureMemoryError | None = None
    for step in (*_before_purge, reset_coffer, destroy_all):
        try:
            step()
        except BorrowError:
            raise  # a refusal (purge from inside a key view): nothing may go on
        except SecureMemoryError as e:
            failed = failed or e
    if failed is not None:
        raise failed


def safe_exit(code: int = 0) -> NoReturn:
    """Purge, then exit the interpreter with ``code``."""
    purge()
    sys.exit(code)


def safe_panic(message: str) -> NoReturn:
    """Purge, then raise SecureMemoryError(message)."""
    purge()
    raise SecureMemoryError(message)


atexit.register(purge)
