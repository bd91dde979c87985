"""Secret counters: ``allocated`` (cumulative) and ``in_use`` (down once per real close).

The counts are kept in C by the borrow gates (``securememory._gate``): a gate
counts itself when it is made and when its teardown finishes, atomically and
with no lock Python could be interrupted while holding.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _gate


@dataclass(frozen=True)
class Snapshot:
    allocated: int
    in_use: int


class Metrics:
    """Thread-safe counters of Secrets created and still open in this process."""

    @property
    def allocated(self) -> int:
        """Secrets created since start (or the last reset)."""
        return _gate.counters()[0]

    @property
    def in_use(self) -> int:
        """Secrets created and not yet closed."""
        return _gate.counters()[1]

    def snapshot(self) -> Snapshot:
        """Both counts, read together."""
        return Snapshot(*_gate.counters())

    def reset(self) -> None:
        """Zero both counters (for tests and long-running processes that report deltas)."""
        _gate.reset_counters()


metrics = Metrics()
