"""Read the live schema from information_schema into a :class:`Snapshot` (metadata only: no
data is scanned, so this costs the same on an empty database and on a huge one)."""

from __future__ import annotations

import pymysql

from ..db import connect as db
from .snapshot import Snapshot, Table, fill_from_rows


def live_snapshot(conn: pymysql.connections.Connection, database: str, *,
                  tables: list[str] | None = None, mariadb: bool | None = None) -> Snapshot:
    """Snapshot of ``database`` (or of just ``tables`` in it)."""
    if mariadb is None:
        mariadb = "mariadb" in str(db.query_one(conn, "SELECT VERSION()")[0]).lower()
    where, args = "TABLE_SCHEMA = %s", [database]
    if tables is not None:
        if not tables:
            return Snapshot()
        where += " AND TABLE_NAME IN (" + ", ".join(["%s"] * len(tables)) + ")"
        args += tables
    collation_row = db.query_one(
        conn, "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,))
    snap = Snapshot(collation=collation_row[0] if collation_row else None)
    for name, collation in db.query(
        conn, f"SELECT TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES WHERE {where} "
        "AND TABLE_TYPE = 'BASE TABLE'", args):
        snap.tables[name] = Table(name, collation=collation)
    columns = [
        {"table": r[0], "column": r[1], "ordinal": r[2], "column_type": r[3], "is_nullable": r[4],
         "column_default": r[5], "extra": r[6], "collation": r[7]}
        for r in db.query(
            conn,
            "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, "
            f"EXTRA, COLLATION_NAME FROM information_schema.COLUMNS WHERE {where}", args)
        if r[0] in snap.tables
    ]
    statistics = [
        {"table": r[0], "index_name": r[1], "non_unique": r[2], "seq": r[3], "column": r[4], "sub_part": r[5]}
        for r in db.query(
            conn,
            "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART "
            f"FROM information_schema.STATISTICS WHERE {where}", args)
        if r[0] in snap.tables
    ]
    return fill_from_rows(snap, columns, statistics, mariadb)


def table_names(conn: pymysql.connections.Connection, database: str) -> set[str]:
    return {r[0] for r in db.query(
        conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        "AND TABLE_TYPE = 'BASE TABLE'", (database,))}
