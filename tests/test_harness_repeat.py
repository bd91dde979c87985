"""No timing luck: every scenario passes 20 runs in a row, on the default and the restricted profile."""

from __future__ import annotations

import pytest

from harness import cli, restrict
from harness.scenario import PASS, SCENARIOS, UNSUPPORTED, Result

RUNS = 20


def _consistent(results: list[Result]) -> None:
    verdicts = {r.verdict for r in results}
    assert len(results) == RUNS
    assert verdicts in ({PASS}, {UNSUPPORTED}), [r for r in results if r.verdict != PASS]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_passes_every_run(name: str) -> None:
    _, results = cli.run_all([name] * RUNS)
    _consistent(results)


@pytest.mark.slow
@pytest.mark.restricted
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_passes_every_run_restricted(name: str) -> None:
    reason = restrict.supported()
    if reason:
        pytest.skip(reason)
    _, results = cli.run_restricted([name] * RUNS)
    _consistent(results)
