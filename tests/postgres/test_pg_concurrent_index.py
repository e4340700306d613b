"""Indexes of big tables built ``CONCURRENTLY`` on PostgreSQL (backends/postgres/indexes.py,
migration.py), against a real PostgreSQL 15.

"Big" is ``--blocking-ddl-rows``, lowered here to 100 so that a few hundred rows make a table big.
RAGFlow's fresh v0.26.4 has both kinds of build in its v0.27.0 migration: the unique index of
``compilation_template`` on existing columns (built before the migration's transaction) and the six
``knowledgebase.structure_*`` / ``*_task_id`` indexes of columns the migration adds (built after it).
A session that keeps a transaction open on ``compilation_template`` makes the build wait, which is
the moment a writer's INSERT is shown to go through, the blockers are named, or the runner is
killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pgrel  # beside this file: pytest's rootdir/prepend import puts tests/postgres on sys.path
import psycopg
import pytest

from integration.toolrun import run_tool
from ragflow_migrate import events
from ragflow_migrate.backends.postgres import migration
from ragflow_migrate.backends.postgres.introspect import invalid_indexes, live_snapshot
from ragflow_migrate.backends.postgres.pgform import to_postgres
from ragflow_migrate.schema import chain
from ragflow_migrate.schema.operations import CreateTable
from servers import harness, postgres

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)

REFERENCE = harness.schema_root() / postgres.LABEL
BIG = ("--blocking-ddl-rows", "100")
UNIQUE = "compilationtemplate_tenant_id_group_id_name_is_builtin_status"
OLD_UNIQUE = "compilationtemplate_tenant_id_name_is_builtin_status"
LATER = ("structure_graph_task_id", "structure_mindmap_task_id", "timeline_task_id", "session_graph_task_id",
         "session_essence_task_id", "structure_task_id")

_TEMPLATES = ("INSERT INTO compilation_template (id, name, kind, config, is_builtin, tenant_id, group_id, status) "
              "SELECT md5(%s || g), %s || g, 'k', '{}', false, 't1', 'g1', '1' FROM generate_series(1, %s) g")
_KBS = ("INSERT INTO knowledgebase (id, tenant_id, name, embd_id, permission, created_by, doc_num, token_num, "
        "chunk_num, similarity_threshold, vector_similarity_weight, parser_id, parser_config, pagerank) "
        "SELECT md5('kb' || g), 't1', 'kb' || g, '', 'me', 't1', 0, 0, 0, 0.2, 0.3, 'naive', '{}', 0 "
        "FROM generate_series(1, %s) g")


def _load(pg_server, database: str, stem: str = "fresh-v0.26.4", rows: int = 200) -> psycopg.Connection:
    pg_server.load_sql(database, REFERENCE / f"{stem}.sql")
    conn = pg_server.connect(database)
    conn.execute(_TEMPLATES, ("ct", "n", rows))
    conn.execute(_KBS, (rows,))
    return conn


def _env(pg_server, database: str) -> dict[str, str]:
    return {**pg_server.env(database), "RAGFLOW_MIGRATE_TERMINATION_LOG": os.devnull}


def _hold_templates(pg_server, database: str) -> psycopg.Connection:
    """A RAGFlow-like session with an open transaction that has written to compilation_template:
    a concurrent build of its index waits for it to end."""
    other = pg_server.connect(database)
    other.execute("SET application_name = 'a-ragflow-pod'")
    other.execute("BEGIN")
    other.execute(_TEMPLATES, ("held", "held", 1))
    return other


class Runner:
    """``python -m ragflow_migrate`` in the background, its JSON log in a file."""

    def __init__(self, env: dict[str, str], out: Path, *args: str) -> None:
        full = {"PATH": os.environ.get("PATH", ""), "RAGFLOW_MIGRATE_LOG_FORMAT": "json", **env}
        self.out = out
        self.file = out.open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "ragflow_migrate", *args], env=full, stdout=self.file,
                                     stderr=subprocess.STDOUT, text=True)

    def events(self) -> list[dict]:
        return [e for e in parse_events_lenient(self.out.read_text()) if "event" in e]

    def wait_for(self, predicate, what: str, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [e for e in self.events() if predicate(e)]
            if found:
                return found[0]
            assert self.proc.poll() is None, f"exit {self.proc.returncode} before {what}:\n{self.out.read_text()[-3000:]}"
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout}s:\n{self.out.read_text()[-3000:]}")

    def finish(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self.file.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.finish()


def parse_events_lenient(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line cut by SIGKILL
    return out


def _waiting_build(conn, database: str, timeout: float = 120, build: str = "CREATE UNIQUE INDEX CONCURRENTLY") -> int:
    """The pid of the session whose CREATE … CONCURRENTLY waits for a lock (a virtual transaction id)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' "
                           "AND query LIKE %s", (database, build + "%")).fetchone()
        if row:
            return row[0]
        time.sleep(0.05)
    raise AssertionError("no concurrent build waiting")


def _index_state(conn) -> list[tuple]:
    return conn.execute("SELECT t.relname, i.relname, x.indisvalid FROM pg_index x JOIN pg_class i ON "
                        "i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname IN "
                        "('compilation_template', 'knowledgebase') ORDER BY 1, 2").fetchall()


@pytest.fixture(scope="module")
def reference(pg_server):
    """RAGFlow's own fresh v0.27.0 (its dump): the indexes every run must end with."""
    database = pg_server.create_database("pg_cic_reference")
    try:
        pg_server.load_sql(database, REFERENCE / "fresh-v0.27.0.sql")
        with pg_server.connect(database) as conn:
            yield live_snapshot(conn)
    finally:
        pg_server.drop_database(database)


def _assert_reference_indexes(conn, reference) -> None:
    live = live_snapshot(conn)
    for table in ("compilation_template", "knowledgebase", "tenant"):
        assert live.tables[table].indexes == reference.tables[table].indexes, table
    assert invalid_indexes(conn) == []


def _ragflow_tables(conn) -> dict:
    return {n: t for n, t in live_snapshot(conn).tables.items() if not n.startswith(pgrel.OWN_PREFIX)}


def _statements(result_events: list[dict], step: str = "schema v0.27.0") -> list[dict]:
    return [e for e in result_events if e.get("event") == events.STEP_STATEMENT and e.get("step") == step]


def test_big_tables_get_their_indexes_concurrently_while_writes_go_on(pg_server, pg_database, reference, tmp_path):
    conn = _load(pg_server, pg_database)
    env = _env(pg_server, pg_database)
    plan = run_tool(env, "plan", "--json", *BIG)
    assert plan.code == 0, plan.stderr[-3000:]
    (planned,) = [s["sql"] for s in json.loads(plan.stdout)["steps"] if s["step"] == "schema v0.27.0"]
    concurrent = [i for i, sql in enumerate(planned) if "CONCURRENTLY" in sql]
    assert f'CREATE UNIQUE INDEX CONCURRENTLY "{UNIQUE}"' in planned[0], planned[0]
    assert "before the migration's transaction" in planned[0]
    assert [planned[i].rsplit("\n", 1)[1] for i in concurrent[1:]] == [
        f'CREATE INDEX CONCURRENTLY "knowledgebase_{c}" ON "knowledgebase" ("{c}")' for c in LATER]
    assert concurrent[1:] == list(range(len(planned) - len(LATER), len(planned)))  # after everything else
    assert 'CREATE INDEX "tenant_tenant_ocr_id" ON "tenant" ("tenant_ocr_id")' in planned  # a small table

    other = _hold_templates(pg_server, pg_database)
    runner = Runner(env, tmp_path / "run.out", "run", *BIG, "--ddl-lock-wait", "0.3")
    try:
        builder = _waiting_build(conn, pg_database)
        # the build waits; RAGFlow's writes to the table go on (a plain CREATE INDEX would hold them)
        writer = pg_server.connect(pg_database)
        writer.execute("SET lock_timeout = '3s'")
        started = time.monotonic()
        writer.execute(_TEMPLATES, ("w", "w", 5))
        writer.execute("UPDATE compilation_template SET description = 'x' WHERE name = 'n1'")
        assert time.monotonic() - started < 2
        writer.close()
        # meanwhile the index exists INVALID and is not read as present
        assert ("compilation_template", UNIQUE, False) in _index_state(conn)
        assert UNIQUE not in live_snapshot(conn, tables=["compilation_template"]).tables["compilation_template"].indexes
        waiting = runner.wait_for(lambda e: e.get("event") == events.STEP_WAITING and e.get("blocker"),
                                  "step.waiting naming the blocker")
        assert [b["pid"] for b in waiting["blocker"]] == [other.info.backend_pid]
        assert waiting["blocker"][0]["application_name"] == "a-ragflow-pod"
        assert "concurrent index build on compilation_template" in waiting["reason"]
        assert conn.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (builder,)).fetchone() == ("active",)
        other.execute("COMMIT")
        code = runner.finish()
    finally:
        if runner.proc.poll() is None:
            runner.kill()
        other.close()
    found = runner.events()
    assert code == 0, runner.out.read_text()[-3000:]
    assert waiting["run_id"] == found[0]["run_id"]  # the watcher logs as the run
    ran = _statements(found)
    assert ran[0]["sql"].startswith(f'CREATE UNIQUE INDEX CONCURRENTLY "{UNIQUE}"') and ran[0].get("algorithm") == \
        "CONCURRENTLY"
    assert [e["sql"] for e in ran[-len(LATER):]] == [
        f'CREATE INDEX CONCURRENTLY "knowledgebase_{c}" ON "knowledgebase" ("{c}")' for c in LATER]
    assert all(e.get("algorithm") is None for e in ran[1:-len(LATER)])  # the transaction's statements
    assert 'CREATE INDEX "tenant_tenant_ocr_id" ON "tenant" ("tenant_ocr_id")' in [e["sql"] for e in ran]
    _assert_reference_indexes(conn, reference)
    assert conn.execute("SELECT count(*) FROM compilation_template").fetchone() == (206,)
    assert pgrel.history(conn)[-1] == chain.migration_name("v0.27.0")
    again = run_tool(env, "run", *BIG)
    assert again.code == 0 and again.summary["outcome"] == "noop", again.stdout[-2000:]
    conn.close()


def test_a_killed_build_leaves_an_invalid_index_that_the_next_run_rebuilds(pg_server, pg_database, reference,
                                                                          tmp_path):
    conn = _load(pg_server, pg_database)
    env = _env(pg_server, pg_database)
    other = _hold_templates(pg_server, pg_database)
    runner = Runner(env, tmp_path / "run.out", "run", *BIG)
    try:
        builder = _waiting_build(conn, pg_database)
        runner.kill()
        _gone(conn, builder)  # the server cancels the build of a runner that is gone
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert ("compilation_template", UNIQUE, False) in _index_state(conn)
    assert invalid_indexes(conn) == [("compilation_template", UNIQUE)]
    assert chain.migration_name("v0.27.0") not in pgrel.history(conn)
    diff = run_tool(env, "schema", "diff", "--json")
    found = {(d["kind"], d["table"], d["name"]) for d in json.loads(diff.stdout)["differences"]}
    assert ("missing_index", "compilation_template", UNIQUE) in found  # an INVALID index is not there
    plan = run_tool(env, "plan", "--json", *BIG)
    (planned,) = [s["sql"] for s in json.loads(plan.stdout)["steps"] if s["step"] == "schema v0.27.0"]
    assert [sql.rsplit("\n", 1)[1] for sql in planned[:2]] == [
        f'DROP INDEX CONCURRENTLY IF EXISTS "{UNIQUE}"',
        f'CREATE UNIQUE INDEX CONCURRENTLY "{UNIQUE}" ON "compilation_template" ("tenant_id", "group_id", "name", '
        '"is_builtin", "status")']

    rerun = run_tool(env, "run", *BIG)
    assert rerun.code == 0, rerun.stdout[-3000:]
    ran = [e["sql"] for e in _statements(rerun.events)]
    assert ran[:2] == [f'DROP INDEX CONCURRENTLY IF EXISTS "{UNIQUE}"',
                       f'CREATE UNIQUE INDEX CONCURRENTLY "{UNIQUE}" ON "compilation_template" ("tenant_id", '
                       '"group_id", "name", "is_builtin", "status")']
    assert any("is INVALID" in e["message"] for e in rerun.named(events.STEP_NOTICE))
    _assert_reference_indexes(conn, reference)
    assert pgrel.history(conn)[-1] == chain.migration_name("v0.27.0")
    conn.close()


def _gone(conn, pid: int, timeout: float = 30) -> None:
    """The killed runner's session ends: the server notices (client_connection_check_interval)."""
    deadline = time.monotonic() + timeout
    while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
        assert time.monotonic() < deadline, "the killed runner's build still runs"
        time.sleep(0.1)


def test_a_build_killed_after_the_transaction_is_finished_by_the_next_run(pg_server, pg_database, reference,
                                                                          tmp_path):
    """Only knowledgebase is big: its six indexes wait for the commit of the migration's transaction.
    A session holding an old snapshot makes the first of them wait at its end; the runner is killed
    there: the columns are committed, the index INVALID, the migration unrecorded. The next run
    builds what is missing and records the migration."""
    pg_server.load_sql(pg_database, REFERENCE / "fresh-v0.26.4.sql")
    conn = pg_server.connect(pg_database)
    conn.execute(_KBS, (200,))
    env = _env(pg_server, pg_database)
    other = pg_server.connect(pg_database)
    other.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    other.execute("SELECT 1")  # a snapshot every concurrent build waits for, whatever its table
    runner = Runner(env, tmp_path / "run.out", "run", *BIG)
    try:
        builder = _waiting_build(conn, pg_database, build='CREATE INDEX CONCURRENTLY "knowledgebase_')
        runner.kill()
        _gone(conn, builder)
    finally:
        other.execute("ROLLBACK")
        other.close()
    kb = live_snapshot(conn, tables=["knowledgebase"]).tables["knowledgebase"]
    assert all(f"{c}" in kb.columns for c in LATER)  # the transaction committed
    assert invalid_indexes(conn) == [("knowledgebase", f"knowledgebase_{LATER[0]}")]
    assert chain.migration_name("v0.27.0") not in pgrel.history(conn)

    rerun = run_tool(env, "run", *BIG)
    assert rerun.code == 0, rerun.stdout[-3000:]
    ran = [e["sql"] for e in _statements(rerun.events)]
    assert ran[0] == f'DROP INDEX CONCURRENTLY IF EXISTS "knowledgebase_{LATER[0]}"'
    assert ran[1:] == [f'CREATE INDEX CONCURRENTLY "knowledgebase_{c}" ON "knowledgebase" ("{c}")' for c in LATER]
    _assert_reference_indexes(conn, reference)
    assert pgrel.history(conn)[-1] == chain.migration_name("v0.27.0")
    conn.close()


def test_a_build_waiting_past_the_deadline_fails_naming_the_blocker(pg_server, pg_database, reference):
    conn = _load(pg_server, pg_database)
    env = _env(pg_server, pg_database)
    before = _ragflow_tables(conn)
    other = _hold_templates(pg_server, pg_database)
    try:
        failed = run_tool(env, "run", *BIG, "--ddl-lock-wait", "0.5", "--ddl-deadline", "1")
        assert failed.code == 7, failed.stdout[-3000:]
        summary = failed.summary
        assert summary["error"].startswith(f'schema v0.27.0: CREATE UNIQUE INDEX CONCURRENTLY "{UNIQUE}" on '
                                           "compilation_template waited 1s (--ddl-deadline)"), summary["error"]
        assert f"pid {other.info.backend_pid} (postgres, a-ragflow-pod" in summary["error"]
        assert [b["pid"] for b in summary["blockers"]] == [other.info.backend_pid]
        # the INVALID index could not be dropped while the blocker stays: the next run does it
        assert invalid_indexes(conn) == [("compilation_template", UNIQUE)]
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _ragflow_tables(conn) == before  # the INVALID index is not read as present
    rerun = run_tool(env, "run", *BIG)
    assert rerun.code == 0, rerun.stdout[-3000:]
    _assert_reference_indexes(conn, reference)
    conn.close()


def test_a_unique_build_over_duplicates_fails_as_in_a_transaction_and_leaves_nothing(pg_server, pg_database):
    conn = _load(pg_server, pg_database, rows=150)
    conn.execute(f'DROP INDEX "{OLD_UNIQUE}"')  # a database changed by hand: the old key no longer holds
    conn.execute(_TEMPLATES, ("dup", "n", 2))  # n1, n2 again: duplicates of the new unique key
    env = _env(pg_server, pg_database)
    before = pgrel.schema_state(conn)

    in_transaction = run_tool(env, "run")
    with_concurrent = run_tool(env, "run", *BIG)
    for result in (in_transaction, with_concurrent):
        assert result.code == 7, result.stdout[-3000:]
        error = result.summary["error"]
        assert error.startswith(f'schema v0.27.0: could not create unique index "{UNIQUE}": Key (tenant_id, '
                                "group_id, name, is_builtin, status)=(t1, g1, n"), error
        assert "is duplicated. (SQLSTATE 23505)" in error
        assert pgrel.schema_state(conn) == before  # the index is not there, INVALID or otherwise
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (UNIQUE,)).fetchone() == (0,)
    assert in_transaction.summary["error"] == with_concurrent.summary["error"]
    assert in_transaction.summary["hint"] == with_concurrent.summary["hint"]
    assert not [e for e in _statements(in_transaction.events) if e.get("algorithm") == "CONCURRENTLY"]
    dropped = [e["message"] for e in with_concurrent.named(events.STEP_NOTICE)]
    assert any(f"the failed concurrent build of {UNIQUE}" in m and "dropped" in m for m in dropped), dropped
    assert chain.migration_name("v0.27.0") not in pgrel.history(conn)
    conn.close()


@pytest.mark.parametrize("big", [True, False], ids=["concurrently", "in-transaction"])
def test_the_repair_drops_an_invalid_leftover_and_builds_the_index(pg_server, pg_database, reference, big):
    """After the upgrade, someone's failed concurrent build left an INVALID index under a name RAGFlow's
    schema declares: it counts as missing, and the drift repair drops it and builds the index (concurrently
    on a big table, else in the repair's transaction)."""
    pg_server.load_sql(pg_database, REFERENCE / "fresh-v0.27.0.sql")
    env = _env(pg_server, pg_database)
    assert run_tool(env, "run").code == 0
    conn = pg_server.connect(pg_database)
    conn.execute(_KBS, (200,))
    name = "knowledgebase_structure_task_id"
    conn.execute(f'DROP INDEX "{name}"')
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(f'CREATE UNIQUE INDEX CONCURRENTLY "{name}" ON knowledgebase (tenant_id)')
    assert invalid_indexes(conn) == [("knowledgebase", name)]
    assert json.loads(run_tool(env, "status", "--json").stdout)["state"] == "drifted"
    repaired = run_tool(env, "run", *(BIG if big else ()))
    assert repaired.code == 0, repaired.stdout[-3000:]
    ran = [(e["sql"], e.get("algorithm")) for e in _statements(repaired.events, "schema repair")]
    build = f'CREATE INDEX{" CONCURRENTLY" if big else ""} "{name}" ON "knowledgebase" ("structure_task_id")'
    assert ran == [(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"', "CONCURRENTLY"),
                   (build, "CONCURRENTLY" if big else None)]
    _assert_reference_indexes(conn, reference)
    assert run_tool(env, "run").summary["outcome"] == "noop"
    conn.close()


# --- the chain with every table counted big ---------------------------------------------------------


class _Log:
    def __init__(self) -> None:
        self.records: list[tuple[str, dict]] = []

    def info(self, event: str, **fields) -> None:
        self.records.append((event, fields))

    warning = debug = error = info


def _ctx(conn, threshold: int):
    log = _Log()
    settings = types.SimpleNamespace(blocking_ddl_rows=threshold, ddl_lock_wait=5.0, ddl_deadline=60.0)
    return types.SimpleNamespace(conn=conn, settings=settings, log=log, extras={}, open_session=None,
                                 checkpoint=lambda: None,
                                 notice=lambda step, message, **f: log.warning(events.STEP_NOTICE, step=step,
                                                                               message=message, **f))


def _chain(conn, threshold: int) -> tuple[list[str], list[tuple[str, dict]]]:
    """Every migration through migration.apply_migration, each recorded in a table of its own."""
    conn.execute("CREATE TABLE IF NOT EXISTS ragflow_migrate_test_history (name text)")
    ctx = _ctx(conn, threshold)
    for m in chain.replay():
        ops = [op for op in m.operations if not isinstance(op, CreateTable) or op.needed_for("v0.27.0")]
        migration.apply_migration(ctx, m.name, ops, to_postgres(m.expected),
                                  lambda c, n=m.name: c.execute("INSERT INTO ragflow_migrate_test_history VALUES (%s)",
                                                                (n,)))
    recorded = [n for (n,) in conn.execute("SELECT name FROM ragflow_migrate_test_history").fetchall()]
    return recorded, ctx.log.records


@pytest.mark.parametrize("stem", ["fresh-v0.20.0", "fresh-v0.24.0", "fresh-v0.26.4", "upgrade-v0.24.0-to-v0.27.0"])
def test_with_every_table_big_the_chain_ends_where_the_transactions_end(pg_server, stem):
    """Every index a migration builds made concurrent (threshold -1: every table is "big"), before or
    after its transaction: the same schema as with none, each migration recorded once."""
    ends = []
    for threshold, name in ((10**9, "plain"), (-1, "concurrent")):
        database = pg_server.create_database(f"cic_{name}_{os.getpid()}_{time.monotonic_ns()}")
        try:
            pg_server.load_sql(database, REFERENCE / f"{stem}.sql")
            with pg_server.connect(database) as conn:
                recorded, records = _chain(conn, threshold)
                assert recorded == [m.name for m in chain.replay()]
                ends.append(live_snapshot(conn))
                built = [f["sql"] for e, f in records if e == events.STEP_STATEMENT and f.get("algorithm") == "CONCURRENTLY"]
                assert bool(built) == (threshold < 0)
        finally:
            pg_server.drop_database(database)
    assert ends[0] == ends[1]
