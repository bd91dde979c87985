"""Stream: sealed chunks, reads that re-seal leftovers, and O(chunk) locked memory."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest
from conftest import LIMIT, PAGE, restricted, run_ok

from harness import child
from securememory import errors
from securememory.memcall import capabilities
from securememory.memguard import OVERHEAD, Buffer, Stream, purge, registry


def _read_all(s: Stream, step: int) -> bytes:
    out = bytearray()
    buf = bytearray(step)
    while True:
        n = s.readinto(buf)
        if n == 0:
            return bytes(out)
        out += buf[:n]


def test_default_chunk_size_is_four_pages() -> None:
    assert Stream().chunk_size == 4 * PAGE


@pytest.mark.parametrize("chunk", [1, 7, 100, None])
@pytest.mark.parametrize("step", [1, 5, 64, 3 * PAGE])
def test_write_then_read(chunk: int | None, step: int) -> None:
    s = Stream(chunk) if chunk is not None else Stream()
    data = os.urandom(1000 if 1 in (chunk, step) else 20000)
    assert s.write(bytearray(data[:300])) == 300
    assert s.write(bytearray(data[300:])) == len(data) - 300
    assert s.size == len(s) == len(data)
    assert _read_all(s, step) == data
    assert s.size == 0
    assert s.readinto(bytearray(10)) == 0


def test_write_wipes_writable_input_but_not_bytes() -> None:
    s = Stream()
    src = bytearray(b"wipe me please")
    s.write(src)
    assert src == bytearray(len(src))
    view_src = memoryview(bytearray(b"and me"))
    s.write(view_src)
    assert bytes(view_src) == bytes(6)
    data = b"bytes stay"
    s.write(data)
    assert data == b"bytes stay"
    assert _read_all(s, 100) == b"wipe me pleaseand mebytes stay"


def test_partial_read_reseals_the_leftover() -> None:
    s = Stream(10)
    s.write(b"0123456789abcdefghij")
    first = s._chunks[0]
    buf = bytearray(4)
    assert s.readinto(buf) == 4 and buf == bytearray(b"0123")
    assert s.size == 16
    assert s._chunks[0] is not first  # a fresh seal of the 6 bytes left
    assert len(s._chunks[0]) == 6 + OVERHEAD
    assert b"456789" not in bytes(s._chunks[0])
    nxt = s.next()
    assert bytes(nxt.view()) == b"456789"
    assert bytes(s.next().view()) == b"abcdefghij"


def test_chunk_size_is_used_by_next() -> None:
    s = Stream(3)
    s.write(b"abcdefghij")
    sizes = []
    pieces = []
    while s.size:
        with s.next() as b:
            assert not b.mutable
            sizes.append(b.size)
            pieces.append(bytes(b.view()))
    assert sizes == [3, 3, 3, 1]
    assert b"".join(pieces) == b"abcdefghij"
    assert all(len(c) <= 3 + OVERHEAD for c in s._chunks)


def test_default_chunks_are_four_pages() -> None:
    s = Stream()
    s.write(bytes(10 * PAGE))
    with s.next() as b:
        assert b.size == 4 * PAGE


def test_flush() -> None:
    s = Stream(5)
    data = os.urandom(23)
    s.write(data)
    with s.flush() as b:
        assert not b.mutable
        assert bytes(b.view()) == data
    assert s.size == 0
    with pytest.raises(errors.StreamEmptyError):
        s.flush()


def test_empty_stream() -> None:
    s = Stream()
    assert s.size == 0
    assert s.readinto(bytearray(8)) == 0
    for op in (s.next, s.flush):
        with pytest.raises(errors.StreamEmptyError) as info:
            op()
        assert isinstance(info.value, EOFError)


def test_zero_length_reads_and_writes() -> None:
    s = Stream()
    assert s.write(b"") == 0
    assert s.write(bytearray()) == 0
    assert s.size == 0 and len(s._chunks) == 0
    s.write(b"abc")
    assert s.readinto(bytearray()) == 0
    assert s.size == 3
    assert _read_all(s, 2) == b"abc"


@pytest.mark.parametrize("chunk", [0, -1, -4096])
def test_chunk_size_values(chunk: int) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        Stream(chunk)


@pytest.mark.parametrize("chunk", [1.5, "4096", True, False, b"1"])
def test_chunk_size_types(chunk: object) -> None:
    with pytest.raises(errors.InvalidTypeError):
        Stream(chunk)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["text", 5, None, 1.5])
def test_write_rejects_non_bytes(bad: object) -> None:
    s = Stream()
    with pytest.raises(errors.InvalidTypeError):
        s.write(bad)
    assert s.size == 0


@pytest.mark.parametrize("bad", [b"immutable", memoryview(b"ro"), "text", None])
def test_readinto_rejects_read_only_targets(bad: object) -> None:
    s = Stream()
    s.write(b"abc")
    with pytest.raises(errors.InvalidTypeError):
        s.readinto(bad)
    assert s.size == 3


def test_bad_mlock_argument() -> None:
    with pytest.raises(errors.InvalidArgumentError):
        Stream(mlock="sometimes")


def test_readinto_locked_memory() -> None:
    s = Stream(7)
    s.write(b"straight into locked memory")
    with Buffer(27) as b:
        assert s.readinto(b.view()) == 27
        assert bytes(b.view()) == b"straight into locked memory"


def test_tampered_chunk_raises_and_stays(registry_baseline: Any) -> None:
    s = Stream(4)
    s.write(b"abcdefgh")
    s._chunks[0][-1] ^= 1
    s.readinto(bytearray(0))
    before = registry_baseline()
    with pytest.raises(errors.DecryptionError):
        s.readinto(bytearray(4))
    assert s.size == 8
    with pytest.raises(errors.DecryptionError):
        s.next()
    with pytest.raises(errors.DecryptionError):
        s.flush()
    assert s.size == 8
    assert registry_baseline()[0] <= before[0] + 1  # at most the stream's scratch buffer


def test_purge_makes_stream_unreadable() -> None:
    s = Stream()
    s.write(b"sealed under the old key")
    purge()
    with pytest.raises(errors.DecryptionError):
        s.readinto(bytearray(5))


def test_destroy() -> None:
    s = Stream(4)
    s.write(b"abcdefgh")
    s.readinto(bytearray(2))
    scratch = s._scratch
    assert scratch is not None and scratch.alive
    s.destroy()
    assert s.size == 0 and not scratch.alive
    assert s.readinto(bytearray(4)) == 0
    assert "abcd" not in repr(s)


def test_locked_memory_stays_one_chunk() -> None:
    if not capabilities().mlock_works:
        pytest.skip("mlock does not work here")
    s = Stream()
    for _ in range(64):
        s.write(bytes(4 * PAGE))
    baseline = registry.count()
    locked = capabilities().locked_bytes
    buf = bytearray(PAGE)
    while s.readinto(buf):
        assert registry.count() <= baseline + 1
        assert capabilities().locked_bytes <= locked + 5 * PAGE


def _pattern(i: int) -> bytearray:
    """1 MiB block number ``i`` of a reproducible stream."""
    seed = hashlib.sha512(i.to_bytes(4, "little")).digest()
    return bytearray(seed * (1024 * 1024 // len(seed)))


@pytest.mark.restricted
def test_64_mib_under_64_kib_memlock() -> None:
    def body(ctx: child.Context) -> None:
        s = Stream()
        written = hashlib.sha256()
        for i in range(64):
            block = _pattern(i)
            written.update(block)
            s.write(block)
            if block != bytearray(len(block)):
                raise AssertionError("write did not wipe its input")
        ctx.report([s.size, capabilities().locked_bytes])
        read = hashlib.sha256()
        buf = bytearray(1024 * 1024 + 12345)  # not a multiple of the chunk size
        peak = 0
        total = 0
        while True:
            n = s.readinto(buf)
            if n == 0:
                break
            total += n
            read.update(memoryview(buf)[:n])
            peak = max(peak, capabilities().locked_bytes)
        ctx.report([total, s.size, peak, written.hexdigest() == read.hexdigest()])
        c = capabilities()
        ctx.report([c.cap_ipc_lock, c.memlock_soft])

    out = run_ok(body, restriction=restricted(), timeout=300)
    (size, locked_after_write), (total, left, peak, same), (cap, limit) = out.reports
    assert size == 64 * 1024 * 1024
    assert total == 64 * 1024 * 1024 and left == 0
    assert same
    assert cap is False and limit == LIMIT
    assert locked_after_write <= LIMIT and peak <= LIMIT
