"""The lock on clusters where ``GET_LOCK`` is local to one node (Galera, multi-primary Group
Replication), and the lock that follows the primary on single-primary Group Replication.

On a Galera cluster a runner holds two things (README, "Locking on clusters"):

1. **Node locks**: ``GET_LOCK(name)`` on every node it can reach, always in the same order
   (by the node's cluster identity, so two runners never wait for each other in a cycle), each on
   a connection of its own. It needs a majority of the cluster's nodes, so two runners always meet
   on at least one node. RAGFlow's startup takes the same name on whichever node it reaches: a
   runner holding that node's lock makes it wait, and waits for it. A killed runner's sessions
   close, and its node locks are gone at once; a node that dies takes only its own lock with it.
2. **The lease**: one row of ``ragflow_migrate_lease``, claimed by a compare-and-swap ``UPDATE``
   that the cluster certifies: of two runners claiming it on different nodes at once, the first to
   commit wins everywhere, the other's commit fails (deadlock error) and it waits. The row names the
   holder (run, pod, node, connection) and carries a heartbeat. It serialises runners that could not
   lock the nodes (``GET_LOCK`` refused: error 1235 on MariaDB 10.6.13/10.11.3, Percona XtraDB
   Cluster's ``pxc_strict_mode=ENFORCING``; or fewer than a majority reachable). A holder that held
   node locks is known dead as soon as a waiter holds the holder's node lock (its session is gone);
   so is a holder whose node is no longer a member of the cluster (when every member was reached);
   otherwise a waiter takes over a lease whose heartbeat has not moved for ``--lease-ttl`` by its own
   clock. Nobody ever has to clear a lock by hand.

Before every step (:meth:`ClusterLock.verify`): the node locks still held cover a majority of the
cluster as it is now, and the lease row still carries this run's token.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import zlib
from typing import Any

import pymysql

from .. import events, interrupt
from ..config import Settings
from ..errors import LockTimeoutError
from ..run_lock import RunLock
from . import connect as db
from . import dialect, topology
from .lock import AdvisoryLock, lock_holder

LEASE_TABLE = "ragflow_migrate_lease"
_Q = dialect.quote(LEASE_TABLE)
_LEASE_DDL = f"""CREATE TABLE IF NOT EXISTS {_Q} (
  `lock_name` VARCHAR(64) NOT NULL PRIMARY KEY,
  `token` BIGINT NOT NULL,
  `run_id` VARCHAR(32) NULL,
  `instance` VARCHAR(64) NULL,
  `node_id` VARCHAR(64) NULL,
  `node_address` VARCHAR(255) NULL,
  `connection_id` BIGINT NULL,
  `node_locked` TINYINT NOT NULL DEFAULT 0,
  `beat` BIGINT NOT NULL DEFAULT 0,
  `acquired_at` DATETIME NULL,
  `beat_at` DATETIME NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""
_LEASE_COLUMNS = ("token, run_id, instance, node_id, node_address, connection_id, node_locked, beat, "
                  "TIMESTAMPDIFF(SECOND, acquired_at, UTC_TIMESTAMP()), TIMESTAMPDIFF(SECOND, beat_at, UTC_TIMESTAMP())")

#: GET_LOCK refused by the cluster: 1235 "not supported" (MariaDB 10.6.13/10.11.3 on Galera),
#: 1105 (Percona XtraDB Cluster, pxc_strict_mode=ENFORCING).
GET_LOCK_REFUSED = {1235, 1105}
_CERTIFICATION_LOST = {dialect.DEADLOCK, dialect.DUPLICATE_KEY, 1180}  # 1180: commit failed


def node_key(node_id: str) -> int:
    """Offset of a node's connection ids in ``ragflow_migrate_lock_holder`` (ids are per node)."""
    return (zlib.crc32(node_id.encode()) & 0x7FFFFF) << 32 if node_id else 0


@dataclasses.dataclass(frozen=True)
class _Node:
    node_id: str
    address: str
    settings: Settings


@dataclasses.dataclass(frozen=True)
class Lease:
    token: int
    run_id: str | None
    instance: str | None
    node_id: str | None
    node_address: str | None
    connection_id: int | None
    node_locked: bool
    beat: int
    held_s: int | None
    beat_age_s: int | None

    @classmethod
    def from_row(cls, row: tuple) -> Lease:
        return cls(int(row[0]), row[1], row[2], row[3], row[4], None if row[5] is None else int(row[5]),
                   bool(row[6]), int(row[7]), row[8], row[9])

    def describe(self, ttl: float | None = None) -> dict[str, Any]:
        holder = {"tool": "ragflow-migrate", "run_id": self.run_id, "instance": self.instance,
                  "node": self.node_address, "connection_id": self.connection_id, "lease_token": self.token,
                  "since_s": self.held_s, "heartbeat_age_s": self.beat_age_s}
        if ttl is not None and self.beat_age_s is not None and self.beat_age_s > ttl:
            holder["stale"] = True
        return holder


def read_lease(conn: pymysql.connections.Connection, name: str) -> Lease | None:
    try:
        row = db.query_one(conn, f"SELECT {_LEASE_COLUMNS} FROM {_Q} WHERE lock_name = %s", (name,))
    except pymysql.err.ProgrammingError:  # no lease table yet
        return None
    return Lease.from_row(row) if row else None


def causal_reads(conn: pymysql.connections.Connection, topo: topology.Topology) -> None:
    """Make this session's reads see every write the cluster committed before them."""
    sql = ("SET SESSION wsrep_sync_wait = 1" if topo.kind == topology.GALERA
           else "SET SESSION group_replication_consistency = 'BEFORE'")
    try:
        db.execute(conn, sql)
    except pymysql.err.MySQLError:
        pass  # an older server; the compare-and-swap below stays correct, waits just see less


class ClusterLock(RunLock):
    """``with ClusterLock(settings, log, run_id, topo) as lock: ... lock.verify() ...``
    (its own acquire, release and verify; the context manager and a lost lock's end are
    :class:`~ragflow_migrate.run_lock.RunLock`'s)."""

    kind = "cluster lock"

    def __init__(self, settings: Settings, log: Any, run_id: str, topo: topology.Topology) -> None:
        self.settings = settings
        self.name = settings.lock_name
        self.log = log
        self.run_id = run_id
        self.topology = topo
        self.node_locks: list[tuple[_Node, AdvisoryLock]] = []
        self.node_locked = False
        self.conn: pymysql.connections.Connection | None = None  # the lease's connection
        self.connection_id: int | None = None
        self.token: int | None = None
        self.acquired_at: float | None = None
        self._stop = threading.Event()
        self._beater: threading.Thread | None = None
        self._taken_over = False
        self._members: set[str] | None = None  # every member's identity, when every member was reached

    # -- acquire / release -----------------------------------------------------------------

    def acquire(self, timeout: float | None = None) -> None:
        timeout = self.settings.lock_timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            self._lock_nodes(started + timeout)
            self._claim_lease(started, timeout)
        except BaseException:
            self.close()
            raise
        self.acquired_at = time.monotonic()
        self._beater = threading.Thread(target=self._heartbeat, name="lease-heartbeat", daemon=True)
        self._beater.start()
        self.log.info(events.LOCK_ACQUIRED, lock=self.name, connection_id=self.connection_id,
                      waited_s=round(time.monotonic() - started, 3), topology=self.topology.kind,
                      nodes=[node.address for node, _lock in self.node_locks], lease_token=self.token)

    def _reach(self) -> list[_Node]:
        """The cluster's nodes this runner can open a session on, in the order every runner locks them."""
        addresses = list(self.settings.cluster_nodes) or [n.address for n in self.topology.nodes]
        if not addresses:
            addresses = [f"{self.settings.host}:{self.settings.port}"]
        found: dict[str, _Node] = {}
        size = self.topology.cluster_size
        for address in addresses:
            host, _sep, port = address.rpartition(":")
            node_settings = dataclasses.replace(self.settings, host=host.strip("[]"), port=int(port))
            try:
                conn = db.connect(node_settings, role="lock")
            except (pymysql.err.MySQLError, OSError) as exc:
                self.log.warning(events.STEP_NOTICE, step="lock", message=f"cluster node {address} cannot be "
                                 f"reached ({dialect.describe_connect_error(exc)[1]}): its GET_LOCK is not taken")
                continue
            try:
                seen = topology.detect(conn)
            finally:
                db.close_quietly(conn)
            node_id = seen.node_id or address
            if seen.kind == topology.GALERA and seen.cluster_status not in ("", "Primary"):
                continue  # a node cut off from the primary component takes no writes (nor RAGFlow's startup)
            found.setdefault(node_id, _Node(node_id, address, node_settings))
            size = max(size, seen.cluster_size) if seen.kind == self.topology.kind else size
        if found and len(found) >= size:
            self._members = set(found)
        return sorted(found.values(), key=lambda n: n.node_id)

    def _lock_nodes(self, deadline: float) -> None:
        nodes = self._reach()
        if len(nodes) < self.topology.majority:
            self.log.warning(events.STEP_NOTICE, step="lock", message=(
                f"only {len(nodes)} of the cluster's {self.topology.cluster_size} nodes can be reached: the node "
                "locks cannot hold for the cluster; runners are serialised by the lease alone, and RAGFlow's "
                "startup on another node is not waited for (give the nodes' addresses with --cluster-nodes)"))
            return
        for node in nodes:
            lock = AdvisoryLock(node.settings, self.log, self.run_id, node=node.address,
                                key_offset=node_key(node.node_id), announce=False)
            try:
                lock.acquire(max(0.0, deadline - time.monotonic()))
            except pymysql.err.MySQLError as exc:
                lock.close()
                if dialect.error_code(exc) not in GET_LOCK_REFUSED:
                    raise
                self.log.warning(events.STEP_NOTICE, step="lock", message=(
                    f"the cluster refuses GET_LOCK ({dialect.error_text(exc)}): runners are serialised by the "
                    "lease alone (RAGFlow's startup cannot take its GET_LOCK here either)"))
                self._release_nodes()
                return
            self.node_locks.append((node, lock))
        self.node_locked = True

    def _open_lease_connection(self) -> None:
        self.conn = db.connect(self.settings, read_timeout=None, role="lock")
        self.connection_id = int(db.query_one(self.conn, "SELECT CONNECTION_ID()")[0])
        causal_reads(self.conn, self.topology)
        exists = db.query_one(self.conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                              "AND TABLE_NAME = %s", (LEASE_TABLE,))
        if not exists:
            db.execute(self.conn, _LEASE_DDL)

    def _claim_lease(self, started: float, timeout: float) -> None:
        self._open_lease_connection()
        me = self._me()
        seen: tuple[int, int] | None = None
        seen_at = time.monotonic()
        while True:
            interrupt.check()
            lease = read_lease(self.conn, self.name)
            try:
                if lease is None:
                    db.execute(self.conn, f"INSERT INTO {_Q} (lock_name, token, run_id, instance, node_id, node_address, "
                               "connection_id, node_locked, beat, acquired_at, beat_at) "
                               "VALUES (%s, 1, %s, %s, %s, %s, %s, %s, 0, UTC_TIMESTAMP(), UTC_TIMESTAMP())",
                               (self.name, *me))
                    self.token = 1
                    return
                why = self._free_or_dead(lease, seen, seen_at)
                if why is not None:
                    if self._swap(lease, me):
                        self.token = lease.token + 1
                        if why:
                            self.log.warning(events.STEP_NOTICE, step="lock", message=f"took over the lease of run "
                                             f"{lease.run_id} on {lease.instance}: {why}")
                        return
                    continue
            except pymysql.err.MySQLError as exc:
                if dialect.error_code(exc) not in _CERTIFICATION_LOST:
                    raise
                continue  # another runner committed first: look again
            if seen != (lease.token, lease.beat):
                seen, seen_at = (lease.token, lease.beat), time.monotonic()
            waited = time.monotonic() - started
            holder = lease.describe(self.settings.lease_ttl)
            if waited >= timeout:
                raise LockTimeoutError(
                    f"lock {self.name!r} still held on the cluster by run {lease.run_id} on {lease.instance} "
                    f"(node {lease.node_address}) after {timeout:g}s",
                    hint="another migration is running; wait for it, or raise --lock-timeout",
                    holder=holder,
                )
            self.log.info(events.LOCK_WAITING, lock=self.name, holder=holder, waited_s=round(waited, 1),
                          timeout_s=timeout)
            interrupt.sleep(min(self.settings.lock_poll, max(0.05, timeout - waited)))

    def _me(self) -> tuple[Any, ...]:
        # "node locked" tells waiters that holding this run's own node lock proves its session gone:
        # true only when that node (the lease connection's) is among the nodes it locked.
        own_node = self.node_locked and any(node.node_id == self.topology.node_id for node, _ in self.node_locks)
        return (self.run_id, self.settings.instance[:64], self.topology.node_id or None,
                f"{self.settings.host}:{self.settings.port}"[:255], self.connection_id, int(own_node))

    def _free_or_dead(self, lease: Lease, seen: tuple[int, int] | None, seen_at: float) -> str | None:
        """``""`` when the lease is free, a reason when its holder is gone, None while it lives."""
        if lease.run_id is None:
            return ""
        if lease.node_locked and any(node.node_id == lease.node_id for node, _lock in self.node_locks):
            return "its node lock is ours now, so its session is gone"
        if self._members is not None and lease.node_id and lease.node_id not in self._members:
            return "its node is no longer a member of the cluster, so its sessions are gone"
        if seen == (lease.token, lease.beat) and time.monotonic() - seen_at >= self.settings.lease_ttl:
            return f"no heartbeat for {self.settings.lease_ttl:g}s"
        return None

    def _swap(self, lease: Lease, me: tuple[Any, ...]) -> bool:
        """Compare-and-swap: this run's claim wins only if nobody changed the row since it was read."""
        changed = db.execute(
            self.conn,
            f"UPDATE {_Q} SET token = token + 1, run_id = %s, instance = %s, node_id = %s, node_address = %s, "
            "connection_id = %s, node_locked = %s, beat = 0, acquired_at = UTC_TIMESTAMP(), beat_at = UTC_TIMESTAMP() "
            "WHERE lock_name = %s AND token = %s AND beat = %s",
            (*me, self.name, lease.token, lease.beat))
        return changed == 1

    def _heartbeat(self) -> None:
        """Keep the lease's heartbeat moving (on a session of its own) until released or taken over."""
        conn = None
        while not self._stop.wait(max(0.5, self.settings.lease_ttl / 4)):
            try:
                if conn is None:
                    conn = db.connect(self.settings, read_timeout=None, role="lock")
                changed = db.execute(conn, f"UPDATE {_Q} SET beat = beat + 1, beat_at = UTC_TIMESTAMP() "
                                     "WHERE lock_name = %s AND token = %s", (self.name, self.token))
                if changed == 0:
                    self._taken_over = True
                    break
            except (pymysql.err.MySQLError, OSError):
                db.close_quietly(conn)  # a conflict or a lost session: try again at the next beat
                conn = None
        db.close_quietly(conn)

    def release(self) -> None:
        held = time.monotonic() - self.acquired_at if self.acquired_at else 0.0
        self._stop.set()
        if self.conn is not None and self.token is not None:
            try:
                db.execute(self.conn, f"UPDATE {_Q} SET run_id = NULL, connection_id = NULL, node_locked = 0 "
                           "WHERE lock_name = %s AND token = %s", (self.name, self.token))
            except (pymysql.err.MySQLError, OSError):
                pass  # the session is gone: the next runner sees the node locks free (or the heartbeat stop)
        if self.acquired_at is not None:
            self.log.info(events.LOCK_RELEASED, lock=self.name, held_s=round(held, 3))
        self.close()

    def _release_nodes(self) -> None:
        for _node, lock in reversed(self.node_locks):
            lock.release()
        self.node_locks = []
        self.node_locked = False

    def close(self) -> None:
        self._stop.set()
        self._release_nodes()
        db.close_quietly(self.conn)
        self.conn = None
        self.acquired_at = None
        self.token = None

    # -- ownership -------------------------------------------------------------------------

    def verify(self) -> None:
        """Raise :class:`LockLostError` unless this run still holds the lock on the cluster."""
        self._check_open()
        if self.node_locked:
            alive = [(node, lock) for node, lock in self.node_locks if _still_held(lock)]
            for node, lock in self.node_locks:
                if (node, lock) not in alive:
                    self.log.warning(events.STEP_NOTICE, step="lock", message=f"the lock on node {node.address} is "
                                     "gone (the node left or its session died)")
                    lock.close()
            self.node_locks = alive
            size = self._cluster_size()
            if len(alive) < size // 2 + 1:
                self._lost(f"the node locks still held ({len(alive)}) are not a majority of the cluster's {size} "
                           "nodes")
        try:
            lease = read_lease(self.conn, self.name)
        except (pymysql.err.MySQLError, OSError) as exc:
            self._lost(f"the lease connection failed: {dialect.describe_connect_error(exc)[1]}")
        if self._taken_over or lease is None or lease.token != self.token or lease.run_id != self.run_id:
            self._lost("another runner took the lease over (this run's heartbeat stopped for longer than "
                       "--lease-ttl)")

    def _cluster_size(self) -> int:
        for conn in [self.conn] + [lock.conn for _node, lock in self.node_locks]:
            try:
                row = db.query_one(conn, "SHOW GLOBAL STATUS LIKE 'wsrep_cluster_size'")
                if row:
                    return max(1, int(row[1]))
            except (pymysql.err.MySQLError, OSError, ValueError):
                continue
        return self.topology.cluster_size

    def holder(self) -> dict[str, Any] | None:
        return read_lease(self.conn, self.name).describe(self.settings.lease_ttl) if self.conn else None


def _still_held(lock: AdvisoryLock) -> bool:
    """A node lock whose connection failed (its node left, or its session died) is not held."""
    try:
        return lock.conn is not None and lock.holds()
    except (pymysql.err.MySQLError, OSError):
        return False


class PrimaryLock(AdvisoryLock):
    """Single-primary Group Replication: ``GET_LOCK`` on the primary (every write goes there, RAGFlow's
    too), and before every step a check that this member is still the primary: after a switch the run
    stops with the retryable exit 6 and the next run, through the new primary, converges."""

    def verify(self) -> None:
        super().verify()
        try:
            row = db.query_one(self.conn, "SELECT MEMBER_ROLE FROM performance_schema.replication_group_members "
                               "WHERE MEMBER_ID = @@server_uuid")
        except (pymysql.err.MySQLError, OSError) as exc:
            self._lost(f"the group's membership cannot be read: {dialect.describe_connect_error(exc)[1]}")
        if not row or row[0] != "PRIMARY":
            self._lost(f"this member is no longer the group's primary (role {row[0] if row else 'unknown'})")


def open_lock(settings: Settings, log: Any, run_id: str, server: Any) -> Any:
    """The lock that serialises runners on this topology."""
    topo = getattr(server, "topology", None)
    if topo is not None and topo.clustered:
        return ClusterLock(settings, log, run_id, topo)
    if topo is not None and topo.kind == topology.GROUP_REPLICATION:
        return PrimaryLock(settings, log, run_id)
    return AdvisoryLock(settings, log, run_id)


def cluster_holder(conn: pymysql.connections.Connection, settings: Settings, server: Any) -> dict[str, Any] | None:
    """Who holds the lock, for ``status``: on a cluster the lease's holder (else this node's GET_LOCK holder)."""
    topo = getattr(server, "topology", None)
    if topo is not None and topo.clustered:
        lease = read_lease(conn, settings.lock_name)
        if lease is not None and lease.run_id is not None:
            return lease.describe(settings.lease_ttl)
        return lock_holder(conn, settings.lock_name, node_key(topo.node_id))
    return lock_holder(conn, settings.lock_name)
