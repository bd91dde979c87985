"""Welch's t-test between two classes of timings, cropped as dudect crops them.

dudect (Reparaz, Balasch, Verbauwhede, "Dude, is my code constant time?",
2017) times an operation on two classes of inputs drawn at random, then
compares the classes with Welch's t-test, once on every measurement and once
per crop that drops the measurements above a percentile of both classes
together (preemptions and interrupts only ever add time). A leak is declared
when any of those tests reaches |t| >= 4.5.

The test is online: each measurement only increments its class's histogram of
tick counts, and the moments of every crop are read off the histograms exactly
(integer sums, no rounding), in memory that does not grow with the count.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

THRESHOLD = 4.5

# dudect's crop percentiles 1 - 0.5 ** (10 * (i + 1) / 100), every tenth one.
CROPS = tuple(1 - 0.5**k for k in range(1, 11))

_FLIP = bytes([1, 0]) + bytes(254)  # translate table swapping labels 0 and 1


@dataclass(frozen=True)
class Outcome:
    """The largest |t| over the uncropped test and every crop, and where it was found."""

    t: float
    crop: float | None
    measurements: int

    @property
    def leaks(self) -> bool:
        return not abs(self.t) < THRESHOLD  # a NaN counts as a leak, never as a pass

    def describe(self) -> str:
        where = "uncropped" if self.crop is None else f"crop {self.crop * 100:.2f}%"
        return f"|t| {abs(self.t):.2f} ({where}) over {self.measurements:,}"


class _Moments:
    """Cumulative count, sum and sum of squares of one class, by ascending tick value."""

    def __init__(self, histogram: Counter[int]) -> None:
        self.values = sorted(histogram)
        counts = [histogram[v] for v in self.values]
        self.n = list(itertools.accumulate(counts))
        self.s1 = list(itertools.accumulate(v * c for v, c in zip(self.values, counts, strict=True)))
        self.s2 = list(itertools.accumulate(v * v * c for v, c in zip(self.values, counts, strict=True)))

    def upto(self, limit: int | None) -> tuple[int, int, int]:
        """(count, sum, sum of squares) of the measurements <= limit (all when None)."""
        i = len(self.values) if limit is None else bisect.bisect_right(self.values, limit)
        return (self.n[i - 1], self.s1[i - 1], self.s2[i - 1]) if i else (0, 0, 0)


def welch(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """Welch's t of two classes given as (count, sum, sum of squares); 0.0 when either has < 2."""
    (na, sa, qa), (nb, sb, qb) = a, b
    if na < 2 or nb < 2:
        return 0.0
    # n * (n - 1) * variance, exact in integers, then the standard error squared.
    va = (na * qa - sa * sa) / (na * na * (na - 1))
    vb = (nb * qb - sb * sb) / (nb * nb * (nb - 1))
    diff = sa / na - sb / nb
    if va + vb == 0:
        return 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return diff / math.sqrt(va + vb)


class TimingTest:
    """Two classes of timings (0 and 1), accumulated online, tested as dudect tests them."""

    def __init__(self) -> None:
        self._histograms: tuple[Counter[int], Counter[int]] = (Counter(), Counter())

    def add(self, ticks: Iterable[int], classes: bytes) -> None:
        """Add measurement i of ``ticks`` to class ``classes[i]`` (each byte 0 or 1)."""
        ticks = list(ticks)
        if len(ticks) != len(classes) or classes.translate(None, b"\x00\x01"):
            raise ValueError("one class label, 0 or 1, per measurement")
        self._histograms[1].update(itertools.compress(ticks, classes))
        self._histograms[0].update(itertools.compress(ticks, classes.translate(_FLIP)))

    @property
    def measurements(self) -> int:
        return sum(h.total() for h in self._histograms)

    def limits(self) -> list[int]:
        """The tick value at each crop percentile of both classes together."""
        both = self._histograms[0] + self._histograms[1]
        values = sorted(both)
        cumulative = list(itertools.accumulate(both[v] for v in values))
        total = cumulative[-1] if cumulative else 0
        return [values[min(bisect.bisect_left(cumulative, p * total), len(values) - 1)] for p in CROPS] if total else []

    def outcome(self) -> Outcome:
        """The test with the largest |t|: uncropped, or cropped at one of CROPS."""
        moments = [_Moments(h) for h in self._histograms]
        crops: list[tuple[float | None, int | None]] = [(None, None), *zip(CROPS, self.limits(), strict=False)]
        tests = [(welch(moments[0].upto(limit), moments[1].upto(limit)), crop) for crop, limit in crops]
        t, crop = max(tests, key=lambda tc: abs(tc[0]) if not math.isnan(tc[0]) else math.inf)
        return Outcome(t, crop, self.measurements)

