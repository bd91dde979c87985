"""Run a command for at most LIMIT seconds; a hung run leaves its stacks behind.

Usage: limit.py LIMIT COMMAND...

The command runs in a session of its own. When it outlives LIMIT, every
process of that session is sent SIGWINCH, which the test suite turns into a
dump of all its threads' Python stacks (tests/conftest.py, into the file named
by SECUREMEMORY_STACKS); the processes still there are listed on stderr and
killed, and the exit status is 124, as timeout(1) gives. Otherwise the
command's own exit status. Standard library only: it runs on every
interpreter of the matrix.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

GRACE = 5.0  # seconds for the stack dumps to be written


def session(sid: int) -> list[tuple[int, str]]:
    """(pid, command line) of every process whose session is ``sid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[3]) == sid:  # state ppid pgrp session ...
            found.append((int(entry.name), cmdline))
    return sorted(found)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    limit, command = float(argv[0]), argv[1:]
    proc = subprocess.Popen(command, start_new_session=True)
    try:
        return proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        pass
    print(f"limit.py: {' '.join(command)} still running after {limit:.0f} s; its processes:", file=sys.stderr)
    for pid, cmdline in session(proc.pid):
        print(f"  {pid} {cmdline[:200]}", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGWINCH)
    time.sleep(GRACE)
    for pid, _ in session(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    return 124


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
