#!/usr/bin/env bash
# CI's Docker stage: the restricted-memlock matrix in real containers
# (docker/run-matrix.sh). Needs root on a Debian machine with apt access to
# Debian's packages and pip access to PyPI; starts and stops its own dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash docker/run-matrix.sh "$@"
