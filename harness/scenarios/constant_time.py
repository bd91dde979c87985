"""Constant-time comparison: equal and unequal secrets take the same time (dudect).

Two classes of inputs, drawn at random for every measurement: secrets equal to
the candidate (class 0) and secrets differing from it in one byte (class 1),
the first byte in one run and the last byte in another. An early exit at the
first differing byte makes class 1 faster in the first run.

At C level, ``sm_equal`` alone is timed in C (TSC cycles), so the
interpreter's noise cannot hide a leak of a few cycles. Each call compares
the same two rows of memory whatever its class, the group's contents copied
into them untimed (``equal_ticks``): rows picked by class, at a distance
of 2 rows for one class and 1 or 3 for the other, gave |t| 6-20 at
10^6 calls once the rows left the cache now and then (a cache flush every
64 calls), as other work on a shared machine can. At Python level the
public comparisons are timed with ``perf_counter_ns``: ``Secret.equals`` on
each backend and ``Buffer.equal_to`` against Buffers and bytes, the borrow
machinery around the comparison included. Python-level timings depend on more
than content, and the design keeps all of it out of the classes:

- page addresses: one fixed secret per class shows |t| up to 30 from its pages
  alone, so every measurement draws from a few hundred objects, every
  object takes part in both classes, and the two objects of a call are
  never neighbouring mappings (``_calls``);
- the answer itself: CPython's handling of True and False differs by a few
  ns, which shows on calls of about 1 us (``Buffer.equal_to``: |t| 4-8 at
  10^5 calls, as much for a difference in the last byte as in the first).
  For those targets class 0 differs from the candidate at the other end of
  the data instead of not at all, so both classes answer False and differ
  only in where the first difference lies. Each timed call also follows an
  untimed identical call, so both classes meet trained branch predictors.

A run that reaches |t| = 4.5 is measured again with fresh inputs, up to
twice more, and counts as a leak only if every measurement reaches 4.5 (see
``measure``).

Lengths are not hidden: comparing secrets of unequal length returns at once,
as ``hmac.compare_digest`` does, and this scenario measures equal lengths.
"""

from __future__ import annotations

import gc
import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from securememory import SecretFactory
from securememory.memguard import Buffer
from securememory.memguard.timing import equal_ticks

from .. import child
from ..scenario import Environment, Result, scenario, verdict
from ..ttest import THRESHOLD, Outcome, TimingTest

SIZE = 64
POSITIONS = {"first": 0, "last": SIZE - 1}
C_MEASUREMENTS = 1_000_000
PY_MEASUREMENTS = 100_000
C_GROUPS = 32  # 2 rows of 64 bytes each: 4 KiB, in L1
GROUPS = 128  # 4 objects each: 512 objects, all in both classes
BATCH = 100_000
PY_BATCH = 10_000

SECRET_TARGETS = ("protected", "enclave", "legacy")
TARGETS = ("sm_equal", *SECRET_TARGETS, "buffer", "bytes")

# Python-level calls, where CPython's handling of a True answer measurably
# differs from a False one (|t| 4-8 at 10^5 calls, whatever the position of
# the difference, once a borrow costs a few microseconds): their classes are
# "differs at the other end" against "differs here", so that both answer False.
ANSWER_NEUTRAL = (*SECRET_TARGETS, "buffer", "bytes")

Run = tuple[str, str]  # (target, position)
EVERY_RUN: tuple[Run, ...] = tuple((t, p) for t in TARGETS for p in POSITIONS)
# The harness keeps to a few seconds: C both ways, the default backend and a
# bytes candidate on the first byte (where an early exit shows). The tests run
# every target both ways.
HARNESS_RUNS: tuple[Run, ...] = (
    ("sm_equal", "first"), ("sm_equal", "last"), ("protected", "first"), ("bytes", "first"),
)

_BIT = bytes(i & 1 for i in range(256))  # translate table: a random byte to a class label


def labels(n: int) -> bytes:
    """``n`` class labels, 0 or 1, each drawn at random."""
    return os.urandom(n).translate(_BIT)


def differing(data: bytes, position: int) -> bytes:
    """``data`` with the byte at ``position`` changed (XOR with a random nonzero byte)."""
    out = bytearray(data)
    out[position] ^= os.urandom(1)[0] % 255 + 1
    return bytes(out)


def group(size: int, position: int, shorter: bool = False) -> tuple[bytes, bytes]:
    """Random contents u and v: v differs from u at ``position``, or is u one byte shorter."""
    u = os.urandom(size)
    return u, u[:-1] if shorter else differing(u, position)


def measure_c(position: int, measurements: int) -> Outcome:
    """dudect over ``sm_equal`` alone, timed in C, every call on the same two rows of memory."""
    rows = b"".join(u + v for u, v in (group(SIZE, position) for _ in range(C_GROUPS)))
    test = TimingTest()
    equal_ticks(rows, SIZE, labels(BATCH), labels(BATCH))  # warm-up, discarded
    for done in range(0, measurements, BATCH):
        classes = labels(min(BATCH, measurements - done))
        test.add(equal_ticks(rows, SIZE, classes, labels(len(classes))), classes)
    return test.outcome()


def _mlock(env: Environment, pages: int) -> str | None:
    """The process policy when the pools fit in lockable memory, else "disabled".

    Locking happens at creation, never in a comparison; it is skipped only
    where the pools would not fit (64 KiB containers), so that they exist at all.
    """
    caps = env.caps
    room = caps.memlock_soft < 0 or caps.memlock_soft - caps.locked_bytes >= (pages + 16) * caps.page_size
    return None if caps.mlock_works and (caps.cap_ipc_lock or room) else "disabled"


Call = tuple[Callable[[Any], bool], Any]


@contextmanager
def _calls(env: Environment, target: str, position: int, shorter: bool) -> Iterator[tuple[list[Call], list[Call]]]:
    """The comparisons of each class, over groups of objects that each class uses equally.

    A group holds two contents, u and v (v differs from u at ``position``, or
    is one byte shorter), in objects a_u and a_v (compared) and b_u and b_v
    (passed). Class 0 makes the calls a_u(b_u) and a_v(b_v), class 1 a_u(b_v)
    and a_v(b_u): every object takes part once in each class, so nothing
    about one object (its pages, its address) can tell the classes apart.

    For the Python-level targets (``ANSWER_NEUTRAL``) every b
    also differs from its content at the other end of the data, so both
    classes answer False and differ only in where the first difference lies.
    """
    mlock = _mlock(env, 4 * GROUPS)
    with ExitStack() as stack:
        if target in SECRET_TARGETS:
            factory = SecretFactory(target, mlock=mlock)

            def make_b(data: bytes) -> Any:
                return stack.enter_context(factory.new(bytearray(data)))

            def make_a(data: bytes) -> Callable[[Any], bool]:
                return make_b(data).equals  # type: ignore[no-any-return]
        else:

            def make_buffer(data: bytes) -> Buffer:
                return stack.enter_context(Buffer.from_bytes(bytearray(data), mlock=mlock))

            def make_a(data: bytes) -> Callable[[Any], bool]:
                return make_buffer(data).equal_to

            def make_b(data: bytes) -> Any:
                return make_buffer(data) if target == "buffer" else data

        # Where the answer's own cost shows, every b also differs at the other end.
        ref = SIZE - 1 - position if target in ANSWER_NEUTRAL and not shorter else None

        def passed(data: bytes) -> Any:
            return make_b(data if ref is None else differing(data, ref))

        # Every a first, then every b: a compared pair is never a pair of
        # neighbouring mappings, whose mprotects the kernel merges (legacy
        # regions have no guard pages between them: |t| 50 otherwise). The b
        # objects are made in a random order, so that the distance between
        # the two objects of a call is as random for one class as the other.
        contents = [group(SIZE, position, shorter) for _ in range(GROUPS)]
        a = [(make_a(u), make_a(v)) for u, v in contents]
        made: dict[tuple[int, int], Any] = {}
        for g, k in random.sample([(g, k) for g in range(GROUPS) for k in (0, 1)], 2 * GROUPS):
            made[g, k] = passed(contents[g][k])
        b = [(made[g, 0], made[g, 1]) for g in range(GROUPS)]
        calls: tuple[list[Call], list[Call]] = ([], [])
        for (a_u, a_v), (b_u, b_v) in zip(a, b, strict=True):
            calls[0].extend([(a_u, b_u), (a_v, b_v)])
            calls[1].extend([(a_u, b_v), (a_v, b_u)])
        yield calls


def measure_python(env: Environment, target: str, position: int, measurements: int, shorter: bool = False) -> Outcome:
    """dudect over one public comparison, timed from Python.

    The objects are made anew for every batch of measurements, so that no
    accident of one allocation builds up over the whole run. ``shorter``
    compares secrets of unequal length in class 1: the documented early
    return, which this test must see.
    """
    test = TimingTest()
    gc.disable()
    try:
        for done in range(0, measurements, PY_BATCH):
            with _calls(env, target, position, shorter) as calls:
                answers = [{compare(other) for compare, other in calls[c]} for c in (0, 1)]
                if answers != [{target not in ANSWER_NEUTRAL or shorter}, {False}]:
                    raise AssertionError(f"{target}: wrong answers from the comparison itself")
                classes = labels(min(PY_BATCH, measurements - done))
                test.add(_timed(calls, classes), classes)
    finally:
        gc.enable()
    return test.outcome()


def _timed(calls: tuple[list[Call], list[Call]], classes: bytes) -> list[int]:
    """Nanoseconds of one call of class ``c`` for each label ``c``, cycling through each class's calls."""
    clock = time.perf_counter_ns
    n = len(calls[0])
    ticks = []
    for i, c in enumerate(classes):
        compare, other = calls[c][i % n]
        compare(other)  # untimed: the branch predictors have then just seen this class's result
        start = clock()
        compare(other)
        ticks.append(clock() - start)
    return ticks


@dataclass(frozen=True)
class Measurement:
    """One run; further independent measurements while each reached the threshold."""

    target: str
    position: str
    outcomes: tuple[Outcome, ...]

    @property
    def leaks(self) -> bool:
        return all(o.leaks for o in self.outcomes)

    def describe(self) -> str:
        return f"{self.target}/{self.position} " + ", again ".join(o.describe() for o in self.outcomes)


MEASUREMENTS = 3  # per run at most: the first, and two more while each reaches the threshold
PAUSE = 1.0  # seconds before measuring again


def measure(
    env: Environment, runs: tuple[Run, ...], c_measurements: int, py_measurements: int, shorter: bool = False
) -> Iterator[Measurement]:
    """Each (target, position) run, in this process.

    A run that reaches |t| = 4.5 is measured again with fresh inputs, up to
    MEASUREMENTS times in all, and counts as a leak only if every measurement
    reaches it: on a shared machine a burst of noise pushes about 1 run in 20
    over, and about 1 in 40 twice in a row, while a leak shows every time.
    """
    for target, position in runs:
        outcomes: list[Outcome] = []
        while len(outcomes) < MEASUREMENTS and (not outcomes or outcomes[-1].leaks):
            if outcomes:
                time.sleep(PAUSE)  # past the burst of noise, which lasts seconds here
            if target == "sm_equal":
                outcomes.append(measure_c(POSITIONS[position], c_measurements))
            else:
                outcomes.append(measure_python(env, target, POSITIONS[position], py_measurements, shorter))
        yield Measurement(target, position, tuple(outcomes))


def constant_time(
    env: Environment,
    runs: tuple[Run, ...] = HARNESS_RUNS,
    c_measurements: int = C_MEASUREMENTS,
    py_measurements: int = PY_MEASUREMENTS,
    shorter: bool = False,
) -> Result:
    """PASS when no run leaks (|t| >= 4.5, confirmed); FAIL with each run's t and count otherwise."""
    name = "constant_time"
    expected = f"|t| < {THRESHOLD}: C {c_measurements:,}, Python {py_measurements:,} per run"

    def fn(ctx: child.Context) -> None:
        for m in measure(env, runs, c_measurements, py_measurements, shorter):
            ctx.report({"target": m.target, "position": m.position, "outcomes": [asdict(o) for o in m.outcomes]})

    outcome = child.run(fn, env=env.child_env, timeout=1800)
    found = [
        Measurement(r["target"], r["position"], tuple(Outcome(**o) for o in r["outcomes"])) for r in outcome.reports
    ]
    complete = len(found) == len(runs) and outcome.exit_code == 0
    leaks = [m for m in found if m.leaks]
    observed = "; ".join(m.describe() for m in found)
    if _mlock(env, 4 * GROUPS) is not None and any(t != "sm_equal" for t, _ in runs):
        observed += " (Python-level objects unlocked: more than RLIMIT_MEMLOCK holds)"
    if not complete:
        observed += f"; incomplete: {outcome.describe()}: {outcome.stderr[-300:]}"
    reason = f"leak: {', '.join(f'{m.target}/{m.position}' for m in leaks)}" if leaks else ""
    return verdict(name, complete and not leaks, expected, observed, reason)


scenario("constant_time", "equal and unequal secrets compare in the same time (dudect, Welch's t < 4.5)")(
    constant_time
)
