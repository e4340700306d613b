"""Index builds that leave a big table writable: ``CREATE INDEX CONCURRENTLY``, outside any transaction.

A plain ``CREATE INDEX`` holds a SHARE lock on its table for the whole build, and inside a
migration's transaction until COMMIT: RAGFlow's INSERTs, UPDATEs and DELETEs on it wait. So an
index that a migration or the drift repair creates under its own name, on a table holding more
than ``--blocking-ddl-rows`` rows (:class:`Sizes`), is built ``CONCURRENTLY`` instead, on the work
session in autocommit (it cannot run inside a transaction); :mod:`.migration` decides when.

* **The run lock** is verified right before each build (``ctx.checkpoint()``). The lock session is
  in autocommit and never holds a transaction open, so a build never waits for it.
* **Waits.** A concurrent build waits for every transaction that holds a lock on the table, then
  for every transaction older than its snapshot. Each such wait is bounded by ``--ddl-deadline``
  (``lock_timeout``); while it lasts, a second session names the blockers every
  ``--ddl-lock-wait`` seconds (``step.waiting``). Waiting blocks nobody: RAGFlow's reads and
  writes go on (the build takes SHARE UPDATE EXCLUSIVE, which they do not conflict with).
* **Failures leave nothing.** A build that fails (duplicates under a unique index, a wait given
  up) leaves an INVALID index; it is dropped (``DROP INDEX CONCURRENTLY``) before the error goes
  on, and the error is the one a build inside a transaction gives (same exit code).
* **Kills.** When this process dies, the server cancels the build within a second
  (``client_connection_check_interval``, PostgreSQL 14+) and the index stays INVALID. The
  introspection does not count an INVALID index as present (:func:`.introspect.invalid_indexes`),
  and the next build of that name drops it first and builds it again.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import psycopg.errors

from ... import events
from ...errors import StepFailedError
from .connect import close_quietly, execute, query, query_one
from .ddl import IndexBuild, quote

#: How often the server checks, during a build, that this process is still there (ms).
CLIENT_CHECK_MS = 1000

_SIZE = ("SELECT c.reltuples, c.relpages, pg_relation_size(c.oid) / current_setting('block_size')::int "
         "FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = %s "
         "AND c.relkind = 'r'")

_IS_INVALID = ("SELECT 1 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
               "WHERE i.relname = %s AND t.relname = %s AND t.relnamespace = current_schema()::regnamespace "
               "AND NOT x.indisvalid")

#: The sessions ``pid`` waits for right now (a build waits on their virtual transaction ids).
_WAITING_FOR = ("SELECT a.pid, a.usename, a.application_name, a.state, left(a.query, 200) FROM pg_stat_activity a "
                "WHERE a.pid = ANY(pg_blocking_pids(%s)) ORDER BY a.pid")

#: After a wait was given up: the transactions of this database older than the build.
_OLDER = ("SELECT a.pid, a.usename, a.application_name, a.state, left(a.query, 200) FROM pg_stat_activity a "
          "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.xact_start < %s "
          "ORDER BY a.pid")

_BLOCKER_FIELDS = ("pid", "user", "application_name", "state", "query")


# --- sizes ----------------------------------------------------------------------------------------


def estimated_rows(conn: Any, table: str, cap: int) -> int:
    """About how many rows ``table`` holds: the planner's estimate (``reltuples`` per page times the
    pages the table has now); a table never analysed nor vacuumed is counted, up to ``cap + 1``."""
    row = query_one(conn, _SIZE, (table,))
    if row is None:
        return 0
    reltuples, relpages, pages = float(row[0]), int(row[1]), int(row[2])
    if pages == 0:
        return 0
    if reltuples >= 0 and relpages > 0:
        return int(reltuples / relpages * pages)
    counted = query_one(conn, f"SELECT count(*) FROM (SELECT 1 FROM {quote(table)} LIMIT {int(cap) + 1}) s")
    return int(counted[0]) if counted else 0


class Sizes:
    """Which tables get their indexes built concurrently: more estimated rows than ``threshold``
    (``--blocking-ddl-rows``). Each table is estimated once."""

    def __init__(self, conn: Any, threshold: int) -> None:
        self.conn = conn
        self.threshold = threshold
        self._rows: dict[str, int] = {}

    def rows(self, table: str) -> int:
        if table not in self._rows:
            self._rows[table] = estimated_rows(self.conn, table, self.threshold)
        return self._rows[table]

    def big(self, table: str | None) -> bool:
        return table is not None and self.rows(table) > self.threshold

    def why(self, table: str) -> str:
        rows = self.rows(table)
        if rows == self.threshold + 1:  # a count that stopped there
            return f"{table} holds more than {self.threshold:,} rows (--blocking-ddl-rows)"
        return f"{table} holds about {rows:,} rows, more than --blocking-ddl-rows {self.threshold:,}"


def sizes(ctx: Any) -> Sizes:
    return Sizes(ctx.conn, ctx.settings.blocking_ddl_rows)


# --- builds and drops -----------------------------------------------------------------------------


def is_invalid(conn: Any, table: str, name: str) -> bool:
    return query_one(conn, _IS_INVALID, (name, table)) is not None


def drop_invalid(ctx: Any, step: str, table: str, name: str, *, why: str) -> bool:
    """``DROP INDEX CONCURRENTLY`` the INVALID index ``name`` of ``table``; False when there is none."""
    if not is_invalid(ctx.conn, table, name):
        return False
    ctx.checkpoint()  # the run lock is verified before each drop
    ctx.notice(step, f"index {name} of {table} is INVALID ({why}): dropped, to be built again", count=1,
               sample=[{"table": table, "index": name}])
    run_concurrently(ctx, step, f"DROP INDEX CONCURRENTLY IF EXISTS {quote(name)}", table,
                     note=f"an INVALID index left by {why}")
    return True


def build(ctx: Any, step: str, statement: IndexBuild, note: str) -> None:
    """Build ``statement``'s index ``CONCURRENTLY`` (an INVALID leftover of the same name dropped
    first); on failure drop what the build left, then raise its error."""
    assert statement.table is not None
    ctx.checkpoint()  # the run lock is verified before each build
    drop_invalid(ctx, step, statement.table, statement.name, why="an earlier build that failed or was interrupted")
    try:
        run_concurrently(ctx, step, statement.concurrent_sql(), statement.table, note=note)
    except (psycopg.Error, StepFailedError):
        _leave_nothing(ctx, step, statement)
        raise


def _leave_nothing(ctx: Any, step: str, statement: IndexBuild) -> None:
    """After a failed build: drop the INVALID index it left, waiting at most ``--ddl-lock-wait``
    (a build that gave up waiting would only wait again); else the next run drops it."""
    assert statement.table is not None
    try:
        if ctx.conn.closed or not is_invalid(ctx.conn, statement.table, statement.name):
            return
        with _session(ctx.conn, ctx.settings.ddl_lock_wait):
            execute(ctx.conn, f"DROP INDEX CONCURRENTLY IF EXISTS {quote(statement.name)}")
        ctx.notice(step, f"the failed concurrent build of {statement.name} on {statement.table} left it INVALID: "
                   "dropped", count=1, sample=[{"table": statement.table, "index": statement.name}])
    except psycopg.Error as exc:
        ctx.notice(step, f"the failed build left index {statement.name} of {statement.table} INVALID; the next run "
                   f"drops it ({type(exc).__name__}: {str(exc).strip()[:200]})")


def run_concurrently(ctx: Any, step: str, sql: str, table: str, *, note: str) -> None:
    """Run one ``… CONCURRENTLY`` statement on the work session (autocommit), its waits bounded and
    its blockers named (see the module docstring)."""
    conn = ctx.conn
    if not conn.autocommit or conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        raise ValueError("a concurrent index build needs an autocommit session outside any transaction")
    deadline = ctx.settings.ddl_deadline
    started_at = query_one(conn, "SELECT clock_timestamp()")[0]
    started = time.monotonic()
    with _session(conn, deadline), _Watch(ctx, step, table, conn.info.backend_pid) as watch:
        try:
            execute(conn, sql)
        except psycopg.errors.LockNotAvailable as exc:
            found = watch.blockers or _older(conn, started_at)
            raise StepFailedError(
                f"{step}: {sql.split(' ON ')[0]} on {table} waited {deadline:g}s (--ddl-deadline) for other "
                f"transactions to end; blocked by {describe(found)}",
                hint="a long-running transaction uses the table (or holds an old snapshot); end it, or raise "
                "--ddl-deadline, and run again (an INVALID index left behind is dropped then)", blockers=found,
                error_code=exc.sqlstate) from exc
    ctx.log.info(events.STEP_STATEMENT, step=step, sql=sql, algorithm="CONCURRENTLY",
                 duration_s=round(time.monotonic() - started, 3), rows=0, note=note)


@contextlib.contextmanager
def _session(conn: Any, lock_wait: float) -> Iterator[None]:
    """``lock_timeout`` for each wait, and the server's check that this process is still there."""
    saved = query_one(conn, "SELECT current_setting('lock_timeout')")[0]
    execute(conn, "SELECT set_config('lock_timeout', %s, false)", (f"{max(1, round(lock_wait * 1000))}ms",))
    if conn.info.server_version >= 140000:
        execute(conn, "SELECT set_config('client_connection_check_interval', %s, false)", (str(CLIENT_CHECK_MS),))
    try:
        yield
    finally:
        if not conn.closed:
            with contextlib.suppress(psycopg.Error):
                execute(conn, "SELECT set_config('lock_timeout', %s, false)", (saved,))
                if conn.info.server_version >= 140000:
                    execute(conn, "SELECT set_config('client_connection_check_interval', '0', false)")


def _older(conn: Any, since: Any) -> list[dict[str, Any]]:
    with contextlib.suppress(psycopg.Error):
        return [dict(zip(_BLOCKER_FIELDS, row)) for row in query(conn, _OLDER, (since,))]
    return []


def describe(found: list[dict[str, Any]]) -> str:
    if not found:
        return "a session that has ended since"
    return "; ".join(f"pid {b['pid']} ({b['user']}, {b['application_name'] or 'no application_name'}, "
                     f"{b['state']}: {b['query']!r})" for b in found)


class _Watch:
    """While a build runs: every ``--ddl-lock-wait`` seconds, the sessions it waits for, from a
    session of its own (opened at the first look), logged as ``step.waiting``."""

    def __init__(self, ctx: Any, step: str, table: str, pid: int) -> None:
        self.ctx, self.step, self.table, self.pid = ctx, step, table, pid
        self.every = max(0.1, float(ctx.settings.ddl_lock_wait))
        self.blockers: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=contextvars.copy_context().run, args=(self._loop,), daemon=True,
                                        name="ragflow-migrate-build-watch")

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _open(self) -> Any:
        if getattr(self.ctx, "open_session", None) is not None:
            return self.ctx.open_session()
        from .connect import connect

        return connect(self.ctx.settings)

    def _loop(self) -> None:
        conn = None
        started = time.monotonic()
        looks = 0
        try:
            while not self._stop.wait(self.every):
                conn = conn or self._open()
                found = [dict(zip(_BLOCKER_FIELDS, row)) for row in query(conn, _WAITING_FOR, (self.pid,))]
                if not found or self._stop.is_set():
                    continue
                looks += 1
                self.blockers = found
                self.ctx.log.warning(events.STEP_WAITING, step=self.step, reason=f"a concurrent index build on "
                                     f"{self.table} waits for these transactions to end (RAGFlow's reads and "
                                     "writes go on meanwhile)", attempt=looks,
                                     waited_s=round(time.monotonic() - started, 1), blocker=found, retry_in_s=None)
        except (psycopg.Error, OSError):
            pass  # naming the blockers is a courtesy: the build itself goes on
        finally:
            close_quietly(conn)
