"""The registry of live buffers, and the fork generation.

Thread-safe, O(1) add and remove, a count and a snapshot. It holds weak
references: a Buffer dropped without destroy() is destroyed by the garbage
collector, and purge() reaches everything still alive.

After fork() the child's registry starts empty and the generation advances:
objects created before the fork see a different generation and refuse to work
(their pages were wiped in the child by MADV_WIPEONFORK).
"""

from __future__ import annotations

import functools
import os
import weakref
from typing import Generic, TypeVar

from .._native import lib

T = TypeVar("T")


class Registry(Generic[T]):
    """A thread-safe set of live objects keyed by identity.

    Needs no lock of its own: each method is one dict operation, atomic under
    the GIL (``list(d.values())`` included: it runs no Python code).
    """

    def __init__(self) -> None:
        self._live: dict[int, weakref.ref[T]] = {}

    def add(self, obj: T) -> None:
        key = id(obj)
        # the callback is a C callable: collecting obj runs no Python code here
        self._live[key] = weakref.ref(obj, functools.partial(self._live.pop, key))

    def remove(self, obj: T) -> None:
        self._live.pop(id(obj), None)

    def count(self) -> int:
        return len(self._live)

    def snapshot(self) -> list[T]:
        """The objects alive now (a copy: safe to destroy while iterating)."""
        refs = list(self._live.values())
        return [obj for obj in (ref() for ref in refs) if obj is not None]

    def _reset(self) -> None:
        self._live.clear()


class _Fork:
    """Process generation: 0 in the process that imported securememory, +1 per fork."""

    generation = 0


fork_state = _Fork()
registry: Registry[object] = Registry()


def _after_fork_in_child() -> None:
    fork_state.generation += 1
    registry._reset()
    lib.sm_live_reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
