"""SIGKILL between any two statements of an upgrade, then a plain re-run: the same schema as an
uninterrupted run, and a complete history."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path

import pytest
from toolrun import PYTHON, run_tool

from ragflow_migrate.schema import chain
from ragflow_migrate.schema.introspect import live_snapshot

KILLER = Path(__file__).with_name("killer.py")


def killed_run(env: dict[str, str], after: int, *args: str) -> int:
    full = {"PATH": os.environ.get("PATH", ""), "RAGFLOW_MIGRATE_LOG_FORMAT": "json", **env}
    proc = subprocess.run([PYTHON, str(KILLER), str(after), "run", *args], env=full, capture_output=True,
                          text=True, timeout=300)
    return proc.returncode


def schema_of(database):
    conn = database.connect()
    try:
        snap = live_snapshot(conn, database.name, mariadb=database.server.flavor == "mariadb")
    finally:
        conn.close()
    return {name: (list(t.columns.items()), sorted(t.indexes.items()), t.collation)
            for name, t in snap.tables.items()
            if name not in ("ragflow_migrate_journal", "ragflow_migrate_lock_holder")}


def history_of(database):
    return [r[0] for r in database.query("SELECT name FROM ragflow_migrate_history ORDER BY id")]


_REFERENCES: dict[str, tuple] = {}  # server label -> (schema, history) of the uninterrupted run


@pytest.fixture
def reference_run(server, ragflow_schema):
    """The schema and history of the uninterrupted upgrade of fresh v0.20.0 on this server (run
    once per server and test worker, in a database of its own)."""
    if server.label not in _REFERENCES:
        name = f"ref_kill_{os.getpid()}"
        server.create_database(name)
        try:
            server.load_sql(name, ragflow_schema("v0.20.0"))
            assert run_tool(server.env(name), "run").code == 0

            class Ref:
                pass

            ref = Ref()
            ref.name, ref.server = name, server
            ref.connect = lambda **kw: server.connect(name, **kw)
            ref.query = lambda sql, args=None: server.query(sql, args, database=name)
            _REFERENCES[server.label] = (schema_of(ref), history_of(ref))
        finally:
            server.ensure_running().drop_database(name)
    return _REFERENCES[server.label]


@pytest.mark.slow
def test_killed_after_every_single_statement(database, ragflow_schema, reference_run):
    """Each run executes one more statement and dies: every position is a kill point once."""
    database.load_sql(ragflow_schema("v0.20.0"))
    runs = 0
    while True:
        runs += 1
        assert runs < 400, "no convergence"
        code = killed_run(database.env, 1)
        if code == 0:
            break
        assert code == -signal.SIGKILL, f"run {runs} failed with {code}"
    assert runs > 100  # the upgrade from v0.20.0 is well over a hundred statements
    assert (schema_of(database), history_of(database)) == reference_run
    assert history_of(database) == list(chain.migration_names())
    assert run_tool(database.env, "run").summary["outcome"] == "noop"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_at_a_random_point_then_rerun(database, ragflow_schema, reference_run, seed):
    database.load_sql(ragflow_schema("v0.20.0"))
    after = random.Random(seed).randint(1, 140)
    assert killed_run(database.env, after) in (-signal.SIGKILL, 0)
    result = run_tool(database.env, "run")
    assert result.code == 0, result.stdout
    assert (schema_of(database), history_of(database)) == reference_run
    assert history_of(database) == list(chain.migration_names())
