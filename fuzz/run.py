"""Run the atheris fuzz targets, each in its own process, for a bounded time.

    python fuzz/run.py --seconds N [target ...]

Each target keeps its corpus in fuzz/corpus/<target>/ and writes crashing
inputs to fuzz/artifacts/<target>/. Prints executions and executions per
second per target.

exit status:
  0  every target ran clean
  1  a finding: a crash, an uncaught exception, a failed invariant, a timeout
     or an out-of-memory (inputs saved under fuzz/artifacts/<target>/)
  2  bad arguments
  3  the fuzzer is not installed: atheris is missing
     (python -m pip install -e '.[dev]', or python -m pip install atheris)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
EXIT_CLEAN, EXIT_FINDING, EXIT_USAGE, EXIT_NO_FUZZER = 0, 1, 2, 3
TARGETS = sorted(p.stem for p in (FUZZ / "targets").glob("*.py") if not p.stem.startswith("_"))


@dataclass
class Result:
    target: str
    returncode: int
    executions: int
    per_second: int
    seconds: float
    log: str

    @property
    def finding(self) -> bool:
        return self.returncode != 0


def _stat(log: str, name: str) -> int:
    found = re.findall(rf"stat::{name}:\s+(\d+)", log)
    return int(found[-1]) if found else 0


def run_target(target: str, seconds: int, extra: list[str]) -> Result:
    corpus = FUZZ / "corpus" / target
    artifacts = FUZZ / "artifacts" / target
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        str(FUZZ / "targets" / f"{target}.py"),
        str(corpus),
        f"-max_total_time={seconds}",
        f"-artifact_prefix={artifacts}/",
        "-timeout=20",
        "-rss_limit_mb=4096",
        "-print_final_stats=1",
        *extra,
    ]
    env = dict(os.environ, PYTHONPATH=str(ROOT), SECUREMEMORY_MLOCK=os.environ.get("SECUREMEMORY_MLOCK", ""))
    if not env["SECUREMEMORY_MLOCK"]:
        del env["SECUREMEMORY_MLOCK"]
    start = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="replace", timeout=seconds * 3 + 120, check=False,
    )
    elapsed = time.monotonic() - start
    log = proc.stdout
    executions = _stat(log, "number_of_executed_units")
    if not executions:
        done = re.findall(r"Done (\d+) runs", log)
        executions = int(done[-1]) if done else 0
    per_second = _stat(log, "average_exec_per_sec") or int(executions / max(elapsed, 1e-9))
    return Result(target, proc.returncode, executions, per_second, elapsed, log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=30, help="time per target (default 30)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="targets run at once")
    parser.add_argument("--libfuzzer", action="append", default=[], help="extra libFuzzer flag, e.g. -runs=1000")
    parser.add_argument("targets", nargs="*", help=f"targets to run (default all: {', '.join(TARGETS)})")
    args = parser.parse_args(argv)
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {', '.join(TARGETS)}")
    targets = args.targets or TARGETS
    if importlib.util.find_spec("atheris") is None:
        print(
            "fuzz/run.py: atheris is not installed, so nothing was fuzzed; install the fuzz extras with\n"
            "    python -m pip install -e '.[dev]'    (or: python -m pip install atheris)",
            file=sys.stderr,
        )
        return EXIT_NO_FUZZER
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda t: run_target(t, args.seconds, args.libfuzzer), targets))
    print(f"{'target':<16} {'executions':>11} {'exec/s':>8} {'seconds':>8}  result")
    for r in results:
        verdict = f"FINDING (exit {r.returncode})" if r.finding else "clean"
        print(f"{r.target:<16} {r.executions:>11} {r.per_second:>8} {r.seconds:>8.1f}  {verdict}")
    findings = [r for r in results if r.finding]
    for r in findings:
        print(f"\n==== {r.target}: finding (exit {r.returncode}); inputs in fuzz/artifacts/{r.target}/ ====")
        print("\n".join(r.log.splitlines()[-60:]))
    return EXIT_FINDING if findings else EXIT_CLEAN


if __name__ == "__main__":
    sys.exit(main())
