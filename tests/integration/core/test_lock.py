"""Advisory-lock conformance, the same on both servers (after golang-migrate's lock test):
A holds; B waits, names A, and times out; A releases and B acquires; killing A's session
frees the lock; a run whose lock connection is killed stops with the lock-lost code."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
from structlog.testing import capture_logs
from toolrun import PYTHON, parse_events, run_tool

from ragflow_migrate import events
from ragflow_migrate.config import load_settings
from ragflow_migrate.db import connect as db
from ragflow_migrate.db import lock as lock_module
from ragflow_migrate.db.lock import AdvisoryLock
from ragflow_migrate.errors import ExitCode, LockLostError, LockTimeoutError


def settings_for(database, **flags):
    env = {**database.env, "POD_NAME": flags.pop("pod", "pod-a")}
    return load_settings({"lock_name": flags.pop("lock_name", f"conformance-{database.name}"[:64]), **flags}, env)


def test_b_waits_names_a_and_times_out(database):
    a = AdvisoryLock(settings_for(database, pod="pod-a"), _NullLog(), "run-a")
    a.acquire()
    try:
        with capture_logs() as logs:
            b = AdvisoryLock(settings_for(database, pod="pod-b", lock_timeout="2", lock_poll="0.5"), _struct(), "run-b")
            started = time.monotonic()
            with pytest.raises(LockTimeoutError) as err:
                b.acquire()
        assert 1.8 <= time.monotonic() - started < 5
        waits = [e for e in logs if e["event"] == events.LOCK_WAITING]
        assert len(waits) >= 2
        holder = waits[0]["holder"]
        assert holder["connection_id"] == a.connection_id
        assert holder["instance"] == "pod-a" and holder["tool"] == "ragflow-migrate"
        assert holder["user"] and holder["host"]
        assert "pod-a" in err.value.message and err.value.exit_code == ExitCode.LOCK_TIMEOUT
    finally:
        a.release()


def test_release_hands_the_lock_to_the_waiter(database):
    a = AdvisoryLock(settings_for(database), _NullLog(), "run-a")
    a.acquire()
    b = AdvisoryLock(settings_for(database, pod="pod-b", lock_timeout="20", lock_poll="0.5"), _NullLog(), "run-b")
    threading.Timer(1.0, a.release).start()
    started = time.monotonic()
    b.acquire()
    try:
        assert 0.8 <= time.monotonic() - started < 5
        b.verify()
    finally:
        b.release()


def test_killing_the_holders_session_frees_the_lock(database):
    a = AdvisoryLock(settings_for(database), _NullLog(), "run-a")
    a.acquire()
    admin = database.connect()
    threading.Timer(1.0, lambda: admin.cursor().execute(f"KILL {a.connection_id}")).start()
    b = AdvisoryLock(settings_for(database, pod="pod-b", lock_timeout="20", lock_poll="0.5"), _NullLog(), "run-b")
    b.acquire()
    try:
        with pytest.raises(LockLostError):
            a.verify()
    finally:
        b.release()
        admin.close()


def test_a_holder_that_leaves_while_being_described_is_not_reported(database, monkeypatch):
    """The race seen with 20 runners: W reads the lock's owner (A), A hands the lock to B and its
    session ends, leaving its published row behind (its DELETE lost to a deadlock, say); W must
    not report the half-described A (a name but no user/host) but describe B, the holder now."""
    settings = settings_for(database)
    a = AdvisoryLock(settings, _NullLog(), "run-a")
    a.acquire()
    b = AdvisoryLock(settings_for(database, pod="pod-b"), _NullLog(), "run-b")
    w = AdvisoryLock(settings_for(database, pod="pod-w", lock_timeout="5"), _NullLog(), "run-w")
    w.conn = db.connect(w.settings)
    real_describe = lock_module._describe

    def describe_after_a_leaves(conn, name, connection_id, key_offset=0):
        if connection_id == a.connection_id and a.conn is not None:
            db.query_one(a.conn, "SELECT RELEASE_LOCK(%s)", (a.name,))
            a.close()  # the published row stays, as when the DELETE failed
            b.acquire(timeout=5)
            _wait_gone(w.conn, a.connection_id)
        return real_describe(conn, name, connection_id, key_offset)

    monkeypatch.setattr(lock_module, "_describe", describe_after_a_leaves)
    try:
        holder = w.holder()
        assert holder["connection_id"] == b.connection_id, holder
        assert holder["instance"] == "pod-b" and holder["user"] and holder["host"], holder
    finally:
        b.release()
        w.close()


def _wait_gone(conn, connection_id):
    deadline = time.monotonic() + 10
    while db.query_one(conn, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s",
                       (connection_id,))[0]:
        assert time.monotonic() < deadline, f"session {connection_id} still listed"
        time.sleep(0.05)


def test_cli_waits_for_a_held_lock_and_exits_with_the_lock_code(database):
    name = f"cli-{database.name}"[:64]
    a = AdvisoryLock(settings_for(database, lock_name=name), _NullLog(), "run-a")
    a.acquire()
    try:
        result = run_tool({**database.env, "RAGFLOW_MIGRATE_LOCK_NAME": name, "RAGFLOW_MIGRATE_LOCK_TIMEOUT": "2",
                           "RAGFLOW_MIGRATE_LOCK_POLL": "0.5"}, "run")
    finally:
        a.release()
    assert result.code == ExitCode.LOCK_TIMEOUT
    waiting = result.named(events.LOCK_WAITING)
    assert waiting and waiting[0]["holder"]["instance"] == "pod-a"
    assert database.tables() == ["ragflow_migrate_lock_holder"]  # nothing else was touched


def test_a_run_whose_lock_connection_dies_stops_with_lock_lost(database, ragflow_schema):
    database.load_sql(ragflow_schema("v0.20.0"))
    env = {"PATH": "/usr/bin:/bin", "RAGFLOW_MIGRATE_LOG_FORMAT": "json", **database.env}
    proc = subprocess.Popen([PYTHON, "-m", "ragflow_migrate", "run"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if '"event":"lock.acquired"' in line:
            lock_conn = parse_events(line)[0]["connection_id"]
            admin = database.connect()
            admin.cursor().execute(f"KILL {lock_conn}")
            admin.close()
            break
    out, err = proc.communicate(timeout=120)
    found = parse_events("".join(lines) + out)
    assert proc.returncode == ExitCode.LOCK_LOST, err + out
    names = [e["event"] for e in found]
    lost_at = names.index(events.LOCK_LOST)
    # after the loss is noticed, nothing more runs
    assert not any(n in (events.STEP_STATEMENT, events.STEP_STARTED) for n in names[lost_at:])
    assert found[-1]["outcome"] == "lock_lost"
    # and whatever was left undone is done by the next run
    again = run_tool(database.env, "run")
    assert again.code == 0, again.stdout


# A runner killed mid-statement: it holds the lock and sends a long statement on its work session.
_KILLED_RUNNER = """
import sys
from ragflow_migrate.config import load_settings
from ragflow_migrate.db import connect as db
from ragflow_migrate.db.lock import AdvisoryLock

class Quiet:
    def __getattr__(self, _name):
        return lambda *a, **k: None

settings = load_settings({"lock_name": sys.argv[1]}, dict(__import__("os").environ))
work = db.connect(settings)
lock = AdvisoryLock(settings, Quiet(), "run-killed")
lock.acquire()
print("ready", flush=True)
db.query(work, "SELECT SLEEP(%s)", (int(sys.argv[2]),))
"""


def _kill_mid_statement(database, name: str, seconds: float, env: dict | None = None) -> float:
    """Start a runner that takes the lock and runs a ``seconds``-long statement, SIGKILL it while the
    statement runs; return when its statement will end (monotonic)."""
    env = {**(env or database.env), "POD_NAME": "pod-killed"}
    child = subprocess.Popen([PYTHON, "-c", _KILLED_RUNNER, name, str(seconds)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready", child.stderr.read()
    time.sleep(0.3)  # the statement is sent
    ends = time.monotonic() + seconds - 0.3
    child.kill()
    child.communicate(timeout=10)
    return ends


def test_a_killed_runners_running_statement_is_awaited_before_the_lock_is_given(database):
    """The killed runner's lock session ends at once, its statement runs on: the next runner takes the
    lock only once that statement is over (a DDL committing behind its back broke crash_resume)."""
    name = f"drain-{database.name}"[:64]
    ends = _kill_mid_statement(database, name, 3)
    with capture_logs() as logs:
        b = AdvisoryLock(settings_for(database, lock_name=name, pod="pod-b", lock_timeout="20", lock_poll="0.5"),
                         _struct(), "run-b")
        b.acquire()
    try:
        assert time.monotonic() >= ends - 0.2  # not before the statement ended
        assert time.monotonic() < ends + 3
        draining = [e for e in logs if e["event"] == events.LOCK_DRAINING]
        assert draining and draining[0]["sessions"][0]["statement"] == "SELECT SLEEP(3)"
        assert not database.connect().cursor().execute(
            "SELECT 1 FROM information_schema.PROCESSLIST WHERE INFO LIKE '%%SLEEP(3)%%' "
            "AND ID <> CONNECTION_ID()")
    finally:
        b.release()


def test_a_statement_that_outlasts_the_lock_timeout_is_a_lock_timeout_and_frees_the_lock(database):
    name = f"drain-timeout-{database.name}"[:64]
    _kill_mid_statement(database, name, 6)
    b = AdvisoryLock(settings_for(database, lock_name=name, pod="pod-b", lock_timeout="1", lock_poll="0.5"),
                     _NullLog(), "run-b")
    started = time.monotonic()
    with pytest.raises(LockTimeoutError) as err:
        b.acquire()
    assert time.monotonic() - started < 3
    assert "SELECT SLEEP(6)" in err.value.message and err.value.exit_code == ExitCode.LOCK_TIMEOUT
    admin = database.connect()
    try:
        cur = admin.cursor()
        cur.execute("SELECT IS_FREE_LOCK(%s)", (name,))
        assert cur.fetchone()[0] == 1
    finally:
        admin.close()


def test_a_killed_runners_statement_in_another_database_is_not_awaited(database):
    """Another RAGFlow database on the same server is another runner's business."""
    name = f"drain-other-{database.name}"[:64]
    other = database.server.create_database(f"{database.name}_other"[:64])
    try:
        _kill_mid_statement(database, name, 5, env=database.server.env(other))
        b = AdvisoryLock(settings_for(database, lock_name=name, pod="pod-b", lock_timeout="20", lock_poll="0.5"),
                         _NullLog(), "run-b")
        started = time.monotonic()
        b.acquire()
        b.release()
        assert time.monotonic() - started < 3  # the other database's statement runs 4.7 s more
    finally:
        time.sleep(5)  # the orphan's statement ends before its database goes
        database.server.drop_database(other)


def test_lock_sessions_and_this_process_are_not_awaited(database):
    """Other runners waiting for the lock (GET_LOCK on their lock session) and this process's own
    sessions are no earlier runner's work."""
    settings = settings_for(database, lock_timeout="20", lock_poll="0.5")
    waiter = db.connect(settings, role="lock")
    own = db.connect(settings)
    threads = [threading.Thread(target=db.query, args=(c, "SELECT SLEEP(5)")) for c in (waiter, own)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    a = AdvisoryLock(settings, _NullLog(), "run-a")
    started = time.monotonic()
    a.acquire()
    try:
        assert time.monotonic() - started < 3  # a drain would last until the sleeps end (4.7 s)
    finally:
        a.release()
        for t in threads:
            t.join()
        waiter.close()
        own.close()


class _NullLog:
    def __getattr__(self, _name):
        return lambda *a, **k: None


def _struct():
    from ragflow_migrate import logs

    return logs.get_logger()
