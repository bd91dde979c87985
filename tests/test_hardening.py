"""Regression tests for the edges real programs hit: purge from another thread,
threads beyond any fixed table, borrows that end on another thread, shutdown
signals during close(), stack overflows, bad inputs. Each failed before its fix."""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import os
import signal
import threading
import time
from typing import Any

import pytest
from _secret_helpers import BACKENDS, borrowed_address, readable
from conftest import run, run_ok

from harness import child
from securememory import SecretFactory, catch_interrupt, errors
from securememory.memcall import Protection
from securememory.memguard import Buffer, Enclave, purge

SECRET = b"the secret under test, 40 bytes long!!!!"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- purge while another thread borrows -----------------------------------------------


def test_purge_during_a_borrow_never_lets_the_stale_view_read_a_newer_secret(backend: str) -> None:
    """The borrower reads zeros after purge, never the next secret mapped at the
    same address; its exit touches nothing it no longer owns."""

    def body(ctx: child.Context) -> None:
        faulthandler.disable()
        factory = SecretFactory(backend)
        secret = factory.new(bytearray(SECRET))
        inside, purged, seen = threading.Event(), threading.Event(), []

        def borrower() -> None:
            with secret.borrow() as view:
                inside.set()
                purged.wait()
                seen.append(bytes(view))

        t = threading.Thread(target=borrower)
        t.start()
        inside.wait()
        purge()
        newer = [factory.new(bytearray(b"N" * len(SECRET))) for _ in range(64)]
        purged.set()
        t.join()
        ctx.report([seen[0] == bytes(len(SECRET)), SECRET in seen[0], b"NNNN" in seen[0]])
        # the newer secrets are intact: the stale exit protected nothing of theirs
        ctx.report(all(s.with_bytes(bytes) == b"N" * len(SECRET) for s in newer))

    out = run_ok(body)
    assert out.reports == [[True, False, False], True]


def test_purge_keeps_in_flight_pages_reserved_then_no_access(backend: str) -> None:
    def body(ctx: child.Context) -> None:
        faulthandler.disable()
        secret = SecretFactory(backend).new(bytearray(SECRET))
        addr = [0]
        inside, go = threading.Event(), threading.Event()

        def borrower() -> None:
            with secret.borrow() as view:
                addr[0] = memory_address(view)
                inside.set()
                go.wait()

        t = threading.Thread(target=borrower)
        t.start()
        inside.wait()
        purge()
        ctx.report(readable(addr[0]))  # still readable (zeros) for the borrow in flight
        go.set()
        t.join()
        ctx.report(readable(addr[0]))  # then NO_ACCESS, still mapped: no reuse
        ctx.report(secret.closed)
        with contextlib.suppress(errors.SecretClosedError):
            secret.with_bytes(bytes)
            ctx.report("borrowed after purge")

    out = run_ok(body)
    assert out.reports == [True, False, True]


def test_a_borrow_that_ends_while_purge_wipes_its_pages_faults_nothing(backend: str) -> None:
    """The exit used to make the pages NO_ACCESS under purge's wipe: SIGSEGV."""
    from harness.scenarios.borrows import _ended_during_wipe

    out = run_ok(lambda ctx: ctx.report(_ended_during_wipe(backend)))
    assert out.reports == [True]  # and NO_ACCESS once both are done


def memory_address(view: memoryview) -> int:
    from _secret_helpers import address_of

    return address_of(view)


# -- the Secret's Buffer is private ---------------------------------------------------------------


def test_a_protected_secret_does_not_expose_its_buffer() -> None:
    secret = SecretFactory("protected").new(bytearray(SECRET))
    assert not hasattr(secret, "buffer")
    assert secret.with_bytes(bytes) == SECRET
    secret.close()


# -- empty input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("make", ["buffer", "enclave", "secret"])
def test_empty_input_raises_without_pinning_the_callers_buffer(make: str) -> None:
    data = bytearray()
    kept: list[BaseException] = []
    try:
        if make == "buffer":
            Buffer.from_bytes(data)
        elif make == "enclave":
            Enclave(data)
        else:
            SecretFactory().new(data)
    except errors.InvalidArgumentError as e:
        kept.append(e)  # the exception and its traceback live on
    assert kept
    data.extend(b"resizable")  # BufferError while anything still exports it
    del kept
    gc.collect()


# -- equal_to ------------------------------------------------------------------------------------


def test_equal_to_refuses_a_no_access_buffer_instead_of_faulting() -> None:
    def body(ctx: child.Context) -> None:
        a = Buffer.from_bytes(bytearray(b"x" * 32))
        b = Buffer.from_bytes(bytearray(b"x" * 32))
        b.protect(Protection.NO_ACCESS)
        for x, y in ((a, b), (b, a)):
            try:
                x.equal_to(y)
                ctx.report("compared")
            except errors.ProtectionError:
                ctx.report("refused")

    assert run_ok(body).reports == ["refused", "refused"]


def test_equal_to_against_a_concurrent_destroy_never_reads_freed_memory() -> None:
    def body(ctx: child.Context) -> None:
        faulthandler.disable()
        outcomes = set()
        for _ in range(300):
            a = Buffer.from_bytes(bytearray(b"y" * 64))
            b = Buffer.from_bytes(bytearray(b"y" * 64))
            t = threading.Thread(target=b.destroy)
            t.start()
            try:
                outcomes.add(a.equal_to(b))
            except errors.BufferDestroyedError:
                outcomes.add("destroyed")
            t.join()
            a.destroy()
        ctx.report(sorted(map(str, outcomes)))

    out = run_ok(body)
    assert set(out.reports[0]) <= {"True", "destroyed"}


# -- shutdown signals while close() waits ---------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_signal_runs_while_close_waits_for_a_borrow(backend: str, sig: int) -> None:
    def body(ctx: child.Context) -> None:
        secret = SecretFactory(backend).new(bytearray(SECRET))
        inside = threading.Event()

        def borrower() -> None:
            with secret.borrow():
                inside.set()
                time.sleep(120)

        threading.Thread(target=borrower, daemon=True).start()
        inside.wait()
        catch_interrupt()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), sig))
        secret.close()  # waits for the borrow; the handler must still run
        ctx.report("close returned")

    out = run(body, timeout=30)
    assert out.exit_code == 128 + sig, out.describe() + out.stderr
    assert out.reports == []


def test_an_exception_from_a_handler_interrupts_close_and_a_later_close_finishes(backend: str) -> None:
    secret = SecretFactory(backend).new(bytearray(SECRET))
    inside, release = threading.Event(), threading.Event()

    def borrower() -> None:
        with secret.borrow():
            inside.set()
            release.wait()

    t = threading.Thread(target=borrower)
    t.start()
    inside.wait()

    class Stop(Exception):
        pass

    def raise_stop(*_: Any) -> None:
        raise Stop

    old = signal.signal(signal.SIGALRM, raise_stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(Stop):
            secret.close()
    finally:
        signal.signal(signal.SIGALRM, old)
    assert secret.closed  # closing: new borrows refused
    with pytest.raises(errors.SecretClosedError):
        secret.with_bytes(bytes)
    release.set()
    t.join()
    secret.close()
    assert secret.borrows == 0


# -- thread tracking -------------------------------------------------------------------------------


def test_many_threads_closing_inside_their_own_borrows_all_get_borrow_error(backend: str) -> None:
    secret = SecretFactory(backend).new(bytearray(SECRET))
    n = 40
    barrier = threading.Barrier(n)
    results: list[str] = []

    def worker() -> None:
        with secret.borrow():
            barrier.wait()
            try:
                secret.close()
                results.append("closed")
            except errors.BorrowError:
                results.append("refused")
            barrier.wait()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads), "a thread deadlocked closing inside its borrow"
    assert results == ["refused"] * n
    secret.close()


def test_a_borrow_ended_on_another_thread_does_not_lock_out_close(backend: str) -> None:
    secret = SecretFactory(backend).new(bytearray(SECRET))
    borrow = secret.borrow()
    view = borrow.__enter__()
    assert bytes(view) == SECRET
    t = threading.Thread(target=borrow.__exit__, args=(None, None, None))
    t.start()
    t.join()
    assert secret.borrows == 0
    secret.close()  # from the thread that entered: no longer counted as its borrow
    assert secret.closed


def test_an_abandoned_borrow_ends_when_its_view_is_dropped(backend: str) -> None:
    secret = SecretFactory(backend).new(bytearray(SECRET))
    addr = borrowed_address(secret) if backend != "enclave" else None
    secret.borrow().__enter__()  # entered, never exited, view dropped at once
    gc.collect()
    assert secret.borrows == 0
    if addr is not None:
        assert not readable(addr)
    secret.close()


# -- stack overflow ----------------------------------------------------------------------------------


def test_a_stack_overflow_in_a_thread_still_wipes() -> None:
    """The fault lands on a thread with no stack left: the crash wipe runs on
    that thread's alternate signal stack (the harness's stack_overflow_wipe)."""
    from harness.scenario import PASS, UNSUPPORTED, environment
    from harness.scenarios.borrows import stack_overflow_wipe

    result = stack_overflow_wipe(environment())
    if result.verdict == UNSUPPORTED:
        pytest.skip(result.reason)
    assert result.verdict == PASS, result


# -- input handling ----------------------------------------------------------------------------------


def test_a_closed_reader_refuses_to_read(backend: str) -> None:
    secret = SecretFactory(backend).new(bytearray(SECRET))
    reader = secret.reader()
    reader.close()
    with pytest.raises(errors.InvalidArgumentError):
        reader.readinto(bytearray(8))
    secret.close()


def test_a_terabyte_request_is_an_allocation_error_naming_the_size() -> None:
    with pytest.raises(errors.AllocationError, match=str(1 << 40)):
        Buffer(1 << 40)
