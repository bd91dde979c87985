"""setuptools hooks: packages, C extensions and the wheel tag; metadata lives in pyproject.toml.

``securememory._native`` is built by cffi (API mode, from ``cffi_modules``);
``securememory._gate`` is a CPython extension (the borrow protocol needs a type
whose methods run without a bytecode boundary between them). Every extension,
these and any added to ``EXTENSIONS``, is compiled against the stable ABI of
Python 3.11, so one ``cp311-abi3`` wheel serves every CPython from 3.11 on.
Free-threaded and debug builds have no stable ABI: there the extensions are
built for that interpreter.

The harness lives in ``harness/`` (``python -m harness`` from the repository)
and is installed as ``securememory.harness``, never under the bare name.
"""

from __future__ import annotations

import sys
import sysconfig

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

LIMITED_API = "0x030B0000"
LIMITED_API_TAG = "cp311"
STABLE_ABI = not sysconfig.get_config_var("Py_GIL_DISABLED") and not hasattr(sys, "gettotalrefcount")

PLATFORM_SOURCE = "windows.c" if sys.platform == "win32" else "posix.c"

EXTENSIONS = [
    Extension(
        "securememory._gate",
        sources=[
            "securememory/gatemodule.c", "securememory/gate.c", f"securememory/memcall/{PLATFORM_SOURCE}",
            "securememory/memcall/reserve.c",
        ],
        include_dirs=["securememory"],
        extra_compile_args=[]
        if sys.platform == "win32"
        else ["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-std=gnu11"],
    ),
]


class StableABIBuildExt(build_ext):
    """build_ext that builds every extension with ``Py_LIMITED_API`` (3.11) and the abi3
    suffix where the interpreter has a stable ABI, and without them where it has none."""

    def finalize_options(self) -> None:
        super().finalize_options()
        for ext in self.extensions:
            macros = [m for m in ext.define_macros if m[0] != "Py_LIMITED_API"]
            ext.define_macros = [*macros, ("Py_LIMITED_API", LIMITED_API)] if STABLE_ABI else macros
            ext.py_limited_api = STABLE_ABI


HARNESS = "securememory.harness"

setup(
    packages=[
        *find_packages(include=["securememory", "securememory.*"]),
        *(f"securememory.{name}" for name in find_packages(include=["harness", "harness.*"])),
    ],
    package_dir={HARNESS: "harness"},
    cffi_modules=["securememory/_build.py:ffibuilder"],
    ext_modules=EXTENSIONS,
    cmdclass={"build_ext": StableABIBuildExt},
    options={"bdist_wheel": {"py_limited_api": LIMITED_API_TAG}} if STABLE_ABI else {},
)
