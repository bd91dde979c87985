"""securememory.metrics: allocated (cumulative) and in_use (down once per real close)."""

from __future__ import annotations

import threading

import pytest
from _secret_helpers import BACKENDS

from securememory import SecretFactory, Stream, metrics


@pytest.mark.parametrize("backend", BACKENDS)
def test_ten_new_ten_random_then_close_all(backend: str) -> None:
    metrics.reset()
    factory = SecretFactory(backend)
    secrets = [factory.new(bytearray(b"k%02d" % i)) for i in range(10)]
    secrets += [factory.create_random(16) for _ in range(10)]
    assert (metrics.allocated, metrics.in_use) == (20, 20)
    snap = metrics.snapshot()
    assert (snap.allocated, snap.in_use) == (20, 20)
    for s in secrets:
        s.close()
    assert (metrics.allocated, metrics.in_use) == (20, 0)
    for s in secrets:
        s.close()
    assert (metrics.allocated, metrics.in_use) == (20, 0)


def test_failed_creation_counts_nothing() -> None:
    metrics.reset()
    factory = SecretFactory()
    for bad in (lambda: factory.create_random(0), lambda: factory.new(b""), lambda: factory.new("x")):
        with pytest.raises((ValueError, TypeError)):
            bad()
    assert (metrics.allocated, metrics.in_use) == (0, 0)


def test_stream_chunks_count_as_secrets() -> None:
    metrics.reset()
    stream = Stream(chunk_size=4)
    stream.write(bytearray(b"0123456789"))
    chunks = list(stream)
    assert (metrics.allocated, metrics.in_use) == (3, 3)
    for c in chunks:
        c.close()
    assert metrics.in_use == 0


def test_counters_are_thread_safe() -> None:
    metrics.reset()
    factory = SecretFactory("enclave")
    go = threading.Barrier(4)
    errors: list[BaseException] = []

    def churn() -> None:
        try:
            go.wait(30)
            for _ in range(50):
                factory.create_random(8).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=churn, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert (metrics.allocated, metrics.in_use) == (200, 0)


def test_reset_zeroes_both() -> None:
    keep = SecretFactory().create_random(8)
    assert metrics.allocated >= 1 and metrics.in_use >= 1
    metrics.reset()
    assert (metrics.allocated, metrics.in_use) == (0, 0)
    keep.close()
