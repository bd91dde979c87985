"""Secret counters: ``allocated`` (cumulative) and ``in_use`` (down once per real close)."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Snapshot:
    allocated: int
    in_use: int


class Metrics:
    """Thread-safe counters of Secrets created and still open in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._allocated = 0
        self._in_use = 0

    @property
    def allocated(self) -> int:
        """Secrets created since start (or the last reset)."""
        return self._allocated

    @property
    def in_use(self) -> int:
        """Secrets created and not yet closed."""
        return self._in_use

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(self._allocated, self._in_use)

    def reset(self) -> None:
        """Zero both counters (for tests and long-running processes that report deltas)."""
        with self._lock:
            self._allocated = 0
            self._in_use = 0

    def _opened(self) -> None:
        with self._lock:
            self._allocated += 1
            self._in_use += 1

    def _closed(self) -> None:
        with self._lock:
            self._in_use -= 1


metrics = Metrics()
