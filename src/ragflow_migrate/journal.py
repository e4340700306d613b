"""Our own record of every step a run applied: started, finished or failed, rows, duration.

One table, ``ragflow_migrate_journal``, beside RAGFlow's tables (RAGFlow ignores tables it
does not declare). ``status`` reads it to tell "in progress" and "failed" from "pending".
Rows are written in autocommit, outside the steps' own transactions, so a failed step still
leaves its record.
"""

from __future__ import annotations

import json
from typing import Any

from . import __version__, backends
from .db import connect as db

TABLE = "ragflow_migrate_journal"

class Journal:
    def __init__(self, conn: Any, run_id: str, instance: str, backend: Any = None) -> None:
        self.conn, self.run_id, self.instance = conn, run_id, instance
        self.backend = backend or backends.get("mysql")
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            db.execute(self.conn, self.backend.journal_ddl(TABLE))
            self._ready = True

    def started(self, step: str, kind: str, release: str | None) -> int:
        self._ensure()
        return self.backend.insert_returning_id(
            self.conn,
            f"INSERT INTO {self.backend.quote(TABLE)} (run_id, step, kind, release_tag, status, started_at, instance, "
            "tool_version) "
            f"VALUES (%s, %s, %s, %s, 'started', {self.backend.now_sql()}, %s, %s)",
            (self.run_id, step, kind, release, self.instance, __version__),
        )

    def finished(self, entry: int, status: str, duration_s: float, rows: int | None = None,
                 changes: int | None = None, detail: dict[str, Any] | None = None) -> None:
        db.execute(
            self.conn,
            f"UPDATE {self.backend.quote(TABLE)} SET status=%s, finished_at={self.backend.now_sql()}, duration_s=%s, "
            "row_count=%s, changes=%s, detail=%s WHERE id=%s",
            (status, round(duration_s, 6), rows, changes,
             json.dumps(detail, default=str, ensure_ascii=False) if detail else None, entry),
        )


def last_entries(conn: Any, limit: int = 50) -> list[dict[str, Any]]:
    """The newest journal rows, newest first; [] when the table does not exist."""
    try:
        rows = db.query(
            conn,
            f"SELECT id, run_id, step, kind, release_tag, status, started_at, finished_at, duration_s, "
            f"row_count, changes, detail, instance FROM {TABLE} ORDER BY id DESC LIMIT %s",
            (limit,),
        )
    except Exception as exc:
        if backends.is_missing_table(exc):
            return []
        raise
    keys = ("id", "run_id", "step", "kind", "release", "status", "started_at", "finished_at",
            "duration_s", "rows", "changes", "detail", "instance")
    return [dict(zip(keys, row)) for row in rows]
