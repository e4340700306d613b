"""Property tests over generated legacy data: the §6 invariants hold, and a second run changes nothing.

Generated: tenants; providers (catalogue, empty-catalogue and unknown factories, a case variant);
keys as plain strings, JSON with and without ``is_tools``, other JSON objects, NULL and ''; statuses;
model types (with unknown ones); ``api_base``; legacy model ids in tenant, dialog, knowledgebase
and memory columns and in JSON configs. ``RAGFLOW_MIGRATE_HYPOTHESIS_EXAMPLES`` raises the example
count (default 8 per server: each example builds a database).
"""

from __future__ import annotations

import json
import os

import data_support as ds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragflow_migrate.data import registry

EXAMPLES = int(os.environ.get("RAGFLOW_MIGRATE_HYPOTHESIS_EXAMPLES", "8"))

FACTORIES = ["OpenAI", "SILICONFLOW", "FuturMix", "Ollama", "Xinference", "LM-Studio", "Gone", "openai-compat"]
NAMES = ["gpt-4o", "gpt-4o-mini", "o1", "text-embedding-3-small", "whisper-1", "BAAI/bge-large-zh-v1.5",
         "BAAI/bge-reranker-v2-m3", "Qwen/Qwen3-VL-8B-Instruct", "custom-1", "emb@q8_0", "a@b@c", "ünï"]
TYPES = ["chat", "embedding", "rerank", "speech2text", "image2text", "vision", "tts", "ocr", "asr", "weird", "", None]
KEY_KINDS = st.sampled_from(["plain", "json", "json_tools", "json_other", "null", "empty"])

row = st.fixed_dictionaries({
    "factory": st.sampled_from(FACTORIES),
    "name": st.sampled_from(NAMES),
    "key": st.tuples(KEY_KINDS, st.integers(0, 2)),
    "status": st.sampled_from(["1", "1", "0"]),
    "type": st.sampled_from(TYPES),
    "base": st.sampled_from([None, None, "", "http://h:1"]),
    "max_tokens": st.sampled_from([0, 512, 8192]),
})
tenant_st = st.fixed_dictionaries({
    "rows": st.lists(row, min_size=0, max_size=8),
    "refs": st.lists(st.tuples(st.sampled_from(["llm_id", "embd_id", "rerank_id", "img2txt_id", "asr_id", "tts_id"]),
                               st.integers(0, 7), st.sampled_from(["two", "three", "bare", "other"])), max_size=4),
})


def _key(kind: str, n: int) -> str | None:
    base = f"sk-{n}"
    return {"plain": base, "json": json.dumps({"api_key": base}),
            "json_tools": json.dumps({"api_key": base, "is_tools": True}),
            "json_other": json.dumps({"ark_api_key": base, "endpoint_id": "e", "is_tools": n % 2 == 0}),
            "null": None, "empty": ""}[kind]


def _build(conn, tenants) -> None:
    for t, spec in enumerate(tenants):
        tid = f"t{t}"
        seen = set()
        rows = []
        for r in spec["rows"]:
            ident = (r["factory"].lower(), r["name"].lower())
            if ident in seen:
                continue  # tenant_llm's unique key
            seen.add(ident)
            rows.append(r)
            ds.llm(conn, tid, r["factory"], r["name"], _key(*r["key"]), status=r["status"], model_type=r["type"],
                   api_base=r["base"], max_tokens=r["max_tokens"])
        refs = {}
        for column, index, form in spec["refs"]:
            if rows:
                r = rows[index % len(rows)]
                value = {"two": f"{r['name']}@{r['factory']}", "three": f"{r['name']}@default@{r['factory']}",
                         "bare": r["name"], "other": f"{r['name']}@Elsewhere"}[form]
            else:
                value = "gpt-4o@OpenAI"
            refs[column] = value[:128]
        ds.tenant(conn, tid, **refs)
        ds.insert(conn, "knowledgebase", id=f"kb{t}", tenant_id=tid, name="kb", permission="me", created_by=tid,
                  parser_id="naive", embd_id=refs.get("embd_id", ""),
                  parser_config=json.dumps({"llm_id": refs.get("llm_id", "x@P"), "list": [{"embd_id": "e@P"}]}))
        ds.insert(conn, "dialog", id=f"d{t}", tenant_id=tid, llm_id=refs.get("llm_id", ""),
                  rerank_id=refs.get("rerank_id", ""), llm_setting="{}", prompt_type="simple", prompt_config="{}",
                  similarity_threshold=0.2, vector_similarity_weight=0.3, top_n=6, top_k=1024, do_refer="1",
                  kb_ids="[]")
        ds.insert(conn, "memory", id=f"m{t}", tenant_id=tid, name="mem", embd_id=refs.get("embd_id", ""),
                  llm_id=refs.get("llm_id", ""), memory_type=1, storage_type="table", permissions="me",
                  memory_size=1, forgetting_policy="fifo", temperature=0.5)


def test_invariants_and_idempotency(database, ragflow_schema):
    schema_path = ragflow_schema("v0.26.0")

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(tenant_st, min_size=1, max_size=4))
    def check(tenants):
        database.server.drop_database(database.name)
        database.server.create_database(database.name)
        ds.load_schema(database, schema_path)
        conn = database.connect(charset="utf8mb4")
        contexts = []
        try:
            _build(conn, tenants)
            ctx = ds.open_ctx(database.env, batch_size=3)
            contexts.append(ctx)
            ds.run_all(ctx)
            ds.check_acceptance(conn)
            once = ds.snapshot(conn)
            again = ds.open_ctx(database.env)
            contexts.append(again)
            assert all(not registry.data_steps(again, g) for g in registry.GATES)
            ds.force_all(again)  # the stages themselves, records and marker aside
            assert ds.snapshot(conn) == once, ds.diff(ds.snapshot(conn), once)
        finally:
            for ctx in contexts:
                ctx.conn.close()
            conn.close()

    check()
