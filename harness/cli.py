"""python -m harness: run every scenario and report which protections hold here.

Prints the environment and a table (scenario, expected, observed, verdict);
exits 1 when any scenario FAILs. UNSUPPORTED means this environment cannot
run that scenario, and says why.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict

from . import child, restrict
from .scenario import FAIL, SCENARIOS, Result, environment
from .scenarios import __all__ as _loaded  # noqa: F401  (registers every scenario)

PROFILES = ("default", "restricted")


def run_all(names: list[str]) -> tuple[dict[str, object], list[Result]]:
    """The environment and the results of ``names``, run in this process's children."""
    env = environment()
    return asdict(env.caps), [SCENARIOS[name].run(env) for name in names]


def run_restricted(names: list[str]) -> tuple[dict[str, object], list[Result]]:
    """Everything again, in a child without CAP_IPC_LOCK under RLIMIT_MEMLOCK 64 KiB."""
    reason = restrict.supported()
    if reason:
        raise SystemExit(f"the restricted profile is unavailable: {reason}")

    def fn(ctx: child.Context) -> None:
        caps, results = run_all(names)
        ctx.report(caps)
        for result in results:
            ctx.report(result.as_dict())

    outcome = child.run(fn, restriction=restrict.Restriction(), timeout=600)
    if not outcome.reports:
        raise SystemExit(f"the restricted run failed: {outcome.describe()}\n{outcome.stderr}")
    caps, *results = outcome.reports
    return caps, [Result(**r) for r in results]


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


def _environment_report(caps: dict[str, object], profile: str) -> str:
    from securememory.memcall import Capabilities

    text = Capabilities(**caps).report()  # type: ignore[arg-type]
    suffix = f" ({restrict.Restriction().describe()})" if profile == "restricted" else ""
    return f"profile             {profile}{suffix}\n{text}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per scenario, one per line")
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

    started = time.monotonic()
    caps, results = (run_restricted if args.profile == "restricted" else run_all)(names)
    elapsed = time.monotonic() - started
    if args.json:
        for r in results:
            print(json.dumps({**r.as_dict(), "profile": args.profile}))
    else:
        print(_environment_report(caps, args.profile))
        print()
        print(_table(results))
        counts = {v: sum(r.verdict == v for r in results) for v in ("PASS", "FAIL", "UNSUPPORTED")}
        print(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['UNSUPPORTED']} unsupported "
              f"in {elapsed:.1f} s")
    sys.stdout.flush()
    return 1 if any(r.verdict == FAIL for r in results) else 0
