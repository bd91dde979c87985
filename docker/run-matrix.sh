#!/usr/bin/env bash
# Build the securememory image and run the harness and the restricted tests in
# containers under each memlock environment of docker/expectations.json; print
# the matrix (environment x scenario -> verdict) and exit non-zero when any
# cell differs from its documented expectation.
#
# Usage: docker/run-matrix.sh [--probe-only]
#   --probe-only   run only the container probe (user, ulimit -l, mlock,
#                  capabilities), not the harness and the tests
#
# What it does, as root on a Debian machine without Docker running:
#   - installs Debian's docker.io and debootstrap if missing (apt-get);
#   - starts dockerd in the background if no engine answers, and stops it (by
#     PID) on exit; that daemon has no bridge network and touches no iptables:
#     every build step and container runs with --network none;
#   - builds the base image with docker/build-base.sh (debootstrap + import,
#     rootfs cached in SM_CACHE_DIR), unless SM_DOCKER_BASE names an image to
#     use instead (e.g. python:3.11-slim-bookworm, pulled from a registry);
#   - builds the project's wheel and its dependencies' wheels on the host
#     (dependency wheels cached in SM_CACHE_DIR) and the image from them;
#   - runs each environment's containers, in parallel.
#
# Env: PYTHON (host interpreter for the wheels, default python3), DOCKER,
#      SM_CACHE_DIR (/var/cache/securememory), SM_DOCKER_BASE, SM_BASE_INCLUDE
#      (extra Debian packages for the base, default gdb), SM_MATRIX_OUT
#      (keep raw outputs there), SM_MATRIX_TIMEOUT (seconds per container, 300).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PYTHON=${PYTHON:-python3}
CACHE_DIR=${SM_CACHE_DIR:-/var/cache/securememory}
EXPECT=$HERE/expectations.json
IMAGE=securememory-matrix:latest
TIMEOUT=${SM_MATRIX_TIMEOUT:-300}
PROBE_ONLY=0
for arg in "$@"; do
    case $arg in
        --probe-only) PROBE_ONLY=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

T0=$SECONDS
log() { printf '[docker-matrix %3ds] %s\n' "$((SECONDS - T0))" "$*" >&2; }

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/securememory-docker.XXXXXX")
DOCKERD_PID=
POLICY_RC=

# shellcheck disable=SC2317  # called through the EXIT trap
cleanup() {
    local rc=$?
    if [[ -n $POLICY_RC ]]; then rm -f "$POLICY_RC"; fi
    if [[ -n $DOCKERD_PID ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        log "stopping dockerd (pid $DOCKERD_PID)"
        kill -TERM "$DOCKERD_PID" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            log "dockerd did not stop; killing it"
            kill -KILL "$DOCKERD_PID" 2>/dev/null || true
        fi
        wait "$DOCKERD_PID" 2>/dev/null || true
    fi
    rm -rf "$STAGE"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- tools -----------------------------------------------------------------
engine_answers() { "${DOCKER:-docker}" info >/dev/null 2>&1; }

need=()
if engine_answers; then
    :
elif ! command -v dockerd >/dev/null; then
    need+=(docker.io)
fi
if [[ -z ${SM_DOCKER_BASE:-} ]] && ! command -v debootstrap >/dev/null; then
    need+=(debootstrap)
fi
if ((${#need[@]})) || ! engine_answers; then
    if [[ $(id -u) != 0 ]]; then
        log "no Docker engine answers; installing and starting one needs root"
        exit 1
    fi
fi
if ((${#need[@]})); then
    log "installing ${need[*]}"
    # Keep the package scripts from starting services: this script starts
    # (and stops) the one daemon it needs.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        POLICY_RC=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC"
        chmod +x "$POLICY_RC"
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    if [[ -n $POLICY_RC ]]; then rm -f "$POLICY_RC"; POLICY_RC=; fi
fi

# ---- engine ----------------------------------------------------------------
DOCKER=${DOCKER:-docker}
export DOCKER
export DOCKER_BUILDKIT=0

if engine_answers; then
    log "using the running Docker engine"
else
    log "starting dockerd"
    dockerd --bridge=none --iptables=false --ip6tables=false \
        >"$STAGE/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 1 120); do
        engine_answers && break
        kill -0 "$DOCKERD_PID" 2>/dev/null || break
        sleep 0.5
    done
    if ! engine_answers; then
        tail -n 30 "$STAGE/dockerd.log" >&2
        log "dockerd did not come up"
        exit 1
    fi
    log "dockerd up (pid $DOCKERD_PID)"
fi

# ---- base image --------------------------------------------------------------
if [[ -n ${SM_DOCKER_BASE:-} ]]; then
    BASE=$SM_DOCKER_BASE
    "$DOCKER" image inspect "$BASE" >/dev/null 2>&1 || "$DOCKER" pull -q "$BASE" >/dev/null
else
    # gdb gives the harness gcore for its live core dump scenario.
    BASE=$(SM_CACHE_DIR="$CACHE_DIR" SM_BASE_INCLUDE=${SM_BASE_INCLUDE-gdb} bash "$HERE/build-base.sh")
fi
log "base image $BASE"

host_py=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
base_py=$("$DOCKER" run --rm --network none "$BASE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [[ $host_py != "$base_py" ]]; then
    log "the wheels are built for Python $host_py on this host, but the image has Python $base_py;"
    log "set PYTHON to a python$base_py interpreter"
    exit 1
fi

# ---- wheels ------------------------------------------------------------------
mkdir -p "$STAGE/ctx/wheels/project" "$STAGE/ctx/wheels/deps" "$STAGE/ctx/work" "$CACHE_DIR"
export PIP_DISABLE_PIP_VERSION_CHECK=1
log "building the securememory wheel"
# From a copy of the sources (tracked and untracked, not ignored), so no build
# output lands in the work tree and none of an earlier build's leftovers gets in.
mkdir -p "$STAGE/src"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z -co --exclude-standard \
        | tar -C "$ROOT" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$STAGE/src" -xf -
else
    tar -C "$ROOT" --exclude=.git --exclude=.venv --exclude=build --exclude='*.egg-info' -cf - . \
        | tar -C "$STAGE/src" -xf -
fi
"$PYTHON" -m pip wheel -q --no-deps -w "$STAGE/ctx/wheels/project" "$STAGE/src" >"$STAGE/wheel.log" 2>&1 \
    || { tail -n 30 "$STAGE/wheel.log" >&2; exit 1; }

# The runtime and test requirements, read from pyproject.toml.
"$PYTHON" - "$ROOT/pyproject.toml" >"$STAGE/requirements.txt" <<'EOF'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for req in [*project.get("dependencies", []), *project.get("optional-dependencies", {}).get("test", [])]:
    print(req)
EOF
tag=$("$PYTHON" -c 'import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())')
deps_key=$( { cat "$STAGE/requirements.txt"; echo "$tag"; } | sha256sum | cut -c1-16)
deps_dir=$CACHE_DIR/wheels-$deps_key
if [[ ! -f $deps_dir/.complete ]]; then
    log "fetching dependency wheels ($(tr '\n' ' ' <"$STAGE/requirements.txt"))"
    rm -rf "$deps_dir"
    mkdir -p "$deps_dir"
    "$PYTHON" -m pip wheel -q -w "$deps_dir" -r "$STAGE/requirements.txt" >"$STAGE/deps.log" 2>&1 \
        || { tail -n 30 "$STAGE/deps.log" >&2; rm -rf "$deps_dir"; exit 1; }
    touch "$deps_dir/.complete"
fi
cp -p "$deps_dir"/*.whl "$STAGE/ctx/wheels/deps/"

cp "$HERE/Dockerfile" "$STAGE/ctx/Dockerfile"
cp "$ROOT/pyproject.toml" "$STAGE/ctx/work/"
# The tests import the harness by its repository name, next to them.
cp -r "$ROOT/harness" "$STAGE/ctx/work/harness"
find "$STAGE/ctx/work/harness" -name __pycache__ -prune -exec rm -rf {} +
if [[ -d $ROOT/tests ]]; then
    cp -r "$ROOT/tests" "$STAGE/ctx/work/tests"
    find "$STAGE/ctx/work/tests" \( -name __pycache__ -o -name .pytest_cache -o -name .hypothesis \) \
        -prune -exec rm -rf {} +
else
    mkdir -p "$STAGE/ctx/work/tests"
fi

# ---- image -------------------------------------------------------------------
log "building $IMAGE"
old_image=$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
"$DOCKER" build --network none --build-arg "BASE=$BASE" -t "$IMAGE" "$STAGE/ctx" \
    >"$STAGE/build.log" 2>&1 || { tail -n 40 "$STAGE/build.log" >&2; exit 1; }
new_image=$("$DOCKER" image inspect -f '{{.Id}}' "$IMAGE")
if [[ -n $old_image && $old_image != "$new_image" ]]; then
    "$DOCKER" rmi "$old_image" >/dev/null 2>&1 || true
fi

# ---- containers --------------------------------------------------------------
OUT=${SM_MATRIX_OUT:-$STAGE/results}
rm -rf "$OUT"
mkdir -p "$OUT"

# run_step ENV STEP DOCKER_RUN_ARGS... -- COMMAND...
run_step() {
    local env=$1 step=$2 dir=$OUT/$1
    shift 2
    local args=()
    while [[ $1 != -- ]]; do args+=("$1"); shift; done
    shift
    local rc=0
    timeout --kill-after=10 "$TIMEOUT" "$DOCKER" run --rm -i --network none "${args[@]}" "$IMAGE" "$@" \
        >"$dir/$step.out" 2>"$dir/$step.err" <"${STDIN_FILE:-/dev/null}" || rc=$?
    echo "$rc" >"$dir/$step.rc"
}

run_env() {
    local env=$1
    shift
    mkdir -p "$OUT/$env"
    STDIN_FILE=$HERE/probe.py run_step "$env" probe "$@" -- python -
    if ((PROBE_ONLY)); then return; fi
    run_step "$env" harness "$@" -- python -m securememory.harness --json
    # only the modules with restricted tests: the others may import what the image lacks (benchmarks, matplotlib)
    # shellcheck disable=SC2046
    run_step "$env" pytest "$@" -- python -m pytest -m "restricted and not slow" -q -p no:cacheprovider \
        $(cd "$ROOT" && grep -l "mark.restricted" tests/test_*.py)
}

log "running containers"
pids=()
while IFS=$'\t' read -r -a fields; do
    env=${fields[0]}
    run_env "$env" "${fields[@]:1}" &
    pids+=($!)
done < <("$PYTHON" "$HERE/matrix.py" envs "$EXPECT")
for pid in "${pids[@]}"; do wait "$pid" || true; done

log "done"
echo
status=0
if ((PROBE_ONLY)); then
    "$PYTHON" "$HERE/matrix.py" report "$EXPECT" "$OUT" --only-prefix probe: || status=$?
else
    "$PYTHON" "$HERE/matrix.py" report "$EXPECT" "$OUT" || status=$?
fi
if ((status)) && [[ -z ${SM_MATRIX_OUT:-} ]]; then
    # Keep the raw outputs of a failing run.
    keep=$(mktemp -d "${TMPDIR:-/tmp}/securememory-matrix.XXXXXX")
    cp -r "$OUT/." "$keep/"
    echo "raw container outputs: $keep"
fi
echo "docker stage: $((SECONDS - T0)) s"
exit "$status"
