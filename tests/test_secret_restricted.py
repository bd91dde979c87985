"""The restricted profile (no CAP_IPC_LOCK, RLIMIT_MEMLOCK 64 KiB or 0) for each backend and mlock policy."""

from __future__ import annotations

import errno
import warnings
from typing import Any

import pytest
from conftest import LIMIT, PAGE, restricted, run_ok

from harness import child
from securememory import MemoryLockError, SecretFactory
from securememory.errors import UnlockedMemoryWarning
from securememory.memcall.system import locked_bytes as vmlck
from securememory.memguard import registry

pytestmark = pytest.mark.restricted




@pytest.mark.parametrize("backend", ["protected", "legacy"])
def test_require_fails_past_the_limit_naming_it(backend: str) -> None:
    def body(ctx: child.Context) -> None:
        factory = SecretFactory(backend, mlock="require")
        secrets = []
        while len(secrets) < 2 * LIMIT // PAGE:
            count = registry.count()
            try:
                secrets.append(factory.create_random(32))
            except MemoryLockError as e:
                ctx.report(
                    {
                        "made": len(secrets),
                        "errno": e.errno,
                        "soft": e.limit_soft,
                        "cap": e.cap_ipc_lock,
                        "message": str(e),
                        "leaked": registry.count() - count,
                        "vmlck": vmlck(),
                    }
                )
                break
        ctx.report(all(s.locked for s in secrets))
        secrets.pop().close()
        again = factory.create_random(32)
        ctx.report([again.locked, again.with_bytes(len)])

    outcome = run_ok(body, restriction=restricted())
    first, all_locked, again = outcome.reports
    assert 1 <= first["made"] <= LIMIT // PAGE
    assert first["errno"] == errno.ENOMEM
    assert first["soft"] == LIMIT and first["cap"] is False
    assert "64 KiB" in first["message"] and "RLIMIT_MEMLOCK" in first["message"]
    assert first["leaked"] == 0
    assert first["vmlck"] <= LIMIT
    assert all_locked is True
    assert again == [True, 32]


@pytest.mark.parametrize("backend", ["protected", "legacy"])
def test_require_with_zero_limit_is_eperm(backend: str) -> None:
    def body(ctx: child.Context) -> None:
        try:
            SecretFactory(backend, mlock="require").new(bytearray(b"k"))
            ctx.report("created")
        except MemoryLockError as e:
            ctx.report([e.errno, "EPERM" in str(e), registry.count(), vmlck()])

    outcome = run_ok(body, restriction=restricted(0))
    assert outcome.reports == [[errno.EPERM, True, 0, 0]]


@pytest.mark.parametrize("backend", ["protected", "legacy"])
def test_best_effort_warns_and_reports_unlocked(backend: str) -> None:
    def body(ctx: child.Context) -> None:
        factory = SecretFactory(backend, mlock="best_effort")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            secrets = [factory.new(bytearray(b"%04d" % i)) for i in range(2 * LIMIT // PAGE)]
        ctx.report(
            {
                "warnings": [w.category.__name__ for w in caught],
                "locked": [s.locked for s in secrets],
                "content": all(s.with_bytes(bytes) == b"%04d" % i for i, s in enumerate(secrets)),
                "vmlck": vmlck(),
            }
        )

    outcome = run_ok(body, restriction=restricted())
    (r,) = outcome.reports
    assert r["warnings"] and set(r["warnings"]) == {UnlockedMemoryWarning.__name__}
    locked = r["locked"]
    assert locked[0] is True and locked[-1] is False
    assert locked == sorted(locked, reverse=True)
    assert r["content"] is True
    assert r["vmlck"] <= LIMIT


@pytest.mark.parametrize("backend", ["protected", "legacy"])
def test_disabled_never_locks(backend: str) -> None:
    def body(ctx: child.Context) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            secrets = [SecretFactory(backend, mlock="disabled").create_random(16) for _ in range(32)]
        ctx.report([len(caught), any(s.locked for s in secrets), vmlck(), secrets[0].with_bytes(len)])

    outcome = run_ok(body, restriction=restricted(0))
    assert outcome.reports == [[0, False, 0, 16]]


@pytest.mark.parametrize("policy", ["require", "best_effort"])
def test_enclave_holds_ten_thousand_secrets_under_64k(policy: str) -> None:
    def body(ctx: child.Context) -> None:
        factory = SecretFactory("enclave", mlock=policy)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            secrets = [factory.new(bytearray(i.to_bytes(4, "big") * 8)) for i in range(10_000)]
            peak = vmlck()
            ok = all(secrets[i].with_bytes(bytes) == i.to_bytes(4, "big") * 8 for i in range(0, 10_000, 97))
            with secrets[1].borrow(), secrets[2].borrow(), secrets[3].borrow():
                peak = max(peak, vmlck())
        ctx.report(
            {"ok": ok, "peak": peak, "locked": secrets[5].locked, "warned": len(caught), "n": len(secrets)}
        )

    outcome = run_ok(body, restriction=restricted(), timeout=120)
    (r,) = outcome.reports
    assert r == {"ok": True, "peak": r["peak"], "locked": True, "warned": 0, "n": 10_000}
    assert 0 < r["peak"] <= LIMIT


def _enclave_without_locking(ctx: child.Context, policy: str) -> None:
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        secret: Any = SecretFactory("enclave", mlock=policy).new(bytearray(b"no lock here"))
        ctx.report([secret.with_bytes(bytes).decode(), secret.locked])


@pytest.mark.parametrize("policy", ["best_effort", "disabled"])
def test_enclave_without_any_lockable_memory(policy: str) -> None:
    outcome = run_ok(lambda ctx: _enclave_without_locking(ctx, policy), restriction=restricted(0))
    assert outcome.reports == [["no lock here", False]]


@pytest.mark.parametrize("policy", ["best_effort", "disabled"])
def test_enclave_without_lockable_memory_under_process_policy(policy: str) -> None:
    def body(ctx: child.Context) -> None:
        from securememory import set_mlock_policy

        set_mlock_policy(policy)
        _enclave_without_locking(ctx, policy)

    outcome = run_ok(body, restriction=restricted(0))
    assert outcome.reports == [["no lock here", False]]


def test_enclave_require_with_zero_limit_fails_cleanly() -> None:
    def body(ctx: child.Context) -> None:
        try:
            SecretFactory("enclave", mlock="require").new(bytearray(b"k"))
            ctx.report("created")
        except MemoryLockError as e:
            ctx.report([e.errno, registry.count(), vmlck()])

    outcome = run_ok(body, restriction=restricted(0))
    assert outcome.reports == [[errno.EPERM, 0, 0]]
