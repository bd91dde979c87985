"""memguard Buffer lifecycle and purge()."""

from __future__ import annotations

from typing import Any

from ._common import CPU_TIMER, LOOP, PURGE_COUNT

timer = CPU_TIMER


class BufferLifecycle:
    """``Buffer(32)`` create + destroy, LOOP times per timed call."""

    timeout = 120

    def setup(self) -> None:
        from securememory.memguard import Buffer

        self.Buffer = Buffer
        Buffer(32).destroy()

    def time_create_destroy_32_x200(self) -> None:
        make = self.Buffer
        for _ in range(LOOP):
            make(32).destroy()


class Purge:
    """``purge()`` with 1,000 live ``Buffer(32)``, made fresh before each sample."""

    number = 1
    repeat = (3, 10, 20.0)
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
