"""Hypothesis state machines: the memguard registry, Secrets on every backend, and Stream.

Profiles: ``ci`` (default) and ``long``; pick one with HYPOTHESIS_PROFILE.
Failures print a reproduction blob (``@reproduce_failure``).
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from securememory import SecretClosedError, SecretFactory, metrics
from securememory.errors import BufferDestroyedError, DecryptionError, ReadOnlyError, StreamEmptyError
from securememory.memcall import page_size
from securememory.memcall.system import locked_bytes as vmlck
from securememory.memguard import Buffer, Enclave, Stream, purge, registry
from securememory.memguard.coffer import _holder

_COMMON: dict[str, Any] = {
    "deadline": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.filter_too_much],
}
settings.register_profile("ci", max_examples=500, stateful_step_count=25, **_COMMON)
settings.register_profile("long", max_examples=3000, stateful_step_count=80, **_COMMON)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PAGE = page_size()
JOIN_TIMEOUT = 30.0
sizes = st.one_of(
    st.sampled_from([1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE, 3 * PAGE + 17]),
    st.integers(min_value=1, max_value=2 * PAGE),
)




def coffer_buffers() -> int:
    coffer = _holder.coffer
    return 3 if coffer is not None and coffer.alive else 0


def pattern(seed: int, size: int) -> bytearray:
    return bytearray((seed + i * 7) & 0xFF for i in range(size))


# -- memguard registry, buffers, enclaves, purge -----------------------------------


class Live:
    """A model buffer: the real Buffer and what it must hold."""

    def __init__(self, buf: Buffer, content: bytearray) -> None:
        self.buf = buf
        self.content = content


class RegistryMachine(RuleBasedStateMachine):
    buffers = Bundle("buffers")
    enclaves = Bundle("enclaves")

    def __init__(self) -> None:
        super().__init__()
        purge()
        self.baseline_count = registry.count()
        self.baseline_lock = vmlck()
        self.live: list[Live] = []
        self.dead: list[Buffer] = []
        self.epoch = 0
        self.seed = 0

    def _add(self, buf: Buffer, content: bytearray) -> Live:
        entry = Live(buf, content)
        self.live.append(entry)
        return entry

    @initialize(target=buffers, size=sizes, how=st.sampled_from(["new", "from_bytes", "random", "from_reader"]))
    def first(self, size: int, how: str) -> Live:
        return self.create(size, how)

    @rule(target=buffers, size=sizes, how=st.sampled_from(["new", "from_bytes", "random", "from_reader"]))
    def create(self, size: int, how: str) -> Live:
        self.seed += 1
        if how == "new":
            return self._add(Buffer(size), bytearray(size))
        if how == "random":
            buf = Buffer.random(size)
            return self._add(buf, bytearray(buf.view()))
        data = pattern(self.seed, size)
        if how == "from_bytes":
            src = bytearray(data)
            buf = Buffer.from_bytes(src)
            assert src == bytearray(size)
        else:
            buf = Buffer.from_reader(io.BytesIO(bytes(data) + b"extra"), size)
        return self._add(buf, data)

    @rule(size=sizes)
    def short_reader_leaves_nothing(self, size: int) -> None:
        count = registry.count()
        with pytest.raises(ValueError, match="reader ended"):
            Buffer.from_reader(io.BytesIO(bytes(size - 1)), size)
        assert registry.count() == count

    @rule(entry=buffers)
    def freeze(self, entry: Live) -> None:
        if entry.buf.alive:
            entry.buf.freeze()
            assert not entry.buf.mutable

    @rule(entry=buffers)
    def melt(self, entry: Live) -> None:
        if entry.buf.alive:
            entry.buf.melt()
            assert entry.buf.mutable

    @rule(entry=buffers, data=st.data())
    def write(self, entry: Live, data: st.DataObject) -> None:
        if not entry.buf.alive:
            return
        size = entry.buf.size
        offset = data.draw(st.integers(0, size), label="offset")
        chunk = data.draw(st.binary(min_size=0, max_size=64), label="chunk")
        if not entry.buf.mutable:
            with pytest.raises(ReadOnlyError):
                entry.buf.copy_at(offset, chunk)
            return
        entry.buf.copy_at(offset, chunk)
        n = min(len(chunk), size - offset)
        entry.content[offset : offset + n] = chunk[:n]

    @rule(entry=buffers)
    def wipe(self, entry: Live) -> None:
        if entry.buf.alive and entry.buf.mutable:
            entry.buf.wipe()
            entry.content[:] = bytes(len(entry.content))

    @rule(target=enclaves, entry=consumes(buffers))
    def seal(self, entry: Live) -> Any:
        if not entry.buf.alive:
            return multiple()
        enclave = entry.buf.seal()
        assert not entry.buf.alive
        self.live.remove(entry)
        self.dead.append(entry.buf)
        return (enclave, bytes(entry.content), self.epoch)

    @rule(target=enclaves, size=sizes)
    def seal_new(self, size: int) -> Any:
        self.seed += 1
        data = pattern(self.seed, size)
        src = bytearray(data)
        enclave = Enclave(src)
        assert src == bytearray(size)
        return (enclave, bytes(data), self.epoch)

    @rule(item=enclaves)
    def open(self, item: tuple[Enclave, bytes, int]) -> None:
        enclave, content, epoch = item
        count = registry.count() - coffer_buffers()
        if epoch != self.epoch:
            with pytest.raises(DecryptionError):
                enclave.open()
            assert registry.count() - coffer_buffers() == count
            return
        buf = enclave.open()
        try:
            assert not buf.mutable
            assert bytes(buf.view()) == content
        finally:
            buf.destroy()

    @rule(entry=consumes(buffers))
    def destroy(self, entry: Live) -> None:
        entry.buf.destroy()
        if entry in self.live:
            self.live.remove(entry)
            self.dead.append(entry.buf)

    @rule()
    def purge_all(self) -> None:
        purge()
        self.dead.extend(e.buf for e in self.live)
        self.live.clear()
        self.epoch += 1

    @invariant()
    def registry_matches_model(self) -> None:
        assert registry.count() == self.baseline_count + len(self.live) + coffer_buffers()

    @invariant()
    def contents_match_model(self) -> None:
        for entry in self.live:
            assert entry.buf.alive
            assert bytes(entry.buf.view()) == entry.content

    @invariant()
    def destroyed_buffers_refuse(self) -> None:
        for buf in self.dead[-3:]:
            assert not buf.alive
            with pytest.raises(BufferDestroyedError):
                buf.view()

    def teardown(self) -> None:
        for entry in self.live:
            entry.buf.destroy()
        purge()
        assert registry.count() == self.baseline_count
        assert vmlck() == self.baseline_lock


# -- Secrets on every backend, with threads ------------------------------------------


class Held:
    def __init__(self, secret: Any, content: bytes) -> None:
        self.secret = secret
        self.content = content
        self.reader = secret.reader()
        self.pos = 0


class SecretMachine(RuleBasedStateMachine):
    secrets = Bundle("secrets")

    @initialize(
        target=secrets,
        backend=st.sampled_from(["protected", "enclave", "legacy"]),
        content=st.binary(min_size=1, max_size=300),
    )
    def start(self, backend: str, content: bytes) -> Held:
        purge()
        self.baseline_lock = vmlck()
        self.base = metrics.snapshot()
        self.created = 0
        self.open: list[Held] = []
        self.closed: list[Held] = []
        self.factories = {b: SecretFactory(b) for b in ("protected", "enclave", "legacy")}
        return self.create(backend, content, "new")

    @rule(
        target=secrets,
        backend=st.sampled_from(["protected", "enclave", "legacy"]),
        content=st.binary(min_size=1, max_size=300),
        how=st.sampled_from(["new", "reader", "random"]),
    )
    def create(self, backend: str, content: bytes, how: str) -> Held:
        factory = self.factories[backend]
        if how == "new":
            src = bytearray(content)
            secret = factory.new(src)
            assert src == bytearray(len(content))
        elif how == "reader":
            secret = factory.from_reader(io.BytesIO(content), len(content))
        else:
            secret = factory.create_random(len(content))
            content = secret.with_bytes(bytes)
        self.created += 1
        held = Held(secret, content)
        self.open.append(held)
        return held

    @rule(held=secrets)
    def with_bytes(self, held: Held) -> None:
        if held.secret.closed:
            with pytest.raises(SecretClosedError):
                held.secret.with_bytes(bytes)
        else:
            assert held.secret.with_bytes(bytes) == held.content

    @rule(a=secrets, b=secrets)
    def nested_borrow(self, a: Held, b: Held) -> None:
        if a.secret.closed or b.secret.closed:
            return
        with a.secret.borrow() as va, b.secret.borrow() as vb, a.secret.borrow() as va2:
            assert bytes(va) == a.content and bytes(vb) == b.content and bytes(va2) == a.content
        assert a.secret.equals(b.secret) == (a.content == b.content)

    @rule(held=secrets, n=st.integers(min_value=0, max_value=400))
    def read(self, held: Held, n: int) -> None:
        buf = bytearray(n)
        if held.secret.closed:
            if n and held.pos < len(held.content):
                with pytest.raises(SecretClosedError):
                    held.reader.readinto(buf)
            return
        got = held.reader.readinto(buf)
        expect = held.content[held.pos : held.pos + n]
        assert bytes(buf[:got]) == expect
        held.pos += got

    @rule(held=secrets)
    def close(self, held: Held) -> None:
        held.secret.close()
        self._closed(held)

    @rule(held=secrets, borrowers=st.integers(min_value=1, max_value=3))
    def close_while_borrowed_elsewhere(self, held: Held, borrowers: int) -> None:
        if held.secret.closed:
            return
        secret = held.secret
        inside = threading.Barrier(borrowers + 1)
        release = threading.Event()
        seen: list[Any] = []

        def holder() -> None:
            try:
                with secret.borrow() as view:
                    inside.wait(JOIN_TIMEOUT)
                    release.wait(JOIN_TIMEOUT)
                    seen.append(bytes(view))
            except BaseException as e:
                seen.append(e)

        holders = [threading.Thread(target=holder, daemon=True) for _ in range(borrowers)]
        for t in holders:
            t.start()
        inside.wait(JOIN_TIMEOUT)
        closer = threading.Thread(target=secret.close, daemon=True)
        closer.start()
        marked = threading.Event()
        for _ in range(int(JOIN_TIMEOUT * 1000)):
            if secret.closed:
                break
            marked.wait(0.001)  # close() marks the secret before it waits for the holders
        assert secret.closed
        with pytest.raises(SecretClosedError):
            secret.with_bytes(bytes)
        release.set()
        for t in [*holders, closer]:
            t.join(JOIN_TIMEOUT)
            assert not t.is_alive(), "deadlock"
        assert seen == [held.content] * borrowers
        self._closed(held)

    def _closed(self, held: Held) -> None:
        if held in self.open:
            self.open.remove(held)
            self.closed.append(held)

    @invariant()
    def metrics_match(self) -> None:
        if not hasattr(self, "base"):
            return
        snap = metrics.snapshot()
        assert snap.allocated - self.base.allocated == self.created
        assert snap.in_use - self.base.in_use == len(self.open)

    @invariant()
    def idle_counts_are_zero(self) -> None:
        for held in getattr(self, "open", []):
            assert held.secret.borrows == 0

    def teardown(self) -> None:
        for held in getattr(self, "open", []):
            held.secret.close()
        if hasattr(self, "base"):
            assert metrics.in_use == self.base.in_use
            purge()
            assert vmlck() == self.baseline_lock


# -- Stream against a bytearray model ------------------------------------------------


class StreamMachine(RuleBasedStateMachine):
    @initialize(chunk=st.one_of(st.sampled_from([1, 16, PAGE, 4 * PAGE]), st.integers(1, 3000)))
    def start(self, chunk: int) -> None:
        purge()
        self.stream = Stream(chunk)
        self.chunk = chunk
        self.chunks: list[bytes] = []
        self.registry_base = registry.count()

    @precondition(lambda self: hasattr(self, "stream"))
    @rule(data=st.binary(min_size=0, max_size=5000), writable=st.booleans())
    def write(self, data: bytes, writable: bool) -> None:
        src: Any = bytearray(data) if writable else data
        assert self.stream.write(src) == len(data)
        if writable:
            assert src == bytearray(len(data))
        for i in range(0, len(data), self.chunk):
            self.chunks.append(data[i : i + self.chunk])

    @precondition(lambda self: hasattr(self, "stream"))
    @rule(n=st.integers(min_value=0, max_value=6000))
    def readinto(self, n: int) -> None:
        buf = bytearray(n)
        got = self.stream.readinto(buf)
        expect = bytearray()
        while len(expect) < n and self.chunks:
            front = self.chunks.pop(0)
            take = min(len(front), n - len(expect))
            expect += front[:take]
            if take < len(front):
                self.chunks.insert(0, front[take:])
        assert got == len(expect)
        assert buf[:got] == expect

    @precondition(lambda self: hasattr(self, "stream"))
    @rule()
    def next(self) -> None:
        if not self.chunks:
            with pytest.raises(StreamEmptyError):
                self.stream.next()
            return
        buf = self.stream.next()
        try:
            assert bytes(buf.view()) == self.chunks.pop(0)
            assert not buf.mutable
        finally:
            buf.destroy()

    @precondition(lambda self: hasattr(self, "stream"))
    @rule()
    def flush(self) -> None:
        if not self.chunks:
            with pytest.raises(StreamEmptyError):
                self.stream.flush()
            return
        buf = self.stream.flush()
        try:
            assert bytes(buf.view()) == b"".join(self.chunks)
        finally:
            buf.destroy()
        self.chunks.clear()

    @invariant()
    def size_matches(self) -> None:
        if hasattr(self, "stream"):
            assert self.stream.size == len(self.stream) == sum(map(len, self.chunks))

    @invariant()
    def nothing_but_scratch_is_live(self) -> None:
        if hasattr(self, "stream"):
            scratch = 1 if self.stream._scratch is not None and self.stream._scratch.alive else 0
            assert registry.count() == self.registry_base + scratch + coffer_buffers()

    def teardown(self) -> None:
        if hasattr(self, "stream"):
            self.stream.destroy()
            assert self.stream.size == 0


TestRegistryMachine = RegistryMachine.TestCase
TestRegistryMachine.settings = PROFILE
TestSecretMachine = SecretMachine.TestCase
TestSecretMachine.settings = PROFILE
TestStreamMachine = StreamMachine.TestCase
TestStreamMachine.settings = PROFILE
