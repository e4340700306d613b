"""The floor on PostgreSQL: ``floor.py``'s least SQL, in PostgreSQL's dialect, and its end-state check.

    python tests/bench/floor_pg.py --database bench_floor              # POSTGRES_* from the environment
    python tests/bench/floor_pg.py --compare bench_tool bench_floor    # the two end states, part by part

The same yardstick as ``floor.py`` (read its docstring: one session, no safety, correct **only on
the data ``generate.py`` makes**, schema by the tool's ``schema apply``, data stages timed under
the tool's names), with the end state the PostgreSQL stages leave (``backends/postgres/data/``):

* ``data tenant_model_provider``, ``data tenant_model_instance``, ``data tenant_model``: as on
  MySQL, in PostgreSQL's functions (``split_part``, ``sha256``, windows); the instance identity is
  ``sha256`` of the canonical key and base URL, its first 16 bytes, as the tool's ``ikey``.
  Names are compared byte for byte: the tool folds them as ``utf8mb4_unicode_ci`` compares, and
  no two generated names differ only by case or accents.
* ``data model_id_config``: one ``UPDATE`` per table for the string columns (a value whose
  rewrite would not fit its ``varchar`` stays two-part), one per JSON column with
  ``regexp_replace(…, 'g')`` and the same compaction as on MySQL.
* ``data model_type_merge``: the tool keeps ``tenant_model`` (PostgreSQL's DDL is transactional:
  emptied, ``model_type`` turned INTEGER, refilled). The floor does the same with the least work:
  the active legacy rows (with their bit) and the disabled models into session tables, the table
  emptied, its indexes dropped (the primary key too), ``model_type`` converted on the empty table, one
  ``INSERT … SELECT`` of every catalogue model in every instance of its factory (ids keyed by
  instance and catalogue row, the disabled ones left out by an anti-join), one of the kept legacy
  rows, the indexes built again (sorted builds: cheaper than keeping them up to date row by row).
* ``data tenant_model_id_migration``: the v0.27.0 schema already holds the ``tenant_*_id`` columns
  as ``varchar(32)`` (the chain converts PostgreSQL's integer ones); one ``UPDATE … FROM`` per
  table resolves every column, reading each model by primary key as on MySQL (correlated subqueries:
  the planner would otherwise hash the whole ``tenant_model`` once per table); RAGFlow's marker.

The end state (:func:`end_state`): the same parts as ``floor.py``'s (model tables by natural keys,
``tenant_*_id`` columns as the model they name, timestamps of the model tables left out), every
other table row by row (``md5`` of the row's text: there is no ``CHECKSUM TABLE``), the schema
(columns in order, ``pg_indexes``' definitions, constraints). A part's digest is its row count,
``bit_xor`` and sum of its rows' hashes (order-free, no sort).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import floor  # noqa: E402
from floor import (  # noqa: E402
    JSON_COLUMNS,
    JSON_MODEL_ID,
    MARKER,
    MODEL_TABLES,
    STAGES,
    STRING_COLUMNS,
    TARGETS,
    bit_case,
    catalog_rows,
    compact_json_sql,
)

__all__ = ["STAGES", "PgFloor", "compare", "end_state", "run_floor"]

# floor.CANON and floor.BASE in PostgreSQL's functions.
CANON = ("(CASE WHEN {k} IS NULL THEN '' WHEN {k} LIKE '{{\"api_key\": \"%' THEN split_part({k}, '\"', 4) "
         "ELSE {k} END)")
BASE = "(CASE WHEN {e} = '' THEN '' ELSE substr({e}, 15, char_length({e}) - 16) END)"


def canon(expr: str) -> str:
    return CANON.format(k=expr)


def base_of(expr: str) -> str:
    return BASE.format(e=expr)


def identity(key: str, base: str) -> str:
    """The tool's ``ikey`` (``canonical.instance_identity``), exact for plain keys."""
    c = canon(key)
    return f"substring(sha256(convert_to(char_length({c})::text || ':' || {c} || COALESCE({base}, ''), 'UTF8')) for 16)"


def connect(env: dict[str, str], database: str | None = None) -> psycopg.Connection:
    return psycopg.connect(host=env.get("POSTGRES_HOST", "127.0.0.1"), port=int(env.get("POSTGRES_PORT", "5432")),
                           user=env.get("POSTGRES_USER", "postgres"), password=env.get("POSTGRES_PASSWORD", ""),
                           dbname=database or env.get("POSTGRES_DBNAME", "rag_flow"), autocommit=True,
                           sslmode="disable")


class PgFloor(floor.Floor):
    """``floor.Floor``'s stages in PostgreSQL's dialect (its ``run`` and bookkeeping as they are)."""

    def __init__(self, env: dict[str, str], catalog: Path,  # not super().__init__: that session is MySQL's
                 log: Callable[[str], None] = lambda _m: None) -> None:
        self.conn = connect(env)
        self.catalog = catalog
        self.log = log
        self.statements: list[dict[str, Any]] = []
        self.step = ""
        now = int(time.time())
        self.ms, self.date = now * 1000, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))

    def sql(self, statement: str) -> int:
        started = time.monotonic()
        with self.conn.cursor() as cur:
            cur.execute(statement)
            rows = max(0, cur.rowcount or 0)
        self.statements.append({"step": self.step, "duration_s": round(time.monotonic() - started, 3), "rows": rows,
                                "sql": " ".join(statement.split())[:300]})
        return rows

    def query(self, statement: str, args: Any = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall()) if cur.description else []

    def newid(self, order: str = "") -> str:
        prefix = f"{int(time.time() * 1000):012x}{secrets.randbits(16):04x}"
        return f"('{prefix}' || lpad(to_hex(row_number() OVER ({order})), 16, '0'))"

    def times(self) -> str:
        return f"{self.ms}, '{self.date}'::timestamp, {self.ms}, '{self.date}'::timestamp"

    def columns(self, table: str) -> dict[str, tuple[str, int | None]]:
        rows = self.query("SELECT column_name, data_type, character_maximum_length FROM information_schema.columns "
                          "WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
                          (table,))
        return {str(r[0]): (str(r[1]), int(r[2]) if r[2] is not None else None) for r in rows}

    # -- v0.26.0 ----------------------------------------------------------------------------------

    def stage_tenant_model_provider(self) -> None:
        self.sql("INSERT INTO tenant_model_provider (id, create_time, create_date, update_time, update_date, "
                 f"provider_name, tenant_id) SELECT {self.newid()}, {self.times()}, d.llm_factory, d.tenant_id "
                 "FROM (SELECT DISTINCT tenant_id, llm_factory FROM tenant_llm) d")

    def stage_tenant_model_instance(self) -> None:
        self.sql(
            "INSERT INTO tenant_model_instance (id, create_time, create_date, update_time, update_date, "
            "instance_name, provider_id, api_key, status, extra) "
            f"SELECT {self.newid('ORDER BY g.provider_id, g.ikey')}, {self.times()}, 'default', g.provider_id, "
            "COALESCE(g.api_key, ''), CASE WHEN g.any_valid THEN 'active' ELSE 'inactive' END, g.extra FROM ("
            " SELECT x.*, row_number() OVER (PARTITION BY x.provider_id, x.ikey ORDER BY x.tools, x.name, x.id) AS rn,"
            "  bool_or(x.valid) OVER (PARTITION BY x.provider_id, x.ikey) AS any_valid FROM ("
            f"  SELECT p.id AS provider_id, {identity('l.api_key', 'l.api_base')} AS ikey, l.id, l.api_key, "
            "   COALESCE(l.api_key LIKE '{%\"is_tools\"%', false) AS tools, l.llm_name COLLATE \"C\" AS name, "
            "   l.status = '1' AS valid, CASE WHEN COALESCE(l.api_base, '') = '' THEN '' "
            "   ELSE '{\"base_url\": \"' || l.api_base || '\"}' END AS extra "
            "  FROM tenant_llm l JOIN tenant_model_provider p ON p.tenant_id = l.tenant_id "
            "   AND p.provider_name = l.llm_factory) x"
            ") g WHERE g.rn = 1")

    def legacy_id(self, legacy: str) -> str:
        return f"('{self.legacy_prefix}' || lpad(to_hex({legacy}), 16, '0'))"

    def instances(self) -> str:
        """Each instance with its canonical key and base URL (what a legacy row's key is matched on)."""
        return (f"(SELECT id, provider_id, {canon('api_key')} AS ck, {base_of('extra')} AS base "
                "FROM tenant_model_instance)")

    def stage_tenant_model(self) -> None:
        self.legacy_prefix = f"{int(time.time() * 1000):012x}{secrets.randbits(16):04x}"
        raw = json.loads(self.catalog.read_text(encoding="utf-8"))
        self.sql("CREATE TEMP TABLE _floor_cat (factory text NOT NULL, llm_name text NOT NULL, bits int NOT NULL, "
                 "extra text NOT NULL, ord int NOT NULL, PRIMARY KEY (factory, llm_name))")
        with self.conn.cursor() as cur, cur.copy("COPY _floor_cat FROM STDIN") as copy:
            for row in catalog_rows(raw):
                copy.write_row(row)
        self.sql("ANALYZE _floor_cat")
        tools = "l.api_key LIKE '{%\"is_tools\": true%'"
        extra = (f"CASE WHEN {tools} AND l.max_tokens > 0 THEN '{{\"is_tools\": true, \"max_tokens\": ' || "
                 f"l.max_tokens || '}}' WHEN {tools} THEN '{{\"is_tools\": true}}' WHEN l.max_tokens > 0 THEN "
                 "'{\"max_tokens\": ' || l.max_tokens || '}' ELSE '{}' END")
        self.sql(
            "INSERT INTO tenant_model (id, create_time, create_date, update_time, update_date, model_name, "
            "provider_id, instance_id, model_type, status, extra) "
            f"SELECT {self.legacy_id('l.id')}, {self.times()}, l.llm_name, p.id, i.id, COALESCE(l.model_type, ''), "
            f"CASE WHEN l.status = '1' THEN 'active' ELSE 'inactive' END, {extra} "
            "FROM tenant_llm l JOIN tenant_model_provider p ON p.tenant_id = l.tenant_id "
            f"AND p.provider_name = l.llm_factory JOIN {self.instances()} i ON i.provider_id = p.id "
            f"AND i.ck = {canon('l.api_key')} AND i.base = COALESCE(l.api_base, '') "
            "WHERE l.status <> '1' OR NOT EXISTS (SELECT 1 FROM _floor_cat c WHERE c.factory = l.llm_factory "
            "AND c.llm_name = l.llm_name)")

    def stage_model_id_config(self) -> None:
        for table, columns in STRING_COLUMNS.items():
            have = self.columns(table)
            cols = [(c, have[c][1]) for c in columns if c in have]
            if not cols:
                continue
            conds = [f"({c} ~ '^[^@]+@[^@]+$'" + (f" AND char_length({c}) + 8 <= {n})" if n else ")") for c, n in cols]
            sets = [f"{c} = CASE WHEN {cond} THEN split_part({c}, '@', 1) || '@default@' || split_part({c}, '@', 2) "
                    f"ELSE {c} END" for (c, _n), cond in zip(cols, conds, strict=True)]
            self.sql(f"UPDATE {table} SET " + ", ".join(sets) + " WHERE " + " OR ".join(conds))
        for table, column in JSON_COLUMNS:
            rewritten = compact_json_sql(f"regexp_replace({column}, '{JSON_MODEL_ID}', "
                                         "'\"\\1\":\"\\2@default@\\3\"', 'g')")
            self.sql(f"UPDATE {table} SET {column} = {rewritten} WHERE {column} ~ '{JSON_MODEL_ID}'")

    # -- v0.27.0 ----------------------------------------------------------------------------------

    def keyed(self, instance: str, ordinal: str = "c.ord") -> str:
        """The id of the row the merge seeds for catalogue row ``ordinal`` in ``instance`` (whose id ends
        with its number, in 16 hex digits)."""
        return (f"('{self.seed_prefix}' || lpad(to_hex(('x' || right({instance}, 16))::bit(64)::bigint * 1048576 "
                f"+ {ordinal}), 16, '0'))")

    def stage_model_type_merge(self) -> None:
        indexes = self.query(
            "SELECT i.relname, pg_get_indexdef(x.indexrelid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = 'tenant_model'::regclass AND NOT x.indisprimary ORDER BY i.relname")
        bit = bit_case("model_type")
        self.sql("CREATE TEMP TABLE _floor_keep AS SELECT id, create_time, update_time, model_name, provider_id, "
                 f"instance_id, {bit} AS model_type, extra FROM tenant_model WHERE status = 'active' AND {bit} <> 0")
        self.sql("CREATE TEMP TABLE _floor_off AS SELECT instance_id, model_name FROM tenant_model "
                 "WHERE status <> 'active'")
        self.sql("ANALYZE _floor_off")
        (pkey, pkey_def), = self.query("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                                      "WHERE conrelid = 'tenant_model'::regclass AND contype = 'p'")
        self.sql("TRUNCATE tenant_model")
        self.sql("DROP INDEX " + ", ".join(name for name, _ddl in indexes))
        self.sql(f"ALTER TABLE tenant_model DROP CONSTRAINT {pkey}, "
                 "ALTER COLUMN model_type TYPE integer USING model_type::integer")
        self.seed_prefix = f"{int(time.time() * 1000):012x}{secrets.randbits(16):04x}"
        cols = ("id, create_time, create_date, update_time, update_date, model_name, provider_id, instance_id, "
                "model_type, status, extra")
        # every catalogue model in every instance of its factory, but not the models the legacy rows disabled
        self.sql(f"INSERT INTO tenant_model ({cols}) SELECT {self.keyed('i.id')}, {self.times()}, c.llm_name, "
                 "i.provider_id, i.id, c.bits, 'active', c.extra FROM tenant_model_instance i "
                 "JOIN tenant_model_provider p ON p.id = i.provider_id JOIN _floor_cat c ON c.factory = p.provider_name "
                 "WHERE c.bits <> 0 AND NOT EXISTS (SELECT 1 FROM _floor_off o WHERE o.instance_id = i.id "
                 "AND o.model_name = c.llm_name)")
        self.sql(f"INSERT INTO tenant_model ({cols}) SELECT id, create_time, "
                 "to_timestamp(create_time / 1000) AT TIME ZONE 'UTC', update_time, to_timestamp(update_time / 1000) "
                 "AT TIME ZONE 'UTC', model_name, provider_id, instance_id, model_type, 'active', extra FROM _floor_keep")
        self.sql(f"ALTER TABLE tenant_model ADD CONSTRAINT {pkey} {pkey_def}")
        for _name, ddl in indexes:
            self.sql(ddl)
        self.sql("DROP TABLE _floor_keep, _floor_off")

    def stage_tenant_model_id_migration(self) -> None:
        for table, targets in TARGETS.items():
            cols = self.columns(table)
            pairs = [(t, legacy, bit) for t, legacy, bit in targets if legacy in cols and t in cols]
            if pairs:
                self._resolve(table, pairs)
        self.sql("INSERT INTO system_settings (name, create_time, create_date, update_time, update_date, source, "
                 f"data_type, value) VALUES ('{MARKER}', {self.times()}, 'migration', 'string', 'v0.27.0') "
                 "ON CONFLICT (name) DO UPDATE SET source = 'migration', data_type = 'string', value = 'v0.27.0', "
                 f"update_time = {self.ms}, update_date = '{self.date}'::timestamp")
        self.sql("DROP TABLE _floor_cat")

    def _resolve(self, table: str, pairs: list[tuple[str, str, int]]) -> None:
        """``floor.Floor._resolve`` in PostgreSQL's dialect: one UPDATE for every target column of ``table``."""
        tenant = "x.id" if table == "tenant" else "x.tenant_id"
        refs = " UNION ALL ".join(f"SELECT x.id AS rid, {k} AS c, {bit} AS bit, {tenant} AS tenant, x.{legacy} AS v "
                                  f"FROM {table} x WHERE x.{legacy} <> ''" for k, (_t, legacy, bit) in enumerate(pairs))
        parsed = ("SELECT r.rid, r.c, r.bit, r.tenant, r.p, CASE WHEN r.rest LIKE '_%@default' THEN left(r.rest, -8) "
                  "ELSE r.rest END AS m FROM (SELECT r.*, COALESCE(substring(r.v from '@([^@]*)$'), '') AS p, "
                  f"COALESCE(substring(r.v from '^(.*)@[^@]*$'), '') AS rest FROM ({refs}) r) r")
        # the model, by primary key (correlated: one index lookup per candidate, never a hash of tenant_model)
        usable = "AND m.status = 'active' AND (m.model_type & r.bit) <> 0"
        hit = (f"COALESCE((SELECT m.id FROM tenant_model m WHERE m.id = {self.keyed('i.id')} {usable}), "
               f"(SELECT m.id FROM tenant_model m WHERE c.ord IS NULL AND m.id = {self.legacy_id('l.id')} {usable}))")
        resolved = (
            f"SELECT r.rid, r.c, COALESCE(substr(MIN(i.id || {hit}), 33), '') AS mid FROM ({parsed}) r "
            "LEFT JOIN tenant_model_provider p ON p.tenant_id = r.tenant AND p.provider_name = r.p AND r.m <> '' "
            "LEFT JOIN tenant_llm l ON l.tenant_id = r.tenant AND l.llm_factory = r.p AND l.llm_name = r.m "
            f"LEFT JOIN {self.instances()} i ON i.provider_id = p.id "
            f" AND (l.id IS NULL OR (i.ck = {canon('l.api_key')} AND i.base = COALESCE(l.api_base, ''))) "
            "LEFT JOIN _floor_cat c ON c.factory = p.provider_name AND c.llm_name = r.m "
            "GROUP BY r.rid, r.c")
        picks = ", ".join(f"MAX(CASE WHEN z.c = {k} THEN z.mid END) AS v{k}" for k in range(len(pairs)))
        sets = ", ".join(f"{t} = COALESCE(z.v{k}, x.{t})" for k, (t, _l, _b) in enumerate(pairs))
        self.sql(f"UPDATE {table} x SET {sets} FROM (SELECT z.rid, {picks} FROM ({resolved}) z GROUP BY z.rid) z "
                 "WHERE z.rid = x.id")


def run_floor(env: dict[str, str], catalog: Path, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """The data stages on ``env['POSTGRES_DBNAME']`` (its schema already at v0.27.0: ``schema apply``)."""
    low = PgFloor(env, catalog, log)
    try:
        started = time.monotonic()
        steps = low.run()
        return {"steps": steps, "data_s": round(time.monotonic() - started, 3),
                "slowest": sorted(low.statements, key=lambda s: -s["duration_s"])[:12]}
    finally:
        low.close()


# --- the end state -----------------------------------------------------------------------------------


def _own(column: str) -> str:
    """Not this tool's tables (``ragflow_migrate_*``, the merge's backup included) nor the floor's."""
    return f"{column} NOT LIKE 'ragflow\\_migrate\\_%' AND {column} NOT LIKE '\\_floor%'"


def part_queries(conn: Any) -> dict[str, str]:
    """part → SELECT of one normalised row per source row, as ``h`` (md5 of it) and ``t`` (its text)."""
    tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = "
                                         f"'public' AND table_type = 'BASE TABLE' AND {_own('table_name')} "
                                         "ORDER BY table_name").fetchall()]
    parts: dict[str, str] = {}

    def add(name: str, exprs: list[str], source: str) -> None:
        h = "md5(concat_ws(chr(31), " + ", ".join(f"COALESCE(({e})::text, '\\N')" for e in exprs) + "))"
        t = "concat_ws(' | ', " + ", ".join(f"COALESCE(({e})::text, 'NULL')" for e in exprs) + ")"
        parts[name] = f"SELECT {h} AS h, {t} AS t {source}"

    add("tenant_model_provider", ["p.tenant_id", "p.provider_name"], "FROM tenant_model_provider p")
    add("tenant_model_instance", ["p.tenant_id", "p.provider_name", "i.instance_name", "i.api_key", "i.status",
                                  "i.extra"], "FROM tenant_model_instance i LEFT JOIN tenant_model_provider p "
                                              "ON p.id = i.provider_id")
    add("tenant_model", ["p.tenant_id", "p.provider_name", "i.api_key", "i.extra", "m.model_name", "m.model_type",
                         "m.status", "m.extra", "m.provider_id = i.provider_id"],
        "FROM tenant_model m LEFT JOIN tenant_model_instance i ON i.id = m.instance_id "
        "LEFT JOIN tenant_model_provider p ON p.id = m.provider_id")
    natural = "concat_ws('/', mp.tenant_id, mp.provider_name, md5(concat_ws(chr(31), mi.api_key, mi.extra)), mm.model_name)"
    for table in TARGETS:
        if table not in tables:
            continue
        cols = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                           "'public' AND table_name = %s ORDER BY ordinal_position", (table,)).fetchall()]
        targets = [t for t, _l, _b in TARGETS[table] if t in cols]
        exprs, joins = [], []
        for c in cols:
            if c in targets:
                k = targets.index(c)
                joins.append(f"LEFT JOIN tenant_model mm{k} ON mm{k}.id = x.{c} LEFT JOIN tenant_model_instance mi{k} "
                             f"ON mi{k}.id = mm{k}.instance_id LEFT JOIN tenant_model_provider mp{k} "
                             f"ON mp{k}.id = mm{k}.provider_id")
                exprs.append(f"CASE WHEN mm{k}.id IS NULL THEN x.{c} ELSE 'model:' || "
                             + natural.replace("mp.", f"mp{k}.").replace("mi.", f"mi{k}.").replace("mm.", f"mm{k}.")
                             + " END")
            else:
                exprs.append(f'x."{c}"')
        add(table, exprs, f"FROM {table} x " + " ".join(joins))
    if "system_settings" in tables:
        add("system_settings", ["name", "source", "data_type", "value"], "FROM system_settings")
    for table in tables:
        if table not in parts and table not in MODEL_TABLES:  # row by row: PostgreSQL has no CHECKSUM TABLE
            parts[f"table {table}"] = f'SELECT md5(x::text) AS h, left(x::text, 400) AS t FROM "{table}" x'
    add("schema: columns", ["table_name", "column_name", "pos", "data_type", "character_maximum_length",
                            "is_nullable", "column_default", "collation_name"],
        "FROM (SELECT c.*, row_number() OVER (PARTITION BY table_name ORDER BY ordinal_position) AS pos "
        f"FROM information_schema.columns c WHERE table_schema = 'public' AND {_own('table_name')}) c")
    add("schema: indexes", ["tablename", "indexname", "indexdef"],
        f"FROM pg_indexes WHERE schemaname = 'public' AND {_own('tablename')}")
    add("schema: constraints", ["conrelid::regclass::text", "conname", "contype", "pg_get_constraintdef(oid)"],
        f"FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND {_own('conrelid::regclass::text')}")
    add("schema: tables", ["table_name"], f"FROM information_schema.tables WHERE table_schema = 'public' "
        f"AND {_own('table_name')}")
    return parts


def end_state(conn: Any) -> dict[str, list[Any]]:
    """part → [rows, digest]: an order-free digest of the part's row hashes (bit_xor and sum of two slices)."""
    out: dict[str, list[Any]] = {}
    for name, select in part_queries(conn).items():
        n, x, s = conn.execute("SELECT count(*), COALESCE(bit_xor(('x' || left(h, 16))::bit(64)::bigint), 0), "
                               f"COALESCE(sum(('x' || substr(h, 17, 8))::bit(32)::bigint), 0) FROM ({select}) s"
                               ).fetchone()
        out[name] = [int(n), f"{int(x) & (2**64 - 1):016x}-{int(s):x}"]
    return out


def compare(connect_to: Callable[[str], Any], tool_db: str, floor_db: str, *, samples: int = 5,
            sample_limit: int = 3_000_000) -> dict[str, Any]:
    """Both end states (one session on each database), part by part; for the parts that differ, a few rows
    only one side has (when a part holds at most ``sample_limit`` rows)."""
    conns = {"tool": connect_to(tool_db), "floor": connect_to(floor_db)}
    try:
        a, b = end_state(conns["tool"]), end_state(conns["floor"])
        differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        out: dict[str, Any] = {"match": not differing, "parts": len(set(a) | set(b)), "differing": differing,
                               "tool": {k: a.get(k) for k in differing}, "floor": {k: b.get(k) for k in differing},
                               "samples": {}}
        queries = {side: part_queries(conn) for side, conn in conns.items()}
        for name in differing:
            if name not in queries["tool"] or name not in queries["floor"] \
                    or max((a.get(name) or [0])[0], (b.get(name) or [0])[0]) > sample_limit:
                continue
            hashes = {side: {r[0] for r in conns[side].execute(f"SELECT h FROM ({queries[side][name]}) s").fetchall()}
                      for side in conns}
            sample = {}
            for side, other in (("tool", "floor"), ("floor", "tool")):
                only = sorted(hashes[side] - hashes[other])[:samples]
                sample[f"only_{side}"] = [r[0] for r in conns[side].execute(
                    "SELECT t FROM (" + queries[side][name].replace("%", "%%") + ") s WHERE h = ANY(%s)",
                    (only,)).fetchall()] if only else []
            out["samples"][name] = sample
        return out
    finally:
        for conn in conns.values():
            conn.close()


# --- command line ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="the generated database to upgrade (default POSTGRES_DBNAME)")
    parser.add_argument("--catalog", type=Path, default=HERE / "llm_factories.bench.json",
                        help="the catalogue the database was generated with")
    parser.add_argument("--no-schema", action="store_true", help="the schema is at v0.27.0 already")
    parser.add_argument("--compare", nargs=2, metavar=("TOOL_DB", "FLOOR_DB"), help="compare two end states")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k.startswith("POSTGRES_")}
    env["DB_TYPE"] = "postgres"
    if args.compare:
        result = compare(lambda db: connect(env, db), *args.compare)
        print(json.dumps(result, indent=2, default=str))
        return 0 if result["match"] else 1
    env["POSTGRES_DBNAME"] = args.database or env.get("POSTGRES_DBNAME", "rag_flow")
    if not args.no_schema:
        started = time.monotonic()
        proc = floor.schema_apply(env, args.catalog)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            return 1
        print(f"schema apply: {time.monotonic() - started:.2f}s")
    print(json.dumps(run_floor(env, args.catalog, log=print), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
