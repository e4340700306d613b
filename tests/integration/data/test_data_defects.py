"""Each defect D1–D28 of the specification (§4): its trigger, and the correct behaviour."""

from __future__ import annotations

import contextlib
import json
import threading

import data_support as ds
import pymysql
import pytest

from ragflow_migrate.config import load_settings
from ragflow_migrate.data import registry, state
from ragflow_migrate.data.stages.instance import InstanceStage
from ragflow_migrate.data.stages.legacy_models import LegacyModelStage
from ragflow_migrate.data.stages.merge import MergeStage
from ragflow_migrate.data.stages.provider import ProviderStage
from ragflow_migrate.data.stages.seeding import SeedingStage
from ragflow_migrate.errors import ConfigError, DataRejectedError, StepFailedError

RICH = 5


@contextlib.contextmanager
def other_database(database, suffix: str, schema_path=None, collation: str = "utf8mb4_unicode_ci"):
    """A second database on the same server (the fixture gives one per test); dropped afterwards."""
    name = f"{database.name[:56]}_{suffix}"
    database.server.create_database(name, collation=collation)
    contexts = []
    try:
        other = type(database)(name=name, server=database.server, env=database.server.env(name))
        if schema_path is not None:
            ds.load_schema(other, schema_path, collation=None if collation == "utf8mb4_unicode_ci" else collation)
        conn = other.connect(charset="utf8mb4")
        contexts.append(conn)
        yield conn, other.env
    finally:
        for conn in contexts:
            conn.close()
        database.server.drop_database(name)


def _normal_snapshot(legacy_at, rows=ds.rich_rows):
    """The reference end state: the intended path (v0.26 schema, then every stage)."""
    db = legacy_at("v0.26.0")
    rows(db.conn)
    db.run()
    db.check()
    snap = db.snapshot()
    return snap


def _comparable(snap):
    return {k: v for k, v in snap.items() if k not in ("json", "model_type_is_int")}


# --- D1 ---------------------------------------------------------------------------------------------------


def test_d1_database_collation_differs_from_the_server_default(database, ragflow_schema):
    with other_database(database, "gci", ragflow_schema("v0.26.0"), collation="utf8mb4_general_ci") as (conn, env):
        ds.spec_rows(conn)
        ds.run_all(ds.open_ctx(env))  # RAGFlow fails here with 1267 in stage 7
        ds.check_acceptance(conn)
        coll = dict(ds._q(conn, "SELECT table_name, table_collation FROM information_schema.tables "
                          "WHERE table_schema = DATABASE() AND table_name LIKE 'tenant_model%%'"))
        assert coll["tenant_model"] == coll["tenant_model_provider"] == "utf8mb4_general_ci"


def test_d1_repairs_the_table_ragflow_merge_built(legacy, server):
    """RAGFlow's merge swapped in its own table (server collation, its index names and defaults) and
    stage 7 then failed: we rebuild tenant_model as v0.27.0 defines it and finish."""
    ds.spec_rows(legacy.conn)
    ctx = legacy.ctx()
    ds.run_gate(ctx, "v0.26.0")
    SeedingStage().apply(ctx)
    legacy.q("DROP TABLE IF EXISTS ragflow_migrate_data_stage")
    other = "utf8mb4_general_ci"
    legacy.q(f"""CREATE TABLE tenant_model_merge_tmp (id VARCHAR(32) NOT NULL PRIMARY KEY, model_name VARCHAR(128),
        provider_id VARCHAR(32) NOT NULL, instance_id VARCHAR(32) NOT NULL, model_type INT NOT NULL,
        status VARCHAR(32) DEFAULT 'active', extra VARCHAR(1024) DEFAULT '{{}}', create_time BIGINT,
        create_date TIMESTAMP NULL, update_time BIGINT, update_date TIMESTAMP NULL, INDEX idx_instance_id (instance_id)
        ) DEFAULT CHARSET=utf8mb4 COLLATE={other}""")
    legacy.q("INSERT INTO tenant_model_merge_tmp (id, model_name, provider_id, instance_id, model_type, status, extra,"
             " create_time) SELECT MIN(id), model_name, provider_id, instance_id, 1, 'active', MIN(extra), 1 "
             "FROM tenant_model WHERE status = 'active' GROUP BY provider_id, instance_id, model_name")
    legacy.q("RENAME TABLE tenant_model TO tenant_model_backup, tenant_model_merge_tmp TO tenant_model")
    assert registry.data_steps(legacy.ctx(), "v0.27.0")  # marker v0.26.0: pending
    ds.run_all(legacy.ctx())
    coll = dict(legacy.q("SELECT table_name, table_collation FROM information_schema.tables "
                         "WHERE table_schema = DATABASE() AND table_name IN ('tenant_model', 'tenant_model_provider')"))
    assert coll["tenant_model"] == coll["tenant_model_provider"]
    live = legacy.q("SHOW CREATE TABLE tenant_model")[0][1] + ";"
    assert live == ds.table_sql(legacy.schema("v0.27.0"), "tenant_model")
    assert ds.has_table(legacy.conn, "tenant_model_backup")  # RAGFlow's backup is never dropped
    assert ds.marker_value(legacy.conn) == "v0.27.0"


# --- D2, D3 ---------------------------------------------------------------------------------------------------


def test_d2_missing_tenant_model_after_ragflow_crash_is_an_error(legacy):
    ds.spec_rows(legacy.conn)
    ctx = legacy.ctx()
    ds.run_gate(ctx, "v0.26.0")
    SeedingStage().apply(ctx)
    before = legacy.q("SELECT COUNT(*) FROM tenant_model")[0][0]
    legacy.q("RENAME TABLE tenant_model TO tenant_model_backup")  # crash between RAGFlow's renames
    with pytest.raises(StepFailedError, match="interrupted between its renames") as info:
        MergeStage().apply(legacy.ctx())
    assert "RENAME TABLE tenant_model_backup TO tenant_model" in info.value.hint
    assert legacy.q("SELECT COUNT(*) FROM tenant_model_backup")[0][0] == before  # user data intact
    legacy.q("RENAME TABLE tenant_model_backup TO tenant_model")
    ds.run_all(legacy.ctx())
    legacy.check()


def test_d2_swap_is_atomic_with_unique_backups(legacy):
    ds.spec_rows(legacy.conn)
    ctx = legacy.ctx()
    ds.run_gate(ctx, "v0.26.0")
    SeedingStage().apply(ctx)
    rows = legacy.q("SELECT COUNT(*) FROM tenant_model")[0][0]
    ctx.log = ds.ListLog()
    MergeStage().apply(ctx)
    statements = [e["sql"] for e in ctx.log.events("step.statement") if "RENAME" in e["sql"]]
    assert len(statements) == 1 and statements[0].count(" TO ") == 2  # one statement, both names
    backups = [t for t in legacy.q("SHOW TABLES") if t[0].startswith("ragflow_migrate_bak_tenant_model_")]
    assert len(backups) == 1
    assert legacy.q(f"SELECT COUNT(*) FROM `{backups[0][0]}`")[0][0] == rows
    MergeStage().apply(legacy.ctx())  # again: INT now, nothing to swap, no backup dropped
    assert [t for t in legacy.q("SHOW TABLES") if t[0].startswith("ragflow_migrate_bak_")] == backups


def test_d3_leftover_tmp_tables_are_rebuilt_not_appended(legacy):
    ds.spec_rows(legacy.conn)
    ctx = legacy.ctx()
    ds.run_gate(ctx, "v0.26.0")
    SeedingStage().apply(ctx)
    legacy.q("CREATE TABLE tenant_model_merge_tmp LIKE tenant_model")
    legacy.q("INSERT INTO tenant_model_merge_tmp SELECT * FROM tenant_model")
    legacy.q("CREATE TABLE ragflow_migrate_tmp_tenant_model LIKE tenant_model")
    legacy.q("INSERT INTO ragflow_migrate_tmp_tenant_model SELECT * FROM tenant_model")
    ds.run_all(legacy.ctx())
    legacy.check()
    assert not ds.has_table(legacy.conn, "tenant_model_merge_tmp")
    assert not ds.has_table(legacy.conn, "ragflow_migrate_tmp_tenant_model")


# --- D4 -------------------------------------------------------------------------------------------------------


def test_d4_direct_v025_to_v027_startup_first(legacy_at, database, ragflow_schema):
    """RAGFlow v0.27 started on a v0.25 database before any data migration: model_type is INT."""
    reference = _normal_snapshot(legacy_at)
    with other_database(database, "d4") as (conn, env):
        ds.v27_startup_over_v25(_Db(database, conn), ragflow_schema)
        ds.rich_rows(conn)
        ds.run_all(ds.open_ctx(env))
        ds.check_acceptance(conn)
        assert _comparable(ds.snapshot(conn)) == _comparable(reference), ds.diff(_comparable(ds.snapshot(conn)), _comparable(reference))


class _Db:
    """load_sql() into the database ``conn`` is connected to."""

    def __init__(self, database, conn) -> None:
        self.server, self.name = database.server, conn.db.decode()

    def load_sql(self, text) -> int:
        return self.server.load_sql(self.name, text)


def test_d4_after_ragflow_broken_run(legacy_at, database, ragflow_schema):
    """RAGFlow's own script ran on it too: types 0, seeding and merge skipped, every id '', marker v0.27.0."""
    reference = _normal_snapshot(legacy_at)
    with other_database(database, "d4b") as (conn, env):
        ds.v27_startup_over_v25(_Db(database, conn), ragflow_schema)
        ds.rich_rows(conn)
        ctx = ds.open_ctx(env)
        for stage in registry.stages_of("v0.26.0"):
            stage.apply(ctx)
        # what RAGFlow's D4 run leaves: disabled and custom rows with type 0 ...
        ds._q(conn, "DELETE FROM tenant_model")
        LegacyModelStage().apply(ctx)
        ds._q(conn, "UPDATE tenant_model SET model_type = 0")
        ds._q(conn, "INSERT INTO tenant_model (id, model_name, provider_id, instance_id, model_type, status, extra) "
                    "SELECT REPLACE(UUID(), '-', ''), s.llm_name, p.id, i.id, 0, 'inactive', '{}' FROM tenant_llm s "
                    "JOIN tenant_model_provider p ON p.tenant_id = s.tenant_id AND p.provider_name = s.llm_factory "
                    "JOIN tenant_model_instance i ON i.provider_id = p.id WHERE s.status = '0' "
                    "AND i.api_key = COALESCE(s.api_key, '') AND s.llm_name IS NOT NULL")
        # ... the columns converted with every id '', and the marker at v0.27.0
        for table, pairs in (("tenant", (("tenant_llm_id", "llm_id"), ("tenant_embd_id", "embd_id"),
                                         ("tenant_asr_id", "asr_id"), ("tenant_img2txt_id", "img2txt_id"),
                                         ("tenant_rerank_id", "rerank_id"), ("tenant_tts_id", "tts_id"))),
                             ("knowledgebase", (("tenant_embd_id", "embd_id"),)),
                             ("dialog", (("tenant_llm_id", "llm_id"), ("tenant_rerank_id", "rerank_id"))),
                             ("memory", (("tenant_embd_id", "embd_id"), ("tenant_llm_id", "llm_id")))):
            ds._q(conn, f"ALTER TABLE {table} " + ", ".join(f"MODIFY {c} VARCHAR(32) NULL" for c, _l in pairs))
            ds._q(conn, f"UPDATE {table} SET " + ", ".join(f"{c} = IF(COALESCE({lg}, '') <> '', '', {c})"
                                                           for c, lg in pairs))
        ds._q(conn, "ALTER TABLE tenant ADD COLUMN tenant_ocr_id VARCHAR(32) NULL, ADD INDEX tenant_tenant_ocr_id "
                    "(tenant_ocr_id)")
        ds._q(conn, "DROP TABLE ragflow_migrate_data_stage")
        ds._q(conn, "INSERT INTO system_settings (name, source, data_type, value) VALUES "
                    "('mysql_migration.database.version', 'migration', 'string', 'v0.27.0') "
                    "ON DUPLICATE KEY UPDATE value = 'v0.27.0'")
        pending = [s.stage for g in registry.GATES for s in registry.data_steps(ds.open_ctx(env), g)]
        assert "tenant_model_seeding" in pending and "tenant_model_id_migration" in pending
        ds.run_all(ds.open_ctx(env))
        ds.check_acceptance(conn)
        assert _comparable(ds.snapshot(conn)) == _comparable(reference), ds.diff(_comparable(ds.snapshot(conn)), _comparable(reference))


def test_d4_mysql_real_upgrade_state(legacy_at, ragflow_schema):
    """On MySQL, the state RAGFlow v0.27.0's own startup left on a v0.25.0 database (recorded)."""
    db = legacy_at("v0.25.0", kind="upgrade")
    ds.spec_rows(db.conn)
    db.run()
    db.check()
    assert ds.column_type(db.conn, "tenant", "tenant_ocr_id") == "varchar(32)"


# --- D5 -------------------------------------------------------------------------------------------------------


def test_d5_tenant_llm_without_id(legacy_at, database, ragflow_schema):
    reference = _normal_snapshot(legacy_at)
    with other_database(database, "d5", ragflow_schema("v0.24.0")) as (conn, env):
        fresh26 = ragflow_schema("v0.26.0")
        for table in ds.MODEL_TABLES:
            _Db(database, conn).load_sql(ds.table_sql(fresh26, table))
        ds._q(conn, "ALTER TABLE tenant ADD COLUMN ocr_id VARCHAR(256) NULL")
        assert not ds.has_column(conn, "tenant_llm", "id")
        ds.rich_rows(conn)
        ds.run_all(ds.open_ctx(env))
        ds.check_acceptance(conn)
        assert _comparable(ds.snapshot(conn)) == _comparable(reference), ds.diff(_comparable(ds.snapshot(conn)), _comparable(reference))
        for table, col in (("tenant", "tenant_llm_id"), ("dialog", "tenant_rerank_id"),
                           ("knowledgebase", "tenant_embd_id"), ("tenant", "tenant_ocr_id")):
            assert ds.column_type(conn, table, col) == "varchar(32)"
            assert ds._q(conn, "SELECT 1 FROM information_schema.statistics WHERE table_schema = DATABASE() "
                         "AND table_name = %s AND index_name = %s", (table, f"{table}_{col}"))


# --- D6, D7 ----------------------------------------------------------------------------------------------------


def test_d6_overlong_key_is_rejected_before_anything_is_written(legacy):
    ds.tenant(legacy.conn, "t1")
    ds.llm(legacy.conn, "t1", "OpenAI", "gpt-4o", "k" * 600)
    ds.llm(legacy.conn, "t1", "OpenAI", "o1", "short")
    ctx = legacy.ctx()
    ProviderStage().apply(ctx)
    tid = legacy.q("SELECT id FROM tenant_llm WHERE llm_name = 'gpt-4o'")[0][0]
    with pytest.raises(DataRejectedError) as info:
        InstanceStage().apply(ctx)
    err = info.value
    assert "tenant_model_instance.api_key" in err.message and "512" in err.message
    assert err.details["table"] == "tenant_model_instance" and err.details["column"] == "api_key"
    assert err.details["rows"][0]["tenant_llm.id"] == tid
    assert legacy.q("SELECT COUNT(*) FROM tenant_model_instance")[0][0] == 0  # not even the fitting one
    plan = InstanceStage().plan(legacy.ctx())
    assert any("REJECTED" in n for n in plan.notes)
    legacy.q("UPDATE tenant_llm SET api_key = 'fixed' WHERE llm_name = 'gpt-4o'")
    InstanceStage().apply(legacy.ctx())
    assert legacy.q("SELECT COUNT(*) FROM tenant_model_instance")[0][0] == 2


NASTY = ["sk\\s", "a\\nb", "x\\'); DROP TABLE tenant; --", "q'uote\"d", "ünïcødé ✓", "tab\there"]


def test_d7_backslashes_and_quotes_are_stored_byte_for_byte(legacy):
    ds.tenant(legacy.conn, "t1")
    for i, key in enumerate(NASTY):
        ds.llm(legacy.conn, "t1", "Ollama", f"m{i}{key}"[:100], key, api_base=f"http://h/{key}")
    legacy.run()
    legacy.check()
    keys = sorted(i["api_key"] for i in ds.instances(legacy.conn))
    assert keys == sorted(NASTY)
    names = sorted(m["model_name"] for m in ds.models(legacy.conn))
    assert names == sorted(f"m{i}{k}"[:100] for i, k in enumerate(NASTY))
    bases = sorted(json.loads(i["extra"])["base_url"] for i in ds.instances(legacy.conn))
    assert bases == sorted(f"http://h/{k}" for k in NASTY)
    assert ds.has_table(legacy.conn, "tenant")


# --- D8, D9 ----------------------------------------------------------------------------------------------------


def test_d8_rerun_without_marker_or_record_changes_nothing(legacy):
    ds.rich_rows(legacy.conn)
    legacy.run()
    before = legacy.snapshot()
    legacy.q("DELETE FROM system_settings WHERE name = 'mysql_migration.database.version'")
    legacy.q("DROP TABLE ragflow_migrate_data_stage")
    ds.force_all(legacy.ctx())
    assert legacy.snapshot() == before
    legacy.check()


def test_d8_existing_is_tools_variant_instance_is_reused(legacy):
    c = legacy.conn
    ds.tenant(c, "t1")
    ds.llm(c, "t1", "OpenAI", "gpt-4o", "sk-A")
    ds.llm(c, "t1", "OpenAI", "o1", None, status="0")
    ctx = legacy.ctx()
    ProviderStage().apply(ctx)
    pid = legacy.q("SELECT id FROM tenant_model_provider")[0][0]
    for key in ('{"api_key": "sk-A", "is_tools": true}', ""):  # written by RAGFlow, exact keys
        ds.insert(c, "tenant_model_instance", id=f"i{len(key):031d}", instance_name="default", provider_id=pid,
                  api_key=key, status="active", extra="")
    InstanceStage().apply(ctx)
    assert legacy.q("SELECT COUNT(*) FROM tenant_model_instance")[0][0] == 2


def test_d9_null_key_custom_model_is_migrated(legacy):
    ds.tenant(legacy.conn, "t3", llm_id="qwen-local@Xinference")
    ds.llm(legacy.conn, "t3", "Xinference", "qwen-local", None)
    legacy.run()
    legacy.check()
    assert legacy.snapshot()["references"]["tenant:t3:llm_id"][1] == ("t3", "Xinference", "", "qwen-local")


# --- D10, D11 ----------------------------------------------------------------------------------------------------


def test_d10_d11_status_and_extra_stay_within_their_group(legacy):
    c = legacy.conn
    for t in ("t1", "t2", "t3"):
        ds.tenant(c, t)
    ds.llm(c, "t1", "OpenAI", "whisper-1", "k1", status="0", model_type="speech2text")
    ds.llm(c, "t2", "OpenAI", "gpt-4o", "k2")
    ds.llm(c, "t3", "FuturMix", "custom", '{"api_key": "k3", "is_tools": true}')
    ctx = legacy.ctx()
    ds.run_gate(ctx, "v0.26.0")
    # a row written by the v0.26 app into t2's instance, with its own extra: reused for that group only
    inst = legacy.q("SELECT i.id, i.provider_id FROM tenant_model_instance i JOIN tenant_model_provider p "
                    "ON p.id = i.provider_id WHERE p.tenant_id = 't2'")[0]
    ds.insert(c, "tenant_model", id="x" * 32, model_name="gpt-4o-mini", provider_id=inst[1], instance_id=inst[0],
              model_type="chat", status="active", extra='{"max_tokens": 1000}')
    ds.run_gate(ctx, "v0.27.0")
    rows = {(m["tenant"], m["model_name"]): m for m in ds.models(c)}
    assert ("t1", "whisper-1") not in rows                       # disabled by t1: gone for t1 only
    assert rows[("t2", "whisper-1")]["status"] == "active"        # FIX D10
    assert rows[("t2", "gpt-4o-mini")]["extra"] == '{"max_tokens": 1000}'  # same-group reuse (D11)
    assert rows[("t2", "gpt-4o-mini")]["model_type"] == 9
    assert rows[("t2", "gpt-4o")]["extra"] == '{"is_tools": true, "max_tokens": 128000}'  # catalogue
    assert rows[("t3", "custom")]["extra"] == '{"is_tools": true, "max_tokens": 8192}'


# --- D12, D13, D14 ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [0, 1])
def test_d12_reference_binds_to_the_legacy_rows_instance(legacy, order):
    c = legacy.conn
    keys = ["sk-Z", "sk-A"] if order else ["sk-A", "sk-Z"]
    ds.tenant(c, "t2", embd_id="text-embedding-3-small@OpenAI", llm_id="gpt-4o@OpenAI")
    ds.llm(c, "t2", "OpenAI", "text-embedding-3-small", keys[0], model_type="embedding")
    ds.llm(c, "t2", "OpenAI", "gpt-4o", keys[1])
    legacy.run()
    refs = legacy.snapshot()["references"]
    assert refs["tenant:t2:embd_id"][1] == ("t2", "OpenAI", keys[0], "text-embedding-3-small")
    assert refs["tenant:t2:llm_id"][1] == ("t2", "OpenAI", keys[1], "gpt-4o")


def test_d13_no_silent_rebinding_and_unique_candidates_only(legacy):
    c = legacy.conn
    ds.tenant(c, "t1", embd_id="BAAI/bge-large-zh-v1.5@BAAI", llm_id="gpt-4o@Gone")
    ds.llm(c, "t1", "SILICONFLOW", "BAAI/bge-large-zh-v1.5", "sf", model_type="embedding")
    ds.llm(c, "t1", "OpenAI", "gpt-4o", "k1")
    ds.llm(c, "t1", "FuturMix", "gpt-4o", "k2")
    ctx = legacy.ctx()
    ds.run_all(ctx)
    refs = legacy.snapshot()["references"]
    assert refs["tenant:t1:embd_id"][1] == "" and refs["tenant:t1:llm_id"][1] == ""
    assert any("no provider of that name" in n["message"] for n in ctx.log.notices())
    legacy.q("UPDATE tenant SET tenant_embd_id = NULL, tenant_llm_id = NULL")
    on = legacy.ctx()
    on.extras["data.cross_provider_fallback"] = True
    registry.stages_of("v0.27.0")[-1].apply(on)
    refs = legacy.snapshot()["references"]
    assert refs["tenant:t1:embd_id"][1] == ("t1", "SILICONFLOW", "sf", "BAAI/bge-large-zh-v1.5")
    assert refs["tenant:t1:llm_id"][1] == ""  # two candidates (OpenAI, FuturMix): no guess


def test_d14_at_sign_inside_model_names(legacy):
    c = legacy.conn
    ds.tenant(c, "t1", embd_id="emb@q8_0@LM-Studio", llm_id="a@b@LM-Studio")
    ds.llm(c, "t1", "LM-Studio", "emb@q8_0", "", model_type="embedding")
    ds.llm(c, "t1", "LM-Studio", "a@b", "")
    legacy.run()
    refs = legacy.snapshot()["references"]
    assert refs["tenant:t1:embd_id"] == ("emb@q8_0@LM-Studio", ("t1", "LM-Studio", "", "emb@q8_0"))
    assert refs["tenant:t1:llm_id"] == ("a@b@LM-Studio", ("t1", "LM-Studio", "", "a@b"))


# --- D15, D16, D17 ------------------------------------------------------------------------------------------------


def test_d15_api_base_is_kept_and_splits_instances(legacy):
    c = legacy.conn
    ds.tenant(c, "t1", llm_id="llama3@Ollama", embd_id="nomic@Ollama")
    ds.llm(c, "t1", "Ollama", "llama3", "k", api_base="http://gpu-a:11434")
    ds.llm(c, "t1", "Ollama", "nomic", "k", api_base="http://gpu-b:11434", model_type="embedding")
    legacy.run()
    legacy.check()
    insts = sorted((i["name"], i["api_key"], i["extra"]) for i in ds.instances(c))
    assert insts == [("default", "k", '{"base_url": "http://gpu-a:11434"}'),
                     ("default", "k", '{"base_url": "http://gpu-b:11434"}')]
    by_id = {m["id"]: m for m in ds.models(c)}
    llm_id, embd_id = legacy.q("SELECT tenant_llm_id, tenant_embd_id FROM tenant")[0]
    assert by_id[llm_id]["instance_extra"] == '{"base_url": "http://gpu-a:11434"}'
    assert by_id[embd_id]["instance_extra"] == '{"base_url": "http://gpu-b:11434"}'


def test_d16_custom_max_tokens_is_kept(legacy):
    ds.tenant(legacy.conn, "t1")
    ds.llm(legacy.conn, "t1", "Ollama", "big", "k", max_tokens=131072)
    legacy.run()
    assert [m["extra"] for m in ds.models(legacy.conn)] == ['{"max_tokens": 131072}']


def test_d17_enabled_non_catalogue_models_are_migrated(legacy):
    c = legacy.conn
    ds.tenant(c, "t1", llm_id="my-azure-deployment@OpenAI", rerank_id="retired@OldFactory")
    ds.llm(c, "t1", "OpenAI", "my-azure-deployment", "k")
    ds.llm(c, "t1", "OldFactory", "retired", "k", model_type="rerank")
    legacy.run()
    legacy.check()
    refs = legacy.snapshot()["references"]
    assert refs["tenant:t1:llm_id"][1] == ("t1", "OpenAI", "k", "my-azure-deployment")
    assert refs["tenant:t1:rerank_id"][1] == ("t1", "OldFactory", "k", "retired")


# --- D18 is in test_data_dryrun.py; D19, D20 -------------------------------------------------------------------


def test_d19_unknown_stage_name_is_a_config_error():
    with pytest.raises(ConfigError, match="tenant_model_seding") as info:
        registry.select(["tenant_model_provider", "tenant_model_seding"])
    assert "tenant_model_seeding" in (info.value.hint or "")
    assert info.value.exit_code == 2


def test_d20_unreadable_config_fails_fast(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"config": str(tmp_path / "missing.yaml")}, environ={})


# --- D21 ---------------------------------------------------------------------------------------------------------


def test_d21_statement_count_does_not_grow_with_rows(database, ragflow_schema):
    counts = []
    for tenants in (30, 90):  # enough tenants for every kind of column and value to occur in both
        with other_database(database, f"s{tenants}", ragflow_schema("v0.26.0")) as (conn, env):
            ds.rich_rows(conn, tenants=tenants)
            ctx = ds.open_ctx(env, batch_size=100000)
            ds.run_all(ctx)
            counts.append(len(ctx.log.events("step.statement")))
            ds.check_acceptance(conn)
            ctx.conn.close()
    assert counts[0] == counts[1], counts


# --- D22 ---------------------------------------------------------------------------------------------------------


def test_d22_concurrent_runners_do_not_duplicate(legacy):
    from ragflow_migrate.data import commands

    ds.rich_rows(legacy.conn)
    results, errors = [], []

    def runner():
        try:
            settings = ds.settings_for(legacy.env, lock_timeout="60")
            ctx = ds.open_ctx(legacy.env, lock_timeout="60")
            summary: dict = {}
            try:
                commands._execute(ctx, None, summary)
            finally:
                ctx.conn.close()
            results.append((settings.lock_name, summary["outcome"]))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=runner) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(o for _n, o in results) == ["migrated", "noop", "noop"]
    legacy.check()


# --- D23, D24 ------------------------------------------------------------------------------------------------------


def test_d23_done_is_a_record_not_a_scan(legacy):
    ds.rich_rows(legacy.conn, tenants=20)
    legacy.run()
    ctx = legacy.ctx()
    seen = []
    original = ctx.conn.query

    def counting(sql, *a, **k):
        seen.append(sql)
        return original(sql, *a, **k)

    ctx.conn.query = counting
    assert registry.nothing_pending(ctx)
    # per gate: one read of our record and one of RAGFlow's marker (a kill may fall between them)
    assert len(seen) <= 4, seen
    assert all("ragflow_migrate_data_stage" in s or "system_settings" in s for s in seen), seen
    assert all("tenant_llm" not in s for s in seen)
    assert LegacyModelStage().plan(legacy.ctx()).counts["models_to_create"] == 0  # stage 3 does report done


def test_d24_missing_system_settings_fails_loudly(legacy):
    ds.spec_rows(legacy.conn)
    legacy.q("DROP TABLE system_settings")
    ctx = legacy.ctx()
    with pytest.raises(StepFailedError, match="system_settings does not exist"):
        ds.run_gate(ctx, "v0.26.0")
    records = state.read(legacy.conn)
    assert all(records[s]["status"] == "finished" for s in registry.STAGE_NAMES[:4])


def test_d24_marker_only_after_every_stage_of_the_gate(legacy):
    ds.spec_rows(legacy.conn)
    ctx = legacy.ctx()
    for stage in registry.stages_of("v0.26.0")[:3]:
        stage.apply(ctx)
        assert ds.marker_value(legacy.conn) is None
    registry.stages_of("v0.26.0")[3].apply(ctx)
    assert ds.marker_value(legacy.conn) == "v0.26.0"


# --- D25, D26, D27, D28 ----------------------------------------------------------------------------------------------


def _d25_instance(legacy, factory: str, name: str, rows, mapped: str):
    """One tenant with one instance of ``factory``; its tenant_model replaced by ``rows`` (id, name, type),
    and a group mapping row naming ``mapped``. Returns the context."""
    c = legacy.conn
    ds.tenant(c, "t1")
    ds.llm(c, "t1", factory, name, "k")
    ctx = legacy.ctx()
    ds.run_gate(ctx, "v0.26.0")
    pid, iid = legacy.q("SELECT provider_id, id FROM tenant_model_instance")[0]
    legacy.q("DELETE FROM tenant_model")
    for mid, model, mtype in rows:
        ds.insert(c, "tenant_model", id=mid, model_name=model, provider_id=pid, instance_id=iid, model_type=mtype,
                  status="active", extra="{}", create_time=1700000000000)
    ds.insert(c, "tenant_model_group_mapping", group_id="g", provider_id=pid, instance_id=iid, model_id=mapped,
              weight=1, status="active")
    return ctx


def test_d25_merge_keeps_ids_remaps_group_mapping_and_null_names(legacy):
    c = legacy.conn
    ctx = _d25_instance(legacy, "OpenAI-API-Compatible", "m",
                        (("a" * 32, "m", "chat"), ("b" * 32, "m", "vision"), ("c" * 32, None, "embedding")), "b" * 32)
    MergeStage().apply(ctx)
    rows = sorted((m["id"], m["model_name"], m["model_type"]) for m in ds.models(c))
    assert rows == [("a" * 32, "m", 9), ("c" * 32, None, 2)]  # first row's id kept; NULL stays NULL
    assert legacy.q("SELECT model_id FROM tenant_model_group_mapping") == [("a" * 32,)]


def test_d25_a_stop_before_the_swap_leaves_the_mapping_valid(legacy, monkeypatch):
    """The merge also writes seeding's rows (new ids on every run): a group keeps its row that was already in
    tenant_model, so a mapping remapped before a stop between remap and swap still names a row after the re-run."""
    c = legacy.conn
    # gpt-4o-mini is chat and image2text in the catalogue: seeding adds the image2text row
    ctx = _d25_instance(legacy, "OpenAI", "gpt-4o", (("e" * 32, "gpt-4o-mini", "chat"),
                                                     ("f" * 32, "gpt-4o-mini", "chat")), "f" * 32)

    def stop(*_a, **_k):
        raise RuntimeError("stopped before the swap")

    monkeypatch.setattr(MergeStage, "_swap", stop)
    with pytest.raises(RuntimeError):
        MergeStage().apply(ctx)
    assert legacy.q("SELECT model_id FROM tenant_model_group_mapping") == [("e" * 32,)]  # remapped, not swapped
    monkeypatch.undo()
    MergeStage().apply(ctx)
    kept = {m["model_name"]: (m["id"], m["model_type"]) for m in ds.models(c)}
    assert kept["gpt-4o-mini"] == ("e" * 32, 9)  # the seeded image2text row merged into the existing one
    assert legacy.q("SELECT model_id FROM tenant_model_group_mapping") == [("e" * 32,)]


def test_d26_keys_differing_by_case_or_trailing_space_are_distinct(legacy):
    c = legacy.conn
    ds.tenant(c, "t1")
    for i, key in enumerate(("sk-a", "SK-A", "sk-a ")):
        ds.llm(c, "t1", "Ollama", f"m{i}", key)
    legacy.run()
    legacy.check()
    assert sorted(i["api_key"] for i in ds.instances(c)) == sorted(["sk-a", "SK-A", "sk-a "])


def test_d27_picks_are_deterministic(database, ragflow_schema):
    snaps = []
    rows = [("z-model", '{"api_key": "sk", "is_tools": true}'), ("a-model", '{"api_key": "sk", "is_tools": false}'),
            ("m-model", "sk")]
    for reverse in (False, True):
        with other_database(database, f"r{int(reverse)}", ragflow_schema("v0.26.0")) as (conn, env):
            ds.tenant(conn, "t1")
            for name, key in (reversed(rows) if reverse else rows):
                ds.llm(conn, "t1", "Ollama", name, key)
            ds.run_all(ds.open_ctx(env))
            snaps.append(ds.snapshot(conn))
            assert [i["api_key"] for i in ds.instances(conn)] == ["sk"]  # the key without is_tools
    assert snaps[0] == snaps[1]


def test_d28_rows_of_a_hand_run_v025_script_are_normalised(legacy):
    c = legacy.conn
    ds.tenant(c, "t1", llm_id="gpt-4o@OpenAI", embd_id="emb@Ollama")
    ds.llm(c, "t1", "OpenAI", "gpt-4o", "sk")
    ds.llm(c, "t1", "Ollama", "emb", "ok", model_type="embedding")
    ctx = legacy.ctx()
    ProviderStage().apply(ctx)
    provs = {name: pid for pid, (_t, name) in ds.providers(c).items()}
    ds.insert(c, "tenant_model_instance", id="i" * 32, instance_name="OpenAI", provider_id=provs["OpenAI"],
              api_key="sk", status="1", extra="", create_time=1700000000, update_time=1700000000)
    ds.insert(c, "tenant_model_instance", id="j" * 32, instance_name="Ollama", provider_id=provs["Ollama"],
              api_key="ok", status="1", extra="", create_time=1700000000, update_time=1700000000)
    ds.insert(c, "tenant_model", id="m" * 32, model_name="emb", provider_id=provs["Ollama"], instance_id="j" * 32,
              model_type="embedding", status="1", extra="{}", create_time=1700000000)
    ds.run_all(ctx)
    legacy.check()
    insts = sorted((i["provider"], i["name"], i["status"]) for i in ds.instances(c))
    assert insts == [("Ollama", "default", "active"), ("OpenAI", "default", "active")]
    assert legacy.q("SELECT create_time FROM tenant_model_instance WHERE id = %s", ("i" * 32,))[0][0] == 1700000000000
    refs = legacy.snapshot()["references"]
    assert refs["tenant:t1:embd_id"][1] == ("t1", "Ollama", "ok", "emb")
    assert refs["tenant:t1:llm_id"][1] == ("t1", "OpenAI", "sk", "gpt-4o")


def test_connection_is_strict(legacy):
    ctx = legacy.ctx()
    mode = ds._q(ctx.conn, "SELECT @@SESSION.sql_mode")[0][0]
    assert "STRICT_ALL_TABLES" in mode
    with pytest.raises(pymysql.err.DataError):
        ds._q(ctx.conn, "INSERT INTO tenant_model_provider (id, provider_name, tenant_id) VALUES (%s, 'x', 't')",
              ("y" * 40,))
