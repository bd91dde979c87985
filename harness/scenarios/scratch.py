"""Scratch and staging areas are wiped once used.

The stream's partial-chunk scratch (locked, reused) and read()'s staging
bytearray (freed to the allocator, which overwrites only a small block's
head) must not keep plaintext. Values of 2 KiB are read from files the
parent wrote; after each operation the parent looks for a 64-byte slice
from the middle of the value outside the caller's own result.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from securememory import SecretFactory, Stream

from .. import child, raw
from ..scenario import Environment, Result, scenario, verdict
from .copies import _run, _span
from .decryption import SIZE, _read


def _bytes_span(data: bytes) -> tuple[int, int]:
    address = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
    return int(address or 0), len(data)


def _middle(ctx: child.Context, key: str, *exclude: tuple[int, int]) -> None:
    ctx.report({key: ctx.checkpoint({"op": "scan", "key": key, "middle": True, "exclude": list(exclude)})})


def scratch_wiped(env: Environment) -> Result:
    steps = ["stream partial read", "Secret reader read()", "Stream read()"]

    def fn(ctx: child.Context) -> None:
        stream = Stream()
        stream.write(_read(ctx, "stream partial read"))
        head = bytearray(SIZE // 4)
        stream.readinto(head)  # the chunk is decrypted into scratch; its rest is resealed
        _middle(ctx, "stream partial read")

        secret: Any = SecretFactory("protected").new(_read(ctx, "Secret reader read()"))
        data = secret.reader().read()
        _middle(ctx, "Secret reader read()", _span(secret), _bytes_span(data))

        stream = Stream()
        stream.write(_read(ctx, "Stream read()"))
        out = stream.read()
        _middle(ctx, "Stream read()", _bytes_span(out))
        ctx.report({"lengths": [len(head), len(data), len(out)]})

    counts, outcome = _run(fn, env)
    ok = outcome.exit_code == 0 and all(counts.get(k) == 0 for k in steps)
    ok = ok and counts.get("lengths") == [SIZE // 4, SIZE, SIZE]
    observed = ", ".join(f"{k}: {counts.get(k, '?')}" for k in steps)
    return verdict("scratch_wiped", ok, "0 copies left in scratch or staging",
                   f"{observed}; {outcome.describe()}" + env.note)


scenario("scratch_wiped", "the stream's scratch and read()'s staging keep no plaintext")(scratch_wiped)


def enclave_scratch_at_rest(env: Environment) -> Result:
    """An enclave secret's borrow ends: the reused scratch it was decrypted into holds
    no copy and is NO_ACCESS; a child forked inside the borrow reads zeros there,
    and its own enclave secrets work."""

    def fn(ctx: child.Context) -> None:
        factory = SecretFactory("enclave")
        secret: Any = factory.new(_read(ctx, "value"))
        with secret.borrow() as view:
            address, length = raw.address_of(view), len(view)
            pid = os.fork()
            if pid == 0:
                status = 0 if raw.read(address, length) == bytes(length) else 1
                try:
                    works = factory.new(bytearray(b"fresh")).with_bytes(bytes) == b"fresh"
                except Exception:
                    works = False
                os._exit(status | (0 if works else 2))
            _, status = os.waitpid(pid, 0)
        ctx.report({"forked child": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1,
                    "readable after": raw.readable(address)})
        _middle(ctx, "value")

    counts, outcome = _run(fn, env)
    want = {"forked child": 0, "readable after": False, "value": 0}
    got = {k: counts.get(k, "?") for k in want}
    ok = outcome.exit_code == 0 and got == want
    return verdict("enclave_scratch_at_rest", ok, "no copy, NO_ACCESS after the borrow; zeros in a forked child",
                   f"{got}; {outcome.describe()}" + env.note)


scenario(
    "enclave_scratch_at_rest",
    "an enclave borrow's reused scratch is wiped and NO_ACCESS when it ends, and zero in a forked child",
)(enclave_scratch_at_rest)
