# shellcheck shell=bash
# Debian root filesystems for the interpreter matrix: built with debootstrap,
# cached as directories under $SM_ROOTS_DIR (default
# /var/cache/securememory/roots) and reused by later runs on the same machine.
# Sourced by .ci/pymatrix.sh; every function logs to stderr.

SM_ROOTS_DIR=${SM_ROOTS_DIR:-/var/cache/securememory/roots}
# Build tools every interpreter needs: cffi and the extension compile with gcc
# (cffi from source where no wheel exists yet), gdb's gcore backs the harness's
# core-dump scenario.
ROOT_BASE_PACKAGES=(gcc libc6-dev libffi-dev gdb)
ROOT_RECIPE=1   # bump to rebuild every cached root after changing the recipe
HOST_CA=${SM_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

log() { printf '[pymatrix] %s\n' "$*" >&2; }

root_dir() { printf '%s/%s-r%s\n' "$SM_ROOTS_DIR" "$1" "$ROOT_RECIPE"; }

# The mirror serving Debian's main archive, as apt on this machine sees it
# (SM_DEBIAN_MIRROR overrides).
debian_mirror() {
    if [[ -n ${SM_DEBIAN_MIRROR:-} ]]; then
        printf '%s\n' "${SM_DEBIAN_MIRROR%/}"
        return
    fi
    local site try
    for try in 1 2; do
        # shellcheck disable=SC2016  # apt's own $(FIELD) placeholders
        site=$(apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT) $(TARGET_OF)' 2>/dev/null |
            awk '$2 !~ /-/ && $3 == "main" && $4 == "deb" { print $1; exit }')
        [[ -n $site || $try == 2 ]] && break
        apt-get update -qq >&2 || true   # indextargets lists only fetched indexes
    done
    if [[ -z $site ]]; then
        log "no Debian main archive in this machine's apt sources (run apt-get update, or set SM_DEBIAN_MIRROR)"
        return 1
    fi
    printf '%s\n' "${site%/}"
}

# Unmount everything mounted below directory $1, deepest first.
unmount_under() {
    local m
    awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

# Make the root at $1 usable: kernel file systems bound, the host's resolver
# and CA bundle copied in (pip reaches the index through a proxy only the
# host's bundle trusts).
enter_root() {
    local root=$1 fs
    for fs in proc sys dev dev/pts; do
        mountpoint -q "$root/$fs" || mount --bind "/$fs" "$root/$fs"
    done
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    mkdir -p "$root/etc/ssl/certs"
    cp -L "$HOST_CA" "$root/etc/ssl/certs/host-ca.crt"
}

# Run a command in root $1 with a clean environment.
in_root() {
    local root=$1
    shift
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 HOME=/root \
        DEBIAN_FRONTEND=noninteractive CI="${CI:-}" \
        SSL_CERT_FILE=/etc/ssl/certs/host-ca.crt PIP_CERT=/etc/ssl/certs/host-ca.crt \
        PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PYTHONUNBUFFERED=1 \
        chroot "$root" "$@"
}

# apt-get update in root $1. sid's Release file can read as expired, hence
# Check-Valid-Until=false.
root_apt_update() {
    in_root "$1" apt-get -qq -o Acquire::Check-Valid-Until=false -o Acquire::Retries=3 update
}

# apt-get install packages $2... in root $1 (no recommends).
root_apt_install() {
    local root=$1
    shift
    in_root "$root" apt-get install -y -qq --no-install-recommends -o Acquire::Retries=3 "$@" >/dev/null
}

# Build the root of suite $1 unless a complete one is cached; print its path.
# A root is complete once its stamp exists, so an interrupted build is redone.
ensure_root() {
    local suite=$1 root work mirror start
    root=$(root_dir "$suite")
    mkdir -p "$SM_ROOTS_DIR"
    exec {lockfd}>"$root.lock"
    flock "$lockfd"
    if [[ -f $root/.securememory-root ]]; then
        log "$suite: cached root $root"
    else
        mirror=$(debian_mirror) || return 1
        unmount_under "$root"
        rm -rf --one-file-system "$root"
        work="$root.build"
        unmount_under "$work"
        rm -rf --one-file-system "$work"
        start=$SECONDS
        log "$suite: debootstrap (minbase) from $mirror"
        if ! debootstrap --variant=minbase "$suite" "$work" "$mirror" >"$root.log" 2>&1; then
            tail -n 20 "$root.log" >&2
            [[ -f $work/debootstrap/debootstrap.log ]] && tail -n 20 "$work/debootstrap/debootstrap.log" >&2
            log "$suite: debootstrap failed"
            return 1
        fi
        enter_root "$work"
        if ! { root_apt_update "$work" && root_apt_install "$work" "${ROOT_BASE_PACKAGES[@]}"; } >>"$root.log" 2>&1; then
            tail -n 20 "$root.log" >&2
            unmount_under "$work"
            log "$suite: installing ${ROOT_BASE_PACKAGES[*]} failed"
            return 1
        fi
        unmount_under "$work"
        in_root "$work" apt-get clean
        touch "$work/.securememory-root"
        mv "$work" "$root"
        log "$suite: root built in $((SECONDS - start)) s"
    fi
    exec {lockfd}>&-
    printf '%s\n' "$root"
}
