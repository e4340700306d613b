"""SIGTERM (and SIGINT): the run stops at the next safe point within a bounded time, releases the
lock, reports ``interrupted`` with exit code 11, and a re-run completes the work.

The bounds are the waits the tool is in when the signal comes: between two statements of a step
(the statement in flight finishes: milliseconds here), waiting for the lock (one poll slice),
waiting for MySQL (at once), a DDL waiting for a metadata lock (one ``--ddl-lock-wait``)."""

from __future__ import annotations

import signal
import socket
import time

import pytest
import relkit
from relkit import OLDEST

from ragflow_migrate import events
from ragflow_migrate.errors import ExitCode

MARGIN = 4.0  # seconds on top of each bound: a loaded 2-core CI machine


def _stop(child: relkit.Child, sig: int = signal.SIGTERM) -> tuple[relkit.Result, float]:
    sent = time.monotonic()
    child.kill(sig)
    result = child.wait(120)
    return result, time.monotonic() - sent


def _assert_interrupted(result: relkit.Result, sig: int = signal.SIGTERM) -> None:
    assert result.code == ExitCode.INTERRUPTED, result.explain()
    names = [e["event"] for e in result.events]
    assert events.SIGNAL_RECEIVED in names, result.explain()
    assert result.named(events.SIGNAL_RECEIVED)[0]["signal"] == signal.Signals(sig).name
    summary = result.summary
    assert summary["outcome"] == "interrupted" and summary["exit_code"] == 11
    assert "safe point" in summary["error"] and "run again" in summary["hint"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_mid_step_stops_at_the_next_statement_and_a_rerun_completes(old_db, reference, forkrun, sig):
    want = reference(OLDEST)
    database = old_db(OLDEST)
    child = forkrun.spawn(database.env, "run")
    # well inside the pipeline: a few statements into the second schema step
    child.wait_for_event(lambda e: e.get("event") == events.STEP_STATEMENT and e.get("step") == "schema v0.21.0")
    result, took = _stop(child, sig)
    _assert_interrupted(result, sig)
    assert took < 1.0 + MARGIN, f"took {took:.1f}s to stop"
    names = [e["event"] for e in result.events]
    after = names[names.index(events.SIGNAL_RECEIVED):]
    assert after.count(events.STEP_STATEMENT) <= 1, "more than the statement in flight ran after the signal"
    assert events.STEP_STARTED not in after
    assert events.LOCK_RELEASED in after, "the lock was not released"
    assert relkit.lock_is_free(database.server), "the lock outlived the interrupted run"
    assert result.summary["steps"], "the summary should list the steps completed before the signal"

    status = forkrun.run(database.env, "status", "--json")
    assert status.code == 0 and '"state": "failed"' in status.stdout, status.explain()
    again = forkrun.run(database.env, "run")
    assert again.code == 0 and again.summary["outcome"] == "migrated", again.explain()
    relkit.assert_same_end_state(database.server, database.name, want, "re-run after a signal")


def test_sigterm_while_waiting_for_the_lock(old_db, forkrun):
    database = old_db(OLDEST)
    before = relkit.end_state(database.server, database.name)
    holder = database.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT GET_LOCK('init_database_tables', 0)")
            assert cur.fetchone()[0] == 1
        child = forkrun.spawn(database.env, "run")  # default --lock-poll: 2s slices
        child.wait_for_event(lambda e: e.get("event") == events.LOCK_WAITING)
        result, took = _stop(child)
        _assert_interrupted(result)
        assert took < 2.0 + MARGIN, f"took {took:.1f}s to stop while waiting for the lock"
        assert not result.named(events.STEP_STARTED)
        with holder.cursor() as cur:  # the holder still holds it: nothing was stolen or broken
            cur.execute("SELECT IS_USED_LOCK('init_database_tables') = CONNECTION_ID()")
            assert cur.fetchone()[0] == 1
    finally:
        holder.close()
    after = relkit.end_state(database.server, database.name)
    assert {k: after[k] for k in ("schema", "rows")} == {k: before[k] for k in ("schema", "rows")}


def test_sigterm_while_waiting_for_mysql(forkrun, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: connection refused
    env = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": str(port), "RAGFLOW_MIGRATE_WAIT_TIMEOUT": "120"}
    child = forkrun.spawn(env, "run")
    child.wait_for_event(lambda e: e.get("event") == events.DB_WAIT_ATTEMPT and e.get("attempt", 0) >= 2)
    result, took = _stop(child)
    _assert_interrupted(result)
    assert took < MARGIN, f"took {took:.1f}s to stop while waiting for MySQL"


def test_sigterm_while_a_ddl_waits_for_a_metadata_lock(old_db, reference, forkrun):
    want = reference(OLDEST)
    database = old_db(OLDEST)
    blocker = database.connect(autocommit=False)
    try:
        with blocker.cursor() as cur:  # an open transaction on a table the first migrations alter
            cur.execute("SELECT COUNT(*) FROM `knowledgebase`")
        env = {**database.env, "RAGFLOW_MIGRATE_DDL_LOCK_WAIT": "1"}
        child = forkrun.spawn(env, "run")
        child.wait_for_event(lambda e: e.get("event") == events.STEP_WAITING, timeout=60)
        result, took = _stop(child)
        _assert_interrupted(result)
        assert took < 1.0 + MARGIN, f"took {took:.1f}s to stop while a DDL waited"
        waiting = result.named(events.STEP_WAITING)[0]
        assert "metadata lock" in waiting["reason"]
    finally:
        blocker.rollback()
        blocker.close()
    again = forkrun.run(database.env, "run")
    assert again.code == 0, again.explain()
    relkit.assert_same_end_state(database.server, database.name, want, "re-run after SIGTERM in a DDL wait")
