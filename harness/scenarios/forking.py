"""Fork: the child sees zeros and gets a clear error; the parent keeps its secrets;
a fork taken while another thread seals or opens gives the child no session key."""

from __future__ import annotations

import hashlib
import os
import threading
import time
import warnings
from typing import Any

from securememory import ForkedError, Stream
from securememory.memguard import Buffer, get_coffer
from securememory.memguard.coffer import KEY_SIZE

from .. import child, memory, raw
from ..scenario import Environment, Result, scenario, unsupported, verdict
from .copies import SIZE, _secret_and_buffer, _Values

ZEROS, SECRET_REFUSED, BUFFER_REFUSED, NEW_BUFFER = 1, 2, 4, 8
ALL = ZEROS | SECRET_REFUSED | BUFFER_REFUSED | NEW_BUFFER


def _grandchild(buf: Buffer, address: int, secret: object) -> int:
    result = 0
    if raw.read(address, SIZE) == bytes(SIZE):
        result |= ZEROS
    try:
        secret.with_bytes(len)  # type: ignore[attr-defined]
    except ForkedError:
        result |= SECRET_REFUSED
    try:
        buf.view()
    except ForkedError:
        result |= BUFFER_REFUSED
    with Buffer(16) as fresh:
        fresh.view()[:] = b"x" * 16
        if bytes(fresh.view()) == b"x" * 16:
            result |= NEW_BUFFER
    return result


def fork(env: Environment) -> Result:
    values = _Values()

    def fn(ctx: child.Context) -> None:
        secret, buf = _secret_and_buffer(ctx)
        address = buf.address
        pid = os.fork()
        if pid == 0:
            os._exit(_grandchild(buf, address, secret))
        _, status = os.waitpid(pid, 0)
        ctx.report({
            "grandchild": os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1,
            "parent_secret": secret.with_bytes(lambda v: hashlib.sha256(v).hexdigest()),
            "parent_buffer": hashlib.sha256(buf.view()).hexdigest(),
        })

    try:
        outcome = child.run(fn, observe=values.observe, env=env.child_env)
    finally:
        values.dir.cleanup()
    if not outcome.reports:
        return verdict("fork", False, "", f"no report; {outcome.describe()}: {outcome.stderr[-300:]}")
    r = outcome.reports[0]
    g = r["grandchild"]
    parent_ok = (
        r["parent_secret"] == hashlib.sha256(values.values["secret"]).hexdigest()
        and r["parent_buffer"] == hashlib.sha256(values.values["buffer"]).hexdigest()
    )
    observed = (
        f"child: zeros {bool(g & ZEROS)}, secret refused {bool(g & SECRET_REFUSED)}, "
        f"buffer refused {bool(g & BUFFER_REFUSED)}, new buffer works {bool(g & NEW_BUFFER)}; "
        f"parent intact {parent_ok}"
    )
    return verdict(
        "fork", g == ALL and parent_ok, "child: zeros + ForkedError + new buffers work; parent intact", observed
    )


scenario("fork", "a forked child sees zeros and ForkedError; the parent is unaffected")(fork)


FORKS = 8
STREAM_WRITE = 1 << 20


def fork_with_threads() -> int:
    """os.fork() taken on purpose while other threads run, without Python 3.12+'s
    DeprecationWarning about it (the child only waits, then exits)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork", category=DeprecationWarning)
        return os.fork()


class _KeyScan:
    """The parent's side: learns the session key from the child's locked view, scans grandchildren for it."""

    def __init__(self) -> None:
        self.key: bytes | None = None

    def observe(self, pid: int, msg: dict[str, Any]) -> Any:
        if msg["op"] == "learn":
            self.key = memory.read(pid, msg["address"], KEY_SIZE)
            return len(memory.find(pid, self.key)) if self.key else 0
        if self.key is None:
            return -1
        try:
            return len(memory.find(msg["pid"], self.key))
        except OSError:
            return -1


def fork_during_aead(env: Environment) -> Result:
    """Fork repeatedly while another thread streams (AEAD objects alive most of the
    time); the parent scans each grandchild's memory for the session key."""
    scan = _KeyScan()

    def fn(ctx: child.Context) -> None:
        with get_coffer().view() as key:
            learned = ctx.checkpoint({"op": "learn", "address": raw.address_of(key)})
        stream = Stream()
        stop = threading.Event()
        rounds = [0]

        def pump() -> None:
            data, out = bytearray(STREAM_WRITE), bytearray(STREAM_WRITE)
            while not stop.is_set():
                stream.write(data)
                stream.readinto(out)
                rounds[0] += 1

        thread = threading.Thread(target=pump)
        thread.start()
        copies: list[int] = []
        try:
            while rounds[0] == 0 and thread.is_alive():
                time.sleep(0.001)
            for _ in range(FORKS):
                hold_r, hold_w = os.pipe()
                pid = fork_with_threads()
                if pid == 0:
                    os.close(hold_w)
                    os.read(hold_r, 1)
                    os._exit(0)
                os.close(hold_r)
                copies.append(ctx.checkpoint({"op": "scan", "pid": pid}))
                os.close(hold_w)
                os.waitpid(pid, 0)
                if copies[-1]:
                    break
        finally:
            stop.set()
            thread.join()
        ctx.report({"learned": learned, "copies": copies, "rounds": rounds[0]})

    outcome = child.run(fn, observe=scan.observe, env=env.child_env, timeout=120)
    expected = f"the session key in no grandchild forked mid-stream ({FORKS} forks)"
    if not outcome.reports:
        return verdict("fork_during_aead", False, expected, f"no report; {outcome.describe()}: {outcome.stderr[-300:]}")
    r = outcome.reports[0]
    if -1 in r["copies"]:
        return unsupported("fork_during_aead", expected, "cannot read a grandchild's memory (/proc/PID/mem)")
    observed = (
        f"key copies per grandchild {r['copies']}; {r['rounds']} stream rounds; "
        f"key seen in the live view: {r['learned'] >= 1}"
    )
    ok = r["learned"] >= 1 and len(r["copies"]) == FORKS and not any(r["copies"]) and r["rounds"] > 0
    return verdict("fork_during_aead", ok, expected, observed)


scenario(
    "fork_during_aead", "a fork while another thread seals or opens leaves no session key in the child"
)(fork_during_aead)
