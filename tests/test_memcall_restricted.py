"""memcall under the restricted profile: no CAP_IPC_LOCK and a tight RLIMIT_MEMLOCK."""

from __future__ import annotations

import errno

import pytest
from conftest import LIMIT, PAGE, restricted, run_ok

from securememory import errors
from securememory.memcall import alloc, capabilities, free, lock, unlock

pytestmark = pytest.mark.restricted


def _lock_error_fields(e: errors.MemoryLockError) -> dict[str, object]:
    return {
        "errno": e.errno,
        "requested": e.requested,
        "limit_soft": e.limit_soft,
        "limit_hard": e.limit_hard,
        "locked": e.locked,
        "cap": e.cap_ipc_lock,
        "message": str(e),
    }


def test_profile_is_in_force() -> None:
    def body(ctx: object) -> None:
        c = capabilities()
        ctx.report([c.cap_ipc_lock, c.memlock_soft, c.memlock_hard, c.mlock_works])  # type: ignore[attr-defined]

    out = run_ok(body, restriction=restricted())
    assert out.reports == [[False, LIMIT, LIMIT, True]]


def test_lock_over_limit_is_enomem_naming_the_limit() -> None:
    def body(ctx: object) -> None:
        small = alloc(LIMIT // 2)
        lock(small)  # under the limit: works
        big = alloc(2 * LIMIT)
        try:
            lock(big)
        except errors.MemoryLockError as e:
            ctx.report(_lock_error_fields(e))  # type: ignore[attr-defined]
        ctx.report([big.locked, small.locked, capabilities().locked_bytes])  # type: ignore[attr-defined]
        unlock(small)
        free(small)
        free(big)

    out = run_ok(body, restriction=restricted())
    assert len(out.reports) == 2, out.stderr
    e, state = out.reports
    assert e["errno"] == errno.ENOMEM
    assert e["requested"] == 2 * LIMIT
    assert e["limit_soft"] == LIMIT and e["limit_hard"] == LIMIT
    assert e["locked"] == LIMIT // 2
    assert e["cap"] is False
    assert "64 KiB" in e["message"]
    assert "ENOMEM" in e["message"]
    assert "ulimit -l" in e["message"] and "CAP_IPC_LOCK" in e["message"]
    assert state == [False, True, LIMIT // 2]


def test_lock_with_zero_limit_is_eperm() -> None:
    def body(ctx: object) -> None:
        r = alloc(PAGE)
        try:
            lock(r)
        except errors.MemoryLockError as e:
            ctx.report(_lock_error_fields(e))  # type: ignore[attr-defined]
        ctx.report([r.locked, capabilities().mlock_works])  # type: ignore[attr-defined]

    out = run_ok(body, restriction=restricted(0))
    assert len(out.reports) == 2, out.stderr
    e, state = out.reports
    assert e["errno"] == errno.EPERM
    assert e["limit_soft"] == 0 and e["limit_hard"] == 0
    assert e["cap"] is False
    assert "EPERM" in e["message"] and "not held" in e["message"]
    assert state == [False, False]


def test_memory_lock_error_is_a_secure_memory_error() -> None:
    e = errors.MemoryLockError(errno.ENOMEM, 131072, 65536, 65536, 4096, False)
    assert isinstance(e, errors.SecureMemoryError)
    assert "64 KiB" in str(e) and "131072" in str(e)
    e = errors.MemoryLockError(errno.EAGAIN, 1, -1, -1, 0, True)
    assert "unlimited" in str(e)
