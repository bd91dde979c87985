"""Count copies of a value in a forked child, with the value kept out of the child until it asks.

The parent draws each value after the fork (so the child never inherits a
copy), hands it over the way real input arrives (a file the child reads with
the library, or keystrokes typed at a pseudo-terminal that is the child's
controlling terminal), and counts its copies in the child's memory through
/proc/PID/mem, outside the pages of every live secret and guarded buffer
(the secret's own pages) and any span the child names. After the block
returns, every value is scanned once more.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import select
import string
import tempfile
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import child, memory, raw

PRINTABLE = (string.ascii_letters + string.digits).encode()


class _Parent:
    """The parent's side: values on request, keystrokes, counts."""

    def __init__(self, terminal: int | None) -> None:
        self.values: dict[str, bytes] = {}
        self.dir = tempfile.TemporaryDirectory(prefix="securememory-probe-")
        self.terminal = terminal
        self.typists: list[threading.Thread] = []

    def _draw(self, key: str, size: int, printable: bool) -> bytes:
        value = bytes(secrets.choice(PRINTABLE) for _ in range(size)) if printable else os.urandom(size)
        self.values[key] = value
        return value

    def observe(self, pid: int, msg: dict[str, Any]) -> Any:
        op, key = msg["op"], msg.get("key", "")
        if op == "file":
            value = self._draw(key, msg["size"], msg["printable"])
            path = os.path.join(self.dir.name, key)
            with open(path, "wb") as f:
                f.write(value + msg["suffix"].encode("latin-1"))
            return path
        if op == "type":
            if self.terminal is None:
                raise child.ChildError("type() needs run(..., terminal=True)")
            value = self._draw(key, msg["size"], True)
            typist = threading.Thread(target=self._type, args=(msg["prompt"].encode(), value + b"\r"))
            typist.start()
            self.typists.append(typist)
            return None
        if op == "learn":
            data = memory.read(pid, msg["address"], msg["size"])
            if data is None:
                raise child.ChildError(f"cannot read the child's memory at {msg['address']:#x}")
            self.values[key] = data
            return None
        if op == "scan":
            spans = [tuple(s) for s in msg["exclude"]]
            return {k: len(memory.find(pid, v, spans)) for k, v in self.values.items() if k in msg["keys"]}
        raise child.ChildError(f"unknown probe operation {op!r}")

    def _type(self, prompt: bytes, keys: bytes) -> None:
        """Wait until the child prints ``prompt`` (its terminal is set up by then), then type."""
        assert self.terminal is not None
        seen = b""
        while prompt not in seen:
            ready, _, _ = select.select([self.terminal], [], [], 30)
            if not ready:
                return
            try:
                seen += os.read(self.terminal, 1024)
            except OSError:
                return
        os.write(self.terminal, keys)


class Probe:
    """The child's side, handed to the block."""

    def __init__(self, ctx: child.Context) -> None:
        self._ctx = ctx
        self._keys: list[str] = []
        self._exclude: list[tuple[int, int]] = []
        self.counts: dict[str, list[int]] = {}

    def file(self, key: str = "value", *, size: int = 32, printable: bool = False, suffix: bytes = b"") -> str:
        """Path of a file holding a fresh value (then ``suffix``), drawn by the parent now."""
        self._keys.append(key)
        path: str = self._ctx.checkpoint(
            {"op": "file", "key": key, "size": size, "printable": printable, "suffix": suffix.decode("latin-1")}
        )
        return path

    def type(self, key: str = "value", *, size: int = 16, prompt: str = "Password: ") -> None:
        """Have the parent type a fresh printable value and Enter once ``prompt`` shows on the terminal."""
        self._keys.append(key)
        self._ctx.checkpoint({"op": "type", "key": key, "size": size, "prompt": prompt})

    def learn(self, key: str, secret: Any) -> None:
        """Let the parent read ``secret``'s current value (during a borrow) to count its copies."""
        self._keys.append(key)
        with secret.borrow() as view:
            self._ctx.checkpoint({"op": "learn", "key": key, "address": raw.address_of(view), "size": len(view)})

    def exclude(self, address: int, length: int) -> None:
        """Also ignore copies inside this span (a caller's own output buffer, say)."""
        self._exclude.append((address, length))

    def exclude_view(self, view: Any) -> None:
        """Ignore copies inside the buffer ``view`` (bytearray, memoryview)."""
        mv = memoryview(view)
        self.exclude(raw.address_of(mv), mv.nbytes)

    def scan(self, *keys: str) -> dict[str, int]:
        """Count copies of ``keys`` (default: every value so far) outside the secrets' own pages."""
        wanted = list(keys or self._keys)
        found: dict[str, int] = self._ctx.checkpoint(
            {"op": "scan", "keys": wanted, "exclude": own_spans() + self._exclude}
        )
        for k, n in found.items():
            self.counts.setdefault(k, []).append(n)
        self._ctx.report(found)
        return found


def own_spans() -> list[tuple[int, int]]:
    """(address, length) of every live secret's bytes and every live guarded buffer's data."""
    from securememory.memguard import Buffer, registry
    from securememory.secret import live_secrets

    spans: list[tuple[int, int]] = []
    for obj in registry.snapshot():
        if isinstance(obj, Buffer) and obj.alive:
            spans.append((obj.address, obj.size))
    for secret in live_secrets.snapshot():
        if not secret.closed:
            spans.append((secret.with_bytes(raw.address_of), len(secret)))
    return spans


@dataclass
class Report:
    """Counts per value (one entry per scan, the last one taken after the block) and the child's outcome."""

    counts: dict[str, list[int]] = field(default_factory=dict)
    outcome: child.Outcome | None = None
    echoed: list[str] = field(default_factory=list)  # typed values the terminal echoed back

    def final(self, key: str) -> int | None:
        seen = self.counts.get(key)
        return seen[-1] if seen else None


def run(
    block: Callable[[Probe], None],
    *,
    terminal: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    wrap: Callable[[Callable[[child.Context], None]], Callable[[child.Context], None]] | None = None,
) -> Report:
    """Run ``block(probe)`` in a forked child, then scan for every value it asked for.

    With ``terminal=True`` the child gets a new session whose controlling
    terminal is a fresh pseudo-terminal the parent types into.
    """
    master = slave = None
    if terminal:
        master, slave = os.openpty()

    def body(ctx: child.Context) -> None:
        if slave is not None and master is not None:
            os.close(master)
            os.setsid()
            fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        probe = Probe(ctx)
        block(probe)
        if probe._keys:
            probe.scan()

    parent = _Parent(master)
    shown = b""
    try:
        outcome = child.run(wrap(body) if wrap else body, observe=parent.observe, env=env, timeout=timeout)
    finally:
        for typist in parent.typists:
            typist.join(5)
        while master is not None and select.select([master], [], [], 0)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
        parent.dir.cleanup()
        for fd in (master, slave):
            if fd is not None:
                os.close(fd)
    report = Report(outcome=outcome, echoed=[k for k, v in parent.values.items() if terminal and v in shown])
    for found in outcome.reports:
        if isinstance(found, dict):
            for k, n in found.items():
                report.counts.setdefault(k, []).append(n)
    return report
