"""Core dumps: no secret in a core taken live (gcore) or left by a crash; disable_core_dumps() lowers the limit."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

from securememory import memcall
from securememory.memguard import disable_crash_wipe

from .. import child, raw
from ..scenario import Environment, Result, scenario, unsupported, verdict
from .copies import _secret_and_buffer, _Values


def _count(path: str, value: bytes) -> int:
    with open(path, "rb") as f:
        data = f.read()
    return data.count(value)


def core_dump_live(env: Environment) -> Result:
    """gcore of a child holding live secrets (a Buffer and a protected Secret) contains neither."""
    name = "core_dump_live"
    expected = "0 copies in the core"
    gcore = shutil.which("gcore")
    if gcore is None:
        return unsupported(name, expected, "gdb's gcore is not installed")
    values = _Values()
    cores: list[str] = []

    def observe(pid: int, msg: dict[str, Any]) -> Any:
        if msg["op"] != "dump":
            return values.observe(pid, msg)
        prefix = os.path.join(values.dir.name, "core")
        done = subprocess.run([gcore, "-o", prefix, str(pid)], capture_output=True, timeout=120, check=False)
        path = f"{prefix}.{pid}"
        if done.returncode != 0 or not os.path.exists(path):
            return f"gcore failed: {done.stderr.decode(errors='replace').strip()[-200:]}"
        cores.append(path)
        return {key: _count(path, v) for key, v in values.values.items()}

    def fn(ctx: child.Context) -> None:
        held = _secret_and_buffer(ctx)
        ctx.report(ctx.checkpoint({"op": "dump", "key": ""}))
        del held

    try:
        outcome = child.run(fn, observe=observe, env=env.child_env, timeout=180)
    finally:
        values.dir.cleanup()
    seen = outcome.reports[0] if outcome.reports else None
    if isinstance(seen, str):
        return unsupported(name, expected, seen)
    ok = isinstance(seen, dict) and set(seen) == {"secret", "buffer"} and not any(seen.values())
    return verdict(name, ok, expected, f"copies in core: {seen}; {outcome.describe()}" + env.note)


def _core_unsupported(pattern: str | None) -> str | None:
    if pattern is None:
        return "core_pattern is unreadable"
    if pattern.startswith("|"):
        return f"cores are piped to a program (core_pattern {pattern!r}), not written to a file"
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0:
        return "the hard RLIMIT_CORE is 0: no core can be written"
    return None


def _find_core(pattern: str, cwd: str, since: float) -> str | None:
    directory = os.path.dirname(pattern) if os.path.isabs(pattern) else cwd
    stem = os.path.basename(pattern).split("%", 1)[0]
    candidates = []
    for entry in os.scandir(directory):
        if entry.name.startswith(stem) and entry.is_file() and entry.stat().st_mtime >= since - 1:
            candidates.append(entry.path)
    return max(candidates, key=os.path.getmtime) if candidates else None


def core_dump_crash(env: Environment) -> Result:
    """A child that dies of SIGSEGV with core dumps enabled leaves no secret in its core.

    The crash wipe is switched off in the child, so the core shows what
    MADV_DONTDUMP alone keeps out (the crash wipe has its own scenario).
    """
    name = "core_dump_crash"
    expected = "killed by SIGSEGV (named on stderr), core written, 0 copies in it"
    pattern = env.caps.core_pattern
    reason = _core_unsupported(pattern)
    if reason:
        return unsupported(name, expected, reason)
    assert pattern is not None
    values = _Values()
    workdir = tempfile.mkdtemp(prefix="securememory-core-")

    def fn(ctx: child.Context) -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        os.chdir(workdir)
        disable_crash_wipe()
        held = _secret_and_buffer(ctx)
        raw.poke(0)  # dies here, holding both
        del held

    started = time.time()
    try:
        outcome = child.run(fn, observe=values.observe, env=env.child_env)
        core = _find_core(pattern, workdir, started)
        if core is None:
            return unsupported(name, expected, f"no core file appeared (core_pattern {pattern!r})")
        counts = {key: _count(core, v) for key, v in values.values.items()}
    finally:
        values.dir.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    ok = outcome.died_of(signal.SIGSEGV) and not any(counts.values()) and len(counts) == 2
    observed = f"{outcome.describe()} (stderr names {outcome.fatal_error or 'nothing'}), copies in core: {counts}"
    return verdict(name, ok, expected, observed + env.note)


scenario("core_dump_live", "a core taken from a live process (gcore) holds no secret")(core_dump_live)
scenario("core_dump_crash", "a crash with core dumps enabled leaves no secret in the core")(core_dump_crash)


def core_limit(env: Environment) -> Result:
    """disable_core_dumps() sets the soft RLIMIT_CORE to 0 and keeps the hard one; hard=True lowers both."""
    name = "core_limit"
    expected = "soft 0 and hard kept; with hard=True, both 0"
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0:
        return unsupported(name, expected, "the hard RLIMIT_CORE is already 0")

    def fn(ctx: child.Context) -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        memcall.disable_core_dumps()
        soft_only = resource.getrlimit(resource.RLIMIT_CORE)
        memcall.disable_core_dumps(hard=True)
        both = resource.getrlimit(resource.RLIMIT_CORE)
        ctx.report({"hard": hard, "soft_only": soft_only, "both": both})

    outcome = child.run(fn, env=env.child_env)
    if not outcome.reports:
        return verdict(name, False, expected, f"no report; {outcome.describe()}: {outcome.stderr[-300:]}")
    r = outcome.reports[0]
    ok = r["soft_only"] == [0, r["hard"]] and r["both"] == [0, 0]
    return verdict(name, ok, expected, f"default: {r['soft_only']}, hard=True: {r['both']} (hard was {r['hard']})")


scenario("core_limit", "disable_core_dumps() lowers the soft limit (and the hard one only when asked)")(core_limit)
