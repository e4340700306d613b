"""A throwaway 3-node MariaDB 10.11 Galera cluster on loopback, for the real-server test suite.

Each node is a :class:`harness.MariaDBServer` (same lifecycle, bookkeeping and ``env()``) with
its own folder ``<root>/node<i>`` (datadir ``data/``, ``error.log``, socket, tmp) under a folder
``/tmp/ragflow-migrate-galera-XXXX`` (mode 0755: user ``mysql`` must traverse it), and four free
TCP ports on 127.0.0.1: SQL, gcomm (group communication), IST and SST (rsync daemon).

Nodes are numbered from 1, as in the error logs (``wsrep_node_name`` ``node1``..``node3``):
``cluster.connect(1)``, ``cluster.kill(3)``, ``cluster.node(2).env("db")``.

Galera needs things the single servers do not:

* The servers run as user ``mysql``, not root: the rsync SST run as root fails (rsync code 23,
  see /work/shared/docs/toolchain.md). ``setpriv`` switches to ``mysql`` *before* exec, then sets
  the parent-death signal (a set-uid in mariadbd itself would clear ``PR_SET_PDEATHSIG``), so a
  killed test process still takes its nodes with it. ``--user=mysql`` stays on the command line.
* Node 1 bootstraps the cluster (``--wsrep-new-cluster``) and gets the account
  ``root@127.0.0.1`` (no password); the others join after it reports Synced and receive
  everything (datadir included) by rsync SST.
* After :meth:`GaleraCluster.kill` a node's ``grastate.dat`` says ``seqno: -1``: :meth:`restart`
  first recovers the node's position (``mariadbd --wsrep-recover``) and passes it as
  ``--wsrep-start-position``, so the node can catch up by IST instead of a full SST. A node
  restarted while no other node runs bootstraps a new primary component (``safe_to_bootstrap:
  1`` is written into its grastate.dat first); running nodes that lost quorum (two of three
  killed) are made the primary component again (``pc.bootstrap=YES``) before a node joins them;
  :meth:`start` on a cluster that is completely down bootstraps from the most advanced node.

Nothing outlives the Python process: every node is a harness server (own process group, the
harness's ``atexit`` hook, ``PR_SET_PDEATHSIG`` via ``setpriv --pdeathsig`` when started from
the main thread), and this module's ``atexit`` hook removes the cluster folders.

Command line::

    python tests/servers/galera.py smoke   # start 3 nodes, print versions, cluster size, timings; stop
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    from . import harness
except ImportError:  # run as a script: tests/servers is sys.path[0]
    import harness  # type: ignore[no-redef]

if TYPE_CHECKING:
    import pymysql.connections

__all__ = ["GALERA_PROVIDER", "GaleraCluster", "GaleraNode", "PROVISION_HINT", "transfer_kind"]

GALERA_PROVIDER = Path(os.environ.get("RAGFLOW_MIGRATE_GALERA_PROVIDER", "/usr/lib/galera/libgalera_smm.so"))
PROVISION_HINT = (
    "the Galera cluster needs Debian's galera-4 and rsync: " + harness.PROVISION_HINT
    + " (it installs both), or `apt-get install -y galera-4 rsync`"
)
#: Seconds a node may take to join (SST/IST included) and report Synced; the machine is shared.
JOIN_TIMEOUT = float(os.environ.get("RAGFLOW_MIGRATE_GALERA_JOIN_TIMEOUT", "90"))
#: Parent folder of the cluster folders (user ``mysql`` must be able to traverse it).
GALERA_TMP = Path(os.environ.get("RAGFLOW_MIGRATE_GALERA_TMP", "/tmp"))
SERVICE_USER = "mysql"

#: Per-node server options beyond harness.COMMON_ARGS (those Galera requires).
GALERA_ARGS = (
    "--wsrep-on=ON",
    f"--wsrep-provider={GALERA_PROVIDER}",
    "--wsrep-sst-method=rsync",
    "--binlog-format=ROW",
    "--innodb-autoinc-lock-mode=2",
    "--default-storage-engine=InnoDB",
    # Speed: the redo log is written at each commit but not fsynced (what Galera deployments use: the
    # cluster, not one node's disk, makes a commit durable). A SIGKILLed node loses nothing by it (the
    # kernel still holds what the process wrote), so kills and --wsrep-recover behave the same.
    "--innodb-flush-log-at-trx-commit=2",
)
#: Galera provider options beyond the per-node addresses (a small ring buffer: each node writes one).
PROVIDER_OPTIONS = ("gcache.size=32M",)


def _server_args() -> list[str]:
    """harness.COMMON_ARGS with ``--user=mysql`` instead of ``--user=root``."""
    return [f"--user={SERVICE_USER}" if arg.startswith("--user=") else arg for arg in harness.COMMON_ARGS]


def _service_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise harness.ProvisioningError(f"no user {SERVICE_USER!r} (made by mariadb-server); {PROVISION_HINT}") from None
    return entry.pw_uid, entry.pw_gid


def check_provisioned() -> None:
    """Raise :class:`harness.ProvisioningError` naming what this machine lacks."""
    missing = []
    if not GALERA_PROVIDER.exists():
        missing.append(f"{GALERA_PROVIDER} (package galera-4)")
    for tool, package in (("mariadbd", "mariadb-server"), ("mariadb-install-db", "mariadb-server"),
                          ("wsrep_sst_rsync", "mariadb-server"), ("rsync", "rsync"), ("setpriv", "util-linux")):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            missing.append(f"{tool} (package {package})")
    if missing:
        raise harness.ProvisioningError(f"this machine lacks {', '.join(missing)}; {PROVISION_HINT}")
    if os.geteuid() != 0:
        raise harness.ProvisioningError("the Galera nodes run as user mysql, which needs root; run the tests as root")
    _service_ids()


def _ephemeral_low() -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    return 32768


def _pick_ports(count: int, taken: set[int]) -> list[int]:
    """Free ports below the ephemeral range: the nodes open many outgoing connections to each
    other, whose kernel-chosen source ports could otherwise take a port picked for a later join."""
    high = _ephemeral_low() - 1
    low = min(20000, high - 5000)
    ports: list[int] = []
    for _ in range(1000 * count):
        port = random.randint(low, high)
        if port not in taken and port not in ports and harness._port_is_free(port):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise harness.ServerError(f"no {count} free ports in {low}..{high}")


def read_grastate(datadir: Path) -> dict[str, str]:
    """``grastate.dat`` as a dict (``uuid``, ``seqno``, ``safe_to_bootstrap``); empty when absent."""
    state: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in (datadir / "grastate.dat").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and not key.startswith("#"):
                state[key.strip()] = value.strip()
    return state


def transfer_kind(log_text: str) -> str:
    """How a join (whose error log lines are ``log_text``) got the cluster's state: "SST" (a full
    copy of the datadir), "IST" (only the missing writesets, from a donor's gcache) or "none"
    (bootstrap). The joiner starts the SST script either way (it says "SST received" even for
    an IST); the script's last words tell which one the donor chose."""
    if re.search(r"rsync SST completed on joiner", log_text):
        return "SST"
    if re.search(r"rsync IST completed on joiner|Receiving IST: \d+ writesets", log_text):
        return "IST"
    return "none"


class GaleraNode(harness.MariaDBServer):
    """One node of a :class:`GaleraCluster` (create through the cluster)."""

    def __init__(self, cluster: GaleraCluster, index: int, basedir: Path, *, extra_args: Sequence[str] = ()) -> None:
        self.cluster = cluster
        self.index = index
        self.gcomm_port = self.ist_port = self.sst_port = 0
        #: start with --wsrep-new-cluster (set by the cluster before each start)
        self.bootstrap = False
        #: --wsrep-start-position for the next start (from --wsrep-recover after a crash)
        self.start_position: str | None = None
        #: "SST", "IST" or "none": how the last start got the cluster's state
        self.last_transfer = ""
        self._started_once = False
        super().__init__(basedir, extra_args=extra_args)
        self.label = f"galera node{index}"

    # The reference schemas of a node are MariaDB 10.11's.
    @property
    def schema_folder(self) -> Path:
        return harness.schema_root() / harness.LABELS["mariadb"]

    def schema_file(self, release: str, kind: str = "fresh") -> Path:
        return harness.schema_path(harness.LABELS["mariadb"], release, kind)

    def __repr__(self) -> str:
        state = "alive" if self.is_alive() else "stopped"
        return (f"<GaleraNode {self.index} sql={self.port} gcomm={self.gcomm_port} ist={self.ist_port} "
                f"sst={self.sst_port} pid={self.pid} {state}>")

    @property
    def gcomm_address(self) -> str:
        return f"{self.host}:{self.gcomm_port}"

    def grastate(self) -> dict[str, str]:
        return read_grastate(self.datadir)

    # -- lifecycle (harness hooks) ----------------------------------------------------------------
    def _initialise(self) -> None:
        uid, gid = _service_ids()
        tmpdir = self.basedir / "tmp"
        tmpdir.mkdir(parents=True, exist_ok=True)
        if self.bootstrap:
            # Only the bootstrap node (node 1) needs system tables: the others get its datadir by SST.
            cmd = [self._binary("mariadb-install-db"), "--no-defaults", f"--user={SERVICE_USER}",
                   f"--datadir={self.datadir}", f"--tmpdir={tmpdir}", "--auth-root-authentication-method=normal",
                   "--skip-test-db", "--skip-name-resolve", "--force"]
            for attempt in range(2):
                shutil.rmtree(self.datadir, ignore_errors=True)
                _chown_tree(self.basedir, uid, gid)
                proc = subprocess.run(cmd, capture_output=True, text=True, env=self._popen_env(), check=False,
                                      timeout=300)
                if proc.returncode == 0:
                    break
                if attempt == 1:
                    raise harness.ServerError(f"mariadb-install-db failed for {self.label} (exit {proc.returncode}):\n"
                                              f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        else:
            self.datadir.mkdir(parents=True, exist_ok=True)
        _chown_tree(self.basedir, uid, gid)

    def _popen_env(self) -> dict[str, str]:
        env = super()._popen_env()
        env["HOME"] = str(self.basedir)  # the SST scripts run as mysql
        return env

    def _as_service_user(self, *, pdeathsig: bool) -> list[str]:
        uid, gid = _service_ids()
        cmd = [shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin") or "setpriv",
               f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
        if pdeathsig:
            # After the uid change (which clears a parent-death signal set by harness._child_setup).
            cmd.append("--pdeathsig=KILL")
        return [*cmd, "--"]

    def _command(self, *, recover: bool = False) -> list[str]:
        nodes = self.cluster.nodes
        options = ";".join((
            f"base_port={self.gcomm_port}",
            f"gmcast.listen_addr=tcp://{self.host}:{self.gcomm_port}",
            f"ist.recv_addr={self.host}:{self.ist_port}",
            *PROVIDER_OPTIONS,
        ))
        threaded = threading.current_thread() is not threading.main_thread()
        cmd = [
            *self._as_service_user(pdeathsig=not threaded),
            self._binary("mariadbd"), *_server_args(),
            f"--datadir={self.datadir}", f"--socket={self.socket_path}", f"--port={self.port}",
            f"--pid-file={self.basedir / 'mysqld.pid'}", f"--log-error={self.error_log}",
            f"--tmpdir={self.basedir / 'tmp'}",
            *GALERA_ARGS,
            f"--wsrep-cluster-name={self.cluster.name}",
            "--wsrep-cluster-address=gcomm://" + ",".join(node.gcomm_address for node in nodes),
            f"--wsrep-node-name=node{self.index}",
            f"--wsrep-node-address={self.gcomm_address}",
            f"--wsrep-node-incoming-address={self.host}:{self.port}",
            f"--wsrep-sst-receive-address={self.host}:{self.sst_port}",
            f"--wsrep-provider-options={options}",
            *self.cluster.extra_args,
            *self.extra_args,
        ]
        if recover:
            return [*cmd, "--wsrep-recover", "--skip-networking", f"--log-error={self.basedir / 'recover.log'}"]
        if self.bootstrap:
            cmd.append("--wsrep-new-cluster")
        if self.start_position:
            cmd.append(f"--wsrep-start-position={self.start_position}")
        return cmd

    def _launch_and_wait(self) -> None:
        offset = self.error_log.stat().st_size if self.error_log.exists() else 0
        try:
            super()._launch_and_wait()
        except harness._PortInUse:
            if not self._started_once:  # first start: the harness retries; take new Galera ports too
                self.cluster._assign_ports(self)
            raise
        self._started_once = True
        self.start_position = None
        self.last_transfer = transfer_kind(self._read_log(offset))

    def _when_ready(self, conn: pymysql.connections.Connection) -> None:
        # A node answers before it has joined: wait for Synced (a joiner refuses most SQL until then).
        deadline = time.monotonic() + JOIN_TIMEOUT
        status: dict[str, str] = {}
        while True:
            status = _wsrep_status(conn)
            if status.get("wsrep_local_state_comment") == "Synced" and status.get("wsrep_ready") == "ON":
                break
            if self._proc is not None and self._proc.poll() is not None:
                return  # the harness's loop reports the exit with the error log
            if time.monotonic() > deadline:
                raise harness.ServerError(
                    f"{self.label} did not reach Synced within {JOIN_TIMEOUT:.0f}s (state "
                    f"{status.get('wsrep_local_state_comment')!r}, ready {status.get('wsrep_ready')!r}); "
                    f"error log {self.error_log}:\n{harness._tail(self.error_log, 40)}"
                )
            time.sleep(0.1)
        if self.bootstrap and not self._started_once:
            # Node 1 on the cluster's first start: root@127.0.0.1 (replicated to the joiners by SST).
            super()._when_ready(conn)
        else:
            self._connect_raw(connect_timeout=5, read_timeout=10).close()

    def recover_position(self) -> str | None:
        """``uuid:seqno`` of the last committed transaction, for a node whose grastate.dat lost it
        (``seqno: -1`` after a crash), by ``mariadbd --wsrep-recover``; None when not needed/known."""
        state = self.grastate()
        if not state or state.get("seqno", "-1") != "-1":
            return None
        log = self.basedir / "recover.log"
        log.unlink(missing_ok=True)
        proc = subprocess.run(self._command(recover=True), capture_output=True, text=True, env=self._popen_env(),
                              check=False, timeout=300, start_new_session=True)
        text = log.read_text(errors="replace") if log.exists() else proc.stderr
        match = re.search(r"WSREP: Recovered position:?\s+([0-9a-f-]{36}:-?\d+)", text)
        if proc.returncode != 0 or not match:
            raise harness.ServerError(f"{self.label}: mariadbd --wsrep-recover failed (exit {proc.returncode}):\n"
                                      + "\n".join(text.splitlines()[-30:]))
        position = match.group(1)
        return None if position.endswith(":-1") else position

    def set_safe_to_bootstrap(self) -> None:
        path = self.datadir / "grastate.dat"
        if path.exists():
            text = path.read_text()
            new = re.sub(r"(?m)^safe_to_bootstrap:\s*\d+", "safe_to_bootstrap: 1", text)
            if new != text:
                path.write_text(new)

    def _read_log(self, offset: int) -> str:
        try:
            with open(self.error_log, "rb") as fh:
                fh.seek(offset)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def status(self) -> dict[str, str]:
        """``SHOW GLOBAL STATUS LIKE 'wsrep%'`` of this node."""
        conn = self.connect(connect_timeout=5, read_timeout=15)
        try:
            return _wsrep_status(conn)
        finally:
            conn.close()


def _wsrep_status(conn: pymysql.connections.Connection) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute("SHOW GLOBAL STATUS LIKE 'wsrep%%'")
        return {str(name): str(value) for name, value in cur.fetchall()}


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for folder, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            with contextlib.suppress(FileNotFoundError):
                os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


_CLUSTERS: set[GaleraCluster] = set()
_CLUSTERS_LOCK = threading.Lock()


def _cleanup_all_at_exit() -> None:
    with _CLUSTERS_LOCK:
        clusters = list(_CLUSTERS)
    for cluster in clusters:
        with contextlib.suppress(Exception):
            cluster.cleanup()


atexit.register(_cleanup_all_at_exit)  # runs before the harness's hook (registered earlier)


class GaleraCluster:
    """``n`` MariaDB Galera nodes on 127.0.0.1. ``start()`` returns when all are Synced.

    Nodes are numbered 1..n in every method. ``with GaleraCluster() as cluster:`` starts it and
    afterwards stops it and removes its folder.
    """

    def __init__(self, size: int = 3, *, extra_args: Sequence[str] = (), parent: str | os.PathLike[str] | None = None):
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        check_provisioned()
        self.extra_args = tuple(extra_args)
        self.root = harness._new_owned_dir(Path(parent) if parent else GALERA_TMP, "ragflow-migrate-galera-")
        self.root.chmod(0o755)  # mkdtemp makes 0700: mysql must reach the node folders
        self.name = f"ragflow-migrate-{self.root.name.rsplit('-', 1)[-1]}"
        self.nodes: tuple[GaleraNode, ...] = tuple(
            GaleraNode(self, i, self.root / f"node{i}") for i in range(1, size + 1)
        )
        for node in self.nodes:
            self._assign_ports(node)
        #: seconds taken by the last start() / the cluster's first start
        self.start_seconds = 0.0
        self.first_start_seconds = 0.0
        with _CLUSTERS_LOCK:
            _CLUSTERS.add(self)

    def __repr__(self) -> str:
        return f"<GaleraCluster {self.name} {self.root} nodes={list(self.nodes)}>"

    def _assign_ports(self, node: GaleraNode) -> None:
        taken = {p for other in self.nodes if other is not node
                 for p in (other.port, other.gcomm_port, other.ist_port, other.sst_port)}
        node.gcomm_port, node.ist_port, node.sst_port = _pick_ports(3, taken)

    # -- addressing -------------------------------------------------------------------------------
    def node(self, i: int) -> GaleraNode:
        """Node ``i`` (1-based)."""
        if not isinstance(i, int) or not 1 <= i <= len(self.nodes):
            raise IndexError(f"nodes are numbered 1..{len(self.nodes)}, not {i!r}")
        return self.nodes[i - 1]

    def running(self) -> list[GaleraNode]:
        return [node for node in self.nodes if node.is_alive()]

    def env(self, i: int, database: str, user: str = "root", password: str = "") -> dict[str, str]:
        """MYSQL_HOST/PORT/USER/PASSWORD/DBNAME pointing the tool at node ``i``."""
        return self.node(i).env(database, user, password)

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> GaleraCluster:
        """Start every node that is not running (all of them on first use) and wait until all are
        Synced. A cluster that is completely down bootstraps again from its most advanced node;
        survivors that lost quorum are made the primary component first (see restart())."""
        started = time.monotonic()
        first = not any(node._started_once for node in self.nodes)
        try:
            if self.running():
                self._ensure_primary()
            else:
                self._start_node(self._bootstrap_candidate(), bootstrap=True)
            for node in self.nodes:
                if not node.is_alive():
                    self._start_node(node, bootstrap=False)
            self.wait_synced()
        except BaseException:
            if first:
                self.cleanup()
            raise
        self.start_seconds = time.monotonic() - started
        if first:
            self.first_start_seconds = self.start_seconds
        return self

    ensure_running = start

    def _bootstrap_candidate(self) -> GaleraNode:
        if not any(node._started_once for node in self.nodes):
            return self.nodes[0]
        best: tuple[int, int] | None = None
        chosen = self.nodes[0]
        for node in self.nodes:
            state = node.grastate()
            if not state:
                continue
            if state.get("safe_to_bootstrap") == "1":
                return node
            seqno = int(state.get("seqno", "-1"))
            if seqno == -1:
                position = node.recover_position()
                seqno = int(position.rsplit(":", 1)[1]) if position else -1
                node.start_position = position
            if best is None or (seqno, -node.index) > best:
                best, chosen = (seqno, -node.index), node
        return chosen

    def _start_node(self, node: GaleraNode, *, bootstrap: bool) -> None:
        node.bootstrap = bootstrap
        if node._started_once:
            if node.start_position is None:
                node.start_position = node.recover_position()
            if bootstrap:
                node.set_safe_to_bootstrap()
        node.start()

    def restart(self, i: int, *, timeout: float = JOIN_TIMEOUT) -> GaleraNode:
        """(Re)start node ``i`` (stopping it cleanly first if it runs) and wait until it and every
        other running node are Synced. After kill() the node recovers its position and rejoins
        by IST (or SST when no donor still has the missing writesets). With no other node running
        it bootstraps a new cluster; when the running ones lost quorum (two of three killed), the
        most advanced of them is made the primary component first (``pc.bootstrap=YES``)."""
        node = self.node(i)
        if node.is_alive():
            node.stop()
        others = [other for other in self.running() if other is not node]
        if others:
            self._ensure_primary(timeout)
        self._start_node(node, bootstrap=not others)
        self.wait_synced(timeout)
        return node

    def kill(self, i: int, *, wait: bool = True, timeout: float = 60.0) -> None:
        """SIGKILL node ``i`` (its whole process group). With ``wait``, return once the surviving
        nodes have settled on a view without it (wsrep_cluster_size = number of running nodes;
        ~6 s: Galera's evs.suspect_timeout). Survivors without quorum stay non-Primary."""
        self.node(i).kill()
        if wait and self.running():
            self._wait_settled(timeout)

    def _wait_settled(self, timeout: float) -> dict[GaleraNode, dict[str, str]]:
        """Wait until each running node's view holds exactly the running nodes (Primary or not)."""
        deadline = time.monotonic() + timeout
        while True:
            nodes = self.running()
            statuses: dict[GaleraNode, dict[str, str]] = {}
            with contextlib.suppress(Exception):
                statuses = {node: node.status() for node in nodes}
            if statuses and all(st.get("wsrep_cluster_size") == str(len(nodes)) for st in statuses.values()):
                return statuses
            if time.monotonic() > deadline:
                sizes = {node.index: st.get("wsrep_cluster_size") for node, st in statuses.items()}
                raise harness.ServerError(f"cluster {self.name}: the running nodes did not settle on a view of "
                                          f"{len(nodes)} within {timeout:.0f}s (sizes {sizes})")
            time.sleep(0.2)

    def _ensure_primary(self, timeout: float = JOIN_TIMEOUT) -> None:
        """Make sure the running nodes form the primary component; when they lost quorum, bootstrap
        it on the most advanced of them (``pc.bootstrap=YES``), then wait until they are Synced."""
        statuses = self._wait_settled(timeout)
        if not any(st.get("wsrep_cluster_status") == "Primary" for st in statuses.values()):
            best = max(statuses, key=lambda n: (int(statuses[n].get("wsrep_last_committed", "-1")), -n.index))
            best.query("SET GLOBAL wsrep_provider_options = 'pc.bootstrap=YES'")
        self.wait_synced(timeout)

    def stop(self) -> None:
        """Clean shutdown of every node, the last one first (the first node keeps
        safe_to_bootstrap: 1, so start() can bring the cluster back). Datadirs are kept."""
        errors = []
        for node in reversed(self.nodes):
            try:
                node.stop()
            except harness.ServerError as exc:
                errors.append(str(exc))
        if errors:
            raise harness.ServerError("; ".join(errors))

    def cleanup(self) -> None:
        """Kill what still runs and remove the cluster's folder (unless RAGFLOW_MIGRATE_KEEP_DATADIRS)."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.kill()
        if not harness.KEEP_DATADIRS:
            shutil.rmtree(self.root, ignore_errors=True)
        with _CLUSTERS_LOCK:
            _CLUSTERS.discard(self)

    def __enter__(self) -> GaleraCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            self.cleanup()

    # -- state ------------------------------------------------------------------------------------
    def status(self, i: int) -> dict[str, str]:
        """Node ``i``'s wsrep status variables (``wsrep_local_state_comment``, ``wsrep_cluster_size``...)."""
        return self.node(i).status()

    def wait_synced(self, timeout: float = JOIN_TIMEOUT, size: int | None = None) -> dict[int, dict[str, str]]:
        """Wait until every running node is Synced, ready, in the Primary component, and reports
        ``wsrep_cluster_size`` = ``size`` (default: the number of running nodes) and the same
        cluster state uuid. Returns each running node's wsrep status, by node number."""
        deadline = time.monotonic() + timeout
        last: dict[int, Any] = {}
        while True:
            nodes = self.running()
            want = size if size is not None else len(nodes)
            last = {}
            for node in nodes:
                try:
                    last[node.index] = node.status()
                except Exception as exc:  # noqa: BLE001 - not reachable yet
                    last[node.index] = exc
            statuses = [s for s in last.values() if isinstance(s, dict)]
            if nodes and len(statuses) == len(nodes) and all(
                s.get("wsrep_local_state_comment") == "Synced" and s.get("wsrep_ready") == "ON"
                and s.get("wsrep_cluster_status") == "Primary" and s.get("wsrep_cluster_size") == str(want)
                for s in statuses
            ) and len({s.get("wsrep_cluster_state_uuid") for s in statuses}) == 1:
                return last
            if time.monotonic() > deadline:
                summary = {
                    i: (repr(s) if not isinstance(s, dict) else
                        {k: s.get(k) for k in ("wsrep_local_state_comment", "wsrep_cluster_size",
                                               "wsrep_cluster_status", "wsrep_ready")})
                    for i, s in last.items()
                }
                raise harness.ServerError(
                    f"cluster {self.name} not Synced with size {want} within {timeout:.0f}s: {summary} "
                    f"(error logs under {self.root})"
                )
            time.sleep(0.2)

    # -- SQL --------------------------------------------------------------------------------------
    def connect(self, i: int, database: str | None = None, **kw: Any) -> pymysql.connections.Connection:
        """A pymysql connection (root, TCP, autocommit) to node ``i``."""
        return self.node(i).connect(database, **kw)

    def query(self, i: int, sql: str, args: Any = None, *, database: str | None = None) -> list[tuple]:
        """Run one statement on node ``i`` (new connection); return its rows."""
        return self.node(i).query(sql, args, database=database)

    def _any_node(self) -> GaleraNode:
        nodes = self.running()
        if not nodes:
            raise harness.ServerError(f"cluster {self.name}: no node runs")
        return nodes[0]

    def create_database(self, name: str, collation: str = "utf8mb4_unicode_ci") -> str:
        """CREATE DATABASE on a running node (replicated to all by Galera's TOI)."""
        return self._any_node().create_database(name, collation)

    def drop_database(self, name: str) -> None:
        self._any_node().drop_database(name)

    # -- logs -------------------------------------------------------------------------------------
    def error_log(self, i: int) -> str:
        """The whole error log of node ``i`` (all its starts)."""
        return self.error_log_since(i, 0)

    def error_log_offset(self, i: int) -> int:
        """The error log's current size: pass it to error_log_since() later."""
        try:
            return self.node(i).error_log.stat().st_size
        except FileNotFoundError:
            return 0

    def error_log_since(self, i: int, offset: int) -> str:
        """Node ``i``'s error log from byte ``offset`` on."""
        return self.node(i)._read_log(offset)


def _main(argv: Sequence[str]) -> int:
    command = argv[0] if argv else "smoke"
    if command != "smoke":
        print(__doc__, file=sys.stderr)
        return 2
    started = time.monotonic()
    cluster = GaleraCluster()
    try:
        cluster.start()
        print(f"cluster {cluster.name} in {cluster.root}: started in {cluster.start_seconds:.1f}s")
        for node in cluster.nodes:
            status = cluster.status(node.index)
            print(f"  node{node.index}: {node.version} sql {node.port} gcomm {node.gcomm_port} ist {node.ist_port} "
                  f"sst {node.sst_port} pid {node.pid}: start {node.start_seconds:.1f}s "
                  f"(datadir {node.init_seconds:.1f}s, state via {node.last_transfer or 'none'}), "
                  f"{status['wsrep_local_state_comment']}, wsrep_cluster_size={status['wsrep_cluster_size']}, "
                  f"galera {status.get('wsrep_provider_version')}")
        t = time.monotonic()
        cluster.stop()
        print(f"stopped in {time.monotonic() - t:.1f}s (total {time.monotonic() - started:.1f}s)")
    finally:
        cluster.cleanup()
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(_main(sys.argv[1:]))
