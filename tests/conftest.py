"""Shared helpers: run scenarios in forked children and look at this process's mappings."""

from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
from collections.abc import Callable
from typing import Any

import pytest

from harness import child, memory, restrict
from securememory.memcall import page_size

PAGE = page_size()
LIMIT = restrict.DEFAULT_LIMIT


def _quiet(fn: Callable[[child.Context], None]) -> Callable[[child.Context], None]:
    """``fn`` preceded by turning off pytest's faulthandler (its dumps go to the terminal).

    A crash-wipe handler installed over faulthandler is reinstalled over the
    default disposition, so it stays in force.
    """

    def body(ctx: child.Context) -> None:
        from securememory._native import lib
        from securememory.memguard import disable_crash_wipe, enable_crash_wipe

        installed = bool(lib.sm_crash_installed())
        if installed:
            disable_crash_wipe()
        faulthandler.disable()
        if installed:
            enable_crash_wipe()
        fn(ctx)

    return body


def run(fn: Callable[[child.Context], None], **kwargs: Any) -> child.Outcome:
    """Run ``fn`` in a forked child; fail the test if it hung."""
    kwargs.setdefault("timeout", 60.0)
    outcome = child.run(_quiet(fn), **kwargs)
    if outcome.unsupported:
        pytest.skip(f"restricted profile unavailable here: {outcome.unsupported}")
    assert not outcome.timed_out, f"child timed out; stderr:\n{outcome.stderr}"
    return outcome


def run_ok(fn: Callable[[child.Context], None], **kwargs: Any) -> child.Outcome:
    """Run ``fn`` in a forked child and require a clean exit (status 0)."""
    outcome = run(fn, **kwargs)
    assert outcome.signal is None, f"child {outcome.describe()}; stderr:\n{outcome.stderr}"
    assert outcome.exit_code == 0, f"child {outcome.describe()}; stderr:\n{outcome.stderr}"
    return outcome


def restricted(memlock: int = LIMIT) -> restrict.Restriction:
    return restrict.Restriction(memlock)


def mapping_at(addr: int, pid: int | None = None) -> memory.Mapping:
    """The mapping (VMA) of ``pid`` (default: this process) that contains ``addr``."""
    for m in memory.mappings(os.getpid() if pid is None else pid):
        if m.contains(addr):
            return m
    raise AssertionError(f"no mapping contains {addr:#x}")


def poke(addr: int, value: int = 0x41, length: int = 1) -> None:
    """Write raw bytes at an address, bypassing every Python-level check."""
    ctypes.memset(addr, value, length)


def peek(addr: int, length: int) -> bytes:
    """Read raw bytes at an address, bypassing every Python-level check."""
    return ctypes.string_at(addr, length)


@pytest.fixture
def registry_baseline() -> Callable[[], tuple[int, int]]:
    """A function returning (registry count, C live-table count) right now."""
    from securememory._native import lib
    from securememory.memguard import registry

    def counts() -> tuple[int, int]:
        return registry.count(), int(lib.sm_live_count())

    return counts


_stacks: list[Any] = []  # the open file faulthandler writes to; kept for the life of the process


def pytest_configure(config: pytest.Config) -> None:
    """With SECUREMEMORY_STACKS set, SIGWINCH dumps every thread's stack into that file.

    .ci/limit.py sends it to a run that outlived its limit, so a hung test
    names itself. Forked test processes inherit the handler; SIGWINCH is
    ignored by default, so processes without it are unaffected.
    """
    path = os.environ.get("SECUREMEMORY_STACKS")
    if path and hasattr(signal, "SIGWINCH") and not _stacks:
        _stacks.append(open(path, "a"))  # noqa: SIM115 - open until exit
        faulthandler.register(signal.SIGWINCH, file=_stacks[0], all_threads=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = restrict.supported()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "restricted" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The syscall fault sweep's figures: (operation, call site, errno) cases and how each ended."""
    stats = terminalreporter.stats
    ours = {key: [r for r in stats.get(key, []) if "test_syscall_faults.py::test_fault[" in getattr(r, "nodeid", "")]
            for key in ("passed", "xfailed", "failed", "xpassed")}
    ours["passed"] = [r for r in ours["passed"] if getattr(r, "when", "call") == "call"]
    total = sum(len(v) for v in ours.values())
    if total:
        terminalreporter.write_line(
            f"syscall fault injection: {total} (operation, call site, errno) cases: {len(ours['passed'])} held, "
            f"{len(ours['xfailed'])} known defects (xfail), {len(ours['failed']) + len(ours['xpassed'])} failed"
        )
