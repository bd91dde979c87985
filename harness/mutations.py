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
        name="equal_early_exit_c",
        protection="constant_time",
        path="securememory/memguard/guard.c",
        old="    unsigned char d = 0;\n"
        "    for (size_t i = 0; i < len; i++)\n"
        "        d |= x[i] ^ y[i];\n"
        "    return d == 0;\n",
        new="    for (size_t i = 0; i < len; i++)\n"
        "        if (x[i] != y[i])\n"
        "            return 0;\n"
        "    return 1;\n",
        scenarios=("constant_time",),
    ),
    Mutation(
        name="equal_early_exit_python",
        protection="constant_time",
        path="securememory/secret.py",
        old="            return bool(lib.sm_equal(ffi.from_buffer(a), ffi.from_buffer(b), self._size))\n",
        new="            return a == b  # memoryview comparison: stops at the first differing byte\n",
        scenarios=("constant_time",),
    ),
]
