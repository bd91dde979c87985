"""What failed: the step of a syscall sequence, named by its call, with the errno.

A C call that runs a sequence of syscalls (creating or tearing down a guarded
buffer, releasing a region) reports the step that failed (``SM_STEP_*`` in
``memcall.h``); every message names that call and the errno the same way,
and for a teardown what the failure left behind (errors name the failed call).
"""

from __future__ import annotations

import errno as _errno
import os

from .._native import lib
from ..errors import ProtectionError

_CALLS = {
    lib.SM_STEP_RANDOM: "getrandom",
    lib.SM_STEP_MAP: "mmap",
    lib.SM_STEP_GUARD: "mprotect to READ_WRITE",
    lib.SM_STEP_ADVISE: "madvise",
    lib.SM_STEP_LOCK: "mlock",
    lib.SM_STEP_OPEN: "mprotect to READ_WRITE",
    lib.SM_STEP_UNLOCK: "munlock",
    lib.SM_STEP_SEAL: "mprotect",
    lib.SM_STEP_UNMAP: "munmap",
}

# What a teardown leaves when the step fails: never plaintext mapped.
_AFTERMATH = {
    lib.SM_STEP_OPEN: "the pages could not be made writable to be wiped, so they were dropped unwiped",
    lib.SM_STEP_UNLOCK: "the pages were wiped, then replaced by fresh ones to drop the lock",
    lib.SM_STEP_SEAL: "the pages were wiped, then replaced by fresh ones with that protection",
    lib.SM_STEP_UNMAP: "the pages were wiped and unlocked, and stay mapped",
}


def strerror(code: int) -> str:
    """``ENOMEM: Cannot allocate memory``."""
    return f"{_errno.errorcode.get(code, str(code))}: {os.strerror(code)}"


def failed(step: int, code: int) -> str:
    """``munmap failed: EINVAL: Invalid argument``."""
    return f"{_CALLS.get(step, 'a system call')} failed: {strerror(code)}"


def teardown_error(what: str, step: int, code: int) -> ProtectionError:
    """The error of a teardown (``what`` was asked) whose ``step`` failed with ``code``."""
    aftermath = _AFTERMATH.get(step)
    return ProtectionError(f"{what} ({failed(step, code)}){'; ' + aftermath if aftermath else ''}", code)
