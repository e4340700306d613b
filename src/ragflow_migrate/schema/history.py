"""The migration history: peewee-migrate's history model, in our own table.

Reading never creates anything (``status`` and ``plan`` change nothing); the first write
creates the table (peewee-migrate's ``Router.model``).
"""

from __future__ import annotations

import pymysql

from ..db import connect as db
from ..db import dialect
from ..db.peewee_db import SessionDatabase
from .chain import HISTORY_TABLE, MIGRATIONS_DIR


def applied(conn: pymysql.connections.Connection) -> list[str] | None:
    """Names of the applied migrations in the order applied; None when there is no history."""
    try:
        rows = db.query(conn, f"SELECT name FROM {dialect.quote(HISTORY_TABLE)} ORDER BY id")
    except pymysql.err.ProgrammingError as exc:
        if dialect.error_code(exc) == 1146:
            return None
        raise
    return [r[0] for r in rows]


def record(conn: pymysql.connections.Connection, database: str, names: list[str]) -> None:
    """Record migrations as applied (skipping any already recorded)."""
    from peewee_migrate import Router

    router = Router(SessionDatabase(conn, database), migrate_dir=MIGRATIONS_DIR, migrate_table=HISTORY_TABLE)
    done = set(applied(conn) or [])
    todo = [n for n in names if n not in done]
    if todo:
        model = router.model
        model.insert_many([{"name": n} for n in todo]).execute()
