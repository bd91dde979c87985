"""The restricted profile: drop CAP_IPC_LOCK and tighten RLIMIT_MEMLOCK.

Root with CAP_IPC_LOCK ignores RLIMIT_MEMLOCK, so a limit alone proves
nothing here. :func:`apply` removes the capability from the bounding,
inheritable, permitted, effective and ambient sets (irreversibly, for this
process and its children), then sets the limit. Call it only in a child.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import resource
from dataclasses import dataclass

CAP_IPC_LOCK = 14
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

DEFAULT_LIMIT = 64 * 1024


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class RestrictError(OSError):
    """The restricted profile could not be applied."""


@dataclass(frozen=True)
class Restriction:
    """A memlock limit in bytes (soft = hard) applied without CAP_IPC_LOCK."""

    memlock: int = DEFAULT_LIMIT

    def describe(self) -> str:
        return f"no CAP_IPC_LOCK, RLIMIT_MEMLOCK {self.memlock // 1024} KiB"


def _check(ok: bool, what: str) -> None:
    if not ok:
        err = ctypes.get_errno()
        raise RestrictError(err, f"{what}: {os.strerror(err)}")


def drop_ipc_lock() -> None:
    """Remove CAP_IPC_LOCK from every capability set of this process."""
    # Bounding set first (needs CAP_SETPCAP; EPERM without it is harmless when
    # the capability is already absent from the other sets).
    _libc.prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK, 0, 0, 0)
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = _Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_Data * 2)()
    _check(_libc.capget(ctypes.byref(header), data) == 0, "capget")
    mask = ~(1 << CAP_IPC_LOCK) & 0xFFFFFFFF
    data[0].effective &= mask
    data[0].permitted &= mask
    data[0].inheritable &= mask
    _check(_libc.capset(ctypes.byref(header), data) == 0, "capset")


def apply(restriction: Restriction) -> None:
    """Drop CAP_IPC_LOCK, then set RLIMIT_MEMLOCK to ``restriction.memlock``.

    Raises RestrictError when the limit cannot be set (a hard limit below it
    and no CAP_SYS_RESOURCE, as in a container started with memlock=0).
    """
    drop_ipc_lock()
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (restriction.memlock, restriction.memlock))
    except (ValueError, OSError) as e:
        hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]
        raise RestrictError(
            errno.EPERM, f"cannot set RLIMIT_MEMLOCK to {restriction.memlock} bytes (hard limit {hard}): {e}"
        ) from None


def supported() -> str | None:
    """None when the profile can be applied here, else the reason it cannot."""
    if not hasattr(os, "fork"):
        return "no fork() on this platform"
    if not os.path.exists("/proc/self/status"):
        return "no /proc: capabilities cannot be checked"
    return None
