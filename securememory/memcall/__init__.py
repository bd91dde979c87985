"""memcall: page-level system calls (mmap, mlock, mprotect, madvise, rlimits).

The lowest layer of securememory. It knows nothing of buffers or secrets; it
maps pages, locks them, changes their protection and advice, and reports what
this process is allowed to do (:func:`capabilities`). Every failure raises an
exception from :mod:`securememory.errors` that names the errno, and for mlock
the limit that was hit and how to raise it.
"""

from .capabilities import Capabilities, capabilities
from .region import (
    Protection,
    Region,
    alloc,
    disable_core_dumps,
    dont_dump,
    free,
    lock,
    page_size,
    protect,
    quarantine,
    unlock,
    wipe_on_fork,
)
from .system import locked_bytes

__all__ = [
    "Capabilities",
    "Protection",
    "Region",
    "alloc",
    "capabilities",
    "disable_core_dumps",
    "dont_dump",
    "free",
    "lock",
    "locked_bytes",
    "page_size",
    "protect",
    "quarantine",
    "unlock",
    "wipe_on_fork",
]
