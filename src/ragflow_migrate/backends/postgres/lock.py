"""The PostgreSQL run lock: a session-level ``pg_advisory_lock(k)`` that makes one runner migrate
while the others (and RAGFlow's own startup) wait. Same surface and events as the MySQL
backend's ``db.lock.AdvisoryLock``; the PostgreSQL facts differ:

* **The key is RAGFlow's**: ``k = int(md5(lock_name).hexdigest(), 16) % (2**31 - 1)``, so the
  default name ``init_database_tables`` (k = 1241179007) is the lock RAGFlow's startup takes
  (``pg_try_advisory_lock``), and RAGFlow's DDL never runs beside ours.
* **Advisory locks are per database**: the lock session connects to the target database (not to
  ``postgres``); the same key in another database is another lock.
* **A dedicated autocommit session** holds it; a transaction ending on that session keeps it, and
  closing the session (a killed runner) frees it. Statement and idle timeouts are off there, and
  TCP keepalives on, so neither a server default nor a silent network loss keeps a dead lock.
* **The wait** is a blocking ``pg_advisory_lock`` under ``lock_timeout``, in slices of
  ``--lock-poll`` up to ``--lock-timeout``: a blocked call joins the server's queue and is granted
  the moment the holder leaves (a ``pg_try_advisory_lock`` loop would only notice at its next
  try). Each slice that times out (55P03) logs the holder.
* **The holder** is read from ``pg_locks`` joined to ``pg_stat_activity``; every runner's
  ``application_name`` is ``ragflow-migrate/<instance>``, so no holder table is needed. Any other
  name is "RAGFlow or another client". Other roles' ``client_addr`` needs ``pg_read_all_stats``;
  without it the holder is named by pid, user and application_name.

Do not run the tool through a transaction-pooling proxy (PgBouncer ``pool_mode=transaction``): it
would move the session lock between server connections.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import psycopg

from ...config import Settings
from ...errors import LockTimeoutError
from ...run_lock import RunLock
from . import errors
from .connect import APPLICATION_PREFIX, close_quietly, connect, disable_timeouts, execute, query, query_one

# A single bigint key below 2**31 shows in pg_locks as classid 0, objid k, objsubid 1.
_WHERE_KEY = ("l.locktype = 'advisory' AND l.classid = 0 AND l.objid = %(key)s::bigint::oid AND l.objsubid = 1 "
              "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND l.granted")
_HOLDER_SQL = (
    "SELECT l.pid, a.usename, host(a.client_addr), a.application_name, "
    "to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
    "extract(epoch FROM now() - a.backend_start)::bigint "
    f"FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE {_WHERE_KEY} LIMIT 1"
)
_IN_FLIGHT_SQL = (
    "SELECT a.pid, extract(epoch FROM clock_timestamp() - a.query_start), left(a.query, 300) "
    "FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
    "AND a.state = 'active' AND a.application_name LIKE %(prefix)s "
    "AND NOT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory')"
)
_HOLDS_SQL = f"SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = pg_backend_pid() AND {_WHERE_KEY})"


def lock_key(name: str) -> int:
    """RAGFlow's advisory-lock key of a lock name."""
    return int(hashlib.md5(name.encode("utf-8")).hexdigest(), 16) % (2**31 - 1)


class PgAdvisoryLock(RunLock):
    """``with PgAdvisoryLock(settings, log, run_id) as lock: ... lock.verify() ...``"""

    session_word = "session"
    session_errors = (psycopg.Error, OSError)

    def __init__(self, settings: Settings, log: Any, run_id: str) -> None:
        self.settings = settings
        self.name = settings.lock_name
        self.key = lock_key(settings.lock_name)
        self.log = log
        self.run_id = run_id
        self.conn: psycopg.Connection | None = None
        #: The lock session's backend pid (what pg_locks and pg_stat_activity show).
        self.connection_id: int | None = None
        self.acquired_at: float | None = None

    # -- the server's side of the lifecycle (run_lock.RunLock) ----------------------------------

    def _open(self) -> None:
        self.conn = connect(self.settings)
        disable_timeouts(self.conn)
        self.connection_id = self.conn.info.backend_pid

    def _try(self, slice_s: float) -> bool:
        assert self.conn is not None
        if slice_s <= 0:
            row = query_one(self.conn, "SELECT pg_try_advisory_lock(%s::bigint)", (self.key,))
            return bool(row and row[0])
        # lock_timeout 0 means "wait forever": a slice is at least one millisecond.
        execute(self.conn, "SELECT set_config('lock_timeout', %s, false)", (f"{max(1, math.ceil(slice_s * 1000))}ms",))
        try:
            execute(self.conn, "SELECT pg_advisory_lock(%s::bigint)", (self.key,))
        except psycopg.errors.LockNotAvailable:
            return False
        execute(self.conn, "SELECT set_config('lock_timeout', '0', false)")  # the session's own again
        return True

    def _unlock(self) -> None:
        query_one(self.conn, "SELECT pg_advisory_unlock(%s::bigint)", (self.key,))

    def _timeout_error(self, holder: dict[str, Any] | None, timeout: float) -> LockTimeoutError:
        return LockTimeoutError(
            f"lock {self.name!r} (pg_advisory_lock({self.key})) still held by {describe_holder(holder)} "
            f"after {timeout:g}s",
            hint="another migration (or RAGFlow's startup) is running; wait for it, or raise "
            "--lock-timeout. A killed runner's session ends when PostgreSQL notices it is gone; "
            "SELECT pg_terminate_backend(<pid>) ends a stale one at once",
            holder=holder,
        )

    def _error_text(self, exc: BaseException) -> str:
        return errors.error_text(exc)

    def _event_fields(self) -> dict[str, Any]:
        return {"key": self.key}

    def in_flight(self) -> list[dict[str, Any]]:
        # Other runners' sessions running a statement, but for the lock sessions (which hold or
        # wait for advisory locks): this run's own work session is idle while it takes the lock.
        assert self.conn is not None
        rows = query(self.conn, _IN_FLIGHT_SQL, {"prefix": APPLICATION_PREFIX + "%"})
        return [{"id": int(r[0]), "time_s": float(r[1] or 0), "statement": r[2]} for r in rows]

    def close(self) -> None:
        close_quietly(self.conn)
        self.conn = None
        self.acquired_at = None

    def holds(self) -> bool:
        assert self.conn is not None
        row = query_one(self.conn, _HOLDS_SQL, {"key": self.key})
        return bool(row and row[0])

    def holder(self) -> dict[str, Any] | None:
        assert self.conn is not None
        return lock_holder(self.conn, self.settings)


def lock_holder(conn: psycopg.Connection, settings: Settings) -> dict[str, Any] | None:
    """Who holds the run lock in ``conn``'s database right now, as far as this role can see; None
    when free. The keys of the MySQL holder (``connection_id``, ``user``, ``host``, and
    ``instance`` for one of ours) plus PostgreSQL's own."""
    rows = query(conn, _HOLDER_SQL, {"key": lock_key(settings.lock_name)})
    if not rows:
        return None
    pid, user, host, application, backend_start, connected_s = rows[0]
    holder: dict[str, Any] = {"connection_id": pid, "pid": pid, "user": user, "host": host,
                              "application_name": application, "backend_start": backend_start,
                              "connected_s": connected_s}
    if application and application.startswith(APPLICATION_PREFIX):
        holder.update(instance=application[len(APPLICATION_PREFIX):], tool="ragflow-migrate")
    else:
        holder["client"] = "RAGFlow or another client"
    return holder


def describe_holder(holder: dict[str, Any] | None) -> str:
    if not holder:
        return "nobody"
    text = f"backend pid {holder['pid']}"
    if holder.get("user"):
        text += f" ({holder['user']}" + (f"@{holder['host']}" if holder.get("host") else "") + ")"
    if holder.get("instance"):
        return text + f", ragflow-migrate on {holder['instance']}"
    application = f" (application_name {holder['application_name']!r})" if holder.get("application_name") else ""
    return text + f", not a ragflow-migrate runner: RAGFlow or another client{application}"
