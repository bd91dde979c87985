"""fuzz/run.py without the fuzzer: it says what to install and exits 3, never 1 (a finding)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parent.parent / "fuzz" / "run.py"


def test_missing_atheris_is_not_a_finding() -> None:
    # -S leaves site-packages (and atheris with them) off the path; run.py itself needs only the stdlib.
    out = subprocess.run([sys.executable, "-S", str(RUN), "--seconds", "1"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "atheris is not installed" in out.stderr and "pip install" in out.stderr
    assert "FINDING" not in out.stdout


def test_help_documents_the_exit_statuses() -> None:
    out = subprocess.run([sys.executable, str(RUN), "--help"], capture_output=True, text=True, check=True, timeout=60)
    for status in ("0  every target ran clean", "1  a finding", "2  bad arguments", "3  the fuzzer is not installed"):
        assert status in out.stdout
