"""A pool of worker processes that sign messages with a key sent to each of them.

    python examples/mp_pool.py --key-file /run/secrets/signing.key msg1 msg2 ...

The parent reads the key into locked memory and sends it to each worker
through its pipe (``Secret.send``); each worker receives it straight into
its own locked memory (``SecretFactory.receive``) and signs the messages it
is given. Works with the fork and spawn start methods.
"""

from __future__ import annotations

import argparse
import multiprocessing
from multiprocessing.connection import Connection

from securememory import Secret, SecretFactory
from securememory.crypto import hmac_sha256


def worker(conn: Connection) -> None:
    with SecretFactory().receive(conn) as key:
        while (message := conn.recv()) is not None:
            conn.send(hmac_sha256(key, message).hex())


def sign_all(key: Secret, messages: list[bytes], workers: int = 2, method: str | None = None) -> list[str]:
    """Tags of ``messages``, computed round-robin by ``workers`` processes."""
    ctx = multiprocessing.get_context(method)
    pipes = [ctx.Pipe() for _ in range(workers)]
    procs = [ctx.Process(target=worker, args=(child,)) for _, child in pipes]
    for proc in procs:
        proc.start()
    for parent, _ in pipes:
        key.send(parent)
    for i, message in enumerate(messages):
        pipes[i % workers][0].send(message)
    tags = [pipes[i % workers][0].recv() for i in range(len(messages))]
    for (parent, _), proc in zip(pipes, procs, strict=True):
        parent.send(None)
        proc.join()
    return tags


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key-file", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("messages", nargs="+")
    args = parser.parse_args(argv)
    with SecretFactory().from_file(args.key_file) as key:
        for message, tag in zip(args.messages, sign_all(key, [m.encode() for m in args.messages], args.workers),
                                strict=True):
            print(tag, message)


if __name__ == "__main__":
    main()
