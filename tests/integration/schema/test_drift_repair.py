"""A v0.27.0 database changed by hand (a table, column or index dropped, a column narrowed,
converted or made NOT NULL) is reported as drifted by `status`, and repaired by `run` and by
`schema apply` without losing a row; a repair that would lose data is listed and left unless
`schema apply --drop` forces it; a recorded widening is not drift and is never narrowed back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from ragflow_migrate import events
from ragflow_migrate.schema import widenings

SEED = (
    "INSERT INTO tenant (id, name, llm_id, embd_id, asr_id, img2txt_id, rerank_id, parser_ids, credit) "
    "VALUES ('t1', 'Acme', 'gpt-4@OpenAI', 'bge@BAAI', '', '', '', 'naive', 512)",
    "INSERT INTO tenant_llm (tenant_id, llm_factory, llm_name, api_base, max_tokens, used_tokens, status) "
    "VALUES ('t1', 'OpenAI', 'gpt-4', 'https://api.example/v1', 0, 0, '1')",
    "INSERT INTO document (id, kb_id, parser_id, parser_config, source_type, type, created_by, name, location, "
    "size, token_num, chunk_num, progress, process_duration, suffix) VALUES ('d1', 'kb1', 'naive', '{}', 'local', "
    "'pdf', 'u1', 'report.pdf', 'bucket/report.pdf', 1234, 0, 0, 0, 0, 'pdf')",
)

# case: (statements that change the schema by hand, the drift `status` and `schema diff` report)
CASES = {
    "column_narrowed": (["ALTER TABLE tenant_llm MODIFY COLUMN api_base VARCHAR(64) NULL"],
                        {("column", "tenant_llm", "api_base")}),
    "column_not_null": (["ALTER TABLE tenant MODIFY COLUMN name VARCHAR(100) NOT NULL"],
                        {("column", "tenant", "name")}),
    "column_other_type": (["ALTER TABLE tenant MODIFY COLUMN credit VARCHAR(20) NOT NULL"],
                          {("column", "tenant", "credit")}),
    "column_dropped": (["ALTER TABLE document DROP COLUMN location"],
                       {("missing_column", "document", "location"), ("missing_index", "document", "document_location")}),
    "index_dropped": (["ALTER TABLE document DROP INDEX document_suffix"],
                      {("missing_index", "document", "document_suffix")}),
    "table_dropped": (["DROP TABLE task"], {("missing_table", "task", None)}),
}
CASES["several_at_once"] = ([s for sql, _ in CASES.values() for s in sql],
                            set().union(*(kinds for _, kinds in CASES.values())))


def _rows(database):
    return {
        "tenant": database.query("SELECT id, name, llm_id, embd_id, credit FROM tenant"),
        "tenant_llm": database.query("SELECT tenant_id, llm_factory, llm_name, api_base FROM tenant_llm"),
        "document": database.query("SELECT id, kb_id, name, size, suffix FROM document"),
    }


def _installed(database, tool):
    assert tool("run").code == 0
    for sql in SEED:
        database.query(sql)
    return _rows(database)


def _drift(result) -> set:
    return {(d["kind"], d["table"], d["name"]) for d in json.loads(result.stdout)["differences"] if d["drift"]}


def _assert_drifted(tool, kinds, diff_kinds=None):
    status = tool("status", "--json")
    assert status.code == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["state"] == "drifted"
    assert data["pending"] == ["schema repair", "verify schema"]
    assert {(d["kind"], d["table"], d["name"]) for d in data["drift"]} == kinds
    assert tool("status", "--check").code == 12
    text = tool("status").stdout
    assert "state:     drifted" in text and f"drift:     {len(kinds)} difference(s)" in text
    diff = tool("schema", "diff", "--json")
    assert diff.code == 8 and _drift(diff) == (kinds if diff_kinds is None else diff_kinds)


def _assert_in_sync(tool):
    assert tool("schema", "diff").code == 0
    status = tool("status", "--json")
    assert json.loads(status.stdout)["state"] == "up_to_date"
    assert tool("status", "--check").code == 0
    assert tool("run").summary["outcome"] == "noop"


@pytest.mark.parametrize("case", list(CASES))
def test_run_repairs_drift_without_losing_rows(database, tool, case):
    statements, kinds = CASES[case]
    before = _installed(database, tool)
    for sql in statements:
        database.query(sql)
    _assert_drifted(tool, kinds)

    result = tool("run")
    assert result.code == 0, result.stdout
    assert [s["step"] for s in result.summary["steps"]] == ["schema repair", "verify schema"]
    assert result.named(events.STEP_STATEMENT)
    _assert_in_sync(tool)
    assert _rows(database) == before
    journal = database.query("SELECT step, status FROM ragflow_migrate_journal ORDER BY id DESC LIMIT 2")
    assert sorted(journal) == [("schema repair", "finished"), ("verify schema", "finished")]


def test_schema_apply_repairs_drift_too(database, tool):
    statements, kinds = CASES["several_at_once"]
    before = _installed(database, tool)
    for sql in statements:
        database.query(sql)
    plan = tool("plan", "--json")
    repair = next(s for s in json.loads(plan.stdout)["steps"] if s["step"] == "schema repair")
    assert any("CREATE TABLE `task`" in sql for sql in repair["sql"])
    assert "task" not in database.tables()  # plan changed nothing

    result = tool("schema", "apply", logs_on="stdout")  # `schema apply` logs on stdout, like `run`
    assert result.code == 0, result.stdout
    assert [s["step"] for s in result.summary["steps"]] == ["schema repair", "verify schema"]
    _assert_in_sync(tool)
    assert _rows(database) == before


def test_a_lossy_repair_is_listed_and_left_unless_forced_with_drop(database, tool):
    _installed(database, tool)
    long_base = "https://" + "x" * 300
    database.query("ALTER TABLE tenant MODIFY COLUMN credit VARCHAR(20) NOT NULL")
    database.query("UPDATE tenant SET credit = 'lots'")  # text an INT cannot hold
    database.query("ALTER TABLE tenant_llm MODIFY COLUMN api_base TEXT NULL")
    database.query("UPDATE tenant_llm SET api_base = %s", (long_base,))  # longer than VARCHAR(255)
    database.query("ALTER TABLE document DROP INDEX document_suffix")  # repairable beside them
    # a wider column (TEXT where VARCHAR(255) is declared) breaks nothing: `schema diff` lists it, `status`
    # does not count it as drift; the repair, once it runs, still lists it (lossy to narrow back)
    _assert_drifted(tool, {("column", "tenant", "credit"), ("missing_index", "document", "document_suffix")},
                    {("column", "tenant", "credit"), ("column", "tenant_llm", "api_base"),
                     ("missing_index", "document", "document_suffix")})

    result = tool("run")
    assert result.code == 8, result.stdout
    notice = next(n for n in result.named(events.STEP_NOTICE) if n["step"] == "schema repair" and n.get("count"))
    assert notice["count"] == 2 and "schema apply --drop" in notice["message"]
    assert any("tenant.credit" in s and "could change values" not in s for s in notice["sample"])
    assert "schema apply --drop" in result.summary["hint"]
    assert database.query("SELECT credit FROM tenant") == [("lots",)]
    assert database.query("SELECT api_base FROM tenant_llm") == [(long_base,)]
    assert _drift(tool("schema", "diff", "--json")) == {("column", "tenant", "credit"),
                                                         ("column", "tenant_llm", "api_base")}

    forced = tool("schema", "apply", "--drop", logs_on="stdout")
    assert forced.code == 0, forced.stdout
    assert any("data lost" in n["message"] for n in forced.named(events.STEP_NOTICE))
    _assert_in_sync(tool)
    assert database.query("SELECT credit FROM tenant") == [(0,)]
    assert database.query("SELECT api_base FROM tenant_llm") == [(long_base[:255],)]


def test_a_recorded_widening_is_not_drift_and_is_never_narrowed(database, tool):
    _installed(database, tool)
    conn = database.connect()
    try:
        widenings.record(conn, "tenant_llm", "api_base", "varchar(255)", "varchar(1024)",
                         "3 base URLs longer than 255 characters", "run-widen-1")
    finally:
        conn.close()
    database.query("ALTER TABLE tenant_llm MODIFY COLUMN api_base VARCHAR(1024) NULL")
    long_base = "https://" + "y" * 600
    database.query("UPDATE tenant_llm SET api_base = %s", (long_base,))

    status = tool("status", "--json")
    data = json.loads(status.stdout)
    assert data["state"] == "up_to_date"
    assert [(d["table"], d["column"], d["after"]) for d in data["deviations"]] == [
        ("tenant_llm", "api_base", "varchar(1024)")]
    assert "deviation: tenant_llm.api_base widened from varchar(255) to varchar(1024)" in tool("status").stdout
    diff = tool("schema", "diff", "--json")
    assert diff.code == 0
    widened = [d for d in json.loads(diff.stdout)["differences"] if d["kind"] == "widened"]
    assert [(d["table"], d["name"], d["drift"]) for d in widened] == [("tenant_llm", "api_base", False)]
    assert "widened column: tenant_llm.api_base" in tool("schema", "diff").stdout
    assert tool("schema", "diff", "--strict").code == 8
    assert tool("run").summary["outcome"] == "noop"

    database.query("ALTER TABLE document DROP INDEX document_suffix")  # drift beside the widening
    result = tool("run")
    assert result.code == 0, result.stdout
    assert any("recorded deviations" in n["message"] for n in result.named(events.STEP_NOTICE))
    column_type = database.query("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                                 "AND TABLE_NAME = 'tenant_llm' AND COLUMN_NAME = 'api_base'", (database.name,))
    assert column_type == [("varchar(1024)",)]
    assert database.query("SELECT api_base FROM tenant_llm") == [(long_base,)]
    assert tool("schema", "diff").code == 0


def test_a_repair_killed_after_any_statement_carries_on(database, tool):
    statements, kinds = CASES["several_at_once"]
    before = _installed(database, tool)
    for sql in statements:
        database.query(sql)
    killer = Path(__file__).with_name("killer.py")
    env = {"PATH": os.environ.get("PATH", ""), "RAGFLOW_MIGRATE_LOG_FORMAT": "json", **database.env}
    kills = 0
    while kills < 20:  # each run does one statement and dies (SIGKILL: no cleanup, no journal update)
        proc = subprocess.run([sys.executable, str(killer), "1", "run"], env=env, capture_output=True, text=True,
                              timeout=120)
        if proc.returncode == 0:
            break
        assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
        kills += 1
        assert json.loads(tool("status", "--json").stdout)["state"] in ("drifted", "up_to_date")
    assert kills >= len(kinds) - 1  # one statement a difference (the dropped column's index comes with it)
    _assert_in_sync(tool)
    assert _rows(database) == before


def test_a_dropped_not_null_column_comes_back_filled_as_its_migration_filled_it(database, tool):
    _installed(database, tool)
    database.query("ALTER TABLE tenant_llm DROP COLUMN status")
    assert tool("run").code == 0
    assert database.query("SELECT status FROM tenant_llm") == [("1",)]  # v0.25.0 filled it with '1'
    _assert_in_sync(tool)
