"""Locked memory per secret (VmLck) and live secrets reachable under RLIMIT_MEMLOCK 64 KiB.

Both are measured in a forked child: locked pages are not inherited across
fork(), so the child's VmLck starts from what the child itself locks
(secrets, scratch and the session key).
"""

from __future__ import annotations

import os
import struct
import sys
import traceback
from collections.abc import Callable

from securememory.memcall.system import locked_bytes as vmlck_bytes

from ._common import BACKENDS, MEMLOCK_LIMIT, REACHABLE_CAP, noop, pattern


def _in_child(work: Callable[[], int]) -> float:
    """Run ``work`` in a forked child; its int result, or NaN when it failed."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            value = work()
            os.write(w, struct.pack("<q", value))
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        payload = f.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or len(payload) != 8:
        return float("nan")
    return float(struct.unpack("<q", payload)[0])


def _locked_after(backend: str, count: int) -> int:
    from securememory import SecretFactory

    factory = SecretFactory(backend=backend, mlock="require")
    data = pattern(32)
    secrets = [factory.new(data) for _ in range(count)]
    secrets[0].with_bytes(noop)
    secrets[-1].with_bytes(noop)
    locked = vmlck_bytes()
    for s in secrets:
        s.close()
    return locked


def _reachable(backend: str) -> int:
    from securememory import MemoryLockError, SecretFactory
    from securememory.harness import restrict

    restrict.apply(restrict.Restriction(MEMLOCK_LIMIT))
    factory = SecretFactory(backend=backend, mlock="require")
    data = pattern(32)
    secrets = []
    try:
        while len(secrets) < REACHABLE_CAP:
            secrets.append(factory.new(data))
        secrets[-1].with_bytes(noop)
    except MemoryLockError:
        pass
    return len(secrets)


class LockedBytes:
    """VmLck, in bytes, of a child holding ``count`` live 32-byte secrets after
    borrowing the first and the last once; per secret = value / count."""

    params = (BACKENDS, [10, 10_000])
    param_names = ("backend", "count")
    unit = "bytes"
    timeout = 300

    def track_locked_bytes(self, backend: str, count: int) -> float:
        return _in_child(lambda: _locked_after(backend, count))


class ReachableUnderLimit:
    """Live 32-byte secrets a child without CAP_IPC_LOCK can hold under
    RLIMIT_MEMLOCK 64 KiB before MemoryLockError (stops at REACHABLE_CAP)."""

    params = BACKENDS
    param_names = ("backend",)
    unit = "secrets"
    timeout = 300

    def track_secrets_under_64KiB(self, backend: str) -> float:
        return _in_child(lambda: _reachable(backend))
