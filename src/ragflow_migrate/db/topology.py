"""What the server we reached is part of: a stand-alone server, a Galera node, a Group Replication
member, or a read-only replica. Read once per connection, from variables and status any account
may read (``SHOW GLOBAL VARIABLES`` / ``SHOW GLOBAL STATUS``, ``performance_schema.replication_group_members``).

Why it matters (README, "Locking on clusters"):

* ``GET_LOCK`` is local to one server. On a Galera cluster or a multi-primary group, runners
  reaching different nodes would all get "the" lock; :mod:`.cluster_lock` serialises them.
* On Galera every DDL statement is replicated as Total Order Isolation (TOI): a rejected
  ``ALGORITHM=`` try is replicated to every node and stalls the cluster, so the algorithm is chosen
  before sending (:meth:`Topology.choose_algorithm`), and a COPY is announced (and refused above a
  size unless ``--allow-blocking-ddl``).
* Group Replication in single-primary mode takes writes on the primary only: a secondary is a
  clear error naming the primary.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pymysql

from . import connect as db
from . import dialect

STANDALONE = "standalone"
GALERA = "galera"
GROUP_REPLICATION = "group_replication"
REPLICA = "replica"

#: Upper bound of one row the data stages write (tenant_model_instance: api_key 512 + extra 4096
#: characters of up to 4 bytes, rounded up; staging rows are smaller).
ROW_BYTES_BOUND = 24 * 1024


@dataclasses.dataclass(frozen=True)
class Node:
    """One member of a cluster as the cluster lists it (``address`` = host:port for clients)."""

    address: str
    node_id: str = ""
    state: str = ""
    role: str = ""


@dataclasses.dataclass(frozen=True)
class Topology:
    kind: str = STANDALONE
    read_only: bool = False
    super_read_only: bool = False
    node_id: str = ""  # wsrep_gcomm_uuid (Galera) or server_uuid (Group Replication)
    # Galera
    cluster_size: int = 1
    node_state: str = ""  # wsrep_local_state_comment: Synced, Donor/Desynced, Joining, ...
    cluster_status: str = ""  # Primary / non-Primary
    osu_method: str = ""  # TOI / RSU / NBO
    pxc_strict_mode: str = ""  # Percona XtraDB Cluster only
    max_ws_rows: int = 0  # 0: no limit
    max_ws_size: int = 0
    # Group Replication
    single_primary: bool = True
    role: str = ""  # PRIMARY / SECONDARY
    nodes: tuple[Node, ...] = ()

    @property
    def clustered(self) -> bool:
        """Several servers take writes for the same data: GET_LOCK on one does not hold on the others."""
        return self.kind == GALERA or (self.kind == GROUP_REPLICATION and not self.single_primary)

    @property
    def primary(self) -> Node | None:
        return next((n for n in self.nodes if n.role == "PRIMARY"), None)

    @property
    def majority(self) -> int:
        """Nodes a cluster lock must hold so that two holders always share one."""
        return self.cluster_size // 2 + 1

    def cap_batch(self, rows: int) -> int:
        """``rows`` per data transaction, lowered so that no write set exceeds ``wsrep_max_ws_rows`` /
        ``wsrep_max_ws_size`` (a merge page writes up to 4 batches' rows; a row is at most
        :data:`ROW_BYTES_BOUND` bytes in the tables the data stages write)."""
        if self.kind != GALERA:
            return rows
        if self.max_ws_rows:
            rows = min(rows, max(1, self.max_ws_rows // 4))
        if self.max_ws_size:
            rows = min(rows, max(1, self.max_ws_size // (4 * ROW_BYTES_BOUND)))
        return rows

    def as_fields(self) -> dict[str, Any]:
        """What ``db.ready`` and ``status`` report."""
        fields: dict[str, Any] = {"kind": self.kind}
        if self.kind == GALERA:
            fields.update(cluster_size=self.cluster_size, node_state=self.node_state,
                          cluster_status=self.cluster_status, osu_method=self.osu_method,
                          nodes=[n.address for n in self.nodes])
            if self.pxc_strict_mode:
                fields["pxc_strict_mode"] = self.pxc_strict_mode
            if self.max_ws_rows:
                fields["max_ws_rows"] = self.max_ws_rows
        elif self.kind == GROUP_REPLICATION:
            fields.update(mode="single-primary" if self.single_primary else "multi-primary", role=self.role,
                          members=[{"address": n.address, "state": n.state, "role": n.role} for n in self.nodes],
                          super_read_only=self.super_read_only)
        elif self.read_only or self.super_read_only:
            fields.update(read_only=True)
        return fields


def _variables(conn: pymysql.connections.Connection, sql: str) -> dict[str, str]:
    try:
        return {str(k).lower(): "" if v is None else str(v) for k, v in db.query(conn, sql)}
    except pymysql.err.MySQLError:
        return {}


_VARIABLES_SQL = (
    "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('wsrep_on', 'wsrep_osu_method', 'pxc_strict_mode', "
    "'wsrep_max_ws_rows', 'wsrep_max_ws_size', 'read_only', 'super_read_only', 'server_uuid', "
    "'group_replication_single_primary_mode')"
)
_STATUS_SQL = (
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_local_state_comment', "
    "'wsrep_cluster_status', 'wsrep_incoming_addresses', 'wsrep_gcomm_uuid', 'wsrep_ready')"
)
_GR_MEMBERS_SQL = (
    "SELECT MEMBER_ID, MEMBER_HOST, MEMBER_PORT, MEMBER_STATE, MEMBER_ROLE "
    "FROM performance_schema.replication_group_members"
)


def _on(value: str) -> bool:
    return value.strip().upper() in ("ON", "1", "TRUE", "YES")


def _int(value: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        return 0


def detect(conn: pymysql.connections.Connection) -> Topology:
    """The topology of the server ``conn`` is connected to (a few milliseconds)."""
    var = _variables(conn, _VARIABLES_SQL)
    read_only, super_ro = _on(var.get("read_only", "")), _on(var.get("super_read_only", ""))
    if _on(var.get("wsrep_on", "")):
        status = _variables(conn, _STATUS_SQL)
        addresses = [a.strip() for a in status.get("wsrep_incoming_addresses", "").split(",")]
        return Topology(
            kind=GALERA, read_only=read_only, super_read_only=super_ro,
            node_id=status.get("wsrep_gcomm_uuid", ""),
            cluster_size=max(1, _int(status.get("wsrep_cluster_size", "1"))),
            node_state=status.get("wsrep_local_state_comment", ""),
            cluster_status=status.get("wsrep_cluster_status", ""),
            osu_method=var.get("wsrep_osu_method", "TOI") or "TOI",
            pxc_strict_mode=var.get("pxc_strict_mode", ""),
            max_ws_rows=_int(var.get("wsrep_max_ws_rows", "0")),
            max_ws_size=_int(var.get("wsrep_max_ws_size", "0")),
            nodes=tuple(Node(a) for a in addresses if a and a.upper() != "AUTO"),
        )
    members: list[tuple] = []
    if "group_replication_single_primary_mode" in var:
        try:
            members = db.query(conn, _GR_MEMBERS_SQL)
        except pymysql.err.MySQLError:
            members = []
    online = [m for m in members if m[3] and str(m[3]).upper() != "OFFLINE"]
    if online:
        me = var.get("server_uuid", "")
        nodes = tuple(Node(f"{m[1]}:{m[2]}", str(m[0]), str(m[3] or ""), str(m[4] or "")) for m in online)
        role = next((n.role for n in nodes if n.node_id == me), "")
        return Topology(kind=GROUP_REPLICATION, read_only=read_only, super_read_only=super_ro, node_id=me,
                        cluster_size=len(nodes), single_primary=_on(var["group_replication_single_primary_mode"]),
                        role=role, nodes=nodes)
    if read_only or super_ro:
        return Topology(kind=REPLICA, read_only=read_only, super_read_only=super_ro)
    return Topology(read_only=read_only, super_read_only=super_ro)


def identify(conn: pymysql.connections.Connection) -> dialect.ServerInfo:
    """The server's identity, with the topology it is part of."""
    return dataclasses.replace(db.server_info(conn), topology=detect(conn))
