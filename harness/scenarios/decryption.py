"""A failed authentication leaves nothing behind: no plaintext, no buffer, no lock.

cryptography writes the unauthenticated plaintext into the output before it
checks the tag. The child seals a value of 2 KiB (read from a file the parent
wrote, never a Python object), flips one tag bit, and tries to open it through
Enclave.open, Stream.readinto (straight into the caller's buffer) and a
reader over an enclave secret; the parent then looks for a 64-byte slice
from the middle of the value anywhere in the child.
"""

from __future__ import annotations

from typing import Any

from securememory import DecryptionError, SecretClosedError, SecretFactory, Stream
from securememory.memcall import locked_bytes
from securememory.memguard import Enclave, registry

from .. import child
from ..scenario import Environment, Result, scenario, verdict
from .copies import _file, _run

SIZE = 2048


def _read(ctx: child.Context, key: str) -> bytearray:
    staging = bytearray(SIZE)
    with open(_file(ctx, key, SIZE), "rb", buffering=0) as f:
        f.readinto(staging)
    return staging


def _tampered(ctx: child.Context, key: str) -> Enclave:
    sealed = bytearray(Enclave(_read(ctx, key)).ciphertext)
    sealed[-1] ^= 1
    return Enclave.from_ciphertext(sealed)


def tag_failure_wipes(env: Environment) -> Result:
    steps = ["Enclave.open", "Stream.readinto", "reader.readinto"]

    def fn(ctx: child.Context) -> None:
        refused = []
        try:
            _tampered(ctx, "Enclave.open").open()
        except DecryptionError:
            refused.append("Enclave.open")
        stream = Stream()
        stream.write(_read(ctx, "Stream.readinto"))
        front = stream._chunks._chunks[0]
        front[len(front) - 1] ^= 1
        out = bytearray(SIZE)
        try:
            stream.readinto(out)
        except DecryptionError:
            refused.append("Stream.readinto")
        secret: Any = SecretFactory("enclave").new(_read(ctx, "reader.readinto"))
        secret._enclave._sealed[-1] ^= 1
        try:
            secret.reader().readinto(bytearray(SIZE))
        except (DecryptionError, SecretClosedError):  # the secret reports its enclave unopenable
            refused.append("reader.readinto")
        ctx.report({"refused": refused})
        for key in steps:
            ctx.report({key: ctx.checkpoint({"op": "scan", "key": key, "middle": True})})

    counts, outcome = _run(fn, env)
    refused = counts.get("refused", [])
    ok = outcome.exit_code == 0 and refused == steps and all(counts.get(k) == 0 for k in steps)
    observed = ", ".join(f"{k}: {'refused' if k in refused else 'NOT refused'}, {counts.get(k, '?')} copies"
                         for k in steps)
    return verdict("tag_failure_wipes", ok, "DecryptionError and 0 copies of the plaintext, for each path",
                   f"{observed}; {outcome.describe()}" + env.note)


def failed_open_frees(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        Enclave(bytearray(32)).open().destroy()  # the session key exists before counting
        tampered = _tampered(ctx, "value")
        before = (registry.count(), locked_bytes())
        try:
            tampered.open()
            ctx.report({"during": "opened"})
        except DecryptionError:
            ctx.report({"during": [registry.count() - before[0], locked_bytes() - before[1]]})

    counts, outcome = _run(fn, env)
    during = counts.get("during")
    ok = during == [0, 0]
    observed = (f"{during[0]} more buffers, {during[1]} more locked bytes inside the except"
                if isinstance(during, list) else str(during))
    return verdict("failed_open_frees", ok, "no buffer and no locked byte left while the error is handled",
                   f"{observed}; {outcome.describe()}")


scenario("tag_failure_wipes", "a failed tag check leaves no plaintext, even in the caller's buffer")(
    tag_failure_wipes
)
scenario("failed_open_frees", "a failed Enclave.open leaves nothing allocated while its error is handled")(
    failed_open_frees
)
