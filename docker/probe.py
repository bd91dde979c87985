"""What a container gives securememory: one JSON object per check on stdout.

Run inside the image (``docker run -i IMAGE python - < docker/probe.py``).
Each line follows the harness's --json shape: "scenario", "verdict" (here the
observed value, compared against docker/expectations.json), "observed" and
"reason". The capability report of securememory goes to stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def emit(scenario: str, value: str, reason: str = "") -> None:
    print(json.dumps({"scenario": scenario, "verdict": value, "observed": value, "reason": reason}), flush=True)


def main() -> int:
    emit("probe:uid", "root" if os.getuid() == 0 else "non-root", f"uid {os.getuid()}")
    limit = subprocess.run(["sh", "-c", "ulimit -l"], capture_output=True, text=True, check=False)
    emit("probe:ulimit -l", limit.stdout.strip() or f"error {limit.returncode}", "KiB, from sh")
    try:
        from securememory.memcall import capabilities
    except Exception as exc:  # the image is broken: say so in every remaining row
        for row in ("probe:CAP_IPC_LOCK", "probe:mlock", "probe:memfd_secret"):
            emit(row, "ERROR", f"import failed: {exc!r}")
        return 1
    caps = capabilities()
    print(caps.report(), file=sys.stderr)
    emit("probe:CAP_IPC_LOCK", "held" if caps.cap_ipc_lock else "not held")
    emit("probe:mlock", "works" if caps.mlock_works else "fails", "one page, locked and unlocked")
    emit("probe:memfd_secret", "available" if caps.memfd_secret else "unavailable")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
