"""Every worked example of the specification (docs/ragflow-data-migration.md §3), input rows → output rows."""

from __future__ import annotations

import json

import data_support as ds

from ragflow_migrate.data import registry
from ragflow_migrate.data.stages.instance import InstanceStage
from ragflow_migrate.data.stages.legacy_models import LegacyModelStage
from ragflow_migrate.data.stages.model_ids import ModelIdStage
from ragflow_migrate.data.stages.provider import ProviderStage
from ragflow_migrate.data.stages.seeding import SeedingStage

VOLC_KEY = ds.VOLC_KEY
_spec_rows = ds.spec_rows


def _instances(legacy):
    return sorted((i["tenant"], i["provider"], i["name"], i["api_key"], i["status"])
                  for i in ds.instances(legacy.conn))


# --- §3.1 and §3.2 --------------------------------------------------------------------------------------


def test_providers_and_instances(legacy):
    _spec_rows(legacy.conn)
    ctx = legacy.ctx()
    ProviderStage().apply(ctx)
    InstanceStage().apply(ctx)
    assert sorted(ds.providers(legacy.conn).values()) == [
        ("t1", "LM-Studio"), ("t1", "Ollama"), ("t1", "OpenAI"), ("t1", "VolcEngine"),
        ("t2", "OpenAI"), ("t3", "SILICONFLOW"), ("t3", "Xinference")]
    insts = _instances(legacy)
    # t1 OpenAI: sk-A, sk-A, o1 disabled, {"api_key": "sk-A", "is_tools": true} → ONE instance, key sk-A, active
    assert [i for i in insts if i[:2] == ("t1", "OpenAI")] == [("t1", "OpenAI", "default", "sk-A", "active")]
    # t2: two keys → two instances, both named default
    assert [i for i in insts if i[:2] == ("t2", "OpenAI")] == [
        ("t2", "OpenAI", "default", "sk-B", "active"), ("t2", "OpenAI", "default", "sk-B2", "active")]
    # VolcEngine: the JSON key is stored unchanged, is_tools inside
    assert ("t1", "VolcEngine", "default", VOLC_KEY, "active") in insts
    # NULL key: stored as '' (and found again by stage 3: D9)
    assert ("t3", "Xinference", "default", "", "active") in insts


# --- §3.3 ---------------------------------------------------------------------------------------------------


def test_legacy_exceptions(legacy):
    _spec_rows(legacy.conn)
    ctx = legacy.ctx()
    for stage in (ProviderStage(), InstanceStage(), LegacyModelStage()):
        stage.apply(ctx)
    rows = sorted((m["tenant"], m["provider"], m["model_name"], m["model_type"], m["status"], m["extra"])
                  for m in ds.models(legacy.conn))
    assert rows == [
        ("t1", "LM-Studio", "text-embedding-nomic-embed-text-v1.5@q8_0", "embedding", "active",
         '{"max_tokens": 8192}'),
        # Ollama custom model: migrated; its base URL now lives on the instance (FIX D15), max_tokens kept (D16)
        ("t1", "Ollama", "llama3:8b", "chat", "active", '{"max_tokens": 8192}'),
        # disabled catalogue model
        ("t1", "OpenAI", "o1", "chat", "inactive", '{"max_tokens": 8192}'),
        # VolcEngine, JSON key with is_tools true
        ("t1", "VolcEngine", "doubao-pro", "chat", "active", '{"is_tools": true, "max_tokens": 8192}'),
        # t3 Xinference, key NULL: migrated, not skipped (FIX D9)
        ("t3", "Xinference", "qwen-local", "chat", "active", '{"max_tokens": 8192}'),
    ]  # t1 OpenAI gpt-4o '1' (a catalogue model) has no row
    ollama = [i for i in ds.instances(legacy.conn) if i["provider"] == "Ollama"]
    assert [json.loads(i["extra"]) for i in ollama] == [{"base_url": "http://ollama:11434"}]


# --- §3.4 ---------------------------------------------------------------------------------------------------


def test_model_id_config(legacy):
    c = legacy.conn
    ds.tenant(c, "t1", llm_id="gpt-4o@OpenAI", embd_id="x@BAAI", asr_id="name@q8_0@LM-Studio", img2txt_id="@P",
              rerank_id="plain", tts_id="a@", ocr_id="ocr@default@P")
    ds.insert(c, "dialog", id="d1", tenant_id="t1", llm_id="gpt-4o@OpenAI", rerank_id="", llm_setting="{}",
              prompt_type="simple", prompt_config="{}", similarity_threshold=0.2, vector_similarity_weight=0.3,
              top_n=6, top_k=1024, do_refer="1", kb_ids="[]")
    ds.insert(c, "search", id="s1", tenant_id="t1", name="s", created_by="t1",
              search_config=json.dumps({"chat_id": "c@P", "deep": {"chat_id": "d@P"}, "llm_id": "m@P"}))
    ds.insert(c, "user_canvas", id="u1", user_id="t1", title="c", canvas_category="agent", permission="me",
              dsl=json.dumps({"components": {"a": {"params": {"llm_id": "deepseek-chat@DeepSeek", "chat_id": "c@P",
                                                                "search_config": {"chat_id": "x@P"}}}},
                              "模型": "中文@P", "n": 1.5}, ensure_ascii=False))
    ds.insert(c, "document", id="doc1", kb_id="kb", parser_id="naive", parser_config="{not json @ all",
              created_by="t1", type="pdf", name="n", source_type="local", size=0, token_num=0, chunk_num=0,
              progress=0, process_duration=0, run="0")
    ctx = legacy.ctx()
    plan = ModelIdStage().plan(ctx)
    assert plan.counts == {"string_values_to_rewrite": 3, "json_values_to_rewrite": 2, "json_values_unparsable": 1}
    result = ModelIdStage().apply(ctx)
    assert result.changes == 4  # rows: t1 (its two values in one write), d1, s1, u1
    assert {k: result.details[k] for k in ("string_rows_rewritten", "json_values_rewritten", "stale")} == {
        "string_rows_rewritten": 2, "json_values_rewritten": 2, "stale": 0}
    assert legacy.q("SELECT llm_id, embd_id, asr_id, img2txt_id, rerank_id, tts_id, ocr_id FROM tenant")[0] == (
        "gpt-4o@default@OpenAI", "x@default@BAAI", "name@q8_0@LM-Studio", "@P", "plain", "a@", "ocr@default@P")
    assert legacy.q("SELECT llm_id FROM dialog")[0][0] == "gpt-4o@default@OpenAI"
    assert json.loads(legacy.q("SELECT search_config FROM search")[0][0]) == {
        "chat_id": "c@default@P", "deep": {"chat_id": "d@default@P"}, "llm_id": "m@default@P"}
    dsl = legacy.q("SELECT dsl FROM user_canvas")[0][0]
    assert dsl == ('{"components":{"a":{"params":{"llm_id":"deepseek-chat@default@DeepSeek","chat_id":"c@P",'
                   '"search_config":{"chat_id":"x@default@P"}}}},"模型":"中文@P","n":1.5}')
    assert legacy.q("SELECT parser_config FROM document")[0][0] == "{not json @ all"
    progress = [(e["unit"], e["done"], e["total"]) for e in ctx.log.events("step.progress")
                if e["step"] == ModelIdStage().name]
    assert all(total is None or done <= total for _unit, done, total in progress), progress  # never past its total
    assert ("rows", 2, 2) in progress and progress[-1] == ("JSON values", 2, None), progress
    assert any("doc1" in str(n.get("sample")) for n in ctx.log.notices())
    assert ModelIdStage().plan(legacy.ctx()).counts["string_values_to_rewrite"] == 0  # idempotent


# --- §3.5 ---------------------------------------------------------------------------------------------------


def test_seeding(legacy):
    """Seeding's rows, as the merge writes them in the same pass (VARCHAR model_type): merged, bits."""
    c = legacy.conn
    for t in ("t1", "t2", "t3"):
        ds.tenant(c, t)
    ds.llm(c, "t1", "OpenAI", "whisper-1", "sk-A", status="0", model_type="speech2text")
    ds.llm(c, "t2", "OpenAI", "gpt-4o", "sk-B")
    ds.llm(c, "t2", "OpenAI", "gpt-4o-mini", "sk-B2")
    ds.llm(c, "t3", "OpenAI-API-Compatible", "gpt-4o", '{"api_key": "k", "is_tools": true}')
    ctx = legacy.ctx()
    for stage in (ProviderStage(), InstanceStage(), LegacyModelStage()):
        stage.apply(ctx)
    before = ds.models(c)
    seeding = SeedingStage()
    assert seeding.plan(ctx).counts["models_to_seed"] == 2 * 7 + 6  # t2: 2 instances × 7; t1: 7 minus whisper-1
    result = seeding.apply(ctx)
    assert result.details["written_by"] == "model_type_merge" and ds.models(c) == before
    merge = registry.stages_of("v0.27.0")[1]
    assert merge.apply(ctx).details["models_seeded"] == 20
    rows = ds.models(c)
    t2 = sorted((m["instance_key"], m["model_name"], m["model_type"], m["status"], m["extra"])
                for m in rows if m["tenant"] == "t2")
    openai = {"gpt-4o": 1, "gpt-4o-mini": 8 | 1, "o1": 1, "text-embedding-3-small": 2, "whisper-1": 4, "tts-1": 32}
    for key in ("sk-B", "sk-B2"):  # each instance received every OpenAI entry, its types merged into bits
        assert {n: t for k, n, t, _s, _e in t2 if k == key} == openai
    assert ("sk-B", "gpt-4o", 1, "active", '{"is_tools": true, "max_tokens": 128000}') in t2
    # FIX D10: t1 disabled whisper-1; t2's stays active
    assert ("sk-B", "whisper-1", 4, "active", '{"max_tokens": 26214400}') in t2
    # CHOICE D11: t3's custom gpt-4o extra is not copied into t2's catalogue gpt-4o
    assert all(e != '{"is_tools": true, "max_tokens": 8192}' for _k, n, _t, _s, e in t2 if n == "gpt-4o")
    # t1's whisper-1 stays disabled (not re-seeded as active), so the merge drops it (KEEP)
    t1 = {m["model_name"] for m in rows if m["tenant"] == "t1"}
    assert t1 == set(openai) - {"whisper-1"}


# --- §3.6 ---------------------------------------------------------------------------------------------------


def test_merge(legacy):
    c = legacy.conn
    ds.tenant(c, "t1")
    ds.llm(c, "t1", "SILICONFLOW", "Qwen/Qwen3-VL-8B-Instruct", "sf")
    ds.llm(c, "t1", "OpenAI-API-Compatible", "X", "k")
    ctx = legacy.ctx()
    for stage in (ProviderStage(), InstanceStage(), LegacyModelStage()):
        stage.apply(ctx)
    prov = {name: pid for pid, (_t, name) in ds.providers(c).items()}
    inst = {i["provider"]: i["id"] for i in ds.instances(c)}
    c.cursor().execute("DELETE FROM tenant_model")

    def row(mid, provider, name, mtype, status, extra="{}"):
        ds.insert(c, "tenant_model", id=mid, model_name=name, provider_id=prov[provider], instance_id=inst[provider],
                  model_type=mtype, status=status, extra=extra, create_time=1000 + len(mid))

    row("a1", "SILICONFLOW", "Qwen/Qwen3-VL-8B-Instruct", "image2text", "active", '{"max_tokens": 32000}')
    row("a2", "SILICONFLOW", "Qwen/Qwen3-VL-8B-Instruct", "chat", "active")
    row("b1", "SILICONFLOW", "whisper-1", "speech2text", "inactive")
    row("c1", "OpenAI-API-Compatible", "X", "chat", "active")
    row("c2", "OpenAI-API-Compatible", "X", "vision", "unsupported")
    row("c3", "OpenAI-API-Compatible", "X", "image2text", "active")
    # names are compared as bytes, as RAGFlow's Python does: neither of these is "X"
    row("d1", "OpenAI-API-Compatible", "x", "embedding", "active")
    row("e1", "OpenAI-API-Compatible", "X ", "rerank", "active")
    # the status is the first one that is not "unsupported", the id the first row's
    row("f1", "OpenAI-API-Compatible", "Y", "vision", "unsupported")
    row("f2", "OpenAI-API-Compatible", "Y", "chat", "active")
    row("g1", "OpenAI-API-Compatible", "Z", "chat", "unsupported")
    row("g2", "OpenAI-API-Compatible", "Z", "embedding", "inactive")
    registry.stages_of("v0.27.0")[1].apply(ctx)  # model_type_merge
    merged = sorted((m["id"], m["model_name"], m["model_type"], m["status"], m["extra"]) for m in ds.models(c))
    # the merge also writes what seeding adds (one pass): the SILICONFLOW catalogue models the instance lacks
    assert sorted(r[1:] for r in merged if len(r[0]) == 32) == [
        ("BAAI/bge-large-zh-v1.5", 2, "active", '{"max_tokens": 512}'),
        ("BAAI/bge-reranker-v2-m3", 16, "active", '{"max_tokens": 8192}')]
    assert [r for r in merged if len(r[0]) < 32] == [
        ("a1", "Qwen/Qwen3-VL-8B-Instruct", 9, "active", '{"max_tokens": 32000}'),  # image2text + chat = 9
        ("c1", "X", 1, "active", "{}"),                                              # 1 | 8 & ~8 = 1
        ("d1", "x", 2, "active", "{}"),
        ("e1", "X ", 16, "active", "{}"),
        ("f1", "Y", 1, "active", "{}"),                                              # 1 & ~8 = 1
    ]  # whisper-1 inactive: dropped; ids of the first rows kept (FIX D25)


# --- §3.7 ---------------------------------------------------------------------------------------------------


def test_id_migration(legacy):
    _spec_rows(legacy.conn)
    legacy.run()
    refs = legacy.snapshot()["references"]
    assert refs["tenant:t1:llm_id"] == ("gpt-4o@default@OpenAI", ("t1", "OpenAI", "sk-A", "gpt-4o"))
    # t2's embedding: the sk-B instance, whose key is the legacy row's (FIX D12)
    assert refs["tenant:t2:embd_id"] == ("text-embedding-3-small@default@OpenAI",
                                         ("t2", "OpenAI", "sk-B", "text-embedding-3-small"))
    # no BAAI provider: '' (no cross-provider fallback by default, D13)
    assert refs["knowledgebase:kb2:embd_id"] == ("BAAI/bge-large-zh-v1.5@default@BAAI", "")
    # the catalogue gpt-4o is chat only: '' for vision
    assert refs["tenant:t1:img2txt_id"] == ("gpt-4o@default@OpenAI", "")
    # no '@' / disabled model: ''
    assert refs["tenant:t1:rerank_id"] == ("BAAI/bge-reranker-v2-m3", "")
    assert refs["tenant:t1:asr_id"] == ("o1@default@OpenAI", "")
    # '@' inside the model name, right-anchored and data-checked (FIX D14)
    assert refs["knowledgebase:kb3:embd_id"] == ("text-embedding-nomic-embed-text-v1.5@q8_0@LM-Studio",
                                                 ("t1", "LM-Studio", "", "text-embedding-nomic-embed-text-v1.5@q8_0"))
    legacy.check()
    reasons = {n["message"] for n in legacy._contexts[-1][1].log.notices()}
    assert any("no provider of that name" in r for r in reasons)
    assert any("no active model" in r for r in reasons)
    assert any("no provider in the value" in r for r in reasons)


def test_id_migration_replaces_int_columns_instantly_unless_a_value_would_be_lost(legacy, ragflow_schema):
    """INT tenant_*_id columns whose values are all resolved again are dropped and added back at their
    place (instant) instead of copied by MODIFY; one holding a value without a legacy name keeps it."""
    c = legacy.conn
    _spec_rows(c)
    legacy.q("UPDATE tenant SET tenant_llm_id = 7, tenant_embd_id = 8 WHERE id = 't1'")  # v0.25's startup ids
    legacy.q("UPDATE knowledgebase SET tenant_embd_id = 5")  # every kb has an embd_id: resolved again
    legacy.q("UPDATE tenant SET tts_id = '', tenant_tts_id = 9 WHERE id = 't2'")  # no legacy name: kept
    ctx = legacy.ctx()
    ds.run_all(ctx)
    statements = [e for e in ctx.log.events("step.statement") if e["step"] == "data tenant_model_id_migration"
                  and e["sql"].startswith("ALTER")]
    sqls = [e["sql"] for e in statements]
    kb = [e for e in statements if "`knowledgebase`" in e["sql"]]
    assert [e["algorithm"] for e in kb] == ["INPLACE", "INSTANT", "INPLACE"], sqls  # drop index, swap, add index
    assert "DROP COLUMN `tenant_embd_id`" in kb[1]["sql"]
    assert any("MODIFY `tenant_tts_id` VARCHAR(32) NULL" in s for s in sqls), sqls
    assert not any("MODIFY `tenant_llm_id`" in s or "MODIFY `tenant_embd_id`" in s for s in sqls), sqls
    refs = legacy.snapshot()["references"]
    assert refs["tenant:t1:llm_id"] == ("gpt-4o@default@OpenAI", ("t1", "OpenAI", "sk-A", "gpt-4o"))
    assert refs["knowledgebase:kb2:embd_id"] == ("BAAI/bge-large-zh-v1.5@default@BAAI", "")
    assert legacy.q("SELECT tenant_tts_id, tenant_asr_id FROM tenant WHERE id = 't2'") == [("9", None)]
    legacy.check()
    # the target columns are where, and what, v0.27.0 has them (the schema here is v0.26.0's otherwise)
    reference = json.loads(ragflow_schema("v0.27.0").with_suffix(".json").read_text())
    for table in ("tenant", "knowledgebase", "dialog", "memory"):
        live = legacy.q("SELECT column_name, column_type, is_nullable FROM information_schema.columns WHERE "
                        "table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position", (table,))
        names = {n for n, _t, _nl in live}
        want = [(r["column"], r["column_type"], r["is_nullable"]) for r in
                sorted(reference["columns"], key=lambda r: r["ordinal"]) if r["table"] == table and r["column"] in names]
        assert [n for n, _t, _nl in live] == [n for n, _t, _nl in want], table
        targets = {n for n, _t, _nl in want if n.startswith("tenant_") and n.endswith("_id") and n != "tenant_id"}
        assert targets and all((n, t, nl) in want for n, t, nl in live if n in targets), (table, live)
        got_idx = sorted(legacy.q("SELECT index_name, seq_in_index, column_name FROM information_schema.statistics "
                                  "WHERE table_schema = DATABASE() AND table_name = %s", (table,)))
        want_idx = sorted((r["index_name"], r["seq"], r["column"]) for r in reference["statistics"]
                          if r["table"] == table and r["column"] in targets)
        assert [i for i in got_idx if i[2] in targets] == want_idx, table


def test_id_migration_carries_on_after_a_stop_between_its_ddl_statements(legacy):
    """The replace runs as three ALTERs per table; each state between them is planned from the live schema."""
    c = legacy.conn
    _spec_rows(c)
    legacy.q("ALTER TABLE knowledgebase DROP INDEX knowledgebase_tenant_embd_id")  # stopped after the first
    legacy.q("ALTER TABLE dialog DROP INDEX dialog_tenant_llm_id, DROP INDEX dialog_tenant_rerank_id")
    legacy.q("ALTER TABLE dialog DROP COLUMN tenant_llm_id, ADD COLUMN tenant_llm_id VARCHAR(32) NULL AFTER llm_id")
    legacy.q("ALTER TABLE dialog MODIFY tenant_rerank_id VARCHAR(32) NULL")  # ... and this one after the second
    legacy.run()
    legacy.check()
    for table, column in (("knowledgebase", "tenant_embd_id"), ("dialog", "tenant_llm_id"),
                          ("dialog", "tenant_rerank_id")):
        assert ds.column_type(c, table, column) == "varchar(32)", (table, column)
        assert legacy.q("SELECT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() "
                        "AND table_name = %s AND column_name = %s", (table, column)) == [(f"{table}_{column}",)]
    assert legacy.snapshot()["references"]["knowledgebase:kb3:embd_id"][1] == (
        "t1", "LM-Studio", "", "text-embedding-nomic-embed-text-v1.5@q8_0")


def test_cross_provider_fallback_when_asked(legacy):
    _spec_rows(legacy.conn)
    ctx = legacy.ctx()
    ctx.extras["data.cross_provider_fallback"] = True
    ds.run_all(ctx)
    refs = legacy.snapshot()["references"]
    assert refs["knowledgebase:kb2:embd_id"] == ("BAAI/bge-large-zh-v1.5@default@BAAI",
                                                 ("t3", "SILICONFLOW", "sf", "BAAI/bge-large-zh-v1.5"))
    assert any("another provider" in n["message"] for n in ctx.log.notices())


# --- §1.3 marker ---------------------------------------------------------------------------------------------


def test_marker_written_per_gate_and_never_backwards(legacy):
    _spec_rows(legacy.conn)
    ctx = legacy.ctx()
    ds.run_gate(ctx, "v0.26.0")
    assert ds.marker_value(legacy.conn) == "v0.26.0"
    row = legacy.q("SELECT source, data_type, create_time, update_time FROM system_settings "
                   "WHERE name = 'mysql_migration.database.version'")[0]
    assert row[:2] == ("migration", "string") and row[2] == row[3] and row[2] % 1000 == 0
    ds.run_gate(ctx, "v0.27.0")
    assert ds.marker_value(legacy.conn) == "v0.27.0"
    legacy.q("UPDATE system_settings SET value = ' V0.28.0rc1 ' WHERE name = 'mysql_migration.database.version'")
    legacy.q("DELETE FROM ragflow_migrate_data_stage")
    ds.force_all(legacy.ctx())
    assert ds.marker_value(legacy.conn) == " V0.28.0rc1 "  # never moved backwards


def test_marker_at_gate_means_done_for_ragflow_migrated_data(legacy):
    _spec_rows(legacy.conn)
    legacy.run()
    legacy.q("DROP TABLE ragflow_migrate_data_stage")  # as if RAGFlow's own script had done the work
    assert [registry.data_steps(legacy.ctx(), g) for g in registry.GATES] == [[], []]
    legacy.q("UPDATE system_settings SET value = 'not a version' WHERE name = 'mysql_migration.database.version'")
    assert [s.stage for s in registry.data_steps(legacy.ctx(), "v0.26.0")][0] == "tenant_model_provider"
