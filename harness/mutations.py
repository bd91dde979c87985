"""Single-protection changes to the library's source, each of which the named scenarios must catch.

A mutation replaces the exact text ``old`` (which must occur once in ``path``,
relative to the repository root) with ``new``; with it applied, every scenario
in ``scenarios`` must FAIL.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str
    protection: str
    path: str
    old: str
    new: str
    scenarios: tuple[str, ...]


MUTATIONS: list[Mutation] = [
    Mutation(
        name="fork_ignores_aead_in_flight",
        protection="fork() waits until no AEAD object (holding the session key in OpenSSL) exists",
        path="securememory/memguard/forkfence.py",
        old="        while self._others_hold(me):\n            self._cond.wait()\n",
        new="",
        scenarios=("fork_during_aead",),
    ),
    Mutation(
        name="escaped_pages_unmapped",
        protection="quarantine: pages a view escaped from stay reserved and NO_ACCESS after close",
        path="securememory/secret.py",
        old="        self._destroy(Protection.NO_ACCESS if escaped else None)\n",
        new="        self._destroy(None)\n",
        scenarios=("escape_quarantine",),
    ),
    Mutation(
        name="purge_unmaps_under_borrows",
        protection="quarantine: purge keeps pages under borrows in flight reserved (wiped, then NO_ACCESS)",
        path="securememory/secret.py",
        old="        if inflight:\n",
        new="        if False:\n",
        scenarios=("purge_in_flight",),
    ),
    Mutation(
        name="borrow_in_python_without_finally",
        protection="borrow gate: no bytecode boundary between entering a borrow and the guarantee of its exit",
        path="securememory/secret.py",
        old="        return self._gate.call(action)\n\n    def with_bytes_func",
        new=(
            "        borrow = self._inflight = self._gate.borrow(self)\n"
            "        result = action(borrow.__enter__())\n"
            "        borrow.__exit__(None, None, None)\n"
            "        return result\n\n    def with_bytes_func"
        ),
        scenarios=("interrupted_borrows",),
    ),
    Mutation(
        name="no_alternate_signal_stack",
        protection="crash wipe on stack overflow: every thread holding buffers has an alternate signal stack",
        path="securememory/memguard/crash.c",
        old="int sm_crash_altstack(void)\n{\n    if (altstack_ready)\n        return 0;\n",
        new="int sm_crash_altstack(void)\n{\n    if (1)\n        return 0;\n",
        scenarios=("stack_overflow_wipe",),
    ),
]
