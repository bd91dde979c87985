"""Locked memory: every secret page locked, and the documented outcome under tight limits."""

from __future__ import annotations

import errno
import warnings
from typing import Any

from securememory import MemoryLockError, SecretFactory
from securememory.errors import UnlockedMemoryWarning
from securememory.memcall import locked_bytes

from .. import child, memory, restrict
from ..scenario import Environment, Result, scenario, unsupported, verdict
from .copies import _span

LIMIT_64K = 64 * 1024


def locked(env: Environment, mlock: str = "require") -> Result:
    """smaps shows the secret pages locked ('lo'), not dumped ('dd') and wiped on fork ('wf')."""
    name = "locked"
    expected = "every secret page has VmFlags lo, dd, wf"
    if not env.caps.mlock_works:
        return unsupported(name, expected, "mlock is not permitted here (RLIMIT_MEMLOCK and CAP_IPC_LOCK)")
    found: list[str] = []

    def fn(ctx: child.Context) -> None:
        secrets = []
        for backend in ("protected", "legacy"):
            factory = SecretFactory(backend, mlock=mlock)
            secrets += [factory.create_random(32) for _ in range(3)]
        ctx.checkpoint([[type(s).__name__, *_span(s)] for s in secrets])

    def observe(pid: int, spans: list[list[Any]]) -> None:
        maps = memory.mappings(pid)
        for kind, address, length in spans:
            owner = next((m for m in maps if m.contains(address, length)), None)
            flags = [f for f in ("lo", "dd", "wf") if owner is not None and f in owner.flags]
            found.append(f"{kind}:{','.join(flags) or '-'}")

    outcome = child.run(fn, observe=observe)
    ok = outcome.exit_code == 0 and len(found) == 6 and all(f.endswith(":lo,dd,wf") for f in found)
    return verdict(name, ok, expected, f"{' '.join(found) or 'nothing'}; {outcome.describe()}")


def _restricted(name: str, expected: str, limit: int, fn: Any) -> Result:
    """Run ``fn`` in a child under the restriction."""
    reason = restrict.supported()
    if reason:
        return unsupported(name, expected, reason)
    outcome = child.run(fn, restriction=restrict.Restriction(limit), env={"SECUREMEMORY_MLOCK": "require"})
    if outcome.unsupported:
        return unsupported(name, expected, outcome.unsupported)
    if not outcome.reports:
        return verdict(name, False, expected, f"no report; {outcome.describe()}: {outcome.stderr[-300:]}")
    said = outcome.reports[0]
    return verdict(name, said["ok"] is True, expected, said["what"])


def restricted_require_64k(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        before = locked_bytes()
        try:
            SecretFactory("protected", mlock="require").create_random(128 * 1024)
            ctx.report({"ok": False, "what": "128 KiB secret created under a 64 KiB limit"})
        except MemoryLockError as e:
            ok = e.errno == errno.ENOMEM and e.limit_soft == LIMIT_64K and "64 KiB" in str(e)
            ok = ok and locked_bytes() == before
            ctx.report({"ok": ok, "what": f"MemoryLockError errno {errno.errorcode[e.errno]}, "
                        f"limit {e.limit_soft}, nothing left locked: {locked_bytes() == before}"})

    return _restricted(
        "restricted_require_64k", "MemoryLockError (ENOMEM) naming the 64 KiB limit", LIMIT_64K, fn
    )


def restricted_require_0(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        try:
            SecretFactory("protected", mlock="require").create_random(32)
            ctx.report({"ok": False, "what": "secret created with RLIMIT_MEMLOCK 0"})
        except MemoryLockError as e:
            ctx.report({"ok": e.errno == errno.EPERM and e.limit_soft == 0,
                        "what": f"MemoryLockError errno {errno.errorcode[e.errno]}: {str(e)[:80]}..."})

    return _restricted("restricted_require_0", "MemoryLockError (EPERM) with limit 0", 0, fn)


def restricted_best_effort(env: Environment) -> Result:
    def fn(ctx: child.Context) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            secret = SecretFactory("protected", mlock="best_effort").new(bytearray(b"best effort"))
        warned = any(issubclass(w.category, UnlockedMemoryWarning) for w in caught)
        readable = secret.with_bytes(lambda v: bytes(v) == b"best effort")
        ctx.report({"ok": warned and not secret.locked and readable,
                    "what": f"created, warned: {warned}, locked: {secret.locked}, readable: {readable}"})

    return _restricted(
        "restricted_best_effort", "proceeds unlocked, warns, reports locked=False", 0, fn
    )


def restricted_enclave_10000(env: Environment, backend: str = "enclave") -> Result:
    def fn(ctx: child.Context) -> None:
        factory = SecretFactory(backend, mlock="require")
        secrets = [factory.new(bytearray(i.to_bytes(4, "little"))) for i in range(10_000)]
        right = all(secrets[i].equals(factory.new(i.to_bytes(4, "little"))) for i in (0, 4999, 9999))
        ctx.report({"ok": right and locked_bytes() <= LIMIT_64K,
                    "what": f"{len(secrets)} secrets, values right: {right}, VmLck {locked_bytes()} bytes"})

    return _restricted(
        "restricted_enclave_10000", "10,000 enclave secrets under 64 KiB, values intact", LIMIT_64K, fn
    )


scenario("locked", "smaps shows every secret page locked, not dumped, wiped on fork")(locked)
scenario("restricted_require_64k", "require under 64 KiB without CAP_IPC_LOCK: MemoryLockError")(
    restricted_require_64k
)
scenario("restricted_require_0", "require with RLIMIT_MEMLOCK 0: MemoryLockError (EPERM)")(restricted_require_0)
scenario("restricted_best_effort", "best_effort with RLIMIT_MEMLOCK 0: unlocked, warned")(restricted_best_effort)
scenario("restricted_enclave_10000", "enclave backend: 10,000 secrets under 64 KiB")(restricted_enclave_10000)
