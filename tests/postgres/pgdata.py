"""The cross-backend acceptance data (test_pg_vs_mysql.py): one legacy dataset defined as Python
data, a loader per backend (MySQL/MariaDB through pymysql, PostgreSQL through psycopg 3), and a
normaliser that turns a migrated database into comparable rows: generated ids replaced by the
natural keys of the rows they name, timestamps dropped, booleans and numbers as Python ints.

The dataset mirrors the edge cases of the MySQL data suite (tests/integration/data): the spec's
worked examples (§3.2, §3.3, §3.7), D7 (quotes, backslashes), D9 (NULL key), D12 (several keys per
provider), D13 (missing provider), D14 (``@`` in a model name), D15 (api_base), D16 (max_tokens),
D17 (non-catalogue models), D26 (keys differing by case or a trailing space), plus factory names
that differ only in case ('OpenAI' / 'openai' / 'OPENAI': MySQL's _ci collation makes them one
provider, which is the reference behaviour), broken JSON keys, NULL and '' model types.

Tenant t8 and dialogs d8-d14 go one step further than the MySQL suite, whose names are ASCII: what
utf8mb4_unicode_ci also treats as equal, a trailing space (PAD SPACE: 'Ollama ' = 'Ollama',
'm0 @Ollama' names m0) and accents ('Xinférence' = 'Xinference', 'Big-Modél' = 'Big-Model'). MySQL
merges these providers and resolves these references; a backend comparing by lower() alone does not.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections import Counter, defaultdict
from typing import Any

# --- the legacy dataset ------------------------------------------------------------------------------

VOLC_KEY = '{"ark_api_key":"k","endpoint_id":"e","is_tools":true}'
T0 = 1700000000000  # legacy create_time (ms); the dates below are the same instant


def _llm(tenant: str, factory: str, name: str | None, key: str | None, status: str = "1",
         model_type: str | None = "chat", api_base: str | None = None, max_tokens: int = 8192,
         used_tokens: int = 0) -> dict[str, Any]:
    return {"tenant_id": tenant, "llm_factory": factory, "llm_name": name, "api_key": key, "status": status,
            "model_type": model_type, "api_base": api_base, "max_tokens": max_tokens, "used_tokens": used_tokens}


def _tenant(tid: str, **refs: Any) -> dict[str, Any]:
    row = {"id": tid, "name": f"tenant {tid}", "llm_id": "", "embd_id": "", "asr_id": "", "img2txt_id": "",
           "rerank_id": "", "tts_id": None, "parser_ids": "naive:General", "credit": 512, "status": "1"}
    row.update(refs)
    return row


def _dialog(did: str, tenant: str, llm_id: str, rerank_id: str = "") -> dict[str, Any]:
    return {"id": did, "tenant_id": tenant, "name": f"dialog {did}", "llm_id": llm_id, "rerank_id": rerank_id,
            "llm_setting": json.dumps({"temperature": 0.1}), "prompt_type": "simple",
            "prompt_config": json.dumps({"system": "s", "parameters": []}), "similarity_threshold": 0.2,
            "vector_similarity_weight": 0.3, "top_n": 6, "top_k": 1024, "do_refer": "1", "kb_ids": "[]",
            "status": "1"}


def _kb(kid: str, tenant: str, embd_id: str, parser_config: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": kid, "tenant_id": tenant, "name": f"kb {kid}", "embd_id": embd_id, "permission": "me",
            "created_by": tenant, "doc_num": 0, "token_num": 0, "chunk_num": 0, "similarity_threshold": 0.2,
            "vector_similarity_weight": 0.3, "parser_id": "naive", "pagerank": 0, "status": "1",
            "parser_config": json.dumps(parser_config or {"chunk_token_num": 128})}


def _memory(mid: str, tenant: str, embd_id: str, llm_id: str) -> dict[str, Any]:
    return {"id": mid, "tenant_id": tenant, "name": f"memory {mid}", "memory_type": 1, "storage_type": "table",
            "embd_id": embd_id, "llm_id": llm_id, "permissions": "me", "memory_size": 5242880,
            "forgetting_policy": "FIFO", "temperature": 0.5}


def _user(uid: str, superuser: bool | None) -> dict[str, Any]:
    return {"id": uid, "nickname": uid, "email": f"{uid}@example.com", "password": "x", "is_authenticated": "1",
            "is_active": "1", "is_anonymous": "0", "status": "1", "is_superuser": superuser,
            "last_login_time": dt.datetime(2024, 5, 1, 12, 0, 0), "login_channel": "password"}


TENANT_IDS = ("t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8")


def dataset(release: str) -> dict[str, list[dict[str, Any]]]:
    """table → rows, in insertion order. ``release`` only removes what its schema cannot hold (the
    loader drops columns the schema lacks, e.g. tenant_llm.status before v0.22, memory at v0.20):
    before v0.25.0 tenant_llm.llm_name is part of the primary key, so no NULL name there."""
    llm = [
        # §3.2 / §3.3: t1 OpenAI: one canonical key sk-A (plain, JSON with is_tools), one disabled model
        _llm("t1", "OpenAI", "gpt-4o", "sk-A", used_tokens=1234),
        _llm("t1", "OpenAI", "text-embedding-3-small", "sk-A", model_type="embedding"),
        _llm("t1", "OpenAI", "o1", "sk-A", status="0"),
        _llm("t1", "OpenAI", "gpt-4o-mini", '{"api_key": "sk-A", "is_tools": true}'),
        _llm("t1", "OpenAI", "whisper-1", "sk-A", status="0", model_type="speech2text"),
        _llm("t1", "OpenAI", "my-azure-deployment", "sk-A"),                       # D17: not in the catalogue
        _llm("t1", "VolcEngine", "doubao-pro", VOLC_KEY),                           # JSON key, not api_key only
        _llm("t1", "Ollama", "llama3:8b", "x", api_base="http://ollama:11434"),     # D15
        _llm("t1", "Ollama", "nomic", "x", api_base="http://gpu-b:11434", model_type="embedding"),
        _llm("t1", "LM-Studio", "text-embedding-nomic-embed-text-v1.5@q8_0", "", model_type="embedding"),  # D14
        _llm("t1", "LM-Studio", "a@b", ""),
        # D12: t2 OpenAI with two keys → two instances 'default'
        _llm("t2", "OpenAI", "gpt-4o", "sk-B"),
        _llm("t2", "OpenAI", "gpt-4o-mini", "sk-B2"),
        _llm("t2", "OpenAI", "text-embedding-3-small", "sk-B", model_type="embedding"),
        _llm("t2", "OldFactory", "retired", "k", model_type="rerank"),              # D17: unknown factory
        # D9: NULL key; SILICONFLOW (catalogue) with a region in the key (siliconflow_intl split)
        _llm("t3", "Xinference", "qwen-local", None),
        _llm("t3", "SILICONFLOW", "BAAI/bge-large-zh-v1.5", "sf", model_type="embedding"),
        _llm("t3", "SILICONFLOW", "Qwen/Qwen3-VL-8B-Instruct", "sf", model_type="image2text"),
        _llm("t3", "FuturMix", "gpt-4o", "fm", max_tokens=0),
        _llm("t3", "OpenAI-API-Compatible", "gpt-4o", '{"api_key": "k", "is_tools": true}'),
        # factory names differing only in case (one provider under _ci: MySQL is the reference)
        _llm("t4", "OpenAI", "gpt-4o", "sk-C"),
        _llm("t4", "openai", "o1", "sk-C"),
        _llm("t4", "OPENAI", "gpt-4o-mini", "sk-D", model_type="image2text"),
        _llm("t4", "ollama", "Llama3", "kk", api_base="http://h:1"),
        # broken JSON, JSON without is_tools, JSON is_tools false, non-object JSON; D16 max_tokens
        _llm("t5", "Xinference", "broken", '{"api_key": "sk-broken"'),
        _llm("t5", "Xinference", "json-only", '{"api_key":"sk-E"}'),
        _llm("t5", "Xinference", "plain", "sk-E", max_tokens=131072),
        _llm("t5", "Xinference", "tools-false", '{"api_key": "sk-E", "is_tools": false}'),
        _llm("t5", "Xinference", "list-key", '["sk-L"]'),
        _llm("t5", "Xinference", "num-key", "42", model_type="rerank"),
        _llm("t5", "Xinference", "no-type", "sk-E", model_type=None),
        _llm("t5", "Xinference", "empty-type", "sk-E", model_type=""),
        _llm("t5", "Xinference", "tts-model", "sk-E", model_type="tts"),
        _llm("t5", "Xinference", "asr-model", "sk-E", model_type="speech2text", status="0"),
        # D7: quotes and backslashes; D26: keys differing by case / a trailing space
        _llm("t7", "Ollama", "m-bs", "sk\\s", api_base="http://h/a\\b"),
        _llm("t7", "Ollama", "m-quote", "q'uote\"d"),
        _llm("t7", "Ollama", "m-inject", "x\\'); DROP TABLE tenant; --"),
        _llm("t7", "Ollama", "m-uni", "ünïcødé ✓"),
        _llm("t7", "Ollama", "m0", "sk-a"),
        _llm("t7", "Ollama", "m1", "SK-A"),
        _llm("t7", "Ollama", "m2", "sk-a "),
        _llm("t7", "Ollama", "Big-Model", "sk-a", max_tokens=65536, used_tokens=99),
        # what MySQL's utf8mb4_unicode_ci also folds: a trailing space (PAD SPACE) and accents (non-ASCII)
        _llm("t8", "Ollama", "llama3", "k8"),
        _llm("t8", "Ollama ", "nomic", "k8", model_type="embedding"),
        _llm("t8", "Xinference", "qwen", "k8"),
        _llm("t8", "Xinférence", "qwen2", "k8"),
    ]
    if tuple(int(p) for p in release.lstrip("v").split(".")) >= (0, 25, 0):
        llm.append(_llm("t5", "Xinference", None, "sk-E"))  # a NULL name (nullable, no longer a key, since v0.25)
    tenants = [
        _tenant("t1", llm_id="gpt-4o@OpenAI", embd_id="text-embedding-3-small@OpenAI", img2txt_id="gpt-4o@OpenAI",
                rerank_id="BAAI/bge-reranker-v2-m3", asr_id="o1@OpenAI", tts_id="tts-1@default@OpenAI"),
        _tenant("t2", llm_id="gpt-4o-mini@OpenAI", embd_id="text-embedding-3-small@OpenAI",
                img2txt_id="gpt-4o-mini@default@OpenAI", rerank_id="retired@OldFactory", tts_id=""),
        _tenant("t3", llm_id="qwen-local@Xinference", embd_id="BAAI/bge-large-zh-v1.5@SILICONFLOW",
                rerank_id="BAAI/bge-reranker-v2-m3@siliconflow", img2txt_id="Qwen/Qwen3-VL-8B-Instruct@SILICONFLOW",
                asr_id="whisper-1@OpenAI"),
        _tenant("t4", llm_id="GPT-4O@openai", embd_id="unknown-model@OpenAI", asr_id="whisper-1@OpenAI",
                img2txt_id="gpt-4o-mini@OPENAI", rerank_id="x@Nowhere", tts_id="tts-1@OpenAI"),
        _tenant("t5", llm_id="plain@Xinference", embd_id="broken@Xinference", rerank_id="num-key@Xinference",
                img2txt_id="list-key@default@Xinference", asr_id="asr-model@Xinference",
                tts_id="tts-model@Xinference"),
        _tenant("t6"),
        _tenant("t7", llm_id="Big-Model@Ollama", embd_id="m0@@Ollama", rerank_id="@Ollama", asr_id="m1@Ollama ",
                img2txt_id="m-bs@Ollama", tts_id="big-model@ollama"),
        _tenant("t8", llm_id="qwen2@Xinference", embd_id="nomic@Ollama"),
    ]
    data: dict[str, list[dict[str, Any]]] = {
        "user": [_user(t, t == "t1" if t != "t6" else None) for t in TENANT_IDS],
        "tenant": tenants,
        "user_tenant": [{"id": f"ut{t}", "user_id": t, "tenant_id": t, "role": "owner", "invited_by": t,
                         "status": "1"} for t in TENANT_IDS],
        "tenant_llm": llm,
        "dialog": [
            _dialog("d1", "t1", "gpt-4o@OpenAI", "BAAI/bge-reranker-v2-m3@SILICONFLOW"),
            _dialog("d2", "t2", "gpt-4o-mini@default@OpenAI"),
            _dialog("d3", "t4", "gpt-4o@OPENAI", "retired@OldFactory"),
            _dialog("d4", "t1", "a@b@LM-Studio"),
            _dialog("d5", "t3", "deepseek-ai/DeepSeek-V3@SILICONFLOW", "BAAI/bge-reranker-v2-m3@SILICONFLOW"),
            _dialog("d6", "t5", "no-type@Xinference", "num-key@Xinference"),
            _dialog("d7", "t7", "m-quote@Ollama", ""),
            _dialog("d8", "t7", "m0@Ollama "),
            _dialog("d9", "t7", "M0@OLLAMA"),
            _dialog("d10", "t7", "m0 @Ollama"),
            _dialog("d11", "t7", "Big-Modél@Ollama"),
            _dialog("d12", "t4", "gpt-4o@default@OPENAI "),
            _dialog("d13", "t8", "qwen@Xinférence"),
            _dialog("d14", "t8", "llama3@Ollama "),
        ],
        "knowledgebase": [
            _kb("kb1", "t1", "text-embedding-3-small@OpenAI",
                {"llm_id": "gpt-4o@OpenAI", "raptor": {"llm_id": "o1@OpenAI"}, "graphrag": {"embd_id": "x@y@z"},
                 "chunk_token_num": 128, "layout": "中文@P"}),
            _kb("kb2", "t3", "BAAI/bge-large-zh-v1.5@BAAI"),                      # D13: no BAAI provider
            _kb("kb3", "t1", "text-embedding-nomic-embed-text-v1.5@q8_0@LM-Studio"),
            _kb("kb4", "t2", "text-embedding-3-small@OpenAI", {"llm_id": 7, "tags": ["a@b"]}),
            _kb("kb5", "t1", "nomic@Ollama"),
            _kb("kb6", "t6", ""),
        ],
        "memory": [
            _memory("m1", "t1", "text-embedding-3-small@OpenAI", "gpt-4o@OpenAI"),
            _memory("m2", "t4", "unknown@OpenAI", "o1@openai"),
            _memory("m3", "t6", "", ""),
            _memory("m4", "t2", "text-embedding-3-small@default@OpenAI", "gone@Nowhere"),
        ],
        "search": [
            {"id": "s1", "tenant_id": "t1", "name": "s", "created_by": "t1", "status": "1",
             "search_config": json.dumps({"chat_id": "c@P", "deep": {"chat_id": "d@P"}, "llm_id": "gpt-4o@OpenAI",
                                          "rerank_id": "", "summary": True})},
        ],
    }
    stamp = 0
    for rows in data.values():
        for row in rows:
            stamp += 1
            row.setdefault("create_time", T0 + stamp * 1000)
            row.setdefault("update_time", T0 + stamp * 1000)
            row.setdefault("create_date", dt.datetime(2023, 11, 14, 22, 13, 20) + dt.timedelta(seconds=stamp))
            row.setdefault("update_date", dt.datetime(2023, 11, 14, 22, 13, 20) + dt.timedelta(seconds=stamp))
    return data


# --- loading -------------------------------------------------------------------------------------------

_NUMERIC = ("int", "bigint", "smallint", "tinyint", "mediumint", "integer", "float", "double", "decimal",
            "real", "double precision", "numeric")
_TIME = ("datetime", "timestamp", "date", "timestamp without time zone", "timestamp with time zone")
_TEXT = ("text", "longtext", "mediumtext")


class Loader:
    """Inserts the dataset into one database. ``backend`` is "mysql" (a pymysql connection) or
    "postgres" (a psycopg connection); both autocommit."""

    def __init__(self, backend: str, conn: Any) -> None:
        self.backend = backend
        self.conn = conn
        self._columns: dict[str, dict[str, tuple[str, bool, bool]]] = {}

    def _q(self, sql: str, args: Any = None) -> list[tuple]:
        if self.backend == "postgres":
            cur = self.conn.execute(sql, args)
            return list(cur.fetchall()) if cur.description is not None else []
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def columns(self, table: str) -> dict[str, tuple[str, bool, bool]]:
        """column → (data type, nullable, generated: auto_increment / a default)."""
        if table not in self._columns:
            if self.backend == "postgres":
                rows = self._q("SELECT column_name, data_type, is_nullable, column_default FROM "
                               "information_schema.columns WHERE table_schema = current_schema() AND table_name = %s",
                               (table,))
                self._columns[table] = {n: (t.lower(), nl == "YES", d is not None) for n, t, nl, d in rows}
            else:
                rows = self._q("SELECT column_name, data_type, is_nullable, extra FROM information_schema.columns "
                               "WHERE table_schema = DATABASE() AND table_name = %s", (table,))
                self._columns[table] = {n: (str(t).lower(), nl == "YES", "auto_increment" in (x or ""))
                                        for n, t, nl, x in rows}
        return self._columns[table]

    def _convert(self, value: Any, data_type: str) -> Any:
        if value is None:
            return None
        if self.backend == "postgres" and data_type == "boolean":
            return bool(value)
        if isinstance(value, bool):
            return int(value)  # MySQL tinyint(1), or an int column on PostgreSQL
        return value

    @staticmethod
    def _filler(data_type: str) -> Any:
        if data_type == "boolean":
            return False
        if data_type in _NUMERIC:
            return 0
        if data_type in _TIME:
            return dt.datetime(2024, 1, 1)
        if data_type in _TEXT:
            return "{}"
        return ""

    def insert(self, table: str, row: dict[str, Any]) -> None:
        cols = self.columns(table)
        if not cols:
            return  # the table does not exist at this release
        values = {k: self._convert(v, cols[k][0]) for k, v in row.items() if k in cols}
        for name, (data_type, nullable, generated) in cols.items():
            if name not in values and not nullable and not generated:
                values[name] = self._filler(data_type)
        q = '"' if self.backend == "postgres" else "`"
        names = ", ".join(f"{q}{c}{q}" for c in values)
        marks = ", ".join(["%s"] * len(values))
        self._q(f"INSERT INTO {q}{table}{q} ({names}) VALUES ({marks})", list(values.values()))

    def load(self, data: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        for table, rows in data.items():
            for row in rows:
                self.insert(table, row)
            counts[table] = len(rows) if self.columns(table) else 0
        return counts


# --- reading and normalising -----------------------------------------------------------------------------

DROPPED = {"create_time", "create_date", "update_time", "update_date"}
#: table → columns holding a tenant_model id
MODEL_REFS = {
    "tenant": ("tenant_llm_id", "tenant_embd_id", "tenant_asr_id", "tenant_img2txt_id", "tenant_rerank_id",
               "tenant_tts_id", "tenant_ocr_id"),
    "dialog": ("tenant_llm_id", "tenant_rerank_id"),
    "knowledgebase": ("tenant_embd_id",),
    "memory": ("tenant_embd_id", "tenant_llm_id"),
    "tenant_model_group_mapping": ("model_id",),
}
#: tenant: the model columns only (the rest is the tool's business only in passing)
TENANT_COLUMNS = ("id", "llm_id", "embd_id", "asr_id", "img2txt_id", "rerank_id", "tts_id", "ocr_id",
                  *MODEL_REFS["tenant"])
COMPARED = ("tenant_model_provider", "tenant_model_instance", "tenant_model", "tenant_model_group",
            "tenant_model_group_mapping", "tenant_llm", "tenant", "dialog", "knowledgebase", "memory", "search",
            "system_settings")
#: table → columns naming a row: pairs the two sides' rows in a diff
PAIR_KEYS = {
    "tenant_model_provider": ("tenant_id", "provider_name"),
    "tenant_model_instance": ("provider_id", "instance_name", "api_key", "extra"),
    "tenant_model": ("provider_id", "instance_id", "model_name"),
    "tenant_model_group": ("group_type", "model_name", "strategy"),
    "tenant_model_group_mapping": ("group_id", "model_id"),
    "tenant_llm": ("tenant_id", "llm_factory", "llm_name"),
    "system_settings": ("name",),
}


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        return float(f"{value:.6g}")  # FLOAT vs REAL: the same single-precision value, printed alike
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat(sep=" ") if isinstance(value, dt.datetime) else value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    return value


def read_tables(backend: str, conn: Any) -> dict[str, tuple[list[str], list[tuple]]]:
    """table → (columns, rows) of every compared table that exists."""
    loader = Loader(backend, conn)
    out = {}
    for table in COMPARED:
        if not loader.columns(table):
            continue
        q = '"' if backend == "postgres" else "`"
        if backend == "postgres":
            cur = conn.execute(f"SELECT * FROM {q}{table}{q}")
            cols = [d.name for d in cur.description]
            rows = list(cur.fetchall())
        else:
            with conn.cursor() as cur:
                cur.execute(f"SELECT * FROM {q}{table}{q}")
                cols = [d[0] for d in cur.description]
                rows = list(cur.fetchall())
        out[table] = (cols, rows)
    return out


def normalise(tables: dict[str, tuple[list[str], list[tuple]]]) -> dict[str, list[dict[str, Any]]]:
    """Comparable rows per table: generated ids replaced by natural keys, timestamps dropped."""

    def dicts(table: str) -> list[dict[str, Any]]:
        cols, rows = tables.get(table, ([], []))
        return [{c: _plain(v) for c, v in zip(cols, row, strict=True)} for row in rows]

    providers = {r["id"]: ("provider", r["tenant_id"], r["provider_name"]) for r in dicts("tenant_model_provider")}

    def ref(mapping: dict[str, Any], value: Any, kind: str) -> Any:
        if value is None or value == "":
            return value
        if value in mapping:
            return mapping[value]
        return (f"dangling {kind} id", len(str(value))) if len(str(value)) == 32 else ("legacy value", value)

    instances = {r["id"]: ("instance", ref(providers, r["provider_id"], "provider"), r["instance_name"],
                           r["api_key"], r["extra"]) for r in dicts("tenant_model_instance")}
    models = {r["id"]: ("model", ref(providers, r["provider_id"], "provider"),
                        ref(instances, r["instance_id"], "instance"), r["model_name"], r["model_type"])
              for r in dicts("tenant_model")}
    groups = {r["id"]: ("group", r["group_type"], r["model_name"], r["strategy"]) for r in dicts("tenant_model_group")}

    out: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        rows = []
        for r in dicts(table):
            r = {c: v for c, v in r.items() if c not in DROPPED}
            if table in ("tenant_model_provider", "tenant_model_instance", "tenant_model", "tenant_model_group",
                         "tenant_llm"):
                r.pop("id", None)  # generated
            if table == "tenant":
                r = {c: v for c, v in r.items() if c in TENANT_COLUMNS}
            if table == "system_settings":
                if r.get("name") != "mysql_migration.database.version":
                    continue
            for col in ("provider_id",):
                if col in r:
                    r[col] = ref(providers, r[col], "provider")
            if "instance_id" in r:
                r["instance_id"] = ref(instances, r["instance_id"], "instance")
            if table == "tenant_model_group_mapping" and "group_id" in r:
                r["group_id"] = ref(groups, r["group_id"], "group")
            for col in MODEL_REFS.get(table, ()):
                if col in r:
                    r[col] = ref(models, r[col], "model")
            rows.append(r)
        rows.sort(key=lambda d: repr(sorted(d.items())))
        out[table] = rows
    return out


def _pair_key(table: str, row: dict[str, Any]) -> Any:
    cols = PAIR_KEYS.get(table, ("id",))
    return tuple(row.get(c) for c in cols)


def differences(mysql: dict[str, list[dict[str, Any]]], pg: dict[str, list[dict[str, Any]]],
                per_table: int = 8) -> list[str]:
    """Readable differences (MySQL is the reference): per table, the first rows that differ, as
    (natural key, column, MySQL value, PostgreSQL value), and rows only one side has."""
    lines: list[str] = []
    for table in sorted(set(mysql) | set(pg)):
        if table not in pg:
            lines.append(f"{table}: only MySQL has this table")
            continue
        if table not in mysql:
            lines.append(f"{table}: only PostgreSQL has this table")
            continue
        a, b = mysql[table], pg[table]
        if a == b:
            continue
        out: list[str] = []
        cols_a = set().union(*(r.keys() for r in a)) if a else set()
        cols_b = set().union(*(r.keys() for r in b)) if b else set()
        if a and b and cols_a != cols_b:
            out.append(f"  columns only MySQL has: {sorted(cols_a - cols_b)}; only PG has: {sorted(cols_b - cols_a)}")
        ca, cb = Counter(repr(sorted(r.items())) for r in a), Counter(repr(sorted(r.items())) for r in b)
        only_a = [r for r in a if ca[repr(sorted(r.items()))] > cb.get(repr(sorted(r.items())), 0)]
        only_b = [r for r in b if cb[repr(sorted(r.items()))] > ca.get(repr(sorted(r.items())), 0)]
        by_key_a: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        by_key_b: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        for r in only_a:
            by_key_a[_pair_key(table, r)].append(r)
        for r in only_b:
            by_key_b[_pair_key(table, r)].append(r)
        for key in sorted(set(by_key_a) | set(by_key_b), key=repr):
            ra, rb = by_key_a.get(key, []), by_key_b.get(key, [])
            if len(ra) == 1 and len(rb) == 1:
                for col in sorted(set(ra[0]) | set(rb[0])):
                    if ra[0].get(col, "<absent>") != rb[0].get(col, "<absent>"):
                        out.append(f"  {key!r} .{col}: MySQL {ra[0].get(col, '<absent>')!r} "
                                   f"!= PG {rb[0].get(col, '<absent>')!r}")
            else:
                out += [f"  {key!r}: only MySQL: {r!r}" for r in ra]
                out += [f"  {key!r}: only PG:    {r!r}" for r in rb]
        lines.append(f"{table}: MySQL {len(a)} rows, PG {len(b)} rows; {len(out)} differences")
        lines += out[:per_table]
        if len(out) > per_table:
            lines.append(f"  ... and {len(out) - per_table} more")
    return lines
