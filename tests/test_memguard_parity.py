"""The helpers a port from Go memguard expects: move_at, Buffer.reader(), copy_bytes, move_bytes."""

from __future__ import annotations

import pytest

from securememory.errors import BufferDestroyedError, InvalidTypeError, ProtectionError
from securememory.memguard import Buffer, BufferReader, Protection, copy_bytes, move_bytes


def test_move_at_copies_at_the_offset_and_wipes_the_source() -> None:
    with Buffer(8) as buf:
        src = bytearray(b"abc")
        buf.move_at(2, src)
        assert bytes(buf.view()) == b"\0\0abc\0\0\0" and src == bytearray(3)
        src = bytearray(b"wxyz")
        buf.move_at(6, src)  # what does not fit is not copied, all of the source is wiped
        assert bytes(buf.view()) == b"\0\0abc\0wx" and src == bytearray(4)


def test_move_at_refuses_a_source_it_cannot_wipe_before_copying() -> None:
    with Buffer(4) as buf:
        with pytest.raises(InvalidTypeError, match="writable source"):
            buf.move_at(0, b"abcd")
        assert bytes(buf.view()) == bytes(4)


def test_reader_reads_in_pieces_then_eof() -> None:
    with Buffer.from_bytes(bytearray(b"0123456789")) as buf:
        r = buf.reader()
        assert isinstance(r, BufferReader)
        out = bytearray(4)
        got = []
        for size in (4, 4, 1, 4, 4):
            n = r.readinto(memoryview(out)[:size])
            got.append(bytes(out[:n]))
        assert got == [b"0123", b"4567", b"8", b"9", b""]
        assert buf.reader().read() == b"0123456789"


def test_reader_follows_the_buffer_state() -> None:
    buf = Buffer.from_bytes(bytearray(b"secret"))
    r = buf.reader()
    buf.protect(Protection.NO_ACCESS)
    with pytest.raises(ProtectionError):
        r.read(1)
    buf.destroy()
    with pytest.raises(BufferDestroyedError):
        r.read(1)
    with pytest.raises(InvalidTypeError):
        Buffer(1).reader().readinto(b"x")


def test_copy_bytes_and_move_bytes() -> None:
    dst = bytearray(4)
    assert copy_bytes(dst, b"abcdef") == 4 and dst == bytearray(b"abcd")
    src = bytearray(b"xy")
    assert move_bytes(dst, src) == 2 and dst == bytearray(b"xycd") and src == bytearray(2)
    with pytest.raises(InvalidTypeError):
        copy_bytes(b"read-only", b"x")
    with pytest.raises(InvalidTypeError, match="could not be wiped"):
        move_bytes(dst, b"zz")
    assert dst == bytearray(b"xycd")
