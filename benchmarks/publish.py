"""Publish the asv dashboard as a self-contained site: no request leaves the machine when it is opened.

Usage (from the repository root, after ``asv run``)::

    python benchmarks/publish.py [--html-dir .asv/html] [--npm-dir .asv/npm] [--no-asv-publish]

``asv publish`` writes a site whose ``index.html`` loads jQuery, Bootstrap, flot
and three small plugins from public CDNs. This script fetches the same packages
from the npm registry (``npm pack``, cached in ``--npm-dir``), copies the files
and their licences into ``<html-dir>/vendor/``, points every CDN reference at
the local copy and then checks that no page or stylesheet of the site refers
to anything outside it. It exits 1 when a CDN reference is not in ``ASSETS``
(a new asv version) or when the check finds an external reference.

Subresource-integrity attributes are kept where the npm file is the very file
the CDN serves (same hash) and replaced by the local file's hash where the CDN
serves its own minified build (flot, stupidtable).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import re
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Asset:
    """One file of an npm package that stands in for one CDN URL."""

    package: str
    version: str
    path: str  # inside the package tarball, below ``package/``

    @property
    def folder(self) -> str:
        return f"{self.package}-{self.version}"

    @property
    def local(self) -> str:
        """Where the file lands, relative to the site root."""
        return f"vendor/{self.folder}/{self.path}"


_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_JSDELIVR = "https://cdn.jsdelivr.net/npm"

# The CDN references of asv 0.6's index.html and the npm files that replace them.
# cdnjs serves its own minified builds of flot, so the npm sources stand in for them.
# stupidtable 1.0.1 was never published to npm; 1.1.3 keeps its API (stupidtable(), stupidsort()).
ASSETS: dict[str, Asset] = {
    "https://code.jquery.com/jquery-3.3.1.min.js": Asset("jquery", "3.3.1", "dist/jquery.min.js"),
    f"{_CDNJS}/flot/0.8.3/jquery.flot.min.js": Asset("flot", "0.8.3", "jquery.flot.js"),
    f"{_CDNJS}/flot/0.8.3/jquery.flot.time.min.js": Asset("flot", "0.8.3", "jquery.flot.time.js"),
    f"{_CDNJS}/flot/0.8.3/jquery.flot.selection.min.js": Asset("flot", "0.8.3", "jquery.flot.selection.js"),
    f"{_CDNJS}/flot/0.8.3/jquery.flot.categories.min.js": Asset("flot", "0.8.3", "jquery.flot.categories.js"),
    f"{_JSDELIVR}/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": Asset(
        "flot-orderbars", "1.0.0", "js/jquery.flot.orderBars.js"
    ),
    f"{_CDNJS}/stupidtable/1.0.1/stupidtable.min.js": Asset("stupid-table-plugin", "1.1.3", "stupidtable.min.js"),
    f"{_CDNJS}/blueimp-md5/2.19.0/js/md5.min.js": Asset("blueimp-md5", "2.19.0", "js/md5.min.js"),
    f"{_JSDELIVR}/bootstrap@3.1.1/dist/js/bootstrap.min.js": Asset("bootstrap", "3.1.1", "dist/js/bootstrap.min.js"),
    f"{_JSDELIVR}/bootstrap@3.1.1/dist/css/bootstrap.min.css": Asset(
        "bootstrap", "3.1.1", "dist/css/bootstrap.min.css"
    ),
}

# Files a vendored file refers to by a relative URL (bootstrap.min.css -> ../fonts/...).
COMPANIONS: dict[str, tuple[str, ...]] = {
    "bootstrap": tuple(f"dist/fonts/glyphicons-halflings-regular.{ext}" for ext in ("eot", "svg", "ttf", "woff")),
}

_LICENCE = re.compile(r"^(LICEN[CS]E|COPYING)(\.[a-z]+)?$", re.IGNORECASE)
_TAG = re.compile(r"<(script|link)\b[^>]*>", re.IGNORECASE | re.DOTALL)
_ATTR = re.compile(r"""\b([a-zA-Z-]+)\s*=\s*("[^"]*"|'[^']*')""")
_EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\(\s*['"]?((?:https?:)?//[^'")\s]+)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+['"]((?:https?:)?//[^'"]+)""", re.IGNORECASE)


class PublishError(Exception):
    """The site cannot be made self-contained (unknown CDN reference, npm failure, external reference left)."""


# -- fetching ------------------------------------------------------------------------


def fetch_package(package: str, version: str, npm_dir: Path) -> Path:
    """Return the npm tarball of ``package@version`` in ``npm_dir``, running ``npm pack`` when it is absent.

    Raises PublishError when npm is missing or fails.
    """
    tarball = npm_dir / f"{package.lstrip('@').replace('/', '-')}-{version}.tgz"
    if tarball.is_file():
        return tarball
    npm = shutil.which("npm")
    if npm is None:
        raise PublishError("npm not found: install nodejs and npm (Debian: apt-get install npm)")
    npm_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "pack", "--silent", "--pack-destination", str(npm_dir), f"{package}@{version}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not tarball.is_file():
        raise PublishError(f"npm pack {package}@{version} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return tarball


def _extract(tar: tarfile.TarFile, member: str, dest: Path) -> None:
    source = tar.extractfile(f"package/{member}")
    if source is None:
        raise PublishError(f"{member} is not a regular file in {tar.name!r}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with source, open(dest, "wb") as out:
        shutil.copyfileobj(source, out)


def vendor(assets: Iterable[Asset], site: Path, npm_dir: Path) -> None:
    """Copy every asset, its package's companions, licence files and package.json from npm tarballs into ``site``.

    Raises PublishError when a package cannot be fetched or lacks a file.
    """
    by_package: dict[tuple[str, str], set[str]] = {}
    for asset in assets:
        by_package.setdefault((asset.package, asset.version), set()).add(asset.path)
    for (package, version), paths in sorted(by_package.items()):
        folder = site / "vendor" / f"{package}-{version}"
        with tarfile.open(fetch_package(package, version, npm_dir)) as tar:
            names = {m.name.removeprefix("package/") for m in tar.getmembers() if m.isfile()}
            # package.json names the licence where the package ships no licence file (flot-orderbars).
            licences = {n for n in names if "/" not in n and _LICENCE.match(n)} | {"package.json"}
            for member in sorted(paths | set(COMPANIONS.get(package, ())) | licences):
                if member not in names:
                    raise PublishError(f"{package}@{version} has no file {member}")
                _extract(tar, member, folder / member)


# -- rewriting -----------------------------------------------------------------------


def sri(data: bytes, algorithm: str = "sha384") -> str:
    """The subresource-integrity value of ``data`` (``sha256-...``, ``sha384-...`` or ``sha512-...``)."""
    return f"{algorithm}-" + base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


def _integrity_holds(integrity: str, data: bytes) -> bool:
    for token in integrity.split():
        algorithm, _, _ = token.partition("-")
        if algorithm in ("sha256", "sha384", "sha512") and sri(data, algorithm) == token:
            return True
    return False


def _attributes(tag: str) -> dict[str, str]:
    return {m.group(1).lower(): html.unescape(m.group(2)[1:-1]) for m in _ATTR.finditer(tag)}


def _set_attribute(tag: str, name: str, value: str) -> str:
    pattern = re.compile(rf"""\b{name}\s*=\s*("[^"]*"|'[^']*')""", re.IGNORECASE)
    return pattern.sub(lambda _: f'{name}="{html.escape(value)}"', tag, count=1)


def rewrite_page(text: str, site: Path, assets: dict[str, Asset] = ASSETS) -> tuple[str, list[str]]:
    """Point every ``<script src>`` and ``<link href>`` of a CDN in ``assets`` at its copy under ``site``.

    Returns the new page and one line per rewritten reference. An integrity
    attribute is kept when the local file matches it, and otherwise replaced
    by the local file's sha384. Raises PublishError for an external reference
    not in ``assets`` or a local copy that is missing.
    """
    notes: list[str] = []

    def replace(match: re.Match[str]) -> str:
        tag = match.group(0)
        attrs = _attributes(tag)
        key = "src" if match.group(1).lower() == "script" else "href"
        url = attrs.get(key, "")
        if not _EXTERNAL.match(url) or (key == "href" and attrs.get("rel", "").lower() == "alternate"):
            return tag
        asset = assets.get(url)
        if asset is None:
            raise PublishError(f"no local copy known for {url}: add it to ASSETS in benchmarks/publish.py")
        local = site / asset.local
        if not local.is_file():
            raise PublishError(f"{local} is missing: vendor() did not run for {asset.package}@{asset.version}")
        tag = _set_attribute(tag, key, asset.local)
        integrity = attrs.get("integrity")
        if integrity is not None:
            data = local.read_bytes()
            if _integrity_holds(integrity, data):
                notes.append(f"{asset.local}: same file as {url} (integrity kept)")
            else:
                tag = _set_attribute(tag, "integrity", sri(data))
                notes.append(f"{asset.local}: npm build of {url} (integrity of the local file)")
        else:
            notes.append(f"{asset.local}: stands in for {url}")
        return tag

    return _TAG.sub(replace, text), notes


def external_references(site: Path) -> list[str]:
    """Every reference in the site's HTML and CSS that a browser would fetch from outside the site.

    Looks at ``<script src>``, ``<link href>`` (except ``rel="alternate"``, a
    feed link no browser fetches), CSS ``url(...)`` and ``@import``, in
    every ``.html`` and ``.css`` file. Returns ``"file: reference"`` lines;
    empty means self-contained.
    """
    found: list[str] = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in (".html", ".css") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        refs: list[str] = []
        if path.suffix == ".html":
            for match in _TAG.finditer(text):
                attrs = _attributes(match.group(0))
                if match.group(1).lower() == "script":
                    refs.append(attrs.get("src", ""))
                elif attrs.get("rel", "").lower() != "alternate":
                    refs.append(attrs.get("href", ""))
        refs += [m.group(1) for m in _CSS_URL.finditer(text)] + [m.group(1) for m in _CSS_IMPORT.finditer(text)]
        found += [f"{path.relative_to(site)}: {ref}" for ref in refs if _EXTERNAL.match(ref)]
    return found


def make_self_contained(site: Path, npm_dir: Path, assets: dict[str, Asset] = ASSETS) -> list[str]:
    """Vendor ``assets`` into ``site``, rewrite its pages, and check nothing external is left.

    Returns the notes of every rewritten reference; raises PublishError on any failure.
    """
    index = site / "index.html"
    if not index.is_file():
        raise PublishError(f"{index} not found: run asv publish first")
    vendor(assets.values(), site, npm_dir)
    notes: list[str] = []
    for page in sorted(site.glob("*.html")):
        text, page_notes = rewrite_page(page.read_text(encoding="utf-8"), site, assets)
        page.write_text(text, encoding="utf-8")
        notes += page_notes
    left = external_references(site)
    if left:
        raise PublishError("external references remain:\n  " + "\n  ".join(left))
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-dir", type=Path, default=ROOT / ".asv" / "html", help="the published site")
    parser.add_argument("--npm-dir", type=Path, default=ROOT / ".asv" / "npm", help="cache of npm tarballs")
    parser.add_argument(
        "--no-asv-publish", action="store_true", help="rewrite the site as it is, without running asv publish"
    )
    args = parser.parse_args(argv)
    if not args.no_asv_publish:
        asv = [sys.executable, "-m", "asv", "publish", "--html-dir", str(args.html_dir)]
        if subprocess.run(asv, cwd=ROOT, check=False).returncode != 0:
            print("publish: asv publish failed", file=sys.stderr)
            return 1
    try:
        notes = make_self_contained(args.html_dir, args.npm_dir)
    except PublishError as exc:
        print(f"publish: {exc}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"  {note}")
    print(f"{args.html_dir}: self-contained ({len(notes)} references now local, none external)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
