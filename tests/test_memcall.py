"""memcall: regions, protection, locking, advice, core limits and capabilities."""

from __future__ import annotations

import dataclasses
import errno
import os
import resource
import signal
from collections.abc import Callable

import pytest
from conftest import PAGE, mapping_at, peek, poke, run, run_ok

from harness import memory
from securememory import errors
from securememory.memcall import (
    Capabilities,
    Protection,
    Region,
    alloc,
    capabilities,
    disable_core_dumps,
    dont_dump,
    free,
    lock,
    page_size,
    protect,
    unlock,
    wipe_on_fork,
)

BAD_TYPES = [1.5, "4096", b"1", None, True, False, [1]]
BAD_VALUES = [0, -1, -4096, (1 << 62) + 1, 1 << 70]


def test_page_size() -> None:
    assert page_size() == os.sysconf("SC_PAGESIZE")
    assert page_size() & (page_size() - 1) == 0


@pytest.mark.parametrize("size", [1, 17, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE])
def test_alloc_rounds_zero_fills_and_is_read_write(size: int) -> None:
    r = alloc(size)
    try:
        assert isinstance(r, Region)
        assert r.size == -(-size // PAGE) * PAGE
        assert r.address % PAGE == 0
        assert r.protection == Protection.READ_WRITE
        assert not r.locked and not r.freed and not r.secret
        view = r.view()
        assert len(view) == r.size and not view.readonly
        assert bytes(view) == bytes(r.size)
        view[0] = 7
        view[-1] = 9
        assert peek(r.address, 1) == b"\x07"
        assert peek(r.address + r.size - 1, 1) == b"\x09"
        m = mapping_at(r.address)
        assert m.perms.startswith("rw") and m.perms.endswith("p"), m.perms
    finally:
        free(r)


@pytest.mark.parametrize("size", BAD_TYPES)
def test_alloc_rejects_non_int(size: object) -> None:
    with pytest.raises(errors.InvalidTypeError) as info:
        alloc(size)  # type: ignore[arg-type]
    assert isinstance(info.value, TypeError)
    assert isinstance(info.value, errors.SecureMemoryError)


@pytest.mark.parametrize("size", BAD_VALUES)
def test_alloc_rejects_bad_sizes(size: int) -> None:
    with pytest.raises(errors.InvalidArgumentError) as info:
        alloc(size)
    assert isinstance(info.value, ValueError)


def test_alloc_absurd_size_is_refused_by_the_kernel() -> None:
    with pytest.raises(errors.AllocationError) as info:
        alloc(1 << 62)
    assert info.value.errno == errno.ENOMEM
    assert info.value.requested == 1 << 62
    assert isinstance(info.value, MemoryError)


def test_free_unmaps_and_double_free_raises() -> None:
    r = alloc(PAGE)
    addr = r.address
    free(r)
    assert r.freed
    assert not any(m.contains(addr) for m in memory.mappings(os.getpid()))
    with pytest.raises(errors.RegionFreedError):
        free(r)
    assert "freed" in repr(r)


@pytest.mark.parametrize(
    "op",
    [
        lock,
        unlock,
        dont_dump,
        wipe_on_fork,
        lambda r: protect(r, Protection.READ_ONLY),
        lambda r: r.view(),
    ],
)
def test_operations_on_freed_region_raise(op: object) -> None:
    r = alloc(PAGE)
    free(r)
    with pytest.raises(errors.RegionFreedError):
        op(r)  # type: ignore[operator]


@pytest.mark.parametrize("fn", [free, lock, unlock, dont_dump, wipe_on_fork])
@pytest.mark.parametrize("bad", [None, 0, b"x", bytearray(8), memoryview(b"x")])
def test_functions_reject_non_regions(fn: object, bad: object) -> None:
    with pytest.raises(errors.InvalidTypeError):
        fn(bad)  # type: ignore[operator]


def test_protect_rejects_non_regions() -> None:
    with pytest.raises(errors.InvalidTypeError):
        protect(bytearray(8), Protection.READ_ONLY)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, 1, 3, 7, -1, "READ_ONLY", None, 1.0, True])
def test_protect_rejects_wrong_protection_values(bad: object) -> None:
    r = alloc(PAGE)
    try:
        with pytest.raises(errors.InvalidTypeError):
            protect(r, bad)  # type: ignore[arg-type]
        assert r.protection == Protection.READ_WRITE
        assert mapping_at(r.address).perms.startswith("rw")
    finally:
        free(r)


def test_protect_changes_page_permissions_and_views() -> None:
    r = alloc(PAGE)
    try:
        protect(r, Protection.READ_ONLY)
        assert r.protection == Protection.READ_ONLY
        assert mapping_at(r.address).perms.startswith("r-")
        assert r.view().readonly
        protect(r, Protection.NO_ACCESS)
        assert mapping_at(r.address).perms.startswith("---")
        protect(r, Protection.READ_WRITE)
        assert mapping_at(r.address).perms.startswith("rw")
        assert not r.view().readonly
    finally:
        free(r)


def test_free_works_from_no_access_and_read_only() -> None:
    for prot in (Protection.NO_ACCESS, Protection.READ_ONLY):
        r = alloc(PAGE)
        r.view()[:4] = b"abcd"
        protect(r, prot)
        free(r)
        assert r.freed


def test_lock_shows_locked_bytes_in_smaps() -> None:
    r = alloc(4 * PAGE)
    try:
        before = capabilities().locked_bytes
        m = mapping_at(r.address)
        assert "lo" not in m.flags
        lock(r)
        assert r.locked
        m = mapping_at(r.address)
        assert "lo" in m.flags
        assert m.locked >= r.size
        assert capabilities().locked_bytes - before == r.size
        unlock(r)
        assert not r.locked
        assert "lo" not in mapping_at(r.address).flags
        assert capabilities().locked_bytes == before
    finally:
        free(r)


def test_free_unlocks_a_locked_region() -> None:
    before = capabilities().locked_bytes
    r = alloc(2 * PAGE)
    lock(r)
    assert capabilities().locked_bytes == before + 2 * PAGE
    free(r)
    assert capabilities().locked_bytes == before


@pytest.mark.parametrize(("advise", "flag"), [(dont_dump, "dd"), (wipe_on_fork, "wf")])
def test_advice_sets_its_smaps_flag(advise: Callable[[Region], None], flag: str) -> None:
    r = alloc(PAGE)
    try:
        assert flag not in mapping_at(r.address).flags
        advise(r)
        assert flag in mapping_at(r.address).flags
    finally:
        free(r)


@pytest.mark.parametrize("advise", [False, True])
def test_wipe_on_fork_child_sees_zeros(advise: bool) -> None:
    r = alloc(PAGE)
    r.view()[:8] = b"SECRET!!"
    if advise:
        wipe_on_fork(r)

    def body(ctx: object) -> None:
        ctx.report(peek(r.address, 8).hex())  # type: ignore[attr-defined]

    out = run_ok(body)
    expected = bytes(8) if advise else b"SECRET!!"
    assert out.reports == [expected.hex()]
    assert bytes(r.view()[:8]) == b"SECRET!!"
    free(r)


def test_region_view_keeps_region_alive() -> None:
    view = alloc(PAGE).view()
    view[:3] = b"abc"
    assert bytes(view[:3]) == b"abc"


# -- exact signals in forked children --------------------------------------------


def _access(protection: Protection | None, write: bool, back_to_rw: bool) -> object:
    def body(ctx: object) -> None:
        r = alloc(PAGE)
        r.view()[:4] = b"abcd"
        if protection is not None:
            protect(r, protection)
        if back_to_rw:
            protect(r, Protection.READ_WRITE)
        if write:
            poke(r.address, 0x5A)
            ctx.report(peek(r.address, 1).hex())  # type: ignore[attr-defined]
        else:
            ctx.report(peek(r.address, 4).decode())  # type: ignore[attr-defined]

    return body


def test_read_no_access_is_sigsegv() -> None:
    out = run(_access(Protection.NO_ACCESS, write=False, back_to_rw=False))
    assert out.signal == signal.SIGSEGV, out.describe()
    assert out.reports == []


def test_write_no_access_is_sigsegv() -> None:
    out = run(_access(Protection.NO_ACCESS, write=True, back_to_rw=False))
    assert out.signal == signal.SIGSEGV, out.describe()


def test_write_read_only_is_sigsegv() -> None:
    out = run(_access(Protection.READ_ONLY, write=True, back_to_rw=False))
    assert out.signal == signal.SIGSEGV, out.describe()
    assert out.reports == []


def test_read_read_only_succeeds() -> None:
    out = run_ok(_access(Protection.READ_ONLY, write=False, back_to_rw=False))
    assert out.reports == ["abcd"]


@pytest.mark.parametrize("protection", [Protection.NO_ACCESS, Protection.READ_ONLY])
def test_access_after_back_to_read_write_succeeds(protection: Protection) -> None:
    out = run_ok(_access(protection, write=False, back_to_rw=True))
    assert out.reports == ["abcd"]
    out = run_ok(_access(protection, write=True, back_to_rw=True))
    assert out.reports == ["5a"]


# -- memfd_secret ------------------------------------------------------------------


def _memfd_secret_or_skip() -> None:
    if not capabilities().memfd_secret:
        with pytest.raises(errors.UnsupportedError):
            alloc(PAGE, secret=True)
        pytest.skip("memfd_secret is not available on this kernel")


def test_memfd_secret_region() -> None:
    _memfd_secret_or_skip()
    fds_before = len(os.listdir("/proc/self/fd"))
    r = alloc(100, secret=True)
    try:
        assert r.secret and r.size == PAGE
        assert len(os.listdir("/proc/self/fd")) == fds_before
        m = mapping_at(r.address)
        assert "secretmem" in m.path
        assert "lo" in m.flags
        assert r.locked
        lock(r)
        assert r.locked
        view = r.view()
        assert bytes(view) == bytes(PAGE)
        view[:5] = b"hello"
        assert peek(r.address, 5) == b"hello"
        with pytest.raises(errors.ProtectionError):
            wipe_on_fork(r)
    finally:
        free(r)
    assert r.freed


def test_memfd_secret_unreadable_through_proc_mem_while_locked_page_reads() -> None:
    _memfd_secret_or_skip()

    def body(ctx: object) -> None:
        secret = alloc(PAGE, secret=True)
        plain = alloc(PAGE)
        lock(plain)
        secret.view()[:8] = b"MARKER01"
        plain.view()[:8] = b"MARKER02"
        ctx.checkpoint({"secret": secret.address, "plain": plain.address})  # type: ignore[attr-defined]

    def observe(pid: int, where: dict[str, int]) -> dict[str, object]:
        return {
            "secret_errno": memory.read_errno(pid, where["secret"], 8),
            "secret": memory.read(pid, where["secret"], 8),
            "plain_errno": memory.read_errno(pid, where["plain"], 8),
            "plain": (memory.read(pid, where["plain"], 8) or b"").decode(),
        }

    out = run_ok(body, observe=lambda pid, v: _jsonable(observe(pid, v)))
    seen = out.observations[0]
    assert seen["secret_errno"] == errno.EIO
    assert seen["secret"] is None
    assert seen["plain_errno"] == 0
    assert seen["plain"] == "MARKER02"


def _jsonable(d: dict[str, object]) -> dict[str, object]:
    return {k: (v.hex() if isinstance(v, bytes) else v) for k, v in d.items()}


# -- core dumps ----------------------------------------------------------------------


def test_disable_core_dumps_soft_only_by_default() -> None:
    def body(ctx: object) -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (1 << 20, resource.RLIM_INFINITY))
        disable_core_dumps()
        soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
        resource.setrlimit(resource.RLIMIT_CORE, (1 << 20, hard))  # undoable
        ctx.report([soft, hard, resource.getrlimit(resource.RLIMIT_CORE)[0]])  # type: ignore[attr-defined]

    out = run_ok(body)
    soft, hard, raised = out.reports[0]
    assert soft == 0
    assert hard == resource.RLIM_INFINITY
    assert raised == 1 << 20


def test_disable_core_dumps_hard() -> None:
    def body(ctx: object) -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (1 << 20, resource.RLIM_INFINITY))
        disable_core_dumps(hard=True)
        ctx.report(list(resource.getrlimit(resource.RLIMIT_CORE)))  # type: ignore[attr-defined]
        c = capabilities()
        ctx.report([c.core_soft, c.core_hard])  # type: ignore[attr-defined]

    out = run_ok(body)
    assert out.reports == [[0, 0], [0, 0]]


# -- capabilities --------------------------------------------------------------------


def _cap_eff(cap: int) -> bool:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> cap & 1)
    return False


def test_capabilities_snapshot() -> None:
    c = capabilities()
    assert isinstance(c, Capabilities)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.page_size = 1  # type: ignore[misc]
    assert c.page_size == PAGE
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    assert c.memlock_soft == (-1 if soft == resource.RLIM_INFINITY else soft)
    assert c.memlock_hard == (-1 if hard == resource.RLIM_INFINITY else hard)
    csoft, chard = resource.getrlimit(resource.RLIMIT_CORE)
    assert c.core_soft == (-1 if csoft == resource.RLIM_INFINITY else csoft)
    assert c.core_hard == (-1 if chard == resource.RLIM_INFINITY else chard)
    assert c.cap_ipc_lock == _cap_eff(14)
    assert c.madv_dontdump and c.madv_wipeonfork
    with open("/proc/sys/kernel/core_pattern") as f:
        assert c.core_pattern == f.read().strip()
    assert c.locked_bytes >= 0
    assert c.kernel.startswith("Linux")
    text = c.report()
    for word in ("RLIMIT_MEMLOCK", "CAP_IPC_LOCK", "mlock", "memfd_secret", "MADV_DONTDUMP", "core_pattern"):
        assert word in text


def test_capabilities_locked_bytes_tracks_locks() -> None:
    r = alloc(3 * PAGE)
    before = capabilities().locked_bytes
    lock(r)
    assert capabilities().locked_bytes == before + 3 * PAGE
    free(r)
    assert capabilities().locked_bytes == before


def test_windows_module_is_not_built_on_linux() -> None:
    from securememory import _native

    assert hasattr(_native.lib, "sm_map")
    assert not hasattr(_native.lib, "VirtualAlloc")
