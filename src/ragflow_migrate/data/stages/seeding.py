"""Stage 5, ``tenant_model_seeding``: every catalogue model in every instance (spec §3.5).

v0.27 has no catalogue fallback: a model works only if its row exists. So every instance of a
provider named like a catalogue factory (SiliconFlow split by the instance's region) gets one
row per catalogue model and type, unless ``(provider, instance, model, type)`` exists.

Values (FIX D10, CHOICE D11): status and ``extra`` come from the **same**
``(instance, model_name)`` group only (a model one tenant disabled stays disabled for that
tenant's instance, and nobody else's); otherwise ``active`` and the catalogue's
``{"is_tools": true, "max_tokens": N}``. Set-based: one ``INSERT … SELECT`` per range of
instances, joining a staged copy of the catalogue.

When ``model_type`` is already INT (RAGFlow's v0.27 startup ran first, D4), seeding writes
what the merge would have made of it: one row per model with the OR of its bits, for the
instances the migration created, skipping models the legacy rows disabled.
"""

from __future__ import annotations

from ...steps import RunContext, StepResult
from .. import sqlkit, staging
from ..sqlkit import Meta, Raw, render
from .base import Clock, DataStage, IdSequence, Work

CAT = "rm_cat"
SEED = "rm_seed_inst"
GROUP = "rm_group"
HAVE = "rm_have"

_CAT_BODY = """
  `provider_name` VARCHAR(128) NOT NULL,
  `intl` TINYINT NOT NULL,
  `llm_name` VARCHAR(255) NOT NULL,
  `type_str` VARCHAR(255) NOT NULL,
  `bit` INT NOT NULL,
  `extra` VARCHAR(2048) NOT NULL,
  `ord` INT NOT NULL,
  KEY `rm_cat_k` (`provider_name`, `intl`)
"""
_SEED_BODY = """
  `seq` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `instance_id` VARCHAR(32) NOT NULL,
  `provider_id` VARCHAR(32) NOT NULL,
  `ikey` BINARY(16) NULL,
  `cat_provider` VARCHAR(128) NOT NULL,
  `intl` TINYINT NOT NULL
"""
_GROUP_BODY = """
  `instance_id` VARCHAR(32) NOT NULL,
  `model_name` VARCHAR(128) NOT NULL,
  `status` VARCHAR(32) NOT NULL,
  `extra` VARCHAR(1024) NULL,
  KEY `rm_group_k` (`instance_id`, `model_name`)
"""

# (instance, model, type) already in tenant_model when the stage starts: each is generated once per
# run, so checking this snapshot (by its key) equals checking the live table (which has no such key).
_HAVE_BODY = """
  `instance_id` VARCHAR(32) NOT NULL,
  `model_name` VARCHAR(128) {cmn} NOT NULL,
  `model_type` VARCHAR(32) {cmt} NOT NULL,
  KEY `rm_have_k` (`instance_id`, `model_name`, `model_type`)
"""

# A usable extra: a JSON object other than {} (checked without ever parsing invalid JSON).
GOOD_EXTRA = "(m.`extra` <> '{{}}' AND CASE WHEN JSON_VALID(m.`extra`) THEN JSON_TYPE(m.`extra`) = 'OBJECT' ELSE 0 END)"
_REGION = ("CASE WHEN JSON_VALID(i.`extra`) THEN JSON_UNQUOTE(JSON_EXTRACT(i.`extra`, '$.region')) END")

# Instances of providers named like a catalogue factory (compared as the provider column does).
_SEED_STRING = """
INSERT INTO {seed} (`instance_id`, `provider_id`, `cat_provider`, `intl`)
SELECT i.`id`, i.`provider_id`, c.`provider_name`,
       IF(c.`provider_name` = 'SILICONFLOW' AND COALESCE(""" + _REGION + """, '') = 'intl', 1, 0)
FROM `tenant_model_instance` i
STRAIGHT_JOIN `tenant_model_provider` p ON p.`id` = i.`provider_id` {cpi}
STRAIGHT_JOIN (SELECT DISTINCT `provider_name` FROM {cat}) c ON c.`provider_name` {cpn} = p.`provider_name`
ORDER BY i.`id`
"""
# D4: only instances the migration made (their identity is a legacy row's).
_SEED_INT = """
INSERT INTO {seed} (`instance_id`, `provider_id`, `ikey`, `cat_provider`, `intl`)
SELECT i.`id`, i.`provider_id`, i.`ikey`, c.`provider_name`,
       IF(c.`provider_name` = 'SILICONFLOW' AND i.`intl` = 1, 1, 0)
FROM {inst} i
STRAIGHT_JOIN `tenant_model_provider` p ON p.`id` = i.`provider_id` {cpi}
STRAIGHT_JOIN (SELECT DISTINCT `provider_name` FROM {cat}) c ON c.`provider_name` {cpn} = p.`provider_name`
WHERE EXISTS (SELECT 1 FROM {llm} l WHERE l.`provider_id` = i.`provider_id` AND l.`ikey` = i.`ikey`)
ORDER BY i.`id`
"""
# Status and extra of each existing (instance, model) group: the first non-unsupported status
# and the first usable extra, in id order (FIX D10, CHOICE D11).
_GROUPS = """
INSERT INTO {grp} (`instance_id`, `model_name`, `status`, `extra`)
SELECT x.`instance_id`, x.`model_name`, IF(x.`st` = 'unsupported', 'active', x.`st`), x.`ex` FROM (
  SELECT m.`instance_id`, m.`model_name`,
         ROW_NUMBER() OVER (PARTITION BY m.`instance_id`, m.`model_name` ORDER BY m.`id`) AS rn,
         FIRST_VALUE(m.`status`) OVER (PARTITION BY m.`instance_id`, m.`model_name`
                                       ORDER BY m.`status` = 'unsupported', m.`id`) AS st,
         FIRST_VALUE(IF(""" + GOOD_EXTRA + """, m.`extra`, NULL)) OVER (
             PARTITION BY m.`instance_id`, m.`model_name` ORDER BY """ + GOOD_EXTRA + """ DESC, m.`id`) AS ex
  FROM `tenant_model` m WHERE m.`model_name` IS NOT NULL
) x WHERE x.rn = 1
"""
_INSERT_STRING = """
INSERT INTO `tenant_model` (`id`, `create_time`, `create_date`, `update_time`, `update_date`, `model_name`,
                            `provider_id`, `instance_id`, `model_type`, `status`, `extra`)
SELECT {newid} AS `id`, %s AS `ct`, %s AS `cd`, %s AS `ut`, %s AS `ud`, c.`llm_name` AS `model_name`,
       s.`provider_id` AS `provider_id`, s.`instance_id` AS `instance_id`, c.`type_str` AS `model_type`,
       COALESCE(g.`status`, 'active') AS `status`, COALESCE(g.`extra`, c.`extra`) AS `extra`
FROM {seed} s
STRAIGHT_JOIN {cat} c ON c.`provider_name` = s.`cat_provider` AND c.`intl` = s.`intl`
LEFT JOIN {grp} g ON g.`instance_id` = s.`instance_id` AND g.`model_name` = c.`llm_name` {cmn}
WHERE s.`seq` > %s AND s.`seq` <= %s
  AND NOT EXISTS (SELECT 1 FROM {have} h WHERE h.`instance_id` = s.`instance_id`
                  AND h.`model_name` = c.`llm_name` {cmn} AND h.`model_type` = c.`type_str` {cmt})
ORDER BY s.`seq`, c.`ord`
"""
_INSERT_INT = """
INSERT INTO `tenant_model` (`id`, `create_time`, `create_date`, `update_time`, `update_date`, `model_name`,
                            `provider_id`, `instance_id`, `model_type`, `status`, `extra`)
SELECT {newid} AS `id`, %s AS `ct`, %s AS `cd`, %s AS `ut`, %s AS `ud`, c.`llm_name` AS `model_name`,
       s.`provider_id` AS `provider_id`, s.`instance_id` AS `instance_id`, c.`bits` AS `model_type`,
       'active' AS `status`, c.`extra` AS `extra`
FROM {seed} s
STRAIGHT_JOIN (SELECT `provider_name`, `intl`, `llm_name`, BIT_OR(`bit`) AS `bits`, MIN(`extra`) AS `extra`,
             MIN(`ord`) AS `ord` FROM {cat} GROUP BY `provider_name`, `intl`, `llm_name`) c
  ON c.`provider_name` = s.`cat_provider` AND c.`intl` = s.`intl`
WHERE s.`seq` > %s AND s.`seq` <= %s AND c.`bits` <> 0
  AND NOT EXISTS (SELECT 1 FROM {have} h WHERE h.`instance_id` = s.`instance_id`
                  AND h.`model_name` = c.`llm_name` {cmn})
  AND NOT EXISTS (SELECT 1 FROM {llm} l WHERE l.`provider_id` = s.`provider_id` AND l.`ikey` = s.`ikey`
                  AND l.`valid` = 0 AND l.`llm_name` = c.`llm_name` {cln})
ORDER BY s.`seq`, c.`ord`
"""


class SeedingStage(DataStage):
    stage = "tenant_model_seeding"
    gate = "v0.27.0"
    description = "every catalogue model × type as a tenant_model row in every instance of its provider"
    catalog_input = "tenant_model_instance"
    requires = ("tenant_model_provider", "tenant_model_instance", "tenant_model")

    def analyse(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        conn = ctx.conn
        int_mode = meta.is_int("tenant_model", "model_type")
        work.data["int_mode"] = int_mode
        rows = self.catalog(ctx).seed_rows()
        sqlkit.temp_table(conn, CAT, _CAT_BODY)
        for i in range(0, len(rows), 1000):
            sqlkit.insert_rows(conn, CAT, ("provider_name", "intl", "llm_name", "type_str", "bit", "extra", "ord"),
                               [(r.provider_name, r.intl, r.llm_name, r.type_str, r.bit, r.extra, r.order)
                                for r in rows[i:i + 1000]])
        self._check_catalog(ctx, meta, work)
        sqlkit.temp_table(conn, SEED, _SEED_BODY)
        colls = dict(cpi=meta.collation("tenant_model_provider", "id"),
                     cpn=meta.collation("tenant_model_provider", "provider_name"))
        if int_mode:
            staging.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
            staging.attach_providers(ctx, meta)
            staging.build_instances(ctx, self.name, meta, batch=self.batch(ctx))
            sqlkit.execute(conn, render(_SEED_INT, seed=SEED, inst=staging.INST, cat=CAT, llm=staging.LLM, **colls))
            work.notes.append("tenant_model.model_type is already INT (D4): seeding writes merged rows (bits) for "
                              "the instances the migration created")
        else:
            sqlkit.execute(conn, render(_SEED_STRING, seed=SEED, cat=CAT, **colls))
            sqlkit.temp_table(conn, GROUP, _GROUP_BODY)
            sqlkit.execute(conn, render(_GROUPS, grp=GROUP))
        cmn = meta.collation("tenant_model", "model_name")
        cmt = Raw("") if int_mode else meta.collation("tenant_model", "model_type")
        sqlkit.temp_table(conn, HAVE, render(_HAVE_BODY, cmn=cmn, cmt=cmt if not int_mode else cmn))
        sqlkit.execute(conn, render("INSERT INTO {h} (`instance_id`, `model_name`, `model_type`) SELECT `instance_id`, "
                                    "COALESCE(`model_name`, ''), `model_type` FROM `tenant_model`", h=HAVE))
        work.counts["instances"] = int(sqlkit.scalar(conn, render("SELECT COUNT(*) FROM {t}", t=SEED)) or 0)
        if work.executing:
            return  # counted while written (the count would cost as much as the insert)
        total = 0
        for after, upto in self._ranges(ctx):
            total += int(sqlkit.scalar(conn, "SELECT COUNT(*) FROM (" + self._select(meta, int_mode) + ") x",
                                       self._args(IdSequence(), Clock(), after, upto)) or 0)
        work.counts["models_to_seed"] = total
        work.samples = self.sample(ctx, "SELECT x.`model_name`, x.`provider_id`, x.`instance_id`, x.`model_type`, "
                                   "x.`status`, x.`extra` FROM (" + self._select(meta, int_mode) + ") x",
                                   self._args(IdSequence(), Clock(), None, None),
                                   columns=("model_name", "provider_id", "instance_id", "model_type", "status",
                                            "extra"))

    def _check_catalog(self, ctx: RunContext, meta: Meta, work: Work) -> None:
        for column, expr in (("model_name", "`llm_name`"), ("model_type", "`type_str`"), ("extra", "`extra`")):
            limit = meta.max_length("tenant_model", column)
            if limit is None or (column == "model_type" and meta.is_int("tenant_model", "model_type")):
                continue
            bad = sqlkit.query(ctx.conn, render("SELECT DISTINCT `provider_name`, `llm_name` FROM {t} WHERE "
                                                "CHAR_LENGTH(", t=CAT) + expr + ") > %s", (limit,))
            work.reject("tenant_model", column, limit, len(bad), [list(b) for b in bad[:20]],
                        f"too long in the catalogue {self.catalog(ctx).path}")

    def _select(self, meta: Meta, int_mode: bool) -> str:
        sql = _INSERT_INT if int_mode else _INSERT_STRING
        sql = sql[sql.index("SELECT"):]
        return render(sql, seed=SEED, cat=CAT, grp=GROUP, llm=staging.LLM, have=HAVE,
                      newid=Raw(IdSequence.sql("s.`seq`, c.`ord`")),
                      cmi=meta.collation("tenant_model", "instance_id"),
                      cmp=meta.collation("tenant_model", "provider_id"),
                      cmn=meta.collation("tenant_model", "model_name"),
                      cmt=Raw("") if int_mode else meta.collation("tenant_model", "model_type"),
                      cln=meta.collation("tenant_llm", "llm_name") if meta.has_table("tenant_llm") else Raw(""))

    @staticmethod
    def _args(ids: IdSequence, clock: Clock, after: int | None, upto: int | None) -> tuple:
        return (*ids.args(), clock.ms, clock.date, clock.ms, clock.date, after or 0,
                upto if upto is not None else 2**62)

    def _ranges(self, ctx: RunContext):
        # about batch_size rows per transaction: a catalogue factory lists up to ~100 model × type rows
        return sqlkit.key_ranges(ctx.conn, SEED, "seq", max(1, self.batch(ctx) // 50))

    def write(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        clock, ids = Clock(), IdSequence()
        progress = ctx.progress(self.name, work.counts["instances"], unit="instances")
        insert = "INSERT INTO `tenant_model` (`id`, `create_time`, `create_date`, `update_time`, `update_date`, " \
                 "`model_name`, `provider_id`, `instance_id`, `model_type`, `status`, `extra`) " \
                 + self._select(meta, work.data["int_mode"])
        seeded = 0
        if work.counts["instances"]:
            for after, upto in self._ranges(ctx):
                with sqlkit.transaction(ctx.conn):
                    n = sqlkit.logged(ctx, self.name, insert, self._args(ids, clock, after, upto))
                ids.advance(n)
                seeded += n
                progress.advance((upto or work.counts["instances"]) - (after or 0))
                ctx.checkpoint()
            progress.emit()
        work.counts["models_to_seed"] = seeded
        return StepResult(rows=work.counts["instances"], changes=seeded,
                          details={"models_seeded": seeded, "int_mode": work.data["int_mode"]})

    def cleanup(self, ctx: RunContext) -> None:
        super().cleanup(ctx)
        sqlkit.drop_temp(ctx.conn, CAT, SEED, GROUP, HAVE)

    def probe(self, ctx: RunContext, meta: Meta) -> bool:
        """RAGFlow skipped seeding (D4): rows of type 0, or instances without a single model row."""
        if not (meta.has_table("tenant_model") and meta.has_table("tenant_model_instance")):
            return False
        if meta.is_int("tenant_model", "model_type") and sqlkit.scalar(
                ctx.conn, "SELECT 1 FROM `tenant_model` WHERE `model_type` = 0 LIMIT 1") is not None:
            return True
        return sqlkit.scalar(ctx.conn, render(
            "SELECT 1 FROM `tenant_model_instance` i WHERE NOT EXISTS (SELECT 1 FROM `tenant_model` m "
            "WHERE m.`instance_id` = i.`id` {c}) LIMIT 1", c=meta.collation("tenant_model", "instance_id"))) is not None
