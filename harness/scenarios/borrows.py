"""Borrows at the edges: escaped views, purge from another thread, Ctrl-C inside a
borrow, and a stack overflow on a thread that holds secrets."""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import functools
import os
import signal
import sys
import threading
import time
from typing import Any

from securememory import SecretFactory, ViewEscapedError
from securememory.memguard import Buffer, purge

from .. import child, memory, raw
from ..scenario import Environment, Result, scenario, unsupported, verdict
from .copies import _file, _scan, _Values

SECRET = b"borrowed secret bytes, 48 of them, for the test"
NEWER = b"N"
RACE_SIZE = 64 << 20  # wiping it takes milliseconds: long enough for a borrow to end meanwhile


def _perms(address: int) -> str:
    """The permissions /proc/self/maps shows for the mapping holding ``address``."""
    with open("/proc/self/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            lo, hi = (int(x, 16) for x in span.split("-"))
            if lo <= address < hi:
                return perms
    return "unmapped"


def _map_over(address: int) -> bool:
    """Map a page of NEWER bytes at ``address`` unless something is mapped there
    (MAP_FIXED_NOREPLACE): what any later allocation could do with a freed range."""
    page = os.sysconf("SC_PAGE_SIZE")
    start = address - address % page
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    got = libc.mmap(start, page, 3, 0x22 | 0x100000, -1, 0)  # RW, PRIVATE|ANONYMOUS|FIXED_NOREPLACE
    if got is None or got == ctypes.c_void_p(-1).value:
        return False
    ctypes.memset(got, NEWER[0], page)
    return True


def escape_quarantine(env: Environment, backend: str = "protected", name: str = "escape_quarantine") -> Result:
    """A slice escapes a borrow; after close() its range must stay reserved, so no
    newer mapping or borrow can use it and the stale slice faults instead of reading it."""

    def fn(ctx: child.Context) -> None:
        faulthandler.disable()
        factory = SecretFactory(backend)
        secret = factory.new(bytearray(SECRET))
        kept: list[memoryview] = []
        with contextlib.suppress(ViewEscapedError):
            secret.with_bytes(lambda v: kept.append(v[:]))
        secret.close()
        _map_over(raw.address_of(kept[0]))
        filler = SecretFactory(backend, mlock="disabled")  # fits any memlock limit
        newer = [filler.new(bytearray(NEWER * len(SECRET))) for _ in range(200)]
        newer.append(factory.new(bytearray(NEWER * len(SECRET))))  # the escaped secret's mlock policy
        # read inside a newer secret's borrow: memory reused for it is readable now
        newer[-1].with_bytes(lambda _: ctx.report(bytes(kept[0][:4]).hex()))  # must fault first
        del newer

    outcome = child.run(fn, env=env.child_env, timeout=30)
    ok = outcome.signal == signal.SIGSEGV and outcome.reports == []
    seen = f", read {outcome.reports}" if outcome.reports else ""
    return verdict(name, ok, "killed by SIGSEGV", outcome.describe() + seen + env.note)


def _ended_during_wipe(backend: str) -> bool:
    """A borrow that ends while purge() wipes its pages: no fault, and NO_ACCESS after."""
    big = SecretFactory(backend, mlock="disabled").new(bytearray(b"\xff") * RACE_SIZE)
    inside, where = threading.Event(), []

    def borrower() -> None:
        with big.borrow() as view:
            where.append(raw.address_of(view))
            inside.set()
            while view[0]:  # until purge() has begun wiping: it has most of 64 MiB to go
                time.sleep(0)
            view.release()

    t = threading.Thread(target=borrower)
    t.start()
    inside.wait()
    purge()
    t.join()
    return _perms(where[0]) == "---p"


def purge_in_flight(env: Environment, backend: str = "protected", name: str = "purge_in_flight") -> Result:
    """purge() while another thread borrows: the borrower then reads zeros (never a
    newer secret), its exit harms nothing, and the secret is nowhere at exit. A
    borrow that ends while purge() wipes its pages neither faults the wipe nor
    leaves them readable."""

    values = _Values()

    def fn(ctx: child.Context) -> None:
        factory = SecretFactory(backend)
        secret = factory.from_file(_file(ctx, "secret"))  # a value only the parent knows
        inside, purged, seen, where = threading.Event(), threading.Event(), [], []

        def borrower() -> None:
            with secret.borrow() as view:
                where.append(raw.address_of(view))
                inside.set()
                purged.wait()
                seen.append(view.tobytes() == bytes(len(view)))

        t = threading.Thread(target=borrower)
        t.start()
        inside.wait()
        purge()
        filler = SecretFactory(backend, mlock="disabled")  # fits any memlock limit
        newer = [filler.new(bytearray(NEWER * len(SECRET))) for _ in range(64)]
        purged.set()
        t.join()
        intact = all(s.with_bytes(bytes) == NEWER * len(SECRET) for s in newer)
        sealed_after = _perms(where[0]) == "---p"
        ctx.report({"zeros": seen == [True], "newer_intact": intact, "closed": secret.closed,
                    "sealed_after": sealed_after, "ended_during_wipe": _ended_during_wipe(backend)})
        _scan(ctx, "secret")

    try:
        outcome = child.run(fn, observe=values.observe, env=env.child_env, timeout=30)
    finally:
        values.dir.cleanup()
    report = outcome.reports[0] if outcome.reports else {}
    copies = outcome.reports[1]["secret"] if len(outcome.reports) > 1 else None
    want = {"zeros": True, "newer_intact": True, "closed": True, "sealed_after": True, "ended_during_wipe": True}
    ok = outcome.exit_code == 0 and report == want and copies == 0
    return verdict(
        name,
        ok,
        "stale view reads zeros, newer secrets intact, 0 copies",
        f"{outcome.describe()}, {report}, {copies} copies" + env.note,
    )


def interrupted_borrows(env: Environment) -> Result:
    """Real SIGINTs land inside borrows on every backend, thousands of times: after
    each KeyboardInterrupt no borrow is counted and no page is readable."""

    def fn(ctx: child.Context) -> None:
        libc_write = raw.readable
        hits = leaks = 0
        armed = [False]

        def on_sigint(signum: int, frame: Any) -> None:
            if armed[0]:
                armed[0] = False
                raise KeyboardInterrupt

        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
        # The enclave's rounds are more: its borrows also take the Coffer's lock,
        # whose with statement has a window of a few instructions on CPython 3.14.
        for backend, rounds in (("protected", 700), ("enclave", 3000), ("legacy", 700)):
            secret = SecretFactory(backend).new(bytearray(SECRET))
            addr = None if backend == "enclave" else secret.with_bytes(raw.address_of)
            for i in range(rounds):
                armed[0] = True
                try:
                    signal.setitimer(signal.ITIMER_REAL, 0.00002 + (i % 40) * 0.000004)
                    for _ in range(40):
                        with secret.borrow() as view:
                            len(view)
                        secret.with_bytes(len)
                except KeyboardInterrupt:
                    hits += 1
                armed[0] = False
                signal.setitimer(signal.ITIMER_REAL, 0.0)
                if secret.borrows or (addr is not None and libc_write(addr)):
                    leaks += 1
            secret.close()
        ctx.report({"hits": hits, "leaks": leaks})

    outcome = child.run(fn, env=env.child_env, timeout=120)
    report = outcome.reports[0] if outcome.reports else {}
    ok = outcome.exit_code == 0 and report.get("leaks") == 0 and report.get("hits", 0) >= 100
    return verdict(
        "interrupted_borrows",
        ok,
        ">= 100 interrupts inside borrows, 0 counted or readable after",
        f"{outcome.describe()}, {report}" + env.note,
    )


MARKER = bytes.fromhex("57ac0e57ac0e57ac0e57ac0e57ac0e57ac0e57ac0e57ac0e57ac0e57ac0e57ac")


def stack_overflow_wipe(env: Environment) -> Result:
    """A thread holding a buffer overflows its stack: the crash wipe still runs
    (on that thread's alternate signal stack) before the process dies."""
    where: dict[str, Any] = {}

    def fn(ctx: child.Context) -> None:
        faulthandler.disable()
        sys.setrecursionlimit(1_000_000)
        threading.stack_size(256 * 1024)
        # The main thread's first buffer installs the crash handler (and gives the
        # main thread an alternate stack): the overflowing thread needs its own.
        Buffer(1).destroy()

        def deep(n: int) -> int:
            return sum(map(deep, [n + 1]))  # every level goes through C

        def thread() -> None:
            b = Buffer.from_bytes(bytearray(MARKER))
            ctx.checkpoint(b.address)
            try:
                deep(0)
            except RecursionError:
                ctx.report("guarded")  # the interpreter stopped the recursion before the stack ran out
            b.destroy()

        t = threading.Thread(target=thread)
        t.start()
        t.join()

    def observe(pid: int, addr: int) -> None:
        where["addr"] = addr
        where["before"] = memory.read(pid, addr, len(MARKER))

    outcome = child.run(
        fn, observe=observe, at_exit=lambda pid: memory.read(pid, where["addr"], len(MARKER)), env=env.child_env
    )
    if outcome.reports == ["guarded"]:
        return unsupported(
            "stack_overflow_wipe",
            "killed by SIGSEGV, buffer wiped at death",
            "this interpreter guards its C stack: Python code cannot overflow it (RecursionError)",
        )
    at_death = outcome.observations[-1] if outcome.observations else None
    ok = outcome.signal == signal.SIGSEGV and where.get("before") == MARKER and at_death == bytes(len(MARKER))
    state = "wiped" if at_death == bytes(len(MARKER)) else "NOT wiped" if at_death == MARKER else repr(at_death)
    return verdict(
        "stack_overflow_wipe",
        ok,
        "killed by SIGSEGV, buffer wiped at death",
        f"{outcome.describe()}, buffer {state} at death" + env.note,
    )


scenario("escape_quarantine", "an escaped view faults after close; it never reads a newer secret")(escape_quarantine)
for _backend in ("enclave", "legacy"):
    scenario(f"escape_quarantine_{_backend}", f"escape_quarantine on the {_backend} backend")(
        functools.partial(escape_quarantine, backend=_backend, name=f"escape_quarantine_{_backend}")
    )
scenario("purge_in_flight", "purge during a borrow: the stale view reads zeros, never a newer secret")(
    purge_in_flight
)
scenario("purge_in_flight_legacy", "purge_in_flight on the legacy backend (its pages are quarantined by memcall)")(
    functools.partial(purge_in_flight, backend="legacy", name="purge_in_flight_legacy")
)
scenario("purge_in_flight_enclave", "purge_in_flight on the enclave backend (its scratch is quarantined)")(
    functools.partial(purge_in_flight, backend="enclave", name="purge_in_flight_enclave")
)
scenario("interrupted_borrows", "Ctrl-C inside borrows leaves nothing counted or readable")(interrupted_borrows)
scenario("stack_overflow_wipe", "a stack overflow still wipes every buffer before death")(stack_overflow_wipe)


def borrow_protocol(env: Environment) -> Result:
    """A slice kept past its borrow raises ViewEscapedError on every backend, and
    close() from another thread returns only after the borrow in flight ends."""

    def fn(ctx: child.Context) -> None:
        report: dict[str, Any] = {}
        for backend in ("protected", "enclave", "legacy"):
            secret = SecretFactory(backend).new(bytearray(SECRET))
            kept: list[memoryview] = []

            def keep_slice(view: memoryview, kept: list[memoryview] = kept) -> None:
                kept.append(view[1:])

            try:
                secret.with_bytes(keep_slice)
                report[f"{backend} escape"] = "not detected"
            except ViewEscapedError:
                report[f"{backend} escape"] = "detected"
            kept.clear()
            try:  # the same rule for create(fill): a slice kept by the fill is refused
                SecretFactory(backend).create(len(SECRET), keep_slice).close()
                report[f"{backend} fill escape"] = "not detected"
            except ViewEscapedError:
                report[f"{backend} fill escape"] = "detected"
            kept.clear()
            inside = threading.Event()
            order: list[str] = []

            def borrower(secret: Any = secret, inside: threading.Event = inside, order: list[str] = order) -> None:
                with secret.borrow() as view:
                    inside.set()
                    time.sleep(0.2)
                    order.append("read" if view.tobytes() == SECRET else "wrong bytes")

            t = threading.Thread(target=borrower)
            t.start()
            inside.wait()
            secret.close()
            order.append("closed")
            t.join()
            report[f"{backend} close"] = ",".join(order)
        ctx.report(report)

    outcome = child.run(fn, env=env.child_env, timeout=60)
    report = outcome.reports[0] if outcome.reports else {}
    want = {}
    for backend in ("protected", "enclave", "legacy"):
        want[f"{backend} escape"] = "detected"
        want[f"{backend} fill escape"] = "detected"
        want[f"{backend} close"] = "read,closed"
    ok = outcome.exit_code == 0 and report == want
    return verdict(
        "borrow_protocol",
        ok,
        "escapes detected; close() waits for the borrow in flight",
        f"{outcome.describe()}, {report}" + env.note,
    )


scenario("borrow_protocol", "escapes are detected; close() waits for borrows in flight")(borrow_protocol)


def crash_reseal(env: Environment) -> Result:
    """With the crash wipe as the only handler, a write to a frozen buffer still
    kills the process: the wipe leaves the pages sealed, so the write faults again."""

    def fn(ctx: child.Context) -> None:
        faulthandler.disable()  # no other handler: the crash wipe alone decides
        buf = Buffer(32)
        buf.freeze()
        raw.poke(buf.address)
        ctx.report("the write went through after the crash wipe")

    outcome = child.run(fn, env=env.child_env, timeout=30)
    ok = outcome.signal == signal.SIGSEGV and outcome.reports == []
    seen = f", {outcome.reports[0]}" if outcome.reports else ""
    return verdict("crash_reseal", ok, "killed by SIGSEGV", outcome.describe() + seen + env.note)


scenario("crash_reseal", "after the crash wipe the faulting write faults again (pages resealed)")(crash_reseal)
