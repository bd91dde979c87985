"""Buffers across fork(): wiped and refused in the child, untouched in the parent."""

from __future__ import annotations

import os
import signal

import pytest
from conftest import poke, run, run_ok

from harness import child, memory
from securememory import errors
from securememory._native import lib
from securememory.memguard import Buffer, Protection, purge, registry

MARKER = b"fork-marker-0123456789abcdef!!"


@pytest.mark.parametrize("protection", [Protection.READ_WRITE, Protection.READ_ONLY, Protection.NO_ACCESS])
def test_inherited_buffer_is_wiped_and_refused(protection: Protection) -> None:
    b = Buffer.from_bytes(bytearray(MARKER))
    b.protect(protection)
    addr = b.address
    inner, inner_len = b.inner_span()

    def body(ctx: child.Context) -> None:
        ctx.report([b.alive, b.mutable, registry.count(), int(lib.sm_live_count())])
        for op in (b.view, b.freeze, b.melt, b.wipe, lambda: b.copy(b"x"), lambda: b.equal_to(MARKER),
                   b.inner_span, lambda: b.address):
            try:
                op()
            except errors.ForkedError:
                continue
            ctx.report(f"no ForkedError from {op}")
        ctx.checkpoint("look")  # the parent reads the child's copy of the pages
        b.destroy()  # no canary failure: the wiped canary is not checked
        ctx.report(b.alive)
        with Buffer.from_bytes(bytearray(b"child secret")) as fresh:
            ctx.report([registry.count(), int(lib.sm_live_count()), bytes(fresh.view()).decode()])
        ctx.report([registry.count(), int(lib.sm_live_count())])

    def observe(pid: int, _: object) -> list[bool]:
        data = memory.read(pid, addr, len(MARKER))
        canary = memory.read(pid, inner, inner_len - len(MARKER))
        return [data == bytes(len(MARKER)), canary == bytes(inner_len - len(MARKER))]

    out = run_ok(body, observe=observe)
    assert "canary" not in out.stderr
    assert out.observations == [[True, True]]
    assert out.reports == [
        [False, False, 0, 0],
        False,
        [1, 1, "child secret"],
        [0, 0],
    ]
    # The parent is unaffected.
    assert b.alive and b.protection == protection
    b.protect(Protection.READ_ONLY)
    assert bytes(b.view()) == MARKER
    b.destroy()


def test_child_exit_and_purge_do_not_touch_inherited_buffers() -> None:
    b = Buffer.from_bytes(bytearray(MARKER))

    def body(ctx: child.Context) -> None:
        purge()
        del_ok = True
        try:
            b.destroy()
            b.destroy()
        except errors.SecureMemoryError:
            del_ok = False
        ctx.report(del_ok)

    out = run_ok(body)
    assert out.reports == [True]
    assert "canary" not in out.stderr
    assert bytes(b.view()) == MARKER
    b.destroy()


def test_crash_in_child_does_not_touch_parent() -> None:
    b = Buffer.from_bytes(bytearray(MARKER))

    def body(ctx: child.Context) -> None:
        c = Buffer(8)
        poke(c.address + c.size)

    out = run(body)
    assert out.signal == signal.SIGSEGV, out.describe()
    assert bytes(b.view()) == MARKER
    b.destroy()


def test_os_fork_directly() -> None:
    b = Buffer.from_bytes(bytearray(MARKER))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            ok = not b.alive and registry.count() == 0
            try:
                b.view()
                ok = False
            except errors.ForkedError:
                pass
            os.write(w, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    answer = os.read(r, 1)
    os.close(r)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert answer == b"1"
    assert bytes(b.view()) == MARKER
    b.destroy()
