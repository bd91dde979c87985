"""The C floor: raw syscall sequences in a C loop, measured in the same run.

Each ``*_x{LOOP}`` benchmark runs its sequence ``LOOP`` times inside one C call;
``time_destroy_x1000`` tears down 1,000 live guarded buffers made in setup.
"""

from __future__ import annotations

from ._common import CPU_TIMER, LOOP, MICRO_REPEAT, MICRO_ROUNDS, PURGE_COUNT
from .floor import load

timer = CPU_TIMER
rounds = MICRO_ROUNDS


def _check(code: int, what: str) -> None:
    if code:
        raise OSError(code, f"floor {what} failed")


class Floor:
    repeat = MICRO_REPEAT
    timeout = 120

    def setup(self) -> None:
        self.lib = load()

    def time_syscall_x200(self) -> None:
        """getppid(): one trivial syscall."""
        _check(self.lib.floor_syscall(LOOP), "syscall")

    def time_lifecycle_x200(self) -> None:
        """Guarded 1-page buffer: mmap 3 pages, 2 guard mprotects, DONTDUMP,
        WIPEONFORK, mlock, wipe, munlock, munmap."""
        _check(self.lib.floor_lifecycle(LOOP), "lifecycle")

    def time_legacy_lifecycle_x200(self) -> None:
        """Old design: mmap 1 page, mlock, mprotect NONE, mprotect RW, wipe, munlock, munmap."""
        _check(self.lib.floor_legacy_lifecycle(LOOP), "legacy lifecycle")

    def time_protected_read_x200(self) -> None:
        """mprotect NONE -> READ, read 32 bytes, READ -> NONE on one guarded locked page."""
        _check(self.lib.floor_protected_read(LOOP, 32), "protected read")


class FloorDestroy:
    """Destroy only (mprotect RW, wipe, munlock, munmap) of 1,000 live guarded buffers."""

    number = 1
    repeat = (5, 20, 20.0)
    timeout = 120

    def setup(self) -> None:
        self.lib = load()
        self.batch = self.lib.floor_batch_create(PURGE_COUNT)
        if self.lib.floor_batch_size(self.batch) != PURGE_COUNT:
            raise RuntimeError("could not create the floor batch")

    def time_destroy_x1000(self) -> None:
        _check(self.lib.floor_batch_destroy(self.batch), "batch destroy")
        self.batch = None

    def teardown(self) -> None:
        if self.batch is not None:
            self.lib.floor_batch_destroy(self.batch)
            self.batch = None
