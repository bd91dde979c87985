"""Every system call the library makes, failed at every call site of every public operation.

Cases are (operation, call site, errno): each operation's calls are counted in
a traced child at collection, then each call is failed in turn with ENOMEM,
EPERM, EAGAIN and EINVAL (see harness/scenarios/syscall_faults.py for what
each case must show). Known defects are strict xfails: fixing one turns its
cases into failures until its entry here is removed.
"""

from __future__ import annotations

import errno

import pytest

from harness import inject
from harness.scenarios.syscall_faults import OPERATIONS, Case, cases, run_case, served_in_user_space

pytestmark = pytest.mark.slow

WATCHED = set(inject.SYSCALLS)
UNSUPPORTED = inject.supported()
CASES: list[Case] = [] if UNSUPPORTED else [c for name in OPERATIONS for c in cases(name)]

_BORROWS = {f"{b}.{op}" for b in ("protected", "legacy") for op in ("borrow", "with_bytes", "reader")}
# Operations whose first mprotect opens a new guarded Buffer's inner pages (the coffer: one per half).
_OPENS_BUFFER = {
    "buffer.create", "buffer.random", "buffer.from_reader", "enclave.open", "stream.read_partial",
    *(f"protected.{op}" for op in ("new", "create_random", "create_random.best_effort", "from_file", "from_reader")),
    *(f"enclave.{op}" for op in ("new", "create_random", "from_file", "from_reader", "borrow", "with_bytes", "reader")),
}


def _known_defects(c: Case) -> list[str]:
    """Why case ``c`` fails today (each a defect in the library, reproduced by the case itself)."""
    f, op = c.fault, c.operation
    why = []
    if f.syscall == "mmap" and f.errno == errno.EINVAL and not op.startswith(("legacy.", "memcall.")):
        why.append("Buffer creation reports a failed mmap with EINVAL as InvalidArgumentError "
                   "'size N is too large for a guarded buffer' (buffer.py _raise_create_error: "
                   "the size check and mmap share SM_STEP_MAP)")
    if f.syscall == "mprotect" and op in _BORROWS:
        why.append("a failed borrow says 'could not make the secret readable/inaccessible (strerror)' "
                   "without naming mprotect (secret.py)")
    if f.syscall == "mprotect" and f.errno == errno.ENOMEM and (
        (op in _OPENS_BUFFER and f.nth == 1) or op == "coffer.create"
    ):
        why.append("Buffer creation reports mprotect ENOMEM as AllocationError 'could not map a guarded buffer' "
                   "without naming mprotect (buffer.py _raise_create_error)")
    legacy_free = op == "legacy.close" or (op == "purge" and f.nth == 2)  # purge's 2nd munmap frees the legacy region
    if f.syscall == "munmap" and not legacy_free and not op.startswith("memcall."):
        why.append("Buffer.destroy says 'destroy failed (strerror)' without naming munmap (buffer.py)")
    if f.syscall == "munmap" and op in ("protected.close", "enclave.borrow", "enclave.with_bytes", "enclave.reader"):
        why.append("a Secret whose buffer's munmap fails stays in the registry after close "
                   "(the buffer is dead but never unregistered: secret.py/buffer.py destroy)")
    if f.syscall == "munmap" and op == "purge" and f.nth == 1:
        why.append("a Secret whose teardown fails during purge stays counted in metrics.in_use, "
                   "and close() afterwards does not finish it (secret.py)")
    if f.syscall == "munmap" and op == "purge" and f.nth == 1:
        why.append("purge_secrets stops at the first secret whose close fails: the secrets after it "
                   "(here a legacy region) keep their plaintext mapped (secret.py)")
    if op == "protected.close_escaped" and f.syscall == "mprotect":
        why.append("quarantine (closing a secret whose view escaped) says 'quarantine failed' without "
                   "naming mprotect (buffer.py)")
    if op.endswith(".close_escaped") and f.syscall == "mprotect":
        if f.nth == 1:
            why.append("when its mprotect to read-write fails, quarantine leaves the plaintext mapped and the "
                       "secret closed (guard.c sm_buffer_quarantine, posix.c sm_quarantine; munlock + "
                       "MADV_DONTNEED would drop the pages and keep the reservation)")
        elif op.startswith("protected."):
            why.append("when its final mprotect fails, the wiped pages stay read-write (guard.c)")
    if op.endswith(".close_escaped") and f.syscall == "munlock":
        why.append("quarantine ignores a failed munlock, but keeps the mapping: the pages stay locked for good "
                   "(VmLck grows; guard.c sm_buffer_quarantine, posix.c sm_quarantine)")
    return why


def _param(c: Case) -> object:
    why = _known_defects(c)
    marks = [pytest.mark.xfail(strict=True, reason="; ".join(why))] if why else []
    return pytest.param(c, id=c.name.replace(" ", ""), marks=marks)


@pytest.mark.skipif(UNSUPPORTED is not None, reason=UNSUPPORTED or "")
@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_fault(case: Case) -> None:
    result = run_case(case)
    assert result.ok, result.observed


@pytest.mark.skipif(UNSUPPORTED is not None, reason=UNSUPPORTED or "")
def test_every_watched_syscall_and_operation_is_covered() -> None:
    covered = {c.fault.syscall for c in CASES}
    # getrandom from the vDSO (glibc 2.41+, Linux 6.11+) makes no system call to fail
    assert covered == WATCHED - served_in_user_space(), f"never failed: {WATCHED - covered}"
    with_calls = {c.operation for c in CASES}
    # Closing an enclave secret touches no page (its value is ciphertext at rest) and a whole-chunk
    # stream read decrypts straight into the caller's buffer: no syscall to fail.
    # A secret whose view escaped during a borrow has no plaintext left to tear down on the enclave
    # backend: its scratch was wiped when the borrow ended.
    assert set(OPERATIONS) - with_calls == {"enclave.close", "enclave.close_escaped", "stream.read"}
    assert len({(c.operation, c.fault.syscall, c.fault.nth) for c in CASES}) * len(inject.ERRNOS) == len(CASES)


def test_unsupported_platform_is_said() -> None:
    if UNSUPPORTED is None:
        assert CASES, "injection is supported here, so cases were counted"
    else:
        assert "x86-64 Linux" in UNSUPPORTED or "seccomp" in UNSUPPORTED


@pytest.mark.skipif(UNSUPPORTED is not None, reason=UNSUPPORTED or "")
def test_getrandom_is_left_out_only_where_the_vdso_serves_it() -> None:
    import ctypes

    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version.restype = ctypes.c_char_p
    glibc = tuple(int(x) for x in libc.gnu_get_libc_version().decode().split(".")[:2])
    if glibc < (2, 41):  # no vDSO getrandom in this C library: every call is a system call
        assert served_in_user_space() == frozenset()
    else:
        assert served_in_user_space() <= {"getrandom"}
