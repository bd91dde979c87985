"""Where secrets come from: terminals, delimited readers, file descriptors, files, the environment.

Each source reads straight into locked memory (``readinto``/``os.readv`` on
the secret's pages, or on a locked, guarded staging Buffer when the length is
only known at the end), so no Python ``str`` or ``bytes`` of the secret is
ever made. A failure wipes and frees everything read so far.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import io
import os
import select
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._native import ffi, lib
from .errors import InvalidArgumentError, InvalidTypeError, SourceReadError
from .memguard import Buffer
from .memguard.reading import fill_from, readinto_of

if TYPE_CHECKING:
    from .factory import SecretFactory
    from .secret import Secret

_BACKSPACE = (0x08, 0x7F)
_KILL_LINE = 0x15  # Ctrl-U
_END = (0x0A, 0x0D, 0x04)  # newline, carriage return, Ctrl-D


def _check_max(max_size: object) -> int:
    if max_size.__class__ is not int:
        raise InvalidTypeError(f"max_size must be an int, not {type(max_size).__name__}")
    assert isinstance(max_size, int)
    if max_size < 1:
        raise InvalidArgumentError(f"max_size must be at least 1, got {max_size}")
    return max_size


def staged(factory: SecretFactory, max_size: int, read: Callable[[memoryview], int]) -> Secret:
    """A secret of the ``read(view)`` bytes that ``read`` writes at the start of a
    ``max_size``-byte locked staging Buffer (wiped and freed however this ends)."""
    staging = Buffer(_check_max(max_size), mlock=factory.mlock)
    view = staging.view()
    try:
        n = read(view)

        def copy(dst: memoryview) -> None:
            dst[:] = view[:n]

        return factory.create(n, copy)
    finally:
        view.release()
        staging.destroy()


def entire(factory: SecretFactory, reader: Any) -> Secret:
    """Everything ``reader`` yields until end of data (see Buffer.from_entire_reader)."""
    buf = Buffer.from_entire_reader(reader, mlock=factory.mlock)
    view = buf.view()
    try:

        def copy(dst: memoryview) -> None:
            dst[:] = view

        return factory.create(len(view), copy)
    finally:
        view.release()
        buf.destroy()


def from_fd(factory: SecretFactory, fd: int, size: int | None = None) -> Secret:
    """Exactly ``size`` bytes, or (``size=None``) everything until end of data, read from ``fd``.

    ``fd`` is read with read(2) straight into locked memory and left open.
    Raises InvalidArgumentError when the data ends early (or is empty),
    SourceReadError for a read error or no data ready on a non-blocking fd.
    """
    if fd.__class__ is not int:
        raise InvalidTypeError(f"fd must be an int, not {type(fd).__name__}")
    try:
        with io.FileIO(fd, "rb", closefd=False) as f:
            return factory.from_reader(f, size) if size is not None else entire(factory, f)
    except SourceReadError:
        raise
    except OSError as e:
        raise SourceReadError(e.errno, f"could not read file descriptor {fd}: {e.strerror}") from e


def from_file(factory: SecretFactory, path: str | os.PathLike[str], *, any_file: bool = False) -> Secret:
    """The whole file at ``path``, read unbuffered into locked memory.

    The file is opened non-blocking, so a FIFO without a writer cannot hang
    the call, and must be a regular file unless ``any_file=True``, which
    reads a FIFO, socket or character device to end of data, waiting (with
    poll) for a writer and its data.
    Raises SourceReadError when it cannot be opened or read,
    InvalidArgumentError when it is not a regular file (and ``any_file`` is
    False) or is empty.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidTypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        raise SourceReadError(e.errno, e.strerror, name) from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) and not any_file:
            raise InvalidArgumentError(
                f"{name!r} is not a regular file; pass any_file=True to read it to end of data"
            )
        if stat.S_ISREG(st.st_mode):
            os.set_blocking(fd, True)
            return from_fd(factory, fd, st.st_size)
        return entire(factory, _Polled(fd))
    except SourceReadError as e:
        raise SourceReadError(e.errno, e.strerror, name) from e
    except OSError as e:
        raise SourceReadError(e.errno, e.strerror, name) from e
    finally:
        os.close(fd)


class _Polled:
    """readinto on a non-blocking descriptor that waits for data with poll().

    A FIFO opened non-blocking reads as empty until a writer comes, while
    poll() waits for that writer's data (or its hang-up), as a blocking open
    and read would, but without the open that hangs forever.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    def readinto(self, view: memoryview) -> int:
        while True:
            self._poll.poll()
            try:
                return os.readv(self._fd, [view])
            except BlockingIOError:
                continue


def _delimiter(delimiter: object) -> bytes:
    if isinstance(delimiter, int) and not isinstance(delimiter, bool) and 0 <= delimiter <= 255:
        return bytes((delimiter,))
    if not isinstance(delimiter, bytes) or not delimiter:
        raise InvalidTypeError(f"delimiter must be a non-empty bytes or a byte value, not {delimiter!r}")
    return delimiter


def from_reader_until(factory: SecretFactory, reader: Any, delimiter: bytes | int, *, max_size: int) -> Secret:
    """Bytes read one at a time from ``reader`` up to ``delimiter`` (not part of the secret) or end of data.

    Reading one byte per call consumes nothing past the delimiter. Raises
    InvalidArgumentError when ``max_size`` bytes pass without the delimiter or
    the secret would be empty (nothing stays allocated), InvalidTypeError for
    a reader without ``readinto`` or a buffered one.
    """
    readinto = readinto_of(reader)
    delim = _delimiter(delimiter)
    k = len(delim)

    def read_until(view: memoryview) -> int:
        total = len(view)
        pos = 0
        while pos < total:
            if not fill_from(readinto, view[pos : pos + 1]):
                if pos > limit:
                    break
                return pos
            pos += 1
            if pos >= k and view[pos - k : pos] == delim:
                view[pos - k : pos] = bytes(k)
                return pos - k
        raise InvalidArgumentError(f"no delimiter {delim!r} within max_size={limit} bytes")

    # Room for a secret of max_size bytes followed by the whole delimiter.
    limit = _check_max(max_size)
    return staged(factory, limit + k, read_until)


def getpass(factory: SecretFactory, prompt: str = "Password: ", *, max_size: int = 4096) -> Secret:
    """A line typed at the controlling terminal (``/dev/tty``) with echo off, without its newline.

    The terminal is switched to non-canonical mode without echo and read one
    byte at a time with read(2) into a locked staging buffer; backspace
    (DEL or ^H) erases the last byte, ^U the whole line, and newline,
    carriage return or ^D ends the input. Its settings are restored (and any
    unread input discarded) on every way out, including KeyboardInterrupt
    from ^C. Raises SourceReadError (ENXIO) when the process has no
    controlling terminal, InvalidArgumentError when the line is empty or
    longer than ``max_size``.
    """
    if not isinstance(prompt, str):
        raise InvalidTypeError(f"prompt must be a str, not {type(prompt).__name__}")
    limit = _check_max(max_size)
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        raise SourceReadError(
            errno.ENXIO,
            f"no controlling terminal to read a password from ({e.strerror}); "
            "read it with from_reader_until(open(0, 'rb', buffering=0, closefd=False), b'\\n', max_size=...)",
        ) from e
    try:
        return staged(factory, limit, lambda view: _read_line(fd, prompt, view))
    finally:
        os.close(fd)


def _read_line(fd: int, prompt: str, view: memoryview) -> int:
    import termios  # POSIX only; imported here so that the package imports everywhere

    try:
        saved = termios.tcgetattr(fd)
    except termios.error as e:
        raise SourceReadError(errno.ENOTTY, f"/dev/tty is not a terminal ({e})") from e
    try:
        quiet = termios.tcgetattr(fd)
        quiet[3] &= ~(termios.ECHO | termios.ICANON)  # lflag; ISIG stays on: ^C still interrupts
        quiet[6][termios.VMIN] = 1
        quiet[6][termios.VTIME] = 0
        termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
        os.write(fd, prompt.encode())
        return _edit(fd, view)
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
        with contextlib.suppress(OSError):
            os.write(fd, b"\n")


def _edit(fd: int, view: memoryview) -> int:
    """Line editing in place: each byte is read into the next free slot of ``view``."""
    pos = 0
    total = len(view)
    while True:
        slot = view[pos : pos + 1] if pos < total else None
        if slot is None:
            raise InvalidArgumentError(f"input longer than max_size={total} bytes")
        if os.readv(fd, [slot]) == 0:
            return pos
        byte = view[pos]
        if byte in _END:
            view[pos] = 0
            return pos
        if byte in _BACKSPACE:
            view[pos] = 0
            if pos:
                pos -= 1
                view[pos] = 0
        elif byte == _KILL_LINE:
            view[: pos + 1] = bytes(pos + 1)
            pos = 0
        else:
            pos += 1


def from_env(factory: SecretFactory, name: str, *, unset: bool = True) -> Secret:
    """The value of environment variable ``name``, copied from the C environment block.

    The value is read where the C library keeps it, never decoded into a
    ``str``. With ``unset=True`` (the default) the C block's copy is
    overwritten in place and the variable is removed; the copies CPython made
    of the environment at startup (``os.environ``/``os.environb``) are
    dropped, not overwritten (they are immutable objects the interpreter may
    share), so their memory holds the value until it is reused. Limits: the environment is a copy made when
    the process started, which can be overwritten but not unmapped; copies
    made before this call (``os.environ[name]`` read earlier, a parent
    process, ``/proc/PID/environ`` of a process that exec'd with it) are out
    of reach. Raises InvalidArgumentError when ``name`` is unset or empty.
    """
    if not isinstance(name, str):
        raise InvalidTypeError(f"name must be a str, not {type(name).__name__}")
    key = os.fsencode(name)
    if not key or b"=" in key or b"\0" in key:
        raise InvalidArgumentError(f"invalid environment variable name {name!r}")
    addr = _getenv(key)
    if not addr:
        raise InvalidArgumentError(f"environment variable {name!r} is not set")
    n = int(_libc().strlen(addr))
    if n == 0:
        raise InvalidArgumentError(f"invalid secret length: 0 (environment variable {name!r} is empty)")
    ptr = ffi.cast("unsigned char *", addr)

    def copy(view: memoryview) -> None:
        ffi.memmove(ffi.from_buffer(view), ptr, n)

    secret = factory.create(n, copy)
    if unset:
        lib.sm_wipe(ptr, n)
        os.environ.pop(name, None)
        os.unsetenv(name)
    return secret


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None)
    libc.getenv.argtypes = [ctypes.c_char_p]
    libc.getenv.restype = ctypes.c_void_p
    libc.strlen.argtypes = [ctypes.c_void_p]
    libc.strlen.restype = ctypes.c_size_t
    return libc


def _getenv(key: bytes) -> int:
    """Address of the value the C library holds for ``key`` (0 when unset)."""
    return int(_libc().getenv(key) or 0)
