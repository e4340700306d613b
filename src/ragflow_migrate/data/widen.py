"""``--widen-columns``: widen a column right before the stage that writes values it cannot hold.

Only where no lossless form of a value exists (an API key longer than
``tenant_model_instance.api_key``), and only on the operator's word. The column gets the
smallest type that holds the data (:func:`limits.widened_type`), keeping its character set,
collation and nullability; the change is an ordinary DDL statement (INSTANT/INPLACE/COPY,
metadata-lock waits, like every migration's), recorded in ``ragflow_migrate_widening``
(:mod:`..schema.widenings`) and in the stage's journal entry, and logged as a ``step.notice``.
"""

from __future__ import annotations

from typing import Any

from ..db import dialect
from ..schema import widenings
from . import limits
from .sqlkit import Meta


def widen(ctx: Any, step: str, meta: Meta, table: str, column: str, needed_chars: int, needed_bytes: int,
          reason: str) -> dict[str, Any] | None:
    """Widen ``table.column`` to hold values of ``needed_chars`` characters and ``needed_bytes`` bytes;
    returns what was done (None: it already holds them)."""
    from ..schema.executor import execute_statement
    from ..schema.operations import Statement

    info = meta.column(table, column)
    if info is None:
        return None
    current = limits.of_type(table, column, info.column_type)
    if current.fits(needed_chars, needed_bytes):
        return None
    new_type = limits.widened_type(needed_chars, needed_bytes, limits.row_bytes(ctx.conn, table, column))
    collation = f" CHARACTER SET utf8mb4 COLLATE {info.collation}" if info.collation else ""
    sql = (f"ALTER TABLE {dialect.quote(table)} MODIFY {dialect.quote(column)} {new_type.upper()}{collation} "
           + ("NULL" if info.nullable else "NOT NULL"))
    execute_statement(ctx, step, Statement(sql=sql, table=table, algorithm_for="modify_column",
                                           note=f"--widen-columns: {reason}"))
    meta.forget()
    after = meta.column(table, column)
    after_type = after.column_type if after else new_type
    widenings.record(ctx.conn, table, column, info.column_type, after_type, reason, ctx.run_id)
    ctx.notice(step, f"{table}.{column} widened from {info.column_type} to {after_type} (--widen-columns): "
               f"{reason}", count=1, sample=[{"table": table, "column": column, "before": info.column_type,
                                              "after": after_type}])
    return {"table": table, "column": column, "before": info.column_type, "after": after_type}

