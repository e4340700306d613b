"""Stage 6, ``model_type_merge``: one row per model, ``model_type`` as bits, swapped atomically (§3.6).

Rows of one ``(provider, instance, model_name)`` (names compared byte for byte) become one row:
type = OR of the bits of its rows that are not ``unsupported``, minus the bits of those that
are; status = the first non-``unsupported`` status in id order. Only **active** groups with a
known type are kept (KEEP; CHOICE: a type-0 group is dropped, the app could never select it).
The kept row keeps the **id of the group's first row** (FIX D25: ids written earlier, and
``tenant_model_group_mapping.model_id``, stay valid; the mapping is remapped for the other rows;
a row already in ``tenant_model`` comes before the rows seeding adds in the same pass), its times
(``*_date`` recomputed from ``*_time``), its ``extra`` (``{}`` if that is not a JSON object), and
a NULL name stays NULL.

The swap (FIX D1, D2, D3):

1. a new table is created with v0.27.0's own definition, INT ``model_type``, in the collation of
   ``tenant_model_provider`` (so stage 7's joins never fail with 1267); our own leftover from an
   interrupted run is dropped first, and so is RAGFlow's scratch ``tenant_model_merge_tmp``;
2. it is filled a page of instances at a time, with its primary key only; the other indexes are
   then built in one ALTER (a sorted build, not row by row). Each page also gets the catalogue
   models seeding adds to its instances (:mod:`.seed_merge`): while ``model_type`` is VARCHAR the
   merge does stage 5's writing too, so seeded rows are written once, merged;
3. the counts are verified, and ``tenant_model`` must not have changed meanwhile;
4. ``RENAME TABLE tenant_model TO ragflow_migrate_bak_tenant_model_<UTC>, new TO tenant_model``:
   one atomic statement; no backup is ever dropped, and a missing ``tenant_model`` is an error.

When ``model_type`` is already INT the merge has happened (ours, RAGFlow's, or none needed);
the stage then repairs what is still wrong: a table of another collation or definition (RAGFlow's
merge, D1) is rebuilt the same way, and rows RAGFlow's v0.27 run left unmerged (D4: type 0,
disabled models of the legacy data) are removed.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ...errors import StepFailedError
from ...schema import toi
from ...steps import RunContext, StepResult
from .. import ddl, limits, sqlkit, staging
from ..sqlkit import Meta, render
from . import seed_merge
from .base import DataStage, Work
from .seed_merge import SeedMerge

NEW_TABLE = "ragflow_migrate_tmp_tenant_model"
BACKUP_PREFIX = "ragflow_migrate_bak_"
RAGFLOW_TMP = "tenant_model_merge_tmp"
RAGFLOW_BACKUP = "tenant_model_backup"

def _widened_types(meta: Meta) -> dict[str, str]:
    """The live ``tenant_model`` columns wider than v0.27.0 declares them (``--widen-columns``): the
    rebuilt table keeps them, so no value that fitted before stops fitting."""
    out = {}
    for column, declared in ddl.MODEL_WIDENABLE.items():
        info = meta.column("tenant_model", column)
        if info is None:
            continue
        live, want = limits.of_type("tenant_model", column, info.column_type), limits.of_type("", "", declared)
        if live.bytes is not None or (live.chars or 0) > (want.chars or 0):
            out[column] = info.column_type
    return out


class MergeStage(DataStage):
    stage = "model_type_merge"
    gate = "v0.27.0"
    description = "one tenant_model row per (provider, instance, model), model_type as a bitmask (atomic swap)"
    requires = ("tenant_model",)
    catalog_input = "tenant_model_instance"  # the catalogue seeds the instances in the same pass

    # -- analyse ------------------------------------------------------------------------------

    def analyse(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        conn = ctx.conn
        int_mode = meta.is_int("tenant_model", "model_type")
        work.data["int_mode"] = int_mode
        target_collation = meta.table_collation("tenant_model_provider") or meta.table_collation("tenant_model")
        work.data["collation"] = target_collation
        work.counts["rows_before"] = int(sqlkit.scalar(conn, "SELECT COUNT(*) FROM `tenant_model`") or 0)
        for leftover in (NEW_TABLE, RAGFLOW_TMP):
            if meta.has_table(leftover):
                work.notes.append(f"leftover table {leftover} of an interrupted merge will be dropped and rebuilt")
        if meta.has_table(RAGFLOW_BACKUP):
            work.notes.append(f"{RAGFLOW_BACKUP} (RAGFlow's own merge backup) is kept as it is")
        if not int_mode:
            # the dry run counts with the same pages (session tables only); the execution writes them
            fused = SeedMerge(ctx, meta, self.name, page_rows=4 * self.batch(ctx),
                              remap=work.executing and self._has_group_mapping(ctx, meta))
            fused.prepare(self, work, existing=work.counts["rows_before"])
            work.data["fused"] = fused
            if work.executing or work.rejections:
                return
            fused.run_pages(None)
            work.counts.update(rows_after=fused.written, models_seeded=fused.seeded, groups=fused.groups,
                               groups_dropped_inactive=fused.dropped_inactive,
                               groups_dropped_type_0=fused.groups - fused.written - fused.dropped_inactive)
            work.samples = [dict(zip(("model_name", "provider_id", "instance_id", "model_type", "status", "extra",
                                      "rows_merged"), row, strict=True)) for row in fused.samples]
            return
        # INT: the merge has happened; find what is still wrong.
        found = ddl.deviations(ctx, meta, "tenant_model", target_collation)
        work.data["rebuild"] = found
        if found:
            work.notes.append("tenant_model is rebuilt as v0.27.0 defines it: " + "; ".join(found))
        work.counts["zero_type_rows_to_remove"] = int(sqlkit.scalar(
            conn, "SELECT COUNT(*) FROM `tenant_model` WHERE `model_type` = 0") or 0)
        work.counts["disabled_legacy_rows_to_remove"] = 0
        if meta.has_table("tenant_llm") and meta.has_table("tenant_model_instance"):
            staging.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
            staging.attach_providers(ctx, self.name, meta)
            staging.build_instances(ctx, self.name, meta, batch=self.batch(ctx))
            work.counts["disabled_legacy_rows_to_remove"] = int(sqlkit.scalar(
                conn, "SELECT COUNT(*) FROM (" + self._disabled_ids_sql(meta) + ") d") or 0)
        work.counts["rows_after"] = (work.counts["rows_before"] - work.counts["zero_type_rows_to_remove"]
                                     - work.counts["disabled_legacy_rows_to_remove"])

    def _disabled_ids_sql(self, meta: Meta) -> str:
        """Rows of models the legacy data disabled, still present after an unmerged v0.27 run (D4)."""
        return render(
            "SELECT DISTINCT m.`id` FROM `tenant_model` m JOIN {inst} i ON i.`id` = m.`instance_id` COLLATE utf8mb4_bin "
            "JOIN {llm} l ON l.`provider_id` = i.`provider_id` AND l.`ikey` = i.`ikey` "
            "AND l.`llm_name` = m.`model_name` {cn} WHERE m.`status` <> 'active' AND l.`valid` = 0 "
            "AND m.`model_type` <> 0",
            inst=staging.INST, llm=staging.LLM, cn=meta.collation("tenant_model", "model_name"))

    # -- write --------------------------------------------------------------------------------

    def write(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        if work.data["int_mode"]:
            return self._repair(ctx, meta, work)
        fused: SeedMerge = work.data["fused"]
        kept = self._build(ctx, meta, work, fused)
        remapped = self._remap_group_mapping(ctx, meta, fused) if fused.remap else 0
        backup = self._swap(ctx, meta)
        return StepResult(rows=work.counts["rows_before"], changes=work.counts["rows_before"] + fused.seeded,
                          details={"rows_after": kept, "models_seeded": fused.seeded, "backup": backup,
                                   "group_mapping_remapped": remapped})

    def _build(self, ctx: RunContext, meta: Meta, work: Work, fused: SeedMerge) -> int:
        """Create the new table and fill it, page by page, with the merged rows of tenant_model and of
        the models seeding adds (:mod:`.seed_merge`); returns its row count."""
        conn = ctx.conn
        before = self._new_table(ctx, meta, work)
        progress = ctx.progress(self.name, fused.driver, unit="instances")
        fused.run_pages(NEW_TABLE, lambda pages: progress.advance(
            max(0, min(fused.driver, pages * fused.page_instances) - progress.done)))
        progress.emit()
        fused.count_split_seeded()
        self._add_indexes(ctx)
        count = int(sqlkit.scalar(conn, render("SELECT COUNT(*) FROM {t}", t=NEW_TABLE)) or 0)
        if count != fused.written:
            raise StepFailedError(f"{self.name}: the new table holds {count} rows but {fused.written} were written; "
                                  "tenant_model is unchanged",
                                  hint="was tenant_model written to during the merge? stop RAGFlow and run again")
        after = self._fingerprint(ctx)
        if after != before or fused.read != int(before[0] or 0):
            raise StepFailedError(f"{self.name}: tenant_model changed while it was being merged (or {fused.read} of "
                                  f"its {before[0]} rows were read); it is unchanged",
                                  hint="stop the RAGFlow pods that write to it, then run again")
        work.counts["rows_after"] = count
        work.counts["models_seeded"] = fused.seeded
        return count

    def _add_indexes(self, ctx: RunContext) -> None:
        """The secondary indexes, built once the rows are in (faster than maintaining them row by row).
        On Galera (TOI) the table was created with them: an index build there holds every node."""
        if not toi.on_toi(ctx.server):
            sqlkit.logged(ctx, self.name, ddl.model_indexes(NEW_TABLE, int_type=True), level="info")

    def _new_table(self, ctx: RunContext, meta: Meta, work: Work) -> tuple:
        """Drop leftovers of an interrupted merge (ours or RAGFlow's), create the new table with its
        primary key only (with all its keys on Galera), and return tenant_model's fingerprint from
        before the copy."""
        for leftover in (NEW_TABLE, RAGFLOW_TMP):
            if meta.has_table(leftover):
                sqlkit.logged(ctx, self.name, render("DROP TABLE {t}", t=leftover), level="info")
        before = self._fingerprint(ctx)
        sqlkit.logged(ctx, self.name, ddl.model_table(NEW_TABLE, work.data["collation"], int_type=True,
                                                      indexes=toi.on_toi(ctx.server), widened=_widened_types(meta)),
                      level="info")
        return before

    def _fingerprint(self, ctx: RunContext) -> tuple:
        return tuple(sqlkit.query(ctx.conn, "SELECT COUNT(*), MAX(`update_time`), MAX(`id`) FROM `tenant_model`")[0])

    @staticmethod
    def _has_group_mapping(ctx: RunContext, meta: Meta) -> bool:
        return meta.has_table("tenant_model_group_mapping") and bool(
            sqlkit.scalar(ctx.conn, "SELECT 1 FROM `tenant_model_group_mapping` LIMIT 1"))

    def _remap_group_mapping(self, ctx: RunContext, meta: Meta, fused: SeedMerge) -> int:
        """Point tenant_model_group_mapping rows at the row their model was merged into (FIX D25)."""
        c = meta.collation("tenant_model", "id")
        remap = fused.remapped_sql()
        with sqlkit.transaction(ctx.conn):
            moved = sqlkit.logged(ctx, self.name, render(
                "INSERT INTO `tenant_model_group_mapping` (`create_time`, `create_date`, `update_time`, "
                "`update_date`, `group_id`, `provider_id`, `instance_id`, `model_id`, `weight`, `status`) "
                "SELECT g.`create_time`, g.`create_date`, g.`update_time`, g.`update_date`, g.`group_id`, "
                "g.`provider_id`, g.`instance_id`, r.`new_id`, g.`weight`, g.`status` "
                "FROM `tenant_model_group_mapping` g JOIN (" + remap + ") r ON r.`old_id` = g.`model_id` {c} "
                "WHERE NOT EXISTS (SELECT 1 FROM `tenant_model_group_mapping` h "
                "WHERE h.`group_id` = g.`group_id` AND h.`provider_id` = g.`provider_id` "
                "AND h.`instance_id` = g.`instance_id` AND h.`model_id` = r.`new_id` {c})", c=c))
            sqlkit.logged(ctx, self.name, render(
                "DELETE g FROM `tenant_model_group_mapping` g JOIN (" + remap + ") r ON r.`old_id` = g.`model_id` {c}",
                c=c))
        return moved

    def _swap(self, ctx: RunContext, meta: Meta) -> str | None:
        backup = self._backup_name(meta)
        ctx.checkpoint()
        sqlkit.logged(ctx, self.name, render("RENAME TABLE `tenant_model` TO {b}, {n} TO `tenant_model`",
                                             b=backup, n=NEW_TABLE), level="info")
        meta.forget()
        if not sqlkit.scalar(ctx.conn, render("SELECT 1 FROM {b} LIMIT 1", b=backup)):
            # An empty table keeps nothing worth a backup (a fresh install, no models yet).
            sqlkit.logged(ctx, self.name, render("DROP TABLE {b}", b=backup), level="info")
            return None
        ctx.notice(self.name, f"tenant_model swapped; the previous table is kept as {backup}", count=1)
        return backup

    def _backup_name(self, meta: Meta) -> str:
        now = int(time.time())
        while True:
            stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%Y%m%d%H%M%S")
            name = f"{BACKUP_PREFIX}tenant_model_{stamp}"
            if not meta.has_table(name):
                return name
            now += 1

    def _repair(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        conn = ctx.conn
        removed = 0
        if work.counts.get("disabled_legacy_rows_to_remove"):
            with sqlkit.transaction(conn):
                removed += sqlkit.logged(ctx, self.name, render(
                    "DELETE t FROM `tenant_model` t JOIN (" + self._disabled_ids_sql(meta) + ") d "
                    "ON d.`id` = t.`id`"))
        if work.counts.get("zero_type_rows_to_remove"):
            with sqlkit.transaction(conn):
                removed += sqlkit.logged(ctx, self.name, "DELETE FROM `tenant_model` WHERE `model_type` = 0")
        backup = None
        if work.data.get("rebuild"):
            work.counts["rows_after"] = int(sqlkit.scalar(conn, "SELECT COUNT(*) FROM `tenant_model`") or 0)
            work.counts["rows_before"] = work.counts["rows_after"]
            self._copy(ctx, meta, work)
            backup = self._swap(ctx, meta)
        return StepResult(rows=work.counts["rows_before"], changes=removed + (1 if backup else 0),
                          details={"rows_removed": removed, "rebuilt": bool(backup), "backup": backup})

    def _copy(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        """Rebuild an INT tenant_model as-is (rows unchanged) in the right definition (D1)."""
        conn = ctx.conn
        before = self._new_table(ctx, meta, work)
        cols = "`id`, `create_time`, `create_date`, `update_time`, `update_date`, `model_name`, `provider_id`, " \
               "`instance_id`, `model_type`, `status`, `extra`"
        for after, upto in sqlkit.key_ranges(conn, "tenant_model", "id", self.batch(ctx)):
            cond, args = sqlkit.range_condition("`id`", after, upto)
            with sqlkit.transaction(conn):
                sqlkit.logged(ctx, self.name, render("INSERT INTO {n} (", n=NEW_TABLE) + cols + ") SELECT " + cols
                              + " FROM `tenant_model` WHERE " + cond, args)
            ctx.checkpoint()
        self._add_indexes(ctx)
        count = int(sqlkit.scalar(conn, render("SELECT COUNT(*) FROM {t}", t=NEW_TABLE)) or 0)
        if count != work.counts["rows_after"] or self._fingerprint(ctx) != before:
            raise StepFailedError(f"{self.name}: tenant_model changed while it was being rebuilt; it is unchanged",
                                  hint="stop the RAGFlow pods that write to it, then run again")

    def cleanup(self, ctx: RunContext) -> None:
        super().cleanup(ctx)
        sqlkit.drop_temp(ctx.conn, *seed_merge.TABLES)

    def _ready(self, meta: Meta, work: Work, *, strict: bool = False) -> bool:
        if not meta.has_table("tenant_model") and (meta.has_table(RAGFLOW_BACKUP) or meta.has_table(RAGFLOW_TMP)):
            message = (f"tenant_model is missing while {RAGFLOW_BACKUP}/{RAGFLOW_TMP} exist: RAGFlow's own merge "
                       "was interrupted between its renames (D2)")
            if strict:
                raise StepFailedError(f"{self.name}: {message}; nothing was changed",
                                      hint=f"restore it first: RENAME TABLE {RAGFLOW_BACKUP} TO tenant_model "
                                      "(the backup holds the unmerged rows), then run again")
            work.notes.append(message)
            return False
        return super()._ready(meta, work, strict=strict)

    def probe(self, ctx: RunContext, meta: Meta) -> bool:
        """Merge still needed (VARCHAR type), or RAGFlow's merge left a table to repair (D1, D4)."""
        if not meta.has_table("tenant_model"):
            return False
        if not meta.is_int("tenant_model", "model_type"):
            return True
        target = meta.table_collation("tenant_model_provider") or meta.table_collation("tenant_model")
        if meta.table_collation("tenant_model") != target:
            return True
        names = {r[0] for r in sqlkit.query(ctx.conn, "SELECT DISTINCT index_name FROM information_schema.statistics "
                                           "WHERE table_schema = DATABASE() AND table_name = 'tenant_model'")}
        if names != set(ddl.EXPECTED_INDEXES):
            return True
        return sqlkit.scalar(ctx.conn, "SELECT 1 FROM `tenant_model` WHERE `model_type` = 0 LIMIT 1") is not None
