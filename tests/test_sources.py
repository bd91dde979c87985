"""Input sources: terminal, delimited readers, file descriptors, files, environment, reader checks."""

from __future__ import annotations

import io
import os
import pty
import signal
import socket
import termios
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _secret_helpers import BACKENDS
from _terminal import type_and_wait
from test_create import footprint

from securememory import InvalidArgumentError, InvalidTypeError, SecretFactory
from securememory.errors import SourceReadError


@pytest.fixture(params=BACKENDS)
def factory(request: pytest.FixtureRequest) -> Iterator[SecretFactory]:
    f = SecretFactory(request.param)
    f.create_random(1).close()
    yield f


def pipe_with(data: bytes, close: bool = True) -> tuple[int, int]:
    r, w = os.pipe()
    os.write(w, data)
    if close:
        os.close(w)
    return r, w


# -- readers: buffered ones refused, bad readinto results refused ------------------


def test_buffered_file_is_refused_with_the_unbuffered_way(factory: SecretFactory, tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_bytes(b"0123456789")
    before = footprint()
    with open(path, "rb") as f, pytest.raises(InvalidTypeError, match="buffering=0"):
        factory.from_reader(f, 10)
    with open(path) as t, pytest.raises(InvalidTypeError, match="buffered"):
        factory.from_reader(t, 10)
    assert footprint() == before
    with open(path, "rb", buffering=0) as raw, factory.from_reader(raw, 10) as secret:
        assert secret.with_bytes(bytes) == b"0123456789"


def test_buffered_socket_is_refused(factory: SecretFactory) -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"token-token")
        with b.makefile("rb") as f, pytest.raises(InvalidTypeError, match="makefile"):
            factory.from_reader(f, 11)
        with b.makefile("rb", buffering=0) as f, factory.from_reader(f, 11) as secret:
            assert secret.with_bytes(bytes) == b"token-token"


class Returns(io.RawIOBase):
    def __init__(self, *results: Any) -> None:
        self.results = list(results)

    def readable(self) -> bool:
        return True

    def readinto(self, view: Any) -> Any:
        result = self.results.pop(0)
        if isinstance(result, int) and not isinstance(result, bool) and 0 < result <= len(view):
            view[:result] = b"x" * result
        return result


@pytest.mark.parametrize("result", [True, False, 1.0, -1, 99])
def test_readinto_lengths_that_are_not_ints_in_range_are_refused(factory: SecretFactory, result: Any) -> None:
    before = footprint()
    with pytest.raises(InvalidArgumentError, match="invalid length"):
        factory.from_reader(Returns(result), 4)
    assert footprint() == before


def test_none_from_a_non_blocking_reader_raises(factory: SecretFactory) -> None:
    from securememory.memguard import Buffer

    with pytest.raises(SourceReadError, match="no data ready") as info:
        Buffer.from_entire_reader(Returns(3, None))
    assert info.value.errno == 11
    before = footprint()
    r, w = pipe_with(b"abc", close=False)
    os.set_blocking(r, False)
    try:
        with pytest.raises(SourceReadError, match="non-blocking"):
            factory.from_fd(r)
    finally:
        os.close(r)
        os.close(w)
    assert footprint() == before


# -- from_fd ---------------------------------------------------------------------


def test_from_fd_exact_and_to_end(factory: SecretFactory) -> None:
    r, _ = pipe_with(b"abcdefgh")
    try:
        with factory.from_fd(r, 3) as head, factory.from_fd(r) as rest:
            assert head.with_bytes(bytes) == b"abc"
            assert rest.with_bytes(bytes) == b"defgh"
    finally:
        os.close(r)


def test_from_fd_large_to_end(factory: SecretFactory) -> None:
    data = os.urandom(20000)
    r, w = os.pipe()
    t = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
    t.start()
    try:
        with factory.from_fd(r) as secret:
            assert secret.with_bytes(bytes) == data
    finally:
        t.join()
        os.close(r)


def test_from_fd_errors(factory: SecretFactory) -> None:
    before = footprint()
    r, _ = pipe_with(b"ab")
    with pytest.raises(InvalidArgumentError, match="ended after 2 of 5"):
        factory.from_fd(r, 5)
    with pytest.raises(InvalidArgumentError, match="no data"):
        factory.from_fd(r)
    os.close(r)
    with pytest.raises(SourceReadError):
        factory.from_fd(r, 1)
    with pytest.raises(InvalidTypeError):
        factory.from_fd("0")  # type: ignore[arg-type]
    assert footprint() == before


# -- from_file -------------------------------------------------------------------


def test_from_file_refuses_a_fifo_without_blocking(factory: SecretFactory, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    before = footprint()
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        factory.from_file(fifo)  # no writer: would block forever if opened blocking
    assert footprint() == before


def test_from_file_reads_a_fifo_when_asked(factory: SecretFactory, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as f:
            f.write(b"through a fifo")

    t = threading.Thread(target=write)
    t.start()
    try:
        with factory.from_file(fifo, any_file=True) as secret:
            assert secret.with_bytes(bytes) == b"through a fifo"
    finally:
        unblock = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # lets the writer's open return in any case
        t.join()
        os.close(unblock)


# -- from_reader_until -------------------------------------------------------------


def test_until_stops_at_the_delimiter_and_consumes_nothing_after(factory: SecretFactory) -> None:
    r, _ = pipe_with(b"hunter2\nnext line\n")
    with open(r, "rb", buffering=0) as f:
        with factory.from_reader_until(f, b"\n", max_size=64) as secret:
            assert secret.with_bytes(bytes) == b"hunter2"
        with factory.from_reader_until(f, ord("\n"), max_size=9) as secret:
            assert secret.with_bytes(bytes) == b"next line"


def test_until_multibyte_delimiter_and_end_of_data(factory: SecretFactory) -> None:
    r, _ = pipe_with(b"a\r\nb\r\nlast")
    with open(r, "rb", buffering=0) as f:
        assert factory.from_reader_until(f, b"\r\n", max_size=1).with_bytes(bytes) == b"a"
        assert factory.from_reader_until(f, b"\r\n", max_size=1).with_bytes(bytes) == b"b"
        assert factory.from_reader_until(f, b"\r\n", max_size=4).with_bytes(bytes) == b"last"


@pytest.mark.parametrize("data", [b"toolong\n", b"toolong", b"tool\r", b"\n"])
def test_until_errors_leave_nothing(factory: SecretFactory, data: bytes) -> None:
    before = footprint()
    r, _ = pipe_with(data)
    with open(r, "rb", buffering=0) as f, pytest.raises(InvalidArgumentError):
        factory.from_reader_until(f, b"\r\n" if b"\r" in data else b"\n", max_size=3)
    assert footprint() == before


def test_until_bad_arguments(factory: SecretFactory) -> None:
    with pytest.raises(InvalidTypeError):
        factory.from_reader_until(io.BytesIO(b"x\n"), "\n", max_size=4)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError):
        factory.from_reader_until(io.BytesIO(b"x\n"), b"", max_size=4)
    with pytest.raises(InvalidArgumentError):
        factory.from_reader_until(io.BytesIO(b"x\n"), b"\n", max_size=0)
    with pytest.raises(InvalidTypeError):
        factory.from_reader_until(io.BytesIO(b"x\n"), b"\n", max_size=None)  # type: ignore[arg-type]


# -- from_env --------------------------------------------------------------------


def test_from_env_takes_and_unsets(factory: SecretFactory) -> None:
    os.environ["SM_TEST_TOKEN"] = "tok-" + "en" * 8
    with factory.from_env("SM_TEST_TOKEN") as secret:
        assert secret.with_bytes(bytes) == b"tok-" + b"en" * 8
    assert "SM_TEST_TOKEN" not in os.environ
    assert os.getenv("SM_TEST_TOKEN") is None


def test_from_env_keep(factory: SecretFactory) -> None:
    os.environ["SM_TEST_KEEP"] = "kept-value"
    with factory.from_env("SM_TEST_KEEP", unset=False) as secret:
        assert secret.with_bytes(bytes) == b"kept-value"
    assert os.environ["SM_TEST_KEEP"] == "kept-value"


def test_from_env_errors(factory: SecretFactory) -> None:
    before = footprint()
    os.environ.pop("SM_TEST_MISSING", None)
    with pytest.raises(InvalidArgumentError, match="not set"):
        factory.from_env("SM_TEST_MISSING")
    os.environ["SM_TEST_EMPTY"] = ""
    with pytest.raises(InvalidArgumentError, match="invalid secret length: 0"):
        factory.from_env("SM_TEST_EMPTY")
    with pytest.raises(InvalidArgumentError):
        factory.from_env("A=B")
    with pytest.raises(InvalidTypeError):
        factory.from_env(b"X")  # type: ignore[arg-type]
    assert footprint() == before


# -- getpass through a pseudo-terminal ----------------------------------------------


def _drive(factory_backend: str, keys: list[bytes], max_size: int = 64) -> tuple[list[str], bytes]:
    """Run getpass in a child whose controlling terminal is a pty; type ``keys``.

    Returns the child's report lines and everything it wrote to the terminal.
    """
    report_r, report_w = os.pipe()
    pid, master = pty.fork()
    if pid == 0:  # child: the pty is its controlling terminal
        os.close(report_r)
        # ^C must raise KeyboardInterrupt here: pytest-xdist's workers ignore SIGINT on 3.14+
        signal.signal(signal.SIGINT, signal.default_int_handler)
        lines: list[str] = []
        try:
            secret = SecretFactory(factory_backend).getpass("Key: ", max_size=max_size)
            lines.append("got " + secret.with_bytes(bytes).hex())
        except BaseException as e:
            lines.append(f"raised {type(e).__name__}: {e}")
        fd = os.open("/dev/tty", os.O_RDWR)
        attrs = termios.tcgetattr(fd)
        lines.append(f"echo {bool(attrs[3] & termios.ECHO)} icanon {bool(attrs[3] & termios.ICANON)}")
        lines.append(f"footprint {footprint()}")
        os.write(report_w, "\n".join(lines).encode())
        os._exit(0)
    os.close(report_w)
    shown, status = type_and_wait(pid, master, b"Key: ", keys)
    with os.fdopen(report_r, "rb") as f:
        report = f.read().decode().splitlines()
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, report
    return report, shown


@pytest.mark.parametrize("backend", BACKENDS)
def test_getpass_reads_without_echo_and_restores(backend: str) -> None:
    report, shown = _drive(backend, [b"hunterX\x7f2", b"\n"])
    assert report[0] == "got " + b"hunter2".hex()
    assert report[1] == "echo True icanon True"
    assert b"hunter" not in shown and b"Key: " in shown


def test_getpass_backspace_kill_line_and_carriage_return() -> None:
    report, _ = _drive("protected", [b"\x7f\x08wrong\x15right\x08T\r"])
    assert report[0] == "got " + b"righT".hex()


def test_getpass_ctrl_c_restores_the_terminal_and_leaves_nothing() -> None:
    report, shown = _drive("protected", [b"secr", b"\x03"])
    assert report[0].startswith("raised KeyboardInterrupt")
    assert report[1] == "echo True icanon True"
    assert b"secr" not in shown
    assert report[2] == "footprint (0, 0, 0, " + report[2].split(", ")[3]


def test_getpass_too_long_and_empty() -> None:
    report, _ = _drive("protected", [b"12345\n"], max_size=4)
    assert report[0] == "raised InvalidArgumentError: input longer than max_size=4 bytes"
    assert report[1] == "echo True icanon True"
    report, _ = _drive("protected", [b"\n"])
    assert report[0].startswith("raised InvalidArgumentError: invalid secret length: 0")


def test_getpass_without_a_terminal_says_so() -> None:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setsid()  # no controlling terminal from here on
        try:
            SecretFactory().getpass()
            msg = b"no error"
        except SourceReadError as e:
            msg = str(e).encode()
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r, "rb") as f:
        msg = f.read()
    assert b"no controlling terminal" in msg and b"from_reader_until" in msg
