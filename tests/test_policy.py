"""The mlock policy: require, best_effort, disabled; per process, per call, by environment."""

from __future__ import annotations

import errno
import threading
import warnings
from typing import Any

import pytest
from conftest import LIMIT, PAGE, restricted, run_ok

from harness import child
from securememory import errors
from securememory._native import lib
from securememory.memcall import capabilities
from securememory.memguard import Buffer, MlockPolicy, get_mlock_policy, registry, set_mlock_policy
from securememory.memguard.buffer import inner_length

BIG = 2 * LIMIT  # a buffer whose inner pages exceed the restricted limit


# -- choosing the policy (no restriction needed) ---------------------------------------------


def test_default_is_require(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECUREMEMORY_MLOCK", raising=False)
    set_mlock_policy(None)
    assert get_mlock_policy() is MlockPolicy.REQUIRE


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("require", MlockPolicy.REQUIRE),
        ("best_effort", MlockPolicy.BEST_EFFORT),
        ("best-effort", MlockPolicy.BEST_EFFORT),
        (" Disabled ", MlockPolicy.DISABLED),
        (MlockPolicy.DISABLED, MlockPolicy.DISABLED),
    ],
)
def test_set_and_get(value: Any, expected: MlockPolicy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECUREMEMORY_MLOCK", raising=False)
    try:
        set_mlock_policy(value)
        assert get_mlock_policy() is expected
    finally:
        set_mlock_policy(None)
    assert get_mlock_policy() is MlockPolicy.REQUIRE


def test_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    set_mlock_policy(None)
    monkeypatch.setenv("SECUREMEMORY_MLOCK", "disabled")
    assert get_mlock_policy() is MlockPolicy.DISABLED
    set_mlock_policy("best_effort")  # the process setting wins over the environment
    assert get_mlock_policy() is MlockPolicy.BEST_EFFORT
    set_mlock_policy(None)
    assert get_mlock_policy() is MlockPolicy.DISABLED
    monkeypatch.setenv("SECUREMEMORY_MLOCK", "bogus")
    with pytest.raises(errors.InvalidArgumentError, match="SECUREMEMORY_MLOCK"):
        get_mlock_policy()
    with pytest.raises(errors.InvalidArgumentError):
        Buffer(8)


@pytest.mark.parametrize("bad", ["sometimes", "", "lock"])
def test_bad_policy_names(bad: str) -> None:
    with pytest.raises(errors.InvalidArgumentError) as info:
        set_mlock_policy(bad)
    assert "require" in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", [1, True, 0.5, b"require", ["require"]])
def test_bad_policy_types(bad: object) -> None:
    with pytest.raises(errors.InvalidTypeError):
        set_mlock_policy(bad)  # type: ignore[arg-type]


def test_disabled_never_locks() -> None:
    before = capabilities().locked_bytes
    with Buffer(64, mlock="disabled") as b:
        assert not b.locked
        assert capabilities().locked_bytes == before


def test_require_locks_when_it_can() -> None:
    if not capabilities().mlock_works:
        pytest.skip("mlock does not work here")
    with Buffer(64, mlock="require") as b:
        assert b.locked


# -- under the restricted profile ------------------------------------------------------------


def _error(e: errors.MemoryLockError) -> dict[str, Any]:
    return {"errno": e.errno, "requested": e.requested, "soft": e.limit_soft, "hard": e.limit_hard,
            "cap": e.cap_ipc_lock, "message": str(e)}


@pytest.mark.restricted
def test_require_raises_and_leaves_nothing() -> None:
    def body(ctx: child.Context) -> None:
        before = [registry.count(), int(lib.sm_live_count()), capabilities().locked_bytes]
        try:
            Buffer(BIG)
        except errors.MemoryLockError as e:
            ctx.report(_error(e))
        ctx.report([before, [registry.count(), int(lib.sm_live_count()), capabilities().locked_bytes]])
        # No lock is held: other threads and later calls proceed.
        done: list[bool] = []
        t = threading.Thread(target=lambda: done.append(Buffer(32).locked))
        t.start()
        t.join()
        ctx.report(done)

    out = run_ok(body, restriction=restricted(), timeout=30)
    assert len(out.reports) == 3, out.stderr
    e, (before, after), done = out.reports
    assert e["errno"] == errno.ENOMEM
    assert e["requested"] == inner_length(BIG)
    assert e["soft"] == LIMIT and e["hard"] == LIMIT and e["cap"] is False
    assert "64 KiB" in e["message"]
    assert after == before
    assert done == [True]


@pytest.mark.restricted
def test_require_fills_up_to_the_limit() -> None:
    def body(ctx: child.Context) -> None:
        held = []
        try:
            while len(held) < 100:
                held.append(Buffer(32))
        except errors.MemoryLockError as e:
            ctx.report([len(held), e.errno, capabilities().locked_bytes])
        for b in held:
            b.destroy()
        ctx.report(capabilities().locked_bytes)

    out = run_ok(body, restriction=restricted(), timeout=30)
    (count, err, locked), after = out.reports
    assert err == errno.ENOMEM
    assert 0 < count <= LIMIT // PAGE
    assert locked == count * PAGE <= LIMIT
    assert after == 0


@pytest.mark.restricted
def test_zero_limit_is_eperm() -> None:
    def body(ctx: child.Context) -> None:
        try:
            Buffer(8)
        except errors.MemoryLockError as e:
            ctx.report(_error(e))
        ctx.report(registry.count())

    out = run_ok(body, restriction=restricted(0))
    e, count = out.reports
    assert e["errno"] == errno.EPERM and e["soft"] == 0
    assert "EPERM" in e["message"]
    assert count == 0


def _best_effort_body(via: str) -> Any:
    def body(ctx: child.Context) -> None:
        if via == "process":
            set_mlock_policy("best_effort")
        kwargs = {"mlock": "best_effort"} if via == "call" else {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            first = Buffer(BIG, **kwargs)
            second = Buffer(BIG, **kwargs)
        first.copy(b"usable")
        ctx.report({
            "locked": [first.locked, second.locked],
            "warnings": [(w.category.__name__, str(w.message)) for w in caught],
            "data": bytes(first.view()[:6]).decode(),
            "vmlck": capabilities().locked_bytes,
            "small_locked": Buffer(32, **kwargs).locked,
        })

    return body


@pytest.mark.restricted
@pytest.mark.parametrize("via", ["call", "process", "env"])
def test_best_effort_proceeds_unlocked_and_warns_once(via: str) -> None:
    env = {"SECUREMEMORY_MLOCK": "best_effort"} if via == "env" else None
    out = run_ok(_best_effort_body(via), restriction=restricted(), env=env)
    r = out.reports[0]
    assert r["locked"] == [False, False]
    assert len(r["warnings"]) == 1
    category, message = r["warnings"][0]
    assert category == "UnlockedMemoryWarning"
    assert "NOT locked" in message and "64 KiB" in message
    assert r["data"] == "usable"
    assert r["vmlck"] == 0
    assert r["small_locked"] is True  # best effort still locks what fits


@pytest.mark.restricted
def test_disabled_under_restriction() -> None:
    def body(ctx: child.Context) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            b = Buffer(BIG, mlock="disabled")
        ctx.report([b.locked, len(caught), capabilities().locked_bytes])

    out = run_ok(body, restriction=restricted())
    assert out.reports == [[False, 0, 0]]


@pytest.mark.restricted
def test_per_call_overrides_process_policy() -> None:
    def body(ctx: child.Context) -> None:
        set_mlock_policy("best_effort")
        try:
            Buffer(BIG, mlock="require")
        except errors.MemoryLockError as e:
            ctx.report(e.errno)
        set_mlock_policy("require")
        ctx.report(Buffer(BIG, mlock="disabled").locked)

    out = run_ok(body, restriction=restricted())
    assert out.reports == [errno.ENOMEM, False]


@pytest.mark.restricted
def test_env_require_overridden_per_call() -> None:
    def body(ctx: child.Context) -> None:
        try:
            Buffer(BIG)
        except errors.MemoryLockError as e:
            ctx.report(e.errno)
        ctx.report(Buffer(BIG, mlock="best_effort").locked)

    out = run_ok(body, restriction=restricted(), env={"SECUREMEMORY_MLOCK": "require"})
    assert out.reports[0] == errno.ENOMEM
    assert out.reports[1] is False
