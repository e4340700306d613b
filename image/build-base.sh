#!/usr/bin/env bash
# Build the local stand-in for the production base image (python:3.12-slim-bookworm), which cannot be
# pulled on machines without a container registry: Debian bookworm (minbase) + python3 + python3-venv,
# made with debootstrap and imported into buildah's storage. Prints the image reference on stdout.
#
#   image/build-base.sh            -> localhost/ragflow-migrate-base:bookworm-<hash>
#
# Cached twice, keyed by the recipe (suite, packages, RECIPE): the image in buildah/podman storage (a
# second run is instant), and the root filesystem tarball under $RAGFLOW_MIGRATE_SRV/base (default
# /srv/ragflow-migrate/base), so that a wiped container storage re-imports in seconds instead of
# running debootstrap again. Bump RECIPE when the steps below change what lands in the image. Idempotent and safe to run concurrently (a lock serialises runs).
# Needs root, debootstrap and buildah (tests/tools/install.sh image installs them).
#
# Environment: DEBIAN_MIRROR (default: the host's first apt mirror), RAGFLOW_MIGRATE_SRV.
set -euo pipefail

SRV=${RAGFLOW_MIGRATE_SRV:-/srv/ragflow-migrate}
CACHE=$SRV/base
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates
RECIPE=1
KEY=$(printf '%s %s %s' "$SUITE" "$PACKAGES" "$RECIPE" | sha256sum | cut -c1-12)
IMAGE=${BASE_IMAGE_NAME:-localhost/ragflow-migrate-base}:$SUITE-$KEY
TARBALL=$CACHE/rootfs-$SUITE-$KEY.tar

T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf '[build-base %5ss] %s\n' "$(elapsed "$T0")" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap and buildah's storage)"
command -v buildah >/dev/null || die "buildah is missing: tests/tools/install.sh image"

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
    log "cached: $IMAGE"
    echo "$IMAGE"
    exit 0
fi

if [[ ! -s $TARBALL ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is missing: tests/tools/install.sh image"
    MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
    MIRROR=${MIRROR:-http://deb.debian.org/debian}
    WORK=$(mktemp -d "$CACHE/.work.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    ROOTFS=$WORK/rootfs
    log "debootstrap $SUITE ($PACKAGES) from $MIRROR"
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
    log "debootstrap done"
    # Trim what an image does not need (the official slim images do the same): package lists and
    # caches, documentation, man pages, non-English locales. dpkg's database stays, so `apt-get`
    # still works in images built FROM this one.
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/cache/debconf/*-old \
        "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
        "$ROOTFS"/var/log/* "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS"/root/.cache
    find "$ROOTFS"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'en*' ! -name locale.alias -exec rm -rf {} +
    # /dev, /proc and /sys are provided by the container runtime.
    tar -C "$ROOTFS" --numeric-owner --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* \
        -cf "$WORK/rootfs.tar" .
    mv "$WORK/rootfs.tar" "$TARBALL"
    rm -rf "$WORK"
    trap - EXIT
    # Old tarballs (other keys) are dead weight.
    find "$CACHE" -maxdepth 1 -name "rootfs-$SUITE-*.tar" ! -name "$(basename "$TARBALL")" -delete
    log "rootfs cached: $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

CTR=$(buildah from scratch)
trap 'buildah rm "$CTR" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$CTR" "$TARBALL" / >/dev/null
buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 \
    --cmd python3 \
    --label org.opencontainers.image.title=ragflow-migrate-base \
    --label org.opencontainers.image.description="Debian $SUITE + python3 (debootstrap), a local stand-in for python:3.12-slim-$SUITE" \
    "$CTR"
buildah commit --quiet --rm "$CTR" "$IMAGE" >/dev/null
trap - EXIT
# Older bases (other recipes) lose their tag; images built on them keep their layers until pruned.
for old in $(buildah images --format '{{.Name}}:{{.Tag}}' 2>/dev/null | grep -F "${IMAGE%%:*}:$SUITE-" || true); do
    [[ $old == "$IMAGE" ]] || podman untag "$old" "$old" >/dev/null 2>&1 || true
done
log "imported: $IMAGE"
echo "$IMAGE"
