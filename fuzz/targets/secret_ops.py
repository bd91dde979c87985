"""Secret borrow / close / reader sequences on every backend, against a model."""

from __future__ import annotations

import contextlib
from typing import Any

from _common import atheris, check, live_buffers, main

from securememory import BorrowError, SecretClosedError, SecretFactory, ViewEscapedError, metrics

FACTORIES = {b: SecretFactory(b) for b in ("protected", "enclave", "legacy")}
# Every escape keeps its pages reserved for the life of the process (so a
# stale view can never read newer data): escapes are capped per run so the
# fuzzer's millions of iterations do not exhaust the address space.
MAX_ESCAPES = 2000
escapes = [0]


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    before = live_buffers(), metrics.in_use
    content = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 300)) or b"\x01"
    secret = FACTORIES[fdp.PickValueInList(list(FACTORIES))].new(bytearray(content))
    readers: list[tuple[Any, list[int]]] = []
    closed = False
    try:
        for _ in range(32):
            if not fdp.remaining_bytes():
                break
            op = fdp.ConsumeIntInRange(0, 7)
            try:
                if op == 0:
                    check(secret.with_bytes(bytes) == content, "with_bytes content")
                elif op == 1:
                    depth = fdp.ConsumeIntInRange(1, 4)
                    views = [secret.borrow() for _ in range(depth)]
                    got = [bytes(cm.__enter__()) for cm in views]
                    for cm in reversed(views):
                        cm.__exit__(None, None, None)
                    check(got == [content] * depth, "nested borrow content")
                elif op == 2:
                    readers.append((secret.reader(), [0]))
                elif op == 3 and readers:
                    reader, pos = readers[fdp.ConsumeIntInRange(0, len(readers) - 1)]
                    n = fdp.ConsumeIntInRange(0, 400)
                    buf = bytearray(n)
                    got_n = reader.readinto(buf)
                    check(bytes(buf[:got_n]) == content[pos[0] : pos[0] + n], "reader bytes")
                    pos[0] += got_n
                elif op == 4:
                    secret.close()
                    closed = True
                elif op == 5:
                    try:
                        secret.with_bytes(lambda v: secret.close())
                        check(False, "close inside a borrow returned")
                    except BorrowError:
                        pass
                elif op == 6 and escapes[0] < MAX_ESCAPES:
                    escapes[0] += 1
                    kept: list[Any] = []
                    try:
                        start = fdp.ConsumeIntInRange(0, len(content))
                        secret.with_bytes(lambda v, kept=kept, start=start: kept.append(v[start:]))
                        check(False, "escaped slice not detected")
                    except ViewEscapedError:
                        pass
                    kept.clear()
                else:
                    with contextlib.suppress(ZeroDivisionError):
                        secret.with_bytes(lambda v: 1 // 0)
                check(closed or secret.borrows == 0, "borrow count leaked")
            except SecretClosedError:
                check(closed, "SecretClosedError on an open secret")
            check(secret.closed == closed, "closed flag")
    finally:
        secret.close()
    check((live_buffers(), metrics.in_use) == before, "leak after close")


if __name__ == "__main__":
    main(test_one_input)
