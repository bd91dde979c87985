"""The Coffer: BLAKE2b, the split session key, rekeying, laziness, purge, fork and the fork fence."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest
from conftest import run_ok
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from harness import child
from harness.scenarios.forking import fork_with_threads
from securememory import errors
from securememory._native import ffi, lib
from securememory.memguard import NONCE_BUDGET, Coffer, Enclave, Stream, get_coffer, purge
from securememory.memguard.coffer import KEY_SIZE, REKEY_INTERVAL
from securememory.memguard.forkfence import fence


def _blake2b_256(data: bytes) -> bytes:
    out = ffi.new("unsigned char[32]")
    lib.sm_blake2b_256(data, len(data), out)
    return bytes(ffi.buffer(out, 32))


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        (b"", "DldRwCblQ7Loqy6wYJnaodHl30d3j3eH+qtFzfEv46g="),
        (b"test", "kosgNmlD4q/RHrwOri5TqTvxd6T881vMZNUDcE5l4gI="),
    ],
)
def test_blake2b_vectors(data: bytes, digest: str) -> None:
    assert _blake2b_256(data) == base64.b64decode(digest)


@pytest.mark.parametrize("length", [1, 32, 127, 128, 129, 255, 256, 257, 1000])
def test_blake2b_matches_hashlib(length: int) -> None:
    data = os.urandom(length)
    assert _blake2b_256(data) == hashlib.blake2b(data, digest_size=32).digest()


def len_of_tag(aead: ChaCha20Poly1305) -> int:
    return len(aead.encrypt(bytes(12), b"", None))


def _halves(c: Coffer) -> tuple[bytes, bytes]:
    return bytes(c._left.view()), bytes(c._right.view())


def _key(c: Coffer) -> bytes:
    with c.view() as key:
        return bytes(key)


def test_key_is_left_xor_blake2b_of_right() -> None:
    c = Coffer()
    try:
        left, right = _halves(c)
        expected = bytes(a ^ b for a, b in zip(left, _blake2b_256(right), strict=True))
        assert _key(c) == expected
        assert len(expected) == KEY_SIZE and expected != bytes(KEY_SIZE)
    finally:
        c.destroy()


def test_rekey_changes_halves_not_key() -> None:
    c = Coffer()
    try:
        key = _key(c)
        seen = {_halves(c)}
        for _ in range(5):
            before = _halves(c)
            c.rekey()
            after = _halves(c)
            assert after[0] != before[0] and after[1] != before[1]
            assert _key(c) == key
            seen.add(after)
        assert len(seen) == 6
    finally:
        c.destroy()


def test_view_is_read_only_locked_and_wiped_after() -> None:
    c = Coffer()
    try:
        with c.view() as key:
            assert key.readonly and len(key) == KEY_SIZE
            assert bytes(key) != bytes(KEY_SIZE)
            inner, inner_len = c._scratch.inner_span()
            addr = int(ffi.cast("uintptr_t", ffi.from_buffer(key)))
            assert inner <= addr < inner + inner_len
            with pytest.raises(TypeError):
                key[0] = 0
            kept = key
        assert bytes(kept) == bytes(KEY_SIZE)  # wiped once the view ends
        assert c._left.locked == c._right.locked == c._scratch.locked
    finally:
        c.destroy()


def test_concurrent_views_during_rekey() -> None:
    c = Coffer()
    key = _key(c)
    failures: list[object] = []
    counts = [0] * 4
    rekeys = [0]
    deadline = time.monotonic() + 1.5

    def viewer(i: int) -> None:
        while time.monotonic() < deadline:
            got = _key(c)
            if got != key:
                failures.append(got.hex())
            counts[i] += 1

    def rekeyer() -> None:
        while time.monotonic() < deadline:
            c.rekey()
            rekeys[0] += 1

    threads = [threading.Thread(target=viewer, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=rekeyer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert failures == []
        assert all(n > 0 for n in counts) and rekeys[0] > 0
        assert _key(c) == key
    finally:
        c.destroy()


def test_use_resplits_once_due_and_not_before() -> None:
    c = Coffer()
    try:
        key = _key(c)
        halves = _halves(c)
        c._rekeyed = time.monotonic() + 3600  # not due: use leaves the split alone
        assert _key(c) == key and _halves(c) == halves
        c._rekeyed = time.monotonic() - REKEY_INTERVAL  # due: the next use re-splits first
        assert _key(c) == key
        resplit = _halves(c)
        assert resplit[0] != halves[0] and resplit[1] != halves[1]
        c.with_aead(len_of_tag)  # the AEAD path checks too
        c._rekeyed -= REKEY_INTERVAL
        c.with_aead(len_of_tag)
        assert _halves(c) not in (halves, resplit)
        assert _key(c) == key
    finally:
        c.destroy()


def test_no_thread_is_started() -> None:
    before = threading.active_count()
    c = Coffer()
    try:
        _key(c)
        c.with_aead(len_of_tag)
        assert threading.active_count() == before
    finally:
        c.destroy()


def test_destroyed_coffer() -> None:
    c = Coffer()
    c.destroy()
    with pytest.raises(errors.BufferDestroyedError):
        c.rekey()
    with pytest.raises(errors.BufferDestroyedError), c.view():
        pass
    c.destroy()  # idempotent


def test_created_lazily_never_at_import() -> None:
    code = """
import threading
import securememory, securememory.memguard as m
from securememory.memguard.coffer import _holder
print(_holder.coffer is None, threading.active_count())
m.Buffer(8)
print(_holder.coffer is None)
m.Enclave(b"x")
print(_holder.coffer is not None, threading.active_count())
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True", "1", "True", "True", "1"]
    assert res.stderr == ""


def test_get_coffer_is_shared_and_purge_replaces_it() -> None:
    c = get_coffer()
    assert get_coffer() is c
    key = _key(c)
    purge()
    assert not c.alive
    fresh = get_coffer()
    assert fresh is not c and fresh.alive
    assert _key(fresh) != key


def test_fork_gives_the_child_a_fresh_coffer() -> None:
    parent = get_coffer()
    parent_key = _key(parent)
    sealed = Enclave(bytearray(b"parent secret"))

    def body(ctx: child.Context) -> None:
        c = get_coffer()
        ctx.report([c is not parent, c.alive, threading.active_count(), _key(c) != parent_key])
        try:
            sealed.open()
            ctx.report("opened")
        except errors.DecryptionError:
            ctx.report("refused")
        with Enclave(bytearray(b"child secret")).open() as b:
            ctx.report(bytes(b.view()).decode())

    out = run_ok(body)
    assert out.reports == [[True, True, 1, True], "refused", "child secret"]
    assert parent.alive and _key(parent) == parent_key
    with sealed.open() as b:
        assert bytes(b.view()) == b"parent secret"


def test_nonce_budget_is_enforced() -> None:
    assert NONCE_BUDGET == 1 << 32
    c = get_coffer()
    sealed = Enclave(b"sealed before the budget ran out")
    assert c.seals >= 1
    c._seals = NONCE_BUDGET
    with pytest.raises(errors.NonceBudgetError):
        Enclave(b"one more")
    with pytest.raises(errors.NonceBudgetError):
        Enclave.random(8)
    with sealed.open() as b:  # opening does not spend nonces
        assert bytes(b.view()) == b"sealed before the budget ran out"
    purge()
    assert get_coffer().seals == 0
    Enclave(b"fine again")
    assert get_coffer().seals == 1


def test_fork_waits_for_an_aead_object_in_flight() -> None:
    def body(ctx: child.Context) -> None:
        c = get_coffer()
        inside, release = threading.Event(), threading.Event()
        order: list[str] = []

        def hold(aead: ChaCha20Poly1305) -> None:
            inside.set()
            release.wait()
            order.append("aead dropped")

        def forker() -> None:
            pid = fork_with_threads()
            if pid == 0:
                os._exit(fence.held())  # no lease crosses into the child
            order.append("forked")
            _, status = os.waitpid(pid, 0)
            order.append(f"child held {os.WEXITSTATUS(status)}")

        user = threading.Thread(target=lambda: c.with_aead(hold))
        user.start()
        inside.wait()
        fork_thread = threading.Thread(target=forker)
        fork_thread.start()
        time.sleep(0.2)  # gives an unfenced fork the time to happen first; the order is asserted, not the time
        order.insert(0, f"leases {fence.held()}")
        release.set()
        user.join()
        fork_thread.join()
        ctx.report(order)

    assert run_ok(body, timeout=30).reports == [["leases 1", "aead dropped", "forked", "child held 0"]]


def test_fork_from_inside_an_aead_lease_does_not_wait_for_itself() -> None:
    def body(ctx: child.Context) -> None:
        def fork_here(aead: ChaCha20Poly1305) -> int:
            pid = os.fork()
            if pid == 0:
                os._exit(fence.held())
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

        ctx.report([get_coffer().with_aead(fork_here), fence.held()])

    assert run_ok(body, timeout=30).reports == [[1, 0]]


def test_no_aead_object_outlives_its_lease_in_a_traceback() -> None:
    def deeper(aead: ChaCha20Poly1305) -> None:
        raise errors.DecryptionError("from inside the lease")

    def action(aead: ChaCha20Poly1305) -> None:
        try:
            deeper(aead)
        except errors.DecryptionError:
            raise KeyError("second") from None

    kept = None
    try:
        get_coffer().with_aead(action)
    except KeyError as e:
        kept = e
    assert kept is not None and fence.held() == 0
    frames = []
    for exc in (kept, kept.__context__):
        tb = exc.__traceback__ if exc is not None else None
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
    assert len(frames) >= 3
    assert not any(isinstance(v, ChaCha20Poly1305) for f in frames for v in f.f_locals.values())


def test_library_operations_leave_no_lease_behind() -> None:
    stream = Stream(64)
    stream.write(bytearray(b"x" * 200))
    out = bytearray(100)
    assert stream.readinto(out) == 100
    with Enclave(bytearray(b"sealed")).open() as b:
        assert bytes(b.view()) == b"sealed"
    tampered = Enclave(bytearray(b"tampered"))
    tampered._sealed[-1] ^= 1
    with pytest.raises(errors.DecryptionError):
        tampered.open()
    stream._chunks[0][-1] ^= 1
    with pytest.raises(errors.DecryptionError):
        stream.readinto(out)
    assert fence.held() == 0


def test_fork_after_sealing_and_streaming_does_not_warn() -> None:
    code = """
import os, threading, warnings
warnings.simplefilter("always")
import securememory.memguard as m
with m.Enclave(bytearray(b"sealed")).open():
    pass
stream = m.Stream()
stream.write(bytearray(100_000))
stream.readinto(bytearray(100_000))
print(threading.active_count())
pid = os.fork()
if pid == 0:
    os._exit(0)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.split() == ["1", "0"], res.stderr
    assert res.stderr == ""  # Python 3.12+ warns here if any thread is running


# The C stack after key derivation: tests/c/coffer_residue.c, built against the
# tree's C sources as they are and with the digest's wipes taken out (the
# probe must see the copies then, or it proves nothing).
_C_SOURCES = ("memguard/coffer.c", "memguard/guard.c", "memguard/crash.c", "memcall/posix.c", "memcall/reserve.c")
_DIGEST_WIPES = (
    ("    sm_wipe(h, sizeof h);\n    sm_wipe(block, sizeof block);\n}", "}"),
    ("        out[i] = left[i] ^ hr[i];\n    sm_wipe(hr, sizeof hr);\n}", "        out[i] = left[i] ^ hr[i];\n}"),
)


def _residue(tmp_path: Path, coffer_c: str) -> int:
    """Copies of the digest coffer_residue.c finds below the derivation, built with ``coffer_c``."""
    src = Path(__file__).resolve().parent.parent / "securememory"
    tree = tmp_path / "securememory"
    shutil.copytree(src, tree, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    (tree / "memguard" / "coffer.c").write_text(coffer_c)
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    exe = tmp_path / "residue"
    subprocess.run([cc, "-O2", "-I", str(tree), "-o", str(exe), str(Path(__file__).parent / "c" / "coffer_residue.c"),
                    *(str(tree / s) for s in _C_SOURCES), "-lpthread"], check=True, capture_output=True, text=True)
    return int(subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="built with the POSIX sources")
def test_key_derivation_leaves_no_digest_on_the_stack(tmp_path: Path) -> None:
    coffer_c = (Path(__file__).resolve().parent.parent / "securememory" / "memguard" / "coffer.c").read_text()
    assert _residue(tmp_path / "as-is", coffer_c) == 0
    unwiped = coffer_c
    for old, new in _DIGEST_WIPES:
        assert unwiped.count(old) == 1, old
        unwiped = unwiped.replace(old, new)
    assert _residue(tmp_path / "unwiped", unwiped) > 0
