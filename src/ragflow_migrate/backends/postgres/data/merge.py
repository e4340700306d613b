"""Stages 5 and 6 on PostgreSQL: seeding and the merge, in one transaction (spec §3.5, §3.6).

As on MySQL, while ``model_type`` is VARCHAR the seeding stage only counts: the merge adds the
rows seeding would add (same values: status and ``extra`` from the same ``(instance, model)``
group, D10/D11; a ``(instance, model, type)`` already there is skipped) to the groups it merges.
PostgreSQL's DDL is transactional, so the merge is one transaction: the merged rows are computed
into a session table, the old rows are copied to ``ragflow_migrate_bak_tenant_model_<UTC>``,
``tenant_model`` is emptied, ``model_type`` becomes INTEGER and the merged rows go in. A kill at
any point leaves ``tenant_model`` exactly as it was (FIX D2, D3); the table keeps its name,
indexes and grants. ``tenant_model_group_mapping`` is remapped to the kept ids (D25).

Merged group = (provider, instance, model name byte for byte); kept id = its first row already in
``tenant_model``, else its first seeded row; bits = OR of non-``unsupported`` bits minus the
``unsupported`` ones; status = the first non-``unsupported`` one; kept only when active with bits.

Most groups are made of seeded rows only (M: 1.08M of 1.11M): a catalogue model in an instance
that holds no row of that model under any spelling. Nothing in such a group can vary (status
``active``, the first listing's ``extra``, the OR of the catalogue's types), so they are written
merged straight from the folded catalogue (:data:`FOLDED`, one row per factory, region and name),
and only the groups that hold a row of ``tenant_model`` go through the grouping (:data:`_GROUPED`).
The refill builds the secondary indexes once after the rows are in, instead of row by row.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from ....data.catalog import INTL_PROVIDER
from ....data.stages.base import ORDINALS, Clock, IdSequence
from ....steps import RunContext, StepResult
from . import base
from .base import INST, LLM, PgMeta, PgStage, Work, execute, logged, query, scalar

CAT, SEED, GRP, HAVE, ALL, MERGED = "rm_cat", "rm_seed_inst", "rm_group", "rm_have", "rm_all", "rm_merged"
FOLDED = "rm_cat_folded"
TABLES = (CAT, FOLDED, SEED, GRP, HAVE, ALL, MERGED)
BACKUP_PREFIX = "ragflow_migrate_bak_"
GOOD = "(m.extra <> '{}' AND pg_temp.rm_json_object(m.extra))"


def prepare(stage: PgStage, ctx: RunContext, meta: PgMeta, work: Work) -> int:
    """Session tables: the catalogue (too-long names rejected), the instances to seed, the groups and
    the (instance, model, type) already present. Returns the number of instances to seed."""
    conn = ctx.conn
    base.json_functions(conn)
    catalog = stage.catalog(ctx)
    rows = catalog.seed_rows()
    # lname: the name folded once here (base.fold_text, rm_fold's twin), not per seeded row in the joins
    base.temp_table(conn, CAT, "provider_name TEXT NOT NULL, intl SMALLINT NOT NULL, llm_name TEXT NOT NULL, "
                    "type_str TEXT NOT NULL, bit INT NOT NULL, extra TEXT NOT NULL, ord INT NOT NULL, lname TEXT NOT NULL")
    base.copy_rows(conn, CAT, ("provider_name", "intl", "llm_name", "type_str", "bit", "extra", "ord", "lname"),
                   [(r.provider_name, r.intl, r.llm_name, r.type_str, r.bit, r.extra, r.order,
                     base.fold_text(r.llm_name)) for r in rows])
    for column, expr in (("model_name", "llm_name"), ("model_type", "type_str"), ("extra", "extra")):
        limit = meta.max_length("tenant_model", column)
        if limit is None:
            continue
        bad = query(conn, f"SELECT DISTINCT provider_name, llm_name FROM {CAT} WHERE char_length({expr}) > %s",
                    (limit,))
        if bad:
            longest = query(conn, f"SELECT MAX(char_length({expr})), MAX(octet_length({expr})) FROM {CAT}")[0]
            work.reject("tenant_model", column, limit, len(bad), [list(b) for b in bad[:20]],
                        f"too long in the catalogue {catalog.path}", needed=(int(longest[0]), int(longest[1])))
    fold_catalog(conn)
    base.build_instances(ctx, stage.name, meta, batch=stage.batch(ctx))
    base.temp_table(conn, SEED, "seq BIGSERIAL PRIMARY KEY, instance_id TEXT NOT NULL, provider_id TEXT NOT NULL, "
                    "cat_provider TEXT NOT NULL, intl SMALLINT NOT NULL")
    execute(conn, (
        f"INSERT INTO {SEED} (instance_id, provider_id, cat_provider, intl) "
        f"SELECT i.id, i.provider_id, c.provider_name, CASE WHEN c.provider_name = '{INTL_PROVIDER}' AND i.intl = 1 "
        f"THEN 1 ELSE 0 END FROM {INST} i JOIN tenant_model_provider p ON p.id = i.provider_id "
        f"JOIN (SELECT DISTINCT provider_name FROM {CAT}) c ON pg_temp.rm_fold(c.provider_name) = pg_temp.rm_fold(p.provider_name) "
        "ORDER BY i.id COLLATE \"C\", c.provider_name COLLATE \"C\""))
    # per existing (instance, model): the first status that is not 'unsupported', the first usable extra
    base.temp_table(conn, GRP, "instance_id TEXT NOT NULL, lname TEXT NOT NULL, status TEXT NULL, extra TEXT NULL")
    execute(conn, (
        f"INSERT INTO {GRP} SELECT m.instance_id, pg_temp.rm_fold(m.model_name), "
        "(array_agg(m.status ORDER BY m.id COLLATE \"C\") FILTER (WHERE lower(m.status) <> 'unsupported'))[1], "
        f"(array_agg(m.extra ORDER BY m.id COLLATE \"C\") FILTER (WHERE {GOOD}))[1] "
        "FROM tenant_model m WHERE m.model_name IS NOT NULL GROUP BY m.instance_id, pg_temp.rm_fold(m.model_name)"))
    execute(conn, f"CREATE INDEX ON {GRP} (instance_id, lname)")
    base.temp_table(conn, HAVE, "instance_id TEXT NOT NULL, lname TEXT NOT NULL, ltype TEXT NOT NULL")
    execute(conn, f"INSERT INTO {HAVE} SELECT DISTINCT instance_id, pg_temp.rm_fold(COALESCE(model_name, '')), "
            "lower(model_type::text) FROM tenant_model")
    execute(conn, f"CREATE INDEX ON {HAVE} (instance_id, lname, ltype)")
    execute(conn, f"ANALYZE {CAT}, {FOLDED}, {SEED}, {GRP}, {HAVE}")  # session tables: no statistics otherwise
    return int(scalar(conn, f"SELECT COUNT(*) FROM {SEED}") or 0)


_FOLDED_BODY = ("provider_name TEXT NOT NULL, intl SMALLINT NOT NULL, llm_name TEXT NOT NULL, lname TEXT NOT NULL, "
                "bits INT NOT NULL, extra TEXT NOT NULL, ord INT NOT NULL, members INT NOT NULL")


def fold_catalog(conn: Any) -> None:
    """:data:`FOLDED`: the catalogue as merged groups, one row per (factory, region, name byte for byte):
    its types OR-ed, the ``extra`` of its first listing (``{}`` when that is no JSON object), that
    listing's ordinal (the group's kept id) and its number of listings (rows seeding adds)."""
    base.temp_table(conn, FOLDED, _FOLDED_BODY)
    first = "(array_agg(extra ORDER BY ord))[1]"
    execute(conn, (
        f"INSERT INTO {FOLDED} SELECT provider_name, intl, MIN(llm_name COLLATE \"C\"), MIN(lname), "
        f"bit_or({base.bit_case('type_str')}), CASE WHEN pg_temp.rm_json_object({first}) THEN {first} ELSE '{{}}' END, "
        f"MIN(ord), COUNT(*) FROM {CAT} GROUP BY provider_name, intl, llm_name COLLATE \"C\""))


#: The instance ``s`` holds no row of catalogue model ``c`` under any spelling (nor a nameless row when
#: the name folds to nothing; rm_group's keys are a part of rm_have's): the model's rows there are
#: seeded ones only, a group of their own.
_UNTOUCHED = f"NOT EXISTS (SELECT 1 FROM {HAVE} h WHERE h.instance_id = s.instance_id AND h.lname = c.lname)"

#: How many rows seeding adds to the groups of seeded rows only: all it would add, less what it adds to
#: the (instance, model) pairs ``tenant_model`` holds (a few thousand), without going over each row.
_SEEDED_UNTOUCHED = f"""
SELECT COALESCE((SELECT SUM(t.members) FROM {SEED} s JOIN (SELECT provider_name, intl, SUM(members) AS members
                 FROM {FOLDED} GROUP BY provider_name, intl) t ON t.provider_name = s.cat_provider AND t.intl = s.intl), 0)
     - COALESCE((SELECT SUM(c.members) FROM (SELECT DISTINCT instance_id, lname FROM {HAVE}) h
                 JOIN {SEED} s ON s.instance_id = h.instance_id
                 JOIN {FOLDED} c ON c.provider_name = s.cat_provider AND c.intl = s.intl AND c.lname = h.lname), 0)
"""

#: The rows seeding adds (VARCHAR model_type). Parameters: IdSequence.args(), create/update time.
SEEDED = f"""
SELECT {base.keyed_id(f"s.seq * {ORDINALS} + c.ord")} AS id, %s::bigint AS create_time, c.llm_name AS model_name,
       s.provider_id, s.instance_id, c.type_str AS model_type, COALESCE(g.status, 'active') AS status,
       COALESCE(g.extra, c.extra) AS extra
FROM {SEED} s
JOIN {CAT} c ON c.provider_name = s.cat_provider AND c.intl = s.intl
LEFT JOIN {GRP} g ON g.instance_id = s.instance_id AND g.lname = c.lname
WHERE NOT EXISTS (SELECT 1 FROM {HAVE} h WHERE h.instance_id = s.instance_id AND h.lname = c.lname
                  AND h.ltype = lower(c.type_str))
"""


def secondary_indexes(conn: Any) -> list[tuple[str, str]]:
    """``tenant_model``'s valid indexes that back no constraint: (quoted name, its CREATE INDEX, in its
    tablespace when that is not the database's default)."""
    return [(str(name), str(ddl) + (f" TABLESPACE {space}" if space else "")) for name, ddl, space in query(conn, (
        "SELECT x.indexrelid::regclass::text, pg_get_indexdef(x.indexrelid), quote_ident(t.spcname) FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid LEFT JOIN pg_tablespace t ON t.oid = i.reltablespace "
        "WHERE x.indrelid = 'tenant_model'::regclass AND x.indisvalid "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) ORDER BY 1"))]


class SeedingStage(PgStage):
    stage = "tenant_model_seeding"
    gate = "v0.27.0"
    description = "every catalogue model × type as a tenant_model row in every instance of its provider"
    catalog_input = "tenant_model_instance"
    requires = ("tenant_model_provider", "tenant_model_instance", "tenant_model")
    session_tables = TABLES

    def analyse(self, ctx: RunContext, meta: PgMeta, work: Work) -> None:
        int_mode = meta.is_int("tenant_model", "model_type")
        work.data["int_mode"] = int_mode
        if int_mode:
            self._analyse_int(ctx, meta, work)
            return
        work.counts["instances"] = prepare(self, ctx, meta, work)
        if work.executing:
            return
        clock, ids = Clock(), IdSequence()
        args = (*ids.args(), clock.ms)
        work.counts["models_to_seed"] = int(scalar(ctx.conn, f"SELECT COUNT(*) FROM ({SEEDED}) x", args) or 0)
        work.samples = self.sample(ctx, f"SELECT x.model_name, x.provider_id, x.instance_id, x.model_type, x.status, "
                                   f"x.extra FROM ({SEEDED}) x", args,
                                   columns=("model_name", "provider_id", "instance_id", "model_type", "status",
                                            "extra"))

    # D4: model_type is INTEGER already (RAGFlow v0.27 started first, or a rerun without our records):
    # write what the merge would have made of seeding, for the instances the migration created.
    def _analyse_int(self, ctx: RunContext, meta: PgMeta, work: Work) -> None:
        conn = ctx.conn
        prepare(self, ctx, meta, work)
        base.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
        execute(conn, f"DELETE FROM {SEED} s WHERE NOT EXISTS (SELECT 1 FROM {LLM} l JOIN {INST} i "
                f"ON i.provider_id = l.provider_id AND i.ikey = l.ikey WHERE i.id = s.instance_id)")
        work.counts["instances"] = int(scalar(conn, f"SELECT COUNT(*) FROM {SEED}") or 0)
        work.notes.append("tenant_model.model_type is already INT (D4): seeding writes merged rows (bits) for "
                          "the instances the migration created")
        if not work.executing:
            clock, ids = Clock(), IdSequence()
            work.counts["models_to_seed"] = int(scalar(conn, f"SELECT COUNT(*) FROM ({SEEDED_INT}) x",
                                                       (*ids.args(), clock.ms, clock.date, clock.ms, clock.date)) or 0)

    def write(self, ctx: RunContext, meta: PgMeta, work: Work) -> StepResult:
        if not work.data["int_mode"]:
            return StepResult(rows=work.counts["instances"], changes=0,
                              details={"written_by": "model_type_merge", "int_mode": False})
        clock, ids = Clock(), IdSequence()
        seeded = 0
        if work.counts["instances"]:
            with ctx.conn.transaction():
                seeded = logged(ctx, self.name, "INSERT INTO tenant_model (id, create_time, create_date, update_time, "
                                "update_date, model_name, provider_id, instance_id, model_type, status, extra) "
                                + SEEDED_INT, (*ids.args(), clock.ms, clock.date, clock.ms, clock.date))
        work.counts["models_to_seed"] = seeded
        return StepResult(rows=work.counts["instances"], changes=seeded,
                          details={"models_seeded": seeded, "int_mode": True})


#: D4 seeding (INTEGER model_type): one row per catalogue model with the OR of its bits, unless the
#: instance has the model (any type) or a legacy row of the instance's key disabled it.
SEEDED_INT = f"""
SELECT {base.new_id('s.seq, c.ord')}, %s::bigint, %s::timestamp, %s::bigint, %s::timestamp, c.llm_name, s.provider_id,
       s.instance_id, c.bits, 'active', c.extra
FROM {SEED} s
JOIN (SELECT provider_name, intl, lname, MIN(llm_name COLLATE "C") AS llm_name, bit_or(bit) AS bits,
             MIN(extra COLLATE "C") AS extra, MIN(ord) AS ord
      FROM {CAT} GROUP BY provider_name, intl, lname) c
  ON c.provider_name = s.cat_provider AND c.intl = s.intl
WHERE c.bits <> 0
  AND NOT EXISTS (SELECT 1 FROM {HAVE} h WHERE h.instance_id = s.instance_id AND h.lname = c.lname)
  AND NOT EXISTS (SELECT 1 FROM {LLM} l JOIN {INST} i ON i.provider_id = l.provider_id AND i.ikey = l.ikey
                  WHERE i.id = s.instance_id AND l.valid = 0 AND pg_temp.rm_fold(l.llm_name) = c.lname)
"""


_GROUPED = f"""
WITH a AS (SELECT *, {base.bit_case("model_type")} AS b, lower(status) = 'unsupported' AS uns FROM {ALL}),
g AS (
  SELECT COALESCE(MIN(id COLLATE "C") FILTER (WHERE src = 0), MIN(id COLLATE "C")) AS keep_id,
         MIN(id COLLATE "C") FILTER (WHERE NOT uns) AS sid,
         bit_or(CASE WHEN uns THEN 0 ELSE b END) & ~bit_or(CASE WHEN uns THEN b ELSE 0 END) AS bits,
         COUNT(*) AS members, COUNT(*) FILTER (WHERE src = 1) AS seeded
  FROM a GROUP BY provider_id, instance_id, model_name COLLATE "C"
)
INSERT INTO {MERGED} (id, create_time, create_date, update_time, update_date, model_name, provider_id, instance_id,
                      model_type, status, extra, kept, members, seeded)
SELECT f.id, COALESCE(f.create_time, %s::bigint), {base.date_of("COALESCE(f.create_time, %s::bigint)")},
       COALESCE(f.update_time, %s::bigint), {base.date_of("COALESCE(f.update_time, %s::bigint)")},
       f.model_name, f.provider_id, f.instance_id, g.bits, 'active',
       CASE WHEN pg_temp.rm_json_object(f.extra) THEN f.extra ELSE '{{}}' END,
       (lower(st.status) = 'active' AND g.bits <> 0), g.members, g.seeded
FROM g JOIN {ALL} f ON f.id = g.keep_id LEFT JOIN {ALL} st ON st.id = g.sid
"""

#: The groups of seeded rows only (:data:`_UNTOUCHED`), merged from :data:`FOLDED`: what :data:`_GROUPED`
#: makes of them (kept id = the first listing's, status active, kept when it has a type bit), in the
#: columns of :data:`MERGED`. Never materialised: the execution inserts them into ``tenant_model``
#: straight from here. Parameters: IdSequence.args(), then create/update time (ms) four times.
_SEEDED_GROUPS = f"""
SELECT {base.keyed_id(f"s.seq * {ORDINALS} + c.ord")} AS id, %s::bigint AS create_time,
       {base.date_of("%s::bigint")} AS create_date, %s::bigint AS update_time, {base.date_of("%s::bigint")} AS update_date,
       c.llm_name AS model_name, s.provider_id, s.instance_id, c.bits AS model_type, 'active' AS status, c.extra,
       c.bits <> 0 AS kept, c.members, c.members AS seeded
FROM {SEED} s
JOIN {FOLDED} c ON c.provider_name = s.cat_provider AND c.intl = s.intl
WHERE {_UNTOUCHED}
"""

_COLUMNS = "id, create_time, create_date, update_time, update_date, model_name, provider_id, instance_id, model_type, status, extra"


class MergeStage(PgStage):
    stage = "model_type_merge"
    gate = "v0.27.0"
    description = "one tenant_model row per (provider, instance, model), model_type as a bitmask (one transaction)"
    requires = ("tenant_model",)
    catalog_input = "tenant_model_instance"
    session_tables = TABLES

    def analyse(self, ctx: RunContext, meta: PgMeta, work: Work) -> None:
        conn = ctx.conn
        int_mode = meta.is_int("tenant_model", "model_type")
        work.data["int_mode"] = int_mode
        work.counts["rows_before"] = int(scalar(conn, "SELECT COUNT(*) FROM tenant_model") or 0)
        if int_mode:
            work.counts["zero_type_rows_to_remove"] = int(scalar(
                conn, "SELECT COUNT(*) FROM tenant_model WHERE model_type = 0") or 0)
            return
        if meta.has_table("tenant_model_instance") and meta.has_table("tenant_model_provider"):
            prepare(self, ctx, meta, work)
        else:
            base.json_functions(conn)
            for name, body in ((SEED, "seq BIGINT, instance_id TEXT, provider_id TEXT, cat_provider TEXT, intl INT"),
                               (CAT, "provider_name TEXT, intl INT, llm_name TEXT, type_str TEXT, bit INT, extra TEXT, "
                                "ord INT, lname TEXT"), (FOLDED, _FOLDED_BODY), (GRP, "instance_id TEXT, lname TEXT, status TEXT, extra TEXT"),
                               (HAVE, "instance_id TEXT, lname TEXT, ltype TEXT")):
                base.temp_table(conn, name, body)
        if work.rejections or work.executing:
            return  # the execution computes the merge under its lock, in write()
        self._compute(ctx, work)
        args = work.data["seeded_args"]
        both = f"(SELECT * FROM {MERGED} UNION ALL {_SEEDED_GROUPS}) x"
        groups, kept, seeded = query(conn, f"SELECT COUNT(*), COUNT(*) FILTER (WHERE kept), SUM(seeded) FROM {both}",
                                     args)[0]
        work.counts["models_seeded"] = int(seeded or 0)
        work.counts["groups"] = int(groups or 0)
        work.counts["rows_after"] = int(kept or 0)
        work.samples = self.sample(ctx, f"SELECT model_name, provider_id, instance_id, model_type, status, extra, "
                                   f"members FROM {both} WHERE kept AND members > 1 ORDER BY id COLLATE \"C\"", args,
                                   columns=("model_name", "provider_id", "instance_id", "model_type", "status",
                                            "extra", "rows_merged"))

    def _compute(self, ctx: RunContext, work: Work) -> None:
        """``rm_all`` (the rows of tenant_model, src 0, and the seeded ones of the groups those rows are in,
        src 1) and ``rm_merged`` (those groups); the other groups are :data:`_SEEDED_GROUPS`."""
        conn = ctx.conn
        clock, ids = Clock(), IdSequence()
        work.data["clock"] = clock
        base.temp_table(conn, ALL, "id TEXT PRIMARY KEY, create_time BIGINT, update_time BIGINT, model_name TEXT, "
                        "provider_id TEXT, instance_id TEXT, model_type TEXT, status TEXT, extra TEXT, src SMALLINT")
        logged(ctx, self.name, f"INSERT INTO {ALL} SELECT id, create_time, update_time, model_name, provider_id, "
               "instance_id, model_type::text, status, extra, 0 FROM tenant_model")
        logged(ctx, self.name, f"INSERT INTO {ALL} SELECT x.id, x.create_time, x.create_time, x.model_name, "
               f"x.provider_id, x.instance_id, x.model_type, x.status, x.extra, 1 FROM ({SEEDED} AND NOT ({_UNTOUCHED})) x",
               (*ids.args(), clock.ms))
        base.temp_table(conn, MERGED, "id TEXT PRIMARY KEY, create_time BIGINT, create_date TIMESTAMP, "
                        "update_time BIGINT, update_date TIMESTAMP, model_name TEXT, provider_id TEXT, "
                        "instance_id TEXT, model_type INTEGER, status TEXT, extra TEXT, kept BOOLEAN, members BIGINT, "
                        "seeded BIGINT")
        logged(ctx, self.name, _GROUPED, (clock.ms,) * 4)
        work.data["seeded_args"] = (*ids.args(), *(clock.ms,) * 4)

    def write(self, ctx: RunContext, meta: PgMeta, work: Work) -> StepResult:
        conn = ctx.conn
        if work.data["int_mode"]:
            removed = 0
            if work.counts.get("zero_type_rows_to_remove"):
                with conn.transaction():
                    removed = logged(ctx, self.name, "DELETE FROM tenant_model WHERE model_type = 0")
            return StepResult(rows=work.counts["rows_before"], changes=removed, details={"rows_removed": removed})
        backup = self._backup_name(meta) if work.counts["rows_before"] else None
        ctx.checkpoint()
        with conn.transaction():
            execute(conn, "LOCK TABLE tenant_model IN ACCESS EXCLUSIVE MODE")
            self._compute(ctx, work)  # under the lock: nobody changed tenant_model since
            if backup:
                logged(ctx, self.name, f"CREATE TABLE {backup} AS TABLE tenant_model", level="info")
            remapped = self._remap(ctx, meta)
            indexes = secondary_indexes(conn)
            logged(ctx, self.name, "TRUNCATE tenant_model", level="info")
            if indexes:  # built once below, over all the rows, instead of row by row
                execute(conn, "DROP INDEX " + ", ".join(name for name, _ddl in indexes))
            logged(ctx, self.name, "ALTER TABLE tenant_model ALTER COLUMN model_type TYPE integer "
                   "USING model_type::integer", level="info")
            kept = logged(ctx, self.name, f"INSERT INTO tenant_model ({_COLUMNS}) SELECT {_COLUMNS} FROM {MERGED} "
                          "WHERE kept ORDER BY id COLLATE \"C\"")
            seeded_groups = logged(ctx, self.name, f"INSERT INTO tenant_model ({_COLUMNS}) SELECT {_COLUMNS} "
                                   f"FROM ({_SEEDED_GROUPS}) x WHERE kept", work.data["seeded_args"])
            kept += seeded_groups
            for _name, ddl in indexes:
                logged(ctx, self.name, ddl, level="info")
            execute(conn, "CREATE INDEX IF NOT EXISTS tenantmodel_model_type ON tenant_model (model_type)")
        meta.forget()
        seeded = int(scalar(conn, f"SELECT SUM(seeded) FROM {MERGED}") or 0) + int(scalar(conn, _SEEDED_UNTOUCHED) or 0)
        if backup:
            ctx.notice(self.name, f"tenant_model merged; the previous rows are kept in {backup}", count=1)
        return StepResult(rows=work.counts["rows_before"], changes=work.counts["rows_before"] + seeded,
                          details={"rows_after": kept, "models_seeded": seeded, "backup": backup,
                                   "group_mapping_remapped": remapped})

    def _remap(self, ctx: RunContext, meta: PgMeta) -> int:
        """tenant_model_group_mapping rows of merged-away ids point at their group's kept id (D25)."""
        if not meta.has_table("tenant_model_group_mapping"):
            return 0
        remap = (f"SELECT a.id AS old_id, m.id AS new_id FROM {ALL} a JOIN {MERGED} m ON m.provider_id = a.provider_id "
                 "AND m.instance_id = a.instance_id AND m.model_name IS NOT DISTINCT FROM a.model_name "
                 "AND m.model_name COLLATE \"C\" IS NOT DISTINCT FROM a.model_name COLLATE \"C\" "
                 "WHERE a.src = 0 AND a.id <> m.id")
        moved = logged(ctx, self.name, (
            "INSERT INTO tenant_model_group_mapping (create_time, create_date, update_time, update_date, group_id, "
            "provider_id, instance_id, model_id, weight, status) SELECT DISTINCT g.create_time, g.create_date, "
            "g.update_time, g.update_date, g.group_id, g.provider_id, g.instance_id, r.new_id, g.weight, g.status "
            f"FROM tenant_model_group_mapping g JOIN ({remap}) r ON r.old_id = g.model_id "
            "WHERE NOT EXISTS (SELECT 1 FROM tenant_model_group_mapping h WHERE h.group_id = g.group_id "
            "AND h.provider_id = g.provider_id AND h.instance_id = g.instance_id AND h.model_id = r.new_id)"))
        logged(ctx, self.name, f"DELETE FROM tenant_model_group_mapping g USING ({remap}) r WHERE r.old_id = g.model_id")
        return moved

    def _backup_name(self, meta: PgMeta) -> str:
        now = int(time.time())
        while True:
            name = f"{BACKUP_PREFIX}tenant_model_{datetime.fromtimestamp(now, tz=UTC).strftime('%Y%m%d%H%M%S')}"
            if not meta.has_table(name):
                return name
            now += 1

    def probe(self, ctx: RunContext, meta: PgMeta) -> bool:
        if not meta.has_table("tenant_model"):
            return False
        if not meta.is_int("tenant_model", "model_type"):
            return True
        return scalar(ctx.conn, "SELECT 1 FROM tenant_model WHERE model_type = 0 LIMIT 1") is not None
