"""Wipe before unlock and unmap, on every free path.

A scan after close() cannot see a skipped wipe: the pages are gone from the
address space by then. Here the child is stopped at the entry of every
munlock, munmap and madvise(MADV_DONTNEED/MADV_FREE) (a seccomp filter traps
them to the parent, see harness.trace), and the parent reads the secret's
bytes through /proc/PID/mem before the call runs: at munlock they must
already be zero (else they could be swapped out unwiped), at munmap zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from securememory import SecretFactory, memcall
from securememory.memguard import Buffer, Enclave, purge, scramble_bytes

from .. import child, memory, raw, trace
from ..scenario import Environment, Result, scenario, unsupported, verdict
from .copies import _span

CALLS = ("munlock", "munmap", "madvise")
MADV_DONTNEED, MADV_FREE = 4, 8
EXPECTED = "secret bytes zero at munlock and munmap, for each path"


class _Watch:
    """The parent's side: spans named by the child, and what each trapped call found in them."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[int, int]] = {}
        self.locked: dict[str, bool] = {}
        self.seen: dict[str, list[tuple[str, bool]]] = {}

    def observe(self, pid: int, msg: dict[str, Any]) -> None:
        if msg["op"] == "watch":
            self.spans[msg["label"]] = (msg["address"], msg["length"])
            self.locked[msg["label"]] = msg["locked"]
            self.seen[msg["label"]] = []

    def on_call(self, pid: int, call: trace.Call) -> None:
        if call.name == "madvise" and call.args[2] not in (MADV_DONTNEED, MADV_FREE):
            return
        start, length = call.args[0], call.args[1]
        for label, (address, size) in list(self.spans.items()):
            lo, hi = max(address, start), min(address + size, start + length)
            if lo >= hi:
                continue
            data = memory.read(pid, lo, hi - lo)
            self.seen[label].append((call.name, data is not None and not any(data)))
            if call.name == "munmap":
                del self.spans[label]  # the address may be reused by later mappings

    def verdicts(self) -> tuple[bool, str]:
        ok = bool(self.seen)
        parts = []
        for label, events in self.seen.items():
            names = {name for name, _ in events}
            dirty = sorted({name for name, zero in events if not zero})
            complete = "munmap" in names and ("munlock" in names or not self.locked[label])
            ok = ok and complete and not dirty
            state = f"NOT ZERO at {', '.join(dirty)}" if dirty else "zero" if complete else "no munmap/munlock seen"
            parts.append(f"{label}: {state}")
        return ok, "; ".join(parts) or "nothing watched"


def _watch(ctx: child.Context, label: str, address: int, length: int, locked: bool) -> None:
    ctx.checkpoint({"op": "watch", "label": label, "address": address, "length": length, "locked": locked})


def _run(name: str, env: Environment, fn: Callable[[child.Context], None]) -> Result:
    reason = trace.available()
    if reason:
        return unsupported(name, EXPECTED, reason)
    watch = _Watch()
    outcome = child.run(fn, observe=watch.observe, env=env.child_env, tracer=trace.Tracer(CALLS, watch.on_call))
    ok, observed = watch.verdicts()
    ok = ok and outcome.exit_code == 0
    return verdict(name, ok, EXPECTED, f"{observed}; {outcome.describe()}" + env.note)


def teardown_memcall(env: Environment) -> Result:
    """memcall.free and the legacy backend's close()."""

    def fn(ctx: child.Context) -> None:
        region = memcall.alloc(100)
        if env.caps.mlock_works:
            memcall.lock(region)
        scramble_bytes(region.view())
        _watch(ctx, "memcall.free", region.address, region.size, region.locked)
        memcall.free(region)
        secret = SecretFactory("legacy").create_random(64)
        _watch(ctx, "legacy close", *_span(secret), secret.locked)
        secret.close()

    return _run("teardown_memcall", env, fn)


def teardown_buffer(env: Environment) -> Result:
    """Buffer.destroy, protected close(), the enclave backend's borrow scratch, an opened Enclave."""

    def fn(ctx: child.Context) -> None:
        buf = Buffer.random(64)
        _watch(ctx, "Buffer.destroy", buf.address, buf.size, buf.locked)
        buf.destroy()
        secret = SecretFactory("protected").create_random(64)
        _watch(ctx, "protected close", *_span(secret), secret.locked)
        secret.close()
        sealed = SecretFactory("enclave").create_random(64)
        with sealed.borrow() as view:
            _watch(ctx, "enclave borrow scratch", raw.address_of(view), len(view), sealed.locked)
        sealed.close()
        opened = Enclave.random(64).open()
        _watch(ctx, "Enclave.open result", opened.address, opened.size, opened.locked)
        opened.destroy()
        purge()  # the borrow's scratch went back to its pool, wiped; purge unmaps it

    return _run("teardown_buffer", env, fn)


def teardown_purge(env: Environment) -> Result:
    """purge(): a Buffer, a protected and a legacy secret, all torn down at once."""

    def fn(ctx: child.Context) -> None:
        buf = Buffer.random(64)
        _watch(ctx, "purged Buffer", buf.address, buf.size, buf.locked)
        protected = SecretFactory("protected").create_random(64)
        _watch(ctx, "purged protected secret", *_span(protected), protected.locked)
        legacy = SecretFactory("legacy").create_random(64)
        _watch(ctx, "purged legacy secret", *_span(legacy), legacy.locked)
        purge()

    return _run("teardown_purge", env, fn)


scenario("teardown_memcall", "memcall.free and legacy close wipe before munlock and munmap")(teardown_memcall)
scenario("teardown_buffer", "Buffer.destroy and every secret close wipe before munlock and munmap")(teardown_buffer)
scenario("teardown_purge", "purge wipes every buffer and secret before munlock and munmap")(teardown_purge)
