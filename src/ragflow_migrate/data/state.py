"""Our own record of each data stage: started, finished, rows, duration (one row per stage).

RAGFlow's marker only says "a whole step ran"; this table says which stage finished, so that
"nothing is pending" is one indexed read (the no-op path stays far below a second on any data
size) and an interrupted gate resumes at the stage that was cut. It complements the runner's
journal (every run, every step) with the current state of each stage.

The table is created on the first write (an execute run), never by a dry run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .. import __version__, backends
from . import sqlkit

TABLE = "ragflow_migrate_data_stage"
STARTED, FINISHED = "started", "finished"

#: The table on MySQL (PostgreSQL's: ``backends.postgres.STAGE_RECORD_DDL``); every statement
#: below but the upsert runs on both servers.
DDL = """CREATE TABLE IF NOT EXISTS `ragflow_migrate_data_stage` (
  `stage` VARCHAR(64) NOT NULL PRIMARY KEY,
  `gate` VARCHAR(16) NOT NULL,
  `status` VARCHAR(16) NOT NULL,
  `run_id` VARCHAR(32) NOT NULL,
  `started_at` DATETIME(3) NOT NULL,
  `finished_at` DATETIME(3) NULL,
  `duration_s` DOUBLE NULL,
  `row_count` BIGINT NULL,
  `changes` BIGINT NULL,
  `detail` TEXT NULL,
  `tool_version` VARCHAR(32) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"""


def _query(conn: Any, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _execute(conn: Any, sql: str, args: Any = None) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return int(cur.rowcount or 0)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def read(conn: Any) -> dict[str, dict[str, Any]]:
    """stage → {status, gate, finished_at, rows, changes}; {} when no stage ever ran here."""
    try:
        rows = _query(conn, "SELECT stage, status, gate, finished_at, row_count, changes "
                      "FROM ragflow_migrate_data_stage")
    except Exception as exc:
        if sqlkit.is_missing_table(exc) or backends.is_missing_table(exc):
            return {}
        raise
    return {str(r[0]): {"status": r[1], "gate": r[2], "finished_at": r[3], "rows": r[4], "changes": r[5]}
            for r in rows}


def finished(records: dict[str, dict[str, Any]], stage: str) -> bool:
    return records.get(stage, {}).get("status") == FINISHED


def mark_started(ctx: Any, stage: str, gate: str, run_id: str) -> None:
    """The stage's record says "started" (the table is created by the first one)."""
    conn, backend = ctx.conn, ctx.backend
    _execute(conn, backend.stage_record_ddl())
    row = {"stage": stage, "gate": gate, "status": STARTED, "run_id": run_id, "started_at": _now(),
           "finished_at": None, "duration_s": None, "row_count": None, "changes": None, "detail": None,
           "tool_version": __version__}
    backend.upsert(conn, TABLE, row, key="stage", update=[c for c in row if c != "stage"])


def mark_finished(conn: Any, stage: str, duration_s: float, rows: int,
                  changes: int, detail: dict[str, Any] | None) -> None:
    _execute(
        conn,
        "UPDATE ragflow_migrate_data_stage SET status = 'finished', finished_at = %s, "
        "duration_s = %s, row_count = %s, changes = %s, detail = %s WHERE stage = %s",
        (_now(), round(duration_s, 6), rows, changes,
         json.dumps(detail, default=str, ensure_ascii=False) if detail else None, stage),
    )
