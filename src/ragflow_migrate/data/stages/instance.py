"""Stage 2, ``tenant_model_instance``: one instance per provider and canonical key (spec §3.2).

Legacy rows of one provider whose keys are the same once canonicalised (``sk-A`` and
``{"api_key": "sk-A", "is_tools": true}``; NULL and ``''``) share one instance named
``default`` (KEEP), storing the representative row's **original** key byte for byte. Rows whose
``api_base`` differs get their own instance with ``extra = {"base_url": …}`` (FIX D15).

Deterministic (D27): the representative is the row whose key has no ``is_tools``, then the
lowest ``llm_name`` (bytes), then the first row read; the instance is active when any row of
the group is valid. Idempotent on ``(provider, identity)``, matched against existing instances
by the same canonical identity (FIX D8), so RAGFlow's own rows are never duplicated.

Before that, rows a hand-run v0.25 script wrote (D28: status ``'1'``/``'0'``, instance named
after its factory, times in seconds) are normalised, so that they count as what they are.
"""

from __future__ import annotations

from ...steps import RunContext, StepResult
from .. import sqlkit, staging
from ..sqlkit import Meta, render
from .base import Clock, DataStage, IdSequence, Work

NEW = "rm_new_inst"

_NEW_BODY = """
  `n` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `provider_id` VARCHAR(32) NOT NULL,
  `ikey` BINARY(16) NOT NULL,
  `rep_seq` BIGINT NOT NULL,
  `api_key` LONGTEXT NULL,
  `extra` VARCHAR(2048) NOT NULL,
  `status` VARCHAR(16) NOT NULL,
  `members` BIGINT NOT NULL
"""

# One row per (provider, identity) without an instance yet; the representative by the rule above.
# The window sorts narrow rows only; the representative's key and extra are read afterwards
# (_GROUP_VALUES), instead of sorting 1M rows that carry a LONGTEXT key (MySQL L: 52 s → 37 + 7 s).
_GROUPS = """
INSERT INTO {new} (`provider_id`, `ikey`, `rep_seq`, `api_key`, `extra`, `status`, `members`)
SELECT g.`provider_id`, g.`ikey`, g.`seq`, NULL, '', IF(g.`any_valid` = 1, 'active', 'inactive'), g.`members`
FROM (
  SELECT s.`provider_id`, s.`ikey`, s.`seq`,
         ROW_NUMBER() OVER (PARTITION BY s.`provider_id`, s.`ikey`
                            ORDER BY s.`has_is_tools`, s.`llm_name` IS NULL, s.`llm_name`, s.`seq`) AS rn,
         MAX(s.`valid`) OVER (PARTITION BY s.`provider_id`, s.`ikey`) AS any_valid,
         COUNT(*) OVER (PARTITION BY s.`provider_id`, s.`ikey`) AS members
  FROM {llm} s
  WHERE s.`provider_id` IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM {inst} i WHERE i.`provider_id` = s.`provider_id` AND i.`ikey` = s.`ikey`)
) g
WHERE g.rn = 1
ORDER BY g.`provider_id`, g.`ikey`
"""
_GROUP_VALUES = """
UPDATE {new} n STRAIGHT_JOIN {llm} s ON s.`seq` = n.`rep_seq`
SET n.`api_key` = COALESCE(s.`api_key`, ''), n.`extra` = s.`inst_extra`
"""

# D28: rows of a hand-run v0.25 script. One statement: status, name and times move together.
_NORMALISE_D28 = """
UPDATE `tenant_model_instance` i JOIN `tenant_model_provider` p ON p.`id` = i.`provider_id` {cp}
SET i.`instance_name` = IF(i.`instance_name` = p.`provider_name` {cn}, 'default', i.`instance_name`),
    i.`create_time` = IF(i.`create_time` < 100000000000, i.`create_time` * 1000, i.`create_time`),
    i.`update_time` = IF(i.`update_time` < 100000000000, i.`update_time` * 1000, i.`update_time`),
    i.`status` = IF(i.`status` IN ('1', 'enable'), 'active', 'inactive')
WHERE i.`status` IN ('0', '1', 'enable', 'disable')
"""


class InstanceStage(DataStage):
    stage = "tenant_model_instance"
    gate = "v0.26.0"
    description = "one tenant_model_instance 'default' per (provider, canonical api key, base url)"
    requires = ("tenant_llm", "tenant_model_provider", "tenant_model_instance")
    creates = ("tenant_model_instance",)

    def analyse(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        conn = ctx.conn
        work.counts["legacy_instances_to_normalise"] = int(sqlkit.scalar(
            conn, "SELECT COUNT(*) FROM `tenant_model_instance` WHERE `status` IN ('0', '1', 'enable', 'disable')")
            or 0)
        info = staging.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
        staging.attach_providers(ctx, self.name, meta)
        staging.build_instances(ctx, self.name, meta, batch=self.batch(ctx))
        sqlkit.temp_table(conn, NEW, _NEW_BODY)
        sqlkit.logged(ctx, self.name, render(_GROUPS, new=NEW, llm=staging.LLM, inst=staging.INST))
        sqlkit.logged(ctx, self.name, render(_GROUP_VALUES, new=NEW, llm=staging.LLM))
        work.counts["tenant_llm_rows"] = info["rows"]
        work.counts["rows_without_provider"] = int(sqlkit.scalar(
            conn, render("SELECT COUNT(*) FROM {l} WHERE `provider_id` IS NULL", l=staging.LLM)) or 0)
        work.counts["instances_to_create"] = int(sqlkit.scalar(conn, render("SELECT COUNT(*) FROM {t}", t=NEW)) or 0)
        if work.counts["rows_without_provider"]:
            work.notes.append(f"{work.counts['rows_without_provider']} tenant_llm row(s) have no provider yet "
                              "(stage tenant_model_provider creates them first)")
        self._precheck(ctx, meta, work)
        work.samples = self.sample(ctx, render(
            "SELECT n.`provider_id`, 'default', CONCAT(LEFT(n.`api_key`, 6), '…'), n.`status`, n.`extra`, "
            "n.`members` FROM {t} n ORDER BY n.`n`", t=NEW),
            columns=("provider_id", "instance_name", "api_key_prefix", "status", "extra", "legacy_rows"))

    def _precheck(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        """A key or base URL that does not fit stops the stage before anything is written (FIX D6), or,
        with ``--widen-columns``, widens the column first: counted with the longest value, in one read."""
        checks = [(c, e, meta.max_length("tenant_model_instance", c)) for c, e in
                  (("api_key", "n.`api_key`"), ("extra", "n.`extra`"))]
        checks = [(c, e, limit) for c, e, limit in checks if limit is not None]
        if not checks:
            return
        reads = ", ".join(f"COALESCE(SUM(CHAR_LENGTH({e}) > %s), 0), COALESCE(MAX(CHAR_LENGTH({e})), 0), "
                          f"COALESCE(MAX(LENGTH({e})), 0)" for _c, e, _l in checks)
        found = sqlkit.query(ctx.conn, f"SELECT {reads} " + render("FROM {t} n", t=NEW),
                             tuple(limit for _c, _e, limit in checks))[0]
        for i, (column, expr, limit) in enumerate(checks):
            count, chars, nbytes = (int(v) for v in found[3 * i:3 * i + 3])
            if count:
                rows = sqlkit.query(ctx.conn, render(
                    "SELECT s.`src_id`, s.`tenant_id`, s.`llm_factory`, s.`llm_name` FROM {t} n "
                    "JOIN {l} s ON s.`seq` = n.`rep_seq` WHERE ", t=NEW, l=staging.LLM)
                    + f"CHAR_LENGTH({expr}) > %s ORDER BY n.`n` LIMIT 20", (limit,))
                work.reject("tenant_model_instance", column, limit, count,
                            [_row_ref(r) for r in rows], "longer than the column", needed=(chars, nbytes))

    def write(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        conn = ctx.conn
        clock, ids = Clock(), IdSequence()
        normalised = 0
        if work.counts.get("legacy_instances_to_normalise"):
            with sqlkit.transaction(conn):
                normalised = sqlkit.logged(ctx, self.name, render(
                    _NORMALISE_D28, cp=meta.collation("tenant_model_provider", "id"),
                    cn=meta.collation("tenant_model_provider", "provider_name")))
        total = work.counts["instances_to_create"]
        progress = ctx.progress(self.name, total, unit="instances")
        created = 0
        # Pages by the values `n` holds, never by arithmetic on them: AUTO_INCREMENT numbers need not be
        # consecutive (Galera's wsrep_auto_increment_control and Group Replication step them by the
        # cluster's size, temporary tables included).
        for after, upto in sqlkit.key_ranges(conn, NEW, "n", self.batch(ctx)):
            cond, args = sqlkit.range_condition("n.`n`", after, upto)
            insert = render(
                "INSERT INTO `tenant_model_instance` (`id`, `create_time`, `create_date`, `update_time`, "
                "`update_date`, `instance_name`, `provider_id`, `api_key`, `status`, `extra`) "
                "SELECT " + IdSequence.sql("n.`n`") + ", %s, %s, %s, %s, 'default', n.`provider_id`, n.`api_key`, "
                "n.`status`, n.`extra` FROM {t} n WHERE ", t=NEW) + cond + " ORDER BY n.`n`"
            with sqlkit.transaction(conn):
                n = sqlkit.logged(ctx, self.name, insert, (*ids.args(), clock.ms, clock.date, clock.ms, clock.date,
                                                           *args))
            ids.advance(n)
            created += n
            progress.advance(n)
            ctx.checkpoint()
        if total:
            progress.emit()
        staging.instances_changed(ctx)
        return StepResult(rows=work.counts.get("tenant_llm_rows", 0), changes=created + normalised,
                          details={"instances_created": created, "legacy_instances_normalised": normalised})

    def cleanup(self, ctx: RunContext) -> None:
        super().cleanup(ctx)
        sqlkit.drop_temp(ctx.conn, NEW)


def _row_ref(row: tuple) -> dict:
    src_id, tenant_id, factory, llm_name = row
    ref = {"tenant_id": tenant_id, "llm_factory": factory, "llm_name": llm_name}
    if src_id is not None:
        ref = {"tenant_llm.id": src_id, **ref}
    return ref
