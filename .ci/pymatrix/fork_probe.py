"""Whether using the library leaves threads behind, so that fork() warns (CPython 3.12+).

Uses a secret of every backend, then forks with every warning recorded.
Prints the warnings and the threads other than the main one; exits 1 if
there are any. Independent of pytest, whose forked children lose warnings
and whose error filters CPython 3.13 and 3.14 clear for this warning.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings

from securememory import SecretFactory

secrets = [SecretFactory(backend=backend).create_random(32) for backend in ("protected", "enclave", "legacy")]
for secret in secrets:
    secret.with_bytes(len)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
for warning in caught:
    print(f"{warning.category.__name__}: {warning.message}")
print("threads:", ", ".join(threads) or "none")
for secret in secrets:
    secret.close()
sys.exit(1 if caught or threads else 0)
