"""fuzz/run.py without the fuzzer: it says what to install and exits 3, never 1 (a finding)."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

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


# Inputs the targets once reported as leaks: an enclave borrow leaves its wiped,
# NO_ACCESS scratch page idle in the pool, which is a cache, not a leak.
FOUND = {"constructors": "LwEA8XE=", "secret_ops": "EAAKAAA="}


@pytest.mark.parametrize("target", sorted(FOUND))
def test_inputs_once_reported_run_clean(target: str, tmp_path: Path) -> None:
    pytest.importorskip("atheris", reason="atheris comes with the dev extras: pip install -e '.[dev]'")
    unit = tmp_path / "input"
    unit.write_bytes(base64.b64decode(FOUND[target]))
    script = RUN.parent / "targets" / f"{target}.py"
    out = subprocess.run([sys.executable, str(script), str(unit)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
