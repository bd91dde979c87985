"""The Python layer imports where POSIX-only modules and names are missing, as on Windows.

A fresh interpreter hides ``resource`` and ``fcntl`` and deletes the signals,
``os`` functions and ``mmap`` flags Windows lacks, then imports every module of
the package; calls that need what is missing raise UnsupportedError.
"""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import errno, importlib, mmap, os, pkgutil, signal, sys

sys.modules["resource"] = None
sys.modules["fcntl"] = None
for module, names in (
    (signal, ["SIGBUS", "SIGKILL", "SIGSTOP", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD",
              "SIGPIPE", "SIGQUIT", "pthread_sigmask", "sigwait"]),
    (os, ["fork", "register_at_fork", "getuid", "sysconf"]),
    (mmap, ["MAP_PRIVATE", "MAP_ANONYMOUS", "MADV_HUGEPAGE", "MADV_DONTDUMP"]),
):
    for name in names:
        if hasattr(module, name):
            delattr(module, name)

import securememory

names = [m.name for m in pkgutil.walk_packages(securememory.__path__, "securememory.")]
for name in names:
    importlib.import_module(name)
print("imported", len(names))

from securememory import catch_signal
from securememory.errors import InvalidArgumentError, MemoryLockError, UnsupportedError
from securememory.memcall import system

for fn in (system.memlock_limit, system.core_limit):
    try:
        fn()
    except UnsupportedError as e:
        print("unsupported:", e)
    else:
        raise SystemExit(fn.__name__ + " did not raise UnsupportedError")
error = system.lock_error(errno.ENOMEM, 4096)
assert isinstance(error, MemoryLockError) and error.limit_soft == system.UNLIMITED, error
try:
    catch_signal(None, signal.SIGSEGV)
except InvalidArgumentError as e:
    print("refused:", e)
else:
    raise SystemExit("catch_signal accepted SIGSEGV")
"""


def test_imports_without_posix_only_names() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("imported ") and int(lines[0].split()[1]) >= 20, done.stdout
    assert sum(line.startswith("unsupported: RLIMIT_") for line in lines) == 2, done.stdout
    assert any(line.startswith("refused: SIGSEGV is fatal") for line in lines), done.stdout
    assert "Warning" not in done.stderr, done.stderr
