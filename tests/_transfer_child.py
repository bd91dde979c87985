"""Child-process side of the send/receive tests (importable by spawn and by ``python -m``)."""

from __future__ import annotations

import hashlib
import sys
from typing import Any

from securememory import SecretFactory


def digest_of_received(conn: Any, backend: str = "protected") -> None:
    """Receive a secret on ``conn``, send back its SHA-256 and whether it is locked."""
    with SecretFactory(backend).receive(conn) as secret:
        conn.send((secret.with_bytes(lambda v: hashlib.sha256(v).hexdigest()), secret.locked))


if __name__ == "__main__":
    fd = int(sys.argv[1])
    with SecretFactory().receive(fd) as secret:
        sys.stdout.write(secret.with_bytes(lambda v: hashlib.sha256(v).hexdigest()))
