"""Server faults: MySQL killed and restarted mid-step, a connection cut mid-statement by a TCP
proxy, the server frozen (SIGSTOP) longer than the deadlines. The tool recovers or exits with a
clear, retryable code; the next run completes and the database ends exactly as after one
uninterrupted run (no row lost or duplicated)."""

from __future__ import annotations

import time

import pytest
import relkit
from relkit import BEFORE_MODELS, OLDEST
from tcpproxy import MySQLProxy

from ragflow_migrate import events
from ragflow_migrate.errors import ExitCode

RETRYABLE = {ExitCode.LOCK_LOST, ExitCode.STEP_FAILED}


def _assert_clear_failure(result: relkit.Result, codes=RETRYABLE) -> None:
    assert result.code in codes, result.explain()
    summary = result.summary
    assert summary["exit_code"] == result.code and summary["error"] and summary.get("hint"), summary
    assert "bug" not in summary.get("hint", ""), summary


@pytest.mark.slow
def test_server_killed_and_restarted_mid_step(old_db, reference, forkrun):
    want = reference(OLDEST)
    database = old_db(OLDEST)
    server = database.server
    child = forkrun.spawn(database.env, "run")
    child.wait_for_event(lambda e: e.get("event") == events.STEP_STATEMENT and e.get("step") == "schema v0.21.0")
    server.kill()
    result = child.wait(120)
    server.start()
    _assert_clear_failure(result)
    assert "lost the connection" in result.summary["error"] or "lock" in result.summary["error"], result.summary
    again = forkrun.run(database.env, "run")
    assert again.code == 0, again.explain()
    relkit.assert_same_end_state(server, database.name, want, "re-run after the server was killed mid-step")


@pytest.mark.slow
def test_server_killed_and_restarted_mid_data_stage(old_db, reference, forkrun):
    want = reference(BEFORE_MODELS)
    database = old_db(BEFORE_MODELS)
    server = database.server
    env = {**database.env, "RAGFLOW_MIGRATE_BATCH_SIZE": "2"}
    child = forkrun.spawn(env, "run")
    child.wait_for_event(lambda e: e.get("event") == events.STEP_STARTED and e.get("kind") == "data")
    server.kill()
    result = child.wait(120)
    server.start()
    _assert_clear_failure(result)
    again = forkrun.run(database.env, "run")
    assert again.code == 0, again.explain()
    relkit.assert_same_end_state(server, database.name, want, "re-run after the server was killed mid-stage")


#: (what is cut, the statement that reaches the server before its connection dies, which one)
CUTS = {
    "ddl-in-a-step": (rb"^ALTER TABLE", 5),
    "history-record": (rb"^INSERT INTO `ragflow_migrate_history`", 1),
    "journal-entry": (rb"^INSERT INTO `ragflow_migrate_journal`", 2),
    "plan-under-the-lock": (rb"FROM `ragflow_migrate_history`", 2),
    "get-lock": (rb"GET_LOCK\(", 1),
    "lock-ownership-check": (rb"IS_USED_LOCK\(.*CONNECTION_ID", 3),
    "data-batch": (rb"^INSERT INTO `tenant_model", 2),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_connection_cut_mid_statement(old_db, reference, forkrun, cut):
    want = reference(BEFORE_MODELS)
    database = old_db(BEFORE_MODELS)
    pattern, nth = CUTS[cut]
    with MySQLProxy(database.server.port) as proxy:
        proxy.cut_on(pattern, nth)
        env = {**database.env, "MYSQL_PORT": str(proxy.port), "RAGFLOW_MIGRATE_BATCH_SIZE": "2"}
        result = forkrun.run(env, "run", timeout=120)
        assert proxy.cut_events, f"nothing matched {pattern!r}: {result.explain()}"
        _assert_clear_failure(result)
        assert result.summary["outcome"] in ("step_failed", "lock_lost"), result.summary
        proxy.clear()
        again = forkrun.run(env, "run")  # through the same proxy, now harmless
    assert again.code == 0, again.explain()
    relkit.assert_same_end_state(database.server, database.name, want, f"re-run after a cut at {cut}")


def test_server_frozen_before_the_run_is_unreachable_within_the_deadline(old_db, forkrun):
    database = old_db(BEFORE_MODELS)
    server = database.server
    env = {**database.env, "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "3", "RAGFLOW_MIGRATE_CONNECT_TIMEOUT": "1"}
    server.freeze()
    try:
        started = time.monotonic()
        result = forkrun.run(env, "run", timeout=60)
        took = time.monotonic() - started
    finally:
        server.thaw()
    assert result.code == ExitCode.UNREACHABLE, result.explain()
    assert took < 3 + 1 + 5, f"took {took:.1f}s for a 3s deadline"
    assert result.named(events.DB_WAIT_ATTEMPT), result.explain()
    assert "did not answer within 3s" in result.summary["error"]
    again = forkrun.run(database.env, "run")
    assert again.code == 0, again.explain()


@pytest.mark.slow
def test_server_frozen_mid_step_longer_than_the_deadlines(old_db, reference, forkrun):
    """Frozen for longer than every deadline the run has (connect, DDL lock wait and deadline,
    lock): when the server comes back, the run carries on or stops with a clear code, and the
    next run completes."""
    want = reference(OLDEST)
    database = old_db(OLDEST)
    server = database.server
    deadlines = {"RAGFLOW_MIGRATE_CONNECT_TIMEOUT": "1", "RAGFLOW_MIGRATE_DDL_LOCK_WAIT": "1",
                 "RAGFLOW_MIGRATE_DDL_DEADLINE": "2", "RAGFLOW_MIGRATE_LOCK_TIMEOUT": "2",
                 "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "2"}
    child = forkrun.spawn({**database.env, **deadlines}, "run")
    child.wait_for_event(lambda e: e.get("event") == events.STEP_STATEMENT and e.get("step") == "schema v0.21.0")
    server.freeze()
    time.sleep(5)
    server.thaw()
    result = child.wait(120)
    assert result.code in {ExitCode.OK, *RETRYABLE}, result.explain()
    if result.code:
        _assert_clear_failure(result)
    again = forkrun.run(database.env, "run")
    assert again.code == 0, again.explain()
    relkit.assert_same_end_state(server, database.name, want, "after a freeze mid-step")
