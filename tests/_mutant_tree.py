"""A copy of the library with one catalogue mutation applied and its C extension rebuilt.

``python tests/_mutant_tree.py NAME --runs 20`` runs ``python -m harness --only
SCENARIO...`` that many times against the mutant (NAME ``none``: the real code)
and prints how many runs the harness failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.mutations import MUTATIONS, Mutation  # noqa: E402

COPIED = ("securememory", "harness")  # no pyproject.toml: the compile below must not read it
# _native is rebuilt from the (mutated) copy; _gate is copied as built, so a
# mutation of its sources is refused rather than silently not applied.
UNCOPIED = shutil.ignore_patterns("__pycache__", "_native.*.so", "*.o", "_native.c")
GATE_SOURCES = ("securememory/gatemodule.c", "securememory/gate.c", "securememory/gate.h", "securememory/memcall/")


def by_name(name: str) -> Mutation | None:
    """The catalogue entry called ``name``; None for ``none`` (the real code)."""
    if name == "none":
        return None
    (found,) = [m for m in MUTATIONS if m.name == name]
    return found


def build(dest: Path, mutation: Mutation | None) -> Path:
    """Copy the library into ``dest``, apply ``mutation`` and compile the extension there."""
    for item in COPIED:
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, dest / item, ignore=UNCOPIED)
        else:
            shutil.copy2(src, dest / item)
    if mutation is not None:
        if mutation.path.startswith(GATE_SOURCES):
            raise ValueError(f"{mutation.name}: {mutation.path} is compiled into _gate, which is not rebuilt here")
        target = dest / mutation.path
        text = target.read_text()
        if text.count(mutation.old) != 1:
            raise ValueError(f"{mutation.name}: the text to replace must occur exactly once in {mutation.path}")
        target.write_text(text.replace(mutation.old, mutation.new))
    subprocess.run(
        [sys.executable, "-c", "from securememory._build import ffibuilder; ffibuilder.compile()"],
        cwd=dest, check=True, capture_output=True,
    )
    return dest


def harness(tree: Path, scenarios: tuple[str, ...]) -> list[dict[str, str]]:
    """Run the harness of ``tree`` on its own library; one result per scenario."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-m", "harness", "--json", "--only", *scenarios],
        cwd=tree, env=env, capture_output=True, text=True, check=False,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def imports_from(tree: Path) -> Path:
    """Where ``import securememory`` resolves when run as the harness of ``tree`` is."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", "import securememory._native as n; print(n.__file__)"],
        cwd=tree, env=env, capture_output=True, text=True, check=True,
    )
    return Path(out.stdout.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", help="a mutation name from harness/mutations.py, or none")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--dir", type=Path, required=True, help="an empty directory for the copy")
    args = parser.parse_args()
    mutation = by_name(args.name)
    tree = build(args.dir, mutation)
    scenarios = mutation.scenarios if mutation else ("constant_time",)
    failed = 0
    for run in range(1, args.runs + 1):
        results = harness(tree, scenarios)
        bad = len(results) != len(scenarios) or any(r["verdict"] != "PASS" for r in results)
        failed += bad
        for r in results:
            print(f"run {run}: {r['scenario']} {r['verdict']}: {r['observed']}", flush=True)
    print(f"{args.name}: harness failed {failed}/{args.runs} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
