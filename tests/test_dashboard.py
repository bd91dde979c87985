"""benchmarks/dashboard.py: the checks it makes on the rendered DOM and the screenshot, on pages made here."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import dashboard, publish  # noqa: E402

NAMES = {"bench_a.A.time_x", "bench_b.B.time_y"}


def list_page(names: list[str], error: str = "") -> str:
    rows = "".join(
        f'<tr><td><a href="#{n}?">{n}</a><a href="#{n}?p-size=32"> (32)</a></td><td>1ms</td></tr>' for n in names
    )
    return (
        '<html><body><nav><a href="#/">grid</a><a href="#/summarylist">list</a></nav>'
        '<div id="summarylist-body"><table class="table" id="summarylist-table-0">'
        f"<thead><tr><th>Benchmark</th></tr></thead><tbody>{rows}</tbody></table></div>"
        f'<div class="modal" id="error"><div class="modal-body" id="error-message">{error}</div></div>'
        "</body></html>"
    )


def graph_page(canvas: str = 'width="800" height="500"', ticks: tuple[str, ...] = ("0.00", "1.00", "2.00")) -> str:
    labels = "".join(f'<div class="flot-tick-label tickLabel" style="top: 1px">{t}</div>' for t in ticks)
    return (
        '<html><body><div id="graph"><div id="main-graph" style="height: 100%">'
        f'<canvas class="flot-base" {canvas}></canvas>'
        f'<div class="flot-text"><div class="flot-y-axis flot-y1-axis">{labels}</div></div>'
        '<canvas class="flot-overlay" width="800" height="500"></canvas>'
        '</div></div><div id="error-message"></div></body></html>'
    )


def test_list_with_every_benchmark_holds() -> None:
    assert dashboard.check_list(list_page(sorted(NAMES)), NAMES) == []


def test_list_missing_a_benchmark_or_empty_fails() -> None:
    assert dashboard.check_list(list_page(["bench_a.A.time_x"]), NAMES) == [
        "benchmarks with results missing from the list: bench_b.B.time_y"
    ]
    assert dashboard.check_list(list_page([]), NAMES) == ["the benchmark list is empty"]
    assert dashboard.check_list(list_page([]), set()) == ["no benchmark has results: run asv run and asv publish first"]


def test_asv_error_pages_fail() -> None:
    swallow = "<html><body><p>Can not determine continental origin of swallow.</p></body></html>"
    assert "continental origin of swallow" in dashboard.check_list(swallow, NAMES)[0]
    assert "continental origin of swallow" in dashboard.check_graph(swallow)[0]
    shown = dashboard.check_list(list_page(sorted(NAMES), error="Something broke"), NAMES)
    assert shown == ["asv error dialog: 'Something broke'"]


def test_drawn_graph_holds() -> None:
    assert dashboard.check_graph(graph_page()) == []


def test_graph_without_plot_fails() -> None:
    assert dashboard.check_graph(graph_page(canvas='width="0" height="500"'))[0].startswith(
        "canvas.flot-base has no size"
    )
    assert dashboard.check_graph(graph_page(ticks=("a", "b"))) == [
        "fewer than 2 numeric tick labels in #main-graph: ['a', 'b']"
    ]
    no_canvas = graph_page().replace("flot-base", "other")
    assert dashboard.check_graph(no_canvas) == ["no canvas.flot-base in #main-graph: flot did not draw"]
    assert dashboard.check_graph("<html><body></body></html>") == [
        "no #main-graph element: the graph page did not render"
    ]


def test_probe_must_be_blocked() -> None:
    assert dashboard.check_probe('<html><body><p id="probe">blocked</p></body></html>') == []
    assert dashboard.check_probe('<html><body><p id="probe">reached</p></body></html>') == [
        "offline probe: CDN script 'reached', expected 'blocked'"
    ]


def test_screenshot_pixels_tell_a_plotted_series(tmp_path: Path) -> None:
    image_module = pytest.importorskip("PIL.Image", reason="the screenshot check needs Pillow (with matplotlib)")
    blank = image_module.new("RGB", (400, 300), "white")
    for x in range(0, 400, 10):  # grey grid and a blue widget where asv keeps its navigation
        for y in range(300):
            blank.putpixel((x, y), (200, 200, 200))
    for x in range(0, 200):
        blank.putpixel((x, 20), (31, 119, 180))
    blank.save(tmp_path / "blank.png")
    plotted = blank.copy()
    for x in range(300, 306):
        for y in range(150, 156):
            plotted.putpixel((x, y), (31, 119, 180))
    plotted.save(tmp_path / "plotted.png")
    assert dashboard.data_pixels(tmp_path / "blank.png") == 0
    assert dashboard.data_pixels(tmp_path / "plotted.png") == 36
    assert dashboard.check_pixels(tmp_path / "plotted.png") == []
    assert "0 coloured pixels" in dashboard.check_pixels(tmp_path / "blank.png")[0]


def test_server_serves_the_site_and_the_probe_on_loopback(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<html>site</html>")
    server = dashboard.serve(tmp_path)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, whatever the environment
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        with opener.open(f"http://127.0.0.1:{port}/index.html", timeout=10) as response:
            assert response.read() == b"<html>site</html>"
        with opener.open(f"http://127.0.0.1:{port}{dashboard.PROBE_PATH}", timeout=10) as response:
            probe = response.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert "onerror=\"mark('blocked')\"" in probe
    assert f'src="{next(iter(publish.ASSETS))}"' in probe


@pytest.mark.slow
def test_real_chromium_reaches_loopback_and_nothing_else(tmp_path: Path) -> None:
    browser = dashboard.find_browser(None)
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); .ci/dashboard.sh installs it")
    (tmp_path / "index.html").write_text('<html><body><p id="page">from loopback</p></body></html>')
    server = dashboard.serve(tmp_path)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        served = dashboard.render(browser, f"{base}/index.html", tmp_path / "profile")
        probe = dashboard.render(browser, base + dashboard.PROBE_PATH, tmp_path / "profile")
    finally:
        server.shutdown()
        server.server_close()
    assert '<p id="page">from loopback</p>' in served
    assert dashboard.check_probe(probe) == []
