#!/usr/bin/env bash
# Inside a matrix root: install the source tree at SRC into a fresh virtualenv
# of interpreter PYTHON and run the harness and the test suite, leaving logs
# and one result line (tally.py) in OUT.
#
# With DIST (a directory holding the sdist and the manylinux abi3 wheel built
# on the host), also installs each of them into a fresh virtualenv outside the
# tree and runs the installed harness and the README's examples there
# (.ci/package.sh, which reuses what DIST holds).
#
# Usage: run-one.sh PYTHON SRC OUT [DIST]
set -uo pipefail

py=$1 src=$2 out=$3 dist=${4:-}
here=$(dirname "$0")
venv="$out/venv"
rm -rf "$venv"
mkdir -p "$out"
rm -f "$out"/*.log "$out"/*.rc "$out"/harness.jsonl "$out"/junit.xml "$out"/result "$out"/details

"$py" -c 'import platform, sys; print(platform.python_version() + ("t" if not getattr(sys, "_is_gil_enabled", lambda: True)() else ""))' \
    >"$out/version"
if ! { "$py" -m venv "$venv" && "$venv/bin/python" -m pip install -q --upgrade pip &&
        "$venv/bin/python" -m pip install -q -e "${src}[test]"; } >"$out/install.log" 2>&1; then
    echo 1 >"$out/install.rc"
    "$py" "$here/tally.py" "$out" >"$out/result"
    exit 0
fi
echo 0 >"$out/install.rc"

(cd / && "$venv/bin/python" "$here/fork_probe.py") >"$out/fork_probe.log" 2>&1
echo $? >"$out/fork_probe.rc"
cd "$src" || exit 1
# A hung run ends as a failure instead of eating CI's budget, and names the
# test that hung: limit.py has the suite dump its stacks into stacks.log.
limit=${SM_PYMATRIX_TIMEOUT:-1200}
limited() { "$venv/bin/python" "$here/limit.py" "$limit" "$@"; }
export SECUREMEMORY_STACKS=$out/stacks.log
rm -f "$SECUREMEMORY_STACKS"
# Every scenario, constant_time included: each interpreter's comparison is timed here.
limited "$venv/bin/python" -m harness --json >"$out/harness.jsonl" 2>"$out/harness.log"
echo $? >"$out/harness.rc"
# Protections only newer interpreters need (CPython 3.14's with statement)
# are proven here: the host's campaign reports them NOT NEEDED.
limited "$venv/bin/python" -m harness.mutate --newer-only --jobs 2 >"$out/mutate.log" 2>&1
echo $? >"$out/mutate.rc"
# The library's own warnings fail the run. DeprecationWarnings are errors:
# among them the one CPython 3.12+ gives for fork() in a multi-threaded process
# (a library thread makes every later fork warn). UnlockedMemoryWarning is not:
# it is documented best_effort behaviour that tests trigger on purpose.
# On 3.14+ pytest-xdist's workers are themselves multi-threaded (measured with
# a test file that imports nothing), so the fork pytest-forked makes for each
# test warns whatever the library does: that one warning is ignored there.
# CPython 3.13 and 3.14 clear a fork warning a filter makes an error instead
# of raising it, so fork_probe.py checks for threads left behind directly.
filters=(-W error::DeprecationWarning)
if "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 14))'; then
    filters+=(-W "ignore:This process:DeprecationWarning:multiprocessing.popen_fork")
fi
# The whole suite, slow tests included, with its two repetition knobs turned
# down: each scenario repeated twice on each profile instead of 20 times (the
# host's run keeps 20), the stress test 15 s per backend instead of 60.
SECUREMEMORY_HARNESS_RUNS=2 SECUREMEMORY_STRESS_SECONDS=15 \
    limited "$venv/bin/python" -m pytest -n 2 --forked -p no:cacheprovider -q "${filters[@]}" \
    --junitxml="$out/junit.xml" >"$out/pytest.log" 2>&1
echo $? >"$out/pytest.rc"
if [[ -n $dist ]]; then
    SM_DIST=$dist limited bash "$src/.ci/package.sh" "$py" >"$out/package.log" 2>&1
    echo $? >"$out/package.rc"
fi
"$venv/bin/python" "$here/tally.py" "$out" >"$out/result"
