"""Small SQL helpers the data stages share: rendering, metadata, batches, transactions.

* :func:`render` fills a SQL template: every ``{name}`` is an identifier quoted with
  :func:`dialect.quote`, unless the value is a :class:`Raw` fragment our own code built (a
  collation name checked against a pattern, an expression). Data never goes through it: data
  is always a bound parameter.
* :class:`Meta` reads ``information_schema`` once per stage (tables, column types, collations).
* :func:`key_ranges` cuts a table into batches along an indexed column; each batch is one
  transaction (:func:`transaction`), with a checkpoint between batches.
* :func:`insert_rows` bulk-inserts a page of computed rows (multi-row INSERTs, values bound).

Comparisons between two tables whose collations may differ (RAGFlow's own script builds
tables in the server's default collation, D1) are written with an explicit ``COLLATE`` on one
side, taken from :meth:`Meta.collation`, so they never fail with error 1267.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pymysql

from .. import events
from ..db import dialect

_COLLATION_RE = re.compile(r"^[A-Za-z0-9_]+$")
BIN = "utf8mb4_bin"
NO_SUCH_TABLE = 1146


class Raw(str):
    """A SQL fragment built by this package (never from data): inserted into a template as is."""


def collate(name: str) -> Raw:
    if not _COLLATION_RE.match(name or ""):
        raise ValueError(f"not a collation name: {name!r}")
    return Raw(f"COLLATE {name}")


def render(template: str, **parts: Any) -> str:
    values = {k: (v if isinstance(v, Raw) else dialect.quote(str(v))) for k, v in parts.items()}
    return template.format(**values)


@dataclasses.dataclass(frozen=True)
class ColumnInfo:
    name: str
    data_type: str  # int, bigint, varchar, text...
    column_type: str  # int(11), varchar(32)...
    max_length: int | None
    nullable: bool
    collation: str | None


class Meta:
    """information_schema of the current database, cached per table for one stage."""

    def __init__(self, conn: pymysql.connections.Connection) -> None:
        self.conn = conn
        self._tables: dict[str, str | None] | None = None
        self._columns: dict[str, dict[str, ColumnInfo]] = {}

    def tables(self) -> dict[str, str | None]:
        """Base tables of the database → table collation."""
        if self._tables is None:
            rows = query(self.conn, "SELECT table_name, table_collation FROM information_schema.tables "
                         "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")
            self._tables = {str(name): coll for name, coll in rows}
        return self._tables

    def has_table(self, table: str) -> bool:
        return table in self.tables()

    def table_collation(self, table: str) -> str | None:
        return self.tables().get(table)

    def columns(self, table: str) -> dict[str, ColumnInfo]:
        if table not in self._columns:
            rows = query(self.conn, "SELECT column_name, data_type, column_type, character_maximum_length, "
                         "is_nullable, collation_name FROM information_schema.columns "
                         "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position", (table,))
            self._columns[table] = {
                str(r[0]): ColumnInfo(str(r[0]), str(r[1]).lower(), str(r[2]).lower(),
                                      int(r[3]) if r[3] is not None else None, r[4] == "YES", r[5])
                for r in rows
            }
        return self._columns[table]

    def column(self, table: str, column: str) -> ColumnInfo | None:
        return self.columns(table).get(column)

    def collation(self, table: str, column: str) -> Raw:
        """``COLLATE <the column's collation>``, to compare another table's value in its terms."""
        info = self.column(table, column)
        if info is None or not info.collation:
            raise KeyError(f"{table}.{column} is not a string column")
        return collate(info.collation)

    def max_length(self, table: str, column: str) -> int | None:
        info = self.column(table, column)
        return info.max_length if info else None

    def is_int(self, table: str, column: str) -> bool:
        info = self.column(table, column)
        return info is not None and info.data_type in ("int", "bigint", "integer", "smallint", "tinyint",
                                                       "mediumint")

    def forget(self) -> None:
        self._tables = None
        self._columns.clear()


# --- running statements --------------------------------------------------------------------------


def query(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def scalar(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> Any:
    rows = query(conn, sql, args)
    return rows[0][0] if rows else None


def execute(conn: pymysql.connections.Connection, sql: str, args: Any = None) -> int:
    with conn.cursor() as cur:
        return int(cur.execute(sql, args))


def logged(ctx: Any, step: str, sql: str, args: Any = None, *, level: str = "debug") -> int:
    """Execute and log one statement (``step.statement``); returns the affected rows."""
    started = time.monotonic()
    rows = execute(ctx.conn, sql, args)
    log = getattr(ctx.log, level)
    log(events.STEP_STATEMENT, step=step, sql=" ".join(sql.split())[:2000], algorithm=None,
        duration_s=round(time.monotonic() - started, 3), rows=rows)
    return rows


@contextlib.contextmanager
def transaction(conn: pymysql.connections.Connection) -> Iterator[None]:
    """One batch = one transaction: committed on success, rolled back on any error."""
    conn.begin()
    try:
        yield
    except BaseException:
        with contextlib.suppress(pymysql.err.MySQLError, OSError):
            conn.rollback()
        raise
    conn.commit()


#: Characters of bound values in one multi-row INSERT (at most 4 bytes each in utf8mb4: well under
#: both servers' default max_allowed_packet, 16 MB on MariaDB 10.11, 64 MB on MySQL 8.0+).
INSERT_CHARS = 1_000_000


def insert_rows(conn: pymysql.connections.Connection, table: str, columns: Sequence[str],
                rows: Sequence[Sequence[Any]]) -> int:
    """Insert ``rows`` with multi-row INSERTs of up to :data:`INSERT_CHARS` characters of values, each
    one statement whose values are all bound (pymysql's ``executemany`` formats and encodes every row
    on its own: at 270k JSON configs that cost 6 s more); returns the rows inserted."""
    if not rows:
        return 0
    head = render("INSERT INTO {t} (", t=table) + ", ".join(dialect.quote(c) for c in columns) + ") VALUES "
    marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
    done, args, count, size = 0, [], 0, 0
    for row in rows:
        if len(row) != len(columns):
            raise ValueError(f"a row of {len(row)} values for {len(columns)} columns of {table}")
        if count and size > INSERT_CHARS:
            done += execute(conn, head + ",".join([marks] * count), args)
            args, count, size = [], 0, 0
        args.extend(row)
        count += 1
        size += sum(len(v) if isinstance(v, (str, bytes)) else 8 for v in row)
    return done + execute(conn, head + ",".join([marks] * count), args)


def temp_table(conn: pymysql.connections.Connection, name: str, body: str) -> None:
    """(Re)create a session-scoped table: it vanishes with the connection, even after SIGKILL."""
    execute(conn, render("DROP TEMPORARY TABLE IF EXISTS {t}", t=name))
    execute(conn, render("CREATE TEMPORARY TABLE {t} (", t=name) + body
            + ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=" + BIN)


def clear_temp(conn: pymysql.connections.Connection, name: str) -> None:
    """Empty a session table between pages. TRUNCATE, not DELETE: a DELETE writes undo for every row
    (at 1M documents, emptying the page table of JSON configs took 12 s of DELETEs). Never call it
    inside :func:`transaction` (TRUNCATE may commit); the connection is in autocommit between batches."""
    execute(conn, render("TRUNCATE TABLE {t}", t=name))


def drop_temp(conn: pymysql.connections.Connection, *names: str) -> None:
    for name in names:
        with contextlib.suppress(pymysql.err.MySQLError):
            execute(conn, render("DROP TEMPORARY TABLE IF EXISTS {t}", t=name))


# --- batches ---------------------------------------------------------------------------------------


def key_ranges(conn: pymysql.connections.Connection, table: str, column: str, batch: int,
               where: str = "") -> Iterator[tuple[Any, Any]]:
    """Yield ``(after, upto)`` bounds covering ``table`` in steps of about ``batch`` rows along an
    indexed ``column``: a batch is ``column > after AND column <= upto`` (``None`` = unbounded).
    Equal values never straddle two batches. ``where`` is an extra trusted condition."""
    cond = f" AND ({where})" if where else ""
    after: Any = None
    while True:
        if after is None:
            sql = render("SELECT {c} FROM {t} WHERE {c} IS NOT NULL", t=table, c=column) + cond
            args: tuple[Any, ...] = ()
        else:
            sql = render("SELECT {c} FROM {t} WHERE {c} > %s", t=table, c=column) + cond
            args = (after,)
        sql += render(" ORDER BY {c} LIMIT 1 OFFSET %s", c=column)
        row = query(conn, sql, (*args, max(0, batch - 1)))
        upto = row[0][0] if row else None
        yield after, upto
        if upto is None:
            return
        after = upto


def range_condition(column_sql: str, after: Any, upto: Any) -> tuple[str, tuple[Any, ...]]:
    """SQL condition and parameters of one :func:`key_ranges` batch."""
    parts, args = [], []
    if after is not None:
        parts.append(f"{column_sql} > %s")
        args.append(after)
    if upto is not None:
        parts.append(f"{column_sql} <= %s")
        args.append(upto)
    return (" AND ".join(parts) or "1=1"), tuple(args)


def is_missing_table(exc: BaseException) -> bool:
    return dialect.error_code(exc) == NO_SUCH_TABLE
