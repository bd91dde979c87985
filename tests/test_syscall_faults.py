"""Every system call the library makes, failed at every call site of every public operation.

Cases are (operation, call site, errno): each operation's calls are counted in
a traced child at collection, then each call is failed in turn with ENOMEM,
EPERM, EAGAIN and EINVAL (see harness/scenarios/syscall_faults.py for what
each case must show). Known defects are strict xfails: fixing one turns its
cases into failures until its entry here is removed.
"""

from __future__ import annotations

import warnings

import pytest

from harness import inject
from harness.scenarios.syscall_faults import OPERATIONS, Case, cases, run_case, served_in_user_space

pytestmark = pytest.mark.slow

WATCHED = set(inject.SYSCALLS)
UNSUPPORTED = inject.supported()

with warnings.catch_warnings():
    # Collection counts the calls in forked children from the test process, which
    # pytest-xdist makes multi-threaded: CPython 3.12+ warns at that fork (3.15
    # raises under -W error). The forks are the harness's, not the library's.
    warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
    CASES: list[Case] = [] if UNSUPPORTED else [c for name in OPERATIONS for c in cases(name)]


def _known_defects(c: Case) -> list[str]:
    """Why case ``c`` fails today (each a defect in the library, reproduced by the case itself).

    None is known. A defect found later is listed here, by the cases that
    reproduce it, until its fix turns them into failures (strict xfails).
    """
    return []


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
    without = {"enclave.close", "enclave.close_escaped", "stream.read"}
    if "getrandom" in served_in_user_space():
        # rekeying draws a fresh half and a stream write draws nonces: getrandom is all they call
        without |= {"coffer.rekey", "stream.write"}
    assert set(OPERATIONS) - with_calls == without
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
