"""What this process may lock and dump: limits, capabilities and /proc facts.

Everything here only reads; it is shared by :func:`capabilities` and by the
errors that must name the limit that was hit.
"""

from __future__ import annotations

import platform
import sys

from ..errors import MemoryLockError, UnsupportedError

try:
    import resource
except ImportError:  # Windows: no POSIX resource limits
    resource = None  # type: ignore[assignment]

CAP_IPC_LOCK = 14
UNLIMITED = -1


def _limit(value: int) -> int:
    return UNLIMITED if value == resource.RLIM_INFINITY else value


def _rlimit(name: str) -> tuple[int, int]:
    if resource is None:
        raise UnsupportedError(f"{name} does not exist on this platform (no POSIX resource limits)")
    soft, hard = resource.getrlimit(getattr(resource, name))
    return _limit(soft), _limit(hard)


def memlock_limit() -> tuple[int, int]:
    """RLIMIT_MEMLOCK as (soft, hard) in bytes, -1 meaning unlimited.

    Raises UnsupportedError where there are no resource limits (Windows, whose
    locking is bounded by the working-set minimum, which locking raises).
    """
    return _rlimit("RLIMIT_MEMLOCK")


def core_limit() -> tuple[int, int]:
    """RLIMIT_CORE as (soft, hard) in bytes, -1 meaning unlimited; UnsupportedError as above."""
    return _rlimit("RLIMIT_CORE")


def _status_field(name: str) -> str | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def locked_bytes() -> int:
    """Bytes this process has locked (VmLck), 0 where /proc is unavailable."""
    field = _status_field("VmLck")
    return int(field.split()[0]) * 1024 if field else 0


def has_capability(cap: int) -> bool:
    """Whether capability number ``cap`` is in this process's effective set (Linux)."""
    field = _status_field("CapEff")
    return field is not None and bool(int(field, 16) >> cap & 1)


def read_text(path: str) -> str | None:
    """A small /proc or /sys file's content, stripped; None when unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def ptrace_scope() -> int | None:
    """Yama's ptrace_scope (0-3), None without Yama."""
    value = read_text("/proc/sys/kernel/yama/ptrace_scope")
    return int(value) if value is not None and value.isdigit() else None


def kernel() -> str:
    return f"{platform.system()} {platform.release()}" if sys.platform != "win32" else platform.platform()


def lock_error(errno: int, requested: int) -> MemoryLockError:
    """The MemoryLockError for a failed mlock of ``requested`` bytes, naming the limit."""
    try:
        soft, hard = memlock_limit()
    except UnsupportedError:
        soft = hard = UNLIMITED
    return MemoryLockError(
        errno=errno,
        requested=requested,
        limit_soft=soft,
        limit_hard=hard,
        locked=locked_bytes(),
        cap_ipc_lock=has_capability(CAP_IPC_LOCK),
    )
