"""The PostgreSQL run lock, by the conformance contract of the MySQL one (A holds; B waits, names A,
and times out; A leaves and B gets it at once; a lost session is noticed), plus PostgreSQL's facts:
RAGFlow holds the same key (1241179007), and advisory locks are per database."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
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


# A runner killed mid-statement: it holds the lock and sends a long statement on its work session
# (``tune``: as the runner sets it up, where the server ends a statement whose client is gone).
_KILLED_RUNNER = """
import dataclasses, os, sys
from ragflow_migrate.backends import postgres
from ragflow_migrate.backends.postgres.connect import connect, execute
from ragflow_migrate.backends.postgres.lock import PgAdvisoryLock
from ragflow_migrate.config import load_settings

class Quiet:
    def __getattr__(self, _name):
        return lambda *a, **k: None

settings = load_settings({"db_type": "postgres"}, dict(os.environ))
work = connect(settings)
if sys.argv[2] == "tuned":
    postgres.PostgresBackend().tune(work, None, Quiet())
lock = PgAdvisoryLock(settings, Quiet(), "run-killed")
lock.acquire()
print("ready", flush=True)
execute(work, "SELECT pg_sleep(%s)", (int(sys.argv[1]),))
"""


def _kill_mid_statement(settings, seconds: int, how: str) -> float:
    env = {**os.environ, "DB_TYPE": "postgres", "POSTGRES_HOST": settings.host, "POSTGRES_PORT": str(settings.port),
           "POSTGRES_USER": settings.user, "POSTGRES_PASSWORD": settings.password.reveal(),
           "POSTGRES_DBNAME": settings.database, "RAGFLOW_MIGRATE_LOCK_NAME": settings.lock_name,
           "POD_NAME": "pod-killed"}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_RUNNER, str(seconds), how], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready", child.stderr.read()
    time.sleep(0.3)
    ends = time.monotonic() + seconds - 0.3
    child.kill()
    child.communicate(timeout=10)
    return ends


def _sleepers(settings) -> list:
    conn = connect(settings)
    try:
        return conn.execute("SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%%' "
                            "AND pid <> pg_backend_pid()").fetchall()
    finally:
        conn.close()


def test_a_killed_runners_running_statement_is_awaited_before_the_lock_is_given(pg_settings):
    ends = _kill_mid_statement(pg_settings, 3, "untuned")
    b = _lock(pg_settings, "pod-b", lock_timeout=20, lock_poll=0.5)
    with capture_logs() as captured:
        b.acquire()
    try:
        assert ends - 0.2 <= time.monotonic() < ends + 3
        draining = [e for e in captured if e["event"] == events.LOCK_DRAINING]
        assert draining and draining[0]["sessions"][0]["statement"] == "SELECT pg_sleep($1)"
        assert not _sleepers(pg_settings)
    finally:
        b.release()


def test_a_tuned_work_session_ends_its_statement_when_its_runner_is_killed(pg_settings):
    """client_connection_check_interval: the server gives up a dead client's statement by itself."""
    _kill_mid_statement(pg_settings, 30, "tuned")
    deadline = time.monotonic() + 5
    while _sleepers(pg_settings):
        assert time.monotonic() < deadline, "the killed runner's statement is still running"
        time.sleep(0.1)
    b = _lock(pg_settings, "pod-b", lock_timeout=5, lock_poll=0.5)
    b.acquire()
    b.release()


def test_other_waiters_on_the_lock_are_not_awaited(pg_settings):
    """Two runners queue behind A; the one that gets the lock does not wait for the other's queued
    pg_advisory_lock (an active statement of a ragflow-migrate session, but a lock session's)."""
    a = _lock(pg_settings, "pod-a")
    a.acquire()
    got: list[float] = []

    def wait(pod: str) -> None:
        lock = _lock(pg_settings, pod, lock_timeout=20, lock_poll=10)
        lock.acquire()
        got.append(time.monotonic())
        time.sleep(2)
        lock.release()

    threads = [threading.Thread(target=wait, args=(pod,)) for pod in ("pod-w1", "pod-w2")]
    for t in threads:
        t.start()
    time.sleep(0.5)  # both are queued in pg_advisory_lock behind A
    released = time.monotonic()
    a.release()
    for t in threads:
        t.join(timeout=30)
    assert len(got) == 2 and min(got) - released < 1.0
