#!/usr/bin/env bash
# The mutation campaign: every catalogue mutation must be caught by the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m harness.mutate --jobs "$(nproc)"
