"""The example applications: right answers, and no copy of their secrets outside the secrets' pages.

Copy counts use the project's own pytest plugin (``secret_copies``), as an
application's tests would.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import os
import pty
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _terminal import type_and_wait

from securememory import SecretFactory

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
sys.path.insert(0, str(EXAMPLES))

import async_service  # noqa: E402
import http_signer  # noqa: E402
import mp_pool  # noqa: E402
import passphrase_cli  # noqa: E402

KEY = b"k" * 32
Copies = Callable[..., dict[str, list[int]]]


def tag(message: bytes, key: bytes = KEY) -> str:
    return hmac.new(key, message, "sha256").hexdigest()


def post(port: int, body: bytes) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/", body)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


# -- threaded HTTP signer -----------------------------------------------------------


def test_http_signer_signs() -> None:
    with SecretFactory().new(bytearray(KEY)) as key:
        server = http_signer.serve_in_background(key)
        try:
            port = server.server_address[1]
            assert post(port, b"hello") == tag(b"hello")
            assert post(port, b"") == tag(b"")
        finally:
            server.shutdown()
            server.server_close()


def test_http_signer_leaves_no_copy(secret_copies: Copies) -> None:
    def block(probe: Any) -> None:
        key = SecretFactory().from_file(probe.file("key"))
        server = http_signer.serve_in_background(key)
        for body in (b"one", b"two" * 1000):
            assert len(post(server.server_address[1], body)) == 64
        probe.scan()
        server.shutdown()
        server.server_close()
        key.close()

    assert secret_copies(block) == {"key": [0, 0]}


# -- passphrase CLI through a pseudo-terminal -------------------------------------------


def test_passphrase_cli_through_a_pty() -> None:
    salt = os.urandom(16)
    pid, master = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, str(EXAMPLES / "passphrase_cli.py"), "--salt", salt.hex(),
                                  "--n", "1024"])
    out, status = type_and_wait(pid, master, b"Passphrase: ", [b"correct horse\r"])
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out
    key = hashlib.scrypt(b"correct horse", salt=salt, n=1024, r=8, p=1, dklen=32)
    assert tag(passphrase_cli.VERIFIER_MESSAGE, key).encode() in out
    assert b"correct horse" not in out  # not echoed


def test_passphrase_cli_leaves_no_copy(secret_copies: Copies) -> None:
    def block(probe: Any) -> None:
        probe.type("passphrase", prompt="Passphrase: ")
        assert len(passphrase_cli.verifier(b"salt" * 4, n=1024)) == 64

    assert secret_copies(block, terminal=True) == {"passphrase": [0]}


# -- asyncio service ----------------------------------------------------------------------


async def _ask(port: int, lines: list[bytes]) -> list[str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    for line in lines:
        writer.write(line + b"\n")
        await writer.drain()
        answers.append((await reader.readline()).decode().strip())
    writer.close()
    await writer.wait_closed()
    return answers


async def _round_trip(key: Any, lines: list[bytes]) -> list[str]:
    server = await async_service.start(key)
    async with server:
        port = server.sockets[0].getsockname()[1]
        return await asyncio.gather(*(_ask(port, lines) for _ in range(4)))  # type: ignore[return-value]


def test_async_service_answers_concurrent_clients() -> None:
    with SecretFactory().new(bytearray(KEY)) as key:
        answers = asyncio.run(_round_trip(key, [b"a", b"bb", b"ccc"]))
    assert answers == [[tag(b"a"), tag(b"bb"), tag(b"ccc")]] * 4


def test_async_service_leaves_no_copy(secret_copies: Copies) -> None:
    def block(probe: Any) -> None:
        with SecretFactory().from_file(probe.file("key")) as key:
            asyncio.run(_round_trip(key, [b"x", b"y"]))
            probe.scan()

    assert secret_copies(block) == {"key": [0, 0]}


# -- multiprocessing pool -------------------------------------------------------------------


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_pool_signs(method: str) -> None:
    messages = [b"m%d" % i for i in range(5)]
    with SecretFactory().new(bytearray(KEY)) as key:
        assert mp_pool.sign_all(key, messages, workers=2, method=method) == [tag(m) for m in messages]


def test_pool_leaves_no_copy_in_the_parent(secret_copies: Copies) -> None:
    def block(probe: Any) -> None:
        with SecretFactory().from_file(probe.file("key")) as key:
            assert len(mp_pool.sign_all(key, [b"a", b"b", b"c"], workers=2, method="fork")) == 3
            probe.scan()

    assert secret_copies(block) == {"key": [0, 0]}
