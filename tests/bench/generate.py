"""Build a RAGFlow database at an old release, with a realistic shape, at a chosen scale.

    python tests/bench/generate.py --scale M --release v0.25.6           # MYSQL_* from the environment
    python tests/bench/generate.py --scale S --release v0.20.0 --seed 7 --database bench_s

1. The schema comes from the tool itself: ``ragflow-migrate run --target-version <release>
   --create-database`` on an empty database; then the tool's own tables are dropped, so the
   database looks like one RAGFlow's startup left behind (no history: the upgrade adopts it).
2. The rows are written by the server: ``INSERT … SELECT`` from a numbers table joined to small
   "profile" tables computed here (seeded). Only the columns the release has are written; NOT
   NULL columns this module does not care about get a neutral value of their type. Nothing is
   sent row by row, so L (1M tenant_llm rows, 1M documents, 1M tasks) builds in minutes.

Shape per tenant (every scale is the same shape times the number of tenants, so M/S = 10):

=====================  ===========  =================================================================
table                  per tenant   what it holds
=====================  ===========  =================================================================
user, tenant           1            tenant id = owner's user id; default model ids ``name@factory``
user_tenant            1.1          owners, plus every 10th tenant shared with a second user
tenant_llm             10 (mean)    100 seeded profiles of 2–40 rows across ~25 factories (below)
knowledgebase          2            ``embd_id``, ``parser_config`` JSON (30% carry ``llm_id``)
document, task         10, 10       ``parser_config`` JSON (10% carry ``llm_id``), progress text
dialog, conversation   1, 2         ``llm_id``, ``rerank_id``, ``kb_ids``, prompt config; messages
user_canvas (+2 vers.) 0.3          agent DSL (~3 KB) with ``llm_id`` in its components
search, memory         0.1, 0.1     ``search_config`` (``chat_id``, ``llm_id``); memory model ids
llm_factories, llm     (catalogue)  the run's catalogue, as RAGFlow's startup writes it
=====================  ===========  =================================================================

tenant_llm rows mix catalogue models (OpenAI, Tongyi-Qianwen, SILICONFLOW, ZHIPU-AI, …, some
of them retired names no longer in the catalogue), custom models of empty-llm factories
(Ollama, Xinference, OpenAI-API-Compatible, VLLM, …, with ``api_base``), keys as plain strings,
as JSON with and without ``is_tools``, provider JSON (VolcEngine, Bedrock), ``''``, ``'x'`` and
NULL; a second key or base URL in some providers (two instances); statuses ``'1'``/``'0'`` (7%);
types chat, embedding, rerank, image2text, speech2text, tts. At v0.25.x the ``tenant_*_id``
INT columns hold the ``tenant_llm.id`` RAGFlow's startup wrote into them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import pymysql.cursors

HERE = Path(__file__).resolve().parent
DEFAULT_CATALOG = HERE / "llm_factories.bench.json"

#: tenants per scale; every other count is a multiple of it.
SCALES = {"XS": 100, "S": 1_000, "M": 10_000, "L": 100_000}
PROFILES = 100  # tenant n uses profile (19 * n + seed) mod 100: every profile equally often
LLM_PER_TENANT = 10
BASE_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z: fixed, so the data do not depend on the clock
OWN_TABLES = ("ragflow_migrate_history", "ragflow_migrate_journal", "ragflow_migrate_lock_holder")
HELPERS = ("_bench_digits", "_bench_seq", "_bench_profile", "_bench_slot", "_bench_tenant")
CHUNK = 100_000  # rows per INSERT … SELECT statement

# --- the model landscape -------------------------------------------------------------------------

#: Probability that a profile uses the factory.
FACTORY_WEIGHTS = {
    "OpenAI": .55, "Tongyi-Qianwen": .40, "SILICONFLOW": .30, "DeepSeek": .30, "Ollama": .25, "ZHIPU-AI": .20,
    "OpenAI-API-Compatible": .15, "Gemini": .15, "Anthropic": .12, "Xinference": .10, "Moonshot": .10,
    "Azure-OpenAI": .08, "Jina": .08, "VolcEngine": .08, "VLLM": .08, "Mistral": .06, "OpenRouter": .06,
    "Cohere": .05, "LM-Studio": .05, "Voyage AI": .04, "Bedrock": .04, "GPUStack": .04, "LocalAI": .03,
    "HuggingFace": .03, "ModelScope": .03,
}
#: Models an old database still holds that the v0.27 catalogue no longer lists (D17), per factory.
RETIRED = {
    "OpenAI": [("gpt-4o", "chat"), ("gpt-4o-mini", "chat"), ("gpt-4-turbo", "chat"), ("gpt-3.5-turbo", "chat"),
               ("o1", "chat"), ("text-embedding-3-small", "embedding"), ("text-embedding-3-large", "embedding"),
               ("gpt-4o", "image2text"), ("tts-1-hd", "tts")],
    "Tongyi-Qianwen": [("qwen-max", "chat"), ("qwen-plus", "chat"), ("qwen-turbo", "chat"),
                       ("qwen-vl-max", "image2text"), ("text-embedding-v3", "embedding"),
                       ("paraformer-realtime-8k-v1", "speech2text")],
    "ZHIPU-AI": [("glm-4", "chat"), ("glm-4-flash", "chat"), ("glm-4v", "image2text"), ("embedding-3", "embedding")],
    "SILICONFLOW": [("Qwen/Qwen2.5-72B-Instruct", "chat"), ("deepseek-ai/DeepSeek-V3", "chat"),
                    ("BAAI/bge-reranker-v2-m3", "rerank"), ("netease-youdao/bce-embedding-base_v1", "embedding")],
    "DeepSeek": [("deepseek-chat", "chat"), ("deepseek-reasoner", "chat")],
    "Moonshot": [("moonshot-v1-8k", "chat"), ("moonshot-v1-32k", "chat")],
    "Gemini": [("gemini-1.5-pro", "chat"), ("gemini-1.5-flash", "chat"), ("gemini-2.0-flash", "image2text")],
    "Anthropic": [("claude-3-5-sonnet-20240620", "chat"), ("claude-3-opus-20240229", "chat")],
    "Azure-OpenAI": [("gpt-4o-prod", "chat"), ("gpt-35-turbo-dev", "chat"), ("ada-002-embed", "embedding")],
    "Mistral": [("mistral-small-latest", "chat")],
    "Jina": [("jina-embeddings-v3", "embedding"), ("jina-reranker-v2-base-multilingual", "rerank")],
    "Cohere": [("command-r-plus", "chat"), ("rerank-multilingual-v3.0", "rerank")],
    "Voyage AI": [("voyage-3", "embedding")],
}
#: The user's own models of empty-llm factories (legacy ``___Factory`` suffixes and an ``@`` included).
CUSTOM = {
    "Ollama": [("llama3.1:8b", "chat"), ("qwen2.5:14b", "chat"), ("deepseek-r1:32b", "chat"), ("mistral:7b", "chat"),
               ("gemma2:9b", "chat"), ("qwen3:30b-a3b", "chat"), ("nomic-embed-text", "embedding"),
               ("bge-m3", "embedding"), ("mxbai-embed-large", "embedding"), ("llava:13b", "image2text"),
               ("qwen2.5vl:7b", "image2text")],
    "Xinference": [("qwen2.5-instruct", "chat"), ("glm4-chat", "chat"), ("deepseek-r1-distill-qwen", "chat"),
                   ("bge-large-zh-v1.5", "embedding"), ("jina-embeddings-v3", "embedding"),
                   ("bge-reranker-v2-m3", "rerank"), ("whisper-large-v3", "speech2text"), ("ChatTTS", "tts")],
    "OpenAI-API-Compatible": [("qwen-72b-chat___OpenAI-API", "chat"), ("gpt-4o___OpenAI-API", "chat"),
                              ("deepseek-chat___OpenAI-API", "chat"),
                              ("text-embedding-3-large___OpenAI-API", "embedding"),
                              ("bge-reranker-large___OpenAI-API", "rerank")],
    "LocalAI": [("llama-3.2-3b-instruct___LocalAI", "chat"), ("bert-embeddings___LocalAI", "embedding")],
    "VLLM": [("Qwen/Qwen2.5-72B-Instruct___VLLM", "chat"), ("meta-llama/Llama-3.3-70B-Instruct___VLLM", "chat"),
             ("BAAI/bge-m3___VLLM", "embedding"), ("BAAI/bge-reranker-v2-m3___VLLM", "rerank")],
    "LM-Studio": [("qwen2.5-7b-instruct", "chat"), ("text-embedding-nomic-embed-text-v1.5@q8_0", "embedding")],
    "VolcEngine": [("doubao-pro-32k", "chat"), ("doubao-1.5-pro-256k", "chat"), ("deepseek-v3-250324", "chat"),
                   ("doubao-embedding", "embedding")],
    "Bedrock": [("anthropic.claude-3-5-sonnet-20240620-v1:0", "chat"), ("amazon.titan-embed-text-v2:0", "embedding")],
    "OpenRouter": [("openai/gpt-4o", "chat"), ("anthropic/claude-3.5-sonnet", "chat"),
                   ("google/gemini-2.0-flash-001", "chat")],
    "HuggingFace": [("BAAI/bge-small-en-v1.5___HuggingFace", "embedding"),
                    ("meta-llama/Llama-3.1-8B-Instruct___HuggingFace", "chat")],
    "GPUStack": [("qwen2.5-7b-instruct", "chat"), ("bge-m3", "embedding"), ("bge-reranker-v2-m3", "rerank"),
                 ("faster-whisper-medium", "speech2text"), ("cosyvoice-300m", "tts")],
    "ModelScope": [("Qwen/Qwen2.5-7B-Instruct___ModelScope", "chat")],
}
LOCAL_BASES = {
    "Ollama": ["http://ollama:11434", "http://192.168.1.20:11434"],
    "Xinference": ["http://xinference:9997/v1", "http://10.0.0.8:9997/v1"],
    "OpenAI-API-Compatible": ["https://llm.internal.example.com/v1", "https://api.example.org/v1"],
    "LocalAI": ["http://localai:8080/v1", "http://localai-2:8080/v1"],
    "VLLM": ["http://vllm:8000/v1", "http://vllm-embed:8001/v1"],
    "LM-Studio": ["http://host.docker.internal:1234/v1", "http://127.0.0.1:1234/v1"],
    "GPUStack": ["http://gpustack/v1-openai", "http://gpustack-2/v1-openai"],
    "HuggingFace": ["https://api-inference.huggingface.co", "http://tei:8080"],
    "ModelScope": ["https://api-inference.modelscope.cn/v1", "https://api-inference.modelscope.cn/v1"],
    "OpenRouter": ["https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1"],
}
#: key kinds: the api_key column's shapes (the SQL in _KEY_SQL renders them).
KEY_KINDS_CLOUD = [("plain", .60), ("json_tools", .22), ("json_notools", .08), ("json_key", .10)]
KEY_KINDS_LOCAL = [("local", .45), ("empty", .30), ("null", .15), ("plain", .10)]
LOCAL_FACTORIES = {"Ollama", "Xinference", "LocalAI", "VLLM", "LM-Studio", "GPUStack"}
SIGNUP_DEFAULTS = {"chat": "qwen-plus@Tongyi-Qianwen", "embedding": "BAAI/bge-large-zh-v1.5@BAAI",
                   "image2text": "qwen-vl-max@Tongyi-Qianwen", "speech2text": "paraformer-realtime-8k-v1@Tongyi-Qianwen",
                   "rerank": "", "tts": None}


@dataclass
class Slot:
    factory: str
    llm_name: str
    model_type: str
    key_kind: str
    key_variant: int
    status: str
    api_base: str | None
    max_tokens: int


@dataclass
class Profile:
    number: int
    slots: list[Slot] = field(default_factory=list)
    refs: dict[str, str | None] = field(default_factory=dict)  # chat, embd, asr, img2txt, rerank, tts


def load_catalog(path: Path) -> tuple[dict[str, list[tuple[str, str, int]]], list[dict[str, Any]]]:
    """Catalogue factories → [(llm_name, first type, max_tokens)], and the raw factory list."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    factories: dict[str, list[tuple[str, str, int]]] = {}
    for f in data["factory_llm_infos"]:
        models = []
        for m in f.get("llm") or []:
            t = m.get("model_type", "chat")
            t = t[0] if isinstance(t, list) else t
            models.append((m["llm_name"], t, int(m.get("max_tokens") or 8192)))
        factories[f["name"]] = models
    return factories, data["factory_llm_infos"]


def _weighted(rng: random.Random, choices: list[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _sizes(rng: random.Random) -> list[int]:
    """PROFILES sizes in 2..40, skewed (most tenants configure few models), summing to exactly
    PROFILES * LLM_PER_TENANT."""
    sizes = [max(2, min(40, round(rng.lognormvariate(2.0, 0.65)))) for _ in range(PROFILES)]
    target = PROFILES * LLM_PER_TENANT
    while sum(sizes) != target:
        i = rng.randrange(PROFILES)
        if sum(sizes) > target and sizes[i] > 2:
            sizes[i] -= 1
        elif sum(sizes) < target and sizes[i] < 40:
            sizes[i] += 1
    return sizes


def build_profiles(seed: int, catalog: dict[str, list[tuple[str, str, int]]]) -> list[Profile]:
    rng = random.Random(seed)
    pools: dict[str, list[tuple[str, str, int]]] = {}
    for factory in FACTORY_WEIGHTS:
        if factory in CUSTOM:
            pools[factory] = [(n, t, 8192) for n, t in CUSTOM[factory]]
        else:
            pools[factory] = list(catalog.get(factory, [])) + [(n, t, 8192) for n, t in RETIRED.get(factory, [])]
    profiles = []
    for number, size in enumerate(_sizes(rng)):
        profile = Profile(number)
        n_factories = max(1, min(8, round(size / 3.5 + rng.uniform(-1, 1))))
        factories: list[str] = []
        weights = dict(FACTORY_WEIGHTS)
        while len(factories) < n_factories and weights:
            f = rng.choices(list(weights), weights=list(weights.values()))[0]
            factories.append(f)
            del weights[f]
        capacity = sum(len(pools[f]) for f in factories)
        while capacity < size:  # a big profile: add factories until the models suffice
            f = rng.choices(list(weights), weights=list(weights.values()))[0]
            factories.append(f)
            del weights[f]
            capacity += len(pools[f])
        # share the slots: the first factory gets the most
        remaining = {f: rng.sample(pools[f], len(pools[f])) for f in factories}
        picks: list[tuple[str, tuple[str, str, int]]] = []
        order = factories[:]
        while len(picks) < size:
            for f in order:
                if len(picks) >= size:
                    break
                if remaining[f] and (f == order[0] or rng.random() < 0.7):
                    picks.append((f, remaining[f].pop()))
        for f in factories:
            mine = [p for p in picks if p[0] == f]
            if not mine:
                continue
            if f == "VolcEngine":
                kind = "volc"
            elif f == "Bedrock":
                kind = "bedrock"
            elif f in LOCAL_FACTORIES:
                kind = _weighted(rng, KEY_KINDS_LOCAL)
            else:
                kind = _weighted(rng, KEY_KINDS_CLOUD)
            bases = LOCAL_BASES.get(f)
            base = bases[0] if bases else ("https://api.openai.com/v1" if f == "OpenAI" and rng.random() < .2
                                           else None)
            second_key = len(mine) >= 2 and rng.random() < 0.12
            second_base = bases is not None and len(mine) >= 2 and rng.random() < 0.10
            tools_variant = kind == "plain" and len(mine) >= 2 and rng.random() < 0.15
            for i, (_f, (name, mtype, max_tokens)) in enumerate(mine):
                slot_kind = "json_tools" if tools_variant and i == 1 else kind
                profile.slots.append(Slot(
                    factory=f, llm_name=name, model_type=mtype, key_kind=slot_kind,
                    key_variant=1 if second_key and i == len(mine) - 1 else 0,
                    status="0" if rng.random() < 0.07 else "1",
                    api_base=bases[1] if second_base and i == len(mine) - 1 else base,
                    max_tokens=max_tokens,
                ))
        # dedupe (factory, llm_name): tenant_llm's unique key
        seen: set[tuple[str, str]] = set()
        profile.slots = [s for s in profile.slots
                         if (s.factory, s.llm_name) not in seen and not seen.add((s.factory, s.llm_name))]
        profile.refs = _refs(rng, profile.slots)
        profiles.append(profile)
    _fix_total(rng, profiles, pools)
    return profiles


def _fix_total(rng: random.Random, profiles: list[Profile], pools: dict[str, list[tuple[str, str, int]]]) -> None:
    """Dedupe may have dropped a few slots: top up so that the mean is exactly LLM_PER_TENANT."""
    target = PROFILES * LLM_PER_TENANT
    while sum(len(p.slots) for p in profiles) < target:
        p = profiles[rng.randrange(PROFILES)]
        used = {(s.factory, s.llm_name) for s in p.slots}
        f = p.slots[0].factory
        free = [m for m in pools[f] if (f, m[0]) not in used]
        if not free:
            continue
        name, mtype, max_tokens = rng.choice(free)
        like = p.slots[0]
        p.slots.append(Slot(f, name, mtype, like.key_kind, 0, "1", like.api_base, max_tokens))


def _refs(rng: random.Random, slots: list[Slot]) -> dict[str, str | None]:
    def pick(mtype: str) -> str | None:
        enabled = [s for s in slots if s.model_type == mtype and s.status == "1"]
        if enabled and rng.random() < 0.92:
            s = enabled[0]
            return f"{s.llm_name}@{s.factory}"
        if mtype == "rerank" and rng.random() < 0.3:
            return "BAAI/bge-reranker-v2-m3"  # no '@': unresolvable, kept as is
        return SIGNUP_DEFAULTS[mtype]

    return {"chat": pick("chat"), "embd": pick("embedding"), "asr": pick("speech2text"),
            "img2txt": pick("image2text"), "rerank": pick("rerank"), "tts": pick("tts")}


# --- SQL ---------------------------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    data_type: str
    nullable: bool
    extra: str
    default: Any


class Db:
    def __init__(self, params: dict[str, Any], database: str, log: Callable[[str], None]) -> None:
        self.conn = pymysql.connect(**params, database=database, charset="utf8mb4", autocommit=True,
                                    read_timeout=3600, write_timeout=3600)
        self.database = database
        self.log = log
        self.columns_cache: dict[str, list[Column]] = {}
        self.tables = {r[0] for r in self.query("SHOW TABLES")}

    def query(self, sql: str, args: Any = None) -> list[tuple]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def execute(self, sql: str, args: Any = None) -> int:
        with self.conn.cursor() as cur:
            return int(cur.execute(sql, args))

    def executemany(self, sql: str, rows: list[tuple]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(sql, rows)

    def columns(self, table: str) -> list[Column]:
        if table not in self.columns_cache:
            rows = self.query(
                "SELECT column_name, data_type, is_nullable, extra, column_default FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", (self.database, table))
            self.columns_cache[table] = [Column(str(r[0]), str(r[1]).lower(), r[2] == "YES", str(r[3] or ""), r[4])
                                         for r in rows]
        return self.columns_cache[table]

    def close(self) -> None:
        self.conn.close()


def _neutral(col: Column) -> str:
    if col.data_type in ("int", "bigint", "tinyint", "smallint", "mediumint", "float", "double", "decimal"):
        return "0"
    if col.data_type in ("datetime", "timestamp", "date"):
        return f"FROM_UNIXTIME({BASE_EPOCH})"
    return "''"


def times(seconds_expr: str) -> dict[str, str]:
    """RAGFlow's four timestamp columns, ``seconds_expr`` seconds after BASE_EPOCH."""
    s = f"({BASE_EPOCH} + ({seconds_expr}))"
    return {"create_time": f"{s} * 1000", "create_date": f"FROM_UNIXTIME({s})",
            "update_time": f"{s} * 1000 + 3600000", "update_date": f"FROM_UNIXTIME({s} + 3600)"}


def sql_str(value: str | None) -> str:
    if value is None:
        return "NULL"
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class Generator:
    def __init__(self, db: Db, *, scale: str, seed: int, catalog: Path) -> None:
        self.db = db
        self.scale = scale
        self.tenants = SCALES[scale]
        self.seed = seed
        self.catalog_path = catalog
        self.catalog, self.catalog_raw = load_catalog(catalog)
        self.counts: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self.deferred: dict[str, dict[str, list[str]]] = {}

    def hid(self, tag: str, expr: str) -> str:
        """A 32-hex id, deterministic in (seed, tag, n): RAGFlow's uuid1().hex format."""
        return f"LEFT(SHA2(CONCAT('{self.seed}:{tag}:', {expr}), 256), 32)"

    def fill(self, table: str, exprs: dict[str, str], source: str, ranges: Iterable[tuple[int, int]] | None = None,
             *, ignore: bool = False) -> int:
        """INSERT … SELECT into ``table``: the columns it has, from ``exprs`` or a neutral value."""
        if table not in self.db.tables:
            return 0
        self.defer_indexes(table)
        names, values = [], []
        for col in self.db.columns(table):
            if col.name in exprs:
                if exprs[col.name] is None:
                    continue
                names.append(col.name)
                values.append(exprs[col.name])
            elif "auto_increment" in col.extra or col.nullable or col.default is not None:
                continue
            else:
                names.append(col.name)
                values.append(_neutral(col))
        head = (f"INSERT {'IGNORE ' if ignore else ''}INTO `{table}` (" + ", ".join(f"`{n}`" for n in names)
                + ") SELECT " + ", ".join(values) + " " + source)
        started = time.monotonic()
        total = 0
        for lo, hi in ranges or [(None, None)]:
            total += self.db.execute(head, (lo, hi) if lo is not None else None)
        self.counts[table] = self.counts.get(table, 0) + total
        self.timings[table] = self.timings.get(table, 0.0) + time.monotonic() - started
        return total

    def defer_indexes(self, table: str) -> None:
        """Bulk-load trick: drop the (empty) table's non-unique secondary indexes before the first
        fill; :meth:`restore_indexes` re-adds them, with the same names and columns, in one sorted
        build per table (minutes faster at L than maintaining ~20 indexes row by row)."""
        if table in self.deferred:
            return
        indexes: dict[str, list[str]] = {}
        with self.db.conn.cursor(pymysql.cursors.DictCursor) as cur:
            cur.execute(f"SHOW INDEX FROM `{table}`")  # in definition order
            for row in cur.fetchall():
                if int(row["Non_unique"]) == 1:
                    indexes.setdefault(str(row["Key_name"]), []).append(
                        f"`{row['Column_name']}`" + (f"({row['Sub_part']})" if row["Sub_part"] else ""))
        self.deferred[table] = indexes
        if indexes:
            self.db.execute(f"ALTER TABLE `{table}` " + ", ".join(f"DROP INDEX `{n}`" for n in indexes))

    def restore_indexes(self) -> None:
        for table, indexes in self.deferred.items():
            if not indexes:
                continue
            started = time.monotonic()
            self.db.execute(f"ALTER TABLE `{table}` " + ", ".join(
                f"ADD INDEX `{name}` (" + ", ".join(cols) + ")" for name, cols in indexes.items()))
            self.timings[f"{table} indexes"] = time.monotonic() - started
        self.deferred.clear()

    def chunks(self, total: int, size: int = CHUNK) -> list[tuple[int, int]]:
        return [(lo, min(total, lo + size)) for lo in range(0, total, size)]

    # -- helpers -------------------------------------------------------------------------------------

    def helpers(self, profiles: list[Profile]) -> None:
        db = self.db
        for t in HELPERS:
            db.execute(f"DROP TABLE IF EXISTS `{t}`")
        db.execute("CREATE TABLE `_bench_digits` (d INT PRIMARY KEY) ENGINE=InnoDB")
        db.execute("INSERT INTO `_bench_digits` VALUES " + ", ".join(f"({i})" for i in range(10)))
        top = self.tenants * 10  # documents and tasks: the biggest tables
        k = len(str(top - 1))
        parts = " + ".join(f"{10 ** i} * d{i}.d" for i in range(k))
        joins = " CROSS JOIN ".join(f"`_bench_digits` d{i}" for i in range(k))
        db.execute("CREATE TABLE `_bench_seq` (n INT PRIMARY KEY) ENGINE=InnoDB")
        db.execute(f"INSERT INTO `_bench_seq` SELECT {parts} FROM {joins} WHERE {parts} < %s", (top,))
        db.execute("""CREATE TABLE `_bench_profile` (profile INT PRIMARY KEY, chat VARCHAR(128), embd VARCHAR(128),
                      asr VARCHAR(128), img2txt VARCHAR(128), rerank VARCHAR(128), tts VARCHAR(128))
                      ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""")
        db.executemany("INSERT INTO `_bench_profile` VALUES (%s, %s, %s, %s, %s, %s, %s)",
                       [(p.number, p.refs["chat"], p.refs["embd"], p.refs["asr"], p.refs["img2txt"],
                         p.refs["rerank"], p.refs["tts"]) for p in profiles])
        db.execute("""CREATE TABLE `_bench_slot` (profile INT NOT NULL, slot INT NOT NULL, factory VARCHAR(128),
                      llm_name VARCHAR(128), model_type VARCHAR(32), key_kind VARCHAR(16), key_variant INT,
                      status VARCHAR(1), api_base VARCHAR(255), max_tokens INT, PRIMARY KEY (profile, slot))
                      ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""")
        db.executemany("INSERT INTO `_bench_slot` VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                       [(p.number, i, s.factory, s.llm_name, s.model_type, s.key_kind, s.key_variant, s.status,
                         s.api_base, s.max_tokens) for p in profiles for i, s in enumerate(p.slots)])
        db.execute("""CREATE TABLE `_bench_tenant` (n INT PRIMARY KEY, id VARCHAR(32) NOT NULL, profile INT NOT NULL)
                      ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""")
        db.execute(f"INSERT INTO `_bench_tenant` SELECT n, {self.hid('u', 'n')}, (19 * n + %s) MOD {PROFILES} "
                   "FROM `_bench_seq` WHERE n < %s", (self.seed, self.tenants))

    # -- tables ----------------------------------------------------------------------------------------

    def users(self) -> None:
        T = self.tenants
        src = "FROM `_bench_tenant` t JOIN `_bench_profile` p ON p.profile = t.profile WHERE t.n >= %s AND t.n < %s"
        self.fill("user", {
            "id": "t.id", **times("t.n * 60"), "access_token": self.hid("tok", "t.n"),
            "nickname": "CONCAT('user', t.n)", "email": "CONCAT('user', t.n, '@example.com')",
            "password": "CONCAT('scrypt:32768:8:1$', LEFT(SHA2(t.id, 256), 16), '$', SHA2(CONCAT(t.id, 'pw'), 512))",
            "avatar": "NULL", "language": "'English'", "color_schema": "'Bright'", "timezone": "'UTC+8\tAsia/Shanghai'",
            "last_login_time": f"FROM_UNIXTIME({BASE_EPOCH} + t.n * 60 + 86400)", "is_authenticated": "'1'",
            "is_active": "'1'", "is_anonymous": "'0'", "login_channel": "'password'", "status": "'1'",
            "is_superuser": "t.n = 0",
        }, src, self.chunks(T))
        self.fill("tenant", {
            "id": "t.id", **times("t.n * 60"), "name": "CONCAT('user', t.n, '''s Kingdom')", "public_key": "NULL",
            "llm_id": "COALESCE(p.chat, '')", "embd_id": "COALESCE(p.embd, '')", "asr_id": "COALESCE(p.asr, '')",
            "img2txt_id": "COALESCE(p.img2txt, '')", "rerank_id": "COALESCE(p.rerank, '')", "tts_id": "p.tts",
            "parser_ids": "'naive:General,qa:Q&A,resume:Resume,manual:Manual,table:Table,paper:Paper,book:Book,"
                          "laws:Laws,presentation:Presentation,picture:Picture,one:One,audio:Audio,email:Email,"
                          "tag:Tag'",
            "credit": "512", "status": "'1'",
        }, src, self.chunks(T))
        ut = {"user_id": "t.id", "tenant_id": "t.id", "role": "'owner'", "invited_by": "t.id", "status": "'1'"}
        self.fill("user_tenant", {"id": self.hid("ut", "t.n"), **times("t.n * 60"), **ut}, src, self.chunks(T))
        # every 10th tenant is shared with the next user
        self.fill("user_tenant", {
            "id": self.hid("ut2", "t.n"), **times("t.n * 60 + 600"), "user_id": "u.id", "tenant_id": "t.id",
            "role": "'normal'", "invited_by": "t.id", "status": "'1'",
        }, "FROM `_bench_tenant` t JOIN `_bench_tenant` u ON u.n = (t.n + 1) MOD " + str(T)
           + " WHERE t.n MOD 10 = 0 AND t.n >= %s AND t.n < %s", self.chunks(T))

    def tenant_llm(self) -> None:
        core = f"LEFT(SHA2(CONCAT('{self.seed}:key:', t.n, ':', s.factory, ':', s.key_variant), 256), 40)"
        key = f"""CASE s.key_kind
            WHEN 'plain' THEN CONCAT('sk-', {core})
            WHEN 'json_tools' THEN CONCAT('{{"api_key": "sk-', {core}, '", "is_tools": true}}')
            WHEN 'json_notools' THEN CONCAT('{{"api_key": "sk-', {core}, '", "is_tools": false}}')
            WHEN 'json_key' THEN CONCAT('{{"api_key": "sk-', {core}, '"}}')
            WHEN 'volc' THEN CONCAT('{{"ark_api_key": "', {core}, '", "endpoint_id": "ep-', LEFT({core}, 14),
                                    '", "is_tools": true}}')
            WHEN 'bedrock' THEN CONCAT('{{"auth_mode": "access_key_secret", "bedrock_ak": "AKIA', UPPER(LEFT({core}, 16)),
                                       '", "bedrock_sk": "', {core}, '", "bedrock_region": "us-east-1"}}')
            WHEN 'local' THEN 'x'
            WHEN 'empty' THEN ''
            ELSE NULL END"""
        per = max(1, CHUNK // LLM_PER_TENANT)
        self.fill("tenant_llm", {
            **times("t.n * 60 + s.slot"), "tenant_id": "t.id", "llm_factory": "s.factory", "model_type": "s.model_type",
            "llm_name": "s.llm_name", "api_key": key, "api_base": "s.api_base", "max_tokens": "s.max_tokens",
            "used_tokens": f"CRC32(CONCAT('{self.seed}', t.n, s.slot)) MOD 2000000", "status": "s.status",
        }, "FROM `_bench_tenant` t JOIN `_bench_slot` s ON s.profile = t.profile "
           "WHERE t.n >= %s AND t.n < %s ORDER BY t.n, s.slot", self.chunks(self.tenants, per))

    def knowledge(self) -> None:
        T = self.tenants
        tenant_of = "JOIN `_bench_tenant` t ON t.n = q.n DIV {k} JOIN `_bench_profile` p ON p.profile = t.profile"
        rng = "q.n >= %s AND q.n < %s"
        chat_json = "JSON_QUOTE(COALESCE(p.chat, ''))"
        kb_config = f"""CASE WHEN q.n MOD 10 < 3 THEN CONCAT(
            '{{"layout_recognize": "DeepDOC", "chunk_token_num": 512, "delimiter": "\\\\n!?;。；！？", ',
            '"auto_keywords": 0, "auto_questions": 0, "html4excel": false, "topn_tags": 3, ',
            '"raptor": {{"use_raptor": true, "prompt": "Please summarize the following paragraphs.", ',
            '"max_token": 256, "threshold": 0.1, "max_cluster": 64, "random_seed": 0, "llm_id": ', {chat_json}, '}}, ',
            '"graphrag": {{"use_graphrag": true, "entity_types": ["organization", "person", "geo", "event", ',
            '"category"], "method": "light", "llm_id": ', {chat_json}, '}}}}')
          ELSE '{{"layout_recognize": "DeepDOC", "chunk_token_num": 512, "delimiter": "\\\\n!?;。；！？", "auto_keywords": 0, "auto_questions": 0, "html4excel": false, "topn_tags": 3, "raptor": {{"use_raptor": false}}, "graphrag": {{"use_graphrag": false}}}}'
          END"""
        self.fill("knowledgebase", {
            "id": self.hid("kb", "q.n"), **times("q.n * 30"), "avatar": "NULL", "tenant_id": "t.id",
            "name": "CONCAT('Knowledge base ', q.n)", "language": "'English'",
            "description": "'Product manuals, FAQs and support tickets.'",
            "embd_id": "COALESCE(p.embd, '')", "permission": "IF(q.n MOD 5 = 0, 'team', 'me')", "created_by": "t.id",
            "doc_num": "5", "token_num": "(q.n MOD 97) * 1000", "chunk_num": "(q.n MOD 97) * 3",
            "similarity_threshold": "0.2", "vector_similarity_weight": "0.3", "parser_id": "'naive'",
            "parser_config": kb_config, "pagerank": "0", "status": "'1'",
        }, "FROM `_bench_seq` q " + tenant_of.format(k=2) + " WHERE " + rng, self.chunks(2 * T))
        doc_config = f"""CASE WHEN q.n MOD 10 = 0 THEN CONCAT(
            '{{"layout_recognize": "DeepDOC", "chunk_token_num": 512, "delimiter": "\\\\n!?;。；！？", ',
            '"pages": [[1, 1000000]], "raptor": {{"use_raptor": true, "max_token": 256, "llm_id": ', {chat_json}, '}}}}')
          ELSE '{{"layout_recognize": "DeepDOC", "chunk_token_num": 512, "delimiter": "\\\\n!?;。；！？", "pages": [[1, 1000000]], "raptor": {{"use_raptor": false}}}}'
          END"""
        suffix = "ELT(1 + q.n MOD 5, 'pdf', 'docx', 'md', 'xlsx', 'txt')"
        self.fill("document", {
            "id": self.hid("doc", "q.n"), **times("q.n * 6"), "thumbnail": "NULL",
            "kb_id": self.hid("kb", "(q.n DIV 10) * 2 + q.n MOD 2"), "parser_id": "'naive'", "pipeline_id": "NULL",
            "parser_config": doc_config, "source_type": "'local'",
            "type": "IF(q.n MOD 5 IN (0, 1), 'pdf', 'doc')", "created_by": "t.id",
            "name": f"CONCAT('document-', q.n, '.', {suffix})", "location": f"CONCAT('document-', q.n, '.', {suffix})",
            "size": f"CRC32(CONCAT('{self.seed}', q.n)) MOD 20000000", "token_num": "(q.n MOD 89) * 350",
            "chunk_num": "(q.n MOD 89) + 1", "progress": "1",
            "progress_msg": "CONCAT('12:00:01 Task has been received.\\n12:00:03 Page(1~', (q.n MOD 89) + 1, "
                            "'): Start to parse.\\n12:00:19 Page(1~', (q.n MOD 89) + 1, '): Finish parsing.\\n"
                            "12:00:25 Generate ', (q.n MOD 89) + 1, ' chunks\\n12:00:31 Embedding chunks (6.02s)\\n"
                            "12:00:32 Indexing done (0.90s). Task done (30.6s)')",
            "process_begin_at": f"FROM_UNIXTIME({BASE_EPOCH} + q.n * 6 + 1)", "process_duration": "30.6",
            "meta_fields": "'{}'", "suffix": suffix, "content_hash": self.hid("hash", "q.n"), "run": "'3'",
            "status": "'1'",
        }, "FROM `_bench_seq` q " + tenant_of.format(k=10) + " WHERE " + rng, self.chunks(10 * T))
        self.fill("task", {
            "id": self.hid("task", "q.n"), **times("q.n * 6 + 1"), "doc_id": self.hid("doc", "q.n"),
            "from_page": "0", "to_page": "100000000", "task_type": "''", "priority": "0",
            "begin_at": f"FROM_UNIXTIME({BASE_EPOCH} + q.n * 6 + 1)", "process_duration": "30.6", "progress": "1",
            "progress_msg": "CONCAT('12:00:03 Page(1~', (q.n MOD 89) + 1, '): Start to parse.\\n"
                            "12:00:19 Page(1~', (q.n MOD 89) + 1, '): Finish parsing.\\n12:00:32 Task done (30.6s)')",
            "retry_count": "0", "digest": f"LEFT(SHA2(CONCAT('{self.seed}:dg:', q.n), 256), 16)",
            "chunk_ids": "CONCAT_WS(' ', " + ", ".join(
                f"LEFT(SHA2(CONCAT('{self.seed}:ch{i}:', q.n), 256), 16)" for i in range(8)) + ")",
        }, "FROM `_bench_seq` q WHERE " + rng, self.chunks(10 * T))

    def chats(self) -> None:
        T = self.tenants
        rng = "q.n >= %s AND q.n < %s"
        kb_ids = f"CONCAT('[\"', {self.hid('kb', 't.n * 2')}, '\", \"', {self.hid('kb', 't.n * 2 + 1')}, '\"]')"
        prompt = ("'{\"system\": \"You are an intelligent assistant. Please summarize the content of the knowledge "
                  "base to answer the question. Please list the data in the knowledge base and answer in detail. "
                  "When all knowledge base content is irrelevant to the question, your answer must include the "
                  "sentence \\\\\"The answer you are looking for is not found in the knowledge base!\\\\\" Answers "
                  "need to consider chat history.\\\\n      Here is the knowledge base:\\\\n      {knowledge}\\\\n"
                  "      The above is the knowledge base.\", \"prologue\": \"Hi! I''m your assistant, what can I do "
                  "for you?\", \"parameters\": [{\"key\": \"knowledge\", \"optional\": false}], \"empty_response\": "
                  "\"Sorry! No relevant content was found in the knowledge base!\", \"quote\": true, \"tts\": false, "
                  "\"refine_multiturn\": true, \"use_kg\": false, \"reasoning\": false}'")
        self.fill("dialog", {
            "id": self.hid("dlg", "t.n"), **times("t.n * 60 + 120"), "tenant_id": "t.id",
            "name": "CONCAT('Assistant ', t.n)", "description": "'A helpful assistant'", "icon": "''",
            "language": "'English'", "llm_id": "COALESCE(p.chat, '')",
            "llm_setting": "'{\"temperature\": 0.1, \"top_p\": 0.3, \"frequency_penalty\": 0.7, "
                           "\"presence_penalty\": 0.4, \"max_tokens\": 512}'",
            "prompt_type": "'simple'", "prompt_config": prompt, "meta_data_filter": "NULL",
            "similarity_threshold": "0.2", "vector_similarity_weight": "0.3", "top_n": "6", "top_k": "1024",
            "do_refer": "'1'", "rerank_id": "COALESCE(p.rerank, '')", "kb_ids": kb_ids, "status": "'1'",
        }, "FROM `_bench_tenant` t JOIN `_bench_profile` p ON p.profile = t.profile WHERE t.n >= %s AND t.n < %s",
            self.chunks(T))
        message = ("CONCAT('[{\"role\": \"assistant\", \"content\": \"Hi! I''m your assistant, what can I do for you?\"}, "
                   "{\"role\": \"user\", \"content\": \"How do I reset the device to factory settings? (', q.n, ')\", "
                   "\"id\": \"', " + self.hid("msg", "q.n") + ", '\"}, {\"role\": \"assistant\", \"content\": \"Hold "
                   "the power button for ten seconds until the LED blinks twice, then release it and wait for the "
                   "device to restart. All settings return to their defaults [ID:0].\", \"id\": \"', "
                   + self.hid("msg", "q.n") + ", '\", \"created_at\": ', " + str(BASE_EPOCH) + " + q.n, '}]')")
        self.fill("conversation", {
            "id": self.hid("conv", "q.n"), **times("q.n * 30 + 300"), "dialog_id": self.hid("dlg", "q.n DIV 2"),
            "name": "CONCAT('How do I reset the device (', q.n, ')')", "message": message,
            "reference": "'[{\"chunks\": [], \"doc_aggs\": [], \"total\": 0}]'",
            "user_id": "t.id",
        }, "FROM `_bench_seq` q JOIN `_bench_tenant` t ON t.n = q.n DIV 2 WHERE " + rng, self.chunks(2 * T))

    def agents(self) -> None:
        T = self.tenants
        n_canvas = T * 3 // 10
        tenant_of = "JOIN `_bench_tenant` t ON t.n = (q.n * 10) DIV 3 JOIN `_bench_profile` p ON p.profile = t.profile"
        chat = "JSON_QUOTE(COALESCE(p.chat, ''))"
        rerank = "JSON_QUOTE(COALESCE(p.rerank, ''))"
        kb = f"JSON_QUOTE({self.hid('kb', 't.n * 2')})"
        dsl = (
            "CONCAT('{\"components\": {\"begin\": {\"obj\": {\"component_name\": \"Begin\", \"params\": {\"prologue\": "
            "\"Hi! I''m your smart assistant. What can I do for you?\"}}, \"downstream\": [\"Retrieval:0\"], "
            "\"upstream\": []}, \"Retrieval:0\": {\"obj\": {\"component_name\": \"Retrieval\", \"params\": "
            "{\"similarity_threshold\": 0.2, \"keywords_similarity_weight\": 0.3, \"top_n\": 8, \"top_k\": 1024, "
            "\"rerank_id\": ', " + rerank + ", ', \"kb_ids\": [', " + kb + ", ']}}, \"downstream\": [\"Agent:0\"], "
            "\"upstream\": [\"begin\"]}, \"Agent:0\": {\"obj\": {\"component_name\": \"Agent\", \"params\": "
            "{\"llm_id\": ', " + chat + ", ', \"temperature\": 0.1, \"top_p\": 0.3, \"max_tokens\": 4096, "
            "\"sys_prompt\": \"You are a customer support agent. Answer with the retrieved content only; cite "
            "sources; say you do not know when the content does not answer the question.\", \"prompts\": "
            "[{\"role\": \"user\", \"content\": \"{sys.query}\"}], \"tools\": [], \"message_history_window_size\": "
            "12, \"max_retries\": 3, \"delay_after_error\": 1}}, \"downstream\": [\"Message:0\"], \"upstream\": "
            "[\"Retrieval:0\"]}, \"Categorize:0\": {\"obj\": {\"component_name\": \"Categorize\", \"params\": "
            "{\"llm_id\": ', " + chat + ", ', \"category_description\": {\"product\": {\"description\": \"Product "
            "questions\", \"to\": \"Retrieval:0\"}, \"other\": {\"description\": \"Anything else\", \"to\": "
            "\"Message:0\"}}}}, \"downstream\": [], \"upstream\": []}, \"Message:0\": {\"obj\": {\"component_name\": "
            "\"Message\", \"params\": {\"content\": [\"{Agent:0@content}\"]}}, \"downstream\": [], \"upstream\": "
            "[\"Agent:0\"]}}, \"globals\": {\"sys.query\": \"\", \"sys.user_id\": \"\", \"sys.conversation_turns\": 0, "
            "\"sys.files\": []}, \"graph\": {\"nodes\": [{\"id\": \"begin\", \"type\": \"beginNode\", \"position\": "
            "{\"x\": 50, \"y\": 200}}, {\"id\": \"Retrieval:0\", \"type\": \"retrievalNode\", \"position\": {\"x\": "
            "350, \"y\": 200}}, {\"id\": \"Agent:0\", \"type\": \"agentNode\", \"position\": {\"x\": 650, \"y\": 200}}, "
            "{\"id\": \"Message:0\", \"type\": \"messageNode\", \"position\": {\"x\": 950, \"y\": 200}}], \"edges\": "
            "[{\"source\": \"begin\", \"target\": \"Retrieval:0\"}, {\"source\": \"Retrieval:0\", \"target\": "
            "\"Agent:0\"}, {\"source\": \"Agent:0\", \"target\": \"Message:0\"}]}, \"history\": [], \"path\": [], "
            "\"retrieval\": [], \"memory\": []}')")
        self.fill("user_canvas", {
            "id": self.hid("cv", "q.n"), **times("q.n * 200"), "avatar": "NULL", "user_id": "t.id",
            "title": "CONCAT('Support agent ', q.n)", "permission": "'me'", "release": "q.n MOD 2",
            "description": "'Answers product questions from the knowledge base'", "canvas_type": "'chatbot'",
            "canvas_category": "'agent_canvas'", "tags": "''", "dsl": dsl,
        }, "FROM `_bench_seq` q " + tenant_of + " WHERE " + "q.n >= %s AND q.n < %s", self.chunks(n_canvas))
        self.fill("user_canvas_version", {
            "id": self.hid("cvv", "q.n"), **times("q.n * 100"), "user_canvas_id": self.hid("cv", "q.n DIV 2"),
            "title": "CONCAT('Support agent ', q.n DIV 2, ' v', 1 + q.n MOD 2)", "description": "NULL",
            "release": "q.n MOD 2", "dsl": dsl,
        }, "FROM `_bench_seq` q JOIN `_bench_tenant` t ON t.n = ((q.n DIV 2) * 10) DIV 3 "
           "JOIN `_bench_profile` p ON p.profile = t.profile WHERE q.n >= %s AND q.n < %s", self.chunks(2 * n_canvas))
        n_small = T // 10
        tenant10 = "JOIN `_bench_tenant` t ON t.n = q.n * 10 JOIN `_bench_profile` p ON p.profile = t.profile"
        search_config = ("CONCAT('{\"kb_ids\": [', " + kb + ", '], \"doc_ids\": [], \"similarity_threshold\": 0.2, "
                         "\"vector_similarity_weight\": 0.3, \"use_kg\": false, \"rerank_id\": ', " + rerank + ", ', "
                         "\"top_k\": 1024, \"summary\": true, \"chat_id\": ', " + chat + ", ', \"llm_setting\": "
                         "{\"temperature\": 0.1, \"top_p\": 0.3}, \"chat_settingcross_languages\": [], "
                         "\"highlight\": true, \"keyword\": false, \"web_search\": false, \"related_search\": true, "
                         "\"query_mindmap\": true}')")
        self.fill("search", {
            "id": self.hid("srch", "q.n"), **times("q.n * 600"), "avatar": "NULL", "tenant_id": "t.id",
            "name": "CONCAT('Search ', q.n)", "description": "'Search the product documentation'",
            "created_by": "t.id", "search_config": search_config, "status": "'1'",
        }, "FROM `_bench_seq` q " + tenant10 + " WHERE q.n >= %s AND q.n < %s", self.chunks(n_small))
        self.fill("memory", {
            "id": self.hid("mem", "q.n"), **times("q.n * 600"), "name": "CONCAT('Memory ', q.n)", "avatar": "NULL",
            "tenant_id": "t.id", "memory_type": "1", "storage_type": "'table'", "embd_id": "COALESCE(p.embd, '')",
            "llm_id": "COALESCE(p.chat, '')", "permissions": "'me'", "description": "NULL", "memory_size": "5242880",
            "forgetting_policy": "'FIFO'", "temperature": "0.5", "system_prompt": "NULL", "user_prompt": "NULL",
        }, "FROM `_bench_seq` q " + tenant10 + " WHERE q.n >= %s AND q.n < %s", self.chunks(n_small))

    def long_references(self) -> None:
        """Every 300th tenant embeds with a custom model of a long name (as users name them): its
        ``model@OpenAI-API-Compatible`` reference is 125 characters, so it fits VARCHAR(128) as
        ``m@p`` but not as ``m@default@p`` (it stays two-part: the preflight's lossless default)."""
        factory = "OpenAI-API-Compatible"
        name = f"CONCAT('long-embedding-model-', LPAD(t.n, 8, '0'), '-', REPEAT('x', {125 - len(factory) - 1 - 30}))"
        self.fill("tenant_llm", {
            **times("t.n * 60 + 59"), "tenant_id": "t.id", "llm_factory": f"'{factory}'", "model_type": "'embedding'",
            "llm_name": name, "api_key": "CONCAT('sk-long-', t.n)", "api_base": "'http://embed.local:8000/v1'",
            "max_tokens": "8192", "used_tokens": "0", "status": "'1'",
        }, "FROM `_bench_tenant` t WHERE t.n MOD 300 = 7")
        ref = f"CONCAT({name}, '@{factory}')"
        self.db.execute(f"UPDATE `tenant` x JOIN `_bench_tenant` t ON t.id = x.id SET x.embd_id = {ref} "
                        "WHERE t.n MOD 300 = 7")
        self.db.execute(f"UPDATE `knowledgebase` x JOIN `_bench_tenant` t ON t.id = x.tenant_id SET x.embd_id = {ref} "
                        "WHERE t.n MOD 300 = 7")

    def catalogue_tables(self) -> None:
        """llm_factories and llm, as RAGFlow's startup fills them from the catalogue."""
        started = time.monotonic()
        db = self.db
        if "llm_factories" in db.tables:
            cols = {c.name for c in db.columns("llm_factories")}
            rows = []
            for i, f in enumerate(self.catalog_raw):
                row = {"name": f["name"], "create_time": BASE_EPOCH * 1000, "update_time": BASE_EPOCH * 1000,
                       "logo": "", "tags": f.get("tags", ""), "rank": int(f.get("rank") or 0), "status": "1"}
                rows.append({k: v for k, v in row.items() if k in cols})
                self.counts["llm_factories"] = i + 1
            names = list(rows[0])
            db.executemany(f"INSERT INTO `llm_factories` ({', '.join(f'`{n}`' for n in names)}) VALUES "
                           f"({', '.join(['%s'] * len(names))})", [tuple(r[n] for n in names) for r in rows])
        if "llm" in db.tables:
            cols = {c.name for c in db.columns("llm")}
            rows = []
            for f in self.catalog_raw:
                for m in f.get("llm") or []:
                    t = m.get("model_type", "chat")
                    row = {"create_time": BASE_EPOCH * 1000, "update_time": BASE_EPOCH * 1000,
                           "llm_name": m["llm_name"], "model_type": t[0] if isinstance(t, list) else t,
                           "fid": f["name"], "max_tokens": int(m.get("max_tokens") or 0), "tags": m.get("tags", ""),
                           "is_tools": bool(m.get("is_tools")), "status": "1"}
                    rows.append({k: v for k, v in row.items() if k in cols})
            names = list(rows[0])
            db.executemany(f"INSERT IGNORE INTO `llm` ({', '.join(f'`{n}`' for n in names)}) VALUES "
                           f"({', '.join(['%s'] * len(names))})", [tuple(r[n] for n in names) for r in rows])
            self.counts["llm"] = len(rows)
        self.timings["llm"] = time.monotonic() - started

    def legacy_int_ids(self) -> None:
        """v0.25.x: RAGFlow's startup wrote ``tenant_llm.id`` into the INT ``tenant_*_id`` columns."""
        if "id" not in {c.name for c in self.db.columns("tenant_llm")}:
            return
        started = time.monotonic()
        pairs = [("tenant", "id", "tenant_llm_id", "llm_id"), ("tenant", "id", "tenant_embd_id", "embd_id"),
                 ("tenant", "id", "tenant_asr_id", "asr_id"), ("tenant", "id", "tenant_img2txt_id", "img2txt_id"),
                 ("tenant", "id", "tenant_rerank_id", "rerank_id"), ("tenant", "id", "tenant_tts_id", "tts_id"),
                 ("dialog", "tenant_id", "tenant_llm_id", "llm_id"),
                 ("dialog", "tenant_id", "tenant_rerank_id", "rerank_id"),
                 ("knowledgebase", "tenant_id", "tenant_embd_id", "embd_id"),
                 ("memory", "tenant_id", "tenant_embd_id", "embd_id"), ("memory", "tenant_id", "tenant_llm_id", "llm_id")]
        for table, tenant_col, int_col, ref in pairs:
            if table not in self.db.tables or int_col not in {c.name for c in self.db.columns(table)}:
                continue
            self.db.execute(
                f"UPDATE `{table}` x JOIN `tenant_llm` l ON l.tenant_id = x.`{tenant_col}` "
                f"AND l.llm_factory = SUBSTRING_INDEX(x.`{ref}`, '@', -1) "
                f"AND l.llm_name = SUBSTRING_INDEX(x.`{ref}`, '@', 1) "
                f"SET x.`{int_col}` = l.id WHERE x.`{ref}` LIKE '%@%'")
        self.timings["legacy tenant_*_id"] = time.monotonic() - started

    def run(self) -> None:
        profiles = build_profiles(self.seed, self.catalog)
        started = time.monotonic()
        self.helpers(profiles)
        self.timings["helpers"] = time.monotonic() - started
        for part in (self.users, self.tenant_llm, self.knowledge, self.chats, self.agents, self.long_references,
                     self.catalogue_tables, self.restore_indexes, self.legacy_int_ids):
            t = time.monotonic()
            part()
            self.db.log(f"  {part.__name__}: {time.monotonic() - t:.1f}s")
        for t in HELPERS:
            self.db.execute(f"DROP TABLE IF EXISTS `{t}`")


# --- entry points ----------------------------------------------------------------------------------


def build_schema(env: dict[str, str], release: str, *, keep_history: bool = False,
                 python: str = sys.executable) -> float:
    """The old release's schema, made by the tool; returns the seconds it took."""
    started = time.monotonic()
    full = {**os.environ, **env, "RAGFLOW_MIGRATE_LOG_FORMAT": "json", "RAGFLOW_MIGRATE_TERMINATION_LOG": os.devnull}
    proc = subprocess.run([python, "-m", "ragflow_migrate", "run", "--target-version", release, "--create-database"],
                          env=full, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the {release} schema failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if not keep_history:
        conn = pymysql.connect(**_params(env), database=env["MYSQL_DBNAME"], autocommit=True)
        try:
            with conn.cursor() as cur:
                for t in OWN_TABLES:
                    cur.execute(f"DROP TABLE IF EXISTS `{t}`")
        finally:
            conn.close()
    return time.monotonic() - started


def _params(env: dict[str, str]) -> dict[str, Any]:
    return {"host": env.get("MYSQL_HOST", "127.0.0.1"), "port": int(env.get("MYSQL_PORT", "3306")),
            "user": env.get("MYSQL_USER", "root"), "password": env.get("MYSQL_PASSWORD", "")}


def generate(env: dict[str, str], *, release: str, scale: str, seed: int = 42, catalog: Path = DEFAULT_CATALOG,
             keep_history: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build ``env['MYSQL_DBNAME']`` at ``release`` and fill it; returns counts and timings."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    started = time.monotonic()
    schema_s = build_schema(env, release, keep_history=keep_history)
    log(f"  schema {release}: {schema_s:.1f}s")
    db = Db(_params(env), env["MYSQL_DBNAME"], log)
    try:
        # The generator's own writes need no binary log (a no-op where it is off).
        try:
            db.execute("SET SESSION sql_log_bin = 0")
        except pymysql.MySQLError:
            pass
        gen = Generator(db, scale=scale, seed=seed, catalog=catalog)
        gen.run()
    finally:
        db.close()
    return {"release": release, "scale": scale, "tenants": SCALES[scale], "seed": seed,
            "catalog": str(catalog), "seconds": round(time.monotonic() - started, 2),
            "schema_seconds": round(schema_s, 2), "rows": gen.counts,
            "table_seconds": {k: round(v, 2) for k, v in gen.timings.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", default="S", choices=list(SCALES))
    parser.add_argument("--release", default="v0.25.6", help="old RAGFlow release to build (default v0.25.6)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument("--database", help="database name (default MYSQL_DBNAME, else rag_flow)")
    parser.add_argument("--keep-history", action="store_true",
                        help="keep the tool's history table (default: drop it, as in a database RAGFlow made)")
    parser.add_argument("--profiles", action="store_true", help="print the tenant_llm profiles and exit")
    args = parser.parse_args(argv)
    if args.profiles:
        catalog, _raw = load_catalog(args.catalog)
        for p in build_profiles(args.seed, catalog):
            print(p.number, len(p.slots), p.refs)
            for s in p.slots:
                print("   ", s)
        return 0
    env = {k: v for k, v in os.environ.items() if k.startswith("MYSQL_")}
    env["MYSQL_DBNAME"] = args.database or env.get("MYSQL_DBNAME", "rag_flow")
    result = generate(env, release=args.release, scale=args.scale, seed=args.seed, catalog=args.catalog,
                      keep_history=args.keep_history)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
