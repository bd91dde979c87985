"""The Python layer on a Windows CPython: run by .ci/windows.sh under wine.

Imports every module, then uses the public API the way an application would,
on the backends Windows supports, and checks that what Windows lacks raises
UnsupportedError. Prints one line per check and "N passed, M failed"; exits 1
on any failure. Usage: python smoke.py [SITE] (SITE is put first on sys.path).
"""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys
import traceback
from collections.abc import Callable

if len(sys.argv) > 1:
    sys.path.insert(0, sys.argv[1])

import securememory
from securememory import SecretFactory, Stream, catch_interrupt, catch_signal, memcall, memguard
from securememory.errors import InvalidArgumentError, SecretClosedError, UnsupportedError

results = {"passed": 0, "failed": 0}


def check(what: str, fn: Callable[[], object]) -> None:
    try:
        ok = fn()
    except Exception:
        ok = False
        traceback.print_exc()
    print(("ok - " if ok else "not ok - ") + what)
    results["passed" if ok else "failed"] += 1


def raises(error: type[BaseException], fn: Callable[[], object]) -> bool:
    try:
        fn()
    except error:
        return True
    return False


def import_all() -> bool:
    # _build needs cffi's compiler side; testing is a pytest plugin (needs pytest)
    skip = {"securememory._build", "securememory.testing"}
    for module in pkgutil.walk_packages(securememory.__path__, "securememory."):
        if module.name not in skip:
            importlib.import_module(module.name)
    return sys.platform == "win32"


def round_trip(backend: str) -> bool:
    factory = SecretFactory(backend=backend)
    secret = factory.new(bytearray(b"correct horse battery staple"))
    with secret.borrow() as view:
        same = bytes(view) == b"correct horse battery staple"
    key = factory.create_random(32)
    length = key.with_bytes(len)
    equal = secret.equals(factory.new(bytearray(b"correct horse battery staple")))
    secret.close()
    key.close()
    return same and length == 32 and equal and raises(SecretClosedError, lambda: secret.with_bytes(len))


def buffer_layout() -> bool:
    page = memcall.page_size()
    with memguard.Buffer.from_bytes(bytearray(b"x" * 40)) as buf:
        buf.freeze()
        frozen = not buf.mutable
        buf.melt()
        return page >= 4096 and buf.size == 40 and frozen and bytes(buf.view()) == b"x" * 40


def stream_round_trip() -> bool:
    stream = Stream()
    data = bytearray(range(256)) * 100
    stream.write(bytearray(data))
    out = bytearray(len(data))
    return stream.readinto(out) == len(data) and out == data


check("every module imports on Windows", import_all)
for backend in ("protected", "enclave"):
    check(f"{backend}: new, borrow, create_random, equals, close", lambda b=backend: round_trip(b))
check("guarded Buffer: from_bytes, freeze, melt, view", buffer_layout)
check("Stream: write then readinto", stream_round_trip)
check("empty secret: InvalidArgumentError", lambda: raises(InvalidArgumentError, lambda: SecretFactory().new(b"")))
check("catch_signal refuses SIGSEGV", lambda: raises(InvalidArgumentError, lambda: catch_signal(None, signal.SIGSEGV)))
check("catch_interrupt takes SIGINT and SIGTERM", lambda: catch_interrupt() is None)
check("crash wipe installed with the first buffer", lambda: memguard.crash_wipe_installed())
check("disable_core_dumps raises UnsupportedError", lambda: raises(UnsupportedError, memcall.disable_core_dumps))
check("capabilities() raises UnsupportedError (no rlimits)", lambda: raises(UnsupportedError, memcall.capabilities))
print(f"{results['passed']} passed, {results['failed']} failed")
sys.exit(1 if results["failed"] else 0)
