"""Enclave: seal, open, tampering, truncation, purge, and tight memlock limits."""

from __future__ import annotations

import array
import errno
import pickle
import threading
from typing import Any

import pytest
from conftest import LIMIT, PAGE, restricted, run, run_ok

from harness import child, memory
from securememory import errors
from securememory._native import lib
from securememory.memguard import OVERHEAD, Buffer, Enclave, Protection, get_coffer, purge, registry


def test_overhead() -> None:
    assert OVERHEAD == 28


@pytest.mark.parametrize("size", [1, 32, PAGE, 3 * PAGE + 7])
def test_round_trip_wipes_source(size: int) -> None:
    data = bytes((i * 7 + 3) & 0xFF for i in range(size))
    src = bytearray(data)
    e = Enclave(src)
    assert src == bytearray(size)
    assert e.size == size
    assert len(e.ciphertext) == size + OVERHEAD
    if size >= 8:
        assert data[:8] not in e.ciphertext
    with e.open() as b:
        assert not b.mutable and b.alive
        assert b.protection == Protection.READ_ONLY
        assert bytes(b.view()) == data
    with e.open() as again:  # opening does not consume the enclave
        assert bytes(again.view()) == data


@pytest.mark.parametrize(
    "make", [lambda d: memoryview(bytearray(d)), lambda d: array.array("B", d)]
)
def test_other_writable_sources_are_wiped(make: Any) -> None:
    src = make(b"abcdef")
    e = Enclave(src)
    assert bytes(src) == bytes(6)
    with e.open() as b:
        assert bytes(b.view()) == b"abcdef"


def test_bytes_source_is_not_wiped() -> None:
    data = b"immutable secret"
    e = Enclave(data)
    assert data == b"immutable secret"
    with e.open() as b:
        assert bytes(b.view()) == data


def test_fresh_nonce_per_seal() -> None:
    a, b = Enclave(b"same plaintext"), Enclave(b"same plaintext")
    assert a.ciphertext[:12] != b.ciphertext[:12]
    assert a.ciphertext != b.ciphertext


@pytest.mark.parametrize("src", ["text", 123, None, 1.5, [1]])
def test_rejects_non_bytes(src: object) -> None:
    with pytest.raises(errors.InvalidTypeError):
        Enclave(src)
    with pytest.raises(errors.InvalidTypeError):
        Enclave.from_ciphertext(src)


@pytest.mark.parametrize("src", [b"", bytearray()])
def test_rejects_empty(src: object) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        Enclave(src)


def test_random() -> None:
    a, b = Enclave.random(32), Enclave.random(32)
    assert a.size == 32
    with a.open() as x, b.open() as y:
        assert bytes(x.view()) != bytes(32)
        assert bytes(x.view()) != bytes(y.view())


@pytest.mark.parametrize("size", [1.5, "8", None, True, b"8"])
def test_random_bad_types(size: object) -> None:
    with pytest.raises(errors.InvalidTypeError):
        Enclave.random(size)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -1, (1 << 62) + 1])
def test_random_bad_values(size: int) -> None:
    with pytest.raises(errors.InvalidArgumentError):
        Enclave.random(size)


def test_random_absurd_size(registry_baseline: Any) -> None:
    get_coffer()
    before = registry_baseline()
    with pytest.raises(errors.AllocationError):
        Enclave.random(1 << 62)
    assert registry_baseline() == before


@pytest.mark.parametrize("protection", [Protection.READ_WRITE, Protection.READ_ONLY, Protection.NO_ACCESS])
def test_buffer_seal_destroys_buffer(protection: Protection, registry_baseline: Any) -> None:
    get_coffer()
    before = registry_baseline()
    b = Buffer.from_bytes(b"sealed from a buffer")
    b.protect(protection)
    e = b.seal()
    assert not b.alive
    assert registry_baseline() == before
    assert e.size == 20
    with e.open() as o:
        assert bytes(o.view()) == b"sealed from a buffer"
    with pytest.raises(errors.BufferDestroyedError):
        b.seal()


def test_from_ciphertext_round_trip() -> None:
    e = Enclave(b"portable within this process")
    copy = Enclave.from_ciphertext(bytearray(e.ciphertext))
    with copy.open() as b:
        assert bytes(b.view()) == b"portable within this process"


def _tampered(position: str) -> bytes:
    ct = bytearray(Enclave(b"0123456789abcdef").ciphertext)
    index = {"nonce": 0, "body": 12 + 3, "tag": len(ct) - 1}[position]
    ct[index] ^= 0x01
    return bytes(ct)


@pytest.mark.parametrize("position", ["nonce", "body", "tag"])
def test_tampered_fails_and_leaves_nothing(position: str, registry_baseline: Any) -> None:
    bad = Enclave.from_ciphertext(_tampered(position))
    before = registry_baseline()
    with pytest.raises(errors.DecryptionError):
        bad.open()
    assert registry_baseline() == before


@pytest.mark.parametrize("cut", [1, 16, 27])
def test_truncated_fails(cut: int, registry_baseline: Any) -> None:
    ct = Enclave(b"0123456789abcdef").ciphertext
    before = registry_baseline()
    with pytest.raises(errors.DecryptionError):
        Enclave.from_ciphertext(ct[:-cut]).open()
    with pytest.raises(errors.DecryptionError):
        Enclave.from_ciphertext(ct + b"\0").open()
    assert registry_baseline() == before


@pytest.mark.parametrize("length", [0, 1, 12, 27, 28])
def test_shorter_than_overhead_fails(length: int, registry_baseline: Any) -> None:
    get_coffer()
    before = registry_baseline()
    e = Enclave.from_ciphertext(bytes(length))
    assert e.size == 0
    with pytest.raises(errors.DecryptionError):
        e.open()
    assert registry_baseline() == before


def test_open_after_purge_fails(registry_baseline: Any) -> None:
    e = Enclave(b"old key")
    purge()
    get_coffer()
    before = registry_baseline()
    with pytest.raises(errors.DecryptionError):
        e.open()
    assert registry_baseline() == before


def test_bad_mlock_argument_on_open() -> None:
    e = Enclave(b"x")
    with pytest.raises(errors.InvalidArgumentError):
        e.open(mlock="sometimes")
    with pytest.raises(errors.InvalidTypeError):
        e.open(mlock=3)  # type: ignore[arg-type]


def test_repr_and_pickle() -> None:
    e = Enclave(b"hunter2")
    assert "hunter2" not in repr(e) and "7" in repr(e)
    with pytest.raises(errors.InvalidTypeError):
        pickle.dumps(e)


# -- no plaintext left behind ---------------------------------------------------------------

MASK = bytes(range(0x40, 0x60))
# MASK ^ MASKED is the marker, never stored whole (and unlike any other test's pattern).
MASKED = bytes(x ^ ((i * 37 + 11) & 0xFF) for i, x in enumerate(MASK))


def _marker() -> bytes:
    return bytes(a ^ b for a, b in zip(MASK, MASKED, strict=True))


def _failed_open_scenario(wipe: bool) -> child.Outcome:
    def body(ctx: child.Context) -> None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        src = bytearray(MASKED)
        for i, m in enumerate(MASK):  # build the marker in place: no bytes object holds it
            src[i] ^= m
        e = Enclave(src)  # wipes src
        sealed = bytearray(e.ciphertext)
        sealed[-1] ^= 1  # only the tag is wrong: the body still decrypts to the marker
        bad = Enclave.from_ciphertext(sealed)
        if wipe:
            try:
                bad.open()
            except errors.DecryptionError:
                ctx.report("refused")
        else:
            out = bytearray(len(MASK))
            with get_coffer().view() as key:
                try:
                    ChaCha20Poly1305(key).decrypt_into(bytes(sealed[:12]), bytes(sealed[12:]), None, out)
                except InvalidTag:
                    ctx.report("refused")
        ctx.checkpoint()

    return run_ok(body, observe=lambda pid, _: len(memory.find(pid, _marker())))


def test_failed_open_leaves_no_plaintext() -> None:
    out = _failed_open_scenario(wipe=True)
    assert out.reports == ["refused"]
    assert out.observations == [0]


def test_unwiped_failed_decrypt_leaves_plaintext() -> None:
    out = _failed_open_scenario(wipe=False)
    assert out.reports == ["refused"]
    assert out.observations[0] >= 1  # the scan does find plaintext when it is there


# -- tight memlock ---------------------------------------------------------------------------


@pytest.mark.restricted
def test_open_under_tight_limit_raises_without_deadlock() -> None:
    def body(ctx: child.Context) -> None:
        small = Enclave(b"small secret")
        big = Enclave(bytes(2 * LIMIT))
        before = [registry.count(), int(lib.sm_live_count())]
        try:
            big.open()
        except errors.MemoryLockError as e:
            ctx.report([e.errno, e.limit_soft])
        ctx.report(before == [registry.count(), int(lib.sm_live_count())])
        # Fill the rest of the limit, then open once more.
        fillers = []
        try:
            while len(fillers) < 100:
                fillers.append(Buffer(32))
        except errors.MemoryLockError:
            pass
        try:
            small.open()
        except errors.MemoryLockError as e:
            ctx.report(["small", e.errno])
        # No lock is held: another thread can view the key and seal.
        done: list[str] = []

        def other() -> None:
            with get_coffer().view() as key:
                done.append(str(len(key)))
            Enclave(b"from another thread")
            done.append("sealed")

        t = threading.Thread(target=other)
        t.start()
        t.join()
        ctx.report(done)
        fillers.pop().destroy()
        with small.open() as b:
            ctx.report(bytes(b.view()).decode())
        with big.open(mlock="best_effort") as b:
            ctx.report([b.locked, b.size])

    out = run_ok(body, restriction=restricted(), timeout=30)
    assert out.reports == [
        [errno.ENOMEM, LIMIT],
        True,
        ["small", errno.ENOMEM],
        ["32", "sealed"],
        "small secret",
        [False, 2 * LIMIT],
    ]


@pytest.mark.restricted
def test_coffer_that_cannot_be_locked_leaves_nothing() -> None:
    def body(ctx: child.Context) -> None:
        for _ in range(2):
            try:
                Enclave(b"x")
            except errors.MemoryLockError as e:
                ctx.report(e.errno)
            ctx.report([registry.count(), int(lib.sm_live_count())])

    out = run(body, restriction=restricted(PAGE))
    assert out.exit_code == 0, out.stderr
    assert out.reports == [errno.ENOMEM, [0, 0], errno.ENOMEM, [0, 0]]
