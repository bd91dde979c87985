"""A pytest plugin for applications that use securememory (registered as ``securememory``).

Fixtures:

- ``secret_copies``: ``secret_copies(block, *, expect=0, terminal=False)``
  runs ``block(probe)`` in a forked child and asserts that, at every scan and
  once more after the block, each value the block asked for has ``expect``
  copies in the child's memory outside the pages of the live secrets and
  guarded buffers. The parent draws values after the fork, so the child
  never inherits them: ``probe.file(key)`` returns a file holding a fresh
  value, ``probe.type(key, prompt=...)`` types one at the child's terminal
  (with ``terminal=True`` the child's controlling terminal is a fresh
  pseudo-terminal), ``probe.learn(key, secret)`` counts a value the child
  made, ``probe.scan()`` counts now, ``probe.exclude_view(buf)`` ignores a
  buffer of the caller's own. Returns the counts per value.
- ``no_open_secrets``: fails the test if it leaves more secrets open than
  there were when it started.

Markers: ``needs_ipc_lock`` skips a test unless the process holds
CAP_IPC_LOCK; ``needs_memlock(nbytes)`` skips it unless that many bytes can
be locked (CAP_IPC_LOCK, or RLIMIT_MEMLOCK at least ``nbytes``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .memcall import capabilities
from .metrics import metrics

if TYPE_CHECKING:
    from harness.probe import Probe


def _probe_module() -> Any:
    try:
        from securememory.harness import probe  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # a repository checkout: the harness sits next to the package
        from harness import probe
    return probe


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_ipc_lock: skip unless the process holds CAP_IPC_LOCK")
    config.addinivalue_line(
        "markers", "needs_memlock(nbytes): skip unless nbytes can be locked (CAP_IPC_LOCK or RLIMIT_MEMLOCK)"
    )


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("needs_ipc_lock") and not capabilities().cap_ipc_lock:
        pytest.skip("needs CAP_IPC_LOCK, which this process does not hold")
    marker = item.get_closest_marker("needs_memlock")
    if marker is not None:
        need = int(marker.args[0]) if marker.args else int(marker.kwargs["nbytes"])
        caps = capabilities()
        room = caps.memlock_soft < 0 or caps.memlock_soft - caps.locked_bytes >= need
        if not (caps.cap_ipc_lock or room):
            pytest.skip(
                f"needs {need} lockable bytes; RLIMIT_MEMLOCK is {caps.memlock_soft} with "
                f"{caps.locked_bytes} locked and no CAP_IPC_LOCK"
            )


@pytest.fixture
def secret_copies() -> Callable[..., dict[str, list[int]]]:
    """Run a block in a forked child and assert how many copies of its values it leaves."""
    probe = _probe_module()

    def run(block: Callable[[Probe], None], *, expect: int = 0, terminal: bool = False) -> dict[str, list[int]]:
        report = probe.run(block, terminal=terminal)
        outcome = report.outcome
        assert not outcome.timed_out, f"the block timed out; stderr:\n{outcome.stderr}"
        assert outcome.exit_code == 0, f"the block failed ({outcome.describe()}); stderr:\n{outcome.stderr}"
        assert report.counts, "the block asked for no value (use probe.file, probe.type or probe.learn)"
        wrong = {k: n for k, n in report.counts.items() if any(c != expect for c in n)}
        assert not wrong, f"expected {expect} copies of each value at every scan, found {wrong}"
        counts: dict[str, list[int]] = report.counts
        return counts

    return run


@pytest.fixture
def no_open_secrets() -> Iterator[None]:
    """Fail the test if it ends with more secrets open than it started with."""
    before = metrics.in_use
    yield
    left = metrics.in_use - before
    assert left <= 0, f"the test left {left} secret(s) open: close them or use them as context managers"
