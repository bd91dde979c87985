"""Canary quality: unpredictable, checked to its last byte, present on every size.

A constant canary, or one shared by every buffer, passes every overflow test
while telling an attacker what to write. Here the canaries of two buffers of
the same size must differ, and so must those of two fresh processes laid out
identically (ASLR off, so only the per-process key can tell them apart). A
corrupted byte in the partial trailing word (a size that is not a multiple of
8) and in front of a page-multiple size must each abort at destroy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys

from securememory.memguard import Buffer

from .. import child, raw
from ..scenario import Environment, Result, scenario, unsupported, verdict
from .faults import underflow_canary

ADDR_NO_RANDOMIZE = 0x0040000
CANARY_MESSAGE = "canary verification failed; buffer overflow detected"
PROBE = "from harness.scenarios.canary import probe; probe()"


def _canary(buf: Buffer) -> bytes:
    inner, _ = buf.inner_span()
    return raw.read(inner, buf.address - inner)


def probe() -> None:
    """In a fresh process: print the first Buffer's inner address and its canary's digest."""
    buf = Buffer(32)
    print(json.dumps([buf.inner_span()[0], hashlib.sha256(_canary(buf)).hexdigest()]))


def _no_aslr() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.personality(ADDR_NO_RANDOMIZE)


def _fresh_process_canaries() -> list[tuple[int, str]]:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    out = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", PROBE], env=env, preexec_fn=_no_aslr,
                              capture_output=True, text=True, timeout=60, check=True)
        address, digest = json.loads(done.stdout)
        out.append((address, digest))
    return out


def canary_unpredictable(env: Environment) -> Result:
    name = "canary_unpredictable"
    expected = "canaries differ between buffers and between identically laid out processes"

    def fn(ctx: child.Context) -> None:
        a, b = Buffer(32), Buffer(32)
        words = {_canary(a)[i : i + 8] for i in range(0, 64, 8)}
        ctx.report({"buffers_differ": _canary(a) != _canary(b), "varied_words": len(words) > 1})

    outcome = child.run(fn, env=env.child_env)
    if not outcome.reports:
        return verdict(name, False, expected, f"no report; {outcome.describe()}: {outcome.stderr[-300:]}")
    within = outcome.reports[0]
    try:
        fresh = _fresh_process_canaries()
    except (subprocess.SubprocessError, OSError, ValueError) as e:
        return unsupported(name, expected, f"fresh processes could not be probed: {e}")
    same_layout = fresh[0][0] == fresh[1][0]
    processes_differ = fresh[0][1] != fresh[1][1]
    ok = within["buffers_differ"] and within["varied_words"] and processes_differ
    observed = (
        f"two buffers differ: {within['buffers_differ']}, words vary: {within['varied_words']}, "
        f"two processes differ: {processes_differ} (same addresses: {same_layout})"
    )
    return verdict(name, ok, expected, observed + env.note)


def _corrupt_before_data(name: str, env: Environment, size: int) -> Result:
    """Flip the byte just before the data of a ``size``-byte Buffer: destroy must abort."""
    expected = "canary of at least 16 bytes; SIGABRT and the canary message at destroy"

    def fn(ctx: child.Context) -> None:
        buf = Buffer(size)
        ctx.report(buf.address - buf.inner_span()[0])
        raw.poke(buf.address - 1, raw.peek(buf.address - 1) ^ 0x01)
        buf.destroy()

    outcome = child.run(fn, env=env.child_env)
    length = outcome.reports[0] if outcome.reports else None
    message = CANARY_MESSAGE in outcome.stderr
    ok = isinstance(length, int) and length >= 16 and outcome.signal == signal.SIGABRT and message
    observed = f"canary {length} bytes, {outcome.describe()}, message {'printed' if message else 'missing'}"
    return verdict(name, ok, expected, observed + env.note)


def canary_partial_word(env: Environment) -> Result:
    """Size 33: the canary ends in a 7-byte partial word, whose last byte is flipped."""
    return _corrupt_before_data("canary_partial_word", env, 33)


def canary_page_multiple(env: Environment) -> Result:
    """Size 4096: a whole page of data still gets a canary in front of it."""
    return _corrupt_before_data("canary_page_multiple", env, os.sysconf("SC_PAGE_SIZE"))


scenario("canary_unpredictable", "canaries differ per buffer and per process")(canary_unpredictable)
scenario("canary_partial_word", "a flipped byte in the canary's partial last word aborts at destroy")(
    canary_partial_word
)
scenario("canary_page_multiple", "a page-multiple size has a canary, checked at destroy")(canary_page_multiple)
scenario("canary_abort_wipes", "the canary abort itself wipes every live buffer (crash wipe off)")(
    functools.partial(underflow_canary, name="canary_abort_wipes", crash_wipe=False)
)
