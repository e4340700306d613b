"""Stage 7, ``tenant_model_id_migration``: fill the ``tenant_*_id`` columns with model ids (§3.7).

DDL first (idempotent, from the live schema): each of the 12 target columns that is missing is
added as ``VARCHAR(32) NULL`` with its v0.27.0 index (``tenant.tenant_ocr_id`` always is, at
its fresh position), and each INT one becomes ``VARCHAR(32) NULL`` with its index. Old INT values
(legacy ``tenant_llm.id``) are re-resolved, so an INT column none of whose values would survive
(every row with a value has a legacy name) is dropped and added again at its place: instant,
where a ``MODIFY`` copies the whole table (55 s for 200k knowledge bases at L). A column with a
value whose legacy name is empty keeps it: ``MODIFY``, as RAGFlow's startup would. Per table,
in order: drop the indexes of the replaced columns, replace and add columns, modify, add indexes;
each statement is planned again from the live schema, so a stop between them just carries on.

Then every row whose legacy value is non-empty and whose target is NULL, ``''`` or not 32
characters long is resolved, a page at a time (:mod:`..resolve`), and written with one
``UPDATE … JOIN`` per page and table. Unresolvable values become ``''`` (KEEP), and each
reason is reported with a count and samples (acceptance §6.5). Ids never point into another
tenant: providers are looked up by the row's own tenant.
"""

from __future__ import annotations

from typing import NamedTuple

from ...steps import RunContext, StepResult
from .. import lanes, resolve, sqlkit, staging
from ..references import TARGETS, ReferenceReader
from ..resolve import Resolver
from ..sqlkit import Meta, render
from .base import DataStage, Work

RESULT = "rm_ids"
_RESULT_BODY = """
  `tbl` VARCHAR(64) NOT NULL,
  `id` VARCHAR(64) NOT NULL,
  `col` VARCHAR(64) NOT NULL,
  `value` VARCHAR(32) NOT NULL,
  PRIMARY KEY (`tbl`, `col`, `id`)
"""


class IdMigrationStage(DataStage):
    stage = "tenant_model_id_migration"
    gate = "v0.27.0"
    description = "tenant_*_id columns (VARCHAR(32)) filled with tenant_model ids resolved from the legacy names"
    requires = ("tenant_model_provider", "tenant_model_instance", "tenant_model")

    # -- DDL ------------------------------------------------------------------------------------

    def ddl_plan(self, meta: Meta, *, check_values: bool = True) -> dict[str, list[Alter]]:
        """table → the ALTER statements still needed, in order (none when the columns are as v0.27.0
        has them). ``check_values=False`` (the probe) skips the read that picks replace vs MODIFY."""
        plan: dict[str, list[Alter]] = {}
        for table, targets in TARGETS.items():
            if not meta.has_table(table):
                continue
            cols = meta.columns(table)
            names = list(cols)
            q = sqlkit.dialect.quote
            drop_indexes: list[str] = []
            replace: list[str] = []
            modify: list[str] = []
            add_index: list[str] = []
            replaced = self._replaceable(meta, table) if check_values else set()
            for target, legacy, _bit in targets:
                info = cols.get(target)
                index = f"ADD INDEX {q(table + '_' + target)} ({q(target)})"
                if info is None:
                    after = f" AFTER {q(legacy)}" if legacy in cols else ""
                    replace.append(f"ADD COLUMN {q(target)} VARCHAR(32) NULL{after}")
                    add_index.append(index)
                    continue
                if target in replaced:
                    # nothing in it is kept (every value is resolved again): an instant swap, not a copy
                    at = names.index(target)
                    place = f"AFTER {q(names[at - 1])}" if at else "FIRST"
                    drop_indexes += [f"DROP INDEX {q(name)}" for name in _indexes_on(meta, table, target)]
                    replace += [f"DROP COLUMN {q(target)}", f"ADD COLUMN {q(target)} VARCHAR(32) NULL {place}"]
                    add_index.append(index)
                    continue
                if meta.is_int(table, target) or info.data_type != "varchar" or info.max_length != 32 \
                        or not info.nullable:
                    modify.append(f"MODIFY {q(target)} VARCHAR(32) NULL")
                if not _indexed(meta, table, target):  # RAGFlow's startup would add it; so do we
                    add_index.append(index)
            statements = [Alter(table, clauses, kind) for clauses, kind in (
                (drop_indexes, "drop_index"), (replace, "add_column"), (modify, None), (add_index, "add_index"))
                if clauses]
            if statements:
                plan[table] = statements
        return plan

    def _replaceable(self, meta: Meta, table: str) -> set[str]:
        """The INT target columns that can be dropped and added again as VARCHAR(32) instead of a
        MODIFY (a copy of the whole table): those whose every value is resolved again anyway, i.e. no
        row has a value there with an empty legacy name. One read per table, while they are INT."""
        cols = meta.columns(table)
        out = set()
        for target, legacy, _bit in TARGETS[table]:
            if target not in cols or legacy not in cols or not meta.is_int(table, target):
                continue
            kept = sqlkit.scalar(meta.conn, render(
                "SELECT 1 FROM {t} WHERE {v} IS NOT NULL AND ({l} IS NULL OR {l} = '') LIMIT 1",
                t=table, v=target, l=legacy))
            if kept is None:
                out.add(target)
        return out

    def _apply_ddl(self, ctx: RunContext, meta: Meta, plan: dict[str, list[Alter]]) -> int:
        from ...schema.executor import execute_statement
        from ...schema.operations import Statement

        for table, statements in plan.items():
            for alter in statements:
                ctx.checkpoint()
                execute_statement(ctx, self.name, Statement(sql=alter.sql, table=table, algorithm_for=alter.kind))
        meta.forget()
        return len(plan)

    # -- analyse / write ------------------------------------------------------------------------

    def _pairs(self, meta: Meta, table: str) -> list[tuple[str, str, int]]:
        cols = meta.columns(table)
        return [(t, legacy, bit) for t, legacy, bit in TARGETS[table] if legacy in cols]

    def analyse(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        plan = self.ddl_plan(meta)
        work.data["ddl"] = plan
        for statements in plan.values():
            work.notes += [alter.sql for alter in statements]
        work.counts["tables_to_alter"] = len(plan)
        staging.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
        staging.attach_providers(ctx, self.name, meta)
        staging.build_instances(ctx, self.name, meta, batch=self.batch(ctx))
        if work.executing:
            return  # the references are read after the DDL, in write()
        if not meta.is_int("tenant_model", "model_type"):
            work.notes.append("tenant_model is not merged yet: references are resolved against its unmerged rows; "
                              "after the merge the same names resolve to the merged rows")
        resolver = Resolver(ctx, meta, fallback=bool(ctx.extras.get("data.cross_provider_fallback")))
        total = resolved = 0
        for page in ReferenceReader(ctx, meta).pages():
            results = resolver.resolve(page)
            total += len(results)
            resolved += sum(1 for r in results if r[3])
            for table, row_id, col, value in results[: max(0, 5 - len(work.samples))]:
                work.samples.append({"table": table, "id": row_id, "column": col, "value": value})
        work.counts["references_to_resolve"] = total
        work.counts["references_resolved"] = resolved
        work.counts["references_unresolvable"] = total - resolved
        work.notes += resolver.summary()

    def write(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        altered = self._apply_ddl(ctx, meta, work.data["ddl"])
        resolver = Resolver(ctx, meta, fallback=bool(ctx.extras.get("data.cross_provider_fallback")))
        progress = ctx.progress(self.name, None, unit="references")
        total = resolved = 0
        colls = {t: meta.collation(t, "id") for t in TARGETS if meta.has_table(t)}
        # The work connection resolves (it holds the staged legacy rows); the references are read
        # ahead, and the ids written behind, on sessions of their own when there are (lanes).
        writer, others = _Writer(self.name, colls), lanes.helpers(ctx)
        with lanes.write_behind(ctx, self.name, writer.setup, writer.write, own_session=others >= 1) as submit, \
                lanes.read_ahead(ctx, self.name, lambda lane: ReferenceReader(lane, Meta(lane.conn)).pages(),
                                 own_session=others >= 2) as pages:
            for page in pages:
                results = resolver.resolve(page)
                if not results:
                    continue
                total += len(results)
                resolved += sum(1 for r in results if r[3])
                submit(results)
                progress.advance(len(results))
        progress.emit()
        work.counts["references_to_resolve"] = total
        work.counts["references_resolved"] = resolved
        work.counts["references_unresolvable"] = total - resolved
        for message, count, sample in resolver.notices():
            ctx.notice(self.name, message, count=count, sample=sample)
        return StepResult(rows=total, changes=writer.changed + altered,
                          details={"tables_altered": altered, "resolved": resolved, "unresolvable": total - resolved})

    def cleanup(self, ctx: RunContext) -> None:
        super().cleanup(ctx)
        sqlkit.drop_temp(ctx.conn, RESULT, resolve.W_PROV, resolve.W_MODEL, resolve.W_INST)

    def probe(self, ctx: RunContext, meta: Meta) -> bool:
        """The columns are not yet as v0.27.0 has them (missing, INT; tenant_ocr_id never added by RAGFlow)."""
        return bool(self.ddl_plan(meta, check_values=False))


def _update_sql(table: str, columns: list[str], coll: sqlkit.Raw) -> tuple[str, tuple[str, ...]]:
    """One UPDATE per table and page, all its columns at once (``rm_ids`` pivoted to a row per id):
    a tenant's seven columns are one row write, not seven. Returns the statement and its parameters."""
    picks = ", ".join(f"MAX(IF(`col` = %s, `value`, NULL)) AS `v{i}`" for i in range(len(columns)))
    sets, differs = [], []
    for i, column in enumerate(columns):
        q = sqlkit.dialect.quote(column)
        sets.append(f"x.{q} = COALESCE(r.`v{i}`, x.{q})")
        differs.append(f"(r.`v{i}` IS NOT NULL AND NOT (x.{q} <=> r.`v{i}`))")
    sql = (render("UPDATE (SELECT `id`, ", t=table) + picks + render(" FROM {r} WHERE `tbl` = %s GROUP BY `id`) r "
           "STRAIGHT_JOIN {t} x ON x.`id` = r.`id` {coll} SET ", r=RESULT, t=table, coll=coll)
           + ", ".join(sets) + " WHERE " + " OR ".join(differs))
    return sql, (*columns, table)


class _Writer:
    """Writes a page of resolved references: staged in ``rm_ids``, then one UPDATE per table."""

    def __init__(self, step: str, colls: dict[str, sqlkit.Raw]) -> None:
        self.step, self.colls = step, colls
        self.changed = 0

    def setup(self, ctx: RunContext) -> RunContext:
        sqlkit.temp_table(ctx.conn, RESULT, _RESULT_BODY)
        return ctx

    def write(self, ctx: RunContext, results: list[tuple]) -> None:
        conn = ctx.conn
        sqlkit.clear_temp(conn, RESULT)
        with sqlkit.transaction(conn):
            sqlkit.insert_rows(conn, RESULT, ("tbl", "id", "col", "value"), results)
            for table in sorted({r[0] for r in results}):
                columns = sorted({r[2] for r in results if r[0] == table})
                sql, args = _update_sql(table, columns, self.colls[table])
                self.changed += sqlkit.logged(ctx, self.step, sql, args)


class Alter(NamedTuple):
    """One ALTER TABLE of the DDL plan; ``kind`` lets the executor pick INSTANT/INPLACE/COPY."""

    table: str
    clauses: list[str]
    kind: str | None

    @property
    def sql(self) -> str:
        return render("ALTER TABLE {t} ", t=self.table) + ", ".join(self.clauses)


def _indexes_on(meta: Meta, table: str, column: str) -> list[str]:
    """Names of the indexes that hold ``column`` (dropped before the column is)."""
    rows = sqlkit.query(meta.conn, "SELECT DISTINCT index_name FROM information_schema.statistics "
                        "WHERE table_schema = DATABASE() AND table_name = %s AND column_name = %s "
                        "ORDER BY index_name", (table, column))
    return [str(r[0]) for r in rows]


def _indexed(meta: Meta, table: str, column: str) -> bool:
    """Whether an index starts with ``column`` (any name: RAGFlow's upgrade path names some differently)."""
    rows = sqlkit.query(meta.conn, "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() "
                        "AND table_name = %s AND column_name = %s AND seq_in_index = 1 LIMIT 1", (table, column))
    return bool(rows)
