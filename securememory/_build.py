"""cffi build script for ``securememory._native`` (API mode, compiled by pip install).

The C sources live beside the Python layer that wraps them: ``memcall/`` holds
the page-level syscalls (``posix.c`` or ``windows.c``), ``memguard/`` the guarded
buffer and the crash wipe.
"""

from __future__ import annotations

import sys

from cffi import FFI

HEADERS = ["securememory/memcall/memcall.h", "securememory/memguard/guard.h"]


def declarations(path: str) -> str:
    """A header's declarations for cffi: the header minus guards and includes."""
    with open(path, encoding="ascii") as f:
        lines = f.read().splitlines()
    keep = [
        line
        for line in lines
        if not line.startswith(("#ifndef", "#endif", "#include", "#define SECUREMEMORY_"))
    ]
    return "\n".join(keep)


PLATFORM_SOURCE = "windows.c" if sys.platform == "win32" else "posix.c"

ffibuilder = FFI()
ffibuilder.cdef("\n".join(declarations(h) for h in HEADERS))
ffibuilder.set_source(
    "securememory._native",
    '#include "memcall/memcall.h"\n#include "memguard/guard.h"\n',
    sources=[
        f"securememory/memcall/{PLATFORM_SOURCE}",
        "securememory/memguard/guard.c",
        "securememory/memguard/crash.c",
        "securememory/memguard/coffer.c",
    ],
    include_dirs=["securememory"],
    libraries=["bcrypt"] if sys.platform == "win32" else [],
    extra_compile_args=[] if sys.platform == "win32" else ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
