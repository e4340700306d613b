"""Stage 7's lookup: a legacy ``model[@instance]@provider`` name → a ``tenant_model`` id (spec §3.7).

Resolution, a page of references at a time (a few set-based reads per page, joined through
small session tables so that names compare exactly as the app's SQL compares them):

1. read the value from the right (:func:`canonical.parse_reference`): the provider is the
   last part; the middle part is an instance only if that provider has an instance of that
   name, otherwise the whole prefix is the model name (FIX D14);
2. the provider is the row's **own tenant's** provider of that name (never another tenant's);
3. the instance: an explicit name → that instance (lowest id among equal names); ``default``
   or no instance → the instance holding the canonical key of the tenant's legacy
   ``tenant_llm`` row for that model (FIX D12), else ``default``, then the lowest id, the first
   of them that has the model;
4. the model: active, of that name, with the type's bit set; an exact-case name first, then the
   lowest id.

Anything else resolves to ``''`` (KEEP), counted per reason. CHOICE D13 (off unless asked for):
when the named provider does not exist for the tenant and exactly one active model of that
name and type exists in the tenant's other providers, use it, and say so.
"""

from __future__ import annotations

import collections
from typing import Any

from . import canonical, sqlkit, staging
from .sqlkit import Meta, render

W_PROV = "rm_want_prov"
W_MODEL = "rm_want_model"
W_INST = "rm_want_inst"

R_NO_PROVIDER_PART = "no provider in the value (no '@' part)"
R_NO_PROVIDER = "the tenant has no provider of that name"
R_NO_INSTANCE = "the provider has no instance for it"
R_NO_MODEL = "no active model of that name and type in the instance (disabled, or not of this type)"
R_FALLBACK = "resolved in another provider of the tenant (cross-provider fallback, D13)"


class Resolver:
    def __init__(self, ctx: Any, meta: Meta, *, fallback: bool = False) -> None:
        self.ctx, self.meta, self.fallback = ctx, meta, fallback
        self.reasons: collections.Counter[str] = collections.Counter()
        self.samples: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        conn = ctx.conn
        sqlkit.temp_table(conn, W_PROV, "`tenant_id` VARCHAR(32) NOT NULL, `name` VARCHAR(1024) NOT NULL")
        sqlkit.temp_table(conn, W_MODEL, "`provider_id` VARCHAR(32) NOT NULL, `model` VARCHAR(1024) NOT NULL")
        sqlkit.temp_table(conn, W_INST, "`instance_id` VARCHAR(32) NOT NULL, `model` VARCHAR(1024) NOT NULL")
        self.c_pt = meta.collation("tenant_model_provider", "tenant_id")
        self.c_pn = meta.collation("tenant_model_provider", "provider_name")
        self.c_mi = meta.collation("tenant_model", "instance_id")
        self.c_mn = meta.collation("tenant_model", "model_name")
        self.c_ln = meta.collation("tenant_llm", "llm_name") if meta.has_table("tenant_llm") else self.c_mn

    # -- public ---------------------------------------------------------------------------------

    def resolve(self, page: list[tuple[str, Any, Any, list[tuple[str, str, int]]]]) -> list[tuple]:
        """page: [(table, row id, tenant id, [(target column, legacy value, bit)])]
        → [(table, row id, column, model id or '')]."""
        refs = []
        tables = []
        for table, row_id, tenant, wanted in page:
            for column, value, bit in wanted:
                refs.append((row_id, tenant, column, value, bit, canonical.parse_reference(value)))
                tables.append(table)
        providers = self._providers({(r[1], r[5].provider) for r in refs if r[5] is not None})
        instances = self._instances(set(providers.values()))
        plans = []  # (ref, provider id, model, [candidate instance ids], legacy-bound)
        legacy_wanted: set[tuple[str, str]] = set()
        for ref in refs:
            parsed = ref[5]
            provider = providers.get((ref[1], parsed.provider)) if parsed else None
            if provider is None:
                plans.append((ref, None, None, [], False))
                continue
            insts = instances.get(provider, [])
            names = {i[1] for i in insts}
            if parsed.named and parsed.named[1] in names:
                model, inst_name = parsed.named
            else:
                model, inst_name = parsed.plain, None
            if not model:
                plans.append((ref, provider, None, [], False))
                continue
            if inst_name not in (None, "default"):
                plans.append((ref, provider, model, [next(i[0] for i in insts if i[1] == inst_name)], False))
            else:
                legacy_wanted.add((provider, model))
                plans.append((ref, provider, model, None, True))
        legacy = self._legacy_keys(legacy_wanted)
        resolved_plans = []
        for ref, provider, model, cands, _bound in plans:
            if cands is None:  # the default rule
                insts = instances.get(provider, [])
                key = legacy.get((provider, model))
                if key is not None:
                    cands = [i[0] for i in insts if i[2] == key][:1]
                else:
                    cands = [i[0] for i in insts]
            resolved_plans.append((ref, provider, model, cands))
        models = self._models({(c, m) for _r, _p, m, cs in resolved_plans if m for c in cs})
        fallback = self._fallback(refs, providers) if self.fallback else {}
        out = []
        for table, (ref, provider, model, cands) in zip(tables, resolved_plans, strict=True):
            row_id, tenant, column, value, bit, parsed = ref
            found = ""
            reason = None
            if parsed is None:
                reason = R_NO_PROVIDER_PART
            elif provider is None:
                found = fallback.get((tenant, _fallback_name(parsed), bit), "")
                reason = R_FALLBACK if found else R_NO_PROVIDER
            elif not model or not cands:
                reason = R_NO_INSTANCE if model else R_NO_PROVIDER_PART
            else:
                for inst in cands:
                    hits = [m for m in models.get((inst, model), []) if int(m[1]) & bit]
                    if hits:
                        hits.sort(key=lambda m: (m[2] != model, m[0]))
                        found = hits[0][0]
                        break
                if not found:
                    reason = R_NO_MODEL
            if reason:
                self.reasons[reason] += 1
                if len(self.samples[reason]) < 10:
                    self.samples[reason].append({"table": table, "id": row_id, "column": column, "value": value})
            out.append((table, row_id, column, found))
        return out

    def summary(self) -> list[str]:
        return [f"{count} reference(s) → {'a model id' if reason == R_FALLBACK else chr(39) * 2}: {reason}; e.g. "
                f"{self.samples[reason][:3]}" for reason, count in sorted(self.reasons.items())]

    def notices(self) -> list[tuple[str, int, list[dict[str, Any]]]]:
        return [(("legacy references resolved in another provider: " if reason == R_FALLBACK
                  else "legacy references left as '': ") + reason, count, self.samples[reason])
                for reason, count in sorted(self.reasons.items())]

    # -- lookups (one set-based read each per page) -------------------------------------------------

    def _fill(self, table: str, columns: tuple[str, str], rows: set[tuple[str, str]]) -> None:
        sqlkit.clear_temp(self.ctx.conn, table)
        items = sorted(rows)
        for i in range(0, len(items), 1000):
            sqlkit.insert_rows(self.ctx.conn, table, columns, items[i:i + 1000])

    def _providers(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        if not wanted:
            return {}
        self._fill(W_PROV, ("tenant_id", "name"), wanted)
        rows = sqlkit.query(self.ctx.conn, render(
            "SELECT w.`tenant_id`, w.`name`, p.`id` FROM {w} w STRAIGHT_JOIN `tenant_model_provider` p "
            "ON p.`tenant_id` = w.`tenant_id` {ct} AND p.`provider_name` = w.`name` {cn}",
            w=W_PROV, ct=self.c_pt, cn=self.c_pn))
        return {(t, n): p for t, n, p in rows}

    def _instances(self, providers: set[str]) -> dict[str, list[tuple[str, str, bytes]]]:
        """provider → [(instance id, name, identity)], 'default' first, then by id."""
        if not providers:
            return {}
        out: dict[str, list[tuple[str, str, bytes, int]]] = collections.defaultdict(list)
        items = sorted(providers)
        for i in range(0, len(items), 1000):
            chunk = items[i:i + 1000]
            rows = sqlkit.query(self.ctx.conn, render(
                "SELECT `id`, `provider_id`, `instance_name`, `ikey`, `is_default` FROM {t} WHERE `provider_id` IN (",
                t=staging.INST) + ", ".join(["%s"] * len(chunk)) + ")", chunk)
            for inst_id, provider, name, ikey, is_default in rows:
                out[provider].append((inst_id, name, bytes(ikey), int(is_default)))
        return {p: [(i[0], i[1], i[2]) for i in sorted(v, key=lambda i: (-i[3], i[0]))] for p, v in out.items()}

    def _legacy_keys(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        if not wanted:
            return {}
        self._fill(W_MODEL, ("provider_id", "model"), wanted)
        rows = sqlkit.query(self.ctx.conn, render(
            "SELECT w.`provider_id`, w.`model`, l.`ikey` FROM {w} w STRAIGHT_JOIN {l} l ON l.`provider_id` = w.`provider_id` "
            "AND l.`llm_name` = w.`model` {cn} ORDER BY l.`seq` DESC", w=W_MODEL, l=staging.LLM, cn=self.c_ln))
        return {(p, m): bytes(k) for p, m, k in rows}  # the first row read wins (rows come last-first)

    def _models(self, wanted: set[tuple[str, str]]) -> dict[tuple[str, str], list[tuple[str, int, str]]]:
        """(instance id, wanted name) → [(model id, type bits, stored name)] of active rows (names compared
        as the column compares them). The pairs are sorted, so neighbouring instances are read together."""
        if not wanted:
            return {}
        self._fill(W_INST, ("instance_id", "model"), {(i, m) for i, m in wanted})
        rows = sqlkit.query(self.ctx.conn, render(
            "SELECT w.`instance_id`, w.`model`, m.`id`, m.`model_type`, m.`model_name` FROM {w} w "
            "STRAIGHT_JOIN `tenant_model` m ON m.`instance_id` = w.`instance_id` {ci} "
            "AND m.`model_name` = w.`model` {cn} WHERE m.`status` = 'active'",
            w=W_INST, ci=self.c_mi, cn=self.c_mn))
        out: dict[tuple[str, str], list[tuple[str, int, str]]] = collections.defaultdict(list)
        for inst, wanted_name, model_id, bits, name in rows:
            out[(inst, wanted_name)].append((model_id, _bits(bits), name))
        return out

    def _fallback(self, refs: list, providers: dict) -> dict[tuple[str, str, int], str]:
        """CHOICE D13: the unique active model of that name and type among the tenant's providers."""
        wanted = {(r[1], _fallback_name(r[5])) for r in refs
                  if r[5] is not None and (r[1], r[5].provider) not in providers and _fallback_name(r[5])}
        if not wanted:
            return {}
        self._fill(W_PROV, ("tenant_id", "name"), wanted)
        rows = sqlkit.query(self.ctx.conn, render(
            "SELECT w.`tenant_id`, w.`name`, m.`id`, m.`model_type` FROM {w} w "
            "STRAIGHT_JOIN `tenant_model_provider` p ON p.`tenant_id` = w.`tenant_id` {ct} "
            "STRAIGHT_JOIN `tenant_model` m ON m.`provider_id` = p.`id` {cp} AND m.`model_name` = w.`name` {cn} "
            "WHERE m.`status` = 'active'", w=W_PROV, ct=self.c_pt, cp=self.meta.collation("tenant_model", "provider_id"),
            cn=self.c_mn))
        by_name: dict[tuple[str, str], list[tuple[str, int]]] = collections.defaultdict(list)
        for tenant, name, model_id, bits in rows:
            by_name[(tenant, name)].append((model_id, _bits(bits)))
        found: dict[tuple[str, str, int], str] = {}
        for ref in refs:
            if ref[5] is None or (ref[1], ref[5].provider) in providers:
                continue
            key = (ref[1], _fallback_name(ref[5]))
            ids = sorted({m for m, bits in by_name.get(key, []) if bits & ref[4]})
            if len(ids) == 1:
                found[(*key, ref[4])] = ids[0]
        return found

    def close(self) -> None:  # pragma: no cover - the stage drops the tables in its cleanup
        sqlkit.drop_temp(self.ctx.conn, W_PROV, W_MODEL, W_INST)


def _fallback_name(ref: canonical.Reference) -> str:
    """The model a reference names when its provider is gone: with an instance part, the part before it."""
    return (ref.named[0] if ref.named else ref.plain) or ""


def _bits(model_type: object) -> int:
    """INT after the merge; a type string before it (a dry run of stage 7 ahead of the merge)."""
    if isinstance(model_type, int):
        return model_type
    text = str(model_type)
    return int(text) if text.isdigit() else canonical.type_bit(text)
