"""Every scenario, registered on import (one module per protection family).

The import order is the report's order.
"""

from . import faults  # isort: skip
from . import copies  # isort: skip
from . import teardown  # isort: skip
from . import creation  # isort: skip
from . import (
    borrows,
    canary,
    constant_time,
    crashes,
    decryption,
    dumps,
    forking,
    inputs,
    keys,
    locking,
    memfd,
    purging,
    scratch,
    signals,
    syscall_faults,
)

__all__ = [
    "borrows", "canary", "constant_time", "copies", "crashes", "creation", "decryption", "dumps", "faults",
    "forking", "inputs", "keys", "locking", "memfd", "purging", "scratch", "signals", "syscall_faults", "teardown",
]
