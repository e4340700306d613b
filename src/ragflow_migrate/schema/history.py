"""The migration history: peewee-migrate's history model, in our own table.

Reading never creates anything (``status`` and ``plan`` change nothing); the first write
creates the table (peewee-migrate's ``Router.model``).
"""

from __future__ import annotations

from typing import Any

from .. import backends
from ..db import connect as db
from .chain import HISTORY_TABLE, MIGRATIONS_DIR


def applied(conn: Any, backend: Any = None) -> list[str] | None:
    """Names of the applied migrations in the order applied; None when there is no history."""
    backend = backend or backends.get("mysql")
    try:
        rows = db.query(conn, f"SELECT name FROM {backend.quote(HISTORY_TABLE)} ORDER BY id")
    except Exception as exc:
        if backends.is_missing_table(exc):
            return None
        raise
    return [r[0] for r in rows]


def record(conn: Any, database: str, names: list[str], backend: Any = None) -> None:
    """Record migrations as applied (skipping any already recorded), with peewee-migrate's
    history model on ``conn`` (created by the first record)."""
    from .pwm import Router

    backend = backend or backends.get("mysql")
    router = Router(backend.session_database(conn, database), migrate_dir=MIGRATIONS_DIR,
                    migrate_table=HISTORY_TABLE)
    if getattr(backend, "transactional_ddl", False):
        # Inside the migration's transaction (PostgreSQL) a failing read would abort it: create the
        # table first (CREATE TABLE IF NOT EXISTS), then read.
        model = router.model
        done = {row.name for row in model.select(model.name)}
    else:
        done = set(applied(conn, backend) or [])  # one read; the table is created by the first insert only
    todo = [n for n in names if n not in done]
    if todo:
        model = router.model
        model.insert_many([{"name": n} for n in todo]).execute()
