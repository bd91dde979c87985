"""The mutation runner: staleness, application, the table and the exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import mutate
from harness.mutations import MUTATIONS, Mutation

ROOT = Path(__file__).resolve().parent.parent


def _mutation(old: str, path: str = "securememory/memguard/wipe.py") -> Mutation:
    return Mutation("probe", "probe", path, old, "replaced", ("use_after_close",))


def test_stale_when_text_is_missing_or_repeated() -> None:
    assert "occurs 0 times" in (mutate.check(_mutation("no such text anywhere")) or "")
    assert "occurs" in (mutate.check(_mutation("import")) or "")  # many times
    assert "does not exist" in (mutate.check(_mutation("x", "securememory/nope.py")) or "")
    assert mutate.check(MUTATIONS[0]) is None


def test_apply_changes_one_copy_only(tmp_path: Path) -> None:
    mutate.copy_tree(tmp_path)
    m = MUTATIONS[0]
    mutate.apply(m, tmp_path)
    assert m.new in (tmp_path / m.path).read_text()
    assert m.old in (ROOT / m.path).read_text()
    assert not list(tmp_path.rglob("*.so"))


def test_stale_entry_is_reported_without_building(tmp_path: Path) -> None:
    campaign = mutate.Campaign(tmp_path, {"use_after_close"})
    outcome = campaign.run(_mutation("no such text anywhere"))
    assert outcome.status == mutate.STALE
    unknown = Mutation("probe", "probe", MUTATIONS[0].path, MUTATIONS[0].old, "x", ("no_such_scenario",))
    assert campaign.run(unknown).status == mutate.STALE


def test_table_names_catchers_and_failures() -> None:
    rows = [mutate.Outcome("a", "p", "f", mutate.CAUGHT, ["s1", "s2"]),
            mutate.Outcome("b", "p", "f", mutate.SURVIVED, reason="all 3 scenarios pass")]
    text = mutate.table(rows)
    assert "s1, s2" in text and "SURVIVED all 3 scenarios pass" in text


def test_unknown_mutation_is_a_usage_error() -> None:
    out = subprocess.run([sys.executable, "-m", "harness.mutate", "--only", "nope"], capture_output=True, text=True)
    assert out.returncode == 2 and "unknown mutation" in out.stderr


@pytest.mark.slow
def test_campaign_catches_a_mutation_and_reports_a_harmless_one(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "harness.mutate", "--json", "--only", "freeze_noop", "rekey_noop"],
                         capture_output=True, text=True, cwd=ROOT, check=False)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["name"], r["status"]) for r in rows] == [("freeze_noop", "CAUGHT"), ("rekey_noop", "CAUGHT")], out
    assert rows[0]["caught_by"] == ["frozen_write"] and rows[1]["caught_by"] == ["rekey"]
    assert out.returncode == 0

    campaign = mutate.Campaign(tmp_path, mutate.list_scenarios())
    campaign.prepare(["use_after_close"])
    harmless = Mutation("harmless", "none", "securememory/memguard/wipe.py",
                        '"""Bytes-like sources:', '"""Bytes-like sources (docstring changed):', ("use_after_close",))
    outcome = campaign.run(harmless)
    assert outcome.status == mutate.SURVIVED, outcome


def test_protection_for_newer_interpreters_is_not_needed_here(tmp_path: Path) -> None:
    campaign = mutate.Campaign(tmp_path, {"use_after_close"})
    future = Mutation("future", "probe", MUTATIONS[0].path, MUTATIONS[0].old, "x", ("use_after_close",), python=(99, 0))
    outcome = campaign.run(future)
    assert outcome.status == mutate.NOT_NEEDED and "99.0" in outcome.reason
    past = Mutation("past", "probe", MUTATIONS[0].path, MUTATIONS[0].old, "x", ("use_after_close",),
                    python=(3, 0), python_until=(3, 1))
    assert campaign.run(past).status == mutate.NOT_NEEDED
    assert [p.name for p in tmp_path.iterdir()] == ["objects"], "no copy of the tree was made for it"


def test_newer_only_selects_the_interpreter_specific_entries() -> None:
    newer = mutate.select(None, newer_only=True)
    assert [m.name for m in newer] == [m.name for m in MUTATIONS if m.python > (3, 11)]
    assert "coffer_lock_not_held" in [m.name for m in newer]  # CPython 3.14's with statement
    assert mutate.select(["freeze_noop"], newer_only=True) == []
