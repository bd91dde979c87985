"""Open the published asv dashboard in headless Chromium with no network but loopback, and check what it draws.

Usage (from the repository root, after ``asv run`` and ``benchmarks/publish.py``)::

    python benchmarks/dashboard.py [--html-dir .asv/html] [--screenshots .asv/screenshots] [--chromium PATH]

The site is served on 127.0.0.1 and opened with every host name except
127.0.0.1 resolving to nothing. Checks, each from the rendered page:

- offline: a probe page that loads a script from a CDN sees it fail;
- list: the benchmark list has a row for every benchmark with results
  (``graphs/summary/*.json``) and no asv error is shown;
- graph: a benchmark's graph page has flot's base canvas with a size,
  numeric tick labels, and coloured (data) pixels in the plot area of its
  screenshot.

Screenshots of the list and the graph are saved in ``--screenshots``. Exits
0 when every check holds, 1 when one fails, 2 when Chromium or the site is
missing.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.publish import ASSETS, external_references  # noqa: E402

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1280, 900)
# The asv layout puts its navigation bar above y=55 and its side panel left of x=200 (both hold blue
# widgets); the plot is right of and below them.
PLOT_ORIGIN = (210, 60)
MIN_DATA_PIXELS = 12
ERROR_TEXTS = (
    "continental origin of swallow",  # error.html: a script failed to load
    "Error fetching content",  # asv_ui.network_error
    "No data for this combination",  # graphdisplay.no_data
)
PROBE_PATH = "/__offline_probe__.html"
PROBE_PAGE = f"""<!DOCTYPE html><html><body><p id="probe">pending</p>
<script>function mark(s) {{ document.getElementById("probe").textContent = s; }}</script>
<script src="{next(iter(ASSETS))}" onload="mark('reached')" onerror="mark('blocked')"></script>
</body></html>
"""


# -- a small DOM from --dump-dom output ------------------------------------------------


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find_all(self, tag: str | None = None, cls: str | None = None, id_: str | None = None) -> list[Node]:
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag)
            and (cls is None or cls in n.attrs.get("class", "").split())
            and (id_ is None or n.attrs.get("id") == id_)
        ]

    def content(self) -> str:
        """All text below this node."""
        return "".join("".join(n.text) for n in self.walk())


_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in _VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


def parse(dom: str) -> Node:
    """The tree of a serialised document (as ``chromium --dump-dom`` prints it)."""
    builder = _Builder()
    builder.feed(dom)
    builder.close()
    return builder.root


# -- checks: each returns the problems it found (empty: the check holds) ------------------------


def _asv_errors(doc: Node) -> list[str]:
    text = doc.content()
    problems = [f"the page shows asv's error {e!r}" for e in ERROR_TEXTS if e in text]
    message = doc.find_all(id_="error-message")
    if message and message[0].content().strip():
        problems.append(f"asv error dialog: {message[0].content().strip()!r}")
    return problems


def check_probe(dom: str) -> list[str]:
    """The probe page's CDN script must have failed: the browser reaches nothing but loopback."""
    probe = parse(dom).find_all(id_="probe")
    state = probe[0].content().strip() if probe else "missing"
    return [] if state == "blocked" else [f"offline probe: CDN script {state!r}, expected 'blocked'"]


def check_list(dom: str, expected: set[str]) -> list[str]:
    """The benchmark list must have a row for each name in ``expected`` (and ``expected`` must not be empty)."""
    doc = parse(dom)
    problems = _asv_errors(doc)
    listed: set[str] = set()
    for table in doc.find_all("table"):
        if not table.attrs.get("id", "").startswith("summarylist-table"):
            continue
        for row in table.find_all("tr"):
            links = row.find_all("a")
            if links and links[0].attrs.get("href", "").startswith("#"):
                listed.add(links[0].attrs["href"][1:].partition("?")[0])
    if not expected:
        problems.append("no benchmark has results: run asv run and asv publish first")
    elif not listed:
        problems.append("the benchmark list is empty")
    elif expected - listed:
        problems.append(f"benchmarks with results missing from the list: {', '.join(sorted(expected - listed))}")
    return problems


def _number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def check_graph(dom: str) -> list[str]:
    """The graph page must hold flot's drawn plot: a sized base canvas in #main-graph and numeric tick labels."""
    doc = parse(dom)
    problems = _asv_errors(doc)
    graph = doc.find_all(id_="main-graph")
    if not graph:
        return [*problems, "no #main-graph element: the graph page did not render"]
    canvases = graph[0].find_all("canvas", cls="flot-base")
    if not canvases:
        problems.append("no canvas.flot-base in #main-graph: flot did not draw")
    elif not all(int(canvases[0].attrs.get(a, "0") or 0) > 0 for a in ("width", "height")):
        problems.append(f"canvas.flot-base has no size: {canvases[0].attrs}")
    ticks = [n.content().strip() for n in graph[0].find_all(cls="flot-tick-label")]
    numeric = [t for t in ticks if _number(t)]
    if len(numeric) < 2:
        problems.append(f"fewer than 2 numeric tick labels in #main-graph: {ticks}")
    return problems


def data_pixels(png: Path, origin: tuple[int, int] = PLOT_ORIGIN) -> int:
    """How many strongly coloured pixels a screenshot has right of and below ``origin``.

    asv draws axes, grid and labels in greys and each series in a colour, so
    these pixels are the plotted data.
    """
    from PIL import Image

    with Image.open(png) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    box = rgb.crop((min(origin[0], width), min(origin[1], height), width, height))
    colours = box.getcolors(max(box.width * box.height, 1)) or []
    return sum(n for n, c in colours if isinstance(c, tuple) and max(c) - min(c) > 80)


def check_pixels(png: Path) -> list[str]:
    """The graph's screenshot must show data: at least ``MIN_DATA_PIXELS`` coloured pixels in the plot area."""
    n = data_pixels(png)
    return [] if n >= MIN_DATA_PIXELS else [f"{png}: {n} coloured pixels in the plot area, expected a plotted series"]


# -- serving and the browser -----------------------------------------------------------


class _Handler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == PROBE_PATH:
            body = PROBE_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(site: Path) -> ThreadingHTTPServer:
    """Serve ``site`` (and the offline probe) on 127.0.0.1 at a free port, from a daemon thread."""
    handler: Callable[..., _Handler] = functools.partial(_Handler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def find_browser(requested: str | None) -> str | None:
    if requested:
        return shutil.which(requested) or (requested if Path(requested).is_file() else None)
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def render(browser: str, url: str, profile: Path, screenshot: Path | None = None) -> str:
    """The DOM of ``url`` after its scripts ran, in headless Chromium that resolves no host but 127.0.0.1."""
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-proxy-server",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=15000",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        "--dump-dom",
    ]
    if screenshot is not None:
        command.append(f"--screenshot={screenshot}")
    proc = subprocess.run([*command, url], capture_output=True, text=True, timeout=180, check=False)
    if proc.returncode != 0 or "<html" not in proc.stdout:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"{Path(browser).name} exited {proc.returncode} on {url}:\n{tail}")
    return proc.stdout


def graph_benchmark(site: Path, names: set[str]) -> str:
    """A benchmark to open as a graph: the first without parameters, else the first."""
    with open(site / "index.json") as f:
        benchmarks = json.load(f).get("benchmarks", {})
    plain = sorted(n for n in names if not benchmarks.get(n, {}).get("params"))
    return (plain or sorted(names))[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-dir", type=Path, default=ROOT / ".asv" / "html", help="the published site")
    parser.add_argument("--screenshots", type=Path, default=ROOT / ".asv" / "screenshots", help="where PNGs go")
    parser.add_argument("--chromium", help="the browser binary (default: chromium on PATH)")
    parser.add_argument("--benchmark", help="the benchmark whose graph is opened (default: the first plain one)")
    args = parser.parse_args(argv)
    site: Path = args.html_dir
    browser = find_browser(args.chromium)
    if browser is None:
        print("dashboard: chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    if not (site / "index.html").is_file():
        print(f"dashboard: {site}/index.html not found: run benchmarks/publish.py first", file=sys.stderr)
        return 2
    expected = {p.stem for p in (site / "graphs" / "summary").glob("*.json")}
    problems = [f"external reference: {ref}" for ref in external_references(site)]
    args.screenshots.mkdir(parents=True, exist_ok=True)
    list_png = args.screenshots / "benchmark-list.png"
    graph_png = args.screenshots / "graph.png"
    server = serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with tempfile.TemporaryDirectory(prefix="dashboard-chromium-") as profile:
            problems += check_probe(render(browser, base + PROBE_PATH, Path(profile)))
            problems += check_list(
                render(browser, f"{base}/index.html#/summarylist", Path(profile), list_png), expected
            )
            if expected:
                name = args.benchmark or graph_benchmark(site, expected)
                print(f"graph page: {name}")
                problems += check_graph(render(browser, f"{base}/index.html#{name}", Path(profile), graph_png))
                problems += check_pixels(graph_png)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        problems.append(str(exc))
    finally:
        server.shutdown()
        server.server_close()
    print(f"benchmarks with results: {len(expected)}; screenshots: {list_png}, {graph_png}")
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if not problems:
        print("dashboard: offline probe blocked, benchmark list complete, graph drawn")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
