"""python -m harness.mutate: break each protection on purpose and check the harness notices.

For every entry of :data:`harness.mutations.MUTATIONS`: copy the source tree
(``securememory/``, ``harness/`` and the build files) to a temporary
directory, apply the one text change, rebuild the C extension there when a C
file changed (objects are cached by content, so only the changed file is
recompiled), and run the harness from that copy: first the scenarios the entry
names, then, when none of them fails, every scenario, so that "caught by" names
every scenario that noticed. An entry is CAUGHT when at least one scenario
FAILs, SURVIVED when all pass, STALE when its ``old`` text no longer occurs
exactly once in its file (or it names an unknown scenario), ERROR when the copy
cannot be built or the harness ends without verdicts, NOT NEEDED when the
protection matters only on newer interpreters than this one (the entry's
``python``; ``--newer-only`` runs just those). Exits 1 unless every entry is
CAUGHT or NOT NEEDED.

Before any mutation the unmutated copy is built and its harness run over the
scenarios the entries name: a scenario failing there would make every
"caught" meaningless, so the campaign stops (exit 2).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .mutations import MUTATIONS, Mutation

CAUGHT = "CAUGHT"
SURVIVED = "SURVIVED"
STALE = "STALE"
ERROR = "ERROR"
NOT_NEEDED = "NOT NEEDED"

ROOT = Path(__file__).resolve().parent.parent
TREES = ("securememory", "harness")
FILES = ("setup.py", "pyproject.toml")
HARNESS_TIMEOUT = 600.0

# Run in the copy: the extensions setup.py declares (setup() itself is not run),
# each cffi module's C source emitted, as JSON.
_EMIT = """
import json, os, runpy, sys
import setuptools
captured = {}
setuptools.setup = lambda **kw: captured.update(kw)
ns = runpy.run_path("setup.py", run_name="setup_probe")
limited = ns.get("LIMITED_API") if ns.get("STABLE_ABI") else None
out = []
for ext in captured.get("ext_modules", []):
    macros = [list(m) for m in ext.define_macros if m[0] != "Py_LIMITED_API"]
    if limited:
        macros.append(["Py_LIMITED_API", limited])
    out.append({"module": ext.name, "sources": ext.sources, "include_dirs": ext.include_dirs,
                "extra_compile_args": ext.extra_compile_args, "libraries": ext.libraries, "macros": macros})
for spec in captured.get("cffi_modules", []):
    path, _, attr = spec.partition(":")
    builder = runpy.run_path(path)[attr]
    name, _, _, kwds = builder._assigned_source
    c_file = os.path.join(sys.argv[1], name + ".c")
    builder.emit_c_code(c_file)
    out.append({"module": name, "sources": [c_file, *kwds.get("sources", [])],
                "include_dirs": kwds.get("include_dirs", []),
                "extra_compile_args": kwds.get("extra_compile_args", []),
                "libraries": kwds.get("libraries", []), "macros": []})
print(json.dumps(out))
"""


@dataclass
class Outcome:
    """What one mutation did to the harness."""

    name: str
    protection: str
    path: str
    status: str
    caught_by: list[str] = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0


class BuildError(RuntimeError):
    """The copy's C extension could not be built."""


def check(mutation: Mutation, root: Path = ROOT) -> str | None:
    """None when ``mutation`` applies to the tree at ``root``, else why it is stale."""
    path = root / mutation.path
    if not path.is_file():
        return f"{mutation.path} does not exist"
    count = path.read_text(encoding="utf-8").count(mutation.old)
    if count != 1:
        return f"its text occurs {count} times in {mutation.path} (must be exactly once)"
    if mutation.old == mutation.new:
        return "old and new are the same text"
    return None


def copy_tree(dest: Path, root: Path = ROOT) -> None:
    """Copy the sources (no build products, no caches) from ``root`` to ``dest``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.o", "*.pyd", "*.egg-info")
    for tree in TREES:
        shutil.copytree(root / tree, dest / tree, ignore=ignore)
    for name in FILES:
        shutil.copy2(root / name, dest / name)


def apply(mutation: Mutation, dest: Path) -> None:
    path = dest / mutation.path
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(mutation.old, mutation.new, 1), encoding="utf-8")


class Builder:
    """Builds a copy's cffi extension with sysconfig's compiler, caching objects by content."""

    def __init__(self, cache: Path) -> None:
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._busy: dict[str, threading.Lock] = {}

    def _object(self, tree: Path, source: Path, flags: list[str], headers: bytes) -> Path:
        digest = hashlib.sha256(
            "\0".join(flags).encode() + source.read_bytes() + headers
        ).hexdigest()[:32]
        obj = self.cache / f"{digest}.o"
        with self._lock:
            busy = self._busy.setdefault(digest, threading.Lock())
        with busy:
            if not obj.exists():
                tmp = obj.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                cmd = [*flags, "-c", str(source), "-o", str(tmp)]
                done = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise BuildError(f"{source.name}: {done.stderr.strip()[-800:]}")
                tmp.replace(obj)
        return obj

    def build(self, tree: Path) -> None:
        """Compile and link every extension of ``tree`` in place (next to its Python package)."""
        gen = tree / "build"
        gen.mkdir(exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-c", _EMIT, str(gen)], cwd=tree, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BuildError(f"the extensions could not be listed: {done.stderr.strip()[-800:]}")
        headers = b"".join(p.read_bytes() for p in sorted((tree / "securememory").rglob("*.h")))
        for spec in json.loads(done.stdout.strip().splitlines()[-1]):
            self._extension(tree, spec, headers)

    def _extension(self, tree: Path, spec: dict[str, Any], headers: bytes) -> None:
        cc = shlex.split(sysconfig.get_config_var("CC") or "cc")
        flags = [
            *cc, "-fPIC", "-DNDEBUG", "-fwrapv", "-pthread",
            f"-I{sysconfig.get_paths()['include']}",
            *(f"-I{d}" for d in spec["include_dirs"]),
            *(f"-D{name}={value}" if value is not None else f"-D{name}" for name, value in spec["macros"]),
            *spec["extra_compile_args"],
        ]
        objects = [self._object(tree, tree / s, flags, headers) for s in spec["sources"]]
        module = spec["module"].split(".")
        target = tree.joinpath(*module[:-1], module[-1] + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))
        ld = shlex.split(sysconfig.get_config_var("LDSHARED") or "cc -shared")
        libs = [f"-l{name}" for name in spec["libraries"]]
        done = subprocess.run(
            [*ld, *map(str, objects), *libs, "-o", str(target)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise BuildError(f"link of {spec['module']} failed: {done.stderr.strip()[-800:]}")


def run_harness(tree: Path, names: Sequence[str] | None) -> tuple[dict[str, str], str]:
    """Run ``python -m harness --json`` from ``tree``; the verdict per scenario and any trouble."""
    cmd = [sys.executable, "-m", "harness", "--json"]
    if names:
        cmd += ["--only", *names]
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SECUREMEMORY_CRASH_WIPE", None)
    try:
        done = subprocess.run(
            cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=HARNESS_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        return _verdicts(out), f"harness timed out after {HARNESS_TIMEOUT:.0f} s"
    verdicts = _verdicts(done.stdout)
    trouble = ""
    if done.returncode not in (0, 1) or (names and set(names) - set(verdicts)):
        trouble = f"harness exit status {done.returncode}: {done.stderr.strip()[-400:]}"
    return verdicts, trouble


def _verdicts(stdout: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            out[row["scenario"]] = row["verdict"]
    return out


def _failed(verdicts: dict[str, str]) -> list[str]:
    return [name for name, verdict in verdicts.items() if verdict == "FAIL"]


class Campaign:
    """The runs of one ``python -m harness.mutate`` invocation."""

    def __init__(self, workdir: Path, scenarios: set[str]) -> None:
        self.workdir = workdir
        self.builder = Builder(workdir / "objects")
        self.scenarios = scenarios
        self.baseline_so: list[Path] = []

    def prepare(self, names: Iterable[str]) -> None:
        """Build the unmutated copy and require its harness to pass ``names``."""
        tree = self.workdir / "baseline"
        copy_tree(tree)
        self.builder.build(tree)
        self.baseline_so = sorted((tree / "securememory").glob("*.so"))
        where = subprocess.run(
            [sys.executable, "-c", "import securememory, harness; print(securememory.__file__, harness.__file__)"],
            cwd=tree, env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True, check=False,
        )
        if not all(p.startswith(str(tree)) for p in where.stdout.split()) or where.returncode:
            raise SystemExit(f"the copy does not import its own sources: {where.stdout}{where.stderr}")
        wanted = sorted(set(names) & self.scenarios)
        if not wanted:
            return
        verdicts, trouble = run_harness(tree, wanted)
        failed = _failed(verdicts)
        if failed or trouble:
            raise SystemExit(f"the unmutated harness does not pass: failing {failed} {trouble}".strip())

    def run(self, mutation: Mutation) -> Outcome:
        started = time.monotonic()
        outcome = self._run(mutation)
        outcome.seconds = round(time.monotonic() - started, 1)
        return outcome

    def _run(self, m: Mutation) -> Outcome:
        outcome = Outcome(m.name, m.protection, m.path, ERROR)
        if not needed_here(m):
            outcome.status = NOT_NEEDED
            until = f" to {m.python_until[0]}.{m.python_until[1]}" if m.python_until else " on"
            outcome.reason = f"the protection matters from CPython {m.python[0]}.{m.python[1]}{until}"
            return outcome
        stale = check(m)
        unknown = [s for s in m.scenarios if s not in self.scenarios]
        if stale or unknown:
            outcome.status = STALE
            outcome.reason = stale or f"unknown scenario(s): {', '.join(unknown)}"
            return outcome
        tree = Path(tempfile.mkdtemp(prefix=f"{m.name}-", dir=self.workdir))
        try:
            copy_tree(tree)
            apply(m, tree)
            if m.path.endswith((".c", ".h")) or m.path in ("setup.py", "securememory/_build.py"):
                self.builder.build(tree)
            else:
                for so in self.baseline_so:
                    shutil.copy2(so, tree / "securememory" / so.name)
            verdicts, trouble = run_harness(tree, list(m.scenarios))
            caught = _failed(verdicts)
            if not caught:
                verdicts, trouble = run_harness(tree, None)
                caught = _failed(verdicts)
            if caught:
                outcome.status, outcome.caught_by = CAUGHT, caught
            elif trouble:
                outcome.reason = trouble
            else:
                outcome.status = SURVIVED
                outcome.reason = f"all {len(verdicts)} scenarios pass"
        except BuildError as e:
            outcome.reason = f"build failed: {e}"
        finally:
            shutil.rmtree(tree, ignore_errors=True)
        return outcome


def list_scenarios() -> set[str]:
    from .scenario import SCENARIOS
    from .scenarios import __all__ as _loaded  # noqa: F401  (registers every scenario)

    return set(SCENARIOS)


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


class Progress:
    """One status line on a terminal: which mutations run, elapsed, estimate."""

    def __init__(self, total: int, jobs: int) -> None:
        self.total = total
        self.jobs = jobs
        self.done = 0
        self.running: list[str] = []
        self.started = time.monotonic()
        self.enabled = sys.stderr.isatty()
        self._lock = threading.Lock()

    def _show(self) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        eta = "?" if not self.done else _duration(elapsed / self.done * (self.total - self.done))
        line = f"[{self.done}/{self.total}] {', '.join(self.running)[:60]}  elapsed {_duration(elapsed)}  eta {eta}"
        sys.stderr.write("\r\033[K" + line)
        sys.stderr.flush()

    def note(self, text: str) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K" + text)
            sys.stderr.flush()

    def start(self, name: str) -> None:
        with self._lock:
            self.running.append(name)
            self._show()

    def finish(self, name: str) -> None:
        with self._lock:
            self.running.remove(name)
            self.done += 1
            self._show()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def table(outcomes: list[Outcome]) -> str:
    rows = [
        (o.name, o.protection, ", ".join(o.caught_by) if o.status == CAUGHT else f"{o.status} {o.reason}".strip())
        for o in outcomes
    ]
    headers = ("mutation", "protection", "caught by")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers[:2])]
    lines = [f"{headers[0]:{widths[0]}}  {headers[1]:{widths[1]}}  {headers[2]}"]
    lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * 9}")
    lines += [f"{a:{widths[0]}}  {b:{widths[1]}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def needed_here(m: Mutation) -> bool:
    """Whether this interpreter is one the entry's protection is needed on."""
    here = sys.version_info[:2]
    return m.python <= here and (m.python_until is None or here <= m.python_until)


def select(names: Sequence[str] | None, newer_only: bool = False) -> list[Mutation]:
    """The entries named (default: all); ``newer_only``: only those the oldest interpreter does not need."""
    by_name = {m.name: m for m in MUTATIONS}
    selected = [by_name[n] for n in names] if names else list(MUTATIONS)
    if newer_only:
        oldest = min(m.python for m in MUTATIONS)
        selected = [m for m in selected if m.python > oldest]
    return selected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.mutate", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object per mutation, one per line")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutations")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="mutations run at once (default: the number of cores)")
    parser.add_argument("--list", action="store_true", help="list the catalogue and exit")
    parser.add_argument("--newer-only", action="store_true",
                        help="run only the entries for protections that older interpreters do not need")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    missing = [name for name in (*TREES, *FILES) if not (ROOT / name).exists()]
    if missing:
        parser.error(f"needs a source checkout (pip install -e): {', '.join(missing)} not found in {ROOT}")
    by_name = {m.name: m for m in MUTATIONS}
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:40s} {m.protection:24s} {m.path}")
        return 0
    unknown = [n for n in args.only or [] if n not in by_name]
    if unknown:
        parser.error(f"unknown mutation(s): {', '.join(unknown)} (see --list)")
    selected = select(args.only, args.newer_only)

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="securememory-mutate-") as tmp:
        campaign = Campaign(Path(tmp), list_scenarios())
        progress = Progress(len(selected), args.jobs)
        progress.note("building the unmutated copy and checking that its harness passes")
        campaign.prepare(s for m in selected for s in m.scenarios)
        progress.started = time.monotonic()

        def one(m: Mutation) -> Outcome:
            progress.start(m.name)
            try:
                return campaign.run(m)
            finally:
                progress.finish(m.name)

        with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
            outcomes = list(pool.map(one, selected))
        progress.close()
    elapsed = time.monotonic() - started

    if args.json:
        for o in outcomes:
            print(json.dumps(asdict(o)))
    else:
        print(table(outcomes))
        counts = {s: sum(o.status == s for o in outcomes) for s in (CAUGHT, SURVIVED, STALE, ERROR, NOT_NEEDED)}
        print(f"\n{counts[CAUGHT]} caught, {counts[SURVIVED]} survived, {counts[STALE]} stale, "
              f"{counts[ERROR]} errors, {counts[NOT_NEEDED]} not needed on this interpreter, "
              f"of {len(outcomes)} mutations in {_duration(elapsed)} (--jobs {args.jobs})")
    sys.stdout.flush()
    return 0 if all(o.status in (CAUGHT, NOT_NEEDED) for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
