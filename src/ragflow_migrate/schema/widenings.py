"""Columns widened on the operator's say-so (``--widen-columns``): recorded, so they are not drift.

Where a legacy value fits no lossless form of its target column (an API key of 2,000
characters for ``tenant_model_instance.api_key VARCHAR(512)``), the run widens exactly that
column, to the smallest type that holds the data, before the stage that writes it. Each
widening is recorded here (and in the journal, as a step). ``schema diff`` and the verification
after ``run`` report a live column that still has its recorded type as a *recorded deviation*,
not as drift; drift repair never narrows it back.

One table, ``ragflow_migrate_widening``, keyed by (table, column): the latest widening wins.

    >>> record(conn, "tenant_model_instance", "api_key", "varchar(512)", "varchar(2400)", run_id)
    >>> recorded(conn)[("tenant_model_instance", "api_key")].after
    'varchar(2400)'
"""

from __future__ import annotations

import dataclasses

import pymysql

from .. import backends
from ..db import connect as db
from ..db import dialect

TABLE = "ragflow_migrate_widening"

DDL = f"""CREATE TABLE IF NOT EXISTS {dialect.quote(TABLE)} (
  `table_name` VARCHAR(64) NOT NULL,
  `column_name` VARCHAR(64) NOT NULL,
  `before_type` VARCHAR(64) NOT NULL,
  `after_type` VARCHAR(64) NOT NULL,
  `reason` VARCHAR(512) NOT NULL,
  `run_id` VARCHAR(32) NOT NULL,
  `widened_at` DATETIME(3) NOT NULL,
  PRIMARY KEY (`table_name`, `column_name`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""


@dataclasses.dataclass(frozen=True)
class Widening:
    table: str
    column: str
    before: str  # column type before, lower case as information_schema.COLUMNS.COLUMN_TYPE: varchar(512)
    after: str  # column type after: varchar(2400), text, mediumtext
    reason: str
    run_id: str
    widened_at: str

    def describe(self) -> str:
        return f"{self.table}.{self.column} widened from {self.before} to {self.after} (--widen-columns): {self.reason}"


def recorded(conn: pymysql.connections.Connection) -> dict[tuple[str, str], Widening]:
    """Every recorded widening by (table, column); {} when none was ever made (no table)."""
    try:
        rows = db.query(conn, "SELECT table_name, column_name, before_type, after_type, reason, run_id, "
                              f"widened_at FROM {TABLE}")  # unquoted: the same SQL on every backend
    except Exception as exc:
        if backends.is_missing_table(exc):
            return {}
        raise
    return {(r[0], r[1]): Widening(r[0], r[1], r[2].lower(), r[3].lower(), r[4], r[5], str(r[6])) for r in rows}


def record(conn: pymysql.connections.Connection, table: str, column: str, before: str, after: str, reason: str,
           run_id: str) -> None:
    db.execute(conn, DDL)
    db.execute(conn, f"INSERT INTO {dialect.quote(TABLE)} (`table_name`, `column_name`, `before_type`, `after_type`, "
                     "`reason`, `run_id`, `widened_at`) VALUES (%s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(3)) "
                     "ON DUPLICATE KEY UPDATE `after_type` = VALUES(`after_type`), `reason` = VALUES(`reason`), "
                     "`run_id` = VALUES(`run_id`), `widened_at` = VALUES(`widened_at`)",
               (table, column, before.lower(), after.lower(), reason[:512], run_id))


def holds(widening: Widening, live_column_type: str) -> bool:
    """The live column still has the type the widening gave it (else the record is stale: a later
    step rebuilt the table, or someone changed it again, and the column is compared as usual)."""
    return _normal(live_column_type) == _normal(widening.after)


def _normal(column_type: str) -> str:
    # MySQL 8+ and MariaDB spell integer widths differently; string types are what is widened here
    return column_type.lower().replace(" ", "")
