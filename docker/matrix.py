"""The Docker matrix: environments x scenarios -> verdicts, against expectations.

  python3 docker/matrix.py envs EXPECTATIONS
      one line per environment: NAME, a tab, then its `docker run` arguments
      (tab-separated), in the file's order.

  python3 docker/matrix.py report EXPECTATIONS RESULTS [--only-prefix P]
      reads RESULTS/<environment>/{probe,harness,pytest}.{out,err,rc}, prints
      the matrix, lists every cell that differs from its expectation, and exits
      1 if any does (0 otherwise).

EXPECTATIONS (docker/expectations.json):
  {"environments": {NAME: {"description": str, "docker_run": [arg, ...],
                           "expect": {SCENARIO: EXPECTED, ...}}, ...}}
EXPECTED is a verdict string, a list of acceptable verdicts, or "*" (any
outcome, for values that depend on the host). A scenario observed but not
listed, or listed but not observed, is a difference too.

Rows come from three commands run in each container:
  probe.py                 "probe:..." rows (user, ulimit -l, capabilities)
  python -m harness --json one row per scenario, its "verdict"
  python -m pytest -m restricted -q
                           the row "pytest -m restricted": PASS (exit 0),
                           FAIL (1), NO TESTS (5), ERROR (anything else)
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYTEST_ROW = "pytest -m restricted"
HARNESS_ROW = "harness"
ANY = "*"


@dataclass
class Cell:
    value: str
    detail: str = ""


@dataclass
class EnvResult:
    cells: dict[str, Cell] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def load_expectations(path: Path) -> dict[str, dict[str, Any]]:
    data = json.loads(path.read_text())
    envs = data.get("environments")
    if not isinstance(envs, dict) or not envs:
        raise SystemExit(f"{path}: no 'environments' object")
    for name, env in envs.items():
        if not isinstance(env.get("docker_run", []), list) or not isinstance(env.get("expect", {}), dict):
            raise SystemExit(f"{path}: environment {name!r} needs a 'docker_run' list and an 'expect' object")
    return envs


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _rc(path: Path) -> int | None:
    text = _read(path).strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _tail(text: str, lines: int = 3) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


def _json_rows(text: str) -> tuple[list[dict[str, Any]], int]:
    rows, junk = [], 0
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            junk += 1
            continue
        if isinstance(obj, dict) and isinstance(obj.get("scenario"), str) and "verdict" in obj:
            rows.append(obj)
        else:
            junk += 1
    return rows, junk


def _one_line(text: str, limit: int = 300) -> str:
    flat = " | ".join(part.strip() for part in str(text).splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _detail(row: dict[str, Any]) -> str:
    parts = []
    for key in ("expected", "observed", "reason"):
        value = row.get(key)
        if value not in (None, ""):
            parts.append(f"{key}: {_one_line(value)}")
    return "; ".join(parts)


def read_env(directory: Path, only_prefix: str | None) -> EnvResult:
    result = EnvResult()

    def add_rows(step: str, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            name = row["scenario"]
            if name in result.cells:
                result.errors.append(f"{step}: scenario {name!r} reported twice")
            result.cells[name] = Cell(str(row["verdict"]), _detail(row))

    # probe
    probe_rows, _ = _json_rows(_read(directory / "probe.out"))
    probe_rc = _rc(directory / "probe.rc")
    add_rows("probe", probe_rows)
    if probe_rc != 0 or not probe_rows:
        result.errors.append(f"probe exited {probe_rc}: {_tail(_read(directory / 'probe.err'))}")

    if only_prefix is not None:
        return result

    # harness
    harness_rc = _rc(directory / "harness.rc")
    rows, junk = _json_rows(_read(directory / "harness.out"))
    add_rows("harness", rows)
    failed = any(str(r["verdict"]) == "FAIL" for r in rows)
    problem = None
    if not rows:
        problem = "no scenario rows"
    elif harness_rc not in (0, 1):
        problem = f"exit status {harness_rc}"
    elif (harness_rc == 1) != failed:
        problem = f"exit status {harness_rc} with {'a' if failed else 'no'} FAIL verdict"
    elif junk:
        problem = f"{junk} stdout line(s) that are not scenario objects"
    if problem:
        err = _tail(_read(directory / "harness.err"))
        result.cells[HARNESS_ROW] = Cell("ERROR", f"{problem} (exit {harness_rc}){': ' + err if err else ''}")

    # pytest
    pytest_rc = _rc(directory / "pytest.rc")
    verdict = {0: "PASS", 1: "FAIL", 5: "NO TESTS"}.get(pytest_rc if pytest_rc is not None else -1, "ERROR")
    result.cells[PYTEST_ROW] = Cell(verdict, f"exit {pytest_rc}: {_tail(_read(directory / 'pytest.out'), 1)}")
    return result


def matches(value: str, expected: Any) -> bool:
    if expected == ANY:
        return True
    if isinstance(expected, list):
        return value in [str(e) for e in expected]
    return value == str(expected)


def show(expected: Any) -> str:
    if isinstance(expected, list):
        return " or ".join(str(e) for e in expected)
    return "any" if expected == ANY else str(expected)


def report(expect_path: Path, results: Path, only_prefix: str | None) -> int:
    envs = load_expectations(expect_path)
    observed = {name: read_env(results / name, only_prefix) for name in envs}

    def wanted(row: str) -> bool:
        return only_prefix is None or row.startswith(only_prefix)

    rows: list[str] = []
    for env in envs.values():
        for row in env.get("expect", {}):
            if wanted(row) and row not in rows:
                rows.append(row)
    for result in observed.values():
        for row in result.cells:
            if wanted(row) and row not in rows:
                rows.append(row)
    probe = [r for r in rows if r.startswith("probe:")]
    rest = [r for r in rows if not r.startswith("probe:") and r not in (HARNESS_ROW, PYTEST_ROW)]
    tail = [r for r in (HARNESS_ROW, PYTEST_ROW) if r in rows]
    rows = probe + rest + tail

    diffs: list[str] = []
    table: list[list[str]] = [["scenario", *envs]]
    for row in rows:
        line = [row]
        for name, env in envs.items():
            expect = env.get("expect", {})
            cell = observed[name].cells.get(row)
            value = cell.value if cell else "-"
            ok = True
            if row not in expect:
                ok = False
                why = "not in the expectations"
            elif cell is None:
                ok = False
                why = f"not reported; expected {show(expect[row])}"
            elif not matches(cell.value, expect[row]):
                ok = False
                why = f"expected {show(expect[row])}"
            if not ok:
                detail = f" [{cell.detail}]" if cell and cell.detail else ""
                diffs.append(f"{name} / {row}: {value}, {why}{detail}")
            line.append(value if ok else f"{value} !")
        table.append(line)

    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    print(f"Docker matrix ({expect_path.name}):")
    for name, env in envs.items():
        args = " ".join(env.get("docker_run", [])) or "(Docker's defaults)"
        print(f"  {name}: {args}")
    print()
    for line in table:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    for name, result in observed.items():
        for error in result.errors:
            diffs.append(f"{name}: {error}")
    cells = len(rows) * len(envs)
    print()
    if diffs:
        print(f"{len(diffs)} difference(s) from the expectations ({cells} cells):")
        for diff in diffs:
            print(f"  - {diff}")
        return 1
    print(f"all {cells} cells match the expectations")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "envs":
        for name, env in load_expectations(Path(argv[1])).items():
            print("\t".join([name, *env.get("docker_run", [])]))
        return 0
    if len(argv) >= 3 and argv[0] == "report":
        only = None
        if len(argv) == 5 and argv[3] == "--only-prefix":
            only = argv[4]
        elif len(argv) != 3:
            print(__doc__, file=sys.stderr)
            return 2
        return report(Path(argv[1]), Path(argv[2]), only)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
