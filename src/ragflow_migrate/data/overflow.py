"""Before anything runs: every legacy value against the column the pending data stages will write it to.

The stages check their own values too, but only when they run, after the stages and schema
steps before them have committed. This module predicts those checks from the legacy data as it
is now, for every pending stage at once, so that a run that cannot finish is refused before its
first write (the preflight, :mod:`..preflight`). Set-based and cheap: a few index-free scans of
``tenant_llm`` with a length condition, and Python only for the rare rows that fail it.

What can outgrow its column on the way, and what happens to it:

* ``tenant_model_instance.api_key`` (VARCHAR(512)) ← the representative legacy key of each new
  instance (``tenant_llm.api_key`` is TEXT since v0.21): no lossless shorter form of a
  credential exists → widen (``--widen-columns``) or refuse;
* ``tenant_model_instance.extra`` (VARCHAR(512)) ← ``{"base_url": …}`` of the legacy
  ``api_base``: widen or refuse;
* ``tenant_model.model_name`` / ``model_type`` ← the legacy rows stage 3 migrates, and the
  catalogue's names, types and ``extra`` that seeding writes: widen or refuse;
* ``m@p`` references that would not fit as ``m@default@p`` (``knowledgebase.embd_id``
  VARCHAR(128), JSON configs in TEXT columns): not a blocker; they stay two-part, which RAGFlow
  v0.27.0 reads the same way (stage ``model_id_config``);
* ``tenant_*_id`` ← 32-character ids: always fit.

A prediction may name a value the stage would in the end not write (it errs on the side of
refusing: never the other way round); its counts are instances or rows as the stage counts them.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

from .. import releases
from . import canonical, limits, sqlkit
from .catalog import Catalog
from .sqlkit import Meta, render

SAMPLE = 10
CHUNK = 200  # (tenant, factory) pairs per read


@dataclasses.dataclass
class Overflow:
    stage: str
    target: limits.Target
    source: str  # where the values come from: "tenant_llm.api_key", "the catalogue …"
    count: int
    sample: list[Any]
    needed: tuple[int, int]  # longest value: characters, bytes

    def describe(self) -> str:
        return (f"{self.target.name} ({self.target.column_type}): {self.count} value(s) of {self.source} do not fit "
                f"(longest {self.needed[0]} characters), written by stage {self.stage}; e.g. {self.sample[:5]}")

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "table": self.target.table, "column": self.target.column,
                "column_type": self.target.column_type, "source": self.source, "count": self.count,
                "sample": self.sample, "longest_chars": self.needed[0], "longest_bytes": self.needed[1]}


def overflows(conn: Any, pending: set[str], catalog: Catalog | None) -> list[Overflow]:
    """The values the ``pending`` data stages (by name) would find too long for their columns."""
    meta = Meta(conn)
    out: list[Overflow] = []
    legacy = meta.has_table("tenant_llm")
    if "tenant_model_instance" in pending and legacy:
        key_target = limits.target(meta, "tenant_model_instance", "api_key", "v0.26.0")
        extra_target = limits.target(meta, "tenant_model_instance", "extra", "v0.26.0")
        pairs, bases = _candidates(conn, meta, key_target, extra_target)
        out += _instance_keys(conn, meta, key_target, pairs)
        out += _instance_extra(conn, meta, extra_target, bases)
    if "tenant_model" in pending and legacy:
        out += _legacy_models(conn, meta, catalog)
    if pending & {"tenant_model_seeding", "model_type_merge"} and catalog is not None:
        stage = "tenant_model_seeding" if "tenant_model_seeding" in pending else "model_type_merge"
        out += _catalogue(meta, catalog, stage)
    return out


def _too_long(expr: str, target: limits.Target) -> str:
    parts = []
    if target.chars is not None:
        parts.append(f"CHAR_LENGTH({expr}) > {int(target.chars)}")
    if target.bytes is not None:
        parts.append(f"LENGTH({expr}) > {int(target.bytes)}")
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def _fits(text: str | None, target: limits.Target) -> bool:
    return text is None or target.fits(len(text), len(text.encode("utf-8")))


def _ref(row_id: Any, tenant: Any, factory: Any, name: Any) -> dict[str, Any]:
    ref = {"tenant_id": tenant, "llm_factory": factory, "llm_name": name}
    return {"tenant_llm.id": row_id, **ref} if row_id is not None else ref


def _fold(meta: Meta, table: str, column: str):
    """How the column's collation compares names (providers are unique per (tenant, name) in it)."""
    info = meta.column(table, column)
    if info is not None and info.collation and info.collation.endswith("_bin"):
        return lambda v: v
    return lambda v: v.casefold().rstrip(" ") if isinstance(v, str) else v


def _candidates(conn: Any, meta: Meta, key_target: limits.Target | None, extra_target: limits.Target | None
                ) -> tuple[list[tuple], list[str]]:
    """One scan of ``tenant_llm`` for stage 2's two checks: the (tenant, factory) pairs with a key too
    long for ``api_key``, and the base URLs whose ``{"base_url": …}`` may be too long for ``extra``."""
    key = _too_long("`api_key`", key_target) if key_target and limits.is_string(key_target) else "0"
    base = "0"
    if extra_target and limits.is_string(extra_target) and "api_base" in meta.columns("tenant_llm"):
        room = (extra_target.chars if extra_target.chars is not None else extra_target.bytes // 4) - 16
        # {"base_url": ""} takes 16 characters; JSON escapes '"' and '\\' with one more, a control
        # character with up to five more: only such URLs, or a very long one, can outgrow the column
        base = (f"(CHAR_LENGTH(`api_base`) > {max(0, room // 6)} AND (LOCATE('\"', `api_base`) > 0 "
                f"OR LOCATE('\\\\', `api_base`) > 0 OR `api_base` REGEXP '[[:cntrl:]]') "
                f"OR CHAR_LENGTH(`api_base`) > {max(0, room)})")
    if key == "0" and base == "0":
        return [], []
    rows = sqlkit.query(conn, f"SELECT DISTINCT `tenant_id`, `llm_factory`, {key}, "
                        f"IF({base}, `api_base`, NULL) FROM `tenant_llm` WHERE {key} OR {base}")
    pairs = sorted({(r[0], r[1]) for r in rows if r[2]})
    bases = sorted({r[3] for r in rows if r[3] is not None})
    return pairs, bases


def _instance_keys(conn: Any, meta: Meta, target: limits.Target | None, pairs: list[tuple]) -> list[Overflow]:
    """Stage 2: each new instance stores its representative legacy key; is any too long?"""
    if target is None or not pairs:
        return []
    has_id = "id" in meta.columns("tenant_llm")
    base = "`api_base`" if "api_base" in meta.columns("tenant_llm") else "NULL"
    fold = _fold(meta, "tenant_llm", "llm_factory")
    count, sample, longest = 0, [], (0, 0)
    for i in range(0, len(pairs), CHUNK):
        chunk = pairs[i:i + CHUNK]
        marks = ", ".join(["(%s, %s)"] * len(chunk))
        args = tuple(v for pair in chunk for v in pair)
        rows = sqlkit.query(conn, f"SELECT {'`id`' if has_id else 'NULL'}, `tenant_id`, `llm_factory`, `llm_name`, "
                            f"`api_key`, {base} FROM `tenant_llm` WHERE (`tenant_id`, `llm_factory`) IN ({marks})",
                            args)
        existing = _existing_identities(conn, meta, marks, args, fold)
        groups: dict[tuple, list[tuple]] = defaultdict(list)
        for row_id, tenant, factory, name, key, base in rows:
            identity = canonical.identity_of_key(key, base)
            groups[(tenant, fold(factory), identity)].append(
                (canonical.key_has_is_tools(key), row_id, tenant, factory, name, key))
        for group_key, members in groups.items():
            if group_key in existing:
                continue
            first = min(m[0] for m in members)  # the representative is one of these (no is_tools first)
            long = [m for m in members if m[0] == first and not _fits(m[5] or "", target)]
            if not long:
                continue
            count += 1
            for m in long:
                longest = (max(longest[0], len(m[5])), max(longest[1], len(m[5].encode("utf-8"))))
            if len(sample) < SAMPLE:
                sample.append(_ref(*long[0][1:5]))
    if not count:
        return []
    return [Overflow("tenant_model_instance", target, "tenant_llm.api_key", count, sample, longest)]


def _existing_identities(conn: Any, meta: Meta, marks: str, args: tuple, fold) -> set[tuple]:
    """(tenant, provider, identity) of the instances that exist already for these pairs."""
    if not (meta.has_table("tenant_model_instance") and meta.has_table("tenant_model_provider")):
        return set()
    rows = sqlkit.query(conn, "SELECT p.`tenant_id`, p.`provider_name`, i.`api_key`, i.`extra` FROM "
                        "`tenant_model_provider` p JOIN `tenant_model_instance` i ON i.`provider_id` = p.`id` "
                        f"WHERE (p.`tenant_id`, p.`provider_name`) IN ({marks})", args)
    return {(tenant, fold(name), canonical.identity_of_key(key, canonical.instance_base_url(extra)))
            for tenant, name, key, extra in rows}


def _instance_extra(conn: Any, meta: Meta, target: limits.Target | None, bases: list[str]) -> list[Overflow]:
    """Stage 2: an instance's ``extra`` is ``{"base_url": …}`` of its legacy ``api_base``."""
    if target is None or not bases:
        return []
    too_long = [(b, canonical.instance_extra(b)) for b in bases if not _fits(canonical.instance_extra(b), target)]
    if not too_long:
        return []
    values = [b for b, _e in too_long]
    marks = ", ".join(["%s"] * len(values))
    has_id = "id" in meta.columns("tenant_llm")
    count = int(sqlkit.scalar(conn, "SELECT COUNT(*) FROM (SELECT DISTINCT `tenant_id`, `llm_factory`, `api_base` "
                              f"FROM `tenant_llm` WHERE `api_base` IN ({marks})) d", tuple(values)) or 0)
    rows = sqlkit.query(conn, f"SELECT {'`id`' if has_id else 'NULL'}, `tenant_id`, `llm_factory`, `llm_name` "
                        f"FROM `tenant_llm` WHERE `api_base` IN ({marks}) LIMIT {SAMPLE}", tuple(values))
    longest = (max(len(e) for _b, e in too_long), max(len(e.encode("utf-8")) for _b, e in too_long))
    return [Overflow("tenant_model_instance", target, "tenant_llm.api_base (as extra.base_url)", count,
                     [_ref(*r) for r in rows], longest)]


def _legacy_models(conn: Any, meta: Meta, catalog: Catalog | None) -> list[Overflow]:
    """Stage 3: the names and type strings of the legacy rows it migrates (disabled, or not in the
    catalogue) against ``tenant_model``."""
    out = []
    has_id = "id" in meta.columns("tenant_llm")
    names = {(m.factory, m.llm_name) for m in catalog.models} if catalog else set()
    for column, source in (("model_name", "llm_name"), ("model_type", "model_type")):
        target = limits.target(meta, "tenant_model", column, "v0.26.0")
        info = meta.column("tenant_llm", source)
        if target is None or info is None or not limits.is_string(target):
            continue  # an INT model_type (D4) takes bits
        if info.max_length is not None and target.chars is not None and info.max_length <= target.chars \
                and target.bytes is None:
            continue  # the legacy column cannot hold a longer value
        # an old schema may not have `status` yet: the v0.21 migration adds it as '1' (valid)
        status = "`status`" if "status" in meta.columns("tenant_llm") else "'1'"
        rows = sqlkit.query(conn, render(f"SELECT {'`id`' if has_id else 'NULL'}, `tenant_id`, `llm_factory`, "
                                         f"`llm_name`, {{c}}, {status} FROM `tenant_llm` WHERE ", c=source)
                            + _too_long(render("{c}", c=source), target))
        chosen = [r for r in rows if not canonical.is_valid_status(r[5]) or (r[2], r[3]) not in names]
        if not chosen:
            continue
        values = [r[4] for r in chosen]
        longest = (max(len(v) for v in values), max(len(v.encode("utf-8")) for v in values))
        out.append(Overflow("tenant_model", target, f"tenant_llm.{source}", len(chosen),
                            [_ref(*r[:4]) for r in chosen[:SAMPLE]], longest))
    return out


def _catalogue(meta: Meta, catalog: Catalog, stage: str) -> list[Overflow]:
    """Seeding (written by the merge): the catalogue's names, type strings and ``extra``."""
    out = []
    rows = catalog.seed_rows()
    for column, value in (("model_name", lambda r: r.llm_name), ("model_type", lambda r: r.type_str),
                          ("extra", lambda r: r.extra)):
        target = limits.target(meta, "tenant_model", column, releases.NEWEST_RELEASE if column != "model_type"
                               else "v0.26.0")
        if target is None or not limits.is_string(target):
            continue
        bad = sorted({(r.provider_name, r.llm_name, value(r)) for r in rows if not _fits(value(r), target)})
        if bad:
            longest = (max(len(v) for *_k, v in bad), max(len(v.encode("utf-8")) for *_k, v in bad))
            out.append(Overflow(stage, target, f"the catalogue {catalog.path}", len(bad),
                                [[p, n] for p, n, _v in bad[:SAMPLE]], longest))
    return out
