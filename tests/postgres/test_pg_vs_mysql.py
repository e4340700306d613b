"""Cross-backend acceptance: the same legacy data, migrated on MariaDB and on PostgreSQL, ends in the
same rows.

Both databases start from RAGFlow's own schema of one release (MariaDB 10.11's and PostgreSQL 15's
reference dumps of fresh v0.25.6, and of v0.20.0), receive the same legacy dataset (pgdata.dataset:
users, tenants with every kind of model reference, tenant_llm rows across factories, types, keys and
statuses, dialogs, knowledge bases, memories, a search), and are migrated by the real CLI
(``python -m ragflow_migrate run``, target v0.27.0, the tests' small catalogue): MySQL through its
MYSQL_* variables, PostgreSQL through DB_TYPE=postgres and POSTGRES_*. Both runs must exit 0; then
the model tables, tenant_llm and the referencing tables are compared row for row after normalising
(pgdata.normalise: generated ids → the natural keys of the rows they name, timestamps dropped).
MySQL's result (its _ci collation included) is the reference. A second run must be a no-op on both.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pgdata
import pytest

pytestmark = [pytest.mark.integration]  # one PostgreSQL per xdist worker (conftest.py)

TESTS = Path(__file__).resolve().parents[1]
CATALOG = TESTS / "data" / "llm_factories.small.json"
TARGET = "v0.27.0"
RELEASES = ("v0.25.6", "v0.20.0")


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
def mysql_db(mariadb_server, tmp_path):
    """A fresh utf8mb4_unicode_ci database (as RAGFlow's compose makes it) on the session's MariaDB."""
    server = mariadb_server.ensure_running()
    name = f"t_pgvs_{os.getpid()}_{secrets.token_hex(4)}"
    server.create_database(name, collation="utf8mb4_unicode_ci")
    env = {**server.env(name), "RAGFLOW_MIGRATE_TERMINATION_LOG": str(tmp_path / "termination-log-mysql")}
    try:
        yield server, name, env
    finally:
        try:
            server.ensure_running().drop_database(name)
        except Exception as exc:  # noqa: BLE001 - never hide the test's own result
            print(f"warning: could not drop {name}: {exc}")


# --- running the tool --------------------------------------------------------------------------------


class Run:
    def __init__(self, label: str, args: tuple[str, ...], proc: subprocess.CompletedProcess[str],
                 seconds: float) -> None:
        self.label, self.args, self.code, self.seconds = label, args, proc.returncode, seconds
        self.stdout, self.stderr = proc.stdout, proc.stderr

    def events(self) -> list[dict[str, Any]]:
        out = []
        for text in (self.stdout, self.stderr):
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        return out

    def outcome(self) -> str | None:
        finished = [e for e in self.events() if e.get("event") == "run.finished"]
        return finished[-1].get("outcome") if finished else None

    def explain(self) -> str:
        """The warnings, errors and the summary's error and hint (else the output's tail)."""
        head = f"{self.label}: `ragflow_migrate {' '.join(self.args)}` exited {self.code}"
        lines = []
        for e in self.events():
            if e.get("event") == "run.finished":
                lines.append(f"  run.finished: outcome {e.get('outcome')!r}, error {e.get('error')!r}, "
                             f"hint {e.get('hint')!r}")
                frames = [f"{f.get('filename', '').rsplit('/src/', 1)[-1]}:{f.get('lineno')}"
                          for x in e.get("exception") or [] for f in x.get("frames", [])]
                if frames:
                    lines.append("  at " + " < ".join(reversed(frames[-6:])))
            elif e.get("level") in ("warning", "error"):
                lines.append(f"  {e.get('event')}: {json.dumps({k: v for k, v in e.items() if k not in ('run_id', 'timestamp', 'event')})[:600]}")
        if not lines:
            lines = [line[:600] for line in (self.stdout + "\n" + self.stderr).strip().splitlines()[-15:]]
        return head + ":\n" + "\n".join(lines[-20:])


def _tool(label: str, env: dict[str, str], *args: str) -> Run:
    full = {"PATH": os.environ.get("PATH", ""), "RAGFLOW_MIGRATE_LOG_FORMAT": "json",
            "RAGFLOW_MIGRATE_CATALOG": str(CATALOG), "RAGFLOW_MIGRATE_TARGET_VERSION": TARGET, **env}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "ragflow_migrate", *args], env=full, capture_output=True,
                          text=True, timeout=240)
    return Run(label, args, proc, time.monotonic() - started)


def _both(mysql_env: dict[str, str], pg_env: dict[str, str], *args: str) -> tuple[Run, Run]:
    """The same command on both backends at once (they share nothing)."""
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(_tool, "MySQL", mysql_env, *args)
        b = pool.submit(_tool, "PostgreSQL", pg_env, *args)
        return a.result(), b.result()


# --- reading -------------------------------------------------------------------------------------------


def _state(mysql_server, mysql_name: str, pg_server, pg_name: str):
    conn = mysql_server.connect(mysql_name, charset="utf8mb4")
    try:
        mysql = pgdata.normalise(pgdata.read_tables("mysql", conn))
    finally:
        conn.close()
    with pg_server.connect(pg_name) as pconn:
        pg = pgdata.normalise(pgdata.read_tables("postgres", pconn))
    return mysql, pg


def _nothing_pending(run: Run) -> str | None:
    """None when ``status --json`` says nothing is pending; else why not."""
    if run.code != 0:
        return run.explain()
    try:
        status = json.loads(run.stdout)
    except ValueError:
        return f"{run.label}: status --json printed no JSON:\n{run.stdout[-2000:]}"
    if status.get("state") != "up_to_date" or status.get("pending"):
        return f"{run.label}: status: state {status.get('state')!r}, pending {status.get('pending')!r}"
    return None


# --- the test ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("release", RELEASES)
def test_same_legacy_data_migrates_to_the_same_rows(release, mysql_db, pg_server, pg_database, tmp_path):
    started = time.monotonic()
    mysql_server, mysql_name, mysql_env = mysql_db
    pg_env = {**pg_server.env(pg_database), "RAGFLOW_MIGRATE_TERMINATION_LOG": str(tmp_path / "termination-log-pg")}

    # 1. RAGFlow's own schema of the release, on each server
    mysql_server.load_sql(mysql_name, mysql_server.schema_file(release))
    pg_server.load_sql(pg_database, pg_server.schema_file(release))

    # 2. the same legacy data
    data = pgdata.dataset(release)
    conn = mysql_server.connect(mysql_name, charset="utf8mb4")
    try:
        mysql_counts = pgdata.Loader("mysql", conn).load(data)
    finally:
        conn.close()
    with pg_server.connect(pg_database) as pconn:
        pg_counts = pgdata.Loader("postgres", pconn).load(data)
    assert mysql_counts == pg_counts, (mysql_counts, pg_counts)
    assert mysql_counts["tenant_llm"] >= 40 and mysql_counts["tenant"] == len(pgdata.TENANT_IDS)
    before_mysql, before_pg = _state(mysql_server, mysql_name, pg_server, pg_database)
    legacy_diff = [line for line in pgdata.differences(before_mysql, before_pg)]
    assert not legacy_diff, "the loaded legacy data differs already:\n" + "\n".join(legacy_diff)

    # 3. the migration, on both
    first_mysql, first_pg = _both(mysql_env, pg_env, "run")
    assert first_mysql.code == 0, first_mysql.explain()
    assert first_pg.code == 0, first_pg.explain()

    # 4. row for row, MySQL the reference
    mysql, pg = _state(mysql_server, mysql_name, pg_server, pg_database)
    _assert_meaningful(mysql)
    diff = pgdata.differences(mysql, pg)
    assert not diff, f"{release}: PostgreSQL's result differs from MySQL's:\n" + "\n".join(diff)

    # 5. a second run changes nothing, and nothing is pending
    again_mysql, again_pg = _both(mysql_env, pg_env, "run")
    for run in (again_mysql, again_pg):
        assert run.code == 0, run.explain()
        assert run.outcome() == "noop", f"{run.label}: second run's outcome {run.outcome()!r}\n{run.explain()}"
    status_mysql, status_pg = _both(mysql_env, pg_env, "status", "--json")
    problems = [p for p in (_nothing_pending(status_mysql), _nothing_pending(status_pg)) if p]
    assert not problems, "\n".join(problems)
    mysql2, pg2 = _state(mysql_server, mysql_name, pg_server, pg_database)
    assert mysql2 == mysql, "MySQL changed on the second run:\n" + "\n".join(pgdata.differences(mysql, mysql2))
    assert pg2 == pg, "PostgreSQL changed on the second run:\n" + "\n".join(pgdata.differences(pg, pg2))
    print(f"{release}: compared in {time.monotonic() - started:.1f}s; first run MySQL {first_mysql.seconds:.1f}s, "
          f"PostgreSQL {first_pg.seconds:.1f}s")


def _assert_meaningful(mysql: dict[str, list[dict[str, Any]]]) -> None:
    """The reference result is not vacuous: models were made and references resolved (and left '')."""
    assert len(mysql["tenant_model"]) > 20, len(mysql["tenant_model"])
    assert len(mysql["tenant_model_instance"]) > 10
    t1 = next(r for r in mysql["tenant"] if r["id"] == "t1")
    assert isinstance(t1["tenant_llm_id"], tuple) and t1["tenant_llm_id"][0] == "model", t1
    assert t1["tenant_img2txt_id"] == "", t1  # the catalogue gpt-4o is chat only
    t6 = next(r for r in mysql["tenant"] if r["id"] == "t6")
    assert t6["tenant_llm_id"] in (None, ""), t6
