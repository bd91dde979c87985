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


def results_file(tmp_path: Path) -> Path:
    """One met figure (Buffer lifecycle 1.25 <= 1.5), one missed (with_bytes 2.0 > 1.5), one constant (met),
    the rest not measured."""
    data = {
        "commit_hash": "0123456789abcdef",
        "params": {"machine": "synthetic"},
        "python": "3.11",
        "result_columns": ["result", "params"],
        "results": {
            "bench_floor.Floor.time_lifecycle_x200": _row([0.004]),
            "bench_buffer.BufferLifecycle.time_create_destroy_32_x200": _row([0.005]),
            "bench_floor.Floor.time_protected_read_x200": _row([0.001]),
            "bench_secret.WithBytes.time_with_bytes_32_x200": _row([0.001, 0.002, 0.003], [BACKENDS]),
            "bench_locked.LockedBytes.track_locked_bytes": _row(
                [4096, 40960, 4096, 40960000, 12288, 12288], [BACKENDS, ["10", "10000"]]
            ),
        },
    }
    path = tmp_path / "0123456789ab-existing-py.json"
    path.write_text(json.dumps(data))
    return path


def test_area_and_target_of_every_figure(tmp_path: Path) -> None:
    figs = report.figures(report.Results(results_file(tmp_path)))
    assert {report.area(f) for f in figs} == set(report.AREAS)
    assert [report.target_value(f) for f in figs] == [1.5, 1.5, 1.0, 1.3, 0.5, 0.5, 1.5, 1.0]
    assert [f.met for f in figs] == [True, False, None, None, None, None, None, True]
    unknown = report.Figure("something new", "", 1.0, "about right", None)
    assert report.area(unknown) == "other"
    assert report.target_value(unknown) != report.target_value(unknown)  # NaN


def test_table_is_printed_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--results", str(results_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "commit 0123456789ab, machine synthetic, python 3.11" in out
    assert re.search(r"\| Buffer\(32\) create \+ destroy / C floor lifecycle +\| .* \| 1\.25 +\| <= 1\.5 +\| met", out)
    assert "2 met, 1 missed, 5 not measured" in out
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
    assert text.count('<tr class="met">') == 2
    assert "2 met, 1 missed, 5 not measured" in text
