"""Stages 1–3 on PostgreSQL: providers, instances, the legacy exceptions (spec §3.1–3.3).

The rules are MySQL's (data/stages/provider.py, instance.py, legacy_models.py); names that MySQL
compares case-insensitively are compared with ``pg_temp.rm_fold()`` here (see :mod:`.base`).
"""

from __future__ import annotations

from ....data.stages.base import Clock, IdSequence
from ....steps import RunContext, StepResult
from . import base
from .base import INST, LLM, PgMeta, PgStage, Work, execute, fold_text, logged, query, scalar

_MISSING = """
SELECT d.tenant_id, d.factory FROM (
  SELECT l.tenant_id, MIN(l.llm_factory COLLATE "C") AS factory
  FROM tenant_llm l WHERE {cond} GROUP BY l.tenant_id, pg_temp.rm_fold(l.llm_factory)
) d
WHERE NOT EXISTS (SELECT 1 FROM tenant_model_provider p
                  WHERE p.tenant_id = d.tenant_id AND pg_temp.rm_fold(p.provider_name) = pg_temp.rm_fold(d.factory))
"""


class ProviderStage(PgStage):
    stage = "tenant_model_provider"
    gate = "v0.26.0"
    description = "one tenant_model_provider per (tenant, factory) of tenant_llm"
    requires = ("tenant_llm", "tenant_model_provider")
    creates = ("tenant_model_provider",)

    def analyse(self, ctx: RunContext, meta: PgMeta, work: Work) -> None:
        sql = _MISSING.format(cond="TRUE")
        work.counts["providers_to_create"] = int(scalar(ctx.conn, f"SELECT COUNT(*) FROM ({sql}) x") or 0)
        work.samples = self.sample(ctx, sql + ' ORDER BY d.tenant_id, d.factory COLLATE "C"', columns=("tenant_id", "provider_name"))

    def write(self, ctx: RunContext, meta: PgMeta, work: Work) -> StepResult:
        clock, ids = Clock(), IdSequence()
        total = work.counts["providers_to_create"]
        if not total:
            return StepResult()
        progress = ctx.progress(self.name, total, unit="providers")
        created = 0
        for after, upto in base.key_pages(ctx.conn, "tenant_llm", "tenant_id", self.batch(ctx)):
            cond, args = base.range_condition("l.tenant_id", after, upto)
            insert = ("INSERT INTO tenant_model_provider (id, create_time, create_date, update_time, update_date, "
                      "provider_name, tenant_id) SELECT " + base.new_id('m.tenant_id, m.factory COLLATE "C"')
                      + ", %s::bigint, %s::timestamp, %s::bigint, %s::timestamp, m.factory, m.tenant_id FROM ("
                      + _MISSING.format(cond=cond) + ") m")
            with ctx.conn.transaction():
                n = logged(ctx, self.name, insert, (*ids.args(), clock.ms, clock.date, clock.ms, clock.date, *args))
            ids.advance(n)
            created += n
            progress.advance(n)
            ctx.checkpoint()
        progress.emit()
        return StepResult(rows=created, changes=created, details={"providers_created": created})


NEW = "rm_new_inst"
_GROUPS = f"""
INSERT INTO {NEW} (provider_id, ikey, rep_seq, api_key, extra, status, members)
SELECT g.provider_id, g.ikey, g.seq, NULL, '', CASE WHEN g.any_valid = 1 THEN 'active' ELSE 'inactive' END, g.members
FROM (
  SELECT s.provider_id, s.ikey, s.seq,
         ROW_NUMBER() OVER (PARTITION BY s.provider_id, s.ikey
                            ORDER BY s.has_is_tools, s.llm_name IS NULL, s.llm_name COLLATE "C", s.seq) AS rn,
         MAX(s.valid) OVER (PARTITION BY s.provider_id, s.ikey) AS any_valid,
         COUNT(*) OVER (PARTITION BY s.provider_id, s.ikey) AS members
  FROM {LLM} s
  WHERE s.provider_id IS NOT NULL
    AND NOT EXISTS (SELECT 1 FROM {INST} i WHERE i.provider_id = s.provider_id AND i.ikey = s.ikey)
) g
WHERE g.rn = 1
ORDER BY g.provider_id COLLATE "C", g.ikey
"""
_NORMALISE_INSTANCES = """
UPDATE tenant_model_instance i SET
  instance_name = CASE WHEN pg_temp.rm_fold(i.instance_name) = pg_temp.rm_fold(p.provider_name) THEN 'default' ELSE i.instance_name END,
  create_time = CASE WHEN i.create_time < 100000000000 THEN i.create_time * 1000 ELSE i.create_time END,
  update_time = CASE WHEN i.update_time < 100000000000 THEN i.update_time * 1000 ELSE i.update_time END,
  status = CASE WHEN lower(i.status) IN ('1', 'enable') THEN 'active' ELSE 'inactive' END
FROM tenant_model_provider p
WHERE p.id = i.provider_id AND lower(i.status) IN ('0', '1', 'enable', 'disable')
"""


class InstanceStage(PgStage):
    stage = "tenant_model_instance"
    gate = "v0.26.0"
    description = "one tenant_model_instance 'default' per (provider, canonical api key, base url)"
    requires = ("tenant_llm", "tenant_model_provider", "tenant_model_instance")
    creates = ("tenant_model_instance",)
    session_tables = (NEW,)

    def analyse(self, ctx: RunContext, meta: PgMeta, work: Work) -> None:
        conn = ctx.conn
        work.counts["legacy_instances_to_normalise"] = int(scalar(
            conn, "SELECT COUNT(*) FROM tenant_model_instance WHERE lower(status) IN ('0', '1', 'enable', 'disable')")
            or 0)
        info = base.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
        base.build_instances(ctx, self.name, meta, batch=self.batch(ctx))
        base.temp_table(conn, NEW, "n BIGSERIAL PRIMARY KEY, provider_id TEXT NOT NULL, ikey BYTEA NOT NULL, "
                        "rep_seq BIGINT NOT NULL, api_key TEXT NULL, extra TEXT NOT NULL, status TEXT NOT NULL, "
                        "members BIGINT NOT NULL")
        logged(ctx, self.name, _GROUPS)
        logged(ctx, self.name, f"UPDATE {NEW} n SET api_key = COALESCE(s.api_key, ''), extra = s.inst_extra "
               f"FROM {LLM} s WHERE s.seq = n.rep_seq")
        work.counts["tenant_llm_rows"] = info["rows"]
        work.counts["rows_without_provider"] = int(scalar(conn, f"SELECT COUNT(*) FROM {LLM} "
                                                          "WHERE provider_id IS NULL") or 0)
        work.counts["instances_to_create"] = int(scalar(conn, f"SELECT COUNT(*) FROM {NEW}") or 0)
        if work.counts["rows_without_provider"]:
            work.notes.append(f"{work.counts['rows_without_provider']} tenant_llm row(s) have no provider yet "
                              "(stage tenant_model_provider creates them first)")
        self.check_lengths(ctx, meta, work, "tenant_model_instance", [("api_key", "n.api_key"), ("extra", "n.extra")],
                           f"FROM {NEW} n JOIN {LLM} s ON s.seq = n.rep_seq WHERE TRUE",
                           "s.src_id, s.tenant_id, s.llm_factory, s.llm_name", "n.n")
        work.samples = self.sample(ctx, f"SELECT n.provider_id, 'default', left(n.api_key, 6) || '…', n.status, "
                                   f"n.extra, n.members FROM {NEW} n ORDER BY n.n",
                                   columns=("provider_id", "instance_name", "api_key_prefix", "status", "extra",
                                            "legacy_rows"))

    def write(self, ctx: RunContext, meta: PgMeta, work: Work) -> StepResult:
        conn = ctx.conn
        clock, ids = Clock(), IdSequence()
        normalised = 0
        if work.counts.get("legacy_instances_to_normalise"):
            with conn.transaction():
                normalised = logged(ctx, self.name, _NORMALISE_INSTANCES)
        total = work.counts["instances_to_create"]
        progress = ctx.progress(self.name, total, unit="instances")
        created = 0
        for after, upto in base.key_pages(conn, NEW, "n", self.batch(ctx)):
            cond, args = base.range_condition("n.n", after, upto)
            insert = ("INSERT INTO tenant_model_instance (id, create_time, create_date, update_time, update_date, "
                      "instance_name, provider_id, api_key, status, extra) SELECT " + base.new_id("n.n")
                      + ", %s::bigint, %s::timestamp, %s::bigint, %s::timestamp, 'default', n.provider_id, n.api_key, "
                      f"n.status, n.extra FROM {NEW} n WHERE {cond} ORDER BY n.n")
            with conn.transaction():
                n = logged(ctx, self.name, insert, (*ids.args(), clock.ms, clock.date, clock.ms, clock.date, *args))
            ids.advance(n)
            created += n
            progress.advance(n)
            ctx.checkpoint()
        if total:
            progress.emit()
        return StepResult(rows=work.counts.get("tenant_llm_rows", 0), changes=created + normalised,
                          details={"instances_created": created, "legacy_instances_normalised": normalised})


SEL, CAT, EXIST = "rm_sel", "rm_catnames", "rm_exist"
_SELECT = f"""
INSERT INTO {SEL} (seq, instance_id)
SELECT x.seq, x.inst FROM (
  SELECT s.seq,
         (SELECT i.id FROM {INST} i WHERE i.provider_id = s.provider_id AND i.ikey = s.ikey
          ORDER BY i.is_default DESC, i.id COLLATE "C" LIMIT 1) AS inst,
         ROW_NUMBER() OVER (PARTITION BY s.provider_id, pg_temp.rm_fold(s.llm_name) ORDER BY s.seq) AS dn
  FROM {LLM} s
  WHERE s.provider_id IS NOT NULL AND ({{which}})
    AND NOT EXISTS (SELECT 1 FROM {EXIST} e WHERE e.provider_id = s.provider_id
                    AND e.lname IS NOT DISTINCT FROM pg_temp.rm_fold(s.llm_name))
) x WHERE x.dn = 1
"""
_NOT_CATALOG = (f"NOT EXISTS (SELECT 1 FROM {CAT} c WHERE c.lfactory = pg_temp.rm_fold(s.llm_factory) "
                "AND c.lname = pg_temp.rm_fold(s.llm_name))")
_NORMALISE_MODELS = """
UPDATE tenant_model SET
  create_time = CASE WHEN create_time < 100000000000 THEN create_time * 1000 ELSE create_time END,
  update_time = CASE WHEN update_time < 100000000000 THEN update_time * 1000 ELSE update_time END,
  status = CASE WHEN lower(status) IN ('1', 'enable') THEN 'active' ELSE 'inactive' END
WHERE lower(status) IN ('0', '1', 'enable', 'disable')
"""


class LegacyModelStage(PgStage):
    stage = "tenant_model"
    gate = "v0.26.0"
    description = "tenant_model rows for disabled models and the user's own models (the legacy exceptions)"
    requires = ("tenant_llm", "tenant_model_provider", "tenant_model_instance", "tenant_model")
    creates = ("tenant_model",)
    session_tables = (SEL, CAT, EXIST)

    def analyse(self, ctx: RunContext, meta: PgMeta, work: Work) -> None:
        conn = ctx.conn
        cat = self.catalog(ctx)
        int_mode = meta.is_int("tenant_model", "model_type")
        work.data["int_mode"] = int_mode
        work.counts["legacy_models_to_normalise"] = int(scalar(
            conn, "SELECT COUNT(*) FROM tenant_model WHERE lower(status) IN ('0', '1', 'enable', 'disable')") or 0)
        info = base.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
        base.build_instances(ctx, self.name, meta, batch=self.batch(ctx))
        base.temp_table(conn, CAT, "lfactory TEXT NOT NULL, lname TEXT NOT NULL")
        base.copy_rows(conn, CAT, ("lfactory", "lname"), sorted(
            {(fold_text(m.factory), fold_text(m.llm_name)) for m in cat.models if m.factory != "siliconflow_intl"}))
        execute(conn, f"CREATE INDEX ON {CAT} (lfactory, lname)")
        base.temp_table(conn, EXIST, "provider_id TEXT NOT NULL, lname TEXT NULL")
        execute(conn, f"INSERT INTO {EXIST} SELECT DISTINCT provider_id, pg_temp.rm_fold(model_name) FROM tenant_model")
        execute(conn, f"CREATE INDEX ON {EXIST} (provider_id, lname)")
        bit = base.bit_case("s.model_type")
        which = f"s.valid = 1 AND {_NOT_CATALOG} AND {bit} <> 0" if int_mode else f"s.valid = 0 OR {_NOT_CATALOG}"
        base.temp_table(conn, SEL, "seq BIGINT NOT NULL PRIMARY KEY, instance_id TEXT NULL")
        logged(ctx, self.name, _SELECT.format(which=which))
        work.counts["tenant_llm_rows"] = info["rows"]
        work.counts["models_to_create"] = int(scalar(conn, f"SELECT COUNT(*) FROM {SEL} "
                                                     "WHERE instance_id IS NOT NULL") or 0)
        work.counts["rows_without_instance"] = int(scalar(conn, f"SELECT COUNT(*) FROM {SEL} "
                                                          "WHERE instance_id IS NULL") or 0)
        if int_mode:
            work.counts["zero_type_rows_to_repair"] = int(scalar(conn, (
                f"SELECT COUNT(*) FROM tenant_model m JOIN {LLM} s ON m.provider_id = s.provider_id "
                f"AND pg_temp.rm_fold(m.model_name) = pg_temp.rm_fold(s.llm_name) WHERE m.model_type = 0 AND {bit} <> 0")) or 0)
            work.notes.append("tenant_model.model_type is already INT (RAGFlow v0.27 started on this database): "
                              "rows are written as bits, as the merge would leave them (D4)")
        if work.counts["rows_without_instance"]:
            work.data["skipped_sample"] = [list(r) for r in query(conn, (
                f"SELECT s.src_id, s.tenant_id, s.llm_factory, s.llm_name FROM {SEL} r JOIN {LLM} s "
                "ON s.seq = r.seq WHERE r.instance_id IS NULL ORDER BY r.seq LIMIT 10"))]
            work.notes.append(f"{work.counts['rows_without_instance']} legacy row(s) have no instance with their "
                              "key (stage tenant_model_instance creates them first); they are skipped")
        checks = [("model_name", "s.llm_name"), ("extra", "s.m_extra")]
        if not int_mode:
            checks.append(("model_type", "COALESCE(s.model_type, '')"))
        self.check_lengths(ctx, meta, work, "tenant_model", checks,
                           f"FROM {SEL} r JOIN {LLM} s ON s.seq = r.seq WHERE r.instance_id IS NOT NULL",
                           "s.src_id, s.tenant_id, s.llm_factory, s.llm_name", "r.seq")
        type_expr = bit if int_mode else "COALESCE(s.model_type, '')"
        work.samples = self.sample(ctx, (
            f"SELECT s.tenant_id, s.llm_factory, s.llm_name, {type_expr}, "
            "CASE WHEN s.valid = 1 THEN 'active' ELSE 'inactive' END, s.m_extra "
            f"FROM {SEL} r JOIN {LLM} s ON s.seq = r.seq WHERE r.instance_id IS NOT NULL ORDER BY r.seq"),
            columns=("tenant_id", "provider_name", "model_name", "model_type", "status", "extra"))

    def write(self, ctx: RunContext, meta: PgMeta, work: Work) -> StepResult:
        conn = ctx.conn
        clock, ids = Clock(), IdSequence()
        int_mode = work.data["int_mode"]
        changes = 0
        if work.counts.get("legacy_models_to_normalise"):
            with conn.transaction():
                changes += logged(ctx, self.name, _NORMALISE_MODELS)
        if work.data.get("skipped_sample"):
            ctx.notice(self.name, "legacy rows skipped: no instance holds their key",
                       count=work.counts["rows_without_instance"], sample=work.data["skipped_sample"])
        bit = base.bit_case("s.model_type")
        if int_mode and work.counts.get("zero_type_rows_to_repair"):
            with conn.transaction():
                changes += logged(ctx, self.name, (
                    f"UPDATE tenant_model m SET model_type = {bit} FROM {LLM} s WHERE m.provider_id = s.provider_id "
                    f"AND pg_temp.rm_fold(m.model_name) = pg_temp.rm_fold(s.llm_name) AND m.model_type = 0 AND {bit} <> 0"))
        type_expr = bit if int_mode else "COALESCE(s.model_type, '')"
        insert = ("INSERT INTO tenant_model (id, create_time, create_date, update_time, update_date, model_name, "
                  "provider_id, instance_id, model_type, status, extra) SELECT " + base.new_id("r.seq")
                  + ", %s::bigint, %s::timestamp, %s::bigint, %s::timestamp, s.llm_name, s.provider_id, r.instance_id, "
                  f"{type_expr}, CASE WHEN s.valid = 1 THEN 'active' ELSE 'inactive' END, s.m_extra "
                  f"FROM {SEL} r JOIN {LLM} s ON s.seq = r.seq WHERE r.instance_id IS NOT NULL AND {{cond}} "
                  "ORDER BY r.seq")
        total = work.counts["models_to_create"]
        progress = ctx.progress(self.name, total, unit="models")
        created = 0
        for after, upto in base.key_pages(conn, SEL, "seq", self.batch(ctx)):
            cond, args = base.range_condition("r.seq", after, upto)
            with conn.transaction():
                n = logged(ctx, self.name, insert.format(cond=cond),
                           (*ids.args(), clock.ms, clock.date, clock.ms, clock.date, *args))
            ids.advance(n)
            created += n
            progress.advance(n)
            ctx.checkpoint()
        if total:
            progress.emit()
        return StepResult(rows=work.counts.get("tenant_llm_rows", 0), changes=changes + created,
                          details={"models_created": created, "int_mode": int_mode})

    def probe(self, ctx: RunContext, meta: PgMeta) -> bool:
        if not meta.has_table("tenant_model") or not meta.is_int("tenant_model", "model_type"):
            return False
        return scalar(ctx.conn, "SELECT 1 FROM tenant_model WHERE model_type = 0 LIMIT 1") is not None
