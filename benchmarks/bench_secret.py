"""Secrets on each backend: create + close (one call, and x200 at 32 B), with_bytes
(1 and 2 threads), reader()."""

from __future__ import annotations

import threading
from timeit import default_timer as WALL_TIMER
from typing import Any

from ._common import (
    BACKENDS,
    CPU_TIMER,
    LOOP,
    MICRO_REPEAT,
    MICRO_ROUNDS,
    OVERLAP_CALLS,
    SECRET_SIZES,
    cached,
    noop,
    pattern,
    secret_factory,
)

timer = CPU_TIMER


class CreateClose:
    """``factory.new(data)`` + ``close()``; data is a ``bytes`` (copied, not wiped)."""

    params = (BACKENDS, SECRET_SIZES)
    param_names = ("backend", "size")
    timeout = 120

    def setup(self, backend: str, size: int) -> None:
        self.factory = secret_factory(backend)
        self.data = cached(("pattern", size), lambda: pattern(size))
        self.factory.new(self.data).close()

    def time_create_close(self, backend: str, size: int) -> None:
        self.factory.new(self.data).close()

    def peakmem_create_close(self, backend: str, size: int) -> None:
        self.factory.new(self.data).close()


class SecretLifecycle:
    """``factory.new(data)`` + ``close()`` of a 32-byte secret, LOOP times per timed
    call; data is a ``bytes`` (copied, not wiped)."""

    params = BACKENDS
    param_names = ("backend",)
    rounds = MICRO_ROUNDS
    repeat = MICRO_REPEAT
    timeout = 120

    def setup(self, backend: str) -> None:
        self.factory = secret_factory(backend)
        self.data = cached(("pattern", 32), lambda: pattern(32))
        self.factory.new(self.data).close()

    def time_new_close_32_x200(self, backend: str) -> None:
        new, data = self.factory.new, self.data
        for _ in range(LOOP):
            new(data).close()


class WithBytes:
    """``with_bytes`` on a 32-byte secret, LOOP calls per timed call, one thread."""

    params = BACKENDS
    param_names = ("backend",)
    rounds = MICRO_ROUNDS
    repeat = MICRO_REPEAT
    timeout = 120

    def setup(self, backend: str) -> None:
        self.secret = cached(("secret32", backend), lambda: secret_factory(backend).new(pattern(32)))
        self.secret.with_bytes(noop)

    def time_with_bytes_32_x200(self, backend: str) -> None:
        with_bytes = self.secret.with_bytes
        for _ in range(LOOP):
            with_bytes(noop)


class _Workers:
    """``n`` persistent threads that each call ``with_bytes`` ``calls`` times per round."""

    def __init__(self, secret: Any, n: int, calls: int) -> None:
        self.secret = secret
        self.calls = calls
        self.start = threading.Barrier(n + 1)
        self.done = threading.Barrier(n + 1)
        self.errors: list[BaseException] = []
        self.stop = False
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _work(self) -> None:
        with_bytes = self.secret.with_bytes
        while True:
            self.start.wait()
            if self.stop:
                return
            try:
                for _ in range(self.calls):
                    with_bytes(noop)
            except BaseException as exc:
                self.errors.append(exc)
            self.done.wait()

    def round(self) -> None:
        self.start.wait()
        self.done.wait()
        if self.errors:
            raise self.errors[0]

    def close(self) -> None:
        self.stop = True
        self.start.wait()
        for t in self.threads:
            t.join()


class WithBytesThreads:
    """OVERLAP_CALLS ``with_bytes`` calls on one 32-byte secret per timed call, split
    over 1 or 2 persistent threads; per call = time / OVERLAP_CALLS."""

    params = (BACKENDS, [1, 2])
    param_names = ("backend", "threads")
    timer = WALL_TIMER
    repeat = (3, 10, 5.0)
    timeout = 120

    workers: _Workers | None = None

    def setup(self, backend: str, threads: int) -> None:
        secret = cached(("secret32", backend), lambda: secret_factory(backend).new(pattern(32)))
        self.workers = _Workers(secret, threads, OVERLAP_CALLS // threads)
        self.workers.round()

    def time_with_bytes_calls_x20000(self, backend: str, threads: int) -> None:
        assert self.workers is not None
        self.workers.round()

    def teardown(self, backend: str, threads: int) -> None:
        if self.workers is not None:
            self.workers.close()
            self.workers = None


class Reader:
    """``reader()`` and read everything (readinto a preallocated buffer until EOF)."""

    params = (BACKENDS, [32, 4096])
    param_names = ("backend", "size")
    timeout = 120

    def setup(self, backend: str, size: int) -> None:
        self.secret = cached(("secret", backend, size), lambda: secret_factory(backend).new(pattern(size)))
        self.out = bytearray(size)
        self.time_reader_read_all(backend, size)

    def time_reader_read_all(self, backend: str, size: int) -> None:
        reader = self.secret.reader()
        view = memoryview(self.out)
        done = 0
        while True:
            n = reader.readinto(view[done:])
            if not n:
                break
            done += n
        reader.close()
