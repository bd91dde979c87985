"""Every scenario, registered on import (one module per protection family).

The import order is the report's order.
"""

from . import faults  # isort: skip
from . import copies  # isort: skip
from . import borrows, dumps, forking, locking, memfd, signals, syscall_faults

__all__ = ["borrows", "copies", "dumps", "faults", "forking", "locking", "memfd", "signals", "syscall_faults"]
