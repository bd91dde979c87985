#!/usr/bin/env bash
# Build the registry-free base image: a debootstrapped Debian root with
# python3, python3-venv and python3-pip, imported into Docker.
#
# The Debian mirror is read from this machine's apt sources at run time
# (override with SM_DEBIAN_MIRROR). The root filesystem tarball is cached
# outside the repository (SM_CACHE_DIR, default /var/cache/securememory), so a
# later run skips debootstrap, and an already imported image skips the import.
#
# Usage: docker/build-base.sh            prints the image tag on stdout
# Env:   DOCKER (client command), SM_CACHE_DIR, SM_DEBIAN_SUITE (bookworm),
#        SM_DEBIAN_MIRROR, SM_BASE_INCLUDE (extra comma-separated packages,
#        installed with apt-get in the new root so their dependencies resolve)
set -euo pipefail

DOCKER=${DOCKER:-docker}
CACHE_DIR=${SM_CACHE_DIR:-/var/cache/securememory}
SUITE=${SM_DEBIAN_SUITE:-bookworm}
INCLUDE="python3,python3-venv,python3-pip"
EXTRA=${SM_BASE_INCLUDE:-}
VARIANT=minbase
RECIPE=1   # bump to invalidate cached roots when the recipe below changes

log() { printf '[build-base] %s\n' "$*" >&2; }

arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
key=$(printf '%s|%s|%s|%s|%s' "$RECIPE" "$SUITE" "$arch" "$VARIANT" "$INCLUDE+$EXTRA" | sha256sum | cut -c1-12)
tarball="$CACHE_DIR/rootfs-$SUITE-$arch-$key.tar"
tag="securememory-base:$SUITE-$key"

# The mirror serving Debian's main archive, as apt on this machine sees it.
find_mirror() {
    if [[ -n ${SM_DEBIAN_MIRROR:-} ]]; then
        printf '%s\n' "$SM_DEBIAN_MIRROR"
        return
    fi
    local targets
    # shellcheck disable=SC2016  # apt's own $(FIELD) placeholders
    targets=$(apt-get indextargets --format '$(SITE) $(RELEASE) $(COMPONENT) $(TARGET_OF)' 2>/dev/null | sort -u || true)
    # Prefer an entry for the suite itself, then any plain release (not
    # -updates, -security or -backports) of the main component.
    local site
    site=$(awk -v s="$SUITE" '$2 == s && $3 == "main" && $4 == "deb" { print $1; exit }' <<<"$targets")
    if [[ -z $site ]]; then
        site=$(awk '$2 !~ /-/ && $3 == "main" && $4 == "deb" { print $1; exit }' <<<"$targets")
    fi
    if [[ -z $site ]]; then
        log "no Debian main archive found in this machine's apt sources (run apt-get update, or set SM_DEBIAN_MIRROR)"
        return 1
    fi
    printf '%s\n' "${site%/}"
}

unmount_under() {
    local dir=$1 m
    awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done
}

make_rootfs() {
    local mirror work
    mirror=$(find_mirror)
    work=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
    # shellcheck disable=SC2064
    trap "unmount_under '$work/root'; rm -rf --one-file-system '$work'" EXIT
    log "debootstrap $SUITE ($VARIANT, $INCLUDE${EXTRA:+ + $EXTRA}) from $mirror"
    local start=$SECONDS
    if ! debootstrap --variant="$VARIANT" --include="$INCLUDE" "$SUITE" "$work/root" "$mirror" \
            >"$work/debootstrap.log" 2>&1; then
        tail -n 30 "$work/debootstrap.log" >&2
        [[ -f $work/root/debootstrap/debootstrap.log ]] && tail -n 30 "$work/root/debootstrap/debootstrap.log" >&2
        log "debootstrap failed"
        return 1
    fi
    if [[ -n $EXTRA ]]; then
        log "apt-get install ${EXTRA//,/ } in the new root"
        mount -t proc proc "$work/root/proc"
        if ! chroot "$work/root" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq --no-install-recommends ${EXTRA//,/ }" >"$work/apt.log" 2>&1; then
            tail -n 30 "$work/apt.log" >&2
            log "installing ${EXTRA//,/ } failed"
            return 1
        fi
    fi
    unmount_under "$work/root"
    rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* \
        "$work/root/var/cache/apt/"*.bin "$work/root/var/log/"*.log
    log "root built in $((SECONDS - start)) s; writing $tarball"
    tar --numeric-owner -C "$work/root" -cf "$work/rootfs.tar" .
    mv "$work/rootfs.tar" "$tarball"
    find "$CACHE_DIR" -maxdepth 1 -name "rootfs-$SUITE-$arch-*.tar" ! -path "$tarball" -delete
    unmount_under "$work/root"
    rm -rf --one-file-system "$work"
    trap - EXIT
}

mkdir -p "$CACHE_DIR"
exec 9>"$CACHE_DIR/build-base.lock"
flock 9

if "$DOCKER" image inspect "$tag" >/dev/null 2>&1; then
    log "image $tag present"
    printf '%s\n' "$tag"
    exit 0
fi

if [[ -f $tarball ]]; then
    log "cached root $tarball"
else
    command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 1; }
    make_rootfs
fi

log "docker import -> $tag"
"$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    "$tarball" "$tag" >/dev/null
# Drop base images of earlier recipes.
"$DOCKER" images --format '{{.Repository}}:{{.Tag}}' securememory-base | while read -r old; do
    [[ $old == "securememory-base:$SUITE-"* && $old != "$tag" ]] && "$DOCKER" rmi "$old" >/dev/null 2>&1
    true
done
printf '%s\n' "$tag"
