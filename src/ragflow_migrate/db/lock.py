"""The MySQL advisory lock (``GET_LOCK``) that makes one runner migrate while the others wait.

* The lock lives on its own dedicated connection; pymysql never reconnects it silently, so
  if that connection dies the lock is gone and :meth:`AdvisoryLock.verify` says so.
* The wait is bounded and polled in short slices; every slice that times out logs who holds
  the lock: connection id, user and host from the process list, and the runner's pod name when
  the holder is one of ours (we publish it in a small table, read by connection id).
* The default name, ``init_database_tables``, is the one RAGFlow's own startup takes, so
  RAGFlow's DDL never runs beside ours. The name is server-wide, as in RAGFlow.

The conformance contract (tested on both servers): A holds; B waits, names A, and times out;
A releases and B acquires; killing A's session frees the lock for B.
"""

from __future__ import annotations

import os
from typing import Any

import pymysql

from .. import __version__, events
from ..config import Settings
from ..errors import LockTimeoutError, StepFailedError
from ..run_lock import RunLock
from . import connect as db
from . import dialect

HOLDER_TABLE = "ragflow_migrate_lock_holder"

# One row per runner connection, written before it asks for the lock: a waiter that sees the
# lock held by connection N finds N's row at once (no window between GET_LOCK and a publish).
_HOLDER_DDL = f"""CREATE TABLE IF NOT EXISTS {dialect.quote(HOLDER_TABLE)} (
  `connection_id` BIGINT NOT NULL PRIMARY KEY,
  `lock_name` VARCHAR(64) NOT NULL,
  `instance` VARCHAR(64) NOT NULL,
  `pid` INT NOT NULL,
  `run_id` VARCHAR(32) NOT NULL,
  `tool_version` VARCHAR(32) NOT NULL,
  `registered_at` DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""


class AdvisoryLock(RunLock):
    """``with AdvisoryLock(settings, log, run_id) as lock: ... lock.verify() ...``"""

    session_errors = (pymysql.err.MySQLError, OSError)

    def __init__(self, settings: Settings, log: Any, run_id: str, *, publish: bool = True,
                 node: str | None = None, key_offset: int = 0, announce: bool = True) -> None:
        self.settings = settings
        self.name = settings.lock_name
        self.log = log
        self.run_id = run_id
        self.publish = publish
        # On a cluster (db.cluster_lock) one of several node locks: its node named in the events,
        # its published row keyed apart from other nodes' connections (ids are per node).
        self.node = node
        self.key_offset = key_offset
        self.announce = announce
        self.conn: pymysql.connections.Connection | None = None
        self.connection_id: int | None = None
        self.acquired_at: float | None = None

    # -- the server's side of the lifecycle (run_lock.RunLock) ----------------------------------

    def _open(self) -> None:
        self.conn = db.connect(self.settings, read_timeout=None, role="lock")
        self.connection_id = int(db.query_one(self.conn, "SELECT CONNECTION_ID()")[0])
        self._publish()

    def _try(self, slice_s: float) -> bool:
        # GET_LOCK takes whole or fractional seconds; 0 means "try once".
        row = db.query_one(self.conn, "SELECT GET_LOCK(%s, %s)", (self.name, round(slice_s, 3)))
        result = row[0] if row else None
        if result is None:
            raise StepFailedError(f"GET_LOCK({self.name!r}) returned NULL (killed or out of memory)")
        return result == 1

    def _unlock(self) -> None:
        db.query_one(self.conn, "SELECT RELEASE_LOCK(%s)", (self.name,))

    def _after_release(self) -> None:
        # The name goes after the lock, never before: a waiter that sees this connection
        # holding the lock always finds its row.
        if self.publish:
            db.execute(self.conn, f"DELETE FROM {dialect.quote(HOLDER_TABLE)} WHERE connection_id = %s",
                       (self.connection_id + self.key_offset,))

    def _timeout_error(self, holder: dict[str, Any] | None, timeout: float) -> LockTimeoutError:
        return LockTimeoutError(
            f"lock {self.name!r} still held by {describe_holder(holder)} after {timeout:g}s",
            hint="another migration (or RAGFlow's startup) is running; wait for it, or raise "
            "--lock-timeout. A runner killed with its session open holds the lock until "
            "MySQL notices the session is gone",
            holder=holder,
        )

    def _error_text(self, exc: BaseException) -> str:
        return dialect.describe_connect_error(exc)[1]

    def _event_fields(self) -> dict[str, Any]:
        return {"node": self.node} if self.node else {}

    def in_flight(self) -> list[dict[str, Any]]:
        # Work sessions of other runner processes (this one's are idle while it takes the lock)
        # running a statement; an account sees its own sessions, and every session with PROCESS.
        rows = db.query(
            self.conn,
            "SELECT ID, TIME, LEFT(INFO, 300) FROM information_schema.PROCESSLIST "
            "WHERE ID <> CONNECTION_ID() AND DB = DATABASE() AND COMMAND <> 'Sleep' AND INFO LIKE %s "
            "AND INFO NOT LIKE %s",
            (db.statement_tag("work", token="") + "%", db.statement_tag("work") + "%"),
        )
        return [{"id": int(r[0]), "time_s": int(r[1] or 0), "statement": db.untagged(r[2])} for r in rows]

    def close(self) -> None:
        db.close_quietly(self.conn)
        self.conn = None
        self.acquired_at = None

    def holds(self) -> bool:
        row = db.query_one(self.conn, "SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", (self.name,))
        return bool(row and row[0] == 1)

    # -- who holds it ----------------------------------------------------------------------

    def _publish(self) -> None:
        """Record this runner's name for the runners that will wait behind it (keyed by this
        connection's id; a later connection with the same id replaces the row)."""
        if not self.publish:
            return
        try:
            db.execute(self.conn, _HOLDER_DDL)
            db.execute(
                self.conn,
                f"REPLACE INTO {dialect.quote(HOLDER_TABLE)} "
                "(connection_id, lock_name, instance, pid, run_id, tool_version, registered_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP())",
                (self.connection_id + self.key_offset, self.name, self.settings.instance, os.getpid(), self.run_id,
                 __version__),
            )
        except pymysql.err.MySQLError as exc:
            # Naming the holder is a courtesy; a read-only or restricted account still migrates.
            self.log.debug(events.STEP_NOTICE, step="lock", message=f"cannot publish holder: {exc}")

    def holder(self) -> dict[str, Any] | None:
        holder = lock_holder(self.conn, self.name, self.key_offset)
        if holder and self.node:
            holder["node"] = self.node
        return holder


def lock_holder(conn: pymysql.connections.Connection, name: str, key_offset: int = 0) -> dict[str, Any] | None:
    """Who holds lock ``name`` right now, as far as this account can see; None when free.

    The holder may release between our reads (its process-list row gone, its published name
    left or not yet written): a description counts only when the lock still has the same holder
    after it was read; otherwise the new holder is described afresh (a few times at most)."""
    holder: dict[str, Any] | None = None
    for _attempt in range(5):
        owner = _owner(conn, name)
        if owner is None:
            return None
        holder = _describe(conn, name, owner, key_offset)
        if _owner(conn, name) == owner:
            return holder
    return holder


def _owner(conn: pymysql.connections.Connection, name: str) -> int | None:
    row = db.query_one(conn, "SELECT IS_USED_LOCK(%s)", (name,))
    return None if not row or row[0] is None else int(row[0])


def _describe(conn: pymysql.connections.Connection, name: str, connection_id: int,
              key_offset: int = 0) -> dict[str, Any]:
    holder: dict[str, Any] = {"connection_id": connection_id}
    try:
        proc = db.query_one(
            conn,
            "SELECT USER, HOST, COMMAND, TIME FROM information_schema.PROCESSLIST WHERE ID = %s",
            (holder["connection_id"],),
        )
    except pymysql.err.MySQLError:
        proc = None
    if proc:
        holder.update(user=proc[0], host=proc[1], command=proc[2], connected_s=proc[3])
    try:
        pub = db.query_one(
            conn,
            f"SELECT instance, pid, run_id, TIMESTAMPDIFF(SECOND, registered_at, UTC_TIMESTAMP()) "
            f"FROM {dialect.quote(HOLDER_TABLE)} WHERE connection_id = %s AND lock_name = %s",
            (holder["connection_id"] + key_offset, name),
        )
    except pymysql.err.MySQLError:
        pub = None
    if pub:
        holder.update(instance=pub[0], pid=pub[1], run_id=pub[2], since_s=pub[3], tool="ragflow-migrate")
    return holder


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "nobody"
    text = f"connection {holder['connection_id']}"
    if holder.get("user"):
        text += f" ({holder['user']}@{holder.get('host')})"
    if holder.get("instance"):
        text += f", ragflow-migrate on {holder['instance']}"
    else:
        text += ", not a ragflow-migrate runner (RAGFlow's startup?)"
    return text
