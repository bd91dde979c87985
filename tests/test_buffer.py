"""memguard Buffer: layout, constructors, access, protection and end of life."""

from __future__ import annotations

import array
import io
import os
import pickle
from collections.abc import Callable

import pytest
from conftest import PAGE, mapping_at, peek

from harness import memory
from securememory import errors
from securememory._native import lib
from securememory.memcall import capabilities
from securememory.memguard import Buffer, Protection, scramble_bytes, wipe_bytes

CANARY_MIN = int(lib.SM_CANARY_MIN)


def _layout_sizes() -> list[int]:
    sizes = set(range(1, 40))
    for k in (1, 2, 3):
        edge = k * PAGE
        sizes.update(range(edge - CANARY_MIN - 3, edge - CANARY_MIN + 4))
        sizes.update(range(edge - 3, edge + 2))
    return sorted(s for s in sizes if 1 <= s <= 3 * PAGE + 1)


@pytest.mark.parametrize("size", _layout_sizes())
def test_layout(size: int) -> None:
    b = Buffer(size)
    try:
        inner, inner_len = b.inner_span()
        assert inner % PAGE == 0 and inner_len % PAGE == 0
        # Right-aligned: the byte after the data is the first byte of the trailing guard.
        assert b.address + b.size == inner + inner_len
        canary_len = inner_len - size
        assert canary_len >= CANARY_MIN
        assert inner_len == -(-(size + CANARY_MIN) // PAGE) * PAGE
        canary = peek(inner, canary_len)
        assert canary != bytes(canary_len)
        maps = memory.mappings(os.getpid())
        lead = next(m for m in maps if m.contains(inner - PAGE))
        trail = next(m for m in maps if m.contains(inner + inner_len))
        body = next(m for m in maps if m.contains(inner, inner_len))
        assert lead.perms.startswith("---") and trail.perms.startswith("---")
        assert body.perms.startswith("rw")
        assert lead.end == inner and trail.start == inner + inner_len
        assert bytes(b.view()) == bytes(size)
    finally:
        b.destroy()


def test_page_multiple_gets_a_canary() -> None:
    with Buffer(PAGE) as b:
        inner, inner_len = b.inner_span()
        assert inner_len == 2 * PAGE
        assert b.address == inner + PAGE
        assert peek(inner, PAGE) != bytes(PAGE)


def test_canaries_differ_between_buffers() -> None:
    with Buffer(32) as a, Buffer(32) as b:
        ca = peek(a.inner_span()[0], PAGE - 32)
        cb = peek(b.inner_span()[0], PAGE - 32)
        assert ca != cb


def test_inner_pages_are_locked_not_dumped_wiped_on_fork() -> None:
    if not capabilities().mlock_works:
        pytest.skip("mlock does not work here; covered by the restricted policy tests")
    before = capabilities().locked_bytes
    with Buffer(100) as b:
        inner, inner_len = b.inner_span()
        m = mapping_at(inner)
        assert {"lo", "dd", "wf"} <= m.flags
        assert m.locked >= inner_len
        assert b.locked
        assert capabilities().locked_bytes == before + inner_len
        for guard in (inner - PAGE, inner + inner_len):
            g = mapping_at(guard)
            assert "lo" not in g.flags
    assert capabilities().locked_bytes == before


def test_destroy_unmaps_everything() -> None:
    b = Buffer(64)
    inner, inner_len = b.inner_span()
    b.destroy()
    maps = memory.mappings(os.getpid())
    for addr in (inner - PAGE, inner, inner + inner_len):
        assert not any(m.contains(addr) for m in maps)


# -- sizes -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1.5, "32", b"1", None, True, False, [32]])
def test_bad_size_types(size: object, registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    for make in (Buffer, Buffer.random):
        with pytest.raises(errors.InvalidTypeError) as info:
            make(size)
        assert isinstance(info.value, TypeError)
    assert registry_baseline() == before  # type: ignore[operator]


@pytest.mark.parametrize("size", [0, -1, -PAGE, (1 << 62) + 1])
def test_bad_size_values(size: int, registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    for make in (Buffer, Buffer.random):
        with pytest.raises(errors.InvalidArgumentError) as info:
            make(size)
        assert isinstance(info.value, ValueError)
    with pytest.raises(errors.InvalidArgumentError):
        Buffer.from_reader(io.BytesIO(b"x"), size)
    assert registry_baseline() == before  # type: ignore[operator]


def test_absurd_size_is_an_allocation_error(registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    with pytest.raises(errors.AllocationError):
        Buffer(1 << 62)
    assert registry_baseline() == before  # type: ignore[operator]


# -- constructors ------------------------------------------------------------------------


def test_new_buffer_is_zero_and_mutable() -> None:
    with Buffer(48) as b:
        assert b.size == 48 and b.alive and b.mutable
        assert b.protection == Protection.READ_WRITE
        assert bytes(b.view()) == bytes(48)


@pytest.mark.parametrize(
    "make",
    [
        lambda d: bytearray(d),
        lambda d: memoryview(bytearray(d)),
        lambda d: array.array("B", d),
    ],
)
def test_from_bytes_wipes_writable_sources(make: object) -> None:
    data = os.urandom(40)
    src = make(data)  # type: ignore[operator]
    with Buffer.from_bytes(src) as b:
        assert bytes(b.view()) == data
    assert bytes(src) == bytes(40)


def test_from_bytes_copies_bytes_without_wiping() -> None:
    data = os.urandom(40)
    with Buffer.from_bytes(data) as b:
        assert bytes(b.view()) == data
    assert data != bytes(40)


def test_from_bytes_readonly_memoryview_is_not_wiped() -> None:
    src = bytearray(b"abcdef")
    with Buffer.from_bytes(memoryview(src).toreadonly()) as b:
        assert bytes(b.view()) == b"abcdef"
    assert src == bytearray(b"abcdef")


@pytest.mark.parametrize("src", ["text", 123, None, 1.5, [1, 2]])
def test_from_bytes_rejects_non_bytes(src: object) -> None:
    with pytest.raises(errors.InvalidTypeError):
        Buffer.from_bytes(src)


@pytest.mark.parametrize("src", [b"", bytearray()])
def test_from_bytes_rejects_empty(src: object, registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    with pytest.raises(errors.InvalidArgumentError):
        Buffer.from_bytes(src)
    assert registry_baseline() == before  # type: ignore[operator]


def test_random() -> None:
    with Buffer.random(64) as a, Buffer.random(64) as b:
        assert bytes(a.view()) != bytes(64)
        assert bytes(a.view()) != bytes(b.view())
        assert not a.mutable  # filled buffers come back frozen, as in memguard


@pytest.mark.parametrize(
    "make",
    [
        lambda: Buffer.from_bytes(bytearray(b"filled")),
        lambda: Buffer.random(16),
        lambda: Buffer.from_reader(io.BytesIO(b"filled"), 6),
        lambda: Buffer.from_entire_reader(io.BytesIO(b"filled")),
    ],
)
def test_filled_buffers_come_back_frozen(make: Callable[[], Buffer]) -> None:
    with make() as b:
        assert not b.mutable
        with pytest.raises(errors.ReadOnlyError):
            b.wipe()
        b.melt()
        b.wipe()
        assert bytes(b.view()) == bytes(b.size)


def test_destroyed_buffer_reports_size_zero() -> None:
    b = Buffer(40)
    assert b.size == 40
    b.destroy()
    assert b.size == 0


@pytest.mark.parametrize("size", [1, 100, PAGE, 3 * PAGE + 5])
def test_from_reader(size: int) -> None:
    data = os.urandom(size + 10)
    reader = io.BytesIO(data)
    with Buffer.from_reader(reader, size) as b:
        assert bytes(b.view()) == data[:size]
    assert reader.read() == data[size:]


class _Trickle(io.RawIOBase):
    """A reader that hands out at most 3 bytes per readinto."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b: object) -> int:
        view = memoryview(b)  # type: ignore[arg-type]
        return self._data.readinto(view[:3])


def test_from_reader_with_short_reads() -> None:
    data = os.urandom(50)
    with Buffer.from_reader(_Trickle(data), 50) as b:
        assert bytes(b.view()) == data


def test_from_reader_short_is_error_and_leaves_nothing(registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    with pytest.raises(errors.InvalidArgumentError, match="5 of 10"):
        Buffer.from_reader(io.BytesIO(b"12345"), 10)
    assert registry_baseline() == before  # type: ignore[operator]


@pytest.mark.parametrize("reader", [b"abc", "abc", None, 42])
def test_from_reader_needs_readinto(reader: object) -> None:
    with pytest.raises(errors.InvalidTypeError):
        Buffer.from_reader(reader, 3)
    with pytest.raises(errors.InvalidTypeError):
        Buffer.from_entire_reader(reader)


@pytest.mark.parametrize("size", [1, 100, PAGE - CANARY_MIN - 1, PAGE - CANARY_MIN, PAGE, 5 * PAGE + 3])
def test_from_entire_reader(size: int, registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    data = os.urandom(size)
    with Buffer.from_entire_reader(_Trickle(data) if size < 200 else io.BytesIO(data)) as b:
        assert b.size == size
        assert bytes(b.view()) == data
        assert registry_baseline()[0] == before[0] + 1  # type: ignore[operator]
    assert registry_baseline() == before  # type: ignore[operator]


def test_from_entire_reader_empty(registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    with pytest.raises(errors.InvalidArgumentError):
        Buffer.from_entire_reader(io.BytesIO(b""))
    assert registry_baseline() == before  # type: ignore[operator]


# -- access ---------------------------------------------------------------------------------


def test_freeze_and_melt() -> None:
    with Buffer.from_bytes(bytearray(b"secret")) as b:
        b.freeze()
        assert not b.mutable and b.alive
        assert b.protection == Protection.READ_ONLY
        assert mapping_at(b.address).perms.startswith("r-")
        view = b.view()
        assert view.readonly and bytes(view) == b"secret"
        with pytest.raises(TypeError):
            view[0] = 1
        for op in (b.wipe, b.scramble, lambda: b.copy(b"x"), lambda: b.copy_at(1, b"x"),
                   lambda: b.move(bytearray(b"x"))):
            with pytest.raises(errors.ReadOnlyError):
                op()
        assert bytes(b.view()) == b"secret"
        b.melt()
        assert b.mutable and not b.view().readonly
        assert mapping_at(b.address).perms.startswith("rw")
        b.view()[0] = ord("S")
        assert bytes(b.view()) == b"Secret"


def test_no_access() -> None:
    with Buffer.from_bytes(bytearray(b"abc")) as b:
        b.protect(Protection.NO_ACCESS)
        assert mapping_at(b.address).perms.startswith("---")
        assert not b.mutable
        with pytest.raises(errors.ProtectionError):
            b.view()
        with pytest.raises(errors.ProtectionError):
            b.equal_to(b"abc")
        with pytest.raises(errors.ReadOnlyError):
            b.wipe()
        b.protect(Protection.READ_ONLY)
        assert bytes(b.view()) == b"abc"


@pytest.mark.parametrize("bad", [0, 1, 3, "READ_ONLY", None, True])
def test_protect_rejects_wrong_values(bad: object) -> None:
    with Buffer(8) as b:
        with pytest.raises(errors.InvalidTypeError):
            b.protect(bad)  # type: ignore[arg-type]
        assert b.mutable
        assert mapping_at(b.address).perms.startswith("rw")


def test_wipe_and_scramble() -> None:
    with Buffer.from_bytes(bytearray(b"\xff" * 64)) as b:
        b.melt()
        b.wipe()
        assert bytes(b.view()) == bytes(64)
        b.scramble()
        first = bytes(b.view())
        assert first != bytes(64)
        b.scramble()
        assert bytes(b.view()) != first


def test_copy_and_copy_at() -> None:
    with Buffer(8) as b:
        b.copy(b"abc")
        assert bytes(b.view()) == b"abc\0\0\0\0\0"
        b.copy(b"0123456789")  # longer than the buffer: truncated
        assert bytes(b.view()) == b"01234567"
        b.copy_at(6, b"XYZ")
        assert bytes(b.view()) == b"012345XY"
        b.copy_at(8, b"Q")  # at the end: nothing fits
        assert bytes(b.view()) == b"012345XY"
        src = bytearray(b"kk")
        b.copy_at(0, src)
        assert src == bytearray(b"kk")  # copy does not wipe
        for offset in (-1, 9, 1 << 62):
            with pytest.raises(errors.InvalidArgumentError):
                b.copy_at(offset, b"x")
        for offset in (1.0, "1", None, True):
            with pytest.raises(errors.InvalidTypeError):
                b.copy_at(offset, b"x")  # type: ignore[arg-type]
        for src2 in ("str", 5, None):
            with pytest.raises(errors.InvalidTypeError):
                b.copy(src2)
        assert bytes(b.view()) == b"kk2345XY"


def test_move_wipes_source() -> None:
    with Buffer(4) as b:
        src = bytearray(b"abcd")
        b.move(src)
        assert bytes(b.view()) == b"abcd"
        assert src == bytearray(4)
        with pytest.raises(errors.InvalidTypeError):
            b.move(b"immutable")
        with pytest.raises(errors.InvalidTypeError):
            b.move("text")
        assert bytes(b.view()) == b"abcd"


def test_equal_to() -> None:
    with Buffer.from_bytes(b"same") as a, Buffer.from_bytes(b"same") as b, Buffer.from_bytes(b"diff") as c:
        assert a.equal_to(b) and a.equal_to(b"same") and a.equal_to(bytearray(b"same"))
        assert not a.equal_to(c)
        assert not a.equal_to(b"sam") and not a.equal_to(b"same!")
        b.freeze()
        assert a.equal_to(b) and b.equal_to(a)
        with pytest.raises(errors.InvalidTypeError):
            a.equal_to("same")
        c.destroy()
        with pytest.raises(errors.BufferDestroyedError):
            a.equal_to(c)


# -- end of life -------------------------------------------------------------------------------


def _ops_on(b: Buffer) -> list[object]:
    return [
        b.view,
        b.freeze,
        b.melt,
        b.wipe,
        b.scramble,
        lambda: b.copy(b"x"),
        lambda: b.copy_at(0, b"x"),
        lambda: b.move(bytearray(b"x")),
        lambda: b.equal_to(b"x"),
        lambda: b.protect(Protection.NO_ACCESS),
        b.seal,
        b.inner_span,
        lambda: b.address,
    ]


def test_destroyed_buffer_raises_everywhere(registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    b = Buffer.from_bytes(b"data")
    assert registry_baseline() == (before[0] + 1, before[1] + 1)  # type: ignore[operator,index]
    b.destroy()
    assert registry_baseline() == before  # type: ignore[operator]
    assert not b.alive and not b.mutable and not b.locked
    b.destroy()  # idempotent
    for op in _ops_on(b):
        with pytest.raises(errors.BufferDestroyedError):
            op()  # type: ignore[operator]
    assert "destroyed" in repr(b)


def test_destroy_frozen_and_no_access() -> None:
    for prot in (Protection.READ_ONLY, Protection.NO_ACCESS):
        b = Buffer.from_bytes(b"x" * 10)
        b.protect(prot)
        b.destroy()
        assert not b.alive


def test_context_manager_destroys(registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    with Buffer(16) as b:
        assert b.alive
        assert registry_baseline()[0] == before[0] + 1  # type: ignore[operator]
    assert not b.alive
    assert registry_baseline() == before  # type: ignore[operator]
    with pytest.raises(RuntimeError), Buffer(16) as c:
        raise RuntimeError
    assert not c.alive


def test_garbage_collection_destroys(registry_baseline: object) -> None:
    before = registry_baseline()  # type: ignore[operator]
    b = Buffer(16)
    addr = b.inner_span()[0]
    del b
    assert registry_baseline() == before  # type: ignore[operator]
    assert not any(m.contains(addr) for m in memory.mappings(os.getpid()))


def test_repr_and_pickle_hide_content() -> None:
    with Buffer.from_bytes(b"hunter2hunter2") as b:
        assert "hunter2" not in repr(b) and "14" in repr(b)
        with pytest.raises(errors.InvalidTypeError):
            pickle.dumps(b)


@pytest.mark.parametrize("bad", ["sometimes", "", "REQUIRED"])
def test_bad_mlock_policy_value(bad: str) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        Buffer(8, mlock=bad)


@pytest.mark.parametrize("bad", [1, True, 1.0, b"require"])
def test_bad_mlock_policy_type(bad: object) -> None:
    with pytest.raises(errors.InvalidTypeError):
        Buffer(8, mlock=bad)  # type: ignore[arg-type]


# -- wipe helpers -------------------------------------------------------------------------------


def test_wipe_and_scramble_bytes() -> None:
    data = bytearray(b"\x01" * 32)
    scramble_bytes(data)
    assert data != bytearray(b"\x01" * 32)
    wipe_bytes(data)
    assert data == bytearray(32)
    arr = array.array("I", [7, 8, 9])
    wipe_bytes(arr)
    assert list(arr) == [0, 0, 0]
    scramble_bytes(bytearray())  # empty: nothing to do
    wipe_bytes(bytearray())
    for bad in (b"bytes", memoryview(b"ro"), "text", 5, None):
        with pytest.raises(errors.InvalidTypeError):
            wipe_bytes(bad)
        with pytest.raises(errors.InvalidTypeError):
            scramble_bytes(bad)
