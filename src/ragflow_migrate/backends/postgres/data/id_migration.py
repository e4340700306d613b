"""Stage 7 on PostgreSQL, ``tenant_model_id_migration``: the ``tenant_*_id`` columns (spec §3.7).

DDL: a missing target column is added as ``varchar(32) NULL`` with its index; an integer one
becomes ``varchar(32)`` (the schema step usually did both already: on PostgreSQL the cast is
safe). Then each row whose legacy value is non-empty and whose target is NULL, ``''`` or not 32
characters long is resolved by MySQL's :class:`~ragflow_migrate.data.resolve.Resolver` rules (its
set-based lookups rewritten here) a page at a time, and written with one ``UPDATE … FROM`` per
page and column from a COPYed session table. Unresolvable values become ``''`` (KEEP).
"""

from __future__ import annotations

import collections
from typing import Any

from ....data.references import TARGETS
from ....data.resolve import Resolver, _bits
from ....steps import RunContext, StepResult
from . import base
from .base import INST, LLM, PgMeta, PgStage, Work, execute, logged, query

RESULT = "rm_ids"
WANT = "rm_want"
ACTIVE = "rm_active_models"
PAGE = 2000


class PgResolver(Resolver):
    """The resolution rules of :class:`Resolver`; its lookups in PostgreSQL SQL (names compared with
    ``pg_temp.rm_fold()`` where MySQL's columns compare case-insensitively)."""

    def __init__(self, ctx: Any, meta: PgMeta, *, fallback: bool = False) -> None:  # noqa: D107
        self.ctx, self.meta, self.fallback = ctx, meta, fallback
        self.reasons: collections.Counter[str] = collections.Counter()
        self.samples: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        base.temp_table(ctx.conn, WANT, "a TEXT NOT NULL, b TEXT NOT NULL")
        self._active_ready = False

    def _fill(self, table: str, columns: tuple[str, str], rows: set[tuple[str, str]]) -> None:
        execute(self.ctx.conn, f"TRUNCATE {WANT}")
        base.copy_rows(self.ctx.conn, WANT, ("a", "b"), sorted(rows))
        execute(self.ctx.conn, f"ANALYZE {WANT}")  # its true size: index probes, not a hash of a whole table

    def _providers(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        if not wanted:
            return {}
        self._fill(WANT, ("a", "b"), wanted)
        rows = query(self.ctx.conn, f"SELECT w.a, w.b, (SELECT p.id FROM tenant_model_provider p WHERE p.tenant_id = w.a "
                     "AND pg_temp.rm_fold(p.provider_name) = pg_temp.rm_fold(w.b) ORDER BY p.id COLLATE \"C\" LIMIT 1) "
                     f"FROM {WANT} w")
        return {(t, n): p for t, n, p in rows if p is not None}

    def _instances(self, providers: set[str]) -> dict[str, list[tuple[str, str, bytes]]]:
        if not providers:
            return {}
        out: dict[str, list[tuple[str, str, bytes, int]]] = collections.defaultdict(list)
        rows = query(self.ctx.conn, f"SELECT id, provider_id, instance_name, ikey, is_default FROM {INST} "
                     "WHERE provider_id = ANY(%s)", (sorted(providers),))
        for inst_id, provider, name, ikey, is_default in rows:
            out[provider].append((inst_id, name, bytes(ikey), int(is_default)))
        return {p: [(i[0], i[1], i[2]) for i in sorted(v, key=lambda i: (-i[3], i[0]))] for p, v in out.items()}

    def _legacy_keys(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        if not wanted:
            return {}
        self._fill(WANT, ("a", "b"), wanted)
        rows = query(self.ctx.conn, f"SELECT w.a, w.b, l.ikey FROM {WANT} w JOIN {LLM} l ON l.provider_id = w.a "
                     "AND pg_temp.rm_fold(l.llm_name) = pg_temp.rm_fold(w.b) ORDER BY l.seq DESC")
        return {(p, m): bytes(k) for p, m, k in rows}

    def _models(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[str, int, str]]]:
        if not wanted:
            return {}
        self._fill(WANT, ("a", "b"), wanted)
        if not self._active_ready:
            # The active models, their names folded once, keyed by (instance, folded name): one index
            # probe per wanted pair. Against tenant_model itself every probe read all the models of
            # the instance and folded each name (1.4 s a page at M), or worse, the planner (taking
            # lower(status) = 'active' for 0.5% of the rows) hashed the whole table for every page.
            # The stage writes no tenant_model row, so one copy serves every page.
            # Its keys compare byte for byte ("C"): the index builds and probes without the locale.
            base.temp_table(self.ctx.conn, ACTIVE, "instance_id TEXT COLLATE \"C\", lname TEXT COLLATE \"C\", id TEXT, "
                            "model_type TEXT, model_name TEXT")
            execute(self.ctx.conn, f"INSERT INTO {ACTIVE} SELECT instance_id, pg_temp.rm_fold(model_name), id, "
                    "model_type, model_name FROM tenant_model WHERE lower(status) = 'active'")
            execute(self.ctx.conn, f"CREATE INDEX ON {ACTIVE} (instance_id, lname)")
            execute(self.ctx.conn, f"ANALYZE {ACTIVE}")
            self._active_ready = True
        rows = query(self.ctx.conn, f"SELECT w.a, w.b, m.id, m.model_type, m.model_name FROM {WANT} w "
                     f"JOIN {ACTIVE} m ON m.instance_id = w.a COLLATE \"C\" AND m.lname = pg_temp.rm_fold(w.b) COLLATE \"C\"")
        out: dict[tuple[str, str], list[tuple[str, int, str]]] = collections.defaultdict(list)
        for inst, name, model_id, bits, stored in rows:
            out[(inst, name)].append((model_id, _bits(bits), stored))
        return out

    def _fallback(self, refs: list, providers: dict) -> dict[tuple[str, str, int], str]:
        from ....data.resolve import _fallback_name

        wanted = {(r[1], _fallback_name(r[5])) for r in refs
                  if r[5] is not None and (r[1], r[5].provider) not in providers and _fallback_name(r[5])}
        if not wanted:
            return {}
        self._fill(WANT, ("a", "b"), wanted)
        rows = query(self.ctx.conn, f"SELECT w.a, w.b, m.id, m.model_type FROM {WANT} w "
                     "JOIN tenant_model_provider p ON p.tenant_id = w.a JOIN tenant_model m ON m.provider_id = p.id "
                     "AND pg_temp.rm_fold(m.model_name) = pg_temp.rm_fold(w.b) WHERE lower(m.status) = 'active'")
        by_name: dict[tuple[str, str], list[tuple[str, int]]] = collections.defaultdict(list)
        for tenant, name, model_id, bits in rows:
            by_name[(tenant, name)].append((model_id, _bits(bits)))
        found: dict[tuple[str, str, int], str] = {}
        for ref in refs:
            if ref[5] is None or (ref[1], ref[5].provider) in providers:
                continue
            key = (ref[1], _fallback_name(ref[5]))
            ids = sorted({m for m, bits in by_name.get(key, []) if bits & ref[4]})
            if len(ids) == 1:
                found[(*key, ref[4])] = ids[0]
        return found


class IdMigrationStage(PgStage):
    stage = "tenant_model_id_migration"
    gate = "v0.27.0"
    description = "tenant_*_id columns (VARCHAR(32)) filled with tenant_model ids resolved from the legacy names"
    requires = ("tenant_model_provider", "tenant_model_instance", "tenant_model")
    session_tables = (RESULT, WANT, ACTIVE)

    def ddl_plan(self, meta: PgMeta) -> list[str]:
        out = []
        for table, targets in TARGETS.items():
            if not meta.has_table(table):
                continue
            cols = meta.columns(table)
            for target, _legacy, _bit in targets:
                info = cols.get(target)
                if info is None:
                    out.append(f"ALTER TABLE {table} ADD COLUMN {target} varchar(32) NULL")
                    out.append(f"CREATE INDEX IF NOT EXISTS {table}_{target} ON {table} ({target})")
                elif info.data_type != "character varying" or info.max_length != 32 or not info.nullable:
                    out.append(f"ALTER TABLE {table} ALTER COLUMN {target} TYPE varchar(32) USING {target}::varchar(32), "
                               f"ALTER COLUMN {target} DROP NOT NULL")
        return out

    def analyse(self, ctx: RunContext, meta: PgMeta, work: Work) -> None:
        plan = self.ddl_plan(meta)
        work.data["ddl"] = plan
        work.notes += plan
        work.counts["tables_to_alter"] = len({s.split()[2] for s in plan})
        base.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
        base.build_instances(ctx, self.name, meta, batch=self.batch(ctx))
        if work.executing:
            return
        resolver = PgResolver(ctx, meta, fallback=bool(ctx.extras.get("data.cross_provider_fallback")))
        total = resolved = 0
        for page in self._pages(ctx, meta):
            results = resolver.resolve(page)
            total += len(results)
            resolved += sum(1 for r in results if r[3])
            for table, row_id, col, value in results[: max(0, 5 - len(work.samples))]:
                work.samples.append({"table": table, "id": row_id, "column": col, "value": value})
        work.counts.update(references_to_resolve=total, references_resolved=resolved,
                           references_unresolvable=total - resolved)
        work.notes += resolver.summary()

    def _pages(self, ctx: RunContext, meta: PgMeta):
        """[(table, row id, tenant id, [(target, legacy value, bit)])] of rows needing resolution, by table and id."""
        for table, targets in TARGETS.items():
            if not meta.has_table(table) or "id" not in meta.columns(table):
                continue
            cols = meta.columns(table)
            pairs = [(t, legacy, bit) for t, legacy, bit in targets if legacy in cols]
            if not pairs or (table != "tenant" and "tenant_id" not in cols):
                continue
            select, needs = [], []
            for target, legacy, _bit in pairs:
                if target in cols and not meta.is_int(table, target):
                    select.append(f"{legacy}, {target}::text")
                    needs.append(f"({legacy} <> '' AND ({target} IS NULL OR char_length({target}::text) <> 32))")
                else:
                    select.append(f"{legacy}, NULL")
                    needs.append(f"{legacy} <> ''")
            tenant = "id" if table == "tenant" else "tenant_id"
            last = None
            while True:
                cond, args = base.range_condition("id", last, None)
                rows = query(ctx.conn, f"SELECT id, {tenant}, {', '.join(select)} FROM {table} WHERE ({' OR '.join(needs)})"
                             f" AND {cond} ORDER BY id LIMIT %s", (*args, PAGE))
                if not rows:
                    break
                page = []
                for row in rows:
                    wanted = [(t, row[2 + 2 * i], bit) for i, (t, _legacy, bit) in enumerate(pairs)
                              if row[2 + 2 * i] and (row[3 + 2 * i] is None or len(str(row[3 + 2 * i])) != 32)]
                    if wanted:
                        page.append((table, row[0], row[1], wanted))
                yield page
                last = rows[-1][0]
                ctx.checkpoint()

    def write(self, ctx: RunContext, meta: PgMeta, work: Work) -> StepResult:
        conn = ctx.conn
        for statement in work.data["ddl"]:
            ctx.checkpoint()
            with conn.transaction():
                logged(ctx, self.name, statement, level="info")
        meta.forget()
        resolver = PgResolver(ctx, meta, fallback=bool(ctx.extras.get("data.cross_provider_fallback")))
        base.temp_table(conn, RESULT, "tbl TEXT NOT NULL, id TEXT NOT NULL, col TEXT NOT NULL, value TEXT NOT NULL")
        progress = ctx.progress(self.name, None, unit="references")
        total = resolved = changed = 0
        # keyset pages (id > last): a page's writes never move rows into or out of a page still to come
        for page in self._pages(ctx, meta):
            results = resolver.resolve(page)
            if not results:
                continue
            total += len(results)
            resolved += sum(1 for r in results if r[3])
            with conn.transaction():
                execute(conn, f"TRUNCATE {RESULT}")
                base.copy_rows(conn, RESULT, ("tbl", "id", "col", "value"), [(t, str(i), c, v) for t, i, c, v in results])
                for table in sorted({r[0] for r in results}):
                    changed += self._update(ctx, table, [r for r in results if r[0] == table])
            progress.advance(len(results))
            ctx.checkpoint()
        progress.emit()
        work.counts.update(references_to_resolve=total, references_resolved=resolved,
                           references_unresolvable=total - resolved)
        for message, count, sample in resolver.notices():
            ctx.notice(self.name, message, count=count, sample=sample)
        return StepResult(rows=total, changes=changed + len(work.data["ddl"]),
                          details={"ddl_statements": len(work.data["ddl"]), "resolved": resolved,
                                   "unresolvable": total - resolved})

    def _update(self, ctx: RunContext, table: str, results: list[tuple]) -> int:
        """One ``UPDATE`` of ``table`` for the page: every resolved column of a row in one new row version
        (a column per statement wrote each row, and each of its indexes, once per column). Returns the
        values written."""
        columns = sorted({r[2] for r in results})
        sets = ", ".join(f"{c} = CASE WHEN r.has_{i} THEN r.v_{i} ELSE x.{c} END" for i, c in enumerate(columns))
        pivot = ", ".join(f"bool_or(col = %s) AS has_{i}, MAX(value) FILTER (WHERE col = %s) AS v_{i}"
                          for i, _c in enumerate(columns))
        rows = logged(ctx, self.name, f"UPDATE {table} x SET {sets} FROM (SELECT id, {pivot} FROM {RESULT} WHERE tbl = %s "
                      "GROUP BY id) r WHERE r.id = x.id::text", (*[c for c in columns for _ in (0, 1)], table))
        if rows == len({r[1] for r in results}):
            return len(results)
        # rows gone since the page was read: only the values of the rows still there were written
        return int(base.scalar(ctx.conn, f"SELECT COUNT(*) FROM {RESULT} r JOIN {table} x ON r.id = x.id::text "
                               "WHERE r.tbl = %s", (table,)) or 0)

    def probe(self, ctx: RunContext, meta: PgMeta) -> bool:
        return bool(self.ddl_plan(meta))
