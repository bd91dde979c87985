"""Peak RSS of a 64 MiB Stream write + read, measured in a fresh interpreter.

``python benchmarks/stream_rss.py memguard|securememory [BYTES]`` prints one
JSON object: ``baseline`` and ``peak`` resident bytes, their difference
``above_baseline``, ``data`` (the bytes written, 64 MiB unless given), and
``method``.

Run it in a fresh interpreter: in a process whose heap already holds freed
memory, the destination can be carved from pages that are resident already
and the figure comes out low.

How: the child imports securememory, makes the session key with a small
write + read, and builds the 64 MiB input in place (a bytearray filled in
slices, handed to the stream as a read-only memoryview, so nothing wipes it
and no temporary copy inflates the peak). That state is the baseline: the
caller's data and the library's fixed cost. The high-water mark is then reset
to the current RSS (``5`` written to ``/proc/self/clear_refs``; ``VmHWM`` in
``/proc/self/status`` reads as ``VmRSS`` after it), the stream is written and
read back into a new 64 MiB bytearray (the reader's destination is part of
what write + read costs), and ``VmHWM`` is read again. Where clear_refs
cannot be written, ``getrusage(RUSAGE_SELF).ru_maxrss`` before and after is
used instead (``method`` says which); the input is built without temporaries
so that the maximum before the stream starts is its baseline.

The least a sealed-chunk stream can cost is about twice the data: the sealed
copy (data plus 28 bytes a chunk) until the last chunk is read, plus the
destination.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._common import STREAM_TOTAL, pattern  # noqa: E402

BLOCK = 1 << 16


def _status(field: str) -> int:
    """A ``/proc/self/status`` memory field in bytes (-1 when unreadable)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _status("VmHWM") > 0


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _stream(kind: str) -> Any:
    if kind == "memguard":
        from securememory.memguard import Stream as ChunkStream

        return ChunkStream()
    if kind == "securememory":
        from securememory import Stream

        return Stream()
    raise SystemExit(f"unknown stream kind {kind!r} (memguard or securememory)")


def _input(size: int) -> memoryview:
    """``size`` bytes of the benchmark pattern, built in place (no temporary copy)."""
    data = bytearray(size)
    view = memoryview(data)
    block = pattern(BLOCK)
    for offset in range(0, size, BLOCK):
        end = min(offset + BLOCK, size)
        view[offset:end] = block[: end - offset]
    return view.toreadonly()


def _write_read(kind: str, data: memoryview) -> int:
    stream = _stream(kind)
    stream.write(data)
    out = bytearray(len(data))
    view = memoryview(out)
    done = 0
    while done < len(out):
        n = stream.readinto(view[done:])
        if not n:
            break
        done += n
    return done


def measure(kind: str, size: int = STREAM_TOTAL) -> dict[str, Any]:
    warm = _input(BLOCK)
    if _write_read(kind, warm) != BLOCK:  # session key, imports, first-use allocations
        raise RuntimeError("warm-up read back short")
    data = _input(size)
    gc.collect()
    if _reset_peak():
        method = "VmHWM reset by /proc/self/clear_refs"
        baseline = _status("VmHWM")
        done = _write_read(kind, data)
        peak = _status("VmHWM")
    else:
        method = "getrusage ru_maxrss"
        baseline = _maxrss()
        done = _write_read(kind, data)
        peak = _maxrss()
    if done != size:
        raise RuntimeError(f"stream returned {done} of {size} bytes")
    return {
        "kind": kind,
        "data": size,
        "baseline": baseline,
        "peak": peak,
        "above_baseline": peak - baseline,
        "method": method,
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (1, 2) or (len(args) == 2 and not args[1].isdigit()):
        print("usage: " + __doc__.splitlines()[2].strip("`").split("``")[0], file=sys.stderr)
        return 2
    print(json.dumps(measure(args[0], int(args[1]) if len(args) == 2 else STREAM_TOTAL)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
