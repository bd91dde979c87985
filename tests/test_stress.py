"""Stress: 8 threads borrowing, 2 closing, 1 purging and 1 forking, on every backend.

Each secret holds its own id repeated, so a borrower can tell its secret from
any other: it must only ever see its own bytes or zeros (a purge in flight).
Forked children must see their inherited secrets refused and their pages
zeroed. At the end a value the child never held as a Python object (read from
a file the parent wrote) must be nowhere in the child's memory.
"""

from __future__ import annotations

import contextlib
import os
import random
import struct
import threading
import time
import warnings
from typing import Any

import pytest
from conftest import run_ok

from harness import child, memory, raw
from harness.scenarios.copies import _file, _scan, _Values
from securememory import ForkedError, SecretClosedError, SecretFactory
from securememory.memguard import purge

SECONDS = float(os.environ.get("SECUREMEMORY_STRESS_SECONDS", "60"))
SIZE = 48
POOL = 24


def _pattern(ident: int) -> bytearray:
    return bytearray(struct.pack("<Q", ident) * (SIZE // 8))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["protected", "enclave", "legacy"])
def test_borrowers_closers_purger_and_forker_together(backend: str) -> None:
    values = _Values()

    def body(ctx: child.Context) -> None:
        factory = SecretFactory(backend)
        factory.from_file(_file(ctx, "canary"))  # purged with the rest
        ids = iter(range(1, 1 << 62))
        lock = threading.Lock()
        pool: list[tuple[int, Any]] = []
        where: dict[int, int] = {}  # id -> data address (protected, legacy), for the forked children

        def make(i: int) -> Any:
            secret = factory.new(_pattern(i))
            if backend != "enclave":
                with contextlib.suppress(SecretClosedError):  # purged as soon as made
                    where[i] = secret.with_bytes(raw.address_of)
            return secret

        for _ in range(POOL):
            i = next(ids)
            pool.append((i, make(i)))
        stop = time.monotonic() + SECONDS
        tally: dict[str, int] = {"borrows": 0, "closed": 0, "purges": 0, "forks": 0}
        problems: list[str] = []

        def note(key: str) -> None:
            with lock:
                tally[key] += 1

        def borrower() -> None:
            rng = random.Random()
            while time.monotonic() < stop:
                ident, secret = pool[rng.randrange(POOL)]
                expected = struct.pack("<Q", ident)

                def check(view: memoryview, expected: bytes = expected, ident: int = ident) -> None:
                    head = view[:8].tobytes()
                    if head not in (expected, bytes(8)):
                        problems.append(f"secret {ident} showed another secret's bytes")

                try:
                    if rng.random() < 0.5:
                        secret.with_bytes(check)
                    else:
                        with secret.borrow() as view:
                            check(view)
                    note("borrows")
                except SecretClosedError:
                    note("closed")
                except Exception as e:
                    problems.append(f"borrow raised {type(e).__name__}: {e}")

        def refill(slot: int) -> None:
            i = next(ids)
            pool[slot] = (i, make(i))

        def closer() -> None:
            rng = random.Random()
            while time.monotonic() < stop:
                slot = rng.randrange(POOL)
                try:
                    pool[slot][1].close()
                    refill(slot)
                except Exception as e:
                    problems.append(f"close raised {type(e).__name__}: {e}")

        def purger() -> None:
            while time.monotonic() < stop:
                time.sleep(0.2)
                try:
                    purge()
                    note("purges")
                    for slot in range(POOL):
                        refill(slot)
                except Exception as e:
                    problems.append(f"purge raised {type(e).__name__}: {e}")

        def forker() -> None:
            while time.monotonic() < stop:
                time.sleep(0.3)
                snapshot = list(pool)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # this test's own fork
                    pid = os.fork()
                if pid == 0:
                    ok = True
                    for ident, secret in snapshot:
                        try:
                            secret.with_bytes(len)
                            ok = False
                        except (ForkedError, SecretClosedError):
                            pass
                        except BaseException:
                            ok = False
                        # this child's copy of the pages: zeros (wiped at fork), or gone
                        got = memory.read(os.getpid(), where[ident], 8) if ident in where else None
                        if got not in (None, bytes(8)):
                            ok = False
                    os._exit(0 if ok else 1)
                _, status = os.waitpid(pid, 0)
                note("forks")
                if status != 0:
                    problems.append(f"forked child saw an inherited secret (status {status:#x})")

        threads = [threading.Thread(target=borrower) for _ in range(8)]
        threads += [threading.Thread(target=closer) for _ in range(2)]
        threads += [threading.Thread(target=purger), threading.Thread(target=forker)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 60)
        hung = [t.name for t in threads if t.is_alive()]
        ctx.report({"hung": hung, "problems": problems[:5], "n_problems": len(problems), **tally})
        purge()
        for _ident, secret in pool:
            secret.close()
        _scan(ctx, "canary")

    try:
        out = run_ok(body, observe=values.observe, timeout=SECONDS + 180)
    finally:
        values.dir.cleanup()
    report = out.reports[0]
    assert report["hung"] == [], report
    assert report["n_problems"] == 0, report
    assert report["borrows"] > 1000 and report["purges"] >= 1 and report["forks"] >= 1, report
    assert out.reports[-1] == {"canary": 0}, out.reports
