"""The preflight's value check on PostgreSQL (MySQL's :mod:`ragflow_migrate.data.overflow`, same rules):
every legacy value against the column the pending data stages will write it to, before any write."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ....data import canonical, limits
from ....data.catalog import Catalog
from ....data.overflow import SAMPLE, Overflow, _catalogue, _fits, _ref
from .base import PgMeta, fold_text, json_functions, query, scalar


def _too_long(expr: str, target: limits.Target) -> str:
    parts = []
    if target.chars is not None:
        parts.append(f"char_length({expr}) > {int(target.chars)}")
    if target.bytes is not None:
        parts.append(f"octet_length({expr}) > {int(target.bytes)}")
    return "(" + " OR ".join(parts) + ")" if parts else "FALSE"


class _Meta(PgMeta):
    """:class:`PgMeta` as :func:`limits.target` reads it (``column_type``; no collation: names fold)."""


def overflows(conn: Any, pending: set[str], catalog: Catalog | None) -> list[Overflow]:
    json_functions(conn)
    meta = _Meta(conn)
    out: list[Overflow] = []
    legacy = meta.has_table("tenant_llm")
    if "tenant_model_instance" in pending and legacy:
        out += _instance_keys(conn, meta, limits.target(meta, "tenant_model_instance", "api_key", "v0.26.0"))
        out += _instance_extra(conn, meta, limits.target(meta, "tenant_model_instance", "extra", "v0.26.0"))
    if "tenant_model" in pending and legacy:
        out += _legacy_models(conn, meta, catalog)
    if pending & {"tenant_model_seeding", "model_type_merge"} and catalog is not None:
        stage = "tenant_model_seeding" if "tenant_model_seeding" in pending else "model_type_merge"
        out += _catalogue(meta, catalog, stage)
    return out


def _instance_keys(conn: Any, meta: PgMeta, target: limits.Target | None) -> list[Overflow]:
    """Stage 2: each new instance stores its representative legacy key (no ``is_tools`` first)."""
    if target is None or not limits.is_string(target):
        return []
    cols = meta.columns("tenant_llm")
    base = "api_base" if "api_base" in cols else "NULL"
    pairs = query(conn, f"SELECT DISTINCT tenant_id, pg_temp.rm_fold(llm_factory) FROM tenant_llm WHERE {_too_long('api_key', target)}")
    if not pairs:
        return []
    rows = query(conn, f"SELECT {'id' if 'id' in cols else 'NULL'}, tenant_id, llm_factory, llm_name, api_key, {base} "
                 "FROM tenant_llm WHERE (tenant_id, pg_temp.rm_fold(llm_factory)) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
                 ([p[0] for p in pairs], [p[1] for p in pairs]))
    existing: set[tuple] = set()
    if meta.has_table("tenant_model_instance") and meta.has_table("tenant_model_provider"):
        existing = {(t, fold_text(n), canonical.identity_of_key(k, canonical.instance_base_url(e))) for t, n, k, e in query(
            conn, "SELECT p.tenant_id, p.provider_name, i.api_key, i.extra FROM tenant_model_provider p "
            "JOIN tenant_model_instance i ON i.provider_id = p.id")}
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for row_id, tenant, factory, name, key, api_base in rows:
        groups[(tenant, fold_text(factory), canonical.identity_of_key(key, api_base))].append(
            (canonical.key_has_is_tools(key), row_id, tenant, factory, name, key))
    count, sample, longest = 0, [], (0, 0)
    for group_key, members in groups.items():
        if group_key in existing:
            continue
        first = min(m[0] for m in members)
        long = [m for m in members if m[0] == first and not _fits(m[5] or "", target)]
        if not long:
            continue
        count += 1
        for m in long:
            longest = (max(longest[0], len(m[5])), max(longest[1], len(m[5].encode("utf-8"))))
        if len(sample) < SAMPLE:
            sample.append(_ref(*long[0][1:5]))
    return [Overflow("tenant_model_instance", target, "tenant_llm.api_key", count, sample, longest)] if count else []


def _instance_extra(conn: Any, meta: PgMeta, target: limits.Target | None) -> list[Overflow]:
    """Stage 2: an instance's ``extra`` is ``{"base_url": …}`` of its legacy ``api_base``."""
    if target is None or not limits.is_string(target) or "api_base" not in meta.columns("tenant_llm"):
        return []
    room = (target.chars if target.chars is not None else target.bytes // 4) - 16
    candidates = [r[0] for r in query(conn, "SELECT DISTINCT api_base FROM tenant_llm WHERE char_length(api_base) > %s",
                                      (max(0, room // 6),))]
    too_long = [(b, canonical.instance_extra(b)) for b in candidates if not _fits(canonical.instance_extra(b), target)]
    if not too_long:
        return []
    values = [b for b, _e in too_long]
    count = int(scalar(conn, "SELECT COUNT(*) FROM (SELECT DISTINCT tenant_id, pg_temp.rm_fold(llm_factory), api_base "
                       "FROM tenant_llm WHERE api_base = ANY(%s)) d", (values,)) or 0)
    has_id = "id" in meta.columns("tenant_llm")
    rows = query(conn, f"SELECT {'id' if has_id else 'NULL'}, tenant_id, llm_factory, llm_name FROM tenant_llm "
                 f"WHERE api_base = ANY(%s) LIMIT {SAMPLE}", (values,))
    longest = (max(len(e) for _b, e in too_long), max(len(e.encode("utf-8")) for _b, e in too_long))
    return [Overflow("tenant_model_instance", target, "tenant_llm.api_base (as extra.base_url)", count,
                     [_ref(*r) for r in rows], longest)]


def _legacy_models(conn: Any, meta: PgMeta, catalog: Catalog | None) -> list[Overflow]:
    """Stage 3: the names and type strings of the rows it migrates (disabled, or not in the catalogue)."""
    out = []
    cols = meta.columns("tenant_llm")
    names = {(fold_text(m.factory), fold_text(m.llm_name)) for m in catalog.models} if catalog else set()
    status = "status" if "status" in cols else "'1'"
    for column, source in (("model_name", "llm_name"), ("model_type", "model_type")):
        target = limits.target(meta, "tenant_model", column, "v0.26.0")
        if target is None or source not in cols or not limits.is_string(target) or \
                (meta.has_table("tenant_model") and meta.is_int("tenant_model", column)):
            continue
        rows = query(conn, f"SELECT {'id' if 'id' in cols else 'NULL'}, tenant_id, llm_factory, llm_name, {source}, "
                     f"{status} FROM tenant_llm WHERE {_too_long(source, target)}")
        chosen = [r for r in rows if not canonical.is_valid_status(r[5])
                  (fold_text(r[2]), fold_text(r[3] or "")) not in names]
        if not chosen:
            continue
        values = [r[4] for r in chosen]
        longest = (max(len(v) for v in values), max(len(v.encode("utf-8")) for v in values))
        out.append(Overflow("tenant_model", target, f"tenant_llm.{source}", len(chosen),
                            [_ref(*r[:4]) for r in chosen[:SAMPLE]], longest))
    return out
