"""The crash wipe alone: a fatal signal wipes every live secret before the process dies.

Each child holds a Buffer, a protected and a legacy secret (values from files
the parent wrote), then faults: a NULL write (SIGSEGV) or a read past the end
of a truncated file mapping (SIGBUS). The parent reads the three values at
PTRACE_EVENT_EXIT, the memory a core of that death would hold. No canary is
involved, so only the crash handler can have wiped them.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import signal
import tempfile
from collections.abc import Callable
from typing import Any

from securememory import SecretFactory
from securememory.memguard import Buffer

from .. import child, memory, raw
from ..scenario import Environment, Result, scenario, verdict
from .copies import SIZE, _file, _span, _Values


def _segv() -> None:
    raw.poke(0)


def _bus() -> None:
    fd, path = tempfile.mkstemp(prefix="securememory-bus-")
    os.unlink(path)
    os.write(fd, bytes(mmap.PAGESIZE))
    mapped = mmap.mmap(fd, mmap.PAGESIZE)
    os.ftruncate(fd, 0)
    raw.peek(ctypes.addressof(ctypes.c_char.from_buffer(mapped)))


FAULTS: dict[int, Callable[[], None]] = {signal.SIGSEGV: _segv, signal.SIGBUS: _bus}


def crash_wipe(env: Environment) -> Result:
    expected = "killed by SIGSEGV / SIGBUS, every secret zero at death"
    observed = []
    ok = True
    for signum, fault in FAULTS.items():
        values = _Values()
        spans: dict[str, list[int]] = {}

        def fn(ctx: child.Context, fault: Callable[[], None] = fault) -> None:
            buf = Buffer(SIZE)
            with open(_file(ctx, "buffer"), "rb", buffering=0) as f:
                f.readinto(buf.view())
            protected: Any = SecretFactory("protected").from_file(_file(ctx, "protected"))
            legacy = SecretFactory("legacy").from_file(_file(ctx, "legacy"))
            ctx.checkpoint({"op": "spans", "key": "", "spans": {
                "buffer": [buf.address, SIZE], "protected": list(_span(protected)),
                "legacy": list(_span(legacy))}})
            fault()

        def observe(pid: int, msg: dict[str, Any], spans: dict[str, list[int]] = spans,
                    values: _Values = values) -> Any:
            if msg["op"] == "spans":
                spans.update(msg["spans"])
                return None
            return values.observe(pid, msg)

        def at_exit(pid: int, spans: dict[str, list[int]] = spans) -> dict[str, bool]:
            return {k: memory.read(pid, a, n) == bytes(n) for k, (a, n) in spans.items()}

        try:
            outcome = child.run(fn, observe=observe, at_exit=at_exit, env=env.child_env)
        finally:
            values.dir.cleanup()
        wiped = outcome.observations[-1] if outcome.observations else {}
        this = outcome.signal == signum and len(wiped) == 3 and all(wiped.values())
        ok = ok and this
        kept = [k for k, zero in wiped.items() if not zero]
        observed.append(f"{signal.Signals(signum).name}: {outcome.describe()}, "
                        f"not wiped: {', '.join(kept) or 'none'}")
    return verdict("crash_wipe", ok, expected, "; ".join(observed) + env.note)


scenario("crash_wipe", "a fatal signal (SIGSEGV, SIGBUS) wipes every live secret before death")(crash_wipe)
