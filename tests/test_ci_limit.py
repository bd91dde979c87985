""".ci/limit.py: a run that outlives its limit is killed, exits 124 and leaves the hung test's stack."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".ci" / "pymatrix"))
import tally  # noqa: E402


def test_a_hung_test_is_killed_and_named(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    hung = tmp_path / "tests" / "test_hangs.py"
    hung.write_text(textwrap.dedent("""
        import faulthandler, signal, sys, time

        def test_waits_forever():
            faulthandler.register(signal.SIGWINCH, file=open(sys.argv[1], "a"), all_threads=True)
            time.sleep(600)

        test_waits_forever()
    """))
    stacks = tmp_path / "stacks.log"
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "limit.py"), "5", sys.executable, str(hung), str(stacks)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 124, out
    assert "still running after 5 s" in out.stderr and str(hung) in out.stderr
    assert tally.hung_tests(stacks.read_text()) == ["tests/test_hangs.py::test_waits_forever (line 6)"]


def test_the_command_status_is_kept() -> None:
    command = [sys.executable, "-c", "raise SystemExit(3)"]
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "limit.py"), "30", *command],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 3 and out.stderr == ""
