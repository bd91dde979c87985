from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

def configure(
    closed: type[BaseException],
    escaped: type[BaseException],
    forked: type[BaseException],
    borrow: type[BaseException],
    protection: type[BaseException],
    clear_frames: Callable[[TracebackType], None],
    /,
) -> None: ...

class Borrow:
    def __enter__(self) -> memoryview: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None, /
    ) -> bool: ...

class Gate:
    def __init__(
        self,
        data: int,
        size: int,
        span: int = 0,
        span_len: int = 0,
        expose: Callable[[], tuple[Any, int, int, int]] | None = None,
        conceal: Callable[[Any, bool], None] | None = None,
    ) -> None: ...
    def call(self, action: Callable[[memoryview], T], /) -> T: ...
    def borrow(self, keep: object, /) -> Borrow: ...
    def close(self, teardown: Callable[[bool], None], /) -> bool: ...
    def retire(self) -> int: ...
    @property
    def count(self) -> int: ...
    @property
    def closing(self) -> int: ...
    @property
    def escaped(self) -> bool: ...
    @property
    def forked(self) -> bool: ...
    @property
    def exposed(self) -> Any: ...
