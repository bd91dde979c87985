"""Failing system calls: every call site of every public operation, failed in turn, leaves nothing behind.

Each operation first runs once in a counting child (:mod:`harness.inject`),
which lists the library's calls of each watched syscall. Each call is then
failed, one per child, with each errno of :data:`~harness.inject.ERRNOS`. In
the child, after the failed operation and the release of whatever the caller
holds, the outcome must be:

- a SecureMemoryError naming the call and the errno, or success where a
  documented fallback covers the failure: mlock under best_effort (unlocked,
  with a warning), munlock (the unmap that follows unlocks), mprotect before a
  wipe (the pages are unmapped unwiped instead: nothing stays mapped), and
  getrandom EPERM for nonces (``os.urandom`` reads /dev/urandom instead);
- the registry, the live-secret count, locked bytes (VmLck) and the library's
  mappings exactly at the baseline taken before the operation; for a teardown
  (close, destroy, purge) the registry, the live-secret count and locked bytes
  already at the baseline the moment it returns, even when it raised (a failed
  teardown finishes: nothing is left for a later call to do);
- no copy of the secret value anywhere in the child's memory, outside what the
  caller legitimately still holds (read by the parent through /proc/PID/mem);
- the same operation working afterwards, again back to the baseline.

A failure inside a teardown (close, destroy, purge) must never leave the
value mapped: there nothing is excluded from the scan, so the value must be
gone even though the teardown failed. When munmap itself fails, the pages are
already wiped and unlocked; the error names munmap and the (wiped, unlocked)
mapping is the one thing that stays, since nothing else can remove it. A
quarantine (the close of a secret whose view escaped) keeps its pages
reserved whatever fails: neither locked nor read-write afterwards.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from securememory import SecretFactory, Stream, metrics
from securememory.errors import SecureMemoryError, ViewEscapedError
from securememory.memcall import alloc, free, locked_bytes
from securememory.memguard import Buffer, Enclave, get_coffer, purge, registry, release_scratch

from .. import inject, memory, raw
from ..scenario import Environment, Result, scenario, unsupported, verdict

SIZE = 32
_VALUE = 1  # the scan key of the value used inside the window

# Words a message must contain to name each call.
CALL_WORDS: dict[str, tuple[str, ...]] = {
    "mmap": ("map",), "munmap": ("munmap",), "mprotect": ("mprotect",),
    "madvise": ("madvise", "advi"), "mlock": ("mlock",), "munlock": ("munlock", "unlock"),
    "getrandom": ("random", "entropy"), "memfd_secret": ("memfd_secret", "secret"),
}


State = dict[str, Any]


@dataclass(frozen=True)
class Operation:
    """One public operation: ``setup`` builds what it needs (the caller's
    objects), ``act`` is the operation (inside the window), ``keep`` lists the
    (address, length) spans the caller still legitimately holds the value in,
    ``release`` drops everything the caller holds, through the caller's handles."""

    name: str
    act: Callable[[State], Any]
    setup: Callable[[inject.Probe, int, State], None] = lambda p, key, st: None
    keep: Callable[[State, Any], list[tuple[int, int]]] = lambda st, product: []
    release: Callable[[State, Any], None] = lambda st, product: None
    known: bool = True  # the value is known to the parent, so copies can be counted
    coffer: bool = True  # the session key exists before the baseline
    tolerated: frozenset[str] = frozenset({"munlock", "mprotect"})  # calls with a documented fallback
    reserves: bool = False  # leaves its pages reserved NO_ACCESS by design (a secret whose view escaped)
    teardown: bool = False  # ends what setup made: done the moment it returns, failed step or not


def _span(secret: Any) -> tuple[int, int]:
    with secret.borrow() as view:
        return raw.address_of(view), len(view)


def _buffer_span(buf: Buffer) -> tuple[int, int]:
    return (buf.address, buf.size) if buf.alive else (0, 0)


def _read_value(p: inject.Probe, key: int) -> bytearray:
    """The parent's fresh value, read into a bytearray the caller owns."""
    data = bytearray(SIZE)
    with open(p.value_file(key), "rb", buffering=0) as f:
        f.readinto(data)
    return data


def _close(*objs: Any) -> None:
    for obj in objs:
        if obj is None:
            continue
        for method in ("close", "destroy"):
            if hasattr(obj, method):
                getattr(obj, method)()
                break


def _secret_ops(backend: str) -> list[Operation]:
    factory = SecretFactory(backend)

    def from_file(p: inject.Probe, key: int, st: State) -> None:
        st["secret"] = factory.from_file(p.value_file(key))

    def held(st: State, product: Any) -> list[tuple[int, int]]:
        return [_span(st["secret"])] if not st["secret"].closed else []

    def new_setup(p: inject.Probe, key: int, st: State) -> None:
        st["data"] = _read_value(p, key)

    def open_reader(p: inject.Probe, key: int, st: State) -> None:
        st["file"] = open(p.value_file(key), "rb", buffering=0)  # noqa: SIM115 (closed in release)

    def read_out(st: State) -> Any:
        st["secret"].reader().readinto(st["out"].view())

    def escaped(p: inject.Probe, key: int, st: State) -> None:
        from_file(p, key, st)
        try:
            with st["secret"].borrow() as view:
                st["escaped"] = view[:1]  # a slice outliving the borrow
        except ViewEscapedError:
            pass

    def reader_setup(p: inject.Probe, key: int, st: State) -> None:
        from_file(p, key, st)
        st["out"] = Buffer(SIZE)

    def release_all(st: State, product: Any) -> None:
        _close(product, st.get("secret"), st.get("out"), st.get("file"))

    def made(st: State, product: Any) -> list[tuple[int, int]]:
        return [_span(product)] if product is not None and not product.closed else []

    b = backend
    return [
        Operation(f"{b}.new", lambda st: factory.new(st["data"]), new_setup,
                  lambda st, product: [(raw.address_of(memoryview(st["data"])), SIZE), *made(st, product)],
                  release_all),
        Operation(f"{b}.create_random", lambda st: factory.create_random(SIZE), release=release_all, known=False),
        Operation(f"{b}.from_file", lambda st: factory.from_file(st["path"]),
                  lambda p, key, st: st.update(path=p.value_file(key)), made, release_all),
        Operation(f"{b}.from_reader", lambda st: factory.from_reader(st["file"], SIZE), open_reader,
                  made, release_all),
        Operation(f"{b}.borrow", lambda st: _borrow(st["secret"]), from_file, held, release_all),
        Operation(f"{b}.with_bytes", lambda st: st["secret"].with_bytes(len), from_file, held, release_all),
        Operation(f"{b}.reader", read_out, reader_setup,
                  lambda st, product: [*held(st, product), _buffer_span(st["out"])], release_all),
        Operation(f"{b}.close", lambda st: st["secret"].close(), from_file, release=release_all, teardown=True),
        Operation(f"{b}.close_escaped", lambda st: st["secret"].close(), escaped, release=release_all, reserves=True,
                  teardown=True),
    ]


def _borrow(secret: Any) -> None:
    with secret.borrow() as view:
        len(view)


def _buffer_ops() -> list[Operation]:
    def from_reader(p: inject.Probe, key: int, st: State) -> None:
        st["file"] = open(p.value_file(key), "rb", buffering=0)  # noqa: SIM115 (closed in release)

    def loaded(p: inject.Probe, key: int, st: State) -> None:
        from_reader(p, key, st)
        st["buf"] = Buffer.from_reader(st["file"], SIZE)

    def release(st: State, product: Any) -> None:
        _close(product, st.get("buf"), st.get("file"), st.get("out"))

    def product_span(st: State, product: Any) -> list[tuple[int, int]]:
        return [_buffer_span(product)] if isinstance(product, Buffer) else []

    def sealed(p: inject.Probe, key: int, st: State) -> None:
        st["enclave"] = Enclave(_read_value(p, key))

    def opened(st: State) -> Buffer:
        buf: Buffer = st["enclave"].open()
        return buf

    def seal(st: State) -> Enclave:
        enclave: Enclave = st["buf"].seal()
        return enclave

    return [
        Operation("buffer.create", lambda st: Buffer(SIZE), release=release, known=False),
        Operation("buffer.random", lambda st: Buffer.random(SIZE), release=release, known=False),
        Operation("buffer.from_reader", lambda st: Buffer.from_reader(st["file"], SIZE), from_reader,
                  product_span, release),
        Operation("buffer.destroy", lambda st: st["buf"].destroy(), loaded, release=release, teardown=True),
        Operation("enclave.seal", seal, loaded, lambda st, product: [_buffer_span(st["buf"])], release),
        Operation("enclave.open", opened, sealed, product_span, release),
    ]


def _coffer_ops() -> list[Operation]:
    def drop_coffer(st: State, product: Any) -> None:
        _close(product)

    return [
        Operation("coffer.create", lambda st: get_coffer(), release=drop_coffer, known=False, coffer=False),
        Operation("coffer.rekey", lambda st: get_coffer().rekey(), known=False),
    ]


def _stream_ops() -> list[Operation]:
    def writer(p: inject.Probe, key: int, st: State) -> None:
        st["stream"] = Stream()
        st["data"] = _read_value(p, key)

    def reader(p: inject.Probe, key: int, st: State) -> None:
        writer(p, key, st)
        st["stream"].write(st["data"])
        st["out"] = Buffer(SIZE)

    def release(st: State, product: Any) -> None:
        _close(st.get("stream"), st.get("out"))

    return [
        Operation("stream.write", lambda st: st["stream"].write(st["data"]), writer,
                  lambda st, product: [(raw.address_of(memoryview(st["data"])), SIZE)], release),
        Operation("stream.read", lambda st: st["stream"].readinto(st["out"].view()), reader,
                  lambda st, product: [_buffer_span(st["out"])], release),
        # Half a chunk: decrypted through locked scratch, the rest sealed again under a new nonce.
        Operation("stream.read_partial", lambda st: st["stream"].readinto(st["out"].view()[: SIZE // 2]), reader,
                  lambda st, product: [_buffer_span(st["out"])], release),
    ]


def _purge_op() -> Operation:
    def setup(p: inject.Probe, key: int, st: State) -> None:
        st["secrets"] = [SecretFactory(b).from_file(p.value_file(key)) for b in ("protected", "enclave", "legacy")]

    def release(st: State, product: Any) -> None:
        _close(*st["secrets"])

    return Operation("purge", lambda st: purge(), setup, release=release, coffer=False, teardown=True)


def _memcall_ops() -> list[Operation]:
    def release(st: State, product: Any) -> None:
        if product is not None and not product.freed:
            free(product)

    return [Operation("memcall.alloc_secret", lambda st: alloc(SIZE, secret=True), release=release, known=False)]


def _best_effort_op() -> Operation:
    factory = SecretFactory("protected", mlock="best_effort")

    def release(st: State, product: Any) -> None:
        _close(product)

    return Operation("protected.create_random.best_effort", lambda st: factory.create_random(SIZE),
                     release=release, known=False, tolerated=frozenset({"munlock", "mprotect", "mlock"}))


OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in [
        *_buffer_ops(), *_coffer_ops(),
        *(op for b in ("protected", "enclave", "legacy") for op in _secret_ops(b)),
        _best_effort_op(), *_stream_ops(), _purge_op(), *_memcall_ops(),
    ]
}


# -- the child's side --------------------------------------------------------------


def _library_mappings() -> dict[str, int]:
    """Bytes of the mappings the library makes, by protection and flags: guarded
    reservations, locked or not-dumped or wiped-on-fork pages, secretmem."""
    totals: dict[str, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for m in memory.mappings(os.getpid()):
        marks = sorted(m.flags & {"dd", "wf", "lo"})
        secretmem = "secretmem" in m.path
        if not (secretmem or (not m.path and (marks or (m.perms.startswith("---") and m.size >= 3 * page)))):
            continue
        key = f"{m.perms}{'+' + ','.join(marks) if marks else ''}{' secretmem' if secretmem else ''}"
        totals[key] = totals.get(key, 0) + m.size
    return totals


def _measure() -> dict[str, Any]:
    release_scratch()  # idle enclave scratch is a cache, wiped and NO_ACCESS: not a leftover
    return {
        "registry": registry.count(),
        "secrets": metrics.in_use,
        "locked": locked_bytes(),
        "mappings": _library_mappings(),
    }


def _outcome(fn: Callable[[], Any]) -> tuple[Any, dict[str, Any]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            product = fn()
        except Exception as e:
            return None, {
                "error": type(e).__name__, "message": str(e), "errno": getattr(e, "errno", None),
                "library": isinstance(e, SecureMemoryError),
            }
    return product, {"error": None, "warnings": [f"{w.category.__name__}: {w.message}" for w in caught]}


def _body(op: Operation) -> Callable[[inject.Probe], None]:
    def body(p: inject.Probe) -> None:
        if op.coffer:
            get_coffer()
        # A first run outside the window warms every lazy start-up (canary key, crash handler, caches).
        st: State = {}
        op.setup(p, 10, st)
        op.release(st, op.act(st))
        base = _measure()

        st = {}
        op.setup(p, _VALUE, st)
        p.begin()
        product, outcome = _outcome(lambda: op.act(st))
        p.end()
        ended = _measure()
        copies = p.scan(_VALUE, op.keep(st, product)) if op.known else None
        released = _outcome(lambda: op.release(st, product))[1]
        after = _measure()

        st = {}
        op.setup(p, 11, st)
        again_product, again = _outcome(lambda: op.act(st))
        if again["error"] is None:
            again = _outcome(lambda: op.release(st, again_product))[1]
        p.report({"outcome": outcome, "released": released, "copies": copies, "base": base, "ended": ended,
                  "after": after, "usable": again, "after_again": _measure()})

    return body


# -- the parent's side ---------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    operation: str
    fault: inject.Fault

    @property
    def name(self) -> str:
        return f"{self.operation}: {self.fault.describe()}"


@dataclass
class CaseResult:
    case: Case
    ok: bool
    observed: str
    problems: list[str] = field(default_factory=list)


def count_calls(name: str) -> dict[str, int]:
    """Library calls of each watched syscall that operation ``name`` makes (a counting run)."""
    trace = inject.run(_body(OPERATIONS[name]))
    if trace.exit_code != 0 or not trace.reports:
        raise inject.InjectError(f"counting run of {name} failed: {trace.describe()}\n{trace.stderr[-2000:]}")
    report = trace.reports[0]
    if report["outcome"]["error"] is not None:
        raise inject.InjectError(f"{name} fails without any fault: {report['outcome']}")
    return trace.counts()


@functools.cache
def served_in_user_space() -> frozenset[str]:
    """Watched calls the C library answers here without entering the kernel.

    glibc 2.41 and later on Linux 6.11 and later serve getrandom from the
    vDSO: no system call is made, so no failure can be injected into it.
    """
    return frozenset() if count_calls("buffer.random").get("getrandom") else frozenset({"getrandom"})


def cases(name: str, errnos: tuple[int, ...] = inject.ERRNOS) -> Iterator[Case]:
    """Every (call site, errno) case of operation ``name``."""
    for syscall, n in count_calls(name).items():
        for nth in range(1, n + 1):
            for e in errnos:
                yield Case(name, inject.Fault(syscall, nth, e))


def _names_call(message: str, fault: inject.Fault) -> bool:
    text = message.lower()
    named_errno = os.strerror(fault.errno).lower() in text or errno.errorcode[fault.errno].lower() in text
    return named_errno and any(word in text for word in CALL_WORDS[fault.syscall])


def _leftover(base: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Mapping bytes by kind that ``after`` has beyond ``base`` (negative: fewer)."""
    return {k: after.get(k, 0) - base.get(k, 0) for k in {*base, *after} if after.get(k, 0) != base.get(k, 0)}


def _swallowing(act: Callable[[State], Any]) -> Callable[[State], Any]:
    """``act`` with its library errors ignored: a library that hides failures."""

    def swallow(st: State) -> Any:
        try:
            return act(st)
        except SecureMemoryError:
            return None

    return swallow


def run_case(case: Case, *, sabotage: bool = False) -> CaseResult:
    """Inject ``case`` and judge what the child saw (``sabotage``: errors swallowed)."""
    op = OPERATIONS[case.operation]
    if sabotage:
        op = dataclasses.replace(op, act=_swallowing(op.act))
    trace = inject.run(_body(op), case.fault)
    problems: list[str] = []
    if trace.exit_code != 0 or not trace.reports:
        tail = trace.stderr.strip().splitlines()[-3:]
        return CaseResult(case, False, f"child {trace.describe()}: {' | '.join(tail)}", ["crashed"])
    if not trace.injected:
        problems.append("the call was never reached")
    r = trace.reports[0]
    out = r["outcome"]
    fault = case.fault
    if out["error"] is None:
        seen = "succeeded" + (f" with {out['warnings']}" if out["warnings"] else "")
        nonce_fallback = fault.syscall == "getrandom" and fault.errno == errno.EPERM
        if fault.syscall not in op.tolerated and not nonce_fallback:
            problems.append("the failure went unnoticed")
    else:
        seen = f"{out['error']}: {out['message']}"
        if not out["library"]:
            problems.append(f"untyped exception {out['error']}")
        elif not _names_call(out["message"], case.fault):
            problems.append("the message does not name the call and errno")
    if r["released"]["error"] is not None:
        problems.append(f"release raised {r['released']['error']}: {r['released']['message']}")
    base, after = r["base"], r["after"]
    for key in ("registry", "secrets", "locked"):
        if after[key] != base[key]:
            problems.append(f"{key} {base[key]} -> {after[key]}")
        elif op.teardown and r["ended"][key] != base[key]:  # not left for the caller's release to finish
            problems.append(f"{key} {base[key]} -> {r['ended'][key]} when the teardown returned")
    left = _leftover(base["mappings"], after["mappings"])
    if op.reserves:  # the escaped secret's pages stay reserved, wiped and NO_ACCESS
        left = {k: v for k, v in left.items() if not (k.startswith("---p") and "lo" not in k)}
    if left and (fault.syscall != "munmap" or any("lo" in k or not k.startswith("rw-p") for k in left)):
        problems.append(f"mappings left: {left}")
    if r["copies"]:
        problems.append(f"{r['copies']} copies of the value left")
    if r["usable"]["error"] is not None:
        problems.append(f"next run raised {r['usable']['error']}: {r['usable']['message']}")
    elif r["after_again"] not in (after, base) and not op.reserves:  # a failed munmap's leftover may go later
        problems.append("next run did not return to the state before it")
    observed = seen + (f" [{'; '.join(problems)}]" if problems else "")
    if left and not problems:
        observed += f" (munmap failed: {sum(left.values())} wiped, unlocked bytes stay mapped)"
    return CaseResult(case, not problems, observed, problems)


# Representative subset for the harness scenario: one call site of each kind.
SUBSET: tuple[Case, ...] = (
    Case("buffer.create", inject.Fault("mmap", 1, errno.ENOMEM)),
    Case("buffer.create", inject.Fault("mprotect", 1, errno.EPERM)),
    Case("buffer.create", inject.Fault("madvise", 2, errno.EINVAL)),
    Case("protected.from_file", inject.Fault("mlock", 1, errno.EAGAIN)),
    Case("protected.create_random.best_effort", inject.Fault("mlock", 1, errno.ENOMEM)),
    Case("buffer.random", inject.Fault("getrandom", 1, errno.EAGAIN)),
    Case("enclave.seal", inject.Fault("getrandom", 1, errno.ENOMEM)),
    Case("legacy.new", inject.Fault("mmap", 1, errno.ENOMEM)),
    Case("enclave.open", inject.Fault("mlock", 1, errno.ENOMEM)),
    Case("protected.close", inject.Fault("mprotect", 1, errno.ENOMEM)),
    Case("legacy.close", inject.Fault("mprotect", 1, errno.ENOMEM)),
    Case("legacy.close", inject.Fault("munmap", 1, errno.EINVAL)),
    Case("coffer.rekey", inject.Fault("getrandom", 1, errno.EAGAIN)),
    Case("memcall.alloc_secret", inject.Fault("memfd_secret", 1, errno.ENOMEM)),
    # Failed calls named as such, and teardowns that finish and continue whatever fails.
    Case("buffer.create", inject.Fault("mmap", 1, errno.EINVAL)),
    Case("protected.borrow", inject.Fault("mprotect", 1, errno.EPERM)),
    Case("protected.close", inject.Fault("munmap", 1, errno.EINVAL)),
    Case("purge", inject.Fault("munmap", 1, errno.ENOMEM)),
    Case("purge", inject.Fault("munmap", 3, errno.EPERM)),  # the session key's first half
    # Quarantine (a secret whose view escaped): never plaintext mapped, pages locked or read-write.
    Case("protected.close_escaped", inject.Fault("mprotect", 1, errno.EPERM)),
    Case("protected.close_escaped", inject.Fault("mprotect", 2, errno.EINVAL)),
    Case("protected.close_escaped", inject.Fault("munlock", 1, errno.EPERM)),
)


def syscall_faults(env: Environment, cases: tuple[Case, ...] = SUBSET, sabotage: bool = False) -> Result:
    name = "faults_injected"
    expected = "each injected failure: typed error naming call and errno, baseline kept, no copy, usable after"
    reason = inject.supported()
    if not reason and not env.caps.mlock_works:
        reason = "mlock is not permitted here: the cases expect the default 'require' policy to lock"
    if reason:
        return unsupported(name, expected, reason)
    started = time.monotonic()
    try:
        user_space = served_in_user_space()
        results = [run_case(c, sabotage=sabotage) for c in cases if c.fault.syscall not in user_space]
    except inject.InjectError as e:  # ptrace or seccomp refused (Yama scope 3, a container's profile)
        return unsupported(name, expected, str(e))
    bad = [r for r in results if not r.ok]
    skipped = len(cases) - len(results)
    observed = (
        f"{len(results) - len(bad)}/{len(results)} cases held in {time.monotonic() - started:.1f} s"
        + (f" ({skipped} {', '.join(sorted(user_space))} cases left out: served by the vDSO here)" if skipped else "")
        + "".join(f"; {r.case.name}: {r.observed}" for r in bad[:3])
    )
    return verdict(name, not bad, expected, observed + env.note)


scenario("faults_injected", "syscalls failed one at a time (seccomp + ptrace) leave nothing behind")(syscall_faults)
