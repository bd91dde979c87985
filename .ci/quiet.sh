#!/usr/bin/env bash
# Run a command, stream its output, and fail when the output holds a
# "Fatal Python error" (a crash not captured by the test that caused it).
# The command's own exit status wins when it is non-zero; 3 means it passed
# but printed fatal-error text.
set -uo pipefail
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
if grep -n "Fatal Python error" "$log" >&2; then
    echo "quiet.sh: the run above printed fatal-error text (lines listed)" >&2
    exit 3
fi
