"""Seeding and the merge in one pass, while ``model_type`` is VARCHAR (spec §3.5, set-based 3).

Seeding (stage 5) would add one row per catalogue model and type to every instance, and the merge
(stage 6) would then read them all back and write one merged row per model into a new table:
every seeded row written twice, the first time into the live, fully indexed ``tenant_model``.
Here the merge takes the instances a page at a time and, in session tables only (no redo, no
binary log, no secondary index of the live table to maintain):

1. copies the page's ``tenant_model`` rows (``src`` 0) into ``rm_pg``;
2. adds the rows seeding would have added to those instances (``src`` 1), with seeding's own
   statement (:func:`seeding.seeded_rows_sql`): its ids, its values from the same
   ``(instance, model)`` group (D10, D11), its skip of ``(instance, model, type)`` already there;
3. groups the page as the merge does (``rm_pg_agg``): type bits, the first status that is not
   ``unsupported``, and the row the group keeps: its first row of ``tenant_model``, a seeded one
   only when it has none. So the kept id (FIX D25: ``tenant_model_group_mapping`` is remapped to
   it) is one that exists before the swap and is the same on every run, while seeded ids are
   new on each run: a stop between the remap and the swap leaves no mapping pointing nowhere;
4. writes the kept groups into the new table (one ``INSERT … SELECT``).

The result is row for row what seeding followed by the merge writes. Every page reads whole
instances (pages are ranges of ``tenant_model.instance_id`` in that column's own collation, so
the page's seeded instances and its existing rows fall in the same range), and every table is
referenced once per statement (MySQL cannot reopen a session table within one statement).
Each ``tenant_model`` row must be read exactly once: the build fails when the pages' count
differs from the table's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import pymysql.cursors

from ...errors import StepFailedError
from ...steps import RunContext
from .. import canonical, lanes, sqlkit
from ..sqlkit import Meta, Raw, render
from . import seeding
from .base import ORDINALS, Clock, IdSequence

PAGE = "rm_pg"
PAGE_HAVE = "rm_pg_have"
PAGE_GROUP = "rm_pg_group"
PAGE_AGG = "rm_pg_agg"
PAGE_KEYS = "rm_pg_keys"
DRIVER = "rm_pg_inst"
REMAP = "rm_remap"
FOLD = "rm_cat_fold"
TABLES = (PAGE, PAGE_HAVE, PAGE_GROUP, PAGE_AGG, PAGE_KEYS, DRIVER, REMAP, FOLD, seeding.CAT, seeding.SEED)

SAMPLES = 5
_COLUMNS = ("id", "create_time", "create_date", "update_time", "update_date", "model_name", "provider_id",
            "instance_id", "model_type", "status", "extra")
_COLUMN_LIST = ", ".join(sqlkit.dialect.quote(c) for c in _COLUMNS)
# The group's status (g: its aggregate, f: its first row).
_STATUS = ("(CASE WHEN g.`sid` IS NULL THEN 'unsupported' WHEN g.`sid` = g.`id` THEN f.`status` "
           "ELSE g.`status` END)")
_KEPT = "(" + _STATUS + " = 'active' AND g.`bits` <> 0)"
_GOOD_OBJECT = "CASE WHEN JSON_VALID(f.`extra`) THEN JSON_TYPE(f.`extra`) = 'OBJECT' ELSE 0 END"


class SeedMerge:
    """The page loop of the VARCHAR merge; :meth:`prepare`, then :meth:`pages` and :meth:`run_page`."""

    #: The execution writes groups of seeded rows only straight into the new table (False: every
    #: seeded row goes through ``rm_pg`` and the merge's GROUP BY, as the dry run's count does).
    split = True

    def __init__(self, ctx: RunContext, meta: Meta, step: str, *, page_rows: int, remap: bool) -> None:
        self.ctx, self.meta, self.step = ctx, meta, step
        self.page_rows = max(1, page_rows)
        self.remap = remap
        self.clock, self.ids = Clock(), IdSequence()
        self.instances = self.seeded = self.read = self.written = 0
        self.groups = self.dropped_inactive = 0  # counted by the dry run
        self.samples: list[tuple] = []
        self._per_instance = 1
        self.driver = 0
        self._seed_fingerprint: tuple | None = None

    # -- set-up ---------------------------------------------------------------------------------------

    def prepare(self, stage: Any, work: Any, existing: int) -> None:
        """Session tables: the catalogue (rows too long are rejected into ``work``), the instances to
        seed, the page tables and the page driver (every instance id of either source, once).
        ``existing``: tenant_model's row count, to size the pages."""
        conn, meta = self.ctx.conn, self.meta
        if meta.has_table("tenant_model_instance") and meta.has_table("tenant_model_provider"):
            seeding.build_catalog(self.ctx, stage, meta, work)
            self.instances = seeding.build_seed_instances(self.ctx, meta)
            self._seed_fingerprint = seeding.seed_fingerprint(conn)
        else:
            seeding.seed_table(conn, meta)
        col = functools.partial(seeding.model_column, meta)
        self._page_tables()
        sqlkit.temp_table(conn, DRIVER, col("instance_id") + ",\nPRIMARY KEY (`instance_id`)")
        sqlkit.logged(self.ctx, self.step, render("INSERT INTO {d} (`instance_id`) SELECT `instance_id` "
                                                  "FROM `tenant_model` UNION SELECT `instance_id` FROM {s}",
                                                  d=DRIVER, s=seeding.SEED))
        driver = int(sqlkit.scalar(conn, render("SELECT COUNT(*) FROM {d}", d=DRIVER)) or 0)
        self._offered = 0
        if self.instances:
            self._offered = int(sqlkit.scalar(conn, render(
                "SELECT COALESCE(SUM(n.`n`), 0) FROM {s} s JOIN (SELECT `provider_name`, `intl`, COUNT(*) AS `n` "
                "FROM {c} GROUP BY `provider_name`, `intl`) n ON n.`provider_name` = s.`cat_provider` "
                "AND n.`intl` = s.`intl`", s=seeding.SEED, c=seeding.CAT)) or 0)
        self._per_instance = max(1, (existing + self._offered) // max(1, driver))
        self.driver = driver

    def _page_tables(self) -> None:
        """This session's page tables, emptied and refilled by every page."""
        conn, meta = self.ctx.conn, self.meta
        col = functools.partial(seeding.model_column, meta)
        sqlkit.temp_table(conn, PAGE, ",\n".join(col(c) for c in _COLUMNS) + ",\n`src` TINYINT NOT NULL DEFAULT 1,\n"
                          "PRIMARY KEY (`id`)")
        seeding.have_table(conn, meta, PAGE_HAVE)
        seeding.group_table(conn, meta, PAGE_GROUP)
        name = meta.column("tenant_model", "model_name")
        self._charset = (name.collation or "utf8mb4").split("_")[0]
        sqlkit.temp_table(conn, PAGE_KEYS, ",\n".join((col("provider_id"), col("instance_id"),
                                                       f"`name_bin` VARBINARY({4 * (name.max_length or 255)}) NOT NULL",
                                                       render("KEY {k} (`instance_id`)", k=PAGE_KEYS + "_i"))))
        sqlkit.temp_table(conn, PAGE_AGG, ",\n".join((col("id"), col("id", name="sid", nullable=True),
                                                      "`bits` BIGINT NOT NULL", "`members` INT NOT NULL",
                                                      col("status", nullable=True), "PRIMARY KEY (`id`)")))
        if self.remap:
            sqlkit.temp_table(conn, REMAP, ",\n".join((col("id", name="old_id"), col("id", name="new_id"),
                                                       "PRIMARY KEY (`old_id`)")))
        if self.instances:
            self._fold_catalogue()

    def _fold_catalogue(self) -> None:
        """``rm_cat_fold``: the catalogue merged per model, as the merge merges a group made of seeded
        rows only (:meth:`_write_seeded_groups`): one row per (factory, region, name as
        ``tenant_model.model_name`` stores it), its types OR-ed, the ``extra`` of its first catalogue row
        (or ``{}`` when that is no JSON object) and that row's ordinal. Computed once per session instead
        of once per seeded instance (M: 1.08M groups folded from 3.1M rows)."""
        conn = self.ctx.conn
        first_extra = "SUBSTRING(MIN(CONCAT(LPAD(`ord`, 20, '0'), `extra`)), 21)"
        good = f"CASE WHEN JSON_VALID({first_extra}) THEN JSON_TYPE({first_extra}) = 'OBJECT' ELSE 0 END"
        sqlkit.temp_table(conn, FOLD, "`provider_name` VARCHAR(128) NOT NULL,\n`intl` TINYINT NOT NULL,\n"
                          "`llm_name` VARCHAR(255) NOT NULL,\n`bits` BIGINT NOT NULL,\n`extra` VARCHAR(2048) NOT NULL,\n"
                          "`ord` INT NOT NULL,\n" + render("KEY {k} (`provider_name`, `intl`)", k=FOLD + "_k"))
        sqlkit.execute(conn, render(
            "INSERT INTO {f} (`provider_name`, `intl`, `llm_name`, `bits`, `extra`, `ord`) SELECT `provider_name`, "
            "`intl`, MIN(`llm_name`), BIT_OR({bit}), IF({good}, {first}, '{{}}'), MIN(`ord`) FROM {c} "
            "GROUP BY `provider_name`, `intl`, ", f=FOLD, c=seeding.CAT, bit=Raw(canonical.bit_case_sql("`type_str`")),
            good=Raw(good), first=Raw(first_extra)) + self._name_bin("`llm_name`"))

    # -- the pages, on one session or several ---------------------------------------------------------

    def run_pages(self, new_table: str | None, progress: Callable[[int], None] | None = None) -> None:
        """Every page (:meth:`run_page`), on as many sessions as :mod:`..lanes` gives; the counts,
        samples and remapped ids of the other sessions are gathered into this one."""
        pages = list(self.pages())
        catalogue = seeding.catalog_rows(self.ctx.conn) if self.instances and lanes.count(self.ctx, len(pages)) > 1 else []
        lanes.run(self.ctx, self.step, pages,
                  setup=lambda lane_ctx, i: self if i == 0 else self._lane(lane_ctx, catalogue),
                  work=lambda lane, page: lane.run_page(new_table, *page), finish=self._gather, progress=progress)

    def _lane(self, ctx: RunContext, catalogue: list[tuple]) -> SeedMerge:
        """This merge on another session: its own copies of the catalogue, of the instances to seed (built
        by the same statement, checked equal) and of the page tables; the same clock and ids."""
        lane = SeedMerge(ctx, Meta(ctx.conn), self.step, page_rows=self.page_rows, remap=self.remap)
        lane.clock, lane.ids, lane._per_instance, lane.driver = self.clock, self.ids, self._per_instance, self.driver
        if self.instances:
            seeding.load_catalog(ctx.conn, catalogue)
            lane.instances = seeding.build_seed_instances(ctx, lane.meta)
            if seeding.seed_fingerprint(ctx.conn) != self._seed_fingerprint:
                raise StepFailedError(f"{self.step}: tenant_model_instance changed while the merge was being prepared; "
                                      "tenant_model is unchanged",
                                      hint="stop the RAGFlow pods that write to it, then run again")
        else:
            seeding.seed_table(ctx.conn, lane.meta)
        lane._page_tables()
        return lane

    def _gather(self, lane: SeedMerge) -> None:
        """Fold another session's counts, samples and remapped ids into this one (before it closes)."""
        self.read += lane.read
        self.written += lane.written
        self.seeded += lane.seeded
        self.groups += lane.groups
        self.dropped_inactive += lane.dropped_inactive
        self.samples = (self.samples + lane.samples)[:SAMPLES]
        if not self.remap:
            return
        with lane.ctx.conn.cursor(pymysql.cursors.SSCursor) as cur:  # streamed: memory stays flat
            cur.execute(render("SELECT `old_id`, `new_id` FROM {r}", r=REMAP))
            while rows := cur.fetchmany(5000):
                sqlkit.insert_rows(self.ctx.conn, REMAP, ("old_id", "new_id"), rows)

    def pages(self) -> Iterator[tuple[Any, Any]]:
        """Ranges of instance ids of about ``page_rows`` rows each (existing and seeded together)."""
        return sqlkit.key_ranges(self.ctx.conn, DRIVER, "instance_id", self.page_instances)

    @property
    def page_instances(self) -> int:
        return max(1, self.page_rows // self._per_instance)

    # -- one page -------------------------------------------------------------------------------------

    def run_page(self, new_table: str | None, after: Any, upto: Any) -> int:
        """Merge one page of instances into ``new_table`` (None: only count, for the dry run);
        returns the rows written (or that would be)."""
        ctx, conn = self.ctx, self.ctx.conn
        for table in (PAGE, PAGE_HAVE, PAGE_GROUP, PAGE_AGG, PAGE_KEYS):
            sqlkit.clear_temp(conn, table)
        cond, args = sqlkit.range_condition("m.`instance_id`", after, upto)
        self.read += sqlkit.logged(ctx, self.step, render("INSERT INTO {p} (", p=PAGE) + _COLUMN_LIST + ", `src`) SELECT "
                                   + ", ".join(f"m.{sqlkit.dialect.quote(c)}" for c in _COLUMNS)
                                   + ", 0 FROM `tenant_model` m WHERE " + cond, args)
        direct = new_table is not None and bool(self.instances) and self.split
        if self.instances:
            self._seed(after, upto, shared_only=direct)
        sqlkit.logged(ctx, self.step, render(
            "INSERT INTO {a} (`id`, `sid`, `bits`, `members`) SELECT COALESCE(MIN(IF(m.`src` = 0, m.`id`, NULL)), "
            "MIN(m.`id`)), MIN(IF(m.`status` <> 'unsupported', "
            "m.`id`, NULL)), BIT_OR(IF(m.`status` <> 'unsupported', {bit}, 0)) & ~BIT_OR(IF(m.`status` = "
            "'unsupported', {bit}, 0)), COUNT(*) FROM {p} m GROUP BY m.`provider_id`, m.`instance_id`, CAST(m.`model_name` AS BINARY)",
            a=PAGE_AGG, p=PAGE, bit=Raw(canonical.bit_case_sql("m.`model_type`"))))
        # the group's status: that of its first row that is not 'unsupported' (none: 'unsupported'); read
        # here only when that is not the group's first row (which the final join reads anyway)
        sqlkit.logged(ctx, self.step, render("UPDATE {a} g STRAIGHT_JOIN {p} s ON s.`id` = g.`sid` "
                                             "SET g.`status` = s.`status` WHERE g.`sid` <> g.`id`", a=PAGE_AGG, p=PAGE))
        if self.remap:
            sqlkit.logged(ctx, self.step, render(
                "INSERT INTO {r} (`old_id`, `new_id`) SELECT x.`id`, x.`first` FROM (SELECT m.`id`, m.`src`, "
                "FIRST_VALUE(m.`id`) OVER (PARTITION BY m.`provider_id`, m.`instance_id`, CAST(m.`model_name` AS "
                "BINARY) ORDER BY m.`src`, m.`id`) AS `first` FROM {p} m) x WHERE x.`src` = 0 AND x.`id` <> x.`first`",
                r=REMAP, p=PAGE))
        if new_table is None:
            return self._count_page()
        now = self.clock.ms
        with sqlkit.transaction(conn):
            written = sqlkit.logged(ctx, self.step, render("INSERT INTO {n} (", n=new_table) + _COLUMN_LIST + render(
                ") SELECT f.`id`, COALESCE(f.`create_time`, %s), FROM_UNIXTIME(FLOOR(COALESCE(f.`create_time`, %s) "
                "/ 1000)), COALESCE(f.`update_time`, %s), FROM_UNIXTIME(FLOOR(COALESCE(f.`update_time`, %s) / 1000)), "
                "f.`model_name`, f.`provider_id`, f.`instance_id`, g.`bits`, 'active', IF({good}, f.`extra`, '{{}}') "
                "FROM {a} g STRAIGHT_JOIN {p} f ON f.`id` = g.`id` WHERE " + _KEPT, good=Raw(_GOOD_OBJECT), a=PAGE_AGG, p=PAGE),
                (now, now, now, now))
            if direct:
                written += self._write_seeded_groups(new_table, after, upto)
        self.written += written
        return written

    def _count_page(self) -> int:
        groups, kept, inactive = (int(v or 0) for v in sqlkit.query(self.ctx.conn, render(
            "SELECT COUNT(*), SUM(" + _KEPT + "), SUM(NOT (" + _STATUS + " <=> 'active')) FROM {a} g STRAIGHT_JOIN "
            "{p} f ON f.`id` = g.`id`", a=PAGE_AGG, p=PAGE))[0])
        self.groups += groups
        self.dropped_inactive += inactive
        self.written += kept
        if len(self.samples) < SAMPLES:
            self.samples += sqlkit.query(self.ctx.conn, render(
                "SELECT f.`model_name`, f.`provider_id`, f.`instance_id`, g.`bits`, " + _STATUS
                + ", IF({good}, f.`extra`, '{{}}'), g.`members` FROM {a} g STRAIGHT_JOIN {p} f "
                "ON f.`id` = g.`id` WHERE g.`members` > 1 ORDER BY g.`id` LIMIT %s", good=Raw(_GOOD_OBJECT),
                a=PAGE_AGG, p=PAGE), (SAMPLES - len(self.samples),))
        return kept

    def _seed(self, after: Any, upto: Any, *, shared_only: bool) -> None:
        """The page's share of stage 5: the rows seeding adds to these instances, into ``rm_pg``.

        ``shared_only`` (the execution): only the seeded rows whose group also holds a row of
        ``tenant_model`` (same provider, instance and name, byte for byte) go through ``rm_pg``;
        the others, most of them, form groups of seeded rows only, which
        :meth:`_write_seeded_groups` writes merged straight into the new table; the count of
        seeded rows is then taken once, at the end (:meth:`count_split_seeded`)."""
        ctx, conn = self.ctx, self.ctx.conn
        seeding.fill_have(conn, PAGE_HAVE, PAGE)
        seeding.fill_groups(conn, PAGE_GROUP, PAGE)
        cond, args = sqlkit.range_condition("s.`instance_id`", after, upto)
        drive = ""
        if shared_only:
            sqlkit.execute(conn, render(
                "INSERT INTO {k} (`provider_id`, `instance_id`, `name_bin`) SELECT DISTINCT `provider_id`, "
                "`instance_id`, CAST(`model_name` AS BINARY) FROM {p} WHERE `model_name` IS NOT NULL",
                k=PAGE_KEYS, p=PAGE))
            # read from the page's few group keys, not from every model of every instance
            drive = render("{k} k STRAIGHT_JOIN ", k=PAGE_KEYS)
            cond += " AND " + self._key_match()
        sql = seeding.seeded_rows_sql(self.meta, target=PAGE, grp=PAGE_GROUP, have=PAGE_HAVE, page=Raw(cond),
                                      drive=drive)
        clock = self.clock
        n = sqlkit.logged(ctx, self.step, sql, (*self.ids.args(), clock.ms, clock.date, clock.ms, clock.date, *args))
        if not shared_only:
            self.seeded += n

    def _key_match(self, name: str = "c.`llm_name`") -> str:
        """The catalogue model ``name`` seeded into instance ``s`` has the group key ``k`` of ``rm_pg_keys``."""
        return render("k.`instance_id` = s.`instance_id` AND k.`provider_id` = s.`provider_id` {cp} AND k.`name_bin` = ",
                      cp=self.meta.collation("tenant_model", "provider_id")) + self._name_bin(name)

    def _name_bin(self, expr: str) -> str:
        """A catalogue name's bytes as ``tenant_model.model_name`` stores them (the merge's group key)."""
        return f"CAST(CONVERT({expr} USING {self._charset}) AS BINARY)"

    def count_split_seeded(self) -> None:
        """After a split execution: the rows seeding added (part of them written merged, never one by
        one), from the catalogue: every model × type of every seeded instance, minus the (model, type)
        pairs the instance already had, read once from tenant_model (unchanged meanwhile: checked)."""
        if not (self.split and self.instances):
            return
        meta = self.meta
        present = int(sqlkit.scalar(self.ctx.conn, render(
            "SELECT COUNT(DISTINCT s.`seq`, c.`ord`) FROM {s} s STRAIGHT_JOIN `tenant_model` m ON m.`instance_id` = "
            "s.`instance_id` STRAIGHT_JOIN {c} c ON c.`provider_name` = s.`cat_provider` AND c.`intl` = s.`intl` "
            "AND m.`model_name` = c.`llm_name` {cmn} AND m.`model_type` = c.`type_str` {cmt}",
            s=seeding.SEED, c=seeding.CAT, cmn=meta.collation("tenant_model", "model_name"),
            cmt=meta.collation("tenant_model", "model_type"))) or 0)
        self.seeded = self._offered - present

    def _write_seeded_groups(self, new_table: str, after: Any, upto: Any) -> int:
        """The groups made of seeded rows only, merged as :meth:`run_page` merges a group: one row per
        (provider, instance, name), id and ``extra`` of its first row (lowest catalogue row), type the
        OR of its rows' bits; kept when its status (seeding's, from the same (instance, model): D10,
        D11) is active. Seeded rows are never ``unsupported``, so no bit is taken away.

        Nearly all of them are models the instance has no row of under any spelling its collation
        equates: no type of theirs is skipped and their status and ``extra`` are the catalogue's, so the
        merged row is the folded catalogue's (:meth:`_fold_catalogue`), written with one join. The rest
        (a name the instance holds in another case or accent) go through the row-by-row merge."""
        cond, args = sqlkit.range_condition("s.`instance_id`", after, upto)
        meta, ms = self.meta, self.clock.ms
        # The instance holds a row of that name (as its collation compares names): rm_pg_group has every
        # named row of the page; a blank name also matches rows without one (rm_pg_have's '').
        held = render("SELECT 1 FROM {g} g WHERE g.`instance_id` = s.`instance_id` AND g.`model_name` = ",
                      g=PAGE_GROUP)
        cmn = meta.collation("tenant_model", "model_name")
        folded = sqlkit.logged(self.ctx, self.step, render("INSERT INTO {n} (", n=new_table) + _COLUMN_LIST
                               + ") SELECT LOWER(CONCAT(%s, LPAD(HEX(%s + s.`seq` * " + str(ORDINALS) + " + f.`ord`), "
                               "16, '0'))), %s, FROM_UNIXTIME(FLOOR(%s / 1000)), %s, FROM_UNIXTIME(FLOOR(%s / 1000)), "
                               "f.`llm_name`, s.`provider_id`, s.`instance_id`, f.`bits`, 'active', f.`extra` "
                               + render("FROM {s} s STRAIGHT_JOIN {f} f ON f.`provider_name` = s.`cat_provider` AND "
                                        "f.`intl` = s.`intl` WHERE ", s=seeding.SEED, f=FOLD)
                               + cond + f" AND f.`bits` <> 0 AND TRIM(f.`llm_name`) <> '' "
                               f"AND NOT EXISTS ({held}f.`llm_name` {cmn})"
                               + render(" AND NOT EXISTS (SELECT 1 FROM {k} k WHERE ", k=PAGE_KEYS)
                               + self._key_match("f.`llm_name`") + ")",
                               (*self.ids.args(), ms, ms, ms, ms, *args))
        # the rest: the same test through the statement's own join with rm_pg_group (MySQL cannot open a
        # session table twice in one statement)
        return folded + self._write_held_seeded_groups(new_table, cond, args)

    def _write_held_seeded_groups(self, new_table: str, cond: str, args: tuple[Any, ...]) -> int:
        """:meth:`_write_seeded_groups` row by row, for the models the instance holds under another
        spelling (or blank names), in the page ``cond`` selects (``args``: its parameters)."""
        key = f"s.`seq` * {ORDINALS} + c.`ord`"
        first_extra = f"SUBSTRING(MIN(CONCAT(LPAD({key}, 20, '0'), COALESCE(g.`extra`, c.`extra`))), 21)"
        good = f"CASE WHEN JSON_VALID({first_extra}) THEN JSON_TYPE({first_extra}) = 'OBJECT' ELSE 0 END"
        bit = canonical.bit_case_sql("c.`type_str`")
        not_shared = render(" AND NOT EXISTS (SELECT 1 FROM {k} k WHERE ", k=PAGE_KEYS) + self._key_match() + ")" \
            + " AND (g.`instance_id` IS NOT NULL OR TRIM(c.`llm_name`) = '')"
        sql = (render("INSERT INTO {n} (", n=new_table) + _COLUMN_LIST
               + ") SELECT LOWER(CONCAT(%s, LPAD(HEX(%s + MIN(" + key + ")), 16, '0'))), %s, "
               "FROM_UNIXTIME(FLOOR(%s / 1000)), %s, FROM_UNIXTIME(FLOOR(%s / 1000)), MIN(c.`llm_name`), "
               f"s.`provider_id`, s.`instance_id`, BIT_OR({bit}), 'active', IF({good}, {first_extra}, '{{}}') "
               + seeding.seeded_source_sql(self.meta, grp=PAGE_GROUP, have=PAGE_HAVE, page=Raw(cond + not_shared))
               + " GROUP BY s.`provider_id`, s.`instance_id`, " + self._name_bin("c.`llm_name`")
               + f" HAVING COALESCE(MIN(g.`status`), 'active') = 'active' AND BIT_OR({bit}) <> 0")
        ms = self.clock.ms
        return sqlkit.logged(self.ctx, self.step, sql, (*self.ids.args(), ms, ms, ms, ms, *args))

    def remapped_sql(self) -> str:
        """``SELECT old_id, new_id``: the tenant_model rows merged into another row's id (D25)."""
        return render("SELECT `old_id`, `new_id` FROM {r}", r=REMAP)
