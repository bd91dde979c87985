"""Fork fence: no AEAD object the library built exists at the instant of fork().

A ChaCha20-Poly1305 object keeps copies of its key inside OpenSSL's cipher
context, in ordinary heap memory, for as long as it lives. A fork() taken by
one thread while another is in the middle of a seal or an open would hand the
child those copies: unlocked, dumpable, and never wiped, because the child has
no thread left to free them.

Every AEAD object the library builds lives inside a lease of :data:`fence`
(:meth:`ForkFence.enter` before it is built, :meth:`ForkFence.leave` after the
last reference to it is gone). A before-fork hook takes the fence's lock,
waits until no other thread holds a lease, and keeps the lock (so no lease can
start) until the fork is done in parent and child. A thread that forks while
it holds a lease itself (from a signal handler that interrupted a seal) cannot
wait for itself: only other threads' leases are waited for.

Leases are counted per thread under one lock; nothing relies on the GIL.
"""

from __future__ import annotations

import os
import threading
import traceback

from .._gate import hold


class ForkFence:
    """Leases around AEAD objects, and the fork hooks that wait for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._leases: dict[int, int] = {}  # thread ident -> leases held
        self._fencing = False

    def enter(self) -> None:
        """Take a lease (waits while a fork is in progress)."""
        me = threading.get_ident()
        with hold(self._cond):
            self._leases[me] = self._leases.get(me, 0) + 1

    def leave(self) -> None:
        """Give back a lease taken by this thread; wakes a waiting fork."""
        me = threading.get_ident()
        with hold(self._cond):
            left = self._leases.get(me, 0) - 1
            if left > 0:
                self._leases[me] = left
            else:
                self._leases.pop(me, None)
            if self._fencing:  # only a fork waits on the condition
                self._cond.notify_all()

    def held(self) -> int:
        """Leases held now, by every thread."""
        with hold(self._cond):
            return sum(self._leases.values())

    def _others_hold(self, me: int) -> bool:
        return any(thread != me for thread in self._leases)

    def before_fork(self) -> None:
        self._cond.acquire()
        self._fencing = True
        me = threading.get_ident()
        while self._others_hold(me):
            self._cond.wait()

    def after_fork_in_parent(self) -> None:
        if self._fencing:
            self._fencing = False
            self._cond.release()

    def after_fork_in_child(self) -> None:
        # Only the forking thread survives: its own leases are the only ones left.
        me = threading.get_ident()
        own = self._leases.get(me, 0)
        self._cond = threading.Condition(threading.RLock())
        self._leases = {me: own} if own else {}
        self._fencing = False


def drop_frames(exc: BaseException, outer: BaseException | None) -> None:
    """Clear the local variables of the finished frames in ``exc``'s traceback and in
    those of its causes and contexts, down to ``outer`` (the exception that was
    being handled before the lease began, left alone), so that no AEAD object
    outlives its lease inside a traceback the caller keeps."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        e = pending.pop()
        if e is None or e is outer or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        pending += [e.__cause__, e.__context__]


fence = ForkFence()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=fence.before_fork,
        after_in_parent=fence.after_fork_in_parent,
        after_in_child=fence.after_fork_in_child,
    )
