"""Guard pages, canaries and page protection: the child must die of the right signal."""

from __future__ import annotations

import signal
from collections.abc import Callable

from securememory import SecretFactory
from securememory.memguard import Buffer, disable_crash_wipe

from .. import child, memory, raw
from ..scenario import Environment, Result, scenario, verdict


def _expect_signal(name: str, env: Environment, fn: Callable[[child.Context], None], sig: int) -> Result:
    outcome = child.run(fn, env=env.child_env)
    expected = f"killed by {signal.Signals(sig).name}, stderr names it"
    said = f", stderr names {outcome.fatal_error or 'nothing'}" if outcome.signal else ""
    return verdict(name, outcome.died_of(sig), expected, outcome.describe() + said + env.note)


def overflow_buffer(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        buf = Buffer(32)
        raw.poke(buf.address + buf.size)  # first byte after the data

    return _expect_signal("overflow_buffer", env, fn, signal.SIGSEGV)


def overflow_secret(env: Environment, backend: str = "protected") -> Result:
    """Read one byte past a Secret during a borrow; ``backend="legacy"`` has no guard to hit."""

    def fn(ctx: child.Context) -> None:
        secret = SecretFactory(backend).create_random(32)
        with secret.borrow() as view:
            raw.peek(raw.address_of(view) + len(view))

    return _expect_signal("overflow_secret", env, fn, signal.SIGSEGV)


def underflow_guard(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        buf = Buffer(32)
        inner, _ = buf.inner_span()
        raw.poke(inner - 1)  # last byte of the leading guard page

    return _expect_signal("underflow_guard", env, fn, signal.SIGSEGV)


MARK = b"\x5a" * 32


def underflow_canary(env: Environment, name: str = "underflow_canary", crash_wipe: bool = True) -> Result:
    """Corrupt the canary: SIGABRT at destroy, the message, and the other buffers wiped first.

    ``crash_wipe=False`` switches the crash wipe off in the child, so only the
    canary abort's own wipe can clear the other buffer.
    """
    seen: dict[str, int] = {}

    def fn(ctx: child.Context) -> None:
        if not crash_wipe:
            disable_crash_wipe()
        witness = Buffer(32)
        witness.view()[:] = MARK
        victim = Buffer(32)
        ctx.checkpoint(witness.address)
        raw.poke(victim.address - 1, raw.peek(victim.address - 1) ^ 0xFF)
        victim.destroy()

    def observe(pid: int, address: int) -> None:
        seen["address"] = address

    def at_exit(pid: int) -> str | None:
        data = memory.read(pid, seen["address"], len(MARK)) if "address" in seen else None
        return None if data is None else data.hex()

    outcome = child.run(fn, observe=observe, at_exit=at_exit, env=env.child_env)
    at_death = outcome.observations[-1] if outcome.observations else None
    wiped = at_death is not None and bytes.fromhex(at_death) == bytes(len(MARK))
    message = "canary verification failed; buffer overflow detected" in outcome.stderr
    ok = outcome.died_of(signal.SIGABRT) and message and wiped
    observed = (
        f"{outcome.describe()} (stderr names {outcome.fatal_error or 'nothing'}), "
        f"message {'printed' if message else 'missing'}, "
        f"other live buffer {'wiped' if wiped else 'NOT wiped'} at death"
    )
    return verdict(name, ok, "SIGABRT at destroy, canary message, other buffers wiped", observed + env.note)


def no_access_between_borrows(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        secret = SecretFactory("protected").create_random(32)
        with secret.borrow() as view:
            address = raw.address_of(view)
        raw.peek(address)

    return _expect_signal("no_access_between_borrows", env, fn, signal.SIGSEGV)


def frozen_write(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        buf = Buffer.from_bytes(bytearray(32))  # filled constructors return it frozen (by freeze())
        raw.poke(buf.address)

    return _expect_signal("frozen_write", env, fn, signal.SIGSEGV)


scenario("overflow_buffer", "writing one byte past a Buffer's data faults (SIGSEGV)")(overflow_buffer)
scenario("overflow_secret", "reading one byte past a protected Secret faults (SIGSEGV)")(overflow_secret)
scenario("underflow_guard", "writing into the leading guard page faults (SIGSEGV)")(underflow_guard)
scenario("underflow_canary", "a corrupted canary aborts at destroy after wiping every live buffer")(underflow_canary)
scenario("no_access_between_borrows", "a protected Secret's memory faults outside a borrow")(no_access_between_borrows)
scenario("frozen_write", "writing to a frozen Buffer faults (SIGSEGV)")(frozen_write)
