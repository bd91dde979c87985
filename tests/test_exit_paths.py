"""Purge, signals and crashes reach every kind of secret, and never deadlock."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import pytest
from conftest import poke, run, run_ok

import securememory
from harness import child, memory, raw
from securememory import SecretClosedError, SecretFactory, memguard
from securememory.errors import BorrowError, EntropyError, InvalidArgumentError
from securememory.memguard import Buffer, get_coffer, registry

BACKENDS = ["protected", "enclave", "legacy"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_memguard_purge_closes_secrets(backend: str) -> None:
    def body(ctx: child.Context) -> None:
        old = SecretFactory(backend).new(bytearray(b"A" * 32))
        memguard.purge()
        fresh = SecretFactory(backend).new(bytearray(b"B" * 32))
        try:
            old.with_bytes(bytes)
            ctx.report("readable")
        except SecretClosedError:
            ctx.report(["closed", old.closed, fresh.with_bytes(lambda v: bytes(v) == b"B" * 32)])

    assert run_ok(body).reports == [["closed", True, True]]


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT])
def test_fatal_signals_are_left_to_the_crash_wipe(sig: int) -> None:
    with pytest.raises(InvalidArgumentError, match="fatal"):
        securememory.catch_signal(None, sig)


def test_purge_from_inside_a_key_view_refuses_instead_of_deadlocking() -> None:
    def body(ctx: child.Context) -> None:
        with get_coffer().view():
            try:
                memguard.purge()
                ctx.report("purged")
            except BorrowError:
                ctx.report("refused")
        memguard.purge()
        ctx.report(registry.count())

    assert run_ok(body, timeout=20).reports == ["refused", 0]


def test_random_buffer_refuses_when_the_kernel_generator_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    from securememory.memguard import wipe

    class Failing:
        def __getattr__(self, name: str) -> Any:
            return getattr(wipe.__dict__["_real_lib"], name)

        def sm_random(self, ptr: Any, n: int) -> int:
            return 38  # ENOSYS

    monkeypatch.setitem(wipe.__dict__, "_real_lib", wipe.lib)
    monkeypatch.setattr(wipe, "lib", Failing())
    before = registry.count()
    with pytest.raises(EntropyError):
        Buffer.random(32)
    with pytest.raises(EntropyError):
        SecretFactory().create_random(32)
    assert registry.count() == before


@pytest.mark.parametrize("crash_wipe", [True, False])
def test_legacy_secret_is_wiped_on_a_crash(crash_wipe: bool) -> None:
    seen: dict[str, int] = {}

    def body(ctx: child.Context) -> None:
        if not crash_wipe:
            memguard.disable_crash_wipe()
        secret = SecretFactory("legacy").new(bytearray(b"L" * 32))
        with secret.borrow() as view:
            ctx.checkpoint(raw.address_of(view))
        poke(0)

    def observe(pid: int, address: int) -> None:
        seen["address"] = address

    def at_exit(pid: int) -> bytes | None:
        return memory.read(pid, seen["address"], 32)

    outcome = run(body, observe=observe, at_exit=at_exit)
    assert outcome.signal == signal.SIGSEGV
    assert outcome.observations[-1] == (bytes(32) if crash_wipe else b"L" * 32)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_during_buffer_operations_exits_without_deadlock(sig: int) -> None:
    def body(ctx: child.Context) -> None:
        securememory.catch_interrupt()
        buf = Buffer(32)
        secret = SecretFactory().create_random(32)
        ctx.checkpoint()
        while True:
            buf.wipe()
            buf.freeze()
            buf.melt()
            secret.with_bytes(len)

    def observe(pid: int, _: Any) -> None:
        threading.Timer(0.05, os.kill, (pid, sig)).start()

    outcome = run(body, observe=observe, timeout=20)
    assert not outcome.timed_out
    assert outcome.exit_code == 128 + sig


def test_reader_seek_rejects_bad_whence() -> None:
    secret = SecretFactory().new(bytearray(b"0123456789"))
    reader = secret.reader()
    with pytest.raises(InvalidArgumentError):
        reader.seek(0, 7)
    assert reader.seek(-3, 2) == 7 and reader.read(3) == b"789"
    secret.close()


def test_stream_iteration_yields_secrets() -> None:
    stream = securememory.Stream(chunk_size=4)
    stream.write(bytearray(b"abcdefghij"))
    first = next(stream)
    assert isinstance(first, securememory.Secret) and first.with_bytes(bytes) == b"abcd"
    rest = [s.with_bytes(bytes) for s in stream]
    assert rest == [b"efgh", b"ij"] and stream.size == 0



class _LyingReader:
    """Reports more (or fewer) bytes than it was given room for."""

    def __init__(self, claim: int) -> None:
        self.claim = claim
        self.calls = 0

    def readinto(self, b: Any) -> int:
        self.calls += 1
        if self.calls > 1:
            return 0
        return len(b) + self.claim if self.claim > 0 else self.claim


@pytest.mark.parametrize("claim", [8192, -1])
def test_reader_claiming_an_impossible_length_is_refused(claim: int) -> None:
    before = registry.count()
    with pytest.raises(InvalidArgumentError, match="invalid length"):
        Buffer.from_entire_reader(_LyingReader(claim))
    with pytest.raises(InvalidArgumentError, match="invalid length"):
        Buffer.from_reader(_LyingReader(claim), 64)
    with pytest.raises(InvalidArgumentError, match="invalid length"):
        SecretFactory().from_reader(_LyingReader(claim), 64)
    assert registry.count() == before
