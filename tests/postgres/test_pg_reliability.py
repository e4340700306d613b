"""Reliability of the PostgreSQL backend, through the real CLI (``ragflow-migrate run`` with
``DB_TYPE=postgres`` and RAGFlow's ``POSTGRES_*`` variables, JSON logs) against a real PostgreSQL 15:
the counterpart of tests/reliability/ for MySQL.

* SIGKILL at many points (the wait, the start of a migration, mid-migration, after its history row
  but before COMMIT, with COMMIT sent but unanswered, after a step completed), chained on one
  database, from fresh v0.20.0 and from RAGFlow's own v0.24.0 → v0.27.0 upgrade: after every kill
  the history is a prefix of the chain and the live schema is exactly the one an uninterrupted run
  had when it had recorded as much (a migration is one transaction with its history row: never half
  applied); the final run converges to the end state of an uninterrupted run, the next is a no-op.
* Concurrent runners (three at once; one joining a migration in progress), RAGFlow's own startup
  holding pg_advisory_lock(1241179007) (wait, exit 5, SIGTERM, release), SIGTERM mid-run, server
  faults (down before the run, started during the wait, killed mid-run, the lock or the work
  session terminated), bad input (wrong password, missing database and --create-database, a bad
  POSTGRES_PORT, a role that does not own the tables, a read-only database), the least privileges
  of a role that runs the whole upgrade, and the password never leaving the process.

The databases have no tenant rows (RAGFlow's reference dumps are schema only), so the model-data
stages find nothing to do. Runs go through ``pgrel.ForkServer`` (forked children of one process
that imported the tool: real processes, with no Python start-up each)."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pgrel  # beside this file: pytest's rootdir/prepend import puts tests/postgres on sys.path
import pytest

from ragflow_migrate import events
from ragflow_migrate.errors import ExitCode
from servers import harness, postgres

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)

REFERENCE = harness.schema_root() / postgres.LABEL
OLDEST = "fresh-v0.20.0"
UPGRADED = "upgrade-v0.24.0-to-v0.27.0"
#: quotes, backslash, format markers, non-ASCII: a password that breaks any naive quoting
SECRET = "Pa55'w\"rd\\%s-{x}-ü模-9f3kQ"
MARGIN = 4.0  # seconds on top of each bound: a loaded 2-core machine
RUN = ("run",)


# --- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forks():
    server = pgrel.ForkServer()
    yield server
    server.close()


def load(server: postgres.PostgresServer, database: str, stem: str) -> None:
    server.load_sql(database, REFERENCE / f"{stem}.sql")


def state_of(server: postgres.PostgresServer, database: str) -> tuple[list[str], dict[str, Any]]:
    with server.connect(database) as conn:
        return pgrel.history(conn), pgrel.schema_state(conn)


def progress_of(server: postgres.PostgresServer, database: str) -> tuple[tuple, dict[str, Any]]:
    with server.connect(database) as conn:
        return pgrel.progress(conn), pgrel.schema_state(conn)


_REFERENCES: dict[str, dict[str, Any]] = {}


@pytest.fixture
def reference(pg_server, forks, tmp_path):
    """``reference(stem)`` → what one uninterrupted run does to a database loaded from ``stem``:
    ``initial`` state; ``after[progress]`` the state after each step (progress = the migrations in
    the history and the data stages finished); ``final`` state; ``history``; ``steps`` (name →
    statements the step sent). Computed once per module."""

    def get(stem: str) -> dict[str, Any]:
        if stem not in _REFERENCES:
            name = pg_server.create_database(f"ref_{stem.replace('.', '_').replace('-', '_')}_{id(forks) % 10**6}")
            try:
                load(pg_server, name, stem)
                nothing, initial = progress_of(pg_server, name)
                assert nothing == ((), ())
                snapshots = tmp_path / "reference.pickle"
                result = pgrel.Proc(forks, tmp_path, pg_server.env(name), *RUN,
                                    hooks={"RELTEST_SNAPSHOTS": str(snapshots)}).wait()
                assert result.code == 0 and result.summary["outcome"] == "migrated", result.explain()
                records = pgrel.read_snapshots(snapshots)
                after = {nothing: initial}
                for record in records:
                    key = record["progress"]
                    assert after.get(key, record["state"]) == record["state"], \
                        f"{record['step']} changed the schema without recording it: " \
                        f"{pgrel.describe_difference(record['state'], after[key])}"
                    after[key] = record["state"]
                history, final = state_of(pg_server, name)
                assert list(records[-1]["progress"][0]) == history and len(history) == len(set(history)) >= 10
                _REFERENCES[stem] = {"initial": initial, "after": after, "final": final, "history": history,
                                     "steps": {r["step"]: r["statements"] for r in records}}
            finally:
                pg_server.ensure_running().drop_database(name)
        return _REFERENCES[stem]

    return get


def assert_consistent(server, database: str, want: dict[str, Any], context: str,
                      stage: str | None = None) -> list[str]:
    """The database is exactly where an uninterrupted run was when it had recorded the same
    progress: no migration half applied, none applied without its history row. ``stage``: the
    data stage the kill landed in, whose last transaction may have committed before its record
    says "finished" (the next run finds it done: the merge's INTEGER ``model_type``): the state
    after it counts too. A migration commits with its history row, so nothing like it exists there."""
    done, state = progress_of(server, database)
    history = list(done[0])
    assert history == want["history"][:len(history)], f"{context}: history {history} is not a prefix of the chain"
    assert done in want["after"], f"{context}: an uninterrupted run never recorded this progress: {done}"
    finished = (done[0], tuple(sorted((*done[1], stage)))) if stage else None
    if finished in want["after"] and state == want["after"][finished]:
        return history
    assert state == want["after"][done], \
        f"{context}: {len(history)} migrations recorded, but the schema differs from the one an uninterrupted " \
        f"run had then:\n{pgrel.describe_difference(state, want['after'][done])}"
    return history


def assert_converged(server, database: str, want: dict[str, Any], context: str) -> None:
    history, state = state_of(server, database)
    assert history == want["history"], context
    assert state == want["final"], f"{context}:\n{pgrel.describe_difference(state, want['final'])}"


def lock_holders(server, database: str) -> list[int]:
    return [r[0] for r in server.query(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s::bigint::oid AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (pgrel.RAGFLOW_KEY,), database=database)]


def wait_lock_free(server, database: str, timeout: float = 10) -> None:
    """A killed runner's session (and its lock) ends once the server sees the socket closed."""
    deadline = time.monotonic() + timeout
    while lock_holders(server, database):
        assert time.monotonic() < deadline, f"the run lock is still held after {timeout}s"
        time.sleep(0.02)


def in_progress(result: pgrel.Result) -> str | None:
    """The step a killed run was in (started, not finished), or None (between steps)."""
    current = None
    for event in result.events:
        if event.get("event") == events.STEP_STARTED:
            current = event["step"]
        elif event.get("event") in (events.STEP_FINISHED, events.STEP_SKIPPED):
            current = None
    return current


def assert_no_secret(*texts: str, secret: str = SECRET) -> None:
    fragments = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1], "Pa55'w"}
    for text in texts:
        for fragment in fragments:
            assert fragment not in text, f"the password leaked:\n{text[max(0, text.find(fragment) - 300):][:600]}"


_roles = iter(range(1, 10**6))


@pytest.fixture
def make_role(pg_server, pg_database):
    """``make_role(*grants, password=SECRET)`` → a new login role (no superuser, no CREATEDB) with those
    grants; dropped after the test, with whatever it owns in ``pg_database`` handed back first."""
    made: list[str] = []

    def make(*grants: str, password: str = SECRET) -> str:
        name = f"rel_{pg_database}_{next(_roles)}"
        pg_server.create_user(name, password)
        made.append(name)
        for grant in grants:  # in the test's database: schema and table privileges are per database
            pg_server.query(f"GRANT {grant}".replace("{user}", f'"{name}"'), database=pg_database)
        return name

    yield make
    pg_server.ensure_running()
    for name in made:
        role = '"' + name + '"'
        pg_server.query(f"REASSIGN OWNED BY {role} TO postgres", database=pg_database)
        pg_server.query(f"DROP OWNED BY {role}", database=pg_database)
        pg_server.drop_user(name)


def give_tables(server, database: str, role: str) -> None:
    """ALTER TABLE … OWNER TO ``role`` for every table of schema public (owned sequences follow)."""
    for (table,) in server.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", database=database):
        server.query(f'ALTER TABLE public."{table}" OWNER TO "{role}"', database=database)


# --- 1. SIGKILL anywhere, then a re-run -----------------------------------------------------------

#: Kill points, in chain order so that each one lies in work still pending: ("at", N) = the N-th
#: statement of the run; (step, N) = its N-th statement since the step started (1 = the journal
#: row; "mid" = half way through; -1 = the history row, before COMMIT; "last" = the journal update
#: after COMMIT); (step, "commit") = COMMIT sent, the answer never read.
KILLS = {
    OLDEST: [("at", 2), ("schema v0.21.0", 1), ("schema v0.21.0", "commit"), ("schema v0.22.0", -1),
             ("schema v0.23.0", "last"), ("schema v0.25.0", "mid"), ("schema v0.26.0", "commit"),
             ("schema v0.27.0", "mid")],
    UPGRADED: [("at", 6), ("schema v0.20.0", "commit"), ("schema v0.25.0", -1), ("schema v0.27.0", "mid")],
}


def _kill_hook(point: tuple[str, Any], steps: dict[str, int]) -> dict[str, str]:
    where, nth = point
    if where == "at":
        return {"RELTEST_KILL_AT": str(nth)}
    total = steps[where]
    nth = {"mid": total // 2, "last": total, -1: total - 1}.get(nth, nth)
    return {"RELTEST_KILL": f"{where}|{nth}"}


@pytest.mark.parametrize("stem", [OLDEST, UPGRADED])
def test_sigkill_at_many_points_then_rerun_converges(pg_server, pg_database, forks, tmp_path, reference, stem):
    want = reference(stem)
    load(pg_server, pg_database, stem)
    env = pg_server.env(pg_database)
    landed = []
    points = KILLS[stem]
    for point in points:
        hooks = _kill_hook(point, want["steps"])
        result = pgrel.Proc(forks, tmp_path, env, *RUN, hooks=hooks).wait()
        assert result.code == -signal.SIGKILL, f"kill at {point} ({hooks}): {result.explain()}"
        step = in_progress(result)
        history = assert_consistent(pg_server, pg_database, want, f"after a kill at {point} (in {step})")
        landed.append(f"{point} in {step}, {len(history)} applied")
        wait_lock_free(pg_server, pg_database)
    # the kills landed inside migrations, not only between them
    assert sum(" in schema v" in line for line in landed) >= len(points) - 2, landed
    final = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
    assert final.code == 0 and final.summary["outcome"] == "migrated", f"{landed}\n{final.explain()}"
    assert_converged(pg_server, pg_database, want, f"after kills {landed}")
    again = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
    assert again.code == 0 and again.summary["outcome"] == "noop", again.explain()
    # each migration was recorded as finished exactly once, however many runs it took
    finished = pg_server.query("SELECT step, count(*) FROM ragflow_migrate_journal WHERE status = 'finished' "
                               "AND kind = 'schema' GROUP BY step HAVING count(*) > 1", database=pg_database)
    assert finished == [], finished


def _killed(forks, tmp_path, env, hooks: dict[str, str]) -> pgrel.Result:
    """A run with ``hooks``: SIGKILLed, or (past the last step, where no other step starts) finished."""
    result = pgrel.Proc(forks, tmp_path, env, *RUN, hooks=hooks).wait()
    assert result.code in (-signal.SIGKILL, 0), f"{hooks}: {result.explain()}"
    return result


def test_sigkill_after_every_statement_then_rerun_converges(pg_server, pg_database, forks, tmp_path, reference):
    """Every statement of the upgrade from fresh v0.20.0 is a kill point once: the ones before the
    first step (wait, preflight, lock, plan), then, step by step, each n-th statement of the step
    and its first COMMIT sent but unanswered. A run never goes past the step under test
    (RELTEST_ONLY_STEP); after each kill the database is where an uninterrupted run was with the
    same recorded progress. A migration re-runs whole after a kill (one transaction), so its n-th
    statement is the same statement every time; a data stage resumes after its committed batches."""
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    env = pg_server.env(pg_database)
    kills = 0

    def check(result: pgrel.Result, what: str) -> str | None:
        nonlocal kills
        assert result.code == -signal.SIGKILL, f"{what}: {result.explain()}"
        kills += 1
        step = in_progress(result)
        stage = step[len("data "):] if step and step.startswith("data ") else None
        assert_consistent(pg_server, pg_database, want, f"after a kill at {what} (in {step})", stage)
        wait_lock_free(pg_server, pg_database)
        return step

    nth = 0
    while True:  # before the first step
        nth += 1
        result = _killed(forks, tmp_path, env, {"RELTEST_KILL_AT": str(nth), "RELTEST_ONLY_STEP": ""})
        check(result, f"statement {nth}")
        if result.named(events.PLAN_READY):
            break
    for step in want["steps"]:
        check(_killed(forks, tmp_path, env, {"RELTEST_KILL": f"{step}|commit", "RELTEST_ONLY_STEP": step}),
              f"{step}'s COMMIT")
        nth = 0
        while True:
            nth += 1
            result = _killed(forks, tmp_path, env, {"RELTEST_KILL": f"{step}|{nth}", "RELTEST_ONLY_STEP": step})
            if result.code == 0 or check(result, f"{step}, statement {nth}") != step:
                break  # the step finished in this run (or earlier): on to the next one
    assert kills > 100, kills
    print(f"{kills} kills, one after each statement of the upgrade from {OLDEST}")
    final = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
    assert final.code == 0, final.explain()
    assert_converged(pg_server, pg_database, want, f"after {kills} kills")
    again = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
    assert again.code == 0 and again.summary["outcome"] == "noop", again.explain()


# --- 2. concurrent runners, RAGFlow's startup holding the lock --------------------------------------


def _check_waits(results: dict[str, pgrel.Result]) -> int:
    """Every lock.waiting names a runner that held the lock then (pid of its lock session, pod)."""
    sessions = {e["connection_id"]: pod for pod, r in results.items() for e in r.named(events.LOCK_ACQUIRED)}
    waited = 0
    for pod, r in results.items():
        for w in r.named(events.LOCK_WAITING):
            holder = w["holder"]
            assert holder["pid"] in sessions and sessions[holder["pid"]] != pod, f"{pod}: {w}"
            assert holder["instance"] == sessions[holder["pid"]] and holder["tool"] == "ragflow-migrate", w
            assert holder["application_name"] == f"ragflow-migrate/{holder['instance']}" and holder["user"], w
        waited += bool(r.named(events.LOCK_WAITING))
    return waited


def test_three_runners_at_once_migrate_once(pg_server, pg_database, forks, tmp_path, reference):
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    env = pg_server.env(pg_database)
    procs = {f"pod-{i}": pgrel.Proc(forks, tmp_path, {**env, "POD_NAME": f"pod-{i}"}, *RUN) for i in range(3)}
    results = {pod: p.wait() for pod, p in procs.items()}
    for pod, r in results.items():
        assert r.code == 0, f"{pod}: {r.explain()}"
    migrated = [pod for pod, r in results.items() if r.summary["outcome"] == "migrated"]
    assert len(migrated) == 1, migrated
    for pod, r in results.items():
        if pod not in migrated:
            assert r.summary["outcome"] == "noop" and not r.named(events.STEP_STARTED), r.explain()
    waited = _check_waits(results)
    assert waited >= 1, "no runner waited for the lock: the three did not overlap"
    assert_converged(pg_server, pg_database, want, "after three runners")
    rows = pg_server.query("SELECT count(*), count(DISTINCT name) FROM ragflow_migrate_history", database=pg_database)
    assert rows[0][0] == rows[0][1] == len(want["history"])
    steps = pg_server.query("SELECT step, count(*) FROM ragflow_migrate_journal WHERE kind = 'schema' "
                            "GROUP BY step HAVING count(*) <> 1", database=pg_database)
    assert steps == [], f"migrations started more than once: {steps}"


def test_a_runner_joining_a_migration_waits_names_the_holder_and_does_nothing(pg_server, pg_database, forks, tmp_path,
                                                                              reference):
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    env = pg_server.env(pg_database)
    first = pgrel.Proc(forks, tmp_path, {**env, "POD_NAME": "pod-a"}, *RUN)
    acquired = first.wait_for_event(lambda e: e.get("event") == events.LOCK_ACQUIRED)
    first.wait_for_event(lambda e: e.get("event") == events.STEP_STARTED and e.get("step") == "schema v0.22.0")
    late = pgrel.Proc(forks, tmp_path, {**env, "POD_NAME": "pod-b"}, *RUN)
    a, b = first.wait(), late.wait()
    assert a.code == 0 and a.summary["outcome"] == "migrated", a.explain()
    assert b.code == 0 and b.summary["outcome"] == "noop" and not b.named(events.STEP_STARTED), b.explain()
    waits = b.named(events.LOCK_WAITING)
    assert waits, f"the late runner never said it waits:\n{b.stdout[-2000:]}"
    assert waits[0]["holder"]["pid"] == acquired["connection_id"] and waits[0]["holder"]["instance"] == "pod-a"
    assert _check_waits({"pod-a": a, "pod-b": b}) == 1
    assert_converged(pg_server, pg_database, want, "after a runner joined a migration")


def test_ragflow_holding_the_lock_makes_runners_wait_time_out_stop_or_proceed(pg_server, pg_database, forks,
                                                                                tmp_path, reference):
    """RAGFlow's startup takes pg_advisory_lock(1241179007) in its database on its own session:
    a runner waits for it, names it as a foreign client, exits 5 at --lock-timeout without having
    changed anything; SIGTERM while waiting is exit 11 within one --lock-poll slice; a runner still
    waiting when it is released gets the lock at once, and its sessions outlived a database default
    ``idle_session_timeout`` shorter than the wait."""
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    env = pg_server.env(pg_database)
    # a database default that ends idle sessions: the runners' sessions idle while they wait
    pg_server.query(f"ALTER DATABASE \"{pg_database}\" SET idle_session_timeout = '1s'")
    ragflow = pg_server.connect(pg_database, application_name="ragflow_server", options="-c idle_session_timeout=0")
    try:
        ragflow.execute("SELECT pg_advisory_lock(%s)", (pgrel.RAGFLOW_KEY,))
        ragflow_pid = ragflow.info.backend_pid
        timed_out = pgrel.Proc(forks, tmp_path, env, *RUN, "--lock-timeout", "2", "--lock-poll", "0.5").wait()
        assert timed_out.code == ExitCode.LOCK_TIMEOUT, timed_out.explain()
        assert 2 <= timed_out.took < 2 + MARGIN, timed_out.took
        summary = timed_out.summary
        assert summary["outcome"] == "lock_timeout" and f"backend pid {ragflow_pid}" in summary["error"], summary
        assert "not a ragflow-migrate runner" in summary["error"] and "ragflow_server" in summary["error"], summary
        waits = timed_out.named(events.LOCK_WAITING)
        assert len(waits) >= 2, timed_out.explain()
        assert all(w["holder"]["pid"] == ragflow_pid and w["holder"]["client"] == "RAGFlow or another client"
                   for w in waits), waits
        assert not timed_out.named(events.STEP_STARTED)
        assert progress_of(pg_server, pg_database) == (((), ()), want["initial"]), \
            "a run that never got the lock changed things"

        # SIGTERM while waiting: stops within one --lock-poll slice, takes nothing from RAGFlow
        stopped = pgrel.Proc(forks, tmp_path, env, *RUN, "--lock-timeout", "60", "--lock-poll", "1")
        stopped.wait_for_event(lambda e: e.get("event") == events.LOCK_WAITING)
        sent = time.monotonic()
        stopped.signal(signal.SIGTERM)
        interrupted = stopped.wait()
        assert interrupted.code == ExitCode.INTERRUPTED, interrupted.explain()
        assert time.monotonic() - sent < 1 + MARGIN and not interrupted.named(events.STEP_STARTED)
        assert lock_holders(pg_server, pg_database) == [ragflow_pid]

        waiting = pgrel.Proc(forks, tmp_path, env, *RUN, "--lock-timeout", "60", "--lock-poll", "5")
        waiting.wait_for_event(lambda e: e.get("event") == events.LOCK_WAITING)
        time.sleep(1.5)  # inside the blocking pg_advisory_lock of its 5 s slice, past idle_session_timeout
        released = time.monotonic()
        ragflow.execute("SELECT pg_advisory_unlock(%s)", (pgrel.RAGFLOW_KEY,))
        waiting.wait_for_event(lambda e: e.get("event") == events.LOCK_ACQUIRED)
        assert time.monotonic() - released < 2.0, "the waiter did not get the lock as soon as RAGFlow let it go"
        result = waiting.wait()
    finally:
        ragflow.close()
    assert result.code == 0 and result.summary["outcome"] == "migrated", result.explain()
    assert_converged(pg_server, pg_database, want, "after RAGFlow released the lock")


# --- 3. SIGTERM -----------------------------------------------------------------------------------


def test_sigterm_mid_run_stops_at_a_safe_point_and_a_rerun_finishes(pg_server, pg_database, forks, tmp_path,
                                                                    reference):
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    env = pg_server.env(pg_database)
    child = pgrel.Proc(forks, tmp_path, env, *RUN)
    child.wait_for_event(lambda e: e.get("event") == events.STEP_STATEMENT and e.get("step") == "schema v0.22.0")
    sent = time.monotonic()
    child.signal(signal.SIGTERM)
    result = child.wait()
    assert result.code == ExitCode.INTERRUPTED, result.explain()
    assert time.monotonic() - sent < 1 + MARGIN
    summary = result.summary
    assert summary["outcome"] == "interrupted" and "run again" in summary["hint"], summary
    names = [e["event"] for e in result.events]
    after = names[names.index(events.SIGNAL_RECEIVED):]
    assert events.STEP_STARTED not in after and events.LOCK_RELEASED in after, after
    history = assert_consistent(pg_server, pg_database, want, "after SIGTERM")
    assert 2 <= len(history) < len(want["history"]), history
    assert lock_holders(pg_server, pg_database) == []
    again = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
    assert again.code == 0 and again.summary["outcome"] == "migrated", again.explain()
    assert_converged(pg_server, pg_database, want, "re-run after SIGTERM")


# --- 4. server faults -----------------------------------------------------------------------------


def test_server_down_waits_then_exit_3_and_started_during_the_wait_proceeds(pg_server, pg_database, forks,
                                                                            tmp_path, reference):
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    env = {**pg_server.env(pg_database), "RAGFLOW_MIGRATE_CONNECT_TIMEOUT": "1"}
    pg_server.stop()
    try:
        down = pgrel.Proc(forks, tmp_path, env, *RUN, "--wait-timeout", "2").wait()
        assert down.code == ExitCode.UNREACHABLE, down.explain()
        assert 2 <= down.took < 2 + MARGIN, down.took
        attempts = down.named(events.DB_WAIT_ATTEMPT)
        assert len(attempts) >= 2 and attempts[0]["reason"] == "connection refused", attempts
        assert "did not answer within 2s" in down.summary["error"] and down.summary.get("hint"), down.summary

        waiting = pgrel.Proc(forks, tmp_path, env, *RUN, "--wait-timeout", "60")
        waiting.wait_for_event(lambda e: e.get("event") == events.DB_WAIT_ATTEMPT and e.get("attempt", 0) >= 2)
        pg_server.start()
        result = waiting.wait()
    finally:
        pg_server.ensure_running()
    assert result.code == 0 and result.summary["outcome"] == "migrated", result.explain()
    assert result.named(events.DB_READY)[0]["attempts"] >= 3
    assert_converged(pg_server, pg_database, want, "after the server came up during the wait")


def test_server_killed_mid_run_fails_clearly_and_a_rerun_finishes(pg_server, pg_database, forks, tmp_path,
                                                                  reference):
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    env = pg_server.env(pg_database)
    child = pgrel.Proc(forks, tmp_path, env, *RUN)
    child.wait_for_event(lambda e: e.get("event") == events.STEP_STATEMENT and e.get("step") == "schema v0.25.0")
    try:
        pg_server.kill()
        result = child.wait(60)
    finally:
        pg_server.start()  # crash recovery
    assert result.code in (ExitCode.LOCK_LOST, ExitCode.STEP_FAILED), result.explain()
    summary = result.summary
    assert summary["exit_code"] == result.code and summary.get("hint") and "bug" not in summary["hint"], summary
    assert "lost the connection" in summary["error"] or "lock" in summary["error"], summary
    assert '"exception"' not in result.stdout, "a lost server is foreseen: no traceback"
    assert_consistent(pg_server, pg_database, want, "after the server was killed mid-run")
    again = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
    assert again.code == 0 and again.summary["outcome"] == "migrated", again.explain()
    assert_converged(pg_server, pg_database, want, "re-run after the server was killed")


@pytest.mark.parametrize("session", ["lock", "work"])
def test_a_session_terminated_mid_run_fails_clearly_and_nothing_is_half_applied(pg_server, pg_database, forks,
                                                                                tmp_path, reference, session):
    """pg_terminate_backend() of the lock session: exit 6 (lock lost) at the next step, no step
    after it; of the work session mid-migration: exit 7 (lost the connection), that migration
    rolled back. Either way the database is consistent and a re-run finishes."""
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    env = pg_server.env(pg_database)
    child = pgrel.Proc(forks, tmp_path, env, *RUN)
    acquired = child.wait_for_event(lambda e: e.get("event") == events.LOCK_ACQUIRED)
    if session == "lock":
        child.wait_for_event(lambda e: e.get("event") == events.STEP_STARTED and e.get("step") == "schema v0.22.0")
        ended = pg_server.query("SELECT pg_terminate_backend(%s)", (acquired["connection_id"],))
    else:
        child.wait_for_event(lambda e: e.get("event") == events.STEP_STATEMENT and e.get("step") == "schema v0.22.0")
        ended = pg_server.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                                "AND application_name LIKE 'ragflow-migrate/%%' AND pid <> %s",
                                (pg_database, acquired["connection_id"]))
    assert ended == [(True,)], ended
    result = child.wait()
    summary = result.summary
    names = [e["event"] for e in result.events]
    if session == "lock":
        assert result.code == ExitCode.LOCK_LOST, result.explain()
        assert summary["outcome"] == "lock_lost" and "run it again" in summary["hint"], summary
        assert events.STEP_STARTED not in names[names.index(events.LOCK_LOST):], "a step started without the lock"
    else:
        assert result.code == ExitCode.STEP_FAILED, result.explain()
        assert summary["error"].startswith("schema v0.22.0: lost the connection to PostgreSQL"), summary
        assert "run again" in summary["hint"] and '"exception"' not in result.stdout, summary
    history = assert_consistent(pg_server, pg_database, want, f"after the {session} session was terminated")
    assert len(history) < len(want["history"]), "the run went on to the end"
    if session == "work":
        assert "003_v0_22_0" not in history, "the migration whose session died was committed"
    again = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
    assert again.code == 0, again.explain()
    assert_converged(pg_server, pg_database, want, f"re-run after the {session} session was terminated")


# --- 5. bad input ---------------------------------------------------------------------------------


def test_wrong_password_is_exit_4_at_once(pg_server, pg_database, forks, tmp_path, make_role):
    role = make_role(f"CONNECT ON DATABASE \"{pg_database}\" TO {{user}}")
    wrong = SECRET[::-1]
    result = pgrel.Proc(forks, tmp_path, pg_server.env(pg_database, role, wrong), *RUN).wait()
    assert result.code == ExitCode.AUTH, result.explain()
    assert result.took < MARGIN, f"took {result.took:.1f}s: a wrong password is not worth waiting for"
    assert not result.named(events.DB_WAIT_ATTEMPT)
    assert "password authentication failed" in result.summary["error"], result.summary
    assert "POSTGRES_PASSWORD" in result.summary["hint"], result.summary
    assert_no_secret(result.text, secret=wrong)
    assert_no_secret(result.text)


def test_missing_database_is_exit_2_and_create_database_installs_the_target_once(pg_server, forks, tmp_path, reference):
    name = f"missing_{id(tmp_path) % 10**8}"
    env = pg_server.env(name)
    fresh = pg_server.create_database(f"{name}_fresh")
    try:
        missing = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
        assert missing.code == ExitCode.CONFIG, missing.explain()
        assert "does not exist" in missing.summary["error"] and "--create-database" in missing.summary["hint"]
        assert missing.took < MARGIN
        # three pods at once: one creates it (the others' CREATE DATABASE loses, quietly), one migrates
        runs = [pgrel.Proc(forks, tmp_path, {**env, "POD_NAME": f"pod-{i}"}, *RUN, "--create-database")
                for i in range(3)]
        results = [r.wait() for r in runs]
        assert all(r.code == 0 for r in results), "\n".join(r.explain() for r in results)
        assert sorted(r.summary["outcome"] for r in results) == ["migrated", "noop", "noop"]
        assert sum(len(r.named(events.DB_CREATED)) for r in results) == 1
        load(pg_server, fresh, "fresh-v0.27.0")
        _, want = state_of(pg_server, fresh)
        history, got = state_of(pg_server, name)
        for state in (want, got):  # created tables list their columns in the models' order
            state["tables"] = {t: (tuple(sorted(columns)), indexes) for t, (columns, indexes) in state["tables"].items()}
        assert got == want, f"a created database differs from RAGFlow's fresh v0.27.0:\n" \
                            f"{pgrel.describe_difference(got, want)}"
        assert history == reference(OLDEST)["history"]
        again = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
        assert again.code == 0 and again.summary["outcome"] == "noop", again.explain()
    finally:
        pg_server.drop_database(name)
        pg_server.drop_database(fresh)


def test_postgres_port_not_a_number_is_exit_2(pg_server, pg_database, forks, tmp_path):
    result = pgrel.Proc(forks, tmp_path, {**pg_server.env(pg_database), "POSTGRES_PORT": "54x32"}, *RUN).wait()
    assert result.code == ExitCode.CONFIG, result.explain()
    assert "POSTGRES_PORT" in result.summary["error"], result.summary
    assert not result.named(events.DB_WAIT_ATTEMPT) and not result.named(events.DB_READY)


def test_a_role_that_does_not_own_the_tables_is_stopped_by_the_preflight(pg_server, pg_database, forks, tmp_path,
                                                                         reference, make_role):
    """CONNECT and SELECT are not enough on PostgreSQL (ALTER TABLE needs ownership): exit 4 before
    any write, naming the statements that would fix it."""
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    role = make_role(f"CONNECT ON DATABASE \"{pg_database}\" TO {{user}}", "USAGE ON SCHEMA public TO {user}",
                     "SELECT ON ALL TABLES IN SCHEMA public TO {user}")
    term = tmp_path / "termination-log"
    result = pgrel.Proc(forks, tmp_path, {**pg_server.env(pg_database, role, SECRET),
                                          "RAGFLOW_MIGRATE_TERMINATION_LOG": str(term)}, *RUN).wait()
    assert result.code == ExitCode.AUTH, result.explain()
    hint = result.summary["hint"]
    assert f'GRANT "postgres" TO "{role}"' in hint and f'ALTER TABLE public.<table> OWNER TO "{role}"' in hint, hint
    assert "tenant_llm" in hint, "the tables owned by someone else are named"
    assert not result.named(events.LOCK_ACQUIRED) and not result.named(events.STEP_STARTED)
    assert progress_of(pg_server, pg_database) == (((), ()), want["initial"])
    with pg_server.connect(pg_database) as conn:
        assert pgrel.own_tables(conn) == [], "the preflight wrote before refusing"
    assert_no_secret(result.text, term.read_text())


def test_read_only_database_is_exit_7_before_any_write(pg_server, pg_database, forks, tmp_path, reference):
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    pg_server.query(f'ALTER DATABASE "{pg_database}" SET default_transaction_read_only = on')
    result = pgrel.Proc(forks, tmp_path, pg_server.env(pg_database), *RUN).wait()
    assert result.code == ExitCode.STEP_FAILED, result.explain()
    assert "read-only" in result.summary["error"], result.summary
    assert not result.named(events.LOCK_ACQUIRED) and not result.named(events.STEP_STARTED)
    assert progress_of(pg_server, pg_database) == (((), ()), want["initial"])
    with pg_server.connect(pg_database) as conn:
        assert pgrel.own_tables(conn) == []


# --- 6. least privilege, 7. the password ------------------------------------------------------------


def test_a_non_superuser_owner_runs_the_whole_upgrade(pg_server, pg_database, forks, tmp_path, reference,
                                                      make_role):
    """The least a role needs (PostgreSQL 15), exactly what this test grants:

    * ``CREATE ROLE rf LOGIN PASSWORD '…'`` (NOSUPERUSER NOCREATEDB NOCREATEROLE, the defaults);
    * ``ALTER TABLE public.<table> OWNER TO rf`` for every RAGFlow table (ALTER TABLE, CREATE and
      DROP INDEX need ownership; owned sequences follow their table), or ``GRANT <owner> TO rf``;
    * ``GRANT CREATE ON SCHEMA public TO rf`` (since PostgreSQL 15 only the database owner has it:
      the tool creates its history and journal tables there);
    * CONNECT on the database (PUBLIC has it by default).

    The database owner (``ALTER DATABASE … OWNER TO rf``) gets the last two implicitly."""
    want = reference(OLDEST)
    load(pg_server, pg_database, OLDEST)
    role = make_role("CREATE ON SCHEMA public TO {user}")
    give_tables(pg_server, pg_database, role)
    assert pg_server.query("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = %s",
                           (role,)) == [(False, False, False)]
    term = tmp_path / "termination-log"
    env = {**pg_server.env(pg_database, role, SECRET), "RAGFLOW_MIGRATE_TERMINATION_LOG": str(term),
           "RAGFLOW_MIGRATE_LOG_LEVEL": "debug"}
    result = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
    assert result.code == 0 and result.summary["outcome"] == "migrated", result.explain()
    assert_converged(pg_server, pg_database, want, f"upgrade as the non-superuser owner {role}")
    owners = pg_server.query("SELECT DISTINCT pg_get_userbyid(relowner) FROM pg_class "
                             "WHERE relnamespace = 'public'::regnamespace", database=pg_database)
    assert owners == [(role,)], f"objects of another owner after the run: {owners}"
    again = pgrel.Proc(forks, tmp_path, env, *RUN).wait()
    assert again.code == 0 and again.summary["outcome"] == "noop", again.explain()
    assert_no_secret(result.text, again.text, term.read_text())


def test_the_password_never_appears_in_logs_or_the_termination_message(pg_server, pg_database, forks, tmp_path,
                                                                       make_role):
    """Failures that carry or touch the password: an error whose message contains it (as a driver's
    connection string may), a lock timeout, a wrong password; at debug level, with the termination
    message written each time."""
    load(pg_server, pg_database, OLDEST)
    role = make_role("CREATE ON SCHEMA public TO {user}")
    give_tables(pg_server, pg_database, role)
    outputs = []
    env = {**pg_server.env(pg_database, role, SECRET), "RAGFLOW_MIGRATE_LOG_LEVEL": "debug"}
    term = tmp_path / "termination-injected"
    injected = pgrel.Proc(forks, tmp_path, {**env, "RAGFLOW_MIGRATE_TERMINATION_LOG": str(term)}, *RUN,
                          hooks={"RELTEST_INJECT": "1"}).wait()
    assert injected.code == ExitCode.INTERNAL, injected.explain()
    assert "driver failed" in injected.text and "postgresql://" in injected.text, injected.explain()
    outputs += [injected.text, term.read_text()]
    holder = pg_server.connect(pg_database)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (pgrel.RAGFLOW_KEY,))
        term = tmp_path / "termination-lock"
        blocked = pgrel.Proc(forks, tmp_path, {**env, "RAGFLOW_MIGRATE_TERMINATION_LOG": str(term)}, *RUN,
                             "--lock-timeout", "1", "--lock-poll", "0.3").wait()
        assert blocked.code == ExitCode.LOCK_TIMEOUT, blocked.explain()
        outputs += [blocked.text, term.read_text()]
    finally:
        holder.close()
    for verb in (("status", "--json"), ("plan",), ("wait",)):
        r = pgrel.Proc(forks, tmp_path, env, *verb).wait()
        assert r.code in (0, ExitCode.PENDING), r.explain()
        outputs.append(r.text)
    assert_no_secret(*outputs)
