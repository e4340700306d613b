"""Dry runs change nothing at all (FIX D18), and report the counts the execution then applies."""

from __future__ import annotations

import data_support as ds

from ragflow_migrate.data import registry
from ragflow_migrate.data.stages.merge import NEW_TABLE, RAGFLOW_TMP


def test_dry_run_changes_nothing_and_counts_match(legacy):
    ds.rich_rows(legacy.conn, tenants=8)
    ctx = legacy.ctx(batch_size=7)
    for stage in registry.all_stages():
        before = ds.dump(legacy.conn)
        plan = stage.plan(ctx)
        assert ds.dump(legacy.conn) == before, f"{stage.name}: the dry run changed the database"
        result = stage.apply(ctx)
        applied = result.details["counts"]
        # what the execution applied is what the dry run announced (the dry run adds a breakdown)
        assert applied and set(applied) <= set(plan.counts), stage.name
        assert {k: plan.counts[k] for k in applied} == applied, stage.name
        assert not any(n.startswith("REJECTED") for n in plan.notes)
    legacy.check()
    assert not ds.has_table(legacy.conn, NEW_TABLE) and not ds.has_table(legacy.conn, RAGFLOW_TMP)


def test_step_two_dry_run_on_v026_data(legacy):
    """RAGFlow's step-2 dry run crashes on string types (TypeError) and creates its tmp table (D18)."""
    ds.spec_rows(legacy.conn)
    ds.run_gate(legacy.ctx(), "v0.26.0")
    before = ds.dump(legacy.conn)
    plans = [s.plan(legacy.ctx()) for s in registry.stages_of("v0.27.0")]
    assert ds.dump(legacy.conn) == before
    seeding, merge, ids = plans
    assert seeding.counts["models_to_seed"] > 0 and seeding.samples
    assert merge.counts["rows_before"] > 0 and "groups_dropped_inactive" in merge.counts
    assert ids.counts["tables_to_alter"] == 4 and ids.counts["references_to_resolve"] > 0
    assert any("ADD COLUMN `tenant_ocr_id`" in n for n in ids.notes)


def test_dry_run_before_the_schema_exists(legacy_at):
    """On a v0.25 database (no model tables yet) every plan says so instead of failing."""
    db = legacy_at("v0.25.6")
    ds.spec_rows(db.conn)
    before = ds.dump(db.conn)
    ctx = db.ctx()
    plans = [s.plan(ctx) for s in registry.all_stages()]
    assert ds.dump(db.conn) == before
    assert any("do not exist" in n for n in plans[0].notes)
    assert plans[3].counts["string_values_to_rewrite"] > 0  # model_id_config works on any schema


def test_data_command_dry_run_writes_nothing(legacy, capsys):
    from ragflow_migrate.data import commands

    ds.spec_rows(legacy.conn)
    before = ds.dump(legacy.conn)
    args = ds.parse_data_args([])
    summary: dict = {}
    ctx = legacy.ctx()
    assert commands.cmd_data(args, ctx.settings, ctx.log, "r1", summary) == 0
    out = capsys.readouterr().out
    assert "nothing was changed" in out and "providers_to_create: 7" in out
    assert ds.dump(legacy.conn) == before  # no record table, no journal, no lock-holder row
    assert summary["outcome"] == "planned" and summary["pending"][0] == "data tenant_model_provider"
