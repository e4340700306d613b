"""Every RAGFlow release's database, and every state RAGFlow's own startup leaves, comes out as
RAGFlow's fresh target schema. Allowed differences: column order, and what the target no
longer declares (kept, listed as extra)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from toolrun import schema_differences

from ragflow_migrate import events
from ragflow_migrate.releases import KNOWN_RELEASES
from ragflow_migrate.schema.diff import drift
from servers.harness import schema_path

UPGRADE_DUMPS = ("v0.20.0", "v0.24.0", "v0.25.0", "v0.26.0", "v0.26.4")


def assert_only_allowed_differences(database, release="v0.27.0"):
    differences = schema_differences(database, release)
    assert drift(differences) == [], "\n".join(d.describe() for d in drift(differences))
    return [d for d in differences if not d.is_drift]


def column_orders(database):
    rows = database.query(
        "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
        "ORDER BY TABLE_NAME, ORDINAL_POSITION", (database.name,))
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def test_fresh_install_is_exactly_fresh_v0_27_0(database, tool):
    result = tool("run")
    assert result.code == 0, result.stdout + result.stderr
    assert [s["step"] for s in result.summary["steps"]][0] == "schema install v0.27.0"
    assert assert_only_allowed_differences(database) == []
    ref = json.loads(Path(database.server.schema_file("v0.27.0")).with_suffix(".json").read_text())
    expected_order: dict[str, list[str]] = {}
    for col in sorted(ref["columns"], key=lambda c: (c["table"], c["ordinal"])):
        expected_order.setdefault(col["table"], []).append(col["column"])
    live = {t: cols for t, cols in column_orders(database).items() if not t.startswith("ragflow_migrate_")}
    assert live == expected_order
    assert tool("run").summary["outcome"] == "noop"


@pytest.mark.parametrize("release", KNOWN_RELEASES)
def test_each_release_upgrades_to_v0_27_0(database, tool, ragflow_schema, release):
    database.load_sql(ragflow_schema(release))
    result = tool("run")
    assert result.code == 0, result.stdout + result.stderr
    extras = assert_only_allowed_differences(database)
    retired = {d.table if d.kind == "extra_table" else f"{d.table}.{d.name}" for d in extras
               if d.kind != "backup_table"}
    allowed = {"evaluation_cases", "evaluation_datasets", "evaluation_results", "evaluation_runs",
               "document.meta_fields"}
    assert retired <= allowed
    again = tool("run")
    assert again.code == 0 and again.summary["outcome"] == "noop"
    status = tool("status", "--json")
    assert json.loads(status.stdout)["state"] == "up_to_date"


@pytest.mark.parametrize("origin", UPGRADE_DUMPS)
def test_databases_upgraded_by_ragflows_own_startup(database, tool, origin):
    """The states RAGFlow v0.27.0's init leaves: missing tenant_ocr_id, composite tenant_llm key,
    <table>_<col> index names, 128-wide ocr_id, stale prefix indexes. The dumps were taken on
    MySQL; RAGFlow's upgrade leaves the same state on MariaDB, so both servers load them."""
    database.load_sql(schema_path("mysql-9.7", origin, "upgrade"))
    plan = tool("plan")
    assert plan.code == 0
    result = tool("run")
    assert result.code == 0, result.stdout + result.stderr
    assert_only_allowed_differences(database)
    assert tool("run").summary["outcome"] == "noop"


PAIRS = [(a, b) for a, b in itertools.combinations(KNOWN_RELEASES, 2) if b != "v0.27.0"]


@pytest.mark.parametrize(("origin", "target"), PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_intermediate_targets(database, tool, ragflow_schema, origin, target):
    database.load_sql(ragflow_schema(origin))
    result = tool("run", "--target-version", target)
    assert result.code == 0, result.stdout + result.stderr
    assert_only_allowed_differences(database, target)
    status = json.loads(tool("status", "--json", "--target-version", target).stdout)
    assert status["state"] == "up_to_date" and status["release"] == target


@pytest.mark.parametrize("release", ["v0.20.0", "v0.25.0", "v0.26.4"])
def test_fresh_install_of_an_old_release(database, tool, release):
    result = tool("run", "--target-version", release)
    assert result.code == 0, result.stdout
    assert assert_only_allowed_differences(database, release) == []


def test_plan_changes_nothing_and_shows_the_sql(database, tool, ragflow_schema):
    database.load_sql(ragflow_schema("v0.24.0"))
    before = column_orders(database), database.query(
        "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s "
        "ORDER BY 1, 2, 3", (database.name,))
    plan = tool("plan")
    assert plan.code == 0
    assert "ALTER TABLE `tenant_llm` DROP PRIMARY KEY, ADD COLUMN `id`" in plan.stdout
    assert "-- step schema v0.25.0" in plan.stdout and "-- step verify schema" in plan.stdout
    after = column_orders(database), database.query(
        "SELECT TABLE_NAME, INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA=%s "
        "ORDER BY 1, 2, 3", (database.name,))
    assert before == after
    as_json = json.loads(tool("plan", "--json").stdout)
    assert as_json["state"] == "pending" and as_json["release"] == "v0.24.0"


def test_status_reports_the_adopted_release(database, tool, ragflow_schema):
    database.load_sql(ragflow_schema("v0.25.6"))
    status = json.loads(tool("status", "--json").stdout)
    assert status["state"] == "pending" and status["release"] == "v0.25.6"
    assert status["pending"][:3] == ["schema v0.20.0", "schema v0.21.0", "schema v0.22.0"]
    check = tool("status", "--check")
    assert check.code == 12
    assert "release:   v0.25.6" in check.stdout


def test_database_newer_than_the_tool_is_refused_unchanged(database, tool):
    assert tool("run").code == 0
    conn = database.connect()
    conn.cursor().execute("INSERT INTO ragflow_migrate_history (name, migrated_at) VALUES ('011_v0_99_0', NOW())")
    conn.close()
    before = column_orders(database)
    result = tool("run")
    assert result.code == 9 and "newer" in result.summary["error"]
    assert column_orders(database) == before
    assert json.loads(tool("status", "--json").stdout)["state"] == "newer"


def test_target_older_than_the_database_is_refused(database, tool):
    assert tool("run").code == 0
    result = tool("run", "--target-version", "v0.25.0")
    assert result.code == 9 and "downgrades are not supported" in json.dumps(result.summary)


def test_wait_for_version(database, tool):
    # 3 s: room for at least one pending check (and its step.waiting) after connecting on a loaded machine
    pending = tool("wait-for-version", "--timeout", "3", "--interval", "0.3", logs_on="stdout")
    assert pending.code == 12 and pending.named(events.STEP_WAITING)
    assert tool("run").code == 0
    ready = tool("wait-for-version", "--timeout", "5", logs_on="stdout")
    assert ready.code == 0 and ready.summary["outcome"] == "ready"
