"""memguard Stream: operation sequences decoded from the input, checked against a model."""

from __future__ import annotations

from _common import atheris, check, live_buffers, main

from securememory.errors import StreamEmptyError
from securememory.memguard import Stream


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    before = live_buffers()
    chunk = fdp.ConsumeIntInRange(1, 5000)
    stream = Stream(chunk)
    model: list[bytes] = []
    try:
        for _ in range(64):
            if not fdp.remaining_bytes():
                break
            op = fdp.ConsumeIntInRange(0, 4)
            if op == 0:
                payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 9000))
                src = bytearray(payload)
                check(stream.write(src) == len(payload), "write count")
                check(not any(src), "write did not wipe its input")
                model.extend(payload[i : i + chunk] for i in range(0, len(payload), chunk))
            elif op == 1:
                n = fdp.ConsumeIntInRange(0, 10000)
                buf = bytearray(n)
                got = stream.readinto(buf)
                expect = bytearray()
                while len(expect) < n and model:
                    front = model.pop(0)
                    take = min(len(front), n - len(expect))
                    expect += front[:take]
                    if take < len(front):
                        model.insert(0, front[take:])
                check(got == len(expect) and buf[:got] == expect, "readinto returned wrong bytes")
            elif op in (2, 3):
                want = b"".join(model) if op == 3 else (model[0] if model else b"")
                try:
                    out = stream.flush() if op == 3 else stream.next()
                except StreamEmptyError:
                    check(not model, "empty error on a non-empty stream")
                    continue
                try:
                    check(bytes(out.view()) == want, "next/flush returned wrong bytes")
                finally:
                    out.destroy()
                if op == 3:
                    model.clear()
                else:
                    model.pop(0)
            else:
                try:
                    stream.write(fdp.ConsumeUnicode(4))
                    check(False, "write accepted a str")
                except TypeError:
                    pass
            check(stream.size == sum(map(len, model)), "size disagrees with the model")
    finally:
        stream.destroy()
    check(live_buffers() == before, f"buffers leaked: {before} -> {live_buffers()}")


if __name__ == "__main__":
    main(test_one_input)
