"""The mutation catalogue: one broken protection per entry, each caught by a scenario.

Every entry replaces ``old`` (which must occur exactly once in ``path``) with
``new``, breaking exactly one protection while leaving the library working;
``scenarios`` names the scenarios expected to catch it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutation:
    name: str  # unique, snake_case
    protection: str  # the protection's one name, shared by its scenario
    path: str  # repository-relative source file (C or Python)
    old: str  # exact text; must occur exactly once in the file
    new: str
    scenarios: tuple[str, ...]  # scenarios expected to catch it


MUTATIONS: list[Mutation] = [
    # -- constant time --------------------------------------------------------------
    Mutation(
        "equal_early_exit_c", "constant_time", "securememory/memguard/guard.c",
        "    unsigned char d = 0;\n"
        "    for (size_t i = 0; i < len; i++)\n"
        "        d |= x[i] ^ y[i];\n"
        "    return d == 0;\n",
        "    for (size_t i = 0; i < len; i++)\n"
        "        if (x[i] != y[i])\n"
        "            return 0;\n"
        "    return 1;\n",
        ("constant_time",),
    ),
    Mutation(
        "equal_early_exit_python", "constant_time", "securememory/secret.py",
        "            return bool(lib.sm_equal(ffi.from_buffer(a), ffi.from_buffer(b), self._size))\n",
        "            return a == b  # memoryview comparison: stops at the first differing byte\n",
        ("constant_time",),
    ),
]
