"""The mlock policy: what happens when secret pages cannot be locked.

- ``require`` (default): mlock failure raises MemoryLockError and nothing stays
  allocated or locked.
- ``best_effort``: proceed unlocked, warn once per process (UnlockedMemoryWarning),
  and report ``locked=False``.
- ``disabled``: never call mlock.

Resolved per call, else per process (:func:`set_mlock_policy`), else from the
environment variable ``SECUREMEMORY_MLOCK``, else ``require``.
"""

from __future__ import annotations

import enum
import os
import threading
import warnings

from .._gate import hold
from .._native import lib
from ..errors import InvalidArgumentError, InvalidTypeError, MemoryLockError, UnlockedMemoryWarning

ENV_VAR = "SECUREMEMORY_MLOCK"


class MlockPolicy(enum.StrEnum):
    REQUIRE = "require"
    BEST_EFFORT = "best_effort"
    DISABLED = "disabled"


_NATIVE: dict[MlockPolicy, int] = {
    MlockPolicy.REQUIRE: int(lib.SM_LOCK_REQUIRE),
    MlockPolicy.BEST_EFFORT: int(lib.SM_LOCK_BEST_EFFORT),
    MlockPolicy.DISABLED: int(lib.SM_LOCK_NONE),
}

_process_policy: MlockPolicy | None = None
# The environment's value as last read (os.environ's stored form) and its policy.
_env_seen: tuple[object, MlockPolicy] = (None, MlockPolicy.REQUIRE)
_ENV_KEY = os.environ.encodekey(ENV_VAR)
_warned = False
_warn_lock = threading.Lock()


def parse(value: object, source: str = "mlock") -> MlockPolicy:
    """An MlockPolicy from a policy or its name; InvalidArgumentError names the choices."""
    if isinstance(value, MlockPolicy):
        return value
    if not isinstance(value, str):
        raise InvalidTypeError(f"{source} must be a str or MlockPolicy, not {type(value).__name__}")
    try:
        return MlockPolicy(value.strip().lower().replace("-", "_"))
    except ValueError:
        choices = ", ".join(p.value for p in MlockPolicy)
        raise InvalidArgumentError(f"{source}={value!r} is not one of: {choices}") from None


def set_mlock_policy(policy: MlockPolicy | str | None) -> None:
    """Set the process-wide policy; None returns to the environment's (or ``require``)."""
    global _process_policy
    _process_policy = None if policy is None else parse(policy)


def get_mlock_policy() -> MlockPolicy:
    """The process-wide policy in force (the environment is read on every call)."""
    global _env_seen
    if _process_policy is not None:
        return _process_policy
    # Read os.environ's store directly: Mapping.get raises and catches a
    # KeyError whenever the variable is unset.
    environ = os.environ
    store = getattr(environ, "_data", None)
    raw = environ.get(ENV_VAR) if store is None else store.get(_ENV_KEY)
    seen = _env_seen
    if raw == seen[0]:
        return seen[1]
    value = raw if store is None or raw is None else environ.decodevalue(raw)
    policy = parse(value, ENV_VAR) if value else MlockPolicy.REQUIRE
    _env_seen = (raw, policy)
    return policy


def resolve(policy: MlockPolicy | str | None) -> MlockPolicy:
    """The policy for one call: the argument when given, else the process-wide one."""
    return get_mlock_policy() if policy is None else parse(policy)


def lock_mode(policy: MlockPolicy | str | None) -> int:
    """The native SM_LOCK_* mode for one call's policy (None: the process-wide one)."""
    return _NATIVE[get_mlock_policy() if policy is None else parse(policy)]


def warn_unlocked(error: MemoryLockError) -> None:
    """Warn, once per process, that best_effort left secret pages unlocked."""
    global _warned
    with hold(_warn_lock):
        if _warned:
            return
        _warned = True
    warnings.warn(
        f"securememory: secret memory is NOT locked (mlock policy best_effort): {error}",
        UnlockedMemoryWarning,
        stacklevel=3,
    )
