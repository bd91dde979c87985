"""The registry of live buffers, purge(), safe_exit(), safe_panic() and the exit purge."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from typing import Any

import pytest
from conftest import run

from harness import child, memory
from securememory import errors
from securememory.memguard import (
    Buffer,
    Enclave,
    Protection,
    Registry,
    get_coffer,
    purge,
    registry,
    safe_exit,
    safe_panic,
)


class _Obj:
    pass


def test_registry_class_add_remove_count_snapshot() -> None:
    reg: Registry[_Obj] = Registry()
    a, b, c = _Obj(), _Obj(), _Obj()
    for o in (a, b, c):
        reg.add(o)
    reg.add(a)  # adding twice keeps one entry
    assert reg.count() == 3
    snap = reg.snapshot()
    assert {id(o) for o in snap} == {id(a), id(b), id(c)}
    reg.remove(b)
    reg.remove(b)  # removing what is absent is harmless
    assert reg.count() == 2
    del c, snap, o
    assert {id(o) for o in reg.snapshot()} == {id(a)}  # dead entries are not handed out


def test_registry_tracks_buffers(registry_baseline: Any) -> None:
    count0, native0 = registry_baseline()
    bufs = [Buffer(16) for _ in range(5)]
    assert registry_baseline() == (count0 + 5, native0 + 5)
    snap = registry.snapshot()
    assert all(any(s is b for s in snap) for b in bufs)
    for b in bufs[:2]:
        b.destroy()
    assert registry_baseline() == (count0 + 3, native0 + 3)
    assert not any(s is bufs[0] for s in registry.snapshot())
    for b in bufs:
        b.destroy()
    assert registry_baseline() == (count0, native0)


def test_registry_under_threads(registry_baseline: Any) -> None:
    baseline = registry_baseline()
    failures: list[BaseException] = []
    rounds = [0] * 8
    start = threading.Barrier(8)
    deadline = time.monotonic() + 2.0

    def worker(i: int) -> None:
        try:
            start.wait()
            while time.monotonic() < deadline:
                held = [Buffer.random(32), Buffer(100 + i), Buffer.from_bytes(bytearray(b"k" * 40))]
                with Buffer(8) as scoped:
                    scoped.copy(b"12345678")
                    assert scoped.equal_to(b"12345678")
                held[1].freeze()
                for b in held:
                    b.destroy()
                rounds[i] += 1
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert all(r > 0 for r in rounds)
    assert registry_baseline() == baseline


def test_purge_destroys_every_buffer(registry_baseline: Any) -> None:
    plain = Buffer.from_bytes(bytearray(b"a" * 10))
    frozen = Buffer.from_bytes(bytearray(b"b" * 10))
    frozen.freeze()
    hidden = Buffer.from_bytes(bytearray(b"c" * 10))
    hidden.protect(Protection.NO_ACCESS)
    get_coffer()
    assert registry_baseline()[0] >= 3
    purge()
    assert registry_baseline() == (0, 0)
    for b in (plain, frozen, hidden):
        assert not b.alive
        with pytest.raises(errors.BufferDestroyedError):
            b.view()
    purge()  # nothing left: harmless
    with Buffer(8) as again:  # buffers work after a purge
        assert again.alive


def test_purge_replaces_the_session_key() -> None:
    sealed = Enclave(bytearray(b"before purge"))
    coffer = get_coffer()
    with sealed.open() as opened:
        assert bytes(opened.view()) == b"before purge"
    purge()
    assert not coffer.alive
    assert get_coffer() is not coffer
    with pytest.raises(errors.DecryptionError):
        sealed.open()


def _marker_then(end: str) -> tuple[child.Outcome, dict[str, Any]]:
    """A child holds a marker in a buffer and leaves by ``end``; the parent reads it at death."""
    marker = bytes(range(100, 132))
    where: dict[str, Any] = {}

    def body(ctx: child.Context) -> None:
        b = Buffer.from_bytes(bytearray(marker))
        b.freeze()
        ctx.checkpoint(b.address)
        if end == "safe_exit":
            safe_exit(3)
        os_exit = __import__("os")._exit
        os_exit(3)

    def observe(pid: int, addr: int) -> None:
        where["addr"] = addr
        where["before"] = memory.read(pid, addr, len(marker))

    out = run(body, observe=observe, at_exit=lambda pid: memory.read(pid, where["addr"], len(marker)))
    assert where["before"] == marker
    where["marker"] = marker
    return out, where


def test_safe_exit_purges_then_exits() -> None:
    out, where = _marker_then("safe_exit")
    assert out.exit_code == 3, out.describe()
    assert out.observations[-1] != where["marker"]  # unmapped (None) or wiped


def test_plain_exit_leaves_marker() -> None:
    out, where = _marker_then("os._exit")
    assert out.exit_code == 3, out.describe()
    assert out.observations[-1] == where["marker"]


def test_safe_exit_raises_system_exit(registry_baseline: Any) -> None:
    b = Buffer(8)
    with pytest.raises(SystemExit) as info:
        safe_exit(5)
    assert info.value.code == 5
    assert not b.alive
    assert registry_baseline() == (0, 0)


def test_safe_panic_purges_then_raises(registry_baseline: Any) -> None:
    b = Buffer(8)
    with pytest.raises(errors.SecureMemoryError, match="something broke"):
        safe_panic("something broke")
    assert not b.alive
    assert registry_baseline() == (0, 0)


def test_interpreter_exit_purges() -> None:
    code = """
import atexit
state = {}
def check():
    print(state["b"].alive, state["reg"].count(), state["lib"].sm_live_count())
atexit.register(check)  # registered first: runs after the library's purge
from securememory._native import lib
from securememory.memguard import Buffer, Enclave, registry
state.update(b=Buffer.from_bytes(bytearray(b"left alive")), reg=registry, lib=lib)
Enclave(b"needs the coffer").open()
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["False", "0", "0"]
    assert res.stderr == ""
