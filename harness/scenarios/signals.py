"""Signals: catch_interrupt() purges and exits with 128 + signum."""

from __future__ import annotations

import functools
import os
import signal
import threading
from typing import Any

from securememory import SecretFactory, catch_interrupt
from securememory.memguard import Buffer

from .. import child, memory
from ..scenario import Environment, Result, scenario, verdict
from .copies import _file, _Values


def caught_signal(env: Environment, signum: int = signal.SIGINT, handler: bool = False) -> Result:
    """The child holds a protected and a legacy secret, gets ``signum``, and must exit 128 + signum
    with both wiped."""
    name = f"signal_{signal.Signals(signum).name.lower()}"
    values = _Values()

    def fn(ctx: child.Context) -> None:
        catch_interrupt((lambda signum: None) if handler else None)  # a handler runs first, then the wipe
        secret = SecretFactory("protected").from_file(_file(ctx, "secret"))
        legacy = SecretFactory("legacy").from_file(_file(ctx, "legacy"))
        buf = Buffer(32)
        ctx.checkpoint({"op": "kill", "key": "secret"})
        while True:  # the signal lands in the middle of library calls, locks held
            secret.with_bytes(len)
            legacy.with_bytes(len)
            buf.wipe()
            buf.freeze()
            buf.melt()

    def observe(pid: int, msg: dict[str, Any]) -> Any:
        if msg["op"] == "kill":
            threading.Timer(0.05, os.kill, (pid, signum)).start()
            return None
        return values.observe(pid, msg)

    def at_exit(pid: int) -> int:
        return sum(len(memory.find(pid, value)) for value in values.values.values())

    try:
        outcome = child.run(fn, observe=observe, at_exit=at_exit, env=env.child_env, timeout=20)
    finally:
        values.dir.cleanup()
    copies = outcome.observations[-1] if outcome.observations else None
    ok = outcome.exit_code == 128 + signum and copies == 0
    return verdict(
        name, ok, f"exit status {128 + signum}, 0 copies at exit", f"{outcome.describe()}, {copies} copies at exit"
    )


scenario("signal_sigint", "SIGINT with catch_interrupt(): purge, exit 130")(
    functools.partial(caught_signal, signum=signal.SIGINT)
)
scenario("signal_sigterm", "SIGTERM with catch_interrupt(handler): handler, purge, exit 143")(
    functools.partial(caught_signal, signum=signal.SIGTERM, handler=True)
)
