"""Scenarios and their verdicts.

A scenario states what it expects, runs in fresh child processes, and returns
a Result: PASS when the observation matches, FAIL when it does not,
UNSUPPORTED (with the reason) when this environment cannot run it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from securememory.memcall import Capabilities, capabilities

PASS = "PASS"
FAIL = "FAIL"
UNSUPPORTED = "UNSUPPORTED"


@dataclass(frozen=True)
class Result:
    scenario: str
    verdict: str
    expected: str
    observed: str
    reason: str = ""
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Environment:
    """What the scenarios need to know about this machine, measured once."""

    caps: Capabilities

    @property
    def child_env(self) -> dict[str, str]:
        """Environment for scenario children: best_effort where mlock cannot work at all."""
        if self.caps.mlock_works or os.environ.get("SECUREMEMORY_MLOCK"):
            return {}
        return {"SECUREMEMORY_MLOCK": "best_effort"}

    @property
    def note(self) -> str:
        return "" if self.caps.mlock_works else " (pages unlocked: mlock is not permitted here)"


def environment() -> Environment:
    return Environment(capabilities())


ScenarioFn = Callable[[Environment], Result]


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    fn: ScenarioFn

    def run(self, env: Environment) -> Result:
        """The scenario's Result, with the seconds it took."""
        started = time.monotonic()
        try:
            result = self.fn(env)
        except Exception as e:  # a broken scenario is a failure, never a pass
            result = Result(self.name, FAIL, "scenario runs", f"harness error: {type(e).__name__}: {e}")
        return replace(result, seconds=round(time.monotonic() - started, 3))


SCENARIOS: dict[str, Scenario] = {}


def scenario(name: str, summary: str) -> Callable[[ScenarioFn], ScenarioFn]:
    """Register a scenario under ``name``."""

    def register(fn: ScenarioFn) -> ScenarioFn:
        if name in SCENARIOS:
            raise ValueError(f"duplicate scenario {name}")
        SCENARIOS[name] = Scenario(name, summary, fn)
        return fn

    return register


def verdict(name: str, ok: bool, expected: str, observed: str, reason: str = "") -> Result:
    return Result(name, PASS if ok else FAIL, expected, observed, reason)


def unsupported(name: str, expected: str, reason: str) -> Result:
    return Result(name, UNSUPPORTED, expected, "not run", reason)
