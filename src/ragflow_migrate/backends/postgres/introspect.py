"""Read the live schema from ``pg_catalog`` into the PostgreSQL normal form of a
:class:`~ragflow_migrate.schema.snapshot.Snapshot` (see :mod:`.pgform` for the form).

``pg_catalog``, not ``information_schema``: the latter shows only objects the role holds a
privilege on, so a restricted role would see tables or columns vanish and report them missing.
Metadata only, and a fixed number of queries whatever the number of tables (four), so this costs
the same on an empty database and on a huge one.

The schema read is the session's ``current_schema()`` (``public`` for RAGFlow). ``database`` is
the connection's own database on PostgreSQL; it is accepted for the backend interface and
checked, since a session cannot read another database's catalog. An INVALID index
(``pg_index.indisvalid`` false: a ``CREATE INDEX CONCURRENTLY`` that failed, was killed, or is still
running) is not read as present: nothing may rely on it, and the next build drops it
(:func:`invalid_indexes`, :mod:`.indexes`).
"""

from __future__ import annotations

from typing import Any

from ...schema.snapshot import Column, Index, Snapshot, Table

_TABLES = ("SELECT c.oid, c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace "
           "AND c.relkind IN ('r', 'p')")

# A serial: the default is nextval() of a sequence owned by the column (pg_depend 'a' from the
# sequence to the column) and the default expression depends on that same sequence.
_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid),
       a.attidentity <> '' OR (pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%%' AND EXISTS (
         SELECT 1 FROM pg_depend own JOIN pg_class s ON s.oid = own.objid AND s.relkind = 'S'
         JOIN pg_depend dflt ON dflt.refobjid = s.oid AND dflt.refclassid = 'pg_class'::regclass
              AND dflt.classid = 'pg_attrdef'::regclass AND dflt.objid = d.oid
         WHERE own.classid = 'pg_class'::regclass AND own.refclassid = 'pg_class'::regclass
           AND own.refobjid = a.attrelid AND own.refobjsubid = a.attnum AND own.deptype = 'a'))
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# Key columns only (not INCLUDE ones); an expression column (attnum 0) is given as its text.
_INDEXES = """
SELECT x.indrelid, i.relname, x.indisunique, x.indisprimary, con.conname,
       ARRAY(SELECT CASE WHEN k.attnum = 0 THEN pg_get_indexdef(x.indexrelid, k.n::int, true)
                         ELSE (SELECT a.attname FROM pg_attribute a
                               WHERE a.attrelid = x.indrelid AND a.attnum = k.attnum) END
             FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, n)
             WHERE k.n <= x.indnkeyatts ORDER BY k.n)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
     AND con.contype IN ('p', 'u', 'x')
WHERE x.indrelid = ANY(%s) AND x.indisvalid
ORDER BY x.indrelid, i.relname
"""

_INVALID = """
SELECT t.relname, i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
WHERE NOT x.indisvalid AND t.relnamespace = current_schema()::regnamespace
ORDER BY 1, 2
"""


def _check_database(cur: Any, database: str | None) -> str | None:
    """The database's collation (``Snapshot.collation``), after checking ``database``."""
    cur.execute("SELECT current_database(), datcollate FROM pg_database WHERE datname = current_database()")
    current, collation = cur.fetchone()
    if database is not None and database != current:
        raise ValueError(f"connected to database {current!r}, not {database!r}")
    return collation


def live_snapshot(conn: Any, database: str | None = None, *, tables: list[str] | None = None) -> Snapshot:
    """Snapshot of the current schema (or of just ``tables`` in it) of ``conn``'s database."""
    with conn.cursor() as cur:
        snap = Snapshot(collation=_check_database(cur, database))
        if tables is not None and not tables:
            return snap
        if tables is None:
            cur.execute(_TABLES)
        else:
            cur.execute(_TABLES + " AND c.relname = ANY(%s)", (list(tables),))
        by_oid: dict[int, Table] = {}
        for oid, name in sorted(cur.fetchall(), key=lambda row: row[1]):
            by_oid[oid] = snap.tables[name] = Table(name)
        if not by_oid:
            return snap
        oids = list(by_oid)
        cur.execute(_COLUMNS, (oids,))
        for oid, name, pg_type, notnull, default, serial in cur.fetchall():
            by_oid[oid].columns[name] = Column(name, pg_type.lower(), not notnull, None if serial else default,
                                               bool(serial), None)
        cur.execute(_INDEXES, (oids,))
        for oid, name, unique, primary, constraint, columns in cur.fetchall():
            key = "PRIMARY" if primary else name
            by_oid[oid].indexes[key] = Index(key, bool(unique), tuple((c, None) for c in columns), constraint)
    return snap


def table_names(conn: Any, database: str | None = None) -> set[str]:
    """The base (and partitioned) tables of the current schema."""
    with conn.cursor() as cur:
        _check_database(cur, database)
        cur.execute(_TABLES)
        return {name for _oid, name in cur.fetchall()}


def invalid_indexes(conn: Any) -> list[tuple[str, str]]:
    """(table, index) of every INVALID index of the current schema (left by an interrupted
    ``CREATE INDEX CONCURRENTLY``; :func:`live_snapshot` does not read them)."""
    with conn.cursor() as cur:
        cur.execute(_INVALID)
        return [(table, name) for table, name in cur.fetchall()]
