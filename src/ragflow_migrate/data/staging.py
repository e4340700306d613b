"""Session-scoped staging tables: legacy rows and instances with their canonical identity.

The canonical API key (spec §2) needs a JSON parser, so it is computed here, in Python, one
page at a time, and stored with each row in a TEMPORARY table; every later decision is one
set-based statement joining these tables. Temporary tables belong to the connection: a
SIGKILL leaves nothing behind, and a dry run leaves nothing either (they are dropped at the end).

* ``rm_llm``: one row per ``tenant_llm`` row (streamed in primary-key order: ``id`` when the
  table has it, else ``(tenant_id, llm_factory, llm_name)``, the key of schemas ≤ v0.24, D5),
  with its identity ``ikey`` (canonical key + base URL), flags, the stage-3 ``extra`` and,
  once providers exist, its ``provider_id``.
* ``rm_inst``: one row per ``tenant_model_instance`` with the same identity, computed from the
  stored key and the ``base_url`` in its ``extra``.

Temporary tables are referenced at most once per statement (MySQL cannot reopen them).
"""

from __future__ import annotations

from typing import Any

from . import canonical, sqlkit
from .sqlkit import Meta, render

LLM = "rm_llm"
INST = "rm_inst"

_LLM_BODY = """
  `seq` BIGINT NOT NULL PRIMARY KEY,
  `src_id` BIGINT NULL,
  `tenant_id` VARCHAR(32) NOT NULL,
  `llm_factory` VARCHAR(128) NOT NULL,
  `llm_name` VARCHAR(128) NULL,
  `model_type` VARCHAR(128) NULL,
  `api_key` LONGTEXT NULL,
  `api_base` VARCHAR(255) NULL,
  `max_tokens` BIGINT NULL,
  `status` VARCHAR(16) NULL,
  `valid` TINYINT NOT NULL,
  `ikey` BINARY(16) NOT NULL,
  `has_is_tools` TINYINT NOT NULL,
  `m_extra` VARCHAR(1024) NOT NULL,
  `inst_extra` VARCHAR(2048) NOT NULL,
  `broken_json` TINYINT NOT NULL,
  `provider_id` VARCHAR(32) NULL,
  `fast` TINYINT NOT NULL,
  KEY `rm_llm_pk` (`provider_id`, `ikey`),
  KEY `rm_llm_pn` (`provider_id`, `llm_name`, `ikey`)
"""

_INST_BODY = """
  `id` VARCHAR(32) NOT NULL PRIMARY KEY,
  `provider_id` VARCHAR(32) NOT NULL,
  `instance_name` VARCHAR(128) NOT NULL,
  `ikey` BINARY(16) NOT NULL,
  `is_default` TINYINT NOT NULL,
  `intl` TINYINT NOT NULL,
  KEY `rm_inst_pk` (`provider_id`, `ikey`),
  KEY `rm_inst_pn` (`provider_id`, `instance_name`)
"""

#: ``ctx.extras`` keys of the staging tables this session holds (another session holds none of them).
LLM_CACHE, INST_CACHE = "data.rm_llm", "data.rm_inst"
SESSION_CACHES = (LLM_CACHE, INST_CACHE)

_LLM_COLUMNS = ("seq", "src_id", "tenant_id", "llm_factory", "llm_name", "model_type", "api_key", "api_base",
                "max_tokens", "status", "valid", "ikey", "has_is_tools", "m_extra", "inst_extra", "broken_json",
                "provider_id", "fast")
FIX = "rm_llm_fix"
_FIX_BODY = """
  `seq` BIGINT NOT NULL PRIMARY KEY,
  `ikey` BINARY(16) NOT NULL,
  `has_is_tools` TINYINT NOT NULL,
  `m_extra` VARCHAR(1024) NOT NULL,
  `inst_extra` VARCHAR(2048) NOT NULL,
  `broken_json` TINYINT NOT NULL
"""
# Rows the server stages itself, by the rules of canonical.py (checked against it by the tests), with a
# base URL that JSON would not escape (no '"', '\\' or control character):
# * a plain key: it starts like a word (an ASCII letter or digit), so it is not JSON;
# * a key object as RAGFlow writes it (json.dumps' spacing): {"api_key": "<v>"}, optionally with
#   "is_tools": true or false after it, <v> without '"', '\\' or control characters, so without
#   escapes: <v> is the key itself. Recognised by cutting, not parsing: <v> runs from character 14 to
#   the first '"', and what follows must be one of the three endings, byte for byte.
# Comparisons are of bytes (CAST AS BINARY: no case folding, no PAD SPACE) and lengths, as Python's.
# The other rows go through Python (_compute_slow_rows), which also overwrites what the copy wrote.
_PLAIN = ("({key} IS NULL OR {key} = '' OR ASCII({key}) BETWEEN 48 AND 57 OR ASCII({key}) BETWEEN 65 AND 90 "
          "OR ASCII({key}) BETWEEN 97 AND 122)")
_BASE_CLEAN = ("(COALESCE(CHAR_LENGTH({base}), 0) = 0 OR (LOCATE('\"', {base}) = 0 AND LOCATE('\\\\', {base}) = 0 "
               "AND {base} NOT REGEXP '[[:cntrl:]]'))")
_KEY_PREFIX = '{"api_key": "'
_KEY_ENDINGS = ('"}', '", "is_tools": true}', '", "is_tools": false}')  # shapes 1, 2, 3


def _key_object_sql(key: str) -> tuple[str, str, str]:
    """(value, shape, clean) of a key object: the text between the quotes, which of
    :data:`_KEY_ENDINGS` follows it (1-3; 0: not a key object of RAGFlow's making), and whether the
    value needs no unescaping (no backslash, no control character)."""
    value = f"SUBSTRING_INDEX(SUBSTRING({key}, {len(_KEY_PREFIX) + 1}), '\"', 1)"
    endings = ", ".join(f"'{e}'" for e in _KEY_ENDINGS)
    shape = (f"IF(CAST(LEFT({key}, {len(_KEY_PREFIX)}) AS BINARY) = '{_KEY_PREFIX}', "
             f"FIELD(CAST(SUBSTRING({key}, {len(_KEY_PREFIX) + 1} + CHAR_LENGTH({value})) AS BINARY), {endings}), 0)")
    clean = f"(LOCATE('\\\\', {value}) = 0 AND {value} NOT REGEXP '[[:cntrl:]]')"
    return value, shape, clean


def tenant_llm_key(meta: Meta) -> tuple[str, ...]:
    """Primary key to stream ``tenant_llm`` by: ``id`` (v0.25+) or the composite key of ≤ v0.24 (D5)."""
    cols = meta.columns("tenant_llm")
    return ("id",) if "id" in cols else ("tenant_id", "llm_factory", "llm_name")


def _fingerprint(ctx: Any, table: str) -> tuple:
    return tuple(sqlkit.query(ctx.conn, sqlkit.render("SELECT COUNT(*), MAX(`update_time`) FROM {t}", t=table))[0])


def build_llm(ctx: Any, step: str, meta: Meta, *, batch: int) -> dict[str, Any]:
    """Fill ``rm_llm`` from ``tenant_llm``; returns counts and broken-JSON samples.

    Most keys are plain strings (``sk-…``): their identity and flags are computed by the server
    in the copy itself (:data:`_PLAIN`, :func:`_key_object_sql`, the same rules as :mod:`.canonical`, checked against it by
    the tests). Only the others (JSON keys, odd base URLs) go through Python, a page at a time.

    The table lives as long as the connection, so the stages of one run share it: it is rebuilt
    only when ``tenant_llm`` changed (row count or newest ``update_time``), which nothing in this
    tool does. Providers are attached in the copy, and again by :func:`attach_providers`.
    """
    conn = ctx.conn
    fingerprint = None
    if meta.has_table("tenant_llm"):
        cached = ctx.extras.get(LLM_CACHE)
        fingerprint = _fingerprint(ctx, "tenant_llm")
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
    sqlkit.temp_table(conn, LLM, _LLM_BODY)
    ctx.extras.pop(LLM_CACHE, None)
    info: dict[str, Any] = {"rows": 0, "broken_json": 0, "broken_sample": []}
    if not meta.has_table("tenant_llm"):
        return info
    cols = meta.columns("tenant_llm")
    key = tenant_llm_key(meta)
    col = {c: (f"l.{sqlkit.dialect.quote(c)}" if c in cols else "NULL")
           for c in ("tenant_id", "llm_factory", "llm_name", "model_type", "api_key", "api_base", "max_tokens",
                     "status")}
    order = ", ".join(f"l.{sqlkit.dialect.quote(c)}" for c in key)
    provider = ""
    if meta.has_table("tenant_model_provider"):
        provider = render(" LEFT JOIN `tenant_model_provider` p ON p.`tenant_id` = l.`tenant_id` {ct} "
                          "AND p.`provider_name` = l.`llm_factory` {cp}",
                          ct=meta.collation("tenant_model_provider", "tenant_id"),
                          cp=meta.collation("tenant_model_provider", "provider_name"))
    key_col, base_col, tokens = col["api_key"], col["api_base"], col["max_tokens"]
    value, shape, clean = _key_object_sql(key_col)
    plain = _PLAIN.format(key=key_col)
    fast = f"({_BASE_CLEAN.format(base=base_col)} AND ({plain} OR ({shape} > 0 AND {clean})))"
    # The other columns as if the row were the server's to stage (Python rewrites the others'), so
    # each by the least it takes to tell the staged shapes apart: a key object starts with '{', its
    # is_tools ending with 'e}', its is_tools true with 'true}'.
    obj = f"LEFT({key_col}, 1) = '{{'"
    canon = f"IF({obj}, {value}, COALESCE({key_col}, ''))"
    tools = f"({obj} AND CAST(RIGHT({key_col}, 5) AS BINARY) = 'true}}')"
    base = f"COALESCE({base_col}, '')"
    positive = f"COALESCE({tokens}, 0) > 0"
    m_extra = (f"IF({tools}, IF({positive}, CONCAT('{{\"is_tools\": true, \"max_tokens\": ', {tokens}, '}}'), "
               f"'{{\"is_tools\": true}}'), IF({positive}, CONCAT('{{\"max_tokens\": ', {tokens}, '}}'), '{{}}'))")
    if key == ("id",):
        # The row numbers from a narrow page of ids (a window over the whole rows would sort their keys too).
        source = ("FROM (SELECT `id`, ROW_NUMBER() OVER (ORDER BY `id`) AS `rn` FROM `tenant_llm` l WHERE {cond}) r "
                  "STRAIGHT_JOIN `tenant_llm` l ON l.`id` = r.`id`" + provider)
        number = "%s + r.`rn`"
    else:
        source, number = "FROM `tenant_llm` l" + provider + " WHERE {cond}", f"%s + ROW_NUMBER() OVER (ORDER BY {order})"
    select = (
        f"SELECT {number}, {'l.`id`' if key == ('id',) else 'NULL'}, "
        f"{col['tenant_id']}, {col['llm_factory']}, {col['llm_name']}, {col['model_type']}, {key_col}, "
        f"{base_col}, {tokens}, {col['status']}, "
        f"IF(CAST({col['status']} AS BINARY) IN ('1', 'active', 'enable'), 1, 0), "
        f"{canonical.identity_sql(canon, base)}, IF({obj} AND CAST(RIGHT({key_col}, 2) AS BINARY) = 'e}}', 1, 0), "
        f"{m_extra}, IF(CHAR_LENGTH({base}) > 0, CONCAT('{{\"base_url\": \"', {base}, '\"}}'), ''), 0, "
        f"{'p.`id`' if provider else 'NULL'}, IF({fast}, 1, 0) " + source
    )
    insert = render("INSERT INTO {t} (", t=LLM) + ", ".join(sqlkit.dialect.quote(c) for c in _LLM_COLUMNS) + ") "
    total = int(sqlkit.scalar(conn, "SELECT COUNT(*) FROM `tenant_llm`") or 0)
    progress = ctx.progress(step, total, unit="tenant_llm rows staged")
    seq = 0
    first = key[0]
    for after, upto in sqlkit.key_ranges(conn, "tenant_llm", first, max(batch, 20000)):
        cond, args = sqlkit.range_condition(f"l.{sqlkit.dialect.quote(first)}", after, upto)
        n = sqlkit.logged(ctx, step, insert + select.replace("{cond}", cond), (seq, *args))
        seq += n
        progress.advance(n)
        ctx.checkpoint()
    info["rows"] = seq
    _compute_slow_rows(ctx, step, info, batch)
    progress.emit()
    if info["broken_json"]:
        ctx.notice(step, "tenant_llm rows whose api_key starts like JSON but does not parse: used as a plain "
                   "string key (truncated or corrupted by an earlier non-strict run?)",
                   count=info["broken_json"], sample=info["broken_sample"])
    ctx.extras[LLM_CACHE] = (fingerprint, info)
    return info


def _compute_slow_rows(ctx: Any, step: str, info: dict[str, Any], batch: int) -> None:
    """The rows the server could not do: identity and flags computed here, written back per page."""
    conn = ctx.conn
    sqlkit.temp_table(conn, FIX, _FIX_BODY)
    last = 0
    while True:
        page = sqlkit.query(conn, render("SELECT `seq`, `api_key`, `api_base`, `max_tokens`, `src_id`, `tenant_id`, "
                                         "`llm_factory`, `llm_name` FROM {t} WHERE `fast` = 0 AND `seq` > %s "
                                         "ORDER BY `seq` LIMIT %s", t=LLM), (last, batch))
        if not page:
            break
        rows = [canonical.staged_key_row(info, *row) for row in page]
        sqlkit.clear_temp(conn, FIX)
        sqlkit.insert_rows(conn, FIX, ("seq", "ikey", "has_is_tools", "m_extra", "inst_extra", "broken_json"), rows)
        sqlkit.logged(ctx, step, render(
            "UPDATE {t} s JOIN {f} f ON f.`seq` = s.`seq` SET s.`ikey` = f.`ikey`, s.`has_is_tools` = f.`has_is_tools`, "
            "s.`m_extra` = f.`m_extra`, s.`inst_extra` = f.`inst_extra`, s.`broken_json` = f.`broken_json`, "
            "s.`fast` = 2", t=LLM, f=FIX))
        last = page[-1][0]
        ctx.checkpoint()
    sqlkit.drop_temp(conn, FIX)


def attach_providers(ctx: Any, step: str, meta: Meta) -> int:
    """Set ``rm_llm.provider_id`` from ``tenant_model_provider`` (same tenant, provider = factory)."""
    if not meta.has_table("tenant_model_provider"):
        return 0
    return sqlkit.logged(ctx, step, render(
        "UPDATE {l} s STRAIGHT_JOIN `tenant_model_provider` p ON p.`tenant_id` = s.`tenant_id` {ct} "
        "AND p.`provider_name` = s.`llm_factory` {cp} SET s.`provider_id` = p.`id` WHERE s.`provider_id` IS NULL",
        l=LLM, ct=meta.collation("tenant_model_provider", "tenant_id"),
        cp=meta.collation("tenant_model_provider", "provider_name")))


def build_instances(ctx: Any, step: str, meta: Meta, *, batch: int) -> int:
    """Fill ``rm_inst`` from ``tenant_model_instance`` (kept for the run until :func:`instances_changed`)."""
    conn = ctx.conn
    cached = ctx.extras.get(INST_CACHE)
    if cached is not None and meta.has_table("tenant_model_instance"):
        if cached[0] == _fingerprint(ctx, "tenant_model_instance"):
            return cached[1]
    sqlkit.temp_table(conn, INST, _INST_BODY)
    ctx.extras.pop(INST_CACHE, None)
    if not meta.has_table("tenant_model_instance"):
        return 0
    # Plain keys and an extra without base URL or region (what the migration writes) on the server ...
    fast = _PLAIN.format(key="i.`api_key`") + " AND i.`extra` IN ('', '{}')"
    count = sqlkit.logged(ctx, step, render(
        "INSERT INTO {t} (`id`, `provider_id`, `instance_name`, `ikey`, `is_default`, `intl`) ", t=INST)
        + "SELECT i.`id`, i.`provider_id`, i.`instance_name`, " + canonical.identity_sql("i.`api_key`", "''")
        + ", i.`instance_name` COLLATE utf8mb4_bin = 'default', 0 FROM `tenant_model_instance` i WHERE " + fast)
    # ... the others here, a page at a time.
    last = None
    while True:
        where, args = ("AND `id` > %s", (last,)) if last is not None else ("", ())
        page = sqlkit.query(conn, "SELECT `id`, `provider_id`, `instance_name`, `api_key`, `extra` "
                            "FROM `tenant_model_instance` i WHERE NOT (" + fast + ") " + where
                            + " ORDER BY `id` LIMIT %s", (*args, batch))
        if not page:
            break
        rows = []
        for inst_id, provider_id, name, api_key, extra in page:
            rows.append((inst_id, provider_id, name,
                         canonical.identity_of_key(api_key, canonical.instance_base_url(extra)),
                         int(name == "default"), int(_region(extra) == "intl")))
        sqlkit.insert_rows(conn, INST, ("id", "provider_id", "instance_name", "ikey", "is_default", "intl"), rows)
        count += len(page)
        last = page[-1][0]
        ctx.checkpoint()
    ctx.extras[INST_CACHE] = (_fingerprint(ctx, "tenant_model_instance"), count)
    return count


def instances_changed(ctx: Any) -> None:
    """Stage 2 wrote instances (or renamed them): rebuild ``rm_inst`` next time."""
    ctx.extras.pop(INST_CACHE, None)


def _region(extra: str | None) -> str | None:
    import json

    if not extra or extra.lstrip()[:1] != "{":
        return None
    try:
        value = json.loads(extra)
    except ValueError:
        return None
    region = value.get("region") if isinstance(value, dict) else None
    return region if isinstance(region, str) else None


def _describe_pk(key: tuple[str, ...], pk: tuple[Any, ...]) -> Any:
    return pk[0] if key == ("id",) else dict(zip(key, pk, strict=True))


def drop_all(ctx: Any) -> None:
    """Forget the staging tables (they also vanish with the connection)."""
    ctx.extras.pop(LLM_CACHE, None)
    ctx.extras.pop(INST_CACHE, None)
    sqlkit.drop_temp(ctx.conn, LLM, INST)
