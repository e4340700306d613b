"""The bench's generated database on PostgreSQL: made on MariaDB by ``generate.py``, copied over.

    python tests/bench/pgcopy.py --scale S --release v0.25.6      # starts MariaDB and PostgreSQL, prints timings

The rows are the ones ``generate.py`` writes on MariaDB (same seed, same rows on every server):

1. a MariaDB beside the PostgreSQL (the bench starts both) gets the generated database at the
   old release (``generate.generate``);
2. the PostgreSQL database gets the same release's schema from the tool itself (``run
   --target-version <release> --create-database``, ``DB_TYPE=postgres``); then the tool's own
   tables (``ragflow_migrate_*``) and peewee-migrate's ``migratehistory`` are dropped, so the
   upgrade adopts the database as one RAGFlow's startup made (as ``generate.build_schema`` does
   on MySQL);
3. every table both sides have is streamed across: a server-side cursor on MariaDB (pymysql's
   ``SSCursor``), ``COPY … FROM STDIN`` on PostgreSQL (psycopg), the columns both sides have, so
   memory stays flat at any scale. Indexes that back no constraint are dropped before the copy
   and built again after it (as the generator does on MySQL); TINYINT 0/1 goes into BOOLEAN as
   the text ``0``/``1``;
4. every sequence is set to its column's maximum, then ``VACUUM (ANALYZE)`` (statistics, hint
   bits and visibility map written now, so that autovacuum does not start on the fresh tables
   during the timed run) and a ``CHECKPOINT``.

:func:`copy_database` is also how the floor gets its copy: the MariaDB database is kept until the
case ends, and copied again right before the floor runs (both start from an equally fresh copy).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "servers"))
sys.path.insert(0, str(HERE))

import generate  # noqa: E402
import harness  # noqa: E402

import postgres  # noqa: E402

#: Tables of this tool and of peewee-migrate (RAGFlow's developer script), dropped after the schema is built.
OWN_LIKE = "ragflow\\_migrate\\_%"
PEEWEE_HISTORY = "migratehistory"
FETCH = 5000  # rows per fetchmany from the MariaDB stream
BINARY_TYPES = {"binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob"}


# --- servers ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def servers(buffer_pool: str = "512M") -> Iterator[Any]:
    """A PostgreSQL 15 for the bench (``.source``: the MariaDB 10.11 the rows are generated on).

    PostgreSQL runs with its own defaults for durability (``fsync``, ``full_page_writes`` on: the
    test harness turns them off), and ``shared_buffers`` = the MySQL servers' buffer pool."""
    args = ["-c", "fsync=on", "-c", "full_page_writes=on", "-c", f"shared_buffers={_pg_size(buffer_pool)}"]
    with harness.running("mariadb", extra_args=[f"--innodb-buffer-pool-size={buffer_pool}"]) as source:
        with postgres.running(extra_args=args) as server:
            server.source = source  # type: ignore[attr-defined]
            server.settings = {"shared_buffers": _pg_size(buffer_pool), "fsync": "on"}  # type: ignore[attr-defined]
            yield server


def _pg_size(value: str) -> str:
    """``512M`` (MySQL's spelling) → ``512MB`` (PostgreSQL's)."""
    value = value.strip()
    return value + "B" if value[-1:].upper() in ("K", "M", "G") else value


def source_name(database: str) -> str:
    return (database + "_src")[:64]


# --- generation -----------------------------------------------------------------------------------


def generate_case(server: Any, database: str, *, release: str, scale: str, seed: int, catalog: Path,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """``database`` on PostgreSQL at ``release``, filled with ``generate.py``'s rows for ``scale``: generated
    on the MariaDB ``server.source`` (database :func:`source_name`, kept for the floor's copy), then copied.
    Returns ``generate.generate``'s result, its ``seconds`` the whole preparation, with ``mariadb_seconds``
    and ``copy`` (seconds per part) beside."""
    started = time.monotonic()
    source, src_db = server.source, source_name(database)
    with contextlib.suppress(Exception):
        source.drop_database(src_db)
    source.create_database(src_db)
    gen = generate.generate(source.env(src_db), release=release, scale=scale, seed=seed, catalog=catalog, log=log)
    log(f"  generated on {source.label} in {gen['seconds']:.1f}s; PostgreSQL schema and copy ...")
    copied = copy_database(server, database, release=release, source_db=src_db, log=log)
    gen["mariadb_seconds"] = gen["seconds"]
    gen["copy"] = copied
    gen["seconds"] = round(time.monotonic() - started, 2)
    return gen


def build_schema(server: Any, database: str, release: str) -> float:
    """The old release's schema on PostgreSQL, made by the tool; its history dropped (as on MySQL)."""
    seconds = generate.build_schema(server.env(database), release, keep_history=True)
    with server.connect(database) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND (tablename LIKE %s OR tablename = %s)",
            (OWN_LIKE, PEEWEE_HISTORY)).fetchall()]
        for name in names:
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
    return seconds


def copy_database(server: Any, database: str, *, release: str, source_db: str,
                  log: Callable[[str], None] = print) -> dict[str, Any]:
    """(Re)create ``database`` on PostgreSQL at ``release`` and copy every table of ``source_db`` (MariaDB)
    into it; returns the seconds of each part and the rows per table."""
    out: dict[str, Any] = {"rows": {}}
    started = time.monotonic()
    with contextlib.suppress(Exception):
        server.drop_database(database)
    server.create_database(database)
    out["schema_s"] = round(build_schema(server, database, release), 2)
    src = server.source.connect(source_db, cursorclass=pymysql.cursors.SSCursor, read_timeout=7200)
    dst = server.connect(database)
    try:
        with src.cursor(pymysql.cursors.Cursor) as cur:  # the stream may wait on PostgreSQL for a while
            cur.execute("SET SESSION net_write_timeout = 3600")
        dst.execute("SET maintenance_work_mem = '256MB'")
        mine, theirs = set(_pg_tables(dst)), set(_my_tables(src))
        common = sorted(mine & theirs)
        out["only_postgres"], out["only_mariadb"] = sorted(mine - theirs), sorted(theirs - mine)
        indexes = {t: _drop_indexes(dst, t) for t in common}
        t = time.monotonic()
        for table in common:
            out["rows"][table], skipped = _copy_table(src, dst, table)
            if skipped:
                out.setdefault("columns_not_copied", {})[table] = skipped
        out["copy_s"] = round(time.monotonic() - t, 2)
        t = time.monotonic()
        for table in common:
            for statement in indexes[table]:
                dst.execute(statement)
        out["indexes_s"] = round(time.monotonic() - t, 2)
        t = time.monotonic()
        _set_sequences(dst)
        dst.execute("VACUUM (ANALYZE)")
        dst.execute("CHECKPOINT")
        out["vacuum_s"] = round(time.monotonic() - t, 2)
    finally:
        src.close()
        dst.close()
    out["seconds"] = round(time.monotonic() - started, 2)
    log(f"  PostgreSQL: schema {out['schema_s']:.1f}s, copy {out['copy_s']:.1f}s "
        f"({sum(out['rows'].values()):,} rows), indexes {out['indexes_s']:.1f}s, vacuum+checkpoint {out['vacuum_s']:.1f}s")
    return out


def _pg_tables(conn: Any) -> list[str]:
    return [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]


def _my_tables(conn: Any) -> list[str]:
    with conn.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SHOW TABLES")
        return [str(r[0]) for r in cur.fetchall()]


def _drop_indexes(conn: Any, table: str) -> list[str]:
    """Drop ``table``'s indexes that back no constraint; return the statements that build them again."""
    rows = conn.execute(
        "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = %s AND t.relnamespace = 'public'::regnamespace "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) ORDER BY i.relname",
        (table,)).fetchall()
    for name, _ddl in rows:
        conn.execute(f'DROP INDEX "{name}"')
    return [ddl for _name, ddl in rows]


def _copy_table(src: Any, dst: Any, table: str) -> tuple[int, list[str]]:
    """Stream ``table`` from MariaDB into PostgreSQL: the columns both have, in PostgreSQL's order; returns
    the rows and the columns only one side has."""
    with src.cursor(pymysql.cursors.Cursor) as cur:
        cur.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = DATABASE() "
                    "AND table_name = %s", (table,))
        theirs = {str(r[0]): str(r[1]).lower() for r in cur.fetchall()}
    mine = dst.execute("SELECT column_name, is_nullable, column_default FROM information_schema.columns "
                       "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
                       (table,)).fetchall()
    columns = [r[0] for r in mine if r[0] in theirs]
    required = [r[0] for r in mine if r[0] not in theirs and r[1] == "NO" and r[2] is None]
    if required:
        raise RuntimeError(f"{table}: PostgreSQL requires {required}, which MariaDB's {table} lacks")
    binary = [i for i, c in enumerate(columns) if theirs[c] in BINARY_TYPES]
    rows = 0
    with src.cursor() as read:  # SSCursor: rows come as the server sends them
        read.execute("SELECT " + ", ".join(f"`{c}`" for c in columns) + f" FROM `{table}`")
        with dst.cursor() as cur, cur.copy(f'COPY "{table}" (' + ", ".join(f'"{c}"' for c in columns)
                                           + ") FROM STDIN") as copy:
            while True:
                page = read.fetchmany(FETCH)
                if not page:
                    break
                for row in page:
                    if binary:
                        row = list(row)
                        for i in binary:
                            if isinstance(row[i], bytes | bytearray):
                                row[i] = bytes(row[i]).decode("utf-8")
                    copy.write_row(row)
                rows += len(page)
    return rows, sorted(set(theirs).symmetric_difference(r[0] for r in mine))


def _set_sequences(conn: Any) -> None:
    """Every column drawing from a sequence: the sequence continues after the copied maximum."""
    rows = conn.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                        "AND column_default LIKE 'nextval(%%'").fetchall()
    for table, column in rows:
        conn.execute(f"SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(MAX(\"{column}\"), 0) + 1, false) "
                     f'FROM "{table}"', (f'public."{table}"', column))


def database_size_mb(server: Any, database: str) -> float:
    return float(server.query("SELECT pg_database_size(%s)", (database,))[0][0]) / 1048576


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="XS", choices=list(generate.SCALES))
    parser.add_argument("--release", default="v0.25.6")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--catalog", type=Path, default=generate.DEFAULT_CATALOG)
    args = parser.parse_args(argv)
    os.environ.setdefault("RAGFLOW_MIGRATE_CATALOG", str(args.catalog))
    with servers() as server:
        gen = generate_case(server, "bench", release=args.release, scale=args.scale, seed=args.seed,
                            catalog=args.catalog)
        gen["size_mb"] = round(database_size_mb(server, "bench"), 1)
        print(json.dumps(gen, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
