"""NO_ACCESS from creation: a new secret is unreadable before its first borrow.

The child creates secrets with every constructor and never borrows them; the
parent reads the protection of the pages holding each one from
/proc/PID/smaps: ``---`` for secrets, ``r--`` for the frozen Buffers that
Enclave.open and Stream.next return.
"""

from __future__ import annotations

import io
import os
import tempfile
from typing import Any

from securememory import SecretFactory, Stream
from securememory.memguard import Enclave
from securememory.memguard import Stream as ChunkStream

from .. import child, memory
from ..scenario import Environment, Result, scenario, verdict

NO_ACCESS, READ_ONLY = "---", "r--"


def _address(secret: Any) -> int:
    """The first data byte of a protected or legacy secret, found without borrowing it."""
    buffer = getattr(secret, "_buffer", None)
    return int(buffer.address) if buffer is not None else int(secret._region.address)


def no_access_from_creation(env: Environment) -> Result:
    name = "no_access_from_creation"
    expected = "secrets --- from every constructor; opened enclaves and stream chunks r--"
    seen: dict[str, str] = {}
    wanted: dict[str, str] = {}

    def fn(ctx: child.Context) -> None:
        spans: list[tuple[str, int, str]] = []
        fd, path = tempfile.mkstemp(prefix="securememory-creation-")
        os.write(fd, os.urandom(48))
        os.close(fd)
        held: list[Any] = []
        try:
            for backend in ("protected", "legacy"):
                factory = SecretFactory(backend)
                made = {
                    "new": factory.new(bytearray(os.urandom(48))),
                    "create_random": factory.create_random(48),
                    "from_file": factory.from_file(path),
                    "from_reader": factory.from_reader(io.BytesIO(bytes(48)), 48),
                }
                for how, secret in made.items():
                    spans.append((f"{backend}.{how}", _address(secret), NO_ACCESS))
                held += made.values()
        finally:
            os.unlink(path)
        stream = Stream(chunk_size=64)
        stream.write(bytearray(200))
        for how, secret in (("stream chunk", next(stream)), ("stream next_secret", stream.next_secret()),
                            ("stream flush_secret", stream.flush_secret())):
            spans.append((how, _address(secret), NO_ACCESS))
            held.append(secret)
        opened = Enclave(bytearray(48)).open()
        chunks = ChunkStream(chunk_size=64)
        chunks.write(bytearray(100))
        chunk = chunks.next()
        spans += [("Enclave.open", opened.address, READ_ONLY), ("memguard Stream.next", chunk.address, READ_ONLY)]
        ctx.checkpoint(spans)
        del held, opened, chunk

    def observe(pid: int, spans: list[list[Any]]) -> None:
        maps = memory.mappings(pid)
        for label, address, want in spans:
            owner = next((m for m in maps if m.contains(address)), None)
            seen[label] = owner.perms[:3] if owner is not None else "unmapped"
            wanted[label] = want

    outcome = child.run(fn, observe=observe, env=env.child_env)
    wrong = [f"{label} {perms}" for label, perms in seen.items() if perms != wanted[label]]
    ok = outcome.exit_code == 0 and len(seen) == 13 and not wrong
    observed = f"{len(seen)} checked, wrong: {', '.join(wrong) or 'none'}; {outcome.describe()}"
    return verdict(name, ok, expected, observed + env.note)


scenario("no_access_from_creation", "every constructor's secret is NO_ACCESS before its first borrow")(
    no_access_from_creation
)
