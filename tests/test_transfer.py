"""Secret.send / SecretFactory.receive across multiprocessing (fork, spawn) and subprocess."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _secret_helpers import BACKENDS
from _transfer_child import digest_of_received
from test_create import footprint

from securememory import InvalidArgumentError, InvalidTypeError, SecretClosedError, SecretFactory
from securememory.errors import TransferError


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest) -> Iterator[SecretFactory]:
    f = SecretFactory(request.param)
    f.create_random(1).close()
    yield f


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_multiprocessing(factory: SecretFactory, method: str) -> None:
    ctx = multiprocessing.get_context(method)
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=digest_of_received, args=(child, factory.backend.value))
    proc.start()
    with factory.create_random(48) as secret:
        secret.send(parent)
        digest, locked = parent.recv()
        assert digest == secret.with_bytes(lambda v: hashlib.sha256(v).hexdigest())
        assert locked
    proc.join(30)
    assert proc.exitcode == 0


def test_subprocess_pass_fds(factory: SecretFactory) -> None:
    r, w = os.pipe()
    here = Path(__file__).parent
    with subprocess.Popen(
        [sys.executable, str(here / "_transfer_child.py"), str(r)], pass_fds=(r,), stdout=subprocess.PIPE
    ) as proc:
        os.close(r)
        with factory.create_random(100) as secret:
            secret.send(w)
            os.close(w)
            out, _ = proc.communicate(timeout=60)
            assert out.decode() == secret.with_bytes(lambda v: hashlib.sha256(v).hexdigest())
    assert proc.returncode == 0


def test_socketpair_round_trip(factory: SecretFactory) -> None:
    a, b = socket.socketpair()
    with a, b, factory.new(bytearray(b"over a socket")) as secret:
        secret.send(a)
        with factory.receive(b) as copy:
            assert copy.equals(secret)


def test_truncated_stream_leaves_nothing(factory: SecretFactory) -> None:
    r, w = os.pipe()
    os.write(w, (64).to_bytes(8, "big") + b"only ten b")
    os.close(w)
    before = footprint()
    with pytest.raises(TransferError, match="after 10 of 64"):
        factory.receive(r)
    os.close(r)
    assert footprint() == before


@pytest.mark.parametrize("size", [0, 1 << 40])
def test_bad_announced_length_allocates_nothing(factory: SecretFactory, size: int) -> None:
    r, w = os.pipe()
    os.write(w, size.to_bytes(8, "big"))
    before = footprint()
    with pytest.raises(InvalidArgumentError, match=f"invalid secret length: {size}"):
        factory.receive(r)
    assert footprint() == before
    os.close(r)
    os.close(w)


def test_bad_endpoints(factory: SecretFactory) -> None:
    secret = factory.create_random(8)
    with pytest.raises(InvalidTypeError):
        secret.send("fd")
    with pytest.raises(InvalidTypeError):
        factory.receive(3.0)
    r, w = os.pipe()
    os.close(r)
    with pytest.raises(TransferError, match="could not send"):
        secret.send(w)  # EPIPE (SIGPIPE is ignored by Python)
    os.close(w)
    with pytest.raises(TransferError):
        factory.receive(w)  # closed descriptor: EBADF
    assert secret.borrows == 0
    secret.close()
    with pytest.raises(SecretClosedError):
        secret.send(1)
    r, w = os.pipe()
    os.set_blocking(r, False)
    with pytest.raises(TransferError, match="non-blocking"):
        factory.receive(r)
    os.close(r)
    os.close(w)
