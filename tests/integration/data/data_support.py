"""Helpers of the data-migration tests: contexts, legacy rows, snapshots, the §6 acceptance checks.

Used by the tests in this folder (and importable from a scratch script against any server).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pymysql

from ragflow_migrate import runner
from ragflow_migrate.config import load_settings
from ragflow_migrate.data import canonical, registry
from ragflow_migrate.data.stages.base import DataStage
from ragflow_migrate.steps import RunContext
from servers.harness import shared_root

TESTS = Path(__file__).resolve().parents[2]
SMALL_CATALOG = TESTS / "data" / "llm_factories.small.json"
SHARED = shared_root()
REAL_CATALOG = SHARED / "ragflow-data" / "llm_factories-v0.27.0.json"
OWN_PREFIX = "ragflow_migrate_"


class ListLog:
    """A logger that keeps (level, event, fields): enough for RunContext, Progress and notices."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def _log(self, level: str, event: str, **fields: Any) -> None:
        self.records.append((level, event, fields))

    def debug(self, event: str, **fields: Any) -> None:
        self._log("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log("error", event, **fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._log("error", event, **fields)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [f for _lvl, e, f in self.records if e == name]

    def notices(self) -> list[dict[str, Any]]:
        return self.events("step.notice")


def settings_for(env: dict[str, str], catalog: Path | str = SMALL_CATALOG, **flags: Any):
    environ = {k: v for k, v in env.items() if k.startswith("MYSQL_")}
    return load_settings({"catalog": str(catalog), "termination_log": os.devnull, **flags}, environ=environ)


def open_ctx(env: dict[str, str], catalog: Path | str = SMALL_CATALOG, **flags: Any) -> RunContext:
    settings = settings_for(env, catalog, **flags)
    return runner.open_context(settings, ListLog(), uuid.uuid4().hex[:16], wait=False)


def run_stage(ctx: RunContext, stage: DataStage):
    return stage.apply(ctx)


def run_gate(ctx: RunContext, gate: str) -> list[str]:
    ran = []
    for stage in registry.data_steps(ctx, gate):
        stage.apply(ctx)
        ran.append(getattr(stage, "stage", stage.name))  # a MarkerStep (killed before the marker) has no stage
    return ran


def run_all(ctx: RunContext) -> list[str]:
    return [s for gate in registry.GATES for s in run_gate(ctx, gate)]


def force_all(ctx: RunContext) -> None:
    """Every stage, whatever the records say (idempotency of the stages themselves)."""
    for stage in registry.all_stages():
        stage.apply(ctx)


# --- building databases -------------------------------------------------------------------------


def load_schema(database: Any, path: Path | str, *, collation: str | None = None) -> None:
    """Load a reference dump; ``collation`` rewrites its table collations (Helm's general_ci, D1)."""
    text = Path(path).read_text(encoding="utf-8")
    if collation:
        text = text.replace("utf8mb4_unicode_ci", collation)
    database.load_sql(text)


def table_sql(path: Path | str, table: str) -> str:
    text = Path(path).read_text(encoding="utf-8")
    match = re.search(r"^CREATE TABLE `" + re.escape(table) + r"` \(.*?^\) ENGINE=[^;]*;", text, re.S | re.M)
    if not match:
        raise KeyError(f"{table} not in {path}")
    return match.group(0)


def _defaults(conn: pymysql.connections.Connection, table: str) -> dict[str, Any]:
    rows = _q(conn, "SELECT column_name, data_type, is_nullable, extra FROM information_schema.columns "
              "WHERE table_schema = DATABASE() AND table_name = %s", (table,))
    out: dict[str, Any] = {}
    for name, data_type, nullable, extra in rows:
        if nullable == "YES" or "auto_increment" in (extra or ""):
            continue
        dt = str(data_type).lower()
        if dt in ("int", "bigint", "tinyint", "smallint", "float", "double", "decimal"):
            out[name] = 0
        elif dt in ("datetime", "timestamp", "date"):
            out[name] = "2024-01-01 00:00:00"
        elif dt in ("longtext", "text", "mediumtext"):
            out[name] = "{}"
        else:
            out[name] = ""
    return out


_DEFAULTS_CACHE: dict[tuple[str, str], dict[str, Any]] = {}


def insert(conn: pymysql.connections.Connection, table: str, **values: Any) -> None:
    """Insert one row, filling NOT NULL columns the test does not care about."""
    key = (conn.db.decode() if isinstance(conn.db, bytes) else str(conn.db), table)
    if key not in _DEFAULTS_CACHE:
        _DEFAULTS_CACHE[key] = _defaults(conn, table)
    row = {**_DEFAULTS_CACHE[key], **values}
    cols = ", ".join(f"`{c}`" for c in row)
    marks = ", ".join(["%s"] * len(row))
    with conn.cursor() as cur:
        cur.execute(f"INSERT INTO `{table}` ({cols}) VALUES ({marks})", list(row.values()))


def tenant(conn, tid: str, **refs: Any) -> None:
    values = {"id": tid, "llm_id": "", "embd_id": "", "asr_id": "", "img2txt_id": "", "rerank_id": "",
              "parser_ids": "", "credit": 0, "status": "1"}
    values.update(refs)
    insert(conn, "tenant", **values)


def llm(conn, tenant_id: str, factory: str, name: str | None, key: str | None, status: str = "1",
        model_type: str | None = "chat", api_base: str | None = None, max_tokens: int = 8192) -> None:
    insert(conn, "tenant_llm", tenant_id=tenant_id, llm_factory=factory, llm_name=name, api_key=key,
           status=status, model_type=model_type, api_base=api_base, max_tokens=max_tokens, used_tokens=0)


# --- legacy data sets ------------------------------------------------------------------------------------

VOLC_KEY = '{"ark_api_key":"k","endpoint_id":"e","is_tools":true}'


def spec_rows(c) -> None:
    """The legacy rows of the spec's verified examples (§3.2, §3.3, §3.7)."""
    tenant(c, "t1", llm_id="gpt-4o@OpenAI", embd_id="text-embedding-3-small@OpenAI", img2txt_id="gpt-4o@OpenAI",
              rerank_id="BAAI/bge-reranker-v2-m3", asr_id="o1@OpenAI")
    tenant(c, "t2", embd_id="text-embedding-3-small@OpenAI")
    tenant(c, "t3")
    llm(c, "t1", "OpenAI", "gpt-4o", "sk-A")
    llm(c, "t1", "OpenAI", "text-embedding-3-small", "sk-A", model_type="embedding")
    llm(c, "t1", "OpenAI", "o1", "sk-A", status="0")
    llm(c, "t1", "OpenAI", "gpt-4o-mini", '{"api_key": "sk-A", "is_tools": true}')
    llm(c, "t2", "OpenAI", "gpt-4o", "sk-B")
    llm(c, "t2", "OpenAI", "gpt-4o-mini", "sk-B2")
    llm(c, "t2", "OpenAI", "text-embedding-3-small", "sk-B", model_type="embedding")
    llm(c, "t1", "VolcEngine", "doubao-pro", VOLC_KEY)
    llm(c, "t1", "Ollama", "llama3:8b", "x", api_base="http://ollama:11434")
    llm(c, "t3", "Xinference", "qwen-local", None)
    llm(c, "t3", "SILICONFLOW", "BAAI/bge-large-zh-v1.5", "sf", model_type="embedding")
    llm(c, "t1", "LM-Studio", "text-embedding-nomic-embed-text-v1.5@q8_0", "", model_type="embedding")
    insert(c, "knowledgebase", id="kb2", tenant_id="t3", name="kb", embd_id="BAAI/bge-large-zh-v1.5@BAAI",
              permission="me", created_by="t3", parser_id="naive", parser_config="{}")
    insert(c, "knowledgebase", id="kb3", tenant_id="t1", name="kb3",
              embd_id="text-embedding-nomic-embed-text-v1.5@q8_0@LM-Studio", permission="me", created_by="t1",
              parser_id="naive", parser_config="{}")



# --- stage 7's rule, written out row by row (the oracle of the resolver) -----------------------------


def _fold(text: str | None) -> str:
    """How utf8mb4_unicode_ci compares ASCII: case-insensitive, trailing spaces ignored."""
    return (text or "").lower().rstrip(" ")


class ReferenceOracle:
    """Stage 7's resolution (spec §3.7 'Recommended', fallback off) over a migrated database, one
    reference at a time from plain reads of the tables: what the resolver's page-wise lookups must
    produce. It shares only the value parser (unit-tested on its own) with the tool. Test data
    keeps names ASCII (``_fold`` is how the server compares them)."""

    def __init__(self, conn) -> None:
        self.owner = {pid: (t, n) for pid, t, n in _q(conn, "SELECT id, tenant_id, provider_name FROM "
                                                      "tenant_model_provider")}
        self.providers = {(_fold(t), _fold(n)): pid for pid, (t, n) in self.owner.items()}
        self.instances: dict[str, list[tuple[str, str, bytes]]] = {}
        for iid, pid, name, key, extra in _q(conn, "SELECT id, provider_id, instance_name, api_key, extra "
                                             "FROM tenant_model_instance"):
            self.instances.setdefault(pid, []).append(
                (iid, name, canonical.identity_of_key(key, canonical.instance_base_url(extra))))
        for insts in self.instances.values():
            insts.sort(key=lambda i: (i[1] != "default", i[0]))
        self.models: dict[str, list[tuple[str, str, int, str]]] = {}
        for mid, iid, name, mtype, status in _q(conn, "SELECT id, instance_id, model_name, model_type, status "
                                                "FROM tenant_model"):
            self.models.setdefault(iid, []).append((mid, name or "", int(mtype), status))
        self.legacy: dict[tuple[str, str, str], bytes] = {}
        for _id, t, f, n, key, base in _q(conn, "SELECT id, tenant_id, llm_factory, llm_name, api_key, api_base "
                                          "FROM tenant_llm ORDER BY id"):
            self.legacy[(_fold(t), _fold(f), _fold(n))] = canonical.identity_of_key(key, base)  # the last wins

    def resolve(self, tenant: str, value: str, bit: int) -> str:
        ref = canonical.parse_reference(value)
        provider = self.providers.get((_fold(tenant), _fold(ref.provider))) if ref else None
        if provider is None:
            return ""
        insts = self.instances.get(provider, [])
        if ref.named and ref.named[1] in {i[1] for i in insts}:
            model, instance = ref.named
        else:
            model, instance = ref.plain, None
        if instance not in (None, "default"):
            candidates = [next(i for i in insts if i[1] == instance)]
        else:
            owner_tenant, owner_name = self.owner[provider]
            key = self.legacy.get((_fold(owner_tenant), _fold(owner_name), _fold(model)))
            candidates = [i for i in insts if i[2] == key][:1] if key is not None else insts
        for inst in candidates:
            hits = [m for m in self.models.get(inst[0], [])
                    if _fold(m[1]) == _fold(model) and m[3] == "active" and m[2] & bit]
            if hits:
                return min(hits, key=lambda m: (m[1] != model, m[0]))[0]
        return ""


# --- reading state ---------------------------------------------------------------------------------


def _q(conn, sql: str, args: Any = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def has_table(conn, table: str) -> bool:
    return bool(_q(conn, "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() "
                   "AND table_name = %s", (table,)))


def has_column(conn, table: str, column: str) -> bool:
    return bool(_q(conn, "SELECT 1 FROM information_schema.columns WHERE table_schema = DATABASE() "
                   "AND table_name = %s AND column_name = %s", (table, column)))


def providers(conn) -> dict[str, tuple[str, str]]:
    return {r[0]: (r[1], r[2]) for r in _q(conn, "SELECT id, tenant_id, provider_name FROM tenant_model_provider")}


def instances(conn) -> list[dict[str, Any]]:
    provs = providers(conn)
    out = []
    for iid, pid, name, key, status, extra in _q(conn, "SELECT id, provider_id, instance_name, api_key, status, "
                                                  "extra FROM tenant_model_instance"):
        tenant_id, pname = provs.get(pid, (None, None))
        out.append({"id": iid, "tenant": tenant_id, "provider": pname, "name": name, "api_key": key,
                    "status": status, "extra": extra})
    return out


def models(conn) -> list[dict[str, Any]]:
    insts = {i["id"]: i for i in instances(conn)}
    provs = providers(conn)
    out = []
    for mid, name, pid, iid, mtype, status, extra in _q(conn, "SELECT id, model_name, provider_id, instance_id, "
                                                       "model_type, status, extra FROM tenant_model"):
        inst = insts.get(iid, {})
        tenant_id, pname = provs.get(pid, (None, None))
        out.append({"id": mid, "tenant": tenant_id, "provider": pname, "instance_key": inst.get("api_key"),
                    "instance_extra": inst.get("extra"), "model_name": name, "model_type": mtype,
                    "status": status, "extra": extra})
    return out


def model_row(conn, model_id: str | None) -> dict[str, Any] | None:
    if not model_id:
        return None
    for m in models(conn):
        if m["id"] == model_id:
            return m
    return None


REFERENCE_COLUMNS = {
    "tenant": ("llm_id", "embd_id", "asr_id", "img2txt_id", "rerank_id", "tts_id", "ocr_id"),
    "knowledgebase": ("embd_id",),
    "dialog": ("llm_id", "rerank_id"),
    "memory": ("embd_id", "llm_id"),
}


def references(conn) -> dict[tuple[str, str, str], tuple[Any, Any]]:
    """(table, row id, legacy column) → (legacy value, target value)."""
    out = {}
    for table, cols in REFERENCE_COLUMNS.items():
        if not has_table(conn, table):
            continue
        for col in cols:
            target = f"tenant_{'img2txt' if col == 'img2txt_id' else col[:-3]}_id"
            if not has_column(conn, table, col):
                continue
            tsel = f"`{target}`" if has_column(conn, table, target) else "NULL"
            for rid, legacy, value in _q(conn, f"SELECT id, `{col}`, {tsel} FROM `{table}`"):
                out[(table, rid, col)] = (legacy, value)
    return out


def snapshot(conn) -> dict[str, Any]:
    """The migrated state without generated ids and timestamps: comparable across runs."""
    ms = models(conn)
    by_id = {m["id"]: m for m in ms}

    def describe_ref(value: Any) -> Any:
        if value is None or value == "":
            return value
        m = by_id.get(value)
        if m is None:
            return ("dangling", value) if len(str(value)) == 32 else ("legacy", value)
        return (m["tenant"], m["provider"], m["instance_key"], m["model_name"])

    refs = {f"{t}:{r}:{c}": (legacy, describe_ref(v)) for (t, r, c), (legacy, v) in references(conn).items()}
    json_cols = {}
    for table, col in (("knowledgebase", "parser_config"), ("document", "parser_config"), ("search", "search_config"),
                       ("user_canvas", "dsl"), ("dialog", "llm_id")):
        if has_table(conn, table) and has_column(conn, table, col):
            json_cols[f"{table}.{col}"] = sorted(_q(conn, f"SELECT id, `{col}` FROM `{table}`"))
    return {
        "providers": sorted(providers(conn).values()),
        "instances": sorted((i["tenant"], i["provider"], i["name"], i["api_key"], i["status"], i["extra"])
                            for i in instances(conn)),
        "models": sorted((m["tenant"], m["provider"], m["instance_key"], m["instance_extra"], m["model_name"] or "",
                          str(m["model_type"]), m["status"], m["extra"]) for m in ms),
        "references": refs,
        "json": json_cols,
        "model_type_is_int": column_type(conn, "tenant_model", "model_type").startswith("int"),
    }


def column_type(conn, table: str, column: str) -> str:
    rows = _q(conn, "SELECT column_type FROM information_schema.columns WHERE table_schema = DATABASE() "
              "AND table_name = %s AND column_name = %s", (table, column))
    return str(rows[0][0]).lower() if rows else ""


def dump(conn) -> dict[str, Any]:
    """SHOW CREATE TABLE of every table and all rows in key order: byte-for-byte comparisons."""
    out = {}
    for (table,) in _q(conn, "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
                       "ORDER BY table_name"):
        create = _q(conn, f"SHOW CREATE TABLE `{table}`")[0][1]
        create = re.sub(r" AUTO_INCREMENT=\d+", "", create)
        rows = _q(conn, f"SELECT * FROM `{table}`")
        out[table] = (create, sorted(rows, key=repr))
    return out


def marker_value(conn) -> str | None:
    if not has_table(conn, "system_settings"):
        return None
    rows = _q(conn, "SELECT value FROM system_settings WHERE name = 'mysql_migration.database.version'")
    return rows[0][0] if rows else None


# --- §6 acceptance checks -------------------------------------------------------------------------


@dataclasses.dataclass
class LegacyRow:
    tenant: str
    factory: str
    name: str | None
    key: str | None
    status: str
    model_type: str | None
    api_base: str | None


def legacy_rows(conn) -> list[LegacyRow]:
    return [LegacyRow(*r) for r in _q(conn, "SELECT tenant_id, llm_factory, llm_name, api_key, status, model_type, "
                                      "api_base FROM tenant_llm")]


def check_acceptance(conn, catalog_path: Path | str = SMALL_CATALOG, *, log: ListLog | None = None) -> None:
    """Spec §6 checks 2–6 on a migrated database (check 1, a second run, is the tests' own)."""
    from ragflow_migrate.data.catalog import load_catalog

    cat = load_catalog(catalog_path)
    ms = models(conn)
    insts = instances(conn)
    # 3. no duplicate (provider, instance, model_name); no duplicate (provider, canonical key) instance
    groups = Counter((m["tenant"], m["provider"], m["instance_key"], m["instance_extra"], m["model_name"]) for m in ms)
    assert not [g for g, n in groups.items() if n > 1], f"duplicate model rows: {groups.most_common(3)}"
    ident = Counter((i["tenant"], i["provider"], canonical.canonical_key(i["api_key"]),
                     canonical.instance_base_url(i["extra"])) for i in insts)
    dup = [k for k, n in ident.items() if n > 1]
    assert not dup, f"duplicate instances per (provider, canonical key): {dup[:3]}"
    # 4. extra is a JSON object; instance keys equal a legacy key byte for byte
    for m in ms:
        assert isinstance(json.loads(m["extra"]), dict), f"extra not a JSON object: {m}"
    legacy = legacy_rows(conn)
    keys = {(r.tenant, r.factory.lower(), r.key or "") for r in legacy}
    for i in insts:
        assert (i["tenant"], i["provider"].lower(), i["api_key"]) in keys, f"instance key not from a legacy row: {i}"
    # 2. every valid legacy model: exactly one active row in the instance with its key, with its bit
    catalog_names = {(m.factory, m.llm_name): set(m.types) for m in cat.models}
    for r in legacy:
        if not canonical.is_valid_status(r.status) or r.name is None:
            continue
        bit = canonical.type_bit(r.model_type)
        cat_types = catalog_names.get((r.factory, r.name))
        if cat_types is not None:
            bits = {canonical.type_bit(t) for t in cat_types}
            if bit not in bits:
                continue  # the catalogue decides the types of a catalogue model
        elif not bit:
            continue  # a custom model of no known type is dropped (CHOICE: type 0)
        want = canonical.canonical_key(r.key), (r.api_base or "")
        hits = [m for m in ms if m["tenant"] == r.tenant and m["provider"] and m["provider"].lower() == r.factory.lower()
                and (m["model_name"] or "").lower() == r.name.lower() and m["status"] == "active"
                and (canonical.canonical_key(m["instance_key"]),
                     canonical.instance_base_url(m["instance_extra"])) == want]
        assert len(hits) == 1, f"valid legacy model {r} has {len(hits)} active rows in its instance"
        assert int(hits[0]["model_type"]) & bit, f"bit {bit} missing for {r}: {hits[0]}"
    # 5. references: 32-char ids of the same tenant, or ''
    tenant_of = {}
    for (table, rid, _col), _ in references(conn).items():
        tenant_of[(table, rid)] = None
    for (table, rid, col), (legacy_value, value) in references(conn).items():
        if not legacy_value:
            continue
        assert value is not None, f"{table}.{rid}.{col}: legacy {legacy_value!r} left NULL"
        if value == "":
            continue
        assert len(value) == 32, f"{table}.{rid}.{col}: {value!r}"
        row = model_row(conn, value)
        assert row is not None, f"{table}.{rid}.{col} points to no model"
        owner = _row_tenant(conn, table, rid)
        assert row["tenant"] == owner, f"{table}.{rid}.{col} points into tenant {row['tenant']}, not {owner}"
    # 6. collation; marker last
    coll = {t: c for t, c in _q(conn, "SELECT table_name, table_collation FROM information_schema.tables "
                                "WHERE table_schema = DATABASE() AND table_name IN ('tenant_model', "
                                "'tenant_model_provider')")}
    assert coll.get("tenant_model") == coll.get("tenant_model_provider"), coll
    assert marker_value(conn) == "v0.27.0"


def _row_tenant(conn, table: str, rid: str) -> str:
    col = "id" if table == "tenant" else "tenant_id"
    return _q(conn, f"SELECT `{col}` FROM `{table}` WHERE id = %s", (rid,))[0][0]


# --- databases RAGFlow's own code touched ----------------------------------------------------------------

MODEL_TABLES = ("tenant_model_provider", "tenant_model_instance", "tenant_model", "tenant_model_group",
                "tenant_model_group_mapping")


def v27_startup_over_v25(database: Any, schema: Any) -> None:
    """What RAGFlow v0.27's startup leaves on a v0.25.6 database (D4), on either server: the model
    tables as v0.27.0 creates them (INT model_type), tenant.ocr_id added, the tenant_*_id columns
    still INT and tenant_ocr_id missing."""
    load_schema(database, schema("v0.25.6"))
    fresh27 = schema("v0.27.0")
    for table in MODEL_TABLES:
        database.load_sql(table_sql(fresh27, table))
    database.load_sql("ALTER TABLE tenant ADD COLUMN ocr_id VARCHAR(128) NULL")


def rich_rows(c, tenants: int = 6, seed: int = 7) -> None:
    """A deterministic mix of every kind of legacy row and reference, for end-state comparisons."""
    import random

    rnd = random.Random(seed)
    factories = ["OpenAI", "SILICONFLOW", "Ollama", "VolcEngine", "FuturMix", "OldFactory", "LM-Studio"]
    names = {"OpenAI": ["gpt-4o", "gpt-4o-mini", "o1", "text-embedding-3-small", "whisper-1", "my-deployment"],
             "SILICONFLOW": ["Qwen/Qwen3-VL-8B-Instruct", "BAAI/bge-large-zh-v1.5", "BAAI/bge-reranker-v2-m3"],
             "Ollama": ["llama3:8b", "nomic-embed"], "VolcEngine": ["doubao-pro"], "FuturMix": ["gpt-4o", "custom"],
             "OldFactory": ["retired"], "LM-Studio": ["emb@q8_0"]}
    types = {"text-embedding-3-small": "embedding", "BAAI/bge-large-zh-v1.5": "embedding", "nomic-embed": "embedding",
             "emb@q8_0": "embedding", "BAAI/bge-reranker-v2-m3": "rerank", "whisper-1": "speech2text",
             "Qwen/Qwen3-VL-8B-Instruct": "image2text"}
    for t in range(tenants):
        tid = f"tenant{t:03d}"
        refs: dict[str, str] = {}
        for factory in rnd.sample(factories, 3):
            keys = [f"sk-{tid}-{factory[:3]}", None, f'{{"api_key": "sk-{tid}-{factory[:3]}", "is_tools": true}}',
                    f"sk-{tid}-alt"]
            base = rnd.choice([None, None, "http://host:1234"]) if factory in ("Ollama", "LM-Studio") else None
            for name in names[factory]:
                key = rnd.choice(keys)
                status = rnd.choice(["1", "1", "1", "0"])
                mtype = types.get(name, "chat")
                llm(c, tid, factory, name, key, status=status, model_type=mtype, api_base=base,
                    max_tokens=rnd.choice([0, 4096, 8192]))
                column = {"embedding": "embd_id", "rerank": "rerank_id", "speech2text": "asr_id",
                          "image2text": "img2txt_id"}.get(mtype, "llm_id")
                refs.setdefault(column, rnd.choice([f"{name}@{factory}", f"{name}@default@{factory}"]))
        tenant(c, tid, **refs)
        insert(c, "knowledgebase", id=f"kb{t:03d}", tenant_id=tid, name="kb", permission="me", created_by=tid,
               parser_id="naive", embd_id=refs.get("embd_id", "BAAI/bge-large-zh-v1.5@BAAI"),
               parser_config=json.dumps({"llm_id": refs.get("llm_id", ""), "raptor": {"llm_id": "o1@OpenAI"}}))
        insert(c, "dialog", id=f"d{t:03d}", tenant_id=tid, llm_id=refs.get("llm_id", "gpt-4o@OpenAI"),
               rerank_id=refs.get("rerank_id", ""), llm_setting="{}", prompt_type="simple", prompt_config="{}",
               similarity_threshold=0.2, vector_similarity_weight=0.3, top_n=6, top_k=1024, do_refer="1",
               kb_ids="[]")
        insert(c, "memory", id=f"m{t:03d}", tenant_id=tid, name="mem", embd_id=refs.get("embd_id", ""),
               llm_id=refs.get("llm_id", "gone@Nowhere"), memory_type=1, storage_type="table",
               permissions="me", memory_size=1, forgetting_policy="fifo", temperature=0.5)


def diff(a: dict[str, Any], b: dict[str, Any]) -> str:
    """A readable difference between two snapshots (for assertion messages)."""
    lines = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if x == y:
            continue
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y), key=str):
                if x.get(k) != y.get(k):
                    lines.append(f"{key}[{k}]: {x.get(k)!r} != {y.get(k)!r}")
        elif isinstance(x, list) and isinstance(y, list):
            lines += [f"{key} only left: {v!r}" for v in x if v not in y]
            lines += [f"{key} only right: {v!r}" for v in y if v not in x]
        else:
            lines.append(f"{key}: {x!r} != {y!r}")
    return "\n".join(lines[:40])


def parse_data_args(argv: list[str]):
    """argv of the ``data`` verb, parsed by the parser commands.register() builds."""
    import argparse

    from ragflow_migrate.data import commands

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    commands.register(sub, lambda subparsers, name, help_text: subparsers.add_parser(name, help=help_text))
    return parser.parse_args(["data", *argv])
