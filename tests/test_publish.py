"""benchmarks/publish.py: CDN references become local copies from npm tarballs, and nothing external is left."""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import publish  # noqa: E402
from benchmarks.publish import Asset, PublishError  # noqa: E402

LIB = b"window.lib = 1;\n"
STYLE = b"body { background: url(../img/dot.png); }\n"
LIB_URL = "https://cdn.example.org/lib/1.0/lib.min.js"
STYLE_URL = "https://cdn.example.org/lib/1.0/lib.css"
ASSETS = {
    LIB_URL: Asset("lib", "1.0.0", "dist/lib.js"),
    STYLE_URL: Asset("lib", "1.0.0", "dist/lib.css"),
}


def npm_tarball(npm_dir: Path, files: dict[str, bytes]) -> None:
    """What ``npm pack lib@1.0.0`` leaves behind: lib-1.0.0.tgz with everything under package/."""
    npm_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(npm_dir / "lib-1.0.0.tgz", "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def site_with(tmp_path: Path, head: str) -> tuple[Path, Path]:
    site, npm_dir = tmp_path / "html", tmp_path / "npm"
    site.mkdir()
    (site / "index.html").write_text(
        f"<!DOCTYPE html><html><head>{head}</head>"
        '<body><a href="https://github.com/airspeed-velocity/asv/">asv</a></body></html>'
    )
    npm_tarball(
        npm_dir,
        {
            "dist/lib.js": LIB,
            "dist/lib.css": STYLE,
            "LICENSE": b"MIT\n",
            "package.json": json.dumps({"name": "lib", "license": "MIT"}).encode(),
            "test/big.js": b"not copied",
        },
    )
    return site, npm_dir


def test_cdn_references_point_at_local_copies(tmp_path: Path) -> None:
    kept = publish.sri(LIB, "sha256")
    site, npm_dir = site_with(
        tmp_path,
        f'<script src="{LIB_URL}" integrity="{kept}" crossorigin="anonymous" onerror="f()"></script>'
        f'<link rel="stylesheet" href="{STYLE_URL}" integrity="sha256-AAAA">'
        '<script src="asv.js"></script><link rel="alternate" href="https://example.org/feed.xml">',
    )
    assert publish.external_references(site) == [
        f"index.html: {LIB_URL}",
        f"index.html: {STYLE_URL}",
    ]
    notes = publish.make_self_contained(site, npm_dir, ASSETS)
    page = (site / "index.html").read_text()
    assert f'<script src="vendor/lib-1.0.0/dist/lib.js" integrity="{kept}" crossorigin="anonymous"' in page
    # The CDN's hash does not match the npm file: the tag pins the local file instead.
    assert f'href="vendor/lib-1.0.0/dist/lib.css" integrity="{publish.sri(STYLE)}"' in page
    assert (site / "vendor/lib-1.0.0/dist/lib.js").read_bytes() == LIB
    assert (site / "vendor/lib-1.0.0/LICENSE").read_bytes() == b"MIT\n"
    assert (site / "vendor/lib-1.0.0/package.json").is_file()
    assert not (site / "vendor/lib-1.0.0/test").exists()
    assert len(notes) == 2 and "integrity kept" in notes[0] and "integrity of the local file" in notes[1]
    assert publish.external_references(site) == []


def test_unknown_cdn_reference_is_refused(tmp_path: Path) -> None:
    site, npm_dir = site_with(tmp_path, '<script src="https://cdn.example.org/other.js"></script>')
    with pytest.raises(PublishError, match=r"no local copy known for https://cdn\.example\.org/other\.js"):
        publish.make_self_contained(site, npm_dir, ASSETS)


def test_external_reference_in_a_stylesheet_fails_the_check(tmp_path: Path) -> None:
    site, npm_dir = site_with(tmp_path, f'<script src="{LIB_URL}"></script>')
    (site / "extra.css").write_text("@import 'https://fonts.example.org/a.css'; p { background: url(//x.org/i.png) }")
    with pytest.raises(PublishError, match="external references remain") as info:
        publish.make_self_contained(site, npm_dir, ASSETS)
    assert "extra.css: https://fonts.example.org/a.css" in str(info.value)
    assert "extra.css: //x.org/i.png" in str(info.value)


def test_missing_file_in_package_is_refused(tmp_path: Path) -> None:
    site, npm_dir = site_with(tmp_path, f'<script src="{LIB_URL}"></script>')
    assets = {LIB_URL: Asset("lib", "1.0.0", "dist/absent.js")}
    with pytest.raises(PublishError, match=r"lib@1\.0\.0 has no file dist/absent\.js"):
        publish.make_self_contained(site, npm_dir, assets)


def test_npm_missing_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(PublishError, match="npm not found"):
        publish.fetch_package("lib", "9.9.9", tmp_path / "npm")


def test_every_asset_of_asv_is_known() -> None:
    """Each CDN reference in the index.html of the installed asv has an npm stand-in."""
    asv = pytest.importorskip("asv", reason="asv is in the dev extra")
    template = Path(asv.__file__).parent / "www" / "index.html"
    site = template.parent
    refs = {line.split(": ", 1)[1] for line in publish.external_references(site) if line.startswith("index.html:")}
    assert refs, "asv's template has no CDN reference any more: the rewrite is not needed"
    assert refs <= set(publish.ASSETS)
