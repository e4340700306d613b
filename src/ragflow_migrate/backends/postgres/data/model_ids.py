"""Stage 4 on PostgreSQL, ``model_id_config``: ``m@p`` → ``m@default@p`` (spec §3.4).

String columns: one ``UPDATE`` per range of ids (a value whose rewrite would not fit its column
stays two-part, as on MySQL). JSON columns: pages read by id, rewritten by the shared pure rule
(:func:`ragflow_migrate.data.stages.model_ids._rewrite_page`), COPYed into a session table and
applied with one ``UPDATE … FROM`` per page, only where the row still holds what was read
(SHA-256). ``text`` columns have no length limit on PostgreSQL, so no JSON value is kept two-part.
"""

from __future__ import annotations

from typing import Any

from ....data import limits
from ....data.stages.model_ids import JSON_COLUMNS, JSON_PAGE, STRING_COLUMNS, _rewrite_page
from ....steps import RunContext, StepResult
from . import base
from .base import PgMeta, PgStage, Work, logged, query, scalar

STAGE_JSON = "rm_json"
# MySQL's ``LIKE '_%@_%' AND NOT LIKE '%@%@%'``: exactly one '@', a character on each side (no '%' in the
# text, so that it is the same with and without bound parameters).
_TWO = "({c} ~ '^[^@]+@[^@]+$')"
_REWRITE = "(split_part({c}, '@', 1) || '@default@' || split_part({c}, '@', 2))"


def _rewritable(column: str, limit: int | None) -> str:
    cond = _TWO.format(c=column)
    return cond if limit is None else f"({cond} AND char_length({_REWRITE.format(c=column)}) <= {int(limit)})"


def _capacity(meta: PgMeta, table: str, column: str) -> limits.Target | None:
    limit = meta.max_length(table, column)
    return limits.of_type(table, column, f"varchar({limit})") if limit else None


class ModelIdStage(PgStage):
    stage = "model_id_config"
    gate = "v0.26.0"
    description = "stored model ids m@p → m@default@p in string columns and JSON configs"
    requires = ()
    session_tables = (STAGE_JSON,)

    def _pairs(self, meta: PgMeta, spec: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
        return [(t, c) for t, cols in spec.items() if meta.has_table(t) and "id" in meta.columns(t)
                for c in cols if c in meta.columns(t) and meta.column(t, c).data_type in ("character varying", "text")]

    def _string_tables(self, meta: PgMeta) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for table, column in self._pairs(meta, STRING_COLUMNS):
            out.setdefault(table, []).append(column)
        return out

    def analyse(self, ctx: RunContext, meta: PgMeta, work: Work) -> None:
        conn = ctx.conn
        counts: dict[str, int] = {}
        kept: dict[str, list[Any]] = {}
        string_rows = 0
        for table, columns in self._string_tables(meta).items():
            any_cond = " OR ".join(_rewritable(c, meta.max_length(table, c)) for c in columns)
            string_rows += int(scalar(conn, f"SELECT COUNT(*) FROM {table} WHERE {any_cond}") or 0)
            for column in columns:
                limit = meta.max_length(table, column)
                n = int(scalar(conn, f"SELECT COUNT(*) FROM {table} WHERE {_rewritable(column, limit)}") or 0)
                over = int(scalar(conn, f"SELECT COUNT(*) FROM {table} WHERE {_TWO.format(c=column)}") or 0) - n
                counts[f"{table}.{column}"] = n
                if over:
                    ids = [r[0] for r in query(conn, f"SELECT id FROM {table} WHERE {_TWO.format(c=column)} AND NOT "
                                               f"{_rewritable(column, limit)} ORDER BY id LIMIT 10")]
                    kept[f"{table}.{column}"] = [over, ids]
                if n and len(work.samples) < 5:
                    work.samples += self.sample(ctx, f"SELECT '{table}.{column}', id, {column}, "
                                                f"{_REWRITE.format(c=column)} FROM {table} WHERE "
                                                f"{_rewritable(column, limit)} ORDER BY id",
                                                columns=("column", "id", "before", "after"))
        if kept:
            total_kept = sum(v[0] for v in kept.values())
            work.counts["string_values_kept_two_part"] = total_kept
            work.data["kept"] = kept
            work.notes.append(f"{total_kept} m@p value(s) would not fit their column as m@default@p and stay two-part "
                              "(RAGFlow v0.27.0 reads m@p as the instance 'default'): "
                              + "; ".join(f"{k}: {v[0]} (ids {v[1]})" for k, v in kept.items()))
        work.data["string_rows"] = string_rows
        work.counts["string_values_to_rewrite"] = sum(counts.values())
        if work.executing:
            return
        changes = broken = too_long = 0
        for table, column in self._pairs(meta, JSON_COLUMNS):
            for rows in self._raw_pages(ctx, table, column):
                page = _rewrite_page(column, rows, _capacity(meta, table, column))
                changes += len(page["changes"])
                broken += len(page["broken"])
                too_long += len(page["kept"])
                for row_id, _hash, value in page["changes"][: max(0, 5 - len(work.samples))]:
                    work.samples.append({"column": f"{table}.{column}", "id": row_id, "after": value[:300]})
        work.counts["json_values_to_rewrite"] = changes
        work.counts["json_values_unparsable"] = broken
        if too_long:
            work.counts["json_values_kept_two_part"] = too_long
        if broken:
            work.notes.append(f"{broken} JSON value(s) do not parse and are left unchanged")

    def _raw_pages(self, ctx: RunContext, table: str, column: str):
        last = None
        while True:
            cond, args = base.range_condition("id", last, None)
            rows = query(ctx.conn, f"SELECT id, {column} FROM {table} WHERE {column} LIKE '%%@%%' AND {cond} "
                         "ORDER BY id LIMIT %s", (*args, JSON_PAGE))
            if not rows:
                return
            yield rows
            last = rows[-1][0]
            ctx.checkpoint()

    def write(self, ctx: RunContext, meta: PgMeta, work: Work) -> StepResult:
        conn = ctx.conn
        for column, (count, ids) in work.data.get("kept", {}).items():
            ctx.notice(self.name, f"{column}: m@p values that would not fit the column as m@default@p stay two-part "
                       "(RAGFlow v0.27.0 reads m@p as the instance 'default'; stage 7 resolves them the same way)",
                       count=count, sample=ids)
        progress = ctx.progress(self.name, work.data["string_rows"] or None, unit="rows")
        string_rows = 0
        for table, columns in self._string_tables(meta).items():
            limits_of = {c: meta.max_length(table, c) for c in columns}
            sets = ", ".join(f"{c} = CASE WHEN {_rewritable(c, limits_of[c])} THEN {_REWRITE.format(c=c)} ELSE {c} END"
                             for c in columns)
            any_cond = " OR ".join(_rewritable(c, limits_of[c]) for c in columns)
            for after, upto in base.key_pages(conn, table, "id", self.batch(ctx), where=f"({any_cond})"):
                cond, args = base.range_condition("id", after, upto)
                with conn.transaction():
                    n = logged(ctx, self.name, f"UPDATE {table} SET {sets} WHERE {cond} AND ({any_cond})",
                               args)
                string_rows += n
                progress.advance(n)
                ctx.checkpoint()
        if work.data["string_rows"]:
            progress.emit()
        progress = ctx.progress(self.name, None, unit="JSON values")
        base.temp_table(conn, STAGE_JSON, "id TEXT NOT NULL PRIMARY KEY, old_hash TEXT NOT NULL, value TEXT NOT NULL")
        json_changes = changed = 0
        broken: list[str] = []
        for table, column in self._pairs(meta, JSON_COLUMNS):
            capacity = _capacity(meta, table, column)
            for rows in self._raw_pages(ctx, table, column):
                page = _rewrite_page(column, rows, capacity)
                broken.extend(f"{table}.{column} id={i}" for i in page["broken"])
                if not page["changes"]:
                    continue
                json_changes += len(page["changes"])
                with conn.transaction():
                    base.execute(conn, f"TRUNCATE {STAGE_JSON}")
                    base.copy_rows(conn, STAGE_JSON, ("id", "old_hash", "value"),
                                   [(str(i), h, v) for i, h, v in page["changes"]])
                    changed += logged(ctx, self.name, (
                        f"UPDATE {table} x SET {column} = j.value FROM {STAGE_JSON} j WHERE x.id::text = j.id "
                        f"AND encode(sha256(convert_to(x.{column}, 'UTF8')), 'hex') = j.old_hash"))
                progress.advance(len(page["changes"]))
        stale = json_changes - changed
        work.counts["json_values_to_rewrite"] = json_changes
        work.counts["json_values_unparsable"] = len(broken)
        if broken:
            ctx.notice(self.name, "JSON values that do not parse were left unchanged", count=len(broken),
                       sample=broken[:10])
        if stale:
            ctx.notice(self.name, "JSON values changed by someone else while being rewritten were left for the "
                       "next run", count=stale)
        progress.emit()
        return StepResult(rows=string_rows + json_changes, changes=string_rows + changed,
                          details={"string_rows_rewritten": string_rows, "json_values_rewritten": changed,
                                   "stale": stale})
