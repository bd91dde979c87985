"""benchmarks/report.py: the table, the picture (--plot) and the page (--html) from a synthetic asv result file."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402
from benchmarks.publish import external_references  # noqa: E402

BACKENDS = ["'legacy'", "'protected'", "'enclave'"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))


def _row(result: list[float | None], params: list[list[str]] | None = None) -> list[Any]:
    return [result, params or []]


def results_file(tmp_path: Path, extra: dict[str, Any] | None = None, columns: list[str] | None = None) -> Path:
    """One met figure (Buffer lifecycle 1.10 <= 1.2), one missed (with_bytes 2.0 > 1.3), one constant (met),
    the rest not measured; ``extra`` adds or replaces rows (in ``columns`` order)."""
    data: dict[str, Any] = {
        "commit_hash": "0123456789abcdef",
        "params": {"machine": "synthetic"},
        "python": "3.11",
        "result_columns": columns or ["result", "params"],
        "results": {
            "bench_floor.Floor.time_lifecycle_x200": _row([0.004]),
            "bench_buffer.BufferLifecycle.time_create_destroy_32_x200": _row([0.0044]),
            "bench_floor.Floor.time_protected_read_x200": _row([0.001]),
            "bench_secret.WithBytes.time_with_bytes_32_x200": _row([0.001, 0.002, 0.003], [BACKENDS]),
            "bench_locked.LockedBytes.track_locked_bytes": _row(
                [4096, 40960, 4096, 40960000, 12288, 12288], [BACKENDS, ["10", "10000"]]
            ),
        },
    }
    data["results"].update(extra or {})
    path = tmp_path / "0123456789ab-existing-py.json"
    path.write_text(json.dumps(data))
    return path


def test_area_and_target_of_every_figure(tmp_path: Path) -> None:
    figs = report.figures(report.Results(results_file(tmp_path)))
    assert {report.area(f) for f in figs} == set(report.AREAS)
    targets = [1.2, 1.3, 1.2, 1.5, 2.0, 0.95, 0.95, 2.1, 2.1, 0.6, 1.1, 1.1, 1.0, 1.0, 1.0]
    assert [report.target_value(f) for f in figs] == targets
    # with_bytes is measured for every backend: enclave / protected = 1.5 <= 2 is met
    assert [f.met for f in figs] == [True, False, None, None, True, *[None] * 7, True, None, None]
    unknown = report.Figure("something new", "", 1.0, "about right", None)
    assert report.area(unknown) == "other"
    assert report.target_value(unknown) != report.target_value(unknown)  # NaN


def test_table_is_printed_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--results", str(results_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "commit 0123456789ab, machine synthetic, python 3.11" in out
    assert re.search(
        r"\| Buffer\(32\) create \+ destroy / C floor guarded lifecycle +\| .* \| 1\.10 +\| <= 1\.2 +\| met", out
    )
    assert "3 met, 1 missed, 11 not measured" in out
    assert not list(tmp_path.glob("*.png"))


def _colour_counts(png: bytes) -> dict[tuple[int, int, int], int]:
    image_module = pytest.importorskip("PIL.Image", reason="the plot needs matplotlib (and its Pillow)")
    with image_module.open(io.BytesIO(png)) as image:
        return {rgb: n for n, rgb in image.convert("RGB").getcolors(1 << 24) or []}


def test_plot_draws_met_and_missed_bars_in_their_colours(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib")
    png = tmp_path / "out" / "report.png"
    assert report.main(["--results", str(results_file(tmp_path)), "--plot", str(png)]) == 0
    full = png.read_bytes()
    assert full.startswith(PNG_SIGNATURE)
    figs = report.figures(report.Results(results_file(tmp_path)))
    met_only = report.draw([f for f in figs if f.met is not False], "met only")
    missed, met = rgb(report.MISSED_COLOUR), rgb(report.MET_COLOUR)
    # The legend shows every colour; a missed bar adds far more pixels of its colour than the legend's patch.
    assert _colour_counts(full)[missed] > 5 * _colour_counts(met_only)[missed]
    assert _colour_counts(full)[met] > 5 * _colour_counts(report.draw([figs[1]], "missed only"))[met]


def test_html_page_is_one_self_contained_file(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the page embeds the plot, which needs matplotlib")
    site = tmp_path / "site"
    page = site / "report.html"
    assert report.main(["--results", str(results_file(tmp_path)), "--html", str(page)]) == 0
    text = page.read_text()
    assert [p.name for p in site.iterdir()] == ["report.html"]
    assert external_references(site) == []
    assert "http://" not in text and "https://" not in text
    embedded = re.search(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert embedded is not None
    assert base64.b64decode(embedded.group(1)).startswith(PNG_SIGNATURE)
    assert re.search(r'<tr class="missed"><td>protected with_bytes 32 B', text)
    assert text.count('<tr class="met">') == 3
    assert "3 met, 1 missed, 11 not measured" in text


STREAMS = ["'memguard'", "'securememory'"]
SIZES = ["32", "4096", "1048576"]


def every_row(installed: float = 1.0) -> dict[str, Any]:
    """A value for every benchmark the target table reads (times in seconds per timed call)."""
    return {
        "bench_floor.Floor.time_lifecycle_x200": _row([0.004]),  # 20 us
        "bench_buffer.BufferLifecycle.time_create_destroy_32_x200": _row([0.0044]),  # 22 us: 1.10
        "bench_floor.Floor.time_protected_read_x200": _row([0.0005]),  # 2.5 us
        "bench_secret.WithBytes.time_with_bytes_32_x200": _row([0.0006, 0.0006, 0.0024], [BACKENDS]),  # 3, 3, 12 us
        "bench_enclave.Enclave.time_open_destroy": _row([0.006, 0.008, 0.002], [SIZES]),  # 30 us at 32 B
        "bench_enclave.RawAead.time_decrypt": _row([0.0002, 0.0004, 0.0003], [SIZES]),  # 1 us at 32 B
        "bench_secret.SecretLifecycle.time_new_close_32_x200": _row([0.008, 0.006, 0.02], [BACKENDS]),  # 30 us
        "bench_stream.RawAeadChunks.time_encrypt_decrypt_64MiB": _row([0.05]),
        "bench_stream.StreamWriteRead.time_write_read_64MiB": _row([0.05, 0.1], [STREAMS]),  # 1.00, 0.50
        "bench_stream.StreamPeakRss.track_peak_above_baseline_64MiB": _row(
            [2.0 * (64 << 20), 3.0 * (64 << 20)], [STREAMS]
        ),
        "bench_secret.WithBytesThreads.time_with_bytes_calls_x20000": _row(
            [0.06, 0.03, 0.06, 0.03, 0.6, 0.6], [BACKENDS, ["1", "2"]]
        ),  # protected: 1.5 us per call on 2 threads / 3 us on 1 = 0.50
        "bench_buffer.LiveBuffers.time_create_destroy_32_x200": _row([0.0044, 0.0046], [["0", "10000"]]),  # 1.05
        "bench_buffer.Purge.time_purge_1000": _row([0.012]),
        "bench_floor.FloorDestroy.time_destroy_x1000": _row([0.010]),  # 1.20
        "bench_peers.LibsodiumInstalled.track_installed": _row([installed]),
        "bench_peers.Libsodium.time_lifecycle_32_x200": _row([0.0055]),  # 27.5 us: 22 / 27.5 = 0.80
        "bench_peers.Libsodium.time_protected_read_x200": _row([0.0005]),  # 2.5 us: 3 / 2.5 = 1.20
    }


def test_every_row_of_the_issue_is_printed_with_its_ratio_and_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report.main(["--results", str(results_file(tmp_path, every_row()))]) == 0
    out = capsys.readouterr().out
    expected = {
        r"Buffer\(32\) create \+ destroy / C floor guarded lifecycle": ("1.10", r"<= 1\.2", "met"),
        "protected with_bytes 32 B / C floor protected read": ("1.20", r"<= 1\.3", "met"),
        r"enclave open \+ destroy 32 B / \(Buffer lifecycle \+ AEAD decrypt\)": ("1.30", r"<= 1\.2", "MISSED"),
        r"SecretFactory\.new\(32 B\) \+ close\(\) \(protected\) / C floor guarded lifecycle": (
            "1.50",
            r"<= 1\.5",
            "met",
        ),
        "enclave backend with_bytes 32 B / protected with_bytes 32 B": ("4.00", "<= 2", "MISSED"),
        r"memguard\.Stream 64 MiB write \+ read: throughput / raw AEAD": ("1.00", r">= 0\.95", "met"),
        r"securememory\.Stream 64 MiB write \+ read: throughput / raw AEAD": ("0.50", r">= 0\.95", "MISSED"),
        r"memguard\.Stream 64 MiB write \+ read: peak RSS above baseline / data size": ("2.00", r"<= 2\.1", "met"),
        r"securememory\.Stream 64 MiB write \+ read: peak RSS above baseline / data size": (
            "3.00",
            r"<= 2\.1",
            "MISSED",
        ),
        r"2 threads overlapping with_bytes / 1 thread \(protected, per call\)": (
            r"0\.50 \(spread n/a\)",
            r"<= 0\.6, stable",
            "met",
        ),
        r"create \+ destroy with 10,000 live buffers / with none": ("1.05", r"<= 1\.1", "met"),
        "purge of 1,000 / 1,000 floor destroys": ("1.20", r"<= 1\.1", "MISSED"),
        r"Buffer\(32\) create \+ destroy / libsodium sodium_malloc\(32\) \+ sodium_free": ("0.80", "< 1", "met"),
        "protected with_bytes 32 B / libsodium protected read": ("1.20", "< 1", "MISSED"),
    }
    for label, (ratio, target, verdict) in expected.items():
        assert re.search(rf"\| {label} +\| [^|]+ \| {ratio} +\| {target} +\| {verdict} ", out), label
    assert "27.50 us" in out  # libsodium's lifecycle, in the floor table too
    assert "libsodium not installed" not in out


def test_a_missing_libsodium_is_reported_as_not_installed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = every_row(installed=0.0)
    del rows["bench_peers.Libsodium.time_lifecycle_32_x200"], rows["bench_peers.Libsodium.time_protected_read_x200"]
    path = results_file(tmp_path, rows)
    figs = [f for f in report.figures(report.Results(path)) if report.area(f) == "peers"]
    assert len(figs) == 2
    assert all(f.measured == "libsodium not installed" and f.met is None for f in figs)
    assert report.main(["--results", str(path)]) == 0
    out = capsys.readouterr().out
    row = r"\| protected with_bytes 32 B / libsodium protected read +\| libsodium not installed +\| n/a"
    assert re.search(row, out)
    assert "libsodium not installed on the machine that ran the benchmarks" in out


def test_peer_rows_unmeasured_without_the_installed_flag_are_not_called_missing(tmp_path: Path) -> None:
    rows = every_row()
    del rows["bench_peers.LibsodiumInstalled.track_installed"], rows["bench_peers.Libsodium.time_lifecycle_32_x200"]
    figs = {f.figure: f for f in report.figures(report.Results(results_file(tmp_path, rows)))}
    life = figs["Buffer(32) create + destroy / libsodium sodium_malloc(32) + sodium_free"]
    assert life.met is None and life.measured.endswith("n/a") and "not installed" not in life.measured
    assert figs["protected with_bytes 32 B / libsodium protected read"].met is False


def _threads_file(tmp_path: Path, q25: list[float], q75: list[float], repeat: int = 10) -> Path:
    name = "bench_secret.WithBytesThreads.time_with_bytes_calls_x20000"
    rows = every_row()
    rows[name] = [[0.06, 0.03, 0.06, 0.03, 0.6, 0.6], [BACKENDS, ["1", "2"]], q25, q75, [1] * 6, [repeat] * 6]
    for other, row in rows.items():
        if other != name:
            row.extend([None, None, None, [repeat] * len(row[0])])
    columns = ["result", "params", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat"]
    return results_file(tmp_path, rows, columns)


def test_thread_overlap_is_met_only_when_its_spread_stays_within_the_target(tmp_path: Path) -> None:
    # protected 1 thread: 0.055-0.065 s; 2 threads: 0.028-0.032 s -> spread 0.43-0.58, stable
    stable = _threads_file(tmp_path, [0.05, 0.02, 0.055, 0.028, 0.5, 0.5], [0.07, 0.04, 0.065, 0.032, 0.7, 0.7])
    fig = report.threads_figure(report.Results(stable))
    assert (fig.cells()[2], fig.met) == ("0.50 (0.43-0.58)", True)
    # same median ratio, but 2 threads' slow quartile reaches 0.045 s -> 0.82 at worst: not stable
    noisy = _threads_file(tmp_path, [0.05, 0.02, 0.055, 0.02, 0.5, 0.5], [0.07, 0.04, 0.065, 0.045, 0.7, 0.7])
    fig = report.threads_figure(report.Results(noisy))
    assert (fig.cells()[2], fig.met) == ("0.50 (0.31-0.82)", False)
    # a quick run has one sample: the ratio alone decides, and the row says the spread is unknown
    quick = _threads_file(tmp_path, [0.05, 0.02, 0.055, 0.02, 0.5, 0.5], [0.07, 0.04, 0.065, 0.045, 0.7, 0.7], 1)
    fig = report.threads_figure(report.Results(quick))
    assert (fig.cells()[2], fig.met) == ("0.50 (spread n/a)", True)
