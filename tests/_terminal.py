"""Typing at a child through the master side of its pseudo-terminal."""

from __future__ import annotations

import os
import select


def read_until(master: int, marker: bytes, timeout: float = 30.0) -> bytes:
    """What the child wrote up to and including ``marker`` (fails after ``timeout`` of silence)."""
    seen = b""
    while marker not in seen:
        ready, _, _ = select.select([master], [], [], timeout)
        assert ready, f"no {marker!r} from the child; saw {seen!r}"
        seen += os.read(master, 1024)
    return seen


def type_and_wait(pid: int, master: int, prompt: bytes, keys: list[bytes]) -> tuple[bytes, int]:
    """Wait for ``prompt``, type ``keys``, read until the child closes the terminal; reap it.

    Returns everything the child wrote and its wait status; closes ``master``.
    """
    shown = b""
    try:
        shown += read_until(master, prompt)
        for key in keys:
            os.write(master, key)
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            try:
                chunk = os.read(master, 1024) if ready else b""
            except OSError:  # EIO once the child has gone
                break
            if not chunk:
                break
            shown += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(master)
    return shown, status
