"""setuptools hook for the C extensions; metadata lives in pyproject.toml.

``securememory._native`` is built by cffi (API mode); ``securememory._gate`` is
a CPython extension on the limited API (the borrow protocol needs a type whose
methods run without a bytecode boundary between them).
"""

import sys

from setuptools import Extension, setup

PLATFORM_SOURCE = "windows.c" if sys.platform == "win32" else "posix.c"

gate = Extension(
    "securememory._gate",
    sources=["securememory/gatemodule.c", "securememory/gate.c", f"securememory/memcall/{PLATFORM_SOURCE}"],
    include_dirs=["securememory"],
    define_macros=[("Py_LIMITED_API", "0x030B0000")],
    py_limited_api=True,
    extra_compile_args=[]
    if sys.platform == "win32"
    else ["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-std=gnu11"],
)

setup(cffi_modules=["securememory/_build.py:ffibuilder"], ext_modules=[gate])
