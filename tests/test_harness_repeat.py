"""No timing luck: every scenario passes 20 runs in a row, on the default and the restricted profile.

SECUREMEMORY_HARNESS_RUNS sets another count (the interpreter matrix runs 2
on each interpreter; the host's CI keeps 20).
"""

from __future__ import annotations

import os

import pytest

from harness import cli, restrict
from harness.scenario import PASS, SCENARIOS, UNSUPPORTED, Result

RUNS = int(os.environ.get("SECUREMEMORY_HARNESS_RUNS", "20"))
# constant_time aggregates 10^6 timed calls per run: timed here beside the
# other test workers it would measure their noise. Its 20 runs are a step of
# their own, alone on the machine (.ci/run sets SECUREMEMORY_CONSTANT_TIME_RUNS=20
# and runs both profiles' tests serially).
RUNS_OF = {"constant_time": int(os.environ.get("SECUREMEMORY_CONSTANT_TIME_RUNS", "0"))}


def _consistent(results: list[Result], runs: int) -> None:
    verdicts = {r.verdict for r in results}
    assert len(results) == runs
    assert verdicts in ({PASS}, {UNSUPPORTED}), [r for r in results if r.verdict != PASS]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_passes_every_run(name: str) -> None:
    runs = RUNS_OF.get(name, RUNS)
    if not runs:
        pytest.skip(f"{name} is repeated alone: SECUREMEMORY_CONSTANT_TIME_RUNS=20, no -n")
    _, results = cli.run_all([name] * runs)
    _consistent(results, runs)


@pytest.mark.slow
@pytest.mark.restricted
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_passes_every_run_restricted(name: str) -> None:
    reason = restrict.supported()
    if reason:
        pytest.skip(reason)
    runs = RUNS_OF.get(name, RUNS)
    if not runs:
        pytest.skip(f"{name} is repeated alone: SECUREMEMORY_CONSTANT_TIME_RUNS=20, no -n")
    _, results = cli.run_restricted([name] * runs)
    _consistent(results, runs)
