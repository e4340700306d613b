"""The floor: the least SQL that turns the bench's generated database into the tool's end state.

    python tests/bench/floor.py --database bench_floor            # MYSQL_* from the environment
    python tests/bench/floor.py --compare bench_tool bench_floor  # the two end states, part by part

A yardstick for ``make bench``, never shipped: a hand-written chain of ``INSERT … SELECT``,
``UPDATE … JOIN`` and the DDL the end state needs, on one session, with none of the tool's
safety (no lock, no preflight, no strict checks, no staging beyond the catalogue as one session
table, no pages, no transactions of bounded size, no progress, no resumability, no backup). It is correct **only on
the data ``generate.py`` makes** (which keys, names, JSON configs and references occur there),
and :func:`compare` proves it: the bench digests both end states and prints whether they match.

What it does, stage by stage (the names are the tool's ``step.started`` names, so the report
puts each floor time beside the tool's):

* schema: the tool's own ``schema apply`` (every release up to v0.27.0, no data stage); the
  floor has no cheaper DDL for RAGFlow's schema, so its schema time is the tool's, measured
  again. Consequence: the floor's data stages run on the v0.27.0 schema, after its start-up
  rename of ``tenant_llm.model_type`` (``speech2text`` → ``asr``, ``image2text`` → ``vision``),
  where the tool runs the v0.26 stages before it; the bits, and so the end state, are the same.
* ``data tenant_model_provider``: one ``INSERT … SELECT DISTINCT``.
* ``data tenant_model_instance``: one ``INSERT … SELECT`` with a window per (provider, canonical
  key, base URL): the representative (no ``is_tools``, lowest name, lowest id), active if any row
  is. The canonical key is a string expression (plain keys, ``{"api_key": …}`` JSON, NULL/'');
  the generator's other JSON keys (VolcEngine, Bedrock) are identical within a provider. Ids are
  numbered in (provider, identity hash) order, as the tool's are, because stage 7 picks the
  lowest id when a reference has no legacy row.
* ``data tenant_model``: the catalogue's names into a session table; one ``INSERT … SELECT`` of
  the disabled rows and the enabled ones the catalogue does not list, each joined to the
  instance holding its key; ids keyed by the ``tenant_llm`` row's id.
* ``data model_id_config``: one ``UPDATE`` per table for the string columns; one ``UPDATE`` per
  JSON column with ``REGEXP_REPLACE`` (``"llm_id": "m@p"`` → ``"llm_id":"m@default@p"``) and the
  compaction Python's ``json.dumps(separators=(",", ":"))`` does (no ``", "`` or ``": "`` occurs
  inside the generated strings of those configs).
* ``data tenant_model_seeding``: nothing of its own (the tool's stage only checks and counts
  here too: the merge writes the seeded rows, merged).
* ``data model_type_merge``: a new ``tenant_model`` with an INT ``model_type``, filled by two
  ``INSERT … SELECT``: the active legacy rows with their bit, and one row per catalogue model
  (its types OR-ed) for every instance of its factory; one ``DELETE`` of those whose model the
  legacy rows disabled (found by their ids, which are keyed by instance and catalogue row);
  secondary indexes built after the fill; ``RENAME TABLE``; the old table dropped.
* ``data tenant_model_id_migration``: per table, the INT ``tenant_*_id`` columns dropped and
  added again as ``VARCHAR(32)`` at their place, one ``UPDATE … JOIN`` resolving every column
  (provider of the row's tenant, the instance holding the legacy row's key, else the lowest id;
  the active model of that name with the type's bit), then the indexes; RAGFlow's marker. The
  model is read by primary key: the floor computes the ids it gave (instance and catalogue row
  for a seeded model, ``tenant_llm.id`` for a user's own), where a lookup by ``instance_id``
  (the only index) reads every model of the instance.

The end state (:func:`end_state`) is digested per part, ids and the model tables' timestamps
normalised away: providers, instances and models by their natural keys (a model's instance by
its provider, key and extra), the ``tenant_*_id`` columns of tenant, knowledgebase, dialog and
memory as the model they point at, every other column of those tables as is, every other table
by ``CHECKSUM TABLE``, the marker's value, and the schema (columns, indexes, collations) of every
table but this tool's own (``ragflow_migrate_*``, the merge's backup included).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pymysql

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

STAGES = ("tenant_model_provider", "tenant_model_instance", "tenant_model", "model_id_config",
          "tenant_model_seeding", "model_type_merge", "tenant_model_id_migration")
TYPE_BITS = {"chat": 1, "embedding": 2, "asr": 4, "speech2text": 4, "vision": 8, "image2text": 8, "rerank": 16,
             "tts": 32, "ocr": 64}
MARKER = "mysql_migration.database.version"
#: table → [(target column, legacy column, type bit)] (spec §3.7)
TARGETS = {
    "tenant": (("tenant_llm_id", "llm_id", 1), ("tenant_embd_id", "embd_id", 2), ("tenant_asr_id", "asr_id", 4),
               ("tenant_img2txt_id", "img2txt_id", 8), ("tenant_rerank_id", "rerank_id", 16),
               ("tenant_tts_id", "tts_id", 32), ("tenant_ocr_id", "ocr_id", 64)),
    "knowledgebase": (("tenant_embd_id", "embd_id", 2),),
    "dialog": (("tenant_llm_id", "llm_id", 1), ("tenant_rerank_id", "rerank_id", 16)),
    "memory": (("tenant_embd_id", "embd_id", 2), ("tenant_llm_id", "llm_id", 1)),
}
STRING_COLUMNS = {"tenant": ("llm_id", "embd_id", "asr_id", "img2txt_id", "rerank_id", "tts_id", "ocr_id"),
                  "knowledgebase": ("embd_id",), "dialog": ("llm_id", "rerank_id"), "memory": ("embd_id", "llm_id")}
#: The JSON columns the generator fills with model ids (the tool's list also names canvas_template,
#: api_4_conversation, pipeline_operation_log, connector and evaluation_runs: empty here).
JSON_COLUMNS = (("knowledgebase", "parser_config"), ("document", "parser_config"), ("search", "search_config"),
                ("user_canvas", "dsl"), ("user_canvas_version", "dsl"))
#: A model-id key whose value is exactly two non-empty '@' parts (only search_config has chat_id here).
JSON_MODEL_ID = '"(llm_id|embd_id|rerank_id|chat_id)": "([^"@]+)@([^"@]+)"'
MODEL_TABLES = ("tenant_model_provider", "tenant_model_instance", "tenant_model")
OWN_PREFIX = "ragflow_migrate_"

# The canonical key of a generated tenant_llm key (spec §2): NULL → '', {"api_key": "k", …} → k,
# anything else as it is (plain keys; VolcEngine's and Bedrock's JSON, identical within a provider).
CANON = ("(CASE WHEN {k} IS NULL THEN '' WHEN {k} LIKE '{{\"api_key\": \"%' "
         "THEN SUBSTRING_INDEX(SUBSTRING_INDEX({k}, '\"', 4), '\"', -1) ELSE {k} END)")
# The base URL an instance's extra holds: '' or {"base_url": "<url>"} (what stage 2 writes).
BASE = "IF({e} = '', '', SUBSTRING({e}, 15, CHAR_LENGTH({e}) - 16))"


def canon(expr: str) -> str:
    return CANON.format(k=expr)


def base_of(expr: str) -> str:
    return BASE.format(e=expr)


def identity(key: str, base: str) -> str:
    """The tool's instance identity hash (canonical key and base URL), as hex: the floor orders
    instance ids by it (exact for the plain keys, which are the ones where the order matters)."""
    c = canon(key)
    return f"LEFT(SHA2(CONCAT(CHAR_LENGTH({c}), ':', {c}, COALESCE({base}, '')), 256), 32)"


def bit_case(expr: str) -> str:
    return "(CASE " + expr + " " + " ".join(f"WHEN '{t}' THEN {b}" for t, b in TYPE_BITS.items()) + " ELSE 0 END)"


def catalog_rows(raw: dict[str, Any]) -> list[tuple[str, str, int, str, int]]:
    """(factory, model, OR of its types' bits, extra of its first listing, ordinal) per catalogue model,
    in catalogue order: what seeding and the merge make of one model of one factory. ``siliconflow_intl``
    seeds only SiliconFlow instances whose extra says ``"region": "intl"``: none here, left out."""
    out: dict[tuple[str, str], list[Any]] = {}
    for factory in raw["factory_llm_infos"]:
        if factory["name"] == "siliconflow_intl":
            continue
        for model in factory.get("llm") or []:
            name = model.get("llm_name")
            if not name:
                continue
            types = model.get("model_type", "chat")
            bits = 0
            for t in types if isinstance(types, list) else [types]:
                bits |= TYPE_BITS.get(t, 0)
            key = (factory["name"], name)
            if key in out:
                out[key][2] |= bits
                continue
            extra: dict[str, Any] = {}
            if model.get("is_tools") is True:
                extra["is_tools"] = True
            if model.get("max_tokens") is not None:
                extra["max_tokens"] = model["max_tokens"]
            out[key] = [factory["name"], name, bits, json.dumps(extra) if extra else "{}", len(out)]
    return [tuple(v) for v in out.values()]  # type: ignore[misc]


def compact_json_sql(expr: str) -> str:
    """``json.dumps(separators=(",", ":"))`` of the generated configs: no ``", "`` or ``": "`` occurs
    inside their strings, so removing those spaces is the whole re-serialisation."""
    return f"REPLACE(REPLACE({expr}, '\": ', '\":'), ', ', ',')"


# --- running ---------------------------------------------------------------------------------------


class Floor:
    def __init__(self, params: dict[str, Any], database: str, catalog: Path,
                 log: Callable[[str], None] = lambda _m: None) -> None:
        self.conn = pymysql.connect(**params, database=database, charset="utf8mb4", autocommit=True,
                                    read_timeout=7200, write_timeout=7200)
        self.database = database
        self.catalog = catalog
        self.log = log
        self.statements: list[dict[str, Any]] = []
        self.step = ""
        with self.conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute("SELECT VERSION()")
            self.mariadb = "mariadb" in str(cur.fetchone()[0]).lower()
            if not self.mariadb:  # the tool's session tuning: 16 MB to sort an index build (MySQL 8.0.27+)
                try:
                    cur.execute("SET SESSION innodb_ddl_buffer_size = 16777216")
                except pymysql.MySQLError:
                    pass
        now = int(time.time())
        self.ms, self.date = now * 1000, time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))

    def sql(self, statement: str) -> int:
        started = time.monotonic()
        with self.conn.cursor() as cur:
            rows = cur.execute(statement)
        took = time.monotonic() - started
        self.statements.append({"step": self.step, "duration_s": round(took, 3), "rows": rows,
                                "sql": " ".join(statement.split())[:300]})
        return int(rows)

    def query(self, statement: str, args: Any = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(statement, args)
            return list(cur.fetchall())

    def newid(self, order: str = "") -> str:
        """32 hex like the tool's ids: a time-and-random prefix, then an increasing counter."""
        prefix = f"{int(time.time() * 1000):012x}{secrets.randbits(16):04x}"
        return f"CONCAT('{prefix}', LPAD(LOWER(HEX(ROW_NUMBER() OVER ({order}))), 16, '0'))"

    def times(self) -> str:
        return f"{self.ms}, '{self.date}', {self.ms}, '{self.date}'"

    def columns(self, table: str) -> dict[str, tuple[str, int | None]]:
        rows = self.query("SELECT column_name, data_type, character_maximum_length FROM information_schema.columns "
                          "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position", (table,))
        return {str(r[0]): (str(r[1]).lower(), int(r[2]) if r[2] is not None else None) for r in rows}

    def run(self) -> list[dict[str, Any]]:
        """Every data stage, timed; returns [{step, duration_s, statements}] in the tool's order."""
        out = []
        for stage in STAGES:
            self.step = f"data {stage}"
            first = len(self.statements)
            started = time.monotonic()
            getattr(self, "stage_" + stage)()
            took = time.monotonic() - started
            out.append({"step": self.step, "duration_s": round(took, 3),
                        "statements": len(self.statements) - first})
            self.log(f"  floor {self.step}: {took:.2f}s")
        return out

    def close(self) -> None:
        self.conn.close()

    # -- v0.26.0 ----------------------------------------------------------------------------------

    def stage_tenant_model_provider(self) -> None:
        self.sql("INSERT INTO `tenant_model_provider` (`id`, `create_time`, `create_date`, `update_time`, `update_date`, "
                 f"`provider_name`, `tenant_id`) SELECT {self.newid()}, {self.times()}, d.`llm_factory`, d.`tenant_id` "
                 "FROM (SELECT DISTINCT `tenant_id`, `llm_factory` FROM `tenant_llm`) d")

    def stage_tenant_model_instance(self) -> None:
        ident = identity("l.`api_key`", "l.`api_base`")
        self.sql(
            "INSERT INTO `tenant_model_instance` (`id`, `create_time`, `create_date`, `update_time`, `update_date`, "
            "`instance_name`, `provider_id`, `api_key`, `status`, `extra`) "
            f"SELECT {self.newid('ORDER BY g.`provider_id`, g.`ikey`')}, {self.times()}, 'default', g.`provider_id`, "
            "COALESCE(g.`api_key`, ''), IF(g.`any_valid` = 1, 'active', 'inactive'), g.`extra` FROM ("
            " SELECT x.*, ROW_NUMBER() OVER (PARTITION BY x.`provider_id`, x.`ikey` ORDER BY x.`tools`, x.`name`, "
            "  x.`id`) AS rn, MAX(x.`valid`) OVER (PARTITION BY x.`provider_id`, x.`ikey`) AS any_valid FROM ("
            f"  SELECT p.`id` AS `provider_id`, {ident} AS `ikey`, l.`id`, l.`api_key`, "
            "   IFNULL(l.`api_key` LIKE '{%\"is_tools\"%', 0) AS `tools`, CAST(l.`llm_name` AS BINARY) AS `name`, "
            "   l.`status` = '1' AS `valid`, IF(COALESCE(l.`api_base`, '') = '', '', "
            "   CONCAT('{\"base_url\": \"', l.`api_base`, '\"}')) AS `extra` "
            "  FROM `tenant_llm` l JOIN `tenant_model_provider` p ON p.`tenant_id` = l.`tenant_id` "
            "   AND p.`provider_name` = l.`llm_factory`) x"
            ") g WHERE g.rn = 1")

    def legacy_id(self, legacy: str) -> str:
        """The id of the model row stage 3 makes of ``tenant_llm`` row ``legacy`` (keyed by its id: stage 7
        finds a user's own model by primary key, from the legacy row it resolves through anyway)."""
        return f"CONCAT('{self.legacy_prefix}', LPAD(LOWER(HEX({legacy})), 16, '0'))"

    def stage_tenant_model(self) -> None:
        self.legacy_prefix = f"{int(time.time() * 1000):012x}{secrets.randbits(16):04x}"
        raw = json.loads(self.catalog.read_text(encoding="utf-8"))
        self.sql("CREATE TEMPORARY TABLE `_floor_cat` (`factory` VARCHAR(128) NOT NULL, `llm_name` VARCHAR(255) "
                 "NOT NULL, `bits` INT NOT NULL, `extra` VARCHAR(2048) NOT NULL, `ord` INT NOT NULL, "
                 "PRIMARY KEY (`factory`, `llm_name`)) "
                 "DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci")
        rows = catalog_rows(raw)
        with self.conn.cursor() as cur:
            for i in range(0, len(rows), 1000):
                cur.executemany("INSERT IGNORE INTO `_floor_cat` VALUES (%s, %s, %s, %s, %s)", rows[i:i + 1000])
        tools = "l.`api_key` LIKE '{%\"is_tools\": true%'"
        extra = (f"CASE WHEN {tools} AND l.`max_tokens` > 0 THEN CONCAT('{{\"is_tools\": true, \"max_tokens\": ', "
                 f"l.`max_tokens`, '}}') WHEN {tools} THEN '{{\"is_tools\": true}}' WHEN l.`max_tokens` > 0 THEN "
                 "CONCAT('{\"max_tokens\": ', l.`max_tokens`, '}') ELSE '{}' END")
        self.sql(
            "INSERT INTO `tenant_model` (`id`, `create_time`, `create_date`, `update_time`, `update_date`, `model_name`, "
            "`provider_id`, `instance_id`, `model_type`, `status`, `extra`) "
            f"SELECT {self.legacy_id('l.`id`')}, {self.times()}, l.`llm_name`, p.`id`, i.`id`, COALESCE(l.`model_type`, ''), "
            f"IF(l.`status` = '1', 'active', 'inactive'), {extra} "
            "FROM `tenant_llm` l JOIN `tenant_model_provider` p ON p.`tenant_id` = l.`tenant_id` "
            "AND p.`provider_name` = l.`llm_factory` "
            f"JOIN (SELECT DISTINCT `id`, `provider_id`, {canon('`api_key`')} AS `ck`, {base_of('`extra`')} AS `base` "
            " FROM `tenant_model_instance`) i "
            f"ON i.`provider_id` = p.`id` AND i.`ck` = {canon('l.`api_key`')} AND i.`base` = COALESCE(l.`api_base`, '') "
            "WHERE l.`status` <> '1' OR NOT EXISTS (SELECT 1 FROM `_floor_cat` c WHERE c.`factory` = l.`llm_factory` "
            "AND c.`llm_name` = l.`llm_name`)")

    def stage_model_id_config(self) -> None:
        for table, columns in STRING_COLUMNS.items():
            have = self.columns(table)
            cols = [(c, have[c][1]) for c in columns if c in have]
            if not cols:
                continue
            conds = [f"(`{c}` LIKE '_%@_%' AND `{c}` NOT LIKE '%@%@%' AND CHAR_LENGTH(`{c}`) + 8 <= {n})"
                     for c, n in cols]
            sets = [f"`{c}` = IF({cond}, CONCAT(SUBSTRING_INDEX(`{c}`, '@', 1), '@default@', "
                    f"SUBSTRING_INDEX(`{c}`, '@', -1)), `{c}`)" for (c, _n), cond in zip(cols, conds, strict=True)]
            self.sql(f"UPDATE `{table}` SET " + ", ".join(sets) + " WHERE " + " OR ".join(conds))
        replacement = "\\\\1\":\"\\\\2@default@\\\\3" if self.mariadb else "$1\":\"$2@default@$3"
        for table, column in JSON_COLUMNS:
            rewritten = compact_json_sql(f"REGEXP_REPLACE(`{column}`, '{JSON_MODEL_ID}', "
                                         f"'\"{replacement}\"')")
            self.sql(f"UPDATE `{table}` SET `{column}` = {rewritten} WHERE `{column}` REGEXP '{JSON_MODEL_ID}'")

    # -- v0.27.0 ----------------------------------------------------------------------------------

    def stage_tenant_model_seeding(self) -> None:
        """Nothing: the merge writes the seeded rows, merged (as the tool does on this path)."""

    def keyed(self, instance: str, ordinal: str = "c.`ord`") -> str:
        """The id of the row the merge seeds for catalogue row ``ordinal`` in ``instance``."""
        return (f"CONCAT('{self.seed_prefix}', LPAD(LOWER(HEX(CONV(RIGHT({instance}, 16), 16, 10) * 1048576 + "
                f"{ordinal})), 16, '0'))")

    def stage_model_type_merge(self) -> None:
        self.sql("DROP TABLE IF EXISTS `_floor_tm`")
        self.sql("CREATE TABLE `_floor_tm` LIKE `tenant_model`")
        keys = [str(r[0]) for r in self.query("SELECT DISTINCT index_name FROM information_schema.statistics WHERE "
                                              "table_schema = DATABASE() AND table_name = 'tenant_model' AND "
                                              "index_name <> 'PRIMARY' ORDER BY index_name")]
        index_sql = self.query("SHOW CREATE TABLE `tenant_model`")[0][1]
        adds = [line.strip().rstrip(",") for line in index_sql.splitlines() if line.strip().startswith("KEY ")]
        self.sql("ALTER TABLE `_floor_tm` MODIFY `model_type` INT NOT NULL, "
                 + ", ".join(f"DROP INDEX `{k}`" for k in keys))
        cols = ("`id`, `create_time`, `create_date`, `update_time`, `update_date`, `model_name`, `provider_id`, "
                "`instance_id`, `model_type`, `status`, `extra`")
        bit = bit_case("m.`model_type`")
        self.sql(f"INSERT INTO `_floor_tm` ({cols}) SELECT m.`id`, m.`create_time`, "
                 "FROM_UNIXTIME(FLOOR(m.`create_time` / 1000)), m.`update_time`, FROM_UNIXTIME(FLOOR(m.`update_time` "
                 f"/ 1000)), m.`model_name`, m.`provider_id`, m.`instance_id`, {bit}, 'active', m.`extra` "
                 f"FROM `tenant_model` m WHERE m.`status` = 'active' AND {bit} <> 0")
        # Every catalogue model in every instance of its factory, ids keyed by (instance, catalogue row) as the
        # tool's are (no window, no sort; the floor's instance ids end with their number) ...
        self.seed_prefix = f"{int(time.time() * 1000):012x}{secrets.randbits(16):04x}"
        keyed = self.keyed

        self.sql(f"INSERT INTO `_floor_tm` ({cols}) SELECT {keyed('i.`id`')}, {self.times()}, c.`llm_name`, "
                 "i.`provider_id`, i.`id`, c.`bits`, 'active', c.`extra` FROM `tenant_model_instance` i "
                 "JOIN `tenant_model_provider` p ON p.`id` = i.`provider_id` "
                 "JOIN `_floor_cat` c ON c.`factory` = p.`provider_name` WHERE c.`bits` <> 0")
        # ... but not the models the legacy rows disabled (their rows of stage 3 are the inactive ones; the
        # active ones are never catalogue models): deleted again by their id, cheaper than an anti-join probe
        # for each of the million rows.
        self.sql(f"DELETE t FROM `_floor_tm` t JOIN (SELECT {keyed('m.`instance_id`')} AS `id` FROM `tenant_model` m "
                 "JOIN `tenant_model_provider` p ON p.`id` = m.`provider_id` JOIN `_floor_cat` c "
                 "ON c.`factory` = p.`provider_name` AND c.`llm_name` = m.`model_name` WHERE m.`status` <> 'active') d "
                 "ON d.`id` = t.`id`")
        self.sql("ALTER TABLE `_floor_tm` " + ", ".join("ADD " + a for a in adds))
        self.sql("RENAME TABLE `tenant_model` TO `_floor_old_tm`, `_floor_tm` TO `tenant_model`")
        self.sql("DROP TABLE `_floor_old_tm`")

    def stage_tenant_model_id_migration(self) -> None:
        for table, targets in TARGETS.items():
            cols = self.columns(table)
            if not cols:
                continue
            names = list(cols)
            pairs = [(t, legacy, bit) for t, legacy, bit in targets if legacy in cols]
            replace = [t for t, _l, _b in pairs if t in cols and cols[t][0] in ("int", "bigint")]
            missing = [(t, legacy) for t, legacy, _b in pairs if t not in cols]
            indexed = {str(r[0]) for r in self.query(
                "SELECT column_name FROM information_schema.statistics WHERE table_schema = DATABASE() "
                "AND table_name = %s AND seq_in_index = 1", (table,))}
            drops = sorted({str(r[0]) for r in self.query(
                "SELECT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() "
                "AND table_name = %s AND column_name IN (" + ", ".join(["%s"] * len(replace)) + ")",
                (table, *replace))}) if replace else []
            if drops:
                self.sql(f"ALTER TABLE `{table}` " + ", ".join(f"DROP INDEX `{d}`" for d in drops))
            clauses = []
            for t in replace:
                at = names.index(t)
                place = f"AFTER `{names[at - 1]}`" if at else "FIRST"
                clauses += [f"DROP COLUMN `{t}`", f"ADD COLUMN `{t}` VARCHAR(32) NULL {place}"]
            clauses += [f"ADD COLUMN `{t}` VARCHAR(32) NULL AFTER `{legacy}`" for t, legacy in missing]
            if clauses:
                self.sql(f"ALTER TABLE `{table}` " + ", ".join(clauses))
            self._resolve(table, pairs)
            new_indexes = [t for t, _l, _b in pairs if t in replace or t not in indexed]
            if new_indexes:
                self.sql(f"ALTER TABLE `{table}` " + ", ".join(f"ADD INDEX `{table}_{t}` (`{t}`)" for t in new_indexes))
        self.sql("INSERT INTO `system_settings` (`name`, `create_time`, `create_date`, `update_time`, `update_date`, "
                 f"`source`, `data_type`, `value`) VALUES ('{MARKER}', {self.times()}, 'migration', 'string', 'v0.27.0') "
                 f"ON DUPLICATE KEY UPDATE `source` = 'migration', `data_type` = 'string', `value` = 'v0.27.0', "
                 f"`update_time` = {self.ms}, `update_date` = '{self.date}'")
        self.sql("DROP TEMPORARY TABLE `_floor_cat`")

    def _resolve(self, table: str, pairs: list[tuple[str, str, int]]) -> None:
        """One UPDATE for every target column of ``table``: each legacy name read from the right
        (``m@default@p`` or ``m@p``; the middle part is an instance only when it is ``default``: no
        other instance name exists here), in the row's tenant's provider, the instance holding the
        tenant's legacy row's key (none: every instance, lowest id first), the active model of that
        name with the type's bit; '' when none. ``tenant_model`` is read by primary key only: the floor's
        ids are computed from what identifies the row (instance and catalogue row, or legacy row)."""
        tenant = "x.`id`" if table == "tenant" else "x.`tenant_id`"
        refs = " UNION ALL ".join(
            f"SELECT x.`id` AS `rid`, {k} AS `c`, {bit} AS `bit`, {tenant} AS `tenant`, x.`{legacy}` AS `v` "
            f"FROM `{table}` x WHERE x.`{legacy}` <> ''" for k, (_t, legacy, bit) in enumerate(pairs))
        provider = "SUBSTRING_INDEX(r.`v`, '@', -1)"
        rest = f"LEFT(r.`v`, GREATEST(0, CHAR_LENGTH(r.`v`) - CHAR_LENGTH({provider}) - 1))"
        parsed = (f"SELECT r.`rid`, r.`c`, r.`bit`, r.`tenant`, {provider} AS `p`, IF({rest} LIKE '_%@default', "
                  f"LEFT({rest}, CHAR_LENGTH({rest}) - 8), {rest}) AS `m` FROM ({refs}) r")
        # The model, by primary key: a catalogue model of the provider is the row the merge seeded (its id keyed
        # by instance and catalogue row), any other is the row stage 3 made of the legacy row (keyed by its id;
        # no legacy row, no such model).
        hit = ("IF(m.`id` IS NOT NULL AND m.`status` = 'active' AND (m.`model_type` & r.`bit`) <> 0, m.`id`, "
               "IF(u.`id` IS NOT NULL AND u.`status` = 'active' AND (u.`model_type` & r.`bit`) <> 0, u.`id`, NULL))")
        resolved = (
            f"SELECT r.`rid`, r.`c`, COALESCE(SUBSTRING(MIN(CONCAT(i.`id`, {hit})), 33), '') AS `mid` "
            f"FROM ({parsed}) r "
            "LEFT JOIN `tenant_model_provider` p ON p.`tenant_id` = r.`tenant` AND p.`provider_name` = r.`p` "
            " AND r.`m` <> '' "
            "LEFT JOIN `tenant_llm` l ON l.`tenant_id` = r.`tenant` AND l.`llm_factory` = r.`p` AND l.`llm_name` = r.`m` "
            f"LEFT JOIN (SELECT DISTINCT `id`, `provider_id`, {canon('`api_key`')} AS `ck`, {base_of('`extra`')} AS `base` "
            " FROM `tenant_model_instance`) i ON i.`provider_id` = p.`id` "
            f" AND (l.`id` IS NULL OR (i.`ck` = {canon('l.`api_key`')} AND i.`base` = COALESCE(l.`api_base`, ''))) "
            "LEFT JOIN `_floor_cat` c ON c.`factory` = p.`provider_name` AND c.`llm_name` = r.`m` "
            f"LEFT JOIN `tenant_model` m ON m.`id` = {self.keyed('i.`id`')} "
            f"LEFT JOIN `tenant_model` u ON u.`id` = IF(c.`ord` IS NULL, {self.legacy_id('l.`id`')}, NULL) "
            "GROUP BY r.`rid`, r.`c`")
        picks = ", ".join(f"MAX(IF(z.`c` = {k}, z.`mid`, NULL)) AS `v{k}`" for k in range(len(pairs)))
        sets = ", ".join(f"x.`{t}` = COALESCE(z.`v{k}`, x.`{t}`)" for k, (t, _l, _b) in enumerate(pairs))
        self.sql(f"UPDATE `{table}` x JOIN (SELECT z.`rid`, {picks} FROM ({resolved}) z GROUP BY z.`rid`) z "
                 f"ON z.`rid` = x.`id` SET {sets}")


def params_of(env: dict[str, str]) -> dict[str, Any]:
    return {"host": env.get("MYSQL_HOST", "127.0.0.1"), "port": int(env.get("MYSQL_PORT", "3306")),
            "user": env.get("MYSQL_USER", "root"), "password": env.get("MYSQL_PASSWORD", "")}


def run_floor(env: dict[str, str], catalog: Path, log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """The data stages on ``env['MYSQL_DBNAME']`` (its schema already at v0.27.0: ``schema apply``)."""
    floor = Floor(params_of(env), env["MYSQL_DBNAME"], catalog, log)
    try:
        started = time.monotonic()
        steps = floor.run()
        return {"steps": steps, "data_s": round(time.monotonic() - started, 3),
                "slowest": sorted(floor.statements, key=lambda s: -s["duration_s"])[:12]}
    finally:
        floor.close()


# --- the end state -----------------------------------------------------------------------------------


def _q(database: str, table: str) -> str:
    return f"`{database}`.`{table}`"


def _row_hash(exprs: list[str]) -> str:
    return "SHA2(CONCAT_WS(0x1f, " + ", ".join(f"IFNULL({e}, '\\\\N')" for e in exprs) + "), 256)"


def part_queries(conn: Any, db: str) -> dict[str, str]:
    """part → SELECT of one normalised row per source row, as ``h`` (its hash) and ``t`` (its text)."""
    def q(sql: str, args: Any = None) -> list[tuple]:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    tables = [str(r[0]) for r in q("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                                   "AND table_type = 'BASE TABLE' ORDER BY table_name", (db,))]
    tables = [t for t in tables if not t.startswith(OWN_PREFIX) and not t.startswith("_floor")]
    parts: dict[str, str] = {}

    def add(name: str, exprs: list[str], source: str) -> None:
        text = "CONCAT_WS(' | ', " + ", ".join(f"IFNULL({e}, 'NULL')" for e in exprs) + ")"
        parts[name] = f"SELECT {_row_hash(exprs)} AS h, {text} AS t {source}"

    prov = _q(db, "tenant_model_provider")
    inst = _q(db, "tenant_model_instance")
    model = _q(db, "tenant_model")
    add("tenant_model_provider", ["p.tenant_id", "p.provider_name"], f"FROM {prov} p")
    add("tenant_model_instance", ["p.tenant_id", "p.provider_name", "i.instance_name", "i.api_key", "i.status",
                                  "i.extra"], f"FROM {inst} i LEFT JOIN {prov} p ON p.id = i.provider_id")
    add("tenant_model", ["p.tenant_id", "p.provider_name", "i.api_key", "i.extra", "m.model_name", "m.model_type",
                         "m.status", "m.extra", "m.provider_id = i.provider_id"],
        f"FROM {model} m LEFT JOIN {inst} i ON i.id = m.instance_id LEFT JOIN {prov} p ON p.id = m.provider_id")
    natural = ("CONCAT_WS('/', mp.tenant_id, mp.provider_name, SHA2(CONCAT_WS(0x1f, mi.api_key, mi.extra), 256), "
               "mm.model_name)")
    for table in TARGETS:
        if table not in tables:
            continue
        cols = [str(r[0]) for r in q("SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                                     "AND table_name = %s ORDER BY ordinal_position", (db, table))]
        targets = [t for t, _l, _b in TARGETS[table] if t in cols]
        exprs, joins = [], []
        for c in cols:
            if c in targets:
                k = targets.index(c)
                joins.append(f"LEFT JOIN {model} mm{k} ON mm{k}.id = x.`{c}` LEFT JOIN {inst} mi{k} ON mi{k}.id = "
                             f"mm{k}.instance_id LEFT JOIN {prov} mp{k} ON mp{k}.id = mm{k}.provider_id")
                exprs.append(f"IF(mm{k}.id IS NULL, x.`{c}`, CONCAT('model:', "
                             + natural.replace("mp.", f"mp{k}.").replace("mi.", f"mi{k}.").replace("mm.", f"mm{k}.")
                             + "))")
            else:
                exprs.append(f"x.`{c}`")
        add(table, exprs, f"FROM {_q(db, table)} x " + " ".join(joins))
    if "system_settings" in tables:
        add("system_settings", ["name", "source", "data_type", "value"], f"FROM {_q(db, 'system_settings')}")
    add("schema: columns", ["table_name", "column_name", "ordinal_position", "column_type", "is_nullable",
                            "column_default", "collation_name"],
        "FROM information_schema.columns WHERE table_schema = '" + db + "' AND table_name NOT LIKE 'ragflow\\_migrate\\_%'")
    add("schema: indexes", ["table_name", "index_name", "seq_in_index", "column_name", "non_unique", "sub_part"],
        "FROM information_schema.statistics WHERE table_schema = '" + db
        + "' AND table_name NOT LIKE 'ragflow\\_migrate\\_%'")
    add("schema: tables", ["table_name", "table_collation", "engine"],
        "FROM information_schema.tables WHERE table_schema = '" + db + "' AND table_name NOT LIKE 'ragflow\\_migrate\\_%'")
    return parts


def end_state(conn: Any, db: str) -> dict[str, list[Any]]:
    """part → [rows, digest]: an order-free digest of the normalised rows (XOR and sum of their hashes),
    plus CHECKSUM TABLE for every table not digested row by row."""
    out: dict[str, list[Any]] = {}
    with conn.cursor() as cur:
        parts = part_queries(conn, db)
        for name, select in parts.items():
            cur.execute("SELECT COUNT(*), COALESCE(BIT_XOR(CAST(CONV(LEFT(h, 16), 16, 10) AS UNSIGNED)), 0), "
                        "COALESCE(SUM(CAST(CONV(SUBSTRING(h, 17, 8), 16, 10) AS UNSIGNED)), 0) "
                        f"FROM ({select}) s")
            n, x, s = cur.fetchone()
            out[name] = [int(n), f"{int(x):016x}-{int(s):x}"]
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = "
                    "'BASE TABLE' ORDER BY table_name", (db,))
        rest = [str(r[0]) for r in cur.fetchall()]
        rest = [t for t in rest if t not in parts and t not in MODEL_TABLES and not t.startswith(OWN_PREFIX)
                and not t.startswith("_floor")]
        for t in rest:
            cur.execute(f"CHECKSUM TABLE {_q(db, t)}")
            out[f"table {t}"] = [None, str(cur.fetchone()[1])]
    return out


def compare(conn: Any, tool_db: str, floor_db: str, *, samples: int = 5) -> dict[str, Any]:
    """Both end states, part by part; for the parts that differ, a few rows only one side has."""
    a, b = end_state(conn, tool_db), end_state(conn, floor_db)
    differing = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    out: dict[str, Any] = {"match": not differing, "parts": len(set(a) | set(b)), "differing": differing,
                           "tool": {k: a.get(k) for k in differing}, "floor": {k: b.get(k) for k in differing},
                           "samples": {}}
    for name in differing:
        qa, qb = part_queries(conn, tool_db).get(name), part_queries(conn, floor_db).get(name)
        if not qa or not qb:
            continue
        sample = {}
        with conn.cursor() as cur:
            for side, mine, theirs in (("only_tool", qa, qb), ("only_floor", qb, qa)):
                cur.execute(f"SELECT a.t FROM ({mine}) a WHERE a.h NOT IN (SELECT b.h FROM ({theirs}) b) LIMIT {samples}")
                sample[side] = [r[0] for r in cur.fetchall()]
        out["samples"][name] = sample
    return out


# --- command line ------------------------------------------------------------------------------------


def schema_apply(env: dict[str, str], catalog: Path) -> subprocess.CompletedProcess:
    full = {**os.environ, **env, "RAGFLOW_MIGRATE_LOG_FORMAT": "json", "RAGFLOW_MIGRATE_TERMINATION_LOG": os.devnull,
            "RAGFLOW_MIGRATE_CATALOG": str(catalog)}
    return subprocess.run([sys.executable, "-m", "ragflow_migrate", "schema", "apply"], env=full, capture_output=True,
                          text=True, cwd=REPO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", help="the generated database to upgrade (default MYSQL_DBNAME)")
    parser.add_argument("--catalog", type=Path, default=HERE / "llm_factories.bench.json",
                        help="the catalogue the database was generated with")
    parser.add_argument("--no-schema", action="store_true", help="the schema is at v0.27.0 already")
    parser.add_argument("--compare", nargs=2, metavar=("TOOL_DB", "FLOOR_DB"), help="compare two end states")
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k.startswith("MYSQL_")}
    if args.compare:
        conn = pymysql.connect(**params_of(env), charset="utf8mb4", autocommit=True)
        result = compare(conn, *args.compare)
        print(json.dumps(result, indent=2, default=str))
        return 0 if result["match"] else 1
    env["MYSQL_DBNAME"] = args.database or env.get("MYSQL_DBNAME", "rag_flow")
    if not args.no_schema:
        started = time.monotonic()
        proc = schema_apply(env, args.catalog)
        if proc.returncode != 0:
            print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
            return 1
        print(f"schema apply: {time.monotonic() - started:.2f}s")
    result = run_floor(env, args.catalog, log=print)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
