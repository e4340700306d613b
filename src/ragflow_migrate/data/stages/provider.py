"""Stage 1, ``tenant_model_provider``: one provider per tenant and factory (spec §3.1).

Each distinct ``(tenant_id, llm_factory)`` of ``tenant_llm``, whatever its status or key, gets a
provider named exactly like the factory (KEEP). Factories that differ only by case are one
provider (the unique key is case-insensitive); its name is the byte-wise smallest spelling, so
the result does not depend on row order. Set-based: one ``INSERT … SELECT … WHERE NOT EXISTS``
per range of tenants, idempotent on ``(tenant_id, provider_name)``.
"""

from __future__ import annotations

from ...steps import RunContext, StepResult
from .. import sqlkit
from ..sqlkit import Meta, render
from .base import Clock, DataStage, IdSequence, Work

_MISSING = """
SELECT d.`tenant_id`, d.`factory` FROM (
  SELECT l.`tenant_id`, MIN(l.`llm_factory` COLLATE utf8mb4_bin) AS `factory`
  FROM `tenant_llm` l WHERE {cond} GROUP BY l.`tenant_id`, l.`llm_factory`
) d
WHERE NOT EXISTS (SELECT 1 FROM `tenant_model_provider` p
                  WHERE p.`tenant_id` = d.`tenant_id` {ct} AND p.`provider_name` = d.`factory` {cp})
"""


class ProviderStage(DataStage):
    stage = "tenant_model_provider"
    gate = "v0.26.0"
    description = "one tenant_model_provider per (tenant, factory) of tenant_llm"
    requires = ("tenant_llm", "tenant_model_provider")
    creates = ("tenant_model_provider",)

    def _missing_sql(self, meta: Meta, cond: str = "1=1") -> str:
        return render(_MISSING, cond=sqlkit.Raw(cond), ct=meta.collation("tenant_model_provider", "tenant_id"),
                      cp=meta.collation("tenant_model_provider", "provider_name"))

    def analyse(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        sql = self._missing_sql(meta)
        work.counts["providers_to_create"] = int(sqlkit.scalar(ctx.conn, "SELECT COUNT(*) FROM (" + sql + ") x") or 0)
        work.samples = self.sample(ctx, sql + " ORDER BY 1, 2", columns=("tenant_id", "provider_name"))

    def write(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        clock, ids = Clock(), IdSequence()
        total = work.counts["providers_to_create"]
        if not total:
            return StepResult()
        progress = ctx.progress(self.name, total, unit="providers")
        created = 0
        for after, upto in sqlkit.key_ranges(ctx.conn, "tenant_llm", "tenant_id", self.batch(ctx)):
            cond, args = sqlkit.range_condition("l.`tenant_id`", after, upto)
            insert = ("INSERT INTO `tenant_model_provider` (`id`, `create_time`, `create_date`, `update_time`, "
                      "`update_date`, `provider_name`, `tenant_id`) SELECT " + IdSequence.sql("m.`tenant_id`, m.`factory`")
                      + ", %s, %s, %s, %s, m.`factory`, m.`tenant_id` FROM (" + self._missing_sql(meta, cond) + ") m")
            with sqlkit.transaction(ctx.conn):
                n = sqlkit.logged(ctx, self.name, insert,
                                  (*ids.args(), clock.ms, clock.date, clock.ms, clock.date, *args))
            ids.advance(n)
            created += n
            progress.advance(n)
            ctx.checkpoint()
        progress.emit()
        return StepResult(rows=created, changes=created, details={"providers_created": created})

    def probe(self, ctx: RunContext, meta: Meta) -> bool:
        return False
