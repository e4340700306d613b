"""The ``data`` verb: modes, stage selection, exit codes, create-table-only."""

from __future__ import annotations

import data_support as ds
import pytest

from ragflow_migrate.data import commands, registry
from ragflow_migrate.errors import ConfigError


def _call(legacy, argv, **flags):
    ctx = legacy.ctx(**flags)
    summary: dict = {}
    code = commands.cmd_data(ds.parse_data_args(argv), ctx.settings, ctx.log, "run1", summary)
    return code, summary


def test_list_stages_needs_no_database(capsys):
    settings = ds.settings_for({"MYSQL_HOST": "203.0.113.1", "MYSQL_PORT": "1"})
    summary: dict = {}
    assert commands.cmd_data(ds.parse_data_args(["--list-stages"]), settings, ds.ListLog(), "r", summary) == 0
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:]] == list(registry.STAGE_NAMES)


def test_unknown_stage_fails_before_connecting():
    settings = ds.settings_for({"MYSQL_HOST": "203.0.113.1", "MYSQL_PORT": "1"})
    with pytest.raises(ConfigError, match="tenant_modle") as info:
        commands.cmd_data(ds.parse_data_args(["--execute", "--stages", "tenant_modle"]), settings, ds.ListLog(),
                          "r", {})
    assert int(info.value.exit_code) == 2


def test_execute_then_noop(legacy):
    ds.spec_rows(legacy.conn)
    code, summary = _call(legacy, ["--execute"])
    assert code == 0 and summary["outcome"] == "migrated"
    assert [s["step"] for s in summary["steps"]] == [f"data {n}" for n in registry.STAGE_NAMES]
    legacy.check()
    journal = legacy.q("SELECT step, status FROM ragflow_migrate_journal ORDER BY id")
    assert journal == [(f"data {n}", "finished") for n in registry.STAGE_NAMES]
    code, summary = _call(legacy, ["--execute"])
    assert summary == {"steps": [], "outcome": "noop"}


def test_execute_selected_stages_only(legacy):
    ds.spec_rows(legacy.conn)
    code, summary = _call(legacy, ["--execute", "--stages", "model_id_config,tenant_model_provider"])
    assert [s["step"] for s in summary["steps"]] == ["data tenant_model_provider", "data model_id_config"]
    assert legacy.q("SELECT COUNT(*) FROM tenant_model_instance")[0][0] == 0
    assert legacy.q("SELECT llm_id FROM tenant WHERE id = 't1'")[0][0] == "gpt-4o@default@OpenAI"
    assert ds.marker_value(legacy.conn) is None  # the gate is not complete


def test_target_version_limits_the_gates(legacy):
    ds.spec_rows(legacy.conn)
    code, summary = _call(legacy, ["--execute"], target_version="v0.26.4")
    assert [s["step"] for s in summary["steps"]] == [f"data {n}" for n in registry.STAGE_NAMES[:4]]
    assert ds.marker_value(legacy.conn) == "v0.26.0"


def test_create_table_only_uses_ragflows_own_definitions(legacy_at, capsys):
    db = legacy_at("v0.25.6")
    code, summary = _call(db, ["--create-table-only"])
    assert code == 0 and summary["created"] == ["tenant_model_provider", "tenant_model_instance", "tenant_model"]
    fresh = db.schema("v0.26.0")
    for table in summary["created"]:
        assert db.q(f"SHOW CREATE TABLE `{table}`")[0][1] + ";" == ds.table_sql(fresh, table)
    code, summary = _call(db, ["--create-table-only"])
    assert summary["outcome"] == "noop"


def test_cli_wiring(capsys):
    """Once cli.py registers the verb (the lead's wiring), `ragflow-migrate data` is this handler."""
    from ragflow_migrate import cli

    cli.build_parser()
    if "data" not in cli._HANDLERS:
        pytest.skip("cli.py does not register the data verb yet")
    assert cli._HANDLERS["data"] is commands.cmd_data
    assert cli.main(["data", "--list-stages", "--host", "203.0.113.1", "--termination-log", "/dev/null"]) == 0
    assert "tenant_model_id_migration" in capsys.readouterr().out
    assert cli.main(["data", "--stages", "nope", "--host", "203.0.113.1", "--termination-log", "/dev/null"]) == 2
