"""The whole upgrade on PostgreSQL, through the real CLI with RAGFlow's variables (DB_TYPE=postgres,
POSTGRES_*): every database RAGFlow's own startup leaves on PostgreSQL (the 9 fresh schemas and
the 4 upgrade chains of shared/ragflow-schema/postgres-15) ends at RAGFlow v0.27.0's schema, a
second run is a no-op, and status / plan / schema diff / wait-for-version / drift repair work
there as on MySQL."""

from __future__ import annotations

import json

import pytest

from integration.toolrun import run_tool
from ragflow_migrate.backends.postgres.introspect import live_snapshot
from ragflow_migrate.backends.postgres.pgform import to_postgres
from ragflow_migrate.schema import chain
from ragflow_migrate.schema.diff import compare, drift
from servers import harness, postgres

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)

REFERENCE = harness.schema_root() / postgres.LABEL
FRESH = ("v0.20.0", "v0.22.0", "v0.23.0", "v0.24.0", "v0.25.0", "v0.25.6", "v0.26.0", "v0.26.4", "v0.27.0")
UPGRADES = ("v0.20.0", "v0.24.0", "v0.25.6", "v0.26.4")
STARTS = [pytest.param(f"fresh-{t}", id=f"fresh-{t}") for t in FRESH] + [
    pytest.param(f"upgrade-{t}-to-v0.27.0", id=f"upgrade-{t}") for t in UPGRADES]
#: What an upgraded database keeps beyond fresh v0.27.0 (as on MySQL: retired, never dropped
#: without --drop): the evaluation tables v0.27.0 no longer declares (v0.23.0–v0.26.4 created
#: them) and document.meta_fields (v0.20.0–v0.23.0).
RETIRED_TABLES = {"evaluation_cases", "evaluation_datasets", "evaluation_results", "evaluation_runs"}
RETIRED_COLUMNS = {("document", "meta_fields")}


def _live(pg_server: postgres.PostgresServer, database: str):
    with pg_server.connect(database) as conn:
        return live_snapshot(conn, database)


def _target():
    return to_postgres(chain.expected_schema("v0.27.0"))


@pytest.fixture(scope="module")
def reference(pg_server):
    """RAGFlow's own fresh v0.27.0 on PostgreSQL (its dump), read once."""
    fresh = pg_server.create_database("pg_upgrade_reference")
    try:
        pg_server.load_sql(fresh, REFERENCE / "fresh-v0.27.0.sql")
        yield _live(pg_server, fresh)
    finally:
        pg_server.drop_database(fresh)


@pytest.mark.parametrize("stem", STARTS)
def test_every_ragflow_postgres_database_reaches_v0_27_0(pg_server, pg_database, reference, stem):
    pg_server.load_sql(pg_database, REFERENCE / f"{stem}.sql")
    env = pg_server.env(pg_database)
    first = run_tool(env, "run")
    assert first.code == 0, first.stdout[-3000:]
    live = _live(pg_server, pg_database)
    differences = compare(_target(), live)
    assert not drift(differences), [d.describe() for d in drift(differences)]
    extras = {(d.kind, d.table, d.name) for d in differences}
    allowed = {("extra_table", t, None) for t in RETIRED_TABLES} | {("extra_column", t, c) for t, c in RETIRED_COLUMNS}
    assert extras <= allowed, sorted(extras - allowed)
    # The same tables, columns, keys and sequences as RAGFlow's own fresh v0.27.0 (its dump):
    for name, table in reference.tables.items():
        mine = live.tables[name]
        assert {c: col for c, col in mine.columns.items() if (name, c) not in RETIRED_COLUMNS} == table.columns, name
        assert mine.indexes == table.indexes, name
        assert {i.constraint for i in mine.indexes.values()} == {i.constraint for i in table.indexes.values()}, name
    # A second run finds nothing to do, and says so without taking the lock.
    again = run_tool(env, "run")
    assert again.code == 0 and again.summary["outcome"] == "noop" and not again.named("lock.acquired")
    history = pg_server.query("SELECT name FROM ragflow_migrate_history ORDER BY id", database=pg_database)
    assert [n for (n,) in history] == list(chain.names_up_to("v0.27.0"))
    # tenant_llm.id is a serial in every state, an empty table's included (RAGFlow's converter fails there)
    assert pg_server.query("INSERT INTO tenant_llm (tenant_id, llm_factory, max_tokens, used_tokens, status) "
                           "VALUES ('t', 'f', 0, 0, '1') RETURNING id", database=pg_database) == [(1,)]


def test_status_plan_and_diff_on_postgres(pg_server, pg_database):
    pg_server.load_sql(pg_database, REFERENCE / "upgrade-v0.26.4-to-v0.27.0.sql")
    env = pg_server.env(pg_database)
    diff = run_tool(env, "schema", "diff", "--json")
    assert diff.code == 8  # not in sync: the drift exit code, as on MySQL
    found = json.loads(diff.stdout)["differences"]
    assert {"kind": "missing_column", "table": "tenant", "name": "tenant_ocr_id"}.items() <= next(
        d for d in found if d.get("name") == "tenant_ocr_id" and d["kind"] == "missing_column").items()
    status = run_tool(env, "status", "--json")
    assert status.code == 0
    data = json.loads(status.stdout)
    assert data["state"] == "pending" and data["server"].startswith("PostgreSQL")
    assert data["lock"]["holder"] is None
    plan = run_tool(env, "plan", "--json")
    assert plan.code == 0
    planned = json.loads(plan.stdout)
    sql = [s for step in planned["steps"] for s in step.get("sql", [])]
    assert any('ADD COLUMN "tenant_ocr_id"' in s for s in sql), sql
    assert _live(pg_server, pg_database).column("tenant", "tenant_ocr_id") is None  # plan changed nothing
    check = run_tool(env, "status", "--check")
    assert check.code != 0
    assert run_tool(env, "run").code == 0
    assert run_tool(env, "status", "--check").code == 0
    assert run_tool(env, "wait-for-version", "--timeout", "5").code == 0


def test_drift_is_repaired_on_postgres(pg_server, pg_database):
    """Someone dropped a column and an index after the upgrade: the next run puts them back."""
    pg_server.load_sql(pg_database, REFERENCE / "fresh-v0.27.0.sql")
    env = pg_server.env(pg_database)
    assert run_tool(env, "run").code == 0
    pg_server.query('ALTER TABLE tenant DROP COLUMN tenant_ocr_id', database=pg_database)
    pg_server.query('DROP INDEX "user_email"', database=pg_database)
    status = json.loads(run_tool(env, "status", "--json").stdout)
    assert status["state"] == "drifted"
    repaired = run_tool(env, "run")
    assert repaired.code == 0, repaired.stdout[-2000:]
    assert not drift(compare(_target(), _live(pg_server, pg_database)))
    assert run_tool(env, "run").summary["outcome"] == "noop"


def test_an_empty_database_gets_v0_27_0(pg_server, pg_database):
    env = pg_server.env(pg_database)
    result = run_tool(env, "run")
    assert result.code == 0, result.stdout[-2000:]
    live = _live(pg_server, pg_database)
    assert not [d for d in compare(_target(), live) if d.kind != "extra_table"]
