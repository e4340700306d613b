"""Honest summaries: ``run.finished`` (and the termination message) reports where the database is
AFTER the run, a data stage that found nothing to do is ``skipped``, each ``step.progress`` is
logged once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from toolrun import Result

from ragflow_migrate import backends, cli, events
from ragflow_migrate.errors import ExitCode
from ragflow_migrate.runner import RunReport
from ragflow_migrate.steps import Plan
from servers.harness import schema_root

CATALOGUE = str(schema_root().parent / "ragflow-data" / "llm_factories-v0.27.0.json")
OLD, TARGET = "v0.25.6", "v0.27.0"


def insert(database, table: str, **values: Any) -> None:
    """Insert a row, filling the NOT NULL columns without a default that the test does not care about."""
    rows = database.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "AND is_nullable = 'NO' AND column_default IS NULL AND extra NOT LIKE %s", (database.name, table, "%auto%"))
    row: dict[str, Any] = {}
    for name, dtype in rows:
        row[name] = 0 if dtype in ("int", "bigint", "tinyint", "smallint", "float", "double", "decimal") else (
            "2024-01-01 00:00:00" if dtype in ("datetime", "timestamp", "date") else "")
    row.update(values)
    cols = ", ".join(f"`{c}`" for c in row)
    database.query(f"INSERT INTO `{table}` ({cols}) VALUES ({', '.join(['%s'] * len(row))})", tuple(row.values()))


def legacy_rows(database, *, api_key: str = "sk-a") -> None:
    for tid in ("tenant1", "tenant2"):
        insert(database, "tenant", id=tid, llm_id="gpt-4o@OpenAI", embd_id="text-embedding-3-small@OpenAI",
               asr_id="", img2txt_id="", rerank_id="", parser_ids="", credit=0, status="1")
        insert(database, "tenant_llm", tenant_id=tid, llm_factory="OpenAI", llm_name="gpt-4o", api_key=api_key,
               model_type="chat", status="1", max_tokens=8192, used_tokens=0)
        insert(database, "tenant_llm", tenant_id=tid, llm_factory="OpenAI", llm_name="text-embedding-3-small",
               api_key=api_key, model_type="embedding", status="1", max_tokens=8192, used_tokens=0)


def run(tool, *args: str) -> Result:
    return tool("run", *args, extra_env={"RAGFLOW_MIGRATE_CATALOG": CATALOGUE})


def status(tool) -> dict[str, Any]:
    result = tool("status", "--json", extra_env={"RAGFLOW_MIGRATE_CATALOG": CATALOGUE})
    assert result.code == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def termination(database) -> dict[str, Any]:
    return json.loads(Path(database.env["RAGFLOW_MIGRATE_TERMINATION_LOG"]).read_text())


def assert_progress_logged_once(result: Result) -> None:
    seen = Counter((e["step"], e["done"], e.get("total"), e["unit"]) for e in result.named(events.STEP_PROGRESS))
    assert [k for k, n in seen.items() if n > 1] == [], seen


def assert_skips_are_consistent(result: Result) -> None:
    """Each step ends with exactly one of step.finished / step.skipped, as the summary says."""
    finished = {e["step"] for e in result.named(events.STEP_FINISHED)}
    skipped = {e["step"]: e["reason"] for e in result.named(events.STEP_SKIPPED)}
    assert not finished & set(skipped)
    steps = {s["step"]: s for s in result.summary["steps"]}
    assert {n for n, s in steps.items() if s["status"] == "applied"} == finished
    assert {n: s["reason"] for n, s in steps.items() if s["status"] == "skipped"} == skipped
    assert all(reason for reason in skipped.values())


# --- after a migration --------------------------------------------------------------------------------


def test_a_migration_reports_the_state_and_release_after_it(database, tool, ragflow_schema):
    database.load_sql(ragflow_schema(OLD))
    legacy_rows(database)
    result = run(tool)
    assert result.code == 0, result.stdout + result.stderr
    summary = result.summary
    assert summary["outcome"] == "migrated"
    assert (summary["state"], summary["release"]) == ("up_to_date", TARGET), summary
    assert (summary["from_state"], summary["from_release"]) == ("pending", OLD), summary
    written = termination(database)
    assert (written["outcome"], written["state"], written["release"]) == ("migrated", "up_to_date", TARGET)
    assert (written["from_state"], written["from_release"]) == ("pending", OLD)
    assert written["steps"] == summary["steps"]
    # the data stages had rows to move: applied, with their counts
    applied = [s for s in summary["steps"] if s["kind"] == "data" and s["status"] == "applied"]
    assert any(s["changes"] for s in applied), summary["steps"]
    assert_skips_are_consistent(result)
    assert_progress_logged_once(result)
    assert result.named(events.STEP_PROGRESS), "the data stages report their progress"
    # what status says afterwards is what the summary said
    after = status(tool)
    assert (after["state"], after["release"]) == ("up_to_date", TARGET)

    again = run(tool)
    assert again.code == 0 and again.summary["outcome"] == "noop"
    assert (again.summary["state"], again.summary["release"]) == ("up_to_date", TARGET)
    assert "from_state" not in again.summary and again.summary["steps"] == []
    assert termination(database)["state"] == "up_to_date"


def test_data_stages_with_nothing_to_do_are_skipped(database, tool, ragflow_schema):
    """A v0.25.6 database without a single legacy model row: the data stages find nothing."""
    database.load_sql(ragflow_schema(OLD))
    result = run(tool)
    assert result.code == 0, result.stdout + result.stderr
    summary = result.summary
    assert (summary["state"], summary["release"]) == ("up_to_date", TARGET), summary
    data = [s for s in summary["steps"] if s["kind"] == "data"]
    assert data and all(s["status"] == "skipped" and s["reason"] for s in data if not s["changes"]), data
    skipped = {s["step"] for s in data if s["status"] == "skipped"}
    assert "data tenant_model_provider" in skipped, data
    assert all(s["status"] == "applied" for s in summary["steps"] if s["kind"] != "data"), summary["steps"]
    assert_skips_are_consistent(result)
    assert_progress_logged_once(result)
    assert {s["step"]: s["status"] for s in termination(database)["steps"]} == \
        {s["step"]: s["status"] for s in summary["steps"]}
    # the journal still records each of them as finished (status and last_run rely on it)
    journal = dict(database.query("SELECT step, status FROM ragflow_migrate_journal"))
    assert all(journal[name] == "finished" for name in skipped), journal
    details = dict(database.query("SELECT step, detail FROM ragflow_migrate_journal"))
    assert all("skipped" in json.loads(details[name]) for name in skipped), details
    after = status(tool)
    assert after["state"] == "up_to_date" and after["last_run"]["status"] == "finished"


def test_a_fresh_install_skips_the_data_stages(database, tool):
    result = run(tool)
    assert result.code == 0, result.stdout + result.stderr
    summary = result.summary
    assert summary["from_state"] == "empty" and "from_release" not in summary, summary  # None: not logged
    assert (summary["state"], summary["release"]) == ("up_to_date", TARGET), summary
    assert all(s["status"] == "skipped" for s in summary["steps"] if s["kind"] == "data" and not s["changes"])
    assert_skips_are_consistent(result)
    assert_progress_logged_once(result)


# --- after a failure ----------------------------------------------------------------------------------


def test_a_rejected_stage_reports_the_state_the_database_is_in_then(database, tool, ragflow_schema):
    """A legacy key too long for its new column: exit 10 (whether at a preflight or at the stage);
    the summary says where the database is now, as `status` does, not where it was."""
    database.load_sql(ragflow_schema(OLD))
    legacy_rows(database, api_key="k" * 600)
    result = run(tool)
    assert result.code == ExitCode.DATA_REJECTED, result.stdout + result.stderr
    summary = result.summary
    assert summary["outcome"] == "data_rejected" and summary["exit_code"] == ExitCode.DATA_REJECTED
    assert "api_key" in summary["error"], summary  # the re-plan does not mask the error
    written = termination(database)
    after = status(tool)  # (writes its own termination message)
    assert after["pending"], after
    assert summary["state"] == "pending" and summary.get("release") == after["release"], (summary, after)
    if "from_state" in summary:  # the run planned its steps before it stopped
        assert (summary["from_state"], summary["from_release"]) == ("pending", OLD), summary
    assert (written["state"], written.get("release"), written["exit_code"]) == ("pending", after["release"], 10)
    assert_skips_are_consistent(result)  # the steps completed before the rejection, if any
    assert_progress_logged_once(result)


# --- the re-plan itself (no server) ---------------------------------------------------------------------


class _Conn:
    def __init__(self, open_: bool = True) -> None:
        self.open = open_
        self._read_timeout = None
        self.rolled_back = False

    def rollback(self) -> None:
        self.rolled_back = True


class _Log:
    def __init__(self) -> None:
        self.warnings: list[dict[str, Any]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.warnings.append({"event": event, **fields})


def _ctx(conn: _Conn | None) -> SimpleNamespace:
    return SimpleNamespace(conn=conn, log=_Log(), backend=backends.get("mysql"))


def _pending_report(steps: list[Any] | None = None) -> RunReport:
    plan = Plan(state="pending", target=TARGET, release=OLD, steps=[object()])
    return RunReport(outcome="migrated", plan=plan, steps=steps or [])


def test_a_lost_connection_makes_the_state_unknown_never_stale():
    fields = cli._state_after(_ctx(_Conn(open_=False)), lambda _ctx: 1 / 0, _pending_report(), failed=True)
    assert fields == {"from_state": "pending", "from_release": OLD, "state": "unknown"}


def test_a_failing_replan_neither_raises_nor_reports_stale_values():
    ctx = _ctx(_Conn())

    def broken(_ctx: Any) -> Plan:
        raise OSError("gone")

    fields = cli._state_after(ctx, broken, _pending_report(), failed=True)
    assert fields == {"from_state": "pending", "from_release": OLD, "state": "unknown"}
    assert ctx.conn._read_timeout is None and ctx.conn.rolled_back
    assert "gone" in ctx.log.warnings[0]["message"]


def test_after_a_failure_the_replan_is_bounded_and_reads_the_database_as_it_is():
    ctx = _ctx(_Conn())
    seen = {}

    def planner(c: Any) -> Plan:
        seen["timeout"] = c.conn._read_timeout
        return Plan(state="pending", target=TARGET, release="v0.26.0", steps=[object()])

    fields = cli._state_after(ctx, planner, _pending_report(), failed=True)
    assert fields == {"from_state": "pending", "from_release": OLD, "state": "pending", "release": "v0.26.0"}
    assert seen["timeout"] and ctx.conn._read_timeout is None and ctx.conn.rolled_back


def test_no_connection_at_all_says_nothing_about_the_database():
    assert cli._state_after(None, lambda _ctx: 1 / 0, RunReport(outcome="noop"), failed=True) == {}


def test_a_noop_run_reports_its_plan_without_planning_again():
    plan = Plan(state="up_to_date", target=TARGET, release=TARGET)
    fields = cli._state_after(_ctx(_Conn()), lambda _ctx: 1 / 0, RunReport(outcome="noop", plan=plan), failed=False)
    assert fields == {"state": "up_to_date", "release": TARGET}
