"""One behavioural suite for Secrets, run on every backend (protected, enclave, legacy)."""

from __future__ import annotations

import contextlib
import copy
import ctypes
import faulthandler
import functools
import io
import operator
import os
import pickle
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _secret_helpers import BACKENDS, address_of, borrowed_address, perms_at
from conftest import run, run_ok

from harness import child
from securememory import (
    BorrowError,
    ForkedError,
    InvalidArgumentError,
    InvalidTypeError,
    Secret,
    SecretClosedError,
    SecretFactory,
    ViewEscapedError,
    metrics,
)
from securememory._native import ffi
from securememory.memguard import registry

DIGITS = b"0123456789"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def factory(backend: str) -> SecretFactory:
    return SecretFactory(backend)


@pytest.fixture
def digits(factory: SecretFactory) -> Any:
    secret = factory.new(bytearray(DIGITS))
    yield secret
    secret.close()


def in_thread(fn: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging) if it does not finish."""
    result: dict[str, Any] = {}

    def body() -> None:
        try:
            result["value"] = fn()
        except BaseException as e:
            result["error"] = e

    t = threading.Thread(target=body, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "deadlock: the call did not return"
    if "error" in result:
        raise result["error"]
    return result.get("value")


def expect_segv(touch: Callable[[], None]) -> None:
    """Run ``touch`` in a forked child and require that it dies of SIGSEGV."""

    def body(ctx: child.Context) -> None:
        faulthandler.disable()
        touch()
        ctx.report("survived")

    outcome = run(body)
    assert outcome.signal == signal.SIGSEGV, f"{outcome.describe()} {outcome.reports}\n{outcome.stderr}"
    assert outcome.reports == []


def assert_concealed(backend: str, addr: int) -> None:
    """The pages that held the plaintext during a borrow are unreadable now
    (the enclave's scratch is unmapped, or kept reserved NO_ACCESS after an escape)."""
    perms = perms_at(addr)
    if backend == "enclave" and perms is None:
        return
    assert perms is not None and perms.startswith("---"), perms


# -- reading -------------------------------------------------------------------


def test_with_bytes_returns_the_action_result(digits: Secret) -> None:
    assert digits.with_bytes(bytes) == DIGITS
    assert digits.with_bytes_func(lambda v: bytes(v[2:5])) == b"234"
    assert len(digits) == 10


def test_borrow_view_is_read_only_and_dies_with_the_block(digits: Secret) -> None:
    with digits.borrow() as view:
        assert view.readonly
        assert bytes(view) == DIGITS
        with pytest.raises(TypeError):
            view[0] = 0x41
    with pytest.raises(ValueError):
        view[0]
    assert digits.with_bytes(bytes) == DIGITS


def test_reader_follows_the_asherah_sequence(digits: Secret) -> None:
    reader = digits.reader()
    assert isinstance(reader, io.RawIOBase) and reader.readable()
    got = []
    for n in (4, 4, 1, 4, 4):
        buf = bytearray(n)
        k = reader.readinto(buf)
        got.append(bytes(buf[:k]))
    assert got == [b"0123", b"4567", b"8", b"9", b""]
    reader = digits.reader()
    assert [reader.read(n) for n in (4, 4, 1, 4, 4)] == [b"0123", b"4567", b"8", b"9", b""]


def test_reader_refuses_read_only_destination(digits: Secret) -> None:
    with pytest.raises(TypeError):
        digits.reader().readinto(b"abcd")


def test_nested_borrows_share_one_exposure(backend: str, digits: Secret) -> None:
    with digits.borrow() as outer:
        with digits.borrow() as inner:
            assert bytes(inner) == DIGITS
        assert bytes(outer) == DIGITS
        addr = address_of(outer)
        assert perms_at(addr) is not None and perms_at(addr).startswith("r")  # type: ignore[union-attr]
    assert_concealed(backend, addr)


def test_memory_is_inaccessible_between_borrows(backend: str, digits: Secret) -> None:
    addr = borrowed_address(digits)
    assert_concealed(backend, addr)
    if backend != "enclave":
        expect_segv(lambda: ctypes.string_at(addr, 1) and None)


# -- sizes and sources ---------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda f: f.new(b""),
        lambda f: f.new(bytearray()),
        lambda f: f.create_random(0),
        lambda f: f.create_random(-1),
        lambda f: f.from_reader(io.BytesIO(b"abc"), 0),
    ],
    ids=["new-bytes", "new-bytearray", "random-0", "random-neg", "reader-0"],
)
def test_size_below_one_is_invalid(factory: SecretFactory, make: Callable[[SecretFactory], Any]) -> None:
    before = registry.count(), metrics.in_use
    with pytest.raises(ValueError, match=r"^invalid secret length: -?\d+ ") as info:
        make(factory)
    assert isinstance(info.value, InvalidArgumentError)
    assert (registry.count(), metrics.in_use) == before


def test_new_wipes_a_writable_source(factory: SecretFactory) -> None:
    src = bytearray(b"correct horse battery staple")
    with factory.new(src) as secret:
        assert src == bytearray(len(src))
        assert secret.with_bytes(bytes) == b"correct horse battery staple"
    arr = bytearray(b"via a memoryview")
    with factory.new(memoryview(arr)) as secret:
        assert arr == bytearray(len(arr))
        assert secret.with_bytes(bytes) == b"via a memoryview"


def test_new_accepts_bytes_and_leaves_them(factory: SecretFactory) -> None:
    src = b"immutable source"
    with factory.new(src) as secret:
        assert secret.with_bytes(bytes) == src
    assert src == b"immutable source"


def test_new_refuses_str(factory: SecretFactory) -> None:
    with pytest.raises(InvalidTypeError):
        factory.new("text")  # type: ignore[arg-type]


def test_create_random(factory: SecretFactory) -> None:
    with factory.create_random(32) as a, factory.create_random(32) as b:
        assert len(a) == 32
        ra, rb = a.with_bytes(bytes), b.with_bytes(bytes)
        assert ra != bytes(32) and ra != rb
        assert not a.equals(b)


def test_from_file(factory: SecretFactory, tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"file secret\x00\xff")
    with factory.from_file(path) as secret:
        assert secret.with_bytes(bytes) == b"file secret\x00\xff"
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(InvalidArgumentError, match="invalid secret length"):
        factory.from_file(empty)


class Trickle(io.RawIOBase):
    """A reader that hands out at most ``step`` bytes per readinto."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = min(self._step, len(buf), len(self._data) - self._pos)
        buf[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def test_from_reader(factory: SecretFactory) -> None:
    with factory.from_reader(io.BytesIO(b"abcdefgh"), 5) as secret:
        assert secret.with_bytes(bytes) == b"abcde"
    with factory.from_reader(Trickle(b"0123456789", 3), 10) as secret:
        assert secret.with_bytes(bytes) == DIGITS


def test_from_reader_that_ends_early_fails_and_leaks_nothing(factory: SecretFactory) -> None:
    before = registry.count(), metrics.in_use, metrics.allocated
    with pytest.raises(InvalidArgumentError, match="reader ended after 3 of 8 bytes"):
        factory.from_reader(io.BytesIO(b"abc"), 8)
    with pytest.raises(InvalidTypeError):
        factory.from_reader(object(), 8)
    assert (registry.count(), metrics.in_use, metrics.allocated) == before


# -- closing -------------------------------------------------------------------------


def test_use_after_close_fails(digits: Secret) -> None:
    reader = digits.reader()
    digits.close()
    assert digits.closed
    for use in (
        lambda: digits.with_bytes(bytes),
        lambda: digits.with_bytes_func(bytes),
        lambda: digits.borrow().__enter__(),
        lambda: reader.read(1),
    ):
        with pytest.raises(SecretClosedError) as info:
            use()
        assert str(info.value) == "secret has already been destroyed"


def test_double_close_is_a_noop(factory: SecretFactory) -> None:
    secret = factory.create_random(16)
    in_use = metrics.in_use
    secret.close()
    assert metrics.in_use == in_use - 1
    secret.close()
    assert secret.closed
    assert metrics.in_use == in_use - 1


def test_context_manager_closes(factory: SecretFactory) -> None:
    with factory.create_random(8) as secret:
        assert not secret.closed
    assert secret.closed


def test_a_secret_collected_unclosed_warns_and_is_closed(factory: SecretFactory) -> None:
    in_use = metrics.in_use
    with pytest.warns(ResourceWarning, match=r"unclosed secret <\w+Secret size=8 open>"):
        factory.create_random(8)  # dropped at once
    assert metrics.in_use == in_use


def test_a_closed_secret_collected_does_not_warn(factory: SecretFactory) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with factory.create_random(8):
            pass
        factory.create_random(8).close()


def test_a_forked_child_does_not_warn_for_its_parents_secrets(factory: SecretFactory) -> None:
    secret = factory.create_random(8)

    def child_body(ctx: child.Context) -> None:
        import gc
        import warnings

        nonlocal secret
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del secret
            gc.collect()
        assert not caught, [str(w.message) for w in caught]

    run_ok(child_body)
    secret.close()


def test_close_inside_own_borrow_is_an_error_not_a_deadlock(digits: Secret) -> None:
    def close_inside_borrow() -> None:
        with digits.borrow():
            digits.close()

    with pytest.raises(BorrowError):
        in_thread(close_inside_borrow)
    with pytest.raises(BorrowError):
        in_thread(lambda: digits.with_bytes(lambda v: digits.close()))
    assert not digits.closed
    assert digits.with_bytes(bytes) == DIGITS
    in_thread(digits.close)
    assert digits.closed


def test_exception_in_action_releases_the_count(backend: str, digits: Secret) -> None:
    seen: list[int] = []

    def fail(view: memoryview) -> None:
        seen.append(address_of(view))
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        digits.with_bytes(fail)
    with pytest.raises(RuntimeError), digits.borrow() as view:
        seen.append(address_of(view))
        raise RuntimeError
    assert digits.borrows == 0
    for addr in seen:
        assert_concealed(backend, addr)
    if backend != "enclave":
        expect_segv(lambda: ctypes.string_at(seen[0], 1) and None)
    assert digits.with_bytes(bytes) == DIGITS
    in_thread(digits.close)
    assert digits.closed


# -- escaped views -------------------------------------------------------------------


ESCAPES: dict[str, Callable[[Secret, list[Any]], Any]] = {
    "with_bytes-slice": lambda s, kept: s.with_bytes(lambda v: kept.append(v[2:])),
    "with_bytes-memoryview": lambda s, kept: s.with_bytes(lambda v: kept.append(memoryview(v))),
    "with_bytes-cast": lambda s, kept: s.with_bytes(lambda v: kept.append(v.cast("c"))),
    "with_bytes-toreadonly": lambda s, kept: s.with_bytes(lambda v: kept.append(v.toreadonly())),
    "with_bytes-export": lambda s, kept: s.with_bytes(lambda v: kept.append(ffi.from_buffer(v))),
    "with_bytes-memoryview-of-obj": lambda s, kept: s.with_bytes(lambda v: kept.append(memoryview(v.obj))),
    "with_bytes-slice-in-exception": lambda s, kept: s.with_bytes(lambda v: _raise_holding(v, kept)),
    "borrow-slice": lambda s, kept: _borrow_keep(s, kept, lambda v: v[1:]),
    "borrow-export": lambda s, kept: _borrow_keep(s, kept, ffi.from_buffer),
    "borrow-memoryview-of-obj": lambda s, kept: _borrow_keep(s, kept, lambda v: memoryview(v.obj)),
}


def _borrow_keep(secret: Secret, kept: list[Any], take: Callable[[memoryview], Any]) -> None:
    with secret.borrow() as view:
        kept.append(take(view))


def _raise_holding(view: memoryview, kept: list[Any]) -> None:
    kept.append(view[3:])
    raise RuntimeError("the action failed, its slice escaped in a list")


@pytest.mark.parametrize("how", sorted(ESCAPES))
def test_escaped_view_is_detected_and_memory_reprotected(backend: str, digits: Secret, how: str) -> None:
    kept: list[Any] = []
    if how.endswith("-in-exception"):
        # the action's own exception propagates, with the escape noted on it
        with pytest.raises(RuntimeError) as failed:
            ESCAPES[how](digits, kept)
        assert any("outlived its borrow" in note for note in failed.value.__notes__)
    else:
        with pytest.raises(ViewEscapedError):
            ESCAPES[how](digits, kept)
    assert len(kept) == 1
    escaped = kept[0]
    assert digits.borrows == 0
    addr = borrowed_address(digits)
    assert_concealed(backend, addr)
    touch = escaped.__getitem__ if isinstance(escaped, memoryview) else functools.partial(operator.getitem, escaped)
    expect_segv(functools.partial(touch, 0))
    kept.clear()
    del escaped, touch
    assert digits.with_bytes(bytes) == DIGITS


def test_escaped_view_never_reads_a_newer_secret(factory: SecretFactory) -> None:
    """After an escape, close() keeps the pages reserved: the stale view faults
    however many secrets are made afterwards, it never sees their bytes."""

    def body(ctx: child.Context) -> None:
        faulthandler.disable()
        secret = factory.new(bytearray(DIGITS))
        kept: list[memoryview] = []
        with contextlib.suppress(ViewEscapedError):
            secret.with_bytes(lambda v: kept.append(v[:]))
        secret.close()
        newer = [factory.new(bytearray(b"newer secret %04d" % i)) for i in range(200)]
        ctx.report(bytes(kept[0][:4]).hex())  # must fault before this
        del newer

    outcome = run(body)
    assert outcome.signal == signal.SIGSEGV, f"{outcome.describe()} {outcome.reports}"
    assert outcome.reports == []


STORED: dict[str, Callable[[Secret, list[Any]], Any]] = {
    "with_bytes": lambda s, kept: s.with_bytes(kept.append),
    "borrow": lambda s, kept: _borrow_keep(s, kept, lambda v: v),
    "with_bytes-in-exception": lambda s, kept: s.with_bytes(lambda v: _raise_view(v, kept)),
}


def _raise_view(view: memoryview, kept: list[Any]) -> None:
    kept.append(view)
    raise RuntimeError("failed while holding the view")


@pytest.mark.parametrize("how", sorted(STORED))
def test_a_stored_view_is_released_not_escaped(digits: Secret, how: str) -> None:
    """The view itself kept past its borrow is released: not an escape, and unusable."""
    kept: list[Any] = []
    with contextlib.suppress(RuntimeError):
        STORED[how](digits, kept)
    with pytest.raises(ValueError, match="released"):
        kept[0][0]
    with pytest.raises(ValueError, match="released"):
        memoryview(kept[0])
    assert digits.borrows == 0
    assert digits.with_bytes(bytes) == DIGITS


def test_slices_in_a_failing_action_are_not_escapes(digits: Secret) -> None:
    """Locals of the failed action's frames are dropped, so its slices die with it."""

    def action(view: memoryview) -> None:
        head = view[:3]
        cast = view.cast("c")
        assert head and cast
        raise KeyError("boom")

    with pytest.raises(KeyError):
        digits.with_bytes(action)
    assert digits.with_bytes(bytes) == DIGITS


def test_view_used_only_inside_the_action_is_not_an_escape(digits: Secret) -> None:
    assert digits.with_bytes(lambda v: bytes(v[3:6]) + bytes(memoryview(v)[:1])) == b"3450"


# -- identity and copying ------------------------------------------------------------


def test_repr_and_str_hide_content(factory: SecretFactory) -> None:
    content = b"hunter2-very-secret"
    with factory.new(bytearray(content)) as secret:
        for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}"):
            assert "hunter2" not in text
            assert content.hex() not in text
            assert "size=19" in text


@pytest.mark.parametrize(
    "op",
    [copy.copy, copy.deepcopy, pickle.dumps, hash, lambda s: pickle.dumps(s, protocol=2)],
    ids=["copy", "deepcopy", "pickle", "hash", "pickle-2"],
)
def test_copying_pickling_hashing_refuse(digits: Secret, op: Callable[[Secret], Any]) -> None:
    with pytest.raises(TypeError):
        op(digits)


def test_equality_is_identity_and_equals_is_content(factory: SecretFactory) -> None:
    a = factory.new(bytearray(b"same content"))
    b = factory.new(bytearray(b"same content"))
    c = factory.new(bytearray(b"diff content"))
    d = factory.new(bytearray(b"shorter"))
    assert a == a and a != b
    assert a.equals(b) and b.equals(a) and a.equals(a)
    assert not a.equals(c) and not a.equals(d)
    for backend in BACKENDS:
        with SecretFactory(backend).new(b"same content") as other:
            assert a.equals(other)
    with pytest.raises(TypeError):
        a.equals(b"same content")  # type: ignore[arg-type]
    b.close()
    with pytest.raises(SecretClosedError):
        a.equals(b)
    for s in (a, c, d):
        s.close()


def test_locked_under_require(factory: SecretFactory) -> None:
    with factory.create_random(8) as secret:
        assert secret.locked


def test_secret_from_before_fork_refuses_in_child(factory: SecretFactory) -> None:
    secret = factory.new(bytearray(b"parent only"))

    def body(ctx: child.Context) -> None:
        try:
            secret.with_bytes(bytes)
        except ForkedError:
            ctx.report("forked")
        ctx.report(os.getpid())

    outcome = run_ok(body)
    assert outcome.reports[0] == "forked"
    assert secret.with_bytes(bytes) == b"parent only"
    secret.close()


def test_no_false_escape_in_generators_and_coroutines(digits: Secret) -> None:
    """Borrows held by a generator or a coroutine across a yield/await, closed
    normally or by GeneratorExit/cancellation, are not escapes."""
    import asyncio

    def chunks() -> Any:
        with digits.borrow() as view:
            for i in range(0, len(view), 4):
                yield view[i : i + 4].tobytes()

    assert b"".join(chunks()) == DIGITS
    gen = chunks()
    assert next(gen) == DIGITS[:4]
    gen.close()  # GeneratorExit inside the borrow
    assert digits.borrows == 0

    async def use() -> int:
        with digits.borrow() as view:
            await asyncio.sleep(0)
            return len(view[2:])

    async def cancelled() -> None:
        task = asyncio.ensure_future(_hold(digits))
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    assert asyncio.run(use()) == len(DIGITS) - 2
    asyncio.run(cancelled())
    assert digits.borrows == 0
    assert digits.with_bytes(bytes) == DIGITS


async def _hold(secret: Secret) -> None:
    import asyncio

    with secret.borrow() as view:
        head = view[:2]
        await asyncio.sleep(10)
        del head


def test_nested_borrows_across_secrets_and_with_bytes_are_not_escapes(factory: SecretFactory) -> None:
    a, b = factory.new(bytearray(b"alpha")), factory.new(bytearray(b"bravo"))
    with a.borrow() as va:
        assert b.with_bytes(lambda vb: bytes(va[:2]) + bytes(vb[:2])) == b"albr"
        with a.borrow() as va2:
            assert va2.tobytes() == va.tobytes()
    assert a.equals(a) and not a.equals(b)
    a.close()
    b.close()


def test_aclose_waits_for_another_tasks_borrow_without_blocking_the_loop(digits: Secret) -> None:
    import asyncio

    async def main() -> list[str]:
        events: list[str] = []
        inside = asyncio.Event()

        async def holder() -> None:
            async with digits.aborrow() as view:
                inside.set()
                for _ in range(5):
                    await asyncio.sleep(0.01)
                    events.append("tick")
                assert view.tobytes() == DIGITS
            events.append("released")

        task = asyncio.ensure_future(holder())
        await inside.wait()
        await digits.aclose()  # same thread, another task: waits, does not refuse
        events.append("closed")
        await task
        return events

    events = asyncio.run(main())
    assert events == ["tick"] * 5 + ["released", "closed"]
    assert digits.closed and digits.borrows == 0


def test_cancelled_aclose_leaves_the_close_to_a_later_call(digits: Secret) -> None:
    import asyncio

    async def main() -> None:
        inside, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with digits.aborrow():
                inside.set()
                await release.wait()

        task = asyncio.ensure_future(holder())
        await inside.wait()
        closing = asyncio.ensure_future(digits.aclose())
        await asyncio.sleep(0.02)
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        release.set()
        await task

    asyncio.run(main())
    assert digits.closed  # closing began: new borrows refused
    with pytest.raises(SecretClosedError):
        digits.with_bytes(bytes)
    in_thread(digits.close)
    assert digits.borrows == 0
