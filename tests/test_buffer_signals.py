"""Guard pages, canary, frozen buffers and the crash wipe, each with the exact signal."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

import pytest
from conftest import PAGE, peek, poke, run, run_ok

from harness import child, memory
from securememory.memguard import (
    Buffer,
    Protection,
    crash_wipe_installed,
    disable_crash_wipe,
    enable_crash_wipe,
    purge,
)

CANARY_MESSAGE = "canary verification failed; buffer overflow detected"
SIZES = [1, 32, PAGE - 16, PAGE, PAGE + 1]


def _overflow(size: int) -> Callable[[child.Context], None]:
    def body(ctx: child.Context) -> None:
        b = Buffer(size)
        poke(b.address + b.size)  # one byte past the end
        ctx.report("survived")
        b.destroy()

    return body


@pytest.mark.parametrize("size", SIZES)
def test_write_one_past_end_is_sigsegv(size: int) -> None:
    out = run(_overflow(size))
    assert out.signal == signal.SIGSEGV, out.describe()
    assert out.reports == []


def test_read_one_past_end_is_sigsegv() -> None:
    def body(ctx: child.Context) -> None:
        b = Buffer(32)
        peek(b.address + b.size, 1)
        ctx.report("survived")

    out = run(body)
    assert out.signal == signal.SIGSEGV, out.describe()
    assert out.reports == []


@pytest.mark.parametrize("where", ["last", "first"])
def test_write_into_leading_guard_is_sigsegv(where: str) -> None:
    def body(ctx: child.Context) -> None:
        b = Buffer(32)
        inner, _ = b.inner_span()
        poke(inner - 1 if where == "last" else inner - PAGE)
        ctx.report("survived")

    out = run(body)
    assert out.signal == signal.SIGSEGV, out.describe()
    assert out.reports == []


def _corrupt_canary(size: int, *, end: Callable[[Buffer], None]) -> Callable[[child.Context], None]:
    def body(ctx: child.Context) -> None:
        b = Buffer(size)
        poke(b.address - 1, peek(b.address - 1, 1)[0] ^ 0xFF)
        ctx.report("corrupted")
        end(b)
        ctx.report("survived")

    return body


@pytest.mark.parametrize("size", SIZES)
def test_canary_overwrite_aborts_at_destroy(size: int) -> None:
    out = run(_corrupt_canary(size, end=Buffer.destroy))
    assert out.signal == signal.SIGABRT, out.describe()
    assert out.reports == ["corrupted"]
    assert CANARY_MESSAGE in out.stderr
    assert f"buffer of {size} bytes" in out.stderr


def test_canary_overwrite_at_first_canary_byte_aborts() -> None:
    def body(ctx: child.Context) -> None:
        b = Buffer(32)
        poke(b.inner_span()[0], peek(b.inner_span()[0], 1)[0] ^ 1)
        b.destroy()

    out = run(body)
    assert out.signal == signal.SIGABRT, out.describe()
    assert CANARY_MESSAGE in out.stderr


def test_canary_overwrite_aborts_at_purge() -> None:
    out = run(_corrupt_canary(32, end=lambda b: purge()))
    assert out.signal == signal.SIGABRT, out.describe()
    assert CANARY_MESSAGE in out.stderr


def test_intact_canary_destroys_cleanly() -> None:
    def body(ctx: child.Context) -> None:
        for size in SIZES:
            b = Buffer.random(size)
            b.melt()
            b.view()[:] = b"\xff" * size  # writing every data byte leaves the canary intact
            b.destroy()
        ctx.report("ok")

    out = run_ok(body)
    assert out.reports == ["ok"]
    assert CANARY_MESSAGE not in out.stderr


def test_canary_failure_wipes_other_live_buffers() -> None:
    marker = bytes(range(1, 33))
    where: dict[str, int] = {}

    def body(ctx: child.Context) -> None:
        keep = Buffer.from_bytes(bytearray(marker))
        ctx.checkpoint(keep.address)
        bad = Buffer(16)
        poke(bad.address - 1, peek(bad.address - 1, 1)[0] ^ 0xFF)
        bad.destroy()

    def observe(pid: int, addr: int) -> None:
        where["addr"] = addr

    out = run(body, observe=observe, at_exit=lambda pid: memory.read(pid, where["addr"], 32))
    assert out.signal == signal.SIGABRT, out.describe()
    assert CANARY_MESSAGE in out.stderr
    assert out.observations[-1] == bytes(32)


@pytest.mark.parametrize("how", ["view", "poke"])
def test_write_to_frozen_buffer_is_sigsegv(how: str) -> None:
    def body(ctx: child.Context) -> None:
        b = Buffer(32)
        view = b.view()  # writable view taken before freezing
        b.freeze()
        if how == "view":
            view[0] = 1
        else:
            poke(b.address)
        ctx.report("survived")

    out = run(body)
    assert out.signal == signal.SIGSEGV, out.describe()
    assert out.reports == []


def test_write_after_melt_succeeds() -> None:
    def body(ctx: child.Context) -> None:
        b = Buffer(32)
        view = b.view()
        b.freeze()
        b.melt()
        view[0] = 0x42
        poke(b.address + 1, 0x43)
        ctx.report(bytes(b.view()[:2]).decode())
        b.destroy()

    out = run_ok(body)
    assert out.reports == ["BC"]


def test_read_no_access_buffer_is_sigsegv() -> None:
    def body(ctx: child.Context) -> None:
        b = Buffer(32)
        view = b.view()
        b.protect(Protection.NO_ACCESS)
        ctx.report(bytes(view[:1]).hex())

    out = run(body)
    assert out.signal == signal.SIGSEGV, out.describe()
    assert out.reports == []


# -- crash wipe ------------------------------------------------------------------------------

MARKER = bytes.fromhex("5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7")


def _die(how: str) -> None:
    if how == "segv":
        b = Buffer(8)
        poke(b.address + b.size)
    elif how == "abort":
        os.abort()
    else:
        os.kill(os.getpid(), getattr(signal, how))


def _crash_with_marker(how: str, *, wipe: bool, freeze: str = "") -> child.Outcome:
    """A child fills a buffer with MARKER and dies; returns what its buffer held at death."""
    where: dict[str, Any] = {}

    def body(ctx: child.Context) -> None:
        if not wipe:
            disable_crash_wipe()
        b = Buffer(len(MARKER))
        b.copy(bytearray(MARKER))
        if freeze == "read_only":
            b.freeze()
        elif freeze == "no_access":
            b.protect(Protection.NO_ACCESS)
        ctx.checkpoint({"addr": b.address, "installed": crash_wipe_installed()})
        _die(how)
        ctx.report("survived")

    def observe(pid: int, value: dict[str, Any]) -> None:
        where.update(value)
        where["before"] = memory.read(pid, value["addr"], len(MARKER))

    def at_exit(pid: int) -> bytes | None:
        return memory.read(pid, where["addr"], len(MARKER))

    out = run(body, observe=observe, at_exit=at_exit)
    assert out.reports == []
    assert where["before"] == MARKER  # the child really held the marker
    assert where["installed"] is wipe
    return out


CRASHES = [
    ("segv", signal.SIGSEGV),
    ("SIGSEGV", signal.SIGSEGV),
    ("SIGBUS", signal.SIGBUS),
    ("SIGILL", signal.SIGILL),
    ("SIGFPE", signal.SIGFPE),
    ("abort", signal.SIGABRT),
]


@pytest.mark.parametrize(("how", "sig"), CRASHES)
def test_crash_wipes_before_death(how: str, sig: int) -> None:
    out = _crash_with_marker(how, wipe=True)
    assert out.signal == sig, out.describe()
    assert out.observations[-1] == bytes(len(MARKER))


@pytest.mark.parametrize(("how", "sig"), CRASHES[:1] + CRASHES[-1:])
def test_without_crash_wipe_marker_survives_death(how: str, sig: int) -> None:
    out = _crash_with_marker(how, wipe=False)
    assert out.signal == sig, out.describe()
    assert out.observations[-1] == MARKER


@pytest.mark.parametrize("freeze", ["read_only", "no_access"])
def test_crash_wipes_frozen_and_no_access_buffers(freeze: str) -> None:
    out = _crash_with_marker("segv", wipe=True, freeze=freeze)
    assert out.signal == signal.SIGSEGV, out.describe()
    assert out.observations[-1] == bytes(len(MARKER))


def test_crash_wipe_chains_to_faulthandler() -> None:
    where: dict[str, int] = {}

    def body(ctx: child.Context) -> None:
        disable_crash_wipe()
        faulthandler.disable()
        faulthandler.enable(file=sys.stderr)
        enable_crash_wipe()  # installed over faulthandler
        b = Buffer.from_bytes(bytearray(MARKER))
        ctx.checkpoint(b.address)
        poke(b.address + b.size)

    def observe(pid: int, addr: int) -> None:
        where["addr"] = addr

    out = run(body, observe=observe, at_exit=lambda pid: memory.read(pid, where["addr"], len(MARKER)))
    assert out.signal == signal.SIGSEGV, out.describe()
    assert "Segmentation fault" in out.stderr  # faulthandler ran
    assert out.observations[-1] == bytes(len(MARKER))


def test_disable_crash_wipe_restores_previous_handler() -> None:
    def body(ctx: child.Context) -> None:
        Buffer(8)
        installed = crash_wipe_installed()
        before = signal.getsignal(signal.SIGSEGV)
        disable_crash_wipe()
        ctx.report([installed, crash_wipe_installed(), before == signal.getsignal(signal.SIGSEGV)])
        Buffer(8)  # does not reinstall while disabled
        ctx.report(crash_wipe_installed())
        enable_crash_wipe()
        ctx.report(crash_wipe_installed())

    out = run_ok(body)
    assert out.reports == [[True, False, True], False, True]


def test_crash_wipe_env_var_disables() -> None:
    def body(ctx: child.Context) -> None:
        import importlib

        from securememory.memguard import crash

        crash.disable_crash_wipe()  # start from an uninstalled handler
        importlib.reload(crash)  # reads SECUREMEMORY_CRASH_WIPE again
        crash.ensure_installed()
        ctx.report(crash.crash_wipe_installed())

    out = run_ok(body, env={"SECUREMEMORY_CRASH_WIPE": "0"})
    assert out.reports == [False]


def test_crash_wipe_not_installed_at_import() -> None:
    import subprocess

    code = (
        "import securememory.memguard as m, securememory; "
        "print(m.crash_wipe_installed()); m.Buffer(8); print(m.crash_wipe_installed())"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "True"]
