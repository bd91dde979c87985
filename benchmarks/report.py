"""Print the issue's target table from the newest asv result file for this machine.

Usage (from the repository root, after ``asv run``)::

    python benchmarks/report.py [--machine NAME] [--results FILE] [--plot PNG] [--html PATH]

Every figure is a ratio of two measurements taken in the same run. The report
prints them and says whether each target is met; it never fails on a missed
target (exit status 0), only when there are no results to read (status 2).
``--plot`` draws the targets as a picture and ``--html`` writes one
self-contained page with the table and the picture (both need matplotlib).
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import math
import os
import platform
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import (  # noqa: E402
    BACKENDS,
    LIVE_COUNTS,
    LOOP,
    OVERLAP_CALLS,
    PURGE_COUNT,
    REACHABLE_CAP,
    SECRET_SIZES,
    SIZE_NAMES,
    STREAM_TOTAL,
)

NAN = float("nan")


# -- reading asv results ---------------------------------------------------------


def _conf() -> dict[str, Any]:
    with open(ROOT / "asv.conf.json") as f:
        return json.load(f)


def _machine(results_dir: Path, requested: str | None) -> str:
    if requested:
        return requested
    machines = sorted(p.name for p in results_dir.iterdir() if (p / "machine.json").exists())
    node = platform.node()
    if node in machines:
        return node
    if len(machines) == 1:
        return machines[0]
    try:
        with open(Path.home() / ".asv-machine.json") as f:
            names = [k for k in json.load(f) if k != "version"]
        if len(names) == 1:
            return names[0]
    except OSError:
        pass
    raise SystemExit(f"several machines in {results_dir} ({', '.join(machines)}): pass --machine")


def newest_result_file(machine: str | None = None) -> Path:
    results_dir = ROOT / _conf().get("results_dir", "results")
    if not results_dir.is_dir():
        raise FileNotFoundError(f"no asv results in {results_dir}: run asv first")
    name = _machine(results_dir, machine)
    files = [p for p in (results_dir / name).glob("*.json") if p.name != "machine.json"]
    if not files:
        raise FileNotFoundError(f"no result files for machine {name!r} in {results_dir}")
    return max(files, key=lambda p: p.stat().st_mtime)


class Results:
    """Values from one asv result file, looked up by benchmark name and parameters."""

    def __init__(self, path: Path) -> None:
        with open(path) as f:
            data = json.load(f)
        self.path = path
        self.data = data
        columns = data["result_columns"]
        self._rows: dict[str, dict[str, Any]] = {
            name: dict(zip(columns, row, strict=False)) for name, row in data["results"].items()
        }

    def get(self, name: str, *params: Any, column: str = "result") -> float:
        """One value of benchmark ``name`` at ``params``: its median (``result``) or
        another per-parameter column (``stats_q_25``, ``stats_q_75``, ...); NaN if absent."""
        row = self._rows.get(name)
        if row is None or row.get(column) is None:
            return NAN
        values = row[column]
        combos = list(itertools.product(*row["params"])) if row["params"] else [()]
        wanted = tuple(repr(p) for p in params)
        for combo, value in zip(combos, values, strict=False):
            if tuple(combo) == wanted:
                return NAN if value is None else float(value)
        return NAN

    def quick(self) -> bool:
        """True when every sample was a single call (``asv run --quick``)."""
        numbers = [r.get("stats_number") for r in self._rows.values()]
        flat = [n for n in itertools.chain.from_iterable(x or [] for x in numbers) if n is not None]
        repeats = [r.get("stats_repeat") for r in self._rows.values()]
        flat_r = [n for n in itertools.chain.from_iterable(x or [] for x in repeats) if n is not None]
        return bool(flat_r) and max(flat_r) <= 1 and (not flat or max(flat) <= 1)


# -- figures -------------------------------------------------------------------------


def us(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e6:.2f} us"


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1e3:.1f} ms"


def mbps(seconds: float, size: int = STREAM_TOTAL) -> str:
    return "n/a" if math.isnan(seconds) or seconds == 0 else f"{size / seconds / 1e6:.0f} MB/s"


def nbytes(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.0f} B" if value < 1 << 20 else f"{value / (1 << 20):,.1f} MiB"


@dataclass
class Figure:
    figure: str
    measured: str
    ratio: float | None
    target: str
    met: bool | None
    ratio_text: str = ""

    def cells(self) -> list[str]:
        if self.ratio_text:
            ratio = self.ratio_text
        elif self.ratio is None or math.isnan(self.ratio):
            ratio = "n/a"
        else:
            ratio = f"{self.ratio:.2f}"
        verdict = "n/a" if self.met is None else ("met" if self.met else "MISSED")
        return [self.figure, self.measured, ratio, self.target, verdict]


def _ratio(a: float, b: float) -> float:
    return NAN if math.isnan(a) or math.isnan(b) or b == 0 else a / b


def _check(ratio: float, ok: Callable[[float], bool]) -> bool | None:
    return None if math.isnan(ratio) else ok(ratio)


def _row(label: str, measured: str, ratio: float, target: str, ok: Callable[[float], bool]) -> Figure:
    return Figure(label, measured, ratio, target, _check(ratio, ok))


def _at_most(limit: float) -> Callable[[float], bool]:
    return lambda x: x <= limit


def _below(limit: float) -> Callable[[float], bool]:
    return lambda x: x < limit


def _at_least(limit: float) -> Callable[[float], bool]:
    return lambda x: x >= limit


STREAM_LABELS = {"memguard": "memguard.Stream", "securememory": "securememory.Stream"}
THREADS = "bench_secret.WithBytesThreads.time_with_bytes_calls_x20000"
THREADS_TARGET = 0.6
LIBSODIUM_INSTALLED = "bench_peers.LibsodiumInstalled.track_installed"


def threads_figure(r: Results) -> Figure:
    """2 threads / 1 thread per call (protected), with its spread over the run's samples.

    Stable means the pessimistic ratio (the slower quartile of 2 threads over the
    faster quartile of 1 thread) meets the target too; a quick run has no spread,
    so the verdict is then the ratio's alone, and the row says so.
    """
    one, two = (r.get(THREADS, "protected", n) / OVERLAP_CALLS for n in (1, 2))
    ratio = _ratio(two, one)
    label = "2 threads overlapping with_bytes / 1 thread (protected, per call)"
    target = f"<= {THREADS_TARGET}, stable"
    q = {(n, c): r.get(THREADS, "protected", n, column=c) for n in (1, 2) for c in ("stats_q_25", "stats_q_75")}
    low, high = _ratio(q[2, "stats_q_25"], q[1, "stats_q_75"]), _ratio(q[2, "stats_q_75"], q[1, "stats_q_25"])
    met = _check(ratio, _at_most(THREADS_TARGET))
    if math.isnan(ratio):
        return Figure(label, f"{us(two)} / {us(one)}", ratio, target, None)
    if r.quick() or math.isnan(low) or math.isnan(high) or low == high:
        text = f"{ratio:.2f} (spread n/a)"
    else:
        text = f"{ratio:.2f} ({low:.2f}-{high:.2f})"
        met = bool(met and high <= THREADS_TARGET)
    return Figure(label, f"{us(two)} / {us(one)}", ratio, target, met, ratio_text=text)


def libsodium_figures(r: Results, buf_life: float, with_bytes: float) -> list[Figure]:
    """Our lifecycle and protected read against libsodium's guarded heap (target: faster)."""
    per = 1 / LOOP
    life = r.get("bench_peers.Libsodium.time_lifecycle_32_x200") * per
    read = r.get("bench_peers.Libsodium.time_protected_read_x200") * per
    installed = r.get(LIBSODIUM_INSTALLED)
    rows = [
        ("Buffer(32) create + destroy / libsodium sodium_malloc(32) + sodium_free", buf_life, life),
        ("protected with_bytes 32 B / libsodium protected read", with_bytes, read),
    ]
    out = []
    for label, ours, theirs in rows:
        if installed == 0:
            out.append(Figure(label, "libsodium not installed", NAN, "< 1", None))
            continue
        ratio = _ratio(ours, theirs)
        out.append(_row(label, f"{us(ours)} / {us(theirs)}", ratio, "< 1", _below(1)))
    return out


def figures(r: Results) -> list[Figure]:
    """The issue's target table, in its order, then the libsodium peers."""
    out: list[Figure] = []
    per = 1 / LOOP

    floor_life = r.get("bench_floor.Floor.time_lifecycle_x200") * per
    buf_life = r.get("bench_buffer.BufferLifecycle.time_create_destroy_32_x200") * per
    out.append(
        _row(
            "Buffer(32) create + destroy / C floor guarded lifecycle",
            f"{us(buf_life)} / {us(floor_life)}",
            _ratio(buf_life, floor_life),
            "<= 1.2",
            _at_most(1.2),
        )
    )

    floor_read = r.get("bench_floor.Floor.time_protected_read_x200") * per
    wb = {b: r.get("bench_secret.WithBytes.time_with_bytes_32_x200", b) * per for b in BACKENDS}
    out.append(
        _row(
            "protected with_bytes 32 B / C floor protected read",
            f"{us(wb['protected'])} / {us(floor_read)}",
            _ratio(wb["protected"], floor_read),
            "<= 1.3",
            _at_most(1.3),
        )
    )

    open32 = r.get("bench_enclave.Enclave.time_open_destroy", 32) * per
    dec32 = r.get("bench_enclave.RawAead.time_decrypt", 32) * per
    out.append(
        _row(
            "enclave open + destroy 32 B / (Buffer lifecycle + AEAD decrypt)",
            f"{us(open32)} / ({us(buf_life)} + {us(dec32)})",
            _ratio(open32, buf_life + dec32),
            "<= 1.2",
            _at_most(1.2),
        )
    )

    new_close = r.get("bench_secret.SecretLifecycle.time_new_close_32_x200", "protected") * per
    out.append(
        _row(
            "SecretFactory.new(32 B) + close() (protected) / C floor guarded lifecycle",
            f"{us(new_close)} / {us(floor_life)}",
            _ratio(new_close, floor_life),
            "<= 1.5",
            _at_most(1.5),
        )
    )

    out.append(
        _row(
            "enclave backend with_bytes 32 B / protected with_bytes 32 B",
            f"{us(wb['enclave'])} / {us(wb['protected'])}",
            _ratio(wb["enclave"], wb["protected"]),
            "<= 2",
            _at_most(2),
        )
    )

    raw = r.get("bench_stream.RawAeadChunks.time_encrypt_decrypt_64MiB")
    for kind, label in STREAM_LABELS.items():
        t = r.get("bench_stream.StreamWriteRead.time_write_read_64MiB", kind)
        out.append(
            _row(
                f"{label} 64 MiB write + read: throughput / raw AEAD",
                f"{mbps(t)} / {mbps(raw)}",
                _ratio(raw, t),
                ">= 0.95",
                _at_least(0.95),
            )
        )
    for kind, label in STREAM_LABELS.items():
        above = r.get("bench_stream.StreamPeakRss.track_peak_above_baseline_64MiB", kind)
        out.append(
            _row(
                f"{label} 64 MiB write + read: peak RSS above baseline / data size",
                f"{nbytes(above)} / {nbytes(STREAM_TOTAL)}",
                _ratio(above, STREAM_TOTAL),
                "<= 2.1",
                _at_most(2.1),
            )
        )

    out.append(threads_figure(r))

    live = {n: r.get("bench_buffer.LiveBuffers.time_create_destroy_32_x200", n) * per for n in LIVE_COUNTS}
    busy, idle = live[max(LIVE_COUNTS)], live[min(LIVE_COUNTS)]
    out.append(
        _row(
            f"create + destroy with {max(LIVE_COUNTS):,} live buffers / with none",
            f"{us(busy)} / {us(idle)}",
            _ratio(busy, idle),
            "<= 1.1",
            _at_most(1.1),
        )
    )

    purge = r.get("bench_buffer.Purge.time_purge_1000")
    floor_destroy = r.get("bench_floor.FloorDestroy.time_destroy_x1000")
    out.append(
        _row(
            f"purge of {PURGE_COUNT:,} / {PURGE_COUNT:,} floor destroys",
            f"{ms(purge)} / {ms(floor_destroy)}",
            _ratio(purge, floor_destroy),
            "<= 1.1",
            _at_most(1.1),
        )
    )

    name = "bench_locked.LockedBytes.track_locked_bytes"
    at10 = r.get(name, "enclave", 10)
    at10k = r.get(name, "enclave", 10_000)
    ratio = _ratio(at10k, at10)
    out.append(
        Figure(
            "enclave backend locked bytes at 10,000 secrets / at 10",
            f"{nbytes(at10k)} / {nbytes(at10)}",
            ratio,
            "constant (1.00)",
            None if math.isnan(ratio) else at10k == at10,
        )
    )

    out.extend(libsodium_figures(r, buf_life, wb["protected"]))
    return out


def details(r: Results) -> list[list[str]]:
    """Further measurements of the issue, old design (legacy) beside the new ones."""
    per = 1 / LOOP
    rows: list[list[str]] = []

    def by_backend(label: str, values: dict[str, float], fmt: Callable[[float], str]) -> None:
        legacy = values["legacy"]
        cells = [label]
        for b in BACKENDS:
            v = values[b]
            rel = _ratio(v, legacy)
            cells.append(fmt(v) + ("" if b == "legacy" or math.isnan(rel) else f" ({rel:.2f}x)"))
        rows.append(cells)

    for size in SECRET_SIZES:
        by_backend(
            f"Secret new + close, {SIZE_NAMES[size]}",
            {b: r.get("bench_secret.CreateClose.time_create_close", b, size) for b in BACKENDS},
            us,
        )
    by_backend(
        "Secret new + close, 32 B (x200 loop, per call)",
        {b: r.get("bench_secret.SecretLifecycle.time_new_close_32_x200", b) * per for b in BACKENDS},
        us,
    )
    for size in SECRET_SIZES:
        by_backend(
            f"peak RSS, new + close {SIZE_NAMES[size]}",
            {b: r.get("bench_secret.CreateClose.peakmem_create_close", b, size) for b in BACKENDS},
            nbytes,
        )
    by_backend(
        "with_bytes 32 B, 1 thread",
        {b: r.get("bench_secret.WithBytes.time_with_bytes_32_x200", b) * per for b in BACKENDS},
        us,
    )
    for threads in (1, 2):
        by_backend(
            f"with_bytes 32 B per call, {threads} x {OVERLAP_CALLS // threads} calls (threads x calls)",
            {
                b: r.get("bench_secret.WithBytesThreads.time_with_bytes_calls_x20000", b, threads) / OVERLAP_CALLS
                for b in BACKENDS
            },
            us,
        )
    for size in (32, 4096):
        by_backend(
            f"reader() read-all, {SIZE_NAMES[size]}",
            {b: r.get("bench_secret.Reader.time_reader_read_all", b, size) for b in BACKENDS},
            us,
        )
    for count in (10, 10_000):
        by_backend(
            f"locked bytes per secret, {count:,} secrets",
            {b: r.get("bench_locked.LockedBytes.track_locked_bytes", b, count) / count for b in BACKENDS},
            nbytes,
        )

    def reach(v: float) -> str:
        if math.isnan(v):
            return "n/a"
        return f">= {v:,.0f} (cap)" if v >= REACHABLE_CAP else f"{v:,.0f}"

    rows.append(
        ["live secrets under RLIMIT_MEMLOCK 64 KiB"]
        + [reach(r.get("bench_locked.ReachableUnderLimit.track_secrets_under_64KiB", b)) for b in BACKENDS]
    )
    return rows


def sizes_table(r: Results) -> list[list[str]]:
    per = 1 / LOOP
    rows = []
    for size in SECRET_SIZES:
        loops = per if size <= 4096 else 1.0
        rows.append(
            [
                SIZE_NAMES[size],
                us(r.get("bench_enclave.Enclave.time_seal", size) * loops),
                us(r.get("bench_enclave.Enclave.time_open_destroy", size) * loops),
                us(r.get("bench_enclave.RawAead.time_encrypt", size) * loops),
                us(r.get("bench_enclave.RawAead.time_decrypt", size) * loops),
                us(r.get("bench_enclave.RawAead.time_new_decrypt", size) * loops),
            ]
        )
    return rows


def floor_table(r: Results) -> list[list[str]]:
    per = 1 / LOOP
    return [
        ["trivial syscall (getppid)", us(r.get("bench_floor.Floor.time_syscall_x200") * per)],
        ["guarded 1-page lifecycle", us(r.get("bench_floor.Floor.time_lifecycle_x200") * per)],
        ["legacy 1-page lifecycle", us(r.get("bench_floor.Floor.time_legacy_lifecycle_x200") * per)],
        ["protected read NONE->READ->NONE", us(r.get("bench_floor.Floor.time_protected_read_x200") * per)],
        [
            "destroy one of 1,000 live buffers",
            us(r.get("bench_floor.FloorDestroy.time_destroy_x1000") / PURGE_COUNT),
        ],
        [
            "Buffer(32) create + destroy",
            us(r.get("bench_buffer.BufferLifecycle.time_create_destroy_32_x200") * per),
        ],
        ["purge(), per buffer of 1,000", us(r.get("bench_buffer.Purge.time_purge_1000") / PURGE_COUNT)],
        *(
            [
                f"Buffer(32) create + destroy, {n:,} other buffers live",
                us(r.get("bench_buffer.LiveBuffers.time_create_destroy_32_x200", n) * per),
            ]
            for n in LIVE_COUNTS
        ),
        *(
            [f"libsodium {what}", "not installed" if r.get(LIBSODIUM_INSTALLED) == 0 else us(r.get(name) * per)]
            for what, name in (
                ("sodium_malloc(32) + sodium_free", "bench_peers.Libsodium.time_lifecycle_32_x200"),
                ("protected read noaccess->readonly->noaccess", "bench_peers.Libsodium.time_protected_read_x200"),
            )
        ),
    ]


def render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)) + " |" for row in rows]
    return "\n".join([line, sep, *body])


# -- the picture and the page -------------------------------------------------------------

AREAS = ("lifecycle", "borrow", "enclave", "stream", "memory", "peers")
# First match wins: "enclave backend locked bytes" and a stream's peak RSS are memory,
# "enclave open + destroy" and the enclave backend's with_bytes are enclave.
_AREA_WORDS = (
    ("libsodium", "peers"),
    ("peak rss", "memory"),
    ("locked bytes", "memory"),
    ("stream", "stream"),
    ("enclave", "enclave"),
    ("with_bytes", "borrow"),
    ("borrow", "borrow"),
    ("create", "lifecycle"),
    ("destroy", "lifecycle"),
    ("close", "lifecycle"),
    ("purge", "lifecycle"),
)
_TARGET = re.compile(r"(<=|>=|<|>)\s*([0-9.]+)|\(([0-9.]+)\)")
MET_COLOUR, MISSED_COLOUR, UNKNOWN_COLOUR = "#1b9e77", "#d95f02", "#9e9e9e"


def area(fig: Figure) -> str:
    """The area of a target figure (one of ``AREAS``) from the words of its label; ``"other"`` if none fits."""
    label = fig.figure.lower()
    return next((name for word, name in _AREA_WORDS if word in label), "other")


def target_value(fig: Figure) -> float:
    """The number in a figure's target (``"<= 1.5"`` -> 1.5, ``"constant (1.00)"`` -> 1.0); NaN if it has none."""
    m = _TARGET.search(fig.target)
    if m is None:
        return NAN
    return float(m.group(2) or m.group(3))


def run_lines(r: Results) -> list[str]:
    """Which commit, machine and Python the results are from, and whether the run was a quick one."""
    meta = r.data
    lines = [
        f"commit {meta.get('commit_hash', '?')[:12]}, machine {meta.get('params', {}).get('machine', '?')}, "
        f"python {meta.get('python', '?')}"
    ]
    if r.quick():
        lines.append("quick run (one sample per benchmark): ratios are indicative only")
    return lines


def draw(figs: list[Figure], title: str) -> bytes:
    """A PNG of each figure's ratio (a bar, met or missed colour) against its target (a black line), by area.

    Needs matplotlib (the ``dev`` extra); draws without a display or network.
    """
    from matplotlib.figure import Figure as Canvas
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    groups = [(name, [f for f in figs if area(f) == name]) for name in (*AREAS, "other")]
    groups = [(name, members) for name, members in groups if members]
    values = [v for f in figs for v in (f.ratio or NAN, target_value(f)) if not math.isnan(v)]
    # The axis ends a little past twice the largest target: a ratio beyond it (a
    # far-missed target) is drawn to the edge and labelled with its value, so it
    # does not squeeze every other bar into the left of the picture.
    goals = [g for g in (target_value(f) for f in figs) if not math.isnan(g)]
    right = min(max([1.0, *values]), 2 * max([1.0, *goals])) * 1.18
    rows = sum(len(members) for _, members in groups)
    canvas = Canvas(figsize=(9.0, 1.3 + 0.52 * rows + 0.3 * len(groups)), layout="constrained")
    axes = canvas.subplots(
        len(groups), 1, sharex=True, squeeze=False, gridspec_kw={"height_ratios": [len(m) for _, m in groups]}
    )[:, 0]
    for ax, (name, members) in zip(axes, groups, strict=True):
        for y, f in enumerate(reversed(members)):
            ratio = NAN if f.ratio is None else f.ratio
            colour = UNKNOWN_COLOUR if f.met is None else (MET_COLOUR if f.met else MISSED_COLOUR)
            if math.isnan(ratio):
                ax.text(0.01 * right, y, "not measured", va="center", color=UNKNOWN_COLOUR, fontsize=8)
            else:
                shown = min(ratio, right)
                ax.barh(y, shown, height=0.6, color=colour, hatch=None if f.met else "//", edgecolor="white")
                if shown < ratio:
                    box = {"facecolor": "white", "edgecolor": "none", "pad": 1}
                    ax.text(0.98 * shown, y, f"{ratio:.2f} >", va="center", ha="right", fontsize=8, bbox=box)
                else:
                    ax.text(ratio, y, f" {ratio:.2f}", va="center", fontsize=8)
            goal = target_value(f)
            if not math.isnan(goal):
                ax.plot([goal, goal], [y - 0.4, y + 0.4], color="black", linewidth=2)
                ax.text(goal, y + 0.33, f" target {f.target}", ha="left", va="bottom", fontsize=7)
        ax.set_yticks(range(len(members)))
        ax.set_yticklabels([textwrap.fill(f.figure, 46) for f in reversed(members)], fontsize=8)
        ax.set_ylim(-0.55, len(members) - 0.3)
        ax.set_title(name, loc="left", fontsize=9, fontweight="bold")
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[-1].set_xlim(0, right)
    axes[-1].set_xlabel("ratio (each figure's measurement / its reference, same run)", fontsize=8)
    canvas.legend(
        handles=[
            Patch(color=MET_COLOUR, label="met"),
            Patch(facecolor=MISSED_COLOUR, hatch="//", edgecolor="white", label="missed"),
            Patch(color=UNKNOWN_COLOUR, label="not measured"),
            Line2D([], [], color="black", linewidth=2, label="target"),
        ],
        loc="outside lower center",
        ncols=4,
        fontsize=8,
        frameon=False,
    )
    canvas.suptitle(title, fontsize=10)
    out = io.BytesIO()
    canvas.savefig(out, format="png", dpi=90, metadata={"Software": None})
    return out.getvalue()


def html_page(r: Results, figs: list[Figure], png: bytes) -> str:
    """One self-contained page (no external reference): run, picture embedded as base64, target table."""
    rows = "".join(
        f'<tr class="{"na" if f.met is None else ("met" if f.met else "missed")}">'
        + "".join(f"<td>{escape(c)}</td>" for c in f.cells())
        + "</tr>\n"
        for f in figs
    )
    header = "".join(f"<th>{h}</th>" for h in ("figure", "measured", "ratio", "target", "result"))
    counts = (
        f"{sum(f.met is True for f in figs)} met, {sum(f.met is False for f in figs)} missed, "
        f"{sum(f.met is None for f in figs)} not measured"
    )
    picture = base64.b64encode(png).decode()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>securememory benchmark targets</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; font-size: 0.9em; }}
tr.met td:last-child {{ color: {MET_COLOUR}; font-weight: bold; }}
tr.missed td:last-child {{ color: {MISSED_COLOUR}; font-weight: bold; }}
tr.na td:last-child {{ color: {UNKNOWN_COLOUR}; }}
img {{ max-width: 100%; }}
</style></head>
<body>
<h1>securememory benchmark targets</h1>
<p>{"<br>".join(escape(line) for line in [f"results: {r.path.name}", *run_lines(r)])}</p>
<p>{counts}</p>
<img alt="each target's measured ratio against its target, by area" src="data:image/png;base64,{picture}">
<table><thead><tr>{header}</tr></thead>
<tbody>
{rows}</tbody></table>
</body></html>
"""


def write_outputs(r: Results, figs: list[Figure], plot: Path | None, page: Path | None) -> int:
    """Write the picture (``plot``) and the page (``page``) when asked; 0, or 2 without matplotlib."""
    if plot is None and page is None:
        return 0
    try:
        png = draw(
            figs,
            f"securememory targets, commit {r.data.get('commit_hash', '?')[:12]}"
            + (" (quick run)" if r.quick() else ""),
        )
    except ImportError as exc:
        print(f"report: --plot and --html need matplotlib (pip install -e '.[dev]'): {exc}", file=sys.stderr)
        return 2
    if plot is not None:
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot.write_bytes(png)
        print(f"picture: {plot}")
    if page is not None:
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(html_page(r, figs, png), encoding="utf-8")
        print(f"page: {page}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", help="asv machine name (default: this host's)")
    parser.add_argument("--results", type=Path, help="an asv result file (default: the newest for the machine)")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also draw each target's ratio against its target")
    parser.add_argument("--html", type=Path, metavar="PATH", help="also write one self-contained page: table + picture")
    args = parser.parse_args(argv)
    try:
        path = args.results or newest_result_file(args.machine)
    except FileNotFoundError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    r = Results(path)
    print(f"results: {os.path.relpath(path, os.getcwd())}")
    for line in run_lines(r):
        print(line)
    print()
    figs = figures(r)
    print(render(["figure", "measured", "ratio", "target", "result"], [f.cells() for f in figs]))
    missed = [f.figure for f in figs if f.met is False]
    unknown = [f.figure for f in figs if f.met is None]
    print()
    print(f"{sum(f.met is True for f in figs)} met, {len(missed)} missed, {len(unknown)} not measured")
    print()
    print("Backends (ratio to legacy, the old design, in brackets)")
    print(render(["measurement", *BACKENDS], details(r)))
    print()
    print("Enclave and raw ChaCha20-Poly1305 (per operation)")
    print(
        render(
            ["size", "seal", "open + destroy", "AEAD encrypt", "AEAD decrypt", "new AEAD + decrypt"],
            sizes_table(r),
        )
    )
    print()
    print("C floor beside the library (per operation)")
    print(render(["operation", "time"], floor_table(r)))
    stream_peak = {
        k: r.get("bench_stream.StreamWriteRead.peakmem_write_read_64MiB", k) for k in ("memguard", "securememory")
    }
    print()
    print("Stream 64 MiB write + read, peak RSS: " + ", ".join(f"{k} {nbytes(v)}" for k, v in stream_peak.items()))
    if r.get(LIBSODIUM_INSTALLED) == 0:
        print()
        print("libsodium not installed on the machine that ran the benchmarks: its rows are not measured")
    return write_outputs(r, figs, args.plot, args.html)


if __name__ == "__main__":
    sys.exit(main())
