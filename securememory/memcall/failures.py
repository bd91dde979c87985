"""What failed: the step of a syscall sequence, named by its call, with the errno.

A C call that runs a sequence of syscalls (creating a guarded buffer) reports
the step that failed (``SM_STEP_*`` in ``memcall.h``); every message names
that call and the errno the same way (errors name the failed call).
"""

from __future__ import annotations

import errno as _errno
import os

from .._native import lib

_CALLS = {
    lib.SM_STEP_RANDOM: "getrandom",
    lib.SM_STEP_MAP: "mmap",
    lib.SM_STEP_GUARD: "mprotect to READ_WRITE",
    lib.SM_STEP_ADVISE: "madvise",
    lib.SM_STEP_LOCK: "mlock",
}


def strerror(code: int) -> str:
    """``ENOMEM: Cannot allocate memory``."""
    return f"{_errno.errorcode.get(code, str(code))}: {os.strerror(code)}"


def failed(step: int, code: int) -> str:
    """``mmap failed: EINVAL: Invalid argument``."""
    return f"{_CALLS.get(step, 'a system call')} failed: {strerror(code)}"
