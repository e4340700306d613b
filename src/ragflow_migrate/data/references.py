"""Stage 7's reading side: which legacy model names still need a ``tenant_*_id``, a page at a time.

A reference is a row whose legacy column (``llm_id`` …) is non-empty while its target column
(``tenant_llm_id`` …) is NULL, ``''`` or not 32 characters long (RAGFlow's rule; a column still
INT counts as empty). Pages go **by tenant**: one page holds the references of a range of tenants
from all four tables, so a page's instances and models are looked up once, and, because the
migration created providers, instances and models in tenant order, those lookups read neighbouring
rows instead of jumping across ``tenant_model``. Rows whose tenant has no ``tenant`` row come last.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from . import sqlkit
from .sqlkit import Meta, Raw, render

#: table → [(target column, legacy column, type bit)]; the tenant is ``id`` on tenant, else tenant_id.
TARGETS: dict[str, tuple[tuple[str, str, int], ...]] = {
    "tenant": (("tenant_llm_id", "llm_id", 1), ("tenant_embd_id", "embd_id", 2), ("tenant_asr_id", "asr_id", 4),
               ("tenant_img2txt_id", "img2txt_id", 8), ("tenant_rerank_id", "rerank_id", 16),
               ("tenant_tts_id", "tts_id", 32), ("tenant_ocr_id", "ocr_id", 64)),
    "knowledgebase": (("tenant_embd_id", "embd_id", 2),),
    "dialog": (("tenant_llm_id", "llm_id", 1), ("tenant_rerank_id", "rerank_id", 16)),
    "memory": (("tenant_embd_id", "embd_id", 2), ("tenant_llm_id", "llm_id", 1)),
}
TENANTS_PER_PAGE = 500
ORPHAN_PAGE = 2000

#: (table, row id, tenant id, [(target column, legacy value, bit)])
Ref = tuple[str, Any, Any, list[tuple[str, str, int]]]


class ReferenceReader:
    def __init__(self, ctx: Any, meta: Meta) -> None:
        self.ctx, self.meta = ctx, meta
        self.tables = {t: self._query(t) for t in TARGETS if self._query(t) is not None}

    def _query(self, table: str) -> tuple[str, str, list[tuple[str, int]]] | None:
        """(SELECT … FROM t, the "needs resolution" condition, [(target, bit)]) of one table."""
        meta = self.meta
        if not meta.has_table(table) or "id" not in meta.columns(table):
            return None
        cols = meta.columns(table)
        pairs = [(t, legacy, bit) for t, legacy, bit in TARGETS[table] if legacy in cols]
        if not pairs or (table != "tenant" and "tenant_id" not in cols):
            return None
        select, needs = [], []
        for target, legacy, _bit in pairs:
            q_legacy = sqlkit.dialect.quote(legacy)
            if target in cols and not meta.is_int(table, target):
                q_target = sqlkit.dialect.quote(target)
                select.append(f"x.{q_legacy}, x.{q_target}")
                needs.append(f"(x.{q_legacy} <> '' AND (x.{q_target} IS NULL OR CHAR_LENGTH(x.{q_target}) <> 32))")
            else:  # still INT (a dry run before the DDL), or missing: every value needs resolving
                select.append(f"x.{q_legacy}, NULL")
                needs.append(f"x.{q_legacy} <> ''")
        tenant = "x.`id`" if table == "tenant" else "x.`tenant_id`"
        head = (render("SELECT x.`id`, {tenant}, ", tenant=Raw(tenant)) + ", ".join(select)
                + render(" FROM {t} x", t=table))
        return head, "(" + " OR ".join(needs) + ")", [(t, bit) for t, _legacy, bit in pairs]

    def pages(self) -> Iterator[list[Ref]]:
        conn = self.ctx.conn
        if "tenant" in self.tables or self.meta.has_table("tenant"):
            last = None
            while True:
                where, args = ("WHERE `id` > %s", (last,)) if last is not None else ("", ())
                tenants = [r[0] for r in sqlkit.query(conn, "SELECT `id` FROM `tenant` " + where
                                                       + " ORDER BY `id` LIMIT %s", (*args, TENANTS_PER_PAGE))]
                if not tenants:
                    break
                marks = ", ".join(["%s"] * len(tenants))
                page: list[Ref] = []
                for table, (head, needs, pairs) in self.tables.items():
                    col = "x.`id`" if table == "tenant" else "x.`tenant_id`"
                    rows = sqlkit.query(conn, f"{head} WHERE {col} IN ({marks}) AND {needs} ORDER BY x.`id`", tenants)
                    page += self._refs(table, rows, pairs)
                yield page
                last = tenants[-1]
                self.ctx.checkpoint()
        yield from self._orphans()

    def _orphans(self) -> Iterator[list[Ref]]:
        """Rows of knowledgebase, dialog and memory whose tenant has no ``tenant`` row."""
        conn = self.ctx.conn
        has_tenant = self.meta.has_table("tenant")
        for table, (head, needs, pairs) in self.tables.items():
            if table == "tenant":
                continue
            orphan = (render(" AND NOT EXISTS (SELECT 1 FROM `tenant` z WHERE z.`id` = x.`tenant_id` {c})",
                             c=self.meta.collation("tenant", "id")) if has_tenant else "")
            last = None
            while True:
                extra, args = (" AND x.`id` > %s", (last,)) if last is not None else ("", ())
                rows = sqlkit.query(conn, f"{head} WHERE {needs}{orphan}{extra} ORDER BY x.`id` LIMIT %s",
                                    (*args, ORPHAN_PAGE))
                if not rows:
                    break
                yield self._refs(table, rows, pairs)
                last = rows[-1][0]
                self.ctx.checkpoint()

    @staticmethod
    def _refs(table: str, rows: list[tuple], pairs: list[tuple[str, int]]) -> list[Ref]:
        out: list[Ref] = []
        for row in rows:
            wanted = []
            for i, (target, bit) in enumerate(pairs):
                value, current = row[2 + 2 * i], row[3 + 2 * i]
                if value and (current is None or len(str(current)) != 32):
                    wanted.append((target, value, bit))
            if wanted:
                out.append((table, row[0], row[1], wanted))
        return out
