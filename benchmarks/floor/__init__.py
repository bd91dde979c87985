"""The C floor for the benchmarks, compiled on first use.

:func:`load` returns the cffi ``lib`` of the ``_floor`` module, building it
(API mode, needs a C compiler, as installing securememory does) into
``benchmarks/floor_build/<hash of the sources>/`` when no build of the current
sources exists. The folder is ignored by git; deleting it forces a rebuild.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
BUILD_ROOT = HERE.parent / "floor_build"
_SOURCES = ("floor.c", "floor.h", "_build.py")

_module: ModuleType | None = None


def _digest() -> str:
    h = hashlib.sha256()
    for name in _SOURCES:
        h.update(name.encode())
        h.update((HERE / name).read_bytes())
    return h.hexdigest()[:16]


def _find(outdir: Path) -> Path | None:
    for path in sorted(outdir.glob("_floor*.so")):
        return path
    return None


def build(outdir: Path | None = None) -> Path:
    """Compile ``_floor`` into ``outdir`` unless already there; returns the .so path."""
    outdir = outdir or BUILD_ROOT / _digest()
    outdir.mkdir(parents=True, exist_ok=True)
    with open(outdir / ".lock", "w") as lockfile:
        fcntl.flock(lockfile, fcntl.LOCK_EX)
        found = _find(outdir)
        if found is not None:
            return found
        from ._build import make_builder

        cwd = os.getcwd()
        try:
            path = make_builder().compile(tmpdir=str(outdir / "tmp"), verbose=False)
        finally:
            os.chdir(cwd)
        target = outdir / Path(path).name
        os.replace(path, target)
        return target


def load() -> Any:
    """The floor's cffi ``lib`` (built on first use)."""
    global _module
    if _module is None:
        path = build()
        spec = importlib.util.spec_from_file_location("_floor", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _module = module
    return _module.lib


def ffi() -> Any:
    """The floor's cffi ``ffi`` object."""
    load()
    assert _module is not None
    return _module.ffi
