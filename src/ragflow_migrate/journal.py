"""Our own record of every step a run applied: started, finished or failed, rows, duration.

One table, ``ragflow_migrate_journal``, beside RAGFlow's tables (RAGFlow ignores tables it
does not declare). ``status`` reads it to tell "in progress" and "failed" from "pending".
Rows are written in autocommit, outside the steps' own transactions, so a failed step still
leaves its record.
"""

from __future__ import annotations

import json
from typing import Any

import pymysql

from . import __version__
from .db import connect as db
from .db import dialect

TABLE = "ragflow_migrate_journal"

DDL = f"""CREATE TABLE IF NOT EXISTS {dialect.quote(TABLE)} (
  `id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `run_id` VARCHAR(32) NOT NULL,
  `step` VARCHAR(128) NOT NULL,
  `kind` VARCHAR(16) NOT NULL,
  `release_tag` VARCHAR(32) NULL,
  `status` VARCHAR(16) NOT NULL,
  `started_at` DATETIME(3) NOT NULL,
  `finished_at` DATETIME(3) NULL,
  `duration_s` DOUBLE NULL,
  `row_count` BIGINT NULL,
  `changes` BIGINT NULL,
  `detail` MEDIUMTEXT NULL,
  `instance` VARCHAR(64) NOT NULL,
  `tool_version` VARCHAR(32) NOT NULL,
  KEY `ragflow_migrate_journal_step` (`step`, `id`),
  KEY `ragflow_migrate_journal_run` (`run_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""


class Journal:
    def __init__(self, conn: pymysql.connections.Connection, run_id: str, instance: str) -> None:
        self.conn, self.run_id, self.instance = conn, run_id, instance
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            db.execute(self.conn, DDL)
            self._ready = True

    def started(self, step: str, kind: str, release: str | None) -> int:
        self._ensure()
        with self.conn.cursor() as cur:
            cur.execute(
                f"INSERT INTO {dialect.quote(TABLE)} (run_id, step, kind, release_tag, status, started_at, "
                "instance, tool_version) VALUES (%s, %s, %s, %s, 'started', UTC_TIMESTAMP(3), %s, %s)",
                (self.run_id, step, kind, release, self.instance, __version__),
            )
            return int(cur.lastrowid)

    def finished(self, entry: int, status: str, duration_s: float, rows: int | None = None,
                 changes: int | None = None, detail: dict[str, Any] | None = None) -> None:
        db.execute(
            self.conn,
            f"UPDATE {dialect.quote(TABLE)} SET status=%s, finished_at=UTC_TIMESTAMP(3), duration_s=%s, "
            "row_count=%s, changes=%s, detail=%s WHERE id=%s",
            (status, round(duration_s, 6), rows, changes,
             json.dumps(detail, default=str, ensure_ascii=False) if detail else None, entry),
        )


def last_entries(conn: pymysql.connections.Connection, limit: int = 50) -> list[dict[str, Any]]:
    """The newest journal rows, newest first; [] when the table does not exist."""
    try:
        rows = db.query(
            conn,
            f"SELECT id, run_id, step, kind, release_tag, status, started_at, finished_at, duration_s, "
            f"row_count, changes, detail, instance FROM {dialect.quote(TABLE)} ORDER BY id DESC LIMIT %s",
            (limit,),
        )
    except pymysql.err.ProgrammingError as exc:
        if dialect.error_code(exc) == 1146:  # no such table
            return []
        raise
    keys = ("id", "run_id", "step", "kind", "release", "status", "started_at", "finished_at",
            "duration_s", "rows", "changes", "detail", "instance")
    return [dict(zip(keys, row)) for row in rows]
