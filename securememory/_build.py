"""cffi build script for ``securememory._native`` (API mode, compiled by pip install).

The C sources live beside the Python layer that wraps them: ``memcall/`` holds
the page-level syscalls (``posix.c`` or ``windows.c``), ``memguard/`` the guarded
buffer and the crash wipe.
"""

from __future__ import annotations

import sys

from cffi import FFI

PACKAGE = "securememory"
# Headers whose declarations cffi exposes, and the C sources compiled in (paths under PACKAGE).
HEADERS = [
    "memcall/memcall.h",
    "memguard/guard.h",
]
PLATFORM_SOURCE = "memcall/windows.c" if sys.platform == "win32" else "memcall/posix.c"
SOURCES = [
    PLATFORM_SOURCE,
    "memcall/reserve.c",
    "memguard/guard.c",
    "memguard/crash.c",
    "memguard/coffer.c",
]


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


ffibuilder = FFI()
ffibuilder.cdef("\n".join(declarations(f"{PACKAGE}/{h}") for h in HEADERS))
ffibuilder.set_source(
    f"{PACKAGE}._native",
    "".join(f'#include "{h}"\n' for h in HEADERS),
    sources=[f"{PACKAGE}/{c}" for c in SOURCES],
    include_dirs=[PACKAGE],
    libraries=["bcrypt"] if sys.platform == "win32" else [],
    extra_compile_args=[] if sys.platform == "win32" else ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
