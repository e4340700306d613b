"""Stage 7, ``tenant_model_id_migration``: fill the ``tenant_*_id`` columns with model ids (§3.7).

DDL first (idempotent, from the live schema): each of the 12 target columns that is missing is
added as ``VARCHAR(32) NULL`` with its v0.27.0 index (``tenant.tenant_ocr_id`` always is, at
its fresh position), and each INT one is changed to ``VARCHAR(32) NULL`` (its index stays).
One ALTER per table. Old INT values (legacy ``tenant_llm.id``) are then re-resolved.

Then every row whose legacy value is non-empty and whose target is NULL, ``''`` or not 32
characters long is resolved, a page at a time (:mod:`..resolve`), and written with one
``UPDATE … JOIN`` per page and table. Unresolvable values become ``''`` (KEEP), and each
reason is reported with a count and samples (acceptance §6.5). Ids never point into another
tenant: providers are looked up by the row's own tenant.
"""

from __future__ import annotations

from ...steps import RunContext, StepResult
from .. import resolve, sqlkit, staging
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

    def ddl_plan(self, meta: Meta) -> dict[str, list[str]]:
        """table → ALTER clauses still needed (empty when the columns are as v0.27.0 has them)."""
        plan: dict[str, list[str]] = {}
        for table, targets in TARGETS.items():
            if not meta.has_table(table):
                continue
            cols = meta.columns(table)
            clauses: list[str] = []
            for target, legacy, _bit in targets:
                info = cols.get(target)
                if info is None:
                    after = f" AFTER {sqlkit.dialect.quote(legacy)}" if legacy in cols else ""
                    clauses.append(f"ADD COLUMN {sqlkit.dialect.quote(target)} VARCHAR(32) NULL{after}")
                    clauses.append(f"ADD INDEX {sqlkit.dialect.quote(table + '_' + target)} "
                                   f"({sqlkit.dialect.quote(target)})")
                else:
                    if meta.is_int(table, target) or info.data_type != "varchar" or info.max_length != 32 \
                            or not info.nullable:
                        clauses.append(f"MODIFY {sqlkit.dialect.quote(target)} VARCHAR(32) NULL")
                    if not _indexed(meta, table, target):  # RAGFlow's startup would add it; so do we
                        clauses.append(f"ADD INDEX {sqlkit.dialect.quote(table + '_' + target)} "
                                       f"({sqlkit.dialect.quote(target)})")
            if clauses:
                plan[table] = clauses
        return plan

    def _apply_ddl(self, ctx: RunContext, meta: Meta, plan: dict[str, list[str]]) -> int:
        for table, clauses in plan.items():
            ctx.checkpoint()
            sql = render("ALTER TABLE {t} ", t=table) + ", ".join(clauses)
            try:
                from ...schema.executor import execute_statement
                from ...schema.operations import Statement
            except ImportError:  # pragma: no cover - the schema package ships with the tool
                sqlkit.logged(ctx, self.name, sql, level="info")
            else:
                execute_statement(ctx, self.name, Statement(sql=sql, table=table))
        meta.forget()
        return len(plan)

    # -- analyse / write ------------------------------------------------------------------------

    def _pairs(self, meta: Meta, table: str) -> list[tuple[str, str, int]]:
        cols = meta.columns(table)
        return [(t, legacy, bit) for t, legacy, bit in TARGETS[table] if legacy in cols]

    def analyse(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        plan = self.ddl_plan(meta)
        work.data["ddl"] = plan
        for table, clauses in plan.items():
            work.notes.append(f"ALTER TABLE {table} " + ", ".join(clauses))
        work.counts["tables_to_alter"] = len(plan)
        staging.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
        staging.attach_providers(ctx, meta)
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
        conn = ctx.conn
        altered = self._apply_ddl(ctx, meta, work.data["ddl"])
        resolver = Resolver(ctx, meta, fallback=bool(ctx.extras.get("data.cross_provider_fallback")))
        progress = ctx.progress(self.name, None, unit="references")
        total = resolved = changed = 0
        colls = {t: meta.collation(t, "id") for t in TARGETS if meta.has_table(t)}
        sqlkit.temp_table(conn, RESULT, _RESULT_BODY)
        for page in ReferenceReader(ctx, meta).pages():
            results = resolver.resolve(page)
            if not results:
                continue
            total += len(results)
            resolved += sum(1 for r in results if r[3])
            sqlkit.clear_temp(conn, RESULT)
            with sqlkit.transaction(conn):
                sqlkit.insert_rows(conn, RESULT, ("tbl", "id", "col", "value"), results)
                for table in sorted({r[0] for r in results}):
                    columns = sorted({r[2] for r in results if r[0] == table})
                    sql, args = _update_sql(table, columns, colls[table])
                    changed += sqlkit.logged(ctx, self.name, sql, args)
            progress.advance(len(results))
        progress.emit()
        work.counts["references_to_resolve"] = total
        work.counts["references_resolved"] = resolved
        work.counts["references_unresolvable"] = total - resolved
        for message, count, sample in resolver.notices():
            ctx.notice(self.name, message, count=count, sample=sample)
        return StepResult(rows=total, changes=changed + altered,
                          details={"tables_altered": altered, "resolved": resolved, "unresolvable": total - resolved})

    def cleanup(self, ctx: RunContext) -> None:
        super().cleanup(ctx)
        sqlkit.drop_temp(ctx.conn, RESULT, resolve.W_PROV, resolve.W_MODEL, resolve.W_INST)

    def probe(self, ctx: RunContext, meta: Meta) -> bool:
        """The columns are not yet as v0.27.0 has them (missing, INT; tenant_ocr_id never added by RAGFlow)."""
        return bool(self.ddl_plan(meta))


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


def _indexed(meta: Meta, table: str, column: str) -> bool:
    """Whether an index starts with ``column`` (any name: RAGFlow's upgrade path names some differently)."""
    rows = sqlkit.query(meta.conn, "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() "
                        "AND table_name = %s AND column_name = %s AND seq_in_index = 1 LIMIT 1", (table, column))
    return bool(rows)
