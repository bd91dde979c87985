#!/usr/bin/env bash
# CI's dashboard stage, after the asv pass: publish the asv site self-contained (scripts and styles
# from the npm registry), open it in headless Chromium with no network but loopback and check the
# benchmark list and a graph from the DOM and a screenshot; then the target report as a picture and
# a page. Artifacts: .asv/screenshots/*.png, .asv/artifacts/report.{png,html,txt}.
# Needs root on Debian (apt) when chromium or npm is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v npm >/dev/null || missing+=(npm)
command -v chromium >/dev/null || missing+=(chromium)
if ((${#missing[@]})); then
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
fi

python benchmarks/publish.py
python benchmarks/dashboard.py
mkdir -p .asv/artifacts
python benchmarks/report.py --plot .asv/artifacts/report.png --html .asv/artifacts/report.html \
    >.asv/artifacts/report.txt
tail -n 2 .asv/artifacts/report.txt
