"""`status` answers in a few closed states and names who is working on the database."""

from __future__ import annotations

import json

from toolrun import run_tool

from ragflow_migrate.config import load_settings
from ragflow_migrate.db.lock import AdvisoryLock


class _Quiet:
    def __getattr__(self, _name):
        return lambda *a, **k: None


def status(database):
    result = run_tool(database.env, "status", "--json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)


def test_empty_then_up_to_date(database):
    data = status(database)
    assert data["state"] == "empty"
    assert data["pending"][0] == "schema install v0.27.0" and data["pending"][-1] == "verify schema"
    assert "data tenant_model_provider" in data["pending"]  # the data stages record a fresh install too
    assert data["lock"]["holder"] is None and data["last_run"] is None
    assert run_tool(database.env, "run").code == 0
    data = status(database)
    assert data["state"] == "up_to_date" and data["release"] == "v0.27.0"
    assert data["last_run"]["status"] == "finished"


def test_in_progress_while_a_runner_holds_the_lock(database, ragflow_schema):
    database.load_sql(ragflow_schema("v0.26.0"))
    settings = load_settings({}, {**database.env, "POD_NAME": "ragflow-0"})
    lock = AdvisoryLock(settings, _Quiet(), "someone")
    lock.acquire()
    try:
        data = status(database)
        text = run_tool(database.env, "status").stdout
    finally:
        lock.release()
    assert data["state"] == "in_progress"
    assert data["lock"]["holder"]["instance"] == "ragflow-0"
    assert "held by connection" in text and "ragflow-migrate on ragflow-0" in text


def test_failed_when_the_last_run_stopped_in_a_step(database, ragflow_schema):
    database.load_sql(ragflow_schema("v0.24.0"))
    blocker = database.connect(autocommit=False)
    cur = blocker.cursor()
    cur.execute("START TRANSACTION")
    cur.execute("SELECT COUNT(*) FROM document")
    try:
        failed = run_tool(database.env, "run", "--ddl-lock-wait", "1", "--ddl-deadline", "1")
    finally:
        blocker.rollback()
        blocker.close()
    assert failed.code == 7
    data = status(database)
    assert data["state"] == "failed"
    assert any(s["status"] == "failed" for s in data["last_run"]["steps"])
    check = run_tool(database.env, "status", "--check")
    assert check.code == 12 and "failed" in check.stdout
    assert run_tool(database.env, "run").code == 0
    assert status(database)["state"] == "up_to_date"
