"""Error messages state what was asked and what to do."""

from __future__ import annotations

import pytest
from conftest import restricted, run_ok

from harness import child
from securememory import InvalidArgumentError, MemoryLockError, SecretFactory
from securememory.errors import AllocationError


@pytest.mark.parametrize("backend", ["protected", "enclave", "legacy"])
def test_huge_size_is_an_allocation_error_naming_the_size(backend: str) -> None:
    with pytest.raises(AllocationError, match=str(1 << 40)):
        SecretFactory(backend).create_random(1 << 40)


@pytest.mark.parametrize("size", [0, -7, 1 << 63])
def test_invalid_length_names_the_value(size: int) -> None:
    with pytest.raises(InvalidArgumentError, match=rf"^invalid secret length: {size} \(expected 1 to"):
        SecretFactory().create_random(size)


def _lock_messages(ctx: child.Context) -> None:
    for backend in ("enclave", "protected"):
        try:
            SecretFactory(backend).create_random(1 << 20)
        except MemoryLockError as e:
            ctx.report([backend, str(e), e.enclave])


@pytest.mark.restricted
def test_enclave_memlock_message_does_not_suggest_the_enclave_backend() -> None:
    outcome = run_ok(_lock_messages, restriction=restricted())
    said = {backend: (message, enclave) for backend, message, enclave in outcome.reports}
    message, enclave = said["enclave"]
    assert enclave is True
    assert "use the 'enclave' backend" not in message
    assert "locks each secret in full" in message and "1052672 bytes" in message
    message, enclave = said["protected"]
    assert enclave is False and "use the 'enclave' backend" in message
