"""Copies of a secret: none left after close, none stray while alive.

Secret values are drawn in the parent after the fork (the child must not
inherit a copy), handed to the child through a file the child reads with the
library, or learned by reading the child's secret pages. The parent then
counts every copy in the child's memory through /proc/PID/mem, excluding the
spans the child names as the secret's own pages or the caller's own buffer.
"""

from __future__ import annotations

import functools
import os
import tempfile
from typing import Any

from securememory import SecretClosedError, SecretFactory, Stream
from securememory.memguard import Buffer, Enclave

from .. import child, memory, raw
from ..scenario import Environment, Result, scenario, verdict

SIZE = 32


class _Values:
    """The parent's side: fresh values on request, copies counted at each scan."""

    def __init__(self) -> None:
        self.values: dict[str, bytes] = {}
        self.dir = tempfile.TemporaryDirectory(prefix="securememory-harness-")

    def observe(self, pid: int, msg: dict[str, Any]) -> Any:
        key = msg["key"]
        if msg["op"] == "file":
            value = os.urandom(msg.get("size", SIZE))
            self.values[key] = value
            path = os.path.join(self.dir.name, key)
            with open(path, "wb") as f:
                f.write(value)
            return path
        if msg["op"] == "learn":
            data = memory.read(pid, msg["address"], SIZE)
            if data is None:
                return False
            self.values[key] = data
            return True
        value = self.values[key]
        if msg.get("middle"):  # a freed block's head is overwritten by the allocator; its middle is not
            value = value[len(value) // 2 - 32 : len(value) // 2 + 32]
        return len(memory.find(pid, value, [tuple(s) for s in msg.get("exclude", [])]))


def _file(ctx: child.Context, key: str, size: int = SIZE) -> str:
    """Path of a file holding a fresh random value of ``size`` bytes, known to the parent as ``key``."""
    path: str = ctx.checkpoint({"op": "file", "key": key, "size": size})
    return path


def _scan(ctx: child.Context, key: str, *exclude: tuple[int, int]) -> int:
    count: int = ctx.checkpoint({"op": "scan", "key": key, "exclude": list(exclude)})
    ctx.report({key: count})
    return count


def _secret_and_buffer(ctx: child.Context) -> tuple[Any, Buffer]:
    """A protected Secret (key "secret") and a Buffer (key "buffer"), each read from a fresh file."""
    secret = SecretFactory("protected").from_file(_file(ctx, "secret"))
    buf = Buffer(SIZE)
    with open(_file(ctx, "buffer"), "rb", buffering=0) as f:
        f.readinto(buf.view())
    return secret, buf


def _span(secret: Any) -> tuple[int, int]:
    with secret.borrow() as view:
        return raw.address_of(view), len(view)


def _run(fn: Any, env: Environment, values: _Values | None = None) -> tuple[dict[str, Any], child.Outcome]:
    """Run ``fn`` observed by ``values`` (a fresh _Values by default); its reports merged, and its Outcome."""
    values = values or _Values()
    try:
        outcome = child.run(fn, observe=values.observe, env=env.child_env)
    finally:
        values.dir.cleanup()
    counts: dict[str, Any] = {}
    for report in outcome.reports:
        counts.update(report)
    return counts, outcome


def use_after_close(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        secret = SecretFactory().create_random(SIZE)
        secret.close()
        try:
            secret.with_bytes(len)
            ctx.report("no error")
        except SecretClosedError as e:
            ctx.report(f"SecretClosedError: {e}")

    outcome = child.run(fn, env=env.child_env)
    said = outcome.reports[0] if outcome.reports else outcome.stderr.strip().splitlines()[-1:]
    ok = outcome.exit_code == 0 and str(said).startswith("SecretClosedError")
    return verdict("use_after_close", ok, "SecretClosedError, process survives", f"{said}; {outcome.describe()}")


def wipe_on_close(env: Environment, backend: str = "protected") -> Result:
    """After close(), no copy of the value anywhere in the child's memory."""
    name = f"wipe_on_close_{backend}"

    def fn(ctx: child.Context) -> None:
        secret = SecretFactory(backend).create_random(SIZE)
        with secret.borrow() as view:
            ctx.checkpoint({"op": "learn", "key": "value", "address": raw.address_of(view)})
        secret.close()
        _scan(ctx, "value")

    counts, outcome = _run(fn, env)
    found = counts.get("value")
    return verdict(
        name, found == 0, "0 copies after close", f"{found} copies; {outcome.describe()}" + env.note
    )


def stray_copies(env: Environment, backend: str = "protected") -> Result:
    """While alive: no copy outside the secret's own pages for each way in and out."""
    name = f"stray_copies_{backend}"

    def fn(ctx: child.Context) -> None:
        factory = SecretFactory(backend)

        secret = factory.create_random(SIZE)
        with secret.borrow() as view:
            ctx.checkpoint({"op": "learn", "key": "create_random", "address": raw.address_of(view)})
        _scan(ctx, "create_random", _span(secret))

        secret = factory.from_file(_file(ctx, "from_file"))
        _scan(ctx, "from_file", _span(secret))

        staging = bytearray(SIZE)
        with open(_file(ctx, "new_bytearray"), "rb", buffering=0) as f:
            f.readinto(staging)
        secret = factory.new(staging)
        _scan(ctx, "new_bytearray", _span(secret))

        secret = factory.from_file(_file(ctx, "borrow"))
        with secret.borrow() as view:
            _scan(ctx, "borrow", (raw.address_of(view), len(view)))

        secret = factory.from_file(_file(ctx, "reader"))
        out = bytearray(SIZE)
        secret.reader().readinto(out)
        _scan(ctx, "reader", _span(secret), (raw.address_of(memoryview(out)), SIZE))

    counts, outcome = _run(fn, env)
    expected = ["create_random", "from_file", "new_bytearray", "borrow", "reader"]
    ok = outcome.exit_code == 0 and all(counts.get(k) == 0 for k in expected)
    observed = ", ".join(f"{k}: {counts.get(k, '?')}" for k in expected)
    return verdict(name, ok, "0 stray copies for each source", observed + env.note)


def stray_copies_memguard(env: Environment) -> Result:
    """Enclave open and a Stream round trip leave no copy outside the result."""

    def fn(ctx: child.Context) -> None:
        staging = bytearray(SIZE)
        with open(_file(ctx, "enclave_open"), "rb", buffering=0) as f:
            f.readinto(staging)
        buf = Enclave(staging).open()
        _scan(ctx, "enclave_open", (buf.address, buf.size))

        with open(_file(ctx, "stream"), "rb", buffering=0) as f:
            f.readinto(staging)
        stream = Stream()
        stream.write(staging)
        out = bytearray(SIZE)
        stream.readinto(out)
        _scan(ctx, "stream", (raw.address_of(memoryview(out)), SIZE))

        with open(_file(ctx, "from_bytes"), "rb", buffering=0) as f:
            f.readinto(staging)
        copied = Buffer.from_bytes(staging)
        _scan(ctx, "from_bytes", (copied.address, copied.size))

        with open(_file(ctx, "move"), "rb", buffering=0) as f:
            f.readinto(staging)
        moved = Buffer(SIZE)
        moved.move(staging)
        _scan(ctx, "move", (moved.address, moved.size))

    counts, outcome = _run(fn, env)
    keys = ["enclave_open", "stream", "from_bytes", "move"]
    ok = outcome.exit_code == 0 and all(counts.get(k) == 0 for k in keys)
    return verdict(
        "stray_copies_memguard",
        ok,
        "0 stray copies",
        ", ".join(f"{k}: {counts.get(k, '?')}" for k in keys) + env.note,
    )


def new_from_bytes(env: Environment) -> Result:
    """new(bytes): the caller's bytes is the one copy left, and the library adds none."""

    def fn(ctx: child.Context) -> None:
        with open(_file(ctx, "new_bytes"), "rb", buffering=0) as f:
            data = f.read()
        secret = SecretFactory().new(data)
        _scan(ctx, "new_bytes", _span(secret))
        del data

    counts, outcome = _run(fn, env)
    found = counts.get("new_bytes")
    return verdict(
        "new_from_bytes",
        found == 1,
        "1 copy: the caller's bytes object, which cannot be wiped",
        f"{found} copies outside the secret; {outcome.describe()}" + env.note,
    )


scenario("use_after_close", "using a closed Secret raises SecretClosedError")(use_after_close)
for _backend in ("protected", "enclave", "legacy"):
    scenario(f"wipe_on_close_{_backend}", f"no copy of a {_backend} secret survives close()")(
        functools.partial(wipe_on_close, backend=_backend)
    )
    scenario(f"stray_copies_{_backend}", f"no stray copy of a live {_backend} secret")(
        functools.partial(stray_copies, backend=_backend)
    )
scenario("stray_copies_memguard", "no stray copy after Enclave.open or a Stream round trip")(stray_copies_memguard)
scenario("new_from_bytes", "new(bytes) leaves only the caller's own bytes")(new_from_bytes)
