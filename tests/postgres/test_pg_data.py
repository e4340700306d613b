"""The model-data migration on PostgreSQL: the real CLI (a subprocess) against a real PostgreSQL 15.

Legacy rows go into RAGFlow's own PostgreSQL schemas (v0.25.6, v0.20.0: no ``tenant_llm.id``, D5),
``ragflow-migrate run`` migrates schema and data to v0.27.0, and the end state is read back
normalised (ids replaced by what they point at) and checked against the specification's worked
examples (docs/ragflow-data-migration.md §3), the same ones the MySQL suite checks
(tests/integration/data/test_data_examples.py). Also: a second run changes nothing, ``plan``
changes nothing, a SIGKILL mid-stage then a rerun ends in the same state, and a value too long
for its column stops the run with exit 10 before any write.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from integration.toolrun import run_tool
from servers import harness, postgres

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)

REFERENCE = harness.schema_root() / postgres.LABEL
CATALOG = Path(__file__).resolve().parents[1] / "data" / "llm_factories.small.json"
VOLC_KEY = '{"ark_api_key":"k","endpoint_id":"e","is_tools":true}'
OWN_TABLES = ("ragflow_migrate_",)


# --- building databases ----------------------------------------------------------------------------


def _env(pg_server, db: str, **extra: str) -> dict[str, str]:
    return {**pg_server.env(db), "RAGFLOW_MIGRATE_CATALOG": str(CATALOG), "RAGFLOW_MIGRATE_TERMINATION_LOG": os.devnull,
            **extra}


def _connect(pg_server, db: str) -> psycopg.Connection:
    return psycopg.connect(host=pg_server.host, port=pg_server.port, user="postgres", dbname=db, autocommit=True)


_DEFAULTS: dict[tuple[str, str], dict[str, Any]] = {}


def insert(conn: psycopg.Connection, table: str, **values: Any) -> None:
    """One row; NOT NULL columns the test does not name get a neutral value."""
    key = (conn.info.dbname, table)
    if key not in _DEFAULTS:
        rows = conn.execute("SELECT column_name, data_type, column_default FROM information_schema.columns "
                            "WHERE table_schema = 'public' AND table_name = %s AND is_nullable = 'NO'",
                            (table,)).fetchall()
        out: dict[str, Any] = {}
        for name, data_type, default in rows:
            if default is not None:
                continue  # serial ids
            if data_type in ("integer", "bigint", "smallint", "double precision", "numeric", "real"):
                out[name] = 0
            elif data_type.startswith("timestamp") or data_type == "date":
                out[name] = "2024-01-01 00:00:00"
            elif data_type == "boolean":
                out[name] = False
            elif data_type == "text":
                out[name] = "{}"
            else:
                out[name] = ""
        _DEFAULTS[key] = out
    row = {**_DEFAULTS[key], **values}
    cols = ", ".join(f'"{c}"' for c in row)
    conn.execute(f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join(["%s"] * len(row))})', list(row.values()))


def tenant(conn, tid: str, **refs: Any) -> None:
    insert(conn, "tenant", id=tid, **{"llm_id": "", "embd_id": "", "asr_id": "", "img2txt_id": "", "rerank_id": "",
                                      "parser_ids": "", "credit": 0, "status": "1", **refs})


def llm(conn, tenant_id: str, factory: str, name: str | None, key: str | None, status: str = "1",
        model_type: str | None = "chat", api_base: str | None = None, max_tokens: int = 8192) -> None:
    insert(conn, "tenant_llm", tenant_id=tenant_id, llm_factory=factory, llm_name=name, api_key=key,
           status=status, model_type=model_type, api_base=api_base, max_tokens=max_tokens, used_tokens=0)


def spec_rows(c, *, with_status: bool = True) -> None:
    """The legacy rows of the specification's verified examples (§3.2, §3.3, §3.7), plus the edge cases
    PostgreSQL's case-sensitive comparisons must handle as MySQL's utf8mb4_unicode_ci does."""
    tenant(c, "t1", llm_id="gpt-4o@OpenAI", embd_id="text-embedding-3-small@OpenAI", img2txt_id="gpt-4o@OpenAI",
           rerank_id="BAAI/bge-reranker-v2-m3", asr_id="o1@OpenAI")
    tenant(c, "t2", embd_id="text-embedding-3-small@OpenAI")
    tenant(c, "t3")
    tenant(c, "t4", llm_id="GPT-4o@openai")
    rows = [
        ("t1", "OpenAI", "gpt-4o", "sk-A", "1", "chat", None),
        ("t1", "OpenAI", "text-embedding-3-small", "sk-A", "1", "embedding", None),
        ("t1", "OpenAI", "o1", "sk-A", "0", "chat", None),
        ("t1", "OpenAI", "gpt-4o-mini", '{"api_key": "sk-A", "is_tools": true}', "1", "chat", None),
        ("t2", "OpenAI", "gpt-4o", "sk-B", "1", "chat", None),
        ("t2", "OpenAI", "gpt-4o-mini", "sk-B2", "1", "chat", None),
        ("t2", "OpenAI", "text-embedding-3-small", "sk-B", "1", "embedding", None),
        ("t1", "VolcEngine", "doubao-pro", VOLC_KEY, "1", "chat", None),
        ("t1", "Ollama", "llama3:8b", "x", "1", "chat", "http://ollama:11434"),
        ("t3", "Xinference", "qwen-local", None, "1", "chat", None),
        ("t3", "SILICONFLOW", "BAAI/bge-large-zh-v1.5", "sf", "1", "embedding", None),
        ("t1", "LM-Studio", "text-embedding-nomic-embed-text-v1.5@q8_0", "", "1", "embedding", None),
        # case variants: one provider per (tenant, factory) whatever the case, named by its smallest spelling
        ("t4", "openai", "gpt-4o", "sk-C", "1", "chat", None),
        ("t4", "OpenAI", "GPT-4o", "sk-C", "0", "chat", None),
        # a broken JSON key (truncated by an earlier non-strict run): a plain string key
        ("t4", "Ollama", "mistral", '{"api_key": "trunc', "1", "chat", None),
    ]
    for t, factory, name, key, status, mtype, base in rows:
        if with_status:
            llm(c, t, factory, name, key, status=status, model_type=mtype, api_base=base)
        else:
            insert(c, "tenant_llm", tenant_id=t, llm_factory=factory, llm_name=name, api_key=key, model_type=mtype,
                   api_base=base, max_tokens=8192, used_tokens=0)
    kb = {"permission": "me", "parser_id": "naive", "parser_config": "{}"}
    insert(c, "knowledgebase", id="kb2", tenant_id="t3", name="kb", embd_id="BAAI/bge-large-zh-v1.5@BAAI",
           created_by="t3", **kb)
    insert(c, "knowledgebase", id="kb3", tenant_id="t1", name="kb3", created_by="t1",
           embd_id="text-embedding-nomic-embed-text-v1.5@q8_0@LM-Studio",
           **{**kb, "parser_config": json.dumps({"llm_id": "gpt-4o@OpenAI", "raptor": {"embd_id": "x@P"}})})
    insert(c, "dialog", id="d1", tenant_id="t2", name="d", llm_id="gpt-4o-mini@OpenAI", rerank_id="",
           llm_setting="{}", prompt_type="simple", prompt_config="{}", similarity_threshold=0.2,
           vector_similarity_weight=0.3, top_n=6, top_k=1024, do_refer="1", kb_ids="[]")


def load(pg_server, db: str, release: str = "v0.25.6", *, with_status: bool = True) -> psycopg.Connection:
    pg_server.load_sql(db, REFERENCE / f"fresh-{release}.sql")
    conn = _connect(pg_server, db)
    spec_rows(conn, with_status=with_status)
    return conn


# --- reading the end state -------------------------------------------------------------------------------


def snapshot(conn: psycopg.Connection) -> dict[str, Any]:
    """The migrated tables with every id replaced by what it points at (comparable across runs)."""
    q = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
    providers = {pid: (t, n) for pid, t, n in q("SELECT id, tenant_id, provider_name FROM tenant_model_provider")}
    insts = {iid: (*providers[p], name, key, status, extra)
             for iid, p, name, key, status, extra in q("SELECT id, provider_id, instance_name, api_key, status, extra "
                                                       "FROM tenant_model_instance")}
    models = {mid: (*insts[i][:2], insts[i][3], name, mtype, status, extra)
              for mid, i, name, mtype, status, extra in q("SELECT id, instance_id, model_name, model_type, status, "
                                                          "extra FROM tenant_model")}
    refs = {}
    for table, pairs in (("tenant", ("llm_id", "embd_id", "asr_id", "img2txt_id", "rerank_id")),
                         ("knowledgebase", ("embd_id",)), ("dialog", ("llm_id", "rerank_id"))):
        for row in q(f"SELECT id, {', '.join(f'{c}, tenant_{c}' for c in pairs)} FROM {table}"):
            for i, col in enumerate(pairs):
                legacy, target = row[1 + 2 * i], row[2 + 2 * i]
                if legacy:
                    refs[f"{table}:{row[0]}:{col}"] = (legacy, models[target][:4] if target else target)
    marker = q("SELECT value FROM system_settings WHERE name = 'mysql_migration.database.version'")
    return {"providers": sorted(providers.values()), "instances": sorted(insts.values(), key=repr),
            "models": sorted(models.values(), key=repr), "refs": refs,
            "configs": sorted(r for r in q("SELECT id, parser_config FROM knowledgebase")),
            "marker": marker[0][0] if marker else None,
            "model_type": q("SELECT data_type FROM information_schema.columns WHERE table_name = 'tenant_model' "
                            "AND column_name = 'model_type'")[0][0]}


def everything(conn: psycopg.Connection) -> dict[str, Any]:
    """Every table's rows, as text, sorted (what `plan` and a rejected run must leave untouched)."""
    tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables WHERE "
                                         "table_schema = 'public' ORDER BY 1").fetchall()]
    return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables
            if not t.startswith(OWN_TABLES)}


def run(pg_server, db: str, *args: str, **extra: str):
    return run_tool(_env(pg_server, db, **extra), *(args or ("run",)))


# --- the tests ---------------------------------------------------------------------------------------------


def _check_spec(state: dict[str, Any], *, disabled: bool = True) -> None:
    """``disabled``: the legacy rows kept their status (v0.20.0 has no status column: the v0.21.0
    migration adds it as '1', so no model is disabled there)."""
    assert state["marker"] == "v0.27.0" and state["model_type"] == "integer"
    assert state["providers"] == [
        ("t1", "LM-Studio"), ("t1", "Ollama"), ("t1", "OpenAI"), ("t1", "VolcEngine"), ("t2", "OpenAI"),
        ("t3", "SILICONFLOW"), ("t3", "Xinference"), ("t4", "Ollama"), ("t4", "OpenAI")]
    insts = [i[:5] for i in state["instances"]]
    assert [i for i in insts if i[:2] == ("t1", "OpenAI")] == [("t1", "OpenAI", "default", "sk-A", "active")]
    assert sorted(i for i in insts if i[:2] == ("t2", "OpenAI")) == [
        ("t2", "OpenAI", "default", "sk-B", "active"), ("t2", "OpenAI", "default", "sk-B2", "active")]
    assert ("t1", "VolcEngine", "default", VOLC_KEY, "active") in insts
    assert ("t3", "Xinference", "default", "", "active") in insts  # NULL key stored as '' (D9)
    assert ("t4", "Ollama", "default", '{"api_key": "trunc', "active") in insts  # broken JSON: a plain key
    ollama = [i for i in state["instances"] if i[:2] == ("t1", "Ollama")]
    assert [json.loads(i[5]) for i in ollama] == [{"base_url": "http://ollama:11434"}]  # D15
    models = state["models"]
    by = {(m[0], m[1], m[2], m[3]): m[4:] for m in models}
    # custom models of empty-llm factories: migrated, bits, max_tokens kept (D16), is_tools from the key
    assert by[("t1", "Ollama", "x", "llama3:8b")] == (1, "active", '{"max_tokens": 8192}')
    assert by[("t1", "VolcEngine", VOLC_KEY, "doubao-pro")] == (1, "active", '{"is_tools": true, "max_tokens": 8192}')
    assert by[("t3", "Xinference", "", "qwen-local")] == (1, "active", '{"max_tokens": 8192}')
    assert by[("t1", "LM-Studio", "", "text-embedding-nomic-embed-text-v1.5@q8_0")][0] == 2
    # the disabled o1 is gone after the merge (KEEP); the seeded catalogue models are there, merged into bits
    t1 = {m[3]: m[4] for m in models if m[:3] == ("t1", "OpenAI", "sk-A")}
    assert t1 == {"gpt-4o": 1, "gpt-4o-mini": 9, "text-embedding-3-small": 2, "whisper-1": 4, "tts-1": 32,
                  **({} if disabled else {"o1": 1})}
    for key in ("sk-B", "sk-B2"):
        assert {m[3]: m[4] for m in models if m[:3] == ("t2", "OpenAI", key)} == {
            "gpt-4o": 1, "gpt-4o-mini": 9, "o1": 1, "text-embedding-3-small": 2, "whisper-1": 4, "tts-1": 32}
    assert by[("t2", "OpenAI", "sk-B", "gpt-4o")] == (1, "active", '{"is_tools": true, "max_tokens": 128000}')
    # t4: 'openai' and 'OpenAI' are one provider (named 'OpenAI', the smallest spelling); 'GPT-4o' disabled
    # there (status '0') keeps the catalogue's gpt-4o of that tenant disabled, so the merge drops both
    t4 = {m[3] for m in models if m[:2] == ("t4", "OpenAI")}
    assert "GPT-4o" not in t4 and "o1" in t4 and ("gpt-4o" in t4) is not disabled
    refs = state["refs"]
    assert refs["tenant:t1:llm_id"] == ("gpt-4o@default@OpenAI", ("t1", "OpenAI", "sk-A", "gpt-4o"))
    assert refs["tenant:t2:embd_id"] == ("text-embedding-3-small@default@OpenAI",
                                         ("t2", "OpenAI", "sk-B", "text-embedding-3-small"))  # D12
    assert refs["knowledgebase:kb2:embd_id"] == ("BAAI/bge-large-zh-v1.5@default@BAAI", "")  # D13 off
    assert refs["tenant:t1:img2txt_id"] == ("gpt-4o@default@OpenAI", "")  # gpt-4o is chat only
    assert refs["tenant:t1:rerank_id"] == ("BAAI/bge-reranker-v2-m3", "")
    assert refs["tenant:t1:asr_id"] == ("o1@default@OpenAI", "")
    assert refs["knowledgebase:kb3:embd_id"] == ("text-embedding-nomic-embed-text-v1.5@q8_0@LM-Studio",
                                                 ("t1", "LM-Studio", "", "text-embedding-nomic-embed-text-v1.5@q8_0"))
    assert refs["dialog:d1:llm_id"] == ("gpt-4o-mini@default@OpenAI", ("t2", "OpenAI", "sk-B2", "gpt-4o-mini"))
    # a provider named in another case resolves (case-insensitive, as on MySQL); the model is disabled: ''
    assert refs["tenant:t4:llm_id"] == ("GPT-4o@default@openai",
                                        "" if disabled else ("t4", "OpenAI", "sk-C", "gpt-4o"))
    configs = dict(state["configs"])
    assert json.loads(configs["kb3"]) == {"llm_id": "gpt-4o@default@OpenAI", "raptor": {"embd_id": "x@default@P"}}


@pytest.mark.parametrize("release", ["v0.25.6", "v0.20.0"])
def test_run_migrates_the_data_and_a_second_run_is_a_no_op(pg_server, pg_database, release):
    conn = load(pg_server, pg_database, release, with_status=release != "v0.20.0")
    first = run(pg_server, pg_database)
    assert first.code == 0, first.stdout[-3000:] + first.stderr[-3000:]
    stages = [e["step"] for e in first.named("step.finished") if e["step"].startswith("data ")]
    assert stages == ["data tenant_model_provider", "data tenant_model_instance", "data tenant_model",
                      "data model_id_config", "data tenant_model_seeding", "data model_type_merge",
                      "data tenant_model_id_migration"]
    assert first.named("step.progress"), "progress events"
    state = snapshot(conn)
    _check_spec(state, disabled=release != "v0.20.0")
    records = conn.execute("SELECT stage, status FROM ragflow_migrate_data_stage ORDER BY stage").fetchall()
    assert len(records) == 7 and {s for _n, s in records} == {"finished"}
    backups = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                          "WHERE table_name LIKE 'ragflow_migrate_bak_tenant_model_%'").fetchall()]
    assert len(backups) == 1  # the unmerged rows, kept

    second = run(pg_server, pg_database)
    assert second.code == 0, second.stdout[-3000:]
    assert second.summary["outcome"] in ("noop", "up_to_date"), second.summary
    assert snapshot(conn) == state
    # killed after the last stage, before RAGFlow's marker: the rerun writes the marker only
    conn.execute("DELETE FROM system_settings WHERE name = 'mysql_migration.database.version'")
    marker_only = run(pg_server, pg_database)
    assert marker_only.code == 0, marker_only.stdout[-3000:]
    assert [e["step"] for e in marker_only.named("step.finished") if e["step"].startswith("data ")] == [
        "data marker v0.26.0", "data marker v0.27.0"]
    assert snapshot(conn) == state
    # the stage records gone (a database restored without them): every stage finds nothing left to do
    conn.execute("DROP TABLE ragflow_migrate_data_stage")
    conn.execute("DELETE FROM system_settings WHERE name = 'mysql_migration.database.version'")
    third = run(pg_server, pg_database)
    assert third.code == 0, third.stdout[-3000:]
    assert snapshot(conn) == state
    conn.close()


def test_plan_changes_nothing(pg_server, pg_database):
    conn = load(pg_server, pg_database)
    run(pg_server, pg_database, "schema", "apply")  # the schema of v0.27.0, data untouched
    before = everything(conn)
    plan = run(pg_server, pg_database, "plan")
    assert plan.code == 0, plan.stdout[-2000:] + plan.stderr[-2000:]
    assert "tenant_model_provider" in plan.stdout
    assert everything(conn) == before
    assert not conn.execute("SELECT 1 FROM information_schema.tables WHERE table_name = "
                            "'ragflow_migrate_data_stage'").fetchall()
    conn.close()


def test_value_too_long_exit_10_nothing_written(pg_server, pg_database):
    conn = load(pg_server, pg_database)
    llm(conn, "t2", "Azure-OpenAI", "dep", "k" * 600)  # tenant_model_instance.api_key is varchar(512)
    before = everything(conn)
    result = run(pg_server, pg_database)
    assert result.code == 10, result.stdout[-3000:] + result.stderr[-3000:]
    assert "tenant_model_instance" in (result.stdout + result.stderr) and "api_key" in (result.stdout + result.stderr)
    assert everything(conn) == before  # refused by the preflight, before the first write
    conn.close()  # with --widen-columns the run widens the column: test_pg_widen.py


_CHILD = """
import sys, time
from ragflow_migrate.backends.postgres.data import base
stage = sys.argv[1]
original = base.logged
WRITES = ("INSERT INTO tenant_model", "UPDATE tenant", "UPDATE knowledgebase", "UPDATE dialog",
          "CREATE TABLE ragflow_migrate_bak", "TRUNCATE tenant_model")
def slow(ctx, step, sql, args=None, **kw):
    out = original(ctx, step, sql, args, **kw)
    if step == "data " + stage and sql.lstrip().startswith(WRITES):
        print("IN-STAGE", flush=True)  # a write of the stage just ran (committed, or inside its transaction)
        time.sleep(0.5)
    return out
base.logged = slow
for name in ("legacy", "merge", "model_ids", "id_migration"):
    __import__("ragflow_migrate.backends.postgres.data." + name, fromlist=["x"]).logged = slow
from ragflow_migrate.cli import main
sys.exit(main(["run"]))
"""


@pytest.mark.parametrize("stage", ["tenant_model_instance", "tenant_model", "model_id_config", "model_type_merge",
                                   "tenant_model_id_migration"])
def test_kill_mid_stage_then_rerun_converges(pg_server, pg_database, pg_server_reference_state, stage):
    conn = load(pg_server, pg_database)
    env = {"PATH": os.environ.get("PATH", ""), "RAGFLOW_MIGRATE_LOG_FORMAT": "json", **_env(pg_server, pg_database),
           "RAGFLOW_MIGRATE_BATCH_SIZE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, stage], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("IN-STAGE") or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    records = dict(conn.execute("SELECT stage, status FROM ragflow_migrate_data_stage").fetchall())
    assert records.get(stage) == "started", (records, "".join(seen)[-3000:])
    # the session's backend is gone with the client; the lock with it
    for _ in range(100):
        if not conn.execute("SELECT 1 FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                            (pg_database,)).fetchall():
            break
        time.sleep(0.1)
    result = run(pg_server, pg_database)
    assert result.code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    state = snapshot(conn)
    _check_spec(state)
    assert state == pg_server_reference_state
    conn.close()


@pytest.fixture(scope="module")
def pg_server_reference_state(pg_server):
    """The end state of an uninterrupted run of the same rows (its own database)."""
    name = pg_server.create_database(f"ref{os.getpid()}_{time.monotonic_ns()}")
    try:
        conn = load(pg_server, name)
        result = run(pg_server, name)
        assert result.code == 0, result.stdout[-3000:]
        state = snapshot(conn)
        conn.close()
        yield state
    finally:
        pg_server.drop_database(name)


def test_the_data_verb_on_postgres(pg_server, pg_database):
    """`data` (dry run), `data --execute --stages` (this backend's stages, under its lock) and
    `data --create-table-only` (MySQL's only: a clear refusal) on PostgreSQL."""
    conn = load(pg_server, pg_database)
    assert run(pg_server, pg_database, "schema", "apply").code == 0
    dry = run_tool(_env(pg_server, pg_database), "data", logs_on="stderr")  # the report goes to stdout
    assert dry.code == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    assert "tenant_model_provider" in dry.stdout
    first = run_tool(_env(pg_server, pg_database), "data", "--execute", "--stages", "tenant_model_provider",
                     logs_on="stderr")
    assert first.code == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert [e["step"] for e in first.named("step.finished")] == ["data tenant_model_provider"]
    assert first.named("lock.acquired")[0]["key"] == 1241179007  # RAGFlow's own startup lock
    assert conn.execute("SELECT count(*) FROM tenant_model_provider").fetchone()[0] > 0
    rest = run_tool(_env(pg_server, pg_database), "data", "--execute", logs_on="stderr")
    assert rest.code == 0, rest.stdout[-3000:] + rest.stderr[-3000:]
    assert "data tenant_model_id_migration" in [e["step"] for e in rest.named("step.finished")]
    refused = run_tool(_env(pg_server, pg_database), "data", "--create-table-only", logs_on="stderr")
    assert refused.code == 2 and "schema apply" in refused.stdout + refused.stderr
    assert run(pg_server, pg_database, "status", "--check").code == 0
    conn.close()
