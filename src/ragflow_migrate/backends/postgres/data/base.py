"""What the PostgreSQL data stages share: metadata, statements, COPY staging, the legacy rows.

The stages keep MySQL's contract (:class:`ragflow_migrate.data.stages.base.DataStage`: ``analyse``
reads and stages, ``write`` writes in transactions, the stage record and RAGFlow's marker) and
its rules (:mod:`ragflow_migrate.data.canonical`, :mod:`~ragflow_migrate.data.catalog`); only the
SQL differs. Two differences matter for the end state:

* **Case.** RAGFlow's MySQL tables compare names with ``utf8mb4_unicode_ci`` (``'OpenAI' =
  'openai'``); PostgreSQL compares bytes. Every comparison the MySQL stages make under that
  collation (factories, provider names, model names, statuses) is written here with
  ``pg_temp.rm_fold(x)`` on both sides (:data:`FOLD_FUNCTION`: case folded, Latin diacritics dropped,
  trailing spaces ignored: PAD SPACE); unicode_ci's other equivalences (``'ß' = 'ss'``, ligatures,
  non-Latin scripts) are not reproduced. The comparisons MySQL makes byte-wise (``COLLATE utf8mb4_bin``, ``CAST … AS BINARY``)
  stay exact, with ``COLLATE "C"`` where an order is taken.
* **Sessions.** The connection is autocommit; each batch is ``with conn.transaction()``. Session
  (TEMP) tables are filled with ``COPY … FROM STDIN`` from rows the Python rules computed.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

from .... import events
from ....data import canonical
from ....data.stages.base import DataStage, IdSequence, Work
from ....steps import RunContext
from . import widen

LLM = "rm_llm"
INST = "rm_inst"
#: ``ctx.extras``: (fingerprint, info) of the ``rm_llm`` this session holds (the stages of a run share it).
LLM_CACHE = "postgres.rm_llm"


@dataclasses.dataclass(frozen=True)
class PgColumn:
    name: str
    data_type: str  # integer, bigint, character varying, text …
    max_length: int | None
    nullable: bool

    @property
    def column_type(self) -> str:
        if self.data_type == "character varying":
            return f"varchar({self.max_length})" if self.max_length else "text"
        return self.data_type


class PgMeta:
    """The current schema's tables and columns (information_schema), cached for one stage."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self._tables: set[str] | None = None
        self._columns: dict[str, dict[str, PgColumn]] = {}

    def tables(self) -> set[str]:
        if self._tables is None:
            self._tables = {r[0] for r in query(self.conn, "SELECT table_name FROM information_schema.tables "
                                                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")}
        return self._tables

    def has_table(self, table: str) -> bool:
        return table in self.tables()

    def columns(self, table: str) -> dict[str, PgColumn]:
        if table not in self._columns:
            rows = query(self.conn, "SELECT column_name, data_type, character_maximum_length, is_nullable "
                         "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s "
                         "ORDER BY ordinal_position", (table,))
            self._columns[table] = {r[0]: PgColumn(r[0], r[1], r[2], r[3] == "YES") for r in rows}
        return self._columns[table]

    def column(self, table: str, column: str) -> PgColumn | None:
        return self.columns(table).get(column)

    def max_length(self, table: str, column: str) -> int | None:
        info = self.column(table, column)
        return info.max_length if info is not None and info.data_type == "character varying" else None

    def is_int(self, table: str, column: str) -> bool:
        info = self.column(table, column)
        return info is not None and info.data_type in ("integer", "bigint", "smallint")

    def forget(self) -> None:
        self._tables = None
        self._columns.clear()


# --- statements ------------------------------------------------------------------------------------


def query(conn: Any, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall()) if cur.description else []


def scalar(conn: Any, sql: str, args: Any = None) -> Any:
    rows = query(conn, sql, args)
    return rows[0][0] if rows else None


def execute(conn: Any, sql: str, args: Any = None) -> int:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return max(0, int(cur.rowcount or 0))


def logged(ctx: Any, step: str, sql: str, args: Any = None, *, level: str = "debug") -> int:
    """Execute and log one statement (``step.statement``); returns the affected rows."""
    import time

    started = time.monotonic()
    rows = execute(ctx.conn, sql, args)
    getattr(ctx.log, level)(events.STEP_STATEMENT, step=step, sql=" ".join(sql.split())[:2000], algorithm=None,
                            duration_s=round(time.monotonic() - started, 3), rows=rows)
    return rows


def temp_table(conn: Any, name: str, body: str) -> None:
    """A fresh session table (dropped first: a stage may run twice in one session)."""
    execute(conn, f"DROP TABLE IF EXISTS pg_temp.{name}")
    execute(conn, f"CREATE TEMP TABLE {name} ({body})")


def drop_temp(conn: Any, *names: str) -> None:
    if getattr(conn, "closed", False):
        return
    for name in names:
        execute(conn, f"DROP TABLE IF EXISTS pg_temp.{name}")


def copy_rows(conn: Any, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]] | list) -> int:
    """``COPY table (columns) FROM STDIN`` of ``rows``; returns how many."""
    n = 0
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def key_pages(conn: Any, table: str, column: str, batch: int, where: str = "TRUE") -> Iterator[tuple[Any, Any]]:
    """(after, upto] ranges of ``column`` (``COLLATE "C"`` order for text) of about ``batch`` rows each."""
    after = None
    while True:
        cond, args = range_condition(column, after, None)
        upto = scalar(conn, f"SELECT {column} FROM {table} WHERE {where} AND {cond} ORDER BY {column} "
                      f"OFFSET %s LIMIT 1", (*args, max(0, batch - 1)))
        if upto is None:
            if scalar(conn, f"SELECT 1 FROM {table} WHERE {where} AND {cond} LIMIT 1", args) is not None:
                yield after, None
            return
        yield after, upto
        after = upto


def range_condition(column: str, after: Any, upto: Any) -> tuple[str, tuple[Any, ...]]:
    parts, args = [], []
    if after is not None:
        parts.append(f"{column} > %s")
        args.append(after)
    if upto is not None:
        parts.append(f"{column} <= %s")
        args.append(upto)
    return (" AND ".join(parts) or "TRUE"), tuple(args)


def new_id(order_by: str) -> str:
    """:meth:`IdSequence.sql` for PostgreSQL (parameters: :meth:`IdSequence.args`)."""
    return f"lower(%s::text || lpad(to_hex(%s::bigint + row_number() OVER (ORDER BY {order_by})), 16, '0'))"


def keyed_id(key: str) -> str:
    """:meth:`IdSequence.sql_keyed` for PostgreSQL: ``key`` is ``seq * ORDINALS + ord``."""
    return f"lower(%s::text || lpad(to_hex(%s::bigint + {key}), 16, '0'))"


def bit_case(column: str) -> str:
    """:func:`canonical.bit_case_sql`: the type's bit, names compared byte for byte."""
    whens = " ".join(f"WHEN '{name}' THEN {bit}" for name, bit in canonical.TYPE_BITS.items())
    return f"(CASE {column} {whens} ELSE 0 END)"


def date_of(ms: str) -> str:
    """``FROM_UNIXTIME(FLOOR(ms / 1000))`` in UTC."""
    return f"(to_timestamp(floor(({ms})::numeric / 1000)) AT TIME ZONE 'UTC')"


# A JSON text is an object (MySQL: JSON_VALID(x) AND JSON_TYPE(x) = 'OBJECT'), without failing on bad JSON.
JSON_FUNCTIONS = """
CREATE OR REPLACE FUNCTION pg_temp.rm_json_object(t text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  RETURN jsonb_typeof(t::jsonb) = 'object';
EXCEPTION WHEN others THEN
  RETURN false;
END $$
"""



def _accent_fold() -> tuple[str, str]:
    """Latin letters with diacritics → their base letter (lower case), as utf8mb4_unicode_ci equates them."""
    src, dst = [], []
    for cp in range(0xC0, 0x250):
        low = chr(cp).lower()
        parts = unicodedata.normalize("NFD", low)
        if len(low) == 1 and len(parts) > 1 and parts[0].isascii() and parts[0].isalpha() and low not in src:
            src.append(low)
            dst.append(parts[0])
    return "".join(src), "".join(dst)


FOLD_FROM, FOLD_TO = _accent_fold()
assert not any(ch.isascii() for ch in FOLD_FROM)  # so an ASCII name needs no translate()
_FOLD_TABLE = str.maketrans(FOLD_FROM, FOLD_TO)

#: How RAGFlow's MySQL columns (utf8mb4_unicode_ci, PAD SPACE) compare names, as far as it matters here:
#: case folded, Latin diacritics dropped ('Xinférence' = 'xinference'), trailing spaces ignored.
#: translate() scans its whole FROM list for every character: ASCII names (octets = characters,
#: nearly all of them) skip it, which makes folding 1.1M model names ~10x cheaper.
FOLD_FUNCTION = f"""
CREATE OR REPLACE FUNCTION pg_temp.rm_fold(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT rtrim(CASE WHEN octet_length(t) = char_length(t) THEN lower(t)
                    ELSE translate(lower(t), '{FOLD_FROM}', '{FOLD_TO}') END, ' ')
$$
"""


def fold_text(text: str | None) -> str | None:
    """:data:`FOLD_FUNCTION` in Python. PostgreSQL's ``lower()`` maps each character on its own
    (``'İ'`` → ``'i'``, ``'Σ'`` → ``'σ'`` anywhere); Python's ``str.lower()`` applies Unicode's
    special casing (``'i̇'``, a final ``'ς'``), so non-ASCII text is lowered a character at a time."""
    if not isinstance(text, str):
        return text
    low = text.lower() if text.isascii() else "".join(map(_lower_char, text))
    return low.translate(_FOLD_TABLE).rstrip(" ")


def _lower_char(ch: str) -> str:
    low = ch.lower()
    return low if len(low) == 1 else low[0]  # 'İ' lowers to 'i' + a combining dot above


def json_functions(conn: Any) -> None:
    """This session's helper functions (pg_temp: they vanish with it)."""
    execute(conn, JSON_FUNCTIONS)
    execute(conn, FOLD_FUNCTION)


# --- the legacy rows and the instances, with their canonical identity -------------------------------

_LLM_BODY = """
  seq BIGINT NOT NULL PRIMARY KEY,
  src_id BIGINT NULL,
  tenant_id TEXT NOT NULL,
  llm_factory TEXT NOT NULL,
  llm_name TEXT NULL,
  model_type TEXT NULL,
  api_key TEXT NULL,
  api_base TEXT NULL,
  max_tokens BIGINT NULL,
  status TEXT NULL,
  valid SMALLINT NOT NULL,
  ikey BYTEA NOT NULL,
  has_is_tools SMALLINT NOT NULL,
  m_extra TEXT NOT NULL,
  inst_extra TEXT NOT NULL,
  broken_json SMALLINT NOT NULL,
  provider_id TEXT NULL,
  fast BOOLEAN NOT NULL
"""
_LLM_COLUMNS = ("seq", "src_id", "tenant_id", "llm_factory", "llm_name", "model_type", "api_key", "api_base",
                "max_tokens", "status", "valid", "ikey", "has_is_tools", "m_extra", "inst_extra", "broken_json")


def build_llm(ctx: Any, step: str, meta: PgMeta, *, batch: int) -> dict[str, Any]:
    """``rm_llm``: every ``tenant_llm`` row (primary-key order; ``(tenant_id, llm_factory, llm_name)``
    on schemas ≤ v0.24, D5) with its identity and flags from :mod:`canonical`, and its provider
    attached. The server stages plain keys and RAGFlow's key objects itself (:data:`_STAGE_LLM`), a page
    of ids at a time; the other rows (other JSON keys, odd base URLs) are computed in Python
    (:func:`_compute_slow_rows`)."""
    conn = ctx.conn
    fingerprint = _llm_fingerprint(conn, meta)
    cached = ctx.extras.get(LLM_CACHE)
    if fingerprint is not None and cached is not None and (cached[0] == fingerprint
                                                           or _refresh_types(ctx, step, meta, cached[0], fingerprint)):
        ctx.extras[LLM_CACHE] = (fingerprint, cached[1])
        attach_providers(ctx, step, meta)  # providers a stage created since
        return cached[1]
    ctx.extras.pop(LLM_CACHE, None)
    temp_table(conn, LLM, _LLM_BODY)
    info: dict[str, Any] = {"rows": 0, "broken_json": 0, "broken_sample": []}
    if not meta.has_table("tenant_llm"):
        return info
    cols = meta.columns("tenant_llm")
    key = ("id",) if "id" in cols else ("tenant_id", "llm_factory", "llm_name")
    # varchar and integer columns (the schema step saw to it); NULL of that type where one is missing
    col = {c: (c if c in cols else f"NULL::{t}") for c, t in (
        ("tenant_id", "text"), ("llm_factory", "text"), ("llm_name", "text"), ("model_type", "text"),
        ("api_key", "text"), ("api_base", "text"), ("max_tokens", "bigint"), ("status", "text"))}
    order = "src_id" if key == ("id",) else ", ".join(f"{k} COLLATE \"C\"" for k in key)
    insert = _STAGE_LLM.format(
        llm=LLM, columns=", ".join(_LLM_COLUMNS), order=order, src_id="id" if key == ("id",) else "NULL::bigint",
        **col, statuses=", ".join(f"'{s}'" for s in sorted(canonical.VALID_STATUSES)),
        identity=identity_sql("ck", "base"), plain=_PLAIN, base_clean=_CLEAN.format(t="base"),
        value_clean=_CLEAN.format(t="value"), value=_value_sql("api_key", "shape"), shape=_shape_sql(col["api_key"]))
    total = int(scalar(conn, "SELECT COUNT(*) FROM tenant_llm") or 0)
    progress = ctx.progress(step, total, unit="tenant_llm rows staged")
    seq = 0
    pages = key_pages(conn, "tenant_llm", "id", max(batch, 20000)) if key == ("id",) else [(None, None)]
    for after, upto in pages:
        cond, args = range_condition("id", after, upto)
        n = logged(ctx, step, insert.replace("{cond}", cond), (seq, *args))
        seq += n
        progress.advance(n)
        ctx.checkpoint()
    _compute_slow_rows(ctx, info, batch)
    execute(conn, f"CREATE INDEX ON {LLM} (provider_id, ikey)")
    execute(conn, f"ANALYZE {LLM}")
    info["rows"] = seq
    progress.emit()
    if info["broken_json"]:
        ctx.notice(step, "tenant_llm rows whose api_key starts like JSON but does not parse: used as a plain "
                   "string key (truncated or corrupted by an earlier non-strict run?)",
                   count=info["broken_json"], sample=info["broken_sample"])
    attach_providers(ctx, step, meta)
    ctx.extras[LLM_CACHE] = (fingerprint, info)
    return info


# Rows the server stages itself (how > 0), by the rules of canonical.py (checked against it by the tests),
# with a base URL that JSON would not escape (no '"', '\\' or control character U+0001-U+001F; U+007F
# too, to be safe; code points, not the locale, decide):
# * how 1, a plain key: its first character an ASCII letter or digit, so not JSON;
# * how 2, a key object as RAGFlow writes it (json.dumps' spacing): {"api_key": "…"}, optionally followed
#   by "is_tools": true or false, the value without '"', '\\' or control characters, so without escapes:
#   the text between the quotes is the key itself (shape 1-3 below; LIKE, no JSON parsing).
# The other rows (how 0) go through Python: _compute_slow_rows.
_PLAIN = ("(api_key IS NULL OR api_key = '' OR ascii(api_key) BETWEEN 48 AND 57 OR ascii(api_key) BETWEEN 65 AND 90 "
          "OR ascii(api_key) BETWEEN 97 AND 122)")
_CLEAN = "(strpos({t}, '\"') = 0 AND strpos({t}, '\\') = 0 AND {t} !~ '[\\x01-\\x1f\\x7f]')"
_KEY_PREFIX = '{"api_key": "'
#: shape -> (LIKE pattern with %% for the value, the text after the value); '_' escaped for LIKE
_KEY_SHAPES = {1: '"}', 2: '", "is_tools": true}', 3: '", "is_tools": false}'}


def _shape_sql(key: str) -> str:
    like = {n: (_KEY_PREFIX + "%%" + tail).replace("_", "\\_") for n, tail in _KEY_SHAPES.items()}
    whens = " ".join(f"WHEN {key} LIKE '{like[n]}' THEN {n}" for n in _KEY_SHAPES)
    return f"CASE WHEN left({key}, 1) <> '{{' THEN 0 {whens} ELSE 0 END"


def _value_sql(key: str, shape: str) -> str:
    """The text between the quotes of a key object of ``shape`` (None for 0)."""
    start = len(_KEY_PREFIX) + 1
    return ("CASE " + " ".join(f"WHEN {shape} = {n} THEN substr({key}, {start}, char_length({key}) - {start - 1 + len(tail)})"
                               for n, tail in _KEY_SHAPES.items()) + " END")


# m_extra (canonical.legacy_model_extra): is_tools when exactly true, max_tokens when positive, json.dumps' spacing.
# OFFSET 0 keeps each level a subquery of its own: flattened, every mention of shape or value would
# evaluate its CASE again.
_STAGE_LLM = """
INSERT INTO {llm} ({columns}, fast)
SELECT %s + row_number() OVER (ORDER BY {order}), src_id, tenant_id, llm_factory, llm_name, model_type, api_key,
       api_base, max_tokens, status, CASE WHEN status IN ({statuses}) THEN 1 ELSE 0 END,
       CASE WHEN how > 0 THEN {identity} ELSE ''::bytea END,
       CASE WHEN how = 2 AND shape > 1 THEN 1 ELSE 0 END,
       CASE WHEN how = 0 THEN ''
            WHEN tools AND COALESCE(max_tokens, 0) > 0 THEN '{{"is_tools": true, "max_tokens": ' || max_tokens || '}}'
            WHEN tools THEN '{{"is_tools": true}}'
            WHEN COALESCE(max_tokens, 0) > 0 THEN '{{"max_tokens": ' || max_tokens || '}}'
            ELSE '{{}}' END,
       CASE WHEN how > 0 AND base <> '' THEN '{{"base_url": "' || base || '"}}' ELSE '' END, 0, how > 0
FROM (SELECT r.*, CASE WHEN how = 2 THEN value ELSE COALESCE(api_key, '') END AS ck, (how = 2 AND shape = 2) AS tools
      FROM (SELECT r.*, CASE WHEN NOT (base = '' OR {base_clean}) THEN 0 WHEN {plain} THEN 1
                             WHEN shape > 0 AND {value_clean} THEN 2 ELSE 0 END AS how
            FROM (SELECT r.*, {value} AS value
                  FROM (SELECT {src_id} AS src_id, {tenant_id} AS tenant_id, {llm_factory} AS llm_factory,
                               {llm_name} AS llm_name, {model_type} AS model_type, {api_key} AS api_key,
                               {api_base} AS api_base, {max_tokens} AS max_tokens, {status} AS status,
                               COALESCE({api_base}, '') AS base, {shape} AS shape
                        FROM tenant_llm WHERE {{cond}} OFFSET 0) r OFFSET 0) r OFFSET 0) r) r
"""


def identity_sql(key_sql: str, base_sql: str) -> str:
    """:func:`canonical.instance_identity` as a PostgreSQL expression (for plain keys, their own canonical form)."""
    return (f"substring(sha256(convert_to(char_length({key_sql})::text || ':' || {key_sql} || {base_sql}, 'UTF8')) "
            "FROM 1 FOR 16)")


_FIX = "rm_llm_fix"


def _compute_slow_rows(ctx: Any, info: dict[str, Any], batch: int) -> None:
    """The rows the server could not stage (JSON keys, odd base URLs): computed here a page at a time,
    COPYed beside and written back."""
    conn = ctx.conn
    temp_table(conn, _FIX, "seq BIGINT PRIMARY KEY, ikey BYTEA NOT NULL, has_is_tools SMALLINT NOT NULL, "
               "m_extra TEXT NOT NULL, inst_extra TEXT NOT NULL, broken_json SMALLINT NOT NULL")
    last = 0
    while True:
        page = query(conn, f"SELECT seq, api_key, api_base, max_tokens, src_id, tenant_id, llm_factory, llm_name "
                     f"FROM {LLM} WHERE NOT fast AND seq > %s ORDER BY seq LIMIT %s", (last, max(1000, batch)))
        if not page:
            break
        rows = [canonical.staged_key_row(info, *row) for row in page]
        execute(conn, f"TRUNCATE {_FIX}")
        copy_rows(conn, _FIX, ("seq", "ikey", "has_is_tools", "m_extra", "inst_extra", "broken_json"), rows)
        execute(conn, f"UPDATE {LLM} s SET ikey = f.ikey, has_is_tools = f.has_is_tools, m_extra = f.m_extra, "
                f"inst_extra = f.inst_extra, broken_json = f.broken_json FROM {_FIX} f WHERE f.seq = s.seq")
        last = page[-1][0]
        ctx.checkpoint()
    drop_temp(conn, _FIX)


def _llm_fingerprint(conn: Any, meta: PgMeta) -> tuple | None:
    """What ``rm_llm`` was built from: ``tenant_llm``'s row count, newest ``update_time`` and the rows
    of each model type (v0.27.0's schema step renames ``image2text`` between the stages, without
    touching ``update_time``). None: no ``tenant_llm``."""
    if not meta.has_table("tenant_llm"):
        return None
    cols = meta.columns("tenant_llm")
    newest = "MAX(update_time)" if "update_time" in cols else "NULL"
    count, newest = query(conn, f"SELECT COUNT(*), {newest} FROM tenant_llm")[0]
    return count, newest, _types_of(conn, "tenant_llm") if "model_type" in cols else None


def _types_of(conn: Any, table: str) -> str | None:
    return scalar(conn, f"SELECT string_agg(t || ':' || n, ',' ORDER BY t) FROM (SELECT model_type::text AS t, "
                  f"COUNT(*) AS n FROM {table} GROUP BY 1) x")


def _refresh_types(ctx: Any, step: str, meta: PgMeta, built: tuple, now: tuple) -> bool:
    """``rm_llm`` brought up to date when only ``tenant_llm``'s model types changed since it was built
    (the same rows and newest ``update_time``: v0.27.0's schema step renames ``image2text`` to
    ``vision`` between the stages), instead of staging every row again. True when ``rm_llm`` then
    counts the same rows per type as ``tenant_llm``."""
    if built[:2] != now[:2] or "id" not in meta.columns("tenant_llm") or "model_type" not in meta.columns("tenant_llm"):
        return False
    conn = ctx.conn
    if scalar(conn, f"SELECT 1 FROM {LLM} WHERE src_id IS NULL LIMIT 1") is not None:
        return False
    logged(ctx, step, f"UPDATE {LLM} r SET model_type = t.model_type::text FROM tenant_llm t WHERE t.id = r.src_id "
           "AND r.model_type IS DISTINCT FROM t.model_type::text")
    return _types_of(conn, LLM) == now[2]


def attach_providers(ctx: Any, step: str, meta: PgMeta) -> int:
    """``rm_llm.provider_id``: the tenant's provider named like the factory (case-insensitive, as the
    MySQL unique key compares; the lowest id should a case-sensitive database hold two)."""
    if not meta.has_table("tenant_model_provider"):
        return 0
    # One hash join on (tenant, folded name), each name folded once (a correlated subquery per row
    # folded every provider name of the tenant for every row: 3.4 s at M, 0.5 s this way).
    return logged(ctx, step, f"UPDATE {LLM} s SET provider_id = p.id FROM (SELECT DISTINCT ON (tenant_id, lname) "
                  "tenant_id, lname, id FROM (SELECT tenant_id, pg_temp.rm_fold(provider_name) AS lname, id "
                  "FROM tenant_model_provider) x ORDER BY tenant_id, lname, id COLLATE \"C\") p "
                  "WHERE p.tenant_id = s.tenant_id AND p.lname = pg_temp.rm_fold(s.llm_factory) "
                  "AND s.provider_id IS NULL")


def build_instances(ctx: Any, step: str, meta: PgMeta, *, batch: int) -> int:
    """``rm_inst``: every ``tenant_model_instance`` with the identity of its stored key and base URL."""
    conn = ctx.conn
    temp_table(conn, INST, "id TEXT NOT NULL PRIMARY KEY, provider_id TEXT NOT NULL, instance_name TEXT NOT NULL, "
               "ikey BYTEA NOT NULL, is_default SMALLINT NOT NULL, intl SMALLINT NOT NULL")
    if not meta.has_table("tenant_model_instance"):
        return 0
    count = 0
    with conn.transaction(), conn.cursor(name="rm_inst_read") as read:
        read.execute("SELECT id, provider_id, instance_name, api_key, extra FROM tenant_model_instance ORDER BY id")
        while True:
            page = read.fetchmany(max(1000, batch))
            if not page:
                break
            rows = [(inst_id, provider_id, name, canonical.identity_of_key(api_key, canonical.instance_base_url(extra)),
                     int(name == "default"), int(_region(extra) == "intl"))
                    for inst_id, provider_id, name, api_key, extra in page]
            count += copy_rows(conn, INST, ("id", "provider_id", "instance_name", "ikey", "is_default", "intl"), rows)
            ctx.checkpoint()
    execute(conn, f"CREATE INDEX ON {INST} (provider_id, ikey)")
    execute(conn, f"ANALYZE {INST}")
    return count


def _region(extra: str | None) -> str | None:
    if not extra or extra.lstrip()[:1] != "{":
        return None
    try:
        value = json.loads(extra)
    except ValueError:
        return None
    region = value.get("region") if isinstance(value, dict) else None
    return region if isinstance(region, str) else None


# --- the stage base ---------------------------------------------------------------------------------


class PgStage(DataStage):
    """A data stage on PostgreSQL: the MySQL stage's name, gate and Step contract."""

    #: This stage's own session tables (dropped after it, and on any failure).
    session_tables: tuple[str, ...] = ()

    def meta(self, ctx: RunContext) -> PgMeta:
        json_functions(ctx.conn)  # every stage starts here (plan, apply, the registry's probes)
        return PgMeta(ctx.conn)

    def drop_session_tables(self, ctx: RunContext) -> None:
        ctx.extras.pop(LLM_CACHE, None)
        drop_temp(ctx.conn, LLM, INST, *self.session_tables)

    def cleanup(self, ctx: RunContext) -> None:
        drop_temp(ctx.conn, *self.session_tables)

    def settle_rejections(self, ctx: RunContext, meta: Any, work: Work) -> list[dict[str, Any]]:
        """As on MySQL: with ``--widen-columns``, widen exactly the columns the values outgrow
        (:mod:`.widen`) when every rejection can be widened away; else stop, nothing written."""
        if not (work.rejections and getattr(ctx.settings, "widen_columns", False)
                and all(r.needed for r in work.rejections)):
            self.raise_rejections(work)
            return []
        done = []
        for r in work.rejections:
            assert r.needed is not None
            reason = f"{r.count} value(s) of up to {r.needed[0]} characters ({r.reason}), e.g. {r.rows[:5]}"
            change = widen.widen(ctx, self.name, meta, r.table, r.column, r.needed[0], reason)
            if change:
                done.append(change)
        work.rejections.clear()
        return done

    def sample(self, ctx: RunContext, sql: str, args: Any = None, columns: tuple[str, ...] = ()) -> list[dict]:
        rows = query(ctx.conn, sql + " LIMIT 5", args)
        return [dict(zip(columns, row, strict=False)) for row in rows]

    def check_lengths(self, ctx: RunContext, meta: PgMeta, work: Work, table: str,
                      checks: list[tuple[str, str]], source: str, ref: str, order: str) -> None:
        """Values that would not fit their ``table`` column (character_maximum_length): rejected with the
        longest one (chars, bytes), before anything is written. ``checks``: (column, expression)."""
        for column, expr in checks:
            limit = meta.max_length(table, column)
            if limit is None:
                continue
            found = query(ctx.conn, f"SELECT COUNT(*), COALESCE(MAX(char_length({expr})), 0), "
                          f"COALESCE(MAX(octet_length({expr})), 0) {source} AND char_length({expr}) > %s", (limit,))[0]
            if found[0]:
                rows = query(ctx.conn, f"SELECT {ref} {source} AND char_length({expr}) > %s ORDER BY {order} LIMIT 20",
                             (limit,))
                work.reject(table, column, limit, int(found[0]),
                            [{"tenant_llm.id": r[0], "tenant_id": r[1], "llm_factory": r[2], "llm_name": r[3]}
                             for r in rows], "longer than the column", needed=(int(found[1]), int(found[2])))


__all__ = ["IdSequence", "PgMeta", "PgStage", "Work"]
