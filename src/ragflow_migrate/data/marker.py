"""RAGFlow's own progress marker, read and written exactly as its migration script does (spec §1.3).

The row ``system_settings.name = 'mysql_migration.database.version'`` holds the gate of the
last completed step (``v0.26.0``, ``v0.26.1``, ``v0.27.0``). RAGFlow's entrypoint skips a step
when the marker is at or above its gate, so writing it after our stages is what stops RAGFlow's
own script from running again over our data (and duplicating it, D8).

* Read: a missing table or row, or an unparsable value, is "no marker"; the value is trimmed,
  one leading ``v`` dropped, and compared as a version (``0.27.0rc1 < 0.27.0``).
* Write: an upsert on ``name`` (a conflict updates source, data_type, value and ``update_*``,
  and keeps ``create_*``), only after every stage of the gate succeeded, and never backwards.
  A missing ``system_settings`` table fails loudly (D24): without the marker RAGFlow's script
  would run again.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from .. import backends
from ..errors import StepFailedError
from ..releases import Release, parse_release, try_parse_release
from . import sqlkit

NAME = "mysql_migration.database.version"
TABLE = "system_settings"


def _missing(exc: BaseException) -> bool:
    return sqlkit.is_missing_table(exc) or backends.is_missing_table(exc)


def read(conn: Any) -> str | None:
    """The raw marker value, or None (no table, no row)."""
    try:
        rows = sqlkit.query(conn, "SELECT value FROM system_settings WHERE name = %s", (NAME,))
    except Exception as exc:
        if _missing(exc):
            return None
        raise
    return str(rows[0][0]) if rows and rows[0][0] is not None else None


def version(conn: Any) -> Release | None:
    return try_parse_release(read(conn))


def reached(marker: Release | None, gate: str) -> bool:
    """RAGFlow's rule: skip the step when the marker is at or above its gate."""
    return marker is not None and marker >= parse_release(gate)


def write(ctx: Any, gate: str, step: str) -> bool:
    """Set the marker to ``gate`` unless it is already there or beyond; True when written."""
    conn = ctx.conn
    now = int(time.time())
    now_date = datetime.fromtimestamp(now, tz=UTC).replace(tzinfo=None)
    with ctx.backend.transaction(conn):
        try:
            rows = sqlkit.query(conn, "SELECT value FROM system_settings WHERE name = %s FOR UPDATE", (NAME,))
        except Exception as exc:
            if _missing(exc):
                raise StepFailedError(
                    f"{step}: the table system_settings does not exist, so RAGFlow's migration marker "
                    f"({NAME} = {gate}) cannot be written; the data stages themselves are complete",
                    hint="apply the schema first (ragflow-migrate run); without the marker RAGFlow's own "
                    "script would run the stages again",
                ) from None
            raise
        current = try_parse_release(str(rows[0][0])) if rows and rows[0][0] is not None else None
        if reached(current, gate):
            return False
        row = {"name": NAME, "create_time": now * 1000, "create_date": now_date, "update_time": now * 1000,
               "update_date": now_date, "source": "migration", "data_type": "string", "value": gate}
        ctx.backend.upsert(conn, "system_settings", row, key="name",
                           update=["source", "data_type", "value", "update_time", "update_date"])
    return True
