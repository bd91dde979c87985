#!/usr/bin/env bash
# The interpreter matrix: the harness and the test suite of the source tree
# SRC on every CPython Debian offers beyond the host's, each in a Debian root
# filesystem made with debootstrap and cached between runs (.ci/pymatrix/root.sh).
#
#   trixie: its python3.X (3.13)
#   sid:    python3.14 and every newer python3.X it has, found with apt-cache,
#           and any free-threaded build (python3.Xt) a package provides
#
# Each interpreter gets a fresh virtualenv and `pip install -e SRC[test]` of
# its own copy of the tree, then `python -m harness` and
# `pytest -n 2 --forked` (the whole suite, repetitions turned down) with the
# library's warnings as errors
# (.ci/pymatrix/run-one.sh). With SM_PYMATRIX_DIST (the directory where
# .ci/package.sh left the sdist and the manylinux abi3 wheel), each interpreter
# also installs both outside the tree and runs the installed harness and the
# README's examples. Prints a table and exits 1 when any cell failed.
# Logs stay in $SM_PYMATRIX_OUT (default /var/cache/securememory/pymatrix).
#
# Usage: .ci/pymatrix.sh [SRC]        SRC defaults to this repository
# Env:   SM_PYMATRIX_SUITES  suites and lowest version, default "trixie sid:3.14"
#        SM_PYMATRIX_ONLY    run only these interpreters, e.g. "3.14 3.15"
#        SM_PYMATRIX_TIMEOUT seconds each of harness and tests may take (1200)
#        SM_PYMATRIX_DIST    sdist and wheel to try on every interpreter (none)
#        SM_ROOTS_DIR, SM_DEBIAN_MIRROR (see root.sh)
# Needs root (debootstrap, chroot, bind mounts).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "${1:-$here/..}" && pwd)
# shellcheck source=.ci/pymatrix/root.sh
. "$here/pymatrix/root.sh"
SUITES=${SM_PYMATRIX_SUITES:-trixie sid:3.14}
ONLY=${SM_PYMATRIX_ONLY:-}
DIST=${SM_PYMATRIX_DIST:-}
OUT=${SM_PYMATRIX_OUT:-/var/cache/securememory/pymatrix}
start=$SECONDS

[[ -f $src/pyproject.toml ]] || { log "$src is not a source tree (no pyproject.toml)"; exit 2; }
if ! command -v debootstrap >/dev/null; then
    log "installing debootstrap"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

roots=()
# shellcheck disable=SC2329  # the EXIT trap calls it
cleanup() {
    local r
    for r in "${roots[@]}"; do unmount_under "$r"; done
}
trap cleanup EXIT

# Interpreters of root $1 with minor version >= $2, as package names:
# python3.X, then free-threaded builds (packages python3.Xt or python3.X-nogil).
discover() {
    local root=$1 min=$2 names
    names=$(in_root "$root" apt-cache pkgnames python3.)
    sed -nE 's/^python3\.([0-9]+)-venv$/\1 python3.\1/p' <<<"$names" | sort -n |
        awk -v min="$min" '$1 >= min { print $2 }'
    sed -nE 's/^python3\.([0-9]+)(t|-nogil)$/\1 &/p' <<<"$names" | sort -n |
        awk -v min="$min" '$1 >= min { print $2 }'
}

# Those of packages $2... that root $1 can install.
available() {
    local root=$1 pkg
    shift
    for pkg in "$@"; do
        in_root "$root" apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1 && printf '%s\n' "$pkg"
    done
    return 0
}

# Build or reuse the root of suite spec $1 (SUITE[:MIN]), refresh its package
# lists, install its interpreters; write their names to $OUT/SUITE.interpreters.
prepare_suite() {
    local suite=${1%%:*} min=0 root pkgs=() name
    [[ $1 == *:* ]] && min=${1#*:} && min=${min#3.}
    root=$(ensure_root "$suite") || return 1
    enter_root "$root"
    root_apt_update "$root" || { log "$suite: apt-get update failed"; return 1; }
    local names
    names=$(discover "$root" "$min")
    for name in $names; do
        local base=${name%-nogil}
        base=${base%t}
        # shellcheck disable=SC2207  # package names have no spaces
        pkgs+=($(available "$root" "$name" "$name-dev" "$base-dev" "$base-venv"))
    done
    if [[ ${#pkgs[@]} -gt 0 ]]; then
        root_apt_install "$root" "${pkgs[@]}" || { log "$suite: installing ${pkgs[*]} failed"; return 1; }
    fi
    # Each package's interpreter (CPython names a free-threaded one python3.Xt).
    for name in $names; do
        local minor=${name#python3.} exe
        minor=${minor%%[!0-9]*}
        case $name in
            *t | *-nogil) exe=/usr/bin/python3.${minor}t ;;
            *) exe=/usr/bin/python3.$minor ;;
        esac
        if [[ -x $root$exe ]]; then
            printf '%s\n' "$exe"
        else
            log "$suite: $name installed no $exe"
        fi
    done >"$OUT/$suite.interpreters"
    log "$suite: interpreters: $(tr '\n' ' ' <"$OUT/$suite.interpreters")"
}

mkdir -p "$OUT"
pids=()
for spec in $SUITES; do
    roots+=("$(root_dir "${spec%%:*}")")
    rm -f "$OUT/${spec%%:*}.interpreters"
    prepare_suite "$spec" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
log "roots ready in $((SECONDS - start)) s"

rows=()
failed=0
found_ft=0
for spec in $SUITES; do
    suite=${spec%%:*}
    root=$(root_dir "$suite")
    if [[ ! -s $OUT/$suite.interpreters ]]; then
        rows+=("FAIL	$suite	root not ready	not run	not run	see the log above")
        failed=1
        continue
    fi
    # Helpers and source copies live in the root; logs are copied out after.
    rm -rf "$root/opt/securememory/pymatrix"
    mkdir -p "$root/opt/securememory"
    cp -r "$here/pymatrix" "$root/opt/securememory/pymatrix"
    cp "$here/limit.py" "$root/opt/securememory/pymatrix/"
    rm -rf "$root/opt/securememory/dist"
    dist_arg=()
    if [[ -n $DIST ]]; then
        mkdir -p "$root/opt/securememory/dist"
        cp "$DIST"/securememory-*.tar.gz "$DIST"/securememory-*manylinux*.whl "$root/opt/securememory/dist/"
        dist_arg=(/opt/securememory/dist)
    fi
    while read -r exe; do
        tag=${exe##*/python}
        [[ $tag == *t ]] && found_ft=1
        if [[ -n $ONLY && " $ONLY " != *" $tag "* ]]; then
            continue
        fi
        copy=/opt/securememory/src-$tag
        rm -rf "${root:?}$copy"
        mkdir -p "$root$copy"
        if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
            git -C "$src" ls-files -z --cached --others --exclude-standard |
                (cd "$src" && xargs -0 tar --ignore-failed-read -cf - 2>/dev/null) | tar -C "$root$copy" -xf -
        else
            tar -C "$src" --exclude=.venv --exclude=build --exclude='*.so' --exclude=__pycache__ -cf - . |
                tar -C "$root$copy" -xf -
        fi
        cell_start=$SECONDS
        log "$suite $tag: install, harness, tests"
        in_root "$root" env SM_PYMATRIX_TIMEOUT="${SM_PYMATRIX_TIMEOUT:-1200}" bash /opt/securememory/pymatrix/run-one.sh "$exe" "$copy" "/opt/securememory/out-$tag" "${dist_arg[@]}" || true
        rm -rf "${OUT:?}/$tag"
        cp -r "$root/opt/securememory/out-$tag" "$OUT/$tag"
        rm -rf "$OUT/$tag/venv"
        row=$(cat "$OUT/$tag/result" 2>/dev/null || printf 'FAIL\t%s\tno result\tno result\tno result\t' "$tag")
        IFS=$'\t' read -r status version _ <<<"$row"
        rows+=("${row/$'\t'$version$'\t'/$'\t'$version ($suite)$'\t'}")
        [[ $status == ok ]] || failed=1
        log "$suite $tag: $status in $((SECONDS - cell_start)) s (logs: $OUT/$tag)"
        if [[ $status != ok && -s $OUT/$tag/details ]]; then
            head -n 15 "$OUT/$tag/details" | sed 's/^/    /' >&2
        fi
    done <"$OUT/$suite.interpreters"
done

if [[ $found_ft == 0 ]]; then
    echo "note: no free-threaded CPython is packaged in ${SUITES// /, } (no package python3.Xt or python3.X-nogil); no free-threaded run"
fi
printf '\n%-22s %-34s %-34s %-18s %s\n' interpreter harness tests "sdist + wheel" result
for row in "${rows[@]}"; do
    IFS=$'\t' read -r status version harness tests package notes <<<"$row"
    printf '%-22s %-34s %-34s %-18s %s\n' "$version" "$harness" "$tests" "$package" "$status${notes:+: $notes}"
done
echo "interpreter matrix: $((SECONDS - start)) s"
exit "$failed"
