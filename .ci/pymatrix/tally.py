"""One matrix cell from the logs run-one.sh left in OUT.

Prints one tab-separated line: status (ok or FAIL), interpreter version,
harness cell, tests cell, packaging cell, notes. Writes OUT/details with the failing scenarios
and tests. Runs on the interpreter under test, so it uses the standard library only.
"""

from __future__ import annotations

import json
import re
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

# The exception pytest reports for a failed test: "E   module.SomeError: message".
WARNINGS = re.compile(r"\b(\d+) warnings?\b")
ERROR_LINE = re.compile(r"^E\s+([\w.]*(?:Error|Exception|Warning|Exit|Interrupt))\b.*$", re.MULTILINE)


def read(path: Path, default: str = "") -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return default


def harness_cell(out: Path, details: list[str]) -> tuple[str, bool]:
    rc = read(out / "harness.rc", "missing")
    verdicts: Counter[str] = Counter()
    for line in read(out / "harness.jsonl").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        verdicts[row.get("verdict", "?")] += 1
        if row.get("verdict") == "FAIL":
            details.append(f"harness FAIL {row.get('scenario')}: {row.get('observed')} ({row.get('reason')})")
    total = sum(verdicts.values())
    if total == 0:
        return f"no result (exit {rc})", False
    cell = f"{verdicts['PASS']}/{total} PASS"
    if verdicts["FAIL"]:
        cell += f", {verdicts['FAIL']} FAIL"
    if verdicts["UNSUPPORTED"]:
        cell += f", {verdicts['UNSUPPORTED']} UNSUPPORTED"
    return cell, rc == "0" and verdicts["FAIL"] == 0


def tests_cell(out: Path, details: list[str]) -> tuple[str, bool, list[str]]:
    rc = read(out / "pytest.rc", "missing")
    try:
        root = ET.parse(out / "junit.xml").getroot()
    except (OSError, ET.ParseError):
        return f"no result (pytest exit {rc})", False, []
    passed = failed = skipped = 0
    kinds: Counter[str] = Counter()
    for case in root.iter("testcase"):
        outcome = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            passed += 1
        elif outcome.tag == "skipped":
            skipped += 1
        else:
            failed += 1
            error = ERROR_LINE.search(outcome.text or "")
            message = error.group(0)[:200] if error else (outcome.get("message") or outcome.tag).splitlines()[0]
            kinds[error.group(1).rsplit(".", 1)[-1] if error else outcome.tag] += 1
            details.append(f"test {outcome.tag.upper()} {case.get('classname')}::{case.get('name')}: {message}")
    cell = f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
    notes = [f"{n}x {kind}" for kind, n in kinds.most_common(3)]
    return cell, rc == "0" and failed == 0 and passed > 0, notes


# A frame of a test function in a faulthandler dump: File ".../tests/test_x.py", line 12 in test_y
TEST_FRAME = re.compile(r'File "[^"]*/(tests/test_\w+\.py)", line (\d+) in (test_\w+)')


def hung_tests(stacks: str) -> list[str]:
    """The tests a hung run's stack dump (.ci/limit.py, SIGWINCH) was inside, innermost line each."""
    found: dict[str, str] = {}
    for path, line, name in TEST_FRAME.findall(stacks):
        found.setdefault(f"{path}::{name}", f"{path}::{name} (line {line})")
    return list(found.values())


def package_cell(out: Path, details: list[str]) -> tuple[str, bool]:
    """The sdist and the abi3 wheel installed and run outside the tree (.ci/package.sh)."""
    rc = read(out / "package.rc", "")
    if not rc:
        return "not asked", True
    if rc == "0":
        return "sdist, wheel work", True
    failed = [line for line in read(out / "package.log").splitlines() if "FAILED" in line or "FAIL" in line]
    details.append("packaging: " + (failed[-1] if failed else f"exit {rc}"))
    return f"FAIL (exit {rc})", False


def main() -> int:
    out = Path(sys.argv[1])
    version = read(out / "version", "?")
    details: list[str] = []
    if read(out / "install.rc") != "0":
        tail = read(out / "install.log").splitlines()[-1:] or ["?"]
        (out / "details").write_text(read(out / "install.log") + "\n", encoding="utf-8")
        print(f"FAIL\t{version}\tnot run\tnot run\tnot run\tinstall failed: {tail[0][:160]}")
        return 0
    harness, harness_ok = harness_cell(out, details)
    tests, tests_ok, notes = tests_cell(out, details)
    package, package_ok = package_cell(out, details)
    mutate_rc = read(out / "mutate.rc", "missing")
    if mutate_rc != "0":
        last = read(out / "mutate.log").splitlines()[-1:] or [f"exit {mutate_rc}"]
        notes.append(f"mutations for newer interpreters: {last[0][:160]}")
    for step in ("harness", "mutate", "pytest", "package"):
        if read(out / f"{step}.rc") in ("124", "137"):
            notes.append(f"{step} timed out")
    hung = hung_tests(read(out / "stacks.log"))
    if hung:
        notes.append("hung in " + ", ".join(hung))
        details.extend(f"test HUNG {where}" for where in hung)
    log = read(out / "pytest.log")
    fatal = log.count("Fatal Python error") + read(out / "harness.log").count("Fatal Python error")
    if fatal:
        notes.append(f"{fatal}x 'Fatal Python error' printed")
    probe = read(out / "fork_probe.log").splitlines()
    probe_ok = read(out / "fork_probe.rc") == "0"
    if not probe_ok:
        threads = next((line[len("threads: ") :] for line in probe if line.startswith("threads: ")), None)
        if threads not in (None, "none"):
            notes.append(f"thread left running at fork: {threads}")
        elif threads == "none":
            notes.append("fork warned: " + probe[0][:100])
        else:
            notes.append("fork probe failed: " + (probe[-1][:100] if probe else "no output"))
    closing = WARNINGS.search(log.splitlines()[-1] if log else "")
    warnings = int(closing.group(1)) if closing else 0
    if warnings:
        notes.append(f"{warnings} warnings")
    (out / "details").write_text("".join(d + "\n" for d in details), encoding="utf-8")
    ok = harness_ok and tests_ok and package_ok and mutate_rc == "0" and probe_ok and not fatal and not warnings
    print(f"{'ok' if ok else 'FAIL'}\t{version}\t{harness}\t{tests}\t{package}\t{'; '.join(notes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
