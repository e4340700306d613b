"""``--widen-columns`` on PostgreSQL, through the real CLI against a real PostgreSQL 15: a legacy API
key longer than ``tenant_model_instance.api_key`` (varchar(512)) stops the run at the preflight
(exit 10, as on MySQL, nothing changed); with the option the column is widened to the smallest
varchar holding the key (a catalog change: the table is not rewritten), the widening is recorded,
the run completes, ``schema diff`` / ``status`` report a recorded deviation rather than drift, and
a second run is a no-op."""

from __future__ import annotations

import json

import pytest
from test_pg_data import everything, llm, load, run, tenant  # beside this file (rootdir/prepend import)

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)

LONG_KEY = json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\n" + "Ab+/" * 500
                       + "\\n-----END PRIVATE KEY-----\\n", "client_email": "svc@p.iam.gserviceaccount.com"})


def _relfilenode(conn, table: str) -> int:
    return conn.execute("SELECT relfilenode FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()[0]


def test_widen_columns_keeps_a_long_key_and_records_the_deviation(pg_server, pg_database):
    conn = load(pg_server, pg_database)
    tenant(conn, "t9", llm_id="gemini-2.5-pro@Google Cloud")
    llm(conn, "t9", "Google Cloud", "gemini-2.5-pro", LONG_KEY)
    llm(conn, "t9", "Google Cloud", "gemini-2.5-flash", LONG_KEY, status="0")
    before = everything(conn)

    refused = run(pg_server, pg_database)
    assert refused.code == 10, refused.stdout[-3000:]  # the preflight's value check, as on MySQL
    summary = refused.summary
    assert summary["error"].startswith("preflight: tenant_model_instance.api_key (varchar(512))")
    assert "--widen-columns" in summary["hint"] and "migrate.widenColumns" in summary["hint"]
    assert not refused.named("lock.acquired") and not refused.named("step.started")
    assert everything(conn) == before

    plan = run(pg_server, pg_database, "plan", "--json", "--widen-columns")
    assert plan.code == 0, plan.stdout[-2000:] + plan.stderr[-2000:]
    assert [(w["table"], w["column"]) for w in json.loads(plan.stdout)["widenings"]] == [
        ("tenant_model_instance", "api_key")]

    first = run(pg_server, pg_database, "run", "--widen-columns")
    assert first.code == 0, first.stdout[-3000:]
    keys = {k for (k,) in conn.execute("SELECT api_key FROM tenant_model_instance i JOIN tenant_model_provider p "
                                       "ON p.id = i.provider_id WHERE p.tenant_id = 't9'").fetchall()}
    assert keys == {LONG_KEY}  # byte for byte
    column_type = conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                               "'tenant_model_instance'::regclass AND attname = 'api_key'").fetchone()[0]
    assert column_type == f"character varying({len(LONG_KEY)})"
    record = conn.execute("SELECT table_name, column_name, before_type, after_type, run_id FROM "
                          "ragflow_migrate_widening").fetchall()
    assert record == [("tenant_model_instance", "api_key", "character varying(512)", column_type,
                       first.summary["run_id"])]
    notices = [e for e in first.named("step.notice") if "widened from" in e["message"]]
    assert [e["step"] for e in notices] == ["data tenant_model_instance"], notices
    widened = [e for e in first.named("step.statement") if "ALTER COLUMN \"api_key\" TYPE" in e["sql"]]
    assert [e["sql"] for e in widened] == [
        f'ALTER TABLE "tenant_model_instance" ALTER COLUMN "api_key" TYPE varchar({len(LONG_KEY)})']
    detail = json.loads(conn.execute("SELECT detail FROM ragflow_migrate_journal WHERE step = "
                                     "'data tenant_model_instance' AND status = 'finished'").fetchone()[0])
    assert detail["widened"] == [{"table": "tenant_model_instance", "column": "api_key",
                                  "before": "character varying(512)", "after": column_type}]
    verify = [e for e in first.named("step.notice") if e["step"] == "verify schema"]
    assert any("recorded deviations" in e["message"] for e in verify), verify

    diff = run(pg_server, pg_database, "schema", "diff", "--json")
    assert diff.code == 0, diff.stdout[-2000:] + diff.stderr[-2000:]  # a recorded deviation is not drift
    kinds = {(d["kind"], d["table"], d["name"]) for d in json.loads(diff.stdout)["differences"]}
    assert ("widened", "tenant_model_instance", "api_key") in kinds
    assert not {k for k in kinds if k[0] in ("column", "missing_column", "missing_index", "index")}, kinds
    status = run(pg_server, pg_database, "status", "--json")
    assert status.code == 0
    deviations = json.loads(status.stdout)["deviations"]
    assert [(d["table"], d["column"], d["after"]) for d in deviations] == [
        ("tenant_model_instance", "api_key", column_type)]
    assert run(pg_server, pg_database, "status", "--check").code == 0

    state = everything(conn)
    again = run(pg_server, pg_database, "run", "--widen-columns")
    assert again.code == 0 and again.summary["outcome"] == "noop", again.stdout[-2000:]
    assert everything(conn) == state
    conn.close()


def test_widening_a_varchar_rewrites_nothing(pg_server, pg_database):
    """The ALTER of a widening is a catalog change on PostgreSQL: the table keeps its file."""
    conn = load(pg_server, pg_database)
    assert run(pg_server, pg_database, "schema", "apply").code == 0  # tenant_model_instance exists now
    llm(conn, "t9", "Google Cloud", "gemini-2.5-pro", LONG_KEY)
    tenant(conn, "t9")
    table_file = _relfilenode(conn, "tenant_model_instance")
    result = run(pg_server, pg_database, "run", "--widen-columns")
    assert result.code == 0, result.stdout[-3000:]
    assert _relfilenode(conn, "tenant_model_instance") == table_file
    assert conn.execute("SELECT after_type FROM ragflow_migrate_widening").fetchall() == [
        (f"character varying({len(LONG_KEY)})",)]
    conn.close()
