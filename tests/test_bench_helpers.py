"""The benchmarks' helpers: the libsodium loader (and the skip without it) and the Stream peak-RSS child.

Nothing here times anything: these check that the measurements can be taken
and that their absence is reported as such.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import bench_peers, sodium, stream_rss  # noqa: E402


@pytest.fixture
def no_libsodium(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sodium, "_loaded", None)
    monkeypatch.setattr(sodium, "_candidates", lambda: ["libsodium-absent-for-this-test.so.0"])


def test_without_libsodium_the_peer_benchmarks_skip_saying_so(no_libsodium: None) -> None:
    with pytest.raises(sodium.NotInstalled, match="libsodium not installed"):
        sodium.load()
    assert not sodium.available()
    with pytest.raises(NotImplementedError, match="libsodium not installed"):
        bench_peers.Libsodium().setup()
    assert bench_peers.LibsodiumInstalled().track_installed() == 0.0


def test_libsodium_guarded_heap_through_the_loader() -> None:
    try:
        lib = sodium.load()
    except sodium.NotInstalled as exc:
        pytest.skip(str(exc))
    assert bench_peers.LibsodiumInstalled().track_installed() == 1.0
    assert lib.version.count(".") >= 1
    for name in ("sodium_malloc", "sodium_free", "sodium_mprotect_noaccess", "sodium_mprotect_readonly"):
        assert lib.address(name) != 0
    p = lib.lib.sodium_malloc(32)
    assert p != lib.ffi.NULL
    try:
        lib.ffi.memmove(p, b"k" * 32, 32)
        assert lib.lib.sodium_mprotect_noaccess(p) == 0
        assert lib.lib.sodium_mprotect_readonly(p) == 0
        assert lib.ffi.buffer(p, 32)[:] == b"k" * 32
        assert lib.lib.sodium_mprotect_noaccess(p) == 0
    finally:
        lib.lib.sodium_free(p)


def _stream_rss(*args: str) -> subprocess.CompletedProcess[str]:
    script = ROOT / "benchmarks" / "stream_rss.py"
    return subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("kind", ["memguard", "securememory"])
def test_stream_rss_counts_the_sealed_copy_and_the_destination(kind: str) -> None:
    # a fresh interpreter, as the benchmark runs it (a long-lived heap can lend resident pages)
    size = 8 << 20
    done = _stream_rss(kind, str(size))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["kind"] == kind and result["data"] == size
    assert result["above_baseline"] == result["peak"] - result["baseline"]
    # the sealed copy and the destination are both resident at the end of the read
    assert result["above_baseline"] >= 1.5 * size
    assert result["method"].startswith(("VmHWM", "getrusage"))


def test_stream_rss_falls_back_to_getrusage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_rss, "_reset_peak", lambda: False)
    result = stream_rss.measure("memguard", 1 << 20)
    assert result["method"] == "getrusage ru_maxrss"
    assert result["peak"] >= result["baseline"] > 0


def test_stream_rss_refuses_bad_arguments() -> None:
    for args in ((), ("memguard", "lots"), ("memguard", "1", "2")):
        bad = _stream_rss(*args)
        assert bad.returncode == 2 and "usage: python benchmarks/stream_rss.py" in bad.stderr
    unknown = _stream_rss("other", "65536")
    assert unknown.returncode != 0 and "unknown stream kind" in unknown.stderr
