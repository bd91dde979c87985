"""cffi build script (API mode) for the floor module ``_floor``.

``python benchmarks/floor/_build.py [OUTDIR]`` compiles it into OUTDIR
(default ``benchmarks/floor_build/<hash>``); the benchmarks call
:func:`benchmarks.floor.load`, which does the same on demand.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "floor.c"
HEADER = HERE / "floor.h"

# The header's declarations, minus guards and includes, are the cdef.
CDEF = "\n".join(
    line
    for line in HEADER.read_text(encoding="ascii").splitlines()
    if not line.startswith(("#ifndef", "#endif", "#include", "#define BENCHMARKS_"))
)


def make_builder() -> FFI:
    ffibuilder = FFI()
    ffibuilder.cdef(CDEF)
    ffibuilder.set_source(
        "_floor",
        '#include "floor.h"\n',
        sources=[str(SOURCE)],
        include_dirs=[str(HERE)],
        extra_compile_args=["-O2", "-Wall", "-Wextra", "-std=gnu11"],
    )
    return ffibuilder


ffibuilder = make_builder()

if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent.parent))
    from benchmarks.floor import build

    out = build(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(out)
