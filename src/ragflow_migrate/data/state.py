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


#: The same table on PostgreSQL (plain identifiers: every statement below runs on both servers).
PG_DDL = """CREATE TABLE IF NOT EXISTS ragflow_migrate_data_stage (
  stage VARCHAR(64) NOT NULL PRIMARY KEY,
  gate VARCHAR(16) NOT NULL,
  status VARCHAR(16) NOT NULL,
  run_id VARCHAR(32) NOT NULL,
  started_at TIMESTAMP(3) NOT NULL,
  finished_at TIMESTAMP(3) NULL,
  duration_s DOUBLE PRECISION NULL,
  row_count BIGINT NULL,
  changes BIGINT NULL,
  detail TEXT NULL,
  tool_version VARCHAR(32) NOT NULL
)"""


def is_postgres(conn: Any) -> bool:
    """``conn`` is a psycopg (PostgreSQL) session rather than a pymysql one."""
    return type(conn).__module__.startswith("psycopg")


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


def mark_started(conn: Any, stage: str, gate: str, run_id: str) -> None:
    if not is_postgres(conn):
        sqlkit.execute(conn, DDL)
        sqlkit.execute(
            conn,
            "INSERT INTO `ragflow_migrate_data_stage` (`stage`, `gate`, `status`, `run_id`, `started_at`, "
            "`tool_version`) VALUES (%s, %s, 'started', %s, UTC_TIMESTAMP(3), %s) ON DUPLICATE KEY UPDATE "
            "`gate` = %s, `status` = 'started', `run_id` = %s, `started_at` = UTC_TIMESTAMP(3), `finished_at` = NULL, "
            "`duration_s` = NULL, `row_count` = NULL, `changes` = NULL, `detail` = NULL, `tool_version` = %s",
            (stage, gate, run_id, __version__, gate, run_id, __version__),
        )
        return
    _execute(conn, PG_DDL)
    _execute(
        conn,
        "INSERT INTO ragflow_migrate_data_stage (stage, gate, status, run_id, started_at, tool_version) "
        "VALUES (%s, %s, 'started', %s, %s, %s) ON CONFLICT (stage) DO UPDATE SET gate = EXCLUDED.gate, "
        "status = 'started', run_id = EXCLUDED.run_id, started_at = EXCLUDED.started_at, finished_at = NULL, "
        "duration_s = NULL, row_count = NULL, changes = NULL, detail = NULL, tool_version = EXCLUDED.tool_version",
        (stage, gate, run_id, _now(), __version__),
    )


def mark_finished(conn: Any, stage: str, duration_s: float, rows: int,
                  changes: int, detail: dict[str, Any] | None) -> None:
    _execute(
        conn,
        "UPDATE ragflow_migrate_data_stage SET status = 'finished', finished_at = %s, "
        "duration_s = %s, row_count = %s, changes = %s, detail = %s WHERE stage = %s",
        (_now(), round(duration_s, 6), rows, changes,
         json.dumps(detail, default=str, ensure_ascii=False) if detail else None, stage),
    )
