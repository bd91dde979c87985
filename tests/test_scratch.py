"""The enclave backend's reusable scratch: reused, wiped and NO_ACCESS between borrows."""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

from _secret_helpers import address_of, inaccessible, readable

from securememory import SecretFactory, ViewEscapedError
from securememory._native import ffi
from securememory.memguard import Buffer, purge
from securememory.memguard.scratch import CAPACITY, POOL_SIZE, scratch_pool


def _inner(buf: Buffer) -> int:
    return int(ffi.cast("uintptr_t", buf._b.inner))


def test_borrows_reuse_one_scratch_and_leave_it_wiped_and_no_access() -> None:
    secret = SecretFactory("enclave").new(bytearray(b"reused scratch"))
    first = secret.with_bytes(address_of)
    assert secret.with_bytes(address_of) == first
    assert secret.with_bytes(bytes) == b"reused scratch"
    assert not readable(first) and inaccessible(first)
    assert any(_inner(buf) <= first < _inner(buf) + 4096 for buf in scratch_pool.idle())
    secret.close()


def test_plaintext_ends_at_the_trailing_guard_page() -> None:
    for size in (1, 33, CAPACITY):
        secret = SecretFactory("enclave").new(bytearray(b"g" * size))
        end = secret.with_bytes(lambda v: address_of(v) + len(v))
        assert end % 4096 == 0 and inaccessible(end)
        secret.close()


def test_a_secret_larger_than_a_scratch_gets_a_buffer_of_its_own() -> None:
    before = len(scratch_pool.idle())
    secret = SecretFactory("enclave").new(bytearray(b"L" * (CAPACITY + 1)))
    address = secret.with_bytes(address_of)
    assert secret.with_bytes(bytes) == b"L" * (CAPACITY + 1)
    assert len(scratch_pool.idle()) == before
    assert inaccessible(address)
    secret.close()


def test_an_escaped_scratch_is_never_reused() -> None:
    factory = SecretFactory("enclave")
    secret = factory.new(bytearray(b"escapes"))
    kept: list[memoryview] = []
    with contextlib.suppress(ViewEscapedError):
        secret.with_bytes(lambda v: kept.append(v[:]))
    escaped = address_of(kept[0])
    other = factory.new(bytearray(b"another"))
    assert other.with_bytes(address_of) != escaped
    assert all(not (_inner(buf) <= escaped < _inner(buf) + 4096) for buf in scratch_pool.idle())
    secret.close()
    other.close()


def test_mlock_policies_never_share_a_scratch() -> None:
    locked = SecretFactory("enclave", mlock="require").new(bytearray(b"locked"))
    unlocked = SecretFactory("enclave", mlock="disabled").new(bytearray(b"unlocked"))
    for _ in range(3):
        assert locked.with_bytes(len) and unlocked.with_bytes(len)
        assert locked.locked and not unlocked.locked
    locked.close()
    unlocked.close()


def test_concurrent_borrows_of_different_secrets_get_different_scratches() -> None:
    factory = SecretFactory("enclave")
    secrets = [factory.new(bytearray(bytes([65 + i]) * 16)) for i in range(POOL_SIZE + 2)]
    seen: list[tuple[int, bytes]] = []
    with contextlib.ExitStack() as stack:
        for s in secrets:
            view = stack.enter_context(s.borrow())
            seen.append((address_of(view), bytes(view)))
    assert len({a for a, _ in seen}) == len(secrets)
    assert [v for _, v in seen] == [s.with_bytes(bytes) for s in secrets]
    assert len(scratch_pool.idle()) <= 2 * POOL_SIZE
    for s in secrets:
        s.close()


def test_borrows_from_many_threads_read_their_own_secret() -> None:
    factory = SecretFactory("enclave")
    secrets = [factory.new(bytearray(bytes([97 + i]) * 40)) for i in range(4)]
    wrong: list[int] = []

    def run(i: int) -> None:
        for _ in range(300):
            if secrets[i].with_bytes(bytes) != bytes([97 + i]) * 40:
                wrong.append(i)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, range(4)))
    assert wrong == []
    for s in secrets:
        s.close()


def test_purge_destroys_idle_scratches() -> None:
    secret = SecretFactory("enclave").new(bytearray(b"purged"))
    secret.with_bytes(len)
    idle = scratch_pool.idle()
    assert idle
    purge()
    assert scratch_pool.idle() == [] and not any(buf.alive for buf in idle)
    with SecretFactory("enclave").new(bytearray(b"after")) as after:
        assert after.with_bytes(bytes) == b"after"
