"""The preflight: a run that cannot finish changes nothing; lossless defaults; approved widening.

Each case is a RAGFlow v0.25.6 database (schema v0.26.0 and both data gates still to run) with a
value that used to stop the upgrade halfway (exit 10 after the v0.26.0 schema and three data
stages had been written). Run through the real CLI, on both servers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import data_support as ds
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fingerprint import differences, fingerprint  # noqa: E402
from toolrun import run_tool  # noqa: E402

LONG_KEY = json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n" + "Ab+/" * 500
                       + "\\n-----END PRIVATE KEY-----\\n", "client_email": "svc@p.iam.gserviceaccount.com"})
# 127 characters: fits VARCHAR(128) as m@p, not as m@default@p
LONG_MODEL = "text-embedding-" + "x" * (127 - len("text-embedding-") - len("@OpenAI"))
LONG_REF = f"{LONG_MODEL}@OpenAI"


def _env(legacy, *flags: str) -> dict[str, str]:
    return {**legacy.env, "RAGFLOW_MIGRATE_CATALOG": str(ds.SMALL_CATALOG), "RAGFLOW_MIGRATE_TERMINATION_LOG":
            "/dev/null", **({"RAGFLOW_MIGRATE_WIDEN_COLUMNS": "true"} if "widen" in flags else {})}


def _long_key_database(legacy_at):
    legacy = legacy_at("v0.25.6")
    c = legacy.conn
    ds.tenant(c, "t1", llm_id="gpt-4o@OpenAI")
    ds.llm(c, "t1", "OpenAI", "gpt-4o", "sk-short")
    ds.tenant(c, "t2", llm_id="gemini-2.5-pro@Google Cloud")
    ds.llm(c, "t2", "Google Cloud", "gemini-2.5-pro", LONG_KEY)
    ds.llm(c, "t2", "Google Cloud", "gemini-2.5-flash", LONG_KEY, status="0")
    return legacy


def test_a_two_part_reference_that_would_not_fit_stays_two_part(legacy_at):
    legacy = legacy_at("v0.25.6")
    c = legacy.conn
    ds.tenant(c, "t1", llm_id="gpt-4o@OpenAI", embd_id=LONG_REF)
    ds.llm(c, "t1", "OpenAI", "gpt-4o", "sk-a")
    ds.llm(c, "t1", "OpenAI", LONG_MODEL, "sk-a", model_type="embedding")
    ds.insert(c, "knowledgebase", id="kb1", tenant_id="t1", name="kb", embd_id=LONG_REF, created_by="t1",
              permission="me", parser_id="naive", status="1")
    result = run_tool(_env(legacy), "run")
    assert result.code == 0, result.stdout[-3000:]
    (tenant_row,) = legacy.q("SELECT llm_id, embd_id, tenant_llm_id, tenant_embd_id FROM tenant")
    assert tenant_row[0] == "gpt-4o@default@OpenAI"
    assert tenant_row[1] == LONG_REF  # kept two-part: RAGFlow reads m@p as the instance 'default'
    assert legacy.q("SELECT embd_id FROM knowledgebase") == [(LONG_REF,)]
    # stage 7 resolves it like any other reference
    model = ds.model_row(c, tenant_row[3])
    assert model and model["model_name"] == LONG_MODEL and model["tenant"] == "t1", model
    (kb_id,) = legacy.q("SELECT tenant_embd_id FROM knowledgebase")[0]
    assert kb_id == tenant_row[3]
    notices = [e for e in result.named("step.notice") if "stay two-part" in e["message"]]
    assert {(e["message"].split(":")[0], e["count"]) for e in notices} == {("tenant.embd_id", 1),
                                                                          ("knowledgebase.embd_id", 1)}
    legacy.check()


def test_an_over_long_key_stops_at_preflight_and_changes_nothing(legacy_at):
    legacy = _long_key_database(legacy_at)
    before = fingerprint(legacy.conn)
    result = run_tool(_env(legacy), "run")
    assert result.code == 10, result.stdout[-3000:]
    assert not differences(before, fingerprint(legacy.conn))
    summary = result.summary
    assert summary["error"].startswith("preflight: tenant_model_instance.api_key (varchar(512))")
    assert "--widen-columns" in summary["hint"] and "migrate.widenColumns" in summary["hint"]
    assert "shorten" not in json.dumps(summary)
    (blocker,) = summary["blockers"]
    assert blocker["count"] == 1 and blocker["longest_chars"] == len(LONG_KEY)
    assert blocker["sample"][0]["tenant_id"] == "t2"
    assert not result.named("lock.acquired") and not result.named("step.started")
    (pre,) = result.named("preflight.finished")
    assert pre["blockers"] == 1
    # plan and status show the same blocker, and change nothing either
    plan = run_tool(_env(legacy), "plan", "--json")
    assert plan.code == 0
    assert [b["column"] for b in json.loads(plan.stdout)["blockers"]] == ["api_key"]
    assert "BLOCKER" in run_tool(_env(legacy), "plan").stdout
    status = run_tool(_env(legacy), "status", "--json")
    assert [b["column"] for b in json.loads(status.stdout)["blockers"]] == ["api_key"]
    assert not differences(before, fingerprint(legacy.conn))
    # data --execute refuses the same way
    data = run_tool(_env(legacy), "data", "--execute")
    assert data.code == 10 and not differences(before, fingerprint(legacy.conn))


def test_widen_columns_keeps_every_key_byte_for_byte(legacy_at):
    legacy = _long_key_database(legacy_at)
    plan = run_tool(_env(legacy, "widen"), "plan", "--json")
    assert [w["column"] for w in json.loads(plan.stdout)["widenings"]] == ["api_key"]
    result = run_tool(_env(legacy, "widen"), "run")
    assert result.code == 0, result.stdout[-3000:]
    keys = {k for (k,) in legacy.q("SELECT api_key FROM tenant_model_instance")}
    assert keys == {"sk-short", LONG_KEY}
    column_type = ds.column_type(legacy.conn, "tenant_model_instance", "api_key")
    assert column_type == f"varchar({len(LONG_KEY)})", column_type
    (record,) = legacy.q("SELECT table_name, column_name, before_type, after_type FROM ragflow_migrate_widening")
    assert record == ("tenant_model_instance", "api_key", "varchar(512)", column_type)
    notices = [e for e in result.named("step.notice") if "widened from" in e["message"]]
    assert [e["step"] for e in notices] == ["data tenant_model_instance"], notices
    journal = json.loads(legacy.q("SELECT detail FROM ragflow_migrate_journal WHERE step = "
                                  "'data tenant_model_instance'")[0][0])
    assert journal["widened"][0]["after"] == column_type
    legacy.check()
    again = run_tool(_env(legacy), "run")
    assert again.code == 0 and again.summary["outcome"] == "noop", again.stdout[-2000:]


def test_a_missing_catalogue_is_exit_2_before_anything(legacy_at):
    legacy = _long_key_database(legacy_at)
    before = fingerprint(legacy.conn)
    env = {**_env(legacy), "RAGFLOW_MIGRATE_CATALOG": "/nonexistent/llm_factories.json"}
    result = run_tool(env, "run")
    assert result.code == 2, result.stdout[-2000:]
    assert "/nonexistent/llm_factories.json" in result.summary["error"]
    assert not differences(before, fingerprint(legacy.conn))
    broken = Path(legacy.database.tmp_path if hasattr(legacy.database, "tmp_path") else "/tmp") / \
        f"broken-{legacy.database.name}.json"
    broken.write_text('{"factory_llm_infos": [')
    try:
        result = run_tool({**env, "RAGFLOW_MIGRATE_CATALOG": str(broken)}, "run")
    finally:
        broken.unlink()
    assert result.code == 2 and "malformed JSON" in result.summary["error"], result.stdout[-2000:]
    assert not differences(before, fingerprint(legacy.conn))


@pytest.mark.parametrize("missing", ["ALTER", "CREATE TEMPORARY TABLES"])
def test_a_missing_privilege_is_exit_4_before_anything(legacy_at, missing):
    legacy = _long_key_database(legacy_at)
    legacy.q("DELETE FROM tenant_llm WHERE tenant_id = 't2'")
    database = legacy.database
    server = database.server
    user = f"pf{missing[:3].lower()}_{database.name[-6:]}"
    grants = [p for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "CREATE TEMPORARY TABLES")
              if p != missing]
    server.create_user(user, "pw-1", [f"{', '.join(grants)} ON `{database.name}`.*"])
    before = fingerprint(legacy.conn)
    try:
        env = {**server.env(database.name, user, "pw-1"), "RAGFLOW_MIGRATE_CATALOG": str(ds.SMALL_CATALOG),
               "RAGFLOW_MIGRATE_TERMINATION_LOG": "/dev/null"}
        result = run_tool(env, "run")
    finally:
        server.drop_user(user)
    assert result.code == 4, result.stdout[-2000:]
    assert missing in result.summary["error"] and f"GRANT {missing}" in result.summary["hint"]
    assert not differences(before, fingerprint(legacy.conn))


def test_a_base_url_whose_json_outgrows_extra_is_found_before_anything(legacy_at):
    """{"base_url": …} of a 255-character api_base full of quotes is 517 characters: extra is 512."""
    legacy = legacy_at("v0.25.6")
    base = "http://h/" + '"' * 246
    ds.tenant(legacy.conn, "t1", llm_id="llama3@Ollama")
    ds.llm(legacy.conn, "t1", "Ollama", "llama3", "x", api_base=base)
    ds.llm(legacy.conn, "t1", "Ollama", "qwen", "x", api_base="http://ollama:11434")
    before = fingerprint(legacy.conn)
    result = run_tool(_env(legacy), "run")
    assert result.code == 10, result.stdout[-2000:]
    (blocker,) = result.summary["blockers"]
    assert (blocker["column"], blocker["count"], blocker["longest_chars"]) == ("extra", 1, 517)
    assert not differences(before, fingerprint(legacy.conn))
    result = run_tool(_env(legacy, "widen"), "run")
    assert result.code == 0, result.stdout[-2000:]
    bases = {json.loads(e)["base_url"] for (e,) in legacy.q("SELECT extra FROM tenant_model_instance")}
    assert bases == {base, "http://ollama:11434"}
    assert ds.column_type(legacy.conn, "tenant_model_instance", "extra") == "varchar(517)"
