#!/usr/bin/env bash
# Build the ragflow-migrate image on this project's machines (no Docker engine, no registry but PyPI):
# buildah, offline, from a debootstrap-made base. Prints the image reference on stdout.
#
#   image/build.sh                 -> localhost/ragflow-migrate:<version>  (also :build-<content hash>)
#
# 1. Base: $BASE_IMAGE if set (e.g. python:3.12-slim-bookworm where it can be pulled), otherwise
#    image/build-base.sh (debootstrap bookworm + python3, cached).
# 2. Wheels, downloaded on the host for the base's Python: from requirements/runtime.lock (hashes
#    required) when it exists, otherwise from the exact pins in pyproject.toml; plus the build backend.
#    Cached under $RAGFLOW_MIGRATE_SRV/wheels (default /srv/ragflow-migrate/wheels), keyed by their input.
# 3. `buildah bud --isolation chroot` with the wheels mounted at /wheels (PIP_NO_INDEX=1).
#    The result is tagged by a hash of everything that goes into it (Dockerfile, .dockerignore, image/,
#    pyproject.toml, README, the lock, src/ and the base image's id): an unchanged tree is not rebuilt.
#
# Environment: BASE_IMAGE, IMAGE_NAME (default localhost/ragflow-migrate), RAGFLOW_MIGRATE_SRV,
#              FORCE=1 (rebuild even when the content hash is cached), NO_CACHE=1 (and without buildah's
#              layer cache: a cold build).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
SRV=${RAGFLOW_MIGRATE_SRV:-/srv/ragflow-migrate}
IMAGE_NAME=${IMAGE_NAME:-localhost/ragflow-migrate}
LOCK=$ROOT/requirements/runtime.lock
PYTHON=${PYTHON:-python3}

T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf '[build %5ss] %s\n' "$(elapsed "$T0")" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (buildah's storage)"
command -v buildah >/dev/null || die "buildah is missing: tests/tools/install.sh image"
cd "$ROOT"
# One build at a time on this machine (parallel test workers share the base, wheel and layer caches).
mkdir -p "$SRV"
exec 9>"$SRV/build.lock"
flock 9

VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' src/ragflow_migrate/__init__.py)
[[ -n $VERSION ]] || die "cannot read __version__ from src/ragflow_migrate/__init__.py"
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_URL=${SOURCE_URL:-$(git config --get remote.origin.url 2>/dev/null || true)}

# --- 1. base -------------------------------------------------------------------------------------------
if [[ -z ${BASE_IMAGE:-} ]]; then
    BASE_IMAGE=$("$HERE/build-base.sh")
fi
BASE_ID=$(buildah inspect --type image --format '{{.FromImageID}}' "$BASE_IMAGE" 2>/dev/null) \
    || die "base image $BASE_IMAGE not found in local storage"

# --- content hash: what goes into the image ---------------------------------------------------------------
hash_inputs() {
    printf 'base %s\n' "$BASE_ID"
    # The files the build context admits (.dockerignore is an allow-list) plus the build recipe.
    local p paths=()
    for p in Dockerfile .dockerignore image pyproject.toml README.md LICENSE requirements/runtime.lock src; do
        [[ -e $p ]] && paths+=("$p")
    done
    find "${paths[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.py[co]' ! -path 'src/*.egg-info/*' \
        | LC_ALL=C sort | xargs -r sha256sum
}
KEY=$(hash_inputs | sha256sum | cut -c1-16)
BUILD_TAG=$IMAGE_NAME:build-$KEY
IMAGE=$IMAGE_NAME:$VERSION

if [[ -z ${FORCE:-} ]] && buildah inspect --type image "$BUILD_TAG" >/dev/null 2>&1; then
    buildah tag "$BUILD_TAG" "$IMAGE"
    log "cached: $BUILD_TAG -> $IMAGE"
    echo "$IMAGE"
    exit 0
fi

# --- 2. wheels ------------------------------------------------------------------------------------------
PYVER=$(podman run --rm --runtime runc --cgroup-manager cgroupfs --network none \
            --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 "$BASE_IMAGE" \
            python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) \
    || die "cannot run python3 in $BASE_IMAGE"
if [[ -f $LOCK ]]; then
    REQS=("-r" "$LOCK" "--require-hashes")
    REQ_KEY=$(sha256sum "$LOCK" | cut -c1-16)
    log "dependencies: $LOCK"
else
    # No lock yet: the exact pins of pyproject.toml (their own dependencies resolved by pip).
    mapfile -t PINS < <("$PYTHON" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
    REQS=("${PINS[@]}")
    REQ_KEY=$(printf '%s\n' "${PINS[@]}" | sha256sum | cut -c1-16)
    log "dependencies: no requirements/runtime.lock yet, using pyproject.toml pins: ${PINS[*]}"
fi
# The build backend of pyproject.toml ([build-system] requires), for `pip wheel` inside the build.
mapfile -t BACKEND < <("$PYTHON" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))')
BACKEND_KEY=$(printf '%s\n' "${BACKEND[@]}" | sha256sum | cut -c1-16)
WHEELS=$SRV/wheels/py$PYVER-$REQ_KEY-$BACKEND_KEY
if [[ ! -f $WHEELS/.complete ]]; then
    t=$(date +%s.%N)
    rm -rf "$WHEELS.tmp"; mkdir -p "$WHEELS.tmp"
    # --python-version: the base's interpreter, not the host's (binary wheels only, as pip requires).
    "$PYTHON" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version "$PYVER" \
        -d "$WHEELS.tmp" "${REQS[@]}"
    "$PYTHON" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version "$PYVER" \
        -d "$WHEELS.tmp" "${BACKEND[@]}"
    touch "$WHEELS.tmp/.complete"
    rm -rf "$WHEELS"; mv "$WHEELS.tmp" "$WHEELS"
    log "wheels for Python $PYVER: $(find "$WHEELS" -name '*.whl' | wc -l) in $WHEELS ($(elapsed "$t")s)"
else
    log "wheels for Python $PYVER: cached in $WHEELS"
fi

# --- 3. build -------------------------------------------------------------------------------------------
t=$(date +%s.%N)
log "building $IMAGE from $BASE_IMAGE"
# PIP_CONSTRAINT/PIP_CONFIG_FILE: the host's pip configuration must not leak into the build.
CACHE_ARGS=(--layers)
[[ -n ${NO_CACHE:-} ]] && CACHE_ARGS=(--no-cache)
buildah bud --isolation chroot "${CACHE_ARGS[@]}" --quiet \
    --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
    --volume "$WHEELS:/wheels:ro" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg PIP_NO_INDEX=1 \
    --build-arg PIP_FIND_LINKS=/wheels \
    --build-arg VERSION="$VERSION" \
    --build-arg REVISION="$REVISION" \
    --build-arg SOURCE_URL="$SOURCE_URL" \
    --tag "$IMAGE" --tag "$BUILD_TAG" \
    --file Dockerfile . >&2
log "built $IMAGE ($(elapsed "$t")s, $(podman image inspect --format '{{.Size}}' "$IMAGE" 2>/dev/null || echo '?') bytes)"

# Housekeeping: older content-hash tags go, and so do untagged images (old builds, stale layer cache)
# older than a day; the layer cache of recent builds stays.
for old in $(podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -F "$IMAGE_NAME:build-" || true); do
    [[ $old == "$BUILD_TAG" ]] || podman untag "$old" "$old" >/dev/null 2>&1 || true
done
podman image prune --force --filter until=24h >/dev/null 2>&1 || true
echo "$IMAGE"
