"""Kill matrix: SIGKILL the data migration at random points; every re-run converges to the same end state.

A child process runs every stage (tiny batches, so there are many transactions to land between
and inside); the parent kills it at a point spread over the uninterrupted run's duration, then
runs the migration again to completion and compares the result with the uninterrupted one, row
by row (generated ids and timestamps aside), and checks §6.

``RAGFLOW_MIGRATE_KILL_TRIALS`` sets the trials per server (default 15: 30 in all in `make test`,
35-55 s per server; the points are drawn afresh each run, so CI runs add up to many more; the
whole pipeline's kill matrix, tests/reliability/test_crash_resume.py, kills data stages too).
``RAGFLOW_MIGRATE_KILL_SEED`` fixes the random points.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import data_support as ds
import pytest

TRIALS = int(os.environ.get("RAGFLOW_MIGRATE_KILL_TRIALS", "15"))
SEED = int(os.environ.get("RAGFLOW_MIGRATE_KILL_SEED", str(int(time.time()))))
TENANTS = 25
BATCH = 4
HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2] / "src"

CHILD = """
import sys, os
import data_support as ds
ctx = ds.open_ctx({k: v for k, v in os.environ.items() if k.startswith("MYSQL_")}, batch_size=int(sys.argv[1]))
print("ready", flush=True)
ds.run_all(ctx)
print("done", flush=True)
"""


def _prepare(database, schema_path) -> None:
    database.server.drop_database(database.name)
    database.server.create_database(database.name)
    ds.load_schema(database, schema_path)
    conn = database.connect(charset="utf8mb4")
    try:
        ds.rich_rows(conn, tenants=TENANTS, seed=11)
    finally:
        conn.close()


def _child(database) -> subprocess.Popen:
    # data_support needs the tests folder too (servers.harness), as pytest's rootdir gives it
    env = {**os.environ, **database.env, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parents[1]), str(SRC)])}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(BATCH)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_ready(proc: subprocess.Popen) -> None:
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.poll() is not None else "")


def _wait_sessions_gone(conn, name: str, timeout: float = 120.0) -> None:
    """The killed child's server session ends only when its running statement does (an ALTER goes on
    after its client is gone). The real runner holds the advisory lock, which waits for exactly this;
    the matrix's children take none, so the re-run waits here instead of racing the dead one's DDL."""
    deadline = time.monotonic() + timeout
    while ds._q(conn, "SELECT id FROM information_schema.processlist WHERE db = %s AND id <> CONNECTION_ID() "
                "AND command <> 'Sleep'",
                (name,)):
        assert time.monotonic() < deadline, "the killed child's session is still running"
        time.sleep(0.05)


@pytest.mark.slow
def test_kill_matrix(database, ragflow_schema):
    schema_path = ragflow_schema("v0.26.0")
    _prepare(database, schema_path)
    proc = _child(database)
    _wait_ready(proc)
    started = time.monotonic()
    out, err = proc.communicate(timeout=600)
    duration = time.monotonic() - started
    assert proc.returncode == 0 and "done" in out, err
    conn = database.connect(charset="utf8mb4")
    reference = ds.snapshot(conn)
    ds.check_acceptance(conn)
    conn.close()

    rnd = random.Random(SEED)
    killed_in: list[str] = []
    for trial in range(TRIALS):
        _prepare(database, schema_path)
        at = duration * (trial + rnd.random()) / TRIALS  # spread over the whole run, every stage
        proc = _child(database)
        _wait_ready(proc)
        time.sleep(at)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        conn = database.connect(charset="utf8mb4")
        try:
            _wait_sessions_gone(conn, database.name)
            records = ds._q(conn, "SELECT stage, status FROM ragflow_migrate_data_stage") \
                if ds.has_table(conn, "ragflow_migrate_data_stage") else []
            killed_in.append(next((s for s, st in records if st == "started"), "between stages"))
            ctx = ds.open_ctx(database.env, batch_size=BATCH)
            try:
                ds.run_all(ctx)
            finally:
                ctx.conn.close()
            got = ds.snapshot(conn)
            assert got == reference, (f"trial {trial} (seed {SEED}, killed at {at:.2f}s of {duration:.2f}s in "
                                      f"{killed_in[-1]}):\n" + ds.diff(got, reference))
            ds.check_acceptance(conn)
        finally:
            conn.close()
    print(f"kill matrix on {database.server.label}: {TRIALS} trials, seed {SEED}, run {duration:.2f}s, "
          f"killed in: {sorted(set(killed_in))}")
