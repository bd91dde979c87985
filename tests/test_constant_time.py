"""Constant-time comparison: the statistics, the C timing loop, every comparison timed, the mutants caught."""

from __future__ import annotations

import errno
import math
import random
import statistics

import pytest

from harness.scenario import PASS, environment
from harness.scenarios import constant_time as ct
from harness.ttest import CROPS, THRESHOLD, TimingTest, welch
from securememory._native import ffi, lib
from securememory.errors import InvalidArgumentError, InvalidTypeError
from securememory.memguard.timing import MAX_SIZE, equal_ticks


def sums(values: list[int]) -> tuple[int, int, int]:
    return len(values), sum(values), sum(v * v for v in values)


def test_welch_is_the_textbook_formula() -> None:
    rng = random.Random(1)
    a = [rng.randrange(900, 1100) for _ in range(5000)]
    b = [rng.randrange(905, 1200) for _ in range(3000)]
    expected = (statistics.mean(a) - statistics.mean(b)) / math.sqrt(
        statistics.variance(a) / len(a) + statistics.variance(b) / len(b)
    )
    assert welch(sums(a), sums(b)) == pytest.approx(expected, rel=1e-9)
    assert welch(sums([5, 5]), sums([5, 5])) == 0.0
    assert welch(sums([5, 5]), sums([6, 6])) == -math.inf
    assert welch(sums([5]), sums([6, 7])) == 0.0


def test_crops_drop_what_lies_above_each_percentile() -> None:
    test = TimingTest()
    values = list(range(1, 1001))
    test.add(values, bytes(i % 2 for i in range(1000)))
    assert test.limits() == [math.ceil(p * 1000) for p in CROPS]
    assert test.measurements == 1000


def test_a_shift_between_the_classes_is_a_leak() -> None:
    rng = random.Random(2)
    classes = bytes(rng.getrandbits(1) for _ in range(20000))
    test = TimingTest()
    test.add([rng.randrange(1000, 1100) + 3 * c for c in classes], classes)
    outcome = test.outcome()
    assert outcome.leaks and abs(outcome.t) > THRESHOLD


def test_labels_must_be_zero_or_one_one_per_measurement() -> None:
    with pytest.raises(ValueError):
        TimingTest().add([1, 2], b"\x00\x02")
    with pytest.raises(ValueError):
        TimingTest().add([1, 2], b"\x00")


def test_equal_ticks_times_every_call() -> None:
    u, v = ct.group(16, 0)
    classes = ct.labels(1000)
    ticks = equal_ticks(u + v, 16, classes, ct.labels(1000))
    assert len(ticks) == 1000 and all(isinstance(t, int) and 0 <= t < 10**9 for t in ticks)
    assert equal_ticks(u + v, 16, b"", b"") == []
    rows = b"".join(u + v for u, v in (ct.group(MAX_SIZE, MAX_SIZE - 1) for _ in range(3)))
    assert len(equal_ticks(rows, MAX_SIZE, classes, ct.labels(1000))) == 1000


def test_sm_equal_ticks_refuses_rows_longer_than_its_sides() -> None:
    rows = bytes(2 * (MAX_SIZE + 1))
    ticks = ffi.new("uint64_t[]", 1)
    assert lib.sm_equal_ticks(rows, 1, MAX_SIZE + 1, b"\x00", b"\x00", 1, ticks) == errno.EINVAL
    assert lib.sm_equal_ticks(rows, 0, 1, b"\x00", b"\x00", 1, ticks) == errno.EINVAL
    assert lib.sm_equal_ticks(rows, 1, 0, b"\x00", b"\x00", 1, ticks) == errno.EINVAL


ROWS = b"abcd"  # one group of two 2-byte rows


@pytest.mark.parametrize(
    ("rows", "size", "classes", "variants", "error"),
    [
        (ROWS + b"ab", 2, b"\x00", b"\x00", InvalidArgumentError),  # not whole groups
        (ROWS[:2], 2, b"\x00", b"\x00", InvalidArgumentError),
        (ROWS, 0, b"\x00", b"\x00", InvalidArgumentError),
        (bytes(2 * MAX_SIZE + 2), MAX_SIZE + 1, b"\x00", b"\x00", InvalidArgumentError),
        (b"", 2, b"\x00", b"\x00", InvalidArgumentError),
        (ROWS, 2, b"\x02", b"\x00", InvalidArgumentError),
        (ROWS, 2, b"\x00", b"\x00\x01", InvalidArgumentError),
        (ROWS, 2, memoryview(b"\x00"), b"\x00", InvalidTypeError),
        (ROWS, 2.0, b"\x00", b"\x00", InvalidTypeError),
        ("abcdefgh", 2, b"\x00", b"\x00", InvalidTypeError),
        (7, 2, b"\x00", b"\x00", InvalidTypeError),
    ],
)
def test_equal_ticks_refuses_bad_input(rows: object, size: object, classes: object, variants: object,
                                       error: type) -> None:
    with pytest.raises(error):
        equal_ticks(rows, size, classes, variants)  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("run", ct.EVERY_RUN, ids=[f"{t}-{p}" for t, p in ct.EVERY_RUN])
def test_every_comparison_is_constant_time(run: ct.Run) -> None:
    # timed beside the suite's other workers: measured afresh up to twice before a leak is believed
    for _ in range(3):
        result = ct.constant_time(environment(), runs=(run,), c_measurements=4 * ct.C_MEASUREMENTS)
        if result.verdict == PASS:
            break
    assert result.verdict == PASS, result
