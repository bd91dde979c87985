"""The securememory pytest plugin: copy counting in a child, open-secret check, markers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness import restrict
from securememory import SecretFactory


def test_clean_block_has_no_copies(secret_copies: Callable[..., dict[str, list[int]]]) -> None:
    def block(probe: Any) -> None:
        secret = SecretFactory().from_file(probe.file("key"))
        probe.scan()
        out = bytearray(32)
        secret.reader().readinto(out)
        probe.exclude_view(out)  # the caller's own copy, on purpose

    counts = secret_copies(block)
    assert counts == {"key": [0, 0]}  # the block's scan, then the one after it


def test_a_kept_copy_is_reported(secret_copies: Callable[..., dict[str, list[int]]]) -> None:
    kept: list[bytes] = []

    def block(probe: Any) -> None:
        secret = SecretFactory().from_file(probe.file("key"))
        kept.append(secret.with_bytes(bytes))

    with pytest.raises(AssertionError, match=r"found \{'key': \[1\]\}"):
        secret_copies(block)
    assert secret_copies(block, expect=1) == {"key": [1]}


def test_a_block_that_fails_is_reported(secret_copies: Callable[..., dict[str, list[int]]]) -> None:
    def block(probe: Any) -> None:
        raise RuntimeError("boom in the child")

    with pytest.raises(AssertionError, match="boom in the child"):
        secret_copies(block)


PLUGIN_TESTS = '''
import pytest
from securememory import SecretFactory

def test_leaves_one_open(no_open_secrets):
    test_leaves_one_open.kept = SecretFactory().create_random(8)

def test_closes(no_open_secrets):
    with SecretFactory().create_random(8):
        pass

@pytest.mark.needs_memlock(1 << 60)
def test_needs_more_than_exists():
    pass

@pytest.mark.needs_ipc_lock
def test_needs_the_capability():
    pass

@pytest.mark.needs_memlock(4096)
def test_needs_a_page():
    with SecretFactory().create_random(8):
        pass
'''


@pytest.mark.restricted
def test_fixtures_and_markers_through_the_entry_point(tmp_path: Path) -> None:
    """An application's test file run by pytest in a process without CAP_IPC_LOCK under 64 KiB."""
    (tmp_path / "test_app.py").write_text(PLUGIN_TESTS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        preexec_fn=lambda: restrict.apply(restrict.Restriction(restrict.DEFAULT_LIMIT)),
    )
    out = run.stdout
    assert "left 1 secret(s) open" in out, out
    assert "3 passed, 2 skipped, 1 error" in out, out  # the open secret fails at teardown
    assert "needs 1152921504606846976 lockable bytes; RLIMIT_MEMLOCK is 65536" in out, out
    assert "needs CAP_IPC_LOCK, which this process does not hold" in out, out
