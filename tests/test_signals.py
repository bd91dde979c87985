"""catch_interrupt / catch_signal in forked children: exit status, purge, handler table."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
from conftest import run, run_ok

from harness import child, memory
from securememory import (
    InvalidArgumentError,
    InvalidTypeError,
    SecretFactory,
    catch_interrupt,
    catch_signal,
    metrics,
    safe_exit,
)
from securememory.memguard import Buffer, registry


def _live_state(ctx: child.Context) -> dict[str, Any]:
    """Make one protected secret, one legacy secret and one Buffer; report where their bytes are."""
    secrets = [SecretFactory(b).new(bytearray(b"S" * 32)) for b in ("protected", "legacy")]
    buf = Buffer.from_bytes(bytearray(b"B" * 32))
    spans = [secrets[0]._buffer.address, secrets[1]._region.address, buf.address]  # type: ignore[attr-defined]
    ctx.report({"spans": spans, "registry": registry.count(), "in_use": metrics.in_use})
    return {"keep": (secrets, buf), "spans": spans}


class Watch:
    """Parent side: check the secret bytes at a checkpoint, then again as the child dies."""

    def __init__(self) -> None:
        self.spans: list[int] = []

    def observe(self, pid: int, value: Any) -> Any:
        self.spans = list(value)
        return [memory.read(pid, addr, 32) is not None and memory.read(pid, addr, 32)[:1] in (b"S", b"B")  # type: ignore[index]
                for addr in self.spans]

    def at_exit(self, pid: int) -> Any:
        out = []
        for addr in self.spans:
            data = memory.read(pid, addr, 32)
            out.append(None if data is None else data.hex())
        return out


def _signalled(sig: int, register: Any) -> tuple[child.Outcome, Watch]:
    watch = Watch()

    def body(ctx: child.Context) -> None:
        state = _live_state(ctx)
        register(ctx)
        ctx.checkpoint(state["spans"])
        os.kill(os.getpid(), sig)
        ctx.report("survived the signal")

    outcome = run(body, observe=watch.observe, at_exit=watch.at_exit)
    return outcome, watch


def _assert_purged(outcome: child.Outcome) -> None:
    assert outcome.observations[0] == [True, True, True], "secrets not in place before the signal"
    at_death = outcome.observations[-1]
    for data in at_death:
        assert data is None or data == "00" * 32, f"secret bytes survived the purge: {data}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_catch_interrupt_purges_and_exits_128_plus_signum(sig: int) -> None:
    def register(ctx: child.Context) -> None:
        catch_interrupt(lambda s: ctx.report(["handler", int(s), registry.count(), metrics.in_use]))

    outcome, _ = _signalled(sig, register)
    assert outcome.signal is None
    assert outcome.exit_code == 128 + sig, outcome.describe() + outcome.stderr
    before = outcome.reports[0]
    assert before["registry"] >= 2 and before["in_use"] >= 2
    assert ["handler", sig, before["registry"], before["in_use"]] in outcome.reports
    assert "survived the signal" not in outcome.reports
    _assert_purged(outcome)


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGUSR2, signal.SIGQUIT])
def test_catch_signal_any_catchable_signal(sig: int) -> None:
    def register(ctx: child.Context) -> None:
        catch_signal(lambda s: ctx.report(["handler", int(s)]), sig)

    outcome, _ = _signalled(sig, register)
    assert outcome.exit_code == 128 + sig, outcome.describe() + outcome.stderr
    assert ["handler", sig] in outcome.reports
    _assert_purged(outcome)


def test_catch_signal_without_handler_still_purges() -> None:
    outcome, _ = _signalled(signal.SIGTERM, lambda ctx: catch_signal(None, signal.SIGTERM))
    assert outcome.exit_code == 128 + signal.SIGTERM
    _assert_purged(outcome)


def test_failing_handler_still_purges_and_exits() -> None:
    def register(ctx: child.Context) -> None:
        def bad(s: signal.Signals) -> None:
            raise RuntimeError("handler failed")

        catch_signal(bad, signal.SIGTERM)

    outcome, _ = _signalled(signal.SIGTERM, register)
    assert outcome.exit_code == 128 + signal.SIGTERM
    _assert_purged(outcome)


def test_later_registration_replaces_earlier() -> None:
    def body(ctx: child.Context) -> None:
        catch_signal(lambda s: ctx.report("first"), signal.SIGTERM)
        catch_signal(lambda s: ctx.report("second"), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)

    outcome = run(body)
    assert outcome.exit_code == 128 + signal.SIGTERM
    assert outcome.reports == ["second"]


def test_other_signals_and_foreign_handlers_are_left_alone() -> None:
    def body(ctx: child.Context) -> None:
        seen: list[int] = []

        def foreign(signum: int, frame: Any) -> None:
            seen.append(signum)

        signal.signal(signal.SIGUSR1, foreign)
        signal.signal(signal.SIGTERM, foreign)
        catch_signal(lambda s: ctx.report(["ours", int(s)]), signal.SIGINT)
        ctx.report(
            [signal.getsignal(signal.SIGUSR1) is foreign, signal.getsignal(signal.SIGTERM) is foreign]
        )
        secret = SecretFactory().create_random(16)
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGTERM)
        ctx.report(["foreign", seen, secret.with_bytes(len), registry.count() >= 1])
        os.kill(os.getpid(), signal.SIGINT)

    outcome = run(body)
    assert outcome.exit_code == 128 + signal.SIGINT, outcome.describe() + outcome.stderr
    assert outcome.reports[0] == [True, True]
    assert outcome.reports[1] == ["foreign", [signal.SIGUSR1, signal.SIGTERM], 16, True]
    assert outcome.reports[2] == ["ours", signal.SIGINT]


def test_registering_one_signal_keeps_the_others_in_the_table() -> None:
    def body(ctx: child.Context) -> None:
        catch_signal(lambda s: ctx.report(["a", int(s)]), signal.SIGUSR1, signal.SIGUSR2)
        catch_signal(lambda s: ctx.report(["b", int(s)]), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGUSR2)

    outcome = run(body)
    assert outcome.exit_code == 128 + signal.SIGUSR2
    assert outcome.reports == [["a", signal.SIGUSR2]]


def test_invalid_registrations() -> None:
    def body(ctx: child.Context) -> None:
        before = signal.getsignal(signal.SIGTERM)
        for args, error in (
            ((None, signal.SIGKILL), InvalidArgumentError),
            ((None, signal.SIGSTOP), InvalidArgumentError),
            ((None,), InvalidArgumentError),
            (("not callable", signal.SIGTERM), InvalidTypeError),
            ((None, "SIGTERM"), InvalidTypeError),
        ):
            try:
                catch_signal(*args)  # type: ignore[arg-type]
                ctx.report(["accepted", repr(args)])
            except error:
                pass
        ctx.report(signal.getsignal(signal.SIGTERM) is before)

    outcome = run_ok(body)
    assert outcome.reports == [True]


def test_safe_exit_purges_and_exits_with_code() -> None:
    watch = Watch()

    def body(ctx: child.Context) -> None:
        state = _live_state(ctx)
        ctx.checkpoint(state["spans"])
        safe_exit(7)

    outcome = run(body, observe=watch.observe, at_exit=watch.at_exit)
    assert outcome.exit_code == 7
    _assert_purged(outcome)


def test_signal_while_a_borrow_is_open_still_purges() -> None:
    watch = Watch()

    def body(ctx: child.Context) -> None:
        state = _live_state(ctx)
        catch_interrupt()
        ctx.checkpoint(state["spans"])
        secret = state["keep"][0][0]
        with secret.borrow():
            os.kill(os.getpid(), signal.SIGINT)

    outcome = run(body, observe=watch.observe, at_exit=watch.at_exit)
    assert outcome.exit_code == 128 + signal.SIGINT, outcome.describe() + outcome.stderr
    _assert_purged(outcome)
