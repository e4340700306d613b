"""Running a migration on PostgreSQL: one transaction, bounded lock waits.

* **One transaction per migration.** PostgreSQL DDL is transactional, so a migration's statements
  and its history row (``record``) commit together: a kill at any point leaves the migration
  applied in full or not at all. (MySQL commits every statement on its own and relies on each
  operation re-reading the live schema to resume.)
* **Lock waits.** Every ``ALTER TABLE`` takes ACCESS EXCLUSIVE on its table until COMMIT, and
  while it waits for one, every later reader of the table queues behind it. So each attempt runs
  under a short ``lock_timeout`` (``set_config(…, true)``: this transaction only; a ``SET`` with a
  bound parameter is refused by the server). On 55P03 the whole transaction is rolled back, the
  sessions holding locks on the table are logged, and it is tried again after a back-off with
  jitter, until ``deadline``; then StepFailedError names them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg.errors

from ... import events, interrupt
from ...errors import StepFailedError
from ...schema.operations import Statement

#: Who holds a lock on a relation (granted, another session): the statement that timed out is no
#: longer waiting once its transaction is rolled back, so ``pg_blocking_pids()`` of this session
#: would be empty by the time anyone could ask; the holders of the table's locks are the blockers.
_HOLDERS = """
SELECT DISTINCT a.pid, a.usename, a.application_name, a.state, left(a.query, 200)
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.relation IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
                     AND (%(table)s::text IS NULL OR c.relname = %(table)s::text))
ORDER BY a.pid
"""

_BLOCKER_FIELDS = ("pid", "user", "application_name", "state", "query")


class LockWaitTimeout(Exception):
    """A statement gave up waiting for a lock (55P03); ``table`` is the one it was after."""

    def __init__(self, table: str | None, cause: BaseException) -> None:
        super().__init__(f"lock timeout on {table or 'a table'}: {cause}")
        self.table = table


def run_statement(conn: Any, statement: Statement, *, log: Any = None, step: str = "") -> int:
    """Run one statement in the current transaction; returns how many statements ran (a ``run``
    callable runs its own, gets the connection and says how many)."""
    started = time.monotonic()
    try:
        if statement.run is not None:
            return statement.run(conn)
        with conn.cursor() as cur:
            cur.execute(statement.sql)
            rows = cur.rowcount
    except psycopg.errors.LockNotAvailable as exc:
        raise LockWaitTimeout(statement.table, exc) from exc
    if log is not None:
        log.info(events.STEP_STATEMENT, step=step, sql=statement.sql, algorithm=None,
                 duration_s=round(time.monotonic() - started, 3), rows=max(rows, 0), note=statement.note)
    return 1


def blockers(conn: Any, table: str | None) -> list[dict[str, Any]]:
    """The other sessions holding a lock on ``table`` (any table of the schema when None)."""
    with conn.cursor() as cur:
        cur.execute(_HOLDERS, {"table": table})
        return [dict(zip(_BLOCKER_FIELDS, row)) for row in cur.fetchall()]


def _attempt(conn: Any, statements: list[Statement], record: Callable[[Any], Any] | None, lock_wait: float,
             log: Any, step: str) -> int:
    with conn.transaction():
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{max(1, round(lock_wait * 1000))}ms",))
        count = sum(run_statement(conn, s, log=log, step=step) for s in statements)
        if record is not None:
            record(conn)
    return count


def apply_migration(conn: Any, statements: list[Statement], *, record: Callable[[Any], Any] | None = None,
                    log: Any = None, step: str = "", lock_wait: float = 5.0, deadline: float = 60.0,
                    checkpoint: Callable[[], None] | None = None) -> int:
    """Run ``statements`` and ``record(conn)`` (the history row) as one transaction; returns the
    number of statements run. ``conn`` must be in autocommit mode (every session of the tool is):
    inside an open transaction psycopg would make this a savepoint, and nothing would commit here.
    Errors other than lock timeouts roll back and propagate."""
    if not conn.autocommit:
        raise ValueError("apply_migration needs an autocommit connection")
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        if checkpoint is not None:
            checkpoint()
        try:
            return _attempt(conn, statements, record, lock_wait, log, step)
        except (LockWaitTimeout, psycopg.errors.LockNotAvailable) as exc:
            table = getattr(exc, "table", None)
            found = blockers(conn, table)
        waited = time.monotonic() - started
        if waited >= deadline:
            raise StepFailedError(
                f"{step or 'migration'}: could not lock {table or 'its tables'} within {deadline:g}s "
                f"(rolled back, nothing applied); blocked by {_describe(found)}",
                hint="a long-running transaction holds the table; end it (or raise --ddl-deadline) and run again",
                blockers=found)
        pause = min(30.0, 0.5 * 2 ** min(attempt, 6)) * (0.5 + random.random() / 2)
        pause = min(pause, max(0.05, deadline - waited))
        if log is not None:
            log.warning(events.STEP_WAITING, step=step, reason=f"lock on {table or 'a table'} held by another "
                        "session; the migration was rolled back and is tried again", attempt=attempt,
                        waited_s=round(waited, 1), blocker=found, retry_in_s=round(pause, 1))
        interrupt.sleep(pause)


def _describe(found: list[dict[str, Any]]) -> str:
    if not found:
        return "a session that has ended since"
    return "; ".join(f"pid {b['pid']} ({b['user']}, {b['application_name'] or 'no application_name'}, "
                     f"{b['state']}: {b['query']!r})" for b in found)
