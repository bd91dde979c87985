"""memguard: guarded Buffers, sealed Enclaves, the Coffer, streams and purge.

The middle layer of securememory. A :class:`Buffer` is one mapping of
``[guard page][canary ... data][guard page]``, locked, kept out of core dumps
and wiped on fork; an :class:`Enclave` keeps a secret encrypted in ordinary
memory under the session key held by the Coffer; a :class:`Stream` holds data
too large to lock at once. :func:`purge` destroys every live buffer and
replaces the session key; a C handler wipes every live buffer on a fatal signal.
"""

from ..memcall import Protection
from .buffer import Buffer
from .buffer_reader import BufferReader
from .coffer import NONCE_BUDGET, Coffer, get_coffer
from .crash import crash_wipe_installed, disable_crash_wipe, enable_crash_wipe
from .enclave import OVERHEAD, Enclave
from .exits import purge, safe_exit, safe_panic
from .policy import MlockPolicy, get_mlock_policy, set_mlock_policy
from .registry import Registry, registry
from .scratch import release_scratch
from .stream import Stream
from .wipe import copy_bytes, move_bytes, scramble_bytes, wipe_bytes

__all__ = [
    "NONCE_BUDGET",
    "OVERHEAD",
    "Buffer",
    "BufferReader",
    "Coffer",
    "Enclave",
    "MlockPolicy",
    "Protection",
    "Registry",
    "Stream",
    "crash_wipe_installed",
    "disable_crash_wipe",
    "enable_crash_wipe",
    "copy_bytes",
    "get_coffer",
    "get_mlock_policy",
    "move_bytes",
    "purge",
    "registry",
    "release_scratch",
    "safe_exit",
    "safe_panic",
    "scramble_bytes",
    "set_mlock_policy",
    "wipe_bytes",
]
