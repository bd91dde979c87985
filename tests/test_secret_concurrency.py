"""Secrets under threads: borrows racing a close, on every backend."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from _secret_helpers import BACKENDS

from securememory import SecretClosedError, SecretFactory, metrics

THREADS = 8
JOIN_TIMEOUT = 60.0
CONTENT = bytes(range(1, 65))


@pytest.mark.parametrize("backend", BACKENDS)
def test_borrowers_racing_a_close(backend: str) -> None:
    secret = SecretFactory(backend).new(bytearray(CONTENT))
    in_use = metrics.in_use
    started = threading.Barrier(THREADS + 1)
    results: list[dict[str, Any]] = [{"ok": 0, "wrong": 0, "closed": 0, "other": []} for _ in range(THREADS)]

    def borrower(i: int) -> None:
        tally = results[i]
        first = True
        while True:
            try:
                if i % 2:
                    got = secret.with_bytes(bytes)
                else:
                    with secret.borrow() as view:
                        got = bytes(view)
            except SecretClosedError as e:
                tally["closed"] += 1
                tally["message"] = str(e)
                return
            except BaseException as e:
                tally["other"].append(repr(e))
                return
            finally:
                if first:
                    first = False
                    started.wait(JOIN_TIMEOUT)
            if got == CONTENT:
                tally["ok"] += 1
            else:
                tally["wrong"] += 1

    closer_done = threading.Event()

    def closer() -> None:
        started.wait(JOIN_TIMEOUT)
        secret.close()
        closer_done.set()

    threads = [threading.Thread(target=borrower, args=(i,), daemon=True) for i in range(THREADS)]
    threads.append(threading.Thread(target=closer, daemon=True))
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    assert not [t.name for t in threads if t.is_alive()], "threads deadlocked"
    assert closer_done.is_set()
    for tally in results:
        assert tally["other"] == []
        assert tally["wrong"] == 0
        assert tally["ok"] >= 1
        assert tally["closed"] == 1
        assert tally["message"] == "secret has already been destroyed"
    assert secret.closed
    assert secret.borrows == 0
    assert metrics.in_use == in_use - 1
    with pytest.raises(SecretClosedError):
        secret.with_bytes(bytes)
    if backend == "protected":
        assert not secret._buffer.alive  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_waits_for_a_borrow_in_flight(backend: str) -> None:
    secret = SecretFactory(backend).new(bytearray(CONTENT))
    inside = threading.Event()
    release = threading.Event()
    seen: list[bytes] = []

    def holder() -> None:
        with secret.borrow() as view:
            inside.set()
            release.wait(JOIN_TIMEOUT)
            seen.append(bytes(view))

    closed = threading.Event()

    def closer() -> None:
        secret.close()
        closed.set()

    h = threading.Thread(target=holder, daemon=True)
    h.start()
    assert inside.wait(JOIN_TIMEOUT)
    c = threading.Thread(target=closer, daemon=True)
    c.start()
    waiting = threading.Event()
    deadline = JOIN_TIMEOUT * 1000
    while not secret.closed and deadline:
        waiting.wait(0.001)  # close() marks the secret closing before it blocks
        deadline -= 1
    assert secret.closed
    with pytest.raises(SecretClosedError):
        secret.with_bytes(bytes)
    assert not closed.is_set()
    release.set()
    h.join(JOIN_TIMEOUT)
    c.join(JOIN_TIMEOUT)
    assert not h.is_alive() and not c.is_alive()
    assert closed.is_set()
    assert seen == [CONTENT]
    assert secret.borrows == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_concurrent_closes_all_return(backend: str) -> None:
    secret = SecretFactory(backend).create_random(16)
    in_use = metrics.in_use
    go = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def close() -> None:
        go.wait(JOIN_TIMEOUT)
        try:
            secret.close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=close, daemon=True) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert secret.closed
    assert metrics.in_use == in_use - 1
