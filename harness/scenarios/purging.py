"""purge(): it reaches every buffer through the registry, wipes it and checks its canary."""

from __future__ import annotations

import io
import signal
from typing import Any

from securememory import SecretFactory, Stream
from securememory.memguard import Buffer, Enclave, purge, registry

from .. import child, raw
from ..scenario import Environment, Result, scenario, verdict
from .canary import CANARY_MESSAGE
from .copies import _file, _run


def purge_wipes(env: Environment) -> Result:
    """After purge() no copy of a Buffer's or a secret's value is left; a corrupted canary aborts purge()."""
    keys = ["Buffer", "protected secret"]

    def fn(ctx: child.Context) -> None:
        buf = Buffer(32)
        with open(_file(ctx, "Buffer"), "rb", buffering=0) as f:
            f.readinto(buf.view())
        secret = SecretFactory("protected").from_file(_file(ctx, "protected secret"))
        purge()
        for key in keys:
            ctx.report({key: ctx.checkpoint({"op": "scan", "key": key})})
        del secret

    def corrupt(ctx: child.Context) -> None:
        victim = Buffer(32)
        raw.poke(victim.address - 1, raw.peek(victim.address - 1) ^ 0x01)
        purge()

    counts, outcome = _run(fn, env)
    aborted = child.run(corrupt, env=env.child_env)
    checked = aborted.signal == signal.SIGABRT and CANARY_MESSAGE in aborted.stderr
    ok = outcome.exit_code == 0 and all(counts.get(k) == 0 for k in keys) and checked
    observed = ", ".join(f"{k}: {counts.get(k, '?')} copies" for k in keys)
    return verdict("purge_wipes", ok, "0 copies after purge(); a corrupted canary aborts purge()",
                   f"{observed}; corrupted canary at purge: {aborted.describe()}" + env.note)


def registry_tracks(env: Environment) -> Result:
    """Every way of making a Buffer adds it to the registry, and destroying it removes it."""

    def fn(ctx: child.Context) -> None:
        Enclave(bytearray(8)).open().destroy()  # the session key's buffers exist before counting
        start = registry.count()
        stream = Stream(chunk_size=16)
        stream.write(bytearray(40))
        made: dict[str, Any] = {
            "Buffer": Buffer(8),
            "Buffer.random": Buffer.random(8),
            "Buffer.from_bytes": Buffer.from_bytes(bytearray(8)),
            "Buffer.from_reader": Buffer.from_reader(io.BytesIO(bytes(8)), 8),
            "Enclave.open": Enclave(bytearray(8)).open(),
            "protected secret": SecretFactory("protected").create_random(8),
            "stream chunk": next(stream),
        }
        counted = registry.count() - start
        for obj in made.values():
            if isinstance(obj, Buffer):
                obj.destroy()
            else:
                obj.close()
        ctx.report({"counted": counted, "made": len(made), "left": registry.count() - start})

    r, outcome = _run(fn, env)
    ok = outcome.exit_code == 0 and r.get("counted") == r.get("made") and r.get("left") == 0
    return verdict("registry_tracks", ok, "each new buffer counted once, none left after destroy",
                   f"{r.get('counted')} of {r.get('made')} counted, {r.get('left')} left; {outcome.describe()}")


scenario("purge_wipes", "purge() wipes every buffer and secret and checks their canaries")(purge_wipes)
scenario("registry_tracks", "the registry counts every buffer, whatever made it")(registry_tracks)
