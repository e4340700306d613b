"""``--widen-columns`` on PostgreSQL (MySQL's :mod:`ragflow_migrate.data.widen`, same rule and record).

Where a legacy value fits no lossless form of its column, and only on the operator's word, the
column gets the smallest type holding the data, right before the stage that writes it:
``varchar(n)`` for the longest value (PostgreSQL has no row-size limit to respect: long values
are TOASTed), ``text`` beyond varchar's 10,485,760 characters. A longer varchar, or text, is a
catalog change on PostgreSQL: no rewrite of the table, no rebuild of its indexes; the ALTER only
takes its ACCESS EXCLUSIVE lock for that moment, under ``--ddl-lock-wait`` and ``--ddl-deadline``
like every migration's statement.

The ALTER and its record in ``ragflow_migrate_widening`` (:mod:`ragflow_migrate.schema.widenings`,
the same table as on MySQL) are one transaction: a kill leaves the column widened and recorded, or
neither. The types are recorded in the PostgreSQL normal form (``character varying(600)``, as
:mod:`..introspect` reads them), so :func:`~ragflow_migrate.schema.widenings.holds` compares the
record with the live column and ``schema diff`` / ``status`` report a recorded deviation, not drift.
"""

from __future__ import annotations

from typing import Any

from ....schema import widenings
from ....schema.operations import Statement
from .. import executor
from ..ddl import quote
from ..introspect import live_snapshot

#: PostgreSQL's longest varchar, in characters; a longer value needs text.
VARCHAR_MAX = 10_485_760

DDL = f"""CREATE TABLE IF NOT EXISTS {widenings.TABLE} (
  table_name VARCHAR(64) NOT NULL,
  column_name VARCHAR(64) NOT NULL,
  before_type VARCHAR(64) NOT NULL,
  after_type VARCHAR(64) NOT NULL,
  reason VARCHAR(512) NOT NULL,
  run_id VARCHAR(32) NOT NULL,
  widened_at TIMESTAMP(3) NOT NULL,
  PRIMARY KEY (table_name, column_name)
)"""

_RECORD = (f"INSERT INTO {widenings.TABLE} (table_name, column_name, before_type, after_type, reason, run_id, "
           "widened_at) VALUES (%s, %s, %s, %s, %s, %s, now() AT TIME ZONE 'UTC') ON CONFLICT (table_name, column_name) "
           "DO UPDATE SET after_type = EXCLUDED.after_type, reason = EXCLUDED.reason, run_id = EXCLUDED.run_id, "
           "widened_at = EXCLUDED.widened_at")


def widened_type(needed_chars: int) -> str:
    """The smallest type holding values of ``needed_chars`` characters."""
    return f"varchar({needed_chars})" if needed_chars <= VARCHAR_MAX else "text"


def _live_type(conn: Any, table: str, column: str) -> str | None:
    col = live_snapshot(conn, tables=[table]).column(table, column)
    return col.type if col is not None else None


def widen(ctx: Any, step: str, meta: Any, table: str, column: str, needed_chars: int,
          reason: str) -> dict[str, Any] | None:
    """Widen ``table.column`` to hold ``needed_chars`` characters and record it; returns what was
    done (None: it holds them already, or is not a length-limited character column)."""
    limit = meta.max_length(table, column)
    before = _live_type(ctx.conn, table, column)
    if limit is None or before is None or needed_chars <= limit:
        return None
    sql = f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} TYPE {widened_type(needed_chars)}"
    done: dict[str, str] = {}

    def record(conn: Any) -> None:  # in the ALTER's transaction
        done["after"] = _live_type(conn, table, column) or widened_type(needed_chars)
        with conn.cursor() as cur:
            cur.execute(DDL)
            cur.execute(_RECORD, (table, column, before, done["after"], reason[:512], ctx.run_id))

    executor.apply_migration(ctx.conn, [Statement(sql, table, note=f"--widen-columns: {reason}")], record=record,
                             log=ctx.log, step=step, lock_wait=ctx.settings.ddl_lock_wait,
                             deadline=ctx.settings.ddl_deadline, checkpoint=ctx.checkpoint)
    meta.forget()
    after = done["after"]
    ctx.notice(step, f"{table}.{column} widened from {before} to {after} (--widen-columns): {reason}", count=1,
               sample=[{"table": table, "column": column, "before": before, "after": after}])
    return {"table": table, "column": column, "before": before, "after": after}
