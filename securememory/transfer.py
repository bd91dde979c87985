"""Moving a secret to another process through a pipe or socket, locked memory to locked memory.

The sender writes an 8-byte big-endian length, then the secret's bytes with
``os.write`` from a borrowed view of its locked memory; the receiver reads
the length, then ``os.readv`` straight into a new Secret's memory
(:meth:`SecretFactory.create`). Neither side makes a ``bytes`` copy; the
kernel's pipe or socket buffer holds the bytes until they are read.

Endpoints: a file descriptor (int) or anything with ``fileno()``: a
``multiprocessing`` Connection (fork or spawn), a socket, a file opened with
``buffering=0``. The descriptor must be blocking. Both sides must use
send/receive: the framing is this module's own, not ``Connection.send_bytes``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import InvalidArgumentError, InvalidTypeError, TransferError

if TYPE_CHECKING:
    from .factory import SecretFactory
    from .secret import Secret

HEADER = 8
DEFAULT_MAX_SIZE = 16 * 1024 * 1024


def fd_of(endpoint: object) -> int:
    """The file descriptor behind ``endpoint`` (an int or an object with ``fileno()``)."""
    if endpoint.__class__ is int:
        assert isinstance(endpoint, int)
        return endpoint
    fileno = getattr(endpoint, "fileno", None)
    if not callable(fileno):
        raise InvalidTypeError(f"expected a file descriptor or an object with fileno(), not {type(endpoint).__name__}")
    try:
        fd = fileno()
    except (OSError, ValueError) as e:
        raise TransferError(getattr(e, "errno", None) or 0, f"no usable file descriptor: {e}") from e
    if fd.__class__ is not int:
        raise InvalidTypeError(f"fileno() returned {fd!r}, not an int")
    return int(fd)


def _write_all(fd: int, data: memoryview | bytes) -> None:
    view = memoryview(data)
    try:
        done = 0
        while done < len(view):
            done += os.write(fd, view[done:])
    except OSError as e:
        raise TransferError(e.errno, f"could not send the secret on fd {fd}: {e.strerror}") from e
    finally:
        view.release()


def send(secret: Secret, endpoint: object) -> None:
    """Write ``secret`` (length, then bytes from a borrow) to ``endpoint``.

    Raises InvalidTypeError for an unusable endpoint, TransferError when the
    write fails (a closed or non-blocking descriptor, a peer that went away),
    SecretClosedError when the secret is closed.
    """
    fd = fd_of(endpoint)
    size = len(secret)
    with secret.borrow() as view:
        _write_all(fd, size.to_bytes(HEADER, "big"))
        _write_all(fd, view)


def _read_into(fd: int, view: memoryview) -> None:
    done = 0
    total = len(view)
    try:
        while done < total:
            n = os.readv(fd, [view[done:]])
            if n == 0:
                raise TransferError(0, f"the sender closed fd {fd} after {done} of {total} bytes")
            done += n
    except BlockingIOError as e:
        raise TransferError(e.errno, f"fd {fd} is non-blocking and has no data ready; use a blocking one") from e
    except OSError as e:
        if isinstance(e, TransferError):
            raise
        raise TransferError(e.errno, f"could not receive a secret on fd {fd}: {e.strerror}") from e


def receive(factory: SecretFactory, endpoint: object, *, max_size: int = DEFAULT_MAX_SIZE) -> Secret:
    """A Secret read from ``endpoint`` as :func:`send` wrote it, straight into its locked memory.

    Raises InvalidArgumentError when the announced length is 0 or above
    ``max_size`` (nothing is allocated), TransferError when the data ends
    early or cannot be read (everything read so far is wiped and freed).
    """
    fd = fd_of(endpoint)
    if max_size.__class__ is not int or max_size < 1:
        raise InvalidArgumentError(f"max_size must be a positive int, not {max_size!r}")
    header = bytearray(HEADER)
    _read_into(fd, memoryview(header))
    size = int.from_bytes(header, "big")
    if not 1 <= size <= max_size:
        raise InvalidArgumentError(f"invalid secret length: {size} announced by the sender (max_size={max_size})")

    def fill(view: memoryview) -> None:
        _read_into(fd, view)

    return factory.create(size, fill)
