"""Copies left by the input paths: terminal, delimited readers, fds, create(fill), send/receive, crypto.

Each scenario runs the path in a fresh child with values the parent draws
after the fork (see :mod:`harness.probe`) and expects no copy of any value
outside the pages of the secrets and guarded buffers alive at the scan. The
mutation catalogue breaks each path so that its scenario must FAIL.
"""

from __future__ import annotations

import ctypes
import functools
import os
import socket
from collections.abc import Callable
from typing import Any

from securememory import InvalidTypeError, SecretFactory
from securememory.crypto import aead_decrypt, derive_scrypt, hkdf, hmac_sha256

from .. import probe
from ..scenario import Environment, Result, scenario, verdict

SIZE = 32


def _verdict(name: str, env: Environment, report: probe.Report, keys: list[str]) -> Result:
    outcome = report.outcome
    assert outcome is not None
    ok = outcome.exit_code == 0 and all(report.final(k) == 0 and max(report.counts[k]) == 0 for k in keys)
    observed = ", ".join(f"{k}: {report.counts.get(k, '?')}" for k in keys)
    if outcome.exit_code != 0:
        tail = outcome.stderr.strip().splitlines()[-1:] or [outcome.describe()]
        observed += f"; {outcome.describe()}: {tail[0]}"
    return verdict(name, ok, "0 copies outside the secrets' own pages", observed + env.note)


def readers(env: Environment) -> Result:
    """from_reader_until, from_fd (exact and to end of data) and create(fill) with readinto."""

    def block(p: probe.Probe) -> None:
        factory = SecretFactory()
        with open(p.file("until", printable=True, suffix=b"\nafter"), "rb", buffering=0) as f:
            until = factory.from_reader_until(f, b"\n", max_size=64)
        p.scan("until")
        fd = os.open(p.file("from_fd"), os.O_RDONLY)
        exact = factory.from_fd(fd, SIZE)
        os.close(fd)
        fd = os.open(p.file("from_fd_all"), os.O_RDONLY)
        whole = factory.from_fd(fd)
        os.close(fd)
        p.scan("from_fd", "from_fd_all")
        with open(p.file("create_fill"), "rb", buffering=0) as f:
            filled = factory.create(SIZE, f.readinto)
        p.scan("create_fill")

        # Buffered readers are refused before they read, then read unbuffered.
        with open(p.file("buffered_file"), "rb") as f:
            _refused(factory, f)
            buffered_file = factory.from_reader(f.raw, SIZE)
        sender = factory.from_file(p.file("buffered_socket"))
        a, b = socket.socketpair()
        with a, b:
            sender.with_bytes(a.sendall)
            with b.makefile("rb") as sock_file:
                _refused(factory, sock_file)
            with b.makefile("rb", buffering=0) as sock_file:
                buffered_socket = factory.from_reader(sock_file, SIZE)
        p.scan("buffered_file", "buffered_socket")
        del until, exact, whole, filled, buffered_file, sender, buffered_socket

    report = probe.run(block, env=env.child_env)
    keys = ["until", "from_fd", "from_fd_all", "create_fill", "buffered_file", "buffered_socket"]
    return _verdict("stray_copies_readers", env, report, keys)


def _refused(factory: SecretFactory, reader: Any) -> None:
    try:
        factory.from_reader(reader, SIZE)
    except InvalidTypeError:
        return
    raise AssertionError(f"a buffered {type(reader).__name__} was accepted")


def terminal(env: Environment) -> Result:
    """getpass through a pseudo-terminal: the typed password exists only in the secret."""

    def block(p: probe.Probe) -> None:
        p.type("getpass", prompt="Passphrase: ")
        secret = SecretFactory().getpass("Passphrase: ")
        p.scan("getpass")  # while the secret is alive: only its own pages may hold the value
        secret.close()

    report = probe.run(block, terminal=True, env=env.child_env)
    result = _verdict("stray_copies_getpass", env, report, ["getpass"])
    if report.echoed:  # echo off: the terminal must not have shown what was typed
        return verdict("stray_copies_getpass", False, result.expected + ", no echo", result.observed + "; echoed")
    return result


def transfer(env: Environment) -> Result:
    """send/receive over a pipe into a forked grandchild; both ends are scanned in the child."""

    def block(p: probe.Probe) -> None:
        factory = SecretFactory()
        original = factory.from_file(p.file("sent"))
        r, w = os.pipe()
        original.send(w)
        os.close(w)
        received = factory.receive(r)
        os.close(r)
        p.scan("sent")
        del original, received

    report = probe.run(block, env=env.child_env)
    return _verdict("stray_copies_transfer", env, report, ["sent"])


def crypto(env: Environment) -> Result:
    """Each crypto recipe: its key input and its secret output exist only in secrets."""

    def block(p: probe.Probe) -> None:
        factory = SecretFactory()
        password = factory.from_file(p.file("password", printable=True))
        derived = derive_scrypt(password, b"salt" * 4, n=2**10)
        p.learn("scrypt_out", derived)
        expanded = hkdf(derived, length=SIZE, info=b"ctx")
        p.learn("hkdf_out", expanded)
        p.scan("password", "scrypt_out", "hkdf_out")

        key = factory.from_file(p.file("aead_key"))
        plain = factory.from_file(p.file("plaintext"))
        nonce = bytes(12)
        ciphertext = bytearray(SIZE + 16)
        _encrypt(key, plain, nonce, ciphertext)
        plain.close()
        opened = aead_decrypt(key, nonce, bytes(ciphertext))
        ciphertext[0] ^= 1
        try:
            aead_decrypt(key, nonce, bytes(ciphertext))
        except Exception as e:
            assert type(e).__name__ == "DecryptionError", e
        p.scan("aead_key", "plaintext")

        mac_key = factory.from_file(p.file("hmac_key"))
        hmac_sha256(mac_key, b"message")
        p.scan("hmac_key")
        del password, derived, expanded, key, opened, mac_key

    report = probe.run(block, env=env.child_env)
    keys = ["password", "scrypt_out", "hkdf_out", "aead_key", "plaintext", "hmac_key"]
    return _verdict("stray_copies_crypto", env, report, keys)


def environment(env: Environment) -> Result:
    """from_env: the value setenv() copied into the C environment is overwritten in place."""

    def block(p: probe.Probe) -> None:
        factory = SecretFactory()
        value = bytearray(SIZE + 1)  # NUL-terminated, for setenv
        with open(p.file("from_env", printable=True), "rb", buffering=0) as f:
            f.readinto(memoryview(value)[:SIZE])
        libc = ctypes.CDLL(None)
        libc.setenv(b"SM_HARNESS_ENV", (ctypes.c_char * len(value)).from_buffer(value), 1)
        value[:] = bytes(len(value))
        secret = factory.from_env("SM_HARNESS_ENV")
        p.scan("from_env")
        del secret

    report = probe.run(block, env=env.child_env)
    return _verdict("stray_copies_env", env, report, ["from_env"])


def stack(env: Environment) -> Result:
    """create(fill) whose fill hands the secret by value to native code: its dead frame is wiped.

    Native code a fill calls may keep what it computes in its stack frame (a
    KDF's last block, an AEAD's key schedule) and return without wiping it. To
    make that happen on every interpreter, the fill passes the secret's bytes
    as a by-value struct argument to a C function that ignores them: libffi
    copies them into the call's stack frame, as native code would.
    """

    def block(p: probe.Probe) -> None:
        factory = SecretFactory()

        def fill(out: memoryview) -> None:
            with open(p.file("stack_out"), "rb", buffering=0) as f:
                f.readinto(out)
            _nested(lambda: _leave_on_stack(out), 8)

        derived = factory.create(SIZE, fill)
        p.scan("stack_out")
        del derived

    report = probe.run(block, env=env.child_env)
    return _verdict("stray_copies_fill_stack", env, report, ["stack_out"])


class _Value(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_ubyte * SIZE)]


# getpid() called as if it took a SIZE-byte struct by value: the caller copies
# the struct into the stack frame of the call, which getpid never reads.
_by_value = ctypes.CFUNCTYPE(ctypes.c_int, _Value)(ctypes.cast(ctypes.CDLL(None).getpid, ctypes.c_void_p).value or 0)


def _leave_on_stack(view: memoryview) -> None:
    value = _Value.from_buffer(view)  # the secret's own memory, no copy
    try:
        _by_value(value)
    finally:
        del value


def _nested(fn: Callable[[], object], depth: int) -> None:
    """Call ``fn`` under ``depth`` C-level calls (each map() step enters the
    interpreter afresh), so its frames lie deeper than the scan's code reaches."""
    if depth == 0:
        fn()
    else:
        list(map(lambda _: _nested(fn, depth - 1), [0]))


def _encrypt(key: Any, plain: Any, nonce: bytes, out: bytearray) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    with key.borrow() as k, plain.borrow() as pt:
        aead = ChaCha20Poly1305(k)
        aead.encrypt_into(nonce, pt, None, out)
        del aead


SCENARIOS: dict[str, tuple[str, Callable[..., Result]]] = {
    "stray_copies_readers": (
        "no stray copy from from_reader_until, from_fd, create(fill); buffered readers refused",
        readers,
    ),
    "stray_copies_getpass": ("no stray copy of a password typed at a pseudo-terminal", terminal),
    "stray_copies_transfer": ("no stray copy after send/receive through a pipe", transfer),
    "stray_copies_crypto": ("no stray copy of keys or outputs of the crypto recipes", crypto),
    "stray_copies_fill_stack": ("no copy left on the stack by native code a create(fill) called", stack),
    "stray_copies_env": ("no copy left in the C environment by from_env", environment),
}
for _name, (_summary, _fn) in SCENARIOS.items():
    scenario(_name, _summary)(functools.partial(_fn))
