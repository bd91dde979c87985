"""memguard Buffer lifecycle (alone and beside 10,000 live buffers) and purge()."""

from __future__ import annotations

from typing import Any

from ._common import (
    CPU_TIMER,
    LIVE_COUNTS,
    LOOP,
    MICRO_REPEAT,
    MICRO_ROUNDS,
    PURGE_COUNT,
    cached,
    skip_unavailable,
)

timer = CPU_TIMER
rounds = MICRO_ROUNDS


class BufferLifecycle:
    """``Buffer(32)`` create + destroy, LOOP times per timed call."""

    repeat = MICRO_REPEAT
    timeout = 120

    def setup(self) -> None:
        from securememory.memguard import Buffer

        self.Buffer = Buffer
        Buffer(32).destroy()

    def time_create_destroy_32_x200(self) -> None:
        make = self.Buffer
        for _ in range(LOOP):
            make(32).destroy()


class LiveBuffers:
    """``Buffer(32)`` create + destroy, LOOP times per timed call, with ``live``
    other ``Buffer(32)`` alive meanwhile (made once per process, kept): what the
    registry, the crash-wipe table and the kernel's mapping tree add as they grow."""

    params = LIVE_COUNTS
    param_names = ("live",)
    repeat = MICRO_REPEAT
    timeout = 300

    def setup(self, live: int) -> None:
        from securememory.errors import MemoryLockError
        from securememory.memguard import Buffer

        self.Buffer = Buffer
        try:
            self.others = cached(("live-buffers", live), lambda: [Buffer(32) for _ in range(live)])
        except MemoryLockError as exc:
            raise skip_unavailable(exc) from None
        Buffer(32).destroy()

    def time_create_destroy_32_x200(self, live: int) -> None:
        make = self.Buffer
        for _ in range(LOOP):
            make(32).destroy()


class Purge:
    """``purge()`` with 1,000 live ``Buffer(32)``, made fresh before each sample."""

    number = 1
    repeat = (5, 20, 20.0)
    timeout = 120

    def setup(self) -> None:
        from securememory.memguard import Buffer, purge, registry

        self.purge = purge
        purge()
        self.buffers: list[Any] = [Buffer(32) for _ in range(PURGE_COUNT)]
        if registry.count() < PURGE_COUNT:
            raise RuntimeError("registry does not hold the buffers")

    def time_purge_1000(self) -> None:
        self.purge()

    def teardown(self) -> None:
        self.purge()
        self.buffers = []
