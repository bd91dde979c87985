"""SecretFactory.create(size, fill): filled in place, nothing left behind when the fill fails."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _secret_helpers import BACKENDS

from securememory import InvalidArgumentError, InvalidTypeError, SecretFactory, ViewEscapedError, metrics
from securememory._native import lib
from securememory.memcall import capabilities
from securememory.memguard import registry


def footprint() -> tuple[int, int, int, int]:
    """Registry entries, C live-table slots, open secrets, and locked bytes of this process."""
    return registry.count(), int(lib.sm_live_count()), metrics.in_use, capabilities().locked_bytes


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest) -> Iterator[SecretFactory]:
    f = SecretFactory(request.param)
    f.create_random(1).close()  # the enclave backend's session key exists from here on
    yield f


def test_fill_writes_the_secret(factory: SecretFactory) -> None:
    def fill(view: memoryview) -> None:
        assert not view.readonly and bytes(view) == bytes(5)
        view[:] = b"abcde"

    with factory.create(5, fill) as secret:
        assert secret.with_bytes(bytes) == b"abcde"


def test_fill_with_readinto(factory: SecretFactory) -> None:
    r, w = os.pipe()
    os.write(w, b"from a pipe")
    os.close(w)
    with os.fdopen(r, "rb", buffering=0) as f, factory.create(11, f.readinto) as secret:
        assert secret.with_bytes(bytes) == b"from a pipe"


class Boom(Exception):
    pass


def test_failing_fill_leaves_nothing(factory: SecretFactory) -> None:
    before = footprint()
    during: list[tuple[int, int, int, int]] = []

    def fill(view: memoryview) -> None:
        view[:] = b"\xaa" * len(view)
        during.append(footprint())
        raise Boom

    with pytest.raises(Boom):
        factory.create(3 * 4096, fill)
    assert during[0][3] >= before[3] + 3 * 4096  # the fill wrote into locked pages
    assert footprint() == before


def test_interrupted_fill_leaves_nothing(factory: SecretFactory) -> None:
    before = footprint()

    def fill(view: memoryview) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        factory.create(64, fill)
    assert footprint() == before


def test_fill_that_keeps_the_view_itself_is_harmless(factory: SecretFactory) -> None:
    kept: list[memoryview] = []
    with factory.create(4, kept.append) as secret:
        with pytest.raises(ValueError, match="released"):
            bytes(kept[0])
        assert secret.with_bytes(bytes) == bytes(4)


@pytest.mark.parametrize(
    "keep",
    [lambda v: v[1:], lambda v: memoryview(v), lambda v: v.cast("B")],
    ids=["slice", "export", "cast"],
)
def test_fill_that_keeps_a_derived_view_is_refused(factory: SecretFactory, keep: Callable[[memoryview], Any]) -> None:
    before = footprint()
    kept: list[Any] = []

    def fill(view: memoryview) -> None:
        view[:] = b"secret!!"
        kept.append(keep(view))

    with pytest.raises(ViewEscapedError):
        factory.create(8, fill)
    assert footprint() == before


def test_slices_held_by_a_failing_fill_are_dropped(factory: SecretFactory) -> None:
    before = footprint()

    def fill(view: memoryview) -> None:
        part = view[2:]  # noqa: F841 (a local of the failing frame)
        raise Boom

    with pytest.raises(Boom) as info:
        factory.create(8, fill)
    assert info.value.__traceback__ is not None
    assert footprint() == before


@pytest.mark.parametrize("size", [0, -1, 1 << 70])
def test_bad_size_names_it(factory: SecretFactory, size: int) -> None:
    before = footprint()
    with pytest.raises(InvalidArgumentError, match=f"invalid secret length: {size}"):
        factory.create(size, bytes)
    assert footprint() == before


def test_fill_must_be_callable(factory: SecretFactory) -> None:
    with pytest.raises(InvalidTypeError, match="fill must be callable"):
        factory.create(4, b"data")  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        factory.create("4", bytes)  # type: ignore[arg-type]
