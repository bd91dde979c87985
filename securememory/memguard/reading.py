"""Reading a secret from a reader with ``readinto``, without a copy outside the destination.

Only unbuffered readers are accepted. A buffered one (``io.BufferedReader``
from ``open(path, "rb")`` or ``sock.makefile("rb")``, or a text wrapper)
reads ahead into its own ordinary heap buffer, 8 KiB by default, and copies
out of it: that buffer would keep a copy of the secret after the read, and
after the reader is closed. Such readers are refused with InvalidTypeError
naming the unbuffered equivalent (``buffering=0`` or the reader's ``.raw``).
``io.BytesIO`` is accepted: the data it holds is already the caller's copy.

A ``readinto`` that returns ``None`` (a non-blocking reader with no data
ready) raises SourceReadError with EAGAIN rather than being taken for the end
of the data, which would silently truncate the secret.
"""

from __future__ import annotations

import errno
import io
from typing import Any

from ..errors import InvalidArgumentError, InvalidTypeError, SourceReadError

_BUFFERED = (io.BufferedReader, io.BufferedRandom, io.BufferedRWPair, io.TextIOBase)


def readinto_of(reader: object) -> Any:
    """The ``readinto`` method of an unbuffered reader.

    Raises InvalidTypeError when ``reader`` has none, or when it is buffered
    (it exposes ``.raw``, or is a BufferedReader/BufferedRandom/BufferedRWPair
    or a text stream).
    """
    if isinstance(reader, _BUFFERED) or hasattr(reader, "raw"):
        raise InvalidTypeError(
            f"reader is a buffered {type(reader).__name__}, which would keep a copy of the secret in its own "
            "heap buffer; open it unbuffered: open(path, 'rb', buffering=0), sock.makefile('rb', buffering=0), "
            "or pass its .raw (before anything was read through the buffer)"
        )
    readinto = getattr(reader, "readinto", None)
    if not callable(readinto):
        raise InvalidTypeError(f"reader must have readinto(), {type(reader).__name__} has not")
    return readinto


def fill_from(readinto: Any, view: memoryview) -> int:
    """``readinto`` until ``view`` is full or EOF (a return of 0); returns bytes read.

    Raises InvalidArgumentError when ``readinto`` returns anything but an int
    from 0 to the space left (a bool included), SourceReadError(EAGAIN) when
    it returns None (no data ready on a non-blocking reader).
    """
    filled = 0
    total = len(view)
    while filled < total:
        n = readinto(view[filled:])
        if n is None:
            raise SourceReadError(
                errno.EAGAIN,
                f"reader has no data ready (non-blocking) after {filled} of up to {total} bytes; "
                "use a blocking reader",
            )
        if n.__class__ is not int or not 0 <= n <= total - filled:
            raise InvalidArgumentError(f"readinto() returned an invalid length: {n!r}")
        if n == 0:
            break
        filled += n
    return filled
