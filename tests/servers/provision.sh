#!/usr/bin/env bash
# Provision the throwaway database servers of the real-server test suite (run as root).
#
#   * MariaDB 10.11 from Debian (mariadb-server mariadb-client), only when `mariadbd` is missing;
#     a running system MariaDB is never touched (no service is started or restarted).
#   * galera-4 (the wsrep provider) and rsync (its SST method), each only when missing: the
#     3-node Galera cluster of tests/cluster (tests/servers/galera.py).
#   * PostgreSQL 15 from Debian (postgresql-15 postgresql-client-15), only when missing:
#     tests/servers/postgres.py runs its own server from /usr/lib/postgresql/15/bin.
#   * Oracle MySQL 9.7 (Debian sid's mysql-server-core + mysql-client-core) inside a Debian sid
#     chroot made with debootstrap, cached in $RAGFLOW_MIGRATE_SRV/mysql-sid (default
#     /srv/ragflow-migrate/mysql-sid). A chroot that exists and works is reused (fast path).
#     A new one is built in a temporary folder and renamed into place only once it works, so an
#     interrupted build never leaves a half chroot that looks valid.
#   * The MySQL template datadir (`mysqld --initialize-insecure`, done once per MySQL version)
#     is prepared by tests/servers/harness.py, so that the first test session starts fast.
#
# Idempotent: safe to run again, and concurrently (a lock serialises runs).
# Environment: RAGFLOW_MIGRATE_SRV (cache folder), DEBIAN_MIRROR (default: the host's mirror),
#              PROVISION_SKIP_TEMPLATE=1 (do not prepare the MySQL template datadir),
#              PROVISION_ONLY=mariadb (MariaDB alone: no Galera packages, no debootstrap, no MySQL
#              chroot, no template; what `make demo` uses). Empty or `all`: everything (`make test`).
set -euo pipefail

ONLY=${PROVISION_ONLY:-all}
case $ONLY in
    all | mariadb) ;;
    *) echo "provision.sh: PROVISION_ONLY must be empty, 'all' or 'mariadb', not '$ONLY'" >&2; exit 2 ;;
esac

SRV=${RAGFLOW_MIGRATE_SRV:-/srv/ragflow-migrate}
CHROOT=$SRV/mysql-sid
MARKER=.ragflow-migrate-chroot          # written last, inside a chroot that passed its checks
MYSQL_PACKAGES=(mysql-server-core mysql-client-core)
WANT_MYSQL_SERIES=9.7
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

T0=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'; }
log() { printf '[provision %6ss] %s\n' "$(elapsed "$T0")" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# MariaDB alone and already installed: nothing to do (no root, no lock needed).
have() { command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /usr/bin/$1 ]]; }
if [[ $ONLY == mariadb ]] && have mariadbd && have mariadb-install-db; then
    log "mariadb: present ($(/usr/sbin/mariadbd --version 2>/dev/null | sed -n 's/.*Ver \([^ ]*\).*/\1/p')); done (PROVISION_ONLY=mariadb)"
    exit 0
fi

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and builds a chroot)"
export DEBIAN_FRONTEND=noninteractive

mkdir -p "$SRV"
exec 9>"$SRV/.provision.lock"
if ! flock -n 9; then
    log "another provisioning run holds $SRV/.provision.lock; waiting for it"
    flock 9
fi

APT_UPDATED=0
apt_install() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        local t; t=$(date +%s.%N)
        apt-get update -qq -o Dpkg::Use-Pty=0
        APT_UPDATED=1
        log "apt-get update: $(elapsed "$t")s"
    fi
    local t; t=$(date +%s.%N)
    apt-get install -y -qq -o Dpkg::Use-Pty=0 --no-install-recommends "$@" >/dev/null
    log "apt-get install $*: $(elapsed "$t")s"
}

# ---------------------------------------------------------------------------------------------
# MariaDB 10.11 (host packages)
if have mariadbd && have mariadb-install-db; then
    log "mariadb: present ($(/usr/sbin/mariadbd --version 2>/dev/null | sed -n 's/.*Ver \([^ ]*\).*/\1/p'))"
else
    log "mariadb: mariadbd or mariadb-install-db missing, installing mariadb-server mariadb-client"
    # Keep the package from starting a system service: the harness starts its own servers.
    # Debian's invoke-rc.d asks /usr/sbin/policy-rc.d; put one in place only for this install.
    POLICY=/usr/sbin/policy-rc.d
    ADDED_POLICY=0
    if [[ ! -e $POLICY ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY"; chmod 755 "$POLICY"; ADDED_POLICY=1
        trap '[[ $ADDED_POLICY -eq 1 ]] && rm -f "$POLICY"' EXIT
    fi
    apt_install mariadb-server mariadb-client
    if [[ $ADDED_POLICY -eq 1 ]]; then rm -f "$POLICY"; ADDED_POLICY=0; trap - EXIT; fi
    [[ -x /usr/sbin/mariadbd ]] || die "mariadb-server installed but /usr/sbin/mariadbd is missing"
fi
have mariadb-install-db || die "mariadb-install-db is missing after installing mariadb-server"

if [[ $ONLY == mariadb ]]; then
    log "done (PROVISION_ONLY=mariadb: no Galera packages, no MySQL chroot)"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# MariaDB Galera (tests/servers/galera.py): the wsrep provider and rsync, for the rsync SST
GALERA_PROVIDER=/usr/lib/galera/libgalera_smm.so
GALERA_MISSING=()
[[ -e $GALERA_PROVIDER ]] || GALERA_MISSING+=(galera-4)
have rsync || GALERA_MISSING+=(rsync)
if [[ ${#GALERA_MISSING[@]} -eq 0 ]]; then
    log "galera: present ($GALERA_PROVIDER, rsync $(rsync --version 2>/dev/null | awk 'NR == 1 {print $3}'))"
else
    apt_install "${GALERA_MISSING[@]}"
    [[ -e $GALERA_PROVIDER ]] || die "galera-4 installed but $GALERA_PROVIDER is missing"
    have rsync || die "rsync is missing after installing it"
fi

# ---------------------------------------------------------------------------------------------
# PostgreSQL 15 (tests/servers/postgres.py): Debian's server binaries, initdb and psql; the
# harness runs its own server as user postgres (made by postgresql-common). No service is started.
PG_BINDIR=/usr/lib/postgresql/15/bin
if [[ -x $PG_BINDIR/postgres && -x $PG_BINDIR/initdb && -x $PG_BINDIR/psql ]] && id postgres >/dev/null 2>&1; then
    log "postgresql: present ($($PG_BINDIR/postgres --version 2>/dev/null | awk '{print $3}'))"
else
    POLICY=/usr/sbin/policy-rc.d
    ADDED_POLICY=0
    if [[ ! -e $POLICY ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY"; chmod 755 "$POLICY"; ADDED_POLICY=1
        trap '[[ $ADDED_POLICY -eq 1 ]] && rm -f "$POLICY"' EXIT
    fi
    apt_install postgresql-15 postgresql-client-15
    if [[ $ADDED_POLICY -eq 1 ]]; then rm -f "$POLICY"; ADDED_POLICY=0; trap - EXIT; fi
    [[ -x $PG_BINDIR/postgres && -x $PG_BINDIR/initdb ]] || die "postgresql-15 installed but $PG_BINDIR is incomplete"
fi
have setpriv || apt_install util-linux

# ---------------------------------------------------------------------------------------------
# debootstrap
if have debootstrap; then
    log "debootstrap: present"
else
    apt_install debootstrap
fi

# ---------------------------------------------------------------------------------------------
# Helpers for chroot folders: unmount whatever is mounted below a folder, deepest first.
unmount_below() {
    local dir; dir=$(realpath -m "$1")
    local m
    # /proc/mounts escapes spaces as \040; our folders have none.
    while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" || true
    done < <(awk -v d="$dir" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r)
}

processes_in() {   # pids of processes whose root directory lies in a folder
    local dir; dir=$(realpath -m "$1")
    local p root
    for p in /proc/[0-9]*; do
        root=$(readlink "$p/root" 2>/dev/null) || continue
        [[ $root == "$dir" || $root == "$dir"/* ]] && echo "${p#/proc/}"
    done
    return 0
}

remove_tree() {   # remove a chroot folder safely: never through a mount point, never while in use
    local dir=$1
    [[ -e $dir ]] || return 0
    local users; users=$(processes_in "$dir" | tr '\n' ' ')
    [[ -z $users ]] || die "cannot remove $dir: processes still run in it (pids: $users)"
    unmount_below "$dir"
    if awk -v d="$(realpath -m "$dir")" '$2 == d || index($2, d "/") == 1 {found=1} END{exit !found}' /proc/mounts; then
        die "cannot remove $dir: something is still mounted below it"
    fi
    rm -rf --one-file-system "$dir"
}

chroot_mysql_version() {   # prints e.g. "9.7.4-2" when the chroot's mysqld runs, else nothing
    local root=$1
    [[ -x $root/usr/sbin/mysqld ]] || return 0
    chroot "$root" /usr/sbin/mysqld --no-defaults --version 2>/dev/null \
        | sed -n 's/.*Ver \([0-9][^ ]*\).*/\1/p' | head -n1
}

chroot_ok() {
    local root=$1 v
    [[ -f $root/$MARKER ]] || return 1
    v=$(chroot_mysql_version "$root")
    [[ $v == "$WANT_MYSQL_SERIES".* ]] || return 1
    chroot "$root" /usr/bin/mysql --version >/dev/null 2>&1 || return 1
    return 0
}

# Leftovers of interrupted builds (the lock guarantees no build is running now).
for stale in "$SRV"/mysql-sid.build.* "$SRV"/mysql-sid.old.*; do
    [[ -e $stale ]] || continue
    log "removing leftover $stale"
    remove_tree "$stale"
done

# ---------------------------------------------------------------------------------------------
# MySQL 9.7 chroot
if chroot_ok "$CHROOT"; then
    log "mysql chroot: reusing $CHROOT (mysqld $(chroot_mysql_version "$CHROOT"))"
else
    if [[ -e $CHROOT ]]; then
        log "mysql chroot: $CHROOT exists but does not work; rebuilding it"
        users=$(processes_in "$CHROOT" | tr '\n' ' ')
        [[ -z $users ]] || die "$CHROOT does not work but processes run in it (pids: $users); stop them first"
    else
        log "mysql chroot: building $CHROOT (debootstrap sid, ~1 min)"
    fi
    MIRROR=${DEBIAN_MIRROR:-}
    if [[ -z $MIRROR && -f /etc/apt/sources.list.d/debian.sources ]]; then
        MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [[ -z $MIRROR && -f /etc/apt/sources.list ]]; then
        MIRROR=$(awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' /etc/apt/sources.list)
    fi
    MIRROR=${MIRROR:-http://deb.debian.org/debian}

    BUILD=$(mktemp -d "$SRV/mysql-sid.build.XXXXXX")
    chmod 755 "$BUILD"   # mktemp makes it 0700; apt's _apt user must reach the chroot's files
    cleanup_build() { [[ -n ${BUILD:-} && -e $BUILD ]] && remove_tree "$BUILD"; }
    trap 'cleanup_build' EXIT
    trap 'exit 130' INT TERM

    t=$(date +%s.%N)
    debootstrap --variant=minbase sid "$BUILD" "$MIRROR" >"$SRV/debootstrap.log" 2>&1 \
        || { tail -n 30 "$SRV/debootstrap.log" >&2; die "debootstrap failed (full log: $SRV/debootstrap.log)"; }
    log "debootstrap sid from $MIRROR: $(elapsed "$t")s"

    # apt inside the chroot: same relaxed date checks as the host's, no documentation, no services.
    cat >"$BUILD/etc/apt/apt.conf.d/99ragflow-migrate" <<'EOF'
Acquire::Check-Valid-Until "false";
Acquire::Check-Date "false";
APT::Install-Recommends "false";
EOF
    cat >"$BUILD/etc/dpkg/dpkg.cfg.d/99ragflow-migrate-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
    printf '#!/bin/sh\nexit 101\n' >"$BUILD/usr/sbin/policy-rc.d"; chmod 755 "$BUILD/usr/sbin/policy-rc.d"
    cp -L /etc/resolv.conf "$BUILD/etc/resolv.conf" 2>/dev/null || true

    mount -t proc proc "$BUILD/proc"
    t=$(date +%s.%N)
    chroot "$BUILD" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c "apt-get -q -o Dpkg::Use-Pty=0 update >/dev/null && apt-get install -y -q -o Dpkg::Use-Pty=0 --no-install-recommends ${MYSQL_PACKAGES[*]} >/dev/null && apt-get clean" \
        || die "installing ${MYSQL_PACKAGES[*]} in the chroot failed"
    log "chroot: apt-get install ${MYSQL_PACKAGES[*]}: $(elapsed "$t")s"
    rm -rf "$BUILD"/var/lib/apt/lists/* "$BUILD"/var/cache/apt/*.bin
    umount "$BUILD/proc"

    # The Debian package's defaults point at folders the harness does not use; it passes
    # --no-defaults and its own paths. Folders for the harness's servers:
    mkdir -p "$BUILD/tmp" "$BUILD/var/lib/ragflow-migrate"
    chmod 1777 "$BUILD/tmp"

    v=$(chroot_mysql_version "$BUILD")
    [[ $v == "$WANT_MYSQL_SERIES".* ]] || die "the chroot's mysqld reports version '${v}', expected ${WANT_MYSQL_SERIES}.x"
    echo "mysqld $v built $(date -u +%Y-%m-%dT%H:%M:%SZ) from $MIRROR" >"$BUILD/$MARKER"
    chroot_ok "$BUILD" || die "the new chroot fails its checks"

    # Swap into place: the old (broken) one is renamed away first, then removed.
    if [[ -e $CHROOT ]]; then
        OLD="$SRV/mysql-sid.old.$$"
        users=$(processes_in "$CHROOT" | tr '\n' ' ')
        [[ -z $users ]] || die "processes started running in $CHROOT (pids: $users); not replacing it"
        unmount_below "$CHROOT"
        mv "$CHROOT" "$OLD"
        remove_tree "$OLD"
    fi
    mv "$BUILD" "$CHROOT"
    BUILD=
    trap - EXIT
    log "mysql chroot: ready at $CHROOT (mysqld $v, $(du -sh --one-file-system "$CHROOT" | cut -f1))"
fi

# ---------------------------------------------------------------------------------------------
# MySQL template datadir (initialised once per MySQL version; the harness copies it per server)
if [[ ${PROVISION_SKIP_TEMPLATE:-0} != 1 ]]; then
    PY=""
    for candidate in "$HERE/../../.venv/bin/python" python3; do
        if command -v "$candidate" >/dev/null 2>&1; then PY=$candidate; break; fi
    done
    if [[ -z $PY ]]; then
        log "no python3: skipping the MySQL template (the first test session will make it)"
    else
        t=$(date +%s.%N)
        RAGFLOW_MIGRATE_SRV=$SRV "$PY" "$HERE/harness.py" prepare \
            || die "preparing the MySQL template datadir failed"
        log "mysql template: $(elapsed "$t")s"
    fi
fi

log "done"
