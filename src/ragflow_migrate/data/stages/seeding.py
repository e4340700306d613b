"""Stage 5, ``tenant_model_seeding``: every catalogue model in every instance (spec §3.5).

v0.27 has no catalogue fallback: a model works only if its row exists. So every instance of a
provider named like a catalogue factory (SiliconFlow split by the instance's region) gets one
row per catalogue model and type, unless ``(provider, instance, model, type)`` exists.

Values (FIX D10, CHOICE D11): status and ``extra`` come from the **same**
``(instance, model_name)`` group only (a model one tenant disabled stays disabled for that
tenant's instance, and nobody else's); otherwise ``active`` and the catalogue's
``{"is_tools": true, "max_tokens": N}``. Set-based: one ``INSERT … SELECT`` per range of
instances, joining a staged copy of the catalogue.

While ``model_type`` is VARCHAR (the normal path) this stage only checks and counts: the rows
are written by the merge, the next stage, in the same pass as it merges them (spec §3.5,
set-based 3; :mod:`.seed_merge`), once instead of twice. The merge seeds whenever it runs on a
VARCHAR ``model_type``, so a stop between the two stages, or a run of the merge alone, loses
no model. The dry run still counts (and samples) the rows seeding adds.

When ``model_type`` is already INT (RAGFlow's v0.27 startup ran first, D4), seeding writes
what the merge would have made of it: one row per model with the OR of its bits, for the
instances the migration created, skipping models the legacy rows disabled.
"""

from __future__ import annotations

from typing import Any

from ...errors import ConfigError, StepFailedError
from ...steps import RunContext, StepResult
from .. import sqlkit, staging
from ..sqlkit import Meta, Raw, render
from .base import ORDINALS, Clock, DataStage, IdSequence, Work

CAT = "rm_cat"
CAT_COLUMNS = ("provider_name", "intl", "llm_name", "type_str", "bit", "extra", "ord")
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
  {instance_id},
  `provider_id` VARCHAR(32) NOT NULL,
  `ikey` BINARY(16) NULL,
  `cat_provider` VARCHAR(128) NOT NULL,
  `intl` TINYINT NOT NULL,
  KEY `rm_seed_inst_i` (`instance_id`)
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
# The rows seeding adds to the instances {page} selects, before any is written: each catalogue row
# of each instance's provider that the instance lacks, with its (instance, model) group ``g`` (D10, D11).
_SEEDED_SOURCE = """
FROM {drive}{seed} s
STRAIGHT_JOIN {cat} c ON c.`provider_name` = s.`cat_provider` AND c.`intl` = s.`intl`
LEFT JOIN {grp} g ON g.`instance_id` = s.`instance_id` AND g.`model_name` = c.`llm_name` {cmn}
WHERE {page}
  AND NOT EXISTS (SELECT 1 FROM {have} h WHERE h.`instance_id` = s.`instance_id`
                  AND h.`model_name` = c.`llm_name` {cmn} AND h.`model_type` = c.`type_str` {cmt})
"""
_INSERT_STRING = """
INSERT INTO {target} (`id`, `create_time`, `create_date`, `update_time`, `update_date`, `model_name`,
                      `provider_id`, `instance_id`, `model_type`, `status`, `extra`)
SELECT {newid} AS `id`, %s AS `ct`, %s AS `cd`, %s AS `ut`, %s AS `ud`, c.`llm_name` AS `model_name`,
       s.`provider_id` AS `provider_id`, s.`instance_id` AS `instance_id`, c.`type_str` AS `model_type`,
       COALESCE(g.`status`, 'active') AS `status`, COALESCE(g.`extra`, c.`extra`) AS `extra`
{source}ORDER BY s.`seq`, c.`ord`
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


def model_column(meta: Meta, column: str, *, name: str | None = None, nullable: bool = False) -> str:
    """``tenant_model``'s own definition of a column (type, collation, NULL) for a session table, so
    that comparisons with it need no ``COLLATE`` (``name``: under another name; ``nullable``: NULL
    allowed whatever the column says)."""
    info = meta.column("tenant_model", column)
    if info is None:
        raise StepFailedError(f"tenant_model has no column {column}; nothing was changed",
                              hint="tenant_model is not a RAGFlow v0.26 table; check the database")
    coll = f" {meta.collation('tenant_model', column)}" if info.collation else ""
    null = "NULL" if nullable or info.nullable else "NOT NULL"
    return f"{sqlkit.dialect.quote(name or column)} {info.column_type}{coll} {null}"


def have_table(conn: Any, meta: Meta, name: str) -> None:
    """(instance, model, type) already in tenant_model (or a page of it): each seeded row is made once
    per run, so checking this snapshot by its key equals checking the live table (which has no such key)."""
    sqlkit.temp_table(conn, name, ",\n".join(model_column(meta, c) for c in ("instance_id", "model_name", "model_type"))
                      + render(",\nKEY {k} (`instance_id`, `model_name`, `model_type`)", k=name + "_k"))


def fill_have(conn: Any, name: str, src: str) -> None:
    sqlkit.execute(conn, render("INSERT INTO {h} (`instance_id`, `model_name`, `model_type`) SELECT `instance_id`, "
                                "COALESCE(`model_name`, ''), `model_type` FROM {s}", h=name, s=src))


def group_table(conn: Any, meta: Meta, name: str) -> None:
    """Per existing (instance, model): its status and extra for the rows seeding adds (D10, D11)."""
    cols = (model_column(meta, "instance_id"), model_column(meta, "model_name"),
            model_column(meta, "status", nullable=True), model_column(meta, "extra", nullable=True),
            model_column(meta, "id", name="sid", nullable=True), model_column(meta, "id", name="eid", nullable=True))
    sqlkit.temp_table(conn, name, ",\n".join(cols) + render(",\nKEY {k} (`instance_id`, `model_name`)", k=name + "_k"))


def fill_groups(conn: Any, name: str, src: str) -> None:
    """Each (instance, model)'s first status that is not 'unsupported' (none: NULL, seeded as 'active')
    and first usable extra, in id order (FIX D10, CHOICE D11): the ids by GROUP BY, then the values read
    back (a window over the rows cost 5x on MySQL). Every statement names each table once (MySQL
    cannot reopen a session table within one)."""
    sqlkit.execute(conn, render(
        "INSERT INTO {g} (`instance_id`, `model_name`, `sid`, `eid`) SELECT m.`instance_id`, m.`model_name`, "
        "MIN(IF(m.`status` <> 'unsupported', m.`id`, NULL)), MIN(IF(" + GOOD_EXTRA + ", m.`id`, NULL)) "
        "FROM {s} m WHERE m.`model_name` IS NOT NULL GROUP BY m.`instance_id`, m.`model_name`", g=name, s=src))
    for value, key in (("status", "sid"), ("extra", "eid")):
        sqlkit.execute(conn, render("UPDATE {g} g STRAIGHT_JOIN {s} m ON m.`id` = g.{k} SET g.{v} = m.{v}",
                                    g=name, s=src, k=key, v=value))


def seed_table(conn: Any, meta: Meta) -> None:
    """``rm_seed_inst``, empty: the instance id in ``tenant_model.instance_id``'s own definition and
    indexed, so the merge's pages (ranges of that column) select the same instances from both."""
    sqlkit.temp_table(conn, SEED, render(_SEED_BODY, instance_id=Raw(model_column(meta, "instance_id"))))


#: The seeding pages of the stage itself (INT mode, and the dry run's counts): ranges of ``seq``.
SEQ_PAGE = Raw("s.`seq` > %s AND s.`seq` <= %s")


def build_catalog(ctx: RunContext, stage: DataStage, meta: Meta, work: Work) -> None:
    """The catalogue as a session table (one row per model and type), and the rows too long for
    ``tenant_model`` rejected up front (nothing is written when one is)."""
    conn = ctx.conn
    catalog = stage.catalog(ctx)
    rows = catalog.seed_rows()
    if len(rows) >= ORDINALS:  # ids of seeded rows are (instance, catalogue row) numbers
        raise ConfigError(f"model catalogue {catalog.path} lists {len(rows)} model types; at most {ORDINALS - 1} "
                          "are supported", hint="is this RAGFlow's llm_factories.json?")
    load_catalog(conn, [(r.provider_name, r.intl, r.llm_name, r.type_str, r.bit, r.extra, r.order) for r in rows])
    for column, expr in (("model_name", "`llm_name`"), ("model_type", "`type_str`"), ("extra", "`extra`")):
        limit = meta.max_length("tenant_model", column)
        if limit is None or (column == "model_type" and meta.is_int("tenant_model", "model_type")):
            continue
        bad = sqlkit.query(conn, render("SELECT DISTINCT `provider_name`, `llm_name` FROM {t} WHERE "
                                        "CHAR_LENGTH(", t=CAT) + expr + ") > %s", (limit,))
        if bad:
            longest = sqlkit.query(conn, f"SELECT MAX(CHAR_LENGTH({expr})), MAX(LENGTH({expr})) "
                                   + render("FROM {t}", t=CAT))[0]
            work.reject("tenant_model", column, limit, len(bad), [list(b) for b in bad[:20]],
                        f"too long in the catalogue {catalog.path}", needed=(int(longest[0]), int(longest[1])))


def load_catalog(conn: Any, rows: list[tuple]) -> None:
    """``rm_cat`` holding ``rows`` (in :data:`CAT_COLUMNS` order)."""
    sqlkit.temp_table(conn, CAT, _CAT_BODY)
    for i in range(0, len(rows), 1000):
        sqlkit.insert_rows(conn, CAT, CAT_COLUMNS, rows[i:i + 1000])


def catalog_rows(conn: Any) -> list[tuple]:
    """This session's ``rm_cat``, to load into another session (:func:`load_catalog`)."""
    return sqlkit.query(conn, "SELECT " + ", ".join(f"`{c}`" for c in CAT_COLUMNS) + render(" FROM {t} ORDER BY `ord`",
                                                                                          t=CAT))


def seed_fingerprint(conn: Any) -> tuple:
    """Count and checksum of this session's ``rm_seed_inst``: two sessions seed the same instances with
    the same numbers (``seq``, hence the same ids) when these are equal."""
    return tuple(sqlkit.query(conn, render(
        "SELECT COUNT(*), COALESCE(MAX(`seq`), 0), COALESCE(BIT_XOR(CRC32(CONCAT_WS(0x1f, `seq`, `instance_id`, "
        "`provider_id`, `cat_provider`, `intl`))), 0) FROM {t}", t=SEED))[0])


def build_seed_instances(ctx: RunContext, meta: Meta) -> int:
    """``rm_seed_inst``: every instance of a provider named like a catalogue factory (VARCHAR
    ``model_type``), in id order; returns how many."""
    seed_table(ctx.conn, meta)
    sqlkit.execute(ctx.conn, render(_SEED_STRING, seed=SEED, cat=CAT,
                                    cpi=meta.collation("tenant_model_provider", "id"),
                                    cpn=meta.collation("tenant_model_provider", "provider_name")))
    return int(sqlkit.scalar(ctx.conn, render("SELECT COUNT(*) FROM {t}", t=SEED)) or 0)


def seeded_source_sql(meta: Meta, *, grp: str, have: str, page: Raw, drive: str = "") -> str:
    """``FROM … WHERE …`` of the rows seeding adds (VARCHAR ``model_type``) to the instances ``page``
    selects: ``s`` the instance, ``c`` the catalogue row, ``g`` its (instance, model) group. ``drive``:
    a table joined first (``"t x STRAIGHT_JOIN "``), which ``page`` then relates to ``s`` and ``c``, to
    read only the instances and models it names. Parameters: the page's own."""
    return render(_SEEDED_SOURCE, seed=SEED, cat=CAT, grp=grp, have=have, page=page, drive=Raw(drive),
                  cmn=meta.collation("tenant_model", "model_name"),
                  cmt=meta.collation("tenant_model", "model_type"))


def seeded_rows_sql(meta: Meta, *, target: str, grp: str, have: str, page: Raw, drive: str = "") -> str:
    """``INSERT INTO target … SELECT`` of the rows seeding adds (:func:`seeded_source_sql`).
    Parameters: :meth:`IdSequence.args`, create time and date, update time and date, then the page's own."""
    return render(_INSERT_STRING, target=target, newid=Raw(IdSequence.sql_keyed("s.`seq`", "c.`ord`")),
                  source=Raw(seeded_source_sql(meta, grp=grp, have=have, page=page, drive=drive)))


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
        build_catalog(ctx, self, meta, work)
        if int_mode:
            staging.build_llm(ctx, self.name, meta, batch=self.batch(ctx))
            staging.attach_providers(ctx, self.name, meta)
            staging.build_instances(ctx, self.name, meta, batch=self.batch(ctx))
            seed_table(conn, meta)
            sqlkit.execute(conn, render(_SEED_INT, seed=SEED, inst=staging.INST, cat=CAT, llm=staging.LLM,
                                        cpi=meta.collation("tenant_model_provider", "id"),
                                        cpn=meta.collation("tenant_model_provider", "provider_name")))
            work.counts["instances"] = int(sqlkit.scalar(conn, render("SELECT COUNT(*) FROM {t}", t=SEED)) or 0)
            work.notes.append("tenant_model.model_type is already INT (D4): seeding writes merged rows (bits) for "
                              "the instances the migration created")
        else:
            work.counts["instances"] = build_seed_instances(ctx, meta)
            if work.executing:
                return  # the merge writes these rows, merged, in the same pass (see write)
            group_table(conn, meta, GROUP)
            fill_groups(conn, GROUP, "tenant_model")
        have_table(conn, meta, HAVE)
        fill_have(conn, HAVE, "tenant_model")
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

    def _select(self, meta: Meta, int_mode: bool) -> str:
        if not int_mode:
            sql = seeded_rows_sql(meta, target="tenant_model", grp=GROUP, have=HAVE, page=SEQ_PAGE)
            return sql[sql.index("SELECT"):]
        sql = _INSERT_INT[_INSERT_INT.index("SELECT"):]
        return render(sql, seed=SEED, cat=CAT, llm=staging.LLM, have=HAVE,
                      newid=Raw(IdSequence.sql("s.`seq`, c.`ord`")),
                      cmn=meta.collation("tenant_model", "model_name"),
                      cln=meta.collation("tenant_llm", "llm_name") if meta.has_table("tenant_llm") else Raw(""))

    @staticmethod
    def _args(ids: IdSequence, clock: Clock, after: int | None, upto: int | None) -> tuple:
        return (*ids.args(), clock.ms, clock.date, clock.ms, clock.date, after or 0,
                upto if upto is not None else 2**62)

    def _ranges(self, ctx: RunContext):
        # about batch_size rows per transaction: a catalogue factory lists up to ~100 model × type rows
        return sqlkit.key_ranges(ctx.conn, SEED, "seq", max(1, self.batch(ctx) // 50))

    def write(self, ctx: RunContext, meta: Meta, work: Work) -> StepResult:
        if not work.data["int_mode"]:
            # Seed and merge in one pass (spec §3.5, set-based 3): model_type_merge, the next stage, adds
            # these rows to the groups it merges, page by page, so they are written once, merged, instead
            # of into tenant_model and then again into its merged copy. The merge seeds whenever it runs on
            # a VARCHAR model_type, so a stop between the two stages loses nothing.
            return StepResult(rows=work.counts["instances"], changes=0,
                              details={"written_by": "model_type_merge", "int_mode": False})
        clock, ids = Clock(), IdSequence()
        progress = ctx.progress(self.name, work.counts["instances"], unit="instances")
        insert = "INSERT INTO `tenant_model` (`id`, `create_time`, `create_date`, `update_time`, `update_date`, " \
                 "`model_name`, `provider_id`, `instance_id`, `model_type`, `status`, `extra`) " \
                 + self._select(meta, True)
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
                          details={"models_seeded": seeded, "int_mode": True})

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
