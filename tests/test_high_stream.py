"""securememory.Stream as a binary file object over sealed chunks."""

from __future__ import annotations

import io
import shutil

import pytest

from securememory import Secret, Stream
from securememory.errors import StreamEmptyError
from securememory.memguard import OVERHEAD, registry

DATA = bytes(range(256)) * 40  # 10240 bytes


def test_is_a_raw_binary_file_object() -> None:
    s = Stream()
    assert isinstance(s, io.RawIOBase)
    assert s.readable() and s.writable() and not s.seekable()
    s.close()
    assert s.closed


def test_write_wipes_writable_input_and_counts_size() -> None:
    s = Stream(chunk_size=1000)
    src = bytearray(DATA)
    assert s.write(src) == len(DATA)
    assert src == bytearray(len(DATA))
    assert s.size == len(DATA)
    assert s.write(b"tail") == 4
    assert s.size == len(DATA) + 4
    s.close()


def test_chunks_are_sealed_not_plaintext() -> None:
    s = Stream(chunk_size=64)
    marker = b"plaintext-marker" * 8
    s.write(marker)
    stored = b"".join(bytes(c) for c in s._chunks._chunks)
    assert len(stored) == len(marker) + 2 * OVERHEAD
    assert b"plaintext-marker" not in stored
    s.close()


@pytest.mark.parametrize("chunk", [1, 7, 4096, 16384])
def test_readinto_and_read_return_the_bytes_in_order(chunk: int) -> None:
    s = Stream(chunk_size=chunk)
    s.write(DATA[:5000])
    s.write(bytearray(DATA[5000:]))
    buf = bytearray(333)
    out = bytearray()
    n = s.readinto(buf)
    out += buf[:n]
    out += s.read(1234)
    assert s.size == len(DATA) - len(out)
    out += s.read()
    assert bytes(out) == DATA
    assert s.size == 0
    assert s.read(10) == b""
    assert s.readinto(bytearray(5)) == 0
    s.close()


def test_iteration_yields_chunks_as_secrets() -> None:
    s = Stream(chunk_size=4096)
    s.write(DATA)
    chunks = list(s)
    assert all(isinstance(c, Secret) for c in chunks)
    assert [len(c) for c in chunks] == [4096, 4096, 2048]
    assert b"".join(c.with_bytes(bytes) for c in chunks) == DATA
    assert s.size == 0
    for c in chunks:
        c.close()
    assert list(s) == []
    s.close()


def test_partial_read_then_next_secret_gives_the_rest_of_the_chunk() -> None:
    s = Stream(chunk_size=10)
    s.write(b"0123456789abcdefghij")
    assert s.read(3) == b"012"
    with s.next_secret() as first:
        assert first.with_bytes(bytes) == b"3456789"
    with s.flush_secret() as rest:
        assert rest.with_bytes(bytes) == b"abcdefghij"
    with pytest.raises(StreamEmptyError):
        s.next_secret()
    with pytest.raises(EOFError):
        s.flush_secret()
    s.close()


def test_chunk_secrets_are_no_access_between_borrows() -> None:
    s = Stream(chunk_size=16)
    s.write(b"x" * 16)
    secret = s.next_secret()
    from _secret_helpers import borrowed_address, inaccessible

    assert inaccessible(borrowed_address(secret))
    secret.close()
    s.close()


def test_usable_with_shutil_and_buffered_io() -> None:
    s = Stream(chunk_size=1000)
    s.write(DATA)
    reader = io.BufferedReader(s, buffer_size=512)
    assert reader.read(10) == DATA[:10]
    sink = io.BytesIO()
    shutil.copyfileobj(reader, sink)
    assert sink.getvalue() == DATA[10:]
    s2 = Stream(chunk_size=100)
    shutil.copyfileobj(io.BytesIO(DATA), s2)
    assert s2.size == len(DATA)
    assert s2.read() == DATA
    s.close()
    s2.close()


def test_closed_stream_refuses_io_and_frees_scratch() -> None:
    s = Stream(chunk_size=64)
    s.write(b"z" * 100)
    before = registry.count()
    assert s.read(1) == b"z"
    assert registry.count() == before + 1
    s.close()
    assert registry.count() == before
    for op in (lambda: s.write(b"x"), lambda: s.read(1), lambda: s.readinto(bytearray(1)), s.next_secret):
        with pytest.raises(ValueError):
            op()
    s.close()


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        Stream(chunk_size=0)
    with pytest.raises(TypeError):
        Stream(chunk_size="big")  # type: ignore[arg-type]
    s = Stream()
    with pytest.raises(TypeError):
        s.write("text")
    with pytest.raises(TypeError):
        s.readinto(b"read-only")
    s.close()
