"""Crash wipe: a C signal handler that wipes every live buffer on a fatal signal.

On SIGSEGV, SIGBUS, SIGILL, SIGFPE and SIGABRT the handler (installed with the
first Buffer, never at import) wipes the inner pages of every live buffer from
an async-signal-safe table kept in C, calls any handler that was installed
before it (faulthandler, for instance), restores the previous disposition and
lets the signal proceed, so the exit status and core file are unchanged, minus
the secrets. Set ``SECUREMEMORY_CRASH_WIPE=0`` or call :func:`disable_crash_wipe`
to leave fatal signals alone.
"""

from __future__ import annotations

import os

from .._native import lib
from ..errors import ProtectionError

ENV_VAR = "SECUREMEMORY_CRASH_WIPE"

_enabled = os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "no", "false", "off")
_installed = False


def ensure_installed() -> None:
    """Install the handler unless disabled; a flag test when already installed."""
    global _installed
    if _enabled and not _installed:
        code = lib.sm_crash_install()
        if code:
            raise ProtectionError(f"could not install the crash-wipe handler ({os.strerror(code)})", code)
        _installed = True


def enable_crash_wipe() -> None:
    """Install the crash-wipe handler now (it is otherwise installed with the first Buffer)."""
    global _enabled
    _enabled = True
    ensure_installed()


def disable_crash_wipe() -> None:
    """Remove the crash-wipe handler, restoring the handlers it displaced."""
    global _enabled, _installed
    _enabled = False
    _installed = False
    lib.sm_crash_uninstall()


def crash_wipe_installed() -> bool:
    return bool(lib.sm_crash_installed())
