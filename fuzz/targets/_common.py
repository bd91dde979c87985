"""Shared pieces of the fuzz targets: import path, invariants, the atheris entry point."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports(include=["securememory"]):
    import securememory  # noqa: F401
    from securememory.errors import SecureMemoryError
    from securememory.memguard import registry
    from securememory.memguard.coffer import _holder
    from securememory.memguard.scratch import scratch_pool


class Finding(AssertionError):
    """An invariant the target checks did not hold."""


def check(ok: bool, message: str) -> None:
    if not ok:
        raise Finding(message)


def coffer_buffers() -> int:
    coffer = _holder.coffer
    return 3 if coffer is not None and coffer.alive else 0


def live_buffers() -> int:
    """Buffers in the registry other than the session key's own three and the
    idle enclave scratch pages (a cache of wiped NO_ACCESS pages, kept on purpose)."""
    return registry.count() - coffer_buffers() - len(scratch_pool.idle())


def main(test_one_input: Callable[[bytes], None]) -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


__all__ = ["Finding", "SecureMemoryError", "atheris", "check", "coffer_buffers", "live_buffers", "main"]
