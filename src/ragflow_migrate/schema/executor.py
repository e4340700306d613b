"""Running DDL without freezing RAGFlow.

* Algorithms: each ALTER TABLE is tried with the best algorithm the server may support for that
  kind of change (INSTANT, then INPLACE, then COPY); a server that cannot use one answers at
  once with "not supported" and the next is tried. The log says which one ran. COPY blocks
  writes to the table while it runs, so it is logged as a warning. On a Galera node (TOI) a
  refused try would be replicated to every node, so each ALTER is sent once without a clause
  (``DEFAULT``: the server's best), after :func:`.toi.guard` (schema/toi.py).
* Metadata locks: an ALTER waits for every open transaction on its table, and while it waits,
  every new query on that table queues behind it. The session's ``lock_wait_timeout`` is short
  (``--ddl-lock-wait``), so the ALTER gives up quickly, the queue drains, and it tries again
  after a back-off, until ``--ddl-deadline``. Each wait is logged with the blocking sessions
  and the age of their transactions.
"""

from __future__ import annotations

import random
import time

import pymysql

from .. import events, interrupt
from ..db import connect as db
from ..db import dialect
from ..errors import StepFailedError
from ..steps import RunContext
from . import toi
from .operations import Statement


def execute_statement(ctx: RunContext, step: str, statement: Statement) -> int:
    """Run one statement of a migration; returns rows affected (DML) or 0."""
    if statement.run is not None:
        started = time.monotonic()
        rows = statement.run(ctx)
        ctx.log.info(events.STEP_STATEMENT, step=step, sql=statement.sql, algorithm=None,
                     duration_s=round(time.monotonic() - started, 3), rows=rows)
        return rows
    algorithms: tuple[str | None, ...] = (None,)
    if toi.on_toi(ctx.server):
        # Galera: one send, the server's own choice (each refused try would be replicated: schema/toi.py).
        toi.guard(ctx, step, statement.sql)
        if statement.algorithm_for:
            algorithms = ("DEFAULT",)
    elif statement.algorithm_for:
        algorithms = ctx.server.algorithms(statement.algorithm_for)
    last_error: Exception | None = None
    for algorithm in algorithms:
        sql = statement.sql if algorithm in (None, "DEFAULT") else f"{statement.sql}, ALGORITHM={algorithm}"
        try:
            started = time.monotonic()
            _run_with_mdl_retries(ctx, step, statement, sql)
        except pymysql.err.MySQLError as exc:
            if dialect.error_code(exc) in dialect.ALGORITHM_NOT_SUPPORTED and algorithm != algorithms[-1]:
                last_error = exc
                continue
            raise
        duration = round(time.monotonic() - started, 3)
        level = ctx.log.warning if algorithm == "COPY" else ctx.log.info
        level(events.STEP_STATEMENT, step=step, sql=statement.sql, algorithm=algorithm, duration_s=duration,
              note=statement.note or ("COPY rebuilds the table and blocks writes while it runs"
                                      if algorithm == "COPY" else None))
        return 0
    raise last_error or StepFailedError(f"{step}: no algorithm could run {statement.sql}")


def _run_with_mdl_retries(ctx: RunContext, step: str, statement: Statement, sql: str) -> None:
    settings = ctx.settings
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            db.execute(ctx.conn, sql)
            return
        except pymysql.err.OperationalError as exc:
            if dialect.error_code(exc) != dialect.LOCK_WAIT_TIMEOUT:
                raise
            waited = time.monotonic() - started
            blockers = dialect.metadata_lock_blockers(
                lambda q, a: db.query(ctx.conn, q, a), settings.database, statement.table or "")
            if waited >= settings.ddl_deadline:
                raise StepFailedError(
                    f"{step}: could not get the metadata lock on {statement.table} within "
                    f"{settings.ddl_deadline:g}s; blocked by {blockers or 'an unknown session'}",
                    hint="a long-running transaction holds the table; end it (or raise --ddl-deadline) "
                    "and run again",
                    blockers=blockers,
                ) from None
            pause = min(30.0, 0.5 * 2 ** min(attempt, 6)) * (0.5 + random.random() / 2)
            ctx.log.warning(events.STEP_WAITING, step=step, reason=f"metadata lock on {statement.table} "
                            "held by another session", attempt=attempt, waited_s=round(waited, 1),
                            blocker=blockers, retry_in_s=round(pause, 1))
            interrupt.sleep(pause)
            ctx.checkpoint()
