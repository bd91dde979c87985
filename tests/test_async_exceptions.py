"""An exception at any instant of a borrow leaves nothing behind.

An asynchronous exception (KeyboardInterrupt from a real SIGINT, or any
exception a signal handler raises) can land wherever CPython checks for
pending work: at function entry, after any call returns, and on loop
back-edges. These tests inject one exception per run at every bytecode
boundary of the borrow protocol's own code (Secret, its reader, the Stream's
iteration, the backends, and the caller's own ``with`` block) and at every
call entry, Python return and C-call return beneath it, sweeping the points
again and again until each entry point has taken INJECTIONS injections, and
require after every one: no borrow counted, the pages NO_ACCESS (or the
enclave's scratch gone), and close() returning.

Opcode-level points are limited to the protocol's own frames because deeper
code (locks in memguard, the coffer) uses ``with lock:``, whose normal exit
has bytecodes at which CPython never delivers an asynchronous exception but a
trace function can; injecting there would test CPython's ``with`` statement,
not this library. The real-SIGINT test covers those frames at the points
CPython really uses.

Injection uses ``sys.settrace`` (opcode, call and return events) and
``sys.setprofile`` (``c_return`` events); raising from either delivers the
exception at exactly that point of the traced frame.
"""

from __future__ import annotations

import gc
import io
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from _secret_helpers import BACKENDS, borrowed_address, buffers_in_use, perms_at, readable

import securememory
from securememory import Secret, SecretFactory
from securememory.memguard import registry

INJECTIONS = int(os.environ.get("SECUREMEMORY_INJECTIONS", "10000"))
_PACKAGE = os.path.dirname(securememory.__file__)
PROTOCOL_FILES = {
    os.path.join(_PACKAGE, name)
    for name in ("secret.py", "reader.py", "stream.py", "backends/protected.py", "backends/enclave.py",
                 "backends/legacy.py")
} | {__file__}
CONTENT = b"0123456789abcdef" * 4


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Injected(BaseException):
    """Stands for KeyboardInterrupt: a BaseException nobody should swallow."""


class Injector:
    """Counts trace events while armed; raises Injected at event number ``at``."""

    def __init__(self, at: int = 0) -> None:
        self.at = at
        self.events = 0
        self.armed = False

    def _hit(self) -> None:
        if self.armed:
            self.events += 1
            if self.events == self.at:
                self.armed = False
                raise Injected

    def trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        if event in ("call", "return") or frame.f_code.co_filename in PROTOCOL_FILES:
            frame.f_trace_opcodes = frame.f_code.co_filename in PROTOCOL_FILES
            self._hit()
        return self.trace

    def profile(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_return":
            self._hit()

    def run(self, op: Callable[[], Any]) -> Any:
        """op() under tracing; its result, or None when the injection landed."""
        result = None
        sys.settrace(self.trace)
        sys.setprofile(self.profile)
        try:
            self.armed = True
            result = op()
        except Injected:
            pass
        finally:
            self.armed = False
            sys.setprofile(None)
            sys.settrace(None)
        return result


def count_events(op: Callable[[], Any]) -> int:
    injector = Injector()
    injector.run(op)
    return injector.events


def close_returns(secret: Secret, timeout: float = 10.0) -> None:
    t = threading.Thread(target=secret.close, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "close() hung after an injection"
    assert secret.closed


def settle(baseline: int) -> int:
    """Buffers in use (idle enclave scratch aside), after collecting what the
    injected exception's frames held."""
    if buffers_in_use() != baseline:
        gc.collect()
    return buffers_in_use()


class Fixture:
    """A secret on one backend and how to check that it is at rest."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.factory = SecretFactory(backend)
        self.secret = self.factory.new(bytearray(CONTENT))
        self.other = self.factory.new(bytearray(CONTENT))
        self.addr = None if backend == "enclave" else borrowed_address(self.secret)
        self.baseline = buffers_in_use()

    def check_at_rest(self) -> None:
        for s in (self.secret, self.other):
            assert s.borrows == 0, "a borrow is still counted"
        if self.addr is not None:
            assert not readable(self.addr), f"pages left {perms_at(self.addr)}"
        assert settle(self.baseline) == self.baseline, "a scratch or staging buffer is alive"
        assert self.secret.with_bytes(bytes) == CONTENT


def _borrow(secret: Secret) -> int:
    with secret.borrow() as view:
        return len(view)


def _read(secret: Secret) -> int:
    return secret.reader().readinto(bytearray(len(CONTENT)))


OPS: dict[str, Callable[[Fixture], Any]] = {
    "with_bytes": lambda f: f.secret.with_bytes(len),
    "borrow": lambda f: _borrow(f.secret),
    "reader": lambda f: _read(f.secret),
    "equals": lambda f: f.secret.equals(f.other),
}


def sweep(op: Callable[[], Any], check: Callable[[], None], budget: int) -> int:
    """Inject at every point of op, again and again, until ``budget`` injections."""
    points = count_events(op)
    assert points > 0
    done = 0
    while done < budget:
        for at in range(1, points + 1):
            Injector(at).run(op)
            check()
            done += 1
            if done >= budget:
                break
    return points


@pytest.mark.parametrize("op", sorted(OPS))
def test_injection_at_every_point_of_a_borrow(backend: str, op: str) -> None:
    f = Fixture(backend)
    sweep(lambda: OPS[op](f), f.check_at_rest, INJECTIONS)
    close_returns(f.secret)
    close_returns(f.other)
    owned = 2 if backend == "protected" else 0  # the two secrets' own Buffers
    assert settle(f.baseline - owned) == f.baseline - owned


def test_injection_at_every_point_of_close(backend: str) -> None:
    factory = SecretFactory(backend)
    factory.new(bytearray(CONTENT)).close()  # the session key, for the enclave, exists from here on
    baseline = buffers_in_use()
    pending: list[Secret] = []

    def make() -> Secret:
        pending.append(factory.new(bytearray(CONTENT)))
        return pending[-1]

    def check() -> None:
        secret = pending.pop()
        assert secret.borrows == 0
        close_returns(secret)  # finishes what the interrupted close began
        assert settle(baseline) == baseline, "memory of a closed secret is still registered"

    def op() -> None:
        pending[-1].close()

    make()
    points = count_events(op)
    check()
    done = 0
    while done < INJECTIONS:
        for at in range(1, points + 1):
            make()
            Injector(at).run(op)
            check()
            done += 1
            if done >= INJECTIONS:
                break


def test_injection_at_every_point_of_stream_iteration() -> None:
    page = securememory.memcall.page_size()
    stream = securememory.Stream(chunk_size=page)
    stream.write(bytearray(b"s" * page))
    next(stream).close()  # the session key exists from here on
    baseline = registry.count()

    def op() -> Secret | None:
        # an injection may leave the stream's byte count ahead of its chunks (a
        # bookkeeping skew, not a protection): refill on either signal
        try:
            return next(stream)
        except StopIteration:
            stream.write(bytearray(b"s" * page * 4))
            return None

    def check_result(result: Secret | None) -> None:
        if result is not None:
            assert result.borrows == 0
            assert result.with_bytes(lambda v: bytes(v[:1])) == b"s"
            close_returns(result)
        stream_buffers = 1  # the stream keeps one scratch buffer of its own at most
        assert settle(baseline) <= baseline + stream_buffers

    points = count_events(op)
    done = 0
    while done < INJECTIONS:
        for at in range(1, points + 1):
            check_result(Injector(at).run(op))
            done += 1
            if done >= INJECTIONS:
                break
    stream.close()


def test_a_real_sigint_inside_borrows_leaves_nothing_behind(backend: str) -> None:
    """KeyboardInterrupt from real SIGINTs at timer-chosen instants, thousands of times."""
    f = Fixture(backend)
    armed = [False]
    hits = 0

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if armed[0]:
            armed[0] = False
            raise KeyboardInterrupt

    old_int = signal.signal(signal.SIGINT, on_sigint)
    old_alrm = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    ops = [OPS[name] for name in sorted(OPS)]
    try:
        for i in range(3000):
            armed[0] = True
            try:
                signal.setitimer(signal.ITIMER_REAL, 0.00002 + (i % 50) * 0.000003)
                for _ in range(50):
                    ops[i % len(ops)](f)
            except KeyboardInterrupt:
                hits += 1
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0.0)
            f.check_at_rest()
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, old_alrm)
        signal.signal(signal.SIGINT, old_int)
    assert hits > 100, f"only {hits} interrupts landed"
    close_returns(f.secret)
    close_returns(f.other)


def test_the_injector_finds_a_window_in_an_unprotected_protocol() -> None:
    """The method can fail: a borrow protocol written as Python enter/try/exit
    (a bytecode boundary between entering and the try) leaks a count under it."""

    class Naive:
        def __init__(self) -> None:
            self.count = 0

        def with_bytes(self, action: Callable[[bytes], Any]) -> Any:
            self.count += 1
            data = io.BytesIO(CONTENT).getvalue()
            try:
                return action(data)
            finally:
                self.count -= 1

    naive = Naive()
    leaks = 0
    points = count_events(lambda: naive.with_bytes(len))
    for at in range(1, points + 1):
        naive.count = 0
        Injector(at).run(lambda: naive.with_bytes(len))
        leaks += naive.count != 0
    assert leaks > 0


def test_an_injection_in_a_buffer_method_frees_its_lock_before_it_propagates() -> None:
    """From CPython 3.14 a ``with`` statement calls ``__enter__`` with a CALL, and a
    profile function raising at that call's c_return event keeps the context
    manager (the bound ``__enter__`` it was passed) alive in the exception's
    traceback. A Buffer's lock must be free in any handler the exception
    reaches: Enclave.open destroys its buffer from ``except BaseException``."""
    from securememory.memguard.buffer import Buffer

    a, b, c = Buffer(32), Buffer(32), Buffer(32)
    ops: list[tuple[Callable[[], Any], tuple[Buffer, ...]]] = [
        (lambda: (a.melt(), a.wipe()), (a,)),
        (lambda: (a.melt(), a.scramble()), (a,)),
        (lambda: (a.melt(), a.copy(b"x")), (a,)),
        (a.freeze, (a,)),
        (lambda: a.equal_to(b), (a, b)),
        (lambda: a.equal_to(b"x" * 32), (a,)),
        (lambda: a.equal_to(a), (a,)),
        (c.destroy, (c,)),
    ]
    points = 0
    for op, bufs in ops:
        for at in range(1, count_events(op) + 1):
            injector = Injector(at)
            held: list[bool] = []
            sys.settrace(injector.trace)
            sys.setprofile(injector.profile)
            try:
                injector.armed = True
                op()
            except Injected:
                held = [buf._guard.locked() for buf in bufs]
            finally:
                injector.armed = False
                sys.setprofile(None)
                sys.settrace(None)
            points += 1
            assert not any(held), f"a buffer lock is held while the exception from event {at} propagates"
            assert not any(buf._guard.locked() for buf in bufs)
    assert points > len(ops)
    for buf in (a, b):
        buf.destroy()
