"""Shared constants and helpers for the benchmark modules and the report.

Single-threaded benchmarks are timed by the CPU time of the process (user +
system, ``CPU_TIMER``), so that other load on a shared machine does not count
as the library's cost; the floor is timed the same way. The threads benchmark
is timed by the wall clock, since overlap is what it measures.

Micro-benchmarks run their operation ``LOOP`` times per timed call (the floor
runs its C loop the same number of times), so a timed call lasts long enough
to measure even in ``--quick`` mode; the report divides by ``LOOP``.
"""

from __future__ import annotations

import os
import time
from typing import Any

CPU_TIMER = time.process_time
# Micro-benchmarks whose medians the target ratios divide: more rounds (each a
# fresh process, interleaved with every other benchmark) so that drift in the
# machine's load between two benchmarks' turns averages out; --quick ignores both.
MICRO_ROUNDS = 4
MICRO_REPEAT = (5, 15, 10.0)
BACKENDS = ["legacy", "protected", "enclave"]
SECRET_SIZES = [32, 4096, 1 << 20]
LOOP = 200
OVERLAP_CALLS = 20_000
PURGE_COUNT = 1000
LIVE_COUNTS = [0, 10_000]
STREAM_TOTAL = 64 << 20
MEMLOCK_LIMIT = 64 * 1024
REACHABLE_CAP = 10_000
SIZE_NAMES = {32: "32 B", 4096: "4 KiB", 1 << 20: "1 MiB", 64 << 20: "64 MiB"}

_cache: dict[Any, Any] = {}


def cached(key: Any, make: Any) -> Any:
    """``make()`` once per process (per key); benchmark state outlives samples."""
    try:
        return _cache[key]
    except KeyError:
        value = _cache[key] = make()
        return value


def skip_unavailable(exc: BaseException) -> NotImplementedError:
    """asv marks a benchmark skipped when its setup raises NotImplementedError."""
    return NotImplementedError(f"not available in this build: {exc!r}")


def secret_factory(backend: str) -> Any:
    """A ``SecretFactory`` for ``backend`` requiring mlock (so failures are explicit)."""

    def make() -> Any:
        try:
            from securememory import SecretFactory
        except ImportError as exc:
            raise skip_unavailable(exc) from None
        return SecretFactory(backend=backend, mlock="require")

    return cached(("factory", backend), make)


def page_size() -> int:
    return os.sysconf("SC_PAGESIZE")


def stream_chunk() -> int:
    """The Stream's default chunk size: 4 pages."""
    return 4 * page_size()


def pattern(size: int) -> bytes:
    """Deterministic non-zero bytes (benchmark data, not a secret)."""
    block = bytes(range(1, 256))
    return (block * (size // len(block) + 1))[:size]


def noop(view: memoryview) -> int:
    return view[0]
