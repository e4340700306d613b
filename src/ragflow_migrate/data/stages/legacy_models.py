"""Stage 3, ``tenant_model``: the legacy exceptions (spec §3.3).

In v0.26 catalogue models were implicitly enabled, so ``tenant_model`` holds only what the
catalogue cannot say: models the user **disabled**, and models the user **added** (factories
with an empty catalogue list, and, CHOICE D17, any enabled model the catalogue does not list:
Azure deployments, retired models, factories gone from the catalogue).

Each row goes to the instance holding its canonical key (lookups canonicalise exactly like
stage 2, so NULL keys are found: FIX D9), named verbatim, with ``extra`` carrying ``is_tools``
from the key and the row's ``max_tokens`` (FIX D16). Idempotent on ``(provider, model_name)``.

Type column: while ``model_type`` is VARCHAR (v0.26 schema) the type string is written, as
RAGFlow does, and the merge turns it into bits. When RAGFlow's v0.27 startup already made it
INT (D4), rows are written as the merge would leave them: the bit, only active rows with a
known type (disabled models vanish in the merge anyway, KEEP), and rows RAGFlow's own run
wrote with type 0 get their bit back.
"""

from __future__ import annotations

from ...steps import RunContext, StepResult
from .. import canonical, sqlkit, staging
from ..sqlkit import Meta, Raw, render
from .base import Clock, DataStage, IdSequence, Work

SEL = "rm_sel"
CAT = "rm_catnames"

_SEL_BODY = """
  `seq` BIGINT NOT NULL PRIMARY KEY,
  `instance_id` VARCHAR(32) NULL
"""
EXIST = "rm_exist"
# The names compare as tenant_llm's columns do, so these keys serve those comparisons.
_CAT_BODY = """
  `provider_name` VARCHAR(128) {cf} NOT NULL,
  `llm_name` VARCHAR(128) {cn} NOT NULL,
  KEY `rm_catnames_k` (`provider_name`, `llm_name`)
"""
_EXIST_BODY = """
  `provider_id` VARCHAR(32) NOT NULL,
  `model_name` VARCHAR(128) {cn} NULL,
  KEY `rm_exist_k` (`provider_id`, `model_name`)
"""

# Legacy rows to migrate, each with the instance holding its identity ('default' first, then the
# lowest id), one per (provider, model name); rows already migrated are left out.
_SELECT = """
INSERT INTO {sel} (`seq`, `instance_id`)
SELECT x.`seq`, x.`inst` FROM (
  SELECT s.`seq`,
         (SELECT i.`id` FROM {inst} i WHERE i.`provider_id` = s.`provider_id` AND i.`ikey` = s.`ikey`
          ORDER BY i.`is_default` DESC, i.`id` LIMIT 1) AS `inst`,
         ROW_NUMBER() OVER (PARTITION BY s.`provider_id`, s.`llm_name` {cn} ORDER BY s.`seq`) AS dn
  FROM {llm} s
  WHERE s.`provider_id` IS NOT NULL AND ({which})
    AND NOT EXISTS (SELECT 1 FROM {exist} e WHERE e.`provider_id` = s.`provider_id`
                    AND e.`model_name` <=> s.`llm_name` {cmn})
) x WHERE x.dn = 1
"""

_NOT_CATALOG = ("NOT EXISTS (SELECT 1 FROM {cat} c WHERE c.`provider_name` = s.`llm_factory` {cf} "
                "AND c.`llm_name` = s.`llm_name` {cn})")

# D28: model rows of a hand-run v0.25 script.
_NORMALISE_D28 = """
UPDATE `tenant_model` SET
  `create_time` = IF(`create_time` < 100000000000, `create_time` * 1000, `create_time`),
  `update_time` = IF(`update_time` < 100000000000, `update_time` * 1000, `update_time`),
  `status` = IF(`status` IN ('1', 'enable'), 'active', 'inactive')
WHERE `status` IN ('0', '1', 'enable', 'disable')
"""

# D4: rows RAGFlow's own run wrote into an INT column (their type strings became 0).
_REPAIR_ZERO = """
UPDATE `tenant_model` m JOIN {llm} s ON m.`provider_id` = s.`provider_id` {cmp} AND m.`model_name` = s.`llm_name` {cmn}
SET m.`model_type` = {bit}
WHERE m.`model_type` = 0 AND {bit} <> 0
"""


class LegacyModelStage(DataStage):
    stage = "tenant_model"
    gate = "v0.26.0"
    description = "tenant_model rows for disabled models and the user's own models (the legacy exceptions)"
    requires = ("tenant_llm", "tenant_model_provider", "tenant_model_instance", "tenant_model")
    creates = ("tenant_model",)

    def analyse(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        conn = ctx.conn
        cat = self.catalog(ctx)
        int_mode = meta.is_int("tenant_model", "model_type")
        work.data["int_mode"] = int_mode
        work.counts["legacy_models_to_normalise"] = int(sqlkit.scalar(
            conn, "SELECT COUNT(*) FROM `tenant_model` WHERE `status` IN ('0', '1', 'enable', 'disable')") or 0)
        info = staging.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
        staging.attach_providers(ctx, self.name, meta)
        staging.build_instances(ctx, self.name, meta, batch=self.batch(ctx))
        cf, cn = meta.collation("tenant_llm", "llm_factory"), meta.collation("tenant_llm", "llm_name")
        sqlkit.temp_table(conn, CAT, render(_CAT_BODY, cf=cf, cn=cn))
        # (provider, model name) already in tenant_model, in any instance (tenant_model has no index for it)
        cmn = meta.collation("tenant_model", "model_name")
        sqlkit.temp_table(conn, EXIST, render(_EXIST_BODY, cn=cmn))
        sqlkit.logged(ctx, self.name, render("INSERT INTO {e} (`provider_id`, `model_name`) SELECT DISTINCT "
                                             "`provider_id`, `model_name` FROM `tenant_model`", e=EXIST))
        names = sorted({(m.factory, m.llm_name) for m in cat.models if m.factory != "siliconflow_intl"})
        for i in range(0, len(names), 1000):
            sqlkit.insert_rows(conn, CAT, ("provider_name", "llm_name"), names[i:i + 1000])

        not_catalog = render(_NOT_CATALOG, cat=CAT, cf=cf, cn=cn)
        bit = canonical.bit_case_sql("s.`model_type`")
        if int_mode:  # what the merge would keep: active rows of a known type
            which = f"s.`valid` = 1 AND {not_catalog} AND {bit} <> 0"
        else:
            which = f"s.`valid` = 0 OR {not_catalog}"
        sqlkit.temp_table(conn, SEL, _SEL_BODY)
        sqlkit.logged(ctx, self.name, render(
            _SELECT, sel=SEL, inst=staging.INST, llm=staging.LLM, which=Raw(which), cn=cn, exist=EXIST, cmn=cmn))
        work.counts["tenant_llm_rows"] = info["rows"]
        work.counts["models_to_create"] = int(sqlkit.scalar(conn, render(
            "SELECT COUNT(*) FROM {t} WHERE `instance_id` IS NOT NULL", t=SEL)) or 0)
        work.counts["rows_without_instance"] = int(sqlkit.scalar(conn, render(
            "SELECT COUNT(*) FROM {t} WHERE `instance_id` IS NULL", t=SEL)) or 0)
        if int_mode:
            work.counts["zero_type_rows_to_repair"] = int(sqlkit.scalar(conn, render(
                "SELECT COUNT(*) FROM `tenant_model` m JOIN {llm} s ON m.`provider_id` = s.`provider_id` {cmp} "
                "AND m.`model_name` = s.`llm_name` {cmn} WHERE m.`model_type` = 0 AND {bit} <> 0",
                llm=staging.LLM, cmp=meta.collation("tenant_model", "provider_id"),
                cmn=meta.collation("tenant_model", "model_name"), bit=Raw(bit))) or 0)
            work.notes.append("tenant_model.model_type is already INT (RAGFlow v0.27 started on this database): "
                              "rows are written as bits, as the merge would leave them (D4)")
        if work.counts["rows_without_instance"]:
            skipped = sqlkit.query(conn, render(
                "SELECT s.`src_id`, s.`tenant_id`, s.`llm_factory`, s.`llm_name` FROM {sel} r JOIN {llm} s "
                "ON s.`seq` = r.`seq` WHERE r.`instance_id` IS NULL ORDER BY r.`seq` LIMIT 10",
                sel=SEL, llm=staging.LLM))
            work.data["skipped_sample"] = [list(r) for r in skipped]
            work.notes.append(f"{work.counts['rows_without_instance']} legacy row(s) have no instance with their "
                              "key (stage tenant_model_instance creates them first); they are skipped")
        self._precheck(ctx, meta, work, int_mode)
        type_expr = bit if int_mode else "COALESCE(s.`model_type`, '')"
        work.samples = self.sample(ctx, render(
            "SELECT s.`tenant_id`, s.`llm_factory`, s.`llm_name`, " + type_expr + ", "
            "IF(s.`valid` = 1, 'active', 'inactive'), s.`m_extra` FROM {sel} r JOIN {llm} s ON s.`seq` = r.`seq` "
            "WHERE r.`instance_id` IS NOT NULL ORDER BY r.`seq`", sel=SEL, llm=staging.LLM),
            columns=("tenant_id", "provider_name", "model_name", "model_type", "status", "extra"))

    def _precheck(self, ctx: RunContext, meta: Meta, work: Work, int_mode: bool) -> None:
        """Values too long for their tenant_model column, counted in one pass over the selected rows."""
        checks = [("model_name", "s.`llm_name`"), ("extra", "s.`m_extra`")]
        if not int_mode:
            checks.append(("model_type", "COALESCE(s.`model_type`, '')"))
        checks = [(c, e, meta.max_length("tenant_model", c)) for c, e in checks]
        checks = [(c, e, limit) for c, e, limit in checks if limit is not None]
        if not checks:
            return
        join = render("FROM {sel} r JOIN {llm} s ON s.`seq` = r.`seq` WHERE r.`instance_id` IS NOT NULL",
                      sel=SEL, llm=staging.LLM)
        reads = ", ".join(f"COALESCE(SUM(CHAR_LENGTH({e}) > %s), 0), COALESCE(MAX(CHAR_LENGTH({e})), 0), "
                          f"COALESCE(MAX(LENGTH({e})), 0)" for _c, e, _l in checks)
        found = sqlkit.query(ctx.conn, f"SELECT {reads} {join}", tuple(limit for _c, _e, limit in checks))[0]
        for i, (column, expr, limit) in enumerate(checks):
            count, chars, nbytes = (int(v) for v in found[3 * i:3 * i + 3])
            if count:
                rows = sqlkit.query(ctx.conn, "SELECT s.`src_id`, s.`tenant_id`, s.`llm_factory`, s.`llm_name` "
                                    + join + " AND CHAR_LENGTH(" + expr + ") > %s ORDER BY r.`seq` LIMIT 20",
                                    (limit,))
                work.reject("tenant_model", column, limit, count,
                            [{"tenant_llm.id": r[0], "tenant_id": r[1], "llm_factory": r[2], "llm_name": r[3]}
                             for r in rows], needed=(chars, nbytes))

    def write(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        conn = ctx.conn
        clock, ids = Clock(), IdSequence()
        int_mode = work.data["int_mode"]
        changes = 0
        if work.counts.get("legacy_models_to_normalise"):
            with sqlkit.transaction(conn):
                changes += sqlkit.logged(ctx, self.name, _NORMALISE_D28)
        if work.data.get("skipped_sample"):
            ctx.notice(self.name, "legacy rows skipped: no instance holds their key",
                       count=work.counts["rows_without_instance"], sample=work.data["skipped_sample"])
        bit = canonical.bit_case_sql("s.`model_type`")
        if int_mode and work.counts.get("zero_type_rows_to_repair"):
            with sqlkit.transaction(conn):
                changes += sqlkit.logged(ctx, self.name, render(
                    _REPAIR_ZERO, llm=staging.LLM, bit=Raw(bit), cmp=meta.collation("tenant_model", "provider_id"),
                    cmn=meta.collation("tenant_model", "model_name")))
        type_expr = bit if int_mode else "COALESCE(s.`model_type`, '')"
        insert = render(
            "INSERT INTO `tenant_model` (`id`, `create_time`, `create_date`, `update_time`, `update_date`, "
            "`model_name`, `provider_id`, `instance_id`, `model_type`, `status`, `extra`) "
            "SELECT " + IdSequence.sql("r.`seq`") + ", %s, %s, %s, %s, s.`llm_name`, s.`provider_id`, r.`instance_id`, "
            + type_expr + ", IF(s.`valid` = 1, 'active', 'inactive'), s.`m_extra` "
            "FROM {sel} r JOIN {llm} s ON s.`seq` = r.`seq` "
            "WHERE r.`instance_id` IS NOT NULL AND r.`seq` > %s AND r.`seq` <= %s ORDER BY r.`seq`",
            sel=SEL, llm=staging.LLM)
        total = work.counts["models_to_create"]
        progress = ctx.progress(self.name, total, unit="models")
        created = 0
        for after, upto in sqlkit.key_ranges(conn, SEL, "seq", self.batch(ctx)):
            with sqlkit.transaction(conn):
                n = sqlkit.logged(ctx, self.name, insert, (*ids.args(), clock.ms, clock.date, clock.ms, clock.date,
                                                           after or 0, upto if upto is not None else 2**62))
            ids.advance(n)
            created += n
            progress.advance(n)
            ctx.checkpoint()
        if total:
            progress.emit()
        return StepResult(rows=work.counts.get("tenant_llm_rows", 0), changes=changes + created,
                          details={"models_created": created, "int_mode": int_mode})

    def cleanup(self, ctx: RunContext) -> None:
        super().cleanup(ctx)
        sqlkit.drop_temp(ctx.conn, SEL, CAT, EXIST)

    def probe(self, ctx: RunContext, meta: Meta) -> bool:
        """D4: RAGFlow's run wrote its rows into an INT column; their types became 0."""
        if not meta.has_table("tenant_model") or not meta.is_int("tenant_model", "model_type"):
            return False
        return sqlkit.scalar(ctx.conn, "SELECT 1 FROM `tenant_model` WHERE `model_type` = 0 LIMIT 1") is not None
