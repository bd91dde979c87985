"""Factory and Buffer constructors with arbitrary sizes, source types and readers."""

from __future__ import annotations

import array
from typing import Any

from _common import SecureMemoryError, atheris, check, live_buffers, main

from securememory import SecretFactory, metrics
from securememory.memguard import Buffer

SPECIAL_SIZES = [0, -1, -(2**63), 2**62, 2**62 + 1, 2**64, 2**100]
BACKENDS = ["protected", "enclave", "legacy", "", "PROTECTED", "nope", None, 3]
POLICIES = ["require", "best_effort", "disabled", "best-effort", " Require ", "maybe", None, 1.5]


class ReaderFault(Exception):
    """Raised on purpose by a fuzzed reader."""


class ScriptedReader:
    """A reader whose readinto follows a script: full, short and empty reads, faults, bad counts."""

    def __init__(self, fdp: Any) -> None:
        self.steps = [fdp.ConsumeIntInRange(0, 5) for _ in range(fdp.ConsumeIntInRange(0, 8))]
        self.fill = fdp.ConsumeIntInRange(0, 255)

    def readinto(self, view: Any) -> int:
        if not self.steps:
            return 0
        step = self.steps.pop(0)
        if step == 3:
            raise ReaderFault
        if step == 4:
            return len(view) + 4096 * 3  # claims more than it was given room for
        if step == 5:
            return -1
        n = len(view) if step == 0 else min(len(view), step * 7) if step == 1 else 0
        view[:n] = bytes([self.fill]) * n
        return n


def size_of(fdp: Any) -> Any:
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        return fdp.PickValueInList(SPECIAL_SIZES)
    if kind == 1:
        return fdp.PickValueInList([1.0, "8", None, True, b"\x08", [8]])
    return fdp.ConsumeIntInRange(1, 3 * 4096 + 1)


def source_of(fdp: Any) -> Any:
    raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 600))
    kind = fdp.ConsumeIntInRange(0, 6)
    if kind == 0:
        return raw
    if kind == 1:
        return bytearray(raw)
    if kind == 2:
        return memoryview(bytearray(raw))
    if kind == 3:
        return array.array("B", raw)
    if kind == 4:
        return raw.decode("latin-1")
    if kind == 5:
        return memoryview(bytearray(raw))[::2]
    return fdp.PickValueInList([None, 5, [1, 2], object()])


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    before = live_buffers(), metrics.in_use
    what = fdp.ConsumeIntInRange(0, 5)
    made: Any = None
    try:
        if what == 0:
            made = Buffer(size_of(fdp))
        elif what == 1:
            made = Buffer.from_bytes(source_of(fdp))
        elif what == 2:
            made = Buffer.random(size_of(fdp))
        elif what == 3:
            size = size_of(fdp)
            made = Buffer.from_reader(ScriptedReader(fdp), size)
            check(made.size == size, "from_reader size")
        elif what == 4:
            made = Buffer.from_entire_reader(ScriptedReader(fdp))
        else:
            factory = SecretFactory(fdp.PickValueInList(BACKENDS), mlock=fdp.PickValueInList(POLICIES))
            how = fdp.ConsumeIntInRange(0, 2)
            if how == 0:
                src = source_of(fdp)
                made = factory.new(src)
                if isinstance(src, bytearray):
                    check(not any(src), "new() did not wipe a bytearray")
            elif how == 1:
                made = factory.create_random(size_of(fdp))
            else:
                size = size_of(fdp)
                made = factory.from_reader(ScriptedReader(fdp), size)
            check(len(made) >= 1 and made.with_bytes(len) == len(made), "secret length")
    except (SecureMemoryError, ReaderFault):
        check((live_buffers(), metrics.in_use) == before, "a failed constructor left something allocated")
        return
    finally:
        if made is not None:
            if isinstance(made, Buffer):
                check(made.size >= 1 and len(made.view()) == made.size, "buffer size")
                made.destroy()
            else:
                made.close()
    check((live_buffers(), metrics.in_use) == before, "leak after destroy")


if __name__ == "__main__":
    main(test_one_input)
