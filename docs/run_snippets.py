"""Run every ```python block of the given Markdown files, each in a fresh interpreter.

    python docs/run_snippets.py README.md

Each block becomes a script preceded by ``from snippet_fixtures import *``
(see docs/snippet_fixtures.py), run as ``__main__`` under a pseudo-terminal
in a scratch directory. Prints one line per block and exits 1 when any block
fails (its output is shown).
"""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PROMPT = b"Password: "
TIMEOUT = 120.0


def blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def run_block(code: str, workdir: Path) -> tuple[int, str]:
    """(exit status, output) of ``code`` run as a script under a pseudo-terminal."""
    script = workdir / "snippet.py"
    script.write_text("from snippet_fixtures import *  # noqa\n" + code)
    env = dict(os.environ, API_KEY="snippet-api-key", PYTHONPATH=os.pathsep.join([str(HERE), str(workdir)]))
    pid, master = pty.fork()
    if pid == 0:
        os.chdir(workdir)
        os.execve(sys.executable, [sys.executable, str(script)], env)
    output = b""
    typed = False
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if not typed and PROMPT in output:
                os.write(master, b"hunter2\r")
                typed = True
        else:
            os.kill(pid, 9)
            output += b"\n[timed out]"
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(master)
    code_ = os.waitstatus_to_exitcode(status)
    return code_, output.decode(errors="replace")


def main(argv: list[str]) -> int:
    failed = 0
    for name in argv or ["README.md"]:
        for line, code in blocks(Path(name)):
            with tempfile.TemporaryDirectory(prefix="snippet-") as tmp:
                workdir = Path(tmp)
                (workdir / "tls.key").write_bytes(os.urandom(64))
                status, output = run_block(code, workdir)
                shutil.rmtree(workdir / "__pycache__", ignore_errors=True)
            ok = status == 0
            print(f"{'ok  ' if ok else 'FAIL'} {name}:{line}")
            if not ok:
                failed += 1
                print(f"  exit status {status}; output:\n" + "\n".join("    " + s for s in output.splitlines()))
    print(f"{failed} snippet(s) failed" if failed else "every snippet ran")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
