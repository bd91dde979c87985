"""The harness: every scenario holds here; the mutation catalogue names them all and applies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import cli, mutate
from harness.mutations import MUTATIONS
from harness.scenario import FAIL, PASS, SCENARIOS, UNSUPPORTED, Result, Scenario, environment

REPO = Path(__file__).resolve().parent.parent  # `python -m harness` is the repository's name for it


@pytest.fixture(scope="module")
def env():  # type: ignore[no-untyped-def]
    return environment()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_holds(name: str, env) -> None:  # type: ignore[no-untyped-def]
    result = SCENARIOS[name].run(env)
    if result.verdict == UNSUPPORTED:
        pytest.skip(f"{name} unsupported here: {result.reason}")
    assert result.verdict == PASS, result


def test_every_scenario_is_named_by_a_mutation() -> None:
    """Each scenario is expected to catch at least one catalogue mutation (the campaign proves it)."""
    named = {s for m in MUTATIONS for s in m.scenarios}
    assert set(SCENARIOS) <= named, sorted(set(SCENARIOS) - named)
    assert named <= set(SCENARIOS), sorted(named - set(SCENARIOS))


def test_catalogue_applies_to_this_tree() -> None:
    assert len({m.name for m in MUTATIONS}) == len(MUTATIONS)
    stale = {m.name: why for m in MUTATIONS if (why := mutate.check(m))}
    assert not stale, stale


def test_cli_list() -> None:
    out = subprocess.run([sys.executable, "-m", "harness", "--list"], capture_output=True, text=True, check=True,
                         cwd=REPO)
    assert [line.split()[0] for line in out.stdout.splitlines()] == list(SCENARIOS)


def test_installed_name_runs_from_anywhere(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "securememory.harness", "--list"], capture_output=True, text=True,
                         check=True, cwd=tmp_path)
    assert [line.split()[0] for line in out.stdout.splitlines()] == list(SCENARIOS)
    bare = subprocess.run([sys.executable, "-I", "-c", "import harness"], capture_output=True, cwd=tmp_path)
    assert bare.returncode != 0  # the bare name is the repository's, never installed


def test_cli_json_only() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "harness", "--json", "--only", "overflow_buffer", "use_after_close"],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["scenario"] for r in rows] == ["overflow_buffer", "use_after_close"]
    assert {"scenario", "verdict", "expected", "observed", "reason"} <= set(rows[0])
    assert out.returncode == 0 and all(r["verdict"] == PASS for r in rows)


def test_cli_exit_status_on_fail(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    broken = Scenario("broken", "always fails", lambda e: Result("broken", FAIL, "x", "y"))
    monkeypatch.setitem(SCENARIOS, "broken", broken)
    assert cli.main(["--only", "broken", "overflow_buffer"]) == 1
    assert "broken" in capsys.readouterr().out


def test_cli_unknown_scenario() -> None:
    out = subprocess.run([sys.executable, "-m", "harness", "--only", "nope"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2 and "unknown scenario" in out.stderr


def test_restricted_profile_runs_in_a_child_without_the_capability() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "harness", "--profile", "restricted", "--only", "locked", "restricted_require_64k"],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert "CAP_IPC_LOCK        not held" in out.stdout, out.stdout
    assert "soft 65536 bytes" in out.stdout
    assert out.returncode == 0, out.stdout + out.stderr
