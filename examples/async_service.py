"""An asyncio line service: each line received is answered with its HMAC-SHA256 tag (hex).

    API_KEY=... python examples/async_service.py [--port 9000]

The key comes from the environment (then wiped and unset) into locked memory.
Each tag is computed synchronously between awaits: a borrow (inside
``hmac_sha256``) never spans an ``await``, so no other task ever waits on it
and the event loop is never blocked by one.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from securememory import Secret, SecretFactory
from securememory.crypto import hmac_sha256


def handler(key: Secret) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A connection handler that answers each line with its tag under ``key``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(hmac_sha256(key, line.rstrip(b"\n")).hex().encode() + b"\n")
                await writer.drain()
        finally:
            writer.close()

    return handle


async def start(key: Secret, port: int = 0) -> asyncio.Server:
    """A started server on 127.0.0.1 (port 0: any free port)."""
    return await asyncio.start_server(handler(key), "127.0.0.1", port)


async def serve(port: int) -> None:
    with SecretFactory().from_env("API_KEY") as key:
        server = await start(key, port)
        print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
        async with server:
            await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9000)
    asyncio.run(serve(parser.parse_args(argv).port))


if __name__ == "__main__":
    main()
