"""python -m harness: run every scenario and report which protections hold here.

Prints the environment, then one line per scenario as it completes (verdict,
seconds, observation), then a table (scenario, expected, observed, verdict);
exits 1 when any scenario FAILs. UNSUPPORTED means this environment cannot
run that scenario, and says why.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from . import child, junit, restrict
from .scenario import FAIL, SCENARIOS, Result, environment
from .scenarios import __all__ as _loaded  # noqa: F401  (registers every scenario)

PROFILES = ("default", "restricted")

CapsSink = Callable[[dict[str, Any]], None]
ResultSink = Callable[[Result], None]


def _ignore(value: Any) -> None:
    pass


def run_all(
    names: list[str], on_caps: CapsSink = _ignore, on_result: ResultSink = _ignore
) -> tuple[dict[str, Any], list[Result]]:
    """The environment and the results of ``names``, run in this process's children;
    each is also handed on as it is known (``on_caps``, then ``on_result`` per scenario)."""
    env = environment()
    caps = asdict(env.caps)
    on_caps(caps)
    results = []
    for name in names:
        results.append(SCENARIOS[name].run(env))
        on_result(results[-1])
    return caps, results


def run_restricted(
    names: list[str], on_caps: CapsSink = _ignore, on_result: ResultSink = _ignore
) -> tuple[dict[str, Any], list[Result]]:
    """Everything again, in a child without CAP_IPC_LOCK under RLIMIT_MEMLOCK 64 KiB."""
    reason = restrict.supported()
    if reason:
        raise SystemExit(f"the restricted profile is unavailable: {reason}")

    def fn(ctx: child.Context) -> None:
        run_all(names, ctx.report, lambda r: ctx.report(r.as_dict()))

    results: list[Result] = []
    caps: dict[str, Any] = {}

    def received(value: dict[str, Any]) -> None:
        if "scenario" in value:
            results.append(Result(**value))
            on_result(results[-1])
        else:
            caps.update(value)
            on_caps(value)

    outcome = child.run(fn, restriction=restrict.Restriction(), timeout=600, on_report=received)
    if not outcome.reports:
        raise SystemExit(f"the restricted run failed: {outcome.describe()}\n{outcome.stderr}")
    return caps, results


def _table(rows: list[Result]) -> str:
    headers = ("scenario", "expected", "observed", "verdict")
    cells = [(r.scenario, r.expected, r.observed + (f" [{r.reason}]" if r.reason else ""), r.verdict) for r in rows]
    widths = [min(max(len(h), *(len(c[i]) for c in cells)) if cells else len(h), 60) for i, h in enumerate(headers)]
    widths[-1] = max(len("UNSUPPORTED"), len(headers[-1]))

    def fmt(values: tuple[str, ...]) -> str:
        return "  ".join(v.ljust(w) if i < 3 else v for i, (v, w) in enumerate(zip(values, widths, strict=True)))

    lines = [fmt(headers), fmt(tuple("-" * w for w in widths))]
    lines += [fmt(c) for c in cells]
    return "\n".join(lines)


def _environment_report(caps: dict[str, Any], profile: str) -> str:
    from securememory.memcall import Capabilities

    text = Capabilities(**caps).report()
    suffix = f" ({restrict.Restriction().describe()})" if profile == "restricted" else ""
    return f"profile             {profile}{suffix}\n{text}"


def _progress_line(r: Result, width: int) -> str:
    reason = f" [{r.reason}]" if r.reason else ""
    return f"{r.verdict:<11}  {r.scenario:<{width}}  {r.seconds:6.2f} s  {r.observed}{reason}"


def _emit(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per scenario and line, printed as each completes")
    parser.add_argument("--junit-xml", metavar="PATH", help="also write the results as JUnit XML to PATH")
    parser.add_argument("--list", action="store_true", help="list scenario names and exit")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these scenarios")
    parser.add_argument("--profile", choices=PROFILES, default="default",
                        help="restricted: drop CAP_IPC_LOCK and set RLIMIT_MEMLOCK to 64 KiB first")
    args = parser.parse_args(argv)

    if args.list:
        for s in SCENARIOS.values():
            print(f"{s.name:28s} {s.summary}")
        return 0
    names = args.only or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(unknown)} (see --list)")

    width = max(map(len, names))

    def on_caps(caps: dict[str, Any]) -> None:
        if not args.json:
            _emit(_environment_report(caps, args.profile) + "\n")

    def on_result(r: Result) -> None:
        _emit(json.dumps({**r.as_dict(), "profile": args.profile}) if args.json else _progress_line(r, width))

    started_at = datetime.datetime.now(datetime.UTC)
    started = time.monotonic()
    _, results = (run_restricted if args.profile == "restricted" else run_all)(names, on_caps, on_result)
    elapsed = time.monotonic() - started
    if not args.json:
        print()
        print(_table(results))
        counts = {v: sum(r.verdict == v for r in results) for v in ("PASS", "FAIL", "UNSUPPORTED")}
        print(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['UNSUPPORTED']} unsupported "
              f"in {elapsed:.1f} s")
    if args.junit_xml:
        junit.write(args.junit_xml, results, args.profile, started_at)
    sys.stdout.flush()
    return 1 if any(r.verdict == FAIL for r in results) else 0
