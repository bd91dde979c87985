#!/usr/bin/env bash
# Docs: the API reference built from the docstrings (any warning fails), then every README snippet run.
# Expects the project's virtualenv to be active (as .ci/run leaves it).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e '.[docs]'
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
sphinx-build -q -W --keep-going -b html docs "$out"
echo "API reference built without warnings"
python docs/run_snippets.py README.md
