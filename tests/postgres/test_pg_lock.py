"""The PostgreSQL run lock, by the conformance contract of the MySQL one (A holds; B waits, names A,
and times out; A leaves and B gets it at once; a lost session is noticed), plus PostgreSQL's facts:
RAGFlow holds the same key (1241179007), and advisory locks are per database."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest
from structlog.testing import capture_logs

from ragflow_migrate import events, logs
from ragflow_migrate.backends.postgres.connect import connect
from ragflow_migrate.backends.postgres.lock import PgAdvisoryLock, describe_holder, lock_holder, lock_key
from ragflow_migrate.errors import ExitCode, LockLostError, LockTimeoutError

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)

RAGFLOW_KEY = 1241179007  # RAGFlow's key for "init_database_tables"


def _lock(settings, pod: str, **changes) -> PgAdvisoryLock:
    return PgAdvisoryLock(dataclasses.replace(settings, instance=pod, **changes), logs.get_logger(), f"run-{pod}")


def _waits(captured):
    return [e for e in captured if e["event"] == events.LOCK_WAITING]


def test_the_key_is_ragflows():
    assert lock_key("init_database_tables") == RAGFLOW_KEY


def test_b_waits_names_a_and_times_out(pg_settings):
    a = _lock(pg_settings, "pod-a")
    a.acquire()
    try:
        b = _lock(pg_settings, "pod-b", lock_timeout=1.5, lock_poll=0.5)
        started = time.monotonic()
        with capture_logs() as captured, pytest.raises(LockTimeoutError) as err:
            b.acquire()
        assert 1.4 <= time.monotonic() - started < 4
        a.verify()  # B's wait took nothing from A
    finally:
        a.release()
    assert err.value.exit_code == ExitCode.LOCK_TIMEOUT
    assert "ragflow-migrate on pod-a" in err.value.message
    waits = _waits(captured)
    assert len(waits) >= 2
    holder = waits[0]["holder"]
    assert holder["pid"] == a.connection_id and holder["instance"] == "pod-a"
    assert holder["tool"] == "ragflow-migrate" and holder["application_name"] == "ragflow-migrate/pod-a"
    assert holder["user"] == "postgres" and holder["host"] == "127.0.0.1"
    assert b.conn is None  # the waiter's session is closed


def test_a_foreign_holder_is_named_ragflow(pg_server, pg_settings):
    """RAGFlow's startup holds pg_advisory_lock(1241179007) on its own session."""
    ragflow = pg_server.connect(pg_settings.database, application_name="ragflow_server")
    try:
        ragflow.execute("SELECT pg_advisory_lock(%s)", (RAGFLOW_KEY,))
        b = _lock(pg_settings, "pod-b", lock_timeout=0.3, lock_poll=0.2)
        with pytest.raises(LockTimeoutError) as err:
            b.acquire()
        holder = err.value.details["holder"]
        assert holder["pid"] == ragflow.info.backend_pid and holder["client"] == "RAGFlow or another client"
        assert "instance" not in holder
        assert "RAGFlow or another client (application_name 'ragflow_server')" in err.value.message
        assert lock_holder(ragflow, pg_settings)["pid"] == ragflow.info.backend_pid  # what `status` shows
    finally:
        ragflow.close()


def test_the_waiter_gets_the_lock_as_soon_as_the_holder_leaves(pg_settings):
    a = _lock(pg_settings, "pod-a")
    a.acquire()
    # A slice far longer than the wait: B is granted from the server's queue, not at its next try.
    b = _lock(pg_settings, "pod-b", lock_timeout=20, lock_poll=10)
    threading.Timer(0.5, a.release).start()
    started = time.monotonic()
    with capture_logs() as captured:
        b.acquire()
    try:
        assert 0.4 <= time.monotonic() - started < 2.5
        b.verify()
        assert b.holder()["pid"] == b.connection_id
    finally:
        b.release()
    assert [e["event"] for e in captured if e["event"] != events.LOCK_RELEASED] == [  # A's release is captured too
        events.LOCK_WAITING, events.LOCK_ACQUIRED]
    conn = connect(pg_settings)
    try:
        assert lock_holder(conn, pg_settings) is None
    finally:
        conn.close()


def test_verify_raises_when_the_lock_session_is_terminated(pg_server, pg_settings):
    a = _lock(pg_settings, "pod-a")
    a.acquire()
    pg_server.query("SELECT pg_terminate_backend(%s)", (a.connection_id,))
    with capture_logs() as captured, pytest.raises(LockLostError) as err:
        a.verify()
    assert err.value.exit_code == ExitCode.LOCK_LOST
    assert [e["event"] for e in captured] == [events.LOCK_LOST]
    assert a.conn is None
    a.release()  # nothing left to release; no error


def test_verify_raises_when_the_lock_was_released_behind_our_back(pg_settings):
    with _lock(pg_settings, "pod-a") as a:
        a.conn.execute("SELECT pg_advisory_unlock_all()")
        with pytest.raises(LockLostError, match="no longer held"):
            a.verify()


def test_a_killed_holder_frees_the_lock(pg_settings):
    a = _lock(pg_settings, "pod-a")
    a.acquire()
    a.conn.close()  # what a killed runner's session does: no unlock, the session just ends
    b = _lock(pg_settings, "pod-b", lock_timeout=5, lock_poll=0.5)
    started = time.monotonic()
    b.acquire()
    try:
        assert time.monotonic() - started < 2
    finally:
        b.release()


def test_the_same_key_in_another_database_is_another_lock(pg_server, pg_settings):
    other = pg_server.create_database(f"{pg_settings.database}_other")
    try:
        with _lock(pg_settings, "pod-a"), _lock(pg_settings, "pod-b", database=other) as b:
            b.verify()  # held at once, beside A's
            assert b.holder()["instance"] == "pod-b"
    finally:
        pg_server.drop_database(other)


def test_no_server_timeout_ends_the_lock_session(pg_server, pg_settings):
    pg_server.query(f'ALTER DATABASE "{pg_settings.database}" SET idle_session_timeout = \'1s\'')
    pg_server.query(f'ALTER DATABASE "{pg_settings.database}" SET statement_timeout = \'1s\'')
    with _lock(pg_settings, "pod-a") as a:
        settings = a.conn.execute("SELECT current_setting('idle_session_timeout'), "
                                  "current_setting('statement_timeout'), "
                                  "current_setting('idle_in_transaction_session_timeout')").fetchone()
        assert settings == ("0", "0", "0")


def test_describe_holder():
    assert describe_holder(None) == "nobody"
    assert describe_holder({"pid": 7, "user": "rag_flow", "host": None, "application_name": ""}) == (
        "backend pid 7 (rag_flow), not a ragflow-migrate runner: RAGFlow or another client")
