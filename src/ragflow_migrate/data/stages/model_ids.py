"""Stage 4, ``model_id_config``: stored model ids ``m@p`` become ``m@default@p`` (spec §3.4).

* String columns (``tenant.llm_id`` …): one ``UPDATE`` per range of primary keys, entirely in
  SQL (exactly two non-empty ``@``-parts: ``LIKE '_%@_%' AND NOT LIKE '%@%@%'``). A value that
  would no longer fit its column once rewritten (``knowledgebase.embd_id`` is VARCHAR(128)) stays
  two-part: RAGFlow v0.27.0 reads ``model@provider`` as the instance named ``default`` (it splits
  names from the right), which is exactly what the rewrite would say; stage 7 resolves it like
  any other. Such values are counted and reported (``step.notice``), never truncated.
* JSON columns (``knowledgebase.parser_config``, canvas DSLs …): read a page by primary key,
  rewrite in Python (:func:`canonical.rewrite_config`), stage the changed rows, and apply them
  with one ``UPDATE … JOIN`` per page. A row is only overwritten if it still holds what was read
  (compared by SHA-256), so a concurrent edit is never lost. Unparsable JSON is reported by row id
  and left alone, as RAGFlow does; so is a config whose rewritten text would not fit its column
  (its references stay two-part, which RAGFlow reads the same way).

Idempotent by construction; missing tables or columns are skipped.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ...steps import RunContext, StepResult
from .. import canonical, lanes, limits, sqlkit
from ..sqlkit import Meta, render
from .base import DataStage, Work

STRING_COLUMNS: dict[str, tuple[str, ...]] = {
    "tenant": ("llm_id", "embd_id", "asr_id", "img2txt_id", "rerank_id", "tts_id", "ocr_id"),
    "knowledgebase": ("embd_id",),
    "dialog": ("llm_id", "rerank_id"),
    "memory": ("embd_id", "llm_id"),
}
JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "knowledgebase": ("parser_config",),
    "document": ("parser_config",),
    "search": ("search_config",),
    "user_canvas": ("dsl",),
    "canvas_template": ("dsl",),
    "user_canvas_version": ("dsl",),
    "api_4_conversation": ("dsl",),
    "pipeline_operation_log": ("dsl",),
    "connector": ("config",),
    "evaluation_runs": ("config_snapshot",),
}
STAGE_JSON = "rm_json"
_JSON_BODY = """
  `id` VARCHAR(64) NOT NULL PRIMARY KEY,
  `old_hash` CHAR(64) NOT NULL,
  `value` LONGTEXT NOT NULL
"""
_TWO_PARTS = "{c} LIKE %s AND {c} NOT LIKE %s"
TWO_PARTS_ARGS = ("_%@_%", "%@%@%")  # at least one character on each side of one single '@'
_REWRITE = "CONCAT(SUBSTRING_INDEX({c}, '@', 1), '@default@', SUBSTRING_INDEX({c}, '@', -1))"
JSON_PAGE = 500


class ModelIdStage(DataStage):
    stage = "model_id_config"
    gate = "v0.26.0"
    description = "stored model ids m@p → m@default@p in string columns and JSON configs"
    requires = ()

    def _pairs(self, meta: Meta, spec: dict[str, tuple[str, ...]]) -> list[tuple[str, str]]:
        return [(t, c) for t, cols in spec.items() if meta.has_table(t) and "id" in meta.columns(t)
                for c in cols if c in meta.columns(t)]

    def _string_tables(self, meta: Meta) -> dict[str, list[str]]:
        tables: dict[str, list[str]] = {}
        for table, column in self._pairs(meta, STRING_COLUMNS):
            tables.setdefault(table, []).append(column)
        return tables

    def analyse(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        conn = ctx.conn
        string_counts: dict[str, int] = {}
        string_rows: dict[str, int] = {}
        for table, columns in self._string_tables(meta).items():
            # one read per table: the rows to rewrite, and the values per column
            sums = ", ".join("COALESCE(SUM(" + render(_TWO_PARTS, c=c) + "), 0)" for c in columns)
            row = sqlkit.query(conn, "SELECT COUNT(*), " + sums + render(" FROM {t} WHERE ", t=table)
                               + _any_two_parts(columns), TWO_PARTS_ARGS * (2 * len(columns)))[0]
            string_rows[table] = int(row[0] or 0)
            for column, n in zip(columns, row[1:], strict=True):
                string_counts[f"{table}.{column}"] = int(n or 0)
        kept: dict[str, list[Any]] = {}
        for table, column in self._pairs(meta, STRING_COLUMNS):
            cond = render(_TWO_PARTS, c=column)
            n = string_counts[f"{table}.{column}"]
            limit = meta.max_length(table, column)
            if n and limit is not None:
                too_long = "CHAR_LENGTH(" + render(_REWRITE, c=column) + ") > %s"
                over = int(sqlkit.scalar(conn, render("SELECT COUNT(*) FROM {t} WHERE ", t=table) + cond
                                         + " AND " + too_long, (*TWO_PARTS_ARGS, limit)) or 0)
                if over:
                    ids = [r[0] for r in sqlkit.query(conn, render("SELECT `id` FROM {t} WHERE ", t=table) + cond
                                                      + " AND " + too_long + " ORDER BY `id` LIMIT 10",
                                                      (*TWO_PARTS_ARGS, limit))]
                    kept[f"{table}.{column}"] = [over, ids]
                    string_counts[f"{table}.{column}"] = n - over
            if n and len(work.samples) < 5:
                work.samples += self.sample(ctx, render("SELECT {tn}, `id`, {c}, ", tn=sqlkit.Raw(f"'{table}.{column}'"),
                                                        c=column) + render(_REWRITE, c=column)
                                            + render(" FROM {t} WHERE ", t=table) + cond + " ORDER BY `id`",
                                            TWO_PARTS_ARGS, columns=("column", "id", "before", "after"))
        if kept:
            total_kept = sum(v[0] for v in kept.values())
            work.counts["string_values_kept_two_part"] = total_kept
            work.data["kept"] = kept
            work.notes.append(f"{total_kept} m@p value(s) would not fit their column as m@default@p and stay two-part "
                              "(RAGFlow v0.27.0 reads m@p as the instance 'default'): "
                              + "; ".join(f"{k}: {v[0]} (ids {v[1]})" for k, v in kept.items()))
        work.data["string_rows"] = string_rows
        work.counts["string_values_to_rewrite"] = sum(string_counts.values())
        work.data["string_counts"] = string_counts
        if work.executing:
            return  # the JSON pass runs once, in write(), which counts what it changes
        json_changes, broken, too_long = 0, 0, 0
        for table, column in self._pairs(meta, JSON_COLUMNS):
            for page in self._json_pages(ctx, table, column, _capacity(meta, table, column)):
                json_changes += len(page["changes"])
                broken += len(page["broken"])
                too_long += len(page["kept"])
                work.data.setdefault("broken", []).extend(f"{table}.{column} id={i}" for i in page["broken"][:10])
                for row_id, _hash, value in page["changes"][: max(0, 5 - len(work.samples))]:
                    work.samples.append({"column": f"{table}.{column}", "id": row_id, "after": value[:300]})
        work.counts["json_values_to_rewrite"] = json_changes
        work.counts["json_values_unparsable"] = broken
        if too_long:
            work.counts["json_values_kept_two_part"] = too_long
            work.notes.append(f"{too_long} JSON value(s) would not fit their column once rewritten and keep their "
                              "m@p references (RAGFlow v0.27.0 reads m@p as the instance 'default')")
        if broken:
            work.notes.append(f"{broken} JSON value(s) do not parse and are left unchanged: "
                              + ", ".join(work.data["broken"][:10]))

    def _json_pages(self, ctx: RunContext, table: str, column: str, capacity: limits.Target | None):
        """Pages of {changes: [(id, hash of old text, new text)], broken: [id], kept: [id]} in key order."""
        for rows in _raw_pages(ctx, table, column):
            yield _rewrite_page(column, rows, capacity)

    def write(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        for column, (count, ids) in work.data.get("kept", {}).items():
            ctx.notice(self.name, f"{column}: m@p values that would not fit the column as m@default@p stay two-part "
                       "(RAGFlow v0.27.0 reads m@p as the instance 'default'; stage 7 resolves them the same way)",
                       count=count, sample=ids)
        rows_to_rewrite = sum(work.data["string_rows"].values())
        progress = ctx.progress(self.name, rows_to_rewrite or None, unit="rows")
        pages = []
        for table, columns in self._string_tables(meta).items():
            columns = [c for c in columns if work.data["string_counts"].get(f"{table}.{c}")]
            if columns:
                columns = [(c, meta.max_length(table, c)) for c in columns]
                pages += [(table, columns, after, upto)
                          for after, upto in sqlkit.key_ranges(ctx.conn, table, "id", self.batch(ctx))]
        states: list[dict[str, Any]] = []

        def setup(lane: RunContext, _i: int) -> dict[str, Any]:
            states.append({"ctx": lane, "changed": 0})
            return states[-1]

        lanes.run(ctx, self.name, pages, setup=setup, work=self._rewrite_strings,
                  progress=lambda _pages: progress.advance(sum(s["changed"] for s in states) - progress.done))
        string_rows = sum(s["changed"] for s in states)
        progress.advance(string_rows - progress.done)
        if rows_to_rewrite:
            progress.emit()
        # the JSON pass is counted on its own: how many values change is only known as it reads them
        progress = ctx.progress(self.name, None, unit="JSON values")
        json_changes = 0
        broken: list[str] = []
        writer = _JsonWriter(self.name)
        pairs = [(t, c, meta.collation(t, "id")) for t, c in self._pairs(meta, JSON_COLUMNS)]
        capacities = {(t, c): _capacity(meta, t, c) for t, c, _coll in pairs}
        too_long: list[str] = []
        others = lanes.helpers(ctx)

        def read(lane: RunContext):
            for table, column, coll in pairs:
                for rows in _raw_pages(lane, table, column):
                    yield table, column, coll, rows

        with lanes.write_behind(ctx, self.name, writer.setup, writer.write, own_session=others >= 1) as submit, \
                lanes.read_ahead(ctx, self.name, read, own_session=others >= 2) as raw:
            for table, column, coll, rows in raw:
                page = _rewrite_page(column, rows, capacities[(table, column)])
                broken.extend(f"{table}.{column} id={i}" for i in page["broken"])
                too_long.extend(f"{table}.{column} id={i}" for i in page["kept"])
                if page["changes"]:
                    json_changes += len(page["changes"])
                    submit((table, column, coll, page["changes"]))
                    progress.advance(len(page["changes"]))
        work.counts["json_values_to_rewrite"] = json_changes
        work.counts["json_values_unparsable"] = len(broken)
        if broken:
            ctx.notice(self.name, "JSON values that do not parse were left unchanged", count=len(broken),
                       sample=broken[:10])
        if too_long:
            ctx.notice(self.name, "JSON values that would not fit their column once rewritten keep their m@p "
                       "references (RAGFlow v0.27.0 reads m@p as the instance 'default')", count=len(too_long),
                       sample=too_long[:10])
        if writer.stale:
            ctx.notice(self.name, "JSON values changed by someone else while being rewritten were left for the "
                       "next run", count=writer.stale)
        progress.emit()
        return StepResult(rows=string_rows + json_changes, changes=string_rows + writer.changed,
                          details={"string_rows_rewritten": string_rows,
                                   "json_values_rewritten": json_changes - writer.stale, "stale": writer.stale})

    def _rewrite_strings(self, lane: dict[str, Any], page: tuple[str, list[tuple[str, int | None]], Any, Any]
                         ) -> None:
        """One range of primary keys of one table: every column of a row in one write (a tenant's seven
        ids: one row version, not seven). A value whose rewrite would not fit stays as it is."""
        ctx, (table, columns, after, upto) = lane["ctx"], page
        sets = ", ".join(render("{c} = IF(", c=c) + _rewritable(c, limit) + ", " + render(_REWRITE, c=c)
                         + render(", {c})", c=c) for c, limit in columns)
        rng, args = sqlkit.range_condition("`id`", after, upto)
        sql = (render("UPDATE {t} SET ", t=table) + sets + " WHERE " + rng + " AND ("
               + " OR ".join("(" + _rewritable(c, limit) + ")" for c, limit in columns) + ")")
        with sqlkit.transaction(ctx.conn):
            lane["changed"] += sqlkit.logged(ctx, self.name, sql, (*TWO_PARTS_ARGS * len(columns), *args,
                                                                   *TWO_PARTS_ARGS * len(columns)))

    def cleanup(self, ctx: RunContext) -> None:
        sqlkit.drop_temp(ctx.conn, STAGE_JSON)


class _JsonWriter:
    """Applies a page of rewritten JSON values: staged in ``rm_json``, then one UPDATE … JOIN that
    overwrites a row only while it still holds what was read (same SHA-256)."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.changed = self.stale = 0

    def setup(self, ctx: RunContext) -> RunContext:
        sqlkit.temp_table(ctx.conn, STAGE_JSON, _JSON_BODY)
        return ctx

    def write(self, ctx: RunContext, item: tuple[str, str, sqlkit.Raw, list[tuple[Any, str, str]]]) -> None:
        table, column, coll, changes = item
        sqlkit.clear_temp(ctx.conn, STAGE_JSON)
        with sqlkit.transaction(ctx.conn):
            sqlkit.insert_rows(ctx.conn, STAGE_JSON, ("id", "old_hash", "value"), changes)
            n = sqlkit.logged(ctx, self.step, render(
                "UPDATE {s} j STRAIGHT_JOIN {t} x ON x.`id` = j.`id` {coll} SET x.{c} = j.`value` "
                "WHERE SHA2(x.{c}, 256) = j.`old_hash`", t=table, s=STAGE_JSON, c=column, coll=coll))
        self.changed += n
        self.stale += len(changes) - n


def _raw_pages(ctx: RunContext, table: str, column: str):
    """The rows of ``table`` whose ``column`` may hold a model id (``%@%``), ``JSON_PAGE`` at a time in
    primary-key order: lists of (id, text)."""
    conn = ctx.conn
    last = None
    base = render("SELECT `id`, {c} FROM {t} WHERE {c} LIKE %s", t=table, c=column)
    while True:
        sql = base + (" AND `id` > %s" if last is not None else "") + " ORDER BY `id` LIMIT %s"
        rows = sqlkit.query(conn, sql, ("%@%",) + ((last,) if last is not None else ()) + (JSON_PAGE,))
        if not rows:
            return
        yield rows
        last = rows[-1][0]
        ctx.checkpoint()


def _rewrite_page(column: str, rows: list[tuple[Any, Any]], capacity: limits.Target | None = None
                  ) -> dict[str, list]:
    """{changes: [(id, hash of old text, new text)], broken: [id], kept: [id]} of one page of rows
    (``kept``: the rewritten text would not fit the column, so the value is left as it is)."""
    changes, broken, kept = [], [], []
    for row_id, raw in rows:
        if raw in (None, ""):
            continue
        try:
            value = json.loads(raw)
        except (ValueError, RecursionError):
            broken.append(row_id)
            continue
        new, changed = canonical.rewrite_config(value, (column,))
        if changed:
            text = canonical.dump_config(new)
            if capacity is not None and not capacity.fits(len(text), len(text.encode("utf-8"))):
                kept.append(row_id)
                continue
            changes.append((row_id, _sha256(raw), text))
    return {"changes": changes, "broken": broken, "kept": kept}


def _capacity(meta: Meta, table: str, column: str) -> limits.Target | None:
    info = meta.column(table, column)
    return limits.of_type(table, column, info.column_type) if info else None


def _rewritable(column: str, limit: int | None) -> str:
    """The value is ``m@p`` and ``m@default@p`` fits the column (parameters: :data:`TWO_PARTS_ARGS`)."""
    cond = render(_TWO_PARTS, c=column)
    if limit is None:
        return cond
    return f"{cond} AND CHAR_LENGTH({render(_REWRITE, c=column)}) <= {int(limit)}"


def _any_two_parts(columns: list[str]) -> str:
    """Any of the columns holds an ``m@p`` to rewrite (its parameters: :data:`TWO_PARTS_ARGS` per column)."""
    return " OR ".join("(" + render(_TWO_PARTS, c=c) + ")" for c in columns)


def _sha256(text: Any) -> str:
    """The hash SQL's SHA2(value, 256) gives (MySQL 9.7 has no MD5() any more)."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return hashlib.sha256(data).hexdigest()
